//! The tutorial's seed images, for tests of the engine and the command line. Kept apart from
//! `common`, which opens the window, so that these tests build without the app.
#![allow(dead_code)]

use std::path::{Path, PathBuf};

/// The folder of seed images in the repository.
pub fn seed_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/seed-images")
}

/// One seed image by file name.
pub fn seed(name: &str) -> PathBuf {
    seed_dir().join(name)
}
