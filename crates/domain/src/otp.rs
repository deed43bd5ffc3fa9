//! ワンタイムパスワード: 6-digit one-time codes sent by email.

use rand::{CryptoRng, Rng, RngCore};
use time::{Duration, OffsetDateTime};
use unicode_normalization::UnicodeNormalization;

/// Number of digits in a code.
pub const CODE_LEN: usize = 6;
/// How long a code is valid.
pub const CODE_TTL: Duration = Duration::minutes(10);
/// Wrong entries allowed per code.
pub const MAX_ATTEMPTS: u32 = 5;
/// Minimum wait between sending a code and resending.
pub const RESEND_COOLDOWN: Duration = Duration::seconds(60);
/// Code attempts per flow (a registration, a password reset) in [`CODE_BUDGET_WINDOW`],
/// across resends: a resend brings a fresh code with fresh [`MAX_ATTEMPTS`], never a fresh
/// budget, so resending forever does not buy unlimited guesses. Every attempt is counted
/// before it is checked (a right one ends the flow anyway).
pub const CODE_ATTEMPTS_PER_FLOW: u32 = 10;
/// Code attempts per account (the address being registered or reset, whether or not it has
/// an account) and purpose in [`CODE_BUDGET_WINDOW`], across flows. NIST SP 800-63B §5.2.2
/// allows at most 100 consecutive failed attempts on an account; once spent, the member waits
/// for the next window or asks the customer center (お問い合わせ).
pub const CODE_ATTEMPTS_PER_ACCOUNT: u32 = 20;
/// The window of [`CODE_ATTEMPTS_PER_FLOW`] and [`CODE_ATTEMPTS_PER_ACCOUNT`].
pub const CODE_BUDGET_WINDOW: Duration = Duration::days(1);

// NIST SP 800-63B §5.2.2: no more than 100 consecutive failed attempts on one account.
const _: () = assert!(CODE_ATTEMPTS_PER_ACCOUNT <= 100 && CODE_ATTEMPTS_PER_FLOW <= CODE_ATTEMPTS_PER_ACCOUNT);

/// A uniformly random code of exactly [`CODE_LEN`] ASCII digits (leading zeros kept).
pub fn generate_code<R: CryptoRng + RngCore>(rng: &mut R) -> String {
    let n: u32 = rng.gen_range(0..1_000_000);
    format!("{n:06}")
}

/// Normalizes user input: NFKC (full-width digits → ASCII), removes spaces
/// (including U+3000) and hyphens. `Some` only if exactly 6 ASCII digits remain.
pub fn normalize_code(input: &str) -> Option<String> {
    let code: String = input.nfkc().filter(|&c| !c.is_whitespace() && !is_hyphen(c)).collect();
    (code.len() == CODE_LEN && code.bytes().all(|b| b.is_ascii_digit())).then_some(code)
}

fn is_hyphen(c: char) -> bool {
    matches!(
        c,
        '-' | '\u{2010}'
            | '\u{2011}'
            | '\u{2012}'
            | '\u{2013}'
            | '\u{2014}'
            | '\u{2015}'
            | '\u{2212}'
            | '\u{30FC}'
            | '\u{FF70}'
            | '\u{FE63}'
    )
}

/// When a code was issued and when it stops being valid.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CodeValidity {
    /// When the code was sent.
    pub issued_at: OffsetDateTime,
    /// First instant at which the code is no longer accepted.
    pub expires_at: OffsetDateTime,
}

impl CodeValidity {
    /// Validity of a code issued at `issued_at` (expires after [`CODE_TTL`]).
    pub fn starting(issued_at: OffsetDateTime) -> Self {
        Self { issued_at, expires_at: issued_at + CODE_TTL }
    }

    /// Whether the code has expired at `now`.
    pub fn is_expired(&self, now: OffsetDateTime) -> bool {
        now >= self.expires_at
    }

    /// Whether a new code may be sent at `now` ([`RESEND_COOLDOWN`] has passed).
    pub fn can_resend(&self, now: OffsetDateTime) -> bool {
        now >= self.issued_at + RESEND_COOLDOWN
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::{Clock, ManualClock};
    use proptest::prelude::*;
    use rand::{rngs::StdRng, SeedableRng};
    use time::macros::datetime;

    #[test]
    fn expiry() {
        let clock = ManualClock::new(datetime!(2026-04-01 09:00 +09:00));
        let v = CodeValidity::starting(clock.now());
        assert_eq!(v.expires_at, datetime!(2026-04-01 09:10 +09:00));
        assert!(!v.is_expired(clock.now()));
        clock.advance(Duration::minutes(9) + Duration::seconds(59));
        assert!(!v.is_expired(clock.now()));
        clock.advance(Duration::seconds(1));
        assert!(v.is_expired(clock.now()));
        clock.advance(Duration::hours(1));
        assert!(v.is_expired(clock.now()));
    }

    #[test]
    fn resend_cooldown() {
        let t0 = datetime!(2026-04-01 09:00 UTC);
        let v = CodeValidity::starting(t0);
        assert!(!v.can_resend(t0));
        assert!(!v.can_resend(t0 + Duration::seconds(59)));
        assert!(v.can_resend(t0 + Duration::seconds(60)));
        assert!(v.can_resend(t0 + Duration::minutes(30)));
    }

    #[test]
    fn normalize() {
        assert_eq!(normalize_code("123456").as_deref(), Some("123456"));
        assert_eq!(normalize_code("１２３ ４５６").as_deref(), Some("123456"));
        assert_eq!(normalize_code(" 123-456\u{3000}").as_deref(), Some("123456"));
        assert_eq!(normalize_code("１２３ー４５６").as_deref(), Some("123456"));
        assert_eq!(normalize_code("012345").as_deref(), Some("012345"));
        assert_eq!(normalize_code("12345"), None);
        assert_eq!(normalize_code("1234567"), None);
        assert_eq!(normalize_code("12a456"), None);
        assert_eq!(normalize_code("١٢٣٤٥٦"), None);
        assert_eq!(normalize_code(""), None);
    }

    #[test]
    fn generates_leading_zeros() {
        let mut rng = StdRng::seed_from_u64(7);
        let codes: Vec<String> = (0..2000).map(|_| generate_code(&mut rng)).collect();
        assert!(codes.iter().any(|c| c.starts_with('0')));
        assert!(codes.iter().all(|c| c.len() == CODE_LEN));
    }

    proptest! {
        #[test]
        fn generated_codes_round_trip(seed in any::<u64>()) {
            let mut rng = StdRng::seed_from_u64(seed);
            let code = generate_code(&mut rng);
            prop_assert_eq!(code.len(), CODE_LEN);
            prop_assert!(code.bytes().all(|b| b.is_ascii_digit()));
            prop_assert_eq!(normalize_code(&code), Some(code));
        }

        #[test]
        fn normalized_is_six_ascii_digits(s in "\\PC{0,20}") {
            if let Some(c) = normalize_code(&s) {
                prop_assert_eq!(c.len(), CODE_LEN);
                prop_assert!(c.bytes().all(|b| b.is_ascii_digit()));
            }
        }
    }
}
