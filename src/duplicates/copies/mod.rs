//! Whether two look-alikes are one photo, for the `photo` level: their keypoints
//! ([`features`]) are matched, and a single turn, scale and shift (a similarity), with or
//! without a mirror, must carry enough of one picture's matched keypoints onto the other's
//! (RANSAC). A crop, a turn of any angle, a smaller copy, a border, a caption, a frame or a
//! watermark all keep such a mapping for the parts the two share; another shot of the same
//! scene does not, because the camera moved: the scene is seen at another angle, which a
//! perspective mapping (a homography) follows better than any similarity: it carries more
//! matches, or fits those the similarity carries clearly better ([`Verdict::flat`], [`Bend`]).
//!
//! A second shot taken from the same spot (a burst) can still fit one. What tells it apart is
//! how the two frames lie on each other: a copy is the other picture, or a part of it, with
//! at most bands added around it, so one of the two frames lies almost wholly inside the
//! other ([`Verdict::contained`]); shots of a scene are framed a step apart, and each shows
//! a strip the other does not. A shot that lies wholly inside another one is a crop of it
//! as far as pixels can tell, and is called one photo.
//!
//! The constants were tuned on `scripts/make_duplicate_bench.py --edits hard` and measured
//! on `scripts/make_copy_bench.py`, which they were never tuned on (README, "Duplicates").
//!
//! Only pairs the embeddings already call alike are verified (the neighbour search picks
//! them), so the cost is per candidate pair, not per pair of pictures.

pub mod features;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use rayon::prelude::*;

pub use features::CopyFeatures;
use features::{distance, Keypoint};

use super::Neighbours;
use crate::index::Store;

/// Descriptors further apart than this (of 256 bits) never match.
const MAX_DISTANCE: u32 = 64;
/// A match must be this much closer than the next best candidate (Lowe's ratio test).
const RATIO: f32 = 0.85;
/// How far (working pixels) a mapped keypoint may land from its match and still agree.
const TOLERANCE: f32 = 3.0;
/// How far a keypoint's orientation may differ from the mapping's turn and still agree.
const ANGLE_TOLERANCE: f32 = 0.5;
/// Hypotheses tried per pair.
const TRIALS: usize = 300;
/// So many agreeing keypoints leave no doubt; the mirrored search is skipped.
const CLEAR_INLIERS: usize = 60;
/// The fewest agreeing keypoints for a copy.
pub const MIN_INLIERS: usize = 15;
/// A copy's frame lies at least this much inside the other's (see [`Verdict::contained`]).
pub const CONTAINED: f32 = 0.95;
/// And the other's frame at least this much inside the copy's: a copy shows a fair part of
/// its original (a crop to a quarter is no longer the same photo), and a mapping that
/// squeezes a whole picture into a corner of another is a coincidence of texture.
pub const SHOWN: f32 = 0.25;
/// The share of a perspective mapping's matches that the similarity must carry too
/// ([`Verdict::flat`]).
pub const FLAT_SHARE: f32 = 0.95;
/// A pair is [`Bend::is_bent`] with at least this significance ...
pub const BENT_SIGNIFICANCE: f32 = 5.0;
/// ... and this share of the similarity's gaps taken away.
pub const BENT_SHARE: f32 = 0.1;
/// A picture with fewer keypoints than this (a clear sky, fog, a soft gradient) cannot be
/// matched by them; such a pair is one photo when its embeddings are nearly the same.
pub const FEW_KEYPOINTS: usize = 40;
/// The cosine at which two plain pictures count as one photo.
pub const PLAIN_COSINE: f32 = 0.95;

/// Look-alikes verified per image, best first: a copy is nearly always among an image's
/// closest few, and the cap keeps a folder of one subject from costing a verification per
/// pair.
pub const PAIRS_PER_IMAGE: usize = 24;

/// A turn, scale and shift: `(x, y) ↦ (a·x − b·y + tx, b·x + a·y + ty)`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Similarity {
    pub a: f32,
    pub b: f32,
    pub tx: f32,
    pub ty: f32,
}

impl Similarity {
    pub fn apply(&self, (x, y): (f32, f32)) -> (f32, f32) {
        (
            self.a * x - self.b * y + self.tx,
            self.b * x + self.a * y + self.ty,
        )
    }

    pub fn scale(&self) -> f32 {
        self.a.hypot(self.b)
    }

    pub fn turn(&self) -> f32 {
        self.b.atan2(self.a)
    }

