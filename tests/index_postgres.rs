//! What only the shared index does: libraries keyed by name across mount points, the same
//! ranking as SQLite, TLS, passwords that never show, bound parameters, a server that lacks
//! pgvector, a newer schema, and a connection lost mid-run. The scenarios common to both
//! backends are in tests/index.rs. These tests skip without a test server, except in CI.

mod seeds;
mod storage;

use std::path::Path;
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use serde_json::Value;
use storage::{replace_database, Backend, TestDatabase};

fn lookalike() -> Command {
    Command::new(env!("CARGO_BIN_EXE_lookalike"))
}

fn index_with(dir: &Path, db: &str, extra: &[&str]) -> Output {
    lookalike()
        .args(["index", "--json"])
        .arg(dir)
        .args(["--db", db])
        .args(extra)
        .env_remove("PGPASSWORD")
        .env_remove("LOOKALIKE_DB")
        .output()
        .unwrap()
}

fn report(out: &Output) -> Value {
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

fn seed_folder(names: &[&str]) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    for name in names {
        std::fs::copy(seeds::seed(name), dir.path().join(name)).unwrap();
    }
    dir
}

/// The password part of a URL (`user:PASSWORD@`).
fn password_of(url: &str) -> String {
    let userinfo = url.split("://").nth(1).unwrap().split('@').next().unwrap();
    userinfo.split_once(':').unwrap().1.to_string()
}

fn without_password(url: &str) -> String {
    url.replacen(&format!(":{}@", password_of(url)), "@", 1)
}

fn text(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

#[test]
fn machines_that_mount_a_library_at_different_paths_share_its_vectors() {
    let Some(db) = TestDatabase::create() else {
        return;
    };
    let first = seed_folder(&["Tiger.jpg", "bird01.jpg", "elephant.jpg"]);
    std::fs::create_dir(first.path().join("sub")).unwrap();
    std::fs::copy(seeds::seed("style.jpg"), first.path().join("sub/style.jpg")).unwrap();
    let shared = ["--library", "team photos"];
    assert_eq!(
        report(&index_with(first.path(), &db.url, &shared))["new"],
        4
    );
    // A folder inside the library, named with the library's folder: its rows, and only its.
    let root = first.path().to_str().unwrap();
    let inside = ["--library", "team photos", "--library-root", root];
    let sub = report(&index_with(&first.path().join("sub"), &db.url, &inside));
    assert_eq!(
        (
            sub["images"].as_u64(),
            sub["unchanged"].as_u64(),
            sub["removed"].as_u64()
        ),
        (Some(1), Some(1), Some(0))
    );
    // The same share seen from another machine: another path, same files.
    let second = tempfile::tempdir().unwrap();
    let mounted = second.path().join("mnt/nas");
    std::fs::create_dir_all(&mounted).unwrap();
    copy_tree(first.path(), &mounted);
    let again = report(&index_with(&mounted, &db.url, &shared));
    assert_eq!(
        (again["new"].as_u64(), again["unchanged"].as_u64()),
        (Some(0), Some(4))
    );
    // A library of another name is another set of rows.
    let other = report(&index_with(&mounted, &db.url, &["--library", "mine"]));
    assert_eq!(other["new"], 4);
    let mut client = db.client();
    let rows = client
        .query(
            "SELECT library, path_text FROM lookalike_files ORDER BY library, path_text",
            &[],
        )
        .unwrap();
    let stored: Vec<(String, String)> = rows.iter().map(|r| (r.get(0), r.get(1))).collect();
    assert_eq!(stored.len(), 8);
    assert!(stored.contains(&("team photos".into(), "sub/style.jpg".into())));
}

fn copy_tree(from: &Path, to: &Path) {
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            std::fs::create_dir(&target).unwrap();
            copy_tree(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), &target).unwrap();
            let modified = entry.metadata().unwrap().modified().unwrap();
            let file = std::fs::File::options().write(true).open(&target).unwrap();
            file.set_modified(modified).unwrap();
        }
    }
}

