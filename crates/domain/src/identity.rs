//! F3 本人確認 (identity verification against the insurer's roster) as a state machine.
//!
//! ```text
//! Started ─保険者番号─▶ InsurerConfirmed ─記号・番号─▶ CardEntered ─氏名・生年月日─▶ PersonEntered
//!   ─「この内容で本人確認する」─▶ Completed | Failed(AlreadyLinked ① | NoMatch ②)
//! ```
//! Until the confirmation a member may go back and correct any step.

use serde::{Deserialize, Serialize};
use time::{Date, Duration, OffsetDateTime};

use crate::card::CardId;
use crate::insurer::InsurerNumber;
use crate::org::Organization;

/// How long one verification may stay open.
pub const VERIFICATION_TTL: Duration = Duration::hours(1);
/// Failed verifications allowed per account in [`ATTEMPT_WINDOW`] before the member is sent
/// to the customer center (the roster must not be probed).
pub const MAX_ATTEMPTS: i64 = 5;
pub const ATTEMPT_WINDOW: Duration = Duration::hours(24);

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum IdentityState {
    Started,
    InsurerConfirmed,
    CardEntered,
    PersonEntered,
    Completed,
    Failed,
}

impl IdentityState {
    pub fn as_str(&self) -> &'static str {
        match self {
            IdentityState::Started => "started",
            IdentityState::InsurerConfirmed => "insurer_confirmed",
            IdentityState::CardEntered => "card_entered",
            IdentityState::PersonEntered => "person_entered",
            IdentityState::Completed => "completed",
            IdentityState::Failed => "failed",
        }
    }
}

