//! `lookalike index` and `lookalike cache`: the on-disk index from the command line.

use std::ops::ControlFlow;
use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicBool;

use anyhow::Context;
use clap::{Args, Subcommand};
use serde_json::json;

use lookalike::decode::Thumbnail;
use lookalike::index::{clear, mtime_ns, CacheLocation, SqliteIndex, Store};
use lookalike::pipeline::{DynStore, IndexEvent, IndexReport, Indexer};
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
    #[command(flatten)]
    pub db: DbArgs,
}

/// A shared index in PostgreSQL.
#[derive(Debug, Clone, Args)]
pub struct DbArgs {
    /// Keep the index in a PostgreSQL database with pgvector, shared with other machines:
    /// postgres://USER@HOST:PORT/DBNAME[?sslmode=verify-full&sslrootcert=CA.pem], or libpq's
    /// key=value settings ("host=HOST dbname=NAME sslmode=verify-full"). The password is best
    /// kept in ~/.pgpass or PGPASSWORD; it is never shown.
    #[arg(long, value_name = "URL", env = "LOOKALIKE_DB", hide_env_values = true)]
    pub db: Option<String>,
    /// The library's name in the database (default: the folder's full path). Machines that
    /// mount one share at different paths give the same name to share its vectors.
    #[arg(long, value_name = "NAME", requires = "db")]
    pub library: Option<String>,
    /// The library's folder on this machine, when working on a folder inside it (default: the
    /// folder the library was indexed from before that holds this one, else the folder worked
    /// on).
    #[arg(long, value_name = "DIR", requires = "library")]
    pub library_root: Option<PathBuf>,
}

impl DbArgs {
    /// The database, when one is given.
    pub fn location(&self) -> anyhow::Result<Option<CacheLocation>> {
        #[cfg(feature = "postgres")]
        if let Some(url) = &self.db {
            let mut target = lookalike::index::postgres::Target::parse(url, self.library.clone())?;
            target.root = self.library_root.clone();
            return Ok(Some(CacheLocation::Database(target)));
        }
        #[cfg(not(feature = "postgres"))]
        anyhow::ensure!(
            self.db.is_none(),
            "this lookalike was built without PostgreSQL support"
        );
        Ok(None)
    }
}

impl CacheArgs {
    /// Where the index is: --no-cache, then --cache-dir, then --db (or LOOKALIKE_DB), then
    /// the platform cache folder.
    pub fn location(&self) -> anyhow::Result<CacheLocation> {
        if self.no_cache {
            return Ok(CacheLocation::Disabled);
        }
        if let Some(dir) = &self.cache_dir {
            return Ok(CacheLocation::Dir(dir.clone()));
        }
        Ok(self.db.location()?.unwrap_or_default())
    }

