//! The NHWC convolution kernels against Candle's own (slow but plain) convolutions.

use candle_core::{Device, Tensor};
use lookalike::model::kernels::{self, Activation, ConvGeometry, DepthwiseVariant, Matrix};
use lookalike::model::Precision;

/// Deterministic pseudo-random values in [-1, 1).
fn noise(len: usize, seed: u64) -> Vec<f32> {
    let mut state = seed
        .wrapping_mul(6364136223846793005)
        .wrapping_add(1442695040888963407);
    (0..len)
        .map(|_| {
            state = state
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            ((state >> 40) as f32 / (1u64 << 24) as f32) * 2.0 - 1.0
        })
        .collect()
}

fn to_nhwc(t: &Tensor) -> Vec<f32> {
    t.permute((0, 2, 3, 1))
        .unwrap()
        .flatten_all()
        .unwrap()
        .to_vec1::<f32>()
        .unwrap()
}

/// Whether the bf16 tests can run here; where they cannot, says so in the test output (see
/// `test_runs_on_this_cpu`).
fn cpu_has_bf16(test: &str) -> bool {
    let has = lookalike::model::bf16::supported();
    lookalike::model::test_runs_on_this_cpu(has, test, "AVX512_BF16")
}

fn max_abs_diff(a: &[f32], b: &[f32]) -> f32 {
    assert_eq!(a.len(), b.len(), "output sizes differ");
    a.iter()
        .zip(b)
        .map(|(x, y)| (x - y).abs())
        .fold(0.0, f32::max)
}

/// Candle's grouped convolution with TF "SAME" padding made explicit, plus bias.
fn candle_depthwise(x: &Tensor, w: &Tensor, bias: &[f32], g: &ConvGeometry) -> Tensor {
    let pad_h = (g.out_height - 1) * g.stride + g.kernel - g.height;
    let pad_w = (g.out_width - 1) * g.stride + g.kernel - g.width;
    let padded = x
        .pad_with_zeros(2, g.pad_top, pad_h.saturating_sub(g.pad_top))
        .unwrap()
        .pad_with_zeros(3, g.pad_left, pad_w.saturating_sub(g.pad_left))
        .unwrap();
    let out = padded.conv2d(w, 0, g.stride, 1, g.channels).unwrap();
    let b = Tensor::from_slice(bias, (1, g.channels, 1, 1), &Device::Cpu).unwrap();
    out.broadcast_add(&b).unwrap()
}

/// Shapes for the depthwise kernels: (batch, height, width, channels, kernel, stride).
///
/// Kernel 3 and 5, stride 1 and 2, odd and even sizes, batches above 1; channel counts that
/// use every block size of the portable kernel (64, 16, 1); rows that the sliding kernel takes
/// in groups of eight pixels, inside the image and at its edges, and end with a group of four
/// (12 wide) or of one (9 wide at stride 2).
const DEPTHWISE_CASES: [(usize, usize, usize, usize, usize, usize); 11] = [
    (1, 14, 14, 144, 5, 1),
    (2, 12, 21, 97, 3, 2),
    (1, 9, 30, 64, 3, 1),
    (1, 7, 7, 8, 3, 1),
    (3, 9, 11, 16, 3, 2),
    (2, 15, 13, 24, 5, 1),
    (2, 17, 17, 32, 5, 2),
    (1, 28, 28, 40, 5, 2),
    (4, 5, 6, 3, 3, 2),
    (2, 1, 1, 8, 5, 1),
    (1, 5, 12, 32, 3, 1),
];

