//! Rotating the MAC key (issue #14, point 10): a deployment that began with a bare
//! `MIMOTO_SECRET_KEY` (the key `m0`) adds `m1`, makes it active and runs `mimoto keys rotate`;
//! then runs on `m1` alone. Nobody is signed out or loses an account while both keys are
//! configured, and after the rotation every account is found under the new key.

use crate::common::browser::Browser;
use crate::common::console::{create_operator, sign_in};
use crate::common::{Backend, Opts, TestApp, PASSWORD};
use app::config::{Limit, Limits};
use app::services::operators::Role;
use app::services::rekey::{self, RotateReport};
use serde_json::json;

const M0: &str = "BwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwc=";
const M1: &str = "m1:CQkJCQkJCQkJCQkJCQkJCQkJCQkJCQkJCQkJCQkJCQk=";
const EMAIL: &str = "rotate@example.com";
const TWIN: &str = "twin@example.com";
const GUESSED: &str = "guessed@example.com";

fn changed(report: &RotateReport, name: &str) -> u64 {
    report.columns.iter().find(|c| c.name == name).map_or(u64::MAX, |c| c.changed)
}

async fn signed_in(b: &Browser) -> bool {
    let menu = b.get("/menu").await;
    menu.status == 200 && menu.has(EMAIL)
}

async fn rotation(backend: Backend) {
    let mut t = TestApp::start(Opts {
        backend,
        config: |c| {
            c.secret_key = Some(M0.into());
            c.data_keys = Some("k1:AQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQE=".into());
        },
        limits: Limits { login_failures_per_account: Limit::new(3, 86_400), ..Opts::default().limits },
        ..Opts::default()
    })
    .await;
    let api_token = t.register(EMAIL, PASSWORD).await;
    // A registration of TWIN left at its code while another one of TWIN completes under m0.
    let (waiting, waiting_code) = t.register_until_code(TWIN, PASSWORD).await;
    t.register(TWIN, PASSWORD).await;
    // Three failed logins on an account: the daily ceiling (3 here) is reached under m0.
    for _ in 0..3 {
        let (s, _) = t.post("/api/v1/sessions", json!({"email": GUESSED, "password": "wrong-wrong-wrong"})).await;
        assert_eq!(s, 401);
    }
    let mut b = Browser::new(&t);
    b.login(EMAIL, PASSWORD).await;
    let page_before = b.get("/menu").await;
    assert!(signed_in(&b).await);
    let op = create_operator(&t, "rotation-admin@example.com", "管理 花子", Role::Admin).await;
    let mut console = Browser::not_following(&t);
    sign_in(&t, &console, &op).await;

    // Both keys, m1 active: everything made under m0 still works.
    t.restart(|c| {
        c.secret_key = Some(format!("m0:{M0},{M1}"));
        c.active_secret_key = Some("m1".into());
    })
    .await;
    b.follow(&t);
    console.follow(&t);
    assert!(signed_in(&b).await, "a browser session made under m0 lives on");
    let (s, me) = t.get("/api/v1/me", Some(&api_token)).await;
    assert_eq!(s, 200, "an API token made under m0 lives on: {me}");
    assert_eq!(console.get("/console").await.status, 200, "so does a console session");
    let id = t.registration_at_account("133033").await;
    let (s, v) =
        t.post(&format!("/api/v1/registrations/{id}/account"), json!({"email": EMAIL, "password": PASSWORD})).await;
    assert_eq!(
        (s, v["error"]["code"].as_str()),
        (409, Some("email_taken")),
        "an address indexed under m0 is taken: {v}"
    );
    let (s, v) = t.post(&format!("/api/v1/registrations/{waiting}/verify"), json!({"code": waiting_code})).await;
    assert_eq!((s, v["error"]["code"].as_str()), (409, Some("email_taken")), "no second account for one address: {v}");
    let (s, v) = t.post("/api/v1/sessions", json!({"email": GUESSED, "password": "wrong-wrong-wrong"})).await;
    assert_eq!(s, 429, "the rotation hands out no fresh login budget: {v}");
    let other = Browser::new(&t);
    assert!(other.login(EMAIL, PASSWORD).await.url.ends_with("/menu"), "the account is found under m0");
    // A form rendered before the restart, with its CSRF token under m0, still submits.
    let out = b.post("/logout", &[("csrf", &page_before.csrf())]).await;
    assert_eq!(out.status, 200, "{}", out.html);
    assert!(!signed_in(&b).await, "logged out with the m0 token");

    let mut progress = |_: &str, _: u64, _: u64| {};
    let report = rekey::rotate(&t.app, 2, &mut progress).await.expect("rotate");
    assert!(report.complete(), "{report:?}");
    assert_eq!(report.active_mac_key, "m1");
    assert_eq!(changed(&report, "users.email_index"), 2, "{report:?}");
    assert_eq!(changed(&report, "operators.email_index"), 1, "{report:?}");
    let again = rekey::rotate(&t.app, 2, &mut progress).await.expect("rotate again");
    assert_eq!(again.changed(), 0, "a second run changes nothing: {again:?}");

    // m1 alone (m0 retired for the audit chain only).
    t.restart(|c| {
        c.secret_key = Some(M1.into());
        c.active_secret_key = None;
        c.retired_secret_keys = Some(format!("m0:{M0}"));
    })
    .await;
    console.follow(&t);
    let fresh = Browser::new(&t);
    assert!(fresh.login(EMAIL, PASSWORD).await.url.ends_with("/menu"), "the account is found under m1");
    assert!(signed_in(&fresh).await);
    let (s, v) = t.post("/api/v1/sessions", json!({"email": EMAIL, "password": PASSWORD})).await;
    assert_eq!(s, 201, "{v}");
    // Sessions made under m0 end with the key: members and operators sign in again.
    assert_eq!(t.get("/api/v1/me", Some(&api_token)).await.0, 401);
    let console_page = console.get("/console").await;
    assert_eq!((console_page.status, console_page.location.as_deref()), (303, Some("/console/login")));
    t.clock.advance(time::Duration::seconds(30));
    let again = Browser::not_following(&t);
    sign_in(&t, &again, &op).await;
    assert_eq!(again.get("/console").await.status, 200, "the operator is found under m1");

    let chain = t.app.store.verify_audit_chain().await.expect("verify");
    assert_eq!(chain.broken, None, "rows chained under m0 and m1 all check out");
    assert!(chain.rows > 5, "{chain:?}");
    t.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_a_mac_key_rotation_signs_nobody_out_early_and_loses_no_account() {
    rotation(Backend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_a_mac_key_rotation_signs_nobody_out_early_and_loses_no_account() {
    rotation(Backend::Postgres).await;
}
