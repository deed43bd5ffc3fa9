//! F4 健診・医療アクセス認証 as member pages. Every step is a state of the member's one
//! eKYC application (`services::ekyc`), so `/ekyc/{id}` always shows the step the member is
//! at, after closing the app too. Captures are plain multipart forms with a one-time capture
//! token; `static/camera.js` fills the form's file input from the in-page camera
//! (getUserMedia) and submits it, and without a camera API the file input (with `capture`)
//! is the way in.

use askama::Template;
use axum::extract::{Multipart, Path, Query, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Extension, Router};
use domain::ekyc::{BackPolicy, DocumentKind, EkycState};
use domain::ids::{ApplicationId, ImageId};
use serde::Deserialize;

use app::error::ServiceError;
use app::i18n::Locale;
use app::services::auth::Member;
use app::services::ekyc::{self, Capture, Loaded};
use app::AppState;

use super::{inline, ok, render, see_other, Chrome, Cx, IdPath, MemberForm, OrPage, PageError, PathId};
use crate::ctx::{browser_context, Ctx};
use crate::error::ErrorStatus;
use crate::extract::{multipart_csrf_first, Empty};
use crate::ClientIp;

pub(super) fn routes() -> Router<AppState> {
    Router::new()
        .route("/ekyc", get(intro).post(start))
        .route("/ekyc/{id}", get(show))
        .route("/ekyc/{id}/document", post(choose_document))
        .route("/ekyc/{id}/remarks", post(remarks))
        .route("/ekyc/{id}/confirm-document", post(confirm_document))
        .route("/ekyc/{id}/images/{image}", get(image))
        .route("/ekyc/{id}/secret", post(secret))
        .route("/ekyc/{id}/submit", post(submit))
}

/// The capture form posts here: on the upload router (bigger body limit), with the same
/// browser context as every page.
pub(super) fn upload_routes(app: AppState) -> Router<AppState> {
    Router::new()
        .route("/ekyc/{id}/capture/{capture}", post(capture))
        .layer(axum::middleware::from_fn_with_state(app.clone(), super::consents::consent_gate))
        .layer(axum::middleware::from_fn_with_state(app, browser_context))
}

/// The menu's status line under 「健診・医療アクセス認証」.
/// The org menu's line about F4, with its date, and the 受付番号 while it is reviewed.
pub fn menu_status(ctx: &Ctx, current: Option<&Loaded>) -> String {
    use app::services::{jst_date, reference};
    let locale = ctx.locale();
    match current {
        Some(l) if matches!(l.data.app.state, EkycState::Completed | EkycState::Approved) => {
            let date = jst_date(l.record.decided_at.unwrap_or(l.record.updated_at));
            app::i18n::tf(locale, "ekyc.menu.done_on", &[("date", &date)])
        }
        Some(l) if l.data.app.state == EkycState::PendingReview => {
            let date = jst_date(l.record.submitted_at.unwrap_or(l.record.updated_at));
            let reference = reference(&l.record.id);
            app::i18n::tf(locale, "ekyc.menu.pending_since", &[("date", &date), ("reference", &reference)])
        }
        _ => app::i18n::t(locale, "ekyc.menu.todo").to_string(),
    }
}

fn member(ctx: &Ctx) -> Option<&Member> {
    ctx.member.as_ref()
}

fn page_of(id: &str) -> String {
    format!("/ekyc/{id}")
}

// ---------------------------------------------------------------------------------------
// Templates

#[derive(Template)]
#[template(path = "ekyc_intro.html")]
struct IntroPage {
    c: Chrome,
}

struct DocumentChoice {
    kind: &'static str,
    label: &'static str,
    note: &'static str,
}

#[derive(Template)]
#[template(path = "ekyc_document.html")]
struct DocumentPage {
    c: Chrome,
    id: String,
    documents: Vec<DocumentChoice>,
    /// The application was left unfinished too long and its pictures were deleted.
    restarted: bool,
}

