//! Matrix products in bfloat16 on CPUs that multiply it natively (AVX512_BF16's `vdpbf16ps`).
//!
//! bf16 keeps f32's exponent and 8 bits of its mantissa, and `vdpbf16ps` does twice as many
//! multiply-adds per instruction as an f32 FMA, summing in f32. So a layer's weights are
//! rounded to bf16 once, at load, and packed in the order the kernel reads them; activations
//! are rounded while they are packed for each product; every sum stays f32. Each product of
//! two bf16 values is exact in f32, so the only error is the rounding of the two inputs
//! (relative 2⁻⁸ at most each, with 8 significant bits): a dot product is off by at most
//! about `2 × 2⁻⁸ × Σ|xᵢ wᵢ|`, and typically by `2⁻⁸ × √k` times the size of a term for
//! length `k`, since the roundings are as often up as down.
//!
//! Where the CPU lacks AVX512_BF16, [`supported`] says so and callers use their f32 path.
//! A [`PackedBf16`] is only made where the CPU has it ([`PackedBf16::new`] checks), so holding
//! one is the proof that its products may run: no safe call reaches these instructions on a
//! CPU without them.

use super::tile::Finish;

/// Output columns one packed panel holds: four registers of 16 f32 sums.
const PANEL: usize = 64;
/// Columns per register.
const LANES: usize = 16;
/// Rows one call of the inner kernel computes: 6 rows × 4 registers is 24 sums in registers.
#[cfg(target_arch = "x86_64")]
const ROWS: usize = 6;

/// Whether this CPU runs the bf16 kernels.
pub fn supported() -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        std::arch::is_x86_feature_detected!("avx512f")
            && std::arch::is_x86_feature_detected!("avx512bf16")
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        false
    }
}

/// f32 to bf16 bits, rounding to nearest, ties to even (as `vcvtne2ps2bf16` does).
pub fn to_bf16(v: f32) -> u16 {
    let bits = v.to_bits();
    if v.is_nan() {
        return ((bits >> 16) | 0x40) as u16;
    }
    let rounding = 0x7fff + ((bits >> 16) & 1);
    (bits.wrapping_add(rounding) >> 16) as u16
}

/// bf16 bits back to f32 (exact).
pub fn from_bf16(v: u16) -> f32 {
    f32::from_bits((v as u32) << 16)
}

/// An `[inputs, outputs]` weight matrix rounded to bf16 and laid out for the kernel: panels of
/// [`PANEL`] output columns (the last one as wide as it needs in steps of 16), each holding,
/// for every pair of inputs, the two values of every column side by side. An odd last input
/// is paired with zero.
pub struct PackedBf16 {
    data: Vec<u16>,
    inputs: usize,
    outputs: usize,
}

impl PackedBf16 {
    /// Packs row-major `w` (`inputs × outputs`), or `None` where this CPU lacks AVX512_BF16:
    /// the products of a packed matrix run its instructions, so none is made where they
    /// would fault.
    pub fn new(w: &[f32], inputs: usize, outputs: usize) -> Option<Self> {
        if !supported() {
            return None;
        }
        assert_eq!(w.len(), inputs * outputs, "bf16: weight shape");
        let pairs = inputs.div_ceil(2);
        let padded = outputs.div_ceil(LANES) * LANES;
        let mut data = vec![0u16; pairs * 2 * padded];
        let mut at = 0;
        for first in (0..outputs).step_by(PANEL) {
            let width = panel_width(outputs, first);
            for pair in 0..pairs {
                for col in 0..width {
                    for half in 0..2 {
                        let (i, o) = (2 * pair + half, first + col);
                        if i < inputs && o < outputs {
                            data[at] = to_bf16(w[i * outputs + o]);
                        }
                        at += 1;
                    }
                }
            }
        }
        Some(PackedBf16 {
            data,
            inputs,
            outputs,
        })
    }

    pub fn inputs(&self) -> usize {
        self.inputs
    }

    pub fn outputs(&self) -> usize {
        self.outputs
    }

