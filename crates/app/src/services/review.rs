//! eKYC review (F4, operator side): the queue of applications waiting for a human, a case with
//! everything the automatic checks saw next to the member's verified roster data, and the
//! decision. Every look at a case or an image is written to the audit log before anything is
//! returned; a decision is one transaction (versioned update of the application, the review,
//! the member's mail, the audit row), so of two reviewers exactly one decides and only one mail
//! goes out.

use domain::ekyc::{EkycState, Instruction, Scores};
use domain::locale::Locale;
use domain::org::Organization;
use domain::roster::RosterEntry;
use store::{EkycRecord, EkycReview, StoreError};
use time::OffsetDateTime;

use crate::error::{ServiceError, ServiceResult};
use crate::services::codes::sealed_mail;
use crate::services::ekyc::{self, Capture, EkycData};
use crate::services::open_email;
use crate::services::operators::{self, actions, Operator};
use crate::state::App;

/// The AAD `services::ekyc` seals applications with (a decision is written here, in the same
/// transaction as its mail and audit row; the member side reads it back with that module).
pub(crate) const NOTE_AAD: &str = "ekyc_reviews.note";
/// The reviewer's free text.
pub const NOTE_MAX_CHARS: usize = 1000;
/// The queue shows at most this many cases, oldest first.
pub const QUEUE_LIMIT: i64 = 200;

/// Reasons a reviewer may give for a rejection (message keys `console.reason.<code>`).
pub const REJECT_REASONS: [&str; 6] = [
    "document_not_roster_person",
    "document_unreadable",
    "face_mismatch",
    "document_not_accepted",
    "document_expired",
    "other",
];

/// Reasons an operator may give for withdrawing a member's binding (message keys
/// `console.withdraw_reason.<code>`).
pub const WITHDRAW_REASONS: [&str; 4] = ["wrong_person", "member_request", "sample_check_failed", "other"];

pub struct QueueItem {
    pub id: String,
    pub org_name: String,
    pub submitted_at: Option<OffsetDateTime>,
    pub document: Option<domain::ekyc::DocumentKind>,
}

/// Applications waiting for review (`pending_review`), oldest submission first. Shows no
/// personal data; the look is logged all the same (every operator action is).
#[tracing::instrument(skip_all, fields(operator_id = %operator.id))]
pub async fn queue(app: &App, operator: &Operator, ip: &str) -> ServiceResult<Vec<QueueItem>> {
    operators::audit(app, Some(&operator.id), actions::VIEW_QUEUE, None, ip).await?;
    let mut records = app.store.ekyc_queue("pending_review", QUEUE_LIMIT).await?;
    records.retain(|r| operator.may_see_org(&r.org_id));
    queue_items(app, records).await
}

/// Queue rows (no personal data) for applications, with their organization's name.
pub(crate) async fn queue_items(app: &App, records: Vec<EkycRecord>) -> ServiceResult<Vec<QueueItem>> {
    let orgs: std::collections::HashMap<String, String> =
        app.store.list_orgs().await?.into_iter().map(|o| (o.id, o.name)).collect();
    records
        .into_iter()
        .map(|r| {
            let loaded = ekyc::open_record(app, r)?;
            Ok(QueueItem {
                org_name: orgs.get(&loaded.record.org_id).cloned().unwrap_or_default(),
                submitted_at: loaded.record.submitted_at,
                document: loaded.data.app.document,
                id: loaded.record.id,
            })
        })
        .collect()
}

/// Decided cases shown per page of the console's list.
pub const DECIDED_PAGE_SIZE: i64 = 50;

/// One reviewer's decision in the list of decided cases (no personal data).
pub struct DecidedItem {
    pub id: String,
    pub user_id: String,
    pub org_name: String,
    pub approved: bool,
    /// A code of [`REJECT_REASONS`].
    pub reason: Option<String>,
    pub operator_name: String,
    pub decided_at: OffsetDateTime,
}

