//! Passkeys (WebAuthn credentials) members register after 健診・医療アクセス認証 and use as the
//! step-up before health data. The credential itself (public key, counter, flags) is sealed by
//! the application; the raw credential id is kept in the clear only to refuse registering one
//! credential twice (it is public: the authenticator sends it with every assertion).

use async_trait::async_trait;
use time::OffsetDateTime;

use crate::row::{to_ts, OptUnixTime, UnixTime};
use crate::{Result, StoreError};

#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct PasskeyRecord {
    pub id: String,
    pub user_id: String,
    pub credential_id: Vec<u8>,
    /// The sealed credential.
    pub data_enc: Vec<u8>,
    #[sqlx(try_from = "UnixTime")]
    pub created_at: OffsetDateTime,
    #[sqlx(try_from = "OptUnixTime")]
    pub last_used_at: Option<OffsetDateTime>,
}

#[async_trait]
pub trait Passkeys: Send + Sync {
    /// [`StoreError::Duplicate`] when the credential is registered already.
    async fn insert_passkey(&self, passkey: &PasskeyRecord) -> Result<()>;
    /// The member's passkeys, oldest first.
    async fn passkeys_of_user(&self, user_id: &str) -> Result<Vec<PasskeyRecord>>;
    /// After a use: the re-sealed credential (its counter moved) and when.
    async fn passkey_used(&self, id: &str, data_enc: &[u8], at: OffsetDateTime) -> Result<()>;
    /// Removes one of the member's passkeys; [`StoreError::NotFound`] when it is not theirs.
    async fn delete_passkey(&self, user_id: &str, id: &str) -> Result<()>;
}

const COLUMNS: &str = "id, user_id, credential_id, data_enc, created_at, last_used_at";

macro_rules! sql_passkeys {
    ($store:ty) => {
        use super::*;

        #[async_trait]
        impl Passkeys for $store {
            #[tracing::instrument(skip_all, fields(passkey_id = %p.id, user_id = %p.user_id))]
            async fn insert_passkey(&self, p: &PasskeyRecord) -> Result<()> {
                sqlx::query(
                    "INSERT INTO passkeys (id, user_id, credential_id, data_enc, created_at, last_used_at) \
                     VALUES ($1, $2, $3, $4, $5, $6)",
                )
                .bind(&p.id)
                .bind(&p.user_id)
                .bind(&p.credential_id)
                .bind(&p.data_enc)
                .bind(to_ts(p.created_at))
                .bind(p.last_used_at.map(to_ts))
                .execute(&self.pool)
                .await?;
                Ok(())
            }

            #[tracing::instrument(skip_all, fields(user_id = %user_id))]
            async fn passkeys_of_user(&self, user_id: &str) -> Result<Vec<PasskeyRecord>> {
                let sql = format!("SELECT {COLUMNS} FROM passkeys WHERE user_id = $1 ORDER BY created_at, id");
                Ok(sqlx::query_as(&sql).bind(user_id).fetch_all(&self.pool).await?)
            }

            #[tracing::instrument(skip_all, fields(passkey_id = %id))]
            async fn passkey_used(&self, id: &str, data_enc: &[u8], at: OffsetDateTime) -> Result<()> {
                sqlx::query("UPDATE passkeys SET data_enc = $1, last_used_at = $2 WHERE id = $3")
                    .bind(data_enc)
                    .bind(to_ts(at))
                    .bind(id)
                    .execute(&self.pool)
                    .await?;
                Ok(())
            }

            #[tracing::instrument(skip_all, fields(user_id = %user_id, passkey_id = %id))]
            async fn delete_passkey(&self, user_id: &str, id: &str) -> Result<()> {
                let done = sqlx::query("DELETE FROM passkeys WHERE id = $1 AND user_id = $2")
                    .bind(id)
                    .bind(user_id)
                    .execute(&self.pool)
                    .await?;
                if done.rows_affected() == 1 {
                    Ok(())
                } else {
                    Err(StoreError::NotFound)
                }
            }
        }
    };
}

mod sqlite {
    sql_passkeys!(crate::sqlite::SqliteStore);
}

mod postgres {
    sql_passkeys!(crate::postgres::PgStore);
}
