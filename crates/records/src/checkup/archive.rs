//! The ZIP archives 特定健診 results travel in: `DATA/*.xml` (one `ClinicalDocument` per
//! examinee, next to settlement files), an index file (`ix08_V08.xml`-style, outside `DATA/`),
//! a summary file (`su08_V08.xml`) and schema files (`XSD/`), often under one top-level folder.
//! Other vendors' converters put the settlement files (決済情報) in `CLAIMS/` and name the index
//! and summary `index.xml` / `INDEX` and `summary.xml` / `SUMMARY`.
//!
//! Only `DATA/*.xml` entries are read as documents (and an XML index file, checked to be
//! well-formed). Every other file is listed in [`ZipReport::other_files`] with why it was not
//! imported ([`SkipReason`]), without being read: it counts against the entry cap only.

use std::io::{Read, Seek, SeekFrom};

use serde::Serialize;

use super::{parse_document, CheckupDocument, CheckupError, Limits};

/// Limits applied to an archive, on top of the per-document [`Limits`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ZipLimits {
    /// Applied to every `DATA/*.xml` entry (and the index), counted on the decompressed bytes.
    pub document: Limits,
    /// Largest accepted archive, in bytes.
    pub max_archive_bytes: u64,
    /// Most entries (files and folders) in the archive's directory.
    pub max_entries: usize,
    /// Most bytes decompressed from the whole archive, counted while reading (headers are not
    /// trusted).
    pub max_total_uncompressed_bytes: u64,
    /// Largest accepted ratio of decompressed to compressed bytes of one entry, counted while
    /// reading. XML compresses about 10:1; a zip bomb, 1000:1 and more.
    pub max_compression_ratio: u64,
}

impl Default for ZipLimits {
    fn default() -> Self {
        Self {
            document: Limits::default(),
            max_archive_bytes: 256 * 1024 * 1024,
            max_entries: 20_000,
            max_total_uncompressed_bytes: 1024 * 1024 * 1024,
            max_compression_ratio: 100,
        }
    }
}

/// Small entries may compress beyond the ratio (a 2 KiB file into 20 bytes); this much is
/// always allowed on top of `compressed × ratio`.
const RATIO_ALLOWANCE: u64 = 64 * 1024;

/// Why a whole archive was refused. Per-document problems are in [`ZipDocument::result`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ZipError {
    #[error("the archive is larger than {limit} bytes")]
    TooLarge { limit: u64 },
    #[error("not a readable ZIP archive: {0}")]
    NotAZip(String),
    #[error("the archive has more than {limit} entries")]
    TooManyEntries { limit: usize },
    #[error("the archive decompresses to more than {limit} bytes")]
    TotalTooLarge { limit: u64 },
    #[error("entry {entry:?} decompresses more than {ratio}:1 (zip bomb)")]
    CompressionRatio { entry: String, ratio: u64 },
    #[error("entry {entry:?} is encrypted")]
    Encrypted { entry: String },
    #[error("index file {entry:?} refused: {error}")]
    BadIndex { entry: String, error: CheckupError },
    #[error("the archive has no DATA/*.xml entry")]
    NoDocuments,
    #[error("read error: {0}")]
    Read(String),
}

/// The outcome of one archive.
#[derive(Debug, Clone, PartialEq)]
pub struct ZipReport {
    /// One per `DATA/*.xml` entry that is a checkup document or failed to parse, in archive order.
    pub documents: Vec<ZipDocument>,
    /// `DATA/*.xml` entries that are well-formed but not checkup results (settlement files,
    /// 特定保健指導 documents).
    pub skipped: Vec<SkippedEntry>,
    /// The archive's other files (not folders), in archive order: index, summary, `CLAIMS/`,
    /// `XSD/` and anything else, none imported. Names longer than [`MAX_LISTED_NAME_CHARS`]
    /// are cut.
    pub other_files: Vec<SkippedEntry>,
    /// The index file, when the archive has one.
    pub index: Option<IndexFile>,
}

impl ZipReport {
    /// Whether every document parsed.
    pub fn is_complete(&self) -> bool {
        self.documents.iter().all(|d| d.result.is_ok())
    }

    /// The entries that failed, with their errors.
    pub fn failures(&self) -> impl Iterator<Item = (&str, &CheckupError)> {
        self.documents.iter().filter_map(|d| d.result.as_ref().err().map(|e| (d.entry.as_str(), e)))
    }

