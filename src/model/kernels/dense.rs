//! Dense products over rows. A 1×1 convolution on NHWC pixels (or a fully connected layer) is
//! one matrix product per band of rows, each band on a thread of its own, through [`Matrix`]:
//! weights packed at load for the bf16 or the AVX-512 f32 kernel ([`crate::model::bf16`],
//! [`crate::model::packed_f32`]), or `gemm` on CPUs without AVX-512. The sums are finished
//! (started from the bias; residual, ReLU6) in registers, or in a pass while they are in cache.
//! [`dense_in_pieces`] cuts a layer by output columns instead, for so few rows that a split by
//! rows would leave threads without work, and [`Weights::parts`] cuts a packed matrix for it.

use std::ops::Range;

use rayon::prelude::*;

use super::threads::{min_tasks, output_buffer, threads};
use crate::model::bf16::PackedBf16;
use crate::model::packed_f32::PackedF32;
use crate::model::tile::{finish_rows, Activation, Finish};
use crate::model::Precision;

/// A dense layer over rows: `out[r, o] = act(sum_i x[r, i] * w[i, o] + bias[o] (+ residual[r, o]))`.
///
/// `w` is `[inputs, outputs]`. This is a 1×1 convolution when the rows are NHWC pixels.
pub fn dense(
    x: &[f32],
    rows: usize,
    w: Matrix,
    bias: &[f32],
    act: Activation,
    residual: Option<&[f32]>,
) -> Vec<f32> {
    let outputs = bias.len();
    let inputs = w.inputs(outputs);
    assert_eq!(x.len(), rows * inputs, "dense: input is not rows × inputs");
    w.check(inputs, outputs);
    if let Some(res) = residual {
        assert_eq!(res.len(), rows * outputs, "dense: residual shape");
    }
    let mut out = output_buffer(rows * outputs);
    if outputs == 0 {
        return out;
    }
    // Each task multiplies a band of rows on one thread and finishes them (bias, residual,
    // activation) while they are still in cache: one parallel region per layer, where gemm's
    // own threading would need a second pass and a second round of waking threads.
    let band = rows.div_ceil(threads()).max(MIN_ROWS_PER_TASK);
    out.par_chunks_mut(band * outputs)
        .with_min_len(min_tasks())
        .enumerate()
        .for_each(|(task, out_band)| {
            let first = task * band;
            let band_rows = out_band.len() / outputs;
            let x_band = &x[first * inputs..][..band_rows * inputs];
            let residual = residual.map(|r| &r[first * outputs..][..band_rows * outputs]);
            let finish = Finishing {
                bias,
                residual,
                act,
            };
            multiply(x_band, w, out_band, (band_rows, inputs), finish);
        });
    out
}

/// [`dense`] for a layer cut by output columns into `pieces`, each multiplied on a thread of
/// its own: for so few rows that a split by rows would leave threads without work.
pub fn dense_in_pieces(x: &[f32], rows: usize, pieces: &[Pointwise], act: Activation) -> Vec<f32> {
    let outputs: usize = pieces.iter().map(|p| p.bias.len()).sum();
    let columns: Vec<Vec<f32>> = pieces
        .par_iter()
        .with_max_len(1)
        .map(|piece| {
            let mut out = vec![0.0; rows * piece.bias.len()];
            let inputs = piece.w.inputs(piece.bias.len());
            let finish = Finishing {
                bias: piece.bias,
                residual: None,
                act,
            };
            multiply(x, piece.w, &mut out, (rows, inputs), finish);
            out
        })
        .collect();
    let mut out = Vec::with_capacity(rows * outputs);
    for row in 0..rows {
        for (piece, piece_out) in pieces.iter().zip(&columns) {
            let width = piece.bias.len();
            out.extend_from_slice(&piece_out[row * width..][..width]);
        }
    }
    out
}

/// Fewer rows than this per task, and splitting costs more than it saves.
const MIN_ROWS_PER_TASK: usize = 16;

