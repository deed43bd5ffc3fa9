//! Imports started from the operator console: an administrator uploads a 特定健診 ZIP, an
//! お薬履歴 CSV or a 医療費通知 CSV (F5), or a roster (名簿) CSV, for an organization; the import
//! runs in the
//! background (all or nothing, like the CLI) and its page shows a progress bar, then what was
//! written or every refused entry.
//!
//! Jobs are kept in the database (`import_jobs`, issue #15 point 5), so every node lists every
//! job and shows its progress. The node running a job writes its progress and a heartbeat at
//! most once a second (and at least every [`HEARTBEAT_EVERY`] while it parses and matches),
//! then the outcome: counts and notes, or the refused entries with their reasons — never
//! personal data. A running job whose heartbeat is older than [`LEASE`] is marked failed when
//! jobs are read: its node stopped or restarted, and since the import is one transaction,
//! nothing of the file was written; the operator uploads it again (which duplicates nothing).
//! Every start is in the audit log with the organization.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use serde::{Deserialize, Serialize};
use store::ImportJobRecord;
use time::OffsetDateTime;

use crate::error::{ServiceError, ServiceResult};
use crate::services::operators::{self, Operator, Role};
use crate::services::roster::Progress;
use crate::services::{checkups, health_imports, new_id};
use crate::state::{App, AppState};

/// Jobs listed on the console's imports page.
const LISTED_JOBS: i64 = 200;

/// A running job whose heartbeat is older than this is marked failed (its node stopped).
pub const LEASE: time::Duration = time::Duration::seconds(60);

/// The longest a running job goes without a heartbeat (well within [`LEASE`]).
pub const HEARTBEAT_EVERY: std::time::Duration = std::time::Duration::from_secs(10);

/// How often the node looks at a job's progress: progress reaches the database at most this
/// often, however many rows a second are written.
const PROGRESS_EVERY: std::time::Duration = std::time::Duration::from_secs(1);

/// This node, as the owner of the jobs it runs: a random name per process start.
pub struct ImportNode {
    pub node: String,
}

impl Default for ImportNode {
    fn default() -> Self {
        ImportNode { node: new_id() }
    }
}

/// What a file holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ImportKind {
    /// 特定健診 HL7 CDA documents in a ZIP archive.
    Checkups,
    /// お薬履歴 CSV.
    Medications,
    /// 医療費通知 CSV.
    Expenses,
    /// The organization's roster (名簿) CSV, as `mimoto roster import` reads it.
    Roster,
}

impl ImportKind {
    pub const ALL: [ImportKind; 4] =
        [ImportKind::Checkups, ImportKind::Medications, ImportKind::Expenses, ImportKind::Roster];

    pub fn as_str(self) -> &'static str {
        match self {
            ImportKind::Checkups => "checkups",
            ImportKind::Medications => "medications",
            ImportKind::Expenses => "expenses",
            ImportKind::Roster => "roster",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|k| k.as_str() == s)
    }
}

/// Where a job stands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum JobState {
    /// Parsing and matching, or writing `done` of `total` records.
    Running { done: u64, total: u64 },
    /// Everything written: records in the file, new ones, ones replaced or already stored, and
    /// what a checkup import read or left out knowingly.
    Done { records: u64, inserted: u64, unchanged: u64, notes: ImportNotes },
    /// Nothing written: the file as a whole (`entries` empty) or these entries/lines.
    Refused { reason: String, entries: Vec<(String, String)> },
    /// The node running the job stopped before it finished (its heartbeat lapsed): the import's
    /// transaction was never committed, so nothing was written.
    Failed,
}

/// A file a checkup import did not read, and why ([`records::checkup::SkipReason::as_str`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SkippedFile {
    pub entry: String,
    pub reason: String,
}

/// What a written 特定健診 import read or left out knowingly (empty for CSV imports). Entry
/// names and reasons only, never personal data.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct ImportNotes {
    /// Observation codes without `codeSystem`, read as JLAC10 codes.
    pub codes_without_system: u64,
    /// Files not imported, with why (at most [`checkups::MAX_LISTED_SKIPPED`]).
    pub skipped_files: Vec<SkippedFile>,
    /// How many files were not imported in all.
    pub skipped_files_total: u64,
    /// What a roster import changed besides its new records.
    #[serde(default)]
    pub roster: Option<RosterNotes>,
}

