//! Storage for Mimoto.
//!
//! [`Store`] is everything the application needs from a database. There is one
//! implementation per backend — [`sqlite::SqliteStore`] (the embedded default) and
//! [`postgres::PgStore`] (production) — sharing the same SQL text (see `sql.rs`), each with
//! its own migrations. `tests/conformance.rs` holds the stories that every backend must pass.
//!
//! The helpers that make fresh test stores are in `testing` (`src/testing.rs`), behind the
//! cargo feature `testing` (off by default): other crates enable it in their
//! dev-dependencies. The conformance suite compiles the same file itself (`#[path]` module),
//! so `cargo test -p mimoto-store` runs it without the feature; `testing.rs` therefore names
//! this crate only as `store::…`, which works inside the library too (`extern crate self as
//! store`).
//!
//! Personal data never reaches this crate in clear: the application seals it
//! (AES-256-GCM) and hands over opaque bytes plus keyed blind indexes for look-ups.

extern crate self as store;

#[cfg(feature = "testing")]
pub mod testing;
pub mod postgres;
mod sql;
pub mod sqlite;

use std::sync::Arc;

use async_trait::async_trait;
use domain::org::Organization;
use time::OffsetDateTime;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// A unique constraint refused the write (e.g. an email that already has an account).
    #[error("duplicate")]
    Duplicate,
    /// An optimistic-concurrency check failed: somebody else changed the row first.
    #[error("conflict: the record changed concurrently")]
    Conflict,
    #[error("not found")]
    NotFound,
    #[error("stored data is invalid: {0}")]
    Corrupt(String),
    #[error("unsupported database url (expected sqlite:… or postgres://…)")]
    UnsupportedUrl,
    #[error("database: {0}")]
    Database(#[source] sqlx::Error),
    #[error("migration: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
}

impl From<sqlx::Error> for StoreError {
    fn from(e: sqlx::Error) -> Self {
        match &e {
            sqlx::Error::Database(db) if db.is_unique_violation() => StoreError::Duplicate,
            sqlx::Error::RowNotFound => StoreError::NotFound,
            _ => StoreError::Database(e),
        }
    }
}

pub type Result<T, E = StoreError> = std::result::Result<T, E>;

/// A persisted multi-step flow (registration, password reset, …). The application owns the
/// state machine and seals its data; the store keeps it by id with a version for
/// optimistic concurrency.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FlowRecord {
    pub id: String,
    pub kind: String,
    pub state: String,
    pub data: Vec<u8>,
    pub version: i64,
    pub created_at: OffsetDateTime,
    pub updated_at: OffsetDateTime,
    pub expires_at: OffsetDateTime,
}

/// Write `record` only if the stored version is still `record.version`; the stored version
/// becomes `record.version + 1`.
#[derive(Debug, Clone)]
pub struct FlowUpdate<'a> {
    pub record: &'a FlowRecord,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewCode {
    pub id: String,
    pub purpose: String,
    pub subject: String,
    pub code_mac: Vec<u8>,
    pub created_at: OffsetDateTime,
    pub expires_at: OffsetDateTime,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CodeRecord {
    pub id: String,
    pub code_mac: Vec<u8>,
    pub attempts: i32,
    pub created_at: OffsetDateTime,
    pub expires_at: OffsetDateTime,
}

