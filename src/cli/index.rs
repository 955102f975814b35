//! `lookalike index` and `lookalike cache`: the on-disk index from the command line.

use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicBool;
use std::time::Instant;

use anyhow::Context;
use clap::{Args, Subcommand};
use serde_json::json;

use lookalike::index::{clear, CacheLocation, Index};
use lookalike::pipeline::{index_folder, Failure, IndexReport};
use lookalike::scan::scan_folder;
use lookalike::Engine;

use super::{progress_bar, ModelArgs};

/// Where the index is, for commands that use it.
#[derive(Debug, Clone, Args)]
pub struct CacheArgs {
    /// Keep the index in DIR instead of the platform cache folder.
    #[arg(long, value_name = "DIR", conflicts_with = "no_cache")]
    pub cache_dir: Option<PathBuf>,
    /// Use no index: decode and embed everything afresh, store nothing.
    #[arg(long)]
    pub no_cache: bool,
}

impl CacheArgs {
    pub fn location(&self) -> CacheLocation {
        match (&self.cache_dir, self.no_cache) {
            (_, true) => CacheLocation::Disabled,
            (Some(dir), false) => CacheLocation::Dir(dir.clone()),
            (None, false) => CacheLocation::Default,
        }
    }

    /// The index, or None with --no-cache. Warnings (a damaged index rebuilt) go to stderr.
    pub fn open(&self) -> anyhow::Result<Option<Index>> {
        let index = self.location().open().context("opening the index")?;
        for warning in index.iter().flat_map(|i| &i.warnings) {
            eprintln!("warning: {warning}");
        }
        Ok(index)
    }
}

#[derive(Debug, Subcommand)]
pub enum CacheAction {
    /// Where the index is, its size, and what it holds.
    Info {
        /// One JSON object instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Delete the index.
    Clear,
}

/// Indexes `dir` and prints the summary. Exit code 0 whenever the folder could be read.
pub fn run(model: &ModelArgs, cache: &CacheArgs, dir: &Path, json: bool) -> anyhow::Result<i32> {
    let report = match cache.open()? {
        Some(mut index) => update_with_progress(&model.engine_with_thumbnails()?, &mut index, dir)?,
        None => analyse_without_index(&model.engine(5)?, dir)?,
    };
    print_report(&report, json)?;
    Ok(0)
}

/// `index --no-cache`: every image is decoded and embedded, and nothing is kept.
fn analyse_without_index(engine: &Engine, dir: &Path) -> anyhow::Result<IndexReport> {
    let started = Instant::now();
    let scan = scan_folder(dir)?;
    let paths: Vec<PathBuf> = scan.images.into_iter().map(|e| e.path).collect();
    let results = super::analyse_with_progress(engine, &paths);
    let mut report = IndexReport::default();
    for problem in &scan.problems {
        report.failed.push(Failure::from_error(problem));
    }
    for (path, result) in paths.iter().zip(&results) {
        match result {
            Ok(_) => report.new += 1,
            Err(e) => report.failed.push(Failure::from_error(e).named(path)),
        }
    }
    report.images = report.new;
    report.seconds = started.elapsed().as_secs_f64();
    Ok(report)
}

/// Runs the incremental index with a progress bar on a terminal.
pub fn update_with_progress(
    engine: &Engine,
    index: &mut Index,
    dir: &Path,
) -> anyhow::Result<IndexReport> {
    let bar = progress_bar(usize::MAX);
    let never = AtomicBool::new(false);
    let report = index_folder(engine, index, dir, &never, &mut |done, total| {
        bar.set_length(total as u64);
        bar.set_position(done as u64);
    });
    bar.finish_and_clear();
    report.with_context(|| format!("indexing {}", dir.display()))
}

fn print_report(report: &IndexReport, json: bool) -> anyhow::Result<()> {
    for failure in &report.failed {
        eprintln!("error: {}: {}", failure.file, failure.error);
    }
    if json {
        println!("{}", serde_json::to_string(report)?);
    } else {
        println!(
            "{} images indexed in {:.2} s: {} new, {} updated, {} unchanged, {} removed, {} could not be read",
            report.images,
            report.seconds,
            report.new,
            report.updated,
            report.unchanged,
            report.removed,
            report.failed.len()
        );
    }
    Ok(())
}

pub fn cache(action: &CacheAction, cache_dir: Option<PathBuf>) -> anyhow::Result<i32> {
    let location = cache_dir.map_or(CacheLocation::Default, CacheLocation::Dir);
    let dir = location
        .dir()
        .context("this system has no cache folder; pass --cache-dir")?;
    match action {
        CacheAction::Info { json } => {
            let index = Index::open(&dir)?;
            let info = index.info()?;
            if *json {
                println!("{}", json!(info));
            } else {
                println!("index:   {}", info.path.display());
                println!("size:    {:.1} MiB", info.bytes as f64 / (1024.0 * 1024.0));
                println!(
                    "images:  {} ({} could not be read)",
                    info.files, info.failed
                );
                for (model, count) in &info.embeddings_by_model {
                    println!("vectors: {count} from {model}");
                }
            }
        }
        CacheAction::Clear => {
            let freed = clear(&dir)?;
            println!(
                "removed the index in {} ({:.1} MiB)",
                dir.display(),
                freed as f64 / (1024.0 * 1024.0)
            );
        }
    }
    Ok(0)
}
