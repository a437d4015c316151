//! Numeric samples — rows of a table, signals — with class labels, regression targets, or
//! nothing (an autoencoder's samples are their own targets): what [`load_csv`](crate::load_csv)
//! and the NumPy loaders produce, split into training and test sets by [`Table::split`], and
//! standardized per feature by [`Table::feature_stats`].

use std::path::{Path, PathBuf};

use crate::{DataError, Rng};

/// What a sample should make the network produce.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub enum Task {
    /// A class label per sample (the default).
    #[default]
    Classification,
    /// One or more values per sample.
    Regression,
    /// The sample itself (its standardized features): an autoencoder.
    Autoencoder,
}

impl Task {
    /// The name the configuration uses.
    pub fn name(&self) -> &'static str {
        match self {
            Task::Classification => "classification",
            Task::Regression => "regression",
            Task::Autoencoder => "autoencoder",
        }
    }
}

/// The targets of a [`Table`]'s samples.
#[derive(Clone, Debug, PartialEq)]
pub enum Targets {
    /// A class index per sample.
    Classes(Vec<u32>),
    /// `width` values per sample, row-major.
    Values {
        /// `samples · width` values.
        values: Vec<f32>,
        /// Values per sample.
        width: usize,
    },
    /// None: each sample is its own target (an autoencoder's data).
    None,
}

/// Numeric samples and their targets.
#[derive(Clone, Debug, PartialEq)]
pub struct Table {
    /// The samples' values, row-major: `len() · sample_len()` of them, every one finite.
    pub features: Vec<f32>,
    /// One sample's shape: `[features]`, `[channels, length]` or `[channels, height, width]`.
    pub shape: Vec<usize>,
    /// What each sample should produce.
    pub targets: Targets,
    /// The features' names (a CSV's columns); empty where the format has none.
    pub feature_names: Vec<String>,
    /// Where each sample comes from, for messages.
    pub origin: Origin,
}

/// Where a table's samples come from: the file of the features, the file of the targets, and
/// each sample's place in them (a CSV line, or an index along the first axis of an array).
#[derive(Clone, Debug, PartialEq)]
pub struct Origin {
    /// The file (and array) the features were read from.
    pub features: String,
    /// The file (and array, or column) the targets were read from.
    pub targets: String,
    /// `true`: `places` are 1-based CSV lines; `false`: 0-based array indices.
    pub lines: bool,
    /// Each sample's line or index.
    pub places: Vec<usize>,
}

impl Origin {
    /// Samples `0..n` of arrays read from `features` and `targets`.
    pub fn arrays(features: String, targets: String, n: usize) -> Origin {
        Origin {
            features,
            targets,
            lines: false,
            places: (0..n).collect(),
        }
    }

    fn place(&self, i: usize) -> String {
        match (self.lines, self.places.get(i)) {
            (true, Some(l)) => format!("line {l}"),
            (false, Some(k)) => format!("sample {k}"),
            (_, None) => format!("sample {i}"),
        }
    }

    /// "line 17 of data/x.csv": where sample `i`'s features are.
    pub fn features_of(&self, i: usize) -> String {
        format!("{} of {}", self.place(i), self.features)
    }

    /// Where sample `i`'s target is.
    pub fn target_of(&self, i: usize) -> String {
        format!("{} of {}", self.place(i), self.targets)
    }
}

/// A training and a test table.
#[derive(Clone, Debug, PartialEq)]
pub struct TableSplits {
    /// Training samples.
    pub train: Table,
    /// Test samples.
    pub test: Table,
}

/// The stream of [`Rng::stream`] a fractional split draws from (distinct from the epochs').
const SPLIT_STREAM: u64 = 0x5350_4c49_5400_0000;

impl Table {
    /// Number of samples.
    pub fn len(&self) -> usize {
        self.origin.places.len()
    }

    /// True when there are no samples.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Values per sample.
    pub fn sample_len(&self) -> usize {
        self.shape.iter().product()
    }

    /// Sample `i`'s values.
    pub fn sample(&self, i: usize) -> &[f32] {
        let n = self.sample_len();
        &self.features[i * n..(i + 1) * n]
    }

