//! One 特定健診 CDA document at a time: what is read, what is kept, what is refused.

use crate::common::{all_mapped_items, co, pq, st, Doc};
use records::checkup::{parse_document, parse_reader, CheckupError, Field, Gender, Limits, Value};
use records::jlac10::{self, keys, Judgement};
use time::macros::date;

fn parse(xml: &str) -> Result<records::checkup::CheckupDocument, CheckupError> {
    parse_document(xml.as_bytes(), &Limits::default())
}

#[test]
fn realistic_document_with_every_mapped_item() {
    let doc = parse(&Doc::new(all_mapped_items()).xml()).expect("parses");

    let who = &doc.examinee;
    assert_eq!(who.insurer_number, "133033");
    assert_eq!(who.symbol.as_deref(), Some("１２３４"), "kept as written (full-width)");
    assert_eq!(who.number, "５６７８");
    assert_eq!(who.branch, None);
    assert_eq!(who.birth_date, date!(1990 - 04 - 01));
    assert_eq!(who.gender, Some(Gender::Female));
    assert_eq!(doc.examined_on, date!(2024 - 06 - 10));
    let facility = doc.facility.as_ref().expect("facility");
    assert_eq!(facility.number.as_deref(), Some("1311234567"));
    assert_eq!(facility.name.as_deref(), Some("みらい健診センター & クリニック"));

    // Every table key appears, with the table's names.
    for key in keys::ALL {
        let item = doc.item(key).unwrap_or_else(|| panic!("no {key}"));
        assert_eq!(item.name, jlac10::lookup(&item.code).unwrap().name_ja);
    }
    // Every table code but the self-measured/self-reported waist and the three その他 methods of
    // glucose and HbA1c, plus the nested 採血時間.
    let mapped = doc.items.iter().filter(|i| i.key.is_some()).count();
    assert_eq!(mapped, jlac10::ITEMS.len() - 5);
    assert_eq!(doc.items.len(), mapped + 1);

    let height = doc.item(keys::HEIGHT).unwrap();
    assert_eq!(height.code, "9N001000000000001");
    assert_eq!(height.value, Value::Quantity { value: "158.2".into(), number: 158.2, unit: Some("cm".into()) });
    assert_eq!(height.reference, None);
    assert_eq!(height.judgement(), None);

    // Waist for a woman: 91 ≥ 90.
    assert_eq!(doc.item(keys::WAIST).unwrap().judgement(), Some(Judgement::Guidance));
    // The group (organizer) members are items; 134 ≥ 130, 128 < 130.
    let systolic: Vec<_> = doc.items.iter().filter(|i| i.key == Some(keys::SYSTOLIC_BP)).collect();
    assert_eq!(systolic.len(), 3);
    assert_eq!(systolic[0].judgement(), Some(Judgement::Guidance));
    assert_eq!(systolic[1].judgement(), Some(Judgement::Normal));

    // The reference range's nested <value> is not the result; interpretation is kept.
    let glucose = doc.item(keys::FASTING_GLUCOSE).unwrap();
    assert_eq!(glucose.value, Value::Quantity { value: "104".into(), number: 104.0, unit: Some("mg/dL".into()) });
    assert_eq!(glucose.interpretation.as_deref(), Some("H"));
    assert_eq!(glucose.judgement(), Some(Judgement::Guidance));

    // The nested observation is kept as an unknown item with the document's name.
    let fasting_time = doc.items.iter().find(|i| i.code == "9N141000000000011").unwrap();
    assert_eq!(fasting_time.key, None);
    assert_eq!(fasting_time.name, "採血時間（食後）");
    assert_eq!(
        fasting_time.value,
        Value::Coded {
            code: "2".into(),
            code_system: Some("1.2.392.200119.6.2202".into()),
            display: Some("食後10時間以上".into())
        }
    );

    assert_eq!(doc.item(keys::HBA1C).unwrap().judgement(), Some(Judgement::Guidance));
    assert_eq!(doc.item(keys::HBA1C_JDS).unwrap().judgement(), Some(Judgement::Guidance));
    assert_eq!(doc.item(keys::TRIGLYCERIDES).unwrap().judgement(), Some(Judgement::Guidance));
    assert_eq!(doc.item(keys::HDL_CHOLESTEROL).unwrap().judgement(), Some(Judgement::Guidance));
    assert_eq!(doc.item(keys::LDL_CHOLESTEROL).unwrap().judgement(), Some(Judgement::Referral));
    assert_eq!(doc.item(keys::AST).unwrap().judgement(), Some(Judgement::Normal));
    assert_eq!(doc.item(keys::ALT).unwrap().judgement(), Some(Judgement::Guidance));
    assert_eq!(doc.item(keys::GAMMA_GT).unwrap().judgement(), Some(Judgement::Guidance));
    assert_eq!(doc.item(keys::BMI).unwrap().judgement(), Some(Judgement::Normal));

    let sugar = doc.item(keys::URINE_GLUCOSE).unwrap();
    assert_eq!(
        sugar.value,
        Value::Coded {
            code: "1".into(),
            code_system: Some(jlac10::QUALITATIVE_OID.into()),
            display: Some("－".into())
        }
    );
    assert_eq!(sugar.judgement(), None);
    let protein: Vec<_> = doc.items.iter().filter(|i| i.key == Some(keys::URINE_PROTEIN)).collect();
    assert_eq!(protein[0].judgement(), Some(Judgement::Guidance));
    assert_eq!(protein[1].judgement(), Some(Judgement::Referral));
}

