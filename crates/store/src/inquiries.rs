//! The customer center (F6): inquiries from members and visitors, and operators' replies.
//! Each change goes with its mail (through the outbox) and its audit row in one transaction.

use async_trait::async_trait;
use time::OffsetDateTime;

use crate::operators::NewAuditEntry;
use crate::outbox::NewMail;
use crate::row::{to_ts, OptUnixTime, UnixTime};
use crate::{Result, StoreError};

/// An inquiry to the customer center (F6). The contact email and the message are sealed by
/// the application; `user_id` is set only when a signed-in member chose to attach the account.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
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
    #[sqlx(try_from = "UnixTime")]
    pub created_at: OffsetDateTime,
    #[sqlx(try_from = "UnixTime")]
    pub updated_at: OffsetDateTime,
    #[sqlx(try_from = "OptUnixTime")]
    pub closed_at: Option<OffsetDateTime>,
}

/// An operator's reply to an inquiry; the text is sealed by the application.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct InquiryReply {
    pub id: String,
    pub inquiry_id: String,
    pub operator_id: String,
    pub body_enc: Vec<u8>,
    #[sqlx(try_from = "UnixTime")]
    pub created_at: OffsetDateTime,
}

#[async_trait]
pub trait Inquiries: Send + Sync {
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
    /// Up to `limit` inquiries with this member's account attached, newest first.
    async fn inquiries_of_user(&self, user_id: &str, limit: i64) -> Result<Vec<InquiryRecord>>;
    /// The inquiries whose id starts with `id_prefix` (matched exactly, character for
    /// character: `%` and `_` mean themselves), newest first: the look-up of a 受付番号, the
    /// first characters of the id. An empty prefix finds nothing.
    async fn find_inquiries_by_id_prefix(&self, id_prefix: &str) -> Result<Vec<InquiryRecord>>;
}

const COLUMNS: &str =
    "id, user_id, category, email_enc, message_enc, locale, status, created_at, updated_at, closed_at";

