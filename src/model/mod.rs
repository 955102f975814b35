//! The image models behind one trait, their preprocessing conventions, and the ImageNet labels.
//!
//! Each backbone is a plain struct with `new(vb)` and `forward(batch) -> (embeddings, logits)`.
//! Callers pick one by [`ModelKind`] and never see which kernels run inside.

pub mod kernels;
pub mod labels;
pub mod lite0;

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

    /// `batch` is NCHW f32 of shape `[n, 3, crop, crop]`. Returns the raw (not normalised)
    /// embeddings `[n, dim]` and, if the model can classify, logits `[n, 1000]`.
    fn forward(&self, batch: &Tensor) -> Result<(Tensor, Option<Tensor>)>;
}

/// The models lookalike knows by name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum ModelKind {
    /// EfficientNet-Lite0, bundled in the binary.
    #[default]
    Lite0,
}

impl ModelKind {
    /// Every name `from_name` accepts, for help texts.
    pub const NAMES: &'static [&'static str] = &["lite0"];

    pub fn name(self) -> &'static str {
        match self {
            ModelKind::Lite0 => "lite0",
        }
    }

    pub fn from_name(name: &str) -> Result<Self> {
        match name.to_ascii_lowercase().as_str() {
            "lite0" | "efficientnet-lite0" => Ok(ModelKind::Lite0),
            other => Err(Error::Usage(format!(
                "unknown model '{other}'; known models: {}",
                Self::NAMES.join(", ")
            ))),
        }
    }

    /// Builds the model on the CPU.
    pub fn load(self) -> Result<Box<dyn Backbone>> {
        match self {
            ModelKind::Lite0 => Ok(Box::new(lite0::Lite0::bundled()?)),
        }
    }
}

/// Reads a candle tensor into a flat `Vec<f32>` in its logical (row-major) order.
pub(crate) fn to_vec(t: &Tensor) -> Result<Vec<f32>> {
    Ok(t.to_dtype(candle_core::DType::F32)?
        .flatten_all()?
        .to_vec1::<f32>()?)
}
