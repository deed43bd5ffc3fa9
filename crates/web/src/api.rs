//! The JSON API under `/api/v1`: the same flows as the pages, for native apps. Sessions are
//! bearer tokens (`Authorization: Bearer …`), so there are no cookies and no CSRF here.
//! Messages follow `Accept-Language` (Japanese unless English is asked for).

use crate::error::ErrorStatus;
use axum::extract::rejection::JsonRejection;
use axum::extract::{FromRequest, FromRequestParts, Path, Request, State};
use axum::http::request::Parts;
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post};
use axum::{Json, Router};
use domain::consent::ConsentDoc;
use domain::org::{OrgType, Organization};
use domain::password::{MAX_CHARS, MIN_CHARS};
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use utoipa::{OpenApi, ToSchema};

use app::AppState;
use app::error::ServiceError;
use crate::ClientIp;
use app::i18n::{consent_label, t, Locale};
use app::services::auth::{self, Member, SessionKind};
use app::services::ekyc::{self, Capture};
use app::services::{identity, registration, reset};
use domain::identity::IdentityFailure;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/openapi.json", get(openapi_json))
        .route("/password-policy", get(password_policy))
        .route("/registrations", post(create_registration))
        .route("/registrations/{id}", get(get_registration))
        .route("/registrations/{id}/org-type", post(registration_org_type))
        .route("/registrations/{id}/insurer", post(registration_insurer))
        .route("/registrations/{id}/account", post(registration_account))
        .route("/registrations/{id}/consents", post(registration_consents))
        .route("/registrations/{id}/resend", post(registration_resend))
        .route("/registrations/{id}/verify", post(registration_verify))
        .route("/sessions", post(create_session))
        .route("/sessions/current", delete(delete_session))
        .route("/me", get(me))
        .route("/identity-verifications", post(create_identity))
        .route("/identity-verifications/{id}", get(get_identity))
        .route("/identity-verifications/{id}/insurer", post(identity_insurer))
        .route("/identity-verifications/{id}/card", post(identity_card))
        .route("/identity-verifications/{id}/person", post(identity_person))
        .route("/identity-verifications/{id}/confirm", post(identity_confirm))
        .route("/ekyc-applications", post(create_ekyc))
        .route("/ekyc-applications/{id}", get(get_ekyc))
        .route("/ekyc-applications/{id}/document", post(ekyc_document))
        .route("/ekyc-applications/{id}/remarks", post(ekyc_remarks))
        .route("/ekyc-applications/{id}/capture-tokens", post(ekyc_capture_token))
        .route("/ekyc-applications/{id}/confirm-document", post(ekyc_confirm_document))
        .route("/ekyc-applications/{id}/secret", post(ekyc_secret))
        .route("/ekyc-applications/{id}/submit", post(ekyc_submit))
        .route("/password-resets", post(create_reset))
        .route("/password-resets/{id}/resend", post(reset_resend))
        .route("/password-resets/{id}/complete", post(reset_complete))
}

/// Image uploads: their own, larger body limit (see `http::router`).
pub fn upload_routes() -> Router<AppState> {
    Router::new().route("/ekyc-applications/{id}/captures/{capture}", post(ekyc_capture))
}

// ---------------------------------------------------------------------------------------
// Edge: locale, JSON bodies, errors, bearer auth

/// The caller's language from `Accept-Language`.
pub struct ApiLocale(pub Locale);

impl<S: Send + Sync> FromRequestParts<S> for ApiLocale {
    type Rejection = std::convert::Infallible;
    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        let locale = parts
            .headers
            .get(header::ACCEPT_LANGUAGE)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.split(',').next())
            .and_then(|tag| Locale::parse(tag.split(';').next().unwrap_or("")))
            .unwrap_or_default();
        Ok(ApiLocale(locale))
    }
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
        }
        let detail = ErrorDetail {
            code: e.code().to_string(),
            message: e.message(self.locale),
            field: e.field().map(str::to_string),
            inquiry_url: e.suggests_customer_center().then(|| "/inquiry/new".to_string()),
            remaining_attempts: e.remaining_attempts(),
            missing_consents: match e {
                ServiceError::ConsentsMissing(m) => Some(m.clone()),
                _ => None,
            },
        };
        let mut resp = (e.status(), Json(ErrorBody { error: detail })).into_response();
        let retry = match e {
            ServiceError::RateLimited { retry_after } => Some(*retry_after),
            ServiceError::ResendTooSoon { wait_secs } => Some(*wait_secs),
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

/// The signed-in member of a bearer-token request.
pub struct ApiMember {
    pub member: Member,
    pub token: String,
}

impl FromRequestParts<AppState> for ApiMember {
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
            Some(member) if member.session.kind == "api" => Ok(ApiMember { member, token }),
            _ => Err(ApiError { err: ServiceError::Unauthorized, locale }),
        }
    }
}

