//! お薬履歴 and 医療費通知 imports (F5): CSV files built here (UTF-8 and Shift_JIS), imported for
//! the demo roster (ヤマダ ハナコ, 133033, 記号 1234, 番号 5678, 1990-04-01; サトウ タロウ,
//! 5679, 枝番 01, 1985-12-24) on SQLite and PostgreSQL; and `mimoto medication import` /
//! `mimoto expenses import` as an operator runs them.

use crate::common::{Backend, Opts, TestApp, PASSWORD};
use app::error::ServiceError;
use app::services::auth::{authenticate, Member};
use app::services::health_imports::{self, ImportStats};
use records::expenses::{Category, ExpenseRow};
use records::health_csv::{Encoding, YearMonth};
use records::testing::{csv, shift_jis, EXPENSE_HEADER, EXPENSE_ROWS, MEDICATION_HEADER, MEDICATION_ROWS};
use store::HealthKind;
use time::macros::date;

fn utf8_bom(text: &str) -> Vec<u8> {
    [b"\xEF\xBB\xBF".as_slice(), text.as_bytes()].concat()
}

/// F3 over the API: the member is linked to ヤマダ ハナコ's record.
async fn hanako(t: &TestApp) -> Member {
    let token = t.register("hanako@example.com", PASSWORD).await;
    t.verify_identity(&token).await;
    authenticate(&t.app, &token).await.expect("auth").expect("member")
}

async fn import_medications(t: &TestApp, bytes: Vec<u8>) -> Result<ImportStats, ServiceError> {
    health_imports::import_medications(&t.app, "133033", "medication-2025.csv", bytes, &mut ()).await
}

async fn import_expenses(t: &TestApp, bytes: Vec<u8>) -> Result<ImportStats, ServiceError> {
    health_imports::import_expenses(&t.app, "133033", "expenses-2025.csv", bytes, &mut ()).await
}

fn line_errors(result: Result<ImportStats, ServiceError>) -> Vec<(u64, String)> {
    match result {
        Err(ServiceError::HealthEntries(errors)) => errors.into_iter().map(|e| (e.line, e.reason)).collect(),
        other => panic!("expected per-line errors, got {other:?}"),
    }
}

fn contains(haystack: &[u8], needle: &str) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle.as_bytes())
}

/// Every byte of the SQLite database files (main file and write-ahead log).
fn sqlite_bytes(t: &TestApp) -> Vec<u8> {
    let mut all = Vec::new();
    for entry in std::fs::read_dir(&t.app.config.data_dir).expect("data dir").flatten() {
        if entry.file_name().to_string_lossy().starts_with("test.db") {
            all.extend(std::fs::read(entry.path()).expect("read db file"));
        }
    }
    all
}

