//! `mimoto keys rotate`: the demo data sealed under k1 moves to k2, once.

use std::process::{Command, Output, Stdio};

use app::crypto::Keys;
use store::prelude::*;
use store::{SealedColumn, SealedKey};

const SECRET: &str = "BwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwc=";
const K1: &str = "k1:AQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQE=";
const K2: &str = "k2:AgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgI=";

fn mimoto(dir: &std::path::Path, args: &[&str], data_keys: &str, active: Option<&str>) -> Output {
    let mut c = Command::new(env!("CARGO_BIN_EXE_mimoto"));
    c.args(args)
        .env("MIMOTO_DATA_DIR", dir)
        .env("MIMOTO_SECRET_KEY", SECRET)
        .env("MIMOTO_DATA_KEYS", data_keys)
        .env_remove("MIMOTO_ACTIVE_DATA_KEY")
        .env_remove("MIMOTO_DATABASE_URL")
        .env_remove("MIMOTO_CONFIG")
        .stdin(Stdio::null());
    if let Some(a) = active {
        c.env("MIMOTO_ACTIVE_DATA_KEY", a);
    }
    c.output().expect("run mimoto")
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// The key ids of every sealed value in the data directory's database.
async fn key_ids(dir: &std::path::Path) -> Vec<String> {
    let url = format!("sqlite://{}", dir.join("mimoto.db").display());
    let db = store::sqlite::SqliteStore::connect(&url).await.expect("open db");
    let mut ids = Vec::new();
    for column in SealedColumn::ALL {
        let mut after: Option<SealedKey> = None;
        loop {
            let rows = db.sealed_batch(column, after.as_ref(), 100).await.expect("batch");
            let Some(last) = rows.last() else { break };
            after = Some(last.key.clone());
            ids.extend(rows.iter().map(|r| Keys::key_id_of(&r.sealed).expect("sealed").to_string()));
        }
    }
    ids
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keys_rotate_reseals_the_demo_data_under_the_new_key_once() {
    let dir = tempfile::tempdir().expect("tempdir");
    let out = mimoto(dir.path(), &["demo-data"], K1, None);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let before = key_ids(dir.path()).await;
    assert!(!before.is_empty() && before.iter().all(|k| k == "k1"));

    let both = format!("{K1},{K2}");
    let out = mimoto(dir.path(), &["keys", "rotate", "--batch", "7"], &both, Some("k2"));
    let (stdout, stderr) = (text(&out.stdout), text(&out.stderr));
    assert!(out.status.success(), "{stdout}\n{stderr}");
    assert!(stderr.contains("health_entries.data_enc: 7 read, 7 re-sealed"), "progress per batch: {stderr}");
    assert!(stdout.contains(&format!("active key k2: {} re-sealed, 0 skipped, 0 failed", before.len())), "{stdout}");
    assert!(stdout.contains("everything is sealed under key k2"), "{stdout}");
    let after = key_ids(dir.path()).await;
    assert_eq!(after.len(), before.len());
    assert!(after.iter().all(|k| k == "k2"));

    // Again: nothing to do; with k2 alone the audit chain (the MAC key) still verifies.
    let out = mimoto(dir.path(), &["keys", "rotate"], &both, Some("k2"));
    assert!(text(&out.stdout).contains("active key k2: 0 re-sealed, 0 skipped, 0 failed"), "{}", text(&out.stdout));
    let out = mimoto(dir.path(), &["audit", "verify"], K2, None);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(text(&out.stdout).contains("the chain holds"));

    // A rotation to a key that is not configured is refused before anything is read.
    let out = mimoto(dir.path(), &["keys", "rotate"], K2, Some("k3"));
    assert!(!out.status.success());
}