/// The guide's two error cases.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum IdentityFailure {
    /// ① The roster record is already linked to another account (registered before with
    /// another email).
    AlreadyLinked,
    /// ② No eligible roster record matches (not sent by the organization yet, or a typo).
    NoMatch,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IdentityError {
    #[error("this step is not possible in state {0:?}")]
    WrongState(IdentityState),
    #[error("the verification has expired")]
    Expired,
    #[error("the insurer number is not the member's organization")]
    InsurerMismatch,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IdentityVerification {
    pub id: String,
    pub user_id: String,
    pub org_id: String,
    pub state: IdentityState,
    pub card: Option<CardId>,
    /// Full-width katakana.
    pub family_name: Option<String>,
    pub given_name: Option<String>,
    pub birth_date: Option<Date>,
    pub failure: Option<IdentityFailure>,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    pub expires_at: OffsetDateTime,
}

impl IdentityVerification {
    pub fn start(id: String, user_id: String, org_id: String, now: OffsetDateTime) -> Self {
        IdentityVerification {
            id,
            user_id,
            org_id,
            state: IdentityState::Started,
            card: None,
            family_name: None,
            given_name: None,
            birth_date: None,
            failure: None,
            created_at: now,
            expires_at: now + VERIFICATION_TTL,
        }
    }

    fn require(&self, now: OffsetDateTime, allowed: &[IdentityState]) -> Result<(), IdentityError> {
        if now >= self.expires_at {
            return Err(IdentityError::Expired);
        }
        if allowed.contains(&self.state) {
            Ok(())
        } else {
            Err(IdentityError::WrongState(self.state))
        }
    }

    const EDITABLE: [IdentityState; 4] = [
        IdentityState::Started,
        IdentityState::InsurerConfirmed,
        IdentityState::CardEntered,
        IdentityState::PersonEntered,
    ];

    /// 保険者番号確認: the number must be the member's own organization's.
    pub fn confirm_insurer(
        &mut self,
        entered: &InsurerNumber,
        org: &Organization,
        now: OffsetDateTime,
    ) -> Result<(), IdentityError> {
        self.require(now, &Self::EDITABLE)?;
        if org.id != self.org_id || &org.insurer_number != entered {
            return Err(IdentityError::InsurerMismatch);
        }
        if self.state == IdentityState::Started {
            self.state = IdentityState::InsurerConfirmed;
        }
        Ok(())
    }

    /// 記号・番号確認.
    pub fn enter_card(&mut self, card: CardId, now: OffsetDateTime) -> Result<(), IdentityError> {
        self.require(now, &Self::EDITABLE[1..])?;
        self.card = Some(card);
        if self.state == IdentityState::InsurerConfirmed {
            self.state = IdentityState::CardEntered;
        }
        Ok(())
    }

    /// 基本情報登録: names already converted to full-width katakana.
    pub fn enter_person(
        &mut self,
        family: String,
        given: String,
        birth_date: Date,
        now: OffsetDateTime,
    ) -> Result<(), IdentityError> {
        self.require(now, &Self::EDITABLE[2..])?;
        self.family_name = Some(family);
        self.given_name = Some(given);
        self.birth_date = Some(birth_date);
        self.state = IdentityState::PersonEntered;
        Ok(())
    }

    /// The roster check is about to run: everything must have been entered.
    pub fn ready_to_confirm(&self, now: OffsetDateTime) -> Result<(), IdentityError> {
        self.require(now, &[IdentityState::PersonEntered])?;
        match (&self.card, &self.family_name, &self.given_name, &self.birth_date) {
            (Some(_), Some(_), Some(_), Some(_)) => Ok(()),
            _ => Err(IdentityError::WrongState(self.state)),
        }
    }

    pub fn complete(&mut self, now: OffsetDateTime) -> Result<(), IdentityError> {
        self.ready_to_confirm(now)?;
        self.state = IdentityState::Completed;
        self.failure = None;
        Ok(())
    }

    pub fn fail(&mut self, failure: IdentityFailure, now: OffsetDateTime) -> Result<(), IdentityError> {
        self.ready_to_confirm(now)?;
        self.state = IdentityState::Failed;
        self.failure = Some(failure);
        Ok(())
    }

    /// 「やり直す」 after ② (no matching record, e.g. a typo): back to the confirmation with
    /// everything entered kept, open for another [`VERIFICATION_TTL`]. (The attempts budget is
    /// the caller's: it is per account, not per verification.) After ① there is nothing to
    /// correct: the record belongs to another account.
    pub fn reopen(&mut self, now: OffsetDateTime) -> Result<(), IdentityError> {
        if self.state != IdentityState::Failed || self.failure != Some(IdentityFailure::NoMatch) {
            return Err(IdentityError::WrongState(self.state));
        }
        self.state = IdentityState::PersonEntered;
        self.failure = None;
        self.expires_at = now + VERIFICATION_TTL;
        self.ready_to_confirm(now)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::org::{CardPattern, OrgType};

    fn t0() -> OffsetDateTime {
        OffsetDateTime::from_unix_timestamp(1_790_000_000).expect("valid")
    }

    fn org() -> Organization {
        Organization {
            id: "o1".into(),
            insurer_number: InsurerNumber::parse("133033").expect("valid"),
            org_type: OrgType::HealthInsurance,
            name: "みらい健康保険組合".into(),
            point_name: None,
            checkup_linked: true,
            card_pattern: CardPattern::SymbolAndNumber,
        }
    }

    fn card() -> CardId {
        CardId { symbol: "12".into(), number: "345".into(), branch: None }
    }

    fn date() -> Date {
        Date::from_calendar_date(1990, time::Month::April, 1).expect("date")
    }

    #[test]
    fn walks_to_completion_and_allows_corrections() {
        let now = t0();
        let mut v = IdentityVerification::start("v".into(), "u".into(), "o1".into(), now);
        assert_eq!(v.enter_card(card(), now), Err(IdentityError::WrongState(IdentityState::Started)));
        let other = InsurerNumber::parse("06132013").expect("valid");
        assert_eq!(v.confirm_insurer(&other, &org(), now), Err(IdentityError::InsurerMismatch));
        v.confirm_insurer(&org().insurer_number, &org(), now).expect("insurer");
        v.enter_card(card(), now).expect("card");
        assert!(v.ready_to_confirm(now).is_err());
        v.enter_person("ヤマダ".into(), "ハナコ".into(), date(), now).expect("person");
        // Going back to fix the card keeps the person data and the state.
        v.enter_card(CardId { number: "346".into(), ..card() }, now).expect("card again");
        assert_eq!(v.state, IdentityState::PersonEntered);
        v.complete(now).expect("complete");
        assert_eq!(v.state, IdentityState::Completed);
        assert!(v.enter_card(card(), now).is_err(), "a finished verification is final");
    }

    #[test]
    fn failures_record_the_case_and_expiry_applies() {
        let now = t0();
        let mut v = IdentityVerification::start("v".into(), "u".into(), "o1".into(), now);
        v.confirm_insurer(&org().insurer_number, &org(), now).expect("insurer");
        v.enter_card(card(), now).expect("card");
        v.enter_person("ヤマダ".into(), "ハナコ".into(), date(), now).expect("person");
        assert_eq!(v.clone().fail(IdentityFailure::NoMatch, now + VERIFICATION_TTL), Err(IdentityError::Expired));
        v.fail(IdentityFailure::AlreadyLinked, now).expect("fail");
        assert_eq!((v.state, v.failure), (IdentityState::Failed, Some(IdentityFailure::AlreadyLinked)));
        let json = serde_json::to_string(&v).expect("serialize");
        assert_eq!(serde_json::from_str::<IdentityVerification>(&json).expect("deserialize"), v);
    }

    #[test]
    fn a_no_match_reopens_with_everything_kept_but_already_linked_does_not() {
        let now = t0();
        let mut v = IdentityVerification::start("v".into(), "u".into(), "o1".into(), now);
        v.confirm_insurer(&org().insurer_number, &org(), now).expect("insurer");
        v.enter_card(card(), now).expect("card");
        v.enter_person("ヤマダ".into(), "ハナコ".into(), date(), now).expect("person");
        assert_eq!(v.reopen(now), Err(IdentityError::WrongState(IdentityState::PersonEntered)));
        v.fail(IdentityFailure::NoMatch, now).expect("fail");
        let later = now + Duration::minutes(50);
        v.reopen(later).expect("reopen");
        assert_eq!((v.state, v.failure), (IdentityState::PersonEntered, None));
        assert_eq!(
            (v.card.clone(), v.family_name.as_deref(), v.birth_date),
            (Some(card()), Some("ヤマダ"), Some(date()))
        );
        assert_eq!(v.expires_at, later + VERIFICATION_TTL);
        v.enter_card(CardId { number: "346".into(), ..card() }, later).expect("one field corrected");
        v.fail(IdentityFailure::AlreadyLinked, later).expect("fail");
        assert_eq!(v.reopen(later), Err(IdentityError::WrongState(IdentityState::Failed)));
    }
}
