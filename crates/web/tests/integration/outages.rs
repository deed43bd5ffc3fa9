//! Database outages fail fast and clean (issue #15, point 2): with PostgreSQL cut off, requests
//! that need it get 503 with `Retry-After` after the pool's short acquire timeout — not a 500
//! after ten seconds — `/readyz` says 503 at once, a signed-in member gets the outage page
//! rather than the login form, and service resumes by itself when the database is back.

use std::time::{Duration, Instant};

use crate::common::browser::Browser;
use crate::common::proxy::{test_database_addr, Proxy};
use crate::common::{Backend, Opts, TestApp, PASSWORD};
use serde_json::json;

const EMAIL: &str = "outage@example.com";

/// Well above the pool's acquire timeout (1.5 s), well below the 10 s it used to be.
const FAST: Duration = Duration::from_secs(5);

async fn login(t: &TestApp) -> (u16, Option<String>, serde_json::Value) {
    let r = t
        .api
        .post(t.url("/api/v1/sessions"))
        .json(&json!({"email": EMAIL, "password": PASSWORD}))
        .send()
        .await
        .expect("request");
    let status = r.status().as_u16();
    let retry = r.headers().get("retry-after").and_then(|v| v.to_str().ok()).map(str::to_string);
    (status, retry, r.json().await.unwrap_or_default())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_an_outage_answers_503_fast_and_service_resumes_by_itself() {
    let proxy = Proxy::start(test_database_addr()).await;
    let t = TestApp::start(Opts { backend: Backend::Postgres, pg_port: Some(proxy.port), ..Opts::default() }).await;
    t.register(EMAIL, PASSWORD).await;
    let b = Browser::new(&t);
    assert!(b.login(EMAIL, PASSWORD).await.url.ends_with("/menu"));

    proxy.cut();
    let started = Instant::now();
    let (status, retry, body) = login(&t).await;
    assert!(started.elapsed() < FAST, "the answer took {:?}", started.elapsed());
    assert_eq!((status, retry.as_deref()), (503, Some("5")), "{body}");
    assert_eq!(body["error"]["code"], "unavailable", "{body}");
    assert!(body["error"]["message"].as_str().unwrap_or_default().contains("一時的に"), "{body}");

    let started = Instant::now();
    let ready = t.api.get(t.url("/readyz")).send().await.expect("readyz");
    assert!(started.elapsed() < FAST, "/readyz took {:?}", started.elapsed());
    assert_eq!(ready.status().as_u16(), 503);

    let menu = b.get("/menu").await;
    assert_eq!(menu.status, 503, "a signed-in member is not sent to the login form: {}", menu.url);
    assert!(menu.url.ends_with("/menu"));
    assert_eq!(menu.headers.get("retry-after").and_then(|v| v.to_str().ok()), Some("5"));
    assert!(menu.has("一時的に"), "{}", menu.html);

    proxy.restore();
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let (status, _, body) = login(&t).await;
        if status == 201 {
            break;
        }
        assert_eq!(status, 503, "only 503 while reconnecting: {body}");
        assert!(Instant::now() < deadline, "the service did not come back");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert_eq!(t.api.get(t.url("/readyz")).send().await.expect("readyz").status().as_u16(), 200);
    let menu = b.get("/menu").await;
    assert_eq!(menu.status, 200, "the member's session outlived the outage");
    assert!(menu.has(EMAIL));
    t.stop().await;
}
