//! CIFAR-10's binary format: each batch file is a run of 3,073-byte records, one label byte
//! (0 to 9) then 3,072 pixel bytes: the 32×32 red plane, then green, then blue. That is already
//! the `[c, h, w]` order of [`Dataset`], so records are copied as they are.

use std::fmt;
use std::path::{Path, PathBuf};

use crate::files::{check_regular, present, read_bounded};
use crate::{DataError, Dataset, LoadOptions, Splits};

/// CIFAR-10's class names, by label (as in its `batches.meta.txt`).
pub const CIFAR10_CLASSES: [&str; 10] = [
    "airplane",
    "automobile",
    "bird",
    "cat",
    "deer",
    "dog",
    "frog",
    "horse",
    "ship",
    "truck",
];

const SIDE: usize = 32;
const PIXELS: usize = 3 * SIDE * SIDE;
const RECORD: usize = 1 + PIXELS;
/// CIFAR-100's record (coarse and fine label bytes), named in an error when it is recognised.
const CIFAR100_RECORD: usize = 2 + PIXELS;
/// The subdirectory of the official archive `cifar-10-binary.tar.gz`.
pub(crate) const SUBDIR: &str = "cifar-10-batches-bin";
/// Largest batch file accepted: a real one is 30,730,000 bytes.
const MAX_BYTES: u64 = 1 << 30;

fn train_name(i: usize) -> String {
    format!("data_batch_{i}.bin")
}

const TEST_NAME: &str = "test_batch.bin";

/// The batch files [`load_cifar10_dir`] reads; its `Display` says which training batches are
/// used and which are missing.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CifarFiles {
    /// The directory holding the batches (the given one, or its `cifar-10-batches-bin/`).
    pub dir: PathBuf,
    /// The training batches present, in order (`data_batch_1.bin` first).
    pub train: Vec<PathBuf>,
    /// The numbers (1 to 5) of the training batches that are absent.
    pub missing_train: Vec<usize>,
    /// `test_batch.bin`.
    pub test: PathBuf,
}

/// The number of training batches of the full dataset.
const TRAIN_BATCHES: usize = 5;
/// Training images of the full dataset.
const TRAIN_IMAGES: usize = 50_000;

/// True when `dir` holds any CIFAR-10 batch file (of any kind: one that is not a regular file
/// is then refused by name rather than overlooked).
pub(crate) fn has_batches(dir: &Path) -> bool {
    (1..=TRAIN_BATCHES).any(|i| present(&dir.join(train_name(i)))) || present(&dir.join(TEST_NAME))
}

/// Finds the batch files in `dir`, or in `dir/cifar-10-batches-bin` when `dir` itself holds
/// none. Needs `test_batch.bin` and at least one of `data_batch_1.bin` … `data_batch_5.bin`.
pub fn find_cifar10(dir: &Path) -> Result<CifarFiles, DataError> {
    let sub = dir.join(SUBDIR);
    let dir = if !has_batches(dir) && sub.is_dir() {
        sub
    } else {
        dir.to_path_buf()
    };
    let expected = "a CIFAR-10 directory holds data_batch_1.bin … data_batch_5.bin and \
                    test_batch.bin (records of 1 label byte + 3072 pixel bytes)";
    let test = dir.join(TEST_NAME);
    if !present(&test) {
        return Err(DataError::format(
            &dir,
            format!("missing {TEST_NAME}: {expected}"),
        ));
    }
    check_regular(&test)?;
    let (found, missing): (Vec<usize>, Vec<usize>) =
        (1..=TRAIN_BATCHES).partition(|&i| present(&dir.join(train_name(i))));
    for &i in &found {
        check_regular(&dir.join(train_name(i)))?;
    }
    if found.is_empty() {
        return Err(DataError::format(
            &dir,
            format!("no training batch (data_batch_1.bin … data_batch_5.bin): {expected}"),
        ));
    }
    Ok(CifarFiles {
        train: found.iter().map(|&i| dir.join(train_name(i))).collect(),
        missing_train: missing,
        test,
        dir,
    })
}

