//! A checkpoint's `meta.json`: what it records, sealed with a checksum of its own text and
//! checked for consistency when read, so an edited or damaged one is refused with the reason
//! instead of giving a run that claims to be interrupted forever, or finished with loss 0.
//!
//! The seal is the first key of the document, `"checksum"`: the checksum of the text that
//! follows it, exactly as written (the document with that one line removed). It is computed on
//! the bytes, not on a re-serialization, so a newer qfx that adds a defaulted setting still
//! reads an older checkpoint. Like the tensor checksums it catches accidents (an edit, a
//! truncation), not deliberate tampering.

use std::collections::BTreeMap;

use qfx_fixed::Format;
use serde::{Deserialize, Serialize};

use super::checkpoint::checksum;
use super::dir::CheckpointDir;
use super::{io_err, write_file};
use crate::config::RunConfig;
use crate::error::TrainError;

/// Version of the checkpoint layout written here. Version 2 added the seal, the lineage
/// (`parent`) and the tensor and exported-model hashes; version-1 checkpoints still load.
pub const CHECKPOINT_VERSION: u32 = 2;

/// What a checkpoint's `meta.json` records besides the tensors.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CheckpointMeta {
    /// The checksum of the rest of the document as written (see the module documentation);
    /// `None` in memory and in version-1 checkpoints.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub checksum: Option<String>,
    /// [`CHECKPOINT_VERSION`].
    pub version: u32,
    /// The configuration that produced it.
    pub config: RunConfig,
    /// The sample shape the model was built for: `[c, h, w]` for images (all a version-1 or
    /// early version-2 checkpoint can hold), `[features]` or `[channels, length]` for tables and
    /// signals.
    pub input_shape: Vec<usize>,
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
    /// Test accuracy after the last finished epoch, if evaluated (classifiers).
    pub test_accuracy: Option<f64>,
    /// Test mean squared error after the last finished epoch (regression, autoencoders).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub test_mse: Option<f64>,
    /// The standardization of a table's features the model was trained with (computed on its
    /// training split, or inherited from the run it started from); `None` for images, which
    /// `config.normalize` normalizes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub standardize: Option<qfx_ir::Preprocess>,
    /// Each exported tensor's format (quantized runs): the learned binary points.
    pub formats: BTreeMap<String, Vec<Format>>,
    /// Checksums (FNV-1a, hex) of the two tensor files, to catch corruption.
    pub checksums: BTreeMap<String, String>,
    /// The checkpoint of the same run this one continues from (the previous save, or the one
    /// a resumed run started from): a run deletes only its own older checkpoints, never one
    /// outside this chain.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parent: Option<String>,
    /// The hash of the model's tensors ([`super::tensors_hash`]); the model exported from this
    /// checkpoint records the same hash (under `qfx_ir::CHECKPOINT_KEY`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub model_hash: Option<String>,
    /// The checksum of the run's `model.ir.json` as exported from this checkpoint (the last
    /// checkpoint of a finished quantized run): the run's model of record.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ir_hash: Option<String>,
    /// The cost term's β and controller state, when the run has one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub controller: Option<crate::cost::Controller>,
}

const SEAL: &str = "{\n  \"checksum\": \"";

impl CheckpointMeta {
    /// The metadata of a run of `config` on samples of `input_shape` before its first step:
    /// nothing done, the augmentation RNG at the seed's stream.
    pub(crate) fn fresh(config: &RunConfig, input_shape: &[usize]) -> CheckpointMeta {
        CheckpointMeta {
            checksum: None,
            version: CHECKPOINT_VERSION,
            config: config.clone(),
            input_shape: input_shape.to_vec(),
            epoch: 0,
            step_in_epoch: 0,
            global_step: 0,
            epoch_sums: (0.0, 0, 0),
            optimizer_steps: 0,
            rng: qfx_data::Rng::stream(config.train.seed, 1 << 32).state(),
            finished: false,
            test_accuracy: None,
            test_mse: None,
            standardize: None,
            formats: BTreeMap::new(),
            checksums: BTreeMap::new(),
            parent: None,
            model_hash: None,
            ir_hash: None,
            controller: None,
        }
    }

    /// Reads a checkpoint's `meta.json` (a regular file only), checks its seal and its
    /// consistency ([`Self::check`]).
    pub fn read(dir: &CheckpointDir) -> Result<CheckpointMeta, TrainError> {
        let path = dir.meta();
        let text = qfx_fs::read_to_string_regular(&path).map_err(|e| io_err(&path, e))?;
        let bad = |m: String| TrainError::Checkpoint(format!("{}: {m}", path.display()));
        let meta: CheckpointMeta =
            serde_json::from_str(&text).map_err(|e| bad(format!("not a qfx checkpoint: {e}")))?;
        if !(1..=CHECKPOINT_VERSION).contains(&meta.version) {
            return Err(bad(format!(
                "checkpoint version {} is not supported (this qfx writes {CHECKPOINT_VERSION})",
                meta.version
            )));
        }
        match (&meta.checksum, unseal(&text)) {
            (None, _) if meta.version == 1 => {}
            (None, _) => {
                return Err(bad(
                    "has no checksum (edited by hand, or not written by qfx); it cannot be \
                     trusted"
                        .into(),
                ))
            }
            (Some(want), Some((got, body))) if *want == got && checksum(body.as_bytes()) == got => {
            }
            (Some(_), _) => {
                return Err(bad(
                    "checksum does not match its content: the file was edited or damaged \
                     after qfx wrote it (a checkpoint's meta.json must not be edited)"
                        .into(),
                ))
            }
        }
        meta.check()
            .map_err(|m| bad(format!("inconsistent: {m}")))?;
        Ok(meta)
    }

