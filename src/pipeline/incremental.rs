//! What the index can serve without decoding, and how results go into it: the incremental
//! half of [`super::Indexer`].
//!
//! - unchanged files (same size and mtime) are not read at all;
//! - a touched file (new mtime, same content) or a moved one (same fingerprint at a new path)
//!   keeps its vector;
//! - changed files are embedded again, new ones added, and files gone from the folder pruned:
//!   only rows under the folder scanned (a library's other folders are not this scan's to
//!   judge), and only rows stored before the scan began (another indexer's fresh rows are for
//!   files this scan could not have seen).

use std::collections::{HashMap, HashSet};

use rayon::prelude::*;
use std::path::{Path, PathBuf};

use crate::engine::Analysis;
use crate::error::{Error, Result};
use crate::index::{
    fingerprint, mtime_ns, CachedImage, FileRecord, FileRow, ModelStamp, ScanStart, Store, Stored,
};
use crate::model::ModelInfo;
use crate::scan::{ImageEntry, ScanResult};

/// What to do about one scanned image.
#[derive(Debug)]
pub enum Plan {
    /// The index has it; nothing to decode.
    Cached(CachedImage),
    /// It failed before and has not changed since.
    KnownBad(String),
    /// It must be decoded and embedded.
    Embed(Pending),
}

/// An image waiting to be embedded, with what the index needs to store it.
#[derive(Debug, Clone)]
pub struct Pending {
    /// The path as scanned (what the user sees).
    pub path: PathBuf,
    /// The canonical path (the index key).
    pub key: PathBuf,
    pub size: u64,
    pub mtime_ns: i64,
    pub fingerprint: Vec<u8>,
    /// True when the index had this path with other content: its vectors, for every model,
    /// are stale. False for a new file, or a known one that lacks this model's vector.
    pub changed: bool,
}

/// Decides, without decoding, whether an image can be served from the index.
pub fn plan(index: &mut dyn Store, entry: &ImageEntry, info: &ModelInfo) -> Result<Plan> {
    let mut plans = plan_many(index, &[entry], info)?;
    plans
        .pop()
        .unwrap_or_else(|| Err(Error::Index("no plan was made".into())))
}

/// [`plan`] for many images at once: their rows, and the images the index can serve, are
/// read in a few queries rather than a few a file, which is what opening a large library
/// costs. The outer error is the index's; each image's own result is its plan.
pub fn plan_many(
    index: &mut dyn Store,
    entries: &[&ImageEntry],
    info: &ModelInfo,
) -> Result<Vec<Result<Plan>>> {
    let keys = canonical_keys(entries);
    let rows = index.lookup_many(&keys.iter().map(PathBuf::as_path).collect::<Vec<_>>())?;
    let unchanged: Vec<i64> = (entries.iter().zip(&rows))
        .filter_map(|(entry, row)| row.as_ref().filter(|r| is_unchanged(r, entry)))
        .filter(|row| row.error.is_none())
        .map(|row| row.id)
        .collect();
    let served = index.images(&unchanged, stamp(info))?;
    let mut served: HashMap<i64, CachedImage> = (unchanged.into_iter().zip(served))
        .filter_map(|(id, image)| Some((id, image?)))
        .collect();
    Ok((entries.iter().zip(keys).zip(rows))
        .map(|((entry, key), row)| {
            let ready = row.as_ref().and_then(|r| served.remove(&r.id));
            plan_with(index, entry, key, row, ready, info)
        })
        .collect())
}

/// The index keys (canonical paths) of `entries`. A scan's files share a few folders, so each
/// folder is resolved once and the file's name joined to it; only a file that is itself a link
/// is resolved on its own. Resolving every path whole costs a system call per folder level per
/// file, a second at 100,000 photos. What cannot be resolved keeps its path as scanned.
fn canonical_keys(entries: &[&ImageEntry]) -> Vec<PathBuf> {
    let whole = |path: &Path| std::fs::canonicalize(path).unwrap_or_else(|_| path.to_path_buf());
    let parents: HashSet<&Path> = entries.iter().filter_map(|e| e.path.parent()).collect();
    let folders: HashMap<&Path, PathBuf> = (parents.into_par_iter())
        .filter_map(|p| Some((p, std::fs::canonicalize(p).ok()?)))
        .collect();
    (entries.par_iter())
        .map(|entry| {
            let path = &entry.path;
            let is_link = std::fs::symlink_metadata(path).map_or(true, |m| m.is_symlink());
            match (path.parent().and_then(|p| folders.get(p)), path.file_name()) {
                (Some(folder), Some(name)) if !is_link => folder.join(name),
                _ => whole(path),
            }
        })
        .collect()
}

/// Whether the file has the size and mtime the index has for it.
fn is_unchanged(row: &FileRow, entry: &ImageEntry) -> bool {
    row.size == entry.size && row.mtime_ns == mtime_ns(entry.modified)
}

