//! Reading and writing a [`Model`] as a file: the one place that knows how a model document is
//! stored (pretty JSON with a trailing newline, written atomically) and what it is called in a
//! run directory.

use std::path::Path;

use crate::{IrError, Model};

/// The file name of a model document in a run directory (and in an HLS project).
pub const IR_FILE: &str = "model.ir.json";

impl Model {
    /// Reads, parses and validates the model document at `path`. The error names the path and
    /// says whether the file could not be read (`cannot read …`) or is not a valid model
    /// (`<path>: …`, the parse or validation problem).
    pub fn load(path: &Path) -> Result<Model, IrError> {
        // A FIFO or a device in its place would block the read forever.
        if std::fs::metadata(path).is_ok_and(|m| !m.is_file()) {
            return Err(IrError::new(format!(
                "{} is not a regular file",
                path.display()
            )));
        }
        let text = std::fs::read_to_string(path)
            .map_err(|e| IrError::new(format!("cannot read {}: {e}", path.display())))?;
        Model::from_json(&text)
            .map_err(|e| IrError::new(format!("{}: {}", path.display(), e.message)))
    }

    /// Writes the model to `path` as pretty JSON with a trailing newline, atomically (a reader
    /// sees the previous file or this one). The error names the path.
    pub fn save(&self, path: &Path) -> std::io::Result<()> {
        qfx_fs::write_atomic(path, (self.to_json() + "\n").as_bytes())
            .map_err(|e| std::io::Error::new(e.kind(), format!("writing {}: {e}", path.display())))
    }
}
