//! F5 for native apps under `/api/v1/health`: the same health data as the pages, behind the
//! same step-up. `GET /health` says where the session stands (and whether a passkey can be
//! used), `POST /health/step-up` answers the question, `POST
//! /health/step-up/passkey-options` + `POST /health/step-up/passkey` do the same with a passkey
//! (both open health data in this bearer session only), and the three data endpoints answer
//! 403 `step_up_required` until then.

use axum::extract::State;
use axum::Json;
use records::checkup::{CheckupDocument, Value};
use records::expenses::ExpenseRow;
use records::medication::MedicationRow;
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::passkeys::{CeremonyView, CredentialRequest};
use super::{ApiJson, ApiLocale, ApiMember, ApiResult, ErrorBody, OrApi};
use crate::ClientIp;
use app::i18n::Locale;
use app::services::auth::Member;
use app::services::health_view::{item_name, judgement_str, reference_text, value_text, year_totals};
use app::services::stepup::{self, StepUp};
use app::services::{checkups, health_imports, passkeys};
use app::AppState;

pub(super) fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(health_status))
        .routes(routes!(health_step_up))
        .routes(routes!(health_passkey_options))
        .routes(routes!(health_passkey_step_up))
        .routes(routes!(health_checkups))
        .routes(routes!(health_medications))
        .routes(routes!(health_expenses))
}

#[derive(Serialize, ToSchema)]
pub struct HealthStatusView {
    /// open: health data can be read in this session until `open_until`; ask: answer
    /// `question` first; locked: too many wrong answers, no answer is checked before
    /// `locked_until` (the customer center can help).
    pub step_up: String,
    /// The secret question set in 健診・医療アクセス認証 (when `step_up` is ask).
    pub question: Option<String>,
    /// Wrong answers left before the lock (when `step_up` is ask).
    pub remaining_attempts: Option<i32>,
    #[serde(with = "time::serde::rfc3339::option")]
    #[schema(value_type = Option<String>, format = DateTime)]
    pub open_until: Option<OffsetDateTime>,
    #[serde(with = "time::serde::rfc3339::option")]
    #[schema(value_type = Option<String>, format = DateTime)]
    pub locked_until: Option<OffsetDateTime>,
    /// This deployment offers passkeys (its public URL has a domain name).
    pub passkeys_available: bool,
    /// Passkeys the member has registered (`GET /api/v1/passkeys`).
    pub passkeys: usize,
    /// A step-up with a passkey is possible (`passkeys_available` and at least one passkey),
    /// also while the question is locked: `POST /api/v1/health/step-up/passkey-options`.
    pub passkey_step_up: bool,
}

/// The view of `s` with the member's passkeys.
async fn status_view(app: &AppState, member: &Member, s: StepUp, locale: Locale) -> ApiResult<HealthStatusView> {
    let available = passkeys::available(app);
    let count = passkeys::list(app, member).await.or_api(locale)?.len();
    let empty = HealthStatusView {
        step_up: String::new(),
        question: None,
        remaining_attempts: None,
        open_until: None,
        locked_until: None,
        passkeys_available: available,
        passkeys: count,
        passkey_step_up: available && count > 0,
    };
    Ok(match s {
        StepUp::Open { until } => HealthStatusView { step_up: "open".into(), open_until: Some(until), ..empty },
        StepUp::Ask { question, remaining } => HealthStatusView {
            step_up: "ask".into(),
            question: Some(question),
            remaining_attempts: Some(remaining),
            ..empty
        },
        StepUp::Locked { until } => HealthStatusView { step_up: "locked".into(), locked_until: Some(until), ..empty },
    })
}

#[derive(Deserialize, ToSchema)]
pub struct StepUpRequest {
    /// The answer to the secret question (width, case and spaces do not matter).
    pub answer: String,
}

#[derive(Serialize, ToSchema)]
pub struct CheckupItemView {
    /// JLAC10 code as in the file.
    pub code: String,
    /// Mimoto's key of known items (e.g. `systolic_bp`, `hba1c`); absent for unknown codes.
    pub key: Option<String>,
    pub name: String,
    /// The value as written (a number, a qualitative symbol such as −/+, a text), or a
    /// note that the item was not done.
    pub value: String,
    pub number: Option<f64>,
    pub unit: Option<String>,
    /// normal | guidance | referral, against the MHLW 保健指導判定値 / 受診勧奨判定値.
    pub judgement: Option<String>,
    /// The thresholds in words, in the requested language.
    pub reference: Option<String>,
}

#[derive(Serialize, ToSchema)]
pub struct CheckupView {
    /// YYYY-MM-DD.
    pub examined_on: String,
    pub facility: Option<String>,
    pub items: Vec<CheckupItemView>,
}

#[derive(Serialize, ToSchema)]
pub struct CheckupsView {
    /// Newest examination first.
    pub checkups: Vec<CheckupView>,
}

