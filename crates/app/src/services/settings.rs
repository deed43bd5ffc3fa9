//! 「アカウント設定」 (#16 point 5): the signed-in member changes their password, sees their
//! active sessions (browsers and apps) and ends one or all of them. Security notices go to the
//! member by mail through the outbox.
//!
//! Sessions are shown under an opaque public id — a MAC of the stored session hash — so neither
//! the token nor its stored hash ever leaves the server.

use domain::locale::Locale;
use domain::password::check_password;
use time::OffsetDateTime;

use crate::error::{ServiceError, ServiceResult};
use crate::services::auth::Member;
use crate::services::codes::sealed_mail;
use crate::services::limits::{self, LoginGuard};
use crate::services::{audit, open_email, passwords};
use crate::state::App;

/// The scope of the budgets of current-password checks ([`LoginGuard`], per account and
/// client, a growing delay and a daily ceiling per account).
pub const PASSWORD_CHECK_SCOPE: &str = "settings-password";

/// The time of a notice mail, in Japan time: 2026/11/30 09:15.
pub fn notice_time(t: OffsetDateTime) -> String {
    let at = t.to_offset(time::macros::offset!(+9));
    format!("{}/{:02}/{:02} {:02}:{:02}", at.year(), u8::from(at.month()), at.day(), at.hour(), at.minute())
}

/// The member's language for mails (and pages): their stored preference.
pub fn member_locale(member: &Member) -> Locale {
    Locale::parse(&member.user.locale).unwrap_or_default()
}

/// Queues a security notice to `to`. The change is done already: a notice that cannot be
/// queued is logged, not worth undoing the change for.
pub(crate) async fn notify(app: &App, template: mail::Template, locale: Locale, to: &str) -> ServiceResult<()> {
    let mail = sealed_mail(app, &template, locale, to)?;
    match app.store.enqueue_mail(&mail).await {
        Ok(()) => app.mail_wake.notify_one(),
        Err(e) => tracing::warn!("a security notice mail could not be queued: {e}"),
    }
    Ok(())
}

/// Checks the member's current password against the budgets of [`PASSWORD_CHECK_SCOPE`]
/// (counted before the check; a wrong one feeds the account's delay and ceiling).
pub(crate) async fn check_current_password(app: &App, member: &Member, current: &str, ip: &str) -> ServiceResult<()> {
    let guard = LoginGuard::before(app, PASSWORD_CHECK_SCOPE, &member.user.id, ip).await?;
    if passwords::verify(current.to_string(), Some(member.user.password_hash.clone())).await? {
        guard.succeeded(app).await?;
        Ok(())
    } else {
        guard.failed(app).await?;
        audit::member(app, Some(&member.user.id), audit::actions::PASSWORD_CHANGE_FAILED, None, ip).await?;
        Err(ServiceError::CurrentPasswordWrong)
    }
}

/// 「パスワードを変更する」: the current password is required; the new one follows the password
/// policy. Every other session of the member ends; the one the change is made in stays. A
/// notice goes to the member's address.
#[tracing::instrument(skip_all, fields(user_id = %member.user.id))]
pub async fn change_password(app: &App, member: &Member, current: &str, new: &str, ip: &str) -> ServiceResult<()> {
    limits::check_ip(app, "settings:ip", ip, app.config.limits.login_per_ip).await?;
    let email = open_email(app, &member.user.email_enc)?;
    // The policy first: a weak choice costs no attempt at the current password.
    let local = email.split('@').next().unwrap_or_default();
    check_password(new, &[email.as_str(), local])?;
    check_current_password(app, member, current, ip).await?;
    let hash = passwords::hash(new.to_string()).await?;
    let now = app.now();
    app.store.change_password(&member.user.id, &hash, now, &member.session.id_hash).await?;
    // The failed logins of the old password no longer matter.
    LoginGuard::forget(app, crate::services::auth::LOGIN_SCOPE, &email).await?;
    audit::member(app, Some(&member.user.id), audit::actions::PASSWORD_CHANGED, None, ip).await?;
    tracing::info!("password changed");
    notify(app, mail::Template::PasswordChanged { at: notice_time(now) }, member_locale(member), &email).await
}

/// One of the member's active sessions as the list shows it.
#[derive(Debug, Clone)]
pub struct SessionInfo {
    /// Opaque: names the session in 「ログアウト」, tells nothing of its token.
    pub id: String,
    /// `browser` or `api` (the app).
    pub kind: String,
    pub created_at: OffsetDateTime,
    pub last_seen_at: OffsetDateTime,
    /// "Chrome / Android", when the device said.
    pub device: Option<String>,
    /// The session this request came in.
    pub current: bool,
}

const PUBLIC_ID_PURPOSE: &str = "session-public-id";

/// The public id of the session stored under `id_hash` (a MAC of the hash, 128 bits).
fn public_id(app: &App, id_hash: &[u8]) -> String {
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;
    use base64::Engine;
    let mac = app.keys.mac(PUBLIC_ID_PURPOSE, id_hash);
    URL_SAFE_NO_PAD.encode(&mac[..16.min(mac.len())])
}

/// The member's active sessions, the current one and then the most recently used first.
pub async fn sessions(app: &App, member: &Member) -> ServiceResult<Vec<SessionInfo>> {
    let mut list: Vec<SessionInfo> = app
        .store
        .user_sessions(&member.user.id, app.now())
        .await?
        .into_iter()
        .map(|s| SessionInfo {
            id: public_id(app, &s.id_hash),
            current: s.id_hash == member.session.id_hash,
            kind: s.kind,
            created_at: s.created_at,
            last_seen_at: s.last_seen_at,
            device: s.device,
        })
        .collect();
    list.sort_by_key(|s| !s.current);
    Ok(list)
}

