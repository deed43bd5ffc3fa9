//! The CSV files insurers deliver for お薬履歴 ([`crate::medication`]) and 医療費通知
//! ([`crate::expenses`]): what both formats share — decoding (UTF-8 with or without BOM, or
//! Shift_JIS/CP932), the header row with Japanese or English column names, line numbers,
//! size and row caps, the examinee's card columns and the date and amount formats.
//!
//! The formats are documented with examples in `docs/health-csv.md`.
//!
//! # Errors never carry values
//!
//! Every problem names its line and column and says what is wrong, never what the cell holds:
//! the cells are personal (health) data and errors end up in logs and on operators' screens.

use serde::{Deserialize, Serialize};
use time::{Date, Month};
use unicode_normalization::UnicodeNormalization;

/// How the file's bytes are decoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Encoding {
    /// UTF-8 when the bytes are valid UTF-8 (a BOM is allowed), otherwise Shift_JIS.
    #[default]
    Auto,
    /// UTF-8, with or without a BOM.
    Utf8,
    /// Shift_JIS as Windows writes it (CP932 / Windows-31J, which includes the NEC and IBM
    /// extensions such as ① and ㈱).
    ShiftJis,
}

impl Encoding {
    /// `auto`, `utf-8` (`utf8`), or `shift_jis` (`sjis`, `cp932`, `windows-31j`), any case.
    pub fn parse(s: &str) -> Option<Self> {
        match s.to_ascii_lowercase().replace(['-', '_'], "").as_str() {
            "auto" => Some(Encoding::Auto),
            "utf8" => Some(Encoding::Utf8),
            "shiftjis" | "sjis" | "cp932" | "windows31j" => Some(Encoding::ShiftJis),
            _ => None,
        }
    }
}

/// Caps applied to one file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Limits {
    /// Largest accepted file, in bytes.
    pub max_bytes: usize,
    /// Most data rows (the header and blank rows not counted).
    pub max_rows: usize,
    /// Longest accepted cell, in characters.
    pub max_field_chars: usize,
    /// Most problems listed for one refused file (the rest are counted, not listed).
    pub max_errors: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Self { max_bytes: 32 * 1024 * 1024, max_rows: 200_000, max_field_chars: 500, max_errors: 1_000 }
    }
}

/// One problem of a file: its line (1 = the header row) and what is wrong, without the value.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct LineError {
    pub line: u64,
    pub reason: String,
}

impl std::fmt::Display for LineError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "line {}: {}", self.line, self.reason)
    }
}

/// Why a file was refused. A refused file yields no rows at all.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CsvError {
    #[error("the file is larger than {limit} bytes")]
    TooLarge { limit: usize },
    #[error("the file is not valid {0}")]
    Encoding(&'static str),
    #[error("the file is empty (a header row is required)")]
    Empty,
    #[error("the file has a header row but no data rows")]
    NoRows,
    #[error("the file has more than {limit} rows")]
    TooManyRows { limit: usize },
    /// Problems of the header or of rows, in line order (at most [`Limits::max_errors`]).
    #[error("{} problem(s) in the file", .0.len())]
    Lines(Vec<LineError>),
}

/// The examinee as the insurer's card identifies them. Kept as the file writes it (trimmed):
/// matching against the roster normalizes it the way the roster is normalized.
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
}

time::serde::format_description!(pub(crate) iso_date, Date, "[year]-[month]-[day]");

/// A column of a format: its English name (also its key in errors) and its Japanese names.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Column {
    /// The English header name, e.g. `dispensed_on`.
    pub en: &'static str,
    /// The Japanese header names; the first is the documented one, the others aliases.
    pub ja: &'static [&'static str],
    /// Whether the header row must have this column (its cells may still be optional).
    pub required: bool,
}

impl Column {
    /// `調剤年月日 (dispensed_on)`: how errors name the column.
    fn label(&self) -> String {
        format!("{} ({})", self.ja[0], self.en)
    }
}

/// The card columns every format starts with.
pub(crate) const INSURER_NUMBER: Column = Column { en: "insurer_number", ja: &["保険者番号"], required: true };
pub(crate) const SYMBOL: Column =
    Column { en: "symbol", ja: &["記号", "被保険者証等記号", "被保険者証記号"], required: false };
pub(crate) const NUMBER: Column =
    Column { en: "number", ja: &["番号", "被保険者証等番号", "被保険者証番号"], required: true };
