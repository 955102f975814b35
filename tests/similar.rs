//! `lookalike similar` with several examples: two pictures to look like, one to look unlike,
//! a query from outside the folder, and a score cut-off, on the tutorial's images.

mod seeds;
use seeds::{seed, seed_dir, succeed};

use std::path::Path;
use std::process::Command;

use serde_json::Value;

/// Runs `similar` with a private index and returns the (file name, score) lines.
fn similar(args: &[&str], cache: &Path) -> Vec<(String, f64)> {
    let out = succeed(
        Command::new(env!("CARGO_BIN_EXE_lookalike"))
            .arg("similar")
            .args(args)
            .arg("--json")
            .arg("--cache-dir")
            .arg(cache),
    );
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| {
            let v: Value = serde_json::from_str(l).unwrap();
            let file = v["file"].as_str().unwrap();
            let name = Path::new(file).file_name().unwrap().to_string_lossy();
            (name.into_owned(), v["score"].as_f64().unwrap())
        })
        .collect()
}

fn names(lines: &[(String, f64)]) -> Vec<&str> {
    lines.iter().map(|(n, _)| n.as_str()).collect()
}

fn path(p: &Path) -> &str {
    p.to_str().unwrap()
}

#[test]
fn two_examples_put_the_third_tiger_first_and_leave_the_examples_out() {
    let cache = tempfile::tempdir().unwrap();
    let dir = seed_dir();
    let lines = similar(
        &[
            path(&seed("Tiger3.jpg")),
            path(&seed("Tiger.jpg")),
            "--in",
            path(&dir),
        ],
        cache.path(),
    );
    assert_eq!(lines[0].0, "Tiger2.jpg", "{lines:?}");
    assert_eq!(lines.len(), 7, "every image but the two examples");
    assert!(!names(&lines).contains(&"Tiger.jpg") && !names(&lines).contains(&"Tiger3.jpg"));
}

#[test]
fn a_negative_example_ranks_what_is_like_it_lower() {
    let cache = tempfile::tempdir().unwrap();
    let plain = similar(&[path(&seed("Tiger3.jpg"))], cache.path());
    let against = similar(
        &[
            path(&seed("Tiger3.jpg")),
            "--not",
            path(&seed("Tiger2.jpg")),
        ],
        cache.path(),
    );
    let place = |lines: &[(String, f64)], name: &str| names(lines).iter().position(|n| *n == name);
    assert_eq!(place(&plain, "Tiger2.jpg"), Some(0), "{plain:?}");
    assert_eq!(
        place(&against, "Tiger2.jpg"),
        None,
        "an example is never listed"
    );
    let tiger = |lines: &[(String, f64)]| lines.iter().find(|l| l.0 == "Tiger.jpg").unwrap().1;
    assert!(
        tiger(&against) < tiger(&plain),
        "Tiger.jpg, like Tiger2, scores lower: {} then {}",
        tiger(&plain),
        tiger(&against)
    );
}

#[test]
fn a_query_from_outside_the_folder_gives_the_same_order_and_is_not_indexed() {
    let cache = tempfile::tempdir().unwrap();
    let outside = tempfile::tempdir().unwrap();
    let copy = outside.path().join("my tiger.jpg");
    std::fs::copy(seed("Tiger3.jpg"), &copy).unwrap();
    let inside = similar(&[path(&seed("Tiger3.jpg"))], cache.path());
    let from_outside = similar(&[path(&copy), "--in", path(&seed_dir())], cache.path());
    // From outside, Tiger3.jpg itself is in the folder and comes first with a score of 1.
    assert_eq!(from_outside[0].0, "Tiger3.jpg");
    assert!((from_outside[0].1 - 1.0).abs() < 1e-4);
    assert_eq!(names(&from_outside[1..]), names(&inside));
    use lookalike::index::Store;
    let mut index = lookalike::index::SqliteIndex::open(cache.path()).unwrap();
    let key = std::fs::canonicalize(&copy).unwrap();
    assert!(
        index.lookup(&key).unwrap().is_none(),
        "the outside file is not indexed"
    );
}

#[test]
fn min_score_cuts_the_list() {
    let cache = tempfile::tempdir().unwrap();
    let all = similar(&[path(&seed("Tiger3.jpg"))], cache.path());
    let cut = similar(
        &[path(&seed("Tiger3.jpg")), "--min-score", "0.3"],
        cache.path(),
    );
    let expected = all.iter().filter(|l| l.1 >= 0.3).count();
    assert!(
        expected > 0 && expected < all.len(),
        "the cut falls inside the list"
    );
    assert_eq!(cut.len(), expected);
    assert!(cut.iter().all(|l| l.1 >= 0.3));
}

#[test]
fn two_queries_need_a_folder() {
    let out = Command::new(env!("CARGO_BIN_EXE_lookalike"))
        .args(["similar", "--no-cache"])
        .arg(seed("Tiger.jpg"))
        .arg(seed("Tiger2.jpg"))
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("--in DIR"));
}
