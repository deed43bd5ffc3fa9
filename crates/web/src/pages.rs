//! Server-rendered member pages (askama, ja/en): plain HTML forms, mobile first, every input
//! with a visible label and every action a real button or link with the guide's wording.
//! Each handler parses, calls one service function and renders.

use crate::error::ErrorStatus;
use std::sync::Arc;

use askama::Template;
use axum::extract::{Path, Query, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::{Extension, Form, Router};
use axum_extra::extract::cookie::Cookie;
use domain::consent::ConsentDoc;
use domain::org::{OrgType, Organization};
use domain::registration::RegistrationState;
use domain::reset::ResetState;
use serde::Deserialize;

use app::AppState;
use app::crypto::random_token;
use app::error::ServiceError;
use crate::ctx::{browser_context, Ctx, SetSid, LANG_COOKIE};
use crate::ClientIp;
use app::i18n::{Locale, Tr};
use app::services::auth::{self, SessionKind};
use app::services::identity;
use app::services::{registration, reset};
use domain::identity::{IdentityFailure, IdentityState};
use domain::org::CardPattern;

pub fn routes(app: AppState) -> Router<AppState> {
    Router::new()
        .route("/", get(landing))
        .route("/register", post(register_start))
        .route("/register/{id}", get(register_show))
        .route("/register/{id}/org-type", post(register_org_type))
        .route("/register/{id}/insurer", post(register_insurer))
        .route("/register/{id}/account", get(register_account_form).post(register_account))
        .route("/register/{id}/consents", post(register_consents))
        .route("/register/{id}/code", post(register_code))
        .route("/register/{id}/resend", post(register_resend))
        .route("/login", get(login_form).post(login))
        .route("/logout", post(logout))
        .route("/menu", get(menu))
        .route("/menu/org", get(org_menu))
        .route("/identity", get(identity_intro).post(identity_start))
        .route("/identity/{id}", get(identity_show))
        .route("/identity/{id}/insurer", post(identity_insurer))
        .route("/identity/{id}/card", post(identity_card))
        .route("/identity/{id}/person", post(identity_person))
        .route("/identity/{id}/confirm", post(identity_confirm))
        .route("/password-reset", get(reset_form).post(reset_start))
        .route("/password-reset/{id}", get(reset_show).post(reset_complete))
        .route("/password-reset/{id}/resend", post(reset_resend))
        .route("/lang/{code}", get(switch_language))
        .route("/dev/mail", get(dev_mail))
        .merge(super::ekyc_pages::routes())
        .merge(super::inquiry_pages::routes())
        .merge(super::health_pages::routes())
        .fallback(not_found)
        .layer(axum::middleware::from_fn_with_state(app, browser_context))
        .route("/static/app.css", get(stylesheet))
        .route("/static/camera.js", get(camera_script))
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
        Chrome { tr: ctx.tr, csrf: ctx.csrf.clone(), path: ctx.path.clone(), signed_in: ctx.member.is_some() }
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
    fn expected_csrf(&self) -> &str {
        &self.csrf
    }
    fn refuse(&self, err: ServiceError) -> Response {
        PageError { err, chrome: Chrome::from(self) }.into_response()
    }
}

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
        let (status, message) = match &self.err {
            ServiceError::InvalidRequest(what) if what == "csrf" => {
                (StatusCode::FORBIDDEN, self.chrome.t("error.csrf").to_string())
            }
            e => {
                if e.is_internal() {
                    tracing::error!(error = %e, "request failed");
                }
                (e.status(), e.message(self.chrome.tr.locale))
            }
        };
        let restart = self.err.restarts_flow();
        let inquiry = self.err.suggests_customer_center();
        let page = ErrorPage { c: self.chrome, message, inquiry, restart };
        render(status, &page)
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
        || matches!(e, ServiceError::RateLimited { .. } | ServiceError::InvalidCredentials | ServiceError::ResendTooSoon { .. })
}

fn with_sid(mut resp: Response, sid: String) -> Response {
    resp.extensions_mut().insert(SetSid(sid));
    resp
}

async fn not_found(Extension(ctx): Cx) -> Response {
    let c = Chrome::from(&ctx);
    render(StatusCode::NOT_FOUND, &ErrorPage { message: c.t("error.not_found").into(), c, inquiry: false, restart: false })
}

