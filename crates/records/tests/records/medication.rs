//! お薬履歴 CSV files: what is read, in which encodings and header spellings, and what refuses
//! the file (with every problem by line, never a value).

use records::health_csv::{CsvError, Encoding, Limits};
use records::medication::{parse, MedicationRow};
use time::macros::date;

const HEADER_JA: &str = "保険者番号,記号,番号,枝番,生年月日,調剤年月日,薬局名,処方医療機関,処方医,医薬品名,用量,日数";

fn file(header: &str, rows: &[&str], newline: &str) -> String {
    let mut lines = vec![header];
    lines.extend_from_slice(rows);
    lines.join(newline) + newline
}

fn ok(text: &str) -> Vec<(u64, MedicationRow)> {
    parse(text.as_bytes(), Encoding::Auto, &Limits::default()).expect("parses")
}

fn problems(result: Result<Vec<(u64, MedicationRow)>, CsvError>) -> Vec<(u64, String)> {
    match result {
        Err(CsvError::Lines(errors)) => errors.into_iter().map(|e| (e.line, e.reason)).collect(),
        other => panic!("expected line errors, got {other:?}"),
    }
}

const HANAKO_1: &str = "133033,1234,5678,,1990-04-01,2025-04-01,みらい薬局 本町店,みらいクリニック,山田 一郎,ロキソプロフェンNa錠60mg,1回1錠 1日3回 毎食後,7";
const HANAKO_2: &str = "133033,1234,5678,,1990/04/01,20250415,みらい薬局 本町店,みらいクリニック,,\"アムロジピン錠5mg「サワイ」\",\"1回1錠, 1日1回 朝食後\",30";

#[test]
fn japanese_header_with_bom_and_crlf() {
    let text = format!("\u{feff}{}", file(HEADER_JA, &[HANAKO_1, HANAKO_2], "\r\n"));
    let rows = ok(&text);
    assert_eq!(rows.iter().map(|(l, _)| *l).collect::<Vec<_>>(), [2, 3]);
    let first = &rows[0].1;
    assert_eq!(first.examinee.insurer_number, "133033");
    assert_eq!(first.examinee.symbol.as_deref(), Some("1234"));
    assert_eq!(first.examinee.number, "5678");
    assert_eq!(first.examinee.branch, None);
    assert_eq!(first.examinee.birth_date, date!(1990 - 04 - 01));
    assert_eq!(first.dispensed_on, date!(2025 - 04 - 01));
    assert_eq!(first.pharmacy, "みらい薬局 本町店");
    assert_eq!(first.prescriber, "みらいクリニック");
    assert_eq!(first.doctor.as_deref(), Some("山田 一郎"));
    assert_eq!(first.drug, "ロキソプロフェンNa錠60mg");
    assert_eq!(first.dose, "1回1錠 1日3回 毎食後");
    assert_eq!(first.days, 7);
    let second = &rows[1].1;
    assert_eq!((second.dispensed_on, second.doctor.as_deref()), (date!(2025 - 04 - 15), None));
    assert_eq!(second.drug, "アムロジピン錠5mg「サワイ」");
    assert_eq!(second.dose, "1回1錠, 1日1回 朝食後", "quoted commas are kept");
}

#[test]
fn english_header_in_another_order_without_optional_columns() {
    let text = file(
        "days,drug,dose,prescriber,pharmacy,dispensed_on,birth_date,number,insurer_number",
        &["14,Metformin 250mg,1 tablet twice a day,Mirai Clinic,Mirai Pharmacy,2025-05-02,1985-12-24,5679,133033"],
        "\n",
    );
    let rows = ok(&text);
    let row = &rows[0].1;
    assert_eq!((row.days, row.drug.as_str(), row.pharmacy.as_str()), (14, "Metformin 250mg", "Mirai Pharmacy"));
    assert_eq!(
        (row.examinee.symbol.as_deref(), row.examinee.branch.as_deref(), row.doctor.as_deref()),
        (None, None, None)
    );
    // Aliases, other spellings of the English names.
    let text = file(
        "保険者番号,被保険者証等記号,被保険者証等番号,枝番,生年月日,調剤日,調剤薬局名,処方医療機関名,医薬品名,用法・用量,投与日数",
        &["00133033,１２３４,５６７８,01,19900401,2025年4月1日,薬局,医院,薬,1錠,７"],
        "\n",
    );
    let row = &ok(&text)[0].1;
    assert_eq!(
        (row.examinee.symbol.as_deref(), row.examinee.branch.as_deref()),
        (Some("１２３４"), Some("01")),
        "kept as written"
    );
    assert_eq!((row.dispensed_on, row.days), (date!(2025 - 04 - 01), 7));
    assert_eq!(
        ok(&file(
            "Insurer-Number,NUMBER,Birth Date,dispensed_on,pharmacy,prescriber,drug,dose,days",
            &["133033,5678,1990-04-01,2025-04-01,p,c,d,x,1"],
            "\n"
        ))
        .len(),
        1
    );
}

