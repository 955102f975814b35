//! The window's side of background indexing: starts a [`Job`] for the open folder, applies its
//! messages to the gallery and the problems list, and keeps the progress the status bar shows.
//! A job that ends without saying it finished (its thread could not start, or stopped) is
//! reported, never left spinning.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crossbeam_channel::TryRecvError;
use eframe::egui;

use super::state::Gallery;
use super::worker::{Analysed, Job, Message};
use crate::engine::Engine;
use crate::index::CacheLocation;

/// How far indexing has got.
#[derive(Debug, Clone, Copy)]
pub struct Progress {
    pub done: usize,
    /// Images in the folder; 0 until the scan is done.
    pub total: usize,
    /// Of `done`, how many the model embedded (the rest came from the index).
    pub embedded: usize,
    pub started: Instant,
    pub finished: bool,
}

/// How long one frame spends applying the worker's messages: a frame of 60 per second has
/// 16 ms, and drawing needs the rest. What is left waits for the next frame, at once.
const DRAIN_BUDGET: Duration = Duration::from_millis(8);

/// Files and other things that went wrong, as (file, reason); the file is empty when the
/// problem concerns none.
pub type Problems = Vec<(PathBuf, String)>;

/// The running job, if any, and its progress.
#[derive(Default)]
pub struct Indexing {
    job: Option<Job>,
    progress: Option<Progress>,
    /// A second look at a folder already shown: its scan is merged into the gallery rather
    /// than replacing it.
    refresh: bool,
    /// Where each item went when a refresh's scan renumbered the gallery.
    renumbered: Option<Vec<Option<usize>>>,
    /// The index's failures in this job, as put in Problems (each reason once), so that the
    /// status bar can tell them from images that could not be read.
    index_failures: Vec<String>,
}

impl Indexing {
    /// Starts indexing `folder`; a job already running is cancelled by being dropped.
    pub fn start(
        folder: PathBuf,
        engine: Arc<Engine>,
        cache: CacheLocation,
        ctx: &egui::Context,
    ) -> Self {
        Self::begin(folder, engine, cache, ctx, false)
    }

    /// Indexes the open folder again after it changed: only new and changed files are
    /// embedded, and the scan is merged into the gallery, which keeps its search.
    pub fn refresh(
        folder: PathBuf,
        engine: Arc<Engine>,
        cache: CacheLocation,
        ctx: &egui::Context,
    ) -> Self {
        Self::begin(folder, engine, cache, ctx, true)
    }

    fn begin(
        folder: PathBuf,
        engine: Arc<Engine>,
        cache: CacheLocation,
        ctx: &egui::Context,
        refresh: bool,
    ) -> Self {
        let wake_ctx = ctx.clone();
        let wake = Arc::new(move |within| wake_ctx.request_repaint_after(within));
        Indexing {
            job: Some(Job::start(folder, engine, cache, wake)),
            progress: Some(Progress {
                done: 0,
                total: 0,
                embedded: 0,
                started: Instant::now(),
                finished: false,
            }),
            refresh,
            renumbered: None,
            index_failures: Vec::new(),
        }
    }

    /// Where each old item went, if a refresh renumbered the gallery since the last call:
    /// textures, groups and anything else kept by item index must follow.
    pub fn take_renumbered(&mut self) -> Option<Vec<Option<usize>>> {
        self.renumbered.take()
    }

    pub fn is_running(&self) -> bool {
        self.job.is_some()
    }

    /// Messages are waiting that the last [`Indexing::drain`] left for the next frame.
    pub fn has_waiting(&self) -> bool {
        self.job
            .as_ref()
            .is_some_and(|job| !job.messages.is_empty())
    }

    pub fn progress(&self) -> Option<Progress> {
        self.progress
    }

    /// Stops the job after its batch in flight; false if none was running.
    pub fn cancel(&mut self) -> bool {
        let Some(job) = self.job.take() else {
            return false;
        };
        job.cancel();
        self.finish();
        true
    }

    /// Tells the job which images are on screen, so they are embedded next.
    pub fn prioritise(&self, on_screen: Vec<usize>) {
        if let Some(job) = &self.job {
            job.prioritise(on_screen);
        }
    }

