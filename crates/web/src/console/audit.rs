//! Console: the audit log (administrators), newest first, paged by sequence number.

use askama::Template;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use axum::Extension;
use serde::Deserialize;

use super::{jst_secs, to_login, Chrome, ConsoleError, Cx, OrConsole};
use crate::member::render;
use crate::ClientIp;
use app::services::operators;
use app::AppState;

struct AuditRowView {
    at: String,
    operator: String,
    action: String,
    target: String,
    client_ip: String,
}

#[derive(Template)]
#[template(path = "console_audit.html")]
struct AuditPage {
    c: Chrome,
    rows: Vec<AuditRowView>,
    next: Option<String>,
}

#[derive(Deserialize)]
pub(super) struct AuditQuery {
    before: Option<i64>,
}

fn row_view(r: operators::AuditRow) -> AuditRowView {
    AuditRowView {
        at: jst_secs(r.at),
        operator: match (r.operator_name, r.operator_id) {
            (Some(name), Some(id)) => format!("{name} ({id})"),
            (None, Some(id)) => id,
            _ => "—".into(),
        },
        action: r.action,
        target: match (r.target_type, r.target_id) {
            (Some(kind), Some(id)) => format!("{kind}:{id}"),
            _ => "—".into(),
        },
        client_ip: r.client_ip,
    }
}

pub(super) async fn audit_page(
    State(app): State<AppState>,
    Extension(ctx): Cx,
    ClientIp(ip): ClientIp,
    Query(q): Query<AuditQuery>,
) -> Result<Response, ConsoleError> {
    let Some(operator) = ctx.operator.as_ref() else {
        return Ok(to_login());
    };
    let page = operators::audit_log(&app, operator, q.before, &ip).await.or_console(&ctx)?;
    let rows = page.rows.into_iter().map(row_view).collect();
    let next = page.next_before.map(|seq| format!("/console/audit?before={seq}"));
    Ok(render(StatusCode::OK, &AuditPage { c: Chrome::from(&ctx), rows, next }))
}
