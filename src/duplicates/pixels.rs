//! A pixel-level check that two pictures are the same photo, for the `photo` level.
//!
//! An embedding describes what a picture shows, so another shot of the same scene scores as
//! high as an edited copy. An edited copy, though, keeps the original's layout: the same
//! light and dark areas in the same places, give or take a crop, a slight rotation, a caption
//! bar or a mirror. So each picture is reduced to a small grey print (24 × 24, brightness and
//! contrast removed), and a pair's pixel match is how well some plausible view of one —
//! cropped to 75–95 % at 25 positions, without a caption band, turned by up to 8°, mirrored —
//! matches the whole of the other by normalised correlation. Together with the pair's cosine
//! it decides whether the two are one photo ([`COPY_EVIDENCE`]). Prints are made from the thumbnails lookalike already
//! keeps, so no file is read again.

use image::imageops::FilterType;
use image::{GrayImage, RgbImage};
use rayon::prelude::*;

use super::Neighbours;

/// Two look-alikes count as one photo when their cosine and their pixel match add up to at
/// least this: the closer the embeddings, the less the pixels must agree (a rotated or cropped
/// copy, which the few views here match only roughly, keeps a high cosine), and the other way
/// round (a copy re-saved at JPEG quality 20 loses some cosine but none of its layout). At the
/// `photo` level's cosine of 0.80 that asks for a perfect match, at 0.90 for 0.90. Measured
/// with `scripts/make_duplicate_bench.py` on two folders made with different seeds.
pub const COPY_EVIDENCE: f32 = 1.80;

/// The pixel matches of every pair of look-alikes at a threshold.
#[derive(Debug, Clone, Default)]
pub struct PixelMatches {
    /// Per image: (look-alike, how well this image's best view matches the look-alike's
    /// whole, their cosine), sorted by look-alike.
    lists: Vec<Vec<(u32, f32, f32)>>,
}

impl PixelMatches {
    /// Compares every pair of `neighbours` at or above `threshold`, from the pictures
    /// `picture` gives (thumbnails will do); images without one match nothing.
    pub fn find(
        neighbours: &Neighbours,
        threshold: f32,
        picture: &(dyn Fn(usize) -> Option<RgbImage> + Sync),
    ) -> Self {
        let partners = |i: usize| {
            neighbours
                .of(i)
                .iter()
                .take_while(move |p| p.1 >= threshold)
        };
        let prints: Vec<Option<Prints>> = (0..neighbours.len())
            .into_par_iter()
            .map(|i| {
                partners(i).next()?;
                Some(Prints::new(&picture(i)?))
            })
            .collect();
        let lists = (0..neighbours.len())
            .into_par_iter()
            .map(|i| {
                let Some(mine) = &prints[i] else {
                    return Vec::new();
                };
                let others: Vec<(u32, f32, &Prints)> = partners(i)
                    .filter_map(|&(b, cosine)| Some((b, cosine, prints[b as usize].as_ref()?)))
                    .collect();
                let refs: Vec<&Prints> = others.iter().map(|o| o.2).collect();
                let scores = mine.best_view_matches(&refs);
                let mut matched: Vec<(u32, f32, f32)> = (others.iter().zip(scores))
                    .map(|(&(b, cosine, _), pixels)| (b, pixels, cosine))
                    .collect();
                matched.sort_unstable_by_key(|m| m.0);
                matched
            })
            .collect();
        PixelMatches { lists }
    }

    /// The better of either picture's views against the other; `None` if they were not
    /// compared.
    pub fn score(&self, a: usize, b: usize) -> Option<f32> {
        let (x, y) = (self.entry(a, b), self.entry(b, a));
        match (x, y) {
            (Some(x), Some(y)) => Some(x.1.max(y.1)),
            (x, y) => x.or(y).map(|m| m.1),
        }
    }

    /// Whether `a` and `b` are one photo: cosine and pixel match together (see
    /// [`COPY_EVIDENCE`]).
    pub fn confirms(&self, a: usize, b: usize) -> bool {
        let cosine = self.entry(a, b).or(self.entry(b, a)).map(|m| m.2);
        match (cosine, self.score(a, b)) {
            (Some(cosine), Some(pixels)) => cosine + pixels >= COPY_EVIDENCE,
            _ => false,
        }
    }

