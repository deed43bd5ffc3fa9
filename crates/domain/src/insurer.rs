//! 保険者番号 (insurer number): 6 or 8 digits, the last one a check digit.

use std::fmt;

/// Trims ASCII and full-width (U+3000) whitespace at both ends and maps full-width
/// digits `０`–`９` to ASCII. Everything else is left unchanged.
pub fn normalize_digits(input: &str) -> String {
    input
        .trim_matches(|c: char| c.is_ascii_whitespace() || c == '\u{3000}')
        .chars()
        .map(|c| match c {
            '０'..='９' => char::from(b'0' + (c as u32 - '０' as u32) as u8),
            _ => c,
        })
        .collect()
}

/// The 6-digit form of an insurer number as files write it: [`normalize_digits`], then an
/// 8-digit number with two leading zeros (`00` + 6 digits, the 8-digit form of a 6-digit 国保
/// number) as its 6 digits. No real 8-digit number starts with `00` (its first two digits are
/// the 法別番号), so this never turns one insurer's number into another's.
pub fn six_digit_form(input: &str) -> String {
    let s = normalize_digits(input);
    match s.strip_prefix("00") {
        Some(six) if s.len() == 8 && s.bytes().all(|b| b.is_ascii_digit()) => six.to_string(),
        _ => s,
    }
}

/// Whether two insurer numbers as written (in a file, on an organization) are the same
/// insurer: equal once normalized, reading `00` + 6 digits as those 6 digits on either side.
/// Both must be 6 or 8 ASCII digits after normalizing.
pub fn same_insurer_number(a: &str, b: &str) -> bool {
    let (a, b) = (six_digit_form(a), six_digit_form(b));
    let well_formed = |s: &str| matches!(s.len(), 6 | 8) && s.bytes().all(|c| c.is_ascii_digit());
    well_formed(&a) && a == b
}

/// The other spelling of the same insurer number, if it has one: `00` + a 6-digit number, or
/// the 6 digits of `00` + 6 digits (for looking an organization up by either form).
pub fn alternate_form(input: &str) -> Option<String> {
    let s = normalize_digits(input);
    if !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    match s.len() {
        6 => Some(format!("00{s}")),
        8 => s.strip_prefix("00").map(str::to_string),
        _ => None,
    }
}

/// Check digit for `body` (digit values `0..=9`, without the check digit).
///
/// From the rightmost digit going left, multiply alternately by 2, 1, 2, 1, …,
/// add the digits of the products, take the units digit `u` of the sum; the
/// check digit is `(10 − u) mod 10`.
pub fn check_digit(body: &[u8]) -> u8 {
    let sum: u32 =
        body.iter().rev().zip([2u32, 1].into_iter().cycle()).map(|(&d, w)| digit_sum(u32::from(d) * w)).sum();
    ((10 - sum % 10) % 10) as u8
}

fn digit_sum(mut n: u32) -> u32 {
    let mut s = 0;
    while n > 0 {
        s += n % 10;
        n /= 10;
    }
    s
}

/// A valid insurer number (ASCII digits, 6 or 8 long, correct check digit).
#[derive(Debug, Clone, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub struct InsurerNumber(String);

/// Why an insurer number was rejected (checked in this order).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum InsurerNumberError {
    /// Nothing was entered.
    #[error("insurer number is empty")]
    Empty,
    /// Contains something other than digits.
    #[error("insurer number must contain digits only")]
    NotDigits,
    /// Not 6 or 8 digits long.
    #[error("insurer number must be 6 or 8 digits")]
    Length,
    /// The last digit does not match.
    #[error("insurer number has a wrong check digit")]
    CheckDigit,
}

impl InsurerNumber {
    /// Normalizes (see [`normalize_digits`]) and validates `input`.
    pub fn parse(input: &str) -> Result<Self, InsurerNumberError> {
        let s = normalize_digits(input);
        if s.is_empty() {
            return Err(InsurerNumberError::Empty);
        }
        if !s.bytes().all(|b| b.is_ascii_digit()) {
            return Err(InsurerNumberError::NotDigits);
        }
        let digits: Vec<u8> = s.bytes().map(|b| b - b'0').collect();
        let Some((&check, body)) = digits.split_last() else {
            return Err(InsurerNumberError::Empty);
        };
        if digits.len() != 6 && digits.len() != 8 {
            return Err(InsurerNumberError::Length);
        }
        if check_digit(body) != check {
            return Err(InsurerNumberError::CheckDigit);
        }
        Ok(Self(s))
    }

