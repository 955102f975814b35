//! `--precision auto`: the path that is fastest on the CPU in front of us, found by measuring.
//!
//! A CPU flag does not say which path wins: on an Intel Xeon with AVX512_BF16 but no AMX, the
//! bf16 kernels run Lite0 at 0.77× lookalike's own f32 speed, while on AMD Zen 4 they run it
//! 1.5–1.7× as fast. So the first time a model is loaded with `auto` on a CPU that has more than
//! one path, each path is built and timed on the same generated batch, taking turns so that
//! other work on the machine slows them alike, and the fastest is kept (the measurement takes
//! about 0.1 s for Lite0 and under a second for VGG16). The choice is written to
//! `precision.json` in lookalike's config folder, keyed by the CPU's name, the paths it has and
//! lookalike's version (new kernels deserve a new measurement), and read from there after.
//! `lookalike bench` prints it, with the rates it came from.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use candle_core::{Device, Tensor};
use serde::{Deserialize, Serialize};

use super::{bf16, Backbone, ModelKind, Precision};
use crate::error::Result;

/// Images in the batch each path is timed on: what the index feeds the model at a time.
const BATCH: usize = 8;
/// Timed runs per path, after one untimed run that warms caches and allocations; the best
/// run counts.
const RUNS: usize = 3;
/// A path that has spent this long stops early: VGG16 on a slow CPU would take seconds.
const PATH_BUDGET: Duration = Duration::from_millis(400);

/// What auto chose for one model on one CPU, and the measurement it came from.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Choice {
    pub precision: Precision,
    /// Images per second of each path, best run.
    pub rates: Vec<(Precision, f64)>,
    pub batch: usize,
    pub threads: usize,
}

impl Choice {
    /// One line for people: what runs and why.
    pub fn explain(&self) -> String {
        let rates: Vec<String> = self
            .rates
            .iter()
            .map(|(p, rate)| format!("{} {rate:.1} img/s", p.name()))
            .collect();
        format!(
            "{}, the fastest measured here ({}; batch {}, {} threads)",
            self.precision.name(),
            rates.join(", "),
            self.batch,
            self.threads
        )
    }
}

/// The paths this CPU can run, slowest-to-build first.
pub fn available() -> Vec<Precision> {
    let mut paths = vec![Precision::F32];
    if bf16::supported() {
        paths.push(Precision::Bf16);
    }
    paths
}

/// Loads `kind` in the precision auto picks: the only path there is, the one kept for this CPU,
/// or the fastest of a measurement made now (and kept). `build` loads the model in one exact
/// precision.
pub fn load_fastest(
    kind: ModelKind,
    build: impl Fn(Precision) -> Result<Box<dyn Backbone>>,
) -> Result<Box<dyn Backbone>> {
    let paths = available();
    if paths.len() == 1 {
        return build(paths[0]);
    }
    if let Some(choice) = kept(kind) {
        return build(choice.precision);
    }
    let (choice, fastest) = measure(&paths, &build)?;
    keep(kind, &choice);
    Ok(fastest)
}

/// The choice kept for `kind` on this CPU, if there is one.
pub fn kept(kind: ModelKind) -> Option<Choice> {
    if let Some((_, choice)) = lock_seen().iter().find(|(k, _)| *k == kind) {
        return Some(choice.clone());
    }
    let choice = read_kept()
        .remove(&cpu_key())
        .and_then(|mut models| models.remove(kind.name()))?;
    lock_seen().push((kind, choice.clone()));
    Some(choice)
}

/// Builds each path, times them in turns, and returns the choice with the fastest model.
fn measure(
    paths: &[Precision],
    build: &impl Fn(Precision) -> Result<Box<dyn Backbone>>,
) -> Result<(Choice, Box<dyn Backbone>)> {
    let mut models = paths
        .iter()
        .map(|&p| build(p))
        .collect::<Result<Vec<_>>>()?;
    let side = models[0].info().preprocess.crop as usize;
    let values: Vec<f32> = (0..BATCH * 3 * side * side)
        .map(|i| ((i * 7919) % 255) as f32 / 128.0 - 1.0)
        .collect();
    let batch = Tensor::from_vec(values, (BATCH, 3, side, side), &Device::Cpu)?;
    let mut best = vec![Duration::MAX; models.len()];
    let mut spent = vec![Duration::ZERO; models.len()];
    for model in &models {
        model.embed(&batch)?;
    }
    for _ in 0..RUNS {
        for (i, model) in models.iter().enumerate() {
            if spent[i] > PATH_BUDGET {
                continue;
            }
            let start = Instant::now();
            model.embed(&batch)?;
            let took = start.elapsed();
            best[i] = best[i].min(took);
            spent[i] += took;
        }
    }
    let rates: Vec<(Precision, f64)> = paths
        .iter()
        .zip(&best)
        .map(|(&p, t)| (p, BATCH as f64 / t.as_secs_f64().max(1e-9)))
        .collect();
    let fastest = (0..rates.len())
        .max_by(|&a, &b| rates[a].1.total_cmp(&rates[b].1))
        .unwrap_or(0);
    let choice = Choice {
        precision: paths[fastest],
        rates,
        batch: BATCH,
        threads: rayon::current_num_threads(),
    };
    Ok((choice, models.swap_remove(fastest)))
}

