//! The depthwise kernel in AVX-512 intrinsics, eight neighbouring pixels at a time (four at
//! a row's end), sliding along the row: for each kernel row, each input pixel the group reads
//! is loaded once and multiplied into every pixel whose window holds it (10 loads for 24
//! multiply-adds with a 3×3 kernel at stride 1, where [`super::depthwise_quad`] loads 12 and 3
//! weights for 12), and each weight once. Eight pixels measured faster than four, whose
//! loads kept the multiply-adds waiting. Columns outside the image are skipped, so pixels at
//! the edges take the same path.

use std::arch::x86_64::*;

use crate::model::kernels::ConvGeometry;
use crate::model::tile::Activation;

/// `$body` once for each literal, with `$name` a constant equal to it: a loop unrolled in full,
/// so that every register the body names is known when compiling. Left to the optimiser, the
/// 19 columns of the 5×5 stride-2 kernel's edge groups stayed a loop, its weights went to the
/// stack, and that layer ran at a third of the speed of the others.
macro_rules! unrolled {
    ($name:ident in [$($n:literal),*] $body:block) => {
        $( { const $name: usize = $n; $body } )*
    };
}

/// Pixels a group computes, and the smaller group that finishes a row when that is
/// enough: a whole group there would compute pixels past the row's end for nothing.
const WIDE: usize = 8;
const NARROW: usize = 4;
// The unrolled loops in `pixels_at` list 8 pixels and the 19 columns they reach at most
// (a 5×5 kernel at stride 2).
const _: () = assert!(NARROW <= WIDE && WIDE <= 8 && (WIDE - 1) * 2 + 5 <= 19);

/// Whether the sliding kernel takes this shape.
pub(in crate::model::kernels) fn runs(g: &ConvGeometry) -> bool {
    g.channels.is_multiple_of(16)
        && matches!((g.kernel, g.stride), (3, 1) | (3, 2) | (5, 1) | (5, 2))
}

/// One output row of one image (`image`, NHWC); `taps` are the kernel rows inside the
/// image, every column, as [`super::inner_taps`] lists them.
///
/// # Safety
/// AVX-512F must be present, and [`runs`] true for `g`.
#[target_feature(enable = "avx512f")]
pub(super) unsafe fn row(
    image: &[f32],
    g: &ConvGeometry,
    w: &[f32],
    bias: &[f32],
    act: Activation,
    taps: &[(usize, usize)],
    out: &mut [f32],
) {
    assert!(out.len() == g.out_width * g.channels);
    let out = out.as_mut_ptr() as *mut u8;
    // SAFETY: compiled for AVX-512F, which the caller vouched for, as `runs`; `out` holds
    // the row (asserted).
    unsafe { row_here::<false>(image, g, (w, bias), act, taps, out) };
}

/// [`row`] with the output rounded to bf16 (channels in order, two to a `u32`), as the bf16
/// products read their activations: the projection that follows needs no rounding pass,
/// and half as many bytes go through the cache.
///
/// # Safety
/// AVX-512F and AVX512_BF16 must be present, and [`runs`] true for `g`.
#[target_feature(enable = "avx512f,avx512bf16")]
pub(in crate::model::kernels) unsafe fn row_bf16(
    image: &[f32],
    g: &ConvGeometry,
    (w, bias): (&[f32], &[f32]),
    act: Activation,
    taps: &[(usize, usize)],
    out: &mut [u32],
) {
    assert!(2 * out.len() == g.out_width * g.channels);
    let out = out.as_mut_ptr() as *mut u8;
    // SAFETY: compiled for AVX-512F and AVX512_BF16, which the caller vouched for, as
    // `runs`; `out` holds the row (asserted).
    unsafe { row_here::<true>(image, g, (w, bias), act, taps, out) };
}