    /// All documents, or every failure (for an all-or-nothing import).
    #[allow(clippy::type_complexity)]
    pub fn into_documents(self) -> Result<Vec<(String, CheckupDocument)>, Vec<(String, CheckupError)>> {
        let mut ok = Vec::with_capacity(self.documents.len());
        let mut failed = Vec::new();
        for d in self.documents {
            match d.result {
                Ok(doc) => ok.push((d.entry, doc)),
                Err(e) => failed.push((d.entry, e)),
            }
        }
        if failed.is_empty() {
            Ok(ok)
        } else {
            Err(failed)
        }
    }
}

/// One `DATA/*.xml` entry and what became of it.
#[derive(Debug, Clone, PartialEq)]
pub struct ZipDocument {
    /// The entry's path in the archive.
    pub entry: String,
    pub result: Result<CheckupDocument, CheckupError>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SkippedEntry {
    pub entry: String,
    pub reason: SkipReason,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum SkipReason {
    /// A 決済情報 file (root element `checkupClaim`).
    Settlement,
    /// A `ClinicalDocument` whose 報告区分 is 特定保健指導 (2x).
    HealthGuidance { report_kind: String },
    /// A file under `CLAIMS/`: 決済情報 (settlement), not results.
    Claims,
    /// The index file (交換用基本情報: `ix*.xml`, `index.xml`, `INDEX`).
    Index,
    /// The summary file (集計情報: `su*.xml`, `summary.xml`, `SUMMARY`).
    Summary,
    /// A schema file under `XSD/`.
    Schema,
    /// A file in `DATA/` that is not `.xml`.
    NotXml,
    /// Anything else: not part of the 特定健診 layout.
    Unknown,
}

impl SkipReason {
    /// A stable name (`settlement`, `claims`, …) for logs and translation keys.
    pub fn as_str(&self) -> &'static str {
        match self {
            Self::Settlement => "settlement",
            Self::HealthGuidance { .. } => "health_guidance",
            Self::Claims => "claims",
            Self::Index => "index",
            Self::Summary => "summary",
            Self::Schema => "schema",
            Self::NotXml => "not_xml",
            Self::Unknown => "unknown",
        }
    }
}

impl std::fmt::Display for SkipReason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Settlement => f.write_str("settlement file (決済情報), not results"),
            Self::HealthGuidance { report_kind } => {
                write!(f, "特定保健指導 document (報告区分 {report_kind}), not results")
            }
            Self::Claims => f.write_str("CLAIMS/ settlement file (決済情報), not results"),
            Self::Index => f.write_str("index file (交換用基本情報), not results"),
            Self::Summary => f.write_str("summary file (集計情報), not results"),
            Self::Schema => f.write_str("schema file (XSD/), not results"),
            Self::NotXml => f.write_str("not an .xml file"),
            Self::Unknown => f.write_str("not part of the 特定健診 archive layout"),
        }
    }
}

/// Entry names in [`ZipReport::other_files`] are cut to this many characters.
pub const MAX_LISTED_NAME_CHARS: usize = 200;

/// The archive's index file (交換用基本情報), checked to be well-formed XML without a DOCTYPE.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct IndexFile {
    pub entry: String,
    /// Local name of its root element (`index` in the MHLW archives).
    pub root: String,
}

