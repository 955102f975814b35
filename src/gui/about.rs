//! The About dialog: the same facts as `lookalike --version` (see [`crate::about`]) for the
//! model in use and the index the window works with.

use eframe::egui;

use crate::model::{ModelKind, Precision};

/// Draws the dialog; returns false once the user closed it.
pub fn about_ui(ctx: &egui::Context, model: ModelKind, precision: Precision, index: &str) -> bool {
    let mut open = true;
    let mut close = false;
    egui::Window::new("About lookalike")
        .open(&mut open)
        .collapsible(false)
        .resizable(false)
        .anchor(egui::Align2::CENTER_CENTER, egui::Vec2::ZERO)
        .show(ctx, |ui| {
            ui.label("Browse a folder of pictures sorted by visual similarity.");
            ui.add_space(6.0);
            egui::Grid::new("about-facts")
                .num_columns(2)
                .spacing([12.0, 4.0])
                .show(ui, |ui| {
                    for (label, value) in crate::about::lines(model, precision, index) {
                        ui.strong(label);
                        ui.label(value);
                        ui.end_row();
                    }
                });
            ui.add_space(6.0);
            close = ui.button("Close").clicked();
        });
    open && !close
}