async fn stylesheet() -> Response {
    (
        [
            (header::CONTENT_TYPE, HeaderValue::from_static("text/css; charset=utf-8")),
            (header::CACHE_CONTROL, HeaderValue::from_static("public, max-age=3600")),
        ],
        include_str!("../static/app.css"),
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
        include_str!("../static/camera.js"),
    )
        .into_response()
}

// ---------------------------------------------------------------------------------------
// F0 landing

#[derive(Template)]
#[template(path = "landing.html")]
struct Landing<'a> {
    c: Chrome,
    qr_svg: &'a str,
}

async fn landing(State(app): State<AppState>, Extension(ctx): Cx) -> Response {
    ok(&Landing { c: Chrome::from(&ctx), qr_svg: &app.qr_svg })
}

#[derive(Deserialize)]
struct LangQuery {
    next: Option<String>,
}

async fn switch_language(Path(code): Path<String>, Query(q): Query<LangQuery>) -> Response {
    let locale = Locale::parse(&code).unwrap_or_default();
    // Only local paths: never an open redirect.
    let next = q
        .next
        .filter(|n| n.starts_with('/') && !n.starts_with("//") && !n.contains('\\'))
        .unwrap_or_else(|| "/".to_string());
    let cookie = Cookie::build((LANG_COOKIE, locale.as_str())).path("/").same_site(axum_extra::extract::cookie::SameSite::Lax).max_age(time::Duration::days(365)).build();
    let mut resp = see_other(&next);
    if let Ok(v) = HeaderValue::from_str(&cookie.to_string()) {
        resp.headers_mut().append(header::SET_COOKIE, v);
    }
    resp
}

// ---------------------------------------------------------------------------------------
// F1 registration

#[derive(Deserialize)]
pub(crate) struct CsrfOnly {
    #[serde(default)]
    pub csrf: String,
}

async fn register_start(State(app): State<AppState>, Extension(ctx): Cx, ClientIp(ip): ClientIp, _: MemberForm<crate::extract::Empty>) -> Result<Response, PageError> {
    let flow = registration::start(&app, ctx.locale(), &ip).await.or_page(&ctx)?;
    Ok(see_other(&format!("/register/{}", flow.id)))
}

#[derive(Template)]
#[template(path = "reg_org_type.html")]
struct RegOrgType {
    c: Chrome,
    id: String,
    types: Vec<(&'static str, &'static str)>,
}

#[derive(Template)]
#[template(path = "reg_insurer.html")]
struct RegInsurer {
    c: Chrome,
    id: String,
    value: String,
    error: Option<String>,
}

#[derive(Template)]
#[template(path = "reg_org_verified.html")]
struct RegOrgVerified {
    c: Chrome,
    id: String,
    org_name: String,
}

#[derive(Template)]
#[template(path = "reg_account.html")]
struct RegAccount {
    c: Chrome,
    id: String,
    org_name: String,
    email: String,
    error: Option<String>,
    error_field: &'static str,
    inquiry: bool,
}

struct ConsentItem {
    name: &'static str,
    label: String,
    checked: bool,
}

#[derive(Template)]
#[template(path = "reg_consents.html")]
struct RegConsents {
    c: Chrome,
    id: String,
    items: Vec<ConsentItem>,
    error: Option<String>,
}

#[derive(Template)]
#[template(path = "reg_code.html")]
struct RegCode {
    c: Chrome,
    id: String,
    lead: String,
    error: Option<String>,
    notice: Option<String>,
}

#[derive(Template)]
#[template(path = "reg_done.html")]
struct RegDone {
    c: Chrome,
    org_name: String,
    point_name: Option<String>,
    checkup_linked: bool,
}

fn org_name(view: &registration::View) -> String {
    view.org.as_ref().map(|o| o.name.clone()).unwrap_or_default()
}

fn consents_page(ctx: &Ctx, id: &str, org: Option<&Organization>, checked: &[ConsentDoc], error: Option<String>) -> RegConsents {
    let items = org
        .map(|org| {
            registration::required_consents(org)
                .into_iter()
                .map(|doc| ConsentItem { name: doc.as_str(), label: app::i18n::consent_label(ctx.locale(), doc, org), checked: checked.contains(&doc) })
                .collect()
        })
        .unwrap_or_default();
    RegConsents { c: Chrome::from(ctx), id: id.to_string(), items, error }
}

