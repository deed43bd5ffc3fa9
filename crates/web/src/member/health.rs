//! F5 member pages: 健診結果, お薬履歴 and 医療費通知, each behind the secret question
//! (`services::stepup`). A page asked for without a fresh answer in this session redirects
//! to `/health/unlock?next=…`, which asks the question set in F4 and comes back.
//!
//! Everything is plain server-rendered HTML; the checkup charts are inline SVG
//! ([`super::chart`]), the expense list has a print view.

use crate::error::ErrorStatus;
use app::services::health_view::{item_name, reference_text, value_text, year_totals};
use std::collections::BTreeMap;

use askama::Template;
use axum::extract::{Query, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::Response;
use axum::routing::{get, post};
use axum::{Extension, Router};
use records::checkup::{CheckupDocument, Item, Value};
use records::expenses::ExpenseRow;
use records::jlac10::{Judgement, Reference};
use records::medication::MedicationRow;
use serde::Deserialize;

use app::error::ServiceError;
use app::i18n::Locale;
use app::services::auth::{self, Member};
use app::services::stepup::{self, StepUp};
use app::services::{checkups, health_imports};
use app::AppState;

use super::chart::{self, Point};
use super::{ok, render, see_other, Chrome, Cx, MemberForm, OrPage, PageError};
use crate::ctx::Ctx;
use crate::ClientIp;

pub(super) fn routes() -> Router<AppState> {
    Router::new()
        .route("/health/unlock", get(unlock_form).post(unlock))
        .route("/health/unlock/passkey", post(unlock_with_passkey))
        .route("/health/checkups", get(checkups_page))
        .route("/health/medications", get(medications_page))
        .route("/health/expenses", get(expenses_page))
        .route("/health/expenses/print", get(expenses_print))
}

/// The three health pages; the `next` of the secret question.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Section {
    Checkups,
    Medications,
    Expenses,
    /// パスキーの設定 (it needs health data open too).
    Passkeys,
}

impl Section {
    fn parse(s: &str) -> Section {
        match s {
            "medications" => Section::Medications,
            "expenses" => Section::Expenses,
            "passkeys" => Section::Passkeys,
            _ => Section::Checkups,
        }
    }
    fn as_str(self) -> &'static str {
        match self {
            Section::Checkups => "checkups",
            Section::Medications => "medications",
            Section::Expenses => "expenses",
            Section::Passkeys => "passkeys",
        }
    }
    fn path(self) -> String {
        match self {
            Section::Passkeys => "/passkeys".into(),
            other => format!("/health/{}", other.as_str()),
        }
    }
    fn title(self) -> &'static str {
        match self {
            Section::Checkups => "health.checkups.title",
            Section::Medications => "health.medications.title",
            Section::Expenses => "health.expenses.title",
            Section::Passkeys => "passkey.title",
        }
    }
}

/// The signed-in member whose session has answered the secret question, or where to go
/// instead (login, or the question).
async fn gate<'a>(app: &AppState, ctx: &'a Ctx, section: Section) -> Result<Result<&'a Member, Response>, PageError> {
    let Some(member) = &ctx.member else {
        return Ok(Err(see_other("/login")));
    };
    match stepup::status(app, member).await.or_page(ctx)? {
        StepUp::Open { .. } => Ok(Ok(member)),
        StepUp::Ask { .. } | StepUp::Locked { .. } => {
            Ok(Err(see_other(&format!("/health/unlock?next={}", section.as_str()))))
        }
    }
}

// ---------------------------------------------------------------------------------------
// The secret question

#[derive(Template)]
#[template(path = "health_unlock.html")]
struct UnlockPage {
    c: Chrome,
    next: &'static str,
    next_title: &'static str,
    /// `None` while the question is locked (a passkey still works).
    question: Option<String>,
    error: Option<String>,
    /// The passkey ceremony when the member has one: (id, options JSON).
    passkey: Option<(String, String)>,
}

/// A passkey step-up for the unlock page, when the member has a passkey.
async fn passkey_prompt(app: &AppState, ctx: &Ctx, member: &Member) -> Result<Option<(String, String)>, PageError> {
    match app::services::passkeys::start_step_up(app, member).await.or_page(ctx)? {
        Some((id, options)) => Ok(Some((id, super::passkeys::options_json(&options).or_page(ctx)?))),
        None => Ok(None),
    }
}

#[derive(Template)]
#[template(path = "health_locked.html")]
struct LockedPage {
    c: Chrome,
    message: String,
}

