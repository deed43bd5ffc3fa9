//! Roster (名簿) import: an insurer's CSV file (UTF-8 or Shift_JIS/CP932) becomes sealed
//! roster records with keyed blind indexes, in one transaction.
//!
//! The whole file is read and checked first; a file with any bad row is refused with every
//! problem and its line number, and nothing is written. Then the rows are sealed (on all
//! cores) and written in batches inside one database transaction that commits only at the
//! end: an error, an interrupt or a killed process leaves the previous roster untouched.
//! Records absent from the new file keep existing (accounts may link to them) but their
//! eligibility ends yesterday (Japan time).

use std::collections::HashMap;

use domain::card::CardId;
use domain::org::Organization;
use domain::roster::{map_header, RosterEntry};
use store::{ImportStats, RosterRow};
use time::{Date, Duration, OffsetDateTime, UtcOffset};

use crate::app::App;
use crate::crypto::{CryptoError, Keys, Macer};
use crate::services::new_id;

pub const ROSTER_AAD: &str = "roster_records";
/// Rows per call into the store (progress granularity; the store batches INSERTs itself).
const WRITE_BATCH: usize = 10_000;

/// Today in Japan, where eligibility dates are meant.
pub fn today_jst(now: OffsetDateTime) -> Date {
    now.to_offset(UtcOffset::from_hms(9, 0, 0).unwrap_or(UtcOffset::UTC)).date()
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Encoding {
    /// UTF-8 when the bytes are valid UTF-8 (a BOM is allowed), otherwise Shift_JIS.
    Auto,
    Utf8,
    ShiftJis,
}

impl Encoding {
    pub fn parse(s: &str) -> Option<Self> {
        match s.to_ascii_lowercase().replace(['-', '_'], "").as_str() {
            "auto" => Some(Encoding::Auto),
            "utf8" => Some(Encoding::Utf8),
            "shiftjis" | "sjis" | "cp932" | "windows31j" => Some(Encoding::ShiftJis),
            _ => None,
        }
    }
}

/// One problem in the file, by line number (1 = the header).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LineError {
    pub line: u64,
    pub message: String,
}

