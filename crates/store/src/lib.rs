//! Storage for Mimoto.
//!
//! [`Store`] is everything the application needs from a database. It is the combination of
//! one trait per aggregate, each in its own module with its record types and its SQL:
//!
//! | module | trait | what it keeps |
//! | --- | --- | --- |
//! | [`orgs`] | [`Orgs`] | organizations (insurers) |
//! | [`users`] | [`Users`] | members' accounts, consents, sessions, step-up counters |
//! | [`documents`] | [`Documents`] | versioned consent documents; accepting and withdrawing consents |
//! | [`flows`] | [`Flows`] | multi-step flows, one-time codes (with their mail, in one transaction) |
//! | [`outbox`] | [`Outbox`] | the transactional mail outbox |
//! | [`limits`] | [`RateLimits`] | fixed-window rate-limit counters |
//! | [`roster`] | [`Roster`] | roster records, roster imports, links between records and accounts |
//! | [`health`] | [`Health`] | 特定健診 results, お薬履歴 and 医療費通知 entries, and their imports |
//! | [`import_jobs`] | [`ImportJobs`] | the console's import jobs: progress, outcome, heartbeat of their node |
//! | [`ekyc`] | [`Ekyc`] | eKYC applications, their images and capture tokens |
//! | [`operators`] | [`Operators`] | operators, their sessions, the audit log, eKYC decisions |
//! | [`inquiries`] | [`Inquiries`] | customer-center inquiries and replies |
//! | [`retention`] | [`Retention`] | the purges of personal data past its retention period |
//! | [`roster_rekey`] | [`RosterRekeying`] | re-keying an organization's roster family under another MAC key |
//!
//! Every record type and trait is re-exported here, so `store::UserRecord` and
//! `store::Users` work as well as `store::users::…`. Trait methods need their trait in
//! scope: `use store::prelude::*;` brings [`Store`] and every aggregate trait (on
//! `Arc<dyn Store>` / `&dyn Store` the methods resolve without it, on a concrete
//! [`SqliteStore`](sqlite::SqliteStore) or [`PgStore`](postgres::PgStore) or a generic
//! `S: Store` they need it).
//!
//! There is one implementation per backend — [`sqlite::SqliteStore`] (the embedded default)
//! and [`postgres::PgStore`] (production) — with its own migrations but **one SQL text**:
//! SQLite and PostgreSQL both understand `$N` parameters, `ON CONFLICT … DO UPDATE` and
//! `RETURNING`, so each aggregate module holds a small `macro_rules!` with its SQL and its
//! `impl` block, instantiated once per pool type in that module (`mod sqlite` / `mod
//! postgres` inside the aggregate module). The backend differences live in the migrations,
//! in the roster import (multi-row INSERTs on SQLite, binary COPY on PostgreSQL, in
//! `roster/sqlite.rs` and `roster/postgres.rs`) and in the outbox claim (`SKIP LOCKED` on
//! PostgreSQL). Rows map to records with `#[derive(sqlx::FromRow)]`; instants are stored as
//! Unix seconds and flags as integers, and a stored value that cannot be what the schema says
//! becomes [`StoreError::Corrupt`].
//!
//! The conformance suite (`tests/conformance/`, one test binary with one module per
//! aggregate) holds the stories that every backend must pass: its `conformance!` macro runs
//! each story against SQLite in a temporary directory and against a fresh schema of a real
//! PostgreSQL (`MIMOTO_TEST_DATABASE_URL`, default
//! `postgres://postgres@127.0.0.1:5432/mimoto_test`); an unreachable PostgreSQL fails the
//! suite, it is never skipped.
//!
//! The helpers that make those fresh stores are in `testing` (`src/testing.rs`), behind the
//! cargo feature `testing` (off by default, so they are not part of a production build):
//! other crates enable it in their dev-dependencies. The conformance suite does not need the
//! feature: it compiles the same file itself (`#[path]` module), so `cargo test -p
//! mimoto-store` and a workspace-wide `cargo test` (where the feature is on) both run it.
//! `testing.rs` therefore names this crate only as `store::…`, which works inside the library
//! too (`extern crate self as store`).
//!
//! Personal data never reaches this crate in clear: the application seals it
//! (AES-256-GCM) and hands over opaque bytes plus keyed blind indexes for look-ups. The
//! tracing spans of the store methods carry ids only — never sealed bytes, blind indexes,
//! token hashes or emails.

extern crate self as store;

pub mod audit_chain;
pub mod documents;
pub mod ekyc;
pub mod flows;
pub mod health;
pub mod import_jobs;
pub mod inquiries;
pub mod limits;
pub mod operators;
pub mod orgs;
pub mod outbox;
pub mod passkeys;
pub mod postgres;
pub mod rekey;
pub mod retention;
pub mod roster;
pub mod roster_rekey;
mod row;
pub mod sqlite;
#[cfg(feature = "testing")]
pub mod testing;
pub mod users;

