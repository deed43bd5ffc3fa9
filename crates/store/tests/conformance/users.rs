//! Accounts, consents, sessions, the step-up counters.

use super::*;
use store::StepUpAttempt;

async fn users_consents_and_duplicate_emails(s: Arc<dyn Store>) {
    let now = t0();
    s.insert_org(&org("o1", "133033", true), now).await.expect("org");
    let f = flow("f1", now);
    s.insert_flow(&f).await.expect("flow");
    let mut done = f.clone();
    done.state = "completed".into();
    let consents = vec![
        ConsentRecord {
            doc: "platform_terms".into(),
            version: "2026-04-01".into(),
            accepted_at: now,
            withdrawn_at: None,
        },
        ConsentRecord { doc: "org_privacy".into(), version: "2026-04-01".into(), accepted_at: now, withdrawn_at: None },
    ];
    s.create_user(&user("u1", "o1", 1, now), &consents, Some(FlowUpdate::new(&done))).await.expect("create");
    assert_eq!(s.get_flow("registration", "f1").await.expect("get").expect("present").state, "completed");
    let u = s.find_user_by_email_index(&[1; 32]).await.expect("find").expect("present");
    assert_eq!((u.id.as_str(), u.org_id.as_str(), u.locale.as_str()), ("u1", "o1", "ja"));
    assert_eq!(s.get_user("u1").await.expect("get"), Some(u));
    assert_eq!(s.user_consents("u1").await.expect("consents").len(), 2);
    assert!(s.find_user_by_email_index(&[2; 32]).await.expect("find").is_none());

    // Same email (index) again: refused, and nothing of that transaction stays.
    let f2 = flow("f2", now);
    s.insert_flow(&f2).await.expect("flow");
    let mut done2 = f2.clone();
    done2.state = "completed".into();
    let dup = s.create_user(&user("u2", "o1", 1, now), &consents, Some(FlowUpdate::new(&done2))).await;
    assert!(matches!(dup, Err(StoreError::Duplicate)), "{dup:?}");
    assert_eq!(s.get_flow("registration", "f2").await.expect("get").expect("present").state, "started");
    assert!(s.get_user("u2").await.expect("get").is_none());
    assert!(s.user_consents("u2").await.expect("consents").is_empty());

    // Two registrations racing for one email: exactly one wins.
    let racers: Vec<_> = (0..6)
        .map(|i| {
            let s = s.clone();
            tokio::spawn(async move { s.create_user(&user(&format!("r{i}"), "o1", 7, now), &[], None).await })
        })
        .collect();
    let mut ok = 0;
    for r in racers {
        match r.await.expect("join") {
            Ok(()) => ok += 1,
            Err(StoreError::Duplicate) => {}
            Err(e) => panic!("unexpected: {e}"),
        }
    }
    assert_eq!(ok, 1);
}

async fn sessions_and_password_changes(s: Arc<dyn Store>) {
    let now = t0();
    s.insert_org(&org("o1", "133033", true), now).await.expect("org");
    s.create_user(&user("u1", "o1", 1, now), &[], None).await.expect("user");
    let session = |h: u8, exp: OffsetDateTime| SessionRecord {
        id_hash: vec![h; 32],
        user_id: "u1".into(),
        kind: "browser".into(),
        created_at: now,
        last_seen_at: now,
        expires_at: exp,
        step_up_until: None,
        device: None,
    };
    s.create_session(&session(1, now + Duration::hours(2))).await.expect("session");
    s.create_session(&session(2, now + Duration::hours(2))).await.expect("session");
    s.create_session(&session(3, now - Duration::seconds(1))).await.expect("session");
    assert_eq!(s.get_session(&[1; 32]).await.expect("get"), Some(session(1, now + Duration::hours(2))));
    s.touch_session(&[1; 32], now + Duration::minutes(5), now + Duration::hours(3)).await.expect("touch");
    let touched = s.get_session(&[1; 32]).await.expect("get").expect("present");
    assert_eq!((touched.last_seen_at, touched.expires_at), (now + Duration::minutes(5), now + Duration::hours(3)));
    assert_eq!(s.delete_expired_sessions(now).await.expect("expired"), 1);
    s.delete_session(&[2; 32]).await.expect("delete");
    assert!(s.get_session(&[2; 32]).await.expect("get").is_none());

    // A new password ends every session of the user.
    s.create_session(&session(4, now + Duration::hours(2))).await.expect("session");
    s.set_password("u1", "$argon2id$new", now + Duration::minutes(9), None).await.expect("set");
    assert!(s.get_session(&[1; 32]).await.expect("get").is_none());
    assert!(s.get_session(&[4; 32]).await.expect("get").is_none());
    let u = s.get_user("u1").await.expect("get").expect("present");
    assert_eq!((u.password_hash.as_str(), u.password_changed_at), ("$argon2id$new", now + Duration::minutes(9)));
    assert!(matches!(s.set_password("nobody", "x", now, None).await, Err(StoreError::NotFound)));
    s.create_session(&session(5, now + Duration::hours(2))).await.expect("session");
    assert_eq!(s.delete_user_sessions("u1").await.expect("delete"), 1);
}

