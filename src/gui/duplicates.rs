//! The Duplicates view, beside the grid: groups of look-alikes as rows of thumbnails, a
//! slider from "same photo" to "same subject" that regroups at once, a histogram of every
//! image's best-match score with the threshold on it, a side-by-side comparison, and "Move
//! marked to trash" after a confirmation. The view only proposes: the app moves the files.
//!
//! The neighbours of every analysed image are found once, on a background thread, down to the
//! loosest threshold the slider allows; moving the slider then only regroups (see
//! [`crate::duplicates`]). A new search starts when more images have been analysed. A search
//! whose thread died is said so, with a Retry, rather than awaited for ever.
//!
//! Each picture's mark (keep or remove) is stored for that file, not as a change to the
//! proposal: groups change with the slider and the level, and so do their proposed keepers,
//! and a mark that meant "keep" must not come to mean "remove". A picture gets the proposal
//! when it first shows in a group, and keeps its mark from then on. A group always keeps at
//! least one picture: the view will not take the last keep away, and the trash checks again.

use std::collections::{HashMap, HashSet};
use std::path::PathBuf;
use std::sync::mpsc::{channel, Receiver, TryRecvError};
use std::sync::Arc;
use std::time::SystemTime;

use eframe::egui;
use egui::{Color32, RichText, Sense, TextureHandle, Vec2};

use super::compare::Compare;
use super::histogram::Histogram;
use super::state::{Gallery, Item};
use super::texture_for;
use super::trash::{GroupMarks, TrashRequest};
use crate::duplicates::copies::{self, CopyFeatures, CopyMatch, CopyMatches};
use crate::duplicates::{
    groups_confirmed, human_bytes, FileFacts, Group, Level, Neighbours, NEIGHBOURS_PER_IMAGE, SLACK,
};
use crate::index::{mtime_ns, read_back_thumbnails, CacheLocation};

/// The slider's ends: a little looser than "same subject", a little stricter than "same photo".
const LOOSEST: f32 = 0.35;
const STRICTEST: f32 = 0.98;
const THUMB: f32 = 120.0;
/// Histogram bins over the cosine range 0..1.
const BINS: usize = 50;

/// What the user asked for in the view.
#[derive(Debug, Clone, PartialEq)]
pub enum DuplicatesAction {
    /// Move the images marked for removal to the trash; the user has confirmed.
    MoveToTrash(TrashRequest),
}

/// What the user wants done with one picture of a group.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mark {
    Keep,
    Remove,
}

/// The neighbours of the images analysed when the search started.
struct Found {
    neighbours: Neighbours,
    /// Copy verdicts of the pairs at or above the photo level's threshold.
    copies: CopyMatches,
    /// The keypoints of the images those pairs hold, by row, for Compare to show.
    features: Vec<Option<Arc<CopyFeatures>>>,
    /// Gallery index of each row of `neighbours`.
    items: Vec<usize>,
    /// How many images were analysed then.
    analysed: usize,
}

/// The view's state.
pub struct DuplicatesView {
    threshold: f32,
    /// Pairs must also match by their keypoints (the photo level).
    check_copies: bool,
    found: Option<Found>,
    searching: Option<Receiver<Found>>,
    /// Why the last search did not finish; a new one starts only when the user retries.
    failed: Option<String>,
    groups: Vec<Group>,
    /// The threshold and copy check the groups were made with.
    grouped_at: Option<(f32, bool)>,
    /// Each grouped image's mark, by gallery index.
    marks: HashMap<usize, Mark>,
    /// Why the last click on a tile changed nothing.
    note: Option<String>,
    textures: HashMap<usize, TextureHandle>,
    compare: Option<Compare>,
    /// The marks waiting for the user to confirm the move to the trash.
    confirm: Option<TrashRequest>,
}

impl Default for DuplicatesView {
    fn default() -> Self {
        DuplicatesView {
            threshold: Level::Photo.threshold(),
            check_copies: Level::Photo.checks_copies(),
            found: None,
            searching: None,
            failed: None,
            groups: Vec::new(),
            grouped_at: None,
            marks: HashMap::new(),
            note: None,
            textures: HashMap::new(),
            compare: None,
            confirm: None,
        }
    }
}

