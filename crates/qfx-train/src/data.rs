//! The run configuration's `data`: a path (`data = "data/fashion-mnist-full"`, a directory of
//! images or a table file with the default options), or a table of options for tables and
//! signals:
//!
//! ```toml
//! data = { path = "examples/jet_mlp/jets.csv", label = "class", test_fraction = 0.2, split_seed = 1 }
//! # NumPy: features and labels in two .npy files, a separate test pair
//! data = { path = "x.npy", targets = "y.npy", test = "x_test.npy", test_targets = "y_test.npy" }
//! # regression on two target columns; an autoencoder on every column but `id`
//! data = { path = "t.csv", label = ["y1", "y2"] }   # with train.loss = "mse"
//! data = { path = "t.csv", features = ["a", "b", "c"], task = "autoencoder" }
//! ```
//!
//! Keys: `path` (the data: a `.csv`, a `.npy` of features, a `.npz` with `x`/`y` or
//! `x_train`/`y_train`/`x_test`/`y_test`, or an image directory), `targets` (the `.npy` of
//! labels or regression targets), `test` and `test_targets` (a separate test set), `label` (a
//! CSV's label column, or its target columns; default `label`), `features` (a CSV's feature
//! columns; default all others), `test_fraction` (without a test file: the share drawn at random
//! as the test set, default 0.2) and `split_seed` (its seed, default 0), `task`
//! (`classification`, `regression` or `autoencoder`; default: classification with the
//! cross-entropy loss, regression with `train.loss = "mse"`), `standardize` (tables: subtract
//! each feature's mean and divide by its standard deviation, both computed on the training
//! split and recorded in the exported model; default true).

use std::path::{Path, PathBuf};

use serde::de::{self, MapAccess, Visitor};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::error::TrainError;

/// Where a run's data is, and how to read it.
#[derive(Clone, Debug, PartialEq)]
pub enum DataSpec {
    /// A directory of images (IDX, CIFAR-10, image folder) or a table file with the default
    /// options.
    Path(PathBuf),
    /// A table of options (see the module documentation).
    Table(DataTable),
}

/// The table form of [`DataSpec`].
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DataTable {
    /// The data file (or image directory).
    pub path: PathBuf,
    /// The `.npy` file of labels or targets of `.npy` features.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub targets: Option<PathBuf>,
    /// A separate test file.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub test: Option<PathBuf>,
    /// The test file's `.npy` labels or targets.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub test_targets: Option<PathBuf>,
    /// A CSV's label column, or its target columns.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub label: Option<Columns>,
    /// A CSV's feature columns.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub features: Option<Vec<String>>,
    /// The share of the samples drawn as the test set (without a test file).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub test_fraction: Option<f64>,
    /// The seed of that draw.
    #[serde(default)]
    pub split_seed: u64,
    /// What the targets are.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub task: Option<Task>,
    /// Standardize a table's features (default true).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub standardize: Option<bool>,
}

/// One column name or several.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Columns {
    /// One column.
    One(String),
    /// Several columns (regression targets).
    Many(Vec<String>),
}

/// What the network is trained to produce.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Task {
    /// A class per sample (cross-entropy loss).
    Classification,
    /// Values per sample (`train.loss = "mse"`).
    Regression,
    /// The sample itself, standardized (`train.loss = "mse"`).
    Autoencoder,
}

impl Task {
    /// As `qfx-data` names it.
    pub fn to_data(self) -> qfx_data::Task {
        match self {
            Task::Classification => qfx_data::Task::Classification,
            Task::Regression => qfx_data::Task::Regression,
            Task::Autoencoder => qfx_data::Task::Autoencoder,
        }
    }

    /// The configuration's name for it.
    pub fn name(self) -> &'static str {
        self.to_data().name()
    }
}

impl Serialize for DataSpec {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            DataSpec::Path(p) => p.serialize(s),
            DataSpec::Table(t) => t.serialize(s),
        }
    }
}

impl<'de> Deserialize<'de> for DataSpec {
    /// A string (a path) or a table of options; errors of the table name its key.
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<DataSpec, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = DataSpec;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a path, or a table such as { path = \"data.csv\", label = \"class\" }")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<DataSpec, E> {
                Ok(DataSpec::Path(PathBuf::from(v)))
            }
            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<DataSpec, A::Error> {
                DataTable::deserialize(de::value::MapAccessDeserializer::new(map))
                    .map(DataSpec::Table)
                    .map_err(|e| de::Error::custom(format!("data: {e}")))
            }
        }
        d.deserialize_any(V)
    }
}

