//! Depthwise convolution over NHWC, fused with bias and activation. It runs straight over
//! channel vectors, with TF "SAME" padding (asymmetric for stride 2) handled by bounds, not by
//! a padded copy, one output row a task. The row kernel comes in one variant per instruction
//! set ([`DepthwiseVariant`]): the AVX-512 one slides eight pixels along a row (four at its
//! end), loading each input once for all of them, its loops unrolled in full (`sliding`, which
//! also has the variant that stores its output rounded to bf16 for a bf16 projection); the AVX2
//! and portable ones take four neighbouring pixels at once where their windows are inside the
//! image. [`depthwise_on`] runs one chosen variant, for the tests.

use rayon::prelude::*;

use super::threads::{min_tasks, output_buffer};
use super::ConvGeometry;
use crate::model::tile::Activation;

#[cfg(target_arch = "x86_64")]
pub(super) mod sliding;

/// The weights of one depthwise convolution: `w` is `[kernel, kernel, channels]` and `bias`
/// `[channels]`. They stay f32: the depthwise kernel reads each weight for a handful of
/// products only, so packing it to bf16 would save nothing.
#[derive(Clone, Copy)]
pub struct Depthwise<'a> {
    pub w: &'a [f32],
    pub bias: &'a [f32],
}

/// Depthwise convolution over NHWC, fused with bias and activation.
///
/// `w` is `[kernel, kernel, channels]` (tap-major, channel-last) and `bias` is `[channels]`.
/// Returns `[batch, out_height, out_width, channels]`.
pub fn depthwise(
    x: &[f32],
    g: &ConvGeometry,
    w: &[f32],
    bias: &[f32],
    act: Activation,
) -> Vec<f32> {
    depthwise_with(depthwise_row_kernel(), x, g, (w, bias), act)
}

/// [`depthwise`] on `row_kernel`, which must be one this CPU runs.
fn depthwise_with(
    row_kernel: DepthwiseRow,
    x: &[f32],
    g: &ConvGeometry,
    (w, bias): (&[f32], &[f32]),
    act: Activation,
) -> Vec<f32> {
    let c = g.channels;
    assert!(
        g.kernel * g.kernel <= MAX_TAPS,
        "depthwise: kernel too large"
    );
    assert_eq!(x.len(), g.input_len(), "depthwise: input shape");
    assert_eq!(w.len(), g.kernel * g.kernel * c, "depthwise: weight shape");
    assert_eq!(bias.len(), c, "depthwise: bias shape");
    let row_len = g.out_width * c;
    let mut out = output_buffer(g.batch * g.out_height * row_len);
    out.par_chunks_mut(row_len.max(1))
        .with_min_len(min_tasks())
        .enumerate()
        .for_each(|(row, out_row)| {
            // SAFETY: the callers pass only a variant whose CPU features were detected.
            unsafe { row_kernel(x, g, w, bias, act, row, out_row) }
        });
    out
}

/// The variants of the depthwise row kernel, one per instruction set. [`depthwise`] runs the
/// widest this CPU has; [`depthwise_on`] runs the one asked for, so that tests check the
/// narrower ones too, which a CPU with AVX-512 never picks.
#[doc(hidden)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DepthwiseVariant {
    Avx512,
    Avx2,
    Portable,
}

impl DepthwiseVariant {
    /// Whether this CPU runs the variant.
    pub fn runs_here(self) -> bool {
        self.row_kernel().is_some()
    }

    /// The variant's row kernel, if this CPU runs it.
    fn row_kernel(self) -> Option<DepthwiseRow> {
        #[cfg(target_arch = "x86_64")]
        let detected = match self {
            DepthwiseVariant::Avx512 => std::arch::is_x86_feature_detected!("avx512f")
                .then_some(depthwise_row_avx512 as DepthwiseRow),
            DepthwiseVariant::Avx2 => (std::arch::is_x86_feature_detected!("avx2")
                && std::arch::is_x86_feature_detected!("fma"))
            .then_some(depthwise_row_avx2 as DepthwiseRow),
            DepthwiseVariant::Portable => Some(depthwise_row_portable as DepthwiseRow),
        };
        #[cfg(not(target_arch = "x86_64"))]
        let detected = match self {
            DepthwiseVariant::Portable => Some(depthwise_row_portable as DepthwiseRow),
            _ => None,
        };
        detected
    }
}

