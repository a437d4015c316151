//! Vitis HLS export of `qfx-ir` models, verified bit for bit.
//!
//! [`emit`] writes a self-contained Vitis HLS project: a hand-written layer library
//! (`firmware/qfx_layers.h`, the numerics of every [`qfx_ir::Op`]), generated glue (one
//! `ap_fixed` typedef per tensor, accumulator and constant group; constants as integer codes;
//! a top function calling the layers in order), a testbench, a Tcl script, a README and a copy
//! of the IR. [`verify`] compiles the project's testbench with g++ against the real Xilinx
//! `ap_types` headers, runs it, and compares every output code with [`qfx_engine::run`].
//!
//! [`emit`] writes only into a folder that is new, empty or an earlier export (marked by
//! [`EXPORT_MARKER`]); [`export`] can force a folder holding other files. Neither writes
//! through a symbolic link out of the folder ([`project`]).
//!
//! [`cost`] estimates what the emitted design costs in DSP slices and LUTs (a counting model of
//! the code this crate writes, documented in the module).
//!
//! User-provided names never reach the code: identifiers are `l<index>_<letters and digits>`
//! and `qfx_<letters and digits>`, and names in comments are percent-encoded
//! ([`names`]).

pub mod cost;
mod emit;
pub mod names;
pub mod project;
mod template;
mod verify;

use std::fmt;
use std::path::Path;

use qfx_ir::Model;

pub use emit::{EmitOptions, EmitReport, IR_FILE};
pub use project::{check_out_dir, export, OutDir, EXPORT_MARKER};
pub use verify::{default_cache_dir, verify, verify_with, Mismatch, VerifyOptions, VerifyReport};

/// Writes the Vitis HLS project for `model` into `out_dir` with the default part and clock.
/// `out_dir` is created if needed; it must be new, empty or an earlier export (see
/// [`check_out_dir`]), and the files the export writes are replaced atomically.
///
/// ```
/// use qfx_ir::{AccumulationOrder, Codes, Layer, Model, Op, INPUT, IR_VERSION};
/// let f = |s: &str| s.parse::<qfx_fixed::Format>().unwrap();
/// let dense = Op::Dense {
///     weight: Codes::new(vec![2, 1], None, vec![f("ap_fixed<4,1>")], vec![4, -2]),
///     bias: None,
///     accumulator: vec![f("ap_fixed<12,4>")],
///     order: AccumulationOrder::default(),
/// };
/// let layer = |name: &str, input: &str, op, out: &str| Layer {
///     name: name.into(), inputs: vec![input.into()], op, output: f(out),
/// };
/// let model = Model {
///     version: IR_VERSION, name: "tiny".into(), input_shape: vec![2], preprocess: None,
///     layers: vec![
///         layer("q", INPUT, Op::Quantize, "ap_fixed<8,3>"),
///         layer("fc", "q", dense, "ap_fixed<8,3>"),
///     ],
/// };
/// let dir = std::env::temp_dir().join(format!("qfx-emit-doc-{}", std::process::id()));
/// let report = qfx_hls::emit(&model, &dir)?;
/// let top = std::fs::read_to_string(dir.join("firmware/model.cpp")).unwrap();
/// assert!(top.contains("qfx::dense<l1_fc_cfg0>(l0_q_out, l1_fc_w, l1_fc_b, qfx::all_channels, output);"));
/// assert_eq!(report.top, "qfx_tiny");
/// // What it costs: 4 bits × 8 bits products go to fabric, not DSPs.
/// let cost = qfx_hls::cost::estimate(&model).unwrap();
/// assert_eq!((cost.dsp(), cost.layers[1].macs), (0, 2));
/// # std::fs::remove_dir_all(&dir).unwrap();
/// # Ok::<(), qfx_hls::HlsError>(())
/// ```
pub fn emit(model: &Model, out_dir: &Path) -> Result<EmitReport, HlsError> {
    emit_with(model, out_dir, &EmitOptions::default())
}

/// [`emit`] with explicit options.
pub fn emit_with(
    model: &Model,
    out_dir: &Path,
    options: &EmitOptions,
) -> Result<EmitReport, HlsError> {
    export(model, out_dir, options, false)
}

/// What went wrong.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ErrorKind {
    /// The IR is invalid.
    InvalidModel,
    /// The IR uses something the exporter cannot express.
    Unsupported,
    /// Reading or writing files.
    Io,
    /// A template and its values disagree (a bug in qfx).
    Template,
    /// Bad verification inputs.
    BadInput,
    /// No C++ compiler is installed.
    NoCompiler,
    /// The C++ compiler is installed but does not work.
    BrokenCompiler,
    /// The `ap_types` headers could not be obtained.
    Headers,
    /// The generated C++ did not compile, or the compiler wrote no executable.
    Compile,
    /// The testbench failed or wrote unreadable output.
    Run,
    /// The integer engine refused an input.
    Engine,
}

/// An error with its kind and a message for people.
#[derive(Clone, Debug, PartialEq)]
pub struct HlsError {
    /// The kind.
    pub kind: ErrorKind,
    /// What happened.
    pub message: String,
}

impl HlsError {
    pub(crate) fn new(kind: ErrorKind, message: impl Into<String>) -> HlsError {
        HlsError {
            kind,
            message: message.into(),
        }
    }

    pub(crate) fn io(what: impl fmt::Display, e: std::io::Error) -> HlsError {
        HlsError::new(ErrorKind::Io, format!("{what}: {e}"))
    }
}

impl fmt::Display for HlsError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for HlsError {}
