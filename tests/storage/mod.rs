//! The two index backends, for tests that run against both: a SQLite file in a temporary
//! folder, and a fresh database on the test PostgreSQL server.
//!
//! The server's URL comes from `LOOKALIKE_TEST_POSTGRES` (scripts/test_postgres.sh and CI
//! start one). Without it a PostgreSQL test skips, saying so; but where `CI` is set it fails,
//! so that a missing server can never pass for a green run.
#![allow(dead_code)]

use std::ffi::OsString;
use std::path::Path;

use lookalike::index::{SqliteIndex, Store};

/// Where a test's index is.
pub enum Backend {
    Sqlite(tempfile::TempDir),
    Postgres(TestDatabase),
}

impl Backend {
    pub fn sqlite() -> Backend {
        Backend::Sqlite(tempfile::tempdir().unwrap())
    }

    /// A fresh database, or None (having said why) when no test server is configured.
    pub fn postgres() -> Option<Backend> {
        TestDatabase::create().map(Backend::Postgres)
    }

    pub fn name(&self) -> &'static str {
        match self {
            Backend::Sqlite(_) => "sqlite",
            Backend::Postgres(_) => "postgres",
        }
    }

    /// The command-line arguments that point lookalike at this index.
    pub fn args(&self) -> Vec<OsString> {
        match self {
            Backend::Sqlite(dir) => vec!["--cache-dir".into(), dir.path().into()],
            Backend::Postgres(db) => vec!["--db".into(), db.url.clone().into()],
        }
    }

    /// Opens the index for work on `folder`, as the app and the command line do.
    pub fn open(&self, folder: &Path) -> Box<dyn Store> {
        match self {
            Backend::Sqlite(dir) => Box::new(SqliteIndex::open(dir.path()).unwrap()),
            Backend::Postgres(db) => {
                let target = lookalike::index::postgres::Target::parse(&db.url, None).unwrap();
                Box::new(lookalike::index::postgres::PostgresIndex::open(&target, folder).unwrap())
            }
        }
    }

    /// Committed vectors, read as another process would see them.
    pub fn vectors(&self) -> u64 {
        match self {
            Backend::Sqlite(dir) => sqlite_count(&dir.path().join("index.sqlite3"), "embeddings"),
            Backend::Postgres(db) => db.count("lookalike_vectors_lite0"),
        }
    }

    /// Pictures whose keypoints (for the photo level of `duplicates`) are kept.
    pub fn kept_keypoints(&self) -> u64 {
        match self {
            Backend::Sqlite(dir) => {
                sqlite_count(&dir.path().join("index.sqlite3"), "copy_features")
            }
            Backend::Postgres(db) => db.count("lookalike_copy_features"),
        }
    }

    /// Image rows (read or failed), read as another process would see them.
    pub fn rows(&self) -> u64 {
        match self {
            Backend::Sqlite(dir) => sqlite_count(&dir.path().join("index.sqlite3"), "files"),
            Backend::Postgres(db) => db.count("lookalike_files"),
        }
    }

    /// Fails unless the index is sound: SQLite's integrity check; in PostgreSQL, no image
    /// stored twice and none half-written (a readable image without its vector).
    pub fn assert_sound(&self) {
        match self {
            Backend::Sqlite(dir) => {
                let index = SqliteIndex::open(dir.path()).unwrap();
                assert_eq!(index.integrity_check().unwrap(), "ok");
            }
            Backend::Postgres(db) => {
                let mut client = db.client();
                let doubled: i64 = client
                    .query_one(
                        "SELECT count(*) - count(DISTINCT (library, path)) FROM lookalike_files",
                        &[],
                    )
                    .unwrap()
                    .get(0);
                assert_eq!(doubled, 0, "an image is stored twice");
                let half: i64 = client
                    .query_one(
                        "SELECT count(*) FROM lookalike_files f WHERE f.error IS NULL AND NOT EXISTS
                         (SELECT 1 FROM lookalike_vectors_lite0 v WHERE v.file_id = f.id)",
                        &[],
                    )
                    .unwrap()
                    .get(0);
                assert_eq!(half, 0, "an image row without its vector was left behind");
            }
        }
    }
}

