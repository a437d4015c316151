//! Errors of the importer: each names the file, the node or the value at fault.

use std::fmt;

use qfx_train::TrainError;

/// Why a model could not be imported.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum OnnxError {
    /// The file cannot be read, or is not an ONNX model (truncated, another format), or its
    /// weights stored as external data cannot be read.
    File(String),
    /// Operators qfx does not import: every such node is listed, with the supported set.
    Unsupported(String),
    /// A node qfx cannot translate as it is (a weight computed at run time, padding in a
    /// pooling layer, a broadcast qfx has no layer for…).
    Node {
        /// The node's name (or its position and first output when it has none).
        node: String,
        /// Its operator.
        op: String,
        /// What is wrong.
        message: String,
    },
    /// The graph as a whole: its inputs, outputs, dimensions or opset.
    Graph(String),
    /// qfx refused the translated network or the run directory.
    Qfx(TrainError),
}

impl fmt::Display for OnnxError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            OnnxError::File(m) | OnnxError::Unsupported(m) | OnnxError::Graph(m) => f.write_str(m),
            OnnxError::Node { node, op, message } => write!(f, "node `{node}` ({op}): {message}"),
            OnnxError::Qfx(e) => write!(f, "{e}"),
        }
    }
}

impl std::error::Error for OnnxError {}

impl From<TrainError> for OnnxError {
    fn from(e: TrainError) -> OnnxError {
        OnnxError::Qfx(e)
    }
}
