//! Flows with optimistic versions, one-time codes and their mail.

use super::*;

async fn flows_use_optimistic_versions(s: Arc<dyn Store>) {
    let now = t0();
    let f = flow("f1", now);
    s.insert_flow(&f).await.expect("insert");
    assert!(matches!(s.insert_flow(&f).await, Err(StoreError::Duplicate)));
    assert_eq!(s.get_flow("registration", "f1").await.expect("get"), Some(f.clone()));
    assert_eq!(s.get_flow("password_reset", "f1").await.expect("get"), None, "kind is part of the key");

    let mut next = f.clone();
    next.state = "org_verified".into();
    next.data = vec![4, 5];
    next.updated_at = now + Duration::seconds(5);
    s.update_flow(FlowUpdate::new(&next)).await.expect("update");
    let stored = s.get_flow("registration", "f1").await.expect("get").expect("present");
    assert_eq!((stored.state.as_str(), stored.version, stored.data.as_slice()), ("org_verified", 1, &[4u8, 5][..]));

    // A writer holding the old version loses.
    let stale = s.update_flow(FlowUpdate::new(&next)).await;
    assert!(matches!(stale, Err(StoreError::Conflict)), "{stale:?}");

    let mut old = flow("f2", now - Duration::days(2));
    old.expires_at = now - Duration::seconds(1);
    s.insert_flow(&old).await.expect("insert");
    assert_eq!(s.delete_expired_flows(now).await.expect("delete"), 1);
    assert!(s.get_flow("registration", "f2").await.expect("get").is_none());
    assert!(s.get_flow("registration", "f1").await.expect("get").is_some());
}

async fn codes_count_attempts_and_void_on_resend(s: Arc<dyn Store>) {
    let now = t0();
    let f = flow("f1", now);
    s.insert_flow(&f).await.expect("insert");
    let mut sent = f.clone();
    sent.state = "code_sent".into();
    s.issue_code(&code("c1", "f1", 1, now), Some(&mail("m1", now)), Some(FlowUpdate::new(&sent))).await.expect("issue");
    assert_eq!(s.get_flow("registration", "f1").await.expect("get").expect("present").state, "code_sent");
    assert_eq!(s.pending_mail_count().await.expect("count"), 1, "the mail is queued with the code");

    // Each attempt is counted before comparison, up to the maximum.
    for n in 1..=5 {
        match s.attempt_code("registration", "f1", now, 5).await.expect("attempt") {
            CodeAttempt::Counted(c) => {
                assert_eq!((c.id.as_str(), c.attempts), ("c1", n));
                assert_eq!(c.code_mac, vec![1; 32]);
            }
            other => panic!("attempt {n}: {other:?}"),
        }
    }
    assert_eq!(s.attempt_code("registration", "f1", now, 5).await.expect("attempt"), CodeAttempt::Exhausted);

    // A resend voids the old code; the new one starts at zero attempts.
    let later = now + Duration::seconds(90);
    s.issue_code(&code("c2", "f1", 2, later), Some(&mail("m2", later)), None).await.expect("reissue");
    let live = s.live_code("registration", "f1").await.expect("live").expect("present");
    assert_eq!((live.id.as_str(), live.attempts), ("c2", 0));
    match s.attempt_code("registration", "f1", later, 5).await.expect("attempt") {
        CodeAttempt::Counted(c) => assert_eq!(c.id, "c2"),
        other => panic!("{other:?}"),
    }
    assert!(!use_code(&s, "f1", "c1", later).await, "a voided code cannot be used");
    assert!(use_code(&s, "f1", "c2", later).await);
    assert!(!use_code(&s, "f1", "c2", later).await, "a code is used once");
    assert_eq!(s.attempt_code("registration", "f1", later, 5).await.expect("attempt"), CodeAttempt::Missing);
    // The used code is found for a retry of its step while it is valid, never after.
    let used = s.used_code("registration", "f1", later).await.expect("used").map(|c| c.id);
    assert_eq!(used.as_deref(), Some("c2"));
    assert_eq!(s.used_code("password_reset", "f1", later).await.expect("used"), None, "per purpose");
    assert_eq!(s.used_code("registration", "f1", later + Duration::minutes(10)).await.expect("used"), None);

    // Expiry.
    s.issue_code(&code("c3", "f1", 3, later), Some(&mail("m3", later)), None).await.expect("reissue");
    let expired_at = later + Duration::minutes(10);
    assert_eq!(s.attempt_code("registration", "f1", expired_at, 5).await.expect("attempt"), CodeAttempt::Expired);
    assert!(matches!(
        s.attempt_code("registration", "f1", expired_at - Duration::seconds(1), 5).await.expect("attempt"),
        CodeAttempt::Counted(_)
    ));

    // Voiding ends the code; another purpose or subject is untouched.
    s.issue_code(
        &NewCode { purpose: "password_reset".into(), ..code("c4", "f1", 4, later) },
        Some(&mail("m4", later)),
        None,
    )
    .await
    .expect("issue");
    s.void_codes("registration", "f1", later).await.expect("void");
    assert_eq!(s.attempt_code("registration", "f1", later, 5).await.expect("attempt"), CodeAttempt::Missing);
    assert!(matches!(
        s.attempt_code("password_reset", "f1", later, 5).await.expect("attempt"),
        CodeAttempt::Counted(_)
    ));
}

