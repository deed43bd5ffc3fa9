//! Configuration: built-in defaults, then an optional TOML file, then `MIMOTO_*`
//! environment variables (nested keys with `__`, e.g. `MIMOTO_LIMITS__LOGIN_PER_IP__MAX`).
//! `serve` with no configuration at all runs on the embedded defaults.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use figment::providers::{Env, Format, Serialized, Toml};
use figment::Figment;
use serde::{Deserialize, Serialize};

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("configuration: {0}")]
    Figment(#[from] Box<figment::Error>),
    #[error("configuration: {0}")]
    Invalid(String),
}

/// One fixed-window rate limit.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
pub struct Limit {
    pub max: i64,
    pub window_secs: i64,
}

impl Limit {
    pub const fn new(max: i64, window_secs: i64) -> Self {
        Limit { max, window_secs }
    }
}

/// Rate limits on every credential endpoint, per client IP and per identifier.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Limits {
    pub register_per_ip: Limit,
    pub register_per_email: Limit,
    /// Failed logins from one client (address, IPv6 /64) on any account.
    pub login_per_ip: Limit,
    /// Failed logins on one account from one client (address, IPv6 /64): only that client is
    /// refused when it is spent. (Both are counted before the password is checked; a success
    /// takes its hits back.)
    pub login_per_account_client: Limit,
    /// Failed logins of one account from anywhere (NIST SP 800-63B: at most 100); then the
    /// account waits for the window to end or a password reset. Before that, failures beyond
    /// 5 slow every attempt down (`services::limits::LoginGuard`).
    pub login_failures_per_account: Limit,
    pub code_per_ip: Limit,
    pub reset_per_ip: Limit,
    pub reset_per_email: Limit,
    /// Customer-center inquiries (F6) per client IP.
    pub inquiry_per_ip: Limit,
    /// Customer-center inquiries (F6) per contact email.
    pub inquiry_per_email: Limit,
    /// Answers to the secret question (F5 step-up) per client IP; each member is also locked
    /// after 5 wrong answers (`services::stepup`).
    pub step_up_per_ip: Limit,
    /// eKYC capture tokens a member may ask for (each capture page shows one).
    pub ekyc_capture_tokens_per_member: Limit,
    /// eKYC uploads (documents and selfies) a member may send, counted before anything is read.
    pub ekyc_uploads_per_member: Limit,
    /// Selfies a member may have compared, across applications (each application also has its
    /// own attempt limit).
    pub ekyc_face_attempts_per_member: Limit,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            register_per_ip: Limit::new(30, 3600),
            register_per_email: Limit::new(10, 3600),
            login_per_ip: Limit::new(30, 900),
            login_per_account_client: Limit::new(10, 900),
            login_failures_per_account: Limit::new(100, 86_400),
            code_per_ip: Limit::new(60, 900),
            reset_per_ip: Limit::new(10, 3600),
            reset_per_email: Limit::new(5, 3600),
            inquiry_per_ip: Limit::new(10, 3600),
            inquiry_per_email: Limit::new(5, 3600),
            step_up_per_ip: Limit::new(30, 900),
            ekyc_capture_tokens_per_member: Limit::new(60, 3600),
            ekyc_uploads_per_member: Limit::new(30, 3600),
            ekyc_face_attempts_per_member: Limit::new(15, 3600),
        }
    }
}

