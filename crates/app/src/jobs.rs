//! Background jobs: the mail outbox worker and retention clean-up.
//!
//! The worker claims due mails with a lease (so several nodes can run it), delivers them
//! through the [`mail::Mailer`], and on failure schedules a retry with exponential backoff
//! (15 s doubling up to 1 h). It never gives up on a mail: an SMTP outage delays it only. When
//! a delivery succeeds after a transient failure (the relay is back), every mail waiting out a
//! backoff after a transient failure becomes due at once. A code mail whose code has expired
//! is dropped instead of sent.
//!
//! The clean-up ([`clean_up`], every 10 minutes) deletes what is no longer needed, each kind
//! after its own period (`*_retention_days` in the configuration, README "Configuration").
//! Every node may run it: each purge is one statement, or a versioned update.

use std::collections::HashSet;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration as StdDuration;

use domain::ekyc::EkycApplication;
use store::{EkycImage, EkycRecord};
use time::{Duration, OffsetDateTime};
use tokio::sync::watch;

use crate::error::ServiceError;
use crate::images::ImageError;
use crate::services::codes::{MailPayload, OUTBOX_AAD};
use crate::services::{auth, ekyc, operators};
use crate::state::App;

const BATCH: i64 = 20;

/// Delay before retry number `attempts` (1-based) of a failed mail.
pub fn backoff(attempts: i32) -> Duration {
    let exp = attempts.saturating_sub(1).clamp(0, 12) as u32;
    Duration::seconds((15i64 << exp).min(3600))
}

/// Delivers what is due now; returns how many mails were handled. Mails to different addresses
/// go out at once (up to `mail_concurrency`, each on its own connection of the mailer's pool:
/// one after another, each mail's round trips to the relay — ~47 ms here, `make load` — capped
/// a node at ~20 mails a second and code mails queued behind each other under load); those to
/// one address go in the order they were queued, so a resent code never arrives before the
/// one it replaced.
pub async fn deliver_due(app: &App, mailer: &mail::Mailer) -> Result<usize, store::StoreError> {
    use futures_util::StreamExt as _;
    let now = app.now();
    let claimed = std::time::Instant::now();
    let due = app.store.claim_due_mails(now, lease(app), BATCH).await?;
    let n = due.len();
    let mut queues: Vec<Vec<(store::OutboxRecord, MailPayload)>> = Vec::new();
    for m in due {
        let payload: MailPayload = match app.keys.open_json(OUTBOX_AAD, &m.payload) {
            Ok(p) => p,
            Err(e) => {
                tracing::error!(mail_id = %m.id, error = %e, "cannot open queued mail (missing key?); retrying later");
                app.store.mark_mail_failed(&m.id, "cannot open payload", app.now() + Duration::hours(1), false).await?;
                continue;
            }
        };
        match queues.iter_mut().find(|q| q.first().is_some_and(|(_, p)| p.to == payload.to)) {
            Some(queue) => queue.push((m, payload)),
            None => queues.push(vec![(m, payload)]),
        }
    }
    let outcomes: Vec<Result<(), store::StoreError>> = futures_util::stream::iter(queues)
        .map(|queue| deliver_in_order(app, mailer, queue, claimed))
        .buffer_unordered(usize::try_from(app.config.mail_concurrency).unwrap_or(1).max(1))
        .collect()
        .await;
    outcomes.into_iter().collect::<Result<Vec<()>, _>>()?;
    Ok(n)
}

