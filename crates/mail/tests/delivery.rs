//! End-to-end delivery: the file outbox and a real SMTP sink on loopback.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a failure with a message

use std::net::TcpListener;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use domain::locale::Locale;
use mail::{list_outbox, parse_eml, render, MailConfig, MailError, Mailer, Template};
use mailin_embedded::{response, Handler, Response, Server, SslConfig};

const FROM: &str = "Mimoto <no-reply@mimoto.localhost>";

fn registration(code: &str) -> Template {
    Template::RegistrationCode { code: code.into(), org_name: "ミモト健康保険組合".into(), valid_minutes: 10 }
}

/// A mail that carries its outbox id keeps one `Message-ID` however often it is sent, so a
/// receiver can drop a second copy; one without gets a fresh id each time.
#[tokio::test]
async fn a_mail_with_an_id_keeps_its_message_id() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("outbox");
    let mailer = Mailer::new(&MailConfig { from: FROM.into(), smtp_url: None, outbox_dir: dir.clone() }).unwrap();
    let mut mail = render(&registration("111111"), Locale::Ja, "taro@example.com").unwrap();
    mail.id = Some("0b5e6c1a-3f7d-4b7e-9a51-2f0c5d1e8a90".into());
    mailer.send(&mail).await.unwrap();
    mailer.send(&mail).await.unwrap();
    mail.id = None;
    mailer.send(&mail).await.unwrap();
    mailer.send(&mail).await.unwrap();
    let mut ids: Vec<String> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| {
            let raw = String::from_utf8(std::fs::read(e.unwrap().path()).unwrap()).unwrap();
            let line = raw.lines().find(|l| l.starts_with("Message-ID: ")).unwrap().to_string();
            line
        })
        .collect();
    ids.sort();
    let stable = "Message-ID: <0b5e6c1a-3f7d-4b7e-9a51-2f0c5d1e8a90@mimoto.localhost>";
    assert_eq!(ids.iter().filter(|l| *l == stable).count(), 2, "{ids:?}");
    ids.dedup();
    assert_eq!(ids.len(), 3, "mails without an id get a fresh Message-ID each: {ids:?}");
}

#[tokio::test]
async fn outbox_roundtrip_newest_first() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("outbox"); // created by Mailer::new
    let mailer = Mailer::new(&MailConfig { from: FROM.into(), smtp_url: None, outbox_dir: dir.clone() }).unwrap();
    assert!(mailer.uses_outbox());
    assert!(dir.is_dir());

    let first = render(&registration("111111"), Locale::Ja, "taro@example.com").unwrap();
    let second = render(
        &Template::PasswordResetCode { code: "222222".into(), valid_minutes: 10 },
        Locale::En,
        "Hanako <hanako@example.com>",
    )
    .unwrap();
    mailer.send(&first).await.unwrap();
    mailer.clone().send(&second).await.unwrap();

    // Only the two finished files, no temp leftovers.
    let names: Vec<String> =
        std::fs::read_dir(&dir).unwrap().map(|e| e.unwrap().file_name().into_string().unwrap()).collect();
    assert_eq!(names.len(), 2, "{names:?}");
    for name in &names {
        let (ts, rest) = name.split_once('-').unwrap();
        assert_eq!(ts.len(), "20250101T000000.000000Z".len(), "{name}");
        assert!(ts.ends_with('Z') && rest.ends_with(".eml"), "{name}");
        let bytes = std::fs::read(dir.join(name)).unwrap();
        assert!(parse_eml(name, &bytes).is_some(), "{name} does not parse");
        let raw = String::from_utf8(bytes).unwrap();
        assert!(raw.is_ascii(), "headers and body must be 7-bit encoded:\n{raw}");
        assert!(raw.contains("\r\nMessage-ID: <"), "{raw}");
        assert!(raw.contains("@mimoto.localhost>"), "{raw}");
        assert!(raw.contains("\r\nDate: "), "{raw}");
        assert!(raw.contains("Content-Type: text/plain; charset=utf-8"), "{raw}");
        assert!(
            raw.contains("\r\nSubject: ") && raw.starts_with("From: Mimoto <no-reply@mimoto.localhost>\r\n"),
            "{raw}"
        );
    }

    let entries = list_outbox(&dir, 10).unwrap();
    assert_eq!(entries.len(), 2);
    let (newest, oldest) = (&entries[0], &entries[1]);
    assert!(newest.file_name > oldest.file_name);

    assert_eq!(newest.to, "hanako@example.com");
    assert_eq!(newest.subject, second.subject);
    assert_eq!(newest.text, second.text);
    assert!(newest.text.lines().any(|l| l == "One-time password: 222222"));

    assert_eq!(oldest.to, "taro@example.com");
    assert_eq!(oldest.subject, "【Mimoto】ワンタイムパスワードのお知らせ");
    assert_eq!(oldest.text, first.text);
    assert!(oldest.text.contains("ミモト健康保険組合"));
    assert!(oldest.text.lines().any(|l| l == "ワンタイムパスワード: 111111"));
    assert!(!oldest.date.is_empty());

    let limited = list_outbox(&dir, 1).unwrap();
    assert_eq!(limited.len(), 1);
    assert_eq!(limited[0].file_name, newest.file_name);
}