/// Rows of `table` in the SQLite index at `db`: 0 when the index or the table is not there
/// yet; any other failure (a damaged file, a busy database, a misspelt table) fails the test
/// rather than passing for "no rows".
fn sqlite_count(db: &Path, table: &str) -> u64 {
    if !db.exists() {
        return 0;
    }
    let conn =
        rusqlite::Connection::open_with_flags(db, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)
            .unwrap_or_else(|e| panic!("cannot open {}: {e}", db.display()));
    conn.busy_timeout(std::time::Duration::from_secs(10))
        .unwrap();
    let exists: bool = conn
        .query_row(
            "SELECT count(*) > 0 FROM sqlite_master WHERE type = 'table' AND name = ?1",
            [table],
            |r| r.get(0),
        )
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", db.display()));
    if !exists {
        return 0;
    }
    // The table name is one of this file's callers' constants, checked to exist above.
    let n: i64 = conn
        .query_row(&format!("SELECT count(*) FROM {table}"), [], |r| r.get(0))
        .unwrap_or_else(|e| panic!("cannot count {table} in {}: {e}", db.display()));
    n as u64
}

/// The test server's superuser URL, or None (having said why) when none is configured.
pub fn server_url() -> Option<String> {
    match std::env::var("LOOKALIKE_TEST_POSTGRES") {
        Ok(url) => Some(url),
        Err(_) if std::env::var_os("CI").is_some() => panic!(
            "CI is set but LOOKALIKE_TEST_POSTGRES is not: the PostgreSQL tests need the server \
             that .ci/run starts (scripts/test_postgres.sh)"
        ),
        Err(_) => {
            eprintln!(
                "skipped: no PostgreSQL test server (run the tests through scripts/test_postgres.sh)"
            );
            None
        }
    }
}

/// A database of its own for one test on the test server, dropped afterwards.
pub struct TestDatabase {
    /// The database's URL, password included.
    pub url: String,
    name: String,
    admin: String,
}

impl TestDatabase {
    pub fn create() -> Option<TestDatabase> {
        let admin = server_url()?;
        let name = format!(
            "lookalike_test_{}_{}",
            std::process::id(),
            NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
        );
        let mut client = postgres::Client::connect(&admin, postgres::NoTls).unwrap();
        // Identifiers cannot be bound parameters; this name is made above from numbers.
        client
            .batch_execute(&format!("CREATE DATABASE {name}"))
            .unwrap();
        let url = replace_database(&admin, &name);
        Some(TestDatabase { url, name, admin })
    }

    /// A client on this database.
    pub fn client(&self) -> postgres::Client {
        postgres::Client::connect(&self.url, postgres::NoTls).unwrap()
    }

    /// Rows of a catalogue view that match `condition` (both written by the test).
    pub fn count_where(&self, view: &str, condition: &str) -> u64 {
        let sql = format!("SELECT count(*) FROM {view} WHERE {condition}");
        let n: i64 = self.client().query_one(&sql, &[]).unwrap().get(0);
        n as u64
    }

    pub fn count(&self, table: &str) -> u64 {
        let mut client = self.client();
        let exists: bool = client
            .query_one("SELECT to_regclass($1) IS NOT NULL", &[&table])
            .unwrap()
            .get(0);
        if !exists {
            return 0;
        }
        let n: i64 = client
            .query_one(&format!("SELECT count(*) FROM {table}"), &[])
            .unwrap()
            .get(0);
        n as u64
    }
}

impl Drop for TestDatabase {
    fn drop(&mut self) {
        if let Ok(mut client) = postgres::Client::connect(&self.admin, postgres::NoTls) {
            let _ = client.batch_execute(&format!(
                "DROP DATABASE IF EXISTS {} WITH (FORCE)",
                self.name
            ));
        }
    }
}

static NEXT: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);

/// `url` with another database name.
pub fn replace_database(url: &str, name: &str) -> String {
    let (base, query) = url
        .split_once('?')
        .map_or((url, None), |(b, q)| (b, Some(q)));
    let cut = base.rfind('/').unwrap();
    let mut out = format!("{}/{name}", &base[..cut]);
    if let Some(query) = query {
        out = format!("{out}?{query}");
    }
    out
}
