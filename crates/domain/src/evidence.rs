//! Evidence that an identity document belongs to the roster person (F4): the dates and the
//! name read from the document's printed text (OCR), compared with the roster record.
//!
//! Japanese documents print the birth date in 和暦 (「昭和59年7月19日生」 on a 運転免許証,
//! 運転経歴証明書 or マイナンバーカード) or 西暦 (「1984年07月19日」 on a 在留カード), with
//! full-width or half-width digits; OCR adds spaces between the characters. Text is read
//! leniently (NFKC, no spaces) and a date is accepted only when it exists in its era.
//! Nothing here decides alone: a birth date that matches is evidence for the automatic
//! decision, anything else sends the case to a reviewer (see `ekyc::EkycApplication::submit`).

use serde::{Deserialize, Serialize};
use time::{Date, Month};
use unicode_normalization::UnicodeNormalization;

/// The Japanese eras since 1868 with the Gregorian date of their first day.
const ERAS: [(&str, i32, u8, u8); 5] =
    [("明治", 1868, 1, 25), ("大正", 1912, 7, 30), ("昭和", 1926, 12, 25), ("平成", 1989, 1, 8), ("令和", 2019, 5, 1)];

/// A date found in a document's text.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct DateReading {
    pub date: Date,
    /// Marked as the birth date: followed by 「生」 (or a character OCR reads for it) or
    /// preceded by 「生年月日」.
    pub birth_label: bool,
    /// OCR's confidence in the digits (0–100; 100 for text that was not OCR'd).
    pub confidence: f32,
}

/// Below this OCR confidence a birth date that differs from the roster's is not believed:
/// OCR mostly errs by dropping a digit (16 → 6), which still makes a valid date, and such
/// reads come with low confidence. The case is then "unreadable" rather than flagged.
pub const MISMATCH_MIN_CONFIDENCE: f32 = 50.0;

/// Characters OCR reads for the digits 0 and 1 (mapped back inside numbers only).
fn digit_of(c: char) -> Option<u32> {
    match c {
        '0'..='9' => c.to_digit(10),
        'O' | 'o' | 'D' | 'Q' => Some(0),
        'I' | 'l' | '|' => Some(1),
        _ => None,
    }
}

/// What tesseract reads for 年, 月, 日 and the 「生」 after a birth date (seen on synthetic
/// cards photographed like a phone does).
fn is_year_mark(c: char) -> bool {
    matches!(c, '年' | '午' | '牛' | '隼')
}
fn is_month_mark(c: char) -> bool {
    matches!(c, '月' | '目' | '用' | '有' | '片')
}
fn is_day_mark(c: char) -> bool {
    matches!(c, '日' | '目' | '曰' | '白' | '田' | '口' | 'H' | '昌' | '旭' | '自' | '晶' | 'B')
}
fn is_birth_mark(c: char) -> bool {
    matches!(c, '生' | '主' | '性' | '牛')
}

/// Era names as printed, and two-character spellings OCR produces for them.
fn era_at(chars: &[char], at: usize) -> Option<(&'static str, usize)> {
    if let Some((name, ..)) = ERAS.iter().find(|(name, ..)| starts_with(chars, at, name)) {
        return Some((name, at + name.chars().count()));
    }
    let (a, b) = (*chars.get(at)?, *chars.get(at + 1)?);
    let era = match (a, b) {
        ('昭' | '照' | '招' | '咽' | '中', '和' | '利' | '私') => "昭和",
        ('平' | '乎', '成' | '或' | '戒') => "平成",
        ('令' | '今' | '命', '和' | '利') => "令和",
        _ => return None,
    };
    Some((era, at + 2))
}

/// Text as compared: NFKC (full-width digits and letters become ASCII), no spaces of any
/// width (OCR separates Japanese characters with spaces).
pub fn compact(text: &str) -> Vec<char> {
    text.nfkc().filter(|c| !c.is_whitespace()).collect()
}

/// A number of at most `max_len` digits at `at` (OCR's O and l read as 0 and 1, but at least
/// one real digit): (value, end).
fn number(chars: &[char], at: usize, max_len: usize) -> Option<(u32, usize)> {
    let run: Vec<char> = chars[at.min(chars.len())..].iter().copied().take_while(|c| digit_of(*c).is_some()).collect();
    if run.is_empty() || run.len() > max_len || !run.iter().any(char::is_ascii_digit) {
        return None;
    }
    let value = run.iter().try_fold(0u32, |acc, c| Some(acc * 10 + digit_of(*c)?))?;
    Some((value, at + run.len()))
}

