//! Decoding: every supported format, detection by content, EXIF orientation, and memory limits.

mod corpus;

use std::io::Cursor;
use std::path::Path;

use corpus::with_orientation;
use image::{DynamicImage, ImageFormat, Rgb, RgbImage};
use lookalike::decode::{
    decode_bytes_for, decode_file, decode_reader, jpeg_is_complete, jpeg_scale_eighths,
    model_input, Format,
};
use lookalike::model::lite0::INFO;

/// A 40×20 picture: left half red, right half blue.
fn red_blue() -> RgbImage {
    RgbImage::from_fn(40, 20, |x, _| {
        if x < 20 {
            Rgb([255, 0, 0])
        } else {
            Rgb([0, 0, 255])
        }
    })
}

fn encode(img: &DynamicImage, format: ImageFormat) -> Vec<u8> {
    let mut bytes = Cursor::new(Vec::new());
    img.write_to(&mut bytes, format).unwrap();
    bytes.into_inner()
}

#[test]
fn every_supported_format_decodes_by_content_whatever_the_name() {
    let dir = tempfile::tempdir().unwrap();
    let img = DynamicImage::ImageRgb8(red_blue());
    for format in [
        ImageFormat::Jpeg,
        ImageFormat::Png,
        ImageFormat::Gif,
        ImageFormat::WebP,
        ImageFormat::Bmp,
        ImageFormat::Tiff,
    ] {
        // Every file is named .jpg: the name must not matter.
        let path = dir.path().join(format!("{format:?}.jpg"));
        std::fs::write(&path, encode(&img, format)).unwrap();
        let decoded = decode_file(&path).unwrap_or_else(|e| panic!("{format:?}: {e}"));
        assert_eq!(decoded.format, Format::Common(format));
        assert_eq!(decoded.rgb.dimensions(), (40, 20), "{format:?}");
        let left = decoded.rgb.get_pixel(5, 10);
        assert!(
            left[0] > 200 && left[2] < 60,
            "{format:?}: left half is red, got {left:?}"
        );
    }
}

#[test]
fn grayscale_sixteen_bit_and_alpha_become_rgb() {
    let gray = DynamicImage::ImageLuma8(image::GrayImage::from_pixel(8, 6, image::Luma([90])));
    let deep =
        DynamicImage::ImageRgb16(image::ImageBuffer::from_pixel(8, 6, Rgb([65535u16, 0, 0])));
    let alpha = DynamicImage::ImageRgba8(image::RgbaImage::from_pixel(
        8,
        6,
        image::Rgba([0, 255, 0, 10]),
    ));
    for (img, expected) in [
        (gray, [90, 90, 90]),
        (deep, [255, 0, 0]),
        (alpha, [0, 255, 0]),
    ] {
        let decoded = decode_reader(Cursor::new(encode(&img, ImageFormat::Png))).unwrap();
        assert_eq!(decoded.rgb.get_pixel(3, 3).0, expected);
    }
}

#[test]
fn exif_orientation_is_applied() {
    let jpeg = encode(&DynamicImage::ImageRgb8(red_blue()), ImageFormat::Jpeg);
    // 6 = rotate 90° clockwise: the red left half ends up on top.
    let rotated = decode_reader(Cursor::new(with_orientation(&jpeg, 6))).unwrap();
    assert_eq!(rotated.rgb.dimensions(), (20, 40));
    let top = rotated.rgb.get_pixel(10, 5);
    let bottom = rotated.rgb.get_pixel(10, 35);
    assert!(
        top[0] > 200 && bottom[2] > 200,
        "top {top:?}, bottom {bottom:?}"
    );
    // 2 = mirrored: the red half ends up on the right.
    let mirrored = decode_reader(Cursor::new(with_orientation(&jpeg, 2))).unwrap();
    assert_eq!(mirrored.rgb.dimensions(), (40, 20));
    assert!(mirrored.rgb.get_pixel(35, 10)[0] > 200);
}

/// CRC-32 as PNG chunks use it.
fn crc32(bytes: &[u8]) -> u32 {
    let mut crc = 0xFFFF_FFFFu32;
    for &b in bytes {
        crc ^= b as u32;
        for _ in 0..8 {
            crc = if crc & 1 != 0 {
                (crc >> 1) ^ 0xEDB8_8320
            } else {
                crc >> 1
            };
        }
    }
    !crc
}

#[test]
fn a_png_claiming_huge_dimensions_is_refused_before_allocating() {
    let mut png = encode(&DynamicImage::ImageRgb8(red_blue()), ImageFormat::Png);
    // IHDR data starts at byte 16: width and height, then the chunk's CRC at 29..33.
    png[16..20].copy_from_slice(&60_000u32.to_be_bytes());
    png[20..24].copy_from_slice(&60_000u32.to_be_bytes());
    let crc = crc32(&png[12..29]);
    png[29..33].copy_from_slice(&crc.to_be_bytes());
    let err = decode_reader(Cursor::new(png))
        .err()
        .expect("must be refused");
    assert!(err.contains("too large"), "{err}");
}

