//! Two nodes, `kill -9` one (issue #15, point 7): two `mimoto serve` processes on one
//! PostgreSQL database (a fresh one on the test server, dropped afterwards) and one SMTP sink.
//! Node A is killed while it holds claims on queued mails; node B carries on: it serves the
//! sessions made on A, registers new members, and once A's claims have lapsed (a short
//! `MIMOTO_MAIL_LEASE_SECS`) sends A's mails — each exactly once.

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

#[path = "../../../web/tests/integration/common/smtp.rs"]
mod smtp;
use smtp::SmtpSink;

const PASSWORD: &str = "Sakura-Mochi-2026!";
const SECRET_KEY: &str = "AQIDBAUGBwgJCgsMDQ4PEBESExQVFhcYGRobHB0eHyA=";
const DATA_KEYS: &str = "d1:ZWZnaGlqa2xtbm9wcXJzdHV2d3h5ent8fX5/gIGCg4Q=";
/// Seconds a claim lasts on both nodes.
const LEASE_SECS: u64 = 6;

fn test_database_url() -> String {
    std::env::var("MIMOTO_TEST_DATABASE_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/mimoto_test".to_string())
}

fn psql(url: &str, sql: &str) -> String {
    let out = Command::new("psql")
        .args(["-X", "-A", "-t", "-v", "ON_ERROR_STOP=1", "-d", url, "-c", sql])
        .stdin(Stdio::null())
        .output()
        .expect("run psql");
    assert!(out.status.success(), "psql {sql}: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// A database of the test's own on the test server, dropped (with its connections) at the end.
struct Database {
    admin: String,
    name: String,
    url: String,
}

impl Database {
    /// Named after the test's temporary directory `dir` (random) and the process.
    fn create(dir: &Path) -> Database {
        let admin = test_database_url();
        let random: String = dir
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or_default()
            .chars()
            .filter(char::is_ascii_alphanumeric)
            .collect::<String>()
            .to_ascii_lowercase();
        let name = format!("mimoto_faults_{}_{random}", std::process::id());
        psql(&admin, &format!("CREATE DATABASE {name}"));
        let base = admin.split('?').next().unwrap_or_default();
        let url = format!("{}/{name}", base.rsplit_once('/').map_or(base, |(server, _)| server));
        Database { admin, name, url }
    }
}

impl Drop for Database {
    fn drop(&mut self) {
        let _ = Command::new("psql")
            .args(["-X", "-q", "-d", &self.admin, "-c", &format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", self.name)])
            .stdin(Stdio::null())
            .output();
    }
}

/// A `mimoto serve` process; killed (SIGKILL) when dropped.
struct Node {
    port: u16,
    child: Child,
    log: std::path::PathBuf,
}

fn node_env(c: &mut Command, data_dir: &Path, db: &Database, smtp_port: u16) {
    c.env("MIMOTO_DATA_DIR", data_dir)
        .env("MIMOTO_DATABASE_URL", &db.url)
        .env("MIMOTO_SMTP_URL", format!("smtp://127.0.0.1:{smtp_port}"))
        .env("MIMOTO_SECRET_KEY", SECRET_KEY)
        .env("MIMOTO_DATA_KEYS", DATA_KEYS)
        .env("MIMOTO_MAIL_POLL_MS", "100")
        .env("MIMOTO_MAIL_LEASE_SECS", LEASE_SECS.to_string())
        .env("MIMOTO_MODELS_DIR", data_dir.join("no-models"))
        .env("MIMOTO_LOG", "info")
        .env("MIMOTO_LIMITS__REGISTER_PER_IP__MAX", "10000")
        .env("MIMOTO_LIMITS__REGISTER_PER_EMAIL__MAX", "10000")
        .env("MIMOTO_LIMITS__CODE_PER_IP__MAX", "10000")
        .env("MIMOTO_LIMITS__LOGIN_PER_IP__MAX", "10000")
        .env_remove("MIMOTO_CONFIG")
        .stdin(Stdio::null());
}

impl Node {
    async fn start(name: &str, dir: &Path, db: &Database, smtp_port: u16) -> Node {
        let port = std::net::TcpListener::bind("127.0.0.1:0").expect("bind").local_addr().expect("addr").port();
        let data_dir = dir.join(name);
        std::fs::create_dir_all(&data_dir).expect("data dir");
        let log = dir.join(format!("{name}.log"));
        let mut c = Command::new(env!("CARGO_BIN_EXE_mimoto"));
        c.arg("serve").env("MIMOTO_LISTEN", format!("127.0.0.1:{port}"));
        node_env(&mut c, &data_dir, db, smtp_port);
        let file = std::fs::File::create(&log).expect("log file");
        c.stdout(file.try_clone().expect("log")).stderr(file);
        let child = c.spawn().expect("spawn mimoto serve");
        let mut node = Node { port, child, log };
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Ok((200, _)) = node.try_http("GET", "/healthz", None, None).await {
                return node;
            }
            if let Ok(Some(status)) = node.child.try_wait() {
                panic!("node {name} exited ({status}):\n{}", node.log_text());
            }
            assert!(Instant::now() < deadline, "node {name} did not start:\n{}", node.log_text());
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    fn kill(&mut self) {
        let _ = self.child.kill(); // SIGKILL
        let _ = self.child.wait();
    }

    /// One HTTP/1.1 request (`Connection: close`), JSON in and out.
    async fn try_http(
        &self,
        method: &str,
        path: &str,
        token: Option<&str>,
        body: Option<&Value>,
    ) -> std::io::Result<(u16, Value)> {
        let mut stream = tokio::net::TcpStream::connect(("127.0.0.1", self.port)).await?;
        let body = body.map(Value::to_string).unwrap_or_default();
        let auth = token.map(|t| format!("Authorization: Bearer {t}\r\n")).unwrap_or_default();
        let request = format!(
            "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1:{}\r\n{auth}Content-Type: application/json\r\nAccept: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
            self.port,
            body.len()
        );
        stream.write_all(request.as_bytes()).await?;
        let mut raw = Vec::new();
        tokio::time::timeout(Duration::from_secs(30), stream.read_to_end(&mut raw)).await??;
        let text = String::from_utf8_lossy(&raw);
        let (head, rest) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
        let status = head.split(' ').nth(1).and_then(|s| s.parse().ok()).unwrap_or(0);
        let chunked = head.to_ascii_lowercase().contains("transfer-encoding: chunked");
        let payload = if chunked { unchunk(rest) } else { rest.to_string() };
        Ok((status, serde_json::from_str(&payload).unwrap_or(Value::Null)))
    }

    async fn http(&self, method: &str, path: &str, token: Option<&str>, body: Option<&Value>) -> (u16, Value) {
        self.try_http(method, path, token, body).await.unwrap_or_else(|e| panic!("{method} {path}: {e}"))
    }

    async fn post(&self, path: &str, body: Value) -> (u16, Value) {
        self.http("POST", path, None, Some(&body)).await
    }

    /// A registration up to its code mail (queued); the flow id.
    async fn queue_code_mail(&self, email: &str) -> String {
        let (s, v) = self.post("/api/v1/registrations", json!({})).await;
        assert_eq!(s, 201, "{v}");
        let id = v["id"].as_str().expect("id").to_string();
        for (step, body) in [
            ("org-type", json!({"org_type": "health_insurance"})),
            ("insurer", json!({"insurer_number": "133033"})),
            ("account", json!({"email": email, "password": PASSWORD})),
            ("consents", json!({"accepted": ["platform_terms", "org_privacy", "point_terms"]})),
        ] {
            let (s, v) = self.post(&format!("/api/v1/registrations/{id}/{step}"), body).await;
            assert_eq!(s, 200, "{step}: {v}");
        }
        id
    }

    /// A whole registration, the code read from the sink; the session token.
    async fn register(&self, sink: &SmtpSink, email: &str) -> String {
        let id = self.queue_code_mail(email).await;
        let code = wait_code(sink, email).await;
        let (s, v) = self.post(&format!("/api/v1/registrations/{id}/verify"), json!({"code": code})).await;
        assert_eq!(s, 200, "{v}");
        v["session"]["token"].as_str().expect("token").to_string()
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        self.kill();
    }
}

fn unchunk(body: &str) -> String {
    let mut out = String::new();
    let mut rest = body;
    while let Some((size, after)) = rest.split_once("\r\n") {
        let n = usize::from_str_radix(size.trim(), 16).unwrap_or(0);
        if n == 0 || after.len() < n {
            break;
        }
        out.push_str(&after[..n]);
        rest = after[n..].trim_start_matches("\r\n");
    }
    out
}

async fn wait_code(sink: &SmtpSink, email: &str) -> String {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        if let Some(code) = sink.mails_to(email).last().and_then(smtp::Mail::code) {
            return code;
        }
        assert!(Instant::now() < deadline, "no code mail to {email}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn wait_until(what: &str, seconds: u64, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(seconds);
    while !done() {
        assert!(Instant::now() < deadline, "{what} (waited {seconds} s)");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_nodes_one_killed_the_other_carries_on_and_sends_its_mails_once() {
    let dir = tempfile::tempdir().expect("tempdir");
    let db = Database::create(dir.path());
    let mut sink = SmtpSink::start().await;
    let mut loader = Command::new(env!("CARGO_BIN_EXE_mimoto"));
    loader.arg("demo-data");
    node_env(&mut loader, &dir.path().join("loader"), &db, sink.port);
    let out = loader.output().expect("mimoto demo-data");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));

    let mut a = Node::start("a", dir.path(), &db, sink.port).await;
    // Sessions made on node A: a registration's, and a sign-in's.
    let registered = a.register(&sink, "member-a@example.com").await;
    let (s, v) = a.post("/api/v1/sessions", json!({"email": "member-a@example.com", "password": PASSWORD})).await;
    assert_eq!(s, 201, "{v}");
    let signed_in = v["token"].as_str().or(v["session"]["token"].as_str()).expect("token").to_string();

    // Node A claims four mails in one batch: they fail while the relay is away, and A's next
    // delivery (the relay back) makes them due at once; A takes them and sticks on them (up to
    // `MIMOTO_MAIL_CONCURRENCY` at once), the relay holding `MAIL FROM` without an answer.
    sink.stop();
    let queued: Vec<String> = (0..4).map(|i| format!("queued-{i}@example.com")).collect();
    for email in &queued {
        a.queue_code_mail(email).await;
    }
    let unsent = |db: &Database| {
        psql(
            &db.url,
            "SELECT count(*) FROM mail_outbox WHERE sent_at IS NULL AND dropped_at IS NULL AND retry_wait = 1",
        )
    };
    wait_until("the four mails failed and wait", 20, || unsent(&db) == "4").await;
    sink.up().await;
    sink.hold_after(1);
    a.queue_code_mail("trigger@example.com").await;
    wait_until("A holds the four claims", 20, || {
        sink.waiting() >= 1
            && psql(
                &db.url,
                "SELECT count(*) FROM mail_outbox WHERE sent_at IS NULL AND dropped_at IS NULL AND retry_wait = 0",
            ) == "4"
    })
    .await;
    assert_eq!(sink.mails_to("trigger@example.com").len(), 1);

    let b = Node::start("b", dir.path(), &db, sink.port).await;
    a.kill();
    sink.hold(false);

    // B carries on: A's sessions work on B, and so does everything else.
    for token in [&registered, &signed_in] {
        let (s, v) = b.http("GET", "/api/v1/me", Some(token), None).await;
        assert_eq!(s, 200, "a session made on the killed node: {v}");
    }
    b.register(&sink, "member-b@example.com").await;
    let (s, v) = b.post("/api/v1/sessions", json!({"email": "member-a@example.com", "password": PASSWORD})).await;
    assert_eq!(s, 201, "{v}");

    // A's claims lapse and B sends those mails: each once.
    wait_until(&format!("A's claimed mails go out once their {LEASE_SECS} s lease lapses"), 60, || {
        queued.iter().all(|e| !sink.mails_to(e).is_empty())
    })
    .await;
    wait_until("everything is sent", 20, || {
        psql(&db.url, "SELECT count(*) FROM mail_outbox WHERE sent_at IS NULL AND dropped_at IS NULL") == "0"
    })
    .await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    for email in &queued {
        assert_eq!(sink.mails_to(email).len(), 1, "{email}: once\n{}", b.log_text());
    }
    assert_eq!(sink.duplicates(), Vec::<String>::new(), "a mail arrived twice");
    assert_eq!(sink.mails().len(), 1 + 1 + 4 + 1, "every mail once, nothing else");
    drop(b);
}
