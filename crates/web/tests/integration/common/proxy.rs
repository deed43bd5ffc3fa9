//! A loopback TCP proxy in front of PostgreSQL that a test can cut: while cut, every open
//! connection is closed and new ones are closed as soon as they arrive — what a database
//! restart or a network cut looks like to the server.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use tokio::net::{TcpListener, TcpStream};
use tokio::task::AbortHandle;

struct Shared {
    up: AtomicBool,
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
        let shared = Arc::new(Shared { up: AtomicBool::new(true), connections: Mutex::new(Vec::new()) });
        let s = shared.clone();
        let accept = tokio::spawn(async move {
            while let Ok((mut inbound, _)) = listener.accept().await {
                if !s.up.load(Ordering::SeqCst) {
                    drop(inbound);
                    continue;
                }
                let task = tokio::spawn(async move {
                    if let Ok(mut outbound) = TcpStream::connect(target).await {
                        let _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound).await;
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

    pub fn restore(&self) {
        self.shared.up.store(true, Ordering::SeqCst);
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.accept.abort();
        self.cut();
    }
}
