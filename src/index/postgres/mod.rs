//! The shared index: a PostgreSQL database with pgvector, for a library indexed by several
//! machines at once, or browsed from several desktops.
//!
//! - Images are keyed by a library name and their path relative to the library's folder, so
//!   machines that mount one share at different places share its rows.
//! - Each model has its own table of `vector(N)` columns with an HNSW index
//!   (`vector_cosine_ops`); `similar` searches there once a library is large.
//! - Indexers claim files with session advisory locks before embedding them, so each file is
//!   embedded once; a killed indexer's claims end with its connection.
//! - Every batch is one transaction, so a dropped connection leaves nothing half-written.
//! - Everything user-supplied (paths, library names, labels, vectors) goes in as a bound
//!   parameter. The only names formatted into SQL are the vector tables', made from the
//!   model ids, checked to be plain identifiers and quoted. What `lookalike_models` says a
//!   table is called is only compared with that name, never run: whoever can write that
//!   table must not run SQL as every indexer.

mod schema;
mod target;
mod tls;

pub use schema::{VectorTable, SCHEMA_VERSION};
pub use target::Target;

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use pgvector::Vector;
use postgres::{Client, Row};

use super::{
    CacheInfo, CachedImage, Claim, ClaimRequest, FileRecord, FileRow, Match, ModelStamp, ScanStart,
    Store, Stored,
};
use crate::decode::Thumbnail;
use crate::error::{Error, Result};

/// From this many images in a library on, `similar` searches the HNSW index; below, it scores
/// every vector (exact, in well under 200 ms). A model's HNSW index is built at the end of the
/// first indexing run that leaves it this many vectors: until then it would only slow writes.
pub const HNSW_FROM: i64 = 20_000;
/// How many candidates HNSW keeps while searching: pgvector's `hnsw.ef_search`, at least the
/// number of results wanted (pgvector's ceiling is 1000).
const EF_SEARCH_MIN: usize = 100;

/// The library being worked on: its name in the database and its folder on this machine.
#[derive(Debug, Clone)]
struct Library {
    name: String,
    root: PathBuf,
}

/// An open connection to a shared index.
pub struct PostgresIndex {
    client: Client,
    shown: String,
    library: Option<Library>,
    /// Vector tables known to exist, by model: (table, dimensions).
    models: HashMap<String, (VectorTable, usize)>,
    warnings: Vec<String>,
}

impl PostgresIndex {
    /// Connects, and creates or migrates the schema. No library is chosen: for `cache info`.
    pub fn connect(target: &Target) -> Result<PostgresIndex> {
        let mut client = target.connect()?;
        schema::prepare(&mut client).map_err(|e| Error::Index(format!("{target}: {e}")))?;
        let mut index = PostgresIndex {
            client,
            shown: target.to_string(),
            library: None,
            models: HashMap::new(),
            warnings: Vec::new(),
        };
        index.load_models()?;
        if let Some(name) = &target.library {
            index.library = Some(Library {
                name: name.clone(),
                root: PathBuf::new(),
            });
        }
        Ok(index)
    }

    /// Connects for work on `folder`: the library is the one the target names, whose folder
    /// on this machine is the target's root, else the outermost folder the library was
    /// opened from before that holds `folder`, else `folder` itself; without a name, the
    /// library is `folder`'s canonical path. The folder chosen is recorded, so that opening
    /// a folder inside it later keys and prunes that folder's images only.
    pub fn open(target: &Target, folder: &Path) -> Result<PostgresIndex> {
        let canonical = |dir: &Path| {
            std::fs::canonicalize(dir).map_err(|e| Error::unreadable(dir, "cannot open", e))
        };
        let inside = canonical(folder)?;
        let given = target.root.as_deref().map(canonical).transpose()?;
        if let Some(root) = given.as_ref().filter(|root| !inside.starts_with(root)) {
            return Err(Error::Usage(format!(
                "{} is not inside the library's folder {}",
                crate::shown::shown_path(folder),
                crate::shown::shown_path(root)
            )));
        }
        let mut index = Self::connect(target)?;
        let root = given.unwrap_or_else(|| inside.clone());
        let Some(name) = target.library.clone() else {
            let name = root.to_string_lossy().into_owned();
            index.library = Some(Library { name, root });
            return Ok(index);
        };
        let root = match target.root {
            Some(_) => root,
            None => index.recorded_root(&name, &inside)?.unwrap_or(root),
        };
        index.record_root(&name, &root)?;
        index.library = Some(Library { name, root });
        Ok(index)
    }

    /// The outermost folder that `library` was opened from before and that holds `folder`.
    fn recorded_root(&mut self, library: &str, folder: &Path) -> Result<Option<PathBuf>> {
        let rows = self
            .client
            .query(
                "SELECT root FROM lookalike_libraries WHERE library = $1",
                &[&library],
            )
            .map_err(|e| self.fail(e))?;
        let mut roots = Vec::with_capacity(rows.len());
        for row in rows {
            roots.push(PathBuf::from(part_os(row.try_get::<_, &[u8]>(0)?)));
        }
        Ok(roots
            .into_iter()
            .filter(|root| root.is_absolute() && folder.starts_with(root))
            .min_by_key(|root| root.components().count()))
    }

