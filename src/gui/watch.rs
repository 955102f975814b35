//! Keeps the open folder current: watches it recursively (inotify, FSEvents or
//! ReadDirectoryChangesW, through `notify`) and, after a quiet moment, says that something
//! changed. The app then re-runs its one indexer on the folder, which embeds only what is new
//! or changed, finds renamed files by their fingerprint and forgets deleted ones. A burst of
//! events, such as 500 files copied in at once, is folded into one such pass.
//!
//! The watcher only reads: it never writes into the folder.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use eframe::egui;

use notify_debouncer_full::notify::{EventKind, RecommendedWatcher, RecursiveMode};
use notify_debouncer_full::{
    new_debouncer, DebounceEventResult, DebouncedEvent, Debouncer, RecommendedCache,
};

/// How long the folder must be quiet before a change is reported: long enough to fold a copy
/// of many files into one pass, short enough to feel immediate.
pub const QUIET: Duration = Duration::from_millis(500);

/// A running watch on one folder; dropping it stops watching.
pub struct FolderWatcher {
    _debouncer: Debouncer<RecommendedWatcher, RecommendedCache>,
    changed: Arc<AtomicBool>,
    trouble: Arc<Mutex<Option<String>>>,
}

impl FolderWatcher {
    /// Starts watching `folder` and everything under it. Changes under `ignored` (the index's
    /// own folder, should it lie inside) do not count. `wake` is called after each change.
    pub fn start(
        folder: &Path,
        ignored: Option<PathBuf>,
        wake: Arc<dyn Fn() + Send + Sync>,
    ) -> Result<Self, String> {
        let changed = Arc::new(AtomicBool::new(false));
        let trouble = Arc::new(Mutex::new(None));
        let (flag, report) = (changed.clone(), trouble.clone());
        let handler = move |result: DebounceEventResult| {
            let relevant = match result {
                Ok(events) => events.iter().any(|e| counts(e, ignored.as_deref())),
                // Events were lost (the queue overflowed, say): look at the whole folder again.
                Err(errors) => {
                    if let (Ok(mut slot), Some(e)) = (report.lock(), errors.first()) {
                        *slot = Some(e.to_string());
                    }
                    true
                }
            };
            if relevant {
                flag.store(true, Ordering::Relaxed);
                wake();
            }
        };
        let mut debouncer = new_debouncer(QUIET, None, handler).map_err(|e| e.to_string())?;
        debouncer
            .watch(folder, RecursiveMode::Recursive)
            .map_err(|e| describe(folder, &e))?;
        Ok(FolderWatcher {
            _debouncer: debouncer,
            changed,
            trouble,
        })
    }

    /// Whether something changed since the last call.
    pub fn take_change(&self) -> bool {
        self.changed.swap(false, Ordering::Relaxed)
    }

    /// A problem the watch ran into while running, once.
    pub fn take_trouble(&self) -> Option<String> {
        self.trouble.lock().ok()?.take()
    }
}

/// Whether an event can change what the grid shows: files created, written, renamed or
/// removed, outside the ignored folder. Reads and metadata-only changes do not count.
fn counts(event: &DebouncedEvent, ignored: Option<&Path>) -> bool {
    let kind_counts = match event.kind {
        EventKind::Create(_) | EventKind::Remove(_) | EventKind::Any | EventKind::Other => true,
        EventKind::Modify(modify) => !matches!(
            modify,
            notify_debouncer_full::notify::event::ModifyKind::Metadata(_)
        ),
        EventKind::Access(_) => false,
    };
    kind_counts
        && event
            .paths
            .iter()
            .any(|p| ignored.is_none_or(|skip| !p.starts_with(skip)))
}

/// Why watching could not start, in words a user can act on.
fn describe(folder: &Path, e: &notify_debouncer_full::notify::Error) -> String {
    use notify_debouncer_full::notify::ErrorKind;
    let why = match &e.kind {
        ErrorKind::MaxFilesWatch => {
            "the system's limit on watched folders is reached (raise fs.inotify.max_user_watches)"
                .to_string()
        }
        _ => e.to_string(),
    };
    format!("not watching {} for changes: {why}", folder.display())
}

/// The app's side of a live folder: the watch, a rescan waiting to run, and a note about a
/// watch that could not start, shown once.
#[derive(Default)]
pub struct LiveFolder {
    watcher: Option<FolderWatcher>,
    rescan: bool,
    note: Option<String>,
    /// Rescans started since the folder was opened.
    started: usize,
}

impl LiveFolder {
    /// Watches `folder`, ignoring changes under `index_dir`; a failure becomes the note.
    pub fn watch(folder: &Path, index_dir: Option<PathBuf>, ctx: &egui::Context) -> Self {
        let wake_ctx = ctx.clone();
        let wake: Arc<dyn Fn() + Send + Sync> = Arc::new(move || wake_ctx.request_repaint());
        match FolderWatcher::start(folder, index_dir, wake) {
            Ok(watcher) => LiveFolder {
                watcher: Some(watcher),
                ..Default::default()
            },
            Err(note) => LiveFolder {
                note: Some(note),
                ..Default::default()
            },
        }
    }

    /// Whether the folder is being watched.
    pub fn is_watching(&self) -> bool {
        self.watcher.is_some()
    }

    /// Asks for a rescan (F5, the Rescan button).
    pub fn request_rescan(&mut self) {
        self.rescan = true;
    }

    /// Whether a rescan is due, because the folder changed or one was asked for; asking
    /// again until it is started.
    pub fn rescan_due(&mut self) -> bool {
        if let Some(watcher) = &self.watcher {
            self.rescan |= watcher.take_change();
            if let Some(trouble) = watcher.take_trouble() {
                self.note.get_or_insert(trouble);
            }
        }
        self.rescan
    }

    pub fn rescan_started(&mut self) {
        self.rescan = false;
        self.started += 1;
    }

    /// Rescans started since the folder was opened.
    pub fn rescans(&self) -> usize {
        self.started
    }

    /// What the user should hear about the watch, once.
    pub fn take_note(&mut self) -> Option<String> {
        self.note.take()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_folder_that_cannot_be_watched_is_said_once_and_can_still_be_rescanned() {
        let gone = std::env::temp_dir().join("lookalike-no-such-folder-to-watch");
        let mut live = LiveFolder::watch(&gone, None, &egui::Context::default());
        assert!(!live.is_watching());
        let note = live.take_note().expect("a note about the watch");
        assert!(
            note.contains("not watching") && note.contains("lookalike-no-such-folder"),
            "{note}"
        );
        assert_eq!(live.take_note(), None, "said once");
        assert!(!live.rescan_due());
        live.request_rescan();
        assert!(live.rescan_due());
        live.rescan_started();
        assert!(!live.rescan_due());
        assert_eq!(live.rescans(), 1);
    }

    #[test]
    fn reads_and_changes_outside_the_index_folder_are_told_apart() {
        use notify_debouncer_full::notify::event::{AccessKind, CreateKind, Event};
        use std::time::Instant;
        let event = |kind, path: &str| DebouncedEvent {
            event: Event::new(kind).add_path(PathBuf::from(path)),
            time: Instant::now(),
        };
        let index = Path::new("/photos/.cache");
        assert!(counts(
            &event(EventKind::Create(CreateKind::File), "/photos/a.jpg"),
            Some(index)
        ));
        assert!(!counts(
            &event(EventKind::Access(AccessKind::Read), "/photos/a.jpg"),
            Some(index)
        ));
        assert!(!counts(
            &event(EventKind::Create(CreateKind::File), "/photos/.cache/x"),
            Some(index)
        ));
    }
}