    fn entry(&self, from: usize, to: usize) -> Option<(u32, f32, f32)> {
        let list = self.lists.get(from)?;
        let at = list.binary_search_by_key(&(to as u32), |m| m.0).ok()?;
        Some(list[at])
    }
}

/// Side of a print.
const SIDE: usize = 24;
const PRINT: usize = SIDE * SIDE;
/// Pictures are first shrunk to about this many pixels a side, with antialiasing, so that
/// sampling the small print does not alias.
const WORKING_SIDE: u32 = 72;

/// A picture ready to be compared: its grey working copy and the print of the whole.
pub struct Prints {
    gray: GrayImage,
    whole: [f32; PRINT],
}

impl Prints {
    pub fn new(rgb: &RgbImage) -> Self {
        let scale = WORKING_SIDE as f32 / rgb.width().max(rgb.height()).max(1) as f32;
        let (w, h) = (
            ((rgb.width() as f32 * scale).round() as u32).max(1),
            ((rgb.height() as f32 * scale).round() as u32).max(1),
        );
        let small = image::imageops::resize(rgb, w, h, FilterType::Triangle);
        let gray = image::DynamicImage::ImageRgb8(small).to_luma8();
        let whole = sample(&gray, View::whole(&gray));
        Prints { gray, whole }
    }

    /// How well some view of this picture matches the whole of each of `others`: 1 for the
    /// same pixels, around 0 for unrelated ones. The views are sampled once for all; a
    /// mirrored view is its unmirrored print flipped left to right.
    pub fn best_view_matches(&self, others: &[&Prints]) -> Vec<f32> {
        let (w, h) = (self.gray.width() as f32, self.gray.height() as f32);
        let views: Vec<[f32; PRINT]> = views(w, h)
            .flat_map(|view| {
                let print = sample(&self.gray, view);
                [print, flipped(&print)]
            })
            .collect();
        (others.iter())
            .map(|other| {
                (views.iter())
                    .map(|v| dot(v, &other.whole))
                    .fold(f32::MIN, f32::max)
            })
            .collect()
    }
}

/// How likely `a` and `b` are one photo, one of them edited: the better of either's views
/// against the other.
pub fn copy_score(a: &Prints, b: &Prints) -> f32 {
    a.best_view_matches(&[b])[0].max(b.best_view_matches(&[a])[0])
}

/// A region of a picture to sample: its centre, half sizes and turn, all in pixels and
/// radians.
#[derive(Debug, Clone, Copy)]
struct View {
    centre: (f32, f32),
    half: (f32, f32),
    angle: f32,
}

impl View {
    fn whole(gray: &GrayImage) -> Self {
        let (w, h) = (gray.width() as f32, gray.height() as f32);
        View {
            centre: (w / 2.0, h / 2.0),
            half: (w / 2.0, h / 2.0),
            angle: 0.0,
        }
    }
}

