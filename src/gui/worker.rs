//! Background indexing for the window: scans a folder, then decodes and embeds its images on
//! the engine's threads, sending each result back as a message.
//!
//! The window never waits on this work. Messages go through a bounded channel; results the
//! index serves travel a few hundred to a message, so that a 100,000-photo library costs the
//! window a few hundred messages, not 100,000; the worker wakes the window at most ten times a
//! second unless the channel is filling up; images near the top of what the user is looking at
//! are embedded first; and opening another folder cancels the job through its stop flag.

use std::ops::ControlFlow;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, Sender};

use crate::engine::{Analysis, Engine};
use crate::index::CacheLocation;
use crate::pipeline::{IndexEvent, Indexer};
use crate::scan::ImageEntry;

/// What the worker tells the window.
#[derive(Debug)]
pub enum Message {
    /// The folder's images, in folder order, and entries the scan could not use.
    Scanned {
        images: Vec<ImageEntry>,
        problems: Vec<(PathBuf, String)>,
    },
    /// Images are done (or failed), in the order they were done.
    Analysed(Vec<Analysed>),
    /// Every image has been tried.
    Finished,
    /// Something the user should know that stops nothing (the index was rebuilt, say).
    Warning(String),
    /// The index failed (it could not be opened, read or written): images still arrive, but
    /// what they come from or go to is not the index. Not any one image's fault.
    IndexFailed(String),
    /// The folder itself could not be read.
    FolderFailed(String),
}

/// One image done (or failed, with the reason); `embedded` when the model ran on it, rather
/// than the index serving it.
#[derive(Debug)]
pub struct Analysed {
    pub index: usize,
    pub result: Result<Analysis, String>,
    pub embedded: bool,
}

/// A running indexing job. Dropping it cancels the work.
pub struct Job {
    pub messages: Receiver<Message>,
    cancel: Arc<AtomicBool>,
    visible: Arc<Mutex<Vec<usize>>>,
    thread: Option<JoinHandle<()>>,
}

/// Messages waiting for the window; the worker waits when the window falls behind. With
/// [`SERVED_PER_MESSAGE`], at most some 8,000 results (about 40 MB of vectors) wait here.
const CHANNEL_CAPACITY: usize = 16;
/// Results the index serves, sent together. Results the model makes go one batch at a time,
/// as they come: each is news the user is waiting for.
const SERVED_PER_MESSAGE: usize = 512;
/// How often the worker wakes the window while the channel has room: often enough for the
/// progress to move smoothly, rarely enough that drawing frames (tens of milliseconds each in
/// software under a virtual display) leaves the work its processor time.
const WAKE_EVERY: Duration = Duration::from_millis(100);

