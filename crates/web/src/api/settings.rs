//! 「アカウント設定」 (#16 point 5) for native apps under `/api/v1/settings`: change the
//! password (the current one required; every other session ends, this bearer session stays),
//! list the sessions signed in to the account (browsers and apps) and end one or all of them.
//! Sessions are named by an opaque id, never by their token.

use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::{ApiJson, ApiLocale, ApiMember, ApiResult, ErrorBody, IdPath, OrApi};
use crate::ClientIp;
use app::services::email_change::{self, EmailChange};
use app::services::settings::{self, SessionInfo};
use app::AppState;
use domain::ids::FlowId;

pub(super) fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(change_password))
        .routes(routes!(list_sessions, end_all_sessions))
        .routes(routes!(end_session))
        .routes(routes!(get_language, set_language))
        .routes(routes!(start_email_change))
        .routes(routes!(resend_email_code))
        .routes(routes!(verify_email_change))
}

#[derive(Deserialize, ToSchema)]
pub struct PasswordChangeRequest {
    /// The member's password now (`current_password_wrong` otherwise).
    pub current_password: String,
    /// パスワード設定の条件 (`GET /api/v1/password-policy`): 8–128 characters, not guessable
    /// (the registration's rules): `format: password`.
    #[schema(format = Password, min_length = 8, max_length = 128)]
    pub new_password: String,
}

#[utoipa::path(post, path = "/api/v1/settings/password", tag = "settings", security(("bearer" = [])),
    request_body = PasswordChangeRequest,
    responses((status = 204, description = "Changed; every other session of the member has ended and a notice was mailed"),
        (status = 422, body = ErrorBody, description = "current_password_wrong (field current_password); password_too_short, password_too_long, password_weak (field password); invalid_request"),
        (status = 429, body = ErrorBody, description = "rate_limited: too many wrong current passwords; retry after `Retry-After` seconds")))]
async fn change_password(
    State(app): State<AppState>,
    ApiLocale(locale): ApiLocale,
    ClientIp(ip): ClientIp,
    m: ApiMember,
    ApiJson(req): ApiJson<PasswordChangeRequest>,
) -> ApiResult<StatusCode> {
    settings::change_password(&app, &m.member, &req.current_password, &req.new_password, &ip).await.or_api(locale)?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Serialize, ToSchema)]
pub struct SessionInfoView {
    /// Opaque; names the session in `DELETE /api/v1/settings/sessions/{id}`.
    pub id: String,
    /// `browser` or `app`.
    #[schema(example = "app")]
    pub kind: String,
    /// A coarse label of the device from its User-Agent at login, e.g. `Chrome / Android`.
    pub device: Option<String>,
    #[serde(with = "time::serde::rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub created_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub last_seen_at: OffsetDateTime,
    /// The session of this request.
    pub current: bool,
}

impl From<SessionInfo> for SessionInfoView {
    fn from(s: SessionInfo) -> Self {
        SessionInfoView {
            id: s.id,
            kind: if s.kind == "api" { "app".into() } else { "browser".into() },
            device: s.device,
            created_at: s.created_at,
            last_seen_at: s.last_seen_at,
            current: s.current,
        }
    }
}

#[derive(Serialize, ToSchema)]
pub struct SessionsView {
    /// The current session first, then the most recently used.
    pub sessions: Vec<SessionInfoView>,
}

#[utoipa::path(get, path = "/api/v1/settings/sessions", tag = "settings", security(("bearer" = [])),
    responses((status = 200, body = SessionsView)))]
async fn list_sessions(
    State(app): State<AppState>,
    ApiLocale(locale): ApiLocale,
    m: ApiMember,
) -> ApiResult<Json<SessionsView>> {
    let sessions = settings::sessions(&app, &m.member).await.or_api(locale)?;
    Ok(Json(SessionsView { sessions: sessions.into_iter().map(SessionInfoView::from).collect() }))
}

#[utoipa::path(delete, path = "/api/v1/settings/sessions/{id}", tag = "settings", security(("bearer" = [])),
    params(("id" = String, Path)),
    responses((status = 204, description = "The session has ended (when it was this one, the token no longer works)"),
        (status = 404, body = ErrorBody, description = "flow_not_found: no such session of this member")))]
async fn end_session(
    State(app): State<AppState>,
    ApiLocale(locale): ApiLocale,
    ClientIp(ip): ClientIp,
    m: ApiMember,
    IdPath(id): IdPath<String>,
) -> ApiResult<StatusCode> {
    settings::end_session(&app, &m.member, &id, &ip).await.or_api(locale)?;
    Ok(StatusCode::NO_CONTENT)
}

#[utoipa::path(delete, path = "/api/v1/settings/sessions", tag = "settings", security(("bearer" = [])),
    responses((status = 204, description = "Every session of the member has ended, this one too")))]
async fn end_all_sessions(
    State(app): State<AppState>,
    ApiLocale(locale): ApiLocale,
    ClientIp(ip): ClientIp,
    m: ApiMember,
) -> ApiResult<StatusCode> {
    settings::end_all_sessions(&app, &m.member, &ip).await.or_api(locale)?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Deserialize, ToSchema)]
pub struct EmailChangeRequest {
    /// At most 254 characters once normalized (NFKC, trimmed, lower-cased); ASCII unless the
    /// mail relay takes SMTPUTF8 (`email_not_ascii`).
    #[schema(format = Email, max_length = 254)]
    pub new_email: String,
    /// The member's password now (`current_password_wrong` otherwise).
    pub current_password: String,
}

