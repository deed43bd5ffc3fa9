//! F5 member views behind the secret question: the pages without JavaScript and the JSON API,
//! for ヤマダ ハナコ of the demo roster after a real F4 (face engine on the development set) and
//! a real 特定健診 import of three years built here.

use crate::common::browser::{Browser, Page};
use crate::common::ekyc::complete_f4;
use crate::common::{Backend, Opts, TestApp, PASSWORD};
use app::services::auth::{authenticate, Member};
use app::services::{checkups, health_imports};
use records::testing::{co, pq, zip, Doc};
use serde_json::json;

pub(crate) const EMAIL: &str = "hanako@example.com";
const QUESTION: &str = "最初に飼ったペットの名前";
pub(crate) const ANSWER: &str = "ポチのおうち";

/// One year's checkup: systolic blood pressure and HbA1c with MHLW thresholds, urine sugar,
/// and an item the JLAC10 table does not know.
fn exam(date: &'static str, systolic: &str, hba1c: &str) -> String {
    Doc::hanako(
        date,
        vec![
            pq("9A752000000000001", "収縮期血圧", systolic, "mmHg"),
            pq("3D045000001927101", "ＨｂＡ１ｃ", hba1c, "%"),
            co("1A020000000191111", "尿糖", "1"),
            pq("9Z999000000000001", "独自検査項目", "42", "U/L"),
        ],
    )
    .xml()
}

fn three_years() -> Vec<u8> {
    let (a, b, c) = (exam("20220601", "118", "5.4"), exam("20230605", "128", "5.5"), exam("20240610", "142", "5.7"));
    zip(&[("DATA/h2022.xml", a.as_bytes()), ("DATA/h2023.xml", b.as_bytes()), ("DATA/h2024.xml", c.as_bytes())])
}

/// Registered, F3 done as ヤマダ ハナコ; the API token and the member.
pub(crate) async fn hanako(t: &TestApp) -> (String, Member) {
    let token = t.register(EMAIL, PASSWORD).await;
    t.verify_identity(&token).await;
    let m = authenticate(&t.app, &token).await.expect("auth").expect("member");
    (token, m)
}