    /// Applies waiting messages for up to [`DRAIN_BUDGET`], so that a frame stays short while
    /// a large library pours in (see [`Indexing::has_waiting`]); returns a new status line when
    /// there is one to show.
    pub fn drain(&mut self, gallery: &mut Gallery, problems: &mut Problems) -> Option<String> {
        let job = self.job.as_ref()?;
        let mut status = None;
        let started = Instant::now();
        loop {
            if started.elapsed() >= DRAIN_BUDGET {
                return status;
            }
            let message = match job.messages.try_recv() {
                Ok(message) => message,
                Err(TryRecvError::Empty) => return status,
                Err(TryRecvError::Disconnected) => {
                    let reason =
                        "indexing stopped before it finished; reopen the folder to try again";
                    problems.push((PathBuf::new(), reason.into()));
                    self.end();
                    return Some(format!("Indexing stopped unexpectedly: {reason}"));
                }
            };
            match message {
                Message::Finished => {
                    self.end();
                    return Some(finished_status(gallery, problems, &self.index_failures));
                }
                Message::IndexFailed(reason) => {
                    status = index_failed(&mut self.index_failures, reason, problems).or(status);
                }
                Message::FolderFailed(reason) => {
                    self.end();
                    return Some(reason);
                }
                Message::Scanned {
                    images,
                    problems: p,
                } if self.refresh => {
                    self.renumbered = Some(gallery.merge_scan(&images));
                    problems.clear();
                    // What this job already said of the index (that it could not be opened,
                    // say) still holds.
                    let index = self.index_failures.iter();
                    problems.extend(index.map(|r| (PathBuf::new(), index_problem(r))));
                    problems.extend(p);
                    if let Some(progress) = &mut self.progress {
                        progress.total = images.len();
                    }
                }
                other => status = apply(&mut self.progress, other, gallery, problems).or(status),
            }
        }
    }

    fn end(&mut self) {
        self.job = None;
        self.finish();
    }

    fn finish(&mut self) {
        if let Some(p) = &mut self.progress {
            p.finished = true;
        }
    }
}

/// Lists an index failure in Problems (each reason once: a failing index fails every batch)
/// and says so in the status bar the first time.
fn index_failed(seen: &mut Vec<String>, reason: String, problems: &mut Problems) -> Option<String> {
    if seen.contains(&reason) {
        return None;
    }
    problems.push((PathBuf::new(), index_problem(&reason)));
    let status = format!("The index failed, images are shown but not all kept: {reason}");
    seen.push(reason);
    Some(status)
}

/// An index failure as Problems lists it.
fn index_problem(reason: &str) -> String {
    format!("the index failed: {reason}")
}

/// Applies one message that does not end the job.
fn apply(
    progress: &mut Option<Progress>,
    message: Message,
    gallery: &mut Gallery,
    problems: &mut Problems,
) -> Option<String> {
    match message {
        Message::Scanned {
            images,
            problems: p,
        } => {
            *gallery = Gallery::new(&images);
            problems.extend(p);
            if let Some(progress) = progress {
                progress.total = images.len();
            }
            return Some(format!("{} images", images.len()));
        }
        Message::Analysed(results) => {
            for Analysed {
                index,
                result,
                embedded,
            } in results
            {
                match result {
                    Ok(analysis) => gallery.set_analysis(index, analysis),
                    Err(reason) => {
                        let path = gallery.items.get(index).map(|i| i.path.clone());
                        gallery.set_failed(index);
                        problems.push((path.unwrap_or_default(), reason));
                    }
                }
                if let Some(progress) = progress {
                    progress.done += 1;
                    progress.embedded += usize::from(embedded);
                }
            }
        }
        Message::Warning(warning) => problems.push((PathBuf::new(), warning)),
        Message::Finished | Message::FolderFailed(_) | Message::IndexFailed(_) => {}
    }
    None
}

fn finished_status(gallery: &Gallery, problems: &Problems, index_failures: &[String]) -> String {
    let indexed = gallery.analysed();
    let done = match problems.len().saturating_sub(index_failures.len()) {
        0 => format!("{indexed} images indexed"),
        failed => format!("{indexed} images indexed, {failed} could not be read"),
    };
    match index_failures.first() {
        Some(reason) => format!("{done}; the index failed: {reason}"),
        None => done,
    }
}

