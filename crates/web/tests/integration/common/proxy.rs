//! A loopback TCP proxy in front of PostgreSQL that a test can cut: while cut, every open
//! connection is closed and new ones are closed as soon as they arrive — what a database
//! restart or a network cut looks like to the server. It can also lose the answers to COMMITs:
//! the COMMIT reaches PostgreSQL, which commits, and the connection is closed before the
//! answer gets back — the server cannot tell whether its transaction happened.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use tokio::net::{TcpListener, TcpStream};
use tokio::task::AbortHandle;

struct Shared {
    up: AtomicBool,
    lose_commit_answers: AtomicBool,
    connections: Mutex<Vec<AbortHandle>>,
}

pub struct Proxy {
    pub port: u16,
    shared: Arc<Shared>,
    accept: AbortHandle,
}

/// The test database's address (`MIMOTO_TEST_DATABASE_URL`, `postgres://user@host:port/db`).
pub fn test_database_addr() -> SocketAddr {
    let url = store::testing::test_database_url();
    let rest = url.split_once("://").map_or(url.as_str(), |(_, r)| r);
    let authority = rest.split('/').next().unwrap_or_default();
    let host_port = authority.rsplit('@').next().unwrap_or_default();
    let (host, port) = host_port.split_once(':').unwrap_or((host_port, "5432"));
    let host = if host == "localhost" { "127.0.0.1" } else { host };
    format!("{host}:{port}").parse().expect("the test database on an IP address")
}

impl Proxy {
    /// A proxy on a free loopback port forwarding to `target`, up.
    pub async fn start(target: SocketAddr) -> Proxy {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind proxy");
        let port = listener.local_addr().expect("addr").port();
        let shared = Arc::new(Shared {
            up: AtomicBool::new(true),
            lose_commit_answers: AtomicBool::new(false),
            connections: Mutex::new(Vec::new()),
        });
        let s = shared.clone();
        let accept = tokio::spawn(async move {
            while let Ok((inbound, _)) = listener.accept().await {
                if !s.up.load(Ordering::SeqCst) {
                    drop(inbound);
                    continue;
                }
                let shared = s.clone();
                let task = tokio::spawn(async move {
                    if let Ok(outbound) = TcpStream::connect(target).await {
                        relay(inbound, outbound, &shared).await;
                    }
                });
                s.connections.lock().expect("connections").push(task.abort_handle());
            }
        })
        .abort_handle();
        Proxy { port, shared, accept }
    }

    /// Closes every connection and refuses new ones until [`Proxy::restore`].
    pub fn cut(&self) {
        self.shared.up.store(false, Ordering::SeqCst);
        for c in self.shared.connections.lock().expect("connections").drain(..) {
            c.abort();
        }
    }

    /// While on, a connection that sends a COMMIT is closed once PostgreSQL has had time to
    /// commit, and the answer is never relayed.
    pub fn lose_commit_answers(&self, on: bool) {
        self.shared.lose_commit_answers.store(on, Ordering::SeqCst);
    }

    pub fn restore(&self) {
        self.shared.up.store(true, Ordering::SeqCst);
    }
}

/// Relays both ways; see [`Proxy::lose_commit_answers`].
async fn relay(client: TcpStream, server: TcpStream, shared: &Shared) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let (mut client_read, mut client_write) = client.into_split();
    let (mut server_read, mut server_write) = server.into_split();
    let swallow = Arc::new(AtomicBool::new(false));
    let swallowing = swallow.clone();
    let answers = async move {
        let mut buf = vec![0u8; 16 * 1024];
        loop {
            let n = match server_read.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(n) => n,
            };
            if swallowing.load(Ordering::SeqCst) || client_write.write_all(&buf[..n]).await.is_err() {
                return;
            }
        }
    };
    let requests = async move {
        let mut buf = vec![0u8; 16 * 1024];
        loop {
            let n = match client_read.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(n) => n,
            };
            // sqlx ends a transaction with the statement `COMMIT` (NUL-terminated on the wire).
            let commit = buf[..n].windows(7).any(|w| w == b"COMMIT\0");
            if commit && shared.lose_commit_answers.load(Ordering::SeqCst) {
                swallow.store(true, Ordering::SeqCst);
                let _ = server_write.write_all(&buf[..n]).await;
                tokio::time::sleep(std::time::Duration::from_millis(200)).await;
                return;
            }
            if server_write.write_all(&buf[..n]).await.is_err() {
                return;
            }
        }
    };
    // Either way ending closes both connections.
    tokio::select! {
        () = answers => {}
        () = requests => {}
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.accept.abort();
        self.cut();
    }
}
