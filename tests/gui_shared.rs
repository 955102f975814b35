//! The app on a shared index in PostgreSQL (`lookalike --db URL FOLDER`): it fills the
//! database, opens again from it, and never shows the password. Skips without a test server,
//! except in CI.

mod common;
mod storage;

use common::*;
use egui_kittest::kittest::Queryable;
use lookalike::index::postgres::Target;
use lookalike::index::CacheLocation;
use storage::TestDatabase;

#[test]
fn the_app_indexes_into_a_shared_database_and_opens_again_from_it() {
    let Some(db) = TestDatabase::create() else {
        return;
    };
    let folder = folder_with(true, &[]);
    let location = CacheLocation::Database(Target::parse(&db.url, None).unwrap());
    let first = open_app_with_cache(folder.path(), location.clone());
    assert_eq!(tile_names(&first).len(), 8);
    assert_eq!(db.count("lookalike_vectors_lite0"), 8);
    let password = db
        .url
        .split("://")
        .nth(1)
        .unwrap()
        .split('@')
        .next()
        .unwrap();
    let password = password.split_once(':').unwrap().1.to_string();
    let status = first.state().status().to_string();
    assert!(status.contains("postgres://lookalike@"), "{status}");
    assert!(!status.contains(&password), "{status}");
    drop(first);

    let mut second = open_app_with_cache(folder.path(), location);
    assert_eq!(tile_names(&second).len(), 8);
    assert!(
        second.query_by_label_contains("Indian elephant").is_some(),
        "labels come from the database"
    );
    click_image(&mut second, "Tiger3.jpg");
    assert_eq!(tile_names(&second)[0], "Tiger3.jpg");
}
