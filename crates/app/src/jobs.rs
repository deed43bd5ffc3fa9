//! Background jobs: the mail outbox worker and retention clean-up.
//!
//! The worker claims due mails with a lease (so several nodes can run it), delivers them
//! through the [`mail::Mailer`], and on failure schedules a retry with exponential backoff
//! (15 s doubling up to 1 h). It never gives up on a mail: an SMTP outage delays it only.

use std::sync::Arc;
use std::time::Duration as StdDuration;

use time::Duration;
use tokio::sync::watch;

use crate::services::codes::{MailPayload, OUTBOX_AAD};
use crate::state::App;

const LEASE: Duration = Duration::seconds(120);
const BATCH: i64 = 20;

/// Delay before retry number `attempts` (1-based) of a failed mail.
pub fn backoff(attempts: i32) -> Duration {
    let exp = attempts.saturating_sub(1).clamp(0, 12) as u32;
    Duration::seconds((15i64 << exp).min(3600))
}

/// Delivers what is due now; returns how many mails were handled.
pub async fn deliver_due(app: &App, mailer: &mail::Mailer) -> Result<usize, store::StoreError> {
    let now = app.now();
    let due = app.store.claim_due_mails(now, LEASE, BATCH).await?;
    let n = due.len();
    for m in due {
        let payload: MailPayload = match app.keys.open_json(OUTBOX_AAD, &m.payload) {
            Ok(p) => p,
            Err(e) => {
                tracing::error!(mail_id = %m.id, error = %e, "cannot open queued mail (missing key?); retrying later");
                app.store.mark_mail_failed(&m.id, "cannot open payload", app.now() + Duration::hours(1)).await?;
                continue;
            }
        };
        let out = mail::OutgoingMail { to: payload.to, subject: payload.subject, text: payload.text };
        match mailer.send(&out).await {
            Ok(()) => {
                app.store.mark_mail_sent(&m.id, app.now()).await?;
                metrics::counter!("mimoto_mail_sent_total").increment(1);
            }
            Err(e) => {
                let next = app.now() + backoff(m.attempts);
                // The error text may echo the recipient; keep it out of the logs.
                tracing::warn!(mail_id = %m.id, attempts = m.attempts, transient = e.is_transient(), "mail delivery failed; will retry");
                app.store.mark_mail_failed(&m.id, &e.to_string(), next).await?;
                metrics::counter!("mimoto_mail_failures_total").increment(1);
            }
        }
    }
    Ok(n)
}

pub async fn mail_worker(app: Arc<App>, mailer: mail::Mailer, mut shutdown: watch::Receiver<bool>) {
    let poll = StdDuration::from_millis(app.config.mail_poll_ms.max(10));
    loop {
        match deliver_due(&app, &mailer).await {
            Ok(n) if n > 0 => continue,
            Ok(_) => {}
            Err(e) => tracing::error!(error = %e, "mail worker: store error"),
        }
        tokio::select! {
            _ = app.mail_wake.notified() => {}
            _ = tokio::time::sleep(poll) => {}
            _ = shutdown.changed() => break,
        }
        if *shutdown.borrow() {
            break;
        }
    }
    tracing::info!("mail worker stopped");
}

/// Deletes expired flows and sessions and old rate-limit windows.
pub async fn clean_up(app: &App) -> Result<(), store::StoreError> {
    let now = app.now();
    let flows = app.store.delete_expired_flows(now).await?;
    let sessions = app.store.delete_expired_sessions(now).await?;
    let operator_sessions = app.store.delete_expired_operator_sessions(now).await?;
    let capture_tokens = app.store.delete_stale_capture_tokens(now).await?;
    let limits = app.store.delete_stale_rate_limits(now - Duration::days(1)).await?;
    let images = delete_decided_images(app).await?;
    tracing::debug!(flows, sessions, operator_sessions, capture_tokens, limits, images, "retention clean-up");
    Ok(())
}

/// Deletes the images of eKYC applications decided more than the retention period ago (the
/// decision, scores and reasons stay). An image the object store fails to delete is logged
/// and tried again next time.
pub async fn delete_decided_images(app: &App) -> Result<u64, store::StoreError> {
    let before = app.now() - Duration::days(app.config.ekyc_image_retention_days);
    let mut deleted = 0;
    loop {
        let due = app.store.ekyc_images_to_delete(before, 500).await?;
        if due.is_empty() {
            break;
        }
        let mut progressed = false;
        for image in due {
            match app.images.delete(&image.id).await {
                Ok(()) => {
                    app.store.mark_ekyc_image_deleted(&image.id, app.now()).await?;
                    deleted += 1;
                    progressed = true;
                }
                Err(e) => tracing::error!(image = %image.id, error = %e, "could not delete an eKYC image"),
            }
        }
        if !progressed {
            break;
        }
    }
    Ok(deleted)
}

pub async fn retention(app: Arc<App>, mut shutdown: watch::Receiver<bool>) {
    loop {
        if let Err(e) = clean_up(&app).await {
            tracing::error!(error = %e, "retention clean-up failed");
        }
        tokio::select! {
            _ = tokio::time::sleep(StdDuration::from_secs(600)) => {}
            _ = shutdown.changed() => break,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_and_caps_at_an_hour() {
        assert_eq!(backoff(1), Duration::seconds(15));
        assert_eq!(backoff(2), Duration::seconds(30));
        assert_eq!(backoff(5), Duration::seconds(240));
        assert_eq!(backoff(9), Duration::seconds(3600));
        assert_eq!(backoff(1000), Duration::seconds(3600));
    }
}
