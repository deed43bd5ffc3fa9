//! 同意 (#16 point 8): the member's consents, the re-consent after a new version, the purpose
//! consents of F4 (`biometric`) and F5 (`health_data`) and their withdrawal; and the public
//! documents.

use axum::extract::{Path, Query, State};
use axum::Json;
use domain::consent::ConsentDoc;
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::{ApiError, ApiJson, ApiLocale, ApiMember, ApiResult, ApiSignedIn, ErrorBody, OrApi};
use crate::ClientIp;
use app::error::ServiceError;
use app::i18n::Locale;
use app::services::auth::Member;
use app::services::consents;
use app::AppState;

pub(super) fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_consents))
        .routes(routes!(accept_renewal))
        .routes(routes!(give_consent, withdraw_consent))
        .routes(routes!(get_document))
}

#[derive(Serialize, ToSchema)]
pub struct ConsentView {
    /// platform_terms | org_privacy | point_terms | biometric | health_data
    #[schema(value_type = String, example = "health_data")]
    pub doc: ConsentDoc,
    /// The version accepted last (withdrawn or not); absent: never accepted.
    pub version: Option<String>,
    #[serde(with = "time::serde::rfc3339::option")]
    #[schema(value_type = Option<String>, format = DateTime)]
    pub accepted_at: Option<OffsetDateTime>,
    #[serde(with = "time::serde::rfc3339::option")]
    #[schema(value_type = Option<String>, format = DateTime)]
    pub withdrawn_at: Option<OffsetDateTime>,
    /// The version in force.
    pub current_version: Option<String>,
    /// Whether the member may withdraw it (purpose consents only; the others end by leaving).
    pub withdrawable: bool,
    /// The document's page.
    pub url: String,
}

#[derive(Serialize, ToSchema)]
pub struct ConsentsView {
    pub consents: Vec<ConsentView>,
    /// Documents to accept again (`POST /api/v1/consents/renewal`) before the other member
    /// endpoints answer.
    #[schema(value_type = Vec<String>, example = json!(["platform_terms"]))]
    pub pending: Vec<ConsentDoc>,
}

async fn view(app: &AppState, member: &Member, locale: Locale) -> ApiResult<ConsentsView> {
    let statuses = consents::statuses(app, member).await.or_api(locale)?;
    let pending = consents::pending(app, member).await.or_api(locale)?;
    Ok(ConsentsView {
        consents: statuses
            .into_iter()
            .map(|s| ConsentView {
                doc: s.doc,
                withdrawable: s.doc.is_purpose() && s.withdrawn_at.is_none() && s.accepted.is_some(),
                version: s.accepted.as_ref().map(|(v, _)| v.clone()),
                accepted_at: s.accepted.as_ref().map(|(_, at)| *at),
                withdrawn_at: s.withdrawn_at,
                current_version: s.current_version,
                url: s.path,
            })
            .collect(),
        pending,
    })
}

/// The member's consents, and what must be accepted again (answers also while a re-consent
/// is owed).
#[utoipa::path(get, path = "/api/v1/consents", tag = "consents", security(("bearer" = [])),
    responses((status = 200, body = ConsentsView), (status = 401, body = ErrorBody)))]
async fn list_consents(
    State(app): State<AppState>,
    ApiLocale(locale): ApiLocale,
    m: ApiSignedIn,
) -> ApiResult<Json<ConsentsView>> {
    Ok(Json(view(&app, &m.member, locale).await?))
}

#[derive(Deserialize, ToSchema)]
pub struct RenewalRequest {
    /// The documents accepted: every one of `pending`.
    #[schema(schema_with = super::all_consent_docs_schema)]
    pub accepted: Vec<ConsentDoc>,
}

/// 「規約等の改定への同意」: accepts the current versions of the pending documents.
#[utoipa::path(post, path = "/api/v1/consents/renewal", tag = "consents", security(("bearer" = [])),
    request_body = RenewalRequest,
    responses((status = 200, body = ConsentsView), (status = 401, body = ErrorBody),
        (status = 422, body = ErrorBody, description = "consents_missing (with missing_consents), invalid_request")))]
async fn accept_renewal(
    State(app): State<AppState>,
    ApiLocale(locale): ApiLocale,
    ClientIp(ip): ClientIp,
    m: ApiSignedIn,
    ApiJson(req): ApiJson<RenewalRequest>,
) -> ApiResult<Json<ConsentsView>> {
    consents::accept_revisions(&app, &m.member, &req.accepted, &ip).await.or_api(locale)?;
    Ok(Json(view(&app, &m.member, locale).await?))
}

