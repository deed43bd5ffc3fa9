//! 記号・番号・枝番: the symbol, number and branch number printed on an insurance card.
//!
//! How a member enters them depends on the organization's [`CardPattern`]
//! (パターン①–④ of the guide). Roster rows go through [`roster_card`], which
//! accepts any pattern. Both sides meet in [`CardId::match_key`], which ignores
//! hyphens so that `12-34` and `1234` match however the insurer exported them.

use crate::org::CardPattern;

/// Maximum length of a symbol, in characters (hyphens included).
pub const MAX_SYMBOL_CHARS: usize = 20;
/// Maximum length of a number, in characters (hyphens included).
pub const MAX_NUMBER_CHARS: usize = 20;
/// Length of a branch number (枝番).
pub const BRANCH_DIGITS: usize = 2;

/// Whether `c` is one of the hyphen, dash, minus or long-vowel characters that
/// members (or spreadsheets) type for the card's 「ー」.
fn is_hyphen_like(c: char) -> bool {
    matches!(
        c,
        '-' | '\u{2010}' // ‐ hyphen
            | '\u{2011}' // ‑ non-breaking hyphen
            | '\u{2012}' // ‒ figure dash
            | '\u{2013}' // – en dash
            | '\u{2014}' // — em dash
            | '\u{2015}' // ― horizontal bar
            | '\u{2043}' // ⁃ hyphen bullet
            | '\u{2212}' // − minus sign
            | '\u{30FC}' // ー katakana prolonged sound mark
            | '\u{FF70}' // ｰ half-width prolonged sound mark
            | '\u{FF0D}' // － full-width hyphen-minus
            | '\u{FE58}' // ﹘ small em dash
            | '\u{FE63}' // ﹣ small hyphen-minus
    )
}

/// Maps full-width ASCII digits and letters to ASCII and every hyphen-like
/// character (‐ ‑ ‒ – — ― ⁃ − ー ｰ － ﹘ ﹣ -) to `-`, and removes all whitespace
/// (ASCII and Unicode, including U+3000), at the ends and inside.
///
/// Letter case is kept; anything else is left unchanged (and rejected later).
pub fn normalize_card_text(input: &str) -> String {
    input
        .chars()
        .filter(|c| !c.is_whitespace())
        .map(|c| match c {
            '０'..='９' | 'Ａ'..='Ｚ' | 'ａ'..='ｚ' => char::from_u32(u32::from(c) - 0xFEE0).unwrap_or(c),
            c if is_hyphen_like(c) => '-',
            c => c,
        })
        .collect()
}

/// A validated card identification, in canonical form.
#[derive(Debug, Clone, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub struct CardId {
    /// 記号: ASCII digits, uppercase letters and `-`; `""` when the pattern has no symbol.
    pub symbol: String,
    /// 番号: ASCII digits, and `-` where the card has one.
    pub number: String,
    /// 枝番: exactly 2 ASCII digits, if given.
    pub branch: Option<String>,
}

/// Why card input was rejected (checked in the order symbol, number, branch).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum CardError {
    /// The pattern has a symbol but none was entered.
    #[error("card symbol is required")]
    SymbolRequired,
    /// The symbol has characters other than letters, digits and hyphens, a
    /// misplaced hyphen, or (パターン③) no hyphen.
    #[error("card symbol is not in the expected format")]
    SymbolInvalid,
    /// The symbol is longer than 20 characters.
    #[error("card symbol is longer than 20 characters")]
    SymbolTooLong,
    /// No number was entered.
    #[error("card number is required")]
    NumberRequired,
    /// The number has characters other than digits (and, where allowed,
    /// well-placed hyphens).
    #[error("card number is not in the expected format")]
    NumberInvalid,
    /// The number is longer than 20 characters.
    #[error("card number is longer than 20 characters")]
    NumberTooLong,
    /// The branch number is not exactly 2 digits.
    #[error("branch number must be 2 digits")]
    BranchInvalid,
    /// A symbol was entered for a pattern (①, ②) whose cards have none.
    #[error("this card has no symbol; enter the number only")]
    SymbolNotExpected,
}

/// Whether the hyphens of `s` are well placed: not first, not last, never two in a row.
fn hyphens_well_placed(s: &str) -> bool {
    !s.starts_with('-') && !s.ends_with('-') && !s.contains("--")
}

