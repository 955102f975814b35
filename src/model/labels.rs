//! The 1000 ImageNet class names in the standard index order (torchvision's), compiled in.

use std::sync::OnceLock;

const LABELS_TEXT: &str = include_str!("../../assets/imagenet-labels.txt");

/// All 1000 names; index `i` is class `i`.
pub fn imagenet_labels() -> &'static [&'static str] {
    static LABELS: OnceLock<Vec<&'static str>> = OnceLock::new();
    LABELS.get_or_init(|| LABELS_TEXT.lines().collect())
}

/// One class of a prediction.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Prediction {
    pub class: usize,
    pub label: String,
    pub prob: f32,
}

/// Softmax over `logits`, then the `k` most probable classes, best first.
pub fn top_k(logits: &[f32], k: usize) -> Vec<Prediction> {
    let max = logits.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    let exp: Vec<f32> = logits.iter().map(|l| (l - max).exp()).collect();
    let total: f32 = exp.iter().sum();
    let mut order: Vec<usize> = (0..logits.len()).collect();
    order.sort_by(|&a, &b| exp[b].total_cmp(&exp[a]));
    let labels = imagenet_labels();
    order
        .into_iter()
        .take(k)
        .map(|class| Prediction {
            class,
            label: labels.get(class).copied().unwrap_or("?").to_string(),
            prob: exp[class] / total,
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn there_are_1000_labels_in_standard_order() {
        let labels = imagenet_labels();
        assert_eq!(labels.len(), 1000);
        assert_eq!(labels[0], "tench");
        assert_eq!(labels[292], "tiger");
        assert_eq!(labels[385], "Indian elephant");
        assert_eq!(labels[999], "toilet tissue");
    }

    #[test]
    fn top_k_is_a_sorted_softmax() {
        let mut logits = vec![0.0f32; 1000];
        logits[7] = 3.0;
        logits[3] = 2.0;
        let top = top_k(&logits, 2);
        assert_eq!((top[0].class, top[1].class), (7, 3));
        let total: f32 = 3f32.exp() + 2f32.exp() + 998.0;
        assert!((top[0].prob - 3f32.exp() / total).abs() < 1e-6);
        assert_eq!(top[0].label, "cock");
    }
}
