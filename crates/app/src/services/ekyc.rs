//! F4 健診・医療アクセス認証 (eKYC): one persisted application per member, driven step by
//! step (see `domain::ekyc` for the rules). Images are checked by the face engine, sealed into
//! the image store, and only their ids and hashes reach the database; embeddings live in the
//! sealed application data until the decision and are dropped then.

use domain::ekyc::{DecisionPolicy, DocumentKind, EkycApplication, EkycError, EkycState, MouthState, Scores, Turn};
use domain::evidence::{check_birth_date, check_name, BirthDateCheck, DocumentCheck, NameCheck};
use domain::roster::RosterEntry;
use face::{Analysis, Options};
use serde::{Deserialize, Serialize};
use store::{CaptureTokenUse, EkycImage, EkycRecord, StoreError};
use time::Duration;

use crate::crypto::random_token;
use crate::error::{ServiceError, ServiceResult};
use crate::services::auth::Member;
use crate::services::{audit, consents, identity, limits, new_id, passwords};
use crate::state::App;
use domain::consent::ConsentDoc;

pub(crate) const AAD: &str = "ekyc_applications";
/// How long a capture token stays valid.
pub const CAPTURE_TOKEN_TTL: Duration = Duration::minutes(10);
/// The angled selfie must be taken within this time after its instruction was drawn (shown):
/// time enough to turn, not enough to find or make a matching photo of someone.
pub const ANGLED_WINDOW: Duration = Duration::seconds(60);
/// Two selfies this alike are the same picture, not two photos.
const SAME_IMAGE_SIMILARITY: f32 = 0.995;

impl From<EkycError> for ServiceError {
    fn from(e: EkycError) -> Self {
        match e {
            EkycError::WrongState(_) => ServiceError::WrongStep,
            EkycError::BackNotAllowed => ServiceError::DocumentBackNotAllowed,
            EkycError::FaceAttemptsExhausted => ServiceError::FaceAttemptsExhausted,
        }
    }
}

/// What a capture is of; each has its own capture token.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Capture {
    DocumentFront,
    DocumentBack,
    SelfieFrontal,
    SelfieAngled,
}

impl Capture {
    pub fn as_str(&self) -> &'static str {
        match self {
            Capture::DocumentFront => "document_front",
            Capture::DocumentBack => "document_back",
            Capture::SelfieFrontal => "selfie_frontal",
            Capture::SelfieAngled => "selfie_angled",
        }
    }
}

/// The reason an abandoned application carries after retention removed its pictures
/// (`jobs::forget_abandoned_applications`): the member's pages say it starts over, and a
/// reviewer sees it among the reasons if it is submitted later.
pub const EVIDENCE_EXPIRED: &str = "evidence_expired";

/// Whether retention removed this application's pictures while it was unfinished.
pub fn evidence_expired(data: &EkycData) -> bool {
    data.reasons.iter().any(|r| r == EVIDENCE_EXPIRED)
}

/// The application's sealed details.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct EkycData {
    pub app: EkycApplication,
    /// (capture, image id) in capture order.
    pub images: Vec<(Capture, String)>,
    pub document_embedding: Option<Vec<f32>>,
    pub frontal_embedding: Option<Vec<f32>>,
    pub frontal_sha256: Option<Vec<u8>>,
    pub document_frontal_score: Option<f32>,
    /// Notes for the reviewer from the automatic checks (reason codes).
    pub reasons: Vec<String>,
    pub secret_question: Option<String>,
    pub secret_answer_hash: Option<String>,
    /// What OCR read on the document's front and what it proves (see [`DocumentReading`]).
    #[serde(default)]
    pub document_reading: Option<DocumentReading>,
    /// When the current angled-selfie instruction was drawn; the angled selfie must come
    /// within [`ANGLED_WINDOW`].
    #[serde(default, with = "time::serde::timestamp::option")]
    pub instruction_at: Option<time::OffsetDateTime>,
    /// The accepted frontal selfie's presentation-attack score (see [`spoof_suspected`]).
    #[serde(default)]
    pub frontal_spoof_score: Option<f32>,
}

/// A date read on the document, with the mean OCR confidence (0–100) of its line.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct ReadDate {
    pub date: time::Date,
    /// Marked as the birth date on the card (「…生」, 「生年月日」).
    pub birth_label: bool,
    pub confidence: f32,
}

/// The document's front as OCR read it, compared with the member's roster record. Only the
/// dates and the name line are kept (sealed with the application), not the whole text.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DocumentReading {
    pub dates: Vec<ReadDate>,
    /// The line with the name (「氏名 …」 or the roster's kanji name) as read, with its
    /// confidence, for the reviewer.
    pub name_line: Option<(String, f32)>,
    pub check: DocumentCheck,
    /// OCR could not run (why, without personal data): nothing was read.
    pub error: Option<String>,
}

impl DocumentReading {
    /// The dates marked as the birth date (or all when none is marked), for the reviewer.
    pub fn birth_dates(&self) -> Vec<ReadDate> {
        let labeled: Vec<ReadDate> = self.dates.iter().copied().filter(|d| d.birth_label).collect();
        if labeled.is_empty() {
            self.dates.clone()
        } else {
            labeled
        }
    }
}

