//! The eframe app: owns the window's state, feeds it from the background job's messages, and
//! draws the toolbar, the progress bar, the grid, the problems list and the viewer.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use eframe::egui;
use egui::{Key, TextureHandle};

use super::grid;
use super::models::ModelDialog;
use super::state::Gallery;
use super::viewer::Viewer;
use super::worker::{Job, Message};
use crate::engine::{Engine, EngineOptions};
use crate::index::CacheLocation;
use crate::model::{find_vgg16_weights, ModelKind};

/// What survives a restart (eframe persistence); the window size is kept by eframe itself.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
#[serde(default)]
pub struct Settings {
    pub last_folder: Option<PathBuf>,
    pub recent: Vec<PathBuf>,
    pub thumbnail_size: f32,
    pub model: String,
    /// A VGG16 weights file the user chose in the app.
    pub vgg16_weights: Option<PathBuf>,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            last_folder: None,
            recent: Vec::new(),
            thumbnail_size: 160.0,
            model: "lite0".into(),
            vgg16_weights: None,
        }
    }
}

const RECENT_FOLDERS: usize = 10;

/// A run that opens a folder, waits for indexing, optionally clicks one image, saves a
/// screenshot of the window and quits (`--screenshot FILE --select NAME`).
#[derive(Debug, Clone)]
pub struct ScreenshotPlan {
    pub file: PathBuf,
    pub select: Option<String>,
}

/// How the window starts.
#[derive(Debug, Clone, Default)]
pub struct Startup {
    /// Folder to open at once.
    pub folder: Option<PathBuf>,
    /// A `--screenshot` run.
    pub screenshot: Option<ScreenshotPlan>,
    /// Where the index lives.
    pub cache: CacheLocation,
}

/// How far indexing has got.
#[derive(Debug, Clone, Copy)]
pub struct Progress {
    pub done: usize,
    pub total: usize,
    pub started: Instant,
    pub finished: bool,
}

/// The desktop app.
pub struct LookalikeApp {
    pub settings: Settings,
    engine: Result<Arc<Engine>, String>,
    pub folder: Option<PathBuf>,
    pub path_input: String,
    pub gallery: Gallery,
    pub problems: Vec<(PathBuf, String)>,
    pub progress: Option<Progress>,
    pub show_problems: bool,
    job: Option<Job>,
    pub(super) textures: HashMap<usize, TextureHandle>,
    pub(super) scroll_to_top: bool,
    pub(super) viewer: Option<Viewer>,
    picker: Option<std::sync::mpsc::Receiver<Option<PathBuf>>>,
    screenshot: Option<ScreenshotState>,
    pub frame_times: FrameTimes,
    pub status: String,
    /// Where the index lives (tests use their own folder).
    pub cache: CacheLocation,
    pub(super) model_dialog: Option<ModelDialog>,
    /// A text field lost focus this frame (its Enter must not reach the grid).
    text_field_left: bool,
}

/// Where a `--screenshot` run is.
struct ScreenshotState {
    plan: ScreenshotPlan,
    selected: bool,
    settle_frames: u32,
    requested: bool,
    image: Arc<std::sync::Mutex<Option<Arc<egui::ColorImage>>>>,
}

/// Frame durations, to report responsiveness while indexing.
#[derive(Debug, Default, Clone)]
pub struct FrameTimes {
    pub while_indexing: Vec<f32>,
}

impl FrameTimes {
    /// (median, 99th percentile, worst) in milliseconds.
    pub fn summary(&self) -> Option<(f32, f32, f32)> {
        let mut t = self.while_indexing.clone();
        if t.is_empty() {
            return None;
        }
        t.sort_by(f32::total_cmp);
        let at = |q: f64| t[((t.len() - 1) as f64 * q) as usize];
        Some((at(0.5), at(0.99), t[t.len() - 1]))
    }
}

