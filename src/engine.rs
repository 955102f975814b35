//! The engine: a loaded model plus the threads it runs on, turning files into embeddings and
//! labels. The command line and the desktop app both go through here.
//!
//! Files are decoded in parallel on the engine's decoding threads while its network threads
//! embed the batch before. A file that fails, even by making a decoder panic, yields an error
//! naming it, and the rest go on. Long runs take a stop flag and report progress through a
//! callback.

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};

use candle_core::{Device, Tensor};
use rayon::prelude::*;

use crate::decode::{decode_file_for, make_thumbnail, model_input, Thumbnail};
use crate::error::{Error, FileErrorKind, Result};
use crate::model::labels::{top_k, Prediction};
use crate::model::{to_vec, Backbone, ModelInfo, ModelKind, Precision};
use crate::similarity::l2_normalise;

/// How many of its most probable labels an image keeps in the index and the app.
pub const LABELS_KEPT: usize = 5;

/// How an engine runs.
#[derive(Debug, Clone)]
pub struct EngineOptions {
    /// Threads in each of the engine's two pools, one decoding and one running the network;
    /// 0 means one per core.
    pub threads: usize,
    /// Images per forward pass. The model itself runs two images at a time, so this mostly
    /// sets how much decoding overlaps with inference and how often progress is reported.
    pub batch_size: usize,
    /// How many labels to keep per image; 0 skips the classifier altogether.
    pub top_k: usize,
    /// Also make a thumbnail of at most this many pixels a side, from the same decode.
    pub thumbnail_side: Option<u32>,
    /// Weights file for a model that is not bundled (VGG16).
    pub weights: Option<PathBuf>,
    /// What the network computes in; `Auto` picks bf16 where the CPU has it.
    pub precision: Precision,
}

impl Default for EngineOptions {
    fn default() -> Self {
        EngineOptions {
            threads: 0,
            // Measured with `lookalike bench --batches 1,2,4,8,16` and `index --batch N` on 1,000
            // JPEGs (2 cores): forward speed is flat from 1 to 32, and end to end every size
            // from 2 to 32 took 3.8–4.1 s, within noise. 8 keeps progress reports frequent and
            // the batch decoded ahead small.
            batch_size: 8,
            top_k: LABELS_KEPT,
            thumbnail_side: None,
            weights: None,
            precision: Precision::Auto,
        }
    }
}

/// What the engine learned about one image.
#[derive(Debug, Clone)]
pub struct Analysis {
    /// L2-normalised embedding.
    pub embedding: Vec<f32>,
    /// Most probable ImageNet classes, best first; empty when the model has no classifier.
    pub top: Vec<Prediction>,
    /// Size of the upright image in pixels.
    pub width: u32,
    pub height: u32,
    /// A preview, when the engine was asked for them.
    pub thumbnail: Option<Thumbnail>,
}

/// The model's answer for one input.
#[derive(Debug, Clone)]
pub struct ModelOutput {
    /// L2-normalised embedding.
    pub embedding: Vec<f32>,
    /// Most probable classes, best first; empty when the model has no classifier.
    pub top: Vec<Prediction>,
}

/// A model ready to run, with its own threads: one pool runs the network, another decodes, so
/// that the two overlap (see [`Engine::analyse_stream`]).
pub struct Engine {
    model: Box<dyn Backbone>,
    pool: rayon::ThreadPool,
    decode_pool: rayon::ThreadPool,
    options: EngineOptions,
}

/// A file decoded and preprocessed for the model.
struct Prepared {
    input: Vec<f32>,
    width: u32,
    height: u32,
    thumbnail: Option<Thumbnail>,
}

impl Engine {
    /// Loads `kind` and starts its threads.
    pub fn new(kind: ModelKind, options: EngineOptions) -> Result<Self> {
        let pool = thread_pool(options.threads, "model")?;
        // In the engine's own threads, so that `auto` measures the paths as they will run.
        let model = pool.install(|| kind.load(options.weights.as_deref(), options.precision))?;
        Self::assemble(model, pool, options)
    }

    /// An engine around a model that is already built.
    pub fn with_model(model: Box<dyn Backbone>, options: EngineOptions) -> Result<Self> {
        let pool = thread_pool(options.threads, "model")?;
        Self::assemble(model, pool, options)
    }

    fn assemble(
        model: Box<dyn Backbone>,
        pool: rayon::ThreadPool,
        options: EngineOptions,
    ) -> Result<Self> {
        let decode_pool = thread_pool(options.threads, "decode")?;
        let options = EngineOptions {
            batch_size: options.batch_size.max(1),
            ..options
        };
        Ok(Engine {
            model,
            pool,
            decode_pool,
            options,
        })
    }

