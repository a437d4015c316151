//! Export to the IR: valid documents for every model, with integer codes that are exactly the
//! values the model computes with.

use burn::tensor::{Device, Distribution, Tensor};
use qfx_ir::Op;
use qfx_train::export::export;
use qfx_train::graph::Layer;
use qfx_train::layers::QuantConfig;
use qfx_train::models::{Model, ModelConfig, Shortcut};
use qfx_train::Calibration;

fn calibrated(config: &ModelConfig, shape: [usize; 3]) -> Model {
    let device = Device::flex();
    let mut model = config
        .init(
            &QuantConfig {
                bits: 6,
                ..QuantConfig::default()
            },
            &shape,
            &device,
        )
        .unwrap();
    let [c, h, w] = shape;
    model.calibrate(
        Tensor::<4>::random([8, c, h, w], Distribution::Normal(0.0, 1.0), &device),
        Calibration::MaxAbs,
    );
    model
}

#[test]
fn every_model_exports_a_valid_ir() {
    let cases = [
        (
            ModelConfig::Mlp {
                inputs: 784,
                hidden: vec![32, 16],
                classes: 10,
            },
            [1, 28, 28],
            7,
        ),
        (ModelConfig::small_cnn(), [1, 28, 28], 11),
        (ModelConfig::resnet20(), [3, 32, 32], 0),
        (
            ModelConfig::Resnet {
                in_channels: 3,
                widths: [8, 16, 32],
                blocks_per_stage: 1,
                classes: 10,
                shortcut: Shortcut::B,
            },
            [3, 32, 32],
            0,
        ),
    ];
    for (config, shape, expected_layers) in cases {
        let model = calibrated(&config, shape);
        let ir = export(&model, "test").unwrap();
        assert_eq!(ir.resolve().unwrap().output().shape, [10], "{config:?}");
        if expected_layers > 0 {
            assert_eq!(ir.layers.len(), expected_layers, "{config:?}");
        }
        // The JSON document reads back identically.
        assert_eq!(qfx_ir::Model::from_json(&ir.to_json()).unwrap(), ir);
    }
}

#[test]
fn resnet20_has_the_expected_structure() {
    let model = calibrated(&ModelConfig::resnet20(), [3, 32, 32]);
    let ir = export(&model, "resnet20").unwrap();
    let count = |f: fn(&Op) -> bool| ir.layers.iter().filter(|l| f(&l.op)).count();
    assert_eq!(count(|o| matches!(o, Op::Conv2d { .. })), 19);
    assert_eq!(count(|o| matches!(o, Op::Dense { .. })), 1);
    assert_eq!(count(|o| matches!(o, Op::BatchNorm { .. })), 19);
    assert_eq!(count(|o| matches!(o, Op::Add)), 9);
    assert_eq!(count(|o| matches!(o, Op::Shortcut { .. })), 2);
    // 8×8 pooling window: the reciprocal is exactly 2^-6.
    let Some(Op::GlobalAvgPool { reciprocal }) = ir
        .layers
        .iter()
        .map(|l| &l.op)
        .find(|o| matches!(o, Op::GlobalAvgPool { .. }))
    else {
        panic!()
    };
    assert_eq!(reciprocal.value(0).to_f64(), 1.0 / 64.0);
}

#[test]
fn weight_codes_are_the_trained_values() {
    let model = calibrated(&ModelConfig::small_cnn(), [1, 28, 28]);
    let Layer::Conv2d(conv) = &model.layers[1] else {
        unreachable!("layer 1 is the first convolution")
    };
    let ir = export(&model, "cnn").unwrap();
    let Op::Conv2d {
        weight,
        accumulator,
        ..
    } = &ir.layers[1].op
    else {
        panic!("layer 1 is the first conv")
    };
    let trained: Vec<f32> = conv
        .wq
        .forward(conv.weight.val())
        .into_data()
        .convert::<f32>()
        .try_to_vec::<f32>()
        .unwrap();
    for (i, w) in trained.iter().enumerate() {
        assert_eq!(weight.value(i).to_f64(), *w as f64, "weight {i}");
    }
    // Accumulator binary point: input F + weight F, per output channel.
    let fx = ir.layers[0].output.frac_bits();
    for (c, acc) in accumulator.iter().enumerate() {
        assert_eq!(acc.frac_bits(), fx + weight.formats[c].frac_bits());
    }
    // A float model cannot be exported.
    let float = ModelConfig::small_cnn()
        .init(&QuantConfig::float(), &[1, 28, 28], &Device::flex())
        .unwrap();
    assert!(export(&float, "f")
        .unwrap_err()
        .to_string()
        .contains("disabled quantizers"));
}

