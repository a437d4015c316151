//! The float emulation (what an f32 fake-quantization framework computes) against the exact
//! engine: identical while every value fits in 24-bit codes, different with a wide accumulator.

mod common;

use common::{fmt, random_input, Rng};
use qfx_engine::{float_forward, Engine};
use qfx_fixed::Format;
use qfx_ir::{AccumulationOrder, Codes, Layer, Model, Op, INPUT, IR_VERSION};
use qfx_testkit::layer;

fn codes(rng: &mut Rng, shape: Vec<usize>, f: &str) -> Codes {
    let f = fmt(f);
    let n = shape.iter().product();
    Codes::new(shape, None, vec![f], (0..n).map(|_| rng.code(f)).collect())
}

/// Conv (padding 1) → BatchNorm → residual Add → ReLU → max pool → shortcut → global average
/// pool → dense, with 8-bit activations and the given accumulator.
fn cnn(rng: &mut Rng, acc: &str) -> Model {
    let act = "ap_fixed<8,3,AP_RND_CONV,AP_SAT>";
    let conv = Op::Conv2d {
        weight: codes(rng, vec![4, 2, 3, 3], "ap_fixed<6,1>"),
        bias: Some(codes(rng, vec![4], "ap_fixed<8,3>")),
        stride: 1.into(),
        padding: 1.into(),
        dilation: 1.into(),
        groups: 1,
        accumulator: vec![fmt(acc)],
        order: AccumulationOrder::default(),
    };
    let bn = Op::BatchNorm {
        scale: codes(rng, vec![4], "ap_fixed<8,2>"),
        shift: codes(rng, vec![4], "ap_fixed<8,3>"),
    };
    let gap = Op::GlobalAvgPool {
        reciprocal: codes(rng, vec![1], "ap_ufixed<8,-2>"),
    };
    let dense = Op::Dense {
        weight: codes(rng, vec![6, 3], "ap_fixed<6,1>"),
        bias: Some(codes(rng, vec![3], "ap_fixed<8,3>")),
        accumulator: vec![fmt(acc)],
        order: AccumulationOrder::default(),
    };
    let model = Model {
        version: IR_VERSION,
        name: "cnn".into(),
        input_shape: vec![2, 6, 6],
        preprocess: None,
        layers: vec![
            layer("q", &[INPUT], Op::Quantize, act),
            layer("conv", &["q"], conv, act),
            layer("bn", &["conv"], bn, act),
            layer("add", &["bn", "conv"], Op::Add, act),
            layer(
                "relu",
                &["add"],
                Op::Relu { clip: Some(3.0) },
                "ap_ufixed<8,2,AP_RND,AP_SAT>",
            ),
            layer(
                "pool",
                &["relu"],
                Op::MaxPool2d {
                    kernel: 2.into(),
                    stride: None,
                },
                "ap_ufixed<8,2,AP_RND,AP_SAT>",
            ),
            layer(
                "short",
                &["pool"],
                Op::Shortcut {
                    stride: 2,
                    pad_channels: 2,
                },
                "ap_ufixed<8,2,AP_RND,AP_SAT>",
            ),
            layer("gap", &["short"], gap, act),
            layer("fc", &["gap"], dense, "ap_fixed<12,5,AP_RND,AP_SAT>"),
        ],
    };
    model.validate().unwrap();
    model
}

#[track_caller]
fn agrees(acc: &str) {
    let mut rng = Rng::seeded(5);
    for _ in 0..30 {
        let model = cnn(&mut rng, acc);
        let engine = Engine::new(&model).unwrap();
        for _ in 0..10 {
            let x = random_input(&mut rng, model.layers[0].output, engine.input_len());
            let exact = engine.run(&x).unwrap().output.values();
            let float: Vec<f64> = float_forward(&model, &x)
                .unwrap()
                .into_iter()
                .map(f64::from)
                .collect();
            assert_eq!(exact, float, "{acc}");
        }
    }
}

#[test]
fn float_emulation_equals_engine_within_24_bits() {
    // Products have F = 5 + 5 = 10. A wide accumulator never overflows; a narrow wrapping one
    // does, but wrapping is modular, so the end-of-sum cast equals the step-by-step one.
    agrees("ap_fixed<22,12>");
    agrees("ap_fixed<12,2>");
    agrees("ap_fixed<24,14,AP_TRN,AP_SAT>");
}

