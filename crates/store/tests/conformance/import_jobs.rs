//! Import jobs: progress and heartbeat from their node only, the outcome, and jobs whose node
//! stopped marked failed (never running forever).

use super::*;
use store::ImportJobRecord;

fn job(id: &str, node: &str, at: OffsetDateTime) -> ImportJobRecord {
    ImportJobRecord {
        id: id.to_string(),
        kind: "medications".into(),
        org_id: "o1".into(),
        insurer_number: "133033".into(),
        file_name: format!("{id}.csv"),
        operator_id: "op1".into(),
        started_at: at,
        state: "running".into(),
        done: 0,
        total: 0,
        result: None,
        node: node.to_string(),
        heartbeat_at: at,
        finished_at: None,
    }
}

async fn import_jobs_keep_progress_outcome_and_fail_when_their_node_stops(s: Arc<dyn Store>) {
    let now = t0();
    s.insert_org(&org("o1", "133033", false), now).await.expect("org");
    s.create_import_job(&job("j1", "n1", now)).await.expect("create");
    s.create_import_job(&job("j2", "n2", now + Duration::seconds(1))).await.expect("create");
    assert!(matches!(s.create_import_job(&job("j1", "n1", now)).await, Err(StoreError::Duplicate)));
    let unknown_org = ImportJobRecord { org_id: "nope".into(), ..job("j9", "n1", now) };
    assert!(s.create_import_job(&unknown_org).await.is_err(), "a job needs its organization");

    // Progress from the job's node only.
    let later = now + Duration::seconds(10);
    assert!(s.import_job_heartbeat("j1", "n1", 500, 2000, later).await.expect("heartbeat"));
    assert!(!s.import_job_heartbeat("j1", "n2", 600, 2000, later).await.expect("heartbeat"), "another node's");
    let j1 = s.get_import_job("j1").await.expect("get").expect("j1");
    assert_eq!((j1.state.as_str(), j1.done, j1.total, j1.heartbeat_at), ("running", 500, 2000, later));
    assert_eq!(j1, ImportJobRecord { done: 500, total: 2000, heartbeat_at: later, ..job("j1", "n1", now) });

    // Newest first.
    let all = s.list_import_jobs(10, None).await.expect("list");
    assert_eq!(all.iter().map(|j| j.id.as_str()).collect::<Vec<_>>(), ["j2", "j1"]);
    assert_eq!(s.list_import_jobs(1, None).await.expect("list").len(), 1);
    // An operator's organizations only, newest of them first, whatever the others have.
    s.insert_org(&org("o2", "06132013", false), now).await.expect("org");
    let other =
        ImportJobRecord { org_id: "o2".into(), state: "done".into(), ..job("j3", "n1", now + Duration::seconds(2)) };
    s.create_import_job(&other).await.expect("create");
    let o1 = s.list_import_jobs(1, Some(&["o1".to_string()])).await.expect("list");
    assert_eq!(o1.iter().map(|j| j.id.as_str()).collect::<Vec<_>>(), ["j2"]);
    let both = s.list_import_jobs(10, Some(&["o1".to_string(), "o2".to_string()])).await.expect("list");
    assert_eq!(both.len(), 3);
    assert!(s.list_import_jobs(10, Some(&[])).await.expect("list").is_empty());

    // j2's heartbeat lapsed (before now + 5 s): failed, and its node may no longer report.
    let check = now + Duration::seconds(70);
    let cutoff = now + Duration::seconds(5);
    assert_eq!(s.fail_lapsed_import_jobs(cutoff, check, "n2").await.expect("fail"), 0, "the asking node's own job");
    assert_eq!(s.get_import_job("j2").await.expect("get").expect("j2").state, "running");
    assert_eq!(s.fail_lapsed_import_jobs(cutoff, check, "n3").await.expect("fail"), 1);
    let j2 = s.get_import_job("j2").await.expect("get").expect("j2");
    assert_eq!((j2.state.as_str(), j2.finished_at), ("failed", Some(check)));
    assert!(!s.import_job_heartbeat("j2", "n2", 1, 2, check).await.expect("heartbeat"), "not running any more");
    assert_eq!(s.get_import_job("j1").await.expect("get").expect("j1").state, "running", "its heartbeat is recent");

    // The outcome.
    let end = now + Duration::seconds(80);
    s.finish_import_job("j1", "done", r#"{"records":2000}"#, 2000, 2000, end).await.expect("finish");
    let j1 = s.get_import_job("j1").await.expect("get").expect("j1");
    assert_eq!(
        (j1.state.as_str(), j1.result.as_deref(), j1.done, j1.total, j1.finished_at),
        ("done", Some(r#"{"records":2000}"#), 2000, 2000, Some(end))
    );
    assert_eq!(
        s.fail_lapsed_import_jobs(end + Duration::days(1), end, "n3").await.expect("fail"),
        0,
        "finished jobs stay"
    );
    // A node that finishes after its job was marked failed still writes the truth.
    s.finish_import_job("j2", "refused", r#"{"reason":"x"}"#, 0, 0, end).await.expect("finish late");
    assert_eq!(s.get_import_job("j2").await.expect("get").expect("j2").state, "refused");
    assert!(matches!(s.finish_import_job("nope", "done", "{}", 0, 0, end).await, Err(StoreError::NotFound)));
    assert_eq!(s.get_import_job("nope").await.expect("get"), None);
}

conformance!(import_jobs_keep_progress_outcome_and_fail_when_their_node_stops,);