    /// Records that `library` was opened from `root` on this machine.
    fn record_root(&mut self, library: &str, root: &Path) -> Result<()> {
        let bytes = component_bytes(root.as_os_str());
        let text = root.to_string_lossy().into_owned();
        self.client
            .execute(
                "INSERT INTO lookalike_libraries (library, root, root_text) VALUES ($1, $2, $3)
                 ON CONFLICT (library, root) DO NOTHING",
                &[&library, &bytes, &text],
            )
            .map(|_| ())
            .map_err(|e| self.fail(e))
    }

    /// The library's name.
    pub fn library(&self) -> Option<&str> {
        self.library.as_ref().map(|l| l.name.as_str())
    }

    fn library_or_err(&self) -> Result<&Library> {
        self.library
            .as_ref()
            .ok_or_else(|| Error::Usage("no library chosen: pass --library NAME".into()))
    }

    /// The stored key of a canonical path: relative to the library's folder, with `/`
    /// between components on every system. None for a path outside the library.
    fn key(&self, path: &Path) -> Result<Option<Vec<u8>>> {
        let library = self.library_or_err()?;
        let Ok(relative) = path.strip_prefix(&library.root) else {
            return Ok(None);
        };
        Ok(Some(relative_key(relative)))
    }

    /// The stored keys of those `paths` that lie inside the library.
    fn keys_inside(&self, paths: &[&Path]) -> Result<Vec<Vec<u8>>> {
        let keys = paths
            .iter()
            .map(|p| self.key(p))
            .collect::<Result<Vec<_>>>()?;
        Ok(keys.into_iter().flatten().collect())
    }

    /// The stored prefix of everything under `dir` ("" for the library's folder itself).
    fn prefix(&self, dir: &Path) -> Result<Vec<u8>> {
        let mut key = self.key(dir)?.unwrap_or_default();
        if !key.is_empty() {
            key.push(b'/');
        }
        Ok(key)
    }

    /// The canonical path on this machine of a stored key; an error for a key with an
    /// empty, `.` or `..` part, which lookalike never writes and which could lead outside
    /// the library's folder.
    fn path_of(&self, key: &[u8]) -> Result<PathBuf> {
        let root = self
            .library
            .as_ref()
            .map(|l| l.root.clone())
            .unwrap_or_default();
        key_path(&root, key).ok_or_else(|| {
            Error::Index(format!(
                "{}: the index holds a path that is not a plain relative path ({}): refused",
                self.shown,
                crate::shown::escaped(&String::from_utf8_lossy(key))
            ))
        })
    }

    /// Each row with its path (column `column`) on this machine. Rows whose stored path is refused
    /// are left out, each with a warning, so that one hostile or damaged row does not stop
    /// the whole library from opening.
    fn with_plain_paths<'r>(
        &mut self,
        rows: &'r [Row],
        column: usize,
    ) -> Result<Vec<(&'r Row, PathBuf)>> {
        let mut kept = Vec::with_capacity(rows.len());
        for row in rows {
            match self.path_of(row.try_get::<_, &[u8]>(column)?) {
                Ok(path) => kept.push((row, path)),
                Err(e) => self.warnings.push(e.to_string()),
            }
        }
        Ok(kept)
    }

    /// A query's failure, named after the database (never with its password).
    fn fail(&self, e: postgres::Error) -> Error {
        let reason = target::describe(&e);
        match target::lost_connection(&e) {
            true => Error::Index(format!("lost the connection to {}: {reason}", self.shown)),
            false => Error::Index(format!("{}: {reason}", self.shown)),
        }
    }

    fn load_models(&mut self) -> Result<()> {
        let rows = self
            .client
            .query("SELECT model, vectors, dim FROM lookalike_models", &[])
            .map_err(|e| self.fail(e))?;
        for row in rows {
            let (model, named): (String, String) = (row.try_get(0)?, row.try_get(1)?);
            let dim: i32 = row.try_get(2)?;
            let table = checked_model_row(&model, &named, dim)
                .map_err(|e| Error::Index(format!("{}: lookalike_models: {e}", self.shown)))?;
            self.models.insert(model, table);
        }
        Ok(())
    }

    /// The vector table of `model`, creating it for vectors of `dim` numbers if need be.
    fn table_for(&mut self, model: &str, dim: usize) -> Result<VectorTable> {
        if let Some((table, known)) = self.models.get(model) {
            if *known != dim {
                return Err(Error::Index(format!(
                    "{}: the database holds {model} vectors of {known} numbers, not {dim}",
                    self.shown
                )));
            }
            return Ok(table.clone());
        }
        let table = schema::create_model_table(&mut self.client, model, dim)
            .map_err(|e| Error::Index(format!("{}: {e}", self.shown)))?;
        self.load_models()?;
        Ok(table)
    }

    /// The vector table of `model`, if any vectors of it were ever stored.
    fn table(&mut self, model: &str) -> Result<Option<VectorTable>> {
        if !self.models.contains_key(model) {
            self.load_models()?;
        }
        Ok(self.models.get(model).map(|(table, _)| table.clone()))
    }

    fn rows_to_files(&mut self, rows: Vec<Row>) -> Result<Vec<FileRow>> {
        let rows = self.with_plain_paths(&rows, 1)?;
        rows.into_iter()
            .map(|(r, path)| {
                Ok(FileRow {
                    id: r.try_get(0)?,
                    path,
                    size: r.try_get::<_, i64>(2)? as u64,
                    mtime_ns: r.try_get(3)?,
                    fingerprint: r.try_get(4)?,
                    error: r.try_get(5)?,
                })
            })
            .collect()
    }

    /// Runs `sql` with this library's name as `$1` and the keys of `paths` (those inside its
    /// folder) as `$2`.
    fn query_by_paths(&mut self, sql: &str, paths: &[&Path]) -> Result<Vec<Row>> {
        let library = self.library_or_err()?.name.clone();
        let keys = self.keys_inside(paths)?;
        (self.client)
            .query(sql, &[&library, &keys])
            .map_err(|e| self.fail(e))
    }

    fn rows_to_images(
        &mut self,
        rows: Vec<Row>,
        model: ModelStamp<'_>,
    ) -> Result<Vec<CachedImage>> {
        let rows = self.with_plain_paths(&rows, 1)?;
        (rows.into_iter())
            .map(|(r, path)| self.cached_image(r, path, model))
            .collect()
    }

    /// An image row as the pipeline takes it (id, path, width, height, [`has_thumbnail`],
    /// vector, labels), its vector's length and its labels checked: another machine, or a hand
    /// in the database, may have written anything there. A thumbnail of a size lookalike does
    /// not make counts as none (the image is then analysed again from its file).
    fn cached_image(&self, r: &Row, path: PathBuf, model: ModelStamp<'_>) -> Result<CachedImage> {
        let embedding = r.try_get::<_, Vector>(5)?.to_vec();
        super::check_stored(&self.shown, &path, model, embedding.len())?;
        let top: serde_json::Value = r.try_get(6)?;
        let top = super::stored_labels(&self.shown, &path, serde_json::from_value(top))?;
        Ok(CachedImage {
            file_id: r.try_get(0)?,
            path,
            width: r.try_get::<_, Option<i32>>(2)?.unwrap_or(0) as u32,
            height: r.try_get::<_, Option<i32>>(3)?.unwrap_or(0) as u32,
            has_thumbnail: r.try_get::<_, Option<bool>>(4)?.unwrap_or(false),
            embedding,
            top,
        })
    }
}

