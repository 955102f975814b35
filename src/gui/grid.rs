//! The thumbnail grid: a virtualised scroll area that builds only the visible rows, and keeps
//! textures only for those rows plus a margin, so a folder of thousands of photos stays light.

use std::collections::{HashMap, HashSet};

use eframe::egui;
use egui::{Align, Color32, Layout, RichText, Sense, Stroke, TextureHandle, UiBuilder, Vec2};

use super::state::{ExampleSource, Gallery, Item};
use super::texture_for;

/// Rows above and below the visible ones whose textures are kept, so scrolling a little
/// does not flash placeholders.
const MARGIN_ROWS: usize = 2;
/// Time one frame spends making textures (each decodes a JPEG thumbnail, about half a
/// millisecond); the rest wait for the next frame, so a jump to the middle of a big folder, or
/// a screenful of thumbnails arriving from the index, never stalls one frame for long.
const TEXTURE_BUDGET: std::time::Duration = std::time::Duration::from_millis(6);
const GAP: f32 = 8.0;

/// What a click on a tile asks for; the app applies it after the grid is drawn.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GridAction {
    /// Sort everything by similarity to this image.
    Sort(usize),
    Select(usize),
    View(usize),
    /// Ctrl+click: pick or unpick an image for a search by several.
    TogglePicked(usize),
    /// Shift+click: pick every image from the cursor to this one.
    PickRange(usize),
    /// "More like this" (true) or "Less like this" (false).
    AddExample(usize, bool),
    /// "Open with default app".
    Open(usize),
    /// "Show in file manager".
    Reveal(usize),
}

/// What one frame of the grid reports back.
pub struct GridResponse {
    /// Columns, for the arrow keys.
    pub columns: usize,
    /// The images on screen, to be embedded first.
    pub on_screen: Vec<usize>,
    pub actions: Vec<GridAction>,
}

/// The grid's own state: textures of the rows near the screen, and a pending jump to the top.
#[derive(Default)]
pub struct Grid {
    textures: HashMap<usize, TextureHandle>,
    scroll_to_top: bool,
}

impl Grid {
    /// Forgets every texture (another folder is open).
    pub fn clear(&mut self) {
        self.textures.clear();
        self.scroll_to_top = true;
    }

    /// Shows the top of the grid on the next frame (the order changed).
    pub fn scroll_to_top(&mut self) {
        self.scroll_to_top = true;
    }

    /// Draws `gallery` in tiles of `side` pixels.
    pub fn ui(&mut self, ui: &mut egui::Ui, gallery: &mut Gallery, side: f32) -> GridResponse {
        let line = ui.text_style_height(&egui::TextStyle::Body) + ui.spacing().item_spacing.y;
        let tile = Vec2::new(
            side + GAP,
            side + ui.spacing().item_spacing.y + 3.0 * line + GAP,
        );
        let columns = ((ui.available_width() + GAP) / (tile.x + ui.spacing().item_spacing.x))
            .floor()
            .max(1.0) as usize;
        let order = gallery.order().to_vec();
        let mut response = GridResponse {
            columns,
            on_screen: Vec::new(),
            actions: Vec::new(),
        };
        if order.is_empty() {
            ui.label(match gallery.items.is_empty() {
                true => "No images here yet.",
                false => "No image matches the filter.",
            });
            return response;
        }
        let rows = order.len().div_ceil(columns);
        let mut area = egui::ScrollArea::vertical()
            .id_salt("grid")
            .auto_shrink([false, false]);
        if std::mem::take(&mut self.scroll_to_top) {
            area = area.vertical_scroll_offset(0.0);
        }
        let tiles = Tiles {
            gallery: &*gallery,
            side,
            tile,
        };
        let visible = area
            .show_rows(ui, tile.y, rows, |ui, range| {
                let wanted: Vec<usize> = rows_with_margin(&range, rows)
                    .flat_map(|r| row_items(&order, r, columns))
                    .copied()
                    .collect();
                self.load_textures(ui.ctx(), tiles.gallery, &wanted);
                for row in range.clone() {
                    ui.horizontal(|ui| {
                        for &index in row_items(&order, row, columns) {
                            tiles.tile_ui(ui, &self.textures, index, &mut response.actions);
                        }
                    });
                }
                range
            })
            .inner;
        response.on_screen = visible
            .flat_map(|row| row_items(&order, row, columns))
            .copied()
            .collect();
        response
    }

