//! Delivery: SMTP through lettre, or a file outbox.

use std::fmt;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use lettre::message::{header, Mailbox};
use lettre::transport::smtp::AsyncSmtpTransportBuilder;
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};
use time::OffsetDateTime;

use crate::{MailError, OutgoingMail};

/// How long one SMTP command may take before the send fails (transiently).
/// How long one SMTP command may take before the send fails.
pub const SMTP_TIMEOUT: Duration = Duration::from_secs(30);

/// Mailer configuration.
#[derive(Debug, Clone)]
pub struct MailConfig {
    /// The `From` mailbox, e.g. `Mimoto <no-reply@mimoto.localhost>`.
    pub from: String,
    /// SMTP server URL; `None` (or an empty string) writes mail to
    /// [`outbox_dir`](Self::outbox_dir) instead. See [`Mailer::new`] for the
    /// accepted forms.
    pub smtp_url: Option<String>,
    /// Directory of the file outbox (used only without `smtp_url`).
    pub outbox_dir: PathBuf,
}

/// Sends [`OutgoingMail`]s. Cheap to clone (an `Arc` inside); clones share the
/// SMTP connection pool.
#[derive(Clone)]
pub struct Mailer {
    inner: Arc<Inner>,
}

struct Inner {
    from: Mailbox,
    transport: Transport,
}

enum Transport {
    Smtp {
        /// Where we connect, for `Debug` (never the credentials).
        endpoint: String,
        builder: Box<AsyncSmtpTransportBuilder>,
        /// Built on first use: lettre's pool spawns a Tokio task when built,
        /// so it cannot be built in the (synchronous, maybe runtime-less)
        /// constructor.
        transport: OnceLock<AsyncSmtpTransport<Tokio1Executor>>,
    },
    Outbox {
        dir: PathBuf,
    },
}

impl fmt::Debug for Mailer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut d = f.debug_struct("Mailer");
        d.field("from", &self.inner.from.to_string());
        match &self.inner.transport {
            Transport::Smtp { endpoint, .. } => d.field("smtp", endpoint),
            Transport::Outbox { dir } => d.field("outbox_dir", dir),
        };
        d.finish()
    }
}

impl Mailer {
    /// Creates a mailer.
    ///
    /// With `smtp_url` set, mail goes over SMTP via lettre's
    /// [`AsyncSmtpTransport::from_url`]; the URL form picks the transport
    /// security:
    ///
    /// | URL | security | default port |
    /// |-----|----------|--------------|
    /// | `smtps://host[:port]` | implicit TLS (TLS from the first byte) — recommended | 465 |
    /// | `smtp://host[:port]?tls=required` | STARTTLS, required (fails if the server does not offer it) | 587 |
    /// | `smtp://host[:port]?tls=opportunistic` | STARTTLS if offered, else plain text (MITM-able) | 587 |
    /// | `smtp://host[:port]` | plain text, no TLS (local sinks / dev only) | 25 |
    ///
    /// Credentials go in the user-info part, `smtps://user:pass@host`
    /// (percent-encode special characters; they are decoded before use) and
    /// are used for SMTP AUTH. A path sets the EHLO name:
    /// `smtp://host:2525/mimoto.example.jp`. TLS certificates are checked
    /// against the bundled Mozilla roots (rustls + webpki-roots). Each SMTP
    /// command times out after 30 s. Any other scheme or `tls` value is a
    /// [`MailError::Config`].
    ///
    /// Without `smtp_url` (or with an empty one), every mail is written to
    /// `outbox_dir` (created if missing) as
    /// `<YYYYMMDDTHHMMSS.ffffffZ>-<uuid>.eml`; see [`crate::list_outbox`].
    ///
    /// Does not connect (and needs no runtime); the first
    /// [`send`](Self::send) does, and `send` must run inside a Tokio runtime.
    pub fn new(cfg: &MailConfig) -> Result<Self, MailError> {
        let from: Mailbox =
            cfg.from.parse().map_err(|e| MailError::Config(format!("invalid from address {:?}: {e}", cfg.from)))?;

        let transport = match cfg.smtp_url.as_deref().map(str::trim).filter(|u| !u.is_empty()) {
            Some(url) => {
                let builder = AsyncSmtpTransport::<Tokio1Executor>::from_url(url)
                    .map_err(|e| MailError::Config(format!("smtp_url: {e}")))?
                    .timeout(Some(SMTP_TIMEOUT));
                Transport::Smtp { endpoint: redact_url(url), builder: Box::new(builder), transport: OnceLock::new() }
            }
            None => {
                std::fs::create_dir_all(&cfg.outbox_dir).map_err(|e| {
                    MailError::Config(format!("cannot create outbox dir {}: {e}", cfg.outbox_dir.display()))
                })?;
                Transport::Outbox { dir: cfg.outbox_dir.clone() }
            }
        };

        Ok(Mailer { inner: Arc::new(Inner { from, transport }) })
    }