async fn medications_are_sealed_readable_by_the_member_and_never_duplicated(t: TestApp) {
    let member = hanako(&t).await;
    assert!(health_imports::medications_for_member(&t.app, &member, "127.0.0.1").await.expect("read").is_empty());

    // Progress is reported up to the total.
    struct Seen(Vec<(u64, u64)>);
    impl app::services::roster::Progress for Seen {
        fn written(&mut self, done: u64, total: u64) {
            self.0.push((done, total));
        }
    }
    let mut progress = Seen(Vec::new());
    let file = utf8_bom(&csv(MEDICATION_HEADER, &MEDICATION_ROWS));
    let stats =
        health_imports::import_medications(&t.app, "133033", "medication-2025.csv", file.clone(), &mut progress)
            .await
            .expect("import");
    assert_eq!(stats, ImportStats { rows: 4, inserted: 4, existing: 0 });
    assert_eq!(progress.0.first(), Some(&(0, 4)));
    assert_eq!(progress.0.last(), Some(&(4, 4)));

    // The member reads her three rows, newest first; サトウ タロウ's row is not hers.
    let rows = health_imports::medications_for_member(&t.app, &member, "127.0.0.1").await.expect("read");
    let dates: Vec<_> = rows.iter().map(|r| r.dispensed_on).collect();
    assert_eq!(dates, [date!(2025 - 05 - 20), date!(2025 - 04 - 01), date!(2025 - 03 - 01)]);
    let april = &rows[1];
    assert_eq!(
        (
            april.pharmacy.as_str(),
            april.prescriber.as_str(),
            april.doctor.as_deref(),
            april.drug.as_str(),
            april.dose.as_str(),
            april.days
        ),
        (
            "みらい薬局 本町店",
            "みらいクリニック",
            Some("山田 一郎"),
            "ロキソプロフェンNa錠60mg",
            "1回1錠 1日3回 毎食後",
            7
        )
    );
    assert_eq!(rows[0].dose, "1回1錠, 1日1回 朝食後");
    assert!(rows.iter().all(|r| r.drug != "モーラステープ20mg"));
    // Medication rows are not expense rows.
    assert!(health_imports::expenses_for_member(&t.app, &member, "127.0.0.1").await.expect("read").is_empty());

    // Stored sealed: neither the stored values nor the database files hold the drug names.
    let link = t.app.store.roster_link_of_user(&member.user.id).await.expect("link").expect("linked");
    let stored =
        t.app.store.health_entries_of_record(&link.org_id, &link.record, HealthKind::Medication).await.expect("stored");
    assert_eq!(
        stored.iter().map(|e| e.occurred_on.as_str()).collect::<Vec<_>>(),
        ["2025-05-20", "2025-04-01", "2025-03-01"]
    );
    for e in &stored {
        for needle in ["ロキソプロフェン", "アムロジピン", "みらい薬局", "山田 一郎", "1990-04-01", "\"days\""]
        {
            assert!(!contains(&e.data_enc, needle), "{needle} stored in clear");
        }
    }
    if t.app.store.backend() == "sqlite" {
        let raw = sqlite_bytes(&t);
        assert!(contains(&raw, "medication-2025.csv"), "the scan finds what is stored in clear (the file name)");
        for needle in ["ロキソプロフェン", "アムロジピン", "モーラステープ", "みらい薬局", "さくら内科"]
        {
            assert!(!contains(&raw, needle), "{needle} in the database file");
        }
    }

    // Re-importing duplicates nothing, in either encoding and however the cells are spaced
    // or which width they use; a new row is added.
    let again = import_medications(&t, file).await.expect("re-import");
    assert_eq!(again, ImportStats { rows: 4, inserted: 0, existing: 4 });
    let respelled = MEDICATION_ROWS[0]
        .replace("みらい薬局 本町店", "みらい薬局　本町店")
        .replace("60mg", "６０ｍｇ")
        .replace(",7", ",７");
    let new_row = "133033,1234,5678,,1990-04-01,2025-06-03,みらい薬局 本町店,みらいクリニック,,ロキソプロフェンNa錠60mg,1回1錠 1日3回 毎食後,7";
    let later = shift_jis(&csv(MEDICATION_HEADER, &[&respelled, MEDICATION_ROWS[1], new_row]));
    assert_eq!(
        import_medications(&t, later).await.expect("later file"),
        ImportStats { rows: 3, inserted: 1, existing: 2 }
    );
    let rows = health_imports::medications_for_member(&t.app, &member, "127.0.0.1").await.expect("read");
    assert_eq!(rows.len(), 4);
    assert_eq!(rows[0].dispensed_on, date!(2025 - 06 - 03));

    // Someone without 本人確認 sees nothing.
    let token = t.register("other@example.com", PASSWORD).await;
    let other = authenticate(&t.app, &token).await.expect("auth").expect("member");
    assert!(health_imports::medications_for_member(&t.app, &other, "127.0.0.1").await.expect("read").is_empty());
    t.stop().await;
}