// ---------------------------------------------------------------------------------------
// Views

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

#[derive(Serialize, ToSchema)]
pub struct ConsentItemView {
    /// platform_terms | org_privacy | point_terms
    #[schema(value_type = String, example = "platform_terms")]
    pub doc: ConsentDoc,
    pub version: String,
    /// The checkbox label to show.
    pub label: String,
}

#[derive(Serialize, ToSchema)]
pub struct RegistrationView {
    pub id: String,
    /// started → org_type_chosen → org_verified → account_entered → code_sent → completed
    pub state: String,
    #[schema(value_type = Option<String>, example = "health_insurance")]
    pub org_type: Option<OrgType>,
    pub organization: Option<OrganizationView>,
    pub email: Option<String>,
    /// The consents to collect (from state account_entered on).
    pub consents_required: Vec<ConsentItemView>,
    #[serde(with = "time::serde::rfc3339::option")]
    #[schema(value_type = Option<String>, format = DateTime)]
    pub code_sent_at: Option<OffsetDateTime>,
    #[serde(with = "time::serde::rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub expires_at: OffsetDateTime,
}

fn registration_view(view: &registration::View, locale: Locale) -> RegistrationView {
    let f = &view.flow;
    let consents_required = match &view.org {
        Some(org) if f.email.is_some() => registration::required_consents(org)
            .into_iter()
            .map(|doc| ConsentItemView {
                doc,
                version: doc.version().to_string(),
                label: consent_label(locale, doc, org),
            })
            .collect(),
        _ => Vec::new(),
    };
    RegistrationView {
        id: f.id.clone(),
        state: f.state.as_str().to_string(),
        org_type: f.org_type,
        organization: view.org.as_ref().map(OrganizationView::from),
        email: f.email.as_ref().map(|e| e.as_str().to_string()),
        consents_required,
        code_sent_at: f.code_sent_at,
        expires_at: f.expires_at,
    }
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
pub struct VerifiedView {
    pub registration: RegistrationView,
    /// The new member is signed in.
    pub session: SessionView,
}

#[derive(Serialize, ToSchema)]
pub struct MeView {
    pub email: String,
    pub organization: OrganizationView,
    /// 本人確認 done: points and walking events are available.
    pub identity_verified: bool,
}

#[derive(Serialize, ToSchema)]
pub struct CardView {
    pub symbol: String,
    pub number: String,
    pub branch: Option<String>,
}

#[derive(Serialize, ToSchema)]
pub struct IdentityView {
    pub id: String,
    /// started → insurer_confirmed → card_entered → person_entered → completed | failed
    pub state: String,
    /// The organization's card form, 1–4 (パターン①–④): 1 number with hyphen, 2 number only,
    /// 3 symbol with hyphen + number, 4 symbol + number.
    pub card_pattern: u8,
    pub organization: OrganizationView,
    pub card: Option<CardView>,
    pub family_name: Option<String>,
    pub given_name: Option<String>,
    /// YYYY-MM-DD
    pub birth_date: Option<String>,
    /// already_linked (①) | no_match (②), when state is failed.
    pub failure: Option<String>,
    #[serde(with = "time::serde::rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub expires_at: OffsetDateTime,
}

fn identity_view(v: &identity::View) -> IdentityView {
    let f = &v.flow;
    IdentityView {
        id: f.id.clone(),
        state: f.state.as_str().to_string(),
        card_pattern: v.org.card_pattern.number(),
        organization: OrganizationView::from(&v.org),
        card: f.card.as_ref().map(|c| CardView { symbol: c.symbol.clone(), number: c.number.clone(), branch: c.branch.clone() }),
        family_name: f.family_name.clone(),
        given_name: f.given_name.clone(),
        birth_date: f.birth_date.map(|d| d.to_string()),
        failure: f.failure.map(|x| match x {
            IdentityFailure::AlreadyLinked => "already_linked".to_string(),
            IdentityFailure::NoMatch => "no_match".to_string(),
        }),
        expires_at: f.expires_at,
    }
}

#[derive(Deserialize, ToSchema)]
pub struct IdentityInsurerRequest {
    pub insurer_number: String,
}

#[derive(Deserialize, ToSchema)]
pub struct IdentityCardRequest {
    /// 記号 (patterns 3 and 4); omit for patterns 1 and 2.
    #[serde(default)]
    pub symbol: String,
    /// 番号
    pub number: String,
    /// 枝番 (2 digits), when printed on the card.
    #[serde(default)]
    pub branch: String,
}

#[derive(Deserialize, ToSchema)]
pub struct IdentityPersonRequest {
    /// Full-width katakana (hiragana and half-width kana are converted).
    pub family_name: String,
    pub given_name: String,
    /// YYYY-MM-DD or YYYY/MM/DD
    pub birth_date: String,
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

// ---------------------------------------------------------------------------------------
// Requests

#[derive(Deserialize, ToSchema)]
pub struct OrgTypeRequest {
    /// health_insurance (健康保険・共済組合または会社) | municipality
    #[schema(value_type = String, example = "health_insurance")]
    pub org_type: OrgType,
}

#[derive(Deserialize, ToSchema)]
pub struct InsurerRequest {
    /// 保険者番号: 6 or 8 digits; full-width digits are accepted.
    pub insurer_number: String,
}

#[derive(Deserialize, ToSchema)]
pub struct AccountRequest {
    pub email: String,
    pub password: String,
}

#[derive(Deserialize, ToSchema)]
pub struct ConsentsRequest {
    /// Every document of `consents_required`: platform_terms, org_privacy and (orgs with own points) point_terms.
    #[schema(value_type = Vec<String>, example = json!(["platform_terms", "org_privacy", "point_terms"]))]
    pub accepted: Vec<ConsentDoc>,
}

#[derive(Deserialize, ToSchema)]
pub struct CodeRequest {
    /// ワンタイムパスワード (6 digits).
    pub code: String,
}

#[derive(Deserialize, ToSchema)]
pub struct LoginRequest {
    pub email: String,
    pub password: String,
}

#[derive(Deserialize, ToSchema)]
pub struct ResetRequest {
    pub email: String,
}

#[derive(Deserialize, ToSchema)]
pub struct ResetCompleteRequest {
    pub code: String,
    pub new_password: String,
}

// ---------------------------------------------------------------------------------------
// Handlers

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

#[utoipa::path(post, path = "/api/v1/registrations", tag = "registration",
    responses((status = 201, body = RegistrationView), (status = 429, body = ErrorBody)))]
