//! Re-keying: the raw sealed columns, read in batches in primary-key order and rewritten
//! only where they still hold what was read, for `mimoto keys rotate` (which re-seals every
//! value under the active data key). The store never sees a key: it hands out opaque bytes
//! with the row data their AAD is built from, and takes back opaque bytes.

use async_trait::async_trait;

use crate::roster::RecordRef;
use crate::Result;

/// A column holding values sealed by the application.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SealedColumn {
    UserEmail,
    FlowData,
    OutboxPayload,
    RosterData,
    EkycData,
    EkycReviewNote,
    OperatorEmail,
    OperatorName,
    OperatorTotp,
    InquiryEmail,
    InquiryMessage,
    InquiryReplyBody,
    CheckupData,
    HealthData,
    BindingNote,
    PasskeyData,
}

/// The shape of a column's rows: which AAD inputs come with the sealed bytes.
#[derive(Clone, Copy)]
enum Shape {
    /// `id` only.
    Id,
    /// `id`, `kind` (flows).
    IdKind,
    /// `org_id`, `card_index`, `record_key` (the roster's primary key).
    Roster,
    /// `id`, `org_id`, `card_index`, `record_key`, `examined_on`.
    Checkup,
    /// `id`, `kind`, `org_id`, `card_index`, `record_key`, `occurred_on`.
    Health,
}

impl SealedColumn {
    /// Every sealed column, in the order `mimoto keys rotate` walks them.
    pub const ALL: [SealedColumn; 16] = [
        SealedColumn::UserEmail,
        SealedColumn::FlowData,
        SealedColumn::OutboxPayload,
        SealedColumn::RosterData,
        SealedColumn::EkycData,
        SealedColumn::EkycReviewNote,
        SealedColumn::OperatorEmail,
        SealedColumn::OperatorName,
        SealedColumn::OperatorTotp,
        SealedColumn::InquiryEmail,
        SealedColumn::InquiryMessage,
        SealedColumn::InquiryReplyBody,
        SealedColumn::CheckupData,
        SealedColumn::HealthData,
        SealedColumn::BindingNote,
        SealedColumn::PasskeyData,
    ];

    /// (table, primary key column (the first one for the roster), sealed column).
    fn sql_names(self) -> (&'static str, &'static str, &'static str) {
        match self {
            SealedColumn::UserEmail => ("users", "id", "email_enc"),
            SealedColumn::FlowData => ("flows", "id", "data"),
            SealedColumn::OutboxPayload => ("mail_outbox", "id", "payload"),
            SealedColumn::RosterData => ("roster_records", "org_id", "data_enc"),
            SealedColumn::EkycData => ("ekyc_applications", "id", "data"),
            SealedColumn::EkycReviewNote => ("ekyc_reviews", "application_id", "note_enc"),
            SealedColumn::OperatorEmail => ("operators", "id", "email_enc"),
            SealedColumn::OperatorName => ("operators", "id", "name_enc"),
            SealedColumn::OperatorTotp => ("operators", "id", "totp_secret_enc"),
            SealedColumn::InquiryEmail => ("inquiries", "id", "email_enc"),
            SealedColumn::InquiryMessage => ("inquiries", "id", "message_enc"),
            SealedColumn::InquiryReplyBody => ("inquiry_replies", "id", "body_enc"),
            SealedColumn::CheckupData => ("checkup_results", "id", "data_enc"),
            SealedColumn::HealthData => ("health_entries", "id", "data_enc"),
            SealedColumn::BindingNote => ("binding_withdrawals", "id", "note_enc"),
            SealedColumn::PasskeyData => ("passkeys", "id", "data_enc"),
        }
    }

    fn shape(self) -> Shape {
        match self {
            SealedColumn::FlowData => Shape::IdKind,
            SealedColumn::RosterData => Shape::Roster,
            SealedColumn::CheckupData => Shape::Checkup,
            SealedColumn::HealthData => Shape::Health,
            _ => Shape::Id,
        }
    }

    /// `table.column`, for progress reports.
    pub fn name(self) -> String {
        let (table, _, column) = self.sql_names();
        format!("{table}.{column}")
    }
}

