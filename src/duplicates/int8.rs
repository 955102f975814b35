//! Cosine scores of blocks of unit vectors in 8-bit integers, for CPUs with AVX-512 VNNI.
//!
//! Duplicate search multiplies every image's vector with every other's: 100,000 images are
//! 5·10⁹ dot products of 1,280 numbers. In f32 that is bound by the CPU's multiply-add rate. A
//! VNNI instruction (`vpdpbusd`) does four times as many 8-bit products per cycle, so each
//! vector is rounded to 8 bits here, with its own scale, and the scores come out within about
//! 0.002 of the f32 ones. [`super::Neighbours`] uses them only to find candidates (with a
//! margin below its floor) and scores what it keeps again in f32, so its answers stay exact.
//!
//! `vpdpbusd` multiplies unsigned by signed bytes. The left side is stored shifted by 128
//! (`q + 128`, as `u8`), and the shift is taken back out with each right vector's sum:
//! `Σ (a + 128)·b = a·b + 128·Σ b`.

/// Rows of one tile, and columns (two registers of 16 lanes).
const TILE_ROWS: usize = 8;
const TILE_COLUMNS: usize = 32;

/// Every vector rounded to 8 bits: `round(v · scale)` with `scale = 127 / max |v|`.
pub struct Quantised {
    /// Row-major, `padded_dim` bytes per vector, each value shifted by 128; the row count is
    /// rounded up to a whole tile with zero vectors.
    shifted: Vec<u8>,
    /// `1 / scale` of each vector.
    unscale: Vec<f32>,
    /// `Σ round(v · scale)` of each vector.
    sums: Vec<i32>,
    padded_dim: usize,
}

impl Quantised {
    /// Whether this CPU has the instructions, checked at run time.
    pub fn available() -> bool {
        #[cfg(target_arch = "x86_64")]
        {
            std::arch::is_x86_feature_detected!("avx512f")
                && std::arch::is_x86_feature_detected!("avx512vnni")
        }
        #[cfg(not(target_arch = "x86_64"))]
        {
            false
        }
    }

    /// Rounds the `n` vectors of `dim` numbers in `vectors`.
    pub fn new(vectors: &[f32], dim: usize) -> Self {
        let n = vectors.len().checked_div(dim).unwrap_or(0);
        let padded_dim = dim.div_ceil(4) * 4;
        let rows = n.div_ceil(TILE_ROWS) * TILE_ROWS;
        let mut shifted = vec![128u8; rows * padded_dim];
        let mut unscale = vec![0.0; n];
        let mut sums = vec![0; n];
        for (i, v) in vectors.chunks_exact(dim.max(1)).enumerate() {
            let largest = v.iter().fold(0.0f32, |m, x| m.max(x.abs()));
            let scale = if largest > 0.0 { 127.0 / largest } else { 0.0 };
            unscale[i] = if largest > 0.0 { largest / 127.0 } else { 0.0 };
            let row = &mut shifted[i * padded_dim..][..dim];
            for (byte, x) in row.iter_mut().zip(v) {
                // In -127..=127 by the choice of scale, so the shift fits a byte.
                let q = (x * scale).round().clamp(-127.0, 127.0) as i32;
                sums[i] += q;
                *byte = (q + 128) as u8;
            }
        }
        Quantised {
            shifted,
            unscale,
            sums,
            padded_dim,
        }
    }

    /// Scores of rows `left..left + m` against rows `right..right + k` into `scores`
    /// (row-major, `stride` columns), with `panel` as scratch space.
    pub fn score_block(&self, block: BlockShape, scores: &mut [f32], panel: &mut Vec<i8>) {
        let BlockShape {
            left,
            m,
            right,
            k,
            stride,
        } = block;
        assert!(m <= scores.len() / stride.max(1) && k <= stride);
        for first_column in (0..k).step_by(TILE_COLUMNS) {
            let columns = TILE_COLUMNS.min(k - first_column);
            self.pack_panel(right + first_column, columns, panel);
            for first_row in (0..m).step_by(TILE_ROWS) {
                let rows = TILE_ROWS.min(m - first_row);
                let sums = self.tile(left + first_row, panel);
                for (r, row_sums) in sums.iter().enumerate().take(rows) {
                    let a = left + first_row + r;
                    let out = &mut scores[(first_row + r) * stride + first_column..][..columns];
                    for (c, (score, &sum)) in out.iter_mut().zip(row_sums).enumerate() {
                        let b = right + first_column + c;
                        let dot = sum - 128 * self.sums[b];
                        *score = dot as f32 * self.unscale[a] * self.unscale[b];
                    }
                }
            }
        }
    }

    /// The right-hand vectors `first..first + columns` laid out for the kernel: for every
    /// group of 4 numbers, 32 vectors' 4 bytes in a row; missing vectors are zero.
    fn pack_panel(&self, first: usize, columns: usize, panel: &mut Vec<i8>) {
        let groups = self.padded_dim / 4;
        panel.clear();
        panel.resize(groups * TILE_COLUMNS * 4, 0);
        for c in 0..columns {
            let row = &self.shifted[(first + c) * self.padded_dim..][..self.padded_dim];
            for (g, four) in row.chunks_exact(4).enumerate() {
                let at = (g * TILE_COLUMNS + c) * 4;
                for (to, &from) in panel[at..at + 4].iter_mut().zip(four) {
                    *to = (from ^ 0x80) as i8;
                }
            }
        }
    }

