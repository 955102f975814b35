//! The Duplicates view, beside the grid: groups of look-alikes as rows of thumbnails, a
//! slider from "same photo" to "same subject" that regroups at once, a histogram of every
//! image's best-match score with the threshold on it, a side-by-side comparison, and "Move
//! marked to trash" after a confirmation. The view only proposes: the app moves the files.
//!
//! The neighbours of every analysed image are found once, on a background thread, down to the
//! loosest threshold the slider allows; moving the slider then only regroups (see
//! [`crate::duplicates`]). A new search starts when more images have been analysed.

use std::collections::{HashMap, HashSet};
use std::sync::mpsc::{channel, Receiver};
use std::time::SystemTime;

use eframe::egui;
use egui::{Color32, RichText, Sense, TextureHandle, Vec2};

use super::compare::Compare;
use super::histogram::Histogram;
use super::state::{Gallery, Item};
use super::texture_for;
use crate::duplicates::pixels::PixelMatches;
use crate::duplicates::{
    groups_confirmed, human_bytes, FileFacts, Group, Level, Neighbours, NEIGHBOURS_PER_IMAGE, SLACK,
};
use crate::index::mtime_ns;

/// The slider's ends: a little looser than "same subject", a little stricter than "same photo".
const LOOSEST: f32 = 0.35;
const STRICTEST: f32 = 0.98;
const THUMB: f32 = 120.0;
/// Histogram bins over the cosine range 0..1.
const BINS: usize = 50;

/// What the user asked for in the view.
#[derive(Debug, Clone, PartialEq)]
pub enum DuplicatesAction {
    /// Move these images to the trash, as (gallery index, group number); the user has
    /// confirmed.
    MoveToTrash(Vec<(usize, usize)>),
}

/// The neighbours of the images analysed when the search started.
struct Found {
    neighbours: Neighbours,
    /// Pixel matches of the pairs at or above the photo level's threshold.
    pixels: PixelMatches,
    /// Gallery index of each row of `neighbours`.
    items: Vec<usize>,
    /// How many images were analysed then.
    analysed: usize,
}

/// The view's state.
pub struct DuplicatesView {
    threshold: f32,
    /// Pairs must also match by their pixels (the photo level).
    check_pixels: bool,
    found: Option<Found>,
    searching: Option<Receiver<Found>>,
    groups: Vec<Group>,
    /// The threshold and pixel check the groups were made with.
    grouped_at: Option<(f32, bool)>,
    /// Images whose mark the user flipped (keep ↔ remove).
    toggled: HashSet<usize>,
    textures: HashMap<usize, TextureHandle>,
    compare: Option<Compare>,
    /// Images (and their group numbers) waiting for the user to confirm the move to the trash.
    confirm: Option<Vec<(usize, usize)>>,
}

impl Default for DuplicatesView {
    fn default() -> Self {
        DuplicatesView {
            threshold: Level::Photo.threshold(),
            check_pixels: Level::Photo.checks_pixels(),
            found: None,
            searching: None,
            groups: Vec::new(),
            grouped_at: None,
            toggled: HashSet::new(),
            textures: HashMap::new(),
            compare: None,
            confirm: None,
        }
    }
}

impl DuplicatesView {
    /// Draws the view; returns what the user asked for.
    pub fn ui(&mut self, ui: &mut egui::Ui, gallery: &Gallery) -> Vec<DuplicatesAction> {
        self.update(ui.ctx(), gallery);
        let mut actions = Vec::new();
        self.controls_ui(ui, gallery);
        self.histogram_ui(ui);
        ui.separator();
        self.groups_ui(ui, gallery);
        if let Some(compare) = &mut self.compare {
            if !compare.ui(ui.ctx(), gallery) {
                self.compare = None;
            }
        }
        actions.extend(self.confirm_ui(ui.ctx(), gallery));
        actions
    }

    /// Forgets everything about the images (another folder, or files moved away).
    pub fn reset(&mut self) {
        let (threshold, check_pixels) = (self.threshold, self.check_pixels);
        *self = DuplicatesView {
            threshold,
            check_pixels,
            ..Default::default()
        };
    }

    /// The gallery was renumbered (the folder changed): the groups are found again, and the
    /// marks the user flipped follow their files.
    pub fn renumber(&mut self, follow: &dyn Fn(usize) -> Option<usize>) {
        let toggled = self.toggled.iter().filter_map(|&i| follow(i)).collect();
        self.reset();
        self.toggled = toggled;
    }

    /// Regroups on the next frame: images have left the gallery.
    pub fn images_changed(&mut self) {
        self.grouped_at = None;
    }

