//! F3 本人確認: the member's identity, checked against the organization's roster.

use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use domain::identity::IdentityFailure;
use domain::ids::FlowId;
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::{ApiJson, ApiLocale, ApiMember, ApiResult, ErrorBody, IdPath, OrApi, OrganizationView};
use app::error::ServiceError;
use app::services::identity;
use app::AppState;

pub(super) fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(create_identity))
        .routes(routes!(get_identity))
        .routes(routes!(identity_insurer))
        .routes(routes!(identity_card))
        .routes(routes!(identity_person))
        .routes(routes!(identity_confirm))
        .routes(routes!(identity_retry))
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
        card: f.card.as_ref().map(|c| CardView {
            symbol: c.symbol.clone(),
            number: c.number.clone(),
            branch: c.branch.clone(),
        }),
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
    #[schema(schema_with = super::insurer_number_schema)]
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
    /// Full-width katakana (hiragana and half-width kana are converted, spaces dropped):
    /// katakana letters and ー・＝ヽヾ, at least one letter, at most 40 characters once converted
    /// (`format: kana-name`).
    #[schema(format = "kana-name", min_length = 1)]
    pub family_name: String,
    /// As `family_name`.
    #[schema(format = "kana-name", min_length = 1)]
    pub given_name: String,
    /// YYYY-MM-DD or YYYY/MM/DD (month and day may have one digit), a real date not in the
    /// future (`format: birth-date`).
    #[schema(format = "birth-date", min_length = 1)]
    pub birth_date: String,
}

#[utoipa::path(post, path = "/api/v1/identity-verifications", tag = "identity", security(("bearer" = [])),
    responses((status = 201, body = IdentityView), (status = 409, body = ErrorBody, description = "already_verified"), (status = 401, body = ErrorBody)))]
async fn create_identity(
    State(app): State<AppState>,
    ApiLocale(locale): ApiLocale,
    m: ApiMember,
) -> ApiResult<(StatusCode, Json<IdentityView>)> {
    let v = identity::start(&app, &m.member).await.or_api(locale)?;
    Ok((StatusCode::CREATED, Json(identity_view(&v))))
}

#[utoipa::path(get, path = "/api/v1/identity-verifications/{id}", tag = "identity", security(("bearer" = [])),
    params(("id" = String, Path)), responses((status = 200, body = IdentityView), (status = 404, body = ErrorBody)))]
async fn get_identity(
    State(app): State<AppState>,
    ApiLocale(locale): ApiLocale,
    m: ApiMember,
    IdPath(id): IdPath<FlowId>,
) -> ApiResult<Json<IdentityView>> {
    let v = identity::view(&app, &m.member, &id).await.or_api(locale)?;
    Ok(Json(identity_view(&v)))
}

#[utoipa::path(post, path = "/api/v1/identity-verifications/{id}/insurer", tag = "identity", security(("bearer" = [])), request_body = IdentityInsurerRequest,
    params(("id" = String, Path)), responses((status = 200, body = IdentityView), (status = 422, body = ErrorBody), (status = 409, body = ErrorBody)))]
async fn identity_insurer(
    State(app): State<AppState>,
    ApiLocale(locale): ApiLocale,
    m: ApiMember,
    IdPath(id): IdPath<FlowId>,
    ApiJson(req): ApiJson<IdentityInsurerRequest>,
) -> ApiResult<Json<IdentityView>> {
    let v = identity::confirm_insurer(&app, &m.member, &id, &req.insurer_number).await.or_api(locale)?;
    Ok(Json(identity_view(&v)))
}

#[utoipa::path(post, path = "/api/v1/identity-verifications/{id}/card", tag = "identity", security(("bearer" = [])), request_body = IdentityCardRequest,
    params(("id" = String, Path)), responses((status = 200, body = IdentityView), (status = 422, body = ErrorBody)))]
async fn identity_card(
    State(app): State<AppState>,
    ApiLocale(locale): ApiLocale,
    m: ApiMember,
    IdPath(id): IdPath<FlowId>,
    ApiJson(req): ApiJson<IdentityCardRequest>,
) -> ApiResult<Json<IdentityView>> {
    let v = identity::enter_card(&app, &m.member, &id, &req.symbol, &req.number, &req.branch).await.or_api(locale)?;
    Ok(Json(identity_view(&v)))
}

#[utoipa::path(post, path = "/api/v1/identity-verifications/{id}/person", tag = "identity", security(("bearer" = [])), request_body = IdentityPersonRequest,
    params(("id" = String, Path)), responses((status = 200, body = IdentityView), (status = 422, body = ErrorBody)))]
async fn identity_person(
    State(app): State<AppState>,
    ApiLocale(locale): ApiLocale,
    m: ApiMember,
    IdPath(id): IdPath<FlowId>,
    ApiJson(req): ApiJson<IdentityPersonRequest>,
) -> ApiResult<Json<IdentityView>> {
    let v = identity::enter_person(&app, &m.member, &id, &req.family_name, &req.given_name, &req.birth_date)
        .await
        .or_api(locale)?;
    Ok(Json(identity_view(&v)))
}

#[utoipa::path(post, path = "/api/v1/identity-verifications/{id}/confirm", tag = "identity", security(("bearer" = [])),
    params(("id" = String, Path)),
    responses((status = 200, body = IdentityView, description = "本人確認 completed"),
              (status = 409, body = ErrorBody, description = "identity_already_linked (①): log in with the earlier email"),
              (status = 422, body = ErrorBody, description = "identity_no_match (②): check the input, contact the customer center"),
              (status = 429, body = ErrorBody, description = "verification_locked: too many attempts in 24 h")))]
async fn identity_confirm(
    State(app): State<AppState>,
    ApiLocale(locale): ApiLocale,
    m: ApiMember,
    IdPath(id): IdPath<FlowId>,
) -> ApiResult<Json<IdentityView>> {
    let v = identity::confirm(&app, &m.member, &id).await.or_api(locale)?;
    match v.flow.failure {
        Some(IdentityFailure::AlreadyLinked) => Err(ServiceError::IdentityAlreadyLinked).or_api(locale),
        Some(IdentityFailure::NoMatch) => Err(ServiceError::IdentityNoMatch).or_api(locale),
        None => Ok(Json(identity_view(&v))),
    }
}

/// 「入力内容を確認してやり直す」 after `no_match`: the same verification back at
/// `person_entered` with everything entered kept, so one field is corrected (`/card` or
/// `/person`) before confirming again. Refused once the day's attempts are spent.
#[utoipa::path(post, path = "/api/v1/identity-verifications/{id}/retry", tag = "identity", security(("bearer" = [])),
    params(("id" = String, Path)),
    responses((status = 200, body = IdentityView, description = "state person_entered, values kept"),
              (status = 409, body = ErrorBody, description = "wrong_step: only a verification that failed with no_match"),
              (status = 429, body = ErrorBody, description = "verification_locked: too many attempts in 24 h")))]
async fn identity_retry(
    State(app): State<AppState>,
    ApiLocale(locale): ApiLocale,
    m: ApiMember,
    IdPath(id): IdPath<FlowId>,
) -> ApiResult<Json<IdentityView>> {
    let v = identity::retry(&app, &m.member, &id).await.or_api(locale)?;
    Ok(Json(identity_view(&v)))
}
