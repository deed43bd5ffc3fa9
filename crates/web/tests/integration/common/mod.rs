//! Test harness: the real router on a random loopback port, a real SMTP server (mailin-embedded)
//! on loopback, a manual clock, and a real store (SQLite file or a fresh PostgreSQL schema).

pub mod authenticator;
pub mod browser;
pub mod console;
pub mod ekyc;
pub mod pg;
pub mod proxy;
pub mod smtp;

use std::net::TcpListener as StdListener;
use std::sync::{Arc, Mutex};
use std::time::{Duration as StdDuration, Instant};

use app::config::{Config, Limit, Limits};
use app::{App, AppState};
use domain::clock::ManualClock;
use mailin_embedded::{response, Handler, Response, Server, SslConfig};
use serde_json::{json, Value};
use time::OffsetDateTime;
use tokio::sync::watch;

#[derive(Debug, Clone, Default)]
pub struct Received {
    pub to: Vec<String>,
    pub data: Vec<u8>,
}

#[derive(Clone, Default)]
struct Sink {
    current: Received,
    done: Arc<Mutex<Vec<Received>>>,
}

/// Recipients whose local part starts with this are refused for good (550), echoing the
/// address as real relays do.
pub const REFUSED_PREFIX: &str = "refused";

impl Handler for Sink {
    fn rcpt(&mut self, to: &str) -> Response {
        let address = to.trim_start_matches('<').trim_end_matches('>');
        if address.starts_with(REFUSED_PREFIX) {
            Response::custom(550, format!("5.1.1 <{address}>: Recipient address rejected: User unknown"))
        } else {
            response::OK
        }
    }

    fn data_start(&mut self, _domain: &str, _from: &str, _is8bit: bool, to: &[String]) -> Response {
        self.current = Received { to: to.to_vec(), data: Vec::new() };
        response::OK
    }
    fn data(&mut self, buf: &[u8]) -> std::io::Result<()> {
        self.current.data.extend_from_slice(buf);
        Ok(())
    }
    fn data_end(&mut self) -> Response {
        self.done.lock().expect("sink lock").push(std::mem::take(&mut self.current));
        response::OK
    }
}

pub type Inbox = Arc<Mutex<Vec<Received>>>;

/// Starts an SMTP server on `listener` in a thread; returns its inbox.
pub fn start_smtp(listener: StdListener) -> Inbox {
    let sink = Sink::default();
    let done = sink.done.clone();
    let mut server = Server::new(sink);
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
    done
}

#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

pub struct Opts {
    pub backend: Backend,
    /// Start the SMTP server at once (false: the port is reserved but closed — an outage).
    pub smtp_up: bool,
    pub limits: Limits,
    /// Changes to the configuration the app starts with (e.g. a test knob).
    pub config: fn(&mut Config),
    /// PostgreSQL through a loopback port (a [`proxy::Proxy`]) instead of directly; the schema
    /// is still made directly.
    pub pg_port: Option<u16>,
    /// Another node of a running app: its database (SQLite file or PostgreSQL schema), data
    /// directory and keys (see [`TestApp::database`]); `backend` is ignored, and the demo data
    /// is there already. Stopping this app leaves the database to its first node.
    pub database_of: Option<SharedDatabase>,
    /// PostgreSQL at this URL (a [`pg::PrivatePg`]) instead of a schema of the test database.
    pub pg_url: Option<String>,
}

/// A running app's database and data directory, for a second node ([`Opts::database_of`]).
#[derive(Clone)]
pub struct SharedDatabase {
    pg_schema: Option<String>,
    data_dir: std::path::PathBuf,
}

impl Default for Opts {
    fn default() -> Self {
        let generous = Limit::new(10_000, 60);
        Opts {
            backend: Backend::Sqlite,
            smtp_up: true,
            limits: Limits {
                register_per_ip: generous,
                register_per_email: generous,
                login_per_ip: generous,
                login_per_account_client: generous,
                login_failures_per_account: Limit::new(10_000, 86_400),
                code_per_ip: generous,
                reset_per_ip: generous,
                reset_per_email: generous,
                inquiry_per_ip: generous,
                inquiry_per_email: generous,
                step_up_per_ip: generous,
                ekyc_capture_tokens_per_member: generous,
                ekyc_uploads_per_member: generous,
                ekyc_face_attempts_per_member: generous,
            },
            config: |_| {},
            pg_port: None,
            database_of: None,
            pg_url: None,
        }
    }
}

pub struct TestApp {
    pub base: String,
    pub app: AppState,
    pub clock: ManualClock,
    pub inbox: Inbox,
    pub smtp_port: u16,
    pub api: reqwest::Client,
    shutdown: watch::Sender<bool>,
    pg_schema: Option<String>,
    /// A second node ([`Opts::database_of`]): the database is its first node's.
    second_node: bool,
    _dir: tempfile::TempDir,
}

