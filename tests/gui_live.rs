//! The open folder updates itself: images copied in appear with their labels, deleted ones
//! leave, a renamed one keeps its vector without being embedded again, and a burst of files
//! is taken in a few passes rather than one per file. The real app, the real watcher and a
//! real index in a temporary folder.

mod common;

use std::path::Path;
use std::time::Duration;

use common::{folder_with, open_app_with_cache, seeds, step_until, tile_names};
use eframe::egui;
use egui_kittest::Harness;
use lookalike::gui::LookalikeApp;
use lookalike::index::CacheLocation;

/// Long enough for the quiet period, a rescan and embedding a few images on a busy machine.
const LIMIT: Duration = Duration::from_secs(90);

fn names(harness: &Harness<'_, LookalikeApp>) -> Vec<String> {
    let mut names: Vec<String> = (harness.state().gallery().items.iter())
        .filter(|i| !i.removed)
        .map(|i| i.name.clone())
        .collect();
    names.sort();
    names
}

fn labelled(harness: &Harness<'_, LookalikeApp>, name: &str) -> bool {
    (harness.state().gallery().items.iter()).any(|i| i.name == name && !i.top.is_empty())
}

fn embedding_of(harness: &Harness<'_, LookalikeApp>, name: &str) -> Option<Vec<f32>> {
    let gallery = harness.state().gallery();
    let at = gallery.items.iter().position(|i| i.name == name)?;
    gallery.vectors.get(at)
}

/// A folder holding only `tiger.jpg` and `bird.jpg`, and the app open on it with its index in
/// `cache`.
fn open_small_folder(cache: &Path) -> (tempfile::TempDir, Harness<'static, LookalikeApp>) {
    let dir = tempfile::tempdir().unwrap();
    std::fs::copy(seeds::seed("Tiger.jpg"), dir.path().join("tiger.jpg")).unwrap();
    std::fs::copy(seeds::seed("bird01.jpg"), dir.path().join("bird.jpg")).unwrap();
    let harness = open_app_with_cache(dir.path(), CacheLocation::Dir(cache.to_path_buf()));
    assert!(
        harness.state().is_watching(),
        "{}",
        harness.state().status()
    );
    assert_eq!(names(&harness), ["bird.jpg", "tiger.jpg"]);
    (dir, harness)
}

#[test]
fn images_copied_into_the_open_folder_appear_with_labels_and_deleted_ones_leave() {
    let cache = tempfile::tempdir().unwrap();
    let (dir, mut harness) = open_small_folder(cache.path());
    for (seed, name) in [
        ("elephant.jpg", "elephant.jpg"),
        ("Tiger2.jpg", "tiger2.jpg"),
        ("input.jpg", "input.jpg"),
    ] {
        std::fs::copy(seeds::seed(seed), dir.path().join(name)).unwrap();
    }
    step_until(&mut harness, LIMIT, "the copied images to appear", |h| {
        ["elephant.jpg", "tiger2.jpg", "input.jpg"]
            .iter()
            .all(|n| labelled(h, n))
    });
    assert_eq!(names(&harness).len(), 5);
    let elephant = harness
        .state()
        .gallery()
        .items
        .iter()
        .find(|i| i.name == "elephant.jpg");
    let top = &elephant.unwrap().top[0].label;
    assert!(top.contains("elephant") || top.contains("tusker"), "{top}");
    let bird = harness
        .state()
        .gallery()
        .items
        .iter()
        .find(|i| i.name == "bird.jpg");
    let bird_label = bird.unwrap().top[0].label.clone();

    // A picture saved over with another: analysed again.
    std::fs::copy(seeds::seed("bird01.jpg"), dir.path().join("elephant.jpg")).unwrap();
    step_until(
        &mut harness,
        LIMIT,
        "the changed image to be analysed again",
        |h| {
            let items = &h.state().gallery().items;
            let changed = items.iter().find(|i| i.name == "elephant.jpg");
            h.state().is_idle()
                && changed.is_some_and(|i| i.top.first().is_some_and(|p| p.label == bird_label))
        },
    );
    assert_eq!(
        harness.state().progress().unwrap().embedded,
        1,
        "only the changed file"
    );

    std::fs::remove_file(dir.path().join("tiger.jpg")).unwrap();
    step_until(&mut harness, LIMIT, "the deleted image to leave", |h| {
        !names(h).contains(&"tiger.jpg".to_string()) && h.state().is_idle()
    });
    assert_eq!(
        names(&harness),
        ["bird.jpg", "elephant.jpg", "input.jpg", "tiger2.jpg"]
    );
}

