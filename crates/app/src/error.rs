//! The application layer's error. Every flow returns it; the HTTP edge (`web::error`) maps it
//! once to a status code, and renders it as JSON for the API and as a page for the browser.

use domain::card::CardError;
use domain::consent::ConsentDoc;
use domain::email::EmailError;
use domain::insurer::InsurerNumberError;
use domain::kana::KanaError;
use domain::password::PasswordError;
use store::StoreError;

use crate::crypto::CryptoError;
use crate::i18n::{t, Locale};

#[derive(Debug, thiserror::Error)]
pub enum ServiceError {
    #[error("insurer number: {0:?}")]
    InsurerNumber(InsurerNumberError),
    #[error("unknown organization")]
    UnknownOrganization,
    #[error("organization type mismatch")]
    OrgTypeMismatch,
    #[error("email: {0:?}")]
    Email(EmailError),
    #[error("password: {0:?}")]
    Password(PasswordError),
    #[error("email already registered")]
    EmailTaken,
    #[error("consents missing: {0:?}")]
    ConsentsMissing(Vec<ConsentDoc>),
    /// A document's new version (or a purpose consent: F4 face images, F5 health data) must be
    /// accepted before going on.
    #[error("consent required: {0:?}")]
    ConsentRequired(Vec<ConsentDoc>),
    /// The platform terms and the privacy policy are left only by leaving the service.
    #[error("this consent cannot be withdrawn")]
    ConsentNotWithdrawable,
    #[error("document not found")]
    DocumentNotFound,
    /// A new document version's title or body is empty or too long.
    #[error("document {0} invalid")]
    DocumentInvalid(&'static str),
    #[error("code format")]
    CodeFormat,
    #[error("wrong code")]
    CodeWrong { remaining: Option<i32> },
    #[error("code expired")]
    CodeExpired,
    #[error("code attempts exhausted")]
    CodeExhausted,
    /// The daily budget of one-time code attempts of the flow (across resends) or of the
    /// account (across flows) is spent (`domain::otp::CODE_ATTEMPTS_PER_FLOW`, `…_PER_ACCOUNT`):
    /// nothing is checked before the next day; the customer center can help.
    #[error("one-time code budget spent")]
    CodeBudgetSpent,
    #[error("resend too soon")]
    ResendTooSoon { wait_secs: i64 },
    #[error("invalid credentials")]
    InvalidCredentials,
    /// Account settings: the current password typed to confirm a change is wrong.
    #[error("current password wrong")]
    CurrentPasswordWrong,
    #[error("rate limited")]
    RateLimited { retry_after: i64 },
    #[error("flow not found")]
    FlowNotFound,
    #[error("flow expired")]
    FlowExpired,
    #[error("wrong step")]
    WrongStep,
    #[error("concurrent update")]
    Conflict,
    #[error("unauthorized")]
    Unauthorized,
    #[error("invalid request: {0}")]
    InvalidRequest(String),
    /// The request body is over the route's size limit.
    #[error("request body too large")]
    BodyTooLarge,
    /// The request was not answered within the server's time limit.
    #[error("request timed out")]
    TimedOut,
    #[error("insurer number of another organization")]
    InsurerMismatch,
    #[error("card: {0:?}")]
    Card(CardError),
    #[error("family name: {0:?}")]
    FamilyName(KanaError),
    #[error("given name: {0:?}")]
    GivenName(KanaError),
    #[error("birth date")]
    BirthDate,
    #[error("identity already verified")]
    AlreadyVerified,
    /// F3 error ①: the roster record belongs to another account.
    #[error("roster record linked to another account")]
    IdentityAlreadyLinked,
    /// F3 error ②: no eligible roster record matches.
    #[error("no eligible roster record matches")]
    IdentityNoMatch,
    #[error("too many identity verification attempts")]
    VerificationLocked,
    /// F4 is only for organizations with checkup results linked.
    #[error("health and medical access authentication is not offered by this organization")]
    EkycNotAvailable,
    /// F4 needs F3 first.
    #[error("identity verification (F3) first")]
    IdentityNotVerified,
    /// The face engine is not loaded (models missing or altered).
    #[error("eKYC is temporarily unavailable")]
    EkycUnavailable,
    #[error("the capture token is unknown, used or expired")]
    CaptureTokenInvalid,
    #[error("image: {0}")]
    Image(face::decode::DecodeError),
    #[error("face quality: {0:?}")]
    FaceQuality(face::quality::Issue),
    /// 「顔写真が一致しません」
    #[error("the face does not match the document")]
    FaceMismatch { remaining: u32 },
    #[error("too many face photos did not match")]
    FaceAttemptsExhausted,
    #[error("the photo does not follow the instruction")]
    InstructionNotFollowed,
    /// The angled selfie came later than `services::ekyc::ANGLED_WINDOW` after its
    /// instruction: a new instruction is drawn.
    #[error("the angled photo came too late")]
    InstructionExpired,
    #[error("the same photo was sent twice")]
    SameImage,
    /// The angled burst does not show a live member turning (see `domain::liveness`).
    #[error("liveness: {0}")]
    LivenessFailed(domain::liveness::LivenessFailure),
    #[error("the back of this document is never accepted")]
    DocumentBackNotAllowed,
    #[error("secret question")]
    SecretQuestionInvalid,
    #[error("secret answer")]
    SecretAnswerEmpty,
    /// Operator console login: email, password or authenticator code wrong (never which).
    #[error("operator login failed")]
    ConsoleLoginFailed,
    /// An operator tried a page of another role.
    #[error("forbidden for this operator role")]
    Forbidden,
    /// Another reviewer decided the eKYC case first.
    #[error("the case was decided already")]
    AlreadyDecided,
    #[error("rejection reason not in the list")]
    ReviewReasonInvalid,
    /// Approval needs every item of the reviewer checklist ticked (name, birth date, face).
    #[error("review checklist incomplete")]
    ReviewChecklistIncomplete,
    /// The member has nothing an operator could withdraw (no roster link, no authentication).
    #[error("nothing to withdraw")]
    NothingToWithdraw,
    #[error("review note too long")]
    ReviewNoteTooLong,
    #[error("operator password must be {min} to {max} characters")]
    OperatorPassword { min: usize, max: usize },
    #[error("operator name must be 1 to 100 characters on one line")]
    OperatorName,
    #[error("an operator with this email exists")]
    OperatorEmailTaken,
    /// An admin tried to disable, demote, limit or reset themselves.
    #[error("an administrator cannot change this about themselves")]
    OperatorSelfChange,
    /// F6: the inquiry's category is not in the form's list.
    #[error("inquiry category not in the list")]
    InquiryCategory,
    #[error("inquiry message empty")]
    InquiryMessageEmpty,
    #[error("inquiry message too long")]
    InquiryMessageTooLong,
    #[error("inquiry reply empty")]
    InquiryReplyEmpty,
    #[error("inquiry reply too long")]
    InquiryReplyTooLong,
    #[error("inquiry not found")]
    InquiryNotFound,
    #[error("inquiry closed")]
    InquiryClosed,
    /// F5: a 特定健診 archive refused as a whole (not a ZIP, too large, zip bomb, no documents…).
    #[error("checkup archive refused: {0}")]
    CheckupArchive(String),
    /// F5: entries of a 特定健診 archive that failed to parse or to match the roster; nothing
    /// was imported. Entry names and reasons only, never personal data.
    #[error("{} problem(s) in the checkup archive; nothing was imported", .0.len())]
    CheckupEntries(Vec<crate::services::checkups::EntryError>),
    /// F5: an お薬履歴 or 医療費通知 CSV file refused as a whole (encoding, size, no rows…).
    #[error("health record file refused: {0}")]
    HealthCsv(String),
    /// F5: lines of an お薬履歴 or 医療費通知 CSV file that failed to parse or to match the
    /// roster (the header's problems are on line 1); nothing was imported. Line numbers and
    /// reasons only, never personal data.
    #[error("{} problem(s) in the health record file; nothing was imported", .0.len())]
    HealthEntries(Vec<records::health_csv::LineError>),
    /// F5: health data needs 健診・医療アクセス認証 (F4) approved first.
    #[error("health data needs F4 first")]
    HealthNotUnlocked,
    /// F5: this session has not answered the secret question (or the answer has expired).
    #[error("secret question required")]
    StepUpRequired,
    /// Passkeys need a public URL with a domain name (browsers refuse WebAuthn on an IP).
    #[error("passkeys are not available on this deployment")]
    PasskeysUnavailable,
    /// The passkey ceremony failed: expired, already used, another session's, or the
    /// authenticator's answer did not verify.
    #[error("passkey ceremony failed")]
    PasskeyFailed,
    #[error("at most {max} passkeys")]
    PasskeyLimit { max: usize },
    /// A passkey step-up was asked for, but the member has no passkey registered.
    #[error("no passkey registered")]
    NoPasskeys,
    #[error("secret answer empty")]
    StepUpAnswerEmpty,
    /// F5: wrong answer to the secret question; `remaining` answers before the lock.
    #[error("wrong secret answer")]
    StepUpWrong { remaining: i32 },
    /// F5: too many wrong answers; nothing is checked before `until` (Unix seconds).
    #[error("secret question locked")]
    StepUpLocked { until: i64 },
    /// The database is out of reach for now: 503 with Retry-After ([`RETRY_UNAVAILABLE_SECS`]).
    #[error("service unavailable: {0}")]
    Unavailable(StoreError),
    #[error("store: {0}")]
    Store(StoreError),
    #[error("crypto: {0}")]
    Crypto(#[from] CryptoError),
    #[error("internal: {0}")]
    Internal(String),
}

/// What a 503 for an unreachable database tells clients to wait (`Retry-After`), in seconds.
pub const RETRY_UNAVAILABLE_SECS: u64 = 5;

impl From<StoreError> for ServiceError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::Conflict => ServiceError::Conflict,
            e @ StoreError::Unavailable(_) => ServiceError::Unavailable(e),
            other => ServiceError::Store(other),
        }
    }
}

