//! Cosine similarity over L2-normalised embeddings: ranking a collection against one vector.
//!
//! The app re-sorts the whole grid on every click, so scoring runs in parallel and the sort
//! works on packed integer keys: 100,000 vectors of 1,280 numbers take a few tens of
//! milliseconds (`lookalike bench` measures it).

use std::cmp::Reverse;
use std::collections::BinaryHeap;

use rayon::prelude::*;

/// Scales `v` to unit length in place; a zero vector stays zero.
pub fn l2_normalise(v: &mut [f32]) {
    let norm = v.iter().map(|x| x * x).sum::<f32>().sqrt();
    if norm > 0.0 {
        v.iter_mut().for_each(|x| *x /= norm);
    }
}

/// Cosine similarity of two unit vectors.
pub fn cosine(a: &[f32], b: &[f32]) -> f32 {
    // Sixteen independent sums let the compiler keep the loop in SIMD registers; one running
    // sum would force it to add in order, one number at a time.
    const LANES: usize = 16;
    let mut sums = [0.0f32; LANES];
    let (a_blocks, b_blocks) = (a.chunks_exact(LANES), b.chunks_exact(LANES));
    let tail: f32 = (a_blocks.remainder().iter())
        .zip(b_blocks.remainder())
        .map(|(x, y)| x * y)
        .sum();
    for (x, y) in a_blocks.zip(b_blocks) {
        for lane in 0..LANES {
            sums[lane] += x[lane] * y[lane];
        }
    }
    sums.iter().sum::<f32>() + tail
}

/// Every item's cosine to `query`, computed in parallel; `None` where an item has no vector.
pub fn scores(query: &[f32], items: &[Option<&[f32]>]) -> Vec<Option<f32>> {
    items
        .par_iter()
        .with_min_len(256)
        .map(|v| v.map(|v| cosine(query, v)))
        .collect()
}

/// Sorts item indices for a similarity view: `first` (the query, if it is among them) leads,
/// then every scored item best first, then the unscored ones. Ties keep index order, so the
/// result is deterministic.
pub fn similarity_order(indices: &mut [usize], first: Option<usize>, scores: &[Option<f32>]) {
    let key = |i: usize| -> u64 {
        match (Some(i) == first, scores.get(i).copied().flatten()) {
            (true, _) => 0,
            (false, Some(score)) => 1 << 32 | u64::from(descending_bits(score)),
            (false, None) => 2 << 32,
        }
    };
    let mut keyed: Vec<(u64, usize)> = indices.iter().map(|&i| (key(i), i)).collect();
    keyed.par_sort_unstable();
    for (slot, (_, i)) in indices.iter_mut().zip(keyed) {
        *slot = i;
    }
}

/// Bits of `score` that sort as unsigned integers from the highest score to the lowest.
fn descending_bits(score: f32) -> u32 {
    let bits = score.to_bits();
    let ascending = if bits >> 31 == 1 {
        !bits
    } else {
        bits | 1 << 31
    };
    !ascending
}

/// Indices of `items` with their cosine to `query`, best first. Ties keep their input order,
/// so equal scores rank stably.
pub fn rank<'a, I>(query: &[f32], items: I) -> Vec<(usize, f32)>
where
    I: IntoIterator<Item = &'a [f32]>,
{
    let items: Vec<Option<&[f32]>> = items.into_iter().map(Some).collect();
    let scores = scores(query, &items);
    let mut order: Vec<usize> = (0..items.len()).collect();
    similarity_order(&mut order, None, &scores);
    order
        .into_iter()
        .filter_map(|i| scores[i].map(|s| (i, s)))
        .collect()
}

/// The vectors of many items, all of one length, in one block of 16-bit floats: half the
/// memory of `f32` for a library of 100,000 pictures (250 MB instead of 500 at 1,280 values),
/// with scores within about 1e-3 of the `f32` ones. An item may have no vector yet.
#[derive(Debug, Clone, Default)]
pub struct Vectors {
    dim: usize,
    values: Vec<half::f16>,
    present: Vec<bool>,
}

/// `len` zeros, from zeroed memory the system hands out page by page as rows are written:
/// filling 250 MB (100,000 vectors) by hand stalled the window for a tenth of a second.
fn zeroed(len: usize) -> Vec<half::f16> {
    use half::vec::HalfBitsVecExt;
    vec![0u16; len].reinterpret_into()
}

impl Vectors {
    /// Room for `items` items without vectors.
    pub fn new(items: usize) -> Self {
        Vectors {
            dim: 0,
            values: Vec::new(),
            present: vec![false; items],
        }
    }

    pub fn len(&self) -> usize {
        self.present.len()
    }

    pub fn is_empty(&self) -> bool {
        self.present.is_empty()
    }

