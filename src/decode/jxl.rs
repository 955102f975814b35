//! JPEG XL: sniffing, the upright size from the header, and a decode to upright 8-bit RGB.
//!
//! The `image` crate has no JPEG XL decoder, so this module drives `jxl-oxide` (pure Rust,
//! MIT or Apache-2.0: no system library to install or ship). The choices:
//!
//! - **One thread a file.** lookalike decodes one file per thread on its own pool, so
//!   jxl-oxide is built without its `rayon` feature and given no thread pool.
//! - **Size first, then pixels.** The header is read on its own, a window at a time, and a
//!   picture whose RGB would exceed [`MAX_DECODE_BYTES`] or a side [`MAX_SIDE`] is refused
//!   before anything large is allocated. jxl-oxide's own working memory (32-bit planes,
//!   several times the RGB) is capped by its allocation tracker, which with the RGB it returns
//!   makes [`working_bytes`]: what the decode budget should reserve for a file.
//! - **Upright.** JPEG XL keeps its orientation in the codestream header; jxl-oxide applies it
//!   while writing the pixels out, so both [`size`] and [`decode`] give the upright picture.
//! - **Colour.** jxl-oxide's default output: sRGB for lossy (XYB) pictures, the file's own
//!   colour space otherwise, which is what lookalike's other decoders do too (they ignore ICC
//!   profiles). No colour management library is linked; HDR pictures are not tone mapped.
//! - **First frame only.** An animation is represented by its first frame, as a GIF is; the
//!   frames after it are not even read.
//! - **Never a panic.** Decoding runs under `catch_unwind`: jxl-oxide is young, and a crafted
//!   file that trips one of its internal checks must become an error, not end a worker.

use std::panic::{catch_unwind, AssertUnwindSafe};

use image::{DynamicImage, GrayImage, RgbImage};
use jxl_oxide::{AllocTracker, InitializeResult, JxlImage, JxlThreadPool, PixelFormat};

use super::{MAX_DECODE_BYTES, MAX_SIDE};

/// A bare codestream starts with these two bytes.
const CODESTREAM_SIGNATURE: [u8; 2] = [0xFF, 0x0A];

/// The ISO-BMFF container starts with this `JXL ` signature box.
const CONTAINER_SIGNATURE: [u8; 12] = [
    0x00, 0x00, 0x00, 0x0C, b'J', b'X', b'L', b' ', 0x0D, 0x0A, 0x87, 0x0A,
];

/// How much of the file is handed to the header parser at a time: headers (with an ICC
/// profile) are a few kilobytes, and feeding a small window keeps the decoder from starting
/// on the pixel data before the size has been checked.
const HEADER_WINDOW: usize = 16 * 1024;

/// What the decoder may allocate while only the header has been checked (the window above
/// never needs more than a little of it), and the floor of its working memory after, since
/// even a tiny picture has whole groups of 256×256 samples to fill.
const HEADER_ALLOC_BYTES: usize = 16 * 1024 * 1024;

/// How much of the rest is fed at a time, so that decoding stops after the first frame.
const FEED_WINDOW: usize = 1024 * 1024;

/// jxl-oxide's working memory per pixel at most: 32-bit planes for the picture and what a
/// frame holds besides (coefficients, restoration filters, blending). Measured on
/// 12-megapixel files from cjxl, its tracked peak is 24.6 bytes a pixel for lossy and
/// recompressed JPEGs, 28.7 with alpha and 14 lossless; this leaves room for the rest.
const WORKING_BYTES_PER_PIXEL: u64 = 40;

/// Whether `head` starts like a JPEG XL file, bare codestream or container.
pub fn sniff(head: &[u8]) -> bool {
    head.starts_with(&CODESTREAM_SIGNATURE) || head.starts_with(&CONTAINER_SIGNATURE)
}

/// The upright size (orientation applied) from the header, without decoding any pixels.
pub fn size(bytes: &[u8]) -> Result<(u32, u32), String> {
    guarded(|| {
        let (image, _) = read_header(bytes, AllocTracker::with_limit(HEADER_ALLOC_BYTES))?;
        Ok((image.width(), image.height()))
    })
}

/// The most memory a decode of a `width × height` picture holds: the decoder's working memory,
/// capped at this, and the RGB it returns. For the decode budget.
pub fn working_bytes(width: u32, height: u32) -> u64 {
    let pixels = u64::from(width) * u64::from(height);
    HEADER_ALLOC_BYTES as u64 + pixels * WORKING_BYTES_PER_PIXEL + pixels * 3
}

