//! OCR of identity documents with Debian's `tesseract` (packages `tesseract-ocr`,
//! `tesseract-ocr-jpn`), run as a child process:
//! - the child only ever sees a grayscale PNG this crate encoded from an already decoded
//!   image, never the member's upload, and a crash or a hang in the C library cannot take the
//!   server with it (a time limit kills it);
//! - at most `concurrency` children run at once (a burst queues), each on one thread;
//! - the result is lines of text with tesseract's word confidences (0–100), read from its TSV.
//!
//! What the text means (dates, names) is decided by `domain::evidence`; [`Ocr::read_document`]
//! reads a document's front the way the eKYC service uses it.

use std::process::Stdio;
use std::sync::Arc;
use std::time::Duration;

use domain::evidence::{dates_in, DateReading};
use image::{DynamicImage, GrayImage, RgbImage};
use tokio::io::AsyncWriteExt;
use tokio::sync::Semaphore;

#[cfg(feature = "testing")]
pub mod testing;

#[derive(Debug, thiserror::Error)]
pub enum OcrError {
    #[error("the OCR program could not be started: {0}")]
    Spawn(std::io::Error),
    #[error("the OCR program failed: {0}")]
    Failed(String),
    #[error("the OCR program took longer than {0:?}")]
    Timeout(Duration),
    #[error("the image could not be prepared for OCR")]
    Encode,
    #[error("the OCR service is shutting down")]
    Closed,
}

/// How OCR runs.
#[derive(Debug, Clone)]
pub struct Settings {
    /// The `tesseract` program (a path, or a name looked up in `PATH`).
    pub program: String,
    /// Tesseract's language models, e.g. `jpn+eng`.
    pub languages: String,
    /// Children at once.
    pub concurrency: usize,
    pub timeout: Duration,
    /// Images are scaled so their longer side is about this many pixels before OCR (card text
    /// is then ~30–40 px high, where tesseract reads best).
    pub target_long_side: u32,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            program: "tesseract".into(),
            languages: "jpn".into(),
            concurrency: 1,
            timeout: Duration::from_secs(30),
            target_long_side: 1600,
        }
    }
}

/// One line of text with the mean confidence of its words (0–100), and the lowest confidence
/// of its words that hold digits (OCR's typical error on a date is a dropped digit, and the
/// words around it then come with a low confidence).
#[derive(Debug, Clone, PartialEq)]
pub struct Line {
    pub text: String,
    pub confidence: f32,
    pub digits_confidence: f32,
}

/// What was read from an image.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Text {
    pub lines: Vec<Line>,
}

impl Text {
    /// All lines, one per row.
    pub fn joined(&self) -> String {
        self.lines.iter().map(|l| l.text.as_str()).collect::<Vec<_>>().join("\n")
    }
}

/// A document's text with the dates read in it.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct DocumentText {
    pub text: Text,
    /// Every date, with the lowest confidence of its line's words that hold digits.
    pub dates: Vec<DateReading>,
}

impl DocumentText {
    pub fn of(text: Text) -> DocumentText {
        let dates = text
            .lines
            .iter()
            .flat_map(|line| {
                dates_in(&line.text).into_iter().map(|d| DateReading { confidence: line.digits_confidence, ..d })
            })
            .collect();
        DocumentText { text, dates }
    }
}

/// How tesseract splits the image into lines (its page segmentation mode).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Segmentation {
    /// One uniform block of text (`--psm 6`): reads most cards best, but can drop the top
    /// lines of a licence with ruled borders.
    Block,
    /// A single column of text of variable sizes (`--psm 4`): the fallback.
    Column,
}

/// The OCR runner; cheap to clone.
#[derive(Debug, Clone)]
pub struct Ocr {
    settings: Arc<Settings>,
    permits: Arc<Semaphore>,
}

impl Ocr {
    pub fn new(settings: Settings) -> Ocr {
        let permits = Arc::new(Semaphore::new(settings.concurrency.max(1)));
        Ocr { settings: Arc::new(settings), permits }
    }

    pub fn settings(&self) -> &Settings {
        &self.settings
    }

