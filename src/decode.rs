//! Turns a file into pixels, and pixels into a model input.
//!
//! The format is detected from the file's content, never its extension; EXIF orientation is
//! applied; and decoder memory limits are set so that a crafted or enormous file fails with a
//! clear error instead of allocating gigabytes. Preprocessing follows the reference model's
//! contract: shorter side to `resize_shorter` with antialiased bilinear filtering (Pillow's
//! algorithm), centre crop, then the model's normalisation, laid out CHW.
//!
//! A file's decode first reserves what its header says it will hold from one budget for the
//! whole process ([`budget`]), so that many threads of large pictures cannot add up to more
//! memory than one machine has.

mod budget;
pub mod format;
pub mod heif;
pub mod jxl;
pub mod raw;
pub mod scaled_jpeg;

use std::io::{BufRead, BufReader, Read, Seek};
use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};

use fast_image_resize::images::{Image, ImageRef};
use fast_image_resize::{FilterType, PixelType, ResizeAlg, ResizeOptions, Resizer};
use image::{DynamicImage, ImageDecoder, ImageFormat, ImageReader, RgbImage};

use crate::error::{Error, Result};
use crate::model::{Normalisation, Preprocess};

use budget::Reservation;
pub use budget::DECODE_BUDGET_BYTES;
pub use format::{sniff_format, Format};
pub use scaled_jpeg::scale_eighths as jpeg_scale_eighths;

/// The most memory one decode may ask for. A 12-megapixel photo needs 36 MB as RGB; this
/// admits about 85 megapixels and refuses decompression bombs before they allocate.
pub const MAX_DECODE_BYTES: u64 = 256 * 1024 * 1024;

/// Longest side we accept. Wider panoramas are still fine while they fit `MAX_DECODE_BYTES`.
pub const MAX_SIDE: u32 = 100_000;

/// A decoded image, upright, as 8-bit RGB.
pub struct DecodedImage {
    pub rgb: RgbImage,
    pub format: Format,
    /// The upright image's full size. It is larger than `rgb` when a JPEG was decoded at a
    /// fraction of its size (see [`decode_file_for`]).
    pub full_size: (u32, u32),
    /// The part of the decode budget that `rgb` holds, given back with it (for a file).
    held: Option<Reservation>,
}

/// Which formats lookalike reads with the `image` crate; [`format`] adds the others.
pub const FORMATS: &[ImageFormat] = &[
    ImageFormat::Jpeg,
    ImageFormat::Png,
    ImageFormat::Gif,
    ImageFormat::WebP,
    ImageFormat::Bmp,
    ImageFormat::Tiff,
];

/// Largest file we read into memory; a bigger one is refused before reading.
pub const MAX_FILE_BYTES: u64 = 512 * 1024 * 1024;

/// How many image files have been decoded by this process; the index's tests use it to prove
/// that a cached folder opens without touching its originals.
static FILES_DECODED: AtomicUsize = AtomicUsize::new(0);

pub fn files_decoded() -> usize {
    FILES_DECODED.load(Ordering::Relaxed)
}

/// Reads, decodes and orients one image file.
pub fn decode_file(path: &Path) -> Result<DecodedImage> {
    decode_file_within_budget(path, decode_bytes)
}

/// Reads and decodes one image file for a use that needs at least `min_shorter` pixels on the
/// shorter side. A JPEG far larger than that is decoded at a half, a quarter or an eighth of its
/// size (see [`decode_jpeg_reduced`]); anything else decodes in full, as [`decode_file`] does.
pub fn decode_file_for(path: &Path, min_shorter: u32) -> Result<DecodedImage> {
    decode_file_within_budget(path, |bytes| decode_bytes_for(bytes, min_shorter))
}

/// Reads `path` and decodes it with `decode`, once the decode budget has room for what the
/// file's header says the decode will hold; the decoded image keeps its part of the budget.
fn decode_file_within_budget(
    path: &Path,
    decode: impl FnOnce(&[u8]) -> std::result::Result<DecodedImage, String>,
) -> Result<DecodedImage> {
    FILES_DECODED.fetch_add(1, Ordering::Relaxed);
    let mut held = Reservation::take(decode_cost(path));
    let bytes = read_file(path)?;
    let mut decoded = decode(&bytes).map_err(|reason| Error::unusable(path, reason))?;
    drop(bytes);
    held.shrink_to(decoded.rgb.as_raw().len() as u64);
    decoded.held = Some(held);
    Ok(decoded)
}

