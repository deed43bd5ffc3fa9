//! The JLAC10 17-digit codes of the specific health checkup (特定健診) items Mimoto knows by name,
//! with a stable key, Japanese and English names, the canonical unit and the MHLW reference
//! values (保健指導判定値 / 受診勧奨判定値).
//!
//! Codes not in this table are still imported: [`crate::checkup`] keeps them with the document's
//! own `displayName`, so nothing a checkup file reports is dropped.
//!
//! # Where the codes come from
//!
//! The item codes are those of the MHLW 「XML用特定健診項目情報」 table (健診項目コード, code
//! system OID [`JLAC10_OID`]). Every code below except the one marked otherwise was checked
//! against two independent public implementations of that table: the Japan Medical
//! Association's ORCA 特定健診 system (`PrintDefine` constants, including the JDS/NGSP HbA1c
//! split) and an insurer-side SQL view that pivots 特定健診 results per item code (which also
//! names the measurement method of each code). `3D045000001927101` is kept only because issue
//! #6 names it as the HbA1c example: it is in neither list (they have `3D046000001927102` for
//! HbA1c NGSP by the enzymatic method and `3D045000001927102` for the pre-FY2013 JDS value), so
//! it is "from the issue, unverified here".
//!
//! # Where the reference values come from
//!
//! 厚生労働省「標準的な健診・保健指導プログラム（令和6年度版）」, 第2編 別紙 (健診検査項目の
//! 保健指導判定値及び受診勧奨判定値): BMI ≥ 25; waist ≥ 85 cm (men) / ≥ 90 cm (women); systolic
//! ≥ 130 / ≥ 140 mmHg; diastolic ≥ 85 / ≥ 90 mmHg; fasting glucose ≥ 100 / ≥ 126 mg/dl;
//! HbA1c (NGSP) ≥ 5.6 / ≥ 6.5 %; fasting triglycerides ≥ 150 / ≥ 300 mg/dl; HDL < 40 / < 35
//! mg/dl; LDL ≥ 120 / ≥ 140 mg/dl; AST and ALT ≥ 31 / ≥ 51 U/l; γ-GT ≥ 51 / ≥ 101 U/l; urine
//! protein (±) / (+) and above. The JDS HbA1c values (files from before FY2013) use that
//! period's thresholds, 5.2 / 6.1 %. Urine sugar has no 判定値 in the programme, so it has no
//! reference here (the value is shown as is).

use serde::{Deserialize, Serialize};

use crate::checkup::Value;

/// OID of the 特定健診 item code system (JLAC10 17-digit codes) in `observation/code@codeSystem`.
pub const JLAC10_OID: &str = "1.2.392.200119.6.1005";

/// OID of the MHLW qualitative result codes (`1`: −, `2`: ±, `3`: +, `4`: ++, `5`: +++) used
/// for urine sugar and protein values (`value xsi:type="CO"`).
pub const QUALITATIVE_OID: &str = "1.2.392.200119.6.2102";

/// Display text of a qualitative result code of [`QUALITATIVE_OID`].
pub fn qualitative_display(code: &str) -> Option<&'static str> {
    match code {
        "1" => Some("－"),
        "2" => Some("±"),
        "3" => Some("＋"),
        "4" => Some("＋＋"),
        "5" => Some("＋＋＋"),
        _ => None,
    }
}

/// The stable keys of the mapped items, one per measured quantity (several codes, one per
/// method or measurement, share a key).
pub mod keys {
    pub const HEIGHT: &str = "height";
    pub const WEIGHT: &str = "weight";
    pub const BMI: &str = "bmi";
    pub const WAIST: &str = "waist";
    pub const SYSTOLIC_BP: &str = "systolic_bp";
    pub const DIASTOLIC_BP: &str = "diastolic_bp";
    pub const HBA1C: &str = "hba1c";
    pub const HBA1C_JDS: &str = "hba1c_jds";
    pub const FASTING_GLUCOSE: &str = "fasting_glucose";
    pub const TRIGLYCERIDES: &str = "triglycerides";
    pub const HDL_CHOLESTEROL: &str = "hdl_cholesterol";
    pub const LDL_CHOLESTEROL: &str = "ldl_cholesterol";
    pub const AST: &str = "ast";
    pub const ALT: &str = "alt";
    pub const GAMMA_GT: &str = "gamma_gt";
    pub const URINE_GLUCOSE: &str = "urine_glucose";
    pub const URINE_PROTEIN: &str = "urine_protein";

