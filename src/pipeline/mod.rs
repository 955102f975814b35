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
//!
//! Several indexers may share one index (two processes, or machines sharing a PostgreSQL
//! database). Each claims a batch from the index before decoding it; files another indexer is
//! embedding are put off, and once it has released them they are served from the index, so
//! each file is embedded once.

mod incremental;

pub use incremental::{plan, plan_many, prune, stamp, store, Pending, Plan};

use std::ops::ControlFlow;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;
use std::time::Instant;

use crate::engine::{Analysis, Engine};
use crate::error::{Error, Result};
use crate::index::{CachedImage, Claim, ClaimRequest, ScanStart, Store};
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
    /// The index failed: it could not serve what it holds (while planning), claim, store a
    /// batch, or forget removed files. Never one image's failure. The results still arrive;
    /// returning `Break` makes the run fail with this error.
    IndexFailed(&'a Error),
    /// This many files that left the folder were forgotten.
    Pruned(usize),
    /// Images embedded so far, out of those that needed it.
    Progress { done: usize, total: usize },
}

/// An index the indexer stores into (any backend; boxed ones are `'static`).
pub type DynStore = dyn Store + 'static;

/// Receives every event; `Break` stops the run after the batch in flight.
pub type Sink<'s> = dyn FnMut(IndexEvent<'_>) -> ControlFlow<()> + 's;

/// Which images to embed next: the positions the caller wants first (the app: those on
/// screen). The rest follow in folder order from the first of them.
pub type Priority<'p> = dyn Fn() -> Vec<usize> + Sync + 'p;

/// Indexes one folder: see the module documentation.
pub struct Indexer<'a> {
    engine: &'a Engine,
    index: Option<&'a mut DynStore>,
    cancel: &'a AtomicBool,
    priority: Option<&'a Priority<'a>>,
    /// Images embedded or served after waiting, out of those that were not in the index.
    done: usize,
    total: usize,
}

/// After this many rounds of waiting for other indexers, the rest is embedded without asking.
const CLAIM_ROUNDS: usize = 8;
/// Images planned together ([`plan_many`]): a few bulk queries each, and a first screenful
/// served soon.
const PLANNED_AT_ONCE: usize = 1000;

/// What is left to do for one image after the index has served what it could.
enum Todo {
    Done,
    /// Embed it; with what the index needs to store it, when there is an index.
    Embed(Option<Pending>),
}