/// The most memory a decode of `path` holds at once, from its header: the file's bytes, and
/// what [`header_cost`] says. A file whose header cannot be read costs the most any decode
/// may allocate, in case the decoder reads what this could not.
fn decode_cost(path: &Path) -> u64 {
    let Ok(file) = std::fs::File::open(path) else {
        return 0; // reading it fails at once, and names the file
    };
    let len = file.metadata().map_or(0, |m| m.len());
    if len > MAX_FILE_BYTES {
        return 0; // refused before reading
    }
    let mut reader = BufReader::new(file);
    let format = match reader.fill_buf() {
        Ok(head) => sniff_format(head),
        Err(_) => return len,
    };
    let pixels = match format {
        Some(Format::Common(ImageFormat::Jpeg)) => jpeg_cost(reader, len),
        Some(Format::Common(_)) => header_cost(reader),
        // Their headers need more than the first bytes: the file is read for them.
        Some(_) => read_file(path)
            .ok()
            .and_then(|bytes| format::other_cost(&bytes).flatten()),
        None => Some(0), // not an image: refused from its first bytes
    };
    len.saturating_add(pixels.unwrap_or(MAX_DECODE_BYTES))
}

/// What decoding a picture holds besides its file, from its header: the decoder's pixels,
/// their RGB copy where the decoder's are not RGB, and a turned copy where EXIF turns it.
/// Nothing where the pixels exceed [`MAX_DECODE_BYTES`]: such a decode is refused before it
/// allocates them. `None` where the header cannot be read.
fn header_cost<R: BufRead + Seek>(reader: R) -> Option<u64> {
    let mut reader = ImageReader::new(reader).with_guessed_format().ok()?;
    reader.limits(decode_limits());
    let mut decoder = reader.into_decoder().ok()?;
    let (width, height) = decoder.dimensions();
    let native = decoder.total_bytes();
    if native > MAX_DECODE_BYTES {
        return Some(0);
    }
    let rgb = u64::from(width) * u64::from(height) * 3;
    let converted = match decoder.color_type() {
        image::ColorType::Rgb8 => 0,
        _ => rgb,
    };
    let turned = match decoder.orientation() {
        Ok(image::metadata::Orientation::NoTransforms) => 0,
        _ => native,
    };
    Some(native + converted + turned)
}

/// [`header_cost`] for a JPEG, whose decoder also holds a copy of the file, and for a
/// progressive one the coefficients of every block (two bytes a value).
fn jpeg_cost<R: Read>(reader: R, len: u64) -> Option<u64> {
    let mut decoder = jpeg_decoder::Decoder::new(reader);
    decoder.read_info().ok()?;
    let info = decoder.info()?;
    let (width, height) = (u64::from(info.width), u64::from(info.height));
    let rgb = width * height * 3;
    if rgb > MAX_DECODE_BYTES {
        return Some(len);
    }
    let components = match info.pixel_format {
        jpeg_decoder::PixelFormat::L8 => 1,
        jpeg_decoder::PixelFormat::L16 => 2,
        jpeg_decoder::PixelFormat::RGB24 => 3,
        jpeg_decoder::PixelFormat::CMYK32 => 4,
    };
    let coefficients = match info.coding_process {
        jpeg_decoder::CodingProcess::DctProgressive => {
            width.next_multiple_of(16) * height.next_multiple_of(16) * components * 2
        }
        _ => 0,
    };
    let turned = decoder
        .exif_data()
        .and_then(image::metadata::Orientation::from_exif_chunk)
        .is_some_and(|o| o != image::metadata::Orientation::NoTransforms);
    // The decoder's own pixels, then the RGB copy (the same buffer for RGB, one more else).
    let native = width * height * components.min(3);
    let converted = if components == 3 { 0 } else { rgb };
    Some(len + native + converted + coefficients + if turned { rgb } else { 0 })
}

/// [`decode_bytes`], at reduced size where a JPEG allows it.
pub fn decode_bytes_for(
    bytes: &[u8],
    min_shorter: u32,
) -> std::result::Result<DecodedImage, String> {
    if let Some(decoded) = format::decode_other(bytes, Some(min_shorter)) {
        return decoded;
    }
    match decode_jpeg_reduced(bytes, min_shorter) {
        Some(decoded) => Ok(decoded),
        None => decode_bytes(bytes),
    }
}