/// The longest retention period accepted (100 years): longer ones are a typo.
pub const MAX_RETENTION_DAYS: i64 = 36_500;

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default)]
pub struct Config {
    /// Address to listen on (`MIMOTO_LISTEN`).
    pub listen: SocketAddr,
    /// Where the SQLite file, the mail outbox, images and generated keys live (`MIMOTO_DATA_DIR`).
    pub data_dir: PathBuf,
    /// `sqlite:…` or `postgres://…` (`MIMOTO_DATABASE_URL`); default: `<data_dir>/mimoto.db`.
    pub database_url: Option<String>,
    /// SMTP server (`MIMOTO_SMTP_URL`, e.g. `smtp://user:pass@host:587?tls=required`);
    /// unset: mail is written to `<data_dir>/outbox/`.
    pub smtp_url: Option<String>,
    /// Sender address (`MIMOTO_MAIL_FROM`).
    pub mail_from: String,
    /// The SMTP relay takes internationalized addresses (SMTPUTF8, RFC 6531;
    /// `MIMOTO_SMTP_UTF8`). Off (the default): an address with characters beyond ASCII (after
    /// full-width letters are folded) is refused where it is entered, with a clear message,
    /// because no mail could ever reach it.
    #[serde(deserialize_with = "lenient_bool")]
    pub smtp_utf8: bool,
    /// The address members use (`MIMOTO_PUBLIC_URL`); default `http://<listen>`.
    pub public_url: Option<String>,
    /// Demo mode (`MIMOTO_DEMO`): shows the mail outbox at `/dev/mail`. It publishes every
    /// one-time password, so it is refused unless the server listens on a loopback address
    /// and the public URL is not https.
    #[serde(deserialize_with = "lenient_bool")]
    pub demo: bool,
    /// Secure cookies (`MIMOTO_COOKIE_SECURE`); default: on when the public URL is https.
    #[serde(deserialize_with = "lenient_opt_bool")]
    pub cookie_secure: Option<bool>,
    /// `text` (default) or `json` (`MIMOTO_LOG_FORMAT`).
    pub log_format: String,
    /// MAC keys for codes, CSRF tokens, sessions and blind indexes (`MIMOTO_SECRET_KEY`):
    /// base64 of 32 random bytes (the key `m0`), or `id:base64,id:base64` while rotating.
    /// Unset: generated once into `<data_dir>/secrets.toml`.
    pub secret_key: Option<String>,
    /// Which MAC key makes new MACs (`MIMOTO_ACTIVE_SECRET_KEY`); default the last listed.
    pub active_secret_key: Option<String>,
    /// MAC keys taken out of service, `id:base64,…` (`MIMOTO_RETIRED_SECRET_KEYS`): only
    /// `mimoto audit verify` uses them, to check audit rows chained under them.
    pub retired_secret_keys: Option<String>,
    /// Data-encryption keys, `id:base64,id:base64` (`MIMOTO_DATA_KEYS`). Unset: generated.
    pub data_keys: Option<String>,
    /// Which data key seals new data (`MIMOTO_ACTIVE_DATA_KEY`); default the last listed.
    pub active_data_key: Option<String>,
    /// How often the mail worker looks for due mail, in milliseconds.
    pub mail_poll_ms: u64,
    /// How long a mail worker's claim on a batch lasts, in seconds (`MIMOTO_MAIL_LEASE_SECS`,
    /// default 120): mails a node claimed and could not settle (it died) are claimed again by
    /// another node after this. Keep it well above the SMTP command timeout (30 s); the fault
    /// tests shorten it to see a killed node's claims go out.
    pub mail_lease_secs: u64,
    /// Mails a node delivers at once, and its SMTP connections to the relay
    /// (`MIMOTO_MAIL_CONCURRENCY`, default 4, 1–32): one after another, each mail's round trips
    /// cap a node at ~20 mails a second. Keep it within what the relay accepts from one client.
    pub mail_concurrency: u32,
    pub limits: Limits,
    /// Days after an eKYC decision when its images (and any face embedding left) are deleted
    /// (`MIMOTO_EKYC_IMAGE_RETENTION_DAYS`).
    pub ekyc_image_retention_days: i64,
    /// Days after its last step when an eKYC application that was never submitted — left
    /// half-way, or out of face attempts — loses its images, face embeddings and what OCR read
    /// on the document, and starts over (`MIMOTO_EKYC_ABANDONED_RETENTION_DAYS`). Submitted
    /// applications wait for their reviewer and decided ones follow
    /// `ekyc_image_retention_days`.
    pub ekyc_abandoned_retention_days: i64,
    /// Days after it was sent when a mail leaves the outbox (its body holds one-time
    /// passwords); mail not sent yet is never deleted (`MIMOTO_OUTBOX_RETENTION_DAYS`).
    pub outbox_retention_days: i64,
    /// Days after a one-time code was used, voided or expired when it is deleted
    /// (`MIMOTO_CODE_RETENTION_DAYS`).
    pub code_retention_days: i64,
    /// Days after an inquiry was closed when it is deleted with its replies
    /// (`MIMOTO_INQUIRY_RETENTION_DAYS`); the audit log keeps naming it by id.
    pub inquiry_retention_days: i64,
    /// The face models installed by `make models` (`MIMOTO_MODELS_DIR`).
    pub models_dir: PathBuf,
    /// Cosine similarity at or above which two faces are the same person
    /// (`MIMOTO_FACE_THRESHOLD`); see `mimoto face eval`.
    pub face_threshold: f32,
    /// How far above `face_threshold` every eKYC face score must be for an application to be
    /// approved without a human (`MIMOTO_EKYC_AUTO_MARGIN`); below it, an operator reviews.
    pub ekyc_auto_margin: f32,
    /// Where eKYC images are stored, sealed (`MIMOTO_IMAGE_STORE_URL`): `s3://bucket/prefix`
    /// (credentials and region from the standard `AWS_*` environment variables) or `memory://`
    /// (tests). Unset: the local folder `<data_dir>/images`.
    pub image_store_url: Option<String>,
    /// TESTS ONLY (`MIMOTO_EKYC_INSTRUCTION_SEED`): draw the angled-selfie instruction from a
    /// generator seeded with this number instead of the OS's CSPRNG, so a browser test knows
    /// which pose to show the fake camera. Refused when cookies are secure (any https
    /// deployment), and `mimoto serve` warns loudly when it is set.
    pub ekyc_instruction_seed: Option<u64>,
    /// Debian's tesseract, run to read the birth date and name printed on identity documents
    /// (`MIMOTO_OCR_PROGRAM`, default `tesseract`; packages `tesseract-ocr tesseract-ocr-jpn`).
    /// When it cannot run, nothing is read and every eKYC case goes to a reviewer.
    pub ocr_program: String,
    /// OCR children at once (`MIMOTO_OCR_CONCURRENCY`; a burst of uploads queues).
    pub ocr_concurrency: usize,
    /// Share of automatically completed eKYC cases queued for a reviewer's look afterwards
    /// (`MIMOTO_EKYC_SAMPLE_RATE`, 0–1, default 0.1).
    pub ekyc_sample_rate: f64,
    /// Business days within which reviewers usually decide an eKYC application that went to
    /// review (`MIMOTO_EKYC_REVIEW_DAYS`, 1–30, default 3): the 申請 receipt mail and the
    /// result page tell the member.
    pub ekyc_review_days: u32,
    /// Presentation-attack score of a selfie above which the case goes to a reviewer
    /// (`MIMOTO_EKYC_SPOOF_THRESHOLD`, default `face::antispoof::SPOOF_THRESHOLD`); above 1 the
    /// signal is off (scores are at most 1).
    pub ekyc_spoof_threshold: f32,
    /// The proxies and load balancers in front of Mimoto (`MIMOTO_TRUSTED_PROXIES`): CIDRs or
    /// addresses, comma-separated (e.g. `10.0.0.0/8, 127.0.0.1`). Only when the socket peer is
    /// one of them is the client address read from `Forwarded` / `X-Forwarded-For`, taking the
    /// right-most hop that is not itself trusted. Empty (the default): the socket peer is the
    /// client, and forwarding headers are ignored.
    pub trusted_proxies: String,
    /// Which header the trusted proxies write the client address into
    /// (`MIMOTO_TRUSTED_PROXY_HEADER`): `x-forwarded-for` (default) or `forwarded` (RFC 7239).
    /// Only that one is read: a proxy that appends to one header passes the other through as
    /// the client sent it.
    pub trusted_proxy_header: ProxyHeader,
    /// Lets `serve` listen on a non-loopback address while the public URL is plain http
    /// (`MIMOTO_ALLOW_INSECURE_HTTP`); off, that is refused: passwords and session cookies
    /// would cross the network in clear.
    #[serde(deserialize_with = "lenient_bool")]
    pub allow_insecure_http: bool,
}

