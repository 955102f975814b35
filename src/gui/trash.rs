//! Moving files to the system's trash (the freedesktop trash on Linux, the Recycle Bin, the
//! macOS Trash) with the `trash` crate. This is the only place where lookalike changes the
//! user's files, and the Duplicates view calls it only after the user confirmed. Nothing is
//! deleted for good: every file can be restored from the trash, and every move is written to
//! a log in the app's data folder.
//!
//! The view's marks are a wish, checked again here against the disk just before each move,
//! because the disk is what matters: two paths may reach one file (a linked folder, a linked
//! file, a hard link), a file may have been edited or replaced since the scan, and a path may
//! lead out of the opened folder. A move is refused, with its reason, when the file it would
//! move lies outside the opened folder, is a file that is kept, or is not the file that was
//! scanned; a group whose kept pictures are all gone moves nothing. The rest go on.
//!
//! The log gets a line before each move (the intent) and one after it (the outcome), so that
//! a crash in between still leaves a record of a file that may be in the trash.

use std::fs::Metadata;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use super::state::{Gallery, Item};
use crate::index::CacheLocation;
use crate::scan::FileId;

/// What the user confirmed in the Duplicates view, group by group.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TrashRequest {
    pub groups: Vec<GroupMarks>,
}

/// One group's marks, as gallery indices.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct GroupMarks {
    /// The group's number, as the view shows it.
    pub number: usize,
    pub keep: Vec<usize>,
    pub remove: Vec<usize>,
}

impl TrashRequest {
    /// Every image to move, with its group number, in group order.
    pub fn removals(&self) -> impl Iterator<Item = (usize, usize)> + '_ {
        (self.groups.iter()).flat_map(|g| g.remove.iter().map(move |&i| (i, g.number)))
    }
}

/// What a move to the trash did.
#[derive(Debug, Default)]
pub struct TrashOutcome {
    /// Gallery indices of the files now in the trash.
    pub moved: Vec<usize>,
    pub bytes: u64,
    /// Files that were not moved, or whose move could not be logged or forgotten, as
    /// (file, reason); the rest went on.
    pub problems: Vec<(PathBuf, String)>,
}

/// Where the log of moves is: `<data dir>/lookalike/trash-log.jsonl`.
pub fn log_path() -> Option<PathBuf> {
    directories::ProjectDirs::from("", "", "lookalike")
        .map(|d| d.data_dir().join("trash-log.jsonl"))
}

