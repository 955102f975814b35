//! HEIC and AVIF written by Debian's real encoder (`heif-enc`, from libheif-examples) from the
//! tutorial's photos decode like their JPEG sources: same size, same way up, nearly the same
//! pixels; thumbnails are used when large enough; broken files are refused, naming the format.
//!
//! `heif-enc` writes single-tile images; the grid images of iPhones go through the same
//! libheif calls, which assemble the tiles.

mod encoders;

use std::path::{Path, PathBuf};
use std::process::Command;

use image::RgbImage;
use lookalike::decode::decode_file;
use lookalike::decode::heif::{decode, size, sniff, HeifKind};

const INSTALL_ENCODER: &str = "apt-get install libheif-examples";

const ENCODER: &str = "heif-enc";

fn seed(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data/seed-images")
        .join(name)
}

/// Encodes `source` with `heif-enc` and these options, and returns the file's bytes.
fn heif_enc(source: &Path, options: &[&str], dir: &Path, name: &str) -> Vec<u8> {
    let out = dir.join(name);
    let status = Command::new(ENCODER)
        .args(options)
        .arg("-o")
        .arg(&out)
        .arg(source)
        .output()
        .expect("heif-enc runs");
    assert!(
        status.status.success(),
        "heif-enc {options:?} {}: {}",
        source.display(),
        String::from_utf8_lossy(&status.stderr)
    );
    std::fs::read(out).unwrap()
}

const PHOTOS: [&str; 3] = ["Tiger.jpg", "elephant.jpg", "bird01.jpg"];

/// At quality 90, HEVC and AV1 are within a few levels of the JPEG decode.
const CLOSE: f64 = 3.0;

fn decodes_like_its_source(kind: HeifKind, options: &[&str], ext: &str) {
    let dir = tempfile::tempdir().unwrap();
    for name in PHOTOS {
        let source = decode_file(&seed(name)).unwrap().rgb;
        let bytes = heif_enc(&seed(name), options, dir.path(), &format!("{name}.{ext}"));
        assert_eq!(sniff(&bytes), Some(kind), "{name}");
        assert_eq!(size(&bytes).unwrap(), source.dimensions(), "{name}");
        let (rgb, full) = decode(&bytes, u32::MAX).unwrap();
        assert_eq!(full, source.dimensions(), "{name}");
        let difference = encoders::mean_abs_diff(&rgb, &source);
        eprintln!("{name} as {ext}: mean absolute difference {difference:.2}");
        assert!(difference < CLOSE, "{name} as {ext}: {difference:.2}");
    }
}

#[test]
fn heic_from_heif_enc_decodes_like_its_jpeg() {
    if encoders::tool_runs(
        ENCODER,
        "heic_from_heif_enc_decodes_like_its_jpeg",
        INSTALL_ENCODER,
    ) {
        decodes_like_its_source(HeifKind::Heic, &["-q", "90"], "heic");
    }
}

#[test]
fn avif_from_heif_enc_decodes_like_its_jpeg() {
    if encoders::tool_runs(
        ENCODER,
        "avif_from_heif_enc_decodes_like_its_jpeg",
        INSTALL_ENCODER,
    ) {
        decodes_like_its_source(HeifKind::Avif, &["-A", "-q", "90"], "avif");
    }
}

/// `heif_enc` 1.15 writes no `irot` or `imir` (it ignores a JPEG's EXIF orientation), so
/// the test puts one in: the 16-byte `pixi` property, which decoding does not need, becomes an
/// `irot` or `imir` of the same size (libheif skips a box's bytes past what it reads), so no
/// offset in the file moves.
fn with_transform(heic: &[u8], property: &[u8; 4], value: u8) -> Vec<u8> {
    let at = heic
        .windows(4)
        .position(|w| w == b"pixi")
        .expect("heif-enc writes a pixi property")
        - 4;
    assert_eq!(&heic[at..at + 4], &16u32.to_be_bytes());
    let mut out = heic.to_vec();
    out[at + 4..at + 8].copy_from_slice(property);
    out[at + 8] = value;
    out[at + 9..at + 16].fill(0);
    out
}