    pub fn inverse(&self) -> Similarity {
        let d = self.a * self.a + self.b * self.b;
        let (a, b) = (self.a / d, -self.b / d);
        Similarity {
            a,
            b,
            tx: -(a * self.tx - b * self.ty),
            ty: -(b * self.tx + a * self.ty),
        }
    }

    /// The similarity that carries `p0` to `q0` and `p1` to `q1`.
    fn through(p: [(f32, f32); 2], q: [(f32, f32); 2]) -> Option<Similarity> {
        let (dpx, dpy) = (p[1].0 - p[0].0, p[1].1 - p[0].1);
        let (dqx, dqy) = (q[1].0 - q[0].0, q[1].1 - q[0].1);
        let d = dpx * dpx + dpy * dpy;
        if d < 4.0 {
            return None;
        }
        let a = (dpx * dqx + dpy * dqy) / d;
        let b = (dpx * dqy - dpy * dqx) / d;
        Some(Similarity {
            a,
            b,
            tx: q[0].0 - (a * p[0].0 - b * p[0].1),
            ty: q[0].1 - (b * p[0].0 + a * p[0].1),
        })
    }

    /// The least-squares similarity over point pairs.
    fn fitted(pairs: &[PointPair]) -> Option<Similarity> {
        let n = pairs.len() as f32;
        let (mut pcx, mut pcy, mut qcx, mut qcy) = (0f32, 0f32, 0f32, 0f32);
        for &((px, py), (qx, qy)) in pairs {
            (pcx, pcy, qcx, qcy) = (pcx + px, pcy + py, qcx + qx, qcy + qy);
        }
        (pcx, pcy, qcx, qcy) = (pcx / n, pcy / n, qcx / n, qcy / n);
        let (mut num_a, mut num_b, mut den) = (0f32, 0f32, 0f32);
        for &((px, py), (qx, qy)) in pairs {
            let (px, py, qx, qy) = (px - pcx, py - pcy, qx - qcx, qy - qcy);
            num_a += px * qx + py * qy;
            num_b += px * qy - py * qx;
            den += px * px + py * py;
        }
        if den < 1.0 {
            return None;
        }
        let (a, b) = (num_a / den, num_b / den);
        Some(Similarity {
            a,
            b,
            tx: qcx - (a * pcx - b * pcy),
            ty: qcy - (b * pcx + a * pcy),
        })
    }
}

/// How one picture maps onto another.
#[derive(Debug, Clone, PartialEq)]
pub struct CopyMatch {
    /// Whether the first picture is mirrored before `mapping` applies.
    pub mirrored: bool,
    /// From the first picture's working pixels (mirrored if so) to the second's.
    pub mapping: Similarity,
    /// Agreeing keypoints: positions in the first picture (unmirrored) and in the second,
    /// in working pixels.
    pub inliers: Vec<((f32, f32), (f32, f32))>,
    /// The working sizes of the two pictures.
    pub sizes: [(f32, f32); 2],
    /// The fewer keypoints of the two pictures.
    pub keypoints: usize,
    /// Each picture's textured cells ([`CopyFeatures::textured`]), unmirrored.
    pub busy: [[u16; CELLS]; 2],
    /// How many matches the best perspective mapping (a homography) carries: as many as the
    /// similarity for a copy, more for a scene seen from a step aside.
    pub in_perspective: usize,
    /// How much better a perspective mapping fits the agreeing keypoints than the
    /// similarity does.
    pub bend: Bend,
}

/// What a match says about the pair.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct Verdict {
    pub inliers: usize,
    /// The share of the first picture's frame that lies inside the second's, and the other
    /// way round.
    pub inside: [f32; 2],
    /// The fewer keypoints of the two pictures.
    pub keypoints: usize,
    /// The pair's cosine similarity, for pictures too plain to match by keypoints.
    pub cosine: f32,
    /// Matches a perspective mapping carries ([`CopyMatch::in_perspective`]).
    pub in_perspective: usize,
    /// [`CopyMatch::bend`].
    pub bend: Bend,
}

impl Verdict {
    /// Whether one frame lies (almost) wholly inside the other: a copy, or a crop of the
    /// other, with at most a band added.
    pub fn contained(&self) -> bool {
        let [a, b] = self.inside;
        a.max(b) >= CONTAINED && a.min(b) >= SHOWN
    }

    /// Whether one turn, scale and shift carries (nearly) all the matches a perspective
    /// mapping does, and fits those it carries as well as one: a copy lies flat on its
    /// original; a scene seen from a step aside does not.
    pub fn flat(&self) -> bool {
        self.inliers as f32 >= FLAT_SHARE * self.in_perspective as f32 && !self.bend.is_bent()
    }