pub struct Loaded {
    pub record: EkycRecord,
    pub data: EkycData,
    /// The capture token of the upload being handled: the next [`save`] uses it up in the
    /// same transaction as the change, so an upload counts whole or not at all.
    upload_token: Option<UploadToken>,
}

/// A capture token checked at the start of an upload, used up by its [`save`].
struct UploadToken {
    hashes: Vec<Vec<u8>>,
    capture: Capture,
}

fn policy(app: &App) -> DecisionPolicy {
    DecisionPolicy { match_threshold: app.config.face_threshold, auto_margin: app.config.ekyc_auto_margin }
}

fn engine(app: &App) -> ServiceResult<&face::FaceEngine> {
    app.face().map_err(|e| {
        tracing::error!("eKYC unavailable: {e}");
        ServiceError::EkycUnavailable
    })
}

/// The state's stored (snake_case) name.
pub fn state_name(s: EkycState) -> Option<String> {
    serde_json::to_value(s).ok().and_then(|v| v.as_str().map(str::to_string))
}

pub(crate) fn state_str(s: EkycState) -> ServiceResult<String> {
    state_name(s).ok_or_else(|| ServiceError::Internal("state name".into()))
}

/// The record to write for the application as it is now: embeddings dropped once it is
/// decided, details sealed, timestamps set. The version is still the stored one (the store
/// checks it); see [`save`], and the review console, which writes it with its decision.
pub(crate) fn stamped(app: &App, loaded: &mut Loaded) -> ServiceResult<EkycRecord> {
    let now = app.now();
    let state = loaded.data.app.state;
    let decided =
        matches!(state, EkycState::Completed | EkycState::Approved | EkycState::Rejected | EkycState::Revoked);
    if decided {
        // Embeddings are not kept once the application is decided.
        loaded.data.document_embedding = None;
        loaded.data.frontal_embedding = None;
    }
    let mut record = loaded.record.clone();
    record.state = state_str(state)?;
    record.open = !decided;
    record.data = app.keys.seal_json(AAD, &loaded.data)?;
    record.updated_at = now;
    if matches!(state, EkycState::PendingReview | EkycState::Completed) && record.submitted_at.is_none() {
        record.submitted_at = Some(now);
    }
    if decided && record.decided_at.is_none() {
        record.decided_at = Some(now);
    }
    Ok(record)
}

pub(crate) async fn save(app: &App, loaded: &mut Loaded) -> ServiceResult<()> {
    let mut record = stamped(app, loaded)?;
    match loaded.upload_token.take() {
        None => app.store.update_ekyc(&record).await?,
        Some(token) => {
            let using = CaptureTokenUse { hashes: &token.hashes, purpose: token.capture.as_str(), at: app.now() };
            match app.store.update_ekyc_using_token(&record, using).await {
                Ok(()) => {}
                // Used meanwhile by the same upload sent twice (or the application moved on).
                Err(StoreError::Conflict) => return Err(ServiceError::CaptureTokenInvalid),
                Err(e) => return Err(e.into()),
            }
        }
    }
    record.version += 1;
    loaded.record = record;
    Ok(())
}

pub(crate) fn open_record(app: &App, record: EkycRecord) -> ServiceResult<Loaded> {
    let data = app.keys.open_json(AAD, &record.data)?;
    Ok(Loaded { record, data, upload_token: None })
}

/// The member's current application, if any.
#[tracing::instrument(skip_all, fields(user_id = %member.user.id))]
pub async fn current(app: &App, member: &Member) -> ServiceResult<Option<Loaded>> {
    match app.store.latest_ekyc_of_user(&member.user.id).await? {
        Some(r) => Ok(Some(open_record(app, r)?)),
        None => Ok(None),
    }
}

/// Loads an application of this member (another member's id is simply not found).
#[tracing::instrument(skip_all, fields(user_id = %member.user.id, application_id = %id))]
pub async fn load(app: &App, member: &Member, id: &str) -> ServiceResult<Loaded> {
    let record =
        app.store.get_ekyc(id).await?.filter(|r| r.user_id == member.user.id).ok_or(ServiceError::FlowNotFound)?;
    // An open application goes on only with the face-image consent standing (#16 point 8);
    // submitted and decided ones stay readable.
    if record.open && record.submitted_at.is_none() {
        consents::require(app, member, ConsentDoc::Biometric).await?;
    }
    open_record(app, record)
}

/// Whether the member may use 健診・医療アクセス認証: their organization has checkup results
/// linked, and they have done 本人確認.
#[tracing::instrument(skip_all, fields(user_id = %member.user.id))]
pub async fn check_eligible(app: &App, member: &Member) -> ServiceResult<domain::org::Organization> {
    let org = app
        .store
        .get_org(&member.user.org_id)
        .await?
        .ok_or_else(|| ServiceError::Internal("user without organization".into()))?;
    if !org.checkup_linked {
        return Err(ServiceError::EkycNotAvailable);
    }
    if identity::verified_at(app, &member.user.id).await?.is_none() {
        return Err(ServiceError::IdentityNotVerified);
    }
    Ok(org)
}

