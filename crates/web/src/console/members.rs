//! Console: operators see the member (issue #16 point 4). `GET /console/members` has two search
//! forms — by the exact email address, and by an inquiry's 受付番号 — POSTed so that the address
//! stays out of URLs (history, proxy logs); an address found leads to the member's summary,
//! `GET /console/members/{id}` (organization, email, 本人確認, the 健診・医療アクセス認証
//! applications with their decisions, withdrawals, locks, inquiries; audited on every view, see
//! `app::services::members`). `GET /console/decided` lists the reviewers' decisions, filtered by
//! decision and paged.

use askama::Template;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use axum::Extension;
use serde::Deserialize;

use super::{
    jst, state_label, to_login, Chrome, ConsoleCtx, ConsoleError, ConsoleForm, ConsoleId, Cx, Field, IdPath, OrConsole,
};
use crate::member::{render, see_other};
use crate::ClientIp;
use app::error::ServiceError;
use app::i18n::Tr;
use app::services::operators::{Operator, Role};
use app::services::{inquiry, members, review};
use app::AppState;

/// A member's id in a console path (a canonical UUID, as every id here).
#[derive(Deserialize)]
#[serde(try_from = "String")]
pub(super) struct MemberId(String);

impl TryFrom<String> for MemberId {
    type Error = domain::ids::InvalidId;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        if domain::ids::is_canonical_uuid(&s) {
            Ok(MemberId(s))
        } else {
            Err(domain::ids::InvalidId)
        }
    }
}

impl ConsoleId for MemberId {
    fn unknown(_: &Operator) -> ServiceError {
        ServiceError::FlowNotFound
    }
}

/// A stored eKYC state name in words (messages `console.state.<state>`).
fn state_words(tr: Tr, state: &str) -> &'static str {
    match serde_json::from_value::<domain::ekyc::EkycState>(serde_json::Value::String(state.to_string())) {
        Ok(s) => state_label(tr, s),
        Err(_) => tr.t("console.none"),
    }
}

// ---------------------------------------------------------------------------------------
// Search

struct FoundRow {
    inquiry_id: String,
    reference: String,
    received_at: String,
    category: &'static str,
    user_id: Option<String>,
}

/// An eKYC application found by the 受付番号 of its receipt mail.
struct FoundApplicationRow {
    id: String,
    reference: String,
    state: &'static str,
    submitted_at: String,
    user_id: String,
}

#[derive(Template)]
#[template(path = "console_members.html")]
struct SearchPage {
    c: Chrome,
    email: String,
    reference: String,
    /// The search made: `email` or `reference`.
    searched: Option<&'static str>,
    found: Vec<FoundRow>,
    found_applications: Vec<FoundApplicationRow>,
    /// Inquiries are for operators who see every organization.
    sees_inquiries: bool,
}

fn search_page(ctx: &ConsoleCtx, operator: &Operator) -> SearchPage {
    SearchPage {
        c: Chrome::from(ctx),
        email: String::new(),
        reference: String::new(),
        searched: None,
        found: Vec::new(),
        found_applications: Vec::new(),
        sees_inquiries: operator.sees_all_orgs(),
    }
}

pub(super) async fn members_page(Extension(ctx): Cx) -> Result<Response, ConsoleError> {
    let Some(operator) = ctx.operator.as_ref() else {
        return Ok(to_login());
    };
    Ok(render(StatusCode::OK, &search_page(&ctx, operator)))
}

#[derive(Deserialize, Default)]
pub(super) struct SearchForm {
    #[serde(default)]
    by: String,
    #[serde(default)]
    email: String,
    #[serde(default)]
    reference: String,
}

/// 「メールアドレスで探す」 / 「受付番号で探す」.
pub(super) async fn search(
    State(app): State<AppState>,
    Extension(ctx): Cx,
    ClientIp(ip): ClientIp,
    form: ConsoleForm<SearchForm>,
) -> Result<Response, ConsoleError> {
    let f = form.into_inner();
    let Some(operator) = ctx.operator.as_ref() else {
        return Ok(to_login());
    };
    let mut page = search_page(&ctx, operator);
    match f.by.as_str() {
        "email" => {
            if let Some(id) = members::find_by_email(&app, operator, &f.email, &ip).await.or_console(&ctx)? {
                return Ok(see_other(&format!("/console/members/{id}")));
            }
            page.searched = Some("email");
            page.email = f.email;
        }
        "reference" => {
            let found = members::find_by_reference(&app, operator, &f.reference, &ip).await.or_console(&ctx)?;
            let tr = ctx.tr;
            page.found_applications = found
                .applications
                .into_iter()
                .map(|a| FoundApplicationRow {
                    state: state_words(tr, &a.state),
                    submitted_at: a.submitted_at.map(jst).unwrap_or_default(),
                    id: a.id,
                    reference: a.reference,
                    user_id: a.user_id,
                })
                .collect();
            page.found = found
                .inquiries
                .into_iter()
                .map(|x| FoundRow {
                    received_at: jst(x.inquiry.created_at),
                    category: inquiry::category_label(ctx.tr.locale, &x.inquiry.category),
                    inquiry_id: x.inquiry.id,
                    reference: x.inquiry.reference,
                    user_id: x.user_id,
                })
                .collect();
            page.searched = Some("reference");
            page.reference = f.reference;
        }
        _ => return Err(ServiceError::InvalidRequest("by".into())).or_console(&ctx),
    }
    Ok(render(StatusCode::OK, &page))
}

