//! 3×3 convolutions (stride 1, zero padding 1, as all of VGG16's) by Winograd's F(2×2, 3×3).
//!
//! Each 2×2 block of output pixels is computed from a 4×4 block of input with 16
//! multiplications per channel pair instead of 36: the input block and the kernel are each
//! transformed into 16 values, multiplied pointwise, and transformed back. Summed over input
//! channels, the pointwise products become 16 independent matrix products
//! (`tiles × inputs` by `inputs × outputs`), which run on the same `gemm` as every other
//! convolution. That is 2.25 times less arithmetic than im2col; the transforms are additions
//! only, and in f32 the result matches direct convolution to about 1e-6.
//!
//! Lavin and Gray, "Fast Algorithms for Convolutional Neural Networks", 2015.

// The transforms are small matrix formulas; written with indices they read like the maths.
#![allow(clippy::needless_range_loop)]

use rayon::prelude::*;

use super::bf16;
use super::kernels::{min_tasks, output_buffer, Activation, Weights};
use super::Precision;

/// Values per transformed tile: 4 × 4.
const TILE_VALUES: usize = 16;

/// A convolution's kernels, transformed once at load time: `G g Gᵀ` for every input and
/// output channel, as 16 matrices of `[inputs, outputs]` in the model's precision.
pub struct WinogradWeights {
    u: Vec<Weights>,
    inputs: usize,
    outputs: usize,
    /// Whether the input transform rounds its tiles to bf16 for the products (bf16 matrices
    /// of an even number of inputs), rather than writing f32 that the products round.
    rounds: bool,
}

impl WinogradWeights {
    /// `w` is `[3, 3, inputs, outputs]`; `precision` must be resolved (bf16 or f32). The
    /// transforms are exact sums and halvings in f32; bf16 rounds their results, once.
    pub fn new(w: &[f32], inputs: usize, outputs: usize, precision: Precision) -> Self {
        assert_eq!(w.len(), 9 * inputs * outputs, "winograd: weight shape");
        let mut u = vec![0.0f32; TILE_VALUES * inputs * outputs];
        for i in 0..inputs {
            for o in 0..outputs {
                let g = |ky: usize, kx: usize| w[((ky * 3 + kx) * inputs + i) * outputs + o];
                // G g: 4 × 3, with G = [[1, 0, 0], [½, ½, ½], [½, -½, ½], [0, 0, 1]].
                let mut gg = [[0.0f32; 3]; 4];
                for kx in 0..3 {
                    let (a, b, c) = (g(0, kx), g(1, kx), g(2, kx));
                    gg[0][kx] = a;
                    gg[1][kx] = 0.5 * (a + b + c);
                    gg[2][kx] = 0.5 * (a - b + c);
                    gg[3][kx] = c;
                }
                // (G g) Gᵀ: 4 × 4.
                for (r, row) in gg.iter().enumerate() {
                    let (a, b, c) = (row[0], row[1], row[2]);
                    let values = [a, 0.5 * (a + b + c), 0.5 * (a - b + c), c];
                    for (col, v) in values.into_iter().enumerate() {
                        u[((r * 4 + col) * inputs + i) * outputs + o] = v;
                    }
                }
            }
        }
        let u: Vec<Weights> = u
            .chunks_exact(inputs * outputs)
            .map(|m| Weights::new(m.to_vec(), inputs, outputs, precision))
            .collect();
        let rounds = inputs.is_multiple_of(2) && u.iter().all(|m| matches!(m, Weights::Bf16(_)));
        WinogradWeights {
            u,
            inputs,
            outputs,
            rounds,
        }
    }

    /// How many weight values the 16 matrices hold.
    fn len(&self) -> usize {
        TILE_VALUES * self.inputs * self.outputs
    }
}

