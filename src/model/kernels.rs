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

use std::ops::Range;

use rayon::prelude::*;

use super::bf16::{self, PackedBf16};
use super::packed_f32::PackedF32;
use super::Precision;

thread_local! {
    /// Set while a caller runs a whole network on this thread (see [`on_this_thread`]).
    static ON_THIS_THREAD: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

/// Runs `work` with every kernel it calls kept on the calling thread: for callers that
/// spread whole images over the threads instead, so that no layer waits for the others.
pub fn on_this_thread<R>(work: impl FnOnce() -> R) -> R {
    let before = ON_THIS_THREAD.replace(true);
    let result = work();
    ON_THIS_THREAD.set(before);
    result
}

/// Threads a kernel may split its work over.
pub fn threads() -> usize {
    match ON_THIS_THREAD.get() {
        true => 1,
        false => rayon::current_num_threads(),
    }
}

/// The fewest items a parallel loop hands each task: all of them (no splitting) on a thread
/// that runs alone.
pub(crate) fn min_tasks() -> usize {
    match ON_THIS_THREAD.get() {
        true => usize::MAX,
        false => 1,
    }
}

thread_local! {
    /// Vectors given back by a network between layers, for the next layer's output.
    static SPARE: std::cell::RefCell<Vec<Vec<f32>>> = const { std::cell::RefCell::new(Vec::new()) };
}

/// How many spare vectors a thread keeps: enough for every layer's output and the pieces' sums
/// of Lite0 on a single image, which with 12 made their 37 KB and 63 KB vectors anew for
/// every image.
const SPARES: usize = 24;

/// A vector of `len` values for a kernel that writes every one of them: a spare of that
/// length (with its old values, which the kernel overwrites), otherwise a new one. Zeroing a
/// new vector for every layer cost 5% of a Lite0 image. Only a spare of the same length will
/// do: a network asks for the same lengths image after image, and a longer spare shortened
/// for a shorter layer can never be lengthened again without zeroing the added part, so the
/// longer layer it was made for would make a new one, image after image (measured: Lite0's
/// 800 KB stem output, made anew for 4 images in 5 at batch 1 on 2 threads, 32 µs each).
pub(crate) fn output_buffer(len: usize) -> Vec<f32> {
    let spare = SPARE.with(|spare| {
        let mut spare = spare.borrow_mut();
        let same = spare.iter().position(|v| v.len() == len);
        same.map(|i| spare.swap_remove(i))
    });
    spare.unwrap_or_else(|| vec![0.0; len])
}

/// Gives a layer's input back once the next layer has used it, for [`output_buffer`].
pub fn give_back(v: Vec<f32>) {
    SPARE.with(|spare| {
        let mut spare = spare.borrow_mut();
        spare.push(v);
        // Keep the longest: they serve every layer.
        if spare.len() > SPARES {
            let shortest = (0..spare.len()).min_by_key(|&i| spare[i].len());
            shortest.map(|i| spare.remove(i));
        }
    });
}

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

/// Output size and leading padding of a TF "SAME" convolution along one axis.
/// The trailing padding is whatever is left; for stride 2 it is the larger one, as in TF.
pub fn same_padding(input: usize, kernel: usize, stride: usize) -> (usize, usize) {
    let output = input.div_ceil(stride);
    let total = ((output - 1) * stride + kernel).saturating_sub(input);
    (output, total / 2)
}

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
    fn check(&self, inputs: usize, outputs: usize) {
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
struct Finishing<'a> {
    bias: &'a [f32],
    residual: Option<&'a [f32]>,
    act: Activation,
}

impl Finishing<'_> {
    /// The same, for a kernel that finishes in registers.
    fn registers(&self) -> bf16::Finish {
        bf16::Finish {
            bias: self.bias.as_ptr(),
            residual: self.residual.map_or(std::ptr::null(), <[f32]>::as_ptr),
            act: self.act,
        }
    }
}