    /// The matrix back in row-major order (`inputs × outputs`), each value the bf16 one the
    /// products use, widened to f32: packing it again gives the same matrix.
    pub fn unpack(&self) -> Vec<f32> {
        let mut w = vec![0.0; self.inputs * self.outputs];
        let pairs = self.inputs.div_ceil(2);
        let mut panel_at = 0;
        for first in (0..self.outputs).step_by(PANEL) {
            let width = panel_width(self.outputs, first);
            for i in 0..self.inputs {
                let (pair, half) = (i / 2, i % 2);
                for col in 0..(self.outputs - first).min(PANEL) {
                    let at = panel_at + (pair * width + col) * 2 + half;
                    w[i * self.outputs + first + col] = from_bf16(self.data[at]);
                }
            }
            panel_at += pairs * 2 * width;
        }
        w
    }

    /// `out = x · w` on the calling thread, for `rows` rows of `x` (`inputs` f32 values each,
    /// `x_stride` apart) into rows of `out` (`outputs` values, `out_stride` apart).
    ///
    /// # Safety
    /// Every row of `x` and `out` so described must be inside one live allocation that nothing
    /// else writes (or, for `out`, reads) meanwhile. (The CPU runs the kernel: `self` exists.)
    pub unsafe fn multiply_strided(
        &self,
        rows: usize,
        x: *const f32,
        x_stride: usize,
        out: *mut f32,
        out_stride: usize,
    ) {
        // SAFETY: the caller keeps the same contract.
        unsafe { self.multiply_finishing(rows, x, x_stride, out, out_stride, None) };
    }

    /// Like [`Self::multiply_strided`], and then, while the sums are still in registers,
    /// `out = act(out + bias (+ residual))` as [`Finish`] says.
    ///
    /// # Safety
    /// As for [`Self::multiply_strided`]; `finish`'s bias holds `outputs` values and its
    /// residual, if any, the same rows as `out` at the same stride.
    pub unsafe fn multiply_finishing(
        &self,
        rows: usize,
        x: *const f32,
        x_stride: usize,
        out: *mut f32,
        out_stride: usize,
        finish: Option<Finish>,
    ) {
        #[cfg(target_arch = "x86_64")]
        ROUNDED.with(|cell| {
            let mut rounded = cell.take();
            let ends = avx512::Ends {
                out,
                stride: out_stride,
                finish,
            };
            // SAFETY: `self` exists, so the CPU has AVX-512F and AVX512_BF16 (`new`); the rows
            // are as the caller promised.
            unsafe { avx512::multiply(self, rows, x, x_stride, ends, &mut rounded) };
            cell.replace(rounded);
        });
        #[cfg(not(target_arch = "x86_64"))]
        {
            let _ = (rows, x, x_stride, out, out_stride, finish);
            unreachable!("bf16 kernels exist only on x86_64; `supported()` is false elsewhere");
        }
    }

    /// `out = a · w` on the calling thread, for `rows` rows of activations already rounded
    /// to bf16 pairs by [`round`] (`inputs / 2` pairs each, `a_stride` pairs apart), into rows
    /// of `out` (`outputs` values, `out_stride` apart), finished as with
    /// [`Self::multiply_finishing`]. For callers that make the activations themselves and can
    /// round them while they are in cache.
    ///
    /// # Safety
    /// Every row of `a` and `out` so described must be inside one live allocation that nothing
    /// else writes (or, for `out`, reads) meanwhile; `finish` as for
    /// [`Self::multiply_finishing`].
    pub unsafe fn multiply_rounded(
        &self,
        rows: usize,
        a: *const u32,
        a_stride: usize,
        out: *mut f32,
        out_stride: usize,
        finish: Option<Finish>,
    ) {
        assert!(
            self.inputs.is_multiple_of(2),
            "bf16: rounded rows need an even width"
        );
        #[cfg(target_arch = "x86_64")]
        {
            let ends = avx512::Ends {
                out,
                stride: out_stride,
                finish,
            };
            // SAFETY: `self` exists, so the CPU has the features (`new`); the rows are as the
            // caller promised, and `inputs` is even (asserted).
            unsafe { avx512::multiply_rounded(self, rows, (a, a_stride), ends) };
        }
        #[cfg(not(target_arch = "x86_64"))]
        {
            let _ = (rows, a, a_stride, out, out_stride, finish);
            unreachable!("bf16 kernels exist only on x86_64; `supported()` is false elsewhere");
        }
    }
}

