//! 特定健診 results, お薬履歴 and 医療費通知 entries, and their imports.

use super::*;
use crate::roster::{rec, roster_row, stats};

fn checkup(id: &str, record: RecordRef, on: &str, data: u8) -> CheckupRow {
    CheckupRow { id: id.to_string(), record, examined_on: on.to_string(), data_enc: vec![data; 24] }
}

/// o1 with records 1 and 2 (card 10) and record 3 (card 11).
async fn checkup_roster(s: &Arc<dyn Store>) {
    let now = t0();
    s.insert_org(&org("o1", "133033", true), now).await.expect("org");
    let mut imp = s.begin_roster_import("o1", "r1", now).await.expect("begin");
    imp.insert(&[
        roster_row(1, 10, 20, "2020-04-01", None),
        roster_row(2, 10, 21, "2020-04-01", None),
        roster_row(3, 11, 22, "2020-04-01", None),
    ])
    .await
    .expect("insert");
    imp.commit(stats(3, 3, 0, 0)).await.expect("commit");
}

async fn checkup_imports_commit_and_are_listed_newest_first(s: Arc<dyn Store>) {
    checkup_roster(&s).await;
    let now = t0();
    let by_card = s.find_roster_records_by_card("o1", &[10; 16]).await.expect("by card");
    assert_eq!(
        by_card.iter().map(|m| m.record.clone()).collect::<Vec<_>>(),
        [rec(1, 10), rec(2, 10)],
        "every person of the card"
    );
    assert!(s.find_roster_records_by_card("o2", &[10; 16]).await.expect("by card").is_empty());
    // Many cards at once (more than one query's worth), unknown ones among them.
    let mut cards: Vec<Vec<u8>> = (0..2_500u32).map(|n| n.to_be_bytes().repeat(4)).collect();
    cards.extend([vec![11; 16], vec![10; 16]]);
    let mut by_cards = s.find_roster_records_by_cards("o1", &cards).await.expect("by cards");
    by_cards.sort_by(|a, b| {
        (&a.record.card_index, &a.record.record_key).cmp(&(&b.record.card_index, &b.record.record_key))
    });
    assert_eq!(by_cards.iter().map(|m| m.record.clone()).collect::<Vec<_>>(), [rec(1, 10), rec(2, 10), rec(3, 11)]);
    assert_eq!(by_cards[0], by_card[0], "the same as one card's");
    assert!(s.find_roster_records_by_cards("o1", &[]).await.expect("none").is_empty());
    assert!(s.find_roster_records_by_cards("o2", &cards).await.expect("by cards").is_empty());
    assert!(matches!(s.begin_checkup_import("nope", "c0", "x.zip", now).await.err(), Some(StoreError::NotFound)));

    let mut imp = s.begin_checkup_import("o1", "c1", "results.zip", now).await.expect("begin");
    assert!(!imp.put(&checkup("k1", rec(1, 10), "2023-06-01", 1)).await.expect("put"));
    assert!(!imp.put(&checkup("k2", rec(1, 10), "2024-06-10", 2)).await.expect("put"));
    assert!(!imp.put(&checkup("k3", rec(3, 11), "2024-06-10", 3)).await.expect("put"));
    imp.commit(CheckupImportStats { documents: 3, inserted: 3, replaced: 0 }).await.expect("commit");

    let r1 = s.checkup_results_of_record("o1", &rec(1, 10)).await.expect("results");
    assert_eq!(
        r1.iter().map(|r| (r.id.as_str(), r.examined_on.as_str())).collect::<Vec<_>>(),
        [("k2", "2024-06-10"), ("k1", "2023-06-01")],
        "newest first"
    );
    assert_eq!(
        (r1[0].data_enc.as_slice(), r1[0].import_id.as_str(), r1[0].created_at, r1[0].org_id.as_str()),
        (&[2u8; 24][..], "c1", now, "o1")
    );
    assert_eq!(s.checkup_results_of_record("o1", &rec(3, 11)).await.expect("results").len(), 1);
    assert!(
        s.checkup_results_of_record("o1", &rec(2, 10)).await.expect("results").is_empty(),
        "another person of the same card"
    );
    assert!(s.checkup_results_of_record("o2", &rec(1, 10)).await.expect("results").is_empty(), "per organization");

    // A result must belong to a roster record of the organization.
    let mut imp = s.begin_checkup_import("o1", "c2", "bad.zip", now).await.expect("begin");
    assert!(imp.put(&checkup("k9", rec(9, 10), "2024-06-10", 9)).await.is_err(), "no such roster record");
}

