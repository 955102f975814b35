//! `lookalike bench`: throughput of the forward pass on generated input, and of decoding and
//! the whole pipeline on a real folder. Speed is measured here, never asserted in tests.

use std::path::PathBuf;
use std::sync::atomic::AtomicBool;
use std::time::{Duration, Instant};

use anyhow::Context;
use candle_core::{Device, Tensor};
use clap::Args;
use rayon::prelude::*;
use serde_json::json;

use lookalike::decode::{decode_file, model_input};
use lookalike::scan::scan_folder;

use super::ModelArgs;

#[derive(Debug, Args)]
pub struct BenchArgs {
    #[command(flatten)]
    model: ModelArgs,
    /// Batch sizes to time the forward pass at.
    #[arg(long, value_delimiter = ',', default_value = "1,16")]
    batches: Vec<usize>,
    /// Minimum seconds to spend on each measurement.
    #[arg(long, default_value_t = 5.0)]
    seconds: f64,
    /// Print one JSON object per measurement.
    #[arg(long)]
    json: bool,
    /// A folder of images to time decoding and end-to-end analysis on.
    dir: Option<PathBuf>,
}

pub fn run(args: &BenchArgs) -> anyhow::Result<i32> {
    let engine = args.model.engine(5)?;
    let threads = engine.threads();
    let id = engine.info().id;
    let side = engine.info().preprocess.crop as usize;
    let budget = Duration::from_secs_f64(args.seconds);
    for &batch in &args.batches {
        let input = Tensor::ones(
            (batch.max(1), 3, side, side),
            candle_core::DType::F32,
            &Device::Cpu,
        )?;
        engine.forward(&input)?; // warm-up: first-touch allocations, gemm packing buffers
        let (runs, elapsed) = repeat_for(budget, || engine.forward(&input).map(|_| ()))?;
        report(
            args.json,
            &format!("forward {id} batch {batch}"),
            runs * batch,
            elapsed,
            threads,
        );
    }
    if let Some(dir) = &args.dir {
        let scan = scan_folder(dir)?;
        let paths: Vec<PathBuf> = scan.images.into_iter().map(|e| e.path).collect();
        anyhow::ensure!(!paths.is_empty(), "{} holds no images", dir.display());
        let pre = engine.info().preprocess;
        let start = Instant::now();
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .build()?;
        let decoded = pool.install(|| {
            paths
                .par_iter()
                .filter(|p| {
                    decode_file(p)
                        .and_then(|d| model_input(&d.rgb, &pre))
                        .is_ok()
                })
                .count()
        });
        report(
            args.json,
            "decode + preprocess",
            decoded,
            start.elapsed(),
            threads,
        );
        let start = Instant::now();
        let never = AtomicBool::new(false);
        let bar = super::progress_bar(paths.len());
        let results =
            engine.analyse_files(&paths, &never, &mut |done, _| bar.set_position(done as u64));
        bar.finish_and_clear();
        let ok = results.iter().filter(|r| r.is_ok()).count();
        report(
            args.json,
            &format!("end to end {id} ({} images)", paths.len()),
            ok,
            start.elapsed(),
            threads,
        );
    }
    Ok(0)
}

/// Runs `work` until `budget` has passed and at least three times; returns (runs, time).
fn repeat_for(
    budget: Duration,
    mut work: impl FnMut() -> lookalike::Result<()>,
) -> anyhow::Result<(usize, Duration)> {
    let start = Instant::now();
    let mut runs = 0;
    while runs < 3 || start.elapsed() < budget {
        work().context("forward pass")?;
        runs += 1;
    }
    Ok((runs, start.elapsed()))
}

fn report(json: bool, what: &str, images: usize, elapsed: Duration, threads: usize) {
    let rate = images as f64 / elapsed.as_secs_f64();
    if json {
        println!(
            "{}",
            json!({"what": what, "images": images, "seconds": elapsed.as_secs_f64(), "images_per_second": rate, "threads": threads})
        );
    } else {
        println!(
            "{what:<40} {rate:8.1} img/s  ({images} images in {:.2} s, {threads} threads)",
            elapsed.as_secs_f64()
        );
    }
}