/// Rounds `x` to bf16, two values to a `u32` of `dst` (the first in the low half), as the
/// products round their activations. `dst` holds `x.len() / 2` pairs; `x.len()` is even.
pub fn round(x: &[f32], dst: &mut [u32]) {
    assert!(supported(), "bf16: this CPU does not round to bf16");
    assert!(x.len().is_multiple_of(2) && dst.len() == x.len() / 2);
    #[cfg(target_arch = "x86_64")]
    // SAFETY: the CPU has the features (asserted), and `dst` holds the pairs of `x`.
    unsafe {
        avx512::round_row(x.as_ptr(), x.len(), dst.as_mut_ptr())
    };
}

/// Width of the panel that starts at output column `first`.
fn panel_width(outputs: usize, first: usize) -> usize {
    (outputs - first).min(PANEL).div_ceil(LANES) * LANES
}

thread_local! {
    /// A thread's activations rounded to bf16, reused between products.
    static ROUNDED: std::cell::RefCell<Vec<u32>> = const { std::cell::RefCell::new(Vec::new()) };
}

#[cfg(target_arch = "x86_64")]
mod avx512 {
    use std::arch::x86_64::*;

    use super::{panel_width, Finish, PackedBf16, LANES, PANEL, ROWS};
    use crate::model::tile::{first_sums, store_tile};

    /// Rows of activations rounded at once: enough to reuse each weight panel many times,
    /// few enough that they stay in cache while every panel passes over them.
    const ROW_BLOCK: usize = 48;

    /// See [`PackedBf16::multiply_strided`]; `rounded` is scratch space.
    ///
    /// # Safety
    /// The CPU has AVX-512F and AVX512_BF16; `x` and `ends` as
    /// [`PackedBf16::multiply_finishing`] says.
    #[target_feature(enable = "avx512f,avx512bf16")]
    pub(super) unsafe fn multiply(
        w: &PackedBf16,
        rows: usize,
        x: *const f32,
        x_stride: usize,
        ends: Ends,
        rounded: &mut Vec<u32>,
    ) {
        // SAFETY (every block below): row `first_row + r < rows` of `x` is inside it, as the
        // caller promised; `rounded` holds `block * pairs` pairs (grown just before).
        let pairs = w.inputs.div_ceil(2);
        let mut first_row = 0;
        while first_row < rows {
            let block = (rows - first_row).min(ROW_BLOCK);
            // Grow only: shortening it for one layer and lengthening it for the next would
            // zero the regrown part on every call, and `round_row` writes what is used.
            if rounded.len() < block * pairs {
                rounded.resize(block * pairs, 0);
            }
            for r in 0..block {
                unsafe {
                    let row = x.add((first_row + r) * x_stride);
                    round_row(row, w.inputs, rounded.as_mut_ptr().add(r * pairs));
                }
            }
            unsafe { every_panel(w, (rounded.as_ptr(), pairs), block, &ends, first_row) };
            first_row += block;
        }
    }

    /// See [`PackedBf16::multiply_rounded`].
    ///
    /// # Safety
    /// The CPU has AVX-512F and AVX512_BF16; `a` and `ends` as
    /// [`PackedBf16::multiply_rounded`] says.
    #[target_feature(enable = "avx512f,avx512bf16")]
    pub(super) unsafe fn multiply_rounded(
        w: &PackedBf16,
        rows: usize,
        (a, a_stride): (*const u32, usize),
        ends: Ends,
    ) {
        // In blocks as `multiply` rounds them, so that each panel is reused over many rows
        // while the rows stay in cache.
        let mut first_row = 0;
        while first_row < rows {
            let block = (rows - first_row).min(ROW_BLOCK);
            // SAFETY: rows `first_row..first_row + block` are inside `a` and `out`, as the
            // caller promised for all `rows`.
            unsafe {
                let a = a.add(first_row * a_stride);
                every_panel(w, (a, a_stride), block, &ends, first_row);
            }
            first_row += block;
        }
    }

