//! Retention: the purges that keep personal data only as long as it is needed.

use super::*;
use crate::ekyc::ekyc;
use crate::operators::{audit, operator};

async fn sent_mails_do_not_stay_in_the_outbox_and_unsent_ones_are_never_purged(s: Arc<dyn Store>) {
    let now = t0();
    for id in ["old", "recent", "unsent"] {
        s.enqueue_mail(&mail(id, now)).await.expect("enqueue");
    }
    s.mark_mail_sent("old", now).await.expect("sent");
    s.mark_mail_sent("recent", now + Duration::days(5)).await.expect("sent");
    s.mark_mail_failed("unsent", "connection refused", now + Duration::minutes(1), true).await.expect("failed");

    assert_eq!(s.delete_sent_mails(now - Duration::seconds(1)).await.expect("purge"), 0, "none sent that early");
    assert_eq!(s.delete_sent_mails(now + Duration::days(1)).await.expect("purge"), 1);
    assert_eq!(s.delete_sent_mails(now + Duration::days(1)).await.expect("purge"), 0, "already gone");
    // The row is gone: its id can be used again.
    s.enqueue_mail(&mail("old", now)).await.expect("the purged id is free");
    s.mark_mail_sent("old", now + Duration::days(9)).await.expect("sent");

    // Long after, every sent mail goes; the unsent one (its code still to deliver) stays.
    assert_eq!(s.delete_sent_mails(now + Duration::days(365)).await.expect("purge"), 2);
    assert_eq!(s.pending_mail_count().await.expect("count"), 1);
    let due = s.claim_due_mails(now + Duration::days(400), Duration::seconds(60), 10).await.expect("claim");
    assert_eq!(due.iter().map(|m| m.id.as_str()).collect::<Vec<_>>(), ["unsent"]);
}

async fn dead_codes_do_not_pile_up_and_live_ones_survive(s: Arc<dyn Store>) {
    let now = t0();
    // Used at `now`.
    s.insert_flow(&flow("f1", now)).await.expect("flow");
    s.issue_code(&code("used", "f1", 1, now), None, None).await.expect("issue");
    s.update_flow(FlowUpdate::new(&flow("f1", now)).consuming("used", now)).await.expect("used by its step");
    // Voided by a resend a minute later; the resend expires unused.
    s.issue_code(&code("voided", "f2", 2, now), None, None).await.expect("issue");
    s.issue_code(&code("expired", "f2", 3, now + Duration::minutes(1)), None, None).await.expect("resend");
    // Issued a day later, still live.
    let later = now + Duration::days(1);
    s.issue_code(&code("live", "f3", 4, later), None, None).await.expect("issue");

    assert_eq!(s.delete_dead_codes(now - Duration::seconds(1)).await.expect("purge"), 0);
    // Used at `now`, voided at `now + 1 min`; the resend is live until `now + 11 min`.
    assert_eq!(s.delete_dead_codes(now + Duration::minutes(5)).await.expect("purge"), 2);
    assert_eq!(s.delete_dead_codes(now + Duration::minutes(11)).await.expect("purge"), 1, "expired");
    assert_eq!(s.delete_dead_codes(later).await.expect("purge"), 0, "the live code is kept");
    assert_eq!(s.live_code("registration", "f3").await.expect("live").map(|c| c.id), Some("live".to_string()));
    // The purged rows are gone: their ids can be stored again.
    for (id, mac) in [("used", 5), ("voided", 6), ("expired", 7)] {
        s.issue_code(&code(id, "f9", mac, later), None, None).await.expect("the purged id is free");
    }
    assert!(matches!(s.issue_code(&code("live", "f9", 8, later), None, None).await, Err(StoreError::Duplicate)));
}

