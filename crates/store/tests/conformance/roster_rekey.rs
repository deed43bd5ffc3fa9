//! Re-keying an organization's roster family: one transaction, all or nothing.

use super::*;
use crate::roster::{rec, roster_row, stats};
use store::{RekeyedCheckup, RekeyedHealthEntry, RekeyedLink, RekeyedRecord, RosterFamily, RosterRekey};

/// o1 (roster MAC key `m0`) with records 1, 2 (card 10) and 3 (card 11; ended); account u1
/// linked to record 1, which has a checkup result and a health entry; o2 with record 1 too.
async fn family_fixture(s: &Arc<dyn Store>) {
    let now = t0();
    s.insert_org(&org("o1", "133033", true), now).await.expect("org");
    s.insert_org_with_mac_key(&org("o2", "06132013", false), Some("m0"), now).await.expect("org");
    for (o, rows) in [
        (
            "o1",
            vec![
                roster_row(1, 10, 20, "2020-04-01", None),
                roster_row(2, 10, 21, "2020-04-01", None),
                roster_row(3, 11, 22, "2020-04-01", Some("2026-03-31")),
            ],
        ),
        ("o2", vec![roster_row(1, 10, 20, "2020-04-01", None)]),
    ] {
        let mut imp = s.begin_roster_import(o, &format!("r-{o}"), now).await.expect("begin");
        imp.insert(&rows).await.expect("insert");
        imp.commit(stats(rows.len() as u64, rows.len() as u64, 0, 0)).await.expect("commit");
    }
    s.create_user(&user("u1", "o1", 1, now), &[], None).await.expect("user");
    s.link_roster_record("o1", &rec(1, 10), "u1", now).await.expect("link");
    let mut imp = s.begin_checkup_import("o1", "c1", "results.zip", now).await.expect("begin");
    imp.put(&CheckupRow {
        id: "k1".into(),
        record: rec(1, 10),
        examined_on: "2024-06-10".into(),
        data_enc: vec![5; 24],
    })
    .await
    .expect("put");
    imp.commit(CheckupImportStats { documents: 1, inserted: 1, replaced: 0 }).await.expect("commit");
    let mut imp = s.begin_health_import("o1", "h1", HealthKind::Medication, "m.csv", now).await.expect("begin");
    imp.put(&HealthEntryRow {
        id: "e1".into(),
        record: rec(1, 10),
        occurred_on: "2024-07-01".into(),
        row_key: vec![6; 16],
        data_enc: vec![6; 24],
    })
    .await
    .expect("put");
    imp.commit(HealthImportStats { rows: 1, inserted: 1 }).await.expect("commit");
}

/// The new keys of a record: everything + 100.
fn moved(r: &RecordRef) -> RecordRef {
    RecordRef {
        card_index: r.card_index.iter().map(|b| b + 100).collect(),
        record_key: r.record_key.iter().map(|b| b + 100).collect(),
    }
}

/// The whole family of o1 under "m1", as the application would hand it over.
fn plan(family: &RosterFamily) -> RosterRekey {
    RosterRekey {
        org_id: "o1".into(),
        from_key: family.mac_key.clone(),
        to_key: "m1".into(),
        records: family
            .records
            .iter()
            .map(|r| {
                let new = moved(&r.record);
                RekeyedRecord {
                    old: r.record.clone(),
                    old_data_enc: r.data_enc.clone(),
                    row: RosterRow {
                        card_index: new.card_index,
                        record_key: new.record_key,
                        branch_index: Some(vec![1; 16]),
                        person_index: r.person_index.iter().map(|b| b + 100).collect(),
                        content_mac: vec![9; 16],
                        data_enc: r.data_enc.clone(),
                        eligible_from: r.eligible_from.clone(),
                        eligible_until: r.eligible_until.clone(),
                    },
                    updated_at: r.updated_at,
                }
            })
            .collect(),
        links: family
            .links
            .iter()
            .map(|l| RekeyedLink { old: l.record.clone(), user_id: l.user_id.clone(), new: moved(&l.record) })
            .collect(),
        checkups: family
            .checkups
            .iter()
            .map(|c| RekeyedCheckup {
                id: c.id.clone(),
                old_data_enc: c.data_enc.clone(),
                new: moved(&c.record),
                data_enc: vec![55; 24],
            })
            .collect(),
        health: family
            .health
            .iter()
            .map(|h| RekeyedHealthEntry {
                id: h.id.clone(),
                old_data_enc: h.data_enc.clone(),
                new: moved(&h.record),
                row_key: vec![66; 16],
                data_enc: vec![66; 24],
            })
            .collect(),
    }
}

