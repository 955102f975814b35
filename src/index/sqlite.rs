//! The embedded index: one SQLite file in the user's cache folder, never in a browsed folder.
//!
//! Per image it keeps the canonical path, size and mtime, a content fingerprint (so a moved or
//! touched file is recognised without decoding it), the pixel size, a JPEG thumbnail, and per
//! model the embedding and top-5 labels. Thumbnails have a table of their own: a file's row
//! stays a few dozen bytes, so checking a 100,000-photo library against its scan reads a few
//! megabytes, not every thumbnail, and the app reads thumbnails only for what is on screen.
//! Rows carry the model's revision, so a change to a model or its preprocessing invalidates
//! only that model's vectors. Writes go in short WAL
//! transactions with a busy timeout, so a killed process loses at most the batch in flight and
//! two processes can share the file. A damaged file is moved aside (with its `-wal` and `-shm`)
//! and rebuilt. A file of a newer schema version belongs to a newer lookalike that is still
//! using it: it is refused and left alone, never rebuilt.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use rusqlite::{params, Connection, ErrorCode, OptionalExtension};

use super::{
    CacheInfo, CachedImage, FileRecord, FileRow, Match, ModelStamp, ScanStart, Store, Stored,
};
use crate::decode::Thumbnail;
use crate::error::{Error, Result};
use crate::model::labels::Prediction;
use crate::similarity::{cosine, TopScores};

/// Bump when the tables change. An index of version 1 is moved to this one keeping all it
/// holds; an older one is rebuilt from scratch; one of a newer version is refused, since the
/// lookalike that wrote it is still using it.
const SCHEMA_VERSION: i64 = 2;
/// Version 1 kept thumbnails inside the files table.
const THUMBNAILS_INSIDE_FILES: i64 = 1;
const THUMBNAILS_TABLE: &str = "CREATE TABLE thumbnails (
    file_id INTEGER PRIMARY KEY REFERENCES files (id) ON DELETE CASCADE,
    jpeg BLOB NOT NULL,
    width INTEGER NOT NULL,
    height INTEGER NOT NULL
)";
/// Copy-matching features (`duplicates::copies`), with the fingerprint of the content they
/// were made from. Made when first needed; an older lookalike ignores it, and its rows go
/// with their file.
const COPY_FEATURES_TABLE: &str = "CREATE TABLE IF NOT EXISTS copy_features (
    file_id INTEGER PRIMARY KEY REFERENCES files (id) ON DELETE CASCADE,
    fingerprint BLOB NOT NULL,
    data BLOB NOT NULL
)";
const FILE_NAME: &str = "index.sqlite3";
/// Rows asked for in one query by the bulk lookups: well under SQLite's limit of bound
/// parameters, and few enough statements to keep them all prepared.
const BULK: usize = 500;
/// How long a writer waits for another process's transaction before giving up.
const BUSY_TIMEOUT: Duration = Duration::from_secs(30);

/// Switches the file to write-ahead logging. SQLite answers "busy" at once, without its busy
/// handler, when another process holds the file while it is switched; that happens when two
/// lookalikes open a new index together, so the switch is tried again until `BUSY_TIMEOUT`.
fn enter_wal_mode(conn: &Connection) -> rusqlite::Result<()> {
    let deadline = Instant::now() + BUSY_TIMEOUT;
    loop {
        match conn.pragma_update(None, "journal_mode", "WAL") {
            Err(e)
                if e.sqlite_error_code() == Some(ErrorCode::DatabaseBusy)
                    && Instant::now() < deadline =>
            {
                std::thread::sleep(Duration::from_millis(10));
            }
            done => return done,
        }
    }
}

/// The platform's cache folder for lookalike.
pub fn default_cache_dir() -> Option<PathBuf> {
    directories::ProjectDirs::from("", "", "lookalike").map(|d| d.cache_dir().to_path_buf())
}

/// What opening the file found.
enum Opened {
    Ready(SqliteIndex),
    /// The file belongs to a newer lookalike: its schema version.
    Newer(i64),
}

/// An open SQLite index.
pub struct SqliteIndex {
    conn: Connection,
    path: PathBuf,
    /// Things the user should hear about, such as a damaged file that was moved aside.
    pub warnings: Vec<String>,
}

