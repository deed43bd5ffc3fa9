//! お薬履歴 (medication history) and 医療費通知 (medical expense notices) (F5): an insurer's CSV
//! file becomes sealed rows attached to roster records, all or nothing. Formats:
//! `docs/health-csv.md` (parsers: [`records::medication`], [`records::expenses`]).
//!
//! Both kinds go through one import: the file is decoded and parsed (UTF-8 or Shift_JIS,
//! header, caps), every row is matched to one roster record of the organization like 特定健診
//! results ([`RosterMatcher`]), and any problem — a bad cell, an unmatched or ambiguous
//! examinee, another insurer number, the same row twice — refuses the whole file with every
//! problem listed by line number and reason (never the personal data itself). Otherwise every
//! row is sealed (AAD bound to the kind, organization, record and date) and written in one
//! transaction holding the organization's lock, in batches of [`WRITE_BATCH`] rows (multi-row
//! INSERTs on SQLite, binary COPY on PostgreSQL).
//!
//! Re-importing duplicates nothing: each row carries a keyed MAC of the organization, record
//! and the row's normalized content ([`MedicationRow::content_key`],
//! [`ExpenseRow::content_key`]), unique per record and kind; a row stored already is counted,
//! not written again.

use std::collections::HashMap;

use domain::card::normalize_card_text;
use records::expenses::ExpenseRow;
use records::health_csv::{CsvError, Encoding, Examinee, Limits, LineError, Parsed};
use records::medication::MedicationRow;
use serde::de::DeserializeOwned;
use serde::Serialize;
use store::{HealthEntryRow, HealthImportStats, HealthKind, RecordRef};
use time::Date;

use crate::error::{ServiceError, ServiceResult};
use crate::services::audit;
use crate::services::auth::Member;
use crate::services::health_match::RosterMatcher;
use crate::services::new_id;
use crate::services::roster::{Progress, RosterIndexer, INDEX_LEN};
use crate::state::App;

/// The AAD prefix of sealed health entries: an entry cannot be passed off as any other sealed
/// value.
pub const HEALTH_AAD: &str = "health_entries";

/// The MAC purpose of the de-duplication keys (made under the organization's roster MAC key,
/// see [`RosterIndexer`]).
pub(crate) const ROW_KEY_PURPOSE: &str = "health-entry-row";

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// The AAD of one entry: bound to its kind, organization, roster record and date, so a row
/// copied onto another member's record, kind or date in the database no longer opens.
pub(crate) fn entry_aad(kind: HealthKind, org_id: &str, record: &RecordRef, occurred_on: &str) -> String {
    format!(
        "{HEALTH_AAD}:{}:{org_id}:{}:{}:{occurred_on}",
        kind.as_str(),
        hex(&record.card_index),
        hex(&record.record_key)
    )
}

/// The de-duplication key of a row: a keyed MAC (under the organization's roster MAC key) of
/// the organization, record and normalized content. Keyed per record, so equal rows of two
/// members do not show as equal keys.
pub(crate) fn row_key(indexer: &RosterIndexer, org_id: &str, record: &RecordRef, content_key: &str) -> Vec<u8> {
    let input = format!("{org_id}|{}|{}|{content_key}", hex(&record.card_index), hex(&record.record_key));
    let mut mac = indexer.health_row_mac(input.as_bytes());
    mac.truncate(INDEX_LEN);
    mac
}

/// The normalized content of a stored entry of `kind` (its opened `data_enc`), as
/// [`HealthRow::content_key`] made it at import.
pub(crate) fn content_key_of(kind: HealthKind, json: &[u8]) -> Result<String, crate::crypto::CryptoError> {
    let malformed = |_| crate::crypto::CryptoError::Malformed;
    Ok(match kind {
        HealthKind::Medication => serde_json::from_slice::<MedicationRow>(json).map_err(malformed)?.content_key(),
        HealthKind::Expense => serde_json::from_slice::<ExpenseRow>(json).map_err(malformed)?.content_key(),
    })
}

/// One row of a health CSV file: what the import needs of either kind.
pub trait HealthRow: Serialize + DeserializeOwned + Send + 'static {
    const KIND: HealthKind;
    /// Parses a whole file of this kind, keeping the good rows next to the problems of the
    /// others.
    fn parse(bytes: &[u8], encoding: Encoding, limits: &Limits) -> Result<Parsed<Self>, CsvError>;
    fn examinee(&self) -> &Examinee;
    /// The date the row is listed by: the dispensing date, or the first of the month.
    fn occurred_on(&self) -> Date;
    /// The normalized content, without the examinee (see the parsers).
    fn content_key(&self) -> String;
}

