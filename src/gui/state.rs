//! What the window shows, kept apart from how it is drawn: the images of the open folder,
//! their analyses, the current order (folder or similarity), the filter and the selection.
//! Everything here is plain data, so it is easy to reason about and to test.

use std::cell::RefCell;
use std::collections::{BTreeSet, HashMap, VecDeque};
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use crate::decode::Thumbnail;
use crate::engine::Analysis;
use crate::model::labels::Prediction;
use crate::query::Query;
use crate::scan::{FileId, ImageEntry};
use crate::similarity::{similarity_order, Vectors};

/// One image of the open folder.
#[derive(Debug, Clone)]
pub struct Item {
    pub path: PathBuf,
    pub name: String,
    /// Analysed: it has labels (and a vector in [`Gallery::vectors`]).
    pub analysed: bool,
    pub top: Vec<Prediction>,
    pub size: Option<(u32, u32)>,
    pub thumbnail: Option<Thumbnail>,
    /// The file could not be read; the reason is in the app's problems list.
    pub failed: bool,
    /// File size, as scanned.
    pub bytes: u64,
    pub modified: Option<SystemTime>,
    /// Which file on disk it was when scanned, so that the trash moves only that file.
    pub file_id: Option<FileId>,
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
            analysed: false,
            top: Vec::new(),
            size: None,
            thumbnail: None,
            failed: false,
            bytes: entry.size,
            modified: entry.modified,
            file_id: entry.file_id,
            removed: false,
        }
    }

    /// Takes the analysis's labels and size; its vector and thumbnail are the gallery's to
    /// keep ([`Gallery::set_analysis`]).
    fn set_analysis(&mut self, analysis: Analysis) {
        self.size = Some((analysis.width, analysis.height));
        self.top = analysis.top;
        self.analysed = true;
    }

    /// Takes `before`'s analysis if it describes the same file: same size and time.
    fn keep_analysis_of(&mut self, before: &Item) {
        let same_file = before.bytes == self.bytes && before.modified == self.modified;
        if same_file && !before.failed {
            self.analysed = before.analysed;
            self.top = before.top.clone();
            self.size = before.size;
            self.thumbnail = before.thumbnail.clone();
        }
    }

    /// "tiger 53%"; "no labels" once embedded by a model file without a classifier; or
    /// nothing yet.
    pub fn label_line(&self) -> Option<String> {
        match (self.top.first(), self.analysed) {
            (Some(p), _) => Some(format!("{} {:.0}%", p.label, p.prob * 100.0)),
            (None, true) => Some("no labels (model has no classifier)".into()),
            (None, false) => None,
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

/// A picture the search should look like (positive) or unlike.
#[derive(Debug, Clone)]
pub struct Example {
    pub source: ExampleSource,
    pub positive: bool,
}

/// Where an example comes from.
#[derive(Debug, Clone)]
pub enum ExampleSource {
    /// An image of the folder, by index.
    Item(usize),
    /// A picture from outside the folder (dropped or pasted), embedded but never indexed.
    Outside(OutsidePicture),
}

#[derive(Debug, Clone)]
pub struct OutsidePicture {
    pub name: String,
    pub embedding: Vec<f32>,
    pub thumbnail: Option<Thumbnail>,
}

/// The grid's content: items, their order, the search, the filter and the selection.
#[derive(Debug, Default)]
pub struct Gallery {
    pub items: Vec<Item>,
    /// What the grid is sorted by; empty for folder order.
    examples: Vec<Example>,
    /// Score against the search, per item, once the vectors exist.
    pub scores: Vec<Option<f32>>,
    pub filter: String,
    /// The keyboard cursor, and the image a plain click chose.
    pub selected: Option<usize>,
    /// Images picked with Ctrl+click or Shift+click, in the order picked.
    pub picked: Vec<usize>,
    /// Hide images scoring below this, while a search is on.
    pub cutoff: Option<f32>,
    /// Item indices in display order, filtered. Rebuilt by `refresh` when marked stale.
    order: Vec<usize>,
    stale: bool,
    /// Which items hold a thumbnail, and which were asked for without one.
    thumbnails: HeldThumbnails,
    /// Every item's vector, once analysed, in one compact block.
    pub vectors: Vectors,
}

/// Thumbnails are held for at most `bound` items at once, the longest held let go first (a
/// grid texture, once made, does not need its thumbnail); one asked for again is read back
/// from the index ([`Gallery::take_wanted_thumbnails`]). So a library of 100,000 photos costs
/// the memory of a few screens of thumbnails, not of every one. Without an index to read
/// them back from there is no bound.
#[derive(Debug, Default)]
struct HeldThumbnails {
    bound: Option<usize>,
    /// Items holding a thumbnail, in the order they came to hold it (an item taken out of
    /// the views may linger here without one).
    held: VecDeque<usize>,
    /// Items whose thumbnail was asked for while none was held.
    wanted: RefCell<BTreeSet<usize>>,
    /// Items the index had no thumbnail for when asked: not asked again.
    missing: std::collections::HashSet<usize>,
    /// Counts new galleries and new scans: thumbnails read for an older one are not taken.
    generation: u64,
}

impl Gallery {
    pub fn new(entries: &[ImageEntry]) -> Self {
        let items: Vec<Item> = entries.iter().map(Item::from_entry).collect();
        Gallery {
            scores: vec![None; items.len()],
            vectors: Vectors::new(items.len()),
            items,
            stale: true,
            thumbnails: HeldThumbnails {
                bound: Some(THUMBNAILS_HELD),
                generation: next_generation(),
                ..Default::default()
            },
            ..Default::default()
        }
    }

    /// The thumbnail of item `index`, when it is held; otherwise `None`, and it is asked for
    /// ([`Gallery::take_wanted_thumbnails`]).
    pub fn thumbnail(&self, index: usize) -> Option<&Thumbnail> {
        let item = self.items.get(index)?;
        let askable = item.analysed && !item.removed;
        if item.thumbnail.is_none() && askable && !self.thumbnails.missing.contains(&index) {
            self.thumbnails.wanted.borrow_mut().insert(index);
        }
        item.thumbnail.as_ref()
    }

    /// Holds `thumbnail` for item `index` of the gallery of `generation` (see
    /// [`Gallery::take_wanted_thumbnails`]), letting go of the longest held beyond the bound.
    pub fn hold_thumbnail(&mut self, index: usize, thumbnail: Thumbnail, generation: u64) {
        if generation != self.thumbnails.generation {
            return;
        }
        let Some(item) = self.items.get_mut(index).filter(|i| !i.removed) else {
            return;
        };
        // An item is queued once, when it comes to hold a thumbnail, so letting go never
        // searches the queue.
        if item.thumbnail.replace(thumbnail).is_none() {
            self.thumbnails.held.push_back(index);
        }
        self.thumbnails.wanted.borrow_mut().remove(&index);
        self.let_go_of_thumbnails();
    }

    /// The index had no thumbnail for item `index` of the gallery of `generation`: it is
    /// not asked for again (the tile stays grey).
    pub fn no_thumbnail(&mut self, index: usize, generation: u64) {
        if generation == self.thumbnails.generation {
            self.thumbnails.missing.insert(index);
        }
    }

    /// How many items may hold a thumbnail at once; `None` for all (no index to read them
    /// back from).
    pub fn bound_thumbnails(&mut self, bound: Option<usize>) {
        self.thumbnails.bound = bound;
        self.let_go_of_thumbnails();
    }

    fn let_go_of_thumbnails(&mut self) {
        let Some(bound) = self.thumbnails.bound else {
            return;
        };
        while self.thumbnails.held.len() > bound {
            let Some(oldest) = self.thumbnails.held.pop_front() else {
                break;
            };
            if let Some(item) = self.items.get_mut(oldest) {
                item.thumbnail = None;
            }
        }
    }

    /// Thumbnails were asked for that are not yet being read.
    pub fn wants_thumbnails(&self) -> bool {
        !self.thumbnails.wanted.borrow().is_empty()
    }

    /// The items whose thumbnails were asked for and are not held (at most `most`, the
    /// lowest first), with this gallery's generation, to be read back from the index and
    /// given to [`Gallery::hold_thumbnail`].
    pub fn take_wanted_thumbnails(&self, most: usize) -> (Vec<(usize, PathBuf)>, u64) {
        let mut wanted = self.thumbnails.wanted.borrow_mut();
        let taken: Vec<usize> = wanted.iter().copied().take(most).collect();
        taken.iter().for_each(|i| {
            wanted.remove(i);
        });
        let paths = (taken.into_iter())
            .filter_map(|i| Some((i, self.items.get(i)?.path.clone())))
            .collect();
        (paths, self.thumbnails.generation)
    }

    /// How many items hold a thumbnail now.
    pub fn thumbnails_held(&self) -> usize {
        self.items.iter().filter(|i| i.thumbnail.is_some()).count()
    }

    /// Takes a new scan of the same folder (after files were added, changed, renamed or
    /// removed). Images whose file is unchanged keep their analysis; the search, the
    /// selection and the picked images follow their files, and drop what is gone. Item
    /// indices change: the result says where each old item went, for whatever else holds
    /// one.
    pub fn merge_scan(&mut self, entries: &[ImageEntry]) -> Vec<Option<usize>> {
        let old: HashMap<&Path, usize> = (self.items.iter().enumerate())
            .map(|(i, item)| (item.path.as_path(), i))
            .collect();
        let mut moved_to: Vec<Option<usize>> = vec![None; self.items.len()];
        let items: Vec<Item> = (entries.iter().enumerate())
            .map(|(at, entry)| {
                let mut item = Item::from_entry(entry);
                if let Some(&was) = old.get(entry.path.as_path()) {
                    moved_to[was] = Some(at);
                    item.keep_analysis_of(&self.items[was]);
                }
                item
            })
            .collect();
        let follow = |i: usize| moved_to.get(i).copied().flatten();
        let examples = (self.examples.iter())
            .filter_map(|e| match &e.source {
                ExampleSource::Item(i) => Some(Example {
                    source: ExampleSource::Item(follow(*i)?),
                    positive: e.positive,
                }),
                ExampleSource::Outside(_) => Some(e.clone()),
            })
            .collect();
        self.selected = self.selected.and_then(follow);
        self.picked = self.picked.iter().filter_map(|&i| follow(i)).collect();
        self.scores = vec![None; items.len()];
        let mut came_from = vec![None; items.len()];
        (moved_to.iter().enumerate())
            .filter_map(|(was, to)| Some(((*to)?, was)))
            .filter(|&(to, was)| items[to].analysed && self.vectors.has(was))
            .for_each(|(to, was)| came_from[to] = Some(was));
        self.vectors = self.vectors.rearranged(&came_from);
        self.items = items;
        self.thumbnails.generation = next_generation();
        self.thumbnails.wanted.borrow_mut().clear();
        self.thumbnails.missing.clear();
        self.thumbnails.held = (self.items.iter().enumerate())
            .filter(|(_, item)| item.thumbnail.is_some())
            .map(|(i, _)| i)
            .collect();
        self.set_examples(examples);
        moved_to
    }

    /// The items to show, in order.
    pub fn order(&mut self) -> &[usize] {
        if self.stale {
            self.rebuild();
        }
        &self.order
    }

    pub fn set_analysis(&mut self, index: usize, mut analysis: Analysis) {
        let thumbnail = analysis.thumbnail.take();
        if let Some(item) = self.items.get_mut(index) {
            self.vectors.set(index, &analysis.embedding);
            item.set_analysis(analysis);
            if let Some(thumbnail) = thumbnail {
                self.hold_thumbnail(index, thumbnail, self.thumbnails.generation);
            }
            // In folder order with no filter, a new vector changes nothing on screen.
            self.stale |= self.is_searching() || !self.filter.trim().is_empty();
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
            self.selected = Some(index);
            self.picked.clear();
            self.set_examples(vec![Example {
                source: ExampleSource::Item(index),
                positive: true,
            }]);
        }
    }

    /// Sorts by similarity to all of `indices` together.
    pub fn search_by(&mut self, indices: &[usize]) {
        let examples = (indices.iter())
            .filter(|&&i| i < self.items.len())
            .map(|&i| Example {
                source: ExampleSource::Item(i),
                positive: true,
            })
            .collect();
        self.picked.clear();
        self.set_examples(examples);
    }

    /// Adds an example; an image already among the examples changes side instead.
    pub fn add_example(&mut self, source: ExampleSource, positive: bool) {
        let mut examples = self.examples.clone();
        if let ExampleSource::Item(i) = source {
            examples.retain(|e| !matches!(e.source, ExampleSource::Item(j) if j == i));
        }
        examples.push(Example { source, positive });
        self.set_examples(examples);
    }

    /// Takes one example out of the search; the last one out returns to folder order.
    pub fn remove_example(&mut self, at: usize) {
        let mut examples = self.examples.clone();
        if at < examples.len() {
            examples.remove(at);
        }
        self.set_examples(examples);
    }

    /// Sorts by a picture from outside the folder alone.
    pub fn search_by_outside(&mut self, picture: OutsidePicture) {
        self.picked.clear();
        self.set_examples(vec![Example {
            source: ExampleSource::Outside(picture),
            positive: true,
        }]);
    }

    pub fn examples(&self) -> &[Example] {
        &self.examples
    }

    /// The one image the grid is sorted by, when the search is a single click's.
    pub fn query(&self) -> Option<usize> {
        match self.examples.as_slice() {
            [Example {
                source: ExampleSource::Item(i),
                positive: true,
            }] => Some(*i),
            _ => None,
        }
    }

    /// Whether the grid is sorted by a search.
    pub fn is_searching(&self) -> bool {
        !self.examples.is_empty()
    }

    fn set_examples(&mut self, examples: Vec<Example>) {
        self.examples = examples;
        if self.examples.is_empty() {
            self.scores.iter_mut().for_each(|s| *s = None);
            self.cutoff = None;
        }
        self.stale = true;
    }

    pub fn folder_order(&mut self) {
        self.set_examples(Vec::new());
    }

    /// Ctrl+click: adds `index` to the picked images, or takes it out.
    pub fn toggle_picked(&mut self, index: usize) {
        match self.picked.iter().position(|&p| p == index) {
            Some(at) => {
                self.picked.remove(at);
            }
            None => self.picked.push(index),
        }
        self.selected = Some(index);
    }

    /// Shift+click: picks every image from the cursor to `index`, in display order.
    pub fn pick_range(&mut self, index: usize) {
        let order = self.order().to_vec();
        let from = self
            .selected
            .and_then(|s| order.iter().position(|&i| i == s));
        let to = order.iter().position(|&i| i == index);
        let (Some(from), Some(to)) = (from.or(to), to) else {
            return;
        };
        for &i in &order[from.min(to)..=from.max(to)] {
            if !self.picked.contains(&i) {
                self.picked.push(i);
            }
        }
        self.selected = Some(index);
    }

    pub fn set_cutoff(&mut self, cutoff: Option<f32>) {
        if cutoff != self.cutoff {
            self.cutoff = cutoff;
            self.stale = true;
        }
    }

    /// How many images score at or above `threshold`, of those with a score.
    pub fn count_above(&self, threshold: f32) -> (usize, usize) {
        // Drawn every frame while a search is on: count without copying the scores.
        let scored = self.scores.iter().flatten();
        let above = scored.clone().filter(|&&s| s >= threshold).count();
        (above, scored.count())
    }

    fn rebuild(&mut self) {
        self.stale = false;
        self.score_against_examples();
        let needle = self.filter.trim().to_lowercase();
        let cutoff = self.cutoff.filter(|_| self.is_searching());
        let mut order: Vec<usize> = (0..self.items.len())
            .filter(|&i| !self.items[i].removed && self.items[i].matches(&needle))
            .filter(|&i| cutoff.is_none_or(|c| self.scores[i].is_some_and(|s| s >= c)))
            .collect();
        if self.is_searching() {
            similarity_order(&mut order, self.query(), &self.scores);
        }
        self.order = order;
    }

    /// Scores every item against the examples that have a vector so far.
    fn score_against_examples(&mut self) {
        let vector_of = |e: &Example| -> Option<Vec<f32>> {
            match &e.source {
                ExampleSource::Item(i) => self.vectors.get(*i),
                ExampleSource::Outside(p) => Some(p.embedding.clone()),
            }
        };
        let (mut positive, mut negative) = (Vec::new(), Vec::new());
        for e in &self.examples {
            if let Some(v) = vector_of(e) {
                match e.positive {
                    true => positive.push(v),
                    false => negative.push(v),
                }
            }
        }
        let positive: Vec<&[f32]> = positive.iter().map(Vec::as_slice).collect();
        let negative: Vec<&[f32]> = negative.iter().map(Vec::as_slice).collect();
        let Ok(query) = Query::new(&positive, &negative) else {
            self.scores.iter_mut().for_each(|s| *s = None);
            return;
        };
        self.scores = self.vectors.scores(query.vector());
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
                item.analysed = false;
                self.vectors.clear(i);
                item.thumbnail = None;
            }
        }
        let examples: Vec<Example> = (self.examples.iter())
            .filter(|e| !matches!(e.source, ExampleSource::Item(i) if indices.contains(&i)))
            .cloned()
            .collect();
        self.picked.retain(|p| !indices.contains(p));
        self.set_examples(examples);
        if self.selected.is_some_and(|s| indices.contains(&s)) {
            self.selected = None;
        }
        self.stale = true;
    }

    /// How many images have been analysed.
    pub fn analysed(&self) -> usize {
        self.items.iter().filter(|i| i.analysed).count()
    }
}

