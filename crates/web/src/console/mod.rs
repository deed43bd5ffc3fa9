//! The operator console under `/console`: login (password + TOTP), the eKYC review queue, the
//! case page with its images, the decision, and the audit log for administrators. Plain HTML
//! forms (askama, ja/en), every input with a visible label, every action a real button.
//!
//! Session: the console has its own cookie, separate from the members' — `__Host-mimoto_op`
//! when cookies are Secure, else `mimoto_op` — HttpOnly, SameSite=Strict, no Max-Age (it ends
//! with the browser; the server ends it after 30 minutes idle or 8 hours). `__Host-` requires
//! `Path=/` and forbids a Domain, which pins the cookie to this host so no sibling subdomain can
//! set or overwrite it; for one consistent scheme the plain name uses `Path=/` as well. (A path
//! is no security boundary between pages of one origin anyway; the server only reads the
//! cookie on `/console` routes.) Like the member pages, the cookie holds a random token from
//! the first visit, so the login form has a CSRF token too; login and logout replace it.
//! Only its MAC is stored, in the operators' own session table.

use std::sync::Arc;

use askama::Template;
use axum::extract::{FromRequestParts, Path, Request, State};
use axum::http::request::Parts;
use axum::http::{header, HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Extension, Router};
use axum_extra::extract::cookie::SameSite;
use serde::de::DeserializeOwned;
use time::OffsetDateTime;

use crate::ctx::{CsrfTokens, SessionCookie};
use crate::error::ErrorStatus;
use crate::extract::{CsrfForm, CsrfScope};
use crate::member::{render, see_other};
use app::error::ServiceError;
use app::i18n::{Locale, Tr};
use app::services::operators::{self, Operator, Role};
use app::AppState;
use domain::ids::{ApplicationId, ImageId, ImportJobId, InquiryId};

mod audit;
mod bindings;
mod documents;
mod imports;
mod inquiries;
mod login;
mod mail;
mod members;
mod review;
mod staff;

pub use imports::upload_routes;

pub fn cookie_name(secure: bool) -> &'static str {
    if secure {
        "__Host-mimoto_op"
    } else {
        "mimoto_op"
    }
}

pub fn routes(app: AppState) -> Router<AppState> {
    Router::new()
        .route("/console", get(review::queue))
        .route("/console/login", get(login::login_form).post(login::login))
        .route("/console/logout", post(login::logout))
        .route("/console/reviews/{id}", get(review::case_page))
        .route("/console/reviews/{id}/decision", post(review::decide))
        .route("/console/reviews/{id}/sample-checked", post(review::sample_checked))
        .route("/console/reviews/{id}/withdraw", post(review::withdraw))
        .route("/console/reviews/{id}/images/{image_id}", get(review::image))
        .route("/console/audit", get(audit::audit_page))
        .route("/console/audit.csv", get(audit::audit_csv))
        .route("/console/operators", get(staff::operators_page))
        .route("/console/operators/{id}", post(staff::change))
        .route("/console/bindings", get(bindings::bindings_page).post(bindings::search))
        .route("/console/bindings/withdraw", post(bindings::withdraw))
        .route("/console/inquiries", get(inquiries::inquiries_page))
        .route("/console/mail", get(mail::refusals_page))
        .route("/console/documents", get(documents::documents_page).post(documents::publish))
        .route("/console/inquiries/{id}", get(inquiries::inquiry_page))
        .route("/console/inquiries/{id}/reply", post(inquiries::inquiry_reply))
        .route("/console/inquiries/{id}/close", post(inquiries::inquiry_close))
        .route("/console/members", get(members::members_page).post(members::search))
        .route("/console/members/{id}", get(members::member_page))
        .route("/console/decided", get(members::decided_page))
        .merge(imports::routes())
        .layer(axum::middleware::from_fn_with_state(app, console_context))
}

// ---------------------------------------------------------------------------------------
// Context: cookie, CSRF, language, signed-in operator

/// Put into a response's extensions to replace the console cookie (login, logout).
#[derive(Clone)]
struct SetOpToken(String);

#[derive(Clone)]
pub struct ConsoleCtx {
    token: String,
    /// The CSRF tokens: the one this page's forms carry, and those they are checked against.
    csrf: CsrfTokens,
    tr: Tr,
    path: String,
    operator: Option<Operator>,
}

impl ConsoleCtx {
    fn locale(&self) -> Locale {
        self.tr.locale
    }

    /// This context's error page for `err`.
    fn error(&self, err: ServiceError) -> ConsoleError {
        ConsoleError { err, chrome: Box::new(Chrome::from(self)) }
    }
}

