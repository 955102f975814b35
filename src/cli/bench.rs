//! `lookalike bench`: throughput of the forward pass and of a similarity sort on generated
//! input, and of decoding, thumbnails and the whole pipeline on a real folder. Speed is
//! measured here, never asserted in tests.

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicBool;
use std::time::{Duration, Instant};

use anyhow::Context;
use candle_core::{Device, Tensor};
use clap::Args;
use rayon::prelude::*;
use serde_json::json;

use lookalike::decode::{
    decode_file, decode_file_for, make_thumbnail, model_input, THUMBNAIL_SIDE,
};
use lookalike::duplicates::{groups, FileFacts, Level, Neighbours, NEIGHBOURS_PER_IMAGE, SLACK};
use lookalike::engine::Engine;
use lookalike::model::{auto, ModelKind, Precision};
use lookalike::query::Query;
use lookalike::scan::scan_folder;
use lookalike::similarity::{cosine, l2_normalise, scores, similarity_order, Vectors};

use super::ModelArgs;

#[derive(Debug, Args)]
pub struct BenchArgs {
    #[command(flatten)]
    model: ModelArgs,
    /// Batch sizes to time the forward pass at.
    #[arg(long, value_delimiter = ',', default_value = "1,2,4,8,16")]
    batches: Vec<usize>,
    /// Minimum seconds to spend on each measurement.
    #[arg(long, default_value_t = 5.0)]
    seconds: f64,
    /// How many vectors the similarity sort is timed on (0 skips it).
    #[arg(long, default_value_t = 100_000)]
    sort_items: usize,
    /// How many vectors duplicate grouping is timed on (0 skips it). One in ten is an edited
    /// copy of another, so that there are groups to find.
    #[arg(long, default_value_t = 0)]
    group_items: usize,
    /// Also find the neighbours with f32 scores throughout, and report how many of them the
    /// default (8-bit where the CPU can) search found.
    #[arg(long)]
    group_exact: bool,
    /// Print one JSON object per measurement.
    #[arg(long)]
    json: bool,
    /// Time only the shared index's search in this PostgreSQL database: HNSW against exact,
    /// with recall (generated vectors go into a library of their own, `bench-N`).
    #[arg(long, value_name = "URL")]
    db: Option<String>,
    /// How many vectors the database search is timed on.
    #[arg(long, default_value_t = 100_000, requires = "db")]
    db_vectors: usize,
    /// How many queries the database search is timed with.
    #[arg(long, default_value_t = 100, requires = "db")]
    db_queries: usize,
    /// A folder of images to time decoding and end-to-end analysis on.
    dir: Option<PathBuf>,
}

pub fn run(args: &BenchArgs) -> anyhow::Result<i32> {
    #[cfg(feature = "postgres")]
    if let Some(url) = &args.db {
        super::bench_db::run(url, args.db_vectors, args.db_queries)?;
        return Ok(0);
    }
    let engine = args.model.engine(5)?;
    let threads = engine.threads();
    let id = engine.info().id;
    let precision = engine.precision().name();
    let side = engine.info().preprocess.crop as usize;
    if Precision::from_name(&args.model.precision)? == Precision::Auto {
        print_auto_choice(args.json, ModelKind::from_name(&args.model.model)?);
    }
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
            &format!("forward {id} {precision} batch {batch}"),
            runs * batch,
            elapsed,
            threads,
        );
    }
    if args.sort_items > 0 {
        bench_sort(args, engine.info().dim)?;
    }
    if args.group_items > 0 {
        bench_group(args, engine.info().dim);
    }
    if let Some(dir) = &args.dir {
        bench_folder(args, &engine, dir)?;
    }
    Ok(0)
}