/// Where a row is: its primary key. For a roster record, `id` is the organization's id and
/// `record` the rest of the key; for every other table `id` is the primary key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SealedKey {
    pub id: String,
    pub record: Option<RecordRef>,
}

/// One stored sealed value, with the row data its AAD is built from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SealedRow {
    pub key: SealedKey,
    /// `flows.kind`, `health_entries.kind`.
    pub kind: Option<String>,
    /// The organization of a checkup result or health entry (of a roster record: `key.id`).
    pub org_id: Option<String>,
    /// The roster record of a checkup result or health entry (of a roster record: `key.record`).
    pub record: Option<RecordRef>,
    /// `checkup_results.examined_on`, `health_entries.occurred_on`.
    pub date: Option<String>,
    pub sealed: Vec<u8>,
}

/// A blind index kept next to the sealed value it indexes, so it can be computed again under
/// another MAC key (the roster's are re-keyed per organization, see `Orgs`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum IndexColumn {
    UserEmail,
    OperatorEmail,
}

impl IndexColumn {
    pub const ALL: [IndexColumn; 2] = [IndexColumn::UserEmail, IndexColumn::OperatorEmail];

    /// (table, blind index column, sealed column it indexes); the primary key is `id`.
    fn sql_names(self) -> (&'static str, &'static str, &'static str) {
        match self {
            IndexColumn::UserEmail => ("users", "email_index", "email_enc"),
            IndexColumn::OperatorEmail => ("operators", "email_index", "email_enc"),
        }
    }

    /// `table.column`, for progress reports.
    pub fn name(self) -> String {
        let (table, column, _) = self.sql_names();
        format!("{table}.{column}")
    }

    /// The sealed column the index is computed from.
    pub fn sealed(self) -> SealedColumn {
        match self {
            IndexColumn::UserEmail => SealedColumn::UserEmail,
            IndexColumn::OperatorEmail => SealedColumn::OperatorEmail,
        }
    }
}

/// One stored blind index with the sealed value it indexes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IndexedRow {
    pub id: String,
    pub index: Vec<u8>,
    pub sealed: Vec<u8>,
}

#[async_trait]
pub trait Rekey: Send + Sync {
    /// Up to `limit` rows of `column` with an id after `after` (from the start when `None`),
    /// in id order.
    async fn index_batch(&self, column: IndexColumn, after: Option<&str>, limit: i64) -> Result<Vec<IndexedRow>>;
    /// Writes `new` as the blind index of the row `row.id` only if it still holds `row.index`
    /// and `row.sealed`; `false` when the row changed (or went) meanwhile.
    /// [`crate::StoreError::Duplicate`] when another row holds `new` already.
    async fn replace_index(&self, column: IndexColumn, row: &IndexedRow, new: &[u8]) -> Result<bool>;
    /// Up to `limit` non-null values of `column` whose row comes after `after` (from the start
    /// when `None`), in primary-key order.
    async fn sealed_batch(&self, column: SealedColumn, after: Option<&SealedKey>, limit: i64)
        -> Result<Vec<SealedRow>>;
    /// Writes `new` into `column` of the row at `key` only if it still holds `old`; `false`
    /// when the row changed (or went) meanwhile, which is left as it is.
    async fn replace_sealed(&self, column: SealedColumn, key: &SealedKey, old: &[u8], new: &[u8]) -> Result<bool>;
    /// Up to `limit` ids of eKYC images not deleted, after `after`, in id order.
    async fn live_image_ids(&self, after: Option<&str>, limit: i64) -> Result<Vec<String>>;
}

type IdRow = (String, Vec<u8>);
type IdKindRow = (String, String, Vec<u8>);
type RosterRowTuple = (String, Vec<u8>, Vec<u8>, Vec<u8>);
type CheckupTuple = (String, String, Vec<u8>, Vec<u8>, String, Vec<u8>);
type HealthTuple = (String, String, String, Vec<u8>, Vec<u8>, String, Vec<u8>);

