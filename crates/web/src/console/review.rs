//! Console: the eKYC review queue, the case page with its images, and the decision.

use askama::Template;
use axum::extract::{Query, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Extension;
use serde::Deserialize;

use super::{
    jst, reason_options, state_label, to_login, Chrome, ConsoleCtx, ConsoleError, ConsoleForm, Cx, Field, IdPath,
    LateId, OrConsole, ReasonOption,
};
use crate::member::{render, see_other};
use crate::ClientIp;
use app::error::ServiceError;
use app::i18n::{Locale, Tr};
use app::services::binding;
use app::services::review::{self, DecisionInput, REJECT_REASONS};
use app::AppState;
use domain::ids::{ApplicationId, ImageId};

// ---------------------------------------------------------------------------------------
// Review queue

struct QueueRow {
    id: String,
    org_name: String,
    submitted_at: String,
    document: &'static str,
}

#[derive(Template)]
#[template(path = "console_queue.html")]
struct QueuePage {
    c: Chrome,
    rows: Vec<QueueRow>,
    /// Sampled automatic completions for the after-the-fact look.
    samples: Vec<QueueRow>,
    notice: Option<&'static str>,
}

#[derive(Deserialize)]
pub(super) struct QueueQuery {
    decided: Option<String>,
}

fn document_label(tr: Tr, kind: Option<domain::ekyc::DocumentKind>) -> &'static str {
    match kind {
        Some(k) => tr.t(&format!("console.doc.{}", k.as_str())),
        None => tr.t("console.none"),
    }
}

pub(super) async fn queue(
    State(app): State<AppState>,
    Extension(ctx): Cx,
    ClientIp(ip): ClientIp,
    Query(q): Query<QueueQuery>,
) -> Result<Response, ConsoleError> {
    let Some(operator) = ctx.operator.as_ref() else {
        return Ok(to_login());
    };
    let row = |i: review::QueueItem| QueueRow {
        id: i.id,
        org_name: i.org_name,
        submitted_at: i.submitted_at.map(jst).unwrap_or_default(),
        document: document_label(ctx.tr, i.document),
    };
    let rows = review::queue(&app, operator, &ip).await.or_console(&ctx)?.into_iter().map(row).collect();
    let samples = binding::samples(&app, operator, &ip).await.or_console(&ctx)?.into_iter().map(row).collect();
    let notice = match q.decided.as_deref() {
        Some("approved") => Some(ctx.tr.t("console.notice.approved")),
        Some("rejected") => Some(ctx.tr.t("console.notice.rejected")),
        Some("sample_checked") => Some(ctx.tr.t("console.notice.sample_checked")),
        Some("withdrawn") => Some(ctx.tr.t("console.notice.withdrawn")),
        _ => None,
    };
    Ok(render(StatusCode::OK, &QueuePage { c: Chrome::from(&ctx), rows, samples, notice }))
}

// ---------------------------------------------------------------------------------------
// Case page

struct ImageView {
    url: String,
    label: &'static str,
    deleted: bool,
}

struct ScoreView {
    label: &'static str,
    value: String,
    verdict: &'static str,
    auto: &'static str,
}

struct DecisionView {
    outcome: &'static str,
    reason: Option<&'static str>,
    note: Option<String>,
    operator_name: String,
    decided_at: String,
}

#[derive(Template)]
#[template(path = "console_case.html")]
struct CasePage {
    c: Chrome,
    id: String,
    version: i64,
    pending: bool,
    application: Vec<Field>,
    person: Option<Vec<Field>>,
    images: Vec<ImageView>,
    instruction: String,
    scores: Vec<ScoreView>,
    bar_note: String,
    reasons: Vec<String>,
    reject_reasons: Vec<ReasonOption>,
    note_max: usize,
    decision: Option<DecisionView>,
    reading: Option<ReadingView>,
    /// An admin may withdraw the binding (revoke the authentication, unlink the roster).
    can_withdraw: bool,
    withdraw_reasons: Vec<ReasonOption>,
    /// A sampled automatic completion waiting for the after-the-fact look.
    sampled: bool,
}

