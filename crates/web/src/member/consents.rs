//! 同意 (#16 point 8) as member pages: the public document pages (`/documents/{kind}`, with
//! `?org=` for an organization's own version, and `/documents/{kind}/{version}`), 「規約等の
//! 改定への同意」 (`/consents/renew`), the purpose consents before F4 and F5
//! (`/consents/biometric`, `/consents/health_data`) and 「同意の確認・撤回」 (`/consents`).
//!
//! [`consent_gate`] keeps a member who owes a re-consent on `/consents/renew`: every other
//! member page answers with a redirect there, except logout, help/inquiry, the documents
//! themselves and the static files.

use askama::Template;
use axum::extract::{Path, Query, Request, State};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Extension, Router};
use domain::consent::ConsentDoc;
use serde::Deserialize;
use std::sync::Arc;

use app::error::ServiceError;
use app::services::consents::{self, ConsentStatus, Document};
use app::AppState;

use super::{inline, ok, render, see_other, Chrome, Cx, MemberForm, OrPage, PageError};
use crate::ctx::Ctx;
use crate::error::ErrorStatus;
use crate::extract::Empty;
use crate::ClientIp;

pub(super) fn routes() -> Router<AppState> {
    Router::new()
        .route("/documents/{kind}", get(document_current))
        .route("/documents/{kind}/{version}", get(document_version))
        .route("/consents", get(list))
        .route("/consents/renew", get(renew_form).post(renew))
        .route("/consents/{kind}", get(purpose_form).post(purpose_give))
        .route("/consents/{kind}/withdraw", get(withdraw_confirm).post(withdraw))
}

/// Paths a member who owes a re-consent may still open. 「同意の確認・撤回」 and the
/// withdrawals stay open: a member may refuse a purpose consent's new version by withdrawing
/// it (it is then no longer owed) instead of being made to accept it first.
fn open_during_renewal(path: &str) -> bool {
    path == "/consents/renew"
        || path == "/consents"
        || (path.starts_with("/consents/") && path.ends_with("/withdraw"))
        || path == "/logout"
        || path == "/login"
        || path.starts_with("/documents/")
        || path.starts_with("/inquiry")
        || path.starts_with("/static/")
        || path.starts_with("/lang/")
        || path == "/dev/mail"
}

/// Sends a signed-in member who has not accepted a document's new version to
/// 「規約等の改定への同意」 (after the browser context, on every member route).
pub async fn consent_gate(State(app): State<AppState>, req: Request, next: Next) -> Response {
    let ctx = req.extensions().get::<Arc<Ctx>>().cloned();
    if let Some(ctx) = ctx {
        if let Some(member) = &ctx.member {
            if !open_during_renewal(&ctx.path) {
                match consents::pending(&app, member).await {
                    Ok(p) if !p.is_empty() => return see_other("/consents/renew"),
                    Ok(_) => {}
                    Err(e) => return PageError::new(e, &ctx).into_response(),
                }
            }
        }
    }
    next.run(req).await
}

/// Where to go after a consent: a local path only (never another site).
fn safe_next(next: Option<&str>) -> Option<String> {
    // No whitespace or control characters either: browsers drop tabs and line breaks from a
    // Location, so `/\t/evil.example` would become `//evil.example`.
    next.filter(|n| {
        n.starts_with('/')
            && !n.starts_with("//")
            && !n.contains('\\')
            && !n.contains("://")
            && !n.chars().any(|c| c.is_control() || c.is_whitespace())
    })
    .map(str::to_string)
}

/// The page that asks for the consents a [`ServiceError::ConsentRequired`] names, coming
/// back to `from` afterwards.
pub(crate) fn consent_page_for(docs: &[ConsentDoc], from: &str) -> String {
    match docs {
        [doc] if doc.is_purpose() => match safe_next(Some(from)) {
            Some(n) => format!("/consents/{}?{}", doc.as_str(), query("next", &n)),
            None => format!("/consents/{}", doc.as_str()),
        },
        _ => "/consents/renew".into(),
    }
}

fn parse_kind(ctx: &Ctx, kind: &str) -> Result<ConsentDoc, PageError> {
    ConsentDoc::parse(kind).ok_or(ServiceError::DocumentNotFound).or_page(ctx)
}