/// [`depthwise`] on the given variant of its row kernel, or `None` where this CPU does not run
/// that variant. For tests.
#[doc(hidden)]
pub fn depthwise_on(
    variant: DepthwiseVariant,
    x: &[f32],
    g: &ConvGeometry,
    (w, bias): (&[f32], &[f32]),
    act: Activation,
) -> Option<Vec<f32>> {
    let row_kernel = variant.row_kernel()?;
    Some(depthwise_with(row_kernel, x, g, (w, bias), act))
}

/// A depthwise row kernel: output row `row` (counted across the batch) of [`depthwise`].
///
/// # Safety
/// The CPU has the features the variant was compiled for.
type DepthwiseRow = unsafe fn(&[f32], &ConvGeometry, &[f32], &[f32], Activation, usize, &mut [f32]);

/// The widest SIMD variant of the row kernel that this CPU runs.
pub(super) fn depthwise_row_kernel() -> DepthwiseRow {
    [DepthwiseVariant::Avx512, DepthwiseVariant::Avx2]
        .into_iter()
        .find_map(DepthwiseVariant::row_kernel)
        .unwrap_or(depthwise_row_portable)
}

/// # Safety
/// The CPU has AVX-512F and FMA.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,fma")]
unsafe fn depthwise_row_avx512(
    x: &[f32],
    g: &ConvGeometry,
    w: &[f32],
    bias: &[f32],
    act: Activation,
    row: usize,
    out: &mut [f32],
) {
    depthwise_row::<true, true>(x, g, w, bias, act, row, out)
}

/// # Safety
/// The CPU has AVX2 and FMA.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
unsafe fn depthwise_row_avx2(
    x: &[f32],
    g: &ConvGeometry,
    w: &[f32],
    bias: &[f32],
    act: Activation,
    row: usize,
    out: &mut [f32],
) {
    depthwise_row::<true, false>(x, g, w, bias, act, row, out)
}

/// # Safety
/// None: `unsafe` only to share the type of the SIMD variants ([`DepthwiseRow`]).
unsafe fn depthwise_row_portable(
    x: &[f32],
    g: &ConvGeometry,
    w: &[f32],
    bias: &[f32],
    act: Activation,
    row: usize,
    out: &mut [f32],
) {
    depthwise_row::<false, false>(x, g, w, bias, act, row, out)
}

