//! Keypoints of a picture for telling its copies: FAST corners ranked by their Harris
//! response over a small scale pyramid, each with an orientation (the intensity centroid) and
//! a 256-bit binary descriptor of its surroundings, steered by that orientation (ORB, Rublee
//! et al. 2011). Turning, scaling, cropping or recolouring a picture moves and rescales its
//! corners but keeps what surrounds each one, so most keypoints of a copy find their twin.
//!
//! The descriptor's sampling pattern is made of pairs of tests that mirror each other across
//! the keypoint's axis, so the descriptor of the same corner in a mirrored picture is this
//! one with each pair of bits swapped ([`Keypoint::mirrored`]): mirrored copies are matched
//! without keeping a second set.
//!
//! Every picture is first brought to [`WORKING_SIDE`] pixels on its longer side (thumbnails
//! will do), so that a copy at a third of the size gives the same corners as its original.

use image::imageops::FilterType;
use image::{GrayImage, RgbImage};

/// The longer side of the grey picture keypoints are found in.
pub const WORKING_SIDE: u32 = 256;
/// Keypoints kept per picture: 38 bytes each once stored.
pub const MAX_KEYPOINTS: usize = 300;
/// Each pyramid level is this much smaller than the one before.
const LEVEL_SCALE: f32 = 1.25;
/// Pyramid levels: from 256 pixels down to about 84, so copies up to three times smaller in
/// the frame (a 55 % crop, a picture in a frame) find their scale.
const LEVELS: usize = 6;
/// FAST: how much brighter or darker (0–255) nine pixels of the ring must all be; a soft
/// picture with too few corners at the first is searched again at the next.
const FAST_THRESHOLDS: [i16; 3] = [12, 6, 3];
/// The sampling patch's radius; keypoints this close to an edge of their level are skipped.
const PATCH_RADIUS: i32 = 15;
const BORDER: i32 = PATCH_RADIUS + 2;

/// One keypoint: where it is (pixels of the working picture, level 0), its orientation, its
/// pyramid level, and its descriptor.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Keypoint {
    pub x: f32,
    pub y: f32,
    /// Radians, in (-π, π].
    pub angle: f32,
    pub level: u8,
    pub bits: [u64; 4],
}

impl Keypoint {
    /// The same keypoint in the picture mirrored left to right (`width` of the working
    /// picture): each mirrored pair of tests swaps, the orientation turns to π - angle.
    pub fn mirrored(&self, width: f32) -> Keypoint {
        const EVEN: u64 = 0x5555_5555_5555_5555;
        let swap = |d: u64| ((d & EVEN) << 1) | ((d >> 1) & EVEN);
        let angle = std::f32::consts::PI - self.angle;
        Keypoint {
            x: width - 1.0 - self.x,
            angle: if angle > std::f32::consts::PI {
                angle - std::f32::consts::TAU
            } else {
                angle
            },
            bits: self.bits.map(swap),
            ..*self
        }
    }

    /// The scale of the keypoint's level relative to level 0.
    pub fn scale(&self) -> f32 {
        LEVEL_SCALE.powi(i32::from(self.level))
    }
}

/// Bits that differ between two descriptors (0–256).
#[inline(always)]
pub fn distance(a: &[u64; 4], b: &[u64; 4]) -> u32 {
    (a[0] ^ b[0]).count_ones()
        + (a[1] ^ b[1]).count_ones()
        + (a[2] ^ b[2]).count_ones()
        + (a[3] ^ b[3]).count_ones()
}

/// A picture's keypoints, the size of its working picture, and which parts of it show
/// something.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct CopyFeatures {
    pub width: u16,
    pub height: u16,
    pub keypoints: Vec<Keypoint>,
    /// Per row of a [`GRID`] × [`GRID`] grid over the picture, a bit per cell that is not
    /// plain: a border, a letterbox bar or an empty margin is plain, a scene is not.
    pub textured: [u16; GRID],
}

/// Cells per side of the grid [`CopyFeatures::textured`] describes.
pub const GRID: usize = 16;
/// A cell whose grey levels spread less than this (standard deviation, 0–255, after the
/// contrast is stretched) is plain.
const PLAIN_SPREAD: f32 = 6.0;

/// The first byte of stored features: a change to how they are made changes it, and stored
/// features of another version are made again.
pub const FORMAT_VERSION: u8 = 3;
const STORED_KEYPOINT: usize = 38;
const HEADER: usize = 7 + 2 * GRID;

