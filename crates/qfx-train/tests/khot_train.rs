//! K-hot quantizers in training: the forward pass equals qfx-fixed's projection bit for bit,
//! the gradients are the straight-through ones, both implementations agree, and a small CNN
//! with 2-hot weights and 2-digit CSD BatchNorm scales learns and exports K-hot codes.

mod common;

use burn::module::Module;
use burn::tensor::{Device, Tensor, TensorData};
use common::{adam_steps, batch};
use qfx_data::{embedded_fashion_mnist_dir, load_idx_dir};
use qfx_fixed::{KHot, Overflow, Quant, CLIP_NONE};
use qfx_ir::Op;
use qfx_train::export::export;
use qfx_train::layers::QuantConfig;
use qfx_train::models::ModelConfig;
use qfx_train::quant::{quantize, Granularity, QuantPath, QuantSpec};
use qfx_train::train::{correct, FASHION_MNIST_NORM};
use qfx_train::Calibration;

struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn uniform(&mut self) -> f64 {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64
    }
}

fn values<const D: usize>(t: Tensor<D>) -> Vec<f32> {
    t.into_data().convert::<f32>().try_to_vec::<f32>().unwrap()
}

fn tensor<const D: usize>(v: Vec<f32>, shape: [usize; D], device: &Device) -> Tensor<D> {
    Tensor::from_data(TensorData::new(v, shape), device)
}

fn spec(width: u32, quant: Quant, overflow: Overflow, khot: KHot, per_channel: bool) -> QuantSpec {
    QuantSpec {
        width,
        signed: true,
        quant,
        overflow,
        sat_bits: 0,
        granularity: if per_channel {
            Granularity::PerChannel { axis: 1 }
        } else {
            Granularity::PerTensor
        },
        khot: Some(khot),
        learned_width: None,
    }
}

/// Values around (and beyond) the range of `W` bits with `frac` fractional bits, including
/// grid points and grid midpoints.
fn inputs(rng: &mut Rng, width: u32, frac: i32, n: usize) -> Vec<f32> {
    let range = 2f64.powi(width as i32 - 1);
    (0..n)
        .map(|i| {
            let code = (rng.uniform() * 2.6 - 1.3) * range;
            let c = match i % 3 {
                0 => code.round(),
                1 => code.round() + 0.5,
                _ => code,
            };
            (c * 2f64.powi(-frac)) as f32
        })
        .collect()
}

/// The expected `(x̂, ∂x̂/∂x, ∂x̂/∂F)` of every element from qfx-fixed's projection.
fn expected(
    xs: &[f32],
    spec: &QuantSpec,
    frac: &[i32],
    channel_of: impl Fn(usize) -> usize,
) -> Vec<(f32, f64, f64)> {
    xs.iter()
        .enumerate()
        .map(|(i, &x)| {
            let fb = frac[channel_of(i)];
            let q = spec.khot_quantizer(fb).unwrap().unwrap();
            let (code, clip) = q.project_code(x as f64);
            let xh = code as f64 * 2f64.powi(-fb);
            let (dx, df) = if clip == CLIP_NONE {
                (1.0, std::f64::consts::LN_2 * (x as f64 - xh))
            } else {
                (0.0, -std::f64::consts::LN_2 * xh)
            };
            (xh as f32, dx, df)
        })
        .collect()
}

#[track_caller]
fn close(got: f32, want: f64, what: &str) {
    let tol = 1e-4 * (1.0 + want.abs());
    assert!(
        (got as f64 - want).abs() <= tol,
        "{what}: got {got}, want {want}"
    );
}

#[test]
fn forward_and_gradients_equal_the_projection() {
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    let device = Device::flex().autodiff();
    let cases = [
        (6, Quant::RndConv, Overflow::Sat, KHot::binary(2), false),
        (8, Quant::Rnd, Overflow::SatSym, KHot::csd(2), true),
        (5, Quant::Trn, Overflow::SatZero, KHot::binary(1), true),
        (12, Quant::RndInf, Overflow::Sat, KHot::csd(3), false),
        (4, Quant::TrnZero, Overflow::Sat, KHot::binary(3), true),
    ];
    for (width, quant, overflow, khot, per_channel) in cases {
        let spec = spec(width, quant, overflow, khot, per_channel);
        spec.validate().unwrap();
        // [a, c, b] with c = 3 channels on axis 1.
        let (a, c, b) = (40usize, 3usize, 50usize);
        let frac: Vec<i32> = if per_channel { vec![3, 5, -1] } else { vec![4] };
        let channel_of = |i: usize| if per_channel { (i / b) % c } else { 0 };
        let mut xs = Vec::with_capacity(a * b * c);
        for i in 0..a * b * c {
            xs.extend(inputs(&mut rng, width, frac[channel_of(i)], 1));
        }
        let w: Vec<f32> = (0..xs.len())
            .map(|_| (rng.uniform() * 2.0 - 1.0) as f32)
            .collect();
        let want = expected(&xs, &spec, &frac, channel_of);
        let mut clipped = 0;
        for path in [QuantPath::Fused, QuantPath::Composed] {
            let x = tensor(xs.clone(), [a, c, b], &device).require_grad();
            // f = F + 0.2: rounding of the binary point is straight-through.
            let f0: Vec<f32> = frac.iter().map(|&v| v as f32 + 0.2).collect();
            let f = tensor(f0, [frac.len()], &device).require_grad();
            let xhat = quantize(x.clone(), f.clone(), &spec, path);
            let got = values(xhat.clone());
            let grads = (xhat * tensor(w.clone(), [a, c, b], &device))
                .sum()
                .backward();
            let gx = values(x.grad(&grads).unwrap());
            let gf = values(f.grad(&grads).unwrap());
            let mut want_f = vec![0f64; frac.len()];
            for i in 0..xs.len() {
                let what = format!("{path:?} {spec:?} x[{i}] = {}", xs[i]);
                assert_eq!(got[i].to_bits(), want[i].0.to_bits(), "{what}");
                assert!(khot.admits((want[i].0 as f64 * 2f64.powi(frac[channel_of(i)])) as i128));
                close(gx[i], w[i] as f64 * want[i].1, &what);
                want_f[channel_of(i)] += w[i] as f64 * want[i].2;
                clipped += (want[i].1 == 0.0) as usize;
            }
            for (ch, wf) in want_f.iter().enumerate() {
                close(gf[ch], *wf, &format!("{path:?} {spec:?} df[{ch}]"));
            }
        }
        assert!(clipped > 0, "{spec:?}: no clipped element was exercised");
    }
}