/// A written roster import's changes besides its new records.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct RosterNotes {
    /// Stored records the file changed.
    pub updated: u64,
    /// Stored records absent from the file: their eligibility ended yesterday (Japan time).
    pub ended: u64,
}

/// A roster import's outcome as the job's: counts, or the problems by line number.
fn roster_outcome(
    result: Result<(store::ImportStats, crate::services::roster::Timings), crate::services::roster::ImportError>,
) -> Result<(u64, u64, u64, ImportNotes), ServiceError> {
    use crate::services::roster::ImportError;
    match result {
        Ok((stats, _)) => {
            let notes = ImportNotes {
                roster: Some(RosterNotes { updated: stats.updated, ended: stats.ended }),
                ..ImportNotes::default()
            };
            Ok((stats.rows, stats.inserted, stats.rows.saturating_sub(stats.inserted), notes))
        }
        Err(ImportError::Rows(errors)) => Err(ServiceError::HealthEntries(
            errors.into_iter().map(|e| records::health_csv::LineError { line: e.line, reason: e.message }).collect(),
        )),
        Err(e @ (ImportError::TooLarge { .. } | ImportError::Encoding(_) | ImportError::Empty)) => {
            Err(ServiceError::HealthCsv(e.to_string()))
        }
        Err(ImportError::Crypto(e)) => Err(e.into()),
        Err(ImportError::Store(e)) => Err(e.into()),
    }
}

/// The stored outcome of a finished job (`import_jobs.result`).
#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
enum Outcome {
    Done { records: u64, inserted: u64, unchanged: u64, notes: ImportNotes },
    Refused { reason: String, entries: Vec<(String, String)> },
}

#[derive(Debug, Clone)]
pub struct Job {
    pub id: String,
    pub kind: ImportKind,
    pub insurer_number: String,
    /// The organization's id (operators limited to organizations see their jobs only).
    pub org_id: String,
    pub file_name: String,
    pub operator_id: String,
    pub started_at: OffsetDateTime,
    pub state: JobState,
}

impl Job {
    /// The job as stored (an unknown kind or state, or an unreadable outcome, is an internal
    /// error).
    fn from_record(r: ImportJobRecord) -> ServiceResult<Self> {
        let kind = ImportKind::parse(&r.kind).ok_or_else(|| ServiceError::Internal(format!("job kind {}", r.kind)))?;
        let count = |n: i64| u64::try_from(n).unwrap_or(0);
        let corrupt = |e: serde_json::Error| ServiceError::Internal(format!("job {} outcome: {e}", r.id));
        let state = match (r.state.as_str(), r.result.as_deref()) {
            ("running", _) => JobState::Running { done: count(r.done), total: count(r.total) },
            ("failed", _) => JobState::Failed,
            ("done" | "refused", Some(json)) => match serde_json::from_str(json).map_err(corrupt)? {
                Outcome::Done { records, inserted, unchanged, notes } => {
                    JobState::Done { records, inserted, unchanged, notes }
                }
                Outcome::Refused { reason, entries } => JobState::Refused { reason, entries },
            },
            (state, _) => return Err(ServiceError::Internal(format!("job {} state {state}", r.id))),
        };
        Ok(Job {
            id: r.id,
            kind,
            insurer_number: r.insurer_number,
            org_id: r.org_id,
            file_name: r.file_name,
            operator_id: r.operator_id,
            started_at: r.started_at,
            state,
        })
    }
}

/// The write phase's progress, as the import reports it (read by the job's heartbeat).
#[derive(Default)]
struct Counter {
    done: AtomicU64,
    total: AtomicU64,
}

/// Reports the write phase into the job's [`Counter`].
struct JobProgress(Arc<Counter>);

impl Progress for JobProgress {
    fn written(&mut self, done: u64, total: u64) {
        self.0.total.store(total, Ordering::Relaxed);
        self.0.done.store(done, Ordering::Relaxed);
    }
}

fn as_count(n: u64) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