/// `out = act(x · w + bias (+ residual))` on the calling thread, for row-major `x` (rows ×
/// inputs), `w` (inputs × outputs) and `out` (rows × outputs). The bf16 kernel finishes the
/// sums in registers; the f32 one in a second pass while `out` is in cache.
fn multiply(x: &[f32], w: Matrix, out: &mut [f32], (rows, inputs): (usize, usize), f: Finishing) {
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
fn multiply_rounded(
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

/// `out = act(out + bias (+ residual))`, where `out` (and `residual`, the same size) hold whole
/// rows of `bias.len()` values. Compiled for AVX-512 too, and run so where the CPU has it: the
/// crate's baseline is SSE2, which does four values an instruction.
fn finish_rows(out: &mut [f32], bias: &[f32], residual: Option<&[f32]>, act: Activation) {
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
fn depthwise_row_kernel() -> DepthwiseRow {
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

/// `$body` once for each literal, with `$name` a constant equal to it: a loop unrolled in full,
/// so that every register the body names is known when compiling. Left to the optimiser, the
/// 19 columns of the 5×5 stride-2 kernel's edge groups stayed a loop, its weights went to the
/// stack, and that layer ran at a third of the speed of the others.
#[cfg(target_arch = "x86_64")]
macro_rules! unrolled {
    ($name:ident in [$($n:literal),*] $body:block) => {
        $( { const $name: usize = $n; $body } )*
    };
}

/// The depthwise kernel in AVX-512 intrinsics, eight neighbouring pixels at a time (four at
/// a row's end), sliding along the row: for each kernel row, each input pixel the group reads
/// is loaded once and multiplied into every pixel whose window holds it (10 loads for 24
/// multiply-adds with a 3×3 kernel at stride 1, where [`depthwise_quad`] loads 12 and 3
/// weights for 12), and each weight once. Eight pixels measured faster than four, whose
/// loads kept the multiply-adds waiting. Columns outside the image are skipped, so pixels at
/// the edges take the same path.
#[cfg(target_arch = "x86_64")]
mod sliding {
    use std::arch::x86_64::*;

    use super::{Activation, ConvGeometry};

    /// Pixels a group computes, and the smaller group that finishes a row when that is
    /// enough: a whole group there would compute pixels past the row's end for nothing.
    const WIDE: usize = 8;
    const NARROW: usize = 4;
    // The unrolled loops in `pixels_at` list 8 pixels and the 19 columns they reach at most
    // (a 5×5 kernel at stride 2).
    const _: () = assert!(NARROW <= WIDE && WIDE <= 8 && (WIDE - 1) * 2 + 5 <= 19);

    /// Whether the sliding kernel takes this shape.
    pub(super) fn runs(g: &ConvGeometry) -> bool {
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
    pub(super) unsafe fn row_bf16(
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
                (3, 1, true) => {
                    pixels_at::<3, 1, false, P, BF16>(layer, taps, first, count, pixels)
                }
                (3, 1, false) => {
                    pixels_at::<3, 1, true, P, BF16>(layer, taps, first, count, pixels)
                }
                (3, 2, true) => {
                    pixels_at::<3, 2, false, P, BF16>(layer, taps, first, count, pixels)
                }
                (3, 2, false) => {
                    pixels_at::<3, 2, true, P, BF16>(layer, taps, first, count, pixels)
                }
                (5, 1, true) => {
                    pixels_at::<5, 1, false, P, BF16>(layer, taps, first, count, pixels)
                }
                (5, 1, false) => {
                    pixels_at::<5, 1, true, P, BF16>(layer, taps, first, count, pixels)
                }
                (_, _, true) => {
                    pixels_at::<5, 2, false, P, BF16>(layer, taps, first, count, pixels)
                }
                (_, _, false) => {
                    pixels_at::<5, 2, true, P, BF16>(layer, taps, first, count, pixels)
                }
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
                        let rounded =
                            std::mem::transmute::<__m256bh, __m256i>(_mm512_cvtneps_pbh(v));
                        _mm256_storeu_si256(pixels.add(2 * at) as *mut __m256i, rounded);
                    }
                    false => _mm512_storeu_ps(pixels.add(4 * at) as *mut f32, v),
                }
            }
        }
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
const MAX_TAPS: usize = 49;

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
fn inner_taps(g: &ConvGeometry, oy: usize, taps: &mut [(usize, usize); MAX_TAPS]) -> usize {
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

/// The weights of one 1×1 convolution: `w` is `[inputs, outputs]` and `bias` `[outputs]`.
#[derive(Clone, Copy)]
pub struct Pointwise<'a> {
    pub w: Matrix<'a>,
    pub bias: &'a [f32],
}

/// The weights of one depthwise convolution: `w` is `[kernel, kernel, channels]` and `bias`
/// `[channels]`. They stay f32: the depthwise kernel reads each weight for a handful of
/// products only, so packing it to bf16 would save nothing.
#[derive(Clone, Copy)]
pub struct Depthwise<'a> {
    pub w: &'a [f32],
    pub bias: &'a [f32],
}

/// How a block makes the rows its depthwise convolution reads, from the block's input.
#[derive(Clone, Copy)]
pub enum Expansion<'a> {
    /// A 1×1 convolution with ReLU6 (MBConv's expansion).
    Pointwise(Pointwise<'a>),
    /// A k×k convolution with ReLU6 of geometry `conv`, whose output is the depthwise
    /// convolution's input: the network's stem, fused into a first block that has no
    /// expansion of its own, so that neither the stem's output nor its im2col rows (each
    /// over a megabyte at 112×112) go through main memory.
    Conv {
        w: Matrix<'a>,
        bias: &'a [f32],
        conv: ConvGeometry,
    },
}

impl Expansion<'_> {
    /// Values per pixel of the block's input.
    fn input_channels(&self, hidden: usize) -> usize {
        match self {
            Expansion::Pointwise(p) => p.w.inputs(hidden),
            Expansion::Conv { conv, .. } => conv.channels,
        }
    }

    /// Values of one image of the block's input, whose depthwise input is `g`'s.
    fn image_len(&self, g: &ConvGeometry) -> usize {
        match self {
            Expansion::Pointwise(_) => g.height * g.width * self.input_channels(g.channels),
            Expansion::Conv { conv, .. } => conv.height * conv.width * conv.channels,
        }
    }
}

/// One inverted-residual block (MobileNet's and EfficientNet's MBConv): a 1×1 expansion with
/// ReLU6 (or a convolution, see [`Expansion`]), a depthwise k×k convolution with ReLU6, a 1×1
/// projection, and the input added back when `skip`. `g` is the depthwise convolution's
/// geometry (its channels are the expanded ones).
///
/// Computed band by band of output rows, each thread on its own rows: the expanded rows a band
/// needs are made just before the depthwise kernel reads them and the depthwise output goes
/// straight into the projection, so the expanded activation, six times wider than the input,
/// never travels through main memory. Rows shared with the previous band are kept, not
/// recomputed. The result is the same as running the three layers one after another.
pub fn inverted_residual(
    x: &[f32],
    g: &ConvGeometry,
    expand: Expansion,
    depthwise: Depthwise,
    project: Pointwise,
    skip: bool,
) -> Vec<f32> {
    let layers = BlockLayers {
        expand,
        depthwise,
        project,
        skip,
    };
    check_block_shapes(x, g, &layers);
    let outputs = project.bias.len();
    let image_len = expand.image_len(g);
    let out_row_len = g.out_width * outputs;
    let mut out = output_buffer(g.batch * g.out_height * out_row_len);
    if out.is_empty() {
        return out;
    }
    // Split each image's output rows so that every thread has one range.
    let ranges_per_image = threads().div_ceil(g.batch).max(1);
    let range_rows = g.out_height.div_ceil(ranges_per_image);
    out.par_chunks_mut(g.out_height * out_row_len)
        .with_min_len(min_tasks())
        .enumerate()
        .flat_map(|(image, image_out)| {
            image_out
                .par_chunks_mut(range_rows * out_row_len)
                .with_min_len(min_tasks())
                .enumerate()
                .map(move |(range, rows)| (image, range * range_rows, rows))
        })
        .for_each(|(image, first_row, rows)| {
            let image_x = &x[image * image_len..][..image_len];
            BAND_SCRATCH.with(|scratch| {
                let mut scratch = scratch.borrow_mut();
                block_rows(image_x, g, &layers, first_row, rows, &mut scratch);
            });
        });
    out
}

/// One piece of an inverted-residual block: the weights of a range of its expanded channels
/// (see [`inverted_residual_in_pieces`]). Its projection is the rows of those channels.
#[derive(Clone, Copy)]
pub struct BlockPiece<'a> {
    pub expand: Pointwise<'a>,
    pub depthwise: Depthwise<'a>,
    pub project: Matrix<'a>,
}