/// Frame durations, to report responsiveness while indexing.
#[derive(Debug, Default, Clone)]
pub struct FrameTimes {
    pub while_indexing: Vec<f32>,
    /// Frames once the folder was indexed: scrolling a large library, say.
    pub after_indexing: Vec<f32>,
}

impl FrameTimes {
    /// Prints the summary of the frames while indexing to stderr, for `--screenshot` runs and
    /// `LOOKALIKE_FRAME_REPORT`.
    pub fn report(&self) {
        print_summary("while indexing", &self.while_indexing);
    }

    /// Prints the summary of the frames after indexing, when the window closes.
    pub fn report_after(&self) {
        print_summary("after indexing", &self.after_indexing);
    }
}

/// (median, 99th percentile, worst) in milliseconds.
fn summary_of(times: &[f32]) -> Option<(f32, f32, f32)> {
    let mut t = times.to_vec();
    if t.is_empty() {
        return None;
    }
    t.sort_by(f32::total_cmp);
    let at = |q: f64| t[((t.len() - 1) as f64 * q) as usize];
    Some((at(0.5), at(0.99), t[t.len() - 1]))
}

fn print_summary(when: &str, times: &[f32]) {
    if let Some((median, p99, worst)) = summary_of(times) {
        let frames = times.len();
        eprintln!("frame times {when} ({frames} frames): median {median:.1} ms, p99 {p99:.1} ms, worst {worst:.1} ms");
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scan::ImageEntry;

    /// Regression (issue 25, point 13): an index failure was one more "could not be read" in
    /// the status bar, beside an empty file name in Problems. It is now said as the index's,
    /// once however many batches it fails.
    #[test]
    fn an_index_failure_is_said_as_the_indexs_not_an_images() {
        let images = vec![ImageEntry {
            path: PathBuf::from("a.jpg"),
            size: 1,
            modified: None,
            file_id: None,
        }];
        let failed = || Message::IndexFailed("index.sqlite3: database is locked".into());
        let job = Job::ended_early(vec![
            Message::Scanned {
                images,
                problems: Vec::new(),
            },
            failed(),
            failed(),
            Message::Finished,
        ]);
        let mut indexing = Indexing {
            job: Some(job),
            ..Indexing::default()
        };
        let (mut gallery, mut problems) = (Gallery::default(), Problems::new());
        let status = indexing
            .drain(&mut gallery, &mut problems)
            .unwrap_or_default();
        assert_eq!(
            problems,
            [(
                PathBuf::new(),
                "the index failed: index.sqlite3: database is locked".to_string()
            )]
        );
        assert_eq!(
            status,
            "0 images indexed; the index failed: index.sqlite3: database is locked"
        );
    }

    /// Regression: a worker that died left "Scanning…" on screen for good.
    #[test]
    fn a_job_that_ends_without_finishing_is_reported() {
        let images = vec![ImageEntry {
            path: PathBuf::from("a.jpg"),
            size: 1,
            modified: None,
            file_id: None,
        }];
        let job = Job::ended_early(vec![Message::Scanned {
            images,
            problems: Vec::new(),
        }]);
        let mut indexing = Indexing {
            job: Some(job),
            progress: Some(Progress {
                done: 0,
                total: 0,
                embedded: 0,
                started: Instant::now(),
                finished: false,
            }),
            refresh: false,
            renumbered: None,
            index_failures: Vec::new(),
        };
        let (mut gallery, mut problems) = (Gallery::default(), Problems::new());
        let status = indexing.drain(&mut gallery, &mut problems);
        assert_eq!(gallery.items.len(), 1, "what it sent is applied");
        assert!(
            status.is_some_and(|s| s.contains("stopped unexpectedly")),
            "the status bar says so"
        );
        assert_eq!(problems.len(), 1, "and Problems lists it");
        assert!(!indexing.is_running());
        assert!(
            indexing.progress().is_some_and(|p| p.finished),
            "no spinner"
        );
    }
}
