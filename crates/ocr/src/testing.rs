//! Synthetic identity documents for tests and the read-rate evaluation: cards laid out like a
//! 運転免許証, マイナンバーカード or 在留カード (layout only — no real design is copied), text set
//! in Debian's Noto CJK fonts (package `fonts-noto-cjk`), an optional ID photo, and a
//! degradation like a phone photo of the card (blur, tilt and perspective, light, sensor noise,
//! JPEG).

use ab_glyph::{FontVec, PxScale};
use image::{Rgb, RgbImage};
use imageproc::geometric_transformations::{warp, Interpolation, Projection};
use time::Date;

pub const SANS: &str = "/usr/share/fonts/opentype/noto/NotoSansCJK-Regular.ttc";
pub const SERIF: &str = "/usr/share/fonts/opentype/noto/NotoSerifCJK-Regular.ttc";

/// Card size in pixels (ID-1 proportions).
pub const WIDTH: u32 = 1024;
pub const HEIGHT: u32 = 646;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    DriversLicense,
    MyNumberCard,
    ResidenceCard,
}

impl Kind {
    pub const ALL: [Kind; 3] = [Kind::DriversLicense, Kind::MyNumberCard, Kind::ResidenceCard];
}

/// How the birth date is printed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DateStyle {
    /// 「昭和59年 7月19日生」
    Wareki,
    /// 「1984年 7月19日生」 (「1984年07月19日」 on a 在留カード)
    Seireki,
    /// 和暦 with full-width digits: 「昭和５９年７月１９日生」
    WarekiFullWidth,
}

/// One card's contents.
#[derive(Debug, Clone)]
pub struct Card<'a> {
    pub kind: Kind,
    /// Kanji (or, on a 在留カード, Latin capitals) as printed.
    pub family: &'a str,
    pub given: &'a str,
    pub birth: Date,
    pub style: DateStyle,
    /// ID photo placed at the right (a square face picture, scaled to 190×190 in a 260×320
    /// frame).
    pub photo: Option<&'a RgbImage>,
}

fn font(path: &str) -> FontVec {
    let bytes = std::fs::read(path).unwrap_or_else(|e| panic!("{path} (Debian package fonts-noto-cjk): {e}"));
    FontVec::try_from_vec_and_index(bytes, 0).unwrap_or_else(|e| panic!("{path}: {e}"))
}

fn full_width(s: &str) -> String {
    s.chars().map(|c| if c.is_ascii_digit() { char::from_u32(c as u32 + 0xFEE0).unwrap_or(c) } else { c }).collect()
}

/// The birth date as the card prints it, with 「生」 where the card has it.
pub fn birth_text(kind: Kind, birth: Date, style: DateStyle) -> String {
    let (m, d) = (u8::from(birth.month()), birth.day());
    if kind == Kind::ResidenceCard {
        return format!("{}年{m:02}月{d:02}日", birth.year());
    }
    match style {
        DateStyle::Seireki => format!("{}年{m:>2}月{d:>2}日生", birth.year()),
        DateStyle::Wareki | DateStyle::WarekiFullWidth => {
            let (era, year) = domain::evidence::to_wareki(birth).unwrap_or(("", birth.year()));
            let year = if year == 1 { "元".to_string() } else { year.to_string() };
            let text = format!("{era}{year}年{m:>2}月{d:>2}日生");
            if style == DateStyle::WarekiFullWidth {
                full_width(&text)
            } else {
                text
            }
        }
    }
}