impl DuplicatesView {
    /// Draws the view; returns what the user asked for.
    /// `index` is where the open folder's index lives, which keeps the keypoints that the
    /// photo level makes, so that the next search reads them instead.
    pub fn ui(
        &mut self,
        ui: &mut egui::Ui,
        gallery: &Gallery,
        index: &KeptIn,
    ) -> Vec<DuplicatesAction> {
        self.update(ui.ctx(), gallery, index);
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
        let (threshold, check_copies) = (self.threshold, self.check_copies);
        *self = DuplicatesView {
            threshold,
            check_copies,
            ..Default::default()
        };
    }

    /// The gallery was renumbered (the folder changed): the groups are found again, and the
    /// marks follow their files.
    pub fn renumber(&mut self, follow: &dyn Fn(usize) -> Option<usize>) {
        let marks = (self.marks.iter())
            .filter_map(|(&i, &mark)| Some((follow(i)?, mark)))
            .collect();
        self.reset();
        self.marks = marks;
    }

    /// Regroups on the next frame: images have left the gallery.
    pub fn images_changed(&mut self) {
        self.grouped_at = None;
    }

    /// Starts a search when there are new vectors, takes in a finished one, and regroups when
    /// the threshold moved.
    fn update(&mut self, ctx: &egui::Context, gallery: &Gallery, index: &KeptIn) {
        self.take_search_result();
        let analysed = gallery.analysed();
        let stale = self.found.as_ref().is_none_or(|f| f.analysed != analysed);
        if stale && self.searching.is_none() && self.failed.is_none() && analysed > 0 {
            match search(ctx, gallery, index.clone()) {
                Ok(receiver) => self.searching = Some(receiver),
                Err(reason) => self.failed = Some(reason),
            }
        }
        if self.searching.is_some() {
            ctx.request_repaint_after(std::time::Duration::from_millis(50));
        }
        if self.grouped_at != Some((self.threshold, self.check_copies)) {
            self.regroup(gallery);
        }
    }

    /// Takes in a finished search; notices one whose thread ended without a result.
    fn take_search_result(&mut self) {
        let Some(receiver) = &self.searching else {
            return;
        };
        match receiver.try_recv() {
            Ok(found) => {
                self.found = Some(found);
                self.grouped_at = None;
            }
            Err(TryRecvError::Empty) => return,
            Err(TryRecvError::Disconnected) => {
                self.failed = Some("the search stopped before it finished".into());
            }
        }
        self.searching = None;
    }

    fn regroup(&mut self, gallery: &Gallery) {
        self.grouped_at = Some((self.threshold, self.check_copies));
        let Some(found) = &self.found else {
            self.groups.clear();
            return;
        };
        let facts: Vec<FileFacts> = found
            .items
            .iter()
            .map(|&i| facts_of(&gallery.items[i]))
            .collect();
        let confirm = |a: usize, b: usize| !self.check_copies || found.copies.confirms(a, b);
        self.groups = groups_confirmed(&found.neighbours, self.threshold, &facts, &confirm)
            .into_iter()
            .map(|g| Group {
                members: g.members.iter().map(|&row| found.items[row]).collect(),
                scores: g.scores,
            })
            .filter(|g| g.members.iter().all(|&i| !gallery.items[i].removed))
            .collect();
        self.settle_marks();
    }

    /// Gives each newly grouped picture the proposal (the keeper kept, the others removed),
    /// and keeps the proposed keeper of any group that would keep nothing.
    fn settle_marks(&mut self) {
        for (number, group) in self.groups.iter().enumerate() {
            for &member in &group.members {
                let proposed = match member == group.keeper() {
                    true => Mark::Keep,
                    false => Mark::Remove,
                };
                self.marks.entry(member).or_insert(proposed);
            }
            if !group.members.iter().any(|m| self.marks[m] == Mark::Keep) {
                self.marks.insert(group.keeper(), Mark::Keep);
                self.note = Some(format!(
                    "Group {} had no picture marked keep: its best copy is kept",
                    number + 1
                ));
            }
        }
    }

    /// Whether image `index` is marked for the trash.
    fn marked(&self, index: usize) -> bool {
        self.marks.get(&index) == Some(&Mark::Remove)
    }

    /// Flips the mark of image `index`, unless that would leave its group with nothing kept.
    fn flip(&mut self, index: usize) {
        let Some(number) = self.groups.iter().position(|g| g.members.contains(&index)) else {
            return;
        };
        let group = &self.groups[number];
        let others_kept =
            (group.members.iter()).any(|&m| m != index && self.marks.get(&m) == Some(&Mark::Keep));
        self.note = None;
        match self.marks.get(&index) {
            Some(Mark::Keep) if !others_kept => {
                self.note = Some(format!(
                    "Group {} keeps at least one picture: mark another one keep first",
                    number + 1
                ));
            }
            Some(Mark::Keep) => {
                self.marks.insert(index, Mark::Remove);
            }
            _ => {
                self.marks.insert(index, Mark::Keep);
            }
        }
    }