impl SqliteIndex {
    /// Opens (creating if needed) the index in `dir`. A damaged file is moved aside with a
    /// warning and a fresh one started. An index written by a newer lookalike is refused and
    /// left as it is, so that two installed versions never wipe each other's index.
    pub fn open(dir: &Path) -> Result<SqliteIndex> {
        std::fs::create_dir_all(dir).map_err(|e| index_error(dir, e))?;
        let path = dir.join(FILE_NAME);
        // SQLite deletes the `-wal` beside a file whose header it cannot read, so such a file
        // is moved aside (journal and all) before SQLite opens it.
        if let Some(reason) = foreign_header(&path) {
            return Self::rebuild(&path, &reason);
        }
        match Self::open_file(&path) {
            Ok(Opened::Ready(index)) => Ok(index),
            Ok(Opened::Newer(version)) => Err(newer_error(&path, version)),
            Err(e) if is_damage(&e) => Self::rebuild(&path, &e.to_string()),
            Err(e) => Err(index_error(&path, e)),
        }
    }

    /// Moves the damaged index at `path` aside and starts a fresh one, with a warning.
    fn rebuild(path: &Path, reason: &str) -> Result<SqliteIndex> {
        let aside = move_aside(path)?;
        let mut index = match Self::open_file(path) {
            Ok(Opened::Ready(index)) => index,
            Ok(Opened::Newer(version)) => return Err(newer_error(path, version)),
            Err(e) => return Err(index_error(path, e)),
        };
        index.warnings.push(format!(
            "the index at {} was damaged ({reason}); it was moved to {} and is being rebuilt",
            path.display(),
            aside.display()
        ));
        Ok(index)
    }

    fn open_file(path: &Path) -> rusqlite::Result<Opened> {
        let conn = Connection::open(path)?;
        conn.busy_timeout(BUSY_TIMEOUT)?;
        enter_wal_mode(&conn)?;
        conn.pragma_update(None, "synchronous", "NORMAL")?;
        conn.pragma_update(None, "foreign_keys", "ON")?;
        let index = SqliteIndex {
            conn,
            path: path.to_path_buf(),
            warnings: Vec::new(),
        };
        Ok(match index.migrate()? {
            Some(newer) => Opened::Newer(newer),
            None => Opened::Ready(index),
        })
    }

    /// The schema version stored in the file, if any.
    fn stored_version(&self) -> rusqlite::Result<Option<i64>> {
        self.conn
            .query_row(
                "SELECT value FROM meta WHERE key = 'schema_version'",
                [],
                |r| r.get(0),
            )
            .optional()
    }

    /// Creates the tables in a new file, or rebuilds those of an older schema version. Returns
    /// the version of a newer schema, which is left untouched.
    fn migrate(&self) -> rusqlite::Result<Option<i64>> {
        self.conn.execute_batch(
            "CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value INTEGER NOT NULL)",
        )?;
        if self.stored_version()? == Some(SCHEMA_VERSION) {
            return Ok(None);
        }
        // Decided again under the write lock: another process may have created the tables (or
        // a newer lookalike its own) since the version was read.
        self.conn.execute_batch("BEGIN IMMEDIATE")?;
        let decided = match self.stored_version() {
            Ok(Some(v)) if v >= SCHEMA_VERSION => Ok(Some(v)),
            Ok(Some(THUMBNAILS_INSIDE_FILES)) => self.move_thumbnails_out().map(|()| None),
            Ok(_) => self.create_tables().map(|()| None),
            Err(e) => Err(e),
        };
        match decided {
            Ok(newer) => {
                self.conn.execute_batch("COMMIT")?;
                if newer.is_none() {
                    self.give_back_free_pages();
                }
                Ok(newer.filter(|&v| v != SCHEMA_VERSION))
            }
            Err(e) => {
                let _ = self.conn.execute_batch("ROLLBACK");
                Err(e)
            }
        }
    }