/// 「ログアウト」 of one session of the member, named by its public id. Whether it was the
/// current one (the caller then drops its cookie); an id of no session of theirs is
/// [`ServiceError::FlowNotFound`].
#[tracing::instrument(skip_all, fields(user_id = %member.user.id))]
pub async fn end_session(app: &App, member: &Member, id: &str, ip: &str) -> ServiceResult<bool> {
    let found = app
        .store
        .user_sessions(&member.user.id, app.now())
        .await?
        .into_iter()
        .find(|s| crate::crypto::ct_eq_str(&public_id(app, &s.id_hash), id))
        .ok_or(ServiceError::FlowNotFound)?;
    if !app.store.delete_user_session(&member.user.id, &found.id_hash).await? {
        return Err(ServiceError::FlowNotFound);
    }
    audit::member(app, Some(&member.user.id), audit::actions::SESSION_ENDED, None, ip).await?;
    Ok(found.id_hash == member.session.id_hash)
}

/// 「すべての端末からログアウト」: every session of the member ends, this one too.
#[tracing::instrument(skip_all, fields(user_id = %member.user.id))]
pub async fn end_all_sessions(app: &App, member: &Member, ip: &str) -> ServiceResult<u64> {
    let n = app.store.delete_user_sessions(&member.user.id).await?;
    audit::member(app, Some(&member.user.id), audit::actions::SESSIONS_ENDED, None, ip).await?;
    Ok(n)
}

/// 「表示言語」: the member's language for pages (applied at each login) and for the mails
/// Mimoto sends them.
#[tracing::instrument(skip_all, fields(user_id = %member.user.id))]
pub async fn set_language(app: &App, member: &Member, code: &str) -> ServiceResult<Locale> {
    let locale = Locale::parse(code).ok_or_else(|| ServiceError::InvalidRequest("language".into()))?;
    app.store.set_user_locale(&member.user.id, locale.as_str()).await?;
    Ok(locale)
}

const DEVICE_PURPOSE: &str = "known-device";

/// After a browser login: remembers the browser (by the MAC of its long-lived random device
/// cookie `device_token`, bound to the member) and mails the member when it is new to the
/// account — except for the account's first remembered browser (right after registration).
#[tracing::instrument(skip_all, fields(user_id = %user_id))]
pub async fn note_login_device(
    app: &App,
    user_id: &str,
    device_token: &str,
    device: Option<&str>,
) -> ServiceResult<()> {
    let mac = app.keys.mac(DEVICE_PURPOSE, format!("{user_id}:{device_token}").as_bytes());
    let now = app.now();
    if !matches!(app.store.remember_device(user_id, &mac, now).await?, store::DeviceSeen::New { first: false }) {
        return Ok(());
    }
    let Some(user) = app.store.get_user(user_id).await? else { return Ok(()) };
    let locale = Locale::parse(&user.locale).unwrap_or_default();
    let device = match (device, locale) {
        (Some(d), _) => d.to_string(),
        (None, Locale::Ja) => "不明な端末".to_string(),
        (None, Locale::En) => "unknown device".to_string(),
    };
    let to = open_email(app, &user.email_enc)?;
    notify(app, mail::Template::NewDeviceLogin { at: notice_time(now), device }, locale, &to).await
}

/// A coarse label of the device behind a User-Agent: browser (or the app) and platform,
/// "Chrome / Android"; `None` when neither is recognized. Only this label is stored.
pub fn device_label(user_agent: &str) -> Option<String> {
    let ua = user_agent;
    let has = |s: &str| ua.contains(s);
    let browser = if has("Mimoto") {
        Some("Mimoto")
    } else if has("Edg/") || has("EdgA/") || has("EdgiOS/") {
        Some("Edge")
    } else if has("OPR/") {
        Some("Opera")
    } else if has("SamsungBrowser/") {
        Some("Samsung Internet")
    } else if has("Firefox/") || has("FxiOS/") {
        Some("Firefox")
    } else if has("Chrome/") || has("CriOS/") || has("HeadlessChrome/") {
        Some("Chrome")
    } else if has("Safari/") {
        Some("Safari")
    } else {
        None
    };
    let platform = if has("iPhone") {
        Some("iPhone")
    } else if has("iPad") {
        Some("iPad")
    } else if has("Android") {
        Some("Android")
    } else if has("CrOS") {
        Some("ChromeOS")
    } else if has("Windows") {
        Some("Windows")
    } else if has("Macintosh") || has("Mac OS X") {
        Some("Mac")
    } else if has("Linux") {
        Some("Linux")
    } else {
        None
    };
    match (browser, platform) {
        (Some(b), Some(p)) => Some(format!("{b} / {p}")),
        (Some(one), None) | (None, Some(one)) => Some(one.to_string()),
        (None, None) => None,
    }
}

#[cfg(test)]
mod tests {
    use super::device_label;

    #[test]
    fn device_labels_are_coarse() {
        let cases = [
            ("Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Mobile Safari/537.36", Some("Chrome / Android")),
            ("Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.5 Mobile/15E148 Safari/604.1", Some("Safari / iPhone")),
            ("Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36 Edg/131.0.0.0", Some("Edge / Windows")),
            ("Mozilla/5.0 (Macintosh; Intel Mac OS X 14.5; rv:132.0) Gecko/20100101 Firefox/132.0", Some("Firefox / Mac")),
            ("curl/8.5.0", None),
            ("", None),
        ];
        for (ua, want) in cases {
            assert_eq!(device_label(ua).as_deref(), want, "{ua}");
        }
    }
}
