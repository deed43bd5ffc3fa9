//! Health data of roster records (F5): 特定健診 results, and お薬履歴 / 医療費通知 entries, each
//! written by an import that holds the organization's lock (the same lock as roster imports).
//! Everything personal is sealed by the application; the columns are what look-ups and
//! de-duplication need.

use async_trait::async_trait;
use time::OffsetDateTime;

use crate::roster::RecordRef;
use crate::row::{to_ts, HealthKindName, UnixTime};
use crate::Result;

/// One 特定健診 result to store: the roster record it belongs to, the examination date and
/// the sealed document. No plaintext.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckupRow {
    pub id: String,
    pub record: RecordRef,
    /// ISO date `YYYY-MM-DD`.
    pub examined_on: String,
    pub data_enc: Vec<u8>,
}

/// A stored 特定健診 result.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct CheckupResultRecord {
    pub id: String,
    pub org_id: String,
    #[sqlx(flatten)]
    pub record: RecordRef,
    pub examined_on: String,
    pub data_enc: Vec<u8>,
    /// The import that wrote this version of the result.
    pub import_id: String,
    #[sqlx(try_from = "UnixTime")]
    pub created_at: OffsetDateTime,
}

/// The figures of a checkup import.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct CheckupImportStats {
    /// Checkup documents in the file.
    pub documents: u64,
    /// Results for an examination not stored before.
    pub inserted: u64,
    /// Results that replaced the stored result of the same record and examination date.
    pub replaced: u64,
}

/// A checkup import in progress: one database transaction holding the organization's lock.
/// Nothing is visible until [`CheckupImport::commit`]; dropping it leaves nothing behind.
#[async_trait]
pub trait CheckupImport: Send {
    /// Writes one result. A result of the same record and examination date is replaced
    /// (keeping its id); returns `true` when it replaced one, `false` for a new result.
    async fn put(&mut self, row: &CheckupRow) -> Result<bool>;
    /// The organization's roster MAC key (`None` = `m0`) as of this transaction: the results'
    /// record keys must have been found under it.
    async fn mac_key(&mut self) -> Result<Option<String>>;
    /// Records the import's figures, and commits.
    async fn commit(self: Box<Self>, stats: CheckupImportStats) -> Result<()>;
}

/// The kind of a health entry (F5): one pair of tables holds both.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum HealthKind {
    /// お薬履歴: one dispensed drug.
    Medication,
    /// 医療費通知: one month of care at one facility.
    Expense,
}

impl HealthKind {
    /// The stored name (`health_entries.kind`).
    pub fn as_str(self) -> &'static str {
        match self {
            HealthKind::Medication => "medication",
            HealthKind::Expense => "expense",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "medication" => Some(HealthKind::Medication),
            "expense" => Some(HealthKind::Expense),
            _ => None,
        }
    }
}

/// One お薬履歴 or 医療費通知 row to store: the roster record it belongs to, its date, its
/// de-duplication key and the sealed row. No plaintext.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HealthEntryRow {
    pub id: String,
    pub record: RecordRef,
    /// ISO date `YYYY-MM-DD` (for a month, its first day).
    pub occurred_on: String,
    /// A keyed MAC of the row's content: unique per organization, record and kind.
    pub row_key: Vec<u8>,
    pub data_enc: Vec<u8>,
}

/// A stored health entry.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct HealthEntryRecord {
    pub id: String,
    pub org_id: String,
    #[sqlx(flatten)]
    pub record: RecordRef,
    #[sqlx(try_from = "HealthKindName")]
    pub kind: HealthKind,
    pub occurred_on: String,
    pub row_key: Vec<u8>,
    pub data_enc: Vec<u8>,
    /// The import that wrote the entry.
    pub import_id: String,
    #[sqlx(try_from = "UnixTime")]
    pub created_at: OffsetDateTime,
}

/// The figures of a health import.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct HealthImportStats {
    /// Data rows in the file.
    pub rows: u64,
    /// Rows not stored before.
    pub inserted: u64,
}