fn starts_with(chars: &[char], at: usize, s: &str) -> bool {
    (at..).zip(s.chars()).all(|(i, c)| chars.get(i) == Some(&c))
}

/// The Gregorian date of era year `year` (1 = 元年), month, day, if it lies within the era.
pub fn era_date(era: &str, year: u32, month: u32, day: u32) -> Option<Date> {
    let idx = ERAS.iter().position(|(name, ..)| *name == era)?;
    let (_, first_year, m, d) = ERAS[idx];
    let start = Date::from_calendar_date(first_year, Month::try_from(m).ok()?, d).ok()?;
    let date = gregorian(first_year + i32::try_from(year).ok()? - 1, month, day)?;
    let next_start = match ERAS.get(idx + 1) {
        Some((_, y, m, d)) => Some(Date::from_calendar_date(*y, Month::try_from(*m).ok()?, *d).ok()?),
        None => None,
    };
    let within = year >= 1 && date >= start && next_start.is_none_or(|n| date < n);
    within.then_some(date)
}

/// The era and era year (1 = 元年) of a date since 1868-01-25, as printed on documents.
pub fn to_wareki(date: Date) -> Option<(&'static str, i32)> {
    ERAS.iter().rev().find_map(|(name, y, m, d)| {
        let start = Date::from_calendar_date(*y, Month::try_from(*m).ok()?, *d).ok()?;
        (start <= date).then_some((*name, date.year() - y + 1))
    })
}

fn gregorian(year: i32, month: u32, day: u32) -> Option<Date> {
    let month = Month::try_from(u8::try_from(month).ok()?).ok()?;
    Date::from_calendar_date(year, month, u8::try_from(day).ok()?).ok()
}

/// `<month>月<day>日` or `<month><sep><day>` from `at`. Returns (month, day, end). A month
/// printed with a leading zero (「07月」) means the day has two digits too and ends with 日:
/// a one-digit day there is a digit OCR dropped.
fn month_day(chars: &[char], at: usize, kanji: bool) -> Option<(u32, u32, usize)> {
    let (month, i) = number(chars, at, 2)?;
    let padded = i - at == 2 && chars.get(at) == Some(&'0');
    let sep = *chars.get(i)?;
    let i = match (kanji, sep) {
        (true, c) if is_month_mark(c) => i + 1,
        (false, '.' | '/' | '-') => i + 1,
        _ => return None,
    };
    let (day, end) = number(chars, i, 2)?;
    let day_mark = kanji && chars.get(end).is_some_and(|c| is_day_mark(*c));
    if kanji && padded && (end - i != 2 || !day_mark) {
        return None;
    }
    Some((month, day, if day_mark { end + 1 } else { end }))
}

/// Every date in `text`, in order: 和暦 (「昭和59年7月19日」, 「平成元年1月8日」) and 西暦
/// (「1984年7月19日」, 「1984.07.19」, 「1984/7/19」), read leniently (OCR's usual
/// misreadings of the era, 年月日 and 生, see the helpers above).
pub fn dates_in(text: &str) -> Vec<DateReading> {
    let chars = compact(text);
    let mut out = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        let found = read_date_at(&chars, i);
        match found {
            Some((date, end)) => {
                let before: String = chars[i.saturating_sub(6)..i].iter().collect();
                let after: String = chars[end.min(chars.len())..(end + 2).min(chars.len())].iter().collect();
                // 「まで」 (valid until) and 「交付」 (issued) dates are never birth dates.
                let other = after.starts_with("まで") || before.ends_with("交付") || before.ends_with("有効");
                let birth_label =
                    !other && (chars.get(end).is_some_and(|c| is_birth_mark(*c)) || before.contains("生年月日"));
                out.push(DateReading { date, birth_label, confidence: 100.0 });
                i = end;
            }
            None => i += 1,
        }
    }
    out
}

fn read_date_at(chars: &[char], at: usize) -> Option<(Date, usize)> {
    if let Some((era, i)) = era_at(chars, at) {
        let (year, i) = if matches!(chars.get(i), Some('元' | '兀')) { (1, i + 1) } else { number(chars, i, 2)? };
        if !chars.get(i).is_some_and(|c| is_year_mark(*c)) {
            return None;
        }
        let (month, day, end) = month_day(chars, i + 1, true)?;
        return Some((era_date(era, year, month, day)?, end));
    }
    // 西暦: four digits, not the tail of a longer number.
    if at > 0 && chars[at - 1].is_ascii_digit() {
        return None;
    }
    let (year, i) = number(chars, at, 4)?;
    if i - at != 4 {
        return None;
    }
    let (kanji, next) = match chars.get(i) {
        Some(c) if is_year_mark(*c) => (true, i + 1),
        Some('.' | '/' | '-') => (false, i + 1),
        _ => return None,
    };
    let (month, day, end) = month_day(chars, next, kanji)?;
    if !kanji && chars.get(end).is_some_and(char::is_ascii_digit) {
        return None;
    }
    Some((gregorian(i32::try_from(year).ok()?, month, day)?, end))
}

