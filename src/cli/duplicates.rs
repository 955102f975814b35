//! `lookalike duplicates DIR`: index what is missing, then print the groups of look-alike
//! images, largest first, each with its proposed keeper. Nothing is changed on disk here; the
//! app is where files are moved to the trash, after the user confirms.

use std::io::Write;
use std::path::PathBuf;

use clap::Args;
use serde_json::json;

use lookalike::decode::Thumbnail;
use lookalike::duplicates::copies::{self, CopyMatches};
use lookalike::duplicates::{
    groups, groups_confirmed, human_bytes, FileFacts, Group, Level, Neighbours,
    NEIGHBOURS_PER_IMAGE, SLACK,
};
use lookalike::index::{read_back_thumbnails, Store};
use lookalike::shown::shown_path;

use super::index::{folder_images, CacheArgs, FolderImage};
use super::{display, ModelArgs};

#[derive(Debug, Args)]
pub struct DuplicatesArgs {
    #[command(flatten)]
    model: ModelArgs,
    /// The folder to look through (recursively).
    dir: PathBuf,
    /// How alike pictures must be: the same photo after editing, the same scene, or the same
    /// kind of subject.
    #[arg(long, default_value = "photo", value_parser = ["photo", "scene", "subject"], conflicts_with = "threshold")]
    level: String,
    /// A cosine threshold instead of a level, by the embeddings alone (the levels: photo
    /// 0.35 with a keypoint check, scene 0.78, subject 0.40 with the built-in model).
    #[arg(long, value_name = "T", value_parser = threshold_in_range)]
    threshold: Option<f32>,
    /// One JSON object per group and line.
    #[arg(long)]
    json: bool,
    /// Instead of groups, every pair the photo level verified, one JSON object a line: both
    /// files, their cosine, how many keypoints agree, how much of each frame lies inside the
    /// other, and the verdict. For seeing why two pictures were (not) called one photo.
    #[arg(long, conflicts_with = "threshold")]
    pairs: bool,
    #[command(flatten)]
    cache: CacheArgs,
}

fn threshold_in_range(text: &str) -> Result<f32, String> {
    let t: f32 = text.parse().map_err(|e| format!("{e}"))?;
    match (-1.0..=1.0).contains(&t) {
        true => Ok(t),
        false => Err("a cosine threshold lies between -1 and 1".into()),
    }
}

pub fn run(args: &DuplicatesArgs) -> anyhow::Result<i32> {
    // A threshold given by hand is the embeddings' alone; the photo level also matches keypoints.
    let (threshold, check_copies) = match args.threshold {
        Some(t) => (t, false),
        None => {
            let level = Level::from_name(&args.level)?;
            (level.threshold(), level.checks_copies())
        }
    };
    anyhow::ensure!(
        check_copies || !args.pairs,
        "--pairs shows the photo level's verified pairs; the {} level verifies none",
        args.level
    );
    let (engine, images, mut index) =
        folder_images(&args.model, &args.cache, &args.dir, check_copies)?;
    let dim = engine.info().dim;
    let vectors: Vec<f32> = images
        .iter()
        .flat_map(|i| i.vector.iter().copied())
        .collect();
    let neighbours = Neighbours::find(&vectors, dim, threshold - SLACK, NEIGHBOURS_PER_IMAGE);
    let facts: Vec<FileFacts> = images.iter().map(facts_of).collect();
    let groups = match check_copies {
        true => {
            let matches = copy_matches(&neighbours, threshold, &images, index.as_deref_mut())?;
            if args.pairs {
                write_pairs(&matches, &neighbours, &images)?;
                return Ok(0);
            }
            let confirm = |a: usize, b: usize| matches.confirms(a, b);
            groups_confirmed(&neighbours, threshold, &facts, &confirm)
        }
        false => groups(&neighbours, threshold, &facts),
    };
    let mut out = std::io::stdout().lock();
    if !args.json {
        let in_groups: usize = groups.iter().map(|g| g.members.len()).sum();
        writeln!(
            out,
            "{} groups of look-alikes ({in_groups} of {} images) at {threshold:.2} in {}:",
            groups.len(),
            images.len(),
            display(&args.dir)
        )?;
    }
    for (number, group) in groups.iter().enumerate() {
        match args.json {
            true => writeln!(out, "{}", group_json(number + 1, group, &images))?,
            false => write_group(&mut out, number + 1, group, &images)?,
        }
    }
    Ok(0)
}

