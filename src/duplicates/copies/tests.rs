//! One test per family of edits, each on real photos (`tests/data/photos`), each seen the way
//! `duplicates` sees it: through the thumbnail the index keeps.

use image::imageops::{self, FilterType};
use image::{Rgb, RgbImage};

use super::*;
use crate::decode::{make_thumbnail, THUMBNAIL_SIDE};

fn photo(name: &str) -> RgbImage {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data/photos")
        .join(name);
    image::open(path).unwrap().to_rgb8()
}

const PHOTOS: [&str; 4] = ["mountain.jpg", "friends.jpg", "life.jpg", "peaks.jpg"];

/// Features as `duplicates` makes them: from the stored thumbnail.
fn features(rgb: &RgbImage) -> CopyFeatures {
    let thumbnail = make_thumbnail(rgb, THUMBNAIL_SIDE).unwrap();
    CopyFeatures::of(&thumbnail.to_rgb().unwrap())
}

fn verdict(a: &RgbImage, b: &RgbImage) -> Option<Verdict> {
    match_pictures(&features(a), &features(b)).map(|m| m.verdict())
}

/// The features of each of [`PHOTOS`], made once for all tests.
fn photo_features(index: usize) -> &'static CopyFeatures {
    static MADE: std::sync::OnceLock<Vec<CopyFeatures>> = std::sync::OnceLock::new();
    &MADE.get_or_init(|| PHOTOS.iter().map(|n| features(&photo(n))).collect())[index]
}

/// Asserts that `edit` makes a copy of every photo, either way round.
fn assert_copies(family: &str, edit: impl Fn(&RgbImage) -> RgbImage) {
    for (index, name) in PHOTOS.iter().enumerate() {
        let original = photo_features(index);
        let copy = features(&edit(&photo(name)));
        for (first, second) in [(original, &copy), (&copy, original)] {
            let v = match_pictures(first, second).map(|m| m.verdict());
            assert!(
                v.is_some_and(|v| v.is_copy()),
                "{family} of {name} is not found as a copy: {v:?}"
            );
        }
    }
}

fn crop(rgb: &RgbImage, left: f32, top: f32, width: f32, height: f32) -> RgbImage {
    let (w, h) = (rgb.width() as f32, rgb.height() as f32);
    imageops::crop_imm(
        rgb,
        (left * w) as u32,
        (top * h) as u32,
        (width * w) as u32,
        (height * h) as u32,
    )
    .to_image()
}

fn resized(rgb: &RgbImage, factor: f32) -> RgbImage {
    let (w, h) = rgb.dimensions();
    imageops::resize(
        rgb,
        (w as f32 * factor) as u32,
        (h as f32 * factor) as u32,
        FilterType::Triangle,
    )
}

/// Turned by `degrees` about the centre (bilinear), cut to the largest upright rectangle of
/// the same shape that shows no corner.
fn rotated(rgb: &RgbImage, degrees: f32) -> RgbImage {
    let (w, h) = (rgb.width() as f32, rgb.height() as f32);
    let (s, c) = degrees.to_radians().sin_cos();
    let shrink = 1.0 / (c.abs() + s.abs() * w.max(h) / w.min(h));
    let (ow, oh) = ((w * shrink) as u32, (h * shrink) as u32);
    RgbImage::from_fn(ow, oh, |x, y| {
        let (dx, dy) = (x as f32 - ow as f32 / 2.0, y as f32 - oh as f32 / 2.0);
        let (sx, sy) = (c * dx - s * dy + w / 2.0, s * dx + c * dy + h / 2.0);
        bilinear(rgb, sx, sy)
    })
}

fn bilinear(rgb: &RgbImage, x: f32, y: f32) -> Rgb<u8> {
    let (x0, y0) = (x.floor().max(0.0) as u32, y.floor().max(0.0) as u32);
    let (x0, y0) = (x0.min(rgb.width() - 2), y0.min(rgb.height() - 2));
    let (fx, fy) = (
        (x - x0 as f32).clamp(0.0, 1.0),
        (y - y0 as f32).clamp(0.0, 1.0),
    );
    let p = |u: u32, v: u32, ch: usize| f32::from(rgb.get_pixel(u, v)[ch]);
    Rgb(std::array::from_fn(|ch| {
        let top = p(x0, y0, ch) * (1.0 - fx) + p(x0 + 1, y0, ch) * fx;
        let bottom = p(x0, y0 + 1, ch) * (1.0 - fx) + p(x0 + 1, y0 + 1, ch) * fx;
        (top * (1.0 - fy) + bottom * fy).round() as u8
    }))
}

