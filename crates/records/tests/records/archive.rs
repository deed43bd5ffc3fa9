//! 特定健診 ZIP deliveries: DATA/*.xml documents, the index, settlement files, and hostile archives.

use std::io::Cursor;
use std::time::Instant;

use crate::common::{all_mapped_items, pq, zip, Doc, INDEX, SETTLEMENT};
use records::checkup::{parse_zip, CheckupError, Limits, SkipReason, ZipError, ZipLimits};
use time::macros::date;

const ROOT: &str = "1311234567_00133033_202406200_1";

fn second_examinee() -> String {
    let mut d = Doc::new(vec![pq("9N001000000000001", "身長", "171.0", "cm")]);
    d.number = "５６７９";
    d.branch = Some("01");
    d.gender = "1";
    d.birth = "19851224";
    d.examined = "20240611";
    d.xml()
}

#[test]
fn two_documents_an_index_and_a_settlement_file() {
    let first = Doc::new(all_mapped_items()).xml();
    let second = second_examinee();
    let archive = zip(&[
        (&format!("{ROOT}/"), b""),
        (&format!("{ROOT}/ix08_V08.xml"), INDEX.as_bytes()),
        (&format!("{ROOT}/su08_V08.xml"), b"<summary/>"),
        (&format!("{ROOT}/DATA/"), b""),
        (&format!("{ROOT}/DATA/h131123456720240610000001.xml"), first.as_bytes()),
        (&format!("{ROOT}/DATA/h131123456720240611000002.xml"), second.as_bytes()),
        (&format!("{ROOT}/DATA/c131123456720240620000001.xml"), SETTLEMENT.as_bytes()),
        (&format!("{ROOT}/XSD/hc08_V08.xsd"), b"<xs:schema/>"),
    ]);
    let report = parse_zip(Cursor::new(archive), &ZipLimits::default()).expect("archive accepted");

    assert!(report.is_complete());
    assert_eq!(report.documents.len(), 2);
    let index = report.index.as_ref().expect("index");
    assert_eq!(index.entry, format!("{ROOT}/ix08_V08.xml"));
    assert_eq!(index.root, "index");
    assert_eq!(report.skipped.len(), 1);
    assert_eq!(report.skipped[0].reason, SkipReason::Settlement);

    let docs = report.into_documents().expect("all parsed");
    assert_eq!(docs[0].0, format!("{ROOT}/DATA/h131123456720240610000001.xml"));
    assert_eq!(docs[0].1.examined_on, date!(2024 - 06 - 10));
    assert_eq!(docs[1].1.examinee.number, "５６７９");
    assert_eq!(docs[1].1.examinee.branch.as_deref(), Some("01"));
    assert_eq!(docs[1].1.items.len(), 1);
}

#[test]
fn one_bad_document_is_reported_by_entry_and_the_rest_still_parse() {
    let good = Doc::new(all_mapped_items()).xml();
    let lol = r#"<?xml version="1.0"?><!DOCTYPE l [<!ENTITY a "aaaa">]><ClinicalDocument xmlns="urn:hl7-org:v3">&a;</ClinicalDocument>"#;
    let mut guidance = Doc::new(vec![]);
    guidance.report_kind = "21";
    let guidance = guidance.xml();
    let archive = zip(&[
        ("DATA/h1.xml", good.as_bytes()),
        ("DATA/h2.xml", lol.as_bytes()),
        ("DATA/h3.xml", &good.as_bytes()[..good.len() / 2]),
        ("DATA/g1.xml", guidance.as_bytes()),
        ("DATA/readme.txt", b"not xml"),
    ]);
    let report = parse_zip(Cursor::new(archive), &ZipLimits::default()).expect("archive accepted");
    assert_eq!(report.documents.len(), 3);
    assert!(!report.is_complete());
    let failures: Vec<_> = report.failures().map(|(entry, e)| (entry.to_string(), e.clone())).collect();
    assert_eq!(failures[0], ("DATA/h2.xml".to_string(), CheckupError::Doctype));
    assert_eq!(failures[1], ("DATA/h3.xml".to_string(), CheckupError::Truncated));
    assert_eq!(report.skipped[0].reason, SkipReason::HealthGuidance { report_kind: "21".into() });
    assert!(report.index.is_none());
    let Err(failed) = report.into_documents() else { panic!("failures expected") };
    assert_eq!(failed.len(), 2);
}

