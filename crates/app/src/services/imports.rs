//! Health-record imports started from the operator console (F5): an administrator uploads a
//! 特定健診 ZIP, an お薬履歴 CSV or a 医療費通知 CSV for an organization; the import runs in the
//! background (all or nothing, like the CLI) and its page shows a progress bar, then what was
//! written or every refused entry.
//!
//! Jobs live in memory (this node, until restart): the import itself is one transaction, so a
//! restart mid-way leaves nothing half-written and the operator uploads the file again. Every
//! start is in the audit log with the organization.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use time::OffsetDateTime;

use crate::error::{ServiceError, ServiceResult};
use crate::services::operators::{self, Operator, Role};
use crate::services::roster::Progress;
use crate::services::{checkups, health_imports, new_id};
use crate::state::{App, AppState};

/// Jobs kept for the console (the oldest finished ones are dropped beyond this).
const MAX_JOBS: usize = 200;

/// What a file holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ImportKind {
    /// 特定健診 HL7 CDA documents in a ZIP archive.
    Checkups,
    /// お薬履歴 CSV.
    Medications,
    /// 医療費通知 CSV.
    Expenses,
}

impl ImportKind {
    pub const ALL: [ImportKind; 3] = [ImportKind::Checkups, ImportKind::Medications, ImportKind::Expenses];

    pub fn as_str(self) -> &'static str {
        match self {
            ImportKind::Checkups => "checkups",
            ImportKind::Medications => "medications",
            ImportKind::Expenses => "expenses",
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
}

/// What a written 特定健診 import read or left out knowingly (empty for CSV imports). Entry
/// names and reasons only, never personal data.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ImportNotes {
    /// Observation codes without `codeSystem`, read as JLAC10 codes.
    pub codes_without_system: u64,
    /// Files not imported, with why (at most [`checkups::MAX_LISTED_SKIPPED`]).
    pub skipped_files: Vec<records::checkup::SkippedEntry>,
    /// How many files were not imported in all.
    pub skipped_files_total: u64,
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

/// The jobs of this node.
#[derive(Default)]
pub struct ImportJobs {
    jobs: Mutex<HashMap<String, Job>>,
}

impl ImportJobs {
    fn update(&self, id: &str, state: JobState) {
        if let Ok(mut jobs) = self.jobs.lock() {
            if let Some(job) = jobs.get_mut(id) {
                job.state = state;
            }
        }
    }

    fn insert(&self, job: Job) {
        if let Ok(mut jobs) = self.jobs.lock() {
            if jobs.len() >= MAX_JOBS {
                let oldest = jobs
                    .values()
                    .filter(|j| !matches!(j.state, JobState::Running { .. }))
                    .min_by_key(|j| j.started_at)
                    .map(|j| j.id.clone());
                if let Some(id) = oldest {
                    jobs.remove(&id);
                }
            }
            jobs.insert(job.id.clone(), job);
        }
    }

    fn get(&self, id: &str) -> Option<Job> {
        self.jobs.lock().ok().and_then(|jobs| jobs.get(id).cloned())
    }

    /// Newest first.
    fn list(&self) -> Vec<Job> {
        let mut all: Vec<Job> = self.jobs.lock().map(|jobs| jobs.values().cloned().collect()).unwrap_or_default();
        all.sort_by_key(|j| std::cmp::Reverse(j.started_at));
        all
    }
}

/// Reports the write phase into the job.
struct JobProgress {
    app: AppState,
    id: String,
}

impl Progress for JobProgress {
    fn written(&mut self, done: u64, total: u64) {
        self.app.imports.update(&self.id, JobState::Running { done, total });
    }
}

fn admin(operator: &Operator) -> ServiceResult<()> {
    if operator.role == Role::Admin {
        Ok(())
    } else {
        Err(ServiceError::Forbidden)
    }
}

/// The outcome of an import as the job shows it. Only entry names, line numbers and reasons
/// (never personal data) reach the page.
fn finished(result: Result<(u64, u64, u64, ImportNotes), ServiceError>) -> JobState {
    match result {
        Ok((records, inserted, unchanged, notes)) => JobState::Done { records, inserted, unchanged, notes },
        Err(ServiceError::CheckupEntries(errors)) => JobState::Refused {
            reason: "entries".into(),
            entries: errors.into_iter().map(|e| (e.entry, e.reason)).collect(),
        },
        Err(ServiceError::HealthEntries(errors)) => JobState::Refused {
            reason: "entries".into(),
            entries: errors.into_iter().map(|e| (e.line.to_string(), e.reason)).collect(),
        },
        Err(ServiceError::CheckupArchive(reason) | ServiceError::HealthCsv(reason)) => {
            JobState::Refused { reason, entries: Vec::new() }
        }
        Err(ServiceError::UnknownOrganization) => {
            JobState::Refused { reason: "unknown organization".into(), entries: Vec::new() }
        }
        Err(e) => {
            tracing::error!(error = %e, "console import failed");
            JobState::Refused { reason: "internal error (see the server log)".into(), entries: Vec::new() }
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
    let org = app
        .store
        .find_org_by_insurer_number(&domain::card::normalize_card_text(insurer_number))
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
    app.imports.insert(Job {
        id: id.clone(),
        kind,
        insurer_number: org.insurer_number.as_str().to_string(),
        org_id: org.id.clone(),
        file_name: file_name.clone(),
        operator_id: operator.id.clone(),
        started_at: app.now(),
        state: JobState::Running { done: 0, total: 0 },
    });
    let (task_app, job_id, number) = (Arc::clone(app), id.clone(), org.insurer_number.as_str().to_string());
    tokio::spawn(async move {
        let mut progress = JobProgress { app: Arc::clone(&task_app), id: job_id.clone() };
        let result = match kind {
            ImportKind::Checkups => {
                checkups::import_zip_report(&task_app, &number, &file_name, bytes, &mut progress).await.map(|r| {
                    let notes = ImportNotes {
                        codes_without_system: r.codes_without_system,
                        skipped_files: r.skipped_files,
                        skipped_files_total: r.skipped_files_total,
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
        };
        task_app.imports.update(&job_id, finished(result));
    });
    Ok(id)
}

/// One job (administrators only).
pub fn job(app: &App, operator: &Operator, id: &str) -> ServiceResult<Job> {
    admin(operator)?;
    app.imports.get(id).filter(|j| operator.may_see_org(&j.org_id)).ok_or(ServiceError::FlowNotFound)
}

/// The jobs of this node, newest first (administrators only).
pub fn jobs(app: &App, operator: &Operator) -> ServiceResult<Vec<Job>> {
    admin(operator)?;
    Ok(app.imports.list().into_iter().filter(|j| operator.may_see_org(&j.org_id)).collect())
}
