//! The JSON API under `/api/v1`: the same flows as the pages, for native apps. Sessions are
//! bearer tokens (`Authorization: Bearer …`), so there are no cookies and no CSRF here.
//! Messages follow `Accept-Language` (Japanese unless English is asked for).
//!
//! Each resource lives in its own module; a route and its OpenAPI path are written once, in
//! the handler's `#[utoipa::path]` annotation: `OpenApiRouter` + `routes!` build both the axum
//! router and the document from it.

mod consents;
mod ekyc;
mod health;
mod identity;
mod passkeys;
mod registrations;
mod resets;
mod sessions;
mod settings;

use crate::error::ErrorStatus;
use axum::extract::rejection::JsonRejection;
use axum::extract::{FromRequest, FromRequestParts, Path, Request};
use axum::http::request::Parts;
use axum::http::{header, HeaderValue};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use domain::consent::ConsentDoc;
use domain::org::{OrgType, Organization};
use serde::de::DeserializeOwned;
use serde::Serialize;
use utoipa::{OpenApi, ToSchema};
use utoipa_axum::router::OpenApiRouter;

use app::error::ServiceError;
use app::i18n::Locale;
use app::services::auth::{self, Member};
use app::AppState;

/// The API's routes (except the image upload, see [`upload_routes`]) and `/api/v1/openapi.json`.
pub fn routes() -> Router<AppState> {
    let (router, _) = api_router().split_for_parts();
    router.route("/api/v1/openapi.json", get(openapi_json)).layer(no_store())
}

/// Image uploads: their own, larger body limit (see `crate::router`).
pub fn upload_routes() -> Router<AppState> {
    upload_router().split_for_parts().0.layer(no_store())
}

/// No API answer is kept by a browser, proxy or app cache: most are personal.
fn no_store() -> tower_http::set_header::SetResponseHeaderLayer<HeaderValue> {
    tower_http::set_header::SetResponseHeaderLayer::overriding(
        header::CACHE_CONTROL,
        HeaderValue::from_static("no-store"),
    )
}

/// The OpenAPI document of every route of [`routes`] and [`upload_routes`].
pub fn openapi() -> utoipa::openapi::OpenApi {
    let mut doc = api_router().merge(upload_router()).into_openapi();
    utoipa::Modify::modify(&EveryOperation, &mut doc);
    doc
}

/// Answers every operation can give besides its own (issue #15, point 1): 503 while the
/// database cannot be reached (with `Retry-After`), 401 where a bearer token is required, 404
/// where the path has an id, 422 and 413 where there is a request body, and the layers' 408
/// and 500 everywhere.
/// Added once here rather than on each handler, and never over an operation's own text.
struct EveryOperation;

