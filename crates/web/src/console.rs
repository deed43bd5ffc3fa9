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

use crate::error::ErrorStatus;
use std::sync::Arc;

use askama::Template;
use axum::extract::{Path, Query, Request, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Extension, Form, Router};
use axum_extra::extract::cookie::{Cookie, CookieJar, SameSite};
use serde::Deserialize;
use time::OffsetDateTime;

use app::{App, AppState};
use app::crypto::random_token;
use app::error::ServiceError;
use crate::ctx::{append_cookie, check_csrf, valid_token, LANG_COOKIE};
use crate::pages::{render, see_other};
use crate::ClientIp;
use app::i18n::{Locale, Tr};
use app::services::operators::{self, Operator, Role};
use app::services::inquiry;
use app::services::review::{self, DecisionInput, REJECT_REASONS};

mod imports;

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
        .route("/console", get(queue))
        .route("/console/login", get(login_form).post(login))
        .route("/console/logout", post(logout))
        .route("/console/reviews/{id}", get(case_page))
        .route("/console/reviews/{id}/decision", post(decide))
        .route("/console/reviews/{id}/images/{image_id}", get(image))
        .route("/console/audit", get(audit_page))
        .route("/console/inquiries", get(inquiries_page))
        .route("/console/inquiries/{id}", get(inquiry_page))
        .route("/console/inquiries/{id}/reply", post(inquiry_reply))
        .route("/console/inquiries/{id}/close", post(inquiry_close))
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
    csrf: String,
    tr: Tr,
    path: String,
    operator: Option<Operator>,
}

impl ConsoleCtx {
    fn locale(&self) -> Locale {
        self.tr.locale
    }

    fn check_csrf(&self, token: &str) -> Result<(), ServiceError> {
        check_csrf(token, &self.csrf)
    }
}

fn csrf_for(app: &App, token: &str) -> String {
    app.keys.mac_b64("console-csrf", token.as_bytes())
}

fn op_cookie(app: &App, value: String) -> Cookie<'static> {
    let secure = app.config.cookie_secure();
    Cookie::build((cookie_name(secure), value)).path("/").http_only(true).secure(secure).same_site(SameSite::Strict).build()
}

async fn console_context(State(app): State<AppState>, mut req: Request, next: Next) -> Response {
    let jar = CookieJar::from_headers(req.headers());
    let existing = jar.get(cookie_name(app.config.cookie_secure())).map(|c| c.value().to_string()).filter(|v| valid_token(v));
    let is_new = existing.is_none();
    let token = existing.unwrap_or_else(random_token);
    let locale = jar.get(LANG_COOKIE).and_then(|c| Locale::parse(c.value())).unwrap_or_default();
    let operator = if is_new {
        None
    } else {
        match operators::authenticate(&app, &token).await {
            Ok(o) => o,
            Err(e) => {
                tracing::error!(error = %e, "console session look-up failed");
                None
            }
        }
    };
    let ctx = ConsoleCtx { csrf: csrf_for(&app, &token), token, tr: Tr { locale }, path: req.uri().path().to_string(), operator };
    let token_now = ctx.token.clone();
    req.extensions_mut().insert(Arc::new(ctx));
    let mut resp = next.run(req).await;
    let cookie = match resp.extensions_mut().remove::<SetOpToken>() {
        Some(SetOpToken(v)) => Some(op_cookie(&app, v)),
        None if is_new => Some(op_cookie(&app, token_now)),
        None => None,
    };
    if let Some(c) = cookie {
        append_cookie(&mut resp, &c);
    }
    // Personal data and images: never cached, anywhere.
    resp.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    resp
}

