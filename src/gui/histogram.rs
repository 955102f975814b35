//! A histogram of scores with a threshold line on it (egui_plot), shared by the query bar's
//! cut-off and the Duplicates view: it shows where the gap between close and far lies, and a
//! click or drag on it moves the threshold there.

use eframe::egui;
use egui::Color32;

/// What to draw.
pub struct Histogram<'a> {
    pub id: &'a str,
    /// The x range; scores outside it fall into the end bins.
    pub range: (f32, f32),
    pub bins: usize,
    pub height: f32,
    pub label: Option<&'a str>,
}

impl Histogram<'_> {
    /// Draws `scores` and `threshold`; returns the score the user pressed on, if any.
    pub fn ui(
        &self,
        ui: &mut egui::Ui,
        scores: impl Iterator<Item = f32>,
        threshold: f32,
    ) -> Option<f32> {
        let (low, high) = self.range;
        let bins = self.bins.max(1);
        let width = (high - low) / bins as f32;
        let mut counts = vec![0usize; bins];
        for s in scores {
            let bin = ((s - low) / width).clamp(0.0, (bins - 1) as f32) as usize;
            counts[bin] += 1;
        }
        let bars: Vec<egui_plot::Bar> = (counts.iter().enumerate())
            .map(|(bin, &n)| {
                let centre = low + (bin as f32 + 0.5) * width;
                egui_plot::Bar::new(f64::from(centre), n as f64).width(f64::from(width))
            })
            .collect();
        let mut plot = egui_plot::Plot::new(self.id)
            .height(self.height)
            .allow_drag(false)
            .allow_zoom(false)
            .allow_scroll(false)
            .allow_boxed_zoom(false)
            .allow_double_click_reset(false)
            .include_x(f64::from(low))
            .include_x(f64::from(high))
            .include_y(0.0);
        if let Some(label) = self.label {
            plot = plot.x_axis_label(label);
        }
        let line = f64::from(threshold);
        let pressed = plot.show(ui, move |plot| {
            plot.bar_chart(egui_plot::BarChart::new("scores", bars));
            plot.vline(egui_plot::VLine::new("threshold", line).color(Color32::RED));
            let down = plot.response().is_pointer_button_down_on();
            plot.pointer_coordinate().filter(|_| down).map(|p| p.x)
        });
        pressed.inner.map(|x| (x as f32).clamp(low, high))
    }
}