impl utoipa::Modify for EveryOperation {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        use utoipa::openapi::{ContentBuilder, Ref, ResponseBuilder};
        let error = |description: &str| {
            ResponseBuilder::new()
                .description(description)
                .content(
                    "application/json",
                    ContentBuilder::new().schema(Some(Ref::from_schema_name("ErrorBody"))).build(),
                )
                .build()
        };
        for (path, item) in openapi.paths.paths.iter_mut() {
            // Every step of a flow (a POST under the flow's id) checks the flow's state first.
            if let Some(post) = item.post.as_mut() {
                if let Some(flow) = FLOW_STEPS.iter().find(|f| path.starts_with(f.prefix)) {
                    post.responses.responses.entry("409".to_string()).or_insert_with(|| error(flow.conflict).into());
                }
            }
            if FLOW_STEPS.iter().any(|f| path.starts_with(f.prefix) && f.expires) {
                for operation in [&mut item.get, &mut item.post].into_iter().flatten() {
                    operation.responses.responses.entry("410".to_string()).or_insert_with(|| {
                        error("flow_expired: the flow outlived its validity; start a new one").into()
                    });
                }
            }
            let operations = [
                &mut item.get,
                &mut item.put,
                &mut item.post,
                &mut item.delete,
                &mut item.options,
                &mut item.head,
                &mut item.patch,
                &mut item.trace,
            ];
            for operation in operations.into_iter().flatten() {
                let responses = &mut operation.responses.responses;
                responses.entry("503".to_string()).or_insert_with(|| {
                    error("unavailable: the database cannot be reached for now; retry after `Retry-After` seconds")
                        .into()
                });
                // A malformed id answers like an unknown one (`IdPath`).
                let has_path_id = operation.parameters.as_ref().is_some_and(|ps| {
                    ps.iter().any(|p| matches!(p.parameter_in, utoipa::openapi::path::ParameterIn::Path))
                });
                if has_path_id {
                    responses.entry("404".to_string()).or_insert_with(|| {
                        error("flow_not_found: no such id (or a malformed one), or not the caller's").into()
                    });
                }
                // A body that is not JSON of the request schema (`ApiJson`), or over the limit.
                if operation.request_body.is_some() {
                    responses.entry("422".to_string()).or_insert_with(|| {
                        error("invalid_request: the body is not JSON of the request schema; or a value the rules refuse (`error.field`)").into()
                    });
                    responses.entry("413".to_string()).or_insert_with(|| {
                        error("body_too_large: the body is over the limit (64 KiB; uploads 12 MiB)").into()
                    });
                }
                // Answers of the layers around every handler (`layer_answers_as_errors`).
                responses
                    .entry("408".to_string())
                    .or_insert_with(|| error("timed_out: the request took over 30 s; send it again").into());
                responses
                    .entry("500".to_string())
                    .or_insert_with(|| error("internal: an unexpected error (logged); send it again later").into());
                // Every error answer carries the shared error body, described or not.
                for (status, response) in responses.iter_mut() {
                    if let utoipa::openapi::RefOr::T(response) = response {
                        if (status.starts_with('4') || status.starts_with('5')) && response.content.is_empty() {
                            response.content.insert(
                                "application/json".to_string(),
                                ContentBuilder::new().schema(Some(Ref::from_schema_name("ErrorBody"))).build(),
                            );
                        }
                    }
                }
                // The capture of an upload's path takes the names of `capture_schema`.
                for parameter in operation.parameters.iter_mut().flatten() {
                    if parameter.name == "capture" {
                        parameter.schema = Some(capture_schema().into());
                    }
                }
                let bearer = operation.security.as_ref().is_some_and(|s| !s.is_empty());
                if bearer {
                    responses.entry("401".to_string()).or_insert_with(|| {
                        error("unauthenticated: no token, or a token that has expired or was revoked").into()
                    });
                }
            }
        }
    }
}

/// The flows whose steps live under an id: each step answers 409 when the flow is not at
/// that step (or changed meanwhile), and the flows that expire answer 410 once they have.
struct FlowSteps {
    prefix: &'static str,
    conflict: &'static str,
    expires: bool,
}

const FLOW_STEPS: &[FlowSteps] = &[
    FlowSteps {
        prefix: "/api/v1/registrations/{id}",
        conflict: "wrong_step: the registration is not at this step (its `state` says where it is); email_taken; conflict: changed meanwhile",
        expires: true,
    },
    FlowSteps {
        prefix: "/api/v1/password-resets/{id}",
        conflict: "wrong_step: the reset is done already, or was answered with another password; conflict: changed meanwhile",
        expires: true,
    },
    FlowSteps {
        prefix: "/api/v1/identity-verifications/{id}",
        conflict: "wrong_step: the verification is not at this step; insurer_mismatch, already_verified, identity_already_linked",
        expires: true,
    },
    FlowSteps {
        prefix: "/api/v1/ekyc-applications/{id}",
        conflict: "wrong_step: the application is not at this step (or decided); capture_token_invalid, document_back_not_allowed, conflict",
        expires: false,
    },
];

fn api_router() -> OpenApiRouter<AppState> {
    OpenApiRouter::with_openapi(ApiDoc::openapi())
        .merge(resets::routes())
        .merge(registrations::routes())
        .merge(sessions::routes())
        .merge(identity::routes())
        .merge(ekyc::routes())
        .merge(health::routes())
        .merge(passkeys::routes())
        .merge(settings::routes())
        .merge(consents::routes())
}

fn upload_router() -> OpenApiRouter<AppState> {
    ekyc::upload_routes()
}

async fn openapi_json() -> Json<utoipa::openapi::OpenApi> {
    Json(openapi())
}

