//! Every image's nearest neighbours above a floor, found exactly: the unit vectors are
//! multiplied block by block (one block pair per task, on the caller's rayon pool), only the
//! upper triangle, since the similarity of `a` to `b` is that of `b` to `a`. Each worker keeps
//! its own best-`K` lists for every image; the lists are merged at the end, so the result does
//! not depend on how the work was shared out. Grouping at any threshold above the floor then
//! needs no vector work at all, which is what lets the app's slider regroup at once.
//!
//! The blocks are multiplied in 8 bits where the CPU can (see [`super::int8`]), four times the
//! arithmetic rate of f32, and the neighbours found that way are scored again in f32; elsewhere
//! `gemm` multiplies them in f32.

use std::sync::atomic::{AtomicUsize, Ordering};

use rayon::prelude::*;

use super::int8::{BlockShape, Quantised};
use crate::similarity::cosine;

/// How the block scores are computed.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Kernel {
    F32,
    EightBit,
}

/// How far below the floor 8-bit candidates are kept, and how many more per image, so that
/// rounding never pushes out a neighbour the f32 search keeps. The rounding error measured on
/// unit vectors of 1,280 numbers stays under 0.002.
const EIGHT_BIT_MARGIN: f32 = 0.01;
const EIGHT_BIT_EXTRA: usize = 8;

/// Rows of the left block, and of the right block, in one task.
const LEFT_ROWS: usize = 512;
const RIGHT_ROWS: usize = 512;

/// Up to `capacity` neighbours of one image, best first; ties go to the lower index.
#[derive(Debug, Clone, Default)]
struct Best {
    list: Vec<(f32, u32)>,
}

impl Best {
    fn offer(&mut self, score: f32, other: u32, capacity: usize) {
        if self.list.len() == capacity {
            let worst = self.list[capacity - 1];
            if !better((score, other), worst) {
                return;
            }
            self.list.pop();
        }
        let at = self
            .list
            .partition_point(|&kept| better(kept, (score, other)));
        self.list.insert(at, (score, other));
    }
}

fn better(a: (f32, u32), b: (f32, u32)) -> bool {
    a.0 > b.0 || (a.0 == b.0 && a.1 < b.1)
}

/// Each image's most similar others, at or above a floor.
#[derive(Debug, Clone)]
pub struct Neighbours {
    /// Per image: (other image, cosine), best first.
    lists: Vec<Vec<(u32, f32)>>,
    /// Per image: the same, sorted by the other's index, for lookups.
    by_index: Vec<Vec<(u32, f32)>>,
    floor: f32,
}

impl Neighbours {
    /// The up-to-`per_image` most similar other images of each of the `n` unit vectors in
    /// `vectors` (row-major, `dim` each), keeping only similarities of at least `floor`.
    ///
    /// Where the CPU has AVX-512 VNNI, candidates are found with 8-bit scores and then scored
    /// again in f32; otherwise every score is f32 from the start.
    pub fn find(vectors: &[f32], dim: usize, floor: f32, per_image: usize) -> Self {
        if Quantised::available() {
            Self::find_with(vectors, dim, floor, per_image, Kernel::EightBit)
        } else {
            Self::find_exact(vectors, dim, floor, per_image)
        }
    }

    /// The same with f32 scores throughout: the reference the 8-bit search is measured by.
    pub fn find_exact(vectors: &[f32], dim: usize, floor: f32, per_image: usize) -> Self {
        Self::find_with(vectors, dim, floor, per_image, Kernel::F32)
    }

    fn find_with(
        vectors: &[f32],
        dim: usize,
        floor: f32,
        per_image: usize,
        kernel: Kernel,
    ) -> Self {
        let n = vectors.len().checked_div(dim).unwrap_or(0);
        let per_image = per_image.max(1);
        let quantised = (kernel == Kernel::EightBit).then(|| Quantised::new(vectors, dim));
        // 8-bit scores are off by up to about 0.002: look a little lower and keep a few more,
        // so that rescoring in f32 still finds every neighbour the f32 search would.
        let (search_floor, capacity) = match kernel {
            Kernel::F32 => (floor, per_image),
            Kernel::EightBit => (floor - EIGHT_BIT_MARGIN, per_image + EIGHT_BIT_EXTRA),
        };
        let tasks = block_pairs(n);
        let next = AtomicUsize::new(0);
        let partial: Vec<Vec<Best>> = rayon::broadcast(|_| {
            let mut best = vec![Best::default(); n];
            let mut scores = vec![0.0f32; LEFT_ROWS * RIGHT_ROWS];
            let mut panel = Vec::new();
            loop {
                let task = next.fetch_add(1, Ordering::Relaxed);
                let Some(&(left, right)) = tasks.get(task) else {
                    break;
                };
                let block = Block { left, right, n };
                match &quantised {
                    Some(q) => q.score_block(block.shape(), &mut scores, &mut panel),
                    None => block.score(vectors, dim, &mut scores),
                }
                block.collect(&scores, search_floor, capacity, &mut best);
            }
            best
        });
        let mut merged = merge(partial, n, capacity);
        if quantised.is_some() {
            rescore(&mut merged, vectors, dim, floor, per_image);
        }
        Self::from_lists(merged, floor)
    }

