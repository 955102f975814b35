//! f32 matrix products on AVX-512 with the weights packed once, at load, for the kernel.
//!
//! The same shape of kernel as the bf16 one ([`super::bf16`]): panels of 64 output columns,
//! 6 rows × 4 registers of sums, bias, residual and activation applied while the sums are in
//! registers. The layers of Lite0 are small products (a few thousand rows at most, often 16 to
//! 40 columns), where a general matrix library spends much of its time packing and splitting;
//! here the weights are packed once and the activations are read in place.
//!
//! A [`PackedF32`] is only made where the CPU has AVX-512 ([`PackedF32::new`] checks), so
//! holding one is the proof that its products may run.

use super::tile::Finish;

/// Output columns one packed panel holds: four registers of 16 f32 sums.
const PANEL: usize = 64;
/// Columns per register.
const LANES: usize = 16;
/// Rows one call of the inner kernel computes.
#[cfg(target_arch = "x86_64")]
const ROWS: usize = 6;

/// Whether this CPU runs the packed f32 kernel.
pub fn supported() -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        std::arch::is_x86_feature_detected!("avx512f")
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        false
    }
}

/// An `[inputs, outputs]` weight matrix laid out for the kernel: panels of [`PANEL`] output
/// columns (the last one as wide as it needs in steps of 16, padded with zeros), each holding
/// every input's row of the panel's columns.
pub struct PackedF32 {
    data: Vec<f32>,
    inputs: usize,
    outputs: usize,
}

