//! The one indexer behind the command line and the app: what its sink is told, in which
//! order, with and without an index, and how the priority hook and the stop flag steer it.

mod seeds;
use seeds::seed;

use std::ops::ControlFlow;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};

use lookalike::index::SqliteIndex;
use lookalike::pipeline::{DynStore, IndexEvent, Indexer, Source};
use lookalike::{Engine, EngineOptions, Error, ModelKind};

/// What a sink saw, flattened so that tests can compare it.
#[derive(Debug, Default)]
struct Seen {
    scanned: Vec<String>,
    /// (position, source) in the order results arrived.
    ready: Vec<(usize, Source)>,
    failed: Vec<(usize, String)>,
    /// Positions of results and failures, in the order they were told.
    told: Vec<usize>,
    progress: Vec<(usize, usize)>,
    pruned: Option<usize>,
    index_failures: usize,
}

impl Seen {
    fn record(&mut self, event: IndexEvent<'_>) {
        match event {
            IndexEvent::Scanned { images, .. } => {
                self.scanned = images
                    .iter()
                    .map(|e| e.path.file_name().unwrap().to_string_lossy().into_owned())
                    .collect()
            }
            IndexEvent::Ready {
                position, source, ..
            } => {
                self.ready.push((position, source));
                self.told.push(position);
            }
            IndexEvent::Failed { position, error } => {
                self.failed.push((position, error.reason()));
                self.told.push(position);
            }
            IndexEvent::Progress { done, total } => self.progress.push((done, total)),
            IndexEvent::Pruned(n) => self.pruned = Some(n),
            IndexEvent::IndexFailed(_) => self.index_failures += 1,
        }
    }

    fn position_of(&self, name: &str) -> usize {
        self.scanned.iter().position(|n| n == name).unwrap()
    }
}

fn engine() -> Engine {
    engine_with_batches_of(2)
}

fn engine_with_batches_of(batch_size: usize) -> Engine {
    let options = EngineOptions {
        batch_size,
        thumbnail_side: Some(64),
        ..Default::default()
    };
    Engine::new(ModelKind::Lite0, options).unwrap()
}

/// A folder with five seed images and one JPEG cut off after its header.
fn folder() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    for name in [
        "Tiger.jpg",
        "Tiger2.jpg",
        "elephant.jpg",
        "bird01.jpg",
        "elephant2.jpg",
    ] {
        std::fs::copy(seed(name), dir.path().join(name)).unwrap();
    }
    std::fs::write(
        dir.path().join("broken.jpg"),
        b"\xff\xd8\xff\xe0\x00\x10JFIF",
    )
    .unwrap();
    dir
}

fn run(engine: &Engine, index: Option<&mut DynStore>, dir: &Path) -> Seen {
    let never = AtomicBool::new(false);
    let mut seen = Seen::default();
    let report = Indexer::new(engine, index, &never)
        .run(dir, &mut |event| {
            seen.record(event);
            ControlFlow::Continue(())
        })
        .unwrap();
    assert_eq!(
        report.images,
        seen.ready.len(),
        "the report counts what was seen"
    );
    seen
}

#[test]
fn every_image_is_told_once_and_progress_counts_up() {
    let dir = folder();
    let engine = engine();
    let seen = run(&engine, None, dir.path());
    assert_eq!(
        seen.scanned.len(),
        6,
        "the broken file is scanned: it looks like a JPEG"
    );
    let mut positions: Vec<usize> = seen.ready.iter().map(|r| r.0).collect();
    positions.extend(seen.failed.iter().map(|f| f.0));
    positions.sort();
    assert_eq!(
        positions,
        (0..6).collect::<Vec<_>>(),
        "each position exactly once"
    );
    assert_eq!(seen.failed.len(), 1);
    assert_eq!(seen.failed[0].0, seen.position_of("broken.jpg"));
    assert!(seen.ready.iter().all(|r| r.1 == Source::New));
    assert_eq!(seen.progress.last(), Some(&(6, 6)));
    assert!(seen.progress.windows(2).all(|w| w[0].0 < w[1].0));
    assert_eq!(seen.pruned, None, "without an index nothing is pruned");
}

#[test]
fn a_second_run_is_served_from_the_index_and_a_deleted_file_is_pruned() {
    let dir = folder();
    let cache = tempfile::tempdir().unwrap();
    let engine = engine();
    let mut index = SqliteIndex::open(cache.path()).unwrap();
    let first = run(&engine, Some(&mut index), dir.path());
    assert_eq!(first.ready.len(), 5);
    assert_eq!(first.pruned, Some(0));
    std::fs::remove_file(dir.path().join("bird01.jpg")).unwrap();
    let second = run(&engine, Some(&mut index), dir.path());
    assert_eq!(second.ready.len(), 4);
    assert!(second.ready.iter().all(|r| r.1 == Source::Index));
    assert_eq!(
        second.failed.len(),
        1,
        "the broken file is remembered as broken"
    );
    assert_eq!(second.pruned, Some(1), "the deleted file left the index");
    assert_eq!(second.index_failures, 0);
    assert_eq!(second.progress, vec![], "nothing needed embedding");
}

#[test]
fn the_priority_hook_picks_the_first_batch() {
    let dir = folder();
    let engine = engine();
    // Ask for the last image in folder order first, whatever it is.
    let last = || vec![5];
    let never = AtomicBool::new(false);
    let mut seen = Seen::default();
    Indexer::new(&engine, None, &never)
        .prioritise(&last)
        .run(dir.path(), &mut |event| {
            seen.record(event);
            ControlFlow::Continue(())
        })
        .unwrap();
    assert_eq!(seen.told.len(), 6);
    assert_eq!(
        seen.told[0], 5,
        "the image asked for came first: {:?}",
        seen.told
    );
}

#[test]
fn a_sink_that_stops_ends_the_run_as_cancelled() {
    let dir = folder();
    let engine = engine();
    let never = AtomicBool::new(false);
    let mut results = 0;
    let outcome = Indexer::new(&engine, None, &never).run(dir.path(), &mut |event| {
        if matches!(event, IndexEvent::Ready { .. }) {
            results += 1;
            return ControlFlow::Break(());
        }
        ControlFlow::Continue(())
    });
    assert!(matches!(outcome, Err(Error::Cancelled)), "{outcome:?}");
    assert_eq!(results, 1, "nothing more is told after the sink stops");
}

#[test]
fn the_stop_flag_ends_the_run_after_the_batch_in_flight() {
    let dir = folder();
    let engine = engine_with_batches_of(1);
    let stop = AtomicBool::new(false);
    let mut results = 0;
    let outcome = Indexer::new(&engine, None, &stop).run(dir.path(), &mut |event| {
        if matches!(event, IndexEvent::Ready { .. } | IndexEvent::Failed { .. }) {
            results += 1;
            stop.store(true, Ordering::Relaxed);
        }
        ControlFlow::Continue(())
    });
    assert!(matches!(outcome, Err(Error::Cancelled)), "{outcome:?}");
    // One batch of one image in flight, and at most two taken ahead of it.
    assert!(
        results <= 3,
        "the run stopped soon after the flag: {results} results"
    );
}