type Cx = Extension<Arc<ConsoleCtx>>;

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
            csrf: ctx.csrf.clone(),
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
        self.map_err(|err| ConsoleError { err, chrome: Box::new(Chrome::from(ctx)) })
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
            ServiceError::InvalidRequest(what) if what == "csrf" => (StatusCode::FORBIDDEN, self.chrome.t("console.error.csrf").to_string()),
            ServiceError::FlowNotFound => (StatusCode::NOT_FOUND, self.chrome.t("console.error.not_found").to_string()),
            e => {
                if e.is_internal() {
                    tracing::error!(error = %e, "console request failed");
                }
                (e.status(), e.message(self.chrome.tr.locale))
            }
        };
        render(status, &ErrorPage { c: *self.chrome, message })
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

/// Japan time, minutes.
fn jst(t: OffsetDateTime) -> String {
    let local = t.to_offset(time::UtcOffset::from_hms(9, 0, 0).unwrap_or(time::UtcOffset::UTC));
    local.format(time::macros::format_description!("[year]-[month]-[day] [hour]:[minute]")).unwrap_or_default()
}

fn jst_secs(t: OffsetDateTime) -> String {
    let local = t.to_offset(time::UtcOffset::from_hms(9, 0, 0).unwrap_or(time::UtcOffset::UTC));
    local.format(time::macros::format_description!("[year]-[month]-[day] [hour]:[minute]:[second]")).unwrap_or_default()
}

#[derive(Deserialize)]
struct CsrfOnly {
    #[serde(default)]
    csrf: String,
}

// ---------------------------------------------------------------------------------------
// Login, logout

#[derive(Template)]
#[template(path = "console_login.html")]
struct LoginPage {
    c: Chrome,
    email: String,
    error: Option<String>,
}

async fn login_form(Extension(ctx): Cx) -> Response {
    if ctx.operator.is_some() {
        return see_other("/console");
    }
    render(StatusCode::OK, &LoginPage { c: Chrome::from(&ctx), email: String::new(), error: None })
}

#[derive(Deserialize)]
struct LoginForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    email: String,
    #[serde(default)]
    password: String,
    #[serde(default)]
    code: String,
}

async fn login(State(app): State<AppState>, Extension(ctx): Cx, ClientIp(ip): ClientIp, Form(f): Form<LoginForm>) -> Result<Response, ConsoleError> {
    ctx.check_csrf(&f.csrf).or_console(&ctx)?;
    match operators::login(&app, &f.email, &f.password, &f.code, &ip).await {
        Ok(session) => Ok(with_token(see_other("/console"), session.token)),
        Err(e @ (ServiceError::ConsoleLoginFailed | ServiceError::RateLimited { .. })) => {
            let page = LoginPage { c: Chrome::from(&ctx), email: f.email, error: Some(e.message(ctx.locale())) };
            let mut resp = render(e.status(), &page);
            if let ServiceError::RateLimited { retry_after } = e {
                if let Ok(v) = HeaderValue::from_str(&retry_after.to_string()) {
                    resp.headers_mut().insert(header::RETRY_AFTER, v);
                }
            }
            Ok(resp)
        }
        Err(e) => Err(e).or_console(&ctx),
    }
}

async fn logout(State(app): State<AppState>, Extension(ctx): Cx, ClientIp(ip): ClientIp, Form(f): Form<CsrfOnly>) -> Result<Response, ConsoleError> {
    ctx.check_csrf(&f.csrf).or_console(&ctx)?;
    if let Some(operator) = &ctx.operator {
        operators::logout(&app, &ctx.token, operator, &ip).await.or_console(&ctx)?;
    }
    Ok(with_token(see_other("/console/login"), random_token()))
}

// ---------------------------------------------------------------------------------------
// Review queue

struct QueueRow {
    id: String,
    org_name: String,
    submitted_at: String,
    document: &'static str,
}

#[derive(Template)]
#[template(path = "console_queue.html")]
struct QueuePage {
    c: Chrome,
    rows: Vec<QueueRow>,
    notice: Option<&'static str>,
}

#[derive(Deserialize)]
struct QueueQuery {
    decided: Option<String>,
}

fn document_label(tr: Tr, kind: Option<domain::ekyc::DocumentKind>) -> &'static str {
    match kind {
        Some(k) => tr.t(&format!("console.doc.{}", k.as_str())),
        None => tr.t("console.none"),
    }
}

