//! F4 健診・医療アクセス認証 (eKYC): an identity document and two selfies, checked against each
//! other, then the secret question that guards health data (F5).

use axum::body::Bytes;
use axum::extract::{FromRequest, Multipart, Request, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use domain::ids::ApplicationId;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::{ApiJson, ApiLocale, ApiMember, ApiResult, ErrorBody, IdPath, OrApi};
use crate::ClientIp;
use app::error::ServiceError;
use app::i18n::Locale;
use app::services::ekyc::{self, Capture};
use app::AppState;

pub(super) fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(create_ekyc))
        .routes(routes!(get_ekyc))
        .routes(routes!(ekyc_document))
        .routes(routes!(ekyc_remarks))
        .routes(routes!(ekyc_capture_token))
        .routes(routes!(ekyc_confirm_document))
        .routes(routes!(ekyc_secret))
        .routes(routes!(ekyc_submit))
}

/// Image uploads: merged by `crate::router` under its larger body limit.
pub(super) fn upload_routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(ekyc_capture))
}

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
    /// Present (true) when the application was left unfinished too long and its pictures
    /// were deleted: it starts over from the document choice, keeping the face attempts used.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub restarted: bool,
    /// 受付番号: the short reference the member quotes to the customer center (also in the
    /// receipt mail sent when the application goes to review).
    pub reference: String,
    /// When it was submitted (completed or sent to review), if it was.
    #[serde(with = "time::serde::rfc3339::option")]
    #[schema(value_type = Option<String>, format = DateTime)]
    pub submitted_at: Option<time::OffsetDateTime>,
    /// When it was decided (completed, approved, rejected or revoked), if it was.
    #[serde(with = "time::serde::rfc3339::option")]
    #[schema(value_type = Option<String>, format = DateTime)]
    pub decided_at: Option<time::OffsetDateTime>,
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
        restarted: a.state == domain::ekyc::EkycState::Started && ekyc::evidence_expired(&l.data),
        reference: app::services::reference(&l.record.id),
        submitted_at: l.record.submitted_at,
        decided_at: l.record.decided_at,
    }
}

#[derive(Deserialize, ToSchema)]
pub struct EkycDocumentRequest {
    #[schema(schema_with = super::document_kind_schema)]
    pub kind: String,
}

#[derive(Deserialize, ToSchema)]
pub struct EkycRemarksRequest {
    /// Whether the remarks field (備考欄) has entries.
    pub has_entries: bool,
}

#[derive(Deserialize, ToSchema)]
pub struct EkycCaptureTokenRequest {
    #[schema(schema_with = super::capture_schema)]
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
    /// 秘密の質問: 1–100 characters besides the white space around them.
    #[schema(min_length = 1, pattern = "\\S")]
    pub question: String,
    /// The answer: 6–100 characters once normalized (NFKC, lower-cased, white space dropped).
    #[schema(min_length = 6)]
    pub answer: String,
}

fn parse_capture(s: &str) -> Result<Capture, ServiceError> {
    serde_json::from_value(serde_json::Value::String(s.to_string()))
        .map_err(|_| ServiceError::InvalidRequest(format!("unknown capture {s}")))
}

#[utoipa::path(post, path = "/api/v1/ekyc-applications", tag = "ekyc", security(("bearer" = [])),
    responses((status = 201, body = EkycView), (status = 409, description = "ekyc_not_available, identity_not_verified, already_verified")))]
async fn create_ekyc(
    State(app): State<AppState>,
    ApiLocale(locale): ApiLocale,
    m: ApiMember,
) -> ApiResult<(StatusCode, Json<EkycView>)> {
    let l = ekyc::start(&app, &m.member).await.or_api(locale)?;
    Ok((StatusCode::CREATED, Json(ekyc_view(&l, locale))))
}

#[utoipa::path(get, path = "/api/v1/ekyc-applications/{id}", tag = "ekyc", security(("bearer" = [])), params(("id" = String, Path)), responses((status = 200, body = EkycView)))]
async fn get_ekyc(
    State(app): State<AppState>,
    ApiLocale(locale): ApiLocale,
    m: ApiMember,
    IdPath(id): IdPath<ApplicationId>,
) -> ApiResult<Json<EkycView>> {
    let l = ekyc::load(&app, &m.member, &id).await.or_api(locale)?;
    Ok(Json(ekyc_view(&l, locale)))
}

#[utoipa::path(post, path = "/api/v1/ekyc-applications/{id}/document", tag = "ekyc", security(("bearer" = [])), params(("id" = String, Path)), request_body = EkycDocumentRequest,
    responses((status = 200, body = EkycView)))]