impl DataSpec {
    /// The data file or directory.
    pub fn path(&self) -> &Path {
        match self {
            DataSpec::Path(p) => p,
            DataSpec::Table(t) => &t.path,
        }
    }

    /// The table form's options, if given in that form.
    pub fn table(&self) -> Option<&DataTable> {
        match self {
            DataSpec::Path(_) => None,
            DataSpec::Table(t) => Some(t),
        }
    }

    /// True when the data is a table file (`.csv`, `.npy`, `.npz`), not images.
    pub fn is_table(&self) -> bool {
        qfx_data::is_table_file(self.path()) && !self.path().is_dir()
    }

    /// Every path it names made absolute against the current directory (without resolving
    /// links), so a run reads the same files from anywhere later.
    pub fn absolute(&self) -> Result<DataSpec, TrainError> {
        let abs = |p: &Path| -> Result<PathBuf, TrainError> {
            std::path::absolute(p).map_err(|e| {
                TrainError::Io(format!("cannot resolve the data path {}: {e}", p.display()))
            })
        };
        let opt = |p: &Option<PathBuf>| p.as_deref().map(abs).transpose();
        Ok(match self {
            DataSpec::Path(p) => DataSpec::Path(abs(p)?),
            DataSpec::Table(t) => DataSpec::Table(DataTable {
                path: abs(&t.path)?,
                targets: opt(&t.targets)?,
                test: opt(&t.test)?,
                test_targets: opt(&t.test_targets)?,
                ..t.clone()
            }),
        })
    }

    /// The explicit task of the table form.
    pub fn task(&self) -> Option<Task> {
        self.table().and_then(|t| t.task)
    }

    /// Whether a table's features are standardized (default yes).
    pub fn standardize(&self) -> bool {
        self.table().and_then(|t| t.standardize).unwrap_or(true)
    }

    /// Checks the options that need no file: a test fraction in (0, 1), not both a test file and
    /// a fraction, no table options for an image directory.
    pub fn validate(&self) -> Result<(), TrainError> {
        let Some(t) = self.table() else {
            return Ok(());
        };
        let bad = |m: String| Err(TrainError::Config(m));
        if let Some(f) = t.test_fraction {
            if !(f > 0.0 && f < 1.0) {
                return bad(format!(
                    "data.test_fraction must be between 0 and 1 (exclusive), not {f}"
                ));
            }
            if t.test.is_some() {
                return bad(
                    "data: give either `test` (a test file) or `test_fraction`, not both".into(),
                );
            }
        }
        if let Some(Columns::Many(v)) = &t.label {
            if v.is_empty() {
                return bad("data.label lists no column".into());
            }
        }
        if !qfx_data::is_table_file(&t.path) {
            let table_keys = [
                ("targets", t.targets.is_some()),
                ("test", t.test.is_some()),
                ("test_targets", t.test_targets.is_some()),
                ("label", t.label.is_some()),
                ("features", t.features.is_some()),
                ("test_fraction", t.test_fraction.is_some()),
                ("standardize", t.standardize.is_some()),
                ("split_seed", t.split_seed != 0),
            ];
            if let Some((key, _)) = table_keys.iter().find(|(_, set)| *set) {
                return bad(format!(
                    "data.{key} applies to tables (.csv, .npy, .npz files); {} is an image \
                     dataset, which brings its own test split and is normalized by [normalize]",
                    t.path.display()
                ));
            }
        }
        Ok(())
    }

    /// How `qfx-data` reads it, for a table (`None` for an image directory).
    pub fn table_options(&self, task: Task) -> Option<qfx_data::TableOptions> {
        if !self.is_table() {
            return None;
        }
        let mut o = qfx_data::TableOptions {
            path: self.path().to_path_buf(),
            task: task.to_data(),
            ..qfx_data::TableOptions::default()
        };
        if let Some(t) = self.table() {
            o.targets = t.targets.clone();
            o.test = t.test.clone();
            o.test_targets = t.test_targets.clone();
            o.label = match &t.label {
                None => Vec::new(),
                Some(Columns::One(c)) => vec![c.clone()],
                Some(Columns::Many(v)) => v.clone(),
            };
            o.features = t.features.clone();
            o.test_fraction = t.test_fraction;
            o.split_seed = t.split_seed;
        }
        Some(o)
    }
}
