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
}

impl fmt::Display for TrainError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TrainError::Spec(m) => write!(f, "invalid quantizer: {m}"),
            TrainError::Shape(m) => write!(f, "shape mismatch: {m}"),
            TrainError::NonFinite(m) => write!(f, "non-finite value: {m}"),
        }
    }
}

impl std::error::Error for TrainError {}
