//! Roster imports, look-ups and links.

use super::*;

pub(crate) fn roster_row(key: u8, card: u8, person: u8, from: &str, until: Option<&str>) -> RosterRow {
    RosterRow {
        card_index: vec![card; 16],
        record_key: vec![key; 16],
        branch_index: None,
        person_index: vec![person; 16],
        content_mac: vec![key, card, person],
        data_enc: vec![key, card, person],
        eligible_from: from.to_string(),
        eligible_until: until.map(str::to_string),
    }
}

pub(crate) fn rec(key: u8, card: u8) -> RecordRef {
    RecordRef { card_index: vec![card; 16], record_key: vec![key; 16] }
}

pub(crate) fn stats(rows: u64, inserted: u64, updated: u64, ended: u64) -> ImportStats {
    ImportStats { rows, inserted, updated, ended }
}

async fn roster_import_reimport_and_eligibility(s: Arc<dyn Store>) {
    let now = t0();
    s.insert_org(&org("o1", "133033", true), now).await.expect("org");
    s.insert_org(&org("o2", "06132013", false), now).await.expect("org");
    assert!(
        matches!(s.begin_roster_import("nope", "i0", now).await.err(), Some(StoreError::NotFound)),
        "unknown organization"
    );
    let mut imp = s.begin_roster_import("o1", "i1", now).await.expect("begin");
    assert!(imp.existing().await.expect("existing").is_empty());
    imp.insert(&[roster_row(1, 10, 20, "2020-04-01", None), roster_row(2, 11, 21, "2020-04-01", None)])
        .await
        .expect("insert");
    imp.insert(&[roster_row(3, 12, 22, "2021-04-01", Some("2030-03-31"))]).await.expect("insert");
    imp.commit(stats(3, 3, 0, 0)).await.expect("commit");
    assert_eq!(s.roster_count("o1").await.expect("count"), 3);
    assert_eq!(s.roster_count("o2").await.expect("count"), 0);
    let m = s.find_roster_matches("o1", &[10; 16], &[20; 16]).await.expect("match");
    assert_eq!(m.len(), 1);
    assert_eq!(
        (&m[0].record, m[0].eligible_until.as_deref(), m[0].linked_user_id.as_deref()),
        (&rec(1, 10), None, None)
    );
    assert_eq!(m[0].data_enc, vec![1, 10, 20]);
    assert!(
        s.find_roster_matches("o1", &[10; 16], &[21; 16]).await.expect("match").is_empty(),
        "card and person must both match"
    );
    assert!(s.find_roster_matches("o2", &[10; 16], &[20; 16]).await.expect("match").is_empty(), "other organization");

    // The next import sees what is stored, updates record 1, ends 2 and 3 (2 is linked to an
    // account and stays linked) and adds 4.
    s.create_user(&user("u1", "o1", 1, now), &[], None).await.expect("user");
    s.link_roster_record("o1", &rec(2, 11), "u1", now).await.expect("link");
    let mut imp = s.begin_roster_import("o1", "i2", now).await.expect("begin");
    let mut existing = imp.existing().await.expect("existing");
    existing.sort_by(|a, b| a.record_key.cmp(&b.record_key));
    assert_eq!(existing.len(), 3);
    assert_eq!(
        existing[2],
        StoredRecord {
            card_index: vec![12; 16],
            record_key: vec![3; 16],
            content_mac: vec![3, 12, 22],
            eligible_until: Some("2030-03-31".into())
        }
    );
    let mut changed = roster_row(1, 10, 20, "2020-04-01", Some("2027-03-31"));
    changed.data_enc = vec![9, 9];
    changed.content_mac = vec![9];
    imp.update(&[changed]).await.expect("update");
    imp.insert(&[roster_row(4, 13, 23, "2026-04-01", None)]).await.expect("insert");
    imp.end(&[rec(2, 11), rec(3, 12)], "2026-11-23").await.expect("end");
    imp.commit(stats(2, 1, 1, 2)).await.expect("commit");
    assert_eq!(s.roster_count("o1").await.expect("count"), 4, "records are never deleted by an import");
    let m1 = &s.find_roster_matches("o1", &[10; 16], &[20; 16]).await.expect("match")[0];
    assert_eq!((m1.eligible_until.as_deref(), m1.data_enc.as_slice()), (Some("2027-03-31"), &[9u8, 9][..]));
    let m2 = &s.find_roster_matches("o1", &[11; 16], &[21; 16]).await.expect("match")[0];
    assert_eq!((m2.eligible_until.as_deref(), m2.linked_user_id.as_deref()), (Some("2026-11-23"), Some("u1")));
    let m3 = &s.find_roster_matches("o1", &[12; 16], &[22; 16]).await.expect("match")[0];
    assert_eq!(m3.eligible_until.as_deref(), Some("2026-11-23"));
    let mut imp = s.begin_roster_import("o1", "i3", now).await.expect("begin");
    let existing = imp.existing().await.expect("existing");
    assert!(
        existing.iter().any(|r| r.record_key == vec![1; 16] && r.content_mac == vec![9]),
        "the update replaced the content MAC"
    );
    drop(imp);

    // A record that exists already cannot be inserted again.
    let mut imp = s.begin_roster_import("o1", "i4", now).await.expect("begin");
    assert!(imp.insert(&[roster_row(4, 13, 23, "2026-04-01", None)]).await.is_err());
}

