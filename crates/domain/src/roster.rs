//! 名簿 (roster): one row of the insured-person file an organization sends.
//!
//! Error messages are printed by the import next to a line number, so they say
//! what is wrong and never contain a value from the row (names and birth dates
//! are personal data and must not reach logs).

use time::{Date, Month};

use crate::card::{normalize_card_text, roster_card, CardError, CardId};
use crate::insurer::InsurerNumber;
use crate::kana::{fold_for_match, to_katakana, KanaError};

/// The roster file's columns, in the order of [`map_header`]'s result.
pub const COLUMNS: [&str; 9] = [
    "insurer_number",
    "symbol",
    "number",
    "branch",
    "family_name_kana",
    "given_name_kana",
    "birth_date",
    "eligible_from",
    "eligible_until",
];

const INSURER_NUMBER: usize = 0;
const SYMBOL: usize = 1;
const NUMBER: usize = 2;
const BRANCH: usize = 3;
const FAMILY_NAME: usize = 4;
const GIVEN_NAME: usize = 5;
const BIRTH_DATE: usize = 6;
const ELIGIBLE_FROM: usize = 7;
const ELIGIBLE_UNTIL: usize = 8;

/// Why a header line was rejected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HeaderError {
    /// A required column is absent.
    #[error("missing column {0}")]
    Missing(&'static str),
    /// A header cell is not one of [`COLUMNS`]: its position (1-based) and, when it looks
    /// like a column name (ASCII letters and `_`, at most 40), the name as written. Anything
    /// else is not quoted: in a file without a header row it is a member's data.
    #[error("unknown column {position}{}", name.as_ref().map_or_else(|| " (not a column name: is the header row missing?)".to_string(), |n| format!(" \"{n}\"")))]
    Unknown { position: usize, name: Option<String> },
    /// A column appears twice (lowercased name).
    #[error("duplicate column {0}")]
    Duplicate(String),
}

/// Optional columns: the name in kanji as printed on identity documents (姓, 名), compared
/// with the document's text in 健診・医療アクセス認証 (see `evidence::check_name`).
pub const OPTIONAL_COLUMNS: [&str; 2] = ["family_name", "given_name"];

/// Where each column is in the file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Columns {
    /// `required[k]` is the position in the file of `COLUMNS[k]`.
    pub required: [usize; 9],
    /// Positions of [`OPTIONAL_COLUMNS`], when present.
    pub optional: [Option<usize>; 2],
    /// Cells per row.
    pub count: usize,
}

/// Maps header names to column positions.
///
/// Names are trimmed, stripped of a byte order mark and compared
/// case-insensitively. Every column of [`COLUMNS`] is required, in any order, those of
/// [`OPTIONAL_COLUMNS`] may be there; unknown (including blank) and duplicate columns are
/// errors. Cells are checked left to right, then missing columns in [`COLUMNS`] order.
pub fn map_header(header: &[&str]) -> Result<Columns, HeaderError> {
    let mut positions: [Option<usize>; 11] = [None; 11];
    for (i, cell) in header.iter().enumerate() {
        let trimmed = cell.trim_matches(|c: char| c.is_whitespace() || c == '\u{FEFF}');
        let name = trimmed.to_ascii_lowercase();
        let Some(k) = COLUMNS.iter().chain(OPTIONAL_COLUMNS.iter()).position(|c| *c == name) else {
            let looks_like_a_name = !trimmed.is_empty()
                && trimmed.len() <= 40
                && trimmed.chars().all(|c| c.is_ascii_alphabetic() || c == '_');
            return Err(HeaderError::Unknown { position: i + 1, name: looks_like_a_name.then(|| trimmed.to_owned()) });
        };
        if positions[k].is_some() {
            return Err(HeaderError::Duplicate(name));
        }
        positions[k] = Some(i);
    }
    let mut required = [0usize; 9];
    for ((slot, position), column) in required.iter_mut().zip(positions).zip(COLUMNS) {
        *slot = position.ok_or(HeaderError::Missing(column))?;
    }
    Ok(Columns { required, optional: [positions[9], positions[10]], count: header.len() })
}

