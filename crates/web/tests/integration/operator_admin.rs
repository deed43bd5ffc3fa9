//! Operators as a managed population (#14): administrators disable and re-enable operators,
//! change roles, reset an authenticator (new secret shown once), end sessions and limit an
//! operator to organizations — over the console's pages, with every change audited.

use crate::common::browser::{Browser, Page};
use crate::common::console::{create_operator, sign_in, OperatorAccount, OP_PASSWORD};
use crate::common::{Backend, Opts, TestApp};
use crate::console::{application_in_review, opts};
use app::services::operators::Role;
use domain::clock::Clock as _;
use time::Duration;

/// The id of the operator with `email`, as the service lists them.
async fn id_of(t: &TestApp, email: &str) -> String {
    app::services::operators::list(&t.app)
        .await
        .expect("list")
        .into_iter()
        .find(|o| o.email == email)
        .map(|o| o.id)
        .expect("operator")
}

/// Presses the button `action` in the operator's form on the operators page.
async fn press(b: &Browser, id: &str, action: &str) -> Page {
    let page = b.get("/console/operators").await;
    assert_eq!(page.status, 200, "{}", page.html);
    b.post(&format!("/console/operators/{id}"), &[("csrf", &page.csrf()), ("action", action)]).await
}

/// The next sign-in of an operator needs a later TOTP step.
async fn sign_in_later(t: &TestApp, b: &Browser, op: &OperatorAccount) {
    t.clock.advance(Duration::seconds(31));
    sign_in(t, b, op).await;
}

async fn a_disabled_operator_loses_every_session_and_cannot_log_in(backend: Backend) {
    let t = TestApp::start(Opts { backend, ..Opts::default() }).await;
    let admin = create_operator(&t, "admin@mimoto.example.jp", "管理 太郎", Role::Admin).await;
    let reviewer = create_operator(&t, "reviewer@mimoto.example.jp", "審査 花子", Role::Reviewer).await;
    let rb = Browser::not_following(&t);
    sign_in(&t, &rb, &reviewer).await;
    let ab = Browser::not_following(&t);
    sign_in_later(&t, &ab, &admin).await;
    let list = ab.get("/console/operators").await;
    assert!(
        list.has("審査 花子") && list.has("reviewer@mimoto.example.jp") && list.has("すべての団体"),
        "{}",
        list.html
    );
    assert!(list.has("無効にする") && list.has("認証アプリを再設定する"), "real buttons with the words");
    let rid = id_of(&t, &reviewer.email).await;

    assert_eq!(press(&ab, &rid, "disable").await.location.as_deref(), Some("/console/operators"));
    assert_eq!(rb.get("/console").await.location.as_deref(), Some("/console/login"), "the session ended");
    t.clock.advance(Duration::seconds(31));
    let refused = rb.console_login(&reviewer.email, OP_PASSWORD, &reviewer.code_at(t.clock.now())).await;
    assert_eq!(refused.status, 401, "a disabled operator cannot log in");
    assert!(ab.get("/console/operators").await.has("無効"));

    assert_eq!(press(&ab, &rid, "enable").await.status, 303);
    sign_in_later(&t, &rb, &reviewer).await;

    // Reviewers manage nobody; an admin cannot change themselves.
    let aid = id_of(&t, &admin.email).await;
    let page = rb.get("/console").await;
    let r = rb.post(&format!("/console/operators/{aid}"), &[("csrf", &page.csrf()), ("action", "disable")]).await;
    assert_eq!(r.status, 403, "{}", r.html);
    assert_eq!(rb.get("/console/operators").await.status, 403);
    let page = ab.get("/console/operators").await;
    let me = ab.post(&format!("/console/operators/{aid}"), &[("csrf", &page.csrf()), ("action", "disable")]).await;
    assert_eq!(me.status, 409, "{}", me.html);
    assert!(me.has("別の管理者に依頼してください"), "{}", me.html);
    let forged = ab.post(&format!("/console/operators/{rid}"), &[("csrf", "forged"), ("action", "disable")]).await;
    assert_eq!(forged.status, 403);

    let log = t.app.store.list_audit(None, 100).await.expect("audit");
    let changes: Vec<&str> =
        log.iter().rev().filter(|e| e.action.starts_with("operator.")).map(|e| e.action.as_str()).collect();
    assert_eq!(changes, ["operator.disable", "operator.enable"]);
    assert!(log.iter().filter(|e| e.action.starts_with("operator.")).all(|e| e.target_id.as_deref() == Some(&rid)));
    t.stop().await;
}

