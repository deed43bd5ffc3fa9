//! 医療費通知 CSV files: the items of the 医療費控除, months, amounts and categories, and what
//! refuses the file.

use records::expenses::{parse, Category, ExpenseRow};
use records::health_csv::{CsvError, Encoding, Limits, YearMonth};
use time::macros::date;

const HEADER_JA: &str =
    "保険者番号,記号,番号,枝番,生年月日,診療年月,受診者,医療機関等名称,区分,日数,医療費の総額,窓口負担額";

fn file(header: &str, rows: &[&str]) -> String {
    let mut lines = vec![header];
    lines.extend_from_slice(rows);
    lines.join("\n") + "\n"
}

fn ok(text: &str) -> Vec<(u64, ExpenseRow)> {
    parse(text.as_bytes(), Encoding::Auto, &Limits::default()).expect("parses")
}

fn problems(text: &str) -> Vec<(u64, String)> {
    match parse(text.as_bytes(), Encoding::Auto, &Limits::default()) {
        Err(CsvError::Lines(errors)) => errors.into_iter().map(|e| (e.line, e.reason)).collect(),
        other => panic!("expected line errors, got {other:?}"),
    }
}

#[test]
fn the_items_of_the_deduction() {
    let text = file(
        HEADER_JA,
        &[
            "133033,1234,5678,,1990-04-01,2025-04,ヤマダ ハナコ,みらいクリニック,外来,2,\"12,340\",3700",
            "133033,1234,5678,,1990-04-01,202505,ヤマダ ハナコ,みらい薬局,調剤,,4560,1370",
            "133033,1234,5678,,1990-04-01,2025年6月,ヤマダ ハナコ,みらい総合病院,入院,12,\"1,234,560\",\"80,100\"",
        ],
    );
    let rows = ok(&text);
    assert_eq!(rows.iter().map(|(l, _)| *l).collect::<Vec<_>>(), [2, 3, 4]);
    let r = &rows[0].1;
    assert_eq!(r.examinee.birth_date, date!(1990 - 04 - 01));
    assert_eq!((r.month, r.month.to_string().as_str()), (YearMonth::new(2025, 4).expect("month"), "2025-04"));
    assert_eq!((r.patient.as_str(), r.facility.as_str()), ("ヤマダ ハナコ", "みらいクリニック"));
    assert_eq!((r.category, r.days, r.total_cost, r.paid), (Some(Category::Outpatient), Some(2), 12_340, 3_700));
    assert_eq!((rows[1].1.category, rows[1].1.days), (Some(Category::Pharmacy), None));
    assert_eq!(
        (rows[2].1.month.first_day(), rows[2].1.total_cost, rows[2].1.paid),
        (date!(2025 - 06 - 01), 1_234_560, 80_100)
    );
    assert_eq!(rows[2].1.category.map(Category::name_ja), Some("入院"));

    let json = serde_json::to_string(&rows[0].1).expect("json");
    assert!(json.contains("\"month\":\"2025-04\"") && json.contains("\"category\":\"outpatient\""), "{json}");
    assert_eq!(serde_json::from_str::<ExpenseRow>(&json).expect("back"), rows[0].1);
}

#[test]
fn english_names_shift_jis_and_optional_columns() {
    let text = file(
        "insurer_number,number,birth_date,month,patient,facility,total_cost,paid",
        &["133033,5678,19900401,2025/4,ヤマダ ハナコ,ﾐﾗｲ歯科,5000,1500"],
    );
    let (sjis, _, _) = encoding_rs::SHIFT_JIS.encode(&text);
    let rows = parse(&sjis, Encoding::Auto, &Limits::default()).expect("parses");
    let r = &rows[0].1;
    assert_eq!((r.facility.as_str(), r.category, r.days, r.paid), ("ﾐﾗｲ歯科", None, None, 1500));
    // Aliases.
    let text = file(
        "保険者番号,番号,生年月日,受診年月,受診者名,医療機関名,診療区分,診療日数,医療費総額,自己負担額",
        &["133033,5678,1990-04-01,2025-04,ヤマダ ハナコ,A,dental,1,100,30"],
    );
    assert_eq!(ok(&text)[0].1.category, Some(Category::Dental));
}

#[test]
fn bad_rows_are_listed_without_their_values() {
    let text = file(
        HEADER_JA,
        &[
            "133033,1234,5678,,1990-04-01,2025-13,ヤマダ ハナコ,A,外来,2,1000,300",
            "133033,1234,5678,,1990-04-01,2025-04,,A,外来,32,1000,300",
            "133033,1234,5678,,1990-04-01,2025-04,ヤマダ ハナコ,A,美容,2,\"12,34\",300",
            "133033,1234,5678,,1990-04-01,2025-04,ヤマダ ハナコ,A,外来,2,1000,1001",
            "133033,1234,5678,,1990-04-01,2025-04,ヤマダ ハナコ,A,外来,2,-5,",
        ],
    );
    assert_eq!(
        problems(&text),
        [
            (2, "診療年月 (month) is not a year and month (YYYY-MM, YYYY/MM or YYYYMM)".to_string()),
            (3, "受診者 (patient) is missing".to_string()),
            (3, "日数 (days) is not a whole number from 0 to 31".to_string()),
            (4, "区分 (category) is not one of 入院, 外来, 歯科, 調剤, 訪問看護".to_string()),
            (
                4,
                "医療費の総額 (total_cost) is not an amount in yen (digits, optionally with thousands commas)"
                    .to_string()
            ),
            (5, "窓口負担額 (paid) is larger than 医療費の総額 (total_cost)".to_string()),
            (
                6,
                "医療費の総額 (total_cost) is not an amount in yen (digits, optionally with thousands commas)"
                    .to_string()
            ),
            (6, "窓口負担額 (paid) is missing".to_string()),
        ]
    );
    let errors = problems(&file(
        "保険者番号,番号,生年月日,診療年月,受診者,医療機関等名称,医療費の総額",
        &["133033,5678,1990-04-01,2025-04,x,y,1"],
    ));
    assert_eq!(errors, [(1, "missing column 窓口負担額 (paid)".to_string())]);
}

#[test]
fn content_keys() {
    let a = &ok(&file(
        HEADER_JA,
        &["133033,1234,5678,,1990-04-01,2025-04,ヤマダ ハナコ,みらいクリニック,外来,2,\"12,340\",3700"],
    ))[0]
        .1;
    let b = &ok(&file(
        HEADER_JA,
        &["133033,1234,5678,,1990-04-01,202504,ﾔﾏﾀﾞ ﾊﾅｺ,みらいクリニック,入院外,2,12340,\"3,700\""],
    ))[0]
        .1;
    assert_eq!(a.content_key(), b.content_key(), "same notice row written differently");
    let mut c = a.clone();
    c.paid = 3_701;
    assert_ne!(a.content_key(), c.content_key());
}