/// A purpose consent of the path: `biometric` or `health_data`.
#[derive(Deserialize, IntoParams)]
pub struct PurposePath {
    /// biometric | health_data
    #[param(schema_with = super::purpose_doc_schema)]
    pub doc: String,
}

fn purpose(doc: &str, locale: Locale) -> ApiResult<ConsentDoc> {
    ConsentDoc::parse(doc)
        .filter(ConsentDoc::is_purpose)
        .ok_or(ApiError { err: ServiceError::DocumentNotFound, locale })
}

/// Gives a purpose consent (`biometric` before eKYC, `health_data` before health data) at
/// its current version.
#[utoipa::path(post, path = "/api/v1/consents/{doc}", tag = "consents", security(("bearer" = [])), params(PurposePath),
    responses((status = 200, body = ConsentsView), (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody, description = "consent_required: a new version must be accepted first"),
        (status = 404, body = ErrorBody, description = "document_not_found: not a purpose consent")))]
async fn give_consent(
    State(app): State<AppState>,
    ApiLocale(locale): ApiLocale,
    ClientIp(ip): ClientIp,
    Path(p): Path<PurposePath>,
    m: ApiMember,
) -> ApiResult<Json<ConsentsView>> {
    let doc = purpose(&p.doc, locale)?;
    consents::grant(&app, &m.member, doc, &ip).await.or_api(locale)?;
    Ok(Json(view(&app, &m.member, locale).await?))
}

/// Withdraws a purpose consent: `health_data` closes health data at once; `biometric` stops an
/// eKYC application not yet submitted (submitted ones are reviewed, decisions keep their result).
#[utoipa::path(delete, path = "/api/v1/consents/{doc}", tag = "consents", security(("bearer" = [])), params(PurposePath),
    responses((status = 200, body = ConsentsView), (status = 401, body = ErrorBody),
        (status = 404, body = ErrorBody, description = "document_not_found: not a purpose consent"),
        (status = 409, body = ErrorBody, description = "nothing_to_withdraw: not given or already withdrawn")))]
async fn withdraw_consent(
    State(app): State<AppState>,
    ApiLocale(locale): ApiLocale,
    ClientIp(ip): ClientIp,
    Path(p): Path<PurposePath>,
    // Open while a re-consent is owed: refusing a purpose consent's new version is withdrawing it.
    m: ApiSignedIn,
) -> ApiResult<Json<ConsentsView>> {
    let doc = purpose(&p.doc, locale)?;
    consents::withdraw(&app, &m.member, doc, &ip).await.or_api(locale)?;
    Ok(Json(view(&app, &m.member, locale).await?))
}

#[derive(Serialize, ToSchema)]
pub struct DocumentView {
    #[schema(value_type = String, example = "platform_terms")]
    pub doc: ConsentDoc,
    pub version: String,
    pub title: String,
    /// Plain text; paragraphs are separated by blank lines.
    pub body: String,
    #[serde(with = "time::serde::rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub published_at: OffsetDateTime,
    /// The versions published, newest first.
    pub versions: Vec<String>,
}

#[derive(Deserialize, IntoParams)]
pub struct DocumentPath {
    /// platform_terms | org_privacy | point_terms | biometric | health_data
    #[param(schema_with = super::consent_doc_schema)]
    pub doc: String,
}

#[derive(Deserialize, IntoParams)]
pub struct DocumentQuery {
    /// An organization's id, for its own version (default: the platform-wide one).
    pub org: Option<String>,
    /// A version (default: the current one).
    pub version: Option<String>,
}

/// A document (public): the current version, or the one asked for.
#[utoipa::path(get, path = "/api/v1/documents/{doc}", tag = "consents", params(DocumentPath, DocumentQuery),
    responses((status = 200, body = DocumentView), (status = 404, body = ErrorBody, description = "document_not_found")))]
async fn get_document(
    State(app): State<AppState>,
    ApiLocale(locale): ApiLocale,
    Path(p): Path<DocumentPath>,
    Query(q): Query<DocumentQuery>,
) -> ApiResult<Json<DocumentView>> {
    let doc = ConsentDoc::parse(&p.doc).ok_or(ApiError { err: ServiceError::DocumentNotFound, locale })?;
    let org = q.org.as_deref().filter(|o| !o.is_empty() && doc.per_organization());
    let (d, history) = consents::document(&app, doc, org, q.version.as_deref(), locale).await.or_api(locale)?;
    Ok(Json(DocumentView {
        doc,
        version: d.version,
        title: d.title,
        body: d.body,
        published_at: d.published_at,
        versions: history.into_iter().map(|(v, _)| v).collect(),
    }))
}
