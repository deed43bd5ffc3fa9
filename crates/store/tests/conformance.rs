//! The storage conformance suite: every story runs against SQLite and against a fresh
//! PostgreSQL schema. A backend that fails any of them is not a Mimoto store.

#![allow(clippy::unwrap_used, clippy::expect_used)]

// The fresh-store helpers, compiled here from the library's own file so that the suite runs
// without the `testing` feature (`cargo test -p mimoto-store`).
#[path = "../src/testing.rs"]
mod testing;

use std::sync::Arc;

use domain::insurer::InsurerNumber;
use domain::org::{CardPattern, OrgType, Organization};
use store::{StepUpFailures, 
    CodeAttempt, ConsentRecord, FlowRecord, FlowUpdate, ImportStats, NewCode, NewMail, NewUser, EkycImage, EkycRecord, RecordRef, RosterRow, SessionRecord, Store, StoredRecord,
    StoreError, AuditEntry, EkycReview, NewAuditEntry, OperatorRecord, OperatorSessionRecord, InquiryRecord, InquiryReply,
    CheckupImportStats, CheckupRow, HealthEntryRow, HealthImportStats, HealthKind,
};
use time::{Duration, OffsetDateTime};

fn t0() -> OffsetDateTime {
    OffsetDateTime::from_unix_timestamp(1_790_000_000).expect("valid timestamp")
}

fn org(id: &str, number: &str, points: bool) -> Organization {
    Organization {
        id: id.to_string(),
        insurer_number: InsurerNumber::parse(number).expect("valid insurer number"),
        org_type: OrgType::HealthInsurance,
        name: format!("団体{number}"),
        point_name: points.then(|| "みらいポイント".to_string()),
        checkup_linked: points,
        card_pattern: CardPattern::SymbolAndNumber,
    }
}

fn flow(id: &str, now: OffsetDateTime) -> FlowRecord {
    FlowRecord {
        id: id.to_string(),
        kind: "registration".into(),
        state: "started".into(),
        data: vec![1, 2, 3],
        version: 0,
        created_at: now,
        updated_at: now,
        expires_at: now + Duration::hours(24),
    }
}

fn code(id: &str, subject: &str, mac: u8, now: OffsetDateTime) -> NewCode {
    NewCode {
        id: id.to_string(),
        purpose: "registration".into(),
        subject: subject.to_string(),
        code_mac: vec![mac; 32],
        created_at: now,
        expires_at: now + Duration::minutes(10),
    }
}

fn mail(id: &str, now: OffsetDateTime) -> NewMail {
    NewMail { id: id.to_string(), payload: format!("sealed {id}").into_bytes(), created_at: now }
}

fn user(id: &str, org_id: &str, email_index: u8, now: OffsetDateTime) -> NewUser {
    NewUser {
        id: id.to_string(),
        org_id: org_id.to_string(),
        email_index: vec![email_index; 32],
        email_enc: vec![9; 40],
        password_hash: "$argon2id$v=19$m=19456,t=2,p=1$x$y".into(),
        locale: "ja".into(),
        created_at: now,
    }
}

async fn organizations(s: Arc<dyn Store>) {
    let now = t0();
    s.insert_org(&org("o2", "06132013", false), now).await.expect("insert");
    s.insert_org(&org("o1", "133033", true), now).await.expect("insert");
    let dup = s.insert_org(&org("o3", "133033", false), now).await;
    assert!(matches!(dup, Err(StoreError::Duplicate)), "same insurer number twice: {dup:?}");
    let list = s.list_orgs().await.expect("list");
    assert_eq!(list.iter().map(|o| o.insurer_number.as_str()).collect::<Vec<_>>(), ["06132013", "133033"]);
    let found = s.find_org_by_insurer_number("133033").await.expect("find").expect("present");
    assert_eq!(found, org("o1", "133033", true));
    assert!(s.find_org_by_insurer_number("131011").await.expect("find").is_none());
    assert_eq!(s.get_org("o2").await.expect("get"), Some(org("o2", "06132013", false)));
}

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
    s.update_flow(FlowUpdate { record: &next }).await.expect("update");
    let stored = s.get_flow("registration", "f1").await.expect("get").expect("present");
    assert_eq!((stored.state.as_str(), stored.version, stored.data.as_slice()), ("org_verified", 1, &[4u8, 5][..]));

    // A writer holding the old version loses.
    let stale = s.update_flow(FlowUpdate { record: &next }).await;
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
    s.issue_code(&code("c1", "f1", 1, now), &mail("m1", now), Some(FlowUpdate { record: &sent })).await.expect("issue");
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
    s.issue_code(&code("c2", "f1", 2, later), &mail("m2", later), None).await.expect("reissue");
    let live = s.live_code("registration", "f1").await.expect("live").expect("present");
    assert_eq!((live.id.as_str(), live.attempts), ("c2", 0));
    match s.attempt_code("registration", "f1", later, 5).await.expect("attempt") {
        CodeAttempt::Counted(c) => assert_eq!(c.id, "c2"),
        other => panic!("{other:?}"),
    }
    assert!(!s.consume_code("c1", later).await.expect("consume"), "a voided code cannot be used");
    assert!(s.consume_code("c2", later).await.expect("consume"));
    assert!(!s.consume_code("c2", later).await.expect("consume"), "a code is used once");
    assert_eq!(s.attempt_code("registration", "f1", later, 5).await.expect("attempt"), CodeAttempt::Missing);

    // Expiry.
    s.issue_code(&code("c3", "f1", 3, later), &mail("m3", later), None).await.expect("reissue");
    let expired_at = later + Duration::minutes(10);
    assert_eq!(s.attempt_code("registration", "f1", expired_at, 5).await.expect("attempt"), CodeAttempt::Expired);
    assert!(matches!(
        s.attempt_code("registration", "f1", expired_at - Duration::seconds(1), 5).await.expect("attempt"),
        CodeAttempt::Counted(_)
    ));

    // Voiding ends the code; another purpose or subject is untouched.
    s.issue_code(&NewCode { purpose: "password_reset".into(), ..code("c4", "f1", 4, later) }, &mail("m4", later), None)
        .await
        .expect("issue");
    s.void_codes("registration", "f1", later).await.expect("void");
    assert_eq!(s.attempt_code("registration", "f1", later, 5).await.expect("attempt"), CodeAttempt::Missing);
    assert!(matches!(s.attempt_code("password_reset", "f1", later, 5).await.expect("attempt"), CodeAttempt::Counted(_)));
}