impl fmt::Display for CifarFiles {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let names: Vec<String> = self
            .train
            .iter()
            .map(|p| {
                p.file_name()
                    .unwrap_or_default()
                    .to_string_lossy()
                    .into_owned()
            })
            .collect();
        write!(
            f,
            "CIFAR-10 binary batches in {}: training {}",
            self.dir.display(),
            names.join(", ")
        )?;
        if !self.missing_train.is_empty() {
            let missing: Vec<String> = self.missing_train.iter().map(|i| i.to_string()).collect();
            write!(f, " (batches {} absent, not used)", missing.join(", "))?;
        }
        write!(f, "; test {TEST_NAME}")
    }
}

impl CifarFiles {
    /// True when all five training batches are there.
    pub fn is_complete(&self) -> bool {
        self.missing_train.is_empty()
    }

    /// Reads the batches; refuses a directory missing a training batch (see
    /// [`load_with`](CifarFiles::load_with)).
    pub fn load(&self) -> Result<Splits, DataError> {
        self.load_with(&LoadOptions::default())
    }

    /// Reads the batches. A directory missing some training batches is refused, saying how
    /// many files and images were found, unless `options.allow_partial`.
    pub fn load_with(&self, options: &LoadOptions) -> Result<Splits, DataError> {
        let mut train = empty();
        for path in &self.train {
            read_batch(path, &mut train)?;
        }
        let mut test = empty();
        read_batch(&self.test, &mut test)?;
        // Checked after reading, so that a corrupt file is reported first.
        if !self.is_complete() && !options.allow_partial {
            let missing: Vec<String> = self.missing_train.iter().map(|&i| train_name(i)).collect();
            return Err(DataError::format(
                &self.dir,
                format!(
                    "incomplete CIFAR-10: found {} of the {TRAIN_BATCHES} training batch files \
                     ({} missing) holding {} training images, where the full dataset has \
                     {TRAIN_IMAGES}; restore the missing files, or allow a partial dataset to \
                     train on what is there (`allow_partial`; the `--allow-partial-data` flag \
                     of qfx)",
                    self.train.len(),
                    missing.join(", "),
                    train.len()
                ),
            ));
        }
        Ok(Splits { train, test })
    }
}

fn empty() -> Dataset {
    Dataset {
        images: Vec::new(),
        labels: Vec::new(),
        shape: [3, SIDE, SIDE],
        classes: CIFAR10_CLASSES.len(),
        class_names: CIFAR10_CLASSES.iter().map(|s| s.to_string()).collect(),
    }
}

/// Appends the records of one batch file to `out`.
fn read_batch(path: &Path, out: &mut Dataset) -> Result<(), DataError> {
    let bytes = read_bounded(path, MAX_BYTES, |size| {
        format!("{size} bytes: far larger than a CIFAR-10 batch (30,730,000 bytes)")
    })?;
    let len = bytes.len();
    if len == 0 {
        return Err(DataError::format(
            path,
            format!("empty file: a CIFAR-10 batch holds records of {RECORD} bytes"),
        ));
    }
    if len % RECORD != 0 {
        let hint = if len % CIFAR100_RECORD == 0 {
            format!(
                "; it is a multiple of {CIFAR100_RECORD} bytes, the record of CIFAR-100 (2 label \
                 bytes), which is not supported"
            )
        } else {
            String::new()
        };
        return Err(DataError::format(
            path,
            format!(
                "truncated or not CIFAR-10: {len} bytes is not a whole number of {RECORD}-byte \
                 records (1 label byte + {PIXELS} pixel bytes): {} whole records and {} bytes over{hint}",
                len / RECORD,
                len % RECORD
            ),
        ));
    }
    let records = len / RECORD;
    out.labels.reserve(records);
    out.images.reserve(records * PIXELS);
    for (i, record) in bytes.chunks_exact(RECORD).enumerate() {
        let label = record[0];
        if label as usize >= CIFAR10_CLASSES.len() {
            return Err(DataError::format(
                path,
                format!(
                    "record {i} (byte offset {}) has label {label}; CIFAR-10 labels are 0 to 9",
                    i * RECORD
                ),
            ));
        }
        out.labels.push(label);
        out.images.extend_from_slice(&record[1..]);
    }
    Ok(())
}

/// Loads CIFAR-10's binary batches from `dir` (or `dir/cifar-10-batches-bin`):
/// `data_batch_1.bin` … `data_batch_5.bin` and `test_batch.bin`, all required (see
/// [`CifarFiles::load_with`] to accept a directory missing training batches). Images are
/// `[3, 32, 32]`.
pub fn load_cifar10_dir(dir: &Path) -> Result<Splits, DataError> {
    find_cifar10(dir)?.load()
}
