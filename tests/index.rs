//! The persistent index through the command line: incremental updates, crash safety, recovery
//! from a damaged file, and two indexers at once. The scenarios that make sense for both
//! backends run against SQLite and against PostgreSQL (see tests/storage).

mod seeds;
use seeds::seed;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

mod storage;
mod vgg16_file;

use image::{Rgb, RgbImage};
use lookalike::index::{SqliteIndex, Store};
use serde_json::Value;
use storage::Backend;

/// Runs a scenario against SQLite and, when the test server is there, PostgreSQL.
macro_rules! on_both_backends {
    ($scenario:ident: $sqlite:ident, $postgres:ident) => {
        #[test]
        fn $sqlite() {
            $scenario(&Backend::sqlite());
        }

        #[test]
        fn $postgres() {
            if let Some(backend) = Backend::postgres() {
                $scenario(&backend);
            }
        }
    };
}

fn lookalike() -> Command {
    Command::new(env!("CARGO_BIN_EXE_lookalike"))
}

fn index(dir: &Path, backend: &Backend) -> Output {
    lookalike()
        .args(["index", "--json"])
        .arg(dir)
        .args(backend.args())
        .output()
        .unwrap()
}

/// Runs `index --json` and returns its summary; the run must succeed.
fn summary(dir: &Path, backend: &Backend) -> Value {
    let out = index(dir, backend);
    assert!(
        out.status.success(),
        "index failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("not JSON ({e}): {}", String::from_utf8_lossy(&out.stdout)))
}

fn counts(v: &Value) -> [u64; 5] {
    ["images", "new", "updated", "unchanged", "removed"]
        .map(|k| v[k].as_u64().unwrap_or_else(|| panic!("no {k}: {v}")))
}

fn copy_seeds(dir: &Path, names: &[&str]) {
    for name in names {
        std::fs::copy(seed(name), dir.join(name)).unwrap();
    }
}

/// Small JPEGs that differ from one another.
fn generated_images(dir: &Path, count: usize) {
    for i in 0..count {
        let img = RgbImage::from_fn(96, 64, |x, y| {
            Rgb([
                (x * 3 + i as u32 * 7) as u8,
                (y * 4 + i as u32 * 13) as u8,
                ((x + y) * 2 + i as u32) as u8,
            ])
        });
        img.save(dir.join(format!("gen{i:03}.jpg"))).unwrap();
    }
}

on_both_backends!(incremental: index_is_incremental_through_touch_rename_edit_delete_and_add, postgres_index_is_incremental_through_touch_rename_edit_delete_and_add);

fn incremental(cache: &Backend) {
    let dir = tempfile::tempdir().unwrap();
    copy_seeds(
        dir.path(),
        &[
            "Tiger.jpg",
            "Tiger2.jpg",
            "Tiger3.jpg",
            "bird01.jpg",
            "elephant.jpg",
        ],
    );
    std::fs::write(dir.path().join("broken.jpg"), b"no picture here").unwrap();

    let first = summary(dir.path(), cache);
    assert_eq!(counts(&first), [5, 5, 0, 0, 0]);
    let failed = first["failed"].as_array().unwrap();
    assert_eq!(failed.len(), 1);
    assert!(failed[0]["file"].as_str().unwrap().ends_with("broken.jpg"));
    assert!(failed[0]["error"]
        .as_str()
        .unwrap()
        .contains("not an image"));

    assert_eq!(
        counts(&summary(dir.path(), cache)),
        [5, 0, 0, 5, 0],
        "nothing changed"
    );

    // Touch: new mtime, same bytes. Recognised by fingerprint, not embedded again.
    let tiger = std::fs::File::options()
        .write(true)
        .open(dir.path().join("Tiger.jpg"))
        .unwrap();
    tiger
        .set_modified(std::time::SystemTime::now() + Duration::from_secs(60))
        .unwrap();
    drop(tiger);
    assert_eq!(
        counts(&summary(dir.path(), cache)),
        [5, 0, 0, 5, 0],
        "touched"
    );

    // Rename: same content at a new path keeps its vector; nothing is removed or added.
    std::fs::rename(
        dir.path().join("Tiger2.jpg"),
        dir.path().join("renamed tiger.jpg"),
    )
    .unwrap();
    assert_eq!(
        counts(&summary(dir.path(), cache)),
        [5, 0, 0, 5, 0],
        "renamed"
    );

    // Edit: new content at the same path is embedded again.
    std::fs::copy(seed("elephant2.jpg"), dir.path().join("Tiger3.jpg")).unwrap();
    assert_eq!(
        counts(&summary(dir.path(), cache)),
        [5, 0, 1, 4, 0],
        "edited"
    );

    // Delete and add.
    std::fs::remove_file(dir.path().join("bird01.jpg")).unwrap();
    copy_seeds(dir.path(), &["style.jpg", "input.jpg"]);
    assert_eq!(
        counts(&summary(dir.path(), cache)),
        [6, 2, 0, 4, 1],
        "one deleted, two added"
    );

    // The edited file now ranks as an elephant, from the index.
    let out = lookalike()
        .args(["similar", "--json", "--top", "1"])
        .arg(dir.path().join("elephant.jpg"))
        .args(cache.args())
        .output()
        .unwrap();
    let best: Value =
        serde_json::from_slice(out.stdout.split(|b| *b == b'\n').next().unwrap()).unwrap();
    assert!(
        best["file"].as_str().unwrap().ends_with("Tiger3.jpg"),
        "{best}"
    );
}

#[test]
fn the_index_is_never_written_inside_the_browsed_folder() {
    let dir = tempfile::tempdir().unwrap();
    let backend = Backend::sqlite();
    let Backend::Sqlite(cache) = &backend else {
        unreachable!()
    };
    copy_seeds(dir.path(), &["Tiger.jpg", "bird01.jpg"]);
    let listing = |d: &Path| -> Vec<(PathBuf, std::time::SystemTime)> {
        let mut v: Vec<_> = walk(d)
            .into_iter()
            .map(|p| {
                (
                    p.clone(),
                    std::fs::metadata(&p).unwrap().modified().unwrap(),
                )
            })
            .collect();
        v.sort();
        v
    };
    let before = listing(dir.path());
    summary(dir.path(), &backend);
    assert_eq!(listing(dir.path()), before);
    assert!(cache.path().join("index.sqlite3").exists());
}

fn walk(dir: &Path) -> Vec<PathBuf> {
    let mut out = vec![dir.to_path_buf()];
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            out.extend(walk(&path));
        } else {
            out.push(path);
        }
    }
    out
}

