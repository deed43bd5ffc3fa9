//! 特定健診 result files: one HL7 CDA R2 `ClinicalDocument` per examinee
//! ([`parse_document`], [`parse_reader`]) and the ZIP archives they are delivered in
//! ([`parse_zip`]).
//!
//! # What is read
//!
//! | field | where |
//! |---|---|
//! | 保険者番号 | `recordTarget/patientRole/id[@root="1.2.392.200119.6.101"]/@extension` |
//! | 被保険者証等記号 | `…/id[@root="1.2.392.200119.6.204"]/@extension` |
//! | 被保険者証等番号 | `…/id[@root="1.2.392.200119.6.205"]/@extension` |
//! | 枝番 | `…/id[@root="1.2.392.200119.6.211"]/@extension` |
//! | 生年月日 | `patientRole/patient/birthTime/@value` (YYYYMMDD) |
//! | 性別 | `patientRole/patient/administrativeGenderCode/@code` (1 男, 2 女; OID 1.2.392.200119.6.1104) |
//! | 健診実施日 | `documentationOf/serviceEvent/effectiveTime/@value` (or `low/@value`), else the first observation's `effectiveTime` |
//! | 健診機関 | `author/assignedAuthor/representedOrganization` (`id[@root="1.2.392.200119.6.102"]`, `name`) |
//! | items | every `observation` under `component/structuredBody`: `code` (JLAC10, OID 1.2.392.200119.6.1005), `value` (`PQ`, `CD`/`CO`, `ST`), `interpretationCode`, `effectiveTime` |
//!
//! An observation `code` written without `codeSystem` (as some vendors' converters write every
//! item) is read as a JLAC10 code when it is JLAC10-shaped ([`crate::jlac10::is_jlac10_shaped`])
//! and counted ([`CheckupDocument::codes_without_system`]); any other code without a code system,
//! and an observation without a code, refuse the document with the observation's number and
//! element path ([`CheckupError::ObservationCode`]).
//!
//! Identifiers are returned as the document writes them (trimmed): the MHLW files often carry
//! the card symbol and number in full-width characters, so matching against the roster must
//! normalize them the way the roster is normalized (see `domain::card`).
//!
//! # Hostile input
//!
//! Documents are capped in size ([`Limits::max_document_bytes`]), nesting depth, attributes per
//! element and number of observations; any `<!DOCTYPE` is refused before anything else is read,
//! so no entity is ever defined, expanded or fetched; references to undefined entities are
//! errors. Only UTF-8 is accepted (the MHLW files are UTF-8). Nothing here panics on input.

mod archive;
mod xml;

use std::io::Read;

use serde::{Deserialize, Serialize};
use time::Date;

use crate::jlac10::{Judgement, Reference};

pub use archive::{
    parse_zip, IndexFile, SkipReason, SkippedEntry, ZipDocument, ZipError, ZipLimits, ZipReport, MAX_LISTED_NAME_CHARS,
};
pub use xml::{OID_CARD_BRANCH, OID_CARD_NUMBER, OID_CARD_SYMBOL, OID_FACILITY, OID_INSURER_NUMBER, OID_REPORT_KIND};

/// Limits applied to one document.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Limits {
    /// Largest accepted document, in bytes. A 特定健診 document is typically 20–80 KiB.
    pub max_document_bytes: usize,
    /// Deepest element nesting (a CDA document nests about 12 levels).
    pub max_depth: usize,
    /// Most `observation` elements in one document (the 特定健診 item table has about 200).
    pub max_observations: usize,
    /// Most attributes on one element.
    pub max_attributes_per_element: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_document_bytes: 5 * 1024 * 1024,
            max_depth: 64,
            max_observations: 2_000,
            max_attributes_per_element: 64,
        }
    }
}

/// One examinee's checkup.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CheckupDocument {
    pub examinee: Examinee,
    /// 健診実施日.
    #[serde(with = "iso_date")]
    pub examined_on: Date,
    /// The examining facility (健診機関), when the document names it.
    #[serde(default)]
    pub facility: Option<Facility>,
    /// Every observation of the document, in document order; unknown codes included.
    pub items: Vec<Item>,
}