async fn a_roster_family_is_rekeyed_as_a_whole(s: Arc<dyn Store>) {
    family_fixture(&s).await;
    assert_eq!(s.roster_mac_key("o1").await.expect("key"), None, "NULL is m0");
    assert_eq!(s.roster_mac_key("o2").await.expect("key").as_deref(), Some("m0"));
    assert!(matches!(s.roster_mac_key("nope").await, Err(StoreError::NotFound)));
    assert!(matches!(s.roster_family("nope").await, Err(StoreError::NotFound)));
    let mut imp = s.begin_roster_import("o2", "r-x", t0()).await.expect("begin");
    assert_eq!(imp.mac_key().await.expect("key").as_deref(), Some("m0"), "read under the import's lock");
    drop(imp);

    let family = s.roster_family("o1").await.expect("family");
    assert_eq!(family.mac_key, None);
    assert_eq!(
        family.records.iter().map(|r| r.record.clone()).collect::<Vec<_>>(),
        [rec(1, 10), rec(2, 10), rec(3, 11)]
    );
    assert_eq!(family.records[2].eligible_until.as_deref(), Some("2026-03-31"));
    assert_eq!(family.records[0].updated_at, t0());
    assert_eq!((family.links.len(), family.links[0].user_id.as_str()), (1, "u1"));
    assert_eq!((family.checkups.len(), family.health.len()), (1, 1));
    assert_eq!(family.health[0].kind, HealthKind::Medication);

    s.rekey_roster_family(&plan(&family)).await.expect("rekey");

    assert_eq!(s.roster_mac_key("o1").await.expect("key").as_deref(), Some("m1"));
    assert_eq!(s.roster_count("o1").await.expect("count"), 3);
    assert!(s.find_roster_matches("o1", &[10; 16], &[20; 16]).await.expect("old").is_empty(), "old indexes gone");
    let m = s.find_roster_matches("o1", &[110; 16], &[120; 16]).await.expect("new");
    assert_eq!(m.len(), 1);
    assert_eq!(
        (&m[0].record, m[0].linked_user_id.as_deref(), m[0].data_enc.as_slice(), m[0].branch_index.as_deref()),
        (&rec(101, 110), Some("u1"), &[1u8, 10, 20][..], Some(&[1u8; 16][..])),
        "data kept, link moved"
    );
    let link = s.roster_link_of_user("u1").await.expect("link").expect("linked");
    assert_eq!((link.record, link.linked_at), (rec(101, 110), t0()));
    let results = s.checkup_results_of_record("o1", &rec(101, 110)).await.expect("results");
    assert_eq!((results.len(), results[0].id.as_str(), results[0].data_enc.as_slice()), (1, "k1", &[55u8; 24][..]));
    let entries = s.health_entries_of_record("o1", &rec(101, 110), HealthKind::Medication).await.expect("entries");
    assert_eq!(
        (entries.len(), entries[0].row_key.as_slice(), entries[0].data_enc.as_slice()),
        (1, &[66u8; 16][..], &[66u8; 24][..])
    );
    let after = s.roster_family("o1").await.expect("family");
    assert_eq!(after.records[2].eligible_until.as_deref(), Some("2026-03-31"), "eligibility kept");
    assert_eq!(after.records[2].updated_at, t0());
    assert_eq!(s.roster_count("o2").await.expect("count"), 1, "other organizations untouched");
    assert_eq!(s.roster_family("o2").await.expect("o2").records[0].record, rec(1, 10));

    // Imports read the key under the organization's lock.
    let mut imp = s.begin_roster_import("o1", "r-y", t0()).await.expect("begin");
    assert_eq!(imp.mac_key().await.expect("key").as_deref(), Some("m1"));
    drop(imp);
    let mut imp = s.begin_checkup_import("o1", "c-y", "x.zip", t0()).await.expect("begin");
    assert_eq!(imp.mac_key().await.expect("key").as_deref(), Some("m1"));
    drop(imp);
    let mut imp = s.begin_health_import("o2", "h-y", HealthKind::Expense, "x.csv", t0()).await.expect("begin");
    assert_eq!(imp.mac_key().await.expect("key").as_deref(), Some("m0"));
    drop(imp);

    // The same plan again: o1 names m1 now, so it is refused.
    assert!(matches!(s.rekey_roster_family(&plan(&family)).await, Err(StoreError::Conflict)));
}

/// `change` alters o1's family after it was read: the re-key is a conflict and changes nothing.
async fn refused_after(s: &Arc<dyn Store>, what: &str, change: impl std::future::Future<Output = ()>) {
    let family = s.roster_family("o1").await.expect("family");
    change.await;
    let before = s.roster_family("o1").await.expect("family");
    let result = s.rekey_roster_family(&plan(&family)).await;
    assert!(matches!(result, Err(StoreError::Conflict)), "{what}: {result:?}");
    assert_eq!(s.roster_family("o1").await.expect("family"), before, "{what}: nothing changed");
    assert_eq!(s.roster_mac_key("o1").await.expect("key"), None, "{what}");
}

