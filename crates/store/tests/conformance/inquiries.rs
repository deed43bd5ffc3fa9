//! The customer center.

use super::*;
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

async fn inquiries_are_answered_and_closed_with_their_mails_and_audit_rows(s: Arc<dyn Store>) {
    let now = t0();
    s.insert_org(&org("o1", "133033", true), now).await.expect("org");
    s.create_user(&user("u1", "o1", 1, now), &[], None).await.expect("user");
    s.insert_operator(&operator("op1", 1, "reviewer", now)).await.expect("operator");

    s.create_inquiry(&inquiry("q1", None, now), &mail("m1", now)).await.expect("visitor inquiry");
    s.create_inquiry(&inquiry("q2", Some("u1"), now + Duration::minutes(1)), &mail("m2", now))
        .await
        .expect("member inquiry");
    s.create_inquiry(&inquiry("q3", None, now + Duration::minutes(2)), &mail("m3", now)).await.expect("inquiry");
    assert_eq!(s.pending_mail_count().await.expect("mails"), 3, "one confirmation mail each");
    // All or nothing: a duplicate id queues no mail.
    let dup = s.create_inquiry(&inquiry("q1", None, now), &mail("m4", now)).await;
    assert!(matches!(dup, Err(StoreError::Duplicate)), "{dup:?}");
    assert_eq!(s.pending_mail_count().await.expect("mails"), 3);
    // Nor does an inquiry linked to an unknown account.
    assert!(s.create_inquiry(&inquiry("q9", Some("nobody"), now), &mail("m5", now)).await.is_err());
    assert_eq!(s.pending_mail_count().await.expect("mails"), 3);

    let (q2, replies) = s.get_inquiry("q2").await.expect("get").expect("present");
    assert_eq!(q2, inquiry("q2", Some("u1"), now + Duration::minutes(1)));
    assert!(replies.is_empty());
    assert_eq!(s.get_inquiry("nope").await.expect("get"), None);

    let at = now + Duration::hours(1);
    let reply = InquiryReply {
        id: "r1".into(),
        inquiry_id: "q1".into(),
        operator_id: "op1".into(),
        body_enc: vec![7; 30],
        created_at: at,
    };
    s.reply_inquiry(&reply, &mail("m6", at), &audit(at, Some("op1"), "inquiry.reply", Some("q1")))
        .await
        .expect("reply");
    let (q1, replies) = s.get_inquiry("q1").await.expect("get").expect("present");
    assert_eq!((q1.status.as_str(), q1.updated_at), ("answered", at));
    assert_eq!(replies, vec![reply.clone()]);
    assert_eq!(s.pending_mail_count().await.expect("mails"), 4);

    s.close_inquiry("q3", at, &audit(at, Some("op1"), "inquiry.close", Some("q3"))).await.expect("close");
    let (q3, _) = s.get_inquiry("q3").await.expect("get").expect("present");
    assert_eq!((q3.status.as_str(), q3.closed_at), ("closed", Some(at)));
    // Closed is final: no second close, no reply, nothing written.
    let again = s.close_inquiry("q3", at, &audit(at, Some("op1"), "inquiry.close", Some("q3"))).await;
    assert!(matches!(again, Err(StoreError::Conflict)), "{again:?}");
    let late = InquiryReply { id: "r2".into(), inquiry_id: "q3".into(), ..reply.clone() };
    let refused = s.reply_inquiry(&late, &mail("m7", at), &audit(at, Some("op1"), "inquiry.reply", Some("q3"))).await;
    assert!(matches!(refused, Err(StoreError::Conflict)), "{refused:?}");
    let missing = InquiryReply { id: "r3".into(), inquiry_id: "nope".into(), ..reply };
    let refused =
        s.reply_inquiry(&missing, &mail("m8", at), &audit(at, Some("op1"), "inquiry.reply", Some("nope"))).await;
    assert!(matches!(refused, Err(StoreError::NotFound)), "{refused:?}");
    let refused = s.close_inquiry("nope", at, &audit(at, Some("op1"), "inquiry.close", Some("nope"))).await;
    assert!(matches!(refused, Err(StoreError::NotFound)), "{refused:?}");
    assert_eq!(s.pending_mail_count().await.expect("mails"), 4);
    let log = s.list_audit(None, 10).await.expect("audit");
    assert_eq!(log.iter().map(|e| e.action.as_str()).collect::<Vec<_>>(), ["inquiry.close", "inquiry.reply"]);

    // The inbox: open and answered first, newest first; closed ones last.
    let inbox = s.list_inquiries(10).await.expect("list");
    assert_eq!(inbox.iter().map(|q| q.id.as_str()).collect::<Vec<_>>(), ["q2", "q1", "q3"]);
    assert_eq!(s.list_inquiries(1).await.expect("list").len(), 1);
}

conformance!(inquiries_are_answered_and_closed_with_their_mails_and_audit_rows,);
