//! 「ログインでお困りの場合」: password reset by an emailed one-time password. Whether the
//! address has an account is never revealed: every request gets the same answer and a flow,
//! and every later step too — an address without an account gets a decoy code (never mailed,
//! matching nothing, counted like a real one, also on resend), the password rules take the
//! typed address, and the code budgets are keyed by it.

use domain::locale::Locale;
use domain::otp;
use domain::password::check_password;
use domain::reset::{PasswordReset, ResetError, ResetState};
use store::{FlowUpdate, StoreError};

use crate::error::{ServiceError, ServiceResult};
use crate::services::flows::{self, Loaded};
use crate::services::limits::LoginGuard;
use crate::services::{audit, auth, codes, find_user_by_email, limits, new_id, open_email, passwords};
use crate::state::App;

pub const KIND: &str = "password_reset";
const CODE_PURPOSE: &str = "password_reset";

impl From<ResetError> for ServiceError {
    fn from(e: ResetError) -> Self {
        match e {
            ResetError::Expired => ServiceError::FlowExpired,
            ResetError::AlreadyCompleted => ServiceError::WrongStep,
        }
    }
}

#[tracing::instrument(skip_all, fields(flow_id = %id))]
pub async fn load(app: &App, id: &str) -> ServiceResult<Loaded<PasswordReset>> {
    flows::load(app, KIND, id).await
}

#[tracing::instrument(skip_all)]
pub async fn start(app: &App, email_input: &str, locale: Locale, ip: &str) -> ServiceResult<PasswordReset> {
    limits::check_ip(app, "reset:ip", ip, app.config.limits.reset_per_ip).await?;
    let email = crate::services::deliverable_email(app, email_input)?;
    limits::check(app, "reset:email", email.as_str(), app.config.limits.reset_per_email).await?;
    let user = find_user_by_email(app, &email).await?;
    let now = app.now();
    let flow =
        PasswordReset::start(new_id(), user.as_ref().map(|u| u.id.clone()), email.as_str().to_string(), locale, now);
    let record = flows::new_record(app, KIND, &flow.id, flow.state.as_str(), &flow, now, flow.expires_at)?;
    app.store.insert_flow(&record).await?;
    issue(app, &flow, email.as_str(), user.is_some(), None).await?;
    Ok(flow)
}

/// Mails a code to the account (`real`), or stores a decoy code for an address without one.
async fn issue(
    app: &App,
    flow: &PasswordReset,
    to: &str,
    real: bool,
    update: Option<FlowUpdate<'_>>,
) -> ServiceResult<()> {
    let template = |code| mail::Template::PasswordResetCode { code, valid_minutes: otp::CODE_TTL.whole_minutes() };
    if real {
        codes::issue(app, CODE_PURPOSE, &flow.id, flow.locale, to, template, update).await
    } else {
        codes::issue_decoy(app, CODE_PURPOSE, &flow.id, flow.locale, to, template, update).await
    }
}

/// The key of the account's code budget: the typed address, account or not (the account
/// itself in flows from before the address was kept).
fn budget_account(flow: &PasswordReset) -> String {
    match (&flow.email, &flow.user_id) {
        (Some(email), _) => codes::account_of_email(email),
        (None, Some(user_id)) => format!("user:{user_id}"),
        (None, None) => format!("flow:{}", flow.id),
    }
}

#[tracing::instrument(skip_all, fields(flow_id = %id))]
pub async fn resend(app: &App, id: &str, ip: &str) -> ServiceResult<PasswordReset> {
    limits::check_ip(app, "reset:ip", ip, app.config.limits.reset_per_ip).await?;
    let loaded = load(app, id).await?;
    codes::check_resend(app, loaded.flow.code_sent_at)?;
    let mut flow = loaded.flow.clone();
    flow.resend_code(app.now())?;
    let record = flows::next_record(app, &loaded.record, flow.state.as_str(), &flow, flow.expires_at)?;
    // The typed address is the account's (it was found by it): the same work either way.
    let to = match (&flow.email, &flow.user_id) {
        (Some(typed), _) => typed.clone(),
        (None, Some(user_id)) => {
            let user = app.store.get_user(user_id).await?.ok_or(ServiceError::FlowNotFound)?;
            open_email(app, &user.email_enc)?
        }
        (None, None) => String::new(),
    };
    issue(app, &flow, &to, flow.user_id.is_some(), Some(FlowUpdate::new(&record))).await?;
    Ok(flow)
}