/// [`inverted_residual`] for an image whose expanded channels are cut into `pieces`, one for
/// each thread: each thread expands every pixel for its piece's channels, runs the depthwise
/// convolution on them and projects them, and the projections are added up. So no thread
/// waits for another, none expands a row twice, and the work is shared out evenly, where a
/// split by rows cannot on a small image (on 7 rows of 7, one thread would make 4 output rows
/// and, for a 5×5 kernel, expand 6 input rows). `project_bias` is the whole projection's;
/// `g` is the whole block's depthwise geometry.
pub fn inverted_residual_in_pieces(
    x: &[f32],
    g: &ConvGeometry,
    pieces: &[BlockPiece],
    project_bias: &[f32],
    skip: bool,
) -> Vec<f32> {
    let hidden: usize = pieces.iter().map(|p| p.depthwise.bias.len()).sum();
    assert_eq!(hidden, g.channels, "inverted_residual_in_pieces: pieces");
    let outputs = project_bias.len();
    let out_len = g.out_height * g.out_width * outputs;
    let mut out = output_buffer(g.batch * out_len);
    let Some(first) = pieces.first() else {
        return out;
    };
    let inputs = first.expand.w.inputs(first.expand.bias.len());
    let image_len = g.height * g.width * inputs;
    if out.is_empty() || image_len == 0 {
        return out;
    }
    assert_eq!(
        x.len(),
        g.batch * image_len,
        "inverted_residual: input shape"
    );
    let mut sums = output_buffer((pieces.len() - 1) * out_len);
    let no_bias = vec![0.0; outputs];
    for (image_x, image_out) in x.chunks_exact(image_len).zip(out.chunks_exact_mut(out_len)) {
        // The first piece's projection writes the output, with the bias and the input added
        // back; the others' go to `sums`, and are added to it after.
        let targets = std::iter::once(&mut *image_out).chain(sums.chunks_exact_mut(out_len));
        let targets: Vec<&mut [f32]> = targets.collect();
        targets
            .into_par_iter()
            .zip(pieces)
            .enumerate()
            .for_each(|(i, (target, piece))| {
                let bias = if i == 0 { project_bias } else { &no_bias };
                piece_rows(image_x, g, piece, (bias, skip && i == 0), target);
            });
        for piece_sums in sums.chunks_exact(out_len) {
            image_out
                .iter_mut()
                .zip(piece_sums)
                .for_each(|(o, s)| *o += s);
        }
    }
    give_back(sums);
    out
}

