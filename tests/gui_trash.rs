//! The move to the trash checks each file against the disk just before moving it: a file
//! reached through a linked folder or a hard link is the kept original, a file may lead out
//! of the opened folder or have changed since the scan. Those stay, each with its reason in
//! the problems, and the others go on. Every move is logged before (the intent) and after (the
//! outcome). The real freedesktop trash, in a data folder of the test's own (see `own_data`).
#![cfg(unix)]

mod own_data;
#[path = "seeds/mod.rs"]
mod seeds;

use std::os::unix::fs::symlink;
use std::path::{Path, PathBuf};

use lookalike::gui::state::Gallery;
use lookalike::gui::{move_to_trash, GroupMarks, TrashOutcome, TrashRequest};
use lookalike::index::CacheLocation;
use lookalike::scan::{scan_folder, ImageEntry};
use own_data::own_data;

/// The gallery the app would show for `root` after scanning it, plus `extra` entries: paths
/// to the same files, as a scan that did not tell them apart listed them.
fn gallery(root: &Path, extra: &[&str]) -> Gallery {
    let mut entries = scan_folder(root).unwrap().images;
    for path in extra {
        let path = root.join(path);
        let meta = std::fs::metadata(&path).unwrap();
        entries.push(ImageEntry::from_metadata(path, &meta));
    }
    Gallery::new(&entries)
}

fn index_of(gallery: &Gallery, root: &Path, name: &str) -> usize {
    let path = root.join(name);
    (gallery.items.iter().position(|i| i.path == path)).unwrap_or_else(|| panic!("{name} shown"))
}

/// One group that keeps `keep` and removes `remove`, by name.
fn request(gallery: &Gallery, root: &Path, keep: &[&str], remove: &[&str]) -> TrashRequest {
    let indices = |names: &[&str]| names.iter().map(|n| index_of(gallery, root, n)).collect();
    TrashRequest {
        groups: vec![GroupMarks {
            number: 1,
            keep: indices(keep),
            remove: indices(remove),
        }],
    }
}