/// The views an edited copy may show of its original (each is also tried mirrored).
fn views(w: f32, h: f32) -> impl Iterator<Item = View> {
    let view = |cx: f32, cy: f32, hw: f32, hh: f32, angle: f32| View {
        centre: (cx, cy),
        half: (hw, hh),
        angle,
    };
    let mut all = vec![view(w / 2.0, h / 2.0, w / 2.0, h / 2.0, 0.0)];
    // Crops to 75–95 % of each side (the two sides within 10 % of each other), at 5 × 5
    // positions from corner to corner: a crop anywhere lies within a few pixels of one.
    let sides = [0.95f32, 0.9, 0.85, 0.8, 0.75];
    for (sx, sy) in sides
        .iter()
        .flat_map(|&x| sides.iter().map(move |&y| (x, y)))
    {
        if (sx - sy).abs() > 0.11 {
            continue;
        }
        for fx in [0.0, 0.25, 0.5, 0.75, 1.0] {
            for fy in [0.0, 0.25, 0.5, 0.75, 1.0] {
                let cx = fx * (1.0 - sx) * w + sx * w / 2.0;
                let cy = fy * (1.0 - sy) * h + sy * h / 2.0;
                all.push(view(cx, cy, sx * w / 2.0, sy * h / 2.0, 0.0));
            }
        }
    }
    // Without a caption band above or below.
    for keep in [0.87, 0.9] {
        all.push(view(w / 2.0, keep * h / 2.0, w / 2.0, keep * h / 2.0, 0.0));
        all.push(view(
            w / 2.0,
            h - keep * h / 2.0,
            w / 2.0,
            keep * h / 2.0,
            0.0,
        ));
    }
    // Turned, and cropped so that no corner is empty, as photo editors do.
    for degrees in [-8.0f32, -6.0, -4.0, -2.0, 2.0, 4.0, 6.0, 8.0] {
        let a = degrees.to_radians().abs();
        let k = 1.0 / (a.cos() + a.sin() * (w / h).max(h / w));
        all.push(view(
            w / 2.0,
            h / 2.0,
            k * w / 2.0,
            k * h / 2.0,
            degrees.to_radians(),
        ));
    }
    all.into_iter()
}

/// Where the SIDE samples of a print's row or column fall, from -1 to 1 across the view.
const OFFSETS: [f32; SIDE] = {
    let mut offsets = [0.0; SIDE];
    let mut k = 0;
    while k < SIDE {
        offsets[k] = ((k as f32 + 0.5) / SIDE as f32) * 2.0 - 1.0;
        k += 1;
    }
    offsets
};

/// The view sampled on a SIDE × SIDE grid (bilinear), with its mean removed and scaled to unit
/// length; all zeros for a flat view.
fn sample(gray: &GrayImage, view: View) -> [f32; PRINT] {
    let mut out = match view.angle == 0.0 {
        true => sample_upright(gray, view),
        false => sample_turned(gray, view),
    };
    normalise(&mut out);
    out
}

/// Most views are upright: there a sample's column decides its x and its row its y, so the
/// interpolation weights are worked out once per column and row.
fn sample_upright(gray: &GrayImage, view: View) -> [f32; PRINT] {
    let (pixels, stride) = (gray.as_raw(), gray.width() as usize);
    // Indices clamped to the picture, so every lookup below is in bounds.
    let at = |centre: f32, half: f32, size: u32| {
        OFFSETS.map(|o| {
            let p = centre + o * half - 0.5;
            let (p0, f) = (p.floor(), p - p.floor());
            let last = i64::from(size) - 1;
            let low = (p0 as i64).clamp(0, last) as usize;
            let high = (p0 as i64 + 1).clamp(0, last) as usize;
            (low, high, f)
        })
    };
    let columns = at(view.centre.0, view.half.0, gray.width());
    let rows = at(view.centre.1, view.half.1, gray.height());
    let mut out = [0.0f32; PRINT];
    for (row, &(y0, y1, fy)) in out.chunks_exact_mut(SIDE).zip(&rows) {
        let (top, bottom) = (&pixels[y0 * stride..], &pixels[y1 * stride..]);
        for (value, &(x0, x1, fx)) in row.iter_mut().zip(&columns) {
            let upper = f32::from(top[x0]) * (1.0 - fx) + f32::from(top[x1]) * fx;
            let lower = f32::from(bottom[x0]) * (1.0 - fx) + f32::from(bottom[x1]) * fx;
            *value = upper * (1.0 - fy) + lower * fy;
        }
    }
    out
}