    /// Every key, in the order a results page lists them.
    pub const ALL: [&str; 17] = [
        HEIGHT,
        WEIGHT,
        BMI,
        WAIST,
        SYSTOLIC_BP,
        DIASTOLIC_BP,
        FASTING_GLUCOSE,
        HBA1C,
        HBA1C_JDS,
        TRIGLYCERIDES,
        HDL_CHOLESTEROL,
        LDL_CHOLESTEROL,
        AST,
        ALT,
        GAMMA_GT,
        URINE_GLUCOSE,
        URINE_PROTEIN,
    ];
}

/// The reference values of an item as the table states them (waist depends on sex).
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum ReferenceSpec {
    /// Flagged when the value is at or above the thresholds.
    High { guidance: f64, referral: Option<f64> },
    /// Flagged when the value is below the thresholds.
    Low { guidance: f64, referral: Option<f64> },
    /// At or above a threshold that depends on the examinee's sex.
    HighBySex { male: f64, female: f64 },
    /// Qualitative results of [`QUALITATIVE_OID`], flagged from the given code on.
    Ordinal { guidance_from: u8, referral_from: Option<u8> },
}

impl ReferenceSpec {
    /// The reference for one examinee; `None` when it depends on a sex the document doesn't give.
    pub fn resolve(&self, gender: Option<crate::checkup::Gender>) -> Option<Reference> {
        use crate::checkup::Gender;
        Some(match *self {
            Self::High { guidance, referral } => Reference::Numeric { direction: Direction::High, guidance, referral },
            Self::Low { guidance, referral } => Reference::Numeric { direction: Direction::Low, guidance, referral },
            Self::HighBySex { male, female } => Reference::Numeric {
                direction: Direction::High,
                guidance: match gender? {
                    Gender::Male => male,
                    Gender::Female => female,
                },
                referral: None,
            },
            Self::Ordinal { guidance_from, referral_from } => Reference::Ordinal { guidance_from, referral_from },
        })
    }
}

/// Which side of the threshold is out of range.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Direction {
    High,
    Low,
}

/// The reference values attached to an imported item (MHLW 保健指導判定値 and 受診勧奨判定値).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Reference {
    /// `High`: guidance from `guidance` up, referral from `referral` up; `Low`: guidance below
    /// `guidance`, referral below `referral`.
    Numeric { direction: Direction, guidance: f64, referral: Option<f64> },
    /// Qualitative codes of [`QUALITATIVE_OID`] (1: −, 2: ±, 3: +, ...).
    Ordinal { guidance_from: u8, referral_from: Option<u8> },
}

/// Where a value stands against its [`Reference`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Judgement {
    /// Below the guidance value (基準範囲内).
    Normal,
    /// At or past the 保健指導判定値.
    Guidance,
    /// At or past the 受診勧奨判定値.
    Referral,
}

impl Reference {
    /// Judge a value; `None` when the value is of another kind than the reference (text, a
    /// missing value, a code of another system).
    pub fn judge(&self, value: &Value) -> Option<Judgement> {
        match (*self, value) {
            (Self::Numeric { direction, guidance, referral }, Value::Quantity { number, .. }) => {
                let past = |threshold: f64| match direction {
                    Direction::High => *number >= threshold,
                    Direction::Low => *number < threshold,
                };
                Some(if referral.is_some_and(past) {
                    Judgement::Referral
                } else if past(guidance) {
                    Judgement::Guidance
                } else {
                    Judgement::Normal
                })
            }
            (Self::Ordinal { guidance_from, referral_from }, Value::Coded { code, code_system, .. }) => {
                if code_system.as_deref().is_some_and(|s| s != QUALITATIVE_OID) {
                    return None;
                }
                let rank: u8 = code.parse().ok().filter(|r| (1..=5).contains(r))?;
                Some(if referral_from.is_some_and(|r| rank >= r) {
                    Judgement::Referral
                } else if rank >= guidance_from {
                    Judgement::Guidance
                } else {
                    Judgement::Normal
                })
            }
            _ => None,
        }
    }
}

