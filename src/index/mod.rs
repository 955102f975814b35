//! The index: what lookalike remembers about images it has seen, so that a folder opens without
//! decoding what has not changed.
//!
//! Everything the pipeline, `similar`, the app and `cache` need from an index is the [`Store`]
//! trait. Two backends implement it:
//! - [`sqlite`]: one SQLite file in the user's cache folder, the embedded default;
//! - [`postgres`]: a PostgreSQL database with pgvector, shared by several machines and several
//!   indexers at once (with the `postgres` feature).
//!
//! Both key an image by its canonical path as far as the pipeline can tell; the PostgreSQL
//! backend stores it as a library name and a path relative to the library's folder, so that
//! machines that mount one share at different places share its vectors.

#[cfg(feature = "postgres")]
pub mod postgres;
pub mod sqlite;

use std::io::Read;
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use crate::decode::Thumbnail;
use crate::error::{Error, Result};
use crate::model::labels::Prediction;
use crate::similarity::rank;

pub use sqlite::{clear, default_cache_dir, SqliteIndex};

/// What the index knows of one file.
#[derive(Debug, Clone, PartialEq)]
pub struct FileRow {
    pub id: i64,
    /// The file's canonical path on this machine.
    pub path: PathBuf,
    pub size: u64,
    pub mtime_ns: i64,
    pub fingerprint: Vec<u8>,
    pub error: Option<String>,
}

/// An image as the index can serve it without touching the original.
#[derive(Debug, Clone)]
pub struct CachedImage {
    pub file_id: i64,
    pub path: PathBuf,
    pub width: u32,
    pub height: u32,
    /// The index keeps a thumbnail the app can show; [`Store::thumbnails`] reads it. Serving
    /// an image never reads the thumbnail's bytes: a large library is served without them.
    pub has_thumbnail: bool,
    pub embedding: Vec<f32>,
    pub top: Vec<Prediction>,
}

/// A summary for `lookalike cache info`.
#[derive(Debug, Clone, serde::Serialize)]
pub struct CacheInfo {
    /// Where the index is: a file path, or a database URL without its password.
    pub location: String,
    pub bytes: u64,
    pub files: u64,
    pub failed: u64,
    pub embeddings_by_model: Vec<(String, u64)>,
}

/// What to store about one file after trying to analyse it.
pub struct FileRecord<'a> {
    /// The canonical path.
    pub path: &'a Path,
    pub size: u64,
    pub mtime_ns: i64,
    pub fingerprint: &'a [u8],
    pub size_px: Option<(u32, u32)>,
    pub thumbnail: Option<&'a Thumbnail>,
    pub error: Option<&'a str>,
    /// The file's content differs from what the index had: drop its vectors for all models.
    pub content_changed: bool,
}

/// One file of a batch to store, with its vector and labels when it could be analysed.
pub struct Stored<'a> {
    pub file: FileRecord<'a>,
    pub embedding: Option<(&'a [f32], &'a [Prediction])>,
}

/// Which model revision vectors belong to, and how long they are: a stored vector of another
/// length is an index error, never scored against a query of this model.
#[derive(Debug, Clone, Copy)]
pub struct ModelStamp<'a> {
    pub model: &'a str,
    pub revision: &'a str,
    /// The number of values in each of this model's vectors.
    pub dim: usize,
}

/// Checks what the index read back for one image before anyone scores it: its vector must
/// have the model's length (`values`; `usize::MAX` for bytes that are no whole number of
/// values). `index` names the index (a file, or a database without its password), `path` the
/// image.
pub(crate) fn check_stored(
    index: &str,
    path: &Path,
    model: ModelStamp<'_>,
    values: usize,
) -> Result<()> {
    if values == model.dim {
        return Ok(());
    }
    let found = match values {
        usize::MAX => "a length that is not a whole number of values".to_string(),
        n => format!("{n} values"),
    };
    Err(Error::Index(format!(
        "{index}: the stored {} vector of {} has {found}, not {}; the index is damaged \
         (clearing it rebuilds it)",
        model.model,
        path.display(),
        model.dim
    )))
}

