//! Exactly-once steps (issue #15, point 3): a step that uses up a one-time code and changes
//! state — an account created, a password set — is done whole or not at all. A fault in the
//! middle leaves the code valid (the member just tries again); a retry of a request that went
//! through but whose answer was lost answers as it did.

use std::time::{Duration, Instant};

use crate::common::{Backend, Opts, TestApp, PASSWORD};
use serde_json::json;

const NEW_PASSWORD: &str = "another horse battery 42";

/// A fault is an outage (503) on PostgreSQL; SQLite can only abort (500). Either way the
/// member was told the step did not happen.
fn failed(t: &TestApp, status: u16) -> bool {
    match t.fault() {
        store::testing::Fault::Pg { .. } => status == 503,
        store::testing::Fault::Sqlite { .. } => status == 500,
    }
}

async fn the_code_outlives_a_failed_account_creation(backend: Backend) {
    let t = TestApp::start(Opts { backend, ..Opts::default() }).await;
    let email = "once@example.com";
    let (id, code) = t.register_until_code(email, PASSWORD).await;

    t.fault().break_writes("users").await.expect("fault");
    let (s, v) = t.post(&format!("/api/v1/registrations/{id}/verify"), json!({"code": code})).await;
    assert!(failed(&t, s), "{s} {v}");
    t.fault().heal("users").await.expect("heal");

    // Nothing was done: the flow still waits for its code, and no account exists.
    let (s, v) = t.get(&format!("/api/v1/registrations/{id}"), None).await;
    assert_eq!((s, v["state"].as_str()), (200, Some("code_sent")), "{v}");
    let (s, _) = t.post("/api/v1/sessions", json!({"email": email, "password": PASSWORD})).await;
    assert_eq!(s, 401, "no account was created");

    // The same code, once the database is back, creates the account.
    let (s, v) = t.post(&format!("/api/v1/registrations/{id}/verify"), json!({"code": code})).await;
    assert_eq!(s, 200, "{v}");
    let token = v["session"]["token"].as_str().expect("token");
    let (s, me) = t.get("/api/v1/me", Some(token)).await;
    assert_eq!(s, 200, "{me}");
    assert_eq!(t.mails_to(email).len(), 1, "no second code was needed");
    t.stop().await;
}

async fn a_retry_after_a_lost_answer_answers_as_before(backend: Backend) {
    let t = TestApp::start(Opts { backend, ..Opts::default() }).await;
    let email = "retry@example.com";
    let (id, code) = t.register_until_code(email, PASSWORD).await;

    // The account is created, then the session cannot be: the member never hears of it.
    t.fault().break_writes("sessions").await.expect("fault");
    let (s, v) = t.post(&format!("/api/v1/registrations/{id}/verify"), json!({"code": code})).await;
    assert!(failed(&t, s), "{s} {v}");
    t.fault().heal("sessions").await.expect("heal");

    // A wrong code on the completed registration answers like a wrong code…
    let wrong = if code == "000000" { "111111" } else { "000000" };
    let (s, v) = t.post(&format!("/api/v1/registrations/{id}/verify"), json!({"code": wrong})).await;
    assert_eq!((s, v["error"]["code"].as_str()), (422, Some("code_wrong")), "{v}");
    // …and the same request again answers as it would have: signed in, one account.
    let (s, v) = t.post(&format!("/api/v1/registrations/{id}/verify"), json!({"code": code})).await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["registration"]["state"], "completed", "{v}");
    let token = v["session"]["token"].as_str().expect("token");
    assert_eq!(t.get("/api/v1/me", Some(token)).await.0, 200);

    // Only while the code would have been valid.
    t.clock.advance(time::Duration::minutes(31));
    let (s, v) = t.post(&format!("/api/v1/registrations/{id}/verify"), json!({"code": code})).await;
    assert_eq!((s, v["error"]["code"].as_str()), (422, Some("code_wrong")), "{v}");
    t.stop().await;
}