impl From<InsurerNumberError> for ServiceError {
    fn from(e: InsurerNumberError) -> Self {
        ServiceError::InsurerNumber(e)
    }
}

impl From<EmailError> for ServiceError {
    fn from(e: EmailError) -> Self {
        ServiceError::Email(e)
    }
}

impl From<PasswordError> for ServiceError {
    fn from(e: PasswordError) -> Self {
        ServiceError::Password(e)
    }
}

impl ServiceError {
    /// Stable machine-readable code (API `error.code`, message key `error.<code>`).
    pub fn code(&self) -> &'static str {
        use ServiceError::*;
        match self {
            InsurerNumber(InsurerNumberError::Empty) => "insurer_number_empty",
            InsurerNumber(InsurerNumberError::NotDigits) => "insurer_number_not_digits",
            InsurerNumber(InsurerNumberError::Length) => "insurer_number_length",
            InsurerNumber(InsurerNumberError::CheckDigit) => "insurer_number_check_digit",
            UnknownOrganization => "unknown_organization",
            OrgTypeMismatch => "org_type_mismatch",
            Email(EmailError::Empty) => "email_empty",
            Email(EmailError::TooLong) => "email_too_long",
            Email(EmailError::Invalid) => "email_invalid",
            Email(EmailError::NotAscii) => "email_not_ascii",
            Password(PasswordError::TooShort) => "password_too_short",
            Password(PasswordError::TooLong) => "password_too_long",
            Password(PasswordError::Weak) => "password_weak",
            EmailTaken => "email_taken",
            ConsentsMissing(_) => "consents_missing",
            ConsentRequired(_) => "consent_required",
            ConsentNotWithdrawable => "consent_not_withdrawable",
            DocumentNotFound => "document_not_found",
            DocumentInvalid(_) => "document_invalid",
            CodeFormat => "code_format",
            CodeWrong { .. } => "code_wrong",
            CodeExpired => "code_expired",
            CodeExhausted => "code_exhausted",
            CodeBudgetSpent => "code_budget_spent",
            ResendTooSoon { .. } => "resend_too_soon",
            InvalidCredentials => "invalid_credentials",
            CurrentPasswordWrong => "current_password_wrong",
            RateLimited { .. } => "rate_limited",
            FlowNotFound => "flow_not_found",
            FlowExpired => "flow_expired",
            WrongStep => "wrong_step",
            Conflict => "conflict",
            Unauthorized => "unauthorized",
            InvalidRequest(_) => "invalid_request",
            BodyTooLarge => "body_too_large",
            TimedOut => "timed_out",
            InsurerMismatch => "insurer_mismatch",
            Card(CardError::SymbolRequired) => "card_symbol_required",
            Card(CardError::SymbolInvalid) => "card_symbol_invalid",
            Card(CardError::SymbolTooLong) => "card_symbol_too_long",
            Card(CardError::SymbolNotExpected) => "card_symbol_not_expected",
            Card(CardError::NumberRequired) => "card_number_required",
            Card(CardError::NumberInvalid) => "card_number_invalid",
            Card(CardError::NumberTooLong) => "card_number_too_long",
            Card(CardError::BranchInvalid) => "card_branch_invalid",
            FamilyName(k) | GivenName(k) => match k {
                KanaError::Empty => "name_empty",
                KanaError::TooLong => "name_too_long",
                KanaError::Latin => "name_latin",
                KanaError::Digit => "name_digit",
                KanaError::Kanji => "name_kanji",
                KanaError::Other => "name_other",
            },
            BirthDate => "birth_date_invalid",
            AlreadyVerified => "already_verified",
            IdentityAlreadyLinked => "identity_already_linked",
            IdentityNoMatch => "identity_no_match",
            VerificationLocked => "verification_locked",
            EkycNotAvailable => "ekyc_not_available",
            IdentityNotVerified => "identity_not_verified",
            EkycUnavailable => "ekyc_unavailable",
            CaptureTokenInvalid => "capture_token_invalid",
            Image(d) => d.code(),
            FaceQuality(issue) => match issue {
                face::quality::Issue::NoFace => "face_no_face",
                face::quality::Issue::MultipleFaces => "face_multiple_faces",
                face::quality::Issue::FaceTooSmall => "face_too_small",
                face::quality::Issue::TooDark => "face_too_dark",
                face::quality::Issue::TooBright => "face_too_bright",
                face::quality::Issue::Blurry => "face_blurry",
            },
            FaceMismatch { .. } => "face_mismatch",
            FaceAttemptsExhausted => "face_attempts_exhausted",
            InstructionNotFollowed => "instruction_not_followed",
            InstructionExpired => "instruction_expired",
            SameImage => "same_image",
            LivenessFailed(f) => f.reason(),
            DocumentBackNotAllowed => "document_back_not_allowed",
            SecretQuestionInvalid => "secret_question_invalid",
            SecretAnswerEmpty => "secret_answer_empty",
            ConsoleLoginFailed => "console_login_failed",
            Forbidden => "forbidden",
            AlreadyDecided => "already_decided",
            ReviewReasonInvalid => "review_reason_invalid",
            ReviewChecklistIncomplete => "review_checklist_incomplete",
            NothingToWithdraw => "nothing_to_withdraw",
            ReviewNoteTooLong => "review_note_too_long",
            OperatorPassword { .. } => "operator_password",
            OperatorName => "operator_name",
            OperatorEmailTaken => "operator_email_taken",
            OperatorSelfChange => "operator_self_change",
            InquiryCategory => "inquiry_category",
            InquiryMessageEmpty => "inquiry_message_empty",
            InquiryMessageTooLong => "inquiry_message_too_long",
            InquiryReplyEmpty => "inquiry_reply_empty",
            InquiryReplyTooLong => "inquiry_reply_too_long",
            InquiryNotFound => "inquiry_not_found",
            InquiryClosed => "inquiry_closed",
            CheckupArchive(_) => "checkup_archive_invalid",
            CheckupEntries(_) => "checkup_entries_invalid",
            HealthCsv(_) => "health_csv_invalid",
            HealthEntries(_) => "health_entries_invalid",
            HealthNotUnlocked => "health_not_unlocked",
            StepUpRequired => "step_up_required",
            PasskeysUnavailable => "passkeys_unavailable",
            PasskeyFailed => "passkey_failed",
            PasskeyLimit { .. } => "passkey_limit",
            NoPasskeys => "no_passkeys",
            StepUpAnswerEmpty => "step_up_answer_empty",
            StepUpWrong { .. } => "step_up_wrong",
            StepUpLocked { .. } => "step_up_locked",
            Unavailable(_) => "unavailable",
            Store(_) | Crypto(_) | Internal(_) => "internal",
        }
    }

    /// The form field the error is about, if any.
    pub fn field(&self) -> Option<&'static str> {
        use ServiceError::*;
        match self {
            InsurerNumber(_) | UnknownOrganization | OrgTypeMismatch | InsurerMismatch => Some("insurer_number"),
            Card(
                CardError::SymbolRequired
                | CardError::SymbolInvalid
                | CardError::SymbolTooLong
                | CardError::SymbolNotExpected,
            ) => Some("symbol"),
            Card(CardError::BranchInvalid) => Some("branch"),
            Card(_) => Some("number"),
            FamilyName(_) => Some("family_name"),
            GivenName(_) => Some("given_name"),
            BirthDate => Some("birth_date"),
            Email(_) | EmailTaken => Some("email"),
            Password(_) => Some("password"),
            CurrentPasswordWrong => Some("current_password"),
            ConsentsMissing(_) => Some("consents"),
            DocumentInvalid(f) => Some(f),
            CodeFormat | CodeWrong { .. } | CodeExpired | CodeExhausted | CodeBudgetSpent => Some("code"),
            Image(_)
            | FaceQuality(_)
            | FaceMismatch { .. }
            | InstructionNotFollowed
            | InstructionExpired
            | SameImage
            | LivenessFailed(_) => Some("image"),
            SecretQuestionInvalid => Some("question"),
            SecretAnswerEmpty => Some("answer"),
            ReviewReasonInvalid => Some("reason"),
            ReviewChecklistIncomplete => Some("checklist"),
            ReviewNoteTooLong => Some("note"),
            InquiryCategory => Some("category"),
            InquiryMessageEmpty | InquiryMessageTooLong => Some("message"),
            InquiryReplyEmpty | InquiryReplyTooLong => Some("reply"),
            StepUpAnswerEmpty | StepUpWrong { .. } => Some("answer"),
            _ => None,
        }
    }

    /// The message for the member, in their language, with the tries left when the error
    /// counts them.
    pub fn message(&self, locale: Locale) -> String {
        // How long to wait, said plainly (#16): "about 15 minutes", not "a while".
        if let ServiceError::RateLimited { retry_after } = self {
            let (n, unit) = if *retry_after < 60 {
                ((*retry_after).max(1), "seconds")
            } else {
                ((retry_after + 59) / 60, "minutes")
            };
            let wait = crate::i18n::tf(locale, &format!("error.wait_{unit}"), &[("n", &n.to_string())]);
            return crate::i18n::tf(locale, "error.rate_limited_wait", &[("wait", &wait)]);
        }
        let base = t(locale, &format!("error.{}", self.code())).to_string();
        let again = match self {
            ServiceError::FaceMismatch { .. } => "撮影",
            _ => "入力",
        };
        match (self.remaining_attempts(), locale) {
            (Some(n), Locale::Ja) if n > 0 => format!("{base}あと{n}回{again}できます。"),
            (Some(n), Locale::En) if n > 0 => format!("{base} {n} tries left."),
            _ => base,
        }
    }

    /// Whether the guide sends the member to the customer center (お問い合わせ) for this
    /// error: nothing the member can retry on the same screen will help. Pages show the
    /// link, the API gives `inquiry_url`.
    pub fn suggests_customer_center(&self) -> bool {
        matches!(
            self,
            ServiceError::EmailTaken
                | ServiceError::IdentityNoMatch
                | ServiceError::VerificationLocked
                | ServiceError::FaceAttemptsExhausted
                | ServiceError::StepUpLocked { .. }
                | ServiceError::CodeBudgetSpent
        )
    }

    /// How many more tries the member has (one-time password, face photo, secret question),
    /// when the error counts them.
    pub fn remaining_attempts(&self) -> Option<i32> {
        match self {
            ServiceError::CodeWrong { remaining } => *remaining,
            ServiceError::StepUpWrong { remaining } => Some(*remaining),
            ServiceError::FaceMismatch { remaining } => i32::try_from(*remaining).ok(),
            _ => None,
        }
    }

    /// Whether the member must start the flow again (it is gone, expired or elsewhere).
    pub fn restarts_flow(&self) -> bool {
        matches!(self, ServiceError::FlowNotFound | ServiceError::FlowExpired | ServiceError::WrongStep)
    }

    /// Failures of the system (the store, keys, the face engine, a bug), as opposed to a
    /// member's mistake: they are logged, and the member is told to try again later.
    pub fn is_internal(&self) -> bool {
        matches!(
            self,
            ServiceError::Store(_)
                | ServiceError::Crypto(_)
                | ServiceError::Internal(_)
                | ServiceError::EkycUnavailable
        )
    }
}