impl HealthRow for MedicationRow {
    const KIND: HealthKind = HealthKind::Medication;
    fn parse(bytes: &[u8], encoding: Encoding, limits: &Limits) -> Result<Parsed<Self>, CsvError> {
        records::medication::parse_all(bytes, encoding, limits)
    }
    fn examinee(&self) -> &Examinee {
        &self.examinee
    }
    fn occurred_on(&self) -> Date {
        self.dispensed_on
    }
    fn content_key(&self) -> String {
        MedicationRow::content_key(self)
    }
}

impl HealthRow for ExpenseRow {
    const KIND: HealthKind = HealthKind::Expense;
    fn parse(bytes: &[u8], encoding: Encoding, limits: &Limits) -> Result<Parsed<Self>, CsvError> {
        records::expenses::parse_all(bytes, encoding, limits)
    }
    fn examinee(&self) -> &Examinee {
        &self.examinee
    }
    fn occurred_on(&self) -> Date {
        self.month.first_day()
    }
    fn content_key(&self) -> String {
        ExpenseRow::content_key(self)
    }
}

/// Rows sealed and written per batch.
const WRITE_BATCH: usize = 5_000;

/// What an import wrote.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ImportStats {
    /// Data rows in the file (all matched).
    pub rows: u64,
    /// Rows not stored before.
    pub inserted: u64,
    /// Rows stored already (by an earlier import of the same or an overlapping file).
    pub existing: u64,
}

/// Imports one お薬履歴 CSV file (UTF-8 or Shift_JIS, detected) for the organization with
/// `insurer_number`, all or nothing. `file_name` is recorded with the import. Progress counts
/// the rows written.
#[tracing::instrument(skip_all)]
pub async fn import_medications(
    app: &App,
    insurer_number: &str,
    file_name: &str,
    bytes: Vec<u8>,
    progress: &mut dyn Progress,
) -> ServiceResult<ImportStats> {
    import_file::<MedicationRow>(app, insurer_number, file_name, bytes, Encoding::Auto, progress).await
}

/// Imports one 医療費通知 CSV file, like [`import_medications`].
#[tracing::instrument(skip_all)]
pub async fn import_expenses(
    app: &App,
    insurer_number: &str,
    file_name: &str,
    bytes: Vec<u8>,
    progress: &mut dyn Progress,
) -> ServiceResult<ImportStats> {
    import_file::<ExpenseRow>(app, insurer_number, file_name, bytes, Encoding::Auto, progress).await
}

/// Imports one CSV file of kind `R` in `encoding`, all or nothing: file-level problems are
/// [`ServiceError::HealthCsv`], problems of lines (cells, matching, repeated rows)
/// [`ServiceError::HealthEntries`]; an unknown insurer number is
/// [`ServiceError::UnknownOrganization`].
#[tracing::instrument(skip_all)]
pub async fn import_file<R: HealthRow>(
    app: &App,
    insurer_number: &str,
    file_name: &str,
    bytes: Vec<u8>,
    encoding: Encoding,
    progress: &mut dyn Progress,
) -> ServiceResult<ImportStats> {
    let org = app
        .store
        .find_org_by_insurer_number(&normalize_card_text(insurer_number))
        .await?
        .ok_or(ServiceError::UnknownOrganization)?;
    let limits = Limits::default();
    let max_errors = limits.max_errors;
    let parsed = tokio::task::spawn_blocking(move || R::parse(&bytes, encoding, &limits))
        .await
        .map_err(|e| ServiceError::Internal(format!("health CSV parser: {e}")))?;
    let Parsed { rows, mut errors } = match parsed {
        Ok(parsed) => parsed,
        Err(CsvError::Lines(errors)) => return Err(ServiceError::HealthEntries(errors)),
        Err(e) => return Err(ServiceError::HealthCsv(e.to_string())),
    };

    // Match every readable row before anything is written, so one refusal lists the problems
    // of the cells and of the matching together.
    let mut matcher = RosterMatcher::new(app, &org).await?;
    matcher.prefetch(rows.iter().map(|(_, row)| row.examinee().into())).await?;
    let mut matched = Vec::with_capacity(rows.len());
    let mut seen: HashMap<(RecordRef, String), u64> = HashMap::with_capacity(rows.len());
    for (line, row) in rows {
        match matcher.find(row.examinee().into(), row.occurred_on()).await? {
            Ok(record) => {
                let content = row.content_key();
                let key = row_key(matcher.indexer(), &org.id, &record, &content);
                if let Some(first) = seen.insert((record.clone(), content), line) {
                    errors.push(LineError { line, reason: format!("same member and content as line {first}") });
                } else {
                    matched.push((record, key, row));
                }
            }
            Err(reason) => errors.push(LineError { line, reason }),
        }
    }
    if !errors.is_empty() {
        errors.sort_by_key(|e| e.line);
        errors.truncate(max_errors);
        return Err(ServiceError::HealthEntries(errors));
    }
    drop(seen);

    let total = matched.len() as u64;
    let mut stats = HealthImportStats { rows: total, ..HealthImportStats::default() };
    let mut import = app.store.begin_health_import(&org.id, &new_id(), R::KIND, file_name, app.now()).await?;
    matcher.check_key(import.mac_key().await?.as_deref())?;
    progress.written(0, total);
    // Sealed and written in batches (multi-row INSERTs on SQLite, binary COPY on PostgreSQL),
    // all in the one transaction.
    let mut done = 0u64;
    let mut batch = Vec::with_capacity(WRITE_BATCH.min(matched.len()));
    let mut rows = matched.into_iter().peekable();
    while rows.peek().is_some() {
        batch.clear();
        for (record, row_key, row) in rows.by_ref().take(WRITE_BATCH) {
            let occurred_on = row.occurred_on().to_string();
            let data_enc = app.keys.seal_json(&entry_aad(R::KIND, &org.id, &record, &occurred_on), &row)?;
            batch.push(HealthEntryRow { id: new_id(), record, occurred_on, row_key, data_enc });
        }
        let existing = import.put_all(&batch).await?;
        stats.inserted += batch.len() as u64 - existing;
        done += batch.len() as u64;
        progress.written(done, total);
    }
    import.commit(stats).await?;
    let existing = stats.rows - stats.inserted;
    tracing::info!(org = %org.insurer_number, kind = R::KIND.as_str(), rows = stats.rows, inserted = stats.inserted, existing,
        "health records imported");
    Ok(ImportStats { rows: stats.rows, inserted: stats.inserted, existing })
}