impl<'a> Indexer<'a> {
    /// An indexer that stores into `index`, or keeps nothing when it is `None`.
    pub fn new(
        engine: &'a Engine,
        index: Option<&'a mut DynStore>,
        cancel: &'a AtomicBool,
    ) -> Self {
        Indexer {
            engine,
            index,
            cancel,
            priority: None,
            done: 0,
            total: 0,
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
        // Before the scan: rows stored from here on are another indexer's news.
        let scan_start = self.index.as_deref_mut().map(|i| i.scan_start());
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
        let everything = 0..scan.images.len();
        let todo =
            self.serve_from_index(&scan.images, everything, &mut |e| tell(e, &mut report))?;
        self.embed(&scan.images, todo, &mut |e| tell(e, &mut report))?;
        if self.cancel.load(Ordering::Relaxed) {
            return Err(Error::Cancelled);
        }
        self.prune(dir, &scan, scan_start, &mut |e| tell(e, &mut report))?;
        self.tidy(&mut |e| tell(e, &mut report))?;
        report.seconds = started.elapsed().as_secs_f64();
        Ok(report)
    }

    /// Sends every image among `positions` that the index can serve, planned
    /// [`PLANNED_AT_ONCE`] at a time; returns what is left to
    /// do (images not among `positions` are done). When the index itself fails (busy, a
    /// dropped connection, a damaged row), that is an index failure, not the image's: the
    /// sink hears of it once, and unless it stops the run, the rest is embedded without
    /// asking the index.
    fn serve_from_index(
        &mut self,
        images: &[ImageEntry],
        positions: impl IntoIterator<Item = usize>,
        sink: &mut Sink<'_>,
    ) -> Result<Vec<Todo>> {
        let mut todo: Vec<Todo> = images.iter().map(|_| Todo::Done).collect();
        let info = self.engine.info();
        let positions = positions.into_iter();
        let Some(index) = self.index.as_deref_mut() else {
            positions.for_each(|i| todo[i] = Todo::Embed(None));
            return Ok(todo);
        };
        let positions: Vec<usize> = positions.collect();
        for (at, chunk) in positions.chunks(PLANNED_AT_ONCE).enumerate() {
            if self.cancel.load(Ordering::Relaxed) {
                return Err(Error::Cancelled);
            }
            let entries: Vec<&ImageEntry> = chunk.iter().map(|&i| &images[i]).collect();
            let plans = match plan_many(index, &entries, info) {
                Ok(plans) => plans,
                Err(error) => {
                    index_failed(error, sink)?;
                    let rest = positions[at * PLANNED_AT_ONCE..].iter();
                    rest.for_each(|&i| todo[i] = Todo::Embed(None));
                    break;
                }
            };
            for (offset, (&position, planned)) in chunk.iter().zip(plans).enumerate() {
                let entry = &images[position];
                let event = match planned {
                    Ok(Plan::Embed(pending)) => {
                        todo[position] = Todo::Embed(Some(pending));
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
                    Err(error @ Error::File { .. }) => IndexEvent::Failed { position, error },
                    Err(error) => {
                        index_failed(error, sink)?;
                        let rest = positions[at * PLANNED_AT_ONCE + offset..].iter();
                        rest.for_each(|&i| todo[i] = Todo::Embed(None));
                        return Ok(todo);
                    }
                };
                if sink(event).is_break() {
                    return Err(Error::Cancelled);
                }
            }
        }
        Ok(todo)
    }

    /// Embeds what is left, in the order the priority hook asks for. Files another indexer
    /// holds are put off; once it lets go they are served from the index, or embedded here if
    /// it gave up.
    fn embed(
        &mut self,
        images: &[ImageEntry],
        mut todo: Vec<Todo>,
        sink: &mut Sink<'_>,
    ) -> Result<()> {
        self.total = todo.iter().filter(|t| matches!(t, Todo::Embed(_))).count();
        // Said before the first batch, which takes a while: what is left is known now.
        let left = IndexEvent::Progress {
            done: 0,
            total: self.total,
        };
        if self.total > 0 && sink(left).is_break() {
            return Err(Error::Cancelled);
        }
        for round in 0.. {
            let deferred = self.embed_round(images, &todo, round < CLAIM_ROUNDS, sink)?;
            if deferred.is_empty() || self.cancel.load(Ordering::Relaxed) {
                break;
            }
            todo = self.revisit(images, &todo, deferred, sink)?;
        }
        match self.cancel.load(Ordering::Relaxed) {
            true => Err(Error::Cancelled),
            false => Ok(()),
        }
    }

    /// Waits for the other indexers to let go of the `deferred` images, then serves those they
    /// stored; returns what is still to embed.
    fn revisit(
        &mut self,
        images: &[ImageEntry],
        todo: &[Todo],
        deferred: Vec<usize>,
        sink: &mut Sink<'_>,
    ) -> Result<Vec<Todo>> {
        if let Some(index) = self.index.as_deref_mut() {
            let keys: Vec<&Path> = deferred
                .iter()
                .filter_map(|&i| pending_of(todo, i).map(|p| p.key.as_path()))
                .collect();
            if let Err(e) = index.wait_for(&keys) {
                index_failed(e, sink)?;
            }
        }
        let served_before = deferred.len();
        let todo = self.serve_from_index(images, deferred, sink)?;
        let still = todo.iter().filter(|t| matches!(t, Todo::Embed(_))).count();
        self.done += served_before - still;
        Ok(todo)
    }

    /// One pass over `todo`: claims and embeds batch after batch, storing each before its
    /// results go to the sink. Returns the images put off because another indexer had them.
    fn embed_round(
        &mut self,
        images: &[ImageEntry],
        todo: &[Todo],
        claims: bool,
        sink: &mut Sink<'_>,
    ) -> Result<Vec<usize>> {
        let mut taken: Vec<bool> = todo.iter().map(|t| matches!(t, Todo::Done)).collect();
        let (cancel, priority) = (self.cancel, self.priority);
        let batch_size = self.engine.batch_size();
        let engine = self.engine;
        let info = engine.info();
        let index = Mutex::new(self.index.take());
        let deferred = Mutex::new(Vec::new());
        // Claims are asked for on the batch thread, which has no sink: their failures wait
        // here for the next batch's results.
        let claim_failures = Mutex::new(Vec::new());
        let mut outcome = Ok(());
        let streamed = engine.analyse_stream(
            || loop {
                if cancel.load(Ordering::Relaxed) {
                    return None;
                }
                let first = priority.map(|p| p()).unwrap_or_default();
                let next = next_batch(&first, &taken, batch_size)?;
                next.iter().for_each(|&i| taken[i] = true);
                let next = match claims {
                    true => claim_batch(&index, info, todo, next, &deferred, &claim_failures),
                    false => next,
                };
                if !next.is_empty() {
                    let paths = next.iter().map(|&i| images[i].path.clone()).collect();
                    return Some((next, paths));
                }
            },
            |positions, results| {
                self.done += positions.len();
                outcome = report_all(&claim_failures, sink);
                if outcome.is_err() {
                    return false;
                }
                let mut index = index.lock().unwrap_or_else(|e| e.into_inner());
                outcome = deliver(index.as_deref_mut(), info, todo, &positions, results, sink);
                let progress = IndexEvent::Progress {
                    done: self.done,
                    total: self.total,
                };
                outcome.is_ok() && sink(progress).is_continue()
            },
        );
        self.index = index.into_inner().unwrap_or_else(|e| e.into_inner());
        streamed?;
        outcome?;
        report_all(&claim_failures, sink)?;
        Ok(deferred.into_inner().unwrap_or_else(|e| e.into_inner()))
    }

    /// Forgets the files under `dir` that this scan did not find, of those stored before
    /// `start`. Without a start (the index could not say) nothing is pruned.
    fn prune(
        &mut self,
        dir: &Path,
        scan: &ScanResult,
        start: Option<Result<ScanStart>>,
        sink: &mut Sink<'_>,
    ) -> Result<()> {
        let (Some(index), Some(start)) = (self.index.as_deref_mut(), start) else {
            return Ok(());
        };
        match start.and_then(|start| prune(index, dir, scan, start)) {
            Ok(removed) if sink(IndexEvent::Pruned(removed)).is_break() => Err(Error::Cancelled),
            Ok(_) => Ok(()),
            Err(e) => index_failed(e, sink),
        }
    }
}

impl Indexer<'_> {
    /// Lets the index finish what pays off after a run (a database builds its search index
    /// once the library has grown large).
    fn tidy(&mut self, sink: &mut Sink<'_>) -> Result<()> {
        let Some(index) = self.index.as_deref_mut() else {
            return Ok(());
        };
        match index.tidy(stamp(self.engine.info())) {
            Ok(()) => Ok(()),
            Err(e) => index_failed(e, sink),
        }
    }
}

/// What the index needs to store the image at `position`, when there is an index.
fn pending_of(todo: &[Todo], position: usize) -> Option<&Pending> {
    match &todo[position] {
        Todo::Embed(pending) => pending.as_ref(),
        Todo::Done => None,
    }
}

/// Asks the index for the images of a batch; returns those this indexer may embed, and puts
/// the ones another indexer holds or has stored on `deferred`. When the index cannot answer,
/// its error goes on `failures` (for the sink) and everything is embedded.
fn claim_batch(
    index: &Mutex<Option<&mut DynStore>>,
    info: &crate::model::ModelInfo,
    todo: &[Todo],
    batch: Vec<usize>,
    deferred: &Mutex<Vec<usize>>,
    failures: &Mutex<Vec<Error>>,
) -> Vec<usize> {
    let mut index = index.lock().unwrap_or_else(|e| e.into_inner());
    let Some(index) = index.as_deref_mut() else {
        return batch;
    };
    // Images planned without the index (it failed while planning) are not stored: no claim.
    let (asked, unasked): (Vec<usize>, Vec<usize>) =
        batch.iter().partition(|&&i| pending_of(todo, i).is_some());
    let requests: Vec<ClaimRequest<'_>> = asked
        .iter()
        .filter_map(|&i| pending_of(todo, i))
        .map(|p| ClaimRequest {
            path: &p.key,
            size: p.size,
            fingerprint: &p.fingerprint,
        })
        .collect();
    let answers = match index.claim(stamp(info), &requests) {
        Ok(answers) if answers.len() == requests.len() => answers,
        Ok(answers) => {
            let wrong = format!(
                "{}: {} answers to a claim on {} images",
                index.location(),
                answers.len(),
                requests.len()
            );
            return refused_claim(Error::Index(wrong), batch, failures);
        }
        Err(e) => return refused_claim(e, batch, failures),
    };
    let mut deferred = deferred.lock().unwrap_or_else(|e| e.into_inner());
    let (granted, refused): (Vec<_>, Vec<_>) = asked
        .into_iter()
        .zip(answers)
        .partition(|(_, answer)| *answer == Claim::Granted);
    deferred.extend(refused.into_iter().map(|(i, _)| i));
    (granted.into_iter().map(|(i, _)| i))
        .chain(unasked)
        .collect()
}

/// A claim the index could not answer: its error is kept for the sink, and the whole batch
/// is embedded here (at worst, two indexers embed the same files).
fn refused_claim(e: Error, batch: Vec<usize>, failures: &Mutex<Vec<Error>>) -> Vec<usize> {
    failures.lock().unwrap_or_else(|e| e.into_inner()).push(e);
    batch
}

/// Hands the sink every index failure kept so far; an error if it stops the run on one.
fn report_all(failures: &Mutex<Vec<Error>>, sink: &mut Sink<'_>) -> Result<()> {
    let failures = std::mem::take(&mut *failures.lock().unwrap_or_else(|e| e.into_inner()));
    failures.into_iter().try_for_each(|e| index_failed(e, sink))
}

/// Stores one batch (when there is an index) and gives back its claims, then hands its
/// results to the sink.
fn deliver(
    index: Option<&mut DynStore>,
    info: &crate::model::ModelInfo,
    todo: &[Todo],
    positions: &[usize],
    results: Vec<Result<Analysis>>,
    sink: &mut Sink<'_>,
) -> Result<()> {
    let pending: Vec<Option<&Pending>> = positions.iter().map(|&i| pending_of(todo, i)).collect();
    if let Some(index) = index {
        let batch: Vec<Pending> = pending.iter().flatten().map(|&p| p.clone()).collect();
        let stored = store(index, info, &batch, &results);
        let keys: Vec<&Path> = batch.iter().map(|p| p.key.as_path()).collect();
        // A failed release matters little: claims end with the connection anyway.
        let _ = index.release(&keys);
        if let Err(e) = stored {
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
        // Read on demand from the index by whoever shows it.
        thumbnail: None,
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
