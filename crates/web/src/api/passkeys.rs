//! Passkeys (#13) for native apps under `/api/v1/passkeys`: list, register and remove the
//! member's passkeys, like the パスキーの設定 page. Registering takes two calls, the WebAuthn
//! ceremony: `POST /passkeys/registration-options` gives the options for the platform's
//! `create()` (the `publicKey` of `navigator.credentials.create`, as JSON), and `POST
//! /passkeys` sends the authenticator's answer back with the ceremony id. A ceremony is used
//! once, within five minutes, by the bearer session that started it. Registering and removing
//! need health data open in the session (`POST /api/v1/health/step-up`, with the question or a
//! passkey), so a stolen password cannot add a passkey. The step-up with a passkey itself is
//! under `/api/v1/health/step-up/passkey*` (`api/health.rs`).
//!
//! Passkeys need a public URL with a domain name (`MIMOTO_PUBLIC_URL`, `localhost` included):
//! on an IP address every call here answers 404 `passkeys_unavailable`, and `GET
//! /api/v1/health` says `passkeys_available: false`.

use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::{ApiJson, ApiLocale, ApiMember, ApiResult, ErrorBody, IdPath, OrApi};
use app::error::ServiceError;
use app::services::passkeys::{self, PasskeyInfo};
use app::AppState;

pub(super) fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_passkeys, create_passkey))
        .routes(routes!(registration_options))
        .routes(routes!(delete_passkey))
}

#[derive(Serialize, ToSchema)]
pub struct PasskeyView {
    pub id: String,
    #[serde(with = "time::serde::rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub created_at: OffsetDateTime,
    /// The last step-up with this passkey.
    #[serde(with = "time::serde::rfc3339::option")]
    #[schema(value_type = Option<String>, format = DateTime)]
    pub last_used_at: Option<OffsetDateTime>,
}

impl From<PasskeyInfo> for PasskeyView {
    fn from(p: PasskeyInfo) -> Self {
        PasskeyView { id: p.id, created_at: p.created_at, last_used_at: p.last_used_at }
    }
}

#[derive(Serialize, ToSchema)]
pub struct PasskeysView {
    /// Oldest first.
    pub passkeys: Vec<PasskeyView>,
    /// How many passkeys a member may register.
    pub max: usize,
}

/// A WebAuthn ceremony started: its id and the options for the authenticator.
#[derive(Serialize, ToSchema)]
pub struct CeremonyView {
    /// Send back with the authenticator's answer (single use, valid for 5 minutes, in this
    /// bearer session only).
    pub ceremony: String,
    /// WebAuthn options as JSON: `{"publicKey": {...}}`, the argument of
    /// `navigator.credentials.create()` (registration) or `.get()` (step-up), with binary
    /// fields (`challenge`, `user.id`, credential ids) in base64url without padding.
    #[schema(value_type = Object)]
    pub options: serde_json::Value,
}

impl CeremonyView {
    pub(super) fn new<T: Serialize>(ceremony: String, options: &T) -> Result<Self, ServiceError> {
        let options =
            serde_json::to_value(options).map_err(|e| ServiceError::Internal(format!("passkey options: {e}")))?;
        Ok(CeremonyView { ceremony, options })
    }
}

/// The authenticator's answer to a ceremony.
#[derive(Deserialize, ToSchema)]
pub struct CredentialRequest {
    /// The `ceremony` of the options.
    pub ceremony: String,
    /// The `PublicKeyCredential` as JSON (WebAuthn Level 3 `toJSON()`: `id`, `rawId`, `type`,
    /// `response` with base64url fields, optional `clientExtensionResults`). For a
    /// registration, `response` carries `attestationObject` and `clientDataJSON`; for a
    /// step-up, `authenticatorData`, `clientDataJSON`, `signature` and `userHandle`.
    #[schema(value_type = Object)]
    pub credential: serde_json::Value,
}

impl CredentialRequest {
    /// The credential as the service reads it (JSON text).
    pub(super) fn credential_json(&self) -> String {
        self.credential.to_string()
    }
}

