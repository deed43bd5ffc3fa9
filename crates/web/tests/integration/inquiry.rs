//! F6 customer center over HTTP, as browsers use it: a visitor and a signed-in member send
//! inquiries through the pages (CSRF token from the form), the confirmation mails arrive in
//! their language, mistakes keep what was typed, the rate limits trip; an operator (password +
//! TOTP) sees the inbox, opens an inquiry (audited), replies by mail and closes it.

use crate::common::browser::{Browser, Page};
use crate::common::{Opts, TestApp, PASSWORD};
use app::config::Limit;
use app::services::operators::{self, Role};
use domain::clock::Clock as _;

const OP_PASSWORD: &str = "Kanri-Sakura-Mochi-2026!";

/// The reference shown on the completion page.
fn reference(page: &Page) -> String {
    let marker = "class=\"inquiry-ref\">";
    let start = page.html.find(marker).unwrap_or_else(|| panic!("no reference in:\n{}", page.html)) + marker.len();
    page.html[start..].split('<').next().expect("reference").to_string()
}

/// Opens the form and sends it with the form's CSRF token.
async fn send_inquiry(b: &Browser, category: &str, message: &str, email: &str, attach: bool) -> Page {
    let form = b.get("/inquiry/new").await;
    assert_eq!(form.status, 200, "{}", form.html);
    let csrf = form.csrf();
    let mut fields = vec![("csrf", csrf.as_str()), ("category", category), ("message", message), ("email", email)];
    if attach {
        fields.push(("attach", "on"));
    }
    b.post("/inquiry", &fields).await
}

fn inquiry_mails(t: &TestApp, email: &str, subject: &str) -> Vec<String> {
    t.mails_to(email).into_iter().filter(|(s, _)| s == subject).map(|(_, text)| text).collect()
}

async fn wait_mail(t: &TestApp, email: &str, subject: &str, n: usize) -> Vec<String> {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(15);
    loop {
        let mails = inquiry_mails(t, email, subject);
        if mails.len() >= n {
            return mails;
        }
        assert!(std::time::Instant::now() < deadline, "mail {subject:?} #{n} to {email} did not arrive");
        tokio::time::sleep(std::time::Duration::from_millis(25)).await;
    }
}

const RECEIVED_JA: &str = "【Mimoto】お問い合わせを受け付けました";
const RECEIVED_EN: &str = "[Mimoto] We have received your inquiry";
const REPLY_JA: &str = "【Mimoto】お問い合わせへの回答";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn inquiries_are_sent_answered_and_closed() {
    let t = TestApp::start(Opts::default()).await;
    let v = step_the_visitor_form_has_labels_and_needs_csrf(&t).await;
    step_mistakes_are_shown_inline_and_keep_what_was_typed(&t, &v).await;
    let visitor_ref = step_a_visitor_inquiry_is_confirmed_by_mail(&t, &v).await;
    t.clock.advance(time::Duration::minutes(1));
    step_an_english_visitor_gets_the_english_mail(&t).await;
    t.clock.advance(time::Duration::minutes(1));
    let member_ref = step_a_signed_in_member_attaches_the_account(&t).await;
    let stored = step_inquiries_are_stored_linked_and_sealed(&t).await;
    let (b, operator_id) = step_the_operator_signs_in_with_password_and_totp(&t).await;
    let before = step_the_inbox_lists_open_ones_without_personal_data(&t, &b, &visitor_ref, &member_ref).await;
    let csrf = step_opening_an_inquiry_is_audited(&t, &b, &stored, &operator_id, before).await;
    step_a_reply_is_mailed_in_the_members_language(&t, &b, &stored.member_id, &member_ref, &csrf).await;
    step_a_closed_inquiry_goes_last_and_cannot_be_answered(&t, &b, &stored, &visitor_ref, &member_ref, &csrf).await;
    step_the_audit_log_holds_ids_only(&t).await;
    t.stop().await;
}

