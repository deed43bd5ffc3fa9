//! Retention (issue #14): what the periodic clean-up (`app::jobs::clean_up`) forgets, on the
//! manual clock — an abandoned eKYC application's pictures and face embeddings, sent mails
//! (their bodies hold one-time passwords) — and what it must never lose: mail not yet sent.

use std::time::{Duration as StdDuration, Instant};

use crate::common::ekyc::{face, licence, selfie};
use crate::common::{Backend, Opts, TestApp, PASSWORD};
use app::error::ServiceError;
use app::services::auth::{authenticate, Member};
use app::services::ekyc::{self, Capture};
use domain::ekyc::{DocumentKind, EkycState};
use rand::SeedableRng;
use time::Duration;

async fn capture(t: &TestApp, m: &Member, id: &str, capture: Capture, bytes: Vec<u8>) -> Result<(), ServiceError> {
    let token = ekyc::capture_token(&t.app, m, id, capture).await?;
    let mut rng = rand::rngs::StdRng::seed_from_u64(7);
    ekyc::upload_with_rng(&t.app, m, id, capture, &token, vec![bytes], &mut rng).await.map(|_| ())
}

/// A member who stops after the frontal selfie (one refused attempt on the way) leaves two
/// pictures and two face embeddings behind; 30 days after the last step they are gone, the
/// application starts over and the refused attempt still counts.
async fn an_abandoned_application_does_not_keep_the_members_face(t: TestApp) {
    let app = &t.app;
    let token = t.register("abandon@example.com", PASSWORD).await;
    t.verify_identity(&token).await;
    let m = authenticate(app, &token).await.expect("auth").expect("member");
    let id = ekyc::start(app, &m).await.expect("start").record.id;
    ekyc::choose_document(app, &m, &id, DocumentKind::DriversLicense).await.expect("choose");
    capture(&t, &m, &id, Capture::DocumentFront, licence("leonard/leonard1.png")).await.expect("front");
    ekyc::answer_remarks(app, &m, &id, false).await.expect("remarks");
    ekyc::confirm_document(app, &m, &id).await.expect("confirm");
    let stranger = capture(&t, &m, &id, Capture::SelfieFrontal, selfie(&face("penny/penny2.png"))).await;
    assert!(matches!(stranger, Err(ServiceError::FaceMismatch { .. })), "{stranger:?}");
    capture(&t, &m, &id, Capture::SelfieFrontal, selfie(&face("leonard/leonard2.png"))).await.expect("frontal");
    let left = ekyc::current(app, &m).await.expect("load").expect("application");
    assert_eq!(left.data.app.state, EkycState::FrontalVerified);
    assert!(left.data.document_embedding.is_some() && left.data.frontal_embedding.is_some());
    assert_eq!(left.data.images.len(), 2);
    let images = app.store.ekyc_images(&id).await.expect("images");
    assert_eq!(images.len(), 2);

    t.clock.advance(Duration::days(29));
    let purged = app::jobs::clean_up(app).await.expect("clean-up");
    assert_eq!((purged.abandoned_applications, purged.abandoned_images), (0, 0), "kept for 30 days");
    for image in &images {
        app.images.get(&image.id).await.expect("still there");
    }

    t.clock.advance(Duration::days(2));
    let purged = app::jobs::clean_up(app).await.expect("clean-up");
    assert_eq!((purged.abandoned_applications, purged.abandoned_images), (1, 2));
    for image in app.store.ekyc_images(&id).await.expect("images") {
        assert!(image.deleted_at.is_some(), "marked deleted");
        assert!(
            matches!(app.images.get(&image.id).await, Err(app::images::ImageError::NotFound)),
            "gone from the image store"
        );
    }
    let after = ekyc::current(app, &m).await.expect("load").expect("application");
    assert_eq!(after.record.id, id);
    assert!(after.data.document_embedding.is_none(), "document embedding forgotten");
    assert!(after.data.frontal_embedding.is_none(), "frontal embedding forgotten");
    assert!(after.data.images.is_empty() && after.data.frontal_sha256.is_none());
    assert!(after.data.document_reading.is_none(), "what OCR read on the card goes with the card");
    assert_eq!(after.data.app.state, EkycState::Started, "nothing to resume from: the member starts over");
    assert_eq!(after.data.app.face_attempts, 1, "waiting does not give face attempts back");
    assert!(after.record.open);

    // Nothing left to forget; the member can start again on the same application.
    let purged = app::jobs::clean_up(app).await.expect("clean-up");
    assert_eq!((purged.abandoned_applications, purged.abandoned_images), (0, 0));
    // The member is told why the application starts over, on the page and in the API.
    let b = crate::common::browser::Browser::new(&t);
    b.login("abandon@example.com", PASSWORD).await;
    let page = b.get(&format!("/ekyc/{id}")).await;
    assert!(page.has("撮影した画像を削除しました") && page.has("選択"), "{}", page.html);
    // A month later the API session is long over: a new one.
    let (s, v) =
        t.post("/api/v1/sessions", serde_json::json!({"email": "abandon@example.com", "password": PASSWORD})).await;
    assert_eq!(s, 201, "{v}");
    let token = v["token"].as_str().expect("token").to_string();
    let (s, v) = t.get(&format!("/api/v1/ekyc-applications/{id}"), Some(&token)).await;
    assert_eq!((s, v["state"].as_str(), v["restarted"].as_bool()), (200, Some("started"), Some(true)), "{v}");
    let resumed = ekyc::start(app, &m).await.expect("start again");
    assert_eq!(resumed.record.id, id);
    ekyc::choose_document(app, &m, &id, DocumentKind::DriversLicense).await.expect("choose again");
    let (_, v) = t.get(&format!("/api/v1/ekyc-applications/{id}"), Some(&token)).await;
    assert!(v.get("restarted").is_none(), "only while it starts over: {v}");
    t.stop().await;
}