/// The result of counting one attempt against the current code of a subject.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CodeAttempt {
    /// The attempt was counted (`attempts` includes it); compare `code_mac` now.
    Counted(CodeRecord),
    /// There is no live code (none issued, already used, or voided by a resend).
    Missing,
    Expired,
    /// The maximum number of attempts has been used up.
    Exhausted,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewMail {
    pub id: String,
    /// Sealed, serialized message.
    pub payload: Vec<u8>,
    pub created_at: OffsetDateTime,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutboxRecord {
    pub id: String,
    pub payload: Vec<u8>,
    /// Delivery attempts including the current claim.
    pub attempts: i32,
    pub created_at: OffsetDateTime,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewUser {
    pub id: String,
    pub org_id: String,
    pub email_index: Vec<u8>,
    pub email_enc: Vec<u8>,
    pub password_hash: String,
    pub locale: String,
    pub created_at: OffsetDateTime,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserRecord {
    pub id: String,
    pub org_id: String,
    pub email_enc: Vec<u8>,
    pub password_hash: String,
    pub locale: String,
    pub created_at: OffsetDateTime,
    pub password_changed_at: OffsetDateTime,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConsentRecord {
    pub doc: String,
    pub version: String,
    pub accepted_at: OffsetDateTime,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionRecord {
    pub id_hash: Vec<u8>,
    pub user_id: String,
    pub kind: String,
    pub created_at: OffsetDateTime,
    pub last_seen_at: OffsetDateTime,
    pub expires_at: OffsetDateTime,
    /// Until when the secret question answered in this session opens health data (F5).
    pub step_up_until: Option<OffsetDateTime>,
}

/// A member's wrong answers to the secret question (F5 step-up).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StepUpFailures {
    /// Wrong answers since the last correct one or the end of the last lock.
    pub failures: i32,
    /// No answer is checked before this instant.
    pub locked_until: Option<OffsetDateTime>,
}

/// One roster record ready to store: blind indexes and sealed data, no plaintext.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RosterRow {
    /// Blind index of the card symbol and number (without branch).
    pub card_index: Vec<u8>,
    /// Identifies the record across imports (same card, branch and person).
    pub record_key: Vec<u8>,
    /// Blind index of the branch number (枝番), when the card has one.
    pub branch_index: Option<Vec<u8>>,
    /// Blind index of the folded names and the birth date.
    pub person_index: Vec<u8>,
    /// MAC of the whole record as imported (equal MAC = same content).
    pub content_mac: Vec<u8>,
    pub data_enc: Vec<u8>,
    /// ISO dates `YYYY-MM-DD`.
    pub eligible_from: String,
    pub eligible_until: Option<String>,
}

/// What an import needs to know of a stored record to tell whether a file changes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredRecord {
    pub card_index: Vec<u8>,
    pub record_key: Vec<u8>,
    pub content_mac: Vec<u8>,
    pub eligible_until: Option<String>,
}

/// A roster record's identity within its organization.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct RecordRef {
    pub card_index: Vec<u8>,
    pub record_key: Vec<u8>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ImportStats {
    /// Rows in the file.
    pub rows: u64,
    /// New records.
    pub inserted: u64,
    /// Existing records whose content or eligibility changed.
    pub updated: u64,
    /// Records absent from this import whose eligibility was ended.
    pub ended: u64,
}

/// A roster import in progress: one database transaction holding the organization's lock, so
/// imports of one organization run one after another. Nothing is visible to anyone until
/// [`RosterImport::commit`]; dropping it (an error, an interrupt, a killed process) leaves
/// the previous roster exactly as it was.
#[async_trait]
pub trait RosterImport: Send {
    /// Every record the organization has, as of this transaction.
    async fn existing(&mut self) -> Result<Vec<StoredRecord>>;
    /// Adds new records (a record that exists already fails the import).
    async fn insert(&mut self, rows: &[RosterRow]) -> Result<()>;
    /// Replaces the indexes, data and eligibility of existing records (matched by keys).
    async fn update(&mut self, rows: &[RosterRow]) -> Result<()>;
    /// Sets `eligible_until = ended_on` on these records.
    async fn end(&mut self, records: &[RecordRef], ended_on: &str) -> Result<()>;
    /// Records the import with its figures, and commits.
    async fn commit(self: Box<Self>, stats: ImportStats) -> Result<()>;
}

/// One 特定健診 result to store: the roster record it belongs to, the examination date and
/// the sealed document. No plaintext.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckupRow {
    pub id: String,
    pub record: RecordRef,
    /// ISO date `YYYY-MM-DD`.
    pub examined_on: String,
    pub data_enc: Vec<u8>,
}

/// A stored 特定健診 result.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckupResultRecord {
    pub id: String,
    pub org_id: String,
    pub record: RecordRef,
    pub examined_on: String,
    pub data_enc: Vec<u8>,
    /// The import that wrote this version of the result.
    pub import_id: String,
    pub created_at: OffsetDateTime,
}

/// The figures of a checkup import.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct CheckupImportStats {
    /// Checkup documents in the file.
    pub documents: u64,
    /// Results for an examination not stored before.
    pub inserted: u64,
    /// Results that replaced the stored result of the same record and examination date.
    pub replaced: u64,
}