#[test]
fn shift_jis_files_are_read() {
    let text = file(
        HEADER_JA,
        &[HANAKO_1, "133033,1234,5678,,1990-04-01,2025-04-02,ﾐﾗｲ薬局,㈱みらい病院,髙橋 ①,ﾛｷｿﾌﾟﾛﾌｪﾝ,1錠,3"],
        "\r\n",
    );
    let (sjis, _, unmappable) = encoding_rs::SHIFT_JIS.encode(&text);
    assert!(!unmappable);
    for encoding in [Encoding::Auto, Encoding::ShiftJis] {
        let rows = parse(&sjis, encoding, &Limits::default()).expect("parses");
        assert_eq!(rows[0].1.drug, "ロキソプロフェンNa錠60mg");
        assert_eq!((rows[1].1.pharmacy.as_str(), rows[1].1.prescriber.as_str()), ("ﾐﾗｲ薬局", "㈱みらい病院"));
        assert_eq!(rows[1].1.doctor.as_deref(), Some("髙橋 ①"), "CP932 extensions");
    }
    assert_eq!(parse(&sjis, Encoding::Utf8, &Limits::default()), Err(CsvError::Encoding("UTF-8")));
    assert_eq!(Encoding::parse("CP932"), Some(Encoding::ShiftJis));
    assert_eq!(Encoding::parse("utf-8"), Some(Encoding::Utf8));
}

#[test]
fn every_bad_row_is_listed_by_line_and_nothing_is_returned() {
    let text = file(
        HEADER_JA,
        &[
            HANAKO_1,
            // 3: an impossible date and no drug.
            "133033,1234,5678,,1990-04-01,2025-02-30,薬局,医院,,,1錠,7",
            // 4: days not a number; birth date missing.
            "133033,1234,5678,,,2025-04-01,薬局,医院,,薬,1錠,七日",
            // 5: a quoted cell over two lines (a line break in a name is refused)...
            "133033,1234,5678,,1990-04-01,2025-04-01,\"薬局\n二行目\",医院,,薬,1錠,7",
            // 7: ...so this row is on line 7; zero days.
            "133033,1234,5678,,1990-04-01,2025-04-01,薬局,医院,,薬,1錠,0",
            // 8: a field short.
            "133033,1234,5678,,1990-04-01,2025-04-01,薬局,医院,,薬,1錠",
            "",
            // 10: a blank line is skipped, this one is fine.
            HANAKO_2,
        ],
        "\n",
    );
    let errors = problems(parse(text.as_bytes(), Encoding::Auto, &Limits::default()));
    assert_eq!(
        errors,
        [
            (3, "調剤年月日 (dispensed_on) is not a date (YYYY-MM-DD, YYYY/MM/DD or YYYYMMDD)".to_string()),
            (3, "医薬品名 (drug) is missing".to_string()),
            (4, "生年月日 (birth_date) is missing".to_string()),
            (4, "日数 (days) is not a whole number from 1 to 999".to_string()),
            (5, "薬局名 (pharmacy) contains control characters (line breaks, tabs)".to_string()),
            (7, "日数 (days) is not a whole number from 1 to 999".to_string()),
            (8, "expected 12 fields like the header, found 11".to_string()),
        ]
    );
    for (_, reason) in &errors {
        for value in ["2025-02-30", "七日", "二行目", "5678", "1990"] {
            assert!(!reason.contains(value), "value in {reason}");
        }
    }
}