    /// At most `n` SMTP connections at once (lettre's pool; its default is 10): as many as the
    /// mails the worker sends at once, so a node never holds more connections to the relay than
    /// it uses. Call before the first [`send`](Self::send) and before cloning; no effect on the
    /// file outbox.
    pub fn with_max_connections(mut self, n: u32) -> Self {
        if let Some(Inner { transport: Transport::Smtp { builder, transport, .. }, .. }) = Arc::get_mut(&mut self.inner)
        {
            if transport.get().is_none() {
                let pool = lettre::transport::smtp::PoolConfig::new().max_size(n.max(1));
                **builder = builder.as_ref().clone().pool_config(pool);
            }
        }
        self
    }

    /// Whether mail goes to the file outbox (no SMTP configured).
    pub fn uses_outbox(&self) -> bool {
        matches!(self.inner.transport, Transport::Outbox { .. })
    }

    /// Builds the RFC 5322 message (`From`, `To`, UTF-8 encoded `Subject`,
    /// `Date`, `Message-ID`, `MIME-Version`, `text/plain; charset=utf-8`
    /// body) and delivers it over SMTP or into the outbox.
    pub async fn send(&self, mail: &OutgoingMail) -> Result<(), MailError> {
        let message = self.build_message(mail)?;
        match &self.inner.transport {
            Transport::Smtp { builder, transport, .. } => {
                let transport = transport.get_or_init(|| builder.as_ref().clone().build());
                transport.send(message).await.map(|_| ()).map_err(|e| MailError::from_smtp(&e))
            }
            Transport::Outbox { dir } => {
                let dir = dir.clone();
                let bytes = message.formatted();
                tokio::task::spawn_blocking(move || write_outbox(&dir, &bytes))
                    .await
                    .map_err(std::io::Error::other)??;
                Ok(())
            }
        }
    }

    fn build_message(&self, mail: &OutgoingMail) -> Result<Message, MailError> {
        let to: Mailbox = mail.to.parse().map_err(|e| MailError::Address(format!("{:?}: {e}", mail.to)))?;
        let from = &self.inner.from;
        // Only the id's letters, digits, '-' and '.' go into the header (an RFC 5322 dot-atom).
        let local = match &mail.id {
            Some(id) => id.chars().filter(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '.')).collect(),
            None => String::new(),
        };
        let local = if local.is_empty() { uuid::Uuid::new_v4().to_string() } else { local };
        let message_id = format!("<{local}@{}>", from.email.domain());
        // CRLF on the wire; quoted-printable / base64 keep it as-is.
        let text = mail.text.replace("\r\n", "\n").replace('\n', "\r\n");
        Message::builder()
            .from(from.clone())
            .to(to)
            .subject(mail.subject.as_str())
            .date_now()
            .message_id(Some(message_id))
            .header(header::MIME_VERSION_1_0)
            .header(header::ContentType::TEXT_PLAIN)
            // A raw body (not a `SinglePart`, which appends an extra CRLF);
            // lettre picks 7bit, quoted-printable or base64.
            .body(text)
            .map_err(|e| MailError::Message(e.to_string()))
    }
}

/// `scheme://host:port/...` without user info or query, for logs.
fn redact_url(url: &str) -> String {
    let (scheme, rest) = url.split_once("://").unwrap_or(("", url));
    let rest = rest.rsplit_once('@').map_or(rest, |(_, host)| host);
    let rest = rest.split(['?', '#']).next().unwrap_or(rest);
    format!("{scheme}://{rest}")
}

