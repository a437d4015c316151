//! Datasets for qfx, as plain bytes: no DL framework here.
//!
//! Three on-disk formats, each loaded into a [`Splits`] of byte images in `[c, h, w]` order:
//!
//! - [`load_idx_dir`]: the four standard MNIST-style IDX files (`train-images-idx3-ubyte`,
//!   `train-labels-idx1-ubyte`, `t10k-images-idx3-ubyte`, `t10k-labels-idx1-ubyte`, each
//!   optionally `.gz`), so MNIST and Fashion-MNIST load the same way;
//! - [`load_cifar10_dir`]: CIFAR-10's binary batches (`data_batch_1.bin` … `data_batch_5.bin`,
//!   `test_batch.bin`, directly in the directory or in `cifar-10-batches-bin/`; a directory
//!   missing a training batch is refused unless [`LoadOptions::allow_partial`]);
//! - [`load_image_folder`]: `train/<class>/*.png|jpg|jpeg` and `test/<class>/…`.
//!
//! [`load`] detects which of the three a directory holds ([`detect`] says which, and which
//! files it will read). Corrupt, truncated or mismatched files give a [`DataError`] naming the
//! file and the problem; nothing here panics on bad input. Only regular files are read (a FIFO
//! or device named like a dataset file is refused, never waited on), and compressed files are
//! inflated no further than their headers declare.
//!
//! Numeric data — tables and signals — load into a [`Table`] of `f32` samples with class
//! labels, regression targets, or none (an autoencoder's): [`load_csv`] (a header row, a label
//! column, feature columns), [`read_npy`] and [`read_npz`] (NumPy arrays), and [`load_table`],
//! which also splits off the test set (a test file, or a seeded random fraction,
//! [`Table::split`]). [`Data`] holds either kind of dataset, and [`Split`] views one split of
//! it, whatever its kind, as the training pipeline consumes it.
//!
//! For training: [`Rng`], a small seeded generator whose whole state can be stored in a
//! checkpoint and restored exactly, [`epoch_order`] (the shuffled order of an epoch), and
//! [`Augment`] (random crop with zero padding, horizontal flip) as pure functions of the image
//! and the generator, so a resumed run reproduces identical batches.

mod augment;
mod cifar;
mod csv;
mod detect;
mod files;
mod folder;
mod idx;
mod npy;
mod rng;
mod table;
mod view;

use std::fmt;
use std::path::{Path, PathBuf};

pub use augment::{batch, crop_padded, hflip, Augment, Batch};
pub use cifar::{find_cifar10, load_cifar10_dir, CifarFiles, CIFAR10_CLASSES};
pub use csv::{load_csv, DEFAULT_LABEL};
pub use detect::{detect, load, load_with, Source};
pub use folder::load_image_folder;
pub use idx::{embedded_fashion_mnist, load_idx_dir, read_idx};
pub use npy::{
    load_npy_pair, load_npz_table, parse_npy, parse_npz, read_npy, read_npz, Dtype, NpyArray,
};
pub use rng::{epoch_order, Rng};
pub use table::{
    is_table_file, load_table, Origin, Table, TableOptions, TableSplits, Targets, Task,
    DEFAULT_TEST_FRACTION,
};
pub use view::{load_path, Data, DataRef, Raw, Split};

/// Images and their labels, row-major `[count, channels, height, width]` bytes.
#[derive(Clone, Debug, PartialEq)]
pub struct Dataset {
    /// Pixel bytes, `count · channels · height · width` of them.
    pub images: Vec<u8>,
    /// One class index per image.
    pub labels: Vec<u8>,
    /// `[channels, height, width]`.
    pub shape: [usize; 3],
    /// Number of classes: one more than the largest label for IDX files, 10 for CIFAR-10, the
    /// number of class folders for an image folder.
    pub classes: usize,
    /// The classes' names, by label, where the format has them (CIFAR-10, image folders);
    /// empty for IDX files, which carry none.
    pub class_names: Vec<String>,
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
            class_names: self.class_names.clone(),
        }
    }

    /// The name of class `label`, or the label as a number where the format has no names.
    pub fn class_name(&self, label: usize) -> String {
        self.class_names
            .get(label)
            .cloned()
            .unwrap_or_else(|| label.to_string())
    }

    /// Checks that this dataset fits a model taking `shape` (`[channels, height, width]`)
    /// images and producing `classes` outputs: same image shape, every label below `classes`,
    /// and as many image bytes as the labels say.
    pub fn check_compatible(&self, shape: [usize; 3], classes: usize) -> Result<(), DataError> {
        let dims = |s: [usize; 3]| format!("{}×{}×{}", s[0], s[1], s[2]);
        if self.shape != shape {
            return Err(DataError::invalid(format!(
                "the dataset's images are {} (channels×height×width) but the model expects {}",
                dims(self.shape),
                dims(shape)
            )));
        }
        let want = self.len().checked_mul(self.image_len());
        if want != Some(self.images.len()) {
            return Err(DataError::invalid(format!(
                "the dataset holds {} image bytes for {} labels of {} images",
                self.images.len(),
                self.len(),
                dims(self.shape)
            )));
        }
        if let Some((i, &l)) = self
            .labels
            .iter()
            .enumerate()
            .find(|(_, &l)| l as usize >= classes)
        {
            let name = self
                .class_names
                .get(l as usize)
                .map_or(String::new(), |n| format!(" ({n})"));
            let range = match classes {
                0 => "no labels".to_string(),
                n => format!("labels 0 to {}", n - 1),
            };
            return Err(DataError::invalid(format!(
                "image {i} has label {l}{name} but the model has only {classes} classes ({range})"
            )));
        }
        Ok(())
    }
}

/// How strictly [`load_with`] loads.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct LoadOptions {
    /// Accept a CIFAR-10 directory missing some of its five training batches (at least one
    /// is still needed). Off by default: training on part of the data must be asked for.
    pub allow_partial: bool,
}

/// A training and a test split.
#[derive(Clone, Debug, PartialEq)]
pub struct Splits {
    /// Training images.
    pub train: Dataset,
    /// Test images.
    pub test: Dataset,
}

/// The source directory of the embedded Fashion-MNIST subset, `data/fashion-mnist-subset` in
/// the repository (for tests and scripts; programs use [`embedded_fashion_mnist`], which needs
/// no files at run time).
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
    /// Data that does not fit what it is used for (a model's input shape and classes, an
    /// image buffer of the wrong length); not tied to a file.
    Invalid {
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

    pub(crate) fn invalid(message: impl Into<String>) -> DataError {
        DataError::Invalid {
            message: message.into(),
        }
    }
}

impl fmt::Display for DataError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DataError::Io { path, source } => write!(f, "cannot read {}: {source}", path.display()),
            DataError::Format { path, message } => write!(f, "{}: {message}", path.display()),
            DataError::Invalid { message } => f.write_str(message),
        }
    }
}

impl std::error::Error for DataError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            DataError::Io { source, .. } => Some(source),
            DataError::Format { .. } | DataError::Invalid { .. } => None,
        }
    }
}