    /// Whether the program answers (`tesseract --version`) and has the languages.
    pub async fn check(&self) -> Result<(), OcrError> {
        let out = tokio::process::Command::new(&self.settings.program)
            .arg("--list-langs")
            .stdin(Stdio::null())
            .kill_on_drop(true)
            .output()
            .await
            .map_err(OcrError::Spawn)?;
        let listed = String::from_utf8_lossy(&out.stdout);
        let missing: Vec<&str> =
            self.settings.languages.split('+').filter(|l| !listed.lines().any(|have| have.trim() == *l)).collect();
        if missing.is_empty() {
            Ok(())
        } else {
            Err(OcrError::Failed(format!("language models missing: {}", missing.join(", "))))
        }
    }

    /// Reads the text of a decoded image (a document photo) as one uniform block of text
    /// (page segmentation mode 6, the best on cards in the evaluation; see README).
    pub async fn read(&self, image: &RgbImage) -> Result<Text, OcrError> {
        self.read_with(image, Segmentation::Block).await
    }

    /// An identity document's front: its text and the dates in it (see
    /// `domain::evidence::dates_in`) with the confidence of their digits. One block of text
    /// first; when no birth date is marked in it, once more as a column (a licence's ruled
    /// border can make the first pass drop its top lines), keeping the second reading then.
    pub async fn read_document(&self, image: &RgbImage) -> Result<DocumentText, OcrError> {
        let png = self.png_of(image).await?;
        let first = DocumentText::of(self.read_png(png.clone(), Segmentation::Block).await?);
        if first.dates.iter().any(|d| d.birth_label) {
            return Ok(first);
        }
        Ok(DocumentText::of(self.read_png(png, Segmentation::Column).await?))
    }

    /// [`Ocr::read`] with another page segmentation.
    pub async fn read_with(&self, image: &RgbImage, segmentation: Segmentation) -> Result<Text, OcrError> {
        let png = self.png_of(image).await?;
        self.read_png(png, segmentation).await
    }

    /// The image as tesseract gets it (see [`prepare`]); scaling and encoding is CPU work, so
    /// it runs off the async workers.
    async fn png_of(&self, image: &RgbImage) -> Result<Vec<u8>, OcrError> {
        let (copy, side) = (image.clone(), self.settings.target_long_side);
        tokio::task::spawn_blocking(move || prepare(&copy, side)).await.map_err(|_| OcrError::Encode)?
    }

    async fn read_png(&self, png: Vec<u8>, segmentation: Segmentation) -> Result<Text, OcrError> {
        let _permit = self.permits.acquire().await.map_err(|_| OcrError::Closed)?;
        let tsv = tokio::time::timeout(self.settings.timeout, self.run(png, segmentation))
            .await
            .map_err(|_| OcrError::Timeout(self.settings.timeout))??;
        Ok(parse_tsv(&tsv))
    }

    async fn run(&self, png: Vec<u8>, segmentation: Segmentation) -> Result<String, OcrError> {
        let psm = match segmentation {
            Segmentation::Block => "6",
            Segmentation::Column => "4",
        };
        let mut child = tokio::process::Command::new(&self.settings.program)
            .args(["stdin", "stdout", "-l", &self.settings.languages, "--psm", psm, "tsv"])
            // One thread per child: concurrency is bounded by the semaphore instead.
            .env("OMP_THREAD_LIMIT", "1")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .map_err(OcrError::Spawn)?;
        let mut stdin = child.stdin.take().ok_or_else(|| OcrError::Failed("no stdin".into()))?;
        // Written while the child runs; it reads the whole image before it writes anything.
        let writer = tokio::spawn(async move {
            let written = stdin.write_all(&png).await;
            drop(stdin);
            written
        });
        let out = child.wait_with_output().await.map_err(OcrError::Spawn)?;
        writer.await.map_err(|e| OcrError::Failed(e.to_string()))?.map_err(|e| OcrError::Failed(e.to_string()))?;
        if !out.status.success() {
            // tesseract's own message; it never contains the image's text.
            let stderr = String::from_utf8_lossy(&out.stderr);
            return Err(OcrError::Failed(format!("{}: {}", out.status, stderr.trim())));
        }
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    }
}