    /// `Σ (a + 128)·b` for the 8 rows from `first_row` against the packed panel.
    fn tile(&self, first_row: usize, panel: &[i8]) -> [[i32; TILE_COLUMNS]; TILE_ROWS] {
        let rows = &self.shifted[first_row * self.padded_dim..][..TILE_ROWS * self.padded_dim];
        debug_assert_eq!(panel.len(), self.padded_dim * TILE_COLUMNS);
        #[cfg(target_arch = "x86_64")]
        // SAFETY: `Neighbours` only builds a `Quantised` where `available()` said the CPU has
        // AVX-512F and VNNI; `rows` holds 8 rows and `panel` the packed 32 columns, both of
        // `padded_dim` bytes each (sliced and checked above).
        unsafe {
            tile_vnni(rows, panel, self.padded_dim)
        }
        #[cfg(not(target_arch = "x86_64"))]
        {
            let _ = (rows, panel);
            unreachable!("Quantised::available() is false off x86-64")
        }
    }
}

/// Where one block of scores comes from and goes.
#[derive(Clone, Copy)]
pub struct BlockShape {
    pub left: usize,
    pub m: usize,
    pub right: usize,
    pub k: usize,
    pub stride: usize,
}

/// One tile of 8-bit scores: `TILE_ROWS` rows of `rows` against the panel, `padded_dim`
/// bytes each.
///
/// # Safety
/// The CPU has AVX-512F and AVX-512 VNNI; `rows` holds `TILE_ROWS` rows and `panel`
/// `padded_dim / 4` groups of 128 bytes.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,avx512vnni")]
unsafe fn tile_vnni(
    rows: &[u8],
    panel: &[i8],
    padded_dim: usize,
) -> [[i32; TILE_COLUMNS]; TILE_ROWS] {
    use std::arch::x86_64::*;
    let mut acc = [_mm512_setzero_si512(); 2 * TILE_ROWS];
    let groups = padded_dim / 4;
    let a = rows.as_ptr();
    let b = panel.as_ptr();
    for g in 0..groups {
        // SAFETY: g < groups, so the 128 panel bytes at g·128 and each row's 4 bytes at
        // r·padded_dim + 4g lie inside the slices.
        let (right_low, right_high) = unsafe {
            (
                _mm512_loadu_si512(b.add(g * 128).cast()),
                _mm512_loadu_si512(b.add(g * 128 + 64).cast()),
            )
        };
        for r in 0..TILE_ROWS {
            // SAFETY: as above.
            let four = unsafe { a.add(r * padded_dim + 4 * g).cast::<i32>().read_unaligned() };
            let left = _mm512_set1_epi32(four);
            acc[2 * r] = _mm512_dpbusd_epi32(acc[2 * r], left, right_low);
            acc[2 * r + 1] = _mm512_dpbusd_epi32(acc[2 * r + 1], left, right_high);
        }
    }
    let mut out = [[0i32; TILE_COLUMNS]; TILE_ROWS];
    for (r, row) in out.iter_mut().enumerate() {
        // SAFETY: each row holds 32 i32s, two registers' worth.
        unsafe {
            _mm512_storeu_si512(row.as_mut_ptr().cast(), acc[2 * r]);
            _mm512_storeu_si512(row.as_mut_ptr().add(16).cast(), acc[2 * r + 1]);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn eight_bit_scores_stay_close_to_f32_ones() {
        let test = "duplicates::int8::tests::eight_bit_scores_stay_close_to_f32_ones";
        if !crate::model::test_runs_on_this_cpu(Quantised::available(), test, "AVX-512 VNNI") {
            return;
        }
        let (n, dim) = (45, 1281);
        let mut state = 11u64;
        let mut vectors: Vec<f32> = (0..n * dim)
            .map(|_| {
                state = state.wrapping_mul(6364136223846793005).wrapping_add(1);
                (state >> 40) as f32 / (1u64 << 24) as f32 - 0.3
            })
            .collect();
        vectors
            .chunks_exact_mut(dim)
            .for_each(crate::similarity::l2_normalise);
        let quantised = Quantised::new(&vectors, dim);
        // Block edges that are not multiples of the tile, on both sides.
        let shape = BlockShape {
            left: 3,
            m: 37,
            right: 5,
            k: 40,
            stride: 41,
        };
        let mut scores = vec![f32::NAN; shape.m * shape.stride];
        quantised.score_block(shape, &mut scores, &mut Vec::new());
        let mut worst = 0.0f32;
        for r in 0..shape.m {
            for c in 0..shape.k {
                let exact = crate::similarity::cosine(
                    &vectors[(shape.left + r) * dim..][..dim],
                    &vectors[(shape.right + c) * dim..][..dim],
                );
                let error = (scores[r * shape.stride + c] - exact).abs();
                assert!(error.is_finite(), "score {r}, {c} was not written");
                worst = worst.max(error);
            }
        }
        assert!(worst < 0.002, "largest error {worst}");
        // The vectors share a positive offset, so the scores are far from zero and an error in
        // the shift would show.
        assert!(scores[0] > 0.3, "{}", scores[0]);
    }
}