#[test]
fn unsupported_khot_specs_are_refused() {
    for (s, needle) in [
        (
            spec(8, Quant::Rnd, Overflow::Wrap, KHot::binary(2), false),
            "saturating",
        ),
        (
            spec(25, Quant::Rnd, Overflow::Sat, KHot::binary(2), false),
            "at most 24",
        ),
        (
            spec(8, Quant::Rnd, Overflow::Sat, KHot::binary(0), false),
            "K ≥ 1",
        ),
    ] {
        let e = s.validate().unwrap_err().to_string();
        assert!(e.contains(needle), "`{e}` lacks `{needle}`");
    }
    let q = QuantConfig {
        weight_khot: Some(KHot::binary(2)),
        overflow: Overflow::Wrap,
        ..QuantConfig::default()
    };
    assert!(q.validate().unwrap_err().to_string().contains("saturating"));
    // The config reads from and writes to JSON with the new fields, and without them.
    let q = QuantConfig {
        weight_khot: Some(KHot::binary(2)),
        bn_khot: Some(KHot::csd(1)),
        ..QuantConfig::default()
    };
    let json = serde_json::to_string(&q).unwrap();
    assert_eq!(serde_json::from_str::<QuantConfig>(&json).unwrap(), q);
    let plain: QuantConfig = serde_json::from_str("{\"bits\": 6}").unwrap();
    assert_eq!((plain.weight_khot, plain.bn_khot), (None, None));
}

#[test]
fn small_cnn_with_two_hot_weights_learns_and_exports_khot_codes() {
    let data = load_idx_dir(&embedded_fashion_mnist_dir()).unwrap();
    let device = Device::flex().autodiff();
    device.seed(7);
    let q = QuantConfig {
        bits: 6,
        weight_khot: Some(KHot::binary(2)),
        bn_khot: Some(KHot::csd(2)),
        ..QuantConfig::default()
    };
    let config = ModelConfig::Cnn {
        in_channels: 1,
        image: 28,
        channels: [8, 16],
        classes: 10,
    };
    let mut model = config.init(&q, &[1, 28, 28], &device).unwrap();
    let (mean, std) = FASHION_MNIST_NORM;
    let (x, _) = batch(&data.train, 0, 256, mean, std, &device);
    model.calibrate(x, Calibration::MaxAbs);
    let model = adam_steps(
        model,
        &data.train,
        100,
        64,
        2e-3,
        FASHION_MNIST_NORM,
        &device,
    );
    let (x, y) = batch(&data.test, 0, 1000, mean, std, &Device::flex());
    let acc = correct(model.valid().forward(x), &y) as f64 / y.len() as f64;
    println!("small CNN, 6-bit QAT with 2-hot weights and 2-digit CSD BN scales, 100 steps: test accuracy {acc:.3}");
    assert!(acc > 0.5, "accuracy {acc} (chance is 0.1)");

    let ir = export(&model, "khot_cnn").unwrap();
    let mut declared = 0;
    for layer in &ir.layers {
        let codes = match &layer.op {
            Op::Dense { weight, .. } | Op::Conv2d { weight, .. } => weight,
            Op::BatchNorm { scale, .. } => scale,
            _ => continue,
        };
        let k = codes.khot.expect("K-hot constraint recorded in the IR");
        assert!(
            codes.codes.iter().all(|&c| k.admits(c as i128)),
            "{}",
            layer.name
        );
        declared += 1;
    }
    assert!(declared >= 5, "only {declared} constrained tensors");
    let cost = qfx_hls::cost::estimate(&ir).unwrap();
    let full: u64 = cost
        .layers
        .iter()
        .filter(|l| l.kind == "conv2d" || l.kind == "dense" || l.kind == "batch_norm")
        .map(|l| l.dsp_mults + l.lut_mults)
        .sum();
    assert_eq!(full, 0, "{cost}");
    println!("{cost}");
}