/// Delivers the mails of one address, one after another.
async fn deliver_in_order(
    app: &App,
    mailer: &mail::Mailer,
    queue: Vec<(store::OutboxRecord, MailPayload)>,
    claimed: std::time::Instant,
) -> Result<(), store::StoreError> {
    for (m, payload) in queue {
        // A code mail after its code expired would only confuse: the member asks for a new one.
        if payload.expires_at.is_some_and(|at| at <= app.now().unix_timestamp()) {
            app.store.drop_mail(&m.id, app.now(), "not sent: its code expired before delivery").await?;
            tracing::warn!(mail_id = %m.id, attempts = m.attempts, "code mail dropped: the code expired before delivery");
            metrics::counter!("mimoto_mail_expired_total").increment(1);
            continue;
        }
        // A batch held up (a slow relay, a delivery waiting to be recorded) must not send mails
        // whose claim may have lapsed meanwhile: another worker may have taken them. They stay
        // due and are claimed again.
        if claimed.elapsed() > lease_std(app).mul_f32(0.5) {
            tracing::warn!(mail_id = %m.id, "mail batch held up past half its lease; the rest is claimed again later");
            break;
        }
        let out =
            mail::OutgoingMail { to: payload.to, subject: payload.subject, text: payload.text, id: Some(m.id.clone()) };
        match mailer.send(&out).await {
            // Refused for good (no such mailbox, an address the relay cannot take): retrying
            // would never deliver it. Operators see it in the console, the member on the code
            // screen.
            Err(e) if e.is_recipient_refusal() => {
                tracing::warn!(mail_id = %m.id, attempts = m.attempts, "mail refused for good; not retried");
                app.store.refuse_mail(&m.id, app.now(), &without_address(&e.to_string(), &out.to)).await?;
                metrics::counter!("mimoto_mail_refused_total").increment(1);
            }
            Ok(()) => {
                record_sent(app, &m.id, claimed).await?;
                metrics::counter!("mimoto_mail_sent_total").increment(1);
                // The relay takes mail again after failing: what waits out a backoff goes now,
                // not minutes later (a code mail must arrive while its code is valid).
                if app.mail_relay_failed.swap(false, Ordering::SeqCst) {
                    let released = app.store.release_waiting_mails(app.now()).await?;
                    if released > 0 {
                        tracing::info!(released, "mail relay is back; waiting mails are due now");
                    }
                }
            }
            Err(e) => {
                let next = app.now() + backoff(m.attempts);
                let transient = e.is_transient();
                // The error text may echo the recipient; keep it out of the logs.
                if transient {
                    tracing::warn!(mail_id = %m.id, attempts = m.attempts, "mail delivery failed; will retry");
                } else {
                    // Authentication, TLS, a refused sender, a policy: the relay's or the
                    // configuration's problem, never the member's address. Retried with backoff.
                    tracing::error!(mail_id = %m.id, attempts = m.attempts,
                        "the mail relay refuses mail for a reason of its own (check MIMOTO_SMTP_URL and MIMOTO_MAIL_FROM); will retry");
                }
                app.store.mark_mail_failed(&m.id, &without_address(&e.to_string(), &out.to), next, transient).await?;
                if transient {
                    app.mail_relay_failed.store(true, Ordering::SeqCst);
                }
                metrics::counter!("mimoto_mail_failures_total").increment(1);
            }
        }
    }
    Ok(())
}

/// A relay's answer with the recipient's address taken out (it is kept for operators, who
/// need the reason, not the address).
pub fn without_address(error: &str, to: &str) -> String {
    let address = to.rsplit_once('<').map_or(to, |(_, a)| a.trim_end_matches('>')).trim();
    if address.is_empty() {
        return error.to_string();
    }
    // ASCII-only lower-casing keeps every byte offset, whatever the text (relays often echo
    // the address in another case).
    let lower = error.to_ascii_lowercase();
    let needle = address.to_ascii_lowercase();
    let mut out = String::with_capacity(error.len());
    let mut at = 0;
    while let Some(found) = lower[at..].find(&needle) {
        out.push_str(&error[at..at + found]);
        out.push_str("<recipient>");
        at += found + needle.len();
    }
    out.push_str(&error[at..]);
    out
}

/// How long a worker's claim on a batch of mails lasts (`mail_lease_secs`, 120 s by default).
fn lease(app: &App) -> Duration {
    Duration::seconds(i64::try_from(app.config.mail_lease_secs).unwrap_or(i64::MAX).max(1))
}

fn lease_std(app: &App) -> StdDuration {
    StdDuration::from_secs(app.config.mail_lease_secs.max(1))
}