/// Decodes the first frame to upright 8-bit RGB: grey becomes RGB, alpha is dropped, higher
/// bit depths and float samples are rounded to 8 bits.
pub fn decode(bytes: &[u8]) -> Result<RgbImage, String> {
    guarded(|| decode_within(bytes, HEADER_ALLOC_BYTES, WORKING_BYTES_PER_PIXEL))
}

/// [`decode`], with the decoder's memory capped at `header` bytes until the size is checked,
/// and `per_pixel` bytes a pixel more after.
fn decode_within(bytes: &[u8], header: usize, per_pixel: u64) -> Result<RgbImage, String> {
    let tracker = AllocTracker::with_limit(header);
    let (mut image, read) = read_header(bytes, tracker.clone())?;
    let (width, height) = (image.width(), image.height());
    check_size(width, height)?;
    let working = u64::from(width) * u64::from(height) * per_pixel;
    tracker.expand_limit(usize::try_from(working).unwrap_or(usize::MAX));
    feed_first_frame(&mut image, &bytes[read..])?;
    if image.num_loaded_keyframes() == 0 {
        return Err("JPEG XL: truncated file: it ends before the first frame does".into());
    }
    let channels = match image.pixel_format() {
        PixelFormat::Gray | PixelFormat::Graya => 1,
        PixelFormat::Rgb | PixelFormat::Rgba => 3,
        PixelFormat::Cmyk | PixelFormat::Cmyka => {
            return Err("JPEG XL: CMYK pictures are not supported".into())
        }
    };
    let render = image.render_frame(0).map_err(describe)?;
    let mut stream = render.stream_no_alpha();
    let (w, h) = (stream.width(), stream.height());
    if (w, h) != (width, height) || stream.channels() != channels {
        return Err(format!(
            "JPEG XL: the frame ({w}×{h}, {} channels) does not match the header ({width}×{height})",
            stream.channels()
        ));
    }
    let mut pixels = vec![0u8; w as usize * h as usize * channels as usize];
    stream.write_to_buffer(&mut pixels);
    to_rgb(pixels, w, h, channels)
}

/// Parses the header from the front of `bytes`, a window at a time. Returns the image and how
/// many bytes of `bytes` it has consumed.
fn read_header(bytes: &[u8], tracker: AllocTracker) -> Result<(JxlImage, usize), String> {
    if !sniff(bytes) {
        return Err("JPEG XL: not a JPEG XL file (no signature)".into());
    }
    let mut uninit = JxlImage::builder()
        .pool(JxlThreadPool::none())
        .alloc_tracker(tracker)
        .build_uninit();
    let (mut read, mut end) = (0, 0);
    while end < bytes.len() {
        // The parser may keep back the end of a window (a box header cut in two): it is fed
        // again with the next window.
        end = (end + HEADER_WINDOW).min(bytes.len());
        read += uninit.feed_bytes(&bytes[read..end]).map_err(describe)?;
        match uninit.try_init().map_err(describe)? {
            InitializeResult::Initialized(image) => return Ok((image, read)),
            InitializeResult::NeedMoreData(more) => uninit = more,
        }
    }
    Err("JPEG XL: truncated file: it ends inside the header".into())
}

/// Feeds the rest of the file to an initialised image, a window at a time, until the first
/// frame is complete: the frames of an animation after it are never decoded.
fn feed_first_frame(image: &mut JxlImage, mut rest: &[u8]) -> Result<(), String> {
    let mut want = FEED_WINDOW;
    while image.num_loaded_keyframes() == 0 && !rest.is_empty() {
        let window = &rest[..rest.len().min(want)];
        let read = image
            .feed_bytes(window)
            .map_err(describe)?
            .min(window.len());
        if read == 0 {
            if window.len() == rest.len() {
                break; // an incomplete box at the very end: nothing more can be parsed
            }
            want = want.saturating_mul(2); // the parser waits for the rest of a box header
            continue;
        }
        rest = &rest[read..];
    }
    Ok(())
}

/// Refuses pictures whose RGB would exceed [`MAX_DECODE_BYTES`] or a side [`MAX_SIDE`].
fn check_size(width: u32, height: u32) -> Result<(), String> {
    let needed = u64::from(width) * u64::from(height) * 3;
    if width == 0 || height == 0 {
        return Err(format!("JPEG XL: image has no pixels ({width}×{height})"));
    }
    if needed > MAX_DECODE_BYTES || width > MAX_SIDE || height > MAX_SIDE {
        return Err(format!(
            "JPEG XL: image too large to decode safely: {width}×{height} needs {} MiB, \
             the limit is {} MiB and {MAX_SIDE} pixels a side",
            needed >> 20,
            MAX_DECODE_BYTES >> 20
        ));
    }
    Ok(())
}

