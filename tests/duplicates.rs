//! `lookalike duplicates` on a generated folder: edited copies of three photos among unrelated
//! ones come back as three groups, in text and JSON, each with the keeper the rule picks.

mod seeds;
use seeds::{seed, succeed};

use std::path::Path;
use std::process::{Command, Output};

use image::imageops;
use serde_json::Value;

/// The seed photos, plus edited copies of three of them:
/// Tiger.jpg → a half-size re-encode and a mirrored PNG; elephant.jpg → 30 % darker;
/// bird01.jpg → cropped to 85 %.
fn folder_of_copies() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    for name in [
        "Tiger.jpg",
        "Tiger2.jpg",
        "Tiger3.jpg",
        "elephant.jpg",
        "elephant2.jpg",
        "bird01.jpg",
        "input.jpg",
        "style.jpg",
    ] {
        std::fs::copy(seed(name), dir.path().join(name)).unwrap();
    }
    let tiger = image::open(seed("Tiger.jpg")).unwrap();
    let (w, h) = (tiger.width(), tiger.height());
    tiger
        .resize(w / 2, h / 2, imageops::FilterType::Triangle)
        .to_rgb8()
        .save_with_format(dir.path().join("Tiger small.jpg"), image::ImageFormat::Jpeg)
        .unwrap();
    tiger
        .fliph()
        .save_with_format(
            dir.path().join("Tiger mirrored.png"),
            image::ImageFormat::Png,
        )
        .unwrap();
    image::open(seed("elephant.jpg"))
        .unwrap()
        .brighten(-60)
        .to_rgb8()
        .save_with_format(
            dir.path().join("elephant dark.jpg"),
            image::ImageFormat::Jpeg,
        )
        .unwrap();
    let bird = image::open(seed("bird01.jpg")).unwrap();
    let (bw, bh) = (bird.width(), bird.height());
    bird.crop_imm(bw * 4 / 100, bh * 4 / 100, bw * 92 / 100, bh * 92 / 100)
        .to_rgb8()
        .save_with_format(dir.path().join("bird crop.jpg"), image::ImageFormat::Jpeg)
        .unwrap();
    dir
}

fn duplicates(dir: &Path, cache: &Path, extra: &[&str]) -> Output {
    succeed(
        Command::new(env!("CARGO_BIN_EXE_lookalike"))
            .arg("duplicates")
            .arg(dir)
            .arg("--cache-dir")
            .arg(cache)
            .args(extra),
    )
}

fn name(file: &Value) -> String {
    let path = file["file"].as_str().unwrap();
    Path::new(path)
        .file_name()
        .unwrap()
        .to_string_lossy()
        .into_owned()
}

/// The groups as sorted lists of file names, in the order printed.
fn groups(lines: &[Value]) -> Vec<Vec<String>> {
    lines
        .iter()
        .map(|g| {
            let mut names: Vec<String> = g["files"].as_array().unwrap().iter().map(name).collect();
            names.sort();
            names
        })
        .collect()
}

#[test]
fn edited_copies_come_back_as_groups_with_their_keeper() {
    let dir = folder_of_copies();
    let cache = tempfile::tempdir().unwrap();
    let out = duplicates(dir.path(), cache.path(), &["--json"]);
    let lines: Vec<Value> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(
        groups(&lines),
        vec![
            vec!["Tiger mirrored.png", "Tiger small.jpg", "Tiger.jpg"],
            vec!["bird crop.jpg", "bird01.jpg"],
            vec!["elephant dark.jpg", "elephant.jpg"],
        ],
        "largest first, then in folder order of the keeper"
    );
    for (number, group) in lines.iter().enumerate() {
        assert_eq!(group["group"], number + 1);
        let files = group["files"].as_array().unwrap();
        let keepers: Vec<&Value> = files.iter().filter(|f| f["keep"] == true).collect();
        assert_eq!(keepers.len(), 1, "one keeper per group");
        assert_eq!(files[0]["keep"], true, "the keeper comes first");
        assert_eq!(files[0]["score"], 1.0);
        for file in files {
            let score = file["score"].as_f64().unwrap();
            assert!((0.8..=1.0).contains(&score), "{file}");
            assert!(file["width"].as_u64().unwrap() > 0 && file["bytes"].as_u64().unwrap() > 0);
        }
    }
    // Same pixels as Tiger.jpg, and the PNG is the larger file: the rule keeps it.
    assert_eq!(name(&lines[0]["files"][0]), "Tiger mirrored.png");
    // The full-size originals beat their smaller or cropped copies.
    assert_eq!(name(&lines[1]["files"][0]), "bird01.jpg");
    // The darker copy has the same pixels; the larger file is kept.
    let elephant_bytes: Vec<u64> = lines[2]["files"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["bytes"].as_u64().unwrap())
        .collect();
    assert!(elephant_bytes[0] >= elephant_bytes[1]);
}

#[test]
fn text_output_names_every_group_and_a_looser_level_groups_more() {
    let dir = folder_of_copies();
    let cache = tempfile::tempdir().unwrap();
    let text =
        String::from_utf8_lossy(&duplicates(dir.path(), cache.path(), &[]).stdout).into_owned();
    assert!(
        text.starts_with("3 groups of look-alikes (7 of 12 images)"),
        "{text}"
    );
    assert_eq!(text.matches("keep").count(), 3, "{text}");
    assert!(text.contains("Tiger small.jpg") && text.contains("bird crop.jpg"));
    let subject = duplicates(dir.path(), cache.path(), &["--level", "subject", "--json"]);
    let grouped: usize = String::from_utf8_lossy(&subject.stdout)
        .lines()
        .map(|l| {
            serde_json::from_str::<Value>(l).unwrap()["files"]
                .as_array()
                .unwrap()
                .len()
        })
        .sum();
    assert!(
        grouped > 7,
        "the same subject takes in more pictures: {grouped}"
    );
    // A threshold above every copy's score leaves nothing grouped, and prints no group.
    let strict = duplicates(
        dir.path(),
        cache.path(),
        &["--threshold", "0.999", "--json"],
    );
    assert_eq!(String::from_utf8_lossy(&strict.stdout).lines().count(), 0);
}

#[test]
fn a_threshold_outside_the_cosine_range_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_lookalike"))
        .args(["duplicates", "--threshold", "1.5"])
        .arg(dir.path())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("between -1 and 1"));
}
