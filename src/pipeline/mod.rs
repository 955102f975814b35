//! The one indexing loop behind the command line and the app: scan a folder, serve what the
//! index already knows, decode and embed the rest on the engine's threads, store each batch,
//! and forget files that left the folder.
//!
//! - unchanged files (same size and mtime) are not read at all;
//! - a touched file (new mtime, same content) or a moved one (same fingerprint at a new path)
//!   keeps its vector;
//! - changed files are embedded again, new ones added, and files gone from the folder pruned.
//!
//! Callers differ only in what they do with the results, so [`Indexer`] hands every result,
//! failure and index problem to a sink as an [`IndexEvent`]; the app's sink forwards them to
//! the window, the command line's prints problems and keeps the vectors. A priority hook lets
//! the app embed the images on screen first, and a stop flag ends the run after the batch in
//! flight.

mod incremental;

pub use incremental::{plan, prune, store, Pending, Plan};

use std::ops::ControlFlow;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

use crate::engine::{Analysis, Engine};
use crate::error::{Error, Result};
use crate::index::{CachedImage, Index};
use crate::scan::{scan_folder, ImageEntry, ScanResult};

/// What one indexing run did.
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
}

/// A file that could not be used, for reports.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Failure {
    pub file: String,
    pub error: String,
}

impl Failure {
    /// The failure an error describes: the file it names (if any) and the reason.
    pub fn from_error(e: &Error) -> Self {
        Failure {
            file: e
                .path()
                .map_or_else(String::new, |p| p.to_string_lossy().into_owned()),
            error: e.reason(),
        }
    }
}

/// Where an image's result came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    /// Served from the index without decoding.
    Index,
    /// Embedded for the first time with this model (always, when there is no index).
    New,
    /// Embedded again because its content changed.
    Updated,
}

/// What the indexer tells its caller, as it happens. Positions are indices into the scanned
/// images, in folder order.
#[derive(Debug)]
pub enum IndexEvent<'a> {
    /// The folder has been scanned: its images in folder order, and the entries it could not
    /// use.
    Scanned {
        images: &'a [ImageEntry],
        problems: &'a [Error],
    },
    /// One image is ready.
    Ready {
        position: usize,
        analysis: Analysis,
        source: Source,
    },
    /// One image could not be used.
    Failed { position: usize, error: Error },
    /// The index could not store a batch or forget removed files. The results still arrive;
    /// returning `Break` makes the run fail with this error.
    IndexFailed(&'a Error),
    /// This many files that left the folder were forgotten.
    Pruned(usize),
    /// Images embedded so far, out of those that needed it.
    Progress { done: usize, total: usize },
}

/// Receives every event; `Break` stops the run after the batch in flight.
pub type Sink<'s> = dyn FnMut(IndexEvent<'_>) -> ControlFlow<()> + 's;

/// Which images to embed next: the positions the caller wants first (the app: those on
/// screen). The rest follow in folder order from the first of them.
pub type Priority<'p> = dyn Fn() -> Vec<usize> + Sync + 'p;

/// Indexes one folder: see the module documentation.
pub struct Indexer<'a> {
    engine: &'a Engine,
    index: Option<&'a mut Index>,
    cancel: &'a AtomicBool,
    priority: Option<&'a Priority<'a>>,
}

/// What is left to do for one image after the index has served what it could.
enum Todo {
    Done,
    /// Embed it; with what the index needs to store it, when there is an index.
    Embed(Option<Pending>),
}

impl<'a> Indexer<'a> {
    /// An indexer that stores into `index`, or keeps nothing when it is `None`.
    pub fn new(engine: &'a Engine, index: Option<&'a mut Index>, cancel: &'a AtomicBool) -> Self {
        Indexer {
            engine,
            index,
            cancel,
            priority: None,
        }
    }

    /// Embeds the positions `priority` returns first; it is asked again before every batch.
    pub fn prioritise(mut self, priority: &'a Priority<'a>) -> Self {
        self.priority = Some(priority);
        self
    }

