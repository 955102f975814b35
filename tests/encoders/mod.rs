//! What the format tests share: whether an outside tool (an encoder, ExifTool) runs here, and
//! how far apart two decodes of one picture are.
#![allow(dead_code)]

use std::io::Write;
use std::process::Command;

use image::RgbImage;

/// Whether `tool` runs here. Where it does not: under `CI`, a failure; elsewhere a visible
/// `SKIPPED: <test> needs <tool> (<install>)` line, written past the harness's capture as the
/// CPU-feature tests do, so that `grep -c '^SKIPPED:'` counts it.
pub fn tool_runs(tool: &str, test: &str, install: &str) -> bool {
    // Some tools answer `--help` with a failure status; running at all is what counts.
    if Command::new(tool).arg("--help").output().is_ok() {
        return true;
    }
    let line = format!("SKIPPED: {test} needs {tool} ({install})");
    assert!(
        std::env::var_os("CI").is_none(),
        "{line}, and CI asks that every test run"
    );
    let _ = writeln!(std::io::stderr(), "{line}");
    false
}

/// The mean absolute difference of two same-sized pictures, in 8-bit levels.
pub fn mean_abs_diff(a: &RgbImage, b: &RgbImage) -> f64 {
    assert_eq!(a.dimensions(), b.dimensions());
    let sum: u64 = a
        .as_raw()
        .iter()
        .zip(b.as_raw())
        .map(|(&x, &y)| u64::from(x.abs_diff(y)))
        .sum();
    sum as f64 / a.as_raw().len() as f64
}
