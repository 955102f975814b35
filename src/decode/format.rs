//! Which format a file is, from its bytes, and the decoders of the formats the `image` crate
//! does not read: HEIC and AVIF ([`super::heif`], through the system's libheif, with the
//! `heif` feature), JPEG XL ([`super::jxl`]) and camera RAW ([`super::raw`], the embedded
//! preview). A phone's library is mostly HEIC and a camera's folder holds RAW files beside
//! the JPEGs: without these, such folders would look empty.
//!
//! Sniffing never trusts a name. A RAW file that is built like a TIFF (DNG, NEF, ARW, CR2)
//! starts like any TIFF; it is told apart by its tags once the whole file is read, so that
//! the TIFF decoder is not handed a camera's file (it would show the tiny thumbnail or fail).

use image::{ImageFormat, RgbImage};

use super::heif::{self, HeifKind};
use super::jxl;
use super::raw::{self, RawKind};
use super::{DecodedImage, FORMATS, MAX_DECODE_BYTES};

/// A picture format lookalike reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// JPEG, PNG, GIF, WebP, BMP or TIFF, read by the `image` crate.
    Common(ImageFormat),
    /// HEIC or AVIF: HEIF containers, read by libheif.
    Heif(HeifKind),
    JpegXl,
    /// A camera's RAW file, shown by its embedded JPEG preview.
    Raw(RawKind),
}

impl Format {
    /// The format's name, as the user knows it.
    pub fn name(self) -> &'static str {
        match self {
            Format::Common(ImageFormat::Jpeg) => "JPEG",
            Format::Common(ImageFormat::Png) => "PNG",
            Format::Common(ImageFormat::Gif) => "GIF",
            Format::Common(ImageFormat::WebP) => "WebP",
            Format::Common(ImageFormat::Bmp) => "BMP",
            Format::Common(ImageFormat::Tiff) => "TIFF",
            Format::Common(_) => "image",
            Format::Heif(HeifKind::Heic) => "HEIC",
            Format::Heif(HeifKind::Avif) => "AVIF",
            Format::JpegXl => "JPEG XL",
            Format::Raw(kind) => kind.name(),
        }
    }
}

/// The format of a file's leading bytes, if it is one lookalike reads. A TIFF-built RAW
/// shows as TIFF here; [`sniff_whole`] tells them apart.
pub fn sniff_format(head: &[u8]) -> Option<Format> {
    if let Some(kind) = raw::sniff(head) {
        return Some(Format::Raw(kind));
    }
    if let Some(kind) = heif::sniff(head) {
        return Some(Format::Heif(kind));
    }
    if jxl::sniff(head) {
        return Some(Format::JpegXl);
    }
    image::guess_format(head)
        .ok()
        .filter(|f| FORMATS.contains(f))
        .map(Format::Common)
}

/// The format of a whole file: [`sniff_format`], with TIFF-built RAW files told apart.
pub fn sniff_whole(bytes: &[u8]) -> Option<Format> {
    match sniff_format(bytes) {
        Some(Format::Common(ImageFormat::Tiff)) => {
            Some(raw::sniff_tiff(bytes).map_or(Format::Common(ImageFormat::Tiff), Format::Raw))
        }
        other => other,
    }
}

/// Formats that lookalike recognises but does not read, named, so that the user hears what
/// the file is rather than "not an image".
pub fn unsupported_format(head: &[u8]) -> Option<&'static str> {
    const KNOWN: &[(&[u8], &str)] = &[
        (b"8BPS", "Photoshop (PSD)"),
        (b"%PDF", "PDF"),
        (b"\x00\x00\x00\x0cjP  \r\n\x87\n", "JPEG 2000"),
        (b"\xff\x4f\xff\x51", "JPEG 2000"),
        (b"gimp xcf", "GIMP (XCF)"),
    ];
    if let Some(&(_, name)) = KNOWN.iter().find(|(magic, _)| head.starts_with(magic)) {
        return Some(name);
    }
    let text = String::from_utf8_lossy(&head[..head.len().min(256)]).to_ascii_lowercase();
    if text.contains("<svg") {
        return Some("SVG (a drawing, not pixels)");
    }
    match image::guess_format(head) {
        Ok(f) if !FORMATS.contains(&f) => Some(f.extensions_str().first().copied().unwrap_or("")),
        _ => None,
    }
    .filter(|name| !name.is_empty())
}