/// Grayscale, scaled towards `target_long_side`, as PNG.
pub fn prepare(image: &RgbImage, target_long_side: u32) -> Result<Vec<u8>, OcrError> {
    let (w, h) = image.dimensions();
    let long = w.max(h).max(1);
    let gray: GrayImage = DynamicImage::ImageRgb8(image.clone()).to_luma8();
    let scaled = if long == target_long_side {
        gray
    } else {
        let f = f64::from(target_long_side) / f64::from(long);
        let (nw, nh) = (((f64::from(w) * f).round() as u32).max(1), ((f64::from(h) * f).round() as u32).max(1));
        image::imageops::resize(&gray, nw, nh, image::imageops::FilterType::CatmullRom)
    };
    let mut out = std::io::Cursor::new(Vec::new());
    scaled.write_to(&mut out, image::ImageFormat::Png).map_err(|_| OcrError::Encode)?;
    Ok(out.into_inner())
}

/// Tesseract's TSV: one row per word (level 5) with its block, paragraph and line numbers and
/// its confidence. Words are joined per line with a space.
pub fn parse_tsv(tsv: &str) -> Text {
    // (block, paragraph, line) key → its words with their confidence.
    type Words = Vec<(String, f32)>;
    let mut lines: Vec<((u32, u32, u32, u32), Words)> = Vec::new();
    for row in tsv.lines().skip(1) {
        let cols: Vec<&str> = row.split('\t').collect();
        if cols.len() < 12 || cols[0] != "5" {
            continue;
        }
        let num = |i: usize| cols[i].trim().parse::<u32>().unwrap_or(0);
        let key = (num(1), num(2), num(3), num(4));
        let conf: f32 = cols[10].trim().parse().unwrap_or(-1.0);
        let word = cols[11..].join("\t").trim().to_string();
        if word.is_empty() || conf < 0.0 {
            continue;
        }
        match lines.last_mut() {
            Some((k, words)) if *k == key => words.push((word, conf)),
            _ => lines.push((key, vec![(word, conf)])),
        }
    }
    Text {
        lines: lines
            .into_iter()
            .map(|(_, words)| {
                let confidence = words.iter().map(|(_, c)| c).sum::<f32>() / words.len() as f32;
                let digits_confidence = words
                    .iter()
                    .filter(|(w, _)| w.chars().any(char::is_numeric))
                    .map(|(_, c)| *c)
                    .reduce(f32::min)
                    .unwrap_or(confidence);
                let text = words.into_iter().map(|(w, _)| w).collect::<Vec<_>>().join(" ");
                Line { text, confidence, digits_confidence }
            })
            .collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tsv_words_become_lines_with_mean_confidence() {
        let tsv = "level\tpage_num\tblock_num\tpar_num\tline_num\tword_num\tleft\ttop\twidth\theight\tconf\ttext\n\
                   1\t1\t0\t0\t0\t0\t0\t0\t100\t100\t-1\t\n\
                   5\t1\t1\t1\t1\t1\t0\t0\t10\t10\t90\t昭和\n\
                   5\t1\t1\t1\t1\t2\t0\t0\t10\t10\t70\t59年\n\
                   5\t1\t2\t1\t1\t1\t0\t0\t10\t10\t50\t交付\n\
                   5\t1\t2\t1\t1\t2\t0\t0\t10\t10\t-1\t \n";
        let text = parse_tsv(tsv);
        assert_eq!(
            text.lines,
            vec![
                Line { text: "昭和 59年".into(), confidence: 80.0, digits_confidence: 70.0 },
                Line { text: "交付".into(), confidence: 50.0, digits_confidence: 50.0 }
            ]
        );
        assert_eq!(text.joined(), "昭和 59年\n交付");
    }

    #[test]
    fn garbage_tsv_is_no_text() {
        assert_eq!(parse_tsv("nothing\there\n5\tx"), Text::default());
    }

    #[test]
    fn prepared_images_are_gray_png_at_the_target_size() {
        let img = RgbImage::from_pixel(800, 500, image::Rgb([200, 10, 10]));
        let png = prepare(&img, 1600).expect("png");
        let back = image::load_from_memory(&png).expect("decode");
        assert_eq!((back.width(), back.height()), (1600, 1000));
        assert!(matches!(back, DynamicImage::ImageLuma8(_)));
    }

    #[tokio::test]
    async fn a_missing_program_is_an_error_not_a_panic() {
        let ocr = Ocr::new(Settings { program: "/nonexistent/tesseract".into(), ..Settings::default() });
        let img = RgbImage::from_pixel(20, 20, image::Rgb([255, 255, 255]));
        assert!(matches!(ocr.read(&img).await, Err(OcrError::Spawn(_))));
        assert!(ocr.check().await.is_err());
    }
}
