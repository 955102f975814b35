//! The bundled EfficientNet-Lite0 against the PyTorch reference: the network's maths on a
//! formula-defined input, and labels and embeddings on the tutorial's own images.

use std::path::{Path, PathBuf};

use candle_core::{Device, Tensor};
use lookalike::model::lite0::Lite0;
use lookalike::model::{Backbone, Precision};
use lookalike::similarity::{cosine, l2_normalise};
use lookalike::{Engine, EngineOptions, ModelKind};
use serde_json::Value;

fn data(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data")
        .join(name)
}

fn load_json(name: &str) -> Value {
    let text = std::fs::read_to_string(data(name)).expect("reference file is in tests/data");
    serde_json::from_str(&text).expect("reference file is JSON")
}

fn floats(v: &Value) -> Vec<f32> {
    v.as_array()
        .expect("array")
        .iter()
        .map(|x| x.as_f64().expect("number") as f32)
        .collect()
}

/// `x[0,c,h,w] = (((c*224*224 + h*224 + w) mod 251) - 125) / 128`, as the reference defines it.
fn synthetic_input() -> Vec<f32> {
    (0..3 * 224 * 224)
        .map(|i| ((i % 251) as f32 - 125.0) / 128.0)
        .collect()
}

fn max_abs_diff(a: &[f32], b: &[f32]) -> f32 {
    assert_eq!(a.len(), b.len());
    a.iter()
        .zip(b)
        .map(|(x, y)| (x - y).abs())
        .fold(0.0, f32::max)
}

#[test]
fn synthetic_input_matches_reference_pooled_features_and_logits() {
    let reference = load_json("lite0-synthetic-input.json");
    let model = Lite0::bundled(Precision::F32).unwrap();
    let input = Tensor::from_vec(synthetic_input(), (1, 3, 224, 224), &Device::Cpu).unwrap();
    let (pooled, logits) = model.forward(&input).unwrap();
    let pooled = pooled.flatten_all().unwrap().to_vec1::<f32>().unwrap();
    let logits = logits
        .unwrap()
        .flatten_all()
        .unwrap()
        .to_vec1::<f32>()
        .unwrap();
    let pooled_diff = max_abs_diff(&pooled, &floats(&reference["pooled_1280"]));
    let logits_diff = max_abs_diff(&logits, &floats(&reference["logits_1000"]));
    assert!(
        pooled_diff < 1e-3,
        "pooled features differ by {pooled_diff}"
    );
    assert!(logits_diff < 1e-3, "logits differ by {logits_diff}");
}

#[test]
fn a_batch_gives_the_same_answer_as_single_images() {
    let model = Lite0::bundled(Precision::F32).unwrap();
    let one = synthetic_input();
    let other: Vec<f32> = one.iter().map(|v| -v * 0.5).collect();
    // Five images: more than one internal slice, and an odd count.
    let batch: Vec<f32> = [&one, &other, &one, &other, &one]
        .into_iter()
        .flatten()
        .copied()
        .collect();
    let (pooled, _) = model.forward_slices(&batch, 5);
    let (single_one, _) = model.forward_slices(&one, 1);
    let (single_other, _) = model.forward_slices(&other, 1);
    for (i, expected) in [
        &single_one,
        &single_other,
        &single_one,
        &single_other,
        &single_one,
    ]
    .into_iter()
    .enumerate()
    {
        let got = &pooled[i * 1280..(i + 1) * 1280];
        assert!(
            max_abs_diff(got, expected) < 1e-4,
            "image {i} of the batch differs"
        );
    }
    assert!(
        max_abs_diff(&single_one, &single_other) > 0.01,
        "different inputs must embed differently"
    );
}

