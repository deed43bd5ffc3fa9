//! F6 customer center as member pages: the inquiry form (`/inquiry/new`) for visitors and
//! signed-in members alike, and its completion page. Every screen that mentions the customer
//! center links here.

use crate::error::ErrorStatus;
use askama::Template;
use axum::extract::State;
use axum::http::{header, HeaderValue};
use axum::response::Response;
use axum::routing::{get, post};
use axum::{Extension, Router};
use serde::Deserialize;

use app::error::ServiceError;
use app::services::inquiry::{self, NewInquiry, CATEGORIES, MESSAGE_MAX_CHARS};
use app::services::open_email;
use app::AppState;

use super::{inline, ok, render, Chrome, Cx, MemberForm, OrPage, PageError};
use crate::ctx::Ctx;
use crate::ClientIp;

pub(super) fn routes() -> Router<AppState> {
    Router::new().route("/inquiry/new", get(form)).route("/inquiry", post(submit))
}

#[derive(Template)]
#[template(path = "inquiry_new.html")]
struct FormPage {
    c: Chrome,
    categories: Vec<(&'static str, &'static str)>,
    category: String,
    message: String,
    email: String,
    attach: bool,
    message_max: usize,
    error: Option<String>,
    error_field: &'static str,
}

#[derive(Template)]
#[template(path = "inquiry_done.html")]
struct DonePage {
    c: Chrome,
    reference: String,
}

fn form_page(
    ctx: &Ctx,
    category: &str,
    message: &str,
    email: &str,
    attach: bool,
    error: Option<&ServiceError>,
) -> FormPage {
    FormPage {
        c: Chrome::from(ctx),
        categories: CATEGORIES.iter().map(|code| (*code, inquiry::category_label(ctx.locale(), code))).collect(),
        category: category.to_string(),
        message: message.to_string(),
        email: email.to_string(),
        attach,
        message_max: MESSAGE_MAX_CHARS,
        error: error.map(|e| e.message(ctx.locale())),
        error_field: error.and_then(ServiceError::field).unwrap_or(""),
    }
}

/// お問い合わせ: the contact email is prefilled for a signed-in member, who attaches the
/// account by default.
async fn form(State(app): State<AppState>, Extension(ctx): Cx) -> Result<Response, PageError> {
    let email = match &ctx.member {
        Some(m) => open_email(&app, &m.user.email_enc).map_err(ServiceError::from).or_page(&ctx)?,
        None => String::new(),
    };
    Ok(ok(&form_page(&ctx, CATEGORIES[0], "", &email, true, None)))
}

#[derive(Deserialize)]
struct InquiryForm {
    #[serde(default)]
    category: String,
    #[serde(default)]
    message: String,
    #[serde(default)]
    email: String,
    /// A checkbox: present ("on") when checked.
    #[serde(default)]
    attach: Option<String>,
}

async fn submit(
    State(app): State<AppState>,
    Extension(ctx): Cx,
    ClientIp(ip): ClientIp,
    MemberForm { 0: f, .. }: MemberForm<InquiryForm>,
) -> Result<Response, PageError> {
    let attach = f.attach.is_some();
    let input = NewInquiry { category: &f.category, message: &f.message, email: &f.email, attach_account: attach };
    match inquiry::submit(&app, ctx.member.as_ref(), ctx.locale(), input, &ip).await {
        Ok(id) => Ok(ok(&DonePage { c: Chrome::from(&ctx), reference: inquiry::reference(&id) })),
        Err(e) if inline(&e) => {
            let page = form_page(&ctx, &f.category, &f.message, &f.email, attach, Some(&e));
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