impl LookalikeApp {
    /// The app as eframe starts it: settings from storage, the model loaded.
    pub fn new(cc: &eframe::CreationContext<'_>, mut start: Startup) -> Self {
        let mut settings: Settings = cc
            .storage
            .and_then(|s| eframe::get_value(s, eframe::APP_KEY))
            .unwrap_or_default();
        let kind = ModelKind::from_name(&settings.model).unwrap_or_default();
        let engine = match load_engine(kind, settings.vgg16_weights.clone()) {
            Ok(engine) => Ok(engine),
            // The chosen model is gone (weights deleted, say): start on the built-in one.
            Err(_) if kind != ModelKind::Lite0 => load_engine(ModelKind::Lite0, None),
            Err(e) => Err(e),
        };
        settings.model = engine
            .as_ref()
            .map_or(settings.model, |e| e.info().id.to_string());
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
        let Startup {
            folder,
            screenshot,
            cache,
        } = start;
        let mut app = LookalikeApp {
            settings,
            engine,
            folder: None,
            path_input: String::new(),
            gallery: Gallery::default(),
            problems: Vec::new(),
            progress: None,
            show_problems: false,
            job: None,
            textures: HashMap::new(),
            scroll_to_top: false,
            viewer: None,
            picker: None,
            screenshot: screenshot.map(|plan| ScreenshotState {
                plan,
                selected: false,
                settle_frames: 0,
                requested: false,
                image: Default::default(),
            }),
            frame_times: FrameTimes::default(),
            status: String::new(),
            cache,
            model_dialog: None,
            text_field_left: false,
        };
        // File names come in every script; a glyph no font has must draw as a box, never panic.
        ctx.set_missing_glyph_policy(egui::MissingGlyphPolicy::Tofu);
        if let Err(e) = &app.engine {
            app.status = format!("The model could not be loaded: {e}");
        }
        if let Some(folder) = folder {
            app.open_folder(ctx, folder);
        }
        app
    }

    /// Opens a folder: cancels any running job and starts indexing this one.
    pub fn open_folder(&mut self, ctx: &egui::Context, folder: PathBuf) {
        self.job = None; // dropping the job cancels it
        self.gallery = Gallery::default();
        self.problems.clear();
        self.textures.clear();
        self.viewer = None;
        self.scroll_to_top = true;
        self.path_input = folder.to_string_lossy().into_owned();
        self.remember(&folder);
        self.folder = Some(folder.clone());
        let engine = match &self.engine {
            Ok(engine) => engine.clone(),
            Err(e) => {
                self.status = format!("Cannot index: the model could not be loaded: {e}");
                return;
            }
        };
        let wake_ctx = ctx.clone();
        let wake = Arc::new(move || wake_ctx.request_repaint());
        self.job = Some(Job::start(folder, engine, self.cache.clone(), wake));
        self.progress = Some(Progress {
            done: 0,
            total: 0,
            started: Instant::now(),
            finished: false,
        });
        self.status = "Scanning…".into();
    }

    fn remember(&mut self, folder: &Path) {
        self.settings.last_folder = Some(folder.to_path_buf());
        self.settings.recent.retain(|f| f != folder);
        self.settings.recent.insert(0, folder.to_path_buf());
        self.settings.recent.truncate(RECENT_FOLDERS);
    }

    /// True once the open folder has been fully indexed (or nothing is open).
    pub fn is_idle(&self) -> bool {
        self.job.is_none() && self.picker.is_none()
    }

    pub fn cancel_indexing(&mut self) {
        if let Some(job) = self.job.take() {
            job.cancel();
            if let Some(p) = &mut self.progress {
                p.finished = true;
            }
            self.status = "Cancelled.".into();
        }
    }

    /// Sorts the grid by similarity to an item, and scrolls to the top.
    pub fn sort_by(&mut self, index: usize) {
        self.gallery.sort_by_similarity(index);
        self.scroll_to_top = true;
    }