/// The member's passkeys.
#[utoipa::path(get, path = "/api/v1/passkeys", tag = "passkeys", security(("bearer" = [])),
    responses((status = 200, body = PasskeysView), (status = 401, body = ErrorBody),
        (status = 404, body = ErrorBody, description = "passkeys_unavailable: the public URL is an IP address")))]
async fn list_passkeys(
    State(app): State<AppState>,
    ApiLocale(locale): ApiLocale,
    m: ApiMember,
) -> ApiResult<Json<PasskeysView>> {
    passkeys::ensure_available(&app).or_api(locale)?;
    let list = passkeys::list(&app, &m.member).await.or_api(locale)?;
    Ok(Json(PasskeysView {
        passkeys: list.into_iter().map(PasskeyView::from).collect(),
        max: passkeys::MAX_PER_MEMBER,
    }))
}

/// Starts registering a passkey: health data must be open in this session. Give `options` to
/// the platform's WebAuthn `create()` and send its answer to `POST /api/v1/passkeys`.
#[utoipa::path(post, path = "/api/v1/passkeys/registration-options", tag = "passkeys", security(("bearer" = [])),
    responses((status = 200, body = CeremonyView), (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody, description = "step_up_required: open health data first (question or passkey), health_not_unlocked: 健診・医療アクセス認証 (F4) is not done"),
        (status = 404, body = ErrorBody, description = "passkeys_unavailable: the public URL is an IP address"),
        (status = 409, body = ErrorBody, description = "passkey_limit: 10 passkeys registered already")))]
async fn registration_options(
    State(app): State<AppState>,
    ApiLocale(locale): ApiLocale,
    m: ApiMember,
) -> ApiResult<Json<CeremonyView>> {
    let (id, options) = passkeys::start_registration(&app, &m.member).await.or_api(locale)?;
    Ok(Json(CeremonyView::new(id, &options).or_api(locale)?))
}

/// Finishes registering a passkey with the authenticator's answer (a `RegisterPublicKeyCredential`);
/// the member gets a mail about it.
#[utoipa::path(post, path = "/api/v1/passkeys", tag = "passkeys", security(("bearer" = [])), request_body = CredentialRequest,
    responses((status = 201, body = PasskeyView), (status = 401, body = ErrorBody),
        (status = 404, body = ErrorBody, description = "passkeys_unavailable: the public URL is an IP address"),
        (status = 422, body = ErrorBody, description = "passkey_failed: the ceremony is unknown, expired, used or another session's, or the answer did not verify; invalid_request: malformed body")))]
async fn create_passkey(
    State(app): State<AppState>,
    ApiLocale(locale): ApiLocale,
    m: ApiMember,
    ApiJson(req): ApiJson<CredentialRequest>,
) -> ApiResult<(StatusCode, Json<PasskeyView>)> {
    let key =
        passkeys::finish_registration(&app, &m.member, &req.ceremony, &req.credential_json()).await.or_api(locale)?;
    Ok((StatusCode::CREATED, Json(PasskeyView::from(key))))
}

/// Removes one of the member's passkeys: health data must be open in this session.
#[utoipa::path(delete, path = "/api/v1/passkeys/{id}", tag = "passkeys", security(("bearer" = [])),
    params(("id" = String, Path)),
    responses((status = 204), (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody, description = "step_up_required, health_not_unlocked"),
        (status = 404, body = ErrorBody, description = "flow_not_found: no such passkey of this member; passkeys_unavailable")))]
async fn delete_passkey(
    State(app): State<AppState>,
    ApiLocale(locale): ApiLocale,
    m: ApiMember,
    IdPath(id): IdPath<String>,
) -> ApiResult<StatusCode> {
    passkeys::ensure_available(&app).or_api(locale)?;
    passkeys::remove(&app, &m.member, &id).await.or_api(locale)?;
    Ok(StatusCode::NO_CONTENT)
}
