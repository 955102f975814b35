//! VGG16 (ImageNet), the backbone of the original tutorial, in the `model.safetensors` layout
//! of `timm/vgg16.tv_in1k` (torchvision's weights).
//!
//! The embedding is the mean over height and width of the last max-pool's output (512-d), as
//! Keras' `VGG16(include_top=False, pooling='avg')`. Labels come from the classifier head when
//! the file has one; the head's 411 MB first layer is read from the weights (a memory-mapped
//! file, see [`super::weights`]) only the first time labels are wanted. The 13 convolutions run on the NHWC kernels, with bias
//! and ReLU fused, one image at a time so that working buffers stay small: the first by
//! im2col and gemm, the other twelve by Winograd's F(2×2, 3×3) (see [`super::winograd`]).

use std::sync::OnceLock;

use candle_core::{Device, Tensor};
use candle_nn::VarBuilder;

use super::kernels::{self, Activation, ConvGeometry, Weights};
use super::winograd::{self, WinogradWeights};
use super::{to_vec, with_values, Backbone, ModelInfo, Normalisation, Precision, Preprocess};
use crate::error::{Error, Result};

/// Output channels of each convolution; `0` marks a 2×2 max-pool.
const LAYERS: [usize; 18] = [
    64, 64, 0, 128, 128, 0, 256, 256, 256, 0, 512, 512, 512, 0, 512, 512, 512, 0,
];
/// Index of each convolution in torchvision's `features` sequence.
const FEATURE_INDICES: [usize; 13] = [0, 2, 5, 7, 10, 12, 14, 17, 19, 21, 24, 26, 28];
const INPUT_SIZE: usize = 224;
const EMBEDDING: usize = 512;
const HIDDEN: usize = 4096;
const CLASSES: usize = 1000;

pub const INFO: ModelInfo = ModelInfo {
    id: "vgg16",
    revision: "vgg16-tv_in1k-pillow-bilinear-v1",
    dim: EMBEDDING,
    preprocess: Preprocess {
        resize_shorter: 256,
        crop: INPUT_SIZE as u32,
        normalisation: Normalisation::ImageNetMeanStd,
    },
};

/// The Hugging Face repository and file the weights come from.
pub const HUB_REPO: &str = "timm/vgg16.tv_in1k";
pub const HUB_FILE: &str = "model.safetensors";

/// One 3×3 convolution's weights, in the form its kernel wants, and bias `[out]`.
struct Conv {
    kernel: ConvKernel,
    bias: Vec<f32>,
}

enum ConvKernel {
    /// `[3, 3, in, out]` for im2col and gemm: the first layer, whose 3 input channels are too
    /// few for Winograd's transforms to pay off.
    Direct(Weights),
    /// Every other layer: Winograd F(2×2, 3×3), 2.25 times less arithmetic.
    Winograd(WinogradWeights),
}

/// Input channels from which a layer runs on Winograd.
const WINOGRAD_FROM_INPUTS: usize = 16;

/// The classifier: fc1 `[4096, 25088]`, fc2 `[4096, 4096]`, fc3 `[1000, 4096]` with biases.
struct Head {
    layers: Vec<(Tensor, Tensor)>,
}

pub struct Vgg16 {
    convs: Vec<Conv>,
    /// Where the classifier is read from, the first time labels are wanted.
    weights: VarBuilder<'static>,
    has_head: bool,
    head: OnceLock<std::result::Result<Head, String>>,
    precision: Precision,
}

impl Vgg16 {
    /// Builds the model from weights in the timm layout. The convolutions are read now; the
    /// classifier on first use, so `weights` is kept (a memory map costs nothing until read).
    /// `precision` must be resolved (bf16 or f32); the classifier runs in f32 either way.
    pub fn new(weights: VarBuilder<'static>, precision: Precision) -> Result<Self> {
        let mut convs = Vec::with_capacity(FEATURE_INDICES.len());
        let mut inputs = 3;
        for (&outputs, index) in LAYERS.iter().filter(|&&c| c > 0).zip(FEATURE_INDICES) {
            convs.push(load_conv(
                &weights.pp(format!("features.{index}")),
                (inputs, outputs),
                precision,
            )?);
            inputs = outputs;
        }
        let has_head = [
            "pre_logits.fc1.weight",
            "pre_logits.fc2.weight",
            "head.fc.weight",
        ]
        .iter()
        .all(|name| weights.contains_tensor(name));
        Ok(Vgg16 {
            convs,
            weights,
            has_head,
            head: OnceLock::new(),
            precision,
        })
    }

    pub fn has_classifier(&self) -> bool {
        self.has_head
    }

    /// Whether the classifier has been read from the file (only once labels were wanted).
    pub fn classifier_loaded(&self) -> bool {
        self.head.get().is_some()
    }

