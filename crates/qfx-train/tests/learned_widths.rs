//! Learned word widths (`quant.widths = "learned"`): the quantizer against fixed-width ones,
//! its gradients, the export (formats, pruned channels, accumulators that cannot overflow, the
//! integer engine bit for bit), the differentiable cost against `qfx report`'s count, and the
//! budget controller.

mod common;

use std::f64::consts::LN_2;

use burn::tensor::{Device, Tensor, TensorData};
use common::{adam_steps, batch, engine_vs_model};
use qfx_data::{embedded_fashion_mnist_dir, load_idx_dir};
use qfx_fixed::{Overflow, Quant};
use qfx_train::cost::{model_cost, Controller, CostConfig, CostKind, Measured};
use qfx_train::export::export;
use qfx_train::graph::Layer;
use qfx_train::layers::{QuantConfig, Widths};
use qfx_train::models::{Model, ModelConfig};
use qfx_train::quant::{Granularity, QuantSpec, WidthRange};
use qfx_train::train::FASHION_MNIST_NORM;
use qfx_train::{Calibration, Quantizer};

fn values(t: Tensor<2>) -> Vec<f32> {
    t.into_data().convert::<f32>().try_to_vec::<f32>().unwrap()
}

/// Inputs around and beyond every channel's range, grid points and midpoints included.
fn inputs(rows: usize, channels: usize, device: &Device) -> Tensor<2> {
    let v: Vec<f32> = (0..rows * channels)
        .map(|i| {
            let k = (i * 7919 % 613) as f32;
            (k - 306.0) / 16.0 + if i % 5 == 0 { 0.03125 } else { 0.0 }
        })
        .collect();
    Tensor::from_data(TensorData::new(v, [rows, channels]), device)
}

fn spec(signed: bool, quant: Quant, overflow: Overflow, learned: bool) -> QuantSpec {
    QuantSpec {
        width: 6,
        signed,
        quant,
        overflow,
        sat_bits: 0,
        granularity: Granularity::PerChannel { axis: 1 },
        khot: None,
        learned_width: learned.then_some(WidthRange { min: 0, max: 12 }),
    }
}

/// A learned width of W with F fractional bits computes exactly what the fixed-width quantizer
/// of `ap_fixed<W, W − F>` computes, for every channel's own W (0: all zeros).
#[test]
fn a_learned_width_quantizes_as_the_fixed_width_format() {
    let device = Device::flex();
    let widths = [0u32, 1, 2, 3, 5, 8, 12];
    let fracs = [2i32, 0, 1, 3, -1, 4, 6];
    let x = inputs(40, widths.len(), &device);
    for signed in [true, false] {
        for overflow in [Overflow::Sat, Overflow::SatSym] {
            for quant in [Quant::RndConv, Quant::Trn, Quant::Rnd, Quant::RndZero] {
                let mut q = Quantizer::new(
                    spec(signed, quant, overflow, true),
                    widths.len(),
                    0,
                    &device,
                );
                q.set_frac_bits(&fracs);
                q.set_widths(&widths).unwrap();
                assert_eq!(q.widths(), widths.to_vec());
                let got = values(q.forward(x.clone()));
                for (c, (&w, &f)) in widths.iter().zip(&fracs).enumerate() {
                    let column: Vec<f32> = values(x.clone())
                        .iter()
                        .skip(c)
                        .step_by(widths.len())
                        .copied()
                        .collect();
                    let want: Vec<f32> = if w == 0 {
                        vec![0.0; column.len()]
                    } else {
                        let fixed = QuantSpec {
                            width: w,
                            granularity: Granularity::PerTensor,
                            learned_width: None,
                            ..spec(signed, quant, overflow, false)
                        };
                        let mut fq = Quantizer::new(fixed, 1, f, &device);
                        fq.set_frac_bits(&[f]);
                        let t = Tensor::<1>::from_data(
                            TensorData::new(column.clone(), [column.len()]),
                            &device,
                        );
                        fq.forward(t)
                            .into_data()
                            .convert::<f32>()
                            .try_to_vec::<f32>()
                            .unwrap()
                    };
                    let got_c: Vec<f32> =
                        got.iter().skip(c).step_by(widths.len()).copied().collect();
                    assert_eq!(
                        got_c, want,
                        "W = {w}, F = {f}, signed {signed}, {overflow:?}, {quant:?}"
                    );
                }
            }
        }
    }
}

