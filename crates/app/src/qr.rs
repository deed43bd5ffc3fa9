//! The landing page's 2次元コード (QR code) of the app's public URL, as inline SVG.

use qrcode::render::svg;
use qrcode::{EcLevel, QrCode};

pub fn svg(url: &str) -> Result<String, String> {
    let code = QrCode::with_error_correction_level(url.as_bytes(), EcLevel::M).map_err(|e| e.to_string())?;
    let image = code
        .render::<svg::Color>()
        .min_dimensions(200, 200)
        .dark_color(svg::Color("#000000"))
        .light_color(svg::Color("#ffffff"))
        .build();
    // Inline in HTML: drop the XML declaration, label the image for screen readers.
    let start = image.find("<svg").ok_or("renderer returned no <svg>")?;
    Ok(image[start..].replacen("<svg", "<svg role=\"img\" aria-label=\"QR code\"", 1))
}

#[cfg(test)]
mod tests {
    #[test]
    fn renders_inline_svg() {
        let s = super::svg("http://127.0.0.1:8080").expect("svg");
        assert!(s.starts_with("<svg role=\"img\""));
        assert!(s.contains("<path") || s.contains("<rect"));
        assert!(!s.contains("<?xml"));
    }
}