    /// The input normalization the checkpoint's model was trained with: its standardization
    /// (tables), else its configuration's pixel normalization (images).
    pub fn preprocess(&self) -> qfx_ir::Preprocess {
        self.standardize
            .clone()
            .unwrap_or_else(|| self.config.normalize.preprocess())
    }

    /// The score recorded for the last finished epoch, as text (`top-1 91.20%`, `MSE 0.0123`).
    pub fn test_summary(&self) -> Option<String> {
        match (self.test_accuracy, self.test_mse) {
            (Some(a), _) => Some(format!("test accuracy {:.2}%", a * 100.0)),
            (None, Some(e)) => Some(format!("test MSE {e:.6}")),
            (None, None) => None,
        }
    }

    /// Writes `meta.json` into `dir`, sealed, atomically.
    pub fn write(&self, dir: &CheckpointDir) -> Result<(), TrainError> {
        write_file(&dir.meta(), self.sealed().as_bytes())
    }

    /// The document as written: pretty JSON with the seal as its first key.
    fn sealed(&self) -> String {
        let mut meta = self.clone();
        meta.checksum = None;
        let body = serde_json::to_string_pretty(&meta).expect("metadata serializes");
        let sum = checksum(body.as_bytes());
        // `body` starts with "{"; the seal line goes right after it.
        format!("{SEAL}{sum}\",{}", &body[1..])
    }

    /// The rules every checkpoint satisfies, so a damaged one is caught before use: epochs
    /// within the configured number, finished exactly when all are done, step counts that add
    /// up, running sums that fit the steps, an accuracy that is a fraction.
    pub fn check(&self) -> Result<(), String> {
        let epochs = self.config.train.epochs;
        let (loss, correct, seen) = self.epoch_sums;
        let (epoch, step, global) = (self.epoch, self.step_in_epoch, self.global_step);
        let fail = |m: String| Err(m);
        if epoch > epochs {
            return fail(format!(
                "epoch {epoch} is beyond the configured {epochs} epochs"
            ));
        }
        if self.finished != (epoch == epochs) {
            return fail(format!(
                "finished = {} with {epoch} of {epochs} epochs done",
                self.finished
            ));
        }
        if self.finished && step != 0 {
            return fail(format!("a finished run has {step} steps into an epoch"));
        }
        if global < step {
            return fail(format!(
                "{global} steps in all but {step} in the current epoch"
            ));
        }
        if epoch == 0 && global != step {
            return fail(format!(
                "{global} steps in all but no epoch finished and {step} steps into the first"
            ));
        }
        if epoch > 0 {
            let done = global - step;
            if done % epoch != 0 || done / epoch == 0 || step >= done / epoch {
                return fail(format!(
                    "{global} steps in all do not split into {epoch} whole epochs and {step} \
                     steps"
                ));
            }
        }
        if self.optimizer_steps != global as u64 {
            return fail(format!(
                "{} optimizer updates for {global} steps",
                self.optimizer_steps
            ));
        }
        let batch = self.config.train.batch_size;
        let sums_fit = loss.is_finite()
            && loss >= 0.0
            && correct <= seen
            && seen >= step
            && seen <= step.saturating_mul(batch)
            && (step > 0 || (loss == 0.0 && seen == 0));
        if !sums_fit {
            return fail(format!(
                "running sums (loss {loss}, {correct} correct of {seen} images) do not fit \
                 {step} steps of batch {batch}"
            ));
        }
        match (self.test_accuracy, self.test_mse) {
            (Some(a), _) if !(0.0..=1.0).contains(&a) => {
                return fail(format!("test accuracy {a} is not a fraction"))
            }
            (_, Some(e)) if !(e.is_finite() && e >= 0.0) => {
                return fail(format!("test mean squared error {e}"))
            }
            (Some(_), Some(_)) => {
                return fail("both a test accuracy and a test mean squared error".into())
            }
            (None, None) if epoch > 0 => {
                return fail(format!("{epoch} epochs done but no test accuracy"))
            }
            _ => {}
        }
        for file in [CheckpointDir::MODEL, CheckpointDir::OPTIMIZER] {
            if !self.checksums.contains_key(file) {
                return fail(format!("no checksum for {file}"));
            }
        }
        if self.input_shape.is_empty()
            || self.input_shape.len() > 3
            || self.input_shape.contains(&0)
        {
            return fail(format!("input shape {:?}", self.input_shape));
        }
        if let Some(p) = &self.standardize {
            if p.input != qfx_ir::PreprocessInput::Values {
                return fail("a standardization of pixels (tables hold values)".into());
            }
            p.validate(self.input_shape[0])
                .map_err(|e| format!("standardization: {}", e.message))?;
        }
        Ok(())
    }
}

/// The checksum a sealed document carries and the text it covers (the document without its
/// seal line), if it starts with a seal.
fn unseal(text: &str) -> Option<(String, String)> {
    let rest = text.strip_prefix(SEAL)?;
    let (sum, body) = rest.split_once("\",")?;
    Some((sum.to_string(), format!("{{{body}")))
}
