//! 同意 (#16 point 8): versioned documents linked from the registration, re-consent after a
//! new version (pages and API), the purpose consents before F4 and F5, and their withdrawal.

use crate::common::browser::{Browser, Page};
use crate::common::console::{create_operator, sign_in};
use crate::common::{Backend, Opts, TestApp, PASSWORD};
use app::services::auth::authenticate;
use app::services::operators::{self, Manage, Role};
use serde_json::json;

const EMAIL: &str = "consent@example.com";

/// The flow path of a registration page.
fn flow_path(url: &str) -> String {
    let i = url.find("/register/").expect("on a registration page");
    url[i..].split('?').next().expect("path").to_string()
}

/// The `href` of the first link whose text is `text`.
fn href_of(page: &Page, text: &str) -> String {
    let end = page.html.find(&format!(">{text}</a>")).unwrap_or_else(|| panic!("no link {text}:\n{}", page.html));
    let start = page.html[..end].rfind("href=\"").expect("href") + "href=\"".len();
    page.html[start..].split('"').next().expect("value").replace("&amp;", "&")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_registration_page_links_each_document_and_the_documents_are_public() {
    let t = TestApp::start(Opts::default()).await;
    let b = Browser::new(&t);
    let csrf = b.get("/").await.csrf();
    let org_type = b.post("/register", &[("csrf", &csrf)]).await;
    let flow = flow_path(&org_type.url);
    b.post(&format!("{flow}/org-type"), &[("csrf", &csrf), ("org_type", "health_insurance")]).await;
    b.post(&format!("{flow}/insurer"), &[("csrf", &csrf), ("insurer_number", "133033")]).await;
    let consents = b
        .post(&format!("{flow}/account"), &[("csrf", &csrf), ("email", "page@example.com"), ("password", PASSWORD)])
        .await;
    assert!(consents.has("Mimoto利用規約に同意する"), "{}", consents.html);
    let org_id = t.app.store.find_org_by_insurer_number("133033").await.expect("find").expect("org").id;
    // Each checkbox has its document, named, opened in a new tab so the form keeps its state.
    for (text, href, title) in [
        ("Mimoto利用規約を読む", "/documents/platform_terms".to_string(), "Mimoto利用規約"),
        (
            "みらい健康保険組合のプライバシーポリシーを読む",
            format!("/documents/org_privacy?org={org_id}"),
            "みらい健康保険組合 プライバシーポリシー",
        ),
        ("みらいポイント利用規約を読む", format!("/documents/point_terms?org={org_id}"), "みらいポイント利用規約"),
    ] {
        assert_eq!(href_of(&consents, text), href);
        assert!(
            consents
                .has(&format!("href=\"{}\" target=\"_blank\" rel=\"noopener\">{text}</a>", href.replace('&', "&amp;"))),
            "{text}"
        );
        let doc = b.get(&href).await;
        assert_eq!(doc.status, 200, "{href}");
        assert!(
            doc.has(&format!("<h1>{title}</h1>")) && doc.has("2026-04-01") && doc.has("現在の版です。"),
            "{}",
            doc.html
        );
    }
    let biometric = b.get("/documents/biometric").await;
    assert!(biometric.has("個人識別符号") && biometric.has("撤回"), "{}", biometric.html);
    let health = b.get("/documents/health_data").await;
    assert!(health.has("要配慮個人情報"), "{}", health.html);
    assert!(b.get("/lang/en?next=/documents/health_data").await.has("special care-required personal information"));
    assert_eq!(b.get("/documents/nothing").await.status, 404);
    assert_eq!(b.get("/documents/platform_terms/1999-01-01").await.status, 404);
    // The public API gives the same text.
    let (s, v) = t.get("/api/v1/documents/platform_terms", None).await;
    assert_eq!((s, v["version"].as_str()), (200, Some("2026-04-01")), "{v}");
    t.stop().await;
}

/// An admin publishes a new version in the console (audited; its body rendered escaped); a
/// member signed in before is sent to 「規約等の改定への同意」 on every member page but the
/// allowed ones, the API answers 403 consent_required, and accepting lets both go on.
async fn re_consent_story(backend: Backend) {
    let t = TestApp::start(Opts { backend, ..Opts::default() }).await;
    let token = t.register(EMAIL, PASSWORD).await;
    let member = Browser::new(&t);
    assert_eq!(member.login(EMAIL, PASSWORD).await.status, 200);
    assert!(member.get("/menu").await.has("<h1>メニュー</h1>"), "no re-consent before a new version");
    let (s, v) = t.get("/api/v1/health", Some(&token)).await;
    assert_eq!((s, v["error"]["code"].as_str()), (403, Some("health_not_unlocked")), "{v}");

    // The console: a reviewer may not publish; an admin may.
    let reviewer = create_operator(&t, "reviewer@example.com", "審査 花子", Role::Reviewer).await;
    let rb = Browser::not_following(&t);
    sign_in(&t, &rb, &reviewer).await;
    assert_eq!(rb.get("/console/documents").await.status, 403);
    let admin = create_operator(&t, "admin@example.com", "管理 太郎", Role::Admin).await;
    let ab = Browser::not_following(&t);
    sign_in(&t, &ab, &admin).await;
    let list = ab.get("/console/documents").await;
    assert_eq!(list.status, 200, "{}", list.html);
    assert!(list.has("Mimoto利用規約") && list.has("2026-04-01"));
    let form = ab.get("/console/documents?kind=platform_terms&org=").await;
    assert!(
        form.has("<label for=\"doc-body\">本文</label>") && form.has("1. このサービス"),
        "prefilled: {}",
        form.html
    );
    let empty = ab
        .post(
            "/console/documents",
            &[("csrf", &form.csrf()), ("kind", "platform_terms"), ("org", ""), ("title", ""), ("body", "")],
        )
        .await;
    assert_eq!(empty.status, 422, "{}", empty.html);
    let published = ab
        .post(
            "/console/documents",
            &[
                ("csrf", &form.csrf()),
                ("kind", "platform_terms"),
                ("org", ""),
                ("title", "Mimoto利用規約（改定）"),
                ("body", "第1条 <script>alert(1)</script>\n\n第2条 改定しました。"),
                ("title_en", ""),
                ("body_en", ""),
            ],
        )
        .await;
    let version = t.app.now().to_offset(time::macros::offset!(+9)).date().to_string();
    let location = published.location.clone().expect("a redirect");
    assert_eq!(location, format!("/console/documents?published={version}"));
    let published = ab.get(&location).await;
    assert!(published.has(&format!("版 {version} を公開しました。")), "{}", published.html);
    let audit = t
        .app
        .store
        .search_audit(
            &store::AuditFilter { action_prefix: Some("documents.publish".into()), ..Default::default() },
            None,
            10,
        )
        .await
        .expect("audit");
    assert_eq!(audit.len(), 1);
    assert_eq!(audit[0].target_id.as_deref(), Some(format!("platform_terms:{version}").as_str()));

    // The member: every member page leads to the re-consent page…
    let renew = member.get("/menu").await;
    assert!(renew.url.ends_with("/consents/renew"), "{}", renew.url);
    assert!(renew.has("<h1>規約等の改定への同意</h1>") && renew.has(">Mimoto利用規約（改定）</a>"), "{}", renew.html);
    assert!(renew.has("href=\"/documents/platform_terms\""), "links to the document");
    assert!(!renew.has("name=\"org_privacy\""), "only what changed");
    assert!(member.get("/menu/org").await.url.ends_with("/consents/renew"));
    // 「同意の確認・撤回」 stays open: a purpose consent's new version may be refused by withdrawing it.
    assert!(member.get("/consents").await.url.ends_with("/consents"));
    assert!(renew.has("<a href=\"/consents\">同意の確認・撤回</a>"), "{}", renew.html);
    // …except help, the documents themselves and logout.
    assert!(member.get("/inquiry/new").await.url.ends_with("/inquiry/new"));
    let doc = member.get("/documents/platform_terms").await;
    assert!(doc.url.ends_with("/documents/platform_terms") && doc.has("<h1>Mimoto利用規約（改定）</h1>"));
    assert!(doc.has("&#60;script&#62;alert(1)&#60;/script&#62;") && !doc.has("<script>alert"), "escaped: {}", doc.html);
    assert!(doc.has("href=\"/documents/platform_terms/2026-04-01\""), "earlier versions stay readable");
    assert!(member.get("/documents/platform_terms/2026-04-01").await.has("この版は改定されています。"));

    // The API: member endpoints answer 403 consent_required with the documents.
    let (s, v) = t.get("/api/v1/health", Some(&token)).await;
    assert_eq!((s, v["error"]["code"].as_str()), (403, Some("consent_required")), "{v}");
    assert_eq!(v["error"]["missing_consents"], json!(["platform_terms"]));
    let (s, v) = t.get("/api/v1/consents", Some(&token)).await;
    assert_eq!((s, &v["pending"]), (200, &json!(["platform_terms"])), "{v}");

    // Accepting: every changed document must be checked.
    let missing = member.post("/consents/renew", &[("csrf", &renew.csrf())]).await;
    assert_eq!(missing.status, 422);
    assert!(missing.has("role=\"alert\""));
    let menu = member.post("/consents/renew", &[("csrf", &renew.csrf()), ("platform_terms", "on")]).await;
    assert!(menu.url.ends_with("/menu") && menu.has("<h1>メニュー</h1>"), "{}", menu.url);
    let m = authenticate(&t.app, &token).await.expect("auth").expect("member");
    let stored = t.app.store.user_consents(&m.user.id).await.expect("consents");
    let latest = stored.iter().filter(|c| c.doc == "platform_terms").max_by_key(|c| c.accepted_at).expect("row");
    assert_eq!((latest.version.as_str(), latest.accepted_at), (version.as_str(), t.app.now()));
    let (s, v) = t.get("/api/v1/health", Some(&token)).await;
    assert_eq!((s, v["error"]["code"].as_str()), (403, Some("health_not_unlocked")), "the API goes on: {v}");

    // A second version the same day, accepted over the API.
    let again = ab.get("/console/documents?kind=platform_terms").await;
    ab.post(
        "/console/documents",
        &[("csrf", &again.csrf()), ("kind", "platform_terms"), ("org", ""), ("title", "第3版"), ("body", "本文")],
    )
    .await;
    let (s, v) = t.post_auth("/api/v1/consents/renewal", &token, json!({"accepted": []})).await;
    assert_eq!((s, v["error"]["code"].as_str()), (422, Some("consents_missing")), "{v}");
    let (s, v) = t.post_auth("/api/v1/consents/renewal", &token, json!({"accepted": ["platform_terms"]})).await;
    assert_eq!((s, &v["pending"]), (200, &json!([])), "{v}");
    let line =
        v["consents"].as_array().expect("list").iter().find(|c| c["doc"] == "platform_terms").expect("line").clone();
    assert_eq!(line["version"], json!(format!("{version}-2")));
    assert!(member.get("/menu").await.has("<h1>メニュー</h1>"));

    // An administrator limited to organizations publishes no platform-wide version, and no
    // version for another organization.
    let scoped = create_operator(&t, "scoped@example.com", "団体 担当", Role::Admin).await;
    let admin_op = operators::list(&t.app).await.expect("list").into_iter().find(|o| o.name == "管理 太郎").expect("a");
    let scoped_id =
        operators::list(&t.app).await.expect("list").into_iter().find(|o| o.name == "団体 担当").expect("s").id;
    operators::manage(&t.app, &admin_op, &scoped_id, Manage::Scope(vec!["06132013".into()]), "10.0.0.9")
        .await
        .expect("scoped");
    let sb = Browser::not_following(&t);
    t.clock.advance(time::Duration::seconds(30));
    sign_in(&t, &sb, &scoped).await;
    let form = sb.get("/console/documents?kind=platform_terms&org=").await;
    let refused = sb
        .post(
            "/console/documents",
            &[("csrf", &form.csrf()), ("kind", "platform_terms"), ("org", ""), ("title", "勝手な版"), ("body", "本文")],
        )
        .await;
    assert_eq!(refused.status, 403, "{}", refused.html);
    let hanako_org = m.user.org_id.clone();
    let refused = sb
        .post(
            "/console/documents",
            &[
                ("csrf", &form.csrf()),
                ("kind", "org_privacy"),
                ("org", &hanako_org),
                ("title", "勝手な版"),
                ("body", "本文"),
            ],
        )
        .await;
    assert_eq!(refused.status, 403, "another organization's: {}", refused.html);
    t.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_new_version_asks_again_on_sqlite() {
    re_consent_story(Backend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_new_version_asks_again_on_postgres() {
    re_consent_story(Backend::Postgres).await;
}

/// F4 starts only with the face-image consent, given on its own page; withdrawing it stops an
/// open application.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn f4_needs_the_biometric_consent() {
    let t = TestApp::start(Opts::default()).await;
    let token = t.register(EMAIL, PASSWORD).await;
    t.verify_identity(&token).await;
    // The helper gave the consent; withdraw it to start without.
    let (s, v) = t.delete_auth("/api/v1/consents/biometric", &token).await;
    assert_eq!(s, 200, "{v}");
    let (s, v) = t.post_auth("/api/v1/ekyc-applications", &token, json!({})).await;
    assert_eq!((s, v["error"]["code"].as_str()), (403, Some("consent_required")), "{v}");
    assert_eq!(v["error"]["missing_consents"], json!(["biometric"]));

    let b = Browser::new(&t);
    b.login(EMAIL, PASSWORD).await;
    let intro = b.get("/ekyc").await;
    let ask = b.post("/ekyc", &[("csrf", &intro.csrf())]).await;
    assert!(ask.url.contains("/consents/biometric?next=%2Fekyc"), "{}", ask.url);
    assert!(ask.has("<h1>顔画像の取扱いへの同意</h1>") && ask.has(">顔画像の取扱いについて</a>"), "{}", ask.html);
    assert!(ask.has("<label for=\"agree\">"), "a labelled checkbox");
    let unchecked = b.post("/consents/biometric", &[("csrf", &ask.csrf()), ("next", "/ekyc")]).await;
    assert_eq!(unchecked.status, 422);
    let back = b.post("/consents/biometric", &[("csrf", &ask.csrf()), ("next", "/ekyc"), ("agree", "on")]).await;
    assert!(back.url.ends_with("/ekyc"), "{}", back.url);
    // An outside `next` is never followed.
    let outside =
        b.post("/consents/biometric", &[("csrf", &ask.csrf()), ("next", "//evil.example"), ("agree", "on")]).await;
    assert!(outside.url.starts_with(&t.base) && outside.url.ends_with("/ekyc"), "{}", outside.url);
    // Nor one that browsers would turn into another site once they drop its tab.
    let tabbed =
        b.post("/consents/biometric", &[("csrf", &ask.csrf()), ("next", "/\t/evil.example"), ("agree", "on")]).await;
    assert!(tabbed.url.starts_with(&t.base) && tabbed.url.ends_with("/ekyc"), "{}", tabbed.url);

    let (s, v) = t.post_auth("/api/v1/ekyc-applications", &token, json!({})).await;
    assert_eq!(s, 201, "{v}");
    let id = v["id"].as_str().expect("id").to_string();
    // Withdrawn: the open application cannot go on until the consent is given again.
    let (s, _) = t.delete_auth("/api/v1/consents/biometric", &token).await;
    assert_eq!(s, 200);
    let doc = json!({"kind": "drivers_license"});
    let (s, v) = t.post_auth(&format!("/api/v1/ekyc-applications/{id}/document"), &token, doc.clone()).await;
    assert_eq!((s, v["error"]["code"].as_str()), (403, Some("consent_required")), "{v}");
    let (s, v) = t.post_auth("/api/v1/consents/biometric", &token, json!({})).await;
    assert_eq!(s, 200, "{v}");
    let (s, v) = t.post_auth(&format!("/api/v1/ekyc-applications/{id}/document"), &token, doc).await;
    assert_eq!(s, 200, "{v}");
    // The registration documents cannot be withdrawn; an unknown one is not found.
    let (s, v) = t.delete_auth("/api/v1/consents/platform_terms", &token).await;
    assert_eq!((s, v["error"]["code"].as_str()), (404, Some("document_not_found")), "{v}");
    t.stop().await;
}

/// Withdrawing the health-data consent on 「同意の確認・撤回」 closes the health pages and the
/// health API until it is given again.
async fn withdrawal_story(backend: Backend) {
    let t = TestApp::start(Opts { backend, ..Opts::default() }).await;
    let (token, m) = crate::health::hanako(&t).await;
    crate::health::f4_and_checkups(&t, &m).await;
    let (s, v) = t.post_auth("/api/v1/health/step-up", &token, json!({"answer": crate::health::ANSWER})).await;
    assert_eq!(s, 200, "{v}");
    let (s, v) = t.get("/api/v1/health/checkups", Some(&token)).await;
    assert_eq!(s, 200, "{v}");

    let b = Browser::new(&t);
    b.login(crate::health::EMAIL, PASSWORD).await;
    let menu = b.get("/menu").await;
    assert!(menu.has("<a href=\"/consents\">同意の確認・撤回</a>"), "{}", menu.html);
    let list = b.get("/consents").await;
    assert!(list.has("<h1>同意の確認・撤回</h1>") && list.has("健診等情報の受領について"), "{}", list.html);
    assert!(list.has("2026-04-01") && list.has("撤回できません"));
    assert!(list.has("href=\"/consents/health_data/withdraw\">同意を撤回する</a>"), "{}", list.html);
    assert!(!list.has("/consents/platform_terms/withdraw"), "the terms are not withdrawable");
    let confirm = b.get("/consents/health_data/withdraw").await;
    assert!(confirm.has("表示されなくなります") && confirm.has(">撤回する</button>"), "{}", confirm.html);
    let done = b.post("/consents/health_data/withdraw", &[("csrf", &confirm.csrf())]).await;
    assert!(done.has("同意を撤回しました。") && done.has("撤回日"), "{}", done.html);

    // Closed: pages ask for the consent, the API answers consent_required.
    let page = b.get("/health/checkups").await;
    assert!(page.url.contains("/consents/health_data?next=%2Fhealth%2Fcheckups"), "{}", page.url);
    assert!(page.has("<h1>健診等情報の受領への同意</h1>"), "{}", page.html);
    for path in ["/api/v1/health", "/api/v1/health/checkups", "/api/v1/health/medications"] {
        let (s, v) = t.get(path, Some(&token)).await;
        assert_eq!((s, v["error"]["code"].as_str()), (403, Some("consent_required")), "{path}: {v}");
        assert_eq!(v["error"]["missing_consents"], json!(["health_data"]));
    }
    let (s, v) = t.delete_auth("/api/v1/consents/health_data", &token).await;
    assert_eq!((s, v["error"]["code"].as_str()), (409, Some("nothing_to_withdraw")), "{v}");

    // Given again (the first visit's page): the health page asks the secret question again.
    let again =
        b.post("/consents/health_data", &[("csrf", &page.csrf()), ("next", "/health/checkups"), ("agree", "on")]).await;
    assert!(again.url.contains("/health/unlock"), "{}", again.url);
    // Every session's secret-question answer ended with the withdrawal: the app asks again too.
    let (s, v) = t.get("/api/v1/health/checkups", Some(&token)).await;
    assert_eq!((s, v["error"]["code"].as_str()), (403, Some("step_up_required")), "{v}");
    t.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn withdrawing_the_health_consent_closes_health_data_on_sqlite() {
    withdrawal_story(Backend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn withdrawing_the_health_consent_closes_health_data_on_postgres() {
    withdrawal_story(Backend::Postgres).await;
}
