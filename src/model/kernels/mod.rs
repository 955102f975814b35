//! CPU convolution kernels on NHWC activations, used by the backbones.
//!
//! Candle's `conv2d` with `groups = channels` runs one convolution per channel, thousands per
//! image, and every elementwise op after a convolution is another pass over memory. These kernels
//! keep activations channel-last so that:
//! - a 1×1 convolution is a single `gemm` call over all pixels of the batch, with the folded
//!   BatchNorm bias, the residual and ReLU6 applied while the output is still in cache;
//! - a depthwise convolution runs straight over channel vectors, with TF "SAME" padding
//!   (asymmetric for stride 2) handled by bounds, not by a padded copy;
//! - a k×k dense convolution is im2col followed by the same `gemm` path.
//!
//! Every kernel runs on the current rayon pool, so the caller decides how many threads it gets.
//!
//! The kernels live in one module per family, and are named from here (`kernels::dense`,
//! `kernels::inverted_residual`, …):
//! - `dense`: 1×1 convolutions and fully connected layers as matrix products over bands of
//!   rows, on weights packed at load ([`Matrix`], [`Weights`]), finished in registers or in
//!   cache; also cut by output columns ([`dense_in_pieces`]);
//! - `depthwise`: the depthwise convolution and its row kernels, one per instruction set;
//! - `block`: a whole inverted-residual block fused band by band ([`inverted_residual`]), or
//!   cut by channels over the threads ([`inverted_residual_in_pieces`]);
//! - `layout`: the network's input from planes to pixels, im2col convolution ([`conv2d`]),
//!   pooling;
//! - `threads`: whether a kernel may split its work over the threads ([`on_this_thread`]), and
//!   the spare output vectors given back between layers ([`give_back`]).
//!
//! What they all share is here: a convolution's shape and padding ([`ConvGeometry`]). How a
//! product ends, its [`Activation`] and the finishing of its sums, is in [`crate::model::tile`],
//! which the bf16 and packed f32 products use too, so that they need nothing from here.

mod block;
mod dense;
mod depthwise;
mod layout;
mod threads;

pub use crate::model::tile::Activation;
pub use block::{inverted_residual, inverted_residual_in_pieces, BlockPiece, Expansion};
pub use dense::{dense, dense_in_pieces, Matrix, Pointwise, Weights};
pub use depthwise::{depthwise, depthwise_on, Depthwise, DepthwiseVariant};
pub use layout::{conv2d, global_average, max_pool_2x2, nchw_to_nhwc};
pub use threads::{give_back, on_this_thread, threads};
pub(crate) use threads::{min_tasks, output_buffer};

/// Output size and leading padding of a TF "SAME" convolution along one axis.
/// The trailing padding is whatever is left; for stride 2 it is the larger one, as in TF.
pub fn same_padding(input: usize, kernel: usize, stride: usize) -> (usize, usize) {
    let output = input.div_ceil(stride);
    let total = ((output - 1) * stride + kernel).saturating_sub(input);
    (output, total / 2)
}

/// Shape and padding of one convolution over an NHWC batch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConvGeometry {
    pub batch: usize,
    pub height: usize,
    pub width: usize,
    pub channels: usize,
    pub kernel: usize,
    pub stride: usize,
    pub out_height: usize,
    pub out_width: usize,
    pub pad_top: usize,
    pub pad_left: usize,
}

impl ConvGeometry {
    /// TF "SAME" padding, as EfficientNet-Lite was trained with.
    pub fn same(
        batch: usize,
        height: usize,
        width: usize,
        channels: usize,
        kernel: usize,
        stride: usize,
    ) -> Self {
        let (out_height, pad_top) = same_padding(height, kernel, stride);
        let (out_width, pad_left) = same_padding(width, kernel, stride);
        ConvGeometry {
            batch,
            height,
            width,
            channels,
            kernel,
            stride,
            out_height,
            out_width,
            pad_top,
            pad_left,
        }
    }

    /// Symmetric zero padding of `pad` on every side, as torchvision's VGG uses.
    pub fn symmetric(
        batch: usize,
        height: usize,
        width: usize,
        channels: usize,
        kernel: usize,
        stride: usize,
        pad: usize,
    ) -> Self {
        let out = |n: usize| (n + 2 * pad - kernel) / stride + 1;
        ConvGeometry {
            batch,
            height,
            width,
            channels,
            kernel,
            stride,
            out_height: out(height),
            out_width: out(width),
            pad_top: pad,
            pad_left: pad,
        }
    }

    fn input_len(&self) -> usize {
        self.batch * self.height * self.width * self.channels
    }

    /// Input index along one axis for an output index and a kernel tap, if it is not padding.
    #[inline(always)]
    fn source(out: usize, tap: usize, stride: usize, pad: usize, size: usize) -> Option<usize> {
        (out * stride + tap).checked_sub(pad).filter(|&i| i < size)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_padding_matches_tensorflow() {
        // 224 → 112 with a 3×3 stride-2 kernel pads 0 before and 1 after.
        assert_eq!(same_padding(224, 3, 2), (112, 0));
        // 5×5 stride 2 on 56: total pad 3, 1 before and 2 after.
        assert_eq!(same_padding(56, 5, 2), (28, 1));
        // Stride 1 pads symmetrically.
        assert_eq!(same_padding(14, 5, 1), (14, 2));
        assert_eq!(same_padding(7, 3, 1), (7, 1));
    }
}