    fn from_lists(merged: Vec<Best>, floor: f32) -> Self {
        let lists: Vec<Vec<(u32, f32)>> = merged
            .into_iter()
            .map(|b| b.list.into_iter().map(|(s, o)| (o, s)).collect())
            .collect();
        let by_index = lists
            .iter()
            .map(|l| {
                let mut sorted = l.clone();
                sorted.sort_unstable_by_key(|&(other, _)| other);
                sorted
            })
            .collect();
        Neighbours {
            lists,
            by_index,
            floor,
        }
    }

    pub fn len(&self) -> usize {
        self.lists.len()
    }

    pub fn is_empty(&self) -> bool {
        self.lists.is_empty()
    }

    /// The lowest similarity kept.
    pub fn floor(&self) -> f32 {
        self.floor
    }

    /// Image `i`'s neighbours, best first.
    pub fn of(&self, i: usize) -> &[(u32, f32)] {
        &self.lists[i]
    }

    /// Each image's best match, if it has one above the floor.
    pub fn best_matches(&self) -> Vec<Option<f32>> {
        self.lists.iter().map(|l| l.first().map(|p| p.1)).collect()
    }

    /// The similarity of `a` and `b` if either keeps the other as a neighbour.
    pub fn similarity(&self, a: usize, b: usize) -> Option<f32> {
        let find = |from: usize, to: usize| {
            let list = &self.by_index[from];
            list.binary_search_by_key(&(to as u32), |p| p.0)
                .ok()
                .map(|at| list[at].1)
        };
        find(a, b).or_else(|| find(b, a))
    }
}

/// One task: left rows `left..` against right rows `right..`, right ≥ left in block terms.
#[derive(Clone, Copy)]
struct Block {
    left: usize,
    right: usize,
    n: usize,
}

impl Block {
    fn shape(&self) -> BlockShape {
        let (m, k) = self.rows();
        BlockShape {
            left: self.left,
            m,
            right: self.right,
            k,
            stride: RIGHT_ROWS,
        }
    }

    fn rows(&self) -> (usize, usize) {
        (
            LEFT_ROWS.min(self.n - self.left),
            RIGHT_ROWS.min(self.n - self.right),
        )
    }

    /// `scores = left rows · right rowsᵀ`, row-major with `RIGHT_ROWS` columns.
    fn score(&self, vectors: &[f32], dim: usize, scores: &mut [f32]) {
        let (m, k) = self.rows();
        let left = &vectors[self.left * dim..][..m * dim];
        let right = &vectors[self.right * dim..][..k * dim];
        // SAFETY: `left` is m × dim and `right` k × dim, both row-major and in bounds (sliced
        // above); `scores` holds LEFT_ROWS × RIGHT_ROWS ≥ m rows of RIGHT_ROWS ≥ k values.
        unsafe {
            gemm::gemm(
                m,
                k,
                dim,
                scores.as_mut_ptr(),
                1,
                RIGHT_ROWS as isize,
                false,
                left.as_ptr(),
                1,
                dim as isize,
                right.as_ptr(),
                dim as isize,
                1,
                0.0,
                1.0,
                false,
                false,
                false,
                gemm::Parallelism::None,
            );
        }
    }

    /// Offers every pair of the block at or above `floor` to both images' lists.
    fn collect(&self, scores: &[f32], floor: f32, per_image: usize, best: &mut [Best]) {
        let (m, k) = self.rows();
        for r in 0..m {
            let a = self.left + r;
            let row = &scores[r * RIGHT_ROWS..][..k];
            for (c, &score) in row.iter().enumerate() {
                let b = self.right + c;
                // The diagonal blocks hold each pair twice, and every image itself.
                if b <= a || score < floor {
                    continue;
                }
                best[a].offer(score, b as u32, per_image);
                best[b].offer(score, a as u32, per_image);
            }
        }
    }
}

/// The workers' lists, merged into one per image.
fn merge(partial: Vec<Vec<Best>>, n: usize, capacity: usize) -> Vec<Best> {
    let mut merged = vec![Best::default(); n];
    for worker in partial {
        for (into, from) in merged.iter_mut().zip(worker) {
            for (score, other) in from.list {
                into.offer(score, other, capacity);
            }
        }
    }
    merged
}

/// Replaces 8-bit scores by f32 ones, then keeps what is at or above `floor`, best first.
fn rescore(lists: &mut [Best], vectors: &[f32], dim: usize, floor: f32, per_image: usize) {
    lists.par_iter_mut().enumerate().for_each(|(a, best)| {
        let mine = &vectors[a * dim..][..dim];
        let mut exact = Best::default();
        for &(_, b) in &best.list {
            let score = cosine(mine, &vectors[b as usize * dim..][..dim]);
            if score >= floor {
                exact.offer(score, b, per_image);
            }
        }
        *best = exact;
    });
}