macro_rules! sql_inquiries {
    ($be:ident, $store:ty, $db:ty) => {
        use super::*;
        use crate::operators::$be::insert_audit;
        use crate::outbox::$be::insert_mail;

        /// Why an update of a not-closed inquiry touched no row: it is missing or closed.
        async fn missing_or_closed<'c, E>(executor: E, id: &str) -> StoreError
        where
            E: sqlx::Executor<'c, Database = $db>,
        {
            match sqlx::query("SELECT status FROM inquiries WHERE id = $1").bind(id).fetch_optional(executor).await {
                Ok(Some(_)) => StoreError::Conflict,
                Ok(None) => StoreError::NotFound,
                Err(e) => e.into(),
            }
        }

        #[async_trait]
        impl Inquiries for $store {
            #[tracing::instrument(skip_all, fields(inquiry_id = %q.id, mail.id = %mail.id))]
            async fn create_inquiry(&self, q: &InquiryRecord, mail: &NewMail) -> Result<()> {
                let mut tx = self.pool.begin().await?;
                sqlx::query(
                    "INSERT INTO inquiries \
                     (id, user_id, category, email_enc, message_enc, locale, status, created_at, updated_at, \
                      closed_at) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
                )
                .bind(&q.id)
                .bind(&q.user_id)
                .bind(&q.category)
                .bind(&q.email_enc)
                .bind(&q.message_enc)
                .bind(&q.locale)
                .bind(&q.status)
                .bind(to_ts(q.created_at))
                .bind(to_ts(q.updated_at))
                .bind(q.closed_at.map(to_ts))
                .execute(&mut *tx)
                .await?;
                insert_mail(&mut *tx, mail).await?;
                tx.commit().await?;
                Ok(())
            }

            #[tracing::instrument(skip_all, fields(limit = limit))]
            async fn list_inquiries(&self, limit: i64) -> Result<Vec<InquiryRecord>> {
                let sql = format!(
                    "SELECT {COLUMNS} FROM inquiries \
                     ORDER BY CASE WHEN status = 'closed' THEN 1 ELSE 0 END, created_at DESC, id DESC LIMIT $1"
                );
                Ok(sqlx::query_as(&sql).bind(limit).fetch_all(&self.pool).await?)
            }

            #[tracing::instrument(skip_all, fields(inquiry_id = %id))]
            async fn get_inquiry(&self, id: &str) -> Result<Option<(InquiryRecord, Vec<InquiryReply>)>> {
                let sql = format!("SELECT {COLUMNS} FROM inquiries WHERE id = $1");
                let Some(inquiry) = sqlx::query_as(&sql).bind(id).fetch_optional(&self.pool).await? else {
                    return Ok(None);
                };
                let replies = sqlx::query_as(
                    "SELECT id, inquiry_id, operator_id, body_enc, created_at FROM inquiry_replies \
                     WHERE inquiry_id = $1 ORDER BY created_at, id",
                )
                .bind(id)
                .fetch_all(&self.pool)
                .await?;
                Ok(Some((inquiry, replies)))
            }

            #[tracing::instrument(skip_all, fields(inquiry_id = %reply.inquiry_id, reply_id = %reply.id, operator_id = %reply.operator_id, mail.id = %mail.id))]
            async fn reply_inquiry(&self, reply: &InquiryReply, mail: &NewMail, audit: &NewAuditEntry) -> Result<()> {
                let mut tx = self.pool.begin().await?;
                let done = sqlx::query(
                    "UPDATE inquiries SET status = 'answered', updated_at = $1 WHERE id = $2 AND status <> 'closed'",
                )
                .bind(to_ts(reply.created_at))
                .bind(&reply.inquiry_id)
                .execute(&mut *tx)
                .await?;
                if done.rows_affected() != 1 {
                    return Err(missing_or_closed(&mut *tx, &reply.inquiry_id).await);
                }
                sqlx::query(
                    "INSERT INTO inquiry_replies (id, inquiry_id, operator_id, body_enc, created_at) \
                     VALUES ($1, $2, $3, $4, $5)",
                )
                .bind(&reply.id)
                .bind(&reply.inquiry_id)
                .bind(&reply.operator_id)
                .bind(&reply.body_enc)
                .bind(to_ts(reply.created_at))
                .execute(&mut *tx)
                .await?;
                insert_mail(&mut *tx, mail).await?;
                insert_audit(&mut *tx, &self.chain_key(), audit).await?;
                tx.commit().await?;
                Ok(())
            }

            #[tracing::instrument(skip_all, fields(inquiry_id = %id))]
            async fn close_inquiry(&self, id: &str, now: OffsetDateTime, audit: &NewAuditEntry) -> Result<()> {
                let mut tx = self.pool.begin().await?;
                let done = sqlx::query(
                    "UPDATE inquiries SET status = 'closed', updated_at = $1, closed_at = $1 \
                     WHERE id = $2 AND status <> 'closed'",
                )
                .bind(to_ts(now))
                .bind(id)
                .execute(&mut *tx)
                .await?;
                if done.rows_affected() != 1 {
                    return Err(missing_or_closed(&mut *tx, id).await);
                }
                insert_audit(&mut *tx, &self.chain_key(), audit).await?;
                tx.commit().await?;
                Ok(())
            }

            #[tracing::instrument(skip_all, fields(user_id = %user_id, limit = limit))]
            async fn inquiries_of_user(&self, user_id: &str, limit: i64) -> Result<Vec<InquiryRecord>> {
                let sql = format!(
                    "SELECT {COLUMNS} FROM inquiries WHERE user_id = $1 ORDER BY created_at DESC, id DESC LIMIT $2"
                );
                Ok(sqlx::query_as(&sql).bind(user_id).bind(limit).fetch_all(&self.pool).await?)
            }

            #[tracing::instrument(skip_all)]
            async fn find_inquiries_by_id_prefix(&self, id_prefix: &str) -> Result<Vec<InquiryRecord>> {
                if id_prefix.is_empty() {
                    return Ok(Vec::new());
                }
                // substr, not LIKE: the prefix's characters mean themselves.
                let sql = format!(
                    "SELECT {COLUMNS} FROM inquiries WHERE substr(id, 1, length($1)) = $1 \
                     ORDER BY created_at DESC, id DESC"
                );
                Ok(sqlx::query_as(&sql).bind(id_prefix).fetch_all(&self.pool).await?)
            }
        }
    };
}

mod sqlite {
    sql_inquiries!(sqlite, crate::sqlite::SqliteStore, sqlx::Sqlite);
}

mod postgres {
    sql_inquiries!(postgres, crate::postgres::PgStore, sqlx::Postgres);
}
