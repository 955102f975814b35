//! Incremental indexing: scan a folder, serve what the index already knows, and decode, embed
//! and store only what is new or changed, in crash-safe batches.
//!
//! - unchanged files (same size and mtime) are not read at all;
//! - a touched file (new mtime, same content) or a moved one (same fingerprint at a new path)
//!   keeps its vector;
//! - changed files are embedded again, new ones added, and files gone from the folder pruned.

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

use crate::engine::{Analysis, Engine};
use crate::error::{Error, Result};
use crate::index::{fingerprint, mtime_ns, CachedImage, FileRecord, Index};
use crate::model::ModelInfo;
use crate::scan::{scan_folder, ImageEntry, ScanResult};

/// What one `index` run did.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct IndexReport {
    /// Readable images now in the index for the folder.
    pub images: usize,
    /// Embedded for the first time (for this model).
    pub new: usize,
    /// Embedded again because their content changed.
    pub updated: usize,
    /// Served from the index without decoding, including touched and moved files.
    pub unchanged: usize,
    /// Pruned: in the index, no longer in the folder.
    pub removed: usize,
    /// Every file that could not be read, with the reason.
    pub failed: Vec<Failure>,
    pub seconds: f64,
    /// Index rows of the images, in folder order, with the path as scanned.
    #[serde(skip)]
    pub entries: Vec<(PathBuf, i64)>,
}

#[derive(Debug, Clone, serde::Serialize)]
pub struct Failure {
    pub file: String,
    pub error: String,
}

impl Failure {
    pub fn new(path: &Path, error: impl Into<String>) -> Self {
        Failure {
            file: path.to_string_lossy().into_owned(),
            error: error.into(),
        }
    }

    /// The failure an error describes (the file it names, and the reason).
    pub fn from_error(e: &Error) -> Self {
        match e {
            Error::File { path, reason } => Failure::new(path, reason.clone()),
            other => Failure {
                file: String::new(),
                error: other.to_string(),
            },
        }
    }

