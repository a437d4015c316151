//! The generated Vitis HLS projects of the qfx-train networks (MLP, small CNN — also with K-hot
//! weights and BatchNorm scales, emitted as shifts and adds —, ResNet-20 and the K-hot binarized
//! network), calibrated with realistic narrow formats, computed by g++ against the Xilinx
//! `ap_types` headers: every output code equals the integer engine's on 200 inputs each,
//! including accumulators that wrap or saturate (the engine counts those events and the test
//! checks there were some).
//!
//! Without g++ or the headers these tests print SKIPPED, unless `QFX_REQUIRE_ORACLE=1`.

mod common;

use std::path::Path;

use burn::tensor::{Device, Distribution, Tensor};
use common::batch;
use qfx_data::{embedded_fashion_mnist_dir, load_idx_dir};
use qfx_fixed::Overflow;
use qfx_hls::{emit, verify_with, ErrorKind, VerifyOptions};
use qfx_train::export::export;
use qfx_train::layers::QuantConfig;
use qfx_train::models::ModelConfig;
use qfx_train::train::FASHION_MNIST_NORM;
use qfx_train::Calibration;

const SAMPLES: usize = 200;

/// Where the inputs come from.
enum Inputs {
    /// Fashion-MNIST test images (calibrated on training images).
    FashionMnist,
    /// Normal random values (for shapes without a dataset at hand).
    Random,
}

struct Case {
    name: &'static str,
    config: ModelConfig,
    quant: QuantConfig,
    shape: [usize; 3],
    inputs: Inputs,
    /// Overflow mode given to every accumulator after export (training emulates AP_WRAP
    /// accumulators only; the engine and the C++ handle every mode).
    acc_overflow_after_export: Option<Overflow>,
}

fn required() -> bool {
    std::env::var("QFX_REQUIRE_ORACLE").is_ok_and(|v| v == "1")
}

#[track_caller]
fn check(case: Case) {
    let device = Device::flex();
    device.seed(11);
    let mut model = case.config.init(&case.quant, &case.shape, &device).unwrap();
    let [c, h, w] = case.shape;
    let len = c * h * w;
    let (calib, xs): (Tensor<4>, Vec<f32>) = match case.inputs {
        Inputs::FashionMnist => {
            let data = load_idx_dir(&embedded_fashion_mnist_dir()).unwrap();
            let (mean, std) = FASHION_MNIST_NORM;
            let (calib, _) = batch(&data.train, 0, 256, mean, std, &device);
            let (test, _) = batch(&data.test, 0, SAMPLES, mean, std, &device);
            (
                calib,
                test.into_data()
                    .convert::<f32>()
                    .try_to_vec::<f32>()
                    .unwrap(),
            )
        }
        Inputs::Random => {
            let calib = Tensor::<4>::random([8, c, h, w], Distribution::Normal(0.0, 1.0), &device);
            let test =
                Tensor::<4>::random([SAMPLES, c, h, w], Distribution::Normal(0.0, 1.5), &device);
            (
                calib,
                test.into_data()
                    .convert::<f32>()
                    .try_to_vec::<f32>()
                    .unwrap(),
            )
        }
    };
    model.calibrate(calib, Calibration::MaxAbs);
    let mut ir = export(&model, case.name).unwrap();
    if let Some(mode) = case.acc_overflow_after_export {
        for layer in &mut ir.layers {
            if let qfx_ir::Op::Dense { accumulator, .. } | qfx_ir::Op::Conv2d { accumulator, .. } =
                &mut layer.op
            {
                for f in accumulator.iter_mut() {
                    *f = f.with_overflow(mode, 0).unwrap();
                }
            }
        }
        ir.validate().unwrap();
    }
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR"))
        .join("qfx-hls-train")
        .join(case.name);
    let _ = std::fs::remove_dir_all(&dir);
    emit(&ir, &dir).unwrap();
    let inputs: Vec<Vec<f32>> = xs.chunks(len).map(|x| x.to_vec()).collect();
    assert_eq!(inputs.len(), SAMPLES);
    let options = VerifyOptions {
        cache_dir: Path::new(env!("CARGO_TARGET_TMPDIR")).join("qfx-oracle"),
        ..VerifyOptions::default()
    };
    let report = match verify_with(&dir, &inputs, &options) {
        Ok(r) => r,
        Err(e) if matches!(e.kind, ErrorKind::NoCompiler | ErrorKind::Headers) && !required() => {
            println!("SKIPPED {} HLS C simulation check: {e}", case.name);
            return;
        }
        Err(e) => panic!("{}: {e}", case.name),
    };
    println!("{}: {report}", case.name);
    assert_eq!(report.samples, SAMPLES);
    assert_eq!(report.mismatches, 0, "{}: {report}", case.name);
    // The narrow accumulators overflow on real inputs: the check covers wrap / saturation.
    let acc_layers: u64 = ir
        .layers
        .iter()
        .zip(&report.overflows)
        .filter(|(l, _)| matches!(l.op, qfx_ir::Op::Dense { .. } | qfx_ir::Op::Conv2d { .. }))
        .map(|(_, (_, n))| n)
        .sum();
    assert!(
        acc_layers > 0,
        "{}: no accumulator overflowed: {report}",
        case.name
    );
}

