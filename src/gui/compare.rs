//! Two look-alikes side by side at the same scale, so that a smaller or cropped copy looks
//! smaller, with their pixel sizes, file sizes and dates: what a person checks before choosing
//! which one to keep. The pictures are decoded off the UI thread, as the viewer does.

use eframe::egui;
use egui::{Color32, Key, RichText, Vec2};

use super::duplicates::format_date;
use super::state::Gallery;
use super::viewer::{load_in_background, overlay_ui, Picture};
use crate::duplicates::human_bytes;

/// One side of the comparison.
struct Side {
    index: usize,
    picture: Picture,
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
            let loading = load_in_background(ctx, path);
            Side {
                index,
                picture: Picture::new(loading, format!("compare-{index}")),
            }
        };
        Compare {
            sides: [side(a), side(b)],
        }
    }

    /// Draws the overlay; false once it should close.
    pub fn ui(&mut self, ctx: &egui::Context, gallery: &Gallery) -> bool {
        for side in &mut self.sides {
            side.picture.receive(ctx);
        }
        if ctx.input(|i| i.key_pressed(Key::Escape)) {
            return false;
        }
        let mut open = true;
        overlay_ui(ctx, "lookalike-compare", |ui| {
            ui.horizontal(|ui| {
                open = !ui.button("Close").clicked();
                let hint = "Side by side at the same scale · Esc: close";
                ui.label(RichText::new(hint).color(Color32::GRAY));
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
        match (&self.picture.texture, &self.picture.error) {
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