/// The document's frame; the paths and their schemas come from the routers.
#[derive(OpenApi)]
#[openapi(
    info(title = "Mimoto member API", version = "1", description = "Registration (F1), login and password reset (F2), identity verification against the roster (F3), health and medical access authentication (F4, eKYC), and the health data behind the secret question or a passkey (F5), for native apps."),
    modifiers(&BearerAuth),
)]
struct ApiDoc;

struct BearerAuth;

impl utoipa::Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()),
        );
    }
}

// ---------------------------------------------------------------------------------------
// Request schemas: the values the server takes, stated in the document (issue #15, point 1)

/// A string schema that takes exactly `values`.
fn string_enum(values: &[&str], description: &str) -> utoipa::openapi::Object {
    use utoipa::openapi::schema::{ObjectBuilder, Type};
    ObjectBuilder::new()
        .schema_type(Type::String)
        .enum_values(Some(values.iter().copied()))
        .description(Some(description))
        .build()
}

pub(crate) fn org_type_schema() -> utoipa::openapi::Object {
    string_enum(&["health_insurance", "municipality"], "health_insurance (健康保険・共済組合または会社) | municipality")
}

/// The consent documents accepted: every one of the flow's `consents_required` (platform_terms,
/// org_privacy and, for organizations with their own points, point_terms).
pub(crate) fn consent_docs_schema() -> utoipa::openapi::Array {
    utoipa::openapi::schema::ArrayBuilder::new()
        .items(string_enum(&["platform_terms", "org_privacy", "point_terms"], "A consent document."))
        .examples([serde_json::json!(["platform_terms", "org_privacy", "point_terms"])])
        .build()
}

/// Every consent document (#16 point 8).
pub(crate) fn all_consent_docs_schema() -> utoipa::openapi::Array {
    utoipa::openapi::schema::ArrayBuilder::new()
        .items(consent_doc_schema())
        .examples([serde_json::json!(["platform_terms"])])
        .build()
}

pub(crate) fn consent_doc_schema() -> utoipa::openapi::Object {
    string_enum(&["platform_terms", "org_privacy", "point_terms", "biometric", "health_data"], "A consent document.")
}

/// The purpose consents: face images before F4, health data before F5.
pub(crate) fn purpose_doc_schema() -> utoipa::openapi::Object {
    string_enum(&["biometric", "health_data"], "A purpose consent.")
}

pub(crate) fn document_kind_schema() -> utoipa::openapi::Object {
    string_enum(
        &["drivers_license", "my_number_card", "driving_history_certificate", "residence_card"],
        "The photo ID (本人確認書類).",
    )
}

pub(crate) fn capture_schema() -> utoipa::openapi::Object {
    string_enum(&["document_front", "document_back", "selfie_frontal", "selfie_angled"], "What is photographed.")
}

/// 保険者番号 as the server takes it: 6 or 8 ASCII or full-width digits, with white space
/// (ASCII or U+3000) around them, the last digit the check digit (`format: insurer-number`).
pub(crate) fn insurer_number_schema() -> utoipa::openapi::Object {
    use utoipa::openapi::schema::{ObjectBuilder, SchemaFormat, Type};
    ObjectBuilder::new()
        .schema_type(Type::String)
        .format(Some(SchemaFormat::Custom("insurer-number".into())))
        .pattern(Some(r"^[ \t\n\r\f\v\u3000]*[0-9\uFF10-\uFF19]{6}([0-9\uFF10-\uFF19]{2})?[ \t\n\r\f\v\u3000]*$"))
        .description(Some(
            "6 or 8 digits (full-width digits are taken); the last one is the check digit (from the right, weights 2, 1, 2, …; digit sums of the products; 10 minus the units digit of the total).",
        ))
        .examples([serde_json::json!("133033")])
        .build()
}

// ---------------------------------------------------------------------------------------
// Edge: locale, JSON bodies, path ids, errors, bearer auth

/// The caller's language from `Accept-Language`.
pub struct ApiLocale(pub Locale);

impl<S: Send + Sync> FromRequestParts<S> for ApiLocale {
    type Rejection = std::convert::Infallible;
    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        Ok(ApiLocale(locale_of(&parts.headers)))
    }
}

/// The first language of `Accept-Language` that we speak; Japanese otherwise.
fn locale_of(headers: &axum::http::HeaderMap) -> Locale {
    headers
        .get(header::ACCEPT_LANGUAGE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(',').next())
        .and_then(|tag| Locale::parse(tag.split(';').next().unwrap_or("")))
        .unwrap_or_default()
}