/// The member's entries of kind `R`, decoded, in stored order (newest date first); none before
/// 本人確認 (F3) linked a roster record.
async fn entries_for_member<R: HealthRow>(app: &App, member: &Member, action: &str, ip: &str) -> ServiceResult<Vec<R>> {
    let Some(link) = app.store.roster_link_of_user(&member.user.id).await? else {
        return Ok(Vec::new());
    };
    audit::member(app, Some(&member.user.id), action, Some(("organization", &link.org_id)), ip).await?;
    let stored = app.store.health_entries_of_record(&link.org_id, &link.record, R::KIND).await?;
    stored
        .iter()
        .map(|e| {
            app.keys
                .open_json(&entry_aad(R::KIND, &e.org_id, &e.record, &e.occurred_on), &e.data_enc)
                .map_err(ServiceError::from)
        })
        .collect()
}

/// The member's お薬履歴, newest dispensing first (then by pharmacy, prescriber and drug name,
/// so one prescription's drugs are next to each other); empty before 本人確認 (F3) linked a
/// roster record.
#[tracing::instrument(skip_all, fields(user_id = %member.user.id))]
/// The read is audited (who, from `ip`), before anything is returned.
pub async fn medications_for_member(app: &App, member: &Member, ip: &str) -> ServiceResult<Vec<MedicationRow>> {
    let mut rows: Vec<MedicationRow> =
        entries_for_member(app, member, audit::actions::HEALTH_MEDICATIONS_READ, ip).await?;
    rows.sort_by(|a, b| {
        b.dispensed_on
            .cmp(&a.dispensed_on)
            .then_with(|| a.pharmacy.cmp(&b.pharmacy))
            .then_with(|| a.prescriber.cmp(&b.prescriber))
            .then_with(|| a.doctor.cmp(&b.doctor))
            .then_with(|| a.drug.cmp(&b.drug))
    });
    Ok(rows)
}

/// The member's 医療費通知 rows, newest month first (then by facility); empty before 本人確認
/// (F3) linked a roster record.
#[tracing::instrument(skip_all, fields(user_id = %member.user.id))]
/// The read is audited (who, from `ip`), before anything is returned.
pub async fn expenses_for_member(app: &App, member: &Member, ip: &str) -> ServiceResult<Vec<ExpenseRow>> {
    let mut rows: Vec<ExpenseRow> = entries_for_member(app, member, audit::actions::HEALTH_EXPENSES_READ, ip).await?;
    rows.sort_by(|a, b| {
        b.month.cmp(&a.month).then_with(|| a.facility.cmp(&b.facility)).then_with(|| a.patient.cmp(&b.patient))
    });
    Ok(rows)
}
