//! 特定健診 results (F5): an insurer's ZIP delivery of HL7 CDA documents becomes sealed
//! results attached to roster records, all or nothing.
//!
//! The archive is parsed with [`records::checkup::parse_zip`] (streaming XML, no DOCTYPE, size,
//! depth and zip-bomb caps). Every checkup document must then
//! - carry the organization's insurer number (a 6-digit number may be written `00` + number),
//! - match exactly one roster record of the organization: the card's symbol and number
//!   (normalized like the roster and F3: full-width characters, any hyphen or none, case),
//!   the birth date, and the branch number when both the document and the record have one;
//!   when several records match, only those eligible on the examination date count.
//!
//! Any entry that fails to parse or to match refuses the whole import, with every problem
//! listed by entry name and reason (never the personal data itself). Otherwise every result is
//! sealed (AAD bound to the organization, record and date) and written in one transaction; a result of the same record and
//! examination date replaces the stored one, so re-importing a file duplicates nothing.

use std::collections::HashMap;

use domain::card::{normalize_card_text, roster_card};
use domain::insurer::normalize_digits;
use domain::org::Organization;
use domain::roster::RosterEntry;
use records::checkup::{parse_zip, CheckupDocument, ZipLimits};
use store::{CheckupImportStats, CheckupRow, RecordRef};

use crate::app::App;
use crate::error::{ServiceError, ServiceResult};
use crate::services::auth::Member;
use crate::services::new_id;
use crate::services::roster::{Progress, RosterIndexer, ROSTER_AAD};

/// The AAD prefix of sealed checkup documents: a result cannot be passed off as any other
/// sealed value.
pub const CHECKUP_AAD: &str = "checkup_results";

/// The AAD of one result: bound to its organization, roster record and examination date, so a
/// row copied onto another member's record (or date) in the database no longer opens.
fn result_aad(org_id: &str, record: &store::RecordRef, examined_on: &str) -> String {
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

/// Whether the document's insurer number is the organization's. The MHLW files write the
/// number in 8 digits, a 6-digit number with two leading zeros (or spaces).
fn same_insurer(document: &str, org: &Organization) -> bool {
    let doc = normalize_digits(document);
    let own = org.insurer_number.as_str();
    doc == own || (own.len() == 6 && doc.len() == 8 && doc.strip_prefix("00") == Some(own))
}

/// Finds the one roster record of `doc`'s examinee, or says why not.
async fn match_record(
    app: &App,
    org: &Organization,
    indexer: &RosterIndexer,
    cache: &mut HashMap<Vec<u8>, Vec<(RecordRef, RosterEntry)>>,
    doc: &CheckupDocument,
) -> ServiceResult<Result<RecordRef, String>> {
    let e = &doc.examinee;
    if !same_insurer(&e.insurer_number, org) {
        return Ok(Err(format!("insurer number (保険者番号) is not the organization's {}", org.insurer_number)));
    }
    let card = match roster_card(e.symbol.as_deref().unwrap_or(""), &e.number, e.branch.as_deref().unwrap_or("")) {
        Ok(card) => card,
        Err(err) => return Ok(Err(format!("card (記号・番号・枝番) not usable: {err}"))),
    };
    let card_index = indexer.card(&card);
    if !cache.contains_key(&card_index) {
        let mut records = Vec::new();
        for m in app.store.find_roster_records_by_card(&org.id, &card_index).await? {
            let entry: RosterEntry = app.keys.open_json(ROSTER_AAD, &m.data_enc)?;
            records.push((m.record, entry));
        }
        cache.insert(card_index.clone(), records);
    }
    let records = cache.get(&card_index).map(Vec::as_slice).unwrap_or_default();
    // The card is normalized on both sides; compare the branch like F3: only when both have one.
    let branch = card.branch.as_deref();
    let candidates: Vec<&(RecordRef, RosterEntry)> = records
        .iter()
        .filter(|(_, r)| r.birth_date == e.birth_date)
        .filter(|(_, r)| match (branch, r.card.branch.as_deref()) {
            (Some(a), Some(b)) => a == b,
            _ => true,
        })
        .collect();
    let chosen: Vec<&(RecordRef, RosterEntry)> = if candidates.len() > 1 {
        candidates.into_iter().filter(|(_, r)| r.eligible_on(doc.examined_on)).collect()
    } else {
        candidates
    };
    Ok(match chosen.as_slice() {
        [(record, _)] => Ok(record.clone()),
        [] => Err("no roster record matches the card (記号・番号・枝番) and birth date".to_string()),
        many => Err(format!("{} roster records match the card and birth date; add the branch number (枝番)", many.len())),
    })
}

/// Imports one 特定健診 ZIP archive for the organization with `insurer_number`, all or nothing.
/// `file_name` is recorded with the import. Progress counts the documents written.
pub async fn import_zip(
    app: &App,
    insurer_number: &str,
    file_name: &str,
    bytes: Vec<u8>,
    progress: &mut dyn Progress,
) -> ServiceResult<ImportStats> {
    let org = app
        .store
        .find_org_by_insurer_number(&normalize_card_text(insurer_number))
        .await?
        .ok_or(ServiceError::UnknownOrganization)?;

    let report = tokio::task::spawn_blocking(move || parse_zip(std::io::Cursor::new(bytes), &ZipLimits::default()))
        .await
        .map_err(|e| ServiceError::Internal(format!("checkup parser: {e}")))?
        .map_err(|e| ServiceError::CheckupArchive(e.to_string()))?;
    let skipped = report.skipped.len() as u64;
    let documents = match report.into_documents() {
        Ok(docs) => docs,
        Err(failed) => {
            let errors = failed.into_iter().map(|(entry, e)| EntryError { entry, reason: e.to_string() }).take(MAX_ERRORS).collect();
            return Err(ServiceError::CheckupEntries(errors));
        }
    };
    if documents.is_empty() {
        return Err(ServiceError::CheckupArchive("the archive has no checkup result documents".into()));
    }

    // Match every document before anything is written.
    let indexer = RosterIndexer::new(&app.keys, &org.id);
    let mut cache = HashMap::new();
    let mut errors = Vec::new();
    let mut matched = Vec::with_capacity(documents.len());
    let mut seen: HashMap<(RecordRef, time::Date), String> = HashMap::new();
    for (entry, doc) in documents {
        match match_record(app, &org, &indexer, &mut cache, &doc).await? {
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
        skipped, "checkup results imported");
    Ok(ImportStats { documents: stats.documents, inserted: stats.inserted, replaced: stats.replaced, skipped })
}

/// The checkup results of the member's roster record, newest examination first; none before
/// 本人確認 (F3) linked a record.
pub async fn results_for_member(app: &App, member: &Member) -> ServiceResult<Vec<CheckupDocument>> {
    let Some(link) = app.store.roster_link_of_user(&member.user.id).await? else {
        return Ok(Vec::new());
    };
    let stored = app.store.checkup_results_of_record(&link.org_id, &link.record).await?;
    stored
        .iter()
        .map(|r| app.keys.open_json(&result_aad(&r.org_id, &r.record, &r.examined_on), &r.data_enc).map_err(ServiceError::from))
        .collect()
}
