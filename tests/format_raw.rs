//! Camera RAW: the embedded JPEG preview of every kind is found, turned upright and decoded to
//! the same pixels as its source.
//!
//! Debian has no camera RAW encoder and no package ships a RAW sample, so the files are built
//! here (`lookalike::decode::raw::fixture`): each kind's container as its camera lays it out,
//! with a tutorial photo as the preview and smaller decoys beside it. They are made by this
//! test, not by a camera. ExifTool, an independent reader, then checks that it takes each file
//! for the same kind and finds the same preview in it.

mod encoders;

use std::path::Path;
use std::process::Command;

use image::imageops::FilterType;
use image::metadata::Orientation;
use image::{DynamicImage, RgbImage};
use lookalike::decode::decode_file;
use lookalike::decode::raw::fixture::{self, Parts};
use lookalike::decode::raw::{self, RawKind};

const INSTALL_EXIFTOOL: &str = "apt-get install libimage-exiftool-perl";

const SEEDS: &str = "tests/data/seed-images";

/// The photos used as previews; each is at least 224 pixels on its shorter side.
const PHOTOS: [&str; 4] = ["Tiger.jpg", "elephant.jpg", "style.jpg", "bird01.jpg"];

fn seed(name: &str) -> Vec<u8> {
    std::fs::read(Path::new(SEEDS).join(name)).unwrap()
}

/// `rgb` scaled to `width` wide, as a JPEG: a decoy smaller than the real preview.
fn smaller(rgb: &RgbImage, width: u32) -> Vec<u8> {
    let height = (rgb.height() * width / rgb.width()).max(1);
    let small = image::imageops::thumbnail(rgb, width, height);
    let mut out = Vec::new();
    image::codecs::jpeg::JpegEncoder::new_with_quality(&mut out, 90)
        .encode(
            small.as_raw(),
            width,
            height,
            image::ExtendedColorType::Rgb8,
        )
        .unwrap();
    out
}

/// A RAW of `kind` whose full preview is the photo `name`, with decoys of half its width and
/// of 160 pixels.
fn build(kind: RawKind, name: &str, orientation: u16, broken_pointer: bool) -> fixture::Built {
    let full = seed(name);
    let rgb = decode_file(&Path::new(SEEDS).join(name)).unwrap().rgb;
    let (medium, thumb) = (smaller(&rgb, rgb.width() / 2), smaller(&rgb, 160));
    let parts = Parts {
        full: &full,
        medium: &medium,
        thumb: &thumb,
        orientation,
        broken_pointer,
    };
    fixture::make(kind, &parts)
}

fn mean_abs_diff(a: &RgbImage, b: &RgbImage) -> f64 {
    assert_eq!(a.dimensions(), b.dimensions());
    let sum: u64 = a
        .as_raw()
        .iter()
        .zip(b.as_raw())
        .map(|(x, y)| u64::from(x.abs_diff(*y)))
        .sum();
    sum as f64 / a.as_raw().len() as f64
}

/// The source photo turned by `orientation`, with the rotations spelled out for the common
/// values so that the test does not only repeat what the code does.
fn turned(rgb: RgbImage, orientation: u16) -> RgbImage {
    match orientation {
        1 => rgb,
        3 => image::imageops::rotate180(&rgb),
        6 => image::imageops::rotate90(&rgb),
        8 => image::imageops::rotate270(&rgb),
        n => {
            let mut image = DynamicImage::ImageRgb8(rgb);
            image.apply_orientation(Orientation::from_exif(n as u8).unwrap());
            image.to_rgb8()
        }
    }
}

#[test]
fn every_kind_shows_its_preview_upright_and_equal_to_its_source() {
    for (i, kind) in RawKind::ALL.into_iter().enumerate() {
        for (j, name) in PHOTOS.into_iter().enumerate() {
            let orientation = [1, 6, 3, 8, 2, 5, 7, 4][(i + j) % 8];
            let built = build(kind, name, orientation, false);
            let file = built.bytes;
            assert_eq!(raw::sniff(&file), Some(kind), "{kind:?} {name}");
            let preview = raw::preview(&file).unwrap_or_else(|e| panic!("{name}: {e}"));
            assert_eq!(preview.kind, kind);
            // RAF's preview is the photo with an EXIF segment put in; the others, the photo.
            let full = &file[built.full.clone()];
            assert!(
                preview.jpeg == full,
                "{kind:?} {name}: not the full preview"
            );
            assert!(
                full.ends_with(&seed(name)[2..]),
                "{kind:?} {name}: a changed photo"
            );
            let decoded = raw::decode_preview(&preview).unwrap();
            let source = decode_file(&Path::new(SEEDS).join(name)).unwrap().rgb;
            let expected = turned(source, orientation);
            assert_eq!(
                decoded.dimensions(),
                expected.dimensions(),
                "{kind:?} {name}"
            );
            let diff = mean_abs_diff(&decoded, &expected);
            assert!(diff < 0.5, "{kind:?} {name}: mean difference {diff}");
            assert_eq!(preview.upright_size(), expected.dimensions());
            // The reduced decode: the same picture at half size or less, upright.
            let reduced = raw::decode_preview_for(&preview, 56).unwrap();
            let (w, h) = reduced.dimensions();
            assert!(w < expected.width() && 2 * w * expected.height() / expected.width() >= h);
            let shrunk = image::imageops::resize(&expected, w, h, FilterType::Triangle);
            let diff = mean_abs_diff(&reduced, &shrunk);
            assert!(
                diff < 6.0,
                "{kind:?} {name}: reduced, mean difference {diff}"
            );
        }
    }
}

