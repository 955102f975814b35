//! Two look-alikes side by side at the same scale, so that a smaller or cropped copy looks
//! smaller, with their pixel sizes, file sizes and dates: what a person checks before choosing
//! which one to keep. The pictures are decoded off the UI thread, as the viewer does.
//!
//! When the photo level matched the two by their keypoints, the comparison shows why: each
//! picture's frame drawn where it lies on the other (the crop box, turned and mirrored as
//! the copy is), and lines between the keypoints that agree.

use eframe::egui;
use egui::{Color32, Key, Pos2, Rect, RichText, Stroke, Vec2};

use super::duplicates::format_date;
use super::state::Gallery;
use super::viewer::{load_in_background, overlay_ui, Picture};
use crate::duplicates::copies::CopyMatch;
use crate::duplicates::human_bytes;

/// Lines drawn between agreeing keypoints, at most: enough to show the match, few enough
/// to see the pictures.
const MATCH_LINES: usize = 40;

/// One side of the comparison.
struct Side {
    index: usize,
    picture: Picture,
}

/// The comparison overlay.
pub struct Compare {
    sides: [Side; 2],
    /// How the first picture maps onto the second, when their keypoints were matched.
    matched: Option<CopyMatch>,
}

impl Compare {
    /// Starts loading images `a` and `b` of the gallery; `matched` maps `a` onto `b`.
    pub fn open(
        ctx: &egui::Context,
        gallery: &Gallery,
        [a, b]: [usize; 2],
        matched: Option<CopyMatch>,
    ) -> Self {
        let side = |index: usize| {
            let path = gallery.items[index].path.clone();
            let loading = load_in_background(ctx, path);
            Side {
                index,
                picture: Picture::new(loading, format!("compare-{index}")),
            }
        };
        Compare {
            sides: [side(a), side(b)],
            matched,
        }
    }

    /// Draws the overlay; false once it should close.
    pub fn ui(&mut self, ctx: &egui::Context, gallery: &Gallery) -> bool {
        for side in &mut self.sides {
            side.picture.receive(ctx);
        }
        if ctx.input(|i| i.key_pressed(Key::Escape)) {
            return false;
        }
        let mut open = true;
        overlay_ui(ctx, "lookalike-compare", |ui| {
            ui.horizontal(|ui| {
                open = !ui.button("Close").clicked();
                let hint = "Side by side at the same scale · Esc: close";
                ui.label(RichText::new(hint).color(Color32::GRAY));
            });
            ui.label(RichText::new(match_summary(self.matched.as_ref())).color(Color32::WHITE));
            self.pictures_ui(ui, gallery);
        });
        open
    }

    fn pictures_ui(&self, ui: &mut egui::Ui, gallery: &Gallery) {
        let room = ui.available_size() - Vec2::new(24.0, 80.0);
        let sizes = self.sides.each_ref().map(|s| {
            let (w, h) = gallery.items[s.index].size.unwrap_or((1, 1));
            Vec2::new(w.max(1) as f32, h.max(1) as f32)
        });
        // One scale for both: the one at which both fit, each in half the width.
        let scale = sizes
            .iter()
            .map(|s| (room.x / 2.0 / s.x).min(room.y / s.y))
            .fold(f32::INFINITY, f32::min)
            .min(1.0);
        let mut shown = [None; 2];
        ui.horizontal_top(|ui| {
            for ((side, size), rect) in self.sides.iter().zip(sizes).zip(&mut shown) {
                ui.vertical(|ui| {
                    ui.set_width(room.x / 2.0);
                    *rect = side.ui(ui, gallery, size * scale);
                });
            }
        });
        if let (Some(matched), [Some(first), Some(second)]) = (&self.matched, shown) {
            draw_match(ui.painter(), matched, [first, second]);
        }
    }
}

/// One line on how the keypoints matched.
fn match_summary(matched: Option<&CopyMatch>) -> String {
    let Some(m) = matched else {
        return "No keypoints in common were found.".into();
    };
    let verdict = m.verdict();
    let mut parts = vec![format!("{} keypoints agree", verdict.inliers)];
    if m.mirrored {
        parts.push("mirrored".into());
    }
    let turn = m.mapping.turn().to_degrees().abs();
    if turn >= 1.0 {
        parts.push(format!("turned {turn:.0}°"));
    }
    let covered = verdict.inside[0].max(verdict.inside[1]);
    parts.push(format!(
        "{:.0} % of one lies inside the other",
        covered * 100.0
    ));
    let said = match verdict.is_copy() {
        true => "The same photo",
        false => "Not the same photo",
    };
    format!("{said}: {}.", parts.join(" · "))
}

/// Each picture's frame where it lies on the other, and lines between agreeing keypoints.
fn draw_match(painter: &egui::Painter, m: &CopyMatch, rects: [Rect; 2]) {
    let to_screen = |side: usize, (x, y): (f32, f32)| {
        let (w, h) = m.sizes[side];
        let rect = rects[side];
        Pos2::new(
            rect.left() + x / w * rect.width(),
            rect.top() + y / h * rect.height(),
        )
    };
    let frame = Stroke::new(2.0, Color32::from_rgb(255, 200, 0));
    let first_on_second: Vec<Pos2> = m
        .frame_in_second()
        .iter()
        .map(|&p| to_screen(1, p))
        .collect();
    let second_on_first: Vec<Pos2> = m
        .frame_of_second_in_first()
        .iter()
        .map(|&p| to_screen(0, p))
        .collect();
    // An outline larger than the picture it lies on is cut at the picture's edge.
    for (outline, on) in [(first_on_second, rects[1]), (second_on_first, rects[0])] {
        let clipped = painter.with_clip_rect(on.intersect(painter.clip_rect()));
        clipped.add(egui::Shape::closed_line(outline, frame));
    }
    let line = Stroke::new(1.0, Color32::from_rgba_unmultiplied(80, 220, 120, 170));
    let step = (m.inliers.len() / MATCH_LINES).max(1);
    for &(p, q) in m.inliers.iter().step_by(step) {
        let (from, to) = (to_screen(0, p), to_screen(1, q));
        painter.line_segment([from, to], line);
        painter.circle_filled(from, 2.0, line.color);
        painter.circle_filled(to, 2.0, line.color);
    }
}

impl Side {
    /// Draws the side; returns where its picture is, once it is loaded.
    fn ui(&self, ui: &mut egui::Ui, gallery: &Gallery, shown: Vec2) -> Option<Rect> {
        let item = &gallery.items[self.index];
        let (w, h) = item.size.unwrap_or((0, 0));
        let white = |text: String| RichText::new(text).color(Color32::WHITE);
        ui.label(white(item.name.clone()).strong());
        ui.label(white(format!(
            "{w}×{h} pixels · {}",
            human_bytes(item.bytes)
        )));
        ui.label(white(
            item.modified
                .map_or_else(|| "date unknown".into(), format_date),
        ));
        match (&self.picture.texture, &self.picture.error) {
            (Some(t), _) => {
                let image =
                    egui::Image::new((t.id(), shown)).alt_text(format!("{}, compared", item.name));
                return Some(ui.add(image).rect);
            }
            (None, Some(e)) => {
                ui.colored_label(Color32::LIGHT_RED, e);
            }
            (None, None) => {
                ui.label(white("Loading…".into()));
            }
        }
        None
    }
}