    pub fn is_copy(&self) -> bool {
        match self.keypoints >= FEW_KEYPOINTS {
            true => self.inliers >= MIN_INLIERS && self.flat() && self.contained(),
            false => self.cosine >= PLAIN_COSINE,
        }
    }
}

impl CopyMatch {
    /// Maps a point of the first picture (unmirrored working pixels) into the second.
    pub fn map(&self, (x, y): (f32, f32)) -> (f32, f32) {
        let x = match self.mirrored {
            true => self.sizes[0].0 - 1.0 - x,
            false => x,
        };
        self.mapping.apply((x, y))
    }

    /// The corners of the first picture's frame in the second's working pixels.
    pub fn frame_in_second(&self) -> [(f32, f32); 4] {
        let (w, h) = self.sizes[0];
        [(0.0, 0.0), (w, 0.0), (w, h), (0.0, h)].map(|p| self.map(p))
    }

    /// The corners of the second picture's frame in the first's working pixels (unmirrored).
    pub fn frame_of_second_in_first(&self) -> [(f32, f32); 4] {
        let (w, h) = self.sizes[1];
        let inverse = self.mapping.inverse();
        let (wa, _) = self.sizes[0];
        [(0.0, 0.0), (w, 0.0), (w, h), (0.0, h)].map(|p| {
            let (x, y) = inverse.apply(p);
            match self.mirrored {
                true => (wa - 1.0 - x, y),
                false => (x, y),
            }
        })
    }

    pub fn verdict(&self) -> Verdict {
        let [(wa, ha), (wb, hb)] = self.sizes;
        let inverse = self.mapping.inverse();
        let inside_second = share_inside((wa, ha), &self.busy[0], |p| self.map(p), (wb, hb));
        let inside_first = share_inside(
            (wb, hb),
            &self.busy[1],
            |p| {
                let (x, y) = inverse.apply(p);
                match self.mirrored {
                    true => (wa - 1.0 - x, y),
                    false => (x, y),
                }
            },
            (wa, ha),
        );
        Verdict {
            inliers: self.inliers.len(),
            inside: [inside_second, inside_first],
            keypoints: self.keypoints,
            cosine: 0.0,
            in_perspective: self.in_perspective,
            bend: self.bend,
        }
    }
}

/// Cells per side of the grid a frame is sampled on: the one the features mark plain cells
/// on.
const CELLS: usize = features::GRID;

/// The share of a `w` × `h` frame that `map` carries inside a `to_w` × `to_h` frame, on a
/// grid of sample points, where a point that lands outside counts only in a textured cell:
/// bars and borders added around a copy, which the original never had, are no evidence that
/// the copy shows more than the original.
fn share_inside(
    (w, h): (f32, f32),
    busy: &[u16; CELLS],
    map: impl Fn((f32, f32)) -> (f32, f32),
    (to_w, to_h): (f32, f32),
) -> f32 {
    let margin = 0.02 * to_w.max(to_h);
    let (mut inside, mut counted) = (0, 0);
    for cell in 0..CELLS * CELLS {
        let (cx, cy) = (cell % CELLS, cell / CELLS);
        let (u, v) = (cx as f32 + 0.5, cy as f32 + 0.5);
        let (x, y) = map((u * w / CELLS as f32, v * h / CELLS as f32));
        let lands =
            (-margin..=to_w + margin).contains(&x) && (-margin..=to_h + margin).contains(&y);
        if lands {
            inside += 1;
            counted += 1;
        } else if busy[cy] & (1 << cx) != 0 {
            counted += 1;
        }
    }
    inside as f32 / counted.max(1) as f32
}

/// Matches `first` onto `second`, straight and mirrored, and keeps the better mapping;
/// `None` when neither finds enough agreeing keypoints to try.
pub fn match_pictures(first: &CopyFeatures, second: &CopyFeatures) -> Option<CopyMatch> {
    let width = f32::from(first.width);
    let mirrored: Vec<Keypoint> = first.keypoints.iter().map(|k| k.mirrored(width)).collect();
    let sizes = [
        (f32::from(first.width), f32::from(first.height)),
        (f32::from(second.width), f32::from(second.height)),
    ];
    let straight = first.keypoints.as_slice();
    [(false, straight), (true, mirrored.as_slice())]
        .into_iter()
        .scan(0, |straight_inliers, (is_mirrored, keypoints)| {
            // A picture that lies on the other straight, with many keypoints agreeing, is
            // not also its mirror image: the second search is spared.
            if is_mirrored && *straight_inliers >= CLEAR_INLIERS {
                return None;
            }
            let found = best_mapping(keypoints, &second.keypoints);
            *straight_inliers = found.as_ref().map_or(0, |f| f.inliers.len());
            Some((is_mirrored, found))
        })
        .filter_map(|(is_mirrored, found)| {
            let found = found?;
            let unmirror = |(x, y): (f32, f32)| match is_mirrored {
                true => (width - 1.0 - x, y),
                false => (x, y),
            };
            Some(CopyMatch {
                in_perspective: found.in_perspective,
                bend: found.bend,
                mirrored: is_mirrored,
                mapping: found.mapping,
                inliers: found
                    .inliers
                    .into_iter()
                    .map(|(p, q)| (unmirror(p), q))
                    .collect(),
                sizes,
                keypoints: first.keypoints.len().min(second.keypoints.len()),
                busy: [first.textured, second.textured],
            })
        })
        .max_by_key(|m| m.inliers.len())
}