    /// Starts a search when there are new vectors, takes in a finished one, and regroups when
    /// the threshold moved.
    fn update(&mut self, ctx: &egui::Context, gallery: &Gallery) {
        if let Some(found) = self.searching.as_ref().and_then(|r| r.try_recv().ok()) {
            self.found = Some(found);
            self.searching = None;
            self.grouped_at = None;
        }
        let analysed = gallery.analysed();
        let stale = self.found.as_ref().is_none_or(|f| f.analysed != analysed);
        if stale && self.searching.is_none() && analysed > 0 {
            self.searching = Some(search(ctx, gallery));
        }
        if self.searching.is_some() {
            ctx.request_repaint_after(std::time::Duration::from_millis(50));
        }
        if self.grouped_at != Some((self.threshold, self.check_pixels)) {
            self.regroup(gallery);
        }
    }

    fn regroup(&mut self, gallery: &Gallery) {
        self.grouped_at = Some((self.threshold, self.check_pixels));
        let Some(found) = &self.found else {
            self.groups.clear();
            return;
        };
        let facts: Vec<FileFacts> = found
            .items
            .iter()
            .map(|&i| facts_of(&gallery.items[i]))
            .collect();
        let confirm = |a: usize, b: usize| !self.check_pixels || found.pixels.confirms(a, b);
        self.groups = groups_confirmed(&found.neighbours, self.threshold, &facts, &confirm)
            .into_iter()
            .map(|g| Group {
                members: g.members.iter().map(|&row| found.items[row]).collect(),
                scores: g.scores,
            })
            .filter(|g| g.members.iter().all(|&i| !gallery.items[i].removed))
            .collect();
    }

    /// Whether image `index` of `group` is marked for the trash.
    fn marked(&self, group: &Group, index: usize) -> bool {
        (index != group.keeper()) != self.toggled.contains(&index)
    }

    /// Every image marked for the trash, with its group number, in group order.
    fn marked_images(&self) -> Vec<(usize, usize)> {
        let mut marked = Vec::new();
        for (number, group) in self.groups.iter().enumerate() {
            let members = group.members.iter().filter(|&&m| self.marked(group, m));
            marked.extend(members.map(|&m| (m, number + 1)));
        }
        marked
    }

    fn controls_ui(&mut self, ui: &mut egui::Ui, gallery: &Gallery) {
        ui.horizontal_wrapped(|ui| {
            for (level, title) in [
                (Level::Photo, "Same photo"),
                (Level::Scene, "Same scene"),
                (Level::Subject, "Same subject"),
            ] {
                let on = (self.threshold - level.threshold()).abs() < 1e-4
                    && self.check_pixels == level.checks_pixels();
                if ui.selectable_label(on, title).clicked() {
                    self.threshold = level.threshold();
                    self.check_pixels = level.checks_pixels();
                }
            }
            let label = ui.label("Strictness:");
            ui.add(
                egui::Slider::new(&mut self.threshold, LOOSEST..=STRICTEST)
                    .fixed_decimals(2)
                    .text("same subject … same photo"),
            )
            .labelled_by(label.id);
            ui.checkbox(&mut self.check_pixels, "Same pixels")
                .on_hover_text(
                    "Also compare the pictures' layouts: only edited copies of one photo group",
                );
            ui.separator();
            ui.label(self.summary(gallery));
            let marked = self.marked_images();
            let move_button = ui.add_enabled(
                !marked.is_empty(),
                egui::Button::new(format!("Move marked to trash ({})", marked.len())),
            );
            if move_button.clicked() {
                self.confirm = Some(marked);
            }
        });
    }

    /// "3 groups, 8 pictures · 5 marked (12.4 MB)", or what is being done.
    fn summary(&self, gallery: &Gallery) -> String {
        if self.found.is_none() {
            return match self.searching {
                Some(_) => "Looking for look-alikes…".into(),
                None => "No analysed images yet.".into(),
            };
        }
        let pictures: usize = self.groups.iter().map(|g| g.members.len()).sum();
        let marked = self.marked_images();
        let bytes: u64 = marked.iter().map(|&(i, _)| gallery.items[i].bytes).sum();
        let searching = if self.searching.is_some() {
            " · updating…"
        } else {
            ""
        };
        format!(
            "{} groups, {pictures} pictures · {} marked ({}){searching}",
            self.groups.len(),
            marked.len(),
            human_bytes(bytes)
        )
    }

