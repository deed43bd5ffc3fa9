//! `make load` (issue #15): virtual members through registration → emailed code → verification →
//! login → 本人確認 (F3, against a generated roster) → reading 健診結果 behind the secret question,
//! against one node and then two nodes sharing one PostgreSQL schema, on loopback only.
//!
//! What runs for real: each node is this program started again as a child process running
//! `web::serve` — the router, mail worker and retention jobs of `mimoto serve` — on its own
//! loopback port, with its own hashing permits and memory, against a fresh PostgreSQL schema
//! (created here and dropped at the end). Every step is the member API over HTTP; the one-time
//! code is read from the mail the node delivers over SMTP to a sink in this process.
//!
//! What is seeded: 健診・医療アクセス認証 (F4: document and face pictures, liveness, operator
//! review) is not driven — the face engine costs seconds a member and needs a reviewer. After a
//! member's 本人確認 the harness writes an approved eKYC application with a secret question
//! through the store (sealed like the service seals it), untimed. The secret-question step-up
//! (an argon2id verification) and the checkups are then read through the real endpoints. The
//! roster and one checkup a member are imported through the services before the clock starts.
//!
//! Hashes per flow: 3 (the password at the account step, the login, the secret answer). The
//! argon2 limit is `cores ÷ (hash time × 3)` flows/s, the hash time measured in this run: the
//! CPU time of 40 sequential hashes in this process before each phase's nodes start. Clients,
//! nodes and PostgreSQL share the cores; the CPU each used during the run is printed too
//! (PostgreSQL's counts every `postgres` process on the machine).
//!
//! ```sh
//! cargo bench -p mimoto-web --bench load
//! ```
//! Knobs: `LOAD_MEMBERS` (members a phase, default 1500), `LOAD_CONCURRENCY` (members in flight,
//! 16), `LOAD_SECS` (a phase stops starting flows after this, default 60), `LOAD_NODES`
//! (`1,2`).

#![allow(clippy::unwrap_used, clippy::expect_used)] // a benchmark: a panic is a failed run

use std::collections::HashMap;
use std::io::{BufRead, Write as _};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use app::config::{Config, Limit, Limits};
use app::AppState;
use base64::Engine as _;
use mailin_embedded::{response, Handler, Response, Server, SslConfig};
use serde_json::{json, Value};
use tokio::sync::Notify;

const INSURER: &str = "133033";
const SYMBOL: &str = "9001";
const PASSWORD: &str = "Sakura-Mochi-2026!";
const QUESTION: &str = "子どもの頃に住んでいた町の図書館";
const ANSWER: &str = "みどり図書館";
/// The sealing context of eKYC applications (`app::services::ekyc::AAD`).
const EKYC_AAD: &str = "ekyc_applications";
const HASHES_PER_FLOW: f64 = 3.0;
const STEPS: [&str; 7] = ["register", "code", "verify", "login", "identity", "step_up", "checkups"];