/// A visitor (signed out): the form has a visible label for every input, no account box;
/// without the form's CSRF token nothing is sent. Returns the visitor's browser.
async fn step_the_visitor_form_has_labels_and_needs_csrf(t: &TestApp) -> Browser {
    let v = Browser::not_following(t);
    let form = v.get("/inquiry/new").await;
    assert_eq!(form.status, 200);
    for label in [
        "<label for=\"category\">お問い合わせの種類</label>",
        "<label for=\"message\">お問い合わせ内容</label>",
        "<label for=\"email\">連絡先メールアドレス</label>",
    ] {
        assert!(form.has(label), "{label}: {}", form.html);
    }
    assert!(
        form.has("健診・医療アクセス認証について")
            && form.has("<button type=\"submit\" class=\"primary\">送信する</button>")
    );
    assert!(!form.has("name=\"attach\""), "no account to attach when signed out");

    let forged = v.post("/inquiry", &[("category", "login"), ("message", "x"), ("email", "visitor@example.com")]).await;
    assert_eq!(forged.status, 403);
    let forged = v
        .post(
            "/inquiry",
            &[("csrf", "forged"), ("category", "login"), ("message", "x"), ("email", "visitor@example.com")],
        )
        .await;
    assert_eq!(forged.status, 403);
    v
}

/// Mistakes are shown inline and keep what was typed; nothing is stored for them.
async fn step_mistakes_are_shown_inline_and_keep_what_was_typed(t: &TestApp, v: &Browser) {
    let empty = send_inquiry(v, "login", "  ", "visitor@example.com", false).await;
    assert_eq!(empty.status, 422);
    assert!(
        empty.has("お問い合わせ内容を入力してください。") && empty.has("value=\"visitor@example.com\""),
        "{}",
        empty.html
    );
    assert!(empty.has("<option value=\"login\" selected>"), "{}", empty.html);
    let bad_email = send_inquiry(v, "identity", "本人確認でエラーになります。", "not-an-email", false).await;
    assert_eq!(bad_email.status, 422);
    assert!(
        bad_email.has(">本人確認でエラーになります。</textarea>") && bad_email.has("value=\"not-an-email\""),
        "{}",
        bad_email.html
    );
    assert!(bad_email.has("aria-invalid=\"true\""));
    let too_long = send_inquiry(v, "other", &"あ".repeat(2001), "visitor@example.com", false).await;
    assert_eq!(too_long.status, 422);
    assert!(too_long.has("2000文字以内"));
    let bad_category = send_inquiry(v, "billing", "請求について", "visitor@example.com", false).await;
    assert_eq!(bad_category.status, 422);
    assert!(bad_category.has("お問い合わせの種類を選んでください。") && bad_category.has(">請求について</textarea>"));
    assert_eq!(t.app.store.list_inquiries(10).await.expect("list").len(), 0, "nothing stored for mistakes");
}

/// The visitor's inquiry: the completion page with its reference, the confirmation mail
/// (without the message). Returns the reference.
async fn step_a_visitor_inquiry_is_confirmed_by_mail(t: &TestApp, v: &Browser) -> String {
    let done =
        send_inquiry(v, "login", "ログインできません。\nパスワードを忘れました。", "visitor@example.com", false).await;
    assert_eq!(done.status, 200, "{}", done.html);
    assert!(done.has("<h1>お問い合わせを受け付けました</h1>") && done.has("href=\"/\""), "{}", done.html);
    let visitor_ref = reference(&done);
    assert_eq!(visitor_ref.len(), 8);
    let mails = wait_mail(t, "visitor@example.com", RECEIVED_JA, 1).await;
    assert!(
        mails[0].contains(&format!("受付番号: {visitor_ref}"))
            && mails[0].contains("お問い合わせの種類: ログイン・パスワードについて"),
        "{}",
        mails[0]
    );
    assert!(!mails[0].contains("パスワードを忘れました"), "the message is not repeated to whatever address was typed");
    visitor_ref
}

