//! Vitis HLS export of `qfx-ir` models, verified bit for bit.
//!
//! [`emit`] writes a self-contained Vitis HLS project: a hand-written layer library
//! (`firmware/qfx_layers.h`, the numerics of every [`qfx_ir::Op`]), generated glue (one
//! `ap_fixed` typedef per tensor, accumulator and constant group; constants as integer codes;
//! a top function calling the layers in order), a testbench, a Tcl script, a README and a copy
//! of the IR. [`verify`] compiles the project's testbench with g++ against the real Xilinx
//! `ap_types` headers, runs it, and compares every output code with [`qfx_engine::run`].
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
mod template;
mod verify;

use std::fmt;

pub use emit::{emit, emit_with, EmitOptions, EmitReport, IR_FILE};
pub use verify::{default_cache_dir, verify, verify_with, Mismatch, VerifyOptions, VerifyReport};

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
    /// No C++ compiler.
    NoCompiler,
    /// The `ap_types` headers could not be obtained.
    Headers,
    /// The generated C++ did not compile.
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
