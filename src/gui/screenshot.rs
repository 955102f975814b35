//! `lookalike FOLDER --screenshot FILE [--select NAME]`: open a folder, wait until it is
//! indexed, optionally click one image, let the thumbnails load, save the window as a PNG and
//! quit. For the README's pictures and for looking at the app on a machine with no screen.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use eframe::egui;

use super::indexing::FrameTimes;
use super::state::Gallery;

/// What a `--screenshot` run should capture.
#[derive(Debug, Clone)]
pub struct ScreenshotPlan {
    pub file: PathBuf,
    /// The file names of the images to search by first.
    pub select: Vec<String>,
    /// Show the Duplicates view.
    pub duplicates: bool,
}

/// What a `--screenshot` run asks the app to do once the folder is indexed.
pub struct ScreenshotSetup {
    /// Images to search by.
    pub select: Vec<usize>,
    pub duplicates: bool,
}

/// Frames to wait after sorting, for textures to load.
const SETTLE_FRAMES: u32 = 10;
/// Frames to wait at most for thumbnails read back from the index.
const MAX_SETTLE_FRAMES: u32 = 2000;

/// Where a `--screenshot` run is.
pub struct Screenshot {
    plan: ScreenshotPlan,
    selected: bool,
    settle_frames: u32,
    requested: bool,
    image: Arc<Mutex<Option<Arc<egui::ColorImage>>>>,
}

impl Screenshot {
    pub fn new(plan: ScreenshotPlan) -> Self {
        Screenshot {
            plan,
            selected: false,
            settle_frames: 0,
            requested: false,
            image: Default::default(),
        }
    }

    /// Moves the run along once the folder is `indexed`; returns, once, what to set up. The
    /// picture is taken once the tiles on screen have their thumbnails (`thumbnails_ready`)
    /// and a few frames have passed for their textures.
    pub fn step(
        &mut self,
        ctx: &egui::Context,
        indexed: bool,
        thumbnails_ready: bool,
        gallery: &Gallery,
        frame_times: &FrameTimes,
    ) -> Option<ScreenshotSetup> {
        if !indexed {
            return None;
        }
        if !self.selected {
            self.selected = true;
            ctx.request_repaint();
            return Some(ScreenshotSetup {
                select: self.images_to_select(gallery),
                duplicates: self.plan.duplicates,
            });
        }
        // The Duplicates view finds neighbours on a thread of its own: allow it time.
        let settle = if self.plan.duplicates {
            SETTLE_FRAMES * 4
        } else {
            SETTLE_FRAMES
        };
        // Waiting for thumbnails has its bound too: an index that stalls must not keep the
        // run open for good.
        let waiting = !thumbnails_ready && self.settle_frames < MAX_SETTLE_FRAMES;
        if self.settle_frames < settle || waiting {
            self.settle_frames += 1;
            ctx.request_repaint();
        } else if !self.requested {
            self.request(ctx);
        } else {
            self.save_when_ready(ctx, frame_times);
        }
        None
    }

    fn images_to_select(&self, gallery: &Gallery) -> Vec<usize> {
        let find = |name: &String| {
            let found = gallery.items.iter().position(|i| &i.name == name);
            if found.is_none() {
                eprintln!("--select: no image named {name} in the folder");
            }
            found
        };
        self.plan.select.iter().filter_map(find).collect()
    }

    fn request(&mut self, ctx: &egui::Context) {
        self.requested = true;
        let slot = self.image.clone();
        let wake = ctx.clone();
        ctx.request_screenshot(move |image| {
            if let Ok(mut slot) = slot.lock() {
                *slot = Some(image);
            }
            wake.request_repaint();
        });
    }

    fn save_when_ready(&mut self, ctx: &egui::Context, frame_times: &FrameTimes) {
        let image = self.image.lock().ok().and_then(|mut s| s.take());
        let Some(image) = image else {
            ctx.request_repaint_after(Duration::from_millis(50));
            return;
        };
        let file = &self.plan.file;
        match save_png(&image, file) {
            Ok(()) => eprintln!("saved screenshot to {}", file.display()),
            Err(e) => eprintln!("error: cannot save screenshot to {}: {e}", file.display()),
        }
        frame_times.report();
        ctx.send_viewport_cmd(egui::ViewportCommand::Close);
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
