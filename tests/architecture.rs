//! The layering rules of ARCHITECTURE.md, checked on the source so that they stay true: the
//! window toolkit only in `src/gui/`, the command-line crates only in the binary, no user
//! interface in the engine, models that know no files, and matrix products that import each
//! other in no circle.

use std::path::{Path, PathBuf};

/// Every `.rs` file under `src/`, with its path relative to `src/` (forward slashes).
fn sources() -> Vec<(String, String)> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    let mut folders = vec![root.clone()];
    while let Some(folder) = folders.pop() {
        for entry in std::fs::read_dir(&folder).unwrap() {
            let path: PathBuf = entry.unwrap().path();
            if path.is_dir() {
                folders.push(path);
            } else if path.extension().is_some_and(|e| e == "rs") {
                let relative = path.strip_prefix(&root).unwrap().to_string_lossy();
                let text = std::fs::read_to_string(&path).unwrap();
                files.push((relative.replace('\\', "/"), text));
            }
        }
    }
    assert!(files.len() > 20, "the source tree was found");
    files
}

/// Whether a line of code (not a comment) names `name` as a path or crate: `name::` or
/// `use name`.
fn names(code: &str, name: &str) -> bool {
    let line = code.trim_start();
    if line.starts_with("//") {
        return false;
    }
    let words = |s: &str| -> bool {
        s.match_indices(name).any(|(at, _)| {
            let before = s[..at].chars().next_back();
            let after = &s[at + name.len()..];
            let starts_word = before.is_none_or(|c| !(c.is_alphanumeric() || c == '_'));
            starts_word && (after.starts_with("::") || after.starts_with(';'))
        })
    };
    words(line)
}

/// Files outside `allowed` that mention one of `crates`, as "file:line: text".
fn offenders(crates: &[&str], allowed: impl Fn(&str) -> bool) -> Vec<String> {
    let mut found = Vec::new();
    for (file, text) in sources() {
        if allowed(&file) {
            continue;
        }
        for (n, line) in text.lines().enumerate() {
            if crates.iter().any(|c| names(line, c)) {
                found.push(format!("src/{file}:{}: {}", n + 1, line.trim()));
            }
        }
    }
    found
}

#[test]
fn the_window_toolkit_is_used_only_in_the_gui_module() {
    let found = offenders(&["egui", "eframe", "egui_extras", "rfd"], |f| {
        f.starts_with("gui/")
    });
    assert!(found.is_empty(), "egui/eframe outside src/gui/: {found:#?}");
}

#[test]
fn command_line_crates_stay_in_the_binary() {
    let found = offenders(&["clap", "anyhow", "indicatif"], |f| {
        f.starts_with("cli/") || f == "main.rs"
    });
    assert!(
        found.is_empty(),
        "the library uses binary-only crates: {found:#?}"
    );
}

#[test]
fn the_engine_knows_no_user_interface() {
    let found = offenders(&["gui", "cli"], |f| {
        f.starts_with("gui/") || f.starts_with("cli/") || f == "main.rs" || f == "lib.rs"
    });
    assert!(
        found.is_empty(),
        "the engine reaches into a front end: {found:#?}"
    );
}

#[test]
fn models_know_no_files() {
    let models = [
        "model/lite0.rs",
        "model/vgg16.rs",
        "model/winograd.rs",
        "model/bf16.rs",
        "model/packed_f32.rs",
        "model/tile.rs",
    ];
    let mut kernels = 0;
    for (file, text) in sources() {
        let is_kernel = file.starts_with("model/kernels/");
        kernels += is_kernel as usize;
        if !is_kernel && !models.contains(&file.as_str()) {
            continue;
        }
        for (n, line) in text.lines().enumerate() {
            let code = line.trim_start();
            let touches_files = ["std::fs", "std::env", "Path", "MmapedSafetensors"]
                .iter()
                .any(|word| code.contains(word));
            assert!(
                code.starts_with("//") || !touches_files,
                "src/{file}:{}: a model reaches for files: {}",
                n + 1,
                line.trim()
            );
        }
    }
    assert!(kernels >= 6, "the kernels' files were found");
}

/// `kernels` uses the bf16 and packed f32 products, and all three end their sums with what
/// `tile` has; `tile` and the two products name no other of them, so none imports another in
/// a circle.
#[test]
fn the_matrix_products_import_each_other_in_no_circle() {
    let rules: [(&str, &[&str]); 3] = [
        ("model/tile.rs", &["kernels", "bf16", "packed_f32"]),
        ("model/bf16.rs", &["kernels", "packed_f32"]),
        ("model/packed_f32.rs", &["kernels", "bf16"]),
    ];
    let files = sources();
    for (file, forbidden) in rules {
        let (_, text) = files
            .iter()
            .find(|(f, _)| f == file)
            .unwrap_or_else(|| panic!("src/{file} was found"));
        for (n, line) in text.lines().enumerate() {
            let named = forbidden.iter().find(|m| names(line, m));
            assert!(
                named.is_none(),
                "src/{file}:{}: names {}, which may not be imported here: {}",
                n + 1,
                named.unwrap_or(&""),
                line.trim()
            );
        }
    }
}

#[test]
fn the_checker_sees_what_it_looks_for() {
    assert!(names("use eframe::egui;", "eframe"));
    assert!(names("    egui::Panel::top(\"x\")", "egui"));
    assert!(names("use anyhow;", "anyhow"));
    assert!(!names("// egui::Panel in a comment", "egui"));
    assert!(!names("let my_egui::x = 1;", "egui"));
    assert!(!names("fn gui_thing() {}", "gui"));
}
