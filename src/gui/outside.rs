//! Searching by a picture from outside the folder: a dropped image file or a picture pasted
//! from the clipboard. It is embedded on a thread of its own and never added to the index;
//! the folder and its index stay as they were.

use std::path::PathBuf;
use std::sync::mpsc::{channel, Receiver};
use std::sync::Arc;

use eframe::egui;

use super::state::OutsidePicture;
use crate::engine::Engine;

/// A picture on its way to becoming a search.
pub struct OutsideSearch {
    done: Receiver<Result<OutsidePicture, String>>,
}

impl OutsideSearch {
    /// Embeds an image file.
    pub fn file(ctx: &egui::Context, engine: Arc<Engine>, path: PathBuf) -> Self {
        Self::spawn(ctx, move || {
            let name = path.file_name().map_or_else(
                || path.to_string_lossy().into_owned(),
                |n| n.to_string_lossy().into_owned(),
            );
            let analysis = engine
                .analyse_file(&path)
                .map_err(|e| format!("Cannot search by {}: {}", path.display(), e.reason()))?;
            Ok(OutsidePicture {
                name,
                embedding: analysis.embedding,
                thumbnail: analysis.thumbnail,
            })
        })
    }

    /// Embeds the picture on the clipboard.
    pub fn clipboard(ctx: &egui::Context, engine: Arc<Engine>) -> Self {
        Self::spawn(ctx, move || {
            let rgb = clipboard_image()?;
            let analysis = engine
                .analyse_image(&rgb)
                .map_err(|e| format!("Cannot search by the pasted picture: {e}"))?;
            Ok(OutsidePicture {
                name: "pasted picture".into(),
                embedding: analysis.embedding,
                thumbnail: analysis.thumbnail,
            })
        })
    }

    fn spawn(
        ctx: &egui::Context,
        work: impl FnOnce() -> Result<OutsidePicture, String> + Send + 'static,
    ) -> Self {
        let (send, done) = channel();
        let wake = ctx.clone();
        let spawned = std::thread::Builder::new()
            .name("lookalike-outside-picture".into())
            .spawn(move || {
                let _ = send.send(work());
                wake.request_repaint();
            });
        if let Err(e) = spawned {
            let (send, failed) = channel();
            let _ = send.send(Err(format!("Cannot look at the picture: {e}")));
            return OutsideSearch { done: failed };
        }
        OutsideSearch { done }
    }

    /// The picture, or why not, once ready.
    pub fn poll(&self) -> Option<Result<OutsidePicture, String>> {
        match self.done.try_recv() {
            Ok(result) => Some(result),
            Err(std::sync::mpsc::TryRecvError::Empty) => None,
            Err(std::sync::mpsc::TryRecvError::Disconnected) => {
                Some(Err("The picture could not be looked at.".into()))
            }
        }
    }
}

/// The clipboard's picture as RGB.
fn clipboard_image() -> Result<image::RgbImage, String> {
    let none = |e: arboard::Error| format!("No picture on the clipboard ({e})");
    let data = arboard::Clipboard::new()
        .map_err(none)?
        .get_image()
        .map_err(none)?;
    let (w, h) = (data.width as u32, data.height as u32);
    let rgba = image::RgbaImage::from_raw(w, h, data.bytes.into_owned())
        .ok_or("The clipboard's picture has the wrong size")?;
    Ok(image::DynamicImage::ImageRgba8(rgba).to_rgb8())
}
