//! Member email addresses, normalized so that equal addresses compare equal.

use std::fmt;

use email_address::{EmailAddress, Options};
use unicode_normalization::UnicodeNormalization;

/// Maximum length of an address, in characters.
pub const MAX_CHARS: usize = 254;

/// A validated, normalized email address (NFKC, trimmed, lowercase).
#[derive(Debug, Clone, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub struct Email(String);

/// Why an email address was rejected.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum EmailError {
    /// Nothing was entered.
    #[error("email address is empty")]
    Empty,
    /// Longer than 254 characters.
    #[error("email address is too long")]
    TooLong,
    /// Not a plain `local@domain.tld` address.
    #[error("email address is invalid")]
    Invalid,
    /// Valid, but with characters beyond ASCII (e.g. `山田@例え.jp`), which a relay without
    /// SMTPUTF8 cannot deliver to (see [`Email::is_ascii`]; the caller decides).
    #[error("email address has characters the mail relay cannot take")]
    NotAscii,
}

fn normalize(input: &str) -> String {
    let nfkc: String = input.nfkc().collect();
    nfkc.trim().to_lowercase().nfkc().collect()
}

impl Email {
    /// Normalizes (NFKC, trim, lowercase) and validates `input`.
    pub fn parse(input: &str) -> Result<Self, EmailError> {
        let s = normalize(input);
        if s.is_empty() {
            return Err(EmailError::Empty);
        }
        if s.chars().count() > MAX_CHARS {
            return Err(EmailError::TooLong);
        }
        // Keeps `parse` idempotent even for exotic characters whose lowercase
        // form would normalize differently.
        if normalize(&s) != s {
            return Err(EmailError::Invalid);
        }
        if s.chars().any(|c| c.is_whitespace() || c.is_control() || c == '<' || c == '>') {
            return Err(EmailError::Invalid);
        }
        let options = Options::default().without_display_text().without_domain_literal().with_required_tld();
        let addr = EmailAddress::parse_with_options(&s, options).map_err(|_| EmailError::Invalid)?;
        if !addr.domain().contains('.') {
            return Err(EmailError::Invalid);
        }
        Ok(Self(s))
    }

    /// The normalized address.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Whether the address is plain ASCII (full-width letters are folded by [`Email::parse`],
    /// so this is about internationalized addresses only).
    pub fn is_ascii(&self) -> bool {
        self.0.is_ascii()
    }

    /// The part before the last `@`.
    pub fn local_part(&self) -> &str {
        self.0.rsplit_once('@').map_or(self.0.as_str(), |(l, _)| l)
    }
}

impl fmt::Display for Email {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn ok(s: &str) -> String {
        Email::parse(s).unwrap_or_else(|e| panic!("{s:?}: {e}")).0
    }

    #[test]
    fn accepts_and_normalizes() {
        assert_eq!(ok("taro@example.com"), "taro@example.com");
        assert_eq!(ok("  Taro.Yamada@Example.CO.JP \u{3000}"), "taro.yamada@example.co.jp");
        assert_eq!(ok("ｔａｒｏ＠ｅｘａｍｐｌｅ．ｃｏｍ"), "taro@example.com");
        assert_eq!(ok("taro+tag@mail.example.com"), "taro+tag@mail.example.com");
        let e = Email::parse("Hanako@Example.com").unwrap();
        assert_eq!(e.to_string(), "hanako@example.com");
        assert_eq!(e.local_part(), "hanako");
    }

    #[test]
    fn empty() {
        assert_eq!(Email::parse(""), Err(EmailError::Empty));
        assert_eq!(Email::parse(" \t\u{3000}"), Err(EmailError::Empty));
    }

    #[test]
    fn too_long() {
        let local = "a".repeat(64);
        let domain = format!("{}.com", [(); 3].map(|()| "b".repeat(61)).join("."));
        let at_limit = format!("{local}@{domain}");
        assert_eq!(at_limit.len(), 254);
        assert!(Email::parse(&at_limit).is_ok());
        let over = format!("{local}@c{domain}");
        assert_eq!(Email::parse(&over), Err(EmailError::TooLong));
    }

    #[test]
    fn invalid() {
        for s in [
            "taro",
            "taro@",
            "@example.com",
            "taro@localhost",
            "taro@example",
            "taro@@example.com",
            "ta ro@example.com",
            "taro@exa mple.com",
            "Taro <taro@example.com>",
            "<taro@example.com>",
            "taro@[127.0.0.1]",
            "taro@.example.com",
            "taro@example..com",
            "taro@example.com.",
            ".taro@example.com",
            "taro@-example.com",
            "taro\u{0}@example.com",
        ] {
            assert_eq!(Email::parse(s), Err(EmailError::Invalid), "{s:?}");
        }
    }

    proptest! {
        #[test]
        fn parse_is_idempotent(s in "\\PC{0,40}") {
            if let Ok(e) = Email::parse(&s) {
                prop_assert_eq!(Email::parse(e.as_str()), Ok(e));
            }
        }

        #[test]
        fn parse_is_idempotent_on_plausible(
            local in "[a-zA-Z0-9._+\\-ａ-ｚＡ-Ｚ０-９ßİÅ]{1,20}",
            domain in "[a-zA-Z0-9\\-ａ-ｚ]{1,15}(\\.[a-zA-Z]{2,6}){1,3}",
            at in prop_oneof![Just("@"), Just("＠")],
            pad in "[ \\t\u{3000}]{0,3}",
        ) {
            let input = format!("{pad}{local}{at}{domain}{pad}");
            if let Ok(e) = Email::parse(&input) {
                prop_assert_eq!(e.as_str(), e.as_str().to_lowercase());
                prop_assert!(!e.as_str().contains(char::is_whitespace));
                prop_assert_eq!(Email::parse(e.as_str()), Ok(e));
            }
        }

        #[test]
        fn simple_addresses_accepted(
            local in "[a-z0-9]{1,20}",
            domain in "[a-z0-9]{1,15}\\.[a-z]{2,6}",
        ) {
            let s = format!("{local}@{domain}");
            prop_assert_eq!(Email::parse(&s).map(|e| e.0), Ok(s));
        }
    }
}