/// 「次へ」 on the introduction: resumes the open application or starts one. Only for
/// organizations with checkup results linked, and after 本人確認.
#[tracing::instrument(skip_all, fields(user_id = %member.user.id))]
pub async fn start(app: &App, member: &Member) -> ServiceResult<Loaded> {
    let org = check_eligible(app, member).await?;
    consents::require(app, member, ConsentDoc::Biometric).await?;
    if let Some(existing) = current(app, member).await? {
        if existing.record.open {
            return Ok(existing);
        }
        if existing.data.app.is_authenticated() {
            return Err(ServiceError::AlreadyVerified);
        }
    }
    let now = app.now();
    let data = EkycData {
        app: EkycApplication::new(),
        images: Vec::new(),
        document_embedding: None,
        frontal_embedding: None,
        frontal_sha256: None,
        document_frontal_score: None,
        reasons: Vec::new(),
        secret_question: None,
        secret_answer_hash: None,
        document_reading: None,
        instruction_at: None,
        frontal_spoof_score: None,
    };
    let record = EkycRecord {
        id: new_id(),
        user_id: member.user.id.clone(),
        org_id: org.id.clone(),
        state: state_str(data.app.state)?,
        open: true,
        data: app.keys.seal_json(AAD, &data)?,
        version: 1,
        created_at: now,
        updated_at: now,
        submitted_at: None,
        decided_at: None,
        sampled: false,
    };
    match app.store.insert_ekyc(&record).await {
        Ok(()) => Ok(Loaded { record, data, upload_token: None }),
        // Started at the same moment in another tab: use that one.
        Err(StoreError::Duplicate) => current(app, member).await?.ok_or(ServiceError::Conflict),
        Err(e) => Err(e.into()),
    }
}

/// 「選択」 of the identity document (also a retake before the document is confirmed).
#[tracing::instrument(skip_all, fields(user_id = %member.user.id, application_id = %id))]
pub async fn choose_document(app: &App, member: &Member, id: &str, kind: DocumentKind) -> ServiceResult<Loaded> {
    let mut loaded = load(app, member, id).await?;
    loaded.data.app.choose_document(kind)?;
    save(app, &mut loaded).await?;
    Ok(loaded)
}

const CAPTURE_PURPOSE: &str = "ekyc-capture";

/// The stored hash of a new capture token (the active MAC key).
fn token_hash(app: &App, token: &str) -> Vec<u8> {
    app.keys.mac(CAPTURE_PURPOSE, token.as_bytes())
}

/// Checks the capture token `token` of an upload, found under any configured MAC key (a token
/// issued just before a MAC key rotation still works for its few minutes); the upload's
/// [`save`] uses it up. An upload refused before anything is saved (an unusable picture)
/// leaves it valid: the member takes the picture again on the same page.
async fn check_capture_token(app: &App, token: &str, loaded: &mut Loaded, capture: Capture) -> ServiceResult<()> {
    let hashes = app.keys.macs(CAPTURE_PURPOSE, token.as_bytes());
    for hash in &hashes {
        if app.store.capture_token_usable(hash, &loaded.record.id, capture.as_str(), app.now()).await? {
            loaded.upload_token = Some(UploadToken { hashes, capture });
            return Ok(());
        }
    }
    Err(ServiceError::CaptureTokenInvalid)
}

/// The capture the application expects next, if any.
pub fn next_capture(data: &EkycData) -> Option<Capture> {
    match data.app.state {
        EkycState::DocumentChosen => Some(Capture::DocumentFront),
        EkycState::FrontCaptured if data.app.wants_back() => Some(Capture::DocumentBack),
        EkycState::DocumentConfirmed => Some(Capture::SelfieFrontal),
        EkycState::FrontalVerified => Some(Capture::SelfieAngled),
        _ => None,
    }
}

/// A one-time token for the next capture, shown with the capture page and required with the
/// upload; expires after [`CAPTURE_TOKEN_TTL`].
#[tracing::instrument(skip_all, fields(user_id = %member.user.id, application_id = %id, capture = ?capture))]
pub async fn capture_token(app: &App, member: &Member, id: &str, capture: Capture) -> ServiceResult<String> {
    let loaded = load(app, member, id).await?;
    if next_capture(&loaded.data) != Some(capture) {
        return Err(ServiceError::WrongStep);
    }
    limits::check(app, "ekyc:tokens:member", &member.user.id, app.config.limits.ekyc_capture_tokens_per_member).await?;
    let token = random_token();
    app.store
        .issue_capture_token(&token_hash(app, &token), id, capture.as_str(), app.now() + CAPTURE_TOKEN_TTL)
        .await?;
    Ok(token)
}

fn usable(a: &Analysis) -> ServiceResult<()> {
    match a.issues.first() {
        None => Ok(()),
        Some(issue) => Err(ServiceError::FaceQuality(*issue)),
    }
}