async fn ekyc_document(
    State(app): State<AppState>,
    ApiLocale(locale): ApiLocale,
    m: ApiMember,
    IdPath(id): IdPath<ApplicationId>,
    ApiJson(req): ApiJson<EkycDocumentRequest>,
) -> ApiResult<Json<EkycView>> {
    let kind = domain::ekyc::DocumentKind::parse(&req.kind)
        .ok_or_else(|| ServiceError::InvalidRequest("unknown document kind".into()))
        .or_api(locale)?;
    let l = ekyc::choose_document(&app, &m.member, &id, kind).await.or_api(locale)?;
    Ok(Json(ekyc_view(&l, locale)))
}

#[utoipa::path(post, path = "/api/v1/ekyc-applications/{id}/remarks", tag = "ekyc", security(("bearer" = [])), params(("id" = String, Path)), request_body = EkycRemarksRequest,
    responses((status = 200, body = EkycView)))]
async fn ekyc_remarks(
    State(app): State<AppState>,
    ApiLocale(locale): ApiLocale,
    m: ApiMember,
    IdPath(id): IdPath<ApplicationId>,
    ApiJson(req): ApiJson<EkycRemarksRequest>,
) -> ApiResult<Json<EkycView>> {
    let l = ekyc::answer_remarks(&app, &m.member, &id, req.has_entries).await.or_api(locale)?;
    Ok(Json(ekyc_view(&l, locale)))
}

#[utoipa::path(post, path = "/api/v1/ekyc-applications/{id}/capture-tokens", tag = "ekyc", security(("bearer" = [])), params(("id" = String, Path)), request_body = EkycCaptureTokenRequest,
    responses((status = 201, body = EkycCaptureTokenView), (status = 409, body = ErrorBody, description = "wrong_step: not the capture expected next"),
        (status = 429, body = ErrorBody, description = "rate_limited: capture tokens per member")))]
async fn ekyc_capture_token(
    State(app): State<AppState>,
    ApiLocale(locale): ApiLocale,
    m: ApiMember,
    IdPath(id): IdPath<ApplicationId>,
    ApiJson(req): ApiJson<EkycCaptureTokenRequest>,
) -> ApiResult<(StatusCode, Json<EkycCaptureTokenView>)> {
    let capture = parse_capture(&req.capture).or_api(locale)?;
    let token = ekyc::capture_token(&app, &m.member, &id, capture).await.or_api(locale)?;
    Ok((StatusCode::CREATED, Json(EkycCaptureTokenView { token, capture: capture.as_str().into() })))
}

/// The angled selfie as a burst: `multipart/form-data` with one `frame` part per picture, in
/// capture order.
#[derive(ToSchema)]
#[allow(dead_code)] // the schema of the multipart body; the parts are read one by one
pub struct EkycBurstUpload {
    /// 3–8 frames (JPEG, PNG or WebP) taken while the member turns from the front to the
    /// instruction, or one still (accepted, but the application then goes to review).
    #[schema(value_type = Vec<String>, format = Binary)]
    pub frame: Vec<Vec<u8>>,
}

/// Uploads one capture with the capture token as `X-Capture-Token`: the image bytes as the
/// body (`Content-Type: image/jpeg`, `image/png` or `image/webp`), or for `selfie_angled` a
/// burst as `multipart/form-data` with `frame` parts (see `domain::liveness`); at most 12 MiB
/// in all.
#[utoipa::path(post, path = "/api/v1/ekyc-applications/{id}/captures/{capture}", tag = "ekyc", security(("bearer" = [])),
    params(("capture" = String, Path, description = "document_front | document_back | selfie_frontal | selfie_angled"),
           ("X-Capture-Token" = String, Header, description = "from capture-tokens"),
           ("id" = String, Path)),
    request_body(content((Vec<u8> = "image/jpeg"), (inline(EkycBurstUpload) = "multipart/form-data"))),
    responses((status = 200, body = EkycView),
              (status = 422, description = "image_* (unreadable), face_* (quality, with advice), face_mismatch (顔写真が一致しません), instruction_not_followed, instruction_expired, same_image, liveness_* (the burst shows no live turn: identical_frames, face_changed, not_from_front, not_continuous, too_few_frames, too_many_frames)"),
              (status = 409, description = "capture_token_invalid (stale or used), wrong_step, document_back_not_allowed"),
              (status = 413, body = ErrorBody, description = "body_too_large: larger than 12 MiB"),
              (status = 429, body = ErrorBody, description = "face_attempts_exhausted; rate_limited: uploads per member")))]