async fn create_registration(State(app): State<AppState>, ApiLocale(locale): ApiLocale, ClientIp(ip): ClientIp) -> ApiResult<(StatusCode, Json<RegistrationView>)> {
    let flow = registration::start(&app, locale, &ip).await.or_api(locale)?;
    let view = registration::View { flow, org: None };
    Ok((StatusCode::CREATED, Json(registration_view(&view, locale))))
}

#[utoipa::path(get, path = "/api/v1/registrations/{id}", tag = "registration",
    params(("id" = String, Path)), responses((status = 200, body = RegistrationView), (status = 404, body = ErrorBody), (status = 410, body = ErrorBody)))]
async fn get_registration(State(app): State<AppState>, ApiLocale(locale): ApiLocale, Path(id): Path<String>) -> ApiResult<Json<RegistrationView>> {
    let view = registration::view(&app, &id).await.or_api(locale)?;
    Ok(Json(registration_view(&view, locale)))
}

#[utoipa::path(post, path = "/api/v1/registrations/{id}/org-type", tag = "registration", request_body = OrgTypeRequest,
    params(("id" = String, Path)), responses((status = 200, body = RegistrationView), (status = 409, body = ErrorBody)))]
async fn registration_org_type(State(app): State<AppState>, ApiLocale(locale): ApiLocale, Path(id): Path<String>, ApiJson(req): ApiJson<OrgTypeRequest>) -> ApiResult<Json<RegistrationView>> {
    let flow = registration::choose_org_type(&app, &id, req.org_type).await.or_api(locale)?;
    Ok(Json(registration_view(&registration::View { flow, org: None }, locale)))
}

#[utoipa::path(post, path = "/api/v1/registrations/{id}/insurer", tag = "registration", request_body = InsurerRequest,
    params(("id" = String, Path)), responses((status = 200, body = RegistrationView), (status = 422, body = ErrorBody), (status = 404, body = ErrorBody)))]
async fn registration_insurer(State(app): State<AppState>, ApiLocale(locale): ApiLocale, Path(id): Path<String>, ApiJson(req): ApiJson<InsurerRequest>) -> ApiResult<Json<RegistrationView>> {
    let view = registration::verify_insurer(&app, &id, &req.insurer_number).await.or_api(locale)?;
    Ok(Json(registration_view(&view, locale)))
}