async fn issuing_a_code_is_all_or_nothing(s: Arc<dyn Store>) {
    let now = t0();
    let f = flow("f1", now);
    s.insert_flow(&f).await.expect("insert");
    let mut stale = f.clone();
    stale.version = 7;
    let r = s.issue_code(&code("c1", "f1", 1, now), &mail("m1", now), Some(FlowUpdate { record: &stale })).await;
    assert!(matches!(r, Err(StoreError::Conflict)), "{r:?}");
    assert!(s.live_code("registration", "f1").await.expect("live").is_none(), "no code without the flow update");
    assert_eq!(s.pending_mail_count().await.expect("count"), 0, "no mail without the flow update");
}

async fn concurrent_guesses_never_exceed_the_limit(s: Arc<dyn Store>) {
    let now = t0();
    s.issue_code(&code("c1", "f1", 1, now), &mail("m1", now), None).await.expect("issue");
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
    let consumers: Vec<_> = (0..2)
        .map(|_| {
            let s = s.clone();
            tokio::spawn(async move { s.consume_code("c1", now).await })
        })
        .collect();
    let mut won = 0;
    for t in consumers {
        if t.await.expect("join").expect("consume") {
            won += 1;
        }
    }
    assert_eq!(won, 1, "exactly one consumer wins");
}

async fn outbox_claims_leases_and_retries(s: Arc<dyn Store>) {
    let now = t0();
    s.enqueue_mail(&mail("m1", now)).await.expect("enqueue");
    s.enqueue_mail(&mail("m2", now + Duration::seconds(1))).await.expect("enqueue");
    assert!(matches!(s.enqueue_mail(&mail("m1", now)).await, Err(StoreError::Duplicate)));

    let at = now + Duration::seconds(2);
    let claimed = s.claim_due_mails(at, Duration::seconds(60), 10).await.expect("claim");
    assert_eq!(claimed.iter().map(|m| m.id.as_str()).collect::<Vec<_>>(), ["m1", "m2"]);
    assert_eq!(claimed[0].payload, b"sealed m1".to_vec());
    assert_eq!(claimed[0].attempts, 1);
    assert!(s.claim_due_mails(at, Duration::seconds(60), 10).await.expect("claim").is_empty(), "leased");

    s.mark_mail_sent("m1", at).await.expect("sent");
    s.mark_mail_failed("m2", "connection refused", at + Duration::seconds(30)).await.expect("failed");
    assert_eq!(s.pending_mail_count().await.expect("count"), 1);
    assert!(s.claim_due_mails(at + Duration::seconds(29), Duration::seconds(60), 10).await.expect("claim").is_empty());
    let retry = s.claim_due_mails(at + Duration::seconds(30), Duration::seconds(60), 10).await.expect("claim");
    assert_eq!(retry.len(), 1);
    assert_eq!((retry[0].id.as_str(), retry[0].attempts), ("m2", 2));
    // A sent mail is never claimed again, even long after.
    s.mark_mail_sent("m2", at + Duration::seconds(31)).await.expect("sent");
    assert!(s.claim_due_mails(at + Duration::days(9), Duration::seconds(60), 10).await.expect("claim").is_empty());
    assert_eq!(s.pending_mail_count().await.expect("count"), 0);

    // Concurrent workers never take the same mail twice.
    for i in 0..30 {
        s.enqueue_mail(&mail(&format!("n{i:02}"), now)).await.expect("enqueue");
    }
    let workers: Vec<_> = (0..4)
        .map(|_| {
            let s = s.clone();
            tokio::spawn(async move { s.claim_due_mails(at, Duration::seconds(60), 10).await })
        })
        .collect();
    let mut ids = Vec::new();
    for w in workers {
        ids.extend(w.await.expect("join").expect("claim").into_iter().map(|m| m.id));
    }
    let total = ids.len();
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), total, "a mail was claimed twice");
    assert_eq!(total, 30);
}

async fn users_consents_and_duplicate_emails(s: Arc<dyn Store>) {
    let now = t0();
    s.insert_org(&org("o1", "133033", true), now).await.expect("org");
    let f = flow("f1", now);
    s.insert_flow(&f).await.expect("flow");
    let mut done = f.clone();
    done.state = "completed".into();
    let consents = vec![
        ConsentRecord { doc: "platform_terms".into(), version: "2026-04-01".into(), accepted_at: now },
        ConsentRecord { doc: "org_privacy".into(), version: "2026-04-01".into(), accepted_at: now },
    ];
    s.create_user(&user("u1", "o1", 1, now), &consents, Some(FlowUpdate { record: &done })).await.expect("create");
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
    let dup = s.create_user(&user("u2", "o1", 1, now), &consents, Some(FlowUpdate { record: &done2 })).await;
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
        };
        s.create_session(&record).await.expect("session");
    }
    // The answer opens the session it was given in, not the member's other sessions.
    s.set_session_step_up(&[1; 32], Some(now + Duration::minutes(15))).await.expect("step up");
    assert_eq!(s.get_session(&[1; 32]).await.expect("get").expect("present").step_up_until, Some(now + Duration::minutes(15)));
    assert_eq!(s.get_session(&[2; 32]).await.expect("get").expect("present").step_up_until, None);
    s.set_session_step_up(&[1; 32], None).await.expect("close");
    assert_eq!(s.get_session(&[1; 32]).await.expect("get").expect("present").step_up_until, None);

    // Five wrong answers lock until the given instant; more wrong answers keep that lock.
    assert_eq!(s.step_up_failures("u1").await.expect("read"), None);
    let lock = now + Duration::hours(1);
    for n in 1..=4 {
        let f = s.record_step_up_failure("u1", now, 5, lock).await.expect("failure");
        assert_eq!(f, StepUpFailures { failures: n, locked_until: None });
    }
    let f = s.record_step_up_failure("u1", now + Duration::minutes(1), 5, lock).await.expect("fifth");
    assert_eq!(f, StepUpFailures { failures: 5, locked_until: Some(lock) });
    let f = s.record_step_up_failure("u1", now + Duration::minutes(2), 5, lock + Duration::minutes(2)).await.expect("sixth");
    assert_eq!(f.locked_until, Some(lock), "a running lock is not extended");
    assert_eq!(s.step_up_failures("u1").await.expect("read").expect("present").locked_until, Some(lock));
    // After the lock the count starts again.
    let later = lock + Duration::seconds(1);
    let f = s.record_step_up_failure("u1", later, 5, later + Duration::hours(1)).await.expect("after");
    assert_eq!(f, StepUpFailures { failures: 1, locked_until: None });
    s.clear_step_up_failures("u1").await.expect("clear");
    assert_eq!(s.step_up_failures("u1").await.expect("read"), None);

    // Concurrent wrong answers are all counted.
    let tasks: Vec<_> = (0..8)
        .map(|_| {
            let s = s.clone();
            tokio::spawn(async move { s.record_step_up_failure("u1", now, 100, now + Duration::hours(1)).await })
        })
        .collect();
    for t in tasks {
        t.await.expect("join").expect("failure");
    }
    assert_eq!(s.step_up_failures("u1").await.expect("read").expect("present").failures, 8);
}

