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

fn photo(name: &str) -> image::RgbImage {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data/photos")
        .join(name);
    image::open(path).unwrap().to_rgb8()
}

fn save(dir: &Path, name: &str, picture: &image::RgbImage) {
    picture.save(dir.join(name)).unwrap();
}

/// A photo with three copies that other people made (a quarter turn without its EXIF tag, a
/// crop to about half with a caption band, the picture in a screenshot), two shots of another
/// place framed a step apart, and two unrelated photos.
fn folder_of_hard_copies() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let mountain = photo("mountain.jpg");
    let (w, h) = mountain.dimensions();
    save(d, "mountain.jpg", &mountain);
    save(d, "mountain turned.jpg", &imageops::rotate90(&mountain));
    let mut half = imageops::crop_imm(&mountain, w / 4, h / 5, w * 7 / 10, h * 7 / 10).to_image();
    let band = image::RgbImage::from_pixel(half.width(), half.height() / 7, image::Rgb([250; 3]));
    let mut captioned = image::RgbImage::new(half.width(), half.height() + band.height());
    imageops::overlay(&mut captioned, &band, 0, 0);
    imageops::overlay(&mut captioned, &half, 0, i64::from(band.height()));
    half = captioned;
    save(d, "mountain crop with caption.jpg", &half);
    let mut screen = image::RgbImage::from_pixel(w * 3 / 2, h * 3 / 2, image::Rgb([236; 3]));
    imageops::overlay(&mut screen, &mountain, i64::from(w / 5), i64::from(h / 3));
    save(d, "mountain screenshot.png", &screen);
    let peaks = photo("peaks.jpg");
    let (pw, ph) = peaks.dimensions();
    let shot = |x: u32, y: u32| imageops::crop_imm(&peaks, x, y, pw * 4 / 5, ph * 4 / 5).to_image();
    save(d, "peaks first shot.jpg", &shot(0, 0));
    save(d, "peaks second shot.jpg", &shot(pw / 5, ph / 6));
    save(d, "life.jpg", &photo("life.jpg"));
    save(d, "friends.jpg", &photo("friends.jpg"));
    dir
}

fn json_lines(out: &Output) -> Vec<Value> {
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

#[test]
fn copies_made_by_other_hands_are_one_photo_and_other_shots_are_not() {
    let dir = folder_of_hard_copies();
    let cache = tempfile::tempdir().unwrap();
    let first = duplicates(dir.path(), cache.path(), &["--json"]);
    let expected = vec![vec![
        "mountain crop with caption.jpg",
        "mountain screenshot.png",
        "mountain turned.jpg",
        "mountain.jpg",
    ]];
    assert_eq!(groups(&json_lines(&first)), expected);
    // The keypoints found are kept in the index, tied to their file's content: the second
    // run reads them instead of making them again, and answers the same.
    let kept: i64 = rusqlite::Connection::open(cache.path().join("index.sqlite3"))
        .unwrap()
        .query_row("SELECT count(*) FROM copy_features", [], |r| r.get(0))
        .unwrap();
    assert!(kept >= 4, "{kept} pictures' keypoints kept");
    let second = duplicates(dir.path(), cache.path(), &["--json"]);
    assert_eq!(groups(&json_lines(&second)), expected);
    // Every verified pair says why: the two shots share keypoints, but neither frame lies
    // inside the other.
    let pairs = json_lines(&duplicates(dir.path(), cache.path(), &["--pairs"]));
    let shots = pairs
        .iter()
        .find(|p| {
            let names: Vec<String> = p["files"]
                .as_array()
                .unwrap()
                .iter()
                .map(|f| {
                    Path::new(f.as_str().unwrap())
                        .file_name()
                        .unwrap()
                        .to_string_lossy()
                        .into_owned()
                })
                .collect();
            names.iter().all(|n| n.starts_with("peaks"))
        })
        .expect("the two shots are look-alikes, so their pair is verified");
    assert_eq!(shots["copy"], false, "{shots}");
    assert!(shots["inliers"].as_u64().unwrap() >= 12, "{shots}");
    assert!(pairs.iter().filter(|p| p["copy"] == true).count() >= 3);
}

#[test]
fn keypoints_kept_for_a_file_are_not_used_once_it_changes() {
    let dir = folder_of_hard_copies();
    let cache = tempfile::tempdir().unwrap();
    duplicates(dir.path(), cache.path(), &["--json"]);
    // The screenshot is replaced by an unrelated picture under the same name: its old
    // keypoints must not make it a copy any more.
    let elephant = image::open(seed("elephant.jpg")).unwrap().to_rgb8();
    save(dir.path(), "mountain screenshot.png", &elephant);
    let out = duplicates(dir.path(), cache.path(), &["--json"]);
    let grouped = groups(&json_lines(&out));
    assert!(
        grouped
            .iter()
            .flatten()
            .all(|n| n != "mountain screenshot.png"),
        "{grouped:?}"
    );
}
