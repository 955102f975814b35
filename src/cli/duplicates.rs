//! `lookalike duplicates DIR`: index what is missing, then print the groups of look-alike
//! images, largest first, each with its proposed keeper. Nothing is changed on disk here; the
//! app is where files are moved to the trash, after the user confirms.

use std::io::Write;
use std::path::PathBuf;

use clap::Args;
use serde_json::json;

use lookalike::duplicates::pixels::PixelMatches;
use lookalike::duplicates::{
    groups, groups_confirmed, human_bytes, FileFacts, Group, Level, Neighbours,
    NEIGHBOURS_PER_IMAGE, SLACK,
};
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
    /// 0.80 with a pixel check, scene 0.78, subject 0.40 with the built-in model).
    #[arg(long, value_name = "T", value_parser = threshold_in_range)]
    threshold: Option<f32>,
    /// One JSON object per group and line.
    #[arg(long)]
    json: bool,
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
    // A threshold given by hand is the embeddings' alone; the photo level also checks pixels.
    let (threshold, check_pixels) = match args.threshold {
        Some(t) => (t, false),
        None => {
            let level = Level::from_name(&args.level)?;
            (level.threshold(), level.checks_pixels())
        }
    };
    let (engine, images) = folder_images(&args.model, &args.cache, &args.dir, check_pixels)?;
    let dim = engine.info().dim;
    let vectors: Vec<f32> = images
        .iter()
        .flat_map(|i| i.vector.iter().copied())
        .collect();
    let neighbours = Neighbours::find(&vectors, dim, threshold - SLACK, NEIGHBOURS_PER_IMAGE);
    let facts: Vec<FileFacts> = images.iter().map(facts_of).collect();
    let groups = match check_pixels {
        true => {
            let thumbnail = |i: usize| images[i].thumbnail.as_ref()?.to_rgb().ok();
            let matches = PixelMatches::find(&neighbours, threshold, &thumbnail);
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
