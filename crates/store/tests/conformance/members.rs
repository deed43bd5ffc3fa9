//! What the console's member pages read: a member's applications and inquiries, inquiries by
//! the first characters of their id (受付番号), and the reviewers' decided cases.

use super::*;
use crate::ekyc::ekyc;
use crate::operators::{audit, operator};

fn inquiry(id: &str, user_id: Option<&str>, at: OffsetDateTime) -> InquiryRecord {
    InquiryRecord {
        id: id.to_string(),
        user_id: user_id.map(str::to_string),
        category: "login".into(),
        email_enc: vec![5; 40],
        message_enc: vec![6; 60],
        locale: "ja".into(),
        status: "open".into(),
        created_at: at,
        updated_at: at,
        closed_at: None,
    }
}

async fn a_members_applications_and_inquiries_are_listed_newest_first(s: Arc<dyn Store>) {
    let now = t0();
    s.insert_org(&org("o1", "133033", true), now).await.expect("org");
    s.create_user(&user("u1", "o1", 1, now), &[], None).await.expect("user");
    s.create_user(&user("u2", "o1", 2, now), &[], None).await.expect("user");

    // Applications: one decided, a newer one open; another member's is not listed.
    let mut first = ekyc("a1", "u1", now);
    first.open = false;
    first.state = "rejected".into();
    s.insert_ekyc(&first).await.expect("insert");
    s.insert_ekyc(&ekyc("a2", "u1", now + Duration::hours(1))).await.expect("insert");
    s.insert_ekyc(&ekyc("b1", "u2", now + Duration::hours(2))).await.expect("insert");
    let ids = |v: Vec<EkycRecord>| v.into_iter().map(|a| a.id).collect::<Vec<_>>();
    assert_eq!(ids(s.ekyc_of_user("u1", 10).await.expect("list")), ["a2", "a1"]);
    assert_eq!(ids(s.ekyc_of_user("u1", 1).await.expect("list")), ["a2"], "the limit holds");
    assert!(s.ekyc_of_user("nobody", 10).await.expect("list").is_empty());

    // Inquiries with the account attached, newest first; a visitor's is not among them.
    let q1 = inquiry("3f2a9c1e-0000-4000-8000-000000000001", Some("u1"), now);
    let q2 = inquiry("3f2a9c1f-0000-4000-8000-000000000002", Some("u1"), now + Duration::minutes(5));
    let q3 = inquiry("3f2a9c1e-0000-4000-8000-000000000003", None, now + Duration::minutes(9));
    for (i, q) in [&q1, &q2, &q3].into_iter().enumerate() {
        s.create_inquiry(q, &mail(&format!("m{i}"), now)).await.expect("inquiry");
    }
    assert_eq!(s.inquiries_of_user("u1", 10).await.expect("list"), vec![q2.clone(), q1.clone()]);
    assert_eq!(s.inquiries_of_user("u1", 1).await.expect("list"), vec![q2.clone()]);
    assert!(s.inquiries_of_user("u2", 10).await.expect("list").is_empty());

    // By the id's first characters: exact characters, newest first; wildcards mean themselves.
    assert_eq!(s.find_inquiries_by_id_prefix("3f2a9c1e-").await.expect("find"), vec![q3.clone(), q1.clone()]);
    assert_eq!(s.find_inquiries_by_id_prefix("3f2a9c1f-").await.expect("find"), vec![q2]);
    assert!(s.find_inquiries_by_id_prefix("3f2a9c1%").await.expect("find").is_empty());
    assert!(s.find_inquiries_by_id_prefix("3f2a9c1_-").await.expect("find").is_empty());
    assert!(s.find_inquiries_by_id_prefix("3F2A9C1E-").await.expect("find").is_empty(), "case matters");
    assert!(s.find_inquiries_by_id_prefix("").await.expect("find").is_empty(), "an empty prefix finds nothing");

    // Applications by the id's first characters (the 申請 receipt's 受付番号), alike.
    for id in ["5e6f7a8b-0000-4000-8000-000000000001", "5e6f7a8c-0000-4000-8000-000000000002"] {
        let decided = EkycRecord { open: false, state: "approved".into(), ..ekyc(id, "u2", now) };
        s.insert_ekyc(&decided).await.expect("insert");
    }
    assert_eq!(
        ids(s.find_ekyc_by_id_prefix("5e6f7a8b-").await.expect("find")),
        ["5e6f7a8b-0000-4000-8000-000000000001"]
    );
    assert!(s.find_ekyc_by_id_prefix("5e6f7a8%").await.expect("find").is_empty());
    assert!(s.find_ekyc_by_id_prefix("5E6F7A8B-").await.expect("find").is_empty(), "case matters");
    assert!(s.find_ekyc_by_id_prefix("").await.expect("find").is_empty(), "an empty prefix finds nothing");
}

