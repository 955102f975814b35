//! The eframe app: owns the window's state and hands each panel the part it draws. Panels
//! return what the user asked for (toolbar, grid and dialog actions), and the app applies it
//! here, so every change of state happens in one place.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use eframe::egui;
use egui::Key;

use super::duplicates::{DuplicatesAction, DuplicatesView};
use super::grid::{Grid, GridAction};
use super::indexing::{FrameTimes, Indexing, Problems, Progress};
use super::models::ModelDialog;
use super::outside::OutsideSearch;
use super::querybar::{QueryAction, QueryBar};
use super::screenshot::{Screenshot, ScreenshotPlan};
use super::settings::Settings;
use super::state::{ExampleSource, Gallery, THUMBNAILS_HELD};
use super::status::{empty_ui, problems_ui, status_ui};
use super::thumbnails::ThumbnailReader;
use super::toolbar::{Toolbar, ToolbarAction, ToolbarView};
use super::viewer::Viewer;
use super::watch::LiveFolder;
use crate::engine::{Engine, EngineOptions};
use crate::index::CacheLocation;
use crate::model::{find_vgg16_weights, ModelKind, Precision};

/// How the window starts.
#[derive(Debug, Clone, Default)]
pub struct Startup {
    /// Folder to open at once.
    pub folder: Option<PathBuf>,
    /// A `--screenshot` run.
    pub screenshot: Option<ScreenshotPlan>,
    /// Where the index lives.
    pub cache: CacheLocation,
    /// How many images hold a thumbnail at once (default [`THUMBNAILS_HELD`]); the rest are
    /// read back from the index when shown again.
    pub thumbnails_held: Option<usize>,
}

/// The desktop app.
pub struct LookalikeApp {
    settings: Settings,
    engine: Result<Arc<Engine>, String>,
    /// Where the index lives (tests use their own folder).
    cache: CacheLocation,
    /// How many images hold a thumbnail at once ([`Gallery::thumbnail`]).
    thumbnails_held: usize,
    /// Reads thumbnails back from the index once the gallery let go of them.
    thumbnails: ThumbnailReader,
    folder: Option<PathBuf>,
    gallery: Gallery,
    grid: Grid,
    query_bar: QueryBar,
    /// A picture from outside the folder being embedded, to search by.
    outside: Option<OutsideSearch>,
    /// The Duplicates view; `None` while the grid shows.
    duplicates: Option<DuplicatesView>,
    indexing: Indexing,
    /// Watches the open folder, so that it updates itself.
    live: LiveFolder,
    toolbar: Toolbar,
    problems: Problems,
    show_problems: bool,
    viewer: Option<Viewer>,
    picker: Option<std::sync::mpsc::Receiver<Option<PathBuf>>>,
    model_dialog: Option<ModelDialog>,
    about_open: bool,
    screenshot: Option<Screenshot>,
    frame_times: FrameTimes,
    /// `LOOKALIKE_FRAME_REPORT` is set: frame times are printed when indexing ends and when
    /// the window closes (`scripts/gui_memory.sh`).
    report_frames: bool,
    status: String,
}

impl LookalikeApp {
    /// The app as eframe starts it: settings from storage, the model loaded.
    pub fn new(cc: &eframe::CreationContext<'_>, mut start: Startup) -> Self {
        let mut settings: Settings = cc
            .storage
            .and_then(|s| eframe::get_value(s, eframe::APP_KEY))
            .unwrap_or_default();
        let (kind, precision) = (settings.model, settings.precision);
        let engine = match load_engine(kind, settings.vgg16_weights.clone(), precision) {
            Ok(engine) => Ok(engine),
            // The chosen model is gone (weights deleted, say) or the settings came from a CPU
            // with bf16: start on the built-in one, at the precision this CPU runs.
            Err(_) => load_engine(ModelKind::Lite0, None, Precision::Auto),
        };
        if let Ok(engine) = &engine {
            settings.model = ModelKind::from_name(engine.info().id).unwrap_or_default();
            if precision.resolve().is_err() {
                settings.precision = Precision::Auto;
            }
        }
        if start.folder.is_none() {
            start.folder = settings.last_folder.clone().filter(|f| f.is_dir());
        }
        Self::with_engine(&cc.egui_ctx, settings, engine, start)
    }

