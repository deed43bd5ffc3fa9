#![allow(clippy::unwrap_used, clippy::expect_used)]

//! Read rate of the birth date on synthetic identity documents (`make ocr-eval`): for each
//! document kind, date style and degradation, `OCR_EVAL_CARDS` cards (default 10) with random
//! names and birth dates are rendered, photographed (see `ocr::testing`), read by tesseract and
//! compared with the true birth date by `domain::evidence`, as the eKYC service does.
//! Prints, per cell: read (match), unreadable, and false (a birth date read that is not the
//! card's — a "mismatch" flag on the right person), and the time per card.

use std::time::Instant;

use domain::evidence::{check_birth_date, BirthDateCheck};
use ocr::testing::{birth_text, photograph, render, Card, DateStyle, Degradation, Kind};
use ocr::{Ocr, Settings};
use time::{Date, Duration};

const NAMES: [(&str, &str, &str, &str); 6] = [
    ("山田", "花子", "YAMADA", "HANAKO"),
    ("佐藤", "健一", "SATO", "KENICHI"),
    ("鈴木", "美咲", "SUZUKI", "MISAKI"),
    ("高橋", "翔太", "TAKAHASHI", "SHOTA"),
    ("渡辺", "由美", "WATANABE", "YUMI"),
    ("伊藤", "誠", "ITO", "MAKOTO"),
];

fn main() {
    let per_cell: u64 = std::env::var("OCR_EVAL_CARDS").ok().and_then(|v| v.parse().ok()).unwrap_or(10);
    let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build().expect("runtime");
    let threads = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1);
    let ocr = Ocr::new(Settings { concurrency: threads, ..Settings::default() });
    rt.block_on(ocr.check()).expect("tesseract with jpn (Debian: tesseract-ocr tesseract-ocr-jpn)");
    let degradations = [("clean", Degradation::NONE), ("phone", Degradation::PHONE), ("poor", Degradation::POOR)];
    println!("cards per cell: {per_cell}; OCR children at once: {threads}");
    println!(
        "{:<16} {:<16} {:<6} {:>5} {:>11} {:>6} {:>9}",
        "document", "date", "photo", "read", "unreadable", "false", "s/card"
    );
    let (mut all, mut all_read, mut all_false) = (0u64, 0u64, 0u64);
    for kind in Kind::ALL {
        let styles: &[DateStyle] = if kind == Kind::ResidenceCard {
            &[DateStyle::Seireki]
        } else {
            &[DateStyle::Wareki, DateStyle::WarekiFullWidth, DateStyle::Seireki]
        };
        for &style in styles {
            for (dname, d) in degradations {
                let started = Instant::now();
                let jobs: Vec<_> = (0..per_cell)
                    .map(|i| {
                        let seed = i * 7919 + kind as u64 * 31 + style as u64 * 5;
                        let birth = Date::from_calendar_date(1940, time::Month::January, 1).expect("date")
                            + Duration::days((seed * 2_654_435_761 % 23_700) as i64);
                        let (fk, gk, fl, gl) = NAMES[(seed % NAMES.len() as u64) as usize];
                        let (family, given) = if kind == Kind::ResidenceCard { (fl, gl) } else { (fk, gk) };
                        let card = render(&Card { kind, family, given, birth, style, photo: None });
                        let jpeg = photograph(&card, &d, seed);
                        let ocr = ocr.clone();
                        (
                            birth,
                            rt.spawn(async move {
                                let img = image::load_from_memory(&jpeg).expect("jpeg").to_rgb8();
                                ocr.read_document(&img).await
                            }),
                        )
                    })
                    .collect();
                let (mut read, mut unreadable, mut false_reads) = (0u64, 0u64, 0u64);
                for (birth, job) in jobs {
                    let text = rt.block_on(job).expect("join").expect("ocr");
                    match check_birth_date(&text.dates, birth) {
                        BirthDateCheck::Match => read += 1,
                        BirthDateCheck::Unreadable => unreadable += 1,
                        BirthDateCheck::Mismatch => {
                            false_reads += 1;
                            eprintln!("false read of {}: {:?}", birth_text(kind, birth, style), text.text.joined());
                        }
                    }
                }
                let secs = started.elapsed().as_secs_f64() / per_cell as f64;
                println!(
                    "{:<16} {:<16} {:<6} {:>4}% {:>10}% {:>5}% {:>9.2}",
                    format!("{kind:?}"),
                    format!("{style:?}"),
                    dname,
                    read * 100 / per_cell,
                    unreadable * 100 / per_cell,
                    false_reads * 100 / per_cell,
                    secs
                );
                all += per_cell;
                all_read += read;
                all_false += false_reads;
            }
        }
    }
    println!(
        "all: {all} cards, read {:.1}%, false {:.1}%",
        all_read as f64 * 100.0 / all as f64,
        all_false as f64 * 100.0 / all as f64
    );
}
