//! How every product in the models ends: the activation that follows a layer's bias, and the
//! finishing of its sums, `act(sum + bias (+ residual))`, either in a pass over f32 rows while
//! they are in cache (`finish_rows`, after `gemm`) or in registers as an AVX-512 tile of sums
//! is stored (`first_sums`, `store_tile`, for the packed bf16 and f32 kernels).
//!
//! A module of its own so that the three homes of the products depend on it and it on none of
//! them: [`super::kernels`] uses [`super::bf16`] and [`super::packed_f32`], and those two use
//! only this, so no two of them import each other in a circle.

/// What follows the convolution's bias.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Activation {
    None,
    Relu,
    Relu6,
}

impl Activation {
    #[inline(always)]
    pub(crate) fn apply(self, v: f32) -> f32 {
        match self {
            Activation::None => v,
            Activation::Relu => v.max(0.0),
            Activation::Relu6 => v.clamp(0.0, 6.0),
        }
    }
}

/// What follows a product: `act(sum + bias (+ residual))`.
#[derive(Clone, Copy)]
pub struct Finish {
    /// `outputs` values.
    pub bias: *const f32,
    /// Rows laid out as `out`'s, or null.
    pub residual: *const f32,
    pub act: Activation,
}

/// `out = act(out + bias (+ residual))`, where `out` (and `residual`, the same size) hold whole
/// rows of `bias.len()` values. Compiled for AVX-512 too, and run so where the CPU has it: the
/// crate's baseline is SSE2, which does four values an instruction.
pub(crate) fn finish_rows(
    out: &mut [f32],
    bias: &[f32],
    residual: Option<&[f32]>,
    act: Activation,
) {
    #[cfg(target_arch = "x86_64")]
    if std::arch::is_x86_feature_detected!("avx512f") {
        // SAFETY: the CPU has AVX-512F, checked on the line above.
        unsafe { finish_rows_avx512(out, bias, residual, act) };
        return;
    }
    finish_rows_here(out, bias, residual, act);
}

/// [`finish_rows_here`] compiled for AVX-512.
///
/// # Safety
/// The CPU has AVX-512F.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
unsafe fn finish_rows_avx512(out: &mut [f32], bias: &[f32], res: Option<&[f32]>, act: Activation) {
    finish_rows_here(out, bias, res, act);
}

#[inline(always)]
fn finish_rows_here(out: &mut [f32], bias: &[f32], residual: Option<&[f32]>, act: Activation) {
    let width = bias.len().max(1);
    match residual {
        Some(res) => {
            for (row, res) in out.chunks_exact_mut(width).zip(res.chunks_exact(width)) {
                for ((v, b), r) in row.iter_mut().zip(bias).zip(res) {
                    *v = act.apply(*v + b + r);
                }
            }
        }
        None => {
            for row in out.chunks_exact_mut(width) {
                for (v, b) in row.iter_mut().zip(bias) {
                    *v = act.apply(*v + b);
                }
            }
        }
    }
}

#[cfg(target_arch = "x86_64")]
pub(crate) use avx512::{first_sums, store_tile};

/// The tile start and store of the packed AVX-512 kernels (`bf16` and `packed_f32`).
#[cfg(target_arch = "x86_64")]
mod avx512 {
    use std::arch::x86_64::*;

    use super::{Activation, Finish};

    /// Columns per register.
    const LANES: usize = 16;

    /// The sums a tile starts from: the bias of its columns (`columns` of them valid) when
    /// there is a `finish`, else zeros. Starting from the bias spares an addition per value
    /// at the end, where the narrow layers (16 to 40 inputs) spend a good part of their time.
    ///
    /// # Safety
    /// As for [`store_tile`]: only from code compiled for AVX-512F, and `finish`'s bias holds
    /// `columns` values, `columns > (V - 1) * 16`.
    #[inline(always)]
    pub(crate) unsafe fn first_sums<const R: usize, const V: usize>(
        finish: Option<Finish>,
        columns: usize,
    ) -> [[__m512; V]; R] {
        // SAFETY: the caller compiles this for AVX-512F; register `v < V` starts at column
        // `16 v < columns`, inside the bias, and its mask reads only the valid columns.
        unsafe {
            let mut bias = [_mm512_setzero_ps(); V];
            if let Some(f) = finish {
                for (v, reg) in bias.iter_mut().enumerate() {
                    *reg = _mm512_maskz_loadu_ps(column_mask(columns, v), f.bias.add(v * LANES));
                }
            }
            [bias; R]
        }
    }

    /// The lanes of register `v` of a tile that hold one of its `columns` valid columns.
    #[inline(always)]
    fn column_mask(columns: usize, v: usize) -> __mmask16 {
        let valid = columns.saturating_sub(v * LANES).min(LANES);
        match valid >= LANES {
            true => 0xffff,
            false => (1u16 << valid) - 1,
        }
    }

    /// Stores (and finishes, with `finish`) a tile of sums that started from the bias (see
    /// [`first_sums`]): rows `stride` apart from `out`, of which `columns` are written.
    ///
    /// Always inlined, into tile kernels compiled for AVX-512, so that the sums go from
    /// registers to `out`. Left to the optimiser it was a call: every tile zeroed its sums on
    /// the stack with `memset`, and stored and reloaded them around the call (7% of Lite0's
    /// time, the layers with few inputs paying the most).
    ///
    /// # Safety
    /// Only from code compiled for AVX-512F; `R` rows of `columns` values from `out`, `stride`
    /// apart, lie inside one allocation, and so do those of `finish`'s residual (if any);
    /// `columns > (V - 1) * 16`.
    #[inline(always)]
    pub(crate) unsafe fn store_tile<const R: usize, const V: usize>(
        sums: &[[__m512; V]; R],
        out: *mut f32,
        stride: usize,
        columns: usize,
        finish: Option<Finish>,
    ) {
        // SAFETY: register `v < V` of row `r < R` starts at column `16 v < columns` of a row
        // the caller vouched for, and its mask touches only the valid columns.
        unsafe {
            for (r, row_sums) in sums.iter().enumerate() {
                let row = out.add(r * stride);
                for (v, s) in row_sums.iter().enumerate() {
                    let mask = column_mask(columns, v);
                    let value = match finish {
                        Some(f) => finished(*s, f, mask, r * stride + v * LANES),
                        None => *s,
                    };
                    _mm512_mask_storeu_ps(row.add(v * LANES), mask, value);
                }
            }
        }
    }

    /// `act(sums (+ residual))` for the lanes in `mask`, at `at` in the residual's rows (the
    /// bias is in the sums already). Inlined as [`store_tile`] is.
    ///
    /// # Safety
    /// Only from code compiled for AVX-512F; a residual holds the lanes of `mask` from `at`.
    #[inline(always)]
    unsafe fn finished(sums: __m512, f: Finish, mask: __mmask16, at: usize) -> __m512 {
        // SAFETY: the caller compiles this for AVX-512F and vouches for the residual's lanes
        // in `mask`; the others are not read.
        unsafe {
            let mut v = sums;
            if !f.residual.is_null() {
                v = _mm512_add_ps(v, _mm512_maskz_loadu_ps(mask, f.residual.add(at)));
            }
            match f.act {
                Activation::None => v,
                Activation::Relu => _mm512_max_ps(v, _mm512_setzero_ps()),
                Activation::Relu6 => {
                    _mm512_min_ps(_mm512_max_ps(v, _mm512_setzero_ps()), _mm512_set1_ps(6.0))
                }
            }
        }
    }
}