    /// The app around an engine that is already loaded (tests share one between windows).
    pub fn with_engine(
        ctx: &egui::Context,
        settings: Settings,
        engine: Result<Arc<Engine>, String>,
        start: Startup,
    ) -> Self {
        let mut app = LookalikeApp {
            settings,
            engine,
            cache: start.cache,
            thumbnails_held: start.thumbnails_held.unwrap_or(THUMBNAILS_HELD),
            thumbnails: ThumbnailReader::default(),
            folder: None,
            gallery: Gallery::default(),
            grid: Grid::default(),
            query_bar: QueryBar::default(),
            outside: None,
            duplicates: None,
            indexing: Indexing::default(),
            live: LiveFolder::default(),
            toolbar: Toolbar::default(),
            problems: Problems::new(),
            show_problems: false,
            viewer: None,
            picker: None,
            model_dialog: None,
            about_open: false,
            screenshot: start.screenshot.map(Screenshot::new),
            frame_times: FrameTimes::default(),
            report_frames: std::env::var_os("LOOKALIKE_FRAME_REPORT").is_some(),
            status: String::new(),
        };
        // File names come in every script; a glyph no font has must draw as a box, never panic.
        ctx.set_missing_glyph_policy(egui::MissingGlyphPolicy::Tofu);
        if let Err(e) = &app.engine {
            app.status = format!("The model could not be loaded: {e}");
        }
        if let Some(folder) = start.folder {
            app.open_folder(ctx, folder);
        }
        app
    }

    pub fn settings(&self) -> &Settings {
        &self.settings
    }

    /// How many images hold a thumbnail now (the rest are read back from the index when
    /// shown again).
    pub fn thumbnails_held(&self) -> usize {
        self.gallery.thumbnails_held()
    }

    pub fn folder(&self) -> Option<&Path> {
        self.folder.as_deref()
    }

    pub fn gallery(&self) -> &Gallery {
        &self.gallery
    }

    pub fn status(&self) -> &str {
        &self.status
    }

    pub fn progress(&self) -> Option<Progress> {
        self.indexing.progress()
    }

    /// Nothing is under way: indexing is done, no folder picker is open, and every tile on
    /// screen has the thumbnail the index keeps for it.
    pub fn is_idle(&self) -> bool {
        !self.indexing.is_running() && self.picker.is_none() && self.thumbnails_ready()
    }

    /// No thumbnail is being read back from the index or waits to be (without an index the
    /// gallery holds every thumbnail it was given, and reads none).
    fn thumbnails_ready(&self) -> bool {
        let reads = !matches!(self.cache, CacheLocation::Disabled);
        !reads || !(self.thumbnails.is_reading() || self.gallery.wants_thumbnails())
    }

    /// Opens a folder: cancels any running job and starts indexing this one.
    pub fn open_folder(&mut self, ctx: &egui::Context, folder: PathBuf) {
        self.gallery = Gallery::default();
        self.problems.clear();
        self.grid.clear();
        if let Some(view) = &mut self.duplicates {
            view.reset();
        }
        self.viewer = None;
        self.toolbar.path_input = folder.to_string_lossy().into_owned();
        self.settings.remember(&folder);
        self.folder = Some(folder.clone());
        // Dropping the old job cancels it, and the old watch stops.
        self.indexing = Indexing::default();
        self.live = LiveFolder::watch(&folder, self.cache.dir(), ctx);
        match &self.engine {
            Ok(engine) => {
                self.indexing = Indexing::start(folder, engine.clone(), self.cache.clone(), ctx);
                self.status = "Scanning…".into();
            }
            Err(e) => self.status = format!("Cannot index: the model could not be loaded: {e}"),
        }
    }