#[utoipa::path(post, path = "/api/v1/registrations/{id}/account", tag = "registration", request_body = AccountRequest,
    params(("id" = String, Path)), responses((status = 200, body = RegistrationView), (status = 422, body = ErrorBody), (status = 409, body = ErrorBody)))]
async fn registration_account(State(app): State<AppState>, ApiLocale(locale): ApiLocale, ClientIp(ip): ClientIp, Path(id): Path<String>, ApiJson(req): ApiJson<AccountRequest>) -> ApiResult<Json<RegistrationView>> {
    let view = registration::enter_account(&app, &id, &req.email, &req.password, &ip).await.or_api(locale)?;
    Ok(Json(registration_view(&view, locale)))
}

#[utoipa::path(post, path = "/api/v1/registrations/{id}/consents", tag = "registration", request_body = ConsentsRequest,
    params(("id" = String, Path)), responses((status = 200, body = RegistrationView), (status = 422, body = ErrorBody)))]
async fn registration_consents(State(app): State<AppState>, ApiLocale(locale): ApiLocale, Path(id): Path<String>, ApiJson(req): ApiJson<ConsentsRequest>) -> ApiResult<Json<RegistrationView>> {
    let view = registration::accept_consents(&app, &id, &req.accepted).await.or_api(locale)?;
    Ok(Json(registration_view(&view, locale)))
}

#[utoipa::path(post, path = "/api/v1/registrations/{id}/resend", tag = "registration",
    params(("id" = String, Path)), responses((status = 200, body = RegistrationView), (status = 429, body = ErrorBody)))]
async fn registration_resend(State(app): State<AppState>, ApiLocale(locale): ApiLocale, ClientIp(ip): ClientIp, Path(id): Path<String>) -> ApiResult<Json<RegistrationView>> {
    let view = registration::resend_code(&app, &id, &ip).await.or_api(locale)?;
    Ok(Json(registration_view(&view, locale)))
}

#[utoipa::path(post, path = "/api/v1/registrations/{id}/verify", tag = "registration", request_body = CodeRequest,
    params(("id" = String, Path)), responses((status = 200, body = VerifiedView), (status = 422, body = ErrorBody), (status = 409, body = ErrorBody)))]
async fn registration_verify(State(app): State<AppState>, ApiLocale(locale): ApiLocale, ClientIp(ip): ClientIp, Path(id): Path<String>, ApiJson(req): ApiJson<CodeRequest>) -> ApiResult<Json<VerifiedView>> {
    let (view, user_id) = registration::verify_code(&app, &id, &req.code, &ip).await.or_api(locale)?;
    let session = auth::create_session(&app, &user_id, SessionKind::Api).await.or_api(locale)?;
    Ok(Json(VerifiedView {
        registration: registration_view(&view, locale),
        session: SessionView { token: session.token, expires_at: session.expires_at },
    }))
}

#[utoipa::path(post, path = "/api/v1/sessions", tag = "session", request_body = LoginRequest,
    responses((status = 201, body = SessionView), (status = 401, body = ErrorBody), (status = 429, body = ErrorBody)))]
async fn create_session(State(app): State<AppState>, ApiLocale(locale): ApiLocale, ClientIp(ip): ClientIp, ApiJson(req): ApiJson<LoginRequest>) -> ApiResult<(StatusCode, Json<SessionView>)> {
    let s = auth::login(&app, &req.email, &req.password, &ip, SessionKind::Api).await.or_api(locale)?;
    Ok((StatusCode::CREATED, Json(SessionView { token: s.token, expires_at: s.expires_at })))
}

#[utoipa::path(delete, path = "/api/v1/sessions/current", tag = "session", security(("bearer" = [])),
    responses((status = 204), (status = 401, body = ErrorBody)))]
async fn delete_session(State(app): State<AppState>, ApiLocale(locale): ApiLocale, m: ApiMember) -> ApiResult<StatusCode> {
    auth::logout(&app, &m.token).await.or_api(locale)?;
    Ok(StatusCode::NO_CONTENT)
}

#[utoipa::path(get, path = "/api/v1/me", tag = "session", security(("bearer" = [])),
    responses((status = 200, body = MeView), (status = 401, body = ErrorBody)))]
async fn me(State(app): State<AppState>, ApiLocale(locale): ApiLocale, m: ApiMember) -> ApiResult<Json<MeView>> {
    let p = auth::profile(&app, &m.member).await.or_api(locale)?;
    let verified = identity::verified_at(&app, &m.member.user.id).await.or_api(locale)?.is_some();
    Ok(Json(MeView { email: p.email, organization: OrganizationView::from(&p.org), identity_verified: verified }))
}