    /// Every image's best-match score, with the threshold drawn on it; a click or drag on the
    /// chart moves the threshold.
    fn histogram_ui(&mut self, ui: &mut egui::Ui) {
        let Some(found) = &self.found else { return };
        let chart = Histogram {
            id: "best-match-histogram",
            range: (0.0, 1.0),
            bins: BINS,
            height: 90.0,
            label: Some("each image's best match"),
        };
        let best = found.neighbours.best_matches().into_iter().flatten();
        if let Some(x) = chart.ui(ui, best, self.threshold) {
            self.threshold = x.clamp(LOOSEST, STRICTEST);
        }
    }

    fn groups_ui(&mut self, ui: &mut egui::Ui, gallery: &Gallery) {
        if self.found.is_some() && self.groups.is_empty() {
            ui.label("No look-alikes at this strictness.");
            return;
        }
        let row_height = THUMB + 5.0 * ui.text_style_height(&egui::TextStyle::Body) + 24.0;
        let groups = std::mem::take(&mut self.groups);
        let mut clicks = Vec::new();
        egui::ScrollArea::vertical()
            .id_salt("duplicate-groups")
            .auto_shrink([false, false])
            .show_rows(ui, row_height, groups.len(), |ui, range| {
                let wanted: Vec<usize> = groups[range.clone()]
                    .iter()
                    .flat_map(|g| g.members.iter().copied())
                    .collect();
                self.load_textures(ui.ctx(), gallery, &wanted);
                for number in range {
                    clicks.extend(self.group_ui(ui, gallery, &groups[number], number + 1));
                }
            });
        self.groups = groups;
        for click in clicks {
            match click {
                TileClick::Toggle(i) => {
                    if !self.toggled.remove(&i) {
                        self.toggled.insert(i);
                    }
                }
                TileClick::Compare(a, b) => {
                    self.compare = Some(Compare::open(ui.ctx(), gallery, a, b));
                }
            }
        }
    }

    fn group_ui(
        &self,
        ui: &mut egui::Ui,
        gallery: &Gallery,
        group: &Group,
        number: usize,
    ) -> Vec<TileClick> {
        let mut clicks = Vec::new();
        ui.strong(format!("Group {number} · {} pictures", group.members.len()));
        ui.horizontal(|ui| {
            for (&member, &score) in group.members.iter().zip(&group.scores) {
                let tile = Tile {
                    item: &gallery.items[member],
                    index: member,
                    score,
                    keeper: member == group.keeper(),
                    marked: self.marked(group, member),
                };
                clicks.extend(tile.ui(ui, self.textures.get(&member), group.keeper()));
            }
        });
        ui.separator();
        clicks
    }

    /// Textures for `wanted`, made a few per frame; all others are freed.
    fn load_textures(&mut self, ctx: &egui::Context, gallery: &Gallery, wanted: &[usize]) {
        let keep: HashSet<usize> = wanted.iter().copied().collect();
        self.textures.retain(|i, _| keep.contains(i));
        let missing: Vec<usize> = (wanted.iter().copied())
            .filter(|i| !self.textures.contains_key(i))
            .take(24)
            .collect();
        for index in missing {
            let item = &gallery.items[index];
            let texture = (item.thumbnail.as_ref())
                .and_then(|t| texture_for(ctx, &format!("dup-{index}"), t));
            if let Some(texture) = texture {
                self.textures.insert(index, texture);
            }
        }
    }

    fn confirm_ui(&mut self, ctx: &egui::Context, gallery: &Gallery) -> Option<DuplicatesAction> {
        let files = self.confirm.take()?;
        let bytes: u64 = files.iter().map(|&(i, _)| gallery.items[i].bytes).sum();
        let (mut go, mut cancel) = (false, false);
        egui::Modal::new(egui::Id::unique("confirm-trash")).show(ctx, |ui| {
            let noun = if files.len() == 1 { "file" } else { "files" };
            ui.heading(format!(
                "Move {} {noun} ({}) to the trash?",
                files.len(),
                human_bytes(bytes)
            ));
            ui.label("They can be restored from the system's trash. Nothing is deleted for good.");
            ui.horizontal(|ui| {
                go = ui.button("Move to trash").clicked();
                cancel = ui.button("Cancel").clicked();
            });
        });
        match (go, cancel) {
            (true, _) => {
                self.toggled.retain(|i| !files.iter().any(|f| f.0 == *i));
                Some(DuplicatesAction::MoveToTrash(files))
            }
            (_, true) => None,
            _ => {
                self.confirm = Some(files);
                None
            }
        }
    }
}