    /// The tables of this schema version, replacing those of an older one (its vectors are
    /// made again).
    fn create_tables(&self) -> rusqlite::Result<()> {
        self.conn.execute_batch(&format!(
            "DROP TABLE IF EXISTS embeddings;
             DROP TABLE IF EXISTS copy_features;
             DROP TABLE IF EXISTS thumbnails;
             DROP TABLE IF EXISTS files;
             CREATE TABLE files (
                 id INTEGER PRIMARY KEY,
                 path BLOB NOT NULL UNIQUE,
                 size INTEGER NOT NULL,
                 mtime_ns INTEGER NOT NULL,
                 fingerprint BLOB NOT NULL,
                 width INTEGER,
                 height INTEGER,
                 error TEXT
             );
             CREATE INDEX files_by_fingerprint ON files (fingerprint);
             {THUMBNAILS_TABLE};
             CREATE TABLE embeddings (
                 file_id INTEGER NOT NULL REFERENCES files (id) ON DELETE CASCADE,
                 model TEXT NOT NULL,
                 revision TEXT NOT NULL,
                 vector BLOB NOT NULL,
                 top TEXT NOT NULL,
                 PRIMARY KEY (file_id, model)
             );
             INSERT OR REPLACE INTO meta (key, value) VALUES ('schema_version', {SCHEMA_VERSION});"
        ))
    }

    /// Moves a version 1 index's thumbnails into their own table, keeping every vector: the
    /// files table is rewritten without them, once.
    fn move_thumbnails_out(&self) -> rusqlite::Result<()> {
        self.conn.execute_batch(&format!(
            "{THUMBNAILS_TABLE};
             INSERT INTO thumbnails (file_id, jpeg, width, height)
                 SELECT id, thumbnail, thumb_width, thumb_height FROM files
                 WHERE thumbnail IS NOT NULL AND thumb_width IS NOT NULL AND thumb_height IS NOT NULL;
             ALTER TABLE files DROP COLUMN thumbnail;
             ALTER TABLE files DROP COLUMN thumb_width;
             ALTER TABLE files DROP COLUMN thumb_height;
             UPDATE meta SET value = {SCHEMA_VERSION} WHERE key = 'schema_version';"
        ))
    }

    /// Hands the pages a schema change freed back to the file system. Best effort: another
    /// process reading the index makes SQLite refuse, and the pages are then reused by later
    /// writes instead.
    fn give_back_free_pages(&self) {
        let free: i64 = (self.conn)
            .query_row("PRAGMA freelist_count", [], |r| r.get(0))
            .unwrap_or(0);
        if free > 0 {
            let _ = self.conn.execute_batch("VACUUM");
        }
    }

    /// Whether the copy-features table exists: an index written before them lacks it until
    /// the first features are kept (older versions of lookalike leave it alone).
    fn has_copy_features(&self) -> rusqlite::Result<bool> {
        self.conn.query_row(
            "SELECT EXISTS (SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'copy_features')",
            [],
            |r| r.get(0),
        )
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Names this index in an error that does not already name it, so that the user learns
    /// which file is busy, read-only or damaged.
    fn named<T>(&self, result: Result<T>) -> Result<T> {
        let shown = self.path.display().to_string();
        result.map_err(|e| match e {
            Error::Index(reason) if !reason.starts_with(&shown) => {
                Error::Index(format!("{shown}: {reason}"))
            }
            other => other,
        })
    }

    /// Checks the whole file; "ok" when sound.
    pub fn integrity_check(&self) -> Result<String> {
        Ok(self
            .conn
            .query_row("PRAGMA integrity_check", [], |r| r.get(0))?)
    }
}

impl Store for SqliteIndex {
    fn location(&self) -> String {
        self.path.display().to_string()
    }

    fn take_warnings(&mut self) -> Vec<String> {
        std::mem::take(&mut self.warnings)
    }

    fn lookup(&mut self, path: &Path) -> Result<Option<FileRow>> {
        let result = (|| -> Result<Option<FileRow>> {
            let mut stmt = self.conn.prepare_cached(
                "SELECT id, path, size, mtime_ns, fingerprint, error FROM files WHERE path = ?1",
            )?;
            Ok(stmt.query_row([path_key(path)], file_row).optional()?)
        })();
        self.named(result)
    }

    fn lookup_many(&mut self, paths: &[&Path]) -> Result<Vec<Option<FileRow>>> {
        let result = (|| -> Result<Vec<Option<FileRow>>> {
            let mut found = std::collections::HashMap::with_capacity(paths.len());
            for chunk in paths.chunks(BULK) {
                let sql = format!(
                    "SELECT id, path, size, mtime_ns, fingerprint, error FROM files WHERE path IN ({})",
                    placeholders(chunk.len())
                );
                let mut stmt = self.conn.prepare_cached(&sql)?;
                let keys = chunk.iter().map(|p| path_key(p));
                for row in stmt.query_map(rusqlite::params_from_iter(keys), file_row)? {
                    let row = row?;
                    found.insert(row.path.clone(), row);
                }
            }
            Ok(paths.iter().map(|p| found.remove(*p)).collect())
        })();
        self.named(result)
    }