/// Models and formats come from a configuration file; unknown or misspelled keys are refused.
#[test]
fn models_are_built_from_a_config_file() {
    let json = r#"{
        "model": {"kind": "resnet", "in_channels": 3, "widths": [8, 16, 32], "blocks_per_stage": 2, "classes": 10, "shortcut": "b"},
        "quant": {"bits": 4, "weight_bits": 3, "act_quant": "AP_RND_CONV", "acc_overflow": "AP_WRAP", "per_channel_weights": false}
    }"#;
    #[derive(serde::Deserialize)]
    struct File {
        model: ModelConfig,
        quant: QuantConfig,
    }
    let file: File = serde_json::from_str(json).unwrap();
    assert_eq!(file.quant.weight_spec(0).width, 3);
    assert_eq!(file.quant.act_spec(true).width, 4);
    let model = file
        .model
        .init(&file.quant, &[3, 32, 32], &Device::flex())
        .unwrap();
    let convs = model
        .layers
        .iter()
        .filter(|l| matches!(l, Layer::Conv2d(_)))
        .count();
    // Stem, 6 blocks of two, and option-B projections where the shape changes (2).
    assert_eq!(convs, 1 + 6 * 2 + 2);

    let typo = r#"{"bits": 4, "weight_bit": 3}"#;
    let err = serde_json::from_str::<QuantConfig>(typo)
        .unwrap_err()
        .to_string();
    assert!(err.contains("unknown field `weight_bit`"), "{err}");
    let saturating_acc = QuantConfig {
        acc_overflow: qfx_fixed::Overflow::Sat,
        ..QuantConfig::default()
    };
    let err = ModelConfig::small_cnn()
        .init(&saturating_acc, &[1, 28, 28], &Device::flex())
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("acc_overflow AP_SAT is not supported yet"),
        "{err}"
    );
    let shrinking = ModelConfig::Resnet {
        in_channels: 3,
        widths: [32, 16, 8],
        blocks_per_stage: 1,
        classes: 10,
        shortcut: Shortcut::A,
    };
    let err = shrinking
        .init(&QuantConfig::default(), &[3, 32, 32], &Device::flex())
        .unwrap_err()
        .to_string();
    assert!(err.contains("non-decreasing"), "{err}");
    let too_wide = QuantConfig {
        acc_bits: Some(40),
        ..QuantConfig::default()
    };
    let err = ModelConfig::small_cnn()
        .init(&too_wide, &[1, 28, 28], &Device::flex())
        .unwrap_err()
        .to_string();
    assert!(err.contains("width W = 40"), "{err}");
}

/// Average pooling multiplies the exact window sum by the fixed-point reciprocal: a shift for
/// 2×2 windows, `1/9` rounded to 8 significant bits for 3×3.
#[test]
fn average_pooling_uses_the_fixed_point_reciprocal() {
    use qfx_train::layers::{reciprocal_fixed, QAvgPool2d};
    use qfx_train::QTensor;
    let device = Device::flex();
    let q = QuantConfig {
        bits: 8,
        act_bits: Some(16),
        ..QuantConfig::default()
    };
    let values: Vec<f32> = (0..36).map(|i| (i % 7) as f32 * 0.25).collect();
    let x = Tensor::<4>::from_data(
        burn::tensor::TensorData::new(values.clone(), [1, 1, 6, 6]),
        &device,
    );
    for k in [2usize, 3] {
        let mut pool = QAvgPool2d::new([k, k], [k, k], &q, &device);
        pool.out.set_frac_bits(&[10]);
        let got: Vec<f32> = pool
            .forward(QTensor::float(x.clone()))
            .value
            .into_data()
            .convert::<f32>()
            .try_to_vec::<f32>()
            .unwrap();
        let r = reciprocal_fixed(k * k, 16).unwrap().to_f64();
        if k == 2 {
            assert_eq!(r, 0.25);
        }
        for (o, g) in got.iter().enumerate() {
            let (oy, ox) = (o / (6 / k), o % (6 / k));
            let sum: f64 = (0..k * k)
                .map(|t| values[(oy * k + t / k) * 6 + ox * k + t % k] as f64)
                .sum();
            // The exact product (sum and reciprocal are short binary fractions), cast as HLS does.
            let want = qfx_fixed::Fixed::from_f64(sum * r, pool.out.spec.format(10).unwrap())
                .unwrap()
                .to_f64();
            assert_eq!(*g as f64, want, "k={k} output {o}");
        }
    }
}
