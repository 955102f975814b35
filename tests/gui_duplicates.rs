//! The app's Duplicates view: open a folder, open the view, move between levels and see the
//! groups change, mark a file and move it to the trash, which here is a test-controlled
//! folder (`XDG_DATA_HOME`, set for a child process only: see `own_data`). The file must be in
//! the trash, not deleted, the move logged, and the index must no longer list it. Marks belong
//! to pictures and survive regrouping, a group always keeps a picture, and the confirmation
//! lists what will move.

mod common;
mod own_data;

use std::time::Duration;

use common::*;
use eframe::egui::accesskit::Role;
use egui_kittest::kittest::{By, NodeT, Queryable};
use egui_kittest::Harness;
use lookalike::gui::LookalikeApp;
use lookalike::index::{CacheLocation, SqliteIndex, Store};
use own_data::own_data;

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

/// Whether a label is a group's heading ("Group 1 · 2 pictures"), not a note about one.
fn is_heading(label: &str) -> bool {
    label.starts_with("Group ") && label.ends_with(" pictures")
}

/// The group headings the view shows ("Group 1 · 2 pictures", ...).
fn group_headings(harness: &Harness<'_, LookalikeApp>) -> Vec<String> {
    harness
        .query_all_by_role(Role::Label)
        .filter_map(|n| n.value())
        .filter(|v| is_heading(v))
        .collect()
}

/// The groups the view shows: each picture's name and mark ("keep" or "remove"), in order.
fn groups(harness: &Harness<'_, LookalikeApp>) -> Vec<Vec<(String, String)>> {
    let wanted = By::new().predicate(|n| {
        let value = n.value().unwrap_or_default();
        n.role() == Role::Image
            || n.role() == Role::Label
                && (is_heading(&value) || value == "keep" || value == "remove")
    });
    let mut groups: Vec<Vec<(String, String)>> = Vec::new();
    for node in harness.query_all(wanted) {
        let node = node.accesskit_node();
        let value = node.value().unwrap_or_default();
        match (node.role(), groups.last_mut()) {
            (Role::Image, Some(group)) => group.push((node.label().unwrap(), String::new())),
            (_, _) if is_heading(&value) => groups.push(Vec::new()),
            (_, Some(group)) => group.last_mut().unwrap().1 = value,
            _ => panic!("a mark before any group"),
        }
    }
    groups
}

/// The group that holds `name`.
fn group_of(harness: &Harness<'_, LookalikeApp>, name: &str) -> Vec<(String, String)> {
    let groups = groups(harness);
    let found = groups.iter().find(|g| g.iter().any(|(n, _)| n == name));
    found
        .cloned()
        .unwrap_or_else(|| panic!("{name} is in no group: {groups:?}"))
}

fn mark_of(harness: &Harness<'_, LookalikeApp>, name: &str) -> String {
    let group = group_of(harness, name);
    group.into_iter().find(|(n, _)| n == name).unwrap().1
}

/// Every group keeps at least one picture.
fn assert_each_group_keeps_one(harness: &Harness<'_, LookalikeApp>) {
    for group in groups(harness) {
        assert!(group.iter().any(|(_, mark)| mark == "keep"), "{group:?}");
    }
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
    open_duplicates_view_of(folder_with_copies())
}

