//! F1 新規登録: a registration flow, step by step, ending with the new member signed in.

use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use domain::consent::ConsentDoc;
use domain::ids::FlowId;
use domain::org::OrgType;
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::sessions::SessionView;
use super::{ApiJson, ApiLocale, ApiResult, ErrorBody, IdPath, OrApi, OrganizationView};
use crate::ClientIp;
use app::i18n::{consent_label, Locale};
use app::services::auth::{self, SessionKind};
use app::services::{consents, registration};
use app::{App, AppState};
use store::MailFate;

pub(super) fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(create_registration))
        .routes(routes!(get_registration))
        .routes(routes!(registration_org_type))
        .routes(routes!(registration_insurer))
        .routes(routes!(registration_account))
        .routes(routes!(registration_consents))
        .routes(routes!(registration_resend))
        .routes(routes!(registration_verify))
}

#[derive(Serialize, ToSchema)]
pub struct ConsentItemView {
    /// platform_terms | org_privacy | point_terms
    #[schema(value_type = String, example = "platform_terms")]
    pub doc: ConsentDoc,
    pub version: String,
    /// The checkbox label to show.
    pub label: String,
    /// The document's page (link it beside the checkbox).
    pub url: String,
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
    /// While the code is awaited (GET only): what became of its mail — `pending`, `sent`,
    /// `dropped` (not sent: the code expired first; resend) or `refused` (the member's mail
    /// server refused it for good; change the address with POST …/account).
    #[schema(value_type = Option<String>, example = "sent")]
    pub mail_status: Option<&'static str>,
    #[serde(with = "time::serde::rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub expires_at: OffsetDateTime,
}

async fn registration_view(app: &App, view: &registration::View, locale: Locale) -> ApiResult<RegistrationView> {
    let f = &view.flow;
    let consents_required = match &view.org {
        Some(org) if f.email.is_some() => {
            let versions = consents::current_versions(app, &org.id).await.or_api(locale)?;
            registration::required_consents(org)
                .into_iter()
                .map(|doc| ConsentItemView {
                    doc,
                    version: versions.get(&doc).cloned().unwrap_or_default(),
                    label: consent_label(locale, doc, org),
                    url: consents::document_path(doc, Some(&org.id)),
                })
                .collect()
        }
        _ => Vec::new(),
    };
    Ok(RegistrationView {
        id: f.id.clone(),
        state: f.state.as_str().to_string(),
        org_type: f.org_type,
        organization: view.org.as_ref().map(OrganizationView::from),
        email: f.email.as_ref().map(|e| e.as_str().to_string()),
        consents_required,
        code_sent_at: f.code_sent_at,
        mail_status: view.mail.map(|m| match m {
            MailFate::Pending => "pending",
            MailFate::Sent => "sent",
            MailFate::Dropped => "dropped",
            MailFate::Refused => "refused",
        }),
        expires_at: f.expires_at,
    })
}

#[derive(Serialize, ToSchema)]
pub struct VerifiedView {
    pub registration: RegistrationView,
    /// The new member is signed in.
    pub session: SessionView,
}

#[derive(Deserialize, ToSchema)]
pub struct OrgTypeRequest {
    #[schema(schema_with = super::org_type_schema)]
    pub org_type: OrgType,
}

#[derive(Deserialize, ToSchema)]
pub struct InsurerRequest {
    #[schema(schema_with = super::insurer_number_schema)]
    pub insurer_number: String,
}

#[derive(Deserialize, ToSchema)]
pub struct AccountRequest {
    /// At most 254 characters once normalized (NFKC, trimmed, lower-cased); ASCII unless the
    /// mail relay takes SMTPUTF8 (`email_not_ascii`).
    #[schema(format = Email, max_length = 254)]
    pub email: String,
    /// パスワード設定の条件 (`GET /api/v1/password-policy`): 8–128 characters, not guessable
    /// (zxcvbn score 3 or more, not built from the address): `format: password`.
    #[schema(format = Password, min_length = 8, max_length = 128)]
    pub password: String,
}

#[derive(Deserialize, ToSchema)]
pub struct ConsentsRequest {
    /// Every document of `consents_required`: platform_terms, org_privacy and (orgs with own points) point_terms.
    #[schema(schema_with = super::consent_docs_schema)]
    pub accepted: Vec<ConsentDoc>,
}

#[derive(Deserialize, ToSchema)]
pub struct CodeRequest {
    /// ワンタイムパスワード: 6 digits (full-width digits, spaces and hyphens between them are
    /// taken).
    pub code: String,
}

#[utoipa::path(post, path = "/api/v1/registrations", tag = "registration",
    responses((status = 201, body = RegistrationView), (status = 429, body = ErrorBody)))]
async fn create_registration(
    State(app): State<AppState>,
    ApiLocale(locale): ApiLocale,
    ClientIp(ip): ClientIp,
) -> ApiResult<(StatusCode, Json<RegistrationView>)> {
    let flow = registration::start(&app, locale, &ip).await.or_api(locale)?;
    let view = registration::View { flow, org: None, mail: None };
    Ok((StatusCode::CREATED, Json(registration_view(&app, &view, locale).await?)))
}

#[utoipa::path(get, path = "/api/v1/registrations/{id}", tag = "registration",
    params(("id" = String, Path)), responses((status = 200, body = RegistrationView), (status = 404, body = ErrorBody), (status = 410, body = ErrorBody)))]
