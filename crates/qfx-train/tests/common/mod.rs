//! Helpers shared by the training tests (not part of the library): batches straight from a
//! dataset, and a few plain Adam steps. Each test binary uses a subset of them.
#![allow(dead_code)]

use burn::optim::{AdamConfig, GradientsParams};
use burn::tensor::{Device, Tensor, TensorData};
use qfx_data::Dataset;
use qfx_train::models::Model;
use qfx_train::train::cross_entropy;

/// Images `start..start + n` of `data` as a normalized `[n, c, h, w]` tensor
/// (`(x/255 − mean)/std`) and their labels.
pub fn batch(
    data: &Dataset,
    start: usize,
    n: usize,
    mean: f32,
    std: f32,
    device: &Device,
) -> (Tensor<4>, Vec<u8>) {
    let n = n.min(data.len().saturating_sub(start));
    let len = data.image_len();
    let pixels: Vec<f32> = data.images[start * len..(start + n) * len]
        .iter()
        .map(|&p| (p as f32 / 255.0 - mean) / std)
        .collect();
    let [c, h, w] = data.shape;
    let x = Tensor::from_data(TensorData::new(pixels, [n, c, h, w]), device);
    (x, data.labels[start..start + n].to_vec())
}

/// `steps` Adam steps (learning rate `lr`) over consecutive batches of `data`, wrapping around.
pub fn adam_steps(
    mut model: Model,
    data: &Dataset,
    steps: usize,
    batch_size: usize,
    lr: f64,
    (mean, std): (f32, f32),
    device: &Device,
) -> Model {
    let mut optim = AdamConfig::new().init();
    let span = data.len().saturating_sub(batch_size).max(1);
    for step in 0..steps {
        let (x, y) = batch(
            data,
            (step * batch_size) % span,
            batch_size,
            mean,
            std,
            device,
        );
        let loss = cross_entropy(model.forward(x), &y);
        let grads = GradientsParams::from_grads(loss.backward(), &model);
        model = optim.step(lr, model, grads);
    }
    model
}