pub(crate) const BRANCH: Column = Column { en: "branch", ja: &["枝番"], required: false };
pub(crate) const BIRTH_DATE: Column = Column { en: "birth_date", ja: &["生年月日"], required: true };

/// How header cells are compared: NFKC (full-width letters, half-width kana), ASCII
/// lowercase, without whitespace, `-` or `_` (so `birth_date`, `Birth Date` and `birth-date`
/// are one name).
fn header_key(cell: &str) -> String {
    cell.nfkc()
        .filter(|c| !c.is_whitespace() && !matches!(c, '\u{FEFF}' | '-' | '_'))
        .map(|c| c.to_ascii_lowercase())
        .collect()
}

/// Maps the header row onto `columns`: the position of each column in the file, `None` for an
/// optional column the file does not have. Unknown and repeated columns are refused, so a
/// misspelt optional column is not silently ignored. Unknown names are not quoted: a file
/// without its header row has personal data in the first row. At most `max_problems` problems
/// are listed (a header of a million unknown columns is one line of a few megabytes).
fn map_header(
    header: &csv::StringRecord,
    columns: &[Column],
    max_problems: usize,
) -> Result<Vec<Option<usize>>, Vec<String>> {
    let mut positions = vec![None; columns.len()];
    let mut problems = Vec::new();
    let note = |problems: &mut Vec<String>, problem: String| {
        if problems.len() < max_problems {
            problems.push(problem);
        }
    };
    // Each column's names as keys, once (not again for every cell of a hostile header).
    let names: Vec<Vec<String>> =
        columns.iter().map(|c| std::iter::once(c.en).chain(c.ja.iter().copied()).map(header_key).collect()).collect();
    let mut known = 0;
    for (i, cell) in header.iter().enumerate() {
        let key = header_key(cell);
        if key.is_empty() {
            note(&mut problems, format!("column {} has no name", i + 1));
            continue;
        }
        let found = names.iter().position(|keys| keys.contains(&key));
        match found {
            None => note(&mut problems, format!("column {} has an unknown name", i + 1)),
            Some(k) if positions[k].is_some() => {
                note(&mut problems, format!("column {} appears twice", columns[k].label()))
            }
            Some(k) => {
                positions[k] = Some(i);
                known += 1;
            }
        }
    }
    if known == 0 {
        return Err(vec!["no known column name: the first row must be the header row".to_string()]);
    }
    for (column, position) in columns.iter().zip(&positions) {
        if column.required && position.is_none() {
            note(&mut problems, format!("missing column {}", column.label()));
        }
    }
    if problems.is_empty() {
        Ok(positions)
    } else {
        Err(problems)
    }
}

/// Decodes the file: UTF-8 (BOM removed) or Shift_JIS (CP932).
pub fn decode(bytes: &[u8], encoding: Encoding) -> Result<String, CsvError> {
    let without_bom = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes);
    match encoding {
        Encoding::Utf8 => std::str::from_utf8(without_bom).map(str::to_owned).map_err(|_| CsvError::Encoding("UTF-8")),
        Encoding::ShiftJis => {
            let (text, _, had_errors) = encoding_rs::SHIFT_JIS.decode(bytes);
            if had_errors {
                Err(CsvError::Encoding("Shift_JIS"))
            } else {
                Ok(text.into_owned())
            }
        }
        Encoding::Auto => match std::str::from_utf8(without_bom) {
            Ok(s) => Ok(s.to_owned()),
            Err(_) => decode(bytes, Encoding::ShiftJis),
        },
    }
}

/// Line numbers of CSV records from their byte offsets, right for LF and CRLF files alike (with
/// CRLF, csv puts a record's start on the `\n` of the previous line end, hence "newlines at or
/// before the offset"). Counts incrementally as the reader moves forward, so it holds nothing
/// per line (a file of only line breaks costs no memory).
#[derive(Debug)]
pub struct LineCounter<'t> {
    text: &'t [u8],
    /// Bytes `..scanned` have been counted.
    scanned: usize,
    newlines: u64,
}

impl<'t> LineCounter<'t> {
    pub fn new(text: &'t str) -> Self {
        Self { text: text.as_bytes(), scanned: 0, newlines: 0 }
    }