async fn a_dropped_checkup_import_leaves_nothing(s: Arc<dyn Store>) {
    checkup_roster(&s).await;
    let now = t0();
    let mut imp = s.begin_checkup_import("o1", "c1", "results.zip", now).await.expect("begin");
    imp.put(&checkup("k1", rec(1, 10), "2024-06-10", 1)).await.expect("put");
    imp.put(&checkup("k2", rec(3, 11), "2024-06-10", 2)).await.expect("put");
    drop(imp); // an error or an interrupt before commit
    assert!(s.checkup_results_of_record("o1", &rec(1, 10)).await.expect("results").is_empty());
    assert!(s.checkup_results_of_record("o1", &rec(3, 11)).await.expect("results").is_empty());
    // The same import id can be used again: its row went with the transaction.
    let mut imp = s.begin_checkup_import("o1", "c1", "results.zip", now).await.expect("begin again");
    imp.put(&checkup("k1", rec(1, 10), "2024-06-10", 1)).await.expect("put");
    imp.commit(CheckupImportStats { documents: 1, inserted: 1, replaced: 0 }).await.expect("commit");
    assert_eq!(s.checkup_results_of_record("o1", &rec(1, 10)).await.expect("results").len(), 1);
}

async fn reimporting_an_examination_replaces_it(s: Arc<dyn Store>) {
    checkup_roster(&s).await;
    let now = t0();
    let mut imp = s.begin_checkup_import("o1", "c1", "results.zip", now).await.expect("begin");
    imp.put(&checkup("k1", rec(1, 10), "2024-06-10", 1)).await.expect("put");
    imp.commit(CheckupImportStats { documents: 1, inserted: 1, replaced: 0 }).await.expect("commit");

    let later = now + Duration::days(1);
    let mut imp = s.begin_checkup_import("o1", "c2", "results.zip", later).await.expect("begin");
    assert!(imp.put(&checkup("k2", rec(1, 10), "2024-06-10", 7)).await.expect("put"), "same record and date: replaced");
    assert!(!imp.put(&checkup("k3", rec(1, 10), "2025-06-10", 8)).await.expect("put"), "another date: new");
    imp.commit(CheckupImportStats { documents: 2, inserted: 1, replaced: 1 }).await.expect("commit");
    let r = s.checkup_results_of_record("o1", &rec(1, 10)).await.expect("results");
    assert_eq!(r.len(), 2, "no duplicate for the re-imported examination");
    assert_eq!(
        (
            r[1].id.as_str(),
            r[1].examined_on.as_str(),
            r[1].data_enc.as_slice(),
            r[1].import_id.as_str(),
            r[1].created_at
        ),
        ("k1", "2024-06-10", &[7u8; 24][..], "c2", later)
    );
    assert_eq!(r[0].id, "k3");
}

fn health(id: &str, record: RecordRef, on: &str, key: u8, data: u8) -> HealthEntryRow {
    HealthEntryRow {
        id: id.to_string(),
        record,
        occurred_on: on.to_string(),
        row_key: vec![key; 16],
        data_enc: vec![data; 24],
    }
}

fn health_stats(rows: u64, inserted: u64) -> HealthImportStats {
    HealthImportStats { rows, inserted }
}