#[test]
fn unknown_codes_are_kept_with_their_document_names() {
    let doc = parse(
        &Doc::new(vec![
            pq("9N001000000000001", "身長", "170", "cm"),
            pq("2A030000001930101", "血色素量［ヘモグロビン値］", "13.8", "g/dl"),
            st("9N511000000000049", "医師の診断（判定）", "特記すべきことなし &lt;再検不要&gt;"),
            co("9N736000000000011", "喫煙", "2"),
            // No displayName at all: the code stands in for the name.
            r#"<entry><observation classCode="OBS" moodCode="EVN"><code code="9Z999000000000001" codeSystem="1.2.392.200119.6.1005"/><value xsi:type="PQ" value="1" unit="1"/></observation></entry>"#.into(),
            // A known code in another code system is not the JLAC10 item.
            r#"<entry><observation classCode="OBS" moodCode="EVN"><code code="9N001000000000001" codeSystem="2.16.840.1.113883.6.1" displayName="Body height"/><value xsi:type="PQ" value="170" unit="cm"/></observation></entry>"#.into(),
            // Not performed.
            r#"<entry><observation classCode="OBS" moodCode="EVN"><code code="9A110160700000011" codeSystem="1.2.392.200119.6.1005" displayName="心電図（所見の有無）"/><value xsi:type="CD" nullFlavor="NI"/></observation></entry>"#.into(),
        ])
        .xml(),
    )
    .expect("parses");
    assert_eq!(doc.items.len(), 7);
    let names: Vec<_> = doc.items.iter().map(|i| (i.key, i.name.as_str())).collect();
    assert_eq!(
        names,
        [
            (Some(keys::HEIGHT), "身長"),
            (None, "血色素量［ヘモグロビン値］"),
            (None, "医師の診断（判定）"),
            (None, "喫煙"),
            (None, "9Z999000000000001"),
            (None, "Body height"),
            (None, "心電図（所見の有無）"),
        ]
    );
    assert_eq!(doc.items[1].value, Value::Quantity { value: "13.8".into(), number: 13.8, unit: Some("g/dl".into()) });
    assert_eq!(doc.items[2].value, Value::Text { text: "特記すべきことなし <再検不要>".into() });
    assert_eq!(
        doc.items[3].value,
        Value::Coded {
            code: "2".into(), code_system: Some("1.2.392.200119.6.2102".into()), display: Some("±".into())
        }
    );
    assert_eq!(doc.items[6].value, Value::Missing { null_flavor: Some("NI".into()) });
}