/// `run` (input, geometry, weights, bias, activation) on every shape of [`DEPTHWISE_CASES`]
/// against Candle's grouped convolution, without an activation and with ReLU6.
fn depthwise_matches_candle(
    run: impl Fn(&[f32], &ConvGeometry, &[f32], &[f32], Activation) -> Vec<f32>,
) {
    let (mut low, mut high) = (0, 0);
    for (i, &(n, h, w, c, k, s)) in DEPTHWISE_CASES.iter().enumerate() {
        let g = ConvGeometry::same(n, h, w, c, k, s);
        let x =
            Tensor::from_vec(noise(n * c * h * w, i as u64), (n, c, h, w), &Device::Cpu).unwrap();
        // Large enough that ReLU6 clamps at both ends.
        let weight =
            (Tensor::from_vec(noise(c * k * k, 100 + i as u64), (c, 1, k, k), &Device::Cpu)
                .unwrap()
                * 4.0)
                .unwrap();
        let bias = noise(c, 200 + i as u64);
        let expected = to_nhwc(&candle_depthwise(&x, &weight, &bias, &g));
        // Our layout is [k, k, c].
        let w_taps = to_nhwc(&weight.permute((1, 0, 2, 3)).unwrap()); // [1, k, k, c]
        let x = to_nhwc(&x);
        let got = run(&x, &g, &w_taps, &bias, Activation::None);
        let diff = max_abs_diff(&got, &expected);
        assert!(
            diff < 1e-4,
            "case {i} {:?}: differs by {diff}",
            DEPTHWISE_CASES[i]
        );
        low += expected.iter().filter(|v| **v < 0.0).count();
        high += expected.iter().filter(|v| **v > 6.0).count();
        let clamped: Vec<f32> = expected.iter().map(|v| v.clamp(0.0, 6.0)).collect();
        let got = run(&x, &g, &w_taps, &bias, Activation::Relu6);
        let diff = max_abs_diff(&got, &clamped);
        assert!(
            diff < 1e-4,
            "case {i} {:?} ReLU6: differs by {diff}",
            DEPTHWISE_CASES[i]
        );
    }
    assert!(low > 0 && high > 0, "ReLU6 clamps at both ends");
}

#[test]
fn depthwise_matches_candle_grouped_conv() {
    depthwise_matches_candle(kernels::depthwise);
}

/// One variant of the depthwise kernel, called directly, against Candle: the model runs only
/// the widest one the CPU has, so on a CPU with AVX-512 the others would never run at all.
fn depthwise_variant_matches_candle(variant: DepthwiseVariant, test: &str, feature: &str) {
    if !lookalike::model::test_runs_on_this_cpu(variant.runs_here(), test, feature) {
        return;
    }
    depthwise_matches_candle(|x, g, w, bias, act| {
        kernels::depthwise_on(variant, x, g, (w, bias), act).expect("the CPU runs it")
    });
}

#[test]
fn the_avx512_depthwise_variant_matches_candle() {
    let test = "the_avx512_depthwise_variant_matches_candle";
    depthwise_variant_matches_candle(DepthwiseVariant::Avx512, test, "AVX-512F");
}

#[test]
fn the_avx2_depthwise_variant_matches_candle() {
    let test = "the_avx2_depthwise_variant_matches_candle";
    depthwise_variant_matches_candle(DepthwiseVariant::Avx2, test, "AVX2 and FMA");
}

#[test]
fn the_portable_depthwise_variant_matches_candle() {
    let test = "the_portable_depthwise_variant_matches_candle";
    depthwise_variant_matches_candle(DepthwiseVariant::Portable, test, "nothing");
}

/// A packed weight matrix, whose products run AVX-512 (f32) or AVX512_BF16 instructions, is
/// made only where the CPU has them: safe code cannot reach those instructions elsewhere.
#[test]
fn packed_matrices_are_made_only_where_the_cpu_runs_them() {
    use lookalike::model::{bf16, packed_f32};
    let w = [0.5f32, -1.0, 2.0, 0.25, 3.0, -0.5];
    let low = bf16::PackedBf16::new(&w, 2, 3);
    assert_eq!(low.is_some(), bf16::supported());
    let full = packed_f32::PackedF32::new(&w, 2, 3);
    assert_eq!(full.is_some(), packed_f32::supported());
    // Where they are made, they hold the matrix.
    assert!(full.is_none_or(|p| p.unpack() == w));
    assert!(low.is_none_or(|p| p.unpack() == w));
}

/// Every `unsafe fn` in the source says, in a `# Safety` section, what its callers must keep,
/// and the crate makes each unsafe operation inside one sit in an `unsafe` block of its own.
#[test]
fn every_unsafe_fn_says_what_its_callers_must_keep() {
    let src = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let lib = std::fs::read_to_string(src.join("lib.rs")).unwrap();
    assert!(lib.contains("#![deny(unsafe_op_in_unsafe_fn)]"));
    let mut missing = Vec::new();
    let mut folders = vec![src];
    while let Some(folder) = folders.pop() {
        for entry in std::fs::read_dir(&folder).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                folders.push(path);
            } else if path.extension().is_some_and(|e| e == "rs") {
                let text = std::fs::read_to_string(&path).unwrap();
                let lines: Vec<&str> = text.lines().collect();
                for (at, line) in lines.iter().enumerate() {
                    if line.contains("unsafe fn ") && !line.trim_start().starts_with("//") {
                        // The doc comment above the attributes.
                        let docs = lines[..at]
                            .iter()
                            .rev()
                            .map(|l| l.trim_start())
                            .skip_while(|l| l.starts_with("#[") || l.starts_with("// "))
                            .take_while(|l| l.starts_with("///"));
                        if !docs.into_iter().any(|l| l == "/// # Safety") {
                            missing.push(format!("{}:{}", path.display(), at + 1));
                        }
                    }
                }
            }
        }
    }
    assert!(missing.is_empty(), "no # Safety section: {missing:?}");
}