/// Moves the files `request` marks for removal to the trash, each after checking it against
/// the disk (see the module's doc), logs each move and forgets the moved files in the index.
pub fn move_to_trash(
    gallery: &Gallery,
    request: &TrashRequest,
    cache: &CacheLocation,
    folder: &Path,
) -> TrashOutcome {
    let mut outcome = TrashOutcome::default();
    let root = match std::fs::canonicalize(folder) {
        Ok(root) => root,
        Err(e) => {
            let reason = format!("the folder {} cannot be read: {e}", folder.display());
            refuse_all(gallery, request.removals(), &reason, &mut outcome);
            return outcome;
        }
    };
    let kept: Vec<OnDisk> = (request.groups.iter())
        .flat_map(|g| g.keep.iter())
        .filter_map(|&i| OnDisk::find(&gallery.items.get(i)?.path).ok())
        .collect();
    let mut forget = Vec::new();
    for group in &request.groups {
        let removals = group.remove.iter().map(|&i| (i, group.number));
        if !group.keep.iter().any(|&i| keeps_a_copy(gallery, i, &kept)) {
            let reason = "nothing in its group would be kept: the kept pictures are gone";
            refuse_all(gallery, removals, reason, &mut outcome);
            continue;
        }
        for (index, number) in removals {
            let Some(item) = gallery.items.get(index) else {
                continue;
            };
            match check(item, &root, &kept) {
                Ok(file) => move_one(index, item, &file, number, &mut outcome, &mut forget),
                Err(reason) => outcome.problems.push((
                    item.path.clone(),
                    format!("not moved to the trash: {reason}"),
                )),
            }
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

/// A file as the disk has it now, every link resolved.
struct OnDisk {
    /// The path the user saw.
    shown: PathBuf,
    canonical: PathBuf,
    meta: Metadata,
}

impl OnDisk {
    fn find(path: &Path) -> std::io::Result<OnDisk> {
        let canonical = std::fs::canonicalize(path)?;
        let meta = std::fs::metadata(&canonical)?;
        Ok(OnDisk {
            shown: path.to_path_buf(),
            canonical,
            meta,
        })
    }

    /// Whether both reach the same file: the same inode, or (where the platform gives no
    /// identity) the same resolved path.
    fn is(&self, other: &OnDisk) -> bool {
        match (FileId::of(&self.meta), FileId::of(&other.meta)) {
            (Some(a), Some(b)) => a == b,
            _ => self.canonical == other.canonical,
        }
    }
}

/// Whether gallery image `index`, marked keep, is still on disk.
fn keeps_a_copy(gallery: &Gallery, index: usize, kept: &[OnDisk]) -> bool {
    let Some(item) = gallery.items.get(index) else {
        return false;
    };
    !item.removed && kept.iter().any(|k| k.shown == item.path)
}

/// The file to move for `item`, or why it must stay.
fn check(item: &Item, root: &Path, kept: &[OnDisk]) -> Result<OnDisk, String> {
    let file = OnDisk::find(&item.path).map_err(|e| format!("it can no longer be read: {e}"))?;
    if !file.canonical.starts_with(root) {
        return Err(format!(
            "it is {}, outside the opened folder",
            file.canonical.display()
        ));
    }
    if !file.meta.is_file() {
        return Err("it is no longer a file".into());
    }
    if let Some(keeper) = kept.iter().find(|k| k.is(&file)) {
        return Err(format!(
            "it is the same file as {}, which is kept",
            keeper.shown.display()
        ));
    }
    let replaced = item.file_id.is_some() && FileId::of(&file.meta) != item.file_id;
    if replaced || file.meta.len() != item.bytes || file.meta.modified().ok() != item.modified {
        return Err("it changed since the folder was scanned; rescan to see it as it is".into());
    }
    Ok(file)
}

/// Moves one checked file, with the log's intent line first: a move that cannot be logged
/// does not happen.
fn move_one(
    index: usize,
    item: &Item,
    file: &OnDisk,
    group: usize,
    outcome: &mut TrashOutcome,
    forget: &mut Vec<PathBuf>,
) {
    let path = file.canonical.to_string_lossy();
    let intent = serde_json::json!({
        "event": "moving to the trash",
        "path": path,
        "shown_as": item.path.to_string_lossy(),
        "bytes": item.bytes,
        "group": group,
        "time": seconds_now(),
        "date": super::duplicates::format_date(SystemTime::now()),
    });
    if let Err(e) = append_to_log(&intent) {
        let reason = format!("not moved to the trash: the trash log could not be written: {e}");
        outcome.problems.push((item.path.clone(), reason));
        return;
    }
    let result = trash::delete(&file.canonical).map_err(|e| e.to_string());
    let line = match &result {
        Ok(()) => serde_json::json!({"event": "moved", "path": path, "time": seconds_now()}),
        Err(reason) => serde_json::json!({
            "event": "not moved", "path": path, "reason": reason, "time": seconds_now(),
        }),
    };
    let logged = append_to_log(&line);
    match result {
        Ok(()) => {
            outcome.moved.push(index);
            outcome.bytes += item.bytes;
            // The index knows the file by its canonical path.
            forget.push(file.canonical.clone());
        }
        Err(reason) => outcome.problems.push((
            item.path.clone(),
            format!("could not be moved to the trash: {reason}"),
        )),
    }
    if let Err(e) = logged {
        outcome.problems.push((
            item.path.clone(),
            format!("the outcome of its move could not be written to the trash log: {e}"),
        ));
    }
}

fn refuse_all(
    gallery: &Gallery,
    removals: impl Iterator<Item = (usize, usize)>,
    reason: &str,
    outcome: &mut TrashOutcome,
) {
    for (index, _) in removals {
        if let Some(item) = gallery.items.get(index) {
            let problem = format!("not moved to the trash: {reason}");
            outcome.problems.push((item.path.clone(), problem));
        }
    }
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

fn seconds_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// Appends one line to the log and makes sure it is on the disk before a move goes ahead.
fn append_to_log(line: &serde_json::Value) -> std::io::Result<()> {
    let log = log_path().ok_or_else(|| std::io::Error::other("this system has no data folder"))?;
    if let Some(dir) = log.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let mut file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&log)?;
    writeln!(file, "{line}")?;
    file.sync_data()
}
