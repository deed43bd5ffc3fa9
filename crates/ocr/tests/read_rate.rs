#![allow(clippy::unwrap_used, clippy::expect_used)]

//! The birth date on synthetic identity documents photographed like a phone does, read by the
//! real tesseract (Debian `tesseract-ocr` + `tesseract-ocr-jpn`) and judged by
//! `domain::evidence` as the eKYC service does. Full figures: `make ocr-eval` (README).

use domain::evidence::{check_birth_date, BirthDateCheck};
use ocr::testing::{photograph, render, Card, DateStyle, Degradation, Kind};
use ocr::{Ocr, Settings};
use time::macros::date;

async fn judge(ocr: &Ocr, card: &Card<'_>, d: &Degradation, seed: u64, roster: time::Date) -> BirthDateCheck {
    let jpeg = photograph(&render(card), d, seed);
    let img = image::load_from_memory(&jpeg).expect("jpeg").to_rgb8();
    let read = ocr.read_document(&img).await.expect("ocr");
    check_birth_date(&read.dates, roster)
}

fn ocr() -> Ocr {
    Ocr::new(Settings { concurrency: 2, ..Settings::default() })
}

/// Every kind and date style at phone quality: most are read, and none of the right person's
/// cards is ever read as someone else's birth date.
#[tokio::test]
async fn birth_dates_of_phone_photos_are_read_and_never_contradict_the_truth() {
    let ocr = ocr();
    ocr.check().await.expect("tesseract with jpn");
    // 平成元年 and a two-digit month and day; the evaluation (`make ocr-eval`) covers 630 cards.
    let births = [date!(1989 - 01 - 08), date!(2001 - 10 - 30)];
    let mut cases = Vec::new();
    for kind in Kind::ALL {
        let styles: &[DateStyle] = if kind == Kind::ResidenceCard {
            &[DateStyle::Seireki]
        } else {
            &[DateStyle::Wareki, DateStyle::WarekiFullWidth, DateStyle::Seireki]
        };
        for &style in styles {
            for (i, birth) in births.iter().enumerate() {
                cases.push((kind, style, *birth, i as u64));
            }
        }
    }
    let mut read = 0;
    for &(kind, style, birth, seed) in &cases {
        let (family, given) = if kind == Kind::ResidenceCard { ("YAMADA", "HANAKO") } else { ("山田", "花子") };
        let card = Card { kind, family, given, birth, style, photo: None };
        let check = judge(&ocr, &card, &Degradation::PHONE, seed, birth).await;
        assert_ne!(check, BirthDateCheck::Mismatch, "{kind:?} {style:?} {birth}: the right person flagged");
        if check == BirthDateCheck::Match {
            read += 1;
        }
    }
    // 14 cards; the evaluation's phone-quality read rate is reported in the README.
    assert!(read * 10 >= cases.len() * 8, "read {read} of {}", cases.len());
}

/// Another person's card (a different birth date) is flagged as a mismatch when its date is
/// read, and never matches.
#[tokio::test]
async fn another_persons_birth_date_is_a_mismatch() {
    let ocr = ocr();
    let roster = date!(1984 - 07 - 19);
    let mut flagged = 0;
    for (i, kind) in Kind::ALL.into_iter().enumerate() {
        let (family, given) = if kind == Kind::ResidenceCard { ("SATO", "KENICHI") } else { ("佐藤", "健一") };
        let card = Card { kind, family, given, birth: date!(1985 - 03 - 02), style: DateStyle::Wareki, photo: None };
        let check = judge(&ocr, &card, &Degradation::PHONE, i as u64, roster).await;
        assert_ne!(check, BirthDateCheck::Match, "{kind:?}");
        if check == BirthDateCheck::Mismatch {
            flagged += 1;
        }
    }
    assert!(flagged >= 2, "flagged {flagged} of 3");
}
