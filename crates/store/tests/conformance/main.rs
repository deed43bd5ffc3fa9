//! The storage conformance suite: every story runs against SQLite and against a fresh
//! PostgreSQL schema. A backend that fails any of them is not a Mimoto store.
//!
//! One test binary; one module per aggregate of the store (`orgs.rs`, `flows.rs`, …), each
//! ending with `conformance!(its stories)`, which makes `<module>::sqlite::<story>` and
//! `<module>::postgres::<story>`. Fixtures shared by several modules are here.

#![allow(clippy::unwrap_used, clippy::expect_used)]

// The fresh-store helpers, compiled here from the library's own file so that the suite runs
// without the `testing` feature (`cargo test -p mimoto-store`).
#[path = "../../src/testing.rs"]
mod testing;

use std::sync::Arc;

use domain::insurer::InsurerNumber;
use domain::org::{CardPattern, OrgType, Organization};
use store::{
    AuditEntry, CaptureTokenUse, CheckupImportStats, CheckupRow, CodeAttempt, ConsentRecord, EkycImage, EkycRecord,
    EkycReview, FlowRecord, FlowUpdate, HealthEntryRow, HealthImportStats, HealthKind, ImportStats, InquiryRecord,
    InquiryReply, NewAuditEntry, NewCode, NewMail, NewUser, OperatorChange, OperatorRecord, OperatorSessionRecord,
    RecordRef, RosterRow, SessionRecord, StepUpFailures, Store, StoreError, StoredRecord,
};
use time::{Duration, OffsetDateTime};

fn t0() -> OffsetDateTime {
    OffsetDateTime::from_unix_timestamp(1_790_000_000).expect("valid timestamp")
}

fn org(id: &str, number: &str, points: bool) -> Organization {
    Organization {
        id: id.to_string(),
        insurer_number: InsurerNumber::parse(number).expect("valid insurer number"),
        org_type: OrgType::HealthInsurance,
        name: format!("団体{number}"),
        point_name: points.then(|| "みらいポイント".to_string()),
        checkup_linked: points,
        card_pattern: CardPattern::SymbolAndNumber,
    }
}

fn flow(id: &str, now: OffsetDateTime) -> FlowRecord {
    FlowRecord {
        id: id.to_string(),
        kind: "registration".into(),
        state: "started".into(),
        data: vec![1, 2, 3],
        version: 0,
        created_at: now,
        updated_at: now,
        expires_at: now + Duration::hours(24),
    }
}

fn code(id: &str, subject: &str, mac: u8, now: OffsetDateTime) -> NewCode {
    NewCode {
        id: id.to_string(),
        purpose: "registration".into(),
        subject: subject.to_string(),
        code_mac: vec![mac; 32],
        created_at: now,
        expires_at: now + Duration::minutes(10),
    }
}

fn mail(id: &str, now: OffsetDateTime) -> NewMail {
    NewMail { id: id.to_string(), payload: format!("sealed {id}").into_bytes(), created_at: now }
}

fn user(id: &str, org_id: &str, email_index: u8, now: OffsetDateTime) -> NewUser {
    NewUser {
        id: id.to_string(),
        org_id: org_id.to_string(),
        email_index: vec![email_index; 32],
        email_enc: vec![9; 40],
        password_hash: "$argon2id$v=19$m=19456,t=2,p=1$x$y".into(),
        locale: "ja".into(),
        created_at: now,
    }
}

/// Runs each story of the calling module on both backends: a SQLite file in a temporary
/// directory, and a fresh schema of the PostgreSQL test database (dropped afterwards).
macro_rules! conformance {
    ($($story:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $story() {
                    let dir = tempfile::tempdir().expect("tempdir");
                    let s = crate::testing::sqlite_in(dir.path()).await.expect("sqlite store");
                    super::$story(std::sync::Arc::new(s)).await;
                }
            )*
        }
        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $story() {
                    let (s, schema) = crate::testing::fresh_pg().await.expect("PostgreSQL must be reachable for the conformance suite");
                    super::$story(std::sync::Arc::new(s)).await;
                    crate::testing::drop_pg_schema(&schema).await.expect("drop schema");
                }
            )*
        }
    };
}

mod documents;
mod ekyc;
mod flows;
mod health;
mod import_jobs;
mod inquiries;
mod limits;
mod members;
mod operators;
mod orgs;
mod outbox;
mod passkeys;
mod rekey;
mod retention;
mod roster;
mod roster_rekey;
mod users;
