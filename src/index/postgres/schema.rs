//! The tables of the shared index, created on first use and versioned, so that a later
//! lookalike can migrate them in place.
//!
//! - `lookalike_meta`: the schema version.
//! - `lookalike_files`: one row per image of a library (path relative to the library's folder,
//!   size, mtime, fingerprint, pixel size, JPEG thumbnail, or why it could not be read).
//! - `lookalike_models`: which vector table holds each model's vectors, and their length. The
//!   table's name is never read from there: it is made from the model id ([`VectorTable`]),
//!   so that whoever can write this table cannot make an indexer run SQL of their choosing.
//! - `lookalike_libraries` (since schema 2): the folders each library was opened from, so that
//!   indexing a folder inside a library keys its images from the library's folder, and prunes
//!   only that folder, instead of taking the folder for the whole library.
//! - `lookalike_copy_features`: per image, the keypoints the `photo` level of `duplicates`
//!   matches ([`crate::duplicates::copies::CopyFeatures`]), tied to the fingerprint of the
//!   content they were made from. Added to any schema without a version of its own: a
//!   lookalike that does not know the table leaves it alone, and rows go with their file.
//! - `lookalike_vectors_<model>`: per image, the model revision, the `vector(N)` embedding and
//!   the top labels (`jsonb`); its HNSW index for cosine distance is built once the table is
//!   large enough to need it (see [`build_search_index`]).

use postgres::Client;

/// The schema this lookalike writes. A database of an older version is migrated; one of a
/// newer version is refused rather than damaged.
pub const SCHEMA_VERSION: i64 = 2;

/// One number for the advisory lock that keeps two processes from creating tables at once.
const SCHEMA_LOCK: i64 = 0x6c6f_6f6b_616c_696b; // "lookalik"

/// Makes sure pgvector is there and the tables are of this version.
pub fn prepare(client: &mut Client) -> Result<(), String> {
    let describe = |e: postgres::Error| super::target::describe(&e);
    let mut tx = client.transaction().map_err(describe)?;
    // Two indexers starting at once must not both create the extension or the tables.
    tx.execute("SELECT pg_advisory_xact_lock($1)", &[&SCHEMA_LOCK])
        .map_err(describe)?;
    require_pgvector(&mut tx)?;
    tx.batch_execute(
        "CREATE TABLE IF NOT EXISTS lookalike_meta (key text PRIMARY KEY, value bigint NOT NULL)",
    )
    .map_err(describe)?;
    let version: Option<i64> = tx
        .query_opt(
            "SELECT value FROM lookalike_meta WHERE key = 'schema_version'",
            &[],
        )
        .map_err(describe)?
        .map(|row| row.try_get(0))
        .transpose()
        .map_err(describe)?;
    match version {
        Some(SCHEMA_VERSION) => add_copy_features(&mut tx).map_err(describe)?,
        Some(newer) if newer > SCHEMA_VERSION => {
            return Err(format!(
                "the index was written by a newer lookalike (schema {newer}; this one knows \
                 {SCHEMA_VERSION}): update lookalike"
            ))
        }
        // Schema 1 had no record of the libraries' folders: add it, keeping every row.
        Some(1) => {
            add_libraries(&mut tx).map_err(describe)?;
            add_copy_features(&mut tx).map_err(describe)?;
        }
        // Versions before 1 never existed.
        _ => {
            create_tables(&mut tx).map_err(describe)?;
            add_libraries(&mut tx).map_err(describe)?;
            add_copy_features(&mut tx).map_err(describe)?;
        }
    }
    tx.commit().map_err(describe)
}

