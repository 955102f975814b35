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
use lookalike::shown::shown_path;
use lookalike::similarity::rank;
use lookalike::Engine;

use lookalike::pipeline::{stamp, DynStore};

use super::index::{folder_images, index_folder, CacheArgs};
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
    /// Rank what the index already holds for the folder, without looking for new or changed
    /// files first (for a large library that another machine keeps indexed).
    #[arg(long, conflicts_with = "no_cache")]
    no_scan: bool,
    /// Score every image even where the index would search approximately (a PostgreSQL
    /// library of 20,000 images or more is searched through its HNSW index).
    #[arg(long)]
    exact: bool,
    #[command(flatten)]
    cache: CacheArgs,
}

pub fn run(args: &SimilarArgs) -> anyhow::Result<i32> {
    let dir = folder_to_search(args)?;
    let ranking = match args.cache.open(&dir)? {
        Some(mut index) => rank_in_index(args, &dir, index.as_mut())?,
        None => rank_in_memory(args, &dir)?,
    };
    print_ranking(args, &dir, &ranking)
}

/// What `similar` found: the model, how many images it searched (when it knows) and the
/// matches, best first.
struct Ranking {
    model: &'static str,
    searched: Option<usize>,
    matches: Vec<(PathBuf, f32)>,
}

/// Indexes the folder (unless --no-scan), then lets the index rank it: a database searches
/// its own vectors, with HNSW once the library is large.
fn rank_in_index(args: &SimilarArgs, dir: &Path, index: &mut DynStore) -> anyhow::Result<Ranking> {
    let engine = args.model.engine_with_thumbnails()?;
    let mut searched = None;
    if !args.no_scan {
        let (report, _) = index_folder(&engine, Some(&mut *index), dir, false)?;
        for failure in &report.failed {
            eprintln!("skipped {}: {}", failure.file, failure.error);
        }
        searched = Some(report.images);
    }
    let query = build_query(&engine, &args.queries, &args.not)?;
    let examples = canonical_examples(args);
    let canonical_dir =
        std::fs::canonicalize(dir).with_context(|| format!("cannot open {}", display(dir)))?;
    // Room for the example pictures, which are left out of the results.
    let limit = args.top.map(|k| k + examples.len());
    let found = index.nearest(
        &canonical_dir,
        stamp(engine.info()),
        query.vector(),
        limit,
        args.exact,
    )?;
    let matches = found
        .into_iter()
        .filter(|m| !examples.contains(&Some(m.path.clone())))
        .map(|m| {
            // Shown as the user named the folder, as the scan does.
            let shown = m
                .path
                .strip_prefix(&canonical_dir)
                .map_or(m.path.clone(), |p| dir.join(p));
            (shown, m.score)
        })
        .collect();
    Ok(Ranking {
        model: engine.info().id,
        searched: searched.map(|n| n.saturating_sub(examples.iter().flatten().count())),
        matches,
    })
}

/// --no-cache: embeds the folder and ranks it here.
fn rank_in_memory(args: &SimilarArgs, dir: &Path) -> anyhow::Result<Ranking> {
    let (engine, found, _) = folder_images(&args.model, &args.cache, dir, false)?;
    let query = build_query(&engine, &args.queries, &args.not)?;
    let examples = canonical_examples(args);
    let found: Vec<(PathBuf, Vec<f32>)> = found
        .into_iter()
        .filter(|image| !examples.contains(&std::fs::canonicalize(&image.path).ok()))
        .map(|image| (image.path, image.vector))
        .collect();
    let ranked = rank(query.vector(), found.iter().map(|(_, v)| v.as_slice()));
    Ok(Ranking {
        model: engine.info().id,
        searched: Some(found.len()),
        matches: ranked
            .into_iter()
            .map(|(i, score)| (found[i].0.clone(), score))
            .collect(),
    })
}

/// The canonical paths of the example pictures (None for one that cannot be resolved).
fn canonical_examples(args: &SimilarArgs) -> Vec<Option<PathBuf>> {
    (args.queries.iter().chain(&args.not))
        .map(|p| std::fs::canonicalize(p).ok())
        .collect()
}

fn print_ranking(args: &SimilarArgs, dir: &Path, ranking: &Ranking) -> anyhow::Result<i32> {
    let shown = ranking
        .matches
        .iter()
        .take_while(|&&(_, score)| args.min_score.is_none_or(|least| score >= least))
        .take(args.top.unwrap_or(usize::MAX));
    let mut out = std::io::stdout().lock();
    if !args.json {
        let searched = ranking
            .searched
            .map_or_else(String::new, |n| format!("{n} images "));
        writeln!(
            out,
            "Most similar to {} ({}, {searched}in {}):",
            describe(&args.queries, &args.not),
            ranking.model,
            display(dir)
        )?;
    }
    for (place, (path, score)) in shown.enumerate() {
        match args.json {
            true => writeln!(out, "{}", json!({"file": display(path), "score": score}))?,
            // A name's control characters would forge lines of this list.
            false => writeln!(out, "{:>4}. {score:.4}  {}", place + 1, shown_path(path))?,
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