    /// The samples `indices`, in that order.
    pub fn select(&self, indices: &[usize]) -> Table {
        let n = self.sample_len();
        let features = indices
            .iter()
            .flat_map(|&i| self.features[i * n..(i + 1) * n].iter().copied())
            .collect();
        let targets = match &self.targets {
            Targets::Classes(l) => Targets::Classes(indices.iter().map(|&i| l[i]).collect()),
            Targets::Values { values, width } => Targets::Values {
                values: indices
                    .iter()
                    .flat_map(|&i| values[i * width..(i + 1) * width].iter().copied())
                    .collect(),
                width: *width,
            },
            Targets::None => Targets::None,
        };
        Table {
            features,
            shape: self.shape.clone(),
            targets,
            feature_names: self.feature_names.clone(),
            origin: Origin {
                places: indices.iter().map(|&i| self.origin.places[i]).collect(),
                ..self.origin.clone()
            },
        }
    }

    /// The first `n` samples (all of them if there are fewer).
    pub fn take(&self, n: usize) -> Table {
        let indices: Vec<usize> = (0..n.min(self.len())).collect();
        self.select(&indices)
    }

    /// Splits the samples into a test set of `round(fraction · len)` samples drawn at random
    /// (seeded by `seed` alone, so the same file, fraction and seed always give the same split)
    /// and a training set of the rest; both keep the file's order. Each set must get at least
    /// one sample.
    pub fn split(&self, fraction: f64, seed: u64) -> Result<TableSplits, DataError> {
        if !(fraction > 0.0 && fraction < 1.0) {
            return Err(DataError::invalid(format!(
                "the test fraction must be between 0 and 1 (exclusive), not {fraction}"
            )));
        }
        let n = self.len();
        let n_test = (n as f64 * fraction).round() as usize;
        if n_test == 0 || n_test >= n {
            return Err(DataError::invalid(format!(
                "a test fraction of {fraction} of {n} samples ({} of {}) leaves {}: each split \
                 needs at least one sample",
                n_test,
                self.origin.features,
                if n_test == 0 {
                    "no test sample"
                } else {
                    "no training sample"
                }
            )));
        }
        let mut order: Vec<usize> = (0..n).collect();
        Rng::stream(seed, SPLIT_STREAM).shuffle(&mut order);
        let (mut test, mut train) = (order[..n_test].to_vec(), order[n_test..].to_vec());
        test.sort_unstable();
        train.sort_unstable();
        Ok(TableSplits {
            train: self.select(&train),
            test: self.select(&test),
        })
    }

    /// The mean and standard deviation of each feature over the samples (computed in `f64`):
    /// per column of a `[features]` table, per channel of a signal or map (over every position).
    /// A feature that never varies gets the standard deviation 1, so standardizing it gives 0
    /// rather than a division by zero.
    pub fn feature_stats(&self) -> (Vec<f32>, Vec<f32>) {
        let channels = self.shape.first().copied().unwrap_or(1).max(1);
        let plane = self.sample_len() / channels;
        let mut sum = vec![0f64; channels];
        let mut count = vec![0usize; channels];
        for (i, &v) in self.features.iter().enumerate() {
            let c = (i / plane.max(1)) % channels;
            sum[c] += v as f64;
            count[c] += 1;
        }
        let mean: Vec<f64> = sum
            .iter()
            .zip(&count)
            .map(|(s, &k)| s / k.max(1) as f64)
            .collect();
        let mut sq = vec![0f64; channels];
        for (i, &v) in self.features.iter().enumerate() {
            let c = (i / plane.max(1)) % channels;
            sq[c] += (v as f64 - mean[c]).powi(2);
        }
        let std = sq
            .iter()
            .zip(&count)
            .map(|(s, &k)| {
                let sd = (s / k.max(1) as f64).sqrt() as f32;
                if sd.is_finite() && sd > 0.0 {
                    sd
                } else {
                    1.0
                }
            })
            .collect();
        (mean.iter().map(|&m| m as f32).collect(), std)
    }