async fn keep_image(app: &App, loaded: &mut Loaded, capture: Capture, bytes: &[u8]) -> ServiceResult<Vec<u8>> {
    let image_id = new_id();
    let stored =
        app.images.put(&image_id, bytes).await.map_err(|e| ServiceError::Internal(format!("image store: {e}")))?;
    app.store
        .add_ekyc_image(&EkycImage {
            id: image_id.clone(),
            application_id: loaded.record.id.clone(),
            kind: capture.as_str().into(),
            sha256: stored.sha256.to_vec(),
            size: stored.size as i64,
            created_at: app.now(),
            deleted_at: None,
        })
        .await?;
    loaded.data.images.push((capture, image_id));
    Ok(stored.sha256.to_vec())
}

/// Uploads one capture with its token: one image, or for the angled selfie a burst of frames
/// in capture order (see `domain::liveness`). Documents need exactly one usable face (the
/// back of a licence is only decoded); the frontal selfie must face forward with the mouth
/// closed and match the document; the angled burst must turn from the front to the
/// instruction, the same person throughout, and not repeat a frame or the frontal picture.
#[tracing::instrument(skip_all, fields(user_id = %member.user.id, application_id = %id, capture = ?capture))]
pub async fn upload(
    app: &App,
    member: &Member,
    id: &str,
    capture: Capture,
    token: &str,
    frames: Vec<Vec<u8>>,
) -> ServiceResult<Loaded> {
    match app.config.ekyc_instruction_seed {
        // Tests only (refused with secure cookies, see `Config::ekyc_instruction_seed`).
        Some(seed) => {
            let mut rng = <rand::rngs::StdRng as rand::SeedableRng>::seed_from_u64(seed);
            upload_with_rng(app, member, id, capture, token, frames, &mut rng).await
        }
        None => upload_with_rng(app, member, id, capture, token, frames, &mut rand::rngs::OsRng).await,
    }
}

/// [`upload`] with the generator that draws the angled-selfie instruction (tests pass a
/// seeded one to know the instruction; production uses the OS's CSPRNG).
#[tracing::instrument(skip_all, fields(user_id = %member.user.id, application_id = %id, capture = ?capture))]
pub async fn upload_with_rng<R: rand::Rng + rand::CryptoRng + Send>(
    app: &App,
    member: &Member,
    id: &str,
    capture: Capture,
    token: &str,
    mut frames: Vec<Vec<u8>>,
    rng: &mut R,
) -> ServiceResult<Loaded> {
    let mut loaded = load(app, member, id).await?;
    if next_capture(&loaded.data) != Some(capture) {
        return Err(ServiceError::WrongStep);
    }
    let most = if capture == Capture::SelfieAngled { domain::liveness::MAX_BURST_FRAMES } else { 1 };
    if frames.len() > most {
        return Err(ServiceError::LivenessFailed(domain::liveness::LivenessFailure::TooManyFrames));
    }
    if frames.is_empty() || frames.iter().any(Vec::is_empty) {
        return Err(ServiceError::Image(face::decode::DecodeError::Empty));
    }
    if matches!(capture, Capture::SelfieFrontal | Capture::SelfieAngled) && loaded.data.app.attempts_exhausted() {
        // Before the token is used or the engine runs: nothing more is tried or stored.
        return Err(ServiceError::FaceAttemptsExhausted);
    }
    // Per member and hour, across applications, counted before any image is decoded.
    let budget = &app.config.limits;
    limits::check(app, "ekyc:uploads:member", &member.user.id, budget.ekyc_uploads_per_member).await?;
    if matches!(capture, Capture::SelfieFrontal | Capture::SelfieAngled) {
        limits::check(app, "ekyc:faces:member", &member.user.id, budget.ekyc_face_attempts_per_member).await?;
    }
    if capture == Capture::DocumentBack
        && loaded.data.app.document.map(|d| d.back_policy()) != Some(domain::ekyc::BackPolicy::AskRemarksThenBack)
    {
        return Err(ServiceError::DocumentBackNotAllowed);
    }
    check_capture_token(app, token, &mut loaded, capture).await?;
    if capture == Capture::SelfieAngled {
        angled(app, &mut loaded, frames, rng).await?;
        return Ok(loaded);
    }
    let bytes = frames.pop().unwrap_or_default();
    let engine = engine(app)?;
    match capture {
        Capture::DocumentFront => {
            let (image, a) = engine.decode_and_analyze(bytes.clone(), Options::document()).await.map_err(face_error)?;
            usable(&a)?;
            let reading = read_document(app, &member.user.id, &image).await?;
            keep_image(app, &mut loaded, capture, &bytes).await?;
            loaded.data.document_embedding = a.embedding;
            loaded.data.document_reading = Some(reading);
            loaded.data.app.front_captured()?;
        }
        Capture::DocumentBack => {
            face::decode::decode(&bytes, engine.limits()).map_err(ServiceError::Image)?;
            keep_image(app, &mut loaded, capture, &bytes).await?;
            loaded.data.app.back_captured()?;
        }
        Capture::SelfieFrontal => {
            frontal(app, &mut loaded, &bytes, rng).await?;
            return Ok(loaded);
        }
        Capture::SelfieAngled => return Err(ServiceError::WrongStep),
    }
    save(app, &mut loaded).await?;
    Ok(loaded)
}

