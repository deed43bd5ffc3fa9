//! Insurer rosters (名簿): records imported from the insurers' files, the imports themselves,
//! and the one-to-one links between records and accounts.
//!
//! The read queries and links are one SQL text for both backends (the `sql_roster!` macro
//! below); writing an import differs: SQLite uses multi-row INSERTs and prepared UPDATEs
//! (`roster/sqlite.rs`), PostgreSQL streams binary COPY (`roster/postgres.rs`).

use async_trait::async_trait;
use time::OffsetDateTime;

use crate::row::{to_ts, UnixTime};
use crate::Result;

/// One roster record ready to store: blind indexes and sealed data, no plaintext.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RosterRow {
    /// Blind index of the card symbol and number (without branch).
    pub card_index: Vec<u8>,
    /// Identifies the record across imports (same card, branch and person).
    pub record_key: Vec<u8>,
    /// Blind index of the branch number (枝番), when the card has one.
    pub branch_index: Option<Vec<u8>>,
    /// Blind index of the folded names and the birth date.
    pub person_index: Vec<u8>,
    /// MAC of the whole record as imported (equal MAC = same content).
    pub content_mac: Vec<u8>,
    pub data_enc: Vec<u8>,
    /// ISO dates `YYYY-MM-DD`.
    pub eligible_from: String,
    pub eligible_until: Option<String>,
}

/// What an import needs to know of a stored record to tell whether a file changes it.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct StoredRecord {
    pub card_index: Vec<u8>,
    pub record_key: Vec<u8>,
    pub content_mac: Vec<u8>,
    pub eligible_until: Option<String>,
}

/// A roster record's identity within its organization.
#[derive(Debug, Clone, PartialEq, Eq, Hash, sqlx::FromRow)]
pub struct RecordRef {
    pub card_index: Vec<u8>,
    pub record_key: Vec<u8>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ImportStats {
    /// Rows in the file.
    pub rows: u64,
    /// New records.
    pub inserted: u64,
    /// Existing records whose content or eligibility changed.
    pub updated: u64,
    /// Records absent from this import whose eligibility was ended.
    pub ended: u64,
}

/// A roster import in progress: one database transaction holding the organization's lock, so
/// imports of one organization run one after another. Nothing is visible to anyone until
/// [`RosterImport::commit`]; dropping it (an error, an interrupt, a killed process) leaves
/// the previous roster exactly as it was.
#[async_trait]
pub trait RosterImport: Send {
    /// The MAC key the organization's roster family is keyed by (`None` = `m0`), as of this
    /// transaction: the import's indexes must be made under it (a re-key waits for the import,
    /// and the import for a re-key).
    async fn mac_key(&mut self) -> Result<Option<String>>;
    /// Every record the organization has, as of this transaction.
    async fn existing(&mut self) -> Result<Vec<StoredRecord>>;
    /// Adds new records (a record that exists already fails the import).
    async fn insert(&mut self, rows: &[RosterRow]) -> Result<()>;
    /// Replaces the indexes, data and eligibility of existing records (matched by keys).
    async fn update(&mut self, rows: &[RosterRow]) -> Result<()>;
    /// Sets `eligible_until = ended_on` on these records.
    async fn end(&mut self, records: &[RecordRef], ended_on: &str) -> Result<()>;
    /// Records the import with its figures, and commits.
    async fn commit(self: Box<Self>, stats: ImportStats) -> Result<()>;
}

/// A roster record that matched a verification, with its link if any.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct RosterMatch {
    #[sqlx(flatten)]
    pub record: RecordRef,
    pub branch_index: Option<Vec<u8>>,
    pub eligible_from: String,
    pub eligible_until: Option<String>,
    pub data_enc: Vec<u8>,
    #[sqlx(rename = "user_id")]
    pub linked_user_id: Option<String>,
}

/// The roster record an account is linked to.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct RosterLink {
    pub org_id: String,
    #[sqlx(flatten)]
    pub record: RecordRef,
    #[sqlx(try_from = "UnixTime")]
    pub linked_at: OffsetDateTime,
}