/// A visitor reading English gets the English mail.
async fn step_an_english_visitor_gets_the_english_mail(t: &TestApp) {
    let en = Browser::not_following(t);
    assert_eq!(en.get("/lang/en?next=/inquiry/new").await.status, 303);
    let en_form = en.get("/inquiry/new").await;
    assert!(en_form.has("<label for=\"message\">Your message</label>"), "{}", en_form.html);
    let done = send_inquiry(&en, "other", "Hello, I have a question.", "english@example.com", false).await;
    assert!(done.has("We have received your inquiry"), "{}", done.html);
    let mails = wait_mail(t, "english@example.com", RECEIVED_EN, 1).await;
    assert!(mails[0].contains("Topic: Other"), "{}", mails[0]);
}

/// A signed-in member: the email is prefilled and the account attached by default. Returns
/// the reference.
async fn step_a_signed_in_member_attaches_the_account(t: &TestApp) -> String {
    t.register("member@example.com", PASSWORD).await;
    let m = Browser::not_following(t);
    let login = m.get("/login").await;
    let signed_in =
        m.post("/login", &[("csrf", &login.csrf()), ("email", "member@example.com"), ("password", PASSWORD)]).await;
    assert_eq!(signed_in.location.as_deref(), Some("/menu"));
    let form = m.get("/inquiry/new").await;
    assert!(form.has("value=\"member@example.com\""), "{}", form.html);
    assert!(form.has("<label for=\"attach\">アカウント情報を添付する</label>"));
    assert!(form.has("name=\"attach\" value=\"on\" aria-describedby=\"attach-hint\" checked"), "{}", form.html);
    let done = send_inquiry(&m, "ekyc", "健診・医療アクセス認証が進みません。", "member@example.com", true).await;
    assert_eq!(done.status, 200, "{}", done.html);
    assert!(done.has("href=\"/menu\""), "back to the menu");
    let member_ref = reference(&done);
    wait_mail(t, "member@example.com", RECEIVED_JA, 1).await;
    member_ref
}

/// The ids the operator's steps work with.
struct Stored {
    user_id: String,
    member_id: String,
    visitor_id: String,
}

/// Three inquiries stored, the member's linked to the account, all sealed at rest.
async fn step_inquiries_are_stored_linked_and_sealed(t: &TestApp) -> Stored {
    let user = t
        .app
        .store
        .find_user_by_email_index(&app::services::email_index(
            &t.app,
            &domain::email::Email::parse("member@example.com").expect("email"),
        ))
        .await
        .expect("find")
        .expect("user");
    let stored = t.app.store.list_inquiries(10).await.expect("list");
    assert_eq!(stored.len(), 3);
    let member_q = stored.iter().find(|q| q.user_id.is_some()).expect("the member's inquiry is linked");
    assert_eq!(member_q.user_id.as_deref(), Some(user.id.as_str()));
    assert_eq!(stored.iter().filter(|q| q.user_id.is_none()).count(), 2);
    let visitor_q = stored.iter().find(|q| q.locale == "ja" && q.user_id.is_none()).expect("visitor's").clone();
    let member_id = member_q.id.clone();
    for q in &stored {
        assert!(
            !String::from_utf8_lossy(&q.message_enc).contains("ログイン")
                && !String::from_utf8_lossy(&q.email_enc).contains("example.com"),
            "sealed at rest"
        );
    }
    Stored { user_id: user.id.clone(), member_id, visitor_id: visitor_q.id.clone() }
}

/// The operator: nothing without a console session; password + TOTP sign in. Returns the
/// operator's browser and id.
async fn step_the_operator_signs_in_with_password_and_totp(t: &TestApp) -> (Browser, String) {
    let b = Browser::not_following(t);
    assert_eq!(b.get("/console/inquiries").await.location.as_deref(), Some("/console/login"));
    let created = operators::create(&t.app, "reviewer@mimoto.example.jp", "審査 花子", Role::Reviewer, OP_PASSWORD)
        .await
        .expect("operator");
    let totp = totp_rs::TOTP::from_url(&created.otpauth_uri).expect("otpauth URI");
    let code = totp.generate(t.clock.now().unix_timestamp() as u64);
    let login = b.console_login("reviewer@mimoto.example.jp", OP_PASSWORD, &code).await;
    assert_eq!((login.status, login.location.as_deref()), (303, Some("/console")), "{}", login.html);
    (b, created.operator.id.clone())
}

