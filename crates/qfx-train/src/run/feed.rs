//! How a run turns a split's samples into the network's input and the loss's targets: image
//! bytes (augmented) normalized per channel as `[normalize]` says, a table's values standardized
//! per feature with statistics of the training split; both through the `qfx_ir::Preprocess`
//! the exported model records, so the integer engine and the HLS testbench see the same `f32`
//! inputs as training.

use burn::tensor::{Device, Tensor, TensorData};
use qfx_data::{Augment, DataRef, Raw, Rng, Split};
use qfx_ir::{Preprocess, PreprocessInput};

use crate::config::RunConfig;
use crate::data::Task;
use crate::error::TrainError;
use crate::models::Model;
use crate::Calibration;

/// The preprocessing of a run on `data`: `[normalize]` for images; for a table, `inherited`
/// (the standardization of the run whose weights it starts from, or of the checkpoint it
/// resumes) or else the per-feature statistics of the training split (the identity with
/// `data.standardize = false`).
pub(crate) fn run_preprocess(
    config: &RunConfig,
    data: DataRef<'_>,
    inherited: Option<&Preprocess>,
) -> Result<Preprocess, TrainError> {
    let p = match data.train {
        Split::Images(_) => config.normalize.preprocess(),
        Split::Table(table) => match inherited {
            Some(p) => p.clone(),
            None if config.data.as_ref().is_none_or(|d| d.standardize()) => {
                let (mean, std) = table.feature_stats();
                Preprocess::values(mean, std)
            }
            None => Preprocess::values(vec![0.0], vec![1.0]),
        },
    };
    check_preprocess(&p, data.train)?;
    Ok(p)
}

/// Checks that `p` reads what `split` holds (pixels or values) and has a mean and standard
/// deviation per channel (or one for all).
pub(crate) fn check_preprocess(p: &Preprocess, split: Split<'_>) -> Result<(), TrainError> {
    let want = match split {
        Split::Images(_) => PreprocessInput::Pixels,
        Split::Table(_) => PreprocessInput::Values,
    };
    if p.input != want {
        return Err(TrainError::Data(format!(
            "the model was trained on {} but the data are {}",
            match p.input {
                PreprocessInput::Pixels => "images",
                PreprocessInput::Values => "a table's values",
            },
            match want {
                PreprocessInput::Pixels => "images",
                PreprocessInput::Values => "a table's values",
            }
        )));
    }
    let channels = split.shape().first().copied().unwrap_or(1);
    p.validate(channels)
        .map_err(|e| TrainError::Data(format!("input normalization: {}", e.message)))
}

/// The network inputs of samples `indices` (augmented by `augment`, images only), normalized
/// by `p`, row-major.
pub(crate) fn inputs(
    split: Split<'_>,
    indices: &[usize],
    augment: &Augment,
    rng: &mut Rng,
    p: &Preprocess,
) -> Result<Vec<f32>, TrainError> {
    let raw = split
        .gather(indices, augment, rng)
        .map_err(|e| TrainError::Data(e.to_string()))?;
    let shape = split.shape();
    Ok(match raw {
        Raw::Pixels(bytes) => p.apply(&bytes, [shape[0], shape[1], shape[2]]),
        Raw::Values(values) => p.apply_values(&values, &shape),
    })
}

/// The network inputs of samples `indices` of `split` as a deployed model sees them: normalized
/// by `p` (checked to read what the split holds), never augmented. Training, the integer
/// engine (`qfx eval --exact`, `qfx report`) and the HLS testbench inputs (`qfx verify-hls`)
/// all come through here.
pub fn sample_inputs<'a>(
    split: impl Into<Split<'a>>,
    indices: &[usize],
    p: &Preprocess,
) -> Result<Vec<f32>, TrainError> {
    let split = split.into();
    check_preprocess(p, split)?;
    inputs(split, indices, &Augment::default(), &mut Rng::seed(0), p)
}

/// What a batch's outputs are compared with.
pub(crate) enum Targets {
    /// Class indices.
    Labels(Vec<usize>),
    /// Values, row-major `[n, outputs]`.
    Values(Vec<f32>),
}

/// The targets of samples `indices` for `task`; `x` is the batch's input (an autoencoder's
/// target).
pub(crate) fn targets(
    split: Split<'_>,
    indices: &[usize],
    task: Task,
    x: &[f32],
) -> Result<Targets, TrainError> {
    let missing = |i: usize, what: &str| {
        TrainError::Data(format!("{} has no {what}", split.describe_target(i)))
    };
    Ok(match task {
        Task::Classification => Targets::Labels(
            indices
                .iter()
                .map(|&i| split.label(i).ok_or_else(|| missing(i, "class label")))
                .collect::<Result<_, _>>()?,
        ),
        Task::Regression => {
            let mut v = Vec::with_capacity(indices.len() * split.value_width());
            for &i in indices {
                v.extend_from_slice(split.values(i).ok_or_else(|| missing(i, "target values"))?);
            }
            Targets::Values(v)
        }
        Task::Autoencoder => Targets::Values(x.to_vec()),
    })
}

/// The batch loss of `outputs` against `targets`: cross-entropy against labels, the mean
/// squared error against values (which of the two the configuration's `train.loss` asks for;
/// `RunConfig::validate` keeps the loss and the task together).
pub(crate) fn loss(outputs: Tensor<2>, targets: &Targets) -> Tensor<1> {
    match targets {
        Targets::Labels(l) => crate::train::cross_entropy_of(outputs, l.iter().copied()),
        Targets::Values(v) => crate::train::mse(outputs, v),
    }
}

/// `n` samples of `shape` as a tensor of rank `1 + shape.len()` (`[n, c, h, w]` for images).
enum Input {
    Vector(Tensor<2>),
    Signal(Tensor<3>),
    Map(Tensor<4>),
}

fn input(x: Vec<f32>, n: usize, shape: &[usize], device: &Device) -> Input {
    match *shape {
        [d] => Input::Vector(Tensor::from_data(TensorData::new(x, [n, d]), device)),
        [c, l] => Input::Signal(Tensor::from_data(TensorData::new(x, [n, c, l]), device)),
        [c, h, w] => Input::Map(Tensor::from_data(TensorData::new(x, [n, c, h, w]), device)),
        _ => {
            let len: usize = shape.iter().product();
            Input::Vector(Tensor::from_data(TensorData::new(x, [n, len]), device))
        }
    }
}

/// The model's outputs `[n, outputs]` for `n` samples of `shape`.
pub(crate) fn forward(
    model: &Model,
    x: Vec<f32>,
    n: usize,
    shape: &[usize],
    device: &Device,
) -> Tensor<2> {
    match input(x, n, shape, device) {
        Input::Vector(t) => model.forward(t),
        Input::Signal(t) => model.forward(t),
        Input::Map(t) => model.forward(t),
    }
}

/// Calibrates every binary point of `model` on `n` samples of `shape`.
pub(crate) fn calibrate(
    model: &mut Model,
    x: Vec<f32>,
    n: usize,
    shape: &[usize],
    method: Calibration,
    device: &Device,
) {
    match input(x, n, shape, device) {
        Input::Vector(t) => model.calibrate(t, method),
        Input::Signal(t) => model.calibrate(t, method),
        Input::Map(t) => model.calibrate(t, method),
    }
}