#[test]
fn examinee_fields_branch_gender_and_dates() {
    let mut d = Doc::new(vec![pq("9N001000000000001", "身長", "170", "cm")]);
    d.insurer = "06132013";
    d.symbol = None;
    d.number = "101";
    d.branch = Some("01");
    d.gender = "1";
    d.birth = "19850229"; // not a date
    assert_eq!(parse(&d.xml()), Err(CheckupError::Invalid(Field::BirthDate)));
    d.birth = "19851224";
    let doc = parse(&d.xml()).unwrap();
    assert_eq!(doc.examinee.symbol, None);
    assert_eq!(doc.examinee.branch.as_deref(), Some("01"));
    assert_eq!(doc.examinee.gender, Some(Gender::Male));
    assert_eq!(doc.examinee.birth_date, date!(1985 - 12 - 24));

    d.gender = "9";
    assert_eq!(parse(&d.xml()), Err(CheckupError::Invalid(Field::Gender)));
    d.gender = "1";
    d.insurer = "12-34";
    assert_eq!(parse(&d.xml()), Err(CheckupError::Invalid(Field::InsurerNumber)));
    d.insurer = "";
    assert_eq!(parse(&d.xml()), Err(CheckupError::Missing(Field::InsurerNumber)));
    d.insurer = "06132013";
    d.examined = "2024061";
    assert_eq!(parse(&d.xml()), Err(CheckupError::Invalid(Field::ExaminationDate)));

    // Two different insurer numbers: refuse rather than guess whose record it is.
    let twice = Doc::new(vec![]).xml().replacen(
        r#"<id root="1.2.392.200119.6.205""#,
        r#"<id root="1.2.392.200119.6.101" extension="01130012"/><id root="1.2.392.200119.6.205""#,
        1,
    );
    assert_eq!(parse(&twice), Err(CheckupError::Conflicting { field: Field::InsurerNumber }));
}

