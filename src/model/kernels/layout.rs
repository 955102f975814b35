//! Layout moves and the simple layers: the network's input turned from planes to pixels
//! ([`nchw_to_nhwc`], with AVX-512 permutations for three channels), a k×k dense convolution
//! as im2col rows followed by the dense product ([`conv2d`]; the rows of one output row are
//! what [`super::block`] takes for a fused stem), VGG's 2×2 max-pool and the global average
//! that ends both networks.

use rayon::prelude::*;

use super::dense::{dense, Matrix};
use super::threads::{min_tasks, output_buffer};
use super::ConvGeometry;
use crate::model::tile::Activation;

/// Dense k×k convolution over NHWC by im2col and one gemm, fused with bias and activation.
///
/// `w` is `[kernel, kernel, in_channels, out_channels]`; `bias` is `[out_channels]`.
pub fn conv2d(x: &[f32], g: &ConvGeometry, w: Matrix, bias: &[f32], act: Activation) -> Vec<f32> {
    assert_eq!(x.len(), g.input_len(), "conv2d: input shape");
    // The im2col buffer is reused between calls on the same thread: for VGG16 it is up to
    // 115 MB a layer, and a fresh allocation each time costs a page fault per 4 KiB.
    COLUMNS.with(|cell| {
        let mut columns = cell.take();
        im2col(x, g, &mut columns);
        let out = dense(
            &columns,
            g.batch * g.out_height * g.out_width,
            w,
            bias,
            act,
            None,
        );
        cell.replace(columns);
        out
    })
}

thread_local! {
    static COLUMNS: std::cell::RefCell<Vec<f32>> = const { std::cell::RefCell::new(Vec::new()) };
}

/// Lays out every output pixel's receptive field as one row of `kernel * kernel * channels`
/// values, ordered (ky, kx, channel), with zeros for padding. `columns` is overwritten.
fn im2col(x: &[f32], g: &ConvGeometry, columns: &mut Vec<f32>) {
    let c = g.channels;
    let patch = g.kernel * g.kernel * c;
    let row_len = g.out_width * patch;
    columns.resize(g.batch * g.out_height * row_len, 0.0);
    columns
        .par_chunks_mut(row_len.max(1))
        .with_min_len(min_tasks())
        .enumerate()
        .for_each(|(row, out_row)| patch_row(x, g, row, out_row));
}

/// The patches of output row `row` (counted across the batch) of an [`im2col`].
pub(super) fn patch_row(x: &[f32], g: &ConvGeometry, row: usize, out_row: &mut [f32]) {
    let c = g.channels;
    let patch = g.kernel * g.kernel * c;
    let (image, oy) = (row / g.out_height, row % g.out_height);
    for (ox, patch_row) in out_row.chunks_exact_mut(patch).enumerate() {
        for ky in 0..g.kernel {
            let iy = ConvGeometry::source(oy, ky, g.stride, g.pad_top, g.height);
            let dst = &mut patch_row[ky * g.kernel * c..][..g.kernel * c];
            let Some(iy) = iy else {
                dst.fill(0.0);
                continue;
            };
            let row_at = (image * g.height + iy) * g.width;
            // A window inside the image horizontally is one contiguous run of input.
            let first = (ox * g.stride).checked_sub(g.pad_left);
            match first.filter(|&ix| ix + g.kernel <= g.width) {
                Some(ix) => copy_run(dst, &x[(row_at + ix) * c..][..g.kernel * c]),
                None => kernel_row_at_edge(x, g, row_at, ox, dst),
            }
        }
    }
}

/// `dst = src`, inlined for the stem's run of 3 pixels × 3 colours, where a call to `memcpy`
/// per run cost more than the copy (6% of a Lite0 image in bf16).
#[inline(always)]
fn copy_run(dst: &mut [f32], src: &[f32]) {
    match (dst.len(), src.len()) {
        (9, 9) => {
            let run: [f32; 9] = std::array::from_fn(|i| src[i]);
            dst.copy_from_slice(&run);
        }
        _ => dst.copy_from_slice(src),
    }
}