impl PackedF32 {
    /// Packs row-major `w` (`inputs × outputs`), or `None` where this CPU lacks AVX-512: the
    /// products of a packed matrix run its instructions, so none is made where they would
    /// fault.
    pub fn new(w: &[f32], inputs: usize, outputs: usize) -> Option<Self> {
        if !supported() {
            return None;
        }
        assert_eq!(w.len(), inputs * outputs, "packed f32: weight shape");
        let padded = outputs.div_ceil(LANES) * LANES;
        let mut data = Vec::with_capacity(inputs * padded);
        for first in (0..outputs).step_by(PANEL) {
            let width = panel_width(outputs, first);
            for row in w.chunks_exact(outputs.max(1)).take(inputs) {
                data.extend((first..first + width).map(|o| row.get(o).copied().unwrap_or(0.0)));
            }
        }
        Some(PackedF32 {
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

    /// The matrix back in row-major order (`inputs × outputs`), as [`Self::new`] took it.
    pub fn unpack(&self) -> Vec<f32> {
        let mut w = vec![0.0; self.inputs * self.outputs];
        let mut panel_at = 0;
        for first in (0..self.outputs).step_by(PANEL) {
            let width = panel_width(self.outputs, first);
            let columns = (self.outputs - first).min(PANEL);
            for (i, row) in w.chunks_exact_mut(self.outputs.max(1)).enumerate() {
                let packed = &self.data[panel_at + i * width..][..columns];
                row[first..first + columns].copy_from_slice(packed);
            }
            panel_at += self.inputs * width;
        }
        w
    }

    /// `out = act(x · w + bias (+ residual))` (or the bare product without `finish`) on the
    /// calling thread, for `rows` rows of `x` (`inputs` values each, `x_stride` apart) into
    /// rows of `out` (`outputs` values, `out_stride` apart).
    ///
    /// # Safety
    /// Every row of `x` and `out` so described must be inside one live allocation that nothing
    /// else writes (or, for `out`, reads) meanwhile; `finish`'s bias holds `outputs` values and
    /// its residual, if any, the same rows as `out`. (The CPU runs the kernel: `self` exists.)
    pub unsafe fn multiply_finishing(
        &self,
        rows: usize,
        x: *const f32,
        x_stride: usize,
        out: *mut f32,
        out_stride: usize,
        finish: Option<Finish>,
    ) {
        // SAFETY: `self` exists, so the CPU has AVX-512F (`new`); the rows are as the caller
        // promised.
        #[cfg(target_arch = "x86_64")]
        unsafe {
            avx512::multiply(self, rows, (x, x_stride), (out, out_stride), finish)
        };
        #[cfg(not(target_arch = "x86_64"))]
        {
            let _ = (rows, x, x_stride, out, out_stride, finish);
            unreachable!(
                "packed f32 kernels exist only on x86_64; `supported()` is false elsewhere"
            );
        }
    }
}

/// Width of the panel that starts at output column `first`.
fn panel_width(outputs: usize, first: usize) -> usize {
    (outputs - first).min(PANEL).div_ceil(LANES) * LANES
}

#[cfg(target_arch = "x86_64")]
mod avx512 {
    use std::arch::x86_64::*;

    use super::{panel_width, Finish, PackedF32, LANES, PANEL, ROWS};
    use crate::model::tile::{first_sums, store_tile};

    /// Where a tile reads and writes: `rows` rows of `x` from `x`, of `out` from `out`, and
    /// `columns` valid columns.
    #[derive(Clone, Copy)]
    struct Tile {
        x: *const f32,
        x_stride: usize,
        out: *mut f32,
        out_stride: usize,
        columns: usize,
        finish: Option<Finish>,
    }

    /// See [`PackedF32::multiply_finishing`].
    ///
    /// # Safety
    /// The CPU has AVX-512F; the rows as [`PackedF32::multiply_finishing`] says.
    #[target_feature(enable = "avx512f")]
    pub(super) unsafe fn multiply(
        w: &PackedF32,
        rows: usize,
        (x, x_stride): (*const f32, usize),
        (out, out_stride): (*mut f32, usize),
        finish: Option<Finish>,
    ) {
        let mut panel_at = 0;
        for first_col in (0..w.outputs).step_by(PANEL) {
            let width = panel_width(w.outputs, first_col);
            // SAFETY: `panel_at` is where this panel starts in `w.data` (`inputs * width`
            // values a panel, as `new` packed them).
            let panel = unsafe { w.data.as_ptr().add(panel_at) };
            let mut r = 0;
            while r < rows {
                let take = (rows - r).min(ROWS);
                let at = r * out_stride + first_col;
                // SAFETY: row `r < rows`, column `first_col < outputs` is inside `x`, `out`,
                // the bias and the residual, and the tile's `take` rows too, as the caller
                // promised.
                unsafe {
                    let tile = Tile {
                        x: x.add(r * x_stride),
                        x_stride,
                        out: out.add(at),
                        out_stride,
                        columns: (w.outputs - first_col).min(PANEL),
                        finish: finish.map(|f| Finish {
                            bias: f.bias.add(first_col),
                            residual: match f.residual.is_null() {
                                true => f.residual,
                                false => f.residual.add(at),
                            },
                            act: f.act,
                        }),
                    };
                    dispatch(width / LANES, take, w.inputs, panel, tile);
                }
                r += take;
            }
            panel_at += w.inputs * width;
        }
    }

    /// The tile kernel for `registers` registers of columns and `rows` rows.
    ///
    /// # Safety
    /// As for [`tile`], with `R = rows` and `V = registers`.
    #[target_feature(enable = "avx512f")]
    unsafe fn dispatch(registers: usize, rows: usize, inputs: usize, panel: *const f32, t: Tile) {
        macro_rules! by_rows {
            ($v:literal) => {
                match rows {
                    6 => tile::<6, $v>(inputs, panel, t),
                    5 => tile::<5, $v>(inputs, panel, t),
                    4 => tile::<4, $v>(inputs, panel, t),
                    3 => tile::<3, $v>(inputs, panel, t),
                    2 => tile::<2, $v>(inputs, panel, t),
                    _ => tile::<1, $v>(inputs, panel, t),
                }
            };
        }
        // SAFETY: the caller's promise, for this shape.
        unsafe {
            match registers {
                4 => by_rows!(4),
                3 => by_rows!(3),
                2 => by_rows!(2),
                _ => by_rows!(1),
            }
        }
    }

    /// `R` rows × `V` registers of columns: for each input, one fused multiply-add per sum,
    /// with the row's value broadcast and the panel's `V` registers loaded once for all rows.
    ///
    /// # Safety
    /// The CPU has AVX-512F; `R` rows of `t.x` (`inputs` values each), the panel
    /// (`inputs * V * 16` values) and `R` rows of `t.out` (and of the residual) lie inside
    /// their allocations.
    #[target_feature(enable = "avx512f")]
    #[inline]
    unsafe fn tile<const R: usize, const V: usize>(inputs: usize, panel: *const f32, t: Tile) {
        // SAFETY: every offset below stays inside what the caller vouched for: input
        // `i < inputs` of row `r < R`, register `v < V` of the panel's row `i`.
        unsafe {
            let mut sums = first_sums::<R, V>(t.finish, t.columns);
            for i in 0..inputs {
                let w = panel.add(i * V * LANES);
                let mut weights = [_mm512_setzero_ps(); V];
                for (v, reg) in weights.iter_mut().enumerate() {
                    *reg = _mm512_loadu_ps(w.add(v * LANES));
                }
                for (r, row_sums) in sums.iter_mut().enumerate() {
                    let value = _mm512_set1_ps(*t.x.add(r * t.x_stride + i));
                    for (s, reg) in row_sums.iter_mut().zip(&weights) {
                        *s = _mm512_fmadd_ps(value, *reg, *s);
                    }
                }
            }
            store_tile(&sums, t.out, t.out_stride, t.columns, t.finish);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::test_noise as noise;
    use crate::model::tile::Activation;

    /// Every way the kernel splits a product (row tails, column tails inside and across
    /// panels, one input) against an f64 product, with and without finishing; nothing
    /// outside the product's columns is written.
    #[test]
    fn products_and_finished_products_match_f64() {
        let test = "packed_f32::tests::products_and_finished_products_match_f64";
        if !crate::model::test_runs_on_this_cpu(supported(), test, "AVX-512F") {
            return;
        }
        let shapes = [
            (1, 1, 1),
            (7, 3, 17),
            (13, 27, 32),
            (50, 144, 24),
            (61, 40, 240),
            (5, 1280, 1000),
        ];
        for (seed, &(rows, inputs, outputs)) in shapes.iter().enumerate() {
            let x = noise(seed as u64, rows * inputs);
            let w = noise(100 + seed as u64, inputs * outputs);
            let bias = noise(200 + seed as u64, outputs);
            let stride = outputs + 3;
            let residual = noise(300 + seed as u64, rows * stride);
            let packed = PackedF32::new(&w, inputs, outputs).expect("the CPU has AVX-512");
            let mut plain = vec![f32::MAX; rows * stride];
            let mut finished = vec![f32::MAX; rows * stride];
            let finish = Finish {
                bias: bias.as_ptr(),
                residual: residual.as_ptr(),
                act: Activation::Relu6,
            };
            // SAFETY: the CPU runs the kernel (checked above); x has rows × inputs values,
            // the outputs and the residual rows × stride, and the bias `outputs`.
            unsafe {
                let x = x.as_ptr();
                packed.multiply_finishing(rows, x, inputs, plain.as_mut_ptr(), stride, None);
                let out = finished.as_mut_ptr();
                packed.multiply_finishing(rows, x, inputs, out, stride, Some(finish));
            }
            for r in 0..rows {
                for (o, b) in bias.iter().enumerate() {
                    let exact: f64 = (0..inputs)
                        .map(|i| x[r * inputs + i] as f64 * w[i * outputs + o] as f64)
                        .sum();
                    let at = r * stride + o;
                    let shape = (rows, inputs, outputs);
                    assert!(
                        (plain[at] as f64 - exact).abs() < 1e-4,
                        "{shape:?} [{r},{o}]"
                    );
                    // The finished sums start from the bias, so they are checked against the
                    // exact value too rather than against `plain` finished afterwards.
                    let expected = (exact + *b as f64 + residual[at] as f64).clamp(0.0, 6.0);
                    assert!(
                        (finished[at] as f64 - expected).abs() < 1e-4,
                        "{shape:?} [{r},{o}]"
                    );
                }
                let beyond = r * stride + outputs..(r + 1) * stride;
                assert!(plain[beyond.clone()].iter().all(|v| *v == f32::MAX));
                assert!(finished[beyond].iter().all(|v| *v == f32::MAX));
            }
        }
    }
}