#[utoipa::path(post, path = "/api/v1/identity-verifications", tag = "identity", security(("bearer" = [])),
    responses((status = 201, body = IdentityView), (status = 409, body = ErrorBody, description = "already_verified"), (status = 401, body = ErrorBody)))]
async fn create_identity(State(app): State<AppState>, ApiLocale(locale): ApiLocale, m: ApiMember) -> ApiResult<(StatusCode, Json<IdentityView>)> {
    let v = identity::start(&app, &m.member).await.or_api(locale)?;
    Ok((StatusCode::CREATED, Json(identity_view(&v))))
}

#[utoipa::path(get, path = "/api/v1/identity-verifications/{id}", tag = "identity", security(("bearer" = [])),
    params(("id" = String, Path)), responses((status = 200, body = IdentityView), (status = 404, body = ErrorBody)))]
async fn get_identity(State(app): State<AppState>, ApiLocale(locale): ApiLocale, m: ApiMember, Path(id): Path<String>) -> ApiResult<Json<IdentityView>> {
    let v = identity::view(&app, &m.member, &id).await.or_api(locale)?;
    Ok(Json(identity_view(&v)))
}

#[utoipa::path(post, path = "/api/v1/identity-verifications/{id}/insurer", tag = "identity", security(("bearer" = [])), request_body = IdentityInsurerRequest,
    params(("id" = String, Path)), responses((status = 200, body = IdentityView), (status = 422, body = ErrorBody), (status = 409, body = ErrorBody)))]
async fn identity_insurer(State(app): State<AppState>, ApiLocale(locale): ApiLocale, m: ApiMember, Path(id): Path<String>, ApiJson(req): ApiJson<IdentityInsurerRequest>) -> ApiResult<Json<IdentityView>> {
    let v = identity::confirm_insurer(&app, &m.member, &id, &req.insurer_number).await.or_api(locale)?;
    Ok(Json(identity_view(&v)))
}

#[utoipa::path(post, path = "/api/v1/identity-verifications/{id}/card", tag = "identity", security(("bearer" = [])), request_body = IdentityCardRequest,
    params(("id" = String, Path)), responses((status = 200, body = IdentityView), (status = 422, body = ErrorBody)))]
async fn identity_card(State(app): State<AppState>, ApiLocale(locale): ApiLocale, m: ApiMember, Path(id): Path<String>, ApiJson(req): ApiJson<IdentityCardRequest>) -> ApiResult<Json<IdentityView>> {
    let v = identity::enter_card(&app, &m.member, &id, &req.symbol, &req.number, &req.branch).await.or_api(locale)?;
    Ok(Json(identity_view(&v)))
}

#[utoipa::path(post, path = "/api/v1/identity-verifications/{id}/person", tag = "identity", security(("bearer" = [])), request_body = IdentityPersonRequest,
    params(("id" = String, Path)), responses((status = 200, body = IdentityView), (status = 422, body = ErrorBody)))]
async fn identity_person(State(app): State<AppState>, ApiLocale(locale): ApiLocale, m: ApiMember, Path(id): Path<String>, ApiJson(req): ApiJson<IdentityPersonRequest>) -> ApiResult<Json<IdentityView>> {
    let v = identity::enter_person(&app, &m.member, &id, &req.family_name, &req.given_name, &req.birth_date).await.or_api(locale)?;
    Ok(Json(identity_view(&v)))
}

#[utoipa::path(post, path = "/api/v1/identity-verifications/{id}/confirm", tag = "identity", security(("bearer" = [])),
    params(("id" = String, Path)),
    responses((status = 200, body = IdentityView, description = "本人確認 completed"),
              (status = 409, body = ErrorBody, description = "identity_already_linked (①): log in with the earlier email"),
              (status = 422, body = ErrorBody, description = "identity_no_match (②): check the input, contact the customer center"),
              (status = 429, body = ErrorBody, description = "verification_locked: too many attempts in 24 h")))]
async fn identity_confirm(State(app): State<AppState>, ApiLocale(locale): ApiLocale, m: ApiMember, Path(id): Path<String>) -> ApiResult<Json<IdentityView>> {
    let v = identity::confirm(&app, &m.member, &id).await.or_api(locale)?;
    match v.flow.failure {
        Some(IdentityFailure::AlreadyLinked) => Err(ServiceError::IdentityAlreadyLinked).or_api(locale),
        Some(IdentityFailure::NoMatch) => Err(ServiceError::IdentityNoMatch).or_api(locale),
        None => Ok(Json(identity_view(&v))),
    }
}