/// The job's heartbeat until it is aborted: the progress when it changed (looked at every
/// [`PROGRESS_EVERY`]), and at least every [`HEARTBEAT_EVERY`]. Stops when the job is no longer
/// running on this node.
async fn heartbeat(app: AppState, id: String, counter: Arc<Counter>) {
    let mut last = (0u64, 0u64);
    let mut written_at = std::time::Instant::now();
    let mut tick = tokio::time::interval(PROGRESS_EVERY);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        let now = (counter.done.load(Ordering::Relaxed), counter.total.load(Ordering::Relaxed));
        if now == last && written_at.elapsed() < HEARTBEAT_EVERY {
            continue;
        }
        match app.store.import_job_heartbeat(&id, &app.imports.node, as_count(now.0), as_count(now.1), app.now()).await
        {
            Ok(true) => {
                last = now;
                written_at = std::time::Instant::now();
            }
            Ok(false) => {
                tracing::warn!(job_id = %id, "import job no longer running on this node");
                return;
            }
            // The next tick tries again; a database away for longer than the lease fails the job.
            Err(e) => tracing::warn!(job_id = %id, error = %e, "import job heartbeat failed"),
        }
    }
}

/// Marks failed the running jobs whose node stopped (heartbeat older than [`LEASE`]); this
/// node's own jobs are alive while it is. Best effort: the pages show the jobs even when the
/// update cannot be made now (SQLite's write lock held by a running import).
async fn fail_lapsed(app: &App) {
    let now = app.now();
    match app.store.fail_lapsed_import_jobs(now - LEASE, now, &app.imports.node).await {
        Ok(0) => {}
        Ok(failed) => tracing::warn!(failed, "import jobs whose node stopped were marked failed"),
        Err(e) => tracing::warn!(error = %e, "lapsed import jobs not marked failed now"),
    }
}

/// Aborts the task when dropped, also when the code holding it unwinds from a panic.
struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

fn admin(operator: &Operator) -> ServiceResult<()> {
    if operator.role == Role::Admin {
        Ok(())
    } else {
        Err(ServiceError::Forbidden)
    }
}

/// The outcome of an import as the job stores it. Only entry names, line numbers and reasons
/// (never personal data) reach the database and the page.
fn finished(result: Result<(u64, u64, u64, ImportNotes), ServiceError>) -> Outcome {
    match result {
        Ok((records, inserted, unchanged, notes)) => Outcome::Done { records, inserted, unchanged, notes },
        Err(ServiceError::CheckupEntries(errors)) => Outcome::Refused {
            reason: "entries".into(),
            entries: errors.into_iter().map(|e| (e.entry, e.reason)).collect(),
        },
        Err(ServiceError::HealthEntries(errors)) => Outcome::Refused {
            reason: "entries".into(),
            entries: errors.into_iter().map(|e| (e.line.to_string(), e.reason)).collect(),
        },
        Err(ServiceError::CheckupArchive(reason) | ServiceError::HealthCsv(reason)) => {
            Outcome::Refused { reason, entries: Vec::new() }
        }
        Err(ServiceError::UnknownOrganization) => {
            Outcome::Refused { reason: "unknown organization".into(), entries: Vec::new() }
        }
        Err(e) => {
            tracing::error!(error = %e, "console import failed");
            Outcome::Refused { reason: "internal error (see the server log)".into(), entries: Vec::new() }
        }
    }
}