impl PostgresIndex {
    /// The claim key of a stored path: one 64-bit number per (library, path), as PostgreSQL's
    /// advisory locks take.
    fn claim_key(&self, key: &[u8]) -> i64 {
        let name = self.library.as_ref().map_or("", |l| l.name.as_str());
        let mut bytes = name.as_bytes().to_vec();
        bytes.push(0);
        bytes.extend_from_slice(key);
        xxhash_rust::xxh3::xxh3_64(&bytes) as i64
    }

    fn claim_keys(&self, paths: &[&Path]) -> Result<Vec<i64>> {
        let mut keys = Vec::with_capacity(paths.len());
        for path in paths {
            if let Some(key) = self.key(path)? {
                keys.push(self.claim_key(&key));
            }
        }
        Ok(keys)
    }

    /// Which of `requests` another indexer has stored since they were planned: failed for
    /// good, or with a vector of this revision and a thumbnail.
    fn already_stored(
        &mut self,
        model: ModelStamp<'_>,
        keys: &[Vec<u8>],
        requests: &[&ClaimRequest<'_>],
    ) -> Result<Vec<bool>> {
        let Some(table) = self.table(model.model)? else {
            return Ok(vec![false; keys.len()]);
        };
        let table = table.sql();
        let library = self.library_or_err()?.name.clone();
        let fingerprints: Vec<&[u8]> = requests.iter().map(|r| r.fingerprint).collect();
        let sizes: Vec<i64> = requests.iter().map(|r| r.size as i64).collect();
        let sql = format!(
            "SELECT t.n FROM unnest($2::bytea[], $3::bytea[], $4::int8[]) WITH ORDINALITY AS t(path, fingerprint, size, n)
             JOIN lookalike_files f ON f.library = $1 AND f.path = t.path
                 AND f.fingerprint = t.fingerprint AND f.size = t.size
             WHERE f.error IS NOT NULL
                OR (f.thumbnail IS NOT NULL AND EXISTS (
                    SELECT 1 FROM {table} v WHERE v.file_id = f.id AND v.revision = $5))"
        );
        let rows = self
            .client
            .query(
                &sql,
                &[&library, &keys, &fingerprints, &sizes, &model.revision],
            )
            .map_err(|e| self.fail(e))?;
        let mut stored = vec![false; keys.len()];
        for row in rows {
            let nth = usize::try_from(row.try_get::<_, i64>(0)? - 1).ok();
            if let Some(slot) = nth.and_then(|n| stored.get_mut(n)) {
                *slot = true;
            }
        }
        Ok(stored)
    }

    /// Whether an HNSW search pays: the library is large and the table's index is built.
    fn worth_hnsw(&mut self, table: &VectorTable) -> Result<bool> {
        let library = self.library_or_err()?.name.clone();
        let images: i64 = self
            .client
            .query_one(
                "SELECT count(*) FROM lookalike_files WHERE library = $1",
                &[&library],
            )
            .map_err(|e| self.fail(e))?
            .try_get(0)?;
        if images < HNSW_FROM {
            return Ok(false);
        }
        let state = schema::search_index_state(&mut self.client, &table.search_index());
        Ok(state.map_err(|e| self.fail(e))? == Some(true))
    }
}

impl Store for PostgresIndex {
    fn location(&self) -> String {
        match self.library() {
            Some(name) => format!("{}, library {name}", self.shown),
            None => self.shown.clone(),
        }
    }