/// The operations of IR version 3 in float: a grouped dilated 1-D convolution, hard tanh, 1-D
/// max pooling, a reshape into a map, a depthwise strided convolution, average pooling, hard
/// sigmoid, a product, a concatenation, a table lookup, a leaky ReLU and global pooling. With
/// narrow formats and exact accumulators every `f32` value is exact, so the emulation equals
/// the engine value for value.
#[test]
fn float_emulation_of_v3_operations_equals_engine() {
    use qfx_ir::{Padding, Pair};
    let mut rng = Rng::seeded(12);
    let a = "ap_fixed<8,3,AP_RND_CONV,AP_SAT>";
    let one = |rng: &mut Rng, f: &str| codes(rng, vec![1], f);
    let conv1d = Op::Conv1d {
        weight: codes(&mut rng, vec![4, 1, 3], "ap_fixed<6,1>"),
        bias: Some(codes(&mut rng, vec![4], "ap_fixed<8,3>")),
        stride: 1,
        padding: [2, 2],
        dilation: 2,
        groups: 2,
        accumulator: vec![fmt("ap_fixed<20,10>")],
        order: AccumulationOrder::default(),
    };
    let conv2d = Op::Conv2d {
        weight: codes(&mut rng, vec![4, 1, 2, 3], "ap_fixed<6,1>"),
        bias: None,
        stride: Pair::Each([1, 2]),
        padding: Padding::Sides([0, 1, 1, 0]),
        dilation: 1.into(),
        groups: 4,
        accumulator: vec![fmt("ap_fixed<20,10>")],
        order: AccumulationOrder::default(),
    };
    let f = fmt(a);
    let (lo, hi) = f.assignable_range();
    let table = Codes::new(
        vec![9],
        None,
        vec![f],
        (0..9)
            .map(|_| (rng.code(f) as i128).clamp(lo, hi) as i64)
            .collect(),
    );
    let layers = vec![
        layer("q", &[INPUT], Op::Quantize, a),
        layer("c1", &["q"], conv1d, a),
        layer(
            "ht",
            &["c1"],
            Op::HardTanh {
                min: -2.0,
                max: 1.5,
            },
            a,
        ),
        layer(
            "mp",
            &["ht"],
            Op::MaxPool1d {
                kernel: 2,
                stride: Some(1),
            },
            a,
        ),
        layer(
            "map",
            &["mp"],
            Op::Reshape {
                shape: vec![4, 3, 3],
            },
            a,
        ),
        layer("dw", &["map"], conv2d, a),
        layer(
            "ap",
            &["dw"],
            Op::AvgPool2d {
                kernel: Pair::Each([2, 1]),
                stride: None,
                reciprocal: one(&mut rng, "ap_ufixed<8,0>"),
            },
            a,
        ),
        layer(
            "hs",
            &["ap"],
            Op::HardSigmoid {
                alpha: one(&mut rng, "ap_fixed<6,1>"),
                beta: one(&mut rng, "ap_fixed<6,1>"),
            },
            a,
        ),
        layer("mul", &["ap", "hs"], Op::Multiply, a),
        layer("cat", &["mul", "hs"], Op::Concat, a),
        layer(
            "lut",
            &["cat"],
            Op::Lookup {
                function: "test".into(),
                table,
                shift: 4,
                offset: -4,
            },
            a,
        ),
        layer(
            "leaky",
            &["lut"],
            Op::Prelu {
                slope: one(&mut rng, "ap_fixed<6,0>"),
            },
            a,
        ),
        layer("gmp", &["leaky"], Op::GlobalMaxPool, a),
        layer(
            "gap",
            &["leaky"],
            Op::GlobalAvgPool {
                reciprocal: one(&mut rng, "ap_ufixed<8,0>"),
            },
            a,
        ),
        layer("f1", &["mp"], Op::Flatten, a),
        layer("f2", &["cat"], Op::Flatten, a),
        layer("f3", &["leaky"], Op::Flatten, a),
        layer("out", &["f1", "f2", "f3", "gmp", "gap"], Op::Concat, a),
    ];
    let model = Model {
        version: IR_VERSION,
        name: "v3".into(),
        input_shape: vec![2, 10],
        preprocess: None,
        layers,
    };
    let engine = Engine::new(&model).unwrap();
    assert_eq!(engine.run(&[0.0; 20]).unwrap().output.shape, [68]);
    let mut distinct = std::collections::BTreeSet::new();
    for _ in 0..300 {
        let x = random_input(&mut rng, model.layers[0].output, 20);
        let exact = engine.run(&x).unwrap().output.values();
        let float: Vec<f64> = float_forward(&model, &x)
            .unwrap()
            .into_iter()
            .map(f64::from)
            .collect();
        assert_eq!(exact, float, "input {x:?}");
        distinct.extend(exact.iter().map(|v| v.to_bits()));
    }
    assert!(
        distinct.len() > 10,
        "only {} distinct outputs",
        distinct.len()
    );
}

/// A 40-bit accumulator of 16-bit × 16-bit products: the f32 sum rounds, the engine does not.
#[test]
fn float_emulation_differs_with_a_wide_accumulator() {
    let mut rng = Rng::seeded(8);
    let x: Format = fmt("ap_fixed<16,6>");
    let acc = "ap_fixed<40,15>";
    let model = Model {
        version: IR_VERSION,
        name: "wide".into(),
        input_shape: vec![32],
        preprocess: None,
        layers: vec![
            Layer {
                name: "q".into(),
                inputs: vec![INPUT.into()],
                op: Op::Quantize,
                output: x,
            },
            layer(
                "d",
                &["q"],
                Op::Dense {
                    weight: codes(&mut rng, vec![32, 4], "ap_fixed<16,1>"),
                    bias: None,
                    accumulator: vec![fmt(acc)],
                    order: AccumulationOrder::default(),
                },
                acc,
            ),
        ],
    };
    let engine = Engine::new(&model).unwrap();
    let (mut differ, mut total) = (0, 0);
    for _ in 0..50 {
        let input = random_input(&mut rng, x, 32);
        let exact = engine.run(&input).unwrap().output.values();
        let float = float_forward(&model, &input).unwrap();
        for (e, f) in exact.iter().zip(&float) {
            total += 1;
            differ += (*e != *f as f64) as usize;
        }
    }
    println!("f32 emulation differs from the engine on {differ} of {total} outputs");
    assert!(differ * 2 > total, "{differ} of {total}");
}

#[test]
fn bad_input_is_an_error() {
    let model = cnn(&mut Rng::seeded(1), "ap_fixed<22,12>");
    assert!(float_forward(&model, &[0.0; 3]).is_err());
    assert!(float_forward(&model, &[f32::NAN; 72]).is_err());
}