impl CopyFeatures {
    /// Finds the keypoints of `rgb`.
    pub fn of(rgb: &RgbImage) -> CopyFeatures {
        let gray = working_picture(rgb);
        let (width, height) = (gray.width() as u16, gray.height() as u16);
        let textured = textured_cells(&gray);
        let pyramid = pyramid(gray);
        let mut found: Vec<(f32, Keypoint)> = Vec::new();
        for threshold in FAST_THRESHOLDS {
            found = (pyramid.iter().enumerate())
                .flat_map(|(level, image)| level_keypoints(image, level as u8, threshold))
                .collect();
            if found.len() >= MAX_KEYPOINTS {
                break;
            }
        }
        found.sort_by(|a, b| b.0.total_cmp(&a.0));
        let keypoints = spread(found);
        CopyFeatures {
            width,
            height,
            keypoints,
            textured,
        }
    }

    /// The features as stored in an index: a version byte, the working size, the count, the
    /// textured cells, then per keypoint x and y in 1/64 pixel, the angle in 1/256 turn, the level and the
    /// descriptor.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(HEADER + self.keypoints.len() * STORED_KEYPOINT);
        out.push(FORMAT_VERSION);
        out.extend(self.width.to_le_bytes());
        out.extend(self.height.to_le_bytes());
        out.extend((self.keypoints.len() as u16).to_le_bytes());
        self.textured
            .iter()
            .for_each(|row| out.extend(row.to_le_bytes()));
        for k in &self.keypoints {
            out.extend(((k.x * 64.0).round() as u16).to_le_bytes());
            out.extend(((k.y * 64.0).round() as u16).to_le_bytes());
            let turn = k.angle.rem_euclid(std::f32::consts::TAU) / std::f32::consts::TAU;
            out.push(((turn * 256.0).round() as u32 % 256) as u8);
            out.push(k.level);
            k.bits.iter().for_each(|w| out.extend(w.to_le_bytes()));
        }
        out
    }

    /// Features read back from an index; `None` for another version or bytes that do not
    /// hold what they claim.
    pub fn from_bytes(bytes: &[u8]) -> Option<CopyFeatures> {
        let (&version, rest) = bytes.split_first()?;
        let u16_at =
            |b: &[u8], at: usize| Some(u16::from_le_bytes(b.get(at..at + 2)?.try_into().ok()?));
        let (width, height, count) = (u16_at(rest, 0)?, u16_at(rest, 2)?, u16_at(rest, 4)?);
        let textured: [u16; GRID] =
            std::array::from_fn(|row| u16_at(rest, 6 + 2 * row).unwrap_or(0));
        let body = rest.get(6 + 2 * GRID..)?;
        let side_ok = |s: u16| (1..=WORKING_SIDE as u16).contains(&s);
        if version != FORMAT_VERSION
            || !side_ok(width)
            || !side_ok(height)
            || body.len() != usize::from(count) * STORED_KEYPOINT
            || usize::from(count) > MAX_KEYPOINTS
        {
            return None;
        }
        let keypoints = body
            .chunks_exact(STORED_KEYPOINT)
            .map(|c| {
                let word = |i: usize| {
                    u64::from_le_bytes(c[6 + 8 * i..14 + 8 * i].try_into().unwrap_or([0; 8]))
                };
                Keypoint {
                    x: f32::from(u16::from_le_bytes([c[0], c[1]])) / 64.0,
                    y: f32::from(u16::from_le_bytes([c[2], c[3]])) / 64.0,
                    angle: wrapped(f32::from(c[4]) / 256.0 * std::f32::consts::TAU),
                    level: c[5],
                    bits: [word(0), word(1), word(2), word(3)],
                }
            })
            .collect();
        Some(CopyFeatures {
            width,
            height,
            keypoints,
            textured,
        })
    }
}

/// An angle brought into (-π, π].
fn wrapped(angle: f32) -> f32 {
    use std::f32::consts::{PI, TAU};
    let a = angle.rem_euclid(TAU);
    if a > PI {
        a - TAU
    } else {
        a
    }
}