on_both_backends!(killed_mid_run: killed_mid_run_the_next_run_carries_on_and_the_file_is_sound, postgres_killed_mid_run_the_next_run_carries_on_and_nothing_is_half_written);

fn killed_mid_run(cache: &Backend) {
    let dir = tempfile::tempdir().unwrap();
    generated_images(dir.path(), 60);
    let mut child = lookalike()
        .args(["index", "--batch", "2"])
        .arg(dir.path())
        .args(cache.args())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    // Wait for the first committed batch, then kill without warning.
    let start = Instant::now();
    let committed = loop {
        let n = cache.vectors();
        if n > 0 {
            break n;
        }
        assert!(
            start.elapsed() < Duration::from_secs(120),
            "nothing was committed"
        );
        assert!(
            child.try_wait().unwrap().is_none(),
            "the indexer finished before it could be killed"
        );
        std::thread::sleep(Duration::from_millis(20));
    };
    child.kill().unwrap(); // SIGKILL on Unix
    child.wait().unwrap();
    assert!(committed < 60, "killed before the end");
    cache.assert_sound();

    let resumed = summary(dir.path(), cache);
    let [images, new, updated, unchanged, _] = counts(&resumed);
    assert_eq!(images, 60);
    assert_eq!(updated, 0);
    assert!(
        unchanged >= committed,
        "what was committed before the kill is kept"
    );
    assert_eq!(new + unchanged, 60);
    assert_eq!(cache.rows(), 60);
    cache.assert_sound();
}

#[test]
fn a_damaged_index_is_moved_aside_and_rebuilt() {
    let dir = tempfile::tempdir().unwrap();
    let backend = Backend::sqlite();
    let Backend::Sqlite(cache) = &backend else {
        unreachable!()
    };
    copy_seeds(dir.path(), &["Tiger.jpg", "bird01.jpg"]);
    summary(dir.path(), &backend);
    let db = cache.path().join("index.sqlite3");
    // Overwrite the header and first pages with junk, as a disk error or a bad copy would.
    let mut bytes = std::fs::read(&db).unwrap();
    let junk = 4096.min(bytes.len());
    bytes[..junk]
        .iter_mut()
        .enumerate()
        .for_each(|(i, b)| *b = (i * 31 % 251) as u8);
    std::fs::write(&db, &bytes).unwrap();
    for suffix in ["-wal", "-shm"] {
        let _ = std::fs::remove_file(format!("{}{suffix}", db.display()));
    }

    let out = index(dir.path(), &backend);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("damaged") && stderr.contains("rebuilt"),
        "{stderr}"
    );
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(counts(&report), [2, 2, 0, 0, 0]);
    let aside = std::fs::read_dir(cache.path())
        .unwrap()
        .filter_map(|e| e.ok())
        .any(|e| e.file_name().to_string_lossy().contains("damaged"));
    assert!(aside, "the damaged file is kept aside for inspection");
}