/// One row of the table.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Jlac10Item {
    /// The 17-character JLAC10 code.
    pub code: &'static str,
    /// Stable key shared by every code measuring the same thing (see [`keys`]).
    pub key: &'static str,
    /// Japanese item name.
    pub name_ja: &'static str,
    /// English item name.
    pub name_en: &'static str,
    /// Measurement method or occasion that distinguishes codes sharing a key (Japanese).
    pub method_ja: &'static str,
    /// Canonical unit as the MHLW table spells it; `None` for qualitative items.
    pub unit: Option<&'static str>,
    /// The MHLW reference values, if the programme gives any.
    pub reference: Option<ReferenceSpec>,
    /// `false` for the code taken from issue #6 that no public list confirmed.
    pub verified: bool,
}

const fn item(
    code: &'static str,
    key: &'static str,
    name_ja: &'static str,
    name_en: &'static str,
    method_ja: &'static str,
    unit: Option<&'static str>,
    reference: Option<ReferenceSpec>,
) -> Jlac10Item {
    Jlac10Item { code, key, name_ja, name_en, method_ja, unit, reference, verified: true }
}

const BMI_REF: ReferenceSpec = ReferenceSpec::High { guidance: 25.0, referral: None };
const WAIST_REF: ReferenceSpec = ReferenceSpec::HighBySex { male: 85.0, female: 90.0 };
const SYSTOLIC_REF: ReferenceSpec = ReferenceSpec::High { guidance: 130.0, referral: Some(140.0) };
const DIASTOLIC_REF: ReferenceSpec = ReferenceSpec::High { guidance: 85.0, referral: Some(90.0) };
const GLUCOSE_REF: ReferenceSpec = ReferenceSpec::High { guidance: 100.0, referral: Some(126.0) };
const HBA1C_REF: ReferenceSpec = ReferenceSpec::High { guidance: 5.6, referral: Some(6.5) };
const HBA1C_JDS_REF: ReferenceSpec = ReferenceSpec::High { guidance: 5.2, referral: Some(6.1) };
const TG_REF: ReferenceSpec = ReferenceSpec::High { guidance: 150.0, referral: Some(300.0) };
const HDL_REF: ReferenceSpec = ReferenceSpec::Low { guidance: 40.0, referral: Some(35.0) };
const LDL_REF: ReferenceSpec = ReferenceSpec::High { guidance: 120.0, referral: Some(140.0) };
const AST_ALT_REF: ReferenceSpec = ReferenceSpec::High { guidance: 31.0, referral: Some(51.0) };
const GGT_REF: ReferenceSpec = ReferenceSpec::High { guidance: 51.0, referral: Some(101.0) };
const PROTEIN_REF: ReferenceSpec = ReferenceSpec::Ordinal { guidance_from: 2, referral_from: Some(3) };

use keys::*;

const CM: Option<&str> = Some("cm");
const KG: Option<&str> = Some("kg");
const MMHG: Option<&str> = Some("mmHg");
const MGDL: Option<&str> = Some("mg/dl");
const UL: Option<&str> = Some("U/l");
const PERCENT: Option<&str> = Some("%");

