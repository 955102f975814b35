//! The command line: the tutorial's three modes (classify, embed, similar) and a benchmark.
//!
//! Output shapes here are a contract that scripts rely on: `--json` prints one object per line.
//! Human output goes to stdout, problems to stderr, and the progress bar only to a terminal.

mod bench;
#[cfg(feature = "postgres")]
mod bench_db;
mod desktop;
mod duplicates;
mod fetch;
mod index;
mod similar;

pub use index::{CacheAction, CacheArgs};

use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicBool;

use anyhow::Context;
use clap::builder::PossibleValuesParser;
use clap::{Args, Parser, Subcommand};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use serde_json::json;

use lookalike::engine::LABELS_KEPT;
use lookalike::model::{find_vgg16_weights, Precision};
use lookalike::{Analysis, Engine, EngineOptions, ModelKind};

/// Browse a folder of images sorted by visual similarity; or classify, embed and rank them
/// from the command line.
///
/// With no command, lookalike opens its window (on FOLDER, if given).
#[derive(Debug, Parser)]
#[command(
    name = "lookalike",
    about,
    disable_version_flag = true,
    args_conflicts_with_subcommands = true
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Option<Command>,
    /// Print the version, the model and its precision, where the index and model files live,
    /// and the licences.
    #[arg(short = 'V', long)]
    pub version: bool,
    /// Add lookalike to your applications menu and to "Open with" on folders (for `cargo
    /// install`; the .deb does it for everyone): writes a desktop entry and icons into
    /// $XDG_DATA_HOME (~/.local/share).
    #[arg(long, conflicts_with_all = ["folder", "uninstall_desktop"])]
    pub install_desktop: bool,
    /// Remove what --install-desktop wrote.
    #[arg(long, conflicts_with = "folder")]
    pub uninstall_desktop: bool,
    /// Folder to open in the window.
    pub folder: Option<PathBuf>,
    /// Open FOLDER, wait until every image is indexed, save a screenshot of the window to FILE
    /// (PNG) and quit.
    #[arg(long, value_name = "FILE", requires = "folder")]
    pub screenshot: Option<PathBuf>,
    /// With --screenshot: sort by the image with this file name first; given more than once,
    /// search by all of them together.
    #[arg(long, value_name = "NAME", requires = "screenshot")]
    pub select: Vec<String>,
    /// With --screenshot: show the Duplicates view.
    #[arg(long, requires = "screenshot")]
    pub show_duplicates: bool,
    #[command(flatten)]
    pub cache: CacheArgs,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Print the most likely ImageNet labels of each image.
    Classify {
        #[command(flatten)]
        model: ModelArgs,
        /// How many labels to print per image.
        #[arg(long, default_value_t = LABELS_KEPT as u16, value_parser = clap::value_parser!(u16).range(1..=1000))]
        top: u16,
        /// One JSON object per line instead of text.
        #[arg(long)]
        json: bool,
        /// Image files.
        #[arg(required = true)]
        images: Vec<PathBuf>,
    },
    /// Print the L2-normalised feature vector of each image.
    Embed {
        #[command(flatten)]
        model: ModelArgs,
        /// One JSON object per line, with the whole vector.
        #[arg(long)]
        json: bool,
        /// Image files.
        #[arg(required = true)]
        images: Vec<PathBuf>,
    },
    /// Rank every image in a folder (recursively) by similarity to one or more pictures, and
    /// away from others (--not). The pictures may lie outside the folder.
    Similar(similar::SimilarArgs),
    /// Find groups of look-alike images in a folder (recursively): the same photo edited or
    /// saved again, the same scene, or the same subject. Changes no file.
    Duplicates(duplicates::DuplicatesArgs),
    /// Build or update the index of a folder, so that later runs and the app start at once.
    Index {
        #[command(flatten)]
        model: ModelArgs,
        /// The folder to index (recursively).
        dir: PathBuf,
        /// Print one JSON object with the summary.
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        cache: CacheArgs,
    },
    /// Show or clear the index.
    Cache {
        #[command(subcommand)]
        action: CacheAction,
        /// Use the index in DIR instead of the platform cache folder.
        #[arg(long, value_name = "DIR", global = true)]
        cache_dir: Option<PathBuf>,
        /// The shared index in this PostgreSQL database instead (see `index --help`).
        #[arg(
            long,
            value_name = "URL",
            global = true,
            env = "LOOKALIKE_DB",
            hide_env_values = true
        )]
        db: Option<String>,
        /// Only this library of the database.
        #[arg(long, value_name = "NAME", global = true, requires = "db")]
        library: Option<String>,
    },
    /// Download a model's weights into the Hugging Face cache (VGG16: about 553 MB).
    FetchModel {
        /// The model to fetch.
        #[arg(value_parser = PossibleValuesParser::new(["vgg16"]))]
        name: String,
    },
    /// Measure speed: the forward pass on generated input, and decoding and end-to-end on DIR.
    Bench(bench::BenchArgs),
}