async fn step_up_opens_one_session_and_wrong_answers_lock_the_member(s: Arc<dyn Store>) {
    let now = t0();
    s.insert_org(&org("o1", "133033", true), now).await.expect("org");
    s.create_user(&user("u1", "o1", 1, now), &[], None).await.expect("user");
    for h in [1u8, 2] {
        let record = SessionRecord {
            id_hash: vec![h; 32],
            user_id: "u1".into(),
            kind: "browser".into(),
            created_at: now,
            last_seen_at: now,
            expires_at: now + Duration::hours(2),
            step_up_until: None,
            device: None,
        };
        s.create_session(&record).await.expect("session");
    }
    // The answer opens the session it was given in, not the member's other sessions.
    s.set_session_step_up(&[1; 32], Some(now + Duration::minutes(15))).await.expect("step up");
    assert_eq!(
        s.get_session(&[1; 32]).await.expect("get").expect("present").step_up_until,
        Some(now + Duration::minutes(15))
    );
    assert_eq!(s.get_session(&[2; 32]).await.expect("get").expect("present").step_up_until, None);
    s.set_session_step_up(&[1; 32], None).await.expect("close");
    assert_eq!(s.get_session(&[1; 32]).await.expect("get").expect("present").step_up_until, None);
    // Closing the user's step-ups closes every session's.
    for h in [1u8, 2] {
        s.set_session_step_up(&[h; 32], Some(now + Duration::minutes(15))).await.expect("step up");
    }
    s.close_user_step_ups("u1").await.expect("close all");
    for h in [1u8, 2] {
        assert_eq!(s.get_session(&[h; 32]).await.expect("get").expect("present").step_up_until, None);
    }

    // Answers are counted before they are checked; the fifth locks until the given instant,
    // and while the lock runs nothing more is counted.
    assert_eq!(s.step_up_failures("u1").await.expect("read"), None);
    let lock = now + Duration::hours(1);
    for n in 1..=4 {
        let f = s.count_step_up_answer("u1", now, 5, lock).await.expect("count");
        assert_eq!(f, StepUpAttempt::Counted(StepUpFailures { failures: n, locked_until: None }));
    }
    let f = s.count_step_up_answer("u1", now + Duration::minutes(1), 5, lock).await.expect("fifth");
    assert_eq!(f, StepUpAttempt::Counted(StepUpFailures { failures: 5, locked_until: Some(lock) }), "still checked");
    let f = s.count_step_up_answer("u1", now + Duration::minutes(2), 5, lock + Duration::minutes(2)).await;
    assert_eq!(f.expect("sixth"), StepUpAttempt::Locked { until: lock }, "not counted, the lock is not extended");
    assert_eq!(
        s.step_up_failures("u1").await.expect("read"),
        Some(StepUpFailures { failures: 5, locked_until: Some(lock) })
    );
    // After the lock the count starts again; a correct answer forgets it (and a lock).
    let later = lock + Duration::seconds(1);
    let f = s.count_step_up_answer("u1", later, 5, later + Duration::hours(1)).await.expect("after");
    assert_eq!(f, StepUpAttempt::Counted(StepUpFailures { failures: 1, locked_until: None }));
    s.open_step_up("u1", &[1; 32], later + Duration::minutes(15)).await.expect("clear");
    assert_eq!(s.step_up_failures("u1").await.expect("read"), None);
    let opened = s.get_session(&[1; 32]).await.expect("get").expect("present").step_up_until;
    assert_eq!(opened, Some(later + Duration::minutes(15)), "the same transaction opens the session");
    let f = s.count_step_up_answer("u1", later, 1, later + Duration::hours(1)).await.expect("max 1");
    assert_eq!(
        f,
        StepUpAttempt::Counted(StepUpFailures { failures: 1, locked_until: Some(later + Duration::hours(1)) })
    );
    s.open_step_up("u1", &[9; 32], later).await.expect("clear the lock");
    assert!(matches!(s.count_step_up_answer("u1", later, 5, later).await.expect("open"), StepUpAttempt::Counted(_)));
}

