//! Test support (feature `testing`, never in a release build): 特定健診 CDA documents and ZIP
//! deliveries shaped like the MHLW files, for ヤマダ ハナコ of the demo roster (133033, 記号 1234,
//! 番号 5678, 1990-04-01). Used by the integration tests of `web` and `cli`.

// Fixture builders for tests only: a panic here is a test failure with a message.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::{Cursor, Write};

use zip::write::SimpleFileOptions;
use zip::CompressionMethod;

const JLAC10: &str = "1.2.392.200119.6.1005";

pub fn pq(code: &str, display: &str, value: &str, unit: &str) -> String {
    format!(
        r#"<entry><observation classCode="OBS" moodCode="EVN">
  <code code="{code}" codeSystem="{JLAC10}" displayName="{display}"/>
  <value xsi:type="PQ" value="{value}" unit="{unit}"/>
</observation></entry>"#
    )
}

pub fn co(code: &str, display: &str, value_code: &str) -> String {
    format!(
        r#"<entry><observation classCode="OBS" moodCode="EVN">
  <code code="{code}" codeSystem="{JLAC10}" displayName="{display}"/>
  <value xsi:type="CO" code="{value_code}" codeSystem="1.2.392.200119.6.2102"/>
</observation></entry>"#
    )
}

/// One examinee's document, shaped like the MHLW files (after `crates/records/tests/common`).
#[derive(Clone)]
pub struct Doc {
    pub insurer: &'static str,
    pub symbol: Option<&'static str>,
    pub number: &'static str,
    pub branch: Option<&'static str>,
    pub birth: &'static str,
    pub examined: &'static str,
    pub entries: Vec<String>,
}

impl Doc {
    /// ヤマダ ハナコ as the files write her card: full-width digits.
    pub fn hanako(examined: &'static str, entries: Vec<String>) -> Self {
        Doc {
            insurer: "00133033",
            symbol: Some("１２３４"),
            number: "５６７８",
            branch: None,
            birth: "19900401",
            examined,
            entries,
        }
    }

