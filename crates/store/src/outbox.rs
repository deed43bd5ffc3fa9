//! The transactional mail outbox: mails are queued in the same transaction as the change they
//! tell about (the `insert_mail` helper, used by other aggregates), and
//! workers claim, send and mark them.

use async_trait::async_trait;
use time::OffsetDateTime;

use crate::row::{to_ts, UnixTime};
use crate::Result;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewMail {
    pub id: String,
    /// Sealed, serialized message.
    pub payload: Vec<u8>,
    pub created_at: OffsetDateTime,
}

#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct OutboxRecord {
    pub id: String,
    pub payload: Vec<u8>,
    /// Delivery attempts including the current claim.
    pub attempts: i32,
    #[sqlx(try_from = "UnixTime")]
    pub created_at: OffsetDateTime,
}

/// An unsent mail as the worker's bookkeeping sees it (no payload).
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct UnsentMail {
    pub id: String,
    pub attempts: i32,
    #[sqlx(try_from = "UnixTime")]
    pub next_attempt_at: OffsetDateTime,
    /// 0 claimed, 1 waiting after a transient failure, 2 after a permanent one.
    pub retry_wait: i32,
}

/// A mail the relay refused for good, for the operators' list (newest first).
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct RefusedMail {
    pub id: String,
    /// Sealed, serialized message (the console opens it to show the subject and the domain).
    pub payload: Vec<u8>,
    pub attempts: i32,
    /// The relay's answer, with the recipient's address taken out by the worker.
    pub last_error: Option<String>,
    #[sqlx(try_from = "UnixTime")]
    pub created_at: OffsetDateTime,
    #[sqlx(try_from = "UnixTime")]
    pub refused_at: OffsetDateTime,
}

/// What became of the mail of a one-time code (see [`Outbox::code_mail_fate`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MailFate {
    /// Queued or being retried.
    Pending,
    Sent,
    /// Not sent: its code expired before the relay took it.
    Dropped,
    /// The relay refused it for good.
    Refused,
}

#[async_trait]
pub trait Outbox: Send + Sync {
    async fn enqueue_mail(&self, mail: &NewMail) -> Result<()>;
    /// Claims up to `limit` mails due at `now`: each claimed row's next attempt moves to
    /// `now + lease` so no other worker takes it meanwhile, and its attempt count grows.
    async fn claim_due_mails(
        &self,
        now: OffsetDateTime,
        lease: time::Duration,
        limit: i64,
    ) -> Result<Vec<OutboxRecord>>;
    async fn mark_mail_sent(&self, id: &str, now: OffsetDateTime) -> Result<()>;
    /// Schedules the next attempt of a mail whose delivery failed; `transient`: the relay could
    /// not be reached or deferred it (see [`Outbox::release_waiting_mails`]).
    async fn mark_mail_failed(
        &self,
        id: &str,
        error: &str,
        next_attempt_at: OffsetDateTime,
        transient: bool,
    ) -> Result<()>;
    /// Makes every mail waiting out a backoff after a transient failure due at `now` (the
    /// relay is back); claimed mails are left alone. Returns how many.
    async fn release_waiting_mails(&self, now: OffsetDateTime) -> Result<u64>;
    async fn pending_mail_count(&self) -> Result<i64>;
    /// Settles a claimed mail without sending it (its code expired): no longer pending, purged
    /// with the sent ones.
    async fn drop_mail(&self, id: &str, now: OffsetDateTime, reason: &str) -> Result<()>;
    /// Settles a claimed mail the relay refused for good: never retried, no longer pending,
    /// listed by [`Outbox::refused_mails`]; `error` must not hold the recipient's address.
    async fn refuse_mail(&self, id: &str, now: OffsetDateTime, error: &str) -> Result<()>;
    /// Refused mails, newest first.
    async fn refused_mails(&self, limit: i64) -> Result<Vec<RefusedMail>>;
    /// What became of the mail of the newest live code of (`purpose`, `subject`); `None`
    /// without a live code or a mail (a decoy, or a code from before mails were linked).
    async fn code_mail_fate(&self, purpose: &str, subject: &str) -> Result<Option<MailFate>>;
    /// Up to `limit` unsent mails, oldest first (bookkeeping only).
    async fn unsent_mails(&self, limit: i64) -> Result<Vec<UnsentMail>>;
}