/// The picture in grey, its longer side [`WORKING_SIDE`] (small copies are enlarged, so that
/// both sides of a pair see corners at the same scale).
fn working_picture(rgb: &RgbImage) -> GrayImage {
    let gray = image::DynamicImage::ImageRgb8(rgb.clone()).to_luma8();
    let longer = gray.width().max(gray.height()).max(1);
    let scale = WORKING_SIDE as f32 / longer as f32;
    let (w, h) = (
        ((gray.width() as f32 * scale).round() as u32).clamp(1, WORKING_SIDE),
        ((gray.height() as f32 * scale).round() as u32).clamp(1, WORKING_SIDE),
    );
    let mut gray = match (w, h) == gray.dimensions() {
        true => gray,
        false => image::imageops::resize(&gray, w, h, FilterType::Triangle),
    };
    stretch_contrast(&mut gray);
    gray
}

/// Which cells of the grid over `gray` are not plain (see [`CopyFeatures::textured`]).
fn textured_cells(gray: &GrayImage) -> [u16; GRID] {
    let (w, h) = (gray.width() as usize, gray.height() as usize);
    let mut sums = [[(0f32, 0f32, 0f32); GRID]; GRID];
    for (i, &v) in gray.as_raw().iter().enumerate() {
        let (x, y) = (i % w, i / w);
        let cell = &mut sums[(y * GRID / h).min(GRID - 1)][(x * GRID / w).min(GRID - 1)];
        let v = f32::from(v);
        *cell = (cell.0 + 1.0, cell.1 + v, cell.2 + v * v);
    }
    sums.map(|row| {
        (0..GRID).fold(0u16, |bits, cx| {
            let (n, sum, squares) = row[cx];
            let mean = sum / n.max(1.0);
            let spread = (squares / n.max(1.0) - mean * mean).max(0.0).sqrt();
            match spread >= PLAIN_SPREAD {
                true => bits | 1 << cx,
                false => bits,
            }
        })
    })
}

/// Spreads the grey levels between the darkest and the brightest percent over 0–255, so that
/// a darker, brighter, greyed or tinted copy finds the corners its original has, and a dim
/// picture finds any at all. A flat picture is left flat.
fn stretch_contrast(gray: &mut GrayImage) {
    let mut histogram = [0usize; 256];
    gray.as_raw()
        .iter()
        .for_each(|&v| histogram[usize::from(v)] += 1);
    let total = gray.as_raw().len();
    let level_at = |share: f32| {
        let wanted = (total as f32 * share) as usize;
        let mut seen = 0;
        (0..256)
            .find(|&v| {
                seen += histogram[v];
                seen > wanted
            })
            .unwrap_or(255) as f32
    };
    let (low, high) = (level_at(0.01), level_at(0.99));
    if high - low < 8.0 {
        return;
    }
    let scale = 255.0 / (high - low);
    for v in gray.iter_mut() {
        *v = ((f32::from(*v) - low) * scale).clamp(0.0, 255.0).round() as u8;
    }
}

/// The working picture and its smaller levels, down to where the patch no longer fits.
fn pyramid(gray: GrayImage) -> Vec<GrayImage> {
    let mut levels = vec![gray];
    while levels.len() < LEVELS {
        let last = &levels[levels.len() - 1];
        let (w, h) = (
            (last.width() as f32 / LEVEL_SCALE).round() as u32,
            (last.height() as f32 / LEVEL_SCALE).round() as u32,
        );
        if w.min(h) as i32 <= 2 * BORDER + 4 {
            break;
        }
        levels.push(image::imageops::resize(last, w, h, FilterType::Triangle));
    }
    levels
}

/// Keeps the strongest keypoints, at most [`MAX_KEYPOINTS`], but no more than a fair share
/// from any one cell of a 4 × 4 grid, so that one busy corner of a picture (a caption's text,
/// a watermark) cannot crowd out the rest.
fn spread(ranked: Vec<(f32, Keypoint)>) -> Vec<Keypoint> {
    const CELLS: usize = 4;
    let per_cell = MAX_KEYPOINTS / (CELLS * CELLS) * 2;
    let (max_x, max_y) = ranked.iter().fold((1f32, 1f32), |(mx, my), (_, k)| {
        (mx.max(k.x + 1.0), my.max(k.y + 1.0))
    });
    let mut counts = [0usize; CELLS * CELLS];
    let mut kept = Vec::new();
    let mut overflow = Vec::new();
    for (_, k) in ranked {
        let cx = ((k.x / max_x) * CELLS as f32) as usize;
        let cy = ((k.y / max_y) * CELLS as f32) as usize;
        let cell = cy.min(CELLS - 1) * CELLS + cx.min(CELLS - 1);
        match counts[cell] < per_cell {
            true => {
                counts[cell] += 1;
                kept.push(k);
            }
            false => overflow.push(k),
        }
    }
    kept.truncate(MAX_KEYPOINTS);
    let room = MAX_KEYPOINTS - kept.len();
    kept.extend(overflow.into_iter().take(room));
    kept
}

