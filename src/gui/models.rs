//! The model picker, and what happens when VGG16's weights are not on this machine: a dialog
//! that asks before downloading about 553 MB (with a progress bar), or lets the user choose a
//! weights file they already have. A download whose thread dies ends in the "could not be
//! loaded" dialog with "Try again", never in a progress bar that waits for ever.

use std::path::PathBuf;
use std::sync::mpsc::{channel, Receiver, TryRecvError};
use std::sync::{Arc, Mutex};

use eframe::egui;

use crate::model::{bf16, download, vgg16_source, ModelKind, Precision};

/// The dialog shown while VGG16's weights are being sought.
pub enum ModelDialog {
    /// Asking whether to download or choose a file.
    Missing,
    Downloading {
        progress: Arc<Mutex<(u64, u64)>>,
        done: Receiver<Result<PathBuf, String>>,
    },
    ChoosingFile(Receiver<Option<PathBuf>>),
    Failed(String),
}

fn model_title(kind: ModelKind) -> &'static str {
    match kind {
        ModelKind::Lite0 => "EfficientNet-Lite0 (built in)",
        ModelKind::Vgg16 => "VGG16",
    }
}

/// The toolbar's model picker; returns the model the user chose, if it is another.
pub fn model_picker_ui(ui: &mut egui::Ui, current: ModelKind) -> Option<ModelKind> {
    let mut chosen = current;
    let label = ui.label("Model:");
    egui::ComboBox::from_id_salt("model-picker")
        .selected_text(model_title(current))
        .show_ui(ui, |ui| {
            for kind in [ModelKind::Lite0, ModelKind::Vgg16] {
                ui.selectable_value(&mut chosen, kind, model_title(kind));
            }
        })
        .response
        .labelled_by(label.id);
    (chosen != current).then_some(chosen)
}

/// The toolbar's precision picker: `chosen` is the setting, `running` what the model computes
/// in now. Returns the precision the user chose, if it is another. bf16 is offered only
/// where the CPU multiplies it natively.
pub fn precision_picker_ui(
    ui: &mut egui::Ui,
    chosen: Precision,
    running: Precision,
) -> Option<Precision> {
    let title = |p: Precision| match p {
        Precision::Auto => format!("Auto ({})", running.name()),
        other => other.name().to_string(),
    };
    let mut picked = chosen;
    let label = ui.label("Precision:");
    egui::ComboBox::from_id_salt("precision-picker")
        .selected_text(title(chosen))
        .show_ui(ui, |ui| {
            ui.selectable_value(&mut picked, Precision::Auto, title(Precision::Auto))
                .on_hover_text("bf16 where this CPU multiplies it natively, else f32");
            ui.add_enabled_ui(bf16::supported(), |ui| {
                ui.selectable_value(&mut picked, Precision::Bf16, "bf16")
                    .on_hover_text("About twice as fast; similarities within a hair of f32's")
                    .on_disabled_hover_text("This CPU has no native bf16 dot products");
            });
            ui.selectable_value(&mut picked, Precision::F32, "f32")
                .on_hover_text("Full single precision");
        })
        .response
        .on_hover_text("What the model computes in. The index serves both.")
        .labelled_by(label.id);
    (picked != chosen).then_some(picked)
}

/// What a frame of the dialog leads to.
pub struct DialogOutcome {
    /// The dialog to show next frame, if any.
    pub next: Option<ModelDialog>,
    /// VGG16's weights are here (downloaded or chosen): switch to it.
    pub use_vgg16: Option<PathBuf>,
}

impl ModelDialog {
    /// Draws the dialog and moves it along.
    pub fn ui(self, ctx: &egui::Context) -> DialogOutcome {
        let stay = |next| DialogOutcome {
            next: Some(next),
            use_vgg16: None,
        };
        let switch = |path| DialogOutcome {
            next: None,
            use_vgg16: Some(path),
        };
        match self {
            ModelDialog::Missing => DialogOutcome {
                next: missing_ui(ctx),
                use_vgg16: None,
            },
            ModelDialog::Downloading { progress, done } => match done.try_recv() {
                Ok(Ok(path)) => switch(path),
                Ok(Err(reason)) => stay(ModelDialog::Failed(reason)),
                Err(TryRecvError::Empty) => stay(downloading_ui(ctx, progress, done)),
                // The download's thread ended without a word: say so, and offer to try again.
                Err(TryRecvError::Disconnected) => stay(ModelDialog::Failed(
                    "the download stopped before it finished".into(),
                )),
            },
            ModelDialog::ChoosingFile(picked) => match picked.try_recv() {
                Ok(Some(path)) => switch(path),
                Ok(None) | Err(TryRecvError::Disconnected) => stay(ModelDialog::Missing),
                Err(TryRecvError::Empty) => {
                    ctx.request_repaint_after(std::time::Duration::from_millis(100));
                    stay(ModelDialog::ChoosingFile(picked))
                }
            },
            ModelDialog::Failed(reason) => DialogOutcome {
                next: failed_ui(ctx, reason),
                use_vgg16: None,
            },
        }
    }
}

/// What the user picked in the "weights missing" dialog.
enum Choice {
    Download,
    ChooseFile,
    Cancel,
}

