//! Operators, console sessions, the append-only audit log, eKYC decisions.

use super::*;
use crate::ekyc::ekyc;

pub(crate) fn operator(id: &str, email_index: u8, role: &str, now: OffsetDateTime) -> OperatorRecord {
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
        disabled_at: None,
    }
}

pub(crate) fn audit(
    at: OffsetDateTime,
    operator_id: Option<&str>,
    action: &str,
    target: Option<&str>,
) -> NewAuditEntry {
    NewAuditEntry {
        at,
        operator_id: operator_id.map(str::to_string),
        member_id: None,
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
    assert!(
        matches!(s.insert_operator(&operator("op3", 1, "admin", now)).await, Err(StoreError::Duplicate)),
        "one operator per email"
    );
    assert!(s.insert_operator(&operator("op4", 4, "superuser", now)).await.is_err(), "unknown role");
    assert_eq!(
        s.find_operator_by_email_index(&[1; 32]).await.expect("find"),
        Some(operator("op1", 1, "reviewer", now))
    );
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
    assert_eq!(
        s.get_operator_session(&[1; 32]).await.expect("get"),
        Some(session(1, "op1", now + Duration::minutes(30)))
    );
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
        s.append_audit(&audit(now + Duration::seconds(i), Some("op1"), &format!("action.{i}"), Some("a1")))
            .await
            .expect("append");
    }
    s.append_audit(&audit(now + Duration::seconds(9), None, "console.login_failed", None))
        .await
        .expect("no operator known");
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
        let (s, schema) =
            crate::testing::fresh_pg().await.expect("PostgreSQL must be reachable for the conformance suite");
        super::seed_audit(&s).await;
        for sql in super::TAMPERING.into_iter().chain(["TRUNCATE audit_log"]) {
            let e = sqlx::query(sql).execute(s.pool()).await.expect_err(sql);
            assert!(e.to_string().contains("append-only"), "{sql}: {e}");
        }
        super::assert_untouched(&s).await;
        crate::testing::drop_pg_schema(&schema).await.expect("drop schema");
    }
}

/// #13: sampled automatic completions are listed until checked; a withdrawal revokes the
/// application, removes the roster link, ends every step-up of the member, and writes its
/// record, mail and audit row in one transaction (a stale application version writes nothing).
async fn a_binding_is_withdrawn_in_one_transaction(s: Arc<dyn Store>) {
    let now = t0();
    s.insert_org(&org("o1", "133033", true), now).await.expect("org");
    s.create_user(&user("u1", "o1", 1, now), &[], None).await.expect("user");
    s.insert_operator(&operator("op1", 1, "admin", now)).await.expect("operator");
    let mut imp = s.begin_roster_import("o1", "i1", now).await.expect("begin");
    imp.insert(&[crate::roster::roster_row(1, 10, 20, "2020-04-01", None)]).await.expect("insert");
    imp.commit(crate::roster::stats(1, 1, 0, 0)).await.expect("commit");
    s.link_roster_record("o1", &crate::roster::rec(1, 10), "u1", now).await.expect("link");
    for (n, hash) in [(1u8, vec![1u8; 32]), (2, vec![2u8; 32])] {
        s.create_session(&SessionRecord {
            id_hash: hash.clone(),
            user_id: "u1".into(),
            kind: "cookie".into(),
            created_at: now,
            last_seen_at: now,
            expires_at: now + Duration::hours(1),
            step_up_until: None,
            device: None,
        })
        .await
        .expect("session");
        s.set_session_step_up(&hash, Some(now + Duration::minutes(i64::from(n) * 5))).await.expect("step-up");
    }

    // Completed automatically and sampled.
    s.insert_ekyc(&crate::ekyc::ekyc("a1", "u1", now)).await.expect("insert");
    let mut a = s.get_ekyc("a1").await.expect("get").expect("present");
    a.state = "completed".into();
    a.open = false;
    a.submitted_at = Some(now);
    a.decided_at = Some(now);
    a.sampled = true;
    s.update_ekyc(&a).await.expect("complete");
    let samples = s.ekyc_samples(10).await.expect("samples");
    assert_eq!(samples.iter().map(|r| r.id.as_str()).collect::<Vec<_>>(), vec!["a1"]);
    let current = samples[0].clone();

    let record = store::BindingWithdrawal {
        id: "w1".into(),
        user_id: "u1".into(),
        operator_id: "op1".into(),
        unlinked: true,
        revoked_application_id: Some("a1".into()),
        reason: "wrong_person".into(),
        note_enc: Some(vec![3; 20]),
        at: now + Duration::hours(2),
    };
    let mut revoked = current.clone();
    revoked.state = "revoked".into();
    revoked.sampled = false;
    let stale = EkycRecord { version: current.version - 1, ..revoked.clone() };
    let m = mail("mw", now);
    let l = audit(now, Some("op1"), "binding.withdraw", Some("w1"));
    let w = store::Withdrawal { record: &record, ekyc: Some(&stale), mail: &m, audit: &l };
    assert!(matches!(s.withdraw_binding(&w).await, Err(StoreError::Conflict)));
    assert!(s.binding_withdrawals("u1").await.expect("list").is_empty(), "nothing written");
    assert!(s.roster_link_of_user("u1").await.expect("link").is_some());

    let w = store::Withdrawal { record: &record, ekyc: Some(&revoked), mail: &m, audit: &l };
    s.withdraw_binding(&w).await.expect("withdraw");
    assert_eq!(s.binding_withdrawals("u1").await.expect("list"), vec![record.clone()]);
    assert!(s.roster_link_of_user("u1").await.expect("link").is_none());
    let a = s.get_ekyc("a1").await.expect("get").expect("present");
    assert_eq!((a.state.as_str(), a.sampled), ("revoked", false));
    assert!(s.ekyc_samples(10).await.expect("samples").is_empty());
    for hash in [vec![1u8; 32], vec![2u8; 32]] {
        assert_eq!(s.get_session(&hash).await.expect("get").expect("session").step_up_until, None);
    }
    assert!(s.list_audit(None, 10).await.expect("audit").iter().any(|e| e.action == "binding.withdraw"));
}

