//! Server-rendered member pages (askama, ja/en): plain HTML forms, mobile first, every input
//! with a visible label and every action a real button or link with the guide's wording.
//! Each handler parses, calls one service function and renders.
//!
//! This module is the page kit every flow shares ([`Chrome`], [`PageError`], [`render`],
//! [`MemberForm`], [`PathId`]…); the flows live in one file each: [`landing`] (F0),
//! [`registration`] (F1), [`login`] and [`reset`] (F2), [`menu`], [`identity`] (F3),
//! [`ekyc`] (F4), [`health`] (F5), [`inquiry`] (F6) and the demo outbox [`dev_mail`].

pub mod chart;
mod consents;
mod dev_mail;
pub mod ekyc;
pub mod health;
mod identity;
pub mod inquiry;
mod landing;
mod login;
mod menu;
mod passkeys;
mod registration;
mod reset;
mod settings;

use std::sync::Arc;

use askama::Template;
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::routing::get;
use axum::{Extension, Router};
use domain::ids::InvalidId;
use serde::{Deserialize, Deserializer};

use app::error::ServiceError;
use app::i18n::Tr;
use app::AppState;

use crate::ctx::{browser_context, Ctx, SetSid};
use crate::error::ErrorStatus;
pub(crate) use settings::DeviceLabel;

pub fn routes(app: AppState) -> Router<AppState> {
    Router::new()
        .merge(landing::routes())
        .merge(registration::routes())
        .merge(login::routes())
        .merge(menu::routes())
        .merge(identity::routes())
        .merge(reset::routes())
        .merge(dev_mail::routes())
        .merge(ekyc::routes())
        .merge(inquiry::routes())
        .merge(health::routes())
        .merge(passkeys::routes())
        .merge(settings::routes())
        .merge(consents::routes())
        .fallback(not_found)
        .layer(axum::middleware::from_fn_with_state(app.clone(), consents::consent_gate))
        .layer(axum::middleware::from_fn_with_state(app, browser_context))
        .route("/static/app.css", get(stylesheet))
        .route("/static/camera.js", get(camera_script))
        .route("/static/passkey.js", get(passkey_script))
        .route("/static/print.js", get(print_script))
}

/// The routes with a bigger body limit (the eKYC capture uploads), with the same browser
/// context as every page.
pub fn upload_routes(app: AppState) -> Router<AppState> {
    ekyc::upload_routes(app)
}

/// What every page template gets: translator, CSRF token, current path.
pub struct Chrome {
    pub tr: Tr,
    pub csrf: String,
    pub path: String,
    pub signed_in: bool,
}

impl Chrome {
    pub(crate) fn from(ctx: &Ctx) -> Self {
        Chrome { tr: ctx.tr, csrf: ctx.csrf.current(), path: ctx.path.clone(), signed_in: ctx.member.is_some() }
    }
    pub fn t(&self, key: &str) -> &'static str {
        self.tr.t(key)
    }
    pub fn tf(&self, key: &str, name: &str, value: &str) -> String {
        self.tr.tf(key, name, value)
    }
    pub fn lang(&self) -> &'static str {
        self.tr.lang()
    }
    pub fn other(&self) -> &'static str {
        self.tr.other()
    }
}

pub(crate) type Cx = Extension<Arc<Ctx>>;

/// A member page's form, its CSRF token checked against the browser's session.
pub(crate) type MemberForm<T> = crate::extract::CsrfForm<T, Ctx>;

impl crate::extract::CsrfScope for Ctx {
    fn expected_csrf(&self) -> &crate::ctx::CsrfTokens {
        &self.csrf
    }
    fn refuse(&self, err: ServiceError) -> Response {
        PageError { err, chrome: Chrome::from(self) }.into_response()
    }
}

/// An id from the request path, checked where the handler would hand it to a service: a
/// malformed id gets exactly the page an unknown one gets (`ServiceError::FlowNotFound`, 404),
/// after the same checks before it (CSRF, signed in) as before ids were typed. The raw text
/// never reaches a service.
pub(crate) struct PathId<T>(Result<T, InvalidId>);

impl<T> PathId<T> {
    /// The id, or the page for an unknown flow or application.
    pub(crate) fn or_page(self, ctx: &Ctx) -> Result<T, PageError> {
        self.0.map_err(|_| ServiceError::FlowNotFound).or_page(ctx)
    }
}

impl<'de, T: TryFrom<String, Error = InvalidId>> Deserialize<'de> for PathId<T> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        Ok(PathId(T::try_from(String::deserialize(d)?)))
    }
}

/// A path with one id: `Path(id): IdPath<FlowId>`, then `let id = id.or_page(&ctx)?;` where the
/// raw text used to go to the service.
pub(crate) type IdPath<T> = axum::extract::Path<PathId<T>>;

/// A failure rendered as a page in the member's language. Internal errors are logged here,
/// once, and shown without detail.
pub(crate) struct PageError {
    err: ServiceError,
    chrome: Chrome,
}