/// A 3×3, stride 1, pad 1 convolution of NHWC `x` (`batch × height × width × inputs`), with
/// bias and activation. Returns `batch × height × width × outputs`.
pub fn conv3x3(
    x: &[f32],
    batch: usize,
    height: usize,
    width: usize,
    weights: &WinogradWeights,
    bias: &[f32],
    act: Activation,
) -> Vec<f32> {
    let (inputs, outputs) = (weights.inputs, weights.outputs);
    assert_eq!(
        x.len(),
        batch * height * width * inputs,
        "winograd: input shape"
    );
    assert_eq!(bias.len(), outputs, "winograd: bias shape");
    let shape = Tiles {
        batch,
        height,
        width,
        rows: height.div_ceil(2),
        columns: width.div_ceil(2),
    };
    let tiles = shape.count();
    // Every value is written: the tiles cover the image.
    let mut out = output_buffer(batch * height * width * outputs);
    if tiles == 0 || outputs == 0 {
        return out;
    }
    // Row by row, the transformed tiles stay in cache but the weights are read once per row;
    // layer-wide, the weights are read once but the tiles go through memory. Take whichever
    // moves fewer bytes: rows for the wide early layers, layer-wide for the deep late ones.
    let weight_traffic = batch * shape.rows * weights.len();
    let tile_traffic = 2 * tiles * TILE_VALUES * (inputs + outputs);
    let layer = Layer {
        x,
        shape,
        weights,
        bias,
        act,
    };
    match weight_traffic < tile_traffic {
        true => by_tile_rows(&layer, &mut out),
        false => whole_layer(&layer, &mut out),
    }
    out
}

/// What one convolution works on.
struct Layer<'a> {
    x: &'a [f32],
    shape: Tiles,
    weights: &'a WinogradWeights,
    bias: &'a [f32],
    act: Activation,
}

/// Each thread takes whole tile rows: input transform, the 16 products and the output
/// transform of one row, while its tiles are in cache.
fn by_tile_rows(layer: &Layer, out: &mut [f32]) {
    let inputs = layer.weights.inputs;
    let columns = layer.shape.columns;
    for_each_tile_row(layer, out, |tile_row, two_rows| {
        with_scratch(columns, layer.weights, |mut transformed, products| {
            transform_input_row(
                layer.x,
                &layer.shape,
                inputs,
                tile_row,
                transformed.reborrow(),
            );
            multiply_tiles(&transformed, layer.weights, columns, products, false);
            transform_output_row(products, layer, two_rows);
        })
    });
}

/// Each step over the whole layer, in parallel: all input transforms, the 16 products side by
/// side, all output transforms.
fn whole_layer(layer: &Layer, out: &mut [f32]) {
    let (inputs, outputs) = (layer.weights.inputs, layer.weights.outputs);
    let shape = &layer.shape;
    let tiles = shape.count();
    with_scratch(tiles, layer.weights, |mut transformed, products| {
        let tile_row_in = shape.columns * TILE_VALUES * inputs;
        let transform =
            |(tile_row, row)| transform_input_row(layer.x, shape, inputs, tile_row, row);
        match transformed.reborrow() {
            Transformed::F32(t) => t
                .par_chunks_mut(tile_row_in)
                .with_min_len(min_tasks())
                .map(Transformed::F32)
                .enumerate()
                .for_each(transform),
            Transformed::Bf16(t) => t
                .par_chunks_mut(tile_row_in / 2)
                .with_min_len(min_tasks())
                .map(Transformed::Bf16)
                .enumerate()
                .for_each(transform),
        }
        multiply_tiles(&transformed, layer.weights, tiles, products, true);
        let tile_row_out = shape.columns * TILE_VALUES * outputs;
        for_each_tile_row(layer, out, |tile_row, two_rows| {
            let row_products = &products[tile_row * tile_row_out..][..tile_row_out];
            transform_output_row(row_products, layer, two_rows);
        });
    });
}

/// Calls `work(tile_row, rows)` in parallel for every tile row of every image, with the one or
/// two output rows (one at an odd bottom edge) that the tile row covers.
fn for_each_tile_row(layer: &Layer, out: &mut [f32], work: impl Fn(usize, &mut [f32]) + Sync) {
    let shape = &layer.shape;
    let row_len = shape.width * layer.weights.outputs;
    out.par_chunks_mut(shape.height * row_len)
        .with_min_len(min_tasks())
        .enumerate()
        .for_each(|(image, image_out)| {
            image_out
                .par_chunks_mut(2 * row_len)
                .with_min_len(min_tasks())
                .enumerate()
                .for_each(|(ty, two_rows)| work(image * shape.rows + ty, two_rows));
        });
}

/// Runs `work` with this thread's scratch buffers sized for `tiles` tiles of a convolution
/// with `weights`.
fn with_scratch<R>(
    tiles: usize,
    weights: &WinogradWeights,
    work: impl FnOnce(Transformed, &mut [f32]) -> R,
) -> R {
    SCRATCH.with(|scratch| {
        let mut scratch = scratch.borrow_mut();
        let Scratch {
            transformed,
            rounded,
            products,
        } = &mut *scratch;
        let transformed_len = tiles * TILE_VALUES * weights.inputs;
        let transformed = match weights.rounds {
            true => Transformed::Bf16(grown(rounded, transformed_len / 2)),
            false => Transformed::F32(grown(transformed, transformed_len)),
        };
        work(
            transformed,
            grown(products, tiles * TILE_VALUES * weights.outputs),
        )
    })
}

