//! Where model weights come from, the one part of `model` that knows about files: the bundled
//! Lite0 bytes aside, weights are found in lookalike's models folder or the Hugging Face cache
//! (or named by the user), memory-mapped, and handed to a model as a `VarBuilder`.

use std::path::{Path, PathBuf};

use candle_core::{DType, Device};
use candle_nn::VarBuilder;

use super::{download, vgg16, Precision};
use crate::error::{Error, Result};

/// VGG16 from a weights file in the timm `vgg16.tv_in1k` layout, computing in `precision`.
/// Errors name the file.
pub fn open_vgg16(path: &Path, precision: Precision) -> Result<vgg16::Vgg16> {
    let precision = precision.resolve()?;
    let in_file = |e: Error| match e {
        Error::Model(reason) => Error::Model(format!("{}: {reason}", path.display())),
        other => other,
    };
    // SAFETY: the file is only read. Should another program rewrite it while we run, the
    // worst case is wrong numbers, which the same rewrite would cause with a plain read.
    let vb = unsafe { VarBuilder::from_mmaped_safetensors(&[path], DType::F32, &Device::Cpu) }
        .map_err(|e| {
            Error::Model(format!(
                "{}: not a VGG16 safetensors file: {e}",
                path.display()
            ))
        })?;
    vgg16::Vgg16::new(vb, precision).map_err(in_file)
}

/// Where VGG16's weights are downloaded from.
pub fn vgg16_source() -> download::Source {
    download::Source {
        repo: vgg16::HUB_REPO.into(),
        file: vgg16::HUB_FILE.into(),
        stall_timeout: std::time::Duration::from_secs(
            std::env::var("LOOKALIKE_DOWNLOAD_TIMEOUT")
                .ok()
                .and_then(|s| s.parse().ok())
                .unwrap_or(60),
        ),
    }
}

/// Where lookalike keeps model files it was given: `<data dir>/lookalike/models/`.
pub fn models_dir() -> Option<PathBuf> {
    directories::ProjectDirs::from("", "", "lookalike").map(|d| d.data_dir().join("models"))
}

/// The VGG16 weights file, if one is in the models folder or the Hugging Face cache.
pub fn find_vgg16_weights() -> Option<PathBuf> {
    let local = models_dir()
        .map(|d| d.join("vgg16.safetensors"))
        .filter(|p| p.is_file());
    local.or_else(|| hf_cached_file(vgg16::HUB_REPO, vgg16::HUB_FILE))
}

/// A file in the standard Hugging Face cache (`$HF_HUB_CACHE`, `$HF_HOME/hub` or
/// `~/.cache/huggingface/hub`), at the revision `refs/main` names, else any snapshot.
pub fn hf_cached_file(repo: &str, file: &str) -> Option<PathBuf> {
    let hub = std::env::var_os("HF_HUB_CACHE")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HF_HOME").map(|h| PathBuf::from(h).join("hub")))
        .or_else(|| {
            directories::BaseDirs::new().map(|b| b.home_dir().join(".cache/huggingface/hub"))
        })?;
    let repo_dir = hub.join(format!("models--{}", repo.replace('/', "--")));
    let main = std::fs::read_to_string(repo_dir.join("refs/main")).ok();
    if let Some(path) = main
        .map(|rev| repo_dir.join("snapshots").join(rev.trim()).join(file))
        .filter(|p| p.is_file())
    {
        return Some(path);
    }
    std::fs::read_dir(repo_dir.join("snapshots"))
        .ok()?
        .flatten()
        .map(|e| e.path().join(file))
        .find(|p| p.is_file())
}

/// What to tell a user who asked for VGG16 without having its weights.
pub fn vgg16_missing() -> Error {
    let here = models_dir().map_or_else(
        || "the lookalike models folder".to_string(),
        |d| d.join("vgg16.safetensors").display().to_string(),
    );
    Error::Usage(format!(
        "VGG16 needs its weights: {file} from the Hugging Face repository {repo} (about 553 MB), which is not on this machine.\n\
         On a machine with internet, fetch it with:\n    \
         curl -L -o vgg16.safetensors https://huggingface.co/{repo}/resolve/main/{file}\n\
         then copy it to {here}, or pass it with --weights FILE.\n\
         With internet here: lookalike fetch-model vgg16 (or add --yes to this command).",
        file = vgg16::HUB_FILE,
        repo = vgg16::HUB_REPO,
    ))
}