/// FAST corners of one level, scored by Harris, local maxima only, with orientation and
/// descriptor; positions in level-0 pixels.
fn level_keypoints(gray: &GrayImage, level: u8, threshold: i16) -> Vec<(f32, Keypoint)> {
    let (w, h) = (gray.width() as i32, gray.height() as i32);
    let px = |x: i32, y: i32| i16::from(gray.as_raw()[(y * w + x) as usize]);
    let mut score = vec![0f32; (w * h) as usize];
    for y in BORDER..h - BORDER {
        for x in BORDER..w - BORDER {
            if is_fast_corner(&px, x, y, threshold) {
                score[(y * w + x) as usize] = harris(&px, x, y).max(f32::MIN_POSITIVE);
            }
        }
    }
    let smooth = smoothed(gray);
    let scale = LEVEL_SCALE.powi(i32::from(level));
    let mut found = Vec::new();
    for y in BORDER..h - BORDER {
        for x in BORDER..w - BORDER {
            let s = score[(y * w + x) as usize];
            if s <= 0.0 || !is_local_maximum(&score, w, x, y) {
                continue;
            }
            let angle = orientation(&px, x, y);
            let bits = describe(&smooth, w, x, y, angle);
            let keypoint = Keypoint {
                x: x as f32 * scale,
                y: y as f32 * scale,
                angle,
                level,
                bits,
            };
            found.push((s, keypoint));
        }
    }
    found
}

/// The 16 pixels of a radius-3 ring, in order around it.
const RING: [(i32, i32); 16] = [
    (0, -3),
    (1, -3),
    (2, -2),
    (3, -1),
    (3, 0),
    (3, 1),
    (2, 2),
    (1, 3),
    (0, 3),
    (-1, 3),
    (-2, 2),
    (-3, 1),
    (-3, 0),
    (-3, -1),
    (-2, -2),
    (-1, -3),
];

/// FAST-9: nine contiguous ring pixels all brighter, or all darker, than the centre by the
/// threshold.
fn is_fast_corner(px: &impl Fn(i32, i32) -> i16, x: i32, y: i32, threshold: i16) -> bool {
    let centre = px(x, y);
    // The four compass points: at least three must agree for any run of nine.
    let compass = [RING[0], RING[4], RING[8], RING[12]].map(|(dx, dy)| px(x + dx, y + dy));
    let brighter = compass.iter().filter(|&&v| v > centre + threshold).count();
    let darker = compass.iter().filter(|&&v| v < centre - threshold).count();
    if brighter < 2 && darker < 2 {
        return false;
    }
    let ring = RING.map(|(dx, dy)| px(x + dx, y + dy));
    [1i16, -1].into_iter().any(|sign| {
        let mut run = 0;
        (0..RING.len() + 8).any(|i| {
            let v = ring[i % RING.len()];
            run = match sign * (v - centre) > threshold {
                true => run + 1,
                false => 0,
            };
            run >= 9
        })
    })
}

/// The Harris corner response over a 7 × 7 window of Sobel gradients.
fn harris(px: &impl Fn(i32, i32) -> i16, x: i32, y: i32) -> f32 {
    let (mut xx, mut yy, mut xy) = (0f32, 0f32, 0f32);
    for v in y - 3..=y + 3 {
        for u in x - 3..=x + 3 {
            let p = |du: i32, dv: i32| f32::from(px(u + du, v + dv));
            let gx = (p(1, -1) + 2.0 * p(1, 0) + p(1, 1)) - (p(-1, -1) + 2.0 * p(-1, 0) + p(-1, 1));
            let gy = (p(-1, 1) + 2.0 * p(0, 1) + p(1, 1)) - (p(-1, -1) + 2.0 * p(0, -1) + p(1, -1));
            xx += gx * gx;
            yy += gy * gy;
            xy += gx * gy;
        }
    }
    xx * yy - xy * xy - 0.04 * (xx + yy) * (xx + yy)
}