#[derive(Deserialize)]
struct NextQuery {
    #[serde(default)]
    next: String,
}

fn locked(ctx: &Ctx) -> Response {
    let e = ServiceError::StepUpLocked { until: 0 };
    render(e.status(), &LockedPage { c: Chrome::from(ctx), message: e.message(ctx.locale()) })
}

async fn unlock_form(
    State(app): State<AppState>,
    Extension(ctx): Cx,
    Query(q): Query<NextQuery>,
) -> Result<Response, PageError> {
    let Some(member) = &ctx.member else {
        return Ok(see_other("/login"));
    };
    let next = Section::parse(&q.next);
    let question = match stepup::status(&app, member).await.or_page(&ctx)? {
        StepUp::Open { .. } => return Ok(see_other(&next.path())),
        StepUp::Locked { .. } => None,
        StepUp::Ask { question, .. } => Some(question),
    };
    let passkey = passkey_prompt(&app, &ctx, member).await?;
    if question.is_none() && passkey.is_none() {
        return Ok(locked(&ctx));
    }
    Ok(ok(&UnlockPage {
        c: Chrome::from(&ctx),
        next: next.as_str(),
        next_title: next.title(),
        question,
        error: None,
        passkey,
    }))
}

#[derive(Deserialize)]
struct PasskeyForm {
    #[serde(default)]
    ceremony: String,
    #[serde(default)]
    credential: String,
    #[serde(default)]
    next: String,
}

/// 「パスキーで確認する」: the authenticator's answer from `static/passkey.js`.
async fn unlock_with_passkey(
    State(app): State<AppState>,
    Extension(ctx): Cx,
    ClientIp(ip): ClientIp,
    MemberForm { 0: f, .. }: MemberForm<PasskeyForm>,
) -> Result<Response, PageError> {
    let Some(member) = &ctx.member else {
        return Ok(see_other("/login"));
    };
    let next = Section::parse(&f.next);
    match app::services::passkeys::finish_step_up(&app, member, &f.ceremony, &f.credential, &ip).await {
        Ok(_) => Ok(see_other(&next.path())),
        Err(e @ ServiceError::PasskeyFailed) => {
            let question = match stepup::status(&app, member).await.or_page(&ctx)? {
                StepUp::Ask { question, .. } => Some(question),
                StepUp::Locked { .. } => None,
                StepUp::Open { .. } => return Ok(see_other(&next.path())),
            };
            let passkey = passkey_prompt(&app, &ctx, member).await?;
            let page = UnlockPage {
                c: Chrome::from(&ctx),
                next: next.as_str(),
                next_title: next.title(),
                question,
                error: Some(e.message(ctx.locale())),
                passkey,
            };
            Ok(render(e.status(), &page))
        }
        Err(e) => Err(e).or_page(&ctx),
    }
}

#[derive(Deserialize)]
struct UnlockForm {
    #[serde(default)]
    answer: String,
    #[serde(default)]
    next: String,
}

async fn unlock(
    State(app): State<AppState>,
    Extension(ctx): Cx,
    ClientIp(ip): ClientIp,
    MemberForm { 0: f, .. }: MemberForm<UnlockForm>,
) -> Result<Response, PageError> {
    let Some(member) = &ctx.member else {
        return Ok(see_other("/login"));
    };
    let next = Section::parse(&f.next);
    match stepup::answer(&app, member, &f.answer, &ip).await {
        Ok(_) => Ok(see_other(&next.path())),
        Err(ServiceError::StepUpLocked { .. }) => Ok(locked(&ctx)),
        Err(
            e @ (ServiceError::StepUpWrong { .. } | ServiceError::StepUpAnswerEmpty | ServiceError::RateLimited { .. }),
        ) => {
            let question = match stepup::status(&app, member).await.or_page(&ctx)? {
                StepUp::Ask { question, .. } => question,
                StepUp::Open { .. } | StepUp::Locked { .. } => {
                    return Ok(see_other(&format!("/health/unlock?next={}", next.as_str())))
                }
            };
            let passkey = passkey_prompt(&app, &ctx, member).await?;
            let page = UnlockPage {
                c: Chrome::from(&ctx),
                next: next.as_str(),
                next_title: next.title(),
                question: Some(question),
                error: Some(e.message(ctx.locale())),
                passkey,
            };
            let mut resp = render(e.status(), &page);
            if let ServiceError::RateLimited { retry_after } = e {
                if let Ok(v) = HeaderValue::from_str(&retry_after.to_string()) {
                    resp.headers_mut().insert(header::RETRY_AFTER, v);
                }
            }
            Ok(resp)
        }
        Err(e) => Err(e).or_page(&ctx),
    }
}

