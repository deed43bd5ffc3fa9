//! 特定健診 imports (F5): CDA documents and ZIP deliveries built here, imported for the demo
//! roster (ヤマダ ハナコ, 133033, 記号 1234, 番号 5678, 1990-04-01), on SQLite and PostgreSQL;
//! and `mimoto checkup import` as an operator runs it.

use crate::common::{Backend, Opts, TestApp, PASSWORD};
use app::error::ServiceError;
use app::services::auth::{authenticate, Member};
use app::services::checkups::{self, ImportStats};
use records::checkup::Value;
use records::testing::{hanako_zip, items, zip, Doc, BILLION_LAUGHS, SETTLEMENT};

/// F3 over the API: the member is linked to ヤマダ ハナコ's record.
async fn hanako(t: &TestApp) -> Member {
    let token = t.register("hanako@example.com", PASSWORD).await;
    t.verify_identity(&token).await;
    authenticate(&t.app, &token).await.expect("auth").expect("member")
}

async fn import(t: &TestApp, bytes: Vec<u8>) -> Result<ImportStats, ServiceError> {
    checkups::import_zip(&t.app, "133033", "results.zip", bytes, &mut ()).await
}

fn entry_errors(result: Result<ImportStats, ServiceError>) -> Vec<(String, String)> {
    match result {
        Err(ServiceError::CheckupEntries(errors)) => errors.into_iter().map(|e| (e.entry, e.reason)).collect(),
        other => panic!("expected per-entry errors, got {other:?}"),
    }
}

async fn valid_import_is_sealed_and_readable_for_the_member(t: TestApp) {
    let member = hanako(&t).await;
    assert!(checkups::results_for_member(&t.app, &member, "127.0.0.1").await.expect("results").is_empty());

    let stats = import(&t, hanako_zip()).await.expect("import");
    assert_eq!(stats, ImportStats { documents: 2, inserted: 2, replaced: 0, skipped: 1 });

    // Stored sealed: no value, key, item or facility name in the stored bytes.
    let link = t.app.store.roster_link_of_user(&member.user.id).await.expect("link").expect("linked");
    let stored = t.app.store.checkup_results_of_record(&link.org_id, &link.record).await.expect("stored");
    assert_eq!(stored.iter().map(|r| r.examined_on.as_str()).collect::<Vec<_>>(), ["2024-06-10", "2023-06-05"]);
    for r in &stored {
        for needle in ["\"5.7\"", "\"5.4\"", "hba1c", "158.2", "みらい健診センター", "独自検査項目", "1990-04-01"]
        {
            assert!(!r.data_enc.windows(needle.len()).any(|w| w == needle.as_bytes()), "{needle} stored in clear");
        }
    }

    // The member reads them, newest first, with known and unknown items.
    let results = checkups::results_for_member(&t.app, &member, "127.0.0.1").await.expect("results");
    assert_eq!(results.len(), 2);
    let latest = &results[0];
    assert_eq!(latest.examined_on.to_string(), "2024-06-10");
    assert_eq!(results[1].examined_on.to_string(), "2023-06-05");
    match &latest.item("hba1c").expect("HbA1c").value {
        Value::Quantity { value, unit, .. } => assert_eq!((value.as_str(), unit.as_deref()), ("5.7", Some("%"))),
        other => panic!("{other:?}"),
    }
    let unknown = latest.items.iter().find(|i| i.code == "9Z999000000000001").expect("unknown code kept");
    assert_eq!((unknown.key, unknown.name.as_str()), (None, "独自検査項目"));
    assert_eq!(latest.facility.as_ref().and_then(|f| f.name.as_deref()), Some("みらい健診センター"));

    // Re-importing the same file replaces, never duplicates.
    let again = import(&t, hanako_zip()).await.expect("re-import");
    assert_eq!(again, ImportStats { documents: 2, inserted: 0, replaced: 2, skipped: 1 });
    assert_eq!(checkups::results_for_member(&t.app, &member, "127.0.0.1").await.expect("results").len(), 2);

    // Someone without 本人確認 sees nothing.
    let token = t.register("other@example.com", PASSWORD).await;
    let other = authenticate(&t.app, &token).await.expect("auth").expect("member");
    assert!(checkups::results_for_member(&t.app, &other, "127.0.0.1").await.expect("results").is_empty());
    t.stop().await;
}