/// The frontal selfie: facing forward with the mouth closed, the document's face. A match is
/// kept and draws the angled instruction (its window starts now); a mismatch counts an attempt.
async fn frontal<R: rand::Rng + rand::CryptoRng + Send>(
    app: &App,
    loaded: &mut Loaded,
    bytes: &[u8],
    rng: &mut R,
) -> ServiceResult<()> {
    let a = engine(app)?.analyze_bytes(bytes.to_vec(), Options::selfie()).await.map_err(face_error)?;
    usable(&a)?;
    // 正面, mouth closed.
    if a.turn != Some(face::geometry::Turn::Front) || a.mouth == Some(face::geometry::Mouth::Open) {
        return Err(ServiceError::InstructionNotFollowed);
    }
    let score = similarity(loaded.data.document_embedding.as_deref(), a.embedding.as_deref())?;
    let matched = policy(app).passes(score);
    tracing::info!(application = %loaded.record.id, score, matched, "frontal selfie compared with the document");
    if !matched {
        // For the reviewer: how far each refused attempt was.
        loaded.data.reasons.push(format!("frontal_mismatch:{score:.3}"));
    }
    if matched {
        let sha = keep_image(app, loaded, Capture::SelfieFrontal, bytes).await?;
        loaded.data.frontal_embedding = a.embedding;
        loaded.data.frontal_sha256 = Some(sha);
        loaded.data.document_frontal_score = Some(score);
        loaded.data.frontal_spoof_score = a.spoof_score;
    }
    let result = loaded.data.app.frontal_result(matched, rng);
    if matched {
        loaded.data.instruction_at = Some(app.now());
    }
    save(app, loaded).await?;
    result?;
    if !matched {
        let remaining = domain::ekyc::MAX_FACE_ATTEMPTS.saturating_sub(loaded.data.app.face_attempts);
        return Err(ServiceError::FaceMismatch { remaining });
    }
    Ok(())
}

/// One frame of the angled burst as the engine saw it.
struct Measured {
    analysis: Analysis,
    frame: domain::liveness::Frame,
    /// Similarity to the frontal selfie (`None` without an embedding on either side).
    frontal_similarity: Option<f32>,
}

/// The angled selfie: the burst (or a single still) must come within [`ANGLED_WINDOW`] of
/// the instruction, show one face throughout — the frontal selfie's — turning from the front
/// to the instruction (see `domain::liveness`), and end in a frame that is not the frontal
/// picture again and matches the document. A refusal counts as a face attempt and draws a new
/// instruction; only the last frame is kept, with the burst's yaw angles for the reviewer.
async fn angled<R: rand::Rng + rand::CryptoRng + Send>(
    app: &App,
    loaded: &mut Loaded,
    frames: Vec<Vec<u8>>,
    rng: &mut R,
) -> ServiceResult<()> {
    let instruction = loaded.data.app.instruction.ok_or(ServiceError::WrongStep)?;
    if loaded.data.instruction_at.is_none_or(|at| app.now() - at > ANGLED_WINDOW) {
        return angled_refused(app, loaded, ServiceError::InstructionExpired, "angled_too_late".into(), rng).await;
    }
    let measured = measure_burst(app, loaded, &frames).await?;
    let Some((last, last_bytes)) = measured.last().zip(frames.last()) else {
        return Err(ServiceError::Image(face::decode::DecodeError::Empty));
    };
    let frontal_angled = last.frontal_similarity.ok_or(ServiceError::WrongStep)?;
    let document_angled = similarity(loaded.data.document_embedding.as_deref(), last.analysis.embedding.as_deref())?;
    let p = policy(app);
    let burst: Vec<domain::liveness::Frame> = measured.iter().map(|m| m.frame).collect();
    // As the image store records it (metadata stripped), like the frontal selfie's.
    let sha: Vec<u8> = crate::images::stored_sha256(last_bytes).to_vec();
    let verdict = domain::liveness::check(&burst, instruction);
    let failure = match verdict {
        Err(domain::liveness::LivenessFailure::FaceChanged) if !last.frame.same_face || !p.passes(document_angled) => {
            let remaining = domain::ekyc::MAX_FACE_ATTEMPTS.saturating_sub(loaded.data.app.face_attempts + 1);
            Some((
                ServiceError::FaceMismatch { remaining },
                format!("angled_mismatch:document={document_angled:.3},frontal={frontal_angled:.3}"),
            ))
        }
        Err(domain::liveness::LivenessFailure::NotFollowed) => {
            Some((ServiceError::InstructionNotFollowed, "angled_instruction_not_followed".to_string()))
        }
        Err(f) => Some((ServiceError::LivenessFailed(f), f.reason().to_string())),
        Ok(_)
            if loaded.data.frontal_sha256.as_deref() == Some(sha.as_slice())
                || frontal_angled >= SAME_IMAGE_SIMILARITY =>
        {
            Some((ServiceError::SameImage, "angled_same_image".to_string()))
        }
        Ok(_) if !p.passes(frontal_angled) || !p.passes(document_angled) => {
            let remaining = domain::ekyc::MAX_FACE_ATTEMPTS.saturating_sub(loaded.data.app.face_attempts + 1);
            Some((
                ServiceError::FaceMismatch { remaining },
                format!("angled_mismatch:document={document_angled:.3},frontal={frontal_angled:.3}"),
            ))
        }
        Ok(_) => None,
    };
    if let Some((err, reason)) = failure {
        return angled_refused(app, loaded, err, reason, rng).await;
    }
    let liveness = verdict.map_err(ServiceError::LivenessFailed)?;
    if liveness == domain::liveness::Liveness::SingleFrame {
        loaded.data.reasons.push("liveness_no_burst".into());
    }
    let yaws: Vec<String> = burst.iter().map(|f| format!("{:.0}", f.yaw)).collect();
    loaded.data.reasons.push(format!("liveness_yaw:{}", yaws.join(",")));
    let spoof = spoof_suspected(loaded.data.frontal_spoof_score, &measured, app.config.ekyc_spoof_threshold);
    if let Some(score) = spoof {
        loaded.data.reasons.push(format!("presentation_attack_suspected:{score:.2}"));
    }
    keep_image(app, loaded, Capture::SelfieAngled, last_bytes).await?;
    let scores =
        Scores { document_frontal: loaded.data.document_frontal_score.unwrap_or(0.0), document_angled, frontal_angled };
    loaded.data.app.angled_verified(scores, liveness, spoof.is_some())?;
    save(app, loaded).await
}

