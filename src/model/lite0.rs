//! EfficientNet-Lite0 (ImageNet), the bundled default model.
//!
//! Conventions verified against the reference implementation: TF "SAME" padding (asymmetric
//! for stride 2), BatchNorm eps 1e-3, ReLU6, no squeeze-excite, input `(x - 127) / 128`.
//! BatchNorm is folded into the convolution weights at load, and the network runs on the
//! NHWC kernels in [`super::kernels`].

use candle_core::{DType, Device, Tensor};
use candle_nn::VarBuilder;
use std::sync::{Arc, Mutex, PoisonError};

use rayon::prelude::*;

use super::kernels::{self, Activation, ConvGeometry, Weights};
use super::{to_vec, with_values, Backbone, ModelInfo, Normalisation, Precision, Preprocess};
use crate::error::{Error, Result};

/// The converted weights, compiled in so that the program works offline from its first run.
static BUNDLED_WEIGHTS: &[u8] = include_bytes!("../../models/efficientnet-lite0.safetensors");

const BN_EPS: f64 = 1e-3;
const INPUT_SIZE: usize = 224;
/// Images per pass through the layers when they are fewer than the threads; see
/// [`Lite0::forward_slices`].
const SLICE: usize = 2;

/// One stage of MBConv blocks, in the manner of candle-transformers' `MBConvConfig`.
#[derive(Debug, Clone, Copy)]
pub struct MBConvConfig {
    /// Blocks in the stage; only the first changes stride and channels.
    pub repeats: usize,
    /// Side of the depthwise kernel.
    pub kernel: usize,
    /// Stride of the stage's first block.
    pub stride: usize,
    /// How many times wider the expanded activation is than the block's input.
    pub expand_ratio: usize,
    pub input_channels: usize,
    pub output_channels: usize,
}

/// The shape of an EfficientNet-Lite network.
#[derive(Debug, Clone)]
pub struct Lite0Config {
    pub stem_channels: usize,
    pub stages: Vec<MBConvConfig>,
    pub head_channels: usize,
    pub classes: usize,
}

impl Lite0Config {
    /// EfficientNet-Lite0 for the 1000 ImageNet classes.
    pub fn imagenet() -> Self {
        let stage =
            |repeats, kernel, stride, expand_ratio, input_channels, output_channels| MBConvConfig {
                repeats,
                kernel,
                stride,
                expand_ratio,
                input_channels,
                output_channels,
            };
        Lite0Config {
            stem_channels: 32,
            stages: vec![
                stage(1, 3, 1, 1, 32, 16),
                stage(2, 3, 2, 6, 16, 24),
                stage(2, 5, 2, 6, 24, 40),
                stage(3, 3, 2, 6, 40, 80),
                stage(3, 5, 1, 6, 80, 112),
                stage(4, 5, 2, 6, 112, 192),
                stage(1, 3, 1, 6, 192, 320),
            ],
            head_channels: HEAD_CHANNELS,
            classes: CLASSES,
        }
    }
}

const HEAD_CHANNELS: usize = 1280;
const CLASSES: usize = 1000;

pub const INFO: ModelInfo = ModelInfo {
    id: "lite0",
    revision: "lite0-57934424-pillow-bilinear-v1",
    dim: HEAD_CHANNELS,
    preprocess: Preprocess {
        resize_shorter: 256,
        crop: INPUT_SIZE as u32,
        normalisation: Normalisation::Centred127,
    },
};

/// A 1×1 convolution (or a fully connected layer) with its BatchNorm folded in.
/// `w` is `[inputs, outputs]`.
struct Pointwise {
    w: Weights,
    bias: Vec<f32>,
}

impl Pointwise {
    fn forward(
        &self,
        x: &[f32],
        rows: usize,
        act: Activation,
        residual: Option<&[f32]>,
    ) -> Vec<f32> {
        kernels::dense(x, rows, self.w.matrix(), &self.bias, act, residual)
    }

    /// The layer cut by output columns into `count` pieces.
    fn by_columns(&self, count: usize) -> Vec<Pointwise> {
        let outputs = self.bias.len();
        let inputs = self.w.matrix().inputs(outputs);
        let edge = |i: usize| piece_edge(i, count, outputs.div_ceil(16), outputs);
        let columns = (0..count).map(|i| edge(i)..edge(i + 1));
        let weights = self
            .w
            .parts(outputs, columns.clone().map(|c| (0..inputs, c)));
        weights
            .into_iter()
            .zip(columns)
            .map(|(w, c)| Pointwise {
                w,
                bias: self.bias[c].to_vec(),
            })
            .collect()
    }

