//! Versioned consent documents and the members' consents to them (#16 point 8).

use super::*;
use store::DocumentRecord;

fn doc(kind: &str, org: Option<&str>, version: &str, at: OffsetDateTime) -> DocumentRecord {
    DocumentRecord {
        kind: kind.into(),
        organization: org.map(str::to_string),
        version: version.into(),
        title: format!("{kind} {version}"),
        body: "本文".into(),
        title_en: String::new(),
        body_en: String::new(),
        published_at: at,
        published_by: "op1".into(),
    }
}

async fn documents_are_seeded_versioned_and_per_organization(s: Arc<dyn Store>) {
    let now = t0();
    s.insert_org(&org("o1", "133033", true), now).await.expect("org");
    s.insert_org(&org("o2", "06132013", false), now).await.expect("org");
    // The migration seeds every kind platform-wide, version 2026-04-01.
    let seeded = s.all_documents().await.expect("all");
    let mut kinds: Vec<&str> = seeded.iter().map(|d| d.kind.as_str()).collect();
    kinds.sort_unstable();
    assert_eq!(kinds, ["biometric", "health_data", "org_privacy", "platform_terms", "point_terms"]);
    assert!(seeded.iter().all(|d| d.organization.is_none() && d.version == "2026-04-01" && d.published_by == "system"));
    assert!(seeded.iter().all(|d| !d.body.is_empty() && !d.body_en.is_empty()));
    let health = seeded.iter().find(|d| d.kind == "health_data").expect("health_data");
    assert!(health.body.contains("要配慮個人情報"), "{}", health.body);

    s.publish_document(&doc("platform_terms", None, "2026-10-01", now)).await.expect("publish");
    s.publish_document(&doc("org_privacy", Some("o1"), "2026-10-01", now + Duration::seconds(1))).await.expect("own");
    // The same version of the same kind and organization again: refused; another organization may.
    let dup = s.publish_document(&doc("platform_terms", None, "2026-10-01", now)).await;
    assert!(matches!(dup, Err(StoreError::Duplicate)), "{dup:?}");
    let dup = s.publish_document(&doc("org_privacy", Some("o1"), "2026-10-01", now)).await;
    assert!(matches!(dup, Err(StoreError::Duplicate)), "{dup:?}");
    s.publish_document(&doc("org_privacy", Some("o2"), "2026-10-01", now)).await.expect("other org");

    // An organization sees the platform's versions and its own, oldest first; not another's.
    let o1 = s.documents_for_org("o1").await.expect("o1");
    assert_eq!(o1.len(), 7);
    assert!(o1.iter().all(|d| d.organization.as_deref() != Some("o2")));
    let last = o1.last().expect("last");
    assert_eq!(
        (last.kind.as_str(), last.organization.as_deref(), last.version.as_str()),
        ("org_privacy", Some("o1"), "2026-10-01")
    );
    assert_eq!(last.published_at, now + Duration::seconds(1));
    assert_eq!(last.published_by, "op1");
    assert_eq!(s.all_documents().await.expect("all").len(), 8);
}

async fn consents_are_accepted_again_and_withdrawn(s: Arc<dyn Store>) {
    let now = t0();
    s.insert_org(&org("o1", "133033", true), now).await.expect("org");
    let old = ConsentRecord {
        doc: "platform_terms".into(),
        version: "2026-04-01".into(),
        accepted_at: now,
        withdrawn_at: None,
    };
    s.create_user(&user("u1", "o1", 1, now), std::slice::from_ref(&old), None).await.expect("user");
    let later = now + Duration::hours(1);
    let new = ConsentRecord {
        doc: "platform_terms".into(),
        version: "2026-10-01".into(),
        accepted_at: later,
        withdrawn_at: None,
    };
    let health = ConsentRecord {
        doc: "health_data".into(),
        version: "2026-04-01".into(),
        accepted_at: later,
        withdrawn_at: None,
    };
    s.record_consents("u1", &[new.clone(), health.clone()]).await.expect("record");
    let got = s.user_consents("u1").await.expect("consents");
    assert_eq!(got, vec![health.clone(), old.clone(), new.clone()]);

    // Withdrawing marks the standing rows of that document only, once.
    let at = later + Duration::minutes(5);
    assert_eq!(s.withdraw_consent("u1", "health_data", at).await.expect("withdraw"), 1);
    assert_eq!(s.withdraw_consent("u1", "health_data", at).await.expect("again"), 0);
    let got = s.user_consents("u1").await.expect("consents");
    assert_eq!(got[0].withdrawn_at, Some(at));
    assert!(got[1..].iter().all(|c| c.withdrawn_at.is_none()));

    // Accepting the same version again makes it stand again, at the new time.
    let again = ConsentRecord { accepted_at: at + Duration::minutes(1), ..health.clone() };
    s.record_consents("u1", std::slice::from_ref(&again)).await.expect("again");
    let got = s.user_consents("u1").await.expect("consents");
    assert_eq!(got[0], again);
    assert!(s.user_consents("u2").await.expect("none").is_empty());
}

conformance!(documents_are_seeded_versioned_and_per_organization, consents_are_accepted_again_and_withdrawn,);
