//! Builds 特定健診 CDA documents and ZIP archives shaped like the MHLW files, for the tests.
#![allow(dead_code)]

use std::io::{Cursor, Write};

use zip::write::SimpleFileOptions;
use zip::CompressionMethod;

pub const JLAC10: &str = "1.2.392.200119.6.1005";

/// A `PQ` observation.
pub fn pq(code: &str, display: &str, value: &str, unit: &str) -> String {
    format!(
        r#"<entry><observation classCode="OBS" moodCode="EVN">
  <code code="{code}" codeSystem="{JLAC10}" displayName="{display}"/>
  <value xsi:type="PQ" value="{value}" unit="{unit}"/>
</observation></entry>"#
    )
}

/// A `CO` observation with a qualitative result code (1: −, 2: ±, 3: +, ...).
pub fn co(code: &str, display: &str, value_code: &str) -> String {
    format!(
        r#"<entry><observation classCode="OBS" moodCode="EVN">
  <code code="{code}" codeSystem="{JLAC10}" displayName="{display}"/>
  <value xsi:type="CO" code="{value_code}" codeSystem="1.2.392.200119.6.2102"/>
</observation></entry>"#
    )
}

/// An `ST` observation.
pub fn st(code: &str, display: &str, text: &str) -> String {
    format!(
        r#"<entry><observation classCode="OBS" moodCode="EVN">
  <code code="{code}" codeSystem="{JLAC10}" displayName="{display}"/>
  <value xsi:type="ST">{text}</value>
</observation></entry>"#
    )
}

#[derive(Clone)]
pub struct Doc {
    pub report_kind: &'static str,
    pub insurer: &'static str,
    pub symbol: Option<&'static str>,
    pub number: &'static str,
    pub branch: Option<&'static str>,
    pub birth: &'static str,
    pub gender: &'static str,
    pub examined: &'static str,
    pub entries: Vec<String>,
}

impl Doc {
    pub fn new(entries: Vec<String>) -> Self {
        Self {
            report_kind: "10",
            insurer: "133033",
            symbol: Some("１２３４"),
            number: "５６７８",
            branch: None,
            birth: "19900401",
            gender: "2",
            examined: "20240610",
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
<?xml-stylesheet type="text/xsl" href="hc08.xsl"?>
<ClinicalDocument xmlns="urn:hl7-org:v3" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance"
    xsi:schemaLocation="urn:hl7-org:v3 ../XSD/hc08_V08.xsd">
  <typeId root="2.16.840.1.113883.1.3" extension="POCD_HD000040"/>
  <id root="1.2.392.200119.6.102.11311234567" extension="0000000001"/>
  <!-- 報告区分 -->
  <code code="{kind}" codeSystem="1.2.392.200119.6.1001"/>
  <title>特定健診情報</title>
  <effectiveTime value="20240620"/>
  <confidentialityCode code="N" codeSystem="2.16.840.1.113883.5.25"/>
  <recordTarget>
    <patientRole>
      <!-- 保険者番号 -->
      <id root="1.2.392.200119.6.101" extension="{insurer}"/>
      <!-- 被保険者証等記号・番号・枝番 -->
      {symbol}
      <id root="1.2.392.200119.6.205" extension="{number}"/>
      {branch}
      <addr><postalCode>100-0001</postalCode>東京都千代田区千代田１－１</addr>
      <patient>
        <name use="IDE">ヤマダ ハナコ</name>
        <administrativeGenderCode code="{gender}" codeSystem="1.2.392.200119.6.1104"/>
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
        <name>みらい健診センター &amp; クリニック</name>
        <addr><postalCode>100-0002</postalCode>東京都千代田区</addr>
      </representedOrganization>
    </assignedAuthor>
  </author>
  <custodian><assignedCustodian><representedCustodianOrganization>
    <id root="1.2.392.200119.6.102" extension="1311234567"/>
  </representedCustodianOrganization></assignedCustodian></custodian>
  <participant typeCode="HLD">
    <functionCode code="1" codeSystem="1.2.392.200119.6.208"/>
    <associatedEntity classCode="IDENT">
      <id root="1.2.392.200119.6.209.133033" extension="24000000001"/>
      <scopingOrganization><id root="1.2.392.200119.6.101" extension="{insurer}"/></scopingOrganization>
    </associatedEntity>
  </participant>
  <documentationOf>
    <serviceEvent classCode="PCPR">
      <code code="010" codeSystem="1.2.392.200119.6.1002"/>
      <effectiveTime value="{examined}"/>
    </serviceEvent>
  </documentationOf>
  <component>
    <structuredBody>
      <component>
        <section>
          <code code="01010" codeSystem="1.2.392.200119.6.1010"/>
          <title>検査・問診結果</title>
          <text><table><tbody><tr><td>身長</td><td>158.2 cm</td></tr></tbody></table></text>
{entries}
        </section>
      </component>
    </structuredBody>
  </component>
</ClinicalDocument>
"#,
            kind = self.report_kind,
            insurer = self.insurer,
            number = self.number,
            gender = self.gender,
            birth = self.birth,
            examined = self.examined,
        )
    }
}