use std::sync::Arc;

use async_trait::async_trait;

pub use documents::{DocumentRecord, Documents};
pub use ekyc::{CaptureTokenUse, Ekyc, EkycImage, EkycRecord};
pub use flows::{CodeAttempt, CodeRecord, CodeUse, FlowRecord, FlowUpdate, Flows, NewCode};
pub use health::{
    CheckupImport, CheckupImportStats, CheckupResultRecord, CheckupRow, Health, HealthEntryRecord, HealthEntryRow,
    HealthImport, HealthImportStats, HealthKind,
};
pub use import_jobs::{ImportJobRecord, ImportJobs};
pub use inquiries::{Inquiries, InquiryRecord, InquiryReply};
pub use limits::RateLimits;
pub use operators::{
    AuditEntry, AuditFilter, BindingWithdrawal, DecidedReview, EkycReview, NewAuditEntry, OperatorChange,
    OperatorRecord, OperatorSessionRecord, Operators, Withdrawal,
};
pub use orgs::Orgs;
pub use outbox::{MailFate, NewMail, Outbox, OutboxRecord, RefusedMail, UnsentMail};
pub use passkeys::{PasskeyRecord, Passkeys};
pub use rekey::{IndexColumn, IndexedRow, Rekey, SealedColumn, SealedKey, SealedRow};
pub use retention::Retention;
pub use roster::{ImportStats, RecordRef, Roster, RosterImport, RosterLink, RosterMatch, RosterRow, StoredRecord};
pub use roster_rekey::{
    FamilyCheckup, FamilyHealthEntry, FamilyLink, FamilyRecord, RekeyedCheckup, RekeyedHealthEntry, RekeyedLink,
    RekeyedRecord, RosterFamily, RosterRekey, RosterRekeying,
};
pub use users::{ConsentRecord, DeviceSeen, NewUser, SessionRecord, StepUpAttempt, StepUpFailures, UserRecord, Users};

/// `use store::prelude::*;` to call store methods: [`Store`] and every aggregate trait.
pub mod prelude {
    pub use crate::{
        Documents, Ekyc, Flows, Health, ImportJobs, Inquiries, Operators, Orgs, Outbox, Passkeys, RateLimits, Rekey,
        Retention, Roster, RosterRekeying, Store, Users,
    };
}

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
    /// The database cannot be reached or refuses work for now (connection refused or lost, no
    /// connection free within the pool's acquire timeout, shutting down, too many clients,
    /// SQLite busy): nothing was done; the request may be retried later.
    #[error("database unavailable: {0}")]
    Unavailable(#[source] sqlx::Error),
    #[error("database: {0}")]
    Database(#[source] sqlx::Error),
    #[error("migration: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
}

impl From<sqlx::Error> for StoreError {
    fn from(e: sqlx::Error) -> Self {
        match e {
            sqlx::Error::Database(ref db) if db.is_unique_violation() => StoreError::Duplicate,
            e if unavailable(&e) => StoreError::Unavailable(e),
            sqlx::Error::RowNotFound => StoreError::NotFound,
            // A row mapper's conversion refused a stored value (see `row.rs`).
            sqlx::Error::ColumnDecode { ref index, ref source } if source.is::<row::Corrupt>() => {
                StoreError::Corrupt(format!("{index}: {source}"))
            }
            e => StoreError::Database(e),
        }
    }
}

/// Whether `e` says the database is out of reach for now rather than that the request was wrong.
fn unavailable(e: &sqlx::Error) -> bool {
    match e {
        sqlx::Error::PoolTimedOut
        | sqlx::Error::PoolClosed
        | sqlx::Error::Io(_)
        | sqlx::Error::Tls(_)
        | sqlx::Error::WorkerCrashed => true,
        sqlx::Error::Database(db) => match db.code() {
            // PostgreSQL: class 08 connection exception; 57P01–57P03 the server is shutting
            // down or starting; 53300 too many connections. SQLite: 5 busy, 6 locked.
            Some(code) => {
                code.starts_with("08") || matches!(code.as_ref(), "57P01" | "57P02" | "57P03" | "53300" | "5" | "6")
            }
            None => false,
        },
        _ => false,
    }
}

pub type Result<T, E = StoreError> = std::result::Result<T, E>;

/// Everything the application needs from a database: every aggregate, plus what concerns
/// the database as a whole.
#[async_trait]
pub trait Store:
    Orgs
    + Users
    + Flows
    + Outbox
    + RateLimits
    + Roster
    + Health
    + ImportJobs
    + Ekyc
    + Operators
    + Inquiries
    + Passkeys
    + Retention
    + Documents
    + Rekey
    + RosterRekeying
    + Send
    + Sync
    + 'static
{
    /// Which backend this is ("sqlite" or "postgres").
    fn backend(&self) -> &'static str;
    /// A cheap round trip, for readiness checks.
    async fn ping(&self) -> Result<()>;
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
