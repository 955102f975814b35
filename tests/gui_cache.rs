//! The app opens an indexed folder from the index alone: no original is decoded.
//! (Its own test binary, so no other test's decoding moves the counter.)

mod common;

use common::*;
use egui_kittest::kittest::Queryable;
use lookalike::decode::files_decoded;
use lookalike::index::CacheLocation;

#[test]
fn a_second_opening_fills_the_grid_from_the_index_without_decoding() {
    let folder = folder_with(true, &[]);
    let cache = tempfile::tempdir().unwrap();
    let location = CacheLocation::Dir(cache.path().to_path_buf());

    let before = files_decoded();
    let first = open_app_with_cache(folder.path(), location.clone());
    assert_eq!(tile_names(&first).len(), 8);
    assert_eq!(
        files_decoded() - before,
        8,
        "the first opening decodes each image once"
    );
    drop(first);

    let before = files_decoded();
    let mut second = open_app_with_cache(folder.path(), location);
    assert_eq!(
        files_decoded(),
        before,
        "nothing decoded on the second opening"
    );
    assert_eq!(
        tile_names(&second).len(),
        8,
        "thumbnails come from the index"
    );
    assert!(
        second.query_by_label_contains("Indian elephant").is_some(),
        "labels come from the index"
    );
    click_image(&mut second, "Tiger3.jpg");
    assert_eq!(
        tile_names(&second)[0],
        "Tiger3.jpg",
        "vectors come from the index"
    );
}