#[test]
fn a_single_image_shared_out_between_any_number_of_threads_gives_the_same_answer() {
    // One image on several threads runs its small blocks and its classifier cut into one
    // piece per thread; 3 and 7 do not divide their channels evenly.
    let model = Lite0::bundled(Precision::F32).unwrap();
    let one = synthetic_input();
    let pool = |threads| {
        rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .build()
            .unwrap()
    };
    let (alone_pooled, alone_logits) = pool(1).install(|| model.forward_slices(&one, 1));
    for threads in [2, 3, 7] {
        let (pooled, logits) = pool(threads).install(|| model.forward_slices(&one, 1));
        let pooled_diff = max_abs_diff(&pooled, &alone_pooled);
        let logits_diff = max_abs_diff(&logits, &alone_logits);
        assert!(
            pooled_diff < 1e-4,
            "{threads} threads: features differ by {pooled_diff}"
        );
        assert!(
            logits_diff < 1e-4,
            "{threads} threads: logits differ by {logits_diff}"
        );
    }
}

/// Whether the bf16 tests can run here; where they cannot, says so in the test output (see
/// `test_runs_on_this_cpu`).
fn cpu_has_bf16(test: &str) -> bool {
    let has = lookalike::model::bf16::supported();
    lookalike::model::test_runs_on_this_cpu(has, test, "AVX512_BF16")
}

fn engine_in(precision: Precision) -> Engine {
    let options = EngineOptions {
        precision,
        ..EngineOptions::default()
    };
    Engine::new(ModelKind::Lite0, options).unwrap()
}

/// The tutorial's images against the PyTorch reference: top-1 class, top-1 probability, and
/// the embedding's cosine with the reference feature.
fn seed_images_match_reference(precision: Precision) {
    let reference = load_json("lite0-seed-images.json");
    let images = reference["images"].as_object().unwrap();
    assert_eq!(images.len(), 9, "all nine seed images are in the reference");
    let engine = engine_in(precision);
    assert_eq!(engine.precision(), precision);
    for (name, expected) in images {
        let analysis = engine
            .analyse_file(&data("seed-images").join(name))
            .unwrap();
        let expected_top1 = expected["top5"][0]["class"].as_u64().unwrap() as usize;
        assert_eq!(analysis.top[0].class, expected_top1, "{name}: top-1 class");
        let similarity = cosine(&analysis.embedding, &floats(&expected["feature"]));
        assert!(
            similarity >= 0.99,
            "{name}: cosine with the reference feature is {similarity}"
        );
        let reference_prob = expected["top5"][0]["prob"].as_f64().unwrap() as f32;
        assert!(
            (analysis.top[0].prob - reference_prob).abs() < 0.05,
            "{name}: top-1 probability"
        );
    }
}

#[test]
fn every_seed_image_matches_reference_label_and_embedding() {
    seed_images_match_reference(Precision::F32);
}

#[test]
fn in_bf16_every_seed_image_keeps_the_reference_label_and_embedding() {
    if !cpu_has_bf16("in_bf16_every_seed_image_keeps_the_reference_label_and_embedding") {
        return;
    }
    seed_images_match_reference(Precision::Bf16);
}

/// Every image the tests ship, in bf16 and in f32: the embeddings agree to a cosine of 0.99 or
/// more (what lets the index keep one set of vectors for both) and the labels agree.
#[test]
fn bf16_embeddings_agree_with_f32_on_every_test_image() {
    if !cpu_has_bf16("bf16_embeddings_agree_with_f32_on_every_test_image") {
        return;
    }
    let (low, full) = (engine_in(Precision::Bf16), engine_in(Precision::F32));
    let mut files: Vec<PathBuf> = ["seed-images", "corpus"]
        .iter()
        .flat_map(|dir| std::fs::read_dir(data(dir)).unwrap())
        .map(|entry| entry.unwrap().path())
        .collect();
    files.sort();
    assert!(files.len() >= 11, "{files:?}");
    let mut worst = 1.0f32;
    for file in &files {
        let (a, b) = (
            low.analyse_file(file).unwrap(),
            full.analyse_file(file).unwrap(),
        );
        let similarity = cosine(&a.embedding, &b.embedding);
        worst = worst.min(similarity);
        assert!(
            similarity >= 0.99,
            "{}: cosine {similarity}",
            file.display()
        );
        assert_eq!(a.top[0].class, b.top[0].class, "{}: top-1", file.display());
    }
    eprintln!(
        "lowest bf16-to-f32 cosine over {} images: {worst}",
        files.len()
    );
}

