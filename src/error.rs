//! The library's error type. Every failure that concerns one file names that file, so that a
//! caller can report it and carry on with the rest; its [`FileErrorKind`] says whether the
//! failure is the file's own (the index remembers it) or passing (the next run tries again).

use std::path::{Path, PathBuf};

/// Why one file could not be used.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FileErrorKind {
    /// It could not be opened or read (permissions, a file that vanished, a network share that
    /// dropped): nothing is known about its content, so the next run tries again.
    Unreadable,
    /// Its content is not a usable image: damaged, truncated, an unsupported format, too large.
    /// The same bytes will fail the same way, so the index remembers it until the file changes.
    Unusable,
    /// The model failed on the batch the file was in: not the file's fault, tried again.
    Model,
}

/// Errors from the lookalike engine.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A file could not be read, decoded or prepared for the model.
    #[error("{path}: {reason}")]
    File {
        path: PathBuf,
        kind: FileErrorKind,
        reason: String,
    },

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
    pub fn file(path: impl Into<PathBuf>, kind: FileErrorKind, reason: impl ToString) -> Self {
        Error::File {
            path: path.into(),
            kind,
            reason: reason.to_string(),
        }
    }

    /// The file's content is not a usable image.
    pub fn unusable(path: impl Into<PathBuf>, reason: impl ToString) -> Self {
        Self::file(path, FileErrorKind::Unusable, reason)
    }

    /// The file could not be opened or read; `what` says which ("cannot open", "cannot read").
    pub fn unreadable(path: impl Into<PathBuf>, what: &str, e: impl std::fmt::Display) -> Self {
        Self::file(path, FileErrorKind::Unreadable, format!("{what}: {e}"))
    }

    /// Whether the failure says nothing about the file's content, so that it must not be
    /// remembered: only a file whose bytes are unusable is. Errors about no file (the model,
    /// the index, a cancelled run) are passing too.
    pub fn is_transient(&self) -> bool {
        !matches!(
            self,
            Error::File {
                kind: FileErrorKind::Unusable,
                ..
            }
        )
    }

    /// What went wrong, without the file name (for lists that show the name beside it).
    pub fn reason(&self) -> String {
        match self {
            Error::File { reason, .. } => reason.clone(),
            other => other.to_string(),
        }
    }

    /// The file or folder the error is about, if it is about one.
    pub fn path(&self) -> Option<&Path> {
        match self {
            Error::File { path, .. } | Error::Folder { path, .. } => Some(path),
            _ => None,
        }
    }
}

impl From<candle_core::Error> for Error {
    fn from(e: candle_core::Error) -> Self {
        Error::Model(e.to_string())
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;