fn code_page(ctx: &Ctx, view: &registration::View, error: Option<String>, notice: Option<String>) -> RegCode {
    let email = view.flow.email.as_ref().map(|e| e.as_str().to_string()).unwrap_or_default();
    RegCode { c: Chrome::from(ctx), id: view.flow.id.clone(), lead: ctx.tr.tf("reg.code.lead", "email", &email), error, notice }
}

#[derive(Deserialize)]
struct ShowQuery {
    resent: Option<String>,
}

async fn register_show(State(app): State<AppState>, Extension(ctx): Cx, Path(id): Path<String>, Query(q): Query<ShowQuery>) -> Result<Response, PageError> {
    let view = registration::view(&app, &id).await.or_page(&ctx)?;
    let c = Chrome::from(&ctx);
    Ok(match view.flow.state {
        RegistrationState::Started => ok(&RegOrgType { c, id, types: org_types(ctx.tr) }),
        RegistrationState::OrgTypeChosen => ok(&RegInsurer { c, id, value: String::new(), error: None }),
        RegistrationState::OrgVerified => ok(&RegOrgVerified { c, id, org_name: org_name(&view) }),
        RegistrationState::AccountEntered => ok(&consents_page(&ctx, &id, view.org.as_ref(), &[], None)),
        RegistrationState::CodeSent => {
            let notice = q.resent.map(|_| ctx.tr.t("reg.code.resent").to_string());
            ok(&code_page(&ctx, &view, None, notice))
        }
        RegistrationState::Completed => ok(&RegDone {
            c,
            org_name: org_name(&view),
            point_name: view.org.as_ref().and_then(|o| o.point_name.clone()),
            checkup_linked: view.org.as_ref().is_some_and(|o| o.checkup_linked),
        }),
    })
}

fn org_types(tr: Tr) -> Vec<(&'static str, &'static str)> {
    OrgType::ALL.iter().map(|t| (t.as_str(), tr.t(&format!("org_type.{}", t.as_str())))).collect()
}

#[derive(Deserialize)]
struct OrgTypeForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    org_type: String,
}

async fn register_org_type(State(app): State<AppState>, Extension(ctx): Cx, Path(id): Path<String>, Form(f): Form<OrgTypeForm>) -> Result<Response, PageError> {
    ctx.check_csrf(&f.csrf).or_page(&ctx)?;
    let org_type = OrgType::parse(&f.org_type).ok_or_else(|| ServiceError::InvalidRequest("org_type".into())).or_page(&ctx)?;
    registration::choose_org_type(&app, &id, org_type).await.or_page(&ctx)?;
    Ok(see_other(&format!("/register/{id}")))
}

#[derive(Deserialize)]
struct InsurerForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    insurer_number: String,
}

async fn register_insurer(State(app): State<AppState>, Extension(ctx): Cx, Path(id): Path<String>, Form(f): Form<InsurerForm>) -> Result<Response, PageError> {
    ctx.check_csrf(&f.csrf).or_page(&ctx)?;
    match registration::verify_insurer(&app, &id, &f.insurer_number).await {
        Ok(_) => Ok(see_other(&format!("/register/{id}"))),
        Err(e) if inline(&e) => {
            let error = Some(e.message(ctx.locale()));
            Ok(render(e.status(), &RegInsurer { c: Chrome::from(&ctx), id, value: f.insurer_number, error }))
        }
        Err(e) => Err(e).or_page(&ctx),
    }
}

async fn register_account_form(State(app): State<AppState>, Extension(ctx): Cx, Path(id): Path<String>) -> Result<Response, PageError> {
    let view = registration::view(&app, &id).await.or_page(&ctx)?;
    if !matches!(view.flow.state, RegistrationState::OrgVerified | RegistrationState::AccountEntered) {
        return Ok(see_other(&format!("/register/{id}")));
    }
    let email = view.flow.email.as_ref().map(|e| e.as_str().to_string()).unwrap_or_default();
    Ok(ok(&RegAccount { c: Chrome::from(&ctx), org_name: org_name(&view), id, email, error: None, error_field: "", inquiry: false }))
}

#[derive(Deserialize)]
struct AccountForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    email: String,
    #[serde(default)]
    password: String,
}