/// One image's block output from one piece of its channels, into `out`: the projection of
/// the piece's channels, plus `bias` and, with `skip`, the input.
fn piece_rows(
    image_x: &[f32],
    g: &ConvGeometry,
    piece: &BlockPiece,
    (bias, skip): (&[f32], bool),
    out: &mut [f32],
) {
    let layers = BlockLayers {
        expand: Expansion::Pointwise(piece.expand),
        depthwise: piece.depthwise,
        project: Pointwise {
            w: piece.project,
            bias,
        },
        skip,
    };
    let piece_g = ConvGeometry {
        batch: 1,
        channels: piece.depthwise.bias.len(),
        ..*g
    };
    check_block_shapes(image_x, &piece_g, &layers);
    BAND_SCRATCH.with(|scratch| {
        let mut scratch = scratch.borrow_mut();
        block_rows(image_x, &piece_g, &layers, 0, out, &mut scratch);
    });
}

struct BlockLayers<'a> {
    expand: Expansion<'a>,
    depthwise: Depthwise<'a>,
    project: Pointwise<'a>,
    skip: bool,
}

/// Panics with a clear message when the block's weights do not fit `x` and `g` (a bug in the
/// model, never user input).
fn check_block_shapes(x: &[f32], g: &ConvGeometry, layers: &BlockLayers) {
    let (hidden, outputs) = (g.channels, layers.project.bias.len());
    let inputs = layers.expand.input_channels(hidden);
    assert_eq!(
        x.len(),
        g.batch * layers.expand.image_len(g),
        "inverted_residual: input shape"
    );
    match layers.expand {
        Expansion::Pointwise(p) => {
            assert_eq!(p.bias.len(), hidden, "inverted_residual: expansion shape");
            p.w.check(inputs, hidden);
        }
        Expansion::Conv { w, bias, conv } => {
            assert_eq!(bias.len(), hidden, "inverted_residual: expansion shape");
            w.check(conv.kernel * conv.kernel * inputs, hidden);
            let output = (conv.batch, conv.out_height, conv.out_width);
            assert_eq!(
                output,
                (g.batch, g.height, g.width),
                "inverted_residual: conv shape"
            );
            assert!(!layers.skip, "inverted_residual: a skip needs equal shapes");
        }
    }
    assert_eq!(layers.depthwise.w.len(), g.kernel * g.kernel * hidden);
    layers.project.w.check(hidden, outputs);
    assert!(
        g.kernel * g.kernel <= MAX_TAPS,
        "depthwise: kernel too large"
    );
    let same_shape = g.stride == 1 && inputs == outputs;
    assert!(
        !layers.skip || same_shape,
        "inverted_residual: a skip needs equal shapes"
    );
}