#[utoipa::path(post, path = "/api/v1/password-resets", tag = "password-reset", request_body = ResetRequest,
    responses((status = 202, body = ResetView, description = "Same answer whether or not the address has an account"), (status = 422, body = ErrorBody), (status = 429, body = ErrorBody)))]
async fn create_reset(State(app): State<AppState>, ApiLocale(locale): ApiLocale, ClientIp(ip): ClientIp, ApiJson(req): ApiJson<ResetRequest>) -> ApiResult<(StatusCode, Json<ResetView>)> {
    let flow = reset::start(&app, &req.email, locale, &ip).await.or_api(locale)?;
    Ok((StatusCode::ACCEPTED, Json(ResetView { id: flow.id, state: flow.state.as_str().to_string() })))
}

#[utoipa::path(post, path = "/api/v1/password-resets/{id}/resend", tag = "password-reset",
    params(("id" = String, Path)), responses((status = 202, body = ResetView), (status = 429, body = ErrorBody)))]
async fn reset_resend(State(app): State<AppState>, ApiLocale(locale): ApiLocale, ClientIp(ip): ClientIp, Path(id): Path<String>) -> ApiResult<(StatusCode, Json<ResetView>)> {
    let flow = reset::resend(&app, &id, &ip).await.or_api(locale)?;
    Ok((StatusCode::ACCEPTED, Json(ResetView { id: flow.id, state: flow.state.as_str().to_string() })))
}

#[utoipa::path(post, path = "/api/v1/password-resets/{id}/complete", tag = "password-reset", request_body = ResetCompleteRequest,
    params(("id" = String, Path)), responses((status = 200, body = ResetView), (status = 422, body = ErrorBody)))]
async fn reset_complete(State(app): State<AppState>, ApiLocale(locale): ApiLocale, ClientIp(ip): ClientIp, Path(id): Path<String>, ApiJson(req): ApiJson<ResetCompleteRequest>) -> ApiResult<Json<ResetView>> {
    let flow = reset::complete(&app, &id, &req.code, &req.new_password, &ip).await.or_api(locale)?;
    Ok(Json(ResetView { id: flow.id, state: flow.state.as_str().to_string() }))
}

// ---------------------------------------------------------------------------------------
// OpenAPI

struct BearerAuth;

impl utoipa::Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme("bearer", SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()));
    }
}

// ---------------------------------------------------------------------------------------
// F4 健診・医療アクセス認証 (eKYC)

#[derive(Serialize, ToSchema)]
pub struct InstructionView {
    /// right | left (the member's own right/left)
    pub turn: String,
    /// closed | open
    pub mouth: String,
    /// e.g. 「右向きで口を閉じる」 (in the request's language)
    pub label: String,
}

#[derive(Serialize, ToSchema)]
pub struct EkycView {
    pub id: String,
    /// started → document_chosen → front_captured → document_captured → document_confirmed →
    /// frontal_verified → angled_verified → secret_set → completed | pending_review →
    /// approved | rejected
    pub state: String,
    /// drivers_license | my_number_card | driving_history_certificate | residence_card
    pub document: Option<String>,
    /// The member's answer about the remarks field (備考欄).
    pub remarks: Option<bool>,
    /// The capture expected next (document_front | document_back | selfie_frontal | selfie_angled).
    pub next_capture: Option<String>,
    /// The angled selfie's instruction, once the frontal selfie matched.
    pub instruction: Option<InstructionView>,
    pub face_attempts: u32,
    pub authenticated: bool,
}

fn ekyc_view(l: &ekyc::Loaded, locale: Locale) -> EkycView {
    let a = &l.data.app;
    let name = |v: serde_json::Value| v.as_str().map(str::to_string).unwrap_or_default();
    EkycView {
        id: l.record.id.clone(),
        state: l.record.state.clone(),
        document: a.document.map(|d| d.as_str().to_string()),
        remarks: a.remarks,
        next_capture: ekyc::next_capture(&l.data).map(|c| c.as_str().to_string()),
        instruction: a.instruction.map(|i| InstructionView {
            turn: name(serde_json::to_value(i.turn).unwrap_or_default()),
            mouth: name(serde_json::to_value(i.mouth).unwrap_or_default()),
            label: match locale {
                Locale::Ja => i.label_ja(),
                Locale::En => i.label_en(),
            },
        }),
        face_attempts: a.face_attempts,
        authenticated: a.is_authenticated(),
    }
}

#[derive(Deserialize, ToSchema)]
pub struct EkycDocumentRequest {
    /// drivers_license | my_number_card | driving_history_certificate | residence_card
    pub kind: String,
}