/// A large JPEG decoded straight at a half, a quarter or an eighth of its size (see
/// [`scaled_jpeg`]), the smallest that still leaves twice `min_shorter` on the shorter side
/// ([`jpeg_scale_eighths`]). Returns
/// `None` when no reduction applies or this path cannot take the file (CMYK, 12-bit, damage):
/// the full decoder then handles it and words any error.
pub fn decode_jpeg_reduced(bytes: &[u8], min_shorter: u32) -> Option<DecodedImage> {
    if image::guess_format(bytes).ok() != Some(ImageFormat::Jpeg) || !jpeg_is_complete(bytes) {
        return None;
    }
    let scaled = scaled_jpeg::decode(bytes, min_shorter)?;
    let orientation = scaled.orientation;
    let (rgb, full_size) = scaled.upright(orientation);
    Some(DecodedImage {
        rgb,
        held: None,
        format: Format::Common(ImageFormat::Jpeg),
        full_size,
    })
}

/// Reads a whole file, refusing ones too large to be a photo.
pub fn read_file(path: &Path) -> Result<Vec<u8>> {
    let file = std::fs::File::open(path).map_err(|e| Error::unreadable(path, "cannot open", e))?;
    let len = file
        .metadata()
        .map_err(|e| Error::unreadable(path, "cannot read", e))?
        .len();
    if len > MAX_FILE_BYTES {
        return Err(Error::unusable(
            path,
            format!(
                "file too large ({} MiB, limit {} MiB)",
                len >> 20,
                MAX_FILE_BYTES >> 20
            ),
        ));
    }
    let mut bytes = Vec::with_capacity(len as usize);
    BufReader::new(file)
        .take(MAX_FILE_BYTES + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| Error::unreadable(path, "cannot read", e))?;
    Ok(bytes)
}

/// Decodes an image held in memory; the error is a human-readable reason.
pub fn decode_bytes(bytes: &[u8]) -> std::result::Result<DecodedImage, String> {
    if bytes.is_empty() {
        return Err("empty file".into());
    }
    if let Some(decoded) = format::decode_other(bytes, None) {
        return decoded;
    }
    if format::sniff_whole(bytes).is_none() {
        if let Some(name) = format::unsupported_format(bytes) {
            return Err(format!("{name}: lookalike does not read this format"));
        }
    }
    if image::guess_format(bytes).ok() == Some(ImageFormat::Jpeg) && !jpeg_is_complete(bytes) {
        // The JPEG decoder fills a cut-off file with grey and reports success; a half-grey
        // picture would then be labelled and ranked as if it were real.
        return Err("truncated JPEG: the file ends before the image data does".into());
    }
    decode_reader(std::io::Cursor::new(bytes))
}

/// Whether a JPEG has an end-of-image marker after its last start-of-scan marker. Entropy-coded
/// data never holds `FF DA` or `FF D9` (an `FF` there is always followed by `00` or a restart
/// marker), so a file cut anywhere in its pixel data fails this test. Data appended after the
/// end (a second picture in an MPO, a phone maker's trailer) ends with its own marker.
///
/// The last scan usually starts near the beginning, so the search goes through nearly the
/// whole file: byte by byte, it took 1% of the time of indexing photos of 500×375.
pub fn jpeg_is_complete(bytes: &[u8]) -> bool {
    match last_marker(bytes, 0xDA) {
        Some(at) => memchr::memmem::find(&bytes[at..], &[0xFF, 0xD9]).is_some(),
        None => false,
    }
}

/// Where the last `FF marker` pair starts, searching back for each `FF` with SIMD (`memmem`
/// searches backwards a byte at a time).
fn last_marker(bytes: &[u8], marker: u8) -> Option<usize> {
    let mut end = bytes.len();
    while let Some(at) = memchr::memrchr(0xFF, &bytes[..end]) {
        if bytes.get(at + 1) == Some(&marker) {
            return Some(at);
        }
        end = at;
    }
    None
}

