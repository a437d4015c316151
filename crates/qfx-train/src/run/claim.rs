//! Taking a directory for a new run, and clearing a run so a new one can start in its place.
//! Two rules: a run never starts over on top of checkpoints (a run there is continued with
//! `--resume`, or the new one goes elsewhere), and qfx never overwrites or deletes a file it
//! did not write.

use std::path::Path;

use super::dir::{CheckpointDir, RunDir};
use super::lock::RunLock;
use crate::error::TrainError;

/// Takes `run` for a new run (fresh, from another run's weights, or PTQ) and returns its lock.
/// Refused when the directory holds a run (a checkpoint or `latest`), when it is locked by
/// another process, or when it is not a qfx run directory (no `run.lock`) but has files of the
/// names a run writes (`config.toml` there might be the user's own).
pub(super) fn claim_new(run: &RunDir) -> Result<RunLock, TrainError> {
    let locked_before = std::fs::symlink_metadata(run.lock_file()).is_ok();
    if !locked_before {
        refuse_held_run(run)?;
        let clash: Vec<String> = [run.config(), run.metrics(), run.ir(), run.init_ir()]
            .iter()
            .filter(|p| std::fs::symlink_metadata(p).is_ok())
            .filter_map(|p| p.file_name().map(|n| n.to_string_lossy().to_string()))
            .collect();
        if !clash.is_empty() {
            return Err(TrainError::Config(format!(
                "{} is not a qfx run directory but already has {}: refusing to overwrite what \
                 qfx did not write; use a new or empty run directory",
                run.root().display(),
                clash.join(", ")
            )));
        }
    }
    let lock = RunLock::acquire(run)?;
    refuse_held_run(run)?;
    Ok(lock)
}

fn refuse_held_run(run: &RunDir) -> Result<(), TrainError> {
    if !run.holds_run() {
        return Ok(());
    }
    let what = run
        .checkpoint_names()
        .last()
        .map(|n| format!("checkpoints/{n}"))
        .unwrap_or_else(|| "checkpoints/latest".to_string());
    Err(TrainError::Config(format!(
        "{} already holds a run ({what}); continue it with --resume, or use a new run directory",
        run.root().display()
    )))
}

/// Checks that everything in `run` is something a run or its report writes (so
/// [`clear_run`] would delete nothing else); the error names the first thing that is not. A
/// missing directory passes.
pub fn check_clearable(run: &RunDir) -> Result<(), TrainError> {
    if std::fs::symlink_metadata(run.root()).is_err() {
        return Ok(());
    }
    let mut top: Vec<String> = [
        run.config(),
        run.metrics(),
        run.ir(),
        run.init_ir(),
        run.lock_file(),
    ]
    .iter()
    .map(|p| file_name(p))
    .collect();
    top.extend(RunDir::REPORT_FILES.iter().map(|f| f.to_string()));
    let checkpoints = run.checkpoints();
    each_entry(run.root(), |name, path, kind| {
        if kind == Kind::Dir && name == file_name(&checkpoints) {
            check_checkpoints(&checkpoints)
        } else if kind == Kind::File && owned_file(name, &top) {
            Ok(())
        } else {
            Err(foreign(path, kind))
        }
    })
}

fn file_name(p: &Path) -> String {
    p.file_name()
        .map(|n| n.to_string_lossy().to_string())
        .unwrap_or_default()
}

fn check_checkpoints(dir: &Path) -> Result<(), TrainError> {
    let latest = [file_name(&RunDir::new("").latest())];
    let files = [
        CheckpointDir::MODEL.to_string(),
        CheckpointDir::OPTIMIZER.to_string(),
        CheckpointDir::META.to_string(),
    ];
    each_entry(dir, |name, path, kind| {
        let checkpoint = RunDir::is_checkpoint_name(name) || RunDir::staging_pid(name).is_some();
        match kind {
            Kind::File if owned_file(name, &latest) => Ok(()),
            Kind::Dir if checkpoint => each_entry(path, |name, path, kind| {
                if kind == Kind::File && owned_file(name, &files) {
                    Ok(())
                } else {
                    Err(foreign(path, kind))
                }
            }),
            _ => Err(foreign(path, kind)),
        }
    })
}

/// Deletes the run in `run` (its files, checkpoints and report; `run.lock` stays) under its
/// lock, so that a new run can start there. Refused, before anything is deleted, when the
/// directory holds anything else ([`check_clearable`]) or another process holds the lock.
pub fn clear_run(run: &RunDir) -> Result<(), TrainError> {
    if std::fs::symlink_metadata(run.root()).is_err() {
        return Ok(());
    }
    check_clearable(run)?;
    let _lock = RunLock::acquire(run)?;
    // Checked again under the lock: nothing may have been added in between.
    check_clearable(run)?;
    let remove = |p: &Path| -> Result<(), TrainError> {
        let result = if p.is_dir() {
            std::fs::remove_dir_all(p)
        } else {
            std::fs::remove_file(p)
        };
        match result {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(TrainError::Io(format!(
                "cannot delete {}: {e}",
                p.display()
            ))),
            _ => Ok(()),
        }
    };
    let lock = run.lock_file();
    for entry in std::fs::read_dir(run.root())
        .map_err(|e| super::io_err(run.root(), e))?
        .flatten()
    {
        if entry.path() != lock {
            remove(&entry.path())?;
        }
    }
    Ok(())
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
    File,
    Dir,
    Other,
}

/// Calls `f` on every entry of `dir` (links not followed: a link is `Kind::Other`).
fn each_entry(
    dir: &Path,
    mut f: impl FnMut(&str, &Path, Kind) -> Result<(), TrainError>,
) -> Result<(), TrainError> {
    let entries = std::fs::read_dir(dir).map_err(|e| super::io_err(dir, e))?;
    for entry in entries {
        let entry = entry.map_err(|e| super::io_err(dir, e))?;
        let kind = match entry.file_type() {
            Ok(t) if t.is_file() => Kind::File,
            Ok(t) if t.is_dir() => Kind::Dir,
            _ => Kind::Other,
        };
        let name = entry.file_name().to_string_lossy().to_string();
        f(&name, &entry.path(), kind)?;
    }
    Ok(())
}

/// `name` is one of `names`, or an atomic write's temporary file of one (`.<name>.<x>.tmp`).
fn owned_file(name: &str, names: &[String]) -> bool {
    names
        .iter()
        .any(|n| name == n || (name.starts_with(&format!(".{n}.")) && name.ends_with(".tmp")))
}

fn foreign(path: &Path, kind: Kind) -> TrainError {
    let what = match kind {
        Kind::File => "a file",
        Kind::Dir => "a folder",
        Kind::Other => "a link or special file",
    };
    TrainError::Config(format!(
        "{} is {what} that qfx did not write: refusing to delete the run around it; move it \
         away or choose another directory",
        path.display()
    ))
}