#[test]
fn depthwise_applies_relu6() {
    // 8 channels run the portable blocks; 16 on an 8-wide row, the sliding kernel.
    for channels in [8, 16] {
        let g = ConvGeometry::same(1, 4, 8, channels, 3, 1);
        let x = vec![10.0f32; 4 * 8 * channels];
        let w = vec![1.0f32; 9 * channels];
        let mut bias = vec![0.0f32; channels];
        bias[0] = -100.0;
        let out = kernels::depthwise(&x, &g, &w, &bias, Activation::Relu6);
        for pixel in out.chunks_exact(channels) {
            assert_eq!(pixel[0], 0.0, "negative clamps to 0");
            assert!(pixel[1..].iter().all(|v| *v == 6.0), "large clamps to 6");
        }
    }
}

#[test]
fn dense_conv2d_matches_candle_conv2d() {
    // (batch, height, width, in, out, kernel, stride): the Lite0 stem, and a VGG-like layer.
    let cases = [(2, 17, 15, 3, 32, 3, 2), (2, 10, 9, 16, 24, 3, 1)];
    for (i, &(n, h, w, cin, cout, k, s)) in cases.iter().enumerate() {
        let g = ConvGeometry::same(n, h, w, cin, k, s);
        let x = Tensor::from_vec(
            noise(n * cin * h * w, i as u64),
            (n, cin, h, w),
            &Device::Cpu,
        )
        .unwrap();
        let weight = Tensor::from_vec(
            noise(cout * cin * k * k, 50 + i as u64),
            (cout, cin, k, k),
            &Device::Cpu,
        )
        .unwrap();
        let bias = noise(cout, 60 + i as u64);
        let pad_h = (g.out_height - 1) * s + k - h;
        let pad_w = (g.out_width - 1) * s + k - w;
        let padded = x
            .pad_with_zeros(2, g.pad_top, pad_h - g.pad_top)
            .unwrap()
            .pad_with_zeros(3, g.pad_left, pad_w - g.pad_left)
            .unwrap();
        let b = Tensor::from_slice(&bias, (1, cout, 1, 1), &Device::Cpu).unwrap();
        let expected = to_nhwc(
            &padded
                .conv2d(&weight, 0, s, 1, 1)
                .unwrap()
                .broadcast_add(&b)
                .unwrap(),
        );
        // Our layout is [k, k, in, out].
        let w_ours = weight
            .permute((2, 3, 1, 0))
            .unwrap()
            .flatten_all()
            .unwrap()
            .to_vec1::<f32>()
            .unwrap();
        let got = kernels::conv2d(
            &to_nhwc(&x),
            &g,
            Matrix::F32(&w_ours),
            &bias,
            Activation::None,
        );
        let diff = max_abs_diff(&got, &expected);
        assert!(diff < 1e-4, "case {i}: differs by {diff}");
    }
}

#[test]
fn symmetric_padding_conv_matches_candle() {
    let (n, h, w, cin, cout) = (1, 6, 5, 4, 5);
    let g = ConvGeometry::symmetric(n, h, w, cin, 3, 1, 1);
    let x = Tensor::from_vec(noise(n * cin * h * w, 7), (n, cin, h, w), &Device::Cpu).unwrap();
    let weight =
        Tensor::from_vec(noise(cout * cin * 9, 8), (cout, cin, 3, 3), &Device::Cpu).unwrap();
    let expected = to_nhwc(&x.conv2d(&weight, 1, 1, 1, 1).unwrap());
    let w_ours = weight
        .permute((2, 3, 1, 0))
        .unwrap()
        .flatten_all()
        .unwrap()
        .to_vec1::<f32>()
        .unwrap();
    let got = kernels::conv2d(
        &to_nhwc(&x),
        &g,
        Matrix::F32(&w_ours),
        &vec![0.0; cout],
        Activation::None,
    );
    assert!(max_abs_diff(&got, &expected) < 1e-4);
}

