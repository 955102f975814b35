//! JPEG XL files written by the reference encoder, `cjxl` from Debian's libjxl-tools, decode
//! upright and close to the JPEG they came from: a lossless recompression of the JPEG itself,
//! a lossy encode of its pixels, grey, alpha and 16-bit pictures, and cut or damaged files.
//!
//! Without `cjxl` each test says `SKIPPED: <test> needs cjxl` on stderr and passes, except
//! under CI (`CI` set), where it fails: CI installs libjxl-tools.

mod corpus;
mod encoders;

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;

use corpus::with_orientation;
use image::{DynamicImage, GrayImage, ImageFormat, Rgb, RgbImage, Rgba, RgbaImage};
use lookalike::decode::{decode_file, jxl};

const INSTALL_CJXL: &str = "apt-get install libjxl-tools";

fn seed(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data/seed-images")
        .join(name)
}

/// Encodes `input` with `cjxl` and the given options; returns the JPEG XL file's bytes.
fn cjxl(input: &Path, options: &[&str]) -> Vec<u8> {
    let output = input.with_extension("jxl");
    let out = Command::new("cjxl")
        .arg(input)
        .arg(&output)
        .args(options)
        .arg("--quiet")
        .output()
        .expect("cjxl runs");
    assert!(
        out.status.success(),
        "cjxl {input:?} {options:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    std::fs::read(&output).unwrap()
}

/// Decodes a JPEG XL, checks that the header's size is the picture's, and compares it with
/// `source`: the same size, and at most `most` levels apart on average.
fn decodes_close_to(jxl_bytes: &[u8], source: &RgbImage, most: f64, what: &str) -> f64 {
    assert!(jxl::sniff(jxl_bytes), "{what}: not sniffed as JPEG XL");
    let rgb = jxl::decode(jxl_bytes).unwrap_or_else(|e| panic!("{what}: {e}"));
    assert_eq!(jxl::size(jxl_bytes).unwrap(), rgb.dimensions(), "{what}");
    assert_eq!(rgb.dimensions(), source.dimensions(), "{what}: size");
    let diff = encoders::mean_abs_diff(&rgb, source);
    let _ = writeln!(std::io::stderr(), "{what}: mean difference {diff:.3}");
    assert!(diff <= most, "{what}: mean difference {diff:.3} > {most}");
    diff
}

const PHOTOS: [&str; 3] = ["Tiger.jpg", "elephant.jpg", "bird01.jpg"];

#[test]
fn a_losslessly_recompressed_jpeg_decodes_like_the_jpeg() {
    if !encoders::tool_runs(
        "cjxl",
        "a_losslessly_recompressed_jpeg_decodes_like_the_jpeg",
        INSTALL_CJXL,
    ) {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    for name in PHOTOS {
        let jpeg = dir.path().join(name);
        std::fs::copy(seed(name), &jpeg).unwrap();
        let bytes = cjxl(&jpeg, &["--lossless_jpeg=1"]);
        let source = decode_file(&jpeg).unwrap().rgb;
        // The same DCT coefficients through a different inverse transform and upsampling.
        decodes_close_to(&bytes, &source, 1.0, name);
    }
}

#[test]
fn a_lossy_encode_of_a_photo_decodes_close_to_it() {
    if !encoders::tool_runs(
        "cjxl",
        "a_lossy_encode_of_a_photo_decodes_close_to_it",
        INSTALL_CJXL,
    ) {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    for name in PHOTOS {
        let source = decode_file(&seed(name)).unwrap().rgb;
        let png = dir.path().join(name).with_extension("png");
        source.save_with_format(&png, ImageFormat::Png).unwrap();
        // Distance 1 is cjxl's default: "visually lossless".
        let bytes = cjxl(&png, &["--distance=1"]);
        decodes_close_to(&bytes, &source, 3.0, name);
    }
}

/// cjxl moves a JPEG's EXIF orientation into the codestream header (both when it keeps the
/// JPEG's coefficients and when it re-encodes its pixels), and the decode must come out as
/// lookalike shows the JPEG: turned upright.
#[test]
fn the_orientation_is_applied() {
    if !encoders::tool_runs("cjxl", "the_orientation_is_applied", INSTALL_CJXL) {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let tiger = std::fs::read(seed("Tiger.jpg")).unwrap();
    for orientation in [3u16, 6, 8] {
        let jpeg = dir.path().join(format!("tiger-{orientation}.jpg"));
        std::fs::write(&jpeg, with_orientation(&tiger, orientation)).unwrap();
        let upright = decode_file(&jpeg).unwrap().rgb;
        let expected = if orientation == 3 {
            (484, 512)
        } else {
            (512, 484)
        };
        assert_eq!(upright.dimensions(), expected);
        let lossless = cjxl(&jpeg, &["--lossless_jpeg=1"]);
        decodes_close_to(
            &lossless,
            &upright,
            1.0,
            &format!("orientation {orientation}"),
        );
        let lossy = cjxl(&jpeg, &["--lossless_jpeg=0", "--distance=1"]);
        let what = format!("orientation {orientation}, re-encoded");
        decodes_close_to(&lossy, &upright, 3.0, &what);
    }
}

/// Grey becomes RGB, alpha is dropped (not blended), and 16 bits round to 8; all exactly,
/// as these are lossless encodes.
#[test]
fn grey_alpha_and_16_bit_pictures_become_8_bit_rgb() {
    if !encoders::tool_runs(
        "cjxl",
        "grey_alpha_and_16_bit_pictures_become_8_bit_rgb",
        INSTALL_CJXL,
    ) {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let photo = decode_file(&seed("bird01.jpg")).unwrap().rgb;
    let grey = DynamicImage::ImageRgb8(photo.clone()).into_luma8();
    let alpha = RgbaImage::from_fn(photo.width(), photo.height(), |x, y| {
        let [r, g, b] = photo.get_pixel(x, y).0;
        Rgba([r, g, b, (x + y) as u8 | 1]) // never 0: invisible pixels may be changed
    });
    let deep = image::ImageBuffer::<Rgb<u16>, _>::from_fn(photo.width(), photo.height(), |x, y| {
        Rgb(photo
            .get_pixel(x, y)
            .0
            .map(|v| u16::from(v) * 257 + (x as u16 % 200)))
    });
    let cases: [(&str, DynamicImage, RgbImage); 3] = [
        (
            "grey",
            DynamicImage::ImageLuma8(grey.clone()),
            grey_to_rgb(&grey),
        ),
        ("alpha", DynamicImage::ImageRgba8(alpha), photo.clone()),
        (
            "deep",
            DynamicImage::ImageRgb16(deep.clone()),
            round_to_8_bits(&deep),
        ),
    ];
    for (what, picture, expected) in cases {
        let png = dir.path().join(format!("{what}.png"));
        picture.save_with_format(&png, ImageFormat::Png).unwrap();
        let bytes = cjxl(&png, &["--distance=0"]);
        decodes_close_to(&bytes, &expected, 0.01, what);
    }
}

fn grey_to_rgb(grey: &GrayImage) -> RgbImage {
    RgbImage::from_fn(grey.width(), grey.height(), |x, y| {
        Rgb([grey.get_pixel(x, y).0[0]; 3])
    })
}

fn round_to_8_bits(deep: &image::ImageBuffer<Rgb<u16>, Vec<u16>>) -> RgbImage {
    RgbImage::from_fn(deep.width(), deep.height(), |x, y| {
        Rgb(deep
            .get_pixel(x, y)
            .0
            .map(|v| (f64::from(v) / 257.0).round() as u8))
    })
}

/// An animation (cjxl turns an animated GIF into one) shows its first frame.
#[test]
fn an_animation_decodes_to_its_first_frame() {
    if !encoders::tool_runs(
        "cjxl",
        "an_animation_decodes_to_its_first_frame",
        INSTALL_CJXL,
    ) {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let gif = dir.path().join("red-then-blue.gif");
    let frames = [[200u8, 30, 30], [30, 30, 200], [30, 200, 30]].map(|[r, g, b]| {
        let picture = RgbaImage::from_pixel(48, 32, Rgba([r, g, b, 255]));
        image::Frame::from_parts(picture, 0, 0, image::Delay::from_numer_denom_ms(100, 1))
    });
    let mut encoder = image::codecs::gif::GifEncoder::new(std::fs::File::create(&gif).unwrap());
    encoder.encode_frames(frames).unwrap();
    drop(encoder);
    let bytes = cjxl(&gif, &[]);
    let first = RgbImage::from_pixel(48, 32, Rgb([200, 30, 30]));
    decodes_close_to(&bytes, &first, 1.0, "animation");
}

/// Every cut of a real file, and damage anywhere in one, gives an error that names the
/// format (a cut inside the pixels: "truncated"), never a panic or a picture with holes.
#[test]
fn cut_and_damaged_files_are_refused_with_the_format_named() {
    if !encoders::tool_runs(
        "cjxl",
        "cut_and_damaged_files_are_refused_with_the_format_named",
        INSTALL_CJXL,
    ) {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let photo = decode_file(&seed("Tiger2.jpg")).unwrap().rgb;
    let png = dir.path().join("tiger2.png");
    photo.save_with_format(&png, ImageFormat::Png).unwrap();
    for options in [&["--distance=1"][..], &["--distance=1", "--container=1"]] {
        let bytes = cjxl(&png, options);
        assert!(jxl::decode(&bytes).is_ok());
        for len in (0..bytes.len()).step_by(97) {
            let err = jxl::decode(&bytes[..len]).unwrap_err();
            assert!(
                err.starts_with("JPEG XL: "),
                "{options:?} cut at {len}: {err}"
            );
            if len > bytes.len() / 2 {
                assert!(err.contains("truncated"), "{options:?} cut at {len}: {err}");
            }
        }
        for at in (2..bytes.len()).step_by(53) {
            let mut damaged = bytes.clone();
            damaged[at] ^= 0x5A;
            if let Err(err) = jxl::decode(&damaged) {
                assert!(
                    err.starts_with("JPEG XL: "),
                    "{options:?} damaged at {at}: {err}"
                );
            }
        }
    }
}

/// Decode speed of a 12-megapixel JPEG XL (a photo enlarged to 4000×3000, with grain so that
/// it compresses like a camera's), two files at a time as lookalike's two-thread pool would.
/// Prints files a second; run with `cargo test --test format_jxl -- --ignored --nocapture`.
#[test]
#[ignore = "a measurement: takes about a minute"]
fn speed_of_a_12_megapixel_file() {
    if !encoders::tool_runs("cjxl", "speed_of_a_12_megapixel_file", INSTALL_CJXL) {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let small = decode_file(&seed("elephant.jpg")).unwrap().rgb;
    let mut big = image::imageops::resize(&small, 4000, 3000, image::imageops::Triangle);
    let mut state = 0x2545_F491u32;
    for v in big.iter_mut() {
        state ^= state << 13;
        state ^= state >> 17;
        state ^= state << 5;
        *v = v.saturating_add((state % 16) as u8).saturating_sub(8);
    }
    let png = dir.path().join("big.png");
    big.save_with_format(&png, ImageFormat::Png).unwrap();
    let jpeg = dir.path().join("big-q90.jpg");
    let mut out = std::fs::File::create(&jpeg).unwrap();
    image::codecs::jpeg::JpegEncoder::new_with_quality(&mut out, 90)
        .encode_image(&big)
        .unwrap();
    let files = [
        ("lossy, distance 1", cjxl(&png, &["--distance=1"])),
        ("JPEG recompressed", cjxl(&jpeg, &["--lossless_jpeg=1"])),
    ];
    for (what, bytes) in &files {
        let start = std::time::Instant::now();
        let rounds = 3;
        std::thread::scope(|scope| {
            for _ in 0..2 {
                scope.spawn(|| {
                    for _ in 0..rounds {
                        assert_eq!(jxl::decode(bytes).unwrap().dimensions(), (4000, 3000));
                    }
                });
            }
        });
        let per_second = (2 * rounds) as f64 / start.elapsed().as_secs_f64();
        println!(
            "{what}: {} KiB, {per_second:.2} files/s on 2 threads",
            bytes.len() >> 10
        );
    }
}
