//! Console: the audit log (administrators), newest first, paged by sequence number.

use askama::Template;
use axum::extract::{Query, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Extension;
use serde::Deserialize;

use super::{jst_secs, to_login, Chrome, ConsoleError, Cx, OrConsole};
use crate::member::render;
use crate::ClientIp;
use app::error::ServiceError;
use app::services::operators;
use app::AppState;
use store::AuditFilter;

struct AuditRowView {
    at: String,
    operator: String,
    member: String,
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
    q: AuditQuery,
    csv: String,
}

/// The filter form's fields (all optional) and the page position.
#[derive(Deserialize, Default, Clone)]
pub(super) struct AuditQuery {
    before: Option<i64>,
    #[serde(default)]
    action: String,
    #[serde(default)]
    who: String,
    #[serde(default)]
    target: String,
    /// Dates (YYYY-MM-DD, Japan time), the first and the last day shown.
    #[serde(default)]
    from: String,
    #[serde(default)]
    until: String,
}

impl AuditQuery {
    /// The filter; a date that is not YYYY-MM-DD is an invalid request.
    fn filter(&self) -> Result<AuditFilter, ServiceError> {
        let text = |v: &str| Some(v.trim()).filter(|v| !v.is_empty()).map(|v| v.chars().take(200).collect::<String>());
        let day = |v: &str, next: bool| -> Result<Option<time::OffsetDateTime>, ServiceError> {
            let v = v.trim();
            if v.is_empty() {
                return Ok(None);
            }
            let date = time::Date::parse(v, time::macros::format_description!("[year]-[month]-[day]"))
                .map_err(|_| ServiceError::InvalidRequest("date".into()))?;
            let date = if next { date.next_day().unwrap_or(date) } else { date };
            let jst = time::UtcOffset::from_hms(9, 0, 0).unwrap_or(time::UtcOffset::UTC);
            Ok(Some(date.midnight().assume_offset(jst)))
        };
        Ok(AuditFilter {
            action_prefix: text(&self.action),
            actor: text(&self.who),
            target_id: text(&self.target),
            from: day(&self.from, false)?,
            until: day(&self.until, true)?,
        })
    }

    /// The filter as a query string (for the next page and the CSV link).
    fn query(&self) -> String {
        serde_urlencoded::to_string([
            ("action", self.action.as_str()),
            ("who", self.who.as_str()),
            ("target", self.target.as_str()),
            ("from", self.from.as_str()),
            ("until", self.until.as_str()),
        ])
        .unwrap_or_default()
    }
}

fn row_view(r: operators::AuditRow) -> AuditRowView {
    AuditRowView {
        at: jst_secs(r.at),
        operator: match (r.operator_name, r.operator_id) {
            (Some(name), Some(id)) => format!("{name} ({id})"),
            (None, Some(id)) => id,
            _ => "—".into(),
        },
        member: r.member_id.unwrap_or_else(|| "—".into()),
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
    let filter = q.filter().or_console(&ctx)?;
    let page = operators::audit_log(&app, operator, &filter, q.before, &ip).await.or_console(&ctx)?;
    let rows = page.rows.into_iter().map(row_view).collect();
    let query = q.query();
    let next = page.next_before.map(|seq| format!("/console/audit?{query}&before={seq}"));
    let csv = format!("/console/audit.csv?{query}");
    Ok(render(StatusCode::OK, &AuditPage { c: Chrome::from(&ctx), rows, next, q, csv }))
}

/// 「CSVで書き出す」: the filtered rows as a CSV file (audited).
pub(super) async fn audit_csv(
    State(app): State<AppState>,
    Extension(ctx): Cx,
    ClientIp(ip): ClientIp,
    Query(q): Query<AuditQuery>,
) -> Result<Response, ConsoleError> {
    let Some(operator) = ctx.operator.as_ref() else {
        return Ok(to_login());
    };
    let filter = q.filter().or_console(&ctx)?;
    let bytes = operators::audit_csv(&app, operator, &filter, &ip).await.or_console(&ctx)?;
    Ok((
        [
            (header::CONTENT_TYPE, HeaderValue::from_static("text/csv; charset=utf-8")),
            (header::CONTENT_DISPOSITION, HeaderValue::from_static("attachment; filename=\"mimoto-audit.csv\"")),
        ],
        bytes,
    )
        .into_response())
}