/// Renders the card, 1024×646.
pub fn render(card: &Card<'_>) -> RgbImage {
    let serif = font(SERIF);
    let sans = font(SANS);
    let (bg, band) = match card.kind {
        Kind::DriversLicense => (Rgb([236, 240, 228]), Rgb([150, 190, 230])),
        Kind::MyNumberCard => (Rgb([242, 240, 246]), Rgb([215, 200, 230])),
        Kind::ResidenceCard => (Rgb([232, 238, 246]), Rgb([190, 210, 235])),
    };
    // A faint guilloche-like pattern, as printed cards have.
    let mut img = RgbImage::from_fn(WIDTH, HEIGHT, |x, y| {
        let wave = ((x as f32 / 23.0).sin() + (y as f32 / 17.0).cos()) * 3.0;
        Rgb([(bg[0] as f32 + wave) as u8, (bg[1] as f32 + wave) as u8, (bg[2] as f32 - wave) as u8])
    });
    let ink = Rgb([25, 25, 30]);
    let text = |img: &mut RgbImage, f: &FontVec, x: i32, y: i32, size: f32, s: &str| {
        imageproc::drawing::draw_text_mut(img, ink, x, y, PxScale::from(size), f, s);
    };
    let birth = birth_text(card.kind, card.birth, card.style);
    let name = format!("{} {}", card.family, card.given);
    match card.kind {
        Kind::DriversLicense => {
            text(&mut img, &serif, 40, 36, 40.0, &format!("氏名  {name}"));
            text(&mut img, &serif, 560, 40, 36.0, &birth);
            text(&mut img, &serif, 40, 110, 32.0, "住所  東京都千代田区霞が関二丁目1番2号");
            text(&mut img, &serif, 40, 170, 30.0, "交付  令和03年08月10日  12345");
            imageproc::drawing::draw_filled_rect_mut(
                &mut img,
                imageproc::rect::Rect::at(30, 225).of_size(640, 56),
                band,
            );
            text(&mut img, &serif, 40, 232, 36.0, "2026年(令和08年)08月19日まで有効");
            text(&mut img, &sans, 40, 320, 28.0, "免許の条件等  眼鏡等");
            text(&mut img, &serif, 40, 560, 34.0, "運転免許証");
            text(&mut img, &sans, 40, 500, 30.0, "第 123456789012 号");
        }
        Kind::MyNumberCard => {
            text(&mut img, &sans, 40, 40, 26.0, "氏名");
            text(&mut img, &sans, 120, 32, 42.0, &name);
            text(&mut img, &sans, 40, 120, 26.0, "住所");
            text(&mut img, &sans, 120, 118, 30.0, "東京都千代田区霞が関二丁目1番2号");
            text(&mut img, &sans, 40, 220, 34.0, &format!("{birth}   性別 女"));
            imageproc::drawing::draw_filled_rect_mut(
                &mut img,
                imageproc::rect::Rect::at(30, 300).of_size(640, 52),
                band,
            );
            text(&mut img, &sans, 40, 308, 30.0, "2031年 7月19日まで有効");
            text(&mut img, &sans, 40, 560, 36.0, "個人番号カード");
        }
        Kind::ResidenceCard => {
            text(&mut img, &sans, 40, 24, 40.0, "在留カード");
            text(&mut img, &sans, 40, 100, 24.0, "氏名");
            text(&mut img, &sans, 120, 92, 40.0, &name.to_uppercase());
            text(&mut img, &sans, 40, 170, 24.0, "生年月日");
            text(&mut img, &sans, 160, 164, 34.0, &format!("{birth}  性別 F."));
            text(&mut img, &sans, 40, 240, 24.0, "住居地");
            text(&mut img, &sans, 160, 234, 30.0, "東京都千代田区霞が関二丁目1番2号");
            imageproc::drawing::draw_filled_rect_mut(
                &mut img,
                imageproc::rect::Rect::at(30, 300).of_size(640, 52),
                band,
            );
            text(&mut img, &sans, 40, 308, 30.0, "在留期間  3年 (2029年04月01日)");
            text(&mut img, &sans, 40, 560, 30.0, "番号 AB12345678CD");
        }
    }
    let mut frame = RgbImage::from_pixel(260, 320, Rgb([200, 212, 224]));
    if let Some(photo) = card.photo {
        let p = image::imageops::resize(photo, 190, 190, image::imageops::FilterType::Triangle);
        image::imageops::overlay(&mut frame, &p, 35, 60);
    }
    image::imageops::overlay(&mut img, &frame, 720, 200);
    img
}

/// How a phone photo of a card differs from the card.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Degradation {
    /// Gaussian blur sigma in card pixels.
    pub blur: f32,
    /// JPEG quality of the photo.
    pub jpeg_quality: u8,
    /// In-plane tilt in degrees.
    pub tilt_degrees: f32,
    /// Perspective: how much nearer one side is (0 = flat; 0.05 = 5% taller).
    pub perspective: f32,
    /// Added to every channel.
    pub brightness: i16,
    /// Amplitude of the sensor noise.
    pub noise: u8,
}