    fn weights(&self) -> kernels::Pointwise<'_> {
        kernels::Pointwise {
            w: self.w.matrix(),
            bias: &self.bias,
        }
    }
}

/// A k×k convolution with BatchNorm folded in. `w` is `[k, k, inputs, outputs]` (the stem,
/// as [`Weights`] in the model's precision), or `[k, k, channels]` when depthwise (f32: see
/// [`kernels::Depthwise`]).
struct Spatial<W = Vec<f32>> {
    w: W,
    bias: Vec<f32>,
    kernel: usize,
    stride: usize,
}

/// One MBConv block: optional 1×1 expansion, depthwise k×k, 1×1 projection, optional skip.
struct Block {
    expand: Option<Pointwise>,
    depthwise: Spatial,
    project: Pointwise,
    skip: bool,
    /// The block cut into pieces by expanded channels, one per thread, for images split
    /// between threads (see [`Block::forward_in_pieces`]).
    pieces: OnePerThread<Piece>,
}

/// A layer cut into one piece per thread, made the first time it is needed and kept: only
/// single images run split this way, and most callers never do.
struct OnePerThread<T>(Mutex<Option<Arc<Vec<T>>>>);

impl<T> Default for OnePerThread<T> {
    fn default() -> Self {
        OnePerThread(Mutex::new(None))
    }
}

impl<T> OnePerThread<T> {
    /// The `count` pieces that `cut` makes, made again only if `count` changed.
    fn get(&self, count: usize, cut: impl FnOnce() -> Vec<T>) -> Arc<Vec<T>> {
        let mut kept = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        match &*kept {
            Some(pieces) if pieces.len() == count => pieces.clone(),
            _ => {
                let pieces = Arc::new(cut());
                *kept = Some(pieces.clone());
                pieces
            }
        }
    }
}

/// Where piece `i` of `count` starts (and piece `i - 1` ends), for pieces of whole
/// registers of 16 channels out of the `registers` that hold `channels`: pieces differ by one
/// register at most.
fn piece_edge(i: usize, count: usize, registers: usize, channels: usize) -> usize {
    (i * registers / count * 16).min(channels)
}

/// The weights of a range of a block's expanded channels (see
/// [`kernels::inverted_residual_in_pieces`]).
struct Piece {
    expand: Pointwise,
    depthwise: Spatial,
    project: Weights,
}

/// Images of this many rows or fewer are split between threads by expanded channels rather
/// than by rows, when there are fewer images than threads: on so few rows, the rows each
/// thread expands for the kernel to reach past its edge are a large share of the work (with a
/// 5×5 kernel on 2 threads, 18 rows for 14 at 14×14, 11 for 7 at 7×7), and 7 rows do not
/// split evenly. Measured on 2 threads, Lite0 at batch 1, the 7×7 blocks took 0.66 of their
/// time on one thread split by rows, 0.52 in pieces; the 14×14 ones 0.58 and 0.52.
const PIECES_UP_TO: usize = 14;

/// EfficientNet-Lite0 with folded weights, ready for inference.
pub struct Lite0 {
    stem: Spatial<Weights>,
    blocks: Vec<Block>,
    head: Pointwise,
    classifier: Pointwise,
    /// The classifier cut by classes, for fewer images than threads (see
    /// [`Lite0::classify`]).
    classifier_pieces: OnePerThread<Pointwise>,
    precision: Precision,
}

/// An NHWC activation and its spatial size.
struct Activations {
    data: Vec<f32>,
    height: usize,
    width: usize,
}

impl Lite0 {
    /// The model with the weights compiled into the binary, in `precision` (see
    /// [`Precision::resolve`]).
    pub fn bundled(precision: Precision) -> Result<Self> {
        let vb = VarBuilder::from_slice_safetensors(BUNDLED_WEIGHTS, DType::F32, &Device::Cpu)?;
        Self::new(vb, &Lite0Config::imagenet(), precision.resolve()?)
    }

