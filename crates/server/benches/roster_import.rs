//! `make bench`: imports a generated roster of ROWS (default 1,000,000) rows into SQLite and
//! into PostgreSQL, twice each (first import, then a re-import of the same file, which updates
//! every record), and prints the time of each phase. Not a test: numbers, for the README.
//!
//! MIMOTO_BENCH_ROWS sets the row count, MIMOTO_BENCH_BACKENDS which backends run
//! (default `postgres,sqlite`), MIMOTO_TEST_DATABASE_URL the PostgreSQL database.

use std::sync::Arc;
use std::time::Instant;

use domain::clock::SystemClock;
use domain::insurer::InsurerNumber;
use domain::org::{CardPattern, NewOrganization, OrgType};
use server::app::App;
use server::config::Config;
use server::services::roster;

fn generate(rows: usize) -> String {
    let family = ["ヤマダ", "サトウ", "スズキ", "タカハシ", "タナカ", "ｲﾄｳ", "わたなべ"];
    let given = ["ハナコ", "タロウ", "ミサキ", "ケン", "サクラ", "ﾕｳｷ", "はると"];
    let mut csv = String::with_capacity(rows * 90);
    csv.push_str("insurer_number,symbol,number,branch,family_name_kana,given_name_kana,birth_date,eligible_from,eligible_until\n");
    for i in 0..rows {
        let branch = if i % 3 == 0 { String::new() } else { format!("{:02}", i % 5) };
        let until = if i % 10 == 0 { "2030-03-31" } else { "" };
        csv.push_str(&format!(
            "133033,{},{},{},{},{},{}-{:02}-{:02},2020-04-01,{}\n",
            1000 + i % 9000,
            1_000_000 + i,
            branch,
            family[i % family.len()],
            given[(i / 7) % given.len()],
            1940 + i % 70,
            1 + i % 12,
            1 + i % 28,
            until
        ));
    }
    csv
}

async fn run(label: &str, app: Arc<App>, csv: &str) {
    let org = server::demo::add_org(
        &app,
        NewOrganization {
            insurer_number: InsurerNumber::parse("133033").expect("valid"),
            org_type: OrgType::HealthInsurance,
            name: "ベンチ健康保険組合".into(),
            point_name: None,
            checkup_linked: false,
            card_pattern: CardPattern::SymbolAndNumber,
        },
    )
    .await
    .expect("org");
    for pass in ["first import", "re-import"] {
        let t0 = Instant::now();
        let text = roster::decode(csv.as_bytes(), roster::Encoding::Auto).expect("decode");
        let entries = roster::parse(&text, &org).expect("parse");
        let t1 = Instant::now();
        let rows = roster::seal_all(&app.keys, &org.id, &entries).expect("seal");
        let t2 = Instant::now();
        let stats = roster::write(&app, &org, &rows, &mut ()).await.expect("write");
        let t3 = Instant::now();
        println!(
            "{label:<10} {pass:<12} {:>9} rows  parse+check {:>6.2} s  seal+index {:>6.2} s  write {:>6.2} s  total {:>6.2} s",
            stats.rows,
            (t1 - t0).as_secs_f64(),
            (t2 - t1).as_secs_f64(),
            (t3 - t2).as_secs_f64(),
            (t3 - t0).as_secs_f64()
        );
    }
}

fn config(dir: &std::path::Path) -> Config {
    Config { data_dir: dir.to_path_buf(), ..Config::default() }
}

#[tokio::main]
async fn main() {
    let rows: usize = std::env::var("MIMOTO_BENCH_ROWS").ok().and_then(|v| v.parse().ok()).unwrap_or(1_000_000);
    println!("generating {rows} rows…");
    let csv = generate(rows);
    println!("{:.1} MB of CSV; {} cores", csv.len() as f64 / 1e6, std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1));

    let backends = std::env::var("MIMOTO_BENCH_BACKENDS").unwrap_or_else(|_| "postgres,sqlite".into());
    if backends.contains("postgres") {
        let dir = tempfile::tempdir().expect("tempdir");
        let (pg, schema) = store::testing::fresh_pg().await.expect("PostgreSQL must be reachable");
        let app = App::with_store(config(dir.path()), Arc::new(pg), Arc::new(SystemClock)).expect("app");
        run("postgres", app, &csv).await;
        store::testing::drop_pg_schema(&schema).await.expect("drop schema");
    }
    if backends.contains("sqlite") {
        let dir = tempfile::tempdir().expect("tempdir");
        let sqlite = store::testing::sqlite_in(dir.path()).await.expect("sqlite");
        let app = App::with_store(config(dir.path()), Arc::new(sqlite), Arc::new(SystemClock)).expect("app");
        run("sqlite", app, &csv).await;
    }
}