    fn take_warnings(&mut self) -> Vec<String> {
        std::mem::take(&mut self.warnings)
    }

    fn lookup(&mut self, path: &Path) -> Result<Option<FileRow>> {
        let Some(key) = self.key(path)? else {
            return Ok(None);
        };
        let library = self.library_or_err()?.name.clone();
        let rows = self
            .client
            .query(
                "SELECT id, path, size, mtime_ns, fingerprint, error FROM lookalike_files
                 WHERE library = $1 AND path = $2",
                &[&library, &key],
            )
            .map_err(|e| self.fail(e))?;
        Ok(self.rows_to_files(rows)?.pop())
    }

    fn lookup_many(&mut self, paths: &[&Path]) -> Result<Vec<Option<FileRow>>> {
        let rows = self.query_by_paths(
            "SELECT id, path, size, mtime_ns, fingerprint, error FROM lookalike_files
             WHERE library = $1 AND path = ANY($2)",
            paths,
        )?;
        let mut found: HashMap<PathBuf, FileRow> = (self.rows_to_files(rows)?.into_iter())
            .map(|row| (row.path.clone(), row))
            .collect();
        Ok(paths.iter().map(|p| found.remove(*p)).collect())
    }

    fn thumbnails(&mut self, paths: &[&Path]) -> Result<Vec<Option<Thumbnail>>> {
        let rows = self.query_by_paths(
            "SELECT path, thumbnail, thumb_width, thumb_height FROM lookalike_files
             WHERE library = $1 AND path = ANY($2) AND thumbnail IS NOT NULL",
            paths,
        )?;
        let mut found = HashMap::with_capacity(rows.len());
        for (row, path) in self.with_plain_paths(&rows, 0)? {
            let (width, height): (Option<i32>, Option<i32>) = (row.try_get(2)?, row.try_get(3)?);
            let (width, height) = (width.unwrap_or(0), height.unwrap_or(0));
            // A row whose sizes make no thumbnail is as good as none: it is made again.
            if let Some(t) = Thumbnail::from_stored(row.try_get(1)?, width.into(), height.into()) {
                found.insert(path, t);
            }
        }
        Ok(paths.iter().map(|p| found.remove(*p)).collect())
    }

    fn find_moved(&mut self, fingerprint: &[u8], size: u64) -> Result<Option<FileRow>> {
        let library = self.library_or_err()?.name.clone();
        let rows = self
            .client
            .query(
                "SELECT id, path, size, mtime_ns, fingerprint, error FROM lookalike_files
                 WHERE library = $1 AND fingerprint = $2 AND size = $3",
                &[&library, &fingerprint, &(size as i64)],
            )
            .map_err(|e| self.fail(e))?;
        let rows = self.rows_to_files(rows)?;
        Ok(rows.into_iter().find(|row| !row.path.exists()))
    }

    fn image(&mut self, file_id: i64, model: ModelStamp<'_>) -> Result<Option<CachedImage>> {
        let Some(table) = self.table(model.model)? else {
            return Ok(None);
        };
        let table = table.sql();
        let sql = format!(
            "SELECT f.id, f.path, f.width, f.height, {has_thumbnail}, v.embedding, v.top
             FROM lookalike_files f JOIN {table} v ON v.file_id = f.id
             WHERE f.id = $1 AND v.revision = $2 AND f.error IS NULL",
            has_thumbnail = has_thumbnail(),
        );
        let rows = self
            .client
            .query(&sql, &[&file_id, &model.revision])
            .map_err(|e| self.fail(e))?;
        Ok(self.rows_to_images(rows, model)?.pop())
    }

    fn images_under(&mut self, dir: &Path, model: ModelStamp<'_>) -> Result<Vec<CachedImage>> {
        let Some(table) = self.table(model.model)? else {
            return Ok(Vec::new());
        };
        let table = table.sql();
        let library = self.library_or_err()?.name.clone();
        let prefix = self.prefix(dir)?;
        let sql = format!(
            "SELECT f.id, f.path, f.width, f.height, {has_thumbnail}, v.embedding, v.top
             FROM lookalike_files f JOIN {table} v ON v.file_id = f.id
             WHERE f.library = $1 AND substring(f.path FROM 1 FOR $3) = $2
                 AND v.revision = $4 AND f.error IS NULL
             ORDER BY f.path",
            has_thumbnail = has_thumbnail(),
        );
        let rows = self
            .client
            .query(
                &sql,
                &[&library, &prefix, &(prefix.len() as i32), &model.revision],
            )
            .map_err(|e| self.fail(e))?;
        self.rows_to_images(rows, model)
    }

