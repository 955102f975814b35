//! Fetches model weights from the Hugging Face Hub into the standard Hugging Face cache, only
//! when the user asks (`lookalike fetch-model`, a confirmed `--model vgg16`, or the app's
//! download button).
//!
//! hf-hub's blocking client writes to a `.part` file and renames it only when complete, so an
//! interrupted download never leaves a file that looks whole, and the next attempt resumes
//! from the `.part` file with a Range request. A watchdog turns a server that stops sending
//! into a clear error instead of a hang.

use std::path::PathBuf;
use std::sync::mpsc::{channel, RecvTimeoutError, Sender};
use std::time::Duration;

use hf_hub::api::sync::ApiBuilder;
use hf_hub::api::Progress;

use crate::error::{Error, Result};

/// Where to download from and to; the defaults honour `HF_ENDPOINT` and `HF_HOME`.
#[derive(Debug, Clone)]
pub struct Source {
    pub repo: String,
    pub file: String,
    /// Give up when the server sends nothing for this long.
    pub stall_timeout: Duration,
}

/// Progress reports: bytes done and total.
enum Event {
    Progress(u64, u64),
    Done(std::result::Result<PathBuf, String>),
}

struct Reporter {
    events: Sender<Event>,
    done: u64,
    total: u64,
}

impl Progress for Reporter {
    fn init(&mut self, size: usize, _filename: &str) {
        self.total = size as u64;
        self.done = 0;
        let _ = self.events.send(Event::Progress(0, self.total));
    }

    fn update(&mut self, size: usize) {
        self.done += size as u64;
        let _ = self.events.send(Event::Progress(self.done, self.total));
    }

    fn finish(&mut self) {}
}

/// Downloads `source` into the Hugging Face cache and returns the cached file's path.
/// `on_progress(done, total)` is called as bytes arrive.
pub fn fetch(source: &Source, on_progress: &mut dyn FnMut(u64, u64)) -> Result<PathBuf> {
    let api = ApiBuilder::from_env()
        .with_progress(false)
        .build()
        .map_err(|e| Error::Download(format!("cannot set up the download: {e}")))?;
    let repo = api.model(source.repo.clone());
    let url = repo.url(&source.file);
    let (events, receive) = channel();
    let file = source.file.clone();
    let reporter = Reporter {
        events: events.clone(),
        done: 0,
        total: 0,
    };
    std::thread::Builder::new()
        .name("lookalike-download".into())
        .spawn(move || {
            let result = repo
                .download_with_progress(&file, reporter)
                .map_err(|e| e.to_string());
            let _ = events.send(Event::Done(result));
        })
        .map_err(|e| Error::Download(format!("cannot start the download: {e}")))?;
    loop {
        match receive.recv_timeout(source.stall_timeout) {
            Ok(Event::Progress(done, total)) => on_progress(done, total),
            Ok(Event::Done(Ok(path))) => return Ok(path),
            Ok(Event::Done(Err(e))) => return Err(Error::Download(explain(&url, &e))),
            Err(RecvTimeoutError::Timeout) => {
                return Err(Error::Download(format!(
                    "{url}: no data for {} s; check the connection and try again (the download resumes)",
                    source.stall_timeout.as_secs()
                )))
            }
            Err(RecvTimeoutError::Disconnected) => return Err(Error::Download(format!("{url}: the download stopped"))),
        }
    }
}

/// A download error in words that say what to do.
fn explain(url: &str, error: &str) -> String {
    if error.contains("404") {
        format!("{url} was not found (404): {error}")
    } else if error.contains("401") || error.contains("403") {
        format!("{url} refused access: {error}")
    } else {
        format!("{url}: {error}")
    }
}