/// Starts importing `bytes` for the organization with `insurer_number` (administrators only);
/// returns the job's id at once.
#[tracing::instrument(skip_all, fields(operator_id = %operator.id, kind = ?kind))]
pub async fn start(
    app: &AppState,
    operator: &Operator,
    kind: ImportKind,
    insurer_number: &str,
    file_name: &str,
    bytes: Vec<u8>,
    ip: &str,
) -> ServiceResult<String> {
    admin(operator)?;
    // Either form of the number (`00` + 6 digits or 6 digits).
    let org = crate::services::health_match::find_org(app, insurer_number)
        .await?
        .filter(|o| operator.may_see_org(&o.id))
        .ok_or(ServiceError::UnknownOrganization)?;
    if bytes.is_empty() {
        return Err(ServiceError::InvalidRequest("file".into()));
    }
    let id = new_id();
    // The name is shown back to operators only; keep it short and printable.
    let file_name: String = file_name.chars().filter(|c| !c.is_control()).take(200).collect();
    operators::audit(
        app,
        Some(&operator.id),
        &format!("import.{}", kind.as_str()),
        Some(("organization", &org.id)),
        ip,
    )
    .await?;
    let now = app.now();
    app.store
        .create_import_job(&ImportJobRecord {
            id: id.clone(),
            kind: kind.as_str().to_string(),
            org_id: org.id.clone(),
            insurer_number: org.insurer_number.as_str().to_string(),
            file_name: file_name.clone(),
            operator_id: operator.id.clone(),
            started_at: now,
            state: "running".into(),
            done: 0,
            total: 0,
            result: None,
            node: app.imports.node.clone(),
            heartbeat_at: now,
            finished_at: None,
        })
        .await?;
    let (task_app, job_id, number) = (Arc::clone(app), id.clone(), org.insurer_number.as_str().to_string());
    let task_org = org.clone();
    tokio::spawn(async move {
        let counter = Arc::new(Counter::default());
        let beat = AbortOnDrop(tokio::spawn(heartbeat(Arc::clone(&task_app), job_id.clone(), Arc::clone(&counter))));
        let mut progress = JobProgress(Arc::clone(&counter));
        // The import runs in a task of its own: a panic in it ends as a refused job, recorded,
        // rather than a job left running.
        let import_app = Arc::clone(&task_app);
        let import = tokio::spawn(async move {
            let task_app = import_app;
            match kind {
                ImportKind::Checkups => {
                    checkups::import_zip_report(&task_app, &number, &file_name, bytes, &mut progress).await.map(|r| {
                        let notes = ImportNotes {
                            codes_without_system: r.codes_without_system,
                            skipped_files: r
                                .skipped_files
                                .into_iter()
                                .map(|s| SkippedFile { entry: s.entry, reason: s.reason.as_str().to_string() })
                                .collect(),
                            skipped_files_total: r.skipped_files_total,
                            roster: None,
                        };
                        (r.stats.documents, r.stats.inserted, r.stats.replaced, notes)
                    })
                }
                ImportKind::Medications => {
                    health_imports::import_medications(&task_app, &number, &file_name, bytes, &mut progress)
                        .await
                        .map(|s| (s.rows, s.inserted, s.existing, ImportNotes::default()))
                }
                ImportKind::Expenses => {
                    health_imports::import_expenses(&task_app, &number, &file_name, bytes, &mut progress)
                        .await
                        .map(|s| (s.rows, s.inserted, s.existing, ImportNotes::default()))
                }
                ImportKind::Roster => roster_outcome(
                    crate::services::roster::import_bytes(
                        &task_app,
                        &task_org,
                        &bytes,
                        crate::services::roster::Encoding::Auto,
                        &mut progress,
                    )
                    .await,
                ),
            }
        });
        let result = import.await.unwrap_or_else(|e| Err(ServiceError::Internal(format!("import task: {e}"))));
        drop(beat);
        let outcome = finished(result);
        let (state, done, total) = match &outcome {
            Outcome::Done { records, .. } => ("done", *records, *records),
            Outcome::Refused { .. } => {
                ("refused", counter.done.load(Ordering::Relaxed), counter.total.load(Ordering::Relaxed))
            }
        };
        let written = match serde_json::to_string(&outcome) {
            Ok(json) => {
                task_app
                    .store
                    .finish_import_job(&job_id, state, &json, as_count(done), as_count(total), task_app.now())
                    .await
            }
            Err(e) => {
                tracing::error!(job_id = %job_id, error = %e, "import job outcome not serializable");
                return;
            }
        };
        // Unrecorded, the job is marked failed once its lease lapses: re-importing the file
        // duplicates nothing.
        if let Err(e) = written {
            tracing::error!(job_id = %job_id, error = %e, "import job outcome not recorded");
        }
    });
    Ok(id)
}

/// One job (administrators only), from any node.
pub async fn job(app: &App, operator: &Operator, id: &str) -> ServiceResult<Job> {
    admin(operator)?;
    fail_lapsed(app).await;
    let record = app.store.get_import_job(id).await?.ok_or(ServiceError::FlowNotFound)?;
    Some(Job::from_record(record)?).filter(|j| operator.may_see_org(&j.org_id)).ok_or(ServiceError::FlowNotFound)
}

/// The recent jobs of every node, newest first (administrators only).
pub async fn jobs(app: &App, operator: &Operator) -> ServiceResult<Vec<Job>> {
    admin(operator)?;
    fail_lapsed(app).await;
    let mut jobs = Vec::new();
    let orgs = (!operator.sees_all_orgs()).then_some(operator.orgs.as_slice());
    for record in app.store.list_import_jobs(LISTED_JOBS, orgs).await? {
        if operator.may_see_org(&record.org_id) {
            jobs.push(Job::from_record(record)?);
        }
    }
    Ok(jobs)
}