/// Why a roster row was rejected. Messages never include the row's values;
/// the `String` payloads of the date variants are a reason, not the input.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RowError {
    /// The row does not have exactly 9 fields.
    #[error("expected 9 fields, found {0}")]
    FieldCount(usize),
    /// The insurer number is malformed (payload: the reason).
    #[error("insurer_number: {0}")]
    InsurerNumber(String),
    /// The row belongs to another organization (payload: its insurer number,
    /// not shown in the message).
    #[error("insurer_number is not the organization being imported")]
    OtherInsurer(String),
    /// The symbol, number or branch number is malformed.
    #[error("card: {0}")]
    Card(CardError),
    /// The family name cannot be converted to full-width katakana.
    #[error("family_name_kana: {0}")]
    FamilyName(KanaError),
    /// The given name cannot be converted to full-width katakana.
    #[error("given_name_kana: {0}")]
    GivenName(KanaError),
    /// The birth date is missing or not a date (payload: the reason).
    #[error("birth_date: {0}")]
    BirthDate(String),
    /// The start of eligibility is missing or not a date (payload: the reason).
    #[error("eligible_from: {0}")]
    EligibleFrom(String),
    /// The end of eligibility is not a date (payload: the reason).
    #[error("eligible_until: {0}")]
    EligibleUntil(String),
    /// The end of eligibility is before its start.
    #[error("eligible_until is before eligible_from")]
    EligibilityOrder,
    /// A kanji name is longer than 40 characters or has control characters.
    #[error("{0}: longer than 40 characters or not printable")]
    KanjiName(&'static str),
}

/// One validated roster record.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct RosterEntry {
    /// 記号・番号・枝番.
    pub card: CardId,
    /// 姓, full-width katakana.
    pub family_name: String,
    /// 名, full-width katakana.
    pub given_name: String,
    /// 生年月日.
    pub birth_date: Date,
    /// First day of eligibility.
    pub eligible_from: Date,
    /// Last day of eligibility, if it ends.
    pub eligible_until: Option<Date>,
    /// 姓 in kanji as on identity documents (optional column `family_name`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub family_name_kanji: Option<String>,
    /// 名 in kanji (optional column `given_name`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub given_name_kanji: Option<String>,
}

/// Why a date field was rejected.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum DateProblem {
    Empty,
    Format,
    NoSuchDay,
}

impl DateProblem {
    fn reason(self) -> String {
        match self {
            DateProblem::Empty => "missing",
            DateProblem::Format => "not a date in YYYY-MM-DD or YYYY/MM/DD form",
            DateProblem::NoSuchDay => "no such calendar day",
        }
        .to_owned()
    }
}

fn parse_date_checked(input: &str) -> Result<Date, DateProblem> {
    let s: String = normalize_card_text(input).chars().map(|c| if c == '／' { '/' } else { c }).collect();
    if s.is_empty() {
        return Err(DateProblem::Empty);
    }
    let sep = if s.contains('/') { '/' } else { '-' };
    let parts: Vec<&str> = s.split(sep).collect();
    let [year, month, day] = parts.as_slice() else {
        return Err(DateProblem::Format);
    };
    let digits =
        |p: &str, min: usize, max: usize| (min..=max).contains(&p.len()) && p.bytes().all(|b| b.is_ascii_digit());
    if !digits(year, 4, 4) || !digits(month, 1, 2) || !digits(day, 1, 2) {
        return Err(DateProblem::Format);
    }
    let (Ok(year), Ok(month), Ok(day)) = (year.parse::<i32>(), month.parse::<u8>(), day.parse::<u8>()) else {
        return Err(DateProblem::Format);
    };
    let month = Month::try_from(month).map_err(|_| DateProblem::NoSuchDay)?;
    Date::from_calendar_date(year, month, day).map_err(|_| DateProblem::NoSuchDay)
}

/// Parses `YYYY-MM-DD` or `YYYY/MM/DD` (one separator kind per date);
/// full-width digits, ／ and hyphen variants are accepted, surrounding spaces
/// are ignored, month and day may have 1 digit (`1990/1/5`).
pub fn parse_date(input: &str) -> Option<Date> {
    parse_date_checked(input).ok()
}

/// `YYYY-MM-DD`.
fn iso_date(date: Date) -> String {
    format!("{:04}-{:02}-{:02}", date.year(), u8::from(date.month()), date.day())
}

/// Blind-index input for a person: folded family name, folded given name and
/// birth date, as `"{family}|{given}|{YYYY-MM-DD}"` (see [`fold_for_match`]).
pub fn person_key(family_katakana: &str, given_katakana: &str, birth_date: Date) -> String {
    format!("{}|{}|{}", fold_for_match(family_katakana), fold_for_match(given_katakana), iso_date(birth_date))
}