pub fn t0() -> OffsetDateTime {
    OffsetDateTime::from_unix_timestamp(1_790_000_000).expect("valid time")
}

impl TestApp {
    pub async fn start(opts: Opts) -> TestApp {
        let dir = tempfile::tempdir().expect("tempdir");
        let smtp_listener = StdListener::bind("127.0.0.1:0").expect("bind smtp");
        let smtp_port = smtp_listener.local_addr().expect("addr").port();
        let inbox = if opts.smtp_up {
            start_smtp(smtp_listener)
        } else {
            drop(smtp_listener);
            Arc::new(Mutex::new(Vec::new()))
        };
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind http");
        let addr = listener.local_addr().expect("addr");
        let mut config = Config {
            listen: addr,
            data_dir: dir.path().to_path_buf(),
            smtp_url: Some(format!("smtp://127.0.0.1:{smtp_port}")),
            public_url: Some(format!("http://{addr}")),
            mail_poll_ms: 50,
            limits: opts.limits,
            models_dir: std::env::var_os("MIMOTO_MODELS_DIR")
                .map(std::path::PathBuf::from)
                .unwrap_or_else(|| std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../models")),
            ..Config::default()
        };
        (opts.config)(&mut config);
        let clock = ManualClock::new(t0());
        if let Some(shared) = &opts.database_of {
            config.data_dir = shared.data_dir.clone();
        }
        let (store, pg_schema): (Arc<dyn store::Store>, Option<String>) = match (&opts.database_of, opts.backend) {
            (Some(SharedDatabase { pg_schema: Some(schema), .. }), _) => {
                (Arc::new(store::testing::pg_schema(schema).await.expect("postgres")), Some(schema.clone()))
            }
            (Some(SharedDatabase { pg_schema: None, data_dir }), _) => {
                (Arc::new(store::testing::sqlite_in(data_dir).await.expect("sqlite")), None)
            }
            (None, Backend::Postgres) if opts.pg_url.is_some() => {
                let url = opts.pg_url.as_deref().unwrap_or_default();
                (Arc::new(store::postgres::PgStore::connect(url).await.expect("the private PostgreSQL")), None)
            }
            (None, backend) => Self::new_database(backend, opts.pg_port, dir.path()).await,
        };
        let app = App::with_store(config, store, Arc::new(clock.clone())).expect("app");
        if opts.database_of.is_none() {
            app::demo::load(&app).await.expect("demo data");
        }
        let (tx, rx) = watch::channel(false);
        tokio::spawn(web::serve(app.clone(), listener, rx));
        let api = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().expect("client");
        TestApp {
            base: format!("http://{addr}"),
            app,
            clock,
            inbox,
            smtp_port,
            api,
            shutdown: tx,
            pg_schema,
            second_node: opts.database_of.is_some(),
            _dir: dir,
        }
    }

    /// This app's database and data directory, for starting a second node on them.
    pub fn database(&self) -> SharedDatabase {
        SharedDatabase { pg_schema: self.pg_schema.clone(), data_dir: self.app.config.data_dir.clone() }
    }

    async fn new_database(
        backend: Backend,
        pg_port: Option<u16>,
        dir: &std::path::Path,
    ) -> (Arc<dyn store::Store>, Option<String>) {
        match backend {
            Backend::Sqlite => (Arc::new(store::testing::sqlite_in(dir).await.expect("sqlite")), None),
            Backend::Postgres => {
                let (s, schema) = store::testing::fresh_pg().await.expect("PostgreSQL must be reachable");
                match pg_port {
                    None => (Arc::new(s), Some(schema)),
                    Some(port) => {
                        let through = store::testing::pg_schema_at(&schema, port).await.expect("through the port");
                        (Arc::new(through), Some(schema))
                    }
                }
            }
        }
    }

    /// Stops the server and starts it again, like a restarted node: the same database, data
    /// directory, clock and SMTP server, with the configuration changed by `change` (new keys)
    /// and a new port (`base` follows; move browsers with [`Browser::follow`]).
    pub async fn restart(&mut self, change: impl FnOnce(&mut Config)) {
        let _ = self.shutdown.send(true);
        let store: Arc<dyn store::Store> = match &self.pg_schema {
            None => Arc::new(store::testing::sqlite_in(&self.app.config.data_dir).await.expect("sqlite")),
            Some(schema) => Arc::new(store::testing::pg_schema(schema).await.expect("postgres")),
        };
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind http");
        let addr = listener.local_addr().expect("addr");
        let mut config = self.app.config.clone();
        config.listen = addr;
        config.public_url = Some(format!("http://{addr}"));
        change(&mut config);
        let app = App::with_store(config, store, Arc::new(self.clock.clone())).expect("app");
        let (tx, rx) = watch::channel(false);
        tokio::spawn(web::serve(app.clone(), listener, rx));
        self.base = format!("http://{addr}");
        self.app = app;
        self.shutdown = tx;
    }

    pub async fn stop(self) {
        let _ = self.shutdown.send(true);
        if let (Some(schema), false) = (&self.pg_schema, self.second_node) {
            store::testing::drop_pg_schema(schema).await.expect("drop schema");
        }
    }

    /// The PostgreSQL schema of this app's store (made by `store::testing::fresh_pg`).
    pub fn pg_schema(&self) -> Option<&str> {
        self.pg_schema.as_deref()
    }

    /// Faults injected into this app's database (see `store::testing::Fault`).
    pub fn fault(&self) -> store::testing::Fault<'_> {
        match &self.pg_schema {
            Some(schema) => store::testing::Fault::Pg { schema },
            None => store::testing::Fault::Sqlite { dir: &self.app.config.data_dir },
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.base, path)
    }

