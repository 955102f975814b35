//! The library's error type. Every failure that concerns one file names that file, so that a
//! caller can report it and carry on with the rest.

use std::path::PathBuf;

/// Errors from the lookalike engine.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A file could not be read, decoded or prepared for the model.
    #[error("{path}: {reason}")]
    File { path: PathBuf, reason: String },

    /// The model could not be built or run.
    #[error("model: {0}")]
    Model(String),

    /// A folder could not be listed.
    #[error("{path}: cannot read folder: {reason}")]
    Folder { path: PathBuf, reason: String },

    /// The on-disk index could not be used.
    #[error("index: {0}")]
    Index(String),

    /// Model weights could not be downloaded.
    #[error("download: {0}")]
    Download(String),

    /// The user asked for something that does not exist (an unknown model name, say).
    #[error("{0}")]
    Usage(String),

    /// The work was cancelled through its stop flag.
    #[error("cancelled")]
    Cancelled,
}

impl Error {
    pub fn file(path: impl Into<PathBuf>, reason: impl ToString) -> Self {
        Error::File {
            path: path.into(),
            reason: reason.to_string(),
        }
    }
}

impl From<candle_core::Error> for Error {
    fn from(e: candle_core::Error) -> Self {
        Error::Model(e.to_string())
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;
