//! Operators see the member (issue #16 point 4): from an inquiry's attached account, or found by
//! the exact email address or an inquiry's 受付番号, the member's summary (organization, email,
//! 本人確認, the applications with the reviewer's decision, locks, inquiries) — every view and
//! every search in the audit log; an operator limited to other organizations gets 404. The
//! reviewers' decided cases, filtered by decision. The roster imported from the console with the
//! import jobs' progress page.

use crate::common::browser::{Browser, Page};
use crate::common::console::{create_operator, sign_in, OP_PASSWORD};
use crate::common::{Opts, TestApp, PASSWORD};
use crate::console::{application_in_review, opts};
use crate::console_imports::{finished, upload};
use app::services::operators::{self, Manage, Role};
use app::services::review::{self, DecisionInput};
use serde_json::json;

/// The reference on the inquiry's completion page.
fn reference(page: &Page) -> String {
    let marker = "class=\"inquiry-ref\">";
    let start = page.html.find(marker).unwrap_or_else(|| panic!("no reference in:\n{}", page.html)) + marker.len();
    page.html[start..].split('<').next().expect("reference").to_string()
}

/// The member signs in and sends an inquiry with the account attached; then someone tries a
/// wrong password on the account (a success forgets earlier failures). Returns the 受付番号.
async fn member_sends_an_inquiry(t: &TestApp, email: &str) -> String {
    let m = Browser::not_following(t);
    let login = m.get("/login").await;
    let signed_in = m.post("/login", &[("csrf", &login.csrf()), ("email", email), ("password", PASSWORD)]).await;
    assert_eq!(signed_in.location.as_deref(), Some("/menu"), "{}", signed_in.html);
    let form = m.get("/inquiry/new").await;
    let done = m
        .post(
            "/inquiry",
            &[
                ("csrf", &form.csrf()),
                ("category", "ekyc"),
                ("message", "認証が却下されました。"),
                ("email", email),
                ("attach", "on"),
            ],
        )
        .await;
    assert_eq!(done.status, 200, "{}", done.html);
    let stranger = Browser::not_following(t);
    let login = stranger.get("/login").await;
    let wrong =
        stranger.post("/login", &[("csrf", &login.csrf()), ("email", email), ("password", "wrong-password-1")]).await;
    assert_ne!(wrong.location.as_deref(), Some("/menu"));
    reference(&done)
}