/// A submitted application `id` of `user` in `org`, decided by `op` at `at`.
async fn decided(s: &Arc<dyn Store>, id: &str, user: &str, org: &str, approve: bool, op: &str, at: OffsetDateTime) {
    let mut a = ekyc(id, user, t0());
    a.org_id = org.into();
    s.insert_ekyc(&a).await.expect("insert");
    let mut current = s.get_ekyc(id).await.expect("get").expect("present");
    current.state = if approve { "approved" } else { "rejected" }.into();
    current.open = false;
    current.submitted_at = Some(t0());
    current.decided_at = Some(at);
    let review = EkycReview {
        application_id: id.into(),
        operator_id: op.into(),
        decision: current.state.clone(),
        reason: (!approve).then(|| "face_mismatch".to_string()),
        note_enc: None,
        decided_at: at,
    };
    s.decide_ekyc(&current, &review, &mail(&format!("m-{id}"), at), &audit(at, Some(op), "ekyc.approve", Some(id)))
        .await
        .expect("decide");
}

async fn decided_cases_are_paged_newest_first_by_decision_and_organization(s: Arc<dyn Store>) {
    let now = t0();
    s.insert_org(&org("o1", "133033", true), now).await.expect("org");
    s.insert_org(&org("o2", "06132013", false), now).await.expect("org");
    s.insert_operator(&operator("op1", 1, "reviewer", now)).await.expect("operator");
    for (i, u) in ["u1", "u2", "u3", "u4"].into_iter().enumerate() {
        let org_id = if u == "u4" { "o2" } else { "o1" };
        s.create_user(&user(u, org_id, i as u8, now), &[], None).await.expect("user");
    }
    // An undecided application is not listed.
    s.insert_ekyc(&ekyc("open", "u1", now)).await.expect("insert");
    decided(&s, "a2", "u2", "o1", false, "op1", now + Duration::hours(2)).await;
    decided(&s, "a3", "u3", "o1", true, "op1", now + Duration::hours(3)).await;
    decided(&s, "a4", "u4", "o2", true, "op1", now + Duration::hours(4)).await;

    let ids = |v: Vec<store::DecidedReview>| v.into_iter().map(|r| r.application_id).collect::<Vec<_>>();
    assert_eq!(ids(s.decided_reviews(None, None, 10, 0).await.expect("list")), ["a4", "a3", "a2"]);
    assert_eq!(ids(s.decided_reviews(None, None, 2, 0).await.expect("page 1")), ["a4", "a3"]);
    assert_eq!(ids(s.decided_reviews(None, None, 2, 2).await.expect("page 2")), ["a2"]);
    assert_eq!(ids(s.decided_reviews(Some("approved"), None, 10, 0).await.expect("approved")), ["a4", "a3"]);
    let rejected = s.decided_reviews(Some("rejected"), None, 10, 0).await.expect("rejected");
    assert_eq!(
        rejected,
        vec![store::DecidedReview {
            application_id: "a2".into(),
            org_id: "o1".into(),
            user_id: "u2".into(),
            operator_id: "op1".into(),
            decision: "rejected".into(),
            reason: Some("face_mismatch".into()),
            decided_at: now + Duration::hours(2),
        }]
    );
    let o1 = ["o1".to_string()];
    assert_eq!(ids(s.decided_reviews(None, Some(&o1), 10, 0).await.expect("o1")), ["a3", "a2"]);
    assert_eq!(ids(s.decided_reviews(Some("approved"), Some(&o1), 10, 0).await.expect("o1")), ["a3"]);
    assert!(s.decided_reviews(None, Some(&[]), 10, 0).await.expect("none").is_empty());
}

conformance!(
    a_members_applications_and_inquiries_are_listed_newest_first,
    decided_cases_are_paged_newest_first_by_decision_and_organization,
);