/// Finds the neighbours of every analysed image on a background thread.
fn search(ctx: &egui::Context, gallery: &Gallery) -> Receiver<Found> {
    let mut items = Vec::new();
    let mut vectors = Vec::new();
    let mut thumbnails = Vec::new();
    for (i, item) in gallery.items.iter().enumerate() {
        if let (Some(v), false) = (&item.embedding, item.removed) {
            items.push(i);
            vectors.extend_from_slice(v);
            thumbnails.push(item.thumbnail.clone());
        }
    }
    let dim = vectors.len() / items.len().max(1);
    let analysed = gallery.analysed();
    let (send, receive) = channel();
    let wake = ctx.clone();
    let spawned = std::thread::Builder::new()
        .name("lookalike-duplicates".into())
        .spawn(move || {
            let neighbours = Neighbours::find(&vectors, dim, LOOSEST - SLACK, NEIGHBOURS_PER_IMAGE);
            let picture = |row: usize| thumbnails[row].as_ref()?.to_rgb().ok();
            let pixels = PixelMatches::find(&neighbours, Level::Photo.threshold(), &picture);
            let _ = send.send(Found {
                neighbours,
                pixels,
                items,
                analysed,
            });
            wake.request_repaint();
        });
    if let Err(e) = spawned {
        // Nothing to wait for: the receiver reports no result and the search is tried again.
        eprintln!("cannot start looking for duplicates: {e}");
    }
    receive
}

fn facts_of(item: &Item) -> FileFacts {
    let (w, h) = item.size.unwrap_or((0, 0));
    FileFacts {
        pixels: u64::from(w) * u64::from(h),
        bytes: item.bytes,
        modified_ns: mtime_ns(item.modified),
    }
}

/// What a click on a tile asks for.
enum TileClick {
    Toggle(usize),
    /// Compare the first image with the second (the keeper).
    Compare(usize, usize),
}

/// One member of a group.
struct Tile<'a> {
    item: &'a Item,
    index: usize,
    score: f32,
    keeper: bool,
    marked: bool,
}

impl Tile<'_> {
    fn ui(
        &self,
        ui: &mut egui::Ui,
        texture: Option<&TextureHandle>,
        keeper: usize,
    ) -> Vec<TileClick> {
        let mut clicks = Vec::new();
        ui.vertical(|ui| {
            ui.set_width(THUMB + 16.0);
            let response = match texture {
                Some(t) => {
                    let size = super::grid::fit(t.size_vec2(), THUMB);
                    let image = egui::Image::new((t.id(), size))
                        .alt_text(&self.item.name)
                        .sense(Sense::click());
                    ui.add_sized(Vec2::splat(THUMB), image)
                }
                None => ui.add_sized(Vec2::splat(THUMB), egui::Label::new("…")),
            };
            if response.on_hover_text("Click to keep or remove").clicked() {
                clicks.push(TileClick::Toggle(self.index));
            }
            self.captions_ui(ui);
            if !self.keeper && ui.small_button("Compare with kept").clicked() {
                clicks.push(TileClick::Compare(self.index, keeper));
            }
        });
        clicks
    }

    fn captions_ui(&self, ui: &mut egui::Ui) {
        let item = self.item;
        ui.add(egui::Label::new(RichText::new(&item.name).strong()).truncate());
        let (w, h) = item.size.unwrap_or((0, 0));
        ui.label(format!("{w}×{h} · {}", human_bytes(item.bytes)));
        ui.label(
            item.modified
                .map_or_else(|| "date unknown".into(), format_date),
        );
        match self.keeper {
            true => ui.label("kept image"),
            false => ui.label(format!("similarity {:.3}", self.score)),
        };
        match self.marked {
            true => ui.colored_label(ui.visuals().error_fg_color, "remove"),
            false => ui.colored_label(Color32::from_rgb(90, 180, 90), "keep"),
        };
    }
}

/// "2026-11-30 14:05" (UTC).
pub fn format_date(time: SystemTime) -> String {
    let seconds = mtime_ns(Some(time)).div_euclid(1_000_000_000);
    let (days, of_day) = (seconds.div_euclid(86_400), seconds.rem_euclid(86_400));
    // Days since 1970-01-01 to a civil date (Howard Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02} {:02}:{:02}",
        of_day / 3600,
        of_day % 3600 / 60
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_read_as_people_write_them() {
        let t = SystemTime::UNIX_EPOCH + std::time::Duration::from_secs(1_764_511_500);
        assert_eq!(format_date(t), "2025-11-30 14:05");
        assert_eq!(format_date(SystemTime::UNIX_EPOCH), "1970-01-01 00:00");
    }
}