#[test]
fn zip_bomb_is_stopped_while_reading() {
    // 4 MiB of one byte deflates to ~4 KiB: a 1000:1 ratio, stopped at 100:1 (~0.5 MiB read).
    let bomb = vec![b' '; 4 * 1024 * 1024];
    let archive = zip(&[("DATA/h0.xml", Doc::new(vec![]).xml().as_bytes()), ("DATA/h1.xml", &bomb)]);
    assert!(archive.len() < 64 * 1024, "{}", archive.len());
    let err = parse_zip(Cursor::new(archive), &ZipLimits::default()).unwrap_err();
    assert_eq!(err, ZipError::CompressionRatio { entry: "DATA/h1.xml".into(), ratio: 100 });

    // 1 GiB deflates to ~1 MiB: whichever cap comes first (here the 5 MiB document cap) stops
    // the read long before the gigabyte.
    let mut writer = zip::ZipWriter::new(Cursor::new(Vec::new()));
    let options =
        zip::write::SimpleFileOptions::default().compression_method(zip::CompressionMethod::Deflated).large_file(true);
    writer.start_file("DATA/h1.xml", options).unwrap();
    let chunk = vec![b' '; 1024 * 1024];
    for _ in 0..1024 {
        std::io::Write::write_all(&mut writer, &chunk).unwrap();
    }
    let archive = writer.finish().unwrap().into_inner();
    let started = Instant::now();
    let report = parse_zip(Cursor::new(archive), &ZipLimits::default()).unwrap();
    assert_eq!(report.documents[0].result, Err(CheckupError::TooLarge { limit: 5 * 1024 * 1024 }));
    assert!(started.elapsed().as_secs() < 10);
}

#[test]
fn lying_size_headers_are_not_trusted() {
    // The same bomb with its declared uncompressed size patched down to 1 KiB in both headers.
    let bomb = vec![b' '; 16 * 1024 * 1024];
    let mut archive = zip(&[("DATA/h1.xml", &bomb)]);
    patch_sizes(&mut archive, 1024);
    // zip reads past the declared size; the ratio, counted on what comes out, stops it.
    assert_eq!(
        parse_zip(Cursor::new(archive), &ZipLimits::default()),
        Err(ZipError::CompressionRatio { entry: "DATA/h1.xml".into(), ratio: 100 })
    );
}

#[test]
fn huge_declared_sizes_are_not_allocated() {
    // A small, valid entry whose headers claim ~4 GiB uncompressed: nothing is sized from the
    // header, so this is an ordinary document (or a per-entry read error), never a 4 GiB
    // allocation.
    let doc = Doc::new(vec![]).xml();
    let mut archive = zip(&[("DATA/h1.xml", doc.as_bytes())]);
    patch_sizes(&mut archive, 0xFFFF_FFFE);
    match parse_zip(Cursor::new(archive), &ZipLimits::default()) {
        Ok(report) => assert!(matches!(report.documents[0].result, Ok(_) | Err(CheckupError::Read(_)))),
        Err(e) => panic!("{e:?}"),
    }
    // An index file nested a million levels deep (3 MB, compressing to a few KiB) refuses the
    // archive at the depth cap.
    let deep = format!("<index>{}", "<a>".repeat(1_000_000));
    let archive = zip(&[("ix08_V08.xml", deep.as_bytes()), ("DATA/h1.xml", doc.as_bytes())]);
    let limits = ZipLimits { max_compression_ratio: 10_000, ..ZipLimits::default() };
    assert_eq!(
        parse_zip(Cursor::new(archive), &limits),
        Err(ZipError::BadIndex { entry: "ix08_V08.xml".into(), error: CheckupError::TooDeep { limit: 64 } })
    );
}