async fn register_account(State(app): State<AppState>, Extension(ctx): Cx, ClientIp(ip): ClientIp, Path(id): Path<String>, Form(f): Form<AccountForm>) -> Result<Response, PageError> {
    ctx.check_csrf(&f.csrf).or_page(&ctx)?;
    match registration::enter_account(&app, &id, &f.email, &f.password, &ip).await {
        Ok(_) => Ok(see_other(&format!("/register/{id}"))),
        Err(e) if inline(&e) => {
            let view = registration::view(&app, &id).await.or_page(&ctx)?;
            let page = RegAccount {
                c: Chrome::from(&ctx),
                org_name: org_name(&view),
                id,
                email: f.email,
                error: Some(e.message(ctx.locale())),
                error_field: e.field().unwrap_or(""),
                inquiry: matches!(e, ServiceError::EmailTaken),
            };
            Ok(render(e.status(), &page))
        }
        Err(e) => Err(e).or_page(&ctx),
    }
}

#[derive(Deserialize)]
struct ConsentForm {
    #[serde(default)]
    csrf: String,
    platform_terms: Option<String>,
    org_privacy: Option<String>,
    point_terms: Option<String>,
}

async fn register_consents(State(app): State<AppState>, Extension(ctx): Cx, Path(id): Path<String>, Form(f): Form<ConsentForm>) -> Result<Response, PageError> {
    ctx.check_csrf(&f.csrf).or_page(&ctx)?;
    let checked: Vec<ConsentDoc> = [
        (f.platform_terms.is_some(), ConsentDoc::PlatformTerms),
        (f.org_privacy.is_some(), ConsentDoc::OrgPrivacy),
        (f.point_terms.is_some(), ConsentDoc::PointTerms),
    ]
    .into_iter()
    .filter_map(|(on, doc)| on.then_some(doc))
    .collect();
    match registration::accept_consents(&app, &id, &checked).await {
        Ok(_) => Ok(see_other(&format!("/register/{id}"))),
        Err(e) if inline(&e) => {
            let view = registration::view(&app, &id).await.or_page(&ctx)?;
            let page = consents_page(&ctx, &id, view.org.as_ref(), &checked, Some(e.message(ctx.locale())));
            Ok(render(e.status(), &page))
        }
        Err(e) => Err(e).or_page(&ctx),
    }
}

#[derive(Deserialize)]
struct CodeForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    code: String,
}

async fn register_code(State(app): State<AppState>, Extension(ctx): Cx, ClientIp(ip): ClientIp, Path(id): Path<String>, Form(f): Form<CodeForm>) -> Result<Response, PageError> {
    ctx.check_csrf(&f.csrf).or_page(&ctx)?;
    match registration::verify_code(&app, &id, &f.code, &ip).await {
        Ok((_, user_id)) => {
            // Signed in straight away, on a new session id.
            let session = auth::create_session(&app, &user_id, SessionKind::Browser).await.or_page(&ctx)?;
            Ok(with_sid(see_other(&format!("/register/{id}")), session.token))
        }
        Err(e) if inline(&e) => {
            let view = registration::view(&app, &id).await.or_page(&ctx)?;
            Ok(render(e.status(), &code_page(&ctx, &view, Some(e.message(ctx.locale())), None)))
        }
        Err(e) => Err(e).or_page(&ctx),
    }
}

async fn register_resend(State(app): State<AppState>, Extension(ctx): Cx, ClientIp(ip): ClientIp, Path(id): Path<String>, Form(f): Form<CsrfOnly>) -> Result<Response, PageError> {
    ctx.check_csrf(&f.csrf).or_page(&ctx)?;
    match registration::resend_code(&app, &id, &ip).await {
        Ok(_) => Ok(see_other(&format!("/register/{id}?resent=1"))),
        Err(e) if inline(&e) => {
            let view = registration::view(&app, &id).await.or_page(&ctx)?;
            Ok(render(e.status(), &code_page(&ctx, &view, Some(e.message(ctx.locale())), None)))
        }
        Err(e) => Err(e).or_page(&ctx),
    }
}

// ---------------------------------------------------------------------------------------
// F2 login, logout, menu

#[derive(Template)]
#[template(path = "login.html")]
struct LoginPage {
    c: Chrome,
    email: String,
    error: Option<String>,
}

async fn login_form(Extension(ctx): Cx) -> Response {
    if ctx.member.is_some() {
        return see_other("/menu");
    }
    ok(&LoginPage { c: Chrome::from(&ctx), email: String::new(), error: None })
}

#[derive(Deserialize)]
struct LoginForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    email: String,
    #[serde(default)]
    password: String,
}

