//! Regression tests of issue #14 for accounts: no account oracle in password reset,
//! one-time code budgets per account and flow, the secret-question lock without a race.

use crate::common::browser::{Browser, Page};
use crate::common::ekyc::complete_f4;
use crate::common::*;
use app::services::auth::authenticate;
use domain::otp;
use serde_json::{json, Value};
use time::Duration;

/// Wrong one-time codes per code.
const PER_CODE: usize = otp::MAX_ATTEMPTS as usize;
/// Code attempts per flow and day, across resends.
const PER_FLOW: usize = otp::CODE_ATTEMPTS_PER_FLOW as usize;
/// Code attempts per account and day, across flows.
const PER_ACCOUNT: usize = otp::CODE_ATTEMPTS_PER_ACCOUNT as usize;

const KNOWN: &str = "hanamizuki.tsubasa@example.com";
const GHOST: &str = "kazahana.michiru@example.com";
const NEW_PASSWORD: &str = "Kitsune-Udon-2027?";

/// The status and the error code of an API answer (`ok` for a success).
fn outcome((status, v): (u16, Value)) -> (u16, String) {
    (status, v["error"]["code"].as_str().unwrap_or("ok").to_string())
}

fn expect(status: u16, code: &str) -> (u16, String) {
    (status, code.to_string())
}

/// A password built from the address's local part: weak for that address only.
fn built_from(email: &str) -> String {
    format!("{}2024", email.split('@').next().expect("local part"))
}

async fn start_reset(t: &TestApp, email: &str) -> String {
    let (s, v) = t.post("/api/v1/password-resets", json!({"email": email})).await;
    assert_eq!(s, 202, "{v}");
    v["id"].as_str().expect("id").to_string()
}

async fn complete(t: &TestApp, id: &str, code: &str, password: &str) -> (u16, String) {
    outcome(
        t.post(&format!("/api/v1/password-resets/{id}/complete"), json!({"code": code, "new_password": password}))
            .await,
    )
}

async fn resend(t: &TestApp, id: &str) -> (u16, String) {
    outcome(t.post(&format!("/api/v1/password-resets/{id}/resend"), json!({})).await)
}

/// Sends the same attempt to a reset of a real account and of an unknown address; both must
/// get the same answer, which is returned.
async fn both(t: &TestApp, known: &str, ghost: &str, code: &str, password: &str, what: &str) -> (u16, String) {
    let k = complete(t, known, code, password).await;
    let g = complete(t, ghost, code, password).await;
    assert_eq!(k, g, "{what}: an unknown address must answer like a real account");
    k
}

