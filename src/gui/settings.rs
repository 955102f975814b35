//! What the app remembers between runs (eframe persistence): the last and recent folders, the
//! thumbnail size, the model and its precision. The window size is kept by eframe itself.

use std::path::{Path, PathBuf};

use crate::model::{ModelKind, Precision};

/// The app's remembered settings.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
#[serde(default)]
pub struct Settings {
    pub last_folder: Option<PathBuf>,
    pub recent: Vec<PathBuf>,
    pub thumbnail_size: f32,
    pub model: ModelKind,
    /// What the model computes in (auto: bf16 where the CPU has it).
    pub precision: Precision,
    /// A VGG16 weights file the user chose in the app.
    pub vgg16_weights: Option<PathBuf>,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            last_folder: None,
            recent: Vec::new(),
            thumbnail_size: 160.0,
            model: ModelKind::default(),
            precision: Precision::default(),
            vgg16_weights: None,
        }
    }
}

/// How many folders the Recent menu lists.
const RECENT_FOLDERS: usize = 10;

impl Settings {
    /// Makes `folder` the last one opened and the first of the recent ones.
    pub fn remember(&mut self, folder: &Path) {
        self.last_folder = Some(folder.to_path_buf());
        self.recent.retain(|f| f != folder);
        self.recent.insert(0, folder.to_path_buf());
        self.recent.truncate(RECENT_FOLDERS);
    }
}