    /// Sets item `index`'s vector. The first vector sets the length; one of another length
    /// (another model's) clears every other vector first.
    pub fn set(&mut self, index: usize, vector: &[f32]) {
        if index >= self.present.len() {
            return;
        }
        if vector.len() != self.dim {
            self.dim = vector.len();
            self.values = zeroed(self.dim * self.present.len());
            self.present.iter_mut().for_each(|p| *p = false);
        }
        let row = &mut self.values[index * self.dim..(index + 1) * self.dim];
        half::slice::HalfFloatSliceExt::convert_from_f32_slice(row, vector);
        self.present[index] = true;
    }

    /// Forgets item `index`'s vector.
    pub fn clear(&mut self, index: usize) {
        if let Some(p) = self.present.get_mut(index) {
            *p = false;
        }
    }

    pub fn has(&self, index: usize) -> bool {
        self.present.get(index).copied().unwrap_or(false)
    }

    /// Item `index`'s vector, as `f32`.
    pub fn get(&self, index: usize) -> Option<Vec<f32>> {
        self.has(index)
            .then(|| self.row(index).iter().map(|v| v.to_f32()).collect())
    }

    fn row(&self, index: usize) -> &[half::f16] {
        &self.values[index * self.dim..(index + 1) * self.dim]
    }

    /// Every item's cosine to `query` (a unit vector of the same length), in parallel;
    /// `None` for an item without a vector, or for all when the lengths differ.
    pub fn scores(&self, query: &[f32]) -> Vec<Option<f32>> {
        if query.len() != self.dim {
            return vec![None; self.present.len()];
        }
        (0..self.present.len())
            .into_par_iter()
            .with_min_len(256)
            .map_init(
                || vec![0f32; self.dim],
                |row, i| {
                    self.has(i).then(|| {
                        half::slice::HalfFloatSliceExt::convert_to_f32_slice(self.row(i), row);
                        cosine(query, row)
                    })
                },
            )
            .collect()
    }

    /// The vectors of the items `from` lists, in that order (`None`: no item there).
    pub fn rearranged(&self, from: &[Option<usize>]) -> Vectors {
        let mut moved = Vectors::new(from.len());
        for (to, was) in from.iter().enumerate() {
            if let Some(vector) = was.and_then(|was| self.get(was)) {
                moved.set(to, &vector);
            }
        }
        moved
    }
}

/// The best-scoring items of a stream, kept as they come: every item, or only the `limit`
/// best, so that ranking a library needs memory for its results, not for its vectors. Ties
/// go to the smaller item, so the order does not depend on the order items came in.
pub struct TopScores<T: Ord> {
    limit: Option<usize>,
    /// The worst kept item on top, to be pushed out by a better one.
    kept: BinaryHeap<Reverse<Scored<T>>>,
}

/// An item with its score; greater is better: a higher score, then a smaller item.
#[derive(PartialEq, Eq)]
struct Scored<T: Ord> {
    score: Descending,
    item: T,
}

impl<T: Ord> Ord for Scored<T> {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        (other.score.cmp(&self.score)).then_with(|| other.item.cmp(&self.item))
    }
}

impl<T: Ord> PartialOrd for Scored<T> {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

/// A score's sort key: smaller is better ([`descending_bits`]).
#[derive(PartialEq, Eq, PartialOrd, Ord, Clone, Copy)]
struct Descending(u32);

impl<T: Ord> TopScores<T> {
    pub fn new(limit: Option<usize>) -> Self {
        TopScores {
            limit,
            kept: BinaryHeap::new(),
        }
    }

    /// Offers an item; `item` is made only when the score may keep it.
    pub fn offer(&mut self, score: f32, item: impl FnOnce() -> T) {
        let key = Descending(descending_bits(score));
        let full = self.limit.is_some_and(|k| self.kept.len() >= k);
        if self.limit == Some(0) || (full && self.kept.peek().is_some_and(|w| key > w.0.score)) {
            return;
        }
        self.kept.push(Reverse(Scored {
            score: key,
            item: item(),
        }));
        if self.limit.is_some_and(|k| self.kept.len() > k) {
            self.kept.pop();
        }
    }