    pub fn xml(&self) -> String {
        let symbol =
            self.symbol.map(|s| format!(r#"<id root="1.2.392.200119.6.204" extension="{s}"/>"#)).unwrap_or_default();
        let branch =
            self.branch.map(|s| format!(r#"<id root="1.2.392.200119.6.211" extension="{s}"/>"#)).unwrap_or_default();
        let entries = self.entries.join("\n");
        format!(
            r#"<?xml version="1.0" encoding="UTF-8"?>
<ClinicalDocument xmlns="urn:hl7-org:v3" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance">
  <typeId root="2.16.840.1.113883.1.3" extension="POCD_HD000040"/>
  <id root="1.2.392.200119.6.102.11311234567" extension="0000000001"/>
  <code code="10" codeSystem="1.2.392.200119.6.1001"/>
  <title>特定健診情報</title>
  <effectiveTime value="20240620"/>
  <recordTarget>
    <patientRole>
      <id root="1.2.392.200119.6.101" extension="{insurer}"/>
      {symbol}
      <id root="1.2.392.200119.6.205" extension="{number}"/>
      {branch}
      <patient>
        <name use="IDE">ヤマダ ハナコ</name>
        <administrativeGenderCode code="2" codeSystem="1.2.392.200119.6.1104"/>
        <birthTime value="{birth}"/>
      </patient>
    </patientRole>
  </recordTarget>
  <author>
    <time value="20240620"/>
    <assignedAuthor>
      <id nullFlavor="NI"/>
      <representedOrganization>
        <id root="1.2.392.200119.6.102" extension="1311234567"/>
        <name>みらい健診センター</name>
      </representedOrganization>
    </assignedAuthor>
  </author>
  <documentationOf>
    <serviceEvent classCode="PCPR">
      <effectiveTime value="{examined}"/>
    </serviceEvent>
  </documentationOf>
  <component>
    <structuredBody>
      <component>
        <section>
          <code code="01010" codeSystem="1.2.392.200119.6.1010"/>
{entries}
        </section>
      </component>
    </structuredBody>
  </component>
</ClinicalDocument>
"#,
            insurer = self.insurer,
            number = self.number,
            birth = self.birth,
            examined = self.examined,
        )
    }
}

pub fn items(hba1c: &str) -> Vec<String> {
    vec![
        pq("9N001000000000001", "身長", "158.2", "cm"),
        pq("9N006000000000001", "体重", "61.4", "kg"),
        pq("3D045000001927101", "ＨｂＡ１ｃ", hba1c, "%"),
        co("1A020000000191111", "尿糖", "1"),
        // Not in the JLAC10 table: kept, by its document name.
        pq("9Z999000000000001", "独自検査項目", "42", "U/L"),
    ]
}

pub const SETTLEMENT: &str = r#"<?xml version="1.0" encoding="UTF-8"?>
<checkupClaim xmlns="urn:hl7-org:v3"><settlement><serviceEventType code="1"/></settlement></checkupClaim>
"#;

pub const BILLION_LAUGHS: &str = r#"<?xml version="1.0"?>
<!DOCTYPE lolz [
 <!ENTITY lol "lol">
 <!ENTITY lol1 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
 <!ENTITY lol2 "&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;">
 <!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">
]>
<ClinicalDocument xmlns="urn:hl7-org:v3">&lol3;</ClinicalDocument>
"#;

pub fn zip(entries: &[(&str, &[u8])]) -> Vec<u8> {
    let mut writer = zip::ZipWriter::new(Cursor::new(Vec::new()));
    let options = SimpleFileOptions::default().compression_method(CompressionMethod::Deflated);
    for (name, bytes) in entries {
        writer.start_file(*name, options).expect("start file");
        writer.write_all(bytes).expect("write");
    }
    writer.finish().expect("finish").into_inner()
}

/// Two years of ヤマダ ハナコ's checkups and a settlement file, under a top-level folder.
pub fn hanako_zip() -> Vec<u8> {
    let y2023 = Doc::hanako("20230605", items("5.4")).xml();
    let y2024 = Doc::hanako("20240610", items("5.7")).xml();
    zip(&[
        ("133033_20240620/DATA/h1_2023.xml", y2023.as_bytes()),
        ("133033_20240620/DATA/h1_2024.xml", y2024.as_bytes()),
        ("133033_20240620/DATA/c1.xml", SETTLEMENT.as_bytes()),
    ])
}

// お薬履歴 and 医療費通知 CSV files (docs/health-csv.md) for the demo roster.

pub const MEDICATION_HEADER: &str =
    "保険者番号,記号,番号,枝番,生年月日,調剤年月日,薬局名,処方医療機関,処方医,医薬品名,用量,日数";
/// ヤマダ ハナコ's dispensings, in no particular order, and one of サトウ タロウ's.
pub const MEDICATION_ROWS: [&str; 4] = [
    "133033,1234,5678,,1990-04-01,2025-04-01,みらい薬局 本町店,みらいクリニック,山田 一郎,ロキソプロフェンNa錠60mg,1回1錠 1日3回 毎食後,7",
    "133033,1234,5678,,1990-04-01,2025/05/20,みらい薬局 本町店,みらいクリニック,,アムロジピン錠5mg,\"1回1錠, 1日1回 朝食後\",30",
    "00133033,12-34,5678,,19900401,20250301,さくら調剤薬局,さくら内科,,ムコダイン錠500mg,1回1錠 1日3回,5",
    "133033,1234,5679,01,1985-12-24,2025-04-02,みらい薬局 本町店,みらい整形外科,,モーラステープ20mg,1日1回,14",
];

pub const EXPENSE_HEADER: &str =
    "保険者番号,記号,番号,枝番,生年月日,診療年月,受診者,医療機関等名称,区分,日数,医療費の総額,窓口負担額";
pub const EXPENSE_ROWS: [&str; 3] = [
    "133033,1234,5678,,1990-04-01,2025-04,ヤマダ ハナコ,みらいクリニック,外来,2,\"12,340\",3700",
    "133033,1234,5678,,1990-04-01,2025-05,ヤマダ ハナコ,みらい総合病院,入院,6,\"456,780\",\"57,600\"",
    "133033,1234,5678,,1990-04-01,2025-04,ヤマダ ハナコ,みらい薬局 本町店,調剤,1,4560,1370",
];

/// A CSV file of `header` and `rows`, CRLF line ends.
pub fn csv(header: &str, rows: &[&str]) -> String {
    let mut lines = vec![header];
    lines.extend_from_slice(rows);
    lines.join("\r\n") + "\r\n"
}

/// `text` encoded as Shift_JIS (panics when it cannot be: test data only).
pub fn shift_jis(text: &str) -> Vec<u8> {
    let (bytes, _, unmappable) = encoding_rs::SHIFT_JIS.encode(text);
    assert!(!unmappable, "the test file is representable in Shift_JIS");
    bytes.into_owned()
}