async fn issuing_a_code_is_all_or_nothing(s: Arc<dyn Store>) {
    let now = t0();
    let f = flow("f1", now);
    s.insert_flow(&f).await.expect("insert");
    let mut stale = f.clone();
    stale.version = 7;
    let r = s.issue_code(&code("c1", "f1", 1, now), Some(&mail("m1", now)), Some(FlowUpdate::new(&stale))).await;
    assert!(matches!(r, Err(StoreError::Conflict)), "{r:?}");
    assert!(s.live_code("registration", "f1").await.expect("live").is_none(), "no code without the flow update");
    assert_eq!(s.pending_mail_count().await.expect("count"), 0, "no mail without the flow update");
}

/// Uses up `code_id` with an update of the flow `flow_id` (the way a step uses its code);
/// `false` when the update was refused, and then the flow is unchanged.
async fn use_code(s: &Arc<dyn Store>, flow_id: &str, code_id: &str, at: OffsetDateTime) -> bool {
    let before = s.get_flow("registration", flow_id).await.expect("get").expect("present");
    let mut next = before.clone();
    next.state = "completed".into();
    next.updated_at = at;
    match s.update_flow(FlowUpdate::new(&next).consuming(code_id, at)).await {
        Ok(()) => true,
        Err(StoreError::Conflict) => {
            let after = s.get_flow("registration", flow_id).await.expect("get").expect("present");
            assert_eq!(after, before, "a refused step changes nothing");
            false
        }
        Err(e) => panic!("{e:?}"),
    }
}

async fn a_step_that_fails_leaves_its_code_valid(s: Arc<dyn Store>) {
    let now = t0();
    s.insert_org(&org("o1", "133033", true), now).await.expect("org");
    s.insert_flow(&flow("f1", now)).await.expect("insert");
    s.issue_code(&code("c1", "f1", 1, now), Some(&mail("m1", now)), None).await.expect("issue");
    // A flow update that loses on its version does not use the code up.
    let mut stale = flow("f1", now);
    stale.version = 7;
    let r = s.update_flow(FlowUpdate::new(&stale).consuming("c1", now)).await;
    assert!(matches!(r, Err(StoreError::Conflict)), "{r:?}");
    assert_eq!(s.live_code("registration", "f1").await.expect("live").map(|c| c.id).as_deref(), Some("c1"));
    assert_eq!(s.used_code("registration", "f1", now).await.expect("used"), None);
    // Nor does an account that cannot be created (its address is taken).
    s.create_user(&user("u1", "o1", 1, now), &[], None).await.expect("first account");
    let mut next = flow("f1", now);
    next.state = "completed".into();
    let r = s.create_user(&user("u2", "o1", 1, now), &[], Some(FlowUpdate::new(&next).consuming("c1", now))).await;
    assert!(matches!(r, Err(StoreError::Duplicate)), "{r:?}");
    assert_eq!(s.live_code("registration", "f1").await.expect("live").map(|c| c.id).as_deref(), Some("c1"));
    assert_eq!(s.get_flow("registration", "f1").await.expect("get").expect("present").version, 0);
    // Done whole: the account, the flow and the code.
    s.create_user(&user("u2", "o1", 2, now), &[], Some(FlowUpdate::new(&next).consuming("c1", now)))
        .await
        .expect("create");
    assert!(s.live_code("registration", "f1").await.expect("live").is_none());
    assert_eq!(s.get_flow("registration", "f1").await.expect("get").expect("present").state, "completed");
}