/// Decodes an image from any seekable reader; the error is a human-readable reason.
pub fn decode_reader<R: BufRead + Seek>(reader: R) -> std::result::Result<DecodedImage, String> {
    let mut reader = ImageReader::new(reader)
        .with_guessed_format()
        .map_err(|e| format!("cannot read: {e}"))?;
    let format = match reader.format() {
        Some(f) if FORMATS.contains(&f) => f,
        Some(f) => return Err(format!("unsupported image format {f:?}")),
        None => return Err("not an image: the content matches no supported format".into()),
    };
    reader.limits(decode_limits());
    let mut decoder = reader.into_decoder().map_err(|e| describe(&e))?;
    let orientation = decoder
        .orientation()
        .unwrap_or(image::metadata::Orientation::NoTransforms);
    let (width, height) = decoder.dimensions();
    if width == 0 || height == 0 {
        return Err(format!("image has no pixels ({width}×{height})"));
    }
    // Not every decoder enforces `max_alloc` on its output buffer, so check before allocating.
    let needed = decoder.total_bytes();
    if needed > MAX_DECODE_BYTES {
        return Err(format!(
            "image too large to decode safely: {width}×{height} needs {} MiB, the limit is {} MiB",
            needed >> 20,
            MAX_DECODE_BYTES >> 20
        ));
    }
    let mut image = DynamicImage::from_decoder(decoder).map_err(|e| describe(&e))?;
    image.apply_orientation(orientation);
    let rgb = match image {
        DynamicImage::ImageRgb8(rgb) => rgb,
        other => other.to_rgb8(),
    };
    let full_size = rgb.dimensions();
    Ok(DecodedImage {
        rgb,
        format: Format::Common(format),
        full_size,
        held: None,
    })
}

fn decode_limits() -> image::Limits {
    let mut limits = image::Limits::default();
    limits.max_alloc = Some(MAX_DECODE_BYTES);
    limits.max_image_width = Some(MAX_SIDE);
    limits.max_image_height = Some(MAX_SIDE);
    limits
}

/// A decoder error in words a user can act on.
fn describe(e: &image::ImageError) -> String {
    match e {
        image::ImageError::Limits(_) => {
            format!(
                "image too large to decode safely (limit {} MiB): {e}",
                MAX_DECODE_BYTES >> 20
            )
        }
        image::ImageError::Decoding(_) => format!("damaged or truncated image: {e}"),
        image::ImageError::Unsupported(_) => format!("unsupported image: {e}"),
        image::ImageError::IoError(io) if io.kind() == std::io::ErrorKind::UnexpectedEof => {
            format!("truncated image: {e}")
        }
        _ => e.to_string(),
    }
}

/// The size the reference resizes to before cropping: shorter side to `shorter`, the other side
/// scaled to match and rounded half-to-even (Python's `round`), never below the crop size.
pub fn resized_size(width: u32, height: u32, shorter: u32, crop: u32) -> (u32, u32) {
    let scale = shorter as f64 / width.min(height) as f64;
    let side = |n: u32| ((n as f64 * scale).round_ties_even() as u32).max(crop);
    (side(width), side(height))
}

/// Resizes, centre-crops and normalises an image into a CHW tensor of `3 × crop × crop` floats.
///
/// Only the crop is resampled: the filter taps of the kept pixels reach into the rest of the
/// image exactly as a full resize would, so the result equals resize-then-crop without ever
/// allocating the resized whole (which for a 20000×1 strip would be gigabytes).
pub fn model_input(rgb: &RgbImage, pre: &Preprocess) -> Result<Vec<f32>> {
    let (rw, rh) = resized_size(rgb.width(), rgb.height(), pre.resize_shorter, pre.crop);
    let (left, top) = ((rw - pre.crop) / 2, (rh - pre.crop) / 2);
    let (sx, sy) = (
        rgb.width() as f64 / rw as f64,
        rgb.height() as f64 / rh as f64,
    );
    let crop_box = SourceBox {
        left: left as f64 * sx,
        top: top as f64 * sy,
        width: pre.crop as f64 * sx,
        height: pre.crop as f64 * sy,
    };
    let pixels = resize_rgb(rgb, crop_box, pre.crop, pre.crop)?;
    let crop = pre.crop as usize;
    let plane = crop * crop;
    let (scale, shift) = normalisation_constants(pre.normalisation);
    // Plane by plane, appended: each plane is written in order, and nothing is zeroed first.
    let mut out = Vec::with_capacity(3 * plane);
    for c in 0..3 {
        out.extend(
            pixels
                .chunks_exact(3)
                .map(|px| px[c] as f32 * scale[c] + shift[c]),
        );
    }
    Ok(out)
}