impl Degradation {
    pub const NONE: Degradation =
        Degradation { blur: 0.0, jpeg_quality: 95, tilt_degrees: 0.0, perspective: 0.0, brightness: 0, noise: 0 };
    /// A careful phone photo.
    pub const PHONE: Degradation =
        Degradation { blur: 0.8, jpeg_quality: 75, tilt_degrees: 2.0, perspective: 0.03, brightness: -10, noise: 6 };
    /// A hasty one.
    pub const POOR: Degradation =
        Degradation { blur: 1.4, jpeg_quality: 55, tilt_degrees: 3.5, perspective: 0.06, brightness: -25, noise: 12 };
}

struct Lcg(u64);
impl Lcg {
    fn next(&mut self) -> u32 {
        self.0 = self.0.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1_442_695_040_888_963_407);
        (self.0 >> 33) as u32
    }
    /// -1.0..1.0
    fn signed(&mut self) -> f32 {
        (self.next() % 20_001) as f32 / 10_000.0 - 1.0
    }
}

/// A 1280×960 "phone photo" of `card` on a darker table, degraded as `d` says; `seed` varies
/// the tilt direction, the perspective side and the noise. Returned as JPEG bytes.
pub fn photograph(card: &RgbImage, d: &Degradation, seed: u64) -> Vec<u8> {
    let mut rng = Lcg(seed ^ 0x9e37_79b9_7f4a_7c15);
    let (fw, fh) = (1280.0f32, 960.0f32);
    let (cw, ch) = (card.width() as f32, card.height() as f32);
    // The card fills ~80% of the frame's width, centred, tilted and seen at an angle.
    let scale = 0.8 * fw / cw;
    let (w, h) = (cw * scale, ch * scale);
    let (cx, cy) = (fw / 2.0 + rng.signed() * 20.0, fh / 2.0 + rng.signed() * 20.0);
    let angle = (d.tilt_degrees * if rng.next().is_multiple_of(2) { 1.0 } else { -1.0 }).to_radians();
    let near_left = rng.next().is_multiple_of(2);
    let corners = [(-w / 2.0, -h / 2.0), (w / 2.0, -h / 2.0), (w / 2.0, h / 2.0), (-w / 2.0, h / 2.0)];
    let to: Vec<(f32, f32)> = corners
        .iter()
        .map(|&(x, y)| {
            // The nearer side looks taller.
            let side = if (x < 0.0) == near_left { 1.0 + d.perspective } else { 1.0 - d.perspective };
            let y = y * side;
            (cx + x * angle.cos() - y * angle.sin(), cy + x * angle.sin() + y * angle.cos())
        })
        .collect();
    let from = [(0.0, 0.0), (cw, 0.0), (cw, ch), (0.0, ch)];
    let to4 = [to[0], to[1], to[2], to[3]];
    let mut framed = RgbImage::from_pixel(fw as u32, fh as u32, Rgb([70, 62, 55]));
    image::imageops::overlay(&mut framed, card, 0, 0);
    let projection = Projection::from_control_points(from, to4).unwrap_or(Projection::scale(scale, scale));
    let mut photo = warp(&framed, &projection, Interpolation::Bilinear, Rgb([70, 62, 55]));
    // Outside the card (the overlay put it at the origin) is table.
    if d.blur > 0.0 {
        photo = imageproc::filter::gaussian_blur_f32(&photo, d.blur * scale);
    }
    for p in photo.pixels_mut() {
        let n = if d.noise > 0 { (rng.next() % (2 * d.noise as u32 + 1)) as i16 - d.noise as i16 } else { 0 };
        for c in p.0.iter_mut() {
            *c = (*c as i16 + d.brightness + n).clamp(0, 255) as u8;
        }
    }
    let mut jpeg = Vec::new();
    image::codecs::jpeg::JpegEncoder::new_with_quality(&mut jpeg, d.jpeg_quality)
        .encode_image(&photo)
        .unwrap_or_else(|e| panic!("jpeg: {e}"));
    jpeg
}
