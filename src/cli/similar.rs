//! `lookalike similar Q1 [Q2 ...] [--not N1 ...] [--in DIR]`: rank a folder by how much its
//! images look like the query pictures, and unlike the `--not` ones (see [`Query`]). Query
//! pictures may lie outside the folder: they are embedded but never added to the index, and
//! they are never listed among the results.

use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::Context;
use clap::Args;
use serde_json::json;

use lookalike::query::Query;
use lookalike::similarity::rank;
use lookalike::Engine;

use super::index::{folder_images, CacheArgs};
use super::{display, ModelArgs};

#[derive(Debug, Args)]
pub struct SimilarArgs {
    #[command(flatten)]
    model: ModelArgs,
    /// The pictures to look like. With two or more, --in is needed.
    #[arg(required = true, value_name = "QUERY")]
    queries: Vec<PathBuf>,
    /// Pictures to look unlike: images close to them are pushed down.
    #[arg(long = "not", value_name = "IMAGE", num_args = 1..)]
    not: Vec<PathBuf>,
    /// Folder to search; defaults to the query's folder when there is one query.
    #[arg(long = "in", value_name = "DIR")]
    dir: Option<PathBuf>,
    /// Print only the K best matches.
    #[arg(long, value_name = "K")]
    top: Option<usize>,
    /// Print only matches scoring at least S.
    #[arg(long, value_name = "S", allow_negative_numbers = true)]
    min_score: Option<f32>,
    /// One JSON object per line, best first.
    #[arg(long)]
    json: bool,
    #[command(flatten)]
    cache: CacheArgs,
}

pub fn run(args: &SimilarArgs) -> anyhow::Result<i32> {
    let dir = folder_to_search(args)?;
    let (engine, found) = folder_images(&args.model, &args.cache, &dir, false)?;
    let query = build_query(&engine, &args.queries, &args.not)?;
    let examples: Vec<Option<PathBuf>> = (args.queries.iter().chain(&args.not))
        .map(|p| std::fs::canonicalize(p).ok())
        .collect();
    let found: Vec<(PathBuf, Vec<f32>)> = found
        .into_iter()
        .filter(|image| !examples.contains(&std::fs::canonicalize(&image.path).ok()))
        .map(|image| (image.path, image.vector))
        .collect();
    let ranked = rank(query.vector(), found.iter().map(|(_, v)| v.as_slice()));
    let shown = ranked
        .into_iter()
        .take_while(|&(_, score)| args.min_score.is_none_or(|least| score >= least))
        .take(args.top.unwrap_or(usize::MAX));
    let mut out = std::io::stdout().lock();
    if !args.json {
        writeln!(
            out,
            "Most similar to {} ({}, {} images in {}):",
            describe(&args.queries, &args.not),
            engine.info().id,
            found.len(),
            display(&dir)
        )?;
    }
    for (place, (i, score)) in shown.enumerate() {
        let path = &found[i].0;
        match args.json {
            true => writeln!(out, "{}", json!({"file": display(path), "score": score}))?,
            false => writeln!(out, "{:>4}. {score:.4}  {}", place + 1, display(path))?,
        }
    }
    Ok(0)
}

/// `--in DIR`, or the folder of the one query.
fn folder_to_search(args: &SimilarArgs) -> anyhow::Result<PathBuf> {
    if let Some(dir) = &args.dir {
        return Ok(dir.clone());
    }
    anyhow::ensure!(
        args.queries.len() == 1,
        "with {} query pictures, say which folder to search with --in DIR",
        args.queries.len()
    );
    let parent = args.queries[0]
        .parent()
        .filter(|p| !p.as_os_str().is_empty());
    Ok(parent.unwrap_or(Path::new(".")).to_path_buf())
}

/// Embeds the example pictures (never storing them) and folds them into one query.
fn build_query(
    engine: &Engine,
    positive: &[PathBuf],
    negative: &[PathBuf],
) -> anyhow::Result<Query> {
    let embed = |paths: &[PathBuf]| -> anyhow::Result<Vec<Vec<f32>>> {
        paths
            .iter()
            .map(|p| Ok(engine.analyse_file(p)?.embedding))
            .collect()
    };
    let (positive, negative) = (embed(positive)?, embed(negative)?);
    let (positive, negative): (Vec<&[f32]>, Vec<&[f32]>) = (
        positive.iter().map(Vec::as_slice).collect(),
        negative.iter().map(Vec::as_slice).collect(),
    );
    Query::new(&positive, &negative).context("building the search")
}

/// "a.jpg", "a.jpg + b.jpg, not c.jpg".
fn describe(positive: &[PathBuf], negative: &[PathBuf]) -> String {
    let names = |paths: &[PathBuf]| {
        paths
            .iter()
            .map(|p| display(p))
            .collect::<Vec<_>>()
            .join(" + ")
    };
    match negative.is_empty() {
        true => names(positive),
        false => format!("{}, not {}", names(positive), names(negative)),
    }
}