    /// The line (1-based) of a record or error at `pos`; 0 without a position.
    pub fn line_at(&mut self, pos: Option<&csv::Position>) -> u64 {
        let Some(pos) = pos else { return 0 };
        let end = usize::try_from(pos.byte()).unwrap_or(usize::MAX).saturating_add(1).min(self.text.len());
        if end < self.scanned {
            // Offsets only move forward in practice; start over rather than be wrong.
            self.scanned = 0;
            self.newlines = 0;
        }
        let slice = self.text.get(self.scanned..end).unwrap_or_default();
        self.newlines += slice.iter().filter(|b| **b == b'\n').count() as u64;
        self.scanned = self.scanned.max(end);
        self.newlines + 1
    }
}

/// The cells of one data row, read through its format's columns. Each reader notes what is
/// wrong with its cell (never the value) and returns `None`; the row is built only when no
/// problem was noted.
pub(crate) struct Cells<'r> {
    record: &'r csv::StringRecord,
    positions: &'r [Option<usize>],
    columns: &'r [Column],
    max_chars: usize,
    problems: Vec<String>,
}

impl Cells<'_> {
    fn index(&self, column: &Column) -> Option<usize> {
        let k = self.columns.iter().position(|c| c.en == column.en)?;
        self.positions[k]
    }

    /// The trimmed cell, `None` when the column is absent or the cell blank.
    fn raw(&mut self, column: &Column) -> Option<&str> {
        let i = self.index(column)?;
        let cell = self.record.get(i)?.trim_matches(|c: char| c.is_whitespace());
        (!cell.is_empty()).then_some(cell)
    }

    /// A required text cell.
    pub fn text(&mut self, column: &Column) -> Option<String> {
        match self.checked_text(column) {
            Ok(Some(value)) => Some(value),
            Ok(None) => {
                self.problems.push(format!("{} is missing", column.label()));
                None
            }
            Err(()) => None,
        }
    }

    /// An optional text cell: `None` when blank or absent (or refused, with a problem noted).
    pub fn optional_text(&mut self, column: &Column) -> Option<String> {
        self.checked_text(column).ok().flatten()
    }

    /// The cell if it is acceptable text, `Ok(None)` when blank, `Err` with a problem noted
    /// when too long or with control characters.
    fn checked_text(&mut self, column: &Column) -> Result<Option<String>, ()> {
        let max = self.max_chars;
        let Some(cell) = self.raw(column).map(str::to_owned) else {
            return Ok(None);
        };
        if cell.chars().count() > max {
            self.problems.push(format!("{} is longer than {max} characters", column.label()));
            return Err(());
        }
        if cell.chars().any(char::is_control) {
            self.problems.push(format!("{} contains control characters (line breaks, tabs)", column.label()));
            return Err(());
        }
        Ok(Some(cell))
    }

    /// A required cell read with `parse`; `what` says what was expected.
    fn parsed<T>(&mut self, column: &Column, what: &str, parse: impl Fn(&str) -> Option<T>) -> Option<T> {
        let Some(cell) = self.raw(column).map(str::to_owned) else {
            self.problems.push(format!("{} is missing", column.label()));
            return None;
        };
        let value = parse(&cell);
        if value.is_none() {
            self.problems.push(format!("{} is not {what}", column.label()));
        }
        value
    }

    /// A required date cell (see [`parse_date`]).
    pub fn date(&mut self, column: &Column) -> Option<Date> {
        self.parsed(column, "a date (YYYY-MM-DD, YYYY/MM/DD or YYYYMMDD)", parse_date)
    }

    /// A required year and month cell (see [`YearMonth::parse`]).
    pub fn year_month(&mut self, column: &Column) -> Option<YearMonth> {
        self.parsed(column, "a year and month (YYYY-MM, YYYY/MM or YYYYMM)", YearMonth::parse)
    }

    /// A required amount of yen (see [`parse_yen`]).
    pub fn yen(&mut self, column: &Column) -> Option<u64> {
        self.parsed(column, "an amount in yen (digits, optionally with thousands commas)", parse_yen)
    }

    /// A required whole number in `range`.
    pub fn count(&mut self, column: &Column, range: std::ops::RangeInclusive<u32>) -> Option<u32> {
        let what = format!("a whole number from {} to {}", range.start(), range.end());
        self.parsed(column, &what, |s| parse_count(s, &range))
    }

    /// An optional whole number in `range`: `None` when blank (or refused, with a problem noted).
    pub fn optional_count(&mut self, column: &Column, range: std::ops::RangeInclusive<u32>) -> Option<u32> {
        self.raw(column)?;
        self.count(column, range)
    }

    /// The examinee's card columns and birth date.
    pub fn examinee(&mut self) -> Option<Examinee> {
        let insurer_number = self.text(&INSURER_NUMBER);
        let symbol = self.optional_text(&SYMBOL);
        let number = self.text(&NUMBER);
        let branch = self.optional_text(&BRANCH);
        let birth_date = self.date(&BIRTH_DATE);
        Some(Examinee { insurer_number: insurer_number?, symbol, number: number?, branch, birth_date: birth_date? })
    }

    /// Notes a problem of the row as a whole (e.g. two cells that disagree).
    pub fn problem(&mut self, reason: String) {
        self.problems.push(reason);
    }
}