impl Job {
    /// Starts indexing `folder`. `wake(within)` is called whenever new messages are waiting,
    /// with how soon the window should take them.
    pub fn start(
        folder: PathBuf,
        engine: Arc<Engine>,
        cache: CacheLocation,
        wake: Arc<dyn Fn(Duration) + Send + Sync>,
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
        // Kept only to say why, should the thread not start; the worker holds the other end.
        let notice = worker.sender.clone();
        let thread = match std::thread::Builder::new()
            .name("lookalike-indexer".into())
            .spawn(move || worker.run(folder))
        {
            Ok(thread) => Some(thread),
            Err(e) => {
                let reason = format!("cannot start indexing: {e}");
                let _ = notice.try_send(Message::FolderFailed(reason));
                None
            }
        };
        drop(notice);
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

struct Worker {
    engine: Arc<Engine>,
    cache: CacheLocation,
    sender: Sender<Message>,
    cancel: Arc<AtomicBool>,
    visible: Arc<Mutex<Vec<usize>>>,
    wake: Arc<dyn Fn(Duration) + Send + Sync>,
}

/// Results waiting to go to the window together.
#[derive(Default)]
struct Outbox {
    results: Vec<Analysed>,
    since: Option<Instant>,
}

impl Worker {
    /// Indexes the folder with the pipeline's one indexer, forwarding what it finds.
    fn run(self, folder: PathBuf) {
        let mut index = match self.cache.open(&folder) {
            Ok(index) => index,
            Err(e) => {
                self.send(Message::IndexFailed(format!("{e}; working without it")));
                None
            }
        };
        for warning in index.iter_mut().flat_map(|i| i.take_warnings()) {
            self.send(Message::Warning(warning));
        }
        let on_screen = || self.visible.lock().map(|v| v.clone()).unwrap_or_default();
        let indexer =
            Indexer::new(&self.engine, index.as_deref_mut(), &self.cancel).prioritise(&on_screen);
        let mut outbox = Outbox::default();
        let ran = indexer.run(&folder, &mut |event| self.forward(event, &mut outbox));
        if !self.flush(&mut outbox) {
            return;
        }
        match ran {
            Ok(_) => self.send(Message::Finished),
            Err(crate::Error::Cancelled) => false,
            Err(e) => self.send(Message::FolderFailed(e.to_string())),
        };
    }

    /// Turns an indexer event into a message for the window. Results the index serves wait in
    /// `outbox` until there are [`SERVED_PER_MESSAGE`] of them or [`WAKE_EVERY`] has passed;
    /// anything else goes at once, after them.
    fn forward(&self, event: IndexEvent<'_>, outbox: &mut Outbox) -> ControlFlow<()> {
        let sent = match event {
            IndexEvent::Ready {
                position,
                analysis,
                source,
            } => {
                let served = source == crate::pipeline::Source::Index;
                let result = Analysed {
                    index: position,
                    result: Ok(analysis),
                    embedded: !served,
                };
                self.post(result, served, outbox)
            }
            IndexEvent::Failed { position, error } => {
                let result = Analysed {
                    index: position,
                    result: Err(error.reason()),
                    embedded: false,
                };
                self.post(result, false, outbox)
            }
            IndexEvent::Scanned { images, problems } => {
                let scanned = Message::Scanned {
                    images: images.to_vec(),
                    problems: problems.iter().map(problem_entry).collect(),
                };
                self.flush(outbox) && self.send(scanned)
            }
            // The images still show; the index only misses what it could not store or serve.
            IndexEvent::IndexFailed(e) => {
                self.flush(outbox) && self.send(Message::IndexFailed(e.to_string()))
            }
            IndexEvent::Pruned(_) | IndexEvent::Progress { .. } => self.flush(outbox),
        };
        match sent {
            true => ControlFlow::Continue(()),
            false => ControlFlow::Break(()),
        }
    }

    /// Puts one result in the outbox, and sends the outbox when it should go: always for a
    /// result the model made or could not make (`served` false). False once the job is over.
    fn post(&self, result: Analysed, served: bool, outbox: &mut Outbox) -> bool {
        outbox.results.push(result);
        let since = *outbox.since.get_or_insert_with(Instant::now);
        let due = outbox.results.len() >= SERVED_PER_MESSAGE || since.elapsed() >= WAKE_EVERY;
        match !served || due {
            true => self.flush(outbox),
            false => true,
        }
    }

    /// Sends what waits in the outbox; false once the job is over.
    fn flush(&self, outbox: &mut Outbox) -> bool {
        outbox.since = None;
        match outbox.results.is_empty() {
            true => true,
            false => self.send(Message::Analysed(std::mem::take(&mut outbox.results))),
        }
    }

    /// Sends a message and wakes the window: at once, unless it holds only results the index
    /// served and the channel has room; those can wait up to [`WAKE_EVERY`]. False once the
    /// job is cancelled or abandoned.
    fn send(&self, mut message: Message) -> bool {
        let can_wait = match &message {
            Message::Analysed(results) => results.iter().all(|r| !r.embedded && r.result.is_ok()),
            _ => false,
        };
        loop {
            if self.cancel.load(Ordering::Relaxed) {
                return false;
            }
            match self
                .sender
                .send_timeout(message, Duration::from_millis(100))
            {
                Ok(()) => {
                    let filling = self.sender.len() >= CHANNEL_CAPACITY / 2;
                    (self.wake)(match can_wait && !filling {
                        true => WAKE_EVERY,
                        false => Duration::ZERO,
                    });
                    return true;
                }
                Err(crossbeam_channel::SendTimeoutError::Timeout(back)) => message = back,
                Err(crossbeam_channel::SendTimeoutError::Disconnected(_)) => return false,
            }
        }
    }
}

fn problem_entry(e: &crate::Error) -> (PathBuf, String) {
    (
        e.path().map(Path::to_path_buf).unwrap_or_default(),
        e.reason(),
    )
}

#[cfg(test)]
impl Job {
    /// A job whose worker sent `messages` and then went away without finishing, as a worker
    /// thread that panicked or could not start does: for testing how the window copes.
    pub(crate) fn ended_early(messages: Vec<Message>) -> Job {
        let (sender, receiver) = crossbeam_channel::unbounded();
        for message in messages {
            let _ = sender.send(message);
        }
        Job {
            messages: receiver,
            cancel: Arc::default(),
            visible: Arc::default(),
            thread: None,
        }
    }
}