#[derive(Template)]
#[template(path = "ekyc_capture.html")]
struct CapturePage {
    c: Chrome,
    id: String,
    capture: &'static str,
    token: String,
    title: String,
    lead: String,
    /// `environment` (documents) or `user` (selfies): the camera to open and the file
    /// input's `capture` attribute.
    facing: &'static str,
    /// `card` or `face`: the white frame's shape.
    frame: &'static str,
    /// 別アングル: the instruction and its guide drawing.
    instruction: Option<String>,
    turn: &'static str,
    mouth_open: bool,
    notice: Option<String>,
    error: Option<String>,
    /// Documents can still be chosen again.
    rechoose: bool,
    /// The angled selfie: the camera takes a burst of `burst_frames` (see `camera.js`).
    burst: bool,
    burst_frames: usize,
}

#[derive(Template)]
#[template(path = "ekyc_remarks.html")]
struct RemarksPage {
    c: Chrome,
    id: String,
    lead: &'static str,
}

#[derive(Template)]
#[template(path = "ekyc_document_check.html")]
struct DocumentCheckPage {
    c: Chrome,
    id: String,
    document: &'static str,
    kind: &'static str,
    images: Vec<(&'static str, String)>,
}

#[derive(Template)]
#[template(path = "ekyc_secret_intro.html")]
struct SecretIntroPage {
    c: Chrome,
    id: String,
}

#[derive(Template)]
#[template(path = "ekyc_secret.html")]
struct SecretPage {
    c: Chrome,
    id: String,
    /// (value, question, checked)
    presets: Vec<(&'static str, &'static str, bool)>,
    custom_checked: bool,
    custom: String,
    error: Option<String>,
    error_field: &'static str,
}

#[derive(Template)]
#[template(path = "ekyc_confirm.html")]
struct ConfirmPage {
    c: Chrome,
    id: String,
    document: &'static str,
    remarks: Option<&'static str>,
    question: String,
    photos: usize,
}

#[derive(Template)]
#[template(path = "ekyc_result.html")]
struct ResultPage {
    c: Chrome,
    /// `done`, `pending` or `rejected`.
    outcome: &'static str,
    /// While pending: 「受付番号: …」 and when the result usually comes.
    reference: String,
    review_time: String,
}

const PRESETS: [&str; 4] = ["ekyc.secret.q1", "ekyc.secret.q2", "ekyc.secret.q3", "ekyc.secret.q4"];

fn document_label(kind: DocumentKind) -> &'static str {
    match kind {
        DocumentKind::DriversLicense => "ekyc.doc.drivers_license",
        DocumentKind::MyNumberCard => "ekyc.doc.my_number_card",
        DocumentKind::DrivingHistoryCertificate => "ekyc.doc.driving_history",
        DocumentKind::ResidenceCard => "ekyc.doc.residence_card",
    }
}

fn capture_label(capture: Capture) -> &'static str {
    match capture {
        Capture::DocumentFront => "ekyc.image.document_front",
        Capture::DocumentBack => "ekyc.image.document_back",
        Capture::SelfieFrontal => "ekyc.image.selfie_frontal",
        Capture::SelfieAngled => "ekyc.image.selfie_angled",
    }
}

/// The `{capture}` in a capture form's path; an unknown one is `None` (the member is shown the
/// step they are at, after the form's checks, as before).
struct CaptureParam(Option<Capture>);

impl<'de> Deserialize<'de> for CaptureParam {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        let all = [Capture::DocumentFront, Capture::DocumentBack, Capture::SelfieFrontal, Capture::SelfieAngled];
        Ok(CaptureParam(all.into_iter().find(|c| c.as_str() == s)))
    }
}

