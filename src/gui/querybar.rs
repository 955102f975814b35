//! The query bar above the grid, shown while a search is on or images are picked: the
//! examples as chips (a small thumbnail, green for "look like", red for "look unlike", × to
//! take one out), "Find similar to N selected", and the score cut-off: a histogram of the
//! current scores with the threshold on it (a click or drag on the chart moves it), a "Hide
//! below" switch and a count of the images above.

use std::collections::HashMap;

use eframe::egui;
use egui::{Color32, RichText, Stroke, TextureHandle};

use super::grid::{NEGATIVE, POSITIVE};
use super::histogram::Histogram;
use super::state::{ExampleSource, Gallery};
use super::texture_for;

/// What the user asked for in the bar.
#[derive(Debug, Clone, PartialEq)]
pub enum QueryAction {
    RemoveExample(usize),
    SearchPicked,
    ClearPicked,
    /// Hide images below this score (None: show all).
    SetCutoff(Option<f32>),
}

/// Histogram bins over the score range shown.
const BINS: usize = 40;
const CHIP: f32 = 28.0;

/// The bar's own state: chip textures and the threshold.
pub struct QueryBar {
    textures: HashMap<String, TextureHandle>,
    threshold: f32,
    hide_below: bool,
}

impl Default for QueryBar {
    fn default() -> Self {
        QueryBar {
            textures: HashMap::new(),
            threshold: 0.5,
            hide_below: false,
        }
    }
}

impl QueryBar {
    /// Whether the bar has anything to show.
    pub fn wanted(gallery: &Gallery) -> bool {
        gallery.is_searching() || !gallery.picked.is_empty()
    }

    pub fn ui(&mut self, ui: &mut egui::Ui, gallery: &Gallery) -> Vec<QueryAction> {
        let mut actions = Vec::new();
        if !gallery.picked.is_empty() {
            ui.horizontal(|ui| {
                let n = gallery.picked.len();
                if ui.button(format!("Find similar to {n} selected")).clicked() {
                    actions.push(QueryAction::SearchPicked);
                }
                if ui.button("Clear selection").clicked() {
                    actions.push(QueryAction::ClearPicked);
                }
                ui.weak("Ctrl+click picks images, Shift+click a range; Enter searches.");
            });
        }
        if gallery.is_searching() {
            ui.horizontal_wrapped(|ui| {
                ui.label("Search:");
                actions.extend(self.chips_ui(ui, gallery));
            });
            actions.extend(self.cutoff_ui(ui, gallery));
        }
        actions
    }

    fn chips_ui(&mut self, ui: &mut egui::Ui, gallery: &Gallery) -> Vec<QueryAction> {
        let mut actions = Vec::new();
        let mut used = Vec::new();
        for (at, example) in gallery.examples().iter().enumerate() {
            let (key, name, thumbnail) = match &example.source {
                ExampleSource::Item(i) => {
                    let item = &gallery.items[*i];
                    (
                        format!("chip-{i}"),
                        item.name.clone(),
                        gallery.thumbnail(*i),
                    )
                }
                ExampleSource::Outside(p) => (
                    format!("chip-outside-{at}-{}", p.name),
                    p.name.clone(),
                    p.thumbnail.as_ref(),
                ),
            };
            if !self.textures.contains_key(&key) {
                if let Some(t) = thumbnail.and_then(|t| texture_for(ui.ctx(), &key, t)) {
                    self.textures.insert(key.clone(), t);
                }
            }
            let colour = if example.positive { POSITIVE } else { NEGATIVE };
            let sign = if example.positive { "like" } else { "unlike" };
            egui::Frame::new()
                .stroke(Stroke::new(2.0, colour))
                .corner_radius(6.0)
                .inner_margin(3.0)
                .show(ui, |ui| {
                    ui.horizontal(|ui| {
                        // Painted, not a widget: the label beside it names the chip.
                        if let Some(t) = self.textures.get(&key) {
                            let size = super::grid::fit(t.size_vec2(), CHIP);
                            let (rect, _) = ui.allocate_exact_size(size, egui::Sense::hover());
                            let uv = egui::Rect::from_min_max(
                                egui::pos2(0.0, 0.0),
                                egui::pos2(1.0, 1.0),
                            );
                            ui.painter().image(t.id(), rect, uv, Color32::WHITE);
                        }
                        ui.label(RichText::new(format!("{sign} {name}")).color(colour));
                        let remove = ui
                            .small_button("×")
                            .on_hover_text(format!("Take {name} out of the search"));
                        if remove.clicked() {
                            actions.push(QueryAction::RemoveExample(at));
                        }
                    });
                });
            used.push(key);
        }
        self.textures.retain(|k, _| used.contains(k));
        actions
    }

    fn cutoff_ui(&mut self, ui: &mut egui::Ui, gallery: &Gallery) -> Vec<QueryAction> {
        let before = (self.threshold, self.hide_below);
        ui.horizontal(|ui| {
            let label = ui.label("Cut-off:");
            ui.add(egui::Slider::new(&mut self.threshold, -0.5..=1.0).fixed_decimals(2))
                .labelled_by(label.id);
            ui.checkbox(&mut self.hide_below, "Hide below");
            let (above, scored) = gallery.count_above(self.threshold);
            ui.label(format!(
                "{} of {} above {:.2}",
                thousands(above),
                thousands(scored),
                self.threshold
            ));
        });
        self.histogram_ui(ui, gallery);
        if (self.threshold, self.hide_below) == before
            && (gallery.cutoff.is_some() == self.hide_below)
        {
            return Vec::new();
        }
        vec![QueryAction::SetCutoff(
            self.hide_below.then_some(self.threshold),
        )]
    }

    fn histogram_ui(&mut self, ui: &mut egui::Ui, gallery: &Gallery) {
        let chart = Histogram {
            id: "score-histogram",
            range: (-0.5, 1.0),
            bins: BINS,
            height: 70.0,
            label: None,
        };
        let scores = gallery.scores.iter().flatten().copied();
        if let Some(x) = chart.ui(ui, scores, self.threshold) {
            self.threshold = x;
        }
    }
}

/// "5,310".
fn thousands(n: usize) -> String {
    let digits = n.to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

#[cfg(test)]
mod tests {
    #[test]
    fn counts_read_with_thousands_separators() {
        assert_eq!(super::thousands(5310), "5,310");
        assert_eq!(super::thousands(42), "42");
        assert_eq!(super::thousands(1_000_000), "1,000,000");
    }
}