/// Every item the table maps, with realistic values, some in 一連検査 groups (organizers),
/// one with a reference range and one with a nested observation.
pub fn all_mapped_items() -> Vec<String> {
    vec![
        pq("9N001000000000001", "身長", "158.2", "cm"),
        pq("9N006000000000001", "体重", "61.4", "kg"),
        pq("9N011000000000001", "ＢＭＩ", "24.5", "kg/m2"),
        pq("9N016160100000001", "腹囲（実測）", "91.0", "cm"),
        format!(
            r#"<entry><organizer classCode="CLUSTER" moodCode="EVN">
  <code code="01010000" codeSystem="1.2.392.200119.6.1005"/>
  <statusCode code="completed"/>
  <component>{}</component>
  <component>{}</component>
  <component>{}</component>
  <component>{}</component>
</organizer></entry>"#,
            strip_entry(&pq("9A751000000000001", "収縮期血圧（１回目）", "134", "mmHg")),
            strip_entry(&pq("9A752000000000001", "収縮期血圧（２回目）", "128", "mmHg")),
            strip_entry(&pq("9A761000000000001", "拡張期血圧（１回目）", "86", "mmHg")),
            strip_entry(&pq("9A762000000000001", "拡張期血圧（２回目）", "82", "mmHg")),
        ),
        pq("9A755000000000001", "収縮期血圧（その他）", "131", "mmHg"),
        pq("9A765000000000001", "拡張期血圧（その他）", "84", "mmHg"),
        // A reference range whose <value> must not be taken for the result, and a nested
        // observation (採血時間) that is an item of its own.
        format!(
            r#"<entry><observation classCode="OBS" moodCode="EVN">
  <code code="3D010000001926101" codeSystem="{JLAC10}" displayName="空腹時血糖"/>
  <effectiveTime value="20240610"/>
  <value xsi:type="PQ" value="104" unit="mg/dL"/>
  <interpretationCode code="H" codeSystem="2.16.840.1.113883.5.83"/>
  <referenceRange><observationRange><value xsi:type="IVL_PQ"><low value="70" unit="mg/dL"/><high value="99" unit="mg/dL"/></value></observationRange></referenceRange>
  <entryRelationship typeCode="COMP">
    <observation classCode="OBS" moodCode="EVN">
      <code code="9N141000000000011" codeSystem="{JLAC10}" displayName="採血時間（食後）"/>
      <value xsi:type="CO" code="2" codeSystem="1.2.392.200119.6.2202" displayName="食後10時間以上"/>
    </observation>
  </entryRelationship>
</observation></entry>"#
        ),
        pq("3D010000002227101", "空腹時血糖", "101", "mg/dl"),
        pq("3D010000001927201", "空腹時血糖", "99", "mg/dl"),
        pq("3D046000001906202", "ＨｂＡ１ｃ（ＮＧＳＰ）", "5.7", "%"),
        pq("3D046000001920402", "ＨｂＡ１ｃ（ＮＧＳＰ）", "5.7", "%"),
        pq("3D046000001927102", "ＨｂＡ１ｃ（ＮＧＳＰ）", "5.7", "%"),
        pq("3D045000001927101", "ＨｂＡ１ｃ", "5.7", "%"),
        pq("3D045000001906202", "ＨｂＡ１ｃ（ＪＤＳ）", "5.3", "%"),
        pq("3D045000001920402", "ＨｂＡ１ｃ（ＪＤＳ）", "5.3", "%"),
        pq("3D045000001927102", "ＨｂＡ１ｃ（ＪＤＳ）", "5.3", "%"),
        pq("3F015000002327101", "中性脂肪", "160", "mg/dl"),
        pq("3F015000002327201", "中性脂肪", "160", "mg/dl"),
        pq("3F015000002399901", "中性脂肪", "160", "mg/dl"),
        pq("3F070000002327101", "ＨＤＬコレステロール", "38", "mg/dl"),
        pq("3F070000002327201", "ＨＤＬコレステロール", "38", "mg/dl"),
        pq("3F070000002399901", "ＨＤＬコレステロール", "38", "mg/dl"),
        pq("3F077000002327101", "ＬＤＬコレステロール", "142", "mg/dl"),
        pq("3F077000002327201", "ＬＤＬコレステロール", "142", "mg/dl"),
        pq("3F077000002399901", "ＬＤＬコレステロール", "142", "mg/dl"),
        pq("3B035000002327201", "ＧＯＴ（ＡＳＴ）", "24", "U/L"),
        pq("3B035000002399901", "ＧＯＴ（ＡＳＴ）", "24", "U/L"),
        pq("3B045000002327201", "ＧＰＴ（ＡＬＴ）", "33", "U/L"),
        pq("3B045000002399901", "ＧＰＴ（ＡＬＴ）", "33", "U/L"),
        pq("3B090000002327101", "γ-ＧＴ（γ-ＧＴＰ）", "55", "U/L"),
        pq("3B090000002399901", "γ-ＧＴ（γ-ＧＴＰ）", "55", "U/L"),
        co("1A020000000191111", "尿糖", "1"),
        co("1A020000000190111", "尿糖", "1"),
        co("1A010000000191111", "尿蛋白", "2"),
        co("1A010000000190111", "尿蛋白", "3"),
    ]
}