/// An inverted-residual block the plain way: expansion, depthwise, projection, each in full.
fn block_layer_by_layer(
    x: &[f32],
    g: &ConvGeometry,
    weights: &[Vec<f32>; 6],
    skip: bool,
) -> Vec<f32> {
    let [ew, eb, dw, db, pw, pb] = weights;
    let pixels = g.batch * g.height * g.width;
    let expanded = kernels::dense(x, pixels, Matrix::F32(ew), eb, Activation::Relu6, None);
    let spread = kernels::depthwise(&expanded, g, dw, db, Activation::Relu6);
    let out_pixels = g.batch * g.out_height * g.out_width;
    let residual = skip.then_some(x);
    kernels::dense(
        &spread,
        out_pixels,
        Matrix::F32(pw),
        pb,
        Activation::None,
        residual,
    )
}

#[test]
fn the_fused_block_matches_its_layers_run_one_by_one() {
    // (batch, height, width, inputs, hidden, outputs, kernel, stride, skip). The wide ones
    // are split into several bands per thread, so rows carried from band to band are covered.
    let cases = [
        (1, 28, 28, 24, 144, 24, 3, 1, true),
        (2, 15, 13, 16, 96, 24, 3, 2, false),
        (1, 30, 64, 40, 240, 40, 5, 1, true),
        (2, 33, 48, 40, 240, 80, 5, 2, false),
        (1, 7, 7, 192, 1152, 320, 3, 1, false),
        (3, 1, 1, 8, 48, 8, 5, 1, true),
    ];
    for (i, &(n, h, w, cin, hidden, cout, k, s, skip)) in cases.iter().enumerate() {
        let g = ConvGeometry::same(n, h, w, hidden, k, s);
        let seed = 10 * i as u64;
        let x = noise(n * h * w * cin, seed);
        let scale = |v: Vec<f32>, by: f32| v.into_iter().map(|x| x * by).collect::<Vec<_>>();
        let weights = [
            scale(noise(cin * hidden, seed + 1), 0.5),
            noise(hidden, seed + 2),
            noise(k * k * hidden, seed + 3),
            noise(hidden, seed + 4),
            scale(noise(hidden * cout, seed + 5), 0.1),
            noise(cout, seed + 6),
        ];
        let expected = block_layer_by_layer(&x, &g, &weights, skip);
        let pointwise = |w: usize, b: usize| kernels::Pointwise {
            w: Matrix::F32(&weights[w]),
            bias: &weights[b],
        };
        let depthwise = kernels::Depthwise {
            w: &weights[2],
            bias: &weights[3],
        };
        let expand = kernels::Expansion::Pointwise(pointwise(0, 1));
        let got = kernels::inverted_residual(&x, &g, expand, depthwise, pointwise(4, 5), skip);
        let diff = max_abs_diff(&got, &expected);
        assert!(diff < 1e-4, "case {i} {:?}: differs by {diff}", cases[i]);
    }
}