    /// The class labels, or an error saying what the table holds instead.
    pub fn labels(&self) -> Option<&[u32]> {
        match &self.targets {
            Targets::Classes(l) => Some(l),
            _ => None,
        }
    }

    /// Checks the sizes agree: features for every sample, targets for every sample.
    pub fn check(&self) -> Result<(), DataError> {
        let n = self.len();
        let want = n.checked_mul(self.sample_len());
        if want != Some(self.features.len()) {
            return Err(DataError::invalid(format!(
                "{}: {} feature values for {n} samples of shape {:?}",
                self.origin.features,
                self.features.len(),
                self.shape
            )));
        }
        let targets = match &self.targets {
            Targets::Classes(l) => l.len(),
            Targets::Values { values, width } => {
                if *width == 0 || values.len() % width != 0 {
                    return Err(DataError::invalid(format!(
                        "{}: {} target values in rows of {width}",
                        self.origin.targets,
                        values.len()
                    )));
                }
                values.len() / width
            }
            Targets::None => n,
        };
        if targets != n {
            return Err(DataError::invalid(format!(
                "{} has {n} samples but {} has {targets} targets",
                self.origin.features, self.origin.targets
            )));
        }
        Ok(())
    }
}

/// How to read a table: the files, which columns or arrays hold what, and how to split it.
#[derive(Clone, Debug, PartialEq, Default)]
pub struct TableOptions {
    /// The data: a `.csv` file, a `.npy` array of features, or a `.npz` archive.
    pub path: PathBuf,
    /// The `.npy` array of labels or targets, for `.npy` features.
    pub targets: Option<PathBuf>,
    /// A separate test file, of the same kind as `path`.
    pub test: Option<PathBuf>,
    /// The test file's `.npy` labels or targets.
    pub test_targets: Option<PathBuf>,
    /// A CSV's label column (classification) or target columns (regression); empty: the
    /// column `label` (none for an autoencoder).
    pub label: Vec<String>,
    /// A CSV's feature columns, in this order; `None`: every column but the label's.
    pub features: Option<Vec<String>>,
    /// Without a test file: the fraction of the samples drawn at random as the test set
    /// (`None`: [`DEFAULT_TEST_FRACTION`]).
    pub test_fraction: Option<f64>,
    /// The seed of that draw.
    pub split_seed: u64,
    /// What the targets are.
    pub task: Task,
}

/// The test fraction of a table given without a test file or a fraction.
pub const DEFAULT_TEST_FRACTION: f64 = 0.2;

/// The kinds of table files, by extension.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum TableKind {
    Csv,
    Npy,
    Npz,
}

/// The table kind of `path` by its extension (case-insensitive), if it is one.
pub(crate) fn table_kind(path: &Path) -> Option<TableKind> {
    let ext = path.extension()?.to_str()?.to_ascii_lowercase();
    match ext.as_str() {
        "csv" => Some(TableKind::Csv),
        "npy" => Some(TableKind::Npy),
        "npz" => Some(TableKind::Npz),
        _ => None,
    }
}

/// True when `path` names a table file (`.csv`, `.npy`, `.npz`) by its extension.
pub fn is_table_file(path: &Path) -> bool {
    table_kind(path).is_some()
}

