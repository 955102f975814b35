//! Background indexing for the window: scans a folder, then decodes and embeds its images on
//! the engine's threads, sending each result back as a message.
//!
//! The window never waits on this work. Messages go through a bounded channel; the worker
//! wakes the window after each batch; images near the top of what the user is looking at are
//! embedded first; and opening another folder cancels the job through its stop flag.

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use crossbeam_channel::{Receiver, Sender};

use crate::engine::{Analysis, Engine};
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
    /// The folder itself could not be read.
    FolderFailed(String),
}

/// A running indexing job. Dropping it cancels the work.
pub struct Job {
    pub messages: Receiver<Message>,
    cancel: Arc<AtomicBool>,
    first_visible: Arc<AtomicUsize>,
    thread: Option<JoinHandle<()>>,
}

/// Room for a few batches of results; the worker waits when the window falls behind.
const CHANNEL_CAPACITY: usize = 256;

impl Job {
    /// Starts indexing `folder`. `wake` is called whenever new messages are waiting.
    pub fn start(folder: PathBuf, engine: Arc<Engine>, wake: Arc<dyn Fn() + Send + Sync>) -> Job {
        let (sender, messages) = crossbeam_channel::bounded(CHANNEL_CAPACITY);
        let cancel = Arc::new(AtomicBool::new(false));
        let first_visible = Arc::new(AtomicUsize::new(0));
        let worker = Worker {
            engine,
            sender,
            cancel: cancel.clone(),
            first_visible: first_visible.clone(),
            wake,
        };
        let thread = std::thread::Builder::new()
            .name("lookalike-indexer".into())
            .spawn(move || worker.run(folder))
            .ok();
        Job {
            messages,
            cancel,
            first_visible,
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

    /// Tells the worker which image (in folder order) the user sees first, so that it and
    /// the ones after it are embedded next.
    pub fn prioritise(&self, index: usize) {
        self.first_visible.store(index, Ordering::Relaxed);
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

struct Worker {
    engine: Arc<Engine>,
    sender: Sender<Message>,
    cancel: Arc<AtomicBool>,
    first_visible: Arc<AtomicUsize>,
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
        let paths: Vec<PathBuf> = scan.images.iter().map(|e| e.path.clone()).collect();
        let problems = scan.problems.iter().map(problem_entry).collect();
        if !self.send(Message::Scanned {
            images: scan.images,
            problems,
        }) {
            return;
        }
        let mut done = vec![false; paths.len()];
        let batch = self.engine.batch_size();
        while let Some(next) = self.next_batch(&done, batch) {
            if self.cancel.load(Ordering::Relaxed) {
                return;
            }
            let batch_paths: Vec<PathBuf> = next.iter().map(|&i| paths[i].clone()).collect();
            let results = self.engine.analyse_batch(&batch_paths);
            for (index, result) in next.into_iter().zip(results) {
                done[index] = true;
                let result = result.map_err(|e| reason_of(&e));
                if !self.send(Message::Analysed { index, result }) {
                    return;
                }
            }
        }
        self.send(Message::Finished);
    }

    /// Up to `size` images not yet done, starting at the first visible one, then wrapping.
    fn next_batch(&self, done: &[bool], size: usize) -> Option<Vec<usize>> {
        let start = self.first_visible.load(Ordering::Relaxed).min(done.len());
        let picked: Vec<usize> = (start..done.len())
            .chain(0..start)
            .filter(|&i| !done[i])
            .take(size)
            .collect();
        (!picked.is_empty()).then_some(picked)
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
