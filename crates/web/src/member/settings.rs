//! 「アカウント設定」 (#16 point 5): change the password, see the sessions signed in to the
//! account and end one or all of them. Plain forms with the CSRF token; every action
//! redirects back with a notice (or renders the page with the error inline).

use askama::Template;
use axum::extract::{FromRequestParts, Path, Query, State};
use axum::http::request::Parts;
use axum::http::{header, StatusCode};
use axum::response::Response;
use axum::routing::{get, post};
use axum::{Extension, Router};
use domain::ids::FlowId;
use serde::Deserialize;

use app::crypto::random_token;
use app::error::ServiceError;
use app::services::auth::Member;
use app::services::{auth, email_change, settings};
use app::AppState;

use super::{inline, render, see_other, with_sid, Chrome, Cx, IdPath, MemberForm, OrPage, PageError};
use crate::ctx::Ctx;
use crate::error::ErrorStatus;
use crate::ClientIp;

pub(super) fn routes() -> Router<AppState> {
    Router::new()
        .route("/settings", get(settings_page))
        .route("/settings/password", post(change_password))
        .route("/settings/sessions/end", post(end_session))
        .route("/settings/sessions/end-all", post(end_all))
        .route("/settings/language", post(set_language))
        .route("/settings/email", post(start_email_change))
        .route("/settings/email/{id}", get(email_code_form).post(verify_email_change))
        .route("/settings/email/{id}/resend", post(resend_email_code))
}

/// The coarse label of the requesting device ("Chrome / Android") from its User-Agent, for
/// the session a login starts; nothing else of the header is kept.
pub(crate) struct DeviceLabel(pub Option<String>);

impl<S: Send + Sync> FromRequestParts<S> for DeviceLabel {
    type Rejection = std::convert::Infallible;
    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        let ua = parts.headers.get(header::USER_AGENT).and_then(|v| v.to_str().ok()).unwrap_or_default();
        Ok(DeviceLabel(settings::device_label(ua)))
    }
}

struct SessionRow {
    id: String,
    kind: &'static str,
    device: Option<String>,
    created: String,
    last_seen: String,
    current: bool,
}

#[derive(Template)]
#[template(path = "settings.html")]
struct SettingsPage {
    c: Chrome,
    sessions: Vec<SessionRow>,
    notice: Option<&'static str>,
    /// The password form's error and the field it is about.
    password_error: Option<String>,
    password_field: &'static str,
    /// The member's address now.
    email: String,
    /// The stored language preference (`ja`, `en`).
    language: &'static str,
    /// The email form: the address typed, its error and the field it is about.
    new_email: String,
    email_error: Option<String>,
    email_inquiry: bool,
    email_field: &'static str,
}

/// An error to show inline on the page: on the password form, or on the email form (with the
/// address typed).
#[derive(Default)]
struct Errors<'a> {
    password: Option<&'a ServiceError>,
    email: Option<(&'a ServiceError, String)>,
}

#[derive(Deserialize)]
struct NoticeQuery {
    #[serde(default)]
    done: String,
}

async fn page(
    app: &AppState,
    ctx: &Ctx,
    member: &Member,
    notice: Option<&'static str>,
    errors: Errors<'_>,
) -> Result<Response, PageError> {
    let password_error = errors.password;
    let email_error = errors.email.as_ref().map(|(e, _)| *e);
    let sessions = settings::sessions(app, member)
        .await
        .or_page(ctx)?
        .into_iter()
        .map(|s| SessionRow {
            id: s.id,
            kind: if s.kind == "api" { "settings.sessions.kind_app" } else { "settings.sessions.kind_browser" },
            device: s.device,
            created: settings::notice_time(s.created_at),
            last_seen: settings::notice_time(s.last_seen_at),
            current: s.current,
        })
        .collect();
    let status = password_error.or(email_error).map(|e| e.status()).unwrap_or(StatusCode::OK);
    let profile = auth::profile(app, member).await.or_page(ctx)?;
    let email_field = match email_error.and_then(|e| e.field()) {
        Some("current_password") => "current_password",
        Some(_) => "new_email",
        None => "",
    };
    let password_field = match password_error.and_then(|e| e.field()) {
        Some("current_password") => "current_password",
        Some(_) => "new_password",
        None => "",
    };
    let view = SettingsPage {
        c: Chrome::from(ctx),
        sessions,
        notice,
        password_error: password_error.map(|e| e.message(ctx.locale())),
        password_field,
        email: profile.email,
        language: settings::member_locale(member).as_str(),
        new_email: errors.email.as_ref().map(|(_, typed)| typed.clone()).unwrap_or_default(),
        email_error: email_error.map(|e| e.message(ctx.locale())),
        email_inquiry: email_error.is_some_and(|e| e.suggests_customer_center()),
        email_field,
    };
    Ok(render(status, &view))
}