/// The first `len` values of `v`, made at least that long. Grow only: shortening and
/// lengthening again would zero the regrown part for every layer, and the kernels overwrite
/// what they use.
fn grown<T: Default + Clone>(v: &mut Vec<T>, len: usize) -> &mut [T] {
    if v.len() < len {
        v.resize(len, T::default());
    }
    &mut v[..len]
}

/// Transformed input `[tiles, 16, inputs]` as the products read it: f32, or rounded to bf16,
/// two values to a `u32` (see [`WinogradWeights::rounds`]).
enum Transformed<'a> {
    F32(&'a mut [f32]),
    Bf16(&'a mut [u32]),
}

impl Transformed<'_> {
    fn reborrow(&mut self) -> Transformed<'_> {
        match self {
            Transformed::F32(t) => Transformed::F32(t),
            Transformed::Bf16(t) => Transformed::Bf16(t),
        }
    }
}

/// How the output is cut into 2×2 tiles.
struct Tiles {
    batch: usize,
    height: usize,
    width: usize,
    /// Tiles down and across one image.
    rows: usize,
    columns: usize,
}

impl Tiles {
    /// Tiles in the whole batch.
    fn count(&self) -> usize {
        self.batch * self.rows * self.columns
    }
}

/// The calling thread's reusable buffers: transformed input `[tiles, 16, inputs]` (in f32,
/// or rounded to bf16 pairs) and the products `[tiles, 16, outputs]`. Reused because a fresh
/// one, tens of megabytes for the first layers, costs a page fault per 4 KiB.
#[derive(Default)]
struct Scratch {
    transformed: Vec<f32>,
    rounded: Vec<u32>,
    products: Vec<f32>,
}

thread_local! {
    static SCRATCH: std::cell::RefCell<Scratch> = std::cell::RefCell::new(Scratch::default());
}

/// `Bᵀ d B` for every 4×4 input block `d` (zeros outside the image) of one tile row (counted
/// across the batch), per channel, into `out_row` (`[columns, 16, inputs]`). Compiled for
/// AVX-512 too, and run so where the CPU has it: the crate's baseline, SSE2, does four
/// channels an instruction, and the transforms took a quarter of VGG16's time with it.
fn transform_input_row(
    x: &[f32],
    shape: &Tiles,
    inputs: usize,
    tile_row: usize,
    out_row: Transformed,
) {
    #[cfg(target_arch = "x86_64")]
    if std::arch::is_x86_feature_detected!("avx512f") {
        // SAFETY: the CPU has AVX-512F, checked on the line above.
        unsafe { transform_input_row_avx512(x, shape, inputs, tile_row, out_row) };
        return;
    }
    transform_input_row_here(x, shape, inputs, tile_row, out_row);
}

/// The same, compiled for AVX-512.
///
/// # Safety
/// The CPU has AVX-512F.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
unsafe fn transform_input_row_avx512(
    x: &[f32],
    shape: &Tiles,
    inputs: usize,
    tile_row: usize,
    out_row: Transformed,
) {
    transform_input_row_here(x, shape, inputs, tile_row, out_row);
}

#[inline(always)]
fn transform_input_row_here(
    x: &[f32],
    shape: &Tiles,
    inputs: usize,
    tile_row: usize,
    mut out_row: Transformed,
) {
    let (image, ty) = (tile_row / shape.rows, tile_row % shape.rows);
    let zeros = [0.0f32; 16];
    let pixel = |y: isize, x_at: isize| -> Option<&[f32]> {
        let inside =
            (0..shape.height as isize).contains(&y) && (0..shape.width as isize).contains(&x_at);
        inside.then(|| {
            let at = (image * shape.height + y as usize) * shape.width + x_at as usize;
            &x[at * inputs..][..inputs]
        })
    };
    let tile_len = TILE_VALUES * inputs;
    // A bf16 row is made a tile at a time in f32, rounded while in cache.
    let mut f32_tile = match out_row {
        Transformed::F32(_) => Vec::new(),
        Transformed::Bf16(_) => vec![0.0f32; tile_len],
    };
    for tx in 0..shape.columns {
        let (top, left) = (2 * ty as isize - 1, 2 * tx as isize - 1);
        let d: [[Option<&[f32]>; 4]; 4] = std::array::from_fn(|r| {
            std::array::from_fn(|c| pixel(top + r as isize, left + c as isize))
        });
        match &mut out_row {
            Transformed::F32(row) => {
                input_tile(&d, &zeros, inputs, &mut row[tx * tile_len..][..tile_len])
            }
            Transformed::Bf16(row) => {
                input_tile(&d, &zeros, inputs, &mut f32_tile);
                bf16::round(&f32_tile, &mut row[tx * tile_len / 2..][..tile_len / 2]);
            }
        }
    }
}

