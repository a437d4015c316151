//! Imports a float model trained elsewhere (PyTorch, Keras through `tf2onnx`, anything that
//! writes ONNX) into a qfx layer graph ([`qfx_train::graph::GraphSpec`]) with its weights, and
//! writes it as a float run that every qfx command takes: `qfx eval`, `qfx ptq --from`,
//! `qfx train --from` (QAT with learned binary points), then `qfx export hls` and
//! `qfx verify-hls` on the quantized run.
//!
//! ```no_run
//! let imported = qfx_onnx::import_file("model.onnx".as_ref(), &qfx_onnx::Options::default())?;
//! let normalize = qfx_train::config::Normalize { mean: vec![0.286], std: vec![0.353] };
//! imported.write_run("runs/imported".as_ref(), normalize)?;
//! # Ok::<(), qfx_onnx::OnnxError>(())
//! ```
//!
//! # Reading
//!
//! The file is decoded with `prost` into the messages and fields the importer reads, declared
//! in `src/proto.rs` (README.md says why no ONNX crate). Opsets 13 and later of the default
//! domain are read. Weights stored as external data are read from the files the model names, relative to
//! its directory. Nothing is written until the whole model has been translated and built.
//!
//! # Operators and how they map
//!
//! | ONNX | qfx layer |
//! |---|---|
//! | `Conv` (1-D, 2-D; `group`, `pads`, `auto_pad`, `strides`, `dilations`) | `conv1d` / `conv2d` with explicit padding; weight layout `[out, in/groups, kh, kw]` as ONNX's |
//! | `Gemm` (`transB`, `alpha`, `beta`) | `dense`: weight `α·B` as `[in, out]` (transposed when `transB = 0` is not set), bias `β·C` |
//! | `MatMul` by a constant matrix, `Add` of a constant after it | `dense`, the `Add` merged into its bias |
//! | `BatchNormalization` (inference) | `batch_norm` with γ, β, μ and σ²; ONNX's ε moved into σ² ([`QFX_BN_EPSILON`]). A BatchNorm the exporter folded into the convolution stays folded (a biased `conv2d`) |
//! | `Relu`, `LeakyRelu` | `relu`, `leaky_relu` (slope α) |
//! | `Clip` | `relu` for `[0, ∞)`, clipped `relu` for `[0, max]` (ReLU6), `hard_tanh` for other finite bounds |
//! | `Sigmoid`, `Tanh` | `sigmoid` (table of 1,024 entries over `[−8, 8)`), `tanh` (over `[−4, 4)`): the float model computes the function itself, the table is used once quantized (PTQ, QAT, hardware) |
//! | `HardSigmoid` | `hard_sigmoid` (slope α, offset β) |
//! | `Add`, `Mul` of two activations of one shape | `add`, `multiply` |
//! | `Add`, `Mul` of an activation and a per-channel (or scalar) constant | merged into the bias of the dense or convolution layer before it, else a `batch_norm` layer holding the shift or scale |
//! | `Concat` along the channels | `concat` |
//! | `MaxPool`, `AveragePool` (no padding, whole windows) | `max_pool2d` / `avg_pool2d` (and their 1-D forms) |
//! | `GlobalAveragePool`, `GlobalMaxPool` | `global_avg_pool`, `global_max_pool` |
//! | `Flatten` (axis 1), `Reshape` keeping the batch | no layer of their own: a `flatten` or `reshape` layer where the next layer needs the new shape |
//! | `Identity`, `Dropout` | removed |
//! | `Constant`; `Shape`, `Gather`, `Unsqueeze`, `Concat`, `Cast`, `Add`, `Mul` of constants | folded |
//!
//! Anything else is refused before anything is written, with every unsupported node listed
//! ([`SUPPORTED`]). The network has one input of fixed size but for the batch, and one output.
//! Every network starts with a `quantize` layer named `input_q` (the input cast to fixed point
//! when the model is quantized; the identity in float).

mod convert;
mod error;
mod load;
#[allow(missing_docs)]
mod proto;
mod run;

use std::path::Path;

pub use convert::{Imported, Options, QFX_BN_EPSILON, SUPPORTED};
pub use error::OnnxError;
pub use load::MIN_OPSET;

/// Reads and translates the ONNX file at `path` (external data read from its directory).
pub fn import_file(path: &Path, options: &Options) -> Result<Imported, OnnxError> {
    let source = load::read(path)?;
    convert::translate(&source, options)
}

/// Translates an ONNX model held in memory (`name` names it in errors); a model whose weights
/// are stored as external data must be imported from its file ([`import_file`]).
pub fn import_bytes(bytes: &[u8], name: &str, options: &Options) -> Result<Imported, OnnxError> {
    let source = load::decode(bytes, name, None)?;
    convert::translate(&source, options)
}