impl RosterEntry {
    /// Validates one row. `fields` are in file order, `columns` come from
    /// [`map_header`], and `org_insurer_number` is the organization being
    /// imported (a row with another insurer number is an error).
    ///
    /// Checked in this order: field count, insurer number, card, family name,
    /// given name, birth date, eligible from, eligible until, their order.
    /// Names are converted with [`to_katakana`] (half-width kana and hiragana
    /// accepted); `eligible_until` may be empty (no end).
    pub fn parse(
        fields: &[&str],
        columns: &Columns,
        org_insurer_number: &InsurerNumber,
    ) -> Result<RosterEntry, RowError> {
        if fields.len() != columns.count {
            return Err(RowError::FieldCount(fields.len()));
        }
        let mut values = [""; 9];
        for (value, &position) in values.iter_mut().zip(&columns.required) {
            *value = fields.get(position).copied().ok_or(RowError::FieldCount(fields.len()))?;
        }

        let insurer =
            InsurerNumber::parse(values[INSURER_NUMBER]).map_err(|e| RowError::InsurerNumber(e.to_string()))?;
        if &insurer != org_insurer_number {
            return Err(RowError::OtherInsurer(insurer.as_str().to_owned()));
        }
        let card = roster_card(values[SYMBOL], values[NUMBER], values[BRANCH]).map_err(RowError::Card)?;
        let family_name = to_katakana(values[FAMILY_NAME]).map_err(RowError::FamilyName)?;
        let given_name = to_katakana(values[GIVEN_NAME]).map_err(RowError::GivenName)?;
        let birth_date = parse_date_checked(values[BIRTH_DATE]).map_err(|p| RowError::BirthDate(p.reason()))?;
        let eligible_from =
            parse_date_checked(values[ELIGIBLE_FROM]).map_err(|p| RowError::EligibleFrom(p.reason()))?;
        let eligible_until = match parse_date_checked(values[ELIGIBLE_UNTIL]) {
            Ok(until) if until < eligible_from => return Err(RowError::EligibilityOrder),
            Ok(until) => Some(until),
            Err(DateProblem::Empty) => None,
            Err(p) => return Err(RowError::EligibleUntil(p.reason())),
        };
        let kanji = |k: usize| -> Result<Option<String>, RowError> {
            let Some(cell) = columns.optional[k].and_then(|p| fields.get(p)) else { return Ok(None) };
            let name: String = cell.trim_matches(|c: char| c.is_whitespace()).to_string();
            if name.chars().count() > 40 || name.chars().any(char::is_control) {
                return Err(RowError::KanjiName(OPTIONAL_COLUMNS[k]));
            }
            Ok((!name.is_empty()).then_some(name))
        };
        let (family_name_kanji, given_name_kanji) = (kanji(0)?, kanji(1)?);
        Ok(RosterEntry {
            card,
            family_name,
            given_name,
            birth_date,
            eligible_from,
            eligible_until,
            family_name_kanji,
            given_name_kanji,
        })
    }

    /// Blind-index input for the person: see [`person_key`].
    pub fn person_key(&self) -> String {
        person_key(&self.family_name, &self.given_name, self.birth_date)
    }