#[test]
fn truncated_and_broken_files_are_refused_naming_their_kind() {
    for kind in RawKind::ALL {
        let built = build(kind, "elephant.jpg", 1, false);
        let cut = &built.bytes[..built.full.start + built.full.len() / 2];
        match raw::preview(cut) {
            Err(error) => assert!(
                error.starts_with(&format!("{}: ", kind.name())) && error.contains("truncated"),
                "{kind:?}: {error}"
            ),
            // A NEF's maker-note preview and a CR3's `PRVW` lie before the cut, and stand in
            // for the lost one.
            Ok(p) => assert!(
                matches!(kind, RawKind::Nef | RawKind::Cr3) && (p.width, p.height) == (400, 300),
                "{kind:?}: {}×{}",
                p.width,
                p.height
            ),
        }
        // Here the half-width decoy (400×300) is shown in place of the lost preview; the
        // generated sample's decoys are too small to be.
        let broken = build(kind, "elephant.jpg", 1, true).bytes;
        let shown = raw::preview(&broken).map(|p| (p.width, p.height));
        assert!(
            matches!(shown, Ok((400, 300)) | Err(_)),
            "{kind:?}: {shown:?}"
        );
        let error = raw::preview(&fixture::malformed(kind))
            .map(|p| p.kind)
            .unwrap_err();
        assert!(error.starts_with(kind.name()), "{kind:?}: {error}");
    }
}

/// ExifTool's own reading of a built file: its file type, and every preview it names.
#[test]
fn exiftool_reads_the_built_files_as_their_kind_with_the_same_preview() {
    if !encoders::tool_runs(
        "exiftool",
        "exiftool_reads_the_built_files",
        INSTALL_EXIFTOOL,
    ) {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    for kind in RawKind::ALL {
        let path = dir.path().join(format!("photo.{}", kind.extensions()[0]));
        let built = build(kind, "Tiger.jpg", 6, false);
        std::fs::write(&path, &built.bytes).unwrap();
        let output = Command::new("exiftool")
            .args(["-s3", "-FileType"])
            .arg(&path)
            .output()
            .unwrap();
        let file_type = String::from_utf8_lossy(&output.stdout).trim().to_string();
        assert_eq!(file_type, kind.name(), "{kind:?}");
        let extract = |tag: &str| {
            let out = Command::new("exiftool")
                .args(["-b", tag])
                .arg(&path)
                .output();
            out.map(|o| o.stdout).unwrap_or_default()
        };
        let previews = ["-JpgFromRaw", "-PreviewImage"].map(extract);
        // ExifTool does not name a CR3's full-size track; its `PRVW` is the half-size decoy.
        let expected = match kind {
            RawKind::Cr3 => {
                let rgb = decode_file(&Path::new(SEEDS).join("Tiger.jpg"))
                    .unwrap()
                    .rgb;
                smaller(&rgb, rgb.width() / 2)
            }
            _ => built.bytes[built.full.clone()].to_vec(),
        };
        let same = previews.contains(&expected);
        assert!(same, "{kind:?}: exiftool finds no preview equal to ours");
        let warnings = extract("-Warning");
        assert!(
            warnings.is_empty(),
            "{kind:?}: {}",
            String::from_utf8_lossy(&warnings)
        );
    }
}

/// Decoding speed of a 12-megapixel preview, two threads: `cargo test --test format_raw --
/// --ignored --nocapture`.
#[test]
#[ignore]
fn speed_of_12_megapixel_previews() {
    let rgb = decode_file(&Path::new(SEEDS).join("elephant.jpg"))
        .unwrap()
        .rgb;
    let big = image::imageops::resize(&rgb, 4000, 3000, FilterType::Triangle);
    let mut full = Vec::new();
    image::codecs::jpeg::JpegEncoder::new_with_quality(&mut full, 92)
        .encode(big.as_raw(), 4000, 3000, image::ExtendedColorType::Rgb8)
        .unwrap();
    let thumb = smaller(&rgb, 160);
    let parts = Parts {
        full: &full,
        medium: &thumb,
        thumb: &thumb,
        orientation: 6,
        broken_pointer: false,
    };
    let nef = fixture::make(RawKind::Nef, &parts).bytes;
    let per_thread = 8;
    for (what, min_shorter, width) in [
        ("full size", u32::MAX / 4, 3000),
        ("for the model (256)", 256, 750),
    ] {
        let start = std::time::Instant::now();
        std::thread::scope(|s| {
            for _ in 0..2 {
                s.spawn(|| {
                    for _ in 0..per_thread {
                        let preview = raw::preview(&nef).unwrap();
                        let rgb = raw::decode_preview_for(&preview, min_shorter).unwrap();
                        assert_eq!(rgb.width(), width);
                    }
                });
            }
        });
        let rate = (2 * per_thread) as f64 / start.elapsed().as_secs_f64();
        println!("12-megapixel NEF previews, {what}: {rate:.1} photos/s on 2 threads");
    }
}