/// Accepts true/false, 1/0, yes/no, on/off (environment variables are often written as 1).
fn parse_bool(v: &figment::value::Value) -> Option<bool> {
    use figment::value::Value;
    match v {
        Value::Bool(_, b) => Some(*b),
        Value::Num(_, n) => n.to_u128().map(|n| n != 0),
        Value::String(_, s) => match s.trim().to_ascii_lowercase().as_str() {
            "1" | "true" | "yes" | "on" => Some(true),
            "0" | "false" | "no" | "off" | "" => Some(false),
            _ => None,
        },
        _ => None,
    }
}

fn lenient_bool<'de, D: serde::Deserializer<'de>>(d: D) -> Result<bool, D::Error> {
    let v = <figment::value::Value as Deserialize>::deserialize(d)?;
    parse_bool(&v).ok_or_else(|| serde::de::Error::custom("expected a boolean (true/false, 1/0)"))
}

fn lenient_opt_bool<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<bool>, D::Error> {
    let v = Option::<figment::value::Value>::deserialize(d)?;
    match v {
        None => Ok(None),
        Some(v) => {
            parse_bool(&v).map(Some).ok_or_else(|| serde::de::Error::custom("expected a boolean (true/false, 1/0)"))
        }
    }
}

impl Default for Config {
    fn default() -> Self {
        Config {
            listen: SocketAddr::from(([127, 0, 0, 1], 8080)),
            data_dir: PathBuf::from("./data"),
            database_url: None,
            smtp_url: None,
            mail_from: "Mimoto <no-reply@mimoto.localhost>".into(),
            smtp_utf8: false,
            public_url: None,
            demo: false,
            cookie_secure: None,
            log_format: "text".into(),
            secret_key: None,
            active_secret_key: None,
            retired_secret_keys: None,
            data_keys: None,
            active_data_key: None,
            mail_poll_ms: 1000,
            mail_lease_secs: 120,
            mail_concurrency: 4,
            limits: Limits::default(),
            ekyc_image_retention_days: 30,
            ekyc_abandoned_retention_days: 30,
            outbox_retention_days: 7,
            code_retention_days: 1,
            inquiry_retention_days: 365,
            models_dir: PathBuf::from("./models"),
            face_threshold: face::engine::DEFAULT_THRESHOLD,
            ekyc_auto_margin: 0.10,
            image_store_url: None,
            ekyc_instruction_seed: None,
            ocr_program: "tesseract".into(),
            ocr_concurrency: 1,
            ekyc_sample_rate: 0.1,
            ekyc_review_days: 3,
            ekyc_spoof_threshold: face::antispoof::SPOOF_THRESHOLD,
            trusted_proxies: String::new(),
            trusted_proxy_header: ProxyHeader::XForwardedFor,
            allow_insecure_http: false,
        }
    }
}