/// An angled capture that is refused: the attempt counts and a new instruction is drawn
/// (shown with the error), with a new window.
async fn angled_refused<R: rand::Rng + rand::CryptoRng + Send>(
    app: &App,
    loaded: &mut Loaded,
    err: ServiceError,
    reason: String,
    rng: &mut R,
) -> ServiceResult<()> {
    let result = loaded.data.app.angled_failed(rng);
    loaded.data.instruction_at = Some(app.now());
    loaded.data.reasons.push(reason);
    save(app, loaded).await?;
    result?;
    Err(err)
}

/// The highest presentation-attack score of the selfies (the frontal one and the burst's last
/// frame) when it is above `threshold` (`Config::ekyc_spoof_threshold`): a printed photo
/// or a screen may be in front of the camera. A reason for a reviewer's look, never a refusal:
/// the model is weak on what could be measured here (README, face engine).
fn spoof_suspected(frontal: Option<f32>, burst: &[Measured], threshold: f32) -> Option<f32> {
    frontal
        .into_iter()
        .chain(burst.iter().filter_map(|m| m.analysis.spoof_score))
        .fold(None, |max: Option<f32>, s| Some(max.map_or(s, |m| m.max(s))))
        .filter(|s| *s > threshold)
}

/// Runs the engine on every frame of the burst, one after the other. Every frame must show
/// exactly one face; the last one must also be a usable photo (blur while turning is fine).
async fn measure_burst(app: &App, loaded: &Loaded, frames: &[Vec<u8>]) -> ServiceResult<Vec<Measured>> {
    let engine = engine(app)?;
    let p = policy(app);
    let mut out: Vec<Measured> = Vec::with_capacity(frames.len());
    let mut previous: Option<image::RgbImage> = None;
    for (i, bytes) in frames.iter().enumerate() {
        let last = i + 1 == frames.len();
        // The anti-spoofing model is the slowest stage (about 0.3 s): the last frame only.
        let opts = Options { spoof: last, ..Options::selfie() };
        let (image, a) = engine.decode_and_analyze(bytes.clone(), opts).await.map_err(face_error)?;
        if last {
            usable(&a)?;
        } else if let Some(issue @ (face::quality::Issue::NoFace | face::quality::Issue::MultipleFaces)) =
            a.issues.first()
        {
            return Err(ServiceError::FaceQuality(*issue));
        }
        let (Some(pose), Some(turn)) = (a.pose, a.turn) else {
            return Err(ServiceError::FaceQuality(face::quality::Issue::NoFace));
        };
        let frontal_similarity = similarity(loaded.data.frontal_embedding.as_deref(), a.embedding.as_deref()).ok();
        let same_face = frontal_similarity.is_some_and(|s| p.passes(s));
        let frame = domain::liveness::Frame {
            yaw: pose.yaw,
            pose: match turn {
                face::geometry::Turn::Front => domain::liveness::Pose::Front,
                face::geometry::Turn::Right => domain::liveness::Pose::Turned(Turn::Right),
                face::geometry::Turn::Left => domain::liveness::Pose::Turned(Turn::Left),
                face::geometry::Turn::Unclear => domain::liveness::Pose::Unclear,
            },
            mouth: match a.mouth {
                Some(face::geometry::Mouth::Open) => Some(MouthState::Open),
                Some(face::geometry::Mouth::Closed) => Some(MouthState::Closed),
                _ => None,
            },
            same_face,
            repeats_previous: previous.as_ref().is_some_and(|p| p.as_raw() == image.as_raw()),
        };
        previous = Some(image);
        out.push(Measured { analysis: a, frame, frontal_similarity });
    }
    Ok(out)
}