/// The `vector` extension, added if this user may; otherwise a message saying what to do.
fn require_pgvector(client: &mut postgres::Transaction<'_>) -> Result<(), String> {
    let describe = |e: postgres::Error| super::target::describe(&e);
    let installed = client
        .query_opt("SELECT 1 FROM pg_extension WHERE extname = 'vector'", &[])
        .map_err(describe)?
        .is_some();
    if installed {
        return Ok(());
    }
    let available = client
        .query_opt(
            "SELECT 1 FROM pg_available_extensions WHERE name = 'vector'",
            &[],
        )
        .map_err(describe)?
        .is_some();
    if !available {
        return Err(
            "the server does not have the pgvector extension; install it \
                    (https://github.com/pgvector/pgvector), then run CREATE EXTENSION vector;"
                .to_string(),
        );
    }
    client
        .batch_execute("CREATE EXTENSION IF NOT EXISTS vector")
        .map_err(|e| {
            format!(
                "the database lacks the pgvector extension and this user may not add it ({}); \
                 ask an administrator to run CREATE EXTENSION vector; in this database",
                describe(e)
            )
        })
}

fn create_tables(tx: &mut postgres::Transaction<'_>) -> Result<(), postgres::Error> {
    tx.batch_execute(
        "CREATE TABLE lookalike_files (
             id bigserial PRIMARY KEY,
             library text NOT NULL,
             path bytea NOT NULL,
             path_text text NOT NULL,
             size bigint NOT NULL,
             mtime_ns bigint NOT NULL,
             fingerprint bytea NOT NULL,
             width integer,
             height integer,
             thumbnail bytea,
             thumb_width integer,
             thumb_height integer,
             error text,
             updated_at timestamptz NOT NULL DEFAULT now(),
             UNIQUE (library, path)
         );
         CREATE INDEX lookalike_files_by_fingerprint ON lookalike_files (library, fingerprint);
         CREATE TABLE lookalike_models (
             model text PRIMARY KEY,
             vectors text NOT NULL,
             dim integer NOT NULL
         );
         COMMENT ON COLUMN lookalike_files.path IS 'relative to the library''s folder, / between parts';
         COMMENT ON COLUMN lookalike_files.path_text IS 'path as text, for people and other tools';",
    )
}

/// Schema 2: the folders each library was opened from (on any machine), and the version.
fn add_libraries(tx: &mut postgres::Transaction<'_>) -> Result<(), postgres::Error> {
    tx.batch_execute(
        "CREATE TABLE IF NOT EXISTS lookalike_libraries (
             library text NOT NULL,
             root bytea NOT NULL,
             root_text text NOT NULL,
             PRIMARY KEY (library, root)
         );
         COMMENT ON TABLE lookalike_libraries IS 'folders a library was indexed from, as each machine sees it';",
    )?;
    tx.execute(
        "INSERT INTO lookalike_meta (key, value) VALUES ('schema_version', $1)
         ON CONFLICT (key) DO UPDATE SET value = excluded.value",
        &[&SCHEMA_VERSION],
    )?;
    Ok(())
}

/// The keypoints of the `photo` level, one row per image.
fn add_copy_features(tx: &mut postgres::Transaction<'_>) -> Result<(), postgres::Error> {
    tx.batch_execute(
        "CREATE TABLE IF NOT EXISTS lookalike_copy_features (
             file_id bigint PRIMARY KEY REFERENCES lookalike_files (id) ON DELETE CASCADE,
             fingerprint bytea NOT NULL,
             data bytea NOT NULL
         );
         COMMENT ON TABLE lookalike_copy_features IS 'keypoints for telling copies of a photo, per file content';",
    )
}

/// The vector table of one model, named from the model id alone: lowercase ASCII letters,
/// digits and `_`, so that the name is a plain identifier. Formatted into SQL only quoted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VectorTable {
    name: String,
}

impl VectorTable {
    /// The table of `model`, or why a table cannot be named after it.
    pub fn of(model: &str) -> Result<VectorTable, String> {
        let plain = !model.is_empty()
            && model.len() <= 40
            && model
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_');
        match plain {
            true => Ok(VectorTable {
                name: format!("lookalike_vectors_{model}"),
            }),
            false => Err(format!(
                "{model:?} is not a model id lookalike makes (lowercase letters, digits and _)"
            )),
        }
    }

