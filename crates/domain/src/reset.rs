//! F2 「ログインでお困りの場合」: password reset by an emailed one-time password.
//!
//! A reset flow is created for every request, whether or not the email has an account, so
//! the answer never reveals which addresses exist; only a flow with a user can complete. The
//! flow keeps the address as typed, so that the password rules and the code budgets are the
//! same for an address without an account.

use serde::{Deserialize, Serialize};
use time::{Duration, OffsetDateTime};

use crate::locale::Locale;

/// How long a reset request stays usable.
pub const RESET_TTL: Duration = Duration::hours(1);

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ResetState {
    CodeSent,
    Completed,
}

impl ResetState {
    pub fn as_str(&self) -> &'static str {
        match self {
            ResetState::CodeSent => "code_sent",
            ResetState::Completed => "completed",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ResetError {
    #[error("the reset request has expired")]
    Expired,
    #[error("the reset is already complete")]
    AlreadyCompleted,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PasswordReset {
    pub id: String,
    /// `None` when the email has no account: the flow then never completes.
    pub user_id: Option<String>,
    /// The address as typed (normalized), account or not. `None` in flows started before it
    /// was kept.
    #[serde(default)]
    pub email: Option<String>,
    pub state: ResetState,
    pub locale: Locale,
    #[serde(with = "time::serde::rfc3339")]
    pub code_sent_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    pub expires_at: OffsetDateTime,
}

impl PasswordReset {
    pub fn start(id: String, user_id: Option<String>, email: String, locale: Locale, now: OffsetDateTime) -> Self {
        PasswordReset {
            id,
            user_id,
            email: Some(email),
            state: ResetState::CodeSent,
            locale,
            code_sent_at: now,
            created_at: now,
            expires_at: now + RESET_TTL,
        }
    }

    pub fn is_expired(&self, now: OffsetDateTime) -> bool {
        now >= self.expires_at
    }

    fn require_open(&self, now: OffsetDateTime) -> Result<(), ResetError> {
        if self.state == ResetState::Completed {
            return Err(ResetError::AlreadyCompleted);
        }
        if self.is_expired(now) {
            return Err(ResetError::Expired);
        }
        Ok(())
    }

    pub fn resend_code(&mut self, now: OffsetDateTime) -> Result<(), ResetError> {
        self.require_open(now)?;
        self.code_sent_at = now;
        Ok(())
    }

    pub fn complete(&mut self, now: OffsetDateTime) -> Result<(), ResetError> {
        self.require_open(now)?;
        self.state = ResetState::Completed;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn completes_once_and_expires() {
        let now = OffsetDateTime::from_unix_timestamp(1_790_000_000).expect("valid");
        let mut r = PasswordReset::start("r".into(), Some("u".into()), "a@example.com".into(), Locale::Ja, now);
        r.resend_code(now + Duration::minutes(1)).expect("resend");
        assert_eq!(r.code_sent_at, now + Duration::minutes(1));
        r.complete(now + Duration::minutes(2)).expect("complete");
        assert_eq!(r.complete(now + Duration::minutes(3)), Err(ResetError::AlreadyCompleted));
        let late = PasswordReset::start("r2".into(), None, "b@example.com".into(), Locale::Ja, now);
        assert_eq!(late.clone().complete(now + RESET_TTL), Err(ResetError::Expired));
    }

    #[test]
    fn flows_from_before_the_address_was_kept_still_load() {
        let now = OffsetDateTime::from_unix_timestamp(1_790_000_000).expect("valid");
        let mut v =
            serde_json::to_value(PasswordReset::start("r".into(), None, "a@example.com".into(), Locale::Ja, now))
                .expect("json");
        v.as_object_mut().expect("object").remove("email");
        let old: PasswordReset = serde_json::from_value(v).expect("older flow");
        assert_eq!(old.email, None);
    }
}
