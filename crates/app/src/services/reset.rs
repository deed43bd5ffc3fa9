//! 「ログインでお困りの場合」: password reset by an emailed one-time password. Whether the
//! address has an account is never revealed: every request gets the same answer and a flow.

use domain::email::Email;
use domain::locale::Locale;
use domain::otp;
use domain::password::check_password;
use domain::reset::{PasswordReset, ResetError, ResetState};
use store::FlowUpdate;

use crate::error::{ServiceError, ServiceResult};
use crate::services::flows::{self, Loaded};
use crate::services::{codes, email_index, limits, new_id, open_email, passwords};
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
    limits::check(app, "reset:ip", ip, app.config.limits.reset_per_ip).await?;
    let email = Email::parse(email_input)?;
    limits::check(app, "reset:email", email.as_str(), app.config.limits.reset_per_email).await?;
    let user = app.store.find_user_by_email_index(&email_index(app, &email)).await?;
    let now = app.now();
    let flow = PasswordReset::start(new_id(), user.as_ref().map(|u| u.id.clone()), locale, now);
    let record = flows::new_record(app, KIND, &flow.id, flow.state.as_str(), &flow, now, flow.expires_at)?;
    app.store.insert_flow(&record).await?;
    if user.is_some() {
        issue(app, &flow, email.as_str(), None).await?;
    }
    Ok(flow)
}

async fn issue(app: &App, flow: &PasswordReset, to: &str, update: Option<FlowUpdate<'_>>) -> ServiceResult<()> {
    codes::issue(
        app,
        CODE_PURPOSE,
        &flow.id,
        flow.locale,
        to,
        |code| mail::Template::PasswordResetCode { code, valid_minutes: otp::CODE_TTL.whole_minutes() },
        update,
    )
    .await
}

#[tracing::instrument(skip_all, fields(flow_id = %id))]
pub async fn resend(app: &App, id: &str, ip: &str) -> ServiceResult<PasswordReset> {
    limits::check(app, "reset:ip", ip, app.config.limits.reset_per_ip).await?;
    let loaded = load(app, id).await?;
    codes::check_resend(app, loaded.flow.code_sent_at)?;
    let mut flow = loaded.flow.clone();
    flow.resend_code(app.now())?;
    let record = flows::next_record(app, &loaded.record, flow.state.as_str(), &flow, flow.expires_at)?;
    match &flow.user_id {
        Some(user_id) => {
            let user = app.store.get_user(user_id).await?.ok_or(ServiceError::FlowNotFound)?;
            let to = open_email(app, &user.email_enc)?;
            issue(app, &flow, &to, Some(FlowUpdate { record: &record })).await?;
        }
        None => app.store.update_flow(FlowUpdate { record: &record }).await?,
    }
    Ok(flow)
}

/// Sets the new password when the code is right; ends every session of the member.
#[tracing::instrument(skip_all, fields(flow_id = %id))]
pub async fn complete(app: &App, id: &str, code: &str, new_password: &str, ip: &str) -> ServiceResult<PasswordReset> {
    limits::check(app, "code:ip", ip, app.config.limits.code_per_ip).await?;
    let loaded = load(app, id).await?;
    if loaded.flow.state == ResetState::Completed {
        return Err(ServiceError::WrongStep);
    }
    let user = match &loaded.flow.user_id {
        Some(uid) => app.store.get_user(uid).await?,
        None => None,
    };
    // Check the new password before spending the code, so a weak choice costs no attempt.
    let email = match &user {
        Some(u) => Some(open_email(app, &u.email_enc)?),
        None => None,
    };
    let local = email.as_deref().and_then(|e| e.split('@').next()).unwrap_or_default();
    let inputs: Vec<&str> = email.as_deref().into_iter().chain([local]).filter(|s| !s.is_empty()).collect();
    check_password(new_password, &inputs)?;
    // No account: the same answer a wrong code gets (there is no live code to attempt).
    codes::verify(app, CODE_PURPOSE, id, code, false).await?;
    let user = user.ok_or(ServiceError::CodeWrong { remaining: None })?;
    let hash = passwords::hash(new_password.to_string()).await?;
    let mut flow = loaded.flow.clone();
    flow.complete(app.now())?;
    let record = flows::next_record(app, &loaded.record, flow.state.as_str(), &flow, flow.expires_at)?;
    app.store.set_password(&user.id, &hash, app.now(), Some(FlowUpdate { record: &record })).await?;
    tracing::info!(user_id = %user.id, "password reset");
    Ok(flow)
}