/// A thread's reusable buffers for [`inverted_residual`]: expanded input rows, and one band of
/// depthwise output, in f32 or rounded to bf16 for a bf16 projection (and the im2col rows of
/// an [`Expansion::Conv`]). They only grow, and `expanded_len` says how much is in use, so
/// that a block after a smaller one does not zero them again.
#[derive(Default)]
struct BandScratch {
    columns: Vec<f32>,
    expanded: Vec<f32>,
    expanded_len: usize,
    spread: Vec<f32>,
    rounded_spread: Vec<u32>,
}

/// Makes `v` hold at least `len` values.
fn grow(v: &mut Vec<f32>, len: usize) {
    if v.len() < len {
        v.resize(len, 0.0);
    }
}

thread_local! {
    static BAND_SCRATCH: std::cell::RefCell<BandScratch> =
        std::cell::RefCell::new(BandScratch::default());
}

/// About how many bytes of expanded rows a band works on: well inside a core's L2 cache.
const BAND_BYTES: usize = 384 * 1024;

/// Whether the depthwise output goes to the projection rounded to bf16 already: where the
/// projection is bf16 and the sliding kernel, which rounds as it stores, takes the shape.
fn rounds_spread(g: &ConvGeometry, layers: &BlockLayers) -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        matches!(layers.project.w, Matrix::Bf16(_))
            && std::arch::is_x86_feature_detected!("avx512f")
            && sliding::runs(g)
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        let _ = (g, layers);
        false
    }
}