fn missing_ui(ctx: &egui::Context) -> Option<ModelDialog> {
    let mut choice = None;
    egui::Modal::new(egui::Id::unique("vgg16-missing")).show(ctx, |ui| {
        ui.heading("VGG16 needs its weights");
        ui.label("They are not on this computer: model.safetensors from timm/vgg16.tv_in1k on huggingface.co, about 553 MB.");
        ui.label("Download them once, or choose the file if you already have it.");
        ui.horizontal(|ui| {
            if ui.button("Download (553 MB)").clicked() {
                choice = Some(Choice::Download);
            }
            if ui.button("Choose file…").clicked() {
                choice = Some(Choice::ChooseFile);
            }
            if ui.button("Cancel").clicked() {
                choice = Some(Choice::Cancel);
            }
        });
    });
    match choice {
        None => Some(ModelDialog::Missing),
        Some(Choice::Cancel) => None,
        Some(Choice::Download) => Some(start_download(ctx)),
        Some(Choice::ChooseFile) => Some(choose_file(ctx)),
    }
}

fn start_download(ctx: &egui::Context) -> ModelDialog {
    let progress = Arc::new(Mutex::new((0u64, 0u64)));
    let (send, done) = channel();
    let (report, wake) = (progress.clone(), ctx.clone());
    let spawned = std::thread::Builder::new()
        .name("lookalike-model-download".into())
        .spawn(move || {
            let result = download::fetch(&vgg16_source(), &mut |d, t| {
                if let Ok(mut p) = report.lock() {
                    *p = (d, t);
                }
                wake.request_repaint();
            });
            let _ = send.send(result.map_err(|e| e.to_string()));
            wake.request_repaint();
        });
    match spawned {
        Ok(_) => ModelDialog::Downloading { progress, done },
        Err(e) => ModelDialog::Failed(format!("cannot start the download: {e}")),
    }
}

fn choose_file(ctx: &egui::Context) -> ModelDialog {
    let (send, picked) = channel();
    let wake = ctx.clone();
    let spawned = std::thread::Builder::new()
        .name("lookalike-weights-picker".into())
        .spawn(move || {
            let file = rfd::FileDialog::new()
                .set_title("Choose VGG16 weights (model.safetensors)")
                .add_filter("safetensors", &["safetensors"])
                .pick_file();
            let _ = send.send(file);
            wake.request_repaint();
        });
    match spawned {
        Ok(_) => ModelDialog::ChoosingFile(picked),
        Err(e) => ModelDialog::Failed(format!("cannot show the file picker: {e}")),
    }
}

fn downloading_ui(
    ctx: &egui::Context,
    progress: Arc<Mutex<(u64, u64)>>,
    done: Receiver<Result<PathBuf, String>>,
) -> ModelDialog {
    let (bytes, total) = progress.lock().map(|p| *p).unwrap_or_default();
    egui::Modal::new(egui::Id::unique("vgg16-download")).show(ctx, |ui| {
        ui.heading("Downloading VGG16");
        let fraction = if total > 0 {
            bytes as f32 / total as f32
        } else {
            0.0
        };
        let text = format!("{:.0} / {:.0} MB", bytes as f64 / 1e6, total as f64 / 1e6);
        ui.add(
            egui::ProgressBar::new(fraction)
                .text(text)
                .desired_width(320.0),
        );
        ui.label("It goes into the Hugging Face cache; an interrupted download resumes next time.");
    });
    ModelDialog::Downloading { progress, done }
}

fn failed_ui(ctx: &egui::Context, reason: String) -> Option<ModelDialog> {
    let mut close = false;
    let mut retry = false;
    egui::Modal::new(egui::Id::unique("vgg16-failed")).show(ctx, |ui| {
        ui.heading("VGG16 could not be loaded");
        ui.label(&reason);
        ui.horizontal(|ui| {
            retry = ui.button("Try again").clicked();
            close = ui.button("Close").clicked();
        });
    });
    match (retry, close) {
        (true, _) => Some(ModelDialog::Missing),
        (_, true) => None,
        _ => Some(ModelDialog::Failed(reason)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use egui_kittest::kittest::Queryable;
    use egui_kittest::Harness;

    /// Regression: a download whose thread died left its progress bar on screen for good.
    #[test]
    fn a_download_that_dies_says_so_and_offers_to_try_again() {
        let (send, done) = channel::<Result<PathBuf, String>>();
        drop(send);
        let dialog = ModelDialog::Downloading {
            progress: Arc::new(Mutex::new((10, 100))),
            done,
        };
        let mut harness = Harness::new_ui_state(
            |ui, dialog: &mut Option<ModelDialog>| {
                if let Some(shown) = dialog.take() {
                    *dialog = shown.ui(ui.ctx()).next;
                }
            },
            Some(dialog),
        );
        harness.run();
        assert!(harness
            .query_by_label_contains("the download stopped before it finished")
            .is_some());
        assert!(matches!(harness.state(), Some(ModelDialog::Failed(_))));
        harness.get_by_label("Try again").click();
        harness.run();
        assert!(
            matches!(harness.state(), Some(ModelDialog::Missing)),
            "trying again offers the download again"
        );
        assert!(harness.query_by_label("Download (553 MB)").is_some());
    }
}
