//! Re-keying an organization's roster family under another MAC key.
//!
//! The roster family of an organization is every value keyed by its roster MAC key
//! (`organizations.roster_mac_key`, NULL = the first key, `m0`): the blind indexes, record keys
//! and content MACs of its roster records, the record keys of its links, checkup results and
//! health entries, and the de-duplication keys of its health entries. The application reads the
//! whole family ([`RosterRekeying::roster_family`]), computes every value again under the new
//! key (re-sealing what is bound to a record key) and hands the result back to
//! [`RosterRekeying::rekey_roster_family`], which swaps it in, in one transaction holding the
//! organization's lock, only if nothing changed since it was read.
//!
//! The store never sees a key: it gets opaque bytes and blind indexes, as always.

use async_trait::async_trait;
use time::OffsetDateTime;

use crate::health::HealthKind;
use crate::roster::{RecordRef, RosterRow};
use crate::row::{to_ts, HealthKindName, UnixTime};
use crate::{Result, StoreError};

/// A stored roster record, everything of it.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct FamilyRecord {
    #[sqlx(flatten)]
    pub record: RecordRef,
    pub branch_index: Option<Vec<u8>>,
    pub person_index: Vec<u8>,
    pub content_mac: Vec<u8>,
    pub data_enc: Vec<u8>,
    pub eligible_from: String,
    pub eligible_until: Option<String>,
    #[sqlx(try_from = "UnixTime")]
    pub updated_at: OffsetDateTime,
}

/// A link between a roster record and an account.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct FamilyLink {
    #[sqlx(flatten)]
    pub record: RecordRef,
    pub user_id: String,
}

/// A stored 特定健診 result: what its AAD is made of, and the sealed document.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct FamilyCheckup {
    pub id: String,
    #[sqlx(flatten)]
    pub record: RecordRef,
    pub examined_on: String,
    pub data_enc: Vec<u8>,
}

/// A stored お薬履歴 / 医療費通知 entry: what its AAD is made of, its de-duplication key and the
/// sealed row.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct FamilyHealthEntry {
    pub id: String,
    #[sqlx(flatten)]
    pub record: RecordRef,
    #[sqlx(try_from = "HealthKindName")]
    pub kind: HealthKind,
    pub occurred_on: String,
    pub row_key: Vec<u8>,
    pub data_enc: Vec<u8>,
}

/// An organization's roster family as stored.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct RosterFamily {
    /// `organizations.roster_mac_key` (`None` = the first key, `m0`).
    pub mac_key: Option<String>,
    pub records: Vec<FamilyRecord>,
    pub links: Vec<FamilyLink>,
    pub checkups: Vec<FamilyCheckup>,
    pub health: Vec<FamilyHealthEntry>,
}

/// One roster record under the new key. The old record is deleted only if it still holds
/// `old_data_enc` and the eligibility of `row`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RekeyedRecord {
    pub old: RecordRef,
    pub old_data_enc: Vec<u8>,
    /// The record with its new indexes (eligibility as stored).
    pub row: RosterRow,
    /// Kept as it was: re-keying does not change the record.
    pub updated_at: OffsetDateTime,
}

/// A link moved from `old` to `new` (the same record under the new key).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RekeyedLink {
    pub old: RecordRef,
    pub user_id: String,
    pub new: RecordRef,
}

/// A checkup result moved to its record's new keys and sealed again under its new AAD; only
/// if it still holds `old_data_enc`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RekeyedCheckup {
    pub id: String,
    pub old_data_enc: Vec<u8>,
    pub new: RecordRef,
    pub data_enc: Vec<u8>,
}

/// A health entry moved to its record's new keys, with its new de-duplication key, sealed
/// again under its new AAD; only if it still holds `old_data_enc`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RekeyedHealthEntry {
    pub id: String,
    pub old_data_enc: Vec<u8>,
    pub new: RecordRef,
    pub row_key: Vec<u8>,
    pub data_enc: Vec<u8>,
}

/// A whole roster family under the new key: every record, link, result and entry of the
/// organization must be in it (a row the store has and this lacks is a conflict).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct RosterRekey {
    pub org_id: String,
    /// The key the family was read under (`None` = `m0`): the organization must still name it.
    pub from_key: Option<String>,
    pub to_key: String,
    pub records: Vec<RekeyedRecord>,
    pub links: Vec<RekeyedLink>,
    pub checkups: Vec<RekeyedCheckup>,
    pub health: Vec<RekeyedHealthEntry>,
}