async fn a_reset_is_done_whole_or_not_at_all(backend: Backend) {
    let t = TestApp::start(Opts { backend, ..Opts::default() }).await;
    let email = "reset-once@example.com";
    t.register(email, PASSWORD).await;
    let (s, v) = t.post("/api/v1/password-resets", json!({"email": email})).await;
    assert_eq!(s, 202, "{v}");
    let id = v["id"].as_str().expect("id").to_string();
    let code = t.wait_code(email, 2).await;
    let complete = json!({"code": code, "new_password": NEW_PASSWORD});

    t.fault().break_writes("users").await.expect("fault");
    let (s, v) = t.post(&format!("/api/v1/password-resets/{id}/complete"), complete.clone()).await;
    assert!(failed(&t, s), "{s} {v}");
    t.fault().heal("users").await.expect("heal");
    let (s, _) = t.post("/api/v1/sessions", json!({"email": email, "password": PASSWORD})).await;
    assert_eq!(s, 201, "the old password still works: nothing was changed");

    let (s, v) = t.post(&format!("/api/v1/password-resets/{id}/complete"), complete.clone()).await;
    assert_eq!((s, v["state"].as_str()), (200, Some("completed")), "{v}");
    // Sent again (the answer was lost): the same answer, nothing changed twice.
    let (s, v) = t.post(&format!("/api/v1/password-resets/{id}/complete"), complete).await;
    assert_eq!((s, v["state"].as_str()), (200, Some("completed")), "{v}");
    // With another password it was never set, so that is not "done".
    let other = json!({"code": code, "new_password": "yet another horse 43"});
    let (s, v) = t.post(&format!("/api/v1/password-resets/{id}/complete"), other).await;
    assert_eq!((s, v["error"]["code"].as_str()), (409, Some("wrong_step")), "{v}");
    let (s, _) = t.post("/api/v1/sessions", json!({"email": email, "password": NEW_PASSWORD})).await;
    assert_eq!(s, 201);
    t.stop().await;
}

/// A delivered mail whose delivery cannot be recorded (the database went away just then) is not
/// sent again when its lease would run out: the worker keeps its claim and records the
/// delivery when the database is back. (An outage is a PostgreSQL fault; SQLite has none.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_a_mail_is_sent_once_when_recording_it_fails() {
    let t = TestApp::start(Opts { backend: Backend::Postgres, ..Opts::default() }).await;
    t.fault().break_writes_when("mail_outbox", "NEW.sent_at IS NOT NULL").await.expect("fault");
    let email = "mail-once@example.com";
    // Returns once the code mail arrived.
    t.register_until_code(email, PASSWORD).await;
    // Time passes beyond the claim's lease while the delivery cannot be recorded.
    t.clock.advance(time::Duration::minutes(3));
    tokio::time::sleep(Duration::from_secs(2)).await;
    t.fault().heal("mail_outbox").await.expect("heal");
    let deadline = Instant::now() + Duration::from_secs(15);
    while t.app.store.pending_mail_count().await.expect("count") > 0 {
        assert!(Instant::now() < deadline, "the delivery was never recorded");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // Time for a second copy to arrive, if one were sent.
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(t.mails_to(email).len(), 1, "the code mail was sent once");
    t.stop().await;
}

#[tokio::test]
async fn sqlite_the_code_outlives_a_failed_account_creation() {
    the_code_outlives_a_failed_account_creation(Backend::Sqlite).await;
}

#[tokio::test]
async fn postgres_the_code_outlives_a_failed_account_creation() {
    the_code_outlives_a_failed_account_creation(Backend::Postgres).await;
}

#[tokio::test]
async fn sqlite_a_retry_after_a_lost_answer_answers_as_before() {
    a_retry_after_a_lost_answer_answers_as_before(Backend::Sqlite).await;
}

#[tokio::test]
async fn postgres_a_retry_after_a_lost_answer_answers_as_before() {
    a_retry_after_a_lost_answer_answers_as_before(Backend::Postgres).await;
}

#[tokio::test]
async fn sqlite_a_reset_is_done_whole_or_not_at_all() {
    a_reset_is_done_whole_or_not_at_all(Backend::Sqlite).await;
}

#[tokio::test]
async fn postgres_a_reset_is_done_whole_or_not_at_all() {
    a_reset_is_done_whole_or_not_at_all(Backend::Postgres).await;
}
