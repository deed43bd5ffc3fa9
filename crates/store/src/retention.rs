//! Retention: the purges that keep personal data no longer than it is needed. Each one is a
//! single statement (or, for inquiries, one transaction), so every node may run them at once.
//! The periods are the application's (`app::config::Config::*_retention_days`); these methods
//! take the instant before which something is old enough to go.
//!
//! Expired flows, sessions, capture tokens and rate-limit windows have their purges in their
//! own aggregates; what is here is what those do not cover.

use async_trait::async_trait;
use time::OffsetDateTime;

use crate::ekyc::EkycRecord;
use crate::row::to_ts;
use crate::Result;

#[async_trait]
pub trait Retention: Send + Sync {
    /// Deletes the mails sent (or dropped unsent, see `Outbox::drop_mail`) at or before
    /// `sent_before` (their bodies hold one-time codes). A pending mail is never deleted,
    /// however old.
    async fn delete_sent_mails(&self, sent_before: OffsetDateTime) -> Result<u64>;
    /// Deletes the one-time codes used, voided or expired at or before `before`. A live code
    /// (not used, not voided, not expired at `before`) stays.
    async fn delete_dead_codes(&self, before: OffsetDateTime) -> Result<u64>;
    /// Deletes the inquiries closed at or before `closed_before`, with their replies. Open and
    /// answered ones stay; the audit log names inquiries by id only and is not touched.
    async fn delete_closed_inquiries(&self, closed_before: OffsetDateTime) -> Result<u64>;
    /// Deletes the members' sessions begun at or before `begun_before` — past their absolute
    /// lifetime whatever their stored expiry says.
    async fn delete_sessions_begun_before(&self, begun_before: OffsetDateTime) -> Result<u64>;
    /// The same for the operators' console sessions.
    async fn delete_operator_sessions_begun_before(&self, begun_before: OffsetDateTime) -> Result<u64>;
    /// Abandoned eKYC applications: open, never submitted, last updated at or before
    /// `updated_before`, and still holding an image not deleted yet; least recently updated
    /// first, at most `limit`. Once their images are deleted they are not found again, until
    /// the member captures anew.
    async fn abandoned_ekyc_applications(&self, updated_before: OffsetDateTime, limit: i64) -> Result<Vec<EkycRecord>>;
}

macro_rules! sql_retention {
    ($store:ty) => {
        use super::*;

        #[async_trait]
        impl Retention for $store {
            #[tracing::instrument(skip_all)]
            async fn delete_sent_mails(&self, sent_before: OffsetDateTime) -> Result<u64> {
                let done = sqlx::query("DELETE FROM mail_outbox WHERE (sent_at IS NOT NULL AND sent_at <= $1) OR (dropped_at IS NOT NULL AND dropped_at <= $1)")
                    .bind(to_ts(sent_before))
                    .execute(&self.pool)
                    .await?;
                Ok(done.rows_affected())
            }

            #[tracing::instrument(skip_all)]
            async fn delete_dead_codes(&self, before: OffsetDateTime) -> Result<u64> {
                let done = sqlx::query(
                    "DELETE FROM one_time_codes WHERE expires_at <= $1 OR consumed_at <= $1 OR voided_at <= $1",
                )
                .bind(to_ts(before))
                .execute(&self.pool)
                .await?;
                Ok(done.rows_affected())
            }

            #[tracing::instrument(skip_all)]
            async fn delete_closed_inquiries(&self, closed_before: OffsetDateTime) -> Result<u64> {
                const CLOSED: &str = "SELECT id FROM inquiries WHERE status = 'closed' AND closed_at <= $1";
                let mut tx = self.pool.begin().await?;
                // The replies go with their inquiry (the foreign key cascades too; explicit, so
                // nothing depends on it).
                sqlx::query(&format!("DELETE FROM inquiry_replies WHERE inquiry_id IN ({CLOSED})"))
                    .bind(to_ts(closed_before))
                    .execute(&mut *tx)
                    .await?;
                let done = sqlx::query("DELETE FROM inquiries WHERE status = 'closed' AND closed_at <= $1")
                    .bind(to_ts(closed_before))
                    .execute(&mut *tx)
                    .await?;
                tx.commit().await?;
                Ok(done.rows_affected())
            }

            #[tracing::instrument(skip_all)]
            async fn delete_sessions_begun_before(&self, begun_before: OffsetDateTime) -> Result<u64> {
                let done = sqlx::query("DELETE FROM sessions WHERE created_at <= $1")
                    .bind(to_ts(begun_before))
                    .execute(&self.pool)
                    .await?;
                Ok(done.rows_affected())
            }

            #[tracing::instrument(skip_all)]
            async fn delete_operator_sessions_begun_before(&self, begun_before: OffsetDateTime) -> Result<u64> {
                let done = sqlx::query("DELETE FROM operator_sessions WHERE created_at <= $1")
                    .bind(to_ts(begun_before))
                    .execute(&self.pool)
                    .await?;
                Ok(done.rows_affected())
            }

            #[tracing::instrument(skip_all, fields(limit = limit))]
            async fn abandoned_ekyc_applications(
                &self,
                updated_before: OffsetDateTime,
                limit: i64,
            ) -> Result<Vec<EkycRecord>> {
                let rows = sqlx::query_as(
                    "SELECT a.id, a.user_id, a.org_id, a.state, a.open, a.data, a.version, a.created_at, \
                       a.updated_at, a.submitted_at, a.decided_at, a.sampled \
                     FROM ekyc_applications a \
                     WHERE a.open = 1 AND a.submitted_at IS NULL AND a.updated_at <= $1 \
                       AND EXISTS (SELECT 1 FROM ekyc_images i \
                                   WHERE i.application_id = a.id AND i.deleted_at IS NULL) \
                     ORDER BY a.updated_at, a.id LIMIT $2",
                )
                .bind(to_ts(updated_before))
                .bind(limit)
                .fetch_all(&self.pool)
                .await?;
                Ok(rows)
            }
        }
    };
}

mod sqlite {
    sql_retention!(crate::sqlite::SqliteStore);
}

mod postgres {
    sql_retention!(crate::postgres::PgStore);
}
