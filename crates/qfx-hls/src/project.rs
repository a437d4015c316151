//! Where an export may write: a folder that is new, empty, or an earlier export (marked by
//! [`EXPORT_MARKER`]), never one holding files qfx did not write unless the caller forces it,
//! and never through a symbolic link out of the folder.

use std::path::Path;

use qfx_ir::Model;

use crate::verify::WORK_DIR;
use crate::{EmitOptions, EmitReport, ErrorKind, HlsError};

/// The file that marks a folder as written by an export, so the next export may replace what
/// it generated there.
pub const EXPORT_MARKER: &str = ".qfx-export";

const MARKER_TEXT: &str = "This folder was written by `qfx export hls`: the next export into it \
                           replaces the files it generates.\n";

/// The subfolders an export or its verification writes into. A link there would send files
/// out of the project folder, so each must be a real folder or absent (a test checks that the
/// emitter writes into no other subfolder).
pub const SUBFOLDERS: [&str; 3] = ["firmware", "tb", WORK_DIR];

/// What an output folder holds before an export.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OutDir {
    /// It does not exist yet.
    New,
    /// It exists and is empty.
    Empty,
    /// It holds an earlier export ([`EXPORT_MARKER`] is there).
    Export,
    /// It holds other files: written into only when forced.
    Foreign,
}

/// Refuses `path` if it is a symbolic link.
pub(crate) fn refuse_symlink(path: &Path) -> Result<(), HlsError> {
    match std::fs::symlink_metadata(path) {
        Ok(m) if m.file_type().is_symlink() => Err(HlsError::new(
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

/// Says what `dir` holds and whether an export may write there: refused when it is not a
/// folder, when [`SUBFOLDERS`] holds a symbolic link (even with `force`), and when it holds
/// files of its own ([`OutDir::Foreign`]) unless `force`.
pub fn check_out_dir(dir: &Path, force: bool) -> Result<OutDir, HlsError> {
    let meta = match std::fs::metadata(dir) {
        Ok(m) => m,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(OutDir::New),
        Err(e) => return Err(HlsError::io(format!("cannot read {}", dir.display()), e)),
    };
    if !meta.is_dir() {
        return Err(HlsError::new(
            ErrorKind::BadInput,
            format!("{} exists and is not a folder", dir.display()),
        ));
    }
    for sub in SUBFOLDERS {
        refuse_symlink(&dir.join(sub))?;
    }
    let mut entries = std::fs::read_dir(dir)
        .map_err(|e| HlsError::io(format!("cannot read {}", dir.display()), e))?;
    if entries.next().is_none() {
        return Ok(OutDir::Empty);
    }
    let marker = std::fs::symlink_metadata(dir.join(EXPORT_MARKER));
    if marker.is_ok_and(|m| m.is_file()) {
        return Ok(OutDir::Export);
    }
    if force {
        return Ok(OutDir::Foreign);
    }
    Err(HlsError::new(
        ErrorKind::BadInput,
        format!(
            "{} already holds files that `qfx export hls` did not write (it has no {EXPORT_MARKER} \
             marker): refusing to overwrite them; choose a new or empty folder, or force it \
             (`qfx export hls --force`)",
            dir.display()
        ),
    ))
}

/// Writes the project for `model` into `out_dir` after [`check_out_dir`], marking the folder
/// as an export. If the export fails in a folder that was new or empty, the marker goes again.
pub fn export(
    model: &Model,
    out_dir: &Path,
    options: &EmitOptions,
    force: bool,
) -> Result<EmitReport, HlsError> {
    export_with(out_dir, force, || {
        crate::emit::emit_with(model, out_dir, options)
    })
}

/// [`export`]'s checks and marker around `emit`, which writes the files.
pub(crate) fn export_with(
    out_dir: &Path,
    force: bool,
    emit: impl FnOnce() -> Result<EmitReport, HlsError>,
) -> Result<EmitReport, HlsError> {
    let state = check_out_dir(out_dir, force)?;
    let marker = out_dir.join(EXPORT_MARKER);
    // The marker goes first: an export that stops half-way leaves a folder the next export
    // may still replace.
    crate::emit::write_atomic(&marker, MARKER_TEXT.as_bytes())?;
    match emit() {
        Ok(mut report) => {
            report.files.push(EXPORT_MARKER.into());
            Ok(report)
        }
        Err(e) => {
            if matches!(state, OutDir::New | OutDir::Empty) {
                let _ = std::fs::remove_file(&marker);
                if state == OutDir::New {
                    let _ = std::fs::remove_dir(out_dir); // only if nothing else is there
                }
            }
            Err(e)
        }
    }
}