    pub async fn post(&self, path: &str, body: Value) -> (u16, Value) {
        let r = self.api.post(self.url(path)).json(&body).send().await.expect("request");
        let status = r.status().as_u16();
        (status, r.json().await.unwrap_or(Value::Null))
    }

    pub async fn post_auth(&self, path: &str, token: &str, body: Value) -> (u16, Value) {
        let r = self.api.post(self.url(path)).bearer_auth(token).json(&body).send().await.expect("request");
        let status = r.status().as_u16();
        (status, r.json().await.unwrap_or(Value::Null))
    }

    pub async fn delete_auth(&self, path: &str, token: &str) -> (u16, Value) {
        let r = self.api.delete(self.url(path)).bearer_auth(token).send().await.expect("request");
        let status = r.status().as_u16();
        (status, r.json().await.unwrap_or(Value::Null))
    }

    pub async fn get(&self, path: &str, token: Option<&str>) -> (u16, Value) {
        let mut req = self.api.get(self.url(path));
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        let r = req.send().await.expect("request");
        let status = r.status().as_u16();
        (status, r.json().await.unwrap_or(Value::Null))
    }

    /// Mails received so far for `to`, decoded: (subject, text).
    pub fn mails_to(&self, to: &str) -> Vec<(String, String)> {
        let inbox = self.inbox.lock().expect("inbox");
        inbox
            .iter()
            .filter(|m| m.to.iter().any(|t| t.eq_ignore_ascii_case(to)))
            .filter_map(|m| {
                let msg = mail_parser::MessageParser::default().parse(&m.data)?;
                Some((msg.subject().unwrap_or_default().to_string(), msg.body_text(0)?.to_string()))
            })
            .collect()
    }

    /// Waits (bounded) until `n` mails for `to` arrived; returns the code in the newest.
    pub async fn wait_code(&self, to: &str, n: usize) -> String {
        let deadline = Instant::now() + StdDuration::from_secs(15);
        loop {
            let mails = self.mails_to(to);
            if mails.len() >= n {
                let (_, text) = &mails[n - 1];
                return extract_code(text).unwrap_or_else(|| panic!("no code in mail:\n{text}"));
            }
            assert!(Instant::now() < deadline, "mail #{n} to {to} did not arrive");
            tokio::time::sleep(StdDuration::from_millis(25)).await;
        }
    }

    /// Starts an API registration for a health-insurance organization and verifies
    /// `insurer_number`; returns the flow id.
    pub async fn registration_at_account(&self, insurer_number: &str) -> String {
        let (s, flow) = self.post("/api/v1/registrations", json!({})).await;
        assert_eq!(s, 201, "{flow}");
        let id = flow["id"].as_str().expect("id").to_string();
        let (s, v) =
            self.post(&format!("/api/v1/registrations/{id}/org-type"), json!({"org_type": "health_insurance"})).await;
        assert_eq!(s, 200, "{v}");
        let (s, v) =
            self.post(&format!("/api/v1/registrations/{id}/insurer"), json!({"insurer_number": insurer_number})).await;
        assert_eq!(s, 200, "{v}");
        id
    }

    /// Walks the API registration up to the emailed code; returns (flow id, code).
    pub async fn register_until_code(&self, email: &str, password: &str) -> (String, String) {
        let id = self.registration_at_account("133033").await;
        let (s, v) = self
            .post(&format!("/api/v1/registrations/{id}/account"), json!({"email": email, "password": password}))
            .await;
        assert_eq!(s, 200, "{v}");
        assert_eq!(v["consents_required"].as_array().map(Vec::len), Some(3), "{v}");
        let (s, v) = self
            .post(
                &format!("/api/v1/registrations/{id}/consents"),
                json!({"accepted": ["platform_terms", "org_privacy", "point_terms"]}),
            )
            .await;
        assert_eq!(s, 200, "{v}");
        assert_eq!(v["state"], "code_sent");
        let code = self.wait_code(email, self.mails_to(email).len() + 1).await;
        (id, code)
    }

