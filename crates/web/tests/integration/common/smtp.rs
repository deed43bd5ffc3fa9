//! An SMTP sink on loopback that a fault test can stop, start again on the same port, and hold
//! (it stops answering `MAIL FROM` until released), recording every mail it accepted.
//!
//! Self-contained (tokio and the standard library only) so the CLI's tests include it too
//! (`#[path]`): it decodes what it receives itself — the `Message-ID`, the recipients and the
//! text (7bit, quoted-printable or base64, as lettre writes them).

use std::sync::{Arc, Mutex};

use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio::task::AbortHandle;

/// One accepted mail: the envelope recipients and the message as received (dots unstuffed).
#[derive(Debug, Clone, Default)]
pub struct Mail {
    pub to: Vec<String>,
    pub data: Vec<u8>,
}

impl Mail {
    /// The value of the first header `name` (unfolded), if any.
    pub fn header(&self, name: &str) -> Option<String> {
        let text = String::from_utf8_lossy(&self.data);
        let head = text.split("\r\n\r\n").next().unwrap_or_default();
        let mut value: Option<String> = None;
        for line in head.split("\r\n") {
            if let Some(v) = value.as_mut() {
                if line.starts_with([' ', '\t']) {
                    v.push_str(line.trim_start());
                    continue;
                }
                break;
            }
            if let Some((n, v)) = line.split_once(':') {
                if n.eq_ignore_ascii_case(name) {
                    value = Some(v.trim().to_string());
                }
            }
        }
        value
    }

    pub fn message_id(&self) -> String {
        self.header("Message-ID").unwrap_or_default()
    }

    /// The body, decoded.
    pub fn text(&self) -> String {
        let raw = String::from_utf8_lossy(&self.data).into_owned();
        let body = raw.split_once("\r\n\r\n").map_or("", |(_, b)| b);
        let encoding = self.header("Content-Transfer-Encoding").unwrap_or_default().to_ascii_lowercase();
        let bytes = match encoding.as_str() {
            "base64" => base64_decode(body),
            "quoted-printable" => quoted_printable_decode(body),
            _ => body.as_bytes().to_vec(),
        };
        String::from_utf8_lossy(&bytes).replace("\r\n", "\n")
    }

    /// The one-time password in the text, if any.
    pub fn code(&self) -> Option<String> {
        self.text().lines().find_map(|l| {
            let rest = l.strip_prefix("ワンタイムパスワード: ").or_else(|| l.strip_prefix("One-time password: "))?;
            let code = rest.trim();
            (code.len() == 6 && code.bytes().all(|b| b.is_ascii_digit())).then(|| code.to_string())
        })
    }

    pub fn is_to(&self, address: &str) -> bool {
        self.to.iter().any(|t| t.eq_ignore_ascii_case(address))
    }
}

fn base64_decode(text: &str) -> Vec<u8> {
    let mut out = Vec::new();
    let (mut acc, mut bits) = (0u32, 0u32);
    for c in text.bytes() {
        let v = match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'+' => 62,
            b'/' => 63,
            _ => continue,
        };
        acc = (acc << 6) | u32::from(v);
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
            acc &= (1 << bits) - 1;
        }
    }
    out
}