async fn expenses_are_imported_from_shift_jis_and_read_newest_month_first(t: TestApp) {
    let member = hanako(&t).await;
    let file = shift_jis(&csv(EXPENSE_HEADER, &EXPENSE_ROWS));
    assert_eq!(
        import_expenses(&t, file.clone()).await.expect("import"),
        ImportStats { rows: 3, inserted: 3, existing: 0 }
    );

    let rows: Vec<ExpenseRow> = health_imports::expenses_for_member(&t.app, &member, "127.0.0.1").await.expect("read");
    let summary: Vec<_> =
        rows.iter().map(|r| (r.month.to_string(), r.facility.as_str(), r.total_cost, r.paid)).collect();
    assert_eq!(
        summary,
        [
            ("2025-05".to_string(), "みらい総合病院", 456_780, 57_600),
            ("2025-04".to_string(), "みらいクリニック", 12_340, 3_700),
            ("2025-04".to_string(), "みらい薬局 本町店", 4_560, 1_370),
        ]
    );
    assert_eq!(
        (rows[0].patient.as_str(), rows[0].category, rows[0].days),
        ("ヤマダ ハナコ", Some(Category::Inpatient), Some(6))
    );
    assert_eq!(rows[1].month, YearMonth::new(2025, 4).expect("month"));
    assert!(
        health_imports::medications_for_member(&t.app, &member, "127.0.0.1").await.expect("read").is_empty(),
        "kinds are apart"
    );

    let link = t.app.store.roster_link_of_user(&member.user.id).await.expect("link").expect("linked");
    let stored =
        t.app.store.health_entries_of_record(&link.org_id, &link.record, HealthKind::Expense).await.expect("stored");
    assert_eq!(
        stored.iter().map(|e| e.occurred_on.as_str()).collect::<Vec<_>>(),
        ["2025-05-01", "2025-04-01", "2025-04-01"]
    );
    for e in &stored {
        for needle in ["ヤマダ", "みらい", "12340", "57600", "inpatient"] {
            assert!(!contains(&e.data_enc, needle), "{needle} stored in clear");
        }
    }

    // The same file again, now in UTF-8 with English headers: nothing new.
    let english = "insurer_number,symbol,number,branch,birth_date,month,patient,facility,category,days,total_cost,paid";
    assert_eq!(
        import_expenses(&t, csv(english, &EXPENSE_ROWS).into_bytes()).await.expect("re-import"),
        ImportStats { rows: 3, inserted: 0, existing: 3 }
    );
    assert_eq!(health_imports::expenses_for_member(&t.app, &member, "127.0.0.1").await.expect("read").len(), 3);
    // The generic entry point with an explicit encoding.
    let refused =
        health_imports::import_file::<ExpenseRow>(&t.app, "133033", "x.csv", file, Encoding::Utf8, &mut ()).await;
    assert!(matches!(refused, Err(ServiceError::HealthCsv(ref reason)) if reason.contains("UTF-8")), "{refused:?}");
    t.stop().await;
}