/// Reads the document's front with OCR and compares it with the member's roster record: one
/// block of text first, and when no birth date is marked in it, once more as a column (a
/// licence's ruled border can make the first pass drop its top lines). OCR that cannot run
/// reads nothing (the case goes to a reviewer); it never fails the upload.
async fn read_document(app: &App, user_id: &str, image: &image::RgbImage) -> ServiceResult<DocumentReading> {
    let roster = identity::roster_entry_of(app, user_id).await?.ok_or(ServiceError::IdentityNotVerified)?;
    let started = std::time::Instant::now();
    let read = app.ocr.read_document(image).await;
    metrics::histogram!("mimoto_ocr_seconds").record(started.elapsed().as_secs_f64());
    let reading = match read {
        Ok(read) => Some(document_reading(&read, &roster)),
        Err(e) => {
            tracing::warn!("OCR of an identity document failed, the case will be reviewed: {e}");
            metrics::counter!("mimoto_ocr_total", "result" => "error").increment(1);
            None
        }
    };
    let Some(reading) = reading else {
        return Ok(DocumentReading {
            dates: Vec::new(),
            name_line: None,
            check: DocumentCheck { birth_date: BirthDateCheck::Unreadable, name: NameCheck::NotFound },
            error: Some("ocr_unavailable".into()),
        });
    };
    let result = match reading.check.birth_date {
        BirthDateCheck::Match => "birth_date_match",
        BirthDateCheck::Mismatch => "birth_date_mismatch",
        BirthDateCheck::Unreadable => "birth_date_unreadable",
    };
    metrics::counter!("mimoto_ocr_total", "result" => result).increment(1);
    Ok(reading)
}

/// What the document's text proves about it being `roster`'s.
pub fn document_reading(read: &ocr::DocumentText, roster: &RosterEntry) -> DocumentReading {
    let (text, readings) = (&read.text, &read.dates);
    let joined = text.joined();
    let check = DocumentCheck {
        birth_date: check_birth_date(readings, roster.birth_date),
        name: check_name(&joined, roster.family_name_kanji.as_deref(), roster.given_name_kanji.as_deref()),
    };
    let family: String =
        roster.family_name_kanji.as_deref().map(domain::evidence::compact).unwrap_or_default().into_iter().collect();
    let name_line = text
        .lines
        .iter()
        .find(|l| {
            let compact: String = domain::evidence::compact(&l.text).into_iter().collect();
            compact.contains("氏名") || (!family.is_empty() && compact.contains(&family))
        })
        .map(|l| (l.text.chars().take(80).collect(), l.confidence));
    let dates = readings
        .iter()
        .map(|d| ReadDate { date: d.date, birth_label: d.birth_label, confidence: d.confidence })
        .collect();
    DocumentReading { dates, name_line, check, error: None }
}

fn face_error(e: face::FaceError) -> ServiceError {
    match e {
        face::FaceError::Decode(d) => ServiceError::Image(d),
        other => ServiceError::Internal(format!("face engine: {other}")),
    }
}

/// Cosine similarity of two stored embeddings (both must exist at this step).
fn similarity(a: Option<&[f32]>, b: Option<&[f32]>) -> ServiceResult<f32> {
    let (Some(a), Some(b)) = (a, b) else { return Err(ServiceError::WrongStep) };
    Ok(face::compare::cosine(a, b))
}

/// One of the application's own images, for the member to check before confirming it
/// (「次へ」 or retake). Only until the application is submitted.
#[tracing::instrument(skip_all, fields(user_id = %member.user.id, application_id = %id, image_id = %image_id))]
pub async fn member_image(app: &App, member: &Member, id: &str, image_id: &str) -> ServiceResult<Vec<u8>> {
    let loaded = load(app, member, id).await?;
    if !loaded.record.open
        || loaded.record.submitted_at.is_some()
        || !loaded.data.images.iter().any(|(_, i)| i == image_id)
    {
        return Err(ServiceError::FlowNotFound);
    }
    app.images.get(image_id).await.map_err(|e| ServiceError::Internal(format!("image store: {e}")))
}

/// The images of the current document (front, and back when captured), newest capture of
/// each kind, for the confirmation screen.
pub fn document_images(data: &EkycData) -> Vec<(Capture, String)> {
    let mut out: Vec<(Capture, String)> = Vec::new();
    for kind in [Capture::DocumentFront, Capture::DocumentBack] {
        if kind == Capture::DocumentBack && !data.app.back_captured {
            continue;
        }
        if let Some((c, i)) = data.images.iter().rev().find(|(c, _)| *c == kind) {
            out.push((*c, i.clone()));
        }
    }
    out
}

/// The images that make up the application now: the current document (see
/// [`document_images`]) and the newest frontal and angled selfie; retakes are left out.
pub fn current_images(data: &EkycData) -> Vec<(Capture, String)> {
    let mut out = document_images(data);
    for kind in [Capture::SelfieFrontal, Capture::SelfieAngled] {
        if let Some((c, i)) = data.images.iter().rev().find(|(c, _)| *c == kind) {
            out.push((*c, i.clone()));
        }
    }
    out
}

