//! Organizations: the insurers whose members use Mimoto. The record type is the domain's
//! [`Organization`]; this module checks stored values on the way back.

use async_trait::async_trait;
use domain::insurer::InsurerNumber;
use domain::org::{CardPattern, OrgType, Organization};
use time::OffsetDateTime;

use crate::row::to_ts;
use crate::{Result, StoreError};

#[async_trait]
pub trait Orgs: Send + Sync {
    /// Inserts an organization whose roster family is keyed by the MAC key `m0` (see
    /// [`Orgs::insert_org_with_mac_key`]).
    async fn insert_org(&self, org: &Organization, now: OffsetDateTime) -> Result<()> {
        self.insert_org_with_mac_key(org, None, now).await
    }
    /// Inserts an organization whose roster family (roster indexes, record keys, health
    /// de-duplication keys) is keyed by the MAC key `roster_mac_key` (`None` = `m0`).
    async fn insert_org_with_mac_key(
        &self,
        org: &Organization,
        roster_mac_key: Option<&str>,
        now: OffsetDateTime,
    ) -> Result<()>;
    /// The id of the MAC key the organization's roster family is keyed by (`None` = `m0`, the
    /// only key before MAC keys had ids). [`StoreError::NotFound`] for an unknown organization.
    async fn roster_mac_key(&self, org_id: &str) -> Result<Option<String>>;
    async fn list_orgs(&self) -> Result<Vec<Organization>>;
    async fn find_org_by_insurer_number(&self, insurer_number: &str) -> Result<Option<Organization>>;
    async fn get_org(&self, id: &str) -> Result<Option<Organization>>;
}

/// An `organizations` row as stored; converting it checks the insurer number, type and card
/// pattern.
#[derive(sqlx::FromRow)]
struct OrgRow {
    id: String,
    insurer_number: String,
    org_type: String,
    name: String,
    point_name: Option<String>,
    checkup_linked: bool,
    card_pattern: i32,
}

impl TryFrom<OrgRow> for Organization {
    type Error = StoreError;

    fn try_from(r: OrgRow) -> Result<Self> {
        let insurer_number = InsurerNumber::parse(&r.insurer_number)
            .map_err(|e| StoreError::Corrupt(format!("insurer number of org {}: {e}", r.id)))?;
        let org_type =
            OrgType::parse(&r.org_type).ok_or_else(|| StoreError::Corrupt(format!("org type {}", r.org_type)))?;
        let card_pattern = u8::try_from(r.card_pattern)
            .ok()
            .and_then(CardPattern::from_number)
            .ok_or_else(|| StoreError::Corrupt(format!("card pattern {}", r.card_pattern)))?;
        Ok(Organization {
            id: r.id,
            insurer_number,
            org_type,
            name: r.name,
            point_name: r.point_name,
            checkup_linked: r.checkup_linked,
            card_pattern,
        })
    }
}

const COLUMNS: &str = "id, insurer_number, org_type, name, point_name, checkup_linked, card_pattern";

macro_rules! sql_orgs {
    ($store:ty, $db:ty) => {
        use super::*;

        /// Takes the organization's lock for an import (a write first: SQLite takes its write
        /// lock now, PostgreSQL locks the organization's row), so imports of one organization
        /// wait for each other. [`StoreError::NotFound`] for an unknown organization.
        pub(crate) async fn lock_org<'c, E>(executor: E, org_id: &str) -> Result<()>
        where
            E: sqlx::Executor<'c, Database = $db>,
        {
            let found = sqlx::query("UPDATE organizations SET id = id WHERE id = $1")
                .bind(org_id)
                .execute(executor)
                .await?;
            if found.rows_affected() == 0 {
                return Err(StoreError::NotFound);
            }
            Ok(())
        }

        /// The organization's roster MAC key id (`None`: `m0`), read with `executor` — inside an
        /// import's transaction, after [`lock_org`], so a re-key cannot slip in between.
        pub(crate) async fn roster_mac_key_in<'c, E>(executor: E, org_id: &str) -> Result<Option<String>>
        where
            E: sqlx::Executor<'c, Database = $db>,
        {
            let key: Option<String> = sqlx::query_scalar("SELECT roster_mac_key FROM organizations WHERE id = $1")
                .bind(org_id)
                .fetch_one(executor)
                .await?;
            Ok(key)
        }

        fn orgs(rows: Vec<OrgRow>) -> Result<Vec<Organization>> {
            rows.into_iter().map(Organization::try_from).collect()
        }

        #[async_trait]
        impl Orgs for $store {
            #[tracing::instrument(skip_all, fields(org_id = %org.id))]
            async fn insert_org_with_mac_key(
                &self,
                org: &Organization,
                roster_mac_key: Option<&str>,
                now: OffsetDateTime,
            ) -> Result<()> {
                sqlx::query(
                    "INSERT INTO organizations \
                     (id, insurer_number, org_type, name, point_name, checkup_linked, card_pattern, created_at, \
                      roster_mac_key) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
                )
                .bind(&org.id)
                .bind(org.insurer_number.as_str())
                .bind(org.org_type.as_str())
                .bind(&org.name)
                .bind(&org.point_name)
                .bind(org.checkup_linked)
                .bind(i32::from(org.card_pattern.number()))
                .bind(to_ts(now))
                .bind(roster_mac_key)
                .execute(&self.pool)
                .await?;
                Ok(())
            }

            #[tracing::instrument(skip_all, fields(org_id = %org_id))]
            async fn roster_mac_key(&self, org_id: &str) -> Result<Option<String>> {
                let key: Option<Option<String>> =
                    sqlx::query_scalar("SELECT roster_mac_key FROM organizations WHERE id = $1")
                        .bind(org_id)
                        .fetch_optional(&self.pool)
                        .await?;
                key.ok_or(StoreError::NotFound)
            }

            #[tracing::instrument(skip_all)]
            async fn list_orgs(&self) -> Result<Vec<Organization>> {
                let sql = format!("SELECT {COLUMNS} FROM organizations ORDER BY insurer_number");
                orgs(sqlx::query_as(&sql).fetch_all(&self.pool).await?)
            }

            #[tracing::instrument(skip_all, fields(insurer_number = %insurer_number))]
            async fn find_org_by_insurer_number(&self, insurer_number: &str) -> Result<Option<Organization>> {
                let sql = format!("SELECT {COLUMNS} FROM organizations WHERE insurer_number = $1");
                let row: Option<OrgRow> = sqlx::query_as(&sql).bind(insurer_number).fetch_optional(&self.pool).await?;
                row.map(Organization::try_from).transpose()
            }

            #[tracing::instrument(skip_all, fields(org_id = %id))]
            async fn get_org(&self, id: &str) -> Result<Option<Organization>> {
                let sql = format!("SELECT {COLUMNS} FROM organizations WHERE id = $1");
                let row: Option<OrgRow> = sqlx::query_as(&sql).bind(id).fetch_optional(&self.pool).await?;
                row.map(Organization::try_from).transpose()
            }
        }
    };
}

pub(crate) mod sqlite {
    sql_orgs!(crate::sqlite::SqliteStore, sqlx::Sqlite);
}

pub(crate) mod postgres {
    sql_orgs!(crate::postgres::PgStore, sqlx::Postgres);
}
