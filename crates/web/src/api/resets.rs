//! F2 パスワード再設定 (password resets) and the password policy shown next to password fields.

use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use domain::ids::FlowId;
use domain::password::{MAX_CHARS, MIN_CHARS};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::{ApiJson, ApiLocale, ApiResult, ErrorBody, IdPath, OrApi};
use crate::ClientIp;
use app::i18n::t;
use app::services::reset;
use app::AppState;

pub(super) fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(password_policy))
        .routes(routes!(create_reset))
        .routes(routes!(reset_resend))
        .routes(routes!(reset_complete))
}

#[derive(Serialize, ToSchema)]
pub struct ResetView {
    pub id: String,
    /// code_sent → completed
    pub state: String,
}

#[derive(Serialize, ToSchema)]
pub struct PasswordPolicyView {
    pub min_chars: usize,
    pub max_chars: usize,
    /// パスワード設定の条件, to show next to the field.
    pub conditions: Vec<String>,
}

#[derive(Deserialize, ToSchema)]
pub struct ResetRequest {
    /// The account's address (at most 254 characters once normalized).
    #[schema(format = Email, max_length = 254)]
    pub email: String,
}

#[derive(Deserialize, ToSchema)]
pub struct ResetCompleteRequest {
    /// ワンタイムパスワード: 6 digits (full-width digits, spaces and hyphens between them are
    /// taken).
    pub code: String,
    /// パスワード設定の条件 (`GET /api/v1/password-policy`): 8–128 characters, not guessable
    /// (zxcvbn score 3 or more, not built from the address): `format: password`.
    #[schema(format = Password, min_length = 8, max_length = 128)]
    pub new_password: String,
}

#[utoipa::path(get, path = "/api/v1/password-policy", tag = "registration",
    responses((status = 200, body = PasswordPolicyView)))]
async fn password_policy(ApiLocale(locale): ApiLocale) -> Json<PasswordPolicyView> {
    Json(PasswordPolicyView {
        min_chars: MIN_CHARS,
        max_chars: MAX_CHARS,
        conditions: ["reg.password_rules.length", "reg.password_rules.weak", "reg.password_rules.hint"]
            .iter()
            .map(|k| t(locale, k).to_string())
            .collect(),
    })
}

#[utoipa::path(post, path = "/api/v1/password-resets", tag = "password-reset", request_body = ResetRequest,
    responses((status = 202, body = ResetView, description = "Same answer whether or not the address has an account"), (status = 422, body = ErrorBody), (status = 429, body = ErrorBody)))]
async fn create_reset(
    State(app): State<AppState>,
    ApiLocale(locale): ApiLocale,
    ClientIp(ip): ClientIp,
    ApiJson(req): ApiJson<ResetRequest>,
) -> ApiResult<(StatusCode, Json<ResetView>)> {
    let flow = reset::start(&app, &req.email, locale, &ip).await.or_api(locale)?;
    Ok((StatusCode::ACCEPTED, Json(ResetView { id: flow.id, state: flow.state.as_str().to_string() })))
}

#[utoipa::path(post, path = "/api/v1/password-resets/{id}/resend", tag = "password-reset",
    params(("id" = String, Path)), responses((status = 202, body = ResetView), (status = 429, body = ErrorBody)))]
async fn reset_resend(
    State(app): State<AppState>,
    ApiLocale(locale): ApiLocale,
    ClientIp(ip): ClientIp,
    IdPath(id): IdPath<FlowId>,
) -> ApiResult<(StatusCode, Json<ResetView>)> {
    let flow = reset::resend(&app, &id, &ip).await.or_api(locale)?;
    Ok((StatusCode::ACCEPTED, Json(ResetView { id: flow.id, state: flow.state.as_str().to_string() })))
}

#[utoipa::path(post, path = "/api/v1/password-resets/{id}/complete", tag = "password-reset", request_body = ResetCompleteRequest,
    params(("id" = String, Path)), responses((status = 200, body = ResetView), (status = 422, body = ErrorBody, description = "code_wrong, code_exhausted, code_expired, password_weak …: the same for an address without an account"),
        (status = 429, body = ErrorBody, description = "code_budget_spent: 10 codes per reset or 20 per address a day (inquiry_url); rate_limited")))]
async fn reset_complete(
    State(app): State<AppState>,
    ApiLocale(locale): ApiLocale,
    ClientIp(ip): ClientIp,
    IdPath(id): IdPath<FlowId>,
    ApiJson(req): ApiJson<ResetCompleteRequest>,
) -> ApiResult<Json<ResetView>> {
    let flow = reset::complete(&app, &id, &req.code, &req.new_password, &ip).await.or_api(locale)?;
    Ok(Json(ResetView { id: flow.id, state: flow.state.as_str().to_string() }))
}