#[test]
fn per_document_cap_total_cap_entry_cap_and_archive_cap() {
    let doc = Doc::new(all_mapped_items()).xml();
    let small_docs =
        ZipLimits { document: Limits { max_document_bytes: 1024, ..Limits::default() }, ..ZipLimits::default() };
    let report = parse_zip(Cursor::new(zip(&[("DATA/h1.xml", doc.as_bytes())])), &small_docs).unwrap();
    assert_eq!(report.documents[0].result, Err(CheckupError::TooLarge { limit: 1024 }));

    let entries: Vec<(String, &[u8])> = (0..10).map(|i| (format!("DATA/h{i}.xml"), doc.as_bytes())).collect();
    let refs: Vec<(&str, &[u8])> = entries.iter().map(|(n, b)| (n.as_str(), *b)).collect();
    let archive = zip(&refs);
    let total = ZipLimits { max_total_uncompressed_bytes: 3 * doc.len() as u64, ..ZipLimits::default() };
    assert_eq!(
        parse_zip(Cursor::new(archive.clone()), &total),
        Err(ZipError::TotalTooLarge { limit: 3 * doc.len() as u64 })
    );
    let few = ZipLimits { max_entries: 5, ..ZipLimits::default() };
    assert_eq!(parse_zip(Cursor::new(archive.clone()), &few), Err(ZipError::TooManyEntries { limit: 5 }));
    let tiny = ZipLimits { max_archive_bytes: 1000, ..ZipLimits::default() };
    assert_eq!(parse_zip(Cursor::new(archive.clone()), &tiny), Err(ZipError::TooLarge { limit: 1000 }));
    assert_eq!(parse_zip(Cursor::new(archive), &ZipLimits::default()).unwrap().documents.len(), 10);
}

#[test]
fn a_hostile_index_refuses_the_archive() {
    let doc = Doc::new(vec![]).xml();
    let lol = r#"<?xml version="1.0"?><!DOCTYPE index [<!ENTITY a "aa">]><index>&a;</index>"#;
    let archive = zip(&[("ix08_V08.xml", lol.as_bytes()), ("DATA/h1.xml", doc.as_bytes())]);
    assert_eq!(
        parse_zip(Cursor::new(archive), &ZipLimits::default()),
        Err(ZipError::BadIndex { entry: "ix08_V08.xml".into(), error: CheckupError::Doctype })
    );
}

#[test]
fn not_a_zip_and_no_documents() {
    assert!(matches!(
        parse_zip(Cursor::new(b"PK\x03\x04garbage".to_vec()), &ZipLimits::default()),
        Err(ZipError::NotAZip(_))
    ));
    assert!(matches!(parse_zip(Cursor::new(Vec::new()), &ZipLimits::default()), Err(ZipError::NotAZip(_))));
    let archive = zip(&[("ix08_V08.xml", INDEX.as_bytes()), ("h1.xml", b"<x/>")]);
    assert_eq!(parse_zip(Cursor::new(archive), &ZipLimits::default()), Err(ZipError::NoDocuments));
}

#[test]
fn truncated_archives_do_not_panic() {
    let doc = Doc::new(all_mapped_items()).xml();
    let archive = zip(&[("DATA/h1.xml", doc.as_bytes()), ("DATA/h2.xml", doc.as_bytes())]);
    for cut in (0..archive.len()).step_by(97) {
        let _ = parse_zip(Cursor::new(archive[..cut].to_vec()), &ZipLimits::default());
    }
    // Flipped bytes in the compressed data: a per-entry failure or a refused archive, no panic.
    for at in (30..archive.len() - 30).step_by(53) {
        let mut broken = archive.clone();
        broken[at] ^= 0x5a;
        let _ = parse_zip(Cursor::new(broken), &ZipLimits::default());
    }
}

/// Set the uncompressed-size field of every local and central header.
fn patch_sizes(archive: &mut [u8], size: u32) {
    let mut i = 0;
    while i + 46 <= archive.len() {
        match archive[i..i + 4] {
            [0x50, 0x4b, 0x03, 0x04] => archive[i + 22..i + 26].copy_from_slice(&size.to_le_bytes()),
            [0x50, 0x4b, 0x01, 0x02] => archive[i + 24..i + 28].copy_from_slice(&size.to_le_bytes()),
            _ => {}
        }
        i += 1;
    }
}