impl CheckupDocument {
    /// The first item with a table key (e.g. `"hba1c"`), in document order.
    pub fn item(&self, key: &str) -> Option<&Item> {
        self.items.iter().find(|i| i.key == Some(key))
    }

    /// How many observation codes the document wrote without `codeSystem`; the parser reads
    /// them as JLAC10 codes (it refuses any such code that is not JLAC10-shaped).
    pub fn codes_without_system(&self) -> usize {
        self.items.iter().filter(|i| i.code_system.is_none()).count()
    }
}

/// The examinee as the insurer's card identifies them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Examinee {
    /// 保険者番号.
    pub insurer_number: String,
    /// 被保険者証等記号; absent on cards that have none.
    pub symbol: Option<String>,
    /// 被保険者証等番号.
    pub number: String,
    /// 枝番.
    pub branch: Option<String>,
    /// 生年月日.
    #[serde(with = "iso_date")]
    pub birth_date: Date,
    pub gender: Option<Gender>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Gender {
    Male,
    Female,
}

/// 健診機関.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Facility {
    /// 健診機関番号 (10 digits).
    pub number: Option<String>,
    pub name: Option<String>,
}

/// One observation.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Item {
    /// The item code (a JLAC10 17-character code for 特定健診 items).
    pub code: String,
    /// `observation/code@codeSystem`, when present (and not empty). A code written without one
    /// is JLAC10-shaped: the parser refuses any other.
    pub code_system: Option<String>,
    /// The table key of a known JLAC10 code ([`crate::jlac10::keys`]); `None` for unknown codes.
    pub key: Option<&'static str>,
    /// Japanese name: the table's for known codes, else the document's `displayName`, else the code.
    pub name: String,
    pub value: Value,
    /// `interpretationCode@code` (e.g. `H`/`L` for values beyond the input range).
    pub interpretation: Option<String>,
    /// MHLW reference values, for mapped items whose unit matches the table's.
    pub reference: Option<Reference>,
}

impl Item {
    /// The value against its reference values, when both are there and comparable.
    pub fn judgement(&self) -> Option<Judgement> {
        self.reference.as_ref()?.judge(&self.value)
    }
}

/// An observation's value.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Value {
    /// `xsi:type="PQ"`: the decimal exactly as written, its numeric value and the unit.
    Quantity { value: String, number: f64, unit: Option<String> },
    /// `xsi:type="CD"` or `"CO"`: a code (e.g. urine protein `1`…`5` = −…+++).
    Coded { code: String, code_system: Option<String>, display: Option<String> },
    /// `xsi:type="ST"` (or any other type carried as text).
    Text { text: String },
    /// No value, or a `nullFlavor` (e.g. not performed).
    Missing { null_flavor: Option<String> },
}

/// A field of the document named by an error. Errors never carry the field's value: it is
/// personal data and errors end up in logs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Field {
    InsurerNumber,
    Symbol,
    Number,
    Branch,
    BirthDate,
    Gender,
    ExaminationDate,
    ObservationCode,
    ObservationValue,
}

impl std::fmt::Display for Field {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::InsurerNumber => "insurer number (保険者番号)",
            Self::Symbol => "card symbol (記号)",
            Self::Number => "card number (番号)",
            Self::Branch => "branch number (枝番)",
            Self::BirthDate => "birth date (生年月日)",
            Self::Gender => "gender (性別)",
            Self::ExaminationDate => "examination date (健診実施日)",
            Self::ObservationCode => "observation code",
            Self::ObservationValue => "observation value",
        })
    }
}