// ---------------------------------------------------------------------------------------
// Summary

struct ApplicationView {
    id: String,
    /// 受付番号, as the member's receipt mail gives it.
    reference: String,
    state: &'static str,
    started_at: String,
    submitted_at: String,
    decided_at: String,
    decision: String,
    /// Submitted: the case page shows it.
    submitted: bool,
}

struct InquiryView {
    id: String,
    reference: String,
    received_at: String,
    category: &'static str,
    status: &'static str,
}

#[derive(Template)]
#[template(path = "console_member.html")]
struct SummaryPage {
    c: Chrome,
    fields: Vec<Field>,
    identity: Vec<Field>,
    applications: Vec<ApplicationView>,
    withdrawals: Vec<Field>,
    locks: Vec<Field>,
    inquiries: Option<Vec<InquiryView>>,
    /// The newest application, where an administrator withdraws the binding.
    withdraw_case: Option<String>,
    admin: bool,
}

fn decision_words(tr: Tr, approved: bool, reason: Option<&str>, operator: &str, at: time::OffsetDateTime) -> String {
    let outcome = tr.t(if approved { "console.decision.approved" } else { "console.decision.rejected" });
    let reason = reason.map(|r| format!("（{}）", tr.t(&format!("console.reason.{r}")))).unwrap_or_default();
    format!("{outcome}{reason} — {operator}、{}", jst(at))
}

fn summary_view(ctx: &ConsoleCtx, s: members::Summary) -> SummaryPage {
    let tr = ctx.tr;
    let none = || tr.t("console.none").to_string();
    let fields = vec![
        Field { label: tr.t("console.member.account"), value: s.user_id.clone() },
        Field { label: tr.t("console.case.org"), value: format!("{}（{}）", s.org.name, s.org.insurer_number) },
        Field { label: tr.t("console.member.email"), value: s.email },
        Field { label: tr.t("console.member.registered_at"), value: jst(s.registered_at) },
        Field { label: tr.t("console.inquiry.language"), value: s.locale },
    ];
    let identity = vec![Field {
        label: tr.t("console.member.identity"),
        value: match s.identity_linked_at {
            Some(at) => format!("{}（{}）", tr.t("console.member.identity_done"), jst(at)),
            None => tr.t("console.member.identity_not_done").to_string(),
        },
    }];
    // The withdrawal acts on the newest application: offered on its case page when submitted.
    let withdraw_case = s.applications.first().filter(|a| a.submitted_at.is_some()).map(|a| a.id.clone());
    let applications = s
        .applications
        .into_iter()
        .map(|a| ApplicationView {
            state: state_words(tr, &a.state),
            reference: app::services::reference(&a.id),
            submitted: a.submitted_at.is_some(),
            started_at: jst(a.created_at),
            submitted_at: a.submitted_at.map(jst).unwrap_or_else(none),
            decided_at: a.decided_at.map(jst).unwrap_or_else(none),
            decision: match &a.review {
                Some(r) => decision_words(tr, r.approved, r.reason.as_deref(), &r.operator_name, r.decided_at),
                None if a.decided_at.is_some() => tr.t("console.member.decided_automatically").to_string(),
                None => none(),
            },
            id: a.id,
        })
        .collect();
    let withdrawals = s
        .withdrawals
        .into_iter()
        .map(|w| Field {
            label: tr.t(if w.unlinked { "console.member.withdrawn_unlinked" } else { "console.member.withdrawn" }),
            value: format!(
                "{} — {}、{}",
                tr.t(&format!("console.withdraw_reason.{}", w.reason)),
                w.operator_name,
                jst(w.at)
            ),
        })
        .collect();
    let step_up = match s.step_up.locked_until {
        Some(until) => tr.tf("console.member.step_up_locked", "until", &jst(until)),
        None => tr.tf("console.member.step_up_failures", "n", &s.step_up.failures.to_string()),
    };
    let login = if s.login.locked {
        tr.tf("console.member.login_locked", "n", &s.login.failures.to_string())
    } else {
        tr.tf("console.member.login_failures", "n", &s.login.failures.to_string())
            .replace("{max}", &s.login.ceiling.to_string())
    };
    let locks = vec![
        Field { label: tr.t("console.member.step_up"), value: step_up },
        Field { label: tr.t("console.member.login"), value: login },
    ];
    let inquiries = s.inquiries.map(|rows| {
        rows.into_iter()
            .map(|q| InquiryView {
                received_at: jst(q.created_at),
                category: inquiry::category_label(tr.locale, &q.category),
                status: tr.t(&format!("console.inquiry.status.{}", q.status)),
                id: q.id,
                reference: q.reference,
            })
            .collect()
    });
    SummaryPage {
        c: Chrome::from(ctx),
        fields,
        identity,
        applications,
        withdrawals,
        locks,
        inquiries,
        withdraw_case,
        admin: ctx.operator.as_ref().is_some_and(|o| o.role == Role::Admin),
    }
}

