//! One-time codes (ワンタイムパスワード): generated from the OS CSPRNG, stored only as an HMAC
//! bound to their purpose and flow, attempts counted atomically before comparing, compared in
//! constant time, consumed with a conditional update, earlier codes voided on resend. The
//! mail carrying a code is queued in the same transaction (transactional outbox).

use domain::locale::Locale;
use domain::otp::{self, CodeValidity};
use serde::{Deserialize, Serialize};
use store::{CodeAttempt, FlowUpdate, NewCode, NewMail};

use crate::error::{ServiceError, ServiceResult};
use crate::services::new_id;
use crate::state::App;

/// A queued mail as sealed in the outbox.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct MailPayload {
    pub to: String,
    pub subject: String,
    pub text: String,
}

pub const OUTBOX_AAD: &str = "mail_outbox";

fn code_mac(app: &App, purpose: &str, subject: &str, code: &str) -> Vec<u8> {
    app.keys.mac("otp", format!("{purpose}:{subject}:{code}").as_bytes())
}

/// Renders and seals a mail for the outbox.
pub fn sealed_mail(app: &App, template: &mail::Template, locale: Locale, to: &str) -> ServiceResult<NewMail> {
    let rendered =
        mail::render(template, locale, to).map_err(|e| ServiceError::Internal(format!("mail template: {e}")))?;
    let payload = MailPayload { to: rendered.to, subject: rendered.subject, text: rendered.text };
    Ok(NewMail { id: new_id(), payload: app.keys.seal_json(OUTBOX_AAD, &payload)?, created_at: app.now() })
}

/// Issues a fresh code for (`purpose`, `subject`), voiding earlier ones, queues the mail
/// made by `template_for(code)` and applies `flow` — all in one transaction.
#[tracing::instrument(skip_all, fields(purpose = %purpose, flow_id = %subject))]
pub async fn issue(
    app: &App,
    purpose: &str,
    subject: &str,
    locale: Locale,
    to: &str,
    template_for: impl FnOnce(String) -> mail::Template,
    flow: Option<FlowUpdate<'_>>,
) -> ServiceResult<()> {
    let code = otp::generate_code(&mut rand::rngs::OsRng);
    let now = app.now();
    let validity = CodeValidity::starting(now);
    let new_code = NewCode {
        id: new_id(),
        purpose: purpose.to_string(),
        subject: subject.to_string(),
        code_mac: code_mac(app, purpose, subject, &code),
        created_at: validity.issued_at,
        expires_at: validity.expires_at,
    };
    let mail = sealed_mail(app, &template_for(code), locale, to)?;
    app.store.issue_code(&new_code, &mail, flow).await?;
    metrics::counter!("mimoto_codes_issued_total", "purpose" => purpose.to_string()).increment(1);
    app.mail_wake.notify_one();
    Ok(())
}

/// Checks `input` against the live code of (`purpose`, `subject`) and consumes it.
/// `reveal_remaining` controls whether a wrong answer tells how many tries are left.
#[tracing::instrument(skip_all, fields(purpose = %purpose, flow_id = %subject))]
pub async fn verify(app: &App, purpose: &str, subject: &str, input: &str, reveal_remaining: bool) -> ServiceResult<()> {
    let code = otp::normalize_code(input).ok_or(ServiceError::CodeFormat)?;
    let max = otp::MAX_ATTEMPTS as i32;
    let now = app.now();
    match app.store.attempt_code(purpose, subject, now, max).await? {
        CodeAttempt::Counted(record) => {
            if app.keys.verify_mac("otp", format!("{purpose}:{subject}:{code}").as_bytes(), &record.code_mac)
                && app.store.consume_code(&record.id, now).await?
            {
                return Ok(());
            }
            let remaining = max - record.attempts;
            if remaining <= 0 {
                return Err(ServiceError::CodeExhausted);
            }
            Err(ServiceError::CodeWrong { remaining: reveal_remaining.then_some(remaining) })
        }
        CodeAttempt::Expired => Err(ServiceError::CodeExpired),
        CodeAttempt::Exhausted => Err(ServiceError::CodeExhausted),
        CodeAttempt::Missing => Err(ServiceError::CodeWrong { remaining: None }),
    }
}

/// Whether a new code may be sent now, given when the last one was.
pub fn check_resend(app: &App, last_sent: time::OffsetDateTime) -> ServiceResult<()> {
    let validity = CodeValidity::starting(last_sent);
    if validity.can_resend(app.now()) {
        Ok(())
    } else {
        let wait = (last_sent + otp::RESEND_COOLDOWN - app.now()).whole_seconds().max(1);
        Err(ServiceError::ResendTooSoon { wait_secs: wait })
    }
}
