//! The toolbar: open a folder (picker, typed path, recent list), choose the model, filter,
//! size the thumbnails, go back to folder order, show the problems. It owns only the text the
//! user is typing; everything else it is handed, and what the user asks for comes back as
//! [`ToolbarAction`]s.

use std::path::PathBuf;

use eframe::egui;
use egui::Key;

use super::models::{model_picker_ui, precision_picker_ui};
use crate::model::{ModelKind, Precision};

/// What the user asked for in the toolbar.
#[derive(Debug, Clone, PartialEq)]
pub enum ToolbarAction {
    PickFolder,
    OpenFolder(PathBuf),
    /// A typed path that is not a folder.
    NotAFolder(PathBuf),
    SwitchModel(ModelKind),
    SetPrecision(Precision),
    SetFilter(String),
    BackToFolderOrder,
    ToggleProblems,
    /// Show the Duplicates view (true) or the grid.
    ShowDuplicates(bool),
    /// Look at the folder again for new, changed and removed files (F5).
    Rescan,
    /// Show the About dialog.
    About,
}

/// What the toolbar shows, borrowed from the app for one frame.
pub struct ToolbarView<'a> {
    pub recent: &'a [PathBuf],
    pub model: ModelKind,
    /// The precision chosen, and the one the model runs in.
    pub precision: (Precision, Precision),
    pub filter: &'a str,
    pub thumbnail_size: &'a mut f32,
    /// The grid is sorted by similarity.
    pub sorted: bool,
    pub problems: usize,
    /// The Duplicates view is showing.
    pub duplicates: bool,
    /// A folder is open.
    pub folder_open: bool,
}

/// The toolbar's own state.
#[derive(Default)]
pub struct Toolbar {
    /// The folder path being typed.
    pub path_input: String,
    /// A text field lost focus this frame: its Enter must not reach the grid.
    pub text_field_left: bool,
}

impl Toolbar {
    pub fn ui(&mut self, ui: &mut egui::Ui, view: ToolbarView<'_>) -> Vec<ToolbarAction> {
        let mut actions = Vec::new();
        ui.horizontal_wrapped(|ui| {
            if ui.button("Open folder…").clicked() {
                actions.push(ToolbarAction::PickFolder);
            }
            actions.extend(self.path_field_ui(ui));
            actions.extend(recent_ui(ui, view.recent).map(ToolbarAction::OpenFolder));
            ui.separator();
            actions.extend(model_picker_ui(ui, view.model).map(ToolbarAction::SwitchModel));
            let (chosen, running) = view.precision;
            actions
                .extend(precision_picker_ui(ui, chosen, running).map(ToolbarAction::SetPrecision));
            ui.separator();
            actions.extend(
                self.filter_ui(ui, view.filter)
                    .map(ToolbarAction::SetFilter),
            );
            ui.add(egui::Slider::new(view.thumbnail_size, 64.0..=256.0).text("Size"));
            let rescan = ui.add_enabled(view.folder_open, egui::Button::new("Rescan"));
            if rescan
                .on_hover_text("Look for new, changed and removed files (F5)")
                .clicked()
            {
                actions.push(ToolbarAction::Rescan);
            }
            if ui.selectable_label(view.duplicates, "Duplicates").clicked() {
                actions.push(ToolbarAction::ShowDuplicates(!view.duplicates));
            }
            if view.sorted && ui.button("Back to folder order").clicked() {
                actions.push(ToolbarAction::BackToFolderOrder);
            }
            let problems = view.problems;
            if problems > 0 && ui.button(format!("Problems ({problems})")).clicked() {
                actions.push(ToolbarAction::ToggleProblems);
            }
            if ui.button("About").clicked() {
                actions.push(ToolbarAction::About);
            }
        });
        actions
    }

    /// The typed folder path; Enter opens it.
    fn path_field_ui(&mut self, ui: &mut egui::Ui) -> Option<ToolbarAction> {
        let field = ui.add(
            egui::TextEdit::singleline(&mut self.path_input)
                .hint_text("Type a folder path and press Enter")
                .desired_width(320.0),
        );
        self.text_field_left = field.lost_focus();
        if !(field.lost_focus() && ui.input(|i| i.key_pressed(Key::Enter))) {
            return None;
        }
        let folder = PathBuf::from(self.path_input.trim());
        Some(match folder.is_dir() {
            true => ToolbarAction::OpenFolder(folder),
            false => ToolbarAction::NotAFolder(folder),
        })
    }

    /// The filter field; returns the new filter when it changed.
    fn filter_ui(&mut self, ui: &mut egui::Ui, current: &str) -> Option<String> {
        let mut filter = current.to_string();
        let label = ui.label("Filter:");
        let field = ui
            .add(
                egui::TextEdit::singleline(&mut filter)
                    .hint_text("name or label")
                    .desired_width(160.0),
            )
            .labelled_by(label.id);
        self.text_field_left |= field.lost_focus();
        (filter != current).then_some(filter)
    }
}

/// The Recent menu; returns the folder chosen.
fn recent_ui(ui: &mut egui::Ui, recent: &[PathBuf]) -> Option<PathBuf> {
    let mut chosen = None;
    ui.menu_button("Recent", |ui| {
        if recent.is_empty() {
            ui.label("No recent folders");
        }
        for folder in recent {
            if ui.button(folder.to_string_lossy()).clicked() {
                chosen = Some(folder.clone());
                ui.close();
            }
        }
    });
    chosen
}
