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
//! User-provided names never reach the code: identifiers are `l<index>_<letters and digits>`
//! and `qfx_<letters and digits>`, and names in comments are percent-encoded
//! ([`names`]).

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
pub fn emit(model: &Model, out_dir: &Path) -> Result<EmitReport, HlsError> {
    project::export_with(out_dir, false, || emit::emit(model, out_dir))
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
