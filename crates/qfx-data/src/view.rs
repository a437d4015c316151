//! Datasets of either kind — byte images ([`Splits`]) or numeric tables ([`TableSplits`]) — and
//! a view of one split that the training pipeline consumes without caring which.

use std::path::Path;

use crate::table::{load_table, table_kind, Table, TableOptions, TableSplits, Targets};
use crate::{Augment, DataError, Dataset, LoadOptions, Rng, Splits};

/// A dataset: byte images or a table, each with its training and test split.
#[derive(Clone, Debug, PartialEq)]
pub enum Data {
    /// Byte images with class labels.
    Images(Splits),
    /// Numeric samples with labels, values or no targets.
    Table(TableSplits),
}

impl From<Splits> for Data {
    fn from(s: Splits) -> Data {
        Data::Images(s)
    }
}

impl From<TableSplits> for Data {
    fn from(s: TableSplits) -> Data {
        Data::Table(s)
    }
}

impl Data {
    /// Both splits, borrowed.
    pub fn as_ref(&self) -> DataRef<'_> {
        self.into()
    }

    /// The training split.
    pub fn train(&self) -> Split<'_> {
        self.as_ref().train
    }

    /// The test split.
    pub fn test(&self) -> Split<'_> {
        self.as_ref().test
    }
}

/// Both splits of a dataset, borrowed (from a [`Data`], a [`Splits`] or a [`TableSplits`]).
#[derive(Clone, Copy, Debug)]
pub struct DataRef<'a> {
    /// The training split.
    pub train: Split<'a>,
    /// The test split.
    pub test: Split<'a>,
}

impl<'a> From<&'a Splits> for DataRef<'a> {
    fn from(s: &'a Splits) -> DataRef<'a> {
        DataRef {
            train: Split::Images(&s.train),
            test: Split::Images(&s.test),
        }
    }
}

impl<'a> From<&'a TableSplits> for DataRef<'a> {
    fn from(s: &'a TableSplits) -> DataRef<'a> {
        DataRef {
            train: Split::Table(&s.train),
            test: Split::Table(&s.test),
        }
    }
}

impl<'a> From<&'a Data> for DataRef<'a> {
    fn from(d: &'a Data) -> DataRef<'a> {
        match d {
            Data::Images(s) => s.into(),
            Data::Table(s) => s.into(),
        }
    }
}