    fn images(
        &mut self,
        file_ids: &[i64],
        model: ModelStamp<'_>,
    ) -> Result<Vec<Option<CachedImage>>> {
        let result = (|| -> Result<Vec<Option<CachedImage>>> {
            let mut found = std::collections::HashMap::with_capacity(file_ids.len());
            for chunk in file_ids.chunks(BULK) {
                let sql = format!(
                    "{} WHERE f.id IN ({}) AND e.model = ? AND e.revision = ? AND f.error IS NULL",
                    select_images(),
                    placeholders(chunk.len()),
                );
                let mut stmt = self.conn.prepare_cached(&sql)?;
                let ids = chunk.iter().map(|id| id as &dyn rusqlite::ToSql);
                let stamp: [&dyn rusqlite::ToSql; 2] = [&model.model, &model.revision];
                let args = rusqlite::params_from_iter(ids.chain(stamp));
                for row in stmt.query_map(args, stored_image)? {
                    let image = row?.checked(&self.path, model)?;
                    found.insert(image.file_id, image);
                }
            }
            Ok(file_ids.iter().map(|id| found.remove(id)).collect())
        })();
        self.named(result)
    }

    fn thumbnails(&mut self, paths: &[&Path]) -> Result<Vec<Option<Thumbnail>>> {
        let result = (|| -> Result<Vec<Option<Thumbnail>>> {
            let mut found = std::collections::HashMap::with_capacity(paths.len());
            for chunk in paths.chunks(BULK) {
                let sql = format!(
                    "SELECT f.path, t.jpeg, t.width, t.height FROM files f
                     JOIN thumbnails t ON t.file_id = f.id WHERE f.path IN ({})",
                    placeholders(chunk.len())
                );
                let mut stmt = self.conn.prepare_cached(&sql)?;
                let keys = chunk.iter().map(|p| path_key(p));
                let rows = stmt.query_map(rusqlite::params_from_iter(keys), |r| {
                    let (jpeg, width, height): (Vec<u8>, Option<i64>, Option<i64>) =
                        (r.get(1)?, r.get(2)?, r.get(3)?);
                    let stored =
                        Thumbnail::from_stored(jpeg, width.unwrap_or(0), height.unwrap_or(0));
                    Ok((key_path(r.get(0)?), stored))
                })?;
                for row in rows {
                    // A row whose sizes make no thumbnail is as good as none.
                    if let (path, Some(thumbnail)) = row? {
                        found.insert(path, thumbnail);
                    }
                }
            }
            Ok(paths.iter().map(|p| found.remove(*p)).collect())
        })();
        self.named(result)
    }

    fn find_moved(&mut self, fingerprint: &[u8], size: u64) -> Result<Option<FileRow>> {
        let result = (|| -> Result<Option<FileRow>> {
            let mut stmt = self.conn.prepare_cached(
                "SELECT id, path, size, mtime_ns, fingerprint, error FROM files WHERE fingerprint = ?1 AND size = ?2",
            )?;
            let rows = stmt.query_map(params![fingerprint, size as i64], file_row)?;
            for row in rows {
                let row = row?;
                if !row.path.exists() {
                    return Ok(Some(row));
                }
            }
            Ok(None)
        })();
        self.named(result)
    }

    fn update_location(&mut self, id: i64, path: &Path, size: u64, mtime_ns: i64) -> Result<()> {
        let result = (|| -> Result<()> {
            // A row already at the new path describes older content there; this one wins.
            let tx = self
                .conn
                .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
            tx.prepare_cached("DELETE FROM files WHERE path = ?1 AND id != ?2")?
                .execute(params![path_key(path), id])?;
            tx.prepare_cached(
                "UPDATE files SET path = ?2, size = ?3, mtime_ns = ?4 WHERE id = ?1",
            )?
            .execute(params![id, path_key(path), size as i64, mtime_ns])?;
            tx.commit()?;
            Ok(())
        })();
        self.named(result)
    }