/// The inbox: open ones, newest first, with category, date and status; no personal data.
/// Returns the number of audit rows so far.
async fn step_the_inbox_lists_open_ones_without_personal_data(
    t: &TestApp,
    b: &Browser,
    visitor_ref: &str,
    member_ref: &str,
) -> usize {
    let queue = b.get("/console").await;
    assert!(queue.has("href=\"/console/inquiries\">お問い合わせ</a>"), "nav link: {}", queue.html);
    let inbox = b.get("/console/inquiries").await;
    assert_eq!(inbox.status, 200, "{}", inbox.html);
    assert!(
        inbox.has(visitor_ref)
            && inbox.has(member_ref)
            && inbox.has("未対応")
            && inbox.has("健診・医療アクセス認証について"),
        "{}",
        inbox.html
    );
    assert!(inbox.find_pos(member_ref) < inbox.find_pos(visitor_ref), "newest first");
    assert!(!inbox.has("member@example.com") && !inbox.has("進みません"), "the inbox shows no personal data");
    t.app.store.list_audit(None, 100).await.expect("audit").len()
}

/// Opening one writes the audit row and shows message, contact email and account id.
/// Returns the detail page's CSRF token.
async fn step_opening_an_inquiry_is_audited(
    t: &TestApp,
    b: &Browser,
    stored: &Stored,
    operator_id: &str,
    before: usize,
) -> String {
    let member_id = &stored.member_id;
    let detail = b.get(&format!("/console/inquiries/{member_id}")).await;
    assert_eq!(detail.status, 200, "{}", detail.html);
    assert!(
        detail.has("健診・医療アクセス認証が進みません。")
            && detail.has("member@example.com")
            && detail.has(&stored.user_id),
        "{}",
        detail.html
    );
    let log = t.app.store.list_audit(None, 100).await.expect("audit");
    assert_eq!(log.len(), before + 1);
    assert_eq!((log[0].action.as_str(), log[0].target_id.as_deref()), ("inquiry.view", Some(member_id.as_str())));
    assert_eq!(log[0].operator_id.as_deref(), Some(operator_id));
    assert_eq!(b.get("/console/inquiries/unknown").await.status, 404);
    detail.csrf()
}

/// Replying: CSRF, an empty answer kept inline, then the mail in the member's language.
async fn step_a_reply_is_mailed_in_the_members_language(
    t: &TestApp,
    b: &Browser,
    member_id: &str,
    member_ref: &str,
    csrf: &str,
) {
    let forged = b.post(&format!("/console/inquiries/{member_id}/reply"), &[("reply", "x")]).await;
    assert_eq!(forged.status, 403);
    let empty = b.post(&format!("/console/inquiries/{member_id}/reply"), &[("csrf", csrf), ("reply", "   ")]).await;
    assert_eq!(empty.status, 422);
    assert!(empty.has("回答を入力してください。"), "{}", empty.html);
    let answer = "お問い合わせありがとうございます。\r\nもう一度「健診・医療アクセス認証」からお試しください。";
    let sent = b.post(&format!("/console/inquiries/{member_id}/reply"), &[("csrf", csrf), ("reply", answer)]).await;
    assert_eq!(
        (sent.status, sent.location.clone()),
        (303, Some(format!("/console/inquiries/{member_id}?done=replied"))),
        "{}",
        sent.html
    );
    let replies = wait_mail(t, "member@example.com", REPLY_JA, 1).await;
    assert!(replies[0].contains(&format!("受付番号: {member_ref}")), "{}", replies[0]);
    assert!(
        replies[0]
            .replace("\r\n", "\n")
            .contains("お問い合わせありがとうございます。\nもう一度「健診・医療アクセス認証」からお試しください。"),
        "{}",
        replies[0]
    );
    // The mail points to the help link that really is on every member page.
    let help = "ヘルプ・お問い合わせ";
    let landing = Browser::new(t).get("/").await;
    assert!(landing.has(&format!("<a href=\"/inquiry/new\">{help}</a>")), "{}", landing.html);
    assert!(replies[0].contains(&format!("「{help}」")), "{}", replies[0]);
    let log = t.app.store.list_audit(None, 1).await.expect("audit");
    assert_eq!((log[0].action.as_str(), log[0].target_id.as_deref()), ("inquiry.reply", Some(member_id)));
    let after = b.get(&format!("/console/inquiries/{member_id}?done=replied")).await;
    assert!(
        after.has("回答をメールで送りました。") && after.has("回答済み") && after.has("審査 花子"),
        "{}",
        after.html
    );
}