async fn any_bad_row_refuses_the_whole_file(t: TestApp) {
    let member = hanako(&t).await;
    let good = MEDICATION_ROWS[0];
    let file = csv(
        MEDICATION_HEADER,
        &[
            good,
            // 3: an impossible date.
            "133033,1234,5678,,1990-04-01,2025-02-30,みらい薬局,みらいクリニック,,ムコダイン錠500mg,1回1錠,5",
            // 4: nobody on the roster has this card.
            "133033,1234,9999,,1990-04-01,2025-04-01,みらい薬局,みらいクリニック,,ムコダイン錠500mg,1回1錠,5",
            // 5: ヤマダ ハナコ's card with another birth date.
            "133033,1234,5678,,1990-04-02,2025-04-01,みらい薬局,みらいクリニック,,ムコダイン錠500mg,1回1錠,5",
            // 6: another insurer's number.
            "06132013,1234,5678,,1990-04-01,2025-04-01,みらい薬局,みらいクリニック,,ムコダイン錠500mg,1回1錠,5",
            // 7: line 2 again.
            good,
            // 8: no drug, no days.
            "133033,1234,5678,,1990-04-01,2025-04-01,みらい薬局,みらいクリニック,,,1回1錠,",
            // 9: サトウ タロウ's card with another branch number.
            "133033,1234,5679,02,1985-12-24,2025-04-02,みらい薬局,みらい整形外科,,モーラステープ20mg,1日1回,14",
        ],
    );
    let errors = line_errors(import_medications(&t, file.into_bytes()).await);
    assert_eq!(errors.iter().map(|(l, _)| *l).collect::<Vec<_>>(), [3, 4, 5, 6, 7, 8, 8, 9], "{errors:?}");
    assert!(errors[0].1.contains("調剤年月日 (dispensed_on) is not a date"), "{errors:?}");
    assert!(errors[1].1.contains("no roster record matches"), "{errors:?}");
    assert!(errors[2].1.contains("no roster record matches"), "{errors:?}");
    assert_eq!(errors[3].1, "insurer number (保険者番号) is not the organization's 133033");
    assert_eq!(errors[4].1, "same member and content as line 2");
    assert!(
        errors[5].1.contains("医薬品名 (drug) is missing") && errors[6].1.contains("日数 (days) is missing"),
        "{errors:?}"
    );
    for (_, reason) in &errors {
        for personal in ["9999", "1990", "06132013", "5678", "ムコダイン", "2025-02-30"] {
            assert!(!reason.contains(personal), "personal data in {reason}");
        }
    }
    assert!(
        health_imports::medications_for_member(&t.app, &member, "127.0.0.1").await.expect("read").is_empty(),
        "nothing stored, not even the good rows"
    );
    let link = t.app.store.roster_link_of_user(&member.user.id).await.expect("link").expect("linked");
    assert!(t
        .app
        .store
        .health_entries_of_record(&link.org_id, &link.record, HealthKind::Medication)
        .await
        .expect("stored")
        .is_empty());

    // Expenses: an unmatched examinee and an amount that is not one.
    let file = csv(
        EXPENSE_HEADER,
        &[
            EXPENSE_ROWS[0],
            "133033,1234,5678,,1991-04-01,2025-04,ヤマダ ハナコ,A,外来,1,1000,300",
            "133033,1234,5678,,1990-04-01,2025-04,ヤマダ ハナコ,B,外来,1,千円,300",
        ],
    );
    let errors = line_errors(import_expenses(&t, file.into_bytes()).await);
    assert_eq!(errors.iter().map(|(l, _)| *l).collect::<Vec<_>>(), [3, 4], "{errors:?}");
    assert!(health_imports::expenses_for_member(&t.app, &member, "127.0.0.1").await.expect("read").is_empty());

    // The file as a whole: header problems, nothing in it, not a known organization.
    let errors =
        line_errors(import_medications(&t, csv("保険者番号,番号,生年月日,医薬品名", &[good]).into_bytes()).await);
    assert!(
        errors.iter().all(|(l, _)| *l == 1) && errors.iter().any(|(_, r)| r.contains("missing column 調剤年月日")),
        "{errors:?}"
    );
    assert!(matches!(import_medications(&t, Vec::new()).await, Err(ServiceError::HealthCsv(_))));
    assert!(matches!(
        import_medications(&t, csv(MEDICATION_HEADER, &[]).into_bytes()).await,
        Err(ServiceError::HealthCsv(_))
    ));
    assert!(matches!(
        health_imports::import_medications(
            &t.app,
            "33120015",
            "x.csv",
            csv(MEDICATION_HEADER, &[good]).into_bytes(),
            &mut ()
        )
        .await,
        Err(ServiceError::UnknownOrganization)
    ));
    // The same rows without the bad ones import.
    assert_eq!(import_medications(&t, csv(MEDICATION_HEADER, &[good]).into_bytes()).await.expect("import").inserted, 1);
    t.stop().await;
}

on_both_backends!(
    medications_are_sealed_readable_by_the_member_and_never_duplicated,
    expenses_are_imported_from_shift_jis_and_read_newest_month_first,
    any_bad_row_refuses_the_whole_file,
);