/// Plans one image from its row (`None`: the index does not know its path) and the image
/// the index served for an unchanged row.
fn plan_with(
    index: &mut dyn Store,
    entry: &ImageEntry,
    key: PathBuf,
    row: Option<FileRow>,
    ready: Option<CachedImage>,
    info: &ModelInfo,
) -> Result<Plan> {
    let mtime = mtime_ns(entry.modified);
    // What the index can serve for a row. One without a thumbnail (written by an older
    // lookalike) is made again, or the app would show a grey placeholder for good.
    let servable = |index: &mut dyn Store, id: i64| -> Result<Option<CachedImage>> {
        let image = index.image(id, stamp(info))?;
        Ok(image.filter(|i| i.has_thumbnail))
    };
    if let Some(row) = row.as_ref().filter(|r| is_unchanged(r, entry)) {
        if let Some(error) = &row.error {
            return Ok(Plan::KnownBad(error.clone()));
        }
        if let Some(image) = ready.filter(|i| i.has_thumbnail) {
            return Ok(Plan::Cached(image));
        }
    }
    let fingerprint = fingerprint(&entry.path)?;
    let same_content = row
        .as_ref()
        .filter(|r| r.fingerprint == fingerprint && r.size == entry.size);
    let reusable = match same_content {
        Some(row) => Some(row.clone()),
        None if row.is_none() => index.find_moved(&fingerprint, entry.size)?,
        None => None,
    };
    if let Some(old) = reusable.filter(|r| r.error.is_none()) {
        if let Some(image) = servable(index, old.id)? {
            index.update_location(old.id, &key, entry.size, mtime)?;
            return Ok(Plan::Cached(CachedImage { path: key, ..image }));
        }
    }
    Ok(Plan::Embed(Pending {
        path: entry.path.clone(),
        key,
        size: entry.size,
        mtime_ns: mtime,
        changed: row
            .as_ref()
            .is_some_and(|r| r.fingerprint != fingerprint || r.size != entry.size),
        fingerprint,
    }))
}

/// Which model revision an engine's vectors belong to.
pub fn stamp(info: &ModelInfo) -> ModelStamp<'_> {
    ModelStamp {
        model: info.id,
        revision: info.revision,
        dim: info.dim,
    }
}

/// Stores one batch of results in a single transaction.
pub fn store(
    index: &mut dyn Store,
    info: &ModelInfo,
    batch: &[Pending],
    results: &[Result<Analysis>],
) -> Result<()> {
    let mut stored = Vec::with_capacity(batch.len());
    for (pending, result) in batch.iter().zip(results) {
        if result.as_ref().err().is_some_and(Error::is_transient) {
            // Not the file's fault (it could not be opened, or the model failed): keep no
            // record, so the next run tries again even though the file has not changed.
            continue;
        }
        stored.push((
            pending,
            result.as_ref().err().map(Error::reason),
            result.as_ref().ok(),
        ));
    }
    let stored: Vec<Stored<'_>> = stored
        .iter()
        .map(|(pending, error, analysis)| Stored {
            file: FileRecord {
                path: &pending.key,
                size: pending.size,
                mtime_ns: pending.mtime_ns,
                fingerprint: &pending.fingerprint,
                size_px: analysis.map(|a| (a.width, a.height)),
                thumbnail: analysis.and_then(|a| a.thumbnail.as_ref()),
                error: error.as_deref(),
                content_changed: pending.changed,
            },
            embedding: analysis.map(|a| (a.embedding.as_slice(), a.top.as_slice())),
        })
        .collect();
    index.store_batch(stamp(info), &stored)
}

/// Deletes rows under `dir` whose files were not in this scan, among those stored before
/// `start` (taken before the scan). Rows under an entry the scan could not read (an
/// unreadable subfolder, say) are kept: their files may well be there.
pub fn prune(
    index: &mut dyn Store,
    dir: &Path,
    scan: &ScanResult,
    start: ScanStart,
) -> Result<usize> {
    let Ok(canonical_dir) = std::fs::canonicalize(dir) else {
        return Ok(0);
    };
    let canonical = |p: &Path| std::fs::canonicalize(p).unwrap_or_else(|_| p.to_path_buf());
    let seen: HashSet<PathBuf> = scan.images.iter().map(|e| canonical(&e.path)).collect();
    let unreadable: Vec<PathBuf> = scan
        .problems
        .iter()
        .filter_map(|e| match e {
            Error::File { path, .. } => Some(canonical(path)),
            _ => None,
        })
        .collect();
    let gone: Vec<i64> = index
        .files_under(&canonical_dir)?
        .into_iter()
        .filter(|row| {
            !seen.contains(&row.path) && !unreadable.iter().any(|u| row.path.starts_with(u))
        })
        .map(|row| row.id)
        .collect();
    index.prune_files(&gone, start)
}
