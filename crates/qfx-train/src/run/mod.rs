//! Runs: float pre-training, QAT, PTQ and evaluation, with a run directory, checkpoints and
//! per-epoch metrics.
//!
//! A run directory ([`RunDir`], which names every file below) holds:
//! - `config.toml`: the configuration used (a resumed run must match it);
//! - `metrics.jsonl`: one JSON object per finished epoch (loss, accuracies or errors, learning
//!   rate, the binary point of every exported tensor, seconds);
//! - `checkpoints/step-NNNNNNNN/` with `model.safetensors`, `optimizer.safetensors` and
//!   `meta.json` (sealed with a checksum and checked when read), and `checkpoints/latest`
//!   naming the newest complete one. A checkpoint is written into a temporary directory and
//!   renamed into place before `latest` is switched (atomically) to it, so a crash at any
//!   moment leaves the previous checkpoint intact. A missing or damaged `latest` is recovered
//!   from by scanning for the newest complete checkpoint; a run deletes only the older
//!   checkpoints of its own chain (each names its `parent`);
//! - `model.ir.json` (quantized runs): the exported model, the run's model of record, tied to
//!   the checkpoint it came from ([`model_of_record`]); `model.init.ir.json`, the model as
//!   calibrated before QAT;
//! - `run.lock`: the advisory lock of the process writing the run ([`RunLock`]), naming it.
//!
//! A new run never starts on top of checkpoints, nor overwrites files qfx did not write
//! ([`clear_run`] is the only deletion of a whole run, and it refuses a directory holding
//! anything else).
//!
//! Reproducibility: weights are initialized from the seed, epoch `e` visits the training set in
//! `qfx_data::epoch_order(seed, e)`, and augmentation draws from an RNG whose state is saved in
//! every checkpoint, so a resumed run reaches the same weights as an uninterrupted one.
//!
//! Modules: [`RunDir`] and [`CheckpointDir`] (the layout), checkpoints, the training loop, PTQ,
//! evaluation and calibration, the exported IR, metrics.

mod checkpoint;
mod claim;
mod dir;
mod eval;
mod feed;
mod ir;
mod lock;
mod meta;
mod metrics;
mod ptq;
mod record;
mod train_loop;
mod weights;

use std::path::Path;

use burn::tensor::Device;

pub use checkpoint::{checksum, load_model, resolve_checkpoint, tensors_hash, Checkpoint};
pub use claim::{check_clearable, clear_run};
pub use dir::{CheckpointDir, Found, RunDir};
pub use eval::{calibrate, evaluate, Accuracy, Errors, Score, Tally};
pub use feed::sample_inputs;
pub use ir::{export_ir, formats};
pub use lock::RunLock;
pub use meta::{CheckpointMeta, CHECKPOINT_VERSION};
pub use metrics::{read_metrics, EpochMetrics};
pub use ptq::ptq;
pub use record::{model_of_record, Record};
pub use train_loop::{train, Event, Outcome, Start};
pub use weights::{create_float_run, infer, model_with_weights};

use crate::config::RunConfig;
use crate::error::TrainError;
use crate::models::Model;

fn io_err(path: &Path, e: std::io::Error) -> TrainError {
    TrainError::Io(format!("{}: {e}", path.display()))
}

/// Writes a run file atomically (a crash leaves the old file or the new one).
fn write_file(path: &Path, bytes: &[u8]) -> Result<(), TrainError> {
    qfx_fs::write_atomic(path, bytes)
        .map_err(|e| TrainError::Io(format!("writing {}: {e}", path.display())))
}

/// Writes an exported model atomically.
fn save_ir(ir: &qfx_ir::Model, path: &Path) -> Result<(), TrainError> {
    ir.save(path).map_err(|e| TrainError::Io(e.to_string()))
}

/// The configured model initialized from the configured seed. The backend's random generator
/// is process-wide, so seeding and drawing happen under one lock: two runs in one process (the
/// test harness's threads, a library user's) cannot interleave and change each other's weights.
fn init_seeded(config: &RunConfig, input: &[usize], device: &Device) -> Result<Model, TrainError> {
    static INIT: std::sync::Mutex<()> = std::sync::Mutex::new(());
    let _guard = INIT.lock().unwrap_or_else(|e| e.into_inner());
    device.seed(config.train.seed);
    build_model(config, input, device)
}

/// What a checkpoint records of a run's input normalization: a table's standardization (images
/// are normalized by the configuration's `[normalize]`, which the checkpoint holds already).
fn table_standardization(
    data: qfx_data::DataRef<'_>,
    p: &qfx_ir::Preprocess,
) -> Option<qfx_ir::Preprocess> {
    matches!(data.train, qfx_data::Split::Table(_)).then(|| p.clone())
}

/// The configured network for samples of shape `input` (the one place this module builds one),
/// after checking that training it fits this machine's memory: a network too large is refused
/// with the figures before a tensor is allocated, instead of aborting on a failed allocation.
fn build_model(config: &RunConfig, input: &[usize], device: &Device) -> Result<Model, TrainError> {
    let graph = config.model.preset(input)?.spec.resolve()?;
    let footprint = graph.footprint();
    let need = footprint.training_bytes(config.train.batch_size);
    if let Some(available) = available_memory() {
        if need > available {
            let gib = |b: u64| b as f64 / (1u64 << 30) as f64;
            return Err(TrainError::Config(format!(
                "the network needs about {:.1} GiB to train ({} parameters, {} layer outputs per \
                 sample × batch {}), more than the {:.1} GiB this machine has available; make it \
                 smaller or lower train.batch_size",
                gib(need),
                footprint.parameters,
                footprint.activations,
                config.train.batch_size,
                gib(available)
            )));
        }
    }
    config.model.init(&config.quant, input, device)
}

/// The memory available to new allocations (Linux's `MemAvailable`), if known.
fn available_memory() -> Option<u64> {
    let text = std::fs::read_to_string("/proc/meminfo").ok()?;
    let line = text.lines().find(|l| l.starts_with("MemAvailable:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib.saturating_mul(1024))
}