/// A checkup import in progress: one database transaction holding the organization's lock.
/// Nothing is visible until [`CheckupImport::commit`]; dropping it leaves nothing behind.
#[async_trait]
pub trait CheckupImport: Send {
    /// Writes one result. A result of the same record and examination date is replaced
    /// (keeping its id); returns `true` when it replaced one, `false` for a new result.
    async fn put(&mut self, row: &CheckupRow) -> Result<bool>;
    /// Records the import's figures, and commits.
    async fn commit(self: Box<Self>, stats: CheckupImportStats) -> Result<()>;
}

/// The kind of a health entry (F5): one pair of tables holds both.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum HealthKind {
    /// お薬履歴: one dispensed drug.
    Medication,
    /// 医療費通知: one month of care at one facility.
    Expense,
}

impl HealthKind {
    /// The stored name (`health_entries.kind`).
    pub fn as_str(self) -> &'static str {
        match self {
            HealthKind::Medication => "medication",
            HealthKind::Expense => "expense",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "medication" => Some(HealthKind::Medication),
            "expense" => Some(HealthKind::Expense),
            _ => None,
        }
    }
}

/// One お薬履歴 or 医療費通知 row to store: the roster record it belongs to, its date, its
/// de-duplication key and the sealed row. No plaintext.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HealthEntryRow {
    pub id: String,
    pub record: RecordRef,
    /// ISO date `YYYY-MM-DD` (for a month, its first day).
    pub occurred_on: String,
    /// A keyed MAC of the row's content: unique per organization, record and kind.
    pub row_key: Vec<u8>,
    pub data_enc: Vec<u8>,
}

/// A stored health entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HealthEntryRecord {
    pub id: String,
    pub org_id: String,
    pub record: RecordRef,
    pub kind: HealthKind,
    pub occurred_on: String,
    pub row_key: Vec<u8>,
    pub data_enc: Vec<u8>,
    /// The import that wrote the entry.
    pub import_id: String,
    pub created_at: OffsetDateTime,
}

/// The figures of a health import.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct HealthImportStats {
    /// Data rows in the file.
    pub rows: u64,
    /// Rows not stored before.
    pub inserted: u64,
}

/// A health import in progress: one database transaction holding the organization's lock
/// (the same lock as roster and checkup imports). Nothing is visible until
/// [`HealthImport::commit`]; dropping it leaves nothing behind.
#[async_trait]
pub trait HealthImport: Send {
    /// Writes one entry unless an entry of the same record, kind and row key is stored
    /// already; returns `true` when it was (and nothing was written).
    async fn put(&mut self, row: &HealthEntryRow) -> Result<bool>;
    /// Records the import's figures, and commits.
    async fn commit(self: Box<Self>, stats: HealthImportStats) -> Result<()>;
}

/// A roster record that matched a verification, with its link if any.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RosterMatch {
    pub record: RecordRef,
    pub branch_index: Option<Vec<u8>>,
    pub eligible_from: String,
    pub eligible_until: Option<String>,
    pub data_enc: Vec<u8>,
    pub linked_user_id: Option<String>,
}

/// The roster record an account is linked to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RosterLink {
    pub org_id: String,
    pub record: RecordRef,
    pub linked_at: OffsetDateTime,
}

/// An eKYC application (F4). The application seals its details in `data`; the columns serve
/// the review queue, the one-open-application rule and retention.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EkycRecord {
    pub id: String,
    pub user_id: String,
    pub org_id: String,
    pub state: String,
    /// Not yet completed, approved or rejected: a member has at most one open application.
    pub open: bool,
    pub data: Vec<u8>,
    /// Optimistic concurrency: an update must carry the stored version.
    pub version: i64,
    pub created_at: OffsetDateTime,
    pub updated_at: OffsetDateTime,
    pub submitted_at: Option<OffsetDateTime>,
    pub decided_at: Option<OffsetDateTime>,
}

/// An image of an eKYC application; the bytes are sealed in the object store under `id`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EkycImage {
    pub id: String,
    pub application_id: String,
    /// e.g. `document_front`, `selfie_frontal`.
    pub kind: String,
    /// SHA-256 of the plaintext image (same-image checks, integrity).
    pub sha256: Vec<u8>,
    pub size: i64,
    pub created_at: OffsetDateTime,
    pub deleted_at: Option<OffsetDateTime>,
}