/// What OCR read on the document, next to the roster record.
struct ReadingView {
    /// 「一致」「不一致」「読み取れません」
    birth_date_result: &'static str,
    /// A readable birth date that differs from the roster's.
    birth_date_mismatch: bool,
    name_result: &'static str,
    dates: Vec<Field>,
    name_line: Option<Field>,
    error: Option<&'static str>,
}

fn reading_view(tr: Tr, r: &app::services::ekyc::DocumentReading) -> ReadingView {
    use domain::evidence::{BirthDateCheck, NameCheck};
    ReadingView {
        birth_date_result: tr.t(match r.check.birth_date {
            BirthDateCheck::Match => "console.ocr.match",
            BirthDateCheck::Mismatch => "console.ocr.mismatch",
            BirthDateCheck::Unreadable => "console.ocr.unreadable",
        }),
        birth_date_mismatch: r.check.birth_date == BirthDateCheck::Mismatch,
        name_result: tr.t(match r.check.name {
            NameCheck::Match => "console.ocr.match",
            NameCheck::NotFound => "console.ocr.name_not_found",
            NameCheck::NotOnRoster => "console.ocr.name_not_on_roster",
        }),
        dates: r
            .birth_dates()
            .iter()
            .map(|d| Field {
                label: tr.t(if d.birth_label { "console.ocr.birth_date_read" } else { "console.ocr.date_read" }),
                value: format!("{}（{} {:.0}）", d.date, tr.t("console.ocr.confidence"), d.confidence),
            })
            .collect(),
        name_line: r.name_line.as_ref().map(|(text, conf)| Field {
            label: tr.t("console.ocr.name_line"),
            value: format!("{text}（{} {conf:.0}）", tr.t("console.ocr.confidence")),
        }),
        error: r.error.as_ref().map(|_| tr.t("console.ocr.unavailable")),
    }
}

fn yes_no(tr: Tr, b: bool) -> &'static str {
    tr.t(if b { "console.yes" } else { "console.no" })
}

fn application_fields(tr: Tr, case: &review::Case) -> Vec<Field> {
    let a = &case.data.app;
    vec![
        Field { label: tr.t("console.case.org"), value: format!("{}（{}）", case.org.name, case.org.insurer_number) },
        Field {
            label: tr.t("console.case.submitted_at"),
            value: case.record.submitted_at.map(jst).unwrap_or_default(),
        },
        Field { label: tr.t("console.case.state"), value: state_label(tr, a.state).to_string() },
        Field { label: tr.t("console.case.document"), value: document_label(tr, a.document).to_string() },
        Field {
            label: tr.t("console.case.remarks"),
            value: a.remarks.map(|r| yes_no(tr, r).to_string()).unwrap_or_else(|| tr.t("console.none").to_string()),
        },
        Field { label: tr.t("console.case.face_attempts"), value: a.face_attempts.to_string() },
    ]
}

fn person_fields(tr: Tr, p: &review::Person) -> Vec<Field> {
    let e = &p.entry;
    vec![
        Field { label: tr.t("console.person.name_kana"), value: format!("{}　{}", e.family_name, e.given_name) },
        Field {
            label: tr.t("console.person.name_kanji"),
            value: match (&e.family_name_kanji, &e.given_name_kanji) {
                (Some(f), Some(g)) => format!("{f}　{g}"),
                _ => tr.t("console.person.no_kanji").to_string(),
            },
        },
        Field { label: tr.t("console.person.birth_date"), value: e.birth_date.to_string() },
        Field { label: tr.t("console.person.insurer_number"), value: p.insurer_number.clone() },
        Field {
            label: tr.t("console.person.symbol"),
            value: if e.card.symbol.is_empty() { tr.t("console.none").to_string() } else { e.card.symbol.clone() },
        },
        Field { label: tr.t("console.person.number"), value: e.card.number.clone() },
        Field {
            label: tr.t("console.person.branch"),
            value: e.card.branch.clone().unwrap_or_else(|| tr.t("console.none").to_string()),
        },
        Field {
            label: tr.t("console.person.eligibility"),
            value: format!(
                "{} – {}",
                e.eligible_from,
                e.eligible_until.map(|d| d.to_string()).unwrap_or_else(|| tr.t("console.person.no_end").to_string())
            ),
        },
    ]
}

