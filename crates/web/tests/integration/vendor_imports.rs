//! 特定健診 files from the field (issue #15, point 5): another vendor's converter writes item
//! codes without `codeSystem`, the insurer number as `00` + 6 digits, and puts `CLAIMS/`, an
//! index and a summary next to `DATA/`. Such a file imports like an ideal one, and the report
//! (service, console page) says what was read without a code system and what was skipped.

use crate::common::browser::Browser;
use crate::common::console::{create_operator, sign_in};
use crate::common::{Backend, Opts, TestApp, PASSWORD};
use crate::console_imports::{finished, upload};
use app::error::ServiceError;
use app::services::auth::{authenticate, Member};
use app::services::checkups::{self, ImportReport, ImportStats};
use app::services::operators::Role;
use records::checkup::{CheckupDocument, SkipReason};
use records::testing::{hanako_zip, items, pq, zip, Doc, SETTLEMENT};

const JLAC10: &str = "1.2.392.200119.6.1005";
const ROOT: &str = "1311234567_00133033_20240620";

async fn hanako(t: &TestApp) -> Member {
    let token = t.register("hanako@example.com", PASSWORD).await;
    t.verify_identity(&token).await;
    authenticate(&t.app, &token).await.expect("auth").expect("member")
}

/// A document as the vendor writes it: no `codeSystem` on the item codes.
fn vendor(doc: &Doc) -> String {
    let xml = doc.xml().replace(&format!(r#" codeSystem="{JLAC10}" displayName="#), " displayName=");
    assert!(!xml.contains(&format!(r#"codeSystem="{JLAC10}" displayName"#)));
    xml
}

/// ヤマダ ハナコ's two checkups (as in `hanako_zip`) in the vendor's layout.
fn vendor_zip(documents: &[(&str, String)]) -> Vec<u8> {
    let index =
        r#"<?xml version="1.0" encoding="UTF-8"?><index xmlns="urn:hl7-org:v3"><totalRecordCount value="2"/></index>"#;
    let mut entries: Vec<(String, Vec<u8>)> = vec![
        (format!("{ROOT}/index.xml"), index.as_bytes().to_vec()),
        (format!("{ROOT}/INDEX"), b"1311234567,00133033,2".to_vec()),
        (format!("{ROOT}/summary.xml"), b"<summary><count>2</count></summary>".to_vec()),
    ];
    for (name, xml) in documents {
        entries.push((format!("{ROOT}/DATA/{name}"), xml.as_bytes().to_vec()));
    }
    entries.push((format!("{ROOT}/CLAIMS/c0001.xml"), SETTLEMENT.as_bytes().to_vec()));
    let refs: Vec<(&str, &[u8])> = entries.iter().map(|(n, b)| (n.as_str(), b.as_slice())).collect();
    zip(&refs)
}

fn hanako_vendor_zip() -> Vec<u8> {
    let mut y2023 = Doc::hanako("20230605", items("5.4"));
    let mut y2024 = Doc::hanako("20240610", items("5.7"));
    (y2023.insurer, y2024.insurer) = ("00133033", "00133033");
    vendor_zip(&[("h0001.xml", vendor(&y2023)), ("h0002.xml", vendor(&y2024))])
}

fn entry_errors(result: Result<ImportReport, ServiceError>) -> Vec<(String, String)> {
    match result {
        Err(ServiceError::CheckupEntries(errors)) => errors.into_iter().map(|e| (e.entry, e.reason)).collect(),
        other => panic!("expected per-entry errors, got {other:?}"),
    }
}

/// What a member sees of a result: everything but the code system the file declared.
fn seen(docs: &[CheckupDocument]) -> Vec<String> {
    docs.iter()
        .flat_map(|d| {
            d.items.iter().map(move |i| {
                format!(
                    "{} {} {:?} {} {:?} {:?} {:?}",
                    d.examined_on,
                    i.code,
                    i.key,
                    i.name,
                    i.value,
                    i.reference,
                    i.judgement()
                )
            })
        })
        .collect()
}

async fn a_vendor_file_imports_like_an_ideal_one_and_the_report_says_so(t: TestApp) {
    let member = hanako(&t).await;
    let report = checkups::import_zip_report(&t.app, "133033", "vendor.zip", hanako_vendor_zip(), &mut ())
        .await
        .expect("the vendor's file is accepted");
    assert_eq!(report.stats, ImportStats { documents: 2, inserted: 2, replaced: 0, skipped: 0 });
    assert_eq!(report.codes_without_system, 10, "5 item codes in each of 2 documents");
    let skipped: Vec<(&str, &SkipReason)> =
        report.skipped_files.iter().map(|s| (s.entry.as_str(), &s.reason)).collect();
    assert_eq!(
        skipped,
        [
            (format!("{ROOT}/index.xml").as_str(), &SkipReason::Index),
            (format!("{ROOT}/INDEX").as_str(), &SkipReason::Index),
            (format!("{ROOT}/summary.xml").as_str(), &SkipReason::Summary),
            (format!("{ROOT}/CLAIMS/c0001.xml").as_str(), &SkipReason::Claims),
        ]
    );
    assert_eq!(report.skipped_files_total, 4);
    let from_vendor = checkups::results_for_member(&t.app, &member, "127.0.0.1").await.expect("results");
    assert_eq!(from_vendor.len(), 2);
    assert!(from_vendor.iter().flat_map(|d| &d.items).all(|i| i.code_system.is_none()));

    // The ideal file of the same examinations replaces them: the member sees the same results.
    let ideal = checkups::import_zip_report(&t.app, "133033", "ideal.zip", hanako_zip(), &mut ()).await.expect("ideal");
    assert_eq!(ideal.stats, ImportStats { documents: 2, inserted: 0, replaced: 2, skipped: 1 });
    assert_eq!(ideal.codes_without_system, 0);
    let from_ideal = checkups::results_for_member(&t.app, &member, "127.0.0.1").await.expect("results");
    assert_eq!(seen(&from_vendor), seen(&from_ideal));
    assert!(from_vendor[0].item("hba1c").is_some_and(|i| i.reference.is_some()), "mapped, with reference values");

    // The organization may be named by either form of its number.
    let again = checkups::import_zip(&t.app, "00133033", "vendor.zip", hanako_vendor_zip(), &mut ()).await;
    assert_eq!(again.expect("found by 00 + 6 digits").replaced, 2);
    t.stop().await;
}

async fn a_code_without_code_system_that_is_not_jlac10_refuses_the_file(t: TestApp) {
    let member = hanako(&t).await;
    let good = vendor(&Doc::hanako("20240610", items("5.7")));
    let mut local = items("5.7");
    local.push(pq("BP-SYS", "収縮期血圧（独自コード）", "128", "mmHg"));
    let bad = vendor(&Doc::hanako("20230605", local));
    let errors = entry_errors(
        checkups::import_zip_report(
            &t.app,
            "133033",
            "v.zip",
            vendor_zip(&[("h1.xml", good), ("h2.xml", bad)]),
            &mut (),
        )
        .await,
    );
    assert_eq!(errors.len(), 1, "{errors:?}");
    assert_eq!(errors[0].0, format!("{ROOT}/DATA/h2.xml"));
    let reason = &errors[0].1;
    assert!(reason.contains("\"BP-SYS\"") && reason.contains("no codeSystem"), "{reason}");
    assert!(reason.contains("observation #6") && reason.contains("/section/entry/observation"), "{reason}");
    assert!(checkups::results_for_member(&t.app, &member, "127.0.0.1").await.expect("results").is_empty());
    t.stop().await;
}

async fn only_the_organizations_number_matches_in_either_form(t: TestApp) {
    let member = hanako(&t).await;
    let mut documents = Vec::new();
    // Numbers a wrong normalization would take for 133033: a leading 1 (last six digits), a
    // single leading zero (zeros stripped), another insurer's check digit.
    for (i, insurer) in ["10133033", "0133033", "00133034", "01133033"].into_iter().enumerate() {
        let mut doc = Doc::hanako("20240610", items("5.7"));
        doc.insurer = insurer;
        documents.push((format!("h{i}.xml"), vendor(&doc)));
    }
    let named: Vec<(&str, String)> = documents.iter().map(|(n, x)| (n.as_str(), x.clone())).collect();
    let errors =
        entry_errors(checkups::import_zip_report(&t.app, "133033", "v.zip", vendor_zip(&named), &mut ()).await);
    assert_eq!(errors.len(), 4, "{errors:?}");
    assert!(
        errors.iter().all(|(_, r)| r.contains("insurer number (保険者番号) is not the organization's")),
        "{errors:?}"
    );
    assert!(checkups::results_for_member(&t.app, &member, "127.0.0.1").await.expect("results").is_empty());
    // A number that is no form of any organization's is no organization.
    assert!(matches!(
        checkups::import_zip_report(&t.app, "10133033", "v.zip", hanako_vendor_zip(), &mut ()).await,
        Err(ServiceError::UnknownOrganization)
    ));
    t.stop().await;
}

on_both_backends!(
    a_vendor_file_imports_like_an_ideal_one_and_the_report_says_so,
    a_code_without_code_system_that_is_not_jlac10_refuses_the_file,
    only_the_organizations_number_matches_in_either_form,
);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_console_shows_codes_read_without_code_system_and_the_skipped_files() {
    let t = TestApp::start(Opts::default()).await;
    let member = hanako(&t).await;
    let admin = create_operator(&t, "admin@mimoto.example.jp", "管理 太郎", Role::Admin).await;
    let b = Browser::not_following(&t);
    sign_in(&t, &b, &admin).await;

    let sent = upload(&b, "checkups", "133033", "vendor.zip", hanako_vendor_zip()).await;
    assert_eq!(sent.status, 303, "{}", sent.html);
    let done = finished(&b, &sent.location.expect("job page")).await;
    assert!(done.has("取り込みが完了しました") && done.has("<dt>件数</dt><dd>2</dd>"), "{}", done.html);
    assert!(done.has("codeSystem なしの検査項目コード 10 件を JLAC10 として読み取りました。"), "{}", done.html);
    assert!(done.has("<caption>取り込まなかったファイル（4 件）</caption>"), "{}", done.html);
    for row in [
        format!("<tr><td>{ROOT}/CLAIMS/c0001.xml</td><td>CLAIMS/ の決済情報（健診結果ではありません）</td></tr>"),
        format!("<tr><td>{ROOT}/index.xml</td><td>インデックスファイル（交換用基本情報）</td></tr>"),
        format!("<tr><td>{ROOT}/INDEX</td><td>インデックスファイル（交換用基本情報）</td></tr>"),
        format!("<tr><td>{ROOT}/summary.xml</td><td>集計情報ファイル</td></tr>"),
    ] {
        assert!(done.has(&row), "{row} in {}", done.html);
    }
    assert_eq!(
        app::services::checkups::results_for_member(&t.app, &member, "127.0.0.1").await.expect("results").len(),
        2
    );

    // An ideal file says nothing about code systems; its settlement file is listed.
    let sent = upload(&b, "checkups", "133033", "ideal.zip", hanako_zip()).await;
    let done = finished(&b, &sent.location.expect("job page")).await;
    assert!(done.has("取り込みが完了しました") && !done.has("codeSystem なし"), "{}", done.html);
    assert!(
        done.has("<td>133033_20240620/DATA/c1.xml</td><td>決済情報（健診結果ではありません）</td>"),
        "{}",
        done.html
    );

    // A code that is not JLAC10, without a code system: refused, naming the code.
    let mut local = items("5.7");
    local.push(pq("BP-SYS", "収縮期血圧（独自コード）", "128", "mmHg"));
    let bad = vendor_zip(&[("h1.xml", vendor(&Doc::hanako("20250601", local)))]);
    let sent = upload(&b, "checkups", "133033", "bad.zip", bad).await;
    let refused = finished(&b, &sent.location.expect("job page")).await;
    assert!(refused.has("取り込みませんでした"), "{}", refused.html);
    assert!(refused.has("DATA/h1.xml") && refused.has("BP-SYS") && refused.has("no codeSystem"), "{}", refused.html);
    t.stop().await;
}

/// One insurer, one organization: `mimoto org add` (the service under it) refuses an insurer
/// number that is an existing organization's in the other form (`00` + 6 digits or 6 digits).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_organization_of_an_insurer_there_in_the_other_form_is_refused() {
    use domain::insurer::{check_digit, InsurerNumber};
    use domain::org::{CardPattern, NewOrganization, OrgType};
    let t = TestApp::start(Opts::default()).await;
    let new = |number: &str| NewOrganization {
        insurer_number: InsurerNumber::parse(number).expect("valid insurer number"),
        org_type: OrgType::HealthInsurance,
        name: "かさね健康保険組合".into(),
        point_name: None,
        checkup_linked: false,
        card_pattern: CardPattern::SymbolAndNumber,
    };
    let orgs = t.app.store.list_orgs().await.expect("orgs").len();

    // The demo's 133033 is there: 00133033 is the same insurer.
    let refused = app::demo::add_org(&t.app, new("00133033")).await;
    assert!(
        matches!(&refused, Err(ServiceError::InvalidRequest(m)) if m.contains("00133033") && m.contains("133033")),
        "{refused:?}"
    );
    // The other way round: an 8-digit organization first, then its 6-digit form.
    let six = format!("13501{}", check_digit(&[1, 3, 5, 0, 1]));
    app::demo::add_org(&t.app, new(&format!("00{six}"))).await.expect("a new insurer");
    let refused = app::demo::add_org(&t.app, new(&six)).await;
    assert!(matches!(&refused, Err(ServiceError::InvalidRequest(_))), "{refused:?}");
    // The same form twice is refused as before; another insurer is added.
    assert!(app::demo::add_org(&t.app, new("133033")).await.is_err());
    app::demo::add_org(&t.app, new(&format!("13502{}", check_digit(&[1, 3, 5, 0, 2])))).await.expect("another insurer");
    assert_eq!(t.app.store.list_orgs().await.expect("orgs").len(), orgs + 2);
    t.stop().await;
}
