//! Flows (registration, password reset, …) with optimistic versions, and the one-time codes
//! sent during them. [`Flows::issue_code`] is one transaction: it voids the subject's earlier
//! codes, stores the new one, queues its mail (none for a decoy) and applies the flow update.

use async_trait::async_trait;
use time::OffsetDateTime;

use crate::outbox::NewMail;
use crate::row::{to_ts, UnixTime};
use crate::{Result, StoreError};

/// A persisted multi-step flow (registration, password reset, …). The application owns the
/// state machine and seals its data; the store keeps it by id with a version for
/// optimistic concurrency.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct FlowRecord {
    pub id: String,
    pub kind: String,
    pub state: String,
    pub data: Vec<u8>,
    pub version: i64,
    #[sqlx(try_from = "UnixTime")]
    pub created_at: OffsetDateTime,
    #[sqlx(try_from = "UnixTime")]
    pub updated_at: OffsetDateTime,
    #[sqlx(try_from = "UnixTime")]
    pub expires_at: OffsetDateTime,
}

/// Write `record` only if the stored version is still `record.version`; the stored version
/// becomes `record.version + 1`. With [`FlowUpdate::consuming`], the same transaction also
/// uses up a one-time code: a step that spends a code and changes state (an account created,
/// a password set) is done whole or not at all, so an outage in between leaves the code valid.
#[derive(Debug, Clone)]
pub struct FlowUpdate<'a> {
    pub record: &'a FlowRecord,
    pub consumes: Option<CodeUse<'a>>,
}

/// A one-time code used up by a [`FlowUpdate`].
#[derive(Debug, Clone, Copy)]
pub struct CodeUse<'a> {
    pub code_id: &'a str,
    pub at: OffsetDateTime,
}

impl<'a> FlowUpdate<'a> {
    pub fn new(record: &'a FlowRecord) -> Self {
        FlowUpdate { record, consumes: None }
    }

