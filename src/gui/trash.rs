//! Moving files to the system's trash (the freedesktop trash on Linux, the Recycle Bin, the
//! macOS Trash) with the `trash` crate. This is the only place where lookalike changes the
//! user's files, and the Duplicates view calls it only after the user confirmed. Nothing is
//! deleted for good: every file can be restored from the trash, and every move is appended to
//! a log in the app's data folder.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use super::state::Gallery;
use crate::index::CacheLocation;

/// What a move to the trash did.
#[derive(Debug, Default)]
pub struct TrashOutcome {
    /// Gallery indices of the files now in the trash.
    pub moved: Vec<usize>,
    pub bytes: u64,
    /// Files that could not be moved, or whose move could not be logged or forgotten, as
    /// (file, reason); the rest went on.
    pub problems: Vec<(PathBuf, String)>,
}

/// Where the log of moves is: `<data dir>/lookalike/trash-log.jsonl`.
pub fn log_path() -> Option<PathBuf> {
    directories::ProjectDirs::from("", "", "lookalike")
        .map(|d| d.data_dir().join("trash-log.jsonl"))
}

/// Moves `files` (gallery index, group number) to the trash, logs each move and forgets the
/// moved files in the index.
pub fn move_to_trash(
    gallery: &Gallery,
    files: &[(usize, usize)],
    cache: &CacheLocation,
    folder: &Path,
) -> TrashOutcome {
    let mut outcome = TrashOutcome::default();
    let mut forget = Vec::new();
    for &(index, group) in files {
        let Some(item) = gallery.items.get(index) else {
            continue;
        };
        // The index knows the file by its canonical path, which is gone once it has moved.
        let canonical = std::fs::canonicalize(&item.path).unwrap_or_else(|_| item.path.clone());
        match trash::delete(&item.path) {
            Ok(()) => {
                outcome.moved.push(index);
                outcome.bytes += item.bytes;
                forget.push(canonical);
                if let Err(e) = log_move(&item.path, item.bytes, group) {
                    outcome.problems.push((
                        item.path.clone(),
                        format!("moved to the trash, but the log could not be written: {e}"),
                    ));
                }
            }
            Err(e) => outcome.problems.push((
                item.path.clone(),
                format!("could not be moved to the trash: {e}"),
            )),
        }
    }
    if let Err(e) = forget_in_index(cache, folder, &forget) {
        outcome.problems.push((
            PathBuf::new(),
            format!("the index could not forget the moved files: {e}"),
        ));
    }
    outcome
}

fn forget_in_index(cache: &CacheLocation, folder: &Path, paths: &[PathBuf]) -> crate::Result<()> {
    if paths.is_empty() {
        return Ok(());
    }
    let Some(mut index) = cache.open(folder)? else {
        return Ok(());
    };
    for path in paths {
        index.forget(path)?;
    }
    Ok(())
}

fn log_move(path: &std::path::Path, bytes: u64, group: usize) -> std::io::Result<()> {
    let log = log_path().ok_or_else(|| std::io::Error::other("this system has no data folder"))?;
    if let Some(dir) = log.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let seconds = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let line = serde_json::json!({
        "path": path.to_string_lossy(),
        "bytes": bytes,
        "time": seconds,
        "date": super::duplicates::format_date(SystemTime::now()),
        "group": group,
    });
    let mut file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&log)?;
    writeln!(file, "{line}")
}