/// An operator of the console (eKYC reviewer or administrator). Email and name are sealed by
/// the application; `email_index` is the keyed blind index of the normalized email.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OperatorRecord {
    pub id: String,
    pub email_index: Vec<u8>,
    pub email_enc: Vec<u8>,
    pub name_enc: Vec<u8>,
    /// `reviewer` or `admin`.
    pub role: String,
    pub password_hash: String,
    pub totp_secret_enc: Vec<u8>,
    /// The newest TOTP time step accepted (0: none yet).
    pub totp_last_step: i64,
    pub created_at: OffsetDateTime,
}

/// An operator's console session (stored by the hash of its token only).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OperatorSessionRecord {
    pub id_hash: Vec<u8>,
    pub operator_id: String,
    pub created_at: OffsetDateTime,
    pub last_seen_at: OffsetDateTime,
    pub expires_at: OffsetDateTime,
}

/// One audit-log row to append: who (`operator_id`, `None` when no operator is known, e.g. a
/// failed login with an unknown email), what (`action`), to which record (`target_type`,
/// `target_id`), when and from where. Never personal data.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewAuditEntry {
    pub at: OffsetDateTime,
    pub operator_id: Option<String>,
    pub action: String,
    pub target_type: Option<String>,
    pub target_id: Option<String>,
    pub client_ip: String,
}

/// A stored audit-log row; `seq` grows with every append.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditEntry {
    pub seq: i64,
    pub at: OffsetDateTime,
    pub operator_id: Option<String>,
    pub action: String,
    pub target_type: Option<String>,
    pub target_id: Option<String>,
    pub client_ip: String,
}

/// An operator's decision on an eKYC application.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EkycReview {
    pub application_id: String,
    pub operator_id: String,
    /// `approved` or `rejected`.
    pub decision: String,
    /// A reason code from the console's fixed list.
    pub reason: Option<String>,
    /// The reviewer's free text, sealed.
    pub note_enc: Option<Vec<u8>>,
    pub decided_at: OffsetDateTime,
}

/// An inquiry to the customer center (F6). The contact email and the message are sealed by
/// the application; `user_id` is set only when a signed-in member chose to attach the account.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InquiryRecord {
    pub id: String,
    pub user_id: Option<String>,
    /// A category code from the application's fixed list.
    pub category: String,
    pub email_enc: Vec<u8>,
    pub message_enc: Vec<u8>,
    /// The language of the mails to the sender (`ja` or `en`).
    pub locale: String,
    /// `open`, `answered` or `closed`.
    pub status: String,
    pub created_at: OffsetDateTime,
    pub updated_at: OffsetDateTime,
    pub closed_at: Option<OffsetDateTime>,
}

/// An operator's reply to an inquiry; the text is sealed by the application.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InquiryReply {
    pub id: String,
    pub inquiry_id: String,
    pub operator_id: String,
    pub body_enc: Vec<u8>,
    pub created_at: OffsetDateTime,
}

