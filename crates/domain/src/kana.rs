//! 氏名 (names) in full-width katakana, and the folding used to match them.
//!
//! [`to_katakana`] produces what is stored and shown; [`fold_for_match`] is
//! only ever used to compare a member's input with a roster record.

use unicode_normalization::char::{compose, decompose_canonical};
use unicode_normalization::UnicodeNormalization;

/// Maximum length of one name part, in characters.
pub const MAX_CHARS: usize = 40;

/// Why a name was rejected; tells the page which message to show.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum KanaError {
    /// Nothing was entered.
    #[error("name is empty")]
    Empty,
    /// Longer than 40 characters.
    #[error("name is longer than 40 characters")]
    TooLong,
    /// Contains Latin letters.
    #[error("name contains Latin letters; use full-width katakana")]
    Latin,
    /// Contains digits.
    #[error("name contains digits; use full-width katakana")]
    Digit,
    /// Contains kanji.
    #[error("name contains kanji; use full-width katakana")]
    Kanji,
    /// Contains other symbols, or no kana at all.
    #[error("name contains characters other than katakana")]
    Other,
}

/// Katakana letters ァ (U+30A1) to ヺ (U+30FA).
fn is_katakana_letter(c: char) -> bool {
    ('\u{30A1}'..='\u{30FA}').contains(&c)
}

/// What kind of disallowed character `c` is, or `None` if it may appear in a name.
fn classify(c: char) -> Option<KanaError> {
    match c {
        c if is_katakana_letter(c) => None,
        'ー' | '・' | '＝' | 'ヽ' | 'ヾ' => None,
        '\u{4E00}'..='\u{9FFF}'
        | '\u{3400}'..='\u{4DBF}'
        | '\u{F900}'..='\u{FAFF}'
        | '\u{20000}'..='\u{2FA1F}'
        | '々'
        | '〇' => Some(KanaError::Kanji),
        c if c.is_numeric() => Some(KanaError::Digit),
        c if c.is_ascii_alphabetic()
            || (c.is_alphabetic()
                && (('\u{00C0}'..='\u{024F}').contains(&c) || ('\u{1E00}'..='\u{1EFF}').contains(&c))) =>
        {
            Some(KanaError::Latin)
        }
        _ => Some(KanaError::Other),
    }
}

/// Converts one name part (family or given name) to full-width katakana for
/// storage and display.
///
/// Steps: NFKC (half-width ｶﾀｶﾅ → full-width with dakuten/handakuten composed,
/// ｶﾞ → ガ, ﾊﾟ → パ; full-width Latin letters and digits → ASCII, which are then
/// rejected), hiragana → katakana (U+3041..=U+3096 → +0x60, ゝゞ → ヽヾ), `=` →
/// `＝`, all whitespace removed (a single name part has no spaces), and NFC so
/// that a separately typed ゛/゜ joins the kana before it.
///
/// Allowed in the result: katakana ァ–ヺ, ー, ・, ＝, ヽ, ヾ, with at least one
/// katakana letter and at most 40 characters. Otherwise the error names the
/// first offending character's kind (Latin letter, digit, kanji, other).
pub fn to_katakana(input: &str) -> Result<String, KanaError> {
    let mapped: String = input
        .nfkc()
        .filter(|c| !c.is_whitespace())
        .map(|c| match c {
            '\u{3041}'..='\u{3096}' => char::from_u32(u32::from(c) + 0x60).unwrap_or(c),
            'ゝ' => 'ヽ',
            'ゞ' => 'ヾ',
            '=' => '＝',
            c => c,
        })
        .collect();
    let s: String = mapped.nfc().collect();
    if s.is_empty() {
        return Err(KanaError::Empty);
    }
    if let Some(e) = s.chars().find_map(classify) {
        return Err(e);
    }
    if !s.chars().any(is_katakana_letter) {
        return Err(KanaError::Other);
    }
    if s.chars().count() > MAX_CHARS {
        return Err(KanaError::TooLong);
    }
    Ok(s)
}