/// Records that mail `id`, claimed at `claimed`, was delivered. Until that is recorded the
/// claim must not lapse (another worker would send the mail again), so while the store is
/// unavailable the record is retried, with backoff (up to five leases): a database outage
/// sends each mail once. (If this node dies first, the mail goes again — with the same
/// `Message-ID`, see `mail::OutgoingMail::id`.)
async fn record_sent(app: &App, id: &str, claimed: std::time::Instant) -> Result<(), store::StoreError> {
    // While the database is down no worker can claim the mail again, and once it is back this
    // write comes within two seconds: keep trying well past the lease (bounded, so a node
    // can still stop).
    let deadline = claimed + lease_std(app) * 5;
    let mut wait = StdDuration::from_millis(100);
    loop {
        match app.store.mark_mail_sent(id, app.now()).await {
            Ok(()) => return Ok(()),
            Err(store::StoreError::Unavailable(_)) if std::time::Instant::now() + wait < deadline => {
                tracing::warn!(mail_id = %id, "mail sent but not yet recorded (database unavailable); retrying");
                tokio::time::sleep(wait).await;
                wait = (wait * 2).min(StdDuration::from_secs(2));
            }
            Err(e) => return Err(e),
        }
    }
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

/// What one [`clean_up`] deleted: counts only, never whose or what.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Purged {
    pub flows: u64,
    /// Members' sessions: expired, or begun longer ago than their absolute lifetime.
    pub sessions: u64,
    pub operator_sessions: u64,
    pub capture_tokens: u64,
    pub rate_limits: u64,
    /// Images of eKYC applications decided more than `ekyc_image_retention_days` ago.
    pub decided_images: u64,
    /// Abandoned eKYC applications that forgot their images and embeddings (see
    /// [`forget_abandoned_applications`]), and those images.
    pub abandoned_applications: u64,
    pub abandoned_images: u64,
    /// Mails sent more than `outbox_retention_days` ago.
    pub mails: u64,
    /// One-time codes used, voided or expired more than `code_retention_days` ago.
    pub codes: u64,
    /// Inquiries closed more than `inquiry_retention_days` ago (with their replies).
    pub inquiries: u64,
}

/// `days` before `now`; `None` when that is before the calendar's start (nothing is so old).
fn cutoff(now: OffsetDateTime, days: i64) -> Option<OffsetDateTime> {
    now.checked_sub(Duration::seconds(days.max(0).checked_mul(86_400)?))
}

/// Retention, run every 10 minutes by [`retention`]: deletes expired flows, sessions (also
/// those begun longer ago than a session may live), capture tokens and old rate-limit windows,
/// and everything personal past its period (`*_retention_days` in the configuration): images
/// of decided eKYC applications, images and embeddings of abandoned ones, sent mails, dead
/// one-time codes and closed inquiries. Logs the counts, never what was deleted.
pub async fn clean_up(app: &App) -> Result<Purged, store::StoreError> {
    let now = app.now();
    let config = &app.config;
    let mut purged = Purged { flows: app.store.delete_expired_flows(now).await?, ..Purged::default() };
    purged.sessions = app.store.delete_expired_sessions(now).await?
        + app.store.delete_sessions_begun_before(now - auth::ABSOLUTE_TIMEOUT).await?;
    purged.operator_sessions = app.store.delete_expired_operator_sessions(now).await?
        + app.store.delete_operator_sessions_begun_before(now - operators::ABSOLUTE_TIMEOUT).await?;
    purged.capture_tokens = app.store.delete_stale_capture_tokens(now).await?;
    purged.rate_limits = app.store.delete_stale_rate_limits(now - Duration::days(1)).await?;
    purged.decided_images = delete_decided_images(app).await?;
    let abandoned = forget_abandoned_applications(app).await?;
    purged.abandoned_applications = abandoned.applications;
    purged.abandoned_images = abandoned.images;
    if let Some(before) = cutoff(now, config.outbox_retention_days) {
        purged.mails = app.store.delete_sent_mails(before).await?;
    }
    if let Some(before) = cutoff(now, config.code_retention_days) {
        purged.codes = app.store.delete_dead_codes(before).await?;
    }
    if let Some(before) = cutoff(now, config.inquiry_retention_days) {
        purged.inquiries = app.store.delete_closed_inquiries(before).await?;
    }
    let Purged {
        flows,
        sessions,
        operator_sessions,
        capture_tokens,
        rate_limits,
        decided_images,
        abandoned_applications,
        abandoned_images,
        mails,
        codes,
        inquiries,
    } = purged;
    if purged != Purged::default() {
        tracing::info!(
            flows,
            sessions,
            operator_sessions,
            capture_tokens,
            rate_limits,
            decided_images,
            abandoned_applications,
            abandoned_images,
            mails,
            codes,
            inquiries,
            "retention clean-up"
        );
    } else {
        tracing::debug!("retention clean-up: nothing to delete");
    }
    Ok(purged)
}

