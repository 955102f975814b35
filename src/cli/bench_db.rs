//! `lookalike bench --db URL`: the shared index's search, timed through the same calls
//! `similar --db` makes. It stores generated vectors in a library of their own (`bench-N`,
//! reused by later runs), then for each query times the HNSW search and the exact one and
//! reports recall@50 of the first against the second.

use std::path::Path;
use std::time::{Duration, Instant};

use lookalike::index::postgres::{PostgresIndex, Target};
use lookalike::index::{FileRecord, ModelStamp, Store, Stored};
use lookalike::similarity::l2_normalise;

/// Vectors of Lite0's length, under a model name of their own so that no real index mixes
/// with them.
const DIM: usize = 1280;
const STAMP: ModelStamp<'static> = ModelStamp {
    model: "bench",
    revision: "generated-v1",
    dim: DIM,
};
/// How many results a query asks for, and how many of them recall is counted on.
const TOP: usize = 100;
const RECALL_AT: usize = 50;

/// Fills the library if needed, then times `queries` searches both ways.
pub fn run(url: &str, count: usize, queries: usize) -> anyhow::Result<()> {
    let target = Target::parse(url, Some(format!("bench-v2-{count}")))?;
    // The library's folder only anchors the generated paths; nothing is read from it.
    let root = std::env::temp_dir();
    let mut index = PostgresIndex::open(&target, &root)?;
    let stored = index.images_under(&root, STAMP)?.len();
    let vectors = clustered_vectors(count);
    if stored != count {
        fill(&mut index, &root, &vectors)?;
    }
    let (mut hnsw, mut exact, mut recalls) = (Vec::new(), Vec::new(), Vec::new());
    for q in 0..queries {
        let query = query_near(&vectors, q * 7919, q as u64 + 1);
        let (approximate, took) = timed(|| index.nearest(&root, STAMP, &query, Some(TOP), false))?;
        hnsw.push(took);
        let (truth, took) = timed(|| index.nearest(&root, STAMP, &query, Some(TOP), true))?;
        exact.push(took);
        let truth: Vec<_> = truth.iter().take(RECALL_AT).map(|m| &m.path).collect();
        let found = approximate
            .iter()
            .take(RECALL_AT)
            .filter(|m| truth.contains(&&m.path))
            .count();
        recalls.push(found as f64 / RECALL_AT.min(truth.len()).max(1) as f64);
    }
    let mean = recalls.iter().sum::<f64>() / recalls.len().max(1) as f64;
    let worst = recalls.iter().copied().fold(1.0, f64::min);
    println!("top {TOP} of {count} vectors, {queries} queries:");
    println!("  HNSW   {}", percentiles(&mut hnsw));
    println!("  exact  {}", percentiles(&mut exact));
    println!("  recall@{RECALL_AT} of HNSW against exact: mean {mean:.4}, worst {worst:.2}");
    Ok(())
}

/// Stores the vectors, a thousand to a transaction, then builds their HNSW index.
fn fill(index: &mut PostgresIndex, root: &Path, vectors: &[f32]) -> anyhow::Result<()> {
    let start = Instant::now();
    store(index, root, vectors, 1000 * DIM)?;
    let stored = start.elapsed();
    // As at the end of an indexing run: the table is large enough for its HNSW index.
    index.tidy(STAMP)?;
    println!(
        "stored {} vectors of {DIM} in {:.1} s, built their HNSW index in {:.1} s",
        vectors.len() / DIM,
        stored.as_secs_f64(),
        (start.elapsed() - stored).as_secs_f64()
    );
    Ok(())
}

/// Stores the vectors in transactions of `chunk` numbers.
fn store(
    index: &mut PostgresIndex,
    root: &Path,
    vectors: &[f32],
    chunk: usize,
) -> anyhow::Result<()> {
    let paths: Vec<_> = (0..vectors.len() / DIM)
        .map(|i| root.join(format!("generated-{i:07}.jpg")))
        .collect();
    let fingerprints: Vec<[u8; 8]> = (0..paths.len() as u64).map(u64::to_le_bytes).collect();
    for (part, start) in vectors.chunks(chunk).zip((0..).step_by(chunk / DIM)) {
        let batch: Vec<Stored<'_>> = part
            .chunks_exact(DIM)
            .enumerate()
            .map(|(i, vector)| Stored {
                file: FileRecord {
                    path: &paths[start + i],
                    size: 1,
                    mtime_ns: 0,
                    fingerprint: &fingerprints[start + i],
                    size_px: Some((1, 1)),
                    thumbnail: None,
                    error: None,
                    content_changed: false,
                },
                embedding: Some((vector, &[])),
            })
            .collect();
        index.store_batch(STAMP, &batch)?;
    }
    Ok(())
}

/// `count` unit vectors the way a photo library's embeddings lie: 100 broad themes, each with
/// 20 subjects, and photos spread round their subject. From a fixed seed, so that every run
/// stores the same data.
fn clustered_vectors(count: usize) -> Vec<f32> {
    let mut random = super::bench::uniform(0x2545_F491_4F6C_DD1D);
    let themes: Vec<f32> = (0..100 * DIM).map(|_| random()).collect();
    let subjects: Vec<f32> = (0..2000 * DIM)
        .map(|i| themes[(i / DIM % 100) * DIM + i % DIM] + 0.8 * random())
        .collect();
    let mut vectors = Vec::with_capacity(count * DIM);
    for i in 0..count {
        let subject = &subjects[(i % 2000) * DIM..][..DIM];
        let start = vectors.len();
        vectors.extend(subject.iter().map(|c| c + 0.9 * random()));
        l2_normalise(&mut vectors[start..]);
    }
    vectors
}

/// A new photo of what the `nth` stored vector shows: that vector, moved a little.
fn query_near(vectors: &[f32], nth: usize, seed: u64) -> Vec<f32> {
    let mut random = super::bench::uniform(seed);
    let count = vectors.len() / DIM;
    let mut query: Vec<f32> = vectors[(nth % count) * DIM..][..DIM].to_vec();
    // About a fifth of the vector's length in noise: a cosine near 0.98 to the original.
    query.iter_mut().for_each(|v| *v += 0.02 * random());
    l2_normalise(&mut query);
    query
}

fn timed<T>(work: impl FnOnce() -> lookalike::Result<T>) -> anyhow::Result<(T, Duration)> {
    let start = Instant::now();
    let out = work()?;
    Ok((out, start.elapsed()))
}

fn percentiles(times: &mut [Duration]) -> String {
    if times.is_empty() {
        return "no queries".to_string();
    }
    times.sort();
    let at = |p: f64| times[((times.len() - 1) as f64 * p).round() as usize].as_secs_f64() * 1e3;
    format!(
        "median {:6.1} ms   p95 {:6.1} ms   worst {:6.1} ms",
        at(0.5),
        at(0.95),
        at(1.0)
    )
}
