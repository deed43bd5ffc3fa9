//! F2 パスワード再設定: the email, then the emailed one-time password with the new password
//! (`services::reset`).

use askama::Template;
use axum::extract::{Path, Query, State};
use axum::response::Response;
use axum::routing::{get, post};
use axum::{Extension, Router};
use domain::ids::FlowId;
use domain::reset::ResetState;
use serde::Deserialize;

use app::error::ServiceError;
use app::services::reset;
use app::AppState;

use super::{inline, ok, render, see_other, Chrome, Cx, IdPath, MemberForm, OrPage, PageError};
use crate::ctx::Ctx;
use crate::error::ErrorStatus;
use crate::extract::Empty;
use crate::ClientIp;

pub(super) fn routes() -> Router<AppState> {
    Router::new()
        .route("/password-reset", get(reset_form).post(reset_start))
        .route("/password-reset/{id}", get(reset_show).post(reset_complete))
        .route("/password-reset/{id}/resend", post(reset_resend))
}

/// `?resent=1` after 「再送する」.
#[derive(Deserialize)]
struct ShowQuery {
    resent: Option<String>,
}
#[derive(Template)]
#[template(path = "reset_start.html")]
struct ResetStartPage {
    c: Chrome,
    email: String,
    error: Option<String>,
}

#[derive(Template)]
#[template(path = "reset_code.html")]
struct ResetCodePage {
    c: Chrome,
    id: String,
    error: Option<String>,
    notice: Option<String>,
}

#[derive(Template)]
#[template(path = "reset_done.html")]
struct ResetDonePage {
    c: Chrome,
}

async fn reset_form(Extension(ctx): Cx) -> Response {
    ok(&ResetStartPage { c: Chrome::from(&ctx), email: String::new(), error: None })
}

#[derive(Deserialize)]
struct ResetStartForm {
    #[serde(default)]
    email: String,
}

async fn reset_start(
    State(app): State<AppState>,
    Extension(ctx): Cx,
    ClientIp(ip): ClientIp,
    MemberForm { 0: f, .. }: MemberForm<ResetStartForm>,
) -> Result<Response, PageError> {
    match reset::start(&app, &f.email, ctx.locale(), &ip).await {
        Ok(flow) => Ok(see_other(&format!("/password-reset/{}", flow.id))),
        Err(e) if inline(&e) => {
            let page = ResetStartPage { c: Chrome::from(&ctx), email: f.email, error: Some(e.message(ctx.locale())) };
            Ok(render(e.status(), &page))
        }
        Err(e) => Err(e).or_page(&ctx),
    }
}

async fn reset_show(
    State(app): State<AppState>,
    Extension(ctx): Cx,
    Path(id): IdPath<FlowId>,
    Query(q): Query<ShowQuery>,
) -> Result<Response, PageError> {
    let id = id.or_page(&ctx)?;
    let loaded = reset::load(&app, &id).await.or_page(&ctx)?;
    Ok(match loaded.flow.state {
        ResetState::CodeSent => {
            let notice = q.resent.map(|_| ctx.tr.t("reg.code.resent").to_string());
            ok(&ResetCodePage { c: Chrome::from(&ctx), id: id.into(), error: None, notice })
        }
        ResetState::Completed => ok(&ResetDonePage { c: Chrome::from(&ctx) }),
    })
}

#[derive(Deserialize)]
struct ResetCompleteForm {
    #[serde(default)]
    code: String,
    #[serde(default)]
    new_password: String,
}

async fn reset_complete(
    State(app): State<AppState>,
    Extension(ctx): Cx,
    ClientIp(ip): ClientIp,
    Path(id): IdPath<FlowId>,
    MemberForm { 0: f, .. }: MemberForm<ResetCompleteForm>,
) -> Result<Response, PageError> {
    let id = id.or_page(&ctx)?;
    match reset::complete(&app, &id, &f.code, &f.new_password, &ip).await {
        Ok(_) => Ok(see_other(&format!("/password-reset/{id}"))),
        Err(e) if inline(&e) => Ok(code_error(&ctx, id, &e)),
        Err(e) => Err(e).or_page(&ctx),
    }
}

async fn reset_resend(
    State(app): State<AppState>,
    Extension(ctx): Cx,
    ClientIp(ip): ClientIp,
    Path(id): IdPath<FlowId>,
    _: MemberForm<Empty>,
) -> Result<Response, PageError> {
    let id = id.or_page(&ctx)?;
    match reset::resend(&app, &id, &ip).await {
        Ok(_) => Ok(see_other(&format!("/password-reset/{id}?resent=1"))),
        Err(e) if inline(&e) => Ok(code_error(&ctx, id, &e)),
        Err(e) => Err(e).or_page(&ctx),
    }
}

/// The code page again with a mistake the member can fix there (wrong code, weak password…).
fn code_error(ctx: &Ctx, id: FlowId, e: &ServiceError) -> Response {
    let page =
        ResetCodePage { c: Chrome::from(ctx), id: id.into(), error: Some(e.message(ctx.locale())), notice: None };
    render(e.status(), &page)
}