fn score_views(tr: Tr, case: &review::Case) -> Vec<ScoreView> {
    let score = |label: &'static str, v: Option<f32>| match v {
        Some(v) => ScoreView {
            label: tr.t(label),
            value: format!("{v:.3}"),
            verdict: tr.t(if v >= case.threshold { "console.score.match" } else { "console.score.no_match" }),
            auto: yes_no(tr, v >= case.auto_bar),
        },
        None => ScoreView {
            label: tr.t(label),
            value: "—".into(),
            verdict: tr.t("console.none"),
            auto: tr.t("console.none"),
        },
    };
    let s = case.scores();
    vec![
        score("console.score.document_frontal", s.map(|s| s.document_frontal).or(case.data.document_frontal_score)),
        score("console.score.document_angled", s.map(|s| s.document_angled)),
        score("console.score.frontal_angled", s.map(|s| s.frontal_angled)),
    ]
}

fn case_view(ctx: &ConsoleCtx, case: review::Case) -> CasePage {
    let tr = ctx.tr;
    let images = case
        .images
        .iter()
        .map(|i| ImageView {
            url: format!("/console/reviews/{}/images/{}", case.record.id, i.id),
            label: tr.t(&format!("console.image.{}", i.capture.as_str())),
            deleted: i.deleted,
        })
        .collect();
    let instruction = match case.instruction() {
        Some(i) => match tr.locale {
            Locale::Ja => i.label_ja(),
            Locale::En => i.label_en(),
        },
        None => tr.t("console.none").to_string(),
    };
    let bar_note = tr
        .t("console.score.bar_note")
        .replace("{threshold}", &format!("{:.2}", case.threshold))
        .replace("{margin}", &format!("{:.2}", case.auto_bar - case.threshold))
        .replace("{bar}", &format!("{:.2}", case.auto_bar));
    let decision = case.decision.as_ref().map(|d| DecisionView {
        outcome: tr.t(if d.approved { "console.decision.approved" } else { "console.decision.rejected" }),
        reason: d.reason.as_ref().map(|r| tr.t(&format!("console.reason.{r}"))),
        note: d.note.clone(),
        operator_name: d.operator_name.clone().unwrap_or_default(),
        decided_at: jst(d.decided_at),
    });
    CasePage {
        c: Chrome::from(ctx),
        id: case.record.id.clone(),
        version: case.record.version,
        pending: case.pending(),
        application: application_fields(tr, &case),
        person: case.person.as_ref().map(|p| person_fields(tr, p)),
        images,
        instruction,
        scores: score_views(tr, &case),
        bar_note,
        reasons: case.data.reasons.clone(),
        reject_reasons: reason_options(tr, "console.reason", &REJECT_REASONS),
        note_max: review::NOTE_MAX_CHARS,
        decision,
        reading: case.data.document_reading.as_ref().map(|r| reading_view(tr, r)),
        can_withdraw: ctx.operator.as_ref().is_some_and(|o| o.role == app::services::operators::Role::Admin)
            && !matches!(case.data.app.state, domain::ekyc::EkycState::Rejected | domain::ekyc::EkycState::Revoked),
        withdraw_reasons: reason_options(tr, "console.withdraw_reason", &app::services::review::WITHDRAW_REASONS),
        sampled: case.record.sampled,
    }
}

pub(super) async fn case_page(
    State(app): State<AppState>,
    Extension(ctx): Cx,
    ClientIp(ip): ClientIp,
    IdPath(id): IdPath<ApplicationId>,
) -> Result<Response, ConsoleError> {
    let Some(operator) = ctx.operator.as_ref() else {
        return Ok(to_login());
    };
    let case = review::case(&app, operator, &id, &ip).await.or_console(&ctx)?;
    Ok(render(StatusCode::OK, &case_view(&ctx, case)))
}

pub(super) async fn image(
    State(app): State<AppState>,
    Extension(ctx): Cx,
    ClientIp(ip): ClientIp,
    IdPath((id, image_id)): IdPath<(ApplicationId, ImageId)>,
) -> Result<Response, ConsoleError> {
    let Some(operator) = ctx.operator.as_ref() else {
        return Ok(to_login());
    };
    let (bytes, media_type) = review::image(&app, operator, &id, &image_id, &ip).await.or_console(&ctx)?;
    Ok((
        [
            (header::CONTENT_TYPE, HeaderValue::from_static(media_type)),
            (header::CONTENT_DISPOSITION, HeaderValue::from_static("inline")),
        ],
        bytes,
    )
        .into_response())
}

