//! F1 新規登録: organization type, insurer number, account, consents and the emailed
//! one-time password, each a state of one registration flow (`services::registration`).

use askama::Template;
use axum::extract::{Path, Query, State};
use axum::response::Response;
use axum::routing::{get, post};
use axum::{Extension, Router};
use domain::consent::ConsentDoc;
use domain::ids::FlowId;
use domain::org::{OrgType, Organization};
use domain::registration::RegistrationState;
use serde::Deserialize;

use app::error::ServiceError;
use app::i18n::Tr;
use app::services::auth::{self, SessionKind};
use app::services::registration;
use app::{App, AppState};
use store::MailFate;

use super::{inline, ok, render, see_other, with_sid, Chrome, Cx, IdPath, MemberForm, OrPage, PageError};
use crate::ctx::Ctx;
use crate::error::ErrorStatus;
use crate::extract::Empty;
use crate::ClientIp;

pub(super) fn routes() -> Router<AppState> {
    Router::new()
        .route("/register", post(register_start))
        .route("/register/{id}", get(register_show))
        .route("/register/{id}/org-type", post(register_org_type))
        .route("/register/{id}/insurer", post(register_insurer))
        .route("/register/{id}/account", get(register_account_form).post(register_account))
        .route("/register/{id}/consents", post(register_consents))
        .route("/register/{id}/code", post(register_code))
        .route("/register/{id}/resend", post(register_resend))
}

async fn register_start(
    State(app): State<AppState>,
    Extension(ctx): Cx,
    ClientIp(ip): ClientIp,
    _: MemberForm<Empty>,
) -> Result<Response, PageError> {
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
    /// The domain our mail comes from, for members whose carrier mail takes chosen senders only.
    mail_domain: String,
}

