//! Console: mails the relay refused for good (see `app::services::mail_refusals`).

use askama::Template;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use axum::Extension;

use super::{jst, to_login, Chrome, ConsoleError, Cx, OrConsole};
use crate::member::render;
use crate::ClientIp;
use app::services::mail_refusals;
use app::AppState;

struct RefusalRowView {
    refused_at: String,
    queued_at: String,
    subject: String,
    domain: String,
    attempts: i32,
    reason: String,
}

#[derive(Template)]
#[template(path = "console_mail.html")]
struct RefusalsPage {
    c: Chrome,
    rows: Vec<RefusalRowView>,
}

pub(super) async fn refusals_page(
    State(app): State<AppState>,
    Extension(ctx): Cx,
    ClientIp(ip): ClientIp,
) -> Result<Response, ConsoleError> {
    let Some(operator) = ctx.operator.as_ref() else {
        return Ok(to_login());
    };
    let unknown = || "—".to_string();
    let rows = mail_refusals::list(&app, operator, &ip)
        .await
        .or_console(&ctx)?
        .into_iter()
        .map(|r| RefusalRowView {
            refused_at: jst(r.refused_at),
            queued_at: jst(r.queued_at),
            subject: r.subject.unwrap_or_else(unknown),
            domain: r.domain.unwrap_or_else(unknown),
            attempts: r.attempts,
            reason: r.reason,
        })
        .collect();
    Ok(render(StatusCode::OK, &RefusalsPage { c: Chrome::from(&ctx), rows }))
}
