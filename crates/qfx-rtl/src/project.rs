//! A Verilog project on disk, with the HLS export's folder rules (`qfx-hls/src/project.rs`): the
//! output folder must be new, empty or an earlier Verilog export (marked by [`RTL_MARKER`]);
//! a folder holding other files is written only when forced, and never through a symbolic link
//! in place of one of its subfolders. Every file is written atomically.
//!
//! Layout: `rtl/qfx_top.v` (every module), `model.ir.json` (the IR the design was built from;
//! verification and synthesis read only the project), `design.json` (how the design is driven:
//! unrolled or streaming, beats and clocks per inference), `README.md`.

use std::path::{Path, PathBuf};

use qfx_hls::names::comment_text;
use qfx_ir::Model;

use crate::design::{generate, Design, RtlOptions};
use crate::{write_file, ErrorKind, RtlError, IR_FILE};

/// The file that marks a folder as a Verilog export.
pub const RTL_MARKER: &str = ".qfx-rtl-export";

/// The design's source inside the project.
pub const VERILOG_FILE: &str = "rtl/qfx_top.v";

/// How the design is driven ([`crate::Timing`], JSON), for verification.
pub const TIMING_FILE: &str = "design.json";

/// Subfolders the export, verification and synthesis write into (each must be a real folder).
pub const SUBFOLDERS: [&str; 3] = ["rtl", WORK_VERIFY, WORK_SYNTH];

/// Verilator's build and the simulation's files.
pub const WORK_VERIFY: &str = ".qfx-verify";
/// Yosys's script and log.
pub const WORK_SYNTH: &str = ".qfx-synth";

const MARKER_TEXT: &str = "This folder was written by `qfx export verilog`: the next export into \
                           it replaces the files it generates.\n";

/// What an export wrote.
#[derive(Clone, Debug)]
pub struct ExportReport {
    /// The project folder.
    pub dir: PathBuf,
    /// The files written, relative to it.
    pub files: Vec<String>,
    /// The design.
    pub design: Design,
}

/// Refuses `path` if it is a symbolic link.
pub(crate) fn refuse_symlink(path: &Path) -> Result<(), RtlError> {
    match std::fs::symlink_metadata(path) {
        Ok(m) if m.file_type().is_symlink() => Err(RtlError::new(
            ErrorKind::BadInput,
            format!(
                "{} is a symbolic link: qfx writes only into real folders inside the project, \
                 never through a link out of it; replace the link with a folder",
                path.display()
            ),
        )),
        _ => Ok(()),
    }
}

/// Whether a Verilog export may write into `dir`: `Ok(true)` when it is new or empty (so a
/// failed export removes what it created), `Ok(false)` for an earlier export or, with
/// `force`, a folder of other files.
pub fn check_out_dir(dir: &Path, force: bool) -> Result<bool, RtlError> {
    let meta = match std::fs::metadata(dir) {
        Ok(m) => m,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(true),
        Err(e) => return Err(RtlError::io(format!("cannot read {}", dir.display()), e)),
    };
    if !meta.is_dir() {
        return Err(RtlError::new(
            ErrorKind::BadInput,
            format!("{} exists and is not a folder", dir.display()),
        ));
    }
    for sub in SUBFOLDERS {
        refuse_symlink(&dir.join(sub))?;
    }
    let mut entries = std::fs::read_dir(dir)
        .map_err(|e| RtlError::io(format!("cannot read {}", dir.display()), e))?;
    if entries.next().is_none() {
        return Ok(true);
    }
    if std::fs::symlink_metadata(dir.join(RTL_MARKER)).is_ok_and(|m| m.is_file()) || force {
        return Ok(false);
    }
    Err(RtlError::new(
        ErrorKind::BadInput,
        format!(
            "{} already holds files that `qfx export verilog` did not write (it has no \
             {RTL_MARKER} marker): refusing to overwrite them; choose a new or empty folder, or \
             force it (`--force`)",
            dir.display()
        ),
    ))
}

/// Generates the design of `model` and writes the project into `dir` (see the module docs).
pub fn export(
    model: &Model,
    dir: &Path,
    options: &RtlOptions,
    force: bool,
) -> Result<ExportReport, RtlError> {
    // Generate first: an unsupported model writes nothing.
    let design = generate(model, options)?;
    let fresh = check_out_dir(dir, force)?;
    let created = !dir.exists();
    let result = write_project(model, dir, &design);
    match result {
        Ok(files) => Ok(ExportReport {
            dir: dir.to_path_buf(),
            files,
            design,
        }),
        Err(e) => {
            if fresh {
                let _ = std::fs::remove_file(dir.join(RTL_MARKER));
                if created {
                    let _ = std::fs::remove_dir(dir);
                }
            }
            Err(e)
        }
    }
}

fn write_project(model: &Model, dir: &Path, design: &Design) -> Result<Vec<String>, RtlError> {
    let mk = |d: &Path| {
        std::fs::create_dir_all(d)
            .map_err(|e| RtlError::io(format!("cannot create {}", d.display()), e))
    };
    mk(dir)?;
    // The marker goes first: an export that stops half-way leaves a folder the next export
    // may still replace.
    write_file(&dir.join(RTL_MARKER), MARKER_TEXT.as_bytes())?;
    let rtl = dir.join("rtl");
    refuse_symlink(&rtl)?;
    mk(&rtl)?;
    write_file(&dir.join(VERILOG_FILE), design.verilog.as_bytes())?;
    write_file(&dir.join(IR_FILE), model.to_json().as_bytes())?;
    let timing = serde_json::to_string_pretty(&design.timing).expect("timing serializes");
    write_file(&dir.join(TIMING_FILE), timing.as_bytes())?;
    write_file(&dir.join("README.md"), readme(model, design).as_bytes())?;
    Ok(vec![
        RTL_MARKER.to_string(),
        VERILOG_FILE.to_string(),
        IR_FILE.to_string(),
        TIMING_FILE.to_string(),
        "README.md".to_string(),
    ])
}

fn readme(model: &Model, design: &Design) -> String {
    format!(
        "# Verilog design of the model `{}`\n\n\
         Written by `qfx export verilog`. `{VERILOG_FILE}` holds one module per layer and the \
         top module `qfx_top` (Verilog-2005; its header comment documents the ports): {}.\n\n\
         - `qfx verify-rtl --project . --data DATASET --samples 200` simulates it with Verilator \
         and compares every output code with qfx's integer engine.\n\
         - `qfx synth --project .` synthesizes it with Yosys (`synth_xilinx -family xcup`) and \
         reports LUT, FF, CARRY, DSP and BRAM per layer.\n\n\
         `{IR_FILE}` is the model it was built from.\n",
        comment_text(&model.name),
        match design.timing.latency {
            Some(l) => format!("fully unrolled: one inference per clock, latency {l} cycles"),
            None => format!(
                "streaming: one pixel per clock, an inference every {} clocks",
                design.timing.frame_cycles
            ),
        }
    )
}
