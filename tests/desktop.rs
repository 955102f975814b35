//! `lookalike --install-desktop` writes the launcher entry and icons into the user's XDG data
//! folder, the entry is valid, and `--uninstall-desktop` takes them away again. Also
//! `--version`, which names the model, precision, index and licences.

use std::path::Path;
use std::process::{Command, Output};

fn lookalike(args: &[&str], data_home: &Path) -> Output {
    Command::new(env!("CARGO_BIN_EXE_lookalike"))
        .args(args)
        .env("XDG_DATA_HOME", data_home)
        .output()
        .unwrap()
}

fn text(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned() + &String::from_utf8_lossy(&output.stderr)
}

const ICONS: [&str; 3] = [
    "icons/hicolor/48x48/apps/lookalike.png",
    "icons/hicolor/128x128/apps/lookalike.png",
    "icons/hicolor/256x256/apps/lookalike.png",
];

#[test]
fn install_desktop_writes_a_valid_entry_and_icons_and_uninstall_removes_them() {
    let data = tempfile::tempdir().unwrap();
    let installed = lookalike(&["--install-desktop"], data.path());
    assert!(installed.status.success(), "{}", text(&installed));
    let entry_path = data.path().join("applications/io.github.lookalike.desktop");
    let entry = std::fs::read_to_string(&entry_path).unwrap();
    let program = env!("CARGO_BIN_EXE_lookalike");
    assert!(entry.contains(&format!("Exec=\"{program}\" %f")), "{entry}");
    assert!(entry.contains("MimeType=inode/directory;"), "{entry}");
    for icon in ICONS {
        let png = image::open(data.path().join(icon)).unwrap();
        let side: u32 = icon
            .split('/')
            .nth(2)
            .unwrap()
            .split('x')
            .next()
            .unwrap()
            .parse()
            .unwrap();
        assert_eq!((png.width(), png.height()), (side, side), "{icon}");
    }
    match Command::new("desktop-file-validate")
        .arg(&entry_path)
        .output()
    {
        Ok(checked) => assert!(
            checked.status.success() && checked.stdout.is_empty(),
            "desktop-file-validate: {}",
            text(&checked)
        ),
        Err(_) => eprintln!("desktop-file-validate is not installed; only the files were checked"),
    }

    let removed = lookalike(&["--uninstall-desktop"], data.path());
    assert!(removed.status.success(), "{}", text(&removed));
    assert!(!entry_path.exists());
    assert!(ICONS.iter().all(|icon| !data.path().join(icon).exists()));
    let again = lookalike(&["--uninstall-desktop"], data.path());
    assert!(
        text(&again).contains("nothing to remove"),
        "{}",
        text(&again)
    );
}

#[test]
fn version_names_the_model_precision_index_and_licences() {
    let data = tempfile::tempdir().unwrap();
    let output = lookalike(&["--version"], data.path());
    assert!(output.status.success());
    let shown = text(&output);
    assert!(
        shown.starts_with(&format!("lookalike {}\n", env!("CARGO_PKG_VERSION"))),
        "{shown}"
    );
    for needed in [
        "EfficientNet-Lite0",
        "Apache-2.0",
        "Precision",
        "f32",
        "Index",
        "MIT OR Apache-2.0",
    ] {
        assert!(shown.contains(needed), "{needed} missing from:\n{shown}");
    }
}

#[test]
fn uninstall_leaves_an_entry_the_user_edited_and_says_so() {
    let data = tempfile::tempdir().unwrap();
    let installed = lookalike(&["--install-desktop"], data.path());
    assert!(installed.status.success(), "{}", text(&installed));
    let entry_path = data.path().join("applications/io.github.lookalike.desktop");
    let edited = std::fs::read_to_string(&entry_path).unwrap() + "X-Mine=kept\n";
    std::fs::write(&entry_path, &edited).unwrap();
    let removed = lookalike(&["--uninstall-desktop"], data.path());
    assert!(removed.status.success(), "{}", text(&removed));
    assert_eq!(std::fs::read_to_string(&entry_path).unwrap(), edited);
    assert!(
        text(&removed).contains(&format!("left {} in place", entry_path.display())),
        "{}",
        text(&removed)
    );
    assert!(ICONS.iter().all(|icon| !data.path().join(icon).exists()));
}
