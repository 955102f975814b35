//! Groups of look-alike images, for cleaning up: the same photo saved several times, edited,
//! re-encoded; a burst of shots of one scene; pictures of the same kind of thing.
//!
//! Images are grouped by the cosine similarity of their embeddings at a threshold, with three
//! named levels ([`Level`]) and any threshold in between; at the `photo` level a pair must
//! also be found a copy by its keypoints ([`copies`]). Groups never chain: two images join
//! the same group only through a pair at or above the threshold, and only if every pair in the
//! merged group is at least `threshold - SLACK` alike. So "A looks like B and B like C" cannot
//! put an A and a C that do not look alike together. Pairs are taken best first, so each image
//! ends up with its closest look-alikes.
//!
//! Each group proposes one picture to keep: the one with the most pixels, then the largest
//! file, then the oldest, then the first in folder order.

pub mod copies;
mod int8;
mod neighbours;

pub use neighbours::Neighbours;

use rayon::prelude::*;

use crate::error::{Error, Result};

/// How far below the threshold any two members of one group may be.
pub const SLACK: f32 = 0.1;

/// Neighbours kept per image. It also bounds a group's size, since every pair in a group must
/// be known: a burst larger than this is split in parts.
pub const NEIGHBOURS_PER_IMAGE: usize = 96;

/// The named strictness levels.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Level {
    /// The same picture after editing: re-encoded, resized, cropped, brightened, slightly
    /// rotated, captioned, converted, mirrored.
    #[default]
    Photo,
    /// Shots of the same place or object taken moments apart.
    Scene,
    /// The same kind of thing.
    Subject,
}

impl Level {
    pub const ALL: [Level; 3] = [Level::Photo, Level::Scene, Level::Subject];

    pub fn name(self) -> &'static str {
        match self {
            Level::Photo => "photo",
            Level::Scene => "scene",
            Level::Subject => "subject",
        }
    }

    pub fn from_name(name: &str) -> Result<Self> {
        Level::ALL
            .into_iter()
            .find(|l| l.name().eq_ignore_ascii_case(name))
            .ok_or_else(|| {
                Error::Usage(format!(
                    "unknown level '{name}'; the levels are photo, scene and subject"
                ))
            })
    }

    /// Whether pairs must also be found copies by their keypoints ([`copies`]) to count.
    pub fn checks_copies(self) -> bool {
        self == Level::Photo
    }

    /// The cosine threshold of the level, for EfficientNet-Lite0's embeddings.
    ///
    /// `photo` is a floor for candidates, 0.35: a copy turned a quarter, cut to half or put
    /// in a frame can score that low, and the copy check ([`copies`]) decides. Measured with
    /// `scripts/make_duplicate_bench.py --edits hard` (tuned on) and
    /// `scripts/make_copy_bench.py` (never tuned on); the README has the table. Bursts peak
    /// near 0.78–0.91, and photos of one kind of animal in the tutorial's images score
    /// 0.43–0.48 to one another and under 0.2 to other kinds.
    pub fn threshold(self) -> f32 {
        match self {
            Level::Photo => 0.35,
            Level::Scene => 0.78,
            Level::Subject => 0.40,
        }
    }
}

/// What the keeper rule looks at, per image.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct FileFacts {
    /// Width × height.
    pub pixels: u64,
    /// File size.
    pub bytes: u64,
    /// Modification time, nanoseconds since the epoch.
    pub modified_ns: i64,
}

/// A group of look-alikes: the proposed keeper first, then the others, most similar to it
/// first.
#[derive(Debug, Clone, PartialEq)]
pub struct Group {
    /// Image indices.
    pub members: Vec<usize>,
    /// Each member's similarity to the keeper (the keeper's own is 1.0).
    pub scores: Vec<f32>,
}

impl Group {
    pub fn keeper(&self) -> usize {
        // A group has two members or more (`clusters` keeps no single image).
        self.members[0]
    }
}

/// The groups at `threshold`, largest first. `facts` holds one entry per image.
pub fn groups(neighbours: &Neighbours, threshold: f32, facts: &[FileFacts]) -> Vec<Group> {
    groups_confirmed(neighbours, threshold, facts, &|_, _| true)
}

/// [`groups`], where a pair joins a group only if `confirm` agrees too (the `photo` level's
/// copy check).
pub fn groups_confirmed(
    neighbours: &Neighbours,
    threshold: f32,
    facts: &[FileFacts],
    confirm: &(dyn Fn(usize, usize) -> bool + Sync),
) -> Vec<Group> {
    let mut groups: Vec<Group> = clusters(neighbours, threshold, confirm)
        .into_iter()
        .map(|members| arrange(members, neighbours, facts))
        .collect();
    groups
        .sort_by(|a, b| (b.members.len().cmp(&a.members.len())).then(a.keeper().cmp(&b.keeper())));
    groups
}