/// The rows of a file that were read, and the problems of the others.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Parsed<T> {
    /// The good rows with their line numbers, in file order.
    pub rows: Vec<(u64, T)>,
    /// The problems of the other rows, in line order; at most [`Limits::max_errors`].
    pub errors: Vec<LineError>,
}

impl<T> Parsed<T> {
    /// The rows when no row had a problem, else every problem.
    pub fn into_result(self) -> Result<Vec<(u64, T)>, CsvError> {
        if self.errors.is_empty() {
            Ok(self.rows)
        } else {
            Err(CsvError::Lines(self.errors))
        }
    }
}

/// Reads a whole file with `columns`, building each data row with `build` (which reads the
/// cells through [`Cells`] and returns `None` when it noted a problem). Problems of the file
/// as a whole (size, encoding, header, no rows, too many rows) are errors; problems of rows
/// are listed next to the good rows, so a caller that checks the rows further (matching them)
/// can list every problem at once.
pub(crate) fn read_rows<T>(
    bytes: &[u8],
    encoding: Encoding,
    limits: &Limits,
    columns: &[Column],
    build: impl Fn(&mut Cells<'_>) -> Option<T>,
) -> Result<Parsed<T>, CsvError> {
    if bytes.len() > limits.max_bytes {
        return Err(CsvError::TooLarge { limit: limits.max_bytes });
    }
    let text = decode(bytes, encoding)?;
    let mut reader = csv::ReaderBuilder::new().has_headers(false).flexible(true).from_reader(text.as_bytes());
    let mut records = reader.records();
    let mut lines = LineCounter::new(&text);

    let header = loop {
        match records.next() {
            None => return Err(CsvError::Empty),
            Some(Err(_)) => {
                return Err(CsvError::Lines(vec![LineError { line: 1, reason: "unreadable header row".into() }]))
            }
            Some(Ok(r)) if r.iter().all(|f| f.trim().is_empty()) => continue,
            Some(Ok(r)) => break r,
        }
    };
    let header_line = lines.line_at(header.position());
    let positions = map_header(&header, columns, limits.max_errors).map_err(|problems| {
        CsvError::Lines(problems.into_iter().map(|reason| LineError { line: header_line, reason }).collect())
    })?;

    let mut errors = Vec::new();
    let mut rows = Vec::new();
    let mut count = 0usize;
    // Rows come in line order: the first problems are the ones listed.
    let note = |errors: &mut Vec<LineError>, e: LineError| {
        if errors.len() < limits.max_errors {
            errors.push(e);
        }
    };
    for record in records {
        let record = match record {
            Ok(r) if r.iter().all(|f| f.trim().is_empty()) => continue,
            Ok(r) => r,
            Err(e) => {
                note(&mut errors, LineError { line: lines.line_at(e.position()), reason: "unreadable CSV row".into() });
                continue;
            }
        };
        count += 1;
        if count > limits.max_rows {
            return Err(CsvError::TooManyRows { limit: limits.max_rows });
        }
        let line = lines.line_at(record.position());
        if record.len() != header.len() {
            note(
                &mut errors,
                LineError {
                    line,
                    reason: format!("expected {} fields like the header, found {}", header.len(), record.len()),
                },
            );
            continue;
        }
        let mut cells = Cells {
            record: &record,
            positions: &positions,
            columns,
            max_chars: limits.max_field_chars,
            problems: Vec::new(),
        };
        let built = build(&mut cells);
        match built {
            Some(row) if cells.problems.is_empty() => rows.push((line, row)),
            _ => {
                if cells.problems.is_empty() {
                    cells.problems.push("the row could not be read".into());
                }
                for reason in cells.problems {
                    note(&mut errors, LineError { line, reason });
                }
            }
        }
    }
    if rows.is_empty() && errors.is_empty() {
        return Err(CsvError::NoRows);
    }
    Ok(Parsed { rows, errors })
}

/// Full-width digits and the full-width `／－．` as ASCII; everything else unchanged.
fn ascii_digits(s: &str) -> String {
    s.chars()
        .map(|c| match c {
            '０'..='９' => char::from(b'0' + (c as u32 - '０' as u32) as u8),
            '／' => '/',
            '－' | '‐' | '−' => '-',
            '．' => '.',
            '，' => ',',
            _ => c,
        })
        .collect()
}

/// A whole number of ASCII or full-width digits within `range`.
fn parse_count(s: &str, range: &std::ops::RangeInclusive<u32>) -> Option<u32> {
    let digits = ascii_digits(s);
    if digits.is_empty() || digits.len() > 9 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse().ok().filter(|n| range.contains(n))
}

/// Splits `s` into runs of ASCII digits separated by exactly one of `separators`; `None` when
/// anything else is in the way.
fn numeric_parts(s: &str, separators: &[char]) -> Option<Vec<String>> {
    let mut parts = vec![String::new()];
    for c in s.chars() {
        if c.is_ascii_digit() {
            parts.last_mut()?.push(c);
        } else if separators.contains(&c) && parts.last().is_some_and(|p| !p.is_empty()) {
            parts.push(String::new());
        } else {
            return None;
        }
    }
    parts.iter().all(|p| !p.is_empty()).then_some(parts)
}

/// Earliest and latest year accepted in dates.
const YEARS: std::ops::RangeInclusive<i32> = 1900..=2100;

/// A date written `2025-04-01`, `2025/04/01`, `2025/4/1`, `2025.04.01`, `20250401` or
/// `2025年4月1日`, with ASCII or full-width digits; years 1900–2100. 和暦 is not accepted.
pub fn parse_date(s: &str) -> Option<Date> {
    let s = ascii_digits(s.trim());
    let s = s.strip_suffix('日').map(|t| t.replace(['年', '月'], "-")).unwrap_or(s);
    let parts = numeric_parts(&s, &['-', '/', '.'])?;
    let (y, m, d): (i32, u8, u8) = match parts.as_slice() {
        [all] if all.len() == 8 => (all[..4].parse().ok()?, all[4..6].parse().ok()?, all[6..].parse().ok()?),
        [y, m, d] if y.len() == 4 && m.len() <= 2 && d.len() <= 2 => {
            (y.parse().ok()?, m.parse().ok()?, d.parse().ok()?)
        }
        _ => return None,
    };
    if !YEARS.contains(&y) {
        return None;
    }
    Date::from_calendar_date(y, Month::try_from(m).ok()?, d).ok()
}

/// An amount of yen: ASCII or full-width digits, optionally with thousands commas
/// (`12,340`), a leading `¥`/`￥` or a trailing `円`; at most 12 digits.
pub fn parse_yen(s: &str) -> Option<u64> {
    let s = ascii_digits(s.trim());
    let s = s.trim_start_matches(['¥', '￥']).trim_end_matches('円').trim();
    let groups = numeric_parts(s, &[','])?;
    let valid_grouping = match groups.as_slice() {
        [_] => true,
        [first, rest @ ..] => first.len() <= 3 && rest.iter().all(|g| g.len() == 3),
        [] => false,
    };
    let digits: String = groups.concat();
    if !valid_grouping || digits.len() > 12 {
        return None;
    }
    digits.parse().ok()
}

/// A calendar month (診療年月), written and serialized `YYYY-MM`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct YearMonth {
    year: i32,
    month: Month,
}