fn is_local_maximum(score: &[f32], w: i32, x: i32, y: i32) -> bool {
    let s = score[(y * w + x) as usize];
    (-1..=1).all(|dy| {
        (-1..=1).all(|dx| {
            let o = score[((y + dy) * w + x + dx) as usize];
            (dx, dy) == (0, 0) || o < s || (o == s && (dy, dx) < (0, 0))
        })
    })
}

/// The direction from the keypoint to the centroid of brightness within the patch.
fn orientation(px: &impl Fn(i32, i32) -> i16, x: i32, y: i32) -> f32 {
    let (mut m10, mut m01) = (0f32, 0f32);
    for dy in -PATCH_RADIUS..=PATCH_RADIUS {
        for dx in -PATCH_RADIUS..=PATCH_RADIUS {
            if dx * dx + dy * dy <= PATCH_RADIUS * PATCH_RADIUS {
                let v = f32::from(px(x + dx, y + dy));
                m10 += dx as f32 * v;
                m01 += dy as f32 * v;
            }
        }
    }
    m01.atan2(m10)
}

/// The level blurred by a 5-tap binomial filter, so that the descriptor's single-pixel tests
/// do not hang on noise or JPEG blocks.
fn smoothed(gray: &GrayImage) -> Vec<u16> {
    let (w, h) = (gray.width() as usize, gray.height() as usize);
    let src = gray.as_raw();
    let taps = [1u32, 4, 6, 4, 1];
    let mut across = vec![0u32; w * h];
    for y in 0..h {
        for x in 0..w {
            across[y * w + x] = (0..5)
                .map(|i| taps[i] * u32::from(src[y * w + (x + i).saturating_sub(2).min(w - 1)]))
                .sum();
        }
    }
    let mut out = vec![0u16; w * h];
    for y in 0..h {
        for x in 0..w {
            let sum: u32 = (0..5)
                .map(|i| taps[i] * across[(y + i).saturating_sub(2).min(h - 1) * w + x])
                .sum();
            out[y * w + x] = (sum / 16) as u16;
        }
    }
    out
}

/// The 256 tests: 128 pairs of points, each followed by its mirror image across the
/// keypoint's axis (y negated), drawn once from a fixed seed, Gaussian around the keypoint
/// and inside the patch.
fn pattern() -> &'static [[(i8, i8); 2]; 256] {
    static PATTERN: std::sync::OnceLock<[[(i8, i8); 2]; 256]> = std::sync::OnceLock::new();
    PATTERN.get_or_init(|| {
        let mut state = 0x9E37_79B9_7F4A_7C15u64;
        let mut next = move || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            (state >> 11) as f64 / (1u64 << 53) as f64
        };
        let mut point = || loop {
            // Box–Muller, sigma a fifth of the patch's width.
            let (u, v) = (next().max(1e-12), next());
            let r = (-2.0 * u.ln()).sqrt() * (2.0 * PATCH_RADIUS as f64 + 1.0) / 5.0;
            let (x, y) = (
                r * (std::f64::consts::TAU * v).cos(),
                r * (std::f64::consts::TAU * v).sin(),
            );
            let (x, y) = (x.round() as i32, y.round() as i32);
            if x * x + y * y <= (PATCH_RADIUS - 1) * (PATCH_RADIUS - 1) {
                return (x as i8, y as i8);
            }
        };
        let mut tests = [[(0i8, 0i8); 2]; 256];
        for pair in 0..128 {
            let (a, b) = (point(), point());
            tests[2 * pair] = [a, b];
            tests[2 * pair + 1] = [(a.0, -a.1), (b.0, -b.1)];
        }
        tests
    })
}

/// The steered binary descriptor: bit i says whether the first point of test i, turned by
/// the keypoint's angle, is darker than the second.
fn describe(smooth: &[u16], w: i32, x: i32, y: i32, angle: f32) -> [u64; 4] {
    let (s, c) = angle.sin_cos();
    let at = |(px, py): (i8, i8)| {
        let (px, py) = (f32::from(px), f32::from(py));
        let u = x + (c * px - s * py).round() as i32;
        let v = y + (s * px + c * py).round() as i32;
        smooth[(v * w + u) as usize]
    };
    let mut bits = [0u64; 4];
    for (i, [a, b]) in pattern().iter().enumerate() {
        if at(*a) < at(*b) {
            bits[i / 64] |= 1 << (i % 64);
        }
    }
    bits
}