#[derive(Deserialize, ToSchema)]
pub struct EkycRemarksRequest {
    /// Whether the remarks field (備考欄) has entries.
    pub has_entries: bool,
}

#[derive(Deserialize, ToSchema)]
pub struct EkycCaptureTokenRequest {
    /// document_front | document_back | selfie_frontal | selfie_angled
    pub capture: String,
}

#[derive(Serialize, ToSchema)]
pub struct EkycCaptureTokenView {
    /// Send it as `X-Capture-Token` with the upload; valid once, for 10 minutes.
    pub token: String,
    pub capture: String,
}

#[derive(Deserialize, ToSchema)]
pub struct EkycSecretRequest {
    pub question: String,
    pub answer: String,
}

fn parse_capture(s: &str) -> Result<Capture, ServiceError> {
    serde_json::from_value(serde_json::Value::String(s.to_string())).map_err(|_| ServiceError::InvalidRequest(format!("unknown capture {s}")))
}

#[utoipa::path(post, path = "/api/v1/ekyc-applications", tag = "ekyc", security(("bearer" = [])),
    responses((status = 201, body = EkycView), (status = 409, description = "ekyc_not_available, identity_not_verified, already_verified")))]
async fn create_ekyc(State(app): State<AppState>, ApiLocale(locale): ApiLocale, m: ApiMember) -> ApiResult<(StatusCode, Json<EkycView>)> {
    let l = ekyc::start(&app, &m.member).await.or_api(locale)?;
    Ok((StatusCode::CREATED, Json(ekyc_view(&l, locale))))
}

#[utoipa::path(get, path = "/api/v1/ekyc-applications/{id}", tag = "ekyc", security(("bearer" = [])), responses((status = 200, body = EkycView)))]
async fn get_ekyc(State(app): State<AppState>, ApiLocale(locale): ApiLocale, m: ApiMember, Path(id): Path<String>) -> ApiResult<Json<EkycView>> {
    let l = ekyc::load(&app, &m.member, &id).await.or_api(locale)?;
    Ok(Json(ekyc_view(&l, locale)))
}

#[utoipa::path(post, path = "/api/v1/ekyc-applications/{id}/document", tag = "ekyc", security(("bearer" = [])), request_body = EkycDocumentRequest,
    responses((status = 200, body = EkycView)))]
async fn ekyc_document(State(app): State<AppState>, ApiLocale(locale): ApiLocale, m: ApiMember, Path(id): Path<String>, ApiJson(req): ApiJson<EkycDocumentRequest>) -> ApiResult<Json<EkycView>> {
    let kind = domain::ekyc::DocumentKind::parse(&req.kind).ok_or_else(|| ServiceError::InvalidRequest("unknown document kind".into())).or_api(locale)?;
    let l = ekyc::choose_document(&app, &m.member, &id, kind).await.or_api(locale)?;
    Ok(Json(ekyc_view(&l, locale)))
}

#[utoipa::path(post, path = "/api/v1/ekyc-applications/{id}/remarks", tag = "ekyc", security(("bearer" = [])), request_body = EkycRemarksRequest,
    responses((status = 200, body = EkycView)))]
async fn ekyc_remarks(State(app): State<AppState>, ApiLocale(locale): ApiLocale, m: ApiMember, Path(id): Path<String>, ApiJson(req): ApiJson<EkycRemarksRequest>) -> ApiResult<Json<EkycView>> {
    let l = ekyc::answer_remarks(&app, &m.member, &id, req.has_entries).await.or_api(locale)?;
    Ok(Json(ekyc_view(&l, locale)))
}

#[utoipa::path(post, path = "/api/v1/ekyc-applications/{id}/capture-tokens", tag = "ekyc", security(("bearer" = [])), request_body = EkycCaptureTokenRequest,
    responses((status = 201, body = EkycCaptureTokenView), (status = 409, description = "wrong_step: not the capture expected next")))]
async fn ekyc_capture_token(State(app): State<AppState>, ApiLocale(locale): ApiLocale, m: ApiMember, Path(id): Path<String>, ApiJson(req): ApiJson<EkycCaptureTokenRequest>) -> ApiResult<(StatusCode, Json<EkycCaptureTokenView>)> {
    let capture = parse_capture(&req.capture).or_api(locale)?;
    let token = ekyc::capture_token(&app, &m.member, &id, capture).await.or_api(locale)?;
    Ok((StatusCode::CREATED, Json(EkycCaptureTokenView { token, capture: capture.as_str().into() })))
}

