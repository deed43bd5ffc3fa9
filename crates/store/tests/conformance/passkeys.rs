//! Passkeys (#13): one credential once, per member, re-sealed after each use, removable by
//! their owner only.

use super::*;
use store::PasskeyRecord;

fn passkey(id: &str, user: &str, credential: u8, now: OffsetDateTime) -> PasskeyRecord {
    PasskeyRecord {
        id: id.into(),
        user_id: user.into(),
        credential_id: vec![credential; 16],
        data_enc: vec![credential; 40],
        created_at: now,
        last_used_at: None,
    }
}

async fn passkeys_are_unique_per_credential_and_owned(s: Arc<dyn Store>) {
    let now = t0();
    s.insert_org(&org("o1", "133033", true), now).await.expect("org");
    s.create_user(&user("u1", "o1", 1, now), &[], None).await.expect("user");
    s.create_user(&user("u2", "o1", 2, now), &[], None).await.expect("user");
    s.insert_passkey(&passkey("p1", "u1", 1, now)).await.expect("insert");
    s.insert_passkey(&passkey("p2", "u1", 2, now + Duration::seconds(1))).await.expect("insert");
    assert!(matches!(s.insert_passkey(&passkey("p3", "u2", 1, now)).await, Err(StoreError::Duplicate)));
    let mine = s.passkeys_of_user("u1").await.expect("list");
    assert_eq!(mine.iter().map(|p| p.id.as_str()).collect::<Vec<_>>(), vec!["p1", "p2"]);
    assert!(s.passkeys_of_user("u2").await.expect("list").is_empty());

    s.passkey_used("p1", &[7; 40], now + Duration::hours(1)).await.expect("used");
    let p1 = s.passkeys_of_user("u1").await.expect("list").remove(0);
    assert_eq!((p1.data_enc, p1.last_used_at), (vec![7; 40], Some(now + Duration::hours(1))));

    assert!(matches!(s.delete_passkey("u2", "p1").await, Err(StoreError::NotFound)), "not theirs");
    s.delete_passkey("u1", "p1").await.expect("delete");
    assert_eq!(s.passkeys_of_user("u1").await.expect("list").len(), 1);
}

conformance!(passkeys_are_unique_per_credential_and_owned,);