/// `similar --db` ranks the tutorial's images as the SQLite index does, with the same scores.
#[test]
fn similar_ranks_the_tutorial_images_as_sqlite_does() {
    let Some(postgres) = Backend::postgres() else {
        return;
    };
    let sqlite = Backend::sqlite();
    let dir = seeds::seed_dir();
    let query = seeds::seed("Tiger.jpg");
    let ranking = |backend: &Backend, extra: &[&str]| -> Vec<(String, f64)> {
        let out = lookalike()
            .args(["similar", "--json"])
            .arg(&query)
            .args(backend.args())
            .args(extra)
            .output()
            .unwrap();
        assert!(out.status.success(), "{}", text(&out));
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .map(|line| {
                let v: Value = serde_json::from_str(line).unwrap();
                (
                    v["file"].as_str().unwrap().to_string(),
                    v["score"].as_f64().unwrap(),
                )
            })
            .collect()
    };
    let expected = ranking(&sqlite, &[]);
    let shared = ranking(&postgres, &[]);
    assert_eq!(expected.len(), 8, "every image but the query: {expected:?}");
    assert_eq!(
        shared.iter().map(|r| &r.0).collect::<Vec<_>>(),
        expected.iter().map(|r| &r.0).collect::<Vec<_>>()
    );
    for (a, b) in shared.iter().zip(&expected) {
        assert!((a.1 - b.1).abs() < 1e-5, "{a:?} against {b:?}");
    }
    // Without scanning, from the index alone, and cut to the best three.
    let top = ranking(&postgres, &["--no-scan", "--top", "3"]);
    assert_eq!(
        top.iter().map(|r| &r.0).collect::<Vec<_>>(),
        expected[..3].iter().map(|r| &r.0).collect::<Vec<_>>()
    );
    let _ = dir;
}

#[test]
fn tls_with_a_trusted_ca_works_and_an_unknown_certificate_is_refused() {
    let Some(db) = TestDatabase::create() else {
        return;
    };
    let (Ok(tls), Ok(ca), Ok(other_ca)) = (
        std::env::var("LOOKALIKE_TEST_POSTGRES_TLS"),
        std::env::var("LOOKALIKE_TEST_POSTGRES_CA"),
        std::env::var("LOOKALIKE_TEST_POSTGRES_OTHER_CA"),
    ) else {
        panic!("the test server runs with TLS: use scripts/test_postgres.sh");
    };
    let tls = replace_database(&tls, db.url.rsplit('/').next().unwrap());
    let dir = seed_folder(&["Tiger.jpg"]);
    let trusted = format!("{tls}?sslmode=verify-full&sslrootcert={ca}");
    assert_eq!(report(&index_with(dir.path(), &trusted, &[]))["new"], 1);
    let encrypted = format!("{tls}?sslmode=require");
    assert_eq!(
        report(&index_with(dir.path(), &encrypted, &[]))["unchanged"],
        1
    );

    let unknown = format!("{tls}?sslmode=verify-full&sslrootcert={other_ca}");
    let out = index_with(dir.path(), &unknown, &[]);
    assert!(!out.status.success());
    let said = text(&out);
    assert!(
        said.contains("certificate") || said.contains("UnknownIssuer"),
        "{said}"
    );
    assert!(!said.contains(&password_of(&tls)), "{said}");
    // Without a CA, verify-full says what is missing instead of trusting anyone.
    let out = index_with(dir.path(), &format!("{tls}?sslmode=verify-full"), &[]);
    assert!(!out.status.success());
    assert!(text(&out).contains("sslrootcert"), "{}", text(&out));
}

#[test]
fn a_password_is_taken_from_pgpassword_or_pgpass_and_never_shown() {
    let Some(db) = TestDatabase::create() else {
        return;
    };
    let password = password_of(&db.url);
    let bare = without_password(&db.url);
    let dir = seed_folder(&["Tiger.jpg"]);
    let out = lookalike()
        .args(["index", "--json"])
        .arg(dir.path())
        .args(["--db", &bare])
        .env("PGPASSWORD", &password)
        .output()
        .unwrap();
    assert_eq!(report(&out)["new"], 1);

    let home = tempfile::tempdir().unwrap();
    let pgpass = home.path().join("pgpass");
    std::fs::write(
        &pgpass,
        format!("# for the tests\n127.0.0.1:*:*:lookalike:{password}\n"),
    )
    .unwrap();
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&pgpass, std::fs::Permissions::from_mode(0o600)).unwrap();
    }
    let out = lookalike()
        .args(["cache", "info", "--json", "--db", &bare])
        .env_remove("PGPASSWORD")
        .env("PGPASSFILE", &pgpass)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out));
    let info: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(info["files"], 1);

    // The password in the URL shows nowhere: not in cache info, not in errors.
    let info = lookalike()
        .args(["cache", "info", "--db", &db.url])
        .output()
        .unwrap();
    assert!(info.status.success());
    let missing_db = replace_database(&db.url, "no_such_database");
    let failed = index_with(dir.path(), &missing_db, &[]);
    assert!(!failed.status.success());
    let wrong = db.url.replacen(&password, "wrong-password", 1);
    let refused = index_with(dir.path(), &wrong, &[]);
    assert!(!refused.status.success());
    assert!(
        text(&refused).contains("password authentication failed"),
        "{}",
        text(&refused)
    );
    let env_only = lookalike()
        .args(["cache", "info", "--help"])
        .env("LOOKALIKE_DB", &db.url)
        .output()
        .unwrap();
    for out in [&info, &failed, &env_only] {
        assert!(!text(out).contains(&password), "{}", text(out));
    }
    assert!(text(&info).contains(&bare), "{}", text(&info));
}

