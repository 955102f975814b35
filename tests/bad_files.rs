//! Bad files, bombs and odd folders through `index`, `classify`, `similar` and the app's
//! indexing worker: every bad file is reported by name with a reason, every good one is
//! processed, memory stays bounded, and the folder is never written to.

mod corpus;

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use corpus::Expect;
use lookalike::gui::worker::{Job, Message};
use lookalike::index::CacheLocation;
use lookalike::{Engine, EngineOptions, ModelKind};
use serde_json::Value;

fn lookalike() -> Command {
    Command::new(env!("CARGO_BIN_EXE_lookalike"))
}

fn lossy(path: &Path) -> String {
    path.to_string_lossy().into_owned()
}

/// Runs a command to the end; returns stdout, stderr, exit code and peak RSS in MiB (read from
/// /proc while it runs; 0 where there is no /proc).
fn run_measured(mut cmd: Command) -> (String, String, Option<i32>, u64) {
    let mut child = cmd
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut out = child.stdout.take().unwrap();
    let mut err = child.stderr.take().unwrap();
    let out_reader = std::thread::spawn(move || {
        let mut s = String::new();
        out.read_to_string(&mut s).map(|_| s).unwrap_or_default()
    });
    let err_reader = std::thread::spawn(move || {
        let mut s = String::new();
        err.read_to_string(&mut s).map(|_| s).unwrap_or_default()
    });
    let status_file = format!("/proc/{}/status", child.id());
    let mut peak_kib = 0u64;
    let status = loop {
        if let Ok(status) = std::fs::read_to_string(&status_file) {
            let hwm = status.lines().find(|l| l.starts_with("VmHWM:"));
            if let Some(kib) = hwm
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|n| n.parse().ok())
            {
                peak_kib = peak_kib.max(kib);
            }
        }
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        std::thread::sleep(Duration::from_millis(5));
    };
    (
        out_reader.join().unwrap(),
        err_reader.join().unwrap(),
        status.code(),
        peak_kib / 1024,
    )
}

/// Every file under `dir` with its modification time (symlinks not followed).
fn listing(dir: &Path) -> Vec<(PathBuf, Option<SystemTime>)> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d).unwrap() {
            let path = entry.unwrap().path();
            let meta = std::fs::symlink_metadata(&path).unwrap();
            if meta.is_dir() {
                stack.push(path.clone());
            }
            out.push((path, meta.modified().ok()));
        }
    }
    out.sort();
    out
}

#[test]
fn index_reports_every_bad_file_keeps_every_good_one_and_stays_small() {
    let corpus = corpus::build();
    let cache = tempfile::tempdir().unwrap();
    let before = listing(corpus.dir.path());
    let mut cmd = lookalike();
    // Two threads whatever the machine, so that the bound below does not grow with its cores.
    cmd.args(["index", "--json", "--threads", "2"])
        .arg(corpus.dir.path())
        .arg("--cache-dir")
        .arg(cache.path());
    let (stdout, stderr, code, peak_mib) = run_measured(cmd);
    assert_eq!(
        code,
        Some(0),
        "index exits 0 when the folder could be read: {stderr}"
    );
    let report: Value = serde_json::from_str(&stdout).unwrap_or_else(|e| panic!("{e}: {stdout}"));
    assert_eq!(
        report["images"].as_u64().unwrap() as usize,
        corpus.good().count(),
        "{report}"
    );
    let failed: Vec<(String, String)> = report["failed"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| {
            (
                f["file"].as_str().unwrap().to_string(),
                f["error"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    for case in corpus.bad() {
        let Expect::Bad(reason) = case.expect else {
            unreachable!()
        };
        let found = failed.iter().find(|(file, _)| *file == lossy(&case.path));
        let (_, error) = found.unwrap_or_else(|| {
            panic!(
                "{} ({}) is not reported: {failed:?}",
                lossy(&case.path),
                case.what
            )
        });
        assert!(
            error.contains(reason),
            "{}: {error:?} should mention {reason:?}",
            case.what
        );
        assert!(
            stderr.contains(&lossy(&case.path)),
            "{} is named on stderr",
            case.what
        );
    }
    for case in corpus.good() {
        assert!(
            !failed.iter().any(|(f, _)| *f == lossy(&case.path)),
            "{} failed: {failed:?}",
            case.what
        );
    }
    // About 85 MiB here. The bombs each need more than the 256 MiB one decode may allocate,
    // one of them only just: a bound under that cap fails if any got as far as allocating.
    let cap_mib = lookalike::decode::MAX_DECODE_BYTES >> 20;
    assert!(
        peak_mib < 192 && 192 < cap_mib,
        "peak RSS {peak_mib} MiB, where no decode may allocate {cap_mib} MiB"
    );
    eprintln!("peak RSS of index over the corpus: {peak_mib} MiB");
    assert_eq!(
        listing(corpus.dir.path()),
        before,
        "the browsed folder was written to"
    );
}

/// Eight threads decoding eight pictures just under the cap of one decode (243 MB each, so
/// 1.9 GB together) hold no more than the decode budget between them: the whole program stays
/// under 1 GiB, and every picture is still classified.
#[test]
fn eight_threads_of_the_largest_pictures_stay_under_a_gibibyte() {
    let dir = tempfile::tempdir().unwrap();
    let first = dir.path().join("large-0.png");
    corpus::flat_png(&first, 9_000);
    let mut files = vec![first.clone()];
    for i in 1..8 {
        let copy = dir.path().join(format!("large-{i}.png"));
        std::fs::copy(&first, &copy).unwrap();
        files.push(copy);
    }
    let mut cmd = lookalike();
    cmd.args(["classify", "--json", "--threads", "8", "--batch", "8"])
        .args(&files);
    let (stdout, stderr, code, peak_mib) = run_measured(cmd);
    assert_eq!(code, Some(0), "{stderr}");
    assert_eq!(stdout.lines().count(), 8, "{stdout}");
    let budget_mib = lookalike::decode::DECODE_BUDGET_BYTES >> 20;
    assert!(
        peak_mib < 1024,
        "peak RSS {peak_mib} MiB with a decode budget of {budget_mib} MiB"
    );
    eprintln!("peak RSS of eight threads of large pictures: {peak_mib} MiB");
}

#[test]
fn classify_and_similar_report_bad_files_and_carry_on() {
    let corpus = corpus::build();
    let files: Vec<&corpus::Case> = corpus
        .cases
        .iter()
        .filter(|c| !c.path.to_string_lossy().contains("dangling"))
        .collect();
    let out = lookalike()
        .args(["classify", "--json"])
        .args(files.iter().map(|c| &c.path))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1), "some files failed");
    let lines: Vec<Value> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), files.len(), "one line per file, in order");
    for (case, line) in files.iter().zip(&lines) {
        match &case.expect {
            Expect::Good => assert!(line["top"][0]["label"].is_string(), "{}: {line}", case.what),
            Expect::Bad(reason) => {
                let error = line["error"]
                    .as_str()
                    .unwrap_or_else(|| panic!("{}: {line}", case.what));
                assert!(error.contains(reason), "{}: {error}", case.what);
            }
        }
    }

    let query = corpus.good().next().unwrap().path.clone();
    let out = lookalike()
        .args(["similar", "--json", "--no-cache"])
        .arg(&query)
        .arg("--in")
        .arg(corpus.dir.path())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0));
    let ranked = String::from_utf8_lossy(&out.stdout).lines().count();
    assert_eq!(
        ranked,
        corpus.good().count() - 1,
        "every good image but the query is ranked"
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    for case in corpus.bad() {
        assert!(
            stderr.contains(&lossy(&case.path)),
            "{} is reported: {stderr}",
            case.what
        );
    }
}