async fn get_registration(
    State(app): State<AppState>,
    ApiLocale(locale): ApiLocale,
    IdPath(id): IdPath<FlowId>,
) -> ApiResult<Json<RegistrationView>> {
    let view = registration::view(&app, &id).await.or_api(locale)?;
    Ok(Json(registration_view(&app, &view, locale).await?))
}

#[utoipa::path(post, path = "/api/v1/registrations/{id}/org-type", tag = "registration", request_body = OrgTypeRequest,
    params(("id" = String, Path)), responses((status = 200, body = RegistrationView), (status = 409, body = ErrorBody)))]
async fn registration_org_type(
    State(app): State<AppState>,
    ApiLocale(locale): ApiLocale,
    IdPath(id): IdPath<FlowId>,
    ApiJson(req): ApiJson<OrgTypeRequest>,
) -> ApiResult<Json<RegistrationView>> {
    let flow = registration::choose_org_type(&app, &id, req.org_type).await.or_api(locale)?;
    Ok(Json(registration_view(&app, &registration::View { flow, org: None, mail: None }, locale).await?))
}

#[utoipa::path(post, path = "/api/v1/registrations/{id}/insurer", tag = "registration", request_body = InsurerRequest,
    params(("id" = String, Path)), responses((status = 200, body = RegistrationView), (status = 422, body = ErrorBody), (status = 404, body = ErrorBody)))]
async fn registration_insurer(
    State(app): State<AppState>,
    ApiLocale(locale): ApiLocale,
    IdPath(id): IdPath<FlowId>,
    ApiJson(req): ApiJson<InsurerRequest>,
) -> ApiResult<Json<RegistrationView>> {
    let view = registration::verify_insurer(&app, &id, &req.insurer_number).await.or_api(locale)?;
    Ok(Json(registration_view(&app, &view, locale).await?))
}

#[utoipa::path(post, path = "/api/v1/registrations/{id}/account", tag = "registration", request_body = AccountRequest,
    params(("id" = String, Path)), responses((status = 200, body = RegistrationView), (status = 422, body = ErrorBody), (status = 409, body = ErrorBody),
        (status = 429, body = ErrorBody, description = "rate_limited: registrations per client address or per email address")))]
async fn registration_account(
    State(app): State<AppState>,
    ApiLocale(locale): ApiLocale,
    ClientIp(ip): ClientIp,
    IdPath(id): IdPath<FlowId>,
    ApiJson(req): ApiJson<AccountRequest>,
) -> ApiResult<Json<RegistrationView>> {
    let view = registration::enter_account(&app, &id, &req.email, &req.password, &ip).await.or_api(locale)?;
    Ok(Json(registration_view(&app, &view, locale).await?))
}

#[utoipa::path(post, path = "/api/v1/registrations/{id}/consents", tag = "registration", request_body = ConsentsRequest,
    params(("id" = String, Path)), responses((status = 200, body = RegistrationView), (status = 422, body = ErrorBody)))]
async fn registration_consents(
    State(app): State<AppState>,
    ApiLocale(locale): ApiLocale,
    IdPath(id): IdPath<FlowId>,
    ApiJson(req): ApiJson<ConsentsRequest>,
) -> ApiResult<Json<RegistrationView>> {
    let view = registration::accept_consents(&app, &id, &req.accepted).await.or_api(locale)?;
    Ok(Json(registration_view(&app, &view, locale).await?))
}

#[utoipa::path(post, path = "/api/v1/registrations/{id}/resend", tag = "registration",
    params(("id" = String, Path)), responses((status = 200, body = RegistrationView), (status = 429, body = ErrorBody)))]
async fn registration_resend(
    State(app): State<AppState>,
    ApiLocale(locale): ApiLocale,
    ClientIp(ip): ClientIp,
    IdPath(id): IdPath<FlowId>,
) -> ApiResult<Json<RegistrationView>> {
    let view = registration::resend_code(&app, &id, &ip).await.or_api(locale)?;
    Ok(Json(registration_view(&app, &view, locale).await?))
}

#[utoipa::path(post, path = "/api/v1/registrations/{id}/verify", tag = "registration", request_body = CodeRequest,
    params(("id" = String, Path)), responses((status = 200, body = VerifiedView), (status = 422, body = ErrorBody), (status = 409, body = ErrorBody),
        (status = 429, body = ErrorBody, description = "code_budget_spent: 10 codes per registration or 20 per address a day, resends included (inquiry_url); rate_limited")))]
async fn registration_verify(
    State(app): State<AppState>,
    ApiLocale(locale): ApiLocale,
    ClientIp(ip): ClientIp,
    IdPath(id): IdPath<FlowId>,
    ApiJson(req): ApiJson<CodeRequest>,
) -> ApiResult<Json<VerifiedView>> {
    let (view, user_id) = registration::verify_code(&app, &id, &req.code, &ip).await.or_api(locale)?;
    let session = auth::create_session(&app, &user_id, SessionKind::Api).await.or_api(locale)?;
    Ok(Json(VerifiedView {
        registration: registration_view(&app, &view, locale).await?,
        session: SessionView { token: session.token, expires_at: session.expires_at },
    }))
}