/// Waits (bounded) until the mail worker has sent everything it can.
async fn until_pending(t: &TestApp, n: i64) {
    let deadline = Instant::now() + StdDuration::from_secs(15);
    while t.app.store.pending_mail_count().await.expect("count") != n {
        assert!(Instant::now() < deadline, "the outbox never got down to {n} unsent mail(s)");
        tokio::time::sleep(StdDuration::from_millis(25)).await;
    }
}

/// A sent mail's body holds a one-time password: 7 days after it went out it leaves the
/// outbox. A mail that has not gone out yet is never purged, however old.
async fn sent_mails_do_not_keep_their_codes_in_the_outbox_and_unsent_ones_are_never_lost(t: TestApp) {
    let app = &t.app;
    t.register("mail@example.com", PASSWORD).await;
    until_pending(&t, 0).await;
    // A mail the worker cannot send (its payload does not open): it is retried, never dropped.
    let stuck = store::NewMail { id: "stuck".into(), payload: b"not sealed".to_vec(), created_at: app.now() };
    app.store.enqueue_mail(&stuck).await.expect("enqueue");

    t.clock.advance(Duration::days(6));
    assert_eq!(app::jobs::clean_up(app).await.expect("clean-up").mails, 0, "kept for 7 days");
    t.clock.advance(Duration::days(2));
    let purged = app::jobs::clean_up(app).await.expect("clean-up");
    assert!(purged.mails >= 1, "the registration code's mail is gone: {purged:?}");
    assert_eq!(app::jobs::clean_up(app).await.expect("clean-up").mails, 0, "nothing sent is left");
    assert_eq!(app.store.pending_mail_count().await.expect("count"), 1, "the unsent mail stays");
    t.stop().await;
}

on_both_backends!(
    an_abandoned_application_does_not_keep_the_members_face,
    sent_mails_do_not_keep_their_codes_in_the_outbox_and_unsent_ones_are_never_lost,
);
