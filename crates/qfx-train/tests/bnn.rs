//! The binarized network: the sign's straight-through gradient, and a small BNN whose
//! non-binary multipliers are all K-hot learns, exports `±1` convolutions and K-hot constants,
//! estimates to 0 DSPs (its fixed-point twin needs DSPs), and the integer engine reproduces its
//! inference bit for bit.

mod common;

use burn::module::Module;
use burn::tensor::{Device, Tensor, TensorData};
use common::{adam_steps, batch};
use qfx_data::{embedded_fashion_mnist_dir, load_idx_dir};
use qfx_fixed::KHot;
use qfx_ir::Op;
use qfx_train::bnn::ste_sign;
use qfx_train::export::export;
use qfx_train::layers::QuantConfig;
use qfx_train::models::ModelConfig;
use qfx_train::train::{correct, FASHION_MNIST_NORM};
use qfx_train::Calibration;

fn values<const D: usize>(t: Tensor<D>) -> Vec<f32> {
    t.into_data().convert::<f32>().try_to_vec::<f32>().unwrap()
}

#[test]
fn sign_is_plus_minus_one_with_a_clipped_straight_through_gradient() {
    let device = Device::flex().autodiff();
    let xs: Vec<f32> = vec![-2.0, -1.0, -0.5, -0.0, 0.0, 0.25, 1.0, 1.5];
    let x = Tensor::<1>::from_data(TensorData::new(xs.clone(), [xs.len()]), &device).require_grad();
    let y = ste_sign(x.clone());
    assert_eq!(
        values(y.clone()),
        [-1.0, -1.0, -1.0, 1.0, 1.0, 1.0, 1.0, 1.0]
    );
    let grads = y.sum().backward();
    let g = values(x.grad(&grads).unwrap());
    let want: Vec<f32> = xs.iter().map(|v| (v.abs() <= 1.0) as u8 as f32).collect();
    assert_eq!(g, want);
}

fn bnn() -> ModelConfig {
    ModelConfig::Bnn {
        in_channels: 1,
        widths: [16, 32, 32],
        blocks_per_stage: 1,
        stem_stride: 2,
        classes: 10,
    }
}

#[test]
fn khot_bnn_learns_exports_needs_no_dsp_and_matches_the_engine() {
    let data = load_idx_dir(&embedded_fashion_mnist_dir()).unwrap();
    let (mean, std) = FASHION_MNIST_NORM;
    let device = Device::flex().autodiff();
    device.seed(5);
    let fixed = QuantConfig {
        bits: 12,
        ..QuantConfig::default()
    };
    let khot = QuantConfig {
        weight_khot: Some(KHot::binary(2)),
        bn_khot: Some(KHot::binary(2)),
        slope_khot: Some(KHot::binary(2)),
        ..fixed.clone()
    };
    let (calib, _) = batch(&data.train, 0, 256, mean, std, &device);
    let mut twin = bnn().init(&fixed, &[1, 28, 28], &device).unwrap();
    twin.calibrate(calib.clone(), Calibration::MaxAbs);
    let mut model = bnn().init(&khot, &[1, 28, 28], &device).unwrap();
    model.calibrate(calib, Calibration::MaxAbs);
    let model = adam_steps(
        model,
        &data.train,
        120,
        64,
        2e-3,
        FASHION_MNIST_NORM,
        &device,
    );

    let n = 500;
    let (x, y) = batch(&data.test, 0, n, mean, std, &Device::flex());
    let pixels = values(x.clone());
    let logits = values(model.valid().forward(x));
    let acc = correct(
        Tensor::<2>::from_data(TensorData::new(logits.clone(), [n, 10]), &Device::flex()),
        &y,
    ) as f64
        / n as f64;
    println!("K-hot BNN, 12-bit, 120 Adam steps: test accuracy {acc:.3} on {n} images");
    assert!(acc > 0.4, "accuracy {acc} (chance is 0.1)");

    let ir = export(&model, "bnn").unwrap();
    let (mut binary, mut constrained) = (0, 0);
    for layer in &ir.layers {
        let codes = match &layer.op {
            Op::Dense { weight, .. } | Op::Conv2d { weight, .. } => weight,
            Op::BatchNorm { scale, .. } => scale,
            Op::Prelu { slope } => slope,
            _ => continue,
        };
        let k = codes.khot.expect("K-hot constraint recorded in the IR");
        assert!(
            codes.codes.iter().all(|&c| k.admits(c as i128)),
            "{}",
            layer.name
        );
        if layer.name.starts_with("bconv") {
            assert!(
                codes.codes.iter().all(|&c| c == 1 || c == -1),
                "{}",
                layer.name
            );
            binary += 1;
        } else {
            constrained += 1;
        }
    }
    // 3 binary convolutions; stem, classifier, 4 BatchNorms and 4 PReLUs are K-hot.
    assert_eq!((binary, constrained), (3, 10));
    let cost = qfx_hls::cost::estimate(&ir).unwrap();
    println!("{cost}");
    assert_eq!(cost.dsp(), 0, "{cost}");
    let twin_cost = qfx_hls::cost::estimate(&export(&twin, "bnn").unwrap()).unwrap();
    assert!(twin_cost.dsp() > 0, "{twin_cost}");

    // The integer engine computes exactly what the model computes.
    let mut same = 0;
    for i in 0..100 {
        let out = qfx_engine::run(&ir, &pixels[i * 784..(i + 1) * 784]).unwrap();
        let row = &logits[i * 10..(i + 1) * 10];
        same += out
            .output
            .values()
            .iter()
            .zip(row)
            .all(|(e, m)| *e == *m as f64) as usize;
    }
    assert_eq!(same, 100);
}

/// For 32×32×3 inputs (stem stride 1: 32 → 16 → 8) the final pooling window is 8×8, so the
/// average is an exact shift; the engine reproduces the model on random inputs.
#[test]
fn bnn_for_32x32_rgb_pools_by_a_shift_and_matches_the_engine() {
    let device = Device::flex();
    device.seed(9);
    let config = ModelConfig::Bnn {
        in_channels: 3,
        widths: [8, 8, 16],
        blocks_per_stage: 1,
        stem_stride: 1,
        classes: 10,
    };
    let q = QuantConfig {
        bits: 8,
        ..QuantConfig::default()
    };
    let mut model = config.init(&q, &[3, 32, 32], &device).unwrap();
    let dist = burn::tensor::Distribution::Normal(0.0, 1.0);
    model.calibrate(
        Tensor::<4>::random([16, 3, 32, 32], dist, &device),
        Calibration::MaxAbs,
    );
    let ir = export(&model, "bnn32").unwrap();
    let pool = ir
        .layers
        .iter()
        .find_map(|l| match &l.op {
            Op::GlobalAvgPool { reciprocal } => Some(reciprocal.value(0).to_f64()),
            _ => None,
        })
        .expect("global average pooling");
    assert_eq!(pool, 1.0 / 64.0);
    let x = Tensor::<4>::random([5, 3, 32, 32], dist, &device);
    let pixels = values(x.clone());
    let logits = values(model.forward(x));
    for i in 0..5 {
        let out = qfx_engine::run(&ir, &pixels[i * 3072..(i + 1) * 3072]).unwrap();
        let engine: Vec<f32> = out.output.values().iter().map(|&v| v as f32).collect();
        assert_eq!(engine, logits[i * 10..(i + 1) * 10], "input {i}");
    }
}