#[async_trait]
pub trait RosterRekeying: Send + Sync {
    /// The organization's roster family, read in one transaction.
    /// [`StoreError::NotFound`] for an unknown organization.
    async fn roster_family(&self, org_id: &str) -> Result<RosterFamily>;
    /// Swaps the organization's roster family for `rekey`, in one transaction holding the
    /// organization's lock (imports wait): inserts the new records, moves the links, results
    /// and entries onto them, deletes the old records and names `to_key` on the organization.
    /// [`StoreError::Conflict`] — and nothing changed — when the organization no longer names
    /// `from_key` or anything of its family changed since it was read;
    /// [`StoreError::NotFound`] for an unknown organization.
    async fn rekey_roster_family(&self, rekey: &RosterRekey) -> Result<()>;
}

/// Rows per multi-row INSERT of new records (10 parameters each).
const INSERT_BATCH: usize = 1000;

/// A conflict unless exactly one row was written.
fn one(rows: u64) -> Result<()> {
    if rows == 1 {
        Ok(())
    } else {
        Err(StoreError::Conflict)
    }
}

macro_rules! sql_roster_rekey {
    ($be:ident, $store:ty, $db:ty) => {
        use super::*;
        use crate::orgs::$be::lock_org;

        async fn count(tx: &mut sqlx::Transaction<'static, $db>, table: &str, org_id: &str) -> Result<usize> {
            let n: i64 = sqlx::query_scalar(&format!("SELECT COUNT(*) AS n FROM {table} WHERE org_id = $1"))
                .bind(org_id)
                .fetch_one(&mut **tx)
                .await?;
            Ok(usize::try_from(n).unwrap_or(usize::MAX))
        }

        async fn mac_key(tx: &mut sqlx::Transaction<'static, $db>, org_id: &str) -> Result<Option<String>> {
            let key: Option<Option<String>> =
                sqlx::query_scalar("SELECT roster_mac_key FROM organizations WHERE id = $1")
                    .bind(org_id)
                    .fetch_optional(&mut **tx)
                    .await?;
            key.ok_or(StoreError::NotFound)
        }

        async fn apply(tx: &mut sqlx::Transaction<'static, $db>, r: &RosterRekey) -> Result<()> {
            lock_org(&mut **tx, &r.org_id).await?;
            if mac_key(tx, &r.org_id).await? != r.from_key {
                return Err(StoreError::Conflict);
            }
            for chunk in r.records.chunks(INSERT_BATCH) {
                let mut q = sqlx::QueryBuilder::<$db>::new(
                    "INSERT INTO roster_records (org_id, card_index, record_key, branch_index, person_index, \
                     content_mac, data_enc, eligible_from, eligible_until, updated_at) ",
                );
                q.push_values(chunk, |mut b, x| {
                    b.push_bind(&r.org_id)
                        .push_bind(&x.row.card_index)
                        .push_bind(&x.row.record_key)
                        .push_bind(&x.row.branch_index)
                        .push_bind(&x.row.person_index)
                        .push_bind(&x.row.content_mac)
                        .push_bind(&x.row.data_enc)
                        .push_bind(&x.row.eligible_from)
                        .push_bind(&x.row.eligible_until)
                        .push_bind(to_ts(x.updated_at));
                });
                // A record already stored under its new keys: the family changed meanwhile.
                q.build().execute(&mut **tx).await.map_err(|e| match StoreError::from(e) {
                    StoreError::Duplicate => StoreError::Conflict,
                    other => other,
                })?;
            }
            for l in &r.links {
                let done = sqlx::query(
                    "UPDATE roster_links SET card_index = $1, record_key = $2 \
                     WHERE org_id = $3 AND card_index = $4 AND record_key = $5 AND user_id = $6",
                )
                .bind(&l.new.card_index)
                .bind(&l.new.record_key)
                .bind(&r.org_id)
                .bind(&l.old.card_index)
                .bind(&l.old.record_key)
                .bind(&l.user_id)
                .execute(&mut **tx)
                .await?;
                one(done.rows_affected())?;
            }
            for c in &r.checkups {
                let done = sqlx::query(
                    "UPDATE checkup_results SET card_index = $1, record_key = $2, data_enc = $3 \
                     WHERE id = $4 AND org_id = $5 AND data_enc = $6",
                )
                .bind(&c.new.card_index)
                .bind(&c.new.record_key)
                .bind(&c.data_enc)
                .bind(&c.id)
                .bind(&r.org_id)
                .bind(&c.old_data_enc)
                .execute(&mut **tx)
                .await?;
                one(done.rows_affected())?;
            }
            for h in &r.health {
                let done = sqlx::query(
                    "UPDATE health_entries SET card_index = $1, record_key = $2, row_key = $3, data_enc = $4 \
                     WHERE id = $5 AND org_id = $6 AND data_enc = $7",
                )
                .bind(&h.new.card_index)
                .bind(&h.new.record_key)
                .bind(&h.row_key)
                .bind(&h.data_enc)
                .bind(&h.id)
                .bind(&r.org_id)
                .bind(&h.old_data_enc)
                .execute(&mut **tx)
                .await?;
                one(done.rows_affected())?;
            }
            for x in &r.records {
                // Still what was read: the same sealed data and eligibility (an import that
                // changed or ended the record meanwhile makes this a conflict).
                let done = sqlx::query(
                    "DELETE FROM roster_records \
                     WHERE org_id = $1 AND card_index = $2 AND record_key = $3 AND data_enc = $4 \
                       AND eligible_from = $5 AND COALESCE(eligible_until, '') = COALESCE($6, '')",
                )
                .bind(&r.org_id)
                .bind(&x.old.card_index)
                .bind(&x.old.record_key)
                .bind(&x.old_data_enc)
                .bind(&x.row.eligible_from)
                .bind(&x.row.eligible_until)
                .execute(&mut **tx)
                .await
                .map_err(|e| match e {
                    // Still referenced: a link, result or entry added meanwhile.
                    sqlx::Error::Database(ref db) if db.is_foreign_key_violation() => StoreError::Conflict,
                    other => StoreError::from(other),
                })?;
                one(done.rows_affected())?;
            }
            // Nothing of the organization's family beyond what was read (and moved).
            for (table, expected) in [
                ("roster_records", r.records.len()),
                ("roster_links", r.links.len()),
                ("checkup_results", r.checkups.len()),
                ("health_entries", r.health.len()),
            ] {
                if count(tx, table, &r.org_id).await? != expected {
                    return Err(StoreError::Conflict);
                }
            }
            sqlx::query("UPDATE organizations SET roster_mac_key = $1 WHERE id = $2")
                .bind(&r.to_key)
                .bind(&r.org_id)
                .execute(&mut **tx)
                .await?;
            Ok(())
        }

        #[async_trait]
        impl RosterRekeying for $store {
            #[tracing::instrument(skip_all, fields(org_id = %org_id))]
            async fn roster_family(&self, org_id: &str) -> Result<RosterFamily> {
                let mut tx = self.pool.begin().await?;
                let mac_key = mac_key(&mut tx, org_id).await?;
                let records = sqlx::query_as(
                    "SELECT card_index, record_key, branch_index, person_index, content_mac, data_enc, \
                            eligible_from, eligible_until, updated_at \
                     FROM roster_records WHERE org_id = $1 ORDER BY card_index, record_key",
                )
                .bind(org_id)
                .fetch_all(&mut *tx)
                .await?;
                let links = sqlx::query_as(
                    "SELECT card_index, record_key, user_id FROM roster_links WHERE org_id = $1 ORDER BY user_id",
                )
                .bind(org_id)
                .fetch_all(&mut *tx)
                .await?;
                let checkups = sqlx::query_as(
                    "SELECT id, card_index, record_key, examined_on, data_enc FROM checkup_results \
                     WHERE org_id = $1 ORDER BY id",
                )
                .bind(org_id)
                .fetch_all(&mut *tx)
                .await?;
                let health = sqlx::query_as(
                    "SELECT id, card_index, record_key, kind, occurred_on, row_key, data_enc FROM health_entries \
                     WHERE org_id = $1 ORDER BY id",
                )
                .bind(org_id)
                .fetch_all(&mut *tx)
                .await?;
                tx.commit().await?;
                Ok(RosterFamily { mac_key, records, links, checkups, health })
            }

            #[tracing::instrument(skip_all, fields(org_id = %rekey.org_id))]
            async fn rekey_roster_family(&self, rekey: &RosterRekey) -> Result<()> {
                let mut tx = self.pool.begin().await?;
                // On any error the transaction is dropped: nothing changed.
                apply(&mut tx, rekey).await?;
                tx.commit().await?;
                Ok(())
            }
        }
    };
}

mod sqlite {
    sql_roster_rekey!(sqlite, crate::sqlite::SqliteStore, sqlx::Sqlite);
}

mod postgres {
    sql_roster_rekey!(postgres, crate::postgres::PgStore, sqlx::Postgres);
}