#[derive(Serialize, ToSchema)]
pub struct EmailChangeView {
    /// The change's id, for `verify` and `resend`.
    pub id: String,
    /// Where the one-time password was sent.
    pub new_email: String,
    /// Whether the change is done.
    pub completed: bool,
    #[serde(with = "time::serde::rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub expires_at: OffsetDateTime,
}

impl From<EmailChange> for EmailChangeView {
    fn from(f: EmailChange) -> Self {
        EmailChangeView { id: f.id, new_email: f.new_email, completed: f.completed, expires_at: f.expires_at }
    }
}

#[derive(Deserialize, ToSchema)]
pub struct EmailCodeRequest {
    /// The 6-digit one-time password mailed to the new address.
    pub code: String,
}

#[utoipa::path(post, path = "/api/v1/settings/email", tag = "settings", security(("bearer" = [])),
    request_body = EmailChangeRequest,
    responses((status = 201, body = EmailChangeView, description = "A one-time password was mailed to the new address"),
        (status = 409, body = ErrorBody, description = "email_taken: another account has this address (as registration says)"),
        (status = 422, body = ErrorBody, description = "current_password_wrong (field current_password); email_empty, email_invalid, email_not_ascii (field email); invalid_request"),
        (status = 429, body = ErrorBody, description = "rate_limited: too many wrong current passwords, or requests for this address")))]
async fn start_email_change(
    State(app): State<AppState>,
    ApiLocale(locale): ApiLocale,
    ClientIp(ip): ClientIp,
    m: ApiMember,
    ApiJson(req): ApiJson<EmailChangeRequest>,
) -> ApiResult<(StatusCode, Json<EmailChangeView>)> {
    let flow = email_change::start(&app, &m.member, &req.new_email, &req.current_password, &ip).await.or_api(locale)?;
    Ok((StatusCode::CREATED, Json(flow.into())))
}

#[utoipa::path(post, path = "/api/v1/settings/email/{id}/resend", tag = "settings", security(("bearer" = [])),
    params(("id" = String, Path)),
    responses((status = 200, body = EmailChangeView, description = "A new one-time password was mailed; the earlier one no longer works"),
        (status = 409, body = ErrorBody, description = "wrong_step: the change is done"),
        (status = 410, body = ErrorBody, description = "flow_expired"),
        (status = 429, body = ErrorBody, description = "resend_too_soon (see `Retry-After`)")))]
async fn resend_email_code(
    State(app): State<AppState>,
    ApiLocale(locale): ApiLocale,
    ClientIp(ip): ClientIp,
    m: ApiMember,
    IdPath(id): IdPath<FlowId>,
) -> ApiResult<Json<EmailChangeView>> {
    let flow = email_change::resend(&app, &m.member, &id, &ip).await.or_api(locale)?;
    Ok(Json(flow.into()))
}

#[utoipa::path(post, path = "/api/v1/settings/email/{id}/verify", tag = "settings", security(("bearer" = [])),
    params(("id" = String, Path)), request_body = EmailCodeRequest,
    responses((status = 200, body = EmailChangeView, description = "The new address replaced the old one (which got a notice)"),
        (status = 409, body = ErrorBody, description = "wrong_step: the change is done; email_taken: the address was taken meanwhile"),
        (status = 410, body = ErrorBody, description = "flow_expired"),
        (status = 422, body = ErrorBody, description = "code_format, code_wrong (remaining_attempts), code_expired, code_exhausted (field code)"),
        (status = 429, body = ErrorBody, description = "code_budget_spent")))]
async fn verify_email_change(
    State(app): State<AppState>,
    ApiLocale(locale): ApiLocale,
    ClientIp(ip): ClientIp,
    m: ApiMember,
    IdPath(id): IdPath<FlowId>,
    ApiJson(req): ApiJson<EmailCodeRequest>,
) -> ApiResult<Json<EmailChangeView>> {
    let flow = email_change::verify(&app, &m.member, &id, &req.code, &ip).await.or_api(locale)?;
    Ok(Json(flow.into()))
}

#[derive(Serialize, Deserialize, ToSchema)]
pub struct LanguageView {
    /// `ja` or `en`: the language of the mails Mimoto sends the member (and of the pages after
    /// each login).
    #[schema(example = "en")]
    pub language: String,
}

#[utoipa::path(get, path = "/api/v1/settings/language", tag = "settings", security(("bearer" = [])),
    responses((status = 200, body = LanguageView)))]
async fn get_language(m: ApiMember) -> Json<LanguageView> {
    Json(LanguageView { language: settings::member_locale(&m.member).as_str().to_string() })
}

#[utoipa::path(put, path = "/api/v1/settings/language", tag = "settings", security(("bearer" = [])),
    request_body = LanguageView,
    responses((status = 200, body = LanguageView),
        (status = 422, body = ErrorBody, description = "invalid_request: not `ja` or `en`")))]
async fn set_language(
    State(app): State<AppState>,
    ApiLocale(locale): ApiLocale,
    m: ApiMember,
    ApiJson(req): ApiJson<LanguageView>,
) -> ApiResult<Json<LanguageView>> {
    let set = settings::set_language(&app, &m.member, &req.language).await.or_api(locale)?;
    Ok(Json(LanguageView { language: set.as_str().to_string() }))
}