/// One output row (all columns, all channels). Inlined into each SIMD variant so that the
/// channel loops are vectorised for that instruction set. `FUSED` uses fused multiply-add, which
/// only the variants compiled with FMA may ask for (elsewhere it is a slow library call).
///
/// Each pixel's channels go in blocks of 64, then 16, then one: a block's sums stay in
/// registers across all kernel taps and are stored once, instead of being loaded and stored
/// again for every tap.
///
/// `SLIDING` (only in the AVX-512 variant) runs the common kernels (3×3 and 5×5, stride 1
/// or 2, channels in sixteens) on [`sliding::row`], which loads each input once per kernel
/// row for eight pixels.
#[inline(always)]
fn depthwise_row<const FUSED: bool, const SLIDING: bool>(
    x: &[f32],
    g: &ConvGeometry,
    w: &[f32],
    bias: &[f32],
    act: Activation,
    row: usize,
    out: &mut [f32],
) {
    let c = g.channels;
    let (image, oy) = (row / g.out_height, row % g.out_height);
    let image_data = &x[image * g.height * g.width * c..][..g.height * g.width * c];
    let mut taps = [(0usize, 0usize); MAX_TAPS];
    // Taps of a pixel whose kernel is inside the image horizontally, from its first input
    // column: the same for every such pixel of the row, so they are listed once.
    let mut inner = [(0usize, 0usize); MAX_TAPS];
    let inner_count = inner_taps(g, oy, &mut inner);
    let inner = &inner[..inner_count];
    #[cfg(target_arch = "x86_64")]
    if SLIDING && sliding::runs(g) {
        // SAFETY: `SLIDING` is set only in the variant compiled for AVX-512, which runs only
        // where it was detected; `runs` checked the shape the kernel takes.
        unsafe { sliding::row(image_data, g, w, bias, act, inner, out) };
        return;
    }
    let mut ox = 0;
    while ox < g.out_width {
        // Where QUAD pixels in a row all have every horizontal tap inside the image, they
        // share one list of taps and each weight load serves all of them.
        if ox + QUAD <= g.out_width && columns_inside(g, ox, QUAD) {
            let image_data = &image_data[(ox * g.stride - g.pad_left) * c..];
            let pixels = &mut out[ox * c..(ox + QUAD) * c];
            quad_all_channels::<FUSED>(image_data, g, (w, bias), act, inner, pixels);
            ox += QUAD;
            continue;
        }
        let count = valid_taps(g, oy, ox, &mut taps);
        let taps = &taps[..count];
        let px = &mut out[ox * c..(ox + 1) * c];
        let mut start = 0;
        while start + 64 <= c {
            depthwise_block::<64, FUSED>(image_data, w, bias, act, taps, start, px);
            start += 64;
        }
        while start + 16 <= c {
            depthwise_block::<16, FUSED>(image_data, w, bias, act, taps, start, px);
            start += 16;
        }
        while start < c {
            depthwise_block::<1, FUSED>(image_data, w, bias, act, taps, start, px);
            start += 1;
        }
        ox += 1;
    }
}

/// [`depthwise_quad`] over every channel, in blocks of 64, 16, then one.
#[inline(always)]
fn quad_all_channels<const FUSED: bool>(
    image: &[f32],
    g: &ConvGeometry,
    (w, bias): (&[f32], &[f32]),
    act: Activation,
    taps: &[(usize, usize)],
    pixels: &mut [f32],
) {
    let (c, step) = (g.channels, g.stride * g.channels);
    let mut start = 0;
    while start + 64 <= c {
        depthwise_quad::<64, FUSED>(image, w, bias, act, taps, step, start, pixels);
        start += 64;
    }
    while start + 16 <= c {
        depthwise_quad::<16, FUSED>(image, w, bias, act, taps, step, start, pixels);
        start += 16;
    }
    while start < c {
        depthwise_quad::<1, FUSED>(image, w, bias, act, taps, step, start, pixels);
        start += 1;
    }
}

/// Output pixels a row computes together where it can; see [`depthwise_quad`].
const QUAD: usize = 4;

/// Whether output columns `ox..ox + count` read no horizontal padding.
#[inline(always)]
fn columns_inside(g: &ConvGeometry, ox: usize, count: usize) -> bool {
    let first = ox * g.stride;
    let last = (ox + count - 1) * g.stride + g.kernel - 1;
    first >= g.pad_left && last - g.pad_left < g.width
}