#[derive(Deserialize)]
pub(super) struct DecisionForm {
    #[serde(default)]
    version: String,
    #[serde(default)]
    decision: String,
    #[serde(default)]
    reason: String,
    #[serde(default)]
    note: String,
    #[serde(default)]
    check_name: Option<String>,
    #[serde(default)]
    check_birth_date: Option<String>,
    #[serde(default)]
    check_face: Option<String>,
}

pub(super) async fn decide(
    State(app): State<AppState>,
    Extension(ctx): Cx,
    ClientIp(ip): ClientIp,
    id: LateId<ApplicationId>,
    form: ConsoleForm<DecisionForm>,
) -> Result<Response, ConsoleError> {
    let f = form.into_inner();
    let Some(operator) = ctx.operator.as_ref() else {
        return Ok(to_login());
    };
    let IdPath(id) = match id {
        Ok(id) => id,
        Err(unknown) => return Ok(unknown),
    };
    let approve = match f.decision.as_str() {
        "approve" => true,
        "reject" => false,
        _ => return Err(ServiceError::InvalidRequest("decision".into())).or_console(&ctx),
    };
    let version =
        f.version.trim().parse::<i64>().map_err(|_| ServiceError::InvalidRequest("version".into())).or_console(&ctx)?;
    let checklist = review::Checklist {
        name: f.check_name.is_some(),
        birth_date: f.check_birth_date.is_some(),
        face: f.check_face.is_some(),
    };
    let input = DecisionInput { approve, checklist, reason: &f.reason, note: &f.note, version };
    review::decide(&app, operator, &id, input, &ip).await.or_console(&ctx)?;
    Ok(see_other(if approve { "/console?decided=approved" } else { "/console?decided=rejected" }))
}

#[derive(Deserialize)]
pub(super) struct VersionForm {
    #[serde(default)]
    version: String,
}

/// 「確認しました」 on a sampled automatic completion.
pub(super) async fn sample_checked(
    State(app): State<AppState>,
    Extension(ctx): Cx,
    ClientIp(ip): ClientIp,
    id: LateId<ApplicationId>,
    form: ConsoleForm<VersionForm>,
) -> Result<Response, ConsoleError> {
    let f = form.into_inner();
    let Some(operator) = ctx.operator.as_ref() else {
        return Ok(to_login());
    };
    let IdPath(id) = match id {
        Ok(id) => id,
        Err(unknown) => return Ok(unknown),
    };
    let version =
        f.version.trim().parse::<i64>().map_err(|_| ServiceError::InvalidRequest("version".into())).or_console(&ctx)?;
    binding::sample_checked(&app, operator, &id, version, &ip).await.or_console(&ctx)?;
    Ok(see_other("/console?decided=sample_checked"))
}

#[derive(Deserialize)]
pub(super) struct WithdrawForm {
    #[serde(default)]
    unlink: Option<String>,
    #[serde(default)]
    reason: String,
    #[serde(default)]
    note: String,
}

/// 「認証を取り消す」 (admins): revokes the case's authentication, and with 「名簿との紐付けも
/// 解除する」 the member's roster link.
pub(super) async fn withdraw(
    State(app): State<AppState>,
    Extension(ctx): Cx,
    ClientIp(ip): ClientIp,
    id: LateId<ApplicationId>,
    form: ConsoleForm<WithdrawForm>,
) -> Result<Response, ConsoleError> {
    let f = form.into_inner();
    let Some(operator) = ctx.operator.as_ref() else {
        return Ok(to_login());
    };
    let IdPath(id) = match id {
        Ok(id) => id,
        Err(unknown) => return Ok(unknown),
    };
    let user_id = binding::member_of_application(&app, operator, &id).await.or_console(&ctx)?;
    let input =
        binding::WithdrawInput { user_id: &user_id, unlink: f.unlink.is_some(), reason: &f.reason, note: &f.note };
    binding::withdraw(&app, operator, input, &ip).await.or_console(&ctx)?;
    Ok(see_other("/console?decided=withdrawn"))
}
