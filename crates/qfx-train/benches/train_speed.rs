//! Training speed on burn Flex (issue "faster than PyTorch's fake quantization"), one
//! configuration per process so each measures alone; `bench/train_speed.sh` runs them all, with
//! the PyTorch twins of `bench/train_speed_torch.py`, and prints the ratio tables.
//!
//! `cargo bench -p qfx-train --bench train_speed -- epoch --quant float|qat [--images N] [--json PATH]`
//!   one epoch of the small CNN (28×28×1 → conv16–BN–ReLU–pool → conv32–BN–ReLU–pool → 10),
//!   batch 64, Adam, seeded random images (speed does not depend on the values); with `qat`
//!   every tensor is 4-bit fixed point with learned binary points, as in `qfx demo`.
//! `cargo bench -p qfx-train --bench train_speed -- kernels [--json PATH]`
//!   per-kernel times (median of repeated calls): max pooling, convolution forward, and
//!   convolution backward (input and weight gradients) on the shapes of the small CNN and
//!   ResNet-20.
//!
//! `QFX_KERNELS=burn` runs burn's convolution and pooling instead of qfx's (the "before").

mod common;

use std::time::Instant;

use burn::module::Module;
use burn::optim::{AdamConfig, GradientsParams};
use burn::tensor::{Device, Distribution, Tensor};
use qfx_train::kernels::{conv2d_with, max_pool2d_with, ConvShape, Kernels};
use qfx_train::layers::QuantConfig;
use qfx_train::models::ModelConfig;
use qfx_train::train::cross_entropy;
use qfx_train::Calibration;

use common::{arg, median};

fn epoch(quantized: bool, images: usize) -> f64 {
    let device = Device::flex().autodiff();
    device.seed(7);
    let q = if quantized {
        QuantConfig {
            bits: 4,
            ..QuantConfig::default()
        }
    } else {
        QuantConfig::float()
    };
    let mut model = ModelConfig::small_cnn()
        .init(&q, &[1, 28, 28], &device)
        .expect("valid config");
    let batch = 64;
    let x = Tensor::<4>::random([images, 1, 28, 28], Distribution::Normal(0.0, 1.0), &device);
    let labels: Vec<u8> = (0..images).map(|i| (i % 10) as u8).collect();
    if quantized {
        model.calibrate(x.clone().slice(0..512), Calibration::MaxAbs);
    }
    let mut optim = AdamConfig::new().init();
    let start = Instant::now();
    for at in (0..images).step_by(batch) {
        let end = (at + batch).min(images);
        let xb = x.clone().slice(at..end);
        let loss = cross_entropy(model.forward(xb), &labels[at..end]);
        let grads = GradientsParams::from_grads(loss.backward(), &model);
        model = optim.step(1e-3, model, grads);
    }
    let _ = model.valid(); // the last update has happened
    start.elapsed().as_secs_f64()
}

/// Median seconds of `f` over `reps` calls after two warm-up calls.
fn time(reps: usize, mut f: impl FnMut()) -> f64 {
    f();
    f();
    median(
        (0..reps)
            .map(|_| {
                let t = Instant::now();
                f();
                t.elapsed().as_secs_f64()
            })
            .collect(),
    )
}

fn kernels(kernels: Kernels) -> Vec<(String, f64)> {
    let device = Device::flex().autodiff();
    device.seed(3);
    let normal = Distribution::Normal(0.0, 1.0);
    let mut rows = Vec::new();
    for (name, shape) in [
        ("max pool 2×2, [64,16,28,28]", [64, 16, 28, 28]),
        ("max pool 2×2, [64,32,14,14]", [64, 32, 14, 14]),
    ] {
        let x = Tensor::<4>::random(shape, normal, &device);
        rows.push((
            format!("{name} forward"),
            time(20, || {
                let _ = max_pool2d_with(x.clone(), [2, 2], [2, 2], kernels).into_data();
            }),
        ));
        rows.push((
            format!("{name} forward + backward"),
            time(20, || {
                let x = x.clone().require_grad();
                let y = max_pool2d_with(x.clone(), [2, 2], [2, 2], kernels);
                let _ = x.grad(&y.sum().backward()).unwrap().into_data();
            }),
        ));
    }
    for (name, input, out) in [
        ("conv 3×3 1→16, [64,1,28,28]", [64, 1, 28, 28], 16),
        ("conv 3×3 16→32, [64,16,14,14]", [64, 16, 14, 14], 32),
        ("conv 3×3 16→16, [128,16,32,32]", [128, 16, 32, 32], 16),
        ("conv 3×3 64→64, [128,64,8,8]", [128, 64, 8, 8], 64),
    ] {
        let x = Tensor::<4>::random(input, normal, &device);
        let w = Tensor::<4>::random([out, input[1], 3, 3], normal, &device);
        let shape = ConvShape::square(3, 1, 1);
        rows.push((
            format!("{name} forward"),
            time(10, || {
                let _ = conv2d_with(x.clone(), w.clone(), None, shape, kernels).into_data();
            }),
        ));
        rows.push((
            format!("{name} forward + backward"),
            time(10, || {
                let (x, w) = (x.clone().require_grad(), w.clone().require_grad());
                let y = conv2d_with(x.clone(), w.clone(), None, shape, kernels);
                let grads = y.sum().backward();
                let _ = x.grad(&grads).unwrap().into_data();
                let _ = w.grad(&grads).unwrap().into_data();
            }),
        ));
    }
    rows
}

fn main() {
    let chosen = common::start();
    let json = match std::env::args().nth(1).as_deref() {
        Some("epoch") => {
            let quant = arg("--quant").unwrap_or_else(|| "float".into());
            let images: usize = arg("--images").and_then(|s| s.parse().ok()).unwrap_or(6000);
            let seconds = epoch(quant == "qat", images);
            println!(
                "small CNN epoch ({quant}, {images} images, {chosen:?} kernels): {seconds:.2} s"
            );
            format!("{{\"quant\":\"{quant}\",\"images\":{images},\"seconds\":{seconds}}}\n")
        }
        Some("kernels") => {
            let rows = kernels(chosen);
            let items: Vec<String> = rows
                .iter()
                .map(|(name, s)| {
                    println!("{name}: {:.2} ms ({chosen:?} kernels)", s * 1e3);
                    format!("{{\"name\":\"{name}\",\"seconds\":{s}}}")
                })
                .collect();
            format!("[{}]\n", items.join(","))
        }
        _ => panic!(
            "usage: train_speed epoch --quant float|qat [--images N] | kernels [--json PATH]"
        ),
    };
    if let Some(path) = arg("--json") {
        std::fs::write(path, json).expect("write json");
    }
}