/// Choices made in this process, so that a model loaded again is not measured again.
static SEEN: Mutex<Vec<(ModelKind, Choice)>> = Mutex::new(Vec::new());

fn lock_seen() -> std::sync::MutexGuard<'static, Vec<(ModelKind, Choice)>> {
    // A panic while the map was held cannot leave it half-written: inserts are single calls.
    SEEN.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// Where choices are kept: `precision.json` in lookalike's config folder.
pub fn kept_file() -> Option<PathBuf> {
    directories::ProjectDirs::from("", "", "lookalike")
        .map(|d| d.config_dir().join("precision.json"))
}

/// What the file holds: for each CPU key, for each model's name, its choice.
type Kept = BTreeMap<String, BTreeMap<String, Choice>>;

fn read_kept() -> Kept {
    kept_file()
        .and_then(|path| std::fs::read(path).ok())
        .and_then(|bytes| serde_json::from_slice(&bytes).ok())
        .unwrap_or_default()
}

/// Remembers `choice` in this process and, as well as it can, in the file. A file that cannot
/// be written costs only a new measurement next time, so its errors are not reported.
fn keep(kind: ModelKind, choice: &Choice) {
    lock_seen().push((kind, choice.clone()));
    let Some(path) = kept_file() else { return };
    let mut kept = read_kept();
    kept.entry(cpu_key())
        .or_default()
        .insert(kind.name().to_string(), choice.clone());
    let Ok(json) = serde_json::to_vec_pretty(&kept) else {
        return;
    };
    let Some(folder) = path.parent() else { return };
    if std::fs::create_dir_all(folder).is_err() {
        return;
    }
    // Written beside and renamed over, so that two processes measuring at once never leave
    // half a file.
    let beside = path.with_extension(format!("json.{}", std::process::id()));
    if std::fs::write(&beside, json).is_ok() && std::fs::rename(&beside, &path).is_err() {
        let _ = std::fs::remove_file(&beside);
    }
}

/// This CPU as the kept choices know it: its name, the paths it has, and lookalike's version.
pub fn cpu_key() -> String {
    let paths: Vec<&str> = available().iter().map(|p| p.name()).collect();
    format!(
        "{} [{}] lookalike {}",
        cpu_name(),
        paths.join(" "),
        env!("CARGO_PKG_VERSION")
    )
}

/// The processor's name as its maker writes it (CPUID's brand string on x86).
pub fn cpu_name() -> String {
    #[cfg(target_arch = "x86_64")]
    {
        use std::arch::x86_64::__cpuid;
        // Leaf 0x8000_0000 says how far the extended leaves go; the brand leaves are read
        // only when it covers them.
        let highest = __cpuid(0x8000_0000).eax;
        if highest >= 0x8000_0004 {
            let bytes: Vec<u8> = (0x8000_0002u32..=0x8000_0004)
                .flat_map(|leaf| {
                    let r = __cpuid(leaf);
                    [r.eax, r.ebx, r.ecx, r.edx]
                        .into_iter()
                        .flat_map(u32::to_le_bytes)
                })
                .take_while(|&b| b != 0)
                .collect();
            return String::from_utf8_lossy(&bytes).trim().to_string();
        }
    }
    std::env::consts::ARCH.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::ModelInfo;

    /// A stand-in network whose only property is how long it takes, to check the choice.
    struct Takes(Duration, Precision);

    impl Backbone for Takes {
        fn info(&self) -> &ModelInfo {
            &crate::model::lite0::INFO
        }
        fn precision(&self) -> Precision {
            self.1
        }
        fn forward(&self, batch: &Tensor) -> Result<(Tensor, Option<Tensor>)> {
            std::thread::sleep(self.0);
            Ok((batch.clone(), None))
        }
    }

    #[test]
    fn the_fastest_path_is_chosen_and_returned_built() {
        let build = |p: Precision| -> Result<Box<dyn Backbone>> {
            let took = match p {
                Precision::Bf16 => Duration::from_millis(1),
                _ => Duration::from_millis(20),
            };
            Ok(Box::new(Takes(took, p)))
        };
        let (choice, model) = measure(&[Precision::F32, Precision::Bf16], &build).unwrap();
        assert_eq!(choice.precision, Precision::Bf16);
        assert_eq!(model.precision(), Precision::Bf16);
        let rate = |p| choice.rates.iter().find(|(q, _)| *q == p).unwrap().1;
        assert!(
            rate(Precision::Bf16) > 2.0 * rate(Precision::F32),
            "{choice:?}"
        );
        assert!(choice.explain().starts_with("bf16, the fastest"));
    }
}
