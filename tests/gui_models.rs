//! The app's model picker: VGG16 without weights asks before downloading; with a weights file
//! in the models folder it loads and re-indexes the folder with 512-d vectors.
//! The first test runs in a child process whose data and Hugging Face folders are temporary
//! ones (see `own_data`), so that no test changes the environment of a running process.

mod common;
mod own_data;
mod vgg16_file;

use std::time::Duration;

use common::*;
use eframe::egui::accesskit::Role;
use egui_kittest::kittest::Queryable;
use lookalike::index::CacheLocation;
use lookalike::ModelKind;
use own_data::own_data;

fn pick_model(harness: &mut egui_kittest::Harness<'_, lookalike::gui::LookalikeApp>, title: &str) {
    harness
        .get_by_role_and_label(Role::ComboBox, "Model:")
        .click();
    harness.run();
    harness.get_by_label(title).click();
    // A new model starts indexing at once, and its spinner keeps asking for frames: step a
    // few frames rather than waiting for the window to settle.
    harness.run_steps(4);
}

#[test]
fn choosing_vgg16_asks_before_downloading_and_uses_weights_from_the_models_folder() {
    let Some(own) =
        own_data("choosing_vgg16_asks_before_downloading_and_uses_weights_from_the_models_folder")
    else {
        return;
    };
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
        harness.state().settings().model,
        ModelKind::Lite0,
        "cancel keeps the current model"
    );

    // Weights in the models folder: VGG16 loads and the folder is indexed again with it.
    let models = own.data.join("lookalike/models");
    std::fs::create_dir_all(&models).unwrap();
    vgg16_file::write_features_only(&models.join("vgg16.safetensors"));
    pick_model(&mut harness, "VGG16");
    step_until(
        &mut harness,
        Duration::from_secs(300),
        "indexing with VGG16",
        |h| h.state().is_idle(),
    );
    harness.run();
    assert_eq!(harness.state().settings().model, ModelKind::Vgg16);
    let gallery = harness.state().gallery();
    let dims: Vec<usize> = (0..gallery.items.len())
        .filter_map(|i| gallery.vectors.get(i).map(|v| v.len()))
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

#[test]
fn choosing_a_precision_reloads_the_model_and_keeps_the_index() {
    let folder = folder_with(true, &[]);
    let cache = tempfile::tempdir().unwrap();
    let mut harness = open_app_with_cache(
        folder.path(),
        CacheLocation::Dir(cache.path().to_path_buf()),
    );
    // Auto runs what it measured fastest on this CPU (or the one path there is).
    let auto = lookalike::model::auto::kept(ModelKind::Lite0)
        .map(|choice| choice.precision)
        .unwrap_or(lookalike::model::Precision::F32);
    assert_eq!(harness.state().running_precision(), auto);
    let shown = harness
        .get_by_role_and_label(Role::ComboBox, "Precision:")
        .value();
    assert_eq!(
        shown.as_deref(),
        Some(format!("Auto ({})", auto.name()).as_str())
    );

    harness
        .get_by_role_and_label(Role::ComboBox, "Precision:")
        .click();
    harness.run();
    harness.get_by_label("f32").click();
    harness.run_steps(4);
    step_until(
        &mut harness,
        Duration::from_secs(120),
        "looking at the folder again",
        |h| h.state().is_idle(),
    );
    harness.run();
    let app = harness.state();
    assert_eq!(app.settings().precision, lookalike::model::Precision::F32);
    assert_eq!(app.running_precision(), lookalike::model::Precision::F32);
    let progress = app.progress().expect("the folder was looked at again");
    assert_eq!(progress.done, 8, "{progress:?}");
    assert_eq!(
        progress.embedded, 0,
        "the index serves both precisions: nothing is embedded again"
    );
    let gallery = app.gallery();
    let embedded = (0..gallery.items.len())
        .filter(|&i| gallery.items[i].analysed && gallery.vectors.has(i))
        .count();
    assert_eq!(embedded, 8);
}