    /// Indexes `dir`. Fails only if the folder cannot be read, the run was stopped (through the
    /// stop flag or the sink), or the sink stopped it on an index failure; unreadable images
    /// are events and lines in the report.
    pub fn run(mut self, dir: &Path, sink: &mut Sink<'_>) -> Result<IndexReport> {
        let started = Instant::now();
        let scan = scan_folder(dir)?;
        let mut report = IndexReport {
            failed: scan.problems.iter().map(Failure::from_error).collect(),
            ..Default::default()
        };
        let mut tell = |event: IndexEvent<'_>, report: &mut IndexReport| {
            count(report, &event);
            sink(event)
        };
        let scanned = IndexEvent::Scanned {
            images: &scan.images,
            problems: &scan.problems,
        };
        if tell(scanned, &mut report).is_break() {
            return Err(Error::Cancelled);
        }
        let todo = self.serve_from_index(&scan.images, &mut |e| tell(e, &mut report))?;
        self.embed(&scan.images, todo, &mut |e| tell(e, &mut report))?;
        if self.cancel.load(Ordering::Relaxed) {
            return Err(Error::Cancelled);
        }
        self.prune(dir, &scan, &mut |e| tell(e, &mut report))?;
        report.seconds = started.elapsed().as_secs_f64();
        Ok(report)
    }

    /// Sends every image the index can serve; returns what is left to do.
    fn serve_from_index(&self, images: &[ImageEntry], sink: &mut Sink<'_>) -> Result<Vec<Todo>> {
        let Some(index) = self.index.as_deref() else {
            return Ok(images.iter().map(|_| Todo::Embed(None)).collect());
        };
        let info = self.engine.info();
        let mut todo = Vec::with_capacity(images.len());
        for (position, entry) in images.iter().enumerate() {
            if self.cancel.load(Ordering::Relaxed) {
                return Err(Error::Cancelled);
            }
            let event = match plan(index, entry, info) {
                Ok(Plan::Embed(pending)) => {
                    todo.push(Todo::Embed(Some(pending)));
                    continue;
                }
                Ok(Plan::Cached(image)) => IndexEvent::Ready {
                    position,
                    analysis: analysis_from(image),
                    source: Source::Index,
                },
                Ok(Plan::KnownBad(reason)) => IndexEvent::Failed {
                    position,
                    error: Error::unusable(&entry.path, reason),
                },
                Err(error) => IndexEvent::Failed { position, error },
            };
            todo.push(Todo::Done);
            if sink(event).is_break() {
                return Err(Error::Cancelled);
            }
        }
        Ok(todo)
    }

    /// Embeds what is left, in the order the priority hook asks for, storing each batch in
    /// the index before its results go to the sink.
    fn embed(&mut self, images: &[ImageEntry], todo: Vec<Todo>, sink: &mut Sink<'_>) -> Result<()> {
        let total = todo.iter().filter(|t| matches!(t, Todo::Embed(_))).count();
        let mut taken: Vec<bool> = todo.iter().map(|t| matches!(t, Todo::Done)).collect();
        let (cancel, priority) = (self.cancel, self.priority);
        let batch_size = self.engine.batch_size();
        let (mut done, mut outcome) = (0, Ok(()));
        let engine = self.engine;
        let streamed = engine.analyse_stream(
            || {
                if cancel.load(Ordering::Relaxed) {
                    return None;
                }
                let first = priority.map(|p| p()).unwrap_or_default();
                let next = next_batch(&first, &taken, batch_size)?;
                next.iter().for_each(|&i| taken[i] = true);
                let paths = next.iter().map(|&i| images[i].path.clone()).collect();
                Some((next, paths))
            },
            |positions, results| {
                done += positions.len();
                outcome = self.deliver(&todo, &positions, results, sink);
                let progress = IndexEvent::Progress { done, total };
                outcome.is_ok() && sink(progress).is_continue()
            },
        );
        streamed?;
        match outcome {
            Ok(()) if self.cancel.load(Ordering::Relaxed) => Err(Error::Cancelled),
            other => other,
        }
    }

    /// Stores one batch (when there is an index), then hands its results to the sink.
    fn deliver(
        &mut self,
        todo: &[Todo],
        positions: &[usize],
        results: Vec<Result<Analysis>>,
        sink: &mut Sink<'_>,
    ) -> Result<()> {
        let pending: Vec<Option<&Pending>> = positions
            .iter()
            .map(|&i| match &todo[i] {
                Todo::Embed(pending) => pending.as_ref(),
                Todo::Done => None,
            })
            .collect();
        if let Some(index) = self.index.as_deref_mut() {
            let batch: Vec<Pending> = pending.iter().flatten().map(|&p| p.clone()).collect();
            if let Err(e) = store(index, self.engine.info(), &batch, &results) {
                index_failed(e, sink)?;
            }
        }
        for ((&position, result), pending) in positions.iter().zip(results).zip(pending) {
            let changed = pending.is_some_and(|p| p.changed);
            let event = match result {
                Ok(analysis) => IndexEvent::Ready {
                    position,
                    analysis,
                    source: if changed {
                        Source::Updated
                    } else {
                        Source::New
                    },
                },
                Err(error) => IndexEvent::Failed { position, error },
            };
            if sink(event).is_break() {
                return Err(Error::Cancelled);
            }
        }
        Ok(())
    }

    /// Forgets the files under `dir` that this scan did not find.
    fn prune(&mut self, dir: &Path, scan: &ScanResult, sink: &mut Sink<'_>) -> Result<()> {
        let Some(index) = self.index.as_deref_mut() else {
            return Ok(());
        };
        match prune(index, dir, scan) {
            Ok(removed) if sink(IndexEvent::Pruned(removed)).is_break() => Err(Error::Cancelled),
            Ok(_) => Ok(()),
            Err(e) => index_failed(e, sink),
        }
    }
}

