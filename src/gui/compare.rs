//! Two look-alikes side by side at the same scale, so that a smaller or cropped copy looks
//! smaller, with their pixel sizes, file sizes and dates: what a person checks before choosing
//! which one to keep. The pictures are decoded off the UI thread, as the viewer does.

use std::sync::mpsc::Receiver;

use eframe::egui;
use egui::{Color32, Key, RichText, TextureHandle, Vec2};

use super::duplicates::format_date;
use super::state::Gallery;
use super::viewer::load_in_background;
use crate::duplicates::human_bytes;

/// One side of the comparison.
struct Side {
    index: usize,
    texture: Option<TextureHandle>,
    loading: Option<Receiver<Result<egui::ColorImage, String>>>,
    error: Option<String>,
}

/// The comparison overlay.
pub struct Compare {
    sides: [Side; 2],
}

impl Compare {
    /// Starts loading images `a` and `b` of the gallery.
    pub fn open(ctx: &egui::Context, gallery: &Gallery, a: usize, b: usize) -> Self {
        let side = |index: usize| {
            let path = gallery.items[index].path.clone();
            Side {
                index,
                texture: None,
                loading: Some(load_in_background(ctx, path)),
                error: None,
            }
        };
        Compare {
            sides: [side(a), side(b)],
        }
    }

    /// Draws the overlay; false once it should close.
    pub fn ui(&mut self, ctx: &egui::Context, gallery: &Gallery) -> bool {
        for side in &mut self.sides {
            side.receive(ctx);
        }
        if ctx.input(|i| i.key_pressed(Key::Escape)) {
            return false;
        }
        let mut open = true;
        let screen = ctx.content_rect();
        egui::Area::new(egui::Id::unique("lookalike-compare"))
            .fixed_pos(screen.min)
            .order(egui::Order::Foreground)
            .show(ctx, |ui| {
                ui.painter()
                    .rect_filled(screen, 0.0, Color32::from_black_alpha(235));
                ui.set_min_size(screen.size());
                ui.horizontal(|ui| {
                    open = !ui.button("Close").clicked();
                    ui.label(
                        RichText::new("Side by side at the same scale · Esc: close")
                            .color(Color32::GRAY),
                    );
                });
                self.pictures_ui(ui, gallery);
            });
        open
    }

    fn pictures_ui(&self, ui: &mut egui::Ui, gallery: &Gallery) {
        let room = ui.available_size() - Vec2::new(24.0, 80.0);
        let sizes = self.sides.each_ref().map(|s| {
            let (w, h) = gallery.items[s.index].size.unwrap_or((1, 1));
            Vec2::new(w.max(1) as f32, h.max(1) as f32)
        });
        // One scale for both: the one at which both fit, each in half the width.
        let scale = sizes
            .iter()
            .map(|s| (room.x / 2.0 / s.x).min(room.y / s.y))
            .fold(f32::INFINITY, f32::min)
            .min(1.0);
        ui.horizontal_top(|ui| {
            for (side, size) in self.sides.iter().zip(sizes) {
                ui.vertical(|ui| {
                    ui.set_width(room.x / 2.0);
                    side.ui(ui, gallery, size * scale);
                });
            }
        });
    }
}

impl Side {
    fn receive(&mut self, ctx: &egui::Context) {
        let Some(loading) = &self.loading else { return };
        match loading.try_recv() {
            Ok(Ok(image)) => {
                let name = format!("compare-{}", self.index);
                self.texture = Some(ctx.load_texture(name, image, Default::default()));
                self.loading = None;
            }
            Ok(Err(e)) => {
                self.error = Some(e);
                self.loading = None;
            }
            Err(std::sync::mpsc::TryRecvError::Empty) => {
                ctx.request_repaint_after(std::time::Duration::from_millis(30));
            }
            Err(std::sync::mpsc::TryRecvError::Disconnected) => {
                self.error = Some("the image could not be loaded".into());
                self.loading = None;
            }
        }
    }

    fn ui(&self, ui: &mut egui::Ui, gallery: &Gallery, shown: Vec2) {
        let item = &gallery.items[self.index];
        let (w, h) = item.size.unwrap_or((0, 0));
        let white = |text: String| RichText::new(text).color(Color32::WHITE);
        ui.label(white(item.name.clone()).strong());
        ui.label(white(format!(
            "{w}×{h} pixels · {}",
            human_bytes(item.bytes)
        )));
        ui.label(white(
            item.modified
                .map_or_else(|| "date unknown".into(), format_date),
        ));
        match (&self.texture, &self.error) {
            (Some(t), _) => {
                ui.add(
                    egui::Image::new((t.id(), shown)).alt_text(format!("{}, compared", item.name)),
                );
            }
            (None, Some(e)) => {
                ui.colored_label(Color32::LIGHT_RED, e);
            }
            (None, None) => {
                ui.label(white("Loading…".into()));
            }
        }
    }
}
