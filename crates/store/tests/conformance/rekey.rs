//! Re-keying: sealed columns read in primary-key batches and replaced only where unchanged.

use super::*;
use crate::ekyc::ekyc;
use crate::roster::{rec, roster_row, stats};
use store::{SealedColumn, SealedKey};

async fn all(s: &Arc<dyn Store>, column: SealedColumn, limit: i64) -> Vec<store::SealedRow> {
    let mut out = Vec::new();
    let mut after: Option<SealedKey> = None;
    loop {
        let rows = s.sealed_batch(column, after.as_ref(), limit).await.expect("batch");
        assert!(rows.len() as i64 <= limit);
        let Some(last) = rows.last() else { break };
        after = Some(last.key.clone());
        out.extend(rows);
    }
    out
}

async fn sealed_columns_are_read_in_key_order_in_batches(s: Arc<dyn Store>) {
    let now = t0();
    s.insert_org(&org("o1", "133033", true), now).await.expect("org");
    for (i, u) in ["u3", "u1", "u2"].iter().enumerate() {
        s.create_user(&user(u, "o1", i as u8, now), &[], None).await.expect("user");
    }
    let users = all(&s, SealedColumn::UserEmail, 2).await;
    assert_eq!(users.iter().map(|r| r.key.id.as_str()).collect::<Vec<_>>(), ["u1", "u2", "u3"]);
    assert!(users.iter().all(|r| r.sealed == vec![9; 40] && r.key.record.is_none() && r.kind.is_none()));

    s.insert_flow(&flow("f1", now)).await.expect("flow");
    let flows = all(&s, SealedColumn::FlowData, 10).await;
    assert_eq!(flows.len(), 1);
    assert_eq!((flows[0].kind.as_deref(), flows[0].sealed.as_slice()), (Some("registration"), &[1u8, 2, 3][..]));

    let mut imp = s.begin_roster_import("o1", "r1", now).await.expect("begin");
    imp.insert(&[
        roster_row(2, 10, 21, "2020-04-01", None),
        roster_row(1, 10, 20, "2020-04-01", None),
        roster_row(3, 11, 22, "2020-04-01", None),
    ])
    .await
    .expect("insert");
    imp.commit(stats(3, 3, 0, 0)).await.expect("commit");
    let roster = all(&s, SealedColumn::RosterData, 2).await;
    assert_eq!(
        roster.iter().map(|r| r.key.record.clone().expect("record")).collect::<Vec<_>>(),
        [rec(1, 10), rec(2, 10), rec(3, 11)],
        "(org, card index, record key) order across batches"
    );
    assert!(roster.iter().all(|r| r.key.id == "o1" && r.org_id.as_deref() == Some("o1")));
    assert_eq!(roster[0].sealed, vec![1, 10, 20]);

    let mut imp = s.begin_checkup_import("o1", "c1", "results.zip", now).await.expect("begin");
    let row =
        CheckupRow { id: "k1".into(), record: rec(1, 10), examined_on: "2024-06-10".into(), data_enc: vec![4; 8] };
    imp.put(&row).await.expect("put");
    imp.commit(CheckupImportStats { documents: 1, inserted: 1, replaced: 0 }).await.expect("commit");
    let checkups = all(&s, SealedColumn::CheckupData, 10).await;
    assert_eq!(checkups.len(), 1);
    let c = &checkups[0];
    assert_eq!(
        (c.key.id.as_str(), c.org_id.as_deref(), c.record.clone(), c.date.as_deref()),
        ("k1", Some("o1"), Some(rec(1, 10)), Some("2024-06-10"))
    );

    // Nullable columns without values, and empty tables, give nothing.
    assert!(all(&s, SealedColumn::EkycReviewNote, 10).await.is_empty());
    for column in SealedColumn::ALL {
        all(&s, column, 1).await;
    }
}

async fn sealed_values_are_replaced_only_when_unchanged(s: Arc<dyn Store>) {
    let now = t0();
    s.insert_org(&org("o1", "133033", true), now).await.expect("org");
    s.create_user(&user("u1", "o1", 1, now), &[], None).await.expect("user");
    let key = SealedKey { id: "u1".into(), record: None };
    assert!(!s.replace_sealed(SealedColumn::UserEmail, &key, &[8; 40], &[7; 40]).await.expect("stale"));
    assert_eq!(all(&s, SealedColumn::UserEmail, 5).await[0].sealed, vec![9; 40], "a changed row is left alone");
    assert!(s.replace_sealed(SealedColumn::UserEmail, &key, &[9; 40], &[7; 40]).await.expect("replace"));
    assert_eq!(all(&s, SealedColumn::UserEmail, 5).await[0].sealed, vec![7; 40]);
    let gone = SealedKey { id: "nobody".into(), record: None };
    assert!(!s.replace_sealed(SealedColumn::UserEmail, &gone, &[7; 40], &[6; 40]).await.expect("absent"));

    let mut imp = s.begin_roster_import("o1", "r1", now).await.expect("begin");
    imp.insert(&[roster_row(1, 10, 20, "2020-04-01", None), roster_row(2, 10, 21, "2020-04-01", None)])
        .await
        .expect("insert");
    imp.commit(stats(2, 2, 0, 0)).await.expect("commit");
    let rows = all(&s, SealedColumn::RosterData, 5).await;
    assert!(s.replace_sealed(SealedColumn::RosterData, &rows[1].key, &rows[1].sealed, &[5; 9]).await.expect("roster"));
    let after = all(&s, SealedColumn::RosterData, 5).await;
    assert_eq!((after[0].sealed.clone(), after[1].sealed.clone()), (vec![1, 10, 20], vec![5; 9]), "only that record");
}

async fn live_images_are_listed_in_id_order(s: Arc<dyn Store>) {
    let now = t0();
    s.insert_org(&org("o1", "133033", true), now).await.expect("org");
    s.create_user(&user("u1", "o1", 1, now), &[], None).await.expect("user");
    s.insert_ekyc(&ekyc("a1", "u1", now)).await.expect("ekyc");
    for id in ["i3", "i1", "i2", "i4"] {
        let image = EkycImage {
            id: id.into(),
            application_id: "a1".into(),
            kind: "selfie_frontal".into(),
            sha256: vec![1; 32],
            size: 3,
            created_at: now,
            deleted_at: None,
        };
        s.add_ekyc_image(&image).await.expect("image");
    }
    s.mark_ekyc_image_deleted("i2", now).await.expect("delete");
    assert_eq!(s.live_image_ids(None, 2).await.expect("ids"), ["i1", "i3"]);
    assert_eq!(s.live_image_ids(Some("i3"), 2).await.expect("ids"), ["i4"]);
    assert!(s.live_image_ids(Some("i4"), 2).await.expect("ids").is_empty());
}

conformance!(
    sealed_columns_are_read_in_key_order_in_batches,
    sealed_values_are_replaced_only_when_unchanged,
    live_images_are_listed_in_id_order,
);