    /// Builds the model from efficientnet_pytorch key names (`_conv_stem`, `_blocks.N...`).
    /// `precision` must be resolved: bf16 or f32.
    pub fn new(vb: VarBuilder, config: &Lite0Config, precision: Precision) -> Result<Self> {
        if (config.head_channels, config.classes) != (HEAD_CHANNELS, CLASSES) {
            return Err(Error::Model(format!(
                "this Lite0 runs {HEAD_CHANNELS} head channels and {CLASSES} classes"
            )));
        }
        let stem_shape = ConvShape {
            inputs: 3,
            outputs: config.stem_channels,
            kernel: 3,
            stride: 2,
            depthwise: false,
        };
        let stem = load_spatial(&vb, "_conv_stem", "_bn0", stem_shape)?;
        let stem = Spatial {
            w: Weights::new(stem.w, 3 * 3 * 3, config.stem_channels, precision),
            bias: stem.bias,
            kernel: stem.kernel,
            stride: stem.stride,
        };
        let mut blocks = Vec::new();
        for stage in &config.stages {
            for j in 0..stage.repeats {
                let block_vb = vb.pp(format!("_blocks.{}", blocks.len()));
                blocks.push(Block::load(&block_vb, stage, j == 0, precision)?);
            }
        }
        let last = config
            .stages
            .last()
            .map_or(config.stem_channels, |s| s.output_channels);
        let head_shape = (last, HEAD_CHANNELS);
        let head = load_pointwise(&vb, "_conv_head", "_bn1", head_shape, precision)?;
        let fc_w = to_vec(&vb.get((CLASSES, HEAD_CHANNELS), "_fc.weight")?)?;
        let fc_w = transpose(&fc_w, CLASSES, HEAD_CHANNELS);
        let classifier = Pointwise {
            w: Weights::new(fc_w, HEAD_CHANNELS, CLASSES, precision),
            bias: to_vec(&vb.get(CLASSES, "_fc.bias")?)?,
        };
        Ok(Lite0 {
            stem,
            blocks,
            head,
            classifier,
            classifier_pieces: OnePerThread::default(),
            precision,
        })
    }

    /// Runs the network on NCHW data; returns pooled features `[n, 1280]` and logits `[n, 1000]`.
    ///
    /// With as many images as threads or more, each thread runs whole images, one at a time:
    /// no layer waits for the others, and each thread's activations stay in its own cache
    /// (measured on 2 threads, batch 16: 273 img/s in bf16 against 242 splitting each layer,
    /// 172 against 154 in f32). A single image is split layer by layer over the threads.
    ///
    /// The classifier runs once on the whole batch: its weights (2.5 MB) are then read once,
    /// not once per image (measured: 158 µs of an image's 6.1 ms·core on its own).
    pub fn forward_slices(&self, input: &[f32], batch: usize) -> (Vec<f32>, Vec<f32>) {
        let per_image = 3 * INPUT_SIZE * INPUT_SIZE;
        let pooled: Vec<Vec<f32>> = match batch >= rayon::current_num_threads() {
            true => input
                .par_chunks(per_image)
                .with_max_len(1)
                .map(|image| kernels::on_this_thread(|| self.features(image, 1)))
                .collect(),
            false => input
                .chunks(SLICE * per_image)
                .map(|slice| self.features(slice, slice.len() / per_image))
                .collect(),
        };
        let pooled = pooled.concat();
        let logits = self.classify(&pooled, batch);
        debug_assert_eq!(logits.len(), batch * CLASSES);
        (pooled, logits)
    }

    /// The logits of `batch` pooled features. With fewer images than threads, the threads
    /// share out the classes: split by images, one thread would read all of the weights (5 MB
    /// in f32, from memory rather than cache: 270 µs an image on one thread) while the others
    /// wait, and fall asleep.
    fn classify(&self, pooled: &[f32], batch: usize) -> Vec<f32> {
        let threads = kernels::threads();
        if batch >= threads {
            return self
                .classifier
                .forward(pooled, batch, Activation::None, None);
        }
        // No piece may be empty: a piece of no columns would take its matrix for one of no
        // inputs.
        let count = threads.min(CLASSES.div_ceil(16));
        let pieces = self
            .classifier_pieces
            .get(count, || self.classifier.by_columns(count));
        let views: Vec<_> = pieces.iter().map(Pointwise::weights).collect();
        kernels::dense_in_pieces(pooled, batch, &views, Activation::None)
    }