/// Labels as the index stored them (JSON); unreadable ones are an index error that names the
/// index and the image, never an empty list.
pub(crate) fn stored_labels<T: serde::de::DeserializeOwned>(
    index: &str,
    path: &Path,
    parsed: serde_json::Result<T>,
) -> Result<T> {
    parsed.map_err(|e| {
        Error::Index(format!(
            "{index}: the stored labels of {} cannot be read ({e}); the index is damaged \
             (clearing it rebuilds it)",
            path.display()
        ))
    })
}

/// A file an indexer wants to embed, as it asks for it.
pub struct ClaimRequest<'a> {
    pub path: &'a Path,
    pub size: u64,
    pub fingerprint: &'a [u8],
}

/// The answer to a claim.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Claim {
    /// This indexer embeds the file, and must release it once stored.
    Granted,
    /// Another indexer is embedding it right now.
    Busy,
    /// Another indexer has stored it since this one planned: serve it from the index.
    Done,
}

/// Where an index's own history stood when a scan began: the database's clock, or the last
/// row id SQLite had given. A run prunes only rows stored before it, so that rows another
/// indexer stored while this one scanned (files this scan could not have seen) survive.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ScanStart(pub i64);

/// One match of a search run inside the index.
#[derive(Debug, Clone, PartialEq)]
pub struct Match {
    pub path: PathBuf,
    pub score: f32,
}

/// What the pipeline, `similar`, the app and `cache` need from an index. Paths are canonical
/// paths on this machine; `dir` arguments are canonical folders.
pub trait Store: Send {
    /// Where the index is, fit to show (a database URL never includes its password).
    fn location(&self) -> String;
    /// Things the user should hear about, such as a damaged file that was moved aside.
    fn take_warnings(&mut self) -> Vec<String>;
    /// The row for a canonical path.
    fn lookup(&mut self, path: &Path) -> Result<Option<FileRow>>;
    /// A row with this fingerprint whose file is gone from its old place: a moved image.
    fn find_moved(&mut self, fingerprint: &[u8], size: u64) -> Result<Option<FileRow>>;

    /// [`Store::lookup`] for many paths at once, in their order: a backend answers them in
    /// a few queries rather than one a file, which is what opening a large library costs.
    fn lookup_many(&mut self, paths: &[&Path]) -> Result<Vec<Option<FileRow>>> {
        paths.iter().map(|p| self.lookup(p)).collect()
    }

    /// The thumbnails kept for these canonical paths, in their order (`None` for a path the
    /// index does not hold, or holds without one): what the app shows, read again on demand
    /// rather than held for a whole library. A backend that keeps none answers `None`.
    fn thumbnails(&mut self, paths: &[&Path]) -> Result<Vec<Option<Thumbnail>>> {
        Ok(vec![None; paths.len()])
    }