/// The table; use [`lookup`] or [`by_key`].
#[rustfmt::skip]
pub static ITEMS: &[Jlac10Item] = &[
    item("9N001000000000001", HEIGHT, "身長", "Height", "", CM, None),
    item("9N006000000000001", WEIGHT, "体重", "Weight", "", KG, None),
    item("9N011000000000001", BMI, "BMI", "Body mass index", "", Some("kg/m2"), Some(BMI_REF)),
    item("9N016160100000001", WAIST, "腹囲", "Waist circumference", "実測", CM, Some(WAIST_REF)),
    item("9N016160200000001", WAIST, "腹囲", "Waist circumference", "自己判定", CM, Some(WAIST_REF)),
    item("9N016160300000001", WAIST, "腹囲", "Waist circumference", "自己申告", CM, Some(WAIST_REF)),
    item("9A751000000000001", SYSTOLIC_BP, "収縮期血圧", "Systolic blood pressure", "1回目", MMHG, Some(SYSTOLIC_REF)),
    item("9A752000000000001", SYSTOLIC_BP, "収縮期血圧", "Systolic blood pressure", "2回目", MMHG, Some(SYSTOLIC_REF)),
    item("9A755000000000001", SYSTOLIC_BP, "収縮期血圧", "Systolic blood pressure", "その他", MMHG, Some(SYSTOLIC_REF)),
    item("9A761000000000001", DIASTOLIC_BP, "拡張期血圧", "Diastolic blood pressure", "1回目", MMHG, Some(DIASTOLIC_REF)),
    item("9A762000000000001", DIASTOLIC_BP, "拡張期血圧", "Diastolic blood pressure", "2回目", MMHG, Some(DIASTOLIC_REF)),
    item("9A765000000000001", DIASTOLIC_BP, "拡張期血圧", "Diastolic blood pressure", "その他", MMHG, Some(DIASTOLIC_REF)),
    item("3D010000001926101", FASTING_GLUCOSE, "空腹時血糖", "Fasting plasma glucose", "電位差法", MGDL, Some(GLUCOSE_REF)),
    item("3D010000002227101", FASTING_GLUCOSE, "空腹時血糖", "Fasting plasma glucose", "可視吸光光度法", MGDL, Some(GLUCOSE_REF)),
    item("3D010000001927201", FASTING_GLUCOSE, "空腹時血糖", "Fasting plasma glucose", "紫外吸光光度法", MGDL, Some(GLUCOSE_REF)),
    item("3D010000001999901", FASTING_GLUCOSE, "空腹時血糖", "Fasting plasma glucose", "その他", MGDL, Some(GLUCOSE_REF)),
    item("3D046000001906202", HBA1C, "HbA1c（NGSP）", "HbA1c (NGSP)", "免疫学的方法", PERCENT, Some(HBA1C_REF)),
    item("3D046000001920402", HBA1C, "HbA1c（NGSP）", "HbA1c (NGSP)", "HPLC", PERCENT, Some(HBA1C_REF)),
    item("3D046000001927102", HBA1C, "HbA1c（NGSP）", "HbA1c (NGSP)", "酵素法", PERCENT, Some(HBA1C_REF)),
    item("3D046000001999902", HBA1C, "HbA1c（NGSP）", "HbA1c (NGSP)", "その他", PERCENT, Some(HBA1C_REF)),
    // From issue #6 ("3D045000001927101 HbA1c"); in no public code list found, unverified here.
    Jlac10Item { verified: false, ..item("3D045000001927101", HBA1C, "HbA1c（NGSP）", "HbA1c (NGSP)", "", PERCENT, Some(HBA1C_REF)) },
    // JDS values: the only HbA1c reported before FY2013 (平成25年度), kept for older files.
    item("3D045000001906202", HBA1C_JDS, "HbA1c（JDS）", "HbA1c (JDS)", "免疫学的方法", PERCENT, Some(HBA1C_JDS_REF)),
    item("3D045000001920402", HBA1C_JDS, "HbA1c（JDS）", "HbA1c (JDS)", "HPLC", PERCENT, Some(HBA1C_JDS_REF)),
    item("3D045000001927102", HBA1C_JDS, "HbA1c（JDS）", "HbA1c (JDS)", "酵素法", PERCENT, Some(HBA1C_JDS_REF)),
    item("3D045000001999902", HBA1C_JDS, "HbA1c（JDS）", "HbA1c (JDS)", "その他", PERCENT, Some(HBA1C_JDS_REF)),
    item("3F015000002327101", TRIGLYCERIDES, "中性脂肪（トリグリセリド）", "Triglycerides", "可視吸光光度法", MGDL, Some(TG_REF)),
    item("3F015000002327201", TRIGLYCERIDES, "中性脂肪（トリグリセリド）", "Triglycerides", "紫外吸光光度法", MGDL, Some(TG_REF)),
    item("3F015000002399901", TRIGLYCERIDES, "中性脂肪（トリグリセリド）", "Triglycerides", "その他", MGDL, Some(TG_REF)),
    item("3F070000002327101", HDL_CHOLESTEROL, "HDLコレステロール", "HDL cholesterol", "可視吸光光度法", MGDL, Some(HDL_REF)),
    item("3F070000002327201", HDL_CHOLESTEROL, "HDLコレステロール", "HDL cholesterol", "紫外吸光光度法", MGDL, Some(HDL_REF)),
    item("3F070000002399901", HDL_CHOLESTEROL, "HDLコレステロール", "HDL cholesterol", "その他", MGDL, Some(HDL_REF)),
    item("3F077000002327101", LDL_CHOLESTEROL, "LDLコレステロール", "LDL cholesterol", "可視吸光光度法", MGDL, Some(LDL_REF)),
    item("3F077000002327201", LDL_CHOLESTEROL, "LDLコレステロール", "LDL cholesterol", "紫外吸光光度法", MGDL, Some(LDL_REF)),
    item("3F077000002399901", LDL_CHOLESTEROL, "LDLコレステロール", "LDL cholesterol", "その他", MGDL, Some(LDL_REF)),
    item("3B035000002327201", AST, "AST（GOT）", "AST (GOT)", "紫外吸光光度法", UL, Some(AST_ALT_REF)),
    item("3B035000002399901", AST, "AST（GOT）", "AST (GOT)", "その他", UL, Some(AST_ALT_REF)),
    item("3B045000002327201", ALT, "ALT（GPT）", "ALT (GPT)", "紫外吸光光度法", UL, Some(AST_ALT_REF)),
    item("3B045000002399901", ALT, "ALT（GPT）", "ALT (GPT)", "その他", UL, Some(AST_ALT_REF)),
    item("3B090000002327101", GAMMA_GT, "γ-GT（γ-GTP）", "γ-GT (γ-GTP)", "可視吸光光度法", UL, Some(GGT_REF)),
    item("3B090000002399901", GAMMA_GT, "γ-GT（γ-GTP）", "γ-GT (γ-GTP)", "その他", UL, Some(GGT_REF)),
    item("1A020000000191111", URINE_GLUCOSE, "尿糖", "Urine glucose", "機械読み取り", None, None),
    item("1A020000000190111", URINE_GLUCOSE, "尿糖", "Urine glucose", "目視法", None, None),
    item("1A010000000191111", URINE_PROTEIN, "尿蛋白", "Urine protein", "機械読み取り", None, Some(PROTEIN_REF)),
    item("1A010000000190111", URINE_PROTEIN, "尿蛋白", "Urine protein", "目視法", None, Some(PROTEIN_REF)),
];