/// Each keypoint of `first` with its nearest descriptor in `second`, where that one is close
/// and clearly closer than the next.
fn candidate_matches(first: &[Keypoint], second: &[Keypoint]) -> Vec<(usize, usize)> {
    #[cfg(target_arch = "x86_64")]
    if std::arch::is_x86_feature_detected!("popcnt") {
        // SAFETY: the CPU has POPCNT, checked just above.
        return unsafe { candidate_matches_popcnt(first, second) };
    }
    candidate_matches_portable(first, second)
}

/// [`candidate_matches`] compiled with the POPCNT instruction, which counts a descriptor's
/// differing bits in one step each 64 bits instead of a dozen.
///
/// # Safety
/// The CPU must have POPCNT.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "popcnt")]
unsafe fn candidate_matches_popcnt(first: &[Keypoint], second: &[Keypoint]) -> Vec<(usize, usize)> {
    candidate_matches_portable(first, second)
}

/// Plain loops, not iterator adaptors: those become functions of their own, compiled
/// without the caller's POPCNT.
#[inline(always)]
fn candidate_matches_portable(first: &[Keypoint], second: &[Keypoint]) -> Vec<(usize, usize)> {
    let mut found = Vec::new();
    for (i, k) in first.iter().enumerate() {
        let (mut best, mut next, mut at) = (u32::MAX, u32::MAX, 0);
        for (j, other) in second.iter().enumerate() {
            let d = distance(&k.bits, &other.bits);
            if d < best {
                (next, best, at) = (best, d, j);
            } else if d < next {
                next = d;
            }
        }
        if best <= MAX_DISTANCE && (best as f32) < RATIO * next as f32 {
            found.push((i, at));
        }
    }
    found
}

/// A point in working pixels, and a point of one picture with its match in the other.
type Point = (f32, f32);
type PointPair = (Point, Point);
type PointPairs = Vec<PointPair>;

/// What [`best_mapping`] finds.
struct Found {
    mapping: Similarity,
    inliers: PointPairs,
    in_perspective: usize,
    bend: Bend,
}

/// RANSAC over two-point hypotheses, then a least-squares refit on the agreeing matches;
/// with the best perspective mapping, for a pair that could be a copy.
fn best_mapping(first: &[Keypoint], second: &[Keypoint]) -> Option<Found> {
    let matched = Matched {
        first,
        second,
        matches: candidate_matches(first, second),
    };
    if matched.matches.len() < MIN_INLIERS {
        return None;
    }
    let mut random = Lcg(matched.matches.len() as u64 * 7919 + 17);
    let (mut mapping, mut inliers) = matched.ransac(&mut random)?;
    if inliers.len() >= 3 {
        if let Some(refit) = Similarity::fitted(&matched.pairs(&inliers)) {
            let again = matched.agreeing(&refit);
            if again.len() >= inliers.len() {
                (mapping, inliers) = (refit, again);
            }
        }
    }
    let pairs = matched.pairs(&inliers);
    // Only a pair that could be a copy needs the perspective mapping to decide.
    let (in_perspective, bend) = match inliers.len() >= MIN_INLIERS {
        true => (
            perspective_inliers(&matched.pairs(&matched.matches), &mut random),
            Bend::of(&pairs),
        ),
        false => (0, Bend::default()),
    };
    Some(Found {
        mapping,
        in_perspective: in_perspective.max(inliers.len()),
        inliers: pairs,
        bend,
    })
}

/// Two pictures' keypoints and their candidate matches (indices into each).
struct Matched<'a> {
    first: &'a [Keypoint],
    second: &'a [Keypoint],
    matches: Vec<(usize, usize)>,
}