/// Tells the sink the index failed; an error if the sink wants the run to stop on it.
fn index_failed(e: Error, sink: &mut Sink<'_>) -> Result<()> {
    match sink(IndexEvent::IndexFailed(&e)) {
        ControlFlow::Break(()) => Err(e),
        ControlFlow::Continue(()) => Ok(()),
    }
}

/// Keeps the report's counts as events go by.
fn count(report: &mut IndexReport, event: &IndexEvent<'_>) {
    match event {
        IndexEvent::Ready { source, .. } => {
            report.images += 1;
            match source {
                Source::Index => report.unchanged += 1,
                Source::New => report.new += 1,
                Source::Updated => report.updated += 1,
            }
        }
        IndexEvent::Failed { error, .. } => report.failed.push(Failure::from_error(error)),
        IndexEvent::Pruned(removed) => report.removed = *removed,
        _ => {}
    }
}

fn analysis_from(image: CachedImage) -> Analysis {
    Analysis {
        embedding: image.embedding,
        top: image.top,
        width: image.width,
        height: image.height,
        thumbnail: image.thumbnail,
    }
}

/// Up to `size` images not yet taken: the `first` ones, then onwards from the first of them,
/// wrapping round to the start.
pub fn next_batch(first: &[usize], taken: &[bool], size: usize) -> Option<Vec<usize>> {
    let start = first.first().copied().unwrap_or(0).min(taken.len());
    let candidates = (first.iter().copied())
        .filter(|&i| i < taken.len())
        .chain(start..taken.len())
        .chain(0..start);
    let mut picked = Vec::with_capacity(size);
    for i in candidates {
        if picked.len() == size {
            break;
        }
        if !taken[i] && !picked.contains(&i) {
            picked.push(i);
        }
    }
    (!picked.is_empty()).then_some(picked)
}