    /// Whether the open folder is watched for changes.
    pub fn is_watching(&self) -> bool {
        self.live.is_watching()
    }

    /// Rescans of the open folder so far, whether the watch or the user asked for them.
    pub fn rescans(&self) -> usize {
        self.live.rescans()
    }

    /// Looks at the open folder again, as F5 does.
    pub fn rescan(&mut self) {
        self.live.request_rescan();
    }

    /// Starts a rescan when the folder changed or one was asked for, once no job runs; keeps
    /// what holds item indices in step after one; tells once that the folder is not watched.
    fn keep_folder_current(&mut self, ctx: &egui::Context) {
        if let Some(moved_to) = self.indexing.take_renumbered() {
            let follow = |i: usize| moved_to.get(i).copied().flatten();
            self.grid.clear();
            if let Some(view) = &mut self.duplicates {
                view.renumber(&follow);
            }
            self.viewer = self.viewer.take().and_then(|mut viewer| {
                viewer.index = follow(viewer.index)?;
                Some(viewer)
            });
        }
        if self.indexing.is_running() {
            return;
        }
        if let Some(note) = self.live.take_note() {
            self.status = format!("{} · {note}; press F5 to rescan", self.status);
        }
        let (Some(folder), Ok(engine)) = (&self.folder, &self.engine) else {
            return;
        };
        if self.live.rescan_due() {
            self.live.rescan_started();
            let (folder, engine) = (folder.clone(), engine.clone());
            self.indexing = Indexing::refresh(folder, engine, self.cache.clone(), ctx);
        }
    }

    pub fn cancel_indexing(&mut self) {
        if self.indexing.cancel() {
            self.status = "Cancelled.".into();
        }
    }

    /// Sorts the grid by similarity to an item, and scrolls to the top.
    pub fn sort_by(&mut self, index: usize) {
        self.gallery.sort_by_similarity(index);
        self.grid.scroll_to_top();
    }

    /// Sorts by all the picked images together.
    pub fn search_picked(&mut self) {
        let picked = self.gallery.picked.clone();
        self.gallery.search_by(&picked);
        self.grid.scroll_to_top();
    }

    pub fn back_to_folder_order(&mut self) {
        self.gallery.folder_order();
        self.grid.scroll_to_top();
    }

    /// What the model computes in now (bf16 or f32); the setting's resolution without one.
    pub fn running_precision(&self) -> Precision {
        match &self.engine {
            Ok(engine) => engine.precision(),
            Err(_) => self.settings.precision.resolve().unwrap_or(Precision::F32),
        }
    }

    /// Runs the model in another precision. The index keeps one set of vectors for both, so
    /// the open folder is looked at again but nothing is embedded anew.
    pub fn set_precision(&mut self, ctx: &egui::Context, precision: Precision) {
        let weights = self.settings.vgg16_weights.clone().filter(|p| p.is_file());
        match load_engine(self.settings.model, weights, precision) {
            Ok(engine) => {
                self.engine = Ok(engine);
                self.settings.precision = precision;
                if let Some(folder) = self.folder.clone() {
                    self.open_folder(ctx, folder);
                }
            }
            Err(e) => self.status = format!("Could not switch precision: {e}"),
        }
    }

    /// Switches the model (re-indexing the open folder with it). VGG16 without weights opens
    /// the dialog that offers to download them or to choose a file.
    pub fn switch_model(&mut self, ctx: &egui::Context, kind: ModelKind, weights: Option<PathBuf>) {
        let weights =
            weights.or_else(|| self.settings.vgg16_weights.clone().filter(|p| p.is_file()));
        match load_engine(kind, weights.clone(), self.settings.precision) {
            Ok(engine) => {
                self.engine = Ok(engine);
                self.settings.model = kind;
                if kind == ModelKind::Vgg16 && weights.is_some() {
                    self.settings.vgg16_weights = weights;
                }
                if let Some(folder) = self.folder.clone() {
                    self.open_folder(ctx, folder);
                }
            }
            Err(_)
                if kind == ModelKind::Vgg16
                    && weights.is_none()
                    && find_vgg16_weights().is_none() =>
            {
                self.model_dialog = Some(ModelDialog::Missing);
            }
            Err(e) => self.model_dialog = Some(ModelDialog::Failed(e)),
        }
    }