async fn queue(State(app): State<AppState>, Extension(ctx): Cx, ClientIp(ip): ClientIp, Query(q): Query<QueueQuery>) -> Result<Response, ConsoleError> {
    let Some(operator) = ctx.operator.as_ref() else {
        return Ok(to_login());
    };
    let items = review::queue(&app, operator, &ip).await.or_console(&ctx)?;
    let rows = items
        .into_iter()
        .map(|i| QueueRow {
            id: i.id,
            org_name: i.org_name,
            submitted_at: i.submitted_at.map(jst).unwrap_or_default(),
            document: document_label(ctx.tr, i.document),
        })
        .collect();
    let notice = match q.decided.as_deref() {
        Some("approved") => Some(ctx.tr.t("console.notice.approved")),
        Some("rejected") => Some(ctx.tr.t("console.notice.rejected")),
        _ => None,
    };
    Ok(render(StatusCode::OK, &QueuePage { c: Chrome::from(&ctx), rows, notice }))
}

// ---------------------------------------------------------------------------------------
// Case page

struct Field {
    label: &'static str,
    value: String,
}

struct ImageView {
    url: String,
    label: &'static str,
    deleted: bool,
}

struct ScoreView {
    label: &'static str,
    value: String,
    verdict: &'static str,
    auto: &'static str,
}

struct ReasonOption {
    code: &'static str,
    label: &'static str,
}

struct DecisionView {
    outcome: &'static str,
    reason: Option<&'static str>,
    note: Option<String>,
    operator_name: String,
    decided_at: String,
}

#[derive(Template)]
#[template(path = "console_case.html")]
struct CasePage {
    c: Chrome,
    id: String,
    version: i64,
    pending: bool,
    application: Vec<Field>,
    person: Option<Vec<Field>>,
    images: Vec<ImageView>,
    instruction: String,
    scores: Vec<ScoreView>,
    bar_note: String,
    reasons: Vec<String>,
    reject_reasons: Vec<ReasonOption>,
    note_max: usize,
    decision: Option<DecisionView>,
}

