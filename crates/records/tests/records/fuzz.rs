//! Property tests: arbitrary, truncated and mutated input never panics and never yields a
//! document from an incomplete file.

use std::io::Cursor;

use crate::common::{all_mapped_items, zip, Doc};
use proptest::prelude::*;
use records::checkup::{parse_document, parse_zip, Limits, ZipLimits};

fn valid() -> &'static str {
    static DOC: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    DOC.get_or_init(|| Doc::new(all_mapped_items()).xml())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn random_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..4096)) {
        let _ = parse_document(&bytes, &Limits::default());
    }

    #[test]
    fn random_xml_like_text_never_panics(text in "[<>/=\"&;#a-zA-Z0-9 :!\\[\\]?\\-]{0,512}") {
        let _ = parse_document(text.as_bytes(), &Limits::default());
        let wrapped = format!("<ClinicalDocument xmlns=\"urn:hl7-org:v3\">{text}</ClinicalDocument>");
        let _ = parse_document(wrapped.as_bytes(), &Limits::default());
    }

    #[test]
    fn every_prefix_of_a_document_is_refused(cut in 0usize..1_000_000) {
        let doc = valid().as_bytes();
        let cut = cut % doc.len();
        // The valid document ends with "</ClinicalDocument>\n": any shorter prefix is incomplete.
        if cut < doc.len() - 1 {
            prop_assert!(parse_document(&doc[..cut], &Limits::default()).is_err());
        }
    }

    #[test]
    fn mutated_documents_never_panic(edits in proptest::collection::vec((any::<usize>(), any::<u8>()), 1..8)) {
        let mut doc = valid().as_bytes().to_vec();
        for (at, byte) in edits {
            let len = doc.len();
            doc[at % len] = byte;
        }
        let _ = parse_document(&doc, &Limits::default());
    }

    #[test]
    fn spliced_documents_never_panic(a in any::<usize>(), b in any::<usize>(), c in any::<usize>()) {
        // Cut a random slice out and put it back elsewhere: unbalanced tags, split attributes.
        let doc = valid().as_bytes();
        let (x, y) = { let (x, y) = (a % doc.len(), b % doc.len()); (x.min(y), x.max(y)) };
        let mut spliced = [&doc[..x], &doc[y..]].concat();
        let at = c % (spliced.len() + 1);
        spliced.splice(at..at, doc[x..y].iter().copied());
        let _ = parse_document(&spliced, &Limits::default());
    }

    #[test]
    fn random_archives_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..2048)) {
        let mut with_magic = b"PK\x03\x04".to_vec();
        with_magic.extend_from_slice(&bytes);
        let _ = parse_zip(Cursor::new(bytes), &ZipLimits::default());
        let _ = parse_zip(Cursor::new(with_magic), &ZipLimits::default());
    }
}

#[test]
fn mutated_archives_never_panic() {
    let archive = zip(&[("DATA/h1.xml", valid().as_bytes())]);
    // Through `contextualize_config`, as `proptest!` does, so PROPTEST_CASES applies here too.
    let config =
        proptest::test_runner::contextualize_config(ProptestConfig { cases: 256, ..ProptestConfig::default() });
    let mut runner = proptest::test_runner::TestRunner::new(config);
    runner
        .run(&proptest::collection::vec((any::<usize>(), any::<u8>()), 1..6), |edits| {
            let mut broken = archive.clone();
            for (at, byte) in edits {
                let len = broken.len();
                broken[at % len] = byte;
            }
            let _ = parse_zip(Cursor::new(broken), &ZipLimits::default());
            Ok(())
        })
        .unwrap();
}
