//! F1 新規会員登録 as an explicit state machine. The flow is persisted by id after every step,
//! so a member can close the app and resume, and a crash loses nothing.
//!
//! ```text
//! Started ─org type─▶ OrgTypeChosen ─insurer number─▶ OrgVerified ─email+password─▶ AccountEntered
//!   ─consents─▶ CodeSent (仮登録) ─one-time password─▶ Completed
//! ```
//! A member may go back and change an earlier answer until the code is sent; a provisional
//! registration expires [`PROVISIONAL_TTL`] after it started.

use serde::{Deserialize, Serialize};
use time::{Duration, OffsetDateTime};

use crate::consent::AcceptedConsent;
use crate::email::Email;
use crate::locale::Locale;
use crate::org::{OrgType, Organization};

/// How long a registration may stay unfinished (仮登録) before it expires.
pub const PROVISIONAL_TTL: Duration = Duration::hours(24);

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RegistrationState {
    Started,
    OrgTypeChosen,
    OrgVerified,
    AccountEntered,
    CodeSent,
    Completed,
}

impl RegistrationState {
    pub fn as_str(&self) -> &'static str {
        match self {
            RegistrationState::Started => "started",
            RegistrationState::OrgTypeChosen => "org_type_chosen",
            RegistrationState::OrgVerified => "org_verified",
            RegistrationState::AccountEntered => "account_entered",
            RegistrationState::CodeSent => "code_sent",
            RegistrationState::Completed => "completed",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FlowError {
    #[error("this step is not possible in state {0:?}")]
    WrongState(RegistrationState),
    #[error("the flow has expired")]
    Expired,
    #[error("the organization is not of the chosen type")]
    OrgTypeMismatch,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Registration {
    pub id: String,
    pub state: RegistrationState,
    pub locale: Locale,
    pub org_type: Option<OrgType>,
    pub org_id: Option<String>,
    pub email: Option<Email>,
    /// argon2id PHC string; never the password itself.
    pub password_hash: Option<String>,
    pub consents: Vec<AcceptedConsent>,
    #[serde(with = "time::serde::rfc3339::option")]
    pub code_sent_at: Option<OffsetDateTime>,
    pub user_id: Option<String>,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    pub expires_at: OffsetDateTime,
}

impl Registration {
    pub fn start(id: String, locale: Locale, now: OffsetDateTime) -> Self {
        Registration {
            id,
            state: RegistrationState::Started,
            locale,
            org_type: None,
            org_id: None,
            email: None,
            password_hash: None,
            consents: Vec::new(),
            code_sent_at: None,
            user_id: None,
            created_at: now,
            expires_at: now + PROVISIONAL_TTL,
        }
    }

    pub fn is_expired(&self, now: OffsetDateTime) -> bool {
        now >= self.expires_at
    }

    fn require(&self, now: OffsetDateTime, allowed: &[RegistrationState]) -> Result<(), FlowError> {
        if self.is_expired(now) {
            return Err(FlowError::Expired);
        }
        if allowed.contains(&self.state) {
            Ok(())
        } else {
            Err(FlowError::WrongState(self.state))
        }
    }

    /// 団体選択. Choosing again (going back) forgets the organization chosen before.
    pub fn choose_org_type(&mut self, org_type: OrgType, now: OffsetDateTime) -> Result<(), FlowError> {
        use RegistrationState::*;
        self.require(now, &[Started, OrgTypeChosen, OrgVerified, AccountEntered])?;
        self.org_type = Some(org_type);
        self.org_id = None;
        self.state = OrgTypeChosen;
        Ok(())
    }

    /// 団体ID認証 succeeded for `org`.
    pub fn verify_org(&mut self, org: &Organization, now: OffsetDateTime) -> Result<(), FlowError> {
        use RegistrationState::*;
        self.require(now, &[OrgTypeChosen, OrgVerified])?;
        if self.org_type != Some(org.org_type) {
            return Err(FlowError::OrgTypeMismatch);
        }
        self.org_id = Some(org.id.clone());
        self.state = OrgVerified;
        Ok(())
    }

    /// アカウント作成: email and the (already hashed) password. May be redone to correct them,
    /// also after the code was sent (a mistyped address, or one whose mail server refused the
    /// mail): the flow goes back to the consents, and the next code goes to the new address.
    pub fn enter_account(&mut self, email: Email, password_hash: String, now: OffsetDateTime) -> Result<(), FlowError> {
        use RegistrationState::*;
        self.require(now, &[OrgVerified, AccountEntered, CodeSent])?;
        self.email = Some(email);
        self.password_hash = Some(password_hash);
        self.state = AccountEntered;
        Ok(())
    }

    /// The consents were accepted and the first code is being sent: 仮登録.
    pub fn send_code(&mut self, consents: Vec<AcceptedConsent>, now: OffsetDateTime) -> Result<(), FlowError> {
        self.require(now, &[RegistrationState::AccountEntered])?;
        self.consents = consents;
        self.code_sent_at = Some(now);
        self.state = RegistrationState::CodeSent;
        Ok(())
    }

    /// A new code replaces the previous one.
    pub fn resend_code(&mut self, now: OffsetDateTime) -> Result<(), FlowError> {
        self.require(now, &[RegistrationState::CodeSent])?;
        self.code_sent_at = Some(now);
        Ok(())
    }

    /// The code was right and the account exists.
    pub fn complete(&mut self, user_id: String, now: OffsetDateTime) -> Result<(), FlowError> {
        self.require(now, &[RegistrationState::CodeSent])?;
        self.user_id = Some(user_id);
        self.state = RegistrationState::Completed;
        // Keep the completion screen reachable for a while, then let retention remove it.
        self.expires_at = now + Duration::hours(1);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::consent::{accept_consents, ConsentDoc};
    use crate::insurer::InsurerNumber;
    use crate::org::CardPattern;

    fn t0() -> OffsetDateTime {
        OffsetDateTime::from_unix_timestamp(1_790_000_000).expect("valid")
    }

    fn org(org_type: OrgType) -> Organization {
        Organization {
            id: "o1".into(),
            insurer_number: InsurerNumber::parse("133033").expect("valid"),
            org_type,
            name: "みらい健康保険組合".into(),
            point_name: Some("みらいポイント".into()),
            checkup_linked: true,
            card_pattern: CardPattern::SymbolAndNumber,
        }
    }

    #[test]
    fn walks_all_steps_in_order() {
        let now = t0();
        let o = org(OrgType::HealthInsurance);
        let mut r = Registration::start("f".into(), Locale::Ja, now);
        assert_eq!(r.verify_org(&o, now), Err(FlowError::WrongState(RegistrationState::Started)));
        r.choose_org_type(OrgType::HealthInsurance, now).expect("type");
        r.verify_org(&o, now).expect("org");
        assert_eq!(r.state, RegistrationState::OrgVerified);
        let email = Email::parse("a@example.com").expect("email");
        r.enter_account(email.clone(), "$argon2id$h".into(), now).expect("account");
        // Going back to correct the email is allowed before the code is sent.
        r.enter_account(email, "$argon2id$h2".into(), now).expect("account again");
        let consents = accept_consents(
            &o,
            &[ConsentDoc::PlatformTerms, ConsentDoc::OrgPrivacy, ConsentDoc::PointTerms],
            |_| "2026-04-01".into(),
            now,
        )
        .expect("consents");
        r.send_code(consents.clone(), now).expect("send");
        assert_eq!(r.state, RegistrationState::CodeSent);
        r.resend_code(now + Duration::seconds(60)).expect("resend");
        // Also after the code was sent (a mistyped or refused address): back to the consents,
        // and no code can complete the registration until a new one is sent.
        r.enter_account(Email::parse("b@example.com").expect("email"), "x".into(), now).expect("corrected");
        assert_eq!(r.state, RegistrationState::AccountEntered);
        assert_eq!(r.complete("u0".into(), now), Err(FlowError::WrongState(RegistrationState::AccountEntered)));
        assert!(r.resend_code(now).is_err(), "no resend to the old address");
        r.send_code(consents, now).expect("send to the corrected address");
        r.complete("u1".into(), now + Duration::minutes(2)).expect("complete");
        assert_eq!(r.state, RegistrationState::Completed);
        assert_eq!(r.complete("u2".into(), now), Err(FlowError::WrongState(RegistrationState::Completed)));
    }

    #[test]
    fn organization_type_must_match() {
        let now = t0();
        let mut r = Registration::start("f".into(), Locale::Ja, now);
        r.choose_org_type(OrgType::Municipality, now).expect("type");
        assert_eq!(r.verify_org(&org(OrgType::HealthInsurance), now), Err(FlowError::OrgTypeMismatch));
        assert_eq!(r.state, RegistrationState::OrgTypeChosen);
    }

    #[test]
    fn provisional_registration_expires() {
        let now = t0();
        let mut r = Registration::start("f".into(), Locale::Ja, now);
        r.choose_org_type(OrgType::HealthInsurance, now + PROVISIONAL_TTL - Duration::seconds(1)).expect("in time");
        assert_eq!(r.verify_org(&org(OrgType::HealthInsurance), now + PROVISIONAL_TTL), Err(FlowError::Expired));
    }

    #[test]
    fn survives_serialization() {
        let now = t0();
        let mut r = Registration::start("f".into(), Locale::En, now);
        r.choose_org_type(OrgType::HealthInsurance, now).expect("type");
        let json = serde_json::to_string(&r).expect("serialize");
        let back: Registration = serde_json::from_str(&json).expect("deserialize");
        assert_eq!(back, r);
    }
}
