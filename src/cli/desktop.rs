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

/// Removes what `install` wrote, and only that: a file whose content is not what `install`
/// would write now (an entry the user edited, an icon from another version or put there by
/// hand) is left in place, and the user is told so. Says so too when there was nothing at all.
pub fn uninstall() -> anyhow::Result<i32> {
    let data = data_home()?;
    let program = std::env::current_exe().context("cannot tell where this program is")?;
    let mut ours = vec![(entry_path(&data), entry_for(&program).into_bytes())];
    ours.extend(
        ICONS
            .iter()
            .map(|&(side, png)| (icon_path(&data, side), png.to_vec())),
    );
    let mut found = 0;
    for (path, written) in &ours {
        match remove_if_ours(path, written)? {
            Removal::Absent => continue,
            Removal::Removed => println!("removed {}", path.display()),
            Removal::Kept => println!(
                "left {} in place: it is not what --install-desktop wrote (edited, or from \
                 another version); remove it yourself if you do not want it",
                path.display()
            ),
        }
        found += 1;
    }
    if found == 0 {
        println!("nothing to remove in {}", data.display());
    }
    refresh_caches(&data);
    Ok(0)
}

/// What [`remove_if_ours`] did with one file.
#[derive(Debug, PartialEq, Eq)]
enum Removal {
    Absent,
    Removed,
    Kept,
}

/// Removes `path` if it holds exactly `written`; a file that cannot be read is not ours to
/// judge, so it is an error that names it.
fn remove_if_ours(path: &Path, written: &[u8]) -> anyhow::Result<Removal> {
    let content = match std::fs::read(path) {
        Ok(content) => content,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Removal::Absent),
        Err(e) => return Err(e).with_context(|| format!("cannot read {}", path.display())),
    };
    if content != written {
        return Ok(Removal::Kept);
    }
    std::fs::remove_file(path).with_context(|| format!("cannot remove {}", path.display()))?;
    Ok(Removal::Removed)
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
            "TryExec=lookalike" => format!("TryExec={}", escaped(&shown)),
            other => other.to_string(),
        })
        .collect::<Vec<_>>()
        .join("\n")
        + "\n"
}

/// A program path as the desktop entry spec wants it in `Exec`: in double quotes, with `"`,
/// `` ` ``, `$` and `\` escaped, each backslash doubled once more for the string value, `%`
/// written `%%` (a lone one would start a field code), and newline, tab and carriage return
/// in the string value's escapes (a raw newline would end the line, and the entry with it).
fn quoted(program: &str) -> String {
    let mut out = String::from("\"");
    for c in program.chars() {
        match c {
            '"' | '`' | '$' => out.push_str(&format!("\\\\{c}")),
            '\\' => out.push_str("\\\\\\\\"),
            '%' => out.push_str("%%"),
            c => push_escaped(&mut out, c),
        }
    }
    out.push('"');
    out
}

/// A program path as a plain string value (`TryExec`), which is not quoted like `Exec`: only
/// the string escapes apply.
fn escaped(program: &str) -> String {
    let mut out = String::new();
    for c in program.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            // A leading space would be taken off the value; no absolute path starts with one,
            // but a relative one could.
            ' ' if out.is_empty() => out.push_str("\\s"),
            c => push_escaped(&mut out, c),
        }
    }
    out
}

/// `c`, with the string value's escapes for the control characters that have one.
fn push_escaped(out: &mut String, c: char) {
    match c {
        '\n' => out.push_str("\\n"),
        '\t' => out.push_str("\\t"),
        '\r' => out.push_str("\\r"),
        c => out.push(c),
    }
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

    /// A `%` in the path is a literal one in `Exec` (`%%`), not a field code; a backslash and
    /// a newline are escaped in both keys, so the entry keeps its lines and `TryExec` names
    /// the real file.
    #[test]
    fn odd_characters_in_the_program_path_are_escaped_in_exec_and_tryexec() {
        let entry = entry_for(Path::new("/opt/100%/a\\b\nc/lookalike"));
        let lines: Vec<&str> = entry.lines().collect();
        assert_eq!(lines.len(), ENTRY.lines().count(), "{entry}");
        assert!(
            lines.contains(&"Exec=\"/opt/100%%/a\\\\\\\\b\\nc/lookalike\" %f"),
            "{entry}"
        );
        assert!(
            lines.contains(&"TryExec=/opt/100%/a\\\\b\\nc/lookalike"),
            "{entry}"
        );
        assert_eq!(escaped(" x\tz\r"), "\\sx\\tz\\r");
    }

    /// Uninstalling takes only a file that holds what install wrote: an edited one stays.
    #[test]
    fn only_a_file_with_what_install_wrote_is_removed() {
        let dir = tempfile::tempdir().unwrap();
        let (ours, edited) = (dir.path().join("ours"), dir.path().join("edited"));
        std::fs::write(&ours, b"written").unwrap();
        std::fs::write(&edited, b"written, then edited").unwrap();
        assert_eq!(remove_if_ours(&ours, b"written").unwrap(), Removal::Removed);
        assert_eq!(remove_if_ours(&edited, b"written").unwrap(), Removal::Kept);
        assert_eq!(remove_if_ours(&ours, b"written").unwrap(), Removal::Absent);
        assert!(!ours.exists());
        assert_eq!(std::fs::read(&edited).unwrap(), b"written, then edited");
    }
}