/// The network's maths on the formula input in bf16: pooled features and logits stay close
/// to the reference (each layer's inputs are rounded to 8 significant bits, so the bound is
/// looser than f32's 1e-3).
#[test]
fn bf16_synthetic_input_stays_close_to_the_reference() {
    if !cpu_has_bf16("bf16_synthetic_input_stays_close_to_the_reference") {
        return;
    }
    let reference = load_json("lite0-synthetic-input.json");
    let model = Lite0::bundled(Precision::Bf16).unwrap();
    let input = Tensor::from_vec(synthetic_input(), (1, 3, 224, 224), &Device::Cpu).unwrap();
    let (pooled, logits) = model.forward(&input).unwrap();
    let mut pooled = pooled.flatten_all().unwrap().to_vec1::<f32>().unwrap();
    let logits = logits
        .unwrap()
        .flatten_all()
        .unwrap()
        .to_vec1::<f32>()
        .unwrap();
    let mut expected_pooled = floats(&reference["pooled_1280"]);
    l2_normalise(&mut pooled);
    l2_normalise(&mut expected_pooled);
    let expected_logits = floats(&reference["logits_1000"]);
    let similarity = cosine(&pooled, &expected_pooled);
    assert!(similarity >= 0.99, "pooled cosine {similarity}");
    let argmax = |v: &[f32]| (0..v.len()).max_by(|&a, &b| v[a].total_cmp(&v[b])).unwrap();
    assert_eq!(argmax(&logits), argmax(&expected_logits), "top-1");
    let spread = max_abs_diff(&expected_logits, &vec![0.0; 1000]);
    let diff = max_abs_diff(&logits, &expected_logits);
    assert!(
        diff < 0.1 * spread,
        "logits differ by {diff} (largest logit {spread})"
    );
}

/// A seed photo enlarged to camera size, as a JPEG file.
fn enlarged_photo(dir: &Path, name: &str, shorter: u32) -> PathBuf {
    let seed = image::open(data("seed-images").join(name))
        .unwrap()
        .to_rgb8();
    let scale = shorter as f64 / seed.width().min(seed.height()) as f64;
    let (w, h) = (
        (seed.width() as f64 * scale) as u32,
        (seed.height() as f64 * scale) as u32,
    );
    let big = image::imageops::resize(&seed, w, h, image::imageops::FilterType::CatmullRom);
    let path = dir.join(name);
    big.save(&path).unwrap();
    path
}

#[test]
fn a_camera_sized_jpeg_decoded_at_reduced_size_embeds_like_a_full_decode() {
    let dir = tempfile::tempdir().unwrap();
    let engine = Engine::new(ModelKind::Lite0, EngineOptions::default()).unwrap();
    let pre = engine.info().preprocess;
    for name in ["elephant.jpg", "Tiger.jpg", "style.jpg", "bird01.jpg"] {
        let path = enlarged_photo(dir.path(), name, 2400);
        // The engine's own path: the JPEG is decoded at a quarter of its size.
        let reduced = engine.analyse_file(&path).unwrap();
        let full_image = lookalike::decode::decode_file(&path).unwrap();
        assert_eq!(
            (reduced.width, reduced.height),
            full_image.rgb.dimensions(),
            "{name}: the full size is reported"
        );
        let input = lookalike::decode::model_input(&full_image.rgb, &pre).unwrap();
        let full = engine.embed_inputs(&[&input]).unwrap().remove(0);
        let similarity = cosine(&reduced.embedding, &full.embedding);
        assert!(
            similarity >= 0.995,
            "{name}: cosine between reduced and full decode is {similarity}"
        );
        assert_eq!(reduced.top[0].class, full.top[0].class, "{name}: top-1");
    }
}