/// Console forms carry the console's own CSRF token; a refused one gets the console's 403 page.
impl CsrfScope for ConsoleCtx {
    fn expected_csrf(&self) -> &CsrfTokens {
        &self.csrf
    }

    fn refuse(&self, err: ServiceError) -> Response {
        self.error(err).into_response()
    }
}

/// A console form whose CSRF token was checked before the handler runs.
type ConsoleForm<T> = CsrfForm<T, ConsoleCtx>;

/// The console's cookie: SameSite=Strict, no Max-Age (it ends with the browser).
const CONSOLE_COOKIE: SessionCookie = SessionCookie { name: cookie_name, same_site: SameSite::Strict, max_age: None };

async fn console_context(State(app): State<AppState>, mut req: Request, next: Next) -> Response {
    let browser = CONSOLE_COOKIE.read(&app, req.headers());
    // Without the database nobody can be told signed in or out: 503, not the login form.
    let mut unavailable = None;
    let operator = if browser.is_new {
        None
    } else {
        match operators::authenticate(&app, &browser.token).await {
            Ok(o) => o,
            Err(e @ ServiceError::Unavailable(_)) => {
                unavailable = Some(e);
                None
            }
            Err(e) => {
                tracing::error!(error = %e, "console session look-up failed");
                None
            }
        }
    };
    let ctx = ConsoleCtx {
        csrf: CsrfTokens::new(&app, "console-csrf", &browser.token),
        token: browser.token.clone(),
        tr: Tr { locale: browser.locale },
        path: req.uri().path().to_string(),
        operator,
    };
    if let Some(e) = unavailable {
        let mut resp = ctx.error(e).into_response();
        CONSOLE_COOKIE.finish(&app, &mut resp, None, browser);
        return resp;
    }
    req.extensions_mut().insert(Arc::new(ctx));
    let mut resp = next.run(req).await;
    let replacement = resp.extensions_mut().remove::<SetOpToken>().map(|SetOpToken(v)| v);
    // Personal data and images: never cached, anywhere.
    CONSOLE_COOKIE.finish(&app, &mut resp, replacement, browser);
    resp
}

type Cx = Extension<Arc<ConsoleCtx>>;

// ---------------------------------------------------------------------------------------
// Typed ids in paths

/// An id kind in a console path, and the error an id of that kind answers when nothing has it.
trait ConsoleId: DeserializeOwned + Send {
    /// What `operator` is told about an id of this kind that nothing has.
    fn unknown(operator: &Operator) -> ServiceError;
}

impl ConsoleId for ApplicationId {
    fn unknown(_: &Operator) -> ServiceError {
        ServiceError::FlowNotFound
    }
}

impl ConsoleId for ImageId {
    fn unknown(_: &Operator) -> ServiceError {
        ServiceError::FlowNotFound
    }
}

/// Operators are managed by administrators only, checked before the operator is looked up.
impl ConsoleId for domain::ids::OperatorId {
    fn unknown(operator: &Operator) -> ServiceError {
        if operator.role == Role::Admin {
            ServiceError::FlowNotFound
        } else {
            ServiceError::Forbidden
        }
    }
}

/// Import jobs are for administrators only, and that is checked before the job is looked up.
impl ConsoleId for ImportJobId {
    fn unknown(operator: &Operator) -> ServiceError {
        if operator.role == Role::Admin {
            ServiceError::FlowNotFound
        } else {
            ServiceError::Forbidden
        }
    }
}

impl ConsoleId for InquiryId {
    fn unknown(_: &Operator) -> ServiceError {
        ServiceError::InquiryNotFound
    }
}

impl<A: ConsoleId, B: ConsoleId> ConsoleId for (A, B) {
    fn unknown(operator: &Operator) -> ServiceError {
        A::unknown(operator)
    }
}

/// The typed id(s) of a console path. A malformed id answers as an unknown one does: the
/// login redirect without a session, else the not-found page of that kind of id.
struct IdPath<T>(T);

impl<S: Send + Sync, T: ConsoleId> FromRequestParts<S> for IdPath<T> {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Response> {
        if let Ok(Path(id)) = Path::<T>::from_request_parts(parts, state).await {
            return Ok(IdPath(id));
        }
        let Some(ctx) = parts.extensions.get::<Arc<ConsoleCtx>>().cloned() else {
            tracing::error!("IdPath used on a route without the console context");
            return Err(StatusCode::INTERNAL_SERVER_ERROR.into_response());
        };
        match &ctx.operator {
            None => Err(to_login()),
            Some(operator) => Err(ctx.error(T::unknown(operator)).into_response()),
        }
    }
}

