//! Walks a folder into the list of image files to work on.
//!
//! Images are recognised by their leading bytes, not by their names, so a PNG called `.jpg`
//! is found and a text file called `.png` is reported rather than fed to a decoder. Symlink
//! loops, unreadable entries and files that vanish are reported and skipped; they never stop
//! the walk.
//!
//! One file on disk is one picture, however many paths reach it: a folder linked into the
//! tree, a linked file or a hard link would otherwise show the same file twice, as a perfect
//! duplicate of itself, and removing the "copy" would remove the original. The walk keeps a
//! file under the first path it meets it by, and each entry carries the file's identity
//! (device and inode) so that the trash can check, just before a move, that it still is the
//! file the user saw.

use std::collections::HashSet;
use std::fs::{File, Metadata};
use std::io::Read;
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use crate::decode::sniff_format;
use crate::error::{Error, FileErrorKind};

/// Extensions that promise an image. A file with one of these whose content is not an image
/// is reported as a problem; other non-image files (notes, sidecars) are quietly passed over.
const IMAGE_EXTENSIONS: &[&str] = &[
    "jpg", "jpeg", "jpe", "jfif", "png", "gif", "webp", "bmp", "dib", "tif", "tiff", "heic",
    "heif", "hif", "avif", "jxl", "dng", "cr2", "cr3", "nef", "arw", "raf", "orf", "rw2",
];

/// One image file found by a scan.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImageEntry {
    pub path: PathBuf,
    pub size: u64,
    pub modified: Option<SystemTime>,
    /// Which file on disk this is, where the platform says (device and inode on Unix).
    pub file_id: Option<FileId>,
}

impl ImageEntry {
    /// An entry for `path` as `meta` describes it.
    pub fn from_metadata(path: PathBuf, meta: &Metadata) -> Self {
        ImageEntry {
            path,
            size: meta.len(),
            modified: meta.modified().ok(),
            file_id: FileId::of(meta),
        }
    }
}

/// A file's identity on disk, the same through every path (links included) that reaches it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct FileId {
    pub device: u64,
    pub inode: u64,
}

impl FileId {
    /// The identity of the file `meta` describes.
    #[cfg(unix)]
    pub fn of(meta: &Metadata) -> Option<FileId> {
        use std::os::unix::fs::MetadataExt;
        Some(FileId {
            device: meta.dev(),
            inode: meta.ino(),
        })
    }

    /// Stable Rust offers no file identity here; callers fall back to canonical paths, which
    /// tell linked folders and files apart but not hard links.
    #[cfg(not(unix))]
    pub fn of(_meta: &Metadata) -> Option<FileId> {
        None
    }
}

/// How the walk recognises a file it has already met.
#[derive(PartialEq, Eq, Hash)]
enum SeenKey {
    Id(FileId),
    Canonical(PathBuf),
}

impl SeenKey {
    fn of(entry: &ImageEntry) -> SeenKey {
        match entry.file_id {
            Some(id) => SeenKey::Id(id),
            None => SeenKey::Canonical(
                std::fs::canonicalize(&entry.path).unwrap_or_else(|_| entry.path.clone()),
            ),
        }
    }
}

/// Everything a scan found: the images, in path order, and the entries it could not use.
#[derive(Debug, Default)]
pub struct ScanResult {
    pub images: Vec<ImageEntry>,
    pub problems: Vec<Error>,
}

/// Lists the images under `root`, recursively, following symlinks but never looping.
///
/// Fails only when `root` itself cannot be read.
pub fn scan_folder(root: &Path) -> Result<ScanResult, Error> {
    let meta = std::fs::metadata(root).map_err(|e| Error::Folder {
        path: root.to_path_buf(),
        reason: e.to_string(),
    })?;
    if !meta.is_dir() {
        return Err(Error::Folder {
            path: root.to_path_buf(),
            reason: "not a folder".into(),
        });
    }
    std::fs::read_dir(root).map_err(|e| Error::Folder {
        path: root.to_path_buf(),
        reason: e.to_string(),
    })?;
    let mut result = ScanResult::default();
    let mut seen = HashSet::new();
    let walker = walkdir::WalkDir::new(root)
        .follow_links(true)
        .sort_by_file_name();
    for entry in walker {
        match entry {
            Ok(entry) if entry.file_type().is_file() => match classify_file(entry.path()) {
                // A file met again through another path stays under its first one.
                Ok(Some(image)) if seen.insert(SeenKey::of(&image)) => result.images.push(image),
                Ok(_) => {}
                Err(problem) => result.problems.push(problem),
            },
            Ok(_) => {}
            Err(e) => {
                let path = e.path().unwrap_or(root).to_path_buf();
                let (kind, reason) = match e.loop_ancestor() {
                    Some(ancestor) => (
                        FileErrorKind::Unusable,
                        format!("symlink loop back to {}", ancestor.display()),
                    ),
                    None => (
                        FileErrorKind::Unreadable,
                        e.io_error()
                            .map_or_else(|| e.to_string(), |io| io.to_string()),
                    ),
                };
                result.problems.push(Error::file(path, kind, reason));
            }
        }
    }
    Ok(result)
}

/// Whether one file is an image we read, judged by its content.
fn classify_file(path: &Path) -> Result<Option<ImageEntry>, Error> {
    let promises_image = has_image_extension(path);
    let mut head = [0u8; 64];
    let read = File::open(path).and_then(|mut f| read_up_to(&mut f, &mut head));
    let head_len = match read {
        Ok(n) => n,
        Err(e) if promises_image => return Err(Error::unreadable(path, "cannot read", e)),
        Err(_) => return Ok(None),
    };
    if sniff_format(&head[..head_len]).is_none() {
        return match (promises_image, head_len) {
            (false, _) => Ok(None),
            (true, 0) => Err(Error::unusable(path, "empty file")),
            (true, _) => Err(Error::unusable(
                path,
                "not an image: the content matches no supported format",
            )),
        };
    }
    let meta = std::fs::metadata(path).map_err(|e| Error::unreadable(path, "cannot read", e))?;
    Ok(Some(ImageEntry::from_metadata(path.to_path_buf(), &meta)))
}

fn has_image_extension(path: &Path) -> bool {
    path.extension().and_then(|e| e.to_str()).is_some_and(|e| {
        IMAGE_EXTENSIONS
            .iter()
            .any(|known| known.eq_ignore_ascii_case(e))
    })
}

/// Fills as much of `buf` as the file has.
fn read_up_to(file: &mut File, buf: &mut [u8]) -> std::io::Result<usize> {
    let mut filled = 0;
    while filled < buf.len() {
        match file.read(&mut buf[filled..])? {
            0 => break,
            n => filled += n,
        }
    }
    Ok(filled)
}
