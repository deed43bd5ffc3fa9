//! Fault tests (issue #15, point 7): real faults under real traffic, each test bounded in time
//! and stopping by itself, everything on loopback.
//!
//! - PostgreSQL — a server of the test's own ([`PrivatePg`]) — stopped (`pg_ctl stop -m fast`)
//!   and started again while members register concurrently over the API;
//! - the database cut off through the loopback proxy while members register;
//! - the answers to COMMITs lost (committed, the connection closed before the answer came)
//!   while members register;
//! - the SMTP sink stopped while code mails are queued, then brought back.
//!
//! What must hold across a database fault: no answer is a 5xx other than 503; every member
//! who got a 2xx at verification signs in; no registration code is used up without its
//! account (the database says so: as many used codes as accounts) — a verification answered
//! 503 and sent again with the same code succeeds; no mail arrives twice (per `Message-ID`);
//! the service resumes by itself. The two-node `kill -9` test is the CLI's (`cli::faults`): it
//! needs the real binary.

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::common::pg::{psql, PrivatePg};
use crate::common::proxy::{test_database_addr, Proxy};
use crate::common::smtp::SmtpSink;
use crate::common::{Backend, Opts, TestApp, PASSWORD};
use domain::clock::Clock;
use serde_json::{json, Value};

/// Workers registering at once, and registrations each makes one after the other.
const WORKERS: usize = 6;
const EACH: usize = 4;

/// Registrations done before the fault strikes.
const BEFORE_FAULT: usize = 3;

/// What the members' clients saw.
#[derive(Default)]
struct Seen {
    unavailable: AtomicUsize,
    completed: AtomicUsize,
    /// Verifications answered 503 and then sent again with the same code.
    verify_retried: AtomicUsize,
}

/// A member's API client: retries a 503 (after a short pause, as `Retry-After` asks, only
/// shorter) and fails the test on any other 5xx.
#[derive(Clone)]
struct Member {
    base: String,
    api: reqwest::Client,
    seen: Arc<Seen>,
}

const STATES: [&str; 6] = ["started", "org_type_chosen", "org_verified", "account_entered", "code_sent", "completed"];

fn rank(state: &str) -> usize {
    STATES.iter().position(|s| *s == state).unwrap_or_else(|| panic!("unknown state {state}"))
}

impl Member {
    async fn call(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<&Value>,
        token: Option<&str>,
    ) -> (u16, Value) {
        let mut req = self.api.request(method, format!("{}{path}", self.base)).timeout(Duration::from_secs(30));
        if let Some(b) = body {
            req = req.json(b);
        }
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        let r = req.send().await.unwrap_or_else(|e| panic!("{path}: no answer: {e}"));
        let status = r.status().as_u16();
        let retry_after = r.headers().get("retry-after").is_some();
        let v = r.json().await.unwrap_or(Value::Null);
        assert!(status < 500 || status == 503, "{path}: {status} {v}");
        if status == 503 {
            assert!(retry_after, "{path}: 503 without Retry-After");
            assert_eq!(v["error"]["code"], "unavailable", "{path}: {v}");
            self.seen.unavailable.fetch_add(1, Ordering::SeqCst);
        }
        (status, v)
    }