/// Verifies the candidate pairs at `threshold` by their keypoints: kept in the index, or made
/// from the thumbnails and then kept there, so that the next run decodes nothing. Features
/// the index cannot keep (read-only, busy) are only a warning: this run has them anyway.
fn copy_matches(
    neighbours: &Neighbours,
    threshold: f32,
    images: &[FolderImage],
    mut index: Option<&mut (dyn Store + 'static)>,
) -> anyhow::Result<CopyMatches> {
    let pairs = copies::candidate_pairs(neighbours, threshold, copies::PAIRS_PER_IMAGE);
    let needed = copies::images_in(&pairs, images.len());
    let paths: Vec<PathBuf> = images.iter().map(|i| i.path.clone()).collect();
    let mut thumbnails: Vec<Option<Thumbnail>> =
        images.iter().map(|i| i.thumbnail.clone()).collect();
    let mut warnings = Vec::new();
    if let Some(index) = index.as_deref_mut() {
        warnings.extend(read_back_thumbnails(
            index,
            &needed,
            &paths,
            &mut thumbnails,
        ));
    }
    let thumbnail = |i: usize| thumbnails[i].as_ref()?.to_rgb().ok();
    let (features, kept) = copies::kept_features(&needed, &paths, index, &thumbnail);
    for warning in warnings.into_iter().chain(kept) {
        eprintln!("warning: {warning}");
    }
    Ok(CopyMatches::find(
        neighbours,
        threshold,
        copies::PAIRS_PER_IMAGE,
        &features,
    ))
}

fn write_pairs(
    matches: &CopyMatches,
    neighbours: &Neighbours,
    images: &[FolderImage],
) -> anyhow::Result<()> {
    let mut out = std::io::stdout().lock();
    for (a, b, verdict) in matches.pairs() {
        let line = json!({
            "files": [display(&images[a].path), display(&images[b].path)],
            "cosine": neighbours.similarity(a, b),
            "inliers": verdict.inliers,
            "keypoints": verdict.keypoints,
            "in_perspective": verdict.in_perspective,
            "bend": { "significance": verdict.bend.significance, "share": verdict.bend.share },
            "inside": verdict.inside,
            "copy": verdict.is_copy(),
        });
        writeln!(out, "{line}")?;
    }
    Ok(())
}

fn facts_of(image: &FolderImage) -> FileFacts {
    FileFacts {
        pixels: u64::from(image.width) * u64::from(image.height),
        bytes: image.bytes,
        modified_ns: image.modified_ns,
    }
}

fn group_json(number: usize, group: &Group, images: &[FolderImage]) -> serde_json::Value {
    let files: Vec<serde_json::Value> = (group.members.iter().zip(&group.scores))
        .map(|(&m, &score)| {
            let image = &images[m];
            json!({
                "file": display(&image.path),
                "score": score,
                "width": image.width,
                "height": image.height,
                "bytes": image.bytes,
                "keep": m == group.keeper(),
            })
        })
        .collect();
    json!({"group": number, "files": files})
}

fn write_group(
    out: &mut impl Write,
    number: usize,
    group: &Group,
    images: &[FolderImage],
) -> std::io::Result<()> {
    writeln!(out, "\ngroup {number}: {} pictures", group.members.len())?;
    for (&m, &score) in group.members.iter().zip(&group.scores) {
        let image = &images[m];
        let mark = if m == group.keeper() {
            "keep  "
        } else {
            "      "
        };
        writeln!(
            out,
            "  {mark} {score:.3}  {:>5}×{:<5} {:>9}  {}",
            image.width,
            image.height,
            human_bytes(image.bytes),
            shown_path(&image.path)
        )?;
    }
    Ok(())
}