    /// The table's name, as the catalogue and `lookalike_models` hold it.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The table's name as an SQL identifier.
    pub fn sql(&self) -> String {
        format!("\"{}\"", self.name)
    }

    /// The name of the table's HNSW index, as the catalogue holds it.
    pub fn search_index(&self) -> String {
        format!("{}_hnsw", self.name)
    }
}

/// HNSW indexes vectors of up to 2,000 numbers; longer ones are always searched exactly.
pub const HNSW_MAX_DIM: usize = 2000;

/// Builds the HNSW index of a vector table, without blocking other indexers' writes
/// (`CONCURRENTLY`). One process builds it: the others skip while it does. A build that died
/// halfway leaves an invalid index, which is dropped and built again.
pub fn build_search_index(client: &mut Client, table: &VectorTable) -> Result<(), postgres::Error> {
    let lock = SCHEMA_LOCK ^ xxhash_rust::xxh3::xxh3_64(table.name().as_bytes()) as i64;
    let mine: bool = client
        .query_one("SELECT pg_try_advisory_lock($1)", &[&lock])?
        .try_get(0)?;
    if !mine {
        return Ok(());
    }
    let index = table.search_index();
    let built = (|| {
        if search_index_state(client, &index)? == Some(false) {
            client.batch_execute(&format!("DROP INDEX CONCURRENTLY IF EXISTS \"{index}\""))?;
        }
        // The graph builds several times faster when it fits in memory.
        client.batch_execute("SET maintenance_work_mem = '1GB'")?;
        client.batch_execute(&format!(
            "CREATE INDEX CONCURRENTLY IF NOT EXISTS \"{index}\" ON {} USING hnsw (embedding vector_cosine_ops)",
            table.sql()
        ))?;
        client.batch_execute("RESET maintenance_work_mem")
    })();
    client.execute("SELECT pg_advisory_unlock($1)", &[&lock])?;
    built
}

/// Whether the index exists (None), and if so whether it is ready to use.
pub fn search_index_state(
    client: &mut Client,
    index: &str,
) -> Result<Option<bool>, postgres::Error> {
    let row = client.query_opt(
        "SELECT i.indisvalid FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid WHERE c.relname = $1",
        &[&index],
    )?;
    row.map(|r| r.try_get(0)).transpose()
}

/// The longest vectors pgvector's `vector` type holds.
pub const MAX_DIM: usize = 16_000;

/// Creates the vector table of `model` (a built-in model id) for vectors of `dim` numbers;
/// returns it.
pub fn create_model_table(
    client: &mut Client,
    model: &str,
    dim: usize,
) -> Result<VectorTable, String> {
    let table = VectorTable::of(model)?;
    if dim == 0 || dim > MAX_DIM {
        return Err(format!(
            "cannot make a vector table for model {model} of {dim} numbers"
        ));
    }
    let describe = |e: postgres::Error| super::target::describe(&e);
    let mut tx = client.transaction().map_err(describe)?;
    tx.execute("SELECT pg_advisory_xact_lock($1)", &[&SCHEMA_LOCK])
        .map_err(describe)?;
    tx.batch_execute(&format!(
        "CREATE TABLE IF NOT EXISTS {} (
             file_id bigint PRIMARY KEY REFERENCES lookalike_files (id) ON DELETE CASCADE,
             revision text NOT NULL,
             embedding vector({dim}) NOT NULL,
             top jsonb NOT NULL
         )",
        table.sql()
    ))
    .map_err(describe)?;
    tx.execute(
        "INSERT INTO lookalike_models (model, vectors, dim) VALUES ($1, $2, $3)
         ON CONFLICT (model) DO NOTHING",
        &[&model, &table.name(), &(dim as i32)],
    )
    .map_err(describe)?;
    tx.commit().map_err(describe)?;
    Ok(table)
}