/// A region of the source image, in source pixels (fractions allowed).
#[derive(Debug, Clone, Copy)]
pub struct SourceBox {
    pub left: f64,
    pub top: f64,
    pub width: f64,
    pub height: f64,
}

impl SourceBox {
    pub fn whole(rgb: &RgbImage) -> Self {
        SourceBox {
            left: 0.0,
            top: 0.0,
            width: rgb.width() as f64,
            height: rgb.height() as f64,
        }
    }
}

/// Per-channel `scale` and `shift` so that `x * scale + shift` is the model's normalisation.
fn normalisation_constants(n: Normalisation) -> ([f32; 3], [f32; 3]) {
    match n {
        Normalisation::Centred127 => ([1.0 / 128.0; 3], [-127.0 / 128.0; 3]),
        Normalisation::ImageNetMeanStd => {
            let mean = [0.485f32, 0.456, 0.406];
            let std = [0.229f32, 0.224, 0.225];
            let scale = [0, 1, 2].map(|c| 1.0 / (255.0 * std[c]));
            let shift = [0, 1, 2].map(|c| -mean[c] / std[c]);
            (scale, shift)
        }
    }
}

/// Antialiased bilinear resize of a region of packed RGB8 to `width × height`, with Pillow's
/// `Image.resize(..., BILINEAR)` filter.
pub fn resize_rgb(rgb: &RgbImage, region: SourceBox, width: u32, height: u32) -> Result<Vec<u8>> {
    let src = ImageRef::new(rgb.width(), rgb.height(), rgb.as_raw(), PixelType::U8x3)
        .map_err(|e| Error::Model(format!("resize source: {e}")))?;
    let mut dst = Image::new(width, height, PixelType::U8x3);
    let options = ResizeOptions::new()
        .resize_alg(ResizeAlg::Convolution(FilterType::Bilinear))
        .crop(region.left, region.top, region.width, region.height);
    Resizer::new()
        .resize(&src, &mut dst, &options)
        .map_err(|e| Error::Model(format!("resize: {e}")))?;
    Ok(dst.into_vec())
}

/// A small preview of an image, kept JPEG-compressed so that thousands fit in memory (and,
/// later, in a cache file).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Thumbnail {
    pub jpeg: Vec<u8>,
    pub width: u32,
    pub height: u32,
}

/// Thumbnails are made this large, so that the app's size slider never has to upscale.
pub const THUMBNAIL_SIDE: u32 = 256;

/// JPEG quality of thumbnails: visually clean at grid sizes, about 10 KB for 256 pixels.
const THUMBNAIL_QUALITY: u8 = 85;

/// Scales an image to fit in `max_side × max_side` (never up) and compresses it.
pub fn make_thumbnail(rgb: &RgbImage, max_side: u32) -> Result<Thumbnail> {
    let scale = (max_side as f64 / rgb.width().max(rgb.height()) as f64).min(1.0);
    let width = ((rgb.width() as f64 * scale).round() as u32).max(1);
    let height = ((rgb.height() as f64 * scale).round() as u32).max(1);
    let pixels = resize_rgb(rgb, SourceBox::whole(rgb), width, height)?;
    let mut jpeg = Vec::new();
    image::codecs::jpeg::JpegEncoder::new_with_quality(&mut jpeg, THUMBNAIL_QUALITY)
        .encode(&pixels, width, height, image::ExtendedColorType::Rgb8)
        .map_err(|e| Error::Model(format!("thumbnail: {e}")))?;
    Ok(Thumbnail {
        jpeg,
        width,
        height,
    })
}

/// The most bytes a thumbnail may take: far above what [`make_thumbnail`] makes (about 10 KB,
/// at most a few times more for noise), far below what would hurt.
pub const MAX_THUMBNAIL_BYTES: usize = 1 << 20;

impl Thumbnail {
    /// A thumbnail read back from an index, if its stored size is one that lookalike makes;
    /// None otherwise (an index is input: anyone who can write a shared one chooses it).
    pub fn from_stored(jpeg: Vec<u8>, width: i64, height: i64) -> Option<Thumbnail> {
        let side = |n: i64| {
            u32::try_from(n)
                .ok()
                .filter(|n| (1..=THUMBNAIL_SIDE).contains(n))
        };
        let thumbnail = Thumbnail {
            width: side(width)?,
            height: side(height)?,
            jpeg,
        };
        (thumbnail.jpeg.len() <= MAX_THUMBNAIL_BYTES).then_some(thumbnail)
    }