    /// `call`, again after each 503 until something else comes (bounded).
    async fn until_up(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<&Value>,
        token: Option<&str>,
    ) -> (u16, Value) {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let (s, v) = self.call(method.clone(), path, body, token).await;
            if s != 503 {
                return (s, v);
            }
            assert!(Instant::now() < deadline, "{path}: still 503 after a minute: the service did not come back");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    async fn state(&self, id: &str) -> String {
        let (s, v) = self.until_up(reqwest::Method::GET, &format!("/api/v1/registrations/{id}"), None, None).await;
        assert_eq!(s, 200, "{v}");
        v["state"].as_str().expect("state").to_string()
    }

    /// Posts a step; after a 503 looks where the flow is (the step may have been done and
    /// only its answer lost) and posts again only if it was not.
    async fn step(&self, id: &str, step: &str, body: Value, reaches: &str) {
        let path = format!("/api/v1/registrations/{id}/{step}");
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let (s, v) = self.call(reqwest::Method::POST, &path, Some(&body), None).await;
            match s {
                200..=299 => return,
                503 if rank(&self.state(id).await) >= rank(reaches) => return,
                503 => {}
                _ => panic!("{path}: {s} {v}"),
            }
            assert!(Instant::now() < deadline, "{path}: the service did not come back");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// A whole registration through whatever fault is on; then signs in.
    async fn register(&self, sink: &SmtpSink, email: &str) {
        let (s, v) = self.until_up(reqwest::Method::POST, "/api/v1/registrations", Some(&json!({})), None).await;
        assert_eq!(s, 201, "{v}");
        let id = v["id"].as_str().expect("id").to_string();
        self.step(&id, "org-type", json!({"org_type": "health_insurance"}), "org_type_chosen").await;
        self.step(&id, "insurer", json!({"insurer_number": "133033"}), "org_verified").await;
        self.step(&id, "account", json!({"email": email, "password": PASSWORD}), "account_entered").await;
        let consents = json!({"accepted": ["platform_terms", "org_privacy", "point_terms"]});
        self.step(&id, "consents", consents, "code_sent").await;

        // The newest code mail (a consents step sent again would have issued a new code).
        let deadline = Instant::now() + Duration::from_secs(60);
        let code = loop {
            if let Some(code) = sink.mails_to(email).last().and_then(|m| m.code()) {
                break code;
            }
            assert!(Instant::now() < deadline, "no code mail to {email}");
            tokio::time::sleep(Duration::from_millis(50)).await;
        };
        // Sent again with the same code after a 503 until answered: a code used up without
        // its account would answer 422 here.
        let path = format!("/api/v1/registrations/{id}/verify");
        let mut first = true;
        let (s, v) = loop {
            let (s, v) = self.call(reqwest::Method::POST, &path, Some(&json!({"code": code})), None).await;
            if s != 503 {
                break (s, v);
            }
            if first {
                self.seen.verify_retried.fetch_add(1, Ordering::SeqCst);
                first = false;
            }
            assert!(Instant::now() < deadline, "{path}: the service did not come back");
            tokio::time::sleep(Duration::from_millis(100)).await;
        };
        assert_eq!(s, 200, "{email}: the verification with the emailed code: {v}");
        assert_eq!(v["registration"]["state"], "completed", "{v}");
        let token = v["session"]["token"].as_str().expect("token").to_string();
        let (s, v) = self.until_up(reqwest::Method::GET, "/api/v1/me", None, Some(&token)).await;
        assert_eq!(s, 200, "{email}: the session the verification made: {v}");
        let login = json!({"email": email, "password": PASSWORD});
        let (s, v) = self.until_up(reqwest::Method::POST, "/api/v1/sessions", Some(&login), None).await;
        assert_eq!(s, 201, "{email} signs in: {v}");
        self.seen.completed.fetch_add(1, Ordering::SeqCst);
    }
}

/// Runs [`WORKERS`] × [`EACH`] registrations; `fault` runs once [`BEFORE_FAULT`] are done,
/// while the others are under way. Returns what the clients saw and the emails registered.
async fn registrations_through<F>(t: &TestApp, sink: &Arc<SmtpSink>, tag: &str, fault: F) -> (Arc<Seen>, Vec<String>)
where
    F: FnOnce() + Send + 'static,
{
    let seen = Arc::new(Seen::default());
    let member = Member { base: t.base.clone(), api: t.api.clone(), seen: seen.clone() };
    let mut emails = Vec::new();
    let mut workers = tokio::task::JoinSet::new();
    for w in 0..WORKERS {
        let mine: Vec<String> = (0..EACH).map(|i| format!("{tag}-{w}-{i}@example.com")).collect();
        emails.extend(mine.iter().cloned());
        let (member, sink) = (member.clone(), sink.clone());
        workers.spawn(async move {
            for email in mine {
                member.register(&sink, &email).await;
            }
        });
    }
    let deadline = Instant::now() + Duration::from_secs(60);
    while seen.completed.load(Ordering::SeqCst) < BEFORE_FAULT {
        assert!(Instant::now() < deadline, "registrations do not get done");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let faulted = tokio::task::spawn_blocking(fault);
    let bounded = tokio::time::timeout(Duration::from_secs(240), async {
        while let Some(done) = workers.join_next().await {
            if let Err(e) = done {
                std::panic::resume_unwind(e.into_panic());
            }
        }
    });
    bounded.await.expect("the registrations finish within 4 minutes");
    faulted.await.expect("the fault");
    (seen, emails)
}

/// What must hold once the dust settled: one account per used registration code and per
/// member, each member's code mail once.
fn exactly_once(db: impl Fn(&str) -> String, sink: &SmtpSink, seen: &Seen, emails: &[String]) {
    let n = emails.len();
    assert_eq!(seen.completed.load(Ordering::SeqCst), n);
    let used = db("SELECT count(*) FROM one_time_codes WHERE purpose = 'registration' AND consumed_at IS NOT NULL");
    let users = db("SELECT count(*) FROM users");
    assert_eq!(
        (used.as_str(), users.as_str()),
        (n.to_string().as_str(), n.to_string().as_str()),
        "used codes, accounts"
    );
    assert_eq!(sink.duplicates(), Vec::<String>::new(), "a mail arrived twice");
    let mut per_member: HashMap<&str, usize> = HashMap::new();
    for e in emails {
        per_member.insert(e, sink.mails_to(e).len());
    }
    assert!(per_member.values().all(|&k| k >= 1), "{per_member:?}");
}

async fn sink_for(t: &TestApp) -> Arc<SmtpSink> {
    Arc::new(SmtpSink::start_on(t.smtp_port).await)
}

/// PostgreSQL stopped (`pg_ctl stop -m fast`: sessions ended, transactions rolled back) for
/// two seconds and started again while 24 members register, 6 at a time.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_restarted_during_registrations_loses_nothing() {
    let Some(pg) = PrivatePg::start() else { return };
    let pg = Arc::new(pg);
    let t =
        TestApp::start(Opts { backend: Backend::Postgres, smtp_up: false, pg_url: Some(pg.url()), ..Opts::default() })
            .await;
    let sink = sink_for(&t).await;
    let server = pg.clone();
    let (seen, emails) =
        registrations_through(&t, &sink, "restart", move || server.restart(Duration::from_secs(2))).await;
    eprintln!(
        "PostgreSQL restart: {} answers 503, {} verifications sent again",
        seen.unavailable.load(Ordering::SeqCst),
        seen.verify_retried.load(Ordering::SeqCst)
    );
    assert!(seen.unavailable.load(Ordering::SeqCst) > 0, "the restart was never seen: no fault tested");
    exactly_once(|sql| pg.psql(sql), &sink, &seen, &emails);
    assert_eq!(t.api.get(t.url("/readyz")).send().await.expect("readyz").status().as_u16(), 200);
    t.stop().await;
}

/// The database cut off (every connection closed, new ones refused) for three seconds through
/// the loopback proxy while 24 members register, 6 at a time.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_cut_off_during_registrations_loses_nothing() {
    let seen = through_a_faulty_proxy("cut", "database cut", |p, on| if on { p.cut() } else { p.restore() }).await;
    assert!(seen.unavailable.load(Ordering::SeqCst) > 0, "the cut was never seen: no fault tested");
}

/// For three seconds every transaction's COMMIT reaches PostgreSQL and commits, and its answer
/// is lost (the proxy closes the connection first): the server answers 503 for a step that was
/// done. Sent again, each such step — above all the verification with its code — answers as
/// done, and nothing is done twice.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_commit_answers_lost_during_registrations_answer_as_done() {
    let seen = through_a_faulty_proxy("lost", "lost commit answers", |p, on| p.lose_commit_answers(on)).await;
    assert!(seen.verify_retried.load(Ordering::SeqCst) > 0, "no verification lost its answer: no fault tested");
}