async fn rate_limits_count_per_window(s: Arc<dyn Store>) {
    let now = t0();
    let w = Duration::seconds(60);
    for n in 1..=3 {
        assert_eq!(s.hit_rate_limit("login:ip:127.0.0.1", now + Duration::seconds(n), w).await.expect("hit"), n);
    }
    assert_eq!(s.hit_rate_limit("login:ip:10.0.0.9", now, w).await.expect("hit"), 1, "keys are independent");
    // The window started at now+1s; it is over 60 s later.
    assert_eq!(s.hit_rate_limit("login:ip:127.0.0.1", now + Duration::seconds(60), w).await.expect("hit"), 4);
    assert_eq!(s.hit_rate_limit("login:ip:127.0.0.1", now + Duration::seconds(61), w).await.expect("hit"), 1);

    let hits: Vec<_> = (0..20)
        .map(|_| {
            let s = s.clone();
            tokio::spawn(async move { s.hit_rate_limit("register:ip:x", now, w).await })
        })
        .collect();
    let mut counts = Vec::new();
    for h in hits {
        counts.push(h.await.expect("join").expect("hit"));
    }
    counts.sort();
    assert_eq!(counts, (1..=20).collect::<Vec<i64>>(), "every concurrent hit is counted once");
    assert_eq!(s.delete_stale_rate_limits(now + Duration::seconds(30)).await.expect("stale"), 2);
}

