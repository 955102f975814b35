//! Helpers shared by the app's tests: folders of seed images, and a harness that opens the
//! real app on one and waits for indexing.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use eframe::egui;
use egui::accesskit::Role;
use egui_kittest::kittest::{NodeT, Queryable};
use egui_kittest::Harness;
use lookalike::gui::{load_engine, LookalikeApp, Settings, Startup};
use lookalike::index::CacheLocation;
use lookalike::Engine;

#[path = "../seeds/mod.rs"]
pub mod seeds;

pub fn engine() -> Arc<Engine> {
    static ENGINE: OnceLock<Arc<Engine>> = OnceLock::new();
    ENGINE
        .get_or_init(|| {
            load_engine(
                lookalike::ModelKind::Lite0,
                None,
                lookalike::model::Precision::Auto,
            )
            .expect("the bundled model loads")
        })
        .clone()
}

/// A temporary folder with the seed images (without the one with a Chinese name when
/// `ascii_only`) and any extra files.
pub fn folder_with(ascii_only: bool, extra: &[(&str, &[u8])]) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    for entry in std::fs::read_dir(seeds::seed_dir()).unwrap() {
        let entry = entry.unwrap();
        if ascii_only && !entry.file_name().to_str().is_some_and(|n| n.is_ascii()) {
            continue;
        }
        std::fs::copy(entry.path(), dir.path().join(entry.file_name())).unwrap();
    }
    for (name, bytes) in extra {
        std::fs::write(dir.path().join(name), bytes).unwrap();
    }
    dir
}

pub fn open_app(folder: &Path) -> Harness<'static, LookalikeApp> {
    open_app_with_cache(folder, CacheLocation::Disabled)
}

/// Opens the app on `folder` and waits until indexing is done.
pub fn open_app_with_cache(folder: &Path, cache: CacheLocation) -> Harness<'static, LookalikeApp> {
    open_app_holding(folder, cache, None)
}

/// [`open_app_with_cache`], with at most `thumbnails_held` images holding a thumbnail.
pub fn open_app_holding(
    folder: &Path,
    cache: CacheLocation,
    thumbnails_held: Option<usize>,
) -> Harness<'static, LookalikeApp> {
    let mut harness = start_app(folder, cache, thumbnails_held);
    wait_until_indexed(&mut harness);
    harness
}

/// The app opening `folder`, from its first frame: indexing has just begun.
pub fn start_app(
    folder: &Path,
    cache: CacheLocation,
    thumbnails_held: Option<usize>,
) -> Harness<'static, LookalikeApp> {
    let folder: PathBuf = folder.to_path_buf();
    let mut builder = Harness::builder().with_size(egui::vec2(1400.0, 1000.0));
    // The test harness panics on any character its bundled fonts lack, to catch interface text
    // that would draw as boxes. A Chinese file name is user content, not interface text: the
    // app draws it with the system's fonts, or as boxes, so allow that when one is present.
    let names_are_ascii = std::fs::read_dir(&folder).unwrap().all(|e| {
        e.unwrap()
            .file_name()
            .to_str()
            .is_some_and(|n| n.is_ascii())
    });
    if !names_are_ascii {
        builder = builder.allow_missing_glyphs();
    }
    let mut harness = builder.build_eframe(move |cc| {
        let start = Startup {
            folder: Some(folder),
            screenshot: None,
            cache,
            thumbnails_held,
        };
        LookalikeApp::with_engine(&cc.egui_ctx, Settings::default(), Ok(engine()), start)
    });
    harness.step();
    harness
}

/// Steps the app (its workers run on real threads) until `done` holds; fails after `limit`.
pub fn step_until(
    harness: &mut Harness<'_, LookalikeApp>,
    limit: Duration,
    what: &str,
    done: impl Fn(&Harness<'_, LookalikeApp>) -> bool,
) {
    let start = Instant::now();
    while !done(harness) {
        assert!(
            start.elapsed() < limit,
            "{what} did not happen within {limit:?}"
        );
        harness.step();
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Waits for indexing to finish, then lets the window settle.
pub fn wait_until_indexed(harness: &mut Harness<'_, LookalikeApp>) {
    step_until(harness, Duration::from_secs(120), "indexing", |h| {
        h.state().is_idle()
    });
    harness.run();
}

/// The names of the thumbnails in the order the grid shows them.
pub fn tile_names(harness: &Harness<'_, LookalikeApp>) -> Vec<String> {
    harness
        .query_all_by_role(Role::Image)
        .filter_map(|n| n.accesskit_node().label())
        .collect()
}

pub fn click_image(harness: &mut Harness<'_, LookalikeApp>, name: &str) {
    harness.get_by_role_and_label(Role::Image, name).click();
    harness.run();
}

/// A file dropped on the window, as the windowing system reports it.
#[derive(Debug)]
pub struct Dropped(pub PathBuf);

impl egui::DroppedFile for Dropped {
    fn path(&self) -> &Path {
        &self.0
    }
    fn bytes(&self) -> Result<Vec<u8>, String> {
        std::fs::read(&self.0).map_err(|e| e.to_string())
    }
}