    pub fn open_viewer(&mut self, index: usize) {
        if let Some(item) = self.gallery.items.get(index) {
            self.viewer = Some(Viewer::open(index, item.path.clone()));
        }
    }

    /// Shows the system folder picker on its own thread, so the window keeps drawing.
    pub fn pick_folder(&mut self, ctx: &egui::Context) {
        let (send, receive) = std::sync::mpsc::channel();
        let ctx = ctx.clone();
        let start_in = self.folder.clone();
        let spawned = std::thread::Builder::new()
            .name("lookalike-folder-picker".into())
            .spawn(move || {
                let mut dialog = rfd::FileDialog::new().set_title("Open a folder of images");
                if let Some(dir) = start_in {
                    dialog = dialog.set_directory(dir);
                }
                let _ = send.send(dialog.pick_folder());
                ctx.request_repaint();
            });
        match spawned {
            Ok(_) => self.picker = Some(receive),
            Err(e) => self.status = format!("Cannot show the folder picker: {e}"),
        }
    }

    fn poll_picker(&mut self, ctx: &egui::Context) {
        let Some(picker) = &self.picker else { return };
        match picker.try_recv() {
            Ok(Some(folder)) => {
                self.picker = None;
                self.open_folder(ctx, folder);
            }
            Ok(None) => {
                self.picker = None;
                self.status =
                    "No folder chosen. You can also type a path or drop a folder on the window."
                        .into();
            }
            Err(std::sync::mpsc::TryRecvError::Empty) => {}
            Err(std::sync::mpsc::TryRecvError::Disconnected) => self.picker = None,
        }
    }

    /// A dropped folder opens; a dropped picture sorts the open folder by it (or, with no
    /// folder open, opens the folder it is in).
    fn handle_dropped(&mut self, ctx: &egui::Context) {
        let dropped: Option<PathBuf> =
            ctx.input(|i| i.raw.dropped_files.first().map(|f| f.path().to_path_buf()));
        let Some(path) = dropped else { return };
        match (path.is_dir(), &self.folder, &self.engine) {
            (true, _, _) => self.open_folder(ctx, path),
            (false, Some(_), Ok(engine)) => {
                self.outside = Some(OutsideSearch::file(ctx, engine.clone(), path));
                self.status = "Looking at the dropped picture…".into();
            }
            (false, _, _) => {
                if let Some(folder) = path.parent() {
                    self.open_folder(ctx, folder.to_path_buf());
                }
            }
        }
    }

    /// Ctrl+V with a picture on the clipboard sorts the open folder by it.
    fn handle_paste(&mut self, ctx: &egui::Context) {
        let pasted = ctx.input(|i| {
            i.modifiers.command && i.key_pressed(Key::V)
                || i.events.iter().any(|e| matches!(e, egui::Event::Paste(_)))
        });
        if !pasted || ctx.egui_wants_keyboard_input() || self.folder.is_none() {
            return;
        }
        if let Ok(engine) = &self.engine {
            self.outside = Some(OutsideSearch::clipboard(ctx, engine.clone()));
        }
    }

    /// Takes in the outside picture once it is embedded.
    fn poll_outside(&mut self) {
        let Some(search) = &self.outside else { return };
        let Some(result) = search.poll() else { return };
        self.outside = None;
        match result {
            Ok(picture) => {
                self.status = format!("Sorted by {}, from outside the folder", picture.name);
                self.gallery.search_by_outside(picture);
                self.grid.scroll_to_top();
            }
            Err(reason) => self.status = reason,
        }
    }