/// The capture page for the step the application is at, with a fresh capture token.
async fn capture_page(
    app: &AppState,
    ctx: &Ctx,
    m: &Member,
    loaded: &Loaded,
    capture: Capture,
    error: Option<String>,
) -> Result<Response, PageError> {
    let id = loaded.record.id.clone();
    let token = ekyc::capture_token(app, m, &id, capture).await.or_page(ctx)?;
    let c = Chrome::from(ctx);
    let doc = loaded.data.app.document.map(|d| c.t(document_label(d))).unwrap_or_default();
    let (title, lead, facing, frame) = match capture {
        Capture::DocumentFront => (
            c.tf("ekyc.capture.front.title", "document", doc),
            c.tf("ekyc.capture.document.lead", "document", doc),
            "environment",
            "card",
        ),
        Capture::DocumentBack => (
            c.tf("ekyc.capture.back.title", "document", doc),
            c.tf("ekyc.capture.document.lead", "document", doc),
            "environment",
            "card",
        ),
        Capture::SelfieFrontal => (
            c.t("ekyc.capture.frontal.title").to_string(),
            c.t("ekyc.capture.frontal.lead").to_string(),
            "user",
            "face",
        ),
        Capture::SelfieAngled => {
            (c.t("ekyc.capture.angled.title").to_string(), c.t("ekyc.capture.angled.lead").to_string(), "user", "face")
        }
    };
    let instruction = loaded.data.app.instruction.filter(|_| capture == Capture::SelfieAngled);
    let page = CapturePage {
        id,
        capture: capture.as_str(),
        token,
        title,
        lead,
        facing,
        frame,
        instruction: instruction.map(|i| match ctx.locale() {
            Locale::Ja => i.label_ja(),
            Locale::En => i.label_en(),
        }),
        turn: match instruction.map(|i| i.turn) {
            Some(domain::ekyc::Turn::Right) => "right",
            Some(domain::ekyc::Turn::Left) => "left",
            None => "",
        },
        mouth_open: instruction.is_some_and(|i| i.mouth == domain::ekyc::MouthState::Open),
        notice: (capture == Capture::SelfieAngled).then(|| c.t("ekyc.frontal_ok").to_string()),
        rechoose: matches!(capture, Capture::DocumentFront | Capture::DocumentBack),
        burst: capture == Capture::SelfieAngled,
        burst_frames: domain::liveness::MAX_BURST_FRAMES,
        error: error.clone(),
        c,
    };
    let status = if error.is_some() { StatusCode::UNPROCESSABLE_ENTITY } else { StatusCode::OK };
    Ok(render(status, &page))
}

fn result_page(app: &AppState, ctx: &Ctx, loaded: &Loaded) -> Response {
    let outcome = match loaded.data.app.state {
        EkycState::PendingReview => "pending",
        EkycState::Rejected | EkycState::Revoked => "rejected",
        _ => "done",
    };
    let locale = ctx.locale();
    let reference = app::services::reference(&loaded.record.id);
    let days = app.config.ekyc_review_days.to_string();
    ok(&ResultPage {
        c: Chrome::from(ctx),
        outcome,
        reference: app::i18n::tf(locale, "ekyc.pending.reference", &[("reference", &reference)]),
        review_time: app::i18n::tf(locale, "ekyc.pending.review_time", &[("days", &days)]),
    })
}

fn secret_page(ctx: &Ctx, id: &str, choice: &str, custom: &str, err: Option<&ServiceError>) -> SecretPage {
    let c = Chrome::from(ctx);
    SecretPage {
        presets: PRESETS.iter().map(|k| (*k, c.t(k), *k == choice)).collect(),
        id: id.to_string(),
        custom_checked: !PRESETS.contains(&choice),
        custom: custom.to_string(),
        error: err.map(|e| e.message(ctx.locale())),
        error_field: err.and_then(ServiceError::field).unwrap_or(""),
        c,
    }
}

// ---------------------------------------------------------------------------------------
// Handlers

async fn intro(State(app): State<AppState>, Extension(ctx): Cx) -> Result<Response, PageError> {
    let Some(m) = member(&ctx) else { return Ok(see_other("/login")) };
    if let Some(current) = ekyc::current(&app, m).await.or_page(&ctx)? {
        // An open application resumes; a decided one shows its outcome (a rejected member
        // starts again from there).
        return Ok(see_other(&page_of(&current.record.id)));
    }
    ekyc::check_eligible(&app, m).await.or_page(&ctx)?;
    // 顔画像の取扱い is agreed to on its own page first (it comes back here).
    app::services::consents::require(&app, m, domain::consent::ConsentDoc::Biometric).await.or_page(&ctx)?;
    Ok(ok(&IntroPage { c: Chrome::from(&ctx) }))
}