    fn update_location(&mut self, id: i64, path: &Path, size: u64, mtime_ns: i64) -> Result<()> {
        let key = self.key(path)?.ok_or_else(|| {
            Error::Index(format!(
                "{} is outside the library's folder",
                path.display()
            ))
        })?;
        let library = self.library_or_err()?.name.clone();
        let shown = String::from_utf8_lossy(&key).into_owned();
        let mut tx = self
            .client
            .transaction()
            .map_err(|e| Error::Index(target::describe(&e)))?;
        let work = (|| {
            // A row already at the new path describes older content there; this one wins.
            tx.execute(
                "DELETE FROM lookalike_files WHERE library = $1 AND path = $2 AND id <> $3",
                &[&library, &key, &id],
            )?;
            tx.execute(
                "UPDATE lookalike_files SET path = $2, path_text = $3, size = $4, mtime_ns = $5, updated_at = now()
                 WHERE id = $1",
                &[&id, &key, &shown, &(size as i64), &mtime_ns],
            )?;
            Ok(())
        })();
        let outcome = work.and_then(|()| tx.commit());
        outcome.map_err(|e| self.fail(e))
    }

    fn files_under(&mut self, dir: &Path) -> Result<Vec<FileRow>> {
        let library = self.library_or_err()?.name.clone();
        let prefix = self.prefix(dir)?;
        let rows = self
            .client
            .query(
                "SELECT id, path, size, mtime_ns, fingerprint, error FROM lookalike_files
                 WHERE library = $1 AND substring(path FROM 1 FOR $3) = $2",
                &[&library, &prefix, &(prefix.len() as i32)],
            )
            .map_err(|e| self.fail(e))?;
        self.rows_to_files(rows)
    }

    fn store_batch(&mut self, model: ModelStamp<'_>, batch: &[Stored<'_>]) -> Result<()> {
        let table = match batch.iter().find_map(|s| s.embedding) {
            Some((vector, _)) => Some(self.table_for(model.model, vector.len())?),
            None => None,
        };
        let mut keys = Vec::with_capacity(batch.len());
        for stored in batch {
            let key = self.key(stored.file.path)?.ok_or_else(|| {
                Error::Index(format!(
                    "{} is outside the library's folder",
                    stored.file.path.display()
                ))
            })?;
            keys.push(key);
        }
        let library = self.library_or_err()?.name.clone();
        let tables: Vec<String> = self.models.values().map(|(t, _)| t.sql()).collect();
        let outcome = (|| {
            let mut tx = self.client.transaction()?;
            for (stored, key) in batch.iter().zip(&keys) {
                let id = put_file(&mut tx, &library, &tables, &stored.file, key)?;
                if let (Some((vector, top)), Some(table)) = (stored.embedding, &table) {
                    let table = table.sql();
                    let top = serde_json::to_value(top).unwrap_or_default();
                    tx.execute(
                        &format!(
                            "INSERT INTO {table} (file_id, revision, embedding, top) VALUES ($1, $2, $3, $4)
                             ON CONFLICT (file_id) DO UPDATE SET revision = excluded.revision,
                                 embedding = excluded.embedding, top = excluded.top"
                        ),
                        &[&id, &model.revision, &Vector::from(vector.to_vec()), &top],
                    )?;
                }
            }
            tx.commit()
        })();
        outcome.map_err(|e| self.fail(e))
    }

    fn copy_features(&mut self, paths: &[&Path]) -> Result<Vec<Option<Vec<u8>>>> {
        let library = self.library_or_err()?.name.clone();
        let keys: Vec<Option<Vec<u8>>> =
            paths.iter().map(|p| self.key(p)).collect::<Result<_>>()?;
        let wanted: Vec<&[u8]> = keys.iter().flatten().map(Vec::as_slice).collect();
        // The fingerprint ties the features to the content they were made from.
        let rows = self
            .client
            .query(
                "SELECT f.path, c.data FROM lookalike_files f
                 JOIN lookalike_copy_features c ON c.file_id = f.id AND c.fingerprint = f.fingerprint
                 WHERE f.library = $1 AND f.path = ANY($2)",
                &[&library, &wanted],
            )
            .map_err(|e| self.fail(e))?;
        let mut found = HashMap::with_capacity(rows.len());
        for row in rows {
            found.insert(row.try_get::<_, Vec<u8>>(0)?, row.try_get::<_, Vec<u8>>(1)?);
        }
        Ok(keys
            .iter()
            .map(|key| key.as_ref().and_then(|k| found.remove(k)))
            .collect())
    }

    fn store_copy_features(&mut self, features: &[(&Path, &[u8])]) -> Result<()> {
        let library = self.library_or_err()?.name.clone();
        let mut keys = Vec::with_capacity(features.len());
        let mut data = Vec::with_capacity(features.len());
        for (path, bytes) in features {
            if let Some(key) = self.key(path)? {
                keys.push(key);
                data.push(*bytes);
            }
        }
        let outcome = (|| {
            let mut tx = self.client.transaction()?;
            // A few hundred at a time keeps each statement a few megabytes.
            for (keys, data) in keys.chunks(256).zip(data.chunks(256)) {
                tx.execute(
                    "INSERT INTO lookalike_copy_features (file_id, fingerprint, data)
                     SELECT f.id, f.fingerprint, given.data
                     FROM unnest($2::bytea[], $3::bytea[]) AS given (path, data)
                     JOIN lookalike_files f ON f.library = $1 AND f.path = given.path
                     ON CONFLICT (file_id)
                     DO UPDATE SET fingerprint = excluded.fingerprint, data = excluded.data",
                    &[&library, &keys, &data],
                )?;
            }
            tx.commit()
        })();
        outcome.map_err(|e| self.fail(e))
    }