async fn a_rekey_of_a_family_changed_meanwhile_is_a_conflict(s: Arc<dyn Store>) {
    family_fixture(&s).await;
    let now = t0() + Duration::hours(1);

    refused_after(&s, "record changed", async {
        let mut imp = s.begin_roster_import("o1", "r2", now).await.expect("begin");
        let mut changed = roster_row(2, 10, 21, "2020-04-01", None);
        changed.data_enc = vec![7, 7];
        imp.update(&[changed]).await.expect("update");
        imp.commit(stats(1, 0, 1, 0)).await.expect("commit");
    })
    .await;
    refused_after(&s, "record ended", async {
        let mut imp = s.begin_roster_import("o1", "r3", now).await.expect("begin");
        imp.end(&[rec(2, 10)], "2026-11-30").await.expect("end");
        imp.commit(stats(0, 0, 0, 1)).await.expect("commit");
    })
    .await;
    refused_after(&s, "record added", async {
        let mut imp = s.begin_roster_import("o1", "r4", now).await.expect("begin");
        imp.insert(&[roster_row(4, 12, 23, "2020-04-01", None)]).await.expect("insert");
        imp.commit(stats(1, 1, 0, 0)).await.expect("commit");
    })
    .await;
    refused_after(&s, "link added", async {
        s.create_user(&user("u2", "o1", 2, now), &[], None).await.expect("user");
        s.link_roster_record("o1", &rec(2, 10), "u2", now).await.expect("link");
    })
    .await;
    refused_after(&s, "checkup replaced", async {
        let mut imp = s.begin_checkup_import("o1", "c2", "again.zip", now).await.expect("begin");
        let row =
            CheckupRow { id: "k9".into(), record: rec(1, 10), examined_on: "2024-06-10".into(), data_enc: vec![8; 24] };
        assert!(imp.put(&row).await.expect("put"), "replaced");
        imp.commit(CheckupImportStats { documents: 1, inserted: 0, replaced: 1 }).await.expect("commit");
    })
    .await;
    refused_after(&s, "health entry added", async {
        let mut imp = s.begin_health_import("o1", "h2", HealthKind::Expense, "e.csv", now).await.expect("begin");
        let row = HealthEntryRow {
            id: "e2".into(),
            record: rec(3, 11),
            occurred_on: "2024-08-01".into(),
            row_key: vec![7; 16],
            data_enc: vec![7; 24],
        };
        assert!(!imp.put(&row).await.expect("put"));
        imp.commit(HealthImportStats { rows: 1, inserted: 1 }).await.expect("commit");
    })
    .await;

    // Read from scratch, it goes through.
    let family = s.roster_family("o1").await.expect("family");
    s.rekey_roster_family(&plan(&family)).await.expect("rekey");
    assert_eq!(s.roster_mac_key("o1").await.expect("key").as_deref(), Some("m1"));
    assert_eq!(s.roster_count("o1").await.expect("count"), 4);
    let link = s.roster_link_of_user("u2").await.expect("link").expect("linked");
    assert_eq!(link.record, rec(102, 110));
}

async fn a_rekey_names_the_key_it_was_read_under(s: Arc<dyn Store>) {
    family_fixture(&s).await;
    let family = s.roster_family("o2").await.expect("family");
    assert_eq!(family.mac_key.as_deref(), Some("m0"));
    let mut wrong = plan(&s.roster_family("o1").await.expect("family"));
    wrong.from_key = Some("m7".into());
    assert!(matches!(s.rekey_roster_family(&wrong).await, Err(StoreError::Conflict)), "o1 names m0 (NULL)");
    let mut unknown = plan(&s.roster_family("o1").await.expect("family"));
    unknown.org_id = "nope".into();
    assert!(matches!(s.rekey_roster_family(&unknown).await, Err(StoreError::NotFound)));
    assert_eq!(s.roster_mac_key("o1").await.expect("key"), None);
    // An empty family just names the new key.
    s.insert_org(&org("o3", "131011", false), t0()).await.expect("org");
    let empty = s.roster_family("o3").await.expect("family");
    assert_eq!(empty, RosterFamily::default());
    let rekey = RosterRekey { org_id: "o3".into(), to_key: "k9".into(), ..RosterRekey::default() };
    s.rekey_roster_family(&rekey).await.expect("rekey empty");
    assert_eq!(s.roster_mac_key("o3").await.expect("key").as_deref(), Some("k9"));
}

conformance!(
    a_roster_family_is_rekeyed_as_a_whole,
    a_rekey_of_a_family_changed_meanwhile_is_a_conflict,
    a_rekey_names_the_key_it_was_read_under,
);