async fn login(State(app): State<AppState>, Extension(ctx): Cx, ClientIp(ip): ClientIp, Form(f): Form<LoginForm>) -> Result<Response, PageError> {
    ctx.check_csrf(&f.csrf).or_page(&ctx)?;
    match auth::login(&app, &f.email, &f.password, &ip, SessionKind::Browser).await {
        Ok(session) => {
            // Rotate: the pre-login id (and any session on it) is dropped.
            auth::logout(&app, &ctx.sid).await.or_page(&ctx)?;
            Ok(with_sid(see_other("/menu"), session.token))
        }
        Err(e) if inline(&e) => {
            let page = LoginPage { c: Chrome::from(&ctx), email: f.email, error: Some(e.message(ctx.locale())) };
            Ok(render(e.status(), &page))
        }
        Err(e) => Err(e).or_page(&ctx),
    }
}

#[derive(Deserialize)]
struct LogoutForm {
    #[serde(default)]
    csrf: String,
    /// Where to land: the login page (error ① sends members to log in with their earlier
    /// email) or, by default, the start page.
    next: Option<String>,
}

async fn logout(State(app): State<AppState>, Extension(ctx): Cx, Form(f): Form<LogoutForm>) -> Result<Response, PageError> {
    ctx.check_csrf(&f.csrf).or_page(&ctx)?;
    auth::logout(&app, &ctx.sid).await.or_page(&ctx)?;
    let next = if f.next.as_deref() == Some("/login") { "/login" } else { "/" };
    Ok(with_sid(see_other(next), random_token()))
}

#[derive(Template)]
#[template(path = "menu.html")]
struct MenuPage {
    c: Chrome,
    email: String,
    org_name: String,
    point_name: Option<String>,
    verified: bool,
}

async fn menu(State(app): State<AppState>, Extension(ctx): Cx) -> Result<Response, PageError> {
    let Some(member) = &ctx.member else {
        return Ok(see_other("/login"));
    };
    let profile = auth::profile(&app, member).await.or_page(&ctx)?;
    let verified = identity::verified_at(&app, &member.user.id).await.or_page(&ctx)?.is_some();
    Ok(ok(&MenuPage { c: Chrome::from(&ctx), email: profile.email, org_name: profile.org.name, point_name: profile.org.point_name, verified }))
}

#[derive(Template)]
#[template(path = "org_menu.html")]
struct OrgMenuPage {
    c: Chrome,
    org_name: String,
    verified: bool,
    /// 「健診・医療アクセス認証」 and its status key: only for organizations with checkup
    /// results linked, and only after 本人確認.
    ekyc_status: Option<&'static str>,
    /// 「健診結果」「お薬履歴」「医療費通知」: after 健診・医療アクセス認証 is done.
    health: bool,
}

async fn org_menu(State(app): State<AppState>, Extension(ctx): Cx) -> Result<Response, PageError> {
    let Some(member) = &ctx.member else {
        return Ok(see_other("/login"));
    };
    let profile = auth::profile(&app, member).await.or_page(&ctx)?;
    let verified = identity::verified_at(&app, &member.user.id).await.or_page(&ctx)?.is_some();
    let (ekyc_status, health) = if verified && profile.org.checkup_linked {
        let current = app::services::ekyc::current(&app, member).await.or_page(&ctx)?;
        // The health items: F4 done (the secret question is asked on the way in).
        let health = current.as_ref().is_some_and(|l| l.data.app.is_authenticated());
        (Some(super::ekyc_pages::menu_status(current.as_ref())), health)
    } else {
        (None, false)
    };
    Ok(ok(&OrgMenuPage { c: Chrome::from(&ctx), org_name: profile.org.name, verified, ekyc_status, health }))
}

// ---------------------------------------------------------------------------------------
// F3 identity verification

#[derive(Template)]
#[template(path = "idv_intro.html")]
struct IdvIntro {
    c: Chrome,
}

#[derive(Template)]
#[template(path = "idv_insurer.html")]
struct IdvInsurer {
    c: Chrome,
    id: String,
    value: String,
    error: Option<String>,
}

#[derive(Template)]
#[template(path = "idv_card.html")]
struct IdvCard {
    c: Chrome,
    id: String,
    pattern: u8,
    pattern_label: &'static str,
    has_symbol: bool,
    symbol: String,
    number: String,
    branch: String,
    error: Option<String>,
    error_field: &'static str,
}