#[test]
fn a_bf16_block_equals_its_bf16_layers_run_one_by_one_to_the_bit() {
    if !cpu_has_bf16("a_bf16_block_equals_its_bf16_layers_run_one_by_one_to_the_bit") {
        return;
    }
    // Fused, the depthwise kernel rounds its output to bf16 as it stores it, and the
    // projection reads that; one by one, the projection rounds the f32 depthwise output
    // itself. Both round the same values the same way. Shapes: (batch, height, width,
    // inputs, hidden, outputs, kernel, stride, skip), with several bands per thread.
    let cases = [
        (1, 28, 28, 24, 144, 24, 3, 1, true),
        (2, 15, 13, 16, 96, 24, 3, 2, false),
        (1, 30, 64, 40, 240, 40, 5, 1, true),
        (1, 7, 7, 192, 1152, 320, 5, 2, false),
    ];
    for (i, &(n, h, w, cin, hidden, cout, k, s, skip)) in cases.iter().enumerate() {
        let g = ConvGeometry::same(n, h, w, hidden, k, s);
        let seed = 50 + 10 * i as u64;
        let x = noise(n * h * w * cin, seed);
        let scaled = |len: usize, seed: u64, by: f32| -> Vec<f32> {
            noise(len, seed).into_iter().map(|v| v * by).collect()
        };
        let bf16 = |w: Vec<f32>, rows: usize, columns: usize| {
            kernels::Weights::new(w, rows, columns, Precision::Bf16)
        };
        let expand_w = bf16(scaled(cin * hidden, seed + 1, 0.5), cin, hidden);
        let project_w = bf16(scaled(hidden * cout, seed + 5, 0.1), hidden, cout);
        let (expand_b, dw, db, project_b) = (
            noise(hidden, seed + 2),
            noise(k * k * hidden, seed + 3),
            noise(hidden, seed + 4),
            noise(cout, seed + 6),
        );
        let pixels = n * h * w;
        let expanded = kernels::dense(
            &x,
            pixels,
            expand_w.matrix(),
            &expand_b,
            Activation::Relu6,
            None,
        );
        let spread = kernels::depthwise(&expanded, &g, &dw, &db, Activation::Relu6);
        let out_pixels = n * g.out_height * g.out_width;
        let residual = skip.then_some(x.as_slice());
        let one_by_one = kernels::dense(
            &spread,
            out_pixels,
            project_w.matrix(),
            &project_b,
            Activation::None,
            residual,
        );
        let expand = kernels::Expansion::Pointwise(kernels::Pointwise {
            w: expand_w.matrix(),
            bias: &expand_b,
        });
        let depthwise = kernels::Depthwise { w: &dw, bias: &db };
        let project = kernels::Pointwise {
            w: project_w.matrix(),
            bias: &project_b,
        };
        let fused = kernels::inverted_residual(&x, &g, expand, depthwise, project, skip);
        assert!(fused == one_by_one, "case {i} {:?}", cases[i]);
    }
}

/// Channels `range` of every tap of depthwise weights `[taps, channels]`.
fn channels_of(w: &[f32], channels: usize, range: std::ops::Range<usize>) -> Vec<f32> {
    w.chunks_exact(channels)
        .flat_map(|tap| &tap[range.clone()])
        .copied()
        .collect()
}

#[test]
fn a_block_cut_into_pieces_by_channels_matches_the_whole_block() {
    // (batch, height, width, inputs, hidden, outputs, kernel, stride, skip): Lite0's 7×7 and
    // 14×14 blocks, and a small one whose last piece is narrower than a register.
    let cases = [
        (1, 7, 7, 192, 1152, 192, 5, 1, true),
        (1, 7, 7, 192, 1152, 320, 3, 1, false),
        (1, 14, 14, 112, 672, 192, 5, 2, false),
        (2, 14, 14, 80, 480, 80, 3, 1, true),
        (1, 5, 6, 8, 40, 8, 3, 1, true),
    ];
    let mut precisions = vec![Precision::F32];
    if lookalike::model::bf16::supported() {
        precisions.push(Precision::Bf16);
    }
    for precision in precisions {
        for (i, &(n, h, w, cin, hidden, cout, k, s, skip)) in cases.iter().enumerate() {
            let g = ConvGeometry::same(n, h, w, hidden, k, s);
            let seed = 90 + 10 * i as u64;
            let x = noise(n * h * w * cin, seed);
            let scaled = |len: usize, seed: u64, by: f32| -> Vec<f32> {
                noise(len, seed).into_iter().map(|v| v * by).collect()
            };
            let expand_w =
                kernels::Weights::new(scaled(cin * hidden, seed + 1, 0.2), cin, hidden, precision);
            let project_w = kernels::Weights::new(
                scaled(hidden * cout, seed + 5, 0.05),
                hidden,
                cout,
                precision,
            );
            let (expand_b, dw, db, project_b) = (
                noise(hidden, seed + 2),
                noise(k * k * hidden, seed + 3),
                noise(hidden, seed + 4),
                noise(cout, seed + 6),
            );
            let whole = kernels::inverted_residual(
                &x,
                &g,
                kernels::Expansion::Pointwise(kernels::Pointwise {
                    w: expand_w.matrix(),
                    bias: &expand_b,
                }),
                kernels::Depthwise { w: &dw, bias: &db },
                kernels::Pointwise {
                    w: project_w.matrix(),
                    bias: &project_b,
                },
                skip,
            );
            for count in [2, 3] {
                // Pieces of whole registers of 16 channels, the last one taking the rest.
                let step = hidden.div_ceil(16).div_ceil(count) * 16;
                let ranges: Vec<_> = (0..hidden)
                    .step_by(step)
                    .map(|from| from..(from + step).min(hidden))
                    .collect();
                let expand_parts =
                    expand_w.parts(hidden, ranges.iter().map(|r| (0..cin, r.clone())));
                let project_parts =
                    project_w.parts(cout, ranges.iter().map(|r| (r.clone(), 0..cout)));
                let depthwise_parts: Vec<_> = ranges
                    .iter()
                    .map(|r| (channels_of(&dw, hidden, r.clone()), &db[r.clone()]))
                    .collect();
                let pieces: Vec<_> = (0..ranges.len())
                    .map(|p| kernels::BlockPiece {
                        expand: kernels::Pointwise {
                            w: expand_parts[p].matrix(),
                            bias: &expand_b[ranges[p].clone()],
                        },
                        depthwise: kernels::Depthwise {
                            w: &depthwise_parts[p].0,
                            bias: depthwise_parts[p].1,
                        },
                        project: project_parts[p].matrix(),
                    })
                    .collect();
                let cut = kernels::inverted_residual_in_pieces(&x, &g, &pieces, &project_b, skip);
                // The same products, only the projection's sums added up in another order.
                let diff = max_abs_diff(&cut, &whole);
                let scale = whole.iter().fold(1.0f32, |m, v| m.max(v.abs()));
                assert!(
                    diff < 1e-5 * scale,
                    "case {i}, {precision:?}, {count} pieces: differs by {diff} (scale {scale})"
                );
                assert!(cut != vec![0.0; cut.len()]);
            }
        }
    }
}

