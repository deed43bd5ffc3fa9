//! Memory under a burst of password work (`make bench`): the real router on a loopback port,
//! 8 clients for 30 s each walking registration up to the account step (an argon2id hash of
//! 19 MiB) and a login (an argon2id verification), as issue #14 measured from outside. Prints
//! the process's resident memory before, its peak during the burst, and after; the server and
//! the clients share this process, so the figures are an upper bound for the server alone.
//!
//! ```sh
//! cargo bench -p mimoto-web --bench login_burst
//! ```
//! Knobs: `BURST_CLIENTS` (8), `BURST_SECS` (30).

#![allow(clippy::unwrap_used, clippy::expect_used)] // a benchmark: a panic is a failed run

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use app::config::{Config, Limit};
use app::App;
use serde_json::json;

/// (resident, peak resident) of this process in MiB, from /proc/self/status.
fn memory_mib() -> (f64, f64) {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let field = |name: &str| {
        status
            .lines()
            .find(|l| l.starts_with(name))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|kb| kb.parse::<f64>().ok())
            .map_or(0.0, |kb| kb / 1024.0)
    };
    (field("VmRSS:"), field("VmHWM:"))
}

fn env_or(name: &str, default: u64) -> u64 {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

async fn post(client: &reqwest::Client, base: &str, path: &str, body: serde_json::Value) -> (u16, serde_json::Value) {
    match client.post(format!("{base}{path}")).json(&body).send().await {
        Ok(r) => {
            let status = r.status().as_u16();
            (status, r.json().await.unwrap_or(serde_json::Value::Null))
        }
        Err(_) => (0, serde_json::Value::Null),
    }
}

/// One client's loop: registration to the account step, then a login, until `until`.
async fn client(base: String, n: u64, until: Instant, done: Arc<AtomicU64>) {
    let http = reqwest::Client::new();
    let mut i = 0u64;
    while Instant::now() < until {
        i += 1;
        let (_, flow) = post(&http, &base, "/api/v1/registrations", json!({})).await;
        if let Some(id) = flow["id"].as_str() {
            post(
                &http,
                &base,
                &format!("/api/v1/registrations/{id}/org-type"),
                json!({"org_type": "health_insurance"}),
            )
            .await;
            post(&http, &base, &format!("/api/v1/registrations/{id}/insurer"), json!({"insurer_number": "133033"}))
                .await;
            let email = format!("burst-{n}-{i}@example.com");
            post(
                &http,
                &base,
                &format!("/api/v1/registrations/{id}/account"),
                json!({"email": email, "password": "Sakura-Mochi-2026!"}),
            )
            .await;
            post(&http, &base, "/api/v1/sessions", json!({"email": email, "password": "Sakura-Mochi-2026!"})).await;
            done.fetch_add(1, Ordering::Relaxed);
        }
    }
}

fn main() {
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build().expect("runtime");
    runtime.block_on(async {
        let clients = env_or("BURST_CLIENTS", 8);
        let secs = env_or("BURST_SECS", 30);
        let dir = tempfile::tempdir().expect("tempdir");
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        let generous = Limit::new(1_000_000, 60);
        let mut config = Config { listen: addr, data_dir: dir.path().to_path_buf(), ..Config::default() };
        for limit in [
            &mut config.limits.register_per_ip,
            &mut config.limits.register_per_email,
            &mut config.limits.login_per_ip,
            &mut config.limits.login_per_account_client,
            &mut config.limits.login_failures_per_account,
        ] {
            *limit = generous;
        }
        let app = App::open_default(config).await.expect("app");
        app::demo::load(&app).await.expect("demo organizations");
        let (_stop, rx) = tokio::sync::watch::channel(false);
        tokio::spawn(web::serve(app.clone(), listener, rx));
        let base = format!("http://{addr}");
        tokio::time::sleep(Duration::from_millis(200)).await;

        let (before, _) = memory_mib();
        let done = Arc::new(AtomicU64::new(0));
        let until = Instant::now() + Duration::from_secs(secs);
        let started = Instant::now();
        let mut peak = before;
        let tasks: Vec<_> =
            (0..clients).map(|n| tokio::spawn(client(base.clone(), n, until, done.clone()))).collect();
        while Instant::now() < until {
            tokio::time::sleep(Duration::from_millis(100)).await;
            peak = peak.max(memory_mib().0);
        }
        for t in tasks {
            let _ = t.await;
        }
        let elapsed = started.elapsed().as_secs_f64();
        tokio::time::sleep(Duration::from_secs(2)).await;
        let (after, hwm) = memory_mib();
        let rounds = done.load(Ordering::Relaxed);
        println!(
            "login burst: {clients} clients for {elapsed:.0} s: {rounds} registration+login rounds ({:.1}/s, 2 argon2id each)",
            rounds as f64 / elapsed
        );
        println!(
            "resident memory: {before:.0} MiB before, peak {:.0} MiB during the burst, {after:.0} MiB after",
            peak.max(hwm)
        );
    });
}