    /// Applies what the background job reported since the last frame.
    fn drain_messages(&mut self, ctx: &egui::Context) {
        let was_running = self.indexing.is_running();
        let bound = match self.cache {
            CacheLocation::Disabled => None,
            _ => Some(self.thumbnails_held),
        };
        self.gallery.bound_thumbnails(bound);
        let folder = self.folder.as_deref();
        (self.thumbnails).update(ctx, &mut self.gallery, &self.cache, folder);
        if let Some(status) = self.indexing.drain(&mut self.gallery, &mut self.problems) {
            self.status = match self.cache.is_shared() {
                // Whoever browses a shared index should see which one (never its password).
                true => format!("{status} · index: {}", self.cache.describe()),
                false => status,
            };
        }
        if self.indexing.has_waiting() {
            ctx.request_repaint();
        }
        let finished = was_running && !self.indexing.is_running();
        if finished && self.report_frames {
            self.frame_times.report();
        }
    }

    fn handle_keys(&mut self, ctx: &egui::Context, columns: usize) {
        let quit = egui::KeyboardShortcut::new(egui::Modifiers::COMMAND, Key::Q);
        if ctx.input_mut(|i| i.consume_shortcut(&quit)) {
            ctx.send_viewport_cmd(egui::ViewportCommand::Close);
        }
        // The Enter that submits a text field (and takes its focus away) is not a grid key.
        if ctx.egui_wants_keyboard_input() || self.toolbar.text_field_left {
            return;
        }
        if ctx.input(|i| i.key_pressed(Key::F5)) {
            self.rescan();
        }
        if self.viewer.is_some() || self.duplicates.is_some() {
            return; // the viewer and the Duplicates view take the keys while open
        }
        let pressed = |k: Key| ctx.input(|i| i.key_pressed(k));
        let columns = columns.max(1) as isize;
        for (key, step) in [
            (Key::ArrowRight, 1),
            (Key::ArrowLeft, -1),
            (Key::ArrowDown, columns),
            (Key::ArrowUp, -columns),
        ] {
            if pressed(key) {
                self.gallery.move_selection(step);
            }
        }
        let (selected, picked) = (self.gallery.selected, self.gallery.picked.clone());
        match selected {
            _ if !picked.is_empty() && pressed(Key::Enter) => self.search_picked(),
            Some(i) if pressed(Key::Enter) => self.sort_by(i),
            Some(i) if pressed(Key::Space) => self.open_viewer(i),
            _ => {}
        }
        if pressed(Key::Escape) && self.gallery.is_searching() {
            self.back_to_folder_order();
        }
    }

    fn toolbar_ui(&mut self, ui: &mut egui::Ui) {
        let view = ToolbarView {
            recent: &self.settings.recent,
            model: self.settings.model,
            precision: (self.settings.precision, self.running_precision()),
            filter: &self.gallery.filter,
            thumbnail_size: &mut self.settings.thumbnail_size,
            sorted: self.gallery.is_searching(),
            problems: self.problems.len(),
            duplicates: self.duplicates.is_some(),
            folder_open: self.folder.is_some(),
        };
        for action in self.toolbar.ui(ui, view) {
            self.apply_toolbar(ui.ctx(), action);
        }
    }

    fn apply_toolbar(&mut self, ctx: &egui::Context, action: ToolbarAction) {
        match action {
            ToolbarAction::PickFolder => self.pick_folder(ctx),
            ToolbarAction::OpenFolder(folder) => self.open_folder(ctx, folder),
            ToolbarAction::NotAFolder(path) => {
                self.status = format!("Not a folder: {}", path.display());
            }
            ToolbarAction::SwitchModel(kind) => self.switch_model(ctx, kind, None),
            ToolbarAction::SetPrecision(precision) => self.set_precision(ctx, precision),
            ToolbarAction::SetFilter(filter) => self.gallery.set_filter(filter),
            ToolbarAction::BackToFolderOrder => self.back_to_folder_order(),
            ToolbarAction::ToggleProblems => self.show_problems = !self.show_problems,
            ToolbarAction::ShowDuplicates(show) => {
                self.duplicates = show.then(DuplicatesView::default);
            }
            ToolbarAction::Rescan => self.rescan(),
            ToolbarAction::About => self.about_open = true,
        }
    }