#[derive(Serialize, ToSchema)]
pub struct MedicationView {
    /// YYYY-MM-DD.
    pub dispensed_on: String,
    pub pharmacy: String,
    pub prescriber: String,
    pub doctor: Option<String>,
    pub drug: String,
    pub dose: String,
    pub days: u32,
}

#[derive(Serialize, ToSchema)]
pub struct MedicationsView {
    /// Newest dispensing first.
    pub medications: Vec<MedicationView>,
}

#[derive(Serialize, ToSchema)]
pub struct ExpenseView {
    /// YYYY-MM (診療年月).
    pub month: String,
    pub patient: String,
    pub facility: String,
    /// inpatient | outpatient | dental | pharmacy | home_nursing
    pub category: Option<String>,
    pub days: Option<u32>,
    /// 医療費の総額 in yen.
    pub total_cost: u64,
    /// What the member paid (自己負担額) in yen.
    pub paid: u64,
}

#[derive(Serialize, ToSchema)]
pub struct ExpenseYearView {
    pub year: i32,
    pub total_cost: u64,
    pub paid: u64,
}

#[derive(Serialize, ToSchema)]
pub struct ExpensesView {
    /// Totals per calendar year, newest first.
    pub years: Vec<ExpenseYearView>,
    /// Newest month first.
    pub expenses: Vec<ExpenseView>,
}

fn checkup_view(d: &CheckupDocument, locale: Locale) -> CheckupView {
    CheckupView {
        examined_on: d.examined_on.to_string(),
        facility: d.facility.as_ref().and_then(|f| f.name.clone()),
        items: d
            .items
            .iter()
            .map(|i| {
                let (number, unit) = match &i.value {
                    Value::Quantity { number, unit, .. } => (Some(*number).filter(|n| n.is_finite()), unit.clone()),
                    _ => (None, None),
                };
                let reference = reference_text(i.reference.as_ref(), locale);
                CheckupItemView {
                    code: i.code.clone(),
                    key: i.key.map(str::to_string),
                    name: item_name(i, locale),
                    value: match &i.value {
                        Value::Quantity { value, .. } => value.clone(),
                        other => value_text(other, locale),
                    },
                    number,
                    unit,
                    judgement: i.judgement().map(|j| judgement_str(j).to_string()),
                    reference: (!reference.is_empty()).then_some(reference),
                }
            })
            .collect(),
    }
}

fn medication_view(r: &MedicationRow) -> MedicationView {
    MedicationView {
        dispensed_on: r.dispensed_on.to_string(),
        pharmacy: r.pharmacy.clone(),
        prescriber: r.prescriber.clone(),
        doctor: r.doctor.clone(),
        drug: r.drug.clone(),
        dose: r.dose.clone(),
        days: r.days,
    }
}

fn expenses_view(rows: &[ExpenseRow]) -> ExpensesView {
    let years = year_totals(rows)
        .into_iter()
        .map(|(year, total_cost, paid)| ExpenseYearView { year, total_cost, paid })
        .collect();
    // `expenses_for_member` gives the newest month first.
    let expenses = rows
        .iter()
        .map(|r| ExpenseView {
            month: format!("{}-{:02}", r.month.year(), r.month.month()),
            patient: r.patient.clone(),
            facility: r.facility.clone(),
            category: r.category.map(|c| c.as_str().to_string()),
            days: r.days,
            total_cost: r.total_cost,
            paid: r.paid,
        })
        .collect();
    ExpensesView { years, expenses }
}

/// Where this session stands with the step-up (the secret question, passkeys).
#[utoipa::path(get, path = "/api/v1/health", tag = "health", security(("bearer" = [])),
    responses((status = 200, body = HealthStatusView), (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody, description = "health_not_unlocked: 健診・医療アクセス認証 (F4) is not done")))]
async fn health_status(
    State(app): State<AppState>,
    ApiLocale(locale): ApiLocale,
    m: ApiMember,
) -> ApiResult<Json<HealthStatusView>> {
    let s = stepup::status(&app, &m.member).await.or_api(locale)?;
    Ok(Json(status_view(&app, &m.member, s, locale).await?))
}

/// Answers the secret question; a correct answer opens health data in this session for 15 minutes.
#[utoipa::path(post, path = "/api/v1/health/step-up", tag = "health", security(("bearer" = [])), request_body = StepUpRequest,
    responses((status = 200, body = HealthStatusView), (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody, description = "health_not_unlocked: 健診・医療アクセス認証 (F4) is not done"),
        (status = 422, body = ErrorBody, description = "step_up_wrong (with remaining_attempts), step_up_answer_empty, invalid_request"),
        (status = 429, body = ErrorBody, description = "step_up_locked (5 wrong answers: locked for an hour; inquiry_url; a passkey still works), rate_limited")))]
async fn health_step_up(
    State(app): State<AppState>,
    ApiLocale(locale): ApiLocale,
    ClientIp(ip): ClientIp,
    m: ApiMember,
    ApiJson(req): ApiJson<StepUpRequest>,
) -> ApiResult<Json<HealthStatusView>> {
    let until = stepup::answer(&app, &m.member, &req.answer, &ip).await.or_api(locale)?;
    Ok(Json(status_view(&app, &m.member, StepUp::Open { until }, locale).await?))
}