// ---------------------------------------------------------------------------------------
// 健診結果

fn date_label(d: time::Date) -> String {
    format!("{}/{:02}/{:02}", d.year(), u8::from(d.month()), d.day())
}

fn mark(j: Option<Judgement>) -> (&'static str, &'static str) {
    match j {
        Some(Judgement::Normal) => ("health.mark.normal", "normal"),
        Some(Judgement::Guidance) => ("health.mark.guidance", "guidance"),
        Some(Judgement::Referral) => ("health.mark.referral", "referral"),
        None => ("", "none"),
    }
}

struct ItemRow {
    name: String,
    value: String,
    reference: String,
    mark_key: &'static str,
    mark_class: &'static str,
}

struct ChartView {
    /// The `id` of the chart's figure (the in-page index links to it).
    anchor: String,
    name: String,
    svg: String,
}

/// One item's values over the years, for its chart.
#[derive(Default)]
struct Series {
    name: String,
    key: Option<&'static str>,
    unit: String,
    points: Vec<Point>,
    reference: Option<Reference>,
}

#[derive(Template)]
#[template(path = "health_checkups.html")]
struct CheckupsPage {
    c: Chrome,
    examined_on: String,
    facility: String,
    items: Vec<ItemRow>,
    charts: Vec<ChartView>,
    exams: usize,
}

/// How the charts group an item over the years: the table key of known codes (an item whose
/// code changed between years stays one chart), else the code.
fn series_key(item: &Item) -> String {
    item.key.map(str::to_string).unwrap_or_else(|| format!("code:{}", item.code))
}

/// Most examinations drawn in one chart (the newest).
const CHART_EXAMS: usize = 10;

fn charts(docs: &[CheckupDocument], locale: Locale) -> Vec<ChartView> {
    // Oldest first, at most the newest CHART_EXAMS examinations.
    let mut chrono: Vec<&CheckupDocument> = docs.iter().collect();
    chrono.sort_by_key(|d| d.examined_on);
    let chrono = &chrono[chrono.len().saturating_sub(CHART_EXAMS)..];
    // Series in the order of the newest examination's items, then any others.
    let mut order: Vec<String> = Vec::new();
    let mut series: BTreeMap<String, Series> = BTreeMap::new();
    let newest_first = chrono.iter().rev();
    for doc in newest_first.clone() {
        for item in &doc.items {
            let key = series_key(item);
            if !order.contains(&key) {
                order.push(key);
            }
        }
    }
    for doc in chrono {
        for item in &doc.items {
            let Value::Quantity { value, number, unit } = &item.value else { continue };
            if !number.is_finite() {
                continue;
            }
            let entry = series.entry(series_key(item)).or_insert_with(|| Series {
                name: item_name(item, locale),
                key: item.key,
                ..Series::default()
            });
            if let Some(u) = unit {
                entry.unit = u.clone();
            }
            if item.reference.is_some() {
                entry.reference = item.reference;
            }
            let label = format!("{}/{:02}", doc.examined_on.year(), u8::from(doc.examined_on.month()));
            entry.points.push(Point { label, value: *number, text: value.clone(), judgement: item.judgement() });
        }
    }
    order
        .iter()
        .enumerate()
        .filter_map(|(i, key)| {
            let Series { name, key, unit, points, reference } = series.remove(key)?;
            let summary =
                points.iter().map(|p| format!("{} {} {unit}", p.label, p.text)).collect::<Vec<_>>().join(", ");
            let id = format!("chart-{i}");
            let span = chart::min_span(key, &unit);
            let svg = chart::line_chart(&id, &name, &unit, &summary, &points, reference.as_ref(), span);
            Some(ChartView { anchor: format!("{id}-fig"), name, svg })
        })
        .collect()
}