    /// Rows `first_row..first_row + rows` of the product, from their rounded activations
    /// (`a`, rows `a_stride` pairs apart), panel by panel.
    ///
    /// # Safety
    /// The CPU has AVX-512F and AVX512_BF16; `rows` rows of `a` of `w.inputs / 2` pairs
    /// (rounded up), and rows `first_row..first_row + rows` of `ends`, lie inside their
    /// allocations.
    #[target_feature(enable = "avx512f,avx512bf16")]
    unsafe fn every_panel(
        w: &PackedBf16,
        (a, a_stride): (*const u32, usize),
        rows: usize,
        ends: &Ends,
        first_row: usize,
    ) {
        let pairs = w.inputs.div_ceil(2);
        let mut panel_at = 0;
        for first_col in (0..w.outputs).step_by(PANEL) {
            let width = panel_width(w.outputs, first_col);
            let at = first_row * ends.stride + first_col;
            // SAFETY: `panel_at` is where this panel starts in `w.data` (`pairs * 2 * width`
            // values a panel, as `new` packed them); column `first_col < outputs` of row
            // `first_row` is inside `out`, the bias and the residual, as the caller promised.
            unsafe {
                let panel = w.data.as_ptr().add(panel_at);
                let target = Target {
                    out: ends.out.add(at),
                    stride: ends.stride,
                    columns: (w.outputs - first_col).min(PANEL),
                    finish: ends.finish.map(|f| Finish {
                        bias: f.bias.add(first_col),
                        residual: match f.residual.is_null() {
                            true => f.residual,
                            false => f.residual.add(at),
                        },
                        act: f.act,
                    }),
                };
                panel_rows((a, a_stride), rows, pairs, (panel, width), target);
            }
            panel_at += pairs * 2 * width;
        }
    }

    /// Where the product goes: rows of `out` `stride` apart, finished as `finish` says.
    #[derive(Clone, Copy)]
    pub(super) struct Ends {
        pub(super) out: *mut f32,
        pub(super) stride: usize,
        pub(super) finish: Option<Finish>,
    }

    /// Where a tile's sums go: `columns` valid columns of rows `stride` apart, with the bias
    /// and residual (if any) of the same columns and rows.
    #[derive(Clone, Copy)]
    struct Target {
        out: *mut f32,
        stride: usize,
        columns: usize,
        finish: Option<Finish>,
    }

    /// Every row of a rounded block against one panel, [`ROWS`] rows at a time.
    ///
    /// # Safety
    /// The CPU has AVX-512F and AVX512_BF16; `rows` rows of `a` (`pairs` pairs each), the
    /// panel (`pairs * 2 * width` values) and `rows` rows of `target` lie inside their
    /// allocations.
    #[target_feature(enable = "avx512f,avx512bf16")]
    unsafe fn panel_rows(
        (a, a_stride): (*const u32, usize),
        rows: usize,
        pairs: usize,
        (panel, width): (*const u16, usize),
        target: Target,
    ) {
        let mut r = 0;
        while r < rows {
            let take = (rows - r).min(ROWS);
            // SAFETY: row `r < rows` of `a`, `out` and the residual is inside them, as the
            // caller promised, and each tile reads and writes `take` rows from there.
            unsafe {
                let a = Rows {
                    at: a.add(r * a_stride),
                    stride: a_stride,
                    pairs,
                };
                let t = Target {
                    out: target.out.add(r * target.stride),
                    finish: target.finish.map(|f| Finish {
                        residual: match f.residual.is_null() {
                            true => f.residual,
                            false => f.residual.add(r * target.stride),
                        },
                        ..f
                    }),
                    ..target
                };
                match (width / LANES, take) {
                    (4, 6) => tile::<6, 4>(a, panel, t),
                    (4, n) => tile_rows::<4>(a, n, panel, t),
                    (3, 6) => tile::<6, 3>(a, panel, t),
                    (3, n) => tile_rows::<3>(a, n, panel, t),
                    (2, 6) => tile::<6, 2>(a, panel, t),
                    (2, n) => tile_rows::<2>(a, n, panel, t),
                    (_, 6) => tile::<6, 1>(a, panel, t),
                    (_, n) => tile_rows::<1>(a, n, panel, t),
                }
            }
            r += take;
        }
    }