fn quoted_printable_decode(text: &str) -> Vec<u8> {
    let bytes = text.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'=' {
            if bytes.get(i + 1) == Some(&b'\r') && bytes.get(i + 2) == Some(&b'\n') {
                i += 3;
                continue;
            }
            let hex = std::str::from_utf8(bytes.get(i + 1..i + 3).unwrap_or_default()).unwrap_or_default();
            if let Ok(b) = u8::from_str_radix(hex, 16) {
                out.push(b);
                i += 3;
                continue;
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    out
}

struct Shared {
    mails: Mutex<Vec<Mail>>,
    connections: Mutex<Vec<AbortHandle>>,
    /// `MAIL FROM` is answered only while fewer mails than this were accepted (`usize::MAX`:
    /// always); a client waits for its answer otherwise.
    admit: watch::Sender<usize>,
}

impl Shared {
    fn count(&self) -> usize {
        self.mails.lock().expect("mails").len()
    }
}

pub struct SmtpSink {
    pub port: u16,
    shared: Arc<Shared>,
    accept: Option<AbortHandle>,
}

impl SmtpSink {
    /// A sink on a free loopback port, up.
    pub async fn start() -> SmtpSink {
        Self::start_on(0).await
    }

    /// A sink on `port` (0: a free one), up.
    pub async fn start_on(port: u16) -> SmtpSink {
        let shared = Arc::new(Shared {
            mails: Mutex::new(Vec::new()),
            connections: Mutex::new(Vec::new()),
            admit: watch::channel(usize::MAX).0,
        });
        let mut sink = SmtpSink { port, shared, accept: None };
        sink.up().await;
        sink
    }

    /// Stops the server: the port is closed (connections refused) and every open connection,
    /// e.g. one a client keeps in its pool, is dropped. Mails received so far are kept.
    pub fn stop(&mut self) {
        if let Some(a) = self.accept.take() {
            a.abort();
        }
        for c in self.shared.connections.lock().expect("connections").drain(..) {
            c.abort();
        }
    }

    /// Starts the server again on the same port.
    pub async fn up(&mut self) {
        let listener = bind(self.port).await;
        self.port = listener.local_addr().expect("addr").port();
        let shared = self.shared.clone();
        self.accept = Some(
            tokio::spawn(async move {
                while let Ok((stream, _)) = listener.accept().await {
                    let s = shared.clone();
                    let task = tokio::spawn(async move {
                        let _ = session(stream, &s).await;
                    });
                    shared.connections.lock().expect("connections").push(task.abort_handle());
                }
            })
            .abort_handle(),
        );
    }

    /// While held, a client's `MAIL FROM` gets no answer (the client waits, as on a stuck
    /// relay); nothing is accepted until [`SmtpSink::hold`]`(false)`.
    pub fn hold(&self, held: bool) {
        self.shared.admit.send_replace(if held { 0 } else { usize::MAX });
    }

    /// Accepts `n` more mails, then holds.
    pub fn hold_after(&self, n: usize) {
        self.shared.admit.send_replace(self.shared.count() + n);
    }

    /// How many clients are waiting on a held `MAIL FROM` now.
    pub fn waiting(&self) -> usize {
        self.shared.admit.receiver_count()
    }

    pub fn mails(&self) -> Vec<Mail> {
        self.shared.mails.lock().expect("mails").clone()
    }

    pub fn mails_to(&self, address: &str) -> Vec<Mail> {
        self.mails().into_iter().filter(|m| m.is_to(address)).collect()
    }

    /// Message-IDs received more than once.
    pub fn duplicates(&self) -> Vec<String> {
        let mut ids: Vec<String> = self.mails().iter().map(Mail::message_id).collect();
        ids.sort();
        let mut dups: Vec<String> = ids.windows(2).filter(|w| w[0] == w[1]).map(|w| w[0].clone()).collect();
        dups.dedup();
        dups
    }
}

impl Drop for SmtpSink {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Binds `port` on loopback, retrying briefly (a port just closed may linger).
async fn bind(port: u16) -> TcpListener {
    let mut tries = 0;
    loop {
        match TcpListener::bind(("127.0.0.1", port)).await {
            Ok(l) => return l,
            Err(_) if tries < 50 => {
                tries += 1;
                tokio::time::sleep(std::time::Duration::from_millis(100)).await;
            }
            Err(e) => panic!("bind the SMTP sink on port {port}: {e}"),
        }
    }
}

/// One SMTP session (RFC 5321, the commands lettre uses, no extensions).
async fn session(stream: TcpStream, shared: &Shared) -> std::io::Result<()> {
    let (read, mut write) = stream.into_split();
    let mut read = BufReader::new(read);
    write.write_all(b"220 sink.localhost ESMTP\r\n").await?;
    let mut to = Vec::new();
    let mut line = Vec::new();
    loop {
        line.clear();
        if read.read_until(b'\n', &mut line).await? == 0 {
            return Ok(());
        }
        let command = String::from_utf8_lossy(&line).trim_end().to_string();
        let verb = command.split([' ', ':']).next().unwrap_or_default().to_ascii_uppercase();
        let reply: &[u8] = match verb.as_str() {
            "EHLO" | "HELO" => b"250 sink.localhost\r\n",
            "MAIL" => {
                let mut admit = shared.admit.subscribe();
                let _ = admit.wait_for(|limit| shared.count() < *limit).await;
                to.clear();
                b"250 2.1.0 OK\r\n"
            }
            "RCPT" => {
                let address = command.split_once(':').map_or("", |(_, a)| a).trim();
                to.push(address.trim_start_matches('<').trim_end_matches('>').to_string());
                b"250 2.1.5 OK\r\n"
            }
            "DATA" => {
                write.write_all(b"354 go ahead\r\n").await?;
                let mut data = Vec::new();
                loop {
                    line.clear();
                    if read.read_until(b'\n', &mut line).await? == 0 {
                        return Ok(());
                    }
                    if line == b".\r\n" || line == b".\n" {
                        break;
                    }
                    let unstuffed = if line.starts_with(b"..") { &line[1..] } else { &line[..] };
                    data.extend_from_slice(unstuffed);
                }
                shared.mails.lock().expect("mails").push(Mail { to: std::mem::take(&mut to), data });
                b"250 2.0.0 queued\r\n"
            }
            "RSET" => {
                to.clear();
                b"250 2.0.0 OK\r\n"
            }
            "NOOP" => b"250 2.0.0 OK\r\n",
            "QUIT" => {
                write.write_all(b"221 2.0.0 bye\r\n").await?;
                return Ok(());
            }
            _ => b"502 5.5.1 not implemented\r\n",
        };
        write.write_all(reply).await?;
    }
}