/// [`row`] or [`row_bf16`] (`BF16`), inlined into each so that it is compiled for its
/// CPU features; `out` is the row's first byte.
///
/// # Safety
/// Only from code compiled for AVX-512F (and AVX512_BF16 with `BF16`), with [`runs`] true
/// for `g`; `out` holds the row: `out_width × channels` values, f32 or (`BF16`) bf16.
#[inline(always)]
unsafe fn row_here<const BF16: bool>(
    image: &[f32],
    g: &ConvGeometry,
    (w, bias): (&[f32], &[f32]),
    act: Activation,
    taps: &[(usize, usize)],
    out: *mut u8,
) {
    let row_len = g.width * g.channels;
    // Every tap row and weight that the kernel reads, whole: the loads below index
    // inside them (columns are checked against the width one by one).
    let rows = || taps.iter().step_by(g.kernel);
    assert!(taps.len().is_multiple_of(g.kernel));
    assert!(rows().all(|&(at, _)| at.is_multiple_of(row_len) && at + row_len <= image.len()));
    assert!(taps.iter().all(|&(_, at)| at + g.channels <= w.len()));
    assert!(bias.len() == g.channels);
    let layer = Layer {
        image: image.as_ptr(),
        w: w.as_ptr(),
        bias: bias.as_ptr(),
        act,
        c: g.channels,
        width: g.width,
        kernel: g.kernel,
        stride: g.stride,
    };
    let mut ox = 0;
    while ox < g.out_width {
        let first = (ox * g.stride) as isize - g.pad_left as isize;
        let count = (g.out_width - ox).min(WIDE);
        // SAFETY: pixel `ox < out_width` is inside the row the caller vouched for, and so
        // are the `count` from it; the taps, weights and bias were checked above.
        unsafe {
            let pixels = out.add(ox * g.channels * if BF16 { 2 } else { 4 });
            match count > NARROW {
                true => group::<WIDE, BF16>(&layer, taps, first, count, pixels),
                false => group::<NARROW, BF16>(&layer, taps, first, count, pixels),
            }
        }
        ox += count;
    }
}

/// What every group of a row shares.
struct Layer {
    image: *const f32,
    w: *const f32,
    bias: *const f32,
    act: Activation,
    c: usize,
    width: usize,
    kernel: usize,
    stride: usize,
}

/// `count` (at most `P`) pixels whose windows start at input column `first`, on the
/// kernel compiled for the layer's shape and for whether columns need checking.
///
/// # Safety
/// As for [`pixels_at`], but any `first` will do: the columns are checked here.
#[inline(always)]
unsafe fn group<const P: usize, const BF16: bool>(
    layer: &Layer,
    taps: &[(usize, usize)],
    first: isize,
    count: usize,
    pixels: *mut u8,
) {
    // Inside the image, the columns need no checking.
    let reach = ((P - 1) * layer.stride + layer.kernel) as isize;
    let inside = first >= 0 && first + reach <= layer.width as isize;
    // SAFETY: the caller's promise; `EDGE` is off only where every column is inside.
    unsafe {
        match (layer.kernel, layer.stride, inside) {
            (3, 1, true) => pixels_at::<3, 1, false, P, BF16>(layer, taps, first, count, pixels),
            (3, 1, false) => pixels_at::<3, 1, true, P, BF16>(layer, taps, first, count, pixels),
            (3, 2, true) => pixels_at::<3, 2, false, P, BF16>(layer, taps, first, count, pixels),
            (3, 2, false) => pixels_at::<3, 2, true, P, BF16>(layer, taps, first, count, pixels),
            (5, 1, true) => pixels_at::<5, 1, false, P, BF16>(layer, taps, first, count, pixels),
            (5, 1, false) => pixels_at::<5, 1, true, P, BF16>(layer, taps, first, count, pixels),
            (_, _, true) => pixels_at::<5, 2, false, P, BF16>(layer, taps, first, count, pixels),
            (_, _, false) => pixels_at::<5, 2, true, P, BF16>(layer, taps, first, count, pixels),
        }
    }
}