/// A page of decided cases and whether another follows.
pub struct DecidedPage {
    pub items: Vec<DecidedItem>,
    pub has_next: bool,
}

/// Reviewers' decisions, newest first, `DECIDED_PAGE_SIZE` a page (`page` from 1), only
/// approvals or rejections when `approved` is given, of the organizations the operator may
/// see. Audited like the queue.
#[tracing::instrument(skip_all, fields(operator_id = %operator.id, page = page))]
pub async fn decided(
    app: &App,
    operator: &Operator,
    approved: Option<bool>,
    page: i64,
    ip: &str,
) -> ServiceResult<DecidedPage> {
    operators::audit(app, Some(&operator.id), actions::VIEW_DECIDED, None, ip).await?;
    let decision = approved.map(|a| if a { "approved" } else { "rejected" });
    let orgs = (!operator.sees_all_orgs()).then_some(operator.orgs.as_slice());
    let offset = page.max(1).saturating_sub(1).saturating_mul(DECIDED_PAGE_SIZE);
    let mut rows = app.store.decided_reviews(decision, orgs, DECIDED_PAGE_SIZE + 1, offset).await?;
    let has_next = rows.len() as i64 > DECIDED_PAGE_SIZE;
    rows.truncate(DECIDED_PAGE_SIZE as usize);
    let names: std::collections::HashMap<String, String> =
        app.store.list_orgs().await?.into_iter().map(|o| (o.id, o.name)).collect();
    let mut operator_names = std::collections::HashMap::new();
    let mut items = Vec::with_capacity(rows.len());
    for r in rows.into_iter().filter(|r| operator.may_see_org(&r.org_id)) {
        if !operator_names.contains_key(&r.operator_id) {
            let name = operators::name_of(app, &r.operator_id).await?.unwrap_or_else(|| r.operator_id.clone());
            operator_names.insert(r.operator_id.clone(), name);
        }
        items.push(DecidedItem {
            org_name: names.get(&r.org_id).cloned().unwrap_or_default(),
            operator_name: operator_names.get(&r.operator_id).cloned().unwrap_or_default(),
            approved: r.decision == "approved",
            id: r.application_id,
            user_id: r.user_id,
            reason: r.reason,
            decided_at: r.decided_at,
        });
    }
    Ok(DecidedPage { items, has_next })
}

/// The member's roster record (F3), opened.
pub struct Person {
    pub entry: RosterEntry,
    pub insurer_number: String,
}

pub struct CaseImage {
    pub capture: Capture,
    pub id: String,
    /// Removed by retention after the decision.
    pub deleted: bool,
}

pub struct Decision {
    pub approved: bool,
    pub reason: Option<String>,
    pub note: Option<String>,
    pub operator_name: Option<String>,
    pub decided_at: OffsetDateTime,
}

pub struct Case {
    pub record: EkycRecord,
    pub data: EkycData,
    pub org: Organization,
    pub person: Option<Person>,
    pub images: Vec<CaseImage>,
    pub decision: Option<Decision>,
    /// Two faces are the same person at or above this score.
    pub threshold: f32,
    /// Approval without a human needs every score at or above this.
    pub auto_bar: f32,
}

impl Case {
    pub fn pending(&self) -> bool {
        self.data.app.state == EkycState::PendingReview
    }
    pub fn scores(&self) -> Option<Scores> {
        self.data.app.scores
    }
    pub fn instruction(&self) -> Option<Instruction> {
        self.data.app.instruction
    }
}

/// An application an operator may look at: submitted (in review or decided). Applications a
/// member is still filling in are not shown.
/// A submitted application of an organization the operator may see; any other is not found.
pub(crate) async fn submitted(app: &App, operator: &Operator, id: &str) -> ServiceResult<EkycRecord> {
    app.store
        .get_ekyc(id)
        .await?
        .filter(|r| r.submitted_at.is_some() && operator.may_see_org(&r.org_id))
        .ok_or(ServiceError::FlowNotFound)
}

