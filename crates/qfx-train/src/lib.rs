//! Quantization-aware training with learned binary points, on burn (pinned `=0.22.1`; no other
//! qfx crate depends on it).
//!
//! - [`quant`]: the differentiable fixed-point quantizer (fused burn backend extension for the
//!   Flex CPU backend, composed fallback for any backend), bit-exact with `qfx-fixed`.
//! - [`Quantizer`]: a module holding one tensor's learnable binary point(s).
//! - [`layers`]: fixed-point layers in which every tensor is quantized.
//! - [`bnn`]: the binarized network's layers (binary convolutions, sign, PReLU).

pub mod activations;
pub mod bnn;
pub mod config;
pub mod data;
mod error;
pub mod export;
pub mod graph;
mod host;
pub mod layers;
pub mod models;
pub mod optim;
pub mod quant;
mod quantizer;
pub mod run;
pub mod safetensors;
pub mod train;

pub use error::TrainError;
pub use quantizer::{Calibration, QTensor, Quantizer};
