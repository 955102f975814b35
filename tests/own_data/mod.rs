//! Tests whose data folders must be their own: the trash, the trash log, the models folder
//! and the Hugging Face cache are found through the environment (`XDG_DATA_HOME`, `HF_HOME`),
//! by the `trash` crate and the app alike. Changing the environment of a test process while
//! its other tests run is a data race, so such a test runs itself again in a child process
//! of its test binary, started with its own folders; the parent only waits for it and fails
//! with it.
#![allow(dead_code)]

use std::path::PathBuf;
use std::process::Command;

/// Tells the child which test it runs.
const CHILD: &str = "LOOKALIKE_TEST_OWN_DATA";

/// The folders a child test was started with.
pub struct OwnData {
    /// `XDG_DATA_HOME`: the trash is `Trash/` in it, the app's data `lookalike/`.
    pub data: PathBuf,
    /// `HF_HOME`, empty.
    pub hf: PathBuf,
}

/// In the child, the test's own folders. In the parent, runs `test` (this binary's test of
/// that exact name) in a child with fresh folders, fails if it fails, and returns `None`: the
/// caller returns at once.
pub fn own_data(test: &str) -> Option<OwnData> {
    if std::env::var_os(CHILD).is_some_and(|t| t == test) {
        let folder = |name: &str| std::env::var_os(name).map(PathBuf::from);
        return Some(OwnData {
            data: folder("XDG_DATA_HOME").expect("the parent sets the data folder"),
            hf: folder("HF_HOME").expect("the parent sets the Hugging Face folder"),
        });
    }
    let folders = tempfile::tempdir().unwrap();
    let (data, hf) = (folders.path().join("data"), folders.path().join("hf"));
    std::fs::create_dir_all(&data).unwrap();
    std::fs::create_dir_all(&hf).unwrap();
    let output = Command::new(std::env::current_exe().unwrap())
        .args([test, "--exact", "--nocapture", "--test-threads=1"])
        .env(CHILD, test)
        .env("XDG_DATA_HOME", &data)
        .env("HF_HOME", &hf)
        .env_remove("HF_HUB_CACHE")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "{test} failed in its own process:\n{stdout}\n{stderr}"
    );
    // A filter that matched nothing would pass too: the child must have run this one test.
    assert!(
        stdout.contains("running 1 test") && stdout.contains("1 passed"),
        "{test} did not run in its own process:\n{stdout}\n{stderr}"
    );
    None
}