async fn roles_change_and_a_reset_authenticator_is_shown_once(backend: Backend) {
    let t = TestApp::start(Opts { backend, ..Opts::default() }).await;
    let admin = create_operator(&t, "admin@mimoto.example.jp", "管理 太郎", Role::Admin).await;
    let other = create_operator(&t, "second@mimoto.example.jp", "管理 次郎", Role::Admin).await;
    let ab = Browser::not_following(&t);
    sign_in(&t, &ab, &admin).await;
    let ob = Browser::not_following(&t);
    sign_in_later(&t, &ob, &other).await;
    assert_eq!(ob.get("/console/audit").await.status, 200);
    let oid = id_of(&t, &other.email).await;
    assert_eq!(press(&ab, &oid, "make_reviewer").await.status, 303);
    assert_eq!(ob.get("/console/audit").await.status, 403, "a reviewer now");

    let shown = press(&ab, &oid, "reset_totp").await;
    assert_eq!(shown.status, 200, "{}", shown.html);
    assert_eq!(shown.headers.get("cache-control").and_then(|v| v.to_str().ok()), Some("no-store"));
    let uri =
        shown.html.split("<code>").filter_map(|p| p.split("</code>").next()).find(|c| c.starts_with("otpauth://"));
    let uri = uri.expect("the new otpauth URI").replace("&amp;", "&");
    assert!(!uri.contains(other.otpauth_uri.split("secret=").nth(1).unwrap_or("-").split('&').next().unwrap_or("-")));
    assert_eq!(ob.get("/console").await.location.as_deref(), Some("/console/login"), "sessions end");
    t.clock.advance(Duration::seconds(31));
    let old = ob.console_login(&other.email, OP_PASSWORD, &other.code_at(t.clock.now())).await;
    assert_eq!(old.status, 401, "the old authenticator no longer works");
    let renewed = OperatorAccount { email: other.email.clone(), otpauth_uri: uri };
    sign_in_later(&t, &ob, &renewed).await;
    t.stop().await;
}

async fn an_operator_limited_to_an_organization_sees_only_its_cases(backend: Backend) {
    let t = TestApp::start(Opts { backend, ..opts() }).await;
    let admin = create_operator(&t, "admin@mimoto.example.jp", "管理 太郎", Role::Admin).await;
    let reviewer = create_operator(&t, "reviewer@mimoto.example.jp", "審査 花子", Role::Reviewer).await;
    let a = application_in_review(&t, "leonard@example.com").await;
    let ab = Browser::not_following(&t);
    sign_in(&t, &ab, &admin).await;
    let rb = Browser::not_following(&t);
    sign_in_later(&t, &rb, &reviewer).await;
    assert!(rb.get("/console").await.has(&format!("/console/reviews/{}", a.id)), "all organizations at first");

    let rid = id_of(&t, &reviewer.email).await;
    let page = ab.get("/console/operators").await;
    let unknown = ab
        .post(
            &format!("/console/operators/{rid}"),
            &[("csrf", &page.csrf()), ("action", "scope"), ("insurer_numbers", "999999")],
        )
        .await;
    assert_eq!(unknown.status, 404, "an unknown insurer number is refused: {}", unknown.html);
    let scoped = ab
        .post(
            &format!("/console/operators/{rid}"),
            &[("csrf", &page.csrf()), ("action", "scope"), ("insurer_numbers", "06132013")],
        )
        .await;
    assert_eq!(scoped.status, 303, "{}", scoped.html);
    assert!(ab.get("/console/operators").await.has("06132013"));

    let queue = rb.get("/console").await;
    assert!(!queue.has(&format!("/console/reviews/{}", a.id)), "another organization's case is not listed");
    assert_eq!(rb.get(&format!("/console/reviews/{}", a.id)).await.status, 404, "nor shown");

    // Back to all organizations.
    let page = ab.get("/console/operators").await;
    let all = ab
        .post(
            &format!("/console/operators/{rid}"),
            &[("csrf", &page.csrf()), ("action", "scope"), ("insurer_numbers", "")],
        )
        .await;
    assert_eq!(all.status, 303);
    assert_eq!(rb.get(&format!("/console/reviews/{}", a.id)).await.status, 200);
    let _ = a.token;
    t.stop().await;
}