/// How many items hold a thumbnail at once where an index can give them back: a few
/// screens of the largest tiles (about 12 KB each, some 25 MB in all).
pub const THUMBNAILS_HELD: usize = 2000;

/// A number no gallery had before.
fn next_generation() -> u64 {
    static COUNTER: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1);
    COUNTER.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
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
                file_id: None,
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

    fn with_thumbnail(n: u8) -> Analysis {
        let thumbnail = Thumbnail {
            jpeg: vec![n],
            width: 1,
            height: 1,
        };
        Analysis {
            thumbnail: Some(thumbnail),
            ..analysis([1.0, 0.0], "x")
        }
    }

    #[test]
    fn thumbnails_beyond_the_bound_are_let_go_and_asked_for_again() {
        let mut g = gallery(&["a", "b", "c", "d", "e"]);
        g.bound_thumbnails(Some(2));
        (0..5).for_each(|i| g.set_analysis(i, with_thumbnail(i as u8)));
        // The two given last are held; the others were let go.
        assert_eq!(g.thumbnails_held(), 2);
        assert_eq!(g.thumbnail(4).map(|t| t.jpeg.clone()), Some(vec![4]));
        assert!(g.thumbnail(3).is_some());
        assert!(g.thumbnail(0).is_none() && g.thumbnail(1).is_none());
        // Those asked for without one are wanted, lowest first, with their paths.
        let (wanted, generation) = g.take_wanted_thumbnails(1);
        assert_eq!(wanted, [(0, PathBuf::from("a"))]);
        let (wanted, _) = g.take_wanted_thumbnails(10);
        assert_eq!(wanted, [(1, PathBuf::from("b"))]);
        // One read back is held, and the longest held is let go.
        g.hold_thumbnail(0, with_thumbnail(0).thumbnail.unwrap(), generation);
        assert_eq!(g.thumbnails_held(), 2);
        assert!(g.thumbnail(0).is_some() && g.thumbnail(4).is_some());
        assert!(g.items[3].thumbnail.is_none());
        // The index had none for b: it is not asked for again.
        g.no_thumbnail(1, generation);
        assert!(g.thumbnail(1).is_none());
        assert!(g.take_wanted_thumbnails(10).0.iter().all(|w| w.0 != 1));
        // A read for the gallery before a new scan is not taken.
        g.merge_scan(&[ImageEntry {
            path: PathBuf::from("c"),
            size: 0,
            modified: None,
            file_id: None,
        }]);
        g.hold_thumbnail(0, with_thumbnail(9).thumbnail.unwrap(), generation);
        assert!(g.items[0].thumbnail.is_none());
        // Without a bound every thumbnail is held.
        let mut all = gallery(&["a", "b", "c"]);
        all.bound_thumbnails(None);
        (0..3).for_each(|i| all.set_analysis(i, with_thumbnail(i as u8)));
        assert_eq!(all.thumbnails_held(), 3);
    }

    #[test]
    fn a_new_scan_keeps_analyses_and_the_search_and_drops_what_is_gone() {
        let mut g = gallery(&["a", "b", "c"]);
        g.set_analysis(0, analysis([1.0, 0.0], "x"));
        g.set_analysis(1, analysis([0.0, 1.0], "y"));
        g.set_analysis(2, analysis([0.6, 0.8], "z"));
        g.add_example(ExampleSource::Item(1), true);
        g.add_example(ExampleSource::Item(0), false);
        g.picked = vec![0, 2];
        g.selected = Some(2);
        // "a" was deleted, "n" is new and sorts first.
        let rescanned = gallery(&["n", "b", "c"]);
        let entries: Vec<ImageEntry> = (rescanned.items.iter())
            .map(|i| ImageEntry {
                path: i.path.clone(),
                size: 0,
                modified: None,
                file_id: None,
            })
            .collect();
        let moved_to = g.merge_scan(&entries);
        assert_eq!(moved_to, [None, Some(1), Some(2)]);
        let names: Vec<&str> = g.items.iter().map(|i| i.name.as_str()).collect();
        assert_eq!(names, ["n", "b", "c"]);
        assert!(
            !g.items[0].analysed && !g.vectors.has(0),
            "the new image waits for its vector"
        );
        assert_eq!(g.items[2].top[0].label, "z", "c keeps its analysis");
        assert_eq!(
            g.query(),
            Some(1),
            "the search follows b, and drops the deleted a"
        );
        assert_eq!((g.picked.clone(), g.selected), (vec![2], Some(2)));
        assert_eq!(g.order(), [1, 2, 0], "the new image waits at the end");
    }

    #[test]
    fn sorting_puts_query_first_then_by_score_then_pending_last() {
        let mut g = gallery(&["a", "b", "c", "d"]);
        g.set_analysis(0, analysis([1.0, 0.0], "x"));
        g.set_analysis(1, analysis([0.0, 1.0], "y"));
        g.set_analysis(3, analysis([0.8, 0.6], "z"));
        g.sort_by_similarity(1);
        assert_eq!(g.order(), [1, 3, 0, 2]);
        // Vectors are kept as f16: scores within a thousandth.
        assert!(g.scores[3].is_some_and(|s| (s - 0.6).abs() < 1e-3));
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