#[test]
fn a_renamed_image_keeps_its_vector_without_being_embedded_again() {
    let cache = tempfile::tempdir().unwrap();
    let (dir, mut harness) = open_small_folder(cache.path());
    let before = embedding_of(&harness, "tiger.jpg").expect("the tiger is embedded");
    let rescans = harness.state().rescans();
    std::fs::rename(dir.path().join("tiger.jpg"), dir.path().join("big cat.jpg")).unwrap();
    step_until(&mut harness, LIMIT, "the renamed image to show", |h| {
        h.state().rescans() > rescans && h.state().is_idle() && labelled(h, "big cat.jpg")
    });
    assert_eq!(names(&harness), ["big cat.jpg", "bird.jpg"]);
    assert_eq!(embedding_of(&harness, "big cat.jpg"), Some(before));
    let progress = harness.state().progress().unwrap();
    assert_eq!(progress.done, 2, "the rescan went through both images");
    assert_eq!(progress.embedded, 0, "the rescan embedded nothing again");
}

#[test]
fn a_search_stays_on_and_places_a_new_image_by_its_score() {
    let cache = tempfile::tempdir().unwrap();
    let (dir, mut harness) = open_small_folder(cache.path());
    let tiger = (harness.state().gallery().items.iter())
        .position(|i| i.name == "tiger.jpg")
        .unwrap();
    harness.state_mut().sort_by(tiger);
    harness.run();
    std::fs::copy(
        seeds::seed("Tiger2.jpg"),
        dir.path().join("another tiger.jpg"),
    )
    .unwrap();
    step_until(&mut harness, LIMIT, "the new tiger to be scored", |h| {
        h.state().is_idle() && labelled(h, "another tiger.jpg")
    });
    harness.run();
    let gallery = harness.state().gallery();
    let query = gallery.query().map(|i| gallery.items[i].name.as_str());
    assert_eq!(query, Some("tiger.jpg"), "the search follows its image");
    assert_eq!(
        tile_names(&harness),
        ["tiger.jpg", "another tiger.jpg", "bird.jpg"]
    );
}

/// How many files the burst writes.
const BURST: usize = 40;

#[test]
fn a_burst_of_files_is_taken_in_a_few_passes() {
    let cache = tempfile::tempdir().unwrap();
    let (dir, mut harness) = open_small_folder(cache.path());
    let rescans = harness.state().rescans();
    // Different small pictures, written as fast as the disk takes them. (40: enough for a
    // burst that the quiet period must fold, few enough to embed quickly on a small machine.)
    let base = image::open(seeds::seed("elephant.jpg"))
        .unwrap()
        .thumbnail(96, 96)
        .to_rgb8();
    for n in 0..BURST as u8 {
        let mut picture = base.clone();
        picture
            .pixels_mut()
            .for_each(|p| p.0[0] = p.0[0].wrapping_add(n * 5));
        picture
            .save(dir.path().join(format!("burst {n:02}.png")))
            .unwrap();
    }
    step_until(&mut harness, LIMIT, "the burst to be indexed", |h| {
        h.state().is_idle()
            && names(h).len() == BURST + 2
            && (0..BURST).all(|n| labelled(h, &format!("burst {n:02}.png")))
    });
    let passes = harness.state().rescans() - rescans;
    assert!(
        (1..=3).contains(&passes),
        "{passes} rescans for {BURST} files"
    );
}

#[test]
fn f5_rescans_the_folder() {
    let folder = folder_with(true, &[]);
    let cache = tempfile::tempdir().unwrap();
    let mut harness = open_app_with_cache(
        folder.path(),
        CacheLocation::Dir(cache.path().to_path_buf()),
    );
    let rescans = harness.state().rescans();
    harness.key_press(egui::Key::F5);
    step_until(&mut harness, LIMIT, "the rescan", |h| {
        h.state().rescans() == rescans + 1 && h.state().is_idle()
    });
    assert_eq!(harness.state().progress().unwrap().embedded, 0);
}