/// 「次へ」 on the introduction (and 「もう一度申請する」 after a rejection).
async fn start(State(app): State<AppState>, Extension(ctx): Cx, _: MemberForm<Empty>) -> Result<Response, PageError> {
    let Some(m) = member(&ctx) else { return Ok(see_other("/login")) };
    let loaded = ekyc::start(&app, m).await.or_page(&ctx)?;
    Ok(see_other(&page_of(&loaded.record.id)))
}

#[derive(Deserialize)]
struct StepQuery {
    step: Option<String>,
}

async fn show(
    State(app): State<AppState>,
    Extension(ctx): Cx,
    Path(id): IdPath<ApplicationId>,
    Query(q): Query<StepQuery>,
) -> Result<Response, PageError> {
    let Some(m) = member(&ctx) else { return Ok(see_other("/login")) };
    let id = id.or_page(&ctx)?;
    let loaded = ekyc::load(&app, m, &id).await.or_page(&ctx)?;
    let a = &loaded.data.app;
    let step = q.step.as_deref();
    let c = Chrome::from(&ctx);
    Ok(match a.state {
        EkycState::Started => document_choice(&ctx, &id, ekyc::evidence_expired(&loaded.data)),
        // 書類を選び直す: while the document is not confirmed.
        EkycState::DocumentChosen | EkycState::FrontCaptured | EkycState::DocumentCaptured
            if step == Some("document") =>
        {
            document_choice(&ctx, &id, false)
        }
        EkycState::FrontCaptured if a.remarks.is_none() => {
            let lead = match a.document.map(|d| d.back_policy()) {
                Some(BackPolicy::AskRemarksThenBack) => "ekyc.remarks.lead_back",
                _ => "ekyc.remarks.lead_front_only",
            };
            ok(&RemarksPage { c, id: id.into(), lead })
        }
        EkycState::DocumentConfirmed | EkycState::FrontalVerified if a.attempts_exhausted() => {
            return Err(ServiceError::FaceAttemptsExhausted).or_page(&ctx);
        }
        EkycState::DocumentChosen
        | EkycState::FrontCaptured
        | EkycState::DocumentConfirmed
        | EkycState::FrontalVerified => {
            let Some(capture) = ekyc::next_capture(&loaded.data) else {
                return Err(ServiceError::WrongStep).or_page(&ctx);
            };
            return capture_page(&app, &ctx, m, &loaded, capture, None).await;
        }
        EkycState::DocumentCaptured => {
            let kind = a.document.ok_or(ServiceError::WrongStep).or_page(&ctx)?;
            let images =
                ekyc::document_images(&loaded.data).into_iter().map(|(cap, img)| (capture_label(cap), img)).collect();
            ok(&DocumentCheckPage { c, id: id.into(), document: document_label(kind), kind: kind.as_str(), images })
        }
        EkycState::AngledVerified if step == Some("secret") => ok(&secret_page(&ctx, &id, "", "", None)),
        EkycState::AngledVerified => ok(&SecretIntroPage { c, id: id.into() }),
        EkycState::SecretSet if step == Some("secret") => ok(&secret_page(&ctx, &id, "", "", None)),
        EkycState::SecretSet => {
            let kind = a.document.ok_or(ServiceError::WrongStep).or_page(&ctx)?;
            let remarks = a.remarks.map(|r| if r { "ekyc.remarks.yes" } else { "ekyc.remarks.no" });
            let question = loaded.data.secret_question.clone().unwrap_or_default();
            let photos = loaded.data.images.len();
            ok(&ConfirmPage { c, id: id.into(), document: document_label(kind), remarks, question, photos })
        }
        EkycState::Completed
        | EkycState::Approved
        | EkycState::PendingReview
        | EkycState::Rejected
        | EkycState::Revoked => result_page(&app, &ctx, &loaded),
    })
}

fn document_choice(ctx: &Ctx, id: &str, restarted: bool) -> Response {
    let c = Chrome::from(ctx);
    let documents = DocumentKind::ALL
        .iter()
        .map(|d| DocumentChoice {
            kind: d.as_str(),
            label: c.t(document_label(*d)),
            note: c.t(match d.back_policy() {
                BackPolicy::AskRemarksThenBack => "ekyc.doc.note_back",
                BackPolicy::AskRemarksNeverBack => "ekyc.doc.note_my_number",
                BackPolicy::FrontOnly => "ekyc.doc.note_front",
            }),
        })
        .collect();
    ok(&DocumentPage { c, id: id.to_string(), documents, restarted })
}