/// A weight matrix `[inputs, outputs]` as the products read it: f32 row-major (for `gemm`),
/// packed for the AVX-512 f32 kernel, or rounded to bf16 and packed for the bf16 kernel.
#[derive(Clone, Copy)]
pub enum Matrix<'a> {
    F32(&'a [f32]),
    PackedF32(&'a PackedF32),
    Bf16(&'a PackedBf16),
}

impl Matrix<'_> {
    /// Inputs of a matrix with `outputs` columns.
    pub fn inputs(&self, outputs: usize) -> usize {
        match self {
            Matrix::F32(w) => w.len() / outputs.max(1),
            Matrix::PackedF32(packed) => packed.inputs(),
            Matrix::Bf16(packed) => packed.inputs(),
        }
    }

    /// Panics unless the matrix is `inputs × outputs` (a bug in the model, never user input).
    pub(super) fn check(&self, inputs: usize, outputs: usize) {
        match self {
            Matrix::F32(w) => assert_eq!(w.len(), inputs * outputs, "weight shape"),
            Matrix::PackedF32(p) => assert_eq!((p.inputs(), p.outputs()), (inputs, outputs)),
            Matrix::Bf16(p) => assert_eq!((p.inputs(), p.outputs()), (inputs, outputs)),
        }
    }

    /// See [`multiply_strided`]; the matrix is `inputs × outputs`.
    ///
    /// # Safety
    /// As for [`multiply_strided`], and `inputs × outputs` must be this matrix's shape.
    #[allow(clippy::too_many_arguments)]
    pub(crate) unsafe fn multiply_strided(
        &self,
        rows: usize,
        inputs: usize,
        outputs: usize,
        x: *const f32,
        x_stride: usize,
        out: *mut f32,
        out_stride: usize,
    ) {
        // SAFETY: the caller's promise, and `w` is `inputs × outputs`; a packed matrix exists
        // only where the CPU runs its kernel (its `new` checks).
        unsafe {
            match self {
                Matrix::F32(w) => multiply_strided(
                    rows,
                    inputs,
                    outputs,
                    x,
                    x_stride,
                    w.as_ptr(),
                    out,
                    out_stride,
                ),
                Matrix::PackedF32(packed) => {
                    packed.multiply_finishing(rows, x, x_stride, out, out_stride, None)
                }
                Matrix::Bf16(packed) => packed.multiply_strided(rows, x, x_stride, out, out_stride),
            }
        }
    }
}

/// A weight matrix owned by a model, in the precision it was loaded for.
pub enum Weights {
    F32(Vec<f32>),
    PackedF32(PackedF32),
    Bf16(PackedBf16),
}

impl Weights {
    /// `w` (`[inputs, outputs]`, row-major) in `precision`, which must be resolved
    /// (see [`Precision::resolve`]): bf16 only where the CPU runs it, and f32 packed for the
    /// AVX-512 kernel where the CPU has that.
    pub fn new(w: Vec<f32>, inputs: usize, outputs: usize, precision: Precision) -> Self {
        // Each packed form is made only where the CPU runs it (`None` elsewhere).
        let bf16 = match precision {
            Precision::Bf16 => PackedBf16::new(&w, inputs, outputs).map(Weights::Bf16),
            _ => None,
        };
        bf16.or_else(|| PackedF32::new(&w, inputs, outputs).map(Weights::PackedF32))
            .unwrap_or(Weights::F32(w))
    }

    /// Blocks of this matrix of `columns` columns, each given as its rows and its columns, as
    /// matrices of their own in the same precision, with the same values.
    pub fn parts(
        &self,
        columns: usize,
        blocks: impl IntoIterator<Item = (Range<usize>, Range<usize>)>,
    ) -> Vec<Weights> {
        let (all, precision) = match self {
            Weights::F32(w) => (std::borrow::Cow::Borrowed(w), Precision::F32),
            Weights::PackedF32(p) => (std::borrow::Cow::Owned(p.unpack()), Precision::F32),
            Weights::Bf16(p) => (std::borrow::Cow::Owned(p.unpack()), Precision::Bf16),
        };
        let part = |(inputs, outputs): (Range<usize>, Range<usize>)| {
            let rows = all.chunks_exact(columns.max(1)).skip(inputs.start);
            let values = rows
                .take(inputs.len())
                .flat_map(|row| &row[outputs.clone()]);
            let values: Vec<f32> = values.copied().collect();
            Weights::new(values, inputs.len(), outputs.len(), precision)
        };
        blocks.into_iter().map(part).collect()
    }

    pub fn matrix(&self) -> Matrix<'_> {
        match self {
            Weights::F32(w) => Matrix::F32(w),
            Weights::PackedF32(packed) => Matrix::PackedF32(packed),
            Weights::Bf16(packed) => Matrix::Bf16(packed),
        }
    }
}

/// What follows a product: `out = act(out + bias (+ residual))`, `residual` being as large
/// as `out`.
#[derive(Clone, Copy)]
pub(super) struct Finishing<'a> {
    pub(super) bias: &'a [f32],
    pub(super) residual: Option<&'a [f32]>,
    pub(super) act: Activation,
}

impl Finishing<'_> {
    /// The same, for a kernel that finishes in registers.
    fn registers(&self) -> Finish {
        Finish {
            bias: self.bias.as_ptr(),
            residual: self.residual.map_or(std::ptr::null(), <[f32]>::as_ptr),
            act: self.act,
        }
    }
}