    /// Draws the grid (or the empty page); returns its number of columns.
    fn central_ui(&mut self, ui: &mut egui::Ui) -> usize {
        if self.folder.is_none() {
            empty_ui(ui);
            return 1;
        }
        if let Some(view) = &mut self.duplicates {
            let kept_in = (self.folder.clone()).map(|folder| (self.cache.clone(), folder));
            for action in view.ui(ui, &self.gallery, &kept_in) {
                match action {
                    DuplicatesAction::MoveToTrash(request) => self.move_to_trash(&request),
                }
            }
            return 1;
        }
        if QueryBar::wanted(&self.gallery) {
            for action in self.query_bar.ui(ui, &self.gallery) {
                self.apply_query(action);
            }
            ui.separator();
        }
        let side = self.settings.thumbnail_size;
        let response = self.grid.ui(ui, &mut self.gallery, side);
        self.indexing.prioritise(response.on_screen);
        for action in response.actions {
            match action {
                GridAction::Sort(i) => self.sort_by(i),
                GridAction::Select(i) => self.gallery.selected = Some(i),
                GridAction::View(i) => self.open_viewer(i),
                GridAction::TogglePicked(i) => self.gallery.toggle_picked(i),
                GridAction::PickRange(i) => self.gallery.pick_range(i),
                GridAction::AddExample(i, positive) => {
                    self.gallery.add_example(ExampleSource::Item(i), positive);
                    self.grid.scroll_to_top();
                }
                GridAction::Open(i) => self.hand_to_desktop(i, super::system::open),
                GridAction::Reveal(i) => self.hand_to_desktop(i, super::system::reveal),
            }
        }
        response.columns
    }

    /// Opens or reveals an image's file; a failure shows in the status bar.
    fn hand_to_desktop(&mut self, index: usize, how: fn(&Path) -> Result<(), String>) {
        if let Some(item) = self.gallery.items.get(index) {
            if let Err(reason) = how(&item.path) {
                self.status = reason;
            }
        }
    }

    fn apply_query(&mut self, action: QueryAction) {
        match action {
            QueryAction::RemoveExample(at) => self.gallery.remove_example(at),
            QueryAction::SearchPicked => self.search_picked(),
            QueryAction::ClearPicked => self.gallery.picked.clear(),
            QueryAction::SetCutoff(cutoff) => self.gallery.set_cutoff(cutoff),
        }
    }

    /// Moves confirmed duplicates to the trash; they leave the grid and the index. What the
    /// trash refused shows in Problems, with its reason.
    fn move_to_trash(&mut self, request: &super::trash::TrashRequest) {
        let Some(folder) = self.folder.clone() else {
            return;
        };
        let outcome = super::trash::move_to_trash(&self.gallery, request, &self.cache, &folder);
        self.gallery.remove(&outcome.moved);
        if let Some(view) = &mut self.duplicates {
            view.images_changed();
        }
        let failed = outcome.problems.len();
        self.problems.extend(outcome.problems);
        let noun = if outcome.moved.len() == 1 {
            "file"
        } else {
            "files"
        };
        self.status = format!(
            "Moved {} {noun} ({}) to the trash",
            outcome.moved.len(),
            crate::duplicates::human_bytes(outcome.bytes)
        );
        if failed > 0 {
            self.status += &format!("; {failed} problems, see Problems");
            self.show_problems = true;
        }
    }

    fn dialogs_ui(&mut self, ctx: &egui::Context) {
        if self.about_open {
            let index = self.cache.describe();
            let (model, precision) = (self.settings.model, self.running_precision());
            self.about_open = super::about::about_ui(ctx, model, precision, &index);
        }
        if let Some(viewer) = &mut self.viewer {
            if !viewer.ui(ctx, &mut self.gallery) {
                self.viewer = None;
            }
        }
        if let Some(dialog) = self.model_dialog.take() {
            let outcome = dialog.ui(ctx);
            self.model_dialog = outcome.next;
            if let Some(weights) = outcome.use_vgg16 {
                self.switch_model(ctx, ModelKind::Vgg16, Some(weights));
            }
        }
    }