/// A health import in progress: one database transaction holding the organization's lock
/// (the same lock as roster and checkup imports). Nothing is visible until
/// [`HealthImport::commit`]; dropping it leaves nothing behind.
#[async_trait]
pub trait HealthImport: Send {
    /// Writes one entry unless an entry of the same record, kind and row key is stored
    /// already; returns `true` when it was (and nothing was written).
    async fn put(&mut self, row: &HealthEntryRow) -> Result<bool> {
        Ok(self.put_all(std::slice::from_ref(row)).await? == 1)
    }
    /// Writes the entries of which no entry of the same record, kind and row key is stored
    /// already (or earlier in `rows`); returns how many were (and not written). In batches:
    /// multi-row INSERTs on SQLite, binary COPY into a staging table of the transaction and one
    /// `INSERT … SELECT` per batch on PostgreSQL.
    async fn put_all(&mut self, rows: &[HealthEntryRow]) -> Result<u64>;
    /// The organization's roster MAC key (`None` = `m0`) as of this transaction: the entries'
    /// record keys and row keys must have been made under it.
    async fn mac_key(&mut self) -> Result<Option<String>>;
    /// Records the import's figures, and commits.
    async fn commit(self: Box<Self>, stats: HealthImportStats) -> Result<()>;
}

#[async_trait]
pub trait Health: Send + Sync {
    /// Starts a checkup import of `file_name` for the organization (waiting for any other
    /// import of it to finish). [`StoreError::NotFound`](crate::StoreError::NotFound) for an
    /// unknown organization.
    async fn begin_checkup_import(
        &self,
        org_id: &str,
        import_id: &str,
        file_name: &str,
        now: OffsetDateTime,
    ) -> Result<Box<dyn CheckupImport>>;
    /// The results of one roster record, newest examination first.
    async fn checkup_results_of_record(&self, org_id: &str, record: &RecordRef) -> Result<Vec<CheckupResultRecord>>;

    /// Starts a health import of `kind` from `file_name` for the organization (waiting for any
    /// other import of it to finish). [`StoreError::NotFound`](crate::StoreError::NotFound)
    /// for an unknown organization.
    async fn begin_health_import(
        &self,
        org_id: &str,
        import_id: &str,
        kind: HealthKind,
        file_name: &str,
        now: OffsetDateTime,
    ) -> Result<Box<dyn HealthImport>>;
    /// The entries of one kind of one roster record, latest date first.
    async fn health_entries_of_record(
        &self,
        org_id: &str,
        record: &RecordRef,
        kind: HealthKind,
    ) -> Result<Vec<HealthEntryRecord>>;
}

const PUT_CHECKUP: &str = "INSERT INTO checkup_results \
     (id, org_id, card_index, record_key, examined_on, data_enc, import_id, created_at) \
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8) \
     ON CONFLICT (org_id, card_index, record_key, examined_on) DO UPDATE SET \
       data_enc = excluded.data_enc, import_id = excluded.import_id, created_at = excluded.created_at \
     RETURNING id";

/// The columns of `health_entries` an import writes, in COPY and INSERT order.
const HEALTH_ENTRY_COLUMNS: &str =
    "(id, org_id, card_index, record_key, kind, occurred_on, row_key, data_enc, import_id, created_at)";

/// The conflict that keeps an entry once per record, kind and content.
const HEALTH_ENTRY_CONFLICT: &str = " ON CONFLICT (org_id, card_index, record_key, kind, row_key) DO NOTHING";