async fn administrators_filter_and_export_the_audit_log(backend: Backend) {
    let t = TestApp::start(Opts { backend, ..Opts::default() }).await;
    let admin = create_operator(&t, "admin@mimoto.example.jp", "管理 太郎", Role::Admin).await;
    let reviewer = create_operator(&t, "reviewer@mimoto.example.jp", "審査 花子", Role::Reviewer).await;
    let token = t.register("member@example.com", crate::common::PASSWORD).await;
    let member = app::services::auth::authenticate(&t.app, &token).await.expect("auth").expect("member");
    assert_eq!(
        t.post("/api/v1/sessions", serde_json::json!({"email": "member@example.com", "password": "Wrong-Wrong-2026"}))
            .await
            .0,
        401
    );
    let ab = Browser::not_following(&t);
    sign_in(&t, &ab, &admin).await;

    let page = ab.get(&format!("/console/audit?action=member.&who={}", member.user.id)).await;
    assert_eq!(page.status, 200, "{}", page.html);
    assert!(page.has("member.login_failed") && !page.has("console.login"), "{}", page.html);
    assert!(page.has("CSVで書き出す") && page.has("絞り込む"));

    let (status, headers, body) = ab.bytes(&format!("/console/audit.csv?action=member.&who={}", member.user.id)).await;
    assert_eq!(status, 200);
    assert_eq!(headers.get("content-type").and_then(|v| v.to_str().ok()), Some("text/csv; charset=utf-8"));
    assert_eq!(headers.get("cache-control").and_then(|v| v.to_str().ok()), Some("no-store"));
    let csv = String::from_utf8(body).expect("utf-8");
    let mut lines = csv.lines();
    assert_eq!(lines.next(), Some("seq,at,operator_id,operator_name,member_id,action,target_type,target_id,client_ip"));
    let rows: Vec<&str> = lines.collect();
    assert!(!rows.is_empty() && rows.iter().all(|r| r.contains(&member.user.id) && r.contains(",member.")), "{csv}");
    assert!(!csv.contains("member@example.com"), "never personal data");

    let bad = ab.get("/console/audit?from=yesterday").await;
    assert_eq!(bad.status, 422, "{}", bad.html);
    let future = ab.get("/console/audit?from=2099-01-01").await;
    assert!(!future.has("<code>console.login</code>"), "a date range filters");

    let log = t.app.store.list_audit(None, 5).await.expect("audit");
    assert!(log.iter().any(|e| e.action == "audit.export"), "the export is on the record");
    let rb = Browser::not_following(&t);
    sign_in_later(&t, &rb, &reviewer).await;
    assert_eq!(rb.bytes("/console/audit.csv").await.0, 403);
    t.stop().await;
}

mod sqlite {
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn administrators_filter_and_export_the_audit_log() {
        super::administrators_filter_and_export_the_audit_log(super::Backend::Sqlite).await;
    }
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_disabled_operator_loses_every_session_and_cannot_log_in() {
        super::a_disabled_operator_loses_every_session_and_cannot_log_in(super::Backend::Sqlite).await;
    }
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn roles_change_and_a_reset_authenticator_is_shown_once() {
        super::roles_change_and_a_reset_authenticator_is_shown_once(super::Backend::Sqlite).await;
    }
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn an_operator_limited_to_an_organization_sees_only_its_cases() {
        super::an_operator_limited_to_an_organization_sees_only_its_cases(super::Backend::Sqlite).await;
    }
}

mod postgres {
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn administrators_filter_and_export_the_audit_log() {
        super::administrators_filter_and_export_the_audit_log(super::Backend::Postgres).await;
    }
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_disabled_operator_loses_every_session_and_cannot_log_in() {
        super::a_disabled_operator_loses_every_session_and_cannot_log_in(super::Backend::Postgres).await;
    }
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn roles_change_and_a_reset_authenticator_is_shown_once() {
        super::roles_change_and_a_reset_authenticator_is_shown_once(super::Backend::Postgres).await;
    }
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn an_operator_limited_to_an_organization_sees_only_its_cases() {
        super::an_operator_limited_to_an_organization_sees_only_its_cases(super::Backend::Postgres).await;
    }
}
