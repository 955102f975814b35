//! Inverted-residual blocks (MobileNet's and EfficientNet's MBConv: expand, depthwise, project,
//! skip) as one fused kernel. [`inverted_residual`] computes a block band by band of output
//! rows, so that the expanded activation, six times wider than the block's input, never leaves
//! the cache; its expansion is a 1×1 convolution or, for a first block without one, the
//! network's stem ([`Expansion::Conv`], computing the stem's rows each band needs from im2col
//! rows of that band only). [`inverted_residual_in_pieces`] cuts a block on one image by
//! expanded channels into one piece per thread instead, and adds up their projections. The
//! layers themselves are the dense products of [`super::dense`] and the depthwise row kernels
//! of [`super::depthwise`].

use rayon::prelude::*;

use super::dense::{multiply, multiply_rounded, Finishing, Matrix, Pointwise};
use super::depthwise::{depthwise_row_kernel, Depthwise, MAX_TAPS};
#[cfg(target_arch = "x86_64")]
use super::depthwise::{inner_taps, sliding};
use super::layout::patch_row;
use super::threads::{give_back, min_tasks, output_buffer, threads};
use super::ConvGeometry;
use crate::model::tile::Activation;

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