#[test]
fn irot_and_imir_are_applied() {
    if !encoders::tool_runs(ENCODER, "irot_and_imir_are_applied", INSTALL_ENCODER) {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let source = decode_file(&seed("Tiger.jpg")).unwrap().rgb;
    let heic = heif_enc(&seed("Tiger.jpg"), &["-q", "90"], dir.path(), "t.heic");
    let (w, h) = source.dimensions();
    // irot's angle counts quarter turns anticlockwise.
    let turned = [
        (1, image::imageops::rotate270(&source)),
        (2, image::imageops::rotate180(&source)),
        (3, image::imageops::rotate90(&source)),
    ];
    for (quarters, expected) in turned {
        let file = with_transform(&heic, b"irot", quarters);
        let (rgb, full) = decode(&file, u32::MAX).unwrap();
        assert_eq!(full, expected.dimensions(), "irot {quarters}");
        assert_eq!(
            size(&file).unwrap(),
            expected.dimensions(),
            "irot {quarters}"
        );
        assert!(
            encoders::mean_abs_diff(&rgb, &expected) < CLOSE,
            "irot {quarters}"
        );
    }
    assert_eq!(
        decode(&with_transform(&heic, b"irot", 1), 0).unwrap().1,
        (h, w)
    );
    // imir's axis 0 swaps top and bottom, 1 left and right: HEIF's first text said the
    // opposite ("a vertical (axis = 0) axis"), but iPhones and libheif did this, and HEIF's
    // amendment 2 made it the rule (MPEGGroup/FileFormat#22, AOMediaCodec/libavif#665).
    let mirrored = [
        (0, image::imageops::flip_vertical(&source)),
        (1, image::imageops::flip_horizontal(&source)),
    ];
    for (axis, expected) in mirrored {
        let (rgb, _) = decode(&with_transform(&heic, b"imir", axis), u32::MAX).unwrap();
        let difference = encoders::mean_abs_diff(&rgb, &expected);
        assert!(difference < CLOSE, "imir {axis}: {difference:.2}");
    }
}

#[test]
fn a_large_enough_thumbnail_is_used_instead_of_the_primary_image() {
    if !encoders::tool_runs(
        ENCODER,
        "a_large_enough_thumbnail_is_used_instead_of_the_primary_image",
        INSTALL_ENCODER,
    ) {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let source = decode_file(&seed("elephant.jpg")).unwrap().rgb;
    let (w, h) = source.dimensions();
    let heic = heif_enc(
        &seed("elephant.jpg"),
        &["-t", "320", "-q", "90"],
        dir.path(),
        "e.heic",
    );
    // 320 on the longer side; its shorter side is twice 100 or more, not twice 224.
    let (thumbnail, full) = decode(&heic, 100).unwrap();
    assert_eq!(full, (w, h));
    let expected = (320, (320 * h + w / 2) / w);
    assert_eq!(thumbnail.dimensions(), expected);
    // heif-enc scales its thumbnail without smoothing, which aliases fine detail (the grass
    // differs by 12 levels a pixel): compared as 8×8 block averages instead.
    let blocks = |rgb: &RgbImage| {
        let filter = image::imageops::FilterType::Triangle;
        image::imageops::resize(rgb, expected.0 / 8, expected.1 / 8, filter)
    };
    let difference = encoders::mean_abs_diff(&blocks(&thumbnail), &blocks(&source));
    assert!(difference < CLOSE, "thumbnail: {difference:.2}");
    let (primary, _) = decode(&heic, 224).unwrap();
    assert_eq!(primary.dimensions(), (w, h));
}

#[test]
fn ten_bit_heic_decodes_to_eight_bit() {
    if !encoders::tool_runs(
        ENCODER,
        "ten_bit_heic_decodes_to_eight_bit",
        INSTALL_ENCODER,
    ) {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let source = decode_file(&seed("bird01.jpg")).unwrap().rgb;
    let png = dir.path().join("bird16.png");
    image::DynamicImage::ImageRgb8(source.clone())
        .into_rgb16()
        .save(&png)
        .unwrap();
    let heic = heif_enc(&png, &["-b", "10", "-q", "90"], dir.path(), "b.heic");
    let (rgb, _) = decode(&heic, u32::MAX).unwrap();
    let difference = encoders::mean_abs_diff(&rgb, &source);
    assert!(difference < CLOSE, "10-bit: {difference:.2}");
}

#[test]
fn truncated_and_malformed_files_are_refused_naming_the_format() {
    if !encoders::tool_runs(
        ENCODER,
        "truncated_and_malformed_files_are_refused_naming_the_format",
        INSTALL_ENCODER,
    ) {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    for (options, name) in [
        (&["-q", "50"][..], "HEIC"),
        (&["-A", "-q", "50"][..], "AVIF"),
    ] {
        let file = heif_enc(&seed("bird01.jpg"), options, dir.path(), "b.heif");
        let len = file.len();
        // Cut in the boxes, in the compressed data, and one byte short.
        for end in [40, 200, len / 2, len - 1] {
            let err = decode(&file[..end], u32::MAX).unwrap_err();
            assert!(err.starts_with(&format!("{name}: ")), "{end}: {err}");
            eprintln!("{name} cut at {end}: {err}");
        }
        // The item locations box renamed: the boxes no longer say where the image is.
        let mut malformed = file.clone();
        let at = malformed.windows(4).position(|w| w == b"iloc").unwrap();
        malformed[at..at + 4].copy_from_slice(b"xloc");
        let err = decode(&malformed, u32::MAX).unwrap_err();
        assert!(err.starts_with(&format!("{name}: ")), "{err}");
        eprintln!("{name} malformed: {err}");
        // Noise over the compressed data: an error or some picture, never a crash.
        let mut noisy = file.clone();
        for (i, byte) in noisy[len / 2..].iter_mut().enumerate() {
            *byte ^= (i as u8).wrapping_mul(151);
        }
        let _ = decode(&noisy, u32::MAX);
    }
}

/// Decode speed of a 12-megapixel HEIC on two threads, for the README's table; run with
/// `cargo test --test format_heif -- --ignored --nocapture`.
#[test]
#[ignore]
fn speed_of_a_twelve_megapixel_heic() {
    if !encoders::tool_runs(ENCODER, "speed_of_a_twelve_megapixel_heic", INSTALL_ENCODER) {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let source = decode_file(&seed("elephant.jpg")).unwrap().rgb;
    let big = image::imageops::resize(&source, 4032, 3024, image::imageops::FilterType::Triangle);
    let png = dir.path().join("big.png");
    big.save(&png).unwrap();
    for (options, name) in [(&[][..], "HEIC"), (&["-A"][..], "AVIF")] {
        let file = heif_enc(&png, options, dir.path(), "big.heif");
        let per_thread = 4;
        let start = std::time::Instant::now();
        std::thread::scope(|s| {
            for _ in 0..2 {
                s.spawn(|| {
                    for _ in 0..per_thread {
                        decode(&file, u32::MAX).unwrap();
                    }
                });
            }
        });
        let rate = 2.0 * per_thread as f64 / start.elapsed().as_secs_f64();
        eprintln!("{name} 4032×3024: {rate:.1} photos/s on 2 threads");
    }
}

/// Two tiny files kept in the repository (`heif-enc -q 80` and `heif-enc -A -q 80` of a 64×48
/// gradient: red grows to the right, green downwards, blue 128), so that these formats are
/// tested without the encoder, and the bad-file corpus can cut and break them.
#[test]
fn the_kept_samples_decode_and_their_broken_copies_are_refused() {
    for (file, kind) in [
        ("gradient-64x48.heic", HeifKind::Heic),
        ("gradient-64x48.avif", HeifKind::Avif),
    ] {
        let path = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/data/heif")
            .join(file);
        let bytes = std::fs::read(path).unwrap();
        assert_eq!(sniff(&bytes), Some(kind));
        let (rgb, full) = decode(&bytes, 0).unwrap();
        assert_eq!((rgb.dimensions(), full), ((64, 48), (64, 48)), "{file}");
        let expected = RgbImage::from_fn(64, 48, |x, y| {
            image::Rgb([(x * 255 / 64) as u8, (y * 255 / 48) as u8, 128])
        });
        assert!(encoders::mean_abs_diff(&rgb, &expected) < CLOSE, "{file}");
        let name = format!("{}: ", kind.name());
        let truncated = decode(&bytes[..bytes.len() / 2], 0).unwrap_err();
        assert!(
            truncated.starts_with(&name) && truncated.contains("truncated"),
            "{truncated}"
        );
        let mut malformed = bytes.clone();
        let at = malformed.windows(4).position(|w| w == b"iloc").unwrap();
        malformed[at..at + 4].copy_from_slice(b"xloc");
        let damaged = decode(&malformed, 0).unwrap_err();
        assert!(
            damaged.starts_with(&name) && damaged.contains("damaged"),
            "{damaged}"
        );
    }
}