async fn checkups_page(
    State(app): State<AppState>,
    Extension(ctx): Cx,
    ClientIp(ip): ClientIp,
) -> Result<Response, PageError> {
    let member = match gate(&app, &ctx, Section::Checkups).await? {
        Ok(m) => m,
        Err(resp) => return Ok(resp),
    };
    let docs = checkups::results_for_member(&app, member, &ip).await.or_page(&ctx)?;
    let locale = ctx.locale();
    let latest = docs.iter().max_by_key(|d| d.examined_on);
    let items = latest
        .map(|d| {
            d.items
                .iter()
                .map(|item| {
                    let (mark_key, mark_class) = mark(item.judgement());
                    ItemRow {
                        name: item_name(item, locale),
                        value: value_text(&item.value, locale),
                        reference: reference_text(item.reference.as_ref(), locale),
                        mark_key,
                        mark_class,
                    }
                })
                .collect()
        })
        .unwrap_or_default();
    Ok(ok(&CheckupsPage {
        c: Chrome::from(&ctx),
        examined_on: latest.map(|d| date_label(d.examined_on)).unwrap_or_default(),
        facility: latest.and_then(|d| d.facility.as_ref()).and_then(|f| f.name.clone()).unwrap_or_default(),
        items,
        charts: charts(&docs, locale),
        exams: docs.len(),
    }))
}

// ---------------------------------------------------------------------------------------
// お薬履歴

struct Dispensing {
    date: String,
    pharmacy: String,
    prescriber: String,
    drugs: Vec<(String, String, u32)>,
}

#[derive(Template)]
#[template(path = "health_medications.html")]
struct MedicationsPage {
    c: Chrome,
    dispensings: Vec<Dispensing>,
}

/// Rows (newest first) grouped by dispensing: date, pharmacy and prescriber.
fn dispensings(rows: &[MedicationRow]) -> Vec<Dispensing> {
    let mut out: Vec<Dispensing> = Vec::new();
    for r in rows {
        let date = date_label(r.dispensed_on);
        let prescriber = match &r.doctor {
            Some(d) if !d.is_empty() => format!("{}（{d}）", r.prescriber),
            _ => r.prescriber.clone(),
        };
        let drug = (r.drug.clone(), r.dose.clone(), r.days);
        match out.last_mut() {
            Some(last) if last.date == date && last.pharmacy == r.pharmacy && last.prescriber == prescriber => {
                last.drugs.push(drug)
            }
            _ => out.push(Dispensing { date, pharmacy: r.pharmacy.clone(), prescriber, drugs: vec![drug] }),
        }
    }
    out
}

async fn medications_page(
    State(app): State<AppState>,
    Extension(ctx): Cx,
    ClientIp(ip): ClientIp,
) -> Result<Response, PageError> {
    let member = match gate(&app, &ctx, Section::Medications).await? {
        Ok(m) => m,
        Err(resp) => return Ok(resp),
    };
    let rows = health_imports::medications_for_member(&app, member, &ip).await.or_page(&ctx)?;
    Ok(ok(&MedicationsPage { c: Chrome::from(&ctx), dispensings: dispensings(&rows) }))
}

// ---------------------------------------------------------------------------------------
// 医療費通知