#[test]
fn truncated_and_empty_files_give_reasons_that_name_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let jpeg = encode(&DynamicImage::ImageRgb8(red_blue()), ImageFormat::Jpeg);
    let png = encode(&DynamicImage::ImageRgb8(red_blue()), ImageFormat::Png);
    let mut cases = Vec::new();
    for percent in [10, 50, 99] {
        cases.push((
            format!("cut-{percent}.jpg"),
            jpeg[..jpeg.len() * percent / 100].to_vec(),
        ));
    }
    for percent in [10, 50] {
        cases.push((
            format!("cut-{percent}.png"),
            png[..png.len() * percent / 100].to_vec(),
        ));
    }
    cases.push(("empty.png".to_string(), Vec::new()));
    for (name, bytes) in cases {
        let path = dir.path().join(&name);
        std::fs::write(&path, bytes).unwrap();
        let err = decode_file(&path)
            .err()
            .unwrap_or_else(|| panic!("{name} must fail"));
        assert!(err.to_string().contains(&name), "{err}");
    }
    // The whole files still decode.
    assert!(decode_reader(Cursor::new(&jpeg)).is_ok());
    assert!(decode_reader(Cursor::new(&png)).is_ok());
}

#[test]
fn a_jpeg_with_data_after_its_end_is_complete() {
    let mut jpeg = encode(&DynamicImage::ImageRgb8(red_blue()), ImageFormat::Jpeg);
    assert!(jpeg_is_complete(&jpeg));
    jpeg.extend_from_slice(b"maker trailer");
    assert!(jpeg_is_complete(&jpeg));
    assert!(!jpeg_is_complete(&jpeg[..jpeg.len() - 20]));
}

#[test]
fn completeness_looks_for_an_end_after_the_last_scan_only() {
    // Scans at the very start and end, stuffed `FF 00` bytes, a run of `FF`s before a
    // marker, and an end marker before the last scan (which does not count).
    let cases: [(&[u8], bool); 7] = [
        (&[0xFF, 0xDA, 0x12, 0xFF, 0x00, 0xFF, 0xD9], true),
        (&[0xFF, 0xDA, 0x12, 0xFF, 0x00, 0x34], false),
        (&[0xFF, 0xD9, 0xFF, 0xDA, 0x12], false),
        (&[0x12, 0xFF, 0xFF, 0xDA, 0xFF, 0xFF, 0xD9], true),
        (&[0xFF, 0xDA, 0xFF, 0xD9, 0xFF, 0xDA], false),
        (&[0xFF, 0xD9, 0xFF], false),
        (&[0xFF], false),
    ];
    for (bytes, complete) in cases {
        assert_eq!(jpeg_is_complete(bytes), complete, "{bytes:02X?}");
    }
}

#[test]
fn model_input_is_normalised_chw_from_the_centre_crop() {
    // 448×224: resized to 512×256, then the centre 224 square lies inside the blue-red border.
    let img = RgbImage::from_fn(448, 224, |x, _| {
        if x < 224 {
            Rgb([255, 255, 255])
        } else {
            Rgb([0, 0, 0])
        }
    });
    let input = model_input(&img, &INFO.preprocess).unwrap();
    assert_eq!(input.len(), 3 * 224 * 224);
    let white = (255.0 - 127.0) / 128.0;
    let black = -127.0 / 128.0;
    // Left edge of the crop (x = 0) is white, right edge black, in every channel.
    for c in 0..3 {
        assert!((input[c * 224 * 224 + 100 * 224] - white).abs() < 1e-6);
        assert!((input[c * 224 * 224 + 100 * 224 + 223] - black).abs() < 1e-6);
    }
}

#[test]
fn the_seed_png_named_jpg_is_detected_by_content() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/seed-images/input.jpg");
    assert_eq!(
        decode_file(&path).unwrap().format,
        Format::Common(ImageFormat::Png)
    );
}

/// A `width × height` JPEG, left half red and right half blue, with some texture so that it
/// compresses like a photo rather than a flat fill.
fn large_red_blue_jpeg(width: u32, height: u32) -> Vec<u8> {
    let img = RgbImage::from_fn(width, height, |x, y| {
        let grain = ((x * 7 + y * 13) % 17) as u8;
        if x < width / 2 {
            Rgb([230 + grain, grain, grain])
        } else {
            Rgb([grain, grain, 230 + grain])
        }
    });
    encode(&DynamicImage::ImageRgb8(img), ImageFormat::Jpeg)
}

#[test]
fn a_large_jpeg_decodes_at_a_fraction_of_its_size_when_that_is_enough() {
    let bytes = large_red_blue_jpeg(2400, 1600);
    // Shorter side 1600; a use needing 256 keeps the half size (800 ≥ 2 × 256).
    let reduced = decode_bytes_for(&bytes, 256).unwrap();
    assert_eq!(reduced.rgb.dimensions(), (1200, 800));
    assert_eq!(reduced.full_size, (2400, 1600));
    assert!(reduced.rgb.get_pixel(100, 400)[0] > 200, "left is red");
    assert!(reduced.rgb.get_pixel(1100, 400)[2] > 200, "right is blue");
    // Needing 600 leaves no room to reduce: the full image comes back.
    let full = decode_bytes_for(&bytes, 600).unwrap();
    assert_eq!(full.rgb.dimensions(), (2400, 1600));
    assert_eq!(full.full_size, (2400, 1600));
    // Not a JPEG: decoded in full.
    let png = encode(
        &DynamicImage::ImageRgb8(RgbImage::new(2400, 1600)),
        ImageFormat::Png,
    );
    assert_eq!(
        decode_bytes_for(&png, 256).unwrap().rgb.dimensions(),
        (2400, 1600)
    );
}

