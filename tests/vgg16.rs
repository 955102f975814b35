//! VGG16 against torchvision. The weights are defined by a formula that
//! `scripts/vgg16_reference.py` also uses to fill torchvision's `vgg16()`; the script's outputs
//! for a formula-defined input are committed in `tests/data/vgg16-reference.json`. The test
//! writes the same weights in the timm `vgg16.tv_in1k` layout and compares the raw 512-d
//! embedding and the 1000 logits element by element (random weights make embeddings of
//! different images nearly parallel, so a cosine would prove little).

mod seeds;
use seeds::seed;

mod vgg16_file;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

use candle_core::{Device, Tensor};
use lookalike::model::weights::open_vgg16;
use lookalike::model::{Backbone, Precision};
use serde_json::Value;
use vgg16_file::CONVS;

/// Element `i` of tensor number `ordinal`, exactly as `scripts/vgg16_reference.py` computes it.
fn formula(n: usize, ordinal: u64, fan_in: usize, is_bias: bool) -> Vec<f32> {
    let salt = ordinal * 1_000_003 + 12_345;
    let scale = (6.0 / fan_in as f64).sqrt();
    (0..n as u64)
        .map(|i| {
            let h = (i.wrapping_mul(2_654_435_761).wrapping_add(salt) % (1u64 << 32)) as f64
                / 2f64.powi(32);
            (if is_bias {
                (h - 0.5) * 0.02
            } else {
                (h - 0.5) * 2.0 * scale
            }) as f32
        })
        .collect()
}

/// (name, shape, fan-in) of every tensor, in the reference script's order.
fn layout(with_head: bool) -> Vec<(String, Vec<usize>, usize)> {
    let mut out = Vec::new();
    for (index, cin, cout) in CONVS {
        out.push((
            format!("features.{index}.weight"),
            vec![cout, cin, 3, 3],
            cin * 9,
        ));
        out.push((format!("features.{index}.bias"), vec![cout], 1));
    }
    if with_head {
        out.push(("pre_logits.fc1.weight".into(), vec![4096, 512, 7, 7], 25088));
        out.push(("pre_logits.fc1.bias".into(), vec![4096], 1));
        out.push(("pre_logits.fc2.weight".into(), vec![4096, 4096, 1, 1], 4096));
        out.push(("pre_logits.fc2.bias".into(), vec![4096], 1));
        out.push(("head.fc.weight".into(), vec![1000, 4096], 4096));
        out.push(("head.fc.bias".into(), vec![1000], 1));
    }
    out
}

fn write_weights(path: &Path, with_head: bool) {
    let mut tensors = HashMap::new();
    for (ordinal, (name, shape, fan_in)) in layout(with_head).into_iter().enumerate() {
        let n = shape.iter().product();
        let values = formula(n, ordinal as u64, fan_in, name.ends_with("bias"));
        tensors.insert(name, Tensor::from_vec(values, shape, &Device::Cpu).unwrap());
    }
    candle_core::safetensors::save(&tensors, path).unwrap();
}

/// The full weights file, written once per test run (about 553 MB, in a temporary folder).
fn full_weights() -> &'static Path {
    static FILE: OnceLock<(tempfile::TempDir, PathBuf)> = OnceLock::new();
    let (_, path) = FILE.get_or_init(|| {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("vgg16.safetensors");
        write_weights(&path, true);
        (dir, path)
    });
    path
}

fn reference() -> Value {
    let text = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/vgg16-reference.json"),
    )
    .unwrap();
    serde_json::from_str(&text).unwrap()
}

fn floats(v: &Value) -> Vec<f32> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_f64().unwrap() as f32)
        .collect()
}

/// Every element within 1e-3 of the reference, relative to its own size (with a floor at
/// 1e-3 of the vector's largest element, for values that are nearly zero).
fn assert_close(what: &str, got: &[f32], expected: &[f32]) {
    assert_eq!(got.len(), expected.len(), "{what}: length");
    let largest = expected.iter().fold(0f32, |m, v| m.max(v.abs()));
    for (i, (g, e)) in got.iter().zip(expected).enumerate() {
        let allowed = 1e-3 * e.abs().max(largest * 1e-3);
        assert!(
            (g - e).abs() <= allowed,
            "{what}[{i}]: {g} vs torchvision {e}"
        );
    }
    assert!(largest > 0.0, "{what}: the reference is all zeros");
}

fn formula_input() -> Tensor {
    let x: Vec<f32> = (0..3 * 224 * 224)
        .map(|i| ((i % 251) as f32 - 125.0) / 128.0)
        .collect();
    Tensor::from_vec(x, (1, 3, 224, 224), &Device::Cpu).unwrap()
}

#[test]
fn embedding_and_logits_match_torchvision() {
    let reference = reference();
    let model = open_vgg16(full_weights(), Precision::F32).unwrap();
    assert!(model.has_classifier());
    let (embedding, logits) = model.forward(&formula_input()).unwrap();
    let embedding = embedding.flatten_all().unwrap().to_vec1::<f32>().unwrap();
    let logits = logits
        .expect("the file has a head")
        .flatten_all()
        .unwrap()
        .to_vec1::<f32>()
        .unwrap();
    assert_close(
        "embedding",
        &embedding,
        &floats(&reference["embedding_512"]),
    );
    assert_close("logits", &logits, &floats(&reference["logits_1000"]));
}