    /// Makes missing textures for `wanted` (within the per-frame budget) and frees all others.
    fn load_textures(&mut self, ctx: &egui::Context, gallery: &Gallery, wanted: &[usize]) {
        let keep: HashSet<usize> = wanted.iter().copied().collect();
        self.textures.retain(|index, _| keep.contains(index));
        let started = std::time::Instant::now();
        for &index in wanted {
            if self.textures.contains_key(&index) {
                continue;
            }
            let Some(thumbnail) = gallery.thumbnail(index) else {
                continue;
            };
            if started.elapsed() >= TEXTURE_BUDGET {
                ctx.request_repaint();
                break;
            }
            if let Some(texture) = texture_for(ctx, &format!("thumb-{index}"), thumbnail) {
                self.textures.insert(index, texture);
            }
        }
    }
}

/// What every tile of one frame shares.
struct Tiles<'g> {
    gallery: &'g Gallery,
    side: f32,
    tile: Vec2,
}

fn rows_with_margin(range: &std::ops::Range<usize>, rows: usize) -> std::ops::Range<usize> {
    range.start.saturating_sub(MARGIN_ROWS)..(range.end + MARGIN_ROWS).min(rows)
}

fn row_items(order: &[usize], row: usize, columns: usize) -> &[usize] {
    let start = (row * columns).min(order.len());
    &order[start..(start + columns).min(order.len())]
}

impl Tiles<'_> {
    fn tile_ui(
        &self,
        ui: &mut egui::Ui,
        textures: &HashMap<usize, TextureHandle>,
        index: usize,
        actions: &mut Vec<GridAction>,
    ) {
        let gallery = self.gallery;
        let item = &gallery.items[index];
        let (rect, _) = ui.allocate_exact_size(self.tile, Sense::hover());
        if !ui.is_rect_visible(rect) {
            return;
        }
        paint_marks(ui, rect, gallery, index);
        let mut child = ui.new_child(
            UiBuilder::new()
                .max_rect(rect.shrink(GAP / 2.0))
                .layout(Layout::top_down(Align::Center)),
        );
        let side = self.side;
        let response = match textures.get(&index) {
            Some(texture) => {
                // Every thumbnail sits centred in the same square, so the text lines up across
                // a row.
                let size = fit(texture.size_vec2(), side);
                let image = egui::Image::new((texture.id(), size))
                    .alt_text(&item.name)
                    .sense(Sense::click());
                child.add_sized(Vec2::splat(side), image)
            }
            None => placeholder_ui(&mut child, side, item),
        };
        captions_ui(&mut child, gallery, index);
        let response = response.on_hover_ui(|ui| hover_ui(ui, item));
        clicks(&response, gallery, index, actions);
        response.context_menu(|ui| context_menu_ui(ui, item, index, actions));
    }
}

/// Name, label and score under a thumbnail.
fn captions_ui(ui: &mut egui::Ui, gallery: &Gallery, index: usize) {
    let item = &gallery.items[index];
    ui.add(egui::Label::new(RichText::new(&item.name).strong()).truncate());
    match (item.label_line(), item.failed) {
        (_, true) => ui.colored_label(ui.visuals().error_fg_color, "could not be read"),
        (Some(label), false) => ui.add(egui::Label::new(label).truncate()),
        (None, false) => ui.weak("…"),
    };
    match (gallery.is_searching(), gallery.scores[index]) {
        _ if gallery.query() == Some(index) => ui.label(
            RichText::new("Sorted by this image").color(ui.visuals().selection.stroke.color),
        ),
        (true, Some(score)) => ui.label(format!("similarity {score:.3}")),
        (true, None) => ui.weak("not embedded yet"),
        (false, _) => ui.label(""),
    };
}

