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

on_both_backends!(kept_keypoints: keypoints_are_kept_per_file_content, postgres_keypoints_are_kept_per_file_content);

/// The keypoints that `duplicates` matches are kept in the index, read back by path, and not
/// given for a file whose content changed since they were made; thumbnails are read back by
/// path too.
fn kept_keypoints(cache: &Backend) {
    let dir = tempfile::tempdir().unwrap();
    copy_seeds(dir.path(), &["Tiger.jpg", "bird01.jpg"]);
    let tiger = image::open(seed("Tiger.jpg")).unwrap();
    tiger
        .thumbnail(300, 300)
        .save(dir.path().join("Tiger small.png"))
        .unwrap();
    let run = lookalike()
        .args(["duplicates", "--json"])
        .arg(dir.path())
        .args(cache.args())
        .output()
        .unwrap();
    assert!(
        run.status.success(),
        "{}",
        String::from_utf8_lossy(&run.stderr)
    );
    assert!(String::from_utf8_lossy(&run.stdout).contains("Tiger small.png"));
    // The tiger and its smaller copy were compared, so both keep their keypoints.
    assert!(cache.kept_keypoints() >= 2, "{}", cache.kept_keypoints());

    let folder = dir.path().canonicalize().unwrap();
    let (tiger, bird) = (folder.join("Tiger.jpg"), folder.join("bird01.jpg"));
    let elsewhere = folder.join("not in the index.jpg");
    let mut index = cache.open(&folder);
    let given: [(&Path, &[u8]); 3] = [
        (&tiger, b"tiger's keypoints"),
        (&bird, b"bird's keypoints"),
        (&elsewhere, b"nobody's"),
    ];
    index.store_copy_features(&given).unwrap();
    drop(index);
    let mut index = cache.open(&folder);
    assert_eq!(
        index.copy_features(&[&bird, &elsewhere, &tiger]).unwrap(),
        [
            Some(b"bird's keypoints".to_vec()),
            None,
            Some(b"tiger's keypoints".to_vec())
        ]
    );

    // The thumbnails the app reads back, by path: one a file the index holds.
    let thumbnails = index.thumbnails(&[&bird, &elsewhere, &tiger]).unwrap();
    assert!(thumbnails[0].as_ref().is_some_and(|t| t.to_rgb().is_ok()));
    assert!(thumbnails[1].is_none() && thumbnails[2].is_some());
    drop(index);

    // Once the tiger's content changes and is indexed again, its old keypoints are not given.
    edit_the_middle(&tiger);
    summary(dir.path(), cache);
    let mut index = cache.open(&folder);
    assert_eq!(
        index.copy_features(&[&tiger, &bird]).unwrap(),
        [None, Some(b"bird's keypoints".to_vec())]
    );
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
}

/// --no-cache stores nothing, not even in the platform cache folder that it would otherwise
/// use. (This once checked a folder the --no-cache run was never given.)
#[test]
fn no_cache_stores_nothing_in_the_platform_cache_folder() {
    let dir = tempfile::tempdir().unwrap();
    copy_seeds(dir.path(), &["Tiger.jpg"]);
    let platform_cache = tempfile::tempdir().unwrap();
    let run = |extra: &[&str]| {
        let out = lookalike()
            .env("XDG_CACHE_HOME", platform_cache.path())
            .env_remove("LOOKALIKE_DB")
            .args(["index", "--json"])
            .args(extra)
            .arg(dir.path())
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let report: Value = serde_json::from_slice(&out.stdout).unwrap();
        assert_eq!(report["images"], 1);
    };
    // Without --no-cache, the index goes to the folder this test gave as the platform's.
    run(&[]);
    let default_index = platform_cache
        .path()
        .join("lookalike")
        .join("index.sqlite3");
    assert!(default_index.exists(), "the test watches the right folder");
    std::fs::remove_dir_all(platform_cache.path().join("lookalike")).unwrap();

    run(&["--no-cache"]);
    assert_eq!(
        walk(platform_cache.path()),
        [platform_cache.path().to_path_buf()],
        "nothing was written there"
    );
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
    assert!(images.iter().all(|i| i.has_thumbnail));
    let paths: Vec<&Path> = images.iter().map(|i| i.path.as_path()).collect();
    let thumbnails = index.thumbnails(&paths).unwrap();
    assert!(
        thumbnails.iter().flatten().all(|t| t.to_rgb().is_ok())
            && thumbnails.iter().all(Option::is_some),
        "the app can read them back and show them"
    );
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
            "DELETE FROM thumbnails WHERE file_id = (SELECT id FROM files WHERE path = ?1)",
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
    assert!(images.iter().all(|i| i.has_thumbnail));
}

