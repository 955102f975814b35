//! Background indexing for the window: scans a folder, then decodes and embeds its images on
//! the engine's threads, sending each result back as a message.
//!
//! The window never waits on this work. Messages go through a bounded channel; the worker
//! wakes the window after each batch; images near the top of what the user is looking at are
//! embedded first; and opening another folder cancels the job through its stop flag.

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use crossbeam_channel::{Receiver, Sender};

use crate::engine::{Analysis, Engine};
use crate::index::{CacheLocation, CachedImage, Index};
use crate::pipeline::{plan, prune, store, Pending, Plan};
use crate::scan::{scan_folder, ImageEntry};

/// What the worker tells the window.
#[derive(Debug)]
pub enum Message {
    /// The folder's images, in folder order, and entries the scan could not use.
    Scanned {
        images: Vec<ImageEntry>,
        problems: Vec<(PathBuf, String)>,
    },
    /// One image is done (or failed, with the reason).
    Analysed {
        index: usize,
        result: Result<Analysis, String>,
    },
    /// Every image has been tried.
    Finished,
    /// Something the user should know that stops nothing (the index was rebuilt, say).
    Warning(String),
    /// The folder itself could not be read.
    FolderFailed(String),
}

/// A running indexing job. Dropping it cancels the work.
pub struct Job {
    pub messages: Receiver<Message>,
    cancel: Arc<AtomicBool>,
    visible: Arc<Mutex<Vec<usize>>>,
    thread: Option<JoinHandle<()>>,
}

/// Room for a few batches of results; the worker waits when the window falls behind.
const CHANNEL_CAPACITY: usize = 256;

impl Job {
    /// Starts indexing `folder`. `wake` is called whenever new messages are waiting.
    pub fn start(
        folder: PathBuf,
        engine: Arc<Engine>,
        cache: CacheLocation,
        wake: Arc<dyn Fn() + Send + Sync>,
    ) -> Job {
        let (sender, messages) = crossbeam_channel::bounded(CHANNEL_CAPACITY);
        let cancel = Arc::new(AtomicBool::new(false));
        let visible = Arc::new(Mutex::new(Vec::new()));
        let worker = Worker {
            engine,
            cache,
            sender,
            cancel: cancel.clone(),
            visible: visible.clone(),
            wake,
        };
        let thread = std::thread::Builder::new()
            .name("lookalike-indexer".into())
            .spawn(move || worker.run(folder))
            .ok();
        Job {
            messages,
            cancel,
            visible,
            thread,
        }
    }

    /// Asks the worker to stop after the batch in flight.
    pub fn cancel(&self) {
        self.cancel.store(true, Ordering::Relaxed);
    }

    pub fn is_cancelled(&self) -> bool {
        self.cancel.load(Ordering::Relaxed)
    }

    /// Tells the worker which images (folder indices) are on screen, so that they, and the
    /// ones after the first of them in folder order, are embedded next.
    pub fn prioritise(&self, on_screen: Vec<usize>) {
        if let Ok(mut visible) = self.visible.lock() {
            *visible = on_screen;
        }
    }
}

impl Drop for Job {
    fn drop(&mut self) {
        self.cancel();
        // The worker may be blocked sending to a full channel; draining it lets it see the flag.
        while self.messages.try_recv().is_ok() {}
        if let Some(thread) = self.thread.take() {
            // Detach: joining here would stall the window for up to one batch.
            drop(thread);
        }
    }
}

/// What is left to do for one image.
enum Todo {
    Done,
    /// Embed it; with what the index needs to store it, when there is an index.
    Embed(Option<Pending>),
}

struct Worker {
    engine: Arc<Engine>,
    cache: CacheLocation,
    sender: Sender<Message>,
    cancel: Arc<AtomicBool>,
    visible: Arc<Mutex<Vec<usize>>>,
    wake: Arc<dyn Fn() + Send + Sync>,
}

impl Worker {
    fn run(self, folder: PathBuf) {
        let scan = match scan_folder(&folder) {
            Ok(scan) => scan,
            Err(e) => {
                self.send(Message::FolderFailed(e.to_string()));
                return;
            }
        };
        let mut index = match self.cache.open() {
            Ok(index) => index,
            Err(e) => {
                self.send(Message::Warning(format!("working without the index: {e}")));
                None
            }
        };
        for warning in index.iter().flat_map(|i| &i.warnings) {
            self.send(Message::Warning(warning.clone()));
        }
        let problems = scan.problems.iter().map(problem_entry).collect();
        if !self.send(Message::Scanned {
            images: scan.images.clone(),
            problems,
        }) {
            return;
        }
        let Some(todo) = self.serve_from_index(index.as_ref(), &scan.images) else {
            return;
        };
        if self.embed(index.as_mut(), &scan.images, todo) {
            if let Some(index) = index.as_mut() {
                // Forget files that left the folder; a failure here only leaves stale rows.
                let _ = prune(index, &folder, &scan);
            }
            self.send(Message::Finished);
        }
    }