#[async_trait]
pub trait Roster: Send + Sync {
    /// Starts an import (waiting for any other import of the organization to finish); `now`
    /// stamps the records it writes. [`StoreError::NotFound`](crate::StoreError::NotFound)
    /// for an unknown organization.
    async fn begin_roster_import(
        &self,
        org_id: &str,
        import_id: &str,
        now: OffsetDateTime,
    ) -> Result<Box<dyn RosterImport>>;
    /// Records of the organization with this card (without branch) and person.
    async fn find_roster_matches(
        &self,
        org_id: &str,
        card_index: &[u8],
        person_index: &[u8],
    ) -> Result<Vec<RosterMatch>>;
    async fn roster_count(&self, org_id: &str) -> Result<i64>;
    /// Links a record to an account. [`StoreError::Duplicate`](crate::StoreError::Duplicate)
    /// when the record already has an account or the account already has a record: of racing
    /// accounts exactly one wins.
    async fn link_roster_record(
        &self,
        org_id: &str,
        record: &RecordRef,
        user_id: &str,
        now: OffsetDateTime,
    ) -> Result<()>;
    /// The record linked to an account and when it was linked.
    async fn roster_link_of_user(&self, user_id: &str) -> Result<Option<RosterLink>>;
    /// Every record of the organization with this card (without branch), whoever the person,
    /// with its link: for matching files that identify people by card and birth date only.
    async fn find_roster_records_by_card(&self, org_id: &str, card_index: &[u8]) -> Result<Vec<RosterMatch>>;
    /// [`Roster::find_roster_records_by_card`] for many cards at once (a few queries for a
    /// whole file instead of one per card), in no particular order.
    async fn find_roster_records_by_cards(&self, org_id: &str, card_indexes: &[Vec<u8>]) -> Result<Vec<RosterMatch>>;
    /// One roster record by its keys, with its link (for the reviewer's side-by-side view).
    async fn get_roster_record(&self, org_id: &str, record: &RecordRef) -> Result<Option<RosterMatch>>;
}

/// A roster record with its link, if any (`WHERE` and `ORDER BY` follow).
const MATCH_SELECT: &str =
    "SELECT r.card_index, r.record_key, r.branch_index, r.eligible_from, r.eligible_until, r.data_enc, l.user_id \
     FROM roster_records r LEFT JOIN roster_links l \
       ON l.org_id = r.org_id AND l.card_index = r.card_index AND l.record_key = r.record_key";