    /// A complete API registration; returns the session token.
    pub async fn register(&self, email: &str, password: &str) -> String {
        let (id, code) = self.register_until_code(email, password).await;
        let (s, v) = self.post(&format!("/api/v1/registrations/{id}/verify"), json!({"code": code})).await;
        assert_eq!(s, 200, "{v}");
        v["session"]["token"].as_str().expect("token").to_string()
    }

    /// 本人確認 (F3) over the API as ヤマダ ハナコ of the demo roster (133033, 1234/5678,
    /// 1990-04-01) for the member behind `token`; then the purpose consents of F4 and F5.
    pub async fn verify_identity(&self, token: &str) {
        let (s, v) = self.post_auth("/api/v1/identity-verifications", token, json!({})).await;
        assert_eq!(s, 201, "{v}");
        let id = v["id"].as_str().expect("id").to_string();
        for (step, body) in [
            ("insurer", json!({"insurer_number": "133033"})),
            ("card", json!({"symbol": "1234", "number": "5678", "branch": ""})),
            ("person", json!({"family_name": "ヤマダ", "given_name": "ハナコ", "birth_date": "1990-04-01"})),
            ("confirm", json!({})),
        ] {
            let (s, v) = self.post_auth(&format!("/api/v1/identity-verifications/{id}/{step}"), token, body).await;
            assert_eq!(s, 200, "{step}: {v}");
            if step == "confirm" {
                assert_eq!(v["state"], "completed", "the roster record is linked to this account: {v}");
            }
        }
        // The purpose consents the apps ask for before F4 (face images) and F5 (health data),
        // given here so that the flows after F3 can go on (tests of the consents themselves
        // withdraw them).
        for doc in ["biometric", "health_data"] {
            let (s, v) = self.post_auth(&format!("/api/v1/consents/{doc}"), token, json!({})).await;
            assert_eq!(s, 200, "consent {doc}: {v}");
        }
    }
}

pub fn extract_code(text: &str) -> Option<String> {
    text.lines().find_map(|l| {
        let rest = l.strip_prefix("ワンタイムパスワード: ").or_else(|| l.strip_prefix("One-time password: "))?;
        let code = rest.trim();
        (code.len() == 6 && code.bytes().all(|b| b.is_ascii_digit())).then(|| code.to_string())
    })
}

pub fn wrong_code(code: &str) -> String {
    let first = code.as_bytes()[0];
    let replaced = if first == b'9' { '0' } else { (first + 1) as char };
    format!("{replaced}{}", &code[1..])
}

pub const PASSWORD: &str = "Sakura-Mochi-2026!";

impl TestApp {
    /// Waits (bounded) until at least `n` mails for `to` arrived; returns them all: (subject, text).
    /// Waits for a mail to `to` whose subject contains `needle` (other mails may arrive in
    /// between or late: counting them races with the mail worker).
    pub async fn wait_mail_about(&self, to: &str, needle: &str) -> Vec<(String, String)> {
        let deadline = Instant::now() + StdDuration::from_secs(15);
        loop {
            let mails = self.mails_to(to);
            if mails.iter().any(|(subject, _)| subject.contains(needle)) {
                return mails;
            }
            assert!(Instant::now() < deadline, "no mail about {needle} to {to}: {mails:?}");
            tokio::time::sleep(StdDuration::from_millis(25)).await;
        }
    }

    pub async fn wait_mails(&self, to: &str, n: usize) -> Vec<(String, String)> {
        let deadline = Instant::now() + StdDuration::from_secs(15);
        loop {
            let mails = self.mails_to(to);
            if mails.len() >= n {
                return mails;
            }
            assert!(Instant::now() < deadline, "{n} mail(s) to {to} did not arrive (got {})", mails.len());
            tokio::time::sleep(StdDuration::from_millis(25)).await;
        }
    }
}

/// Runs each `async fn story(t: TestApp)` listed on SQLite and on PostgreSQL (modules `sqlite`
/// and `postgres` of the test file; `TestApp`, `Opts` and `Backend` must be in scope there).
macro_rules! on_both_backends {
    ($($story:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $story() {
                    super::$story(super::TestApp::start(super::Opts::default()).await).await;
                }
            )*
        }
        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $story() {
                    let opts = super::Opts { backend: super::Backend::Postgres, ..super::Opts::default() };
                    super::$story(super::TestApp::start(opts).await).await;
                }
            )*
        }
    };
}
