//! The command line as a script would use it: the tutorial's three results, the JSON shapes,
//! exit codes, and files that fail without stopping the rest.

mod seeds;
use seeds::seed;

use std::path::Path;
use std::process::{Command, Output};

use serde_json::Value;

fn lookalike(args: &[&std::ffi::OsStr]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_lookalike"))
        .args(args)
        .output()
        .expect("the binary runs")
}

/// Runs the binary with its index in a fresh temporary folder, never the user's cache.
fn run(args: &[&str]) -> Output {
    let cache = tempfile::tempdir().unwrap();
    let mut args: Vec<&std::ffi::OsStr> = args.iter().map(|a| std::ffi::OsStr::new(*a)).collect();
    if args
        .first()
        .is_some_and(|a| *a == "similar" || *a == "index")
    {
        args.extend([
            std::ffi::OsStr::new("--cache-dir"),
            cache.path().as_os_str(),
        ]);
    }
    lookalike(&args)
}

fn json_lines(out: &Output) -> Vec<Value> {
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON: {l}: {e}")))
        .collect()
}

fn file_name(v: &Value) -> String {
    Path::new(v["file"].as_str().unwrap())
        .file_name()
        .unwrap()
        .to_string_lossy()
        .into_owned()
}

#[test]
fn classify_elephant_says_indian_elephant() {
    let elephant = seed("elephant.jpg");
    let out = run(&["classify", elephant.to_str().unwrap()]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8_lossy(&out.stdout);
    let first_label = text.lines().nth(1).expect("a label line");
    assert!(first_label.contains("1. Indian elephant"), "{text}");
    assert_eq!(
        text.lines().count(),
        6,
        "a name line and five labels: {text}"
    );
}

#[test]
fn classify_json_has_the_contract_shape() {
    let elephant = seed("elephant.jpg");
    let png_named_jpg = seed("input.jpg");
    let out = run(&[
        "classify",
        "--top",
        "3",
        "--json",
        elephant.to_str().unwrap(),
        png_named_jpg.to_str().unwrap(),
    ]);
    assert!(out.status.success());
    let lines = json_lines(&out);
    assert_eq!(lines.len(), 2);
    assert_eq!(
        lines[0]["file"].as_str().unwrap(),
        elephant.to_str().unwrap(),
        "the path as given"
    );
    let top = lines[0]["top"].as_array().unwrap();
    assert_eq!(top.len(), 3);
    assert_eq!(top[0]["class"], 385);
    assert_eq!(top[0]["label"], "Indian elephant");
    let probs: Vec<f64> = top.iter().map(|t| t["prob"].as_f64().unwrap()).collect();
    assert!(
        probs[0] > 0.5 && probs.windows(2).all(|p| p[0] >= p[1]),
        "{probs:?}"
    );
    // input.jpg is really a PNG: still classified, by content.
    assert_eq!(lines[1]["top"][0]["label"], "sunscreen");
}

#[test]
fn a_broken_file_is_reported_and_the_rest_still_run() {
    let dir = tempfile::tempdir().unwrap();
    let broken = dir.path().join("broken.jpg");
    std::fs::write(&broken, b"this is not a jpeg at all").unwrap();
    let missing = dir.path().join("missing.png");
    let tiger = seed("Tiger.jpg");
    let args = [
        "classify",
        "--json",
        broken.to_str().unwrap(),
        tiger.to_str().unwrap(),
        missing.to_str().unwrap(),
    ];
    let out = run(&args);
    assert_eq!(
        out.status.code(),
        Some(1),
        "exit code 1 when any file failed"
    );
    let lines = json_lines(&out);
    assert_eq!(lines.len(), 3);
    assert_eq!(lines[0]["file"].as_str().unwrap(), broken.to_str().unwrap());
    assert!(
        lines[0]["error"].as_str().unwrap().contains("not an image"),
        "{}",
        lines[0]
    );
    assert_eq!(lines[1]["top"][0]["label"], "tiger");
    assert!(
        lines[2]["error"].as_str().unwrap().contains("cannot open"),
        "{}",
        lines[2]
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("broken.jpg") && stderr.contains("missing.png"),
        "{stderr}"
    );

    // Human mode names the file on stderr.
    let out = run(&["classify", broken.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("broken.jpg"));
}

#[test]
fn embed_json_is_a_unit_vector_of_the_model_dimension() {
    let sunflower = seed("太陽花.jpg");
    let out = run(&["embed", "--json", sunflower.to_str().unwrap()]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let lines = json_lines(&out);
    assert_eq!(lines.len(), 1);
    assert_eq!(lines[0]["model"], "lite0");
    assert_eq!(lines[0]["dim"], 1280);
    let v: Vec<f64> = lines[0]["embedding"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_f64().unwrap())
        .collect();
    assert_eq!(v.len(), 1280);
    let norm = v.iter().map(|x| x * x).sum::<f64>().sqrt();
    assert!((norm - 1.0).abs() < 1e-4, "norm {norm}");
}

#[test]
fn similar_tiger3_ranks_the_other_tigers_first() {
    let out = run(&["similar", "--json", seed("Tiger3.jpg").to_str().unwrap()]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let lines = json_lines(&out);
    assert_eq!(lines.len(), 8, "every other seed image, the query left out");
    let names: Vec<String> = lines.iter().map(file_name).collect();
    assert_eq!(&names[..2], ["Tiger2.jpg", "Tiger.jpg"]);
    assert!(!names.contains(&"Tiger3.jpg".to_string()));
    let scores: Vec<f64> = lines.iter().map(|l| l["score"].as_f64().unwrap()).collect();
    assert!(
        scores.windows(2).all(|s| s[0] >= s[1]),
        "best first: {scores:?}"
    );
}

#[test]
fn similar_elephant_ranks_elephant2_first() {
    let dir = seed("");
    let out = run(&[
        "similar",
        seed("elephant.jpg").to_str().unwrap(),
        "--in",
        dir.to_str().unwrap(),
        "--top",
        "1",
    ]);
    assert!(out.status.success());
    let text = String::from_utf8_lossy(&out.stdout);
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 2, "a heading and one match: {text}");
    assert!(lines[1].contains("elephant2.jpg"), "{text}");
}

#[test]
fn similar_searches_subfolders_and_skips_unreadable_files() {
    let dir = tempfile::tempdir().unwrap();
    let nested = dir.path().join("more/deeper");
    std::fs::create_dir_all(&nested).unwrap();
    std::fs::copy(seed("Tiger.jpg"), nested.join("Tiger.jpg")).unwrap();
    std::fs::copy(seed("bird01.jpg"), dir.path().join("bird01.jpg")).unwrap();
    std::fs::write(
        dir.path().join("truncated.jpg"),
        &std::fs::read(seed("Tiger2.jpg")).unwrap()[..600],
    )
    .unwrap();
    std::fs::write(dir.path().join("notes.txt"), "not an image, not a problem").unwrap();
    let query = seed("Tiger3.jpg");
    let out = run(&[
        "similar",
        "--json",
        query.to_str().unwrap(),
        "--in",
        dir.path().to_str().unwrap(),
    ]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "unreadable files do not change the exit code"
    );
    let names: Vec<String> = json_lines(&out).iter().map(file_name).collect();
    assert_eq!(names, ["Tiger.jpg", "bird01.jpg"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("truncated.jpg"), "{stderr}");
    assert!(!stderr.contains("notes.txt"), "{stderr}");
}

#[test]
fn an_unknown_model_is_refused_with_the_known_names() {
    let out = run(&[
        "classify",
        "--model",
        "resnet9000",
        seed("Tiger.jpg").to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("lite0"));
    let help = run(&["similar", "--help"]);
    assert!(String::from_utf8_lossy(&help.stdout).contains("lite0"));
}

#[test]
fn bench_says_what_auto_precision_runs_and_keeps_the_measurement_for_this_cpu() {
    let config = tempfile::tempdir().unwrap();
    let bench = |extra: &[&str]| {
        let out = Command::new(env!("CARGO_BIN_EXE_lookalike"))
            .args([
                "bench",
                "--json",
                "--batches",
                "1",
                "--seconds",
                "0",
                "--sort-items",
                "0",
            ])
            .args(extra)
            .env("XDG_CONFIG_HOME", config.path())
            .output()
            .expect("the binary runs");
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        json_lines(&out)
    };
    let lines = bench(&[]);
    let auto = lines
        .iter()
        .find(|l| l["what"] == "precision auto")
        .expect("bench says what auto chose");
    // The line of the forward pass, which names the precision that ran.
    let forward_of = |lines: &[Value]| -> String {
        lines
            .iter()
            .filter_map(|l| l["what"].as_str())
            .find(|w| w.starts_with("forward lite0"))
            .expect("bench times the forward pass")
            .to_string()
    };
    let forward = forward_of(&lines);
    let file = config.path().join("lookalike/precision.json");
    match auto["choice"].as_object() {
        // A CPU with more than one path: each was timed, the fastest runs, and it is kept.
        Some(choice) => {
            let chosen = choice["precision"].as_str().unwrap();
            let rates = choice["rates"].as_array().unwrap();
            assert!(rates.len() >= 2, "{choice:?}");
            let fastest = rates
                .iter()
                .max_by(|a, b| a[1].as_f64().unwrap().total_cmp(&b[1].as_f64().unwrap()))
                .unwrap();
            assert_eq!(fastest[0], chosen, "{choice:?}");
            assert!(forward.contains(chosen), "{forward}");
            let kept: Value = serde_json::from_slice(&std::fs::read(&file).unwrap()).unwrap();
            let cpu = auto["cpu"].as_str().unwrap();
            let (key, models) = kept.as_object().unwrap().iter().next().unwrap();
            assert!(key.starts_with(cpu), "{key} names {cpu}");
            assert_eq!(models["lite0"]["precision"], chosen);
            // The next run reads the choice back instead of measuring again.
            let mut edited = kept.clone();
            let other = rates.iter().find(|r| r[0] != chosen).unwrap()[0].clone();
            edited[key]["lite0"]["precision"] = other.clone();
            std::fs::write(&file, serde_json::to_vec(&edited).unwrap()).unwrap();
            let forward = forward_of(&bench(&[]));
            assert!(forward.contains(other.as_str().unwrap()), "{forward}");
        }
        // One path only: nothing to measure, nothing kept.
        None => {
            assert!(
                auto["why"].as_str().unwrap().contains("only path"),
                "{auto}"
            );
            assert!(!file.exists());
        }
    }
}