#[derive(Deserialize)]
struct DocumentForm {
    #[serde(default)]
    kind: String,
}

/// 「選択」 (and 「撮り直す」, which chooses the same document again).
async fn choose_document(
    State(app): State<AppState>,
    Extension(ctx): Cx,
    Path(id): IdPath<ApplicationId>,
    MemberForm { 0: f, .. }: MemberForm<DocumentForm>,
) -> Result<Response, PageError> {
    let Some(m) = member(&ctx) else { return Ok(see_other("/login")) };
    let kind = DocumentKind::parse(&f.kind)
        .ok_or_else(|| ServiceError::InvalidRequest("document kind".into()))
        .or_page(&ctx)?;
    let id = id.or_page(&ctx)?;
    ekyc::choose_document(&app, m, &id, kind).await.or_page(&ctx)?;
    Ok(see_other(&page_of(&id)))
}

#[derive(Deserialize)]
struct RemarksForm {
    #[serde(default)]
    has_entries: String,
}

async fn remarks(
    State(app): State<AppState>,
    Extension(ctx): Cx,
    Path(id): IdPath<ApplicationId>,
    MemberForm { 0: f, .. }: MemberForm<RemarksForm>,
) -> Result<Response, PageError> {
    let Some(m) = member(&ctx) else { return Ok(see_other("/login")) };
    let has_entries = match f.has_entries.as_str() {
        "yes" => true,
        "no" => false,
        _ => return Err(ServiceError::InvalidRequest("has_entries".into())).or_page(&ctx),
    };
    let id = id.or_page(&ctx)?;
    ekyc::answer_remarks(&app, m, &id, has_entries).await.or_page(&ctx)?;
    Ok(see_other(&page_of(&id)))
}

async fn confirm_document(
    State(app): State<AppState>,
    Extension(ctx): Cx,
    Path(id): IdPath<ApplicationId>,
    _: MemberForm<Empty>,
) -> Result<Response, PageError> {
    let Some(m) = member(&ctx) else { return Ok(see_other("/login")) };
    let id = id.or_page(&ctx)?;
    ekyc::confirm_document(&app, m, &id).await.or_page(&ctx)?;
    Ok(see_other(&page_of(&id)))
}

/// The member's own captured image on the confirmation screen.
async fn image(
    State(app): State<AppState>,
    Extension(ctx): Cx,
    Path((id, image)): Path<(PathId<ApplicationId>, PathId<ImageId>)>,
) -> Result<Response, PageError> {
    let Some(m) = member(&ctx) else { return Ok(see_other("/login")) };
    let (id, image) = (id.or_page(&ctx)?, image.or_page(&ctx)?);
    let bytes = ekyc::member_image(&app, m, &id, &image).await.or_page(&ctx)?;
    let mime = match image::guess_format(&bytes) {
        Ok(image::ImageFormat::Png) => "image/png",
        Ok(image::ImageFormat::WebP) => "image/webp",
        _ => "image/jpeg",
    };
    Ok(([(header::CONTENT_TYPE, HeaderValue::from_static(mime))], bytes).into_response())
}

/// The most a capture form may carry besides the photo (the capture token).
const FIELD_LIMIT: usize = 256;

struct CaptureForm {
    token: String,
    /// The file input's pictures: one, or the camera's burst for the angled selfie.
    photos: Vec<Vec<u8>>,
}

/// The capture form of a signed-in member: multipart, so not a [`MemberForm`], but the same
/// check with the same refusal page — made on the form's first part, before the images are
/// read ([`multipart_csrf_first`]).
async fn capture_form(ctx: &Ctx, mut mp: Multipart) -> Result<CaptureForm, PageError> {
    multipart_csrf_first(&mut mp, &ctx.csrf).await.or_page(ctx)?;
    read_capture_form(mp).await.or_page(ctx)
}