    /// The same failure, naming `path` if the error named no file.
    pub fn named(mut self, path: &Path) -> Self {
        if self.file.is_empty() {
            self.file = path.to_string_lossy().into_owned();
        }
        self
    }
}

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
pub fn plan(index: &Index, entry: &ImageEntry, info: &ModelInfo) -> Result<Plan> {
    let key = std::fs::canonicalize(&entry.path).unwrap_or_else(|_| entry.path.clone());
    let mtime = mtime_ns(entry.modified);
    // What the index can serve for a row. One without a thumbnail (written by an older
    // lookalike) is made again, or the app would show a grey placeholder for good.
    let servable = |id: i64| -> Result<Option<CachedImage>> {
        let image = index.image(id, info.id, info.revision)?;
        Ok(image.filter(|i| i.thumbnail.is_some()))
    };
    let row = index.lookup(&key)?;
    if let Some(row) = &row {
        if row.size == entry.size && row.mtime_ns == mtime {
            if let Some(error) = &row.error {
                return Ok(Plan::KnownBad(error.clone()));
            }
            if let Some(image) = servable(row.id)? {
                return Ok(Plan::Cached(image));
            }
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
        if let Some(image) = servable(old.id)? {
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

/// Stores one batch of results in a single transaction; returns the new rows' ids (None for
/// files that failed).
pub fn store(
    index: &mut Index,
    info: &ModelInfo,
    batch: &[Pending],
    results: &[Result<Analysis>],
) -> Result<Vec<Option<i64>>> {
    index.in_transaction(|w| {
        let mut ids = Vec::with_capacity(batch.len());
        for (pending, result) in batch.iter().zip(results) {
            if result.as_ref().err().is_some_and(is_transient) {
                // Not the file's fault (it could not be opened, or the model failed): keep no
                // record, so the next run tries again even though the file has not changed.
                ids.push(None);
                continue;
            }
            let error = result.as_ref().err().map(reason_of);
            let analysis = result.as_ref().ok();
            let record = FileRecord {
                path: &pending.key,
                size: pending.size,
                mtime_ns: pending.mtime_ns,
                fingerprint: &pending.fingerprint,
                size_px: analysis.map(|a| (a.width, a.height)),
                thumbnail: analysis.and_then(|a| a.thumbnail.as_ref()),
                error: error.as_deref(),
                content_changed: pending.changed,
            };
            let id = w.put_file(&record)?;
            if let Some(a) = analysis {
                w.put_embedding(id, info.id, info.revision, &a.embedding, &a.top)?;
            }
            ids.push(analysis.map(|_| id));
        }
        Ok(ids)
    })
}

/// Builds or updates the index for `dir`. Fails only if the folder or the index cannot be
/// used at all; unreadable images are listed in the report.
pub fn index_folder(
    engine: &Engine,
    index: &mut Index,
    dir: &Path,
    cancel: &AtomicBool,
    on_progress: &mut dyn FnMut(usize, usize),
) -> Result<IndexReport> {
    let started = Instant::now();
    let scan = scan_folder(dir)?;
    let mut report = IndexReport {
        failed: scan.problems.iter().map(Failure::from_error).collect(),
        ..Default::default()
    };
    let info = engine.info().clone();
    let mut pending = Vec::new();
    let mut slots = Vec::new(); // (scanned path, file id or index into `pending`)
    for entry in &scan.images {
        match plan(index, entry, &info) {
            Ok(Plan::Cached(image)) => {
                report.unchanged += 1;
                slots.push((entry.path.clone(), Ok(image.file_id)));
            }
            Ok(Plan::KnownBad(reason)) => report.failed.push(Failure::new(&entry.path, reason)),
            Ok(Plan::Embed(p)) => {
                slots.push((entry.path.clone(), Err(pending.len())));
                pending.push(p);
            }
            Err(e) => report
                .failed
                .push(Failure::from_error(&e).named(&entry.path)),
        }
    }
    let mut new_ids = vec![None; pending.len()];
    let batch_size = engine.batch_size() * 2;
    let mut chunks = pending.chunks(batch_size).enumerate();
    let mut store_error = None;
    engine.analyse_stream(
        || match cancel.load(Ordering::Relaxed) {
            true => None,
            false => chunks.next().map(|(chunk_no, chunk)| {
                let paths = chunk.iter().map(|p| p.path.clone()).collect();
                ((chunk_no, chunk), paths)
            }),
        },
        |(chunk_no, chunk), results| {
            let ids = match store(index, &info, chunk, &results) {
                Ok(ids) => ids,
                Err(e) => {
                    store_error = Some(e);
                    return false;
                }
            };
            for ((p, result), id) in chunk.iter().zip(&results).zip(&ids) {
                match (result, id) {
                    (Err(e), _) => report.failed.push(Failure::new(&p.path, reason_of(e))),
                    (Ok(_), _) if p.changed => report.updated += 1,
                    (Ok(_), _) => report.new += 1,
                }
            }
            new_ids[chunk_no * batch_size..][..ids.len()].copy_from_slice(&ids);
            on_progress(chunk_no * batch_size + chunk.len(), pending.len());
            true
        },
    );
    if let Some(e) = store_error {
        return Err(e);
    }
    if cancel.load(Ordering::Relaxed) {
        return Err(Error::Cancelled);
    }
    report.removed = prune(index, dir, &scan)?;
    report.entries = slots
        .into_iter()
        .filter_map(|(path, slot)| match slot {
            Ok(id) => Some((path, id)),
            Err(i) => new_ids[i].map(|id| (path, id)),
        })
        .collect();
    report.images = report.entries.len();
    report.seconds = started.elapsed().as_secs_f64();
    Ok(report)
}

/// Deletes rows under `dir` whose files were not in this scan. Rows under an entry the scan
/// could not read (an unreadable subfolder, say) are kept: their files may well be there.
pub fn prune(index: &mut Index, dir: &Path, scan: &ScanResult) -> Result<usize> {
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
    index.in_transaction(|w| gone.iter().try_for_each(|&id| w.delete_file(id)))?;
    Ok(gone.len())
}

/// Failures that say nothing about the file's content.
fn is_transient(e: &Error) -> bool {
    match e {
        Error::File { reason, .. } => {
            reason.starts_with("cannot open") || reason.starts_with("cannot read")
        }
        _ => true,
    }
}

fn reason_of(e: &Error) -> String {
    match e {
        Error::File { reason, .. } => reason.clone(),
        other => other.to_string(),
    }
}