/// Output rows `first_row..` of one image (as many as `out` holds), band by band.
fn block_rows(
    image_x: &[f32],
    g: &ConvGeometry,
    layers: &BlockLayers,
    first_row: usize,
    out: &mut [f32],
    scratch: &mut BandScratch,
) {
    let (hidden, inputs) = (g.channels, layers.expand.input_channels(g.channels));
    let outputs = layers.project.bias.len();
    let in_row = g.width * hidden; // one expanded input row
    let out_row = g.out_width * outputs;
    let end_row = first_row + out.len() / out_row;
    let band = (BAND_BYTES / (4 * g.stride * in_row).max(1)).max(1);
    let rounds = rounds_spread(g, layers);
    let mut have = 0..0; // input rows held in `scratch.expanded`
    let mut start = first_row;
    while start < end_row {
        let stop = (start + band).min(end_row);
        // Input rows this band reads, without the padding.
        let needed_from = (start * g.stride).saturating_sub(g.pad_top);
        let needed_to = ((stop - 1) * g.stride + g.kernel)
            .saturating_sub(g.pad_top)
            .min(g.height);
        expand_rows(
            image_x,
            g,
            layers.expand,
            &have,
            needed_from..needed_to,
            scratch,
        );
        have = needed_from..needed_to;
        let band = (&mut *scratch, rounds);
        depthwise_band(g, layers.depthwise, needed_from, start..stop, band);
        // The projection, with the input added back.
        let pixels = (stop - start) * g.out_width;
        let band_out = &mut out[(start - first_row) * out_row..][..pixels * outputs];
        let residual = layers
            .skip
            .then(|| &image_x[start * g.width * inputs..][..pixels * inputs]);
        let finish = Finishing {
            bias: layers.project.bias,
            residual,
            act: Activation::None,
        };
        let project = layers.project.w;
        match rounds {
            true => {
                let spread = &scratch.rounded_spread[..pixels * hidden / 2];
                multiply_rounded(spread, project, band_out, (pixels, hidden), finish);
            }
            false => {
                let spread = &scratch.spread[..pixels * hidden];
                multiply(spread, project, band_out, (pixels, hidden), finish);
            }
        }
        start = stop;
    }
}

/// Fills `scratch.expanded` with the expanded input rows `needed`, keeping those of `have`
/// (the previous band's) that it still needs, and expanding the rest.
fn expand_rows(
    image_x: &[f32],
    g: &ConvGeometry,
    expand: Expansion,
    have: &std::ops::Range<usize>,
    needed: std::ops::Range<usize>,
    scratch: &mut BandScratch,
) {
    let hidden = g.channels;
    let in_row = g.width * hidden;
    let kept = match have.end > needed.start && have.start <= needed.start {
        true => have.end - needed.start,
        false => 0,
    };
    let expanded = &mut scratch.expanded;
    if kept > 0 {
        let from = (needed.start - have.start) * in_row;
        expanded.copy_within(from..from + kept * in_row, 0);
    }
    grow(expanded, needed.len() * in_row);
    scratch.expanded_len = needed.len() * in_row;
    let new_rows = needed.start + kept..needed.end;
    let new_pixels = new_rows.len() * g.width;
    let fresh = &mut scratch.expanded[kept * in_row..scratch.expanded_len];
    match expand {
        Expansion::Pointwise(p) => {
            let inputs = p.w.inputs(hidden);
            let source = &image_x[new_rows.start * g.width * inputs..][..new_pixels * inputs];
            let finish = Finishing {
                bias: p.bias,
                residual: None,
                act: Activation::Relu6,
            };
            multiply(source, p.w, fresh, (new_pixels, inputs), finish);
        }
        Expansion::Conv { w, bias, conv } => {
            let patch = conv.kernel * conv.kernel * conv.channels;
            let columns = &mut scratch.columns;
            grow(columns, new_pixels * patch);
            let row_len = conv.out_width * patch;
            for (row, columns_row) in new_rows.zip(columns.chunks_exact_mut(row_len)) {
                patch_row(image_x, &conv, row, columns_row);
            }
            let finish = Finishing {
                bias,
                residual: None,
                act: Activation::Relu6,
            };
            let columns = &columns[..new_pixels * patch];
            multiply(columns, w, fresh, (new_pixels, patch), finish);
        }
    }
}