/// The document's printed birth date compared with the roster's.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum BirthDateCheck {
    /// The birth date read from the document is the roster's.
    Match,
    /// A date marked as the birth date (「…生」, 「生年月日」) was read, and it is not the
    /// roster's: flagged to the reviewer, never approved automatically.
    Mismatch,
    /// No birth date could be read with certainty.
    Unreadable,
}

/// Compares what was read with the roster's birth date. Dates marked as the birth date
/// decide when there are any: one of them equal → match; else a mismatch when one was read
/// with at least [`MISMATCH_MIN_CONFIDENCE`], unreadable otherwise. Without a mark, the
/// earliest date on the card (the others are issue and expiry dates) can only confirm, never
/// contradict, since the mark may simply not have been read.
pub fn check_birth_date(readings: &[DateReading], roster: Date) -> BirthDateCheck {
    let labeled: Vec<&DateReading> = readings.iter().filter(|r| r.birth_label).collect();
    if labeled.iter().any(|r| r.date == roster) {
        return BirthDateCheck::Match;
    }
    if labeled.iter().any(|r| r.confidence >= MISMATCH_MIN_CONFIDENCE && !dropped_digit_of(roster, r.date)) {
        return BirthDateCheck::Mismatch;
    }
    if !labeled.is_empty() {
        return BirthDateCheck::Unreadable;
    }
    match readings.iter().map(|r| r.date).min() {
        Some(earliest) if earliest == roster => BirthDateCheck::Match,
        _ => BirthDateCheck::Unreadable,
    }
}

/// Whether `b`'s digits are `a`'s with exactly one digit left out (11 → 1, 18 → 8, 1947 → 947).
fn one_digit_dropped(a: i64, b: i64) -> bool {
    let (a, b) = (a.to_string(), b.to_string());
    a.len() == b.len() + 1 && (0..a.len()).any(|i| format!("{}{}", &a[..i], &a[i + 1..]) == b)
}

/// Whether `read` is what OCR makes of `truth` when it drops one digit of the day, the month
/// or the year (西暦 or 和暦) — the error it makes most on cards, confidently. Such a read is
/// not evidence of another person: the check says "unreadable", not "mismatch".
pub fn dropped_digit_of(truth: Date, read: Date) -> bool {
    let (ty, tm, td) = (i64::from(truth.year()), i64::from(u8::from(truth.month())), i64::from(truth.day()));
    let (ry, rm, rd) = (i64::from(read.year()), i64::from(u8::from(read.month())), i64::from(read.day()));
    let era_year = |d: Date| to_wareki(d).map(|(era, y)| (era, i64::from(y)));
    let year = ty == ry
        || one_digit_dropped(ty, ry)
        || match (era_year(truth), era_year(read)) {
            // The read date's era is the printed one only if the era year made sense in it.
            (Some((te, tey)), Some((re, rey))) => te == re && one_digit_dropped(tey, rey),
            _ => false,
        };
    let changed = [ty != ry, tm != rm, td != rd].iter().filter(|c| **c).count();
    changed == 1 && year && (tm == rm || one_digit_dropped(tm, rm)) && (td == rd || one_digit_dropped(td, rd))
}

/// The document's printed name compared with the roster's kanji name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum NameCheck {
    /// Both the family and the given name appear in the document's text.
    Match,
    /// The roster has a kanji name and it was not found (misread, an old character form such
    /// as 髙 for 高, or another person): the reviewer decides.
    NotFound,
    /// The roster carries no kanji name: nothing to compare.
    NotOnRoster,
}

/// Looks for the roster's kanji family and given name in the document's text.
pub fn check_name(text: &str, family: Option<&str>, given: Option<&str>) -> NameCheck {
    let (Some(family), Some(given)) = (family, given) else { return NameCheck::NotOnRoster };
    let (family, given): (String, String) =
        (compact(family).into_iter().collect(), compact(given).into_iter().collect());
    if family.is_empty() || given.is_empty() {
        return NameCheck::NotOnRoster;
    }
    let text: String = compact(text).into_iter().collect();
    if text.contains(&family) && text.contains(&given) {
        NameCheck::Match
    } else {
        NameCheck::NotFound
    }
}

