//! Getting VGG16's weights: `lookalike fetch-model vgg16`, or on first use of `--model vgg16`
//! when the user agrees (or passed `--yes`). Nothing is downloaded otherwise.

use std::io::{BufRead, IsTerminal, Write};
use std::path::PathBuf;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use lookalike::model::{download, find_vgg16_weights, vgg16_missing, vgg16_source};

/// `lookalike fetch-model NAME`.
pub fn fetch_model(name: &str) -> anyhow::Result<i32> {
    anyhow::ensure!(
        name == "vgg16",
        "only vgg16 is downloaded; lite0 is built in"
    );
    if let Some(path) = find_vgg16_weights() {
        println!("VGG16 weights are already here: {}", path.display());
        return Ok(0);
    }
    let path = download_with_bar()?;
    println!("VGG16 weights saved to {}", path.display());
    Ok(0)
}

/// The weights for `--model vgg16` when none are on this machine: downloaded if the user
/// agrees at the prompt (or passed `--yes`); otherwise the message that says how to get them.
pub fn obtain_vgg16(yes: bool) -> anyhow::Result<PathBuf> {
    if !yes && !confirm()? {
        return Err(vgg16_missing().into());
    }
    download_with_bar()
}

fn confirm() -> anyhow::Result<bool> {
    if !std::io::stdin().is_terminal() {
        return Ok(false);
    }
    eprint!(
        "VGG16 needs its weights (about 553 MB from huggingface.co). Download them now? [y/N] "
    );
    std::io::stderr().flush()?;
    let mut answer = String::new();
    std::io::stdin().lock().read_line(&mut answer)?;
    Ok(matches!(answer.trim(), "y" | "Y" | "yes" | "Yes"))
}

fn download_with_bar() -> anyhow::Result<PathBuf> {
    let target = if std::io::stderr().is_terminal() {
        ProgressDrawTarget::stderr()
    } else {
        ProgressDrawTarget::hidden()
    };
    let bar = ProgressBar::with_draw_target(None, target);
    let style =
        ProgressStyle::with_template("{bar:40} {bytes}/{total_bytes}  {bytes_per_sec}  eta {eta}")
            .unwrap_or_else(|_| ProgressStyle::default_bar());
    bar.set_style(style);
    let result = download::fetch(&vgg16_source(), &mut |done, total| {
        bar.set_length(total);
        bar.set_position(done);
    });
    bar.finish_and_clear();
    Ok(result?)
}