/// VGG16 in bf16 (its Winograd products rounded to bf16) against f32 on the formula input and
/// its negation: the embeddings agree to a cosine of 0.99 or more.
#[test]
fn bf16_embeddings_agree_with_f32() {
    if !lookalike::model::test_runs_on_this_cpu(
        lookalike::model::bf16::supported(),
        "bf16_embeddings_agree_with_f32",
        "AVX512_BF16",
    ) {
        return;
    }
    let low = open_vgg16(full_weights(), Precision::Bf16).unwrap();
    let full = open_vgg16(full_weights(), Precision::F32).unwrap();
    let one = formula_input();
    let batch = Tensor::cat(&[&one, &(one.clone() * -0.5).unwrap()], 0).unwrap();
    let (a, b) = (low.embed(&batch).unwrap(), full.embed(&batch).unwrap());
    for image in 0..2 {
        let mut a = a.get(image).unwrap().to_vec1::<f32>().unwrap();
        let mut b = b.get(image).unwrap().to_vec1::<f32>().unwrap();
        lookalike::similarity::l2_normalise(&mut a);
        lookalike::similarity::l2_normalise(&mut b);
        let similarity = lookalike::similarity::cosine(&a, &b);
        eprintln!("image {image}: bf16-to-f32 cosine {similarity}");
        assert!(similarity >= 0.99, "image {image}: cosine {similarity}");
    }
}

#[test]
fn a_batch_matches_single_images() {
    let model = open_vgg16(full_weights(), Precision::F32).unwrap();
    let one = formula_input();
    let other = (one.clone() * -0.5).unwrap();
    let batch = Tensor::cat(&[&one, &other], 0).unwrap();
    let (together, _) = model.forward(&batch).unwrap();
    let (alone, _) = model.forward(&other).unwrap();
    let together = together.get(1).unwrap().to_vec1::<f32>().unwrap();
    let alone = alone.get(0).unwrap().to_vec1::<f32>().unwrap();
    assert_close("second image of a batch", &together, &alone);
}

#[test]
fn classify_and_embed_run_end_to_end_with_a_weights_file() {
    let weights = full_weights();
    let images = [seed("elephant.jpg"), seed("input.jpg")];
    let out = Command::new(env!("CARGO_BIN_EXE_lookalike"))
        .args(["classify", "--model", "vgg16", "--json", "--weights"])
        .arg(weights)
        .args(&images)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let lines: Vec<Value> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 2);
    for line in &lines {
        let top = line["top"].as_array().unwrap();
        assert_eq!(top.len(), 5, "{line}");
        assert!(top[0]["class"].as_u64().unwrap() < 1000 && top[0]["label"].is_string());
    }
    let out = Command::new(env!("CARGO_BIN_EXE_lookalike"))
        .args(["embed", "--model", "vgg16", "--json", "--weights"])
        .arg(weights)
        .args(&images)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(stdout.lines().count(), images.len(), "one line per image");
    for line in stdout.lines() {
        let v: Value = serde_json::from_str(line).unwrap();
        assert_eq!(v["model"], "vgg16");
        assert_eq!(v["dim"], 512);
        let norm: f64 = v["embedding"]
            .as_array()
            .unwrap()
            .iter()
            .map(|x| x.as_f64().unwrap().powi(2))
            .sum();
        assert!((norm.sqrt() - 1.0).abs() < 1e-4);
    }
}

#[test]
fn a_features_only_file_embeds_and_has_no_labels() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("features-only.safetensors");
    write_weights(&path, false);
    let model = open_vgg16(&path, Precision::F32).unwrap();
    assert!(!model.has_classifier());
    let (embedding, logits) = model.forward(&formula_input()).unwrap();
    assert!(logits.is_none());
    let embedding = embedding.flatten_all().unwrap().to_vec1::<f32>().unwrap();
    assert_close(
        "embedding without a head",
        &embedding,
        &floats(&reference()["embedding_512"]),
    );

    let out = Command::new(env!("CARGO_BIN_EXE_lookalike"))
        .args(["classify", "--model", "vgg16", "--weights"])
        .arg(&path)
        .arg(seed("Tiger.jpg"))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "labels unavailable is not a failure: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("labels unavailable"));
}

#[test]
fn without_weights_the_message_says_what_to_fetch_and_where_to_put_it() {
    let empty = tempfile::tempdir().unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_lookalike"))
        .args(["classify", "--model", "vgg16"])
        .arg(seed("Tiger.jpg"))
        .env("HF_HUB_CACHE", empty.path())
        .env("XDG_DATA_HOME", empty.path())
        .env("HOME", empty.path())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    for needed in [
        "model.safetensors",
        "timm/vgg16.tv_in1k",
        "553 MB",
        "curl -L",
        "--weights",
        "vgg16.safetensors",
    ] {
        assert!(
            stderr.contains(needed),
            "the message lacks {needed:?}: {stderr}"
        );
    }
}

#[test]
fn the_classifier_is_read_only_when_labels_are_wanted() {
    let model = open_vgg16(full_weights(), Precision::F32).unwrap();
    let embedding = model.embed(&formula_input()).unwrap();
    assert_eq!(embedding.dims(), [1, 512]);
    assert!(
        !model.classifier_loaded(),
        "embedding alone leaves the 411 MB layer on disk"
    );
    model.forward(&formula_input()).unwrap();
    assert!(model.classifier_loaded());
}