#[tokio::test]
async fn bad_recipient_is_not_transient() {
    let tmp = tempfile::tempdir().unwrap();
    let mailer =
        Mailer::new(&MailConfig { from: FROM.into(), smtp_url: None, outbox_dir: tmp.path().to_path_buf() }).unwrap();
    let mail = mail::OutgoingMail { to: "nobody".into(), subject: "x".into(), text: "y\n".into(), id: None };
    let err = mailer.send(&mail).await.unwrap_err();
    assert!(matches!(err, MailError::Address(_)), "{err:?}");
    assert!(!err.is_transient());
    assert!(list_outbox(tmp.path(), 10).unwrap().is_empty());
}

#[derive(Debug, Clone, Default)]
struct Received {
    from: String,
    to: Vec<String>,
    data: Vec<u8>,
}

#[derive(Clone, Default)]
struct Sink {
    current: Received,
    done: Arc<Mutex<Vec<Received>>>,
    /// Reply to RCPT TO instead of 250.
    rcpt_reply: Option<Response>,
}

impl Handler for Sink {
    fn rcpt(&mut self, _to: &str) -> Response {
        self.rcpt_reply.clone().unwrap_or(response::OK)
    }

    fn data_start(&mut self, _domain: &str, from: &str, _is8bit: bool, to: &[String]) -> Response {
        self.current = Received { from: from.to_owned(), to: to.to_vec(), data: Vec::new() };
        response::OK
    }

    fn data(&mut self, buf: &[u8]) -> std::io::Result<()> {
        self.current.data.extend_from_slice(buf);
        Ok(())
    }

    fn data_end(&mut self) -> Response {
        self.done.lock().unwrap().push(std::mem::take(&mut self.current));
        response::OK
    }
}

/// Starts an SMTP sink on a free loopback port; returns the port and the
/// received messages.
fn start_sink(rcpt_reply: Option<Response>) -> (u16, Arc<Mutex<Vec<Received>>>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let sink = Sink { rcpt_reply, ..Sink::default() };
    let done = Arc::clone(&sink.done);
    let mut server = Server::new(sink);
    server.with_name("sink.localhost").with_ssl(SslConfig::None).unwrap().with_tcp_listener(listener);
    std::thread::spawn(move || {
        if let Err(e) = server.serve() {
            eprintln!("smtp sink stopped: {e}");
        }
    });
    (port, done)
}

fn smtp_mailer(port: u16) -> Mailer {
    let mailer = Mailer::new(&MailConfig {
        from: FROM.into(),
        smtp_url: Some(format!("smtp://127.0.0.1:{port}")),
        outbox_dir: std::env::temp_dir().join("mimoto-mail-test-unused"),
    })
    .unwrap();
    assert!(!mailer.uses_outbox());
    mailer
}

#[tokio::test]
async fn smtp_delivers_to_a_real_server() {
    let (port, received) = start_sink(None);
    let mailer = smtp_mailer(port);

    let mail = render(&registration("987654"), Locale::Ja, "Taro <taro@example.com>").unwrap();
    tokio::time::timeout(Duration::from_secs(20), mailer.send(&mail)).await.unwrap().unwrap();

    let got = received.lock().unwrap().clone();
    assert_eq!(got.len(), 1);
    let msg = &got[0];
    assert_eq!(msg.from, "no-reply@mimoto.localhost");
    assert_eq!(msg.to, vec!["taro@example.com".to_owned()]);

    let entry = parse_eml("smtp", &msg.data).expect("received DATA parses");
    assert_eq!(entry.to, "taro@example.com");
    assert_eq!(entry.subject, "【Mimoto】ワンタイムパスワードのお知らせ");
    assert!(entry.text.lines().any(|l| l == "ワンタイムパスワード: 987654"), "{}", entry.text);
    assert_eq!(entry.text, mail.text);
}

#[tokio::test]
async fn smtp_5xx_is_permanent() {
    let (port, received) = start_sink(Some(response::NO_MAILBOX));
    let mailer = smtp_mailer(port);
    let mail = render(&registration("987654"), Locale::En, "taro@example.com").unwrap();
    let err = tokio::time::timeout(Duration::from_secs(20), mailer.send(&mail)).await.unwrap().unwrap_err();
    assert!(matches!(err, MailError::SmtpPermanent(_)), "{err:?}");
    assert!(err.to_string().contains("550"), "{err}");
    assert!(!err.is_transient());
    assert!(received.lock().unwrap().is_empty());
}

#[tokio::test]
async fn smtp_4xx_is_transient() {
    let (port, received) = start_sink(Some(response::INTERNAL_ERROR));
    let mailer = smtp_mailer(port);
    let mail = render(&registration("987654"), Locale::En, "taro@example.com").unwrap();
    let err = tokio::time::timeout(Duration::from_secs(20), mailer.send(&mail)).await.unwrap().unwrap_err();
    assert!(matches!(err, MailError::Smtp(_)), "{err:?}");
    assert!(err.to_string().contains("451"), "{err}");
    assert!(err.is_transient());
    assert!(received.lock().unwrap().is_empty());
}

#[tokio::test]
async fn smtp_closed_port_is_transient() {
    let port = {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap().port()
    }; // dropped: nothing listens there any more
    let mailer = smtp_mailer(port);
    let mail = render(&registration("987654"), Locale::Ja, "taro@example.com").unwrap();
    let err = tokio::time::timeout(Duration::from_secs(20), mailer.send(&mail)).await.unwrap().unwrap_err();
    assert!(matches!(err, MailError::Smtp(_)), "{err:?}");
    assert!(err.is_transient(), "{err:?}");
}