    /// Sends every image the index already knows; returns what is left to do, or None if
    /// the job was cancelled.
    fn serve_from_index(&self, index: Option<&Index>, images: &[ImageEntry]) -> Option<Vec<Todo>> {
        let info = self.engine.info().clone();
        let mut todo = Vec::with_capacity(images.len());
        for (i, entry) in images.iter().enumerate() {
            let result = match index.map(|index| plan(index, entry, &info)) {
                None => {
                    todo.push(Todo::Embed(None));
                    continue;
                }
                Some(Ok(Plan::Embed(pending))) => {
                    todo.push(Todo::Embed(Some(pending)));
                    continue;
                }
                Some(Ok(Plan::Cached(image))) => Ok(analysis_from(image)),
                Some(Ok(Plan::KnownBad(reason))) => Err(reason),
                Some(Err(e)) => Err(reason_of(&e)),
            };
            todo.push(Todo::Done);
            if !self.send(Message::Analysed { index: i, result }) {
                return None;
            }
        }
        Some(todo)
    }

    /// Embeds what is left, the images the user is looking at first, storing each batch in
    /// the index. The next batch decodes while the model runs on this one. Returns false if
    /// the job was cancelled.
    fn embed(&self, mut index: Option<&mut Index>, images: &[ImageEntry], todo: Vec<Todo>) -> bool {
        let info = self.engine.info().clone();
        let mut taken: Vec<bool> = todo.iter().map(|t| matches!(t, Todo::Done)).collect();
        let (visible, cancel) = (&self.visible, &self.cancel);
        let batch_size = self.engine.batch_size();
        let mut finished = true;
        self.engine.analyse_stream(
            || {
                if cancel.load(Ordering::Relaxed) {
                    return None;
                }
                let on_screen = visible.lock().map(|v| v.clone()).unwrap_or_default();
                let next = next_batch(&on_screen, &taken, batch_size)?;
                next.iter().for_each(|&i| taken[i] = true);
                let paths = next.iter().map(|&i| images[i].path.clone()).collect();
                Some((next, paths))
            },
            |next, results| {
                let pending: Vec<Pending> = next
                    .iter()
                    .filter_map(|&i| match &todo[i] {
                        Todo::Embed(Some(p)) => Some(p.clone()),
                        _ => None,
                    })
                    .collect();
                if let Some(index) = index.as_deref_mut().filter(|_| pending.len() == next.len()) {
                    // A failed write only means this batch is embedded again next time.
                    let _ = store(index, &info, &pending, &results);
                }
                for (i, result) in next.into_iter().zip(results) {
                    let result = result.map_err(|e| reason_of(&e));
                    if !self.send(Message::Analysed { index: i, result }) {
                        finished = false;
                        return false;
                    }
                }
                true
            },
        );
        finished && !self.cancel.load(Ordering::Relaxed)
    }

    /// Sends a message and wakes the window; false once the job is cancelled or abandoned.
    fn send(&self, mut message: Message) -> bool {
        loop {
            if self.cancel.load(Ordering::Relaxed) {
                return false;
            }
            match self
                .sender
                .send_timeout(message, Duration::from_millis(100))
            {
                Ok(()) => {
                    (self.wake)();
                    return true;
                }
                Err(crossbeam_channel::SendTimeoutError::Timeout(back)) => message = back,
                Err(crossbeam_channel::SendTimeoutError::Disconnected(_)) => return false,
            }
        }
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

fn reason_of(e: &crate::Error) -> String {
    match e {
        crate::Error::File { reason, .. } => reason.clone(),
        other => other.to_string(),
    }
}

fn problem_entry(e: &crate::Error) -> (PathBuf, String) {
    match e {
        crate::Error::File { path, reason } => (path.clone(), reason.clone()),
        other => (PathBuf::new(), other.to_string()),
    }
}

/// Up to `size` images not yet taken: the ones on screen first, then onwards from the first of
/// them, wrapping round to the start.
fn next_batch(on_screen: &[usize], taken: &[bool], size: usize) -> Option<Vec<usize>> {
    let start = on_screen.first().copied().unwrap_or(0).min(taken.len());
    let candidates = (on_screen.iter().copied())
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
