//! Service errors at the edge: the one place where a [`ServiceError`] becomes an HTTP status.
//! The API renders it as the shared JSON error body, the pages as a page or a form error.

use app::error::ServiceError;
use axum::http::StatusCode;

/// The HTTP status of a service error (API responses and error pages alike).
pub trait ErrorStatus {
    fn status(&self) -> StatusCode;
}

impl ErrorStatus for ServiceError {
    fn status(&self) -> StatusCode {
        status(self)
    }
}

fn status(e: &ServiceError) -> StatusCode {
    use ServiceError::*;
    match e {
        InsurerNumber(_)
        | Email(_)
        | Password(_)
        | ConsentsMissing(_)
        | DocumentInvalid(_)
        | CodeFormat
        | CodeWrong { .. }
        | CodeExpired
        | CodeExhausted
        | InvalidRequest(_)
        | Card(_)
        | FamilyName(_)
        | GivenName(_)
        | BirthDate => StatusCode::UNPROCESSABLE_ENTITY,
        InsurerMismatch | AlreadyVerified | IdentityAlreadyLinked => StatusCode::CONFLICT,
        IdentityNoMatch => StatusCode::UNPROCESSABLE_ENTITY,
        VerificationLocked | FaceAttemptsExhausted => StatusCode::TOO_MANY_REQUESTS,
        Image(_)
        | FaceQuality(_)
        | FaceMismatch { .. }
        | InstructionNotFollowed
        | InstructionExpired
        | SameImage
        | LivenessFailed(_)
        | SecretQuestionInvalid
        | SecretAnswerEmpty => StatusCode::UNPROCESSABLE_ENTITY,
        EkycNotAvailable | IdentityNotVerified | DocumentBackNotAllowed | CaptureTokenInvalid => StatusCode::CONFLICT,
        EkycUnavailable | Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
        UnknownOrganization | FlowNotFound => StatusCode::NOT_FOUND,
        OrgTypeMismatch | EmailTaken | WrongStep | Conflict => StatusCode::CONFLICT,
        ResendTooSoon { .. } | RateLimited { .. } | CodeBudgetSpent => StatusCode::TOO_MANY_REQUESTS,
        InvalidCredentials | Unauthorized => StatusCode::UNAUTHORIZED,
        FlowExpired => StatusCode::GONE,
        BodyTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
        TimedOut => StatusCode::REQUEST_TIMEOUT,
        ConsoleLoginFailed => StatusCode::UNAUTHORIZED,
        Forbidden => StatusCode::FORBIDDEN,
        AlreadyDecided | OperatorEmailTaken | OperatorSelfChange | NothingToWithdraw => StatusCode::CONFLICT,
        ReviewReasonInvalid
        | ReviewChecklistIncomplete
        | ReviewNoteTooLong
        | OperatorPassword { .. }
        | OperatorName => StatusCode::UNPROCESSABLE_ENTITY,
        InquiryCategory | InquiryMessageEmpty | InquiryMessageTooLong | InquiryReplyEmpty | InquiryReplyTooLong => {
            StatusCode::UNPROCESSABLE_ENTITY
        }
        InquiryNotFound => StatusCode::NOT_FOUND,
        InquiryClosed => StatusCode::CONFLICT,
        CheckupArchive(_) | CheckupEntries(_) | HealthCsv(_) | HealthEntries(_) => StatusCode::UNPROCESSABLE_ENTITY,
        HealthNotUnlocked | StepUpRequired | ConsentRequired(_) => StatusCode::FORBIDDEN,
        ConsentNotWithdrawable => StatusCode::CONFLICT,
        DocumentNotFound => StatusCode::NOT_FOUND,
        PasskeysUnavailable => StatusCode::NOT_FOUND,
        PasskeyFailed => StatusCode::UNPROCESSABLE_ENTITY,
        PasskeyLimit { .. } | NoPasskeys => StatusCode::CONFLICT,
        StepUpAnswerEmpty | StepUpWrong { .. } | CurrentPasswordWrong => StatusCode::UNPROCESSABLE_ENTITY,
        StepUpLocked { .. } => StatusCode::TOO_MANY_REQUESTS,
        Store(_) | Crypto(_) | Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
    }
}