/// Options shared by every command that runs a model.
#[derive(Debug, Clone, Args)]
pub struct ModelArgs {
    /// Which model to use.
    #[arg(long, default_value = "lite0", value_parser = PossibleValuesParser::new(ModelKind::NAMES))]
    pub model: String,
    /// Worker threads; 0 uses every core.
    #[arg(long, default_value_t = 0)]
    pub threads: usize,
    /// Images per forward pass.
    #[arg(long, default_value_t = 8, value_parser = clap::value_parser!(u16).range(1..=256))]
    pub batch: u16,
    /// Weights file for a model that is not built in (VGG16: timm/vgg16.tv_in1k model.safetensors).
    #[arg(long, value_name = "FILE")]
    pub weights: Option<PathBuf>,
    /// Download missing model weights without asking.
    #[arg(long)]
    pub yes: bool,
    /// What the network computes in: auto picks bf16 where the CPU multiplies it natively
    /// (AVX512_BF16: Lite0 1.5–1.7 times as fast, embeddings within a cosine of 0.999 of
    /// f32's, so the index serves both), else f32.
    #[arg(long, default_value = "auto", value_parser = PossibleValuesParser::new(Precision::NAMES))]
    pub precision: String,
}

impl ModelArgs {
    fn engine(&self, top_k: usize) -> anyhow::Result<Engine> {
        self.build_engine(top_k, None)
    }

    /// An engine that also makes thumbnails, for the index (the app shows them).
    fn engine_with_thumbnails(&self) -> anyhow::Result<Engine> {
        self.build_engine(LABELS_KEPT, Some(lookalike::decode::THUMBNAIL_SIDE))
    }

    pub(crate) fn build_engine(
        &self,
        top_k: usize,
        thumbnail_side: Option<u32>,
    ) -> anyhow::Result<Engine> {
        let kind = ModelKind::from_name(&self.model)?;
        let weights = match (kind, &self.weights) {
            (ModelKind::Vgg16, None) if find_vgg16_weights().is_none() => {
                Some(fetch::obtain_vgg16(self.yes)?)
            }
            _ => self.weights.clone(),
        };
        let options = EngineOptions {
            threads: self.threads,
            batch_size: self.batch as usize,
            top_k,
            thumbnail_side,
            weights,
            precision: Precision::from_name(&self.precision)?,
        };
        Engine::new(kind, options).with_context(|| format!("loading model {}", self.model))
    }
}

/// With no command: the desktop app, as a double-click starts it.
#[cfg(feature = "gui")]
fn open_window(cli: Cli) -> anyhow::Result<i32> {
    let screenshot = cli.screenshot.map(|file| lookalike::gui::ScreenshotPlan {
        file,
        select: cli.select,
        duplicates: cli.show_duplicates,
    });
    let start = lookalike::gui::Startup {
        folder: cli.folder,
        screenshot,
        cache: cli.cache.location()?,
        thumbnails_held: None,
    };
    lookalike::gui::run(start).map_err(|e| anyhow::anyhow!("cannot open the window: {e}"))?;
    Ok(0)
}

#[cfg(not(feature = "gui"))]
fn open_window(_cli: Cli) -> anyhow::Result<i32> {
    anyhow::bail!(
        "this build of lookalike has no window (built without the `gui` feature); see --help"
    )
}

/// Runs a command; the exit code is 0 on success, 1 when some file failed.
pub fn run(cli: Cli) -> anyhow::Result<i32> {
    if cli.version {
        print!("{}", lookalike::about::version_text());
        return Ok(0);
    }
    if cli.install_desktop {
        return desktop::install();
    }
    if cli.uninstall_desktop {
        return desktop::uninstall();
    }
    let Some(command) = cli.command else {
        return open_window(cli);
    };
    match command {
        Command::Classify {
            model,
            top,
            json,
            images,
        } => classify(&model, top as usize, json, &images),
        Command::Embed {
            model,
            json,
            images,
        } => embed(&model, json, &images),
        Command::Similar(args) => similar::run(&args),
        Command::Index {
            model,
            dir,
            json,
            cache,
        } => index::run(&model, &cache, &dir, json),
        Command::Cache {
            action,
            cache_dir,
            db,
            library,
        } => {
            let db = index::DbArgs {
                db,
                library,
                library_root: None,
            };
            index::cache(&action, cache_dir, &db)
        }
        Command::FetchModel { name } => fetch::fetch_model(&name),
        Command::Bench(args) => bench::run(&args),
        Command::Duplicates(args) => duplicates::run(&args),
    }
}