/// Gradients: x straight through in range and 0 at a clip; W: ln2·x̂ at a clip, 0 in range; F
/// at fixed W: the rounding residual ln2·(x − x̂) in range.
#[test]
fn learned_width_gradients() {
    let device = Device::flex().autodiff();
    let mut q = Quantizer::new(
        spec(true, Quant::RndConv, Overflow::Sat, true),
        1,
        2,
        &device,
    );
    q.point_lr_scale = 1.0;
    q.set_frac_bits(&[2]);
    q.set_widths(&[4]).unwrap(); // ap_fixed<4, 2>: [−2, 1.75] in steps of 0.25
    let xs = [0.3f32, -0.6, 1.7, 5.0, -9.0, 1.75];
    let x =
        Tensor::<2>::from_data(TensorData::new(xs.to_vec(), [xs.len(), 1]), &device).require_grad();
    let y = q.forward(x.clone());
    let yv = values(y.clone());
    assert_eq!(yv, vec![0.25, -0.5, 1.75, 1.75, -2.0, 1.75]);
    // Distinct weights per element, so no two contributions cancel.
    let k = [1.0f32, 2.0, 3.0, 4.0, 5.0, 6.0];
    let kt = Tensor::<2>::from_data(TensorData::new(k.to_vec(), [k.len(), 1]), &device);
    let grads = (y * kt).sum().backward();
    let gx = values(x.grad(&grads).unwrap());
    assert_eq!(gx, vec![1.0, 2.0, 3.0, 0.0, 0.0, 6.0]);
    let scalar =
        |t: Tensor<1>| t.into_data().convert::<f32>().try_to_vec::<f32>().unwrap()[0] as f64;
    let gw = scalar(q.w.as_ref().unwrap().val().grad(&grads).unwrap());
    // Clipped: 5.0 → 1.75 (top bound 2^(W−F−1) − 2^−F: ∂/∂W = ln2·2) and −9 → −2 (bottom
    // bound −2^(W−F−1): ∂/∂W = −ln2·2 = ln2·x̂).
    let want_w = 4.0 * LN_2 * 2.0 - 5.0 * LN_2 * 2.0;
    assert!((gw - want_w).abs() < 1e-5, "∂/∂W = {gw}, want {want_w}");
    let gf = scalar(q.f.val().grad(&grads).unwrap());
    // In range: ln2·(x − x̂); at the clips the bounds move with F at fixed W.
    let residual: f64 = [
        (1.0, 0.3, 0.25),
        (2.0, -0.6, -0.5),
        (3.0, 1.7, 1.75),
        (6.0, 1.75, 1.75),
    ]
    .iter()
    .map(|&(k, x, h): &(f64, f64, f64)| k * LN_2 * (x - h))
    .sum();
    let top = 4.0 * (-LN_2 * 2.0 + LN_2 * 0.25);
    let bottom = 5.0 * LN_2 * 2.0;
    let want_f = residual + top + bottom;
    assert!((gf - want_f).abs() < 1e-4, "∂/∂F = {gf}, want {want_f}");
}

fn first_conv(model: &Model) -> &qfx_train::layers::QConv2d {
    let conv = model.layers.iter().find_map(|l| match l {
        Layer::Conv2d(c) => Some(c),
        _ => None,
    });
    conv.expect("a convolution")
}

fn cnn(bits: u32, widths: Widths, device: &Device) -> Model {
    let q = QuantConfig {
        bits,
        widths,
        ..QuantConfig::default()
    };
    let config = ModelConfig::Cnn {
        in_channels: 1,
        image: 28,
        channels: [8, 16],
        classes: 10,
    };
    config.init(&q, &[1, 28, 28], device).unwrap()
}