#[derive(Serialize, ToSchema)]
pub struct ErrorBody {
    pub error: ErrorDetail,
}

#[derive(Serialize, ToSchema)]
pub struct ErrorDetail {
    /// Stable code, e.g. `insurer_number_check_digit`, `email_taken`, `code_expired`.
    pub code: String,
    /// Message for the member, in the requested language.
    pub message: String,
    /// The request field the error is about.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub field: Option<String>,
    /// Where to ask for help (the customer center), when the guide sends members there.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub inquiry_url: Option<String>,
    /// Tries left for a one-time password, a face photo or the secret question.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub remaining_attempts: Option<i32>,
    /// Consent documents still to be accepted.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Vec<String>>, example = json!(["org_privacy"]))]
    pub missing_consents: Option<Vec<ConsentDoc>>,
}

pub struct ApiError {
    err: ServiceError,
    locale: Locale,
}

pub(crate) type ApiResult<T> = Result<T, ApiError>;

pub(crate) trait OrApi<T> {
    fn or_api(self, locale: Locale) -> ApiResult<T>;
}

impl<T> OrApi<T> for Result<T, ServiceError> {
    fn or_api(self, locale: Locale) -> ApiResult<T> {
        self.map_err(|err| ApiError { err, locale })
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let e = &self.err;
        if e.is_internal() {
            tracing::error!(error = %e, "api request failed");
        } else if let ServiceError::Unavailable(_) = e {
            tracing::warn!(error = %e, "api request refused: database unavailable");
        }
        let detail = ErrorDetail {
            code: e.code().to_string(),
            message: e.message(self.locale),
            field: e.field().map(str::to_string),
            inquiry_url: e.suggests_customer_center().then(|| "/inquiry/new".to_string()),
            remaining_attempts: e.remaining_attempts(),
            missing_consents: match e {
                ServiceError::ConsentsMissing(m) | ServiceError::ConsentRequired(m) => Some(m.clone()),
                _ => None,
            },
        };
        let mut resp = (e.status(), Json(ErrorBody { error: detail })).into_response();
        let retry = match e {
            ServiceError::RateLimited { retry_after } => Some(*retry_after),
            ServiceError::ResendTooSoon { wait_secs } => Some(*wait_secs),
            ServiceError::Unavailable(_) => Some(app::error::RETRY_UNAVAILABLE_SECS as i64),
            _ => None,
        };
        if let Some(secs) = retry {
            if let Ok(v) = HeaderValue::from_str(&secs.to_string()) {
                resp.headers_mut().insert(header::RETRY_AFTER, v);
            }
        }
        resp
    }
}

/// `Json<T>` whose rejections use the API's error shape.
pub struct ApiJson<T>(pub T);

impl<S: Send + Sync, T: serde::de::DeserializeOwned> FromRequest<S> for ApiJson<T> {
    type Rejection = ApiError;
    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        let (mut parts, body) = req.into_parts();
        let ApiLocale(locale) = ApiLocale::from_request_parts(&mut parts, state).await.unwrap_or(ApiLocale(Locale::Ja));
        let req = Request::from_parts(parts, body);
        match Json::<T>::from_request(req, state).await {
            Ok(Json(v)) => Ok(ApiJson(v)),
            Err(rej) if rej.status() == axum::http::StatusCode::PAYLOAD_TOO_LARGE => {
                Err(ApiError { err: ServiceError::BodyTooLarge, locale })
            }
            Err(rej) => {
                let detail = match rej {
                    JsonRejection::JsonDataError(e) => e.body_text(),
                    JsonRejection::JsonSyntaxError(_) => "malformed JSON".into(),
                    JsonRejection::MissingJsonContentType(_) => "expected Content-Type: application/json".into(),
                    _ => "unreadable body".into(),
                };
                Err(ApiError { err: ServiceError::InvalidRequest(detail), locale })
            }
        }
    }
}