    fn files_under(&mut self, dir: &Path) -> Result<Vec<FileRow>> {
        let result = (|| -> Result<Vec<FileRow>> {
            let mut stmt = self.conn.prepare_cached(
                "SELECT id, path, size, mtime_ns, fingerprint, error FROM files WHERE substr(path, 1, ?2) = ?1",
            )?;
            let prefix = dir_prefix(dir);
            let rows = stmt.query_map(params![prefix, prefix.len() as i64], file_row)?;
            Ok(rows.collect::<rusqlite::Result<Vec<_>>>()?)
        })();
        self.named(result)
    }

    fn images_under(&mut self, dir: &Path, model: ModelStamp<'_>) -> Result<Vec<CachedImage>> {
        let result = (|| -> Result<Vec<CachedImage>> {
            let mut stmt = self.conn.prepare_cached(&format!(
                "{} WHERE substr(f.path, 1, ?2) = ?1 AND e.model = ?3 AND e.revision = ?4 AND f.error IS NULL
                 ORDER BY f.path",
                select_images()
            ))?;
            let prefix = dir_prefix(dir);
            let rows = stmt.query_map(
                params![prefix, prefix.len() as i64, model.model, model.revision],
                stored_image,
            )?;
            let rows = rows.collect::<rusqlite::Result<Vec<_>>>()?;
            rows.into_iter()
                .map(|row| row.checked(&self.path, model))
                .collect()
        })();
        self.named(result)
    }

    /// Reads only each image's path and vector, one row at a time, and keeps only the best
    /// `limit`: memory for the results, not for the library's vectors or thumbnails.
    fn nearest(
        &mut self,
        dir: &Path,
        model: ModelStamp<'_>,
        query: &[f32],
        limit: Option<usize>,
        _exact: bool,
    ) -> Result<Vec<Match>> {
        let result = (|| -> Result<Vec<Match>> {
            let mut stmt = self.conn.prepare_cached(
                "SELECT f.path, e.vector FROM files f JOIN embeddings e ON e.file_id = f.id
                 WHERE substr(f.path, 1, ?2) = ?1 AND e.model = ?3 AND e.revision = ?4 AND f.error IS NULL",
            )?;
            let prefix = dir_prefix(dir);
            let mut rows = stmt.query(params![
                prefix,
                prefix.len() as i64,
                model.model,
                model.revision
            ])?;
            let mut best = TopScores::new(limit);
            let mut vector = Vec::with_capacity(model.dim);
            let shown = self.path.display().to_string();
            while let Some(row) = rows.next()? {
                let path = row.get_ref(0)?.as_blob().map_err(rusqlite::Error::from)?;
                let bytes = row.get_ref(1)?.as_blob().map_err(rusqlite::Error::from)?;
                let values = match bytes.len() % 4 {
                    0 => bytes.len() / 4,
                    _ => usize::MAX,
                };
                super::check_stored(&shown, &key_path(path.to_vec()), model, values)?;
                vector.clear();
                (bytes.chunks_exact(4))
                    .for_each(|b| vector.push(f32::from_le_bytes([b[0], b[1], b[2], b[3]])));
                best.offer(cosine(query, &vector), || path.to_vec());
            }
            Ok(best
                .into_best_first()
                .into_iter()
                .map(|(path, score)| Match {
                    path: key_path(path),
                    score,
                })
                .collect())
        })();
        self.named(result)
    }

    fn image(&mut self, file_id: i64, model: ModelStamp<'_>) -> Result<Option<CachedImage>> {
        let result = (|| -> Result<Option<CachedImage>> {
            let mut stmt = self.conn.prepare_cached(&format!(
                "{} WHERE f.id = ?1 AND e.model = ?2 AND e.revision = ?3 AND f.error IS NULL",
                select_images()
            ))?;
            let row = stmt
                .query_row(params![file_id, model.model, model.revision], stored_image)
                .optional()?;
            row.map(|row| row.checked(&self.path, model)).transpose()
        })();
        self.named(result)
    }

    fn store_batch(&mut self, model: ModelStamp<'_>, batch: &[Stored<'_>]) -> Result<()> {
        let result = (|| -> Result<()> {
            let tx = self
                .conn
                .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
            for stored in batch {
                let id = put_file(&tx, &stored.file)?;
                if let Some((vector, top)) = stored.embedding {
                    put_embedding(&tx, id, model, vector, top)?;
                }
            }
            tx.commit()?;
            Ok(())
        })();
        self.named(result)
    }