impl Matched<'_> {
    /// The matches `mapping` carries within [`TOLERANCE`], turning their orientations by
    /// about its turn.
    fn agreeing(&self, mapping: &Similarity) -> Vec<(usize, usize)> {
        let turn = mapping.turn();
        (self.matches.iter().copied())
            .filter(|&(i, j)| {
                let (p, q) = (&self.first[i], &self.second[j]);
                let (x, y) = mapping.apply((p.x, p.y));
                let (dx, dy) = (x - q.x, y - q.y);
                dx * dx + dy * dy <= TOLERANCE * TOLERANCE
                    && angle_between(q.angle - p.angle, turn) <= ANGLE_TOLERANCE
            })
            .collect()
    }

    fn pairs(&self, ids: &[(usize, usize)]) -> PointPairs {
        ids.iter()
            .map(|&(i, j)| {
                let (p, q) = (&self.first[i], &self.second[j]);
                ((p.x, p.y), (q.x, q.y))
            })
            .collect()
    }

    /// The similarity through two matches that the most matches agree with, trying until
    /// [`trials_needed`] says the best has almost surely been seen.
    fn ransac(&self, random: &mut Lcg) -> Option<(Similarity, Vec<(usize, usize)>)> {
        let count = self.matches.len();
        let mut best: Option<(Similarity, Vec<(usize, usize)>)> = None;
        let mut needed = TRIALS;
        for trial in 0..TRIALS {
            if trial >= needed {
                break;
            }
            let (m0, m1) = (random.below(count), random.below(count));
            if m0 == m1 {
                continue;
            }
            let two = self.pairs(&[self.matches[m0], self.matches[m1]]);
            let Some(mapping) = Similarity::through([two[0].0, two[1].0], [two[0].1, two[1].1])
            else {
                continue;
            };
            if !(0.3..=3.3).contains(&mapping.scale()) {
                continue;
            }
            let inliers = self.agreeing(&mapping);
            if best.as_ref().is_none_or(|b| inliers.len() > b.1.len()) {
                needed = trials_needed(inliers.len(), count, 2);
                best = Some((mapping, inliers));
            }
        }
        best
    }
}

/// How many of `pairs` the best homography carries within [`TOLERANCE`]: found by RANSAC
/// (four-point hypotheses), then refitted by least squares on those it carries.
fn perspective_inliers(pairs: &[PointPair], random: &mut Lcg) -> usize {
    if pairs.len() < 4 {
        return 0;
    }
    let (mut best, mut needed): (Option<Homography>, usize) = (None, TRIALS);
    let mut carried = 0;
    for trial in 0..TRIALS {
        if trial >= needed {
            break;
        }
        let picks = [(); 4].map(|_| pairs[random.below(pairs.len())]);
        let Some(homography) = Homography::through(&picks) else {
            continue;
        };
        let agreeing = homography.agreeing(pairs).count();
        if agreeing > carried {
            (best, carried) = (Some(homography), agreeing);
            needed = trials_needed(carried, pairs.len(), 4);
        }
    }
    let refit = best.and_then(|h| Homography::fitted(&h.agreeing(pairs).collect::<Vec<_>>()));
    refit.map_or(carried, |h| h.agreeing(pairs).count().max(carried))
}

/// How much better a perspective mapping (a homography) fits the similarity's own agreeing
/// matches than the similarity does, both fitted to them by least squares.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct Bend {
    /// The F statistic of the homography's four extra parameters: about 1 where the gaps
    /// left are keypoints' jitter, which the extra parameters cannot explain; above 5 about
    /// once in a thousand by chance.
    pub significance: f32,
    /// The share of the similarity's squared gaps that the homography takes away.
    pub share: f32,
}

impl Bend {
    fn of(pairs: &[PointPair]) -> Bend {
        let (Some(flat), Some(bent)) = (Similarity::fitted(pairs), Homography::fitted(pairs))
        else {
            return Bend::default();
        };
        let squared = |(x, y): Point, q: Point| (x - q.0).powi(2) + (y - q.1).powi(2);
        let flat_gaps: f32 = pairs.iter().map(|&(p, q)| squared(flat.apply(p), q)).sum();
        let bent_gaps: f32 = (pairs.iter())
            .map(|&(p, q)| bent.project(p).map_or(flat_gaps, |m| squared(m, q)))
            .sum::<f32>()
            .min(flat_gaps);
        let freedom = (2 * pairs.len()).saturating_sub(8).max(1) as f32;
        Bend {
            significance: ((flat_gaps - bent_gaps) / 4.0) / (bent_gaps / freedom).max(1e-6),
            share: 1.0 - bent_gaps / flat_gaps.max(1e-6),
        }
    }