/// What `--precision auto` runs for `kind` here, and why.
fn print_auto_choice(json: bool, kind: ModelKind) {
    let choice = auto::kept(kind);
    let why = match &choice {
        Some(choice) => choice.explain(),
        None => format!(
            "{}, the only path this CPU has",
            auto::available()[0].name()
        ),
    };
    let kept_in = auto::kept_file().map(|p| p.display().to_string());
    if json {
        println!(
            "{}",
            json!({"what": "precision auto", "cpu": auto::cpu_name(), "choice": choice, "why": why, "kept_in": kept_in})
        );
    } else {
        println!("CPU: {}", auto::cpu_name());
        println!("precision auto: {why}");
        if let (Some(_), Some(file)) = (&choice, kept_in) {
            println!("  (kept in {file}; delete it to measure again)");
        }
    }
}

/// Times what the app does on a click: score every vector against one, then order them all.
fn bench_sort(args: &BenchArgs, dim: usize) -> anyhow::Result<()> {
    let count = args.sort_items;
    let vectors: Vec<Vec<f32>> = random_unit_vectors(count, dim)
        .chunks_exact(dim)
        .map(<[f32]>::to_vec)
        .collect();
    let items: Vec<Option<&[f32]>> = vectors.iter().map(|v| Some(v.as_slice())).collect();
    let mut order: Vec<usize> = (0..count).collect();
    let mut one_image = |query: usize| {
        let scores = scores(&vectors[query], &items);
        similarity_order(&mut order, Some(query), &scores);
    };
    let what = format!("similarity sort {count}×{dim}");
    time_sorts(args, &what, count, &mut one_image);
    // The same over the app's compact f16 block, which holds a library in half the memory.
    let mut compact = Vectors::new(count);
    vectors
        .iter()
        .enumerate()
        .for_each(|(i, v)| compact.set(i, v));
    let mut order: Vec<usize> = (0..count).collect();
    let mut one_image_f16 = |query: usize| {
        let scores = compact.scores(&vectors[query]);
        similarity_order(&mut order, Some(query), &scores);
    };
    let what = format!("similarity sort, f16 {count}×{dim}");
    time_sorts(args, &what, count, &mut one_image_f16);
    // What a search by three pictures and against one costs: the query is folded first.
    let mut order: Vec<usize> = (0..count).collect();
    let mut examples = |query: usize| {
        let pick = |k: usize| vectors[(query + k * 7919) % count].as_slice();
        if let Ok(search) = Query::new(&[pick(0), pick(1), pick(2)], &[pick(3)]) {
            let scores = search.scores(&items);
            similarity_order(&mut order, None, &scores);
        }
    };
    let what = format!("search by 3+1 examples {count}×{dim}");
    time_sorts(args, &what, count, &mut examples);
    Ok(())
}

/// Times `sort` (given a query number) until the time budget is spent, and reports it.
fn time_sorts(args: &BenchArgs, what: &str, count: usize, sort: &mut dyn FnMut(usize)) {
    sort(0); // warm-up: first touch of the score and key buffers
    let (mut runs, mut worst) = (0, Duration::ZERO);
    let start = Instant::now();
    while runs < 5 || start.elapsed() < Duration::from_secs_f64(args.seconds.min(2.0)) {
        let one = Instant::now();
        sort(runs % count);
        worst = worst.max(one.elapsed());
        runs += 1;
    }
    let mean = start.elapsed() / runs as u32;
    let threads = rayon::current_num_threads();
    if args.json {
        println!(
            "{}",
            json!({"what": what, "milliseconds": mean.as_secs_f64() * 1e3, "worst_milliseconds": worst.as_secs_f64() * 1e3, "threads": threads})
        );
    } else {
        println!(
            "{what:<40} {:8.1} ms   (worst {:.1} ms of {runs}, {threads} threads)",
            mean.as_secs_f64() * 1e3,
            worst.as_secs_f64() * 1e3
        );
    }
}

/// `count` random unit vectors of `dim` numbers, one after another, from a fixed-seed
/// generator so that every run works on the same data.
fn random_unit_vectors(count: usize, dim: usize) -> Vec<f32> {
    let mut random = uniform(0x9E37_79B9_7F4A_7C15);
    let mut vectors: Vec<f32> = (0..count * dim).map(|_| random()).collect();
    vectors.chunks_exact_mut(dim).for_each(l2_normalise);
    vectors
}