#[test]
fn examination_date_falls_back_to_the_observations() {
    let xml = Doc::new(vec![format!(
        r#"<entry><observation classCode="OBS" moodCode="EVN"><code code="9N001000000000001" codeSystem="{}"/><effectiveTime value="20230405"/><value xsi:type="PQ" value="170" unit="cm"/></observation></entry>"#,
        crate::common::JLAC10
    )])
    .xml()
    .replace(r#"<effectiveTime value="20240610"/>"#, "");
    let doc = parse(&xml).unwrap();
    assert_eq!(doc.examined_on, date!(2023 - 04 - 05));

    let none = Doc::new(vec![pq("9N001000000000001", "身長", "170", "cm")])
        .xml()
        .replace(r#"<effectiveTime value="20240610"/>"#, "");
    assert_eq!(parse(&none), Err(CheckupError::Missing(Field::ExaminationDate)));
}

#[test]
fn malformed_observations_are_refused_with_their_code() {
    let bad_number = Doc::new(vec![pq("9N006000000000001", "体重", "6l.4", "kg")]).xml();
    assert!(matches!(
        parse(&bad_number),
        Err(CheckupError::Observation { ref code, .. }) if code == "9N006000000000001"
    ));
    let no_code = Doc::new(vec![
        r#"<entry><observation classCode="OBS" moodCode="EVN"><value xsi:type="PQ" value="1" unit="cm"/></observation></entry>"#.into(),
    ])
    .xml();
    assert!(matches!(
        parse(&no_code),
        Err(CheckupError::ObservationCode {
            observation: 1,
            problem: records::checkup::CodeProblem::NoCodeElement,
            ..
        })
    ));
}

#[test]
fn units_other_than_the_tables_get_no_reference() {
    let doc = parse(&Doc::new(vec![pq("3D010000001926101", "空腹時血糖", "5.8", "mmol/L")]).xml()).unwrap();
    let glucose = doc.item(keys::FASTING_GLUCOSE).unwrap();
    assert_eq!(glucose.reference, None, "5.8 mmol/L must not be judged against 100 mg/dl");
}

#[test]
fn guidance_documents_and_other_roots_are_not_checkups() {
    let mut d = Doc::new(vec![]);
    d.report_kind = "21";
    assert_eq!(parse(&d.xml()), Err(CheckupError::NotACheckup { code: "21".into() }));
    assert_eq!(
        parse(crate::common::SETTLEMENT),
        Err(CheckupError::NotClinicalDocument { found: "checkupClaim".into() })
    );
    // Right local name, wrong namespace.
    assert!(matches!(
        parse(r#"<ClinicalDocument xmlns="urn:example"/>"#),
        Err(CheckupError::NotClinicalDocument { .. })
    ));
}

#[test]
fn billion_laughs_is_refused_at_the_doctype() {
    let lol = r#"<?xml version="1.0"?>
<!DOCTYPE lolz [
 <!ENTITY lol "lol">
 <!ENTITY lol1 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
 <!ENTITY lol2 "&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;">
 <!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">
 <!ENTITY lol4 "&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;">
 <!ENTITY lol5 "&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;">
 <!ENTITY lol6 "&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;">
 <!ENTITY lol7 "&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;">
 <!ENTITY lol8 "&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;">
 <!ENTITY lol9 "&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;">
]>
<ClinicalDocument xmlns="urn:hl7-org:v3"><title>&lol9;</title></ClinicalDocument>"#;
    assert_eq!(parse(lol), Err(CheckupError::Doctype));

    // The same inside a real document, after the XML declaration.
    let inside = Doc::new(all_mapped_items()).xml().replacen(
        "<?xml-stylesheet",
        "<!DOCTYPE ClinicalDocument [<!ENTITY lol \"lol\"><!ENTITY lol1 \"&lol;&lol;\">]>\n<?xml-stylesheet",
        1,
    );
    assert_eq!(parse(&inside), Err(CheckupError::Doctype));
}

#[test]
fn external_entities_and_undefined_references_are_refused() {
    let xxe = r#"<?xml version="1.0"?><!DOCTYPE c [<!ENTITY x SYSTEM "file:///etc/passwd">]><ClinicalDocument xmlns="urn:hl7-org:v3">&x;</ClinicalDocument>"#;
    assert_eq!(parse(xxe), Err(CheckupError::Doctype));

    // Without a DOCTYPE an entity can't be defined; using one is an error, in text or attribute.
    let in_text = Doc::new(vec![st("9N511000000000049", "医師の判断", "&lol9;")]).xml();
    assert_eq!(parse(&in_text), Err(CheckupError::UndefinedEntity { name: "lol9".into() }));
    let in_attr = Doc::new(vec![pq("9N001000000000001", "&lol9;", "170", "cm")]).xml();
    assert!(matches!(parse(&in_attr), Err(CheckupError::UndefinedEntity { .. })), "{:?}", parse(&in_attr));
    // Character references are fine.
    let chars = Doc::new(vec![st("9N511000000000049", "医師の判断", "&#x7570;&#24120;なし")]).xml();
    assert_eq!(parse(&chars).unwrap().items[0].value, Value::Text { text: "異常なし".into() });
}

#[test]
fn documents_over_the_size_cap_are_refused_before_parsing() {
    let limits = Limits::default();
    let mut huge = Doc::new(all_mapped_items()).xml();
    let padding = format!("<!-- {} -->", "x".repeat(limits.max_document_bytes));
    huge = huge.replacen("<title>", &format!("{padding}<title>"), 1);
    assert_eq!(
        parse_document(huge.as_bytes(), &limits),
        Err(CheckupError::TooLarge { limit: limits.max_document_bytes })
    );

    // From a reader: stops after cap + 1 bytes of an endless stream.
    let endless = std::io::repeat(b' ');
    assert_eq!(parse_reader(endless, &limits), Err(CheckupError::TooLarge { limit: limits.max_document_bytes }));

    // A configurable cap.
    let small = Limits { max_document_bytes: 1024, ..Limits::default() };
    let doc = Doc::new(all_mapped_items()).xml();
    assert_eq!(parse_document(doc.as_bytes(), &small), Err(CheckupError::TooLarge { limit: 1024 }));
    assert!(parse_reader(doc.as_bytes(), &Limits::default()).is_ok());
}

#[test]
fn depth_attribute_and_observation_caps() {
    let deep = Doc::new(vec![format!("{}{}", "<a>".repeat(100), "</a>".repeat(100))]).xml();
    assert_eq!(parse(&deep), Err(CheckupError::TooDeep { limit: 64 }));

    let attrs: String = (0..100).map(|i| format!(" a{i}=\"x\"")).collect();
    let wide = Doc::new(vec![format!("<entry{attrs}/>")]).xml();
    assert_eq!(parse(&wide), Err(CheckupError::TooManyAttributes { limit: 64 }));

    let many = Doc::new((0..30).map(|_| pq("9N001000000000001", "身長", "170", "cm")).collect()).xml();
    let limits = Limits { max_observations: 20, ..Limits::default() };
    assert_eq!(parse_document(many.as_bytes(), &limits), Err(CheckupError::TooManyObservations { limit: 20 }));
    assert_eq!(parse(&many).unwrap().items.len(), 30);
}

#[test]
fn a_million_levels_of_nesting_are_refused_at_the_depth_cap() {
    // 3 MB of `<a>` (under the 5 MiB size cap), never closed: the parser keeps an explicit
    // stack, so this is a typed error at level 64, neither a stack overflow nor a 1M-entry
    // stack.
    let deep = Doc::new(vec!["<a>".repeat(1_000_000)]).xml();
    assert!(deep.len() < Limits::default().max_document_bytes);
    assert_eq!(parse(&deep), Err(CheckupError::TooDeep { limit: 64 }));
    // As the root itself, and with attributes on every level.
    let bare = format!("<ClinicalDocument xmlns=\"urn:hl7-org:v3\">{}", "<a b=\"c\">".repeat(500_000));
    assert_eq!(parse(&bare), Err(CheckupError::TooDeep { limit: 64 }));
}

#[test]
fn truncated_and_garbage_input_is_refused() {
    let doc = Doc::new(all_mapped_items()).xml();
    for cut in [0, 1, 10, 100, doc.len() / 2, doc.len() - 30, doc.len() - 2] {
        let cut = (0..=cut).rev().find(|i| doc.is_char_boundary(*i)).unwrap();
        assert!(parse(&doc[..cut]).is_err(), "prefix of {cut} bytes parsed");
    }
    assert_eq!(parse(""), Err(CheckupError::Empty));
    assert_eq!(parse("   \n"), Err(CheckupError::Empty));
    assert!(matches!(parse("garbage"), Err(CheckupError::Malformed { .. })));
    assert!(matches!(
        parse("<ClinicalDocument xmlns=\"urn:hl7-org:v3\"></Clinical>"),
        Err(CheckupError::Malformed { .. })
    ));
    assert!(matches!(
        parse("<ClinicalDocument xmlns=\"urn:hl7-org:v3\"/><ClinicalDocument xmlns=\"urn:hl7-org:v3\"/>"),
        Err(CheckupError::Malformed { .. })
    ));
    assert_eq!(
        parse_document(b"\xff\xfe<\x00a\x00", &Limits::default()),
        Err(CheckupError::UnsupportedEncoding { declared: "UTF-16".into() })
    );
    assert_eq!(parse_document(b"<a>\xff</a>", &Limits::default()), Err(CheckupError::NotUtf8));
    let sjis = Doc::new(vec![]).xml().replace("encoding=\"UTF-8\"", "encoding=\"Shift_JIS\"");
    assert_eq!(parse(&sjis), Err(CheckupError::UnsupportedEncoding { declared: "Shift_JIS".into() }));
    // A UTF-8 byte-order mark is fine.
    let bom = format!("\u{feff}{}", Doc::new(vec![]).xml());
    assert!(parse(&bom).is_ok());
}

#[test]
fn documents_round_trip_through_json() {
    let doc = parse(&Doc::new(all_mapped_items()).xml()).unwrap();
    let json = serde_json::to_string(&doc).unwrap();
    assert!(json.contains(r#""examined_on":"2024-06-10""#), "{json}");
    assert!(json.contains(r#""birth_date":"1990-04-01""#));
    assert!(json.contains(r#""key":"hba1c""#));
    let back: records::checkup::CheckupDocument = serde_json::from_str(&json).unwrap();
    assert_eq!(back, doc);
    // A key this version doesn't know reads back as unknown.
    let renamed = json.replace(r#""key":"hba1c_jds""#, r#""key":"hba1c_old""#);
    let back: records::checkup::CheckupDocument = serde_json::from_str(&renamed).unwrap();
    assert!(back.item(keys::HBA1C_JDS).is_none());
}

#[test]
fn errors_never_echo_personal_data() {
    let mut d = Doc::new(vec![]);
    d.birth = "19901332";
    let message = parse(&d.xml()).unwrap_err().to_string();
    assert!(!message.contains("1990"), "{message}");
    d.birth = "19900401";
    d.insurer = "1330333333";
    let message = parse(&d.xml()).unwrap_err().to_string();
    assert!(!message.contains("1330333333"), "{message}");
}