#[test]
fn names_with_quotes_and_sql_in_them_are_stored_as_they_are() {
    let Some(db) = TestDatabase::create() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let odd = "it's \"quoted\"; DROP TABLE lookalike_files; --.jpg";
    std::fs::copy(seeds::seed("Tiger.jpg"), dir.path().join(odd)).unwrap();
    let library = "Ann's photos'); DELETE FROM lookalike_files; --";
    assert_eq!(
        report(&index_with(dir.path(), &db.url, &["--library", library]))["new"],
        1
    );
    assert_eq!(
        report(&index_with(dir.path(), &db.url, &["--library", library]))["unchanged"],
        1
    );
    let mut client = db.client();
    let row = client
        .query_one("SELECT library, path_text FROM lookalike_files", &[])
        .unwrap();
    assert_eq!(
        (row.get::<_, String>(0), row.get::<_, String>(1)),
        (library.to_string(), odd.to_string())
    );
}

#[test]
fn a_server_without_pgvector_for_this_user_gets_a_clear_error() {
    let Some(db) = TestDatabase::create() else {
        return;
    };
    // A user who may not create extensions, in a database where nobody created pgvector.
    let mut admin = db.client();
    let role = format!("plain_{}", std::process::id());
    admin
        .batch_execute(&format!(
            "CREATE ROLE {role} LOGIN PASSWORD 'plain-pw'; GRANT ALL ON SCHEMA public TO {role};"
        ))
        .unwrap();
    let url = db.url.replacen(
        &format!("lookalike:{}@", password_of(&db.url)),
        &format!("{role}:plain-pw@"),
        1,
    );
    let dir = seed_folder(&["Tiger.jpg"]);
    let out = index_with(dir.path(), &url, &[]);
    assert!(!out.status.success());
    assert!(
        text(&out).contains("CREATE EXTENSION vector"),
        "{}",
        text(&out)
    );
    admin
        .batch_execute(&format!("DROP OWNED BY {role}; DROP ROLE {role}"))
        .unwrap();
}

#[test]
fn an_index_from_a_newer_lookalike_is_refused_not_damaged() {
    let Some(db) = TestDatabase::create() else {
        return;
    };
    let dir = seed_folder(&["Tiger.jpg"]);
    report(&index_with(dir.path(), &db.url, &[]));
    let mut client = db.client();
    client
        .execute(
            "UPDATE lookalike_meta SET value = 99 WHERE key = 'schema_version'",
            &[],
        )
        .unwrap();
    let out = index_with(dir.path(), &db.url, &[]);
    assert!(!out.status.success());
    assert!(text(&out).contains("newer lookalike"), "{}", text(&out));
    let rows: i64 = client
        .query_one("SELECT count(*) FROM lookalike_files", &[])
        .unwrap()
        .get(0);
    assert_eq!(rows, 1, "nothing was dropped");
}

#[test]
fn an_unreachable_server_gets_a_clear_error_naming_it_without_the_password() {
    let Some(url) = storage::server_url() else {
        return;
    };
    // A port nothing listens on.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let host = url.split('@').nth(1).unwrap().split('/').next().unwrap();
    let nowhere = url.replacen(host, &format!("127.0.0.1:{port}"), 1);
    let dir = seed_folder(&["Tiger.jpg"]);
    let out = index_with(dir.path(), &nowhere, &[]);
    assert!(!out.status.success());
    let said = text(&out);
    assert!(
        said.contains(&format!("127.0.0.1:{port}")) && said.contains("cannot connect"),
        "{said}"
    );
    assert!(!said.contains(&password_of(&url)), "{said}");
    assert!(!said.contains("panicked"), "{said}");
}