/// One split of a dataset, of either kind.
#[derive(Clone, Copy, Debug)]
pub enum Split<'a> {
    /// Byte images.
    Images(&'a Dataset),
    /// A table.
    Table(&'a Table),
}

impl<'a> From<&'a Dataset> for Split<'a> {
    fn from(d: &'a Dataset) -> Split<'a> {
        Split::Images(d)
    }
}

impl<'a> From<&'a Table> for Split<'a> {
    fn from(t: &'a Table) -> Split<'a> {
        Split::Table(t)
    }
}

/// Samples gathered from a split, before they are normalized.
#[derive(Clone, Debug, PartialEq)]
pub enum Raw {
    /// Image bytes, one image after another.
    Pixels(Vec<u8>),
    /// Table values, one sample after another.
    Values(Vec<f32>),
}

impl Split<'_> {
    /// Number of samples.
    pub fn len(&self) -> usize {
        match self {
            Split::Images(d) => d.len(),
            Split::Table(t) => t.len(),
        }
    }

    /// True when there are no samples.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// One sample's shape (`[channels, height, width]` for images).
    pub fn shape(&self) -> Vec<usize> {
        match self {
            Split::Images(d) => d.shape.to_vec(),
            Split::Table(t) => t.shape.clone(),
        }
    }

    /// Values per sample.
    pub fn sample_len(&self) -> usize {
        self.shape().iter().product()
    }

    /// "images" or "samples", for messages.
    pub fn noun(&self) -> &'static str {
        match self {
            Split::Images(_) => "images",
            Split::Table(_) => "samples",
        }
    }

    /// Sample `i`'s class label, where the split has labels.
    pub fn label(&self, i: usize) -> Option<usize> {
        match self {
            Split::Images(d) => d.labels.get(i).map(|&l| l as usize),
            Split::Table(t) => t.labels().and_then(|l| l.get(i)).map(|&l| l as usize),
        }
    }

    /// True when the split has a class label for every sample.
    pub fn has_labels(&self) -> bool {
        match self {
            Split::Images(_) => true,
            Split::Table(t) => matches!(t.targets, Targets::Classes(_)),
        }
    }

    /// Sample `i`'s regression targets, where the split has values.
    pub fn values(&self, i: usize) -> Option<&[f32]> {
        match self {
            Split::Table(Table {
                targets: Targets::Values { values, width },
                ..
            }) => values.get(i * width..(i + 1) * width),
            _ => None,
        }
    }

    /// Regression values per sample (0 where the split has none).
    pub fn value_width(&self) -> usize {
        match self {
            Split::Table(Table {
                targets: Targets::Values { width, .. },
                ..
            }) => *width,
            _ => 0,
        }
    }

    /// Where sample `i` is, for messages: `image 12`, `line 14 of data/x.csv`.
    pub fn describe(&self, i: usize) -> String {
        match self {
            Split::Images(_) => format!("image {i}"),
            Split::Table(t) => t.origin.features_of(i),
        }
    }

    /// Where sample `i`'s target is, for messages.
    pub fn describe_target(&self, i: usize) -> String {
        match self {
            Split::Images(_) => format!("image {i}"),
            Split::Table(t) => t.origin.target_of(i),
        }
    }

    /// Checks every class label is below `classes`; the error names the first sample that is
    /// not, and where it comes from.
    pub fn check_labels(&self, classes: usize) -> Result<(), DataError> {
        let range = match classes {
            0 => "no labels".to_string(),
            n => format!("labels 0 to {}", n - 1),
        };
        match self {
            Split::Images(d) => d.check_compatible(d.shape, classes),
            Split::Table(t) => {
                let Some(labels) = t.labels() else {
                    return Ok(());
                };
                match labels.iter().position(|&l| l as usize >= classes) {
                    None => Ok(()),
                    Some(i) => Err(DataError::invalid(format!(
                        "{} has the label {}, but the model has only {classes} outputs ({range})",
                        t.origin.target_of(i),
                        labels[i]
                    ))),
                }
            }
        }
    }

    /// The samples `indices` (in that order) as they are stored: an image's bytes, augmented by
    /// `augment` with draws from `rng` (see [`crate::batch`]), or a table's values. Tables are
    /// not augmented: an augmentation other than none is refused for them.
    pub fn gather(
        &self,
        indices: &[usize],
        augment: &Augment,
        rng: &mut Rng,
    ) -> Result<Raw, DataError> {
        match self {
            Split::Images(d) => Ok(Raw::Pixels(crate::batch(d, indices, augment, rng)?.images)),
            Split::Table(t) => {
                if *augment != Augment::default() {
                    return Err(DataError::invalid(
                        "random crops and flips augment images; a table's samples are used as \
                         they are",
                    ));
                }
                let n = t.sample_len();
                let mut out = Vec::with_capacity(indices.len() * n);
                for &i in indices {
                    if i >= t.len() {
                        return Err(DataError::invalid(format!(
                            "sample {i} requested from a table of {}",
                            t.len()
                        )));
                    }
                    out.extend_from_slice(t.sample(i));
                }
                Ok(Raw::Values(out))
            }
        }
    }
}

/// Loads the dataset at `path`: a directory of images (IDX, CIFAR-10 binary or an image
/// folder, see [`crate::detect`]), or a table file with the default options (`.csv` with a
/// `label` column, `.npz` with arrays `x` and `y` or their `_train`/`_test` forms; a test
/// fraction of [`crate::DEFAULT_TEST_FRACTION`] drawn with seed 0 where the file has no test
/// split). A `.npy` file needs its labels named, which only a data table in a run
/// configuration can do.
pub fn load_path(path: &Path, options: &LoadOptions) -> Result<Data, DataError> {
    if table_kind(path).is_some() && !path.is_dir() {
        let table = TableOptions {
            path: path.to_path_buf(),
            ..TableOptions::default()
        };
        return Ok(Data::Table(load_table(&table)?));
    }
    if path.exists() && !path.is_dir() {
        return Err(DataError::format(
            path,
            "neither a dataset directory (IDX files, CIFAR-10 batches, an image folder) nor a \
             table file (.csv, .npy, .npz)",
        ));
    }
    Ok(Data::Images(crate::load_with(path, options)?))
}