    pub fn info(&self) -> &ModelInfo {
        self.model.info()
    }

    /// What the network computes in: bf16 or f32.
    pub fn precision(&self) -> Precision {
        self.model.precision()
    }

    pub fn batch_size(&self) -> usize {
        self.options.batch_size
    }

    pub fn threads(&self) -> usize {
        self.pool.current_num_threads()
    }

    /// Analyses one file.
    pub fn analyse_file(&self, path: &Path) -> Result<Analysis> {
        let never = AtomicBool::new(false);
        let mut results = self.analyse_files(&[path.to_path_buf()], &never, &mut |_, _| {});
        results.pop().unwrap_or(Err(Error::Cancelled))
    }

    /// Analyses a picture already in memory (one pasted from the clipboard, say); no file is
    /// read or written.
    pub fn analyse_image(&self, rgb: &image::RgbImage) -> Result<Analysis> {
        let input = model_input(rgb, &self.info().preprocess)?;
        let thumbnail = match self.options.thumbnail_side {
            Some(side) => Some(make_thumbnail(rgb, side)?),
            None => None,
        };
        let out = self
            .embed_inputs(&[&input])?
            .pop()
            .ok_or_else(|| Error::Model("the model returned no output".into()))?;
        Ok(Analysis {
            embedding: out.embedding,
            top: out.top,
            width: rgb.width(),
            height: rgb.height(),
            thumbnail,
        })
    }

    /// Analyses every file, in order. Each result stands alone: one bad file fails only itself.
    /// `on_progress(done, total)` is called after each batch. When `cancel` is set, the files
    /// not yet started come back as [`Error::Cancelled`].
    pub fn analyse_files(
        &self,
        paths: &[PathBuf],
        cancel: &AtomicBool,
        on_progress: &mut dyn FnMut(usize, usize),
    ) -> Vec<Result<Analysis>> {
        let mut chunks = paths.chunks(self.options.batch_size);
        let mut results = Vec::with_capacity(paths.len());
        let streamed = self.analyse_stream(
            || match cancel.load(Ordering::Relaxed) {
                true => None,
                false => chunks.next().map(|chunk| ((), chunk.to_vec())),
            },
            |(), batch| {
                results.extend(batch);
                on_progress(results.len(), paths.len());
                true
            },
        );
        let missing = |e: &Error| Error::Model(e.to_string());
        match streamed {
            Ok(()) => results.resize_with(paths.len(), || Err(Error::Cancelled)),
            Err(e) => results.resize_with(paths.len(), || Err(missing(&e))),
        }
        results
    }

    /// Analyses batches as `next_batch` hands them out, each with a tag of the caller's, and
    /// gives each batch's results to `on_batch`, in order. Decoding the next batch (on its own
    /// threads) overlaps with running the model on the current one, so neither the decoders nor
    /// the network wait for the other. At most two batches are taken ahead of the one the
    /// model is on (one decoded and waiting, one decoding), so a caller choosing what comes
    /// next, like the app with the images on screen, is never far behind. Returning `None`
    /// from `next_batch`, or `false` from `on_batch`, ends the stream. Fails only if the thread
    /// that decodes ahead cannot be started.
    pub fn analyse_stream<T: Send>(
        &self,
        mut next_batch: impl FnMut() -> Option<(T, Vec<PathBuf>)> + Send,
        mut on_batch: impl FnMut(T, Vec<Result<Analysis>>) -> bool,
    ) -> Result<()> {
        std::thread::scope(|scope| {
            // One decoded batch waits while the model runs on another.
            let (decoded, ready) = std::sync::mpsc::sync_channel(1);
            std::thread::Builder::new()
                .name("lookalike-batches".into())
                .spawn_scoped(scope, move || {
                    while let Some((tag, paths)) = next_batch() {
                        let prepared = self.prepare_batch(&paths);
                        if decoded.send((tag, paths, prepared)).is_err() {
                            break; // the consumer has stopped
                        }
                    }
                })
                .map_err(|e| Error::Model(format!("cannot start the batch thread: {e}")))?;
            for (tag, paths, prepared) in ready {
                if !on_batch(tag, self.embed_prepared(&paths, prepared)) {
                    break;
                }
            }
            Ok(())
        })
    }

