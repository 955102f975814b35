//! The panels around the grid that only report: the status bar with indexing progress, the
//! problems list, and the page shown before a folder is open. Each draws what it is given and
//! returns what the user asked for.

use eframe::egui;

use super::indexing::{Problems, Progress};

/// Draws the progress and the status line; true when the user asked to cancel indexing.
pub fn status_ui(ui: &mut egui::Ui, progress: Option<Progress>, status: &str) -> bool {
    let mut cancel = false;
    ui.horizontal(|ui| {
        match progress {
            Some(p) if !p.finished && p.total > 0 => {
                ui.add(
                    egui::ProgressBar::new(p.done as f32 / p.total as f32)
                        .text(progress_text(&p))
                        .desired_width(360.0),
                );
                cancel = ui.button("Cancel").clicked();
            }
            Some(p) if !p.finished => {
                ui.spinner();
                ui.label("Scanning…");
            }
            _ => {}
        }
        ui.label(status);
    });
    cancel
}

/// "120/5310 · 41.2 img/s · 2 min 5 s left".
fn progress_text(p: &Progress) -> String {
    let elapsed = p.started.elapsed().as_secs_f64();
    let rate = p.done as f64 / elapsed.max(1e-3);
    let left = match rate > 0.0 {
        true => (p.total - p.done.min(p.total)) as f64 / rate,
        false => f64::NAN,
    };
    format!(
        "{}/{} · {rate:.1} img/s · {} left",
        p.done,
        p.total,
        format_seconds(left)
    )
}

/// Draws the problems list; true when the user asked to hide it.
pub fn problems_ui(ui: &mut egui::Ui, problems: &Problems) -> bool {
    let mut hide = false;
    ui.horizontal(|ui| {
        ui.heading("Problems");
        hide = ui.button("Hide").clicked();
    });
    egui::ScrollArea::vertical()
        .id_salt("problems")
        .max_height(160.0)
        .show(ui, |ui| {
            for (path, reason) in problems {
                match path.as_os_str().is_empty() {
                    true => ui.label(reason),
                    false => ui.label(format!("{}: {reason}", path.display())),
                };
            }
        });
    hide
}

/// What the window shows before a folder is open.
pub fn empty_ui(ui: &mut egui::Ui) {
    ui.vertical_centered(|ui| {
        ui.add_space(ui.available_height() / 3.0);
        ui.heading("Open a folder of images");
        ui.label("Use “Open folder…”, type a path above, or drop a folder on this window.");
        ui.label("Then click any image to sort everything by how much it looks like it.");
    });
}

fn format_seconds(seconds: f64) -> String {
    if !seconds.is_finite() {
        return "—".into();
    }
    let s = seconds.round() as u64;
    match s {
        0..=59 => format!("{s} s"),
        60..=3599 => format!("{} min {} s", s / 60, s % 60),
        _ => format!("{} h {} min", s / 3600, (s % 3600) / 60),
    }
}