    /// Whether the matches follow a perspective: a scene seen from a step aside leaves gaps
    /// that grow across the frame, even within the tolerance; a copy lies flat. Both a
    /// clear significance and a fair share are asked for, so that a copy with hundreds of
    /// matches and a tiny bend from resampling stays flat.
    pub fn is_bent(&self) -> bool {
        self.significance > BENT_SIGNIFICANCE && self.share > BENT_SHARE
    }
}

/// How many RANSAC trials find, with 99.9 % confidence, a sample of `sample` matches all
/// agreeing, when `agreeing` of `total` do (at least 20, so that a lucky first hypothesis
/// does not end the search).
fn trials_needed(agreeing: usize, total: usize, sample: i32) -> usize {
    let share = (agreeing as f64 / total.max(1) as f64).powi(sample);
    if share >= 1.0 {
        return 20;
    }
    let needed = (0.001f64).ln() / (1.0 - share).ln();
    (needed.ceil() as usize).clamp(20, TRIALS)
}

/// A perspective mapping between two pictures' working pixels: `h` (last entry 1) between
/// coordinates shifted and scaled by `from` and `to` (centre x, centre y, scale), which keeps
/// the least-squares fit well conditioned.
struct Homography {
    h: [f64; 8],
    from: [f64; 3],
    to: [f64; 3],
}

impl Homography {
    const PLAIN: [f64; 3] = [0.0, 0.0, 1.0];

    /// The homography that carries each first point of `pairs` to its second.
    fn through(pairs: &[PointPair; 4]) -> Option<Homography> {
        let mut system = [[0f64; 9]; 8];
        for (i, &((x, y), (u, v))) in pairs.iter().enumerate() {
            let (x, y, u, v) = (f64::from(x), f64::from(y), f64::from(u), f64::from(v));
            system[2 * i] = [x, y, 1.0, 0.0, 0.0, 0.0, -u * x, -u * y, u];
            system[2 * i + 1] = [0.0, 0.0, 0.0, x, y, 1.0, -v * x, -v * y, v];
        }
        Some(Homography {
            h: solve(system)?,
            from: Self::PLAIN,
            to: Self::PLAIN,
        })
    }

    /// The least-squares homography over `pairs` (the normal equations of the same linear
    /// system, in normalised coordinates).
    fn fitted(pairs: &[PointPair]) -> Option<Homography> {
        if pairs.len() < 5 {
            return None;
        }
        let from = normalising(pairs.iter().map(|p| p.0))?;
        let to = normalising(pairs.iter().map(|p| p.1))?;
        let mut normal = [[0f64; 9]; 8];
        for &(p, q) in pairs {
            let ((x, y), (u, v)) = (shifted(p, from), shifted(q, to));
            for row in [
                [x, y, 1.0, 0.0, 0.0, 0.0, -u * x, -u * y, u],
                [0.0, 0.0, 0.0, x, y, 1.0, -v * x, -v * y, v],
            ] {
                for (i, line) in normal.iter_mut().enumerate() {
                    for (j, value) in line.iter_mut().enumerate() {
                        *value += row[i] * row[j];
                    }
                }
            }
        }
        Some(Homography {
            h: solve(normal)?,
            from,
            to,
        })
    }

    fn project(&self, p: Point) -> Option<Point> {
        let (x, y) = shifted(p, self.from);
        let h = &self.h;
        let w = h[6] * x + h[7] * y + 1.0;
        if w.abs() < 1e-9 {
            return None;
        }
        let (u, v) = (
            (h[0] * x + h[1] * y + h[2]) / w,
            (h[3] * x + h[4] * y + h[5]) / w,
        );
        let [cx, cy, scale] = self.to;
        Some(((u / scale + cx) as f32, (v / scale + cy) as f32))
    }

    /// The pairs this mapping carries within [`TOLERANCE`].
    fn agreeing<'a>(&'a self, pairs: &'a [PointPair]) -> impl Iterator<Item = PointPair> + 'a {
        (pairs.iter().copied()).filter(|&(p, q)| {
            self.project(p).is_some_and(|(x, y)| {
                let (dx, dy) = (x - q.0, y - q.1);
                dx * dx + dy * dy <= TOLERANCE * TOLERANCE
            })
        })
    }
}

/// The centre of `points` and the scale that brings their mean distance from it to √2.
fn normalising(points: impl Iterator<Item = Point> + Clone) -> Option<[f64; 3]> {
    let count = points.clone().count() as f64;
    let (sx, sy) = points.clone().fold((0.0, 0.0), |(sx, sy), (x, y)| {
        (sx + f64::from(x), sy + f64::from(y))
    });
    let (cx, cy) = (sx / count, sy / count);
    let spread = points
        .map(|(x, y)| (f64::from(x) - cx).hypot(f64::from(y) - cy))
        .sum::<f64>()
        / count;
    (spread > 1e-6).then(|| [cx, cy, std::f64::consts::SQRT_2 / spread])
}