async fn closed_inquiries_do_not_outlive_their_period_and_open_ones_stay(s: Arc<dyn Store>) {
    let now = t0();
    s.insert_operator(&operator("op1", 1, "reviewer", now)).await.expect("operator");
    let inquiry = |id: &str| InquiryRecord {
        id: id.to_string(),
        user_id: None,
        category: "login".into(),
        email_enc: vec![5; 40],
        message_enc: vec![6; 60],
        locale: "ja".into(),
        status: "open".into(),
        created_at: now,
        updated_at: now,
        closed_at: None,
    };
    for (i, id) in ["answered-closed", "closed-later", "open", "answered"].iter().enumerate() {
        s.create_inquiry(&inquiry(id), &mail(&format!("m{i}"), now)).await.expect("inquiry");
    }
    for (i, id) in ["answered-closed", "answered"].iter().enumerate() {
        let reply = InquiryReply {
            id: format!("r{i}"),
            inquiry_id: id.to_string(),
            operator_id: "op1".into(),
            body_enc: vec![7; 30],
            created_at: now,
        };
        s.reply_inquiry(&reply, &mail(&format!("rm{i}"), now), &audit(now, Some("op1"), "inquiry.reply", Some(id)))
            .await
            .expect("reply");
    }
    s.close_inquiry("answered-closed", now, &audit(now, Some("op1"), "inquiry.close", Some("answered-closed")))
        .await
        .expect("close");
    let later = now + Duration::days(30);
    s.close_inquiry("closed-later", later, &audit(later, Some("op1"), "inquiry.close", Some("closed-later")))
        .await
        .expect("close");

    assert_eq!(s.delete_closed_inquiries(now - Duration::seconds(1)).await.expect("purge"), 0);
    assert_eq!(s.delete_closed_inquiries(now + Duration::days(1)).await.expect("purge"), 1);
    assert_eq!(s.get_inquiry("answered-closed").await.expect("get"), None, "gone with its reply");
    assert!(s.get_inquiry("closed-later").await.expect("get").is_some());
    assert_eq!(s.delete_closed_inquiries(now + Duration::days(3650)).await.expect("purge"), 1);
    // Open and answered inquiries are never purged, whatever their age.
    assert!(s.get_inquiry("open").await.expect("get").is_some());
    let (_, replies) = s.get_inquiry("answered").await.expect("get").expect("present");
    assert_eq!(replies.len(), 1);
    // The audit log (which names inquiries by id only) is untouched and still verifies.
    let log = s.list_audit(None, 10).await.expect("audit");
    assert_eq!(log.len(), 4);
    assert!(s.verify_audit_chain().await.expect("verify").broken.is_none(), "the chain still holds");
}

async fn sessions_past_their_absolute_lifetime_do_not_linger(s: Arc<dyn Store>) {
    let now = t0();
    s.insert_org(&org("o1", "133033", true), now).await.expect("org");
    s.create_user(&user("u1", "o1", 1, now), &[], None).await.expect("user");
    s.insert_operator(&operator("op1", 1, "reviewer", now)).await.expect("operator");
    // Begun at `begun`, and (as an older release or a bug might have written it) valid for
    // far longer than any session may live.
    let session = |h: u8, begun: OffsetDateTime| SessionRecord {
        id_hash: vec![h; 32],
        user_id: "u1".into(),
        kind: "api".into(),
        created_at: begun,
        last_seen_at: begun,
        expires_at: begun + Duration::days(365),
        step_up_until: None,
        device: None,
    };
    let console = |h: u8, begun: OffsetDateTime| OperatorSessionRecord {
        id_hash: vec![h; 32],
        operator_id: "op1".into(),
        created_at: begun,
        last_seen_at: begun,
        expires_at: begun + Duration::days(365),
    };
    s.create_session(&session(1, now)).await.expect("session");
    s.create_session(&session(2, now + Duration::hours(2))).await.expect("session");
    s.create_operator_session(&console(1, now)).await.expect("console session");
    s.create_operator_session(&console(2, now + Duration::hours(2))).await.expect("console session");

    let cut = now + Duration::hours(1);
    assert_eq!(s.delete_sessions_begun_before(cut).await.expect("purge"), 1);
    assert!(s.get_session(&[1; 32]).await.expect("get").is_none());
    assert!(s.get_session(&[2; 32]).await.expect("get").is_some());
    assert_eq!(s.delete_operator_sessions_begun_before(cut).await.expect("purge"), 1);
    assert!(s.get_operator_session(&[1; 32]).await.expect("get").is_none());
    assert!(s.get_operator_session(&[2; 32]).await.expect("get").is_some());
}