/// Numbers spread evenly over -0.5..0.5, from a fixed-seed xorshift generator.
pub fn uniform(seed: u64) -> impl FnMut() -> f32 {
    let mut state = seed;
    move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        (state >> 40) as f32 / (1u64 << 24) as f32 - 0.5
    }
}

/// Times duplicate grouping at the default level: every image's neighbours, then the groups.
fn bench_group(args: &BenchArgs, dim: usize) {
    let count = args.group_items;
    let vectors = vectors_with_copies(count, dim);
    let threshold = Level::Photo.threshold();
    let floor = threshold - SLACK;
    let start = Instant::now();
    let neighbours = Neighbours::find(&vectors, dim, floor, NEIGHBOURS_PER_IMAGE);
    let found = start.elapsed();
    let facts = vec![FileFacts::default(); count];
    let grouped = Instant::now();
    let groups = groups(&neighbours, threshold, &facts);
    let regroup = grouped.elapsed();
    let total = start.elapsed();
    let what = format!("duplicate groups {count}×{dim}");
    let threads = rayon::current_num_threads();
    if args.json {
        println!(
            "{}",
            json!({"what": what, "seconds": total.as_secs_f64(), "neighbours_seconds": found.as_secs_f64(), "grouping_milliseconds": regroup.as_secs_f64() * 1e3, "groups": groups.len(), "threads": threads})
        );
    } else {
        println!(
            "{what:<40} {:8.2} s    (neighbours {:.2} s, grouping {:.1} ms, {} groups, {threads} threads)",
            total.as_secs_f64(),
            found.as_secs_f64(),
            regroup.as_secs_f64() * 1e3,
            groups.len()
        );
    }
    if args.group_exact {
        bench_group_exact(args, &vectors, dim, floor, &neighbours);
    }
}

/// `count` random unit vectors where every tenth is an edited copy of the one before it: the
/// original plus some noise, with the amount varied so that the copies' cosines spread from
/// about 0.7 to 0.99, across the default level's floor.
fn vectors_with_copies(count: usize, dim: usize) -> Vec<f32> {
    let mut vectors = random_unit_vectors(count, dim);
    for (nth, i) in (1..count).step_by(10).enumerate() {
        let noise = 0.15 + 0.85 * (nth % 20) as f32 / 19.0;
        let (before, copy) = vectors.split_at_mut(i * dim);
        let original = &before[(i - 1) * dim..];
        for (c, o) in copy[..dim].iter_mut().zip(original) {
            *c = o + noise * *c;
        }
        l2_normalise(&mut copy[..dim]);
    }
    vectors
}

/// Times the f32 search and reports the share of its neighbour pairs the default one found.
fn bench_group_exact(args: &BenchArgs, vectors: &[f32], dim: usize, floor: f32, fast: &Neighbours) {
    let start = Instant::now();
    let exact = Neighbours::find_exact(vectors, dim, floor, NEIGHBOURS_PER_IMAGE);
    let seconds = start.elapsed().as_secs_f64();
    let (mut wanted, mut kept) = (0usize, 0usize);
    for i in 0..exact.len() {
        let found: HashSet<u32> = fast.of(i).iter().map(|p| p.0).collect();
        wanted += exact.of(i).len();
        kept += exact.of(i).iter().filter(|p| found.contains(&p.0)).count();
    }
    let recall = if wanted == 0 {
        1.0
    } else {
        kept as f64 / wanted as f64
    };
    let what = format!("duplicate neighbours, f32 {}×{dim}", exact.len());
    if args.json {
        println!(
            "{}",
            json!({"what": what, "seconds": seconds, "pairs": wanted, "recall_of_default": recall})
        );
    } else {
        println!("{what:<40} {seconds:8.2} s    (recall of the default search {recall:.5} over {wanted} pairs)");
    }
}