fn shifted((x, y): Point, [cx, cy, scale]: [f64; 3]) -> (f64, f64) {
    ((f64::from(x) - cx) * scale, (f64::from(y) - cy) * scale)
}

/// Solves eight linear equations (each row's last entry is its right side) by Gaussian
/// elimination with partial pivoting; a degenerate system has no answer.
fn solve(mut system: [[f64; 9]; 8]) -> Option<[f64; 8]> {
    for col in 0..8 {
        let pivot =
            (col..8).max_by(|&a, &b| system[a][col].abs().total_cmp(&system[b][col].abs()))?;
        if system[pivot][col].abs() < 1e-9 {
            return None;
        }
        system.swap(col, pivot);
        let pivot_row = system[col];
        for (row, line) in system.iter_mut().enumerate() {
            if row != col {
                let factor = line[col] / pivot_row[col];
                for (value, from_pivot) in line[col..].iter_mut().zip(&pivot_row[col..]) {
                    *value -= factor * from_pivot;
                }
            }
        }
    }
    Some(std::array::from_fn(|i| system[i][8] / system[i][i]))
}

/// The gap between two angles, 0 to π.
fn angle_between(a: f32, b: f32) -> f32 {
    use std::f32::consts::{PI, TAU};
    let mut gap = (a - b).abs() % TAU;
    if gap > PI {
        gap = TAU - gap;
    }
    gap
}

/// A small fixed-seed generator: the same pair always gets the same verdict.
struct Lcg(u64);

impl Lcg {
    fn below(&mut self, n: usize) -> usize {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        ((self.0 >> 33) as usize) % n.max(1)
    }
}

/// The verdicts of every candidate pair of look-alikes.
#[derive(Debug, Clone, Default)]
pub struct CopyMatches {
    /// Per image: (look-alike, verdict), sorted by look-alike; each pair is kept under its
    /// lower index.
    lists: Vec<Vec<(u32, Verdict)>>,
}

impl CopyMatches {
    /// Verifies every pair of `neighbours` at or above `floor` (at most `per_image` of each
    /// image's best), with the features `features` gives; images without any match nothing.
    pub fn find(
        neighbours: &Neighbours,
        floor: f32,
        per_image: usize,
        features: &[Option<Arc<CopyFeatures>>],
    ) -> Self {
        let verdicts: Vec<(u32, u32, Verdict)> = candidate_pairs(neighbours, floor, per_image)
            .into_par_iter()
            .filter_map(|(a, b)| {
                let first = features.get(a as usize)?.as_ref()?;
                let second = features.get(b as usize)?.as_ref()?;
                let matched = match_pictures(first, second);
                let verdict = Verdict {
                    keypoints: first.keypoints.len().min(second.keypoints.len()),
                    cosine: neighbours.similarity(a as usize, b as usize).unwrap_or(0.0),
                    ..matched.map(|m| m.verdict()).unwrap_or_default()
                };
                Some((a, b, verdict))
            })
            .collect();
        let mut lists = vec![Vec::new(); neighbours.len()];
        for (a, b, verdict) in verdicts {
            lists[a as usize].push((b, verdict));
        }
        lists
            .iter_mut()
            .for_each(|l| l.sort_unstable_by_key(|v| v.0));
        CopyMatches { lists }
    }

    /// Whether `a` and `b` were found to be one photo.
    pub fn confirms(&self, a: usize, b: usize) -> bool {
        self.verdict(a, b).is_some_and(|v| v.is_copy())
    }

    pub fn verdict(&self, a: usize, b: usize) -> Option<Verdict> {
        let (low, high) = (a.min(b), a.max(b) as u32);
        let list = self.lists.get(low)?;
        let at = list.binary_search_by_key(&high, |v| v.0).ok()?;
        Some(list[at].1)
    }

    /// How many pairs were verified.
    pub fn verified(&self) -> usize {
        self.lists.iter().map(Vec::len).sum()
    }

    /// Every verified pair, lower index first, with its verdict.
    pub fn pairs(&self) -> impl Iterator<Item = (usize, usize, Verdict)> + '_ {
        (self.lists.iter().enumerate())
            .flat_map(|(a, list)| list.iter().map(move |&(b, v)| (a, b as usize, v)))
    }
}