#[derive(Template)]
#[template(path = "idv_person.html")]
struct IdvPerson {
    c: Chrome,
    id: String,
    family: String,
    given: String,
    birth: String,
    error: Option<String>,
    error_field: &'static str,
}

#[derive(Template)]
#[template(path = "idv_confirm.html")]
struct IdvConfirm {
    c: Chrome,
    id: String,
    insurer_number: String,
    symbol: String,
    number: String,
    branch: String,
    name: String,
    birth: String,
}

#[derive(Template)]
#[template(path = "idv_result.html")]
struct IdvResult {
    c: Chrome,
    ok: bool,
    message_key: &'static str,
    inquiry: bool,
}

fn signed_in(ctx: &Ctx) -> Option<&app::services::auth::Member> {
    ctx.member.as_ref()
}

async fn identity_intro(State(app): State<AppState>, Extension(ctx): Cx) -> Result<Response, PageError> {
    let Some(member) = signed_in(&ctx) else { return Ok(see_other("/login")) };
    if identity::verified_at(&app, &member.user.id).await.or_page(&ctx)?.is_some() {
        return Ok(ok(&IdvResult { c: Chrome::from(&ctx), ok: true, message_key: "idv.done.lead", inquiry: false }));
    }
    Ok(ok(&IdvIntro { c: Chrome::from(&ctx) }))
}

async fn identity_start(State(app): State<AppState>, Extension(ctx): Cx, Form(f): Form<CsrfOnly>) -> Result<Response, PageError> {
    ctx.check_csrf(&f.csrf).or_page(&ctx)?;
    let Some(member) = signed_in(&ctx) else { return Ok(see_other("/login")) };
    let view = identity::start(&app, member).await.or_page(&ctx)?;
    Ok(see_other(&format!("/identity/{}", view.flow.id)))
}

fn pattern_label(p: CardPattern) -> &'static str {
    match p {
        CardPattern::HyphenatedNumber => "idv.card.pattern1",
        CardPattern::NumberOnly => "idv.card.pattern2",
        CardPattern::SymbolWithHyphen => "idv.card.pattern3",
        CardPattern::SymbolAndNumber => "idv.card.pattern4",
    }
}

fn card_page(ctx: &Ctx, view: &identity::View, input: Option<(&str, &str, &str)>, err: Option<&ServiceError>) -> IdvCard {
    let p = view.org.card_pattern;
    let (symbol, number, branch) = match (input, &view.flow.card) {
        (Some((s, n, b)), _) => (s.to_string(), n.to_string(), b.to_string()),
        (None, Some(card)) => (card.symbol.clone(), card.number.clone(), card.branch.clone().unwrap_or_default()),
        (None, None) => Default::default(),
    };
    IdvCard {
        c: Chrome::from(ctx),
        id: view.flow.id.clone(),
        pattern: p.number(),
        pattern_label: pattern_label(p),
        has_symbol: matches!(p, CardPattern::SymbolWithHyphen | CardPattern::SymbolAndNumber),
        symbol,
        number,
        branch,
        error: err.map(|e| e.message(ctx.locale())),
        error_field: err.and_then(ServiceError::field).unwrap_or(""),
    }
}

fn person_page(ctx: &Ctx, view: &identity::View, input: Option<(&str, &str, &str)>, err: Option<&ServiceError>) -> IdvPerson {
    let f = &view.flow;
    let (family, given, birth) = match input {
        Some((a, b, c)) => (a.to_string(), b.to_string(), c.to_string()),
        None => (
            f.family_name.clone().unwrap_or_default(),
            f.given_name.clone().unwrap_or_default(),
            f.birth_date.map(|d| d.to_string()).unwrap_or_default(),
        ),
    };
    IdvPerson {
        c: Chrome::from(ctx),
        id: f.id.clone(),
        family,
        given,
        birth,
        error: err.map(|e| e.message(ctx.locale())),
        error_field: err.and_then(ServiceError::field).unwrap_or(""),
    }
}

#[derive(Deserialize)]
struct StepQuery {
    step: Option<String>,
}