    /// [`Store::image`] for many rows at once, in their order.
    fn images(
        &mut self,
        file_ids: &[i64],
        model: ModelStamp<'_>,
    ) -> Result<Vec<Option<CachedImage>>> {
        file_ids.iter().map(|&id| self.image(id, model)).collect()
    }
    /// The cached analysis of one file, if it has one for this model revision.
    fn image(&mut self, file_id: i64, model: ModelStamp<'_>) -> Result<Option<CachedImage>>;
    /// Every embedded image under `dir` for this model revision, in path order.
    fn images_under(&mut self, dir: &Path, model: ModelStamp<'_>) -> Result<Vec<CachedImage>>;
    /// Records that a file is unchanged in content but has a new place or mtime.
    fn update_location(&mut self, id: i64, path: &Path, size: u64, mtime_ns: i64) -> Result<()>;
    /// Every file under `dir`, indexed or failed.
    fn files_under(&mut self, dir: &Path) -> Result<Vec<FileRow>>;
    /// Stores a batch in one transaction: all of it lands, or none.
    fn store_batch(&mut self, model: ModelStamp<'_>, batch: &[Stored<'_>]) -> Result<()>;
    /// Removes files and their vectors, in one transaction.
    fn delete_files(&mut self, ids: &[i64]) -> Result<()>;
    /// Where the index's history stands now, taken before a scan: see [`ScanStart`].
    fn scan_start(&mut self) -> Result<ScanStart>;
    /// Removes those of `ids` that were stored before `start`, and their vectors, in one
    /// transaction; returns how many went.
    fn prune_files(&mut self, ids: &[i64], start: ScanStart) -> Result<usize>;
    /// Sizes and counts, for `lookalike cache info`.
    fn info(&mut self) -> Result<CacheInfo>;

    /// Forgets the file at `path` and its vectors; false if it was not indexed.
    fn forget(&mut self, path: &Path) -> Result<bool> {
        let Some(row) = self.lookup(path)? else {
            return Ok(false);
        };
        self.delete_files(&[row.id])?;
        Ok(true)
    }

    /// The images under `dir` most like `query` (a unit vector), best first: the `limit` best,
    /// or all. `exact` asks for an exhaustive search where the backend would approximate.
    fn nearest(
        &mut self,
        dir: &Path,
        model: ModelStamp<'_>,
        query: &[f32],
        limit: Option<usize>,
        _exact: bool,
    ) -> Result<Vec<Match>> {
        let images = self.images_under(dir, model)?;
        let ranked = rank(query, images.iter().map(|i| i.embedding.as_slice()));
        Ok(ranked
            .into_iter()
            .take(limit.unwrap_or(usize::MAX))
            .map(|(i, score)| Match {
                path: images[i].path.clone(),
                score,
            })
            .collect())
    }

    /// The copy-matching features kept for these canonical paths (`duplicates::copies`), each
    /// only while its file still holds the content they were made from. A backend that keeps
    /// none answers `None` for each, and the features are made again from the thumbnails.
    fn copy_features(&mut self, paths: &[&Path]) -> Result<Vec<Option<Vec<u8>>>> {
        Ok(vec![None; paths.len()])
    }

    /// Keeps features made for these files (canonical paths), in one transaction; a path the
    /// index does not hold is passed over.
    fn store_copy_features(&mut self, _features: &[(&Path, &[u8])]) -> Result<()> {
        Ok(())
    }

    /// Work that pays off once an indexing run is over, such as building a search index.
    fn tidy(&mut self, _model: ModelStamp<'_>) -> Result<()> {
        Ok(())
    }

    /// Asks to embed these files, so that indexers sharing the index embed each file once.
    /// A backend without claims grants everything.
    fn claim(&mut self, _model: ModelStamp<'_>, files: &[ClaimRequest<'_>]) -> Result<Vec<Claim>> {
        Ok(vec![Claim::Granted; files.len()])
    }
    /// Gives back granted claims, once their files are stored (or given up).
    fn release(&mut self, _paths: &[&Path]) -> Result<()> {
        Ok(())
    }
    /// Waits until no other indexer holds a claim on these files.
    fn wait_for(&mut self, _paths: &[&Path]) -> Result<()> {
        Ok(())
    }
}

/// Where the index lives.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum CacheLocation {
    /// The platform cache folder (e.g. `~/.cache/lookalike` on Linux).
    #[default]
    Default,
    /// A folder the user chose.
    Dir(PathBuf),
    /// A PostgreSQL database shared with other machines.
    #[cfg(feature = "postgres")]
    Database(postgres::Target),
    /// No index: everything is computed afresh.
    Disabled,
}

impl CacheLocation {
    /// The folder of the SQLite index, or None for a database, when disabled, or when no cache
    /// folder exists.
    pub fn dir(&self) -> Option<PathBuf> {
        match self {
            CacheLocation::Default => default_cache_dir(),
            CacheLocation::Dir(dir) => Some(dir.clone()),
            _ => None,
        }
    }

    /// Opens the index for work on `folder`, if there is to be one. For a database, `folder`
    /// is the library's folder on this machine unless the target names another.
    pub fn open(&self, folder: &Path) -> Result<Option<Box<dyn Store>>> {
        #[cfg(feature = "postgres")]
        if let CacheLocation::Database(target) = self {
            let index = postgres::PostgresIndex::open(target, folder)?;
            return Ok(Some(Box::new(index)));
        }
        let _ = folder;
        let index = self.dir().map(|dir| SqliteIndex::open(&dir)).transpose()?;
        Ok(index.map(|i| Box::new(i) as Box<dyn Store>))
    }

    /// Whether the index is a database shared with other machines.
    pub fn is_shared(&self) -> bool {
        match self {
            #[cfg(feature = "postgres")]
            CacheLocation::Database(_) => true,
            _ => false,
        }
    }