/// Validates a normalized, non-empty member symbol (パターン③ ④) and uppercases it.
fn member_symbol(s: &str, require_hyphen: bool) -> Result<String, CardError> {
    if s.chars().count() > MAX_SYMBOL_CHARS {
        return Err(CardError::SymbolTooLong);
    }
    if !s.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
        || !hyphens_well_placed(s)
        || (require_hyphen && !s.contains('-'))
    {
        return Err(CardError::SymbolInvalid);
    }
    Ok(s.to_ascii_uppercase())
}

/// Validates a normalized member number.
fn member_number(s: &str, hyphenated: bool) -> Result<String, CardError> {
    if s.is_empty() {
        return Err(CardError::NumberRequired);
    }
    if s.chars().count() > MAX_NUMBER_CHARS {
        return Err(CardError::NumberTooLong);
    }
    let valid = if hyphenated {
        s.chars().all(|c| c.is_ascii_digit() || c == '-') && s.contains('-') && hyphens_well_placed(s)
    } else {
        s.chars().all(|c| c.is_ascii_digit())
    };
    if valid {
        Ok(s.to_owned())
    } else {
        Err(CardError::NumberInvalid)
    }
}

/// Validates a normalized branch number: empty → `None`, else exactly 2 digits.
fn branch(s: &str) -> Result<Option<String>, CardError> {
    if s.is_empty() {
        Ok(None)
    } else if s.len() == BRANCH_DIGITS && s.bytes().all(|b| b.is_ascii_digit()) {
        Ok(Some(s.to_owned()))
    } else {
        Err(CardError::BranchInvalid)
    }
}

impl CardId {
    /// Validates the member's input for the organization's pattern (each field
    /// is first passed through [`normalize_card_text`]).
    ///
    /// - ① number with at least one hyphen (not first or last, no `--`); no symbol.
    /// - ② digits only; no symbol.
    /// - ③ symbol containing a hyphen + digits-only number.
    /// - ④ symbol (hyphens allowed) + digits-only number.
    ///
    /// Symbols are 1–20 ASCII letters/digits/hyphens (hyphens not first, last
    /// or doubled), stored uppercase. Numbers are 1–20 characters. The branch
    /// number is optional (empty) or exactly 2 digits.
    pub fn parse(
        pattern: CardPattern,
        symbol_input: &str,
        number_input: &str,
        branch_input: &str,
    ) -> Result<CardId, CardError> {
        let symbol = normalize_card_text(symbol_input);
        let number = normalize_card_text(number_input);
        let branch_text = normalize_card_text(branch_input);
        let symbol = match pattern {
            CardPattern::HyphenatedNumber | CardPattern::NumberOnly => {
                if !symbol.is_empty() {
                    return Err(CardError::SymbolNotExpected);
                }
                symbol
            }
            CardPattern::SymbolWithHyphen | CardPattern::SymbolAndNumber => {
                if symbol.is_empty() {
                    return Err(CardError::SymbolRequired);
                }
                member_symbol(&symbol, pattern == CardPattern::SymbolWithHyphen)?
            }
        };
        let number = member_number(&number, pattern == CardPattern::HyphenatedNumber)?;
        let branch = branch(&branch_text)?;
        Ok(CardId { symbol, number, branch })
    }

    /// Canonical text for blind indexes, without the branch number: symbol and
    /// number with hyphens removed and letters uppercased, as `"{symbol}|{number}"`.
    pub fn match_key(&self) -> String {
        let strip = |s: &str| -> String { s.chars().filter(|&c| c != '-').map(|c| c.to_ascii_uppercase()).collect() };
        format!("{}|{}", strip(&self.symbol), strip(&self.number))
    }
}