#[test]
fn a_layer_cut_into_pieces_by_columns_equals_the_whole_layer_to_the_bit() {
    let mut precisions = vec![Precision::F32];
    if lookalike::model::bf16::supported() {
        precisions.push(Precision::Bf16);
    }
    let (inputs, outputs) = (1280, 1000);
    let w = noise(inputs * outputs, 7);
    let bias = noise(outputs, 8);
    for precision in precisions {
        let whole_w = kernels::Weights::new(w.clone(), inputs, outputs, precision);
        for rows in [1, 3] {
            let x = noise(rows * inputs, 9 + rows as u64);
            let whole = kernels::dense(&x, rows, whole_w.matrix(), &bias, Activation::Relu, None);
            for edges in [vec![0, 512, 1000], vec![0, 336, 672, 1000]] {
                let columns: Vec<_> = edges.windows(2).map(|e| e[0]..e[1]).collect();
                let parts = whole_w.parts(outputs, columns.iter().map(|c| (0..inputs, c.clone())));
                let pieces: Vec<_> = parts
                    .iter()
                    .zip(&columns)
                    .map(|(w, c)| kernels::Pointwise {
                        w: w.matrix(),
                        bias: &bias[c.clone()],
                    })
                    .collect();
                let cut = kernels::dense_in_pieces(&x, rows, &pieces, Activation::Relu);
                // Each column's sum is made in the same order whatever panel it falls in.
                assert!(cut == whole, "{precision:?}, {rows} rows, {edges:?}");
            }
        }
    }
}

#[test]
fn a_block_fused_with_the_stem_matches_the_stem_then_the_block() {
    // (batch, height, width of the image; stem kernel and stride; hidden, outputs; the
    // depthwise kernel and stride). Lite0's stem at its full width, with 96 channels so that
    // each thread's rows take several bands (rows carried between them); Lite0's own block;
    // then odd sizes, a batch, and a strided depthwise.
    let cases = [
        (1, 40, 224, 3, 2, 96, 16, 3, 1),
        (1, 64, 48, 3, 2, 32, 16, 3, 1),
        (2, 23, 17, 3, 2, 32, 24, 3, 2),
        (1, 9, 40, 5, 1, 16, 8, 5, 1),
    ];
    for (i, &(n, h, w, sk, ss, hidden, cout, k, s)) in cases.iter().enumerate() {
        let stem_g = ConvGeometry::same(n, h, w, 3, sk, ss);
        let g = ConvGeometry::same(n, stem_g.out_height, stem_g.out_width, hidden, k, s);
        let seed = 50 + 10 * i as u64;
        let image = noise(n * h * w * 3, seed);
        let stem_w = noise(sk * sk * 3 * hidden, seed + 1);
        let stem_b = noise(hidden, seed + 2);
        let (dw, db) = (noise(k * k * hidden, seed + 3), noise(hidden, seed + 4));
        let (pw, pb) = (noise(hidden * cout, seed + 5), noise(cout, seed + 6));
        let stem = kernels::conv2d(
            &image,
            &stem_g,
            Matrix::F32(&stem_w),
            &stem_b,
            Activation::Relu6,
        );
        let spread = kernels::depthwise(&stem, &g, &dw, &db, Activation::Relu6);
        let out_pixels = g.batch * g.out_height * g.out_width;
        let expected = kernels::dense(
            &spread,
            out_pixels,
            Matrix::F32(&pw),
            &pb,
            Activation::None,
            None,
        );
        let expand = kernels::Expansion::Conv {
            w: Matrix::F32(&stem_w),
            bias: &stem_b,
            conv: stem_g,
        };
        let depthwise = kernels::Depthwise { w: &dw, bias: &db };
        let project = kernels::Pointwise {
            w: Matrix::F32(&pw),
            bias: &pb,
        };
        let got = kernels::inverted_residual(&image, &g, expand, depthwise, project, false);
        let diff = max_abs_diff(&got, &expected);
        assert!(diff < 1e-4, "case {i} {:?}: differs by {diff}", cases[i]);
    }
}