pub(crate) trait OrPage<T> {
    fn or_page(self, ctx: &Ctx) -> Result<T, PageError>;
}

impl<T> OrPage<T> for Result<T, ServiceError> {
    fn or_page(self, ctx: &Ctx) -> Result<T, PageError> {
        self.map_err(|err| PageError { err, chrome: Chrome::from(ctx) })
    }
}

#[derive(Template)]
#[template(path = "error.html")]
struct ErrorPage {
    c: Chrome,
    message: String,
    inquiry: bool,
    restart: bool,
}

impl IntoResponse for PageError {
    fn into_response(self) -> Response {
        // A consent is missing: the page that asks for it, then back here.
        if let ServiceError::ConsentRequired(docs) = &self.err {
            return see_other(&consents::consent_page_for(docs, &self.chrome.path));
        }
        let (status, message) = match &self.err {
            ServiceError::InvalidRequest(what) if what == "csrf" => {
                (StatusCode::FORBIDDEN, self.chrome.t("error.csrf").to_string())
            }
            e => {
                if e.is_internal() {
                    tracing::error!(error = %e, "request failed");
                } else if let ServiceError::Unavailable(_) = e {
                    tracing::warn!(error = %e, "page refused: database unavailable");
                }
                (e.status(), e.message(self.chrome.tr.locale))
            }
        };
        let restart = self.err.restarts_flow();
        let inquiry = self.err.suggests_customer_center();
        let unavailable = matches!(self.err, ServiceError::Unavailable(_));
        let page = ErrorPage { c: self.chrome, message, inquiry, restart };
        let mut resp = render(status, &page);
        if unavailable {
            resp.headers_mut().insert(
                axum::http::header::RETRY_AFTER,
                axum::http::HeaderValue::from(app::error::RETRY_UNAVAILABLE_SECS),
            );
        }
        resp
    }
}

impl PageError {
    /// The error page for `err` in the context `ctx`.
    pub(crate) fn new(err: ServiceError, ctx: &Ctx) -> Self {
        PageError { err, chrome: Chrome::from(ctx) }
    }
}

pub(crate) fn render<T: Template>(status: StatusCode, t: &T) -> Response {
    match t.render() {
        Ok(html) => (status, Html(html)).into_response(),
        Err(e) => {
            tracing::error!(error = %e, "template rendering failed");
            (StatusCode::INTERNAL_SERVER_ERROR, "internal error").into_response()
        }
    }
}

pub(crate) fn ok<T: Template>(t: &T) -> Response {
    render(StatusCode::OK, t)
}

pub(crate) fn see_other(path: &str) -> Response {
    Redirect::to(path).into_response()
}

/// Errors a member can fix on the same form are shown inline; others get the error page.
pub(crate) fn inline(e: &ServiceError) -> bool {
    e.field().is_some()
        || matches!(
            e,
            ServiceError::RateLimited { .. } | ServiceError::InvalidCredentials | ServiceError::ResendTooSoon { .. }
        )
}

pub(crate) fn with_sid(mut resp: Response, sid: String) -> Response {
    resp.extensions_mut().insert(SetSid(sid));
    resp
}

pub(crate) async fn not_found(Extension(ctx): Cx) -> Response {
    let c = Chrome::from(&ctx);
    render(
        StatusCode::NOT_FOUND,
        &ErrorPage { message: c.t("error.not_found").into(), c, inquiry: false, restart: false },
    )
}

async fn stylesheet() -> Response {
    (
        [
            (header::CONTENT_TYPE, HeaderValue::from_static("text/css; charset=utf-8")),
            (header::CACHE_CONTROL, HeaderValue::from_static("public, max-age=3600")),
        ],
        include_str!("../../static/app.css"),
    )
        .into_response()
}

/// Passkeys (the second script, see `member::passkeys`; pages work without it).
async fn passkey_script() -> Response {
    (
        [
            (header::CONTENT_TYPE, HeaderValue::from_static("text/javascript; charset=utf-8")),
            (header::CACHE_CONTROL, HeaderValue::from_static("public, max-age=3600")),
        ],
        include_str!("../../static/passkey.js"),
    )
        .into_response()
}

/// 「印刷する」 on the 医療費通知 print view (the page says how to print without it).
async fn print_script() -> Response {
    (
        [
            (header::CONTENT_TYPE, HeaderValue::from_static("text/javascript; charset=utf-8")),
            (header::CACHE_CONTROL, HeaderValue::from_static("public, max-age=3600")),
        ],
        include_str!("../../static/print.js"),
    )
        .into_response()
}

/// The in-page camera of the eKYC capture pages (the only script: pages work without it).
async fn camera_script() -> Response {
    (
        [
            (header::CONTENT_TYPE, HeaderValue::from_static("text/javascript; charset=utf-8")),
            (header::CACHE_CONTROL, HeaderValue::from_static("public, max-age=3600")),
        ],
        include_str!("../../static/camera.js"),
    )
        .into_response()
}
