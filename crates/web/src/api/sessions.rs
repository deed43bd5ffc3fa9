//! F2 ログイン: bearer sessions, and the signed-in member's profile.

use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::{ApiJson, ApiLocale, ApiResult, ApiSignedIn, ErrorBody, OrApi, OrganizationView};
use crate::member::DeviceLabel;
use crate::ClientIp;
use app::services::auth::{self, SessionKind};
use app::services::identity;
use app::AppState;

pub(super) fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(create_session)).routes(routes!(delete_session)).routes(routes!(me))
}

#[derive(Serialize, ToSchema)]
pub struct SessionView {
    /// Send as `Authorization: Bearer <token>`.
    pub token: String,
    #[serde(with = "time::serde::rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub expires_at: OffsetDateTime,
}

#[derive(Serialize, ToSchema)]
pub struct MeView {
    pub email: String,
    pub organization: OrganizationView,
    /// 本人確認 done: points and walking events are available.
    pub identity_verified: bool,
}

#[derive(Deserialize, ToSchema)]
pub struct LoginRequest {
    pub email: String,
    pub password: String,
}

#[utoipa::path(post, path = "/api/v1/sessions", tag = "session", request_body = LoginRequest,
    responses((status = 201, body = SessionView), (status = 401, body = ErrorBody), (status = 429, body = ErrorBody)))]
async fn create_session(
    State(app): State<AppState>,
    ApiLocale(locale): ApiLocale,
    ClientIp(ip): ClientIp,
    DeviceLabel(device): DeviceLabel,
    ApiJson(req): ApiJson<LoginRequest>,
) -> ApiResult<(StatusCode, Json<SessionView>)> {
    let s = auth::login_on(&app, &req.email, &req.password, &ip, SessionKind::Api, device).await.or_api(locale)?;
    Ok((StatusCode::CREATED, Json(SessionView { token: s.token, expires_at: s.expires_at })))
}

#[utoipa::path(delete, path = "/api/v1/sessions/current", tag = "session", security(("bearer" = [])),
    responses((status = 204), (status = 401, body = ErrorBody)))]
async fn delete_session(
    State(app): State<AppState>,
    ApiLocale(locale): ApiLocale,
    m: ApiSignedIn,
) -> ApiResult<StatusCode> {
    auth::logout(&app, &m.token).await.or_api(locale)?;
    Ok(StatusCode::NO_CONTENT)
}

#[utoipa::path(get, path = "/api/v1/me", tag = "session", security(("bearer" = [])),
    responses((status = 200, body = MeView), (status = 401, body = ErrorBody)))]
async fn me(State(app): State<AppState>, ApiLocale(locale): ApiLocale, m: ApiSignedIn) -> ApiResult<Json<MeView>> {
    let p = auth::profile(&app, &m.member).await.or_api(locale)?;
    let verified = identity::verified_at(&app, &m.member.user.id).await.or_api(locale)?.is_some();
    Ok(Json(MeView { email: p.email, organization: OrganizationView::from(&p.org), identity_verified: verified }))
}
