//! ResNet-20 training step (forward + backward + SGD update), batch 128, 32×32×3 random input,
//! on burn's Flex CPU backend: every quantizer on (8-bit QAT, learned binary points) against the
//! same module tree with quantizers off.
//!
//! `cargo bench -p qfx-train --bench resnet_step -- [--mode qat|float|both] [--steps N] [--json PATH]`
//! Peak memory is the process's high-water mark, so `bench/train_speed.sh` runs each mode in its
//! own process.

mod common;

use std::time::Instant;

use burn::module::Module;
use burn::optim::{GradientsParams, SgdConfig};
use burn::tensor::{Device, Distribution, Tensor};
use qfx_train::layers::QuantConfig;
use qfx_train::models::ModelConfig;
use qfx_train::train::cross_entropy;
use qfx_train::Calibration;

use common::{arg, median};

/// Peak resident memory of this process (Linux), in MiB.
fn peak_mib() -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines().find(|l| l.starts_with("VmHWM:")).map(|l| {
                l.split_whitespace()
                    .nth(1)
                    .unwrap_or("0")
                    .parse::<f64>()
                    .unwrap_or(0.0)
            })
        })
        .unwrap_or(0.0)
        / 1024.0
}

/// The median step time in seconds over `steps` steps, after two warm-up steps.
fn run(quantized: bool, steps: usize) -> f64 {
    let device = Device::flex().autodiff();
    device.seed(7);
    let q = if quantized {
        QuantConfig::default()
    } else {
        QuantConfig::float()
    };
    let mut model = ModelConfig::resnet20()
        .init(&q, &[3, 32, 32], &device)
        .expect("valid config");
    let x = Tensor::<4>::random([128, 3, 32, 32], Distribution::Normal(0.0, 1.0), &device);
    let labels: Vec<u8> = (0..128).map(|i| (i % 10) as u8).collect();
    if quantized {
        model.calibrate(x.clone(), Calibration::MaxAbs);
    }
    let mut optim = SgdConfig::new().init();
    let mut times = Vec::new();
    for step in 0..steps + 2 {
        let t = Instant::now();
        let loss = cross_entropy(model.forward(x.clone()), &labels);
        let grads = GradientsParams::from_grads(loss.backward(), &model);
        model = optim.step(0.01, model, grads);
        let _ = model.clone().valid(); // make sure the update happened (sync)
        if step >= 2 {
            times.push(t.elapsed().as_secs_f64());
        }
    }
    median(times)
}

fn main() {
    common::start();
    let mode = arg("--mode").unwrap_or_else(|| "both".to_string());
    let steps: usize = arg("--steps").and_then(|s| s.parse().ok()).unwrap_or(5);
    let mut results = Vec::new();
    for (name, quantized) in [("float", false), ("qat", true)] {
        if mode == name || mode == "both" {
            let seconds = run(quantized, steps);
            println!(
                "resnet20 step ({name}): median {seconds:.3} s over {steps} steps, peak RSS {:.0} MiB",
                peak_mib()
            );
            results.push(format!(
                "{{\"mode\":\"{name}\",\"seconds\":{seconds},\"peak_mib\":{}}}",
                peak_mib()
            ));
        }
    }
    if let Some(path) = arg("--json") {
        std::fs::write(path, format!("[{}]\n", results.join(","))).expect("write json");
    }
}
