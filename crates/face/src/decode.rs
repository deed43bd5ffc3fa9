//! Safe image decoding: only JPEG, PNG and WebP; limits on bytes, dimensions and pixels that
//! are checked from the header before any pixel is decoded (decompression bombs), decoder
//! allocation limits, and the EXIF orientation applied so faces are upright.

use std::io::Cursor;

use image::{DynamicImage, ImageDecoder, ImageFormat, ImageReader, RgbImage};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    pub max_bytes: usize,
    pub max_width: u32,
    pub max_height: u32,
    pub max_pixels: u64,
}

impl Default for Limits {
    /// Enough for any phone photo (e.g. 4032×3024 = 12 MP), refusing anything bigger.
    fn default() -> Self {
        Limits { max_bytes: 15 * 1024 * 1024, max_width: 8192, max_height: 8192, max_pixels: 40_000_000 }
    }
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum DecodeError {
    #[error("the file is empty")]
    Empty,
    #[error("the file is larger than {0} bytes")]
    TooManyBytes(usize),
    #[error("not a JPEG, PNG or WebP image")]
    UnsupportedFormat,
    #[error("the image is {width}×{height}; the limit is {max_width}×{max_height} and {max_pixels} pixels")]
    TooLarge { width: u32, height: u32, max_width: u32, max_height: u32, max_pixels: u64 },
    #[error("the image is too small ({0}×{1})")]
    TooSmall(u32, u32),
    #[error("the image data is damaged or truncated")]
    Corrupt,
}

impl DecodeError {
    /// Reason code for the UI and the API.
    pub fn code(&self) -> &'static str {
        match self {
            DecodeError::Empty => "image_empty",
            DecodeError::TooManyBytes(_) => "image_too_many_bytes",
            DecodeError::UnsupportedFormat => "image_unsupported_format",
            DecodeError::TooLarge { .. } => "image_too_large",
            DecodeError::TooSmall(..) => "image_too_small",
            DecodeError::Corrupt => "image_corrupt",
        }
    }
}

/// Decodes `bytes` into an upright RGB image.
pub fn decode(bytes: &[u8], limits: &Limits) -> Result<RgbImage, DecodeError> {
    if bytes.is_empty() {
        return Err(DecodeError::Empty);
    }
    if bytes.len() > limits.max_bytes {
        return Err(DecodeError::TooManyBytes(limits.max_bytes));
    }
    let format = image::guess_format(bytes).map_err(|_| DecodeError::UnsupportedFormat)?;
    if !matches!(format, ImageFormat::Jpeg | ImageFormat::Png | ImageFormat::WebP) {
        return Err(DecodeError::UnsupportedFormat);
    }
    let mut reader = ImageReader::with_format(Cursor::new(bytes), format);
    let mut decoder_limits = image::Limits::default();
    decoder_limits.max_image_width = Some(limits.max_width);
    decoder_limits.max_image_height = Some(limits.max_height);
    // RGBA at 4 bytes a pixel plus decoder scratch space.
    decoder_limits.max_alloc = Some(limits.max_pixels.saturating_mul(8));
    reader.limits(decoder_limits);
    let mut decoder = reader.into_decoder().map_err(|e| classify(&e, limits))?;
    let (width, height) = decoder.dimensions();
    if width > limits.max_width
        || height > limits.max_height
        || u64::from(width) * u64::from(height) > limits.max_pixels
    {
        return Err(too_large(width, height, limits));
    }
    if width < 16 || height < 16 {
        return Err(DecodeError::TooSmall(width, height));
    }
    let orientation = decoder.orientation().ok();
    let mut image = DynamicImage::from_decoder(decoder).map_err(|e| classify(&e, limits))?;
    if let Some(o) = orientation {
        image.apply_orientation(o);
    }
    Ok(image.into_rgb8())
}

fn too_large(width: u32, height: u32, limits: &Limits) -> DecodeError {
    DecodeError::TooLarge {
        width,
        height,
        max_width: limits.max_width,
        max_height: limits.max_height,
        max_pixels: limits.max_pixels,
    }
}

