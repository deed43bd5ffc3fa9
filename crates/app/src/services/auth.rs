//! F2 ログイン: sessions for browsers (cookie) and native apps (bearer token).

use domain::email::Email;
use domain::org::Organization;
use store::{SessionRecord, UserRecord};
use time::{Duration, OffsetDateTime};

use crate::crypto::random_token;
use crate::error::{ServiceError, ServiceResult};
use crate::services::limits::LoginGuard;
use crate::services::sessions::{self, MemberSessions, Timeouts};
use crate::services::{audit, find_user_by_email, open_email, passwords};
use crate::state::App;

/// A session ends after this long without use…
pub const IDLE_TIMEOUT: Duration = Duration::hours(2);
/// …and at the latest this long after login.
pub const ABSOLUTE_TIMEOUT: Duration = Duration::hours(24);
const TIMEOUTS: Timeouts = Timeouts { idle: IDLE_TIMEOUT, absolute: ABSOLUTE_TIMEOUT };

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SessionKind {
    Browser,
    Api,
}

impl SessionKind {
    pub fn as_str(&self) -> &'static str {
        match self {
            SessionKind::Browser => "browser",
            SessionKind::Api => "api",
        }
    }
}

pub struct NewSession {
    pub token: String,
    pub expires_at: OffsetDateTime,
    pub user_id: String,
}

/// The signed-in member.
#[derive(Debug, Clone)]
pub struct Member {
    pub user: UserRecord,
    pub session: SessionRecord,
}

/// The stored id of a new session: the token's MAC under the active MAC key.
pub fn session_hash(app: &App, token: &str) -> Vec<u8> {
    app.keys.mac(SESSION_PURPOSE, token.as_bytes())
}

const SESSION_PURPOSE: &str = "session";

/// The ids a session with `token` may be stored under: its MAC under every configured key.
fn session_hashes(app: &App, token: &str) -> Vec<Vec<u8>> {
    app.keys.macs(SESSION_PURPOSE, token.as_bytes())
}

/// Starts a session for `user_id` with a fresh random token (rotation: never reuse one).
pub async fn create_session(app: &App, user_id: &str, kind: SessionKind) -> ServiceResult<NewSession> {
    create_session_on(app, user_id, kind, None).await
}

/// [`create_session`] on a device labelled `device` (see `settings::device_label`).
pub async fn create_session_on(
    app: &App,
    user_id: &str,
    kind: SessionKind,
    device: Option<String>,
) -> ServiceResult<NewSession> {
    let token = random_token();
    let now = app.now();
    let record = SessionRecord {
        id_hash: session_hash(app, &token),
        user_id: user_id.to_string(),
        kind: kind.as_str().to_string(),
        created_at: now,
        last_seen_at: now,
        expires_at: TIMEOUTS.expiry(now, now),
        step_up_until: None,
        device,
    };
    app.store.create_session(&record).await?;
    Ok(NewSession { token, expires_at: record.expires_at, user_id: user_id.to_string() })
}

/// The scope of member logins' budgets ([`LoginGuard`]); a password reset forgets them.
pub const LOGIN_SCOPE: &str = "login";

/// 「ログイン」. The failure never says which of email or password was wrong, and costs the
/// same whether or not the account exists. Budgets: per client, and per account as
/// [`LoginGuard`] describes (a stranger's guesses never lock the member out).
pub async fn login(
    app: &App,
    email_input: &str,
    password: &str,
    ip: &str,
    kind: SessionKind,
) -> ServiceResult<NewSession> {
    login_on(app, email_input, password, ip, kind, None).await
}

/// [`login`] from a device labelled `device` (shown in the member's session list).
pub async fn login_on(
    app: &App,
    email_input: &str,
    password: &str,
    ip: &str,
    kind: SessionKind,
    device: Option<String>,
) -> ServiceResult<NewSession> {
    let normalized = Email::parse(email_input);
    let id_for_limit =
        normalized.as_ref().map(|e| e.as_str().to_string()).unwrap_or_else(|_| email_input.trim().to_lowercase());
    let guard = LoginGuard::before(app, LOGIN_SCOPE, &id_for_limit, ip).await?;

    let user = match &normalized {
        Ok(email) => find_user_by_email(app, email).await?,
        Err(_) => None,
    };
    let ok = passwords::verify(password.to_string(), user.as_ref().map(|u| u.password_hash.clone())).await?;
    match (ok, user) {
        (true, Some(user)) => {
            metrics::counter!("mimoto_logins_total", "result" => "ok").increment(1);
            guard.succeeded(app).await?;
            audit::member(app, Some(&user.id), audit::actions::LOGIN, None, ip).await?;
            create_session_on(app, &user.id, kind, device).await
        }
        (_, user) => {
            metrics::counter!("mimoto_logins_total", "result" => "failed").increment(1);
            guard.failed(app).await?;
            let member_id = user.as_ref().map(|u| u.id.as_str());
            audit::member(app, member_id, audit::actions::LOGIN_FAILED, None, ip).await?;
            Err(ServiceError::InvalidCredentials)
        }
    }
}

/// The member behind a session token, if the session is alive. Extends the idle timeout.
pub async fn authenticate(app: &App, token: &str) -> ServiceResult<Option<Member>> {
    let user = |id: String| async move { app.store.get_user(&id).await.map_err(ServiceError::from) };
    let alive =
        sessions::authenticate::<MemberSessions, _, _, _>(app, TIMEOUTS, &session_hashes(app, token), user).await?;
    Ok(alive.map(|(session, user)| Member { user, session }))
}

pub async fn logout(app: &App, token: &str) -> ServiceResult<()> {
    for hash in session_hashes(app, token) {
        app.store.delete_session(&hash).await?;
    }
    Ok(())
}

/// What the menu shows about a member.
pub struct Profile {
    pub email: String,
    pub org: Organization,
}

pub async fn profile(app: &App, member: &Member) -> ServiceResult<Profile> {
    let org = app
        .store
        .get_org(&member.user.org_id)
        .await?
        .ok_or_else(|| ServiceError::Internal("user without organization".into()))?;
    Ok(Profile { email: open_email(app, &member.user.email_enc)?, org })
}
