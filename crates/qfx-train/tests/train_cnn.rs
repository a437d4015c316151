//! QAT of the small CNN on real data (the embedded Fashion-MNIST subset): it learns, and its
//! learned binary points move from a deliberately bad initialization toward the calibrated one.

mod common;

use burn::module::Module;
use burn::tensor::Device;
use common::{adam_steps, batch};
use qfx_data::{embedded_fashion_mnist_dir, load_idx_dir};
use qfx_train::graph::Layer;
use qfx_train::layers::QuantConfig;
use qfx_train::models::{Model, ModelConfig};
use qfx_train::train::{correct, FASHION_MNIST_NORM};
use qfx_train::{Calibration, Quantizer};

const MEAN: f32 = FASHION_MNIST_NORM.0;
const STD: f32 = FASHION_MNIST_NORM.1;

/// The activation quantizers of the CNN whose binary points the test perturbs and tracks: the
/// input's, then the convolutions', the BatchNorms' and the ReLUs' outputs.
fn activation_quantizers(model: &mut Model) -> Vec<&mut Quantizer> {
    let (mut input, mut convs, mut norms, mut relus) = (vec![], vec![], vec![], vec![]);
    for layer in model.layers.iter_mut() {
        match layer {
            Layer::Quantize(q) => input.push(q),
            Layer::Conv2d(c) => convs.push(&mut c.out),
            Layer::BatchNorm(n) => norms.push(&mut n.out),
            Layer::Relu(r) => relus.push(&mut r.out),
            _ => {}
        }
    }
    [input, convs, norms, relus].into_iter().flatten().collect()
}

#[test]
fn qat_learns_and_binary_points_recover_from_a_bad_init() {
    let data = load_idx_dir(&embedded_fashion_mnist_dir()).unwrap();
    let device = Device::flex().autodiff();
    device.seed(42); // weight initialization: the same run every time
    let q = QuantConfig {
        bits: 6,
        ..QuantConfig::default()
    };
    let config = ModelConfig::Cnn {
        in_channels: 1,
        image: 28,
        channels: [8, 16],
        classes: 10,
    };
    let mut model = config.init(&q, &[1, 28, 28], &device).unwrap();

    // Good init: calibrated on a batch. Bad init: 3 integer bits too few everywhere.
    let (x, _) = batch(&data.train, 0, 256, MEAN, STD, &device);
    model.calibrate(x, Calibration::MaxAbs);
    let good: Vec<i32> = activation_quantizers(&mut model)
        .iter()
        .map(|q| q.int_bits()[0])
        .collect();
    for q in activation_quantizers(&mut model) {
        let bad = q.frac_bits()[0] + 3;
        q.set_frac_bits(&[bad]);
    }
    let distance = |model: &mut Model| -> f64 {
        let now: Vec<i32> = activation_quantizers(model)
            .iter()
            .map(|q| q.int_bits()[0])
            .collect();
        now.iter()
            .zip(&good)
            .map(|(a, b)| (a - b).abs() as f64)
            .sum::<f64>()
            / good.len() as f64
    };
    let before = distance(&mut model);

    let evaluate = |model: &Model| -> f64 {
        let valid = model.valid();
        let (x, y) = batch(&data.test, 0, 1000, MEAN, STD, &Device::flex());
        correct(valid.forward(x), &y) as f64 / y.len() as f64
    };
    let acc_before = evaluate(&model);

    let mut model = adam_steps(
        model,
        &data.train,
        150,
        64,
        2e-3,
        FASHION_MNIST_NORM,
        &device,
    );
    let after = distance(&mut model);
    let acc_after = evaluate(&model);
    println!(
        "small CNN, 6-bit QAT, 150 steps: test accuracy {acc_before:.3} -> {acc_after:.3}; \
         mean |I - I_calibrated| of activation quantizers {before:.2} -> {after:.2}"
    );
    assert!(acc_after > 0.65, "accuracy {acc_after}");
    assert!(
        after < before - 0.5,
        "binary points did not move toward the calibrated ones: {before} -> {after}"
    );
}