/// For a form handler: the id, taken only after the form's CSRF token was checked (as the
/// unknown-id answer comes after that check too).
type LateId<T> = Result<IdPath<T>, Response>;

// ---------------------------------------------------------------------------------------
// Rendering

pub struct OperatorBadge {
    pub name: String,
    pub role_label: &'static str,
    pub admin: bool,
}

/// What every console template gets.
pub struct Chrome {
    pub tr: Tr,
    pub csrf: String,
    pub path: String,
    pub operator: Option<OperatorBadge>,
}

impl Chrome {
    fn from(ctx: &ConsoleCtx) -> Self {
        Chrome {
            tr: ctx.tr,
            csrf: ctx.csrf.current(),
            path: ctx.path.clone(),
            operator: ctx.operator.as_ref().map(|o| OperatorBadge {
                name: o.name.clone(),
                role_label: ctx.tr.t(&format!("console.role.{}", o.role.as_str())),
                admin: o.role == Role::Admin,
            }),
        }
    }
    pub fn t(&self, key: &str) -> &'static str {
        self.tr.t(key)
    }
    pub fn lang(&self) -> &'static str {
        self.tr.lang()
    }
    pub fn other(&self) -> &'static str {
        self.tr.other()
    }
}

/// A failure rendered as a console page. Internal errors are logged here, once.
pub struct ConsoleError {
    err: ServiceError,
    chrome: Box<Chrome>,
}

trait OrConsole<T> {
    fn or_console(self, ctx: &ConsoleCtx) -> Result<T, ConsoleError>;
}

impl<T> OrConsole<T> for Result<T, ServiceError> {
    fn or_console(self, ctx: &ConsoleCtx) -> Result<T, ConsoleError> {
        self.map_err(|err| ctx.error(err))
    }
}

#[derive(Template)]
#[template(path = "console_error.html")]
struct ErrorPage {
    c: Chrome,
    message: String,
}

impl IntoResponse for ConsoleError {
    fn into_response(self) -> Response {
        let (status, message) = match &self.err {
            ServiceError::InvalidRequest(what) if what == "csrf" => {
                (StatusCode::FORBIDDEN, self.chrome.t("console.error.csrf").to_string())
            }
            ServiceError::FlowNotFound => (StatusCode::NOT_FOUND, self.chrome.t("console.error.not_found").to_string()),
            e => {
                if e.is_internal() {
                    tracing::error!(error = %e, "console request failed");
                } else if let ServiceError::Unavailable(_) = e {
                    tracing::warn!(error = %e, "console request refused: database unavailable");
                }
                (e.status(), e.message(self.chrome.tr.locale))
            }
        };
        let unavailable = matches!(self.err, ServiceError::Unavailable(_));
        let mut resp = render(status, &ErrorPage { c: *self.chrome, message });
        if unavailable {
            resp.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from(app::error::RETRY_UNAVAILABLE_SECS));
        }
        resp
    }
}

fn with_token(mut resp: Response, token: String) -> Response {
    resp.extensions_mut().insert(SetOpToken(token));
    resp
}

/// Where a request without a console session goes.
fn to_login() -> Response {
    see_other("/console/login")
}

/// A label and its value, one row of a definition list.
struct Field {
    label: &'static str,
    value: String,
}

/// One choice of a reason list (rejection, withdrawal), labelled in the operator's language.
struct ReasonOption {
    code: &'static str,
    label: &'static str,
}

/// The options of a reason list: `codes` labelled with the messages `<prefix>.<code>`.
fn reason_options(tr: Tr, prefix: &str, codes: &[&'static str]) -> Vec<ReasonOption> {
    codes.iter().map(|code| ReasonOption { code, label: tr.t(&format!("{prefix}.{code}")) }).collect()
}

/// An eKYC application state in words (messages `console.state.<state>`).
fn state_label(tr: Tr, state: domain::ekyc::EkycState) -> &'static str {
    match app::services::ekyc::state_name(state) {
        Some(name) => tr.t(&format!("console.state.{name}")),
        None => tr.t("console.none"),
    }
}

/// Japan time, minutes.
fn jst(t: OffsetDateTime) -> String {
    let local = t.to_offset(time::UtcOffset::from_hms(9, 0, 0).unwrap_or(time::UtcOffset::UTC));
    local.format(time::macros::format_description!("[year]-[month]-[day] [hour]:[minute]")).unwrap_or_default()
}

fn jst_secs(t: OffsetDateTime) -> String {
    let local = t.to_offset(time::UtcOffset::from_hms(9, 0, 0).unwrap_or(time::UtcOffset::UTC));
    local.format(time::macros::format_description!("[year]-[month]-[day] [hour]:[minute]:[second]")).unwrap_or_default()
}
