//! Does password reset tell, by its timing, whether an address has an account? (`make bench`,
//! issue #14 point 2.) The real router on a loopback port; `RESET_ROUNDS` (200) addresses with
//! an account and as many without, taken in turns. Each gets 「パスワード再設定」 started
//! (`POST /api/v1/password-resets`) and, 50 ms later, one wrong code (`…/complete`). Prints the median and
//! 90th percentile of both steps for each group, and the median differences.
//!
//! ```sh
//! cargo bench -p mimoto-web --bench reset_timing
//! ```
//! It prints figures, never a verdict: a benchmark, not a timed test.

#![allow(clippy::unwrap_used, clippy::expect_used)] // a benchmark: a panic is a failed run

use std::time::{Duration, Instant};

use app::config::{Config, Limit};
use app::services::{email_index, new_id, seal_email};
use app::App;
use domain::email::Email;
use serde_json::json;

fn env_or(name: &str, default: u64) -> u64 {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

/// Milliseconds of one POST, and its status.
async fn timed(http: &reqwest::Client, url: String, body: serde_json::Value) -> (f64, u16, serde_json::Value) {
    let started = Instant::now();
    let resp = http.post(url).json(&body).send().await.expect("request");
    let status = resp.status().as_u16();
    let value = resp.json().await.unwrap_or(serde_json::Value::Null);
    (started.elapsed().as_secs_f64() * 1000.0, status, value)
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted.get(i).copied().unwrap_or(f64::NAN)
}

#[derive(Default)]
struct Group {
    start: Vec<f64>,
    wrong_code: Vec<f64>,
}

impl Group {
    fn report(&mut self, name: &str) -> (f64, f64) {
        self.start.sort_by(f64::total_cmp);
        self.wrong_code.sort_by(f64::total_cmp);
        let (s50, c50) = (percentile(&self.start, 0.5), percentile(&self.wrong_code, 0.5));
        println!(
            "{name}: start p50 {s50:.2} ms p90 {:.2} ms; wrong code p50 {c50:.2} ms p90 {:.2} ms ({} each)",
            percentile(&self.start, 0.9),
            percentile(&self.wrong_code, 0.9),
            self.start.len()
        );
        (s50, c50)
    }
}

fn main() {
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build().expect("runtime");
    runtime.block_on(async {
        let rounds = env_or("RESET_ROUNDS", 200);
        let dir = tempfile::tempdir().expect("tempdir");
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        let generous = Limit::new(1_000_000, 60);
        let mut config = Config { listen: addr, data_dir: dir.path().to_path_buf(), ..Config::default() };
        for limit in
            [&mut config.limits.reset_per_ip, &mut config.limits.reset_per_email, &mut config.limits.code_per_ip]
        {
            *limit = generous;
        }
        let app = App::open_default(config).await.expect("app");
        app::demo::load(&app).await.expect("demo organizations");
        let org = app.store.find_org_by_insurer_number("133033").await.expect("org").expect("demo org");
        // One argon2id hash for every account: the accounts only need to exist.
        let hash = app::services::passwords::hash("Sakura-Mochi-2026!".into()).await.expect("hash");
        for n in 0..rounds {
            let email = Email::parse(&format!("known-{n}@example.com")).expect("email");
            let user = store::NewUser {
                id: new_id(),
                org_id: org.id.clone(),
                email_index: email_index(&app, &email),
                email_enc: seal_email(&app, &email).expect("seal"),
                password_hash: hash.clone(),
                locale: "ja".into(),
                created_at: app.now(),
            };
            app.store.create_user(&user, &[], None).await.expect("user");
        }
        let (_stop, rx) = tokio::sync::watch::channel(false);
        tokio::spawn(web::serve(app.clone(), listener, rx));
        let base = format!("http://{addr}");
        tokio::time::sleep(Duration::from_millis(200)).await;

        let http = reqwest::Client::new();
        let (mut known, mut unknown) = (Group::default(), Group::default());
        for n in 0..rounds {
            for (group, prefix) in [(&mut known, "known"), (&mut unknown, "nobody")] {
                let email = format!("{prefix}-{n}@example.com");
                let (ms, status, flow) =
                    timed(&http, format!("{base}/api/v1/password-resets"), json!({"email": email})).await;
                assert_eq!(status, 202, "{flow}");
                group.start.push(ms);
                // The mail worker sends the code mail of an account meanwhile (a decoy is never
                // sent): let it finish, for both groups alike, so the wrong-code figures are the
                // code check's and not the mail's.
                tokio::time::sleep(Duration::from_millis(50)).await;
                let id = flow["id"].as_str().expect("id");
                let body = json!({"code": "000000", "new_password": "Another-Long-Passphrase-2026"});
                let (ms, status, v) = timed(&http, format!("{base}/api/v1/password-resets/{id}/complete"), body).await;
                // One code in a million is right by chance: count only the wrong ones.
                if status == 422 && v["error"]["code"] == "code_wrong" {
                    group.wrong_code.push(ms);
                }
            }
        }
        let (ks, kc) = known.report("address with an account");
        let (us, uc) = unknown.report("address without one");
        println!("median difference: start {:+.2} ms, wrong code {:+.2} ms", ks - us, kc - uc);
    });
}