/// The forwarding header trusted proxies write (`MIMOTO_TRUSTED_PROXY_HEADER`); any other
/// value is refused when the configuration is read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ProxyHeader {
    /// `X-Forwarded-For: client, proxy1, …`.
    XForwardedFor,
    /// RFC 7239 `Forwarded: for=client, for=proxy1`.
    Forwarded,
}

impl Config {
    /// Defaults ← `file` (or `MIMOTO_CONFIG`, or `./mimoto.toml` when present) ← environment.
    pub fn load(file: Option<&Path>) -> Result<Self, ConfigError> {
        let mut figment = Figment::from(Serialized::defaults(Config::default()));
        let file = file
            .map(Path::to_path_buf)
            .or_else(|| std::env::var_os("MIMOTO_CONFIG").map(PathBuf::from))
            .or_else(|| Some(PathBuf::from("mimoto.toml")).filter(|p| p.exists()));
        if let Some(path) = file {
            if !path.exists() {
                return Err(ConfigError::Invalid(format!("config file {} not found", path.display())));
            }
            figment = figment.merge(Toml::file(path));
        }
        let config: Config = figment
            .merge(Env::prefixed("MIMOTO_").split("__").ignore(&["config", "test_database_url", "bin"]))
            .extract()
            .map_err(Box::new)?;
        config.validate()?;
        Ok(config)
    }

