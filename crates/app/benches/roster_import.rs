//! `make bench`: imports a generated roster of ROWS (default 1,000,000) rows into SQLite and
//! into PostgreSQL, three times each (first import; the same file again, which changes
//! nothing; a file with 10% of the records changed and 1% gone), and prints the time of each
//! phase. Not a test: numbers, for the README.
//!
//! MIMOTO_BENCH_ROWS sets the row count, MIMOTO_BENCH_BACKENDS which backends run
//! (default `postgres,sqlite`), MIMOTO_TEST_DATABASE_URL the PostgreSQL database.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a failure with a message

use std::sync::Arc;
use std::time::Instant;

use app::config::Config;
use app::services::roster;
use app::App;
use domain::clock::SystemClock;
use domain::insurer::InsurerNumber;
use domain::org::{CardPattern, NewOrganization, OrgType};

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

async fn run(label: &str, app: Arc<App>, csv: &str, rows: usize) {
    let org = app::demo::add_org(
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
    // The same file twice (nothing changes), then a file where every tenth record's
    // eligibility changed and every hundredth record is gone.
    let changed = change(csv);
    for (pass, file) in [("first import", csv), ("same again", csv), ("10% changed", changed.as_str())] {
        let t0 = Instant::now();
        let (stats, timings) =
            roster::import_bytes(&app, &org, file.as_bytes(), roster::Encoding::Auto, &mut ()).await.expect("import");
        let stored = app.store.roster_count(&org.id).await.expect("count");
        assert_eq!(stored as usize, rows, "every generated record is stored (none deleted)");
        println!(
            "{label:<8} {pass:<12} {:>8} rows {:>8} new {:>7} changed {:>6} ended | parse+check {:>5.2} s  index {:>5.2} s  compare {:>5.2} s  seal+write {:>5.2} s  total {:>6.2} s",
            stats.rows,
            stats.inserted,
            stats.updated,
            stats.ended,
            timings.parse.as_secs_f64(),
            timings.index.as_secs_f64(),
            timings.compare.as_secs_f64(),
            timings.write.as_secs_f64(),
            t0.elapsed().as_secs_f64()
        );
    }
}

/// Every tenth row gets an end of eligibility, every hundredth row is dropped.
fn change(csv: &str) -> String {
    let mut out = String::with_capacity(csv.len());
    for (i, line) in csv.lines().enumerate() {
        if i == 0 {
            out.push_str(line);
        } else if i % 100 == 0 {
            continue;
        } else if i % 10 == 5 {
            let cut = line.rfind(',').map_or(line.len(), |p| p + 1);
            out.push_str(&line[..cut]);
            out.push_str("2027-03-31");
        } else {
            out.push_str(line);
        }
        out.push('\n');
    }
    out
}

fn config(dir: &std::path::Path) -> Config {
    Config { data_dir: dir.to_path_buf(), ..Config::default() }
}

#[tokio::main]
async fn main() {
    let rows: usize = std::env::var("MIMOTO_BENCH_ROWS").ok().and_then(|v| v.parse().ok()).unwrap_or(1_000_000);
    println!("generating {rows} rows…");
    let csv = generate(rows);
    println!(
        "{:.1} MB of CSV; {} cores",
        csv.len() as f64 / 1e6,
        std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1)
    );

    let backends = std::env::var("MIMOTO_BENCH_BACKENDS").unwrap_or_else(|_| "postgres,sqlite".into());
    if backends.contains("postgres") {
        let dir = tempfile::tempdir().expect("tempdir");
        let (pg, schema) = store::testing::fresh_pg().await.expect("PostgreSQL must be reachable");
        let app = App::with_store(config(dir.path()), Arc::new(pg), Arc::new(SystemClock)).expect("app");
        run("postgres", app, &csv, rows).await;
        store::testing::drop_pg_schema(&schema).await.expect("drop schema");
    }
    if backends.contains("sqlite") {
        let dir = tempfile::tempdir().expect("tempdir");
        let sqlite = store::testing::sqlite_in(dir.path()).await.expect("sqlite");
        let app = App::with_store(config(dir.path()), Arc::new(sqlite), Arc::new(SystemClock)).expect("app");
        run("sqlite", app, &csv, rows).await;
    }
}