#[test]
fn winograd_convolution_matches_direct_convolution() {
    // (batch, height, width, inputs, outputs): odd and even sizes, channel counts that use the
    // 16-wide path, the one-by-one remainder, or both; deep layers (computed layer-wide) and
    // wide ones (computed tile row by tile row).
    let cases = [
        (1, 40, 64, 16, 16),
        (2, 33, 50, 16, 24),
        (1, 14, 14, 64, 64),
        (2, 7, 9, 20, 24),
        (1, 1, 1, 16, 3),
        (1, 28, 28, 48, 130),
        (3, 5, 4, 3, 17),
    ];
    for (i, &(n, h, w, cin, cout)) in cases.iter().enumerate() {
        let (fast, direct) = winograd_and_direct(i, (n, h, w, cin, cout), Precision::F32);
        let diff = max_abs_diff(&fast, &direct);
        assert!(diff < 1e-4, "case {i} {:?}: differs by {diff}", cases[i]);
    }
}

/// Winograd (in `precision`) and direct f32 convolution of case `i`'s generated data.
fn winograd_and_direct(
    i: usize,
    (n, h, w, cin, cout): (usize, usize, usize, usize, usize),
    precision: Precision,
) -> (Vec<f32>, Vec<f32>) {
    let g = ConvGeometry::symmetric(n, h, w, cin, 3, 1, 1);
    let seed = 50 + 10 * i as u64;
    let x = noise(n * h * w * cin, seed);
    let weights = noise(9 * cin * cout, seed + 1);
    let bias = noise(cout, seed + 2);
    let direct = kernels::conv2d(&x, &g, Matrix::F32(&weights), &bias, Activation::Relu);
    let transformed =
        lookalike::model::winograd::WinogradWeights::new(&weights, cin, cout, precision);
    let fast =
        lookalike::model::winograd::conv3x3(&x, n, h, w, &transformed, &bias, Activation::Relu);
    (fast, direct)
}

/// In bf16, Winograd's transformed tiles and kernels are rounded to 8 significant bits: the
/// output stays within 2% of the layer's largest output of f32 direct convolution (each output
/// sums 9 × inputs products of values rounded with relative error 2⁻⁸, and the transforms
/// add up to 4 values before rounding), and the cosine between the two is above 0.999.
#[test]
fn winograd_in_bf16_stays_close_to_direct_convolution() {
    if !cpu_has_bf16("winograd_in_bf16_stays_close_to_direct_convolution") {
        return;
    }
    let cases = [
        (1, 40, 64, 16, 16),
        (2, 33, 50, 16, 24),
        (1, 14, 14, 64, 64),
        (1, 28, 28, 48, 130),
        (1, 14, 14, 512, 512),
    ];
    for (i, &case) in cases.iter().enumerate() {
        let (fast, direct) = winograd_and_direct(i, case, Precision::Bf16);
        let largest = max_abs_diff(&direct, &vec![0.0; direct.len()]);
        let diff = max_abs_diff(&fast, &direct);
        assert!(
            diff < 0.02 * largest,
            "case {i} {case:?}: differs by {diff} of {largest}"
        );
        let similarity = lookalike::similarity::cosine(&fast, &direct);
        assert!(similarity > 0.999, "case {i} {case:?}: cosine {similarity}");
    }
}
