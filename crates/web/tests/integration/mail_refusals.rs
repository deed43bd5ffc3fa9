//! Mail that respects the member (issue #15, point 4): an address the member's mail server
//! refuses for good is not retried; the member is told on the code screen and can change the
//! address there; operators see the refusal (domain and reason only) in the console. An
//! address no mail could reach (non-ASCII without SMTPUTF8) is refused where it is typed.

use std::time::{Duration, Instant};

use crate::common::browser::Browser;
use crate::common::console::{create_operator, sign_in};
use crate::common::{Backend, Opts, TestApp, PASSWORD};
use app::services::operators::Role;
use serde_json::json;

const REFUSED: &str = "refused.member@example.com";

/// An API registration up to the code, for an address whose mail may never arrive.
async fn until_code_sent(t: &TestApp, email: &str) -> String {
    let id = t.registration_at_account("133033").await;
    let (s, v) =
        t.post(&format!("/api/v1/registrations/{id}/account"), json!({"email": email, "password": PASSWORD})).await;
    assert_eq!(s, 200, "{v}");
    let (s, v) = t
        .post(
            &format!("/api/v1/registrations/{id}/consents"),
            json!({"accepted": ["platform_terms", "org_privacy", "point_terms"]}),
        )
        .await;
    assert_eq!((s, v["state"].as_str()), (200, Some("code_sent")), "{v}");
    id
}

async fn mail_status(t: &TestApp, id: &str) -> String {
    let (s, v) = t.get(&format!("/api/v1/registrations/{id}"), None).await;
    assert_eq!(s, 200, "{v}");
    v["mail_status"].as_str().unwrap_or_default().to_string()
}

async fn a_refused_address_is_told_to_the_member_and_never_retried(backend: Backend) {
    let t = TestApp::start(Opts { backend, ..Opts::default() }).await;
    let id = until_code_sent(&t, REFUSED).await;
    let deadline = Instant::now() + Duration::from_secs(15);
    while mail_status(&t, &id).await != "refused" {
        assert!(Instant::now() < deadline, "the refusal was never recorded");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // Not retried: hours later the mail was still tried once.
    t.clock.advance(time::Duration::hours(2));
    t.app.mail_wake.notify_one();
    tokio::time::sleep(Duration::from_millis(500)).await;
    let refused = t.app.store.refused_mails(10).await.expect("refused");
    assert_eq!(refused.len(), 1);
    assert_eq!(refused[0].attempts, 1, "a refusal ends the retries");
    let reason = refused[0].last_error.clone().unwrap_or_default();
    assert!(reason.contains("550") && !reason.contains("refused.member"), "{reason}");
    assert_eq!(t.app.store.pending_mail_count().await.expect("pending"), 0);

    // The member sees why on the code screen, and changes the address there.
    let b = Browser::new(&t);
    let page = b.get(&format!("/register/{id}")).await;
    assert!(page.has("受け取りを拒否"), "{}", page.main_text());
    assert!(page.has("メールアドレスを変更する"));
    let form = b.get(&format!("/register/{id}/account")).await;
    assert_eq!(form.status, 200);
    assert!(
        form.has(&format!("name=\"email\" type=\"email\" value=\"{REFUSED}\"")),
        "the address is kept to be corrected"
    );
    let good = "good.member@example.com";
    let page = b
        .post(&format!("/register/{id}/account"), &[("csrf", &form.csrf()), ("email", good), ("password", PASSWORD)])
        .await;
    assert_eq!(page.status, 200, "{}", page.main_text());
    let consents = [
        ("csrf", page.csrf()),
        ("platform_terms", "on".to_string()),
        ("org_privacy", "on".to_string()),
        ("point_terms", "on".to_string()),
    ];
    let consents: Vec<(&str, &str)> = consents.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let page = b.post(&format!("/register/{id}/consents"), &consents).await;
    assert!(page.has(good), "{}", page.main_text());
    assert!(!page.has("受け取りを拒否"), "the new address's mail is not refused");
    let code = t.wait_code(good, 1).await;
    let (s, v) = t.post(&format!("/api/v1/registrations/{id}/verify"), json!({"code": code})).await;
    assert_eq!((s, v["registration"]["email"].as_str()), (200, Some(good)), "{v}");

    // The customer center sees the refusal: the domain and the reason, never the address.
    let op = create_operator(&t, "center@example.com", "窓口 花子", Role::Reviewer).await;
    let ob = Browser::not_following(&t);
    sign_in(&t, &ob, &op).await;
    let page = ob.get("/console/mail").await;
    assert_eq!(page.status, 200);
    assert!(page.has("配信できなかったメール") && page.has("example.com") && page.has("550"), "{}", page.main_text());
    assert!(!page.has("refused.member"), "{}", page.main_text());
    let audit = t.app.store.list_audit(None, 50).await.expect("audit");
    assert!(audit.iter().any(|a| a.action == "mail.view_refusals"), "the view is audited");
    t.stop().await;
}

#[tokio::test]
async fn sqlite_a_refused_address_is_told_to_the_member_and_never_retried() {
    a_refused_address_is_told_to_the_member_and_never_retried(Backend::Sqlite).await;
}

#[tokio::test]
async fn postgres_a_refused_address_is_told_to_the_member_and_never_retried() {
    a_refused_address_is_told_to_the_member_and_never_retried(Backend::Postgres).await;
}

#[tokio::test]
async fn an_address_no_mail_could_reach_is_refused_where_it_is_typed() {
    let t = TestApp::start(Opts::default()).await;
    let id = t.registration_at_account("133033").await;
    let (s, v) = t
        .post(&format!("/api/v1/registrations/{id}/account"), json!({"email": "山田@example.jp", "password": PASSWORD}))
        .await;
    assert_eq!((s, v["error"]["code"].as_str()), (422, Some("email_not_ascii")), "{v}");
    assert!(v["error"]["message"].as_str().unwrap_or_default().contains("半角英数字"), "{v}");
    // Full-width ASCII is folded, not refused.
    let (s, v) = t
        .post(
            &format!("/api/v1/registrations/{id}/account"),
            json!({"email": "ｙａｍａｄａ＠ｅｘａｍｐｌｅ．ｊｐ", "password": PASSWORD}),
        )
        .await;
    assert_eq!((s, v["email"].as_str()), (200, Some("yamada@example.jp")), "{v}");
    let (s, v) = t.post("/api/v1/password-resets", json!({"email": "山田@example.jp"})).await;
    assert_eq!((s, v["error"]["code"].as_str()), (422, Some("email_not_ascii")), "{v}");
    t.stop().await;

    // A relay that takes SMTPUTF8 takes them.
    let t = TestApp::start(Opts { config: |c| c.smtp_utf8 = true, ..Opts::default() }).await;
    let id = t.registration_at_account("133033").await;
    let (s, v) = t
        .post(&format!("/api/v1/registrations/{id}/account"), json!({"email": "山田@example.jp", "password": PASSWORD}))
        .await;
    assert_eq!(s, 200, "{v}");
    t.stop().await;
}