conformance!(
    operators_totp_steps_and_console_sessions,
    audit_log_appends_and_pages_newest_first,
    an_ekyc_case_is_decided_once_with_its_mail_and_audit_row,
    a_binding_is_withdrawn_in_one_transaction,
    concurrent_appends_keep_one_chain,
    operators_are_disabled_reset_and_scoped_with_their_audit_rows,
);

async fn operators_are_disabled_reset_and_scoped_with_their_audit_rows(s: Arc<dyn Store>) {
    let now = t0();
    s.insert_org(&org("o1", "133033", true), now).await.expect("org");
    s.insert_org(&org("o2", "06132013", false), now).await.expect("org");
    s.insert_operator(&operator("op1", 1, "reviewer", now)).await.expect("insert");
    let session = |hash: u8| OperatorSessionRecord {
        id_hash: vec![hash; 32],
        operator_id: "op1".into(),
        created_at: now,
        last_seen_at: now,
        expires_at: now + Duration::hours(8),
    };
    s.create_operator_session(&session(1)).await.expect("session");
    let row = |action: &str| audit(now, Some("op1"), action, None);

    s.change_operator("op1", &OperatorChange::Disable(now), &row("operator.disable")).await.expect("disable");
    assert_eq!(s.get_operator("op1").await.expect("get").and_then(|o| o.disabled_at), Some(now));
    assert_eq!(s.get_operator_session(&[1; 32]).await.expect("get"), None, "disabling ends sessions");
    s.change_operator("op1", &OperatorChange::Enable, &row("operator.enable")).await.expect("enable");
    assert_eq!(s.get_operator("op1").await.expect("get").and_then(|o| o.disabled_at), None);

    s.change_operator("op1", &OperatorChange::Role("admin".into()), &row("operator.role")).await.expect("role");
    assert_eq!(s.get_operator("op1").await.expect("get").map(|o| o.role), Some("admin".into()));
    assert!(
        s.change_operator("op1", &OperatorChange::Role("root".into()), &row("operator.role")).await.is_err(),
        "unknown role"
    );

    assert!(s.use_totp_step("op1", 1000).await.expect("use"));
    s.create_operator_session(&session(2)).await.expect("session");
    s.change_operator("op1", &OperatorChange::Totp(vec![9; 48]), &row("operator.totp_reset")).await.expect("totp");
    let o = s.get_operator("op1").await.expect("get").expect("op");
    assert_eq!((o.totp_secret_enc, o.totp_last_step), (vec![9; 48], 0), "a new secret, no step used");
    assert_eq!(s.get_operator_session(&[2; 32]).await.expect("get"), None, "a reset ends sessions");

    let orgs = OperatorChange::Orgs(vec!["o2".into(), "o1".into()]);
    s.change_operator("op1", &orgs, &row("operator.scope")).await.expect("scope");
    assert_eq!(s.operator_orgs("op1").await.expect("orgs"), ["o1", "o2"]);
    s.change_operator("op1", &OperatorChange::Orgs(vec!["o2".into()]), &row("operator.scope")).await.expect("scope");
    assert_eq!(s.operator_orgs("op1").await.expect("orgs"), ["o2"]);
    assert!(s.change_operator("op1", &OperatorChange::Orgs(vec!["nope".into()]), &row("x")).await.is_err());
    assert_eq!(s.operator_orgs("op1").await.expect("orgs"), ["o2"], "a failed change changes nothing");
    assert!(matches!(
        s.change_operator("nobody", &OperatorChange::Enable, &row("operator.enable")).await,
        Err(StoreError::NotFound)
    ));
    let actions: Vec<String> =
        s.list_audit(None, 20).await.expect("audit").into_iter().rev().map(|e| e.action).collect();
    assert_eq!(
        actions,
        [
            "operator.disable",
            "operator.enable",
            "operator.role",
            "operator.totp_reset",
            "operator.scope",
            "operator.scope"
        ],
        "one row per change that happened"
    );
}

