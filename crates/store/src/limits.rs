//! Rate limits: fixed windows, shared by every node through the database.

use async_trait::async_trait;
use time::OffsetDateTime;

use crate::row::to_ts;
use crate::Result;

#[async_trait]
pub trait RateLimits: Send + Sync {
    /// Counts one hit for `key` in the window of `window` ending now; returns the count
    /// including this hit.
    async fn hit_rate_limit(&self, key: &str, now: OffsetDateTime, window: time::Duration) -> Result<i64>;
    /// The count of `key` in its window if that window is still open at `now`, without a hit.
    async fn rate_limit_count(&self, key: &str, now: OffsetDateTime, window: time::Duration) -> Result<i64>;
    /// Takes one hit back from `key` if its window is still open at `now` and it has any (an
    /// attempt counted before it was checked turned out to be one the limit does not count,
    /// e.g. a successful login).
    async fn refund_rate_limit(&self, key: &str, now: OffsetDateTime, window: time::Duration) -> Result<()>;
    /// Forgets `key` (e.g. failures, after a success).
    async fn clear_rate_limit(&self, key: &str) -> Result<()>;
    async fn delete_stale_rate_limits(&self, before: OffsetDateTime) -> Result<u64>;
}

macro_rules! sql_limits {
    ($store:ty) => {
        use super::*;

        #[async_trait]
        impl RateLimits for $store {
            // No `key` in the span: it may be made of an address or an account.
            #[tracing::instrument(skip_all)]
            async fn hit_rate_limit(&self, key: &str, now: OffsetDateTime, window: time::Duration) -> Result<i64> {
                let count = sqlx::query_scalar(
                    "INSERT INTO rate_limits (key, window_start, count) VALUES ($1, $2, 1) \
                     ON CONFLICT (key) DO UPDATE SET \
                       count = CASE WHEN rate_limits.window_start <= $3 THEN 1 ELSE rate_limits.count + 1 END, \
                       window_start = \
                         CASE WHEN rate_limits.window_start <= $3 THEN $2 ELSE rate_limits.window_start END \
                     RETURNING count",
                )
                .bind(key)
                .bind(to_ts(now))
                .bind(to_ts(now - window))
                .fetch_one(&self.pool)
                .await?;
                Ok(count)
            }

            #[tracing::instrument(skip_all)]
            async fn rate_limit_count(&self, key: &str, now: OffsetDateTime, window: time::Duration) -> Result<i64> {
                let count: Option<i64> =
                    sqlx::query_scalar("SELECT count FROM rate_limits WHERE key = $1 AND window_start > $2")
                        .bind(key)
                        .bind(to_ts(now - window))
                        .fetch_optional(&self.pool)
                        .await?;
                Ok(count.unwrap_or(0))
            }

            #[tracing::instrument(skip_all)]
            async fn refund_rate_limit(&self, key: &str, now: OffsetDateTime, window: time::Duration) -> Result<()> {
                sqlx::query(
                    "UPDATE rate_limits SET count = count - 1 WHERE key = $1 AND window_start > $2 AND count > 0",
                )
                .bind(key)
                .bind(to_ts(now - window))
                .execute(&self.pool)
                .await?;
                Ok(())
            }

            #[tracing::instrument(skip_all)]
            async fn clear_rate_limit(&self, key: &str) -> Result<()> {
                sqlx::query("DELETE FROM rate_limits WHERE key = $1").bind(key).execute(&self.pool).await?;
                Ok(())
            }

            #[tracing::instrument(skip_all)]
            async fn delete_stale_rate_limits(&self, before: OffsetDateTime) -> Result<u64> {
                let done = sqlx::query("DELETE FROM rate_limits WHERE window_start <= $1")
                    .bind(to_ts(before))
                    .execute(&self.pool)
                    .await?;
                Ok(done.rows_affected())
            }
        }
    };
}

mod sqlite {
    sql_limits!(crate::sqlite::SqliteStore);
}

mod postgres {
    sql_limits!(crate::postgres::PgStore);
}
