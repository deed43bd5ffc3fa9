//! eKYC applications (F4): the applications with their versions, their images (the bytes are
//! sealed in the object store; this database keeps ids and hashes) and the one-time capture
//! tokens. Reviewers' decisions are in [`operators`](crate::operators).

use async_trait::async_trait;
use time::OffsetDateTime;

use crate::row::{to_ts, IntFlag, OptUnixTime, UnixTime};
use crate::{Result, StoreError};

/// An eKYC application (F4). The application seals its details in `data`; the columns serve
/// the review queue, the one-open-application rule and retention.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct EkycRecord {
    pub id: String,
    pub user_id: String,
    pub org_id: String,
    pub state: String,
    /// Not yet completed, approved or rejected: a member has at most one open application.
    #[sqlx(try_from = "IntFlag")]
    pub open: bool,
    pub data: Vec<u8>,
    /// Optimistic concurrency: an update must carry the stored version.
    pub version: i64,
    #[sqlx(try_from = "UnixTime")]
    pub created_at: OffsetDateTime,
    #[sqlx(try_from = "UnixTime")]
    pub updated_at: OffsetDateTime,
    #[sqlx(try_from = "OptUnixTime")]
    pub submitted_at: Option<OffsetDateTime>,
    #[sqlx(try_from = "OptUnixTime")]
    pub decided_at: Option<OffsetDateTime>,
    /// An automatic completion waiting for a reviewer's look afterwards (sampled).
    #[sqlx(try_from = "IntFlag")]
    pub sampled: bool,
}

/// An image of an eKYC application; the bytes are sealed in the object store under `id`.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct EkycImage {
    pub id: String,
    pub application_id: String,
    /// e.g. `document_front`, `selfie_frontal`.
    pub kind: String,
    /// SHA-256 of the plaintext image (same-image checks, integrity).
    pub sha256: Vec<u8>,
    pub size: i64,
    #[sqlx(try_from = "UnixTime")]
    pub created_at: OffsetDateTime,
    #[sqlx(try_from = "OptUnixTime")]
    pub deleted_at: Option<OffsetDateTime>,
}

#[async_trait]
pub trait Ekyc: Send + Sync {
    /// [`StoreError::Duplicate`] when the member already has an open application.
    async fn insert_ekyc(&self, app: &EkycRecord) -> Result<()>;
    async fn get_ekyc(&self, id: &str) -> Result<Option<EkycRecord>>;
    /// The member's newest application.
    async fn latest_ekyc_of_user(&self, user_id: &str) -> Result<Option<EkycRecord>>;
    /// Up to `limit` of the member's applications, newest first (the console's history).
    async fn ekyc_of_user(&self, user_id: &str, limit: i64) -> Result<Vec<EkycRecord>>;
    /// The applications whose id starts with `id_prefix` (matched exactly, character for
    /// character: the 受付番号 of a receipt mail), newest first; none for an empty prefix.
    async fn find_ekyc_by_id_prefix(&self, id_prefix: &str) -> Result<Vec<EkycRecord>>;
    /// Writes `app` if the stored version is `app.version` (the stored version becomes one
    /// more); [`StoreError::Conflict`] otherwise — e.g. two reviewers deciding one case.
    async fn update_ekyc(&self, app: &EkycRecord) -> Result<()>;
    /// [`Ekyc::update_ekyc`] and, in the same transaction, queues `mail` (the 申請 receipt):
    /// the member gets the receipt exactly when the application was written.
    async fn update_ekyc_with_mail(&self, app: &EkycRecord, mail: &crate::NewMail) -> Result<()>;
    /// Applications in `state`, oldest submission first.
    async fn ekyc_queue(&self, state: &str, limit: i64) -> Result<Vec<EkycRecord>>;
    /// Sampled automatic completions waiting for a reviewer's look, oldest submission first.
    async fn ekyc_samples(&self, limit: i64) -> Result<Vec<EkycRecord>>;
    async fn add_ekyc_image(&self, image: &EkycImage) -> Result<()>;
    /// The application's images (deleted ones included, with `deleted_at`), oldest first.
    async fn ekyc_images(&self, application_id: &str) -> Result<Vec<EkycImage>>;
    /// Images not deleted yet of applications decided at or before `decided_before`.
    async fn ekyc_images_to_delete(&self, decided_before: OffsetDateTime, limit: i64) -> Result<Vec<EkycImage>>;
    async fn mark_ekyc_image_deleted(&self, id: &str, now: OffsetDateTime) -> Result<()>;
    async fn issue_capture_token(
        &self,
        token_hash: &[u8],
        application_id: &str,
        purpose: &str,
        expires_at: OffsetDateTime,
    ) -> Result<()>;
    /// Whether a capture token exists for this application and purpose, was not used and has
    /// not expired at `now` (a look only: the upload uses it up with
    /// [`Ekyc::update_ekyc_using_token`]).
    async fn capture_token_usable(
        &self,
        token_hash: &[u8],
        application_id: &str,
        purpose: &str,
        now: OffsetDateTime,
    ) -> Result<bool>;
    /// [`Ekyc::update_ekyc`] and, in the same transaction, uses up the capture token of the
    /// upload that made the change (found under any of `token.hashes`): the upload counts
    /// whole or not at all. [`StoreError::Conflict`] (nothing written) when the version moved
    /// on or the token is used, expired or unknown.
    async fn update_ekyc_using_token(&self, app: &EkycRecord, token: CaptureTokenUse<'_>) -> Result<()>;
    /// Deletes capture tokens that expired before `before` (used ones expire too).
    async fn delete_stale_capture_tokens(&self, before: OffsetDateTime) -> Result<u64>;
}

/// The capture token an upload uses up (see [`Ekyc::update_ekyc_using_token`]).
#[derive(Debug, Clone, Copy)]
pub struct CaptureTokenUse<'a> {
    /// The token's MAC under each configured key (it was stored under one of them).
    pub hashes: &'a [Vec<u8>],
    pub purpose: &'a str,
    pub at: OffsetDateTime,
}