fn case_view(ctx: &ConsoleCtx, case: review::Case) -> CasePage {
    let tr = ctx.tr;
    let yes_no = |b: bool| tr.t(if b { "console.yes" } else { "console.no" });
    let a = &case.data.app;
    let state = serde_json::to_value(a.state).ok().and_then(|v| v.as_str().map(str::to_string)).unwrap_or_default();
    let application = vec![
        Field { label: tr.t("console.case.org"), value: format!("{}（{}）", case.org.name, case.org.insurer_number) },
        Field { label: tr.t("console.case.submitted_at"), value: case.record.submitted_at.map(jst).unwrap_or_default() },
        Field { label: tr.t("console.case.state"), value: tr.t(&format!("console.state.{state}")).to_string() },
        Field { label: tr.t("console.case.document"), value: document_label(tr, a.document).to_string() },
        Field { label: tr.t("console.case.remarks"), value: a.remarks.map(|r| yes_no(r).to_string()).unwrap_or_else(|| tr.t("console.none").to_string()) },
        Field { label: tr.t("console.case.face_attempts"), value: a.face_attempts.to_string() },
    ];
    let person = case.person.as_ref().map(|p| {
        let e = &p.entry;
        vec![
            Field { label: tr.t("console.person.name_kana"), value: format!("{}　{}", e.family_name, e.given_name) },
            Field { label: tr.t("console.person.birth_date"), value: e.birth_date.to_string() },
            Field { label: tr.t("console.person.insurer_number"), value: p.insurer_number.clone() },
            Field { label: tr.t("console.person.symbol"), value: if e.card.symbol.is_empty() { tr.t("console.none").to_string() } else { e.card.symbol.clone() } },
            Field { label: tr.t("console.person.number"), value: e.card.number.clone() },
            Field { label: tr.t("console.person.branch"), value: e.card.branch.clone().unwrap_or_else(|| tr.t("console.none").to_string()) },
            Field {
                label: tr.t("console.person.eligibility"),
                value: format!(
                    "{} – {}",
                    e.eligible_from,
                    e.eligible_until.map(|d| d.to_string()).unwrap_or_else(|| tr.t("console.person.no_end").to_string())
                ),
            },
        ]
    });
    let images = case
        .images
        .iter()
        .map(|i| ImageView {
            url: format!("/console/reviews/{}/images/{}", case.record.id, i.id),
            label: tr.t(&format!("console.image.{}", i.capture.as_str())),
            deleted: i.deleted,
        })
        .collect();
    let instruction = match case.instruction() {
        Some(i) => match tr.locale {
            Locale::Ja => i.label_ja(),
            Locale::En => i.label_en(),
        },
        None => tr.t("console.none").to_string(),
    };
    let score = |label: &'static str, v: Option<f32>| match v {
        Some(v) => ScoreView {
            label: tr.t(label),
            value: format!("{v:.3}"),
            verdict: tr.t(if v >= case.threshold { "console.score.match" } else { "console.score.no_match" }),
            auto: yes_no(v >= case.auto_bar),
        },
        None => ScoreView { label: tr.t(label), value: "—".into(), verdict: tr.t("console.none"), auto: tr.t("console.none") },
    };
    let s = case.scores();
    let scores = vec![
        score("console.score.document_frontal", s.map(|s| s.document_frontal).or(case.data.document_frontal_score)),
        score("console.score.document_angled", s.map(|s| s.document_angled)),
        score("console.score.frontal_angled", s.map(|s| s.frontal_angled)),
    ];
    let bar_note = tr
        .t("console.score.bar_note")
        .replace("{threshold}", &format!("{:.2}", case.threshold))
        .replace("{margin}", &format!("{:.2}", case.auto_bar - case.threshold))
        .replace("{bar}", &format!("{:.2}", case.auto_bar));
    let decision = case.decision.as_ref().map(|d| DecisionView {
        outcome: tr.t(if d.approved { "console.decision.approved" } else { "console.decision.rejected" }),
        reason: d.reason.as_ref().map(|r| tr.t(&format!("console.reason.{r}"))),
        note: d.note.clone(),
        operator_name: d.operator_name.clone().unwrap_or_default(),
        decided_at: jst(d.decided_at),
    });
    CasePage {
        c: Chrome::from(ctx),
        id: case.record.id.clone(),
        version: case.record.version,
        pending: case.pending(),
        application,
        person,
        images,
        instruction,
        scores,
        bar_note,
        reasons: case.data.reasons.clone(),
        reject_reasons: REJECT_REASONS.iter().map(|code| ReasonOption { code, label: tr.t(&format!("console.reason.{code}")) }).collect(),
        note_max: review::NOTE_MAX_CHARS,
        decision,
    }
}

async fn case_page(State(app): State<AppState>, Extension(ctx): Cx, ClientIp(ip): ClientIp, Path(id): Path<String>) -> Result<Response, ConsoleError> {
    let Some(operator) = ctx.operator.as_ref() else {
        return Ok(to_login());
    };
    let case = review::case(&app, operator, &id, &ip).await.or_console(&ctx)?;
    Ok(render(StatusCode::OK, &case_view(&ctx, case)))
}

async fn image(State(app): State<AppState>, Extension(ctx): Cx, ClientIp(ip): ClientIp, Path((id, image_id)): Path<(String, String)>) -> Result<Response, ConsoleError> {
    let Some(operator) = ctx.operator.as_ref() else {
        return Ok(to_login());
    };
    let (bytes, media_type) = review::image(&app, operator, &id, &image_id, &ip).await.or_console(&ctx)?;
    Ok((
        [
            (header::CONTENT_TYPE, HeaderValue::from_static(media_type)),
            (header::CONTENT_DISPOSITION, HeaderValue::from_static("inline")),
        ],
        bytes,
    )
        .into_response())
}

