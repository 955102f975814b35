//! Hands a file to the desktop: open it with its default app, or show it in the file manager,
//! through the `opener` crate. A failure comes back as a sentence for the status bar.

use std::path::Path;

/// Opens a file with the desktop's default app.
pub fn open(path: &Path) -> Result<(), String> {
    opener::open(path).map_err(|e| format!("Could not open {}: {e}", path.display()))
}

/// Shows the file in the file manager, selected.
pub fn reveal(path: &Path) -> Result<(), String> {
    opener::reveal(path)
        .map_err(|e| format!("Could not show {} in the file manager: {e}", path.display()))
}