    /// The 512-channel 7×7 feature map after the last max-pool, NHWC, for one image (NCHW in).
    fn features(&self, image: &[f32]) -> Vec<f32> {
        let mut x = kernels::nchw_to_nhwc(image, 1, 3, INPUT_SIZE, INPUT_SIZE);
        let (mut size, mut channels) = (INPUT_SIZE, 3);
        let mut convs = self.convs.iter();
        for &layer in &LAYERS {
            if layer == 0 {
                let pooled = kernels::max_pool_2x2(&x, 1, size, size, channels);
                kernels::give_back(std::mem::replace(&mut x, pooled));
                size /= 2;
            } else if let Some(conv) = convs.next() {
                let next = match &conv.kernel {
                    ConvKernel::Direct(w) => {
                        let g = ConvGeometry::symmetric(1, size, size, channels, 3, 1, 1);
                        kernels::conv2d(&x, &g, w.matrix(), &conv.bias, Activation::Relu)
                    }
                    ConvKernel::Winograd(w) => {
                        winograd::conv3x3(&x, 1, size, size, w, &conv.bias, Activation::Relu)
                    }
                };
                // Its buffer serves a later layer's output, instead of a new zeroed one.
                kernels::give_back(std::mem::replace(&mut x, next));
                channels = layer;
            }
        }
        x
    }

    fn head(&self) -> Result<&Head> {
        let head = self
            .head
            .get_or_init(|| self.load_head().map_err(|e| e.to_string()));
        head.as_ref().map_err(|e| Error::Model(e.clone()))
    }

    fn load_head(&self) -> Result<Head> {
        // fc1 is stored as a 7×7 convolution in timm's file; the classifier wants it flat.
        let load = |name: &str, shape: &[usize]| -> Result<Tensor> {
            Ok(self.weights.get_unchecked(name)?.reshape(shape)?)
        };
        let layers = vec![
            (
                load("pre_logits.fc1.weight", &[HIDDEN, EMBEDDING * 49])?,
                load("pre_logits.fc1.bias", &[HIDDEN])?,
            ),
            (
                load("pre_logits.fc2.weight", &[HIDDEN, HIDDEN])?,
                load("pre_logits.fc2.bias", &[HIDDEN])?,
            ),
            (
                load("head.fc.weight", &[CLASSES, HIDDEN])?,
                load("head.fc.bias", &[CLASSES])?,
            ),
        ];
        Ok(Head { layers })
    }

    /// Logits from the NHWC feature maps of a batch.
    fn classify(&self, maps: &[f32], batch: usize) -> Result<Tensor> {
        let head = self.head()?;
        // torchvision flattens the map channel-first.
        let nhwc = Tensor::from_slice(maps, (batch, 7, 7, EMBEDDING), &Device::Cpu)?;
        let mut x = nhwc
            .permute((0, 3, 1, 2))?
            .contiguous()?
            .reshape((batch, EMBEDDING * 49))?;
        for (i, (w, b)) in head.layers.iter().enumerate() {
            x = x.matmul(&w.t()?)?.broadcast_add(b)?;
            if i + 1 < head.layers.len() {
                x = x.relu()?;
            }
        }
        Ok(x)
    }
}

impl Backbone for Vgg16 {
    fn info(&self) -> &ModelInfo {
        &INFO
    }

    fn precision(&self) -> Precision {
        self.precision
    }

    fn forward(&self, batch: &Tensor) -> Result<(Tensor, Option<Tensor>)> {
        let (embeddings, maps) = self.features_of(batch)?;
        let logits = match self.has_head {
            true => Some(self.classify(&maps, embeddings.dim(0)?)?),
            false => None,
        };
        Ok((embeddings, logits))
    }

    fn embed(&self, batch: &Tensor) -> Result<Tensor> {
        Ok(self.features_of(batch)?.0)
    }
}

impl Vgg16 {
    /// Embeddings `[n, 512]` and the NHWC feature maps they are the mean of.
    fn features_of(&self, batch: &Tensor) -> Result<(Tensor, Vec<f32>)> {
        let (n, c, h, w) = batch.dims4()?;
        if (c, h, w) != (3, INPUT_SIZE, INPUT_SIZE) {
            return Err(Error::Model(format!(
                "VGG16 takes [n, 3, 224, 224], got [{n}, {c}, {h}, {w}]"
            )));
        }
        let per_image = 3 * INPUT_SIZE * INPUT_SIZE;
        let mut maps = Vec::with_capacity(n * 49 * EMBEDDING);
        with_values(batch, |input| {
            for image in input.chunks_exact(per_image) {
                maps.extend(self.features(image));
            }
        })?;
        let pooled = kernels::global_average(&maps, n, EMBEDDING);
        Ok((
            Tensor::from_vec(pooled, (n, EMBEDDING), &Device::Cpu)?,
            maps,
        ))
    }
}

impl std::fmt::Debug for Vgg16 {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Vgg16 {{ classifier: {} }}", self.has_head)
    }
}

/// One convolution (`vb` is `features.{index}`) as `[3, 3, in, out]`, or Winograd's form.
fn load_conv(
    vb: &VarBuilder,
    (inputs, outputs): (usize, usize),
    precision: Precision,
) -> Result<Conv> {
    let w = vb.get((outputs, inputs, 3, 3), "weight")?;
    let w = to_vec(&w.permute((2, 3, 1, 0))?.contiguous()?)?;
    let bias = to_vec(&vb.get(outputs, "bias")?)?;
    let kernel = match inputs >= WINOGRAD_FROM_INPUTS {
        true => ConvKernel::Winograd(WinogradWeights::new(&w, inputs, outputs, precision)),
        false => ConvKernel::Direct(Weights::new(w, 9 * inputs, outputs, precision)),
    };
    Ok(Conv { kernel, bias })
}
