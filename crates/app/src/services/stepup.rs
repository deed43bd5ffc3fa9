//! F5 step-up: before health data (健診結果・お薬履歴・医療費通知) is shown in a session, the
//! member answers the secret question set in 健診・医療アクセス認証 (F4).
//!
//! - Only members whose F4 is done (completed or approved) have health data to open.
//! - The answer is normalized like when it was set (width, case, spaces) and checked against
//!   the argon2id hash kept in the sealed eKYC application.
//! - A correct answer opens health data in *that session* for [`VALID_FOR`]; other sessions
//!   (another phone, the native app) ask again.
//! - Wrong answers count per member, across sessions: after [`MAX_FAILURES`] nothing is checked
//!   for [`LOCK`], and the member is pointed to the customer center. A correct answer forgets
//!   the count. Client IPs are rate limited as well (`limits.step_up_per_ip`).
//! - Each answer is counted atomically *before* the (slow) argon2 check, like the one-time
//!   codes: concurrent answers cannot all pass the lock check, so however many arrive at once,
//!   at most [`MAX_FAILURES`] are ever checked before the lock.

use time::{Duration, OffsetDateTime};

use store::StepUpAttempt;

use crate::error::{ServiceError, ServiceResult};
use crate::services::auth::Member;
use crate::services::{audit, consents, ekyc, limits, passwords};
use crate::state::App;
use domain::consent::ConsentDoc;

/// Wrong answers before the lock.
pub const MAX_FAILURES: i32 = 5;
/// How long the secret question stays locked after too many wrong answers.
pub const LOCK: Duration = Duration::hours(1);
/// How long a correct answer opens health data in its session.
pub const VALID_FOR: Duration = Duration::minutes(15);
/// Longest answer checked (F4 refuses longer ones when the answer is set).
const MAX_ANSWER_CHARS: usize = 100;

/// Where the member stands with the secret question in this session.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StepUp {
    /// Health data is open in this session until then.
    Open { until: OffsetDateTime },
    /// Ask the question; `remaining` wrong answers before the lock.
    Ask { question: String, remaining: i32 },
    /// Too many wrong answers: nothing is checked before then.
    Locked { until: OffsetDateTime },
}

/// The secret question and answer hash of the member's completed F4, or why there is none.
async fn secret(app: &App, member: &Member) -> ServiceResult<(String, String)> {
    let Some(loaded) = ekyc::current(app, member).await? else {
        return Err(ServiceError::HealthNotUnlocked);
    };
    if !loaded.data.app.is_authenticated() {
        return Err(ServiceError::HealthNotUnlocked);
    }
    match (loaded.data.secret_question, loaded.data.secret_answer_hash) {
        (Some(q), Some(h)) => Ok((q, h)),
        _ => Err(ServiceError::Internal("authenticated eKYC application without a secret".into())),
    }
}

async fn lock_of(app: &App, member: &Member, now: OffsetDateTime) -> ServiceResult<(Option<OffsetDateTime>, i32)> {
    Ok(match app.store.step_up_failures(&member.user.id).await? {
        Some(f) => match f.locked_until {
            Some(until) if until > now => (Some(until), 0),
            Some(_) => (None, MAX_FAILURES),
            None => (None, (MAX_FAILURES - f.failures).max(1)),
        },
        None => (None, MAX_FAILURES),
    })
}

/// Where the member stands in this session (F4 must be done).
#[tracing::instrument(skip_all, fields(user_id = %member.user.id))]
pub async fn status(app: &App, member: &Member) -> ServiceResult<StepUp> {
    let (question, _) = secret(app, member).await?;
    // F5 shows health data only with the consent to receive it (#16 point 8).
    consents::require(app, member, ConsentDoc::HealthData).await?;
    let now = app.now();
    if let Some(until) = member.session.step_up_until.filter(|u| *u > now) {
        return Ok(StepUp::Open { until });
    }
    Ok(match lock_of(app, member, now).await? {
        (Some(until), _) => StepUp::Locked { until },
        (None, remaining) => StepUp::Ask { question, remaining },
    })
}

/// Health data may be shown in this session: F4 done and the question answered recently.
#[tracing::instrument(skip_all, fields(user_id = %member.user.id))]
pub async fn require(app: &App, member: &Member) -> ServiceResult<()> {
    match status(app, member).await? {
        StepUp::Open { .. } => Ok(()),
        StepUp::Ask { .. } | StepUp::Locked { .. } => Err(ServiceError::StepUpRequired),
    }
}

/// Checks the member's answer; a correct one opens health data in this session until the
/// returned instant.
#[tracing::instrument(skip_all, fields(user_id = %member.user.id))]
pub async fn answer(app: &App, member: &Member, answer: &str, client_ip: &str) -> ServiceResult<OffsetDateTime> {
    let (_, hash) = secret(app, member).await?;
    consents::require(app, member, ConsentDoc::HealthData).await?;
    limits::check_ip(app, "step_up:ip", client_ip, app.config.limits.step_up_per_ip).await?;
    let now = app.now();
    if let (Some(until), _) = lock_of(app, member, now).await? {
        return Err(ServiceError::StepUpLocked { until: until.unix_timestamp() });
    }
    let normalized = domain::ekyc::normalize_secret_answer(answer).ok_or(ServiceError::StepUpAnswerEmpty)?;
    // Count the answer before checking it: the lock above is only a read, and answers sent
    // together would all pass it while the check runs.
    let failures = match app.store.count_step_up_answer(&member.user.id, now, MAX_FAILURES, now + LOCK).await? {
        StepUpAttempt::Counted(failures) => failures,
        StepUpAttempt::Locked { until } => return Err(ServiceError::StepUpLocked { until: until.unix_timestamp() }),
    };
    // An answer longer than any that can be set is wrong; it is not worth hashing.
    let correct = normalized.chars().count() <= MAX_ANSWER_CHARS && passwords::verify(normalized, Some(hash)).await?;
    let user = Some(member.user.id.as_str());
    if correct {
        let until = now + VALID_FOR;
        app.store.open_step_up(&member.user.id, &member.session.id_hash, until).await?;
        audit::member(app, user, audit::actions::STEP_UP_OPENED, None, client_ip).await?;
        return Ok(until);
    }
    metrics::counter!("mimoto_step_up_failures_total").increment(1);
    audit::member(app, user, audit::actions::STEP_UP_FAILED, None, client_ip).await?;
    match failures.locked_until {
        Some(until) if until > now => {
            tracing::warn!("secret question locked after {} wrong answers", failures.failures);
            Err(ServiceError::StepUpLocked { until: until.unix_timestamp() })
        }
        _ => Err(ServiceError::StepUpWrong { remaining: (MAX_FAILURES - failures.failures).max(1) }),
    }
}

/// Closes health data in this session again (「ロック」 / logout of the health area).
#[tracing::instrument(skip_all, fields(user_id = %member.user.id))]
pub async fn close(app: &App, member: &Member) -> ServiceResult<()> {
    app.store.set_session_step_up(&member.session.id_hash, None).await?;
    Ok(())
}
