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
        // A valid PNG header claiming 60000×60000 pixels: refused before decoding.
        let mut bomb = png(64, 64);
        bomb[16..20].copy_from_slice(&60000u32.to_be_bytes());
        bomb[20..24].copy_from_slice(&60000u32.to_be_bytes());
        let r = decode(&bomb, &Limits::default());
        assert!(matches!(r, Err(DecodeError::TooLarge { .. }) | Err(DecodeError::Corrupt)), "{r:?}");
        let tight = Limits { max_pixels: 1000, ..Limits::default() };
        assert!(matches!(decode(&png(64, 64), &tight), Err(DecodeError::TooLarge { width: 64, height: 64, .. })));
    }
}