async fn health_entries_are_kept_once_per_record_kind_and_row_key(s: Arc<dyn Store>) {
    checkup_roster(&s).await;
    let now = t0();
    let (med, exp) = (HealthKind::Medication, HealthKind::Expense);
    assert!(matches!(s.begin_health_import("nope", "h0", med, "x.csv", now).await.err(), Some(StoreError::NotFound)));

    let mut imp = s.begin_health_import("o1", "h1", med, "medication.csv", now).await.expect("begin");
    assert!(!imp.put(&health("m1", rec(1, 10), "2025-03-01", 1, 1)).await.expect("put"));
    assert!(!imp.put(&health("m2", rec(1, 10), "2025-05-20", 2, 2)).await.expect("put"));
    assert!(!imp.put(&health("m3", rec(1, 10), "2025-04-01", 3, 3)).await.expect("put"));
    assert!(
        !imp.put(&health("m4", rec(3, 11), "2025-04-01", 1, 4)).await.expect("put"),
        "the same row key on another record"
    );
    assert!(
        imp.put(&health("m5", rec(1, 10), "2025-03-01", 1, 5)).await.expect("put"),
        "the same row key twice: kept once"
    );
    imp.commit(health_stats(5, 4)).await.expect("commit");

    let r = s.health_entries_of_record("o1", &rec(1, 10), med).await.expect("entries");
    assert_eq!(
        r.iter().map(|e| e.occurred_on.as_str()).collect::<Vec<_>>(),
        ["2025-05-20", "2025-04-01", "2025-03-01"],
        "latest first"
    );
    let first = &r[2];
    assert_eq!(
        (
            first.id.as_str(),
            first.org_id.as_str(),
            first.kind,
            first.row_key.as_slice(),
            first.data_enc.as_slice(),
            first.import_id.as_str(),
            first.created_at
        ),
        ("m1", "o1", med, &[1u8; 16][..], &[1u8; 24][..], "h1", now),
        "the first write stays"
    );
    assert_eq!(first.record, rec(1, 10));
    assert_eq!(s.health_entries_of_record("o1", &rec(3, 11), med).await.expect("entries").len(), 1);
    assert!(
        s.health_entries_of_record("o1", &rec(2, 10), med).await.expect("entries").is_empty(),
        "another person of the same card"
    );
    assert!(s.health_entries_of_record("o1", &rec(1, 10), exp).await.expect("entries").is_empty(), "per kind");
    assert!(s.health_entries_of_record("o2", &rec(1, 10), med).await.expect("entries").is_empty(), "per organization");

    // Another kind with the same row key is another entry; a later import of the same rows adds nothing.
    let later = now + Duration::days(1);
    let mut imp = s.begin_health_import("o1", "h2", exp, "expenses.csv", later).await.expect("begin");
    assert!(!imp.put(&health("e1", rec(1, 10), "2025-04-01", 1, 9)).await.expect("put"));
    imp.commit(health_stats(1, 1)).await.expect("commit");
    let mut imp = s.begin_health_import("o1", "h3", med, "medication.csv", later).await.expect("begin");
    assert!(imp.put(&health("m6", rec(1, 10), "2025-05-20", 2, 6)).await.expect("put"));
    imp.commit(health_stats(1, 0)).await.expect("commit");
    let e = s.health_entries_of_record("o1", &rec(1, 10), exp).await.expect("entries");
    assert_eq!((e.len(), e[0].kind, e[0].id.as_str()), (1, exp, "e1"));
    assert_eq!(s.health_entries_of_record("o1", &rec(1, 10), med).await.expect("entries").len(), 3);

    // An entry needs its roster record.
    let mut imp = s.begin_health_import("o1", "h4", med, "bad.csv", now).await.expect("begin");
    assert!(imp.put(&health("m9", rec(9, 10), "2025-04-01", 9, 9)).await.is_err(), "no such roster record");
}

async fn a_dropped_health_import_leaves_nothing_and_imports_wait_for_each_other(s: Arc<dyn Store>) {
    checkup_roster(&s).await;
    let now = t0();
    let med = HealthKind::Medication;
    let mut imp = s.begin_health_import("o1", "h1", med, "medication.csv", now).await.expect("begin");
    imp.put(&health("m1", rec(1, 10), "2025-04-01", 1, 1)).await.expect("put");
    drop(imp); // an error or an interrupt before commit
    assert!(s.health_entries_of_record("o1", &rec(1, 10), med).await.expect("entries").is_empty());

    // The same import id can be used again; a second import of the organization (of any kind,
    // or a roster import) waits for the first to commit.
    let mut first = s.begin_health_import("o1", "h1", med, "medication.csv", now).await.expect("begin again");
    first.put(&health("m1", rec(1, 10), "2025-04-01", 1, 1)).await.expect("put");
    let s2 = s.clone();
    let second = tokio::spawn(async move {
        let imp = s2.begin_health_import("o1", "h2", HealthKind::Expense, "expenses.csv", now).await.expect("begin");
        imp.commit(health_stats(0, 0)).await.expect("commit");
        s2.health_entries_of_record("o1", &rec(1, 10), HealthKind::Medication).await.expect("entries").len()
    });
    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    assert!(!second.is_finished(), "the second import waits for the first");
    first.commit(health_stats(1, 1)).await.expect("commit");
    assert_eq!(second.await.expect("join"), 1, "and then sees what the first wrote");
}

