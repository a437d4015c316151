//! The generator: one pass over the resolved graph ([`plan`]) writes one typedef per tensor,
//! accumulator and constant group, the constants as integer codes, one configuration struct per
//! layer call and the top function as calls into `qfx_layers.h`; [`files`] renders the
//! project's files from the templates.
//!
//! Each operation family has its own file: [`elementwise`] (casts and reshapes, activations,
//! table lookups, `Add`, `Multiply`, concatenation, BatchNorm, PReLU), [`mac`] (dense and
//! convolution loop templates), [`pool`] (max and average pooling, shortcuts) and [`khot`]
//! (multiplier-free shift-and-add layers).

use std::path::{Path, PathBuf};

use qfx_ir::Model;

use crate::names::is_safe_part;
use crate::template::Template;
use crate::{ErrorKind, HlsError};

mod elementwise;
mod files;
mod gen;
mod khot;
mod mac;
mod plan;
mod pool;

use plan::Plan;

/// File name of the IR copy inside a generated project (the same as in a run directory).
pub const IR_FILE: &str = qfx_ir::IR_FILE;

macro_rules! template {
    ($path:literal) => {
        Template {
            path: $path,
            text: include_str!(concat!("../../templates/", $path)),
        }
    };
}

pub(super) const LAYERS_H: Template = template!("firmware/qfx_layers.h");
pub(super) const MODEL_H: Template = template!("firmware/model.h");
pub(super) const MODEL_TYPES_H: Template = template!("firmware/model_types.h");
pub(super) const MODEL_WEIGHTS_H: Template = template!("firmware/model_weights.h");
pub(super) const MODEL_CPP: Template = template!("firmware/model.cpp");
pub(super) const TESTBENCH: Template = template!("tb/testbench.cpp");
pub(super) const BUILD_TCL: Template = template!("build.tcl");
pub(super) const README: Template = template!("README.md");

/// Choices that are not in the IR.
#[derive(Clone, Debug, PartialEq)]
pub struct EmitOptions {
    /// FPGA part for `set_part` (letters, digits, `-`, `_`, `.`).
    pub part: String,
    /// Clock period in ns.
    pub clock_ns: f64,
}

impl Default for EmitOptions {
    fn default() -> EmitOptions {
        EmitOptions {
            part: "xcu250-figd2104-2L-e".to_string(),
            clock_ns: 5.0,
        }
    }
}

/// What [`emit`] wrote.
#[derive(Clone, Debug, PartialEq)]
pub struct EmitReport {
    /// The project folder.
    pub dir: PathBuf,
    /// The top function's name.
    pub top: String,
    /// Files written, relative to `dir`.
    pub files: Vec<PathBuf>,
    /// Number of typedefs in `model_types.h`.
    pub typedefs: usize,
    /// Number of integer codes in `model_weights.h`.
    pub constants: usize,
}

/// Writes the Vitis HLS project for `model` into `out_dir` (created if needed; files it writes
/// are replaced atomically). The folder rules (`crate::project`) are checked by the caller.
pub(crate) fn emit_with(
    model: &Model,
    out_dir: &Path,
    options: &EmitOptions,
) -> Result<EmitReport, HlsError> {
    if !is_safe_part(&options.part) {
        return Err(HlsError::new(
            ErrorKind::BadInput,
            format!(
                "part name {:?} must be letters, digits, `-`, `_` or `.`",
                options.part
            ),
        ));
    }
    if !(options.clock_ns.is_finite() && options.clock_ns > 0.0 && options.clock_ns < 1e6) {
        return Err(HlsError::new(
            ErrorKind::BadInput,
            format!(
                "clock period {} ns is not a positive number",
                options.clock_ns
            ),
        ));
    }
    let plan = Plan::new(model)?;
    let files = files::render(&plan, model, options)?;
    std::fs::create_dir_all(out_dir)
        .map_err(|e| HlsError::io(format!("cannot create {}", out_dir.display()), e))?;
    let mut written = Vec::new();
    for (rel, text) in &files {
        write_atomic(&out_dir.join(rel), text.as_bytes())?;
        written.push(PathBuf::from(rel));
    }
    Ok(EmitReport {
        dir: out_dir.to_path_buf(),
        top: plan.top.clone(),
        files: written,
        typedefs: plan.gen.typedefs_count,
        constants: plan.gen.constants_count,
    })
}

/// Writes `bytes` to a temporary file beside `path` and renames it into place.
pub(crate) fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), HlsError> {
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent)
            .map_err(|e| HlsError::io(format!("cannot create {}", parent.display()), e))?;
    }
    qfx_fs::write_atomic(path, bytes)
        .map_err(|e| HlsError::io(format!("cannot write {}", path.display()), e))
}