/// Why a document was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CheckupError {
    #[error("the document is larger than {limit} bytes")]
    TooLarge { limit: usize },
    #[error("the document is empty or has no root element")]
    Empty,
    #[error("the document is not valid UTF-8")]
    NotUtf8,
    #[error("unsupported encoding {declared:?}: only UTF-8 is accepted")]
    UnsupportedEncoding { declared: String },
    #[error("DOCTYPE declarations are not accepted (no entity definitions, no external entities)")]
    Doctype,
    #[error("reference to the undefined entity &{name};")]
    UndefinedEntity { name: String },
    #[error("elements nest deeper than {limit} levels")]
    TooDeep { limit: usize },
    #[error("an element has more than {limit} attributes")]
    TooManyAttributes { limit: usize },
    #[error("more than {limit} observations")]
    TooManyObservations { limit: usize },
    #[error("malformed XML at byte {position}: {message}")]
    Malformed { position: u64, message: String },
    #[error("the document ends before its root element is closed")]
    Truncated,
    #[error("the root element is {found:?}, not an HL7 CDA ClinicalDocument (urn:hl7-org:v3)")]
    NotClinicalDocument { found: String },
    #[error("report kind {code:?} is not a 特定健診 result (20s are 特定保健指導)")]
    NotACheckup { code: String },
    #[error("missing {0}")]
    Missing(Field),
    #[error("invalid {0}")]
    Invalid(Field),
    #[error("{field} given twice with different values")]
    Conflicting { field: Field },
    #[error("observation {code}: {problem}")]
    Observation { code: String, problem: &'static str },
    /// The item code of one observation is missing or unusable: which observation (counted
    /// from 1 in document order) and where (the element path), and what is wrong.
    #[error("{problem} in observation #{observation} ({path})")]
    ObservationCode { observation: usize, path: String, problem: CodeProblem },
    #[error("read error: {0}")]
    Read(String),
}

/// What is wrong with an `observation/code` (see [`CheckupError::ObservationCode`]).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CodeProblem {
    #[error("observation code is missing: the observation has no <code> element")]
    NoCodeElement,
    #[error("observation code is missing: <code> has no code attribute")]
    NoCodeAttribute,
    #[error("observation code is missing: <code> has only nullFlavor={0:?}")]
    NullFlavor(String),
    /// A code without `codeSystem` that is not JLAC10-shaped ([`crate::jlac10::is_jlac10_shaped`]),
    /// so it cannot be read as a JLAC10 item code.
    #[error(
        "observation code {code:?} has no codeSystem and is not a JLAC10 code (17 characters like 9N001000000000001)"
    )]
    UndeclaredNotJlac10 { code: String },
}

/// Parse one document from bytes.
pub fn parse_document(bytes: &[u8], limits: &Limits) -> Result<CheckupDocument, CheckupError> {
    if bytes.len() > limits.max_document_bytes {
        return Err(CheckupError::TooLarge { limit: limits.max_document_bytes });
    }
    xml::parse(bytes, limits)
}

/// Parse one document from a reader, reading at most [`Limits::max_document_bytes`] + 1 bytes.
pub fn parse_reader<R: Read>(reader: R, limits: &Limits) -> Result<CheckupDocument, CheckupError> {
    let bytes = read_capped(reader, limits.max_document_bytes)?;
    parse_document(&bytes, limits)
}

fn read_capped<R: Read>(reader: R, limit: usize) -> Result<Vec<u8>, CheckupError> {
    let mut bytes = Vec::new();
    reader.take(limit as u64 + 1).read_to_end(&mut bytes).map_err(|e| CheckupError::Read(e.to_string()))?;
    if bytes.len() > limit {
        return Err(CheckupError::TooLarge { limit });
    }
    Ok(bytes)
}

/// [`Item`] as read back from JSON: the key as an owned string, mapped to the table's
/// `'static` key (a key this version no longer knows reads back as unknown rather than failing
/// the record).
#[derive(Deserialize)]
struct ItemRepr {
    code: String,
    #[serde(default)]
    code_system: Option<String>,
    #[serde(default)]
    key: Option<String>,
    name: String,
    value: Value,
    #[serde(default)]
    interpretation: Option<String>,
    #[serde(default)]
    reference: Option<Reference>,
}

impl<'de> Deserialize<'de> for Item {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        ItemRepr::deserialize(d).map(Item::from)
    }
}

impl From<ItemRepr> for Item {
    fn from(r: ItemRepr) -> Self {
        Self {
            code: r.code,
            code_system: r.code_system,
            key: r.key.and_then(|k| crate::jlac10::intern_key(&k)),
            name: r.name,
            value: r.value,
            interpretation: r.interpretation,
            reference: r.reference,
        }
    }
}

time::serde::format_description!(iso_date, Date, "[year]-[month]-[day]");
