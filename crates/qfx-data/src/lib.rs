//! Datasets for qfx, as plain bytes: no DL framework here.
//!
//! [`load_idx_dir`] reads the four standard MNIST-style IDX files (`train-images-idx3-ubyte`,
//! `train-labels-idx1-ubyte`, `t10k-images-idx3-ubyte`, `t10k-labels-idx1-ubyte`, each
//! optionally `.gz`) from a directory, so MNIST and Fashion-MNIST load the same way. Corrupt,
//! truncated or mismatched files give an [`DataError`] naming the file and the problem.

mod idx;

use std::fmt;
use std::path::{Path, PathBuf};

pub use idx::{load_idx_dir, read_idx};

/// Images and their labels, row-major `[count, channels, height, width]` bytes.
#[derive(Clone, Debug, PartialEq)]
pub struct Dataset {
    /// Pixel bytes, `count · channels · height · width` of them.
    pub images: Vec<u8>,
    /// One class index per image.
    pub labels: Vec<u8>,
    /// `[channels, height, width]`.
    pub shape: [usize; 3],
    /// Number of classes (one more than the largest label).
    pub classes: usize,
}

impl Dataset {
    /// Number of images.
    pub fn len(&self) -> usize {
        self.labels.len()
    }

    /// True when there are no images.
    pub fn is_empty(&self) -> bool {
        self.labels.is_empty()
    }

    /// Bytes per image.
    pub fn image_len(&self) -> usize {
        self.shape.iter().product()
    }

    /// The first `n` images (all of them if there are fewer).
    pub fn take(&self, n: usize) -> Dataset {
        let n = n.min(self.len());
        Dataset {
            images: self.images[..n * self.image_len()].to_vec(),
            labels: self.labels[..n].to_vec(),
            shape: self.shape,
            classes: self.classes,
        }
    }
}

/// A training and a test split.
#[derive(Clone, Debug, PartialEq)]
pub struct Splits {
    /// Training images.
    pub train: Dataset,
    /// Test images.
    pub test: Dataset,
}

/// The embedded Fashion-MNIST subset (6,000 training and 1,000 test images) shipped in the
/// repository's `data/fashion-mnist-subset`.
pub fn embedded_fashion_mnist_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../data/fashion-mnist-subset")
}

/// Why a dataset could not be loaded.
#[derive(Debug)]
#[non_exhaustive]
pub enum DataError {
    /// The file could not be read.
    Io {
        /// The file.
        path: PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },
    /// The file's content is not what the format requires.
    Format {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        message: String,
    },
}

impl DataError {
    pub(crate) fn format(path: &Path, message: impl Into<String>) -> DataError {
        DataError::Format {
            path: path.to_path_buf(),
            message: message.into(),
        }
    }
}

impl fmt::Display for DataError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DataError::Io { path, source } => write!(f, "cannot read {}: {source}", path.display()),
            DataError::Format { path, message } => write!(f, "{}: {message}", path.display()),
        }
    }
}

impl std::error::Error for DataError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            DataError::Io { source, .. } => Some(source),
            DataError::Format { .. } => None,
        }
    }
}