    /// The number as ASCII digits.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for InsurerNumber {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn valid_numbers() {
        for n in ["133033", "01130012", "01040013", "06132013", "33120015", "131011"] {
            let parsed = InsurerNumber::parse(n).unwrap_or_else(|e| panic!("{n}: {e}"));
            assert_eq!(parsed.as_str(), n);
            assert_eq!(parsed.to_string(), n);
        }
    }

    #[test]
    fn guide_example_check_digit() {
        assert_eq!(check_digit(&[1, 3, 3, 0, 3]), 3);
    }

    #[test]
    fn wrong_check_digit() {
        assert_eq!(InsurerNumber::parse("123456"), Err(InsurerNumberError::CheckDigit));
        assert_eq!(InsurerNumber::parse("133034"), Err(InsurerNumberError::CheckDigit));
    }

    #[test]
    fn full_width_and_spaces() {
        assert_eq!(InsurerNumber::parse("１３３０３３").unwrap().as_str(), "133033");
        assert_eq!(InsurerNumber::parse(" 133033 ").unwrap().as_str(), "133033");
        assert_eq!(InsurerNumber::parse("\u{3000}０１１３００１２\t").unwrap().as_str(), "01130012");
    }

    #[test]
    fn errors_in_order() {
        assert_eq!(InsurerNumber::parse(""), Err(InsurerNumberError::Empty));
        assert_eq!(InsurerNumber::parse(" \u{3000} "), Err(InsurerNumberError::Empty));
        assert_eq!(InsurerNumber::parse("13303"), Err(InsurerNumberError::Length));
        assert_eq!(InsurerNumber::parse("1330330"), Err(InsurerNumberError::Length));
        assert_eq!(InsurerNumber::parse("13a033"), Err(InsurerNumberError::NotDigits));
        assert_eq!(InsurerNumber::parse("13a"), Err(InsurerNumberError::NotDigits));
        assert_eq!(InsurerNumber::parse("133 033"), Err(InsurerNumberError::NotDigits));
        assert_eq!(InsurerNumber::parse("١٣٣٠٣٣"), Err(InsurerNumberError::NotDigits));
    }

    #[test]
    fn six_and_eight_digit_forms_match_both_ways_and_nothing_else() {
        for (a, b) in [
            ("133033", "133033"),
            ("00133033", "133033"),
            ("133033", "00133033"),
            ("００１３３０３３", "133033"),
            (" 00133033 ", "00133033"),
            ("06132013", "06132013"),
        ] {
            assert!(same_insurer_number(a, b), "{a} {b}");
        }
        for (a, b) in [
            ("10133033", "133033"),
            ("133033", "10133033"),
            ("01133033", "133033"),
            ("0133033", "133033"),
            ("000133033", "133033"),
            ("00133034", "133033"),
            ("001330", "1330"),
            ("0013303a", "13303a"),
            ("06132013", "132013"),
            ("", ""),
            ("00", ""),
        ] {
            assert!(!same_insurer_number(a, b), "{a} {b}");
        }
        assert_eq!(alternate_form("133033").as_deref(), Some("00133033"));
        assert_eq!(alternate_form("００１３３０３３").as_deref(), Some("133033"));
        assert_eq!(alternate_form("06132013"), None);
        assert_eq!(alternate_form("1330a3"), None);
    }

    #[test]
    fn normalize_keeps_other_chars() {
        assert_eq!(normalize_digits(" ０1ａ\u{3000}２ "), "01ａ\u{3000}2");
    }

    fn with_check(body: &[u8]) -> String {
        body.iter().chain(std::iter::once(&check_digit(body))).map(|d| char::from(b'0' + d)).collect()
    }

    proptest! {
        #[test]
        fn generated_numbers_parse(body in prop_oneof![
            proptest::collection::vec(0u8..=9, 5),
            proptest::collection::vec(0u8..=9, 7),
        ]) {
            let n = with_check(&body);
            prop_assert_eq!(InsurerNumber::parse(&n).map(|p| p.0), Ok(n));
        }

        /// Weight 1 changes the sum by the difference (≠ 0 mod 10); weight 2 maps
        /// 0..=9 to digit sums 0,2,4,6,8,1,3,5,7,9, a permutation mod 10; so any
        /// single-digit change (including of the check digit) is detected.
        #[test]
        fn single_digit_change_is_detected(
            body in prop_oneof![
                proptest::collection::vec(0u8..=9, 5),
                proptest::collection::vec(0u8..=9, 7),
            ],
            pos in any::<proptest::sample::Index>(),
            delta in 1u8..=9,
        ) {
            let mut digits: Vec<u8> = with_check(&body).bytes().map(|b| b - b'0').collect();
            let i = pos.index(digits.len());
            digits[i] = (digits[i] + delta) % 10;
            let changed: String = digits.iter().map(|d| char::from(b'0' + d)).collect();
            prop_assert_eq!(InsurerNumber::parse(&changed), Err(InsurerNumberError::CheckDigit));
        }

        /// Two valid numbers are the same insurer only when they are equal or one is `00` + the other.
        #[test]
        fn different_valid_numbers_never_match(
            a in prop_oneof![proptest::collection::vec(0u8..=9, 5), proptest::collection::vec(0u8..=9, 7)],
            b in prop_oneof![proptest::collection::vec(0u8..=9, 5), proptest::collection::vec(0u8..=9, 7)],
        ) {
            let (a, b) = (with_check(&a), with_check(&b));
            let same = a == b || format!("00{a}") == b || format!("00{b}") == a;
            prop_assert_eq!(same_insurer_number(&a, &b), same);
            prop_assert_eq!(same_insurer_number(&b, &a), same);
        }

        #[test]
        fn parse_never_panics(s in "\\PC*") {
            let _ = InsurerNumber::parse(&s);
        }
    }
}
