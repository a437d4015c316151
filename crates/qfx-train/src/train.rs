//! Training helpers: batches from byte datasets, the loss, accuracy.

use crate::host::HostValues;
use burn::tensor::activation::log_softmax;
use burn::tensor::{Device, Tensor, TensorData};
use qfx_data::Dataset;

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

/// Mean cross-entropy of `logits` `[n, classes]` against `labels`.
pub fn cross_entropy(logits: Tensor<2>, labels: &[u8]) -> Tensor<1> {
    let [n, classes] = logits.dims();
    let mut one_hot = vec![0f32; n * classes];
    for (i, &l) in labels.iter().enumerate() {
        one_hot[i * classes + l as usize] = 1.0;
    }
    let target = Tensor::<2>::from_data(TensorData::new(one_hot, [n, classes]), &logits.device());
    (log_softmax(logits, 1) * target).sum().neg() / n as f64
}

/// Number of rows of `logits` whose largest entry is at the label.
pub fn correct(logits: Tensor<2>, labels: &[u8]) -> usize {
    let [_, classes] = logits.dims();
    let v: Vec<f32> = logits.host_f32();
    v.chunks(classes)
        .zip(labels)
        .filter(|(row, &l)| label_rank(row, l as usize) == 0)
        .count()
}

/// The label's position when the logits are sorted the way an argmax over them decides: larger
/// first, and among equal values the lower index first (quantized logits tie often; the HLS
/// code and the integer engine pick the first maximum). NaN ranks last.
pub fn label_rank(row: &[f32], label: usize) -> usize {
    let l = row[label];
    if l.is_nan() {
        return row.len();
    }
    row.iter()
        .enumerate()
        .filter(|&(i, &v)| v > l || (v == l && i < label))
        .count()
}

/// Mean and standard deviation of Fashion-MNIST's pixels (over 255): its usual normalization.
pub const FASHION_MNIST_NORM: (f32, f32) = (0.286, 0.353);

/// `steps` Adam steps (learning rate `lr`) over consecutive batches of `data`, wrapping around.
pub fn adam_steps(
    mut model: crate::models::Model,
    data: &Dataset,
    steps: usize,
    batch_size: usize,
    lr: f64,
    (mean, std): (f32, f32),
    device: &Device,
) -> crate::models::Model {
    use burn::optim::{AdamConfig, GradientsParams};
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
