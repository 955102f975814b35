//! Searching with several examples in the app: Ctrl+click two tiles and search by both, add
//! and remove a "less like this" example, drop a picture from outside the folder, and hide
//! the images below a score cut-off.

mod common;

use common::*;
use eframe::egui::{self, accesskit::Role};
use egui_kittest::kittest::Queryable;

#[test]
fn ctrl_click_two_tiles_then_search_by_both() {
    let folder = folder_with(true, &[]);
    let mut harness = open_app(folder.path());
    harness
        .get_by_role_and_label(Role::Image, "Tiger3.jpg")
        .click_modifiers(egui::Modifiers::COMMAND);
    harness.run();
    harness
        .get_by_role_and_label(Role::Image, "Tiger.jpg")
        .click_modifiers(egui::Modifiers::COMMAND);
    harness.run();
    assert_eq!(harness.state().gallery().picked.len(), 2, "two picked");
    assert!(
        !harness.state().gallery().is_searching(),
        "picking does not sort yet"
    );
    harness.get_by_label("Find similar to 2 selected").click();
    harness.run();
    let order = tile_names(&harness);
    let first_three: Vec<&str> = order[..3].iter().map(String::as_str).collect();
    assert!(
        first_three.contains(&"Tiger2.jpg") && first_three.contains(&"Tiger.jpg"),
        "the tigers lead: {order:?}"
    );
    assert_eq!(harness.state().gallery().examples().len(), 2);
    assert!(
        harness.query_by_label("like Tiger3.jpg").is_some(),
        "a chip per example"
    );
    assert!(harness.query_by_label("like Tiger.jpg").is_some());
}

#[test]
fn a_negative_chip_can_be_added_and_taken_out() {
    let folder = folder_with(true, &[]);
    let mut harness = open_app(folder.path());
    click_image(&mut harness, "Tiger3.jpg");
    let plain = tile_names(&harness);
    let place = |order: &[String], name: &str| order.iter().position(|n| n == name).unwrap();
    harness
        .get_by_role_and_label(Role::Image, "Tiger2.jpg")
        .click_secondary();
    harness.run();
    harness.get_by_label("Less like this").click();
    harness.run();
    assert!(
        harness.query_by_label("unlike Tiger2.jpg").is_some(),
        "a red chip"
    );
    let pushed = tile_names(&harness);
    assert!(
        place(&pushed, "Tiger2.jpg") > place(&plain, "Tiger2.jpg"),
        "{plain:?} then {pushed:?}"
    );
    // Its × takes it out again, and the order is back.
    let remove = harness
        .query_all_by_label("×")
        .last()
        .expect("a remove button per chip");
    remove.click();
    harness.run();
    assert!(harness.query_by_label("unlike Tiger2.jpg").is_none());
    assert_eq!(tile_names(&harness), plain);
}

#[test]
fn a_picture_dropped_from_outside_sorts_the_folder_and_changes_nothing() {
    let folder = folder_with(true, &[]);
    let outside = tempfile::tempdir().unwrap();
    let picture = outside.path().join("from the web.jpg");
    std::fs::copy(folder.path().join("elephant.jpg"), &picture).unwrap();
    let mut harness = open_app(folder.path());
    let before = tile_names(&harness).len();
    harness
        .input_mut()
        .dropped_files
        .push(std::sync::Arc::new(Dropped(picture.clone())));
    step_until(
        &mut harness,
        std::time::Duration::from_secs(30),
        "the dropped picture sorting the grid",
        |h| h.state().gallery().is_searching(),
    );
    harness.run();
    let order = tile_names(&harness);
    assert_eq!(
        order[0], "elephant.jpg",
        "its twin in the folder comes first: {order:?}"
    );
    assert_eq!(order.len(), before, "the folder is unchanged");
    assert_eq!(
        harness.state().folder(),
        Some(folder.path()),
        "still the same folder"
    );
    assert!(harness.query_by_label("like from the web.jpg").is_some());
    assert_eq!(std::fs::read_dir(folder.path()).unwrap().count(), before);
}

#[test]
fn the_cut_off_hides_tiles_and_counts_what_is_above() {
    let folder = folder_with(true, &[]);
    let mut harness = open_app(folder.path());
    click_image(&mut harness, "Tiger3.jpg");
    let all = tile_names(&harness).len();
    harness
        .get_by_role_and_label(Role::Slider, "Cut-off:")
        .set_value_accesskit(0.3);
    harness.run();
    let scores = harness.state().gallery().scores.clone();
    let above = scores.iter().flatten().filter(|&&s| s >= 0.3).count();
    assert!(
        above > 1 && above < all,
        "the cut falls inside the folder: {above} of {all}"
    );
    assert!(
        harness
            .query_by_label(&format!("{above} of {all} above 0.30"))
            .is_some(),
        "the count says so"
    );
    assert_eq!(
        tile_names(&harness).len(),
        all,
        "nothing hidden until asked"
    );
    harness.get_by_label("Hide below").click();
    harness.run();
    assert_eq!(tile_names(&harness).len(), above);
    harness.get_by_label("Hide below").click();
    harness.run();
    assert_eq!(tile_names(&harness).len(), all);
}