/// A turned view, sample by sample.
fn sample_turned(gray: &GrayImage, view: View) -> [f32; PRINT] {
    let (w, h) = (i64::from(gray.width()), i64::from(gray.height()));
    let (pixels, stride) = (gray.as_raw(), gray.width() as usize);
    // Clamped to the picture, so every index is in bounds.
    let pixel = |x: i64, y: i64| {
        f32::from(pixels[y.clamp(0, h - 1) as usize * stride + x.clamp(0, w - 1) as usize])
    };
    let (sin, cos) = view.angle.sin_cos();
    let mut out = [0.0f32; PRINT];
    for (row, &v) in out.chunks_exact_mut(SIDE).zip(&OFFSETS) {
        for (value, &u) in row.iter_mut().zip(&OFFSETS) {
            let (dx, dy) = (u * view.half.0, v * view.half.1);
            let x = view.centre.0 + cos * dx - sin * dy - 0.5;
            let y = view.centre.1 + sin * dx + cos * dy - 0.5;
            let (x0, y0) = (x.floor(), y.floor());
            let (fx, fy) = (x - x0, y - y0);
            let (x0, y0) = (x0 as i64, y0 as i64);
            let top = pixel(x0, y0) * (1.0 - fx) + pixel(x0 + 1, y0) * fx;
            let bottom = pixel(x0, y0 + 1) * (1.0 - fx) + pixel(x0 + 1, y0 + 1) * fx;
            *value = top * (1.0 - fy) + bottom * fy;
        }
    }
    out
}

/// The print of the mirrored view: each row reversed.
fn flipped(print: &[f32; PRINT]) -> [f32; PRINT] {
    let mut out = *print;
    out.chunks_exact_mut(SIDE).for_each(<[f32]>::reverse);
    out
}

fn normalise(print: &mut [f32; PRINT]) {
    let mean = print.iter().sum::<f32>() / PRINT as f32;
    print.iter_mut().for_each(|x| *x -= mean);
    let norm = print.iter().map(|x| x * x).sum::<f32>().sqrt();
    // A flat view has no layout to compare.
    let scale = if norm > 1e-3 { 1.0 / norm } else { 0.0 };
    print.iter_mut().for_each(|x| *x *= scale);
}

/// Eight running sums, so that the compiler can keep them in one vector register.
fn dot(a: &[f32; PRINT], b: &[f32; PRINT]) -> f32 {
    let mut sums = [0.0f32; 8];
    for (x, y) in a.chunks_exact(8).zip(b.chunks_exact(8)) {
        for k in 0..8 {
            sums[k] += x[k] * y[k];
        }
    }
    sums.iter().sum()
}

#[cfg(test)]
mod tests {
    use super::*;
    use image::imageops;

    fn seed(name: &str) -> RgbImage {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/data/seed-images")
            .join(name);
        image::open(path).unwrap().to_rgb8()
    }

    #[test]
    fn edited_copies_match_and_other_pictures_do_not() {
        let original = seed("Tiger.jpg");
        let (w, h) = original.dimensions();
        let prints = Prints::new(&original);
        let mirrored = Prints::new(&imageops::flip_horizontal(&original));
        let cropped = imageops::crop_imm(&original, w / 20, h / 20, w * 9 / 10, h * 9 / 10);
        let cropped = Prints::new(&cropped.to_image());
        let small = Prints::new(&imageops::resize(
            &original,
            w / 3,
            h / 3,
            FilterType::Triangle,
        ));
        let rotated = Prints::new(&image::imageops::rotate90(&original));
        assert!(copy_score(&prints, &mirrored) > 0.95, "mirror");
        // 0.86 is the match a pair with a cosine of 0.94 needs to count as one photo.
        assert!(copy_score(&prints, &cropped) > 0.86, "crop");
        assert!(copy_score(&prints, &small) > 0.95, "downscale");
        assert!((copy_score(&prints, &prints) - 1.0).abs() < 1e-4);
        // Another tiger, and the same tiger turned a quarter: not the same photo.
        let other_tiger = Prints::new(&seed("Tiger2.jpg"));
        assert!(
            copy_score(&prints, &other_tiger) < 0.86,
            "another photo of a tiger"
        );
        assert!(
            copy_score(&prints, &rotated) < 0.86,
            "turned far more than an edit does"
        );
        let elephant = Prints::new(&seed("elephant.jpg"));
        assert!(copy_score(&prints, &elephant) < 0.6, "an unrelated photo");
    }

    #[test]
    fn a_flat_picture_matches_nothing() {
        let flat = Prints::new(&RgbImage::from_pixel(50, 50, image::Rgb([90, 90, 90])));
        assert_eq!(copy_score(&flat, &Prints::new(&seed("Tiger.jpg"))), 0.0);
    }
}