    fn screenshot_step(&mut self, ctx: &egui::Context) {
        let indexed = self.indexing.progress().is_some_and(|p| p.finished);
        let ready = self.thumbnails_ready();
        let Some(shot) = &mut self.screenshot else {
            return;
        };
        let Some(setup) = shot.step(ctx, indexed, ready, &self.gallery, &self.frame_times) else {
            return;
        };
        match setup.select.as_slice() {
            [] => {}
            [one] => self.sort_by(*one),
            several => {
                self.gallery.search_by(several);
                self.grid.scroll_to_top();
            }
        }
        if setup.duplicates {
            self.duplicates = Some(DuplicatesView::default());
        }
    }
}

impl eframe::App for LookalikeApp {
    fn ui(&mut self, ui: &mut egui::Ui, _frame: &mut eframe::Frame) {
        let frame_start = Instant::now();
        let ctx = ui.ctx().clone();
        self.drain_messages(&ctx);
        self.keep_folder_current(&ctx);
        self.poll_picker(&ctx);
        self.handle_dropped(&ctx);
        self.handle_paste(&ctx);
        self.poll_outside();
        egui::Panel::top("toolbar").show(ui, |ui| self.toolbar_ui(ui));
        egui::Panel::bottom("status").show(ui, |ui| {
            if status_ui(ui, self.indexing.progress(), &self.status) {
                self.cancel_indexing();
            }
        });
        if self.show_problems && !self.problems.is_empty() {
            egui::Panel::bottom("problems")
                .resizable(true)
                .show(ui, |ui| {
                    self.show_problems = !problems_ui(ui, &self.problems)
                });
        }
        let columns = egui::CentralPanel::default()
            .show(ui, |ui| self.central_ui(ui))
            .inner;
        self.handle_keys(&ctx, columns);
        self.dialogs_ui(&ctx);
        self.screenshot_step(&ctx);
        let elapsed = frame_start.elapsed().as_secs_f32() * 1000.0;
        match self.indexing.is_running() {
            true => self.frame_times.while_indexing.push(elapsed),
            false if self.report_frames && !self.gallery.items.is_empty() => {
                self.frame_times.after_indexing.push(elapsed)
            }
            false => {}
        }
        if self.picker.is_some() {
            ctx.request_repaint_after(Duration::from_millis(100));
        }
    }

    fn save(&mut self, storage: &mut dyn eframe::Storage) {
        eframe::set_value(storage, eframe::APP_KEY, &self.settings);
    }

    fn on_exit(&mut self, _gl: Option<&eframe::glow::Context>) {
        if self.report_frames {
            self.frame_times.report_after();
        }
    }
}

/// Loads a model for the window (with thumbnails). Batches are small so that the images on
/// screen, which go first, show up soon after a scroll.
pub fn load_engine(
    kind: ModelKind,
    weights: Option<PathBuf>,
    precision: Precision,
) -> Result<Arc<Engine>, String> {
    let options = EngineOptions {
        threads: worker_threads(),
        batch_size: 4,
        thumbnail_side: Some(crate::decode::THUMBNAIL_SIDE),
        weights,
        precision,
        ..Default::default()
    };
    Engine::new(kind, options)
        .map(Arc::new)
        .map_err(|e| e.to_string())
}

/// Threads for each of the engine's pools. With four cores or more, one is left to the window
/// so that scrolling stays smooth while a folder is indexed. With fewer, the engine takes them
/// all: giving one up would halve indexing, and frames measured while indexing on two cores
/// still build in a few milliseconds.
fn worker_threads() -> usize {
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    match cores {
        0..=3 => cores,
        _ => cores - 1,
    }
}