    /// What the marks ask for: each group that removes something, with what it keeps.
    fn request(&self) -> TrashRequest {
        let groups = (self.groups.iter().enumerate())
            .map(|(number, group)| {
                let (remove, keep) = (group.members.iter().copied()).partition(|&m| self.marked(m));
                GroupMarks {
                    number: number + 1,
                    keep,
                    remove,
                }
            })
            .filter(|g: &GroupMarks| !g.remove.is_empty() && !g.keep.is_empty())
            .collect();
        TrashRequest { groups }
    }

    fn controls_ui(&mut self, ui: &mut egui::Ui, gallery: &Gallery) {
        ui.horizontal_wrapped(|ui| {
            for (level, title) in [
                (Level::Photo, "Same photo"),
                (Level::Scene, "Same scene"),
                (Level::Subject, "Same subject"),
            ] {
                let on = (self.threshold - level.threshold()).abs() < 1e-4
                    && self.check_copies == level.checks_copies();
                if ui.selectable_label(on, title).clicked() {
                    self.threshold = level.threshold();
                    self.check_copies = level.checks_copies();
                }
            }
            let label = ui.label("Strictness:");
            ui.add(
                egui::Slider::new(&mut self.threshold, LOOSEST..=STRICTEST)
                    .fixed_decimals(2)
                    .text("same subject … same photo"),
            )
            .labelled_by(label.id);
            ui.checkbox(&mut self.check_copies, "Copies only")
                .on_hover_text(
                    "Also match the pictures' keypoints: only copies of one photo group \
                     (cropped, turned, mirrored, captioned, recoloured…), not other shots",
                );
            ui.separator();
            ui.label(self.summary(gallery));
            let request = self.request();
            let count = request.removals().count();
            let move_button = ui.add_enabled(
                count > 0,
                egui::Button::new(format!("Move marked to trash ({count})")),
            );
            if move_button.clicked() {
                self.confirm = Some(request);
            }
        });
        self.failure_ui(ui);
        if let Some(note) = &self.note {
            ui.colored_label(ui.visuals().warn_fg_color, note);
        }
    }

    /// Says why the search stopped, and offers to start it again.
    fn failure_ui(&mut self, ui: &mut egui::Ui) {
        let Some(reason) = &self.failed else { return };
        let mut retry = false;
        ui.horizontal(|ui| {
            let text = format!("Could not look for look-alikes: {reason}.");
            ui.colored_label(ui.visuals().error_fg_color, text);
            retry = ui.button("Retry").clicked();
        });
        if retry {
            self.failed = None;
        }
    }

