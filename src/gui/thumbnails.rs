//! Thumbnails read back from the index, off the UI thread, for the images that the grid, the
//! Duplicates view or the query bar ask for again after the gallery let go of them (see
//! [`Gallery::thumbnail`]). One read at a time, a few hundred thumbnails each, in one query.

use std::path::{Path, PathBuf};
use std::sync::mpsc::{channel, Receiver, TryRecvError};

use eframe::egui;

use super::state::Gallery;
use crate::decode::Thumbnail;
use crate::index::CacheLocation;

/// Thumbnails asked for in one read.
const READ_AT_ONCE: usize = 300;

/// What one read brought back: for the gallery of `generation`, each item with its
/// thumbnail, or `None` where the index holds none.
struct Read {
    generation: u64,
    thumbnails: Vec<(usize, Option<Thumbnail>)>,
}

/// The read in flight, if any.
#[derive(Default)]
pub struct ThumbnailReader {
    reading: Option<Receiver<Read>>,
}

impl ThumbnailReader {
    /// A read is in flight.
    pub fn is_reading(&self) -> bool {
        self.reading.is_some()
    }

    /// Hands what a finished read brought to `gallery`, and starts the next read when
    /// thumbnails are wanted. Without an index (`folder` is the open folder) nothing is read:
    /// the gallery then keeps every thumbnail it was given.
    pub fn update(
        &mut self,
        ctx: &egui::Context,
        gallery: &mut Gallery,
        cache: &CacheLocation,
        folder: Option<&Path>,
    ) {
        if let Some(reading) = &self.reading {
            match reading.try_recv() {
                Ok(read) => {
                    for (index, thumbnail) in read.thumbnails {
                        match thumbnail {
                            Some(t) => gallery.hold_thumbnail(index, t, read.generation),
                            None => gallery.no_thumbnail(index, read.generation),
                        }
                    }
                    ctx.request_repaint();
                }
                Err(TryRecvError::Empty) => return,
                Err(TryRecvError::Disconnected) => {}
            }
            self.reading = None;
        }
        let Some(folder) = folder.filter(|_| !matches!(cache, CacheLocation::Disabled)) else {
            return;
        };
        let (wanted, generation) = gallery.take_wanted_thumbnails(READ_AT_ONCE);
        if wanted.is_empty() {
            return;
        }
        let (send, receive) = channel();
        let (cache, folder, wake) = (cache.clone(), folder.to_path_buf(), ctx.clone());
        let started = std::thread::Builder::new()
            .name("lookalike-thumbnails".into())
            .spawn(move || {
                let thumbnails = read_back(&cache, &folder, wanted);
                let _ = send.send(Read {
                    generation,
                    thumbnails,
                });
                wake.request_repaint();
            });
        if started.is_ok() {
            self.reading = Some(receive);
        }
    }
}

/// Each wanted item with the thumbnail the index keeps for its file; `None` for all when the
/// index cannot be read (said on stderr: the tiles stay grey, nothing else is lost).
fn read_back(
    cache: &CacheLocation,
    folder: &Path,
    wanted: Vec<(usize, PathBuf)>,
) -> Vec<(usize, Option<Thumbnail>)> {
    // The index knows files by their canonical paths, as the indexer stored them.
    let keys: Vec<PathBuf> = (wanted.iter())
        .map(|(_, p)| std::fs::canonicalize(p).unwrap_or_else(|_| p.clone()))
        .collect();
    let refs: Vec<&Path> = keys.iter().map(PathBuf::as_path).collect();
    let read = cache
        .open(folder)
        .and_then(|index| match index {
            Some(mut index) => index.thumbnails(&refs),
            None => Ok(vec![None; refs.len()]),
        })
        .unwrap_or_else(|e| {
            eprintln!("thumbnails could not be read back from the index: {e}");
            vec![None; refs.len()]
        });
    wanted.into_iter().map(|(i, _)| i).zip(read).collect()
}