#[derive(Debug, thiserror::Error)]
pub enum ImportError {
    #[error("the file is not valid {0}")]
    Encoding(&'static str),
    #[error("{} problem(s) in the file; nothing was imported", .0.len())]
    Rows(Vec<LineError>),
    #[error("the file has no rows")]
    Empty,
    #[error(transparent)]
    Crypto(#[from] CryptoError),
    #[error(transparent)]
    Store(#[from] store::StoreError),
}

pub fn decode(bytes: &[u8], encoding: Encoding) -> Result<String, ImportError> {
    let without_bom = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes);
    match encoding {
        Encoding::Utf8 => String::from_utf8(without_bom.to_vec()).map_err(|_| ImportError::Encoding("UTF-8")),
        Encoding::ShiftJis => {
            let (text, _, had_errors) = encoding_rs::SHIFT_JIS.decode(bytes);
            if had_errors {
                Err(ImportError::Encoding("Shift_JIS"))
            } else {
                Ok(text.into_owned())
            }
        }
        Encoding::Auto => match std::str::from_utf8(without_bom) {
            Ok(s) => Ok(s.to_string()),
            Err(_) => decode(bytes, Encoding::ShiftJis),
        },
    }
}

/// Parses and checks the whole file (rows in parallel on every core); returns the entries with
/// their line numbers, or every problem found.
pub fn parse(text: &str, org: &Organization) -> Result<Vec<(u64, RosterEntry)>, ImportError> {
    let mut reader = csv::ReaderBuilder::new().has_headers(false).flexible(true).from_reader(text.as_bytes());
    let mut records = reader.records();
    let header = match records.next() {
        Some(Ok(h)) => h,
        Some(Err(e)) => return Err(ImportError::Rows(vec![LineError { line: 1, message: format!("unreadable header: {e}") }])),
        None => return Err(ImportError::Empty),
    };
    let header_fields: Vec<&str> = header.iter().collect();
    let columns = map_header(&header_fields).map_err(|e| ImportError::Rows(vec![LineError { line: 1, message: e.to_string() }]))?;
    // Line numbers from byte offsets, right for LF and CRLF files alike (with CRLF, csv puts
    // a record's start on the \n of the previous line end, hence `<=`).
    let newline_offsets: Vec<usize> = text.bytes().enumerate().filter(|(_, b)| *b == b'\n').map(|(i, _)| i).collect();
    let line_at = |pos: Option<&csv::Position>| -> u64 {
        pos.map(|p| newline_offsets.partition_point(|&nl| (nl as u64) <= p.byte()) as u64 + 1).unwrap_or(0)
    };
    let mut errors = Vec::new();
    let mut rows = Vec::new();
    for record in records {
        match record {
            Ok(r) if r.iter().all(|f| f.trim().is_empty()) => {}
            Ok(r) => rows.push((line_at(r.position()), r)),
            Err(e) => errors.push(LineError { line: line_at(e.position()), message: "unreadable CSV row".into() }),
        }
    }

    let threads = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1).max(1);
    let chunk = rows.len().div_ceil(threads).max(1);
    let parsed: Vec<(u64, Result<RosterEntry, String>)> = std::thread::scope(|scope| {
        let handles: Vec<_> = rows
            .chunks(chunk)
            .map(|part| {
                scope.spawn(move || {
                    part.iter()
                        .map(|(line, r)| {
                            let fields: Vec<&str> = r.iter().collect();
                            (*line, RosterEntry::parse(&fields, &columns, &org.insurer_number).map_err(|e| e.to_string()))
                        })
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        handles.into_iter().flat_map(|h| h.join().unwrap_or_default()).collect()
    });
    if parsed.len() != rows.len() {
        return Err(ImportError::Rows(vec![LineError { line: 0, message: "internal error while checking rows".into() }]));
    }

    // Duplicates by a 128-bit hash of the record key (two independent 64-bit SipHashes).
    let mut seen: HashMap<(u64, u64), u64> = HashMap::with_capacity(parsed.len());
    let mut entries = Vec::with_capacity(parsed.len());
    for (line, result) in parsed {
        match result {
            Ok(entry) => {
                let key = record_key_text(&entry);
                let digest = (hash_with(0, &key), hash_with(1, &key));
                if let Some(first) = seen.insert(digest, line) {
                    errors.push(LineError { line, message: format!("duplicate of line {first} (same card, branch, name and birth date)") });
                } else {
                    entries.push((line, entry));
                }
            }
            Err(message) => errors.push(LineError { line, message }),
        }
    }
    if !errors.is_empty() {
        errors.sort_by_key(|e| e.line);
        errors.truncate(1000);
        return Err(ImportError::Rows(errors));
    }
    if entries.is_empty() {
        return Err(ImportError::Empty);
    }
    Ok(entries)
}

fn hash_with(seed: u64, s: &str) -> u64 {
    use std::hash::{Hash, Hasher};
    let mut h = std::collections::hash_map::DefaultHasher::new();
    seed.hash(&mut h);
    s.hash(&mut h);
    h.finish()
}

fn record_key_text(e: &RosterEntry) -> String {
    format!("{}|{}|{}", e.card.match_key(), e.card.branch.as_deref().unwrap_or(""), e.person_key())
}

/// The roster's blind indexes, keyed per organization so equal cards of two insurers never
/// collide. Each MAC is keyed once and reused for every row.
pub struct RosterIndexer {
    org_id: String,
    record: Macer,
    card: Macer,
    branch: Macer,
    person: Macer,
}

impl RosterIndexer {
    pub fn new(keys: &Keys, org_id: &str) -> Self {
        RosterIndexer {
            org_id: org_id.to_string(),
            record: keys.macer("roster-record"),
            card: keys.macer("roster-card"),
            branch: keys.macer("roster-branch"),
            person: keys.macer("roster-person"),
        }
    }

    fn keyed(&self, m: &Macer, value: &str) -> Vec<u8> {
        m.mac(format!("{}|{value}", self.org_id).as_bytes())
    }

    pub fn card(&self, card: &CardId) -> Vec<u8> {
        self.keyed(&self.card, &card.match_key())
    }

    pub fn branch(&self, branch: &str) -> Vec<u8> {
        self.keyed(&self.branch, branch)
    }

    pub fn person(&self, person_key: &str) -> Vec<u8> {
        self.keyed(&self.person, person_key)
    }

    fn row(&self, keys: &Keys, entry: &RosterEntry) -> Result<RosterRow, CryptoError> {
        Ok(RosterRow {
            id: new_id(),
            record_key: self.keyed(&self.record, &record_key_text(entry)),
            card_index: self.card(&entry.card),
            branch_index: entry.card.branch.as_deref().map(|b| self.branch(b)),
            person_index: self.person(&entry.person_key()),
            data_enc: keys.seal_json(ROSTER_AAD, entry)?,
            eligible_from: entry.eligible_from.to_string(),
            eligible_until: entry.eligible_until.map(|d| d.to_string()),
        })
    }
}

/// Seals every entry, using every core.
pub fn seal_all(keys: &Keys, org_id: &str, entries: &[(u64, RosterEntry)]) -> Result<Vec<RosterRow>, CryptoError> {
    let threads = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1).max(1);
    let chunk = entries.len().div_ceil(threads).max(1);
    let indexer = RosterIndexer::new(keys, org_id);
    let indexer = &indexer;
    std::thread::scope(|scope| {
        let handles: Vec<_> = entries
            .chunks(chunk)
            .map(|part| scope.spawn(move || part.iter().map(|(_, e)| indexer.row(keys, e)).collect::<Result<Vec<_>, _>>()))
            .collect();
        let mut rows = Vec::with_capacity(entries.len());
        for h in handles {
            rows.extend(h.join().map_err(|_| CryptoError::Malformed)??);
        }
        Ok(rows)
    })
}

/// Progress of the write phase (the CLI draws a bar; tests and logs may listen).
pub trait Progress: Send {
    fn written(&mut self, done: u64, total: u64);
}

impl Progress for () {
    fn written(&mut self, _: u64, _: u64) {}
}

/// Imports a checked, sealed roster for `org` in one transaction.
pub async fn write(app: &App, org: &Organization, rows: &[RosterRow], progress: &mut dyn Progress) -> Result<ImportStats, ImportError> {
    let import_id = new_id();
    let mut import = app.store.begin_roster_import(&org.id, &import_id, app.now()).await?;
    let total = rows.len() as u64;
    let mut done = 0u64;
    for batch in rows.chunks(WRITE_BATCH) {
        import.add(batch).await?;
        done += batch.len() as u64;
        progress.written(done, total);
    }
    let ended_on = today_jst(app.now()) - Duration::days(1);
    let stats = import.commit(&ended_on.to_string(), app.now()).await?;
    tracing::info!(org = %org.insurer_number, rows = stats.rows, ended = stats.ended, "roster imported");
    Ok(stats)
}

/// The whole import of one file's bytes.
pub async fn import_bytes(
    app: &App,
    org: &Organization,
    bytes: &[u8],
    encoding: Encoding,
    progress: &mut dyn Progress,
) -> Result<ImportStats, ImportError> {
    let text = decode(bytes, encoding)?;
    let entries = parse(&text, org)?;
    let rows = seal_all(&app.keys, &org.id, &entries)?;
    write(app, org, &rows, progress).await
}

#[cfg(test)]
mod tests {
    use super::*;
    use domain::insurer::InsurerNumber;
    use domain::org::{CardPattern, OrgType};

    fn org() -> Organization {
        Organization {
            id: "o".into(),
            insurer_number: InsurerNumber::parse("133033").expect("valid"),
            org_type: OrgType::HealthInsurance,
            name: "x".into(),
            point_name: None,
            checkup_linked: false,
            card_pattern: CardPattern::SymbolAndNumber,
        }
    }

    #[test]
    fn line_numbers_count_lf_and_crlf_files_alike() {
        let header = "insurer_number,symbol,number,branch,family_name_kana,given_name_kana,birth_date,eligible_from,eligible_until";
        for nl in ["\n", "\r\n"] {
            let text = [header, "133033,1,2,,ヤマダ,ハナコ,1990-04-01,2020-04-01,", "133033,1,3,,ヤマダ,ハナコ,1990-04-01,2020-04-01,", "133033,1,4,,山田,ハナコ,1990-04-01,2020-04-01,"].join(nl);
            match parse(&text, &org()) {
                Err(ImportError::Rows(e)) => assert_eq!(e.iter().map(|e| e.line).collect::<Vec<_>>(), [4], "{nl:?}"),
                other => panic!("{other:?}"),
            }
        }
    }

    #[test]
    fn shift_jis_is_detected() {
        let (bytes, _, _) = encoding_rs::SHIFT_JIS.encode("ﾔﾏﾀﾞ,ハナコ");
        assert_eq!(decode(&bytes, Encoding::Auto).expect("decode"), "ﾔﾏﾀﾞ,ハナコ");
        assert_eq!(decode("\u{feff}abc".as_bytes(), Encoding::Auto).expect("decode"), "abc");
        assert!(matches!(decode(&bytes, Encoding::Utf8), Err(ImportError::Encoding(_))));
    }
}
