//! `make bench`: imports a generated お薬履歴 CSV of ROWS (default 200,000, the parser's cap)
//! rows into PostgreSQL and SQLite through the real import path (parse, match every row to
//! the generated roster, seal, write in batches in one transaction): the first import, then
//! the same file again (nothing new). Prints seconds and rows/s. Not a test: numbers, for the
//! README (issue #15 point 5: under 10 s on PostgreSQL).
//!
//! MIMOTO_BENCH_ROWS sets the row count (10 per member), MIMOTO_BENCH_BACKENDS which backends
//! run (default `postgres,sqlite`), MIMOTO_TEST_DATABASE_URL the PostgreSQL database.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a failure with a message

use std::sync::Arc;
use std::time::Instant;

use app::config::Config;
use app::services::{health_imports, roster};
use app::App;
use domain::clock::SystemClock;
use domain::insurer::InsurerNumber;
use domain::org::{CardPattern, NewOrganization, OrgType};

/// Rows of one member in the medication file.
const PER_MEMBER: usize = 10;

/// (symbol, number, birth date) of member `i`.
fn member(i: usize) -> (usize, usize, String) {
    (1000 + i % 9000, 1_000_000 + i, format!("{}-{:02}-{:02}", 1940 + i % 70, 1 + i % 12, 1 + i % 28))
}

fn roster_csv(members: usize) -> String {
    let mut csv = String::with_capacity(members * 80);
    csv.push_str("insurer_number,symbol,number,branch,family_name_kana,given_name_kana,birth_date,eligible_from,eligible_until\n");
    for i in 0..members {
        let (symbol, number, birth) = member(i);
        csv.push_str(&format!("133033,{symbol},{number},,ヤマダ,ハナコ,{birth},2020-04-01,\n"));
    }
    csv
}

fn medication_csv(rows: usize) -> String {
    let drugs = [
        "アムロジピン錠5mg",
        "ロキソプロフェン錠60mg",
        "ムコスタ錠100mg",
        "メトホルミン錠250mg",
        "ビソプロロール錠2.5mg",
    ];
    let mut csv = String::with_capacity(rows * 140);
    csv.push_str("保険者番号,記号,番号,枝番,生年月日,調剤年月日,薬局名,処方医療機関,処方医,医薬品名,用量,日数\n");
    for r in 0..rows {
        let (i, j) = (r / PER_MEMBER, r % PER_MEMBER);
        let (symbol, number, birth) = member(i);
        csv.push_str(&format!(
            "133033,{symbol},{number},,{birth},2025-{:02}-{:02},みらい薬局,みらいクリニック,,{},1回1錠,{}\n",
            1 + j,
            1 + i % 28,
            drugs[(i + j) % drugs.len()],
            7 + j
        ));
    }
    csv
}

async fn run(label: &str, app: Arc<App>, roster: &str, meds: &str, rows: usize) {
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
    roster::import_bytes(&app, &org, roster.as_bytes(), roster::Encoding::Auto, &mut ()).await.expect("roster");
    for pass in ["first import", "same again"] {
        let t0 = Instant::now();
        let stats = health_imports::import_medications(&app, "133033", "bench.csv", meds.as_bytes().to_vec(), &mut ())
            .await
            .expect("import");
        let secs = t0.elapsed().as_secs_f64();
        assert_eq!(stats.rows as usize, rows, "every row matched");
        println!(
            "{label:<8} {pass:<12} {:>7} rows {:>7} new {:>7} stored already | {secs:>6.2} s  {:>8.0} rows/s",
            stats.rows,
            stats.inserted,
            stats.existing,
            rows as f64 / secs
        );
    }
}

fn config(dir: &std::path::Path) -> Config {
    Config { data_dir: dir.to_path_buf(), ..Config::default() }
}

#[tokio::main]
async fn main() {
    let rows: usize = std::env::var("MIMOTO_BENCH_ROWS").ok().and_then(|v| v.parse().ok()).unwrap_or(200_000);
    let members = rows.div_ceil(PER_MEMBER);
    let roster = roster_csv(members);
    let meds = medication_csv(rows);
    println!(
        "{rows} medication rows of {members} members ({:.1} MB of CSV); {} cores",
        meds.len() as f64 / 1e6,
        std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1)
    );
    let backends = std::env::var("MIMOTO_BENCH_BACKENDS").unwrap_or_else(|_| "postgres,sqlite".into());
    if backends.contains("postgres") {
        let dir = tempfile::tempdir().expect("tempdir");
        let (pg, schema) = store::testing::fresh_pg().await.expect("PostgreSQL must be reachable");
        let app = App::with_store(config(dir.path()), Arc::new(pg), Arc::new(SystemClock)).expect("app");
        run("postgres", app, &roster, &meds, rows).await;
        store::testing::drop_pg_schema(&schema).await.expect("drop schema");
    }
    if backends.contains("sqlite") {
        let dir = tempfile::tempdir().expect("tempdir");
        let sqlite = store::testing::sqlite_in(dir.path()).await.expect("sqlite");
        let app = App::with_store(config(dir.path()), Arc::new(sqlite), Arc::new(SystemClock)).expect("app");
        run("sqlite", app, &roster, &meds, rows).await;
    }
}