    /// The index for work on `folder`, or None with --no-cache. Warnings (a damaged index
    /// rebuilt) go to stderr.
    pub fn open(&self, folder: &Path) -> anyhow::Result<Option<Box<dyn Store>>> {
        let location = self.location()?;
        let mut index = location.open(folder)?;
        for warning in index.iter_mut().flat_map(|i| i.take_warnings()) {
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

/// Indexes `dir` and prints the summary. Exit code 0 whenever the folder could be read and
/// the index worked; an index failure (busy, read-only, damaged, refused) stops the run with
/// an error, exit code 1, since a summary would claim what the index does not hold.
pub fn run(model: &ModelArgs, cache: &CacheArgs, dir: &Path, json: bool) -> anyhow::Result<i32> {
    let mut index = cache.open(dir)?;
    // Without an index nothing is kept or shown but the counts: no labels, no thumbnails.
    let engine = match index {
        Some(_) => model.engine_with_thumbnails()?,
        None => model.engine(0)?,
    };
    let (report, _) = index_folder(&engine, index.as_deref_mut(), dir, false)?;
    print_report(&report, json)?;
    Ok(0)
}

/// Every readable image of `dir` with its vector, indexing what is missing first (unless the
/// cache is off), and the engine that made them. Files that could not be read are reported on
/// stderr and left out.
pub fn folder_images(
    model: &ModelArgs,
    cache: &CacheArgs,
    dir: &Path,
    thumbnails: bool,
) -> anyhow::Result<(Engine, Vec<FolderImage>, Option<Box<DynStore>>)> {
    // What goes into the index is also what the app shows: thumbnails and labels included.
    // Without an index, no labels: nothing here shows them.
    let mut index = cache.open(dir)?;
    let engine = match (&index, thumbnails) {
        (Some(_), _) => model.engine_with_thumbnails()?,
        (None, true) => model.build_engine(0, Some(lookalike::decode::THUMBNAIL_SIDE))?,
        (None, false) => model.engine(0)?,
    };
    let (report, found) = index_folder(&engine, index.as_deref_mut(), dir, true)?;
    for failure in &report.failed {
        eprintln!("skipped {}: {}", failure.file, failure.error);
    }
    Ok((engine, found, index))
}

/// One readable image of a folder, with what the indexer learned about it.
#[derive(Debug, Clone)]
pub struct FolderImage {
    pub path: PathBuf,
    pub vector: Vec<f32>,
    pub width: u32,
    pub height: u32,
    /// File size.
    pub bytes: u64,
    /// Modification time, nanoseconds since the epoch.
    pub modified_ns: i64,
    pub thumbnail: Option<Thumbnail>,
}

/// Runs the indexer on `dir` (storing into `index`, if any) with a progress bar on a
/// terminal; with `keep_vectors`, also returns every readable image, in folder order. A
/// failure of the index stops the run with its error.
pub fn index_folder(
    engine: &Engine,
    index: Option<&mut DynStore>,
    dir: &Path,
    keep_vectors: bool,
) -> anyhow::Result<(IndexReport, Vec<FolderImage>)> {
    let bar = progress_bar(usize::MAX);
    let never = AtomicBool::new(false);
    let mut entries = Vec::new();
    let mut found: Vec<Option<FolderImage>> = Vec::new();
    let report = Indexer::new(engine, index, &never).run(dir, &mut |event| {
        match event {
            IndexEvent::Scanned { images, .. } if keep_vectors => {
                entries = images.to_vec();
                found = vec![None; images.len()];
            }
            IndexEvent::Ready {
                position, analysis, ..
            } if keep_vectors => {
                let entry = &entries[position];
                found[position] = Some(FolderImage {
                    path: entry.path.clone(),
                    vector: analysis.embedding,
                    width: analysis.width,
                    height: analysis.height,
                    bytes: entry.size,
                    modified_ns: mtime_ns(entry.modified),
                    thumbnail: analysis.thumbnail,
                });
            }
            IndexEvent::Progress { done, total } => {
                bar.set_length(total as u64);
                bar.set_position(done as u64);
            }
            IndexEvent::IndexFailed(_) => return ControlFlow::Break(()),
            _ => {}
        }
        ControlFlow::Continue(())
    });
    bar.finish_and_clear();
    let report = report.with_context(|| format!("indexing {}", dir.display()))?;
    Ok((report, found.into_iter().flatten().collect()))
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

/// `lookalike cache info|clear`, on the local index or (info only) a shared database.
pub fn cache(action: &CacheAction, cache_dir: Option<PathBuf>, db: &DbArgs) -> anyhow::Result<i32> {
    if let (Some(location), None) = (db.location()?, &cache_dir) {
        return database_cache(action, &location);
    }
    let location = cache_dir.map_or(CacheLocation::Default, CacheLocation::Dir);
    let dir = location
        .dir()
        .context("this system has no cache folder; pass --cache-dir")?;
    match action {
        CacheAction::Info { json } => {
            let mut index = SqliteIndex::open(&dir)?;
            print_info(&mut index, *json)?;
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

/// `cache info --db`: the whole database, or one library with --library. Clearing a shared
/// index is left to its administrator.
fn database_cache(action: &CacheAction, location: &CacheLocation) -> anyhow::Result<i32> {
    #[cfg(not(feature = "postgres"))]
    let _ = action;
    #[cfg(feature = "postgres")]
    if let (CacheAction::Info { json }, CacheLocation::Database(target)) = (action, location) {
        let mut index = lookalike::index::postgres::PostgresIndex::connect(target)?;
        print_info(&mut index, *json)?;
        return Ok(0);
    }
    anyhow::bail!(
        "lookalike does not clear a shared index ({}); to drop a library, run \
         DELETE FROM lookalike_files WHERE library = '...'; in the database",
        location.describe()
    )
}

fn print_info(index: &mut dyn Store, json: bool) -> anyhow::Result<()> {
    let info = index.info()?;
    if json {
        println!("{}", json!(info));
        return Ok(());
    }
    println!("index:   {}", info.location);
    println!("size:    {:.1} MiB", info.bytes as f64 / (1024.0 * 1024.0));
    println!(
        "images:  {} ({} could not be read)",
        info.files, info.failed
    );
    for (model, count) in &info.embeddings_by_model {
        println!("vectors: {count} from {model}");
    }
    Ok(())
}