    pub fn validate(&self) -> Result<(), ConfigError> {
        if let Some(url) = &self.public_url {
            if !(url.starts_with("http://") || url.starts_with("https://")) {
                return Err(ConfigError::Invalid("public_url must start with http:// or https://".into()));
            }
        }
        if self.ekyc_spoof_threshold.is_nan() || self.ekyc_spoof_threshold <= 0.0 {
            return Err(ConfigError::Invalid("ekyc_spoof_threshold must be above 0".into()));
        }
        if !(0.0..=1.0).contains(&self.ekyc_sample_rate) {
            return Err(ConfigError::Invalid("ekyc_sample_rate must be between 0 and 1".into()));
        }
        if !(1..=30).contains(&self.ekyc_review_days) {
            return Err(ConfigError::Invalid("ekyc_review_days must be between 1 and 30".into()));
        }
        if !(1..=32).contains(&self.mail_concurrency) {
            return Err(ConfigError::Invalid("mail_concurrency must be between 1 and 32".into()));
        }
        if self.mail_lease_secs == 0 || self.mail_lease_secs > 86_400 {
            return Err(ConfigError::Invalid("mail_lease_secs must be between 1 and 86400".into()));
        }
        if self.ocr_concurrency == 0 || self.ocr_concurrency > 64 {
            return Err(ConfigError::Invalid("ocr_concurrency must be between 1 and 64".into()));
        }
        if !(0.0..=1.0).contains(&self.ekyc_auto_margin) {
            return Err(ConfigError::Invalid("ekyc_auto_margin must be between 0 and 1".into()));
        }
        if self.ekyc_instruction_seed.is_some() && (self.cookie_secure() || self.public_url().starts_with("https://")) {
            return Err(ConfigError::Invalid("ekyc_instruction_seed is for tests only and makes the liveness instruction predictable; it is refused with secure cookies or an https public URL".into()));
        }
        self.trusted_proxies()?;
        if self.demo && !self.is_local() {
            return Err(ConfigError::Invalid("demo mode publishes every mail (and its one-time password) at /dev/mail; it is refused with an https public URL or a non-loopback listen address".into()));
        }
        if !matches!(self.log_format.as_str(), "text" | "json") {
            return Err(ConfigError::Invalid("log_format must be text or json".into()));
        }
        for (name, days) in self.retention_days() {
            if !(0..=MAX_RETENTION_DAYS).contains(&days) {
                return Err(ConfigError::Invalid(format!("{name} must be between 0 and {MAX_RETENTION_DAYS} days")));
            }
        }
        Ok(())
    }

