//! The desktop app (eframe/egui). The only part of lookalike that knows about a user
//! interface: it drives the engine through the same library API as the command line.

mod about;
mod app;
mod compare;
mod duplicates;
mod grid;
mod histogram;
mod indexing;
mod models;
mod outside;
mod querybar;
mod screenshot;
mod settings;
pub mod state;
mod status;
mod system;
mod thumbnails;
mod toolbar;
mod trash;
mod viewer;
mod watch;
pub mod worker;

use eframe::egui;

pub use app::{load_engine, LookalikeApp, Startup};
pub use indexing::Progress;
pub use screenshot::ScreenshotPlan;
pub use settings::Settings;
pub use trash::log_path as trash_log_path;
pub use trash::{move_to_trash, GroupMarks, TrashOutcome, TrashRequest};

use crate::decode::Thumbnail;

/// The app's icon, also used for the window.
pub const ICON_PNG: &[u8] = include_bytes!("../../assets/icon.png");

/// Opens the window and returns when it is closed.
pub fn run(start: Startup) -> eframe::Result {
    let mut viewport = egui::ViewportBuilder::default()
        .with_title("lookalike")
        .with_app_id("lookalike")
        .with_inner_size([1200.0, 800.0])
        .with_min_inner_size([480.0, 320.0])
        .with_drag_and_drop(true);
    if let Ok(icon) = eframe::icon_data::from_png_bytes(ICON_PNG) {
        viewport = viewport.with_icon(icon);
    }
    let options = eframe::NativeOptions {
        viewport,
        // Cheaper than wgpu where frames are drawn in software (see Cargo.toml).
        renderer: eframe::Renderer::Glow,
        ..Default::default()
    };
    eframe::run_native(
        "lookalike",
        options,
        Box::new(move |cc| Ok(Box::new(LookalikeApp::new(cc, start)))),
    )
}

/// A texture from a JPEG thumbnail, or None if the bytes do not decode.
fn texture_for(
    ctx: &egui::Context,
    name: &str,
    thumbnail: &Thumbnail,
) -> Option<egui::TextureHandle> {
    let rgb = thumbnail.to_rgb().ok()?;
    let image =
        egui::ColorImage::from_rgb([rgb.width() as usize, rgb.height() as usize], rgb.as_raw());
    Some(ctx.load_texture(name, image, egui::TextureOptions::LINEAR))
}