async fn identity_show(State(app): State<AppState>, Extension(ctx): Cx, Path(id): Path<String>, Query(q): Query<StepQuery>) -> Result<Response, PageError> {
    let Some(member) = signed_in(&ctx) else { return Ok(see_other("/login")) };
    let view = identity::view(&app, member, &id).await.or_page(&ctx)?;
    let state = view.flow.state;
    // 「修正する」: an earlier step again, while the verification is open.
    let step = match (q.step.as_deref(), identity::is_final(state)) {
        (Some("insurer"), false) => IdentityState::Started,
        (Some("card"), false) if state != IdentityState::Started => IdentityState::InsurerConfirmed,
        (Some("person"), false) if matches!(state, IdentityState::CardEntered | IdentityState::PersonEntered) => IdentityState::CardEntered,
        _ => state,
    };
    Ok(match step {
        IdentityState::Started => {
            let value = if state == IdentityState::Started { String::new() } else { view.org.insurer_number.to_string() };
            ok(&IdvInsurer { c: Chrome::from(&ctx), id, value, error: None })
        }
        IdentityState::InsurerConfirmed => ok(&card_page(&ctx, &view, None, None)),
        IdentityState::CardEntered => ok(&person_page(&ctx, &view, None, None)),
        IdentityState::PersonEntered => {
            let f = &view.flow;
            let card = f.card.clone().unwrap_or_else(|| domain::card::CardId { symbol: String::new(), number: String::new(), branch: None });
            ok(&IdvConfirm {
                c: Chrome::from(&ctx),
                id,
                insurer_number: view.org.insurer_number.to_string(),
                symbol: card.symbol,
                number: card.number,
                branch: card.branch.unwrap_or_default(),
                name: format!("{} {}", f.family_name.as_deref().unwrap_or(""), f.given_name.as_deref().unwrap_or("")),
                birth: f.birth_date.map(|d| d.to_string()).unwrap_or_default(),
            })
        }
        IdentityState::Completed => ok(&IdvResult { c: Chrome::from(&ctx), ok: true, message_key: "idv.done.lead", inquiry: false }),
        IdentityState::Failed => {
            let (message_key, inquiry) = match view.flow.failure {
                Some(IdentityFailure::AlreadyLinked) => ("idv.fail.already_linked", false),
                _ => ("idv.fail.no_match", true),
            };
            render(StatusCode::OK, &IdvResult { c: Chrome::from(&ctx), ok: false, message_key, inquiry })
        }
    })
}

#[derive(Deserialize)]
struct IdvInsurerForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    insurer_number: String,
}

async fn identity_insurer(State(app): State<AppState>, Extension(ctx): Cx, Path(id): Path<String>, Form(f): Form<IdvInsurerForm>) -> Result<Response, PageError> {
    ctx.check_csrf(&f.csrf).or_page(&ctx)?;
    let Some(member) = signed_in(&ctx) else { return Ok(see_other("/login")) };
    match identity::confirm_insurer(&app, member, &id, &f.insurer_number).await {
        Ok(_) => Ok(see_other(&format!("/identity/{id}?step=card"))),
        Err(e) if inline(&e) => {
            let page = IdvInsurer { c: Chrome::from(&ctx), id, value: f.insurer_number, error: Some(e.message(ctx.locale())) };
            Ok(render(e.status(), &page))
        }
        Err(e) => Err(e).or_page(&ctx),
    }
}

#[derive(Deserialize)]
struct IdvCardForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    symbol: String,
    #[serde(default)]
    number: String,
    #[serde(default)]
    branch: String,
}

async fn identity_card(State(app): State<AppState>, Extension(ctx): Cx, Path(id): Path<String>, Form(f): Form<IdvCardForm>) -> Result<Response, PageError> {
    ctx.check_csrf(&f.csrf).or_page(&ctx)?;
    let Some(member) = signed_in(&ctx) else { return Ok(see_other("/login")) };
    match identity::enter_card(&app, member, &id, &f.symbol, &f.number, &f.branch).await {
        Ok(view) => {
            let next = if view.flow.state == IdentityState::PersonEntered { "" } else { "?step=person" };
            Ok(see_other(&format!("/identity/{id}{next}")))
        }
        Err(e) if inline(&e) => {
            let view = identity::view(&app, member, &id).await.or_page(&ctx)?;
            Ok(render(e.status(), &card_page(&ctx, &view, Some((&f.symbol, &f.number, &f.branch)), Some(&e))))
        }
        Err(e) => Err(e).or_page(&ctx),
    }
}

#[derive(Deserialize)]
struct IdvPersonForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    family_name: String,
    #[serde(default)]
    given_name: String,
    #[serde(default)]
    birth_date: String,
}

