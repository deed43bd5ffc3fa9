//! Demo only: the file outbox as a page, when mail is not sent over SMTP.

use askama::Template;
use axum::extract::State;
use axum::response::Response;
use axum::routing::get;
use axum::{Extension, Router};

use app::error::ServiceError;
use app::AppState;

use super::{not_found, ok, Chrome, Cx, OrPage, PageError};

pub(super) fn routes() -> Router<AppState> {
    Router::new().route("/dev/mail", get(dev_mail))
}

#[derive(Template)]
#[template(path = "dev_mail.html")]
struct DevMailPage {
    c: Chrome,
    entries: Vec<mail::OutboxEntry>,
}

async fn dev_mail(State(app): State<AppState>, Extension(ctx): Cx) -> Result<Response, PageError> {
    if !app.config.demo || app.config.smtp_url.is_some() {
        return Ok(not_found(Extension(ctx)).await);
    }
    let entries = mail::list_outbox(&app.config.outbox_dir(), 50)
        .map_err(|e| ServiceError::Internal(format!("outbox: {e}")))
        .or_page(&ctx)?;
    Ok(ok(&DevMailPage { c: Chrome::from(&ctx), entries }))
}