/// A case for review. The audit row is written before the case is even opened.
#[tracing::instrument(skip_all, fields(operator_id = %operator.id, application_id = %id))]
pub async fn case(app: &App, operator: &Operator, id: &str, ip: &str) -> ServiceResult<Case> {
    let record = submitted(app, operator, id).await?;
    operators::audit(app, Some(&operator.id), actions::VIEW_CASE, Some(("ekyc_application", &record.id)), ip).await?;
    let loaded = ekyc::open_record(app, record)?;
    let org = app
        .store
        .get_org(&loaded.record.org_id)
        .await?
        .ok_or_else(|| ServiceError::Internal("application without organization".into()))?;
    let person = crate::services::identity::roster_entry_of(app, &loaded.record.user_id)
        .await?
        .map(|entry| Person { entry, insurer_number: org.insurer_number.as_str().to_string() });
    let stored = app.store.ekyc_images(&loaded.record.id).await?;
    // The current images only: a retaken document's earlier pictures are not part of the case.
    let images = ekyc::current_images(&loaded.data)
        .into_iter()
        .map(|(capture, image_id)| CaseImage {
            capture,
            deleted: stored.iter().find(|i| i.id == image_id).is_none_or(|i| i.deleted_at.is_some()),
            id: image_id,
        })
        .collect();
    let decision = match app.store.ekyc_review(&loaded.record.id).await? {
        Some(r) => {
            let note = match &r.note_enc {
                Some(sealed) => Some(
                    String::from_utf8(app.keys.open(NOTE_AAD, sealed)?)
                        .map_err(|_| ServiceError::Internal("review note".into()))?,
                ),
                None => None,
            };
            let operator_name = operators::name_of(app, &r.operator_id).await?;
            Some(Decision {
                approved: r.decision == "approved",
                reason: r.reason,
                note,
                operator_name,
                decided_at: r.decided_at,
            })
        }
        None => None,
    };
    let threshold = app.config.face_threshold;
    Ok(Case {
        record: loaded.record,
        data: loaded.data,
        org,
        person,
        images,
        decision,
        threshold,
        auto_bar: threshold + app.config.ekyc_auto_margin,
    })
}

/// An image of a case, decrypted from the image store, with its media type. The audit row is
/// written before the image is read.
#[tracing::instrument(skip_all, fields(operator_id = %operator.id, application_id = %case_id, image_id = %image_id))]
pub async fn image(
    app: &App,
    operator: &Operator,
    case_id: &str,
    image_id: &str,
    ip: &str,
) -> ServiceResult<(Vec<u8>, &'static str)> {
    let record = submitted(app, operator, case_id).await?;
    let known =
        app.store.ekyc_images(&record.id).await?.into_iter().find(|i| i.id == image_id && i.deleted_at.is_none());
    let Some(image) = known else {
        return Err(ServiceError::FlowNotFound);
    };
    operators::audit(app, Some(&operator.id), actions::VIEW_IMAGE, Some(("ekyc_image", &image.id)), ip).await?;
    let bytes = app.images.get(&image.id).await.map_err(|e| match e {
        crate::images::ImageError::NotFound => ServiceError::FlowNotFound,
        other => ServiceError::Internal(format!("image store: {other}")),
    })?;
    let media_type = match image::guess_format(&bytes) {
        Ok(image::ImageFormat::Png) => "image/png",
        Ok(image::ImageFormat::Jpeg) => "image/jpeg",
        Ok(image::ImageFormat::WebP) => "image/webp",
        _ => "application/octet-stream",
    };
    Ok((bytes, media_type))
}

/// The reviewer's checklist: each item ticked after comparing the document with the roster
/// record and the selfies. Approval needs all three.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Checklist {
    /// 「氏名が一致」
    pub name: bool,
    /// 「生年月日が一致」
    pub birth_date: bool,
    /// 「顔が一致」
    pub face: bool,
}

