//! パスワード設定の条件 (password policy): 8–128 characters and not guessable.

use zxcvbn::Score;

/// Minimum length, in characters.
pub const MIN_CHARS: usize = 8;
/// Maximum length, in characters.
pub const MAX_CHARS: usize = 128;

/// Why a password was rejected.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum PasswordError {
    /// Fewer than [`MIN_CHARS`] characters.
    #[error("password must be at least 8 characters")]
    TooShort,
    /// More than [`MAX_CHARS`] characters.
    #[error("password must be at most 128 characters")]
    TooLong,
    /// Too easy to guess (zxcvbn score below 3).
    #[error("password is too easy to guess")]
    Weak,
}

/// Checks `password` against the policy. `user_inputs` are words the password
/// must not be built from (e.g. the email address and its local part).
pub fn check_password(password: &str, user_inputs: &[&str]) -> Result<(), PasswordError> {
    let len = password.chars().count();
    if len < MIN_CHARS {
        return Err(PasswordError::TooShort);
    }
    if len > MAX_CHARS {
        return Err(PasswordError::TooLong);
    }
    if zxcvbn::zxcvbn(password, user_inputs).score() < Score::Three {
        return Err(PasswordError::Weak);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn weak_passwords() {
        for p in ["password", "12345678", "qwertyui", "p@ssw0rd1", "aaaaaaaa", "password123"] {
            assert_eq!(check_password(p, &[]), Err(PasswordError::Weak), "{p}");
        }
    }

    #[test]
    fn lengths() {
        assert_eq!(check_password("Xk9#vQ2", &[]), Err(PasswordError::TooShort));
        assert_eq!(check_password("", &[]), Err(PasswordError::TooShort));
        // 7 characters but 21 bytes: still too short.
        assert_eq!(check_password("あいうえおかき", &[]), Err(PasswordError::TooShort));
        let long: String = "Xk9#vQ2-".repeat(17).chars().take(129).collect();
        assert_eq!(check_password(&long, &[]), Err(PasswordError::TooLong));
        assert!(check_password(&long[..128], &[]).is_ok());
    }

    #[test]
    fn strong_passwords() {
        assert_eq!(check_password("Sakura-Mochi-2026!", &[]), Ok(()));
        assert_eq!(check_password("correct horse battery staple", &[]), Ok(()));
    }

    #[test]
    fn built_from_email_is_weak() {
        let email = "hanamizuki.tsubasa@example.com";
        let local = "hanamizuki.tsubasa";
        let pw = format!("{local}2024");
        assert_eq!(check_password(&pw, &[]), Ok(()), "strong without the email");
        assert_eq!(check_password(&pw, &[email, local]), Err(PasswordError::Weak));
    }

    proptest! {
        #[test]
        fn length_bounds(p in "\\PC{0,140}") {
            let n = p.chars().count();
            let r = check_password(&p, &[]);
            if n < MIN_CHARS {
                prop_assert_eq!(r, Err(PasswordError::TooShort));
            } else if n > MAX_CHARS {
                prop_assert_eq!(r, Err(PasswordError::TooLong));
            } else {
                prop_assert_ne!(r, Err(PasswordError::TooShort));
                prop_assert_ne!(r, Err(PasswordError::TooLong));
            }
        }
    }
}