/// What the flow of an unknown address answers, compared at every step with a real account's:
/// the password rules, each wrong code up to and past the code's attempts, a resend, the
/// flow's daily budget across resends, the account's across flows, an expired code.
async fn reset_answers_the_same_for_unknown_accounts_until_the_budget_is_spent(t: TestApp) {
    t.register(KNOWN, PASSWORD).await;
    let (known, ghost) = (start_reset(&t, KNOWN).await, start_reset(&t, GHOST).await);
    let code = t.wait_code(KNOWN, 2).await;
    let wrong = wrong_code(&code);

    // The password rules take the typed address, account or not.
    assert_eq!(complete(&t, &known, &code, &built_from(KNOWN)).await, expect(422, "password_weak"));
    assert_eq!(complete(&t, &ghost, &code, &built_from(GHOST)).await, expect(422, "password_weak"));

    // Wrong codes: `code_wrong` until the code's attempts are spent, then `code_exhausted`.
    for n in 1..=PER_CODE + 1 {
        let got = both(&t, &known, &ghost, &wrong, NEW_PASSWORD, &format!("wrong code #{n}")).await;
        let want = if n < PER_CODE { expect(422, "code_wrong") } else { expect(422, "code_exhausted") };
        assert_eq!(got, want, "wrong code #{n}");
    }

    // A resend answers the same and brings a fresh code, mailed to the real account only...
    t.clock.advance(Duration::seconds(61));
    assert_eq!(resend(&t, &known).await, resend(&t, &ghost).await);
    let code = t.wait_code(KNOWN, 3).await;
    let wrong = wrong_code(&code);
    // ... but not a fresh budget: the flow has `PER_FLOW` attempts a day across resends.
    for n in PER_CODE + 2..=PER_FLOW {
        let got = both(&t, &known, &ghost, &wrong, NEW_PASSWORD, &format!("wrong code #{n}")).await;
        assert_eq!(got, expect(422, "code_wrong"), "wrong code #{n}");
    }
    let spent = both(&t, &known, &ghost, &wrong, NEW_PASSWORD, "past the flow's budget").await;
    assert_eq!(spent, expect(429, "code_budget_spent"));
    assert_eq!(complete(&t, &known, &code, NEW_PASSWORD).await, spent, "not even the right code is checked");
    let (_, v) = t
        .post(&format!("/api/v1/password-resets/{ghost}/complete"), json!({"code": code, "new_password": NEW_PASSWORD}))
        .await;
    assert_eq!(v["error"]["inquiry_url"], "/inquiry/new", "{v}");
    assert!(v["error"]["message"].as_str().is_some_and(|m| m.contains("お問い合わせ")), "{v}");

    // The account has `PER_ACCOUNT` attempts a day across flows (10 counted so far).
    let (known, ghost) = (start_reset(&t, KNOWN).await, start_reset(&t, GHOST).await);
    let code = t.wait_code(KNOWN, 4).await;
    let wrong = wrong_code(&code);
    for n in 1..=PER_ACCOUNT - PER_FLOW {
        let got = both(&t, &known, &ghost, &wrong, NEW_PASSWORD, &format!("second flow, wrong code #{n}")).await;
        assert_eq!(got.0, 422, "second flow, wrong code #{n}: {got:?}");
    }
    let (known, ghost) = (start_reset(&t, KNOWN).await, start_reset(&t, GHOST).await);
    let code = t.wait_code(KNOWN, 5).await;
    assert_eq!(
        both(&t, &known, &ghost, &code, NEW_PASSWORD, "third flow").await,
        expect(429, "code_budget_spent"),
        "a new flow does not bring a new budget for the account"
    );

    // The next day: an expired code answers the same, and the account's code works again.
    t.clock.advance(Duration::hours(25));
    let (known, ghost) = (start_reset(&t, KNOWN).await, start_reset(&t, GHOST).await);
    let code = t.wait_code(KNOWN, 6).await;
    t.clock.advance(Duration::minutes(10));
    assert_eq!(both(&t, &known, &ghost, &code, NEW_PASSWORD, "expired").await, expect(422, "code_expired"));
    assert_eq!(resend(&t, &known).await, resend(&t, &ghost).await);
    let code = t.wait_code(KNOWN, 7).await;
    assert_eq!(complete(&t, &ghost, &code, NEW_PASSWORD).await, expect(422, "code_wrong"));
    assert_eq!(complete(&t, &known, &code, NEW_PASSWORD).await, expect(200, "ok"));
    assert!(t.mails_to(GHOST).is_empty(), "nothing is ever mailed to an unknown address");
    t.stop().await;
}

/// A registration's code: resending never buys more than `PER_FLOW` attempts a day for the
/// flow, new flows for the same address never more than `PER_ACCOUNT`; the next day it works.
async fn resending_codes_never_buys_more_guesses_than_the_daily_budget(t: TestApp) {
    let email = "budget@example.com";
    let app = &t;
    let verify = |id: &str, code: &str| {
        let (path, body) = (format!("/api/v1/registrations/{id}/verify"), json!({"code": code}));
        async move { outcome(app.post(&path, body).await) }
    };
    let resend = |id: &str| {
        let path = format!("/api/v1/registrations/{id}/resend");
        async move {
            app.clock.advance(Duration::seconds(61));
            outcome(app.post(&path, json!({})).await)
        }
    };
    let (id, code) = t.register_until_code(email, PASSWORD).await;
    let mut sent = t.mails_to(email).len();
    let mut wrong = wrong_code(&code);
    for n in 1..=PER_FLOW {
        if n > 1 && (n - 1) % PER_CODE == 0 {
            assert_eq!(resend(&id).await, expect(200, "ok"));
            sent += 1;
            wrong = wrong_code(&t.wait_code(email, sent).await);
        }
        let want = if n % PER_CODE == 0 { "code_exhausted" } else { "code_wrong" };
        assert_eq!(verify(&id, &wrong).await, expect(422, want), "wrong code #{n}");
    }
    assert_eq!(resend(&id).await, expect(200, "ok"));
    sent += 1;
    let code = t.wait_code(email, sent).await;
    assert_eq!(verify(&id, &code).await, expect(429, "code_budget_spent"), "a resend brings no new budget");

    // Another flow for the same address: the account's budget is shared.
    let (id, code) = t.register_until_code(email, PASSWORD).await;
    for n in 1..=PER_ACCOUNT - PER_FLOW {
        assert_eq!(verify(&id, &wrong_code(&code)).await.0, 422, "second flow, wrong code #{n}");
    }
    let (id, code) = t.register_until_code(email, PASSWORD).await;
    assert_eq!(verify(&id, &code).await, expect(429, "code_budget_spent"), "a new flow brings no new budget");

    t.clock.advance(Duration::hours(25));
    let (id, code) = t.register_until_code(email, PASSWORD).await;
    assert_eq!(verify(&id, &code).await, expect(200, "ok"), "the budget is per day");
    t.stop().await;
}

const QUESTION: &str = "最初に飼ったペットの名前";
const ANSWER: &str = "ポチのおうち";