#[derive(Deserialize)]
struct DecisionForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    version: String,
    #[serde(default)]
    decision: String,
    #[serde(default)]
    reason: String,
    #[serde(default)]
    note: String,
}

async fn decide(State(app): State<AppState>, Extension(ctx): Cx, ClientIp(ip): ClientIp, Path(id): Path<String>, Form(f): Form<DecisionForm>) -> Result<Response, ConsoleError> {
    ctx.check_csrf(&f.csrf).or_console(&ctx)?;
    let Some(operator) = ctx.operator.as_ref() else {
        return Ok(to_login());
    };
    let approve = match f.decision.as_str() {
        "approve" => true,
        "reject" => false,
        _ => return Err(ServiceError::InvalidRequest("decision".into())).or_console(&ctx),
    };
    let version = f.version.trim().parse::<i64>().map_err(|_| ServiceError::InvalidRequest("version".into())).or_console(&ctx)?;
    let input = DecisionInput { approve, reason: &f.reason, note: &f.note, version };
    review::decide(&app, operator, &id, input, &ip).await.or_console(&ctx)?;
    Ok(see_other(if approve { "/console?decided=approved" } else { "/console?decided=rejected" }))
}

// ---------------------------------------------------------------------------------------
// Audit log (administrators)

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
struct AuditQuery {
    before: Option<i64>,
}

async fn audit_page(State(app): State<AppState>, Extension(ctx): Cx, ClientIp(ip): ClientIp, Query(q): Query<AuditQuery>) -> Result<Response, ConsoleError> {
    let Some(operator) = ctx.operator.as_ref() else {
        return Ok(to_login());
    };
    let page = operators::audit_log(&app, operator, q.before, &ip).await.or_console(&ctx)?;
    let rows = page
        .rows
        .into_iter()
        .map(|r| AuditRowView {
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
        })
        .collect();
    let next = page.next_before.map(|seq| format!("/console/audit?before={seq}"));
    Ok(render(StatusCode::OK, &AuditPage { c: Chrome::from(&ctx), rows, next }))
}

// ---------------------------------------------------------------------------------------
// Customer-center inquiries (F6): both roles

struct InquiryRowView {
    id: String,
    reference: String,
    received_at: String,
    category: &'static str,
    status: String,
    status_label: &'static str,
    linked: &'static str,
}

#[derive(Template)]
#[template(path = "console_inquiries.html")]
struct InquiriesPage {
    c: Chrome,
    rows: Vec<InquiryRowView>,
    notice: Option<&'static str>,
}

#[derive(Deserialize)]
struct NoticeQuery {
    done: Option<String>,
}

async fn inquiries_page(State(app): State<AppState>, Extension(ctx): Cx, Query(q): Query<NoticeQuery>) -> Result<Response, ConsoleError> {
    if ctx.operator.is_none() {
        return Ok(to_login());
    }
    let tr = ctx.tr;
    let rows = inquiry::inbox(&app)
        .await
        .or_console(&ctx)?
        .into_iter()
        .map(|i| InquiryRowView {
            received_at: jst(i.created_at),
            category: inquiry::category_label(tr.locale, &i.category),
            status_label: tr.t(&format!("console.inquiry.status.{}", i.status)),
            linked: tr.t(if i.linked { "console.yes" } else { "console.no" }),
            id: i.id,
            reference: i.reference,
            status: i.status,
        })
        .collect();
    let notice = (q.done.as_deref() == Some("closed")).then(|| tr.t("console.notice.inquiry_closed"));
    Ok(render(StatusCode::OK, &InquiriesPage { c: Chrome::from(&ctx), rows, notice }))
}

struct ReplyRowView {
    by: String,
    at: String,
    body: String,
}

#[derive(Template)]
#[template(path = "console_inquiry.html")]
struct InquiryPage {
    c: Chrome,
    id: String,
    reference: String,
    fields: Vec<Field>,
    message: String,
    replies: Vec<ReplyRowView>,
    closed: bool,
    reply_max: usize,
    draft: String,
    error: Option<String>,
    notice: Option<&'static str>,
}