    fn delete_files(&mut self, ids: &[i64]) -> Result<()> {
        if ids.is_empty() {
            return Ok(());
        }
        self.client
            .execute("DELETE FROM lookalike_files WHERE id = ANY($1)", &[&ids])
            .map(|_| ())
            .map_err(|e| self.fail(e))
    }

    /// The database's clock, to the microsecond: rows carry the time they were stored.
    fn scan_start(&mut self) -> Result<ScanStart> {
        let row = self
            .client
            .query_one(
                "SELECT ((extract(epoch FROM clock_timestamp()) * 1000000)::int8)",
                &[],
            )
            .map_err(|e| self.fail(e))?;
        Ok(ScanStart(row.try_get(0)?))
    }

    fn prune_files(&mut self, ids: &[i64], start: ScanStart) -> Result<usize> {
        if ids.is_empty() {
            return Ok(0);
        }
        self.client
            .execute(
                "DELETE FROM lookalike_files
                 WHERE id = ANY($1)
                     AND (extract(epoch FROM updated_at) * 1000000)::int8 < $2",
                &[&ids, &start.0],
            )
            .map(|n| n as usize)
            .map_err(|e| self.fail(e))
    }

    fn info(&mut self) -> Result<CacheInfo> {
        let library = self.library.as_ref().map(|l| l.name.clone());
        let count =
            |client: &mut Client, failed: bool| -> std::result::Result<i64, postgres::Error> {
                let row = client.query_one(
                    "SELECT count(*) FROM lookalike_files
                 WHERE ($1::text IS NULL OR library = $1) AND (error IS NOT NULL) = $2",
                    &[&library, &failed],
                )?;
                row.try_get(0)
            };
        let files = count(&mut self.client, false).map_err(|e| self.fail(e))?;
        let failed = count(&mut self.client, true).map_err(|e| self.fail(e))?;
        let mut embeddings_by_model = Vec::new();
        let mut tables: Vec<(String, String)> = self
            .models
            .iter()
            .map(|(m, (t, _))| (m.clone(), t.sql()))
            .collect();
        tables.sort();
        for (model, table) in &tables {
            let sql = format!(
                "SELECT v.revision, count(*) FROM {table} v JOIN lookalike_files f ON f.id = v.file_id
                 WHERE $1::text IS NULL OR f.library = $1 GROUP BY v.revision ORDER BY v.revision"
            );
            let rows = self
                .client
                .query(&sql, &[&library])
                .map_err(|e| self.fail(e))?;
            for row in rows {
                let (revision, n): (String, i64) = (row.try_get(0)?, row.try_get(1)?);
                embeddings_by_model.push((format!("{model} ({revision})"), n as u64));
            }
        }
        let row = self
            .client
            .query_one(
                "SELECT coalesce(sum(pg_total_relation_size(c.oid)), 0)::int8 FROM pg_class c
                 WHERE c.relkind = 'r' AND c.relname LIKE 'lookalike\\_%'",
                &[],
            )
            .map_err(|e| self.fail(e))?;
        Ok(CacheInfo {
            location: self.location(),
            bytes: row.try_get::<_, i64>(0)? as u64,
            files: files as u64,
            failed: failed as u64,
            embeddings_by_model,
        })
    }

    /// Searches the library for the vectors nearest `query`: through the HNSW index when the
    /// library has at least [`HNSW_FROM`] images (unless `exact`), by scoring them all below.
    fn nearest(
        &mut self,
        dir: &Path,
        model: ModelStamp<'_>,
        query: &[f32],
        limit: Option<usize>,
        exact: bool,
    ) -> Result<Vec<Match>> {
        let Some(table) = self.table(model.model)? else {
            return Ok(Vec::new());
        };
        let library = self.library_or_err()?.name.clone();
        let prefix = self.prefix(dir)?;
        let approximate = !exact && limit.is_some_and(|k| k <= 1000) && self.worth_hnsw(&table)?;
        let sql = search_sql(&table.sql(), !prefix.is_empty());
        let limit = limit.map_or(i64::MAX, |k| k as i64);
        let query = Vector::from(query.to_vec());
        let shown = self.shown.clone();
        let fail = |e: postgres::Error| Error::Index(format!("{shown}: {}", target::describe(&e)));
        let mut tx = self.client.transaction().map_err(fail)?;
        tx.batch_execute(&search_settings(approximate, limit))
            .map_err(fail)?;
        let prefix_len = prefix.len() as i32;
        let mut params: Vec<&(dyn postgres::types::ToSql + Sync)> =
            vec![&query, &library, &model.revision, &limit];
        if !prefix.is_empty() {
            params.push(&prefix);
            params.push(&prefix_len);
        }
        let rows = tx.query(&sql, &params).map_err(fail)?;
        tx.commit().map_err(fail)?;
        let matches = self.with_plain_paths(&rows, 0)?;
        (matches.into_iter())
            .map(|(r, path)| {
                Ok(Match {
                    path,
                    score: r.try_get(1)?,
                })
            })
            .collect()
    }

