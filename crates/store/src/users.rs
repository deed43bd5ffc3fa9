//! Members: accounts, accepted consents, sessions (stored by the hash of their token only) and
//! the step-up counters of the secret question (F5).

use async_trait::async_trait;
use time::OffsetDateTime;

use crate::flows::FlowUpdate;
use crate::row::{to_ts, OptUnixTime, UnixTime};
use crate::{Result, StoreError};

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

#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct UserRecord {
    pub id: String,
    pub org_id: String,
    pub email_enc: Vec<u8>,
    pub password_hash: String,
    pub locale: String,
    #[sqlx(try_from = "UnixTime")]
    pub created_at: OffsetDateTime,
    #[sqlx(try_from = "UnixTime")]
    pub password_changed_at: OffsetDateTime,
}

#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct ConsentRecord {
    pub doc: String,
    pub version: String,
    #[sqlx(try_from = "UnixTime")]
    pub accepted_at: OffsetDateTime,
    /// When the member withdrew it (purpose consents only, see `documents`).
    #[sqlx(try_from = "OptUnixTime")]
    pub withdrawn_at: Option<OffsetDateTime>,
}

#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct SessionRecord {
    pub id_hash: Vec<u8>,
    pub user_id: String,
    pub kind: String,
    #[sqlx(try_from = "UnixTime")]
    pub created_at: OffsetDateTime,
    #[sqlx(try_from = "UnixTime")]
    pub last_seen_at: OffsetDateTime,
    #[sqlx(try_from = "UnixTime")]
    pub expires_at: OffsetDateTime,
    /// Until when the secret question answered in this session opens health data (F5).
    #[sqlx(try_from = "OptUnixTime")]
    pub step_up_until: Option<OffsetDateTime>,
    /// A coarse label of the device made at login from its User-Agent ("Chrome / Android"),
    /// shown in the account settings' session list; nothing more of the User-Agent is kept.
    pub device: Option<String>,
}

/// A member's wrong answers to the secret question (F5 step-up).
#[derive(Debug, Clone, Copy, PartialEq, Eq, sqlx::FromRow)]
pub struct StepUpFailures {
    /// Answers counted (each before it was checked) since the last correct one or the end of
    /// the last lock.
    pub failures: i32,
    /// No answer is checked before this instant.
    #[sqlx(try_from = "OptUnixTime")]
    pub locked_until: Option<OffsetDateTime>,
}

/// One answer to the secret question, counted before it is checked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StepUpAttempt {
    /// Counted (`failures` includes it): check the answer now. When it reached the maximum,
    /// `locked_until` is already set; a correct answer clears the count and the lock.
    Counted(StepUpFailures),
    /// Locked: the answer was not counted and must not be checked before `until`.
    Locked { until: OffsetDateTime },
}

/// What a login's device was to the member ([`Users::remember_device`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeviceSeen {
    /// Logged in from before.
    Known,
    /// Not seen before; `first`: the member had no remembered device at all.
    New { first: bool },
}

