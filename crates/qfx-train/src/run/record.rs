//! One model of record per run: the `model.ir.json` a finished quantized run exports is tied to
//! the checkpoint it came from. The document records the hash of that checkpoint's tensors
//! (`qfx_ir::CHECKPOINT_KEY`), and the checkpoint's `meta.json` records the same hash and the
//! checksum of the document as written. Every command that uses a run's model (exact
//! evaluation, HLS export, the report) goes through [`model_of_record`], which returns the
//! document only when both agree with the run's current checkpoint and says why not otherwise:
//! `latest` switched to another checkpoint, the document edited by hand, a checkpoint replaced.

use std::path::Path;

use super::checkpoint::checksum;
use super::dir::{CheckpointDir, RunDir};
use super::io_err;
use super::meta::CheckpointMeta;
use crate::error::TrainError;

/// A run's exported model, checked against the run's current checkpoint.
#[derive(Clone, Debug)]
pub struct Record {
    /// The model (`model.ir.json`).
    pub ir: qfx_ir::Model,
    /// The checkpoint it is the export of.
    pub checkpoint: CheckpointDir,
    /// A warning to show: `latest` was missing or damaged and the checkpoint was found by
    /// scanning, or the run was written by a qfx that did not tie the two together.
    pub note: Option<String>,
}

/// The model of record of the run directory `run`: its `model.ir.json`, provided it is the
/// unchanged export of the run's current checkpoint. The error says what is wrong and what to
/// do: a float run (nothing exported), an unfinished run, a missing or edited document, a
/// document exported from another checkpoint than the one `latest` names.
pub fn model_of_record(run: &Path) -> Result<Record, TrainError> {
    let run_dir = RunDir::new(run);
    let found = run_dir.find_checkpoint()?;
    let checkpoint = found.checkpoint;
    let meta = CheckpointMeta::read(&checkpoint)?;
    let name = checkpoint
        .path()
        .file_name()
        .map(|n| n.to_string_lossy().to_string())
        .unwrap_or_default();
    let ir_path = run_dir.ir();
    let refuse = |m: String| Err(TrainError::Checkpoint(m));
    if !meta.config.quant.enabled {
        return refuse(format!(
            "{} is a float run: it exports no fixed-point model ({}); quantize it with `qfx ptq` \
             or `qfx train --from`",
            run.display(),
            qfx_ir::IR_FILE
        ));
    }
    let bytes = match qfx_fs::read_regular(&ir_path) {
        Ok(b) => b,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound && !meta.finished => {
            return refuse(format!(
                "{} has no {} yet: the run is at epoch {} of {} (the model is exported when it \
                 finishes)",
                run.display(),
                qfx_ir::IR_FILE,
                meta.epoch,
                meta.config.train.epochs
            ))
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            // A PTQ run (no epochs) has nothing to resume: it is redone.
            let again = if meta.config.train.epochs == 0 {
                "it is a PTQ run: run `qfx ptq` again into a new directory".to_string()
            } else {
                format!(
                    "`qfx train --resume --run {}` exports it again from {name}",
                    run.display()
                )
            };
            return refuse(format!(
                "{} finished but its {} is missing; {again}",
                run.display(),
                qfx_ir::IR_FILE
            ));
        }
        Err(e) => return Err(io_err(&ir_path, e)),
    };
    let text = String::from_utf8(bytes.clone())
        .map_err(|_| TrainError::Checkpoint(format!("{}: not UTF-8 text", ir_path.display())))?;
    let (ir, source) = qfx_ir::Model::from_json_with_checkpoint(&text)
        .map_err(|e| TrainError::Checkpoint(format!("{}: {}", ir_path.display(), e.message)))?;
    let mut note = found.recovered;
    if meta.model_hash.is_none() && meta.ir_hash.is_none() && source.is_none() {
        note = Some(format!(
            "{} and checkpoint {name} were written by a qfx that did not tie them together: \
             that the model is this checkpoint's export cannot be checked",
            ir_path.display()
        ));
    } else if source != meta.model_hash {
        return refuse(format!(
            "{} is not the export of the run's current checkpoint {name} (the one \
             `checkpoints/latest` names): it was exported from a checkpoint whose tensors hash to \
             {}, {name}'s hash to {}. Was `latest` switched or a checkpoint replaced? Point \
             `latest` back at the checkpoint the model came from, or move {} away and finish the \
             run from {name} with `qfx train --resume`",
            ir_path.display(),
            source.as_deref().unwrap_or("(none recorded)"),
            meta.model_hash.as_deref().unwrap_or("(none recorded)"),
            qfx_ir::IR_FILE
        ));
    } else if meta.ir_hash.as_deref() != Some(checksum(&bytes).as_str()) {
        return refuse(format!(
            "{} has changed since it was exported from checkpoint {name} (edited by hand, or \
             damaged): restore it, or move it away and export it again with `qfx train --resume \
             --run {}`",
            ir_path.display(),
            run.display()
        ));
    }
    Ok(Record {
        ir,
        checkpoint,
        note,
    })
}