/// Learned widths spread over the channels (pruned ones included) export to the formats the
/// quantizers hold, with accumulators the range analysis proves cannot overflow, and the
/// integer engine reproduces the trained model's logits bit for bit.
#[test]
fn learned_widths_export_and_run_bit_for_bit() {
    let data = load_idx_dir(&embedded_fashion_mnist_dir()).unwrap();
    let device = Device::flex().autodiff();
    device.seed(5);
    let mut model = cnn(5, Widths::Learned, &device);
    let (x, _) = batch(
        &data.train,
        0,
        256,
        FASHION_MNIST_NORM.0,
        FASHION_MNIST_NORM.1,
        &device,
    );
    for layer in model.layers.iter_mut() {
        if let Layer::Conv2d(c) = layer {
            let n = c.wq.widths().len();
            let w: Vec<u32> = (0..n).map(|i| [0, 2, 3, 4, 6, 7][i % 6]).collect();
            c.wq.set_widths(&w).unwrap();
        }
    }
    model.calibrate(x, Calibration::MaxAbs);
    let model = adam_steps(
        model,
        &data.train,
        10,
        64,
        2e-3,
        FASHION_MNIST_NORM,
        &device,
    );
    let ir = export(&model, "cnn").unwrap();

    // Formats: each weight channel's width is the quantizer's (a pruned one: 1 bit, all zeros).
    let conv = first_conv(&model);
    let widths = conv.wq.widths();
    let qfx_ir::Op::Conv2d { weight, .. } = &ir.layers[1].op else {
        panic!("conv first")
    };
    let per = weight.codes.len() / widths.len();
    for (c, &w) in widths.iter().enumerate() {
        assert_eq!(weight.formats[c].width(), w.max(1));
        if w == 0 {
            assert!(weight.codes[c * per..(c + 1) * per].iter().all(|&v| v == 0));
        }
    }
    let report = qfx_engine::analyze(&ir).unwrap();
    for l in &report.layers {
        if let Some(acc) = &l.accumulator {
            assert!(
                !acc.can_overflow(),
                "{}: accumulator can overflow by {} bits",
                l.name,
                acc.short_bits
            );
        }
    }

    let (x, _) = batch(
        &data.test,
        0,
        60,
        FASHION_MNIST_NORM.0,
        FASHION_MNIST_NORM.1,
        &Device::flex(),
    );
    assert_eq!(engine_vs_model(&model, &ir, x), (60, 0));
}

/// EBOPs as the loss differentiates it equal `qfx report`'s bit operations of the exported
/// model; both costs have a gradient for every learned width and none for fixed ones.
#[test]
fn the_differentiable_cost_counts_what_the_report_counts() {
    let device = Device::flex().autodiff();
    device.seed(2);
    let cost_model = qfx_hls::cost::CostModel::default();
    for widths in [Widths::Fixed, Widths::Learned] {
        let mut model = cnn(4, widths, &device);
        let x = Tensor::<4>::random(
            [8, 1, 28, 28],
            burn::tensor::Distribution::Normal(0.0, 1.0),
            &device,
        );
        model.calibrate(x, Calibration::MaxAbs);
        let ebops = model_cost(&model, CostKind::Ebops, &cost_model);
        let exact = qfx_hls::cost::estimate(&export(&model, "cnn").unwrap()).unwrap();
        assert_eq!(
            ebops.clone().into_scalar::<f32>() as u64,
            exact.bops(),
            "{widths:?}"
        );
        let conv = first_conv(&model);
        match widths {
            Widths::Fixed => assert!(conv.wq.w.is_none()),
            Widths::Learned => {
                let grads = model_cost(&model, CostKind::Lut, &cost_model).backward();
                let g = conv.wq.w.as_ref().unwrap().val().grad(&grads).unwrap();
                let g: Vec<f32> = g.into_data().convert::<f32>().try_to_vec::<f32>().unwrap();
                assert!(
                    g.iter().all(|&v| v > 0.0),
                    "a wider weight costs more: {g:?}"
                );
            }
        }
    }
}

/// The controller raises β above the budget, lowers it below, bounds it, and does nothing
/// without a budget.
#[test]
fn the_controller_steers_beta_toward_the_budget() {
    let budget = CostConfig {
        budget_lut: Some(1000.0),
        ..CostConfig::default()
    };
    let at = |lut| Measured {
        lut,
        dsp: 0,
        bops: 0,
    };
    let mut c = Controller::start(&budget, 5.0);
    assert_eq!(c.beta, 1.0);
    c.update(&budget, &at(1500));
    assert!(c.beta > 1.0);
    let high = c.beta;
    for _ in 0..3 {
        c.update(&budget, &at(500));
    }
    assert!(c.beta < high && c.beta < 1.0, "β = {}", c.beta);
    for _ in 0..10_000 {
        c.update(&budget, &at(1_000_000));
    }
    assert!(c.beta.is_finite() && c.beta <= 30f64.exp());
    assert_eq!(Controller::error(&budget, &at(1_000_000)), 1.0);
    let dsp = CostConfig {
        budget_dsp: Some(0.0),
        ..budget.clone()
    };
    assert_eq!(
        Controller::error(
            &dsp,
            &Measured {
                lut: 0,
                dsp: 2,
                bops: 0
            }
        ),
        1.0
    );
    // Within the budget the cost leaves the loss (see `Controller::weight`).
    let mut under = Controller::start(&budget, 5.0);
    assert_eq!(under.weight(), 1.0 / 5.0);
    under.update(&budget, &at(900));
    assert_eq!(under.weight(), 0.0);
    under.update(&budget, &at(1100));
    assert!(under.weight() > 0.0);
    let none = CostConfig {
        beta: Some(0.5),
        ..CostConfig::default()
    };
    let mut fixed = Controller::start(&none, 5.0);
    fixed.update(&none, &at(1_000_000));
    assert_eq!(fixed.beta, 0.5);
}