    /// The stem's output, for a first block that has an expansion.
    fn stem_alone(&self, nhwc: &[f32], g: &ConvGeometry) -> Activations {
        let stem = &self.stem;
        Activations {
            data: kernels::conv2d(nhwc, g, stem.w.matrix(), &stem.bias, Activation::Relu6),
            height: g.out_height,
            width: g.out_width,
        }
    }

    /// The pooled features (`[batch, HEAD_CHANNELS]`) of NCHW images.
    fn features(&self, input: &[f32], batch: usize) -> Vec<f32> {
        let nhwc = kernels::nchw_to_nhwc(input, batch, 3, INPUT_SIZE, INPUT_SIZE);
        let g = ConvGeometry::same(
            batch,
            INPUT_SIZE,
            INPUT_SIZE,
            3,
            self.stem.kernel,
            self.stem.stride,
        );
        // A first block without expansion takes the stem as its expansion (see
        // `kernels::Expansion::Conv`): measured on one thread, 846 µs of an image's 6.1 ms went
        // to the stem and that block when each wrote its whole output.
        let (mut x, blocks) = match self.blocks.split_first() {
            Some((first, rest)) if first.expand.is_none() && !first.skip => {
                (first.forward_from_stem(&nhwc, &g, &self.stem), rest)
            }
            _ => (self.stem_alone(&nhwc, &g), self.blocks.as_slice()),
        };
        kernels::give_back(nhwc);
        for block in blocks {
            let next = block.forward(&x, batch);
            kernels::give_back(std::mem::replace(&mut x, next).data);
        }
        let rows = batch * x.height * x.width;
        let head = self.head.forward(&x.data, rows, Activation::Relu6, None);
        let pooled = kernels::global_average(&head, batch, HEAD_CHANNELS);
        kernels::give_back(head);
        kernels::give_back(x.data);
        pooled
    }
}

impl Block {
    /// One block of `stage` (`vb` is `_blocks.N`); the stage's first block changes stride
    /// and width.
    fn load(
        vb: &VarBuilder,
        stage: &MBConvConfig,
        first: bool,
        precision: Precision,
    ) -> Result<Self> {
        let inputs = if first {
            stage.input_channels
        } else {
            stage.output_channels
        };
        let hidden = inputs * stage.expand_ratio;
        let stride = if first { stage.stride } else { 1 };
        let expand = match stage.expand_ratio {
            1 => None,
            _ => Some(load_pointwise(
                vb,
                "_expand_conv",
                "_bn0",
                (inputs, hidden),
                precision,
            )?),
        };
        let depthwise_shape = ConvShape {
            inputs: hidden,
            outputs: hidden,
            kernel: stage.kernel,
            stride,
            depthwise: true,
        };
        let depthwise = load_spatial(vb, "_depthwise_conv", "_bn1", depthwise_shape)?;
        let project_shape = (hidden, stage.output_channels);
        // The block without expansion (the first, at 112×112) projects in f32 whatever the
        // model's precision: its rounding errors pass through every later layer, and on an
        // image of one flat colour, where every pixel errs alike, the final pooling does not
        // average them out. Measured on a flat red image: cosine to f32 0.983 with it in
        // bf16, 0.9995 in f32 (OpenVINO's bf16: 0.888), at no measurable cost in speed.
        let project_precision = match stage.expand_ratio {
            1 => Precision::F32,
            _ => precision,
        };
        let project = load_pointwise(
            vb,
            "_project_conv",
            "_bn2",
            project_shape,
            project_precision,
        )?;
        Ok(Block {
            expand,
            depthwise,
            project,
            skip: stride == 1 && inputs == stage.output_channels,
            pieces: OnePerThread::default(),
        })
    }

