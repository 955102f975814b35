//! The app's Duplicates view: open a folder, open the view, move between levels and see the
//! groups change, mark a file and move it to the trash, which here is a test-controlled
//! folder (`XDG_DATA_HOME`). The file must be in the trash, not deleted, the move logged, and
//! the index must no longer list it. (Its own test binary: it points the data folder at a
//! temporary one.)

mod common;

use std::time::Duration;

use common::*;
use eframe::egui::accesskit::Role;
use egui_kittest::kittest::Queryable;
use egui_kittest::Harness;
use lookalike::gui::LookalikeApp;
use lookalike::index::{CacheLocation, SqliteIndex, Store};

/// Seed photos plus two edited copies: a half-size Tiger and a darker elephant.
fn folder_with_copies() -> tempfile::TempDir {
    let folder = folder_with(true, &[]);
    let tiger = image::open(folder.path().join("Tiger.jpg")).unwrap();
    tiger
        .resize(
            tiger.width() / 2,
            tiger.height() / 2,
            image::imageops::FilterType::Triangle,
        )
        .to_rgb8()
        .save_with_format(
            folder.path().join("Tiger small.jpg"),
            image::ImageFormat::Jpeg,
        )
        .unwrap();
    image::open(folder.path().join("elephant.jpg"))
        .unwrap()
        .brighten(-60)
        .to_rgb8()
        .save_with_format(
            folder.path().join("elephant dark.jpg"),
            image::ImageFormat::Jpeg,
        )
        .unwrap();
    folder
}

/// The group headings the view shows ("Group 1 · 2 pictures", ...).
fn group_headings(harness: &Harness<'_, LookalikeApp>) -> Vec<String> {
    harness
        .query_all_by_role(Role::Label)
        .filter_map(|n| n.value())
        .filter(|v| v.starts_with("Group "))
        .collect()
}

fn wait_for_groups(harness: &mut Harness<'_, LookalikeApp>, what: &str) {
    step_until(harness, Duration::from_secs(30), what, |h| {
        !group_headings(h).is_empty()
    });
    harness.run();
}

/// The app on a folder with copies, its index in a temporary folder, and the Duplicates view
/// open with its groups found.
fn open_duplicates_view() -> (
    tempfile::TempDir,
    tempfile::TempDir,
    Harness<'static, LookalikeApp>,
) {
    let folder = folder_with_copies();
    let cache = tempfile::tempdir().unwrap();
    let mut harness = open_app_with_cache(
        folder.path(),
        CacheLocation::Dir(cache.path().to_path_buf()),
    );
    harness.get_by_label("Duplicates").click();
    harness.run();
    wait_for_groups(&mut harness, "the photo-level groups");
    (folder, cache, harness)
}

#[test]
fn duplicates_view_groups_marks_and_moves_to_the_trash() {
    let data = tempfile::tempdir().unwrap();
    std::env::set_var("XDG_DATA_HOME", data.path());
    let (folder, cache, mut harness) = open_duplicates_view();
    assert_eq!(
        group_headings(&harness),
        ["Group 1 · 2 pictures", "Group 2 · 2 pictures"],
        "the two edited copies with their originals"
    );

    // The same subject takes in more: the three tigers, at least.
    harness.get_by_label("Same subject").click();
    harness.run();
    let loose = group_headings(&harness);
    assert_ne!(
        loose,
        ["Group 1 · 2 pictures", "Group 2 · 2 pictures"],
        "{loose:?}"
    );
    harness.get_by_label("Same photo").click();
    harness.run();
    assert_eq!(group_headings(&harness).len(), 2);

    // Both copies are marked for removal; a click on the darker elephant keeps it.
    assert!(harness.query_by_label("Move marked to trash (2)").is_some());
    harness
        .get_by_role_and_label(Role::Image, "elephant dark.jpg")
        .click();
    harness.run();
    harness.get_by_label("Move marked to trash (1)").click();
    harness.run();
    let small_bytes = std::fs::metadata(folder.path().join("Tiger small.jpg"))
        .unwrap()
        .len();
    assert!(
        harness.query_by_label_contains("Move 1 file (").is_some(),
        "the user is asked first"
    );
    assert!(
        folder.path().join("Tiger small.jpg").exists(),
        "nothing moves before that"
    );
    let canonical = std::fs::canonicalize(folder.path().join("Tiger small.jpg")).unwrap();
    harness.get_by_label("Move to trash").click();
    harness.run();

    // Moved, not deleted: in the trash with its .trashinfo, gone from the folder.
    assert!(!folder.path().join("Tiger small.jpg").exists());
    assert!(
        folder.path().join("elephant dark.jpg").exists(),
        "the unmarked copy stays"
    );
    let trashed = data.path().join("Trash/files/Tiger small.jpg");
    assert_eq!(std::fs::metadata(&trashed).unwrap().len(), small_bytes);
    assert!(data
        .path()
        .join("Trash/info/Tiger small.jpg.trashinfo")
        .exists());
    // Logged, and forgotten by the index.
    let log = std::fs::read_to_string(data.path().join("lookalike/trash-log.jsonl")).unwrap();
    assert_eq!(log.lines().count(), 1);
    assert!(
        log.contains("Tiger small.jpg") && log.contains("\"group\":"),
        "{log}"
    );
    let mut index = SqliteIndex::open(cache.path()).unwrap();
    assert!(
        index.lookup(&canonical).unwrap().is_none(),
        "the index forgot it"
    );
    assert!(index
        .lookup(&std::fs::canonicalize(folder.path().join("Tiger.jpg")).unwrap())
        .unwrap()
        .is_some());
    // And it left the view and the grid.
    harness.run();
    assert!(harness.query_by_label("Tiger small.jpg").is_none());
    assert!(
        harness.state().status().contains("Moved 1 file ("),
        "{}",
        harness.state().status()
    );
    harness.get_by_label("Duplicates").click();
    harness.run();
    assert!(!tile_names(&harness).iter().any(|n| n == "Tiger small.jpg"));
    assert!(tile_names(&harness)
        .iter()
        .any(|n| n == "elephant dark.jpg"));
}

#[test]
fn marks_follow_their_files_when_the_folder_changes() {
    let (folder, _cache, mut harness) = open_duplicates_view();
    assert!(harness.query_by_label("Move marked to trash (2)").is_some());
    harness
        .get_by_role_and_label(Role::Image, "elephant dark.jpg")
        .click();
    harness.run();
    assert!(harness.query_by_label("Move marked to trash (1)").is_some());

    // A new picture arrives while the user reviews: the gallery is renumbered.
    std::fs::copy(
        seeds::seed("bird01.jpg"),
        folder.path().join("a new bird.jpg"),
    )
    .unwrap();
    let arrived = |h: &Harness<'_, LookalikeApp>| {
        let items = &h.state().gallery().items;
        h.state().is_idle()
            && items
                .iter()
                .any(|i| i.name == "a new bird.jpg" && !i.top.is_empty())
    };
    step_until(
        &mut harness,
        Duration::from_secs(60),
        "the new picture",
        arrived,
    );
    wait_for_groups(&mut harness, "the groups again");
    assert!(
        harness.query_by_label("Move marked to trash (1)").is_some(),
        "the kept elephant is still kept"
    );
}