// ---------------------------------------------------------------------------------------
// The documents

#[derive(Template)]
#[template(path = "document.html")]
struct DocumentPage {
    c: Chrome,
    doc: Document,
    paragraphs: Vec<Vec<String>>,
    /// Other versions: (version, link).
    history: Vec<(String, String)>,
    published: String,
}

#[derive(Deserialize)]
struct OrgQuery {
    org: Option<String>,
}

fn org_suffix(org: Option<&str>) -> String {
    org.map(|o| format!("?{}", query("org", o))).unwrap_or_default()
}

/// `name=value`, percent-encoded.
fn query(name: &str, value: &str) -> String {
    serde_urlencoded::to_string([(name, value)]).unwrap_or_default()
}

async fn show_document(
    app: &AppState,
    ctx: &Ctx,
    kind: &str,
    org: Option<String>,
    version: Option<&str>,
) -> Result<Response, PageError> {
    let doc = parse_kind(ctx, kind)?;
    // A signed-in member reads the versions of their own organization by default.
    let org = org.filter(|o| !o.is_empty()).or_else(|| ctx.member.as_ref().map(|m| m.user.org_id.clone()));
    let org = org.filter(|_| doc.per_organization());
    let (shown, history) = consents::document(app, doc, org.as_deref(), version, ctx.locale()).await.or_page(ctx)?;
    let suffix = org_suffix(org.as_deref());
    let history = history
        .into_iter()
        .filter(|(v, _)| *v != shown.version)
        .map(|(v, _)| (v.clone(), format!("/documents/{}/{}{}", doc.as_str(), v, suffix)))
        .collect();
    let published = date(shown.published_at);
    Ok(ok(&DocumentPage { c: Chrome::from(ctx), paragraphs: shown.paragraphs(), doc: shown, history, published }))
}

async fn document_current(
    State(app): State<AppState>,
    Extension(ctx): Cx,
    Path(kind): Path<String>,
    Query(q): Query<OrgQuery>,
) -> Result<Response, PageError> {
    show_document(&app, &ctx, &kind, q.org, None).await
}

async fn document_version(
    State(app): State<AppState>,
    Extension(ctx): Cx,
    Path((kind, version)): Path<(String, String)>,
    Query(q): Query<OrgQuery>,
) -> Result<Response, PageError> {
    show_document(&app, &ctx, &kind, q.org, Some(&version)).await
}

/// A date as the pages show it (JST).
fn date(t: time::OffsetDateTime) -> String {
    let d = t.to_offset(time::macros::offset!(+9)).date();
    format!("{:04}-{:02}-{:02}", d.year(), u8::from(d.month()), d.day())
}

// ---------------------------------------------------------------------------------------
// 「規約等の改定への同意」

struct RenewItem {
    name: &'static str,
    title: String,
    href: String,
    checked: bool,
}

#[derive(Template)]
#[template(path = "consents_renew.html")]
struct RenewPage {
    c: Chrome,
    items: Vec<RenewItem>,
    error: Option<String>,
}

async fn renew_page(
    app: &AppState,
    ctx: &Ctx,
    checked: &[ConsentDoc],
    error: Option<&ServiceError>,
) -> Result<Response, PageError> {
    let Some(member) = &ctx.member else {
        return Ok(see_other("/login"));
    };
    let pending = consents::pending(app, member).await.or_page(ctx)?;
    if pending.is_empty() {
        return Ok(see_other("/menu"));
    }
    let mut items = Vec::new();
    for doc in pending {
        let (d, _) = consents::document(app, doc, Some(&member.user.org_id), None, ctx.locale()).await.or_page(ctx)?;
        items.push(RenewItem {
            name: doc.as_str(),
            title: d.title,
            href: consents::document_path(doc, Some(&member.user.org_id)),
            checked: checked.contains(&doc),
        });
    }
    let page = RenewPage { c: Chrome::from(ctx), items, error: error.map(|e| e.message(ctx.locale())) };
    Ok(render(error.map(|e| e.status()).unwrap_or(axum::http::StatusCode::OK), &page))
}

async fn renew_form(State(app): State<AppState>, Extension(ctx): Cx) -> Result<Response, PageError> {
    renew_page(&app, &ctx, &[], None).await
}