/// Why one eKYC application could not be cleaned this time (it is tried again next time).
#[derive(Debug, thiserror::Error)]
enum ForgetError {
    #[error(transparent)]
    Store(#[from] store::StoreError),
    /// The sealed details did not open or seal (a missing data key?).
    #[error("application data: {0}")]
    Data(#[from] ServiceError),
    #[error("image store: {0}")]
    Images(#[from] ImageError),
}

/// Deletes the images of eKYC applications decided more than the retention period ago (the
/// decision, scores and reasons stay), and any face embedding still in such an application's
/// data (the decision drops them; this makes sure). An application whose data cannot be
/// rewritten, or an image the object store fails to delete, is logged and tried again next
/// time.
pub async fn delete_decided_images(app: &App) -> Result<u64, store::StoreError> {
    let Some(before) = cutoff(app.now(), app.config.ekyc_image_retention_days) else { return Ok(0) };
    let mut deleted = 0;
    let mut checked: HashSet<String> = HashSet::new();
    let mut failed: HashSet<String> = HashSet::new();
    loop {
        let due = app.store.ekyc_images_to_delete(before, 500).await?;
        let due: Vec<EkycImage> = due.into_iter().filter(|i| !failed.contains(&i.application_id)).collect();
        if due.is_empty() {
            break;
        }
        let mut progressed = false;
        for image in due {
            if failed.contains(&image.application_id) {
                continue;
            }
            if !checked.contains(&image.application_id) {
                if let Err(e) = drop_embeddings(app, &image.application_id).await {
                    tracing::error!(application = %image.application_id, error = %e, "could not drop the embeddings of a decided eKYC application");
                    failed.insert(image.application_id);
                    continue;
                }
                checked.insert(image.application_id.clone());
            }
            match app.images.delete(&image.id).await {
                Ok(()) => {
                    app.store.mark_ekyc_image_deleted(&image.id, app.now()).await?;
                    deleted += 1;
                    progressed = true;
                }
                Err(e) => {
                    tracing::error!(image = %image.id, error = %e, "could not delete an eKYC image");
                    failed.insert(image.application_id);
                }
            }
        }
        if !progressed {
            break;
        }
    }
    Ok(deleted)
}

/// Rewrites a decided application without face embeddings if it still has any.
async fn drop_embeddings(app: &App, application_id: &str) -> Result<(), ForgetError> {
    let Some(record) = app.store.get_ekyc(application_id).await? else { return Ok(()) };
    let mut loaded = ekyc::open_record(app, record)?;
    if loaded.data.document_embedding.is_none() && loaded.data.frontal_embedding.is_none() {
        return Ok(());
    }
    loaded.data.document_embedding = None;
    loaded.data.frontal_embedding = None;
    rewrite(app, &mut loaded).await
}

/// Writes the application's data back as the clean-up changed it, with the version check (a
/// member or reviewer who wrote in between wins; the clean-up tries again next time) and its
/// `updated_at` unchanged: a clean-up is not the member's activity.
async fn rewrite(app: &App, loaded: &mut ekyc::Loaded) -> Result<(), ForgetError> {
    let mut record = ekyc::stamped(app, loaded)?;
    record.updated_at = loaded.record.updated_at;
    app.store.update_ekyc(&record).await?;
    Ok(())
}

/// What [`forget_abandoned_applications`] did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Forgotten {
    pub applications: u64,
    pub images: u64,
}

/// eKYC applications never submitted whose last step is more than
/// `ekyc_abandoned_retention_days` old — left half-way, or out of face attempts — forget what
/// they hold of the member's face and document: their images are deleted from the image store
/// (the rows stay, marked deleted), and their sealed data loses the face embeddings, the image
/// list and hash, and what OCR read on the document. With nothing left to resume from, an
/// application that still has face attempts starts over (same application, its attempts still
/// counted); one out of attempts stays as it is (the member was sent to the customer center).
/// Submitted applications wait for their reviewer; decided ones follow
/// [`delete_decided_images`]. An application the member touched meanwhile, or whose images
/// the object store fails to delete, is logged and tried again next time.
pub async fn forget_abandoned_applications(app: &App) -> Result<Forgotten, store::StoreError> {
    let mut done = Forgotten::default();
    let Some(before) = cutoff(app.now(), app.config.ekyc_abandoned_retention_days) else { return Ok(done) };
    let mut failed: HashSet<String> = HashSet::new();
    loop {
        let limit = ABANDONED_BATCH + i64::try_from(failed.len()).unwrap_or(i64::MAX - ABANDONED_BATCH);
        let due = app.store.abandoned_ekyc_applications(before, limit).await?;
        let due: Vec<EkycRecord> = due.into_iter().filter(|r| !failed.contains(&r.id)).collect();
        if due.is_empty() {
            break;
        }
        for record in due {
            let id = record.id.clone();
            match forget_application(app, record).await {
                Ok(images) => {
                    done.applications += 1;
                    done.images += images;
                }
                Err(ForgetError::Store(store::StoreError::Conflict)) => {
                    tracing::info!(application = %id, "abandoned eKYC application changed meanwhile; left alone");
                    failed.insert(id);
                }
                Err(e) => {
                    tracing::error!(application = %id, error = %e, "could not clean an abandoned eKYC application");
                    failed.insert(id);
                }
            }
        }
    }
    Ok(done)
}

const ABANDONED_BATCH: i64 = 100;

/// One abandoned application: its data rewritten first (so a member who comes back meanwhile
/// wins and nothing is deleted), then the images it had deleted. Returns the images deleted.
async fn forget_application(app: &App, record: EkycRecord) -> Result<u64, ForgetError> {
    let images: Vec<EkycImage> =
        app.store.ekyc_images(&record.id).await?.into_iter().filter(|i| i.deleted_at.is_none()).collect();
    let mut loaded = ekyc::open_record(app, record)?;
    forget_evidence(&mut loaded.data);
    rewrite(app, &mut loaded).await?;
    let mut deleted = 0;
    let mut error = None;
    for image in images {
        match app.images.delete(&image.id).await {
            Ok(()) => {
                app.store.mark_ekyc_image_deleted(&image.id, app.now()).await?;
                deleted += 1;
            }
            Err(e) => error = Some(e),
        }
    }
    match error {
        Some(e) => Err(e.into()),
        None => Ok(deleted),
    }
}

/// Drops from an abandoned application everything taken from the member's pictures; an
/// application with face attempts left starts over, keeping the count of attempts used.
fn forget_evidence(data: &mut ekyc::EkycData) {
    if !data.reasons.iter().any(|r| r == ekyc::EVIDENCE_EXPIRED) {
        data.reasons.push(ekyc::EVIDENCE_EXPIRED.to_string());
    }
    if !data.app.attempts_exhausted() {
        data.app = EkycApplication { face_attempts: data.app.face_attempts, ..EkycApplication::new() };
        data.secret_question = None;
        data.secret_answer_hash = None;
    }
    data.images.clear();
    data.document_embedding = None;
    data.frontal_embedding = None;
    data.frontal_sha256 = None;
    data.document_frontal_score = None;
    data.frontal_spoof_score = None;
    data.document_reading = None;
    data.instruction_at = None;
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

    #[test]
    fn the_recipient_is_taken_out_of_a_relay_answer() {
        let e = "permanent error (550): 5.1.1 <Taro@Example.com>: Recipient address rejected: taro@example.com";
        assert_eq!(
            without_address(e, "taro@example.com"),
            "permanent error (550): 5.1.1 <<recipient>>: Recipient address rejected: <recipient>"
        );
        assert_eq!(without_address("x 山田@例え.jp y", "山田 <山田@例え.jp>"), "x <recipient> y");
        assert_eq!(without_address("no address here", "a@b.jp"), "no address here");
        assert_eq!(without_address("550 rejected", ""), "550 rejected");
    }
}