/// The server drops the indexer's connection mid-run (as a restart does): the run stops with
/// a clear error, nothing half-written is left, and the next run carries on.
#[test]
fn a_dropped_connection_stops_the_run_cleanly_and_the_next_run_carries_on() {
    let Some(backend) = Backend::postgres() else {
        return;
    };
    let Backend::Postgres(db) = &backend else {
        unreachable!()
    };
    connection_lost_mid_run(&backend, &db.url, || {
        db.client()
            .execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity
                 WHERE application_name = 'lookalike' AND datname = current_database()",
                &[],
            )
            .unwrap();
    });
}

/// The network drops the indexer's connection mid-run, so that its socket is reset rather than
/// closed by the server: the run stops saying it lost the connection, nothing half-written is
/// left, and the next run carries on.
#[test]
fn a_connection_reset_mid_run_stops_the_run_cleanly_and_the_next_run_carries_on() {
    let Some(backend) = Backend::postgres() else {
        return;
    };
    let Backend::Postgres(db) = &backend else {
        unreachable!()
    };
    let relay = Relay::to(&db.url);
    connection_lost_mid_run(&backend, &relay.url, || relay.reset_all());
}

/// Indexes 40 pictures into `backend`'s database through `url`, calls `cut` once the first
/// batch is committed, and checks that the run fails saying it lost the connection (never
/// showing the password), that nothing half-written is left, and that the next run, straight
/// to the database, finishes the folder.
fn connection_lost_mid_run(backend: &Backend, url: &str, cut: impl FnOnce()) {
    let Backend::Postgres(db) = backend else {
        unreachable!()
    };
    let dir = forty_pictures();
    let child = lookalike()
        .args(["index", "--batch", "2", "--db", url])
        .arg(dir.path())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let start = Instant::now();
    while backend.vectors() == 0 {
        assert!(
            start.elapsed() < Duration::from_secs(120),
            "nothing was committed"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    cut();
    let out = child.wait_with_output().unwrap();
    let said = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success(),
        "the run does not pretend it stored everything: {said}"
    );
    // However the drop reaches it (the server's farewell, a closed socket or a reset one).
    assert!(
        said.contains("lost the connection to postgres://")
            && !said.contains(&password_of(&db.url))
            && !said.contains("panicked"),
        "{said}"
    );
    backend.assert_sound();
    let next = report(&index_with(dir.path(), &db.url, &[]));
    assert_eq!(next["images"], 40);
    assert_eq!(backend.rows(), 40);
    backend.assert_sound();
}

/// A folder of 40 small JPEGs, each different: enough batches of 2 for a run to be stopped
/// midway.
fn forty_pictures() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    for i in 0..40u32 {
        let img = image::RgbImage::from_fn(80, 60, |x, y| {
            image::Rgb([(x * 3 + i * 7) as u8, (y * 4 + i * 11) as u8, i as u8])
        });
        img.save(dir.path().join(format!("photo{i:02}.jpg")))
            .unwrap();
    }
    dir
}

/// Forwards connections to the test server, and resets them on demand as a broken network
/// does: the indexer's socket gets a TCP reset, not the server's goodbye.
struct Relay {
    url: String,
    clients: std::sync::Arc<std::sync::Mutex<Vec<std::net::TcpStream>>>,
}

impl Relay {
    fn to(server_url: &str) -> Relay {
        let server = server_url
            .split('@')
            .nth(1)
            .unwrap()
            .split('/')
            .next()
            .unwrap();
        let server = server.to_string();
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let url = server_url.replacen(&server, &listener.local_addr().unwrap().to_string(), 1);
        let clients = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let kept = clients.clone();
        std::thread::spawn(move || {
            for client in listener.incoming().map_while(Result::ok) {
                let upstream = std::net::TcpStream::connect(&server).unwrap();
                kept.lock().unwrap().push(client.try_clone().unwrap());
                pipe(client.try_clone().unwrap(), upstream.try_clone().unwrap());
                pipe(upstream, client);
            }
        });
        Relay { url, clients }
    }

    /// Resets every connection so far: with SO_LINGER at zero, closing the last handle on
    /// a socket sends a reset. Shutting down its reading ends the forwarding threads, which
    /// drop their handles.
    fn reset_all(&self) {
        for client in self.clients.lock().unwrap().drain(..) {
            socket2::SockRef::from(&client)
                .set_linger(Some(Duration::ZERO))
                .unwrap();
            let _ = client.shutdown(std::net::Shutdown::Read);
        }
    }
}