/// The SQL of both backends: the queries, the links, and what both imports share (reading
/// the stored records, recording the finished import).
macro_rules! sql_roster {
    ($store:ty, $db:ty) => {
        use super::*;

        /// Every record of the organization, for an import to compare with its file.
        async fn existing_records(tx: &mut sqlx::Transaction<'static, $db>, org_id: &str) -> Result<Vec<StoredRecord>> {
            use futures_util::TryStreamExt as _;
            let mut rows = sqlx::query_as::<_, StoredRecord>(
                "SELECT card_index, record_key, content_mac, eligible_until FROM roster_records WHERE org_id = $1",
            )
            .bind(org_id)
            .fetch(&mut **tx);
            let mut out = Vec::new();
            while let Some(r) = rows.try_next().await? {
                out.push(r);
            }
            Ok(out)
        }

        /// Records a finished import and commits it.
        async fn finish_import(
            mut tx: sqlx::Transaction<'static, $db>,
            org_id: &str,
            import_id: &str,
            stats: ImportStats,
            now: i64,
        ) -> Result<()> {
            sqlx::query(
                "INSERT INTO roster_imports (id, org_id, row_count, inserted, updated, ended, finished_at) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7)",
            )
            .bind(import_id)
            .bind(org_id)
            .bind(stats.rows as i64)
            .bind(stats.inserted as i64)
            .bind(stats.updated as i64)
            .bind(stats.ended as i64)
            .bind(now)
            .execute(&mut *tx)
            .await?;
            tx.commit().await?;
            Ok(())
        }

        #[async_trait]
        impl Roster for $store {
            #[tracing::instrument(skip_all, fields(org_id = %org_id, import_id = %import_id))]
            async fn begin_roster_import(
                &self,
                org_id: &str,
                import_id: &str,
                now: OffsetDateTime,
            ) -> Result<Box<dyn RosterImport>> {
                begin_import(&self.pool, org_id, import_id, to_ts(now)).await
            }

            #[tracing::instrument(skip_all, fields(org_id = %org_id))]
            async fn find_roster_matches(
                &self,
                org_id: &str,
                card_index: &[u8],
                person_index: &[u8],
            ) -> Result<Vec<RosterMatch>> {
                let sql = format!(
                    "{MATCH_SELECT} WHERE r.org_id = $1 AND r.card_index = $2 AND r.person_index = $3 \
                     ORDER BY r.record_key"
                );
                let rows =
                    sqlx::query_as(&sql).bind(org_id).bind(card_index).bind(person_index).fetch_all(&self.pool).await?;
                Ok(rows)
            }

            #[tracing::instrument(skip_all, fields(org_id = %org_id))]
            async fn roster_count(&self, org_id: &str) -> Result<i64> {
                let n = sqlx::query_scalar("SELECT COUNT(*) AS n FROM roster_records WHERE org_id = $1")
                    .bind(org_id)
                    .fetch_one(&self.pool)
                    .await?;
                Ok(n)
            }

            #[tracing::instrument(skip_all, fields(org_id = %org_id, user_id = %user_id))]
            async fn link_roster_record(
                &self,
                org_id: &str,
                record: &RecordRef,
                user_id: &str,
                now: OffsetDateTime,
            ) -> Result<()> {
                sqlx::query(
                    "INSERT INTO roster_links (org_id, card_index, record_key, user_id, linked_at) \
                     VALUES ($1, $2, $3, $4, $5)",
                )
                .bind(org_id)
                .bind(&record.card_index)
                .bind(&record.record_key)
                .bind(user_id)
                .bind(to_ts(now))
                .execute(&self.pool)
                .await?;
                Ok(())
            }

            #[tracing::instrument(skip_all, fields(user_id = %user_id))]
            async fn roster_link_of_user(&self, user_id: &str) -> Result<Option<RosterLink>> {
                let row = sqlx::query_as(
                    "SELECT org_id, card_index, record_key, linked_at FROM roster_links WHERE user_id = $1",
                )
                .bind(user_id)
                .fetch_optional(&self.pool)
                .await?;
                Ok(row)
            }

            #[tracing::instrument(skip_all, fields(org_id = %org_id))]
            async fn find_roster_records_by_card(&self, org_id: &str, card_index: &[u8]) -> Result<Vec<RosterMatch>> {
                let sql = format!("{MATCH_SELECT} WHERE r.org_id = $1 AND r.card_index = $2 ORDER BY r.record_key");
                let rows = sqlx::query_as(&sql).bind(org_id).bind(card_index).fetch_all(&self.pool).await?;
                Ok(rows)
            }

            #[tracing::instrument(skip_all, fields(org_id = %org_id, cards = card_indexes.len()))]
            async fn find_roster_records_by_cards(
                &self,
                org_id: &str,
                card_indexes: &[Vec<u8>],
            ) -> Result<Vec<RosterMatch>> {
                // Cards per query (one parameter each).
                const CARDS: usize = 1000;
                let mut found = Vec::new();
                for chunk in card_indexes.chunks(CARDS) {
                    let mut q = sqlx::QueryBuilder::<$db>::new(MATCH_SELECT);
                    q.push(" WHERE r.org_id = ").push_bind(org_id).push(" AND r.card_index IN (");
                    let mut cards = q.separated(", ");
                    for card in chunk {
                        cards.push_bind(card);
                    }
                    cards.push_unseparated(")");
                    found.extend(q.build_query_as::<RosterMatch>().fetch_all(&self.pool).await?);
                }
                Ok(found)
            }

            #[tracing::instrument(skip_all, fields(org_id = %org_id))]
            async fn get_roster_record(&self, org_id: &str, record: &RecordRef) -> Result<Option<RosterMatch>> {
                let sql = format!("{MATCH_SELECT} WHERE r.org_id = $1 AND r.card_index = $2 AND r.record_key = $3");
                let row = sqlx::query_as(&sql)
                    .bind(org_id)
                    .bind(&record.card_index)
                    .bind(&record.record_key)
                    .fetch_optional(&self.pool)
                    .await?;
                Ok(row)
            }
        }
    };
}

pub(crate) mod postgres;
mod sqlite;