fn env_or(name: &str, default: u64) -> u64 {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

fn generous() -> Limits {
    let g = Limit::new(1_000_000_000, 60);
    Limits {
        register_per_ip: g,
        register_per_email: g,
        login_per_ip: g,
        login_per_account_client: g,
        login_failures_per_account: g,
        code_per_ip: g,
        reset_per_ip: g,
        reset_per_email: g,
        inquiry_per_ip: g,
        inquiry_per_email: g,
        step_up_per_ip: g,
        ekyc_capture_tokens_per_member: g,
        ekyc_uploads_per_member: g,
        ekyc_face_attempts_per_member: g,
    }
}

/// The configuration of a node (and of this process's own view of the store, for seeding).
fn config(dir: &std::path::Path, smtp_port: u16, secret_key: &str, data_keys: &str) -> Config {
    Config {
        listen: "127.0.0.1:0".parse().expect("addr"),
        data_dir: dir.to_path_buf(),
        smtp_url: Some(format!("smtp://127.0.0.1:{smtp_port}")),
        secret_key: Some(secret_key.to_string()),
        data_keys: Some(data_keys.to_string()),
        limits: generous(),
        ..Config::default()
    }
}

// ---------------------------------------------------------------- node (child process)

/// A node: `web::serve` on a loopback port against the schema, until standard input closes.
fn node(schema: String) {
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build().expect("runtime");
    runtime.block_on(async move {
        let dir = tempfile::tempdir().expect("tempdir");
        let smtp_port: u16 = std::env::var("LOAD_SMTP_PORT").expect("smtp port").parse().expect("port");
        let secret = std::env::var("LOAD_SECRET_KEY").expect("secret key");
        let data = std::env::var("LOAD_DATA_KEYS").expect("data keys");
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        let mut config = config(dir.path(), smtp_port, &secret, &data);
        config.listen = addr;
        config.public_url = Some(format!("http://{addr}"));
        let store = store::testing::pg_schema(&schema).await.expect("schema");
        let app = app::App::with_store(config, Arc::new(store), Arc::new(domain::clock::SystemClock)).expect("app");
        let (stop, rx) = tokio::sync::watch::channel(false);
        let server = tokio::spawn(web::serve(app, listener, rx));
        println!("listening {addr}");
        std::io::stdout().flush().expect("flush");
        // The parent closes our standard input to stop us.
        tokio::task::spawn_blocking(|| {
            let mut line = String::new();
            while std::io::stdin().lock().read_line(&mut line).map(|n| n > 0).unwrap_or(false) {
                line.clear();
            }
        })
        .await
        .expect("stdin");
        let _ = stop.send(true);
        let _ = tokio::time::timeout(Duration::from_secs(10), server).await;
    });
}

struct Node {
    child: Child,
    base: String,
}

fn start_node(schema: &str, smtp_port: u16, secret: &str, data: &str) -> Node {
    let mut child = Command::new(std::env::current_exe().expect("exe"))
        .env("MIMOTO_LOAD_NODE", schema)
        .env("LOAD_SMTP_PORT", smtp_port.to_string())
        .env("LOAD_SECRET_KEY", secret)
        .env("LOAD_DATA_KEYS", data)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("start node");
    let mut out = std::io::BufReader::new(child.stdout.take().expect("stdout"));
    let mut line = String::new();
    out.read_line(&mut line).expect("node address");
    let addr = line.trim().strip_prefix("listening ").unwrap_or_else(|| panic!("node said {line:?}")).to_string();
    Node { child, base: format!("http://{addr}") }
}

fn stop_node(mut node: Node) {
    drop(node.child.stdin.take());
    let deadline = Instant::now() + Duration::from_secs(15);
    while Instant::now() < deadline {
        if let Ok(Some(_)) = node.child.try_wait() {
            return;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let _ = node.child.kill();
    let _ = node.child.wait();
}

// ---------------------------------------------------------------- SMTP sink

/// Codes by recipient, as the nodes deliver them.
#[derive(Default)]
struct Codes {
    by_address: Mutex<HashMap<String, String>>,
    arrived: Notify,
}

#[derive(Clone)]
struct Sink {
    to: Vec<String>,
    data: Vec<u8>,
    codes: Arc<Codes>,
}

impl Handler for Sink {
    fn data_start(&mut self, _domain: &str, _from: &str, _is8bit: bool, to: &[String]) -> Response {
        self.to = to.to_vec();
        self.data.clear();
        response::OK
    }
    fn data(&mut self, buf: &[u8]) -> std::io::Result<()> {
        self.data.extend_from_slice(buf);
        Ok(())
    }
    fn data_end(&mut self) -> Response {
        let code = mail_parser::MessageParser::default()
            .parse(&self.data)
            .and_then(|m| m.body_text(0).map(|t| t.to_string()))
            .and_then(|text| extract_code(&text));
        if let Some(code) = code {
            let mut map = self.codes.by_address.lock().expect("codes");
            for to in &self.to {
                map.insert(to.trim_matches(['<', '>']).to_ascii_lowercase(), code.clone());
            }
            drop(map);
            self.codes.arrived.notify_waiters();
        }
        response::OK
    }
}

fn extract_code(text: &str) -> Option<String> {
    text.lines().find_map(|l| {
        let rest = l.strip_prefix("ワンタイムパスワード: ").or_else(|| l.strip_prefix("One-time password: "))?;
        let code = rest.trim();
        (code.len() == 6 && code.bytes().all(|b| b.is_ascii_digit())).then(|| code.to_string())
    })
}

fn start_smtp(codes: Arc<Codes>) -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind smtp");
    let port = listener.local_addr().expect("addr").port();
    let mut server = Server::new(Sink { to: Vec::new(), data: Vec::new(), codes });
    // A thread per connection it may have at once: each node pools up to `mail_concurrency`.
    server
        .with_name("sink.localhost")
        .with_num_threads(16)
        .with_ssl(SslConfig::None)
        .expect("ssl config")
        .with_tcp_listener(listener);
    std::thread::spawn(move || {
        let _ = server.serve();
    });
    port
}

async fn wait_code(codes: &Codes, email: &str, deadline: Instant) -> Result<String, String> {
    loop {
        let arrived = codes.arrived.notified();
        tokio::pin!(arrived);
        arrived.as_mut().enable();
        if let Some(code) = codes.by_address.lock().expect("codes").remove(email) {
            return Ok(code);
        }
        if tokio::time::timeout_at(tokio::time::Instant::from_std(deadline), arrived).await.is_err() {
            return Err("no code mail within 30 s".into());
        }
    }
}

// ---------------------------------------------------------------- data

fn birth(i: usize) -> time::Date {
    time::macros::date!(1970 - 01 - 01) + time::Duration::days((i % 15_000) as i64)
}

fn card_number(i: usize) -> String {
    format!("{}", 100_000 + i)
}

/// The generated roster: one record a member (the demo rows of the organization end).
fn roster_csv(members: usize) -> String {
    let mut csv =
        String::from("insurer_number,symbol,number,branch,family_name_kana,given_name_kana,birth_date,eligible_from,eligible_until\n");
    for i in 0..members {
        csv.push_str(&format!("{INSURER},{SYMBOL},{},,ロード,タロウ,{},2020-04-01,\n", card_number(i), birth(i)));
    }
    csv
}

/// One 特定健診 document a member, from the demo's template.
fn checkups_zip(members: usize) -> Vec<u8> {
    use std::io::Write as _;
    const TEMPLATE: &str = include_str!("../../app/demo/checkup-template.xml");
    let entries = [("9N001000000000001", "身長", "cm", "170.2"), ("9N006000000000001", "体重", "kg", "64.8"), ("9A751000000000001", "収縮期血圧", "mmHg", "124")]
        .iter()
        .map(|(code, name, unit, value)| {
            format!(
                r#"<entry><observation classCode="OBS" moodCode="EVN"><code code="{code}" codeSystem="1.2.392.200119.6.1005" displayName="{name}"/><value xsi:type="PQ" value="{value}" unit="{unit}"/></observation></entry>"#
            )
        })
        .collect::<Vec<_>>()
        .join("\n");
    let mut writer = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    let options = zip::write::SimpleFileOptions::default().compression_method(zip::CompressionMethod::Deflated);
    for i in 0..members {
        let b = birth(i);
        let xml = TEMPLATE
            .replace("{document}", &format!("load{i}"))
            .replace("{examined}", "20250610")
            .replace("{entries}", &entries)
            .replace(r#"extension="1234""#, &format!(r#"extension="{SYMBOL}""#))
            .replace(r#"extension="5678""#, &format!(r#"extension="{}""#, card_number(i)))
            .replace("ヤマダ ハナコ", "ロード タロウ")
            .replace("19900401", &format!("{:04}{:02}{:02}", b.year(), u8::from(b.month()), b.day()));
        writer.start_file(format!("{INSURER}_load/DATA/h{i}.xml"), options).expect("zip");
        writer.write_all(xml.as_bytes()).expect("zip");
    }
    writer.finish().expect("zip").into_inner()
}

/// An approved 健診・医療アクセス認証 with the secret question, for the member of `token` (seeded:
/// see the top of this file).
async fn seed_ekyc(app: &AppState, token: &str, answer_hash: &str) -> Result<(), String> {
    use app::services::ekyc::EkycData;
    use domain::ekyc::{EkycApplication, EkycState};
    let member = app::services::auth::authenticate(app, token)
        .await
        .map_err(|e| format!("seed: {e}"))?
        .ok_or("seed: the session is unknown")?;
    let mut application = EkycApplication::new();
    application.state = EkycState::Approved;
    let data = EkycData {
        app: application,
        images: Vec::new(),
        document_embedding: None,
        frontal_embedding: None,
        frontal_sha256: None,
        document_frontal_score: None,
        reasons: Vec::new(),
        secret_question: Some(QUESTION.to_string()),
        secret_answer_hash: Some(answer_hash.to_string()),
        document_reading: None,
        instruction_at: None,
        frontal_spoof_score: None,
    };
    let now = app.now();
    let record = store::EkycRecord {
        id: app::services::new_id(),
        user_id: member.user.id.clone(),
        org_id: member.user.org_id.clone(),
        state: app::services::ekyc::state_name(EkycState::Approved).ok_or("state name")?,
        open: false,
        data: app.keys.seal_json(EKYC_AAD, &data).map_err(|e| format!("seal: {e}"))?,
        version: 1,
        created_at: now,
        updated_at: now,
        submitted_at: Some(now),
        decided_at: Some(now),
        sampled: false,
    };
    app.store.insert_ekyc(&record).await.map_err(|e| format!("seed: {e}"))
}

// ---------------------------------------------------------------- one member's flow

/// What the virtual members of a phase share.
struct Shared {
    http: reqwest::Client,
    nodes: Vec<String>,
    codes: Arc<Codes>,
    app: AppState,
    answer_hash: String,
    next: AtomicUsize,
    members: usize,
    until: Instant,
    results: Mutex<Vec<[Duration; 7]>>,
    failures: Mutex<Vec<(usize, String)>>,
}

struct Flow<'a> {
    shared: &'a Shared,
    i: usize,
}

/// A virtual member after another, until the phase's members are done or its time is up.
async fn worker(shared: Arc<Shared>) {
    loop {
        let i = shared.next.fetch_add(1, Ordering::Relaxed);
        if i >= shared.members || Instant::now() >= shared.until {
            return;
        }
        match (Flow { shared: &shared, i }).run().await {
            Ok(took) => shared.results.lock().expect("results").push(took),
            Err(f) => shared.failures.lock().expect("failures").push(f),
        }
    }
}

impl Flow<'_> {
    /// The node for step `s`: consecutive steps alternate between nodes when there are two.
    fn base(&self, s: usize) -> &str {
        &self.shared.nodes[(self.i + s) % self.shared.nodes.len()]
    }

    async fn call(
        &self,
        s: usize,
        method: &str,
        path: &str,
        token: Option<&str>,
        body: Option<Value>,
    ) -> Result<Value, String> {
        let url = format!("{}{path}", self.base(s));
        let http = &self.shared.http;
        let mut req = if method == "GET" { http.get(&url) } else { http.post(&url) };
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        if let Some(b) = body {
            req = req.json(&b);
        }
        let res = req.send().await.map_err(|e| format!("{method} {path}: {e}"))?;
        let status = res.status().as_u16();
        let v: Value = res.json().await.unwrap_or(Value::Null);
        if (200..300).contains(&status) {
            Ok(v)
        } else {
            Err(format!("{method} {path}: {status} {v}"))
        }
    }

    /// The whole flow; the duration of each step, or the step that failed and why.
    async fn run(&self) -> Result<[Duration; 7], (usize, String)> {
        let mut took = [Duration::ZERO; 7];
        let email = format!("load-{}@example.com", self.i);
        let fail = |s: usize| move |e: String| (s, e);

        let t = Instant::now();
        let flow = self.call(0, "POST", "/api/v1/registrations", None, Some(json!({}))).await.map_err(fail(0))?;
        let id = flow["id"].as_str().ok_or((0, format!("no flow id: {flow}")))?.to_string();
        for (step, body) in [
            ("org-type", json!({"org_type": "health_insurance"})),
            ("insurer", json!({"insurer_number": INSURER})),
            ("account", json!({"email": email, "password": PASSWORD})),
            ("consents", json!({"accepted": ["platform_terms", "org_privacy", "point_terms"]})),
        ] {
            self.call(0, "POST", &format!("/api/v1/registrations/{id}/{step}"), None, Some(body))
                .await
                .map_err(fail(0))?;
        }
        took[0] = t.elapsed();

        let t = Instant::now();
        let code =
            wait_code(&self.shared.codes, &email, Instant::now() + Duration::from_secs(30)).await.map_err(fail(1))?;
        took[1] = t.elapsed();

        let t = Instant::now();
        let v = self
            .call(2, "POST", &format!("/api/v1/registrations/{id}/verify"), None, Some(json!({"code": code})))
            .await
            .map_err(fail(2))?;
        v["session"]["token"].as_str().ok_or((2, format!("no session: {v}")))?;
        took[2] = t.elapsed();

        let t = Instant::now();
        let v = self
            .call(3, "POST", "/api/v1/sessions", None, Some(json!({"email": email, "password": PASSWORD})))
            .await
            .map_err(fail(3))?;
        let token = v["token"].as_str().ok_or((3, format!("no token: {v}")))?.to_string();
        took[3] = t.elapsed();

        let t = Instant::now();
        let v = self
            .call(4, "POST", "/api/v1/identity-verifications", Some(&token), Some(json!({})))
            .await
            .map_err(fail(4))?;
        let iv = v["id"].as_str().ok_or((4, format!("no id: {v}")))?.to_string();
        let b = birth(self.i);
        for (step, body) in [
            ("insurer", json!({"insurer_number": INSURER})),
            ("card", json!({"symbol": SYMBOL, "number": card_number(self.i), "branch": ""})),
            ("person", json!({"family_name": "ロード", "given_name": "タロウ", "birth_date": b.to_string()})),
            ("confirm", json!({})),
        ] {
            let v = self
                .call(4, "POST", &format!("/api/v1/identity-verifications/{iv}/{step}"), Some(&token), Some(body))
                .await
                .map_err(fail(4))?;
            if step == "confirm" && v["state"] != "completed" {
                return Err((4, format!("not linked: {v}")));
            }
        }
        took[4] = t.elapsed();

        seed_ekyc(&self.shared.app, &token, &self.shared.answer_hash).await.map_err(fail(5))?;

        let t = Instant::now();
        let v = self.call(5, "GET", "/api/v1/health", Some(&token), None).await.map_err(fail(5))?;
        if v["step_up"] != "ask" {
            return Err((5, format!("step-up not asked: {v}")));
        }
        self.call(5, "POST", "/api/v1/health/step-up", Some(&token), Some(json!({"answer": ANSWER})))
            .await
            .map_err(fail(5))?;
        took[5] = t.elapsed();

        let t = Instant::now();
        let v = self.call(6, "GET", "/api/v1/health/checkups", Some(&token), None).await.map_err(fail(6))?;
        if v["checkups"].as_array().is_none_or(Vec::is_empty) {
            return Err((6, format!("no checkup: {v}")));
        }
        took[6] = t.elapsed();
        Ok(took)
    }
}

// ---------------------------------------------------------------- a phase

/// CPU seconds (user + system) a process has used, from /proc (clock ticks of 1/100 s).
fn cpu_secs(pid: &str) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // The fields after the command name (which is in parentheses and may hold spaces).
    let rest = stat.rsplit_once(')').map_or("", |(_, r)| r);
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks = |i: usize| fields.get(i).and_then(|f| f.parse::<f64>().ok()).unwrap_or(0.0);
    (ticks(11) + ticks(12)) / 100.0
}

/// CPU seconds of every PostgreSQL process on this machine (server and backends).
fn postgres_cpu_secs() -> f64 {
    let Ok(dir) = std::fs::read_dir("/proc") else { return 0.0 };
    dir.filter_map(Result::ok)
        .filter_map(|e| e.file_name().into_string().ok())
        .filter(|pid| pid.bytes().all(|b| b.is_ascii_digit()))
        .filter(|pid| std::fs::read_to_string(format!("/proc/{pid}/comm")).is_ok_and(|c| c.trim() == "postgres"))
        .map(|pid| cpu_secs(&pid))
        .sum()
}

/// (this process, the nodes, PostgreSQL) CPU seconds so far.
fn cpu(nodes: &[Node]) -> (f64, f64, f64) {
    let nodes = nodes.iter().map(|n| cpu_secs(&n.child.id().to_string())).sum();
    (cpu_secs("self"), nodes, postgres_cpu_secs())
}

fn percentile(sorted: &[Duration], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i].as_secs_f64() * 1000.0
}