/// What the clicks on a tile ask for.
fn clicks(
    response: &egui::Response,
    gallery: &Gallery,
    index: usize,
    actions: &mut Vec<GridAction>,
) {
    let modifiers = response.ctx.input(|i| i.modifiers);
    // The second click of a double-click is not a new sort: the grid may have moved under it.
    if response.clicked() && !response.double_clicked() {
        actions.push(match (modifiers.command, modifiers.shift) {
            (true, _) => GridAction::TogglePicked(index),
            (false, true) => GridAction::PickRange(index),
            (false, false) => GridAction::Sort(index),
        });
    }
    if response.double_clicked() && !modifiers.command && !modifiers.shift {
        // The first click of the pair already sorted by the image under the pointer, which
        // may have moved the grid; the user meant that image, now the query.
        actions.push(GridAction::View(gallery.query().unwrap_or(index)));
    }
    if response.secondary_clicked() {
        actions.push(GridAction::Select(index));
    }
}

/// Outline for the examples of the search (green for "like", red for "unlike"), the picked
/// images and the cursor.
fn paint_marks(ui: &egui::Ui, rect: egui::Rect, gallery: &Gallery, index: usize) {
    let accent = ui.visuals().selection.stroke.color;
    let example = gallery
        .examples()
        .iter()
        .find(|e| matches!(e.source, ExampleSource::Item(i) if i == index));
    let stroke = match example {
        Some(_) if gallery.query() == Some(index) => Stroke::new(3.0, accent),
        Some(e) if e.positive => Stroke::new(3.0, POSITIVE),
        Some(_) => Stroke::new(3.0, NEGATIVE),
        None if gallery.picked.contains(&index) => Stroke::new(3.0, accent),
        None if gallery.selected == Some(index) => Stroke::new(1.5, accent),
        None => return,
    };
    ui.painter()
        .rect_stroke(rect.shrink(1.0), 6.0, stroke, egui::StrokeKind::Inside);
    if gallery.picked.contains(&index) {
        ui.painter()
            .rect_filled(rect.shrink(1.0), 6.0, accent.gamma_multiply(0.15));
    }
}

/// The colours of examples to look like, and unlike.
pub const POSITIVE: Color32 = Color32::from_rgb(70, 170, 90);
pub const NEGATIVE: Color32 = Color32::from_rgb(200, 70, 70);

/// A grey square while the thumbnail is on its way; clickable all the same.
fn placeholder_ui(ui: &mut egui::Ui, side: f32, item: &Item) -> egui::Response {
    let (rect, response) = ui.allocate_exact_size(Vec2::splat(side), Sense::click());
    let shade = if item.failed {
        Color32::from_rgb(90, 40, 40)
    } else {
        Color32::from_gray(60)
    };
    ui.painter()
        .rect_filled(rect.shrink(side * 0.08), 4.0, shade);
    let state = if item.failed {
        "could not be read"
    } else {
        "loading"
    };
    response.widget_info(|| {
        egui::WidgetInfo::labeled(
            egui::Role::Unknown,
            true,
            format!("{} ({state})", item.name),
        )
    });
    response
}

fn hover_ui(ui: &mut egui::Ui, item: &Item) {
    ui.strong(&item.name);
    for p in &item.top {
        ui.label(format!("{:5.1}%  {}", p.prob * 100.0, p.label));
    }
    if let Some((w, h)) = item.size {
        ui.label(format!("{w} × {h} pixels"));
    }
    ui.weak(item.path.to_string_lossy());
}

fn context_menu_ui(ui: &mut egui::Ui, item: &Item, index: usize, actions: &mut Vec<GridAction>) {
    if ui.button("Find similar").clicked() {
        actions.push(GridAction::Sort(index));
        ui.close();
    }
    if ui.button("More like this").clicked() {
        actions.push(GridAction::AddExample(index, true));
        ui.close();
    }
    if ui.button("Less like this").clicked() {
        actions.push(GridAction::AddExample(index, false));
        ui.close();
    }
    if ui.button("View").clicked() {
        actions.push(GridAction::View(index));
        ui.close();
    }
    if ui.button("Open with default app").clicked() {
        actions.push(GridAction::Open(index));
        ui.close();
    }
    if ui.button("Show in file manager").clicked() {
        actions.push(GridAction::Reveal(index));
        ui.close();
    }
    if ui.button("Copy path").clicked() {
        ui.ctx().copy_text(item.path.to_string_lossy().into_owned());
        ui.close();
    }
}

/// The largest size with `size`'s aspect ratio that fits in `side × side`.
pub fn fit(size: Vec2, side: f32) -> Vec2 {
    let scale = side / size.x.max(size.y).max(1.0);
    size * scale
}
