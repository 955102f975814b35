//! A search with several examples: pictures it should look like (positive) and pictures it
//! should not (negative), from the folder or from outside it. The command line's `similar` and
//! the app's query bar both build one.
//!
//! The score of an image is its mean cosine to the positive examples minus
//! [`NEGATIVE_WEIGHT`] times its mean cosine to the negative ones. Both means are linear in the
//! image's vector, so the whole query folds into one vector and scoring costs what a
//! single-image search costs: one dot product per image, on the same parallel scorer. With one
//! positive example and no negative the scores are exactly the cosines of a single-image search.
//!
//! An example given as both positive and negative cancels out: the user said both, so it
//! counts as neither.

use crate::error::{Error, Result};
use crate::similarity::scores;

/// How much a negative example counts against a positive one. At 0.5 a picture as close to a
/// negative example as to the positive ones keeps half its score: "less like this" pushes down
/// without wiping out everything near it, which a weight of 1 would.
pub const NEGATIVE_WEIGHT: f32 = 0.5;

/// A search by examples.
#[derive(Debug, Clone, PartialEq)]
pub struct Query {
    /// Mean of the positive examples minus the weighted mean of the negative ones.
    folded: Vec<f32>,
}

impl Query {
    /// A query from unit vectors. Fails when no positive example is left (after those also
    /// given as negative cancel) or the vectors differ in length.
    pub fn new(positive: &[&[f32]], negative: &[&[f32]]) -> Result<Self> {
        Self::with_weight(positive, negative, NEGATIVE_WEIGHT)
    }

    pub fn with_weight(positive: &[&[f32]], negative: &[&[f32]], weight: f32) -> Result<Self> {
        let both = |v: &&[f32]| positive.contains(v) && negative.contains(v);
        let positive: Vec<&[f32]> = positive.iter().copied().filter(|v| !both(v)).collect();
        let negative: Vec<&[f32]> = negative.iter().copied().filter(|v| !both(v)).collect();
        let Some(dim) = positive.first().map(|v| v.len()) else {
            return Err(Error::Usage(
                "a search needs at least one picture to look like".into(),
            ));
        };
        if positive.iter().chain(&negative).any(|v| v.len() != dim) {
            return Err(Error::Usage(
                "the examples come from different models".into(),
            ));
        }
        let mut folded = mean(&positive, dim);
        if !negative.is_empty() {
            let against = mean(&negative, dim);
            folded
                .iter_mut()
                .zip(against)
                .for_each(|(f, a)| *f -= weight * a);
        }
        Ok(Query { folded })
    }

    /// Every item's score, computed in parallel; `None` where an item has no vector.
    pub fn scores(&self, items: &[Option<&[f32]>]) -> Vec<Option<f32>> {
        scores(&self.folded, items)
    }

    /// The folded query: an image's score is its dot product with this.
    pub fn vector(&self) -> &[f32] {
        &self.folded
    }

    /// One vector's score.
    pub fn score(&self, vector: &[f32]) -> f32 {
        self.folded.iter().zip(vector).map(|(a, b)| a * b).sum()
    }
}

fn mean(vectors: &[&[f32]], dim: usize) -> Vec<f32> {
    let mut sum = vec![0.0f32; dim];
    for v in vectors {
        sum.iter_mut().zip(*v).for_each(|(s, x)| *s += x);
    }
    let n = vectors.len().max(1) as f32;
    sum.iter_mut().for_each(|s| *s /= n);
    sum
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::similarity::{cosine, l2_normalise, similarity_order};

    fn unit(v: &[f32]) -> Vec<f32> {
        let mut v = v.to_vec();
        l2_normalise(&mut v);
        v
    }

    fn order_of(query: &Query, items: &[Vec<f32>]) -> Vec<usize> {
        let refs: Vec<Option<&[f32]>> = items.iter().map(|v| Some(v.as_slice())).collect();
        let scores = query.scores(&refs);
        let mut order: Vec<usize> = (0..items.len()).collect();
        similarity_order(&mut order, None, &scores);
        order
    }

    fn items() -> Vec<Vec<f32>> {
        [
            [1.0, 0.0, 0.0],
            [0.9, 0.1, 0.0],
            [0.7, 0.0, 0.7],
            [0.0, 1.0, 0.0],
            [0.6, 0.6, 0.2],
        ]
        .iter()
        .map(|v| unit(v))
        .collect()
    }

    #[test]
    fn one_positive_scores_exactly_the_cosine() {
        let items = items();
        let query = Query::new(&[&items[0]], &[]).unwrap();
        let refs: Vec<Option<&[f32]>> = items.iter().map(|v| Some(v.as_slice())).collect();
        let got = query.scores(&refs);
        let want = crate::similarity::scores(&items[0], &refs);
        assert_eq!(got, want, "bit for bit what a single-image search gives");
        assert_eq!(order_of(&query, &items), vec![0, 1, 2, 4, 3]);
        assert!((query.score(&items[2]) - cosine(&items[0], &items[2])).abs() < 1e-6);
    }

    #[test]
    fn a_negative_example_pushes_down_what_is_close_to_it() {
        let items = items();
        let plain = order_of(&Query::new(&[&items[0]], &[]).unwrap(), &items);
        let against_z = Query::new(&[&items[0]], &[&items[2]]).unwrap();
        let pushed = order_of(&against_z, &items);
        let place = |order: &[usize], i: usize| order.iter().position(|&x| x == i).unwrap();
        assert!(
            place(&pushed, 2) > place(&plain, 2),
            "{plain:?} then {pushed:?}"
        );
        assert!(against_z.score(&items[2]) < cosine(&items[0], &items[2]));
    }

    #[test]
    fn two_positives_favour_what_is_like_both() {
        let items = items();
        // Item 4 lies between x (0) and y (3); with both as examples it comes first after them.
        let query = Query::new(&[&items[0], &items[3]], &[]).unwrap();
        let order = order_of(&query, &items);
        assert_eq!(order[0], 4, "{order:?}");
        let mean = (cosine(&items[4], &items[0]) + cosine(&items[4], &items[3])) / 2.0;
        assert!((query.score(&items[4]) - mean).abs() < 1e-6);
    }

    #[test]
    fn an_example_both_positive_and_negative_cancels() {
        let items = items();
        let both = Query::new(&[&items[0], &items[3]], &[&items[0]]).unwrap();
        let only_y = Query::new(&[&items[3]], &[]).unwrap();
        assert_eq!(both, only_y);
        assert!(
            Query::new(&[&items[0]], &[&items[0]]).is_err(),
            "nothing is left"
        );
    }

    #[test]
    fn empty_queries_and_mixed_models_are_refused() {
        let items = items();
        assert!(Query::new(&[], &[]).is_err());
        assert!(Query::new(&[], &[&items[0]]).is_err());
        let short = [1.0f32, 0.0];
        assert!(Query::new(&[&items[0], &short], &[]).is_err());
    }
}