    /// Every retention period, by setting name, in days.
    pub fn retention_days(&self) -> [(&'static str, i64); 5] {
        [
            ("ekyc_image_retention_days", self.ekyc_image_retention_days),
            ("ekyc_abandoned_retention_days", self.ekyc_abandoned_retention_days),
            ("outbox_retention_days", self.outbox_retention_days),
            ("code_retention_days", self.code_retention_days),
            ("inquiry_retention_days", self.inquiry_retention_days),
        ]
    }

    pub fn database_url(&self) -> String {
        self.database_url.clone().unwrap_or_else(|| format!("sqlite://{}", self.data_dir.join("mimoto.db").display()))
    }

    pub fn public_url(&self) -> String {
        self.public_url.clone().unwrap_or_else(|| format!("http://{}", self.listen)).trim_end_matches('/').to_string()
    }

    pub fn cookie_secure(&self) -> bool {
        self.cookie_secure.unwrap_or_else(|| self.public_url().starts_with("https://"))
    }

    /// Only this machine can reach the server, over plain http: development and the demo.
    /// Anything else is a deployment, where keys must be configured and the demo is refused.
    pub fn is_local(&self) -> bool {
        self.listen.ip().is_loopback() && !self.public_url().starts_with("https://")
    }

    /// What `serve` checks before it listens: a server reachable from the network with a
    /// plain-http public URL needs `allow_insecure_http`.
    pub fn check_serve(&self) -> Result<(), ConfigError> {
        if !self.listen.ip().is_loopback() && !self.public_url().starts_with("https://") && !self.allow_insecure_http {
            return Err(ConfigError::Invalid(format!(
                "refusing to serve on {} with the plain-http public URL {}: put a TLS proxy in front and set MIMOTO_PUBLIC_URL=https://…, or set MIMOTO_ALLOW_INSECURE_HTTP=1 for a closed test network",
                self.listen,
                self.public_url()
            )));
        }
        Ok(())
    }

    /// `trusted_proxies` parsed: a bare address is a one-address network.
    pub fn trusted_proxies(&self) -> Result<Vec<ipnet::IpNet>, ConfigError> {
        self.trusted_proxies
            .split(',')
            .map(str::trim)
            .filter(|p| !p.is_empty())
            .map(|p| {
                p.parse::<ipnet::IpNet>()
                    .or_else(|_| p.parse::<std::net::IpAddr>().map(ipnet::IpNet::from))
                    .map(|n| n.trunc())
                    .map_err(|_| ConfigError::Invalid(format!("trusted_proxies: {p:?} is not an address or CIDR")))
            })
            .collect()
    }

    pub fn outbox_dir(&self) -> PathBuf {
        self.data_dir.join("outbox")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_just_work() {
        let c = Config::default();
        assert_eq!(c.listen.to_string(), "127.0.0.1:8080");
        assert_eq!(c.database_url(), "sqlite://./data/mimoto.db");
        assert_eq!(c.public_url(), "http://127.0.0.1:8080");
        assert!(!c.cookie_secure());
        let https = Config { public_url: Some("https://app.example.jp/".into()), ..Config::default() };
        assert!(https.cookie_secure());
        assert_eq!(https.public_url(), "https://app.example.jp");
    }

    #[test]
    #[allow(clippy::result_large_err)] // figment's Jail dictates the closure's error type
    fn environment_overrides_file() {
        figment::Jail::expect_with(|jail| {
            jail.create_file(
                "m.toml",
                "listen = \"127.0.0.1:9000\"\ndemo = true\n[limits.login_per_ip]\nmax = 3\nwindow_secs = 60\n",
            )?;
            jail.set_env("MIMOTO_LISTEN", "127.0.0.1:9100");
            jail.set_env("MIMOTO_DATA_DIR", "/tmp/x");
            jail.set_env("MIMOTO_COOKIE_SECURE", "1");
            let c = Config::load(Some(Path::new("m.toml"))).map_err(|e| e.to_string())?;
            assert_eq!(c.listen.to_string(), "127.0.0.1:9100");
            assert!(c.demo);
            assert_eq!(c.cookie_secure, Some(true));
            assert_eq!(c.limits.login_per_ip, Limit::new(3, 60));
            assert_eq!(c.limits.login_per_account_client, Limits::default().login_per_account_client);
            assert_eq!(c.database_url(), "sqlite:///tmp/x/mimoto.db");
            Ok(())
        });
    }

    #[test]
    #[allow(clippy::result_large_err)] // figment's Jail dictates the closure's error type
    fn retention_periods_are_configurable_and_nonsense_is_refused() {
        let d = Config::default();
        assert_eq!(
            d.retention_days().map(|(_, days)| days),
            [30, 30, 7, 1, 365],
            "images after a decision, abandoned eKYC, sent mail, dead codes, closed inquiries"
        );
        figment::Jail::expect_with(|jail| {
            jail.set_env("MIMOTO_EKYC_ABANDONED_RETENTION_DAYS", "14");
            jail.set_env("MIMOTO_OUTBOX_RETENTION_DAYS", "0");
            jail.set_env("MIMOTO_CODE_RETENTION_DAYS", "2");
            jail.set_env("MIMOTO_INQUIRY_RETENTION_DAYS", "730");
            let c = Config::load(None).map_err(|e| e.to_string())?;
            assert_eq!((c.ekyc_abandoned_retention_days, c.outbox_retention_days, c.code_retention_days), (14, 0, 2));
            assert_eq!(c.inquiry_retention_days, 730);
            Ok(())
        });
        for bad in [-1, MAX_RETENTION_DAYS + 1, i64::MAX] {
            let c = Config { outbox_retention_days: bad, ..Config::default() };
            assert!(c.validate().is_err(), "{bad}");
            let c = Config { ekyc_image_retention_days: bad, ..Config::default() };
            assert!(c.validate().is_err(), "{bad}");
        }
    }

    #[test]
    fn the_demo_is_refused_where_others_could_read_its_mail() {
        let demo = Config { demo: true, ..Config::default() };
        assert!(demo.validate().is_ok(), "loopback and http: the demo");
        let https = Config { public_url: Some("https://app.example.jp".into()), ..demo.clone() };
        assert!(https.validate().is_err());
        let open = Config { listen: SocketAddr::from(([0, 0, 0, 0], 8080)), ..demo.clone() };
        assert!(open.validate().is_err());
        let v6 = Config { listen: "[::]:8080".parse().unwrap(), ..demo };
        assert!(v6.validate().is_err());
    }

    #[test]
    fn serving_the_network_over_plain_http_needs_an_explicit_yes() {
        assert!(Config::default().check_serve().is_ok());
        let open = Config { listen: SocketAddr::from(([0, 0, 0, 0], 8080)), ..Config::default() };
        assert!(open.check_serve().is_err());
        let behind_tls = Config { public_url: Some("https://app.example.jp".into()), ..open.clone() };
        assert!(behind_tls.check_serve().is_ok());
        let allowed = Config { allow_insecure_http: true, ..open };
        assert!(allowed.check_serve().is_ok());
    }

    #[test]
    fn the_proxy_header_is_one_of_two_names() {
        let read = |value: &str| {
            figment::Figment::from(Serialized::defaults(Config::default()))
                .merge(("trusted_proxy_header", value))
                .extract::<Config>()
                .map(|c| c.trusted_proxy_header)
                .ok()
        };
        assert_eq!(read("forwarded"), Some(ProxyHeader::Forwarded));
        assert_eq!(read("x-forwarded-for"), Some(ProxyHeader::XForwardedFor));
        assert_eq!(read("x-real-ip"), None, "a header no proxy of ours writes is refused at start");
    }

    #[test]
    fn trusted_proxies_are_cidrs_or_addresses() {
        let c = Config { trusted_proxies: " 10.0.0.0/8, 127.0.0.1 ,fd00::/8".into(), ..Config::default() };
        let nets: Vec<String> = c.trusted_proxies().unwrap().iter().map(|n| n.to_string()).collect();
        assert_eq!(nets, ["10.0.0.0/8", "127.0.0.1/32", "fd00::/8"]);
        assert!(Config::default().trusted_proxies().unwrap().is_empty());
        let bad = Config { trusted_proxies: "10.0.0.0/33".into(), ..Config::default() };
        assert!(bad.validate().is_err());
        let bad = Config { trusted_proxies: "proxy.internal".into(), ..Config::default() };
        assert!(bad.validate().is_err());
    }
}