async fn identity_person(State(app): State<AppState>, Extension(ctx): Cx, Path(id): Path<String>, Form(f): Form<IdvPersonForm>) -> Result<Response, PageError> {
    ctx.check_csrf(&f.csrf).or_page(&ctx)?;
    let Some(member) = signed_in(&ctx) else { return Ok(see_other("/login")) };
    match identity::enter_person(&app, member, &id, &f.family_name, &f.given_name, &f.birth_date).await {
        Ok(_) => Ok(see_other(&format!("/identity/{id}"))),
        Err(e) if inline(&e) => {
            let view = identity::view(&app, member, &id).await.or_page(&ctx)?;
            Ok(render(e.status(), &person_page(&ctx, &view, Some((&f.family_name, &f.given_name, &f.birth_date)), Some(&e))))
        }
        Err(e) => Err(e).or_page(&ctx),
    }
}

async fn identity_confirm(State(app): State<AppState>, Extension(ctx): Cx, Path(id): Path<String>, Form(f): Form<CsrfOnly>) -> Result<Response, PageError> {
    ctx.check_csrf(&f.csrf).or_page(&ctx)?;
    let Some(member) = signed_in(&ctx) else { return Ok(see_other("/login")) };
    identity::confirm(&app, member, &id).await.or_page(&ctx)?;
    Ok(see_other(&format!("/identity/{id}")))
}

// ---------------------------------------------------------------------------------------
// F2 password reset

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
    csrf: String,
    #[serde(default)]
    email: String,
}

async fn reset_start(State(app): State<AppState>, Extension(ctx): Cx, ClientIp(ip): ClientIp, Form(f): Form<ResetStartForm>) -> Result<Response, PageError> {
    ctx.check_csrf(&f.csrf).or_page(&ctx)?;
    match reset::start(&app, &f.email, ctx.locale(), &ip).await {
        Ok(flow) => Ok(see_other(&format!("/password-reset/{}", flow.id))),
        Err(e) if inline(&e) => {
            let page = ResetStartPage { c: Chrome::from(&ctx), email: f.email, error: Some(e.message(ctx.locale())) };
            Ok(render(e.status(), &page))
        }
        Err(e) => Err(e).or_page(&ctx),
    }
}

async fn reset_show(State(app): State<AppState>, Extension(ctx): Cx, Path(id): Path<String>, Query(q): Query<ShowQuery>) -> Result<Response, PageError> {
    let loaded = reset::load(&app, &id).await.or_page(&ctx)?;
    Ok(match loaded.flow.state {
        ResetState::CodeSent => {
            let notice = q.resent.map(|_| ctx.tr.t("reg.code.resent").to_string());
            ok(&ResetCodePage { c: Chrome::from(&ctx), id, error: None, notice })
        }
        ResetState::Completed => ok(&ResetDonePage { c: Chrome::from(&ctx) }),
    })
}

#[derive(Deserialize)]
struct ResetCompleteForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    code: String,
    #[serde(default)]
    new_password: String,
}

async fn reset_complete(State(app): State<AppState>, Extension(ctx): Cx, ClientIp(ip): ClientIp, Path(id): Path<String>, Form(f): Form<ResetCompleteForm>) -> Result<Response, PageError> {
    ctx.check_csrf(&f.csrf).or_page(&ctx)?;
    match reset::complete(&app, &id, &f.code, &f.new_password, &ip).await {
        Ok(_) => Ok(see_other(&format!("/password-reset/{id}"))),
        Err(e) if inline(&e) => {
            let page = ResetCodePage { c: Chrome::from(&ctx), id, error: Some(e.message(ctx.locale())), notice: None };
            Ok(render(e.status(), &page))
        }
        Err(e) => Err(e).or_page(&ctx),
    }
}

async fn reset_resend(State(app): State<AppState>, Extension(ctx): Cx, ClientIp(ip): ClientIp, Path(id): Path<String>, Form(f): Form<CsrfOnly>) -> Result<Response, PageError> {
    ctx.check_csrf(&f.csrf).or_page(&ctx)?;
    match reset::resend(&app, &id, &ip).await {
        Ok(_) => Ok(see_other(&format!("/password-reset/{id}?resent=1"))),
        Err(e) if inline(&e) => {
            let page = ResetCodePage { c: Chrome::from(&ctx), id, error: Some(e.message(ctx.locale())), notice: None };
            Ok(render(e.status(), &page))
        }
        Err(e) => Err(e).or_page(&ctx),
    }
}

// ---------------------------------------------------------------------------------------
// Demo: the file outbox

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