    /// Where the index is, fit to show: a folder, or a database URL without its password.
    pub fn describe(&self) -> String {
        match self {
            #[cfg(feature = "postgres")]
            CacheLocation::Database(target) => target.to_string(),
            CacheLocation::Disabled => "off".to_string(),
            _ => self
                .dir()
                .map_or_else(|| "none".to_string(), |d| d.display().to_string()),
        }
    }
}

/// A file's fingerprint: xxh3-128 of its size and its whole content. Whole, because a
/// same-size edit in the middle of a file (common in BMP, TIFF and uncompressed PNG) must not
/// let the file keep the vector of what it was. Reading at several GB/s, this costs about what
/// decoding the file costs, and only files that are new or whose size or mtime changed are
/// fingerprinted. For files of up to 128 KiB it equals the fingerprint older versions stored
/// (size, first and last 64 KiB), which read the whole of such a file too.
pub fn fingerprint(path: &Path) -> Result<Vec<u8>> {
    let read = || -> std::io::Result<u128> {
        let mut file = std::fs::File::open(path)?;
        let size = file.metadata()?.len();
        let mut hasher = xxhash_rust::xxh3::Xxh3::new();
        hasher.update(&size.to_le_bytes());
        let mut buffer = vec![0u8; 256 * 1024];
        loop {
            match file.read(&mut buffer) {
                Ok(0) => return Ok(hasher.digest128()),
                Ok(n) => hasher.update(&buffer[..n]),
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
    };
    let hash = read().map_err(|e| Error::unreadable(path, "cannot read", e))?;
    Ok(hash.to_le_bytes().to_vec())
}

/// Modification time in nanoseconds since the epoch (negative before it); 0 if unknown.
pub fn mtime_ns(modified: Option<SystemTime>) -> i64 {
    match modified {
        Some(t) => match t.duration_since(UNIX_EPOCH) {
            Ok(after) => after.as_nanos() as i64,
            Err(before) => -(before.duration().as_nanos() as i64),
        },
        None => 0,
    }
}

/// Fills in, from `index`, the thumbnails of the `needed` rows that `thumbnails` lacks: the
/// index serves images without their thumbnails' bytes, and whoever needs pixels (keypoints
/// for copies) asks for just those. `paths` are the rows' files as scanned. Returns the
/// index's failure, if any, as a warning: the rows then stay without.
pub fn read_back_thumbnails(
    index: &mut dyn Store,
    needed: &[bool],
    paths: &[PathBuf],
    thumbnails: &mut [Option<Thumbnail>],
) -> Option<String> {
    let rows: Vec<usize> = (0..needed.len())
        .filter(|&row| needed[row] && thumbnails[row].is_none())
        .collect();
    let keys: Vec<PathBuf> = (rows.iter())
        .map(|&row| std::fs::canonicalize(&paths[row]).unwrap_or_else(|_| paths[row].clone()))
        .collect();
    let keys: Vec<&Path> = keys.iter().map(PathBuf::as_path).collect();
    match index.thumbnails(&keys) {
        Ok(read) => {
            (rows.into_iter().zip(read)).for_each(|(row, t)| thumbnails[row] = t);
            None
        }
        Err(e) => Some(format!(
            "thumbnails could not be read back from the index: {e}"
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The fingerprint is that of the whole file: an edit anywhere changes it, and for a file
    /// of up to 128 KiB it is what older versions stored (their size, first and last 64 KiB
    /// covered the whole file), so such rows still match after an upgrade.
    #[test]
    fn the_fingerprint_covers_the_whole_file_and_keeps_small_files_rows() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("picture.bmp");
        let small: Vec<u8> = (0..100_000u32).map(|i| (i * 7 % 251) as u8).collect();
        std::fs::write(&path, &small).unwrap();
        let mut old_form = (small.len() as u64).to_le_bytes().to_vec();
        old_form.extend_from_slice(&small);
        let old = xxhash_rust::xxh3::xxh3_128(&old_form)
            .to_le_bytes()
            .to_vec();
        assert_eq!(fingerprint(&path).unwrap(), old);

        let mut large: Vec<u8> = (0..1_000_000u32).map(|i| (i * 13 % 251) as u8).collect();
        std::fs::write(&path, &large).unwrap();
        let before = fingerprint(&path).unwrap();
        large[500_000] ^= 1;
        std::fs::write(&path, &large).unwrap();
        assert_ne!(
            fingerprint(&path).unwrap(),
            before,
            "a same-size edit in the middle"
        );
    }
}
