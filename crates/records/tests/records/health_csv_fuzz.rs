//! Property tests of the CSV parsers: arbitrary and mutated input never panics, and a refused
//! file never yields rows.

use proptest::prelude::*;
use records::health_csv::{Encoding, Limits};
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
