//! Regression tests of issue #14 at the edge: client addresses behind proxies, login
//! budgets per account and client, safe configuration, bounded work.

use crate::common::browser::Browser;
use crate::common::console::{create_operator, OP_PASSWORD};
use crate::common::{Backend, Opts, TestApp, PASSWORD};
use app::config::Limit;
use app::services::operators::Role;
use domain::clock::Clock as _;
use serde_json::json;
use time::Duration;

/// `async fn story(backend: Backend)` on SQLite and on PostgreSQL.
macro_rules! on_both {
    ($($story:ident),* $(,)?) => {
        $(
            mod $story {
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn sqlite() {
                    super::$story(super::Backend::Sqlite).await;
                }
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn postgres() {
                    super::$story(super::Backend::Postgres).await;
                }
            }
        )*
    };
}

/// A member login through a proxy that says the request came from `client`.
async fn login_from(t: &TestApp, client: &str, email: &str, password: &str) -> (u16, Option<String>) {
    let r = t
        .api
        .post(t.url("/api/v1/sessions"))
        .header("x-forwarded-for", client)
        .json(&json!({"email": email, "password": password}))
        .send()
        .await
        .expect("login");
    let retry = r.headers().get("retry-after").and_then(|v| v.to_str().ok()).map(str::to_string);
    (r.status().as_u16(), retry)
}

