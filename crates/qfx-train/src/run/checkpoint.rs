//! Checkpoints: loading with checksum checks, and writing a new one without ever endangering
//! the previous one; a run deletes only its own older checkpoints.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use burn::tensor::Device;
use serde::Serialize;

use super::dir::{CheckpointDir, RunDir};
use super::meta::CheckpointMeta;
use super::{io_err, write_file};
use crate::config::RunConfig;
use crate::error::TrainError;
use crate::models::Model;
use crate::optim::load_module_tensors;
use crate::safetensors::{self, NamedTensor};

/// A loaded checkpoint.
pub struct Checkpoint {
    /// Its directory.
    pub dir: PathBuf,
    /// Set when the run's `checkpoints/latest` was missing or damaged and this checkpoint was
    /// found by scanning: what was wrong, for a warning.
    pub recovered: Option<String>,
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

/// The hash of a model's tensors (64-bit FNV-1a over each tensor's name, shape and values, in
/// name order, hex): what ties an exported model to the checkpoint it came from. Like the
/// checksums, it catches accidents, not deliberate tampering.
pub fn tensors_hash(tensors: &[NamedTensor]) -> String {
    let mut sorted: Vec<&NamedTensor> = tensors.iter().collect();
    sorted.sort_by(|a, b| a.name.cmp(&b.name));
    let mut bytes = Vec::new();
    for t in sorted {
        bytes.extend_from_slice(t.name.as_bytes());
        bytes.push(0);
        bytes.extend_from_slice(&(t.shape.len() as u64).to_le_bytes());
        for &d in &t.shape {
            bytes.extend_from_slice(&(d as u64).to_le_bytes());
        }
        for v in &t.data {
            bytes.extend_from_slice(&v.to_bits().to_le_bytes());
        }
    }
    checksum(&bytes)
}

/// The checkpoint directory `path` names: a checkpoint directory itself (it has a
/// `meta.json`), or a run directory (its current checkpoint, [`RunDir::find_checkpoint`]).
pub fn resolve_checkpoint(path: &Path) -> Result<PathBuf, TrainError> {
    Ok(locate(path)?.0.into_path())
}

/// [`resolve_checkpoint`], with the note of a recovery from a missing or damaged `latest`.
fn locate(path: &Path) -> Result<(CheckpointDir, Option<String>), TrainError> {
    let dir = CheckpointDir::new(path);
    if dir.has_meta() {
        return Ok((dir, None));
    }
    let found = RunDir::new(path).find_checkpoint()?;
    Ok((found.checkpoint, found.recovered))
}

impl Checkpoint {
    /// Reads and checks a checkpoint (a checkpoint directory or a run directory): its
    /// `meta.json` (sealed and consistent) and both tensor files against their checksums.
    pub fn load(path: &Path) -> Result<Checkpoint, TrainError> {
        let (dir, recovered) = locate(path)?;
        let meta = CheckpointMeta::read(&dir)?;
        let tensors = |file: &str| -> Result<Vec<NamedTensor>, TrainError> {
            let path = dir.file(file);
            let bytes = qfx_fs::read_regular(&path).map_err(|e| io_err(&path, e))?;
            if meta.checksums.get(file) != Some(&checksum(&bytes)) {
                return Err(TrainError::Checkpoint(format!(
                    "{}: checksum does not match {} (corrupt or replaced file)",
                    path.display(),
                    CheckpointDir::META
                )));
            }
            Ok(safetensors::from_bytes(&bytes, &path)?.0)
        };
        let model = tensors(CheckpointDir::MODEL)?;
        let optimizer = tensors(CheckpointDir::OPTIMIZER)?;
        if let Some(hash) = &meta.model_hash {
            if *hash != tensors_hash(&model) {
                return Err(TrainError::Checkpoint(format!(
                    "{}: the model's tensors do not match the hash {} records",
                    dir.path().display(),
                    CheckpointDir::META
                )));
            }
        }
        // Checkpoints written before the built-in networks became layer graphs name tensors by
        // the old module paths: renamed here, once, for every reader.
        let rename = |t| {
            meta.config
                .model
                .rename_legacy_tensors(&meta.input_shape, t)
        };
        let (model, optimizer) = (rename(model)?, rename(optimizer)?);
        Ok(Checkpoint {
            dir: dir.into_path(),
            recovered,
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
    let model = super::build_model(&ckpt.meta.config, &ckpt.meta.input_shape, &Device::flex())?;
    let model = load_module_tensors(model, ckpt.model.clone())?;
    Ok((model, ckpt))
}

/// Writes a checkpoint into `run`'s `checkpoints/` and points `latest` at it; sets its
/// `model_hash` and takes its `parent` from `meta`. Then deletes the checkpoints of this run's
/// chain older than the parent ([`prune`]). Returns the new checkpoint's directory.
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
    super::lock::ensure_dir(&root)?;
    let name = run.new_checkpoint_name(meta.global_step);
    // Assembled aside and renamed into place: a crash leaves no half-written checkpoint under
    // a checkpoint's name.
    let tmp = CheckpointDir::new(run.staging_dir(&name));
    let _ = std::fs::remove_dir_all(tmp.path());
    std::fs::create_dir_all(tmp.path()).map_err(|e| io_err(tmp.path(), e))?;
    let mut meta = meta.clone();
    meta.model_hash = Some(tensors_hash(model));
    for (file, tensors) in [
        (CheckpointDir::MODEL, model),
        (CheckpointDir::OPTIMIZER, optimizer),
    ] {
        let bytes = safetensors::to_bytes(tensors, &BTreeMap::new())?;
        meta.checksums.insert(file.to_string(), checksum(&bytes));
        write_file(&tmp.file(file), &bytes)?;
    }
    meta.check().map_err(|m| {
        TrainError::Checkpoint(format!("refusing to write an inconsistent checkpoint: {m}"))
    })?;
    meta.write(&tmp)?;
    let dir = run.checkpoint(&name).into_path();
    std::fs::rename(tmp.path(), &dir).map_err(|e| io_err(&dir, e))?;
    write_file(&run.latest(), name.as_bytes())?;
    prune(run, &name);
    Ok(dir)
}

/// Deletes the checkpoints of `newest`'s chain (each checkpoint's `parent`) beyond its parent:
/// the run keeps its newest checkpoint and the one before it. A checkpoint outside the chain —
/// a newer one left when a run resumed from an older `latest`, another history — is never
/// deleted.
fn prune(run: &RunDir, newest: &str) {
    let parent_of = |name: &str| -> Option<String> {
        let text = qfx_fs::read_to_string_regular(&run.checkpoint(name).meta()).ok()?;
        let value: serde_json::Value = serde_json::from_str(&text).ok()?;
        value.get("parent")?.as_str().map(str::to_string)
    };
    let mut seen = BTreeSet::from([newest.to_string()]);
    let Some(parent) = parent_of(newest) else {
        return;
    };
    seen.insert(parent.clone());
    let mut next = parent_of(&parent);
    while let Some(name) = next {
        if !RunDir::is_checkpoint_name(&name)
            || name.contains(['/', '\\'])
            || !seen.insert(name.clone())
        {
            break;
        }
        next = parent_of(&name);
        let _ = std::fs::remove_dir_all(run.checkpoint(&name).path());
    }
}