/// Validates a roster row's card fields, whatever the organization's pattern.
///
/// Same normalization as [`CardId::parse`]. The symbol may be empty; otherwise
/// it is 1–20 ASCII letters, digits and hyphens with at least one letter or
/// digit (stored uppercase). The number is 1–20 digits and hyphens with at
/// least one digit. Hyphen placement is not checked (exports vary, and
/// [`CardId::match_key`] ignores hyphens). The branch is empty or 2 digits.
pub fn roster_card(symbol: &str, number: &str, branch_input: &str) -> Result<CardId, CardError> {
    let symbol = normalize_card_text(symbol);
    let number = normalize_card_text(number);
    let branch_text = normalize_card_text(branch_input);
    if !symbol.is_empty() {
        if symbol.chars().count() > MAX_SYMBOL_CHARS {
            return Err(CardError::SymbolTooLong);
        }
        if !symbol.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
            || !symbol.chars().any(|c| c.is_ascii_alphanumeric())
        {
            return Err(CardError::SymbolInvalid);
        }
    }
    if number.is_empty() {
        return Err(CardError::NumberRequired);
    }
    if number.chars().count() > MAX_NUMBER_CHARS {
        return Err(CardError::NumberTooLong);
    }
    if !number.chars().all(|c| c.is_ascii_digit() || c == '-') || !number.chars().any(|c| c.is_ascii_digit()) {
        return Err(CardError::NumberInvalid);
    }
    Ok(CardId { symbol: symbol.to_ascii_uppercase(), number, branch: branch(&branch_text)? })
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use CardPattern::*;

    fn card(symbol: &str, number: &str, branch: Option<&str>) -> CardId {
        CardId { symbol: symbol.into(), number: number.into(), branch: branch.map(Into::into) }
    }

    #[test]
    fn normalize_widths_hyphens_and_spaces() {
        assert_eq!(normalize_card_text("１２３ー４５６"), "123-456");
        assert_eq!(normalize_card_text(" ａｂＣ　12 3\t"), "abC123");
        for h in ["-", "‐", "‑", "‒", "–", "—", "―", "−", "ー", "ｰ", "－", "﹣", "⁃", "﹘"] {
            assert_eq!(normalize_card_text(&format!("1{h}2")), "1-2", "{h:?}");
        }
        // Other characters are left for validation to reject.
        assert_eq!(normalize_card_text("１２あ"), "12あ");
        assert_eq!(normalize_card_text("\u{3000}"), "");
    }

    #[test]
    fn pattern_1_hyphenated_number() {
        let p = HyphenatedNumber;
        assert_eq!(CardId::parse(p, "", "123-456", ""), Ok(card("", "123-456", None)));
        assert_eq!(CardId::parse(p, "", "１２３ー４５６", ""), Ok(card("", "123-456", None)));
        assert_eq!(CardId::parse(p, "  ", "12−34‐56", "０１"), Ok(card("", "12-34-56", Some("01"))));
        assert_eq!(CardId::parse(p, "", "123456", ""), Err(CardError::NumberInvalid));
        assert_eq!(CardId::parse(p, "", "-123", ""), Err(CardError::NumberInvalid));
        assert_eq!(CardId::parse(p, "", "123-", ""), Err(CardError::NumberInvalid));
        assert_eq!(CardId::parse(p, "", "12--3", ""), Err(CardError::NumberInvalid));
        assert_eq!(CardId::parse(p, "", "12-3a", ""), Err(CardError::NumberInvalid));
        assert_eq!(CardId::parse(p, "", "-", ""), Err(CardError::NumberInvalid));
        assert_eq!(CardId::parse(p, "", "", ""), Err(CardError::NumberRequired));
        assert_eq!(CardId::parse(p, "", "1234567890-1234567890", ""), Err(CardError::NumberTooLong));
        assert_eq!(CardId::parse(p, "", "123456789-123456789", ""), Ok(card("", "123456789-123456789", None)));
        assert_eq!(CardId::parse(p, "12", "123-456", ""), Err(CardError::SymbolNotExpected));
    }

    #[test]
    fn pattern_2_number_only() {
        let p = NumberOnly;
        assert_eq!(CardId::parse(p, "", "123456", ""), Ok(card("", "123456", None)));
        assert_eq!(CardId::parse(p, "", "１２３４５６", "01"), Ok(card("", "123456", Some("01"))));
        assert_eq!(CardId::parse(p, "", "123-456", ""), Err(CardError::NumberInvalid));
        assert_eq!(CardId::parse(p, "", "12345a", ""), Err(CardError::NumberInvalid));
        assert_eq!(CardId::parse(p, "", " ", ""), Err(CardError::NumberRequired));
        assert_eq!(CardId::parse(p, "", &"1".repeat(20), ""), Ok(card("", &"1".repeat(20), None)));
        assert_eq!(CardId::parse(p, "", &"1".repeat(21), ""), Err(CardError::NumberTooLong));
        assert_eq!(CardId::parse(p, "Ａ", "123", ""), Err(CardError::SymbolNotExpected));
    }

    #[test]
    fn pattern_3_symbol_with_hyphen() {
        let p = SymbolWithHyphen;
        assert_eq!(CardId::parse(p, "12-34", "567", ""), Ok(card("12-34", "567", None)));
        assert_eq!(CardId::parse(p, "ａｂ－１２", "５６７", "０２"), Ok(card("AB-12", "567", Some("02"))));
        assert_eq!(CardId::parse(p, "ab ー 12", "567", ""), Ok(card("AB-12", "567", None)));
        assert_eq!(CardId::parse(p, "1234", "567", ""), Err(CardError::SymbolInvalid));
        assert_eq!(CardId::parse(p, "-1234", "567", ""), Err(CardError::SymbolInvalid));
        assert_eq!(CardId::parse(p, "1234-", "567", ""), Err(CardError::SymbolInvalid));
        assert_eq!(CardId::parse(p, "12--34", "567", ""), Err(CardError::SymbolInvalid));
        assert_eq!(CardId::parse(p, "12-3あ", "567", ""), Err(CardError::SymbolInvalid));
        assert_eq!(CardId::parse(p, "", "567", ""), Err(CardError::SymbolRequired));
        assert_eq!(CardId::parse(p, &format!("1-{}", "2".repeat(19)), "567", ""), Err(CardError::SymbolTooLong));
        assert_eq!(CardId::parse(p, "12-34", "5-67", ""), Err(CardError::NumberInvalid));
        assert_eq!(CardId::parse(p, "12-34", "", ""), Err(CardError::NumberRequired));
    }

    #[test]
    fn pattern_4_symbol_and_number() {
        let p = SymbolAndNumber;
        assert_eq!(CardId::parse(p, "1234", "567", ""), Ok(card("1234", "567", None)));
        assert_eq!(CardId::parse(p, "12-34", "567", ""), Ok(card("12-34", "567", None)));
        assert_eq!(CardId::parse(p, "ｋ１２", "５６７", "１０"), Ok(card("K12", "567", Some("10"))));
        assert_eq!(CardId::parse(p, &"A".repeat(20), "1", ""), Ok(card(&"A".repeat(20), "1", None)));
        assert_eq!(CardId::parse(p, &"A".repeat(21), "1", ""), Err(CardError::SymbolTooLong));
        assert_eq!(CardId::parse(p, "12.34", "567", ""), Err(CardError::SymbolInvalid));
        assert_eq!(CardId::parse(p, "-", "567", ""), Err(CardError::SymbolInvalid));
        assert_eq!(CardId::parse(p, "\u{3000}", "567", ""), Err(CardError::SymbolRequired));
        assert_eq!(CardId::parse(p, "1234", "56-7", ""), Err(CardError::NumberInvalid));
        assert_eq!(CardId::parse(p, "1234", &"5".repeat(21), ""), Err(CardError::NumberTooLong));
    }

    #[test]
    fn branch_numbers() {
        for p in [HyphenatedNumber, NumberOnly, SymbolWithHyphen, SymbolAndNumber] {
            let (sym, num) = match p {
                HyphenatedNumber => ("", "12-34"),
                NumberOnly => ("", "1234"),
                SymbolWithHyphen => ("1-2", "1234"),
                SymbolAndNumber => ("12", "1234"),
            };
            let b = |input: &str| CardId::parse(p, sym, num, input).map(|c| c.branch);
            assert_eq!(b("01"), Ok(Some("01".into())));
            assert_eq!(b("０１"), Ok(Some("01".into())));
            assert_eq!(b(" 0 1 "), Ok(Some("01".into())));
            assert_eq!(b(""), Ok(None));
            assert_eq!(b("　"), Ok(None));
            assert_eq!(b("1"), Err(CardError::BranchInvalid));
            assert_eq!(b("001"), Err(CardError::BranchInvalid));
            assert_eq!(b("0a"), Err(CardError::BranchInvalid));
            assert_eq!(b("0-"), Err(CardError::BranchInvalid));
            assert_eq!(b("١٢"), Err(CardError::BranchInvalid));
        }
    }

    #[test]
    fn errors_in_order() {
        // Symbol before number before branch.
        assert_eq!(CardId::parse(SymbolAndNumber, "", "", "1"), Err(CardError::SymbolRequired));
        assert_eq!(CardId::parse(NumberOnly, "1", "", "1"), Err(CardError::SymbolNotExpected));
        assert_eq!(CardId::parse(SymbolAndNumber, "1", "", "1"), Err(CardError::NumberRequired));
        assert_eq!(CardId::parse(SymbolAndNumber, "1", "1", "1"), Err(CardError::BranchInvalid));
    }

    #[test]
    fn match_key_ignores_hyphens_case_and_branch() {
        let a = CardId::parse(HyphenatedNumber, "", "12-34", "01").unwrap();
        let b = CardId::parse(NumberOnly, "", "1234", "").unwrap();
        assert_eq!(a.match_key(), "|1234");
        assert_eq!(a.match_key(), b.match_key());
        let c = CardId::parse(SymbolWithHyphen, "ab-12", "567", "").unwrap();
        let d = roster_card("AB12", "567", "02").unwrap();
        assert_eq!(c.match_key(), "AB12|567");
        assert_eq!(c.match_key(), d.match_key());
        // A key built by hand from non-canonical parts still comes out canonical.
        assert_eq!(card("ab-1", "2-3", None).match_key(), "AB1|23");
        // Symbol and number stay apart.
        assert_ne!(card("1", "23", None).match_key(), card("12", "3", None).match_key());
    }

    #[test]
    fn roster_cards() {
        assert_eq!(roster_card("", "123456", ""), Ok(card("", "123456", None)));
        assert_eq!(roster_card("", "123-456", "01"), Ok(card("", "123-456", Some("01"))));
        assert_eq!(roster_card("ａｂ－１", "１２ー３", "０１"), Ok(card("AB-1", "12-3", Some("01"))));
        // Hyphen placement is not checked on roster rows.
        assert_eq!(roster_card("-12", "12-", ""), Ok(card("-12", "12-", None)));
        assert_eq!(roster_card("-", "1", ""), Err(CardError::SymbolInvalid));
        assert_eq!(roster_card("1.2", "1", ""), Err(CardError::SymbolInvalid));
        assert_eq!(roster_card(&"1".repeat(21), "1", ""), Err(CardError::SymbolTooLong));
        assert_eq!(roster_card("1", "", ""), Err(CardError::NumberRequired));
        assert_eq!(roster_card("1", "--", ""), Err(CardError::NumberInvalid));
        assert_eq!(roster_card("1", "12a", ""), Err(CardError::NumberInvalid));
        assert_eq!(roster_card("1", &"1".repeat(21), ""), Err(CardError::NumberTooLong));
        assert_eq!(roster_card("1", "1", "1"), Err(CardError::BranchInvalid));
    }

    #[test]
    fn errors_have_messages() {
        for e in [
            CardError::SymbolRequired,
            CardError::SymbolInvalid,
            CardError::SymbolTooLong,
            CardError::NumberRequired,
            CardError::NumberInvalid,
            CardError::NumberTooLong,
            CardError::BranchInvalid,
            CardError::SymbolNotExpected,
        ] {
            assert!(!e.to_string().is_empty());
        }
    }

    #[test]
    fn serde_round_trip() {
        let c = card("AB-1", "123", Some("01"));
        let json = serde_json::to_string(&c).unwrap();
        assert_eq!(serde_json::from_str::<CardId>(&json).unwrap(), c);
    }

    /// Digits with hyphens inserted at well-placed positions.
    fn hyphenated() -> impl Strategy<Value = String> {
        proptest::collection::vec(("[0-9]{1,4}", 0usize..14), 2..=4).prop_map(|parts| {
            let digits: Vec<String> = parts.iter().map(|(d, _)| d.clone()).collect();
            let dashes = ["-", "ー", "－", "−", "‐", "ｰ", "–", "—", "―", "‑", "‒", "﹣", "⁃", "﹘"];
            let mut out = String::new();
            for (i, (d, dash)) in digits.iter().zip(parts.iter().map(|p| p.1)).enumerate() {
                if i > 0 {
                    out.push_str(dashes[dash % dashes.len()]);
                }
                out.push_str(d);
            }
            out
        })
    }

    proptest! {
        #[test]
        fn normalize_is_idempotent(s in any::<String>()) {
            let once = normalize_card_text(&s);
            prop_assert_eq!(normalize_card_text(&once), once);
        }

        #[test]
        fn normalize_is_idempotent_on_card_like_text(s in "[0-9０-９a-zA-Zａ-ｚＡ-Ｚ\\-ー－−‐ｰ \u{3000}あ.]{0,30}") {
            let once = normalize_card_text(&s);
            prop_assert_eq!(normalize_card_text(&once), once);
        }

        #[test]
        fn match_key_ignores_hyphens(n in hyphenated()) {
            // At most 4 × 4 digits and 3 hyphens: always within 20 characters.
            let with = CardId::parse(HyphenatedNumber, "", &n, "").unwrap();
            let bare: String = with.number.chars().filter(|&c| c != '-').collect();
            let without = CardId::parse(NumberOnly, "", &bare, "").unwrap();
            prop_assert_eq!(with.match_key(), without.match_key());
            let roster = roster_card("", &n, "").unwrap();
            prop_assert_eq!(roster.match_key(), without.match_key());
        }

        #[test]
        fn symbol_hyphens_do_not_matter(s in "[A-Za-z0-9]{1,4}(-[A-Za-z0-9]{1,4}){1,3}", n in "[0-9]{1,8}") {
            let with = CardId::parse(SymbolWithHyphen, &s, &n, "").unwrap();
            let bare: String = s.chars().filter(|&c| c != '-').collect();
            let without = CardId::parse(SymbolAndNumber, &bare, &n, "").unwrap();
            prop_assert_eq!(with.match_key(), without.match_key());
            prop_assert_eq!(with.symbol, s.to_ascii_uppercase());
        }
    }

    /// Text as members type it into the card fields: digits and letters of both widths, every
    /// hyphen-like character, spaces, and a few things that do not belong.
    const CARD_LIKE: &str = "[0-9０-９a-zA-Zａ-ｚＡ-Ｚ\\-‐‑‒–—―⁃−ーｰ－﹘﹣ \u{3000}\t.あ記号#]{0,30}";

    /// Invariants of an accepted card, whatever the input: canonical ASCII within the caps, and
    /// parsing the canonical form again gives the same card.
    fn check_card(card: &CardId, pattern: Option<CardPattern>) -> Result<(), TestCaseError> {
        prop_assert!(card.symbol.chars().count() <= MAX_SYMBOL_CHARS);
        prop_assert!(card.symbol.chars().all(|c| c.is_ascii_digit() || c.is_ascii_uppercase() || c == '-'));
        prop_assert!(!card.number.is_empty() && card.number.chars().count() <= MAX_NUMBER_CHARS);
        prop_assert!(card.number.chars().all(|c| c.is_ascii_digit() || c == '-'));
        prop_assert!(card
            .branch
            .as_ref()
            .is_none_or(|b| b.len() == BRANCH_DIGITS && b.bytes().all(|b| b.is_ascii_digit())));
        prop_assert!(card.match_key().len() <= MAX_SYMBOL_CHARS + 1 + MAX_NUMBER_CHARS);
        let branch = card.branch.as_deref().unwrap_or("");
        let again = match pattern {
            Some(p) => CardId::parse(p, &card.symbol, &card.number, branch),
            None => roster_card(&card.symbol, &card.number, branch),
        };
        prop_assert_eq!(again.as_ref(), Ok(card));
        Ok(())
    }

    const PATTERNS: [CardPattern; 4] = [HyphenatedNumber, NumberOnly, SymbolWithHyphen, SymbolAndNumber];

    proptest! {
        #[test]
        fn normalize_never_grows(s in any::<String>()) {
            prop_assert!(normalize_card_text(&s).chars().count() <= s.chars().count());
        }

        #[test]
        fn parsers_never_panic_on_any_text(p in 0usize..4, symbol in any::<String>(), number in any::<String>(), branch in any::<String>()) {
            if let Ok(card) = CardId::parse(PATTERNS[p], &symbol, &number, &branch) {
                check_card(&card, Some(PATTERNS[p]))?;
            }
            if let Ok(card) = roster_card(&symbol, &number, &branch) {
                check_card(&card, None)?;
            }
        }

        #[test]
        fn parsers_on_card_like_text(p in 0usize..4, symbol in CARD_LIKE, number in CARD_LIKE, branch in "[0-9０-９ \\-]{0,4}") {
            if let Ok(card) = CardId::parse(PATTERNS[p], &symbol, &number, &branch) {
                check_card(&card, Some(PATTERNS[p]))?;
            }
            if let Ok(card) = roster_card(&symbol, &number, &branch) {
                check_card(&card, None)?;
            }
        }

        #[test]
        fn very_long_input_is_refused(p in 0usize..4, digits in 21usize..5000) {
            // Normalization keeps the length (spaces aside), so a long field is TooLong, not a
            // large allocation further on.
            let long = "1".repeat(digits);
            prop_assert_eq!(roster_card("", &long, ""), Err(CardError::NumberTooLong));
            prop_assert_eq!(roster_card(&long, "1", ""), Err(CardError::SymbolTooLong));
            let r = CardId::parse(PATTERNS[p], "A-1", &long, "");
            prop_assert!(matches!(r, Err(CardError::NumberTooLong | CardError::SymbolNotExpected)), "{:?}", r);
        }
    }
}