/// Sends `answers` to the secret question all at once; the (status, error code) of each.
async fn answer_at_once(t: &TestApp, token: &str, answers: Vec<&str>) -> Vec<(u16, String)> {
    let tasks: Vec<_> = answers
        .into_iter()
        .map(|a| {
            let req = t.api.post(t.url("/api/v1/health/step-up")).bearer_auth(token).json(&json!({"answer": a}));
            tokio::spawn(async move {
                let r = req.send().await.expect("request");
                let status = r.status().as_u16();
                outcome((status, r.json().await.unwrap_or(Value::Null)))
            })
        })
        .collect();
    let mut out = Vec::new();
    for task in tasks {
        out.push(task.await.expect("join"));
    }
    out
}

/// The secret question counts an answer before checking it: 20 wrong answers at once record
/// five failures at most, and a right answer among 20 wrong ones after the lock opens nothing.
async fn concurrent_wrong_answers_stop_at_the_lock_and_never_open_health_data(t: TestApp) {
    let email = "stepup.race@example.com";
    let token = t.register(email, PASSWORD).await;
    t.verify_identity(&token).await;
    let m = authenticate(&t.app, &token).await.expect("auth").expect("member");
    complete_f4(&t, &m, QUESTION, ANSWER).await;

    let got = answer_at_once(&t, &token, vec!["タマ"; 20]).await;
    let failures = t.app.store.step_up_failures(&m.user.id).await.expect("read").expect("counted");
    assert!(failures.failures <= 5, "{} wrong answers were checked: {got:?}", failures.failures);
    assert!(failures.locked_until.is_some(), "locked: {got:?}");
    let wrong = got.iter().filter(|g| **g == expect(422, "step_up_wrong")).count();
    let locked = got.iter().filter(|g| **g == expect(429, "step_up_locked")).count();
    assert_eq!((wrong, locked), (4, 16), "{got:?}");

    let mut answers = vec!["タマ"; 20];
    answers.insert(10, ANSWER);
    let got = answer_at_once(&t, &token, answers).await;
    assert!(got.iter().all(|g| *g == expect(429, "step_up_locked")), "{got:?}");
    let (_, v) = t.get("/api/v1/health", Some(&token)).await;
    assert_eq!(v["step_up"], "locked", "{v}");
    let (s, v) = t.get("/api/v1/health/checkups", Some(&token)).await;
    assert_eq!((s, v["error"]["code"].as_str()), (403, Some("step_up_required")), "{v}");
    let after = t.app.store.step_up_failures(&m.user.id).await.expect("read").expect("counted");
    assert_eq!(after, failures, "nothing is counted or checked while locked");
    t.stop().await;
}

on_both_backends!(
    reset_answers_the_same_for_unknown_accounts_until_the_budget_is_spent,
    resending_codes_never_buys_more_guesses_than_the_daily_budget,
    concurrent_wrong_answers_stop_at_the_lock_and_never_open_health_data,
);

/// The pages of a reset answer the same for an unknown address: a password built from the
/// typed address, wrong codes up to and past the code's attempts.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reset_pages_answer_the_same_for_unknown_accounts() {
    let t = TestApp::start(Opts::default()).await;
    t.register(KNOWN, PASSWORD).await;
    let b = Browser::new(&t);
    let csrf = b.get("/password-reset").await.csrf();
    let known = b.post("/password-reset", &[("csrf", &csrf), ("email", KNOWN)]).await;
    let ghost = b.post("/password-reset", &[("csrf", &csrf), ("email", GHOST)]).await;
    let path_of = |p: &Page| p.url.split_once(&t.base).expect("local").1.to_string();
    let id_of = |p: &Page| p.url.rsplit('/').next().expect("id").to_string();
    let code = t.wait_code(KNOWN, 2).await;
    let same = |k: &Page, g: &Page, what: &str| {
        assert_eq!(k.status, g.status, "{what}");
        assert_eq!(
            k.main_text().replace(&id_of(&known), "ID"),
            g.main_text().replace(&id_of(&ghost), "ID"),
            "{what}: an unknown address must get the same page"
        );
    };
    let k = b.post(&path_of(&known), &[("csrf", &csrf), ("code", &code), ("new_password", &built_from(KNOWN))]).await;
    let g = b.post(&path_of(&ghost), &[("csrf", &csrf), ("code", &code), ("new_password", &built_from(GHOST))]).await;
    same(&k, &g, "a password built from the address");
    assert_eq!(k.status, 422);
    for n in 1..=PER_CODE + 1 {
        let form = [("csrf", csrf.as_str()), ("code", &wrong_code(&code)), ("new_password", NEW_PASSWORD)];
        let (k, g) = (b.post(&path_of(&known), &form).await, b.post(&path_of(&ghost), &form).await);
        same(&k, &g, &format!("wrong code #{n}"));
    }
    t.stop().await;
}