async fn ekyc_capture(
    State(app): State<AppState>,
    ApiLocale(locale): ApiLocale,
    m: ApiMember,
    IdPath((id, capture)): IdPath<(ApplicationId, String)>,
    request: axum::extract::Request,
) -> Result<Json<EkycView>, Response> {
    let capture = parse_capture(&capture).or_api(locale).map_err(IntoResponse::into_response)?;
    let token = request.headers().get("x-capture-token").map(|v| v.to_str().unwrap_or_default().to_string());
    let frames = read_frames(&app, request).await.or_api(locale).map_err(IntoResponse::into_response)?;
    // A request without the header is malformed (422); one with a stale or used token is 409.
    // (Answered once the body is read: a member's client keeps its connection.)
    let token = token
        .ok_or_else(|| ServiceError::InvalidRequest("X-Capture-Token missing".into()))
        .or_api(locale)
        .map_err(IntoResponse::into_response)?;
    let l = ekyc::upload(&app, &m.member, &id, capture, &token, frames)
        .await
        .or_api(locale)
        .map_err(IntoResponse::into_response)?;
    Ok(Json(ekyc_view(&l, locale)))
}

/// The body as frames: the `frame` parts of a multipart body (other parts are ignored), or
/// the whole body as one image (their number is checked by the service). A body over the
/// limit is `BodyTooLarge` (413), an unreadable one `InvalidRequest` (422), both in the API's
/// error shape.
async fn read_frames(app: &AppState, request: Request) -> Result<Vec<Vec<u8>>, ServiceError> {
    fn refused(status: axum::http::StatusCode) -> ServiceError {
        if status == axum::http::StatusCode::PAYLOAD_TOO_LARGE {
            ServiceError::BodyTooLarge
        } else {
            ServiceError::InvalidRequest("unreadable upload".into())
        }
    }
    let multipart = request
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.to_ascii_lowercase().starts_with("multipart/form-data"));
    if !multipart {
        let body = Bytes::from_request(request, app).await.map_err(|r| refused(r.status()))?;
        return Ok(vec![body.to_vec()]);
    }
    let mut mp = Multipart::from_request(request, app).await.map_err(|r| refused(r.status()))?;
    let mut frames = Vec::new();
    while let Some(field) = mp.next_field().await.map_err(|e| refused(e.status()))? {
        if field.name() == Some("frame") {
            frames.push(field.bytes().await.map_err(|e| refused(e.status()))?.to_vec());
        }
    }
    Ok(frames)
}

#[utoipa::path(post, path = "/api/v1/ekyc-applications/{id}/confirm-document", tag = "ekyc", security(("bearer" = [])), params(("id" = String, Path)), responses((status = 200, body = EkycView)))]
async fn ekyc_confirm_document(
    State(app): State<AppState>,
    ApiLocale(locale): ApiLocale,
    m: ApiMember,
    IdPath(id): IdPath<ApplicationId>,
) -> ApiResult<Json<EkycView>> {
    let l = ekyc::confirm_document(&app, &m.member, &id).await.or_api(locale)?;
    Ok(Json(ekyc_view(&l, locale)))
}

#[utoipa::path(post, path = "/api/v1/ekyc-applications/{id}/secret", tag = "ekyc", security(("bearer" = [])), params(("id" = String, Path)), request_body = EkycSecretRequest,
    responses((status = 200, body = EkycView), (status = 422, description = "secret_question_invalid, secret_answer_empty")))]
async fn ekyc_secret(
    State(app): State<AppState>,
    ApiLocale(locale): ApiLocale,
    m: ApiMember,
    IdPath(id): IdPath<ApplicationId>,
    ApiJson(req): ApiJson<EkycSecretRequest>,
) -> ApiResult<Json<EkycView>> {
    let l = ekyc::set_secret(&app, &m.member, &id, &req.question, &req.answer).await.or_api(locale)?;
    Ok(Json(ekyc_view(&l, locale)))
}

/// 「この内容で認証する」: state becomes completed (完了しました) or pending_review (申請).
#[utoipa::path(post, path = "/api/v1/ekyc-applications/{id}/submit", tag = "ekyc", security(("bearer" = [])), params(("id" = String, Path)), responses((status = 200, body = EkycView)))]
async fn ekyc_submit(
    State(app): State<AppState>,
    ApiLocale(locale): ApiLocale,
    m: ApiMember,
    ClientIp(ip): ClientIp,
    IdPath(id): IdPath<ApplicationId>,
) -> ApiResult<Json<EkycView>> {
    let l = ekyc::submit(&app, &m.member, &id, &ip).await.or_api(locale)?;
    Ok(Json(ekyc_view(&l, locale)))
}