fn roster_row(key: u8, card: u8, person: u8, from: &str, until: Option<&str>) -> RosterRow {
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

fn rec(key: u8, card: u8) -> RecordRef {
    RecordRef { card_index: vec![card; 16], record_key: vec![key; 16] }
}

fn stats(rows: u64, inserted: u64, updated: u64, ended: u64) -> ImportStats {
    ImportStats { rows, inserted, updated, ended }
}

async fn roster_import_reimport_and_eligibility(s: Arc<dyn Store>) {
    let now = t0();
    s.insert_org(&org("o1", "133033", true), now).await.expect("org");
    s.insert_org(&org("o2", "06132013", false), now).await.expect("org");
    assert!(matches!(s.begin_roster_import("nope", "i0", now).await.err(), Some(StoreError::NotFound)), "unknown organization");
    let mut imp = s.begin_roster_import("o1", "i1", now).await.expect("begin");
    assert!(imp.existing().await.expect("existing").is_empty());
    imp.insert(&[roster_row(1, 10, 20, "2020-04-01", None), roster_row(2, 11, 21, "2020-04-01", None)]).await.expect("insert");
    imp.insert(&[roster_row(3, 12, 22, "2021-04-01", Some("2030-03-31"))]).await.expect("insert");
    imp.commit(stats(3, 3, 0, 0)).await.expect("commit");
    assert_eq!(s.roster_count("o1").await.expect("count"), 3);
    assert_eq!(s.roster_count("o2").await.expect("count"), 0);
    let m = s.find_roster_matches("o1", &[10; 16], &[20; 16]).await.expect("match");
    assert_eq!(m.len(), 1);
    assert_eq!((&m[0].record, m[0].eligible_until.as_deref(), m[0].linked_user_id.as_deref()), (&rec(1, 10), None, None));
    assert_eq!(m[0].data_enc, vec![1, 10, 20]);
    assert!(s.find_roster_matches("o1", &[10; 16], &[21; 16]).await.expect("match").is_empty(), "card and person must both match");
    assert!(s.find_roster_matches("o2", &[10; 16], &[20; 16]).await.expect("match").is_empty(), "other organization");

    // The next import sees what is stored, updates record 1, ends 2 and 3 (2 is linked to an
    // account and stays linked) and adds 4.
    s.create_user(&user("u1", "o1", 1, now), &[], None).await.expect("user");
    s.link_roster_record("o1", &rec(2, 11), "u1", now).await.expect("link");
    let mut imp = s.begin_roster_import("o1", "i2", now).await.expect("begin");
    let mut existing = imp.existing().await.expect("existing");
    existing.sort_by(|a, b| a.record_key.cmp(&b.record_key));
    assert_eq!(existing.len(), 3);
    assert_eq!(existing[2], StoredRecord { card_index: vec![12; 16], record_key: vec![3; 16], content_mac: vec![3, 12, 22], eligible_until: Some("2030-03-31".into()) });
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
    assert!(existing.iter().any(|r| r.record_key == vec![1; 16] && r.content_mac == vec![9]), "the update replaced the content MAC");
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
    imp.insert(&[roster_row(1, 10, 20, "2020-04-01", None), roster_row(2, 11, 21, "2020-04-01", None)]).await.expect("insert");
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

fn ekyc(id: &str, user: &str, at: OffsetDateTime) -> EkycRecord {
    EkycRecord {
        id: id.into(),
        user_id: user.into(),
        org_id: "o1".into(),
        state: "started".into(),
        open: true,
        data: vec![1, 2, 3],
        version: 1,
        created_at: at,
        updated_at: at,
        submitted_at: None,
        decided_at: None,
    }
}

async fn ekyc_applications_one_open_per_member_versioned_and_queued(s: Arc<dyn Store>) {
    let now = t0();
    s.insert_org(&org("o1", "133033", true), now).await.expect("org");
    for (i, u) in ["u1", "u2"].iter().enumerate() {
        s.create_user(&user(u, "o1", i as u8, now), &[], None).await.expect("user");
    }
    s.insert_ekyc(&ekyc("a1", "u1", now)).await.expect("insert");
    assert!(matches!(s.insert_ekyc(&ekyc("a2", "u1", now)).await, Err(StoreError::Duplicate)), "one open application per member");
    let a = s.get_ekyc("a1").await.expect("get").expect("present");
    assert_eq!(a, ekyc("a1", "u1", now));

    // Submitted; two reviewers decide from the same version: one wins.
    let mut submitted = a.clone();
    submitted.state = "pending_review".into();
    submitted.submitted_at = Some(now + Duration::minutes(5));
    s.update_ekyc(&submitted).await.expect("submit");
    let stale = submitted.clone();
    assert!(matches!(s.update_ekyc(&stale).await, Err(StoreError::Conflict)), "the version moved on");
    s.insert_ekyc(&ekyc("b1", "u2", now)).await.expect("insert");
    let mut b = s.get_ekyc("b1").await.expect("get").expect("present");
    b.state = "pending_review".into();
    b.submitted_at = Some(now + Duration::minutes(1));
    s.update_ekyc(&b).await.expect("submit");
    let queue: Vec<String> = s.ekyc_queue("pending_review", 10).await.expect("queue").into_iter().map(|a| a.id).collect();
    assert_eq!(queue, ["b1", "a1"], "oldest submission first");

    let current = s.get_ekyc("a1").await.expect("get").expect("present");
    assert_eq!(current.version, 2);
    let decide = |state: &str| {
        let mut d = current.clone();
        d.state = state.into();
        d.open = false;
        d.decided_at = Some(now + Duration::hours(1));
        d
    };
    let (approve, reject) = (decide("approved"), decide("rejected"));
    let (r1, r2) = tokio::join!(s.update_ekyc(&approve), s.update_ekyc(&reject));
    assert_eq!([r1.is_ok(), r2.is_ok()].iter().filter(|ok| **ok).count(), 1, "exactly one decision: {r1:?} {r2:?}");
    assert!(s.ekyc_queue("pending_review", 10).await.expect("queue").iter().all(|a| a.id != "a1"));

    // Decided, so the member may open a new application; the newest is the current one.
    s.insert_ekyc(&ekyc("a3", "u1", now + Duration::hours(2))).await.expect("a new application after the decision");
    assert_eq!(s.latest_ekyc_of_user("u1").await.expect("latest").map(|a| a.id), Some("a3".into()));
    assert_eq!(s.latest_ekyc_of_user("nobody").await.expect("latest"), None);
}

async fn ekyc_images_are_listed_and_retired_after_the_decision(s: Arc<dyn Store>) {
    let now = t0();
    s.insert_org(&org("o1", "133033", true), now).await.expect("org");
    s.create_user(&user("u1", "o1", 1, now), &[], None).await.expect("user");
    s.create_user(&user("u2", "o1", 2, now), &[], None).await.expect("user");
    s.insert_ekyc(&ekyc("a1", "u1", now)).await.expect("insert");
    s.insert_ekyc(&ekyc("a2", "u2", now)).await.expect("insert");
    let image = |id: &str, app: &str, kind: &str| EkycImage {
        id: id.into(),
        application_id: app.into(),
        kind: kind.into(),
        sha256: vec![7; 32],
        size: 1234,
        created_at: now,
        deleted_at: None,
    };
    s.add_ekyc_image(&image("i1", "a1", "document_front")).await.expect("image");
    s.add_ekyc_image(&image("i2", "a1", "selfie_frontal")).await.expect("image");
    s.add_ekyc_image(&image("i3", "a2", "document_front")).await.expect("image");
    assert_eq!(s.ekyc_images("a1").await.expect("images").len(), 2);
    assert_eq!(s.ekyc_images("a1").await.expect("images")[0], image("i1", "a1", "document_front"));

    assert!(s.ekyc_images_to_delete(now + Duration::days(365), 10).await.expect("due").is_empty(), "undecided: kept");
    let mut a1 = s.get_ekyc("a1").await.expect("get").expect("present");
    a1.state = "completed".into();
    a1.open = false;
    a1.decided_at = Some(now);
    s.update_ekyc(&a1).await.expect("decide");
    assert!(s.ekyc_images_to_delete(now - Duration::seconds(1), 10).await.expect("due").is_empty(), "not yet");
    let due: Vec<String> = s.ekyc_images_to_delete(now + Duration::days(30), 10).await.expect("due").into_iter().map(|i| i.id).collect();
    assert_eq!(due, ["i1", "i2"]);
    s.mark_ekyc_image_deleted("i1", now + Duration::days(30)).await.expect("mark");
    s.mark_ekyc_image_deleted("i1", now + Duration::days(31)).await.expect("again is harmless");
    let due: Vec<String> = s.ekyc_images_to_delete(now + Duration::days(30), 10).await.expect("due").into_iter().map(|i| i.id).collect();
    assert_eq!(due, ["i2"]);
    assert_eq!(s.ekyc_images("a1").await.expect("images")[0].deleted_at, Some(now + Duration::days(30)));
}

async fn capture_tokens_work_once_for_their_step_until_they_expire(s: Arc<dyn Store>) {
    let now = t0();
    s.insert_org(&org("o1", "133033", true), now).await.expect("org");
    s.create_user(&user("u1", "o1", 1, now), &[], None).await.expect("user");
    s.insert_ekyc(&ekyc("a1", "u1", now)).await.expect("insert");
    let expires = now + Duration::minutes(10);
    s.issue_capture_token(&[1; 32], "a1", "document_front", expires).await.expect("issue");
    s.issue_capture_token(&[2; 32], "a1", "selfie_frontal", expires).await.expect("issue");
    assert!(!s.use_capture_token(&[1; 32], "a1", "selfie_frontal", now).await.expect("use"), "another step");
    assert!(!s.use_capture_token(&[1; 32], "a2", "document_front", now).await.expect("use"), "another application");
    assert!(!s.use_capture_token(&[2; 32], "a1", "selfie_frontal", expires).await.expect("use"), "stale");
    let racers: Vec<_> = (0..5).map(|_| {
        let s = s.clone();
        tokio::spawn(async move { s.use_capture_token(&[1; 32], "a1", "document_front", now).await.expect("use") })
    }).collect();
    let mut wins = 0;
    for r in racers {
        wins += usize::from(r.await.expect("join"));
    }
    assert_eq!(wins, 1, "a token is used once");

    // Clean-up removes expired tokens (used or not), keeps live ones.
    s.issue_capture_token(&[3; 32], "a1", "selfie_angled", expires + Duration::minutes(5)).await.expect("issue");
    assert_eq!(s.delete_stale_capture_tokens(now).await.expect("clean"), 0, "nothing expired yet");
    assert_eq!(s.delete_stale_capture_tokens(expires + Duration::seconds(1)).await.expect("clean"), 2);
    assert!(s.use_capture_token(&[3; 32], "a1", "selfie_angled", expires + Duration::seconds(2)).await.expect("use"), "the live one stays");
}

fn operator(id: &str, email_index: u8, role: &str, now: OffsetDateTime) -> OperatorRecord {
    OperatorRecord {
        id: id.into(),
        email_index: vec![email_index; 32],
        email_enc: vec![1; 40],
        name_enc: vec![2; 40],
        role: role.into(),
        password_hash: "$argon2id$v=19$m=19456,t=2,p=1$x$y".into(),
        totp_secret_enc: vec![3; 48],
        totp_last_step: 0,
        created_at: now,
    }
}

fn audit(at: OffsetDateTime, operator_id: Option<&str>, action: &str, target: Option<&str>) -> NewAuditEntry {
    NewAuditEntry {
        at,
        operator_id: operator_id.map(str::to_string),
        action: action.into(),
        target_type: target.map(|_| "ekyc_application".to_string()),
        target_id: target.map(str::to_string),
        client_ip: "192.0.2.7".into(),
    }
}

async fn operators_totp_steps_and_console_sessions(s: Arc<dyn Store>) {
    let now = t0();
    s.insert_operator(&operator("op1", 1, "reviewer", now)).await.expect("insert");
    s.insert_operator(&operator("op2", 2, "admin", now + Duration::seconds(1))).await.expect("insert");
    assert!(matches!(s.insert_operator(&operator("op3", 1, "admin", now)).await, Err(StoreError::Duplicate)), "one operator per email");
    assert!(s.insert_operator(&operator("op4", 4, "superuser", now)).await.is_err(), "unknown role");
    assert_eq!(s.find_operator_by_email_index(&[1; 32]).await.expect("find"), Some(operator("op1", 1, "reviewer", now)));
    assert_eq!(s.find_operator_by_email_index(&[9; 32]).await.expect("find"), None);
    assert_eq!(s.get_operator("op2").await.expect("get").map(|o| o.role), Some("admin".into()));
    let ids: Vec<String> = s.list_operators().await.expect("list").into_iter().map(|o| o.id).collect();
    assert_eq!(ids, ["op1", "op2"]);

    // A TOTP time step is accepted once, and never one older than the newest accepted.
    assert!(s.use_totp_step("op1", 1000).await.expect("use"));
    assert!(!s.use_totp_step("op1", 1000).await.expect("use"), "replay");
    assert!(!s.use_totp_step("op1", 999).await.expect("use"), "older step");
    assert!(s.use_totp_step("op2", 1000).await.expect("use"), "steps are per operator");
    assert!(!s.use_totp_step("nobody", 5000).await.expect("use"));
    let racers: Vec<_> = (0..6)
        .map(|_| {
            let s = s.clone();
            tokio::spawn(async move { s.use_totp_step("op1", 1001).await.expect("use") })
        })
        .collect();
    let mut wins = 0;
    for r in racers {
        wins += usize::from(r.await.expect("join"));
    }
    assert_eq!(wins, 1, "one code, one login");
    assert_eq!(s.get_operator("op1").await.expect("get").expect("present").totp_last_step, 1001);

    let session = |h: u8, op: &str, exp: OffsetDateTime| OperatorSessionRecord {
        id_hash: vec![h; 32],
        operator_id: op.into(),
        created_at: now,
        last_seen_at: now,
        expires_at: exp,
    };
    s.create_operator_session(&session(1, "op1", now + Duration::minutes(30))).await.expect("session");
    s.create_operator_session(&session(2, "op2", now - Duration::seconds(1))).await.expect("session");
    assert!(s.create_operator_session(&session(3, "nobody", now)).await.is_err(), "a session needs an operator");
    assert_eq!(s.get_operator_session(&[1; 32]).await.expect("get"), Some(session(1, "op1", now + Duration::minutes(30))));
    s.touch_operator_session(&[1; 32], now + Duration::minutes(2), now + Duration::minutes(32)).await.expect("touch");
    let touched = s.get_operator_session(&[1; 32]).await.expect("get").expect("present");
    assert_eq!((touched.last_seen_at, touched.expires_at), (now + Duration::minutes(2), now + Duration::minutes(32)));
    assert_eq!(s.delete_expired_operator_sessions(now).await.expect("expired"), 1);
    assert!(s.get_operator_session(&[2; 32]).await.expect("get").is_none());
    s.delete_operator_session(&[1; 32]).await.expect("delete");
    assert!(s.get_operator_session(&[1; 32]).await.expect("get").is_none());

    // Member and operator sessions are separate: the same hash is not a member session.
    s.create_operator_session(&session(5, "op1", now + Duration::minutes(30))).await.expect("session");
    assert!(s.get_session(&[5; 32]).await.expect("get").is_none());
}

async fn audit_log_appends_and_pages_newest_first(s: Arc<dyn Store>) {
    let now = t0();
    s.insert_operator(&operator("op1", 1, "reviewer", now)).await.expect("operator");
    for i in 0..5 {
        s.append_audit(&audit(now + Duration::seconds(i), Some("op1"), &format!("action.{i}"), Some("a1"))).await.expect("append");
    }
    s.append_audit(&audit(now + Duration::seconds(9), None, "console.login_failed", None)).await.expect("no operator known");
    assert!(s.append_audit(&audit(now, Some("nobody"), "x", None)).await.is_err(), "who must be a real operator");

    let first: Vec<AuditEntry> = s.list_audit(None, 4).await.expect("list");
    let actions: Vec<&str> = first.iter().map(|e| e.action.as_str()).collect();
    assert_eq!(actions, ["console.login_failed", "action.4", "action.3", "action.2"]);
    assert!(first.windows(2).all(|w| w[0].seq > w[1].seq));
    assert_eq!(
        (first[0].operator_id.as_deref(), first[0].target_id.as_deref(), first[0].client_ip.as_str()),
        (None, None, "192.0.2.7")
    );
    assert_eq!(
        (first[1].operator_id.as_deref(), first[1].target_type.as_deref(), first[1].target_id.as_deref(), first[1].at),
        (Some("op1"), Some("ekyc_application"), Some("a1"), now + Duration::seconds(4))
    );
    let rest = s.list_audit(Some(first[3].seq), 4).await.expect("next page");
    assert_eq!(rest.iter().map(|e| e.action.as_str()).collect::<Vec<_>>(), ["action.1", "action.0"]);
    assert!(s.list_audit(Some(rest[1].seq), 4).await.expect("end").is_empty());
}

/// An application of `u1` waiting for review, with operators `op1` and `op2`.
async fn pending_case(s: &Arc<dyn Store>) -> EkycRecord {
    let now = t0();
    s.insert_org(&org("o1", "133033", true), now).await.expect("org");
    s.create_user(&user("u1", "o1", 1, now), &[], None).await.expect("user");
    s.insert_operator(&operator("op1", 1, "reviewer", now)).await.expect("operator");
    s.insert_operator(&operator("op2", 2, "reviewer", now)).await.expect("operator");
    s.insert_ekyc(&ekyc("a1", "u1", now)).await.expect("insert");
    let mut a = s.get_ekyc("a1").await.expect("get").expect("present");
    a.state = "pending_review".into();
    a.submitted_at = Some(now);
    s.update_ekyc(&a).await.expect("submit");
    s.get_ekyc("a1").await.expect("get").expect("present")
}

fn decision(current: &EkycRecord, approve: bool, operator: &str) -> (EkycRecord, EkycReview, NewMail, NewAuditEntry) {
    let at = t0() + Duration::hours(1);
    let mut d = current.clone();
    d.state = if approve { "approved" } else { "rejected" }.into();
    d.open = false;
    d.decided_at = Some(at);
    let review = EkycReview {
        application_id: current.id.clone(),
        operator_id: operator.into(),
        decision: d.state.clone(),
        reason: (!approve).then(|| "document_unreadable".to_string()),
        note_enc: Some(vec![4; 30]),
        decided_at: at,
    };
    let action = if approve { "ekyc.approve" } else { "ekyc.reject" };
    (d, review, mail(&format!("m-{operator}"), at), audit(at, Some(operator), action, Some(&current.id)))
}

async fn an_ekyc_case_is_decided_once_with_its_mail_and_audit_row(s: Arc<dyn Store>) {
    let current = pending_case(&s).await;
    assert_eq!(s.ekyc_review("a1").await.expect("review"), None);
    let (a1, r1, m1, l1) = decision(&current, true, "op1");
    let (a2, r2, m2, l2) = decision(&current, false, "op2");
    let (first, second) = tokio::join!(s.decide_ekyc(&a1, &r1, &m1, &l1), s.decide_ekyc(&a2, &r2, &m2, &l2));
    let (winner, loser) = match (&first, &second) {
        (Ok(()), Err(StoreError::Conflict)) => (r1, second),
        (Err(StoreError::Conflict), Ok(())) => (r2, first),
        other => panic!("exactly one decision must win: {other:?}"),
    };
    assert!(matches!(loser, Err(StoreError::Conflict)));
    assert_eq!(s.ekyc_review("a1").await.expect("review").as_ref(), Some(&winner));
    assert_eq!(s.get_ekyc("a1").await.expect("get").expect("present").state, winner.decision);
    assert_eq!(s.pending_mail_count().await.expect("mails"), 1, "one mail: the loser's is not queued");
    let log = s.list_audit(None, 10).await.expect("audit");
    assert_eq!(log.len(), 1, "one audit row: the loser's is not written");
    assert_eq!(log[0].operator_id.as_deref(), Some(winner.operator_id.as_str()));

    // Deciding again, even from the current version, is refused: one review per application.
    let now_current = s.get_ekyc("a1").await.expect("get").expect("present");
    let (a3, r3, m3, l3) = decision(&now_current, true, "op2");
    assert!(matches!(s.decide_ekyc(&a3, &r3, &m3, &l3).await, Err(StoreError::Conflict)));
    assert_eq!(s.get_ekyc("a1").await.expect("get").expect("present").version, now_current.version, "nothing written");
    assert_eq!(s.pending_mail_count().await.expect("mails"), 1);
    assert_eq!(s.list_audit(None, 10).await.expect("audit").len(), 1);
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
    assert_eq!((r.data_enc.as_slice(), r.eligible_until.as_deref(), r.linked_user_id.as_deref()), (&[1u8, 10, 20][..], Some("2030-03-31"), Some("u1")));
    assert_eq!(s.get_roster_record("o1", &rec(2, 10)).await.expect("get"), None);
    assert_eq!(s.get_roster_record("o2", &rec(1, 10)).await.expect("get"), None, "keys are per organization");
}

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
    s.create_inquiry(&inquiry("q2", Some("u1"), now + Duration::minutes(1)), &mail("m2", now)).await.expect("member inquiry");
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
    let reply = InquiryReply { id: "r1".into(), inquiry_id: "q1".into(), operator_id: "op1".into(), body_enc: vec![7; 30], created_at: at };
    s.reply_inquiry(&reply, &mail("m6", at), &audit(at, Some("op1"), "inquiry.reply", Some("q1"))).await.expect("reply");
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
    let refused = s.reply_inquiry(&missing, &mail("m8", at), &audit(at, Some("op1"), "inquiry.reply", Some("nope"))).await;
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

/// Rows for the append-only check: the Store trait cannot change the audit log, so these
/// tests go around it with raw SQL, as an attacker or a careless script with database access
/// would, and the database must refuse.
async fn seed_audit(s: &dyn Store) {
    let now = t0();
    s.insert_operator(&operator("op1", 1, "admin", now)).await.expect("operator");
    s.append_audit(&audit(now, Some("op1"), "ekyc.view_case", Some("a1"))).await.expect("append");
}

const TAMPERING: [&str; 3] = [
    "UPDATE audit_log SET action = 'nothing.happened'",
    "DELETE FROM audit_log",
    "UPDATE audit_log SET operator_id = NULL WHERE action = 'ekyc.view_case'",
];

async fn assert_untouched(s: &dyn Store) {
    let log = s.list_audit(None, 10).await.expect("audit");
    assert_eq!(log.len(), 1);
    assert_eq!((log[0].action.as_str(), log[0].operator_id.as_deref()), ("ekyc.view_case", Some("op1")));
}

mod append_only {
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn sqlite_refuses_update_and_delete_of_audit_rows() {
        let dir = tempfile::tempdir().expect("tempdir");
        let s = crate::testing::sqlite_in(dir.path()).await.expect("sqlite store");
        super::seed_audit(&s).await;
        for sql in super::TAMPERING {
            let e = sqlx::query(sql).execute(s.pool()).await.expect_err(sql);
            assert!(e.to_string().contains("append-only"), "{sql}: {e}");
        }
        super::assert_untouched(&s).await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn postgres_refuses_update_delete_and_truncate_of_audit_rows() {
        let (s, schema) = crate::testing::fresh_pg().await.expect("PostgreSQL must be reachable for the conformance suite");
        super::seed_audit(&s).await;
        for sql in super::TAMPERING.into_iter().chain(["TRUNCATE audit_log"]) {
            let e = sqlx::query(sql).execute(s.pool()).await.expect_err(sql);
            assert!(e.to_string().contains("append-only"), "{sql}: {e}");
        }
        super::assert_untouched(&s).await;
        crate::testing::drop_pg_schema(&schema).await.expect("drop schema");
    }
}

fn checkup(id: &str, record: RecordRef, on: &str, data: u8) -> CheckupRow {
    CheckupRow { id: id.to_string(), record, examined_on: on.to_string(), data_enc: vec![data; 24] }
}

/// o1 with records 1 and 2 (card 10) and record 3 (card 11).
async fn checkup_roster(s: &Arc<dyn Store>) {
    let now = t0();
    s.insert_org(&org("o1", "133033", true), now).await.expect("org");
    let mut imp = s.begin_roster_import("o1", "r1", now).await.expect("begin");
    imp.insert(&[roster_row(1, 10, 20, "2020-04-01", None), roster_row(2, 10, 21, "2020-04-01", None), roster_row(3, 11, 22, "2020-04-01", None)])
        .await
        .expect("insert");
    imp.commit(stats(3, 3, 0, 0)).await.expect("commit");
}

async fn checkup_imports_commit_and_are_listed_newest_first(s: Arc<dyn Store>) {
    checkup_roster(&s).await;
    let now = t0();
    let by_card = s.find_roster_records_by_card("o1", &[10; 16]).await.expect("by card");
    assert_eq!(by_card.iter().map(|m| m.record.clone()).collect::<Vec<_>>(), [rec(1, 10), rec(2, 10)], "every person of the card");
    assert!(s.find_roster_records_by_card("o2", &[10; 16]).await.expect("by card").is_empty());
    assert!(matches!(s.begin_checkup_import("nope", "c0", "x.zip", now).await.err(), Some(StoreError::NotFound)));

    let mut imp = s.begin_checkup_import("o1", "c1", "results.zip", now).await.expect("begin");
    assert!(!imp.put(&checkup("k1", rec(1, 10), "2023-06-01", 1)).await.expect("put"));
    assert!(!imp.put(&checkup("k2", rec(1, 10), "2024-06-10", 2)).await.expect("put"));
    assert!(!imp.put(&checkup("k3", rec(3, 11), "2024-06-10", 3)).await.expect("put"));
    imp.commit(CheckupImportStats { documents: 3, inserted: 3, replaced: 0 }).await.expect("commit");

    let r1 = s.checkup_results_of_record("o1", &rec(1, 10)).await.expect("results");
    assert_eq!(r1.iter().map(|r| (r.id.as_str(), r.examined_on.as_str())).collect::<Vec<_>>(), [("k2", "2024-06-10"), ("k1", "2023-06-01")], "newest first");
    assert_eq!((r1[0].data_enc.as_slice(), r1[0].import_id.as_str(), r1[0].created_at, r1[0].org_id.as_str()), (&[2u8; 24][..], "c1", now, "o1"));
    assert_eq!(s.checkup_results_of_record("o1", &rec(3, 11)).await.expect("results").len(), 1);
    assert!(s.checkup_results_of_record("o1", &rec(2, 10)).await.expect("results").is_empty(), "another person of the same card");
    assert!(s.checkup_results_of_record("o2", &rec(1, 10)).await.expect("results").is_empty(), "per organization");

    // A result must belong to a roster record of the organization.
    let mut imp = s.begin_checkup_import("o1", "c2", "bad.zip", now).await.expect("begin");
    assert!(imp.put(&checkup("k9", rec(9, 10), "2024-06-10", 9)).await.is_err(), "no such roster record");
}

async fn a_dropped_checkup_import_leaves_nothing(s: Arc<dyn Store>) {
    checkup_roster(&s).await;
    let now = t0();
    let mut imp = s.begin_checkup_import("o1", "c1", "results.zip", now).await.expect("begin");
    imp.put(&checkup("k1", rec(1, 10), "2024-06-10", 1)).await.expect("put");
    imp.put(&checkup("k2", rec(3, 11), "2024-06-10", 2)).await.expect("put");
    drop(imp); // an error or an interrupt before commit
    assert!(s.checkup_results_of_record("o1", &rec(1, 10)).await.expect("results").is_empty());
    assert!(s.checkup_results_of_record("o1", &rec(3, 11)).await.expect("results").is_empty());
    // The same import id can be used again: its row went with the transaction.
    let mut imp = s.begin_checkup_import("o1", "c1", "results.zip", now).await.expect("begin again");
    imp.put(&checkup("k1", rec(1, 10), "2024-06-10", 1)).await.expect("put");
    imp.commit(CheckupImportStats { documents: 1, inserted: 1, replaced: 0 }).await.expect("commit");
    assert_eq!(s.checkup_results_of_record("o1", &rec(1, 10)).await.expect("results").len(), 1);
}

async fn reimporting_an_examination_replaces_it(s: Arc<dyn Store>) {
    checkup_roster(&s).await;
    let now = t0();
    let mut imp = s.begin_checkup_import("o1", "c1", "results.zip", now).await.expect("begin");
    imp.put(&checkup("k1", rec(1, 10), "2024-06-10", 1)).await.expect("put");
    imp.commit(CheckupImportStats { documents: 1, inserted: 1, replaced: 0 }).await.expect("commit");

    let later = now + Duration::days(1);
    let mut imp = s.begin_checkup_import("o1", "c2", "results.zip", later).await.expect("begin");
    assert!(imp.put(&checkup("k2", rec(1, 10), "2024-06-10", 7)).await.expect("put"), "same record and date: replaced");
    assert!(!imp.put(&checkup("k3", rec(1, 10), "2025-06-10", 8)).await.expect("put"), "another date: new");
    imp.commit(CheckupImportStats { documents: 2, inserted: 1, replaced: 1 }).await.expect("commit");
    let r = s.checkup_results_of_record("o1", &rec(1, 10)).await.expect("results");
    assert_eq!(r.len(), 2, "no duplicate for the re-imported examination");
    assert_eq!((r[1].id.as_str(), r[1].examined_on.as_str(), r[1].data_enc.as_slice(), r[1].import_id.as_str(), r[1].created_at), ("k1", "2024-06-10", &[7u8; 24][..], "c2", later));
    assert_eq!(r[0].id, "k3");
}

fn health(id: &str, record: RecordRef, on: &str, key: u8, data: u8) -> HealthEntryRow {
    HealthEntryRow { id: id.to_string(), record, occurred_on: on.to_string(), row_key: vec![key; 16], data_enc: vec![data; 24] }
}

fn health_stats(rows: u64, inserted: u64) -> HealthImportStats {
    HealthImportStats { rows, inserted }
}

async fn health_entries_are_kept_once_per_record_kind_and_row_key(s: Arc<dyn Store>) {
    checkup_roster(&s).await;
    let now = t0();
    let (med, exp) = (HealthKind::Medication, HealthKind::Expense);
    assert!(matches!(s.begin_health_import("nope", "h0", med, "x.csv", now).await.err(), Some(StoreError::NotFound)));

    let mut imp = s.begin_health_import("o1", "h1", med, "medication.csv", now).await.expect("begin");
    assert!(!imp.put(&health("m1", rec(1, 10), "2025-03-01", 1, 1)).await.expect("put"));
    assert!(!imp.put(&health("m2", rec(1, 10), "2025-05-20", 2, 2)).await.expect("put"));
    assert!(!imp.put(&health("m3", rec(1, 10), "2025-04-01", 3, 3)).await.expect("put"));
    assert!(!imp.put(&health("m4", rec(3, 11), "2025-04-01", 1, 4)).await.expect("put"), "the same row key on another record");
    assert!(imp.put(&health("m5", rec(1, 10), "2025-03-01", 1, 5)).await.expect("put"), "the same row key twice: kept once");
    imp.commit(health_stats(5, 4)).await.expect("commit");

    let r = s.health_entries_of_record("o1", &rec(1, 10), med).await.expect("entries");
    assert_eq!(r.iter().map(|e| e.occurred_on.as_str()).collect::<Vec<_>>(), ["2025-05-20", "2025-04-01", "2025-03-01"], "latest first");
    let first = &r[2];
    assert_eq!(
        (first.id.as_str(), first.org_id.as_str(), first.kind, first.row_key.as_slice(), first.data_enc.as_slice(), first.import_id.as_str(), first.created_at),
        ("m1", "o1", med, &[1u8; 16][..], &[1u8; 24][..], "h1", now),
        "the first write stays"
    );
    assert_eq!(first.record, rec(1, 10));
    assert_eq!(s.health_entries_of_record("o1", &rec(3, 11), med).await.expect("entries").len(), 1);
    assert!(s.health_entries_of_record("o1", &rec(2, 10), med).await.expect("entries").is_empty(), "another person of the same card");
    assert!(s.health_entries_of_record("o1", &rec(1, 10), exp).await.expect("entries").is_empty(), "per kind");
    assert!(s.health_entries_of_record("o2", &rec(1, 10), med).await.expect("entries").is_empty(), "per organization");

    // Another kind with the same row key is another entry; a later import of the same rows adds nothing.
    let later = now + Duration::days(1);
    let mut imp = s.begin_health_import("o1", "h2", exp, "expenses.csv", later).await.expect("begin");
    assert!(!imp.put(&health("e1", rec(1, 10), "2025-04-01", 1, 9)).await.expect("put"));
    imp.commit(health_stats(1, 1)).await.expect("commit");
    let mut imp = s.begin_health_import("o1", "h3", med, "medication.csv", later).await.expect("begin");
    assert!(imp.put(&health("m6", rec(1, 10), "2025-05-20", 2, 6)).await.expect("put"));
    imp.commit(health_stats(1, 0)).await.expect("commit");
    let e = s.health_entries_of_record("o1", &rec(1, 10), exp).await.expect("entries");
    assert_eq!((e.len(), e[0].kind, e[0].id.as_str()), (1, exp, "e1"));
    assert_eq!(s.health_entries_of_record("o1", &rec(1, 10), med).await.expect("entries").len(), 3);

    // An entry needs its roster record.
    let mut imp = s.begin_health_import("o1", "h4", med, "bad.csv", now).await.expect("begin");
    assert!(imp.put(&health("m9", rec(9, 10), "2025-04-01", 9, 9)).await.is_err(), "no such roster record");
}

async fn a_dropped_health_import_leaves_nothing_and_imports_wait_for_each_other(s: Arc<dyn Store>) {
    checkup_roster(&s).await;
    let now = t0();
    let med = HealthKind::Medication;
    let mut imp = s.begin_health_import("o1", "h1", med, "medication.csv", now).await.expect("begin");
    imp.put(&health("m1", rec(1, 10), "2025-04-01", 1, 1)).await.expect("put");
    drop(imp); // an error or an interrupt before commit
    assert!(s.health_entries_of_record("o1", &rec(1, 10), med).await.expect("entries").is_empty());

    // The same import id can be used again; a second import of the organization (of any kind,
    // or a roster import) waits for the first to commit.
    let mut first = s.begin_health_import("o1", "h1", med, "medication.csv", now).await.expect("begin again");
    first.put(&health("m1", rec(1, 10), "2025-04-01", 1, 1)).await.expect("put");
    let s2 = s.clone();
    let second = tokio::spawn(async move {
        let imp = s2.begin_health_import("o1", "h2", HealthKind::Expense, "expenses.csv", now).await.expect("begin");
        imp.commit(health_stats(0, 0)).await.expect("commit");
        s2.health_entries_of_record("o1", &rec(1, 10), HealthKind::Medication).await.expect("entries").len()
    });
    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    assert!(!second.is_finished(), "the second import waits for the first");
    first.commit(health_stats(1, 1)).await.expect("commit");
    assert_eq!(second.await.expect("join"), 1, "and then sees what the first wrote");
}

macro_rules! conformance {
    ($($story:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $story() {
                    let dir = tempfile::tempdir().expect("tempdir");
                    let s = crate::testing::sqlite_in(dir.path()).await.expect("sqlite store");
                    super::$story(std::sync::Arc::new(s)).await;
                }
            )*
        }
        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $story() {
                    let (s, schema) = crate::testing::fresh_pg().await.expect("PostgreSQL must be reachable for the conformance suite");
                    super::$story(std::sync::Arc::new(s)).await;
                    crate::testing::drop_pg_schema(&schema).await.expect("drop schema");
                }
            )*
        }
    };
}