/// Interleaved 8-bit samples, one or three a pixel, as RGB.
fn to_rgb(pixels: Vec<u8>, width: u32, height: u32, channels: u32) -> Result<RgbImage, String> {
    let wrong =
        || "JPEG XL: the decoder returned fewer pixels than the header promised".to_string();
    match channels {
        1 => {
            let grey = GrayImage::from_raw(width, height, pixels).ok_or_else(wrong)?;
            Ok(DynamicImage::ImageLuma8(grey).into_rgb8())
        }
        _ => RgbImage::from_raw(width, height, pixels).ok_or_else(wrong),
    }
}

/// A decoder error in words that name the format and what went wrong.
fn describe(e: Box<dyn std::error::Error + Send + Sync>) -> String {
    let mut text = e.to_string();
    let mut truncated = false;
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(&*e);
    while let Some(err) = source {
        truncated |= err
            .downcast_ref::<std::io::Error>()
            .is_some_and(|io| io.kind() == std::io::ErrorKind::UnexpectedEof);
        let more = err.to_string();
        if !text.contains(&more) {
            text = format!("{text}: {more}");
        }
        source = err.source();
    }
    if text.contains("failed to allocate") || text.contains("out of memory") {
        return format!("JPEG XL: image too large to decode safely: the decoder {text}");
    }
    if truncated {
        return format!("JPEG XL: truncated file: {text}");
    }
    format!("JPEG XL: damaged file: {text}")
}