#[test]
fn mlp_wrapping_accumulators() {
    check(Case {
        name: "mlp",
        config: ModelConfig::Mlp {
            inputs: 784,
            hidden: vec![32],
            classes: 10,
        },
        quant: QuantConfig {
            bits: 6,
            acc_bits: Some(10),
            acc_overflow: Overflow::Wrap,
            overflow: Overflow::Sat,
            ..QuantConfig::default()
        },
        shape: [1, 28, 28],
        inputs: Inputs::FashionMnist,
        acc_overflow_after_export: None,
    });
}

#[test]
fn cnn_saturating_accumulators() {
    check(Case {
        name: "cnn",
        config: ModelConfig::Cnn {
            in_channels: 1,
            image: 28,
            channels: [8, 16],
            classes: 10,
        },
        quant: QuantConfig {
            bits: 6,
            acc_bits: Some(11),
            overflow: Overflow::Wrap,
            ..QuantConfig::default()
        },
        shape: [1, 28, 28],
        inputs: Inputs::FashionMnist,
        acc_overflow_after_export: Some(Overflow::Sat),
    });
}

/// Multiplier-free: 2-hot weights and 2-digit CSD BatchNorm scales, emitted as shifts and adds.
#[test]
fn cnn_khot_shift_adds() {
    check(Case {
        name: "cnn_khot",
        config: ModelConfig::Cnn {
            in_channels: 1,
            image: 28,
            channels: [8, 16],
            classes: 10,
        },
        quant: QuantConfig {
            bits: 6,
            acc_bits: Some(11),
            acc_overflow: Overflow::Wrap,
            weight_khot: Some(qfx_fixed::KHot::binary(2)),
            bn_khot: Some(qfx_fixed::KHot::csd(2)),
            ..QuantConfig::default()
        },
        shape: [1, 28, 28],
        inputs: Inputs::FashionMnist,
        acc_overflow_after_export: None,
    });
}

/// The binarized network with every non-binary multiplier K-hot: `±1` convolutions (loop
/// templates), shift-add stem, classifier, BatchNorm and PReLU.
#[test]
fn bnn_khot() {
    check(Case {
        name: "bnn_khot",
        config: ModelConfig::Bnn {
            in_channels: 1,
            widths: [8, 16, 16],
            blocks_per_stage: 1,
            stem_stride: 2,
            classes: 10,
        },
        quant: QuantConfig {
            bits: 8,
            acc_bits: Some(11),
            acc_overflow: Overflow::Wrap,
            weight_khot: Some(qfx_fixed::KHot::binary(2)),
            bn_khot: Some(qfx_fixed::KHot::csd(2)),
            slope_khot: Some(qfx_fixed::KHot::binary(1)),
            ..QuantConfig::default()
        },
        shape: [1, 28, 28],
        inputs: Inputs::FashionMnist,
        acc_overflow_after_export: None,
    });
}

#[test]
fn resnet20_small_inputs() {
    check(Case {
        name: "resnet20",
        config: ModelConfig::resnet20(),
        quant: QuantConfig {
            bits: 8,
            acc_bits: Some(14),
            acc_overflow: Overflow::Wrap,
            overflow: Overflow::Sat,
            ..QuantConfig::default()
        },
        shape: [3, 8, 8],
        inputs: Inputs::Random,
        acc_overflow_after_export: None,
    });
}