    /// "3 groups, 8 pictures · 5 marked (12.4 MB)", or what is being done.
    fn summary(&self, gallery: &Gallery) -> String {
        if self.found.is_none() {
            return match (&self.searching, &self.failed) {
                (Some(_), _) => "Looking for look-alikes…".into(),
                (None, Some(_)) => "The search for look-alikes stopped.".into(),
                (None, None) => "No analysed images yet.".into(),
            };
        }
        let pictures: usize = self.groups.iter().map(|g| g.members.len()).sum();
        let marked: Vec<(usize, usize)> = self.request().removals().collect();
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
                TileClick::Toggle(i) => self.flip(i),
                TileClick::Compare(a, b) => {
                    let matched = self.copy_match(a, b);
                    self.compare = Some(Compare::open(ui.ctx(), gallery, [a, b], matched));
                }
            }
        }
    }

    /// How gallery images `a` and `b` map onto each other by their keypoints, if both had
    /// some made (pairs the photo level looked at).
    fn copy_match(&self, a: usize, b: usize) -> Option<CopyMatch> {
        let found = self.found.as_ref()?;
        let features = |item: usize| {
            let row = found.items.binary_search(&item).ok()?;
            found.features.get(row)?.clone()
        };
        copies::match_pictures(&*features(a)?, &*features(b)?)
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
                    marked: self.marked(member),
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
            let texture = (gallery.thumbnail(index))
                .and_then(|t| texture_for(ctx, &format!("dup-{index}"), t));
            if let Some(texture) = texture {
                self.textures.insert(index, texture);
            }
        }
    }

    /// Asks before moving: every file to move is listed (the list scrolls), with its size,
    /// and the total, so that the user sees what goes, not just how many.
    fn confirm_ui(&mut self, ctx: &egui::Context, gallery: &Gallery) -> Option<DuplicatesAction> {
        let request = self.confirm.take()?;
        let files: Vec<(&Item, usize)> = (request.removals())
            .filter_map(|(i, group)| Some((gallery.items.get(i)?, group)))
            .collect();
        let bytes: u64 = files.iter().map(|(item, _)| item.bytes).sum();
        let noun = if files.len() == 1 { "file" } else { "files" };
        let (mut go, mut cancel) = (false, false);
        egui::Modal::new(egui::Id::unique("confirm-trash")).show(ctx, |ui| {
            ui.set_max_width(640.0);
            ui.heading(format!(
                "Move {} {noun} ({}) to the trash?",
                files.len(),
                human_bytes(bytes)
            ));
            egui::ScrollArea::vertical()
                .id_salt("files-to-trash")
                .max_height(260.0)
                .show(ui, |ui| {
                    for (item, group) in &files {
                        let size = human_bytes(item.bytes);
                        ui.label(format!("{} · {size} · group {group}", item.path.display()));
                    }
                });
            ui.strong(format!(
                "Total: {} {noun}, {}",
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
            (true, _) => Some(DuplicatesAction::MoveToTrash(request)),
            (_, true) => None,
            _ => {
                self.confirm = Some(request);
                None
            }
        }
    }
}

/// Where the open folder's index lives: the place, and the folder it is opened for.
pub type KeptIn = Option<(CacheLocation, PathBuf)>;

/// Finds the neighbours of every analysed image on a background thread; fails only when the
/// thread cannot start.
fn search(
    ctx: &egui::Context,
    gallery: &Gallery,
    kept_in: KeptIn,
) -> Result<Receiver<Found>, String> {
    let mut items = Vec::new();
    let mut vectors = Vec::new();
    let mut thumbnails = Vec::new();
    let mut paths = Vec::new();
    for (i, item) in gallery.items.iter().enumerate() {
        if let (Some(v), false) = (gallery.vectors.get(i), item.removed) {
            items.push(i);
            vectors.extend_from_slice(&v);
            thumbnails.push(item.thumbnail.clone());
            paths.push(item.path.clone());
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
            let floor = Level::Photo.threshold();
            let pairs = copies::candidate_pairs(&neighbours, floor, copies::PAIRS_PER_IMAGE);
            let needed = copies::images_in(&pairs, neighbours.len());
            let mut index = kept_in.and_then(|(place, folder)| match place.open(&folder) {
                Ok(index) => index,
                Err(e) => {
                    eprintln!("the index could not be opened for the keypoints: {e}");
                    None
                }
            });
            // The gallery holds only some thumbnails; the index gives back the others.
            let mut thumbnails = thumbnails;
            if let Some(index) = index.as_deref_mut() {
                let failed = read_back_thumbnails(index, &needed, &paths, &mut thumbnails);
                failed.iter().for_each(|w| eprintln!("{w}"));
            }
            let picture = |row: usize| thumbnails[row].as_ref()?.to_rgb().ok();
            let (features, warnings) =
                copies::kept_features(&needed, &paths, index.as_deref_mut(), &picture);
            warnings.iter().for_each(|w| eprintln!("{w}"));
            let copies = CopyMatches::find(&neighbours, floor, copies::PAIRS_PER_IMAGE, &features);
            let _ = send.send(Found {
                neighbours,
                copies,
                features,
                items,
                analysed,
            });
            wake.request_repaint();
        });
    match spawned {
        Ok(_) => Ok(receive),
        Err(e) => Err(format!("the search could not start: {e}")),
    }
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
            if !self.keeper && ui.small_button("Compare with best copy").clicked() {
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
            true => ui.label("best copy").on_hover_text(
                "Proposed to keep: the most pixels, then the largest file, then the oldest",
            ),
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
    use crate::scan::ImageEntry;
    use egui_kittest::kittest::Queryable;
    use egui_kittest::Harness;

    /// A gallery of images with these vectors and pixel counts (as width × 1).
    fn gallery(images: &[([f32; 2], u32)]) -> Gallery {
        let entries: Vec<ImageEntry> = (0..images.len())
            .map(|i| ImageEntry {
                path: format!("{i}.jpg").into(),
                size: 1,
                modified: None,
                file_id: None,
            })
            .collect();
        let mut gallery = Gallery::new(&entries);
        for (i, (vector, width)) in images.iter().enumerate() {
            gallery.vectors.set(i, vector);
            gallery.items[i].analysed = true;
            gallery.items[i].size = Some((*width, 1));
        }
        gallery
    }

    /// A unit vector at `degrees` in the plane.
    fn at(degrees: f32) -> [f32; 2] {
        let r = degrees.to_radians();
        [r.cos(), r.sin()]
    }

    /// The view's neighbours for `gallery`, found as the app finds them, on its thread.
    fn found(gallery: &Gallery) -> Found {
        let ctx = egui::Context::default();
        let receiver = search(&ctx, gallery, None).unwrap();
        receiver.recv().unwrap()
    }

    fn marks_at(view: &mut DuplicatesView, gallery: &Gallery, threshold: f32) -> Vec<Vec<Mark>> {
        view.threshold = threshold;
        view.regroup(gallery);
        let mark = |m: &usize| view.marks[m];
        (view
            .groups
            .iter()
            .map(|g| g.members.iter().map(mark).collect()))
        .collect()
    }

    /// Regression: a mark was stored as "flipped from the proposal", so a picture marked keep
    /// read "remove" once a regrouping made it the proposed keeper.
    #[test]
    fn a_mark_keeps_its_meaning_when_the_proposed_keeper_changes() {
        use Mark::{Keep, Remove};
        // 0 and 1 are near copies (1 has more pixels); 2, a little further, has the most.
        let gallery = gallery(&[(at(0.0), 10), (at(5.0), 20), (at(30.0), 30)]);
        let mut view = DuplicatesView {
            check_copies: false,
            found: Some(found(&gallery)),
            ..Default::default()
        };
        // Loosely, 2 is the proposed keeper: the user keeps 1 too.
        assert_eq!(marks_at(&mut view, &gallery, 0.8), [[Keep, Remove, Remove]]);
        assert_eq!(view.groups[0].members, [2, 1, 0]);
        view.flip(1);
        assert_eq!(view.marks[&1], Keep);
        // Strictly, 1 is the proposed keeper of 0 and 1: it stays kept, 0 stays removed.
        assert_eq!(marks_at(&mut view, &gallery, 0.98), [[Keep, Remove]]);
        assert_eq!(view.groups[0].members, [1, 0]);
        assert_eq!(view.request().removals().collect::<Vec<_>>(), [(0, 1)]);
        // The only kept picture of a group cannot be marked for removal.
        view.flip(1);
        assert_eq!(view.marks[&1], Keep);
        assert!(view
            .note
            .as_ref()
            .is_some_and(|n| n.contains("keeps at least one")));
    }

    /// Regression: a search whose thread died left "Looking for look-alikes…" for good.
    #[test]
    fn a_search_whose_thread_died_says_so_and_can_be_retried() {
        let gallery = gallery(&[(at(0.0), 10), (at(1.0), 20)]);
        let (send, receive) = channel::<Found>();
        drop(send);
        let view = DuplicatesView {
            check_copies: false,
            searching: Some(receive),
            ..Default::default()
        };
        let mut harness = Harness::new_ui_state(
            |ui, (view, gallery): &mut (DuplicatesView, Gallery)| {
                view.ui(ui, gallery, &None);
            },
            (view, gallery),
        );
        harness.run();
        assert!(harness
            .query_by_label_contains("stopped before it finished")
            .is_some());
        assert!(harness.state().0.searching.is_none(), "no search waits");
        harness.get_by_label("Retry").click();
        let start = std::time::Instant::now();
        while harness.state().0.found.is_none() {
            assert!(start.elapsed().as_secs() < 30, "the retried search ends");
            harness.step();
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
        harness.run();
        assert!(harness.query_by_label("Group 1 · 2 pictures").is_some());
        assert!(harness.query_by_label_contains("stopped").is_none());
    }

    #[test]
    fn dates_read_as_people_write_them() {
        let t = SystemTime::UNIX_EPOCH + std::time::Duration::from_secs(1_764_511_500);
        assert_eq!(format_date(t), "2025-11-30 14:05");
        assert_eq!(format_date(SystemTime::UNIX_EPOCH), "1970-01-01 00:00");
    }
}
