//! Console import jobs are kept in the database (issue #15, point 5): a job started on one node
//! is listed and shown, with its outcome, by another node of the same database; a running job
//! whose node stopped (its heartbeat lapsed) shows as failed, never running forever.

use crate::common::browser::Browser;
use crate::common::console::{create_operator, sign_in};
use crate::common::{Backend, Opts, TestApp};
use crate::console_imports::{finished, upload};
use app::services::imports::LEASE;
use app::services::operators::Role;
use store::ImportJobRecord;

const MEDS: &str = "保険者番号,記号,番号,枝番,生年月日,調剤年月日,薬局名,処方医療機関,処方医,医薬品名,用量,日数\n\
                    133033,1234,5678,,1990-04-01,2025-04-01,みらい薬局,みらいクリニック,,アムロジピン錠5mg,1回1錠,30\n\
                    133033,1234,5678,,1990-04-01,2025-05-01,みらい薬局,みらいクリニック,,アムロジピン錠5mg,1回1錠,30\n";

async fn a_job_started_on_one_node_is_shown_by_another(t: TestApp) {
    let admin = create_operator(&t, "admin@mimoto.example.jp", "管理 太郎", Role::Admin).await;
    let b = Browser::not_following(&t);
    sign_in(&t, &b, &admin).await;
    let sent = upload(&b, "medications", "133033", "meds-node-a.csv", MEDS.as_bytes().to_vec()).await;
    assert_eq!(sent.status, 303, "{}", sent.html);
    let job = sent.location.expect("job page");
    let done = finished(&b, &job).await;
    assert!(done.has("<dt>件数</dt><dd>2</dd>") && done.has("<dt>新規</dt><dd>2</dd>"), "{}", done.html);

    // Another node of the same database: the list and the job page, with the outcome.
    let second = TestApp::start(Opts { database_of: Some(t.database()), ..Opts::default() }).await;
    second.clock.advance(time::Duration::seconds(30)); // the next TOTP step: a code is used once
    let b2 = Browser::not_following(&second);
    sign_in(&second, &b2, &admin).await;
    let list = b2.get("/console/imports").await;
    assert_eq!(list.status, 200, "{}", list.html);
    assert!(list.has("meds-node-a.csv") && list.has("取り込みが完了しました"), "{}", list.html);
    let page = b2.get(&job).await;
    assert_eq!(page.status, 200, "{}", page.html);
    assert!(
        page.has("meds-node-a.csv") && page.has("<dt>件数</dt><dd>2</dd>") && page.has("<dt>新規</dt><dd>2</dd>"),
        "{}",
        page.html
    );
    assert!(!page.has("http-equiv=\"refresh\""), "finished: {}", page.html);

    // The same file again from the second node: nothing new, and the first node sees that job.
    let again = upload(&b2, "medications", "00133033", "meds-node-b.csv", MEDS.as_bytes().to_vec()).await;
    assert_eq!(again.status, 303, "{}", again.html);
    let job_b = again.location.expect("job page");
    let done = finished(&b2, &job_b).await;
    assert!(done.has("<dt>新規</dt><dd>0</dd>"), "{}", done.html);
    let seen = b.get(&job_b).await;
    assert!(seen.has("meds-node-b.csv") && seen.has("<dt>新規</dt><dd>0</dd>"), "{}", seen.html);
    second.stop().await;
    t.stop().await;
}

async fn a_running_job_whose_node_stopped_shows_as_failed(t: TestApp) {
    let admin = create_operator(&t, "admin@mimoto.example.jp", "管理 太郎", Role::Admin).await;
    let b = Browser::not_following(&t);
    sign_in(&t, &b, &admin).await;
    let org = t.app.store.find_org_by_insurer_number("133033").await.expect("org").expect("demo org");
    // A job a node was running when it stopped: its heartbeat is never renewed.
    let now = t.app.now();
    let job = ImportJobRecord {
        id: "7d1f0c2e-5b8a-4c61-9e0f-1a2b3c4d5e6f".into(),
        kind: "medications".into(),
        org_id: org.id.clone(),
        insurer_number: "133033".into(),
        file_name: "stopped.csv".into(),
        operator_id: "an-operator".into(),
        started_at: now,
        state: "running".into(),
        done: 5_000,
        total: 200_000,
        result: None,
        node: "a-node-that-stopped".into(),
        heartbeat_at: now,
        finished_at: None,
    };
    t.app.store.create_import_job(&job).await.expect("job");
    let path = format!("/console/imports/{}", job.id);

    // Within its lease it is running.
    t.clock.advance(LEASE);
    let running = b.get(&path).await;
    assert_eq!(running.status, 200, "{}", running.html);
    assert!(running.has("http-equiv=\"refresh\"") && running.has("5000 / 200000"), "{}", running.html);

    // Past it: failed, with what to do, on the page and in the list; never running again.
    t.clock.advance(time::Duration::seconds(1));
    let failed = b.get(&path).await;
    assert_eq!(failed.status, 200, "{}", failed.html);
    assert!(!failed.has("http-equiv=\"refresh\""), "{}", failed.html);
    assert!(
        failed.has("取り込みを実行していたサーバーが停止しました。ファイルをもう一度取り込んでください"),
        "{}",
        failed.html
    );
    let list = b.get("/console/imports").await;
    assert!(list.has("stopped.csv") && list.has("<td>中断</td>"), "{}", list.html);
    let stored = t.app.store.get_import_job(&job.id).await.expect("get").expect("job");
    assert_eq!(stored.state, "failed");
    t.stop().await;
}

on_both_backends!(a_job_started_on_one_node_is_shown_by_another, a_running_job_whose_node_stopped_shows_as_failed);

/// The second node on PostgreSQL also sees a job while it runs: its progress is in the database.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_running_job_is_shown_with_its_progress_by_another_node() {
    let t = TestApp::start(Opts { backend: Backend::Postgres, ..Opts::default() }).await;
    let admin = create_operator(&t, "admin@mimoto.example.jp", "管理 太郎", Role::Admin).await;
    let org = t.app.store.find_org_by_insurer_number("133033").await.expect("org").expect("demo org");
    let now = t.app.now();
    let job = ImportJobRecord {
        id: "0b6c3f7a-9d2e-4f18-8a5b-6c7d8e9f0a1b".into(),
        kind: "expenses".into(),
        org_id: org.id.clone(),
        insurer_number: "133033".into(),
        file_name: "running.csv".into(),
        operator_id: "an-operator".into(),
        started_at: now,
        state: "running".into(),
        done: 0,
        total: 0,
        result: None,
        node: t.app.imports.node.clone(),
        heartbeat_at: now,
        finished_at: None,
    };
    t.app.store.create_import_job(&job).await.expect("job");
    assert!(t.app.store.import_job_heartbeat(&job.id, &t.app.imports.node, 1_000, 4_000, now).await.expect("beat"));

    let second = TestApp::start(Opts { database_of: Some(t.database()), ..Opts::default() }).await;
    let b2 = Browser::not_following(&second);
    sign_in(&second, &b2, &admin).await;
    let page = b2.get(&format!("/console/imports/{}", job.id)).await;
    assert!(page.has("http-equiv=\"refresh\"") && page.has("1000 / 4000"), "{}", page.html);
    second.stop().await;
    t.stop().await;
}