/// Settings learned widths cannot honour are refused with the reason.
#[test]
fn impossible_width_settings_are_refused() {
    let learned = QuantConfig {
        widths: Widths::Learned,
        ..QuantConfig::default()
    };
    let cases: Vec<(QuantConfig, &str)> = vec![
        (
            QuantConfig {
                overflow: Overflow::Wrap,
                ..learned.clone()
            },
            "overflow mode",
        ),
        (
            QuantConfig {
                acc_bits: Some(20),
                ..learned.clone()
            },
            "acc_bits",
        ),
        (
            QuantConfig {
                learn_binary_points: false,
                ..learned.clone()
            },
            "learned binary points",
        ),
        (
            QuantConfig {
                act_width_range: [0, 8],
                ..learned.clone()
            },
            "at least 1 bit",
        ),
        (
            QuantConfig {
                weight_width_range: [0, 6],
                ..learned.clone()
            },
            "must hold the starting width",
        ),
        (
            QuantConfig {
                weight_width_range: [0, 30],
                ..learned.clone()
            },
            "within 24 bits",
        ),
        (
            QuantConfig {
                weight_khot: Some(qfx_fixed::KHot::binary(2)),
                ..learned.clone()
            },
            "K-hot",
        ),
    ];
    for (q, want) in cases {
        let e = q.validate().unwrap_err().to_string();
        assert!(e.contains(want), "{e} (want `{want}`)");
    }
    learned.validate().unwrap();
    for (cost, want) in [
        (
            CostConfig {
                budget_lut: Some(f64::NAN),
                ..CostConfig::default()
            },
            "budget_lut",
        ),
        (
            CostConfig {
                beta: Some(-1.0),
                ..CostConfig::default()
            },
            "beta",
        ),
        (
            CostConfig {
                budget_lut: Some(10.0),
                beta: Some(0.0),
                ..CostConfig::default()
            },
            "cannot be steered",
        ),
        (
            CostConfig {
                every_steps: Some(0),
                ..CostConfig::default()
            },
            "every_steps",
        ),
    ] {
        let e = cost.validate().unwrap_err().to_string();
        assert!(e.contains(want), "{e} (want `{want}`)");
    }
}

/// The fused Flex kernel and the composed form (what other backends run) give the same values
/// and the same gradients for x, F and W, pruned and 1-bit channels included.
#[test]
fn fused_and_composed_learned_widths_agree() {
    use qfx_train::quant::QuantPath;
    let device = Device::flex().autodiff();
    let widths = [0u32, 1, 2, 3, 5, 8, 12];
    let fracs = [2i32, 0, 1, 3, -1, 4, 6];
    for signed in [true, false] {
        for overflow in [Overflow::Sat, Overflow::SatSym] {
            let run = |path: QuantPath| {
                let mut q = Quantizer::new(
                    spec(signed, Quant::Rnd, overflow, true),
                    widths.len(),
                    0,
                    &device,
                );
                q.path = path;
                q.set_frac_bits(&fracs);
                q.set_widths(&widths).unwrap();
                let x = inputs(50, widths.len(), &device).require_grad();
                let k = inputs(50, widths.len(), &device).detach() * 0.1 + 1.0;
                let y = q.forward(x.clone());
                let grads = (y.clone() * k).sum().backward();
                let flat =
                    |t: Tensor<1>| t.into_data().convert::<f32>().try_to_vec::<f32>().unwrap();
                (
                    values(y),
                    values(x.grad(&grads).unwrap()),
                    flat(q.f.val().grad(&grads).unwrap()),
                    flat(q.w.as_ref().unwrap().val().grad(&grads).unwrap()),
                )
            };
            let (fused, composed) = (run(QuantPath::Fused), run(QuantPath::Composed));
            let case = format!("signed {signed}, {overflow:?}");
            assert_eq!(fused.0, composed.0, "values, {case}");
            assert_eq!(fused.1, composed.1, "∂/∂x, {case}");
            for (what, a, b) in [("F", &fused.2, &composed.2), ("W", &fused.3, &composed.3)] {
                for (c, (a, b)) in a.iter().zip(b).enumerate() {
                    assert!(
                        (a - b).abs() <= 1e-4 * (1.0 + b.abs()),
                        "∂/∂{what} of channel {c}: fused {a}, composed {b}, {case}"
                    );
                }
            }
        }
    }
}