async fn concurrent_guesses_never_exceed_the_limit(s: Arc<dyn Store>) {
    let now = t0();
    s.insert_flow(&flow("f1", now)).await.expect("insert");
    s.insert_flow(&flow("f2", now)).await.expect("insert");
    s.issue_code(&code("c1", "f1", 1, now), Some(&mail("m1", now)), None).await.expect("issue");
    let tasks: Vec<_> = (0..20)
        .map(|_| {
            let s = s.clone();
            tokio::spawn(async move { s.attempt_code("registration", "f1", now, 5).await })
        })
        .collect();
    let mut counted = 0;
    for t in tasks {
        if let CodeAttempt::Counted(_) = t.await.expect("join").expect("attempt") {
            counted += 1;
        }
    }
    assert_eq!(counted, 5);
    // Two steps using one code (each with its own flow, so only the code decides).
    let consumers: Vec<_> = ["f1", "f2"]
        .into_iter()
        .map(|f| {
            let s = s.clone();
            tokio::spawn(async move { use_code(&s, f, "c1", now).await })
        })
        .collect();
    let mut won = 0;
    for t in consumers {
        if t.await.expect("join") {
            won += 1;
        }
    }
    assert_eq!(won, 1, "exactly one consumer wins");
}

/// A code without a mail (the decoy of a password reset for an address without an account)
/// is kept, counted, voided on resend and exhausted exactly like a mailed one; nothing is queued.
async fn decoy_codes_are_counted_like_mailed_ones_and_queue_no_mail(s: Arc<dyn Store>) {
    let now = t0();
    let f = flow("f1", now);
    s.insert_flow(&f).await.expect("insert");
    let mut sent = f.clone();
    sent.state = "code_sent".into();
    s.issue_code(&code("d1", "f1", 1, now), None, Some(FlowUpdate::new(&sent))).await.expect("decoy");
    assert_eq!(s.get_flow("registration", "f1").await.expect("get").expect("present").state, "code_sent");
    assert_eq!(s.pending_mail_count().await.expect("count"), 0, "a decoy is never mailed");
    for n in 1..=5 {
        match s.attempt_code("registration", "f1", now, 5).await.expect("attempt") {
            CodeAttempt::Counted(c) => assert_eq!((c.id.as_str(), c.attempts), ("d1", n)),
            other => panic!("attempt {n}: {other:?}"),
        }
    }
    assert_eq!(s.attempt_code("registration", "f1", now, 5).await.expect("attempt"), CodeAttempt::Exhausted);
    let later = now + Duration::seconds(90);
    s.issue_code(&code("d2", "f1", 2, later), None, None).await.expect("decoy resend");
    assert_eq!(
        s.live_code("registration", "f1").await.expect("live").map(|c| (c.id, c.attempts)),
        Some(("d2".into(), 0))
    );
    assert_eq!(
        s.attempt_code("registration", "f1", later + Duration::minutes(10), 5).await.expect("attempt"),
        CodeAttempt::Expired
    );
    assert_eq!(s.pending_mail_count().await.expect("count"), 0);
}

conformance!(
    flows_use_optimistic_versions,
    codes_count_attempts_and_void_on_resend,
    issuing_a_code_is_all_or_nothing,
    a_step_that_fails_leaves_its_code_valid,
    concurrent_guesses_never_exceed_the_limit,
    decoy_codes_are_counted_like_mailed_ones_and_queue_no_mail,
);