/// Decodes a file of a format the `image` crate does not read; `None` for those it does.
/// `min_shorter` is what the caller needs of the shorter side; `None` asks for the whole
/// picture at its full size.
pub fn decode_other(
    bytes: &[u8],
    min_shorter: Option<u32>,
) -> Option<Result<DecodedImage, String>> {
    let format = sniff_whole(bytes)?;
    let decoded = match format {
        Format::Common(_) => return None,
        Format::Heif(kind) => decode_heif(bytes, kind, min_shorter),
        Format::JpegXl => jxl::decode(bytes).map(|rgb| {
            let size = rgb.dimensions();
            (rgb, size)
        }),
        Format::Raw(_) => return Some(decode_raw(bytes, min_shorter)),
    };
    Some(decoded.map(|(rgb, full_size)| DecodedImage {
        rgb,
        format,
        full_size,
        held: None,
    }))
}

#[cfg(feature = "heif")]
fn decode_heif(
    bytes: &[u8],
    _kind: HeifKind,
    min_shorter: Option<u32>,
) -> Result<(RgbImage, (u32, u32)), String> {
    // A thumbnail item serves when it is at least twice what is needed; u32::MAX rules
    // every thumbnail out.
    heif::decode(bytes, min_shorter.unwrap_or(u32::MAX))
}

#[cfg(not(feature = "heif"))]
fn decode_heif(
    _bytes: &[u8],
    kind: HeifKind,
    _min_shorter: Option<u32>,
) -> Result<(RgbImage, (u32, u32)), String> {
    let name = Format::Heif(kind).name();
    Err(format!(
        "{name}: this build of lookalike reads no HEIC or AVIF (it was built without the \
         `heif` feature, which needs the system's libheif)"
    ))
}

/// A RAW file, by its largest embedded JPEG preview, turned as the camera says (the
/// preview's own EXIF, if any, is not applied on top).
fn decode_raw(bytes: &[u8], min_shorter: Option<u32>) -> Result<DecodedImage, String> {
    let preview = raw::preview(bytes)?;
    let rgb = match min_shorter {
        Some(min_shorter) => raw::decode_preview_for(&preview, min_shorter)?,
        None => raw::decode_preview(&preview)?,
    };
    Ok(DecodedImage {
        rgb,
        format: Format::Raw(preview.kind),
        full_size: preview.upright_size(),
        held: None,
    })
}

/// What decoding a file of a format the `image` crate does not read holds besides its bytes,
/// from its header (each decoder says what it holds). `None` for the other formats;
/// `Some(None)` where the header cannot be read. A picture refused for its size costs nothing:
/// it is refused before it allocates.
pub fn other_cost(bytes: &[u8]) -> Option<Option<u64>> {
    match sniff_whole(bytes)? {
        Format::Common(_) => None,
        Format::Heif(_) => Some(heif_cost(bytes)),
        Format::JpegXl => Some(jxl::size(bytes).ok().map(|(w, h)| {
            match u64::from(w) * u64::from(h) * 3 > MAX_DECODE_BYTES {
                true => 0,
                false => jxl::working_bytes(w, h),
            }
        })),
        Format::Raw(_) => Some(raw::preview(bytes).ok().map(|p| p.pixel_bytes())),
    }
}

#[cfg(feature = "heif")]
fn heif_cost(bytes: &[u8]) -> Option<u64> {
    let (w, h) = heif::size(bytes).ok()?;
    let pixels = u64::from(w) * u64::from(h);
    match pixels * 3 > MAX_DECODE_BYTES {
        true => Some(0), // refused before it allocates
        false => Some(pixels * heif::BYTES_HELD_PER_PIXEL),
    }
}

#[cfg(not(feature = "heif"))]
fn heif_cost(_bytes: &[u8]) -> Option<u64> {
    Some(0) // refused at once
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_lookalike_does_not_read_are_named() {
        assert_eq!(unsupported_format(b"8BPS\x00\x01"), Some("Photoshop (PSD)"));
        assert_eq!(unsupported_format(b"%PDF-1.7\n"), Some("PDF"));
        assert_eq!(
            unsupported_format(b"<?xml version=\"1.0\"?>\n<svg xmlns="),
            Some("SVG (a drawing, not pixels)")
        );
        assert_eq!(unsupported_format(b"hello, world"), None);
    }
}
