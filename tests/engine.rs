//! The engine's batch loop: results in order with failures in place, decoding overlapped with
//! the model but never far ahead of it, and stopping when asked.

mod seeds;
use seeds::seed;

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};

use lookalike::similarity::cosine;
use lookalike::{Engine, EngineOptions, Error, ModelKind};

fn engine(batch_size: usize) -> Engine {
    let options = EngineOptions {
        batch_size,
        ..Default::default()
    };
    Engine::new(ModelKind::Lite0, options).unwrap()
}

#[test]
fn results_come_back_in_order_with_a_failure_in_its_own_place() {
    let dir = tempfile::tempdir().unwrap();
    let broken = dir.path().join("broken.jpg");
    std::fs::write(&broken, b"not a picture").unwrap();
    let paths = vec![
        seed("Tiger.jpg"),
        seed("elephant.jpg"),
        broken.clone(),
        seed("bird01.jpg"),
        seed("Tiger3.jpg"),
    ];
    let engine = engine(2);
    let never = AtomicBool::new(false);
    let mut progress = Vec::new();
    let results = engine.analyse_files(&paths, &never, &mut |done, total| {
        progress.push((done, total))
    });
    assert_eq!(results.len(), paths.len());
    assert_eq!(progress, vec![(2, 5), (4, 5), (5, 5)]);
    for (path, result) in paths.iter().zip(&results) {
        if path == &broken {
            let err = result.as_ref().expect_err("the broken file fails");
            assert!(err.to_string().contains("broken.jpg"), "{err}");
            continue;
        }
        // Each result is the one for its own file, as analysing it alone gives.
        let alone = engine.analyse_file(path).unwrap();
        let got = result.as_ref().unwrap();
        assert!(
            cosine(&got.embedding, &alone.embedding) > 0.9999,
            "{path:?}"
        );
        assert_eq!(got.top[0].class, alone.top[0].class, "{path:?}");
    }
}

#[test]
fn the_stream_takes_at_most_two_batches_ahead_and_stops_when_told() {
    let engine = engine(1);
    let mut handed_out = 0;
    let mut delivered = Vec::new();
    engine
        .analyse_stream(
            || {
                handed_out += 1;
                (handed_out <= 20).then(|| (handed_out, vec![seed("Tiger.jpg")]))
            },
            |tag, results| {
                assert!(results[0].is_ok());
                delivered.push(tag);
                false // stop after the first batch
            },
        )
        .unwrap();
    assert_eq!(delivered, vec![1]);
    assert!(
        handed_out <= 3,
        "{handed_out} batches were taken for one delivered"
    );
}

#[test]
fn a_cancelled_run_finishes_what_it_delivered_and_marks_the_rest() {
    let paths: Vec<PathBuf> = ["Tiger.jpg", "Tiger2.jpg", "Tiger3.jpg", "elephant.jpg"]
        .iter()
        .cycle()
        .take(12)
        .map(|n| seed(n))
        .collect();
    let engine = engine(2);
    let cancel = AtomicBool::new(false);
    let results = engine.analyse_files(&paths, &cancel, &mut |done, _| {
        if done >= 2 {
            cancel.store(true, Ordering::Relaxed);
        }
    });
    assert_eq!(results.len(), paths.len());
    assert!(results[0].is_ok() && results[1].is_ok());
    // Batches already decoded when the stop came may still be delivered, but no more.
    let finished = results.iter().filter(|r| r.is_ok()).count();
    assert!(finished <= 6, "{finished} images analysed after cancelling");
    assert!(matches!(results.last(), Some(Err(Error::Cancelled))));
}
