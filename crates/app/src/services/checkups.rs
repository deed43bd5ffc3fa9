//! 特定健診 results (F5): an insurer's ZIP delivery of HL7 CDA documents becomes sealed
//! results attached to roster records, all or nothing.
//!
//! The archive is parsed with [`records::checkup::parse_zip`] (streaming XML, no DOCTYPE, size,
//! depth and zip-bomb caps). Files from other vendors' converters are read the same way: item
//! codes without `codeSystem` are read as JLAC10 codes when JLAC10-shaped (and counted in the
//! [`ImportReport`]), and the archive's other files (`CLAIMS/`, index, summary, …) are listed
//! there as skipped with why. Every checkup document must then match exactly one roster record
//! of the organization ([`RosterMatcher`]): the organization's insurer number, the card's
//! symbol and number, the birth date, the branch number when both sides have one; when several
//! records match, only those eligible on the examination date count.
//!
//! Any entry that fails to parse or to match refuses the whole import, with every problem
//! listed by entry name and reason (never the personal data itself). Otherwise every result is
//! sealed (AAD bound to the organization, record and date) and written in one transaction; a result of the same record and
//! examination date replaces the stored one, so re-importing a file duplicates nothing.

use std::collections::HashMap;

use records::checkup::{parse_zip, CheckupDocument, SkippedEntry, ZipLimits};
use store::{CheckupImportStats, CheckupRow, RecordRef};

use crate::error::{ServiceError, ServiceResult};
use crate::services::audit;
use crate::services::auth::Member;
use crate::services::health_match::{find_org, RosterMatcher};
use crate::services::new_id;
use crate::services::roster::Progress;
use crate::state::App;

/// The AAD prefix of sealed checkup documents: a result cannot be passed off as any other
/// sealed value.
pub const CHECKUP_AAD: &str = "checkup_results";

/// The AAD of one result: bound to its organization, roster record and examination date, so a
/// row copied onto another member's record (or date) in the database no longer opens.
pub(crate) fn result_aad(org_id: &str, record: &store::RecordRef, examined_on: &str) -> String {
    let hex = |b: &[u8]| b.iter().map(|x| format!("{x:02x}")).collect::<String>();
    format!("{CHECKUP_AAD}:{org_id}:{}:{}:{examined_on}", hex(&record.card_index), hex(&record.record_key))
}

/// Most problems listed for one refused file.
const MAX_ERRORS: usize = 1000;

/// What an import wrote.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ImportStats {
    /// Checkup documents in the archive (all written).
    pub documents: u64,
    /// Results of examinations not stored before.
    pub inserted: u64,
    /// Results that replaced the stored result of the same member and examination date.
    pub replaced: u64,
    /// `DATA/*.xml` entries that are not checkup results (settlement files, 特定保健指導).
    pub skipped: u64,
}

/// Files of a written import listed in its report, at most (the count says how many in all).
pub const MAX_LISTED_SKIPPED: usize = 200;

/// What an import wrote, and what it read or left out knowingly: shown on the console's job
/// page and by the CLI.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ImportReport {
    pub stats: ImportStats,
    /// Observation codes written without `codeSystem` and read as JLAC10 codes, in all documents.
    pub codes_without_system: u64,
    /// Files not imported, with why: `DATA/*.xml` entries that are not results (settlement,
    /// 特定保健指導), then the index, summary, `CLAIMS/`, `XSD/` and other files, in archive
    /// order; at most [`MAX_LISTED_SKIPPED`].
    pub skipped_files: Vec<SkippedEntry>,
    /// How many files were not imported in all.
    pub skipped_files_total: u64,
}

/// One refused entry of an archive: its name in the archive and why (no personal data).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EntryError {
    pub entry: String,
    pub reason: String,
}

impl std::fmt::Display for EntryError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.entry, self.reason)
    }
}

/// Imports one 特定健診 ZIP archive for the organization with `insurer_number`, all or nothing.
/// `file_name` is recorded with the import. Progress counts the documents written.
/// [`import_zip_report`] with the counts only.
pub async fn import_zip(
    app: &App,
    insurer_number: &str,
    file_name: &str,
    bytes: Vec<u8>,
    progress: &mut dyn Progress,
) -> ServiceResult<ImportStats> {
    import_zip_report(app, insurer_number, file_name, bytes, progress).await.map(|r| r.stats)
}