/// Uploads one capture: the image bytes as the body (`Content-Type: image/jpeg`, `image/png`
/// or `image/webp`, at most 12 MiB) and the capture token as `X-Capture-Token`.
#[utoipa::path(post, path = "/api/v1/ekyc-applications/{id}/captures/{capture}", tag = "ekyc", security(("bearer" = [])),
    params(("capture" = String, Path, description = "document_front | document_back | selfie_frontal | selfie_angled"),
           ("X-Capture-Token" = String, Header, description = "from capture-tokens")),
    request_body(content = Vec<u8>, content_type = "image/jpeg"),
    responses((status = 200, body = EkycView),
              (status = 422, description = "image_* (unreadable), face_* (quality, with advice), face_mismatch (顔写真が一致しません), instruction_not_followed, same_image"),
              (status = 409, description = "capture_token_invalid (stale or used), wrong_step, document_back_not_allowed"),
              (status = 413, description = "larger than 12 MiB")))]
async fn ekyc_capture(
    State(app): State<AppState>,
    ApiLocale(locale): ApiLocale,
    m: ApiMember,
    Path((id, capture)): Path<(String, String)>,
    headers: axum::http::HeaderMap,
    body: axum::body::Bytes,
) -> ApiResult<Json<EkycView>> {
    let capture = parse_capture(&capture).or_api(locale)?;
    let token = headers.get("x-capture-token").and_then(|v| v.to_str().ok()).unwrap_or_default().to_string();
    let l = ekyc::upload(&app, &m.member, &id, capture, &token, body.to_vec()).await.or_api(locale)?;
    Ok(Json(ekyc_view(&l, locale)))
}

#[utoipa::path(post, path = "/api/v1/ekyc-applications/{id}/confirm-document", tag = "ekyc", security(("bearer" = [])), responses((status = 200, body = EkycView)))]
async fn ekyc_confirm_document(State(app): State<AppState>, ApiLocale(locale): ApiLocale, m: ApiMember, Path(id): Path<String>) -> ApiResult<Json<EkycView>> {
    let l = ekyc::confirm_document(&app, &m.member, &id).await.or_api(locale)?;
    Ok(Json(ekyc_view(&l, locale)))
}

#[utoipa::path(post, path = "/api/v1/ekyc-applications/{id}/secret", tag = "ekyc", security(("bearer" = [])), request_body = EkycSecretRequest,
    responses((status = 200, body = EkycView), (status = 422, description = "secret_question_invalid, secret_answer_empty")))]
async fn ekyc_secret(State(app): State<AppState>, ApiLocale(locale): ApiLocale, m: ApiMember, Path(id): Path<String>, ApiJson(req): ApiJson<EkycSecretRequest>) -> ApiResult<Json<EkycView>> {
    let l = ekyc::set_secret(&app, &m.member, &id, &req.question, &req.answer).await.or_api(locale)?;
    Ok(Json(ekyc_view(&l, locale)))
}

/// 「この内容で認証する」: state becomes completed (完了しました) or pending_review (申請).
#[utoipa::path(post, path = "/api/v1/ekyc-applications/{id}/submit", tag = "ekyc", security(("bearer" = [])), responses((status = 200, body = EkycView)))]
async fn ekyc_submit(State(app): State<AppState>, ApiLocale(locale): ApiLocale, m: ApiMember, Path(id): Path<String>) -> ApiResult<Json<EkycView>> {
    let l = ekyc::submit(&app, &m.member, &id).await.or_api(locale)?;
    Ok(Json(ekyc_view(&l, locale)))
}

#[derive(OpenApi)]
#[openapi(
    info(title = "Mimoto member API", version = "1", description = "Registration (F1), login and password reset (F2), identity verification against the roster (F3), health and medical access authentication (F4, eKYC), and the health data behind the secret question (F5), for native apps."),
    paths(password_policy, create_registration, get_registration, registration_org_type, registration_insurer,
          registration_account, registration_consents, registration_resend, registration_verify,
          create_session, delete_session, me, create_reset, reset_resend, reset_complete,
          create_identity, get_identity, identity_insurer, identity_card, identity_person, identity_confirm,
          create_ekyc, get_ekyc, ekyc_document, ekyc_remarks, ekyc_capture_token, ekyc_capture, ekyc_confirm_document,
          ekyc_secret, ekyc_submit,
          crate::api_health::health_status, crate::api_health::health_step_up,
          crate::api_health::health_checkups, crate::api_health::health_medications,
          crate::api_health::health_expenses),
    modifiers(&BearerAuth),
)]
pub struct ApiDoc;

async fn openapi_json() -> Json<utoipa::openapi::OpenApi> {
    Json(ApiDoc::openapi())
}
