//! `metrics.jsonl`: one JSON line per finished epoch, appended as training goes, cut back when a
//! run resumes from an earlier checkpoint.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::Path;

use qfx_fixed::Format;
use serde::{Deserialize, Serialize};

use super::dir::RunDir;
use super::eval::Score;
use super::{io_err, write_file};
use crate::error::TrainError;

/// One line of `metrics.jsonl`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct EpochMetrics {
    /// Epoch number (1-based).
    pub epoch: usize,
    /// Learning rate at the epoch's last step.
    pub lr: f64,
    /// Mean training loss (cross-entropy, or the mean squared error).
    pub train_loss: f64,
    /// Training accuracy (on augmented batches, quantized forward pass); classifiers only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub train_accuracy: Option<f64>,
    /// Test accuracy (classifiers) or errors (values).
    pub test: Score,
    /// Formats of every exported tensor (quantized runs).
    pub formats: BTreeMap<String, Vec<Format>>,
    /// Seconds the epoch took.
    pub seconds: f64,
    /// The exported model's hardware estimate after the epoch (quantized runs).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cost: Option<crate::cost::Measured>,
    /// The cost term's weight β at the epoch's end (runs with a cost term).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub beta: Option<f64>,
}

/// Appends one epoch's line to the run's metrics.
pub(super) fn append(run: &RunDir, metrics: &EpochMetrics) -> Result<(), TrainError> {
    let path = run.metrics();
    let line = serde_json::to_string(metrics).expect("metrics serialize");
    let mut f = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&path)
        .map_err(|e| io_err(&path, e))?;
    writeln!(f, "{line}").map_err(|e| io_err(&path, e))
}

/// Keeps the metrics of the first `epochs` epochs (a resumed run rewrites the later ones).
pub(super) fn truncate(run: &RunDir, epochs: usize) -> Result<(), TrainError> {
    let path = run.metrics();
    let text = match qfx_fs::read_to_string_regular(&path) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => String::new(),
        Err(e) => return Err(io_err(&path, e)),
    };
    let kept: String = text
        .lines()
        .filter(|l| !l.trim().is_empty())
        .take(epochs)
        .map(|l| format!("{l}\n"))
        .collect();
    write_file(&path, kept.as_bytes())
}

/// Reads `metrics.jsonl` of the run directory `run`.
pub fn read_metrics(run: &Path) -> Result<Vec<EpochMetrics>, TrainError> {
    let path = RunDir::new(run).metrics();
    let text = qfx_fs::read_to_string_regular(&path).map_err(|e| io_err(&path, e))?;
    text.lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty())
        .map(|(i, l)| {
            serde_json::from_str(l)
                .map_err(|e| TrainError::Io(format!("{} line {}: {e}", path.display(), i + 1)))
        })
        .collect()
}