/// Parse every `DATA/*.xml` entry of a 特定健診 ZIP archive.
///
/// Refuses the whole archive (`Err`) when it is too large, unreadable, has too many entries,
/// decompresses beyond [`ZipLimits::max_total_uncompressed_bytes`] or any entry beyond
/// [`ZipLimits::max_compression_ratio`], has an encrypted entry it would read, or has an index
/// file that is not well-formed XML (or has a DOCTYPE); anything wrong with one document is
/// reported in its [`ZipDocument`] and the others are still parsed.
pub fn parse_zip<R: Read + Seek>(mut reader: R, limits: &ZipLimits) -> Result<ZipReport, ZipError> {
    let length = reader.seek(SeekFrom::End(0)).map_err(|e| ZipError::Read(e.to_string()))?;
    if length > limits.max_archive_bytes {
        return Err(ZipError::TooLarge { limit: limits.max_archive_bytes });
    }
    reader.seek(SeekFrom::Start(0)).map_err(|e| ZipError::Read(e.to_string()))?;
    let mut archive = zip::ZipArchive::new(reader).map_err(|e| ZipError::NotAZip(e.to_string()))?;
    if archive.len() > limits.max_entries {
        return Err(ZipError::TooManyEntries { limit: limits.max_entries });
    }

    let mut report = ZipReport { documents: Vec::new(), skipped: Vec::new(), other_files: Vec::new(), index: None };
    let mut total: u64 = 0;
    let mut data_entries = 0usize;
    for i in 0..archive.len() {
        let name = archive.name_for_index(i).unwrap_or_default().to_string();
        let kind = classify_entry(&name);
        let listed = match kind {
            EntryKind::Skip(ref reason) => Some(reason.clone()),
            EntryKind::Index if report.index.is_some() => Some(SkipReason::Index),
            _ => None,
        };
        if let Some(reason) = listed {
            // Not read; folders are not files.
            if !is_folder(&name) {
                let entry = name.chars().take(MAX_LISTED_NAME_CHARS).collect();
                report.other_files.push(SkippedEntry { entry, reason });
            }
            continue;
        }
        let mut file = match archive.by_index(i) {
            Ok(file) => file,
            Err(zip::result::ZipError::UnsupportedArchive(msg)) if msg == zip::result::ZipError::PASSWORD_REQUIRED => {
                return Err(ZipError::Encrypted { entry: name });
            }
            Err(e) => {
                if kind == EntryKind::Data {
                    data_entries += 1;
                    report.documents.push(ZipDocument { entry: name, result: Err(CheckupError::Read(e.to_string())) });
                }
                continue;
            }
        };
        if file.is_dir() {
            continue;
        }
        let read = read_entry(&mut file, &name, limits, &mut total)?;
        drop(file);
        match kind {
            EntryKind::Data => {
                data_entries += 1;
                let result = read.and_then(|bytes| parse_document(&bytes, &limits.document));
                match result {
                    Err(CheckupError::NotClinicalDocument { found }) if local(&found) == "checkupClaim" => {
                        report.skipped.push(SkippedEntry { entry: name, reason: SkipReason::Settlement });
                    }
                    Err(CheckupError::NotACheckup { code }) => {
                        report.skipped.push(SkippedEntry {
                            entry: name,
                            reason: SkipReason::HealthGuidance { report_kind: code },
                        });
                    }
                    result => report.documents.push(ZipDocument { entry: name, result }),
                }
            }
            EntryKind::Index => match read.and_then(|bytes| check_well_formed(&bytes, &limits.document)) {
                Ok(root) => {
                    let entry = name.chars().take(MAX_LISTED_NAME_CHARS).collect();
                    report.other_files.push(SkippedEntry { entry, reason: SkipReason::Index });
                    report.index = Some(IndexFile { entry: name, root });
                }
                Err(error) => return Err(ZipError::BadIndex { entry: name, error }),
            },
            EntryKind::Skip(_) => {}
        }
    }
    if data_entries == 0 {
        return Err(ZipError::NoDocuments);
    }
    Ok(report)
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum EntryKind {
    /// `DATA/*.xml`: read as a document.
    Data,
    /// An XML index file (`ix*.xml`, `index.xml`) outside `DATA/`: checked to be well-formed.
    Index,
    /// Not read, listed with the reason.
    Skip(SkipReason),
}

fn is_folder(name: &str) -> bool {
    name.ends_with('/') || name.ends_with('\\')
}

fn classify_entry(name: &str) -> EntryKind {
    let name = name.replace('\\', "/");
    let mut parts = name.trim_end_matches('/').rsplit('/');
    let file = parts.next().unwrap_or_default();
    let parent = parts.next();
    let lower = file.to_ascii_lowercase();
    let xml = lower.ends_with(".xml") && lower.len() > 4;
    let stem = lower.split('.').next().unwrap_or_default();
    match parent {
        Some(dir) if dir.eq_ignore_ascii_case("DATA") && !is_folder(&name) => {
            if xml {
                EntryKind::Data
            } else {
                EntryKind::Skip(SkipReason::NotXml)
            }
        }
        Some(dir) if dir.eq_ignore_ascii_case("CLAIMS") => EntryKind::Skip(SkipReason::Claims),
        Some(dir) if dir.eq_ignore_ascii_case("XSD") => EntryKind::Skip(SkipReason::Schema),
        _ if xml && (lower.starts_with("ix") || stem == "index") => EntryKind::Index,
        _ if stem == "index" => EntryKind::Skip(SkipReason::Index),
        _ if (xml && lower.starts_with("su")) || stem == "summary" => EntryKind::Skip(SkipReason::Summary),
        _ => EntryKind::Skip(SkipReason::Unknown),
    }
}

fn local(name: &str) -> &str {
    name.rsplit(':').next().unwrap_or(name)
}

/// Read one entry, counting decompressed bytes against the document cap, the ratio cap and the
/// archive total. `Ok(Err(_))` is a per-document failure; `Err(_)` refuses the archive.
fn read_entry<R: Read>(
    file: &mut zip::read::ZipFile<'_, R>,
    name: &str,
    limits: &ZipLimits,
    total: &mut u64,
) -> Result<Result<Vec<u8>, CheckupError>, ZipError> {
    let ratio_cap = file.compressed_size().saturating_mul(limits.max_compression_ratio).saturating_add(RATIO_ALLOWANCE);
    let doc_cap = limits.document.max_document_bytes;
    let mut bytes = Vec::new();
    let mut chunk = [0u8; 16 * 1024];
    loop {
        let n = match file.read(&mut chunk) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Ok(Err(CheckupError::Read(e.to_string()))),
        };
        let read = bytes.len() as u64 + n as u64;
        *total = total.saturating_add(n as u64);
        if read > ratio_cap {
            return Err(ZipError::CompressionRatio { entry: name.to_string(), ratio: limits.max_compression_ratio });
        }
        if *total > limits.max_total_uncompressed_bytes {
            return Err(ZipError::TotalTooLarge { limit: limits.max_total_uncompressed_bytes });
        }
        if read > doc_cap as u64 {
            return Ok(Err(CheckupError::TooLarge { limit: doc_cap }));
        }
        bytes.extend_from_slice(&chunk[..n]);
    }
    Ok(Ok(bytes))
}