/// `out = act(x · w + bias (+ residual))` on the calling thread, for row-major `x` (rows ×
/// inputs), `w` (inputs × outputs) and `out` (rows × outputs). The bf16 kernel finishes the
/// sums in registers; the f32 one in a second pass while `out` is in cache.
pub(super) fn multiply(
    x: &[f32],
    w: Matrix,
    out: &mut [f32],
    (rows, inputs): (usize, usize),
    f: Finishing,
) {
    let outputs = f.bias.len();
    assert_eq!(x.len(), rows * inputs);
    w.check(inputs, outputs);
    assert_eq!(out.len(), rows * outputs);
    assert!(f.residual.is_none_or(|r| r.len() == out.len()));
    if rows == 0 || inputs == 0 {
        out.fill(0.0);
        finish_rows(out, f.bias, f.residual, f.act);
        return;
    }
    let (x, out_at) = (x.as_ptr(), out.as_mut_ptr());
    // SAFETY: the asserts above prove that every index read or written is inside `x`, `w`,
    // `out` and the residual, with the shapes and row strides passed here.
    unsafe {
        match w {
            Matrix::Bf16(packed) => {
                packed.multiply_finishing(rows, x, inputs, out_at, outputs, Some(f.registers()));
            }
            Matrix::PackedF32(packed) => {
                packed.multiply_finishing(rows, x, inputs, out_at, outputs, Some(f.registers()));
            }
            Matrix::F32(_) => {
                w.multiply_strided(rows, inputs, outputs, x, inputs, out_at, outputs);
                finish_rows(out, f.bias, f.residual, f.act);
            }
        }
    }
}

/// [`multiply`] for rows of `x` already rounded to bf16 pairs (`inputs / 2` a row), by a
/// bf16 matrix.
pub(super) fn multiply_rounded(
    x: &[u32],
    w: Matrix,
    out: &mut [f32],
    (rows, inputs): (usize, usize),
    f: Finishing,
) {
    let Matrix::Bf16(packed) = w else {
        unreachable!("rounded rows go with bf16 matrices");
    };
    let outputs = f.bias.len();
    assert!(inputs.is_multiple_of(2) && x.len() == rows * inputs / 2);
    w.check(inputs, outputs);
    assert_eq!(out.len(), rows * outputs);
    assert!(f.residual.is_none_or(|r| r.len() == out.len()));
    // SAFETY: the asserts above prove that every index read or written is inside `x`, `w`,
    // `out` and the residual, with the shapes and row strides passed here; a bf16 matrix
    // exists only where the CPU runs it.
    unsafe {
        let (x, out) = (x.as_ptr(), out.as_mut_ptr());
        packed.multiply_rounded(rows, x, inputs / 2, out, outputs, Some(f.registers()));
    }
}

/// `out = x · w` on the calling thread, where row `r` of `x` (`inputs` values) starts at
/// `x + r * x_stride` and row `r` of `out` (`outputs` values) at `out + r * out_stride`, and
/// `w` is a contiguous row-major `inputs × outputs`.
///
/// # Safety
/// Every row of `x`, `w` and `out` so described must be inside one live allocation, and
/// nothing else may read or write `out`'s rows meanwhile.
#[allow(clippy::too_many_arguments)]
pub(crate) unsafe fn multiply_strided(
    rows: usize,
    inputs: usize,
    outputs: usize,
    x: *const f32,
    x_stride: usize,
    w: *const f32,
    out: *mut f32,
    out_stride: usize,
) {
    // gemm takes (column stride, row stride) pairs, and `out = alpha · out + beta · x · w`:
    // alpha 0 with `read_dst` false overwrites `out` without reading it.
    // SAFETY: the rows so described are inside their allocations, as the caller promised.
    unsafe {
        gemm::gemm(
            rows,
            outputs,
            inputs,
            out,
            1,
            out_stride as isize,
            false,
            x,
            1,
            x_stride as isize,
            w,
            1,
            outputs as isize,
            0.0,
            1.0,
            false,
            false,
            false,
            gemm::Parallelism::None,
        )
    };
}

/// The weights of one 1×1 convolution: `w` is `[inputs, outputs]` and `bias` `[outputs]`.
#[derive(Clone, Copy)]
pub struct Pointwise<'a> {
    pub w: Matrix<'a>,
    pub bias: &'a [f32],
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dense_adds_bias_residual_and_clamps() {
        // x = [[1, 2]], w = [[1, 0, 10], [0, 1, 10]] → [1, 2, 30] + bias [0.5, -5, 0] + res [1, 1, 1]
        let out = dense(
            &[1.0, 2.0],
            1,
            Matrix::F32(&[1.0, 0.0, 10.0, 0.0, 1.0, 10.0]),
            &[0.5, -5.0, 0.0],
            Activation::Relu6,
            Some(&[1.0, 1.0, 1.0]),
        );
        assert_eq!(out, vec![2.5, 0.0, 6.0]);
    }
}