    /// `count` pieces of about as many expanded channels each, in whole registers of 16.
    fn cut(&self, expand: &Pointwise, count: usize) -> Vec<Piece> {
        let dw = &self.depthwise;
        let hidden = dw.bias.len();
        let inputs = expand.w.matrix().inputs(hidden);
        let outputs = self.project.bias.len();
        let edge = |i: usize| piece_edge(i, count, hidden.div_ceil(16), hidden);
        let channels: Vec<_> = (0..count).map(|i| edge(i)..edge(i + 1)).collect();
        let expand_w = expand
            .w
            .parts(hidden, channels.iter().map(|c| (0..inputs, c.clone())));
        let project_w =
            (self.project.w).parts(outputs, channels.iter().map(|c| (c.clone(), 0..outputs)));
        let weights = expand_w.into_iter().zip(project_w);
        weights
            .zip(channels)
            .map(|((expand_w, project_w), channels)| {
                let taps = dw.w.chunks_exact(hidden);
                let depthwise_w = taps.flat_map(|tap| &tap[channels.clone()]).copied();
                Piece {
                    expand: Pointwise {
                        w: expand_w,
                        bias: expand.bias[channels.clone()].to_vec(),
                    },
                    depthwise: Spatial {
                        w: depthwise_w.collect(),
                        bias: dw.bias[channels].to_vec(),
                        kernel: dw.kernel,
                        stride: dw.stride,
                    },
                    project: project_w,
                }
            })
            .collect()
    }

    /// The block on fewer images than threads, each image cut into one piece per thread by
    /// expanded channels (see [`PIECES_UP_TO`]).
    fn forward_in_pieces(&self, x: &Activations, g: &ConvGeometry, expand: &Pointwise) -> Vec<f32> {
        let threads = kernels::threads().min(g.channels.div_ceil(16));
        let pieces = self.pieces.get(threads, || self.cut(expand, threads));
        let views: Vec<kernels::BlockPiece> = pieces
            .iter()
            .map(|piece| kernels::BlockPiece {
                expand: piece.expand.weights(),
                depthwise: kernels::Depthwise {
                    w: &piece.depthwise.w,
                    bias: &piece.depthwise.bias,
                },
                project: piece.project.matrix(),
            })
            .collect();
        let bias = &self.project.bias;
        kernels::inverted_residual_in_pieces(&x.data, g, &views, bias, self.skip)
    }

    /// A block without expansion (nor skip), run on the stem's input `nhwc` with the stem
    /// (of geometry `stem_g`) as its expansion, band by band.
    fn forward_from_stem(
        &self,
        nhwc: &[f32],
        stem_g: &ConvGeometry,
        stem: &Spatial<Weights>,
    ) -> Activations {
        let dw = &self.depthwise;
        let (height, width) = (stem_g.out_height, stem_g.out_width);
        let channels = dw.bias.len();
        let g = ConvGeometry::same(stem_g.batch, height, width, channels, dw.kernel, dw.stride);
        let expand = kernels::Expansion::Conv {
            w: stem.w.matrix(),
            bias: &stem.bias,
            conv: *stem_g,
        };
        let depthwise = kernels::Depthwise {
            w: &dw.w,
            bias: &dw.bias,
        };
        let project = self.project.weights();
        Activations {
            data: kernels::inverted_residual(nhwc, &g, expand, depthwise, project, false),
            height: g.out_height,
            width: g.out_width,
        }
    }

    fn forward(&self, x: &Activations, batch: usize) -> Activations {
        let dw = &self.depthwise;
        let channels = dw.bias.len();
        let g = ConvGeometry::same(batch, x.height, x.width, channels, dw.kernel, dw.stride);
        let data = match &self.expand {
            Some(expand) if batch < kernels::threads() && x.height <= PIECES_UP_TO => {
                self.forward_in_pieces(x, &g, expand)
            }
            // Expansion, depthwise and projection fused, band by band (see the kernel).
            Some(expand) => kernels::inverted_residual(
                &x.data,
                &g,
                kernels::Expansion::Pointwise(expand.weights()),
                kernels::Depthwise {
                    w: &dw.w,
                    bias: &dw.bias,
                },
                self.project.weights(),
                self.skip,
            ),
            // The first block has no expansion: depthwise, then projection.
            None => {
                let spread = kernels::depthwise(&x.data, &g, &dw.w, &dw.bias, Activation::Relu6);
                let out_rows = batch * g.out_height * g.out_width;
                let residual = self.skip.then_some(x.data.as_slice());
                let projected = self
                    .project
                    .forward(&spread, out_rows, Activation::None, residual);
                kernels::give_back(spread);
                projected
            }
        };
        Activations {
            data,
            height: g.out_height,
            width: g.out_width,
        }
    }
}

impl Backbone for Lite0 {
    fn info(&self) -> &ModelInfo {
        &INFO
    }

    fn precision(&self) -> Precision {
        self.precision
    }