fn classify(e: &image::ImageError, limits: &Limits) -> DecodeError {
    match e {
        image::ImageError::Limits(_) => too_large(0, 0, limits),
        image::ImageError::Unsupported(_) => DecodeError::UnsupportedFormat,
        _ => DecodeError::Corrupt,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use image::{ImageEncoder, Rgb};

    fn png(width: u32, height: u32) -> Vec<u8> {
        let img = RgbImage::from_pixel(width, height, Rgb([120, 90, 60]));
        let mut out = Vec::new();
        image::codecs::png::PngEncoder::new(&mut out)
            .write_image(img.as_raw(), width, height, image::ExtendedColorType::Rgb8)
            .expect("encode");
        out
    }

    #[test]
    fn decodes_a_png() {
        let img = decode(&png(64, 48), &Limits::default()).expect("decode");
        assert_eq!(img.dimensions(), (64, 48));
    }

    #[test]
    fn refuses_hostile_and_broken_input_without_panicking() {
        let limits = Limits::default();
        assert_eq!(decode(&[], &limits), Err(DecodeError::Empty));
        assert_eq!(decode(b"GIF89a....", &limits), Err(DecodeError::UnsupportedFormat));
        assert_eq!(decode(b"hello, not an image", &limits), Err(DecodeError::UnsupportedFormat));
        let good = png(64, 64);
        for cut in [8, 33, good.len() / 2, good.len() - 5] {
            assert!(decode(&good[..cut], &limits).is_err(), "truncated at {cut}");
        }
        let mut flipped = good.clone();
        for b in flipped.iter_mut().skip(60).step_by(7) {
            *b ^= 0x5a;
        }
        assert!(decode(&flipped, &limits).is_err());
        assert!(matches!(decode(&png(8, 8), &limits), Err(DecodeError::TooSmall(8, 8))));
        let small = Limits { max_bytes: 100, ..limits };
        assert_eq!(decode(&good, &small), Err(DecodeError::TooManyBytes(100)));
    }

    #[test]
    fn refuses_a_decompression_bomb_from_its_header() {
        // Valid headers (the PNG's IHDR checksum recomputed) claiming 60000×60000, 65000×65000
        // and 16383×16383 pixels over a 64×64 image: refused as too large from the header, not
        // found corrupt after allocating and decoding (an `image::Limits` refusal is reported as
        // `TooLarge` with 0×0, the decoder never allocating either).
        for (bomb, format) in [
            (png_claiming(60000, 60000), "PNG"),
            (jpeg_claiming(65000, 65000), "JPEG"),
            (webp_claiming(16383, 16383), "WebP"),
        ] {
            let r = decode(&bomb, &Limits::default());
            assert!(matches!(r, Err(DecodeError::TooLarge { .. })), "{format}: {r:?}");
        }
        let tight = Limits { max_pixels: 1000, ..Limits::default() };
        assert!(matches!(decode(&png(64, 64), &tight), Err(DecodeError::TooLarge { width: 64, height: 64, .. })));
        // The helpers change nothing but the declared size.
        assert_eq!(decode(&png_claiming(64, 64), &Limits::default()).map(|i| i.dimensions()), Ok((64, 64)));
        assert_eq!(decode(&jpeg_claiming(64, 64), &Limits::default()).map(|i| i.dimensions()), Ok((64, 64)));
        assert_eq!(decode(&webp_claiming(64, 64), &Limits::default()).map(|i| i.dimensions()), Ok((64, 64)));
    }

    fn rgb(width: u32, height: u32) -> RgbImage {
        RgbImage::from_fn(width, height, |x, y| Rgb([(x * 4) as u8, (y * 4) as u8, 90]))
    }

    fn jpeg(width: u32, height: u32) -> Vec<u8> {
        let mut out = Vec::new();
        image::codecs::jpeg::JpegEncoder::new_with_quality(&mut out, 80)
            .write_image(rgb(width, height).as_raw(), width, height, image::ExtendedColorType::Rgb8)
            .expect("encode");
        out
    }

    fn webp(width: u32, height: u32) -> Vec<u8> {
        let mut out = Vec::new();
        image::codecs::webp::WebPEncoder::new_lossless(&mut out)
            .write_image(rgb(width, height).as_raw(), width, height, image::ExtendedColorType::Rgb8)
            .expect("encode");
        out
    }

    /// CRC-32 (ISO-HDLC), as PNG chunks carry it.
    fn crc32(bytes: &[u8]) -> u32 {
        let mut crc = !0u32;
        for &b in bytes {
            crc ^= u32::from(b);
            for _ in 0..8 {
                crc = if crc & 1 == 1 { (crc >> 1) ^ 0xEDB8_8320 } else { crc >> 1 };
            }
        }
        !crc
    }

    /// A 64×64 PNG whose IHDR claims `width`×`height`, with a correct checksum.
    fn png_claiming(width: u32, height: u32) -> Vec<u8> {
        let mut bytes = png(64, 64);
        bytes[16..20].copy_from_slice(&width.to_be_bytes());
        bytes[20..24].copy_from_slice(&height.to_be_bytes());
        let crc = crc32(&bytes[12..29]);
        bytes[29..33].copy_from_slice(&crc.to_be_bytes());
        bytes
    }

    /// A 64×64 baseline JPEG whose SOF0 segment claims `width`×`height`.
    fn jpeg_claiming(width: u16, height: u16) -> Vec<u8> {
        let mut bytes = jpeg(64, 64);
        let sof = bytes.windows(2).position(|w| w == [0xFF, 0xC0]).expect("SOF0");
        bytes[sof + 5..sof + 7].copy_from_slice(&height.to_be_bytes());
        bytes[sof + 7..sof + 9].copy_from_slice(&width.to_be_bytes());
        bytes
    }

    /// A 64×64 lossless WebP whose VP8L header claims `width`×`height` (1–16383 each: the format
    /// has 16384, which image-webp 0.2 reads as 0, a refused size too).
    fn webp_claiming(width: u32, height: u32) -> Vec<u8> {
        let mut bytes = webp(64, 64);
        assert_eq!(&bytes[12..16], b"VP8L", "a simple lossless file");
        let old = u32::from_le_bytes([bytes[21], bytes[22], bytes[23], bytes[24]]);
        let dims = ((width - 1) & 0x3FFF) | (((height - 1) & 0x3FFF) << 14);
        bytes[21..25].copy_from_slice(&((old & !0x0FFF_FFFF) | dims).to_le_bytes());
        bytes
    }

    /// What any outcome must satisfy: an image within the limits, or an error.
    fn check(result: &Result<RgbImage, DecodeError>, limits: &Limits) -> Result<(), TestCaseError> {
        if let Ok(image) = result {
            let (w, h) = image.dimensions();
            prop_assert!(w <= limits.max_width && h <= limits.max_height, "{w}×{h}");
            prop_assert!(u64::from(w) * u64::from(h) <= limits.max_pixels);
            prop_assert!(w >= 16 && h >= 16);
        }
        Ok(())
    }

    fn valid_files() -> &'static [Vec<u8>; 3] {
        static FILES: std::sync::OnceLock<[Vec<u8>; 3]> = std::sync::OnceLock::new();
        FILES.get_or_init(|| [png(32, 24), jpeg(32, 24), webp(32, 24)])
    }

    use proptest::prelude::*;

    proptest! {
        #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

        #[test]
        fn random_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..2048)) {
            let limits = Limits::default();
            check(&decode(&bytes, &limits), &limits)?;
            // Behind each accepted format's magic, so the decoders themselves see the noise.
            for magic in [&b"\x89PNG\r\n\x1a\n"[..], b"\xFF\xD8\xFF", b"RIFF\0\0\0\0WEBPVP8L", b"RIFF\0\0\0\0WEBPVP8 "] {
                let with_magic = [magic, &bytes].concat();
                check(&decode(&with_magic, &limits), &limits)?;
            }
        }

        #[test]
        fn mutated_images_never_panic(which in 0usize..3, edits in proptest::collection::vec((any::<usize>(), any::<u8>()), 1..6)) {
            let mut bytes = valid_files()[which].clone();
            for (at, byte) in edits {
                // Mostly in the headers, where the sizes and tables are.
                let at = if at % 2 == 0 { at % bytes.len().min(64) } else { at % bytes.len() };
                bytes[at] = byte;
            }
            let limits = Limits::default();
            check(&decode(&bytes, &limits), &limits)?;
        }

        #[test]
        fn truncated_images_never_panic(which in 0usize..3, cut in any::<usize>()) {
            let bytes = &valid_files()[which];
            let limits = Limits::default();
            let r = decode(&bytes[..cut % bytes.len()], &limits);
            check(&r, &limits)?;
        }

        #[test]
        fn declared_sizes_over_the_limits_are_refused_from_the_header(
            width in prop_oneof![16u32..128, 8193u32..0x7FFF_FFFF],
            height in prop_oneof![16u32..128, 8193u32..0x7FFF_FFFF],
        ) {
            let limits = Limits::default();
            let over = width > limits.max_width || height > limits.max_height;
            let jpeg_w = u16::try_from(width).unwrap_or(u16::MAX);
            let jpeg_h = u16::try_from(height).unwrap_or(u16::MAX);
            for (bytes, (w, h)) in [
                (png_claiming(width, height), (width, height)),
                (jpeg_claiming(jpeg_w, jpeg_h), (u32::from(jpeg_w), u32::from(jpeg_h))),
                (webp_claiming(width.min(16383), height.min(16383)), (width.min(16383), height.min(16383))),
            ] {
                let r = decode(&bytes, &limits);
                check(&r, &limits)?;
                if over {
                    prop_assert!(matches!(r, Err(DecodeError::TooLarge { .. })), "{w}×{h}: {r:?}");
                } else if (w, h) != (64, 64) {
                    // The data does not match the header: refused, whatever the reason.
                    prop_assert!(r.is_err() || r.as_ref().map(|i| i.dimensions()) == Ok((w, h)), "{w}×{h}: {r:?}");
                }
            }
        }

        #[test]
        fn tight_limits_hold_on_valid_images(which in 0usize..3, max_pixels in 0u64..768, max_side in 0u32..64) {
            // The images are 32×24 = 768 pixels: always over the pixel cap.
            let limits = Limits { max_width: max_side, max_height: max_side, max_pixels, ..Limits::default() };
            let r = decode(&valid_files()[which], &limits);
            check(&r, &limits)?;
            prop_assert!(matches!(r, Err(DecodeError::TooLarge { .. })), "{:?}", r);
        }
    }
}