    /// Also marks the code `code_id` used at `at`; the update fails with
    /// [`StoreError::Conflict`] (and changes nothing) when it was already used or voided.
    pub fn consuming(self, code_id: &'a str, at: OffsetDateTime) -> Self {
        FlowUpdate { consumes: Some(CodeUse { code_id, at }), ..self }
    }
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

#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct CodeRecord {
    pub id: String,
    pub code_mac: Vec<u8>,
    pub attempts: i32,
    #[sqlx(try_from = "UnixTime")]
    pub created_at: OffsetDateTime,
    #[sqlx(try_from = "UnixTime")]
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

#[async_trait]
pub trait Flows: Send + Sync {
    async fn insert_flow(&self, flow: &FlowRecord) -> Result<()>;
    async fn get_flow(&self, kind: &str, id: &str) -> Result<Option<FlowRecord>>;
    /// Fails with [`StoreError::Conflict`] when the stored version is not `record.version`.
    async fn update_flow(&self, update: FlowUpdate<'_>) -> Result<()>;
    async fn delete_expired_flows(&self, now: OffsetDateTime) -> Result<u64>;

    /// In one transaction: voids the subject's earlier live codes, stores the new one,
    /// queues `mail`, and applies `flow` (if given, with its version check). Without a mail
    /// the code is a decoy (a password reset for an address without an account): it is kept
    /// and counted like any other, so the flow answers like a real one.
    async fn issue_code(&self, code: &NewCode, mail: Option<&NewMail>, flow: Option<FlowUpdate<'_>>) -> Result<()>;
    /// The newest live (not consumed, not voided) code of a subject, expired or not.
    async fn live_code(&self, purpose: &str, subject: &str) -> Result<Option<CodeRecord>>;
    /// Counts one attempt atomically, before any comparison, against the live code.
    async fn attempt_code(
        &self,
        purpose: &str,
        subject: &str,
        now: OffsetDateTime,
        max_attempts: i32,
    ) -> Result<CodeAttempt>;
    /// The newest code of a subject that was used up (by a [`FlowUpdate::consuming`]) and
    /// has not expired at `now`: a retry of the step that used it answers as it did.
    async fn used_code(&self, purpose: &str, subject: &str, now: OffsetDateTime) -> Result<Option<CodeRecord>>;
    /// Voids every live code of the subject (e.g. when a flow is locked out).
    async fn void_codes(&self, purpose: &str, subject: &str, now: OffsetDateTime) -> Result<()>;
}

const COLUMNS: &str = "id, kind, state, data, version, created_at, updated_at, expires_at";

const VOID_LIVE_CODES: &str = "UPDATE one_time_codes SET voided_at = $1 \
     WHERE purpose = $2 AND subject = $3 AND consumed_at IS NULL AND voided_at IS NULL";

macro_rules! sql_flows {
    ($be:ident, $store:ty, $db:ty) => {
        use super::*;

        /// Applies a versioned flow update, and uses up its code if it consumes one, inside a
        /// transaction (the flow's own, or another aggregate's). The flow row goes first, as in
        /// [`Flows::issue_code`] (one lock order, no deadlock with a resend): of two requests
        /// racing with one flow, the second waits on its row and then finds the version moved.
        pub(crate) async fn apply_flow(
            conn: &mut <$db as sqlx::Database>::Connection,
            update: &FlowUpdate<'_>,
        ) -> Result<()> {
            let f = update.record;
            let done = sqlx::query(
                "UPDATE flows SET state = $1, data = $2, version = version + 1, updated_at = $3, expires_at = $4 \
                 WHERE id = $5 AND kind = $6 AND version = $7",
            )
            .bind(&f.state)
            .bind(&f.data)
            .bind(to_ts(f.updated_at))
            .bind(to_ts(f.expires_at))
            .bind(&f.id)
            .bind(&f.kind)
            .bind(f.version)
            .execute(&mut *conn)
            .await?;
            if done.rows_affected() != 1 {
                return Err(StoreError::Conflict);
            }
            if let Some(code) = &update.consumes {
                let used = sqlx::query(
                    "UPDATE one_time_codes SET consumed_at = $1 \
                     WHERE id = $2 AND consumed_at IS NULL AND voided_at IS NULL",
                )
                .bind(to_ts(code.at))
                .bind(code.code_id)
                .execute(&mut *conn)
                .await?;
                if used.rows_affected() != 1 {
                    return Err(StoreError::Conflict);
                }
            }
            Ok(())
        }

        #[async_trait]
        impl Flows for $store {
            #[tracing::instrument(skip_all, fields(flow.id = %f.id, flow.kind = %f.kind))]
            async fn insert_flow(&self, f: &FlowRecord) -> Result<()> {
                sqlx::query(
                    "INSERT INTO flows (id, kind, state, data, version, created_at, updated_at, expires_at) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
                )
                .bind(&f.id)
                .bind(&f.kind)
                .bind(&f.state)
                .bind(&f.data)
                .bind(f.version)
                .bind(to_ts(f.created_at))
                .bind(to_ts(f.updated_at))
                .bind(to_ts(f.expires_at))
                .execute(&self.pool)
                .await?;
                Ok(())
            }

            #[tracing::instrument(skip_all, fields(flow.id = %id, flow.kind = %kind))]
            async fn get_flow(&self, kind: &str, id: &str) -> Result<Option<FlowRecord>> {
                let sql = format!("SELECT {COLUMNS} FROM flows WHERE id = $1 AND kind = $2");
                Ok(sqlx::query_as(&sql).bind(id).bind(kind).fetch_optional(&self.pool).await?)
            }

            #[tracing::instrument(skip_all, fields(flow.id = %update.record.id))]
            async fn update_flow(&self, update: FlowUpdate<'_>) -> Result<()> {
                let mut tx = self.pool.begin().await?;
                apply_flow(&mut tx, &update).await?;
                tx.commit().await?;
                Ok(())
            }

            #[tracing::instrument(skip_all)]
            async fn delete_expired_flows(&self, now: OffsetDateTime) -> Result<u64> {
                let done = sqlx::query("DELETE FROM flows WHERE expires_at <= $1")
                    .bind(to_ts(now))
                    .execute(&self.pool)
                    .await?;
                Ok(done.rows_affected())
            }

            #[tracing::instrument(skip_all, fields(code.id = %code.id, code.purpose = %code.purpose, mail.id = mail.map(|m| m.id.as_str()), flow.id = flow.as_ref().map(|u| u.record.id.as_str())))]
            async fn issue_code(
                &self,
                code: &NewCode,
                mail: Option<&NewMail>,
                flow: Option<FlowUpdate<'_>>,
            ) -> Result<()> {
                let mut tx = self.pool.begin().await?;
                if let Some(update) = &flow {
                    apply_flow(&mut tx, update).await?;
                }
                sqlx::query(VOID_LIVE_CODES)
                    .bind(to_ts(code.created_at))
                    .bind(&code.purpose)
                    .bind(&code.subject)
                    .execute(&mut *tx)
                    .await?;
                sqlx::query(
                    "INSERT INTO one_time_codes (id, purpose, subject, code_mac, attempts, created_at, expires_at, mail_id) \
                     VALUES ($1, $2, $3, $4, 0, $5, $6, $7)",
                )
                .bind(&code.id)
                .bind(&code.purpose)
                .bind(&code.subject)
                .bind(&code.code_mac)
                .bind(to_ts(code.created_at))
                .bind(to_ts(code.expires_at))
                .bind(mail.map(|m| m.id.as_str()))
                .execute(&mut *tx)
                .await?;
                if let Some(mail) = mail {
                    crate::outbox::$be::insert_mail(&mut *tx, mail).await?;
                }
                tx.commit().await?;
                Ok(())
            }

            #[tracing::instrument(skip_all, fields(code.purpose = %purpose))]
            async fn live_code(&self, purpose: &str, subject: &str) -> Result<Option<CodeRecord>> {
                let row = sqlx::query_as(
                    "SELECT id, code_mac, attempts, created_at, expires_at FROM one_time_codes \
                     WHERE purpose = $1 AND subject = $2 AND consumed_at IS NULL AND voided_at IS NULL \
                     ORDER BY created_at DESC, id DESC LIMIT 1",
                )
                .bind(purpose)
                .bind(subject)
                .fetch_optional(&self.pool)
                .await?;
                Ok(row)
            }

            #[tracing::instrument(skip_all, fields(code.purpose = %purpose))]
            async fn attempt_code(
                &self,
                purpose: &str,
                subject: &str,
                now: OffsetDateTime,
                max_attempts: i32,
            ) -> Result<CodeAttempt> {
                // Count first, compare later: the attempt is spent even if the caller never
                // gets to the comparison, and concurrent guesses cannot exceed the limit.
                let counted: Option<CodeRecord> = sqlx::query_as(
                    "UPDATE one_time_codes SET attempts = attempts + 1 \
                     WHERE id = (SELECT id FROM one_time_codes WHERE purpose = $1 AND subject = $2 \
                                 AND consumed_at IS NULL AND voided_at IS NULL \
                                 ORDER BY created_at DESC, id DESC LIMIT 1) \
                       AND consumed_at IS NULL AND voided_at IS NULL AND expires_at > $3 AND attempts < $4 \
                     RETURNING id, code_mac, attempts, created_at, expires_at",
                )
                .bind(purpose)
                .bind(subject)
                .bind(to_ts(now))
                .bind(max_attempts)
                .fetch_optional(&self.pool)
                .await?;
                if let Some(code) = counted {
                    return Ok(CodeAttempt::Counted(code));
                }
                Ok(match self.live_code(purpose, subject).await? {
                    None => CodeAttempt::Missing,
                    Some(c) if c.attempts >= max_attempts => CodeAttempt::Exhausted,
                    Some(c) if c.expires_at <= now => CodeAttempt::Expired,
                    // Consumed or voided between the two statements.
                    Some(_) => CodeAttempt::Missing,
                })
            }

            #[tracing::instrument(skip_all, fields(code.purpose = %purpose))]
            async fn used_code(
                &self,
                purpose: &str,
                subject: &str,
                now: OffsetDateTime,
            ) -> Result<Option<CodeRecord>> {
                let row = sqlx::query_as(
                    "SELECT id, code_mac, attempts, created_at, expires_at FROM one_time_codes \
                     WHERE purpose = $1 AND subject = $2 AND consumed_at IS NOT NULL AND expires_at > $3 \
                     ORDER BY consumed_at DESC, id DESC LIMIT 1",
                )
                .bind(purpose)
                .bind(subject)
                .bind(to_ts(now))
                .fetch_optional(&self.pool)
                .await?;
                Ok(row)
            }

            #[tracing::instrument(skip_all, fields(code.purpose = %purpose))]
            async fn void_codes(&self, purpose: &str, subject: &str, now: OffsetDateTime) -> Result<()> {
                sqlx::query(VOID_LIVE_CODES).bind(to_ts(now)).bind(purpose).bind(subject).execute(&self.pool).await?;
                Ok(())
            }
        }
    };
}

pub(crate) mod sqlite {
    sql_flows!(sqlite, crate::sqlite::SqliteStore, sqlx::Sqlite);
}

pub(crate) mod postgres {
    sql_flows!(postgres, crate::postgres::PgStore, sqlx::Postgres);
}