/// Sets the new password when the code is right; ends every session of the member.
///
/// Using the code up and setting the password are one transaction; a retry of a request that
/// went through (its answer was lost) answers the same while the code is within its validity.
#[tracing::instrument(skip_all, fields(flow_id = %id))]
pub async fn complete(app: &App, id: &str, code: &str, new_password: &str, ip: &str) -> ServiceResult<PasswordReset> {
    limits::check_ip(app, "code:ip", ip, app.config.limits.code_per_ip).await?;
    let loaded = load(app, id).await?;
    // The rules take the typed address, so they are the same whether or not it has an
    // account (flows from before it was kept: the account's address).
    let email = match (&loaded.flow.email, &loaded.flow.user_id) {
        (Some(typed), _) => Some(typed.clone()),
        (None, Some(uid)) => match app.store.get_user(uid).await? {
            Some(u) => Some(open_email(app, &u.email_enc)?),
            None => None,
        },
        (None, None) => None,
    };
    if loaded.flow.state == ResetState::Completed {
        codes::verify_used(app, CODE_PURPOSE, id, &budget_account(&loaded.flow), code).await?;
        return already_completed(app, loaded.flow, new_password, email.as_deref()).await;
    }
    // Check the new password before spending the code, so a weak choice costs no attempt.
    let local = email.as_deref().and_then(|e| e.split('@').next()).unwrap_or_default();
    let inputs: Vec<&str> = email.as_deref().into_iter().chain([local]).filter(|s| !s.is_empty()).collect();
    check_password(new_password, &inputs)?;
    // No account: the decoy code matches nothing, so this answers like any wrong code. The
    // account is read only after a right code, so both cases do the same work until then.
    let verified = match codes::verify(app, CODE_PURPOSE, id, &budget_account(&loaded.flow), code, false).await {
        Ok(v) => v,
        // A twin of this request may have used the code meanwhile: answer as it did.
        Err(e @ (ServiceError::CodeWrong { .. } | ServiceError::CodeExpired | ServiceError::CodeExhausted)) => {
            let now = load(app, id).await?;
            if now.flow.state == ResetState::Completed && codes::used_matches(app, CODE_PURPOSE, id, code).await.is_ok()
            {
                return already_completed(app, now.flow, new_password, email.as_deref()).await;
            }
            return Err(e);
        }
        Err(e) => return Err(e),
    };
    let user = match &loaded.flow.user_id {
        Some(uid) => app.store.get_user(uid).await?,
        None => None,
    };
    let user = user.ok_or(ServiceError::CodeWrong { remaining: None })?;
    let hash = passwords::hash(new_password.to_string()).await?;
    let mut flow = loaded.flow.clone();
    flow.complete(app.now())?;
    let record = flows::next_record(app, &loaded.record, flow.state.as_str(), &flow, flow.expires_at)?;
    let update = FlowUpdate::new(&record).consuming(&verified.code_id, verified.at);
    match app.store.set_password(&user.id, &hash, app.now(), Some(update)).await {
        Ok(()) => {}
        // The same code in a request sent twice at once: the loser answers like the winner.
        Err(StoreError::Conflict) => {
            let now = load(app, id).await?;
            return match now.flow.state {
                ResetState::Completed => already_completed(app, now.flow, new_password, email.as_deref()).await,
                _ => Err(ServiceError::Conflict),
            };
        }
        Err(e) => return Err(e.into()),
    }
    // The way out of a login lock-out: the account's failed logins are forgotten (`email` is
    // the account's address here: the right code belonged to its flow).
    if let Some(account) = &email {
        LoginGuard::forget(app, auth::LOGIN_SCOPE, account).await?;
    }
    audit::member(app, Some(&user.id), audit::actions::PASSWORD_RESET, None, ip).await?;
    tracing::info!(user_id = %user.id, "password reset");
    Ok(flow)
}

/// The answer to a reset completed before (a retry whose first answer was lost, or a twin of
/// the request): done, if `new_password` is the password that was set — another one was
/// never set, and the member must not believe it was — and the login lock-out is forgotten
/// again (it may not have been, if the first request failed right after the commit).
async fn already_completed(
    app: &App,
    flow: PasswordReset,
    new_password: &str,
    email: Option<&str>,
) -> ServiceResult<PasswordReset> {
    let user = match &flow.user_id {
        Some(uid) => app.store.get_user(uid).await?,
        None => None,
    };
    let user = user.ok_or(ServiceError::WrongStep)?;
    if !passwords::verify(new_password.to_string(), Some(user.password_hash)).await? {
        return Err(ServiceError::WrongStep);
    }
    if let Some(account) = email {
        LoginGuard::forget(app, auth::LOGIN_SCOPE, account).await?;
    }
    Ok(flow)
}
