//! Console: health-record imports (administrators). `GET /console/imports` has the upload
//! form (kind, organization, file) and the recent jobs of every node (kept in the database); the upload (multipart, its own
//! body limit, see `http::IMPORT_LIMIT`) starts a background job and redirects to its page,
//! which shows a `<progress>` bar and reloads itself (no script) until the job has written
//! everything or refused the file with every problem listed.

use std::sync::Arc;

use askama::Template;
use axum::extract::{FromRequest, Multipart, Request, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Extension, Router};

use super::{console_context, jst_secs, to_login, Chrome, ConsoleCtx, ConsoleError, Cx, IdPath, OrConsole};
use crate::extract::{multipart_csrf_first, CsrfScope};
use crate::member::{render, see_other};
use crate::ClientIp;
use app::error::ServiceError;
use app::services::imports::{self, ImportKind, Job, JobState};
use app::AppState;
use domain::ids::ImportJobId;

pub fn routes() -> Router<AppState> {
    Router::new().route("/console/imports", get(imports_page)).route("/console/imports/{id}", get(job_page))
}

/// The upload, on the router with the import body limit.
pub fn upload_routes(app: AppState) -> Router<AppState> {
    Router::new()
        .route("/console/imports", post(upload))
        .layer(axum::middleware::from_fn_with_state(app, console_context))
}

fn kind_label(kind: ImportKind) -> &'static str {
    match kind {
        ImportKind::Checkups => "console.imports.kind.checkups",
        ImportKind::Medications => "console.imports.kind.medications",
        ImportKind::Expenses => "console.imports.kind.expenses",
        ImportKind::Roster => "console.imports.kind.roster",
    }
}

struct JobRow {
    id: String,
    kind: &'static str,
    insurer_number: String,
    file_name: String,
    started_at: String,
    status: &'static str,
}

#[derive(Template)]
#[template(path = "console_imports.html")]
struct ImportsPage {
    c: Chrome,
    kinds: Vec<(&'static str, &'static str)>,
    orgs: Vec<(String, String)>,
    jobs: Vec<JobRow>,
    error: Option<String>,
}

fn status_key(state: &JobState) -> &'static str {
    match state {
        JobState::Running { .. } => "console.imports.status.running",
        JobState::Done { .. } => "console.imports.status.done",
        JobState::Refused { .. } => "console.imports.status.refused",
        JobState::Failed => "console.imports.status.failed",
    }
}

async fn imports_view(app: &AppState, ctx: &ConsoleCtx, error: Option<String>) -> Result<ImportsPage, ConsoleError> {
    let Some(operator) = ctx.operator.as_ref() else {
        return Err(ServiceError::Unauthorized).or_console(ctx);
    };
    let jobs = imports::jobs(app, operator).await.or_console(ctx)?;
    let orgs = app.store.list_orgs().await.map_err(ServiceError::from).or_console(ctx)?;
    Ok(ImportsPage {
        c: Chrome::from(ctx),
        kinds: ImportKind::ALL.iter().map(|k| (k.as_str(), ctx.tr.t(kind_label(*k)))).collect(),
        orgs: orgs.into_iter().map(|o| (o.insurer_number.as_str().to_string(), o.name)).collect(),
        jobs: jobs
            .into_iter()
            .map(|j| JobRow {
                kind: ctx.tr.t(kind_label(j.kind)),
                status: ctx.tr.t(status_key(&j.state)),
                started_at: jst_secs(j.started_at),
                id: j.id,
                insurer_number: j.insurer_number,
                file_name: j.file_name,
            })
            .collect(),
        error,
    })
}

async fn imports_page(State(app): State<AppState>, Extension(ctx): Cx) -> Result<Response, ConsoleError> {
    if ctx.operator.is_none() {
        return Ok(to_login());
    }
    let page = imports_view(&app, &ctx, None).await?;
    Ok(render(StatusCode::OK, &page))
}

/// The multipart form: kind, insurer number and the file. Only a signed-in operator's upload
/// is read, and only after its first part, the CSRF token, matched the console's
/// ([`multipart_csrf_first`]; like every console form's, see [`crate::extract::CsrfForm`]).
struct UploadForm {
    kind: String,
    org: String,
    file_name: String,
    bytes: Vec<u8>,
}

/// The form after its CSRF part.
async fn read_upload(mut mp: Multipart) -> Result<UploadForm, ServiceError> {
    let mut form = UploadForm { kind: String::new(), org: String::new(), file_name: String::new(), bytes: Vec::new() };
    let unreadable = |_| ServiceError::InvalidRequest("unreadable upload".into());
    while let Some(field) = mp.next_field().await.map_err(unreadable)? {
        match field.name().unwrap_or("") {
            "kind" => form.kind = field.text().await.map_err(unreadable)?,
            "org" => form.org = field.text().await.map_err(unreadable)?,
            "file" => {
                form.file_name = field.file_name().unwrap_or("upload").to_string();
                form.bytes = field.bytes().await.map_err(unreadable)?.to_vec();
            }
            _ => {}
        }
    }
    Ok(form)
}

impl<S: Send + Sync> FromRequest<S> for UploadForm {
    type Rejection = Response;