/// One kernel row of a patch whose window crosses the left or right edge: zeros for padding.
fn kernel_row_at_edge(x: &[f32], g: &ConvGeometry, row_at: usize, ox: usize, dst: &mut [f32]) {
    let c = g.channels;
    for (kx, dst) in dst.chunks_exact_mut(c).enumerate() {
        match ConvGeometry::source(ox, kx, g.stride, g.pad_left, g.width) {
            Some(ix) => dst.copy_from_slice(&x[(row_at + ix) * c..][..c]),
            None => dst.fill(0.0),
        }
    }
}

/// 2×2 max-pool with stride 2 over NHWC (VGG's pooling). Odd trailing rows and columns are
/// dropped, as in PyTorch.
pub fn max_pool_2x2(
    x: &[f32],
    batch: usize,
    height: usize,
    width: usize,
    channels: usize,
) -> Vec<f32> {
    let (oh, ow, c) = (height / 2, width / 2, channels);
    assert_eq!(
        x.len(),
        batch * height * width * c,
        "max_pool_2x2: input shape"
    );
    let mut out = output_buffer(batch * oh * ow * c);
    out.par_chunks_mut((ow * c).max(1))
        .with_min_len(min_tasks())
        .enumerate()
        .for_each(|(row, out_row)| {
            let (image, oy) = (row / oh.max(1), row % oh.max(1));
            let top = ((image * height + 2 * oy) * width) * c;
            let bottom = top + width * c;
            for (ox, px) in out_row.chunks_exact_mut(c).enumerate() {
                let cells = [
                    top + 2 * ox * c,
                    top + (2 * ox + 1) * c,
                    bottom + 2 * ox * c,
                    bottom + (2 * ox + 1) * c,
                ];
                for (ch, o) in px.iter_mut().enumerate() {
                    *o = cells
                        .iter()
                        .map(|&at| x[at + ch])
                        .fold(f32::NEG_INFINITY, f32::max);
                }
            }
        });
    out
}

/// Mean over all pixels of each image: `[batch, pixels, channels]` to `[batch, channels]`.
pub fn global_average(x: &[f32], batch: usize, channels: usize) -> Vec<f32> {
    let pixels = x.len() / (batch * channels).max(1);
    let mut out = vec![0.0f32; batch * channels];
    for (image, sums) in out.chunks_exact_mut(channels).enumerate() {
        let image_data = &x[image * pixels * channels..][..pixels * channels];
        for px in image_data.chunks_exact(channels) {
            sums.iter_mut().zip(px).for_each(|(s, v)| *s += v);
        }
        let scale = 1.0 / pixels as f32;
        sums.iter_mut().for_each(|s| *s *= scale);
    }
    out
}

/// NCHW to NHWC.
pub fn nchw_to_nhwc(
    x: &[f32],
    batch: usize,
    channels: usize,
    height: usize,
    width: usize,
) -> Vec<f32> {
    let plane = height * width;
    assert_eq!(
        x.len(),
        batch * channels * plane,
        "nchw_to_nhwc: input shape"
    );
    let mut out = output_buffer(x.len());
    // One task per image row: each writes its own pixels.
    let row_len = (width * channels).max(1);
    out.par_chunks_mut(row_len)
        .with_min_len(min_tasks())
        .enumerate()
        .for_each(|(row, dst)| {
            let (n, y) = (row / height.max(1), row % height.max(1));
            let src = &x[n * channels * plane..][..channels * plane];
            let plane_row = |ch: usize| &src[ch * plane + y * width..][..width];
            #[cfg(target_arch = "x86_64")]
            if channels == 3 && std::arch::is_x86_feature_detected!("avx512f") {
                // SAFETY: the CPU has AVX-512F, checked on the line above.
                unsafe { interleave_three(plane_row(0), plane_row(1), plane_row(2), dst) };
                return;
            }
            // Plane by plane: each source row is read in order (a third of the time of
            // gathering each pixel's channels from three planes, for the 224×224 input).
            for ch in 0..channels {
                for (px, v) in dst.chunks_exact_mut(channels).zip(plane_row(ch)) {
                    px[ch] = *v;
                }
            }
        });
    out
}