async fn unmatched_examinees_refuse_the_whole_import(t: TestApp) {
    let member = hanako(&t).await;
    let good = Doc::hanako("20240610", items("5.7")).xml();
    let mut stranger = Doc::hanako("20240610", items("5.9"));
    stranger.number = "９９９９";
    let mut wrong_birth = Doc::hanako("20240610", items("5.9"));
    wrong_birth.birth = "19900402";
    let mut other_insurer = Doc::hanako("20240610", items("5.9"));
    other_insurer.insurer = "06132013";
    let archive = zip(&[
        ("DATA/a_good.xml", good.as_bytes()),
        ("DATA/b_stranger.xml", stranger.xml().as_bytes()),
        ("DATA/c_birth.xml", wrong_birth.xml().as_bytes()),
        ("DATA/d_insurer.xml", other_insurer.xml().as_bytes()),
    ]);
    let errors = entry_errors(import(&t, archive).await);
    let entries: Vec<&str> = errors.iter().map(|(e, _)| e.as_str()).collect();
    assert_eq!(entries, ["DATA/b_stranger.xml", "DATA/c_birth.xml", "DATA/d_insurer.xml"], "{errors:?}");
    assert!(errors[0].1.contains("no roster record"), "{errors:?}");
    assert!(errors[2].1.contains("insurer number"), "{errors:?}");
    for (_, reason) in &errors {
        for personal in ["9999", "９９９９", "1990", "06132013", "5678"] {
            assert!(!reason.contains(personal), "personal data in {reason}");
        }
    }
    assert!(
        checkups::results_for_member(&t.app, &member, "127.0.0.1").await.expect("results").is_empty(),
        "nothing stored, not even the good entry"
    );

    // The branch number, when both sides have one, must agree (サトウ タロウ has 01).
    let mut wrong_branch = Doc::hanako("20240610", items("5.9"));
    (wrong_branch.number, wrong_branch.branch, wrong_branch.birth) = ("5679", Some("02"), "19851224");
    let errors = entry_errors(import(&t, zip(&[("DATA/x.xml", wrong_branch.xml().as_bytes())])).await);
    assert_eq!(errors.len(), 1);
    // Two documents of one examination in one file are refused too.
    let errors =
        entry_errors(import(&t, zip(&[("DATA/1.xml", good.as_bytes()), ("DATA/2.xml", good.as_bytes())])).await);
    assert_eq!(errors, [("DATA/2.xml".to_string(), "same examinee and examination date as DATA/1.xml".to_string())]);
    // A card written with hyphens and ASCII digits matches the same record.
    let mut hyphens = Doc::hanako("20240610", items("5.7"));
    (hyphens.symbol, hyphens.number, hyphens.insurer) = (Some("12-34"), "56－78", "133033");
    assert_eq!(import(&t, zip(&[("DATA/h.xml", hyphens.xml().as_bytes())])).await.expect("import").inserted, 1);
    t.stop().await;
}

async fn hostile_entity_expansion_is_refused(t: TestApp) {
    let member = hanako(&t).await;
    let good = Doc::hanako("20240610", items("5.7")).xml();
    let archive = zip(&[("DATA/good.xml", good.as_bytes()), ("DATA/lol.xml", BILLION_LAUGHS.as_bytes())]);
    let errors = entry_errors(import(&t, archive).await);
    assert_eq!(errors.len(), 1, "{errors:?}");
    assert_eq!(errors[0].0, "DATA/lol.xml");
    assert!(errors[0].1.contains("DOCTYPE"), "{errors:?}");
    assert!(checkups::results_for_member(&t.app, &member, "127.0.0.1").await.expect("results").is_empty());

    // Not a ZIP, or a ZIP without documents: the archive is refused.
    assert!(matches!(import(&t, b"PK\x03\x04 not really".to_vec()).await, Err(ServiceError::CheckupArchive(_))));
    assert!(matches!(
        import(&t, zip(&[("DATA/c.xml", SETTLEMENT.as_bytes())])).await,
        Err(ServiceError::CheckupArchive(_))
    ));
    assert!(matches!(
        checkups::import_zip(&t.app, "33120015", "x.zip", hanako_zip(), &mut ()).await,
        Err(ServiceError::UnknownOrganization)
    ));
    t.stop().await;
}

on_both_backends!(
    valid_import_is_sealed_and_readable_for_the_member,
    unmatched_examinees_refuse_the_whole_import,
    hostile_entity_expansion_is_refused,
);