pub type ServiceResult<T> = Result<T, ServiceError>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tries_left_are_in_the_message_and_the_count() {
        let e = ServiceError::FaceMismatch { remaining: 3 };
        assert_eq!(e.remaining_attempts(), Some(3));
        assert!(e.message(Locale::Ja).ends_with("あと3回撮影できます。"), "{}", e.message(Locale::Ja));
        let e = ServiceError::CodeWrong { remaining: Some(2) };
        assert!(e.message(Locale::Ja).ends_with("あと2回入力できます。"));
        assert!(e.message(Locale::En).ends_with(" 2 tries left."));
        assert_eq!(ServiceError::CodeWrong { remaining: None }.remaining_attempts(), None);
        assert_eq!(
            ServiceError::StepUpWrong { remaining: 0 }.message(Locale::Ja),
            t(Locale::Ja, "error.step_up_wrong")
        );
        assert_eq!(ServiceError::EmailTaken.remaining_attempts(), None);
    }

    #[test]
    fn locks_and_dead_ends_point_to_the_customer_center() {
        for e in [
            ServiceError::EmailTaken,
            ServiceError::IdentityNoMatch,
            ServiceError::VerificationLocked,
            ServiceError::FaceAttemptsExhausted,
            ServiceError::StepUpLocked { until: 0 },
            ServiceError::CodeBudgetSpent,
        ] {
            assert!(e.suggests_customer_center(), "{e:?}");
        }
        for e in
            [ServiceError::CodeExpired, ServiceError::FaceMismatch { remaining: 1 }, ServiceError::InvalidCredentials]
        {
            assert!(!e.suggests_customer_center(), "{e:?}");
        }
    }
}

#[cfg(test)]
mod wait_tests {
    use super::ServiceError;
    use crate::i18n::Locale;

    /// A rate limit says how long to wait, rounded up to whole minutes (seconds under a minute).
    #[test]
    fn a_rate_limit_says_how_long_to_wait() {
        let limited = |s| ServiceError::RateLimited { retry_after: s };
        assert_eq!(limited(900).message(Locale::Ja), "試行回数が多すぎます。15分ほど時間をおいてからお試しください。");
        assert_eq!(limited(61).message(Locale::Ja), "試行回数が多すぎます。2分ほど時間をおいてからお試しください。");
        assert_eq!(limited(8).message(Locale::Ja), "試行回数が多すぎます。8秒ほど時間をおいてからお試しください。");
        assert_eq!(limited(3600).message(Locale::En), "Too many attempts. Please wait about 60 min and try again.");
    }
}