/// One checkbox per document, named after it.
#[derive(Deserialize)]
struct RenewForm {
    platform_terms: Option<String>,
    org_privacy: Option<String>,
    point_terms: Option<String>,
    biometric: Option<String>,
    health_data: Option<String>,
}

async fn renew(
    State(app): State<AppState>,
    Extension(ctx): Cx,
    ClientIp(ip): ClientIp,
    MemberForm { 0: f, .. }: MemberForm<RenewForm>,
) -> Result<Response, PageError> {
    let Some(member) = &ctx.member else {
        return Ok(see_other("/login"));
    };
    let checked: Vec<ConsentDoc> = [
        (f.platform_terms.is_some(), ConsentDoc::PlatformTerms),
        (f.org_privacy.is_some(), ConsentDoc::OrgPrivacy),
        (f.point_terms.is_some(), ConsentDoc::PointTerms),
        (f.biometric.is_some(), ConsentDoc::Biometric),
        (f.health_data.is_some(), ConsentDoc::HealthData),
    ]
    .into_iter()
    .filter_map(|(on, doc)| on.then_some(doc))
    .collect();
    match consents::accept_revisions(&app, member, &checked, &ip).await {
        Ok(()) => Ok(see_other("/menu")),
        Err(e) if inline(&e) => renew_page(&app, &ctx, &checked, Some(&e)).await,
        Err(e) => Err(e).or_page(&ctx),
    }
}

// ---------------------------------------------------------------------------------------
// The purpose consents (F4, F5)

#[derive(Template)]
#[template(path = "consents_purpose.html")]
struct PurposePage {
    c: Chrome,
    kind: &'static str,
    title_key: &'static str,
    lead_key: &'static str,
    agree_key: &'static str,
    title: String,
    href: String,
    version: String,
    next: String,
    error: Option<String>,
}

#[derive(Deserialize)]
struct NextQuery {
    next: Option<String>,
}

async fn purpose_page(
    app: &AppState,
    ctx: &Ctx,
    doc: ConsentDoc,
    next: Option<&str>,
    error: Option<&ServiceError>,
) -> Result<Response, PageError> {
    let Some(member) = &ctx.member else {
        return Ok(see_other("/login"));
    };
    if !doc.is_purpose() {
        return Err(ServiceError::DocumentNotFound).or_page(ctx);
    }
    let (d, _) = consents::document(app, doc, Some(&member.user.org_id), None, ctx.locale()).await.or_page(ctx)?;
    let page = PurposePage {
        c: Chrome::from(ctx),
        kind: doc.as_str(),
        title_key: if doc == ConsentDoc::Biometric {
            "consents.purpose.biometric_title"
        } else {
            "consents.purpose.health_data_title"
        },
        lead_key: if doc == ConsentDoc::Biometric {
            "consents.purpose.biometric_lead"
        } else {
            "consents.purpose.health_data_lead"
        },
        agree_key: if doc == ConsentDoc::Biometric {
            "consents.purpose.agree_biometric"
        } else {
            "consents.purpose.agree_health_data"
        },
        title: d.title,
        href: consents::document_path(doc, Some(&member.user.org_id)),
        version: d.version,
        next: safe_next(next).unwrap_or_default(),
        error: error.map(|e| e.message(ctx.locale())),
    };
    Ok(render(error.map(|e| e.status()).unwrap_or(axum::http::StatusCode::OK), &page))
}

async fn purpose_form(
    State(app): State<AppState>,
    Extension(ctx): Cx,
    Path(kind): Path<String>,
    Query(q): Query<NextQuery>,
) -> Result<Response, PageError> {
    let doc = parse_kind(&ctx, &kind)?;
    purpose_page(&app, &ctx, doc, q.next.as_deref(), None).await
}

#[derive(Deserialize)]
struct PurposeForm {
    agree: Option<String>,
    next: Option<String>,
}