async fn unfinished_imports_change_nothing(s: Arc<dyn Store>) {
    let now = t0();
    s.insert_org(&org("o1", "133033", true), now).await.expect("org");
    let mut imp = s.begin_roster_import("o1", "i1", now).await.expect("begin");
    imp.insert(&[roster_row(1, 10, 20, "2020-04-01", None)]).await.expect("insert");
    imp.commit(stats(1, 1, 0, 0)).await.expect("commit");

    let mut imp = s.begin_roster_import("o1", "i2", now).await.expect("begin");
    imp.insert(&[roster_row(2, 11, 21, "2020-04-01", None)]).await.expect("insert");
    imp.update(&[roster_row(1, 10, 20, "2020-04-01", Some("2020-12-31"))]).await.expect("update");
    imp.end(&[rec(1, 10)], "2020-12-31").await.expect("end");
    drop(imp); // an error or an interrupt before commit
    assert_eq!(s.roster_count("o1").await.expect("count"), 1);
    let m = &s.find_roster_matches("o1", &[10; 16], &[20; 16]).await.expect("match")[0];
    assert_eq!(m.eligible_until, None, "the old roster is untouched");
}

async fn roster_imports_of_one_org_wait_for_each_other(s: Arc<dyn Store>) {
    let now = t0();
    s.insert_org(&org("o1", "133033", true), now).await.expect("org");
    let mut first = s.begin_roster_import("o1", "i1", now).await.expect("begin");
    first.insert(&[roster_row(1, 10, 20, "2020-04-01", None)]).await.expect("insert");
    let s2 = s.clone();
    let second = tokio::spawn(async move {
        let mut imp = s2.begin_roster_import("o1", "i2", now).await.expect("begin");
        let seen = imp.existing().await.expect("existing").len();
        imp.commit(stats(0, 0, 0, 0)).await.expect("commit");
        seen
    });
    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    assert!(!second.is_finished(), "the second import waits for the first");
    first.commit(stats(1, 1, 0, 0)).await.expect("commit");
    assert_eq!(second.await.expect("join"), 1, "and then sees what the first wrote");
}

async fn roster_links_are_one_to_one_under_races(s: Arc<dyn Store>) {
    let now = t0();
    s.insert_org(&org("o1", "133033", true), now).await.expect("org");
    let mut imp = s.begin_roster_import("o1", "i1", now).await.expect("begin");
    imp.insert(&[roster_row(1, 10, 20, "2020-04-01", None), roster_row(2, 11, 21, "2020-04-01", None)])
        .await
        .expect("insert");
    imp.commit(stats(2, 2, 0, 0)).await.expect("commit");
    for i in 0..6u8 {
        s.create_user(&user(&format!("u{i}"), "o1", i, now), &[], None).await.expect("user");
    }
    let racers: Vec<_> = (0..6)
        .map(|i| {
            let s = s.clone();
            tokio::spawn(async move { s.link_roster_record("o1", &rec(1, 10), &format!("u{i}"), now).await })
        })
        .collect();
    let mut winners = Vec::new();
    for (i, r) in racers.into_iter().enumerate() {
        match r.await.expect("join") {
            Ok(()) => winners.push(i),
            Err(StoreError::Duplicate) => {}
            Err(e) => panic!("unexpected: {e}"),
        }
    }
    assert_eq!(winners.len(), 1, "exactly one account links the record");
    let winner = format!("u{}", winners[0]);
    let m = &s.find_roster_matches("o1", &[10; 16], &[20; 16]).await.expect("match")[0];
    assert_eq!(m.linked_user_id.as_deref(), Some(winner.as_str()));
    let link = s.roster_link_of_user(&winner).await.expect("link").expect("linked");
    assert_eq!((link.org_id.as_str(), &link.record, link.linked_at), ("o1", &rec(1, 10), now));
    // The same account cannot take a second record either.
    assert!(matches!(s.link_roster_record("o1", &rec(2, 11), &winner, now).await, Err(StoreError::Duplicate)));
    let loser = if winner == "u0" { "u1" } else { "u0" };
    assert_eq!(s.roster_link_of_user(loser).await.expect("link"), None);
    s.link_roster_record("o1", &rec(2, 11), loser, now).await.expect("another record is free");
    // A link needs a record that exists.
    s.create_user(&user("u9", "o1", 9, now), &[], None).await.expect("user");
    assert!(s.link_roster_record("o1", &rec(7, 77), "u9", now).await.is_err());
}

async fn a_roster_record_is_found_by_its_keys(s: Arc<dyn Store>) {
    let now = t0();
    s.insert_org(&org("o1", "133033", true), now).await.expect("org");
    let mut imp = s.begin_roster_import("o1", "i1", now).await.expect("begin");
    imp.insert(&[roster_row(1, 10, 20, "2020-04-01", Some("2030-03-31"))]).await.expect("insert");
    imp.commit(stats(1, 1, 0, 0)).await.expect("commit");
    s.create_user(&user("u1", "o1", 1, now), &[], None).await.expect("user");
    s.link_roster_record("o1", &rec(1, 10), "u1", now).await.expect("link");
    let link = s.roster_link_of_user("u1").await.expect("link").expect("linked");
    let r = s.get_roster_record(&link.org_id, &link.record).await.expect("get").expect("present");
    assert_eq!(
        (r.data_enc.as_slice(), r.eligible_until.as_deref(), r.linked_user_id.as_deref()),
        (&[1u8, 10, 20][..], Some("2030-03-31"), Some("u1"))
    );
    assert_eq!(s.get_roster_record("o1", &rec(2, 10)).await.expect("get"), None);
    assert_eq!(s.get_roster_record("o2", &rec(1, 10)).await.expect("get"), None, "keys are per organization");
}

conformance!(
    roster_import_reimport_and_eligibility,
    unfinished_imports_change_nothing,
    roster_imports_of_one_org_wait_for_each_other,
    roster_links_are_one_to_one_under_races,
    a_roster_record_is_found_by_its_keys,
);