fn audit_actions(rows: &[store::AuditEntry], action: &str) -> usize {
    rows.iter().filter(|r| r.action == action).count()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn operators_find_the_member_and_see_the_summary_audited_within_their_organizations() {
    let t = TestApp::start(opts()).await;
    let a = application_in_review(&t, "hanako@example.com").await;
    let user_id = t.app.store.get_ekyc(&a.id).await.expect("get").expect("case").user_id;
    let reviewer = operators::create(&t.app, "one@mimoto.example.jp", "審査 一郎", Role::Reviewer, OP_PASSWORD)
        .await
        .expect("operator")
        .operator;
    let version = t.app.store.get_ekyc(&a.id).await.expect("get").expect("case").version;
    let reject = DecisionInput {
        approve: false,
        checklist: Default::default(),
        reason: "document_unreadable",
        note: "",
        version,
    };
    review::decide(&t.app, &reviewer, &a.id, reject, "10.0.0.1").await.expect("rejected");
    let number = member_sends_an_inquiry(&t, "hanako@example.com").await;
    let inquiry_id = t.app.store.inquiries_of_user(&user_id, 10).await.expect("inquiries")[0].id.clone();

    let admin = create_operator(&t, "admin@mimoto.example.jp", "管理 太郎", Role::Admin).await;
    let b = Browser::not_following(&t);
    // Nothing without a console session.
    assert_eq!(b.get(&format!("/console/members/{user_id}")).await.location.as_deref(), Some("/console/login"));
    sign_in(&t, &b, &admin).await;

    // From the inquiry's attached account to the summary.
    let inquiry = b.get(&format!("/console/inquiries/{inquiry_id}")).await;
    let link = format!("<a href=\"/console/members/{user_id}\">会員の概要を見る</a>");
    assert!(inquiry.has(&link), "{}", inquiry.html);
    let before = t.app.store.list_audit(None, 500).await.expect("audit");
    let page = b.get(&format!("/console/members/{user_id}")).await;
    assert_eq!(page.status, 200, "{}", page.html);
    assert_eq!(page.headers.get("cache-control").and_then(|v| v.to_str().ok()), Some("no-store"));
    for expected in [
        "<h1>会員の概要</h1>",
        "<dd>hanako@example.com</dd>",
        "（133033）",
        "<dt>本人確認</dt><dd>完了（",
        "<td>却下</td>",
        "却下（書類が不鮮明） — 審査 一郎、",
        &format!("href=\"/console/reviews/{}\"", a.id),
        "<dd>ロックなし（誤答 0 回）</dd>",
        &format!(
            "<dd>ロックなし（直近の失敗 1 回 / 上限 {} 回）</dd>",
            t.app.config.limits.login_failures_per_account.max
        ),
        &format!("<a href=\"/console/inquiries/{inquiry_id}\">{number}</a>"),
    ] {
        assert!(page.has(expected), "{expected:?} missing:\n{}", page.html);
    }
    // The view is audited, with the member's id and no personal data.
    let after = t.app.store.list_audit(None, 500).await.expect("audit");
    assert_eq!(audit_actions(&after, "account.view"), audit_actions(&before, "account.view") + 1);
    let row = after.iter().find(|r| r.action == "account.view").expect("row");
    assert_eq!((row.target_type.as_deref(), row.target_id.as_deref()), (Some("user"), Some(user_id.as_str())));
    assert!(row.operator_id.is_some());
    // An unknown member and a malformed id: not found.
    assert_eq!(b.get("/console/members/0f8fad5b-d9cb-469f-a165-70867728950e").await.status, 404);
    assert_eq!(b.get("/console/members/not-an-id").await.status, 404);

    // Search by the exact email: the summary; part of it or another finds nobody.
    let search = b.get("/console/members").await;
    assert!(
        search.has("<label for=\"email\">メールアドレス</label>")
            && search.has(">メールアドレスで探す</button>")
            && search.has("<label for=\"reference\">受付番号</label>")
            && search.has(">受付番号で探す</button>"),
        "{}",
        search.html
    );
    let csrf = search.csrf();
    let found = b.post("/console/members", &[("csrf", &csrf), ("by", "email"), ("email", "hanako@example.com")]).await;
    assert_eq!((found.status, found.location.as_deref()), (303, Some(format!("/console/members/{user_id}").as_str())));
    for partial in ["hanako@", "hanako@example.co", "example.com"] {
        let none = b.post("/console/members", &[("csrf", &csrf), ("by", "email"), ("email", partial)]).await;
        assert_eq!(none.status, 200, "{}", none.html);
        assert!(none.has("このメールアドレスの会員は見つかりませんでした。"), "{partial}: {}", none.html);
    }
    // A forged search is refused.
    let forged =
        b.post("/console/members", &[("csrf", "forged"), ("by", "email"), ("email", "hanako@example.com")]).await;
    assert_eq!(forged.status, 403);

    // Search by 受付番号, in either case: the inquiry and the account; a part of it finds nothing.
    for typed in [number.clone(), number.to_lowercase()] {
        let hit = b.post("/console/members", &[("csrf", &csrf), ("by", "reference"), ("reference", &typed)]).await;
        assert_eq!(hit.status, 200, "{}", hit.html);
        assert!(hit.has(&format!("<a href=\"/console/inquiries/{inquiry_id}\">{number}</a>")), "{}", hit.html);
        assert!(hit.has(&link), "{}", hit.html);
    }
    let part = b.post("/console/members", &[("csrf", &csrf), ("by", "reference"), ("reference", &number[..7])]).await;
    assert!(part.has("この受付番号のお問い合わせ・申請は見つかりませんでした。"), "{}", part.html);
    assert!(!part.has(&link));
    // The 受付番号 of the 申請 receipt mail finds the application, its case and its member.
    let case_number = app::services::reference(&a.id);
    let case = b.post("/console/members", &[("csrf", &csrf), ("by", "reference"), ("reference", &case_number)]).await;
    assert!(case.has("見つかった申請（健診・医療アクセス認証）"), "{}", case.html);
    assert!(case.has(&format!("<a href=\"/console/reviews/{}\">{case_number}</a>", a.id)), "{}", case.html);
    assert!(case.has(&link), "{}", case.html);
    let audit = t.app.store.list_audit(None, 500).await.expect("audit");
    assert_eq!(audit_actions(&audit, "account.find"), 8, "every search is audited");
    assert!(
        audit.iter().all(|r| r.target_id.as_deref().is_none_or(|id| !id.contains('@'))),
        "no address in the audit log"
    );

    // The decided cases: the rejection with its reason and reviewer; filtered by decision.
    let decided = b.get("/console/decided").await;
    assert_eq!(decided.status, 200, "{}", decided.html);
    assert!(
        decided.has(&format!("href=\"/console/reviews/{}\"", a.id))
            && decided.has("<td>書類が不鮮明</td>")
            && decided.has("<td>審査 一郎</td>")
            && decided.has(&format!("href=\"/console/members/{user_id}\"")),
        "{}",
        decided.html
    );
    assert!(!decided.has("rel=\"next\""), "one page");
    assert!(b.get("/console/decided?decision=rejected").await.has(&format!("/console/reviews/{}", a.id)));
    let approved = b.get("/console/decided?decision=approved").await;
    assert!(!approved.has(&format!("/console/reviews/{}", a.id)) && approved.has("該当する申請はありません。"));
    assert!(b.get("/console/decided?page=2").await.has("該当する申請はありません。"));

    // An administrator limited to another organization: 404, nobody found, no decided case.
    let other = create_operator(&t, "other@mimoto.example.jp", "別団体 担当", Role::Admin).await;
    let admin_op = operators::list(&t.app).await.expect("list").into_iter().find(|o| o.name == "管理 太郎").expect("a");
    let other_id =
        operators::list(&t.app).await.expect("list").into_iter().find(|o| o.name == "別団体 担当").expect("o").id;
    operators::manage(&t.app, &admin_op, &other_id, Manage::Scope(vec!["06132013".into()]), "10.0.0.9")
        .await
        .expect("scoped");
    let ob = Browser::not_following(&t);
    t.clock.advance(time::Duration::seconds(30));
    sign_in(&t, &ob, &other).await;
    let hidden = ob.get(&format!("/console/members/{user_id}")).await;
    assert_eq!(hidden.status, 404, "{}", hidden.html);
    assert!(!hidden.has("hanako@example.com"));
    let csrf = ob.get("/console/members").await.csrf();
    let none = ob.post("/console/members", &[("csrf", &csrf), ("by", "email"), ("email", "hanako@example.com")]).await;
    assert_eq!(none.status, 200);
    assert!(none.has("このメールアドレスの会員は見つかりませんでした。"));
    let case = ob.post("/console/members", &[("csrf", &csrf), ("by", "reference"), ("reference", &case_number)]).await;
    assert!(
        case.has("この受付番号のお問い合わせ・申請は見つかりませんでした。"),
        "another organization's: {}",
        case.html
    );
    assert!(!ob.get("/console/decided").await.has(&format!("/console/reviews/{}", a.id)));
    t.stop().await;
}

const ROSTER_HEADER: &str =
    "insurer_number,symbol,number,branch,family_name_kana,given_name_kana,birth_date,eligible_from,eligible_until";

fn roster(extra: &[&str]) -> Vec<u8> {
    let mut rows: Vec<&str> =
        app::demo::DEMO_ROSTER.lines().skip(1).filter(|l| l.starts_with("133033,")).collect::<Vec<_>>();
    rows.extend_from_slice(extra);
    format!("{ROSTER_HEADER}\n{}\n", rows.join("\n")).into_bytes()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_administrator_imports_a_roster_from_the_console() {
    let t = TestApp::start(Opts::default()).await;
    let admin = create_operator(&t, "admin@mimoto.example.jp", "管理 太郎", Role::Admin).await;
    let b = Browser::not_following(&t);
    sign_in(&t, &b, &admin).await;
    assert!(b.get("/console/imports").await.has("<option value=\"roster\">名簿（CSV）</option>"));

    // A file with a bad row: nothing written, the line listed without its data.
    let bad = roster(&["133033,1234,7777,,ニシムラ,アキコ,1995-02-30,2024-04-01,"]);
    let sent = upload(&b, "roster", "133033", "bad-roster.csv", bad).await;
    assert_eq!(sent.status, 303, "{}", sent.html);
    let refused = finished(&b, &sent.location.expect("job page")).await;
    assert!(refused.has("取り込みませんでした") && refused.has("<td>5</td>"), "line 5: {}", refused.html);
    assert!(!refused.has("ニシムラ") && !refused.has("1995-02-30"), "no personal data: {}", refused.html);

    // A good file: one new record, the demo ones already stored.
    let good = roster(&["133033,1234,7777,,ニシムラ,アキコ,1995-02-28,2024-04-01,"]);
    let sent = upload(&b, "roster", "133033", "roster.csv", good).await;
    let done = finished(&b, &sent.location.expect("job page")).await;
    assert!(done.has("取り込みが完了しました"), "{}", done.html);
    for expected in [
        "<dt>件数</dt><dd>4</dd>",
        "<dt>新規</dt><dd>1</dd>",
        "<dt>変更</dt><dd>0</dd>",
        "<dt>ファイルにないため資格喪失日を設定</dt><dd>0</dd>",
    ] {
        assert!(done.has(expected), "{expected}: {}", done.html);
    }

    // The new person can now do 本人確認.
    let token = t.register("akiko@example.com", PASSWORD).await;
    let (s, v) = t.post_auth("/api/v1/identity-verifications", &token, json!({})).await;
    assert_eq!(s, 201, "{v}");
    let id = v["id"].as_str().expect("id").to_string();
    for (step, body) in [
        ("insurer", json!({"insurer_number": "133033"})),
        ("card", json!({"symbol": "1234", "number": "7777", "branch": ""})),
        ("person", json!({"family_name": "ニシムラ", "given_name": "アキコ", "birth_date": "1995-02-28"})),
        ("confirm", json!({})),
    ] {
        let (s, v) = t.post_auth(&format!("/api/v1/identity-verifications/{id}/{step}"), &token, body).await;
        assert_eq!(s, 200, "{step}: {v}");
        if step == "confirm" {
            assert_eq!(v["state"], "completed", "{v}");
        }
    }

    // Without the new row, its eligibility ends.
    let sent = upload(&b, "roster", "133033", "roster-2.csv", roster(&[])).await;
    let done = finished(&b, &sent.location.expect("job page")).await;
    assert!(done.has("<dt>ファイルにないため資格喪失日を設定</dt><dd>1</dd>"), "{}", done.html);

    // Reviewers may not; the start is audited with the organization.
    let reviewer = create_operator(&t, "reviewer@mimoto.example.jp", "審査 花子", Role::Reviewer).await;
    let rb = Browser::not_following(&t);
    sign_in(&t, &rb, &reviewer).await;
    assert_eq!(rb.get("/console/imports").await.status, 403);
    let audit = t.app.store.list_audit(None, 200).await.expect("audit");
    assert_eq!(audit_actions(&audit, "import.roster"), 3, "every start is audited");
    t.stop().await;
}