fn inquiry_view(ctx: &ConsoleCtx, d: inquiry::Detail, draft: String, error: Option<String>, notice: Option<&'static str>) -> InquiryPage {
    let tr = ctx.tr;
    let r = &d.record;
    let mut fields = vec![
        Field { label: tr.t("console.inquiries.received_at"), value: jst(r.created_at) },
        Field { label: tr.t("console.inquiries.category"), value: inquiry::category_label(tr.locale, &r.category).to_string() },
        Field { label: tr.t("console.inquiries.status"), value: tr.t(&format!("console.inquiry.status.{}", r.status)).to_string() },
        Field { label: tr.t("console.inquiry.email"), value: d.email.clone() },
        Field { label: tr.t("console.inquiry.account"), value: r.user_id.clone().unwrap_or_else(|| tr.t("console.none").to_string()) },
        Field { label: tr.t("console.inquiry.language"), value: r.locale.clone() },
    ];
    if let Some(at) = r.closed_at {
        fields.push(Field { label: tr.t("console.inquiry.closed_at"), value: jst(at) });
    }
    InquiryPage {
        c: Chrome::from(ctx),
        id: r.id.clone(),
        reference: d.reference.clone(),
        closed: r.status == "closed",
        fields,
        replies: d.replies.into_iter().map(|x| ReplyRowView { by: x.operator_name, at: jst(x.at), body: x.body }).collect(),
        message: d.message,
        reply_max: inquiry::REPLY_MAX_CHARS,
        draft,
        error,
        notice,
    }
}

async fn inquiry_page(
    State(app): State<AppState>,
    Extension(ctx): Cx,
    ClientIp(ip): ClientIp,
    Path(id): Path<String>,
    Query(q): Query<NoticeQuery>,
) -> Result<Response, ConsoleError> {
    let Some(operator) = ctx.operator.as_ref() else {
        return Ok(to_login());
    };
    let detail = inquiry::detail(&app, operator, &id, &ip).await.or_console(&ctx)?;
    let notice = (q.done.as_deref() == Some("replied")).then(|| ctx.tr.t("console.notice.inquiry_replied"));
    Ok(render(StatusCode::OK, &inquiry_view(&ctx, detail, String::new(), None, notice)))
}

#[derive(Deserialize)]
struct ReplyForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    reply: String,
}

async fn inquiry_reply(
    State(app): State<AppState>,
    Extension(ctx): Cx,
    ClientIp(ip): ClientIp,
    Path(id): Path<String>,
    Form(f): Form<ReplyForm>,
) -> Result<Response, ConsoleError> {
    ctx.check_csrf(&f.csrf).or_console(&ctx)?;
    let Some(operator) = ctx.operator.as_ref() else {
        return Ok(to_login());
    };
    match inquiry::reply(&app, operator, &id, &f.reply, &ip).await {
        Ok(()) => Ok(see_other(&format!("/console/inquiries/{id}?done=replied"))),
        Err(e @ (ServiceError::InquiryReplyEmpty | ServiceError::InquiryReplyTooLong)) => {
            let detail = inquiry::detail(&app, operator, &id, &ip).await.or_console(&ctx)?;
            let page = inquiry_view(&ctx, detail, f.reply, Some(e.message(ctx.locale())), None);
            Ok(render(e.status(), &page))
        }
        Err(e) => Err(e).or_console(&ctx),
    }
}

async fn inquiry_close(
    State(app): State<AppState>,
    Extension(ctx): Cx,
    ClientIp(ip): ClientIp,
    Path(id): Path<String>,
    Form(f): Form<CsrfOnly>,
) -> Result<Response, ConsoleError> {
    ctx.check_csrf(&f.csrf).or_console(&ctx)?;
    let Some(operator) = ctx.operator.as_ref() else {
        return Ok(to_login());
    };
    inquiry::close(&app, operator, &id, &ip).await.or_console(&ctx)?;
    Ok(see_other("/console/inquiries?done=closed"))
}
