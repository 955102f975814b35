//! Downloading VGG16's weights, against a local server on 127.0.0.1 that answers like the
//! Hugging Face Hub's resolve endpoint (Range requests, ETag, X-Repo-Commit). No test touches
//! the network. One test function runs the scenarios in order, because they set the
//! process-wide HF_ENDPOINT and HF_HOME.

use std::io::{BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::process::Command;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use lookalike::model::download::{fetch, Source};
use lookalike::model::find_vgg16_weights;

#[derive(Debug, Clone, Copy, PartialEq)]
enum Mode {
    Serve,
    /// Send this many bytes of a download, then hang up.
    CutAfter(usize),
    NotFound,
    /// Read the request and never answer.
    Stall,
}

struct Hub {
    port: u16,
    mode: Arc<Mutex<Mode>>,
    /// Start offsets of every download (non-metadata) request.
    downloads: Arc<Mutex<Vec<usize>>>,
}

const COMMIT: &str = "0123456789abcdef0123456789abcdef01234567";

fn start_hub(body: Arc<Vec<u8>>) -> Hub {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let mode = Arc::new(Mutex::new(Mode::Serve));
    let downloads = Arc::new(Mutex::new(Vec::new()));
    let (m, d) = (mode.clone(), downloads.clone());
    std::thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            let (body, mode, downloads) = (body.clone(), *m.lock().unwrap(), d.clone());
            std::thread::spawn(move || answer(stream, &body, mode, &downloads));
        }
    });
    Hub {
        port,
        mode,
        downloads,
    }
}

fn answer(mut stream: TcpStream, body: &[u8], mode: Mode, downloads: &Mutex<Vec<usize>>) {
    let mut reader = BufReader::new(stream.try_clone().unwrap());
    let mut request_line = String::new();
    let _ = reader.read_line(&mut request_line);
    let mut range_start = 0usize;
    let mut metadata = false;
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line).unwrap_or(0) == 0 || line == "\r\n" {
            break;
        }
        let lower = line.to_ascii_lowercase();
        if let Some(range) = lower.strip_prefix("range: bytes=") {
            let range = range.trim();
            metadata = range == "0-0";
            range_start = range
                .split('-')
                .next()
                .and_then(|s| s.parse().ok())
                .unwrap_or(0);
        }
    }
    let expected_path = "/timm/vgg16.tv_in1k/resolve/main/model.safetensors";
    if mode == Mode::Stall {
        std::thread::sleep(Duration::from_secs(30));
        return;
    }
    if mode == Mode::NotFound || !request_line.contains(expected_path) {
        let _ = stream
            .write_all(b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n");
        return;
    }
    let end = if metadata { 0 } else { body.len() - 1 };
    if !metadata {
        downloads.lock().unwrap().push(range_start);
    }
    let part = &body[range_start.min(body.len())..=end];
    let head = format!(
        "HTTP/1.1 206 Partial Content\r\nContent-Length: {}\r\nContent-Range: bytes {range_start}-{end}/{}\r\n\
         ETag: \"etag-of-the-weights\"\r\nX-Repo-Commit: {COMMIT}\r\nConnection: close\r\n\r\n",
        part.len(),
        body.len()
    );
    let _ = stream.write_all(head.as_bytes());
    let send = match mode {
        Mode::CutAfter(n) if !metadata => &part[..n.min(part.len())],
        _ => part,
    };
    let _ = stream.write_all(send);
    let _ = stream.flush();
}

fn source(timeout_secs: u64) -> Source {
    Source {
        repo: "timm/vgg16.tv_in1k".into(),
        file: "model.safetensors".into(),
        stall_timeout: Duration::from_secs(timeout_secs),
    }
}

fn set_home(hf_home: &Path, data: &Path) {
    std::env::set_var("HF_HOME", hf_home);
    std::env::set_var("XDG_DATA_HOME", data);
    std::env::remove_var("HF_HUB_CACHE");
}

#[test]
fn downloads_resume_are_cached_and_fail_clearly() {
    let body: Arc<Vec<u8>> = Arc::new((0..3_000_000u32).map(|i| (i * 7 % 251) as u8).collect());
    let hub = start_hub(body.clone());
    std::env::set_var("HF_ENDPOINT", format!("http://127.0.0.1:{}", hub.port));
    let data = tempfile::tempdir().unwrap();

    // A download lands in the Hugging Face cache, with progress reported along the way.
    let home = tempfile::tempdir().unwrap();
    set_home(home.path(), data.path());
    let mut reports = Vec::new();
    let path = fetch(&source(10), &mut |done, total| reports.push((done, total))).unwrap();
    assert!(
        path.starts_with(
            home.path()
                .join("hub/models--timm--vgg16.tv_in1k/snapshots")
                .join(COMMIT)
        ),
        "{path:?}"
    );
    assert_eq!(std::fs::read(&path).unwrap(), *body);
    assert!(reports.len() > 1, "progress fired: {reports:?}");
    assert_eq!(
        reports.last().copied(),
        Some((body.len() as u64, body.len() as u64))
    );

    // A second run finds it and downloads nothing.
    assert_eq!(find_vgg16_weights(), Some(path.clone()));
    let before = hub.downloads.lock().unwrap().len();
    let out = Command::new(env!("CARGO_BIN_EXE_lookalike"))
        .args(["fetch-model", "vgg16"])
        .output()
        .unwrap();
    assert!(out.status.success());
    assert!(String::from_utf8_lossy(&out.stdout).contains("already here"));
    assert_eq!(
        hub.downloads.lock().unwrap().len(),
        before,
        "no second download"
    );

    // Interrupted halfway: an error, no file that looks complete; the next run resumes.
    let home = tempfile::tempdir().unwrap();
    set_home(home.path(), data.path());
    *hub.mode.lock().unwrap() = Mode::CutAfter(1_000_000);
    let cut = fetch(&source(10), &mut |_, _| {});
    assert!(cut.is_err(), "a cut download is an error");
    assert_eq!(find_vgg16_weights(), None, "nothing that looks complete");
    *hub.mode.lock().unwrap() = Mode::Serve;
    hub.downloads.lock().unwrap().clear();
    let path = fetch(&source(10), &mut |_, _| {}).unwrap();
    assert_eq!(std::fs::read(&path).unwrap(), *body);
    let starts = hub.downloads.lock().unwrap().clone();
    assert!(
        starts.iter().all(|&s| s >= 1_000_000),
        "resumed from where it was cut: {starts:?}"
    );

    // Not found: a clear error.
    let home = tempfile::tempdir().unwrap();
    set_home(home.path(), data.path());
    *hub.mode.lock().unwrap() = Mode::NotFound;
    let err = fetch(&source(10), &mut |_, _| {}).unwrap_err().to_string();
    assert!(
        err.contains("404") && err.contains("model.safetensors"),
        "{err}"
    );

    // A server that never answers: a clear error after the stall timeout, not a hang.
    *hub.mode.lock().unwrap() = Mode::Stall;
    let err = fetch(&source(2), &mut |_, _| {}).unwrap_err().to_string();
    assert!(err.contains("no data for 2 s"), "{err}");
}