async fn read_capture_form(mut mp: Multipart) -> Result<CaptureForm, ServiceError> {
    let bad = |what: &str| ServiceError::InvalidRequest(what.into());
    let mut form = CaptureForm { token: String::new(), photos: Vec::new() };
    while let Some(field) = mp.next_field().await.map_err(|_| bad("multipart"))? {
        match field.name() {
            Some("token") => {
                let bytes = field.bytes().await.map_err(|_| bad("multipart"))?;
                if bytes.len() > FIELD_LIMIT {
                    return Err(bad("field too long"));
                }
                form.token = String::from_utf8(bytes.to_vec()).map_err(|_| bad("field encoding"))?;
            }
            Some("photo") => {
                let bytes = field.bytes().await.map_err(|_| bad("multipart"))?;
                // An empty file input still sends one empty part.
                if bytes.is_empty() {
                    continue;
                }
                form.photos.push(bytes.to_vec());
            }
            _ => {}
        }
    }
    Ok(form)
}

/// 「撮影する」: one capture with its token. A photo the checks refuse comes back on the same
/// page with the reason and a fresh token (retake); nothing saved before is lost.
async fn capture(
    State(app): State<AppState>,
    Extension(ctx): Cx,
    Path((id, CaptureParam(capture))): Path<(PathId<ApplicationId>, CaptureParam)>,
    mp: Multipart,
) -> Result<Response, PageError> {
    // Who and which form first: nothing of the body is read for a stranger or a forgery.
    let Some(m) = member(&ctx) else { return Ok(see_other("/login")) };
    let form = capture_form(&ctx, mp).await?;
    let capture = capture.ok_or(ServiceError::WrongStep).or_page(&ctx)?;
    let id = id.or_page(&ctx)?;
    let result = if form.photos.is_empty() {
        Err(ServiceError::Image(face::decode::DecodeError::Empty))
    } else {
        ekyc::upload(&app, m, &id, capture, &form.token, form.photos).await
    };
    match result {
        // A double submit or a resend after going back: show the step the member is at.
        Ok(_) | Err(ServiceError::WrongStep) => Ok(see_other(&page_of(&id))),
        Err(e) if inline(&e) || matches!(e, ServiceError::CaptureTokenInvalid) => {
            let loaded = ekyc::load(&app, m, &id).await.or_page(&ctx)?;
            match ekyc::next_capture(&loaded.data) {
                Some(next) if next == capture => {
                    capture_page(&app, &ctx, m, &loaded, capture, Some(e.message(ctx.locale()))).await
                }
                _ => Ok(see_other(&page_of(&id))),
            }
        }
        Err(e) => Err(e).or_page(&ctx),
    }
}

#[derive(Deserialize)]
struct SecretForm {
    #[serde(default)]
    choice: String,
    #[serde(default)]
    custom_question: String,
    #[serde(default)]
    answer: String,
}

async fn secret(
    State(app): State<AppState>,
    Extension(ctx): Cx,
    Path(id): IdPath<ApplicationId>,
    MemberForm { 0: f, .. }: MemberForm<SecretForm>,
) -> Result<Response, PageError> {
    let Some(m) = member(&ctx) else { return Ok(see_other("/login")) };
    let id = id.or_page(&ctx)?;
    let question = match PRESETS.iter().find(|k| **k == f.choice) {
        Some(key) => ctx.tr.t(key).to_string(),
        None => f.custom_question.clone(),
    };
    match ekyc::set_secret(&app, m, &id, &question, &f.answer).await {
        Ok(_) => Ok(see_other(&page_of(&id))),
        Err(e) if inline(&e) => {
            let page = secret_page(&ctx, &id, &f.choice, &f.custom_question, Some(&e));
            Ok(render(e.status(), &page))
        }
        Err(e) => Err(e).or_page(&ctx),
    }
}

/// 「この内容で認証する」.
async fn submit(
    State(app): State<AppState>,
    Extension(ctx): Cx,
    ClientIp(ip): ClientIp,
    Path(id): IdPath<ApplicationId>,
    _: MemberForm<Empty>,
) -> Result<Response, PageError> {
    let Some(m) = member(&ctx) else { return Ok(see_other("/login")) };
    let id = id.or_page(&ctx)?;
    ekyc::submit(&app, m, &id, &ip).await.or_page(&ctx)?;
    Ok(see_other(&page_of(&id)))
}