/// Walk an XML file with the same refusals as documents (size, DOCTYPE, depth, undefined
/// entities, UTF-8) and return its root element's local name.
fn check_well_formed(bytes: &[u8], limits: &Limits) -> Result<String, CheckupError> {
    use quick_xml::events::Event;
    if bytes.len() > limits.max_document_bytes {
        return Err(CheckupError::TooLarge { limit: limits.max_document_bytes });
    }
    let bytes = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes);
    std::str::from_utf8(bytes).map_err(|_| CheckupError::NotUtf8)?;
    let mut reader = quick_xml::Reader::from_reader(bytes);
    let mut depth = 0usize;
    let mut root = None;
    loop {
        let event = reader
            .read_event()
            .map_err(|e| CheckupError::Malformed { position: reader.error_position(), message: e.to_string() })?;
        match event {
            Event::Start(ref e) | Event::Empty(ref e) => {
                if depth == 0 && root.is_some() {
                    return Err(CheckupError::Malformed {
                        position: reader.buffer_position(),
                        message: "a second root element".into(),
                    });
                }
                if depth + 1 > limits.max_depth {
                    return Err(CheckupError::TooDeep { limit: limits.max_depth });
                }
                for attr in e.attributes() {
                    let attr = attr.map_err(|e| CheckupError::Malformed {
                        position: reader.buffer_position(),
                        message: e.to_string(),
                    })?;
                    attr.normalized_value(quick_xml::XmlVersion::Implicit1_0).map_err(|e| CheckupError::Malformed {
                        position: reader.buffer_position(),
                        message: e.to_string(),
                    })?;
                }
                root.get_or_insert_with(|| String::from_utf8_lossy(e.local_name().as_ref()).into_owned());
                if matches!(event, Event::Start(_)) {
                    depth += 1;
                }
            }
            Event::End(_) => depth = depth.saturating_sub(1),
            Event::DocType(_) => return Err(CheckupError::Doctype),
            Event::GeneralRef(r) if !r.is_char_ref() && !matches!(&*r, b"lt" | b"gt" | b"amp" | b"apos" | b"quot") => {
                return Err(CheckupError::UndefinedEntity {
                    name: String::from_utf8_lossy(&r).chars().take(64).collect(),
                });
            }
            Event::Eof => break,
            _ => {}
        }
    }
    if depth != 0 {
        return Err(CheckupError::Truncated);
    }
    root.ok_or(CheckupError::Empty)
}