impl YearMonth {
    /// The month of `year` (1900–2100) and `month` (1–12).
    pub fn new(year: i32, month: u8) -> Option<Self> {
        if !YEARS.contains(&year) {
            return None;
        }
        Some(Self { year, month: Month::try_from(month).ok()? })
    }

    /// `2025-04`, `2025/04`, `2025/4`, `2025.04`, `202504` or `2025年4月`, with ASCII or
    /// full-width digits.
    pub fn parse(s: &str) -> Option<Self> {
        let s = ascii_digits(s.trim());
        let s = s.strip_suffix('月').map(|t| t.replace('年', "-")).unwrap_or(s);
        let parts = numeric_parts(&s, &['-', '/', '.'])?;
        let (y, m): (i32, u8) = match parts.as_slice() {
            [all] if all.len() == 6 => (all[..4].parse().ok()?, all[4..].parse().ok()?),
            [y, m] if y.len() == 4 && m.len() <= 2 => (y.parse().ok()?, m.parse().ok()?),
            _ => return None,
        };
        Self::new(y, m)
    }

    pub fn year(&self) -> i32 {
        self.year
    }

    /// 1–12.
    pub fn month(&self) -> u8 {
        self.month as u8
    }

    /// The first day of the month.
    pub fn first_day(&self) -> Date {
        // Years are checked on construction, so the first of the month always exists.
        Date::from_calendar_date(self.year, self.month, 1).unwrap_or(Date::MIN)
    }
}