#[test]
fn the_header_row_is_checked() {
    let row = [HANAKO_1];
    let errors = problems(parse(
        file("保険者番号,記号,番号,生年月日,調剤年月日,薬局名,医薬品名,用量,日数,メモ", &row, "\n").as_bytes(),
        Encoding::Auto,
        &Limits::default(),
    ));
    assert_eq!(
        errors,
        [(1, "column 10 has an unknown name".to_string()), (1, "missing column 処方医療機関 (prescriber)".to_string())]
    );
    let errors = problems(parse(
        file("保険者番号,番号,number,生年月日,調剤年月日,薬局名,処方医療機関,医薬品名,用量,日数", &row, "\n")
            .as_bytes(),
        Encoding::Auto,
        &Limits::default(),
    ));
    assert_eq!(errors, [(1, "column 番号 (number) appears twice".to_string())]);
    // No header, only data: the first row is taken for the header and refused, without
    // repeating its cells.
    let errors = problems(parse(file(HANAKO_1, &[HANAKO_2], "\n").as_bytes(), Encoding::Auto, &Limits::default()));
    assert_eq!(errors, [(1, "no known column name: the first row must be the header row".to_string())]);
    assert_eq!(parse(b"", Encoding::Auto, &Limits::default()), Err(CsvError::Empty));
    assert_eq!(parse(b"\xEF\xBB\xBF\r\n", Encoding::Auto, &Limits::default()), Err(CsvError::Empty));
    assert_eq!(
        parse(format!("{HEADER_JA}\n,,,,,,,,,,,\n").as_bytes(), Encoding::Auto, &Limits::default()),
        Err(CsvError::NoRows)
    );
}

#[test]
fn caps() {
    let text = file(HEADER_JA, &[HANAKO_1, HANAKO_2, HANAKO_1], "\n");
    let limits = Limits { max_rows: 2, ..Limits::default() };
    assert_eq!(parse(text.as_bytes(), Encoding::Auto, &limits), Err(CsvError::TooManyRows { limit: 2 }));
    let limits = Limits { max_bytes: 100, ..Limits::default() };
    assert_eq!(parse(text.as_bytes(), Encoding::Auto, &limits), Err(CsvError::TooLarge { limit: 100 }));
    let long = format!("133033,1234,5678,,1990-04-01,2025-04-01,{},医院,,薬,1錠,7", "薬".repeat(501));
    let errors = problems(parse(file(HEADER_JA, &[&long], "\n").as_bytes(), Encoding::Auto, &Limits::default()));
    assert_eq!(errors, [(2, "薬局名 (pharmacy) is longer than 500 characters".to_string())]);
    // Many bad rows: the list is capped.
    let bad: Vec<&str> = std::iter::repeat_n("133033,1234,5678,,x,2025-04-01,薬局,医院,,薬,1錠,7", 50).collect();
    let limits = Limits { max_errors: 10, ..Limits::default() };
    assert_eq!(problems(parse(file(HEADER_JA, &bad, "\n").as_bytes(), Encoding::Auto, &limits)).len(), 10);
}

#[test]
fn content_keys_ignore_width_and_spacing_but_not_content() {
    let a = &ok(&file(HEADER_JA, &[HANAKO_1], "\n"))[0].1;
    let wide = "133033,1234,5678,,1990-04-01,2025/4/1,みらい薬局　 本町店,みらいクリニック,山田  一郎,ロキソプロフェンＮａ錠６０ｍｇ,1回1錠 1日3回 毎食後,７";
    let b = &ok(&file(HEADER_JA, &[wide], "\n"))[0].1;
    assert_ne!(a, b);
    assert_eq!(a.content_key(), b.content_key());
    let mut c = a.clone();
    c.days = 14;
    assert_ne!(a.content_key(), c.content_key());
    let mut d = a.clone();
    d.examinee.number = "9999".into();
    assert_eq!(a.content_key(), d.content_key(), "the examinee is not content");
}

#[test]
fn rows_round_trip_through_json() {
    let rows = ok(&file(HEADER_JA, &[HANAKO_1, HANAKO_2], "\n"));
    for (_, row) in rows {
        let json = serde_json::to_string(&row).expect("json");
        assert!(json.contains("\"dispensed_on\":\"2025-04-"), "{json}");
        assert_eq!(serde_json::from_str::<MedicationRow>(&json).expect("back"), row);
    }
}

#[test]
fn parse_all_keeps_the_good_rows_next_to_the_problems() {
    let text =
        file(HEADER_JA, &[HANAKO_1, "133033,1234,5678,,1990-04-01,2025-04-01,薬局,医院,,薬,1錠,0", HANAKO_2], "\n");
    let parsed =
        records::medication::parse_all(text.as_bytes(), Encoding::Auto, &Limits::default()).expect("file readable");
    assert_eq!(parsed.rows.iter().map(|(l, _)| *l).collect::<Vec<_>>(), [2, 4]);
    assert_eq!(parsed.errors.iter().map(|e| e.line).collect::<Vec<_>>(), [3]);
    assert!(matches!(parsed.into_result(), Err(CsvError::Lines(e)) if e.len() == 1));
}
