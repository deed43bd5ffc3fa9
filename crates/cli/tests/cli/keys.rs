//! `mimoto keys rotate`: the demo data sealed under k1 moves to k2, once.

use std::process::{Command, Output, Stdio};

use app::crypto::Keys;
use store::prelude::*;
use store::{SealedColumn, SealedKey};

const SECRET: &str = "BwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwc=";
const K1: &str = "k1:AQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQE=";
const K2: &str = "k2:AgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgI=";

fn mimoto(dir: &std::path::Path, args: &[&str], data_keys: &str, active: Option<&str>) -> Output {
    mimoto_with(dir, args, data_keys, active, &[("MIMOTO_SECRET_KEY", SECRET)])
}

fn mimoto_with(
    dir: &std::path::Path,
    args: &[&str],
    data_keys: &str,
    active: Option<&str>,
    env: &[(&str, &str)],
) -> Output {
    let mut c = Command::new(env!("CARGO_BIN_EXE_mimoto"));
    c.args(args)
        .env("MIMOTO_DATA_DIR", dir)
        .env("MIMOTO_DATA_KEYS", data_keys)
        .env_remove("MIMOTO_SECRET_KEY")
        .env_remove("MIMOTO_ACTIVE_SECRET_KEY")
        .env_remove("MIMOTO_RETIRED_SECRET_KEYS")
        .env_remove("MIMOTO_ACTIVE_DATA_KEY")
        .env_remove("MIMOTO_DATABASE_URL")
        .env_remove("MIMOTO_CONFIG")
        .stdin(Stdio::null());
    if let Some(a) = active {
        c.env("MIMOTO_ACTIVE_DATA_KEY", a);
    }
    c.envs(env.iter().copied());
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
    assert!(stderr.contains("health_entries.data_enc: 7 read, 7 re-keyed"), "progress per batch: {stderr}");
    assert!(
        stdout.contains(&format!(
            "active data key k2, active MAC key m0: {} re-keyed, 0 skipped, 0 failed",
            before.len()
        )),
        "{stdout}"
    );
    assert!(stdout.contains("everything is sealed under data key k2"), "{stdout}");
    let after = key_ids(dir.path()).await;
    assert_eq!(after.len(), before.len());
    assert!(after.iter().all(|k| k == "k2"));

    // Again: nothing to do; with k2 alone the audit chain (the MAC key) still verifies.
    let out = mimoto(dir.path(), &["keys", "rotate"], &both, Some("k2"));
    assert!(
        text(&out.stdout).contains("active data key k2, active MAC key m0: 0 re-keyed, 0 skipped, 0 failed"),
        "{}",
        text(&out.stdout)
    );
    let out = mimoto(dir.path(), &["audit", "verify"], K2, None);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(text(&out.stdout).contains("the chain holds"));

    // A rotation to a key that is not configured is refused before anything is read.
    let out = mimoto(dir.path(), &["keys", "rotate"], K2, Some("k3"));
    assert!(!out.status.success());
}

const M1: &str = "m1:CQkJCQkJCQkJCQkJCQkJCQkJCQkJCQkJCQkJCQkJCQk=";

/// Issue #14, point 10: the MAC key of a deployment that began with a bare key (`m0`) moves to
/// `m1`; afterwards the deployment runs on `m1` alone, and the audit chain, which is never
/// rewritten, still verifies when the old key is listed as retired — and says so when not.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_retired_mac_key_leaves_nothing_behind_but_the_audit_chain_it_signed() {
    let dir = tempfile::tempdir().expect("tempdir");
    let out = mimoto(dir.path(), &["demo-data"], K1, None);
    assert!(out.status.success(), "{}", text(&out.stderr));

    let both = format!("m0:{SECRET},{M1}");
    let rotating = [("MIMOTO_SECRET_KEY", both.as_str()), ("MIMOTO_ACTIVE_SECRET_KEY", "m1")];
    let out = mimoto_with(dir.path(), &["keys", "rotate"], K1, None, &rotating);
    let (stdout, stderr) = (text(&out.stdout), text(&out.stderr));
    assert!(out.status.success(), "{stdout}\n{stderr}");
    assert!(stdout.contains("roster MAC key: 4 read, 4 re-keyed"), "the demo organizations: {stdout}");
    assert!(stdout.contains("everything is sealed under data key k1 and indexed under MAC key m1"), "{stdout}");
    let out = mimoto_with(dir.path(), &["keys", "rotate"], K1, None, &rotating);
    assert!(text(&out.stdout).contains("active MAC key m1: 0 re-keyed, 0 skipped, 0 failed"), "{}", text(&out.stdout));

    // m1 alone: the rows chained under m0 cannot be checked without it...
    let only_m1 = [("MIMOTO_SECRET_KEY", M1)];
    let out = mimoto_with(dir.path(), &["audit", "verify"], K1, None, &only_m1);
    assert!(!out.status.success());
    assert!(text(&out.stderr).contains("MIMOTO_RETIRED_SECRET_KEYS"), "{}", text(&out.stderr));
    // ...and hold with it retired; the rows after the rotation are chained under m1.
    let retired = format!("m0:{SECRET}");
    let with_retired = [("MIMOTO_SECRET_KEY", M1), ("MIMOTO_RETIRED_SECRET_KEYS", retired.as_str())];
    let out = mimoto_with(dir.path(), &["audit", "verify"], K1, None, &with_retired);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(text(&out.stdout).contains("the chain holds"));
    let url = format!("sqlite://{}", dir.path().join("mimoto.db").display());
    let db = store::sqlite::SqliteStore::connect(&url).await.expect("open db");
    let keys: Vec<(Option<String>,)> =
        sqlx::query_as("SELECT chain_key FROM audit_log ORDER BY seq").fetch_all(db.pool()).await.expect("rows");
    assert_eq!(keys.first().and_then(|k| k.0.as_deref()), Some("m0"), "demo data was chained under m0");
    assert_eq!(keys.last().and_then(|k| k.0.as_deref()), Some("m1"), "the rotation's own row under m1");

    // A key both live and retired is a configuration error.
    let confused =
        [("MIMOTO_SECRET_KEY", M1), ("MIMOTO_RETIRED_SECRET_KEYS", "m1:CQkJCQkJCQkJCQkJCQkJCQkJCQkJCQkJCQkJCQkJCQk=")];
    let out = mimoto_with(dir.path(), &["audit", "verify"], K1, None, &confused);
    assert!(!out.status.success());
}
