//! Console (admins): 紐付けの確認 — the accounts linked to a roster record (by organization and
//! 記号・番号), for the customer center when a member cannot do 本人確認 because someone else's
//! account holds their record, and the withdrawal of such a binding (see
//! `app::services::binding`). The search is audited before the roster is looked at, and is a
//! POST form: 記号・番号 are personal data and stay out of URLs (history, proxy logs).

use askama::Template;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use axum::Extension;
use serde::Deserialize;

use super::{
    jst, reason_options, state_label, to_login, Chrome, ConsoleCtx, ConsoleError, ConsoleForm, Cx, OrConsole,
    ReasonOption,
};
use crate::member::{render, see_other};
use crate::ClientIp;
use app::services::binding;
use app::services::review::{NOTE_MAX_CHARS, WITHDRAW_REASONS};
use app::AppState;

struct OrgOption {
    id: String,
    label: String,
    selected: bool,
}

struct AccountRow {
    user_id: String,
    linked_at: String,
    state: &'static str,
    case: Option<String>,
}

#[derive(Template)]
#[template(path = "console_bindings.html")]
struct BindingsPage {
    c: Chrome,
    orgs: Vec<OrgOption>,
    symbol: String,
    number: String,
    searched: bool,
    rows: Vec<AccountRow>,
    reasons: Vec<ReasonOption>,
    note_max: usize,
    error: Option<String>,
}

#[derive(Deserialize, Default)]
pub(super) struct SearchForm {
    #[serde(default)]
    org: String,
    #[serde(default)]
    symbol: String,
    #[serde(default)]
    number: String,
}

async fn orgs(app: &AppState, selected: &str) -> Result<Vec<OrgOption>, app::error::ServiceError> {
    Ok(app
        .store
        .list_orgs()
        .await?
        .into_iter()
        .map(|o| OrgOption {
            selected: o.id == selected,
            label: format!("{}（{}）", o.name, o.insurer_number),
            id: o.id,
        })
        .collect())
}

/// The search form, and the accounts found when `search` is given.
async fn page(
    app: &AppState,
    ctx: &ConsoleCtx,
    ip: &str,
    search: Option<SearchForm>,
) -> Result<Response, ConsoleError> {
    let Some(operator) = ctx.operator.as_ref() else {
        return Ok(to_login());
    };
    if operator.role != app::services::operators::Role::Admin {
        return Err(app::error::ServiceError::Forbidden).or_console(ctx);
    }
    let searched = search.is_some();
    let q = search.unwrap_or_default();
    let (rows, error) = if searched {
        match binding::find_linked(app, operator, &q.org, &q.symbol, &q.number, ip).await {
            Ok(found) => (
                found
                    .into_iter()
                    .map(|a| AccountRow {
                        state: match a.application.as_ref() {
                            Some((_, s)) => state_label(ctx.tr, *s),
                            None => ctx.tr.t("console.bindings.no_application"),
                        },
                        case: a.application.map(|(id, _)| id),
                        linked_at: jst(a.linked_at),
                        user_id: a.user_id,
                    })
                    .collect(),
                None,
            ),
            Err(e @ app::error::ServiceError::Card(_)) => (Vec::new(), Some(e.message(ctx.tr.locale))),
            Err(e) => return Err(e).or_console(ctx),
        }
    } else {
        (Vec::new(), None)
    };
    let page = BindingsPage {
        c: Chrome::from(ctx),
        orgs: orgs(app, &q.org).await.or_console(ctx)?,
        symbol: q.symbol,
        number: q.number,
        searched,
        rows,
        reasons: reason_options(ctx.tr, "console.withdraw_reason", &WITHDRAW_REASONS),
        note_max: NOTE_MAX_CHARS,
        error,
    };
    let status = if page.error.is_some() { StatusCode::UNPROCESSABLE_ENTITY } else { StatusCode::OK };
    Ok(render(status, &page))
}

pub(super) async fn bindings_page(
    State(app): State<AppState>,
    Extension(ctx): Cx,
    ClientIp(ip): ClientIp,
) -> Result<Response, ConsoleError> {
    page(&app, &ctx, &ip, None).await
}

/// 「検索する」.
pub(super) async fn search(
    State(app): State<AppState>,
    Extension(ctx): Cx,
    ClientIp(ip): ClientIp,
    form: ConsoleForm<SearchForm>,
) -> Result<Response, ConsoleError> {
    page(&app, &ctx, &ip, Some(form.into_inner())).await
}

#[derive(Deserialize)]
pub(super) struct WithdrawForm {
    #[serde(default)]
    user_id: String,
    #[serde(default)]
    unlink: Option<String>,
    #[serde(default)]
    reason: String,
    #[serde(default)]
    note: String,
}

/// 「紐付けを解除する」 from the search results (the account may have no eKYC case at all).
pub(super) async fn withdraw(
    State(app): State<AppState>,
    Extension(ctx): Cx,
    ClientIp(ip): ClientIp,
    form: ConsoleForm<WithdrawForm>,
) -> Result<Response, ConsoleError> {
    let f = form.into_inner();
    let Some(operator) = ctx.operator.as_ref() else {
        return Ok(to_login());
    };
    let input =
        binding::WithdrawInput { user_id: &f.user_id, unlink: f.unlink.is_some(), reason: &f.reason, note: &f.note };
    binding::withdraw(&app, operator, input, &ip).await.or_console(&ctx)?;
    Ok(see_other("/console?decided=withdrawn"))
}