/// Answers sent together are counted one by one before any is checked: exactly `max` are
/// counted (and may be checked), all others find the lock.
async fn concurrent_step_up_answers_stop_at_the_lock(s: Arc<dyn Store>) {
    let now = t0();
    s.insert_org(&org("o1", "133033", true), now).await.expect("org");
    s.create_user(&user("u1", "o1", 1, now), &[], None).await.expect("user");
    let tasks: Vec<_> = (0..20)
        .map(|_| {
            let s = s.clone();
            tokio::spawn(async move { s.count_step_up_answer("u1", now, 5, now + Duration::hours(1)).await })
        })
        .collect();
    let mut counted = Vec::new();
    for t in tasks {
        match t.await.expect("join").expect("count") {
            StepUpAttempt::Counted(f) => counted.push(f.failures),
            StepUpAttempt::Locked { until } => assert_eq!(until, now + Duration::hours(1)),
        }
    }
    counted.sort_unstable();
    assert_eq!(counted, [1, 2, 3, 4, 5]);
    assert_eq!(s.step_up_failures("u1").await.expect("read").expect("present").failures, 5);
}

/// Account settings: the member's session list, ending one of them, a password change that
/// keeps the current session only, and a new email address (refused when another account has it).
async fn account_settings_sessions_password_and_email(s: Arc<dyn Store>) {
    let now = t0();
    s.insert_org(&org("o1", "133033", true), now).await.expect("org");
    s.create_user(&user("u1", "o1", 1, now), &[], None).await.expect("user");
    s.create_user(&user("u2", "o1", 2, now), &[], None).await.expect("user");
    let session = |h: u8, user: &str, seen: i64, exp: OffsetDateTime, device: Option<&str>| SessionRecord {
        id_hash: vec![h; 32],
        user_id: user.into(),
        kind: if h == 2 { "api".into() } else { "browser".into() },
        created_at: now,
        last_seen_at: now + Duration::minutes(seen),
        expires_at: exp,
        step_up_until: None,
        device: device.map(str::to_string),
    };
    let later = now + Duration::hours(2);
    s.create_session(&session(1, "u1", 1, later, Some("Chrome / Android"))).await.expect("session");
    s.create_session(&session(2, "u1", 5, later, None)).await.expect("session");
    s.create_session(&session(3, "u1", 3, later, Some("Safari / iPhone"))).await.expect("session");
    s.create_session(&session(4, "u1", 9, now, None)).await.expect("expired session");
    s.create_session(&session(5, "u2", 2, later, None)).await.expect("other user's session");
    let listed = s.user_sessions("u1", now).await.expect("list");
    assert_eq!(listed.iter().map(|r| r.id_hash[0]).collect::<Vec<_>>(), [2, 3, 1], "live ones, latest use first");
    assert_eq!(listed[2], session(1, "u1", 1, later, Some("Chrome / Android")), "the device label is kept");

    // Ending a session: only the member's own.
    assert!(!s.delete_user_session("u1", &[5; 32]).await.expect("not u1's"));
    assert!(s.get_session(&[5; 32]).await.expect("get").is_some());
    assert!(s.delete_user_session("u1", &[3; 32]).await.expect("delete"));
    assert!(!s.delete_user_session("u1", &[3; 32]).await.expect("gone already"));
    assert_eq!(s.user_sessions("u1", now).await.expect("list").len(), 2);

    // A password change keeps the session it was made in and ends the member's others.
    s.change_password("u1", "$argon2id$changed", now + Duration::minutes(7), &[1; 32]).await.expect("change");
    let u = s.get_user("u1").await.expect("get").expect("present");
    assert_eq!((u.password_hash.as_str(), u.password_changed_at), ("$argon2id$changed", now + Duration::minutes(7)));
    assert!(s.get_session(&[1; 32]).await.expect("get").is_some(), "the current session stays");
    assert!(s.get_session(&[2; 32]).await.expect("get").is_none());
    assert!(s.get_session(&[5; 32]).await.expect("get").is_some(), "another member's session stays");
    assert!(matches!(s.change_password("nobody", "x", now, &[1; 32]).await, Err(StoreError::NotFound)));

    // A new address: found by its index, the old one no longer; another account's is refused.
    s.create_session(&session(6, "u1", 6, later, None)).await.expect("session");
    s.set_user_email("u1", &[3; 32], &[8; 40], None, &[1; 32]).await.expect("new email");
    assert!(s.get_session(&[1; 32]).await.expect("get").is_some(), "an address change keeps its session…");
    assert!(s.get_session(&[6; 32]).await.expect("get").is_none(), "…and ends the member's others");
    assert!(s.get_session(&[5; 32]).await.expect("get").is_some(), "another member's session stays");
    assert_eq!(s.find_user_by_email_index(&[3; 32]).await.expect("find").map(|u| u.email_enc), Some(vec![8; 40]));
    assert!(s.find_user_by_email_index(&[1; 32]).await.expect("find").is_none());
    let taken = s.set_user_email("u1", &[2; 32], &[7; 40], None, &[1; 32]).await;
    assert!(matches!(taken, Err(StoreError::Duplicate)), "{taken:?}");
    assert_eq!(s.get_user("u1").await.expect("get").expect("present").email_enc, vec![8; 40], "unchanged");
    assert!(matches!(s.set_user_email("nobody", &[4; 32], &[7; 40], None, &[1; 32]).await, Err(StoreError::NotFound)));
    // With a flow: the flow's step and the address change together.
    let f = flow("f1", now);
    s.insert_flow(&f).await.expect("flow");
    let mut done = f.clone();
    done.state = "completed".into();
    s.set_user_email("u1", &[4; 32], &[6; 40], Some(FlowUpdate::new(&done)), &[1; 32]).await.expect("with flow");
    assert_eq!(s.get_flow("registration", "f1").await.expect("get").expect("present").state, "completed");
    assert!(s.find_user_by_email_index(&[4; 32]).await.expect("find").is_some());

    // The language preference.
    s.set_user_locale("u1", "en").await.expect("locale");
    assert_eq!(s.get_user("u1").await.expect("get").expect("present").locale, "en");
    assert_eq!(s.get_user("u2").await.expect("get").expect("present").locale, "ja", "only u1's");
    assert!(matches!(s.set_user_locale("nobody", "en").await, Err(StoreError::NotFound)));

    // Devices: the first one of a member, then known; another is new; per member.
    use store::DeviceSeen;
    assert_eq!(s.remember_device("u1", &[1; 32], now).await.expect("first"), DeviceSeen::New { first: true });
    assert_eq!(s.remember_device("u1", &[1; 32], now).await.expect("again"), DeviceSeen::Known);
    assert_eq!(s.remember_device("u1", &[2; 32], now).await.expect("other"), DeviceSeen::New { first: false });
    assert_eq!(s.remember_device("u2", &[1; 32], now).await.expect("u2"), DeviceSeen::New { first: true });
}

conformance!(
    account_settings_sessions_password_and_email,
    users_consents_and_duplicate_emails,
    sessions_and_password_changes,
    step_up_opens_one_session_and_wrong_answers_lock_the_member,
    concurrent_step_up_answers_stop_at_the_lock,
);
