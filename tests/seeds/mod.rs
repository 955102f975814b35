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

/// Runs `command` and returns its output; a failure fails the test, showing its stderr.
pub fn succeed(command: &mut std::process::Command) -> std::process::Output {
    let out = command.output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    out
}