    /// A tile of fewer than [`ROWS`] rows.
    ///
    /// # Safety
    /// As for [`tile`], with `rows` rows.
    #[target_feature(enable = "avx512f,avx512bf16")]
    unsafe fn tile_rows<const V: usize>(a: Rows, rows: usize, panel: *const u16, t: Target) {
        // SAFETY: the caller's promise, for `rows` rows.
        unsafe {
            match rows {
                5 => tile::<5, V>(a, panel, t),
                4 => tile::<4, V>(a, panel, t),
                3 => tile::<3, V>(a, panel, t),
                2 => tile::<2, V>(a, panel, t),
                _ => tile::<1, V>(a, panel, t),
            }
        }
    }

    /// Rounded activation rows: `pairs` pairs each, `stride` pairs apart from `at`.
    #[derive(Clone, Copy)]
    struct Rows {
        at: *const u32,
        stride: usize,
        pairs: usize,
    }

    /// `R` rows × `V` registers of columns: for each pair of inputs, one `vdpbf16ps` per sum,
    /// with the row's pair broadcast and the panel's `V` registers loaded once for all rows.
    ///
    /// # Safety
    /// The CPU has AVX-512F and AVX512_BF16; `R` rows of `a` (`a.pairs` pairs each), the
    /// panel (`a.pairs * V * 32` values) and `R` rows of `t` lie inside their allocations.
    #[target_feature(enable = "avx512f,avx512bf16")]
    #[inline]
    unsafe fn tile<const R: usize, const V: usize>(a: Rows, panel: *const u16, t: Target) {
        // SAFETY: every offset below stays inside the rows and the panel the caller vouched
        // for: pair `p < a.pairs` of row `r < R`, register `v < V` of the panel's pair `p`.
        unsafe {
            let mut sums = first_sums::<R, V>(t.finish, t.columns);
            for p in 0..a.pairs {
                let w = panel.add(p * V * 2 * LANES);
                let mut weights = [_mm512_setzero_si512(); V];
                for (v, reg) in weights.iter_mut().enumerate() {
                    *reg = _mm512_loadu_si512(w.add(v * 2 * LANES) as *const __m512i);
                }
                for (r, row_sums) in sums.iter_mut().enumerate() {
                    let pair = _mm512_set1_epi32(*a.at.add(r * a.stride + p) as i32);
                    for (s, reg) in row_sums.iter_mut().zip(&weights) {
                        *s = _mm512_dpbf16_ps(*s, as_bf16(pair), as_bf16(*reg));
                    }
                }
            }
            store_tile(&sums, t.out, t.stride, t.columns, t.finish);
        }
    }

    #[inline(always)]
    fn as_bf16(v: __m512i) -> __m512bh {
        // SAFETY: both are 512-bit plain-data vectors; every bit pattern is valid for either.
        unsafe { std::mem::transmute::<__m512i, __m512bh>(v) }
    }