/// Runs `f`, turning a panic inside jxl-oxide into an error.
fn guarded<T>(f: impl FnOnce() -> Result<T, String>) -> Result<T, String> {
    catch_unwind(AssertUnwindSafe(f)).unwrap_or_else(|panic| {
        let reason = panic
            .downcast_ref::<&str>()
            .map(|s| s.to_string())
            .or_else(|| panic.downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "unknown".into());
        Err(format!(
            "JPEG XL: damaged file: the decoder failed ({reason})"
        ))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The smallest JPEG XL the jxl-oxide documentation decodes (a bare codestream).
    const TINY: &[u8] = &[
        0xff, 0x0a, 0x30, 0x54, 0x10, 0x09, 0x08, 0x06, 0x01, 0x00, 0x78, 0x00, 0x4b, 0x38, 0x41,
        0x3c, 0xb6, 0x3a, 0x51, 0xfe, 0x00, 0x47, 0x1e, 0xa0, 0x85, 0xb8, 0x27, 0x1a, 0x48, 0x45,
        0x84, 0x1b, 0x71, 0x4f, 0xa8, 0x3e, 0x8e, 0x30, 0x03, 0x92, 0x84, 0x01,
    ];

    /// A 64×48 gradient written by `cjxl -d 1 --container=1` (libjxl 0.7): the container.
    const PHOTO: &[u8] = include_bytes!("../../tests/data/corpus/photo.jxl");

    /// A bare codestream whose header claims `width × height` (an 8-bit sRGB XYB picture)
    /// and holds no frame: what a decompression bomb starts with.
    fn header_claiming(width: u32, height: u32) -> Vec<u8> {
        let mut bits = Vec::new();
        let mut put = |value: u32, count: u32| {
            bits.extend((0..count).map(|i| (value >> i) & 1 == 1));
        };
        put(0, 1); // sizes not in multiples of 8
        put(3, 2); // height: the 30-bit form
        put(height - 1, 30);
        put(0, 3); // no fixed aspect ratio: the width follows
        put(3, 2);
        put(width - 1, 30);
        put(1, 1); // all metadata default
        put(1, 1); // default colour transforms
        let mut bytes = CODESTREAM_SIGNATURE.to_vec();
        // The bitstream is read least significant bit first.
        bytes.extend(bits.chunks(8).map(|byte| {
            byte.iter()
                .enumerate()
                .fold(0u8, |acc, (i, &bit)| acc | (u8::from(bit) << i))
        }));
        bytes
    }

    #[test]
    fn a_header_claiming_a_huge_picture_is_refused_before_any_pixel() {
        let bomb = header_claiming(30_000, 20_000);
        // The corpus's copy, which libjxl's `jxlinfo` reads as 30000x20000 too.
        assert_eq!(
            bomb,
            include_bytes!("../../tests/data/refused/huge-header.jxl")
        );
        assert_eq!(size(&bomb), Ok((30_000, 20_000)));
        let err = decode(&bomb).unwrap_err();
        assert!(
            err.starts_with("JPEG XL: image too large to decode safely"),
            "{err}"
        );
        // A header that passes the check but has no frame after it is cut short.
        let err = decode(&header_claiming(64, 48)).unwrap_err();
        assert!(err.contains("truncated"), "{err}");
    }

    #[test]
    fn decodes_a_container_from_cjxl() {
        assert!(sniff(PHOTO));
        assert_eq!(size(PHOTO), Ok((64, 48)));
        let rgb = decode(PHOTO).unwrap();
        assert_eq!(rgb.dimensions(), (64, 48));
        // The gradient it was made from: red across, green down, blue 128.
        let [r, g, b] = rgb.get_pixel(32, 24).0;
        assert!(r.abs_diff(127) < 8 && g.abs_diff(127) < 8 && b.abs_diff(128) < 8);
    }

    #[test]
    fn a_cut_container_is_truncated_and_garbage_is_damaged() {
        for len in [12, 40, PHOTO.len() / 2, PHOTO.len() - 1] {
            let err = decode(&PHOTO[..len]).unwrap_err();
            assert!(err.starts_with("JPEG XL: truncated file"), "{len}: {err}");
        }
        let mut garbage = CODESTREAM_SIGNATURE.to_vec();
        garbage.extend((0..500u32).map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8));
        let err = decode(&garbage).unwrap_err();
        assert!(err.starts_with("JPEG XL: damaged file"), "{err}");
        let mut damaged = PHOTO.to_vec();
        damaged[40] ^= 0xFF; // the codestream's signature, inside the container
        let err = decode(&damaged).unwrap_err();
        assert!(err.starts_with("JPEG XL: damaged file"), "{err}");
    }

    #[test]
    fn the_decoders_working_memory_is_capped() {
        // Nothing for the header, a byte a pixel after: far too little.
        let err = decode_within(PHOTO, 0, 1).unwrap_err();
        assert!(
            err.starts_with("JPEG XL: image too large to decode safely"),
            "{err}"
        );
    }

    #[test]
    fn sniffs_both_signatures_and_nothing_else() {
        assert!(sniff(TINY));
        assert!(sniff(&CONTAINER_SIGNATURE));
        assert!(sniff(b"\xff\x0a"));
        assert!(!sniff(b"\xff\xd8\xff\xe0"));
        assert!(!sniff(b"\x00\x00\x00\x0cJXL "));
        assert!(!sniff(b""));
        assert!(!sniff(b"\xff"));
    }

    #[test]
    fn decodes_a_tiny_codestream() {
        let (width, height) = size(TINY).unwrap();
        let rgb = decode(TINY).unwrap();
        assert_eq!(rgb.dimensions(), (width, height));
    }

    #[test]
    fn every_truncation_is_an_error_naming_the_format() {
        for len in 0..TINY.len() {
            let err = decode(&TINY[..len]).unwrap_err();
            assert!(err.starts_with("JPEG XL: "), "{len}: {err}");
        }
    }

    #[test]
    fn flipped_bytes_never_panic() {
        for at in 2..TINY.len() {
            for bit in 0..8 {
                let mut bytes = TINY.to_vec();
                bytes[at] ^= 1 << bit;
                if let Err(err) = decode(&bytes) {
                    assert!(err.starts_with("JPEG XL: "), "{at}.{bit}: {err}");
                }
                let _ = size(&bytes);
            }
        }
    }

    #[test]
    fn text_and_empty_files_are_refused() {
        assert!(decode(b"").unwrap_err().contains("not a JPEG XL file"));
        assert!(size(b"hello").unwrap_err().contains("not a JPEG XL file"));
        let truncated = size(&CONTAINER_SIGNATURE).unwrap_err();
        assert!(truncated.contains("truncated"), "{truncated}");
    }

    #[test]
    fn a_header_too_large_is_refused_before_decoding() {
        assert!(check_size(100_000, 100_000)
            .unwrap_err()
            .contains("too large to decode safely"));
        assert!(check_size(MAX_SIDE + 1, 1).is_err());
        assert!(check_size(0, 5).is_err());
        assert!(check_size(4000, 3000).is_ok());
    }
}