/// Like [`depthwise_block`] for [`QUAD`] neighbouring pixels at once, whose inputs lie `step`
/// values apart: the four sets of sums stay in registers, and each weight is loaded once.
#[inline(always)]
#[allow(clippy::too_many_arguments)]
fn depthwise_quad<const B: usize, const FUSED: bool>(
    image: &[f32],
    w: &[f32],
    bias: &[f32],
    act: Activation,
    taps: &[(usize, usize)],
    step: usize,
    start: usize,
    pixels: &mut [f32],
) {
    let c = pixels.len() / QUAD;
    // Four named sets of sums rather than an array of them: indexed by a loop variable, the
    // compiler would keep them in memory instead of registers.
    let mut s0 = [0.0f32; B];
    s0.copy_from_slice(&bias[start..start + B]);
    let (mut s1, mut s2, mut s3) = (s0, s0, s0);
    let fma = |s: &mut [f32; B], input: &[f32], weights: &[f32; B]| {
        for ((s, i), t) in s.iter_mut().zip(input).zip(weights) {
            *s = if FUSED { i.mul_add(*t, *s) } else { *s + i * t };
        }
    };
    for &(input_at, weight_at) in taps {
        // A local copy, so that each weight is loaded once for all four pixels.
        let mut weights = [0.0f32; B];
        weights.copy_from_slice(&w[weight_at + start..][..B]);
        let at = input_at + start;
        fma(&mut s0, &image[at..][..B], &weights);
        fma(&mut s1, &image[at + step..][..B], &weights);
        fma(&mut s2, &image[at + 2 * step..][..B], &weights);
        fma(&mut s3, &image[at + 3 * step..][..B], &weights);
    }
    for (q, sums) in [s0, s1, s2, s3].iter().enumerate() {
        for (o, s) in pixels[q * c + start..][..B].iter_mut().zip(sums) {
            *o = act.apply(*s);
        }
    }
}

/// The most kernel taps a depthwise kernel may have (7×7).
pub(super) const MAX_TAPS: usize = 49;

/// For output pixel (oy, ox): the offsets into the image and into the weights of every tap
/// that falls inside the image (padding taps are left out). Returns how many there are.
#[inline(always)]
fn valid_taps(
    g: &ConvGeometry,
    oy: usize,
    ox: usize,
    taps: &mut [(usize, usize); MAX_TAPS],
) -> usize {
    let mut count = 0;
    for ky in 0..g.kernel {
        let Some(iy) = ConvGeometry::source(oy, ky, g.stride, g.pad_top, g.height) else {
            continue;
        };
        for kx in 0..g.kernel {
            let Some(ix) = ConvGeometry::source(ox, kx, g.stride, g.pad_left, g.width) else {
                continue;
            };
            taps[count] = (
                (iy * g.width + ix) * g.channels,
                (ky * g.kernel + kx) * g.channels,
            );
            count += 1;
        }
    }
    count
}

/// For output row `oy`: the taps inside the image vertically, every horizontal one, as offsets
/// from the pixel's first input column (see [`valid_taps`]). Returns how many there are.
#[inline(always)]
pub(super) fn inner_taps(
    g: &ConvGeometry,
    oy: usize,
    taps: &mut [(usize, usize); MAX_TAPS],
) -> usize {
    let mut count = 0;
    for ky in 0..g.kernel {
        let Some(iy) = ConvGeometry::source(oy, ky, g.stride, g.pad_top, g.height) else {
            continue;
        };
        for kx in 0..g.kernel {
            taps[count] = (
                (iy * g.width + kx) * g.channels,
                (ky * g.kernel + kx) * g.channels,
            );
            count += 1;
        }
    }
    count
}

/// Channels `start..start + B` of one output pixel `px`, summed over `taps` (input offset,
/// weight offset) of one image's NHWC data.
#[inline(always)]
fn depthwise_block<const B: usize, const FUSED: bool>(
    image: &[f32],
    w: &[f32],
    bias: &[f32],
    act: Activation,
    taps: &[(usize, usize)],
    start: usize,
    px: &mut [f32],
) {
    let mut sums = [0.0f32; B];
    sums.copy_from_slice(&bias[start..start + B]);
    for &(input_at, weight_at) in taps {
        let input = &image[input_at + start..][..B];
        let weights = &w[weight_at + start..][..B];
        for ((s, i), t) in sums.iter_mut().zip(input).zip(weights) {
            *s = if FUSED { i.mul_add(*t, *s) } else { *s + i * t };
        }
    }
    for (o, s) in px[start..start + B].iter_mut().zip(sums) {
        *o = act.apply(s);
    }
}