/// An entry whose row key is `n` written big-endian (16 bytes), so thousands differ.
fn numbered(import: &str, n: u32, record: RecordRef) -> HealthEntryRow {
    let mut row_key = vec![0u8; 12];
    row_key.extend_from_slice(&n.to_be_bytes());
    HealthEntryRow {
        id: format!("{import}-{n}"),
        record,
        occurred_on: "2025-04-01".into(),
        row_key,
        data_enc: n.to_le_bytes().repeat(6),
    }
}

async fn health_entries_are_written_in_batches_counting_those_stored_already(s: Arc<dyn Store>) {
    checkup_roster(&s).await;
    let now = t0();
    let med = HealthKind::Medication;
    let mut imp = s.begin_health_import("o1", "h1", med, "first.csv", now).await.expect("begin");
    assert_eq!(imp.put_all(&[]).await.expect("nothing"), 0);
    assert_eq!(imp.put_all(&(0..10).map(|n| numbered("h1", n, rec(1, 10))).collect::<Vec<_>>()).await.expect("put"), 0);
    imp.commit(health_stats(10, 10)).await.expect("commit");

    // 2,500 rows (more than one batch) of which 10 are stored already and one is twice in the
    // batch; then a second batch in the same transaction.
    let mut imp = s.begin_health_import("o1", "h2", med, "second.csv", now).await.expect("begin");
    let mut rows: Vec<HealthEntryRow> = (0..2_500).map(|n| numbered("h2", n, rec(1, 10))).collect();
    rows.push(HealthEntryRow { id: "twice".into(), ..numbered("h2", 2_000, rec(1, 10)) });
    assert_eq!(imp.put_all(&rows).await.expect("put"), 11, "10 stored before, 1 twice in the batch");
    let more: Vec<HealthEntryRow> = (2_495..2_600).map(|n| numbered("h2a", n, rec(3, 11))).collect();
    assert_eq!(imp.put_all(&more).await.expect("put"), 0, "another record: all new");
    let again: Vec<HealthEntryRow> = (2_590..2_610).map(|n| numbered("h2b", n, rec(3, 11))).collect();
    assert_eq!(imp.put_all(&again).await.expect("put"), 10, "written by the previous batch");
    imp.commit(health_stats(2_626, 2_605)).await.expect("commit");

    let stored = s.health_entries_of_record("o1", &rec(1, 10), med).await.expect("entries");
    assert_eq!(stored.len(), 2_500);
    let first = stored.iter().find(|e| e.id == "h1-0").expect("h1-0");
    assert_eq!((first.import_id.as_str(), first.data_enc.clone()), ("h1", 0u32.to_le_bytes().repeat(6)));
    let later = stored.iter().find(|e| e.id == "h2-1999").expect("a new row of the second import");
    assert_eq!(
        (later.import_id.as_str(), later.kind, later.occurred_on.as_str(), later.created_at, later.record.clone()),
        ("h2", med, "2025-04-01", now, rec(1, 10))
    );
    assert_eq!(s.health_entries_of_record("o1", &rec(3, 11), med).await.expect("entries").len(), 115);

    // A batch with a row of no roster record fails whole; a dropped import leaves nothing.
    let mut imp = s.begin_health_import("o1", "h3", med, "bad.csv", now).await.expect("begin");
    let bad = vec![numbered("h3", 9_000, rec(1, 10)), numbered("h3", 9_001, rec(9, 10))];
    assert!(imp.put_all(&bad).await.is_err(), "no such roster record");
    drop(imp);
    let mut imp = s.begin_health_import("o1", "h4", med, "dropped.csv", now).await.expect("begin");
    imp.put_all(&[numbered("h4", 9_002, rec(1, 10))]).await.expect("put");
    drop(imp);
    assert_eq!(s.health_entries_of_record("o1", &rec(1, 10), med).await.expect("entries").len(), 2_500);
}

conformance!(
    checkup_imports_commit_and_are_listed_newest_first,
    a_dropped_checkup_import_leaves_nothing,
    reimporting_an_examination_replaces_it,
    health_entries_are_kept_once_per_record_kind_and_row_key,
    a_dropped_health_import_leaves_nothing_and_imports_wait_for_each_other,
    health_entries_are_written_in_batches_counting_those_stored_already,
);
