//! Names from outside shown to the user: file names found on disk and paths read back from an
//! index (which anyone who can write a shared database chooses). Control characters are
//! escaped, so that a name cannot move the cursor, recolour the terminal or forge a line of
//! output; everything else is shown as it is, names that are not UTF-8 with replacement
//! characters.

use std::fmt;
use std::path::Path;

/// `text` with its control characters (line breaks, escape, delete, ...) written as escapes
/// such as `\n` and `\u{1b}`.
pub fn escaped(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c.is_control() {
            true => out.extend(c.escape_default()),
            false => out.push(c),
        }
    }
    out
}

/// A path fit to print on a terminal: see the module's doc.
#[derive(Debug, Clone, Copy)]
pub struct ShownPath<'a>(pub &'a Path);

/// `path` fit to print on a terminal.
pub fn shown_path(path: &Path) -> ShownPath<'_> {
    ShownPath(path)
}

impl fmt::Display for ShownPath<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&escaped(&self.0.to_string_lossy()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn control_characters_are_escaped_and_the_rest_kept() {
        let name = Path::new("/photos/été\n0.9999  /etc/passwd\u{1b}[2J\u{7f}.jpg");
        assert_eq!(
            shown_path(name).to_string(),
            "/photos/été\\n0.9999  /etc/passwd\\u{1b}[2J\\u{7f}.jpg"
        );
    }
}