    /// The kept items with their scores, best first.
    pub fn into_best_first(self) -> Vec<(T, f32)> {
        let mut kept: Vec<Scored<T>> = self.kept.into_iter().map(|r| r.0).collect();
        kept.sort_unstable_by(|a, b| b.cmp(a));
        kept.into_iter()
            .map(|s| (s.item, score_of(s.score.0)))
            .collect()
    }
}

/// The score whose [`descending_bits`] these are.
fn score_of(bits: u32) -> f32 {
    let ascending = !bits;
    f32::from_bits(match ascending >> 31 {
        1 => ascending & !(1 << 31),
        _ => !ascending,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `count` pseudo-random unit vectors of `dim` values, the same for the same `seed`.
    fn unit_vectors(count: usize, dim: usize, seed: u32) -> Vec<Vec<f32>> {
        let mut state = seed;
        let mut random = || {
            state ^= state << 13;
            state ^= state >> 17;
            state ^= state << 5;
            (state % 2001) as f32 / 1000.0 - 1.0
        };
        (0..count)
            .map(|_| {
                let mut v: Vec<f32> = (0..dim).map(|_| random()).collect();
                l2_normalise(&mut v);
                v
            })
            .collect()
    }

    #[test]
    fn vectors_in_f16_score_like_f32_and_move_with_their_items() {
        let vectors = unit_vectors(300, 1280, 99);
        let mut store = Vectors::new(301);
        vectors
            .iter()
            .enumerate()
            .for_each(|(i, v)| store.set(i, v));
        let query = &vectors[5];
        let scores = store.scores(query);
        for (i, v) in vectors.iter().enumerate() {
            let exact = cosine(query, v);
            assert!((scores[i].unwrap() - exact).abs() < 2e-3, "{i}");
        }
        assert_eq!(scores[300], None, "an item without a vector has no score");
        let moved = store.rearranged(&[Some(7), None, Some(5)]);
        assert_eq!(moved.len(), 3);
        assert_eq!(moved.get(0), store.get(7));
        assert!(!moved.has(1) && moved.get(2).is_some());
        // Another model's vector, of another length, clears the others.
        store.set(1, &[1.0, 0.0]);
        assert!(!store.has(0) && store.has(1));
        assert_eq!(store.scores(query), vec![None; 301]);
    }

    #[test]
    fn top_scores_keep_what_rank_ranks_first_in_its_order() {
        let vectors = unit_vectors(500, 16, 12345);
        // Two items of equal score: the smaller one ranks first, as in rank's input order.
        let mut vectors = vectors;
        vectors[300] = vectors[7].clone();
        let query = vectors[42].clone();
        let ranked = rank(&query, vectors.iter().map(Vec::as_slice));
        for limit in [None, Some(0), Some(1), Some(10), Some(499), Some(600)] {
            let mut top = TopScores::new(limit);
            // Offered in another order than rank saw them.
            for (i, v) in vectors.iter().enumerate().rev() {
                top.offer(cosine(&query, v), || i);
            }
            let expected: Vec<(usize, f32)> = ranked
                .iter()
                .copied()
                .take(limit.unwrap_or(usize::MAX))
                .collect();
            assert_eq!(top.into_best_first(), expected, "limit {limit:?}");
        }
    }

    #[test]
    fn rank_orders_by_cosine() {
        let mut a = vec![1.0, 0.0];
        let mut b = vec![0.6, 0.8];
        let mut c = vec![0.0, 1.0];
        for v in [&mut a, &mut b, &mut c] {
            l2_normalise(v);
        }
        let ranked = rank(&[0.0, 1.0], [a.as_slice(), b.as_slice(), c.as_slice()]);
        assert_eq!(
            ranked.iter().map(|r| r.0).collect::<Vec<_>>(),
            vec![2, 1, 0]
        );
        assert!((ranked[1].1 - 0.8).abs() < 1e-6);
    }

    #[test]
    fn similarity_order_puts_the_query_first_and_unscored_last() {
        let scores = [Some(0.2), None, Some(-0.5), Some(0.9), Some(0.2), Some(1.0)];
        let mut order: Vec<usize> = (0..scores.len()).collect();
        similarity_order(&mut order, Some(3), &scores);
        // 3 is the query even though 5 scores higher; 0 and 4 tie and keep index order.
        assert_eq!(order, vec![3, 5, 0, 4, 2, 1]);
    }

    #[test]
    fn descending_bits_order_every_kind_of_score() {
        let scores = [1.0f32, 0.5, 1e-30, 0.0, -0.0, -1e-30, -0.5, -1.0];
        let keys: Vec<u32> = scores.iter().map(|&s| descending_bits(s)).collect();
        assert!(keys.windows(2).all(|w| w[0] < w[1]), "{keys:?}");
    }

    #[test]
    fn cosine_matches_a_plain_sum_on_odd_lengths() {
        let a: Vec<f32> = (0..1283).map(|i| (i as f32 * 0.37).sin()).collect();
        let b: Vec<f32> = (0..1283).map(|i| (i as f32 * 0.11).cos()).collect();
        let plain: f64 = a.iter().zip(&b).map(|(x, y)| *x as f64 * *y as f64).sum();
        assert!((cosine(&a, &b) as f64 - plain).abs() < 1e-3);
    }

    #[test]
    fn normalising_zero_keeps_zero() {
        let mut z = vec![0.0; 3];
        l2_normalise(&mut z);
        assert_eq!(z, vec![0.0; 3]);
    }
}