#[test]
fn the_apps_indexing_worker_reports_every_bad_file() {
    let corpus = corpus::build();
    let engine = Arc::new(Engine::new(ModelKind::Lite0, EngineOptions::default()).unwrap());
    let job = Job::start(
        corpus.dir.path().to_path_buf(),
        engine,
        CacheLocation::Disabled,
        Arc::new(|_| {}),
    );
    let mut images = Vec::new();
    let mut problems: Vec<(String, String)> = Vec::new();
    let mut good = 0;
    let start = Instant::now();
    loop {
        assert!(
            start.elapsed() < Duration::from_secs(300),
            "the worker did not finish"
        );
        match job
            .messages
            .recv_timeout(Duration::from_secs(60))
            .expect("a message")
        {
            Message::Scanned {
                images: found,
                problems: p,
            } => {
                images = found;
                problems.extend(p.into_iter().map(|(path, reason)| (lossy(&path), reason)));
            }
            Message::Analysed(results) => {
                for analysed in results {
                    match analysed.result {
                        Ok(_) => good += 1,
                        Err(reason) => problems.push((lossy(&images[analysed.index].path), reason)),
                    }
                }
            }
            Message::Finished => break,
            Message::Warning(w) => panic!("unexpected warning {w}"),
            Message::IndexFailed(reason) => panic!("the index failed: {reason}"),
            Message::FolderFailed(reason) => panic!("the folder failed: {reason}"),
        }
    }
    assert_eq!(good, corpus.good().count());
    for case in corpus.bad() {
        assert!(
            problems.iter().any(|(p, _)| *p == lossy(&case.path)),
            "{} missing from {problems:?}",
            case.what
        );
    }
}

#[test]
fn a_file_deleted_between_scan_and_decode_is_reported() {
    let dir = tempfile::tempdir().unwrap();
    let corpus = corpus::build();
    let good = corpus.good().next().unwrap();
    let path = dir.path().join("here-then-gone.jpg");
    std::fs::copy(&good.path, &path).unwrap();
    let scan = lookalike::scan::scan_folder(dir.path()).unwrap();
    assert_eq!(scan.images.len(), 1);
    std::fs::remove_file(&path).unwrap();
    let engine = Engine::new(ModelKind::Lite0, EngineOptions::default()).unwrap();
    let never = AtomicBool::new(false);
    let results = engine.analyse_files(std::slice::from_ref(&path), &never, &mut |_, _| {});
    let error = results[0].as_ref().expect_err("it is gone").to_string();
    assert!(
        error.contains("here-then-gone.jpg") && error.contains("cannot open"),
        "{error}"
    );
}

#[test]
fn a_folder_of_twenty_thousand_tiny_files_scans() {
    let dir = tempfile::tempdir().unwrap();
    let tiny = std::fs::read(
        corpus::build()
            .good()
            .find(|c| c.what == "1x1 image")
            .unwrap()
            .path
            .clone(),
    )
    .unwrap();
    for i in 0..20_000 {
        let name = if i % 10 == 0 {
            format!("note{i}.txt")
        } else {
            format!("t{i:05}.png")
        };
        std::fs::write(dir.path().join(name), &tiny).unwrap();
    }
    let start = Instant::now();
    let scan = lookalike::scan::scan_folder(dir.path()).unwrap();
    // The .txt files hold PNG bytes too: found by content, whatever the name.
    assert_eq!(scan.images.len(), 20_000);
    assert!(scan.problems.is_empty());
    eprintln!(
        "scanned 20,000 files in {:.2} s",
        start.elapsed().as_secs_f64()
    );
}
