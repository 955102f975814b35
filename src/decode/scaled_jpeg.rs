//! Decoding a large JPEG straight to 1/2, 1/4 or 1/8 of its size with libjpeg-turbo (as MozJPEG
//! builds it from source, with its SIMD code where `nasm` is installed).
//!
//! A JPEG stores 8×8 blocks of frequencies, so keeping only the low ones gives a smaller
//! picture without computing the large one: the inverse transform, the colour conversion and
//! the resize that follows all work on a fraction of the pixels. What no scale avoids is
//! reading the compressed data, and there libjpeg-turbo is the fastest decoder we measured: on
//! 12-megapixel photos, one thread, a quarter of the size, 25 photos a second against 19 for
//! the pure-Rust `jpeg-decoder` (Intel Xeon, AVX-512; `lookalike bench DIR` shows it on any
//! machine).
//!
//! libjpeg reports a fatal error by calling a function that must not return; here it unwinds
//! (without the panic hook, so nothing is printed) and [`decode`] catches it. Its warnings
//! (corrupt data, which it would otherwise paper over with grey) count as errors too. Any
//! error, and any file this path does not take (CMYK, 12-bit), returns `None`: the full
//! decoder then decodes the file or words the error that names it.

use std::os::raw::c_int;
use std::panic::{catch_unwind, AssertUnwindSafe};

use image::metadata::Orientation;
use image::{DynamicImage, RgbImage};
use mozjpeg::{ColorSpace, Decompress, Marker};
use mozjpeg_sys::{jpeg_common_struct, jpeg_error_mgr};

use super::{MAX_DECODE_BYTES, MAX_SIDE};

/// A JPEG decoded at a fraction of its size, as stored (not yet turned upright).
pub struct ScaledJpeg {
    pub rgb: RgbImage,
    /// The stored picture's full size.
    pub full_size: (u32, u32),
    /// What the file's EXIF says turns it upright.
    pub orientation: Orientation,
}

impl ScaledJpeg {
    /// The picture turned by `orientation`, and its full size turned with it.
    pub fn upright(self, orientation: Orientation) -> (RgbImage, (u32, u32)) {
        let (width, height) = self.full_size;
        let stored_width = self.rgb.width();
        let mut image = DynamicImage::ImageRgb8(self.rgb);
        image.apply_orientation(orientation);
        let turned = image.width() != stored_width;
        let full_size = if turned {
            (height, width)
        } else {
            (width, height)
        };
        (image.into_rgb8(), full_size)
    }
}

/// Decodes `bytes` at the scale [`scale_eighths`] picks for `min_shorter`, or `None` when no
/// scale applies or libjpeg cannot take the file.
pub fn decode(bytes: &[u8], min_shorter: u32) -> Option<ScaledJpeg> {
    // Unwinding out of libjpeg leaves nothing half-made behind that is used again: the
    // decompressor is dropped (and destroyed, as libjpeg allows after an error) on the way out.
    catch_unwind(AssertUnwindSafe(|| decode_unguarded(bytes, min_shorter)))
        .ok()
        .flatten()
}

fn decode_unguarded(bytes: &[u8], min_shorter: u32) -> Option<ScaledJpeg> {
    let mut decompress = Decompress::with_err(errors_unwind())
        .with_markers(&[Marker::APP(1)])
        .from_mem(bytes)
        .ok()?;
    let (width, height) = decompress.size();
    let (width, height) = (u32::try_from(width).ok()?, u32::try_from(height).ok()?);
    let eighths = scale_eighths(width.min(height), min_shorter);
    let full_bytes = u64::from(width) * u64::from(height) * 3;
    let takes = matches!(
        decompress.color_space(),
        ColorSpace::JCS_YCbCr | ColorSpace::JCS_GRAYSCALE | ColorSpace::JCS_RGB
    );
    if eighths == 8 || !takes || width > MAX_SIDE || height > MAX_SIDE {
        return None;
    }
    if full_bytes > MAX_DECODE_BYTES {
        return None;
    }
    let orientation = decompress
        .markers()
        .filter(|m| m.marker == Marker::APP(1))
        .find_map(|m| m.data.strip_prefix(b"Exif\0\0"))
        .and_then(Orientation::from_exif_chunk)
        .unwrap_or(Orientation::NoTransforms);
    // Fits: `eighths` is 1, 2 or 4.
    decompress.scale(eighths as u8);
    let mut started = decompress.rgb().ok()?;
    let (w, h) = (started.width(), started.height());
    let pixels: Vec<u8> = started.read_scanlines().ok()?;
    started.finish().ok()?;
    if pixels.len() != w * h * 3 {
        return None;
    }
    let rgb = RgbImage::from_raw(u32::try_from(w).ok()?, u32::try_from(h).ok()?, pixels)?;
    Some(ScaledJpeg {
        rgb,
        full_size: (width, height),
        orientation,
    })
}

/// How many eighths of its size a JPEG whose shorter side is `shorter` should be decoded at (8
/// means in full): the fewest that still leave twice `min_shorter`, so that the model's
/// antialiased resize that follows still shrinks by 2× or more and the model sees practically
/// the picture a full decode gives.
///
/// Not the fewest that leave `min_shorter` itself, as PIL's `draft` picks: measured with
/// `lookalike bench DIR` on 47 held-out photos (the wallpapers Debian ships, 1.4 to 24
/// megapixels), Lite0's embeddings from that smaller decode came within a cosine of only 0.969
/// of a full decode's (mean 0.992) and kept the top-1 label for 81 % of them; with twice, 0.987
/// (mean 0.999) and 93 %.
pub fn scale_eighths(shorter: u32, min_shorter: u32) -> u32 {
    let wanted = u64::from(min_shorter) * 2;
    [1, 2, 4]
        .into_iter()
        .find(|&e| u64::from(shorter) * u64::from(e) >= wanted * 8)
        .unwrap_or(8)
}

/// libjpeg's error handling with both ways out unwinding: fatal errors, and warnings about
/// corrupt data.
fn errors_unwind() -> jpeg_error_mgr {
    // SAFETY: jpeg_error_mgr is a plain C struct of numbers and function pointers, for which
    // all zeroes is a valid value; jpeg_std_error then fills in every field.
    let mut errors: jpeg_error_mgr = unsafe { std::mem::zeroed() };
    // SAFETY: `errors` is a valid, exclusively borrowed jpeg_error_mgr.
    unsafe { mozjpeg_sys::jpeg_std_error(&mut errors) };
    errors.error_exit = Some(fail);
    errors.emit_message = Some(fail_on_warning);
    errors
}

/// Leaves libjpeg for the `catch_unwind` in [`decode`]; `resume_unwind` skips the panic hook.
extern "C-unwind" fn fail(_: &mut jpeg_common_struct) {
    std::panic::resume_unwind(Box::new("libjpeg could not decode the file"));
}

/// Level -1 is a warning (the data is corrupt); higher levels are trace messages.
extern "C-unwind" fn fail_on_warning(common: &mut jpeg_common_struct, level: c_int) {
    if level < 0 {
        fail(common);
    }
}