/// The answer to 「備考欄に記載はありますか」.
#[tracing::instrument(skip_all, fields(user_id = %member.user.id, application_id = %id))]
pub async fn answer_remarks(app: &App, member: &Member, id: &str, has_entries: bool) -> ServiceResult<Loaded> {
    let mut loaded = load(app, member, id).await?;
    loaded.data.app.answer_remarks(has_entries)?;
    save(app, &mut loaded).await?;
    Ok(loaded)
}

/// 「次へ」 under the captured document images.
#[tracing::instrument(skip_all, fields(user_id = %member.user.id, application_id = %id))]
pub async fn confirm_document(app: &App, member: &Member, id: &str) -> ServiceResult<Loaded> {
    let mut loaded = load(app, member, id).await?;
    loaded.data.app.confirm_document()?;
    save(app, &mut loaded).await?;
    Ok(loaded)
}

/// 秘密の質問設定: the answer is kept only as an argon2id hash of its normalized form.
#[tracing::instrument(skip_all, fields(user_id = %member.user.id, application_id = %id))]
pub async fn set_secret(app: &App, member: &Member, id: &str, question: &str, answer: &str) -> ServiceResult<Loaded> {
    let question = question.trim();
    if question.is_empty() || question.chars().count() > 100 {
        return Err(ServiceError::SecretQuestionInvalid);
    }
    let normalized = domain::ekyc::normalize_secret_answer(answer).ok_or(ServiceError::SecretAnswerEmpty)?;
    if !(domain::ekyc::SECRET_ANSWER_MIN_CHARS..=100).contains(&normalized.chars().count()) {
        return Err(ServiceError::SecretAnswerEmpty);
    }
    let mut loaded = load(app, member, id).await?;
    loaded.data.app.secret_set()?;
    loaded.data.secret_question = Some(question.to_string());
    loaded.data.secret_answer_hash = Some(passwords::hash(normalized).await?);
    save(app, &mut loaded).await?;
    Ok(loaded)
}

/// The 申請 receipt for `record` (submitted, waiting for review), in the member's language.
async fn receipt_mail(app: &App, member: &Member, record: &EkycRecord) -> ServiceResult<store::NewMail> {
    let org = app
        .store
        .get_org(&record.org_id)
        .await?
        .ok_or_else(|| ServiceError::Internal("application without organization".into()))?;
    let template = mail::Template::EkycReceived {
        org_name: org.name,
        reference: crate::services::reference(&record.id),
        submitted_at: crate::services::jst_minute(record.submitted_at.unwrap_or(record.updated_at)),
        review_days: app.config.ekyc_review_days,
    };
    let locale = domain::locale::Locale::parse(&member.user.locale).unwrap_or_default();
    crate::services::codes::sealed_mail(
        app,
        &template,
        locale,
        &crate::services::open_email(app, &member.user.email_enc)?,
    )
}

/// 「この内容で認証する」: 完了 when every face score passed with margin and the document's
/// text proves it is the roster person's (see [`DocumentReading`]), else 申請; why it went to
/// review is noted for the reviewer. A share of automatic completions
/// (`ekyc_sample_rate`) is queued for a reviewer's look afterwards.
#[tracing::instrument(skip_all, fields(user_id = %member.user.id, application_id = %id))]
pub async fn submit(app: &App, member: &Member, id: &str, ip: &str) -> ServiceResult<Loaded> {
    let mut loaded = load(app, member, id).await?;
    let check = loaded.data.document_reading.as_ref().map(|r| r.check);
    let state = loaded.data.app.submit(&policy(app), check.as_ref())?;
    if let Some(check) = check {
        match check.birth_date {
            BirthDateCheck::Match => {}
            BirthDateCheck::Mismatch => loaded.data.reasons.push("document_birth_date_mismatch".into()),
            BirthDateCheck::Unreadable => loaded.data.reasons.push("document_birth_date_unreadable".into()),
        }
        if check.name == NameCheck::NotFound {
            loaded.data.reasons.push("document_name_not_found".into());
        }
    } else {
        loaded.data.reasons.push("document_not_read".into());
    }
    if state == EkycState::Completed {
        loaded.record.sampled = rand::Rng::gen_bool(&mut rand::thread_rng(), app.config.ekyc_sample_rate);
    }
    if state == EkycState::PendingReview {
        // 申請: the receipt (受付番号, when, how long the review usually takes) is queued with
        // the application, in one transaction.
        let mut record = stamped(app, &mut loaded)?;
        let receipt = receipt_mail(app, member, &record).await?;
        app.store.update_ekyc_with_mail(&record, &receipt).await?;
        app.mail_wake.notify_one();
        record.version += 1;
        loaded.record = record;
    } else {
        save(app, &mut loaded).await?;
    }
    let target = Some(("ekyc_application", loaded.record.id.as_str()));
    audit::member(app, Some(&member.user.id), audit::actions::EKYC_SUBMITTED, target, ip).await?;
    if state == EkycState::Completed {
        audit::member(app, Some(&member.user.id), audit::actions::EKYC_AUTO_COMPLETED, target, ip).await?;
    }
    tracing::info!(application = %loaded.record.id, state = %loaded.record.state, "eKYC submitted");
    Ok(loaded)
}
