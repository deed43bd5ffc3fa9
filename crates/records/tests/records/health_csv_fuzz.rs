//! Property tests of the CSV parsers: arbitrary and mutated input never panics, and a refused
//! file never yields rows.

use proptest::prelude::*;
use records::health_csv::{CsvError, Encoding, Limits, LineError};
use records::{expenses, medication};

const MEDICATION: &str =
    "保険者番号,記号,番号,枝番,生年月日,調剤年月日,薬局名,処方医療機関,処方医,医薬品名,用量,日数\n\
133033,1234,5678,,1990-04-01,2025-04-01,みらい薬局,みらいクリニック,,ロキソプロフェン錠,\"1回1錠, 1日3回\",7\n";
const EXPENSES: &str =
    "保険者番号,記号,番号,枝番,生年月日,診療年月,受診者,医療機関等名称,区分,日数,医療費の総額,窓口負担額\n\
133033,1234,5678,,1990-04-01,2025-04,ヤマダ ハナコ,みらいクリニック,外来,2,\"12,340\",3700\n";

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn random_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..2048)) {
        for encoding in [Encoding::Auto, Encoding::Utf8, Encoding::ShiftJis] {
            let _ = medication::parse(&bytes, encoding, &Limits::default());
            let _ = expenses::parse(&bytes, encoding, &Limits::default());
        }
    }

    #[test]
    fn random_csv_like_text_never_panics(text in "[0-9,\"\n\r /\\-年月日円¥a-z薬局]{0,400}") {
        let with_header = format!("{}{text}", MEDICATION.lines().next().unwrap_or_default());
        let _ = medication::parse(with_header.as_bytes(), Encoding::Auto, &Limits::default());
        let with_header = format!("{}{text}", EXPENSES.lines().next().unwrap_or_default());
        let _ = expenses::parse(with_header.as_bytes(), Encoding::Auto, &Limits::default());
    }

    #[test]
    fn mutated_files_never_panic(edits in proptest::collection::vec((any::<usize>(), any::<u8>()), 1..8)) {
        for valid in [MEDICATION, EXPENSES] {
            let mut bytes = valid.as_bytes().to_vec();
            for (at, byte) in &edits {
                let len = bytes.len();
                bytes[at % len] = *byte;
            }
            let _ = medication::parse(&bytes, Encoding::Auto, &Limits::default());
            let _ = expenses::parse(&bytes, Encoding::Auto, &Limits::default());
        }
    }
}

#[test]
fn the_fixtures_are_valid() {
    assert_eq!(medication::parse(MEDICATION.as_bytes(), Encoding::Auto, &Limits::default()).map(|r| r.len()), Ok(1));
    assert_eq!(expenses::parse(EXPENSES.as_bytes(), Encoding::Auto, &Limits::default()).map(|r| r.len()), Ok(1));
}

#[test]
fn a_huge_header_lists_at_most_max_errors_problems() {
    // 400 KB of unknown column names next to the real ones: one problem per column would be
    // 200k strings (~10 MB from a 400 KB line, and 32 MiB files are accepted); at most
    // `max_errors` are listed.
    let text = |file: &str| format!("{}{}\n", file.lines().next().unwrap_or_default(), ",x".repeat(200_000));
    for (file, parse) in [(MEDICATION, medication_result as Parse), (EXPENSES, expenses_result)] {
        match parse(text(file).as_bytes(), &Limits::default()) {
            Err(CsvError::Lines(errors)) => {
                assert_eq!(errors.len(), Limits::default().max_errors);
                assert_eq!(errors[0], LineError { line: 1, reason: "column 13 has an unknown name".into() });
            }
            other => panic!("{other:?}"),
        }
    }
    let limits = Limits { max_errors: 3, ..Limits::default() };
    assert!(matches!(medication_result(text(MEDICATION).as_bytes(), &limits), Err(CsvError::Lines(e)) if e.len() == 3));
}

#[test]
fn one_enormous_field_a_million_columns_and_the_byte_cap() {
    // A 4 MiB cell: refused by the cell cap, its line named.
    let huge = "薬".repeat(4 * 1024 * 1024 / 3);
    let text = MEDICATION.replace("ロキソプロフェン錠", &huge);
    match medication_result(text.as_bytes(), &Limits::default()) {
        Err(CsvError::Lines(errors)) => {
            assert_eq!(errors, [LineError { line: 2, reason: "医薬品名 (drug) is longer than 500 characters".into() }])
        }
        other => panic!("{other:?}"),
    }
    // A data row of a million cells: one problem, the row is not read further.
    let text = format!("{}x{}\n", MEDICATION, ",".repeat(1_000_000));
    match medication_result(text.as_bytes(), &Limits::default()) {
        Err(CsvError::Lines(errors)) => {
            assert_eq!(
                errors,
                [LineError { line: 3, reason: "expected 12 fields like the header, found 1000001".into() }]
            )
        }
        other => panic!("{other:?}"),
    }
    // Whatever it holds, a file over the configured size is refused before it is decoded.
    let limits = Limits { max_bytes: 1024 * 1024, ..Limits::default() };
    let big = vec![b'\n'; 1024 * 1024 + 1];
    assert_eq!(medication_result(&big, &limits), Err(CsvError::TooLarge { limit: 1024 * 1024 }));
    assert_eq!(expenses_result(&big, &limits), Err(CsvError::TooLarge { limit: 1024 * 1024 }));
    // A file of nothing but line breaks under the cap: no header, refused.
    assert_eq!(medication_result(&big[1..], &limits), Err(CsvError::Empty));
}

type Parse = fn(&[u8], &Limits) -> Result<usize, CsvError>;

fn medication_result(bytes: &[u8], limits: &Limits) -> Result<usize, CsvError> {
    medication::parse(bytes, Encoding::Auto, limits).map(|rows| rows.len())
}

fn expenses_result(bytes: &[u8], limits: &Limits) -> Result<usize, CsvError> {
    expenses::parse(bytes, Encoding::Auto, limits).map(|rows| rows.len())
}