    fn claim(&mut self, model: ModelStamp<'_>, files: &[ClaimRequest<'_>]) -> Result<Vec<Claim>> {
        let mut keys = Vec::with_capacity(files.len());
        for file in files {
            keys.push(self.key(file.path)?.unwrap_or_default());
        }
        let locks: Vec<i64> = keys.iter().map(|k| self.claim_key(k)).collect();
        let rows = self
            .client
            .query(
                "SELECT pg_try_advisory_lock(k) FROM unnest($1::int8[]) WITH ORDINALITY AS t(k, n) ORDER BY n",
                &[&locks],
            )
            .map_err(|e| self.fail(e))?;
        let granted = rows.iter().map(|r| r.try_get(0));
        let granted: Vec<bool> = granted.collect::<std::result::Result<_, _>>()?;
        let requests: Vec<&ClaimRequest<'_>> = files.iter().collect();
        let stored = self.already_stored(model, &keys, &requests)?;
        let mut answers = Vec::with_capacity(files.len());
        let mut give_back = Vec::new();
        for ((&granted, &stored), &lock) in granted.iter().zip(&stored).zip(&locks) {
            answers.push(match (granted, stored) {
                (false, _) => Claim::Busy,
                (true, true) => {
                    give_back.push(lock);
                    Claim::Done
                }
                (true, false) => Claim::Granted,
            });
        }
        self.unlock(&give_back)?;
        Ok(answers)
    }

    fn tidy(&mut self, model: ModelStamp<'_>) -> Result<()> {
        let Some((table, dim)) = self.models.get(model.model).cloned() else {
            return Ok(());
        };
        let ready = schema::search_index_state(&mut self.client, &table.search_index());
        if dim > schema::HNSW_MAX_DIM || ready.map_err(|e| self.fail(e))? == Some(true) {
            return Ok(());
        }
        let vectors: i64 = self
            .client
            .query_one(&format!("SELECT count(*) FROM {}", table.sql()), &[])
            .map_err(|e| self.fail(e))?
            .try_get(0)?;
        if vectors < HNSW_FROM {
            return Ok(());
        }
        schema::build_search_index(&mut self.client, &table).map_err(|e| self.fail(e))
    }

    fn release(&mut self, paths: &[&Path]) -> Result<()> {
        let keys = self.claim_keys(paths)?;
        self.unlock(&keys)
    }

    fn wait_for(&mut self, paths: &[&Path]) -> Result<()> {
        // One at a time, each let go at once: holding one while waiting for another could
        // deadlock with an indexer doing the same.
        for key in self.claim_keys(paths)? {
            self.client
                .query_one(
                    "SELECT pg_advisory_lock($1), pg_advisory_unlock($1)",
                    &[&key],
                )
                .map_err(|e| self.fail(e))?;
        }
        Ok(())
    }
}

impl PostgresIndex {
    fn unlock(&mut self, keys: &[i64]) -> Result<()> {
        if keys.is_empty() {
            return Ok(());
        }
        self.client
            .execute(
                "SELECT pg_advisory_unlock(k) FROM unnest($1::int8[]) AS t(k)",
                &[&keys],
            )
            .map(|_| ())
            .map_err(|e| self.fail(e))
    }
}

/// The search of a model's vector table: by library and revision, and with `within_folder`
/// under a path prefix ($5, of length $6); query vector $1, at most $4 results.
fn search_sql(table: &str, within_folder: bool) -> String {
    // The whole library needs no path condition; with one, the planner guesses it keeps few
    // rows and would leave the HNSW index aside.
    let within = match within_folder {
        true => "AND substring(f.path FROM 1 FOR $6) = $5",
        false => "",
    };
    format!(
        "SELECT f.path, (1 - (v.embedding <=> $1))::real
         FROM {table} v JOIN lookalike_files f ON f.id = v.file_id
         WHERE f.library = $2 AND v.revision = $3 AND f.error IS NULL {within}
         ORDER BY v.embedding <=> $1
         LIMIT $4"
    )
}

/// The planner settings for one search: through the HNSW index, or scoring every vector.
fn search_settings(approximate: bool, limit: i64) -> String {
    match approximate {
        // The planner's costs would sometimes pick a full scan and a sort even for a large
        // library: above the threshold the HNSW index is what was asked for. Strict order:
        // filtered rows (other libraries, old revisions) do not cut the list short or out of
        // order.
        true => format!(
            "SET LOCAL enable_seqscan = off; SET LOCAL enable_sort = off;
             SET LOCAL hnsw.ef_search = {}; SET LOCAL hnsw.iterative_scan = strict_order",
            EF_SEARCH_MIN.max(limit as usize).min(1000)
        ),
        false => "SET LOCAL enable_indexscan = off".to_string(),
    }
}