/// Every (left, right) block start with the right block not before the left one, largest
/// tasks first so that the last ones to finish are short.
fn block_pairs(n: usize) -> Vec<(usize, usize)> {
    let mut pairs = Vec::new();
    for left in (0..n).step_by(LEFT_ROWS) {
        let first_right = left / RIGHT_ROWS * RIGHT_ROWS;
        for right in (first_right..n).step_by(RIGHT_ROWS) {
            pairs.push((left, right));
        }
    }
    pairs
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Brute force, for comparison.
    fn exact(vectors: &[f32], dim: usize, floor: f32, k: usize) -> Vec<Vec<(u32, f32)>> {
        let n = vectors.len() / dim;
        (0..n)
            .map(|a| {
                let mut best = Best::default();
                for b in (0..n).filter(|&b| b != a) {
                    let s = crate::similarity::cosine(
                        &vectors[a * dim..][..dim],
                        &vectors[b * dim..][..dim],
                    );
                    if s >= floor {
                        best.offer(s, b as u32, k);
                    }
                }
                best.list.into_iter().map(|(s, o)| (o, s)).collect()
            })
            .collect()
    }

    fn unit_vectors(n: usize, dim: usize, seed: u64) -> Vec<f32> {
        let mut state = seed;
        let mut next = || {
            state = state
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            ((state >> 33) as f32 / (1u64 << 31) as f32) - 0.5
        };
        let mut v: Vec<f32> = (0..n * dim).map(|_| next()).collect();
        // Pull half of the vectors towards a few shared directions, so that real neighbours exist.
        for i in (0..n).step_by(2) {
            let centre = (i / 2) % 7;
            for d in 0..dim {
                let shared = v[centre * dim + d];
                v[i * dim + d] = 0.3 * v[i * dim + d] + shared;
            }
        }
        for row in v.chunks_exact_mut(dim) {
            crate::similarity::l2_normalise(row);
        }
        v
    }

    #[test]
    fn blocked_search_matches_brute_force_across_block_edges() {
        // More rows than one block in both directions, and a dimension that is not a multiple
        // of anything in particular.
        let (n, dim) = (RIGHT_ROWS + LEFT_ROWS + 37, 19);
        let vectors = unit_vectors(n, dim, 7);
        let expected = exact(&vectors, dim, 0.5, 6);
        for found in [
            Neighbours::find(&vectors, dim, 0.5, 6),
            Neighbours::find_exact(&vectors, dim, 0.5, 6),
        ] {
            for (i, want) in expected.iter().enumerate() {
                let got = found.of(i);
                assert_eq!(got.len(), want.len(), "image {i}");
                for (g, w) in got.iter().zip(want) {
                    assert_eq!(g.0, w.0, "image {i}: {got:?} against {want:?}");
                    assert!((g.1 - w.1).abs() < 1e-4);
                }
            }
            assert!(found.of(0).len() == 6, "the test has real neighbours");
        }
    }

    #[test]
    fn eight_bit_search_finds_what_the_f32_search_finds() {
        // Embedding-sized vectors around shared directions, so that many pairs sit near the
        // floor, where rounding could matter.
        let (n, dim) = (LEFT_ROWS + 90, 1280);
        let vectors = unit_vectors(n, dim, 13);
        let (floor, per_image) = (0.9, 40);
        let exact = Neighbours::find_exact(&vectors, dim, floor, per_image);
        let fast = Neighbours::find(&vectors, dim, floor, per_image);
        let mut pairs = 0;
        for i in 0..n {
            // The same neighbours with the same scores, up to the order f32 sums are taken in.
            let sorted = |list: &[(u32, f32)]| {
                let mut list = list.to_vec();
                list.sort_unstable_by_key(|p| p.0);
                list
            };
            let (got, want) = (sorted(fast.of(i)), sorted(exact.of(i)));
            assert_eq!(got.len(), want.len(), "image {i}");
            for (g, w) in got.iter().zip(&want) {
                assert_eq!(g.0, w.0, "image {i}");
                assert!((g.1 - w.1).abs() < 1e-5, "image {i}: {g:?} against {w:?}");
            }
            pairs += want.len();
        }
        assert!(pairs > 1000, "only {pairs} pairs above the floor");
    }

    #[test]
    fn similarity_is_found_from_either_side() {
        let vectors = unit_vectors(40, 8, 3);
        let found = Neighbours::find(&vectors, 8, -1.0, 3);
        let (a, (b, s)) = (5, found.of(5)[0]);
        assert_eq!(found.similarity(a, b as usize), Some(s));
        assert_eq!(found.similarity(b as usize, a), Some(s));
    }

    #[test]
    fn nothing_is_kept_below_the_floor() {
        let vectors = unit_vectors(30, 8, 5);
        let found = Neighbours::find(&vectors, 8, 0.99, 10);
        assert!((0..30).all(|i| found.of(i).iter().all(|p| p.1 >= 0.99)));
    }
}
