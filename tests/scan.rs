//! The folder walk: one file on disk is one picture, however many paths reach it (a linked
//! folder, a linked file, a hard link), shown under the first path the walk meets it by.
//! Otherwise a file is its own perfect duplicate, and trashing the "copy" trashes the kept
//! original.
#![cfg(unix)]

use std::os::unix::fs::symlink;
use std::path::Path;

use lookalike::scan::scan_folder;

#[path = "seeds/mod.rs"]
mod seeds;

/// The pictures a scan of `root` finds, as paths under it.
fn scanned(root: &Path) -> Vec<String> {
    let scan = scan_folder(root).unwrap();
    assert!(scan.problems.is_empty(), "{:?}", scan.problems);
    let paths = scan
        .images
        .iter()
        .map(|i| i.path.strip_prefix(root).unwrap());
    paths.map(|p| p.to_string_lossy().into_owned()).collect()
}

#[test]
fn a_folder_linked_into_the_tree_shows_its_pictures_once() {
    let root = tempfile::tempdir().unwrap();
    let year = root.path().join("2023");
    std::fs::create_dir(&year).unwrap();
    std::fs::copy(seeds::seed("Tiger.jpg"), year.join("x.jpg")).unwrap();
    std::fs::copy(seeds::seed("bird01.jpg"), year.join("y.jpg")).unwrap();
    symlink(&year, root.path().join("Album")).unwrap();
    assert_eq!(scanned(root.path()), ["2023/x.jpg", "2023/y.jpg"]);
}

#[test]
fn a_linked_file_and_a_hard_link_are_one_picture_under_the_first_path() {
    let root = tempfile::tempdir().unwrap();
    let original = root.path().join("b original.jpg");
    std::fs::copy(seeds::seed("Tiger.jpg"), &original).unwrap();
    std::fs::hard_link(&original, root.path().join("c hard link.jpg")).unwrap();
    symlink(&original, root.path().join("a link.jpg")).unwrap();
    // A copy is another file, with its own inode: it stays.
    std::fs::copy(&original, root.path().join("d copy.jpg")).unwrap();
    assert_eq!(scanned(root.path()), ["a link.jpg", "d copy.jpg"]);
}

#[test]
fn each_picture_carries_the_identity_of_its_file() {
    use std::os::unix::fs::MetadataExt;
    let root = tempfile::tempdir().unwrap();
    let path = root.path().join("x.jpg");
    std::fs::copy(seeds::seed("Tiger.jpg"), &path).unwrap();
    let meta = std::fs::metadata(&path).unwrap();
    let scan = scan_folder(root.path()).unwrap();
    let id = scan.images[0]
        .file_id
        .expect("Unix gives every file an identity");
    assert_eq!((id.device, id.inode), (meta.dev(), meta.ino()));
}