/// Pasted on a canvas `grow` times its size at (`left`, `top`) of the free room, the rest
/// `fill`ed.
fn on_canvas(rgb: &RgbImage, grow: (f32, f32), at: (f32, f32), fill: Rgb<u8>) -> RgbImage {
    let (w, h) = rgb.dimensions();
    let (cw, ch) = ((w as f32 * grow.0) as u32, (h as f32 * grow.1) as u32);
    let mut canvas = RgbImage::from_pixel(cw, ch, fill);
    let x = ((cw - w) as f32 * at.0) as i64;
    let y = ((ch - h) as f32 * at.1) as i64;
    imageops::overlay(&mut canvas, rgb, x, y);
    canvas
}

/// Blocky "letters" in lines across a band: what a caption's text gives the keypoints.
fn scribble(canvas: &mut RgbImage, area: (u32, u32, u32, u32), ink: Rgb<u8>, seed: u32) {
    let (left, top, width, height) = area;
    let letter = (height / 3).max(4);
    let mut state = seed.wrapping_mul(2_654_435_761).max(1);
    let mut x = left + letter;
    while x + letter < left + width {
        state ^= state << 13;
        state ^= state >> 17;
        state ^= state << 5;
        let stroke = 1 + state % (letter / 2).max(2);
        let tall = letter / 2 + state % (letter / 2);
        for dx in 0..stroke {
            for dy in 0..tall {
                canvas.put_pixel(x + dx, top + height / 2 - tall / 2 + dy, ink);
            }
        }
        x += stroke + 1 + (state >> 8) % letter;
    }
}

fn captioned(rgb: &RgbImage, share: f32, below: bool) -> RgbImage {
    let band = (rgb.height() as f32 * share) as u32;
    let at = if below { 0.0 } else { 1.0 };
    let mut out = on_canvas(
        rgb,
        (1.0, 1.0 + band as f32 / rgb.height() as f32),
        (0.0, at),
        Rgb([250, 250, 245]),
    );
    let top = if below { rgb.height() } else { 0 };
    scribble(&mut out, (0, top, rgb.width(), band), Rgb([20, 20, 20]), 7);
    out
}

fn grey(rgb: &RgbImage) -> RgbImage {
    RgbImage::from_fn(rgb.width(), rgb.height(), |x, y| {
        let [r, g, b] = rgb.get_pixel(x, y).0.map(f32::from);
        let v = (0.299 * r + 0.587 * g + 0.114 * b) as u8;
        Rgb([v, v, v])
    })
}

/// A warm sepia-like filter with lifted blacks.
fn filtered(rgb: &RgbImage) -> RgbImage {
    RgbImage::from_fn(rgb.width(), rgb.height(), |x, y| {
        let [r, g, b] = rgb.get_pixel(x, y).0.map(f32::from);
        let tone = |v: f32| (40.0 + v * 0.8).min(255.0) as u8;
        Rgb([
            tone(0.39 * r + 0.77 * g + 0.19 * b),
            tone(0.35 * r + 0.69 * g + 0.17 * b),
            tone(0.27 * r + 0.53 * g + 0.13 * b),
        ])
    })
}

fn jpeg(rgb: &RgbImage, quality: u8) -> RgbImage {
    let mut bytes = Vec::new();
    image::codecs::jpeg::JpegEncoder::new_with_quality(&mut bytes, quality)
        .encode_image(rgb)
        .unwrap();
    image::load_from_memory(&bytes).unwrap().to_rgb8()
}

/// A light translucent rectangle with text over a corner.
fn watermarked(rgb: &RgbImage) -> RgbImage {
    let mut out = rgb.clone();
    let (w, h) = rgb.dimensions();
    let area = (w * 55 / 100, h * 80 / 100, w * 40 / 100, h / 10);
    for y in area.1..area.1 + area.3 {
        for x in area.0..area.0 + area.2 {
            let p = out.get_pixel_mut(x, y);
            p.0 = p.0.map(|v| ((u16::from(v) + 255 * 2) / 3) as u8);
        }
    }
    scribble(&mut out, area, Rgb([60, 60, 60]), 3);
    out
}

#[test]
fn crops_down_to_half_the_picture_are_copies() {
    assert_copies("a 90 % crop", |p| crop(p, 0.05, 0.05, 0.9, 0.9));
    assert_copies("a corner crop to 55 %", |p| crop(p, 0.0, 0.25, 0.74, 0.74));
    assert_copies("a centre crop to half the width", |p| {
        crop(p, 0.25, 0.1, 0.5, 0.85)
    });
}

