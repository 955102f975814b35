//! What the window shows, kept apart from how it is drawn: the images of the open folder,
//! their analyses, the current order (folder or similarity), the filter and the selection.
//! Everything here is plain data, so it is easy to reason about and to test.

use std::path::PathBuf;
use std::time::SystemTime;

use crate::decode::Thumbnail;
use crate::engine::Analysis;
use crate::model::labels::Prediction;
use crate::scan::ImageEntry;
use crate::similarity::{scores, similarity_order};

/// One image of the open folder.
#[derive(Debug, Clone)]
pub struct Item {
    pub path: PathBuf,
    pub name: String,
    pub embedding: Option<Vec<f32>>,
    pub top: Vec<Prediction>,
    pub size: Option<(u32, u32)>,
    pub thumbnail: Option<Thumbnail>,
    /// The file could not be read; the reason is in the app's problems list.
    pub failed: bool,
    /// File size, as scanned.
    pub bytes: u64,
    pub modified: Option<SystemTime>,
    /// Moved to the trash: no longer shown anywhere.
    pub removed: bool,
}

impl Item {
    pub fn from_entry(entry: &ImageEntry) -> Self {
        let name = entry.path.file_name().map_or_else(
            || entry.path.to_string_lossy().into_owned(),
            |n| n.to_string_lossy().into_owned(),
        );
        Item {
            path: entry.path.clone(),
            name,
            embedding: None,
            top: Vec::new(),
            size: None,
            thumbnail: None,
            failed: false,
            bytes: entry.size,
            modified: entry.modified,
            removed: false,
        }
    }

    pub fn set_analysis(&mut self, analysis: Analysis) {
        self.size = Some((analysis.width, analysis.height));
        self.top = analysis.top;
        self.embedding = Some(analysis.embedding);
        self.thumbnail = analysis.thumbnail;
    }

    /// "tiger 53%"; "no labels" once embedded by a model file without a classifier; or
    /// nothing yet.
    pub fn label_line(&self) -> Option<String> {
        match (self.top.first(), &self.embedding) {
            (Some(p), _) => Some(format!("{} {:.0}%", p.label, p.prob * 100.0)),
            (None, Some(_)) => Some("no labels (model has no classifier)".into()),
            (None, None) => None,
        }
    }

    /// Whether the name or the top-1 label contains `needle` (already lowercase).
    fn matches(&self, needle: &str) -> bool {
        needle.is_empty()
            || self.name.to_lowercase().contains(needle)
            || self
                .top
                .first()
                .is_some_and(|p| p.label.to_lowercase().contains(needle))
    }
}

/// The grid's content: items, their order, the filter and the selection.
#[derive(Debug, Default)]
pub struct Gallery {
    pub items: Vec<Item>,
    /// The image everything is sorted by, if the grid is sorted by similarity.
    pub query: Option<usize>,
    /// Cosine to the query, per item, once both vectors exist.
    pub scores: Vec<Option<f32>>,
    pub filter: String,
    pub selected: Option<usize>,
    /// Item indices in display order, filtered. Rebuilt by `refresh` when marked stale.
    order: Vec<usize>,
    stale: bool,
}

impl Gallery {
    pub fn new(entries: &[ImageEntry]) -> Self {
        let items: Vec<Item> = entries.iter().map(Item::from_entry).collect();
        Gallery {
            scores: vec![None; items.len()],
            items,
            stale: true,
            ..Default::default()
        }
    }

    /// The items to show, in order.
    pub fn order(&mut self) -> &[usize] {
        if self.stale {
            self.rebuild();
        }
        &self.order
    }

    pub fn set_analysis(&mut self, index: usize, analysis: Analysis) {
        if let Some(item) = self.items.get_mut(index) {
            item.set_analysis(analysis);
            // In folder order with no filter, a new vector changes nothing on screen.
            self.stale |= self.query.is_some() || !self.filter.trim().is_empty();
        }
    }

    pub fn set_failed(&mut self, index: usize) {
        if let Some(item) = self.items.get_mut(index) {
            item.failed = true;
        }
    }

    pub fn set_filter(&mut self, filter: String) {
        if filter != self.filter {
            self.filter = filter;
            self.stale = true;
        }
    }

    /// Sorts by similarity to `index`. Images without a vector yet go last, and move into
    /// place as their vectors arrive.
    pub fn sort_by_similarity(&mut self, index: usize) {
        if index < self.items.len() {
            self.query = Some(index);
            self.selected = Some(index);
            self.stale = true;
        }
    }