/// Typed ids from the path (`FlowId`, `ApplicationId`, or a tuple with one). Every flow of this
/// API answers an unknown id with 404 `flow_not_found`, so a malformed one answers the same:
/// a client cannot tell "not an id" from "no such id".
pub struct IdPath<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned + Send> FromRequestParts<S> for IdPath<T> {
    type Rejection = ApiError;
    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        match Path::<T>::from_request_parts(parts, state).await {
            Ok(Path(v)) => Ok(IdPath(v)),
            Err(_) => {
                let ApiLocale(locale) =
                    ApiLocale::from_request_parts(parts, state).await.unwrap_or(ApiLocale(Locale::Ja));
                Err(ApiError { err: ServiceError::FlowNotFound, locale })
            }
        }
    }
}

/// Answers made by layers rather than handlers under `/api/` — a body over the limit (413), a
/// request over the time limit (408), a panic (500) — in the API's error shape, like every
/// other answer the document lists.
pub async fn layer_answers_as_errors(request: Request, next: axum::middleware::Next) -> Response {
    let api = request.uri().path().starts_with("/api/");
    let locale = locale_of(request.headers());
    let response = next.run(request).await;
    let json =
        response.headers().get(header::CONTENT_TYPE).is_some_and(|v| v.as_bytes().starts_with(b"application/json"));
    if !api || json {
        return response;
    }
    let err = match response.status() {
        axum::http::StatusCode::PAYLOAD_TOO_LARGE => ServiceError::BodyTooLarge,
        axum::http::StatusCode::REQUEST_TIMEOUT => ServiceError::TimedOut,
        axum::http::StatusCode::INTERNAL_SERVER_ERROR => ServiceError::Internal("panic in a handler".into()),
        _ => return response,
    };
    let mut answer = ApiError { err, locale }.into_response();
    answer.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    answer
}

/// The signed-in member of a bearer-token request, who owes no re-consent: while a document
/// the member accepted has a newer version, every endpoint taking this answers 403
/// `consent_required` with the documents in `missing_consents` (see [`ApiSignedIn`]).
pub struct ApiMember {
    pub member: Member,
    pub token: String,
}

impl FromRequestParts<AppState> for ApiMember {
    type Rejection = ApiError;
    async fn from_request_parts(parts: &mut Parts, app: &AppState) -> Result<Self, Self::Rejection> {
        let ApiSignedIn { member, token } = ApiSignedIn::from_request_parts(parts, app).await?;
        let ApiLocale(locale) = ApiLocale::from_request_parts(parts, app).await.unwrap_or(ApiLocale(Locale::Ja));
        app::services::consents::require_current(app, &member).await.or_api(locale)?;
        Ok(ApiMember { member, token })
    }
}

/// The signed-in member of a bearer-token request, re-consent owed or not: logout, the
/// profile and the consent endpoints.
pub struct ApiSignedIn {
    pub member: Member,
    pub token: String,
}

impl FromRequestParts<AppState> for ApiSignedIn {
    type Rejection = ApiError;
    async fn from_request_parts(parts: &mut Parts, app: &AppState) -> Result<Self, Self::Rejection> {
        let ApiLocale(locale) = ApiLocale::from_request_parts(parts, app).await.unwrap_or(ApiLocale(Locale::Ja));
        let token = parts
            .headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .map(str::trim)
            .filter(|t| !t.is_empty())
            .ok_or(ApiError { err: ServiceError::Unauthorized, locale })?
            .to_string();
        match auth::authenticate(app, &token).await.or_api(locale)? {
            Some(member) if member.session.kind == auth::SessionKind::Api.as_str() => Ok(ApiSignedIn { member, token }),
            _ => Err(ApiError { err: ServiceError::Unauthorized, locale }),
        }
    }
}

// ---------------------------------------------------------------------------------------
// Views shared by several resources

#[derive(Serialize, ToSchema)]
pub struct OrganizationView {
    pub insurer_number: String,
    pub name: String,
    /// health_insurance | municipality
    #[schema(value_type = String, example = "health_insurance")]
    pub org_type: OrgType,
    /// The organization's own point name (独自ポイント); absent: members earn the platform coin.
    pub point_name: Option<String>,
    /// Checkup results are linked (健診結果連携): health & medical access authentication applies.
    pub checkup_linked: bool,
}

impl From<&Organization> for OrganizationView {
    fn from(o: &Organization) -> Self {
        OrganizationView {
            insurer_number: o.insurer_number.as_str().to_string(),
            name: o.name.clone(),
            org_type: o.org_type,
            point_name: o.point_name.clone(),
            checkup_linked: o.checkup_linked,
        }
    }
}
