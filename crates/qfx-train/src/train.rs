//! Training helpers: the loss, accuracy, and the usual Fashion-MNIST normalization.

use crate::host::HostValues;
use burn::tensor::activation::log_softmax;
use burn::tensor::{Tensor, TensorData};

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
