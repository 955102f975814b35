//! Cosine similarity over L2-normalised embeddings: ranking a collection against one vector.

/// Scales `v` to unit length in place; a zero vector stays zero.
pub fn l2_normalise(v: &mut [f32]) {
    let norm = v.iter().map(|x| x * x).sum::<f32>().sqrt();
    if norm > 0.0 {
        v.iter_mut().for_each(|x| *x /= norm);
    }
}

/// Cosine similarity of two unit vectors.
pub fn cosine(a: &[f32], b: &[f32]) -> f32 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

/// Indices of `items` with their cosine to `query`, best first. Ties keep their input order,
/// so equal scores rank stably.
pub fn rank<'a, I>(query: &[f32], items: I) -> Vec<(usize, f32)>
where
    I: IntoIterator<Item = &'a [f32]>,
{
    let mut scored: Vec<(usize, f32)> = items
        .into_iter()
        .map(|v| cosine(query, v))
        .enumerate()
        .collect();
    scored.sort_by(|a, b| b.1.total_cmp(&a.1));
    scored
}

#[cfg(test)]
mod tests {
    use super::*;

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
    fn normalising_zero_keeps_zero() {
        let mut z = vec![0.0; 3];
        l2_normalise(&mut z);
        assert_eq!(z, vec![0.0; 3]);
    }
}