#[test]
fn small_turns_of_any_angle_and_quarter_and_half_turns_are_copies() {
    for degrees in [3.0, 7.5, 12.0, -5.0] {
        assert_copies(&format!("a turn of {degrees}°"), |p| rotated(p, degrees));
    }
    assert_copies("a quarter turn", imageops::rotate90);
    assert_copies("a quarter turn the other way", imageops::rotate270);
    assert_copies("a half turn", imageops::rotate180);
}

#[test]
fn mirrored_copies_are_copies() {
    assert_copies("a mirror", imageops::flip_horizontal);
    assert_copies("an upside-down mirror", imageops::flip_vertical);
}

#[test]
fn borders_bars_and_frames_are_copies() {
    let black = Rgb([0, 0, 0]);
    assert_copies("letterbox bars", |p| {
        on_canvas(p, (1.0, 1.4), (0.5, 0.5), black)
    });
    assert_copies("pillarbox bars", |p| {
        on_canvas(p, (1.5, 1.0), (0.5, 0.5), black)
    });
    assert_copies("a white border", |p| {
        on_canvas(p, (1.15, 1.15), (0.5, 0.5), Rgb([255, 255, 255]))
    });
    assert_copies("a screenshot of the picture in a window", |p| {
        let mut shot = on_canvas(p, (1.7, 1.5), (0.3, 0.6), Rgb([236, 236, 236]));
        let w = shot.width();
        scribble(&mut shot, (0, 0, w, 24), Rgb([40, 40, 40]), 11);
        shot
    });
}

#[test]
fn captions_and_watermarks_are_copies() {
    assert_copies("a caption below", |p| captioned(p, 0.15, true));
    assert_copies("a caption above", |p| captioned(p, 0.12, false));
    assert_copies("a watermark", watermarked);
}

#[test]
fn grey_colour_filters_heavy_jpeg_and_small_copies_are_copies() {
    assert_copies("grey", grey);
    assert_copies("a colour filter", filtered);
    assert_copies("JPEG at quality 12", |p| jpeg(p, 12));
    assert_copies("a third of the size", |p| resized(p, 0.33));
    assert_copies("a quarter of the size", |p| resized(p, 0.25));
}

#[test]
fn two_edits_at_once_are_copies() {
    assert_copies("crop and caption", |p| {
        captioned(&crop(p, 0.1, 0.1, 0.8, 0.8), 0.12, true)
    });
    assert_copies("turn and grey", |p| grey(&rotated(p, 8.0)));
    assert_copies("small and heavy JPEG", |p| jpeg(&resized(p, 0.4), 25));
    assert_copies("mirror and quarter turn", |p| {
        imageops::rotate90(&imageops::flip_horizontal(p))
    });
    assert_copies("crop and colour filter", |p| {
        filtered(&crop(p, 0.2, 0.0, 0.7, 0.8))
    });
    assert_copies("letterbox and watermark", |p| {
        watermarked(&on_canvas(p, (1.0, 1.3), (0.5, 0.5), Rgb([0, 0, 0])))
    });
}

#[test]
fn shots_a_step_apart_are_not_copies() {
    // Two framings of one scene, each 80 % of the width and height, a fifth apart: each shows
    // a strip the other does not, as two shots from a hand-held camera do.
    for name in PHOTOS {
        let scene = photo(name);
        let first = crop(&scene, 0.0, 0.0, 0.8, 0.8);
        let second = crop(&scene, 0.2, 0.15, 0.8, 0.8);
        let v = verdict(&first, &second);
        assert!(!v.is_some_and(|v| v.is_copy()), "{name}: {v:?}");
        // They do share their middle, and the matcher does see it.
        assert!(v.is_some_and(|v| v.inliers >= MIN_INLIERS), "{name}: {v:?}");
    }
}

/// The scene as a camera turned a little to the right sees it: the far side of the frame
/// shrinks by `tilt` of the height, top and bottom, as a perspective does.
fn seen_turned(rgb: &RgbImage, tilt: f32) -> RgbImage {
    let (w, h) = (rgb.width() as f32, rgb.height() as f32);
    let corners = [(0.0, 0.0), (w, 0.0), (w, h), (0.0, h)];
    let seen = [
        (0.03 * w, 0.0),
        (0.97 * w, tilt * h),
        (0.97 * w, (1.0 - tilt) * h),
        (0.03 * w, h),
    ];
    let pairs: [PointPair; 4] = std::array::from_fn(|i| (corners[i], seen[i]));
    let look = Homography::through(&pairs).unwrap();
    RgbImage::from_fn(rgb.width(), rgb.height(), |x, y| {
        let (sx, sy) = look.project((x as f32, y as f32)).unwrap();
        bilinear(rgb, sx, sy)
    })
}