macro_rules! sql_outbox {
    ($store:ty, $db:ty, $skip_locked:literal) => {
        use super::*;

        /// Queues `mail` (on the pool, or in another aggregate's transaction).
        pub(crate) async fn insert_mail<'c, E>(executor: E, mail: &NewMail) -> Result<()>
        where
            E: sqlx::Executor<'c, Database = $db>,
        {
            sqlx::query(
                "INSERT INTO mail_outbox (id, payload, created_at, attempts, next_attempt_at) \
                 VALUES ($1, $2, $3, 0, $3)",
            )
            .bind(&mail.id)
            .bind(&mail.payload)
            .bind(to_ts(mail.created_at))
            .execute(executor)
            .await?;
            Ok(())
        }

        /// Settles an unsent mail without sending it: dropped (`refused_at` `None`) or refused
        /// by the relay for good (also listed by `refused_mails`). Either is no longer pending.
        async fn settle_unsent(
            pool: &sqlx::Pool<$db>,
            id: &str,
            now: OffsetDateTime,
            reason: &str,
            refused_at: Option<OffsetDateTime>,
        ) -> Result<()> {
            sqlx::query(
                "UPDATE mail_outbox SET dropped_at = $1, refused_at = $2, last_error = $3 \
                 WHERE id = $4 AND sent_at IS NULL AND dropped_at IS NULL",
            )
            .bind(to_ts(now))
            .bind(refused_at.map(to_ts))
            .bind(reason)
            .bind(id)
            .execute(pool)
            .await?;
            Ok(())
        }

        #[async_trait]
        impl Outbox for $store {
            #[tracing::instrument(skip_all, fields(mail.id = %mail.id))]
            async fn enqueue_mail(&self, mail: &NewMail) -> Result<()> {
                insert_mail(&self.pool, mail).await
            }

            #[tracing::instrument(skip_all, fields(limit = limit))]
            async fn claim_due_mails(
                &self,
                now: OffsetDateTime,
                lease: time::Duration,
                limit: i64,
            ) -> Result<Vec<OutboxRecord>> {
                // PostgreSQL: concurrent workers skip each other's rows (SKIP LOCKED) instead of
                // waiting on them, and the outer `next_attempt_at <= $1` is re-checked after any
                // wait, so no row is ever claimed twice. SQLite serializes writers. The choice is
                // a MATERIALIZED CTE, evaluated once: as an `IN (subquery)` PostgreSQL may run
                // the locking subquery more than once and claim more than `limit` rows.
                let mut out: Vec<OutboxRecord> = sqlx::query_as(concat!(
                    "WITH due AS MATERIALIZED (SELECT id FROM mail_outbox \
                        WHERE sent_at IS NULL AND dropped_at IS NULL AND next_attempt_at <= $1 \
                        ORDER BY next_attempt_at, created_at LIMIT $3 ",
                    $skip_locked,
                    ") UPDATE mail_outbox SET next_attempt_at = $2, attempts = attempts + 1, retry_wait = 0 \
                     WHERE id IN (SELECT id FROM due) AND sent_at IS NULL AND dropped_at IS NULL AND next_attempt_at <= $1 \
                     RETURNING id, payload, attempts, created_at",
                ))
                .bind(to_ts(now))
                .bind(to_ts(now + lease))
                .bind(limit)
                .fetch_all(&self.pool)
                .await?;
                out.sort_by(|a, b| a.created_at.cmp(&b.created_at).then_with(|| a.id.cmp(&b.id)));
                Ok(out)
            }

            #[tracing::instrument(skip_all, fields(mail.id = %id))]
            async fn mark_mail_sent(&self, id: &str, now: OffsetDateTime) -> Result<()> {
                sqlx::query("UPDATE mail_outbox SET sent_at = $1, last_error = NULL WHERE id = $2")
                    .bind(to_ts(now))
                    .bind(id)
                    .execute(&self.pool)
                    .await?;
                Ok(())
            }

            // `error` stays out of the span: a mail server's message may quote the address.
            #[tracing::instrument(skip_all, fields(mail.id = %id))]
            async fn mark_mail_failed(
                &self,
                id: &str,
                error: &str,
                next_attempt_at: OffsetDateTime,
                transient: bool,
            ) -> Result<()> {
                sqlx::query(
                    "UPDATE mail_outbox SET last_error = $1, next_attempt_at = $2, retry_wait = $3 \
                     WHERE id = $4 AND sent_at IS NULL AND dropped_at IS NULL",
                )
                .bind(error)
                .bind(to_ts(next_attempt_at))
                .bind(if transient { 1_i32 } else { 2 })
                .bind(id)
                .execute(&self.pool)
                .await?;
                Ok(())
            }

            // `reason` stays out of the span like a delivery error.
            #[tracing::instrument(skip_all, fields(mail.id = %id))]
            async fn drop_mail(&self, id: &str, now: OffsetDateTime, reason: &str) -> Result<()> {
                settle_unsent(&self.pool, id, now, reason, None).await
            }

            // `error` stays out of the span like a delivery error.
            #[tracing::instrument(skip_all, fields(mail.id = %id))]
            async fn refuse_mail(&self, id: &str, now: OffsetDateTime, error: &str) -> Result<()> {
                settle_unsent(&self.pool, id, now, error, Some(now)).await
            }

            #[tracing::instrument(skip_all, fields(limit = limit))]
            async fn refused_mails(&self, limit: i64) -> Result<Vec<RefusedMail>> {
                let rows = sqlx::query_as(
                    "SELECT id, payload, attempts, last_error, created_at, refused_at FROM mail_outbox \
                     WHERE refused_at IS NOT NULL ORDER BY refused_at DESC, id LIMIT $1",
                )
                .bind(limit)
                .fetch_all(&self.pool)
                .await?;
                Ok(rows)
            }

            #[tracing::instrument(skip_all, fields(code.purpose = %purpose))]
            async fn code_mail_fate(&self, purpose: &str, subject: &str) -> Result<Option<MailFate>> {
                let row: Option<(Option<i64>, Option<i64>, Option<i64>)> = sqlx::query_as(
                    "SELECT m.sent_at, m.dropped_at, m.refused_at FROM one_time_codes c \
                     JOIN mail_outbox m ON m.id = c.mail_id \
                     WHERE c.purpose = $1 AND c.subject = $2 AND c.consumed_at IS NULL AND c.voided_at IS NULL \
                     ORDER BY c.created_at DESC, c.id DESC LIMIT 1",
                )
                .bind(purpose)
                .bind(subject)
                .fetch_optional(&self.pool)
                .await?;
                Ok(row.map(|(sent, dropped, refused)| match (sent, dropped, refused) {
                    (Some(_), _, _) => MailFate::Sent,
                    (None, _, Some(_)) => MailFate::Refused,
                    (None, Some(_), None) => MailFate::Dropped,
                    (None, None, None) => MailFate::Pending,
                }))
            }

            #[tracing::instrument(skip_all)]
            async fn release_waiting_mails(&self, now: OffsetDateTime) -> Result<u64> {
                let done = sqlx::query(
                    "UPDATE mail_outbox SET next_attempt_at = $1, retry_wait = 0 \
                     WHERE sent_at IS NULL AND dropped_at IS NULL AND retry_wait = 1 AND next_attempt_at > $1",
                )
                .bind(to_ts(now))
                .execute(&self.pool)
                .await?;
                Ok(done.rows_affected())
            }

            #[tracing::instrument(skip_all, fields(limit = limit))]
            async fn unsent_mails(&self, limit: i64) -> Result<Vec<UnsentMail>> {
                let rows = sqlx::query_as(
                    "SELECT id, attempts, next_attempt_at, retry_wait FROM mail_outbox WHERE sent_at IS NULL AND dropped_at IS NULL \
                     ORDER BY created_at, id LIMIT $1",
                )
                .bind(limit)
                .fetch_all(&self.pool)
                .await?;
                Ok(rows)
            }

            #[tracing::instrument(skip_all)]
            async fn pending_mail_count(&self) -> Result<i64> {
                let n = sqlx::query_scalar("SELECT COUNT(*) AS n FROM mail_outbox WHERE sent_at IS NULL AND dropped_at IS NULL")
                    .fetch_one(&self.pool)
                    .await?;
                Ok(n)
            }
        }
    };
}

pub(crate) mod sqlite {
    sql_outbox!(crate::sqlite::SqliteStore, sqlx::Sqlite, "");
}

pub(crate) mod postgres {
    sql_outbox!(crate::postgres::PgStore, sqlx::Postgres, "FOR UPDATE SKIP LOCKED");
}
