//! Versioned consent documents (利用規約, プライバシーポリシー, ポイント規約, 顔画像の取扱い,
//! 健診等情報の受領) and the members' consents to them: accepting a version again, withdrawing
//! a purpose consent.
//!
//! A document is platform-wide (`organization` is `None`) or an organization's own; the
//! application picks, per kind, the organization's latest version if it has one, else the
//! platform's latest. The consents themselves are the `user_consents` rows of [`crate::users`].

use async_trait::async_trait;
use time::OffsetDateTime;

use crate::row::{to_ts, UnixTime};
use crate::users::ConsentRecord;
use crate::Result;

/// One published version of a document.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct DocumentRecord {
    /// `platform_terms`, `org_privacy`, `point_terms`, `biometric` or `health_data`.
    pub kind: String,
    /// The organization's own version, or `None` for the platform-wide one.
    pub organization: Option<String>,
    pub version: String,
    pub title: String,
    /// Plain text (rendered escaped, paragraphs split on blank lines).
    pub body: String,
    pub title_en: String,
    pub body_en: String,
    #[sqlx(try_from = "UnixTime")]
    pub published_at: OffsetDateTime,
    /// The operator's id, or `system` for the versions the migration seeds.
    pub published_by: String,
}

#[async_trait]
pub trait Documents: Send + Sync {
    /// Publishes a version ([`crate::StoreError::Duplicate`] if this kind and organization
    /// already have `version`).
    async fn publish_document(&self, doc: &DocumentRecord) -> Result<()>;
    /// Every version of every platform-wide document and of `org_id`'s own, oldest first.
    async fn documents_for_org(&self, org_id: &str) -> Result<Vec<DocumentRecord>>;
    /// Every version of every document, oldest first (the console's list).
    async fn all_documents(&self) -> Result<Vec<DocumentRecord>>;
    /// Records that the member accepted these versions (accepting a withdrawn version again
    /// makes it stand again, at the new time).
    async fn record_consents(&self, user_id: &str, consents: &[ConsentRecord]) -> Result<()>;
    /// Withdraws the member's consent to `doc` (every version not yet withdrawn); returns how
    /// many rows changed.
    async fn withdraw_consent(&self, user_id: &str, doc: &str, now: OffsetDateTime) -> Result<u64>;
}

const DOC_COLUMNS: &str = "kind, organization, version, title, body, title_en, body_en, published_at, published_by";

macro_rules! sql_documents {
    ($store:ty) => {
        use super::*;

        #[async_trait]
        impl Documents for $store {
            #[tracing::instrument(skip_all, fields(kind = %d.kind, version = %d.version))]
            async fn publish_document(&self, d: &DocumentRecord) -> Result<()> {
                sqlx::query(
                    "INSERT INTO documents \
                     (kind, organization, version, title, body, title_en, body_en, published_at, published_by) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
                )
                .bind(&d.kind)
                .bind(&d.organization)
                .bind(&d.version)
                .bind(&d.title)
                .bind(&d.body)
                .bind(&d.title_en)
                .bind(&d.body_en)
                .bind(to_ts(d.published_at))
                .bind(&d.published_by)
                .execute(&self.pool)
                .await?;
                Ok(())
            }

            #[tracing::instrument(skip_all, fields(org_id = %org_id))]
            async fn documents_for_org(&self, org_id: &str) -> Result<Vec<DocumentRecord>> {
                let sql = format!(
                    "SELECT {DOC_COLUMNS} FROM documents WHERE organization IS NULL OR organization = $1 \
                     ORDER BY published_at, version"
                );
                Ok(sqlx::query_as(&sql).bind(org_id).fetch_all(&self.pool).await?)
            }

            #[tracing::instrument(skip_all)]
            async fn all_documents(&self) -> Result<Vec<DocumentRecord>> {
                let sql = format!("SELECT {DOC_COLUMNS} FROM documents ORDER BY published_at, version");
                Ok(sqlx::query_as(&sql).fetch_all(&self.pool).await?)
            }

            #[tracing::instrument(skip_all, fields(user_id = %user_id))]
            async fn record_consents(&self, user_id: &str, consents: &[ConsentRecord]) -> Result<()> {
                let mut tx = self.pool.begin().await?;
                for c in consents {
                    sqlx::query(
                        "INSERT INTO user_consents (user_id, doc, version, accepted_at, withdrawn_at) \
                         VALUES ($1, $2, $3, $4, NULL) \
                         ON CONFLICT (user_id, doc, version) DO UPDATE \
                         SET accepted_at = excluded.accepted_at, withdrawn_at = NULL",
                    )
                    .bind(user_id)
                    .bind(&c.doc)
                    .bind(&c.version)
                    .bind(to_ts(c.accepted_at))
                    .execute(&mut *tx)
                    .await?;
                }
                tx.commit().await?;
                Ok(())
            }

            #[tracing::instrument(skip_all, fields(user_id = %user_id, doc = %doc))]
            async fn withdraw_consent(&self, user_id: &str, doc: &str, now: OffsetDateTime) -> Result<u64> {
                let done = sqlx::query(
                    "UPDATE user_consents SET withdrawn_at = $1 \
                     WHERE user_id = $2 AND doc = $3 AND withdrawn_at IS NULL",
                )
                .bind(to_ts(now))
                .bind(user_id)
                .bind(doc)
                .execute(&self.pool)
                .await?;
                Ok(done.rows_affected())
            }
        }
    };
}

pub(crate) mod sqlite {
    sql_documents!(crate::sqlite::SqliteStore);
}

pub(crate) mod postgres {
    sql_documents!(crate::postgres::PgStore);
}
