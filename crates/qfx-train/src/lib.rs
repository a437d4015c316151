//! Quantization-aware training with learned binary points, on burn.

mod error;
pub mod quant;

pub use error::TrainError;