/// Registrations through the loopback proxy in front of PostgreSQL with `fault` on for three
/// seconds in the middle; checks the exactly-once properties and returns what was seen.
async fn through_a_faulty_proxy(tag: &str, label: &str, fault: fn(&Proxy, bool)) -> Arc<Seen> {
    let proxy = Arc::new(Proxy::start(test_database_addr()).await);
    let t = TestApp::start(Opts {
        backend: Backend::Postgres,
        smtp_up: false,
        pg_port: Some(proxy.port),
        ..Opts::default()
    })
    .await;
    let sink = sink_for(&t).await;
    let p = proxy.clone();
    let (seen, emails) = registrations_through(&t, &sink, tag, move || {
        fault(&p, true);
        std::thread::sleep(Duration::from_secs(3));
        fault(&p, false);
    })
    .await;
    eprintln!(
        "{label}: {} answers 503, {} verifications sent again",
        seen.unavailable.load(Ordering::SeqCst),
        seen.verify_retried.load(Ordering::SeqCst)
    );
    let url = store::testing::test_database_url();
    let schema = t.pg_schema().expect("schema").to_string();
    exactly_once(|sql| psql(&url, Some(&schema), sql), &sink, &seen, &emails);
    t.stop().await;
    seen
}

/// A registration up to its code mail, which is queued, not waited for; the flow id.
async fn queue_code_mail(t: &TestApp, email: &str) -> String {
    let id = t.registration_at_account("133033").await;
    let (s, v) =
        t.post(&format!("/api/v1/registrations/{id}/account"), json!({"email": email, "password": PASSWORD})).await;
    assert_eq!(s, 200, "{v}");
    let consents = json!({"accepted": ["platform_terms", "org_privacy", "point_terms"]});
    let (s, v) = t.post(&format!("/api/v1/registrations/{id}/consents"), consents).await;
    assert_eq!((s, v["state"].as_str()), (200, Some("code_sent")), "{v}");
    id
}