/// Turns an index of today's layout into the first one, which kept thumbnails inside the
/// files table, as lookalike before version 2 of the index wrote it.
fn back_to_the_first_layout(db: &rusqlite::Connection) {
    db.execute_batch(
        "ALTER TABLE files ADD COLUMN thumbnail BLOB;
         ALTER TABLE files ADD COLUMN thumb_width INTEGER;
         ALTER TABLE files ADD COLUMN thumb_height INTEGER;
         UPDATE files SET
             thumbnail = (SELECT jpeg FROM thumbnails t WHERE t.file_id = files.id),
             thumb_width = (SELECT width FROM thumbnails t WHERE t.file_id = files.id),
             thumb_height = (SELECT height FROM thumbnails t WHERE t.file_id = files.id);
         DROP TABLE thumbnails;
         UPDATE meta SET value = 1 WHERE key = 'schema_version';",
    )
    .unwrap();
}

/// An index of the first layout (thumbnails inside the files table, which made checking a
/// large library read every thumbnail) is moved to today's without losing a vector or a
/// thumbnail: nothing is analysed again, and the app still has every thumbnail to show.
#[test]
fn an_index_of_the_first_layout_keeps_everything_it_holds() {
    let dir = tempfile::tempdir().unwrap();
    let backend = Backend::sqlite();
    let Backend::Sqlite(cache) = &backend else {
        unreachable!()
    };
    copy_seeds(dir.path(), &["Tiger.jpg", "bird01.jpg", "elephant.jpg"]);
    assert_eq!(counts(&summary(dir.path(), &backend)), [3, 3, 0, 0, 0]);
    back_to_the_first_layout(&raw_sqlite(cache));

    assert_eq!(
        counts(&summary(dir.path(), &backend)),
        [3, 0, 0, 3, 0],
        "every picture is served from the moved index"
    );
    let db = raw_sqlite(cache);
    let version: i64 = db
        .query_row(
            "SELECT value FROM meta WHERE key = 'schema_version'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    let columns: Vec<String> = db
        .prepare("SELECT name FROM pragma_table_info('files')")
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .collect::<rusqlite::Result<_>>()
        .unwrap();
    assert_eq!(version, 2);
    assert!(
        !columns.iter().any(|c| c.starts_with("thumb")),
        "{columns:?}"
    );
    drop(db);
    let mut index = SqliteIndex::open(cache.path()).unwrap();
    let canonical_dir = std::fs::canonicalize(dir.path()).unwrap();
    let stamp = lookalike::pipeline::stamp(&lookalike::model::lite0::INFO);
    let images = index.images_under(&canonical_dir, stamp).unwrap();
    assert_eq!(images.len(), 3);
    assert!(images
        .iter()
        .all(|i| i.has_thumbnail && i.embedding.len() == 1280));
    let paths: Vec<&Path> = images.iter().map(|i| i.path.as_path()).collect();
    let thumbnails = index.thumbnails(&paths).unwrap();
    assert!(thumbnails
        .iter()
        .all(|t| t.as_ref().is_some_and(|t| t.to_rgb().is_ok())));
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
            dim: 2,
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

/// A picture the model never saw, as the indexer would store it: a vector of the model's
/// length, labels and a thumbnail. Tests that check what the index keeps need no model run.
fn made_up_analysis(seed: f32) -> lookalike::engine::Analysis {
    let info = lookalike::model::lite0::INFO;
    lookalike::engine::Analysis {
        embedding: (0..info.dim).map(|i| seed + i as f32).collect(),
        top: vec![lookalike::model::labels::Prediction {
            class: 292,
            label: "tiger".into(),
            prob: 0.9,
        }],
        width: 512,
        height: 512,
        thumbnail: Some(lookalike::decode::Thumbnail {
            jpeg: vec![0xFF, 0xD8, 0xFF, 0xD9],
            width: 4,
            height: 4,
        }),
    }
}

/// An uncompressed 512 × 512 BMP (768 KiB): an edit in its middle leaves its size and its
/// first and last 64 KiB as they were.
fn write_bmp(path: &Path) {
    let img = RgbImage::from_fn(512, 512, |x, y| Rgb([(x / 2) as u8, (y / 2) as u8, 77]));
    img.save_with_format(path, image::ImageFormat::Bmp).unwrap();
}

/// Changes 64 bytes in the middle of a file, keeping its size, and moves its mtime on.
fn edit_the_middle(path: &Path) {
    let mut bytes = std::fs::read(path).unwrap();
    let middle = bytes.len() / 2;
    bytes[middle..middle + 64].iter_mut().for_each(|b| *b = !*b);
    std::fs::write(path, &bytes).unwrap();
    let later = std::time::SystemTime::now() + Duration::from_secs(60);
    let file = std::fs::File::options().write(true).open(path).unwrap();
    file.set_modified(later).unwrap();
}

/// Plans one file of `dir` (which must hold only images the test wrote) against `index`.
fn plan_file(index: &mut dyn Store, path: &Path) -> lookalike::pipeline::Plan {
    let scan = lookalike::scan::scan_folder(path.parent().unwrap()).unwrap();
    let entry = scan.images.iter().find(|e| e.path == path).unwrap();
    lookalike::pipeline::plan(index, entry, &lookalike::model::lite0::INFO).unwrap()
}

/// A plan in a few words (a served image's vector is too long to print).
fn outline(plan: &lookalike::pipeline::Plan) -> String {
    use lookalike::pipeline::Plan;
    match plan {
        Plan::Cached(image) => format!("served from the index as {}", image.path.display()),
        Plan::KnownBad(reason) => format!("known bad: {reason}"),
        Plan::Embed(pending) => format!("to embed (changed: {})", pending.changed),
    }
}

/// Plans and stores `path` as made-up analysis `seed`, as an indexing run would.
fn index_by_hand(index: &mut dyn Store, path: &Path, seed: f32) {
    use lookalike::pipeline::{store, Plan};
    let Plan::Embed(pending) = plan_file(index, path) else {
        panic!("{} is new to the index", path.display())
    };
    let info = lookalike::model::lite0::INFO;
    let analysis = Ok(made_up_analysis(seed));
    store(index, &info, std::slice::from_ref(&pending), &[analysis]).unwrap();
}

on_both_backends!(a_same_size_edit: a_same_size_edit_in_the_middle_is_embedded_again, postgres_a_same_size_edit_in_the_middle_is_embedded_again);

/// Regression (issue 25, point 12): the fingerprint read only the first and last 64 KiB, so a
/// BMP edited in its middle kept the vector of the picture it had been.
fn a_same_size_edit(cache: &Backend) {
    use lookalike::pipeline::Plan;
    let dir = tempfile::tempdir().unwrap();
    let bmp = dir.path().join("scan.bmp");
    write_bmp(&bmp);
    let mut index = cache.open(dir.path());
    index_by_hand(index.as_mut(), &bmp, 1.0);
    assert!(matches!(plan_file(index.as_mut(), &bmp), Plan::Cached(_)));

    edit_the_middle(&bmp);
    match plan_file(index.as_mut(), &bmp) {
        Plan::Embed(pending) => assert!(pending.changed, "its old vectors are stale"),
        other => panic!("an edited picture kept its old vector: {}", outline(&other)),
    }
}

on_both_backends!(moved_content: a_moved_pictures_vector_goes_only_to_the_same_content_once, postgres_a_moved_pictures_vector_goes_only_to_the_same_content_once);

/// Regression (issue 25, point 12): a new file whose size and ends matched a file gone from
/// the folder was taken for it moved, and given its vector.
fn moved_content(cache: &Backend) {
    use lookalike::pipeline::Plan;
    let dir = tempfile::tempdir().unwrap();
    let original = dir.path().join("original.bmp");
    write_bmp(&original);
    let bytes = std::fs::read(&original).unwrap();
    let mut index = cache.open(dir.path());
    index_by_hand(index.as_mut(), &original, 1.0);
    std::fs::remove_file(&original).unwrap();

    let other = dir.path().join("other.bmp");
    std::fs::write(&other, &bytes).unwrap();
    edit_the_middle(&other);
    assert!(
        matches!(plan_file(index.as_mut(), &other), Plan::Embed(_)),
        "another picture of the same size and ends is embedded, not given the old vector"
    );

    // The same bytes at a new place are the moved picture, and keep its vector: once.
    let moved = dir.path().join("moved.bmp");
    std::fs::write(&moved, &bytes).unwrap();
    match plan_file(index.as_mut(), &moved) {
        Plan::Cached(image) => assert_eq!(image.embedding[0], 1.0),
        other => panic!("the moved picture was not recognised: {}", outline(&other)),
    }
    let copy = dir.path().join("copy.bmp");
    std::fs::write(&copy, &bytes).unwrap();
    assert!(
        matches!(plan_file(index.as_mut(), &copy), Plan::Embed(_)),
        "one stored row is never handed to two files"
    );
}

/// Opens the SQLite file of `cache` beside lookalike, as a user's tool (or damage) would.
fn raw_sqlite(cache: &tempfile::TempDir) -> rusqlite::Connection {
    rusqlite::Connection::open(cache.path().join("index.sqlite3")).unwrap()
}

/// An index holding one made-up picture in `dir`; returns the picture's canonical path.
fn index_with_one_picture(cache: &tempfile::TempDir, dir: &Path) -> PathBuf {
    let bmp = dir.join("scan.bmp");
    write_bmp(&bmp);
    let mut index = SqliteIndex::open(cache.path()).unwrap();
    index_by_hand(&mut index, &bmp, 1.0);
    std::fs::canonicalize(&bmp).unwrap()
}

/// Reads every image of `dir` back, expecting an index error that names the index and the
/// picture and says `what`.
fn assert_index_error(cache: &tempfile::TempDir, dir: &Path, picture: &Path, what: &str) {
    let mut index = SqliteIndex::open(cache.path()).unwrap();
    let stamp = lookalike::pipeline::stamp(&lookalike::model::lite0::INFO);
    let canonical_dir = std::fs::canonicalize(dir).unwrap();
    let read = index.images_under(&canonical_dir, stamp);
    let Err(lookalike::Error::Index(message)) = &read else {
        let served =
            read.map(|images| images.iter().map(|i| i.embedding.len()).collect::<Vec<_>>());
        panic!("a damaged row was served (vector lengths or error): {served:?}");
    };
    for part in [
        cache.path().join("index.sqlite3").display().to_string(),
        picture.display().to_string(),
        what.to_string(),
    ] {
        assert!(
            message.contains(part.as_str()),
            "{message:?} lacks {part:?}"
        );
    }
    let planned = lookalike::pipeline::plan(
        &mut index,
        &lookalike::scan::scan_folder(dir).unwrap().images[0],
        &lookalike::model::lite0::INFO,
    );
    assert!(
        matches!(planned, Err(lookalike::Error::Index(_))),
        "planning fails as the index, not as the image: {}",
        planned.as_ref().map_or_else(|e| e.to_string(), outline)
    );
}

/// Regression (issue 25, point 11): a stored vector of the wrong length was served, and
/// scored against full-length queries over the shorter of the two.
#[test]
fn a_stored_vector_of_the_wrong_length_is_an_index_error() {
    let (dir, cache) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let picture = index_with_one_picture(&cache, dir.path());
    let cut = raw_sqlite(&cache)
        .execute("UPDATE embeddings SET vector = substr(vector, 1, 16)", [])
        .unwrap();
    assert_eq!(cut, 1);
    assert_index_error(&cache, dir.path(), &picture, "has 4 values, not 1280");
    raw_sqlite(&cache)
        .execute("UPDATE embeddings SET vector = zeroblob(4 * 1280 + 2)", [])
        .unwrap();
    assert_index_error(&cache, dir.path(), &picture, "not a whole number of values");
}

/// Regression (issue 25, point 11): labels the index could not read were served as none.
#[test]
fn unreadable_stored_labels_are_an_index_error() {
    let (dir, cache) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let picture = index_with_one_picture(&cache, dir.path());
    let spoiled = raw_sqlite(&cache)
        .execute("UPDATE embeddings SET top = '[{\"class\": \"tiger\"'", [])
        .unwrap();
    assert_eq!(spoiled, 1);
    assert_index_error(&cache, dir.path(), &picture, "labels");
}

/// Regression (issue 25, point 10): an index written by a newer lookalike (another schema
/// version) was dropped and rebuilt without a word, so two installed versions wiped each
/// other's index.
#[test]
fn an_index_from_a_newer_lookalike_is_refused_and_left_as_it_is() {
    let (dir, cache) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    index_with_one_picture(&cache, dir.path());
    raw_sqlite(&cache)
        .execute("UPDATE meta SET value = 3 WHERE key = 'schema_version'", [])
        .unwrap();

    let refused = SqliteIndex::open(cache.path()).err().map(|e| e.to_string());
    let refused = refused.expect("a newer index is refused");
    assert!(refused.contains("newer lookalike"), "{refused}");
    assert!(
        refused.contains(&cache.path().join("index.sqlite3").display().to_string()),
        "the message names the file: {refused}"
    );
    let out = index(dir.path(), &Backend::Sqlite(tempfile::tempdir().unwrap()));
    assert!(out.status.success(), "another index folder still works");
    let out = lookalike()
        .args(["index", "--json", "--cache-dir"])
        .arg(cache.path())
        .arg(dir.path())
        .output()
        .unwrap();
    assert!(!out.status.success(), "index stops");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("newer lookalike"), "{stderr}");

    let db = raw_sqlite(&cache);
    let version: i64 = db
        .query_row(
            "SELECT value FROM meta WHERE key = 'schema_version'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    let rows: i64 = db
        .query_row("SELECT count(*) FROM embeddings", [], |r| r.get(0))
        .unwrap();
    assert_eq!((version, rows), (3, 1), "the newer index is left as it was");
}

/// Regression (issue 25, point 10): a damaged index was moved aside without its `-wal` and
/// `-shm` files, which were deleted: the copy kept for inspection lacked its latest writes.
#[test]
fn a_damaged_index_keeps_its_journal_beside_the_moved_copy() {
    let cache = tempfile::tempdir().unwrap();
    drop(SqliteIndex::open(cache.path()).unwrap());
    let db = cache.path().join("index.sqlite3");
    let mut bytes = std::fs::read(&db).unwrap();
    bytes[..100].iter_mut().for_each(|b| *b = 0x5A);
    std::fs::write(&db, &bytes).unwrap();
    for suffix in ["-wal", "-shm"] {
        std::fs::write(
            format!("{}{suffix}", db.display()),
            format!("journal{suffix}"),
        )
        .unwrap();
    }

    let mut index = SqliteIndex::open(cache.path()).unwrap();
    let warnings = index.take_warnings();
    assert!(
        warnings.iter().any(|w| w.contains("damaged")),
        "{warnings:?}"
    );
    let aside: Vec<PathBuf> = std::fs::read_dir(cache.path())
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.to_string_lossy().contains("damaged") && p.extension().is_some())
        .filter(|p| {
            !p.to_string_lossy().ends_with("-wal") && !p.to_string_lossy().ends_with("-shm")
        })
        .collect();
    assert_eq!(aside.len(), 1, "{aside:?}");
    assert_eq!(std::fs::read(&aside[0]).unwrap(), bytes);
    for suffix in ["-wal", "-shm"] {
        let beside = format!("{}{suffix}", aside[0].display());
        assert_eq!(
            std::fs::read_to_string(&beside).ok().as_deref(),
            Some(format!("journal{suffix}").as_str()),
            "{beside} is kept beside the copy"
        );
    }
}

/// Regression (issue 25, point 13): when the index failed while planning (here SQLite
/// refuses to update a touched file's row), the failure became one image's "could not be
/// read" with an empty name, and `index` still exited 0.
#[test]
fn an_index_failure_while_planning_stops_index_with_an_error() {
    let dir = tempfile::tempdir().unwrap();
    let backend = Backend::sqlite();
    let Backend::Sqlite(cache) = &backend else {
        unreachable!()
    };
    copy_seeds(dir.path(), &["Tiger.jpg"]);
    assert_eq!(counts(&summary(dir.path(), &backend)), [1, 1, 0, 0, 0]);
    raw_sqlite(cache)
        .execute_batch(
            "CREATE TRIGGER refuse BEFORE UPDATE ON files
             BEGIN SELECT RAISE(ABORT, 'database or disk is full'); END;",
        )
        .unwrap();
    // Touched: same content, new mtime, so planning updates its row.
    let later = std::time::SystemTime::now() + Duration::from_secs(60);
    std::fs::File::options()
        .write(true)
        .open(dir.path().join("Tiger.jpg"))
        .unwrap()
        .set_modified(later)
        .unwrap();

    let out = index(dir.path(), &backend);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "index exits with an error: {stderr}");
    assert!(
        stderr.contains("database or disk is full")
            && stderr.contains(&cache.path().join("index.sqlite3").display().to_string()),
        "the message says what failed, and names the index: {stderr}"
    );
    assert!(
        !stderr.contains("error: : "),
        "no image without a name is blamed: {stderr}"
    );
}