const COLUMNS: &str =
    "id, user_id, org_id, state, open, data, version, created_at, updated_at, submitted_at, decided_at, sampled";
const IMAGE_COLUMNS: &str = "id, application_id, kind, sha256, size, created_at, deleted_at";

macro_rules! sql_ekyc {
    ($be:ident, $store:ty, $db:ty) => {
        use super::*;

        /// Writes an application if the stored version is `a.version` (on the pool, or in the
        /// transaction of a review decision).
        pub(crate) async fn apply_ekyc<'c, E>(executor: E, a: &EkycRecord) -> Result<()>
        where
            E: sqlx::Executor<'c, Database = $db>,
        {
            let done = sqlx::query(
                "UPDATE ekyc_applications SET state = $1, open = $2, data = $3, version = version + 1, \
                 updated_at = $4, submitted_at = $5, decided_at = $6, sampled = $9 WHERE id = $7 AND version = $8",
            )
            .bind(&a.state)
            .bind(i64::from(a.open))
            .bind(&a.data)
            .bind(to_ts(a.updated_at))
            .bind(a.submitted_at.map(to_ts))
            .bind(a.decided_at.map(to_ts))
            .bind(&a.id)
            .bind(a.version)
            .bind(i64::from(a.sampled))
            .execute(executor)
            .await?;
            if done.rows_affected() == 1 {
                Ok(())
            } else {
                Err(StoreError::Conflict)
            }
        }

        #[async_trait]
        impl Ekyc for $store {
            #[tracing::instrument(skip_all, fields(application_id = %a.id, user_id = %a.user_id))]
            async fn insert_ekyc(&self, a: &EkycRecord) -> Result<()> {
                sqlx::query(
                    "INSERT INTO ekyc_applications \
                     (id, user_id, org_id, state, open, data, version, created_at, updated_at, \
                      submitted_at, decided_at, sampled) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)",
                )
                .bind(&a.id)
                .bind(&a.user_id)
                .bind(&a.org_id)
                .bind(&a.state)
                .bind(i64::from(a.open))
                .bind(&a.data)
                .bind(a.version)
                .bind(to_ts(a.created_at))
                .bind(to_ts(a.updated_at))
                .bind(a.submitted_at.map(to_ts))
                .bind(a.decided_at.map(to_ts))
                .bind(i64::from(a.sampled))
                .execute(&self.pool)
                .await?;
                Ok(())
            }

            #[tracing::instrument(skip_all, fields(application_id = %id))]
            async fn get_ekyc(&self, id: &str) -> Result<Option<EkycRecord>> {
                let sql = format!("SELECT {COLUMNS} FROM ekyc_applications WHERE id = $1");
                Ok(sqlx::query_as(&sql).bind(id).fetch_optional(&self.pool).await?)
            }

            #[tracing::instrument(skip_all, fields(user_id = %user_id))]
            async fn latest_ekyc_of_user(&self, user_id: &str) -> Result<Option<EkycRecord>> {
                let sql = format!(
                    "SELECT {COLUMNS} FROM ekyc_applications WHERE user_id = $1 \
                     ORDER BY created_at DESC, id DESC LIMIT 1"
                );
                Ok(sqlx::query_as(&sql).bind(user_id).fetch_optional(&self.pool).await?)
            }

            #[tracing::instrument(skip_all, fields(user_id = %user_id, limit = limit))]
            async fn ekyc_of_user(&self, user_id: &str, limit: i64) -> Result<Vec<EkycRecord>> {
                let sql = format!(
                    "SELECT {COLUMNS} FROM ekyc_applications WHERE user_id = $1 \
                     ORDER BY created_at DESC, id DESC LIMIT $2"
                );
                Ok(sqlx::query_as(&sql).bind(user_id).bind(limit).fetch_all(&self.pool).await?)
            }

            #[tracing::instrument(skip_all)]
            async fn find_ekyc_by_id_prefix(&self, id_prefix: &str) -> Result<Vec<EkycRecord>> {
                if id_prefix.is_empty() {
                    return Ok(Vec::new());
                }
                // substr, not LIKE: the prefix's characters mean themselves.
                let sql = format!(
                    "SELECT {COLUMNS} FROM ekyc_applications WHERE substr(id, 1, length($1)) = $1 \
                     ORDER BY created_at DESC, id DESC LIMIT 20"
                );
                Ok(sqlx::query_as(&sql).bind(id_prefix).fetch_all(&self.pool).await?)
            }

            #[tracing::instrument(skip_all, fields(application_id = %a.id))]
            async fn update_ekyc(&self, a: &EkycRecord) -> Result<()> {
                apply_ekyc(&self.pool, a).await
            }

            #[tracing::instrument(skip_all, fields(application_id = %a.id))]
            async fn update_ekyc_with_mail(&self, a: &EkycRecord, mail: &crate::NewMail) -> Result<()> {
                let mut tx = self.pool.begin().await?;
                apply_ekyc(&mut *tx, a).await?;
                crate::outbox::$be::insert_mail(&mut *tx, mail).await?;
                tx.commit().await?;
                Ok(())
            }

            #[tracing::instrument(skip_all, fields(state = %state, limit = limit))]
            async fn ekyc_queue(&self, state: &str, limit: i64) -> Result<Vec<EkycRecord>> {
                let sql = format!(
                    "SELECT {COLUMNS} FROM ekyc_applications WHERE state = $1 ORDER BY submitted_at, id LIMIT $2"
                );
                Ok(sqlx::query_as(&sql).bind(state).bind(limit).fetch_all(&self.pool).await?)
            }

            #[tracing::instrument(skip_all, fields(limit = limit))]
            async fn ekyc_samples(&self, limit: i64) -> Result<Vec<EkycRecord>> {
                let sql = format!(
                    "SELECT {COLUMNS} FROM ekyc_applications WHERE sampled = 1 ORDER BY submitted_at, id LIMIT $1"
                );
                Ok(sqlx::query_as(&sql).bind(limit).fetch_all(&self.pool).await?)
            }

            #[tracing::instrument(skip_all, fields(image_id = %i.id, application_id = %i.application_id))]
            async fn add_ekyc_image(&self, i: &EkycImage) -> Result<()> {
                sqlx::query(
                    "INSERT INTO ekyc_images (id, application_id, kind, sha256, size, created_at, deleted_at) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7)",
                )
                .bind(&i.id)
                .bind(&i.application_id)
                .bind(&i.kind)
                .bind(&i.sha256)
                .bind(i.size)
                .bind(to_ts(i.created_at))
                .bind(i.deleted_at.map(to_ts))
                .execute(&self.pool)
                .await?;
                Ok(())
            }

            #[tracing::instrument(skip_all, fields(application_id = %application_id))]
            async fn ekyc_images(&self, application_id: &str) -> Result<Vec<EkycImage>> {
                let sql = format!(
                    "SELECT {IMAGE_COLUMNS} FROM ekyc_images WHERE application_id = $1 ORDER BY created_at, id"
                );
                Ok(sqlx::query_as(&sql).bind(application_id).fetch_all(&self.pool).await?)
            }

            #[tracing::instrument(skip_all, fields(limit = limit))]
            async fn ekyc_images_to_delete(
                &self,
                decided_before: OffsetDateTime,
                limit: i64,
            ) -> Result<Vec<EkycImage>> {
                let rows = sqlx::query_as(
                    "SELECT i.id, i.application_id, i.kind, i.sha256, i.size, i.created_at, i.deleted_at \
                     FROM ekyc_images i JOIN ekyc_applications a ON a.id = i.application_id \
                     WHERE i.deleted_at IS NULL AND a.decided_at IS NOT NULL AND a.decided_at <= $1 \
                     ORDER BY a.decided_at, i.id LIMIT $2",
                )
                .bind(to_ts(decided_before))
                .bind(limit)
                .fetch_all(&self.pool)
                .await?;
                Ok(rows)
            }

            #[tracing::instrument(skip_all, fields(image_id = %id))]
            async fn mark_ekyc_image_deleted(&self, id: &str, now: OffsetDateTime) -> Result<()> {
                sqlx::query("UPDATE ekyc_images SET deleted_at = $1 WHERE id = $2 AND deleted_at IS NULL")
                    .bind(to_ts(now))
                    .bind(id)
                    .execute(&self.pool)
                    .await?;
                Ok(())
            }

            #[tracing::instrument(skip_all, fields(application_id = %application_id, purpose = %purpose))]
            async fn issue_capture_token(
                &self,
                token_hash: &[u8],
                application_id: &str,
                purpose: &str,
                expires_at: OffsetDateTime,
            ) -> Result<()> {
                sqlx::query(
                    "INSERT INTO ekyc_capture_tokens (token_hash, application_id, purpose, expires_at) \
                     VALUES ($1, $2, $3, $4)",
                )
                .bind(token_hash)
                .bind(application_id)
                .bind(purpose)
                .bind(to_ts(expires_at))
                .execute(&self.pool)
                .await?;
                Ok(())
            }

            #[tracing::instrument(skip_all, fields(application_id = %application_id, purpose = %purpose))]
            async fn capture_token_usable(
                &self,
                token_hash: &[u8],
                application_id: &str,
                purpose: &str,
                now: OffsetDateTime,
            ) -> Result<bool> {
                let found: i64 = sqlx::query_scalar(
                    "SELECT COUNT(*) FROM ekyc_capture_tokens \
                     WHERE token_hash = $1 AND application_id = $2 AND purpose = $3 \
                       AND used_at IS NULL AND expires_at > $4",
                )
                .bind(token_hash)
                .bind(application_id)
                .bind(purpose)
                .bind(to_ts(now))
                .fetch_one(&self.pool)
                .await?;
                Ok(found > 0)
            }

            #[tracing::instrument(skip_all, fields(application_id = %a.id, purpose = %token.purpose))]
            async fn update_ekyc_using_token(&self, a: &EkycRecord, token: CaptureTokenUse<'_>) -> Result<()> {
                let mut tx = self.pool.begin().await?;
                // The token first: of two uploads racing with one token, the second waits on
                // its row and then finds it used.
                let mut used = false;
                for hash in token.hashes {
                    let done = sqlx::query(
                        "UPDATE ekyc_capture_tokens SET used_at = $1 \
                         WHERE token_hash = $2 AND application_id = $3 AND purpose = $4 \
                           AND used_at IS NULL AND expires_at > $1",
                    )
                    .bind(to_ts(token.at))
                    .bind(hash)
                    .bind(&a.id)
                    .bind(token.purpose)
                    .execute(&mut *tx)
                    .await?;
                    if done.rows_affected() == 1 {
                        used = true;
                        break;
                    }
                }
                if !used {
                    return Err(StoreError::Conflict);
                }
                apply_ekyc(&mut *tx, a).await?;
                tx.commit().await?;
                Ok(())
            }

            #[tracing::instrument(skip_all)]
            async fn delete_stale_capture_tokens(&self, before: OffsetDateTime) -> Result<u64> {
                let done = sqlx::query("DELETE FROM ekyc_capture_tokens WHERE expires_at < $1")
                    .bind(to_ts(before))
                    .execute(&self.pool)
                    .await?;
                Ok(done.rows_affected())
            }
        }
    };
}

pub(crate) mod sqlite {
    sql_ekyc!(sqlite, crate::sqlite::SqliteStore, sqlx::Sqlite);
}

pub(crate) mod postgres {
    sql_ekyc!(postgres, crate::postgres::PgStore, sqlx::Postgres);
}