/// The keeper first, then the rest by similarity to it.
fn arrange(members: Vec<usize>, neighbours: &Neighbours, facts: &[FileFacts]) -> Group {
    let keep = keeper(&members, facts);
    let score = |m: usize| match m == keep {
        true => 1.0,
        // Every pair of a group is known (see `clusters`); 0 is never reached.
        false => neighbours.similarity(keep, m).unwrap_or(0.0),
    };
    let mut ordered: Vec<(usize, f32)> = members.iter().map(|&m| (m, score(m))).collect();
    ordered.sort_by(|a, b| {
        (b.0 == keep)
            .cmp(&(a.0 == keep))
            .then(b.1.total_cmp(&a.1))
            .then(a.0.cmp(&b.0))
    });
    Group {
        members: ordered.iter().map(|p| p.0).collect(),
        scores: ordered.iter().map(|p| p.1).collect(),
    }
}

/// The member to keep: the most pixels, then the largest file, then the oldest, then the
/// first in folder order.
pub fn keeper(members: &[usize], facts: &[FileFacts]) -> usize {
    let fact = |m: usize| facts.get(m).copied().unwrap_or_default();
    members
        .iter()
        .copied()
        .min_by(|&a, &b| {
            let (fa, fb) = (fact(a), fact(b));
            (fb.pixels.cmp(&fa.pixels))
                .then(fb.bytes.cmp(&fa.bytes))
                .then(fa.modified_ns.cmp(&fb.modified_ns))
                .then(a.cmp(&b))
        })
        .unwrap_or(0)
}

/// Groups of two or more images: pairs at or above `threshold` that `confirm` accepts are
/// joined best first, as long as every pair of the joined group stays at or above
/// `threshold - SLACK`.
pub fn clusters(
    neighbours: &Neighbours,
    threshold: f32,
    confirm: &(dyn Fn(usize, usize) -> bool + Sync),
) -> Vec<Vec<usize>> {
    let n = neighbours.len();
    let mut group_of: Vec<usize> = (0..n).collect();
    let mut members: Vec<Vec<usize>> = (0..n).map(|i| vec![i]).collect();
    let pairs: Vec<(usize, usize)> = pairs_above(neighbours, threshold)
        .into_par_iter()
        .filter(|&(_, a, b)| confirm(a, b))
        .map(|(_, a, b)| (a, b))
        .collect();
    for (a, b) in pairs {
        let (ga, gb) = (group_of[a], group_of[b]);
        if ga == gb || !all_alike(&members[ga], &members[gb], neighbours, threshold - SLACK) {
            continue;
        }
        let (keep, gone) = match members[ga].len() >= members[gb].len() {
            true => (ga, gb),
            false => (gb, ga),
        };
        let moved = std::mem::take(&mut members[gone]);
        moved.iter().for_each(|&m| group_of[m] = keep);
        members[keep].extend(moved);
    }
    members
        .into_iter()
        .filter(|g| g.len() > 1)
        .map(|mut g| {
            g.sort_unstable();
            g
        })
        .collect()
}

/// Every known pair at or above `threshold`, once, best first (ties in index order).
fn pairs_above(neighbours: &Neighbours, threshold: f32) -> Vec<(f32, usize, usize)> {
    let mut pairs: Vec<(f32, usize, usize)> = (0..neighbours.len())
        .flat_map(|a| {
            neighbours
                .of(a)
                .iter()
                .take_while(move |p| p.1 >= threshold)
                .map(move |&(b, s)| (s, a.min(b as usize), a.max(b as usize)))
        })
        .collect();
    pairs.sort_unstable_by(|x, y| y.0.total_cmp(&x.0).then(x.1.cmp(&y.1)).then(x.2.cmp(&y.2)));
    pairs.dedup_by(|x, y| x.1 == y.1 && x.2 == y.2);
    pairs
}

/// Whether every image of `a` is at least `least` alike to every image of `b`.
fn all_alike(a: &[usize], b: &[usize], neighbours: &Neighbours, least: f32) -> bool {
    a.iter().all(|&x| {
        b.iter()
            .all(|&y| neighbours.similarity(x, y).is_some_and(|s| s >= least))
    })
}

