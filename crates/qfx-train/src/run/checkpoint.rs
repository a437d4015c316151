//! Checkpoints: what `meta.json` records, loading with checksum checks, and writing a new one
//! without ever endangering the previous one.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use burn::tensor::Device;
use qfx_fixed::Format;
use serde::{Deserialize, Serialize};

use super::dir::{CheckpointDir, RunDir};
use super::{io_err, write_file};
use crate::config::RunConfig;
use crate::error::TrainError;
use crate::models::Model;
use crate::optim::load_module_tensors;
use crate::safetensors::{self, NamedTensor};

/// Version of the checkpoint layout written here.
pub const CHECKPOINT_VERSION: u32 = 1;

/// What a checkpoint's `meta.json` records besides the tensors.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CheckpointMeta {
    /// [`CHECKPOINT_VERSION`].
    pub version: u32,
    /// The configuration that produced it.
    pub config: RunConfig,
    /// Image shape `[c, h, w]` the model was built for.
    pub input_shape: [usize; 3],
    /// Epochs completed.
    pub epoch: usize,
    /// Steps done within the current epoch (non-zero for an interrupted epoch).
    pub step_in_epoch: usize,
    /// Steps done in all.
    pub global_step: usize,
    /// Running sums of the interrupted epoch: loss·images, correct predictions, images.
    pub epoch_sums: (f64, usize, usize),
    /// Optimizer updates done.
    pub optimizer_steps: u64,
    /// State of the augmentation RNG.
    pub rng: [u64; 4],
    /// The run finished all its epochs.
    pub finished: bool,
    /// Test accuracy after the last finished epoch, if evaluated.
    pub test_accuracy: Option<f64>,
    /// Each exported tensor's format (quantized runs): the learned binary points.
    pub formats: BTreeMap<String, Vec<Format>>,
    /// Checksums (FNV-1a, hex) of the two tensor files, to catch corruption.
    pub checksums: BTreeMap<String, String>,
}

/// A loaded checkpoint.
pub struct Checkpoint {
    /// Its directory.
    pub dir: PathBuf,
    /// Metadata.
    pub meta: CheckpointMeta,
    /// Model parameters and running statistics.
    pub model: Vec<NamedTensor>,
    /// Optimizer state.
    pub optimizer: Vec<NamedTensor>,
}