pub(super) async fn member_page(
    State(app): State<AppState>,
    Extension(ctx): Cx,
    ClientIp(ip): ClientIp,
    IdPath(id): IdPath<MemberId>,
) -> Result<Response, ConsoleError> {
    let Some(operator) = ctx.operator.as_ref() else {
        return Ok(to_login());
    };
    let summary = members::summary(&app, operator, &id.0, &ip).await.or_console(&ctx)?;
    Ok(render(StatusCode::OK, &summary_view(&ctx, summary)))
}

// ---------------------------------------------------------------------------------------
// Decided cases

struct DecidedRow {
    id: String,
    user_id: String,
    org_name: String,
    decision: &'static str,
    reason: &'static str,
    operator_name: String,
    decided_at: String,
}

/// One choice of the decision filter.
struct FilterOption {
    value: &'static str,
    label: &'static str,
    selected: bool,
}

#[derive(Template)]
#[template(path = "console_decided.html")]
struct DecidedPage {
    c: Chrome,
    filters: Vec<FilterOption>,
    rows: Vec<DecidedRow>,
    page: i64,
    /// The decision filter as the paging links carry it (`""`, `approved` or `rejected`).
    decision: &'static str,
    prev: Option<i64>,
    next: Option<i64>,
}

#[derive(Deserialize)]
pub(super) struct DecidedQuery {
    #[serde(default)]
    decision: String,
    #[serde(default)]
    page: Option<String>,
}

pub(super) async fn decided_page(
    State(app): State<AppState>,
    Extension(ctx): Cx,
    ClientIp(ip): ClientIp,
    Query(q): Query<DecidedQuery>,
) -> Result<Response, ConsoleError> {
    let Some(operator) = ctx.operator.as_ref() else {
        return Ok(to_login());
    };
    let tr = ctx.tr;
    let (decision, approved) = match q.decision.as_str() {
        "approved" => ("approved", Some(true)),
        "rejected" => ("rejected", Some(false)),
        _ => ("", None),
    };
    let page = q.page.as_deref().and_then(|p| p.trim().parse::<i64>().ok()).filter(|p| *p >= 1).unwrap_or(1);
    let found = review::decided(&app, operator, approved, page, &ip).await.or_console(&ctx)?;
    let rows = found
        .items
        .into_iter()
        .map(|d| DecidedRow {
            decision: tr.t(if d.approved { "console.decision.approved" } else { "console.decision.rejected" }),
            reason: match &d.reason {
                Some(r) => tr.t(&format!("console.reason.{r}")),
                None => tr.t("console.none"),
            },
            decided_at: jst(d.decided_at),
            id: d.id,
            user_id: d.user_id,
            org_name: d.org_name,
            operator_name: d.operator_name,
        })
        .collect();
    let filters = [
        ("", "console.decided.all"),
        ("approved", "console.decided.approved"),
        ("rejected", "console.decided.rejected"),
    ]
    .into_iter()
    .map(|(value, key)| FilterOption { value, label: tr.t(key), selected: value == decision })
    .collect();
    let view = DecidedPage {
        c: Chrome::from(&ctx),
        filters,
        rows,
        page,
        decision,
        prev: (page > 1).then_some(page - 1),
        next: found.has_next.then_some(page + 1),
    };
    Ok(render(StatusCode::OK, &view))
}
