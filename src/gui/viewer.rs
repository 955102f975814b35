//! The large viewer: one image fitted to the window, with left/right to step through the
//! current order and Esc to close. The full image is decoded off the UI thread.

use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{channel, Receiver};

use eframe::egui;
use egui::{Color32, Key, TextureHandle};

use super::state::Gallery;
use crate::decode::{decode_file_for, resize_rgb, SourceBox};

/// The most recent image the viewer was asked to show.
static LATEST_REQUEST: AtomicU64 = AtomicU64::new(0);

/// Longest side the viewer decodes to; larger photos are scaled down to this.
const VIEWER_SIDE: u32 = 2048;

pub struct Viewer {
    pub index: usize,
    picture: Picture,
    /// True on the frame the viewer opened, whose key presses (the Space that opened it)
    /// belong to the grid.
    just_opened: bool,
}

impl Viewer {
    pub fn open(index: usize, path: PathBuf) -> Self {
        let (send, receive) = channel();
        // Holding an arrow key opens image after image; a load that is no longer the latest
        // request by the time its thread runs is skipped, so large photos do not pile up.
        let request = LATEST_REQUEST.fetch_add(1, Ordering::SeqCst) + 1;
        let spawned = std::thread::Builder::new()
            .name("lookalike-viewer".into())
            .spawn(move || {
                if LATEST_REQUEST.load(Ordering::SeqCst) == request {
                    let _ = send.send(load(&path));
                }
            });
        let mut picture = Picture::new(receive, format!("viewer-{index}"));
        if let Err(e) = spawned {
            picture.fail(format!("cannot start loading: {e}"));
        }
        Viewer {
            index,
            picture,
            just_opened: true,
        }
    }

    /// Draws the viewer over the whole window; returns false once it should close.
    pub fn ui(&mut self, ctx: &egui::Context, gallery: &mut Gallery) -> bool {
        self.picture.receive(ctx);
        let keys_are_ours = !std::mem::take(&mut self.just_opened);
        if keys_are_ours && ctx.input(|i| i.key_pressed(Key::Escape) || i.key_pressed(Key::Space)) {
            return false;
        }
        for (key, step) in [(Key::ArrowRight, 1isize), (Key::ArrowLeft, -1)] {
            if keys_are_ours && ctx.input(|i| i.key_pressed(key)) {
                gallery.selected = Some(self.index);
                gallery.move_selection(step);
                if let Some(next) = gallery.selected.filter(|&n| n != self.index) {
                    if let Some(item) = gallery.items.get(next) {
                        *self = Viewer::open(next, item.path.clone());
                        self.just_opened = false;
                    }
                }
            }
        }
        let name = gallery
            .items
            .get(self.index)
            .map(|i| i.name.clone())
            .unwrap_or_default();
        let mut keep_open = true;
        overlay_ui(ctx, "lookalike-viewer", |ui| {
            ui.horizontal(|ui| {
                if ui.button("Close").clicked() {
                    keep_open = false;
                }
                ui.label(egui::RichText::new(&name).color(Color32::WHITE).strong());
                ui.label(
                    egui::RichText::new("Left/Right: previous/next · Esc: close")
                        .color(Color32::GRAY),
                );
            });
            self.picture_ui(ui, &name);
        });
        keep_open
    }

    /// The picture, fitted to the room left; or why it is not there yet.
    fn picture_ui(&self, ui: &mut egui::Ui, name: &str) {
        let room = ui.available_rect_before_wrap();
        match (&self.picture.texture, &self.picture.error) {
            (Some(texture), _) => {
                let size = fit_rect(texture.size_vec2(), room.size());
                let rect = egui::Rect::from_center_size(room.center(), size);
                ui.put(
                    rect,
                    egui::Image::new((texture.id(), size)).alt_text(format!("{name}, full size")),
                );
            }
            (None, Some(error)) => {
                ui.colored_label(Color32::LIGHT_RED, error);
            }
            (None, None) => {
                ui.label(egui::RichText::new("Loading…").color(Color32::WHITE));
            }
        }
    }
}