fn plain(id: String, sealed: Vec<u8>) -> SealedRow {
    SealedRow { key: SealedKey { id, record: None }, kind: None, org_id: None, record: None, date: None, sealed }
}

macro_rules! sql_rekey {
    ($store:ty) => {
        use super::*;

        #[async_trait]
        impl Rekey for $store {
            #[tracing::instrument(skip_all, fields(column = ?column, limit))]
            async fn sealed_batch(
                &self,
                column: SealedColumn,
                after: Option<&SealedKey>,
                limit: i64,
            ) -> Result<Vec<SealedRow>> {
                let (table, pk, col) = column.sql_names();
                let shape = column.shape();
                if let Shape::Roster = shape {
                    let (org, card, key) = match after {
                        Some(SealedKey { id, record: Some(r) }) => {
                            (id.clone(), r.card_index.clone(), r.record_key.clone())
                        }
                        Some(SealedKey { id, record: None }) => (id.clone(), Vec::new(), Vec::new()),
                        None => (String::new(), Vec::new(), Vec::new()),
                    };
                    // `after = None` starts before every row: the empty id and byte strings
                    // sort first, and the first clause takes a row with an empty id too.
                    let sql = format!(
                        "SELECT org_id, card_index, record_key, {col} FROM {table} \
                         WHERE ($1 = 0 OR org_id > $2 OR (org_id = $2 AND card_index > $3) \
                            OR (org_id = $2 AND card_index = $3 AND record_key > $4)) \
                         ORDER BY org_id, card_index, record_key LIMIT $5"
                    );
                    let rows: Vec<RosterRowTuple> = sqlx::query_as(&sql)
                        .bind(i64::from(after.is_some()))
                        .bind(org)
                        .bind(card)
                        .bind(key)
                        .bind(limit)
                        .fetch_all(&self.pool)
                        .await?;
                    return Ok(rows
                        .into_iter()
                        .map(|(org_id, card_index, record_key, sealed)| {
                            let record = RecordRef { card_index, record_key };
                            SealedRow {
                                key: SealedKey { id: org_id.clone(), record: Some(record.clone()) },
                                kind: None,
                                org_id: Some(org_id),
                                record: Some(record),
                                date: None,
                                sealed,
                            }
                        })
                        .collect());
                }
                let select = match shape {
                    Shape::Id | Shape::Roster => format!("{pk}, {col}"),
                    Shape::IdKind => format!("{pk}, kind, {col}"),
                    Shape::Checkup => format!("{pk}, org_id, card_index, record_key, examined_on, {col}"),
                    Shape::Health => format!("{pk}, kind, org_id, card_index, record_key, occurred_on, {col}"),
                };
                let sql = format!(
                    "SELECT {select} FROM {table} WHERE {col} IS NOT NULL AND ($1 = 0 OR {pk} > $2) \
                     ORDER BY {pk} LIMIT $3"
                );
                let start = after.map(|k| k.id.clone()).unwrap_or_default();
                let flag = i64::from(after.is_some());
                let rows = match shape {
                    Shape::Id | Shape::Roster => {
                        let rows: Vec<IdRow> =
                            sqlx::query_as(&sql).bind(flag).bind(start).bind(limit).fetch_all(&self.pool).await?;
                        rows.into_iter().map(|(id, sealed)| plain(id, sealed)).collect()
                    }
                    Shape::IdKind => {
                        let rows: Vec<IdKindRow> =
                            sqlx::query_as(&sql).bind(flag).bind(start).bind(limit).fetch_all(&self.pool).await?;
                        rows.into_iter()
                            .map(|(id, kind, sealed)| SealedRow { kind: Some(kind), ..plain(id, sealed) })
                            .collect()
                    }
                    Shape::Checkup => {
                        let rows: Vec<CheckupTuple> =
                            sqlx::query_as(&sql).bind(flag).bind(start).bind(limit).fetch_all(&self.pool).await?;
                        rows.into_iter()
                            .map(|(id, org_id, card_index, record_key, date, sealed)| SealedRow {
                                org_id: Some(org_id),
                                record: Some(RecordRef { card_index, record_key }),
                                date: Some(date),
                                ..plain(id, sealed)
                            })
                            .collect()
                    }
                    Shape::Health => {
                        let rows: Vec<HealthTuple> =
                            sqlx::query_as(&sql).bind(flag).bind(start).bind(limit).fetch_all(&self.pool).await?;
                        rows.into_iter()
                            .map(|(id, kind, org_id, card_index, record_key, date, sealed)| SealedRow {
                                kind: Some(kind),
                                org_id: Some(org_id),
                                record: Some(RecordRef { card_index, record_key }),
                                date: Some(date),
                                ..plain(id, sealed)
                            })
                            .collect()
                    }
                };
                Ok(rows)
            }

            #[tracing::instrument(skip_all, fields(column = ?column))]
            async fn replace_sealed(
                &self,
                column: SealedColumn,
                key: &SealedKey,
                old: &[u8],
                new: &[u8],
            ) -> Result<bool> {
                let (table, pk, col) = column.sql_names();
                let done = match (column.shape(), &key.record) {
                    (Shape::Roster, Some(r)) => {
                        let sql = format!(
                            "UPDATE {table} SET {col} = $1 \
                             WHERE org_id = $2 AND card_index = $3 AND record_key = $4 AND {col} = $5"
                        );
                        sqlx::query(&sql)
                            .bind(new)
                            .bind(&key.id)
                            .bind(&r.card_index)
                            .bind(&r.record_key)
                            .bind(old)
                            .execute(&self.pool)
                            .await?
                    }
                    (Shape::Roster, None) => return Ok(false),
                    _ => {
                        let sql = format!("UPDATE {table} SET {col} = $1 WHERE {pk} = $2 AND {col} = $3");
                        sqlx::query(&sql).bind(new).bind(&key.id).bind(old).execute(&self.pool).await?
                    }
                };
                Ok(done.rows_affected() == 1)
            }

            #[tracing::instrument(skip_all, fields(column = ?column, limit))]
            async fn index_batch(
                &self,
                column: IndexColumn,
                after: Option<&str>,
                limit: i64,
            ) -> Result<Vec<IndexedRow>> {
                let (table, index, sealed) = column.sql_names();
                let sql =
                    format!("SELECT id, {index}, {sealed} FROM {table} WHERE ($1 = 0 OR id > $2) ORDER BY id LIMIT $3");
                let rows: Vec<(String, Vec<u8>, Vec<u8>)> = sqlx::query_as(&sql)
                    .bind(i64::from(after.is_some()))
                    .bind(after.unwrap_or_default())
                    .bind(limit)
                    .fetch_all(&self.pool)
                    .await?;
                Ok(rows.into_iter().map(|(id, index, sealed)| IndexedRow { id, index, sealed }).collect())
            }

            #[tracing::instrument(skip_all, fields(column = ?column))]
            async fn replace_index(&self, column: IndexColumn, row: &IndexedRow, new: &[u8]) -> Result<bool> {
                let (table, index, sealed) = column.sql_names();
                let sql = format!("UPDATE {table} SET {index} = $1 WHERE id = $2 AND {index} = $3 AND {sealed} = $4");
                let done = sqlx::query(&sql)
                    .bind(new)
                    .bind(&row.id)
                    .bind(&row.index)
                    .bind(&row.sealed)
                    .execute(&self.pool)
                    .await?;
                Ok(done.rows_affected() == 1)
            }

            #[tracing::instrument(skip_all, fields(limit))]
            async fn live_image_ids(&self, after: Option<&str>, limit: i64) -> Result<Vec<String>> {
                let ids = sqlx::query_scalar(
                    "SELECT id FROM ekyc_images WHERE deleted_at IS NULL AND ($1 = 0 OR id > $2) \
                     ORDER BY id LIMIT $3",
                )
                .bind(i64::from(after.is_some()))
                .bind(after.unwrap_or_default())
                .bind(limit)
                .fetch_all(&self.pool)
                .await?;
                Ok(ids)
            }
        }
    };
}

mod sqlite {
    sql_rekey!(crate::sqlite::SqliteStore);
}

mod postgres {
    sql_rekey!(crate::postgres::PgStore);
}