/// A file size as people write it: "2.8 MB", "340 kB", "512 B".
pub fn human_bytes(bytes: u64) -> String {
    match bytes {
        0..1_000 => format!("{bytes} B"),
        1_000..1_000_000 => format!("{:.0} kB", bytes as f64 / 1e3),
        1_000_000..1_000_000_000 => format!("{:.1} MB", bytes as f64 / 1e6),
        _ => format!("{:.2} GB", bytes as f64 / 1e9),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Unit vectors in the plane at the given angles (degrees): the cosine of two is the
    /// cosine of the angle between them.
    fn at_angles(angles: &[f32]) -> Vec<f32> {
        angles
            .iter()
            .flat_map(|a| {
                let r = a.to_radians();
                [r.cos(), r.sin()]
            })
            .collect()
    }

    fn neighbours(angles: &[f32]) -> Neighbours {
        Neighbours::find(&at_angles(angles), 2, -1.0, NEIGHBOURS_PER_IMAGE)
    }

    #[test]
    fn a_chain_does_not_join_pictures_that_do_not_look_alike() {
        // A~B and B~C at 0.94 (20°), but A and C only 0.77 (40°): below 0.9 - 0.1.
        let n = neighbours(&[0.0, 20.0, 40.0]);
        let groups = clusters(&n, 0.9, &|_, _| true);
        assert_eq!(groups.len(), 1, "{groups:?}");
        assert_eq!(groups[0].len(), 2, "only one of the pair joins: {groups:?}");
        assert!(!(groups[0].contains(&0) && groups[0].contains(&2)));
    }

    #[test]
    fn within_the_slack_a_chain_is_one_group() {
        // 10° steps: neighbours 0.985, ends 0.94, which is above 0.95 - 0.1.
        let n = neighbours(&[0.0, 10.0, 20.0]);
        assert_eq!(clusters(&n, 0.95, &|_, _| true), vec![vec![0, 1, 2]]);
    }

    #[test]
    fn the_closest_pair_wins_a_contested_picture() {
        // B (12°) is closer to A (0°, 0.98) than to C (37°, 0.91); A and C (0.80) are too far
        // apart to share a group, so B goes with A.
        let n = neighbours(&[0.0, 12.0, 37.0]);
        assert_eq!(clusters(&n, 0.9, &|_, _| true), vec![vec![0, 1]]);
    }

    #[test]
    fn scene_is_stricter_than_subject_and_only_photo_checks_copies() {
        // `photo` takes candidates from further down, and its copy check decides.
        assert!(Level::Scene.threshold() > Level::Subject.threshold());
        assert!(Level::Photo.checks_copies());
        assert!(!Level::Scene.checks_copies() && !Level::Subject.checks_copies());
        // Pictures 38° apart (0.79) are alike at no level stricter than that.
        let n = neighbours(&[0.0, 38.0, 100.0]);
        for level in Level::ALL {
            let together = !clusters(&n, level.threshold(), &|_, _| true).is_empty();
            assert_eq!(
                together,
                level.threshold() <= 38f32.to_radians().cos(),
                "{level:?}"
            );
        }
        assert_eq!(Level::from_name("Scene").unwrap(), Level::Scene);
        assert!(Level::from_name("film").is_err());
    }

    #[test]
    fn the_keeper_has_the_most_pixels_then_the_largest_file_then_is_oldest() {
        let fact = |pixels, bytes, modified_ns| FileFacts {
            pixels,
            bytes,
            modified_ns,
        };
        let facts = [
            fact(100, 5, 3),
            fact(200, 1, 9),
            fact(200, 2, 9),
            fact(200, 2, 4),
        ];
        assert_eq!(keeper(&[0, 1], &facts), 1, "more pixels");
        assert_eq!(keeper(&[1, 2], &facts), 2, "same pixels, larger file");
        assert_eq!(keeper(&[1, 2, 3], &facts), 3, "same pixels and size, older");
        let same = [fact(1, 1, 1); 3];
        assert_eq!(keeper(&[2, 1], &same), 1, "a full tie goes to folder order");
    }

    #[test]
    fn groups_put_the_keeper_first_with_scores_to_it_largest_group_first() {
        let n = neighbours(&[0.0, 5.0, 3.0, 90.0, 92.0, 180.0]);
        let facts = [
            FileFacts::default(),
            FileFacts {
                pixels: 10,
                ..Default::default()
            },
            FileFacts::default(),
            FileFacts::default(),
            FileFacts::default(),
            FileFacts::default(),
        ];
        let groups = groups(&n, 0.95, &facts);
        assert_eq!(groups.len(), 2);
        assert_eq!(groups[0].members, vec![1, 2, 0], "keeper 1, then by score");
        assert_eq!(groups[0].scores[0], 1.0);
        assert!((groups[0].scores[1] - 2f32.to_radians().cos()).abs() < 1e-5);
        assert_eq!(groups[1].members, vec![3, 4], "a tie keeps folder order");
    }

    #[test]
    fn sizes_read_as_people_write_them() {
        assert_eq!(human_bytes(512), "512 B");
        assert_eq!(human_bytes(340_000), "340 kB");
        assert_eq!(human_bytes(2_811_234), "2.8 MB");
    }

    #[test]
    fn equal_scores_group_the_same_way_every_time() {
        // Three identical pictures and a fourth identical pair elsewhere.
        let n = neighbours(&[0.0, 0.0, 0.0, 50.0, 50.0]);
        let first = clusters(&n, 0.9, &|_, _| true);
        assert_eq!(first, vec![vec![0, 1, 2], vec![3, 4]]);
        assert_eq!(clusters(&n, 0.9, &|_, _| true), first);
    }
}