    fn forward(&self, batch: &Tensor) -> Result<(Tensor, Option<Tensor>)> {
        let (n, c, h, w) = batch.dims4()?;
        if (c, h, w) != (3, INPUT_SIZE, INPUT_SIZE) {
            return Err(Error::Model(format!(
                "EfficientNet-Lite0 takes [n, 3, 224, 224], got [{n}, {c}, {h}, {w}]"
            )));
        }
        let (pooled, logits) = with_values(batch, |input| self.forward_slices(input, n))?;
        let pooled = Tensor::from_vec(pooled, (n, HEAD_CHANNELS), &Device::Cpu)?;
        let logits = Tensor::from_vec(logits, (n, CLASSES), &Device::Cpu)?;
        Ok((pooled, Some(logits)))
    }
}

/// BatchNorm as a per-channel scale and shift.
fn load_batch_norm(vb: &VarBuilder, name: &str, channels: usize) -> Result<(Vec<f32>, Vec<f32>)> {
    let vb = vb.pp(name);
    let gamma = to_vec(&vb.get(channels, "weight")?)?;
    let beta = to_vec(&vb.get(channels, "bias")?)?;
    let mean = to_vec(&vb.get(channels, "running_mean")?)?;
    let var = to_vec(&vb.get(channels, "running_var")?)?;
    let scale: Vec<f32> = gamma
        .iter()
        .zip(&var)
        .map(|(g, v)| (*g as f64 / (*v as f64 + BN_EPS).sqrt()) as f32)
        .collect();
    let shift = beta
        .iter()
        .zip(&mean)
        .zip(&scale)
        .map(|((b, m), s)| b - m * s)
        .collect();
    Ok((scale, shift))
}

/// A 1×1 convolution `[out, in, 1, 1]` with BatchNorm folded, laid out `[in, out]`.
fn load_pointwise(
    vb: &VarBuilder,
    conv: &str,
    bn: &str,
    (inputs, outputs): (usize, usize),
    precision: Precision,
) -> Result<Pointwise> {
    let w = to_vec(&vb.get((outputs, inputs, 1, 1), &format!("{conv}.weight"))?)?;
    let (scale, shift) = load_batch_norm(vb, bn, outputs)?;
    let mut w = transpose(&w, outputs, inputs);
    for row in w.chunks_exact_mut(outputs) {
        row.iter_mut().zip(&scale).for_each(|(v, s)| *v *= s);
    }
    Ok(Pointwise {
        w: Weights::new(w, inputs, outputs, precision),
        bias: shift,
    })
}

/// The shape of a k×k convolution's weights.
#[derive(Debug, Clone, Copy)]
struct ConvShape {
    inputs: usize,
    outputs: usize,
    kernel: usize,
    stride: usize,
    /// One filter per channel (`inputs == outputs`).
    depthwise: bool,
}

/// A k×k convolution with BatchNorm folded: torch's `[out, in, k, k]` becomes
/// `[k, k, in, out]`, or `[k, k, channels]` for a depthwise `[channels, 1, k, k]`.
fn load_spatial(vb: &VarBuilder, conv: &str, bn: &str, shape: ConvShape) -> Result<Spatial> {
    let ConvShape {
        inputs,
        outputs,
        kernel,
        stride,
        depthwise,
    } = shape;
    let per_group = if depthwise { 1 } else { inputs };
    let torch = to_vec(&vb.get(
        (outputs, per_group, kernel, kernel),
        &format!("{conv}.weight"),
    )?)?;
    let (scale, shift) = load_batch_norm(vb, bn, outputs)?;
    let mut w = vec![0.0f32; torch.len()];
    for o in 0..outputs {
        for i in 0..per_group {
            for tap in 0..kernel * kernel {
                w[(tap * per_group + i) * outputs + o] =
                    torch[(o * per_group + i) * kernel * kernel + tap] * scale[o];
            }
        }
    }
    Ok(Spatial {
        w,
        bias: shift,
        kernel,
        stride,
    })
}

/// Row-major `[rows, cols]` to `[cols, rows]`.
fn transpose(x: &[f32], rows: usize, cols: usize) -> Vec<f32> {
    let mut out = vec![0.0f32; x.len()];
    for r in 0..rows {
        for c in 0..cols {
            out[c * rows + r] = x[r * cols + c];
        }
    }
    out
}
