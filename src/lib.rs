//! lookalike: classify images, embed them, and rank a folder by visual similarity, with
//! ImageNet CNNs running on the CPU through Candle.
//!
//! The engine knows nothing of any user interface; the command line and the desktop app both
//! drive it through [`engine::Engine`]. See ARCHITECTURE.md for the module map.

// Inside an `unsafe fn`, each unsafe operation still sits in an `unsafe` block that says why
// it holds: the kernels are mostly raw pointers and intrinsics, and a contract stated once at
// the top of a long function is too easy to break unseen further down.
#![deny(unsafe_op_in_unsafe_fn)]

pub mod about;
pub mod decode;
pub mod duplicates;
pub mod engine;
pub mod error;
#[cfg(feature = "gui")]
pub mod gui;
pub mod index;
pub mod model;
pub mod pipeline;
pub mod query;
pub mod scan;
pub mod shown;
pub mod similarity;

pub use engine::{Analysis, Engine, EngineOptions};
pub use error::{Error, Result};
pub use model::ModelKind;
