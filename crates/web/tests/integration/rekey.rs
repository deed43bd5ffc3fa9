//! `mimoto keys rotate` (issue #14, point 10): data sealed under k1 is re-sealed under k2, an
//! app with only k2 still reads all of it, and a second run changes nothing.

use std::sync::Arc;

use crate::common::{Backend, Opts, TestApp, PASSWORD};
use app::crypto::Keys;
use app::services::auth::{self, SessionKind};
use app::services::inquiry::{self, NewInquiry};
use app::services::operators::{self, Role};
use app::services::rekey::{self, aad_of, RotateReport, IMAGES};
use app::{App, AppState};
use domain::locale::Locale;
use serde_json::json;
use store::{EkycImage, SealedColumn, SealedKey};

const SECRET: &str = "BwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwc=";
const K1: &str = "k1:AQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQE=";
const K2: &str = "k2:AgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgI=";

/// An app on the same store, data dir and clock as `t`, with other data keys.
fn app_with_keys(t: &TestApp, data_keys: &str, active: Option<&str>) -> AppState {
    let mut config = t.app.config.clone();
    config.data_keys = Some(data_keys.to_string());
    config.active_data_key = active.map(str::to_string);
    App::with_store(config, t.app.store.clone(), Arc::new(t.clock.clone())).expect("app")
}

/// Every sealed value of the store: (column, row id, key id), each checked to open under
/// `app`'s keys.
async fn sealed_key_ids(app: &App) -> Vec<(SealedColumn, String, String)> {
    let mut out = Vec::new();
    for column in SealedColumn::ALL {
        let mut after: Option<SealedKey> = None;
        loop {
            let rows = app.store.sealed_batch(column, after.as_ref(), 3).await.expect("batch");
            let Some(last) = rows.last() else { break };
            after = Some(last.key.clone());
            for row in &rows {
                let aad = aad_of(column, row).expect("aad inputs");
                app.keys.open(&aad, &row.sealed).unwrap_or_else(|e| panic!("{column:?} {}: {e}", row.key.id));
                let id = Keys::key_id_of(&row.sealed).expect("sealed format").to_string();
                out.push((column, row.key.id.clone(), id));
            }
        }
    }
    out
}

fn count(report: &RotateReport, name: &str) -> u64 {
    report.columns.iter().find(|c| c.name == name).map_or(0, |c| c.changed)
}

async fn rotation(backend: Backend) {
    let t = TestApp::start(Opts {
        backend,
        config: |c| {
            c.secret_key = Some(SECRET.into());
            c.data_keys = Some(K1.into());
        },
        ..Opts::default()
    })
    .await;
    // Under k1: a member (account, flows, mails), the roster (demo data), an inquiry, an
    // eKYC application and an image.
    let token = t.register("rekey@example.com", PASSWORD).await;
    t.verify_identity(&token).await;
    let (s, v) = t.post_auth("/api/v1/ekyc-applications", &token, json!({})).await;
    assert_eq!(s, 201, "{v}");
    let application = v["id"].as_str().expect("id").to_string();
    let input =
        NewInquiry { category: "other", message: "鍵の確認", email: "rekey@example.com", attach_account: false };
    inquiry::submit(&t.app, None, Locale::Ja, input, "127.0.0.1").await.expect("inquiry");
    operators::create(&t.app, "rekey-admin@mimoto.example.jp", "鍵 管理", Role::Admin, "a long admin passphrase 42")
        .await
        .expect("operator");
    t.app.images.put("rekey-image", b"not really an image").await.expect("put image");
    t.app
        .store
        .add_ekyc_image(&EkycImage {
            id: "rekey-image".into(),
            application_id: application,
            kind: "document_front".into(),
            sha256: vec![0; 32],
            size: 19,
            created_at: t.app.now(),
            deleted_at: None,
        })
        .await
        .expect("image row");

    let before = sealed_key_ids(&t.app).await;
    for column in [
        SealedColumn::UserEmail,
        SealedColumn::FlowData,
        SealedColumn::OutboxPayload,
        SealedColumn::RosterData,
        SealedColumn::EkycData,
        SealedColumn::InquiryEmail,
        SealedColumn::InquiryMessage,
        SealedColumn::OperatorEmail,
        SealedColumn::OperatorName,
        SealedColumn::OperatorTotp,
    ] {
        assert!(before.iter().any(|(c, _, _)| *c == column), "{column:?} has data");
    }
    assert!(before.iter().all(|(_, _, k)| k == "k1"));

    // k2 added and made active: rotate, in small batches.
    let both = app_with_keys(&t, &format!("{K1},{K2}"), Some("k2"));
    let mut seen = Vec::new();
    let report =
        rekey::rotate(&both, 2, &mut |table: &str, done, changed| seen.push((table.to_string(), done, changed)))
            .await
            .expect("rotate");
    assert!(report.complete(), "{report:?}");
    assert_eq!(report.active_key, "k2");
    assert_eq!(report.changed(), before.len() as u64 + 1, "every value and the image: {report:?}");
    assert_eq!(count(&report, IMAGES), 1);
    assert!(count(&report, "roster_records.data_enc") > 2, "more than one batch: {report:?}");
    assert!(seen.iter().any(|(table, _, _)| table == "users.email_enc"), "progress per table: {seen:?}");

    // (a) everything is under k2, (b) an app with only k2 reads all of it.
    let only_k2 = app_with_keys(&t, K2, None);
    let after = sealed_key_ids(&only_k2).await;
    assert_eq!(after.len(), before.len());
    assert!(after.iter().all(|(_, _, k)| k == "k2"), "{after:?}");
    assert_eq!(only_k2.images.get("rekey-image").await.expect("image under k2"), b"not really an image");
    auth::login(&only_k2, "rekey@example.com", PASSWORD, "127.0.0.1", SessionKind::Api).await.expect("login under k2");
    let ops = operators::list(&only_k2).await.expect("operators under k2");
    assert!(ops.iter().any(|o| o.email == "rekey-admin@mimoto.example.jp" && o.name == "鍵 管理"));
    assert!(t.app.images.get("rekey-image").await.is_err(), "k1 alone no longer opens the image");

    // (c) a second run changes nothing.
    let again = rekey::rotate(&both, 500, &mut |_: &str, _, _| {}).await.expect("rotate again");
    assert_eq!((again.changed(), again.skipped(), again.failed()), (0, 0, 0), "{again:?}");
    t.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rotate_reseals_everything_under_the_active_key_sqlite() {
    rotation(Backend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rotate_reseals_everything_under_the_active_key_postgres() {
    rotation(Backend::Postgres).await;
}