/// `dst = [r0, g0, b0, r1, g1, b1, …]` from three planes' rows, 16 pixels in six
/// permutations: plane by plane, three pixels' values were written one at a time, and the
/// network's input took 2% of Lite0's time.
///
/// # Safety
/// The CPU has AVX-512F.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
unsafe fn interleave_three(r: &[f32], g: &[f32], b: &[f32], dst: &mut [f32]) {
    use std::arch::x86_64::*;
    let width = r.len();
    assert!(g.len() == width && b.len() == width && dst.len() == 3 * width);
    // Output register `k`, lane `l`, holds value `16 k + l` of 48: channel `(16 k + l) % 3`
    // of pixel `(16 k + l) / 3`. The first permutation brings in the red and green values
    // (indices 16 and up take from the second source), the second the blue ones.
    let indices = |k: usize| -> ([i32; 16], [i32; 16]) {
        let (mut red_green, mut blue) = ([0i32; 16], [0i32; 16]);
        for l in 0..16 {
            let (pixel, channel) = (((16 * k + l) / 3) as i32, (16 * k + l) % 3);
            red_green[l] = match channel {
                0 => pixel,
                1 => 16 + pixel,
                _ => 0,
            };
            blue[l] = match channel {
                2 => 16 + pixel,
                _ => l as i32,
            };
        }
        (red_green, blue)
    };
    // SAFETY: `v` is 16 values, one register.
    let load = |v: [i32; 16]| unsafe { _mm512_loadu_si512(v.as_ptr() as *const __m512i) };
    let permutations: [(__m512i, __m512i); 3] = std::array::from_fn(|k| {
        let (red_green, blue) = indices(k);
        (load(red_green), load(blue))
    });
    let whole = width / 16 * 16;
    for first in (0..whole).step_by(16) {
        // SAFETY: pixels `first..first + 16` are inside every plane's row (`first + 16 <=
        // whole <= width`), and their 48 values inside `dst` (asserted to be 3 × width).
        unsafe {
            let red = _mm512_loadu_ps(r.as_ptr().add(first));
            let green = _mm512_loadu_ps(g.as_ptr().add(first));
            let blue = _mm512_loadu_ps(b.as_ptr().add(first));
            for (k, (red_green, blues)) in permutations.iter().enumerate() {
                let two = _mm512_permutex2var_ps(red, *red_green, green);
                let three = _mm512_permutex2var_ps(two, *blues, blue);
                _mm512_storeu_ps(dst.as_mut_ptr().add(3 * first + 16 * k), three);
            }
        }
    }
    for x in whole..width {
        dst[3 * x..3 * x + 3].copy_from_slice(&[r[x], g[x], b[x]]);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nchw_to_nhwc_moves_every_value_to_its_pixel() {
        // Widths with and without a part of 16 pixels left over; 3 channels take the
        // interleaving kernel where the CPU has AVX-512, 2 the plane-by-plane loop.
        for (batch, channels, height, width) in
            [(2, 3, 5, 224), (1, 3, 3, 37), (1, 3, 2, 5), (2, 2, 3, 19)]
        {
            let x = crate::model::test_noise(7, batch * channels * height * width);
            let got = nchw_to_nhwc(&x, batch, channels, height, width);
            for n in 0..batch {
                for c in 0..channels {
                    for y in 0..height {
                        for w in 0..width {
                            let from = ((n * channels + c) * height + y) * width + w;
                            let to = ((n * height + y) * width + w) * channels + c;
                            assert_eq!(got[to], x[from], "{n} {c} {y} {w}");
                        }
                    }
                }
            }
        }
    }

    #[test]
    fn max_pool_takes_the_largest_of_each_cell() {
        // 1 image, 2×2, 2 channels.
        let x = [1.0, -1.0, 5.0, -2.0, 3.0, -3.0, 4.0, -0.5];
        assert_eq!(max_pool_2x2(&x, 1, 2, 2, 2), vec![5.0, -0.5]);
    }
}