    fn copy_features(&mut self, paths: &[&Path]) -> Result<Vec<Option<Vec<u8>>>> {
        let result = (|| -> Result<Vec<Option<Vec<u8>>>> {
            if !self.has_copy_features()? {
                return Ok(vec![None; paths.len()]);
            }
            // The fingerprint ties the features to the content they were made from.
            let mut stmt = self.conn.prepare_cached(
                "SELECT c.data FROM files f JOIN copy_features c
                   ON c.file_id = f.id AND c.fingerprint = f.fingerprint
                 WHERE f.path = ?1",
            )?;
            let mut found = Vec::with_capacity(paths.len());
            for path in paths {
                found.push(stmt.query_row([path_key(path)], |r| r.get(0)).optional()?);
            }
            Ok(found)
        })();
        self.named(result)
    }

    fn store_copy_features(&mut self, features: &[(&Path, &[u8])]) -> Result<()> {
        let result = (|| -> Result<()> {
            let tx = self
                .conn
                .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
            tx.execute_batch(COPY_FEATURES_TABLE)?;
            let mut put = tx.prepare_cached(
                "INSERT OR REPLACE INTO copy_features (file_id, fingerprint, data)
                 SELECT id, fingerprint, ?2 FROM files WHERE path = ?1",
            )?;
            for (path, data) in features {
                put.execute(params![path_key(path), data])?;
            }
            drop(put);
            tx.commit()?;
            Ok(())
        })();
        self.named(result)
    }

    fn delete_files(&mut self, ids: &[i64]) -> Result<()> {
        let result = (|| -> Result<()> {
            let tx = self
                .conn
                .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
            for id in ids {
                tx.prepare_cached("DELETE FROM files WHERE id = ?1")?
                    .execute([id])?;
            }
            tx.commit()?;
            Ok(())
        })();
        self.named(result)
    }

    fn scan_start(&mut self) -> Result<ScanStart> {
        let last: i64 = self
            .conn
            .query_row("SELECT coalesce(max(id), 0) FROM files", [], |r| r.get(0))?;
        Ok(ScanStart(last))
    }

    /// Rows are told apart by id: a row another indexer added after `start` has a larger one.
    fn prune_files(&mut self, ids: &[i64], start: ScanStart) -> Result<usize> {
        let tx = self
            .conn
            .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
        let mut removed = 0;
        for id in ids.iter().filter(|&&id| id <= start.0) {
            removed += tx
                .prepare_cached("DELETE FROM files WHERE id = ?1")?
                .execute([id])?;
        }
        tx.commit()?;
        Ok(removed)
    }

    fn info(&mut self) -> Result<CacheInfo> {
        let result = (|| -> Result<CacheInfo> {
            let count = |sql: &str| -> Result<u64> {
                Ok(self.conn.query_row(sql, [], |r| r.get::<_, i64>(0))? as u64)
            };
            let files = count("SELECT count(*) FROM files WHERE error IS NULL")?;
            let failed = count("SELECT count(*) FROM files WHERE error IS NOT NULL")?;
            let mut stmt = self.conn.prepare("SELECT model || ' (' || revision || ')', count(*) FROM embeddings GROUP BY model, revision")?;
            let embeddings_by_model = stmt
                .query_map([], |r| {
                    Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)? as u64))
                })?
                .collect::<rusqlite::Result<Vec<_>>>()?;
            let bytes = ["", "-wal", "-shm"]
                .iter()
                .filter_map(|suffix| {
                    std::fs::metadata(format!("{}{suffix}", self.path.display())).ok()
                })
                .map(|m| m.len())
                .sum();
            Ok(CacheInfo {
                location: self.location(),
                bytes,
                files,
                failed,
                embeddings_by_model,
            })
        })();
        self.named(result)
    }
}

