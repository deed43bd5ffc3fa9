//! eKYC applications, images and capture tokens.

use super::*;

pub(crate) fn ekyc(id: &str, user: &str, at: OffsetDateTime) -> EkycRecord {
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
        sampled: false,
    }
}

async fn ekyc_applications_one_open_per_member_versioned_and_queued(s: Arc<dyn Store>) {
    let now = t0();
    s.insert_org(&org("o1", "133033", true), now).await.expect("org");
    for (i, u) in ["u1", "u2"].iter().enumerate() {
        s.create_user(&user(u, "o1", i as u8, now), &[], None).await.expect("user");
    }
    s.insert_ekyc(&ekyc("a1", "u1", now)).await.expect("insert");
    assert!(
        matches!(s.insert_ekyc(&ekyc("a2", "u1", now)).await, Err(StoreError::Duplicate)),
        "one open application per member"
    );
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
    let queue: Vec<String> =
        s.ekyc_queue("pending_review", 10).await.expect("queue").into_iter().map(|a| a.id).collect();
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
    let due: Vec<String> =
        s.ekyc_images_to_delete(now + Duration::days(30), 10).await.expect("due").into_iter().map(|i| i.id).collect();
    assert_eq!(due, ["i1", "i2"]);
    s.mark_ekyc_image_deleted("i1", now + Duration::days(30)).await.expect("mark");
    s.mark_ekyc_image_deleted("i1", now + Duration::days(31)).await.expect("again is harmless");
    let due: Vec<String> =
        s.ekyc_images_to_delete(now + Duration::days(30), 10).await.expect("due").into_iter().map(|i| i.id).collect();
    assert_eq!(due, ["i2"]);
    assert_eq!(s.ekyc_images("a1").await.expect("images")[0].deleted_at, Some(now + Duration::days(30)));
}

/// Uploads a change to application `id` with the capture token `hash`: `true` when it was
/// written (the token used up with it); `false` when refused, and then (when nothing runs
/// alongside, `alone`) nothing changed.
async fn upload_with(s: &Arc<dyn Store>, hash: u8, id: &str, purpose: &str, at: OffsetDateTime) -> bool {
    upload(s, hash, id, purpose, at, true).await
}

async fn upload(s: &Arc<dyn Store>, hash: u8, id: &str, purpose: &str, at: OffsetDateTime, alone: bool) -> bool {
    let Some(before) = s.get_ekyc(id).await.expect("get") else { return false };
    let mut next = before.clone();
    next.data.push(hash);
    next.updated_at = at;
    let hashes = [vec![0; 32], vec![hash; 32]];
    match s.update_ekyc_using_token(&next, CaptureTokenUse { hashes: &hashes, purpose, at }).await {
        Ok(()) => true,
        Err(StoreError::Conflict) => {
            if alone {
                assert_eq!(s.get_ekyc(id).await.expect("get"), Some(before), "a refused upload changes nothing");
            }
            false
        }
        Err(e) => panic!("{e:?}"),
    }
}

async fn capture_tokens_work_once_for_their_step_until_they_expire(s: Arc<dyn Store>) {
    let now = t0();
    s.insert_org(&org("o1", "133033", true), now).await.expect("org");
    s.create_user(&user("u1", "o1", 1, now), &[], None).await.expect("user");
    s.create_user(&user("u2", "o1", 2, now), &[], None).await.expect("user");
    s.insert_ekyc(&ekyc("a1", "u1", now)).await.expect("insert");
    s.insert_ekyc(&ekyc("a2", "u2", now)).await.expect("insert");
    let expires = now + Duration::minutes(10);
    s.issue_capture_token(&[1; 32], "a1", "document_front", expires).await.expect("issue");
    s.issue_capture_token(&[2; 32], "a1", "selfie_frontal", expires).await.expect("issue");
    assert!(s.capture_token_usable(&[1; 32], "a1", "document_front", now).await.expect("look"));
    assert!(!s.capture_token_usable(&[1; 32], "a1", "selfie_frontal", now).await.expect("look"), "another step");
    assert!(!s.capture_token_usable(&[1; 32], "a2", "document_front", now).await.expect("look"), "another app");
    assert!(!s.capture_token_usable(&[2; 32], "a1", "selfie_frontal", expires).await.expect("look"), "stale");
    assert!(!upload_with(&s, 1, "a1", "selfie_frontal", now).await, "another step");
    assert!(!upload_with(&s, 1, "a2", "document_front", now).await, "another application");
    assert!(!upload_with(&s, 2, "a1", "selfie_frontal", expires).await, "stale");
    // A look does not use the token up; an upload does, once, whichever of the racers wins.
    assert!(s.capture_token_usable(&[1; 32], "a1", "document_front", now).await.expect("look"));
    let racers: Vec<_> = (0..5)
        .map(|_| {
            let s = s.clone();
            tokio::spawn(async move { upload(&s, 1, "a1", "document_front", now, false).await })
        })
        .collect();
    let mut wins = 0;
    for r in racers {
        wins += usize::from(r.await.expect("join"));
    }
    assert_eq!(wins, 1, "a token is used once");
    assert!(!upload_with(&s, 1, "a1", "document_front", now).await, "and not again");
    assert!(!s.capture_token_usable(&[1; 32], "a1", "document_front", now).await.expect("look"));
    // A stale version uses nothing up: the token still works for the current one.
    let mut stale = s.get_ekyc("a1").await.expect("get").expect("present");
    stale.version -= 1;
    let hashes = [vec![2; 32]];
    let r = s
        .update_ekyc_using_token(&stale, CaptureTokenUse { hashes: &hashes, purpose: "selfie_frontal", at: now })
        .await;
    assert!(matches!(r, Err(StoreError::Conflict)), "{r:?}");
    assert!(s.capture_token_usable(&[2; 32], "a1", "selfie_frontal", now).await.expect("look"));

    // Clean-up removes expired tokens (used or not), keeps live ones.
    s.issue_capture_token(&[3; 32], "a1", "selfie_angled", expires + Duration::minutes(5)).await.expect("issue");
    assert_eq!(s.delete_stale_capture_tokens(now).await.expect("clean"), 0, "nothing expired yet");
    assert_eq!(s.delete_stale_capture_tokens(expires + Duration::seconds(1)).await.expect("clean"), 2);
    assert!(upload_with(&s, 3, "a1", "selfie_angled", expires + Duration::seconds(2)).await, "the live one stays");
}

conformance!(
    ekyc_applications_one_open_per_member_versioned_and_queued,
    ekyc_images_are_listed_and_retired_after_the_decision,
    capture_tokens_work_once_for_their_step_until_they_expire,
);