/// A picture being decoded for display, then its texture, or why it could not be loaded.
pub(super) struct Picture {
    pub texture: Option<TextureHandle>,
    pub error: Option<String>,
    loading: Option<Receiver<Result<egui::ColorImage, String>>>,
    /// The texture's name.
    name: String,
}

impl Picture {
    pub fn new(loading: Receiver<Result<egui::ColorImage, String>>, name: String) -> Self {
        Picture {
            texture: None,
            error: None,
            loading: Some(loading),
            name,
        }
    }

    fn fail(&mut self, reason: String) {
        self.error = Some(reason);
        self.loading = None;
    }

    /// Takes in the decoded picture when it has arrived.
    pub fn receive(&mut self, ctx: &egui::Context) {
        let Some(loading) = &self.loading else { return };
        match loading.try_recv() {
            Ok(Ok(image)) => {
                let name = std::mem::take(&mut self.name);
                self.texture = Some(ctx.load_texture(name, image, Default::default()));
                self.loading = None;
            }
            Ok(Err(e)) => self.fail(e),
            Err(std::sync::mpsc::TryRecvError::Empty) => {
                ctx.request_repaint_after(std::time::Duration::from_millis(30))
            }
            Err(std::sync::mpsc::TryRecvError::Disconnected) => {
                self.fail("the image could not be loaded".into())
            }
        }
    }
}

/// A dark layer over the whole window, for the viewer and the comparison.
pub(super) fn overlay_ui(ctx: &egui::Context, id: &str, contents: impl FnOnce(&mut egui::Ui)) {
    let screen = ctx.content_rect();
    egui::Area::new(egui::Id::unique(id))
        .fixed_pos(screen.min)
        .order(egui::Order::Foreground)
        .show(ctx, |ui| {
            ui.painter()
                .rect_filled(screen, 0.0, Color32::from_black_alpha(235));
            ui.set_min_size(screen.size());
            contents(ui);
        });
}

/// The largest size with `image`'s aspect ratio that fits inside `room`.
fn fit_rect(image: egui::Vec2, room: egui::Vec2) -> egui::Vec2 {
    let scale = (room.x / image.x.max(1.0)).min(room.y / image.y.max(1.0));
    image * scale
}

/// Decodes `path` for display on a thread of its own; the picture (or why not) arrives on the
/// receiver. Should the thread not start, the receiver says so by disconnecting.
pub(super) fn load_in_background(
    ctx: &egui::Context,
    path: PathBuf,
) -> Receiver<Result<egui::ColorImage, String>> {
    let (send, receive) = channel();
    let wake = ctx.clone();
    let _ = std::thread::Builder::new()
        .name("lookalike-loader".into())
        .spawn(move || {
            let _ = send.send(load(&path));
            wake.request_repaint();
        });
    receive
}

fn load(path: &std::path::Path) -> Result<egui::ColorImage, String> {
    // Asking for the longest side as the shorter one is more than needed, but it lets a huge
    // JPEG decode at reduced size without knowing its shape first.
    let rgb = decode_file_for(path, VIEWER_SIDE)
        .map_err(|e| e.to_string())?
        .rgb;
    let (w, h) = (rgb.width(), rgb.height());
    let scale = (VIEWER_SIDE as f64 / w.max(h) as f64).min(1.0);
    let (sw, sh) = (
        ((w as f64 * scale) as u32).max(1),
        ((h as f64 * scale) as u32).max(1),
    );
    let pixels = resize_rgb(&rgb, SourceBox::whole(&rgb), sw, sh).map_err(|e| e.to_string())?;
    Ok(egui::ColorImage::from_rgb(
        [sw as usize, sh as usize],
        &pixels,
    ))
}