/// One tile's input transform, every channel, into `out_tile` (`[16, inputs]`).
#[inline(always)]
fn input_tile(
    d: &[[Option<&[f32]>; 4]; 4],
    zeros: &[f32; 16],
    inputs: usize,
    out_tile: &mut [f32],
) {
    let mut start = 0;
    while start + 16 <= inputs {
        input_block::<16>(d, zeros, start, inputs, out_tile);
        start += 16;
    }
    while start < inputs {
        input_block::<1>(d, zeros, start, inputs, out_tile);
        start += 1;
    }
}

/// Channels `start..start + L` of one tile's input transform.
#[inline(always)]
fn input_block<const L: usize>(
    d: &[[Option<&[f32]>; 4]; 4],
    zeros: &[f32; 16],
    start: usize,
    inputs: usize,
    out: &mut [f32],
) {
    let load = |r: usize, c: usize| -> [f32; L] {
        let mut v = [0.0f32; L];
        match d[r][c] {
            Some(px) => v.copy_from_slice(&px[start..start + L]),
            None => v.copy_from_slice(&zeros[..L]),
        }
        v
    };
    // Bᵀ d, with Bᵀ = [[1, 0, -1, 0], [0, 1, 1, 0], [0, -1, 1, 0], [0, 1, 0, -1]].
    let mut t = [[[0.0f32; L]; 4]; 4];
    for c in 0..4 {
        let (d0, d1, d2, d3) = (load(0, c), load(1, c), load(2, c), load(3, c));
        for l in 0..L {
            t[0][c][l] = d0[l] - d2[l];
            t[1][c][l] = d1[l] + d2[l];
            t[2][c][l] = d2[l] - d1[l];
            t[3][c][l] = d1[l] - d3[l];
        }
    }
    // (Bᵀ d) B: the same combination along each row.
    for (r, row) in t.iter().enumerate() {
        let mut values = [[0.0f32; L]; 4];
        for l in 0..L {
            values[0][l] = row[0][l] - row[2][l];
            values[1][l] = row[1][l] + row[2][l];
            values[2][l] = row[2][l] - row[1][l];
            values[3][l] = row[1][l] - row[3][l];
        }
        for (c, v) in values.iter().enumerate() {
            out[(r * 4 + c) * inputs + start..][..L].copy_from_slice(v);
        }
    }
}

/// The 16 matrix products `products[:, k, :] = transformed[:, k, :] · u[k]`, each on one
/// thread: spread over the threads when `parallel`, else all on the calling one.
fn multiply_tiles(
    transformed: &Transformed,
    weights: &WinogradWeights,
    tiles: usize,
    products: &mut [f32],
    parallel: bool,
) {
    let (inputs, outputs) = (weights.inputs, weights.outputs);
    match transformed {
        Transformed::F32(t) => assert_eq!(t.len(), tiles * TILE_VALUES * inputs),
        Transformed::Bf16(t) => {
            assert!(weights.rounds);
            assert_eq!(t.len(), tiles * TILE_VALUES * inputs / 2);
        }
    }
    assert_eq!(products.len(), tiles * TILE_VALUES * outputs);
    assert_eq!(weights.u.len(), TILE_VALUES);
    // Each product writes its own column block of every row of `products`; a slice cannot say
    // "every 16th block", so the threads share its address.
    let products_at = products.as_mut_ptr() as usize;
    let product = |k: usize| {
        // SAFETY: the asserts above bound every index: rows `0..tiles` with strides of
        // `16 * inputs` and `16 * outputs` values, and `u[k]` is `inputs × outputs` (made so in
        // `new`). Product `k` writes only columns `k * outputs..(k + 1) * outputs` of each row
        // of `products`, so no two threads write the same value, and `products` outlives this
        // loop.
        // With `Transformed::Bf16`, `u[k]` is bf16 with an even number of inputs (`rounds`,
        // asserted), so row `t` of product `k` is `inputs / 2` pairs at `(16 t + k) inputs / 2`.
        unsafe {
            let out = (products_at as *mut f32).add(k * outputs);
            match (transformed, &weights.u[k]) {
                (Transformed::Bf16(t), Weights::Bf16(u)) => {
                    let (row, stride) = (t.as_ptr().add(k * inputs / 2), TILE_VALUES * inputs / 2);
                    u.multiply_rounded(tiles, row, stride, out, TILE_VALUES * outputs, None);
                }
                (Transformed::Bf16(_), _) => unreachable!("rounded tiles go with bf16 weights"),
                (Transformed::F32(t), u) => u.matrix().multiply_strided(
                    tiles,
                    inputs,
                    outputs,
                    t.as_ptr().add(k * inputs),
                    TILE_VALUES * inputs,
                    out,
                    TILE_VALUES * outputs,
                ),
            }
        }
    };
    match parallel {
        true => (0..TILE_VALUES)
            .into_par_iter()
            .with_min_len(min_tasks())
            .for_each(product),
        false => (0..TILE_VALUES).for_each(product),
    }
}