/// Waits (bounded) until `n` mails are unsent, every one tried at least once and waiting out
/// a backoff after a failure to reach the relay.
async fn wait_all_failed(t: &TestApp, n: usize) {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let unsent = t.app.store.unsent_mails(100).await.expect("unsent");
        if unsent.len() == n && unsent.iter().all(|m| m.attempts >= 1 && m.retry_wait == 1) {
            return;
        }
        assert!(Instant::now() < deadline, "wanted {n} failed mails waiting, got {unsent:?}");
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

/// The SMTP sink stopped (its port closed and the connection the mail worker kept dropped)
/// while code mails are queued, then brought back. The clock is the test's: no backoff ever
/// runs out by itself after the sink is back, so the mails that arrive went out because the
/// first delivery flushed the queue. Nothing is lost, nothing arrives twice, and the code
/// that expired during the outage is not mailed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_smtp_stopped_and_back_flushes_the_queue_once() {
    let t = TestApp::start(Opts { backend: Backend::Postgres, smtp_up: false, ..Opts::default() }).await;
    let mut sink = SmtpSink::start_on(t.smtp_port).await;
    // The worker has delivered before: it keeps a connection to the sink.
    queue_code_mail(&t, "before@example.com").await;
    let deadline = Instant::now() + Duration::from_secs(15);
    while sink.mails_to("before@example.com").is_empty() {
        assert!(Instant::now() < deadline, "the first mail did not arrive");
        tokio::time::sleep(Duration::from_millis(25)).await;
    }

    sink.stop();
    // t0: a code mail that will expire while the relay is away.
    let late = "late@example.com";
    let late_flow = queue_code_mail(&t, late).await;
    wait_all_failed(&t, 1).await;
    // t0 + 9:50: five more; the first attempt of each fails (and the late one's second).
    t.clock.advance(time::Duration::seconds(590));
    let queued: Vec<String> = (0..5).map(|i| format!("queued-{i}@example.com")).collect();
    for email in &queued {
        queue_code_mail(&t, email).await;
    }
    wait_all_failed(&t, 6).await;
    // t0 + 10:01: the late code has expired; no backoff has run out (the earliest ends at
    // 10:05). The sink comes back.
    t.clock.advance(time::Duration::seconds(11));
    tokio::time::sleep(Duration::from_millis(300)).await;
    let unsent = t.app.store.unsent_mails(100).await.expect("unsent");
    assert!(unsent.iter().all(|m| m.next_attempt_at > t.clock.now()), "nothing is due yet: {unsent:?}");
    sink.up().await;

    // One new mail: its delivery is the first success, which makes the waiting queue due.
    let fresh = "fresh@example.com";
    queue_code_mail(&t, fresh).await;
    let deadline = Instant::now() + Duration::from_secs(15);
    while t.app.store.pending_mail_count().await.expect("pending") > 0 {
        assert!(
            Instant::now() < deadline,
            "the queue was not flushed when the sink came back: {:?}, received {:?}",
            t.app.store.unsent_mails(100).await.expect("unsent"),
            sink.mails().iter().map(|m| m.to.clone()).collect::<Vec<_>>()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // Time for a copy to arrive, if one were sent.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let delivered: Vec<String> = queued.iter().cloned().chain([fresh.to_string()]).collect();
    for email in &delivered {
        let mails = sink.mails_to(email);
        assert_eq!(mails.len(), 1, "{email}: one mail, not lost, not twice");
        assert!(mails[0].code().is_some(), "{email}: {}", mails[0].text());
    }
    assert!(sink.mails_to(late).is_empty(), "the expired code was mailed");
    assert_eq!(sink.duplicates(), Vec::<String>::new());
    assert_eq!(sink.mails().len(), 1 + 5 + 1, "nothing else arrived");

    // The member whose code expired asks again, and that one arrives.
    let (s, v) = t.post(&format!("/api/v1/registrations/{late_flow}/resend"), json!({})).await;
    assert_eq!(s, 200, "{v}");
    let deadline = Instant::now() + Duration::from_secs(15);
    let code = loop {
        if let Some(code) = sink.mails_to(late).first().and_then(|m| m.code()) {
            break code;
        }
        assert!(Instant::now() < deadline, "the new code mail did not arrive");
        tokio::time::sleep(Duration::from_millis(25)).await;
    };
    let (s, v) = t.post(&format!("/api/v1/registrations/{late_flow}/verify"), json!({"code": code})).await;
    assert_eq!(s, 200, "{v}");
    t.stop().await;
}