/// `count` (at most `P`) pixels whose windows start at input column `first` (negative in
/// the left padding), all channels, sixteen at a time. `EDGE` checks every column against
/// the image's width; without it, all must be inside. `BF16` rounds the outputs to bf16,
/// whose pixels `pixels` holds, else f32.
///
/// # Safety
/// Only from code compiled for AVX-512F (and AVX512_BF16 with `BF16`); the layer is
/// `K`×`K` at stride `S`, with channels in sixteens; `taps` are whole kernel rows inside
/// the image, the weights and bias hold every channel, `pixels` holds `count` pixels, and
/// without `EDGE` every column the group reaches is inside the image.
#[inline(always)]
// The unrolled comparisons are of constants, some always true (`0 >= 0 * S`).
#[allow(clippy::absurd_extreme_comparisons)]
unsafe fn pixels_at<
    const K: usize,
    const S: usize,
    const EDGE: bool,
    const P: usize,
    const BF16: bool,
>(
    layer: &Layer,
    taps: &[(usize, usize)],
    first: isize,
    count: usize,
    pixels: *mut u8,
) {
    let c = layer.c;
    // SAFETY: every load and store below is at an offset the caller vouched for: channel
    // block `start < c` of the bias, of a tap row's weights, of an input column inside the
    // image (checked with `EDGE`) and of pixel `q < count`.
    unsafe {
        for start in (0..c).step_by(16) {
            let mut sums = [_mm512_loadu_ps(layer.bias.add(start)); P];
            for tap_row in taps.chunks_exact(K) {
                let (input_at, weight_at) = tap_row[0];
                let mut weights = [_mm512_setzero_ps(); K];
                for (kx, reg) in weights.iter_mut().enumerate() {
                    *reg = _mm512_loadu_ps(layer.w.add(weight_at + kx * c + start));
                }
                // Column `COLUMN` of the group's reach, into every pixel whose window holds it.
                unrolled!(COLUMN in [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18] {
                    let column = first + COLUMN as isize;
                    let inside = !EDGE || (column >= 0 && (column as usize) < layer.width);
                    if COLUMN < (P - 1) * S + K && inside {
                        let at = input_at + column as usize * c + start;
                        let v = _mm512_loadu_ps(layer.image.add(at));
                        unrolled!(PIXEL in [0, 1, 2, 3, 4, 5, 6, 7] {
                            if PIXEL < P && COLUMN >= PIXEL * S && COLUMN - PIXEL * S < K {
                                let tap = COLUMN - PIXEL * S;
                                sums[PIXEL] = _mm512_fmadd_ps(v, weights[tap], sums[PIXEL]);
                            }
                        });
                    }
                });
            }
            let done = &sums[..count.min(P)];
            store_pixels::<BF16>(layer, done, start, pixels);
        }
    }
}

/// Applies the layer's activation to `sums` and stores them as pixels `0..sums.len()` of
/// channel block `start` in `pixels`: rounded to bf16 with `BF16`, else f32.
///
/// # Safety
/// As [`pixels_at`]: code compiled for AVX-512F (and AVX512_BF16 with `BF16`), `start` a
/// channel block of the layer, and `pixels` holding `sums.len()` pixels.
#[inline(always)]
unsafe fn store_pixels<const BF16: bool>(
    layer: &Layer,
    sums: &[__m512],
    start: usize,
    pixels: *mut u8,
) {
    // SAFETY: pixel `q < sums.len()`, channel block `start < c`: inside `pixels`, as the
    // caller vouched.
    unsafe {
        for (q, sum) in sums.iter().enumerate() {
            let v = match layer.act {
                Activation::None => *sum,
                Activation::Relu => _mm512_max_ps(*sum, _mm512_setzero_ps()),
                Activation::Relu6 => _mm512_min_ps(
                    _mm512_max_ps(*sum, _mm512_setzero_ps()),
                    _mm512_set1_ps(6.0),
                ),
            };
            let at = q * layer.c + start;
            match BF16 {
                true => {
                    let rounded = std::mem::transmute::<__m256bh, __m256i>(_mm512_cvtneps_pbh(v));
                    _mm256_storeu_si256(pixels.add(2 * at) as *mut __m256i, rounded);
                }
                false => _mm512_storeu_ps(pixels.add(4 * at) as *mut f32, v),
            }
        }
    }
}