pub(crate) async fn f4_and_checkups(t: &TestApp, m: &Member) {
    complete_f4(t, m, QUESTION, ANSWER).await;
    checkups::import_zip(&t.app, "133033", "results.zip", three_years(), &mut ()).await.expect("import");
    let meds = "保険者番号,記号,番号,枝番,生年月日,調剤年月日,薬局名,処方医療機関,処方医,医薬品名,用量,日数\n\
                133033,1234,5678,,1990-04-01,2025-04-01,みらい薬局,みらいクリニック,山田 一郎,アムロジピン錠5mg,1回1錠 朝食後,30\n\
                133033,1234,5678,,1990-04-01,2025-04-01,みらい薬局,みらいクリニック,山田 一郎,<b>レバミピド錠</b>,1回1錠,7\n";
    health_imports::import_medications(&t.app, "133033", "meds.csv", meds.as_bytes().to_vec(), &mut ())
        .await
        .expect("medications");
    let expenses =
        "保険者番号,記号,番号,枝番,生年月日,診療年月,受診者,医療機関等名称,区分,日数,医療費の総額,窓口負担額\n\
                    133033,1234,5678,,1990-04-01,2024-11,ヤマダ ハナコ,あおば歯科医院,歯科,3,18760,5630\n\
                    133033,1234,5678,,1990-04-01,2025-03,ヤマダ ハナコ,みらいクリニック,外来,1,5210,1560\n\
                    133033,1234,5678,,1990-04-01,2025-06,ヤマダ ハナコ,ひかり調剤薬局,調剤,1,2340,700\n";
    health_imports::import_expenses(&t.app, "133033", "expenses.csv", expenses.as_bytes().to_vec(), &mut ())
        .await
        .expect("expenses");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_pages_ask_the_question_per_session_lock_after_five_wrong_answers_and_draw_charts() {
    let t = TestApp::start(Opts::default()).await;
    let (_, m) = hanako(&t).await;
    let b = Browser::new(&t);
    assert_eq!(b.login(EMAIL, PASSWORD).await.status, 200);
    step_before_f4_the_pages_say_what_is_missing(&b).await;
    f4_and_checkups(&t, &m).await;
    step_the_menu_lists_the_health_pages(&b).await;
    let csrf = step_every_health_page_asks_the_question_first(&b).await;
    step_four_wrong_answers_tell_what_is_left_and_the_fifth_locks(&b, &csrf).await;
    let open = step_an_hour_later_the_answer_opens_the_page_asked_for(&t, &b, &csrf).await;
    step_checkups_show_marks_and_a_chart_per_item(&open);
    step_medications_expenses_and_english_open_in_this_session(&b).await;
    step_another_session_asks_again_and_the_answer_lasts_15_minutes(&t, &b).await;
    t.stop().await;
}

/// Before F4: no health items in the menu, and the pages say what is missing.
async fn step_before_f4_the_pages_say_what_is_missing(b: &Browser) {
    let menu = b.get("/menu/org").await;
    assert!(menu.has("健診・医療アクセス認証") && !menu.has("href=\"/health/checkups\""), "{}", menu.html);
    let early = b.get("/health/checkups").await;
    assert_eq!(early.status, 403);
    assert!(early.has("「健診・医療アクセス認証」が必要です"), "{}", early.html);
}

async fn step_the_menu_lists_the_health_pages(b: &Browser) {
    let menu = b.get("/menu/org").await;
    for (href, label) in
        [("/health/checkups", "健診結果"), ("/health/medications", "お薬履歴"), ("/health/expenses", "医療費通知")]
    {
        assert!(menu.has(&format!("href=\"{href}\">{label}</a>")), "{label}: {}", menu.html);
    }
}

/// Every health page goes to the secret question first. Returns the question form's CSRF token.
async fn step_every_health_page_asks_the_question_first(b: &Browser) -> String {
    for section in ["checkups", "medications", "expenses"] {
        let p = b.get(&format!("/health/{section}")).await;
        assert!(p.url.ends_with(&format!("/health/unlock?next={section}")), "{}", p.url);
    }
    let ask = b.get("/health/unlock?next=checkups").await;
    assert_eq!(ask.status, 200);
    assert!(
        ask.has(QUESTION) && ask.has("<label for=\"answer\">答え</label>") && ask.has(">次へ</button>"),
        "{}",
        ask.html
    );
    ask.csrf()
}

/// Empty answers are not counted; four wrong answers tell how many are left, the fifth locks
/// the question for an hour and points to the customer center.
async fn step_four_wrong_answers_tell_what_is_left_and_the_fifth_locks(b: &Browser, csrf: &str) {
    let empty = b.post("/health/unlock", &[("csrf", csrf), ("next", "checkups"), ("answer", " 　")]).await;
    assert_eq!(empty.status, 422);
    assert!(empty.has("答えを入力してください。"));
    for left in (1..=4).rev() {
        let wrong = b.post("/health/unlock", &[("csrf", csrf), ("next", "checkups"), ("answer", "タマ")]).await;
        assert_eq!(wrong.status, 422, "{}", wrong.html);
        assert!(wrong.has(&format!("答えが正しくありません。あと{left}回入力できます。")), "{}", wrong.html);
        assert!(wrong.has("aria-invalid=\"true\""));
    }
    let locked = b.post("/health/unlock", &[("csrf", csrf), ("next", "checkups"), ("answer", "タマ")]).await;
    assert_eq!(locked.status, 429);
    assert!(locked.has("href=\"/inquiry/new\""), "{}", locked.html);
    insta::assert_snapshot!("page_health_locked_ja", locked.main_text());
    // While locked even the right answer is not checked, in any session.
    let still = b.post("/health/unlock", &[("csrf", csrf), ("next", "checkups"), ("answer", ANSWER)]).await;
    assert_eq!(still.status, 429);
    assert_eq!(b.get("/health/unlock?next=checkups").await.status, 429);
    assert!(b.get("/health/checkups").await.has("1時間ロックされています"));
}

/// An hour later the answer (any width, spaces) opens the page asked for; returns it.
async fn step_an_hour_later_the_answer_opens_the_page_asked_for(t: &TestApp, b: &Browser, csrf: &str) -> Page {
    t.clock.advance(time::Duration::minutes(61));
    let open = b.post("/health/unlock", &[("csrf", csrf), ("next", "checkups"), ("answer", " ﾎﾟﾁのおうち ")]).await;
    assert_eq!(open.status, 200, "{}", open.html);
    assert!(open.url.ends_with("/health/checkups"), "{}", open.url);
    open
}

/// 健診結果: the latest examination with its marks, every item (unknown codes by name), and a
/// chart per numeric item over the three years, values written on the points.
fn step_checkups_show_marks_and_a_chart_per_item(p: &Page) {
    assert!(
        p.has("<h1>健診結果</h1>") && p.has("最新の健診結果") && p.has("2024/06/10") && p.has("みらい健診センター"),
        "{}",
        p.html
    );
    assert!(p.has("142 mmHg") && p.has("保健指導判定値 130以上、受診勧奨判定値 140以上"), "{}", p.html);
    assert!(p.has("<span class=\"mark referral\">受診勧奨判定値</span>"), "{}", p.html);
    assert!(p.has("独自検査項目") && p.has("42 U/L"), "unknown codes are shown by name");
    assert_eq!(p.html.matches("<svg class=\"chart\"").count(), 3, "systolic, HbA1c, the unknown item");
    // The in-page index: the latest results, 経年変化 and each chart, each anchor there once.
    assert!(p.has(r#"<nav class="toc" id="toc" aria-labelledby="toc-heading">"#), "{}", p.html);
    let figures: Vec<&str> = p
        .html
        .split(r#"<figure class="chart-figure" id=""#)
        .skip(1)
        .map(|rest| &rest[..rest.find('"').expect("end of id")])
        .collect();
    assert_eq!(figures.len(), 3, "each chart's figure has an id");
    for anchor in ["latest", "history"].into_iter().chain(figures) {
        assert!(p.has(&format!("href=\"#{anchor}\"")), "目次 links to #{anchor}");
        assert_eq!(p.html.matches(&format!(" id=\"{anchor}\"")).count(), 1, "#{anchor} once");
    }
    let svg = &p.html[p.html.find("<svg class=\"chart\"").expect("chart")..];
    let svg = &svg[..svg.find("</svg>").expect("end")];
    assert!(svg.contains("収縮期血圧") && svg.contains("role=\"img\""), "{svg}");
    assert_eq!(svg.matches("<circle").count(), 3);
    for label in
        ["2022/06", "2023/06", "2024/06", ">118<", ">128<", ">142<", "zone referral", "point referral", "point normal"]
    {
        assert!(svg.contains(label), "{label} in {svg}");
    }
}

/// The other pages open in this session too: dispensings grouped, text from files escaped;
/// per-year totals, the newest year's list, the print view of another year; English.
async fn step_medications_expenses_and_english_open_in_this_session(b: &Browser) {
    let meds = b.get("/health/medications").await;
    assert!(
        meds.has("<h2>2025/04/01 みらい薬局</h2>") && meds.has("みらいクリニック（山田 一郎）") && meds.has("30日分"),
        "{}",
        meds.html
    );
    assert!(meds.has("&#60;b&#62;レバミピド錠") && !meds.has("<b>レバミピド"), "{}", meds.html);
    let exp = b.get("/health/expenses").await;
    assert!(exp.has("2025年") && exp.has("7,550円") && exp.has("2,260円") && exp.has("18,760円"), "{}", exp.html);
    assert!(
        exp.has("<h2>2025年の医療費</h2>") && exp.has("ひかり調剤薬局") && !exp.has("あおば歯科医院"),
        "{}",
        exp.html
    );
    let print = b.get("/health/expenses/print?year=2024").await;
    assert!(
        print.has("医療費通知（2024年分）") && print.has("みらい健康保険組合") && print.has("あおば歯科医院"),
        "{}",
        print.html
    );
    assert!(!print.has("class=\"bar\""), "the print view has no app bar");
    // 「印刷する」 is hidden until print.js shows it; the note says how to print without it.
    assert!(
        print.has(r#"<button type="button" class="primary" data-print hidden>印刷する</button>"#)
            && print.has(r#"<script src="/static/print.js" defer></script>"#)
            && print.has("ブラウザの印刷機能で印刷できます"),
        "{}",
        print.html
    );
    let en = b.get("/lang/en?next=/health/checkups").await;
    assert!(en.has("Checkup results") && en.has("See a doctor") && en.has("Systolic"), "{}", en.html);
}

/// Another session (another phone) asks again; the answer lasts 15 minutes in its session.
async fn step_another_session_asks_again_and_the_answer_lasts_15_minutes(t: &TestApp, b: &Browser) {
    let other = Browser::new(t);
    other.login(EMAIL, PASSWORD).await;
    assert!(other.get("/health/checkups").await.url.ends_with("/health/unlock?next=checkups"));
    t.clock.advance(time::Duration::minutes(14));
    assert!(b.get("/health/checkups").await.url.ends_with("/health/checkups"));
    t.clock.advance(time::Duration::minutes(2));
    assert!(b.get("/health/checkups").await.url.ends_with("/health/unlock?next=checkups"));
}

async fn api_story(backend: Backend) {
    let t = TestApp::start(Opts { backend, ..Opts::default() }).await;
    let (token, m) = hanako(&t).await;
    let (s, v) = t.get("/api/v1/health", Some(&token)).await;
    assert_eq!((s, v["error"]["code"].as_str()), (403, Some("health_not_unlocked")), "{v}");

    f4_and_checkups(&t, &m).await;
    let (s, v) = t.get("/api/v1/health", Some(&token)).await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(
        (v["step_up"].as_str(), v["question"].as_str(), v["remaining_attempts"].as_i64()),
        (Some("ask"), Some(QUESTION), Some(5))
    );
    for data in ["checkups", "medications", "expenses"] {
        let (s, v) = t.get(&format!("/api/v1/health/{data}"), Some(&token)).await;
        assert_eq!((s, v["error"]["code"].as_str()), (403, Some("step_up_required")), "{data}: {v}");
        insta::assert_json_snapshot!("api_step_up_required_ja", v);
    }
    let (s, v) = t.post_auth("/api/v1/health/step-up", &token, json!({"answer": "タマ"})).await;
    assert_eq!(
        (s, v["error"]["code"].as_str(), v["error"]["remaining_attempts"].as_i64()),
        (422, Some("step_up_wrong"), Some(4)),
        "{v}"
    );
    insta::assert_json_snapshot!("api_step_up_wrong_ja", v);
    let (s, v) = t.post_auth("/api/v1/health/step-up", &token, json!({"answer": "ＰＯＣＨＩのおうち"})).await;
    assert_eq!((s, v["error"]["remaining_attempts"].as_i64()), (422, Some(3)), "another wrong answer: {v}");
    let (s, v) = t.post_auth("/api/v1/health/step-up", &token, json!({"answer": ANSWER})).await;
    assert_eq!((s, v["step_up"].as_str()), (200, Some("open")), "{v}");
    assert!(v["open_until"].as_str().is_some());

    let (s, v) = t.get("/api/v1/health/checkups", Some(&token)).await;
    assert_eq!(s, 200, "{v}");
    let checkups = v["checkups"].as_array().expect("checkups");
    let dates: Vec<&str> = checkups.iter().filter_map(|c| c["examined_on"].as_str()).collect();
    assert_eq!(dates, ["2024-06-10", "2023-06-05", "2022-06-01"], "newest first");
    let items = checkups[0]["items"].as_array().expect("items");
    let sbp = items.iter().find(|i| i["code"] == "9A752000000000001").expect("systolic");
    assert_eq!(
        (sbp["number"].as_f64(), sbp["unit"].as_str(), sbp["judgement"].as_str()),
        (Some(142.0), Some("mmHg"), Some("referral")),
        "{sbp}"
    );
    let unknown = items.iter().find(|i| i["code"] == "9Z999000000000001").expect("unknown item kept");
    assert_eq!((unknown["name"].as_str(), unknown["key"].is_null()), (Some("独自検査項目"), true));
    let (s, v) = t.get("/api/v1/health/medications", Some(&token)).await;
    assert_eq!((s, v["medications"].is_array()), (200, true), "{v}");
    let (s, v) = t.get("/api/v1/health/expenses", Some(&token)).await;
    assert_eq!((s, v["years"].is_array(), v["expenses"].is_array()), (200, true, true), "{v}");

    // The correct answer forgot the wrong ones; five wrong answers in another session lock
    // the question (with the customer center's address), while the open session stays open.
    let (s, login) = t.post("/api/v1/sessions", json!({"email": EMAIL, "password": PASSWORD})).await;
    assert_eq!(s, 201, "{login}");
    let second = login["token"].as_str().expect("token").to_string();
    let (_, v) = t.get("/api/v1/health", Some(&second)).await;
    assert_eq!((v["step_up"].as_str(), v["remaining_attempts"].as_i64()), (Some("ask"), Some(5)), "{v}");
    for _ in 0..4 {
        let (s, _) = t.post_auth("/api/v1/health/step-up", &second, json!({"answer": "タマ"})).await;
        assert_eq!(s, 422);
    }
    let (s, v) = t.post_auth("/api/v1/health/step-up", &second, json!({"answer": "タマ"})).await;
    assert_eq!((s, v["error"]["code"].as_str()), (429, Some("step_up_locked")), "{v}");
    insta::assert_json_snapshot!("api_step_up_locked_ja", v);
    let (_, v) = t.get("/api/v1/health", Some(&second)).await;
    assert_eq!(v["step_up"], "locked", "{v}");
    assert!(v["locked_until"].as_str().is_some());
    let (s, _) = t.post_auth("/api/v1/health/step-up", &second, json!({"answer": ANSWER})).await;
    assert_eq!(s, 429, "locked: even the right answer is not checked");
    assert_eq!(t.get("/api/v1/health/checkups", Some(&token)).await.0, 200, "the first session stays open");
    assert_eq!(t.get("/api/v1/health/checkups", Some(&second)).await.0, 403);
    t.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_api_offers_the_same_data_behind_the_same_question_on_sqlite() {
    api_story(Backend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_api_offers_the_same_data_behind_the_same_question_on_postgres() {
    api_story(Backend::Postgres).await;
}