on_both_backends!(two_indexers: two_indexers_at_once_both_finish, postgres_two_indexers_at_once_both_finish_and_embed_each_file_once);

/// Two processes index one folder at once: both report every image, no row is lost or
/// doubled, and with PostgreSQL each file is embedded once (their claims keep them apart).
fn two_indexers(cache: &Backend) {
    let dir = tempfile::tempdir().unwrap();
    let count = 48;
    generated_images(dir.path(), count);
    let spawn = || {
        lookalike()
            .args(["index", "--json", "--batch", "2"])
            .arg(dir.path())
            .args(cache.args())
            .output()
    };
    let (a, b) = std::thread::scope(|s| {
        let a = s.spawn(spawn);
        let b = s.spawn(spawn);
        (a.join().unwrap().unwrap(), b.join().unwrap().unwrap())
    });
    let mut embedded = 0;
    for out in [&a, &b] {
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let report: Value = serde_json::from_slice(&out.stdout).unwrap();
        assert_eq!(report["images"], count);
        embedded += report["new"].as_u64().unwrap();
    }
    assert_eq!(cache.rows(), count as u64, "no row lost or doubled");
    assert_eq!(cache.vectors(), count as u64);
    if let Backend::Postgres(_) = cache {
        assert_eq!(embedded, count as u64, "each file embedded once");
    }
    assert_eq!(
        counts(&summary(dir.path(), cache)),
        [count as u64, 0, 0, count as u64, 0]
    );
    cache.assert_sound();
}

#[test]
fn cache_info_and_clear() {
    let dir = tempfile::tempdir().unwrap();
    let backend = Backend::sqlite();
    let Backend::Sqlite(cache) = &backend else {
        unreachable!()
    };
    copy_seeds(dir.path(), &["Tiger.jpg"]);
    summary(dir.path(), &backend);
    let info = lookalike()
        .args(["cache", "info", "--json", "--cache-dir"])
        .arg(cache.path())
        .output()
        .unwrap();
    let info: Value = serde_json::from_slice(&info.stdout).unwrap();
    assert_eq!(info["files"], 1);
    let clear = lookalike()
        .args(["cache", "clear", "--cache-dir"])
        .arg(cache.path())
        .output()
        .unwrap();
    assert!(clear.status.success());
    assert!(!cache.path().join("index.sqlite3").exists());
    // --no-cache stores nothing.
    let out = lookalike()
        .args(["index", "--json", "--no-cache"])
        .arg(dir.path())
        .output()
        .unwrap();
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["images"], 1);
    assert!(!cache.path().join("index.sqlite3").exists());
}

on_both_backends!(two_similar_runs: two_similar_runs_sharing_an_index_each_rank_every_image, postgres_two_similar_runs_sharing_an_index_each_rank_every_image);

