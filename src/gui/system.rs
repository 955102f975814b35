//! Hands a file to the desktop: open it with its default app, or show it in the file manager.
//! Failures are ignored on purpose: there is nothing more useful to do than not crash.

use std::path::Path;
use std::process::Command;

/// Opens a file with the desktop's default app.
pub fn open(path: &Path) {
    spawn_quietly(opener(), path);
}

/// Shows the file's folder in the file manager (selecting the file where the platform can).
pub fn reveal(path: &Path) {
    #[cfg(target_os = "macos")]
    let _ = Command::new("open").arg("-R").arg(path).spawn();
    #[cfg(target_os = "windows")]
    let _ = Command::new("explorer")
        .arg(format!("/select,{}", path.display()))
        .spawn();
    #[cfg(not(any(target_os = "macos", target_os = "windows")))]
    if let Some(folder) = path.parent() {
        spawn_quietly(opener(), folder);
    }
}

fn opener() -> &'static str {
    if cfg!(target_os = "macos") {
        "open"
    } else if cfg!(target_os = "windows") {
        "explorer"
    } else {
        "xdg-open"
    }
}

fn spawn_quietly(program: &str, arg: &Path) {
    let _ = Command::new(program)
        .arg(arg)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn();
}