/// Closing: CSRF, audit row, closed ones go last and cannot be answered.
async fn step_a_closed_inquiry_goes_last_and_cannot_be_answered(
    t: &TestApp,
    b: &Browser,
    stored: &Stored,
    visitor_ref: &str,
    member_ref: &str,
    csrf: &str,
) {
    let member_id = &stored.member_id;
    let forged = b.post(&format!("/console/inquiries/{member_id}/close"), &[]).await;
    assert_eq!(forged.status, 403);
    let closed = b.post(&format!("/console/inquiries/{member_id}/close"), &[("csrf", csrf)]).await;
    assert_eq!((closed.status, closed.location.as_deref()), (303, Some("/console/inquiries?done=closed")));
    let log = t.app.store.list_audit(None, 1).await.expect("audit");
    assert_eq!((log[0].action.as_str(), log[0].target_id.as_deref()), ("inquiry.close", Some(member_id.as_str())));
    let inbox = b.get("/console/inquiries?done=closed").await;
    assert!(inbox.has("お問い合わせを完了にしました。") && inbox.has("完了"), "{}", inbox.html);
    assert!(inbox.find_pos(visitor_ref) < inbox.find_pos(member_ref), "closed ones last");
    let page = b.get(&format!("/console/inquiries/{member_id}")).await;
    assert!(!page.has("/reply\"") && !page.has("/close\""), "no forms on a closed inquiry: {}", page.html);
    let late = b.post(&format!("/console/inquiries/{member_id}/reply"), &[("csrf", csrf), ("reply", "まだです")]).await;
    assert_eq!(late.status, 409);
    assert_eq!(wait_mail(t, "member@example.com", REPLY_JA, 1).await.len(), 1, "no mail for a closed inquiry");
    assert_eq!(t.app.store.get_inquiry(&stored.visitor_id).await.expect("get").expect("present").0.status, "open");
}

/// The audit log holds ids only.
async fn step_the_audit_log_holds_ids_only(t: &TestApp) {
    let dump = format!("{:?}", t.app.store.list_audit(None, 200).await.expect("audit"));
    assert!(!dump.contains("member@example.com") && !dump.contains("進みません"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn inquiries_are_rate_limited_per_email_and_per_ip() {
    let mut opts = Opts::default();
    opts.limits.inquiry_per_email = Limit::new(2, 3600);
    opts.limits.inquiry_per_ip = Limit::new(4, 3600);
    let t = TestApp::start(opts).await;
    let b = Browser::not_following(&t);

    for i in 0..2 {
        let done = send_inquiry(&b, "other", &format!("質問{i}"), "busy@example.com", false).await;
        assert_eq!(done.status, 200, "{}", done.html);
    }
    let limited = send_inquiry(&b, "other", "三回目の質問", "busy@example.com", false).await;
    assert_eq!(limited.status, 429, "per email");
    assert!(limited.headers.contains_key("retry-after"));
    assert!(limited.has(">三回目の質問</textarea>") && limited.has("role=\"alert\""), "input kept: {}", limited.html);

    let other = send_inquiry(&b, "other", "別のアドレスから", "other@example.com", false).await;
    assert_eq!(other.status, 200, "another address, fourth from this IP");
    let limited = send_inquiry(&b, "other", "四回目", "third@example.com", false).await;
    assert_eq!(limited.status, 429, "per IP");
    assert_eq!(t.app.store.list_inquiries(10).await.expect("list").len(), 3);
    t.stop().await;
}

trait FindPos {
    fn find_pos(&self, s: &str) -> usize;
}

impl FindPos for Page {
    fn find_pos(&self, s: &str) -> usize {
        self.html.find(s).unwrap_or_else(|| panic!("{s} not on the page"))
    }
}