#[test]
fn a_reduced_jpeg_decode_still_applies_exif_orientation() {
    let bytes = with_orientation(&large_red_blue_jpeg(2400, 1600), 6);
    let reduced = decode_bytes_for(&bytes, 256).unwrap();
    // Orientation 6 turns the picture a quarter clockwise: red (left) ends up on top.
    assert_eq!(reduced.rgb.dimensions(), (800, 1200));
    assert_eq!(reduced.full_size, (1600, 2400));
    assert!(reduced.rgb.get_pixel(400, 100)[0] > 200, "top is red");
    assert!(reduced.rgb.get_pixel(400, 1100)[2] > 200, "bottom is blue");
}

#[test]
fn a_truncated_large_jpeg_is_still_reported_as_truncated() {
    let bytes = large_red_blue_jpeg(2400, 1600);
    let err = decode_bytes_for(&bytes[..bytes.len() / 2], 256)
        .err()
        .expect("a cut-off JPEG must fail");
    assert!(err.contains("truncated"), "{err}");
}

#[test]
fn the_reduction_keeps_at_least_twice_what_is_needed() {
    assert_eq!(jpeg_scale_eighths(3000, 256), 2); // 12 MP: a quarter, 750 ≥ 512
    assert_eq!(jpeg_scale_eighths(4096, 256), 1); // an eighth, 512
    assert_eq!(jpeg_scale_eighths(1024, 256), 4); // a half, 512
    assert_eq!(jpeg_scale_eighths(1023, 256), 8); // in full
    assert_eq!(jpeg_scale_eighths(600, 256), 8); // the seed elephant: in full
}

#[test]
fn damage_inside_a_complete_large_jpeg_is_never_papered_over() {
    let mut bytes = large_red_blue_jpeg(2400, 1600);
    // Overwrite a run of the compressed data (past the headers, before the end marker) with
    // bytes that are no valid Huffman code: libjpeg would warn and fill grey; the reduced
    // path must give the file up instead, and the full decoder then decides.
    let middle = bytes.len() / 2;
    bytes[middle..middle + 4000].fill(0xFF);
    assert!(jpeg_is_complete(&bytes), "the end marker is still there");
    assert!(
        lookalike::decode::scaled_jpeg::decode(&bytes, 256).is_none(),
        "the reduced decoder must not hand back a damaged picture"
    );
    // Whatever the full decoder makes of it, nothing panics and an error names the damage.
    if let Err(reason) = decode_bytes_for(&bytes, 256) {
        assert!(!reason.is_empty());
    }
}

#[test]
fn a_large_grey_jpeg_decodes_reduced_to_rgb() {
    let grey = image::GrayImage::from_fn(2400, 1600, |x, _| {
        image::Luma([if x < 1200 { 40 } else { 220 }])
    });
    let bytes = encode(&DynamicImage::ImageLuma8(grey), ImageFormat::Jpeg);
    let scaled = lookalike::decode::scaled_jpeg::decode(&bytes, 256).expect("libjpeg takes grey");
    assert_eq!(scaled.rgb.dimensions(), (1200, 800));
    let dark = scaled.rgb.get_pixel(100, 400);
    let light = scaled.rgb.get_pixel(1100, 400);
    assert!(dark[0] < 60 && dark[0] == dark[2], "{dark:?}");
    assert!(light[0] > 200 && light[0] == light[1], "{light:?}");
}

#[test]
fn the_reduced_decode_agrees_with_a_full_decode_shrunk() {
    // libjpeg's scaled decode against the full decode averaged over 2×2 blocks: the same
    // picture, to within what JPEG's rounding allows.
    let bytes = large_red_blue_jpeg(2400, 1600);
    let reduced = lookalike::decode::scaled_jpeg::decode(&bytes, 256).unwrap();
    let full = decode_file_bytes(&bytes);
    let (w, h) = reduced.rgb.dimensions();
    let mut worst = 0i32;
    for y in (0..h).step_by(37) {
        for x in (0..w).step_by(41) {
            for c in 0..3 {
                let block: i32 = (0..4)
                    .map(|k| i32::from(full.get_pixel(2 * x + k % 2, 2 * y + k / 2)[c]))
                    .sum();
                let got = i32::from(reduced.rgb.get_pixel(x, y)[c]);
                worst = worst.max((got - block / 4).abs());
            }
        }
    }
    assert!(worst <= 24, "largest difference {worst}");
}

fn decode_file_bytes(bytes: &[u8]) -> RgbImage {
    lookalike::decode::decode_bytes(bytes).unwrap().rgb
}