macro_rules! sql_health {
    ($be:ident, $store:ty, $db:ty) => {
        use super::*;
        use crate::orgs::$be::{lock_org, roster_mac_key_in};

        /// A checkup import: one transaction holding the organization's lock.
        struct CheckupTx {
            tx: sqlx::Transaction<'static, $db>,
            org_id: String,
            import_id: String,
            now: i64,
        }

        #[async_trait]
        impl CheckupImport for CheckupTx {
            async fn put(&mut self, row: &CheckupRow) -> Result<bool> {
                // On a second result of the same record and date the stored row is replaced
                // and keeps its id, so the returned id tells a replacement from a new row.
                let stored: String = sqlx::query_scalar(PUT_CHECKUP)
                    .bind(&row.id)
                    .bind(&self.org_id)
                    .bind(&row.record.card_index)
                    .bind(&row.record.record_key)
                    .bind(&row.examined_on)
                    .bind(&row.data_enc)
                    .bind(&self.import_id)
                    .bind(self.now)
                    .fetch_one(&mut *self.tx)
                    .await?;
                Ok(stored != row.id)
            }

            async fn mac_key(&mut self) -> Result<Option<String>> {
                roster_mac_key_in(&mut *self.tx, &self.org_id).await
            }

            async fn commit(self: Box<Self>, stats: CheckupImportStats) -> Result<()> {
                let mut this = *self;
                sqlx::query("UPDATE checkup_imports SET documents = $1, inserted = $2, replaced = $3 WHERE id = $4")
                    .bind(stats.documents as i64)
                    .bind(stats.inserted as i64)
                    .bind(stats.replaced as i64)
                    .bind(&this.import_id)
                    .execute(&mut *this.tx)
                    .await?;
                this.tx.commit().await?;
                Ok(())
            }
        }

        /// A health import: one transaction holding the organization's lock.
        struct HealthTx {
            tx: sqlx::Transaction<'static, $db>,
            org_id: String,
            import_id: String,
            kind: HealthKind,
            now: i64,
            /// PostgreSQL: the staging table of the transaction exists.
            #[allow(dead_code)]
            staged: bool,
        }

        #[async_trait]
        impl HealthImport for HealthTx {
            async fn put_all(&mut self, rows: &[HealthEntryRow]) -> Result<u64> {
                // Entries with the same record, kind and row key are kept as they are.
                let inserted = write_entries(self, rows).await?;
                Ok(rows.len() as u64 - inserted)
            }

            async fn mac_key(&mut self) -> Result<Option<String>> {
                roster_mac_key_in(&mut *self.tx, &self.org_id).await
            }

            async fn commit(self: Box<Self>, stats: HealthImportStats) -> Result<()> {
                let mut this = *self;
                sqlx::query("UPDATE health_imports SET row_count = $1, inserted = $2 WHERE id = $3")
                    .bind(stats.rows as i64)
                    .bind(stats.inserted as i64)
                    .bind(&this.import_id)
                    .execute(&mut *this.tx)
                    .await?;
                this.tx.commit().await?;
                Ok(())
            }
        }

        #[async_trait]
        impl Health for $store {
            #[tracing::instrument(skip_all, fields(org_id = %org_id, import_id = %import_id))]
            async fn begin_checkup_import(
                &self,
                org_id: &str,
                import_id: &str,
                file_name: &str,
                now: OffsetDateTime,
            ) -> Result<Box<dyn CheckupImport>> {
                let mut tx = self.pool.begin().await?;
                lock_org(&mut *tx, org_id).await?;
                sqlx::query("INSERT INTO checkup_imports (id, org_id, file_name, created_at) VALUES ($1, $2, $3, $4)")
                    .bind(import_id)
                    .bind(org_id)
                    .bind(file_name)
                    .bind(to_ts(now))
                    .execute(&mut *tx)
                    .await?;
                let (org_id, import_id) = (org_id.to_string(), import_id.to_string());
                Ok(Box::new(CheckupTx { tx, org_id, import_id, now: to_ts(now) }))
            }

            #[tracing::instrument(skip_all, fields(org_id = %org_id))]
            async fn checkup_results_of_record(
                &self,
                org_id: &str,
                record: &RecordRef,
            ) -> Result<Vec<CheckupResultRecord>> {
                let rows = sqlx::query_as(
                    "SELECT id, org_id, card_index, record_key, examined_on, data_enc, import_id, created_at \
                     FROM checkup_results \
                     WHERE org_id = $1 AND card_index = $2 AND record_key = $3 ORDER BY examined_on DESC, id",
                )
                .bind(org_id)
                .bind(&record.card_index)
                .bind(&record.record_key)
                .fetch_all(&self.pool)
                .await?;
                Ok(rows)
            }

            #[tracing::instrument(skip_all, fields(org_id = %org_id, import_id = %import_id, kind = kind.as_str()))]
            async fn begin_health_import(
                &self,
                org_id: &str,
                import_id: &str,
                kind: HealthKind,
                file_name: &str,
                now: OffsetDateTime,
            ) -> Result<Box<dyn HealthImport>> {
                let mut tx = self.pool.begin().await?;
                // The organization's lock, as for roster and checkup imports.
                lock_org(&mut *tx, org_id).await?;
                sqlx::query(
                    "INSERT INTO health_imports (id, org_id, kind, file_name, created_at) VALUES ($1, $2, $3, $4, $5)",
                )
                .bind(import_id)
                .bind(org_id)
                .bind(kind.as_str())
                .bind(file_name)
                .bind(to_ts(now))
                .execute(&mut *tx)
                .await?;
                let (org_id, import_id) = (org_id.to_string(), import_id.to_string());
                Ok(Box::new(HealthTx { tx, org_id, import_id, kind, now: to_ts(now), staged: false }))
            }

            #[tracing::instrument(skip_all, fields(org_id = %org_id, kind = kind.as_str()))]
            async fn health_entries_of_record(
                &self,
                org_id: &str,
                record: &RecordRef,
                kind: HealthKind,
            ) -> Result<Vec<HealthEntryRecord>> {
                let rows = sqlx::query_as(
                    "SELECT id, org_id, card_index, record_key, kind, occurred_on, row_key, data_enc, import_id, \
                            created_at \
                     FROM health_entries \
                     WHERE org_id = $1 AND card_index = $2 AND record_key = $3 AND kind = $4 \
                     ORDER BY occurred_on DESC, id",
                )
                .bind(org_id)
                .bind(&record.card_index)
                .bind(&record.record_key)
                .bind(kind.as_str())
                .fetch_all(&self.pool)
                .await?;
                Ok(rows)
            }
        }
    };
}