/// Single-character part of [`fold_for_match`]: ヴ/ヷヸヹヺ → ブ/バビベボ, small kana → large.
fn fold_char(c: char) -> char {
    match c {
        'ヴ' => 'ブ',
        'ヷ' => 'バ',
        'ヸ' => 'ビ',
        'ヹ' => 'ベ',
        'ヺ' => 'ボ',
        'ァ' => 'ア',
        'ィ' => 'イ',
        'ゥ' => 'ウ',
        'ェ' => 'エ',
        'ォ' => 'オ',
        'ッ' => 'ツ',
        'ャ' => 'ヤ',
        'ュ' => 'ユ',
        'ョ' => 'ヨ',
        'ヮ' => 'ワ',
        'ヵ' => 'カ',
        'ヶ' => 'ケ',
        c => c,
    }
}

/// The base letter of `c` without dakuten/handakuten (パ → ハ, カ → カ).
fn unvoiced(c: char) -> char {
    let mut first = None;
    decompose_canonical(c, |d| {
        first.get_or_insert(d);
    });
    first.unwrap_or(c)
}

/// Folds a katakana name for matching ONLY (never for display):
///
/// - ヴァ ヴィ ヴ ヴェ ヴォ → バ ビ ブ ベ ボ (and ヷ ヸ ヹ ヺ → バ ビ ベ ボ);
/// - small kana → large: ァィゥェォッャュョヮヵヶ → アイウエオツヤユヨワカケ;
/// - iteration marks are spelled out: ヽ repeats the previous letter
///   (unvoiced), ヾ repeats it voiced (サヽキ → ササキ, スヾキ → スズキ);
/// - ー, ・, ＝ and whitespace are removed.
///
/// Idempotent: its output contains none of the characters it rewrites.
pub fn fold_for_match(katakana: &str) -> String {
    let mut out = String::with_capacity(katakana.len());
    let mut last: Option<char> = None;
    let mut chars = katakana.chars().peekable();
    while let Some(c) = chars.next() {
        let folded = match c {
            'ヴ' => {
                let merged = match chars.peek() {
                    Some('ァ') => Some('バ'),
                    Some('ィ') => Some('ビ'),
                    Some('ェ') => Some('ベ'),
                    Some('ォ') => Some('ボ'),
                    _ => None,
                };
                if merged.is_some() {
                    chars.next();
                }
                merged.unwrap_or('ブ')
            }
            'ー' | '・' | '＝' => continue,
            c if c.is_whitespace() => continue,
            'ヽ' => match last {
                Some(prev) => unvoiced(prev),
                None => continue,
            },
            'ヾ' => match last {
                Some(prev) => fold_char(compose(unvoiced(prev), '\u{3099}').unwrap_or(prev)),
                None => continue,
            },
            c => fold_char(c),
        };
        out.push(folded);
        last = Some(folded);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn ok(s: &str) -> Result<String, KanaError> {
        Ok(s.to_owned())
    }

    #[test]
    fn conversions() {
        assert_eq!(to_katakana("やまだ"), ok("ヤマダ"));
        assert_eq!(to_katakana("ﾔﾏﾀﾞ"), ok("ヤマダ"));
        assert_eq!(to_katakana("ﾊﾟｸ"), ok("パク"));
        assert_eq!(to_katakana("ヤマダ タロウ"), ok("ヤマダタロウ"));
        assert_eq!(to_katakana("\u{3000}やま　だ "), ok("ヤマダ"));
        assert_eq!(to_katakana("ヤマダ"), ok("ヤマダ"));
        assert_eq!(to_katakana("ｺｰﾋｰ"), ok("コーヒー"));
        assert_eq!(to_katakana("ﾏﾘｱ･ﾃﾚｻ"), ok("マリア・テレサ"));
        assert_eq!(to_katakana("じょん＝すみす"), ok("ジョン＝スミス"));
        assert_eq!(to_katakana("ｼﾞｮﾝ=ｽﾐｽ"), ok("ジョン＝スミス"));
        assert_eq!(to_katakana("ゔぁいおりん"), ok("ヴァイオリン"));
        assert_eq!(to_katakana("ぁぃぅぇぉっゃゅょゎゕゖ"), ok("ァィゥェォッャュョヮヵヶ"));
        assert_eq!(to_katakana("さゝき"), ok("サヽキ"));
        assert_eq!(to_katakana("すゞき"), ok("スヾキ"));
        // Combining or separately typed (han)dakuten join the kana before them.
        assert_eq!(to_katakana("か\u{3099}"), ok("ガ"));
        assert_eq!(to_katakana("か゛"), ok("ガ"));
        assert_eq!(to_katakana("ﾊ ﾟ"), ok("パ"));
        // Mixed hiragana, half-width and full-width katakana.
        assert_eq!(to_katakana("やまﾀﾞタロウ"), ok("ヤマダタロウ"));
    }

    #[test]
    fn rejections() {
        assert_eq!(to_katakana(""), Err(KanaError::Empty));
        assert_eq!(to_katakana(" \u{3000}\t"), Err(KanaError::Empty));
        assert_eq!(to_katakana("Yamada"), Err(KanaError::Latin));
        assert_eq!(to_katakana("ＹＡＭＡＤＡ"), Err(KanaError::Latin));
        assert_eq!(to_katakana("ヤマダé"), Err(KanaError::Latin));
        assert_eq!(to_katakana("山田"), Err(KanaError::Kanji));
        assert_eq!(to_katakana("佐々木"), Err(KanaError::Kanji));
        assert_eq!(to_katakana("々"), Err(KanaError::Kanji));
        assert_eq!(to_katakana("𠮷田"), Err(KanaError::Kanji));
        assert_eq!(to_katakana("ヤマダ1"), Err(KanaError::Digit));
        assert_eq!(to_katakana("ヤマダ１"), Err(KanaError::Digit));
        assert_eq!(to_katakana("ヤマダ!"), Err(KanaError::Other));
        assert_eq!(to_katakana("ヤマ-ダ"), Err(KanaError::Other));
        assert_eq!(to_katakana("ヤマダ。"), Err(KanaError::Other));
        assert_eq!(to_katakana("ア\u{3099}"), Err(KanaError::Other));
        assert_eq!(to_katakana("ー・"), Err(KanaError::Other));
        assert_eq!(to_katakana("ゝ"), Err(KanaError::Other));
        // The first offending character decides.
        assert_eq!(to_katakana("ヤマダ1山"), Err(KanaError::Digit));
        assert_eq!(to_katakana("山1"), Err(KanaError::Kanji));
        assert_eq!(to_katakana("a山"), Err(KanaError::Latin));
    }

    #[test]
    fn length() {
        assert_eq!(to_katakana(&"ア".repeat(40)), Ok("ア".repeat(40)));
        assert_eq!(to_katakana(&"ア".repeat(41)), Err(KanaError::TooLong));
        // Counted after conversion: ｶﾞ is one character.
        assert_eq!(to_katakana(&"ｶﾞ".repeat(40)), Ok("ガ".repeat(40)));
        // Spaces do not count.
        assert_eq!(to_katakana(&"ア ".repeat(40)), Ok("ア".repeat(40)));
    }

    #[test]
    fn folding() {
        assert_eq!(fold_for_match("ショウ"), "シヨウ");
        assert_eq!(fold_for_match("ヴィクトル"), "ビクトル");
        assert_eq!(fold_for_match("キャッシー"), "キヤツシ");
        assert_eq!(fold_for_match("ヴァイオリン"), "バイオリン");
        assert_eq!(fold_for_match("ヴ"), "ブ");
        assert_eq!(fold_for_match("ヴェ"), "ベ");
        assert_eq!(fold_for_match("ヴォ"), "ボ");
        assert_eq!(fold_for_match("ヴゥ"), "ブウ");
        assert_eq!(fold_for_match("ヴュ"), "ブユ");
        assert_eq!(fold_for_match("ヷヸヹヺ"), "バビベボ");
        assert_eq!(fold_for_match("ァィゥェォッャュョヮヵヶ"), "アイウエオツヤユヨワカケ");
        assert_eq!(fold_for_match("ジョン＝スミス"), "ジヨンスミス");
        assert_eq!(fold_for_match("マリア・テレサ"), "マリアテレサ");
        assert_eq!(fold_for_match("ヤマダ タロウ"), "ヤマダタロウ");
        assert_eq!(fold_for_match("サヽキ"), "ササキ");
        assert_eq!(fold_for_match("スヾキ"), "スズキ");
        assert_eq!(fold_for_match("ハヾ"), "ハバ");
        assert_eq!(fold_for_match("パヽ"), "パハ");
        assert_eq!(fold_for_match("アヾ"), "アア");
        assert_eq!(fold_for_match("ウヾ"), "ウブ");
        assert_eq!(fold_for_match("ヽヾ"), "");
        assert_eq!(fold_for_match(""), "");
        assert_eq!(fold_for_match("ビクトル"), fold_for_match("ヴィクトル"));
    }

    #[test]
    fn errors_have_messages() {
        for e in [
            KanaError::Empty,
            KanaError::TooLong,
            KanaError::Latin,
            KanaError::Digit,
            KanaError::Kanji,
            KanaError::Other,
        ] {
            assert!(!e.to_string().is_empty());
        }
    }

    /// Indices into the hiragana block U+3041..=U+3096.
    fn kana_indices() -> impl Strategy<Value = Vec<u32>> {
        proptest::collection::vec(0u32..=0x55, 1..=40)
    }

    fn from_indices(indices: &[u32], base: u32) -> String {
        indices.iter().filter_map(|&i| char::from_u32(base + i)).collect()
    }

    proptest! {
        #[test]
        fn to_katakana_is_idempotent(s in "[ぁ-ゖゝゞァ-ヺヽヾｦ-ﾟー・＝= 　゛゜\u{3099}\u{309A}a1山!]{0,45}") {
            if let Ok(k) = to_katakana(&s) {
                prop_assert_eq!(to_katakana(&k), Ok(k.clone()));
            }
        }

        #[test]
        fn to_katakana_is_idempotent_on_any_text(s in any::<String>()) {
            if let Ok(k) = to_katakana(&s) {
                prop_assert_eq!(to_katakana(&k), Ok(k.clone()));
            }
        }

        #[test]
        fn fold_is_idempotent(s in "[ァ-ヺヽヾー・＝ あ]{0,30}") {
            let once = fold_for_match(&s);
            prop_assert_eq!(fold_for_match(&once), once);
        }

        #[test]
        fn fold_is_idempotent_on_any_text(s in any::<String>()) {
            let once = fold_for_match(&s);
            prop_assert_eq!(fold_for_match(&once), once);
        }

        #[test]
        fn hiragana_and_katakana_match(indices in kana_indices()) {
            let hiragana = from_indices(&indices, 0x3041);
            let katakana = from_indices(&indices, 0x30A1);
            let h = to_katakana(&hiragana).map(|k| fold_for_match(&k));
            let k = to_katakana(&katakana).map(|k| fold_for_match(&k));
            prop_assert!(h.is_ok());
            prop_assert_eq!(h, k);
        }

        #[test]
        fn accepted_names_are_short_katakana(s in any::<String>()) {
            if let Ok(k) = to_katakana(&s) {
                prop_assert!(k.chars().count() <= MAX_CHARS);
                prop_assert!(k.chars().all(|c| classify(c).is_none()));
                prop_assert!(k.chars().any(is_katakana_letter));
            }
        }

        #[test]
        fn long_kana_text_is_refused_or_short(s in "[ぁ-ゖァ-ヺｦ-ﾟー・ 　゛゜]{30,400}") {
            // Whatever NFKC does to half-width kana and voicing marks, an accepted name is at
            // most 40 characters, and anything longer than 40 letters after conversion is TooLong.
            match to_katakana(&s) {
                Ok(k) => prop_assert!(k.chars().count() <= MAX_CHARS),
                Err(e) => prop_assert!(matches!(e, KanaError::TooLong | KanaError::Other | KanaError::Empty), "{:?}", e),
            }
        }

        #[test]
        fn folding_never_grows(s in any::<String>()) {
            // One output character at most per input character (ヴァ → バ merges two).
            prop_assert!(fold_for_match(&s).chars().count() <= s.chars().count());
        }

        #[test]
        fn folding_never_grows_on_kana(s in "[ァ-ヺヽヾー・＝ 　ゝゞ]{0,60}") {
            let folded = fold_for_match(&s);
            prop_assert!(folded.chars().count() <= s.chars().count());
            prop_assert_eq!(fold_for_match(&folded), folded.clone());
        }
    }
}