/// `Aᵀ m A` for every tile of one tile row (`products`, `[columns, 16, outputs]`), plus bias
/// and activation, into the one or two output rows it covers. Compiled for AVX-512 too, as
/// [`transform_input_row`] is.
fn transform_output_row(products: &[f32], layer: &Layer, two_rows: &mut [f32]) {
    #[cfg(target_arch = "x86_64")]
    if std::arch::is_x86_feature_detected!("avx512f") {
        // SAFETY: the CPU has AVX-512F, checked on the line above.
        unsafe { transform_output_row_avx512(products, layer, two_rows) };
        return;
    }
    transform_output_row_here(products, layer, two_rows);
}

/// The same, compiled for AVX-512.
///
/// # Safety
/// The CPU has AVX-512F.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
unsafe fn transform_output_row_avx512(products: &[f32], layer: &Layer, two_rows: &mut [f32]) {
    transform_output_row_here(products, layer, two_rows);
}

#[inline(always)]
fn transform_output_row_here(products: &[f32], layer: &Layer, two_rows: &mut [f32]) {
    let (outputs, bias, act) = (layer.weights.outputs, layer.bias, layer.act);
    let tile_len = TILE_VALUES * outputs;
    let row_len = layer.shape.width * outputs;
    let mut rows: Vec<&mut [f32]> = two_rows.chunks_mut(row_len).collect();
    for (tx, m) in products.chunks_exact(tile_len).enumerate() {
        let mut start = 0;
        while start + 16 <= outputs {
            output_block::<16>(m, start, outputs, bias, act, tx, &mut rows);
            start += 16;
        }
        while start < outputs {
            output_block::<1>(m, start, outputs, bias, act, tx, &mut rows);
            start += 1;
        }
    }
}

/// Channels `start..start + L` of one tile's output transform, written into `rows` (the one
/// or two output rows of this tile row) at tile column `tx`.
#[inline(always)]
fn output_block<const L: usize>(
    m: &[f32],
    start: usize,
    outputs: usize,
    bias: &[f32],
    act: Activation,
    tx: usize,
    rows: &mut [&mut [f32]],
) {
    let load = |r: usize, c: usize| -> [f32; L] {
        let mut v = [0.0f32; L];
        v.copy_from_slice(&m[(r * 4 + c) * outputs + start..][..L]);
        v
    };
    // Aᵀ m, with Aᵀ = [[1, 1, 1, 0], [0, 1, -1, -1]].
    let mut s = [[[0.0f32; L]; 4]; 2];
    for c in 0..4 {
        let (m0, m1, m2, m3) = (load(0, c), load(1, c), load(2, c), load(3, c));
        for l in 0..L {
            s[0][c][l] = m0[l] + m1[l] + m2[l];
            s[1][c][l] = m1[l] - m2[l] - m3[l];
        }
    }
    let mut b = [0.0f32; L];
    b.copy_from_slice(&bias[start..start + L]);
    let width = rows[0].len() / outputs;
    for (dy, row) in rows.iter_mut().enumerate() {
        let t = &s[dy];
        let mut values = [[0.0f32; L]; 2];
        for l in 0..L {
            values[0][l] = t[0][l] + t[1][l] + t[2][l];
            values[1][l] = t[1][l] - t[2][l] - t[3][l];
        }
        for (dx, v) in values.iter().enumerate() {
            let x = 2 * tx + dx;
            if x < width {
                // Fixed-size arrays, so that the compiler does all L channels at once.
                let mut px = [0.0f32; L];
                for l in 0..L {
                    px[l] = act.apply(v[l] + b[l]);
                }
                row[x * outputs + start..][..L].copy_from_slice(&px);
            }
        }
    }
}