    /// The thumbnail's pixels as RGB. It is decoded only if it is a JPEG of the size it
    /// claims, within [`THUMBNAIL_SIDE`] and [`MAX_THUMBNAIL_BYTES`]: the app decodes it on
    /// the window's thread, which a huge picture from an index would stall.
    pub fn to_rgb(&self) -> std::result::Result<RgbImage, String> {
        let stored = (self.width, self.height);
        let side = |n: u32| (1..=THUMBNAIL_SIDE).contains(&n);
        if !side(self.width) || !side(self.height) || self.jpeg.len() > MAX_THUMBNAIL_BYTES {
            return Err(format!(
                "a thumbnail of {}×{} pixels in {} bytes is not one lookalike makes",
                self.width,
                self.height,
                self.jpeg.len()
            ));
        }
        let decoder = image::codecs::jpeg::JpegDecoder::new(std::io::Cursor::new(&self.jpeg))
            .map_err(|e| describe(&e))?;
        let (width, height) = decoder.dimensions();
        if (width, height) != stored {
            return Err(format!(
                "a thumbnail stored as {}×{} holds a picture of {width}×{height}",
                self.width, self.height
            ));
        }
        let image = DynamicImage::from_decoder(decoder).map_err(|e| describe(&e))?;
        Ok(image.to_rgb8())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resized_size_follows_the_reference() {
        // 500×375 → shorter side 256: 341.33 → 341.
        assert_eq!(resized_size(500, 375, 256, 224), (341, 256));
        // Portrait.
        assert_eq!(resized_size(375, 500, 256, 224), (256, 341));
        // Exact scales keep exact sizes: 300×200 → 384×256.
        assert_eq!(resized_size(300, 200, 256, 224), (384, 256));
        // Python rounds half to even. 513×512 halves to 256.5, a true tie: to even, 256
        // (rounding half up would give 257); 515×512 gives 257.5, to 258; and ×1.5, 257 gives
        // 385.5, to 386, and 259 gives 388.5, to 388.
        assert_eq!(resized_size(513, 512, 256, 224), (256, 256));
        assert_eq!(resized_size(512, 513, 256, 224), (256, 256));
        assert_eq!(resized_size(515, 512, 256, 224), (258, 256));
        assert_eq!(resized_size(257, 256, 384, 224), (386, 384));
        assert_eq!(resized_size(259, 256, 384, 224), (388, 384));
        // A tall strip never goes below the crop.
        assert_eq!(resized_size(20000, 1, 256, 224), (5120000, 256));
    }

    /// What a decode reserves: the file, the decoder's pixels, and an RGB copy of pixels
    /// that are not RGB; only the file for what is no image or is refused before allocating.
    #[test]
    fn a_decode_reserves_its_file_and_the_pixels_its_header_promises() {
        let dir = tempfile::tempdir().unwrap();
        let save = |name: &str, image: DynamicImage| {
            let path = dir.path().join(name);
            image.save_with_format(&path, ImageFormat::Png).unwrap();
            let len = std::fs::metadata(&path).unwrap().len();
            (path, len)
        };
        let (rgb, len) = save("rgb.png", DynamicImage::new_rgb8(100, 50));
        assert_eq!(decode_cost(&rgb), len + 100 * 50 * 3);
        let (grey, len) = save("grey.png", DynamicImage::new_luma8(100, 50));
        assert_eq!(decode_cost(&grey), len + 100 * 50 + 100 * 50 * 3);
        let text = dir.path().join("notes.png");
        std::fs::write(&text, "not a picture").unwrap();
        assert_eq!(decode_cost(&text), 13);
        assert_eq!(decode_cost(&dir.path().join("gone.png")), 0);
    }

    #[test]
    fn sniffing_ignores_names_and_rejects_text() {
        assert_eq!(
            sniff_format(b"\x89PNG\r\n\x1a\n0000"),
            Some(Format::Common(ImageFormat::Png))
        );
        assert_eq!(
            sniff_format(b"\xff\xd8\xff\xe0"),
            Some(Format::Common(ImageFormat::Jpeg))
        );
        assert_eq!(sniff_format(b"hello, world"), None);
    }
}
