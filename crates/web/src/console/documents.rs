//! Console: the versioned consent documents, and 「新しい版を公開」 (administrators). A new
//! version makes every member who accepted an older one accept again at their next page
//! (`app::services::consents`); the publication is audited.

use askama::Template;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use axum::Extension;
use domain::consent::ConsentDoc;
use serde::Deserialize;

use super::{jst, to_login, Chrome, ConsoleError, ConsoleForm, Cx, OrConsole};
use crate::error::ErrorStatus;
use crate::member::{render, see_other};
use crate::ClientIp;
use app::error::ServiceError;
use app::services::consents::{self, NewVersion};
use app::AppState;

struct Row {
    kind: &'static str,
    name: &'static str,
    org: String,
    org_id: String,
    version: String,
    title: String,
    published_at: String,
    published_by: String,
    current: bool,
}

struct Form {
    kind: String,
    org: String,
    title: String,
    body: String,
    title_en: String,
    body_en: String,
}

#[derive(Template)]
#[template(path = "console_documents.html")]
struct DocumentsPage {
    c: Chrome,
    rows: Vec<Row>,
    kinds: Vec<(&'static str, &'static str)>,
    orgs: Vec<(String, String)>,
    form: Option<Form>,
    notice: Option<String>,
    error: Option<String>,
}

#[derive(Deserialize)]
pub(super) struct PageQuery {
    /// Open the form for this document (prefilled with its current text).
    kind: Option<String>,
    org: Option<String>,
    published: Option<String>,
}

fn kind_label(doc: ConsentDoc) -> &'static str {
    match doc {
        ConsentDoc::PlatformTerms => "console.documents.kind.platform_terms",
        ConsentDoc::OrgPrivacy => "console.documents.kind.org_privacy",
        ConsentDoc::PointTerms => "console.documents.kind.point_terms",
        ConsentDoc::Biometric => "console.documents.kind.biometric",
        ConsentDoc::HealthData => "console.documents.kind.health_data",
    }
}

async fn page(
    app: &AppState,
    ctx: &super::ConsoleCtx,
    form: Option<Form>,
    notice: Option<String>,
    error: Option<&ServiceError>,
) -> Result<Response, ConsoleError> {
    let Some(operator) = ctx.operator.as_ref() else {
        return Ok(to_login());
    };
    let records = consents::console_list(app, operator).await.or_console(ctx)?;
    let orgs: Vec<(String, String)> = app
        .store
        .list_orgs()
        .await
        .map_err(ServiceError::from)
        .or_console(ctx)?
        .into_iter()
        .map(|o| (o.id, o.name))
        .collect();
    let everyone = ctx.tr.t("console.documents.platform").to_string();
    let mut seen = std::collections::HashSet::new();
    let rows = records
        .iter()
        .filter_map(|r| {
            let doc = ConsentDoc::parse(&r.kind)?;
            let org_id = r.organization.clone().unwrap_or_default();
            // Newest first: the first of each kind and organization is its current version.
            let current = seen.insert((r.kind.clone(), org_id.clone()));
            Some(Row {
                kind: doc.as_str(),
                name: ctx.tr.t(kind_label(doc)),
                org: orgs
                    .iter()
                    .find(|(id, _)| *id == org_id)
                    .map(|(_, n)| n.clone())
                    .unwrap_or_else(|| everyone.clone()),
                org_id,
                version: r.version.clone(),
                title: r.title.clone(),
                published_at: jst(r.published_at),
                published_by: r.published_by.clone(),
                current,
            })
        })
        .collect();
    let kinds = ConsentDoc::ALL.iter().map(|d| (d.as_str(), ctx.tr.t(kind_label(*d)))).collect();
    let status = error.map(|e| e.status()).unwrap_or(StatusCode::OK);
    let error = error.map(|e| e.message(ctx.locale()));
    Ok(render(status, &DocumentsPage { c: Chrome::from(ctx), rows, kinds, orgs, form, notice, error }))
}

pub(super) async fn documents_page(
    State(app): State<AppState>,
    Extension(ctx): Cx,
    Query(q): Query<PageQuery>,
) -> Result<Response, ConsoleError> {
    let Some(operator) = ctx.operator.as_ref() else {
        return Ok(to_login());
    };
    let form = match q.kind.as_deref().and_then(ConsentDoc::parse) {
        Some(doc) => {
            let org = q.org.clone().filter(|o| !o.is_empty() && doc.per_organization());
            // Prefilled with the version this kind and organization has now (the raw text).
            let records = consents::console_list(&app, operator).await.or_console(&ctx)?;
            let latest = records
                .iter()
                .find(|r| r.kind == doc.as_str() && r.organization == org)
                .or_else(|| records.iter().find(|r| r.kind == doc.as_str() && r.organization.is_none()));
            Some(Form {
                kind: doc.as_str().to_string(),
                org: org.unwrap_or_default(),
                title: latest.map(|r| r.title.clone()).unwrap_or_default(),
                body: latest.map(|r| r.body.clone()).unwrap_or_default(),
                title_en: latest.map(|r| r.title_en.clone()).unwrap_or_default(),
                body_en: latest.map(|r| r.body_en.clone()).unwrap_or_default(),
            })
        }
        None => None,
    };
    let notice = q.published.map(|v| ctx.tr.tf("console.documents.published_notice", "version", &v));
    page(&app, &ctx, form, notice, None).await
}

#[derive(Deserialize)]
pub(super) struct PublishForm {
    #[serde(default)]
    kind: String,
    #[serde(default)]
    org: String,
    #[serde(default)]
    title: String,
    #[serde(default)]
    body: String,
    #[serde(default)]
    title_en: String,
    #[serde(default)]
    body_en: String,
}

pub(super) async fn publish(
    State(app): State<AppState>,
    Extension(ctx): Cx,
    ClientIp(ip): ClientIp,
    ConsoleForm { 0: f, .. }: ConsoleForm<PublishForm>,
) -> Result<Response, ConsoleError> {
    let Some(operator) = ctx.operator.as_ref() else {
        return Ok(to_login());
    };
    let doc = ConsentDoc::parse(&f.kind).ok_or(ServiceError::DocumentInvalid("kind")).or_console(&ctx)?;
    let new = NewVersion {
        doc,
        org_id: Some(f.org.as_str()).filter(|o| !o.is_empty()),
        title: &f.title,
        body: &f.body,
        title_en: &f.title_en,
        body_en: &f.body_en,
    };
    match consents::publish(&app, operator, &new, &ip).await {
        Ok(version) => Ok(see_other(&format!("/console/documents?published={version}"))),
        Err(e @ ServiceError::DocumentInvalid(_)) => {
            let form = Form {
                kind: f.kind.clone(),
                org: f.org.clone(),
                title: f.title.clone(),
                body: f.body.clone(),
                title_en: f.title_en.clone(),
                body_en: f.body_en.clone(),
            };
            page(&app, &ctx, Some(form), None, Some(&e)).await
        }
        Err(e) => Err(e).or_console(&ctx),
    }
}