fn behind_proxy(backend: Backend, login_per_ip: Limit) -> Opts {
    let mut opts = Opts { backend, ..Opts::default() };
    opts.limits.login_per_ip = login_per_ip;
    opts.config = |c| c.trusted_proxies = "127.0.0.1".into();
    opts
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forwarding_headers_cannot_dodge_limits_without_a_trusted_proxy() {
    let mut opts = Opts::default();
    opts.limits.login_per_ip = Limit::new(3, 900);
    let t = TestApp::start(opts).await;
    for n in 0..3 {
        let client = format!("198.51.100.{n}");
        assert_eq!(login_from(&t, &client, &format!("x{n}@example.com"), "nope-nope-nope").await.0, 401);
    }
    let (status, _) = login_from(&t, "198.51.100.99", "y@example.com", "nope-nope-nope").await;
    assert_eq!(status, 429, "the socket peer is the client: a made-up X-Forwarded-For changes nothing");
    t.stop().await;
}

async fn clients_behind_a_trusted_proxy_are_limited_one_by_one(backend: Backend) {
    let t = TestApp::start(behind_proxy(backend, Limit::new(3, 900))).await;
    for n in 0..3 {
        assert_eq!(login_from(&t, "198.51.100.7", &format!("a{n}@example.com"), "nope-nope-nope").await.0, 401);
    }
    assert_eq!(login_from(&t, "198.51.100.7", "a9@example.com", "nope-nope-nope").await.0, 429);
    // Another member behind the same proxy is not affected…
    assert_eq!(login_from(&t, "203.0.113.5", "b@example.com", "nope-nope-nope").await.0, 401);
    // …and the client cannot pick its address by prepending one: the proxy appended the real one.
    assert_eq!(login_from(&t, "203.0.113.77, 198.51.100.7", "c@example.com", "nope-nope-nope").await.0, 429);

    // IPv6 clients count by their /64.
    for n in 1..=3 {
        let client = format!("2001:db8:1:2::{n}");
        assert_eq!(login_from(&t, &client, &format!("v{n}@example.com"), "nope-nope-nope").await.0, 401);
    }
    assert_eq!(login_from(&t, "2001:db8:1:2:ffff::9", "v9@example.com", "nope-nope-nope").await.0, 429);
    assert_eq!(login_from(&t, "2001:db8:1:3::1", "w@example.com", "nope-nope-nope").await.0, 401);
    t.stop().await;
}

async fn audit_rows_record_the_client_behind_the_proxy(backend: Backend) {
    let t = TestApp::start(behind_proxy(backend, Limit::new(100, 900))).await;
    let op = create_operator(&t, "admin@mimoto.example.jp", "管理 太郎", Role::Admin).await;
    let b = Browser::forwarded_for(&t, "198.51.100.23");
    let page = b.console_login(&op.email, OP_PASSWORD, &op.code_at(t.clock.now())).await;
    assert_eq!(page.status, 303, "{}", page.html);
    let log = t.app.store.list_audit(None, 10).await.expect("audit");
    let login = log.iter().find(|e| e.action == "console.login").expect("a login row");
    assert_eq!(login.client_ip, "198.51.100.23", "not the proxy's 127.0.0.1");
    t.stop().await;
}

fn account_budgets(backend: Backend, ceiling: Limit) -> Opts {
    let mut opts = behind_proxy(backend, Limit::new(10_000, 900));
    opts.limits.login_per_account_client = Limit::new(10, 900);
    opts.limits.login_failures_per_account = ceiling;
    opts
}

async fn a_strangers_wrong_passwords_do_not_lock_the_member_out(backend: Backend) {
    let t = TestApp::start(account_budgets(backend, Limit::new(100, 86_400))).await;
    let email = "member@example.com";
    t.register(email, PASSWORD).await;
    // A stranger at one address guesses at a sane pace: ten failures, then that client is refused.
    for _ in 0..10 {
        assert_eq!(login_from(&t, "198.51.100.66", email, "Guess-Guess-2026!").await.0, 401);
        t.clock.advance(Duration::seconds(61));
    }
    assert_eq!(login_from(&t, "198.51.100.66", email, PASSWORD).await.0, 429, "the stranger's client is spent");
    // The member, elsewhere, logs in: no hard lock, at most a short wait.
    assert_eq!(login_from(&t, "203.0.113.8", email, PASSWORD).await.0, 201);
    t.stop().await;
}

async fn failed_logins_slow_the_account_down_more_and_more(backend: Backend) {
    let t = TestApp::start(account_budgets(backend, Limit::new(100, 86_400))).await;
    let email = "member@example.com";
    t.register(email, PASSWORD).await;
    // Five failures from five clients cost nothing…
    for n in 0..5 {
        assert_eq!(login_from(&t, &format!("198.51.100.{n}"), email, "Guess-Guess-2026!").await.0, 401);
    }
    // …then every attempt on the account waits 1, 2, 4 … seconds after the previous one,
    // whichever client makes it.
    assert_eq!(login_from(&t, "198.51.100.10", email, "Guess-Guess-2026!").await.0, 401);
    let (status, retry) = login_from(&t, "198.51.100.11", email, "Guess-Guess-2026!").await;
    assert_eq!((status, retry.as_deref()), (429, Some("2")), "the sixth failure makes the next wait 2 s");
    t.clock.advance(Duration::seconds(2));
    assert_eq!(login_from(&t, "198.51.100.12", email, "Guess-Guess-2026!").await.0, 401);
    let (status, retry) = login_from(&t, "203.0.113.8", email, PASSWORD).await;
    assert_eq!((status, retry.as_deref()), (429, Some("4")), "the member waits too, briefly");
    t.clock.advance(Duration::seconds(4));
    assert_eq!(login_from(&t, "203.0.113.8", email, PASSWORD).await.0, 201);
    // A success forgets the failures: the next mistake is free again.
    assert_eq!(login_from(&t, "203.0.113.8", email, "Typo-Typo-2026!").await.0, 401);
    assert_eq!(login_from(&t, "203.0.113.8", email, PASSWORD).await.0, 201);
    t.stop().await;
}

async fn the_daily_ceiling_stops_guessing_from_many_clients_until_a_reset(backend: Backend) {
    let t = TestApp::start(account_budgets(backend, Limit::new(12, 86_400))).await;
    let email = "member@example.com";
    t.register(email, PASSWORD).await;
    for n in 0..12 {
        assert_eq!(login_from(&t, &format!("198.51.100.{n}"), email, "Guess-Guess-2026!").await.0, 401);
        t.clock.advance(Duration::seconds(61));
    }
    assert_eq!(login_from(&t, "198.51.100.200", email, "Guess-Guess-2026!").await.0, 429);
    assert_eq!(login_from(&t, "203.0.113.8", email, PASSWORD).await.0, 429, "nobody gets in after the ceiling");
    // 「ログインでお困りの場合」: a password reset forgets the failures.
    let (s, v) = t.post("/api/v1/password-resets", json!({"email": email})).await;
    assert_eq!(s, 202, "{v}");
    let code = t.wait_code(email, 2).await;
    let rid = v["id"].as_str().expect("id");
    let new_password = "Kitsune-Udon-2027?";
    let (s, v) = t
        .post(&format!("/api/v1/password-resets/{rid}/complete"), json!({"code": code, "new_password": new_password}))
        .await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(login_from(&t, "203.0.113.8", email, new_password).await.0, 201);
    t.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn api_answers_are_never_cached() {
    let t = TestApp::start(Opts::default()).await;
    let token = t.register("member@example.com", PASSWORD).await;
    let requests = [
        t.api.get(t.url("/api/v1/me")).bearer_auth(&token),
        t.api.get(t.url("/api/v1/openapi.json")),
        t.api.get(t.url("/api/v1/me")),
        t.api.post(t.url("/api/v1/sessions")).json(&json!({"email": "x@example.com", "password": "nope-nope-nope"})),
        t.api
            .post(t.url("/api/v1/ekyc-applications/3f2504e0-4f89-41d3-9a0c-0305e82c3301/captures/selfie"))
            .bearer_auth(&token)
            .body(vec![0u8; 16]),
    ];
    for req in requests {
        let r = req.send().await.expect("request");
        let url = r.url().to_string();
        let status = r.status();
        assert_eq!(
            r.headers().get("cache-control").and_then(|v| v.to_str().ok()),
            Some("no-store"),
            "{url} ({status})"
        );
    }
    t.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_language_switch_never_redirects_off_site() {
    let t = TestApp::start(Opts::default()).await;
    let b = Browser::not_following(&t);
    for (next, to) in [
        ("/login", "/login"),
        ("/%09/evil.example", "/"),
        ("/%0a/evil.example", "/"),
        ("/%5Cevil.example", "/"),
        ("//evil.example", "/"),
        ("https://evil.example/", "/"),
        ("%2F%2Fevil.example", "/"),
    ] {
        let page = b.get(&format!("/lang/en?next={next}")).await;
        assert_eq!((page.status, page.location.as_deref()), (303, Some(to)), "next={next}");
    }
    t.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn api_tokens_and_browser_sessions_do_not_stand_in_for_each_other() {
    let t = TestApp::start(Opts::default()).await;
    let email = "member@example.com";
    let token = t.register(email, PASSWORD).await;
    // The API token as a session cookie: not signed in.
    let r = t
        .api
        .get(t.url("/menu"))
        .header("cookie", format!("{}={token}", web::ctx::session_cookie_name(false)))
        .send()
        .await
        .expect("menu");
    assert_eq!(r.status().as_u16(), 303, "an API token is not a browser session");
    // A browser session as a bearer token: not signed in either.
    let b = Browser::not_following(&t);
    let page = b.login(email, PASSWORD).await;
    assert_eq!(page.location.as_deref(), Some("/menu"), "{}", page.html);
    let cookie = page
        .set_cookies
        .iter()
        .find_map(|c| c.strip_prefix("mimoto_sid="))
        .and_then(|c| c.split(';').next())
        .expect("session cookie")
        .to_string();
    assert_eq!(b.get("/menu").await.status, 200, "the browser is signed in");
    assert_eq!(t.get("/api/v1/me", Some(&cookie)).await.0, 401, "a browser session is not an API token");
    t.stop().await;
}

/// Sends the head of a 10 MB multipart upload — headers and the first part only — and reads the
/// answer while the rest of the body never comes. A server that reads the whole body before
/// deciding never answers (until its request timeout); one that checks session and CSRF
/// first answers at once. Returns the response head.
async fn stalled_upload(t: &TestApp, path: &str, cookie: Option<String>, first_field: (&str, &str)) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let boundary = "mimoto-test-boundary";
    let first = format!(
        "--{boundary}\r\nContent-Disposition: form-data; name=\"{}\"\r\n\r\n{}\r\n--{boundary}\r\nContent-Disposition: form-data; name=\"photo\"; filename=\"a.jpg\"\r\nContent-Type: image/jpeg\r\n\r\n",
        first_field.0, first_field.1
    );
    let cookie = cookie.map(|c| format!("Cookie: {c}\r\n")).unwrap_or_default();
    let head = format!(
        "POST {path} HTTP/1.1\r\nHost: {}\r\nContent-Type: multipart/form-data; boundary={boundary}\r\nContent-Length: 10000000\r\n{cookie}\r\n",
        t.base.trim_start_matches("http://")
    );
    let mut stream = tokio::net::TcpStream::connect(t.base.trim_start_matches("http://")).await.expect("connect");
    stream.write_all(head.as_bytes()).await.expect("head");
    // The server may answer and close before it wants more: a refused write is that answer
    // coming early, which is read below.
    if stream.write_all(first.as_bytes()).await.is_ok() {
        let _ = stream.write_all(&[0xFF; 4096]).await;
    }
    let mut answer = vec![0u8; 4096];
    let read = tokio::time::timeout(std::time::Duration::from_secs(15), stream.read(&mut answer))
        .await
        .unwrap_or_else(|_| panic!("{path}: no answer while the body is incomplete: the server is reading it"))
        .expect("read");
    String::from_utf8_lossy(&answer[..read]).to_string()
}

fn cookie_from(set_cookies: &[String], name: &str) -> String {
    set_cookies
        .iter()
        .find(|c| c.starts_with(&format!("{name}=")))
        .and_then(|c| c.split(';').next())
        .unwrap_or_else(|| panic!("no {name} cookie in {set_cookies:?}"))
        .to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn uploads_are_refused_before_their_body_without_a_session_or_csrf() {
    let t = TestApp::start(Opts::default()).await;
    let capture = "/ekyc/3f2504e0-4f89-41d3-9a0c-0305e82c3301/capture/selfie";
    // Nobody signed in: to the login pages, unread.
    let head = stalled_upload(&t, capture, None, ("csrf", "x")).await;
    assert!(head.starts_with("HTTP/1.1 303") && head.to_lowercase().contains("location: /login"), "{head}");
    let head = stalled_upload(&t, "/console/imports", None, ("csrf", "x")).await;
    assert!(head.starts_with("HTTP/1.1 303") && head.to_lowercase().contains("location: /console/login"), "{head}");

    // Signed in, but the form's first part is not this session's CSRF token: refused, unread.
    let email = "member@example.com";
    t.register(email, PASSWORD).await;
    let b = Browser::not_following(&t);
    let page = b.login(email, PASSWORD).await;
    let member = cookie_from(&page.set_cookies, web::ctx::session_cookie_name(false));
    for first in [("csrf", "forged"), ("token", "x")] {
        let head = stalled_upload(&t, capture, Some(member.clone()), first).await;
        assert!(head.starts_with("HTTP/1.1 403"), "{first:?}: {head}");
    }
    let op = create_operator(&t, "admin@mimoto.example.jp", "管理 太郎", Role::Admin).await;
    let ob = Browser::not_following(&t);
    let page = ob.console_login(&op.email, OP_PASSWORD, &op.code_at(t.clock.now())).await;
    let operator = cookie_from(&page.set_cookies, web::console::cookie_name(false));
    for first in [("csrf", "forged"), ("kind", "checkups")] {
        let head = stalled_upload(&t, "/console/imports", Some(operator.clone()), first).await;
        assert!(head.starts_with("HTTP/1.1 403"), "{first:?}: {head}");
    }
    t.stop().await;
}

async fn every_read_of_health_data_is_on_the_record(backend: Backend) {
    use crate::health::{f4_and_checkups, hanako, ANSWER, EMAIL};
    let t = TestApp::start(behind_proxy(backend, Limit::new(10_000, 900))).await;
    let (token, m) = hanako(&t).await;
    f4_and_checkups(&t, &m).await;
    let client = "198.51.100.44";
    let api = |path: &str| t.api.get(t.url(path)).bearer_auth(&token).header("x-forwarded-for", client);
    let r = t
        .api
        .post(t.url("/api/v1/health/step-up"))
        .bearer_auth(&token)
        .header("x-forwarded-for", client)
        .json(&json!({"answer": ANSWER}))
        .send()
        .await
        .expect("step-up");
    assert_eq!(r.status().as_u16(), 200);
    for data in ["checkups", "medications", "expenses"] {
        assert_eq!(api(&format!("/api/v1/health/{data}")).send().await.expect("read").status().as_u16(), 200);
    }
    // The pages, the print view included.
    let b = Browser::forwarded_for(&t, "203.0.113.45");
    assert_eq!(b.login(EMAIL, PASSWORD).await.status, 303);
    let ask = b.get("/health/unlock?next=checkups").await;
    let unlocked = b.post("/health/unlock", &[("csrf", &ask.csrf()), ("next", "checkups"), ("answer", ANSWER)]).await;
    assert_eq!(unlocked.status, 303, "{}", unlocked.html);
    for page in ["/health/checkups", "/health/medications", "/health/expenses", "/health/expenses/print?year=2025"] {
        assert_eq!(b.get(page).await.status, 200, "{page}");
    }

    let log = t.app.store.list_audit(None, 100).await.expect("audit");
    let reads: Vec<(&str, &str)> = log
        .iter()
        .rev()
        .filter(|e| e.action.starts_with("member.health."))
        .map(|e| {
            assert_eq!(e.member_id.as_deref(), Some(m.user.id.as_str()), "who: {e:?}");
            assert_eq!(e.target_type.as_deref(), Some("organization"), "the record is the member's own: {e:?}");
            (e.action.as_str(), e.client_ip.as_str())
        })
        .collect();
    assert_eq!(
        reads,
        [
            ("member.health.checkups.read", client),
            ("member.health.medications.read", client),
            ("member.health.expenses.read", client),
            ("member.health.checkups.read", "203.0.113.45"),
            ("member.health.medications.read", "203.0.113.45"),
            ("member.health.expenses.read", "203.0.113.45"),
            ("member.health.expenses.read", "203.0.113.45"),
        ]
    );
    assert!(log.iter().any(|e| e.action == "member.login" && e.client_ip == "203.0.113.45"));
    assert!(log.iter().any(|e| e.action == "member.ekyc.submitted"));
    assert!(!log.iter().any(|e| e.target_id.as_deref().is_some_and(|t| t.contains('@'))), "never personal data");
    let chain = t.app.store.verify_audit_chain().await.expect("verify");
    assert_eq!(chain.broken, None, "the app's rows form one chain");
    t.stop().await;
}

/// Per member and hour, across applications: face comparisons (and uploads, tokens) are
/// counted before any image is decoded.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_member_cannot_run_the_face_engine_without_bound() {
    use crate::common::ekyc::{f4_to_the_angled_step, face, http_upload, licence, selfie};
    let mut opts = Opts::default();
    opts.limits.ekyc_face_attempts_per_member = Limit::new(1, 3600);
    let t = TestApp::start(opts).await;
    let token = t.register("leonard@example.com", PASSWORD).await;
    t.verify_identity(&token).await;
    let (id, _) = f4_to_the_angled_step(&t, &token, licence("leonard/leonard1.png")).await;
    let (s, v) = http_upload(&t, &token, &id, "selfie_angled", selfie(&face("leonard/leonard3.png"))).await;
    assert_eq!((s, v["error"]["code"].as_str()), (429, Some("rate_limited")), "the second selfie this hour: {v}");
    t.clock.advance(Duration::hours(1));
    let (s, v) = http_upload(&t, &token, &id, "selfie_angled", selfie(&face("leonard/leonard3.png"))).await;
    assert_ne!(s, 429, "an hour later: {v}");
    t.stop().await;
}

on_both!(
    every_read_of_health_data_is_on_the_record,
    clients_behind_a_trusted_proxy_are_limited_one_by_one,
    audit_rows_record_the_client_behind_the_proxy,
    a_strangers_wrong_passwords_do_not_lock_the_member_out,
    failed_logins_slow_the_account_down_more_and_more,
    the_daily_ceiling_stops_guessing_from_many_clients_until_a_reset,
);