/// Whether `code` has the shape of a JLAC10 17-character item code: 分析物コード (a digit, an
/// uppercase letter and three more characters, e.g. `9N001`, `3D046`), 識別, 材料, 測定法 and
/// 結果識別 (twelve more), all ASCII digits or uppercase letters. Used to read an
/// `observation/code` written without `codeSystem` (as some converters do) as a JLAC10 code;
/// anything else there (a LOINC code, a local code, a group code like `01010000`) is not.
pub fn is_jlac10_shaped(code: &str) -> bool {
    let b = code.as_bytes();
    b.len() == 17
        && b[0].is_ascii_digit()
        && b[1].is_ascii_uppercase()
        && b[2..].iter().all(|c| c.is_ascii_digit() || c.is_ascii_uppercase())
}

/// The table row of a code (exact match on the 17 characters).
pub fn lookup(code: &str) -> Option<&'static Jlac10Item> {
    ITEMS.iter().find(|i| i.code == code)
}

/// Every row sharing a key, in table order.
pub fn by_key(key: &str) -> impl Iterator<Item = &'static Jlac10Item> + '_ {
    ITEMS.iter().filter(move |i| i.key == key)
}

/// The `'static` spelling of a key, or `None` for a key this version doesn't know.
pub fn intern_key(key: &str) -> Option<&'static str> {
    keys::ALL.iter().copied().find(|k| *k == key)
}

