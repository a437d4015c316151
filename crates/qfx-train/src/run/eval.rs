//! Evaluation and calibration: the network in inference mode on batches of a dataset.

use burn::module::Module;
use burn::tensor::Device;
use qfx_data::{Augment, Rng, Split};
use qfx_ir::Preprocess;
use serde::{Deserialize, Serialize};

use super::feed;
use crate::config::RunConfig;
use crate::data::Task;
use crate::error::TrainError;
use crate::host::HostValues;
use crate::models::Model;
use crate::optim::{load_module_tensors, module_tensors};

/// Top-1 (and top-5) accuracy.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct Accuracy {
    /// Images evaluated.
    pub images: usize,
    /// Fraction whose largest logit is the label.
    pub top1: f64,
    /// Fraction whose label is among the 5 largest logits (models with more than 5 classes).
    pub top5: Option<f64>,
}

/// Errors of outputs that are values (regression, autoencoders), over every output value.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Errors {
    /// Samples evaluated.
    pub samples: usize,
    /// Mean squared error.
    pub mse: f64,
    /// Mean absolute error.
    pub mae: f64,
}

/// How well a model does on a split: accuracy for a classifier, errors for values. In
/// `metrics.jsonl` each is its own object (`{"images", "top1", "top5"}` or `{"samples", "mse",
/// "mae"}`), so the lines of classifiers read as they always have.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Score {
    /// A classifier's accuracy.
    Accuracy(Accuracy),
    /// The errors of values.
    Errors(Errors),
}

impl Score {
    /// The accuracy, for a classifier.
    pub fn accuracy(&self) -> Option<&Accuracy> {
        match self {
            Score::Accuracy(a) => Some(a),
            Score::Errors(_) => None,
        }
    }

    /// The errors, for values.
    pub fn errors(&self) -> Option<&Errors> {
        match self {
            Score::Accuracy(_) => None,
            Score::Errors(e) => Some(e),
        }
    }

    /// Samples evaluated.
    pub fn samples(&self) -> usize {
        match self {
            Score::Accuracy(a) => a.images,
            Score::Errors(e) => e.samples,
        }
    }
}

/// Sums that become a [`Score`] (for evaluators outside training: the integer engine's).
#[derive(Clone, Debug, Default)]
pub struct Tally {
    samples: usize,
    top1: usize,
    top5: usize,
    squared: f64,
    absolute: f64,
    values: usize,
}

impl Tally {
    /// Adds one sample's outputs against its class label.
    pub fn label(&mut self, outputs: &[f32], label: usize) {
        let rank = crate::train::label_rank(outputs, label);
        self.samples += 1;
        self.top1 += (rank == 0) as usize;
        self.top5 += (rank < 5) as usize;
    }

    /// Adds one sample's output values against its targets.
    pub fn values(&mut self, outputs: &[f64], targets: &[f32]) {
        self.samples += 1;
        for (&o, &t) in outputs.iter().zip(targets) {
            let d = o - t as f64;
            self.squared += d * d;
            self.absolute += d.abs();
            self.values += 1;
        }
    }

    /// The score of a model with `outputs` outputs for `task`.
    pub fn score(&self, task: Task, outputs: usize) -> Score {
        let frac = |k: usize| k as f64 / self.samples.max(1) as f64;
        match task {
            Task::Classification => Score::Accuracy(Accuracy {
                images: self.samples,
                top1: frac(self.top1),
                top5: (outputs > 5).then(|| frac(self.top5)),
            }),
            Task::Regression | Task::Autoencoder => Score::Errors(Errors {
                samples: self.samples,
                mse: self.squared / self.values.max(1) as f64,
                mae: self.absolute / self.values.max(1) as f64,
            }),
        }
    }
}

/// How `model` (inference mode) does on the first `limit` samples of `data` (0: all), its
/// inputs normalized by `p`: accuracy for classification, errors for regression and
/// autoencoders.
pub fn evaluate<'a>(
    model: &Model,
    data: impl Into<Split<'a>>,
    config: &RunConfig,
    p: &Preprocess,
    limit: usize,
) -> Result<Score, TrainError> {
    let data = data.into();
    let model = model.valid();
    let device = Device::flex();
    let n = if limit == 0 {
        data.len()
    } else {
        limit.min(data.len())
    };
    let task = config.task();
    let outputs = config.classes();
    let shape = data.shape();
    let mut tally = Tally::default();
    let mut rng = Rng::seed(0);
    for start in (0..n).step_by(256) {
        let m = 256.min(n - start);
        let idx: Vec<usize> = (start..start + m).collect();
        let x = feed::inputs(data, &idx, &Augment::default(), &mut rng, p)?;
        let targets = feed::targets(data, &idx, task, &x)?;
        let out: Vec<f32> = feed::forward(&model, x, m, &shape, &device).host_f32();
        let width = out.len() / m.max(1);
        match &targets {
            feed::Targets::Labels(labels) => {
                for (row, &label) in out.chunks(width.max(1)).zip(labels) {
                    tally.label(row, label);
                }
            }
            feed::Targets::Values(values) => {
                for (row, t) in out.chunks(width.max(1)).zip(values.chunks(width.max(1))) {
                    let row: Vec<f64> = row.iter().map(|&v| v as f64).collect();
                    tally.values(&row, t);
                }
            }
        }
    }
    Ok(tally.score(task, outputs))
}

/// Sets every binary point from `config.calibration.batches` batches of training data
/// (normalized by `p`), in inference mode (running BatchNorm statistics, as deployed).
pub fn calibrate<'a>(
    model: Model,
    data: impl Into<Split<'a>>,
    config: &RunConfig,
    p: &Preprocess,
) -> Result<Model, TrainError> {
    let data = data.into();
    let n = (config.calibration.batches * config.train.batch_size).min(data.len());
    let order = qfx_data::epoch_order(config.train.seed, u64::MAX, data.len());
    let x = feed::inputs(data, &order[..n], &Augment::default(), &mut Rng::seed(0), p)?;
    let mut valid = model.valid();
    feed::calibrate(
        &mut valid,
        x,
        n,
        &data.shape(),
        config.calibration.method,
        &Device::flex(),
    );
    load_module_tensors(model, module_tensors(&valid))
}