/// Regression: two `similar` runs sharing an index each planned the same new files; the second
/// to store them replaced the first one's rows with new ids, and the first then silently
/// dropped those images from its ranking (6 of 8 results). Rows now keep their ids.
fn two_similar_runs(cache: &Backend) {
    let dir = tempfile::tempdir().unwrap();
    let names = [
        "Tiger.jpg",
        "Tiger2.jpg",
        "Tiger3.jpg",
        "bird01.jpg",
        "elephant.jpg",
        "elephant2.jpg",
        "style.jpg",
        "input.jpg",
    ];
    copy_seeds(dir.path(), &names);
    let similar = || {
        lookalike()
            .args(["similar", "--json", "--batch", "1"])
            .arg(dir.path().join("Tiger3.jpg"))
            .args(cache.args())
            .output()
            .unwrap()
    };
    let outputs: Vec<Output> = std::thread::scope(|s| {
        let runs: Vec<_> = (0..3).map(|_| s.spawn(similar)).collect();
        runs.into_iter().map(|r| r.join().unwrap()).collect()
    });
    for out in outputs {
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let lines = String::from_utf8_lossy(&out.stdout).lines().count();
        assert_eq!(
            lines,
            7,
            "every image but the query: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

/// Regression: embedding a folder with a second model re-wrote each file's row and dropped
/// the first model's vectors, so switching models back and forth re-embedded everything (and
/// counted it as "updated").
#[test]
fn a_second_model_keeps_the_first_models_vectors() {
    let dir = tempfile::tempdir().unwrap();
    let backend = Backend::sqlite();
    let Backend::Sqlite(cache) = &backend else {
        unreachable!()
    };
    copy_seeds(dir.path(), &["Tiger.jpg", "bird01.jpg"]);
    let weights = cache.path().join("vgg16-features.safetensors");
    vgg16_file::write_features_only(&weights);
    assert_eq!(
        counts(&summary(dir.path(), &backend)),
        [2, 2, 0, 0, 0],
        "lite0"
    );
    let out = lookalike()
        .args(["index", "--json", "--model", "vgg16", "--weights"])
        .arg(&weights)
        .arg(dir.path())
        .arg("--cache-dir")
        .arg(cache.path())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let vgg: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(counts(&vgg), [2, 2, 0, 0, 0], "new for vgg16, not updated");
    assert_eq!(
        counts(&summary(dir.path(), &backend)),
        [2, 0, 0, 2, 0],
        "lite0's vectors are still there"
    );
}

/// Regression: a file that could not be opened was stored as failed, and stayed failed until
/// its mtime changed, even after it became readable.
fn a_failure_that_is_not_the_files_fault(cache: &Backend) {
    use lookalike::pipeline::{plan, store, Plan};
    let dir = tempfile::tempdir().unwrap();
    copy_seeds(dir.path(), &["Tiger.jpg"]);
    let scan = lookalike::scan::scan_folder(dir.path()).unwrap();
    let mut index = cache.open(dir.path());
    let index = index.as_mut();
    let info = lookalike::model::lite0::INFO;
    let Plan::Embed(pending) = plan(index, &scan.images[0], &info).unwrap() else {
        panic!("a new file is embedded")
    };
    let refused = Err(lookalike::Error::unreadable(
        &pending.path,
        "cannot open",
        "Permission denied",
    ));
    store(index, &info, std::slice::from_ref(&pending), &[refused]).unwrap();
    assert!(
        matches!(plan(index, &scan.images[0], &info).unwrap(), Plan::Embed(_)),
        "tried again next time"
    );
    let damaged = Err(lookalike::Error::unusable(
        &pending.path,
        "damaged or truncated image",
    ));
    store(index, &info, std::slice::from_ref(&pending), &[damaged]).unwrap();
    assert!(
        matches!(
            plan(index, &scan.images[0], &info).unwrap(),
            Plan::KnownBad(_)
        ),
        "a bad file stays known"
    );
}

on_both_backends!(a_failure_that_is_not_the_files_fault: a_failure_that_is_not_the_files_fault_is_not_remembered, postgres_a_failure_that_is_not_the_files_fault_is_not_remembered);

/// Regression: `similar` filled the index without thumbnails, and the app then showed those
/// images as grey placeholders for good.
fn similar_stores_thumbnails(cache: &Backend) {
    let dir = tempfile::tempdir().unwrap();
    copy_seeds(dir.path(), &["Tiger.jpg", "bird01.jpg"]);
    let out = lookalike()
        .args(["similar", "--json"])
        .arg(dir.path().join("Tiger.jpg"))
        .args(cache.args())
        .output()
        .unwrap();
    assert!(out.status.success());
    let mut index = cache.open(dir.path());
    let info = lookalike::model::lite0::INFO;
    let images = index
        .images_under(
            &std::fs::canonicalize(dir.path()).unwrap(),
            lookalike::pipeline::stamp(&info),
        )
        .unwrap();
    assert_eq!(images.len(), 2);
    assert!(images.iter().all(|i| i.thumbnail.is_some()));
}

on_both_backends!(similar_stores_thumbnails: similar_stores_thumbnails_for_the_app, postgres_similar_stores_thumbnails_for_the_app);

/// Regression: rows that older versions stored without a thumbnail stayed that way, and the
/// app showed those images as grey placeholders for good.
#[test]
fn a_row_without_a_thumbnail_is_made_again() {
    let dir = tempfile::tempdir().unwrap();
    let backend = Backend::sqlite();
    let Backend::Sqlite(cache) = &backend else {
        unreachable!()
    };
    copy_seeds(dir.path(), &["Tiger.jpg", "bird01.jpg"]);
    assert_eq!(counts(&summary(dir.path(), &backend)), [2, 2, 0, 0, 0]);
    let db = rusqlite::Connection::open(cache.path().join("index.sqlite3")).unwrap();
    let key = std::fs::canonicalize(dir.path().join("Tiger.jpg")).unwrap();
    let cleared = db
        .execute(
            "UPDATE files SET thumbnail = NULL WHERE path = ?1",
            [key.as_os_str().as_encoded_bytes()],
        )
        .unwrap();
    assert_eq!(cleared, 1);
    drop(db);
    // Tiger.jpg is analysed again (as new for this model); bird01.jpg is served as it was.
    assert_eq!(counts(&summary(dir.path(), &backend)), [2, 1, 0, 1, 0]);
    let mut index = SqliteIndex::open(cache.path()).unwrap();
    let info = lookalike::model::lite0::INFO;
    let canonical_dir = std::fs::canonicalize(dir.path()).unwrap();
    let images = index
        .images_under(&canonical_dir, lookalike::pipeline::stamp(&info))
        .unwrap();
    assert!(images.iter().all(|i| i.thumbnail.is_some()));
}

/// Rows another indexer stores while this one scans are for files this scan could not have
/// seen: its prune leaves them, and removes only what was stored before the scan began.
fn concurrent_rows_survive_prune(cache: &Backend) {
    use lookalike::index::{FileRecord, ModelStamp, Stored};
    let dir = tempfile::tempdir().unwrap();
    let root = std::fs::canonicalize(dir.path()).unwrap();
    let mut index = cache.open(&root);
    let store = |index: &mut dyn Store, name: &str| {
        let path = root.join(name);
        let file = FileRecord {
            path: &path,
            size: 1,
            mtime_ns: 1,
            fingerprint: name.as_bytes(),
            size_px: None,
            thumbnail: None,
            error: Some("not a picture"),
            content_changed: false,
        };
        let stamp = ModelStamp {
            model: "lite0",
            revision: "r1",
        };
        let batch = [Stored {
            file,
            embedding: None,
        }];
        index.store_batch(stamp, &batch).unwrap();
    };
    store(index.as_mut(), "gone.jpg");
    let start = index.scan_start().unwrap();
    let scan = lookalike::scan::scan_folder(&root).unwrap();
    assert!(scan.images.is_empty());
    // Another indexer stores a file that arrived after this scan had looked.
    std::thread::sleep(Duration::from_millis(5));
    store(index.as_mut(), "arrived.jpg");
    let removed = lookalike::pipeline::prune(index.as_mut(), &root, &scan, start).unwrap();
    assert_eq!(removed, 1);
    let left: Vec<PathBuf> = index
        .files_under(&root)
        .unwrap()
        .into_iter()
        .map(|f| f.path)
        .collect();
    assert_eq!(left, [root.join("arrived.jpg")]);
}

on_both_backends!(concurrent_rows_survive_prune: a_prune_keeps_rows_stored_after_its_scan_began, postgres_a_prune_keeps_rows_stored_after_its_scan_began);

/// A file name with control characters in it, served from the index, is printed with them
/// escaped: it cannot forge a line of `similar`'s list or rewrite the terminal.
fn escaped_names(cache: &Backend) {
    let dir = tempfile::tempdir().unwrap();
    copy_seeds(dir.path(), &["Tiger.jpg"]);
    std::fs::copy(
        seed("bird01.jpg"),
        dir.path().join("bird\n   2. 1.0000  fake\u{1b}[2J.jpg"),
    )
    .unwrap();
    summary(dir.path(), cache);
    let out = lookalike()
        .args(["similar", "--top", "5"])
        .arg(dir.path().join("Tiger.jpg"))
        .args(cache.args())
        .output()
        .unwrap();
    let said = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{said}");
    assert!(
        said.contains("bird\\n   2. 1.0000  fake\\u{1b}[2J.jpg"),
        "{said}"
    );
    assert!(
        !said.contains('\u{1b}') && said.lines().count() == 2,
        "{said}"
    );
}

on_both_backends!(escaped_names: control_characters_in_names_are_escaped, postgres_control_characters_in_names_are_escaped);

/// The tests' row count reads a damaged index as a failure, never as "no rows": a check
/// such as "nothing was stored" must not pass because the file could not be read.
#[test]
fn the_tests_row_count_fails_on_an_unreadable_index() {
    let backend = Backend::sqlite();
    let Backend::Sqlite(dir) = &backend else {
        unreachable!()
    };
    std::fs::write(dir.path().join("index.sqlite3"), vec![0x5a; 8192]).unwrap();
    let counted = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| backend.rows()));
    assert!(counted.is_err(), "read as {:?} rows", counted.ok());
}