/// Whether a document's unit is the table's unit, allowing the spellings seen in 特定健診 files
/// (`mg/dL` and `mg/dl`, `U/L`, `IU/l` and `[IU]/L`, `mm[Hg]` and `mmHg`, `kg/m²`).
pub fn same_unit(canonical: &str, document: &str) -> bool {
    fn fold(unit: &str) -> String {
        let mut s: String = unit
            .trim()
            .chars()
            .filter(|c| !c.is_whitespace() && *c != '[' && *c != ']')
            .flat_map(char::to_lowercase)
            .collect();
        s = s.replace('²', "2").replace("^2", "2").replace('％', "%");
        if s == "iu/l" {
            s = "u/l".into();
        }
        s
    }
    fold(canonical) == fold(document)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::checkup::Gender;

    fn quantity(number: f64) -> Value {
        Value::Quantity { value: number.to_string(), number, unit: None }
    }

    #[test]
    fn codes_are_17_characters_unique_and_keyed() {
        let mut seen = std::collections::HashSet::new();
        for item in ITEMS {
            assert_eq!(item.code.len(), 17, "{}", item.code);
            assert!(item.code.chars().all(|c| c.is_ascii_alphanumeric()), "{}", item.code);
            assert!(seen.insert(item.code), "duplicate {}", item.code);
            assert!(keys::ALL.contains(&item.key), "{}", item.key);
        }
        for key in keys::ALL {
            assert!(by_key(key).next().is_some(), "no code for {key}");
        }
        assert_eq!(ITEMS.iter().filter(|i| !i.verified).count(), 1);
    }

    #[test]
    fn issue_examples_map_to_their_items() {
        for (code, key, unit) in [
            ("9N001000000000001", HEIGHT, Some("cm")),
            ("9N006000000000001", WEIGHT, Some("kg")),
            ("9N011000000000001", BMI, Some("kg/m2")),
            ("9N016160100000001", WAIST, Some("cm")),
            ("3D045000001927101", HBA1C, Some("%")),
            ("9A751000000000001", SYSTOLIC_BP, Some("mmHg")),
            ("9A761000000000001", DIASTOLIC_BP, Some("mmHg")),
            ("3D010000001926101", FASTING_GLUCOSE, Some("mg/dl")),
            ("3F015000002327101", TRIGLYCERIDES, Some("mg/dl")),
            ("3F070000002327101", HDL_CHOLESTEROL, Some("mg/dl")),
            ("3F077000002327101", LDL_CHOLESTEROL, Some("mg/dl")),
            ("3B035000002327201", AST, Some("U/l")),
            ("3B045000002327201", ALT, Some("U/l")),
            ("3B090000002327101", GAMMA_GT, Some("U/l")),
            ("1A020000000191111", URINE_GLUCOSE, None),
            ("1A010000000190111", URINE_PROTEIN, None),
        ] {
            let item = lookup(code).unwrap_or_else(|| panic!("{code} not in the table"));
            assert_eq!((item.key, item.unit), (key, unit), "{code}");
        }
        assert!(lookup("9N001000000000002").is_none());
        assert!(lookup("").is_none());
    }

    #[test]
    fn numeric_references_follow_the_mhlw_thresholds() {
        let systolic = lookup("9A752000000000001").unwrap().reference.unwrap().resolve(None).unwrap();
        assert_eq!(systolic.judge(&quantity(129.0)), Some(Judgement::Normal));
        assert_eq!(systolic.judge(&quantity(130.0)), Some(Judgement::Guidance));
        assert_eq!(systolic.judge(&quantity(140.0)), Some(Judgement::Referral));

        let hdl = by_key(HDL_CHOLESTEROL).next().unwrap().reference.unwrap().resolve(None).unwrap();
        assert_eq!(hdl.judge(&quantity(40.0)), Some(Judgement::Normal));
        assert_eq!(hdl.judge(&quantity(39.0)), Some(Judgement::Guidance));
        assert_eq!(hdl.judge(&quantity(34.0)), Some(Judgement::Referral));

        let hba1c = lookup("3D046000001906202").unwrap().reference.unwrap().resolve(None).unwrap();
        assert_eq!(hba1c.judge(&quantity(5.5)), Some(Judgement::Normal));
        assert_eq!(hba1c.judge(&quantity(5.6)), Some(Judgement::Guidance));
        assert_eq!(hba1c.judge(&quantity(6.5)), Some(Judgement::Referral));

        let bmi = lookup("9N011000000000001").unwrap().reference.unwrap().resolve(None).unwrap();
        assert_eq!(bmi.judge(&quantity(24.9)), Some(Judgement::Normal));
        assert_eq!(bmi.judge(&quantity(31.0)), Some(Judgement::Guidance));
        assert_eq!(bmi.judge(&Value::Text { text: "31".into() }), None);

        for (key, guidance, referral) in [
            (FASTING_GLUCOSE, 100.0, 126.0),
            (TRIGLYCERIDES, 150.0, 300.0),
            (LDL_CHOLESTEROL, 120.0, 140.0),
            (AST, 31.0, 51.0),
            (ALT, 31.0, 51.0),
            (GAMMA_GT, 51.0, 101.0),
            (DIASTOLIC_BP, 85.0, 90.0),
        ] {
            for item in by_key(key) {
                assert_eq!(
                    item.reference,
                    Some(ReferenceSpec::High { guidance, referral: Some(referral) }),
                    "{}",
                    item.code
                );
            }
        }
    }

    #[test]
    fn waist_reference_depends_on_sex() {
        let spec = lookup("9N016160100000001").unwrap().reference.unwrap();
        let men = spec.resolve(Some(Gender::Male)).unwrap();
        let women = spec.resolve(Some(Gender::Female)).unwrap();
        assert_eq!(men.judge(&quantity(86.0)), Some(Judgement::Guidance));
        assert_eq!(women.judge(&quantity(86.0)), Some(Judgement::Normal));
        assert_eq!(women.judge(&quantity(90.0)), Some(Judgement::Guidance));
        assert_eq!(spec.resolve(None), None);
    }

    #[test]
    fn urine_protein_is_judged_on_the_qualitative_codes() {
        let reference = lookup("1A010000000191111").unwrap().reference.unwrap().resolve(None).unwrap();
        let coded = |code: &str, system: Option<&str>| Value::Coded {
            code: code.into(),
            code_system: system.map(Into::into),
            display: None,
        };
        assert_eq!(reference.judge(&coded("1", Some(QUALITATIVE_OID))), Some(Judgement::Normal));
        assert_eq!(reference.judge(&coded("2", Some(QUALITATIVE_OID))), Some(Judgement::Guidance));
        assert_eq!(reference.judge(&coded("4", None)), Some(Judgement::Referral));
        assert_eq!(reference.judge(&coded("4", Some("1.2.3"))), None);
        assert_eq!(reference.judge(&coded("9", None)), None);
        assert!(lookup("1A020000000190111").unwrap().reference.is_none());
        assert_eq!(qualitative_display("2"), Some("±"));
        assert_eq!(qualitative_display("0"), None);
    }

    #[test]
    fn units_compare_across_spellings() {
        assert!(same_unit("mg/dl", "mg/dL"));
        assert!(same_unit("U/l", "IU/L"));
        assert!(same_unit("U/l", "[IU]/L"));
        assert!(same_unit("mmHg", "mm[Hg]"));
        assert!(same_unit("kg/m2", "kg/m²"));
        assert!(!same_unit("mg/dl", "mmol/L"));
    }

    #[test]
    fn every_table_code_is_jlac10_shaped_and_other_codes_are_not() {
        for item in ITEMS {
            assert!(is_jlac10_shaped(item.code), "{}", item.code);
        }
        for other in [
            "",
            "9N001",
            "01010000",
            "8480-6",
            "BP_SYSTOLIC",
            "9n001000000000001",
            "9N00100000000001",
            "9N0010000000000011",
            "ＸN001000000000001",
            "9N001000000000-01",
            "A9001000000000001",
            "99001000000000001",
        ] {
            assert!(!is_jlac10_shaped(other), "{other}");
        }
    }

    #[test]
    fn keys_intern() {
        assert_eq!(intern_key("hba1c"), Some(HBA1C));
        assert_eq!(intern_key("nope"), None);
    }
}