/// Yen with thousands separators.
fn yen(v: u64) -> String {
    let digits = v.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

struct YearTotal {
    year: i32,
    total_cost: String,
    paid: String,
    selected: bool,
}

struct ExpenseLine {
    month: String,
    patient: String,
    facility: String,
    category: String,
    days: String,
    total_cost: String,
    paid: String,
}

#[derive(Template)]
#[template(path = "health_expenses.html")]
struct ExpensesPage {
    c: Chrome,
    years: Vec<YearTotal>,
    year: i32,
    lines: Vec<ExpenseLine>,
    total_cost: String,
    paid: String,
}

#[derive(Template)]
#[template(path = "health_expenses_print.html")]
struct ExpensesPrint {
    c: Chrome,
    org_name: String,
    year: i32,
    lines: Vec<ExpenseLine>,
    total_cost: String,
    paid: String,
}

#[derive(Deserialize)]
struct YearQuery {
    #[serde(default)]
    year: Option<String>,
}

struct ExpenseView {
    years: Vec<YearTotal>,
    year: i32,
    lines: Vec<ExpenseLine>,
    total_cost: String,
    paid: String,
}

/// Per-year totals (newest year first) and the lines of `wanted` (or the newest year).
fn expense_view(rows: &[ExpenseRow], wanted: Option<i32>, locale: Locale) -> ExpenseView {
    let totals = year_totals(rows);
    let year = wanted.filter(|y| totals.iter().any(|t| t.0 == *y)).or_else(|| totals.first().map(|t| t.0)).unwrap_or(0);
    let years = totals
        .iter()
        .map(|(y, t, p)| YearTotal { year: *y, total_cost: yen(*t), paid: yen(*p), selected: *y == year })
        .collect();
    let mut of_year: Vec<&ExpenseRow> = rows.iter().filter(|r| r.month.year() == year).collect();
    of_year.sort_by(|a, b| a.month.cmp(&b.month).then_with(|| a.facility.cmp(&b.facility)));
    let lines = of_year
        .iter()
        .map(|r| ExpenseLine {
            month: format!("{}/{:02}", r.month.year(), r.month.month()),
            patient: r.patient.clone(),
            facility: r.facility.clone(),
            category: r
                .category
                .map(|c| match locale {
                    Locale::Ja => c.name_ja().to_string(),
                    Locale::En => c.as_str().to_string(),
                })
                .unwrap_or_default(),
            days: r.days.map(|d| d.to_string()).unwrap_or_default(),
            total_cost: yen(r.total_cost),
            paid: yen(r.paid),
        })
        .collect();
    let (t, p) = totals.iter().find(|t| t.0 == year).map(|t| (t.1, t.2)).unwrap_or_default();
    ExpenseView { years, year, lines, total_cost: yen(t), paid: yen(p) }
}

async fn expenses_page(
    State(app): State<AppState>,
    Extension(ctx): Cx,
    ClientIp(ip): ClientIp,
    Query(q): Query<YearQuery>,
) -> Result<Response, PageError> {
    let member = match gate(&app, &ctx, Section::Expenses).await? {
        Ok(m) => m,
        Err(resp) => return Ok(resp),
    };
    let rows = health_imports::expenses_for_member(&app, member, &ip).await.or_page(&ctx)?;
    let v = expense_view(&rows, q.year.and_then(|y| y.parse().ok()), ctx.locale());
    Ok(ok(&ExpensesPage {
        c: Chrome::from(&ctx),
        years: v.years,
        year: v.year,
        lines: v.lines,
        total_cost: v.total_cost,
        paid: v.paid,
    }))
}

async fn expenses_print(
    State(app): State<AppState>,
    Extension(ctx): Cx,
    ClientIp(ip): ClientIp,
    Query(q): Query<YearQuery>,
) -> Result<Response, PageError> {
    let member = match gate(&app, &ctx, Section::Expenses).await? {
        Ok(m) => m,
        Err(resp) => return Ok(resp),
    };
    let rows = health_imports::expenses_for_member(&app, member, &ip).await.or_page(&ctx)?;
    let v = expense_view(&rows, q.year.and_then(|y| y.parse().ok()), ctx.locale());
    if v.lines.is_empty() {
        return Ok(see_other("/health/expenses"));
    }
    let org_name = auth::profile(&app, member).await.or_page(&ctx)?.org.name;
    let page = ExpensesPrint {
        c: Chrome::from(&ctx),
        org_name,
        year: v.year,
        lines: v.lines,
        total_cost: v.total_cost,
        paid: v.paid,
    };
    Ok(render(StatusCode::OK, &page))
}

#[cfg(test)]
mod tests {
    use super::*;
    use app::services::health_view::num;
    use records::jlac10::Direction;

    #[test]
    fn yen_and_numbers_read_like_a_notice() {
        assert_eq!(yen(0), "0");
        assert_eq!(yen(999), "999");
        assert_eq!(yen(1000), "1,000");
        assert_eq!(yen(1234567), "1,234,567");
        assert_eq!(num(130.0), "130");
        assert_eq!(num(5.6), "5.6");
        assert_eq!(num(0.25), "0.25");
    }

    #[test]
    fn references_read_in_both_languages() {
        let r = Reference::Numeric { direction: Direction::High, guidance: 130.0, referral: Some(140.0) };
        assert_eq!(reference_text(Some(&r), Locale::Ja), "保健指導判定値 130以上、受診勧奨判定値 140以上");
        assert_eq!(reference_text(Some(&r), Locale::En), "guidance ≥ 130, referral ≥ 140");
        let low = Reference::Numeric { direction: Direction::Low, guidance: 40.0, referral: None };
        assert_eq!(reference_text(Some(&low), Locale::Ja), "保健指導判定値 40未満");
        assert_eq!(reference_text(None, Locale::Ja), "");
    }

    #[test]
    fn sections_parse_to_known_pages_only() {
        assert_eq!(Section::parse("expenses").path(), "/health/expenses");
        assert_eq!(Section::parse("medications").path(), "/health/medications");
        // Anything else (an open redirect attempt included) goes to the checkups.
        assert_eq!(Section::parse("//evil.example").path(), "/health/checkups");
    }
}