impl Checklist {
    pub const ALL: Checklist = Checklist { name: true, birth_date: true, face: true };

    pub fn complete(&self) -> bool {
        self.name && self.birth_date && self.face
    }
}

/// What a reviewer submits.
pub struct DecisionInput<'a> {
    pub approve: bool,
    /// Required complete to approve.
    pub checklist: Checklist,
    /// One of [`REJECT_REASONS`]; required to reject, ignored to approve.
    pub reason: &'a str,
    pub note: &'a str,
    /// The application's version the reviewer saw.
    pub version: i64,
}

/// Approves or rejects a pending case. The member gets a mail either way (in their language),
/// queued in the decision's transaction; a case decided meanwhile gives
/// [`ServiceError::AlreadyDecided`] and writes nothing, sends nothing.
#[tracing::instrument(skip_all, fields(operator_id = %operator.id, application_id = %id))]
pub async fn decide(app: &App, operator: &Operator, id: &str, input: DecisionInput<'_>, ip: &str) -> ServiceResult<()> {
    let reason = if input.approve {
        None
    } else {
        Some(REJECT_REASONS.iter().find(|r| **r == input.reason).ok_or(ServiceError::ReviewReasonInvalid)?.to_string())
    };
    let note = input.note.trim();
    if note.chars().count() > NOTE_MAX_CHARS {
        return Err(ServiceError::ReviewNoteTooLong);
    }
    let record = submitted(app, operator, id).await?;
    if input.approve && !input.checklist.complete() {
        return Err(ServiceError::ReviewChecklistIncomplete);
    }
    let mut loaded = ekyc::open_record(app, record)?;
    if loaded.data.app.state != EkycState::PendingReview || loaded.record.version != input.version {
        return Err(ServiceError::AlreadyDecided);
    }
    loaded.data.app.review(input.approve).map_err(|_| ServiceError::AlreadyDecided)?;
    let now = app.now();
    let decided = ekyc::stamped(app, &mut loaded)?;

    let user = app
        .store
        .get_user(&decided.user_id)
        .await?
        .ok_or_else(|| ServiceError::Internal("application without member".into()))?;
    let org = app
        .store
        .get_org(&decided.org_id)
        .await?
        .ok_or_else(|| ServiceError::Internal("application without organization".into()))?;
    let locale = Locale::parse(&user.locale).unwrap_or_default();
    let template = match &reason {
        None => mail::Template::EkycApproved { org_name: org.name.clone() },
        Some(code) => mail::Template::EkycRejected {
            org_name: org.name.clone(),
            reason: crate::i18n::t(locale, &format!("console.reason.{code}")).to_string(),
        },
    };
    let mail = sealed_mail(app, &template, locale, &open_email(app, &user.email_enc)?)?;
    let review = EkycReview {
        application_id: decided.id.clone(),
        operator_id: operator.id.clone(),
        decision: decided.state.clone(),
        reason,
        note_enc: if note.is_empty() { None } else { Some(app.keys.seal(NOTE_AAD, note.as_bytes())?) },
        decided_at: now,
    };
    let action = if input.approve { actions::APPROVE } else { actions::REJECT };
    let audit = operators::audit_entry(app, Some(&operator.id), action, Some(("ekyc_application", &decided.id)), ip);
    match app.store.decide_ekyc(&decided, &review, &mail, &audit).await {
        Ok(()) => {}
        Err(StoreError::Conflict) => return Err(ServiceError::AlreadyDecided),
        Err(e) => return Err(e.into()),
    }
    app.mail_wake.notify_one();
    metrics::counter!("mimoto_ekyc_reviews_total", "decision" => review.decision.clone()).increment(1);
    tracing::info!(application = %decided.id, operator_id = %operator.id, decision = %review.decision, "eKYC case decided");
    Ok(())
}