    /// Switches the model (re-indexing the open folder with it). VGG16 without weights opens
    /// the dialog that offers to download them or to choose a file.
    pub fn switch_model(&mut self, ctx: &egui::Context, kind: ModelKind, weights: Option<PathBuf>) {
        let weights =
            weights.or_else(|| self.settings.vgg16_weights.clone().filter(|p| p.is_file()));
        match load_engine(kind, weights.clone()) {
            Ok(engine) => {
                self.engine = Ok(engine);
                self.settings.model = kind.name().into();
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

    /// Tells the background job which images the user is looking at, so they are embedded
    /// next.
    pub fn prioritise(&mut self, on_screen: Vec<usize>) {
        if let Some(job) = &self.job {
            job.prioritise(on_screen);
        }
    }

    pub fn back_to_folder_order(&mut self) {
        self.gallery.folder_order();
        self.scroll_to_top = true;
    }

    /// Applies every waiting message from the background job.
    fn drain_messages(&mut self) {
        let Some(job) = &self.job else { return };
        let mut finished = false;
        while let Ok(message) = job.messages.try_recv() {
            match message {
                Message::Scanned { images, problems } => {
                    self.gallery = Gallery::new(&images);
                    self.problems.extend(problems);
                    if let Some(p) = &mut self.progress {
                        p.total = images.len();
                    }
                    self.status = format!("{} images", images.len());
                }
                Message::Analysed { index, result } => {
                    match result {
                        Ok(analysis) => self.gallery.set_analysis(index, analysis),
                        Err(reason) => {
                            let path = self
                                .gallery
                                .items
                                .get(index)
                                .map(|i| i.path.clone())
                                .unwrap_or_default();
                            self.gallery.set_failed(index);
                            self.problems.push((path, reason));
                        }
                    }
                    if let Some(p) = &mut self.progress {
                        p.done += 1;
                    }
                }
                Message::Finished => finished = true,
                Message::Warning(warning) => self.problems.push((PathBuf::new(), warning)),
                Message::FolderFailed(reason) => {
                    self.status = reason;
                    finished = true;
                }
            }
        }
        if finished {
            self.job = None;
            if let Some(p) = &mut self.progress {
                p.finished = true;
            }
            if std::env::var_os("LOOKALIKE_FRAME_REPORT").is_some() {
                if let Some((median, p99, worst)) = self.frame_times.summary() {
                    let frames = self.frame_times.while_indexing.len();
                    eprintln!("frame times while indexing ({frames} frames): median {median:.1} ms, p99 {p99:.1} ms, worst {worst:.1} ms");
                }
            }
            let indexed = self.gallery.analysed();
            self.status = match self.problems.len() {
                0 => format!("{indexed} images indexed"),
                failed => format!("{indexed} images indexed, {failed} could not be read"),
            };
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

    fn handle_dropped_folders(&mut self, ctx: &egui::Context) {
        let dropped: Vec<PathBuf> = ctx.input(|i| {
            i.raw
                .dropped_files
                .iter()
                .map(|f| f.path().to_path_buf())
                .collect()
        });
        if let Some(path) = dropped.into_iter().next() {
            let folder = if path.is_dir() {
                Some(path)
            } else {
                path.parent().map(Path::to_path_buf)
            };
            if let Some(folder) = folder {
                self.open_folder(ctx, folder);
            }
        }
    }

    fn handle_keys(&mut self, ctx: &egui::Context, columns: usize) {
        // The Enter that submits a text field (and takes its focus away) is not a grid key.
        if ctx.egui_wants_keyboard_input() || self.text_field_left {
            return;
        }
        if self.viewer.is_some() {
            return; // the viewer takes the keys while open
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
        if pressed(Key::Enter) {
            if let Some(selected) = self.gallery.selected {
                self.sort_by(selected);
            }
        }
        if pressed(Key::Space) {
            if let Some(selected) = self.gallery.selected {
                self.open_viewer(selected);
            }
        }
        if pressed(Key::Escape) && self.gallery.query.is_some() {
            self.back_to_folder_order();
        }
    }

    pub fn open_viewer(&mut self, index: usize) {
        if let Some(item) = self.gallery.items.get(index) {
            self.viewer = Some(Viewer::open(index, item.path.clone()));
        }
    }

    /// Drives a `--screenshot` run: select once indexed, let textures load, capture, save, quit.
    fn screenshot_step(&mut self, ctx: &egui::Context) {
        let Some(shot) = &mut self.screenshot else {
            return;
        };
        if !(self.job.is_none() && self.progress.is_some_and(|p| p.finished)) {
            return;
        }
        if !shot.selected {
            shot.selected = true;
            let wanted = shot.plan.select.clone();
            if let Some(name) = wanted {
                match self.gallery.items.iter().position(|i| i.name == name) {
                    Some(index) => self.sort_by(index),
                    None => eprintln!("--select: no image named {name} in the folder"),
                }
            }
            ctx.request_repaint();
            return;
        }
        let Some(shot) = &mut self.screenshot else {
            return;
        };
        if shot.settle_frames < 10 {
            shot.settle_frames += 1;
            ctx.request_repaint();
            return;
        }
        if !shot.requested {
            shot.requested = true;
            let slot = shot.image.clone();
            let wake = ctx.clone();
            ctx.request_screenshot(move |image| {
                if let Ok(mut slot) = slot.lock() {
                    *slot = Some(image);
                }
                wake.request_repaint();
            });
            return;
        }
        let image = shot.image.lock().ok().and_then(|mut s| s.take());
        if let Some(image) = image {
            let file = shot.plan.file.clone();
            match save_png(&image, &file) {
                Ok(()) => eprintln!("saved screenshot to {}", file.display()),
                Err(e) => eprintln!("error: cannot save screenshot to {}: {e}", file.display()),
            }
            if let Some((median, p99, worst)) = self.frame_times.summary() {
                eprintln!("frame times while indexing: median {median:.1} ms, p99 {p99:.1} ms, worst {worst:.1} ms");
            }
            ctx.send_viewport_cmd(egui::ViewportCommand::Close);
        } else {
            ctx.request_repaint_after(Duration::from_millis(50));
        }
    }

    fn toolbar_ui(&mut self, ui: &mut egui::Ui) {
        ui.horizontal_wrapped(|ui| {
            if ui.button("Open folder…").clicked() {
                self.pick_folder(ui.ctx());
            }
            let path_field = ui.add(
                egui::TextEdit::singleline(&mut self.path_input)
                    .hint_text("Type a folder path and press Enter")
                    .desired_width(320.0),
            );
            self.text_field_left = path_field.lost_focus();
            if path_field.lost_focus() && ui.input(|i| i.key_pressed(Key::Enter)) {
                let folder = PathBuf::from(self.path_input.trim());
                if folder.is_dir() {
                    self.open_folder(ui.ctx(), folder);
                } else {
                    self.status = format!("Not a folder: {}", folder.display());
                }
            }
            self.recent_ui(ui);
            ui.separator();
            super::models::model_picker_ui(self, ui);
            ui.separator();
            let mut filter = self.gallery.filter.clone();
            let filter_label = ui.label("Filter:");
            let filter_field = ui
                .add(
                    egui::TextEdit::singleline(&mut filter)
                        .hint_text("name or label")
                        .desired_width(160.0),
                )
                .labelled_by(filter_label.id);
            self.text_field_left |= filter_field.lost_focus();
            self.gallery.set_filter(filter);
            ui.add(egui::Slider::new(&mut self.settings.thumbnail_size, 64.0..=256.0).text("Size"));
            if self.gallery.query.is_some() && ui.button("Back to folder order").clicked() {
                self.back_to_folder_order();
            }
            let problems = self.problems.len();
            if problems > 0 && ui.button(format!("Problems ({problems})")).clicked() {
                self.show_problems = !self.show_problems;
            }
        });
    }

    fn recent_ui(&mut self, ui: &mut egui::Ui) {
        let mut chosen = None;
        ui.menu_button("Recent", |ui| {
            if self.settings.recent.is_empty() {
                ui.label("No recent folders");
            }
            for folder in &self.settings.recent {
                if ui.button(folder.to_string_lossy()).clicked() {
                    chosen = Some(folder.clone());
                    ui.close();
                }
            }
        });
        if let Some(folder) = chosen {
            self.open_folder(ui.ctx(), folder);
        }
    }

    fn status_ui(&mut self, ui: &mut egui::Ui) {
        ui.horizontal(|ui| {
            match self.progress {
                Some(p) if !p.finished && p.total > 0 => {
                    let fraction = p.done as f32 / p.total as f32;
                    let elapsed = p.started.elapsed().as_secs_f64();
                    let rate = p.done as f64 / elapsed.max(1e-3);
                    let left = if rate > 0.0 {
                        (p.total - p.done) as f64 / rate
                    } else {
                        f64::NAN
                    };
                    let text = format!(
                        "{}/{} · {rate:.1} img/s · {} left",
                        p.done,
                        p.total,
                        format_seconds(left)
                    );
                    ui.add(
                        egui::ProgressBar::new(fraction)
                            .text(text)
                            .desired_width(360.0),
                    );
                    if ui.button("Cancel").clicked() {
                        self.cancel_indexing();
                    }
                }
                Some(p) if !p.finished => {
                    ui.spinner();
                    ui.label("Scanning…");
                }
                _ => {}
            }
            ui.label(&self.status);
        });
    }

    fn problems_ui(&mut self, ui: &mut egui::Ui) {
        ui.horizontal(|ui| {
            ui.heading("Problems");
            if ui.button("Hide").clicked() {
                self.show_problems = false;
            }
        });
        egui::ScrollArea::vertical()
            .id_salt("problems")
            .max_height(160.0)
            .show(ui, |ui| {
                for (path, reason) in &self.problems {
                    ui.label(format!("{}: {reason}", path.display()));
                }
            });
    }

    fn empty_ui(&mut self, ui: &mut egui::Ui) {
        ui.vertical_centered(|ui| {
            ui.add_space(ui.available_height() / 3.0);
            ui.heading("Open a folder of images");
            ui.label("Use “Open folder…”, type a path above, or drop a folder on this window.");
            ui.label("Then click any image to sort everything by how much it looks like it.");
        });
    }
}

impl eframe::App for LookalikeApp {
    fn ui(&mut self, ui: &mut egui::Ui, _frame: &mut eframe::Frame) {
        let frame_start = Instant::now();
        let ctx = ui.ctx().clone();
        self.drain_messages();
        self.poll_picker(&ctx);
        self.handle_dropped_folders(&ctx);
        egui::Panel::top("toolbar").show(ui, |ui| self.toolbar_ui(ui));
        egui::Panel::bottom("status").show(ui, |ui| self.status_ui(ui));
        if self.show_problems && !self.problems.is_empty() {
            egui::Panel::bottom("problems")
                .resizable(true)
                .show(ui, |ui| self.problems_ui(ui));
        }
        let mut columns = 1;
        egui::CentralPanel::default().show(ui, |ui| {
            if self.folder.is_none() {
                self.empty_ui(ui);
            } else {
                columns = grid::grid_ui(self, ui);
            }
        });
        self.handle_keys(&ctx, columns);
        if let Some(viewer) = &mut self.viewer {
            let keep_open = viewer.ui(&ctx, &mut self.gallery);
            if !keep_open {
                self.viewer = None;
            }
        }
        super::models::model_dialog_ui(self, &ctx);
        self.screenshot_step(&ctx);
        if self.job.is_some() {
            self.frame_times
                .while_indexing
                .push(frame_start.elapsed().as_secs_f32() * 1000.0);
        }
        if self.picker.is_some() {
            ctx.request_repaint_after(Duration::from_millis(100));
        }
    }

    fn save(&mut self, storage: &mut dyn eframe::Storage) {
        eframe::set_value(storage, eframe::APP_KEY, &self.settings);
    }
}

/// Loads a model for the window (with thumbnails). Batches are small so that the images on
/// screen, which go first, show up soon after a scroll.
pub fn load_engine(kind: ModelKind, weights: Option<PathBuf>) -> Result<Arc<Engine>, String> {
    let options = EngineOptions {
        threads: worker_threads(),
        batch_size: 4,
        thumbnail_side: Some(crate::decode::THUMBNAIL_SIDE),
        weights,
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

fn format_seconds(seconds: f64) -> String {
    if !seconds.is_finite() {
        return "—".into();
    }
    let s = seconds.round() as u64;
    match s {
        0..=59 => format!("{s} s"),
        60..=3599 => format!("{} min {} s", s / 60, s % 60),
        _ => format!("{} h {} min", s / 3600, (s % 3600) / 60),
    }
}

fn save_png(image: &egui::ColorImage, file: &Path) -> Result<(), String> {
    let [w, h] = image.size;
    let rgba: Vec<u8> = image
        .pixels
        .iter()
        .flat_map(|c| c.to_srgba_unmultiplied())
        .collect();
    let buffer = image::RgbaImage::from_raw(w as u32, h as u32, rgba)
        .ok_or("screenshot has the wrong size")?;
    buffer
        .save_with_format(file, image::ImageFormat::Png)
        .map_err(|e| e.to_string())
}
