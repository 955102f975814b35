//! `lookalike --install-desktop` and `--uninstall-desktop`: for people who installed with
//! `cargo install`, the launcher entry and icons that a `.deb` would put in place, written into
//! their own XDG data folder (`$XDG_DATA_HOME`, usually `~/.local/share`).

use std::path::{Path, PathBuf};

use anyhow::Context;

/// The entry's file name: the AppStream id, so software centres can match the two.
const ENTRY_NAME: &str = "io.github.lookalike.desktop";
const ENTRY: &str = include_str!("../../assets/io.github.lookalike.desktop");
/// The icon in the hicolor sizes launchers ask for.
const ICONS: [(u32, &[u8]); 3] = [
    (48, include_bytes!("../../assets/icons/lookalike-48.png")),
    (128, include_bytes!("../../assets/icons/lookalike-128.png")),
    (256, include_bytes!("../../assets/icon.png")),
];

/// Writes the entry and the icons; the entry starts this very program.
pub fn install() -> anyhow::Result<i32> {
    let data = data_home()?;
    let program = std::env::current_exe().context("cannot tell where this program is")?;
    let mut written = vec![write(&entry_path(&data), entry_for(&program).as_bytes())?];
    for (side, png) in ICONS {
        written.push(write(&icon_path(&data, side), png)?);
    }
    for path in &written {
        println!("wrote {}", path.display());
    }
    refresh_caches(&data);
    println!("lookalike is in your applications menu, and in \"Open with\" on folders.");
    Ok(0)
}

/// Removes what `install` wrote; says so when there was nothing to remove.
pub fn uninstall() -> anyhow::Result<i32> {
    let data = data_home()?;
    let mut paths = vec![entry_path(&data)];
    paths.extend(ICONS.iter().map(|&(side, _)| icon_path(&data, side)));
    let mut removed = 0;
    for path in paths.iter().filter(|p| p.exists()) {
        std::fs::remove_file(path).with_context(|| format!("cannot remove {}", path.display()))?;
        println!("removed {}", path.display());
        removed += 1;
    }
    if removed == 0 {
        println!("nothing to remove in {}", data.display());
    }
    refresh_caches(&data);
    Ok(0)
}

fn data_home() -> anyhow::Result<PathBuf> {
    if !cfg!(all(unix, not(target_os = "macos"))) {
        anyhow::bail!("--install-desktop is for Linux and other freedesktop systems");
    }
    let dirs = directories::BaseDirs::new().context("cannot find your home folder")?;
    Ok(dirs.data_dir().to_path_buf())
}

fn entry_path(data: &Path) -> PathBuf {
    data.join("applications").join(ENTRY_NAME)
}

fn icon_path(data: &Path, side: u32) -> PathBuf {
    data.join(format!("icons/hicolor/{side}x{side}/apps/lookalike.png"))
}

fn write(path: &Path, bytes: &[u8]) -> anyhow::Result<PathBuf> {
    if let Some(folder) = path.parent() {
        std::fs::create_dir_all(folder)
            .with_context(|| format!("cannot create {}", folder.display()))?;
    }
    std::fs::write(path, bytes).with_context(|| format!("cannot write {}", path.display()))?;
    Ok(path.to_path_buf())
}

/// The packaged entry, made to start `program` by its full path: `~/.cargo/bin` is often not
/// on the path a desktop session starts programs with.
fn entry_for(program: &Path) -> String {
    let shown = program.to_string_lossy();
    ENTRY
        .lines()
        .map(|line| match line {
            "Exec=lookalike %f" => format!("Exec={} %f", quoted(&shown)),
            "TryExec=lookalike" => format!("TryExec={shown}"),
            other => other.to_string(),
        })
        .collect::<Vec<_>>()
        .join("\n")
        + "\n"
}

/// A program path as the desktop entry spec wants it in `Exec`: in double quotes, with `"`,
/// `` ` ``, `$` and `\` escaped, and each backslash doubled once more for the string value.
fn quoted(program: &str) -> String {
    let mut out = String::from("\"");
    for c in program.chars() {
        match c {
            '"' | '`' | '$' => out.push_str(&format!("\\\\{c}")),
            '\\' => out.push_str("\\\\\\\\"),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// Lets running launchers see the change at once; they also notice on their own, later.
fn refresh_caches(data: &Path) {
    for (tool, arg) in [
        ("update-desktop-database", data.join("applications")),
        ("gtk-update-icon-cache", data.join("icons/hicolor")),
    ] {
        let _ = std::process::Command::new(tool)
            .arg(&arg)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .status();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_entry_starts_this_program_by_its_full_path() {
        let entry = entry_for(Path::new("/home/ann/my apps/lookalike"));
        assert!(
            entry.contains("\nExec=\"/home/ann/my apps/lookalike\" %f\n"),
            "{entry}"
        );
        assert!(
            entry.contains("\nTryExec=/home/ann/my apps/lookalike\n"),
            "{entry}"
        );
        assert!(entry.contains("MimeType=inode/directory;"));
        assert_eq!(quoted("/a$b"), "\"/a\\\\$b\"");
    }
}