/// Stores one file's row, dropping its vectors in every model's `tables` if its content
/// changed; returns its id.
fn put_file(
    tx: &mut postgres::Transaction<'_>,
    library: &str,
    tables: &[String],
    file: &FileRecord<'_>,
    key: &[u8],
) -> std::result::Result<i64, postgres::Error> {
    let shown = String::from_utf8_lossy(key).into_owned();
    let (width, height) = file
        .size_px
        .map_or((None, None), |(w, h)| (Some(w as i32), Some(h as i32)));
    let thumb = file.thumbnail;
    let row = tx.query_one(
        "INSERT INTO lookalike_files (library, path, path_text, size, mtime_ns, fingerprint, width, height,
             thumbnail, thumb_width, thumb_height, error)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)
         ON CONFLICT (library, path) DO UPDATE SET
             path_text = excluded.path_text, size = excluded.size, mtime_ns = excluded.mtime_ns,
             fingerprint = excluded.fingerprint, width = excluded.width, height = excluded.height,
             thumbnail = excluded.thumbnail, thumb_width = excluded.thumb_width,
             thumb_height = excluded.thumb_height, error = excluded.error, updated_at = now()
         RETURNING id",
        &[
            &library,
            &key,
            &shown,
            &(file.size as i64),
            &file.mtime_ns,
            &file.fingerprint,
            &width,
            &height,
            &thumb.map(|t| t.jpeg.as_slice()),
            &thumb.map(|t| t.width as i32),
            &thumb.map(|t| t.height as i32),
            &file.error,
        ],
    )?;
    let id: i64 = row.try_get(0)?;
    if file.content_changed {
        // New content: every model's old vector for this file is stale.
        for table in tables {
            tx.execute(&format!("DELETE FROM {table} WHERE file_id = $1"), &[&id])?;
        }
    }
    Ok(id)
}

/// The vector table and length of a row of `lookalike_models`, checked: the model id must
/// be one lookalike could have written, and the table the one named after it.
fn checked_model_row(
    model: &str,
    named: &str,
    dim: i32,
) -> std::result::Result<(VectorTable, usize), String> {
    let table = VectorTable::of(model)?;
    if named != table.name() {
        return Err(format!(
            "the row of model {model} names another table than {}; refused",
            table.name()
        ));
    }
    match usize::try_from(dim) {
        Ok(dim) if (1..=schema::MAX_DIM).contains(&dim) => Ok((table, dim)),
        _ => Err(format!(
            "the row of model {model} gives {dim} numbers a vector"
        )),
    }
}

/// A row that does not hold what lookalike wrote (a table altered by hand, say).
impl From<postgres::Error> for Error {
    fn from(e: postgres::Error) -> Self {
        let what = match target::lost_connection(&e) {
            true => "lost the connection to the index",
            false => "unexpected data in the index",
        };
        Error::Index(format!("{what}: {}", target::describe(&e)))
    }
}

/// A relative path as stored: its components joined by `/`, as raw bytes on Unix so that
/// names that are not UTF-8 survive.
fn relative_key(relative: &Path) -> Vec<u8> {
    let mut key = Vec::new();
    for component in relative.components() {
        if !key.is_empty() {
            key.push(b'/');
        }
        key.extend_from_slice(&component_bytes(component.as_os_str()));
    }
    key
}

#[cfg(unix)]
fn component_bytes(part: &std::ffi::OsStr) -> Vec<u8> {
    use std::os::unix::ffi::OsStrExt;
    part.as_bytes().to_vec()
}

#[cfg(not(unix))]
fn component_bytes(part: &std::ffi::OsStr) -> Vec<u8> {
    part.to_string_lossy().into_owned().into_bytes()
}

/// The path under `root` of a stored key; None for a key with an empty, `.` or `..` part
/// (or one that the system would read as more than one part), so that no stored key leads
/// outside `root`.
fn key_path(root: &Path, key: &[u8]) -> Option<PathBuf> {
    let mut path = root.to_path_buf();
    for part in key.split(|&b| b == b'/') {
        let part = part_os(part);
        let mut components = Path::new(&part).components();
        match (components.next(), components.next()) {
            (Some(std::path::Component::Normal(name)), None) if name == part.as_os_str() => {
                path.push(name)
            }
            _ => return None,
        }
    }
    Some(path)
}

#[cfg(unix)]
fn part_os(part: &[u8]) -> std::ffi::OsString {
    use std::os::unix::ffi::OsStringExt;
    std::ffi::OsString::from_vec(part.to_vec())
}

#[cfg(not(unix))]
fn part_os(part: &[u8]) -> std::ffi::OsString {
    String::from_utf8_lossy(part).into_owned().into()
}

/// Whether a file row `f` keeps a thumbnail the app can show: its stored size is one lookalike
/// makes. PostgreSQL learns a bytea's length without reading it.
fn has_thumbnail() -> String {
    format!(
        "(f.thumbnail IS NOT NULL AND f.thumb_width BETWEEN 1 AND {side} \
          AND f.thumb_height BETWEEN 1 AND {side} AND octet_length(f.thumbnail) <= {bytes})",
        side = crate::decode::THUMBNAIL_SIDE,
        bytes = crate::decode::MAX_THUMBNAIL_BYTES,
    )
}
