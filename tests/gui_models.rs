//! The app's model picker: VGG16 without weights asks before downloading; with a weights file
//! in the models folder it loads and re-indexes the folder with 512-d vectors.
//! (Its own test binary: it points the data and Hugging Face folders at temporary ones.)

mod common;

use std::collections::HashMap;
use std::time::Duration;

use candle_core::{Device, Tensor};
use common::*;
use eframe::egui::accesskit::Role;
use egui_kittest::kittest::Queryable;
use lookalike::index::CacheLocation;

/// A features-only VGG16 file (no classifier), with small deterministic weights.
fn write_features_only_vgg16(path: &std::path::Path) {
    let convs = [
        (0, 3, 64),
        (2, 64, 64),
        (5, 64, 128),
        (7, 128, 128),
        (10, 128, 256),
        (12, 256, 256),
        (14, 256, 256),
        (17, 256, 512),
        (19, 512, 512),
        (21, 512, 512),
        (24, 512, 512),
        (26, 512, 512),
        (28, 512, 512),
    ];
    let mut tensors = HashMap::new();
    for (index, cin, cout) in convs {
        let n = cout * cin * 9;
        let scale = (6.0 / (cin * 9) as f32).sqrt();
        let w: Vec<f32> = (0..n)
            .map(|i| ((i * 2654435761usize % 1000) as f32 / 1000.0 - 0.5) * scale)
            .collect();
        tensors.insert(
            format!("features.{index}.weight"),
            Tensor::from_vec(w, (cout, cin, 3, 3), &Device::Cpu).unwrap(),
        );
        tensors.insert(
            format!("features.{index}.bias"),
            Tensor::zeros(cout, candle_core::DType::F32, &Device::Cpu).unwrap(),
        );
    }
    candle_core::safetensors::save(&tensors, path).unwrap();
}

fn pick_model(harness: &mut egui_kittest::Harness<'_, lookalike::gui::LookalikeApp>, title: &str) {
    harness
        .get_by_role_and_label(Role::ComboBox, "Model:")
        .click();
    harness.run();
    harness.get_by_label(title).click();
    harness.run();
}

#[test]
fn choosing_vgg16_asks_before_downloading_and_uses_weights_from_the_models_folder() {
    let data = tempfile::tempdir().unwrap();
    let hf = tempfile::tempdir().unwrap();
    std::env::set_var("XDG_DATA_HOME", data.path());
    std::env::set_var("HF_HOME", hf.path());
    std::env::remove_var("HF_HUB_CACHE");
    let folder = folder_with(true, &[]);
    let cache = tempfile::tempdir().unwrap();
    let mut harness = open_app_with_cache(
        folder.path(),
        CacheLocation::Dir(cache.path().to_path_buf()),
    );

    // No weights anywhere: a dialog asks; nothing is downloaded unless the user says so.
    pick_model(&mut harness, "VGG16");
    assert!(
        harness.query_by_label("Download (553 MB)").is_some(),
        "the dialog offers the download"
    );
    assert!(harness.query_by_label("Choose file…").is_some());
    harness.get_by_label("Cancel").click();
    harness.run();
    assert_eq!(
        harness.state().settings.model,
        "lite0",
        "cancel keeps the current model"
    );

    // Weights in the models folder: VGG16 loads and the folder is indexed again with it.
    let models = data.path().join("lookalike/models");
    std::fs::create_dir_all(&models).unwrap();
    write_features_only_vgg16(&models.join("vgg16.safetensors"));
    pick_model(&mut harness, "VGG16");
    step_until(
        &mut harness,
        Duration::from_secs(300),
        "indexing with VGG16",
        |h| h.state().is_idle(),
    );
    harness.run();
    assert_eq!(harness.state().settings.model, "vgg16");
    let dims: Vec<usize> = harness
        .state()
        .gallery
        .items
        .iter()
        .filter_map(|i| i.embedding.as_ref().map(Vec::len))
        .collect();
    assert_eq!(dims, vec![512; 8], "every image embedded by VGG16");
    let labels: Vec<String> = harness
        .query_all_by_role(Role::Label)
        .filter_map(|n| n.value())
        .collect();
    assert!(
        labels.iter().any(|l| l.contains("no labels")),
        "a file without a classifier shows no labels: {labels:?}"
    );
}