/// The checksum `meta.json` records for each tensor file (64-bit FNV-1a, hex): it catches
/// truncated and altered files, it is not a defence against deliberate tampering.
pub fn checksum(bytes: &[u8]) -> String {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for &b in bytes {
        h ^= b as u64;
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    format!("{h:016x}")
}

/// The checkpoint directory `path` names: a checkpoint directory itself, or a run directory
/// (its latest checkpoint).
pub fn resolve_checkpoint(path: &Path) -> Result<PathBuf, TrainError> {
    let dir = CheckpointDir::new(path);
    if dir.is_complete() {
        return Ok(dir.into_path());
    }
    Ok(RunDir::new(path).latest_checkpoint()?.into_path())
}

impl Checkpoint {
    /// Reads and checks a checkpoint (a checkpoint directory or a run directory).
    pub fn load(path: &Path) -> Result<Checkpoint, TrainError> {
        let dir = CheckpointDir::new(resolve_checkpoint(path)?);
        let meta_path = dir.meta();
        let text = std::fs::read_to_string(&meta_path).map_err(|e| io_err(&meta_path, e))?;
        let meta: CheckpointMeta = serde_json::from_str(&text).map_err(|e| {
            TrainError::Checkpoint(format!(
                "{}: not a qfx checkpoint: {e}",
                meta_path.display()
            ))
        })?;
        if meta.version != CHECKPOINT_VERSION {
            return Err(TrainError::Checkpoint(format!(
                "{}: checkpoint version {} is not supported (this qfx writes {CHECKPOINT_VERSION})",
                meta_path.display(),
                meta.version
            )));
        }
        let tensors = |file: &str| -> Result<Vec<NamedTensor>, TrainError> {
            let path = dir.file(file);
            let bytes = std::fs::read(&path).map_err(|e| io_err(&path, e))?;
            if meta.checksums.get(file) != Some(&checksum(&bytes)) {
                return Err(TrainError::Checkpoint(format!(
                    "{}: checksum does not match {} (corrupt or replaced file)",
                    path.display(),
                    CheckpointDir::META
                )));
            }
            Ok(safetensors::from_bytes(&bytes, &path)?.0)
        };
        // Checkpoints written before the built-in networks became layer graphs name tensors by
        // the old module paths: renamed here, once, for every reader.
        let rename = |t| {
            meta.config
                .model
                .rename_legacy_tensors(&meta.input_shape, t)
        };
        let model = rename(tensors(CheckpointDir::MODEL)?)?;
        let optimizer = rename(tensors(CheckpointDir::OPTIMIZER)?)?;
        Ok(Checkpoint {
            dir: dir.into_path(),
            meta,
            model,
            optimizer,
        })
    }

    /// Checks that this checkpoint's network is the one `config` describes.
    pub fn check_model(&self, config: &RunConfig) -> Result<(), TrainError> {
        if self.meta.config.model != config.model {
            return Err(TrainError::Checkpoint(format!(
                "{} holds a different network: checkpoint model {}, configured model {}",
                self.dir.display(),
                compact(&self.meta.config.model),
                compact(&config.model)
            )));
        }
        Ok(())
    }
}

fn compact<T: Serialize>(v: &T) -> String {
    serde_json::to_string(v).unwrap_or_default()
}

/// Loads a checkpoint's model (inference), checking it fits `config` when given.
pub fn load_model(path: &Path) -> Result<(Model, Checkpoint), TrainError> {
    let ckpt = Checkpoint::load(path)?;
    let config = &ckpt.meta.config;
    let model = config
        .model
        .init(&config.quant, &ckpt.meta.input_shape, &Device::flex())?;
    let model = load_module_tensors(model, ckpt.model.clone())?;
    Ok((model, ckpt))
}

/// Writes a checkpoint into `run`'s `checkpoints/` and points `latest` at it; keeps the previous
/// one and removes older ones.
pub(super) fn save_checkpoint(
    run: &RunDir,
    meta: &CheckpointMeta,
    model: &[NamedTensor],
    optimizer: &[NamedTensor],
) -> Result<PathBuf, TrainError> {
    // A checkpoint is only worth keeping if it can be resumed from: refuse non-finite weights
    // (or optimizer moments) rather than replace the last good checkpoint with them.
    for t in model.iter().chain(optimizer) {
        if let Some(i) = t.data.iter().position(|v| !v.is_finite()) {
            return Err(TrainError::NonFinite(format!(
                "`{}`[{i}] is {}; the checkpoint was not written",
                t.name, t.data[i]
            )));
        }
    }
    let root = run.checkpoints();
    std::fs::create_dir_all(&root).map_err(|e| io_err(&root, e))?;
    let name = run.new_checkpoint_name(meta.global_step);
    // Assembled aside and renamed into place: a crash leaves no half-written checkpoint under
    // a checkpoint's name.
    let tmp = CheckpointDir::new(run.staging_dir(&name));
    let _ = std::fs::remove_dir_all(tmp.path());
    std::fs::create_dir_all(tmp.path()).map_err(|e| io_err(tmp.path(), e))?;
    let mut meta = meta.clone();
    for (file, tensors) in [
        (CheckpointDir::MODEL, model),
        (CheckpointDir::OPTIMIZER, optimizer),
    ] {
        let bytes = safetensors::to_bytes(tensors, &BTreeMap::new())?;
        meta.checksums.insert(file.to_string(), checksum(&bytes));
        write_file(&tmp.file(file), &bytes)?;
    }
    let json = serde_json::to_string_pretty(&meta).expect("metadata serializes");
    write_file(&tmp.meta(), json.as_bytes())?;
    let dir = run.checkpoint(&name).into_path();
    std::fs::rename(tmp.path(), &dir).map_err(|e| io_err(&dir, e))?;
    let previous = std::fs::read_to_string(run.latest()).ok();
    write_file(&run.latest(), name.as_bytes())?;
    // Keep the new checkpoint and the one before it; drop older ones.
    if let Ok(entries) = std::fs::read_dir(&root) {
        for e in entries.flatten() {
            let n = e.file_name().to_string_lossy().to_string();
            let keep = n == name || previous.as_deref().map(str::trim) == Some(n.as_str());
            if RunDir::is_checkpoint_name(&n) && !keep {
                let _ = std::fs::remove_dir_all(e.path());
            }
        }
    }
    Ok(dir)
}
