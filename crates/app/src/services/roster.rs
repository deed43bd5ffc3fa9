//! Roster (名簿) import: an insurer's CSV file (UTF-8 or Shift_JIS/CP932) becomes sealed
//! roster records with keyed blind indexes, in one transaction.
//!
//! The whole file is read and checked first; a file with any bad row is refused with every
//! problem and its line number, and nothing is written. Then every row gets its blind indexes
//! and a MAC of its content (on all cores), and inside one database transaction — holding the
//! organization's lock, committing only at the end, so an error, an interrupt or a killed
//! process leaves the previous roster untouched — the file is compared with the stored roster:
//! new and changed records are sealed and written (in key order, sealing the next batch while
//! the database writes this one), unchanged ones are skipped, and records absent from the file
//! keep existing (accounts may link to them) but their eligibility ends yesterday (Japan time).

use std::collections::HashMap;

use domain::card::CardId;
use domain::org::Organization;
use domain::roster::{map_header, RosterEntry};
use store::{ImportStats, RecordRef, RosterRow, StoredRecord};
use time::{Date, Duration, OffsetDateTime, UtcOffset};

use crate::crypto::{CryptoError, Keys, Macer, LEGACY_MAC_KEY};
use crate::error::ServiceResult;
use crate::services::new_id;
use crate::state::App;

pub const ROSTER_AAD: &str = "roster_records";
/// Rows per call into the store: sealed while the previous batch is written, and the
/// progress granularity.
const WRITE_BATCH: usize = 10_000;

/// Today in Japan, where eligibility dates are meant.
pub fn today_jst(now: OffsetDateTime) -> Date {
    now.to_offset(UtcOffset::from_hms(9, 0, 0).unwrap_or(UtcOffset::UTC)).date()
}

/// How a roster file's bytes are decoded: the same rules as the health-record CSV files.
pub use records::health_csv::Encoding;

/// Caps applied to one roster file, checked before anything is held per row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Limits {
    /// Largest accepted file, in bytes (checked before decoding).
    pub max_bytes: usize,
    /// Longest accepted cell, in characters: longer cells are a problem of their line, and the
    /// row is not kept (no roster column is near this long: names are at most 40 characters).
    pub max_field_chars: usize,
}

impl Default for Limits {
    /// 1 GiB: about ten million rows of ~100 bytes (the benchmark's million rows are ~90 MB).
    fn default() -> Self {
        Limits { max_bytes: 1024 * 1024 * 1024, max_field_chars: 200 }
    }
}

/// Most problems listed for a refused file (the first ones by line).
const MAX_ERRORS: usize = 1000;

/// One problem in the file, by line number (1 = the header).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LineError {
    pub line: u64,
    pub message: String,
}

#[derive(Debug, thiserror::Error)]
pub enum ImportError {
    #[error("the file is larger than {limit} bytes; nothing was imported")]
    TooLarge { limit: usize },
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
    // `decode` fails only on the encoding.
    records::health_csv::decode(bytes, encoding).map_err(|e| {
        ImportError::Encoding(match e {
            records::health_csv::CsvError::Encoding(name) => name,
            _ => "the file's encoding",
        })
    })
}

/// Checks the file's size, decodes it and parses it (see [`parse`]): bytes in, checked entries
/// or every problem out; no I/O.
pub fn read(
    bytes: &[u8],
    encoding: Encoding,
    org: &Organization,
    limits: &Limits,
) -> Result<Vec<(u64, RosterEntry)>, ImportError> {
    if bytes.len() > limits.max_bytes {
        return Err(ImportError::TooLarge { limit: limits.max_bytes });
    }
    let text = decode(bytes, encoding)?;
    parse(&text, org, limits)
}

/// Keeps the problems with the [`MAX_ERRORS`] smallest line numbers, in line order (a stable
/// sort: problems of one line keep their order). Called as problems accumulate, so a file with
/// millions of bad rows holds at most twice that many.
fn keep_first_errors(errors: &mut Vec<LineError>) {
    errors.sort_by_key(|e| e.line);
    errors.truncate(MAX_ERRORS);
}

/// Notes a problem, keeping the list bounded (see [`keep_first_errors`]).
fn note(errors: &mut Vec<LineError>, e: LineError) {
    errors.push(e);
    if errors.len() >= 2 * MAX_ERRORS {
        keep_first_errors(errors);
    }
}

