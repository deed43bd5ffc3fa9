//! One-time codes (ワンタイムパスワード): generated from the OS CSPRNG, stored only as an HMAC
//! bound to their purpose and flow, attempts counted atomically before comparing, compared in
//! constant time, consumed with a conditional update, earlier codes voided on resend. The
//! mail carrying a code is queued in the same transaction (transactional outbox).
//!
//! Besides the attempts of each code, every attempt is counted, before it is checked, against
//! two daily budgets that resends and new flows do not renew: the flow's
//! ([`otp::CODE_ATTEMPTS_PER_FLOW`]) and the account's ([`otp::CODE_ATTEMPTS_PER_ACCOUNT`]).
//! A flow for an address without an account gets a decoy code ([`issue_decoy`]) and so the
//! same answers as a real one.

use domain::locale::Locale;
use domain::otp::{self, CodeValidity};
use rand::RngCore;
use serde::{Deserialize, Serialize};
use store::{CodeAttempt, FlowUpdate, NewCode, NewMail};

use crate::config::Limit;
use crate::error::{ServiceError, ServiceResult};
use crate::services::{limits, new_id};
use crate::state::App;

/// A queued mail as sealed in the outbox.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct MailPayload {
    pub to: String,
    pub subject: String,
    pub text: String,
    /// A mail carrying a one-time code: when the code expires (Unix seconds). The worker never
    /// sends it later; the member asks for a new code (「メールが届かない場合」).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires_at: Option<i64>,
}

pub const OUTBOX_AAD: &str = "mail_outbox";

fn code_mac(app: &App, purpose: &str, subject: &str, code: &str) -> Vec<u8> {
    app.keys.mac("otp", format!("{purpose}:{subject}:{code}").as_bytes())
}

/// Renders and seals a mail for the outbox.
pub fn sealed_mail(app: &App, template: &mail::Template, locale: Locale, to: &str) -> ServiceResult<NewMail> {
    sealed_mail_until(app, template, locale, to, None)
}

/// [`sealed_mail`] of a mail that is worthless after `expires_at` (its code expires then).
fn sealed_mail_until(
    app: &App,
    template: &mail::Template,
    locale: Locale,
    to: &str,
    expires_at: Option<time::OffsetDateTime>,
) -> ServiceResult<NewMail> {
    let rendered =
        mail::render(template, locale, to).map_err(|e| ServiceError::Internal(format!("mail template: {e}")))?;
    let payload = MailPayload {
        to: rendered.to,
        subject: rendered.subject,
        text: rendered.text,
        expires_at: expires_at.map(|t| t.unix_timestamp()),
    };
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
    store_code(app, purpose, subject, locale, to, template_for, flow, true).await
}

/// [`issue`] for an address without an account: the same work and the same stored code
/// record, whose MAC is random (it matches no code), and no mail. Attempts against it are
/// counted like against a real code, so the flow answers `code_wrong` until its attempts are
/// spent, then `code_exhausted` — exactly like a flow of a real account.
#[tracing::instrument(skip_all, fields(purpose = %purpose, flow_id = %subject))]
pub async fn issue_decoy(
    app: &App,
    purpose: &str,
    subject: &str,
    locale: Locale,
    to: &str,
    template_for: impl FnOnce(String) -> mail::Template,
    flow: Option<FlowUpdate<'_>>,
) -> ServiceResult<()> {
    store_code(app, purpose, subject, locale, to, template_for, flow, false).await
}

#[allow(clippy::too_many_arguments)]
async fn store_code(
    app: &App,
    purpose: &str,
    subject: &str,
    locale: Locale,
    to: &str,
    template_for: impl FnOnce(String) -> mail::Template,
    flow: Option<FlowUpdate<'_>>,
    deliver: bool,
) -> ServiceResult<()> {
    let code = otp::generate_code(&mut rand::rngs::OsRng);
    let now = app.now();
    let validity = CodeValidity::starting(now);
    let mut code_mac = code_mac(app, purpose, subject, &code);
    if !deliver {
        rand::rngs::OsRng.fill_bytes(&mut code_mac);
    }
    let new_code = NewCode {
        id: new_id(),
        purpose: purpose.to_string(),
        subject: subject.to_string(),
        code_mac,
        created_at: validity.issued_at,
        expires_at: validity.expires_at,
    };
    // A decoy's mail is rendered and sealed too (the same work), then dropped.
    let mail = sealed_mail_until(app, &template_for(code), locale, to, Some(validity.expires_at));
    let mail = if deliver { Some(mail?) } else { None };
    app.store.issue_code(&new_code, mail.as_ref(), flow).await?;
    if deliver {
        metrics::counter!("mimoto_codes_issued_total", "purpose" => purpose.to_string()).increment(1);
        app.mail_wake.notify_one();
    }
    Ok(())
}

