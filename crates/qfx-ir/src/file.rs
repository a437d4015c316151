//! Reading and writing a [`Model`] as a file: the one place that knows how a model document is
//! stored (pretty JSON with a trailing newline, written atomically), what it is called in a run
//! directory, and how a document records the training checkpoint it was exported from.

use std::path::Path;

use crate::{IrError, Model};

/// The file name of a model document in a run directory (and in an HLS project).
pub const IR_FILE: &str = "model.ir.json";

/// The top-level key under which a document exported from a training run records the
/// checkpoint it came from (a hash of that checkpoint's tensors, which the checkpoint records
/// too), so that a run's commands can check that the two belong together. It is not part of
/// [`Model`]: it says where the model came from, not what it computes, and every consumer
/// reads the model the same with or without it.
pub const CHECKPOINT_KEY: &str = "checkpoint";

impl Model {
    /// Reads, parses and validates the model document at `path`. The error names the path and
    /// says whether the file could not be read (`cannot read …`; a FIFO or device is refused as
    /// such, never waited on) or is not a valid model (`<path>: …`, the parse or validation
    /// problem).
    pub fn load(path: &Path) -> Result<Model, IrError> {
        Ok(Model::load_with_checkpoint(path)?.0)
    }

    /// [`Model::load`], also returning the checkpoint the document records ([`CHECKPOINT_KEY`]).
    pub fn load_with_checkpoint(path: &Path) -> Result<(Model, Option<String>), IrError> {
        let text = qfx_fs::read_to_string_regular(path)
            .map_err(|e| IrError::new(format!("cannot read {}: {e}", path.display())))?;
        Model::from_json_with_checkpoint(&text)
            .map_err(|e| IrError::new(format!("{}: {}", path.display(), e.message)))
    }

    /// Writes the model to `path` as pretty JSON with a trailing newline, atomically (a reader
    /// sees the previous file or this one). The error names the path.
    pub fn save(&self, path: &Path) -> std::io::Result<()> {
        self.save_with_checkpoint(path, None)
    }

    /// [`Model::save`], recording the checkpoint the model was exported from.
    pub fn save_with_checkpoint(
        &self,
        path: &Path,
        checkpoint: Option<&str>,
    ) -> std::io::Result<()> {
        qfx_fs::write_atomic(
            path,
            (self.to_json_with_checkpoint(checkpoint) + "\n").as_bytes(),
        )
        .map_err(|e| std::io::Error::new(e.kind(), format!("writing {}: {e}", path.display())))
    }

    /// [`Model::to_json`] with the checkpoint recorded as the document's last key.
    pub fn to_json_with_checkpoint(&self, checkpoint: Option<&str>) -> String {
        let json = self.to_json();
        match checkpoint {
            None => json,
            Some(c) => {
                // The document is an object: its text ends with "\n}".
                let body = json
                    .strip_suffix("\n}")
                    .expect("a model serializes as an object");
                let value = serde_json::Value::String(c.to_string());
                format!("{body},\n  \"{CHECKPOINT_KEY}\": {value}\n}}")
            }
        }
    }
}

/// The document without its [`CHECKPOINT_KEY`] (`None`: the text as it is, it has none) and
/// the checkpoint it records.
pub(crate) fn split_checkpoint(text: &str) -> Result<(Option<String>, Option<String>), IrError> {
    if !text.contains(CHECKPOINT_KEY) {
        return Ok((None, None));
    }
    let mut value: serde_json::Value = serde_json::from_str(text)
        .map_err(|e| IrError::new(format!("not a model document: {e}")))?;
    let Some(object) = value.as_object_mut() else {
        return Err(IrError::new("not a model document: not a JSON object"));
    };
    match object.remove(CHECKPOINT_KEY) {
        None => Ok((None, None)),
        Some(serde_json::Value::String(c)) => Ok((Some(value.to_string()), Some(c))),
        Some(other) => Err(IrError::new(format!(
            "`{CHECKPOINT_KEY}` must be a string (the hash of a checkpoint's tensors), not {other}"
        ))),
    }
}
