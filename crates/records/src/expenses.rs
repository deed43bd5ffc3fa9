//! 医療費通知 (medical expense notices): the CSV file an insurer delivers with one row per
//! examinee, month and facility — the items the 医療費控除 (medical expense deduction) of the
//! tax return needs — into [`ExpenseRow`]s ([`parse`]).
//!
//! | column (ja) | column (en) | cell |
//! |---|---|---|
//! | 保険者番号 | `insurer_number` | required |
//! | 記号 | `symbol` | optional column; blank for cards without one |
//! | 番号 | `number` | required |
//! | 枝番 | `branch` | optional column and cell |
//! | 生年月日 | `birth_date` | required date |
//! | 診療年月 | `month` | required year and month |
//! | 受診者 | `patient` | required: the person treated |
//! | 医療機関等名称 | `facility` | required: hospital, clinic or pharmacy |
//! | 区分 | `category` | optional column and cell: 入院, 外来 (入院外), 歯科, 調剤, 訪問看護 |
//! | 日数 | `days` | optional column and cell: days of treatment, 0–31 |
//! | 医療費の総額 | `total_cost` | required amount in yen |
//! | 窓口負担額 | `paid` | required amount in yen, at most the total |
//!
//! Aliases, encodings and date and amount formats: see [`crate::health_csv`] and
//! `docs/health-csv.md`.

use serde::{Deserialize, Serialize};

use crate::health_csv::{self, join_key, key_text, Column, CsvError, Encoding, Examinee, Limits, Parsed, YearMonth};

/// One month of care at one facility.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExpenseRow {
    pub examinee: Examinee,
    /// 診療年月.
    pub month: YearMonth,
    /// 受診者: the person treated (a family member on the examinee's card, or the examinee).
    pub patient: String,
    /// 医療機関等名称.
    pub facility: String,
    /// 区分, when the file gives it.
    #[serde(default)]
    pub category: Option<Category>,
    /// Days of treatment (日数), when the file gives them.
    #[serde(default)]
    pub days: Option<u32>,
    /// 医療費の総額, in yen: what the care cost in total.
    pub total_cost: u64,
    /// 窓口負担額, in yen: what the member paid (the amount for the deduction).
    pub paid: u64,
}

impl ExpenseRow {
    /// The row's content without the examinee, normalized (NFKC, spacing): equal for two
    /// deliveries of the same notice row however they write it.
    pub fn content_key(&self) -> String {
        let month = self.month.to_string();
        let category = self.category.map(Category::as_str).unwrap_or_default();
        let days = self.days.map(|d| d.to_string()).unwrap_or_default();
        let (total, paid) = (self.total_cost.to_string(), self.paid.to_string());
        join_key(&[
            "expense",
            &month,
            &key_text(&self.patient),
            &key_text(&self.facility),
            category,
            &days,
            &total,
            &paid,
        ])
    }
}

/// 区分 of a notice row.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Category {
    /// 入院.
    Inpatient,
    /// 外来 (入院外).
    Outpatient,
    /// 歯科.
    Dental,
    /// 調剤 (pharmacy).
    Pharmacy,
    /// 訪問看護.
    HomeNursing,
}

impl Category {
    /// The Japanese or English name (`入院` or `inpatient`, …).
    pub fn parse(s: &str) -> Option<Self> {
        Some(match s.trim().to_ascii_lowercase().as_str() {
            "入院" | "inpatient" => Category::Inpatient,
            "外来" | "入院外" | "通院" | "outpatient" => Category::Outpatient,
            "歯科" | "dental" => Category::Dental,
            "調剤" | "薬局" | "pharmacy" => Category::Pharmacy,
            "訪問看護" | "home_nursing" => Category::HomeNursing,
            _ => return None,
        })
    }

    /// The English key (`inpatient`, …), as serialized.
    pub fn as_str(self) -> &'static str {
        match self {
            Category::Inpatient => "inpatient",
            Category::Outpatient => "outpatient",
            Category::Dental => "dental",
            Category::Pharmacy => "pharmacy",
            Category::HomeNursing => "home_nursing",
        }
    }

    /// The Japanese name, as notices print it.
    pub fn name_ja(self) -> &'static str {
        match self {
            Category::Inpatient => "入院",
            Category::Outpatient => "外来",
            Category::Dental => "歯科",
            Category::Pharmacy => "調剤",
            Category::HomeNursing => "訪問看護",
        }
    }
}

const MONTH: Column = Column { en: "month", ja: &["診療年月", "受診年月", "診療月"], required: true };
const PATIENT: Column = Column { en: "patient", ja: &["受診者", "受診者名", "受診者氏名"], required: true };
const FACILITY: Column =
    Column {
        en: "facility", ja: &["医療機関等名称", "医療機関等名", "医療機関名", "医療機関名称"], required: true
    };
const CATEGORY: Column = Column { en: "category", ja: &["区分", "診療区分"], required: false };
const DAYS: Column = Column { en: "days", ja: &["日数", "診療日数", "通院日数"], required: false };
const TOTAL_COST: Column =
    Column { en: "total_cost", ja: &["医療費の総額", "医療費総額", "総医療費"], required: true };
const PAID: Column =
    Column {
        en: "paid", ja: &["窓口負担額", "窓口負担相当額", "自己負担額", "支払った医療費の額"], required: true
    };

/// The columns of the format, in the documented order.
const COLUMNS: [Column; 12] = [
    health_csv::INSURER_NUMBER,
    health_csv::SYMBOL,
    health_csv::NUMBER,
    health_csv::BRANCH,
    health_csv::BIRTH_DATE,
    MONTH,
    PATIENT,
    FACILITY,
    CATEGORY,
    DAYS,
    TOTAL_COST,
    PAID,
];

/// Most days of treatment in one month.
pub const MAX_DAYS: u32 = 31;

/// Parses a whole 医療費通知 file: every row with its line number (the header is line 1), or
/// every problem of the file. A file with any bad row yields no rows.
pub fn parse(bytes: &[u8], encoding: Encoding, limits: &Limits) -> Result<Vec<(u64, ExpenseRow)>, CsvError> {
    parse_all(bytes, encoding, limits)?.into_result()
}

/// Parses a whole file, keeping the good rows next to the problems of the others (for a caller
/// that checks the rows further and lists every problem at once). Problems of the file as a
/// whole (size, encoding, header, no rows) are errors.
pub fn parse_all(bytes: &[u8], encoding: Encoding, limits: &Limits) -> Result<Parsed<ExpenseRow>, CsvError> {
    health_csv::read_rows(bytes, encoding, limits, &COLUMNS, |cells| {
        let examinee = cells.examinee();
        let month = cells.year_month(&MONTH);
        let patient = cells.text(&PATIENT);
        let facility = cells.text(&FACILITY);
        let category = cells.optional_text(&CATEGORY).and_then(|c| {
            let parsed = Category::parse(&c);
            if parsed.is_none() {
                cells.problem("区分 (category) is not one of 入院, 外来, 歯科, 調剤, 訪問看護".into());
            }
            parsed
        });
        let days = cells.optional_count(&DAYS, 0..=MAX_DAYS);
        let total_cost = cells.yen(&TOTAL_COST);
        let paid = cells.yen(&PAID);
        if let (Some(total), Some(paid)) = (total_cost, paid) {
            if paid > total {
                cells.problem("窓口負担額 (paid) is larger than 医療費の総額 (total_cost)".into());
            }
        }
        Some(ExpenseRow {
            examinee: examinee?,
            month: month?,
            patient: patient?,
            facility: facility?,
            category,
            days,
            total_cost: total_cost?,
            paid: paid?,
        })
    })
}
