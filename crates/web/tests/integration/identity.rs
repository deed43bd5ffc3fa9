//! F3 本人確認 over HTTP against the demo roster (see crates/server/demo/roster.csv).

use crate::common::{Backend, Opts, TestApp, PASSWORD};
use serde_json::{json, Value};

struct Person<'a> {
    insurer: &'a str,
    symbol: &'a str,
    number: &'a str,
    branch: &'a str,
    family: &'a str,
    given: &'a str,
    birth: &'a str,
}

const HANAKO: Person = Person {
    insurer: "133033",
    symbol: "1234",
    number: "5678",
    branch: "",
    family: "ヤマダ",
    given: "ハナコ",
    birth: "1990-04-01",
};

/// Walks a verification up to (not including) the confirmation; returns its id.
async fn prepare(t: &TestApp, token: &str, p: &Person<'_>) -> String {
    let (s, v) = t.post_auth("/api/v1/identity-verifications", token, json!({})).await;
    assert_eq!(s, 201, "{v}");
    let id = v["id"].as_str().expect("id").to_string();
    let (s, v) = t
        .post_auth(&format!("/api/v1/identity-verifications/{id}/insurer"), token, json!({"insurer_number": p.insurer}))
        .await;
    assert_eq!(s, 200, "{v}");
    let (s, v) = t
        .post_auth(
            &format!("/api/v1/identity-verifications/{id}/card"),
            token,
            json!({"symbol": p.symbol, "number": p.number, "branch": p.branch}),
        )
        .await;
    assert_eq!(s, 200, "{v}");
    let (s, v) = t
        .post_auth(
            &format!("/api/v1/identity-verifications/{id}/person"),
            token,
            json!({"family_name": p.family, "given_name": p.given, "birth_date": p.birth}),
        )
        .await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["state"], "person_entered");
    id
}

async fn confirm(t: &TestApp, token: &str, id: &str) -> (u16, Value) {
    t.post_auth(&format!("/api/v1/identity-verifications/{id}/confirm"), token, json!({})).await
}