/// What the document's text says about whose it is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct DocumentCheck {
    pub birth_date: BirthDateCheck,
    pub name: NameCheck,
}

impl DocumentCheck {
    /// Machine evidence that the document is the roster person's: the birth date matches, and
    /// the name too where the roster carries it.
    pub fn proves_person(&self) -> bool {
        self.birth_date == BirthDateCheck::Match && self.name != NameCheck::NotFound
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::date;

    fn dates(text: &str) -> Vec<(Date, bool)> {
        dates_in(text).into_iter().map(|r| (r.date, r.birth_label)).collect()
    }

    #[test]
    fn wareki_birth_dates_of_a_licence() {
        let text = "氏名 山 田 花 子   昭 和 59 年 7 月 19 日 生\n住所 東京都\n交付 令和03年08月10日 12345\n\
                    令和08年08月19日まで有効";
        assert_eq!(
            dates(text),
            vec![(date!(1984 - 07 - 19), true), (date!(2021 - 08 - 10), false), (date!(2026 - 08 - 19), false)]
        );
    }

    #[test]
    fn full_width_digits_and_gannen() {
        assert_eq!(dates("平成元年１月８日生"), vec![(date!(1989 - 01 - 08), true)]);
        assert_eq!(dates("令和元年5月1日"), vec![(date!(2019 - 05 - 01), false)]);
        assert_eq!(dates("生年月日 １９８４年０７月１９日"), vec![(date!(1984 - 07 - 19), true)]);
    }

    #[test]
    fn seireki_with_separators() {
        assert_eq!(dates("DATE OF BIRTH 1984.07.19"), vec![(date!(1984 - 07 - 19), false)]);
        assert_eq!(dates("1990/1/5 生"), vec![(date!(1990 - 01 - 05), true)]);
        // Part of a longer number (a card number) is not a date.
        assert_eq!(dates("12019-01-01"), vec![]);
        assert_eq!(dates("2019-01-011"), vec![]);
    }

    #[test]
    fn what_ocr_makes_of_a_licence_still_reads() {
        // Era, 年, 日 and 生 as tesseract misreads them, O for 0.
        assert_eq!(dates("照和59午7月19曰主"), vec![(date!(1984 - 07 - 19), true)]);
        assert_eq!(dates("平或2年4月O1日生"), vec![(date!(1990 - 04 - 01), true)]);
        assert_eq!(dates("生年月日 1984年O7月19日"), vec![(date!(1984 - 07 - 19), true)]);
        // A padded month with a one-digit day: a dropped digit, not a date.
        assert_eq!(dates("1984年07月9日"), vec![]);
        // Issue and expiry dates are never birth dates, even with a stray 生.
        assert_eq!(dates("令和08年08月19日まで有効"), vec![(date!(2026 - 08 - 19), false)]);
        assert_eq!(dates("交付令和03年08月10日生"), vec![(date!(2021 - 08 - 10), false)]);
        // Letters alone are not numbers.
        assert_eq!(dates("昭和OO年1月1日"), vec![]);
    }

    #[test]
    fn dates_outside_their_era_are_not_dates() {
        // 昭和64年 ended on 7 January 1989; 平成 began the next day.
        assert_eq!(era_date("昭和", 64, 1, 7), Some(date!(1989 - 01 - 07)));
        assert_eq!(era_date("昭和", 64, 1, 8), None);
        assert_eq!(era_date("平成", 1, 1, 7), None);
        assert_eq!(era_date("平成", 31, 4, 30), Some(date!(2019 - 04 - 30)));
        assert_eq!(era_date("平成", 31, 5, 1), None);
        assert_eq!(era_date("昭和", 0, 5, 1), None);
        assert_eq!(dates("昭和59年2月30日生"), vec![]);
        assert_eq!(era_date("大正", 15, 12, 24), Some(date!(1926 - 12 - 24)));
    }

    #[test]
    fn birth_date_check() {
        let roster = date!(1984 - 07 - 19);
        let licence = dates_in("昭和59年7月19日生 交付 令和03年08月10日");
        assert_eq!(check_birth_date(&licence, roster), BirthDateCheck::Match);
        let other = dates_in("昭和60年3月2日生 交付 令和03年08月10日");
        assert_eq!(check_birth_date(&other, roster), BirthDateCheck::Mismatch);
        // The same read with a low confidence is not believed.
        let unsure: Vec<DateReading> = other.iter().map(|r| DateReading { confidence: 20.0, ..*r }).collect();
        assert_eq!(check_birth_date(&unsure, roster), BirthDateCheck::Unreadable);
        // The mark was not read: the earliest date may confirm, never contradict.
        assert_eq!(check_birth_date(&dates_in("1984年7月19日 2021年8月10日"), roster), BirthDateCheck::Match);
        assert_eq!(check_birth_date(&dates_in("2021年8月10日"), roster), BirthDateCheck::Unreadable);
        assert_eq!(check_birth_date(&[], roster), BirthDateCheck::Unreadable);
    }

    #[test]
    fn a_dropped_digit_is_not_another_person() {
        assert!(dropped_digit_of(date!(1993 - 11 - 27), date!(1993 - 11 - 02)));
        assert!(dropped_digit_of(date!(1943 - 05 - 24), date!(1943 - 05 - 02)));
        assert!(dropped_digit_of(date!(1964 - 11 - 01), date!(1964 - 01 - 01)));
        // 昭和18年 read as 昭和8年 (1943 → 1933).
        assert!(dropped_digit_of(date!(1943 - 05 - 24), date!(1933 - 05 - 24)));
        assert!(!dropped_digit_of(date!(1984 - 07 - 19), date!(1985 - 03 - 02)), "another person");
        assert!(!dropped_digit_of(date!(1984 - 07 - 19), date!(1984 - 07 - 18)), "a different digit");
        assert!(!dropped_digit_of(date!(1984 - 07 - 19), date!(1984 - 07 - 19)));
        let read = dates_in("平成5年11月2日生");
        assert_eq!(check_birth_date(&read, date!(1993 - 11 - 27)), BirthDateCheck::Unreadable);
        assert_eq!(check_birth_date(&read, date!(1993 - 11 - 02)), BirthDateCheck::Match);
        assert_eq!(check_birth_date(&read, date!(1985 - 03 - 02)), BirthDateCheck::Mismatch);
    }

    #[test]
    fn name_check() {
        let text = "氏名 山 田  花 子 昭和59年7月19日生";
        assert_eq!(check_name(text, Some("山田"), Some("花子")), NameCheck::Match);
        assert_eq!(check_name(text, Some("山田"), Some("太郎")), NameCheck::NotFound);
        assert_eq!(check_name(text, None, None), NameCheck::NotOnRoster);
        assert_eq!(check_name("ＹＡＭＡＤＡ ＨＡＮＡＫＯ", Some("yamada"), Some("hanako")), NameCheck::NotFound);
        assert_eq!(check_name("YAMADA HANAKO", Some("YAMADA"), Some("HANAKO")), NameCheck::Match);
    }

    #[test]
    fn only_a_matching_birth_date_proves_the_person() {
        let check = |birth_date, name| DocumentCheck { birth_date, name }.proves_person();
        assert!(check(BirthDateCheck::Match, NameCheck::Match));
        assert!(check(BirthDateCheck::Match, NameCheck::NotOnRoster));
        assert!(!check(BirthDateCheck::Match, NameCheck::NotFound));
        assert!(!check(BirthDateCheck::Mismatch, NameCheck::Match));
        assert!(!check(BirthDateCheck::Unreadable, NameCheck::NotOnRoster));
    }

    #[test]
    fn wareki_of_dates() {
        assert_eq!(to_wareki(date!(1984 - 07 - 19)), Some(("昭和", 59)));
        assert_eq!(to_wareki(date!(1989 - 01 - 08)), Some(("平成", 1)));
        assert_eq!(to_wareki(date!(2019 - 04 - 30)), Some(("平成", 31)));
        assert_eq!(to_wareki(date!(2019 - 05 - 01)), Some(("令和", 1)));
        assert_eq!(to_wareki(date!(1800 - 01 - 01)), None);
    }

    proptest::proptest! {
        #[test]
        fn reading_never_panics(s in "\\PC{0,60}") {
            let _ = dates_in(&s);
        }

        #[test]
        fn every_wareki_date_reads_back(days in 0i64..60_000) {
            let d = date!(1912 - 07 - 30) + time::Duration::days(days);
            let (era, year) = to_wareki(d).unwrap();
            let text = format!("{era}{year}年{}月{}日生", u8::from(d.month()), d.day());
            proptest::prop_assert_eq!(dates(&text), vec![(d, true)]);
        }
    }
}