/// Inserts or replaces a file's row (dropping its old vectors if its content changed); returns
/// its id.
fn put_file(conn: &Connection, r: &FileRecord<'_>) -> Result<i64> {
    // An upsert keeps the row's id, so another process holding that id (say, a second indexer
    // that planned the same folder) still finds the file afterwards.
    let id: i64 = conn
        .prepare_cached(
            "INSERT INTO files (path, size, mtime_ns, fingerprint, width, height, error)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)
             ON CONFLICT (path) DO UPDATE SET
                 size = excluded.size, mtime_ns = excluded.mtime_ns, fingerprint = excluded.fingerprint,
                 width = excluded.width, height = excluded.height, error = excluded.error
             RETURNING id",
        )?
        .query_row(
            params![
                path_key(r.path),
                r.size as i64,
                r.mtime_ns,
                r.fingerprint,
                r.size_px.map(|s| s.0),
                r.size_px.map(|s| s.1),
                r.error,
            ],
            |row| row.get(0),
        )?;
    match r.thumbnail {
        Some(t) => conn
            .prepare_cached(
                "INSERT OR REPLACE INTO thumbnails (file_id, jpeg, width, height) VALUES (?1, ?2, ?3, ?4)",
            )?
            .execute(params![id, &t.jpeg, t.width, t.height])?,
        None => conn
            .prepare_cached("DELETE FROM thumbnails WHERE file_id = ?1")?
            .execute([id])?,
    };
    if r.content_changed {
        // New content: every model's old vector for this file is stale.
        conn.prepare_cached("DELETE FROM embeddings WHERE file_id = ?1")?
            .execute([id])?;
    }
    Ok(id)
}

fn put_embedding(
    conn: &Connection,
    file_id: i64,
    model: ModelStamp<'_>,
    vector: &[f32],
    top: &[Prediction],
) -> Result<()> {
    let bytes: Vec<u8> = vector.iter().flat_map(|v| v.to_le_bytes()).collect();
    let top = serde_json::to_string(top).map_err(|e| Error::Model(e.to_string()))?;
    conn.prepare_cached(
        "INSERT OR REPLACE INTO embeddings (file_id, model, revision, vector, top) VALUES (?1, ?2, ?3, ?4, ?5)",
    )?
    .execute(params![file_id, model.model, model.revision, bytes, top])?;
    Ok(())
}

/// Removes the index files in `dir`; returns how many bytes were freed.
pub fn clear(dir: &Path) -> Result<u64> {
    let mut freed = 0;
    for suffix in ["", "-wal", "-shm"] {
        let path = dir.join(format!("{FILE_NAME}{suffix}"));
        if let Ok(meta) = std::fs::metadata(&path) {
            std::fs::remove_file(&path).map_err(|e| index_error(&path, e))?;
            freed += meta.len();
        }
    }
    Ok(freed)
}

fn file_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<FileRow> {
    Ok(FileRow {
        id: r.get(0)?,
        path: key_path(r.get::<_, Vec<u8>>(1)?),
        size: r.get::<_, i64>(2)? as u64,
        mtime_ns: r.get(3)?,
        fingerprint: r.get(4)?,
        error: r.get(5)?,
    })
}

/// An image row as stored, before its vector and labels are checked.
struct StoredImage {
    image: CachedImage,
    vector: Vec<u8>,
    top: String,
}

impl StoredImage {
    /// The image, once its vector has the model's length and its labels can be read.
    fn checked(self, index: &Path, model: ModelStamp<'_>) -> Result<CachedImage> {
        let StoredImage { image, vector, top } = self;
        let shown = index.display().to_string();
        // Bytes that are not a whole number of values count as a wrong length too.
        let values = match vector.len() % 4 {
            0 => vector.len() / 4,
            _ => usize::MAX,
        };
        super::check_stored(&shown, &image.path, model, values)?;
        let embedding: Vec<f32> = vector
            .chunks_exact(4)
            .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
            .collect();
        let top = super::stored_labels(&shown, &image.path, serde_json::from_str(&top))?;
        Ok(CachedImage {
            embedding,
            top,
            ..image
        })
    }
}

/// The images the index serves, as [`stored_image`] reads them (`f` a file, `e` its vector,
/// `t` its thumbnail), for a `WHERE` to follow. Whether a thumbnail the app can show is kept
/// is told from its stored size and the blob's length, never from its bytes.
fn select_images() -> String {
    format!(
        "SELECT f.id, f.path, f.width, f.height,
             (t.width BETWEEN 1 AND {side} AND t.height BETWEEN 1 AND {side} AND length(t.jpeg) <= {bytes}),
             e.vector, e.top
         FROM files f JOIN embeddings e ON e.file_id = f.id
         LEFT JOIN thumbnails t ON t.file_id = f.id",
        side = crate::decode::THUMBNAIL_SIDE,
        bytes = crate::decode::MAX_THUMBNAIL_BYTES,
    )
}