impl std::fmt::Display for YearMonth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:04}-{:02}", self.year, self.month as u8)
    }
}

impl Serialize for YearMonth {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for YearMonth {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        YearMonth::parse(&s).ok_or_else(|| serde::de::Error::custom("expected a month as YYYY-MM"))
    }
}

/// The text a content key is made of: NFKC (full-width letters and digits, half-width kana),
/// whitespace runs as one space, trimmed. Two deliveries that write the same thing in other
/// widths or spacing give the same key.
pub(crate) fn key_text(s: &str) -> String {
    s.nfkc().collect::<String>().split_whitespace().collect::<Vec<_>>().join(" ")
}

/// Joins key parts with the ASCII unit separator, which no cell can contain (control
/// characters are refused).
pub(crate) fn join_key(parts: &[&str]) -> String {
    parts.join("\u{1F}")
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::date;

    #[test]
    fn dates_in_the_documented_formats() {
        for s in [
            "2025-04-01",
            "2025/04/01",
            "2025/4/1",
            "20250401",
            "2025.04.01",
            "２０２５／０４／０１",
            "2025年4月1日",
            " 2025-04-01 ",
        ] {
            assert_eq!(parse_date(s), Some(date!(2025 - 04 - 01)), "{s}");
        }
        for s in [
            "2025-02-30",
            "2025-13-01",
            "250401",
            "2025-04",
            "2025--04-01",
            "R7.4.1",
            "令和7年4月1日",
            "1899-12-31",
            "2025-04-01x",
            "",
        ] {
            assert_eq!(parse_date(s), None, "{s}");
        }
    }

    #[test]
    fn months_and_amounts() {
        let april = YearMonth::new(2025, 4);
        for s in ["2025-04", "2025/4", "202504", "2025年4月", "２０２５－０４"] {
            assert_eq!(YearMonth::parse(s), april, "{s}");
        }
        for s in ["2025-13", "2025-04-01", "25-04", "2025"] {
            assert_eq!(YearMonth::parse(s), None, "{s}");
        }
        assert_eq!(april.map(|m| m.to_string()).as_deref(), Some("2025-04"));
        assert_eq!(april.map(|m| m.first_day()), Some(date!(2025 - 04 - 01)));
        for (s, n) in [
            ("12340", 12340),
            ("12,340", 12340),
            ("1,234,567", 1234567),
            ("０", 0),
            ("￥3,000", 3000),
            ("3000円", 3000),
        ] {
            assert_eq!(parse_yen(s), Some(n), "{s}");
        }
        for s in ["12,34", "1,2345", "-100", "12.5", "1e3", ",100", "100,", "1234567890123", "abc", ""] {
            assert_eq!(parse_yen(s), None, "{s}");
        }
    }

    proptest::proptest! {
        #[test]
        fn line_counter_matches_a_full_count(text in "[a,\r\n]{0,200}", offsets in proptest::collection::vec(0u64..250, 0..20)) {
            // In any order (forward as the reader goes, or not), past the end, and without a position.
            let mut lines = LineCounter::new(&text);
            for byte in offsets {
                let mut pos = csv::Position::new();
                pos.set_byte(byte);
                let expected = text.bytes().take(byte as usize + 1).filter(|b| *b == b'\n').count() as u64 + 1;
                proptest::prop_assert_eq!(lines.line_at(Some(&pos)), expected);
            }
            proptest::prop_assert_eq!(lines.line_at(None), 0);
        }
    }

    #[test]
    fn headers_compare_in_any_width_and_case() {
        assert_eq!(header_key(" Insurer-Number "), header_key("insurer_number"));
        assert_eq!(header_key("Birth Date"), header_key("birth_date"));
        assert_eq!(header_key("\u{FEFF}保険者 番号"), "保険者番号");
        assert_eq!(header_key("ＢＩＲＴＨ＿ＤＡＴＥ"), header_key("birth_date"));
    }
}