    /// Decodes and preprocesses `paths` in parallel on the decoding threads.
    fn prepare_batch(&self, paths: &[PathBuf]) -> Vec<Result<Prepared>> {
        self.decode_pool
            .install(|| paths.par_iter().map(|p| self.prepare(p)).collect())
    }

    /// Runs the model on the prepared images of a batch, in one pass.
    fn embed_prepared(
        &self,
        paths: &[PathBuf],
        prepared: Vec<Result<Prepared>>,
    ) -> Vec<Result<Analysis>> {
        let inputs: Vec<&[f32]> = prepared
            .iter()
            .flatten()
            .map(|p| p.input.as_slice())
            .collect();
        let outputs = match inputs.is_empty() {
            true => Ok(Vec::new()),
            false => self.embed_inputs(&inputs),
        };
        let mut outputs = match outputs {
            Ok(outputs) => outputs.into_iter(),
            Err(e) => {
                return paths
                    .iter()
                    .map(|p| Err(Error::file(p, FileErrorKind::Model, &e)))
                    .collect()
            }
        };
        prepared
            .into_iter()
            .map(|p| {
                let p = p?;
                let out = outputs
                    .next()
                    .ok_or_else(|| Error::Model("the model returned too few outputs".into()))?;
                Ok(Analysis {
                    embedding: out.embedding,
                    top: out.top,
                    width: p.width,
                    height: p.height,
                    thumbnail: p.thumbnail,
                })
            })
            .collect()
    }

    /// Decodes and preprocesses one file; a panic inside a decoder becomes this file's error.
    fn prepare(&self, path: &Path) -> Result<Prepared> {
        let pre = self.info().preprocess;
        let work = || -> Result<Prepared> {
            let needed = pre
                .resize_shorter
                .max(self.options.thumbnail_side.unwrap_or(0));
            let decoded = decode_file_for(path, needed)?;
            let input = model_input(&decoded.rgb, &pre).map_err(|e| Error::unusable(path, e))?;
            let thumbnail = match self.options.thumbnail_side {
                Some(side) => {
                    Some(make_thumbnail(&decoded.rgb, side).map_err(|e| Error::unusable(path, e))?)
                }
                None => None,
            };
            Ok(Prepared {
                input,
                width: decoded.full_size.0,
                height: decoded.full_size.1,
                thumbnail,
            })
        };
        catch_unwind(AssertUnwindSafe(work)).unwrap_or_else(|panic| {
            let what = panic
                .downcast_ref::<&str>()
                .map(|s| s.to_string())
                .or_else(|| panic.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "unknown panic".into());
            Err(Error::unusable(
                path,
                format!("the decoder crashed on this file: {what}"),
            ))
        })
    }

    /// Runs preprocessed inputs through the model: normalised embeddings and top-k labels.
    pub fn embed_inputs(&self, inputs: &[&[f32]]) -> Result<Vec<ModelOutput>> {
        let side = self.info().preprocess.crop as usize;
        let batch = Tensor::from_vec(inputs.concat(), (inputs.len(), 3, side, side), &Device::Cpu)?;
        let (embeddings, logits) = match self.options.top_k {
            0 => (self.pool.install(|| self.model.embed(&batch))?, None),
            _ => self.pool.install(|| self.model.forward(&batch))?,
        };
        let embeddings = to_vec(&embeddings)?;
        let logits = logits.map(|l| to_vec(&l)).transpose()?;
        let dim = embeddings.len() / inputs.len();
        let outputs = (0..inputs.len()).map(|i| {
            let mut embedding = embeddings[i * dim..(i + 1) * dim].to_vec();
            l2_normalise(&mut embedding);
            let top = match &logits {
                Some(logits) => {
                    let classes = logits.len() / inputs.len();
                    top_k(&logits[i * classes..(i + 1) * classes], self.options.top_k)
                }
                None => Vec::new(),
            };
            ModelOutput { embedding, top }
        });
        Ok(outputs.collect())
    }

    /// Raw forward pass for benchmarks and tests: `[n, 3, crop, crop]` in, outputs as the model
    /// gives them.
    pub fn forward(&self, batch: &Tensor) -> Result<(Tensor, Option<Tensor>)> {
        self.pool.install(|| self.model.forward(batch))
    }
}

/// A pool of `threads` threads (0: one per core) named after its `role`.
fn thread_pool(threads: usize, role: &'static str) -> Result<rayon::ThreadPool> {
    rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .thread_name(move |i| format!("lookalike-{role}-{i}"))
        .build()
        .map_err(|e| Error::Model(format!("cannot start {role} threads: {e}")))
}