fn classify(model: &ModelArgs, top: usize, json: bool, images: &[PathBuf]) -> anyhow::Result<i32> {
    let engine = model.engine(top)?;
    let results = analyse_with_progress(&engine, images);
    let mut out = std::io::stdout().lock();
    let mut failed = false;
    for (path, result) in images.iter().zip(results) {
        match result {
            Ok(a) if json => {
                let top: Vec<_> = a
                    .top
                    .iter()
                    .map(|p| json!({"class": p.class, "label": p.label, "prob": p.prob}))
                    .collect();
                writeln!(out, "{}", json!({"file": display(path), "top": top}))?;
            }
            Ok(a) => {
                writeln!(out, "{}", display(path))?;
                if a.top.is_empty() {
                    writeln!(
                        out,
                        "  labels unavailable: this model file has no classifier"
                    )?;
                }
                for (i, p) in a.top.iter().enumerate() {
                    writeln!(out, "  {}. {:<28} {:6.2}%", i + 1, p.label, p.prob * 100.0)?;
                }
            }
            Err(e) => {
                failed = true;
                report_failure(&mut out, json, path, &e)?;
            }
        }
    }
    Ok(i32::from(failed))
}

fn embed(model: &ModelArgs, json: bool, images: &[PathBuf]) -> anyhow::Result<i32> {
    // No labels wanted: VGG16's 411 MB classifier is never read.
    let engine = model.engine(0)?;
    let id = engine.info().id;
    let results = analyse_with_progress(&engine, images);
    let mut out = std::io::stdout().lock();
    let mut failed = false;
    for (path, result) in images.iter().zip(results) {
        match result {
            Ok(a) if json => {
                let line = json!({"file": display(path), "model": id, "dim": a.embedding.len(), "embedding": a.embedding});
                writeln!(out, "{line}")?;
            }
            Ok(a) => {
                let head: Vec<String> = a
                    .embedding
                    .iter()
                    .take(6)
                    .map(|v| format!("{v:.4}"))
                    .collect();
                writeln!(
                    out,
                    "{}  {id}  {}-d  [{}, ...]",
                    display(path),
                    a.embedding.len(),
                    head.join(", ")
                )?;
            }
            Err(e) => {
                failed = true;
                report_failure(&mut out, json, path, &e)?;
            }
        }
    }
    Ok(i32::from(failed))
}

/// Analyses files, with a progress bar on stderr when it is a terminal and the run is long.
fn analyse_with_progress(engine: &Engine, paths: &[PathBuf]) -> Vec<lookalike::Result<Analysis>> {
    let bar = progress_bar(paths.len());
    let never = AtomicBool::new(false);
    let results = engine.analyse_files(paths, &never, &mut |done, _| bar.set_position(done as u64));
    bar.finish_and_clear();
    results
}

pub(crate) fn progress_bar(total: usize) -> ProgressBar {
    const WORTH_A_BAR: usize = 16;
    if total < WORTH_A_BAR || !std::io::stderr().is_terminal() {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::with_draw_target(Some(total as u64), ProgressDrawTarget::stderr());
    let style = ProgressStyle::with_template("{bar:40} {pos}/{len} images  {per_sec}  eta {eta}")
        .unwrap_or_else(|_| ProgressStyle::default_bar());
    bar.set_style(style);
    bar
}

fn report_failure(
    out: &mut impl Write,
    json: bool,
    path: &Path,
    e: &lookalike::Error,
) -> std::io::Result<()> {
    let reason = e.reason();
    if json {
        writeln!(out, "{}", json!({"file": display(path), "error": reason}))?;
    }
    eprintln!("error: {}: {reason}", path.display());
    Ok(())
}

/// A path as the user gave it; names that are not UTF-8 are shown with replacement characters.
fn display(path: &Path) -> String {
    path.to_string_lossy().into_owned()
}