    pub fn folder_order(&mut self) {
        self.query = None;
        self.scores.iter_mut().for_each(|s| *s = None);
        self.stale = true;
    }

    fn rebuild(&mut self) {
        self.stale = false;
        self.score_against_query();
        let needle = self.filter.trim().to_lowercase();
        let mut order: Vec<usize> = (0..self.items.len())
            .filter(|&i| !self.items[i].removed && self.items[i].matches(&needle))
            .collect();
        if let Some(query) = self.query {
            similarity_order(&mut order, Some(query), &self.scores);
        }
        self.order = order;
    }

    fn score_against_query(&mut self) {
        let Some(query) = self.query.and_then(|q| self.items[q].embedding.clone()) else {
            self.scores.iter_mut().for_each(|s| *s = None);
            return;
        };
        let vectors: Vec<Option<&[f32]>> =
            self.items.iter().map(|i| i.embedding.as_deref()).collect();
        self.scores = scores(&query, &vectors);
    }

    /// Moves the selection by `step` places in display order (clamped to the ends).
    pub fn move_selection(&mut self, step: isize) {
        let order = self.order().to_vec();
        if order.is_empty() {
            return;
        }
        let at = self
            .selected
            .and_then(|s| order.iter().position(|&i| i == s));
        let next = match at {
            Some(at) => (at as isize + step).clamp(0, order.len() as isize - 1) as usize,
            None => 0,
        };
        self.selected = Some(order[next]);
    }

    /// Takes images out of every view (they were moved to the trash). Their places stay, so
    /// that indices held elsewhere keep meaning the same images.
    pub fn remove(&mut self, indices: &[usize]) {
        for &i in indices {
            if let Some(item) = self.items.get_mut(i) {
                item.removed = true;
                item.embedding = None;
                item.thumbnail = None;
            }
        }
        if self.query.is_some_and(|q| indices.contains(&q)) {
            self.query = None;
        }
        if self.selected.is_some_and(|s| indices.contains(&s)) {
            self.selected = None;
        }
        self.stale = true;
    }

    /// How many images have been analysed.
    pub fn analysed(&self) -> usize {
        self.items.iter().filter(|i| i.embedding.is_some()).count()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn gallery(names: &[&str]) -> Gallery {
        let entries: Vec<ImageEntry> = names
            .iter()
            .map(|n| ImageEntry {
                path: PathBuf::from(n),
                size: 0,
                modified: None,
            })
            .collect();
        Gallery::new(&entries)
    }

    fn analysis(v: [f32; 2], label: &str) -> Analysis {
        Analysis {
            embedding: v.to_vec(),
            top: vec![Prediction {
                class: 0,
                label: label.into(),
                prob: 0.5,
            }],
            width: 1,
            height: 1,
            thumbnail: None,
        }
    }

    #[test]
    fn sorting_puts_query_first_then_by_score_then_pending_last() {
        let mut g = gallery(&["a", "b", "c", "d"]);
        g.set_analysis(0, analysis([1.0, 0.0], "x"));
        g.set_analysis(1, analysis([0.0, 1.0], "y"));
        g.set_analysis(3, analysis([0.8, 0.6], "z"));
        g.sort_by_similarity(1);
        assert_eq!(g.order(), [1, 3, 0, 2]);
        assert_eq!(g.scores[3], Some(0.6));
        // c's vector arrives and it moves into place.
        g.set_analysis(2, analysis([0.0, 1.0], "w"));
        assert_eq!(g.order(), [1, 2, 3, 0]);
        g.folder_order();
        assert_eq!(g.order(), [0, 1, 2, 3]);
    }

    #[test]
    fn filter_matches_name_or_label() {
        let mut g = gallery(&["cat.jpg", "dog.jpg", "x.png"]);
        g.set_analysis(2, analysis([1.0, 0.0], "Tabby cat"));
        g.set_filter("CAT".into());
        assert_eq!(g.order(), [0, 2]);
    }

    #[test]
    fn selection_moves_in_display_order() {
        let mut g = gallery(&["a", "b", "c"]);
        g.move_selection(1);
        assert_eq!(g.selected, Some(0));
        g.move_selection(5);
        assert_eq!(g.selected, Some(2));
        g.move_selection(-1);
        assert_eq!(g.selected, Some(1));
    }
}