/// Parses and checks the whole file (rows in parallel on every core); returns the entries with
/// their line numbers, or every problem found (the first [`MAX_ERRORS`] by line).
pub fn parse(text: &str, org: &Organization, limits: &Limits) -> Result<Vec<(u64, RosterEntry)>, ImportError> {
    let mut reader = csv::ReaderBuilder::new().has_headers(false).flexible(true).from_reader(text.as_bytes());
    let mut records = reader.records();
    let header = match records.next() {
        Some(Ok(h)) => h,
        Some(Err(e)) => {
            return Err(ImportError::Rows(vec![LineError { line: 1, message: format!("unreadable header: {e}") }]))
        }
        None => return Err(ImportError::Empty),
    };
    if let Some(i) = header.iter().position(|f| f.chars().count() > limits.max_field_chars) {
        let message = format!("header column {} is longer than {} characters", i + 1, limits.max_field_chars);
        return Err(ImportError::Rows(vec![LineError { line: 1, message }]));
    }
    let header_fields: Vec<&str> = header.iter().collect();
    let columns = map_header(&header_fields)
        .map_err(|e| ImportError::Rows(vec![LineError { line: 1, message: e.to_string() }]))?;
    let mut lines = records::health_csv::LineCounter::new(text);
    let mut errors = Vec::new();
    // Rows that cannot be entries (wrong field count, an overlong cell) are noted here and not
    // kept, so what is held until the parallel check is rows of the header's width only.
    let mut rows = Vec::new();
    for record in records {
        match record {
            Ok(r) if r.iter().all(|f| f.trim().is_empty()) => {}
            Ok(r) if r.len() != columns.count => {
                let message = domain::roster::RowError::FieldCount(r.len()).to_string();
                note(&mut errors, LineError { line: lines.line_at(r.position()), message });
            }
            Ok(r) => match r.iter().position(|f| f.chars().count() > limits.max_field_chars) {
                Some(i) => note(
                    &mut errors,
                    LineError {
                        line: lines.line_at(r.position()),
                        message: format!("column {} is longer than {} characters", i + 1, limits.max_field_chars),
                    },
                ),
                None => rows.push((lines.line_at(r.position()), r)),
            },
            Err(e) => {
                note(&mut errors, LineError { line: lines.line_at(e.position()), message: "unreadable CSV row".into() })
            }
        }
    }

    let parsed = par_map(rows, |(line, r)| {
        let fields: Vec<&str> = r.iter().collect();
        Ok::<_, std::convert::Infallible>((
            line,
            RosterEntry::parse(&fields, &columns, &org.insurer_number).map_err(|e| e.to_string()),
        ))
    })
    .unwrap_or_else(|never| match never {});

    // Duplicates by a 128-bit hash of the record key (two independent 64-bit SipHashes).
    let mut seen: HashMap<(u64, u64), u64> = HashMap::with_capacity(parsed.len());
    let mut entries = Vec::with_capacity(parsed.len());
    for (line, result) in parsed {
        match result {
            Ok(entry) => {
                let key = record_key_text(&entry);
                let digest = (hash_with(0, &key), hash_with(1, &key));
                if let Some(first) = seen.insert(digest, line) {
                    note(
                        &mut errors,
                        LineError {
                            line,
                            message: format!("duplicate of line {first} (same card, branch, name and birth date)"),
                        },
                    );
                } else {
                    entries.push((line, entry));
                }
            }
            Err(message) => note(&mut errors, LineError { line, message }),
        }
    }
    if !errors.is_empty() {
        keep_first_errors(&mut errors);
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

/// Length of the roster's blind indexes and MACs: HMAC-SHA256 truncated to 128 bits, plenty
/// to tell apart every record of an organization, and half the index size of the full MAC.
pub const INDEX_LEN: usize = 16;

/// The id of the MAC key of an organization's roster family, from the stored
/// `organizations.roster_mac_key` (`None`: made before MAC keys had ids, under `m0`).
pub fn roster_key_id(stored: Option<&str>) -> &str {
    stored.unwrap_or(LEGACY_MAC_KEY)
}

/// The roster's blind indexes, keyed per organization so equal cards of two insurers never
/// collide. Each MAC is keyed once and reused for every row.
///
/// Everything of an organization's roster family (its records' indexes, record keys and
/// content MACs, and the de-duplication keys of its health entries) is made under one MAC
/// key, the one the organization names (`Orgs::roster_mac_key`), not the active key: the
/// family moves to another key only as a whole, by `rekey_roster`.
pub struct RosterIndexer {
    org_id: String,
    key_id: String,
    record: Macer,
    card: Macer,
    branch: Macer,
    person: Macer,
    content: Macer,
    health_row: Macer,
}

impl RosterIndexer {
    /// The indexer of `org_id` under the MAC key `key_id`; [`CryptoError::UnknownKey`] when
    /// that key is not configured.
    pub fn with_key(keys: &Keys, key_id: &str, org_id: &str) -> Result<Self, CryptoError> {
        Ok(RosterIndexer {
            org_id: org_id.to_string(),
            key_id: key_id.to_string(),
            record: keys.macer_with(key_id, "roster-record")?,
            card: keys.macer_with(key_id, "roster-card")?,
            branch: keys.macer_with(key_id, "roster-branch")?,
            person: keys.macer_with(key_id, "roster-person")?,
            content: keys.macer_with(key_id, "roster-content")?,
            health_row: keys.macer_with(key_id, crate::services::health_imports::ROW_KEY_PURPOSE)?,
        })
    }

    /// The indexer of `org_id` under the MAC key the organization names. A key that is not
    /// configured is [`ServiceError::Crypto`](crate::error::ServiceError::Crypto)
    /// ([`CryptoError::UnknownKey`]): a configuration error, not the member's.
    pub async fn for_org(app: &App, org_id: &str) -> ServiceResult<Self> {
        let stored = app.store.roster_mac_key(org_id).await?;
        Ok(Self::with_key(&app.keys, roster_key_id(stored.as_deref()), org_id)?)
    }

    /// The id of the MAC key this indexer uses.
    pub fn key_id(&self) -> &str {
        &self.key_id
    }

    /// The full MAC of a health entry's de-duplication input (see `health_imports::row_key`).
    pub(crate) fn health_row_mac(&self, input: &[u8]) -> Vec<u8> {
        self.health_row.mac(input)
    }

    /// The stored row of `entry` under this indexer's key, with the sealed data and the
    /// eligibility as they are stored (re-keying changes the indexes only).
    pub(crate) fn rekeyed_row(
        &self,
        entry: &RosterEntry,
        data_enc: Vec<u8>,
        eligible_from: String,
        eligible_until: Option<String>,
    ) -> Result<RosterRow, CryptoError> {
        let indexed = self.index(entry)?;
        Ok(RosterRow {
            card_index: indexed.record.card_index,
            record_key: indexed.record.record_key,
            branch_index: indexed.branch_index,
            person_index: indexed.person_index,
            content_mac: indexed.content_mac,
            data_enc,
            eligible_from,
            eligible_until,
        })
    }

    fn keyed(&self, m: &Macer, value: &[u8]) -> Vec<u8> {
        let mut input = Vec::with_capacity(self.org_id.len() + 1 + value.len());
        input.extend_from_slice(self.org_id.as_bytes());
        input.push(b'|');
        input.extend_from_slice(value);
        let mut mac = m.mac(&input);
        mac.truncate(INDEX_LEN);
        mac
    }

    pub fn card(&self, card: &CardId) -> Vec<u8> {
        self.keyed(&self.card, card.match_key().as_bytes())
    }

    pub fn branch(&self, branch: &str) -> Vec<u8> {
        self.keyed(&self.branch, branch.as_bytes())
    }

    pub fn person(&self, person_key: &str) -> Vec<u8> {
        self.keyed(&self.person, person_key.as_bytes())
    }

    /// Everything but the sealing: the plaintext to seal is kept for new and changed records.
    fn index(&self, entry: &RosterEntry) -> Result<Indexed, CryptoError> {
        let json = serde_json::to_vec(entry).map_err(|_| CryptoError::Malformed)?;
        Ok(Indexed {
            record: RecordRef {
                card_index: self.card(&entry.card),
                record_key: self.keyed(&self.record, record_key_text(entry).as_bytes()),
            },
            branch_index: entry.card.branch.as_deref().map(|b| self.branch(b)),
            person_index: self.person(&entry.person_key()),
            content_mac: self.keyed(&self.content, &json),
            json,
            eligible_from: entry.eligible_from.to_string(),
            eligible_until: entry.eligible_until.map(|d| d.to_string()),
        })
    }
}

/// One checked entry with its blind indexes, not sealed yet.
struct Indexed {
    record: RecordRef,
    branch_index: Option<Vec<u8>>,
    person_index: Vec<u8>,
    content_mac: Vec<u8>,
    json: Vec<u8>,
    eligible_from: String,
    eligible_until: Option<String>,
}

impl Indexed {
    fn seal(self, keys: &Keys) -> Result<RosterRow, CryptoError> {
        Ok(RosterRow {
            data_enc: keys.seal(ROSTER_AAD, &self.json)?,
            card_index: self.record.card_index,
            record_key: self.record.record_key,
            branch_index: self.branch_index,
            person_index: self.person_index,
            content_mac: self.content_mac,
            eligible_from: self.eligible_from,
            eligible_until: self.eligible_until,
        })
    }
}

/// Runs `f` over `items` on every core, keeping the order. A panic in `f` is a bug and is
/// passed on.
fn par_map<T: Send, U: Send, E: Send>(items: Vec<T>, f: impl Fn(T) -> Result<U, E> + Sync) -> Result<Vec<U>, E> {
    let threads = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1).max(1);
    let chunk = items.len().div_ceil(threads).max(1);
    let mut parts: Vec<Vec<T>> = Vec::new();
    let mut rest = items;
    while rest.len() > chunk {
        let tail = rest.split_off(chunk);
        parts.push(rest);
        rest = tail;
    }
    parts.push(rest);
    let f = &f;
    std::thread::scope(|scope| {
        let handles: Vec<_> = parts
            .into_iter()
            .map(|part| scope.spawn(move || part.into_iter().map(f).collect::<Result<Vec<_>, E>>()))
            .collect();
        let mut out = Vec::new();
        for h in handles {
            match h.join() {
                Ok(part) => out.extend(part?),
                Err(panic) => std::panic::resume_unwind(panic),
            }
        }
        Ok(out)
    })
}

/// What an import will do, decided by comparing the file with the stored roster.
struct Plan {
    new: Vec<Indexed>,
    changed: Vec<Indexed>,
    unchanged: u64,
    ended: Vec<RecordRef>,
}

/// Compares the file's entries with the stored records: new, changed (content or
/// eligibility differ) and unchanged records, and the stored records absent from the file
/// that are still eligible after `ended_on`. New records are sorted by key, so the database
/// writes its B-tree in order.
fn plan(entries: Vec<Indexed>, existing: Vec<StoredRecord>, ended_on: &str) -> Plan {
    let mut stored: HashMap<Vec<u8>, (StoredRecord, bool)> =
        existing.into_iter().map(|r| (r.record_key.clone(), (r, false))).collect();
    let mut plan = Plan { new: Vec::new(), changed: Vec::new(), unchanged: 0, ended: Vec::new() };
    for entry in entries {
        match stored.get_mut(&entry.record.record_key) {
            None => plan.new.push(entry),
            Some((record, seen)) => {
                *seen = true;
                if record.content_mac == entry.content_mac && record.eligible_until == entry.eligible_until {
                    plan.unchanged += 1;
                } else {
                    plan.changed.push(entry);
                }
            }
        }
    }
    plan.ended = stored
        .into_values()
        .filter(|(r, seen)| !seen && r.eligible_until.as_deref().is_none_or(|until| until > ended_on))
        .map(|(r, _)| RecordRef { card_index: r.card_index, record_key: r.record_key })
        .collect();
    plan.new.sort_unstable_by(|a, b| {
        (&a.record.card_index, &a.record.record_key).cmp(&(&b.record.card_index, &b.record.record_key))
    });
    plan
}

/// Progress of the write phase (the CLI draws a bar; tests and logs may listen).
pub trait Progress: Send {
    fn written(&mut self, done: u64, total: u64);
}

impl Progress for () {
    fn written(&mut self, _: u64, _: u64) {}
}

/// How long each phase of an import took.
#[derive(Debug, Clone, Copy, Default)]
pub struct Timings {
    pub parse: std::time::Duration,
    pub index: std::time::Duration,
    pub compare: std::time::Duration,
    pub write: std::time::Duration,
}

/// Writes checked entries for `org` in one transaction: only new and changed records are
/// sealed and written (sealing the next batch while the database writes this one), and the
/// eligibility of stored records absent from the file ends yesterday (Japan time).
async fn import_entries(
    app: &App,
    org: &Organization,
    entries: &[(u64, RosterEntry)],
    progress: &mut dyn Progress,
    timings: &mut Timings,
) -> Result<ImportStats, ImportError> {
    // Indexed under the organization's roster MAC key, checked again once the import holds
    // the organization's lock: a re-key that committed in between means indexing again.
    let mut attempts = 0;
    let (indexed, mut import) = loop {
        let t0 = std::time::Instant::now();
        let stored_key = app.store.roster_mac_key(&org.id).await?;
        let indexer = RosterIndexer::with_key(&app.keys, roster_key_id(stored_key.as_deref()), &org.id)?;
        let indexed = par_map(entries.iter().collect(), |(_, e)| indexer.index(e))?;
        timings.index = t0.elapsed();
        let mut import = app.store.begin_roster_import(&org.id, &new_id(), app.now()).await?;
        if import.mac_key().await? == stored_key {
            break (indexed, import);
        }
        attempts += 1;
        if attempts >= 3 {
            return Err(store::StoreError::Conflict.into());
        }
    };

    let t1 = std::time::Instant::now();
    let ended_on = (today_jst(app.now()) - Duration::days(1)).to_string();
    let existing = import.existing().await?;
    let Plan { new, changed, unchanged, ended } = plan(indexed, existing, &ended_on);
    timings.compare = t1.elapsed();

    let t2 = std::time::Instant::now();
    let stats = ImportStats {
        rows: entries.len() as u64,
        inserted: new.len() as u64,
        updated: changed.len() as u64,
        ended: ended.len() as u64,
    };
    let total = stats.inserted + stats.updated;
    let mut done = 0u64;
    progress.written(done, total);
    for (rows, is_new) in [(new, true), (changed, false)] {
        let mut batches = rows.into_iter().peekable();
        let mut next_batch = || -> Option<Vec<Indexed>> {
            batches.peek()?;
            Some(batches.by_ref().take(WRITE_BATCH).collect())
        };
        let keys = app.keys.clone();
        let mut sealing = next_batch().map(|b| {
            let keys = keys.clone();
            tokio::task::spawn_blocking(move || par_map(b, |i| i.seal(&keys)))
        });
        while let Some(task) = sealing.take() {
            let sealed = task.await.map_err(|_| CryptoError::Malformed)??;
            sealing = next_batch().map(|b| {
                let keys = keys.clone();
                tokio::task::spawn_blocking(move || par_map(b, |i| i.seal(&keys)))
            });
            if is_new {
                import.insert(&sealed).await?;
            } else {
                import.update(&sealed).await?;
            }
            done += sealed.len() as u64;
            progress.written(done, total);
        }
    }
    for batch in ended.chunks(WRITE_BATCH) {
        import.end(batch, &ended_on).await?;
    }
    import.commit(stats).await?;
    timings.write = t2.elapsed();
    tracing::info!(org = %org.insurer_number, rows = stats.rows, inserted = stats.inserted, updated = stats.updated,
        unchanged, ended = stats.ended, "roster imported");
    Ok(stats)
}

/// The whole import of one file's bytes.
#[tracing::instrument(skip_all, fields(org_id = %org.id))]
pub async fn import_bytes(
    app: &App,
    org: &Organization,
    bytes: &[u8],
    encoding: Encoding,
    progress: &mut dyn Progress,
) -> Result<(ImportStats, Timings), ImportError> {
    let t0 = std::time::Instant::now();
    let entries = read(bytes, encoding, org, &Limits::default())?;
    let mut timings = Timings { parse: t0.elapsed(), ..Timings::default() };
    let stats = import_entries(app, org, &entries, progress, &mut timings).await?;
    Ok((stats, timings))
}

#[cfg(test)]
mod tests {
    use super::*;
    use domain::insurer::InsurerNumber;
    use domain::org::{CardPattern, OrgType};
    use proptest::prelude::*;

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
            let text = [
                header,
                "133033,1,2,,ヤマダ,ハナコ,1990-04-01,2020-04-01,",
                "133033,1,3,,ヤマダ,ハナコ,1990-04-01,2020-04-01,",
                "133033,1,4,,山田,ハナコ,1990-04-01,2020-04-01,",
            ]
            .join(nl);
            match parse(&text, &org(), &Limits::default()) {
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

    #[test]
    fn an_overlong_file_is_refused_before_decoding() {
        let text = format!("{HEADER}\n133033,1,2,,ヤマダ,ハナコ,1990-04-01,2020-04-01,\n");
        let limits = Limits { max_bytes: text.len() - 1, ..Limits::default() };
        assert!(
            matches!(read(text.as_bytes(), Encoding::Auto, &org(), &limits), Err(ImportError::TooLarge { limit }) if limit == text.len() - 1)
        );
        assert_eq!(read(text.as_bytes(), Encoding::Auto, &org(), &Limits::default()).map(|e| e.len()).ok(), Some(1));
        assert_eq!(Limits::default().max_bytes, 1024 * 1024 * 1024);
    }

    #[test]
    fn one_enormous_field_is_refused_by_the_cell_cap() {
        // 4 MiB in the family name, then the same in the header: refused by length, before the
        // kana conversion (which normalizes the whole cell) ever sees it.
        let huge = "ア".repeat(4 * 1024 * 1024 / 3);
        let text = format!("{HEADER}\n133033,1,2,,{huge},ハナコ,1990-04-01,2020-04-01,\n");
        match read(text.as_bytes(), Encoding::Auto, &org(), &Limits::default()) {
            Err(ImportError::Rows(e)) => {
                assert_eq!(e, [LineError { line: 2, message: "column 5 is longer than 200 characters".into() }])
            }
            other => panic!("{other:?}"),
        }
        let text = format!("{huge},{HEADER}\n");
        match read(text.as_bytes(), Encoding::Auto, &org(), &Limits::default()) {
            Err(ImportError::Rows(e)) => {
                assert_eq!(e, [LineError { line: 1, message: "header column 1 is longer than 200 characters".into() }])
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn a_million_columns_and_a_million_bad_rows_are_refused_with_bounded_errors() {
        let wide = format!("x{}", ",".repeat(1_000_000));
        let text = format!("{HEADER}\n{wide}\n");
        match read(text.as_bytes(), Encoding::Auto, &org(), &Limits::default()) {
            Err(ImportError::Rows(e)) => {
                assert_eq!(e, [LineError { line: 2, message: "expected 9 fields, found 1000001".into() }])
            }
            other => panic!("{other:?}"),
        }
        // Bad rows beyond the listed ones are not held: the first 1000 by line are reported.
        let mut text = String::from(HEADER);
        for _ in 0..300_000 {
            text.push_str("\nx");
        }
        match read(text.as_bytes(), Encoding::Auto, &org(), &Limits::default()) {
            Err(ImportError::Rows(e)) => {
                assert_eq!(e.len(), MAX_ERRORS);
                assert_eq!(e.first().map(|e| e.line), Some(2));
                assert_eq!(e.last().map(|e| e.line), Some(1001));
            }
            other => panic!("{other:?}"),
        }
    }

    const HEADER: &str =
        "insurer_number,symbol,number,branch,family_name_kana,given_name_kana,birth_date,eligible_from,eligible_until";

    fn valid_file() -> String {
        [
            HEADER,
            "133033,1234,5678,,ヤマダ,ハナコ,1990-04-01,2020-04-01,",
            "133033,1234,5679,01,ｻﾄｳ,たろう,1985/12/24,2020-04-01,2030-03-31",
            "\"133033\",\"AB-1\",\"９９\",\"02\",\"スズキ\",\"イチロー\",\"2001-01-01\",\"2020-04-01\",\"\"",
        ]
        .join("\r\n")
    }

    /// What any refused file must look like: problems in line order, at most [`MAX_ERRORS`],
    /// never a line before the header; accepted entries in line order after the header.
    fn check_outcome(result: &Result<Vec<(u64, RosterEntry)>, ImportError>) -> Result<(), TestCaseError> {
        match result {
            Ok(entries) => {
                prop_assert!(!entries.is_empty());
                prop_assert!(entries.windows(2).all(|w| w[0].0 < w[1].0), "entries out of line order");
                prop_assert!(entries.iter().all(|(line, _)| *line >= 2));
            }
            Err(ImportError::Rows(errors)) => {
                prop_assert!(!errors.is_empty() && errors.len() <= MAX_ERRORS);
                prop_assert!(errors.windows(2).all(|w| w[0].line <= w[1].line), "errors out of line order");
                prop_assert!(errors.iter().all(|e| e.line >= 1));
            }
            Err(ImportError::Encoding(_) | ImportError::Empty | ImportError::TooLarge { .. }) => {}
            Err(other) => prop_assert!(false, "a parser returned {other:?}"),
        }
        Ok(())
    }

    /// Cells as spreadsheets and hand edits write them: kana of both widths, full-width digits
    /// and hyphens, quotes, separators, line breaks, a BOM, controls and the odd kanji.
    const CELL: &str = "[0-9０-９a-zA-Z\\-ー－／/ 　,\"\r\nアイウヴァッｱｲｳﾞﾟｰあいう山田\u{feff}\u{0}\t]{0,24}";

    proptest! {
        #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

        #[test]
        fn random_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..2048)) {
            for encoding in [Encoding::Auto, Encoding::Utf8, Encoding::ShiftJis] {
                check_outcome(&read(&bytes, encoding, &org(), &Limits::default()))?;
                let mut with_header = format!("{HEADER}\n").into_bytes();
                with_header.extend_from_slice(&bytes);
                check_outcome(&read(&with_header, encoding, &org(), &Limits::default()))?;
            }
        }

        #[test]
        fn csv_like_rows_never_panic(rows in proptest::collection::vec(proptest::collection::vec(CELL, 0..12), 0..8),
                                     bom in any::<bool>(), crlf in any::<bool>()) {
            let nl = if crlf { "\r\n" } else { "\n" };
            let mut text = String::from(if bom { "\u{feff}" } else { "" });
            text.push_str(HEADER);
            for row in &rows {
                text.push_str(nl);
                text.push_str(&row.join(","));
            }
            check_outcome(&read(text.as_bytes(), Encoding::Auto, &org(), &Limits::default()))?;
            // The same file as Windows writes it (Shift_JIS; what it cannot encode becomes a
            // numeric character reference), read detected and forced.
            let (sjis, _, _) = encoding_rs::SHIFT_JIS.encode(&text);
            check_outcome(&read(&sjis, Encoding::Auto, &org(), &Limits::default()))?;
            check_outcome(&read(&sjis, Encoding::ShiftJis, &org(), &Limits::default()))?;
        }

        #[test]
        fn mutated_valid_files_never_panic(edits in proptest::collection::vec((any::<usize>(), any::<u8>()), 1..8)) {
            let mut bytes = valid_file().into_bytes();
            for (at, byte) in edits {
                let len = bytes.len();
                bytes[at % len] = byte;
            }
            check_outcome(&read(&bytes, Encoding::Auto, &org(), &Limits::default()))?;
        }

        #[test]
        fn spliced_valid_files_never_panic(a in any::<usize>(), b in any::<usize>(), c in any::<usize>()) {
            // A slice cut out and put back elsewhere: split quotes, rows and UTF-8 sequences.
            let file = valid_file().into_bytes();
            let (x, y) = { let (x, y) = (a % file.len(), b % file.len()); (x.min(y), x.max(y)) };
            let mut spliced = [&file[..x], &file[y..]].concat();
            let at = c % (spliced.len() + 1);
            spliced.splice(at..at, file[x..y].iter().copied());
            check_outcome(&read(&spliced, Encoding::Auto, &org(), &Limits::default()))?;
        }

        #[test]
        fn long_cells_are_problems_of_their_line(column in 0usize..9, len in 150usize..3000, quoted in any::<bool>()) {
            let mut cells: Vec<String> =
                "133033,1234,5678,,ヤマダ,ハナコ,1990-04-01,2020-04-01,".split(',').map(str::to_owned).collect();
            cells[column] = "ア".repeat(len);
            if quoted {
                cells[column] = format!("\"{}\"", cells[column]);
            }
            let text = format!("{HEADER}\n{}", cells.join(","));
            let result = read(text.as_bytes(), Encoding::Auto, &org(), &Limits::default());
            check_outcome(&result)?;
            if len > 200 {
                let Err(ImportError::Rows(errors)) = result else { return Err(TestCaseError::fail("accepted")) };
                prop_assert_eq!(&errors[0].message, &format!("column {} is longer than 200 characters", column + 1));
            }
        }
    }
}
