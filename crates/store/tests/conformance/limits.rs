//! Rate limits.

use super::*;

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

async fn rate_limits_can_be_read_and_cleared(s: Arc<dyn Store>) {
    let now = t0();
    let w = Duration::seconds(60);
    assert_eq!(s.rate_limit_count("login-failures:a", now, w).await.expect("count"), 0);
    for _ in 0..3 {
        s.hit_rate_limit("login-failures:a", now, w).await.expect("hit");
    }
    s.hit_rate_limit("login-failures:b", now, w).await.expect("hit");
    assert_eq!(s.rate_limit_count("login-failures:a", now + Duration::seconds(59), w).await.expect("count"), 3);
    assert_eq!(
        s.rate_limit_count("login-failures:a", now + Duration::seconds(60), w).await.expect("count"),
        0,
        "the window is over"
    );
    s.clear_rate_limit("login-failures:a").await.expect("clear");
    assert_eq!(s.rate_limit_count("login-failures:a", now, w).await.expect("count"), 0);
    assert_eq!(s.rate_limit_count("login-failures:b", now, w).await.expect("count"), 1, "other keys stay");
}

/// A refund takes one hit back within the open window, never below zero, never from a closed
/// window (whose next hit starts a new one anyway), and only from its own key.
async fn rate_limit_hits_can_be_refunded(s: Arc<dyn Store>) {
    let now = t0();
    let w = Duration::seconds(60);
    for _ in 0..3 {
        s.hit_rate_limit("login:ip:a", now, w).await.expect("hit");
    }
    s.hit_rate_limit("login:ip:b", now, w).await.expect("hit");
    s.refund_rate_limit("login:ip:a", now + Duration::seconds(1), w).await.expect("refund");
    assert_eq!(s.rate_limit_count("login:ip:a", now + Duration::seconds(1), w).await.expect("count"), 2);
    assert_eq!(s.rate_limit_count("login:ip:b", now, w).await.expect("count"), 1, "other keys stay");
    for _ in 0..5 {
        s.refund_rate_limit("login:ip:a", now + Duration::seconds(2), w).await.expect("refund");
    }
    assert_eq!(s.rate_limit_count("login:ip:a", now + Duration::seconds(2), w).await.expect("count"), 0);
    assert_eq!(s.hit_rate_limit("login:ip:a", now + Duration::seconds(3), w).await.expect("hit"), 1, "not below zero");
    s.refund_rate_limit("login:ip:b", now + Duration::seconds(60), w).await.expect("refund of a closed window");
    assert_eq!(s.rate_limit_count("login:ip:b", now + Duration::seconds(59), w).await.expect("count"), 1);
    s.refund_rate_limit("login:ip:unknown", now, w).await.expect("refund of nothing");
    assert_eq!(s.rate_limit_count("login:ip:unknown", now, w).await.expect("count"), 0);
}

conformance!(rate_limits_count_per_window, rate_limits_can_be_read_and_cleared, rate_limit_hits_can_be_refunded,);
