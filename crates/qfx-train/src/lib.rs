//! Quantization-aware training with learned binary points, on burn (pinned `=0.22.1`; no other
//! qfx crate depends on it).
//!
//! - [`graph`]: networks as layer graphs — the description a user writes, its resolution, the
//!   trainable model, and the built-in networks as presets; [`models::ModelConfig`] picks one.
//! - [`quant`]: the differentiable fixed-point quantizer (fused burn backend extension for the
//!   Flex CPU backend, composed fallback for any backend), bit-exact with `qfx-fixed`.
//! - [`Quantizer`]: a module holding one tensor's learnable binary point(s).
//! - [`layers`], [`activations`], [`bnn`]: fixed-point layers in which every tensor is quantized.
//! - [`export`]: the trained model as the IR the integer engine and the HLS back end read.
//! - [`run`]: run directories — training, PTQ, evaluation, checkpoints, the model of record.
//!
//! A network from its description, calibrated and exported, in a few lines:
//!
//! ```
//! use burn::tensor::{Device, Distribution, Tensor};
//! use qfx_train::graph::GraphSpec;
//! use qfx_train::layers::QuantConfig;
//! use qfx_train::models::ModelConfig;
//! use qfx_train::Calibration;
//!
//! let spec: GraphSpec = toml::from_str(r#"
//!     input = [1, 8, 8]
//!     layers = [
//!       { name = "conv", op = "conv2d", filters = 4, kernel = 3, padding = "same" },
//!       { name = "bn", op = "batch_norm" },
//!       { name = "act", op = "relu" },
//!       { name = "gap", op = "global_avg_pool" },
//!       { name = "head", op = "dense", units = 3 },
//!     ]
//! "#).unwrap();
//! let quant = QuantConfig { bits: 6, ..QuantConfig::default() };
//! let device = Device::flex();
//! let mut model = ModelConfig::Graph(spec).init(&quant, &[1, 8, 8], &device)?;
//! let x = Tensor::<4>::random([16, 1, 8, 8], Distribution::Normal(0.0, 1.0), &device);
//! model.calibrate(x, Calibration::MaxAbs);
//! let ir = qfx_train::export::export(&model, "doc")?;
//! let names: Vec<&str> = ir.layers.iter().map(|l| l.name.as_str()).collect();
//! assert_eq!(names, ["input_q", "conv", "bn", "act", "gap", "head"]);
//! assert_eq!(ir.layers[1].output.width(), 6);
//! # Ok::<(), qfx_train::TrainError>(())
//! ```

pub mod activations;
pub mod bnn;
pub mod config;
pub mod cost;
pub mod data;
mod error;
pub mod export;
pub mod graph;
mod host;
pub mod kernels;
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