async fn abandoned_ekyc_applications_are_found_and_submitted_or_decided_ones_are_not(s: Arc<dyn Store>) {
    let now = t0();
    s.insert_org(&org("o1", "133033", true), now).await.expect("org");
    for (i, u) in ["u1", "u2", "u3", "u4", "u5"].iter().enumerate() {
        s.create_user(&user(u, "o1", i as u8 + 1, now), &[], None).await.expect("user");
    }
    let image = |id: &str, app: &str| EkycImage {
        id: id.into(),
        application_id: app.into(),
        kind: "document_front".into(),
        sha256: vec![7; 32],
        size: 1234,
        created_at: now,
        deleted_at: None,
    };
    // Abandoned after the document (u1), and a newer one (u2).
    s.insert_ekyc(&ekyc("a1", "u1", now)).await.expect("insert");
    s.add_ekyc_image(&image("i1", "a1")).await.expect("image");
    s.add_ekyc_image(&image("i2", "a1")).await.expect("image");
    s.insert_ekyc(&ekyc("a2", "u2", now + Duration::days(10))).await.expect("insert");
    s.add_ekyc_image(&image("i3", "a2")).await.expect("image");
    // Submitted, waiting for a reviewer (u3): its images are the reviewer's evidence.
    let mut pending = ekyc("a3", "u3", now);
    pending.state = "pending_review".into();
    pending.submitted_at = Some(now);
    s.insert_ekyc(&pending).await.expect("insert");
    s.add_ekyc_image(&image("i4", "a3")).await.expect("image");
    // Decided (u4): `ekyc_image_retention_days` is its rule, not this one.
    let mut decided = ekyc("a4", "u4", now);
    decided.state = "approved".into();
    decided.open = false;
    decided.submitted_at = Some(now);
    decided.decided_at = Some(now);
    s.insert_ekyc(&decided).await.expect("insert");
    s.add_ekyc_image(&image("i5", "a4")).await.expect("image");
    // Abandoned before any image (u5): nothing to forget.
    s.insert_ekyc(&ekyc("a5", "u5", now)).await.expect("insert");

    let ids = |v: Vec<EkycRecord>| v.into_iter().map(|a| a.id).collect::<Vec<_>>();
    let found = s.abandoned_ekyc_applications(now - Duration::seconds(1), 10).await.expect("query");
    assert!(found.is_empty(), "{:?}", ids(found));
    let found = s.abandoned_ekyc_applications(now + Duration::days(1), 10).await.expect("query");
    assert_eq!(found, vec![ekyc("a1", "u1", now)], "the whole record, to rewrite it");
    assert_eq!(ids(s.abandoned_ekyc_applications(now + Duration::days(11), 10).await.expect("q")), ["a1", "a2"]);
    assert_eq!(ids(s.abandoned_ekyc_applications(now + Duration::days(11), 1).await.expect("q")), ["a1"], "limit");

    // Once its images are deleted the application is not found again…
    s.mark_ekyc_image_deleted("i1", now + Duration::days(1)).await.expect("mark");
    assert_eq!(ids(s.abandoned_ekyc_applications(now + Duration::days(1), 10).await.expect("q")), ["a1"]);
    s.mark_ekyc_image_deleted("i2", now + Duration::days(1)).await.expect("mark");
    assert!(s.abandoned_ekyc_applications(now + Duration::days(1), 10).await.expect("q").is_empty());
    // …until the member comes back, captures again and leaves again.
    let mut resumed = s.get_ekyc("a1").await.expect("get").expect("present");
    resumed.updated_at = now + Duration::days(40);
    s.update_ekyc(&resumed).await.expect("resume");
    s.add_ekyc_image(&image("i6", "a1")).await.expect("image");
    assert_eq!(ids(s.abandoned_ekyc_applications(now + Duration::days(39), 10).await.expect("q")), ["a2"]);
    assert_eq!(ids(s.abandoned_ekyc_applications(now + Duration::days(41), 10).await.expect("q")), ["a2", "a1"]);
}

conformance!(
    sent_mails_do_not_stay_in_the_outbox_and_unsent_ones_are_never_purged,
    dead_codes_do_not_pile_up_and_live_ones_survive,
    closed_inquiries_do_not_outlive_their_period_and_open_ones_stay,
    sessions_past_their_absolute_lifetime_do_not_linger,
    abandoned_ekyc_applications_are_found_and_submitted_or_decided_ones_are_not,
);