/// The features of the images `needed` marks, for the files at `paths`: read from `index` where it keeps them for the file's present content,
/// made from `picture` (thumbnails will do) otherwise, in parallel, and those made kept in
/// `index` for the next run. An index that cannot read or keep them (read-only, busy, gone)
/// costs only time: the problem is returned as a warning, and the features are made.
pub fn kept_features(
    needed: &[bool],
    paths: &[PathBuf],
    mut index: Option<&mut (dyn Store + 'static)>,
    picture: &(dyn Fn(usize) -> Option<image::RgbImage> + Sync),
) -> (Vec<Option<Arc<CopyFeatures>>>, Vec<String>) {
    let mut warnings = Vec::new();
    let wanted: Vec<usize> = (0..needed.len()).filter(|&i| needed[i]).collect();
    // The index knows files by their canonical paths, as the indexer stored them.
    let canonical: Vec<PathBuf> = (wanted.iter())
        .map(|&i| std::fs::canonicalize(&paths[i]).unwrap_or_else(|_| paths[i].clone()))
        .collect();
    let wanted_paths: Vec<&Path> = canonical.iter().map(PathBuf::as_path).collect();
    let mut stored = vec![None; needed.len()];
    if let Some(index) = index.as_deref_mut() {
        match index.copy_features(&wanted_paths) {
            Ok(found) => wanted.iter().zip(found).for_each(|(&i, b)| stored[i] = b),
            Err(e) => warnings.push(format!(
                "the keypoints kept in the index could not be read: {e}"
            )),
        }
    }
    let (features, made) = features_for(needed, stored, picture);
    if let Some(index) = index {
        let path_of: std::collections::HashMap<usize, &Path> = wanted
            .iter()
            .copied()
            .zip(wanted_paths.iter().copied())
            .collect();
        let bytes: Vec<(&Path, Vec<u8>)> = (made.iter())
            .filter_map(|&i| Some((*path_of.get(&i)?, features[i].as_ref()?.to_bytes())))
            .collect();
        let keep: Vec<(&Path, &[u8])> = bytes.iter().map(|(p, b)| (*p, b.as_slice())).collect();
        if let Err(e) = index.store_copy_features(&keep) {
            warnings.push(format!(
                "the keypoints found could not be kept in the index: {e}"
            ));
        }
    }
    (features, warnings)
}

/// The features of the images `needed` marks: those `stored` holds (bytes from an index,
/// checked as they are read), the rest made from `picture`, in parallel. Returns them with
/// the images whose features were made here, for the caller to keep.
fn features_for(
    needed: &[bool],
    stored: Vec<Option<Vec<u8>>>,
    picture: &(dyn Fn(usize) -> Option<image::RgbImage> + Sync),
) -> (Vec<Option<Arc<CopyFeatures>>>, Vec<usize>) {
    let features: Vec<(Option<Arc<CopyFeatures>>, bool)> = needed
        .par_iter()
        .zip(stored.into_par_iter())
        .enumerate()
        .map(|(i, (&needed, bytes))| {
            if !needed {
                return (None, false);
            }
            if let Some(kept) = bytes.as_deref().and_then(CopyFeatures::from_bytes) {
                return (Some(Arc::new(kept)), false);
            }
            match picture(i) {
                Some(rgb) => (Some(Arc::new(CopyFeatures::of(&rgb))), true),
                None => (None, false),
            }
        })
        .collect();
    let made = (features.iter().enumerate())
        .filter(|(_, f)| f.1)
        .map(|(i, _)| i)
        .collect();
    (features.into_iter().map(|f| f.0).collect(), made)
}

/// Every pair worth verifying, once, lower index first: each image with its look-alikes at
/// or above `floor`, at most `per_image` of them.
pub fn candidate_pairs(neighbours: &Neighbours, floor: f32, per_image: usize) -> Vec<(u32, u32)> {
    let mut pairs: Vec<(u32, u32)> = (0..neighbours.len())
        .flat_map(|i| {
            neighbours
                .of(i)
                .iter()
                .take_while(move |p| p.1 >= floor)
                .take(per_image)
                .map(move |p| ((i as u32).min(p.0), (i as u32).max(p.0)))
        })
        .collect();
    pairs.sort_unstable();
    pairs.dedup();
    pairs
}

/// The images whose features a verification of `pairs` needs.
pub fn images_in(pairs: &[(u32, u32)], images: usize) -> Vec<bool> {
    let mut needed = vec![false; images];
    for &(a, b) in pairs {
        needed[a as usize] = true;
        needed[b as usize] = true;
    }
    needed
}

#[cfg(test)]
mod tests;