/// An image row of [`select_images`]: id, path, width, height, whether it has a thumbnail,
/// vector, labels.
fn stored_image(r: &rusqlite::Row<'_>) -> rusqlite::Result<StoredImage> {
    let image = CachedImage {
        file_id: r.get(0)?,
        path: key_path(r.get::<_, Vec<u8>>(1)?),
        width: r.get::<_, Option<u32>>(2)?.unwrap_or(0),
        height: r.get::<_, Option<u32>>(3)?.unwrap_or(0),
        has_thumbnail: r.get::<_, Option<bool>>(4)?.unwrap_or(false),
        embedding: Vec::new(),
        top: Vec::new(),
    };
    Ok(StoredImage {
        image,
        vector: r.get(5)?,
        top: r.get(6)?,
    })
}

/// `?, ?, ...`: `count` bound parameters for an `IN` list.
fn placeholders(count: usize) -> String {
    vec!["?"; count].join(", ")
}

/// Paths are stored as their raw bytes, so names that are not UTF-8 survive.
#[cfg(unix)]
fn path_key(path: &Path) -> Vec<u8> {
    use std::os::unix::ffi::OsStrExt;
    path.as_os_str().as_bytes().to_vec()
}

#[cfg(unix)]
fn key_path(bytes: Vec<u8>) -> PathBuf {
    use std::os::unix::ffi::OsStringExt;
    PathBuf::from(std::ffi::OsString::from_vec(bytes))
}

#[cfg(not(unix))]
fn path_key(path: &Path) -> Vec<u8> {
    path.to_string_lossy().into_owned().into_bytes()
}

#[cfg(not(unix))]
fn key_path(bytes: Vec<u8>) -> PathBuf {
    PathBuf::from(String::from_utf8_lossy(&bytes).into_owned())
}

/// The stored prefix of every path inside `dir`, ending in a separator so that `/a/b` does
/// not match `/a/bc`.
fn dir_prefix(dir: &Path) -> Vec<u8> {
    let mut prefix = path_key(dir);
    let separator = std::path::MAIN_SEPARATOR as u8;
    if prefix.last() != Some(&separator) {
        prefix.push(separator);
    }
    prefix
}

/// Why the file at `path` is no SQLite database, judged by its header; None when it is one,
/// is empty (SQLite starts it afresh) or is not there.
fn foreign_header(path: &Path) -> Option<String> {
    use std::io::Read;
    const MAGIC: &[u8; 16] = b"SQLite format 3\0";
    let file = std::fs::File::open(path).ok()?;
    let mut header = Vec::with_capacity(MAGIC.len());
    file.take(MAGIC.len() as u64)
        .read_to_end(&mut header)
        .ok()?;
    match header.is_empty() || header == MAGIC {
        true => None,
        false => Some("its header is not that of an SQLite file".to_string()),
    }
}

fn is_damage(e: &rusqlite::Error) -> bool {
    matches!(
        e.sqlite_error_code(),
        Some(ErrorCode::DatabaseCorrupt | ErrorCode::NotADatabase)
    )
}

/// Renames a damaged index out of the way, with its `-wal` and `-shm` files beside it (the
/// write-ahead log may hold its latest writes, so the copy is only whole with them); returns
/// the new name.
fn move_aside(path: &Path) -> Result<PathBuf> {
    let stamp = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    let aside = path.with_extension(format!("sqlite3.damaged-{stamp}"));
    std::fs::rename(path, &aside).map_err(|e| index_error(path, e))?;
    for suffix in ["-wal", "-shm"] {
        let journal = PathBuf::from(format!("{}{suffix}", path.display()));
        if journal.exists() {
            let beside = PathBuf::from(format!("{}{suffix}", aside.display()));
            std::fs::rename(&journal, &beside).map_err(|e| index_error(&journal, e))?;
        }
    }
    Ok(aside)
}

/// The refusal of an index written by a newer lookalike.
fn newer_error(path: &Path, version: i64) -> Error {
    Error::Index(format!(
        "{}: this index was written by a newer lookalike (index version {version}; this one \
         reads version {SCHEMA_VERSION}). It is left as it is: use the newer lookalike, or \
         give this one an index folder of its own with --cache-dir",
        path.display()
    ))
}

fn index_error(path: &Path, e: impl std::fmt::Display) -> Error {
    Error::Index(format!("{}: {e}", path.display()))
}

impl From<rusqlite::Error> for Error {
    fn from(e: rusqlite::Error) -> Self {
        Error::Index(e.to_string())
    }
}