#[test]
fn a_shot_from_a_step_aside_is_not_a_copy_though_it_lies_inside_the_other() {
    for name in PHOTOS {
        let scene = photo(name);
        let v = verdict(&scene, &seen_turned(&scene, 0.06));
        // The frames lie on each other as a copy's would, and most keypoints agree with one
        // similarity; only the bend of the perspective tells the two apart.
        let v = v.unwrap_or_else(|| panic!("{name}: no match"));
        assert!(v.contained() && v.inliers >= MIN_INLIERS, "{name}: {v:?}");
        assert!(v.bend.is_bent() && !v.is_copy(), "{name}: {v:?}");
        // A copy turned by as much as the perspective moves a corner lies flat.
        let turned = verdict(&scene, &rotated(&scene, 4.0)).unwrap();
        assert!(
            !turned.bend.is_bent() && turned.is_copy(),
            "{name}: {turned:?}"
        );
    }
}

#[test]
fn different_photos_are_not_copies() {
    for (i, a) in PHOTOS.iter().enumerate() {
        for b in &PHOTOS[i + 1..] {
            let v = verdict(&photo(a), &photo(b));
            assert!(!v.is_some_and(|v| v.is_copy()), "{a} and {b}: {v:?}");
        }
    }
    let flat = RgbImage::from_pixel(300, 200, Rgb([90, 90, 90]));
    assert!(features(&flat).keypoints.is_empty());
    assert!(verdict(&flat, &photo("life.jpg")).is_none());
}

#[test]
fn a_mirrored_keypoint_has_the_descriptor_of_the_mirrored_picture() {
    let original = photo("life.jpg");
    let plain = features(&original);
    let mirror = features(&imageops::flip_horizontal(&original));
    let width = f32::from(plain.width);
    // Most keypoints reappear in the mirrored picture at the mirrored place, with the
    // descriptor `mirrored` predicts (a few bits may differ where rounding does).
    let found = plain
        .keypoints
        .iter()
        .filter(|k| {
            let m = k.mirrored(width);
            mirror.keypoints.iter().any(|o| {
                (o.x - m.x).abs() < 1.5
                    && (o.y - m.y).abs() < 1.5
                    && distance(&o.bits, &m.bits) < 24
            })
        })
        .count();
    assert!(
        found * 10 >= plain.keypoints.len() * 6,
        "{found} of {}",
        plain.keypoints.len()
    );
}

#[test]
fn features_survive_the_index_and_refuse_bytes_they_do_not_hold() {
    let f = features(&photo("peaks.jpg"));
    assert!(f.keypoints.len() > 100, "{}", f.keypoints.len());
    let bytes = f.to_bytes();
    let back = CopyFeatures::from_bytes(&bytes).unwrap();
    assert_eq!((back.width, back.height), (f.width, f.height));
    for (a, b) in f.keypoints.iter().zip(&back.keypoints) {
        assert_eq!(a.bits, b.bits);
        assert!((a.x - b.x).abs() < 0.02 && (a.y - b.y).abs() < 0.02);
        assert!(angle_between(a.angle, b.angle) < 0.013);
    }
    assert!(CopyFeatures::from_bytes(&bytes[..bytes.len() - 1]).is_none());
    let mut other_version = bytes.clone();
    other_version[0] = features::FORMAT_VERSION + 1;
    assert!(CopyFeatures::from_bytes(&other_version).is_none());
    assert!(CopyFeatures::from_bytes(&[]).is_none());
}

#[test]
fn the_match_maps_the_crop_where_it_was_cut() {
    let original = photo("mountain.jpg");
    let copy = crop(&original, 0.2, 0.1, 0.6, 0.6);
    let m = match_pictures(&features(&copy), &features(&original)).unwrap();
    // The copy's frame lands on the crop's box, in the original's working pixels.
    let (ow, oh) = m.sizes[1];
    let corners = m.frame_in_second();
    let expected = [(0.2, 0.1), (0.8, 0.1), (0.8, 0.7), (0.2, 0.7)];
    for (got, want) in corners.iter().zip(expected) {
        assert!(
            (got.0 - want.0 * ow).abs() < 6.0 && (got.1 - want.1 * oh).abs() < 6.0,
            "{corners:?}"
        );
    }
    assert!(!m.mirrored);
}