/// Appends five rows (an operator's and a member's among them) and checks the chain.
async fn five_chained_rows(s: &dyn Store) -> Vec<i64> {
    s.set_audit_chain_keys(store::audit_chain::ChainKeys::new(("m0", [42; 32]), []));
    let now = t0();
    s.insert_operator(&operator("op1", 1, "reviewer", now)).await.expect("insert");
    for n in 0..5 {
        let mut row = audit(now + Duration::seconds(n), Some("op1"), &format!("action.{n}"), Some("a1"));
        if n == 2 {
            row.operator_id = None;
            row.member_id = Some("member-1".into());
        }
        s.append_audit(&row).await.expect("append");
    }
    let report = s.verify_audit_chain().await.expect("verify");
    assert_eq!((report.rows, report.unchained_prefix, report.broken), (5, 0, None));
    let log = s.list_audit(None, 10).await.expect("list");
    assert_eq!(log[2].member_id.as_deref(), Some("member-1"), "member rows keep their member");
    assert_eq!(report.head.as_ref().map(|h| h.0), Some(log[0].seq), "the head is the last row");
    let mut seqs: Vec<i64> = log.iter().map(|e| e.seq).collect();
    seqs.sort();
    seqs
}

async fn concurrent_appends_keep_one_chain(s: Arc<dyn Store>) {
    s.set_audit_chain_keys(store::audit_chain::ChainKeys::new(("m0", [42; 32]), []));
    let now = t0();
    let appends: Vec<_> = (0..16)
        .map(|n| {
            let s = s.clone();
            tokio::spawn(async move { s.append_audit(&audit(now, None, &format!("race.{n}"), None)).await })
        })
        .collect();
    for a in appends {
        a.await.expect("join").expect("append");
    }
    let report = s.verify_audit_chain().await.expect("verify");
    assert_eq!((report.rows, report.broken), (16, None), "concurrent appends still form one chain");
}

mod audit_chain_tampering {
    use super::*;
    use crate::testing::{tamper_pg, tamper_sqlite, Tamper};
    use store::audit_chain::ChainBreak;
    use store::Operators as _;

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn sqlite_edits_and_removals_are_found() {
        for edit in [true, false] {
            let dir = tempfile::tempdir().expect("tempdir");
            let s = crate::testing::sqlite_in(dir.path()).await.expect("sqlite");
            let seqs = five_chained_rows(&s).await;
            // An edited row no longer fits its hash; without a row, the next one is unlinked.
            let (tamper, expect) = if edit {
                (Tamper::Edit { seq: seqs[1], action: "harmless".into() }, 1)
            } else {
                (Tamper::Delete { seq: seqs[1] }, 2)
            };
            tamper_sqlite(&s, &tamper).await.expect("tamper");
            let report = s.verify_audit_chain().await.expect("verify");
            let want = if matches!(tamper, Tamper::Edit { .. }) { ChainBreak::Edited } else { ChainBreak::Unlinked };
            assert_eq!(report.broken, Some((seqs[expect], want)), "{tamper:?}");
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn postgres_edits_and_removals_are_found() {
        for edit in [true, false] {
            let (s, schema) = crate::testing::fresh_pg().await.expect("PostgreSQL must be reachable");
            let seqs = five_chained_rows(&s).await;
            // An edited row no longer fits its hash; without a row, the next one is unlinked.
            let (tamper, expect) = if edit {
                (Tamper::Edit { seq: seqs[1], action: "harmless".into() }, 1)
            } else {
                (Tamper::Delete { seq: seqs[1] }, 2)
            };
            tamper_pg(&s, &tamper).await.expect("tamper");
            let report = s.verify_audit_chain().await.expect("verify");
            let want = if matches!(tamper, Tamper::Edit { .. }) { ChainBreak::Edited } else { ChainBreak::Unlinked };
            assert_eq!(report.broken, Some((seqs[expect], want)), "{tamper:?}");
            crate::testing::drop_pg_schema(&schema).await.expect("drop");
        }
    }
}