/// Microseconds since the epoch of the last outbox file name handed out, so
/// that names stay strictly increasing within the process even for mails sent
/// in the same microsecond (or across a small clock step back).
static LAST_OUTBOX_MICROS: Mutex<i128> = Mutex::new(0);

// Outbox file names are an on-disk ordering of real sends (read by people and tools across
// processes), not a business time, so they take the wall clock; the mail's Date header comes
// from lettre (`date_now`). Passing a `Clock` through `Mailer::send` would change the API used
// by `app::jobs` and `web` for no gain.
#[allow(clippy::disallowed_methods)]
fn outbox_timestamp() -> Result<String, std::io::Error> {
    let now = OffsetDateTime::now_utc();
    let mut micros = now.unix_timestamp_nanos() / 1000;
    {
        let mut last = LAST_OUTBOX_MICROS.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        if micros <= *last {
            micros = *last + 1;
        }
        *last = micros;
    }
    let ts = OffsetDateTime::from_unix_timestamp_nanos(micros * 1000).unwrap_or(now);
    let format = time::macros::format_description!("[year][month][day]T[hour][minute][second].[subsecond digits:6]Z");
    ts.format(format).map_err(std::io::Error::other)
}

/// Writes `bytes` to `<dir>/<timestamp>-<uuid>.eml` via a hidden temp file
/// in the same directory and a rename, so readers never see a partial file.
fn write_outbox(dir: &Path, bytes: &[u8]) -> Result<PathBuf, std::io::Error> {
    std::fs::create_dir_all(dir)?;
    let id = uuid::Uuid::new_v4();
    let final_path = dir.join(format!("{}-{id}.eml", outbox_timestamp()?));
    let tmp_path = dir.join(format!(".{id}.eml.tmp"));

    let result = (|| {
        let mut file = std::fs::OpenOptions::new().write(true).create_new(true).open(&tmp_path)?;
        file.write_all(bytes)?;
        file.sync_all()?;
        drop(file);
        std::fs::rename(&tmp_path, &final_path)
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp_path);
    }
    result.map(|()| final_path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redacts_credentials_and_query() {
        assert_eq!(redact_url("smtps://u:p%40ss@mail.example.jp:465?x=1"), "smtps://mail.example.jp:465");
        assert_eq!(redact_url("smtp://127.0.0.1:2525"), "smtp://127.0.0.1:2525");
    }

    #[test]
    fn url_forms() {
        let cfg = |url: &str| MailConfig {
            from: "Mimoto <no-reply@mimoto.localhost>".into(),
            smtp_url: Some(url.into()),
            outbox_dir: PathBuf::from("/nonexistent/never-created"),
        };
        for ok in [
            "smtp://127.0.0.1:2525",
            "smtp://mail.example.jp?tls=required",
            "smtp://user:pa%3Ass@mail.example.jp:587?tls=opportunistic",
            "smtps://user:pass@mail.example.jp",
        ] {
            let m = Mailer::new(&cfg(ok)).unwrap_or_else(|e| panic!("{ok}: {e}"));
            assert!(!m.uses_outbox());
            assert!(!format!("{m:?}").contains("pass"));
        }
        for bad in ["http://mail.example.jp", "smtp://mail.example.jp?tls=maybe", "not a url"] {
            let err = Mailer::new(&cfg(bad)).unwrap_err();
            assert!(matches!(err, MailError::Config(_)), "{bad}: {err:?}");
            assert!(!err.is_transient());
        }
    }

    #[test]
    fn bad_from_is_a_config_error() {
        let err = Mailer::new(&MailConfig {
            from: "nobody".into(),
            smtp_url: Some("smtp://127.0.0.1:25".into()),
            outbox_dir: PathBuf::new(),
        })
        .unwrap_err();
        assert!(matches!(err, MailError::Config(_)), "{err:?}");
    }

    #[test]
    fn outbox_names_sort_in_send_order() {
        let names: Vec<String> = (0..200).map(|_| outbox_timestamp().unwrap()).collect();
        assert!(names.windows(2).all(|w| w[0] < w[1]));
        assert_eq!(names[0].len(), "20250101T000000.000000Z".len());
        assert!(names[0].ends_with('Z') && names[0].as_bytes()[8] == b'T');
    }
}