/// Starts a step-up with a passkey (also while the question is locked): give `options` to the
/// platform's WebAuthn `get()` and send its answer to `POST /api/v1/health/step-up/passkey`.
#[utoipa::path(post, path = "/api/v1/health/step-up/passkey-options", tag = "health", security(("bearer" = [])),
    responses((status = 200, body = CeremonyView), (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody, description = "health_not_unlocked: 健診・医療アクセス認証 (F4) is not done"),
        (status = 404, body = ErrorBody, description = "passkeys_unavailable: the public URL is an IP address"),
        (status = 409, body = ErrorBody, description = "no_passkeys: the member has no passkey (use the question)")))]
async fn health_passkey_options(
    State(app): State<AppState>,
    ApiLocale(locale): ApiLocale,
    m: ApiMember,
) -> ApiResult<Json<CeremonyView>> {
    let (id, options) = passkeys::start_step_up_required(&app, &m.member).await.or_api(locale)?;
    Ok(Json(CeremonyView::new(id, &options).or_api(locale)?))
}

/// Finishes a step-up with the authenticator's answer (a `PublicKeyCredential`): health data
/// opens in this session for 15 minutes, as with a correct answer to the question.
#[utoipa::path(post, path = "/api/v1/health/step-up/passkey", tag = "health", security(("bearer" = [])), request_body = CredentialRequest,
    responses((status = 200, body = HealthStatusView), (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody, description = "health_not_unlocked: 健診・医療アクセス認証 (F4) is not done or was withdrawn"),
        (status = 404, body = ErrorBody, description = "passkeys_unavailable: the public URL is an IP address"),
        (status = 422, body = ErrorBody, description = "passkey_failed: the ceremony is unknown, expired, used or another session's, or the answer did not verify (wrong signature, unknown or removed passkey, a counter that went back); invalid_request: malformed body"),
        (status = 429, body = ErrorBody, description = "rate_limited: 20 passkey answers per member in 15 minutes, or the client's step-up limit")))]
async fn health_passkey_step_up(
    State(app): State<AppState>,
    ApiLocale(locale): ApiLocale,
    m: ApiMember,
    ClientIp(ip): ClientIp,
    ApiJson(req): ApiJson<CredentialRequest>,
) -> ApiResult<Json<HealthStatusView>> {
    let until =
        passkeys::finish_step_up(&app, &m.member, &req.ceremony, &req.credential_json(), &ip).await.or_api(locale)?;
    Ok(Json(status_view(&app, &m.member, StepUp::Open { until }, locale).await?))
}

async fn opened(app: &AppState, m: &ApiMember, locale: Locale) -> ApiResult<()> {
    stepup::require(app, &m.member).await.or_api(locale)
}

/// 健診結果: every examination, newest first, with each item's judgement.
#[utoipa::path(get, path = "/api/v1/health/checkups", tag = "health", security(("bearer" = [])),
    responses((status = 200, body = CheckupsView), (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody, description = "step_up_required, health_not_unlocked")))]
async fn health_checkups(
    State(app): State<AppState>,
    ApiLocale(locale): ApiLocale,
    m: ApiMember,
    ClientIp(ip): ClientIp,
) -> ApiResult<Json<CheckupsView>> {
    opened(&app, &m, locale).await?;
    let docs = checkups::results_for_member(&app, &m.member, &ip).await.or_api(locale)?;
    Ok(Json(CheckupsView { checkups: docs.iter().map(|d| checkup_view(d, locale)).collect() }))
}

/// お薬履歴, newest dispensing first.
#[utoipa::path(get, path = "/api/v1/health/medications", tag = "health", security(("bearer" = [])),
    responses((status = 200, body = MedicationsView), (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody, description = "step_up_required, health_not_unlocked")))]
async fn health_medications(
    State(app): State<AppState>,
    ApiLocale(locale): ApiLocale,
    m: ApiMember,
    ClientIp(ip): ClientIp,
) -> ApiResult<Json<MedicationsView>> {
    opened(&app, &m, locale).await?;
    let rows = health_imports::medications_for_member(&app, &m.member, &ip).await.or_api(locale)?;
    Ok(Json(MedicationsView { medications: rows.iter().map(medication_view).collect() }))
}

/// 医療費通知 with per-year totals.
#[utoipa::path(get, path = "/api/v1/health/expenses", tag = "health", security(("bearer" = [])),
    responses((status = 200, body = ExpensesView), (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody, description = "step_up_required, health_not_unlocked")))]
async fn health_expenses(
    State(app): State<AppState>,
    ApiLocale(locale): ApiLocale,
    m: ApiMember,
    ClientIp(ip): ClientIp,
) -> ApiResult<Json<ExpensesView>> {
    opened(&app, &m, locale).await?;
    let rows = health_imports::expenses_for_member(&app, &m.member, &ip).await.or_api(locale)?;
    Ok(Json(expenses_view(&rows)))
}