/// Copies `from` to `to` on a thread of its own until either end stops, then shuts `to`'s
/// reading, so that the thread copying the other way stops too.
fn pipe(mut from: std::net::TcpStream, mut to: std::net::TcpStream) {
    std::thread::spawn(move || {
        let _ = std::io::copy(&mut from, &mut to);
        let _ = to.shutdown(std::net::Shutdown::Read);
    });
}

/// kill -9 of one of two indexers: the other finishes the folder, taking over what the killed
/// one had claimed.
#[test]
fn when_one_of_two_indexers_is_killed_the_other_carries_on() {
    let Some(backend) = Backend::postgres() else {
        return;
    };
    let dir = forty_pictures();
    let spawn = || {
        lookalike()
            .args(["index", "--json", "--batch", "2"])
            .arg(dir.path())
            .args(backend.args())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap()
    };
    let mut doomed = spawn();
    let survivor = spawn();
    let start = Instant::now();
    while backend.vectors() < 4 {
        assert!(
            start.elapsed() < Duration::from_secs(120),
            "nothing was committed"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    doomed.kill().unwrap();
    doomed.wait().unwrap();
    let out = survivor.wait_with_output().unwrap();
    assert_eq!(report(&out)["images"], 40);
    assert_eq!(backend.rows(), 40);
    assert_eq!(backend.vectors(), 40);
    backend.assert_sound();
}

/// A library past the threshold gets its HNSW index at the end of the run that took it there,
/// and is then searched through it, finding what the exact search finds.
#[test]
fn a_large_library_gets_a_search_index_and_is_searched_through_it() {
    use lookalike::index::postgres::{PostgresIndex, Target, HNSW_FROM};
    use lookalike::index::{FileRecord, ModelStamp, Store, Stored};
    let Some(db) = TestDatabase::create() else {
        return;
    };
    let root = tempfile::tempdir().unwrap();
    let mut index =
        PostgresIndex::open(&Target::parse(&db.url, None).unwrap(), root.path()).unwrap();
    // Short vectors, so that the test stores twenty thousand quickly.
    let dim = 8;
    let stamp = ModelStamp {
        model: "small",
        revision: "r1",
        dim,
    };
    let count = HNSW_FROM as usize;
    let mut state = 0x9E37_79B9_7F4A_7C15u64;
    let mut random = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        (state >> 40) as f32 / (1u64 << 24) as f32 - 0.5
    };
    let vectors: Vec<Vec<f32>> = (0..count)
        .map(|_| (0..dim).map(|_| random()).collect())
        .collect();
    let paths: Vec<_> = (0..count)
        .map(|i| root.path().join(format!("p{i:05}.jpg")))
        .collect();
    let fingerprints: Vec<[u8; 8]> = (0..count as u64).map(u64::to_le_bytes).collect();
    let index_ready = |db: &TestDatabase| {
        db.count_where("pg_indexes", "indexname = 'lookalike_vectors_small_hnsw'")
    };
    for start in (0..count).step_by(2000) {
        let batch: Vec<Stored<'_>> = (start..start + 2000)
            .map(|i| Stored {
                file: FileRecord {
                    path: &paths[i],
                    size: 1,
                    mtime_ns: 0,
                    fingerprint: &fingerprints[i],
                    size_px: Some((1, 1)),
                    thumbnail: None,
                    error: None,
                    content_changed: false,
                },
                embedding: Some((&vectors[i], &[])),
            })
            .collect();
        index.store_batch(stamp, &batch).unwrap();
        if start == 0 {
            index.tidy(stamp).unwrap();
            assert_eq!(index_ready(&db), 0, "no search index for a small library");
        }
    }
    index.tidy(stamp).unwrap();
    assert_eq!(index_ready(&db), 1, "built once the library is large");
    let mut found = 0;
    for q in 0..20 {
        let query = &vectors[q * 997];
        let exact = index
            .nearest(root.path(), stamp, query, Some(10), true)
            .unwrap();
        let approximate = index
            .nearest(root.path(), stamp, query, Some(10), false)
            .unwrap();
        assert_eq!(approximate.len(), 10);
        assert!(
            approximate.windows(2).all(|w| w[0].score >= w[1].score),
            "best first"
        );
        found += approximate.iter().filter(|m| exact.contains(m)).count();
    }
    assert!(found >= 190, "recall@10 of the HNSW search: {found} of 200");
    // The searches went through the index (statistics arrive within a second or so).
    let start = Instant::now();
    let scanned = "indexrelname = 'lookalike_vectors_small_hnsw' AND idx_scan > 0";
    while db.count_where("pg_stat_user_indexes", scanned) == 0 {
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "the HNSW index was never used"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// A damaged index: a column changed by hand. Every run reports it; nothing panics.
#[test]
fn a_table_altered_by_hand_gives_errors_not_a_crash() {
    let Some(db) = TestDatabase::create() else {
        return;
    };
    let dir = seed_folder(&["Tiger.jpg", "bird01.jpg"]);
    report(&index_with(dir.path(), &db.url, &[]));
    db.client()
        .batch_execute("ALTER TABLE lookalike_files ALTER COLUMN size TYPE text")
        .unwrap();
    for command in ["index", "similar"] {
        let target = match command {
            "index" => dir.path().to_path_buf(),
            _ => dir.path().join("Tiger.jpg"),
        };
        let out = lookalike()
            .arg(command)
            .arg(&target)
            .args(["--db", &db.url])
            .output()
            .unwrap();
        let said = text(&out);
        assert!(!said.contains("panicked"), "{said}");
        assert!(
            said.contains("unexpected data in the index"),
            "{command}: {said}"
        );
    }
}

/// `index --library family /photos/2024` works on 2024 alone: its images keep the keys they
/// have from the library's folder, and only 2024's rows can be pruned. Today's other machines
/// lose nothing of 2023.
#[test]
fn indexing_a_folder_inside_a_library_keeps_the_rest_of_the_library() {
    let Some(db) = TestDatabase::create() else {
        return;
    };
    let root = tempfile::tempdir().unwrap();
    for (year, name) in [
        ("2023", "Tiger.jpg"),
        ("2024", "bird01.jpg"),
        ("2024", "elephant.jpg"),
    ] {
        std::fs::create_dir_all(root.path().join(year)).unwrap();
        std::fs::copy(seeds::seed(name), root.path().join(year).join(name)).unwrap();
    }
    let family = ["--library", "family"];
    assert_eq!(report(&index_with(root.path(), &db.url, &family))["new"], 3);
    let year = root.path().join("2024");
    let again = report(&index_with(&year, &db.url, &family));
    let seen = ["images", "unchanged", "new", "removed"].map(|k| again[k].as_u64());
    assert_eq!(seen, [Some(2), Some(2), Some(0), Some(0)], "{again}");
    std::fs::remove_file(year.join("elephant.jpg")).unwrap();
    let pruned = report(&index_with(&year, &db.url, &family));
    assert_eq!(pruned["removed"], 1, "{pruned}");
    let stored: Vec<String> = db
        .client()
        .query(
            "SELECT path_text FROM lookalike_files WHERE library = 'family' ORDER BY path_text",
            &[],
        )
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    assert_eq!(stored, ["2023/Tiger.jpg", "2024/bird01.jpg"]);
}

/// The tables of schema 1, as lookalike 0.1 made them.
const SCHEMA_1: &str = "
    CREATE EXTENSION IF NOT EXISTS vector;
    CREATE TABLE lookalike_meta (key text PRIMARY KEY, value bigint NOT NULL);
    CREATE TABLE lookalike_files (
        id bigserial PRIMARY KEY, library text NOT NULL, path bytea NOT NULL,
        path_text text NOT NULL, size bigint NOT NULL, mtime_ns bigint NOT NULL,
        fingerprint bytea NOT NULL, width integer, height integer, thumbnail bytea,
        thumb_width integer, thumb_height integer, error text,
        updated_at timestamptz NOT NULL DEFAULT now(), UNIQUE (library, path));
    CREATE INDEX lookalike_files_by_fingerprint ON lookalike_files (library, fingerprint);
    CREATE TABLE lookalike_models (model text PRIMARY KEY, vectors text NOT NULL, dim integer NOT NULL);
    INSERT INTO lookalike_meta VALUES ('schema_version', 1);
    INSERT INTO lookalike_files (id, library, path, path_text, size, mtime_ns, fingerprint)
        VALUES (7001, 'family', '\\x323032332f54696765722e6a7067', '2023/Tiger.jpg', 1, 1, '\\x00'),
               (7002, 'other', '\\x782e6a7067', 'x.jpg', 1, 1, '\\x00');";

/// A database written by the previous lookalike is upgraded where it is: every row stays,
/// and the library's folder is recorded from then on.
#[test]
fn an_index_of_schema_1_is_upgraded_in_place() {
    let Some(db) = TestDatabase::create() else {
        return;
    };
    db.client().batch_execute(SCHEMA_1).unwrap();
    let root = tempfile::tempdir().unwrap();
    std::fs::create_dir(root.path().join("2023")).unwrap();
    std::fs::copy(seeds::seed("Tiger.jpg"), root.path().join("2023/Tiger.jpg")).unwrap();
    let run = report(&index_with(root.path(), &db.url, &["--library", "family"]));
    assert_eq!(
        (run["images"].as_u64(), run["removed"].as_u64()),
        (Some(1), Some(0))
    );
    let mut client = db.client();
    let version: i64 = client
        .query_one(
            "SELECT value FROM lookalike_meta WHERE key = 'schema_version'",
            &[],
        )
        .unwrap()
        .get(0);
    assert_eq!(version, lookalike::index::postgres::SCHEMA_VERSION);
    let kept: Vec<(i64, String)> = client
        .query("SELECT id, path_text FROM lookalike_files ORDER BY id", &[])
        .unwrap()
        .iter()
        .map(|r| (r.get(0), r.get(1)))
        .collect();
    assert_eq!(
        kept,
        [(7001, "2023/Tiger.jpg".into()), (7002, "x.jpg".into())]
    );
    let roots = db.count_where("lookalike_libraries", "library = 'family'");
    assert_eq!(roots, 1);
}

/// Whoever can write `lookalike_models` must not run SQL as every indexer: a row naming any
/// other table than the model's own is refused before any query uses it.
#[test]
fn a_hostile_row_in_the_models_table_is_refused_and_runs_nothing() {
    let Some(db) = TestDatabase::create() else {
        return;
    };
    let dir = seed_folder(&["Tiger.jpg"]);
    assert_eq!(report(&index_with(dir.path(), &db.url, &[]))["new"], 1);
    let mut client = db.client();
    client
        .batch_execute(
            "CREATE SEQUENCE lookalike_evil;
             UPDATE lookalike_models SET vectors =
                 '(SELECT *, setval(''lookalike_evil'', 42) AS evil FROM lookalike_vectors_lite0)'",
        )
        .unwrap();
    let out = index_with(dir.path(), &db.url, &[]);
    let said = text(&out);
    assert!(!out.status.success(), "{said}");
    assert!(
        said.contains("lookalike_models") && said.contains("refused"),
        "{said}"
    );
    assert!(
        !said.contains("setval"),
        "the hostile text is not echoed: {said}"
    );
    let evil: i64 = client
        .query_one("SELECT last_value FROM lookalike_evil", &[])
        .unwrap()
        .get(0);
    assert_eq!(evil, 1, "the row's SQL ran");
}

/// What an index holds is input: a stored path with an empty, `.` or `..` part is refused
/// (it could lead outside the library's folder), and a thumbnail larger than lookalike makes
/// is never decoded.
#[test]
fn stored_paths_and_thumbnails_are_checked_before_use() {
    use lookalike::decode::{make_thumbnail, Thumbnail};
    use lookalike::index::postgres::{PostgresIndex, Target};
    use lookalike::index::{FileRecord, ModelStamp, Store, Stored};
    let Some(db) = TestDatabase::create() else {
        return;
    };
    let root = tempfile::tempdir().unwrap();
    let root = std::fs::canonicalize(root.path()).unwrap();
    let target = Target::parse(&db.url, Some("checked".into())).unwrap();
    let mut index = PostgresIndex::open(&target, &root).unwrap();
    let stamp = ModelStamp {
        model: "small",
        revision: "r1",
        dim: 2,
    };
    let small = make_thumbnail(&image::RgbImage::new(40, 30), 256).unwrap();
    let mut big = Vec::new();
    image::RgbImage::new(1024, 1024)
        .write_to(
            &mut std::io::Cursor::new(&mut big),
            image::ImageFormat::Jpeg,
        )
        .unwrap();
    let thumbnails = [
        ("small.jpg", small),
        (
            "big inside.jpg",
            Thumbnail {
                jpeg: big.clone(),
                width: 256,
                height: 256,
            },
        ),
        (
            "big outside.jpg",
            Thumbnail {
                jpeg: big,
                width: 1024,
                height: 1024,
            },
        ),
    ];
    let paths: Vec<_> = thumbnails.iter().map(|(name, _)| root.join(name)).collect();
    let batch: Vec<Stored<'_>> = (thumbnails.iter().zip(&paths))
        .map(|((_, thumbnail), path)| Stored {
            file: FileRecord {
                path,
                size: 1,
                mtime_ns: 1,
                fingerprint: path.as_os_str().as_encoded_bytes(),
                size_px: Some((1, 1)),
                thumbnail: Some(thumbnail),
                error: None,
                content_changed: false,
            },
            embedding: Some((&[1.0, 0.0][..], &[][..])),
        })
        .collect();
    index.store_batch(stamp, &batch).unwrap();
    let mut client = db.client();
    for key in ["../../outside.jpg", "a//b.jpg", "./c.jpg", "d/..", "/e.jpg"] {
        client
            .execute(
                "INSERT INTO lookalike_files (library, path, path_text, size, mtime_ns, fingerprint)
                 VALUES ('checked', $1, $2, 1, 1, '\\x00')",
                &[&key.as_bytes(), &key],
            )
            .unwrap();
    }
    let files = index.files_under(&root).unwrap();
    let mut names: Vec<_> = files.iter().map(|f| f.path.clone()).collect();
    names.sort();
    let mut plain = paths.clone();
    plain.sort();
    assert_eq!(names, plain, "only the plain paths, all inside the library");
    assert_eq!(index.take_warnings().len(), 5);

    let images = index.images_under(&root, stamp).unwrap();
    let has_thumbnail = |name: &str| {
        let image = images.iter().find(|i| i.path == root.join(name)).unwrap();
        image.has_thumbnail
    };
    assert!(has_thumbnail("small.jpg") && has_thumbnail("big inside.jpg"));
    assert!(
        !has_thumbnail("big outside.jpg"),
        "a 1024 × 1024 size counts as no thumbnail"
    );
    let mut decoded = |name: &str| {
        let path = root.join(name);
        let read = index.thumbnails(&[path.as_path()]).unwrap().pop().flatten();
        read.as_ref().map(Thumbnail::to_rgb)
    };
    assert_eq!(
        decoded("small.jpg").unwrap().unwrap().dimensions(),
        (40, 30)
    );
    let refused = decoded("big inside.jpg").expect("a stored size of 256 × 256 is kept");
    assert!(refused.is_err(), "a 1024 × 1024 picture was decoded");
    assert!(
        decoded("big outside.jpg").is_none(),
        "a 1024 × 1024 size was kept"
    );
}

/// Regression (issue 25, point 11): a vector of another length or labels that are not labels,
/// written into the database by another program or by hand, were served as they were (the
/// labels as none), and the vector scored over the shorter of it and the query.
#[test]
fn stored_vectors_and_labels_are_checked_as_they_are_read() {
    use lookalike::index::postgres::{PostgresIndex, Target};
    use lookalike::index::{FileRecord, ModelStamp, Store, Stored};
    let Some(db) = TestDatabase::create() else {
        return;
    };
    let root = tempfile::tempdir().unwrap();
    let mut index =
        PostgresIndex::open(&Target::parse(&db.url, None).unwrap(), root.path()).unwrap();
    let stamp = ModelStamp {
        model: "small",
        revision: "r1",
        dim: 4,
    };
    let picture = root.path().join("tiger.jpg");
    let stored = Stored {
        file: FileRecord {
            path: &picture,
            size: 1,
            mtime_ns: 0,
            fingerprint: &[1, 2, 3],
            size_px: Some((1, 1)),
            thumbnail: None,
            error: None,
            content_changed: false,
        },
        embedding: Some((&[0.5, 0.5, 0.5, 0.5], &[])),
    };
    index.store_batch(stamp, &[stored]).unwrap();
    assert_eq!(index.images_under(root.path(), stamp).unwrap().len(), 1);

    let mut client = db.client();
    let mut damaged = |client: &mut postgres::Client, sql: &str, what: &str| {
        client.batch_execute(sql).unwrap();
        let read = index.images_under(root.path(), stamp);
        let Err(lookalike::Error::Index(message)) = &read else {
            panic!("{sql}: served: {:?}", read.map(|i| i.len()));
        };
        assert!(
            message.contains(what) && message.contains(&picture.display().to_string()),
            "{message}"
        );
        assert!(!message.contains(&password_of(&db.url)), "{message}");
    };
    damaged(
        &mut client,
        "UPDATE lookalike_vectors_small SET top = '{\"not\": \"labels\"}'",
        "labels",
    );
    damaged(
        &mut client,
        "ALTER TABLE lookalike_vectors_small ALTER COLUMN embedding TYPE vector;
         UPDATE lookalike_vectors_small SET embedding = '[1, 2, 3]', top = '[]'",
        "has 3 values, not 4",
    );
}
