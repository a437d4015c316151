//! The built-in networks (`mlp`, `cnn`, `resnet`, `bnn`) against the IR documents their original
//! hand-written implementations exported: same seed, same initialization, same calibration batch,
//! the same three Adam steps on the embedded Fashion-MNIST subset, then export. Equal documents
//! mean equal weights, formats and integer codes, so the networks compute and train exactly as
//! before.
//!
//! The fixtures in `tests/fixtures/presets/` were written by this test with
//! `QFX_WRITE_PRESET_FIXTURES=1` at commit 8144ba2, before the networks became layer-graph
//! presets; rewriting them needs a reason (a deliberate change of a built-in network).

use std::path::PathBuf;

use burn::module::Module;
use burn::optim::{AdamConfig, GradientsParams};
use burn::tensor::{Device, Tensor, TensorData};
use qfx_train::export::export;
use qfx_train::layers::QuantConfig;
use qfx_train::models::{ModelConfig, Shortcut};
use qfx_train::train::cross_entropy;
use qfx_train::Calibration;

/// `n` embedded training images from `start`, normalized, and their labels.
fn images(start: usize, n: usize, device: &Device) -> (Tensor<4>, Vec<u8>) {
    let data = qfx_data::embedded_fashion_mnist().train;
    let len = data.image_len();
    let pixels: Vec<f32> = data.images[start * len..(start + n) * len]
        .iter()
        .map(|&p| (p as f32 / 255.0 - 0.286) / 0.353)
        .collect();
    let [c, h, w] = data.shape;
    let x = Tensor::from_data(TensorData::new(pixels, [n, c, h, w]), device);
    (x, data.labels[start..start + n].to_vec())
}

/// The IR after seeding, initialization, calibration and three Adam steps.
fn trained_ir(config: &ModelConfig, seed: u64) -> String {
    let device = Device::flex().autodiff();
    device.seed(seed);
    let quant = QuantConfig {
        bits: 6,
        ..QuantConfig::default()
    };
    let mut model = config.init(&quant, &[1, 28, 28], &device).unwrap();
    // Calibration runs in inference mode, as `qfx_train::run::calibrate` does it.
    let (x, _) = images(0, 32, &Device::flex());
    let mut valid = model.valid();
    valid.calibrate(x, Calibration::MaxAbs);
    model = qfx_train::optim::load_module_tensors(model, qfx_train::optim::module_tensors(&valid))
        .unwrap();
    let mut optim = AdamConfig::new().init();
    for step in 0..3 {
        let (x, y) = images(32 + step * 16, 16, &device);
        let loss = cross_entropy(model.forward(x), &y);
        let grads = GradientsParams::from_grads(loss.backward(), &model);
        model = optim.step(1e-2, model, grads);
    }
    export(&model, "preset").unwrap().to_json() + "\n"
}

#[test]
fn presets_reproduce_the_original_networks() {
    let cases = [
        (
            "mlp",
            ModelConfig::Mlp {
                inputs: 784,
                hidden: vec![12, 8],
                classes: 10,
            },
        ),
        (
            "cnn",
            ModelConfig::Cnn {
                in_channels: 1,
                image: 28,
                channels: [3, 4],
                classes: 10,
            },
        ),
        (
            "resnet-a",
            ModelConfig::Resnet {
                in_channels: 1,
                widths: [2, 3, 4],
                blocks_per_stage: 1,
                classes: 10,
                shortcut: Shortcut::A,
            },
        ),
        (
            "resnet-b",
            ModelConfig::Resnet {
                in_channels: 1,
                widths: [2, 3, 4],
                blocks_per_stage: 1,
                classes: 10,
                shortcut: Shortcut::B,
            },
        ),
        (
            "bnn",
            ModelConfig::Bnn {
                in_channels: 1,
                widths: [2, 3, 4],
                blocks_per_stage: 1,
                stem_stride: 2,
                classes: 10,
            },
        ),
    ];
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/presets");
    let write = std::env::var_os("QFX_WRITE_PRESET_FIXTURES").is_some();
    for (name, config) in cases {
        let got = trained_ir(&config, 17);
        let path = dir.join(format!("{name}.ir.json"));
        if write {
            std::fs::create_dir_all(&dir).unwrap();
            std::fs::write(&path, &got).unwrap();
            continue;
        }
        let text =
            std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        // Compared as documents: a newer IR version reads the fixture's older one unchanged.
        let mut want = qfx_ir::Model::from_json(&text).unwrap();
        let got = qfx_ir::Model::from_json(&got).unwrap();
        want.version = got.version;
        assert!(
            got == want,
            "{name}: the exported IR differs from {}",
            path.display()
        );
    }
}