    /// Rounds `inputs` f32 values at `x` to bf16 pairs at `dst`, 32 values per instruction,
    /// padding an odd count with zero.
    ///
    /// # Safety
    /// The CPU has AVX-512F and AVX512_BF16; `x` holds `inputs` values and `dst`
    /// `inputs.div_ceil(2)` pairs.
    #[target_feature(enable = "avx512f,avx512bf16")]
    pub(super) unsafe fn round_row(x: *const f32, inputs: usize, dst: *mut u32) {
        let mut i = 0;
        while i + 2 * LANES <= inputs {
            // SAFETY: values `i..i + 32` are inside `x`, pairs `i / 2..i / 2 + 16` inside `dst`.
            unsafe {
                let low = _mm512_loadu_ps(x.add(i));
                let high = _mm512_loadu_ps(x.add(i + LANES));
                store_pairs(dst.add(i / 2), 0xffff, _mm512_cvtne2ps_pbh(high, low));
            }
            i += 2 * LANES;
        }
        if i < inputs {
            // The last few values through masks: lanes past the end read as zero, so an odd
            // count is paired with zero, and only whole pairs are stored.
            let left = inputs - i;
            let mask = |n: usize| -> __mmask16 { ((1u32 << n.min(LANES)) - 1) as u16 };
            // The second half may start past the row's end (with an empty mask): `add` would
            // make a pointer outside the allocation, which is undefined even unused, so it is
            // computed with `wrapping_add`, and the mask keeps every lane outside unread.
            let high_at = x.wrapping_add(i + LANES);
            // SAFETY: value `i < inputs` and pair `i / 2` are inside `x` and `dst`; the masks
            // read only the `left` values and write only the `left.div_ceil(2)` pairs left.
            unsafe {
                let low = _mm512_maskz_loadu_ps(mask(left), x.add(i));
                let high = _mm512_maskz_loadu_ps(mask(left.saturating_sub(LANES)), high_at);
                store_pairs(
                    dst.add(i / 2),
                    mask(left.div_ceil(2)),
                    _mm512_cvtne2ps_pbh(high, low),
                );
            }
        }
    }