fn open_duplicates_view_of(
    folder: tempfile::TempDir,
) -> (
    tempfile::TempDir,
    tempfile::TempDir,
    Harness<'static, LookalikeApp>,
) {
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
    let Some(own) = own_data("duplicates_view_groups_marks_and_moves_to_the_trash") else {
        return;
    };
    let data = own.data;
    let (folder, cache, mut harness) = open_duplicates_view();
    assert_eq!(
        group_headings(&harness),
        ["Group 1 · 2 pictures", "Group 2 · 2 pictures"],
        "the two edited copies with their originals"
    );
    // The keypoints the photo level made are kept in the index for the next search, tied
    // to their files' content.
    let kept: i64 = rusqlite::Connection::open(cache.path().join("index.sqlite3"))
        .unwrap()
        .query_row(
            "SELECT count(*) FROM copy_features c JOIN files f
               ON f.id = c.file_id AND f.fingerprint = c.fingerprint",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert!(kept >= 4, "{kept} pictures' keypoints kept");

    // The same subject takes in more: the other tigers join the tiger and its copy.
    harness.get_by_label("Same subject").click();
    harness.run();
    let tigers: Vec<String> = (group_of(&harness, "Tiger.jpg").into_iter())
        .map(|(name, _)| name)
        .collect();
    for tiger in ["Tiger small.jpg", "Tiger2.jpg", "Tiger3.jpg"] {
        assert!(tigers.iter().any(|n| n == tiger), "{tigers:?}");
    }
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
    let trashed = data.join("Trash/files/Tiger small.jpg");
    assert_eq!(std::fs::metadata(&trashed).unwrap().len(), small_bytes);
    assert!(data.join("Trash/info/Tiger small.jpg.trashinfo").exists());
    // Logged before and after, and forgotten by the index.
    let log = std::fs::read_to_string(data.join("lookalike/trash-log.jsonl")).unwrap();
    let lines: Vec<serde_json::Value> = log
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 2, "{log}");
    assert_eq!(lines[0]["event"], "moving to the trash", "{log}");
    assert_eq!(lines[1]["event"], "moved", "{log}");
    for line in &lines {
        assert_eq!(line["path"], *canonical.to_string_lossy(), "{log}");
    }
    assert!(lines[0]["group"].is_u64(), "{log}");
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

/// Regression: marks were kept as "flipped from the proposal", so a picture marked keep at
/// one level could read "remove" at another, where another picture was the proposed keeper,
/// and a click could leave a group with nothing kept.
#[test]
fn marks_belong_to_pictures_and_a_group_always_keeps_one() {
    // A larger copy of another tiger photo: at the same-subject level, it is the proposed
    // keeper of the tigers' group; at the same-photo level, Tiger.jpg is.
    let folder = folder_with_copies();
    let tiger2 = image::open(folder.path().join("Tiger2.jpg")).unwrap();
    let (w, h) = (tiger2.width() * 3, tiger2.height() * 3);
    tiger2
        .resize(w, h, image::imageops::FilterType::Triangle)
        .to_rgb8()
        .save_with_format(
            folder.path().join("Tiger big.jpg"),
            image::ImageFormat::Jpeg,
        )
        .unwrap();
    let (_folder, _cache, mut harness) = open_duplicates_view_of(folder);
    assert_eq!(group_of(&harness, "Tiger.jpg")[0].0, "Tiger.jpg");
    assert_eq!(mark_of(&harness, "Tiger.jpg"), "keep");
    assert_eq!(mark_of(&harness, "Tiger small.jpg"), "remove");

    // The only kept picture of its group cannot be marked for removal.
    let marked = |h: &Harness<'_, LookalikeApp>| {
        (groups(h).iter().flatten())
            .filter(|(_, m)| m == "remove")
            .count()
    };
    let before = marked(&harness);
    harness
        .get_by_role_and_label(Role::Image, "Tiger.jpg")
        .click();
    harness.run();
    assert_eq!(mark_of(&harness, "Tiger.jpg"), "keep");
    assert_eq!(marked(&harness), before);
    assert!(harness
        .query_by_label_contains("keeps at least one picture")
        .is_some());
    assert_each_group_keeps_one(&harness);

    // Another level, another proposed keeper: the tiger the user saw kept is still kept.
    harness.get_by_label("Same subject").click();
    harness.run();
    let tigers = group_of(&harness, "Tiger.jpg");
    assert_eq!(tigers[0].0, "Tiger big.jpg", "{tigers:?}");
    assert_eq!(mark_of(&harness, "Tiger.jpg"), "keep", "{tigers:?}");
    assert_eq!(mark_of(&harness, "Tiger small.jpg"), "remove", "{tigers:?}");
    assert_each_group_keeps_one(&harness);
    harness.get_by_label("Same photo").click();
    harness.run();
    assert_eq!(mark_of(&harness, "Tiger.jpg"), "keep");
    assert_eq!(mark_of(&harness, "Tiger small.jpg"), "remove");
    assert_each_group_keeps_one(&harness);
}

#[test]
fn the_confirmation_lists_each_file_with_its_size_and_the_total() {
    let (folder, _cache, mut harness) = open_duplicates_view();
    harness.get_by_label("Move marked to trash (2)").click();
    harness.run();
    let mut total = 0;
    for name in ["Tiger small.jpg", "elephant dark.jpg"] {
        let path = folder.path().join(name);
        let bytes = std::fs::metadata(&path).unwrap().len();
        total += bytes;
        let row = format!(
            "{} · {}",
            path.display(),
            lookalike::duplicates::human_bytes(bytes)
        );
        assert!(harness.query_by_label_contains(&row).is_some(), "{row}");
    }
    let total = format!(
        "Total: 2 files, {}",
        lookalike::duplicates::human_bytes(total)
    );
    assert!(harness.query_by_label(&total).is_some(), "{total}");
    harness.get_by_label("Cancel").click();
    harness.run();
    assert!(folder.path().join("Tiger small.jpg").exists());
    assert!(folder.path().join("elephant dark.jpg").exists());
}

#[test]
fn compare_shows_why_two_pictures_are_one_photo() {
    // A copy turned a quarter without its EXIF tag: Compare says it is the same photo, how
    // many keypoints agree and by how much it is turned.
    let folder = folder_with_copies();
    let elephant = image::open(folder.path().join("elephant.jpg")).unwrap();
    elephant
        .rotate90()
        .to_rgb8()
        .save_with_format(
            folder.path().join("elephant turned.jpg"),
            image::ImageFormat::Jpeg,
        )
        .unwrap();
    let (_folder, _cache, mut harness) = open_duplicates_view_of(folder);
    let group = group_of(&harness, "elephant.jpg");
    assert!(
        group.iter().any(|(name, _)| name == "elephant turned.jpg"),
        "{group:?}"
    );
    harness
        .get_all_by_label("Compare with best copy")
        .next()
        .unwrap()
        .click();
    harness.run();
    let summary = harness
        .query_all_by_role(Role::Label)
        .filter_map(|n| n.value())
        .find(|v| v.starts_with("The same photo: "))
        .expect("Compare says why the pictures are one photo");
    assert!(summary.contains("keypoints agree"), "{summary}");
}
