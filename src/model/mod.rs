//! The image models behind one trait, their preprocessing conventions, and the ImageNet labels.
//!
//! Each backbone is a plain struct with `new(vb)` and `forward(batch) -> (embeddings, logits)`.
//! Callers pick one by [`ModelKind`] and never see which kernels run inside.

pub mod auto;
pub mod bf16;
pub mod download;
pub mod kernels;
pub mod labels;
pub mod lite0;
pub mod packed_f32;
pub mod tile;
pub mod vgg16;
pub mod weights;
pub mod winograd;

pub use weights::{find_vgg16_weights, models_dir, vgg16_missing, vgg16_source};

use std::path::Path;

use candle_core::Tensor;

use crate::error::{Error, Result};

/// How the model wants pixels scaled after resizing and cropping.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Normalisation {
    /// `(x - 127) / 128` with `x` in 0..=255, as EfficientNet-Lite was trained.
    Centred127,
    /// ImageNet mean and standard deviation on `x / 255`, as torchvision models are trained.
    ImageNetMeanStd,
}

/// Resize-then-crop preprocessing: the shorter side goes to `resize_shorter` with antialiased
/// bilinear filtering, then the centre `crop × crop` square is kept.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Preprocess {
    pub resize_shorter: u32,
    pub crop: u32,
    pub normalisation: Normalisation,
}

/// What a caller needs to know about a loaded model.
#[derive(Debug, Clone, PartialEq)]
pub struct ModelInfo {
    /// Short name used on the command line and in caches, e.g. `lite0`.
    pub id: &'static str,
    /// Changes whenever the weights or the preprocessing change, so cached vectors go stale.
    pub revision: &'static str,
    /// Length of the embedding vector.
    pub dim: usize,
    pub preprocess: Preprocess,
}

/// A CNN that turns a batch of preprocessed images into embeddings and, when it has a
/// classifier head, ImageNet logits.
pub trait Backbone: Send + Sync {
    fn info(&self) -> &ModelInfo;

    /// The precision the network computes in (bf16 or f32, never `Auto`).
    fn precision(&self) -> Precision;

    /// `batch` is NCHW f32 of shape `[n, 3, crop, crop]`. Returns the raw (not normalised)
    /// embeddings `[n, dim]` and, if the model can classify, logits `[n, 1000]`.
    fn forward(&self, batch: &Tensor) -> Result<(Tensor, Option<Tensor>)>;

    /// The embeddings alone, for callers that want no labels; models whose classifier is
    /// costly skip it here.
    fn embed(&self, batch: &Tensor) -> Result<Tensor> {
        Ok(self.forward(batch)?.0)
    }
}

/// What the models compute in. Every sum is f32 either way; bf16 rounds weights and
/// activations to bfloat16 before they are multiplied, which CPUs with native bf16 dot
/// products (AVX512_BF16) do twice as fast. Embeddings from the two agree to a cosine above
/// 0.99, so the index keeps one set of vectors for both.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, Default, serde::Serialize, serde::Deserialize,
)]
#[serde(rename_all = "lowercase")]
pub enum Precision {
    /// The fastest path this CPU has for the model, measured the first time (see [`auto`]).
    #[default]
    Auto,
    Bf16,
    F32,
}

impl Precision {
    /// Every name `from_name` accepts, for help texts.
    pub const NAMES: &'static [&'static str] = &["auto", "bf16", "f32"];

    pub fn name(self) -> &'static str {
        match self {
            Precision::Auto => "auto",
            Precision::Bf16 => "bf16",
            Precision::F32 => "f32",
        }
    }

    pub fn from_name(name: &str) -> Result<Self> {
        match name.to_ascii_lowercase().as_str() {
            "auto" => Ok(Precision::Auto),
            "bf16" | "bfloat16" => Ok(Precision::Bf16),
            "f32" | "float32" => Ok(Precision::F32),
            other => Err(Error::Usage(format!(
                "unknown precision '{other}'; choose one of {}",
                Self::NAMES.join(", ")
            ))),
        }
    }

    /// A precision this CPU can run: bf16 asked for on a CPU without it is an error that says
    /// so. `Auto` becomes the path auto would try first, before any measurement (bf16 where
    /// the CPU has it); [`ModelKind::load`] is what measures.
    pub fn resolve(self) -> Result<Precision> {
        match (self, bf16::supported()) {
            (Precision::Auto | Precision::Bf16, true) => Ok(Precision::Bf16),
            (Precision::Auto | Precision::F32, _) => Ok(Precision::F32),
            (Precision::Bf16, false) => Err(Error::Usage(
                "this CPU has no native bf16 dot products (AVX512_BF16); \
                 use --precision f32 or auto"
                    .into(),
            )),
        }
    }
}

