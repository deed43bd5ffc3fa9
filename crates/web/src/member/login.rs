//! F2 ログイン and ログアウト (both rotate the browser's session id).

use askama::Template;
use axum::extract::State;
use axum::response::Response;
use axum::routing::{get, post};
use axum::{Extension, Router};
use serde::Deserialize;

use app::crypto::random_token;
use app::services::auth::{self, SessionKind};
use app::services::settings;
use app::AppState;

use super::settings::DeviceLabel;
use super::{inline, ok, render, see_other, with_sid, Chrome, Cx, MemberForm, OrPage, PageError};
use crate::error::ErrorStatus;

use crate::ClientIp;

pub(super) fn routes() -> Router<AppState> {
    Router::new().route("/login", get(login_form).post(login)).route("/logout", post(logout))
}

#[derive(Template)]
#[template(path = "login.html")]
struct LoginPage {
    c: Chrome,
    email: String,
    error: Option<String>,
}

async fn login_form(Extension(ctx): Cx) -> Response {
    if ctx.member.is_some() {
        return see_other("/menu");
    }
    ok(&LoginPage { c: Chrome::from(&ctx), email: String::new(), error: None })
}

#[derive(Deserialize)]
struct LoginForm {
    #[serde(default)]
    email: String,
    #[serde(default)]
    password: String,
}

async fn login(
    State(app): State<AppState>,
    Extension(ctx): Cx,
    ClientIp(ip): ClientIp,
    DeviceLabel(device): DeviceLabel,
    headers: axum::http::HeaderMap,
    MemberForm { 0: f, .. }: MemberForm<LoginForm>,
) -> Result<Response, PageError> {
    match auth::login_on(&app, &f.email, &f.password, &ip, SessionKind::Browser, device.clone()).await {
        Ok(session) => {
            // Rotate: the pre-login id (and any session on it) is dropped.
            auth::logout(&app, &ctx.sid).await.or_page(&ctx)?;
            let mut resp = see_other("/menu");
            // The browser's device cookie: a login from one new to the account is mailed.
            let (device_token, new_cookie) = super::settings::device_cookie(&app, &headers);
            // The session exists now: what follows is best effort, never a failed login.
            if let Err(e) = settings::note_login_device(&app, &session.user_id, &device_token, device.as_deref()).await
            {
                tracing::warn!("the login's device could not be noted: {e}");
            }
            if let Some(cookie) = new_cookie {
                crate::ctx::append_cookie(&mut resp, &cookie);
            }
            // The member's language preference (アカウント設定) applies from here on.
            match app.store.get_user(&session.user_id).await {
                Ok(user) => {
                    if let Some(locale) = user.and_then(|u| app::i18n::Locale::parse(&u.locale)) {
                        crate::ctx::append_cookie(&mut resp, &super::settings::language_cookie(locale));
                    }
                }
                Err(e) => tracing::warn!("the member's language could not be read: {e}"),
            }
            Ok(with_sid(resp, session.token))
        }
        Err(e) if inline(&e) => {
            let page = LoginPage { c: Chrome::from(&ctx), email: f.email, error: Some(e.message(ctx.locale())) };
            Ok(render(e.status(), &page))
        }
        Err(e) => Err(e).or_page(&ctx),
    }
}

#[derive(Deserialize)]
struct LogoutForm {
    /// Where to land: the login page (error ① sends members to log in with their earlier
    /// email) or, by default, the start page.
    next: Option<String>,
}

async fn logout(
    State(app): State<AppState>,
    Extension(ctx): Cx,
    MemberForm { 0: f, .. }: MemberForm<LogoutForm>,
) -> Result<Response, PageError> {
    auth::logout(&app, &ctx.sid).await.or_page(&ctx)?;
    let next = if f.next.as_deref() == Some("/login") { "/login" } else { "/" };
    Ok(with_sid(see_other(next), random_token()))
}