/// The account key of the code budget for an email address (normalized), whether or not it
/// has an account. Each purpose has its own budget: a registration's attempts do not show in
/// the password reset of the same address (which would tell that it has an account).
pub fn account_of_email(email: &str) -> String {
    format!("email:{email}")
}

/// Counts one attempt, before it is checked, against the daily budgets of the flow
/// (`subject`, across resends) and of the `account`; [`ServiceError::CodeBudgetSpent`] once
/// either is spent. Keys are MACs (`limits::check`), never addresses in clear.
async fn spend_budget(app: &App, purpose: &str, subject: &str, account: &str) -> ServiceResult<()> {
    let window = otp::CODE_BUDGET_WINDOW.whole_seconds();
    let budgets = [
        (format!("code:flow:{purpose}"), subject, otp::CODE_ATTEMPTS_PER_FLOW),
        (format!("code:account:{purpose}"), account, otp::CODE_ATTEMPTS_PER_ACCOUNT),
    ];
    for (name, key, max) in budgets {
        match limits::check(app, &name, key, Limit::new(i64::from(max), window)).await {
            Err(ServiceError::RateLimited { .. }) => {
                tracing::warn!(budget = %name, "one-time code budget spent");
                return Err(ServiceError::CodeBudgetSpent);
            }
            other => other?,
        }
    }
    Ok(())
}

/// A right answer to the live code of a flow, not used up yet: the caller uses it up in the
/// transaction that does the step (`FlowUpdate::new(..).consuming(&v.code_id, v.at)`), so an
/// outage leaves either the step done or the code still valid.
#[derive(Debug)]
#[must_use = "a verified code is used up by the step's flow update"]
pub struct VerifiedCode {
    pub code_id: String,
    pub at: time::OffsetDateTime,
}

/// Checks `input` against the live code of (`purpose`, `subject`), after counting the attempt
/// against the flow's and the `account`'s daily budgets (see [`account_of_email`]).
/// `reveal_remaining` controls whether a wrong answer tells how many tries are left.
#[tracing::instrument(skip_all, fields(purpose = %purpose, flow_id = %subject))]
pub async fn verify(
    app: &App,
    purpose: &str,
    subject: &str,
    account: &str,
    input: &str,
    reveal_remaining: bool,
) -> ServiceResult<VerifiedCode> {
    let code = otp::normalize_code(input).ok_or(ServiceError::CodeFormat)?;
    spend_budget(app, purpose, subject, account).await?;
    let max = otp::MAX_ATTEMPTS as i32;
    let now = app.now();
    match app.store.attempt_code(purpose, subject, now, max).await? {
        CodeAttempt::Counted(record) => {
            if right_code(app, purpose, subject, &code, &record.code_mac) {
                return Ok(VerifiedCode { code_id: record.id, at: now });
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

/// The retry of a step whose answer was lost (an outage, a dropped connection): `input` is
/// checked, after counting it against the same budgets, against the code the step used up,
/// while that code is within its validity. `Ok` means the step is done and may be answered
/// again; anything else answers like a wrong code.
#[tracing::instrument(skip_all, fields(purpose = %purpose, flow_id = %subject))]
pub async fn verify_used(app: &App, purpose: &str, subject: &str, account: &str, input: &str) -> ServiceResult<()> {
    let code = otp::normalize_code(input).ok_or(ServiceError::CodeFormat)?;
    spend_budget(app, purpose, subject, account).await?;
    used_matches(app, purpose, subject, &code).await
}

/// [`verify_used`] for an attempt already counted (by [`verify`], which found no live code
/// because a twin of the request used it meanwhile).
pub async fn used_matches(app: &App, purpose: &str, subject: &str, input: &str) -> ServiceResult<()> {
    let code = otp::normalize_code(input).ok_or(ServiceError::CodeFormat)?;
    match app.store.used_code(purpose, subject, app.now()).await? {
        Some(record) if right_code(app, purpose, subject, &code, &record.code_mac) => Ok(()),
        _ => Err(ServiceError::CodeWrong { remaining: None }),
    }
}

/// Constant-time comparison under every configured MAC key.
fn right_code(app: &App, purpose: &str, subject: &str, code: &str, code_mac: &[u8]) -> bool {
    app.keys.verify_mac("otp", format!("{purpose}:{subject}:{code}").as_bytes(), code_mac)
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