#[async_trait]
pub trait Store: Send + Sync + 'static {
    /// Which backend this is ("sqlite" or "postgres").
    fn backend(&self) -> &'static str;
    /// A cheap round trip, for readiness checks.
    async fn ping(&self) -> Result<()>;

    // Organizations
    async fn insert_org(&self, org: &Organization, now: OffsetDateTime) -> Result<()>;
    async fn list_orgs(&self) -> Result<Vec<Organization>>;
    async fn find_org_by_insurer_number(&self, insurer_number: &str) -> Result<Option<Organization>>;
    async fn get_org(&self, id: &str) -> Result<Option<Organization>>;

    // Flows
    async fn insert_flow(&self, flow: &FlowRecord) -> Result<()>;
    async fn get_flow(&self, kind: &str, id: &str) -> Result<Option<FlowRecord>>;
    /// Fails with [`StoreError::Conflict`] when the stored version is not `record.version`.
    async fn update_flow(&self, update: FlowUpdate<'_>) -> Result<()>;
    async fn delete_expired_flows(&self, now: OffsetDateTime) -> Result<u64>;

    // One-time codes and the transactional mail outbox
    /// In one transaction: voids the subject's earlier live codes, stores the new one,
    /// queues `mail`, and applies `flow` (if given, with its version check).
    async fn issue_code(&self, code: &NewCode, mail: &NewMail, flow: Option<FlowUpdate<'_>>) -> Result<()>;
    /// The newest live (not consumed, not voided) code of a subject, expired or not.
    async fn live_code(&self, purpose: &str, subject: &str) -> Result<Option<CodeRecord>>;
    /// Counts one attempt atomically, before any comparison, against the live code.
    async fn attempt_code(&self, purpose: &str, subject: &str, now: OffsetDateTime, max_attempts: i32) -> Result<CodeAttempt>;
    /// Marks the code used; `false` when it was already used or voided (a lost race).
    async fn consume_code(&self, code_id: &str, now: OffsetDateTime) -> Result<bool>;
    /// Voids every live code of the subject (e.g. when a flow is locked out).
    async fn void_codes(&self, purpose: &str, subject: &str, now: OffsetDateTime) -> Result<()>;

    async fn enqueue_mail(&self, mail: &NewMail) -> Result<()>;
    /// Claims up to `limit` mails due at `now`: each claimed row's next attempt moves to
    /// `now + lease` so no other worker takes it meanwhile, and its attempt count grows.
    async fn claim_due_mails(&self, now: OffsetDateTime, lease: time::Duration, limit: i64) -> Result<Vec<OutboxRecord>>;
    async fn mark_mail_sent(&self, id: &str, now: OffsetDateTime) -> Result<()>;
    async fn mark_mail_failed(&self, id: &str, error: &str, next_attempt_at: OffsetDateTime) -> Result<()>;
    async fn pending_mail_count(&self) -> Result<i64>;

    // Users
    /// In one transaction: creates the user (Duplicate if the email index exists), records
    /// the consents and applies `flow` with its version check.
    async fn create_user(&self, user: &NewUser, consents: &[ConsentRecord], flow: Option<FlowUpdate<'_>>) -> Result<()>;
    async fn find_user_by_email_index(&self, email_index: &[u8]) -> Result<Option<UserRecord>>;
    async fn get_user(&self, id: &str) -> Result<Option<UserRecord>>;
    async fn user_consents(&self, user_id: &str) -> Result<Vec<ConsentRecord>>;
    /// In one transaction: sets the password, ends every session of the user and applies `flow`.
    async fn set_password(&self, user_id: &str, password_hash: &str, now: OffsetDateTime, flow: Option<FlowUpdate<'_>>) -> Result<()>;

    // Sessions
    async fn create_session(&self, session: &SessionRecord) -> Result<()>;
    async fn get_session(&self, id_hash: &[u8]) -> Result<Option<SessionRecord>>;
    async fn touch_session(&self, id_hash: &[u8], now: OffsetDateTime, expires_at: OffsetDateTime) -> Result<()>;
    async fn delete_session(&self, id_hash: &[u8]) -> Result<()>;
    async fn delete_user_sessions(&self, user_id: &str) -> Result<u64>;
    async fn delete_expired_sessions(&self, now: OffsetDateTime) -> Result<u64>;
    /// Opens health data in this session until `until` (`None` closes it again).
    async fn set_session_step_up(&self, id_hash: &[u8], until: Option<OffsetDateTime>) -> Result<()>;

    // --- F5 step-up (secret question) ---
    async fn step_up_failures(&self, user_id: &str) -> Result<Option<StepUpFailures>>;
    /// Counts one wrong answer, atomically: a lock that has ended starts the count again at
    /// one; reaching `max_failures` locks until `lock_until`; a running lock is kept as is.
    async fn record_step_up_failure(&self, user_id: &str, now: OffsetDateTime, max_failures: i32, lock_until: OffsetDateTime)
        -> Result<StepUpFailures>;
    /// Forgets the wrong answers (after a correct one).
    async fn clear_step_up_failures(&self, user_id: &str) -> Result<()>;

    // Rosters and identity links
    /// Starts an import (waiting for any other import of the organization to finish); `now`
    /// stamps the records it writes. [`StoreError::NotFound`] for an unknown organization.
    async fn begin_roster_import(&self, org_id: &str, import_id: &str, now: OffsetDateTime) -> Result<Box<dyn RosterImport>>;
    /// Records of the organization with this card (without branch) and person.
    async fn find_roster_matches(&self, org_id: &str, card_index: &[u8], person_index: &[u8]) -> Result<Vec<RosterMatch>>;
    async fn roster_count(&self, org_id: &str) -> Result<i64>;
    /// Links a record to an account. [`StoreError::Duplicate`] when the record already has an
    /// account or the account already has a record: of racing accounts exactly one wins.
    async fn link_roster_record(&self, org_id: &str, record: &RecordRef, user_id: &str, now: OffsetDateTime) -> Result<()>;
    /// The record linked to an account and when it was linked.
    async fn roster_link_of_user(&self, user_id: &str) -> Result<Option<RosterLink>>;
    /// Every record of the organization with this card (without branch), whoever the person,
    /// with its link: for matching files that identify people by card and birth date only.
    async fn find_roster_records_by_card(&self, org_id: &str, card_index: &[u8]) -> Result<Vec<RosterMatch>>;

    // 特定健診 results (F5)
    /// Starts a checkup import of `file_name` for the organization (waiting for any other
    /// import of it to finish). [`StoreError::NotFound`] for an unknown organization.
    async fn begin_checkup_import(&self, org_id: &str, import_id: &str, file_name: &str, now: OffsetDateTime) -> Result<Box<dyn CheckupImport>>;
    /// The results of one roster record, newest examination first.
    async fn checkup_results_of_record(&self, org_id: &str, record: &RecordRef) -> Result<Vec<CheckupResultRecord>>;

    // お薬履歴 and 医療費通知 (F5)
    /// Starts a health import of `kind` from `file_name` for the organization (waiting for any
    /// other import of it to finish). [`StoreError::NotFound`] for an unknown organization.
    async fn begin_health_import(
        &self,
        org_id: &str,
        import_id: &str,
        kind: HealthKind,
        file_name: &str,
        now: OffsetDateTime,
    ) -> Result<Box<dyn HealthImport>>;
    /// The entries of one kind of one roster record, latest date first.
    async fn health_entries_of_record(&self, org_id: &str, record: &RecordRef, kind: HealthKind) -> Result<Vec<HealthEntryRecord>>;

    // eKYC applications (F4)
    /// [`StoreError::Duplicate`] when the member already has an open application.
    async fn insert_ekyc(&self, app: &EkycRecord) -> Result<()>;
    async fn get_ekyc(&self, id: &str) -> Result<Option<EkycRecord>>;
    /// The member's newest application.
    async fn latest_ekyc_of_user(&self, user_id: &str) -> Result<Option<EkycRecord>>;
    /// Writes `app` if the stored version is `app.version` (the stored version becomes one
    /// more); [`StoreError::Conflict`] otherwise — e.g. two reviewers deciding one case.
    async fn update_ekyc(&self, app: &EkycRecord) -> Result<()>;
    /// Applications in `state`, oldest submission first.
    async fn ekyc_queue(&self, state: &str, limit: i64) -> Result<Vec<EkycRecord>>;
    async fn add_ekyc_image(&self, image: &EkycImage) -> Result<()>;
    /// The application's images (deleted ones included, with `deleted_at`), oldest first.
    async fn ekyc_images(&self, application_id: &str) -> Result<Vec<EkycImage>>;
    /// Images not deleted yet of applications decided at or before `decided_before`.
    async fn ekyc_images_to_delete(&self, decided_before: OffsetDateTime, limit: i64) -> Result<Vec<EkycImage>>;
    async fn mark_ekyc_image_deleted(&self, id: &str, now: OffsetDateTime) -> Result<()>;
    async fn issue_capture_token(&self, token_hash: &[u8], application_id: &str, purpose: &str, expires_at: OffsetDateTime) -> Result<()>;
    /// Uses a capture token once: `true` when it exists for this application and purpose,
    /// was not used and has not expired at `now` (atomic: of racing uses one wins).
    async fn use_capture_token(&self, token_hash: &[u8], application_id: &str, purpose: &str, now: OffsetDateTime) -> Result<bool>;
    /// Deletes capture tokens that expired before `before` (used ones expire too).
    async fn delete_stale_capture_tokens(&self, before: OffsetDateTime) -> Result<u64>;

    // Operator console
    /// [`StoreError::Duplicate`] when an operator with this email index exists.
    async fn insert_operator(&self, operator: &OperatorRecord) -> Result<()>;
    async fn find_operator_by_email_index(&self, email_index: &[u8]) -> Result<Option<OperatorRecord>>;
    async fn get_operator(&self, id: &str) -> Result<Option<OperatorRecord>>;
    /// Every operator, oldest first.
    async fn list_operators(&self) -> Result<Vec<OperatorRecord>>;
    /// Accepts TOTP time step `step` for the operator once: `true` when it is later than every
    /// step accepted before (atomic: of racing uses of one code, one wins), `false` for a replay.
    async fn use_totp_step(&self, operator_id: &str, step: i64) -> Result<bool>;
    async fn create_operator_session(&self, session: &OperatorSessionRecord) -> Result<()>;
    async fn get_operator_session(&self, id_hash: &[u8]) -> Result<Option<OperatorSessionRecord>>;
    async fn touch_operator_session(&self, id_hash: &[u8], now: OffsetDateTime, expires_at: OffsetDateTime) -> Result<()>;
    async fn delete_operator_session(&self, id_hash: &[u8]) -> Result<()>;
    async fn delete_expired_operator_sessions(&self, now: OffsetDateTime) -> Result<u64>;

    // Audit log: append and read only. There is deliberately no way to change or remove a
    // row, and the database refuses UPDATE and DELETE on the table (triggers).
    async fn append_audit(&self, entry: &NewAuditEntry) -> Result<()>;
    /// Up to `limit` rows older than `before_seq` (all when `None`), newest first.
    async fn list_audit(&self, before_seq: Option<i64>, limit: i64) -> Result<Vec<AuditEntry>>;

    // eKYC review
    /// In one transaction: writes `app` with its version check (as [`Store::update_ekyc`]),
    /// records `review`, queues `mail` and appends `audit`. [`StoreError::Conflict`] when the
    /// application changed meanwhile or was decided already: then nothing is written.
    async fn decide_ekyc(&self, app: &EkycRecord, review: &EkycReview, mail: &NewMail, audit: &NewAuditEntry) -> Result<()>;
    async fn ekyc_review(&self, application_id: &str) -> Result<Option<EkycReview>>;
    /// One roster record by its keys, with its link (for the reviewer's side-by-side view).
    async fn get_roster_record(&self, org_id: &str, record: &RecordRef) -> Result<Option<RosterMatch>>;

    // Customer center (F6)
    /// In one transaction: stores the inquiry and queues its confirmation `mail`.
    async fn create_inquiry(&self, inquiry: &InquiryRecord, mail: &NewMail) -> Result<()>;
    /// Up to `limit` inquiries for the inbox: open and answered ones first, newest first.
    async fn list_inquiries(&self, limit: i64) -> Result<Vec<InquiryRecord>>;
    /// One inquiry with its replies, oldest reply first.
    async fn get_inquiry(&self, id: &str) -> Result<Option<(InquiryRecord, Vec<InquiryReply>)>>;
    /// In one transaction: records `reply`, marks the inquiry `answered`, queues `mail` (the
    /// reply to the sender) and appends `audit`. [`StoreError::NotFound`] for an unknown
    /// inquiry, [`StoreError::Conflict`] for a closed one: then nothing is written.
    async fn reply_inquiry(&self, reply: &InquiryReply, mail: &NewMail, audit: &NewAuditEntry) -> Result<()>;
    /// In one transaction: marks the inquiry `closed` at `now` and appends `audit`.
    /// [`StoreError::NotFound`] for an unknown inquiry, [`StoreError::Conflict`] when it is
    /// closed already: then nothing is written.
    async fn close_inquiry(&self, id: &str, now: OffsetDateTime, audit: &NewAuditEntry) -> Result<()>;

    // Rate limits (fixed windows, shared by every node through the database)
    /// Counts one hit for `key` in the window of `window` ending now; returns the count
    /// including this hit.
    async fn hit_rate_limit(&self, key: &str, now: OffsetDateTime, window: time::Duration) -> Result<i64>;
    async fn delete_stale_rate_limits(&self, before: OffsetDateTime) -> Result<u64>;
}

/// Opens the store named by `url` (`sqlite:…` or `postgres://…`) and runs its migrations.
pub async fn connect(url: &str) -> Result<Arc<dyn Store>> {
    if url.starts_with("sqlite:") {
        Ok(Arc::new(sqlite::SqliteStore::connect(url).await?))
    } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
        Ok(Arc::new(postgres::PgStore::connect(url).await?))
    } else {
        Err(StoreError::UnsupportedUrl)
    }
}

pub(crate) fn to_ts(t: OffsetDateTime) -> i64 {
    t.unix_timestamp()
}

pub(crate) fn from_ts(s: i64) -> Result<OffsetDateTime> {
    OffsetDateTime::from_unix_timestamp(s).map_err(|e| StoreError::Corrupt(format!("timestamp {s}: {e}")))
}