fn trash_files(data: &Path) -> Vec<String> {
    let Ok(entries) = std::fs::read_dir(data.join("Trash/files")) else {
        return Vec::new();
    };
    let mut names: Vec<String> = (entries.map(|e| e.unwrap().file_name()))
        .map(|n| n.to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

fn log_lines(data: &Path) -> Vec<serde_json::Value> {
    let log = std::fs::read_to_string(data.join("lookalike/trash-log.jsonl")).unwrap_or_default();
    (log.lines().map(|l| serde_json::from_str(l).unwrap())).collect()
}

/// The reason given for `path`, which must be the only problem.
fn only_refusal(outcome: &TrashOutcome, path: &Path) -> String {
    assert_eq!(outcome.problems.len(), 1, "{:?}", outcome.problems);
    assert_eq!(outcome.problems[0].0, path);
    outcome.problems[0].1.clone()
}

fn seed_into(folder: &Path, seed: &str, name: &str) -> PathBuf {
    let path = folder.join(name);
    std::fs::copy(seeds::seed(seed), &path).unwrap();
    path
}

#[test]
fn a_picture_reached_through_a_linked_folder_is_not_moved_when_its_other_path_is_kept() {
    let Some(own) = own_data(
        "a_picture_reached_through_a_linked_folder_is_not_moved_when_its_other_path_is_kept",
    ) else {
        return;
    };
    let root = tempfile::tempdir().unwrap();
    let year = root.path().join("2023");
    std::fs::create_dir(&year).unwrap();
    let original = seed_into(&year, "Tiger.jpg", "x.jpg");
    symlink(&year, root.path().join("Album")).unwrap();
    let gallery = gallery(root.path(), &["Album/x.jpg"]);
    let marks = request(&gallery, root.path(), &["2023/x.jpg"], &["Album/x.jpg"]);
    let outcome = move_to_trash(&gallery, &marks, &CacheLocation::Disabled, root.path());
    let reason = only_refusal(&outcome, &root.path().join("Album/x.jpg"));
    assert!(
        reason.contains("same file as") && reason.contains("which is kept"),
        "{reason}"
    );
    assert!(outcome.moved.is_empty());
    assert!(original.is_file(), "the kept original is where it was");
    assert_eq!(trash_files(&own.data), Vec::<String>::new());
    assert!(log_lines(&own.data).is_empty(), "nothing was tried");
}

#[test]
fn a_hard_link_of_a_kept_picture_is_not_moved() {
    let Some(own) = own_data("a_hard_link_of_a_kept_picture_is_not_moved") else {
        return;
    };
    let root = tempfile::tempdir().unwrap();
    let original = seed_into(root.path(), "Tiger.jpg", "a.jpg");
    std::fs::hard_link(&original, root.path().join("b.jpg")).unwrap();
    let gallery = gallery(root.path(), &["b.jpg"]);
    let marks = request(&gallery, root.path(), &["a.jpg"], &["b.jpg"]);
    let outcome = move_to_trash(&gallery, &marks, &CacheLocation::Disabled, root.path());
    let reason = only_refusal(&outcome, &root.path().join("b.jpg"));
    assert!(reason.contains("same file as"), "{reason}");
    assert!(root.path().join("b.jpg").is_file() && original.is_file());
    assert_eq!(trash_files(&own.data), Vec::<String>::new());
}

#[test]
fn a_file_that_leads_outside_the_opened_folder_is_not_moved() {
    let Some(own) = own_data("a_file_that_leads_outside_the_opened_folder_is_not_moved") else {
        return;
    };
    let (root, elsewhere) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    seed_into(root.path(), "Tiger.jpg", "kept.jpg");
    let outside = seed_into(elsewhere.path(), "Tiger.jpg", "outside.jpg");
    symlink(&outside, root.path().join("link.jpg")).unwrap();
    let gallery = gallery(root.path(), &[]);
    let marks = request(&gallery, root.path(), &["kept.jpg"], &["link.jpg"]);
    let outcome = move_to_trash(&gallery, &marks, &CacheLocation::Disabled, root.path());
    let reason = only_refusal(&outcome, &root.path().join("link.jpg"));
    assert!(reason.contains("outside the opened folder"), "{reason}");
    assert!(outside.is_file(), "the file outside stays");
    assert!(
        root.path().join("link.jpg").exists(),
        "and so does the link"
    );
    assert_eq!(trash_files(&own.data), Vec::<String>::new());
}

#[test]
fn a_file_changed_since_the_scan_is_not_moved_and_the_others_are() {
    let Some(own) = own_data("a_file_changed_since_the_scan_is_not_moved_and_the_others_are")
    else {
        return;
    };
    let root = tempfile::tempdir().unwrap();
    seed_into(root.path(), "Tiger.jpg", "a.jpg");
    seed_into(root.path(), "Tiger.jpg", "b edited.jpg");
    seed_into(root.path(), "Tiger.jpg", "c replaced.jpg");
    seed_into(root.path(), "Tiger.jpg", "d copy.jpg");
    let gallery = gallery(root.path(), &[]);
    // After the scan, one copy is edited in place and another replaced by a new file.
    std::fs::write(root.path().join("b edited.jpg"), b"edited").unwrap();
    // The new file has the same size and time, but it is another file: another inode (made
    // while the old one still exists, so that its number cannot be reused).
    let replaced = root.path().join("c replaced.jpg");
    let was = std::fs::metadata(&replaced).unwrap();
    let new = seed_into(root.path(), "Tiger.jpg", "new.tmp");
    let file = std::fs::File::options().write(true).open(&new).unwrap();
    file.set_modified(was.modified().unwrap()).unwrap();
    std::fs::rename(&new, &replaced).unwrap();
    let remove = ["b edited.jpg", "c replaced.jpg", "d copy.jpg"];
    let marks = request(&gallery, root.path(), &["a.jpg"], &remove);
    let outcome = move_to_trash(&gallery, &marks, &CacheLocation::Disabled, root.path());
    let refused: Vec<&Path> = outcome.problems.iter().map(|p| p.0.as_path()).collect();
    assert_eq!(
        refused,
        [root.path().join("b edited.jpg"), replaced.clone()],
        "{:?}",
        outcome.problems
    );
    for (_, reason) in &outcome.problems {
        assert!(
            reason.contains("changed since the folder was scanned"),
            "{reason}"
        );
    }
    assert_eq!(
        outcome.moved,
        [index_of(&gallery, root.path(), "d copy.jpg")]
    );
    assert_eq!(trash_files(&own.data), ["d copy.jpg"]);
    assert!(replaced.is_file() && root.path().join("b edited.jpg").is_file());
}

#[test]
fn a_group_whose_kept_pictures_are_gone_moves_nothing() {
    let Some(own) = own_data("a_group_whose_kept_pictures_are_gone_moves_nothing") else {
        return;
    };
    let root = tempfile::tempdir().unwrap();
    let kept = seed_into(root.path(), "Tiger.jpg", "a.jpg");
    seed_into(root.path(), "Tiger.jpg", "b.jpg");
    let gallery = gallery(root.path(), &[]);
    // Deleted by someone else while the user reviewed the group.
    std::fs::remove_file(&kept).unwrap();
    let marks = request(&gallery, root.path(), &["a.jpg"], &["b.jpg"]);
    let outcome = move_to_trash(&gallery, &marks, &CacheLocation::Disabled, root.path());
    let reason = only_refusal(&outcome, &root.path().join("b.jpg"));
    assert!(
        reason.contains("nothing in its group would be kept"),
        "{reason}"
    );
    // A group with no picture marked keep at all is refused the same way.
    let marks = request(&gallery, root.path(), &[], &["b.jpg"]);
    let outcome = move_to_trash(&gallery, &marks, &CacheLocation::Disabled, root.path());
    let reason = only_refusal(&outcome, &root.path().join("b.jpg"));
    assert!(
        reason.contains("nothing in its group would be kept"),
        "{reason}"
    );
    assert!(root.path().join("b.jpg").is_file());
    assert_eq!(trash_files(&own.data), Vec::<String>::new());
}

#[test]
fn each_move_is_logged_before_it_is_made_and_after() {
    let Some(own) = own_data("each_move_is_logged_before_it_is_made_and_after") else {
        return;
    };
    let root = tempfile::tempdir().unwrap();
    seed_into(root.path(), "Tiger.jpg", "a.jpg");
    let copy = seed_into(root.path(), "Tiger.jpg", "b.jpg");
    let bytes = std::fs::metadata(&copy).unwrap().len();
    let canonical = std::fs::canonicalize(&copy).unwrap();
    let gallery = gallery(root.path(), &[]);
    let marks = request(&gallery, root.path(), &["a.jpg"], &["b.jpg"]);
    let outcome = move_to_trash(&gallery, &marks, &CacheLocation::Disabled, root.path());
    assert!(outcome.problems.is_empty(), "{:?}", outcome.problems);
    assert_eq!(trash_files(&own.data), ["b.jpg"]);
    let lines = log_lines(&own.data);
    assert_eq!(lines.len(), 2, "{lines:?}");
    let path = canonical.to_string_lossy();
    assert_eq!(lines[0]["event"], "moving to the trash");
    assert_eq!(lines[0]["path"], *path);
    assert_eq!(lines[0]["bytes"], bytes);
    assert_eq!(lines[0]["group"], 1);
    assert_eq!(lines[1]["event"], "moved");
    assert_eq!(lines[1]["path"], *path);
}

/// The intent line is written before the move is tried: a move that fails (here, the trash
/// cannot be made) still leaves it, followed by the failure.
#[test]
fn a_move_that_fails_leaves_its_intent_and_its_failure_in_the_log() {
    let Some(own) = own_data("a_move_that_fails_leaves_its_intent_and_its_failure_in_the_log")
    else {
        return;
    };
    std::fs::write(own.data.join("Trash"), b"not a folder").unwrap();
    let root = tempfile::tempdir().unwrap();
    seed_into(root.path(), "Tiger.jpg", "a.jpg");
    let copy = seed_into(root.path(), "Tiger.jpg", "b.jpg");
    let gallery = gallery(root.path(), &[]);
    let marks = request(&gallery, root.path(), &["a.jpg"], &["b.jpg"]);
    let outcome = move_to_trash(&gallery, &marks, &CacheLocation::Disabled, root.path());
    let reason = only_refusal(&outcome, &copy);
    assert!(
        reason.contains("could not be moved to the trash"),
        "{reason}"
    );
    assert!(copy.is_file());
    let lines = log_lines(&own.data);
    assert_eq!(lines.len(), 2, "{lines:?}");
    assert_eq!(lines[0]["event"], "moving to the trash");
    assert_eq!(lines[1]["event"], "not moved");
    assert!(lines[1]["reason"].as_str().is_some_and(|r| !r.is_empty()));
}

/// A move that cannot be logged first does not happen.
#[test]
fn a_move_that_cannot_be_logged_does_not_happen() {
    let Some(own) = own_data("a_move_that_cannot_be_logged_does_not_happen") else {
        return;
    };
    std::fs::write(own.data.join("lookalike"), b"not a folder").unwrap();
    let root = tempfile::tempdir().unwrap();
    seed_into(root.path(), "Tiger.jpg", "a.jpg");
    let copy = seed_into(root.path(), "Tiger.jpg", "b.jpg");
    let gallery = gallery(root.path(), &[]);
    let marks = request(&gallery, root.path(), &["a.jpg"], &["b.jpg"]);
    let outcome = move_to_trash(&gallery, &marks, &CacheLocation::Disabled, root.path());
    let reason = only_refusal(&outcome, &copy);
    assert!(
        reason.contains("the trash log could not be written"),
        "{reason}"
    );
    assert!(copy.is_file());
    assert_eq!(trash_files(&own.data), Vec::<String>::new());
}