mod sqlite {
    sql_health!(sqlite, crate::sqlite::SqliteStore, sqlx::Sqlite);

    /// Rows per multi-row INSERT (10 parameters each).
    const BATCH: usize = 1000;

    /// Writes `rows` with multi-row INSERTs; returns how many were new.
    async fn write_entries(t: &mut HealthTx, rows: &[HealthEntryRow]) -> Result<u64> {
        let mut inserted = 0;
        for chunk in rows.chunks(BATCH) {
            let mut q =
                sqlx::QueryBuilder::<sqlx::Sqlite>::new(format!("INSERT INTO health_entries {HEALTH_ENTRY_COLUMNS} "));
            q.push_values(chunk, |mut b, r| {
                b.push_bind(&r.id)
                    .push_bind(&t.org_id)
                    .push_bind(&r.record.card_index)
                    .push_bind(&r.record.record_key)
                    .push_bind(t.kind.as_str())
                    .push_bind(&r.occurred_on)
                    .push_bind(&r.row_key)
                    .push_bind(&r.data_enc)
                    .push_bind(&t.import_id)
                    .push_bind(t.now);
            });
            q.push(HEALTH_ENTRY_CONFLICT);
            inserted += q.build().execute(&mut *t.tx).await?.rows_affected();
        }
        Ok(inserted)
    }
}

mod postgres {
    sql_health!(postgres, crate::postgres::PgStore, sqlx::Postgres);
    use crate::roster::postgres::field;

    /// Streams `rows` with binary COPY into the transaction's staging table, then moves the new
    /// ones into `health_entries` with one `INSERT … SELECT … ON CONFLICT DO NOTHING`; returns
    /// how many were new. Every value is sent as data (COPY's binary format), never as SQL.
    async fn write_entries(t: &mut HealthTx, rows: &[HealthEntryRow]) -> Result<u64> {
        if rows.is_empty() {
            return Ok(0);
        }
        if t.staged {
            sqlx::query("TRUNCATE health_stage").execute(&mut *t.tx).await?;
        } else {
            sqlx::query("CREATE TEMP TABLE health_stage (LIKE health_entries INCLUDING DEFAULTS) ON COMMIT DROP")
                .execute(&mut *t.tx)
                .await?;
            t.staged = true;
        }
        let now = t.now.to_be_bytes();
        let size: usize = rows.iter().map(|r| 120 + r.id.len() + r.data_enc.len() + r.row_key.len() * 3).sum();
        let mut buf = Vec::with_capacity(size + 32);
        buf.extend_from_slice(b"PGCOPY\n\xff\r\n\0");
        buf.extend_from_slice(&0i32.to_be_bytes());
        buf.extend_from_slice(&0i32.to_be_bytes());
        for r in rows {
            buf.extend_from_slice(&10i16.to_be_bytes());
            field(&mut buf, Some(r.id.as_bytes()));
            field(&mut buf, Some(t.org_id.as_bytes()));
            field(&mut buf, Some(&r.record.card_index));
            field(&mut buf, Some(&r.record.record_key));
            field(&mut buf, Some(t.kind.as_str().as_bytes()));
            field(&mut buf, Some(r.occurred_on.as_bytes()));
            field(&mut buf, Some(&r.row_key));
            field(&mut buf, Some(&r.data_enc));
            field(&mut buf, Some(t.import_id.as_bytes()));
            field(&mut buf, Some(&now));
        }
        buf.extend_from_slice(&(-1i16).to_be_bytes());
        let statement = format!("COPY health_stage {HEALTH_ENTRY_COLUMNS} FROM STDIN (FORMAT binary)");
        let mut copy = t.tx.copy_in_raw(&statement).await?;
        if let Err(e) = copy.send(buf.as_slice()).await {
            let _ = copy.abort("send failed").await;
            return Err(e.into());
        }
        copy.finish().await?;
        let moved = sqlx::query(&format!(
            "INSERT INTO health_entries {HEALTH_ENTRY_COLUMNS} SELECT {} FROM health_stage{HEALTH_ENTRY_CONFLICT}",
            HEALTH_ENTRY_COLUMNS.trim_start_matches('(').trim_end_matches(')')
        ))
        .execute(&mut *t.tx)
        .await?;
        Ok(moved.rows_affected())
    }
}
