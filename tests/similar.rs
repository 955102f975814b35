//! `lookalike similar` with several examples: two pictures to look like, one to look unlike,
//! a query from outside the folder, and a score cut-off, on the tutorial's images.

mod seeds;
use seeds::{seed, seed_dir, succeed};

use std::path::Path;
use std::process::Command;

use serde_json::Value;

/// Runs `similar` with a private index and returns the (file name, score) lines.
fn similar(args: &[&str], cache: &Path) -> Vec<(String, f64)> {
    let cache = ["--cache-dir", path(cache)];
    similar_with(&[args, &cache].concat())
}

/// Runs `similar` with these arguments and returns the (file name, score) lines.
fn similar_with(args: &[&str]) -> Vec<(String, f64)> {
    let out = succeed(
        Command::new(env!("CARGO_BIN_EXE_lookalike"))
            .arg("similar")
            .args(args)
            .arg("--json"),
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

/// The tutorial's pictures and real photos, with crops of the photos so that some scores lie
/// close together.
fn library_of_real_photos() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    for entry in std::fs::read_dir(seed_dir()).unwrap() {
        let from = entry.unwrap().path();
        std::fs::copy(&from, dir.path().join(from.file_name().unwrap())).unwrap();
    }
    let photos = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/photos");
    for name in ["friends.jpg", "life.jpg", "mountain.jpg", "peaks.jpg"] {
        let photo = image::open(photos.join(name)).unwrap();
        photo.save(dir.path().join(name)).unwrap();
        let (w, h) = (photo.width(), photo.height());
        let crop = photo.crop_imm(w / 8, h / 8, w * 3 / 4, h * 3 / 4);
        crop.save(dir.path().join(format!("crop of {name}")))
            .unwrap();
    }
    dir
}

#[test]
fn the_apps_compact_vectors_rank_real_photos_as_f32_does() {
    let dir = library_of_real_photos();
    let files: Vec<std::path::PathBuf> = (std::fs::read_dir(dir.path()).unwrap())
        .map(|e| e.unwrap().path())
        .collect();
    let out = succeed(
        Command::new(env!("CARGO_BIN_EXE_lookalike"))
            .args(["embed", "--json"])
            .args(&files),
    );
    let vectors: Vec<Vec<f32>> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| {
            let v: Value = serde_json::from_str(l).unwrap();
            let values = v["embedding"].as_array().unwrap();
            values.iter().map(|x| x.as_f64().unwrap() as f32).collect()
        })
        .collect();
    assert_eq!(vectors.len(), files.len());
    let mut compact = lookalike::similarity::Vectors::new(vectors.len());
    vectors
        .iter()
        .enumerate()
        .for_each(|(i, v)| compact.set(i, v));
    // Every picture as the query: the same ten best, in the same order.
    for (q, query) in vectors.iter().enumerate() {
        let exact = lookalike::similarity::rank(query, vectors.iter().map(Vec::as_slice));
        let scores = compact.scores(query);
        let mut order: Vec<usize> = (0..vectors.len()).collect();
        order.sort_by(|&a, &b| scores[b].unwrap().total_cmp(&scores[a].unwrap()));
        let exact: Vec<usize> = exact.iter().map(|r| r.0).take(10).collect();
        assert_eq!(order[..10], exact, "query {}", files[q].display());
    }
}

#[test]
fn the_index_ranks_a_library_as_the_pictures_themselves_do() {
    let dir = library_of_real_photos();
    let query = dir.path().join("mountain.jpg");
    let cache = tempfile::tempdir().unwrap();
    let folder = [path(&query), "--in", path(dir.path())];
    let run = |extra: &[&str], cache: &Path| similar(&[&folder[..], extra].concat(), cache);
    // Embedded here and ranked in memory, without an index: the reference.
    let reference = similar_with(&[&folder[..], &["--no-cache"]].concat());
    assert!(reference.len() >= 15, "{reference:?}");
    // The index, read one row at a time, keeping every score or only the best ten.
    let indexed = run(&[], cache.path());
    let unscanned = run(&["--no-scan"], cache.path());
    let top_ten = run(&["--no-scan", "--top", "10"], cache.path());
    for (ranking, what) in [(&indexed, "indexed"), (&unscanned, "--no-scan")] {
        assert_eq!(names(ranking), names(&reference), "{what}");
        for ((_, a), (_, b)) in ranking.iter().zip(&reference) {
            assert!((a - b).abs() < 1e-5, "{what}: {a} against {b}");
        }
    }
    assert_eq!(names(&top_ten), names(&reference)[..10]);
    assert_eq!(names(&reference)[0], "crop of mountain.jpg");
}