async fn settings_page(
    State(app): State<AppState>,
    Extension(ctx): Cx,
    Query(q): Query<NoticeQuery>,
) -> Result<Response, PageError> {
    let Some(member) = &ctx.member else {
        return Ok(see_other("/login"));
    };
    let notice = match q.done.as_str() {
        "password" => Some("settings.password.done"),
        "session" => Some("settings.sessions.ended"),
        "email" => Some("settings.email.done"),
        "language" => Some("settings.language.done"),
        _ => None,
    };
    page(&app, &ctx, member, notice, Errors::default()).await
}

#[derive(Deserialize)]
struct PasswordForm {
    #[serde(default)]
    current_password: String,
    #[serde(default)]
    new_password: String,
}

async fn change_password(
    State(app): State<AppState>,
    Extension(ctx): Cx,
    ClientIp(ip): ClientIp,
    MemberForm { 0: f, .. }: MemberForm<PasswordForm>,
) -> Result<Response, PageError> {
    let Some(member) = &ctx.member else {
        return Ok(see_other("/login"));
    };
    match settings::change_password(&app, member, &f.current_password, &f.new_password, &ip).await {
        Ok(()) => Ok(see_other("/settings?done=password")),
        Err(e) if inline(&e) => {
            page(&app, &ctx, member, None, Errors { password: Some(&e), ..Errors::default() }).await
        }
        Err(e) => Err(e).or_page(&ctx),
    }
}

#[derive(Deserialize)]
struct EndForm {
    #[serde(default)]
    session: String,
}

async fn end_session(
    State(app): State<AppState>,
    Extension(ctx): Cx,
    ClientIp(ip): ClientIp,
    MemberForm { 0: f, .. }: MemberForm<EndForm>,
) -> Result<Response, PageError> {
    let Some(member) = &ctx.member else {
        return Ok(see_other("/login"));
    };
    if settings::end_session(&app, member, &f.session, &ip).await.or_page(&ctx)? {
        // This browser's own session: it is signed out, with a fresh anonymous id.
        return Ok(with_sid(see_other("/login"), random_token()));
    }
    Ok(see_other("/settings?done=session"))
}

async fn end_all(
    State(app): State<AppState>,
    Extension(ctx): Cx,
    ClientIp(ip): ClientIp,
    _: MemberForm<crate::extract::Empty>,
) -> Result<Response, PageError> {
    let Some(member) = &ctx.member else {
        return Ok(see_other("/login"));
    };
    settings::end_all_sessions(&app, member, &ip).await.or_page(&ctx)?;
    Ok(with_sid(see_other("/login"), random_token()))
}

/// The language cookie of this browser's pages (as the header's switch sets it).
pub(crate) fn language_cookie(locale: app::i18n::Locale) -> axum_extra::extract::cookie::Cookie<'static> {
    axum_extra::extract::cookie::Cookie::build((crate::ctx::LANG_COOKIE, locale.as_str()))
        .path("/")
        .same_site(axum_extra::extract::cookie::SameSite::Lax)
        .max_age(time::Duration::days(365))
        .build()
}

/// The browser's long-lived device cookie (HttpOnly, a year; only its MAC is stored, per
/// member): its token, and the cookie to set when the browser had none.
pub(crate) fn device_cookie(
    app: &AppState,
    headers: &axum::http::HeaderMap,
) -> (String, Option<axum_extra::extract::cookie::Cookie<'static>>) {
    let secure = app.config.cookie_secure();
    let name = if secure { "__Host-mimoto_device" } else { "mimoto_device" };
    let jar = axum_extra::extract::cookie::CookieJar::from_headers(headers);
    if let Some(token) = jar.get(name).map(|c| c.value().to_string()).filter(|v| crate::ctx::valid_token(v)) {
        return (token, None);
    }
    let token = random_token();
    let cookie = axum_extra::extract::cookie::Cookie::build((name, token.clone()))
        .path("/")
        .http_only(true)
        .secure(secure)
        .same_site(axum_extra::extract::cookie::SameSite::Lax)
        .max_age(time::Duration::days(365))
        .build();
    (token, Some(cookie))
}

#[derive(Deserialize)]
struct LanguageForm {
    #[serde(default)]
    language: String,
}

