//! Evaluation and calibration: the network in inference mode on batches of a dataset.

use burn::module::Module;
use burn::tensor::{Device, Tensor, TensorData};
use qfx_data::Dataset;
use serde::{Deserialize, Serialize};

use crate::config::RunConfig;
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

/// Normalized `[n, c, h, w]` input for the images (bytes) given.
pub(super) fn input_tensor(
    images: &[u8],
    n: usize,
    shape: [usize; 3],
    config: &RunConfig,
    device: &Device,
) -> Tensor<4> {
    let pixels = config.normalize.preprocess().apply(images, shape);
    let [c, h, w] = shape;
    Tensor::from_data(TensorData::new(pixels, [n, c, h, w]), device)
}

/// Accuracy of `model` (inference mode) on the first `limit` images of `data` (0: all).
pub fn evaluate(model: &Model, data: &Dataset, config: &RunConfig, limit: usize) -> Accuracy {
    let model = model.valid();
    let device = Device::flex();
    let n = if limit == 0 {
        data.len()
    } else {
        limit.min(data.len())
    };
    let (mut top1, mut top5) = (0usize, 0usize);
    let len = data.image_len();
    let classes = config.classes();
    for start in (0..n).step_by(256) {
        let m = 256.min(n - start);
        let x = input_tensor(
            &data.images[start * len..(start + m) * len],
            m,
            data.shape,
            config,
            &device,
        );
        let logits: Vec<f32> = model.forward(x).host_f32();
        for (row, &label) in logits.chunks(classes).zip(&data.labels[start..start + m]) {
            let rank = crate::train::label_rank(row, label as usize);
            top1 += (rank == 0) as usize;
            top5 += (rank < 5) as usize;
        }
    }
    let frac = |k: usize| k as f64 / n.max(1) as f64;
    Accuracy {
        images: n,
        top1: frac(top1),
        top5: (classes > 5).then(|| frac(top5)),
    }
}

/// Sets every binary point from `config.calibration.batches` batches of training data, in
/// inference mode (running BatchNorm statistics, as deployed).
pub fn calibrate(model: Model, data: &Dataset, config: &RunConfig) -> Result<Model, TrainError> {
    let n = (config.calibration.batches * config.train.batch_size).min(data.len());
    let order = qfx_data::epoch_order(config.train.seed, u64::MAX, data.len());
    let len = data.image_len();
    let images: Vec<u8> = order[..n]
        .iter()
        .flat_map(|&i| data.images[i * len..(i + 1) * len].iter().copied())
        .collect();
    let mut valid = model.valid();
    let x = input_tensor(&images, n, data.shape, config, &Device::flex());
    valid.calibrate(x, config.calibration.method);
    load_module_tensors(model, module_tensors(&valid))
}