struct ConsentItem {
    name: &'static str,
    label: String,
    checked: bool,
    /// The document's name and page (opened in a new tab, so the form keeps what was entered).
    doc_name: String,
    href: String,
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
    /// The member's mail server refused the mail, or it could not go out while the code was
    /// valid: said plainly, with what to do.
    mail_problem: Option<String>,
    /// As [`RegAccount::mail_domain`].
    mail_domain: String,
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

fn consents_page(
    ctx: &Ctx,
    id: &str,
    org: Option<&Organization>,
    checked: &[ConsentDoc],
    error: Option<String>,
) -> RegConsents {
    let items = org
        .map(|org| {
            registration::required_consents(org)
                .into_iter()
                .map(|doc| ConsentItem {
                    name: doc.as_str(),
                    label: app::i18n::consent_label(ctx.locale(), doc, org),
                    checked: checked.contains(&doc),
                    doc_name: app::i18n::consent_name(ctx.locale(), doc, org),
                    href: app::services::consents::document_path(doc, Some(&org.id)),
                })
                .collect()
        })
        .unwrap_or_default();
    RegConsents { c: Chrome::from(ctx), id: id.to_string(), items, error }
}

fn code_page(
    app: &App,
    ctx: &Ctx,
    view: &registration::View,
    error: Option<String>,
    notice: Option<String>,
) -> RegCode {
    let email = view.flow.email.as_ref().map(|e| e.as_str().to_string()).unwrap_or_default();
    let mail_problem = match view.mail {
        Some(MailFate::Refused) => Some(ctx.tr.tf("reg.code.refused", "email", &email)),
        Some(MailFate::Dropped) => Some(ctx.tr.t("reg.code.dropped").to_string()),
        Some(MailFate::Pending | MailFate::Sent) | None => None,
    };
    RegCode {
        c: Chrome::from(ctx),
        id: view.flow.id.clone(),
        lead: ctx.tr.tf("reg.code.lead", "email", &email),
        error,
        notice,
        mail_problem,
        mail_domain: crate::ctx::mail_domain(&app.config.mail_from),
    }
}

#[derive(Deserialize)]
struct ShowQuery {
    resent: Option<String>,
}

async fn register_show(
    State(app): State<AppState>,
    Extension(ctx): Cx,
    Path(id): IdPath<FlowId>,
    Query(q): Query<ShowQuery>,
) -> Result<Response, PageError> {
    let id = id.or_page(&ctx)?;
    let view = registration::view(&app, &id).await.or_page(&ctx)?;
    let c = Chrome::from(&ctx);
    Ok(match view.flow.state {
        RegistrationState::Started => ok(&RegOrgType { c, id: id.into(), types: org_types(ctx.tr) }),
        RegistrationState::OrgTypeChosen => ok(&RegInsurer { c, id: id.into(), value: String::new(), error: None }),
        RegistrationState::OrgVerified => ok(&RegOrgVerified { c, id: id.into(), org_name: org_name(&view) }),
        RegistrationState::AccountEntered => ok(&consents_page(&ctx, &id, view.org.as_ref(), &[], None)),
        RegistrationState::CodeSent => {
            let notice = q.resent.map(|_| ctx.tr.t("reg.code.resent").to_string());
            ok(&code_page(&app, &ctx, &view, None, notice))
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
    org_type: String,
}

async fn register_org_type(
    State(app): State<AppState>,
    Extension(ctx): Cx,
    Path(id): IdPath<FlowId>,
    MemberForm { 0: f, .. }: MemberForm<OrgTypeForm>,
) -> Result<Response, PageError> {
    let org_type =
        OrgType::parse(&f.org_type).ok_or_else(|| ServiceError::InvalidRequest("org_type".into())).or_page(&ctx)?;
    let id = id.or_page(&ctx)?;
    registration::choose_org_type(&app, &id, org_type).await.or_page(&ctx)?;
    Ok(see_other(&format!("/register/{id}")))
}

#[derive(Deserialize)]
struct InsurerForm {
    #[serde(default)]
    insurer_number: String,
}

async fn register_insurer(
    State(app): State<AppState>,
    Extension(ctx): Cx,
    Path(id): IdPath<FlowId>,
    MemberForm { 0: f, .. }: MemberForm<InsurerForm>,
) -> Result<Response, PageError> {
    let id = id.or_page(&ctx)?;
    match registration::verify_insurer(&app, &id, &f.insurer_number).await {
        Ok(_) => Ok(see_other(&format!("/register/{id}"))),
        Err(e) if inline(&e) => {
            let error = Some(e.message(ctx.locale()));
            Ok(render(e.status(), &RegInsurer { c: Chrome::from(&ctx), id: id.into(), value: f.insurer_number, error }))
        }
        Err(e) => Err(e).or_page(&ctx),
    }
}

async fn register_account_form(
    State(app): State<AppState>,
    Extension(ctx): Cx,
    Path(id): IdPath<FlowId>,
) -> Result<Response, PageError> {
    let id = id.or_page(&ctx)?;
    let view = registration::view(&app, &id).await.or_page(&ctx)?;
    if !matches!(
        view.flow.state,
        RegistrationState::OrgVerified | RegistrationState::AccountEntered | RegistrationState::CodeSent
    ) {
        return Ok(see_other(&format!("/register/{id}")));
    }
    let email = view.flow.email.as_ref().map(|e| e.as_str().to_string()).unwrap_or_default();
    Ok(ok(&RegAccount {
        c: Chrome::from(&ctx),
        org_name: org_name(&view),
        id: id.into(),
        email,
        error: None,
        error_field: "",
        inquiry: false,
        mail_domain: crate::ctx::mail_domain(&app.config.mail_from),
    }))
}

#[derive(Deserialize)]
struct AccountForm {
    #[serde(default)]
    email: String,
    #[serde(default)]
    password: String,
}

async fn register_account(
    State(app): State<AppState>,
    Extension(ctx): Cx,
    ClientIp(ip): ClientIp,
    Path(id): IdPath<FlowId>,
    MemberForm { 0: f, .. }: MemberForm<AccountForm>,
) -> Result<Response, PageError> {
    let id = id.or_page(&ctx)?;
    match registration::enter_account(&app, &id, &f.email, &f.password, &ip).await {
        Ok(_) => Ok(see_other(&format!("/register/{id}"))),
        Err(e) if inline(&e) => {
            let view = registration::view(&app, &id).await.or_page(&ctx)?;
            let page = RegAccount {
                c: Chrome::from(&ctx),
                org_name: org_name(&view),
                id: id.into(),
                email: f.email,
                error: Some(e.message(ctx.locale())),
                error_field: e.field().unwrap_or(""),
                inquiry: matches!(e, ServiceError::EmailTaken),
                mail_domain: crate::ctx::mail_domain(&app.config.mail_from),
            };
            Ok(render(e.status(), &page))
        }
        Err(e) => Err(e).or_page(&ctx),
    }
}

#[derive(Deserialize)]
struct ConsentForm {
    platform_terms: Option<String>,
    org_privacy: Option<String>,
    point_terms: Option<String>,
}

async fn register_consents(
    State(app): State<AppState>,
    Extension(ctx): Cx,
    Path(id): IdPath<FlowId>,
    MemberForm { 0: f, .. }: MemberForm<ConsentForm>,
) -> Result<Response, PageError> {
    let id = id.or_page(&ctx)?;
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
    code: String,
}

async fn register_code(
    State(app): State<AppState>,
    Extension(ctx): Cx,
    ClientIp(ip): ClientIp,
    Path(id): IdPath<FlowId>,
    MemberForm { 0: f, .. }: MemberForm<CodeForm>,
) -> Result<Response, PageError> {
    let id = id.or_page(&ctx)?;
    match registration::verify_code(&app, &id, &f.code, &ip).await {
        Ok((_, user_id)) => {
            // Signed in straight away, on a new session id.
            let session = auth::create_session(&app, &user_id, SessionKind::Browser).await.or_page(&ctx)?;
            Ok(with_sid(see_other(&format!("/register/{id}")), session.token))
        }
        Err(e) if inline(&e) => code_error(&app, &ctx, &id, &e).await,
        Err(e) => Err(e).or_page(&ctx),
    }
}

async fn register_resend(
    State(app): State<AppState>,
    Extension(ctx): Cx,
    ClientIp(ip): ClientIp,
    Path(id): IdPath<FlowId>,
    _: MemberForm<Empty>,
) -> Result<Response, PageError> {
    let id = id.or_page(&ctx)?;
    match registration::resend_code(&app, &id, &ip).await {
        Ok(_) => Ok(see_other(&format!("/register/{id}?resent=1"))),
        Err(e) if inline(&e) => code_error(&app, &ctx, &id, &e).await,
        Err(e) => Err(e).or_page(&ctx),
    }
}

/// The code page again with a mistake the member can fix there (wrong code, resend too soon…).
async fn code_error(app: &App, ctx: &Ctx, id: &FlowId, e: &ServiceError) -> Result<Response, PageError> {
    let view = registration::view(app, id).await.or_page(ctx)?;
    Ok(render(e.status(), &code_page(app, ctx, &view, Some(e.message(ctx.locale())), None)))
}