#[async_trait]
pub trait Users: Send + Sync {
    /// In one transaction: creates the user (Duplicate if the email index exists), records
    /// the consents and applies `flow` with its version check.
    async fn create_user(&self, user: &NewUser, consents: &[ConsentRecord], flow: Option<FlowUpdate<'_>>)
        -> Result<()>;
    async fn find_user_by_email_index(&self, email_index: &[u8]) -> Result<Option<UserRecord>>;
    async fn get_user(&self, id: &str) -> Result<Option<UserRecord>>;
    async fn user_consents(&self, user_id: &str) -> Result<Vec<ConsentRecord>>;
    /// In one transaction: sets the password, ends every session of the user and applies `flow`.
    async fn set_password(
        &self,
        user_id: &str,
        password_hash: &str,
        now: OffsetDateTime,
        flow: Option<FlowUpdate<'_>>,
    ) -> Result<()>;

    // Sessions
    async fn create_session(&self, session: &SessionRecord) -> Result<()>;
    async fn get_session(&self, id_hash: &[u8]) -> Result<Option<SessionRecord>>;
    async fn touch_session(&self, id_hash: &[u8], now: OffsetDateTime, expires_at: OffsetDateTime) -> Result<()>;
    async fn delete_session(&self, id_hash: &[u8]) -> Result<()>;
    async fn delete_user_sessions(&self, user_id: &str) -> Result<u64>;
    async fn delete_expired_sessions(&self, now: OffsetDateTime) -> Result<u64>;
    /// The user's live sessions (not expired at `now`), the most recently used first.
    async fn user_sessions(&self, user_id: &str, now: OffsetDateTime) -> Result<Vec<SessionRecord>>;
    /// Ends the session `id_hash` if it is `user_id`'s; whether it was.
    async fn delete_user_session(&self, user_id: &str, id_hash: &[u8]) -> Result<bool>;
    /// In one transaction: sets the password and ends every session of the user except
    /// `keep` (the one the member changed it in). NotFound without the user.
    async fn change_password(&self, user_id: &str, password_hash: &str, now: OffsetDateTime, keep: &[u8])
        -> Result<()>;
    /// In one transaction: replaces the user's sealed email and its blind index (Duplicate when
    /// another account has that index; NotFound without the user), applies `flow`, and ends
    /// every session of the user but `keep` (as a password change does).
    async fn set_user_email(
        &self,
        user_id: &str,
        email_index: &[u8],
        email_enc: &[u8],
        flow: Option<FlowUpdate<'_>>,
        keep: &[u8],
    ) -> Result<()>;
    /// Remembers the device `device_mac` (the MAC of its device cookie) for the user at `now`,
    /// and says whether it was known.
    async fn remember_device(&self, user_id: &str, device_mac: &[u8], now: OffsetDateTime) -> Result<DeviceSeen>;
    /// The user's language preference (`ja` or `en`) for pages and mails. NotFound without the user.
    async fn set_user_locale(&self, user_id: &str, locale: &str) -> Result<()>;
    /// Opens health data in this session until `until` (`None` closes it again).
    async fn set_session_step_up(&self, id_hash: &[u8], until: Option<OffsetDateTime>) -> Result<()>;
    /// Closes health data in every session of the user (e.g. the health-data consent withdrawn).
    async fn close_user_step_ups(&self, user_id: &str) -> Result<()>;

    // F5 step-up (secret question)
    async fn step_up_failures(&self, user_id: &str) -> Result<Option<StepUpFailures>>;
    /// Counts one answer *before* it is checked, atomically, so that concurrent answers can
    /// never pass the lock together: a running lock counts nothing and answers
    /// [`StepUpAttempt::Locked`]; a lock that has ended starts the count again at one; the
    /// answer that reaches `max_failures` is still counted (and may be checked) but locks
    /// until `lock_until` unless it is correct ([`Users::open_step_up`]).
    async fn count_step_up_answer(
        &self,
        user_id: &str,
        now: OffsetDateTime,
        max_failures: i32,
        lock_until: OffsetDateTime,
    ) -> Result<StepUpAttempt>;
    /// After a correct answer, in one transaction: forgets the member's counted answers and
    /// lock, and opens health data in the session `id_hash` until `until`.
    async fn open_step_up(&self, user_id: &str, id_hash: &[u8], until: OffsetDateTime) -> Result<()>;
}

const USER_COLUMNS: &str = "id, org_id, email_enc, password_hash, locale, created_at, password_changed_at";
const SESSION_COLUMNS: &str = "id_hash, user_id, kind, created_at, last_seen_at, expires_at, step_up_until, device";

/// One answer, counted unless a lock is running (then no row is returned): every SET
/// expression sees the old row, so `step_up_failures.locked_until <= $2` is a lock that is
/// over. The upsert takes the row's lock (PostgreSQL re-checks the WHERE on the newest
/// version; SQLite writes one at a time), so concurrent answers are counted one by one.
const COUNT_STEP_UP_ANSWER: &str = "INSERT INTO step_up_failures (user_id, failures, locked_until, updated_at) \
     VALUES ($1, 1, CASE WHEN 1 >= CAST($3 AS INTEGER) THEN CAST($4 AS BIGINT) ELSE NULL END, $2) \
     ON CONFLICT (user_id) DO UPDATE SET \
       failures = CASE WHEN step_up_failures.locked_until <= $2 THEN 1 ELSE step_up_failures.failures + 1 END, \
       locked_until = CASE \
         WHEN (CASE WHEN step_up_failures.locked_until <= $2 THEN 1 ELSE step_up_failures.failures + 1 END) \
              >= CAST($3 AS INTEGER) THEN CAST($4 AS BIGINT) \
         ELSE NULL END, \
       updated_at = $2 \
     WHERE step_up_failures.locked_until IS NULL OR step_up_failures.locked_until <= $2 \
     RETURNING failures, locked_until";

macro_rules! sql_users {
    ($be:ident, $store:ty, $db:ty) => {
        use super::*;
        use crate::flows::$be::apply_flow;

        /// Ends every session of `user_id` but `keep` (after a password or address change).
        async fn end_other_sessions<'c, E>(executor: E, user_id: &str, keep: &[u8]) -> Result<()>
        where
            E: sqlx::Executor<'c, Database = $db>,
        {
            sqlx::query("DELETE FROM sessions WHERE user_id = $1 AND id_hash <> $2")
                .bind(user_id)
                .bind(keep)
                .execute(executor)
                .await?;
            Ok(())
        }

        /// Closes health data in every session of `user_id` (on the pool, or in a binding
        /// withdrawal's transaction).
        pub(crate) async fn close_step_ups<'c, E>(executor: E, user_id: &str) -> Result<()>
        where
            E: sqlx::Executor<'c, Database = $db>,
        {
            sqlx::query("UPDATE sessions SET step_up_until = NULL WHERE user_id = $1")
                .bind(user_id)
                .execute(executor)
                .await?;
            Ok(())
        }

        #[async_trait]
        impl Users for $store {
            #[tracing::instrument(skip_all, fields(user_id = %user.id, org_id = %user.org_id))]
            async fn create_user(
                &self,
                user: &NewUser,
                consents: &[ConsentRecord],
                flow: Option<FlowUpdate<'_>>,
            ) -> Result<()> {
                let mut tx = self.pool.begin().await?;
                // The flow (and the code it uses up) first: a racing twin waits on the flow's
                // row and fails there, before it could hit the unique address.
                if let Some(update) = &flow {
                    apply_flow(&mut tx, update).await?;
                }
                sqlx::query(
                    "INSERT INTO users \
                     (id, org_id, email_index, email_enc, password_hash, locale, created_at, password_changed_at) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $7)",
                )
                .bind(&user.id)
                .bind(&user.org_id)
                .bind(&user.email_index)
                .bind(&user.email_enc)
                .bind(&user.password_hash)
                .bind(&user.locale)
                .bind(to_ts(user.created_at))
                .execute(&mut *tx)
                .await?;
                for c in consents {
                    sqlx::query(
                        "INSERT INTO user_consents (user_id, doc, version, accepted_at) VALUES ($1, $2, $3, $4)",
                    )
                    .bind(&user.id)
                    .bind(&c.doc)
                    .bind(&c.version)
                    .bind(to_ts(c.accepted_at))
                    .execute(&mut *tx)
                    .await?;
                }
                tx.commit().await?;
                Ok(())
            }

            #[tracing::instrument(skip_all)]
            async fn find_user_by_email_index(&self, email_index: &[u8]) -> Result<Option<UserRecord>> {
                let sql = format!("SELECT {USER_COLUMNS} FROM users WHERE email_index = $1");
                Ok(sqlx::query_as(&sql).bind(email_index).fetch_optional(&self.pool).await?)
            }

            #[tracing::instrument(skip_all, fields(user_id = %id))]
            async fn get_user(&self, id: &str) -> Result<Option<UserRecord>> {
                let sql = format!("SELECT {USER_COLUMNS} FROM users WHERE id = $1");
                Ok(sqlx::query_as(&sql).bind(id).fetch_optional(&self.pool).await?)
            }

            #[tracing::instrument(skip_all, fields(user_id = %user_id))]
            async fn user_consents(&self, user_id: &str) -> Result<Vec<ConsentRecord>> {
                let rows = sqlx::query_as(
                    "SELECT doc, version, accepted_at, withdrawn_at FROM user_consents WHERE user_id = $1 \
                     ORDER BY doc, accepted_at",
                )
                .bind(user_id)
                .fetch_all(&self.pool)
                .await?;
                Ok(rows)
            }

            #[tracing::instrument(skip_all, fields(user_id = %user_id))]
            async fn set_password(
                &self,
                user_id: &str,
                password_hash: &str,
                now: OffsetDateTime,
                flow: Option<FlowUpdate<'_>>,
            ) -> Result<()> {
                let mut tx = self.pool.begin().await?;
                if let Some(update) = &flow {
                    apply_flow(&mut tx, update).await?;
                }
                let done = sqlx::query("UPDATE users SET password_hash = $1, password_changed_at = $2 WHERE id = $3")
                    .bind(password_hash)
                    .bind(to_ts(now))
                    .bind(user_id)
                    .execute(&mut *tx)
                    .await?;
                if done.rows_affected() != 1 {
                    return Err(StoreError::NotFound);
                }
                sqlx::query("DELETE FROM sessions WHERE user_id = $1").bind(user_id).execute(&mut *tx).await?;
                tx.commit().await?;
                Ok(())
            }

            #[tracing::instrument(skip_all, fields(user_id = %s.user_id))]
            async fn create_session(&self, s: &SessionRecord) -> Result<()> {
                sqlx::query(
                    "INSERT INTO sessions \
                     (id_hash, user_id, kind, created_at, last_seen_at, expires_at, step_up_until, device) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
                )
                .bind(&s.id_hash)
                .bind(&s.user_id)
                .bind(&s.kind)
                .bind(to_ts(s.created_at))
                .bind(to_ts(s.last_seen_at))
                .bind(to_ts(s.expires_at))
                .bind(s.step_up_until.map(to_ts))
                .bind(&s.device)
                .execute(&self.pool)
                .await?;
                Ok(())
            }

            #[tracing::instrument(skip_all)]
            async fn get_session(&self, id_hash: &[u8]) -> Result<Option<SessionRecord>> {
                let sql = format!("SELECT {SESSION_COLUMNS} FROM sessions WHERE id_hash = $1");
                Ok(sqlx::query_as(&sql).bind(id_hash).fetch_optional(&self.pool).await?)
            }

            #[tracing::instrument(skip_all)]
            async fn touch_session(
                &self,
                id_hash: &[u8],
                now: OffsetDateTime,
                expires_at: OffsetDateTime,
            ) -> Result<()> {
                sqlx::query("UPDATE sessions SET last_seen_at = $1, expires_at = $2 WHERE id_hash = $3")
                    .bind(to_ts(now))
                    .bind(to_ts(expires_at))
                    .bind(id_hash)
                    .execute(&self.pool)
                    .await?;
                Ok(())
            }

            #[tracing::instrument(skip_all)]
            async fn delete_session(&self, id_hash: &[u8]) -> Result<()> {
                sqlx::query("DELETE FROM sessions WHERE id_hash = $1").bind(id_hash).execute(&self.pool).await?;
                Ok(())
            }

            #[tracing::instrument(skip_all, fields(user_id = %user_id))]
            async fn delete_user_sessions(&self, user_id: &str) -> Result<u64> {
                let done = sqlx::query("DELETE FROM sessions WHERE user_id = $1")
                    .bind(user_id)
                    .execute(&self.pool)
                    .await?;
                Ok(done.rows_affected())
            }

            #[tracing::instrument(skip_all)]
            async fn delete_expired_sessions(&self, now: OffsetDateTime) -> Result<u64> {
                let done = sqlx::query("DELETE FROM sessions WHERE expires_at <= $1")
                    .bind(to_ts(now))
                    .execute(&self.pool)
                    .await?;
                Ok(done.rows_affected())
            }

            #[tracing::instrument(skip_all, fields(user_id = %user_id))]
            async fn user_sessions(&self, user_id: &str, now: OffsetDateTime) -> Result<Vec<SessionRecord>> {
                let sql = format!(
                    "SELECT {SESSION_COLUMNS} FROM sessions WHERE user_id = $1 AND expires_at > $2 \
                     ORDER BY last_seen_at DESC, created_at DESC, id_hash"
                );
                Ok(sqlx::query_as(&sql).bind(user_id).bind(to_ts(now)).fetch_all(&self.pool).await?)
            }

            #[tracing::instrument(skip_all, fields(user_id = %user_id))]
            async fn delete_user_session(&self, user_id: &str, id_hash: &[u8]) -> Result<bool> {
                let done = sqlx::query("DELETE FROM sessions WHERE id_hash = $1 AND user_id = $2")
                    .bind(id_hash)
                    .bind(user_id)
                    .execute(&self.pool)
                    .await?;
                Ok(done.rows_affected() > 0)
            }

            #[tracing::instrument(skip_all, fields(user_id = %user_id))]
            async fn change_password(
                &self,
                user_id: &str,
                password_hash: &str,
                now: OffsetDateTime,
                keep: &[u8],
            ) -> Result<()> {
                let mut tx = self.pool.begin().await?;
                let done = sqlx::query("UPDATE users SET password_hash = $1, password_changed_at = $2 WHERE id = $3")
                    .bind(password_hash)
                    .bind(to_ts(now))
                    .bind(user_id)
                    .execute(&mut *tx)
                    .await?;
                if done.rows_affected() != 1 {
                    return Err(StoreError::NotFound);
                }
                end_other_sessions(&mut *tx, user_id, keep).await?;
                tx.commit().await?;
                Ok(())
            }

            #[tracing::instrument(skip_all, fields(user_id = %user_id))]
            async fn set_user_email(
                &self,
                user_id: &str,
                email_index: &[u8],
                email_enc: &[u8],
                flow: Option<FlowUpdate<'_>>,
                keep: &[u8],
            ) -> Result<()> {
                let mut tx = self.pool.begin().await?;
                if let Some(update) = &flow {
                    apply_flow(&mut tx, update).await?;
                }
                let done = sqlx::query("UPDATE users SET email_index = $1, email_enc = $2 WHERE id = $3")
                    .bind(email_index)
                    .bind(email_enc)
                    .bind(user_id)
                    .execute(&mut *tx)
                    .await?;
                if done.rows_affected() != 1 {
                    return Err(StoreError::NotFound);
                }
                end_other_sessions(&mut *tx, user_id, keep).await?;
                tx.commit().await?;
                Ok(())
            }

            #[tracing::instrument(skip_all, fields(user_id = %user_id))]
            async fn remember_device(
                &self,
                user_id: &str,
                device_mac: &[u8],
                now: OffsetDateTime,
            ) -> Result<DeviceSeen> {
                let mut tx = self.pool.begin().await?;
                let known: Option<i32> =
                    sqlx::query_scalar("SELECT 1 FROM known_devices WHERE user_id = $1 AND device_mac = $2")
                        .bind(user_id)
                        .bind(device_mac)
                        .fetch_optional(&mut *tx)
                        .await?;
                let any: Option<i32> = sqlx::query_scalar("SELECT 1 FROM known_devices WHERE user_id = $1 LIMIT 1")
                    .bind(user_id)
                    .fetch_optional(&mut *tx)
                    .await?;
                sqlx::query(
                    "INSERT INTO known_devices (user_id, device_mac, first_seen_at, last_seen_at) \
                     VALUES ($1, $2, $3, $3) \
                     ON CONFLICT (user_id, device_mac) DO UPDATE SET last_seen_at = $3",
                )
                .bind(user_id)
                .bind(device_mac)
                .bind(to_ts(now))
                .execute(&mut *tx)
                .await?;
                tx.commit().await?;
                Ok(match (known, any) {
                    (Some(_), _) => DeviceSeen::Known,
                    (None, any) => DeviceSeen::New { first: any.is_none() },
                })
            }

            #[tracing::instrument(skip_all, fields(user_id = %user_id))]
            async fn set_user_locale(&self, user_id: &str, locale: &str) -> Result<()> {
                let done = sqlx::query("UPDATE users SET locale = $1 WHERE id = $2")
                    .bind(locale)
                    .bind(user_id)
                    .execute(&self.pool)
                    .await?;
                if done.rows_affected() != 1 {
                    return Err(StoreError::NotFound);
                }
                Ok(())
            }

            #[tracing::instrument(skip_all)]
            async fn set_session_step_up(&self, id_hash: &[u8], until: Option<OffsetDateTime>) -> Result<()> {
                sqlx::query("UPDATE sessions SET step_up_until = $1 WHERE id_hash = $2")
                    .bind(until.map(to_ts))
                    .bind(id_hash)
                    .execute(&self.pool)
                    .await?;
                Ok(())
            }

            #[tracing::instrument(skip_all, fields(user_id = %user_id))]
            async fn close_user_step_ups(&self, user_id: &str) -> Result<()> {
                close_step_ups(&self.pool, user_id).await
            }

            #[tracing::instrument(skip_all, fields(user_id = %user_id))]
            async fn step_up_failures(&self, user_id: &str) -> Result<Option<StepUpFailures>> {
                let row = sqlx::query_as("SELECT failures, locked_until FROM step_up_failures WHERE user_id = $1")
                    .bind(user_id)
                    .fetch_optional(&self.pool)
                    .await?;
                Ok(row)
            }

            #[tracing::instrument(skip_all, fields(user_id = %user_id))]
            async fn count_step_up_answer(
                &self,
                user_id: &str,
                now: OffsetDateTime,
                max_failures: i32,
                lock_until: OffsetDateTime,
            ) -> Result<StepUpAttempt> {
                // Not counted means locked, unless a correct answer cleared the row (or the
                // lock ended) between the two statements: then count again.
                for _ in 0..3 {
                    let counted: Option<StepUpFailures> = sqlx::query_as(COUNT_STEP_UP_ANSWER)
                        .bind(user_id)
                        .bind(to_ts(now))
                        .bind(max_failures)
                        .bind(to_ts(lock_until))
                        .fetch_optional(&self.pool)
                        .await?;
                    if let Some(f) = counted {
                        return Ok(StepUpAttempt::Counted(f));
                    }
                    if let Some(until) = self.step_up_failures(user_id).await?.and_then(|f| f.locked_until) {
                        if until > now {
                            return Ok(StepUpAttempt::Locked { until });
                        }
                    }
                }
                Err(StoreError::Conflict)
            }

            #[tracing::instrument(skip_all, fields(user_id = %user_id))]
            async fn open_step_up(&self, user_id: &str, id_hash: &[u8], until: OffsetDateTime) -> Result<()> {
                let mut tx = self.pool.begin().await?;
                sqlx::query("DELETE FROM step_up_failures WHERE user_id = $1").bind(user_id).execute(&mut *tx).await?;
                sqlx::query("UPDATE sessions SET step_up_until = $1 WHERE id_hash = $2 AND user_id = $3")
                    .bind(to_ts(until))
                    .bind(id_hash)
                    .bind(user_id)
                    .execute(&mut *tx)
                    .await?;
                tx.commit().await?;
                Ok(())
            }
        }
    };
}

pub(crate) mod sqlite {
    sql_users!(sqlite, crate::sqlite::SqliteStore, sqlx::Sqlite);
}

pub(crate) mod postgres {
    sql_users!(postgres, crate::postgres::PgStore, sqlx::Postgres);
}