async fn purpose_give(
    State(app): State<AppState>,
    Extension(ctx): Cx,
    ClientIp(ip): ClientIp,
    Path(kind): Path<String>,
    MemberForm { 0: f, .. }: MemberForm<PurposeForm>,
) -> Result<Response, PageError> {
    let doc = parse_kind(&ctx, &kind)?;
    let Some(member) = &ctx.member else {
        return Ok(see_other("/login"));
    };
    if f.agree.is_none() {
        let e = ServiceError::ConsentsMissing(vec![doc]);
        return purpose_page(&app, &ctx, doc, f.next.as_deref(), Some(&e)).await;
    }
    consents::grant(&app, member, doc, &ip).await.or_page(&ctx)?;
    let fallback = match doc {
        ConsentDoc::Biometric => "/ekyc",
        ConsentDoc::HealthData => "/health/checkups",
        _ => "/consents",
    };
    Ok(see_other(&safe_next(f.next.as_deref()).unwrap_or_else(|| fallback.into())))
}

// ---------------------------------------------------------------------------------------
// 「同意の確認・撤回」

struct Line {
    kind: &'static str,
    name: String,
    href: String,
    accepted: Option<(String, String)>,
    withdrawn: Option<String>,
    current_version: String,
    up_to_date: bool,
    withdrawable: bool,
}

#[derive(Template)]
#[template(path = "consents.html")]
struct ListPage {
    c: Chrome,
    lines: Vec<Line>,
    notice: Option<&'static str>,
}

#[derive(Deserialize)]
struct ListQuery {
    withdrawn: Option<String>,
}

fn line(ctx: &Ctx, s: ConsentStatus, org: &domain::org::Organization) -> Line {
    Line {
        kind: s.doc.as_str(),
        name: app::i18n::consent_name(ctx.locale(), s.doc, org),
        href: s.path.clone(),
        accepted: s.accepted.as_ref().map(|(v, at)| (v.clone(), date(*at))),
        withdrawn: s.withdrawn_at.map(date),
        current_version: s.current_version.clone().unwrap_or_default(),
        up_to_date: s.up_to_date(),
        withdrawable: s.doc.is_purpose() && s.withdrawn_at.is_none() && s.accepted.is_some(),
    }
}

async fn list(
    State(app): State<AppState>,
    Extension(ctx): Cx,
    Query(q): Query<ListQuery>,
) -> Result<Response, PageError> {
    let Some(member) = &ctx.member else {
        return Ok(see_other("/login"));
    };
    let org = app::services::auth::profile(&app, member).await.or_page(&ctx)?.org;
    let statuses = consents::statuses(&app, member).await.or_page(&ctx)?;
    let lines = statuses.into_iter().map(|s| line(&ctx, s, &org)).collect();
    let notice = q.withdrawn.map(|_| "consents.withdrawn_notice");
    Ok(ok(&ListPage { c: Chrome::from(&ctx), lines, notice }))
}

#[derive(Template)]
#[template(path = "consents_withdraw.html")]
struct WithdrawPage {
    c: Chrome,
    kind: &'static str,
    name: String,
    effect: &'static str,
}

async fn withdraw_confirm(
    State(app): State<AppState>,
    Extension(ctx): Cx,
    Path(kind): Path<String>,
) -> Result<Response, PageError> {
    let doc = parse_kind(&ctx, &kind)?;
    let Some(member) = &ctx.member else {
        return Ok(see_other("/login"));
    };
    if !doc.is_purpose() {
        return Err(ServiceError::ConsentNotWithdrawable).or_page(&ctx);
    }
    let org = app::services::auth::profile(&app, member).await.or_page(&ctx)?.org;
    let effect = match doc {
        ConsentDoc::Biometric => "consents.withdraw.effect_biometric",
        _ => "consents.withdraw.effect_health_data",
    };
    Ok(ok(&WithdrawPage {
        c: Chrome::from(&ctx),
        kind: doc.as_str(),
        name: app::i18n::consent_name(ctx.locale(), doc, &org),
        effect,
    }))
}

async fn withdraw(
    State(app): State<AppState>,
    Extension(ctx): Cx,
    ClientIp(ip): ClientIp,
    Path(kind): Path<String>,
    _: MemberForm<Empty>,
) -> Result<Response, PageError> {
    let doc = parse_kind(&ctx, &kind)?;
    let Some(member) = &ctx.member else {
        return Ok(see_other("/login"));
    };
    consents::withdraw(&app, member, doc, &ip).await.or_page(&ctx)?;
    Ok(see_other("/consents?withdrawn=1"))
}
