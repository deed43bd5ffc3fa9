//! Files from the field (issue #15, point 5): another vendor's converter writes observation
//! codes without `codeSystem`, puts the settlement files in `CLAIMS/`, names the index and
//! summary `index.xml` / `INDEX` / `summary.xml`, and writes the insurer number as `00` + 6 digits.

use std::io::Cursor;

use crate::common::{all_mapped_items, pq, zip, Doc, INDEX, JLAC10, SETTLEMENT};
use records::checkup::{parse_document, parse_zip, CheckupError, CodeProblem, Limits, SkipReason, ZipLimits};

/// The document as the vendor writes it: no `codeSystem` on any observation code.
fn without_code_system(xml: &str) -> String {
    xml.replace(&format!(r#" codeSystem="{JLAC10}" displayName="#), " displayName=")
}

fn vendor_doc() -> String {
    let mut doc = Doc::new(all_mapped_items());
    doc.insurer = "00133033";
    without_code_system(&doc.xml())
}

#[test]
fn jlac10_codes_without_code_system_are_read_as_jlac10_and_counted() {
    let ideal = parse_document(Doc::new(all_mapped_items()).xml().as_bytes(), &Limits::default()).expect("ideal");
    let xml = vendor_doc();
    assert!(!xml.contains(&format!(r#"codeSystem="{JLAC10}" displayName"#)), "the codes really have no codeSystem");
    let vendor = parse_document(xml.as_bytes(), &Limits::default()).expect("vendor file accepted");

    assert_eq!(ideal.codes_without_system(), 0);
    assert_eq!(vendor.codes_without_system(), ideal.items.len());
    assert_eq!(vendor.examinee.insurer_number, "00133033");
    // Same items, keys, names, values and reference values as the ideal file.
    assert_eq!(vendor.items.len(), ideal.items.len());
    for (v, i) in vendor.items.iter().zip(&ideal.items) {
        assert_eq!(
            (&v.code, v.key, &v.name, &v.value, &v.reference),
            (&i.code, i.key, &i.name, &i.value, &i.reference)
        );
        assert_eq!(v.code_system, None);
        assert_eq!(v.judgement(), i.judgement());
    }
    // A JLAC10-shaped code the table doesn't know is kept too, by its document name.
    let unknown = Doc::new(vec![pq("9Z999000000000001", "独自検査項目", "42", "U/L")]).xml();
    let doc = parse_document(without_code_system(&unknown).as_bytes(), &Limits::default()).expect("unknown code");
    assert_eq!((doc.items[0].key, doc.items[0].name.as_str(), doc.codes_without_system()), (None, "独自検査項目", 1));
}

#[test]
fn a_code_without_code_system_that_is_not_jlac10_is_refused_by_observation_and_code() {
    let xml = without_code_system(
        &Doc::new(vec![
            pq("9N001000000000001", "身長", "158.2", "cm"),
            pq("8302-2", "Body height (LOINC)", "158.2", "cm"),
        ])
        .xml(),
    );
    let err = parse_document(xml.as_bytes(), &Limits::default()).unwrap_err();
    let CheckupError::ObservationCode { observation, ref path, ref problem } = err else { panic!("{err:?}") };
    assert_eq!(observation, 2);
    assert_eq!(path, "ClinicalDocument/component/structuredBody/component/section/entry/observation");
    assert_eq!(problem, &CodeProblem::UndeclaredNotJlac10 { code: "8302-2".into() });
    let message = err.to_string();
    assert!(message.contains("\"8302-2\"") && message.contains("no codeSystem"), "{message}");
    assert!(message.contains("observation #2") && message.contains("section/entry/observation"), "{message}");
    assert!(!message.starts_with("missing"), "not a generic 'missing observation code': {message}");

    // With its code system declared, the same code is an item of that system (kept, unmapped).
    let declared = Doc::new(vec![format!(
        r#"<entry><observation classCode="OBS" moodCode="EVN"><code code="8302-2" codeSystem="2.16.840.1.113883.6.1"/><value xsi:type="PQ" value="158.2" unit="cm"/></observation></entry>"#
    )])
    .xml();
    let doc = parse_document(declared.as_bytes(), &Limits::default()).expect("declared");
    assert_eq!((doc.items[0].key, doc.codes_without_system()), (None, 0));
}

#[test]
fn a_missing_code_names_what_is_missing_and_where() {
    let cases = [
        (
            r#"<entry><observation classCode="OBS" moodCode="EVN"><value xsi:type="PQ" value="1" unit="cm"/></observation></entry>"#,
            CodeProblem::NoCodeElement,
            "no <code> element",
        ),
        (
            r#"<entry><observation classCode="OBS" moodCode="EVN"><code codeSystem="1.2.392.200119.6.1005"/><value xsi:type="PQ" value="1" unit="cm"/></observation></entry>"#,
            CodeProblem::NoCodeAttribute,
            "no code attribute",
        ),
        (
            r#"<entry><observation classCode="OBS" moodCode="EVN"><code nullFlavor="UNK"/><value xsi:type="PQ" value="1" unit="cm"/></observation></entry>"#,
            CodeProblem::NullFlavor("UNK".into()),
            "nullFlavor=\"UNK\"",
        ),
    ];
    for (entry, expected, words) in cases {
        let xml = Doc::new(vec![pq("9N001000000000001", "身長", "158.2", "cm"), entry.to_string()]).xml();
        let err = parse_document(xml.as_bytes(), &Limits::default()).unwrap_err();
        assert!(
            matches!(&err, CheckupError::ObservationCode { observation: 2, problem, .. } if *problem == expected),
            "{err:?}"
        );
        let message = err.to_string();
        assert!(message.starts_with("observation code is missing"), "{message}");
        assert!(message.contains(words) && message.contains("observation #2 (ClinicalDocument/"), "{message}");
    }
    // A nested observation is numbered in document order and its path says where it is.
    let nested = Doc::new(vec![r#"<entry><observation classCode="OBS" moodCode="EVN"><code code="3D010000001926101"/><value xsi:type="PQ" value="104" unit="mg/dL"/>
  <entryRelationship typeCode="COMP"><observation classCode="OBS" moodCode="EVN"><value xsi:type="CO" code="2"/></observation></entryRelationship>
</observation></entry>"#
        .to_string()])
    .xml();
    match parse_document(nested.as_bytes(), &Limits::default()) {
        Err(CheckupError::ObservationCode { observation: 2, path, problem: CodeProblem::NoCodeElement }) => {
            assert!(path.ends_with("entry/observation/entryRelationship/observation"), "{path}")
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn a_vendor_archive_reads_data_and_lists_claims_index_and_summary_as_skipped() {
    let root = "1311234567_00133033_20240620";
    let doc = vendor_doc();
    let archive = zip(&[
        (&format!("{root}/"), b""),
        (&format!("{root}/index.xml"), INDEX.as_bytes()),
        (&format!("{root}/INDEX"), b"1311234567,00133033,2"),
        (&format!("{root}/summary.xml"), b"<summary><count>2</count></summary>"),
        (&format!("{root}/DATA/"), b""),
        (&format!("{root}/DATA/h0001.xml"), doc.as_bytes()),
        (&format!("{root}/CLAIMS/"), b""),
        (&format!("{root}/CLAIMS/c0001.xml"), SETTLEMENT.as_bytes()),
        (&format!("{root}/CLAIMS/c0001.csv"), b"not xml"),
        (&format!("{root}/readme.txt"), b"converter 3.1"),
    ]);
    let report = parse_zip(Cursor::new(archive), &ZipLimits::default()).expect("archive accepted");
    assert!(report.is_complete(), "{:?}", report.failures().collect::<Vec<_>>());
    assert_eq!(report.documents.len(), 1);
    assert_eq!(report.skipped, []);
    assert_eq!(report.index.as_ref().map(|i| i.root.as_str()), Some("index"));
    let other: Vec<(&str, &SkipReason)> = report.other_files.iter().map(|s| (s.entry.as_str(), &s.reason)).collect();
    assert_eq!(
        other,
        [
            (format!("{root}/index.xml").as_str(), &SkipReason::Index),
            (format!("{root}/INDEX").as_str(), &SkipReason::Index),
            (format!("{root}/summary.xml").as_str(), &SkipReason::Summary),
            (format!("{root}/CLAIMS/c0001.xml").as_str(), &SkipReason::Claims),
            (format!("{root}/CLAIMS/c0001.csv").as_str(), &SkipReason::Claims),
            (format!("{root}/readme.txt").as_str(), &SkipReason::Unknown),
        ]
    );
    assert!(report.other_files.iter().all(|s| !s.reason.to_string().is_empty()));
    let docs = report.into_documents().expect("parsed");
    assert_eq!(docs[0].1.codes_without_system(), all_mapped_items_len());
}

fn all_mapped_items_len() -> usize {
    parse_document(Doc::new(all_mapped_items()).xml().as_bytes(), &Limits::default()).expect("ideal").items.len()
}

#[test]
fn skipped_files_are_not_read_and_the_caps_still_hold() {
    // A zip bomb under CLAIMS/ is never decompressed: the archive is accepted.
    let bomb = vec![b' '; 4 * 1024 * 1024];
    let doc = vendor_doc();
    let archive = zip(&[("DATA/h1.xml", doc.as_bytes()), ("CLAIMS/c1.xml", &bomb), ("summary.xml", &bomb)]);
    let report = parse_zip(Cursor::new(archive), &ZipLimits::default()).expect("not read");
    assert_eq!(report.other_files.len(), 2);
    // The same bomb in DATA/ is stopped as before.
    let archive = zip(&[("DATA/h1.xml", doc.as_bytes()), ("DATA/h2.xml", &bomb)]);
    assert!(matches!(
        parse_zip(Cursor::new(archive), &ZipLimits::default()),
        Err(records::checkup::ZipError::CompressionRatio { .. })
    ));
    // Skipped files count against the entry cap.
    let claims: Vec<(String, Vec<u8>)> = (0..20).map(|i| (format!("CLAIMS/c{i}.xml"), b"x".to_vec())).collect();
    let mut entries: Vec<(&str, &[u8])> = claims.iter().map(|(n, b)| (n.as_str(), b.as_slice())).collect();
    entries.push(("DATA/h1.xml", doc.as_bytes()));
    let limits = ZipLimits { max_entries: 10, ..ZipLimits::default() };
    assert_eq!(
        parse_zip(Cursor::new(zip(&entries)), &limits),
        Err(records::checkup::ZipError::TooManyEntries { limit: 10 })
    );
    // A file name beyond the listed length is cut.
    let long = format!("{}.bin", "n".repeat(1000));
    let report =
        parse_zip(Cursor::new(zip(&[("DATA/h1.xml", doc.as_bytes()), (&long, b"x")])), &ZipLimits::default()).unwrap();
    assert_eq!(report.other_files[0].entry.chars().count(), records::checkup::MAX_LISTED_NAME_CHARS);
    // Only CLAIMS/ and the like: still no documents.
    let archive = zip(&[("CLAIMS/c1.xml", SETTLEMENT.as_bytes()), ("index.xml", INDEX.as_bytes())]);
    assert_eq!(parse_zip(Cursor::new(archive), &ZipLimits::default()), Err(records::checkup::ZipError::NoDocuments));
}