/// The depthwise convolution of output rows `rows` from the expanded rows in `scratch`
/// (starting at input row `first_input`), into `scratch.spread`.
fn depthwise_band(
    g: &ConvGeometry,
    depthwise: Depthwise,
    first_input: usize,
    rows: std::ops::Range<usize>,
    (scratch, rounds): (&mut BandScratch, bool),
) {
    let row_kernel = depthwise_row_kernel();
    // The same geometry, shifted to the rows held.
    let sub = ConvGeometry {
        batch: 1,
        height: scratch.expanded_len / (g.width * g.channels),
        out_height: rows.len(),
        pad_top: g.pad_top + first_input - rows.start * g.stride,
        ..*g
    };
    let spread_row = g.out_width * g.channels;
    let expanded = &scratch.expanded[..scratch.expanded_len];
    #[cfg(not(target_arch = "x86_64"))]
    assert!(!rounds, "bf16 kernels exist only on x86_64");
    #[cfg(target_arch = "x86_64")]
    if rounds {
        let len = rows.len() * spread_row / 2;
        if scratch.rounded_spread.len() < len {
            scratch.rounded_spread.resize(len, 0);
        }
        let spread = &mut scratch.rounded_spread[..len];
        let weights = (depthwise.w, depthwise.bias);
        let mut taps = [(0usize, 0usize); MAX_TAPS];
        for (r, spread_out) in spread.chunks_exact_mut(spread_row / 2).enumerate() {
            let count = inner_taps(&sub, r, &mut taps);
            let (taps, act) = (&taps[..count], Activation::Relu6);
            // SAFETY: `rounds` is only set where the CPU has AVX-512F and AVX512_BF16 (a bf16
            // matrix exists) and the sliding kernel takes the shape (`rounds_spread`).
            unsafe { sliding::row_bf16(expanded, &sub, weights, act, taps, spread_out) };
        }
        return;
    }
    grow(&mut scratch.spread, rows.len() * spread_row);
    let spread = &mut scratch.spread[..rows.len() * spread_row];
    for (r, spread_out) in spread.chunks_exact_mut(spread_row).enumerate() {
        // SAFETY: `depthwise_row_kernel` only returns a variant whose CPU features were detected.
        unsafe {
            row_kernel(
                expanded,
                &sub,
                depthwise.w,
                depthwise.bias,
                Activation::Relu6,
                r,
                spread_out,
            )
        }
    }
}

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
fn patch_row(x: &[f32], g: &ConvGeometry, row: usize, out_row: &mut [f32]) {
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
    fn same_padding_matches_tensorflow() {
        // 224 → 112 with a 3×3 stride-2 kernel pads 0 before and 1 after.
        assert_eq!(same_padding(224, 3, 2), (112, 0));
        // 5×5 stride 2 on 56: total pad 3, 1 before and 2 after.
        assert_eq!(same_padding(56, 5, 2), (28, 1));
        // Stride 1 pads symmetrically.
        assert_eq!(same_padding(14, 5, 1), (14, 2));
        assert_eq!(same_padding(7, 3, 1), (7, 1));
    }

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

    #[test]
    fn max_pool_takes_the_largest_of_each_cell() {
        // 1 image, 2×2, 2 channels.
        let x = [1.0, -1.0, 5.0, -2.0, 3.0, -3.0, 4.0, -0.5];
        assert_eq!(max_pool_2x2(&x, 1, 2, 2, 2), vec![5.0, -0.5]);
    }
}
