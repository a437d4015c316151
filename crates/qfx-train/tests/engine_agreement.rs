//! The integer engine runs the exported IR and must reproduce the trained model's inference
//! (the float emulation) on real test images: every logit, bit for bit, while the
//! accumulators fit in f32's 24-bit mantissa.

mod common;

use burn::tensor::Device;
use common::{adam_steps, batch, engine_vs_model};
use qfx_data::{embedded_fashion_mnist_dir, load_idx_dir};
use qfx_train::export::export;
use qfx_train::layers::QuantConfig;
use qfx_train::models::ModelConfig;
use qfx_train::train::FASHION_MNIST_NORM;
use qfx_train::Calibration;

#[test]
fn engine_matches_the_trained_cnn_bit_for_bit() {
    let data = load_idx_dir(&embedded_fashion_mnist_dir()).unwrap();
    let device = Device::flex().autodiff();
    device.seed(3);
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
    let (x, _) = batch(
        &data.train,
        0,
        256,
        FASHION_MNIST_NORM.0,
        FASHION_MNIST_NORM.1,
        &device,
    );
    model.calibrate(x, Calibration::MaxAbs);
    let model = adam_steps(
        model,
        &data.train,
        30,
        64,
        2e-3,
        FASHION_MNIST_NORM,
        &device,
    );

    let ir = export(&model, "cnn").unwrap();
    let n = 100;
    let (x, _) = batch(
        &data.test,
        0,
        n,
        FASHION_MNIST_NORM.0,
        FASHION_MNIST_NORM.1,
        &Device::flex(),
    );
    let (same, overflows) = engine_vs_model(&model, &ir, x);
    println!("engine vs float emulation: {same}/{n} images with identical logits; {overflows} overflow events");
    assert_eq!(same, n);
}

/// ResNet-20 (option A shortcuts, residual adds, global average pooling), calibrated on random
/// inputs: the engine reproduces the float emulation's logits.
#[test]
fn engine_matches_resnet20() {
    use burn::tensor::{Distribution, Tensor};
    let device = Device::flex();
    device.seed(5);
    let q = QuantConfig {
        bits: 6,
        ..QuantConfig::default()
    };
    let mut model = ModelConfig::resnet20()
        .init(&q, &[3, 32, 32], &device)
        .unwrap();
    let x = Tensor::<4>::random([4, 3, 32, 32], Distribution::Normal(0.0, 1.0), &device);
    model.calibrate(x.clone(), Calibration::MaxAbs);
    let ir = export(&model, "resnet20").unwrap();
    let (same, _) = engine_vs_model(&model, &ir, x);
    assert_eq!(same, 4, "images with every logit identical");
}