/// The models lookalike knows by name (as the app's settings keep them, too).
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, Default, serde::Serialize, serde::Deserialize,
)]
#[serde(rename_all = "lowercase")]
pub enum ModelKind {
    /// EfficientNet-Lite0, bundled in the binary.
    #[default]
    Lite0,
    /// VGG16, from a weights file the user fetches once (about 553 MB).
    Vgg16,
}

impl ModelKind {
    /// Every name `from_name` accepts, for help texts.
    pub const NAMES: &'static [&'static str] = &["lite0", "vgg16"];

    pub fn name(self) -> &'static str {
        match self {
            ModelKind::Lite0 => "lite0",
            ModelKind::Vgg16 => "vgg16",
        }
    }

    pub fn from_name(name: &str) -> Result<Self> {
        match name.to_ascii_lowercase().as_str() {
            "lite0" | "efficientnet-lite0" => Ok(ModelKind::Lite0),
            "vgg16" => Ok(ModelKind::Vgg16),
            other => Err(Error::Usage(format!(
                "unknown model '{other}'; known models: {}",
                Self::NAMES.join(", ")
            ))),
        }
    }

    /// Builds the model on the CPU in `precision`. `weights` names a weights file for models
    /// that are not bundled; without it the usual places are searched (see
    /// [`find_vgg16_weights`]).
    /// `Auto` loads the fastest path this CPU has (see [`auto`]).
    pub fn load(self, weights: Option<&Path>, precision: Precision) -> Result<Box<dyn Backbone>> {
        match precision {
            Precision::Auto => auto::load_fastest(self, |exact| self.load_exact(weights, exact)),
            exact => self.load_exact(weights, exact),
        }
    }

    fn load_exact(self, weights: Option<&Path>, precision: Precision) -> Result<Box<dyn Backbone>> {
        let precision = precision.resolve()?;
        match self {
            ModelKind::Lite0 => Ok(Box::new(lite0::Lite0::bundled(precision)?)),
            ModelKind::Vgg16 => {
                let path = match weights {
                    Some(path) => path.to_path_buf(),
                    None => find_vgg16_weights().ok_or_else(vgg16_missing)?,
                };
                Ok(Box::new(weights::open_vgg16(&path, precision)?))
            }
        }
    }
}

/// Reads a candle tensor into a flat `Vec<f32>` in its logical (row-major) order.
pub(crate) fn to_vec(t: &Tensor) -> Result<Vec<f32>> {
    Ok(t.to_dtype(candle_core::DType::F32)?
        .flatten_all()?
        .to_vec1::<f32>()?)
}

/// Runs `work` on a tensor's values, in place when it is a contiguous f32 tensor in memory (a
/// batch of 16 images is 9.6 MB, and copying it took 1% of Lite0's time), else on a copy.
pub(crate) fn with_values<R>(t: &Tensor, work: impl FnOnce(&[f32]) -> R) -> Result<R> {
    if t.dtype() == candle_core::DType::F32 {
        let (storage, layout) = t.storage_and_layout();
        if let (candle_core::Storage::Cpu(cpu), Some((start, end))) =
            (&*storage, layout.contiguous_offsets())
        {
            return Ok(work(&cpu.as_slice::<f32>()?[start..end]));
        }
    }
    Ok(work(&to_vec(t)?))
}

/// A reproducible stream of values in -1..1, for the kernels' tests.
#[cfg(test)]
pub(crate) fn test_noise(seed: u64, len: usize) -> Vec<f32> {
    let mut state = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    (0..len)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            (state >> 40) as f32 / (1u64 << 23) as f32 - 1.0
        })
        .collect()
}

/// For tests of code that needs a CPU feature: whether the test may run here.
///
/// Where the CPU lacks the feature, writes `SKIPPED: <test> needs <feature>` straight to the
/// terminal, past the test harness's capture (which hides what a passing test prints), so
/// that `cargo test`'s output shows every test that did not really run and
/// `grep -c '^SKIPPED:'` counts them. With `LOOKALIKE_REQUIRE_CPU` set, the test fails
/// instead: for a machine that is meant to run them all.
#[doc(hidden)]
pub fn test_runs_on_this_cpu(present: bool, test: &str, feature: &str) -> bool {
    if present {
        return true;
    }
    let line = format!("SKIPPED: {test} needs {feature}");
    assert!(
        std::env::var_os("LOOKALIKE_REQUIRE_CPU").is_none(),
        "{line}, and LOOKALIKE_REQUIRE_CPU asks that every test run"
    );
    use std::io::Write;
    // Not `eprintln!`: the harness captures that, and shows it only when a test fails.
    let _ = writeln!(std::io::stderr(), "{line}");
    false
}
