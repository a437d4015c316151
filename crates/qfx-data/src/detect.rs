//! Which dataset format a directory holds.

use std::fmt;
use std::path::{Path, PathBuf};

use crate::cifar::{self, CifarFiles};
use crate::files::present;
use crate::{DataError, LoadOptions, Splits};

const IDX_NAMES: [&str; 4] = [
    "train-images-idx3-ubyte",
    "train-labels-idx1-ubyte",
    "t10k-images-idx3-ubyte",
    "t10k-labels-idx1-ubyte",
];

/// A dataset found by [`detect`]; `Display` says what it is and which files it reads.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Source {
    /// MNIST-style IDX files in this directory ([`load_idx_dir`](crate::load_idx_dir)).
    Idx(PathBuf),
    /// CIFAR-10 binary batches ([`load_cifar10_dir`](crate::load_cifar10_dir)).
    Cifar10(CifarFiles),
    /// An image folder with `train/` and `test/` ([`load_image_folder`](crate::load_image_folder)).
    ImageFolder(PathBuf),
}

impl Source {
    /// Loads the dataset (a partial one is refused).
    pub fn load(&self) -> Result<Splits, DataError> {
        self.load_with(&LoadOptions::default())
    }

    /// Loads the dataset with `options`.
    pub fn load_with(&self, options: &LoadOptions) -> Result<Splits, DataError> {
        match self {
            Source::Idx(dir) => crate::load_idx_dir(dir),
            Source::Cifar10(files) => files.load_with(options),
            Source::ImageFolder(root) => crate::load_image_folder(root),
        }
    }
}

impl fmt::Display for Source {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Source::Idx(dir) => write!(f, "IDX files in {}", dir.display()),
            Source::Cifar10(files) => files.fmt(f),
            Source::ImageFolder(root) => write!(
                f,
                "image folder {} (train/<class>/, test/<class>/)",
                root.display()
            ),
        }
    }
}

fn has_idx(dir: &Path) -> bool {
    IDX_NAMES
        .iter()
        .any(|n| present(&dir.join(n)) || present(&dir.join(format!("{n}.gz"))))
}

fn has_cifar(dir: &Path) -> bool {
    cifar::has_batches(dir) || dir.join(cifar::SUBDIR).is_dir()
}

fn has_folder(dir: &Path) -> bool {
    dir.join("train").is_dir() || dir.join("test").is_dir()
}

/// Says which dataset `path` holds: MNIST-style IDX files, CIFAR-10 binary batches (in `path`
/// or `path/cifar-10-batches-bin`), or an image folder (`train/` and `test/` class folders).
/// A directory where any file of a format is present is taken to be of that format, so an
/// incomplete one gets that loader's error about the missing file. Refuses a directory that
/// matches none, listing what was looked for, or more than one.
pub fn detect(path: &Path) -> Result<Source, DataError> {
    let meta = std::fs::metadata(path).map_err(|source| DataError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    if !meta.is_dir() {
        return Err(DataError::format(
            path,
            "not a directory: give the directory that holds the dataset",
        ));
    }
    let mut found = Vec::new();
    if has_idx(path) {
        found.push(("IDX files", Source::Idx(path.to_path_buf())));
    }
    if has_cifar(path) {
        // An incomplete CIFAR-10 directory is still CIFAR-10: report its missing file.
        found.push((
            "CIFAR-10 batches",
            Source::Cifar10(cifar::find_cifar10(path)?),
        ));
    }
    if has_folder(path) {
        found.push(("an image folder", Source::ImageFolder(path.to_path_buf())));
    }
    if found.len() > 1 {
        let kinds: Vec<&str> = found.iter().map(|(k, _)| *k).collect();
        return Err(DataError::format(
            path,
            format!(
                "holds more than one dataset ({}); point at a directory with only one",
                kinds.join(" and ")
            ),
        ));
    }
    found.pop().map(|(_, source)| source).ok_or_else(|| {
        DataError::format(
            path,
            format!(
                "no dataset found; looked for MNIST-style IDX files ({}, each raw or .gz), \
                 CIFAR-10 binary batches (data_batch_1.bin … data_batch_5.bin and test_batch.bin, \
                 here or in {}/), and an image folder (train/<class>/*.png|jpg|jpeg and \
                 test/<class>/…)",
                IDX_NAMES.join(", "),
                cifar::SUBDIR
            ),
        )
    })
}

/// Loads the dataset in `path`, whatever its format (see [`detect`]); a partial dataset (a
/// CIFAR-10 directory missing training batches) is refused.
pub fn load(path: &Path) -> Result<Splits, DataError> {
    load_with(path, &LoadOptions::default())
}

/// [`load`] with `options`.
pub fn load_with(path: &Path, options: &LoadOptions) -> Result<Splits, DataError> {
    detect(path)?.load_with(options)
}