/// `n` sequential hashes by the server's own code, before the nodes start (nothing else of
/// this run is busy then): (median wall time, CPU time a hash of this process) in ms. The CPU
/// time is the cost of a hash to a core; the wall time also counts waiting for a core that
/// other work on the machine holds.
async fn hash_ms(n: usize) -> (f64, f64) {
    let mut times = Vec::new();
    let cpu = cpu_secs("self");
    for _ in 0..n {
        let t = Instant::now();
        app::services::passwords::hash(PASSWORD.into()).await.expect("hash");
        times.push(t.elapsed());
    }
    let cpu = (cpu_secs("self") - cpu) / n as f64 * 1000.0;
    times.sort();
    (percentile(&times, 0.5), cpu)
}

async fn phase(node_count: usize, members: usize, concurrency: usize, secs: u64) {
    let cores = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1);
    let (store, schema) = store::testing::fresh_pg().await.expect("PostgreSQL must be reachable");
    let dir = tempfile::tempdir().expect("tempdir");
    let key = |rng: &mut rand::rngs::ThreadRng| {
        use rand::RngCore;
        let mut k = [0u8; 32];
        rng.fill_bytes(&mut k);
        base64::engine::general_purpose::STANDARD.encode(k)
    };
    let mut rng = rand::thread_rng();
    let secret = key(&mut rng);
    let data = format!("k1:{}", key(&mut rng));
    let codes = Arc::new(Codes::default());
    let smtp_port = start_smtp(codes.clone());
    let app = app::App::with_store(
        config(dir.path(), smtp_port, &secret, &data),
        Arc::new(store),
        Arc::new(domain::clock::SystemClock),
    )
    .expect("app");

    // Set-up, untimed: organizations, the roster and a checkup a member.
    let t = Instant::now();
    app::demo::load(&app).await.expect("demo organizations");
    let org = app.store.find_org_by_insurer_number(INSURER).await.expect("org").expect("demo org");
    app::services::roster::import_bytes(
        &app,
        &org,
        roster_csv(members).as_bytes(),
        app::services::roster::Encoding::Utf8,
        &mut (),
    )
    .await
    .expect("roster");
    app::services::checkups::import_zip(&app, INSURER, "load.zip", checkups_zip(members), &mut ())
        .await
        .expect("checkups");
    let normalized = domain::ekyc::normalize_secret_answer(ANSWER).expect("answer");
    let answer_hash = app::services::passwords::hash(normalized).await.expect("hash");
    let setup = t.elapsed();

    let (hash_wall, hash) = hash_ms(40).await;
    let nodes: Vec<Node> = (0..node_count).map(|_| start_node(&schema, smtp_port, &secret, &data)).collect();
    let bases: Vec<String> = nodes.iter().map(|n| n.base.clone()).collect();
    let http = reqwest::Client::builder()
        .pool_max_idle_per_host(concurrency)
        .timeout(Duration::from_secs(30))
        .build()
        .expect("client");

    let cpu_before = cpu(&nodes);
    let started = Instant::now();
    let shared = Arc::new(Shared {
        http,
        nodes: bases,
        codes,
        app,
        answer_hash,
        next: AtomicUsize::new(0),
        members,
        until: started + Duration::from_secs(secs),
        results: Mutex::new(Vec::new()),
        failures: Mutex::new(Vec::new()),
    });
    let workers: Vec<_> = (0..concurrency).map(|_| tokio::spawn(worker(shared.clone()))).collect();
    for w in workers {
        w.await.expect("worker");
    }
    let elapsed = started.elapsed().as_secs_f64();
    let cpu_after = cpu(&nodes);

    tokio::task::spawn_blocking(move || nodes.into_iter().for_each(stop_node)).await.expect("stop nodes");
    store::testing::drop_pg_schema(&schema).await.expect("drop schema");

    let results = std::mem::take(&mut *shared.results.lock().expect("results"));
    let failures = std::mem::take(&mut *shared.failures.lock().expect("failures"));
    let done = results.len();
    let rate = done as f64 / elapsed;
    let limit = cores as f64 / (hash / 1000.0 * HASHES_PER_FLOW);
    println!();
    println!(
        "## {node_count} node(s): {done} flows in {elapsed:.1} s = {rate:.1} flows/s ({concurrency} members in flight, {} failed)",
        failures.len()
    );
    println!(
        "argon2id {hash:.1} ms CPU a hash (40 hashes before the run; median wall time {hash_wall:.1} ms) → limit {cores} cores ÷ \
         ({hash:.1} ms × 3) = {limit:.0} flows/s; measured/limit = {:.0}%",
        rate / limit * 100.0
    );
    println!("set-up (roster + {members} checkups, untimed): {:.1} s", setup.as_secs_f64());
    println!("| step | p50 ms | p99 ms | share of the flow |");
    println!("|---|---:|---:|---:|");
    let total: f64 = results.iter().map(|r| r.iter().map(Duration::as_secs_f64).sum::<f64>()).sum();
    for (s, name) in STEPS.iter().enumerate() {
        let mut times: Vec<Duration> = results.iter().map(|r| r[s]).collect();
        times.sort();
        let share = times.iter().map(Duration::as_secs_f64).sum::<f64>() / total * 100.0;
        println!("| {name} | {:.1} | {:.1} | {share:.0}% |", percentile(&times, 0.5), percentile(&times, 0.99));
    }
    let mut flows: Vec<Duration> = results.iter().map(|r| r.iter().sum()).collect();
    flows.sort();
    println!("| whole flow | {:.1} | {:.1} | |", percentile(&flows, 0.5), percentile(&flows, 0.99));
    let (harness, node_cpu, pg) = (cpu_after.0 - cpu_before.0, cpu_after.1 - cpu_before.1, cpu_after.2 - cpu_before.2);
    println!(
        "CPU during the run: nodes {node_cpu:.1} s ({:.0} ms a flow, of which argon2 {:.0} ms), PostgreSQL {pg:.1} s \
         ({:.0} ms a flow), this harness (clients, SMTP sink, seeding) {harness:.1} s ({:.0} ms a flow); \
         {:.0}% of {cores} cores busy",
        node_cpu / done as f64 * 1000.0,
        hash * HASHES_PER_FLOW,
        pg / done as f64 * 1000.0,
        harness / done as f64 * 1000.0,
        (harness + node_cpu + pg) / elapsed / cores as f64 * 100.0
    );
    for (s, why) in failures.iter().take(5) {
        println!("failed at {}: {why}", STEPS[*s]);
    }
}

fn main() {
    if let Ok(schema) = std::env::var("MIMOTO_LOAD_NODE") {
        return node(schema);
    }
    let members = env_or("LOAD_MEMBERS", 1500) as usize;
    let concurrency = env_or("LOAD_CONCURRENCY", 16).max(1) as usize;
    let secs = env_or("LOAD_SECS", 60);
    let node_counts: Vec<usize> = std::env::var("LOAD_NODES")
        .unwrap_or_else(|_| "1,2".into())
        .split(',')
        .filter_map(|n| n.trim().parse().ok())
        .filter(|n| (1..=4).contains(n))
        .collect();
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build().expect("runtime");
    runtime.block_on(async {
        println!(
            "load: {members} members a phase, {concurrency} in flight, at most {secs} s a phase, {}",
            app::services::passwords::implementation()
        );
        for n in node_counts {
            phase(n, members, concurrency, secs).await;
        }
    });
}
