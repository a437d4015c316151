//! Verilog back end for `qfx-ir` models, proven bit-exact in Verilator and measured in Yosys.
//!
//! [`export`] writes a Verilog project: one module per layer and a top module `qfx_top`, in one
//! of two architectures ([`Architecture`]). Networks of flat tensors are fully unrolled: every
//! layer's hardware exists once per output element, one inference enters per clock, and a
//! register stage follows every layer that computes (the latency in cycles is in the generated
//! header; [`design`]). Networks with convolutions or pooling stream their images one pixel per
//! clock through line buffers, the kernel window computed in one clock (`stream.rs`). [`verify`]
//! builds the design with Verilator, streams inputs through it and compares every output code
//! with the integer engine; [`synth`] runs Yosys `synth_xilinx` and reports the primitives it
//! maps to, per layer; [`side_by_side`] puts that next to the cost model's estimate.
//!
//! Numerics are the IR's (`ARCHITECTURE.md` §3–§5): every assignment is the logic of
//! `Fixed::cast` for its two formats ([`CastLogic`]); sums of products accumulate step by step
//! in the accumulator's format unless reassociation provably gives the same codes (see
//! [`design`]); constant products are shifts and adds on the canonical signed digits of the
//! constant (`qfx_fixed::khot::signed_digits`), with common subexpressions shared across a
//! layer's weight matrix, or a `*` where [`Multipliers`] says so; `±1 × ±1` layers are XNOR and
//! popcount. An operation or size the back end does not build is refused with a message naming
//! the layer, before anything is written.

mod cast;
mod compare;
mod cse;
pub mod design;
mod ops;
mod project;
mod sim;
mod stream;
mod synth;
mod tools;
mod verify;
mod verilog;

pub mod testing;

use std::fmt;
use std::path::Path;

pub use cast::CastLogic;
pub use compare::side_by_side;
pub use design::{
    generate, io_layout, Architecture, Design, LayerInfo, Multipliers, Port, RtlOptions, SumInfo,
    Timing, TOP,
};
pub use project::{check_out_dir, export, ExportReport, RTL_MARKER, VERILOG_FILE};
pub use sim::{Beats, Simulation};
pub use synth::{
    synth, yosys_reads, LayerResources, Resources, SynthOptions, SynthReport, FAMILIES, SYNTH_FILE,
};
pub use tools::Tool;
pub use verify::{verify, Mismatch, VerifyReport};

/// The IR copy inside a project (verification and synthesis read only the project folder).
pub const IR_FILE: &str = "model.ir.json";

/// What went wrong.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ErrorKind {
    /// The IR is invalid.
    InvalidModel,
    /// The IR uses something this back end does not build (the message names the layer).
    Unsupported,
    /// Reading or writing files.
    Io,
    /// Bad arguments or a folder that may not be written.
    BadInput,
    /// Verilator or Yosys is not installed.
    NoTool,
    /// Verilator or Yosys is installed but failed.
    Tool,
    /// The simulation failed or wrote unreadable output.
    Run,
    /// The integer engine refused an input.
    Engine,
}

/// An error with its kind and a message for people.
#[derive(Clone, Debug, PartialEq)]
pub struct RtlError {
    /// The kind.
    pub kind: ErrorKind,
    /// What happened.
    pub message: String,
}

impl RtlError {
    pub(crate) fn new(kind: ErrorKind, message: impl Into<String>) -> RtlError {
        RtlError {
            kind,
            message: message.into(),
        }
    }

    pub(crate) fn io(what: impl fmt::Display, e: std::io::Error) -> RtlError {
        RtlError::new(ErrorKind::Io, format!("{what}: {e}"))
    }
}

impl fmt::Display for RtlError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for RtlError {}

/// Writes `bytes` to `path` atomically (`qfx_fs::write_atomic`).
pub(crate) fn write_file(path: &Path, bytes: &[u8]) -> Result<(), RtlError> {
    qfx_fs::write_atomic(path, bytes)
        .map_err(|e| RtlError::io(format!("cannot write {}", path.display()), e))
}
