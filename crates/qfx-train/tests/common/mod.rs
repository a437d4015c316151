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

/// Runs the exported `ir` in the integer engine on every sample of `x` and compares with the
/// trained `model`'s inference: how many samples give identical outputs (every value), and
/// the overflow events the engine counted.
pub fn engine_vs_model(model: &Model, ir: &qfx_ir::Model, x: Tensor<4>) -> (usize, u64) {
    use burn::module::Module;
    let n = x.dims()[0];
    let inputs: Vec<f32> = x.to_data().convert::<f32>().try_to_vec::<f32>().unwrap();
    let outputs: Vec<f32> = model
        .valid()
        .forward(x)
        .into_data()
        .convert::<f32>()
        .try_to_vec::<f32>()
        .unwrap();
    let (per_in, per_out) = (inputs.len() / n, outputs.len() / n);
    let (mut same, mut overflows) = (0, 0u64);
    for i in 0..n {
        let out = qfx_engine::run(ir, &inputs[i * per_in..(i + 1) * per_in]).unwrap();
        overflows += out.overflows.iter().sum::<u64>();
        let engine = out.output.values();
        let trained = &outputs[i * per_out..(i + 1) * per_out];
        same += engine.iter().zip(trained).all(|(e, t)| *e == *t as f64) as usize;
    }
    (same, overflows)
}