/// Imports one 特定健診 ZIP archive for the organization with `insurer_number` (6 digits or
/// `00` + 6 digits alike), all or nothing, and reports what was written and what was read or
/// left out knowingly. `file_name` is recorded with the import. Progress counts the documents
/// written.
#[tracing::instrument(skip_all)]
pub async fn import_zip_report(
    app: &App,
    insurer_number: &str,
    file_name: &str,
    bytes: Vec<u8>,
    progress: &mut dyn Progress,
) -> ServiceResult<ImportReport> {
    let org = find_org(app, insurer_number).await?.ok_or(ServiceError::UnknownOrganization)?;

    let report = tokio::task::spawn_blocking(move || parse_zip(std::io::Cursor::new(bytes), &ZipLimits::default()))
        .await
        .map_err(|e| ServiceError::Internal(format!("checkup parser: {e}")))?
        .map_err(|e| ServiceError::CheckupArchive(e.to_string()))?;
    let skipped = report.skipped.len() as u64;
    let skipped_files_total = skipped + report.other_files.len() as u64;
    let skipped_files: Vec<SkippedEntry> =
        report.skipped.iter().chain(&report.other_files).take(MAX_LISTED_SKIPPED).cloned().collect();
    let documents = match report.into_documents() {
        Ok(docs) => docs,
        Err(failed) => {
            let errors = failed
                .into_iter()
                .map(|(entry, e)| EntryError { entry, reason: e.to_string() })
                .take(MAX_ERRORS)
                .collect();
            return Err(ServiceError::CheckupEntries(errors));
        }
    };
    if documents.is_empty() {
        return Err(ServiceError::CheckupArchive("the archive has no checkup result documents".into()));
    }
    let codes_without_system = documents.iter().map(|(_, d)| d.codes_without_system() as u64).sum();

    // Match every document before anything is written.
    let mut matcher = RosterMatcher::new(app, &org).await?;
    let mut errors = Vec::new();
    let mut matched = Vec::with_capacity(documents.len());
    let mut seen: HashMap<(RecordRef, time::Date), String> = HashMap::new();
    for (entry, doc) in documents {
        match matcher.find((&doc.examinee).into(), doc.examined_on).await? {
            Ok(record) => {
                if let Some(first) = seen.insert((record.clone(), doc.examined_on), entry.clone()) {
                    errors.push(EntryError { entry, reason: format!("same examinee and examination date as {first}") });
                } else {
                    matched.push((record, doc));
                }
            }
            Err(reason) => errors.push(EntryError { entry, reason }),
        }
    }
    if !errors.is_empty() {
        errors.truncate(MAX_ERRORS);
        return Err(ServiceError::CheckupEntries(errors));
    }

    let total = matched.len() as u64;
    let mut stats = CheckupImportStats { documents: total, ..CheckupImportStats::default() };
    let mut import = app.store.begin_checkup_import(&org.id, &new_id(), file_name, app.now()).await?;
    matcher.check_key(import.mac_key().await?.as_deref())?;
    progress.written(0, total);
    for (done, (record, doc)) in matched.into_iter().enumerate() {
        let examined_on = doc.examined_on.to_string();
        let data_enc = app.keys.seal_json(&result_aad(&org.id, &record, &examined_on), &doc)?;
        let row = CheckupRow { id: new_id(), record, examined_on, data_enc };
        if import.put(&row).await? {
            stats.replaced += 1;
        } else {
            stats.inserted += 1;
        }
        progress.written(done as u64 + 1, total);
    }
    import.commit(stats).await?;
    tracing::info!(org = %org.insurer_number, documents = stats.documents, inserted = stats.inserted, replaced = stats.replaced,
        skipped, skipped_files_total, codes_without_system, "checkup results imported");
    Ok(ImportReport {
        stats: ImportStats { documents: stats.documents, inserted: stats.inserted, replaced: stats.replaced, skipped },
        codes_without_system,
        skipped_files,
        skipped_files_total,
    })
}

/// The checkup results of the member's roster record, newest examination first; none before
/// 本人確認 (F3) linked a record.
#[tracing::instrument(skip_all, fields(user_id = %member.user.id))]
/// The read is audited (who, from `ip`), before anything is returned.
pub async fn results_for_member(app: &App, member: &Member, ip: &str) -> ServiceResult<Vec<CheckupDocument>> {
    let Some(link) = app.store.roster_link_of_user(&member.user.id).await? else {
        return Ok(Vec::new());
    };
    audit::member(
        app,
        Some(&member.user.id),
        audit::actions::HEALTH_CHECKUPS_READ,
        Some(("organization", &link.org_id)),
        ip,
    )
    .await?;
    let stored = app.store.checkup_results_of_record(&link.org_id, &link.record).await?;
    stored
        .iter()
        .map(|r| {
            app.keys
                .open_json(&result_aad(&r.org_id, &r.record, &r.examined_on), &r.data_enc)
                .map_err(ServiceError::from)
        })
        .collect()
}
