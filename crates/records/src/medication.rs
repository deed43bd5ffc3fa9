//! お薬履歴 (medication history): the CSV file of dispensings an insurer delivers, one row per
//! drug dispensed to an examinee, into [`MedicationRow`]s ([`parse`]).
//!
//! | column (ja) | column (en) | cell |
//! |---|---|---|
//! | 保険者番号 | `insurer_number` | required |
//! | 記号 | `symbol` | optional column; blank for cards without one |
//! | 番号 | `number` | required |
//! | 枝番 | `branch` | optional column and cell |
//! | 生年月日 | `birth_date` | required date |
//! | 調剤年月日 | `dispensed_on` | required date |
//! | 薬局名 | `pharmacy` | required |
//! | 処方医療機関 | `prescriber` | required: the prescribing facility |
//! | 処方医 | `doctor` | optional column and cell: the prescribing doctor |
//! | 医薬品名 | `drug` | required |
//! | 用量 | `dose` | required text, e.g. `1回1錠 1日3回 毎食後` |
//! | 日数 | `days` | required whole number, 1–999 |
//!
//! Aliases, encodings and date formats: see [`crate::health_csv`] and `docs/health-csv.md`.

use serde::{Deserialize, Serialize};
use time::Date;

use crate::health_csv::{self, iso_date, join_key, key_text, Column, CsvError, Encoding, Examinee, Limits, Parsed};

/// One dispensed drug.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MedicationRow {
    pub examinee: Examinee,
    /// 調剤年月日.
    #[serde(with = "iso_date")]
    pub dispensed_on: Date,
    /// The dispensing pharmacy (薬局名).
    pub pharmacy: String,
    /// The prescribing medical facility (処方医療機関).
    pub prescriber: String,
    /// The prescribing doctor (処方医), when the file names them.
    #[serde(default)]
    pub doctor: Option<String>,
    /// 医薬品名.
    pub drug: String,
    /// 用量 (用法・用量), as written.
    pub dose: String,
    /// 日数: days supplied.
    pub days: u32,
}

impl MedicationRow {
    /// The row's content without the examinee, normalized (NFKC, spacing): equal for two
    /// deliveries of the same dispensing however they write it. The examinee is left out
    /// because rows are kept per roster record already.
    pub fn content_key(&self) -> String {
        let date = self.dispensed_on.to_string();
        let days = self.days.to_string();
        let doctor = self.doctor.as_deref().map(key_text).unwrap_or_default();
        join_key(&[
            "medication",
            &date,
            &key_text(&self.pharmacy),
            &key_text(&self.prescriber),
            &doctor,
            &key_text(&self.drug),
            &key_text(&self.dose),
            &days,
        ])
    }
}

const DISPENSED_ON: Column = Column { en: "dispensed_on", ja: &["調剤年月日", "調剤日"], required: true };
const PHARMACY: Column =
    Column {
        en: "pharmacy", ja: &["薬局名", "薬局", "調剤薬局", "調剤薬局名", "保険薬局名"], required: true
    };
const PRESCRIBER: Column =
    Column {
        en: "prescriber", ja: &["処方医療機関", "処方医療機関名", "処方元医療機関"], required: true
    };
const DOCTOR: Column = Column { en: "doctor", ja: &["処方医", "処方医師", "処方医師名"], required: false };
const DRUG: Column = Column { en: "drug", ja: &["医薬品名", "薬品名", "薬剤名"], required: true };
const DOSE: Column = Column { en: "dose", ja: &["用量", "用法・用量", "用法用量"], required: true };
const DAYS: Column =
    Column { en: "days", ja: &["日数", "調剤日数", "投与日数", "処方日数"], required: true };

/// The columns of the format, in the documented order.
const COLUMNS: [Column; 12] = [
    health_csv::INSURER_NUMBER,
    health_csv::SYMBOL,
    health_csv::NUMBER,
    health_csv::BRANCH,
    health_csv::BIRTH_DATE,
    DISPENSED_ON,
    PHARMACY,
    PRESCRIBER,
    DOCTOR,
    DRUG,
    DOSE,
    DAYS,
];

/// Most days one row may supply.
pub const MAX_DAYS: u32 = 999;

/// Parses a whole お薬履歴 file: every row with its line number (the header is line 1), or
/// every problem of the file. A file with any bad row yields no rows.
pub fn parse(bytes: &[u8], encoding: Encoding, limits: &Limits) -> Result<Vec<(u64, MedicationRow)>, CsvError> {
    parse_all(bytes, encoding, limits)?.into_result()
}

/// Parses a whole file, keeping the good rows next to the problems of the others (for a caller
/// that checks the rows further and lists every problem at once). Problems of the file as a
/// whole (size, encoding, header, no rows) are errors.
pub fn parse_all(bytes: &[u8], encoding: Encoding, limits: &Limits) -> Result<Parsed<MedicationRow>, CsvError> {
    health_csv::read_rows(bytes, encoding, limits, &COLUMNS, |cells| {
        let examinee = cells.examinee();
        let dispensed_on = cells.date(&DISPENSED_ON);
        let pharmacy = cells.text(&PHARMACY);
        let prescriber = cells.text(&PRESCRIBER);
        let doctor = cells.optional_text(&DOCTOR);
        let drug = cells.text(&DRUG);
        let dose = cells.text(&DOSE);
        let days = cells.count(&DAYS, 1..=MAX_DAYS);
        Some(MedicationRow {
            examinee: examinee?,
            dispensed_on: dispensed_on?,
            pharmacy: pharmacy?,
            prescriber: prescriber?,
            doctor,
            drug: drug?,
            dose: dose?,
            days: days?,
        })
    })
}