conformance!(
    organizations,
    flows_use_optimistic_versions,
    codes_count_attempts_and_void_on_resend,
    issuing_a_code_is_all_or_nothing,
    concurrent_guesses_never_exceed_the_limit,
    outbox_claims_leases_and_retries,
    users_consents_and_duplicate_emails,
    sessions_and_password_changes,
    step_up_opens_one_session_and_wrong_answers_lock_the_member,
    rate_limits_count_per_window,
    roster_import_reimport_and_eligibility,
    unfinished_imports_change_nothing,
    roster_imports_of_one_org_wait_for_each_other,
    ekyc_applications_one_open_per_member_versioned_and_queued,
    ekyc_images_are_listed_and_retired_after_the_decision,
    capture_tokens_work_once_for_their_step_until_they_expire,
    roster_links_are_one_to_one_under_races,
    operators_totp_steps_and_console_sessions,
    audit_log_appends_and_pages_newest_first,
    an_ekyc_case_is_decided_once_with_its_mail_and_audit_row,
    a_roster_record_is_found_by_its_keys,
    inquiries_are_answered_and_closed_with_their_mails_and_audit_rows,
    checkup_imports_commit_and_are_listed_newest_first,
    a_dropped_checkup_import_leaves_nothing,
    reimporting_an_examination_replaces_it,
    health_entries_are_kept_once_per_record_kind_and_row_key,
    a_dropped_health_import_leaves_nothing_and_imports_wait_for_each_other,
);
