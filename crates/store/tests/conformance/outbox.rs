//! The transactional mail outbox.

use super::*;

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
    s.mark_mail_failed("m2", "connection refused", at + Duration::seconds(30), true).await.expect("failed");
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

/// When the relay is back, mails waiting out a backoff after a transient failure become due at
/// once; a claimed mail (another worker is sending it) and one a relay refused for good do not.
async fn a_relay_back_releases_waiting_mails_but_never_claimed_ones(s: Arc<dyn Store>) {
    let t = t0();
    for (n, id) in ["waiting", "refused", "claimed"].into_iter().enumerate() {
        s.enqueue_mail(&mail(id, t + Duration::seconds(n as i64))).await.expect("enqueue");
    }
    let now = t + Duration::seconds(2);
    let claimed = s.claim_due_mails(now, Duration::seconds(120), 2).await.expect("claim");
    assert_eq!(claimed.iter().map(|m| m.id.as_str()).collect::<Vec<_>>(), ["waiting", "refused"]);
    s.mark_mail_failed("waiting", "connection refused", now + Duration::minutes(8), true).await.expect("failed");
    s.mark_mail_failed("refused", "550 no such user", now + Duration::minutes(8), false).await.expect("failed");
    assert_eq!(s.claim_due_mails(now, Duration::seconds(120), 1).await.expect("claim").len(), 1, "claimed");

    let later = now + Duration::seconds(5);
    assert_eq!(s.release_waiting_mails(later).await.expect("release"), 1);
    let due = s.claim_due_mails(later, Duration::seconds(120), 10).await.expect("claim");
    assert_eq!(due.iter().map(|m| m.id.as_str()).collect::<Vec<_>>(), ["waiting"], "only the waiting one");
    let unsent = s.unsent_mails(10).await.expect("unsent");
    assert_eq!(unsent.len(), 3);
    assert!(unsent.iter().all(|m| m.retry_wait != 1), "{unsent:?}");

    // A dropped mail (its code expired) is settled: not pending, never claimed, purged later.
    s.drop_mail("waiting", later, "not sent: its code expired before delivery").await.expect("drop");
    assert_eq!(s.pending_mail_count().await.expect("count"), 2);
    assert!(s.unsent_mails(10).await.expect("unsent").iter().all(|m| m.id != "waiting"));
    s.release_waiting_mails(later + Duration::hours(2)).await.expect("release");
    let due = s.claim_due_mails(later + Duration::hours(2), Duration::seconds(120), 10).await.expect("claim");
    assert!(due.iter().all(|m| m.id != "waiting"), "a dropped mail is never claimed");
    assert_eq!(s.delete_sent_mails(later).await.expect("purge"), 1, "purged like a sent one");
}

conformance!(outbox_claims_leases_and_retries, a_relay_back_releases_waiting_mails_but_never_claimed_ones,);
