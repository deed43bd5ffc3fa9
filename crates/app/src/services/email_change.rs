//! 「アカウント設定」: a new email address. The member types the new address and their current
//! password; a one-time password goes to the NEW address (the codes machinery of registration:
//! CSPRNG, stored as a MAC, constant-time, attempts budgeted before the check, expiry). With
//! the right code the sealed address and its blind index are replaced in the transaction that
//! uses the code up, and a notice goes to the OLD address.
//!
//! An address another account has is refused like registration refuses it (「既に登録されて
//! います」), behind the same per-address limit and, here, the member's current password: it
//! reveals nothing registration does not.

use domain::locale::Locale;
use domain::otp;
use serde::{Deserialize, Serialize};
use store::{FlowUpdate, StoreError};
use time::OffsetDateTime;

use crate::error::{ServiceError, ServiceResult};
use crate::services::auth::Member;
use crate::services::flows::{self, Loaded};
use crate::services::settings::{self, member_locale, notice_time};
use crate::services::{
    audit, codes, deliverable_email, email_index, find_user_by_email, limits, new_id, open_email, seal_email,
};
use crate::state::App;

pub const KIND: &str = "email_change";
const CODE_PURPOSE: &str = "email_change";
const CODE_SENT: &str = "code_sent";
const COMPLETED: &str = "completed";

/// An email change awaiting its code (sealed in the flows table: it holds the new address).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct EmailChange {
    pub id: String,
    pub user_id: String,
    /// The new address, normalized.
    pub new_email: String,
    pub locale: Locale,
    pub completed: bool,
    #[serde(with = "time::serde::rfc3339")]
    pub code_sent_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    pub expires_at: OffsetDateTime,
}

impl EmailChange {
    fn state(&self) -> &'static str {
        if self.completed {
            COMPLETED
        } else {
            CODE_SENT
        }
    }
}

/// How long an email change may take (codes are resent within it).
const FLOW_TTL: time::Duration = time::Duration::hours(1);

/// The member's own email change `id` (another member's answers like none).
#[tracing::instrument(skip_all, fields(flow_id = %id))]
pub async fn load(app: &App, member: &Member, id: &str) -> ServiceResult<Loaded<EmailChange>> {
    let loaded: Loaded<EmailChange> = flows::load(app, KIND, id).await?;
    if !crate::crypto::ct_eq_str(&loaded.flow.user_id, &member.user.id) {
        return Err(ServiceError::FlowNotFound);
    }
    Ok(loaded)
}

fn template(code: String) -> mail::Template {
    mail::Template::EmailChangeCode { code, valid_minutes: otp::CODE_TTL.whole_minutes() }
}

/// 「確認コードを送信」: checks the new address and the current password, then mails a code to
/// the new address.
#[tracing::instrument(skip_all, fields(user_id = %member.user.id))]
pub async fn start(app: &App, member: &Member, new_email: &str, current: &str, ip: &str) -> ServiceResult<EmailChange> {
    limits::check_ip(app, "settings:ip", ip, app.config.limits.login_per_ip).await?;
    let email = deliverable_email(app, new_email)?;
    // The limit registration puts on one address (which tells, too, that it is taken).
    limits::check(app, "register:email", email.as_str(), app.config.limits.register_per_email).await?;
    settings::check_current_password(app, member, current, ip).await?;
    if find_user_by_email(app, &email).await?.is_some() {
        return Err(ServiceError::EmailTaken);
    }
    let now = app.now();
    let flow = EmailChange {
        id: new_id(),
        user_id: member.user.id.clone(),
        new_email: email.as_str().to_string(),
        locale: member_locale(member),
        completed: false,
        code_sent_at: now,
        expires_at: now + FLOW_TTL,
    };
    let record = flows::new_record(app, KIND, &flow.id, flow.state(), &flow, now, flow.expires_at)?;
    app.store.insert_flow(&record).await?;
    codes::issue(app, CODE_PURPOSE, &flow.id, flow.locale, &flow.new_email, template, None).await?;
    audit::member(app, Some(&member.user.id), audit::actions::EMAIL_CHANGE_REQUESTED, None, ip).await?;
    Ok(flow)
}

/// 「メールが届かない場合」: a new code to the new address; the earlier one stops working.
#[tracing::instrument(skip_all, fields(flow_id = %id))]
pub async fn resend(app: &App, member: &Member, id: &str, ip: &str) -> ServiceResult<EmailChange> {
    limits::check_ip(app, "settings:ip", ip, app.config.limits.login_per_ip).await?;
    let loaded = load(app, member, id).await?;
    if loaded.flow.completed {
        return Err(ServiceError::WrongStep);
    }
    codes::check_resend(app, loaded.flow.code_sent_at)?;
    let mut flow = loaded.flow.clone();
    flow.code_sent_at = app.now();
    let record = flows::next_record(app, &loaded.record, flow.state(), &flow, flow.expires_at)?;
    codes::issue(app, CODE_PURPOSE, &flow.id, flow.locale, &flow.new_email, template, Some(FlowUpdate::new(&record)))
        .await?;
    Ok(flow)
}

/// 「変更する」: with the right code the new address replaces the old one (and a notice goes to
/// the old one). Attempts are counted against the change's and the member's daily budgets.
#[tracing::instrument(skip_all, fields(flow_id = %id))]
pub async fn verify(app: &App, member: &Member, id: &str, code: &str, ip: &str) -> ServiceResult<EmailChange> {
    limits::check_ip(app, "code:ip", ip, app.config.limits.code_per_ip).await?;
    let loaded = load(app, member, id).await?;
    if loaded.flow.completed {
        return Err(ServiceError::WrongStep);
    }
    let account = format!("user:{}", member.user.id);
    let verified = codes::verify(app, CODE_PURPOSE, id, &account, code, true).await?;
    let email = deliverable_email(app, &loaded.flow.new_email)?;
    let old_email = open_email(app, &member.user.email_enc)?;
    let mut flow = loaded.flow.clone();
    flow.completed = true;
    let record = flows::next_record(app, &loaded.record, flow.state(), &flow, flow.expires_at)?;
    let update = FlowUpdate::new(&record).consuming(&verified.code_id, verified.at);
    let sealed = seal_email(app, &email)?;
    // Other sessions end with the old address (whoever else was signed in must log in again).
    let keep = &member.session.id_hash;
    match app.store.set_user_email(&member.user.id, &email_index(app, &email), &sealed, Some(update), keep).await {
        Ok(()) => {}
        // Taken meanwhile by a registration (or another change).
        Err(StoreError::Duplicate) => return Err(ServiceError::EmailTaken),
        Err(StoreError::Conflict) => return Err(ServiceError::Conflict),
        Err(e) => return Err(e.into()),
    }
    audit::member(app, Some(&member.user.id), audit::actions::EMAIL_CHANGED, None, ip).await?;
    tracing::info!(user_id = %member.user.id, "email address changed");
    settings::notify(
        app,
        mail::Template::EmailChanged { at: notice_time(app.now()) },
        member_locale(member),
        &old_email,
    )
    .await?;
    Ok(flow)
}
