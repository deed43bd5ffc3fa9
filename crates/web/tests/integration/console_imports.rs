//! Health-record imports from the console (F5): an administrator uploads a 特定健診 ZIP built
//! here, watches the progress page until it is written, and sees every problem of a refused
//! file; reviewers may not import. The member then sees the results (service read).

use crate::common::browser::{Browser, Page};
use crate::common::console::{create_operator, sign_in};
use crate::common::{Opts, TestApp, PASSWORD};
use app::services::auth::authenticate;
use app::services::operators::Role;
use records::testing::{hanako_zip, zip, Doc, BILLION_LAUGHS};

pub(crate) async fn upload(b: &Browser, kind: &str, org: &str, name: &str, bytes: Vec<u8>) -> Page {
    let form = b.get("/console/imports").await;
    assert_eq!(form.status, 200, "{}", form.html);
    let mut parts = reqwest::multipart::Form::new()
        .text("csrf", form.csrf())
        .text("kind", kind.to_string())
        .text("org", org.to_string());
    if !bytes.is_empty() {
        parts = parts.part("file", reqwest::multipart::Part::bytes(bytes).file_name(name.to_string()));
    }
    Browser::page(b.client.post(format!("{}/console/imports", b.base)).multipart(parts).send().await.expect("upload"))
        .await
}

/// Follows the job page (as its refresh does) until the job has finished.
pub(crate) async fn finished(b: &Browser, job: &str) -> Page {
    for _ in 0..200 {
        let p = b.get(job).await;
        assert_eq!(p.status, 200, "{}", p.html);
        if !p.has("http-equiv=\"refresh\"") {
            return p;
        }
        assert!(p.has("<progress"), "a running job shows its progress: {}", p.html);
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    panic!("the import did not finish");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_administrator_imports_checkups_and_sees_the_problems_of_a_refused_file() {
    let t = TestApp::start(Opts::default()).await;
    let token = t.register("hanako@example.com", PASSWORD).await;
    t.verify_identity(&token).await;
    let member = authenticate(&t.app, &token).await.expect("auth").expect("member");

    // Reviewers do not import.
    let reviewer = create_operator(&t, "reviewer@mimoto.example.jp", "審査 花子", Role::Reviewer).await;
    let rb = Browser::not_following(&t);
    sign_in(&t, &rb, &reviewer).await;
    assert!(!rb.get("/console").await.has("href=\"/console/imports\""));
    assert_eq!(rb.get("/console/imports").await.status, 403);

    let admin = create_operator(&t, "admin@mimoto.example.jp", "管理 太郎", Role::Admin).await;
    let b = Browser::not_following(&t);
    sign_in(&t, &b, &admin).await;
    let form = b.get("/console/imports").await;
    assert!(
        form.has("<label for=\"kind\">種類</label>")
            && form.has("<label for=\"file\">ファイル</label>")
            && form.has(">取り込む</button>"),
        "{}",
        form.html
    );
    assert!(form.has("<option value=\"133033\">"), "demo organizations are listed");

    // A forged form is refused before anything is read.
    let forged = Browser::page(
        b.client
            .post(format!("{}/console/imports", b.base))
            .multipart(
                reqwest::multipart::Form::new().text("csrf", "forged").text("kind", "checkups").text("org", "133033"),
            )
            .send()
            .await
            .expect("post"),
    )
    .await;
    assert_eq!(forged.status, 403);
    // No file: the form again with the message.
    let empty = upload(&b, "checkups", "133033", "", Vec::new()).await;
    assert_eq!(empty.status, 422);
    assert!(empty.has("ファイルを選択してください。"));

    // A good archive: progress page, then what was written.
    let sent = upload(&b, "checkups", "133033", "133033_20240620.zip", hanako_zip()).await;
    assert_eq!(sent.status, 303, "{}", sent.html);
    let job = sent.location.expect("job page");
    assert!(job.starts_with("/console/imports/"));
    let done = finished(&b, &job).await;
    assert!(done.has("取り込みが完了しました"), "{}", done.html);
    assert!(done.has("<dt>件数</dt><dd>2</dd>") && done.has("<dt>新規</dt><dd>2</dd>"), "{}", done.html);
    assert!(done.has("133033_20240620.zip"));
    let results = app::services::checkups::results_for_member(&t.app, &member, "127.0.0.1").await.expect("results");
    assert_eq!(results.len(), 2);

    // A file with an unmatched examinee and an entity-expansion bomb: nothing written, both listed.
    let stranger = Doc { number: "9999", ..Doc::hanako("20250601", Vec::new()) }.xml();
    let bad = zip(&[("DATA/h1.xml", stranger.as_bytes()), ("DATA/h2.xml", BILLION_LAUGHS.as_bytes())]);
    let sent = upload(&b, "checkups", "133033", "bad.zip", bad).await;
    let refused = finished(&b, &sent.location.expect("job page")).await;
    assert!(refused.has("取り込みませんでした"), "{}", refused.html);
    assert!(refused.has("DATA/h2.xml"), "{}", refused.html);
    assert_eq!(
        app::services::checkups::results_for_member(&t.app, &member, "127.0.0.1").await.expect("results").len(),
        2,
        "nothing more written"
    );

    // CSV files the same way: a good お薬履歴 file, then a 医療費通知 file with a bad line.
    let meds = "保険者番号,記号,番号,枝番,生年月日,調剤年月日,薬局名,処方医療機関,処方医,医薬品名,用量,日数\n\
                133033,1234,5678,,1990-04-01,2025-04-01,みらい薬局,みらいクリニック,,アムロジピン錠5mg,1回1錠,30\n";
    let sent = upload(&b, "medications", "133033", "meds.csv", meds.as_bytes().to_vec()).await;
    let done = finished(&b, &sent.location.expect("job page")).await;
    assert!(done.has("取り込みが完了しました") && done.has("<dt>件数</dt><dd>1</dd>"), "{}", done.html);
    let rows =
        app::services::health_imports::medications_for_member(&t.app, &member, "127.0.0.1").await.expect("medications");
    assert_eq!(rows.iter().map(|r| r.drug.as_str()).collect::<Vec<_>>(), ["アムロジピン錠5mg"]);
    let expenses =
        "保険者番号,記号,番号,枝番,生年月日,診療年月,受診者,医療機関等名称,区分,日数,医療費の総額,窓口負担額\n\
                    133033,1234,5678,,1990-04-01,2025-04,ヤマダ ハナコ,みらいクリニック,外来,1,4320,1300\n\
                    133033,1234,5678,,1990-04-01,2025-13,ヤマダ ハナコ,みらいクリニック,外来,1,4320,1300\n";
    let sent = upload(&b, "expenses", "133033", "expenses.csv", expenses.as_bytes().to_vec()).await;
    let refused = finished(&b, &sent.location.expect("job page")).await;
    assert!(refused.has("取り込みませんでした") && refused.has("<td>3</td>"), "line 3 is listed: {}", refused.html);
    assert!(!refused.has("ヤマダ"), "no personal data in the problems");
    assert!(
        app::services::health_imports::expenses_for_member(&t.app, &member, "127.0.0.1")
            .await
            .expect("expenses")
            .is_empty(),
        "nothing stored"
    );

    // The list of recent jobs and the audit log.
    let list = b.get("/console/imports").await;
    assert!(list.has("bad.zip") && list.has("133033_20240620.zip"));
    let audit = b.get("/console/audit").await;
    assert!(audit.has("import.checkups"), "{}", audit.html);
    t.stop().await;
}
