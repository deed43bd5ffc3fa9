//! Console: the eKYC review queue, the case page with its images, and the decision.

use askama::Template;
use axum::extract::{Query, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Extension;
use serde::Deserialize;

use super::{jst, to_login, Chrome, ConsoleCtx, ConsoleError, ConsoleForm, Cx, Field, IdPath, LateId, OrConsole};
use crate::member::{render, see_other};
use crate::ClientIp;
use app::error::ServiceError;
use app::i18n::{Locale, Tr};
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
    let items = review::queue(&app, operator, &ip).await.or_console(&ctx)?;
    let rows = items
        .into_iter()
        .map(|i| QueueRow {
            id: i.id,
            org_name: i.org_name,
            submitted_at: i.submitted_at.map(jst).unwrap_or_default(),
            document: document_label(ctx.tr, i.document),
        })
        .collect();
    let notice = match q.decided.as_deref() {
        Some("approved") => Some(ctx.tr.t("console.notice.approved")),
        Some("rejected") => Some(ctx.tr.t("console.notice.rejected")),
        _ => None,
    };
    Ok(render(StatusCode::OK, &QueuePage { c: Chrome::from(&ctx), rows, notice }))
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

struct ReasonOption {
    code: &'static str,
    label: &'static str,
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
}

fn yes_no(tr: Tr, b: bool) -> &'static str {
    tr.t(if b { "console.yes" } else { "console.no" })
}

fn application_fields(tr: Tr, case: &review::Case) -> Vec<Field> {
    let a = &case.data.app;
    let state = serde_json::to_value(a.state).ok().and_then(|v| v.as_str().map(str::to_string)).unwrap_or_default();
    vec![
        Field { label: tr.t("console.case.org"), value: format!("{}（{}）", case.org.name, case.org.insurer_number) },
        Field {
            label: tr.t("console.case.submitted_at"),
            value: case.record.submitted_at.map(jst).unwrap_or_default(),
        },
        Field { label: tr.t("console.case.state"), value: tr.t(&format!("console.state.{state}")).to_string() },
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
        reject_reasons: REJECT_REASONS
            .iter()
            .map(|code| ReasonOption { code, label: tr.t(&format!("console.reason.{code}")) })
            .collect(),
        note_max: review::NOTE_MAX_CHARS,
        decision,
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
    let input = DecisionInput { approve, reason: &f.reason, note: &f.note, version };
    review::decide(&app, operator, &id, input, &ip).await.or_console(&ctx)?;
    Ok(see_other(if approve { "/console?decided=approved" } else { "/console?decided=rejected" }))
}