    async fn from_request(req: Request, state: &S) -> Result<Self, Response> {
        let Some(ctx) = req.extensions().get::<Arc<ConsoleCtx>>().cloned() else {
            tracing::error!("UploadForm used on a route without the console context");
            return Err(StatusCode::INTERNAL_SERVER_ERROR.into_response());
        };
        // Signed out: to the login, without reading the file.
        if ctx.operator.is_none() {
            return Err(to_login());
        }
        let mut mp = Multipart::from_request(req, state).await.map_err(IntoResponse::into_response)?;
        multipart_csrf_first(&mut mp, ctx.expected_csrf()).await.map_err(|e| ctx.refuse(e))?;
        read_upload(mp).await.map_err(|e| ctx.error(e).into_response())
    }
}

async fn upload(
    State(app): State<AppState>,
    Extension(ctx): Cx,
    ClientIp(ip): ClientIp,
    form: UploadForm,
) -> Result<Response, ConsoleError> {
    let Some(operator) = ctx.operator.as_ref() else {
        return Ok(to_login());
    };
    let Some(kind) = ImportKind::parse(&form.kind) else {
        return Err(ServiceError::InvalidRequest("kind".into())).or_console(&ctx);
    };
    match imports::start(&app, operator, kind, &form.org, &form.file_name, form.bytes, &ip).await {
        Ok(id) => Ok(see_other(&format!("/console/imports/{id}"))),
        Err(e @ (ServiceError::UnknownOrganization | ServiceError::InvalidRequest(_))) => {
            let message = match e {
                ServiceError::InvalidRequest(_) => ctx.tr.t("console.imports.no_file").to_string(),
                other => other.message(ctx.locale()),
            };
            let page = imports_view(&app, &ctx, Some(message)).await?;
            Ok(render(StatusCode::UNPROCESSABLE_ENTITY, &page))
        }
        Err(e) => Err(e).or_console(&ctx),
    }
}

#[derive(Template)]
#[template(path = "console_import.html")]
struct JobPage {
    c: Chrome,
    kind: &'static str,
    insurer_number: String,
    file_name: String,
    started_at: String,
    running: bool,
    done: u64,
    total: u64,
    percent: u64,
    /// (records, new, unchanged) when everything was written.
    written: Option<(u64, u64, u64)>,
    /// A roster import's changed records and those whose eligibility it ended.
    roster: Option<(u64, u64)>,
    /// 「codeSystem なしの検査項目コード N 件を JLAC10 として読み取りました」, when N > 0.
    codes_without_system: Option<String>,
    /// The caption of the files not imported (with their count), and (file, reason) rows.
    skipped_caption: String,
    skipped: Vec<(String, &'static str)>,
    /// 「ほか N 件は表示していません」 when the list is cut.
    skipped_more: Option<String>,
    refused: Option<String>,
    entries: Vec<(String, String)>,
    /// The job's node stopped before it finished (nothing written).
    failed: Option<&'static str>,
}

fn job_view(ctx: &ConsoleCtx, job: Job) -> JobPage {
    let mut page = JobPage {
        c: Chrome::from(ctx),
        kind: ctx.tr.t(kind_label(job.kind)),
        insurer_number: job.insurer_number,
        file_name: job.file_name,
        started_at: jst_secs(job.started_at),
        running: false,
        done: 0,
        total: 0,
        percent: 0,
        written: None,
        roster: None,
        codes_without_system: None,
        skipped_caption: String::new(),
        skipped: Vec::new(),
        skipped_more: None,
        refused: None,
        entries: Vec::new(),
        failed: None,
    };
    match job.state {
        JobState::Running { done, total } => {
            page.running = true;
            page.done = done;
            page.total = total;
            page.percent = (done * 100).checked_div(total).unwrap_or(0);
        }
        JobState::Done { records, inserted, unchanged, notes } => {
            page.done = records;
            page.total = records;
            page.percent = 100;
            page.written = Some((records, inserted, unchanged));
            page.roster = notes.roster.as_ref().map(|r| (r.updated, r.ended));
            let count = |key: &str, n: u64| ctx.tr.tf(key, "n", &n.to_string());
            if notes.codes_without_system > 0 {
                page.codes_without_system =
                    Some(count("console.imports.codes_without_system", notes.codes_without_system));
            }
            page.skipped_caption = count("console.imports.skipped_files", notes.skipped_files_total);
            let listed = notes.skipped_files.len() as u64;
            if notes.skipped_files_total > listed {
                page.skipped_more = Some(count("console.imports.skipped_more", notes.skipped_files_total - listed));
            }
            page.skipped = notes
                .skipped_files
                .into_iter()
                .map(|s| (s.entry, ctx.tr.t(&format!("console.imports.skip.{}", s.reason))))
                .collect();
        }
        JobState::Refused { reason, entries } => {
            page.refused =
                Some(if entries.is_empty() { reason } else { ctx.tr.t("console.imports.refused_entries").to_string() });
            page.entries = entries;
        }
        JobState::Failed => page.failed = Some(ctx.tr.t("console.imports.failed")),
    }
    page
}

async fn job_page(
    State(app): State<AppState>,
    Extension(ctx): Cx,
    IdPath(id): IdPath<ImportJobId>,
) -> Result<Response, ConsoleError> {
    let Some(operator) = ctx.operator.as_ref() else {
        return Ok(to_login());
    };
    let job = imports::job(&app, operator, &id).await.or_console(&ctx)?;
    Ok(render(StatusCode::OK, &job_view(&ctx, job)))
}
