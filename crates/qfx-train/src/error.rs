//! Errors of the training crate.

use std::fmt;

/// What can go wrong while building or training a quantized model.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum TrainError {
    /// A quantizer specification that cannot be trained.
    Spec(String),
    /// Tensors or parameters whose shapes do not fit together.
    Shape(String),
    /// NaN or ±Inf where a finite value is needed.
    NonFinite(String),
    /// A checkpoint that is corrupt, truncated, or from an incompatible configuration.
    Checkpoint(String),
    /// A run configuration that cannot be used.
    Config(String),
    /// Reading or writing a file failed.
    Io(String),
    /// Data that does not fit the model (labels, image shape).
    Data(String),
    /// A run directory that another process is writing (it holds the run's lock).
    InUse(String),
}

impl fmt::Display for TrainError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TrainError::Spec(m) => write!(f, "invalid quantizer: {m}"),
            TrainError::Shape(m) => write!(f, "shape mismatch: {m}"),
            TrainError::NonFinite(m) => write!(f, "non-finite value: {m}"),
            TrainError::Checkpoint(m) => write!(f, "checkpoint: {m}"),
            TrainError::Config(m) => write!(f, "configuration: {m}"),
            TrainError::Io(m) | TrainError::Data(m) | TrainError::InUse(m) => f.write_str(m),
        }
    }
}

impl std::error::Error for TrainError {}