/// Times decoding, thumbnails and end-to-end analysis of the images in `dir`.
fn bench_folder(args: &BenchArgs, engine: &Engine, dir: &Path) -> anyhow::Result<()> {
    let scan = scan_folder(dir)?;
    let paths: Vec<PathBuf> = scan.images.into_iter().map(|e| e.path).collect();
    anyhow::ensure!(!paths.is_empty(), "{} holds no images", dir.display());
    let threads = engine.threads();
    let pre = engine.info().preprocess;
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .build()?;
    let count_ok = |work: &(dyn Fn(&Path) -> bool + Sync)| {
        let start = Instant::now();
        let ok = pool.install(|| paths.par_iter().filter(|p| work(p)).count());
        (ok, start.elapsed())
    };
    let (ok, elapsed) = count_ok(&|p| {
        decode_file_for(p, pre.resize_shorter)
            .and_then(|d| model_input(&d.rgb, &pre))
            .is_ok()
    });
    report(args.json, "decode + model input", ok, elapsed, threads);
    let (ok, elapsed) = count_ok(&|p| {
        decode_file_for(p, THUMBNAIL_SIDE)
            .and_then(|d| make_thumbnail(&d.rgb, THUMBNAIL_SIDE))
            .is_ok()
    });
    report(args.json, "decode + thumbnail", ok, elapsed, threads);
    // The same without JPEG scaling, to show what it saves.
    let (ok, elapsed) = count_ok(&|p| {
        decode_file(p)
            .and_then(|d| make_thumbnail(&d.rgb, THUMBNAIL_SIDE))
            .is_ok()
    });
    report(
        args.json,
        "decode + thumbnail, full-size decode",
        ok,
        elapsed,
        threads,
    );
    report_reduced_fidelity(args.json, engine, &paths)?;
    let start = Instant::now();
    let never = AtomicBool::new(false);
    let bar = super::progress_bar(paths.len());
    let results =
        engine.analyse_files(&paths, &never, &mut |done, _| bar.set_position(done as u64));
    bar.finish_and_clear();
    let ok = results.iter().filter(|r| r.is_ok()).count();
    let what = format!("end to end {} ({} images)", engine.info().id, paths.len());
    report(args.json, &what, ok, start.elapsed(), threads);
    Ok(())
}

/// How close what the model sees from a JPEG decoded at reduced size (the engine's own path)
/// comes to what it sees from a full decode: embedding cosine and top-1 agreement, over the
/// files that the reduced decode applies to.
fn report_reduced_fidelity(json: bool, engine: &Engine, paths: &[PathBuf]) -> anyhow::Result<()> {
    let pre = engine.info().preprocess;
    let mut cosines = Vec::new();
    let mut same_top = 0;
    for path in paths {
        let Ok(full) = decode_file(path) else {
            continue;
        };
        let Ok(reduced) = decode_file_for(path, pre.resize_shorter) else {
            continue;
        };
        if reduced.rgb.dimensions() == full.rgb.dimensions() {
            continue;
        }
        let inputs = [
            model_input(&reduced.rgb, &pre)?,
            model_input(&full.rgb, &pre)?,
        ];
        let outputs = engine.embed_inputs(&[&inputs[0], &inputs[1]])?;
        cosines.push(cosine(&outputs[0].embedding, &outputs[1].embedding));
        let top = |i: usize| outputs[i].top.first().map(|p| p.class);
        same_top += usize::from(top(0) == top(1));
    }
    if cosines.is_empty() {
        return Ok(());
    }
    let count = cosines.len();
    let lowest = cosines.iter().copied().fold(f32::INFINITY, f32::min);
    let mean = cosines.iter().sum::<f32>() / count as f32;
    let agreement = same_top as f64 / count as f64;
    let what = "reduced JPEG decode against full";
    if json {
        println!(
            "{}",
            json!({"what": what, "files": count, "cosine_min": lowest, "cosine_mean": mean, "top1_agreement": agreement})
        );
    } else {
        println!("{what:<40} cosine min {lowest:.4} mean {mean:.4}, top-1 agreement {agreement:.3} ({count} files)");
    }
    Ok(())
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