async fn verify(t: &TestApp, token: &str, p: &Person<'_>) -> (u16, Value) {
    let id = prepare(t, token, p).await;
    confirm(t, token, &id).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn completes_then_the_same_record_gives_error_one() {
    let t = TestApp::start(Opts::default()).await;
    let a = t.register("hanako@example.com", PASSWORD).await;
    // Hiragana, half-width kana and a slashed date are accepted.
    let loose = Person { family: "やまだ", given: "ﾊﾅｺ", birth: "1990/4/1", ..HANAKO };
    let id = prepare(&t, &a, &loose).await;
    let (_, v) = t.get(&format!("/api/v1/identity-verifications/{id}"), Some(&a)).await;
    assert_eq!(
        (v["family_name"].as_str(), v["given_name"].as_str(), v["birth_date"].as_str()),
        (Some("ヤマダ"), Some("ハナコ"), Some("1990-04-01"))
    );
    assert_eq!(v["card_pattern"], 4);
    let (s, v) = confirm(&t, &a, &id).await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["state"], "completed");
    let (_, me) = t.get("/api/v1/me", Some(&a)).await;
    assert_eq!(me["identity_verified"], true);
    let (s, v) = t.post_auth("/api/v1/identity-verifications", &a, json!({})).await;
    assert_eq!((s, v["error"]["code"].as_str()), (409, Some("already_verified")));

    // Another account (registered with another email) for the same person: error ①.
    let b = t.register("hanako.new@example.com", PASSWORD).await;
    let (s, v) = verify(&t, &b, &HANAKO).await;
    assert_eq!((s, v["error"]["code"].as_str()), (409, Some("identity_already_linked")), "{v}");
    insta::assert_json_snapshot!("api_identity_already_linked_ja", v);
    let (_, me) = t.get("/api/v1/me", Some(&b)).await;
    assert_eq!(me["identity_verified"], false);
    // Another account's verification is not visible.
    assert_eq!(t.get(&format!("/api/v1/identity-verifications/{id}"), Some(&b)).await.0, 404);
    t.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_eligible_match_gives_error_two() {
    let t = TestApp::start(Opts::default()).await;
    let a = t.register("typo@example.com", PASSWORD).await;
    for (label, p) in [
        ("typo in the number", Person { number: "5677", ..HANAKO }),
        ("wrong birth date", Person { birth: "1990-04-02", ..HANAKO }),
        (
            "eligibility ended",
            Person { number: "5680", family: "タナカ", given: "イチロウ", birth: "1970-01-15", ..HANAKO },
        ),
        (
            "wrong branch",
            Person {
                number: "5679", branch: "02", family: "サトウ", given: "タロウ", birth: "1985-12-24", ..HANAKO
            },
        ),
    ] {
        let (s, v) = verify(&t, &a, &p).await;
        assert_eq!((s, v["error"]["code"].as_str()), (422, Some("identity_no_match")), "{label}: {v}");
        assert_eq!(v["error"]["inquiry_url"], "/inquiry/new");
        insta::assert_json_snapshot!("api_identity_no_match_ja", v);
    }
    // The right branch matches.
    let (s, v) = verify(
        &t,
        &a,
        &Person {
            number: "5679", branch: "01", family: "サトウ", given: "タロウ", birth: "1985-12-24", ..HANAKO
        },
    )
    .await;
    assert_eq!(s, 200, "{v}");
    t.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn input_errors_are_specific() {
    let t = TestApp::start(Opts::default()).await;
    let a = t.register("input@example.com", PASSWORD).await;
    let (_, v) = t.post_auth("/api/v1/identity-verifications", &a, json!({})).await;
    let id = v["id"].as_str().expect("id").to_string();
    let path = |step: &str| format!("/api/v1/identity-verifications/{id}/{step}");
    let (s, v) = t.post_auth(&path("card"), &a, json!({"symbol": "1234", "number": "5678"})).await;
    assert_eq!((s, v["error"]["code"].as_str()), (409, Some("wrong_step")), "insurer number first");
    let (s, v) = t.post_auth(&path("insurer"), &a, json!({"insurer_number": "06132013"})).await;
    assert_eq!((s, v["error"]["code"].as_str()), (409, Some("insurer_mismatch")));
    let (s, v) = t.post_auth(&path("insurer"), &a, json!({"insurer_number": "133034"})).await;
    assert_eq!((s, v["error"]["code"].as_str()), (422, Some("insurer_number_check_digit")));
    assert_eq!(t.post_auth(&path("insurer"), &a, json!({"insurer_number": "１３３０３３"})).await.0, 200);
    for (body, code) in [
        (json!({"symbol": "", "number": "5678"}), "card_symbol_required"),
        (json!({"symbol": "1234", "number": ""}), "card_number_required"),
        (json!({"symbol": "1234", "number": "56a8"}), "card_number_invalid"),
        (json!({"symbol": "1234", "number": "5678", "branch": "1"}), "card_branch_invalid"),
    ] {
        let (s, v) = t.post_auth(&path("card"), &a, body.clone()).await;
        assert_eq!((s, v["error"]["code"].as_str()), (422, Some(code)), "{body}: {v}");
    }
    // Full-width digits are normalized.
    let (s, v) =
        t.post_auth(&path("card"), &a, json!({"symbol": "１２３４", "number": "５６７８", "branch": "０１"})).await;
    assert_eq!(s, 200, "{v}");
    assert_eq!((v["card"]["symbol"].as_str(), v["card"]["branch"].as_str()), (Some("1234"), Some("01")));
    for (family, birth, code) in [
        ("山田", "1990-04-01", "name_kanji"),
        ("Yamada", "1990-04-01", "name_latin"),
        ("ヤマダ", "1990-13-01", "birth_date_invalid"),
        ("ヤマダ", "2999-01-01", "birth_date_invalid"),
    ] {
        let (s, v) = t
            .post_auth(&path("person"), &a, json!({"family_name": family, "given_name": "ハナコ", "birth_date": birth}))
            .await;
        assert_eq!((s, v["error"]["code"].as_str()), (422, Some(code)), "{family} {birth}: {v}");
    }
    t.stop().await;
}

/// 「入力内容を確認してやり直す」 (#16): after no match the same verification goes back to the
/// confirmation with everything kept; one field is corrected and confirmed. Not after ①, not
/// before a failure, and not once the attempts are spent.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_retry_after_no_match_keeps_every_value() {
    let t = TestApp::start(Opts::default()).await;
    let a = t.register("typo@example.com", PASSWORD).await;
    let id = prepare(&t, &a, &Person { number: "5677", ..HANAKO }).await;
    let retry = format!("/api/v1/identity-verifications/{id}/retry");
    let (s, v) = t.post_auth(&retry, &a, json!({})).await;
    assert_eq!((s, v["error"]["code"].as_str()), (409, Some("wrong_step")), "nothing failed yet: {v}");
    assert_eq!(confirm(&t, &a, &id).await.0, 422);

    let (s, v) = t.post_auth(&retry, &a, json!({})).await;
    assert_eq!((s, v["state"].as_str()), (200, Some("person_entered")), "{v}");
    assert_eq!((v["card"]["symbol"].as_str(), v["card"]["number"].as_str()), (Some("1234"), Some("5677")));
    assert_eq!((v["family_name"].as_str(), v["birth_date"].as_str()), (Some("ヤマダ"), Some("1990-04-01")));
    let (s, v) = t
        .post_auth(
            &format!("/api/v1/identity-verifications/{id}/card"),
            &a,
            json!({"symbol": "1234", "number": "5678", "branch": ""}),
        )
        .await;
    assert_eq!((s, v["state"].as_str()), (200, Some("person_entered")), "only 番号 typed again: {v}");
    let (s, v) = confirm(&t, &a, &id).await;
    assert_eq!((s, v["state"].as_str()), (200, Some("completed")), "{v}");

    // After ① there is nothing to correct.
    let b = t.register("second@example.com", PASSWORD).await;
    let id = prepare(&t, &b, &HANAKO).await;
    assert_eq!(confirm(&t, &b, &id).await.0, 409);
    let (s, v) = t.post_auth(&format!("/api/v1/identity-verifications/{id}/retry"), &b, json!({})).await;
    assert_eq!((s, v["error"]["code"].as_str()), (409, Some("wrong_step")), "{v}");
    // Another member's verification is not found.
    let (s, _) = t.post_auth(&retry, &b, json!({})).await;
    assert_eq!(s, 404);
    t.stop().await;
}

/// The web pages: the failure page offers 「入力内容を確認してやり直す」 while attempts are left
/// and says how many; the retry lands on the confirmation with the values; once spent, no retry.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_retry_page_shows_the_tries_left_until_none() {
    let t = TestApp::start(Opts::default()).await;
    let token = t.register("pages@example.com", PASSWORD).await;
    let b = crate::common::browser::Browser::not_following(&t);
    assert_eq!(b.login("pages@example.com", PASSWORD).await.status, 303);
    for n in (0..5).rev() {
        let id = prepare(&t, &token, &Person { number: "5677", ..HANAKO }).await;
        let page = b.get(&format!("/identity/{id}")).await;
        assert!(page.has(&format!("本人確認はあと{}回お試しいただけます", n + 1)), "{}", page.html);
        confirm(&t, &token, &id).await;
        let failed = b.get(&format!("/identity/{id}")).await;
        assert!(!failed.has("②") && !failed.has("①"), "{}", failed.html);
        if n > 0 {
            assert!(failed.has(&format!("本人確認はあと{n}回お試しいただけます")), "{}", failed.html);
            assert!(failed.has(&format!("action=\"/identity/{id}/retry\"")), "{}", failed.html);
            let back = b.post(&format!("/identity/{id}/retry"), &[("csrf", failed.csrf().as_str())]).await;
            assert_eq!(back.status, 303);
            let confirm_page = b.get(&format!("/identity/{id}")).await;
            assert!(confirm_page.has("この内容で本人確認する") && confirm_page.has("5677"), "{}", confirm_page.html);
        } else {
            assert!(!failed.has("/retry\""), "no retry when none is left: {}", failed.html);
            assert!(failed.has("本人確認の試行回数が上限に達しました"), "{}", failed.html);
            let csrf = b.get("/identity").await.csrf();
            let late = b.post(&format!("/identity/{id}/retry"), &[("csrf", csrf.as_str())]).await;
            assert_eq!(late.status, 429);
        }
    }
    t.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn attempts_are_limited_per_account() {
    let t = TestApp::start(Opts::default()).await;
    let a = t.register("prober@example.com", PASSWORD).await;
    for _ in 0..5 {
        let (s, _) = verify(&t, &a, &Person { number: "9999", ..HANAKO }).await;
        assert_eq!(s, 422);
    }
    // Even the right data is refused now: the roster cannot be probed.
    let (s, v) = verify(&t, &a, &HANAKO).await;
    assert_eq!((s, v["error"]["code"].as_str()), (429, Some("verification_locked")), "{v}");
    insta::assert_json_snapshot!("api_verification_locked_ja", v);
    t.clock.advance(time::Duration::hours(24));
    // The session ended too (24 h absolute timeout): log in again.
    let (s, v) = t.post("/api/v1/sessions", json!({"email": "prober@example.com", "password": PASSWORD})).await;
    assert_eq!(s, 201, "{v}");
    let a = v["token"].as_str().expect("token").to_string();
    let (s, v) = verify(&t, &a, &HANAKO).await;
    assert_eq!(s, 200, "a day later: {v}");
    t.stop().await;
}

async fn race(backend: Backend) {
    let t = TestApp::start(Opts { backend, ..Opts::default() }).await;
    let a = t.register("racer.a@example.com", PASSWORD).await;
    let b = t.register("racer.b@example.com", PASSWORD).await;
    let ida = prepare(&t, &a, &HANAKO).await;
    let idb = prepare(&t, &b, &HANAKO).await;
    let (ra, rb) = tokio::join!(confirm(&t, &a, &ida), confirm(&t, &b, &idb));
    let mut statuses = [ra.0, rb.0];
    statuses.sort();
    assert_eq!(statuses, [200, 409], "exactly one wins: {ra:?} {rb:?}");
    t.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_accounts_racing_for_one_record_on_sqlite() {
    race(Backend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_accounts_racing_for_one_record_on_postgres() {
    race(Backend::Postgres).await;
}
