//! Column types for the derived row mappers (`#[derive(sqlx::FromRow)]` on the record types).
//!
//! The schema keeps instants as Unix seconds, flags as integers and enumerations as names. A
//! field says how it is stored with `#[sqlx(try_from = "UnixTime")]` (or [`OptUnixTime`],
//! [`IntFlag`], [`HealthKindName`]): the newtype decodes the column, and converts into the
//! record's type.
//!
//! The newtypes check the stored value while decoding it: a value that cannot be what the
//! schema says fails with [`Corrupt`], which sqlx hands back as the source of its
//! `ColumnDecode` error and `From<sqlx::Error> for StoreError` turns into
//! [`StoreError::Corrupt`](crate::StoreError) — never a panic. (The check is not in the
//! `try_from` conversion itself because sqlx 0.8 boxes a conversion's error as an opaque
//! string, which could not be told apart from any other decoding failure.)
//!
//! The newtypes are `pub` only so that the derived (public) `FromRow` impls may name them;
//! this module is private, so callers never see them.

use sqlx::decode::Decode;
use sqlx::error::BoxDynError;
use sqlx::{Database, Type};
use time::OffsetDateTime;

use crate::health::HealthKind;

/// A stored value that cannot be what the schema says it is.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct Corrupt(pub String);

fn instant(seconds: i64) -> Result<OffsetDateTime, Corrupt> {
    OffsetDateTime::from_unix_timestamp(seconds).map_err(|e| Corrupt(format!("timestamp {seconds}: {e}")))
}

/// Implements `Type` for a newtype decoded from `$raw` columns.
macro_rules! stored_as {
    ($newtype:ty, $raw:ty) => {
        impl<DB: Database> Type<DB> for $newtype
        where
            $raw: Type<DB>,
        {
            fn type_info() -> DB::TypeInfo {
                <$raw as Type<DB>>::type_info()
            }

            fn compatible(ty: &DB::TypeInfo) -> bool {
                <$raw as Type<DB>>::compatible(ty)
            }
        }
    };
}

/// An instant stored as Unix seconds (`BIGINT` / `INTEGER`).
#[derive(Debug, Clone, Copy)]
pub struct UnixTime(OffsetDateTime);

stored_as!(UnixTime, i64);

impl<'r, DB: Database> Decode<'r, DB> for UnixTime
where
    i64: Decode<'r, DB>,
{
    fn decode(value: DB::ValueRef<'r>) -> Result<Self, BoxDynError> {
        Ok(UnixTime(instant(<i64 as Decode<DB>>::decode(value)?)?))
    }
}

impl From<UnixTime> for OffsetDateTime {
    fn from(t: UnixTime) -> Self {
        t.0
    }
}

/// An instant that may be missing (`NULL`), stored as Unix seconds.
#[derive(Debug, Clone, Copy)]
pub struct OptUnixTime(Option<OffsetDateTime>);

stored_as!(OptUnixTime, i64);

impl<'r, DB: Database> Decode<'r, DB> for OptUnixTime
where
    i64: Decode<'r, DB>,
{
    fn decode(value: DB::ValueRef<'r>) -> Result<Self, BoxDynError> {
        Ok(OptUnixTime(<Option<i64> as Decode<DB>>::decode(value)?.map(instant).transpose()?))
    }
}

impl From<OptUnixTime> for Option<OffsetDateTime> {
    fn from(t: OptUnixTime) -> Self {
        t.0
    }
}

/// A flag stored as an integer: `1` is true, anything else false.
#[derive(Debug, Clone, Copy, sqlx::Type)]
#[sqlx(transparent)]
pub struct IntFlag(i64);

impl From<IntFlag> for bool {
    fn from(f: IntFlag) -> bool {
        f.0 == 1
    }
}

/// A [`HealthKind`] stored by its name (`health_entries.kind`).
#[derive(Debug, Clone, Copy)]
pub struct HealthKindName(HealthKind);

stored_as!(HealthKindName, String);

impl<'r, DB: Database> Decode<'r, DB> for HealthKindName
where
    String: Decode<'r, DB>,
{
    fn decode(value: DB::ValueRef<'r>) -> Result<Self, BoxDynError> {
        let name = <String as Decode<DB>>::decode(value)?;
        let kind = HealthKind::parse(&name).ok_or_else(|| Corrupt(format!("health entry kind {name:?}")))?;
        Ok(HealthKindName(kind))
    }
}

impl From<HealthKindName> for HealthKind {
    fn from(k: HealthKindName) -> Self {
        k.0
    }
}

/// Unix seconds of an instant, for binding.
pub(crate) fn to_ts(t: OffsetDateTime) -> i64 {
    t.unix_timestamp()
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use crate::prelude::*;
    use crate::sqlite::SqliteStore;
    use crate::StoreError;

    async fn store(dir: &tempfile::TempDir) -> SqliteStore {
        let url = format!("sqlite://{}", dir.path().join("row.db").display());
        SqliteStore::connect(&url).await.expect("sqlite store")
    }

    #[tokio::test]
    async fn out_of_range_instants_are_corrupt_not_a_panic() {
        let dir = tempfile::tempdir().expect("tempdir");
        let s = store(&dir).await;
        sqlx::query(
            "INSERT INTO flows (id, kind, state, data, version, created_at, updated_at, expires_at) \
             VALUES ('f1', 'registration', 'started', x'00', 0, $1, 0, 0)",
        )
        .bind(i64::MAX)
        .execute(s.pool())
        .await
        .expect("raw insert");
        let got = s.get_flow("registration", "f1").await;
        assert!(matches!(&got, Err(StoreError::Corrupt(m)) if m.contains("created_at")), "{got:?}");
    }

    #[tokio::test]
    async fn out_of_range_optional_instants_and_bad_enumerations_are_corrupt() {
        let dir = tempfile::tempdir().expect("tempdir");
        let s = store(&dir).await;
        sqlx::query(
            "INSERT INTO organizations (id, insurer_number, org_type, name, point_name, checkup_linked, card_pattern, \
             created_at) VALUES ('o1', '06132013', 'no_such_type', 'x', NULL, 0, 1, 0)",
        )
        .execute(s.pool())
        .await
        .expect("raw org");
        let got = s.get_org("o1").await;
        assert!(matches!(&got, Err(StoreError::Corrupt(m)) if m.contains("org type")), "{got:?}");

        sqlx::query("UPDATE organizations SET org_type = 'health_insurance' WHERE id = 'o1'")
            .execute(s.pool())
            .await
            .expect("fix org");
        sqlx::query(
            "INSERT INTO users (id, org_id, email_index, email_enc, password_hash, locale, created_at, \
             password_changed_at) VALUES ('u1', 'o1', x'01', x'02', 'h', 'ja', 0, 0)",
        )
        .execute(s.pool())
        .await
        .expect("raw user");
        sqlx::query(
            "INSERT INTO sessions (id_hash, user_id, kind, created_at, last_seen_at, expires_at, step_up_until) \
             VALUES (x'aa', 'u1', 'member', 0, 0, 0, $1)",
        )
        .bind(i64::MIN)
        .execute(s.pool())
        .await
        .expect("raw session");
        let got = s.get_session(&[0xaa]).await;
        assert!(matches!(&got, Err(StoreError::Corrupt(m)) if m.contains("step_up_until")), "{got:?}");
    }
}