    /// Stores the pairs of `packed` whose bits are set in `mask`.
    ///
    /// # Safety
    /// The CPU has AVX-512F; `dst` holds the pairs in `mask`.
    #[target_feature(enable = "avx512f,avx512bf16")]
    unsafe fn store_pairs(dst: *mut u32, mask: __mmask16, packed: __m512bh) {
        // SAFETY: the two vector types are 512 plain bits; `dst` as the caller promised.
        unsafe {
            let bits = std::mem::transmute::<__m512bh, __m512i>(packed);
            _mm512_mask_storeu_epi32(dst as *mut i32, mask, bits);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::test_noise as noise;
    use crate::model::tile::Activation;

    #[test]
    fn rounding_is_to_nearest_even() {
        assert_eq!(from_bf16(to_bf16(1.0)), 1.0);
        // 1 + 2⁻⁸ lies halfway between 1 and 1 + 2⁻⁷: ties go to the even one, 1.
        assert_eq!(from_bf16(to_bf16(1.0 + 1.0 / 256.0)), 1.0);
        assert_eq!(from_bf16(to_bf16(1.0 + 3.0 / 256.0)), 1.0 + 4.0 / 256.0);
        assert_eq!(from_bf16(to_bf16(-2.5)), -2.5);
        assert!(from_bf16(to_bf16(f32::NAN)).is_nan());
    }

    /// The finishing in registers gives what a separate pass over the product would: bias,
    /// residual and ReLU6, with rows wider than the product and a column tail.
    #[test]
    fn finishing_adds_bias_and_residual_and_clamps() {
        let test = "bf16::tests::finishing_adds_bias_and_residual_and_clamps";
        if !crate::model::test_runs_on_this_cpu(supported(), test, "AVX512_BF16") {
            return;
        }
        let (rows, inputs, outputs, stride) = (9, 40, 70, 75);
        let x = noise(1, rows * inputs);
        let w: Vec<f32> = noise(2, inputs * outputs).iter().map(|v| v * 4.0).collect();
        let bias = noise(3, outputs);
        let residual: Vec<f32> = noise(4, rows * stride).iter().map(|v| v * 3.0).collect();
        let packed = PackedBf16::new(&w, inputs, outputs).expect("the CPU runs bf16");
        let mut plain = vec![0.0; rows * stride];
        let mut finished = vec![0.0; rows * stride];
        let finish = Finish {
            bias: bias.as_ptr(),
            residual: residual.as_ptr(),
            act: Activation::Relu6,
        };
        // SAFETY: the CPU runs the kernel (checked above); x has rows × inputs values, the
        // outputs and the residual rows × stride, and the bias `outputs`.
        unsafe {
            packed.multiply_strided(rows, x.as_ptr(), inputs, plain.as_mut_ptr(), stride);
            let out = finished.as_mut_ptr();
            packed.multiply_finishing(rows, x.as_ptr(), inputs, out, stride, Some(finish));
        }
        let (mut clamped_low, mut clamped_high) = (0, 0);
        for r in 0..rows {
            for (o, b) in bias.iter().enumerate() {
                let at = r * stride + o;
                let expected = (plain[at] + b + residual[at]).clamp(0.0, 6.0);
                assert!((finished[at] - expected).abs() < 1e-5, "[{r},{o}]");
                clamped_low += (expected == 0.0) as usize;
                clamped_high += (expected == 6.0) as usize;
            }
            assert!(finished[r * stride + outputs..(r + 1) * stride]
                .iter()
                .all(|v| *v == 0.0));
        }
        assert!(
            clamped_low > 0 && clamped_high > 0,
            "both ends of ReLU6 are exercised"
        );
    }

    /// Every shape the kernel splits differently (row tails, odd inputs, column tails inside
    /// and across panels) against an f64 product: the error stays inside the bound the module
    /// states, `2 × 2⁻⁸ × Σ|xᵢ wᵢ|` (plus f32 summation noise), and equals the exact product
    /// of the rounded inputs to f32 accuracy.
    #[test]
    fn products_match_f32_within_the_stated_bound() {
        let test = "bf16::tests::products_match_f32_within_the_stated_bound";
        if !crate::model::test_runs_on_this_cpu(supported(), test, "AVX512_BF16") {
            return;
        }
        let shapes = [
            (1, 1, 1),
            (7, 3, 17),
            (6, 96, 16),
            (13, 27, 32),
            (50, 144, 24),
            (61, 40, 240),
            (5, 1280, 1000),
            (100, 33, 130),
        ];
        for (seed, &(rows, inputs, outputs)) in shapes.iter().enumerate() {
            let x = noise(seed as u64, rows * inputs);
            let w = noise(100 + seed as u64, inputs * outputs);
            let packed = PackedBf16::new(&w, inputs, outputs).expect("the CPU runs bf16");
            // Rows of `out` are wider than the product, to check that nothing else is written.
            let stride = outputs + 3;
            let mut out = vec![f32::MAX; rows * stride];
            // SAFETY: the CPU runs the kernel (checked above); x has rows × inputs values and
            // out rows × stride.
            unsafe { packed.multiply_strided(rows, x.as_ptr(), inputs, out.as_mut_ptr(), stride) };
            for r in 0..rows {
                for o in 0..outputs {
                    let terms =
                        (0..inputs).map(|i| (x[r * inputs + i] as f64, w[i * outputs + o] as f64));
                    let exact: f64 = terms.clone().map(|(a, b)| a * b).sum();
                    let magnitude: f64 = terms.clone().map(|(a, b)| (a * b).abs()).sum();
                    let rounded: f64 = terms
                        .map(|(a, b)| {
                            from_bf16(to_bf16(a as f32)) as f64
                                * from_bf16(to_bf16(b as f32)) as f64
                        })
                        .sum();
                    let got = out[r * stride + o] as f64;
                    let summing = 1e-6 * magnitude + 1e-7;
                    assert!(
                        (got - rounded).abs() <= summing,
                        "{rows}×{inputs}×{outputs} [{r},{o}]: {got} vs {rounded}"
                    );
                    let bound = 2.0 * magnitude / 256.0 + summing;
                    assert!(
                        (got - exact).abs() <= bound,
                        "{rows}×{inputs}×{outputs} [{r},{o}]: {got} vs {exact}, bound {bound}"
                    );
                }
                assert!(out[r * stride + outputs..(r + 1) * stride]
                    .iter()
                    .all(|v| *v == f32::MAX));
            }
        }
    }
}
