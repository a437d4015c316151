//! Training helpers: the losses, accuracy, and the usual Fashion-MNIST normalization.

use crate::host::HostValues;
use burn::tensor::activation::log_softmax;
use burn::tensor::{Tensor, TensorData};

/// Mean cross-entropy of `logits` `[n, classes]` against `labels`.
pub fn cross_entropy(logits: Tensor<2>, labels: &[u8]) -> Tensor<1> {
    cross_entropy_of(logits, labels.iter().map(|&l| l as usize))
}

/// Mean cross-entropy of `logits` `[n, classes]` against class indices (any number of
/// classes; [`cross_entropy`] for byte labels).
pub fn cross_entropy_of(logits: Tensor<2>, labels: impl IntoIterator<Item = usize>) -> Tensor<1> {
    let [n, classes] = logits.dims();
    let mut one_hot = vec![0f32; n * classes];
    for (i, l) in labels.into_iter().enumerate() {
        one_hot[i * classes + l] = 1.0;
    }
    let target = Tensor::<2>::from_data(TensorData::new(one_hot, [n, classes]), &logits.device());
    (log_softmax(logits, 1) * target).sum().neg() / n as f64
}

/// Mean squared error of `outputs` `[n, k]` against `targets` (`n · k` values, row-major),
/// averaged over every value.
pub fn mse(outputs: Tensor<2>, targets: &[f32]) -> Tensor<1> {
    let dims = outputs.dims();
    let target = Tensor::<2>::from_data(TensorData::new(targets.to_vec(), dims), &outputs.device());
    let d = outputs - target;
    (d.clone() * d).mean()
}

/// Number of rows of `logits` whose largest entry is at the label.
pub fn correct(logits: Tensor<2>, labels: &[u8]) -> usize {
    correct_of(logits, labels.iter().map(|&l| l as usize))
}

/// [`correct`] for class indices of any size.
pub fn correct_of(logits: Tensor<2>, labels: impl IntoIterator<Item = usize>) -> usize {
    let [_, classes] = logits.dims();
    let v: Vec<f32> = logits.host_f32();
    v.chunks(classes)
        .zip(labels)
        .filter(|(row, l)| label_rank(row, *l) == 0)
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