    /// Whether the record is eligible on `day` (`eligible_from <= day <= eligible_until`).
    pub fn eligible_on(&self, day: Date) -> bool {
        self.eligible_from <= day && self.eligible_until.is_none_or(|until| day <= until)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use time::macros::date;

    fn org() -> InsurerNumber {
        InsurerNumber::parse("06132013").unwrap()
    }

    fn in_order() -> Columns {
        map_header(&COLUMNS).unwrap()
    }

    /// A valid row in [`COLUMNS`] order.
    fn row() -> [&'static str; 9] {
        ["06132013", "ab-12", "３４５６", "01", "ﾔﾏﾀﾞ", "ﾀﾛｳ", "1990/1/5", "2024-04-01", ""]
    }

    fn parse_with(column: usize, value: &'static str) -> Result<RosterEntry, RowError> {
        let mut fields = row();
        fields[column] = value;
        RosterEntry::parse(&fields, &in_order(), &org())
    }

    #[test]
    fn header_in_order() {
        assert_eq!(
            map_header(&COLUMNS),
            Ok(Columns { required: [0, 1, 2, 3, 4, 5, 6, 7, 8], optional: [None, None], count: 9 })
        );
    }

    #[test]
    fn header_shuffled_with_bom_case_and_spaces() {
        let header = [
            "\u{FEFF}Birth_Date",
            " symbol ",
            "ELIGIBLE_UNTIL",
            "number",
            "given_name_kana",
            "insurer_number",
            "branch",
            "family_name_kana\u{3000}",
            "eligible_from",
        ];
        assert_eq!(map_header(&header).map(|c| c.required), Ok([5, 1, 3, 6, 7, 4, 0, 8, 2]));
    }

    #[test]
    fn header_errors() {
        let mut header = COLUMNS;
        header[3] = "edaban";
        let unknown = map_header(&header);
        assert_eq!(unknown, Err(HeaderError::Unknown { position: 4, name: Some("edaban".into()) }));
        assert_eq!(unknown.map(|_| ()).unwrap_err().to_string(), "unknown column 4 \"edaban\"");
        assert_eq!(map_header(&COLUMNS[..8]), Err(HeaderError::Missing("eligible_until")));
        let mut with_extra = COLUMNS.to_vec();
        with_extra.push("note");
        assert_eq!(map_header(&with_extra), Err(HeaderError::Unknown { position: 10, name: Some("note".into()) }));
        with_extra.pop();
        with_extra.push("");
        assert_eq!(map_header(&with_extra), Err(HeaderError::Unknown { position: 10, name: None }));
        with_extra.pop();
        // A file without its header row: the first member's data is never quoted back.
        let data_row = ["133033", "1234", "5678", "", "ヤマダ", "ハナコ", "1990-04-01", "2020-04-01", ""];
        let err = map_header(&data_row).map(|_| ()).unwrap_err();
        assert_eq!(err, HeaderError::Unknown { position: 1, name: None });
        assert!(!err.to_string().contains("133033") && err.to_string().contains("header row missing"));
        with_extra.push("");
        with_extra.pop();
        with_extra.push("SYMBOL");
        assert_eq!(map_header(&with_extra), Err(HeaderError::Duplicate("symbol".into())));
        let mut dup = COLUMNS;
        dup[8] = "number";
        assert_eq!(map_header(&dup), Err(HeaderError::Duplicate("number".into())));
        assert_eq!(map_header(&[]), Err(HeaderError::Missing("insurer_number")));
        assert_eq!(HeaderError::Missing("branch").to_string(), "missing column branch");
    }

    #[test]
    fn valid_row_with_half_width_kana() {
        let entry = RosterEntry::parse(&row(), &in_order(), &org()).unwrap();
        assert_eq!(
            entry,
            RosterEntry {
                card: CardId { symbol: "AB-12".into(), number: "3456".into(), branch: Some("01".into()) },
                family_name: "ヤマダ".into(),
                given_name: "タロウ".into(),
                birth_date: date!(1990 - 01 - 05),
                eligible_from: date!(2024 - 04 - 01),
                eligible_until: None,
                family_name_kanji: None,
                given_name_kanji: None,
            }
        );
        assert_eq!(entry.card.match_key(), "AB12|3456");
        // Without the kanji columns the sealed JSON is what it was before they existed, so a
        // re-import changes nothing.
        assert!(!serde_json::to_string(&entry).unwrap().contains("kanji"));
        assert_eq!(entry.person_key(), "ヤマダ|タロウ|1990-01-05");
        let json = serde_json::to_string(&entry).unwrap();
        assert_eq!(serde_json::from_str::<RosterEntry>(&json).unwrap(), entry);
    }

    #[test]
    fn valid_row_in_shuffled_columns() {
        let header = [
            "given_name_kana",
            "eligible_until",
            "insurer_number",
            "birth_date",
            "number",
            "family_name_kana",
            "branch",
            "eligible_from",
            "symbol",
        ];
        let columns = map_header(&header).unwrap();
        let fields =
            ["きゃっしー", "2025/03/31", "０６１３２０１３", "1985-12-31", "12-345", "すずき", "", "2020/4/1", ""];
        let entry = RosterEntry::parse(&fields, &columns, &org()).unwrap();
        assert_eq!(entry.family_name, "スズキ");
        assert_eq!(entry.given_name, "キャッシー");
        assert_eq!(entry.card, CardId { symbol: "".into(), number: "12-345".into(), branch: None });
        assert_eq!(entry.card.match_key(), "|12345");
        assert_eq!(entry.birth_date, date!(1985 - 12 - 31));
        assert_eq!(entry.eligible_from, date!(2020 - 04 - 01));
        assert_eq!(entry.eligible_until, Some(date!(2025 - 03 - 31)));
        assert_eq!(entry.person_key(), "スズキ|キヤツシ|1985-12-31");
        // The F3 flow builds the same key from the member's input.
        let family = to_katakana("ｽｽﾞｷ").unwrap();
        let given = to_katakana("キャッシ").unwrap();
        assert_eq!(person_key(&family, &given, date!(1985 - 12 - 31)), entry.person_key());
    }

    #[test]
    fn optional_kanji_name_columns() {
        let mut header = COLUMNS.to_vec();
        header.insert(4, "Family_Name");
        header.push("given_name");
        let columns = map_header(&header).unwrap();
        assert_eq!(columns.optional, [Some(4), Some(10)]);
        let mut fields = row().to_vec();
        fields.insert(4, " 山田 ");
        fields.push("太郎");
        let entry = RosterEntry::parse(&fields, &columns, &org()).unwrap();
        assert_eq!(entry.family_name_kanji.as_deref(), Some("山田"));
        assert_eq!(entry.given_name_kanji.as_deref(), Some("太郎"));
        assert_eq!(entry.family_name, "ヤマダ");
        let json = serde_json::to_string(&entry).unwrap();
        assert_eq!(serde_json::from_str::<RosterEntry>(&json).unwrap(), entry);
        // Empty cells: no kanji name.
        fields[4] = "";
        assert_eq!(RosterEntry::parse(&fields, &columns, &org()).unwrap().family_name_kanji, None);
        let long = "長".repeat(41);
        fields[4] = &long;
        assert_eq!(RosterEntry::parse(&fields, &columns, &org()), Err(RowError::KanjiName("family_name")));
        assert_eq!(RosterEntry::parse(&fields[..10], &columns, &org()), Err(RowError::FieldCount(10)));
    }

    #[test]
    fn row_errors() {
        let columns = in_order();
        assert_eq!(RosterEntry::parse(&row()[..8], &columns, &org()), Err(RowError::FieldCount(8)));
        let mut long = row().to_vec();
        long.push("");
        assert_eq!(RosterEntry::parse(&long, &columns, &org()), Err(RowError::FieldCount(10)));
        assert_eq!(
            parse_with(0, "0613201"),
            Err(RowError::InsurerNumber("insurer number must be 6 or 8 digits".into()))
        );
        assert_eq!(
            parse_with(0, "06132014"),
            Err(RowError::InsurerNumber("insurer number has a wrong check digit".into()))
        );
        assert_eq!(parse_with(0, "01130012"), Err(RowError::OtherInsurer("01130012".into())));
        assert_eq!(parse_with(1, "a.b"), Err(RowError::Card(CardError::SymbolInvalid)));
        assert_eq!(parse_with(2, ""), Err(RowError::Card(CardError::NumberRequired)));
        assert_eq!(parse_with(2, "12x"), Err(RowError::Card(CardError::NumberInvalid)));
        assert_eq!(parse_with(3, "1"), Err(RowError::Card(CardError::BranchInvalid)));
        assert_eq!(parse_with(4, "山田"), Err(RowError::FamilyName(KanaError::Kanji)));
        assert_eq!(parse_with(4, ""), Err(RowError::FamilyName(KanaError::Empty)));
        assert_eq!(parse_with(5, "Taro"), Err(RowError::GivenName(KanaError::Latin)));
        assert!(matches!(parse_with(6, ""), Err(RowError::BirthDate(_))));
        assert!(matches!(parse_with(6, "1990.01.05"), Err(RowError::BirthDate(_))));
        assert!(matches!(parse_with(6, "1990-02-30"), Err(RowError::BirthDate(_))));
        assert!(matches!(parse_with(7, ""), Err(RowError::EligibleFrom(_))));
        assert!(matches!(parse_with(7, "2024-13-01"), Err(RowError::EligibleFrom(_))));
        assert!(matches!(parse_with(8, "someday"), Err(RowError::EligibleUntil(_))));
        assert_eq!(parse_with(8, "2024-03-31"), Err(RowError::EligibilityOrder));
        assert_eq!(parse_with(8, "2024-04-01").map(|e| e.eligible_until), Ok(Some(date!(2024 - 04 - 01))));
    }

    #[test]
    fn messages_do_not_leak_values() {
        let cases: [(usize, &'static str); 8] = [
            (0, "01130012"),
            (1, "a.b"),
            (4, "山田"),
            (5, "Taro"),
            (6, "1990-02-30"),
            (6, "1990.01.05"),
            (7, "2024-13-01"),
            (8, "someday"),
        ];
        for (column, value) in cases {
            let message = parse_with(column, value).unwrap_err().to_string();
            assert!(!message.contains(value), "{message}");
            assert!(message.starts_with(COLUMNS[column]) || message.starts_with("card:"), "{message}");
        }
        assert_eq!(RowError::EligibilityOrder.to_string(), "eligible_until is before eligible_from");
        assert_eq!(RowError::FieldCount(8).to_string(), "expected 9 fields, found 8");
        assert_eq!(parse_with(6, "").unwrap_err().to_string(), "birth_date: missing");
        assert_eq!(
            parse_with(4, "山田").unwrap_err().to_string(),
            "family_name_kana: name contains kanji; use full-width katakana"
        );
    }

    #[test]
    fn dates() {
        let d = date!(1990 - 01 - 05);
        for s in [
            "1990-01-05",
            "1990/01/05",
            "1990/1/5",
            "1990-1-05",
            " 1990/01/05\u{3000}",
            "１９９０／０１／０５",
            "１９９０－０１－０５",
            "1990ー01ー05",
        ] {
            assert_eq!(parse_date(s), Some(d), "{s}");
        }
        assert_eq!(parse_date("2000-02-29"), Some(date!(2000 - 02 - 29)));
        for s in [
            "",
            "1990-01",
            "1990-01-05-1",
            "90-01-05",
            "01990-01-05",
            "1990-001-05",
            "1990/01-05",
            "1990.01.05",
            "19900105",
            "1990-00-05",
            "1990-01-00",
            "1990-01-32",
            "1999-02-29",
            "1990-1a-05",
            "平成2年1月5日",
        ] {
            assert_eq!(parse_date(s), None, "{s}");
        }
    }

    #[test]
    fn person_keys() {
        let d = date!(2001 - 09 - 03);
        assert_eq!(person_key("ヤマダ", "タロウ", d), "ヤマダ|タロウ|2001-09-03");
        assert_eq!(person_key("ヴィクトル", "ジョン＝スミス", d), "ビクトル|ジヨンスミス|2001-09-03");
        assert_eq!(person_key("ショウ", "", d), person_key("シヨウ", "", d));
        assert_ne!(person_key("ヤマダ", "タロウ", d), person_key("ヤマダタ", "ロウ", d));
    }

    #[test]
    fn eligibility() {
        let mut entry = RosterEntry::parse(&row(), &in_order(), &org()).unwrap();
        assert!(!entry.eligible_on(date!(2024 - 03 - 31)));
        assert!(entry.eligible_on(date!(2024 - 04 - 01)));
        assert!(entry.eligible_on(date!(2099 - 12 - 31)));
        entry.eligible_until = Some(date!(2025 - 03 - 31));
        assert!(entry.eligible_on(date!(2025 - 03 - 31)));
        assert!(!entry.eligible_on(date!(2025 - 04 - 01)));
    }

    proptest! {
        #[test]
        fn dates_round_trip(y in 1900i32..=2100, ordinal in 1u16..=365) {
            let d = Date::from_ordinal_date(y, ordinal).unwrap();
            prop_assert_eq!(parse_date(&iso_date(d)), Some(d));
            let slashed = format!("{}/{}/{}", d.year(), u8::from(d.month()), d.day());
            prop_assert_eq!(parse_date(&slashed), Some(d));
        }

        #[test]
        fn header_any_order(perm in Just((0..9).collect::<Vec<usize>>()).prop_shuffle()) {
            let header: Vec<&str> = perm.iter().map(|&k| COLUMNS[k]).collect();
            let columns = map_header(&header).unwrap();
            for (k, &position) in columns.required.iter().enumerate() {
                prop_assert_eq!(header[position], COLUMNS[k]);
            }
        }
    }
}