/// 「表示言語」: stored for the member (pages after each login, mails) and applied to this
/// browser at once.
async fn set_language(
    State(app): State<AppState>,
    Extension(ctx): Cx,
    MemberForm { 0: f, .. }: MemberForm<LanguageForm>,
) -> Result<Response, PageError> {
    let Some(member) = &ctx.member else {
        return Ok(see_other("/login"));
    };
    let locale = settings::set_language(&app, member, &f.language).await.or_page(&ctx)?;
    let mut resp = see_other("/settings?done=language");
    crate::ctx::append_cookie(&mut resp, &language_cookie(locale));
    Ok(resp)
}

#[derive(Template)]
#[template(path = "settings_email_code.html")]
struct EmailCodePage {
    c: Chrome,
    id: String,
    new_email: String,
    notice: Option<&'static str>,
    error: Option<String>,
}

#[derive(Deserialize)]
struct EmailForm {
    #[serde(default)]
    new_email: String,
    #[serde(default)]
    current_password: String,
}

async fn start_email_change(
    State(app): State<AppState>,
    Extension(ctx): Cx,
    ClientIp(ip): ClientIp,
    MemberForm { 0: f, .. }: MemberForm<EmailForm>,
) -> Result<Response, PageError> {
    let Some(member) = &ctx.member else {
        return Ok(see_other("/login"));
    };
    match email_change::start(&app, member, &f.new_email, &f.current_password, &ip).await {
        Ok(flow) => Ok(see_other(&format!("/settings/email/{}", flow.id))),
        Err(e) if inline(&e) || matches!(e, ServiceError::EmailTaken) => {
            page(&app, &ctx, member, None, Errors { email: Some((&e, f.new_email)), ..Errors::default() }).await
        }
        Err(e) => Err(e).or_page(&ctx),
    }
}

async fn code_page(
    app: &AppState,
    ctx: &Ctx,
    member: &Member,
    id: &FlowId,
    notice: Option<&'static str>,
    error: Option<&ServiceError>,
) -> Result<Response, PageError> {
    let loaded = email_change::load(app, member, id).await.or_page(ctx)?;
    if loaded.flow.completed {
        return Ok(see_other("/settings?done=email"));
    }
    let status = error.map(|e| e.status()).unwrap_or(StatusCode::OK);
    let view = EmailCodePage {
        c: Chrome::from(ctx),
        id: loaded.flow.id,
        new_email: loaded.flow.new_email,
        notice,
        error: error.map(|e| e.message(ctx.locale())),
    };
    Ok(render(status, &view))
}

async fn email_code_form(
    State(app): State<AppState>,
    Extension(ctx): Cx,
    Path(id): IdPath<FlowId>,
    Query(q): Query<NoticeQuery>,
) -> Result<Response, PageError> {
    let Some(member) = &ctx.member else {
        return Ok(see_other("/login"));
    };
    let id = id.or_page(&ctx)?;
    let notice = (q.done == "resent").then_some("reg.code.resent");
    code_page(&app, &ctx, member, &id, notice, None).await
}

#[derive(Deserialize)]
struct CodeForm {
    #[serde(default)]
    code: String,
}

async fn verify_email_change(
    State(app): State<AppState>,
    Extension(ctx): Cx,
    ClientIp(ip): ClientIp,
    Path(id): IdPath<FlowId>,
    MemberForm { 0: f, .. }: MemberForm<CodeForm>,
) -> Result<Response, PageError> {
    let Some(member) = &ctx.member else {
        return Ok(see_other("/login"));
    };
    let id = id.or_page(&ctx)?;
    match email_change::verify(&app, member, &id, &f.code, &ip).await {
        Ok(_) => Ok(see_other("/settings?done=email")),
        Err(e) if inline(&e) || matches!(e, ServiceError::CodeExpired | ServiceError::CodeExhausted) => {
            code_page(&app, &ctx, member, &id, None, Some(&e)).await
        }
        Err(e) => Err(e).or_page(&ctx),
    }
}

async fn resend_email_code(
    State(app): State<AppState>,
    Extension(ctx): Cx,
    ClientIp(ip): ClientIp,
    Path(id): IdPath<FlowId>,
    _: MemberForm<crate::extract::Empty>,
) -> Result<Response, PageError> {
    let Some(member) = &ctx.member else {
        return Ok(see_other("/login"));
    };
    let id = id.or_page(&ctx)?;
    match email_change::resend(&app, member, &id, &ip).await {
        Ok(flow) => Ok(see_other(&format!("/settings/email/{}?done=resent", flow.id))),
        Err(e) if inline(&e) => code_page(&app, &ctx, member, &id, None, Some(&e)).await,
        Err(e) => Err(e).or_page(&ctx),
    }
}