fn strip_entry(entry: &str) -> String {
    entry.trim_start_matches("<entry>").trim_end_matches("</entry>").to_string()
}

/// A ZIP archive from `(name, bytes)` entries, deflated.
pub fn zip(entries: &[(&str, &[u8])]) -> Vec<u8> {
    let mut writer = zip::ZipWriter::new(Cursor::new(Vec::new()));
    let options = SimpleFileOptions::default().compression_method(CompressionMethod::Deflated);
    for (name, bytes) in entries {
        if name.ends_with('/') {
            writer.add_directory(*name, options).expect("directory");
        } else {
            writer.start_file(*name, options).expect("start file");
            writer.write_all(bytes).expect("write");
        }
    }
    writer.finish().expect("finish").into_inner()
}

/// The MHLW index file of an archive (交換用基本情報), abridged.
pub const INDEX: &str = r#"<?xml version="1.0" encoding="UTF-8"?>
<index xmlns="urn:hl7-org:v3">
  <interactionType code="1" codeSystem="1.2.392.200119.6.1301"/>
  <creationTime value="20240620"/>
  <sender><id root="1.2.392.200119.6.102" extension="1311234567"/></sender>
  <receiver><id root="1.2.392.200119.6.101" extension="133033"/></receiver>
  <serviceEventType code="1" codeSystem="1.2.392.200119.6.1302"/>
  <totalRecordCount value="2"/>
</index>
"#;

/// A settlement file (決済情報), which sits in DATA/ next to the documents.
pub const SETTLEMENT: &str = r#"<?xml version="1.0" encoding="UTF-8"?>
<checkupClaim xmlns="urn:hl7-org:v3"><settlement><serviceEventType code="1"/></settlement></checkupClaim>
"#;