/// Loads a table and its test split as `options` say: a test file when given, else a seeded
/// random fraction of the data.
pub fn load_table(options: &TableOptions) -> Result<TableSplits, DataError> {
    let kind = table_kind(&options.path).ok_or_else(|| {
        DataError::format(
            &options.path,
            "not a table file: a table is a .csv file, a .npy array (with its labels in another \
             .npy) or a .npz archive",
        )
    })?;
    if let Some(test) = &options.test {
        if table_kind(test) != Some(kind) {
            return Err(DataError::format(
                test,
                format!(
                    "the test file must be of the same kind as {} (a .{} file)",
                    options.path.display(),
                    match kind {
                        TableKind::Csv => "csv",
                        TableKind::Npy => "npy",
                        TableKind::Npz => "npz",
                    }
                ),
            ));
        }
        if options.test_fraction.is_some() {
            return Err(DataError::invalid(
                "give either a test file or a test fraction, not both",
            ));
        }
    }
    if kind != TableKind::Npy && (options.targets.is_some() || options.test_targets.is_some()) {
        return Err(DataError::format(
            &options.path,
            "separate target files go with .npy features only (a CSV names its label column, a \
             .npz holds its labels)",
        ));
    }
    if kind != TableKind::Csv && (!options.label.is_empty() || options.features.is_some()) {
        return Err(DataError::format(
            &options.path,
            "label and feature columns are chosen in CSV files only",
        ));
    }
    if options.test.is_none() && options.test_targets.is_some() {
        return Err(DataError::invalid(
            "test targets are given without a test file",
        ));
    }
    match kind {
        TableKind::Csv => {
            let train = crate::csv::load_csv(&options.path, options)?;
            match &options.test {
                Some(test) => {
                    let test = crate::csv::load_csv(test, options)?;
                    same_columns(&train, &test)?;
                    Ok(TableSplits { train, test })
                }
                None => split(train, options),
            }
        }
        TableKind::Npy => {
            let train = crate::npy::load_npy_pair(
                &options.path,
                options.targets.as_deref(),
                &options.task,
            )?;
            match &options.test {
                Some(test) => {
                    let t = crate::npy::load_npy_pair(
                        test,
                        options.test_targets.as_deref(),
                        &options.task,
                    )?;
                    same_shape(&train, &t)?;
                    Ok(TableSplits { train, test: t })
                }
                None => split(train, options),
            }
        }
        TableKind::Npz => {
            let (train, test) = crate::npy::load_npz_table(&options.path, &options.task)?;
            match (test, &options.test) {
                (Some(_), Some(file)) => Err(DataError::format(
                    &options.path,
                    format!(
                        "holds its own test arrays (x_test, y_test) and a test file {} is given \
                         too: give one",
                        file.display()
                    ),
                )),
                (Some(test), None) => {
                    if options.test_fraction.is_some() {
                        return Err(DataError::format(
                            &options.path,
                            "holds its own test arrays (x_test, y_test): a test fraction does \
                             not apply",
                        ));
                    }
                    same_shape(&train, &test)?;
                    Ok(TableSplits { train, test })
                }
                (None, Some(file)) => {
                    let (test, extra) = crate::npy::load_npz_table(file, &options.task)?;
                    if extra.is_some() {
                        return Err(DataError::format(
                            file,
                            "a test archive holds x and y (not x_train/x_test)",
                        ));
                    }
                    same_shape(&train, &test)?;
                    Ok(TableSplits { train, test })
                }
                (None, None) => split(train, options),
            }
        }
    }
}

fn split(table: Table, options: &TableOptions) -> Result<TableSplits, DataError> {
    let fraction = options.test_fraction.unwrap_or(DEFAULT_TEST_FRACTION);
    table.split(fraction, options.split_seed)
}

fn same_shape(train: &Table, test: &Table) -> Result<(), DataError> {
    if train.shape != test.shape {
        return Err(DataError::invalid(format!(
            "the training samples ({}) are {:?} but the test samples ({}) are {:?}",
            train.origin.features, train.shape, test.origin.features, test.shape
        )));
    }
    if let (Targets::Values { width: a, .. }, Targets::Values { width: b, .. }) =
        (&train.targets, &test.targets)
    {
        if a != b {
            return Err(DataError::invalid(format!(
                "the training targets ({}) have {a} values per sample but the test targets ({}) \
                 have {b}",
                train.origin.targets, test.origin.targets
            )));
        }
    }
    Ok(())
}

fn same_columns(train: &Table, test: &Table) -> Result<(), DataError> {
    same_shape(train, test)?;
    if train.feature_names != test.feature_names {
        return Err(DataError::invalid(format!(
            "the feature columns of {} ({}) differ from those of {} ({})",
            test.origin.features,
            test.feature_names.join(", "),
            train.origin.features,
            train.feature_names.join(", ")
        )));
    }
    Ok(())
}
