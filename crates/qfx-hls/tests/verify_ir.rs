//! Hand-built IRs through the whole path: emit the Vitis HLS project, compile its testbench with
//! g++ against the Xilinx headers, run it, and compare every output code with the integer
//! engine. Targets what trained models rarely hit: every layer kind (every operation of IR
//! version 3 included: general, grouped, depthwise and 1-D convolutions, windowed and global
//! pooling, hard activations, table lookups, products, concatenations, reshapes), per-channel
//! formats for weights, biases, BatchNorm constants and accumulators, every overflow mode (WRAP
//! with N, SAT_SYM, SAT_ZERO, WRAP_SM), rounding accumulators, narrow accumulators that
//! overflow, K-hot weights as shifts and adds, wide outputs, and hostile names.
//!
//! Without g++ or the headers these tests print SKIPPED, unless `QFX_REQUIRE_ORACLE=1`.

use std::path::{Path, PathBuf};

use qfx_fixed::KHot;
use qfx_hls::{emit, verify_with, ErrorKind, VerifyOptions, VerifyReport};
use qfx_ir::{AccumulationOrder, Codes, Model, Op, INPUT, IR_VERSION};

/// Random codes, uniform over each element's format.
use qfx_testkit::random_codes as codes;
use qfx_testkit::{fmt, layer, Rng};

/// Every layer kind, per-channel formats everywhere they are allowed, every overflow mode.
fn all_ops_model(names: &[&str; 12], model_name: &str) -> Model {
    let mut rng = Rng::star(0x9e37_79b9_7f4a_7c15);
    let a = "ap_fixed<8,3,AP_RND,AP_SAT>";
    let n = names;
    let layers = vec![
        layer(n[0], &[INPUT], Op::Quantize, a),
        layer(
            n[1],
            &[n[0]],
            Op::Conv2d {
                weight: codes(
                    &mut rng,
                    &[4, 2, 3, 3],
                    Some(0),
                    &[
                        "ap_fixed<6,1>",
                        "ap_fixed<5,0,AP_RND>",
                        "ap_ufixed<4,1>",
                        "ap_fixed<7,2>",
                    ],
                ),
                bias: Some(codes(
                    &mut rng,
                    &[4],
                    Some(0),
                    &[
                        "ap_fixed<8,3>",
                        "ap_fixed<6,2>",
                        "ap_fixed<10,5>",
                        "ap_fixed<8,1>",
                    ],
                )),
                stride: 1.into(),
                padding: 1.into(),
                dilation: 1.into(),
                groups: 1,
                accumulator: vec![
                    fmt("ap_fixed<9,3,AP_TRN,AP_WRAP>"),
                    fmt("ap_fixed<12,4,AP_RND,AP_SAT_SYM>"),
                    fmt("ap_fixed<9,3,AP_RND_CONV,AP_SAT_ZERO>"),
                    fmt("ap_fixed<11,4,AP_TRN,AP_WRAP,1>"),
                ],
                order: AccumulationOrder::BiasThenInputChannelMajor,
            },
            "ap_fixed<8,3,AP_RND,AP_SAT>",
        ),
        layer(
            n[2],
            &[n[1]],
            Op::BatchNorm {
                scale: codes(
                    &mut rng,
                    &[4],
                    Some(0),
                    &[
                        "ap_fixed<6,2>",
                        "ap_fixed<6,1>",
                        "ap_ufixed<5,2>",
                        "ap_fixed<6,2>",
                    ],
                ),
                shift: codes(&mut rng, &[4], None, &["ap_fixed<6,2>"]),
            },
            "ap_fixed<8,3,AP_RND_ZERO,AP_WRAP_SM>",
        ),
        layer(
            n[3],
            &[n[2]],
            Op::Relu { clip: Some(2.5) },
            "ap_ufixed<7,3,AP_RND_INF,AP_SAT>",
        ),
        layer(
            n[4],
            &[n[0]],
            Op::Shortcut {
                stride: 1,
                pad_channels: 2,
            },
            a,
        ),
        layer(
            n[5],
            &[n[3], n[4]],
            Op::Add,
            "ap_fixed<9,4,AP_RND_MIN_INF,AP_SAT>",
        ),
        layer(
            n[6],
            &[n[5]],
            Op::MaxPool2d {
                kernel: 2.into(),
                stride: None,
            },
            "ap_fixed<9,4,AP_RND_MIN_INF,AP_SAT>",
        ),
        layer(
            n[7],
            &[n[6]],
            Op::Conv2d {
                weight: codes(&mut rng, &[3, 4, 2, 2], None, &["ap_fixed<6,2>"]),
                bias: None,
                stride: 2.into(),
                padding: 1.into(),
                dilation: 1.into(),
                groups: 1,
                accumulator: vec![fmt("ap_fixed<10,4,AP_TRN_ZERO,AP_SAT>")],
                order: AccumulationOrder::BiasThenInputChannelMajor,
            },
            "ap_fixed<8,4,AP_RND,AP_WRAP,2>",
        ),
        layer(
            n[8],
            &[n[7]],
            Op::GlobalAvgPool {
                reciprocal: codes(&mut rng, &[1], None, &["ap_ufixed<8,0>"]),
            },
            "ap_fixed<10,4,AP_RND_CONV,AP_SAT>",
        ),
        layer(n[9], &[n[7]], Op::Flatten, "ap_fixed<8,4,AP_RND,AP_WRAP,2>"),
        layer(
            n[10],
            &[n[9]],
            Op::Dense {
                weight: codes(
                    &mut rng,
                    &[12, 3],
                    Some(1),
                    &["ap_fixed<6,1>", "ap_fixed<8,2,AP_RND>", "ap_fixed<6,1>"],
                ),
                bias: Some(codes(&mut rng, &[3], None, &["ap_fixed<8,3>"])),
                accumulator: vec![
                    fmt("ap_fixed<12,5,AP_RND,AP_SAT>"),
                    fmt("ap_fixed<9,3,AP_TRN,AP_WRAP>"),
                    fmt("ap_fixed<12,5,AP_RND,AP_SAT>"),
                ],
                order: AccumulationOrder::BiasThenInputChannelMajor,
            },
            "ap_fixed<10,4,AP_RND,AP_SAT>",
        ),
        layer(
            n[11],
            &[n[8], n[10]],
            Op::Add,
            "ap_fixed<12,5,AP_RND,AP_SAT>",
        ),
    ];
    let model = Model {
        version: IR_VERSION,
        name: model_name.to_string(),
        input_shape: vec![2, 6, 6],
        layers,
        preprocess: None,
    };
    model.validate().expect("valid test model");
    model
}

/// Flatten straight from the input, unsigned activations, no bias, wide accumulators and a
/// 40-bit output (two 32-bit words per code).
fn wide_mlp() -> Model {
    let mut rng = Rng::star(7);
    let layers = vec![
        layer(
            "flat",
            &[INPUT],
            Op::Flatten,
            "ap_fixed<16,4,AP_RND_CONV,AP_SAT>",
        ),
        layer(
            "fc1",
            &["flat"],
            Op::Dense {
                weight: codes(&mut rng, &[18, 8], None, &["ap_fixed<12,2>"]),
                bias: None,
                accumulator: vec![fmt("ap_fixed<40,14>")],
                order: AccumulationOrder::BiasThenInputChannelMajor,
            },
            "ap_fixed<20,8,AP_RND,AP_SAT>",
        ),
        layer(
            "relu",
            &["fc1"],
            Op::Relu { clip: None },
            "ap_ufixed<18,8,AP_RND>",
        ),
        layer(
            "fc2",
            &["relu"],
            Op::Dense {
                weight: codes(&mut rng, &[8, 4], None, &["ap_fixed<14,3>"]),
                bias: Some(codes(&mut rng, &[4], None, &["ap_fixed<20,10>"])),
                accumulator: vec![fmt("ap_fixed<48,20,AP_RND_ZERO,AP_SAT>")],
                order: AccumulationOrder::BiasThenInputChannelMajor,
            },
            "ap_fixed<40,20,AP_RND,AP_SAT>",
        ),
    ];
    let model = Model {
        version: IR_VERSION,
        name: "wide mlp".to_string(),
        input_shape: vec![2, 3, 3],
        layers,
        preprocess: None,
    };
    model.validate().expect("valid test model");
    model
}

const PLAIN_NAMES: [&str; 12] = [
    "q", "conv1", "bn1", "relu1", "short", "add1", "pool", "conv2", "gap", "flat", "fc", "sum",
];

/// Inputs that exercise rounding ties, saturation and small values.
fn inputs(model: &Model, n: usize, seed: u64) -> Vec<Vec<f32>> {
    let mut rng = Rng::star(seed);
    let len: usize = model.input_shape.iter().product();
    (0..n)
        .map(|s| {
            (0..len)
                .map(|_| match (s + rng.below(4) as usize) % 4 {
                    0 => rng.f32(8.0),
                    1 => rng.f32(1.0),
                    2 => (rng.below(512) as f32 - 256.0) / 64.0, // grid points and ties
                    _ => rng.f32(40.0),
                })
                .collect()
        })
        .collect()
}

/// A test's project directory, emptied.
fn project_dir(name: &str) -> PathBuf {
    let dir = project_path(name);
    let _ = std::fs::remove_dir_all(&dir);
    dir
}

fn project_path(name: &str) -> PathBuf {
    Path::new(env!("CARGO_TARGET_TMPDIR"))
        .join("qfx-hls")
        .join(name)
}

fn options() -> VerifyOptions {
    VerifyOptions {
        cache_dir: Path::new(env!("CARGO_TARGET_TMPDIR")).join("qfx-oracle"),
        ..VerifyOptions::default()
    }
}

fn required() -> bool {
    std::env::var("QFX_REQUIRE_ORACLE").is_ok_and(|v| v == "1")
}

/// Emits, compiles, runs and compares; `None` (after printing SKIPPED) without g++/headers.
#[track_caller]
fn check(model: &Model, dir: &str, n: usize, options: &VerifyOptions) -> Option<VerifyReport> {
    let dir = project_dir(dir);
    emit(model, &dir).expect("emit");
    let xs = inputs(model, n, 42);
    match verify_with(&dir, &xs, options) {
        Ok(report) => {
            println!("{}: {report}", model.name.escape_debug());
            assert_eq!(report.samples, n);
            assert_eq!(report.mismatches, 0, "{report}");
            Some(report)
        }
        Err(e) if matches!(e.kind, ErrorKind::NoCompiler | ErrorKind::Headers) && !required() => {
            println!("SKIPPED HLS C simulation check: {e}");
            None
        }
        Err(e) => panic!("verification failed: {e}"),
    }
}

#[test]
fn every_layer_kind_and_overflow_mode_matches_the_engine() {
    let model = all_ops_model(&PLAIN_NAMES, "all ops");
    let Some(report) = check(&model, "all-ops", 300, &options()) else {
        return;
    };
    // The narrow accumulators really overflow (conv1 wraps/saturates, conv2 saturates,
    // fc wraps), so the test exercises the overflow paths, not just the easy ones.
    let count = |name: &str| report.overflows.iter().find(|(l, _)| l == name).unwrap().1;
    for l in ["conv1", "conv2", "fc", "bn1"] {
        assert!(count(l) > 0, "{l}: no overflow events: {report}");
    }
}

#[test]
fn ap_int_constant_containers_match_too() {
    let model = all_ops_model(&PLAIN_NAMES, "ap_int roms");
    let opts = VerifyOptions {
        defines: vec!["QFX_AP_INT_ROMS".to_string()],
        ..options()
    };
    check(&model, "ap-int-roms", 200, &opts);
}

#[test]
fn wide_accumulators_and_outputs_match() {
    let Some(report) = check(&wide_mlp(), "wide-mlp", 250, &options()) else {
        return;
    };
    assert_eq!(report.values, 250 * 4);
}

/// `codes` made K-hot: each magnitude keeps its `k` highest ones (so it still fits its format).
/// Binary K-hot codes are K-hot in CSD too, whose non-adjacent form has negative digits (6 =
/// 8 − 2), so the CSD variant emits subtractions.
fn make_khot(codes: &mut Codes, khot: KHot, k: u32) {
    for c in &mut codes.codes {
        let mut m = c.unsigned_abs();
        while m.count_ones() > k {
            m &= m - 1; // clear the lowest one
        }
        *c = if *c < 0 { -(m as i64) } else { m as i64 };
    }
    codes.khot = Some(khot);
}

#[test]
fn khot_layers_become_shift_adds_and_match_the_engine() {
    let mut model = all_ops_model(&PLAIN_NAMES, "k-hot");
    for layer in &mut model.layers {
        match (&mut layer.op, layer.name.as_str()) {
            (Op::Conv2d { weight, .. }, "conv1") => make_khot(weight, KHot::binary(2), 2),
            (Op::BatchNorm { scale, .. }, _) => make_khot(scale, KHot::csd(2), 2),
            (Op::Conv2d { weight, .. }, _) => make_khot(weight, KHot::csd(1), 1),
            (Op::Dense { weight, .. }, _) => make_khot(weight, KHot::binary(3), 3),
            _ => {}
        }
    }
    model.validate().expect("K-hot model is valid");
    let Some(report) = check(&model, "k-hot", 300, &options()) else {
        return;
    };
    let count = |name: &str| report.overflows.iter().find(|(l, _)| l == name).unwrap().1;
    assert!(count("conv1") > 0 && count("fc") > 0, "{report}");
    // Every multiply of those layers is written as shifts and adds: no loop template remains.
    let top = std::fs::read_to_string(project_path("k-hot").join("firmware/model.cpp"))
        .expect("model.cpp");
    for layer in ["l1_conv1", "l2_bn1", "l7_conv2", "l10_fc"] {
        assert!(top.contains(&format!("{layer}_shift_add(")), "{layer}");
    }
    for template in ["qfx::dense<", "qfx::conv2d<", "qfx::batchnorm<"] {
        assert!(
            !top.contains(template),
            "`{template}` in the K-hot model.cpp"
        );
    }
    assert!(
        top.contains(" << ") && top.contains(" - ("),
        "no shifts or subtractions"
    );
    // The form synthesis compiles (exact-width ap_int codes instead of 64-bit integers).
    let opts = VerifyOptions {
        defines: vec!["QFX_AP_INT_CODES".to_string()],
        ..options()
    };
    check(&model, "k-hot-ap-int", 200, &opts);
}

/// Every operation of IR version 3 in one network: a depthwise convolution (rectangular kernel,
/// per-axis stride and dilation, asymmetric padding) and a grouped one, hard tanh, rectangular
/// max and average pooling with their own strides, hard sigmoid, a product, a three-way
/// concatenation, a table lookup, a leaky ReLU (one slope), global max and average pooling; the
/// input reshaped into a signal for a grouped dilated strided 1-D convolution, a plain one, 1-D
/// max and average pooling, a lookup with a left shift, global pooling of signals; the pieces
/// reshaped, flattened and concatenated into one output. Per-channel weight, bias and
/// accumulator formats; every quantization mode and every overflow mode (WRAP with N = 1 and 2,
/// WRAP_SM, SAT_SYM, SAT_ZERO), exact and rounding accumulators that overflow.
fn v3_model() -> Model {
    use qfx_ir::{Padding, Pair};
    let mut rng = Rng::star(0x5eed_0003);
    let accs = |fs: &[&str]| fs.iter().map(|f| fmt(f)).collect::<Vec<_>>();
    let a = "ap_fixed<8,3,AP_RND,AP_SAT>";
    let table = |rng: &mut Rng, n: usize, f: &str| {
        let mut t = codes(rng, &[n], None, &[f]);
        let (lo, _) = fmt(f).assignable_range();
        for c in &mut t.codes {
            *c = (*c).max(lo as i64);
        }
        t
    };
    let reciprocal = |rng: &mut Rng| codes(rng, &[1], None, &["ap_ufixed<8,0>"]);
    let dw = Op::Conv2d {
        weight: codes(
            &mut rng,
            &[4, 1, 3, 2],
            Some(0),
            &[
                "ap_fixed<6,1>",
                "ap_fixed<5,0,AP_RND>",
                "ap_ufixed<4,1>",
                "ap_fixed<7,2>",
            ],
        ),
        bias: Some(codes(
            &mut rng,
            &[4],
            Some(0),
            &[
                "ap_fixed<8,3>",
                "ap_fixed<6,2>",
                "ap_fixed<10,5>",
                "ap_fixed<8,1>",
            ],
        )),
        stride: Pair::Each([2, 1]),
        padding: Padding::Sides([1, 2, 0, 1]),
        dilation: Pair::Each([2, 1]),
        groups: 4,
        accumulator: accs(&[
            "ap_fixed<9,-1,AP_TRN,AP_WRAP>",
            "ap_fixed<12,4,AP_RND,AP_SAT_SYM>",
            "ap_fixed<9,2,AP_RND_CONV,AP_SAT_ZERO>",
            "ap_fixed<11,4,AP_TRN,AP_WRAP,1>",
        ]),
        order: AccumulationOrder::BiasThenInputChannelMajor,
    };
    let gc = Op::Conv2d {
        weight: codes(
            &mut rng,
            &[6, 2, 2, 3],
            Some(0),
            &[
                "ap_fixed<5,1>",
                "ap_fixed<5,1>",
                "ap_fixed<6,0,AP_RND_ZERO>",
                "ap_fixed<5,1>",
                "ap_ufixed<4,0>",
                "ap_fixed<5,1>",
            ],
        ),
        bias: None,
        stride: Pair::Both(1),
        padding: Padding::Sides([0, 1, 1, 1]),
        dilation: Pair::Each([1, 2]),
        groups: 2,
        accumulator: accs(&["ap_fixed<10,3,AP_TRN_ZERO,AP_SAT>"]),
        order: AccumulationOrder::BiasThenInputChannelMajor,
    };
    let c1 = Op::Conv1d {
        weight: codes(
            &mut rng,
            &[8, 2, 3],
            Some(0),
            &[
                "ap_fixed<6,1>",
                "ap_fixed<6,1>",
                "ap_fixed<6,2>",
                "ap_fixed<6,1>",
                "ap_fixed<5,1,AP_RND>",
                "ap_fixed<6,1>",
                "ap_fixed<6,1>",
                "ap_fixed<4,0>",
            ],
        ),
        bias: Some(codes(&mut rng, &[8], None, &["ap_fixed<8,2>"])),
        stride: 2,
        padding: [2, 1],
        dilation: 2,
        groups: 2,
        accumulator: accs(&[
            "ap_fixed<12,4,AP_RND_MIN_INF,AP_WRAP_SM>",
            "ap_fixed<10,2,AP_TRN,AP_WRAP,2>",
            "ap_fixed<11,3,AP_RND_INF,AP_SAT>",
            "ap_fixed<10,2,AP_TRN,AP_SAT_SYM>",
            "ap_fixed<11,3,AP_RND,AP_SAT_ZERO>",
            "ap_fixed<12,4,AP_TRN,AP_WRAP>",
            "ap_fixed<10,2,AP_RND_ZERO,AP_SAT>",
            "ap_fixed<11,3,AP_TRN,AP_WRAP>",
        ]),
        order: AccumulationOrder::BiasThenInputChannelMajor,
    };
    let c2 = Op::Conv1d {
        weight: codes(&mut rng, &[3, 8, 2], None, &["ap_fixed<6,1>"]),
        bias: None,
        stride: 1,
        padding: [0, 1],
        dilation: 1,
        groups: 1,
        accumulator: accs(&["ap_fixed<12,4,AP_RND_CONV,AP_SAT>"]),
        order: AccumulationOrder::BiasThenInputChannelMajor,
    };
    let lut_f = "ap_fixed<8,1,AP_TRN,AP_SAT>";
    let lut1_f = "ap_fixed<6,2,AP_RND,AP_SAT_SYM>";
    let layers = vec![
        layer("q", &[INPUT], Op::Quantize, a),
        layer("dw", &["q"], dw, "ap_fixed<8,3,AP_RND_CONV,AP_SAT>"),
        layer("gc", &["dw"], gc, "ap_fixed<8,3,AP_RND,AP_SAT>"),
        layer(
            "ht",
            &["gc"],
            Op::HardTanh {
                min: -1.5,
                max: 2.25,
            },
            "ap_fixed<6,2,AP_RND_ZERO,AP_WRAP>",
        ),
        layer(
            "mp",
            &["ht"],
            Op::MaxPool2d {
                kernel: Pair::Each([2, 3]),
                stride: Some(Pair::Both(1)),
            },
            "ap_fixed<6,2,AP_RND_ZERO,AP_WRAP>",
        ),
        layer(
            "ap",
            &["gc"],
            Op::AvgPool2d {
                kernel: Pair::Each([3, 2]),
                stride: Some(Pair::Each([1, 2])),
                reciprocal: reciprocal(&mut rng),
            },
            "ap_fixed<7,2,AP_RND_INF,AP_SAT_SYM>",
        ),
        layer(
            "hs",
            &["dw"],
            Op::HardSigmoid {
                alpha: codes(&mut rng, &[1], None, &["ap_fixed<6,1>"]),
                beta: codes(&mut rng, &[1], None, &["ap_fixed<6,0>"]),
            },
            "ap_ufixed<5,0,AP_RND_MIN_INF,AP_SAT_ZERO>",
        ),
        layer(
            "mul",
            &["dw", "hs"],
            Op::Multiply,
            "ap_fixed<5,-1,AP_TRN_ZERO,AP_WRAP,2>",
        ),
        layer(
            "cat",
            &["mul", "hs", "dw"],
            Op::Concat,
            "ap_fixed<7,2,AP_RND_CONV,AP_WRAP_SM>",
        ),
        layer(
            "lut",
            &["cat"],
            Op::Lookup {
                function: "tanh".into(),
                table: table(&mut rng, 16, lut_f),
                shift: 3,
                offset: -8,
            },
            lut_f,
        ),
        layer(
            "leaky",
            &["gc"],
            Op::Prelu {
                slope: codes(&mut rng, &[1], None, &["ap_fixed<6,0,AP_RND>"]),
            },
            "ap_fixed<8,3,AP_RND,AP_SAT_SYM>",
        ),
        layer("gmp", &["lut"], Op::GlobalMaxPool, lut_f),
        layer(
            "gap",
            &["leaky"],
            Op::GlobalAvgPool {
                reciprocal: reciprocal(&mut rng),
            },
            "ap_fixed<8,2,AP_RND,AP_WRAP>",
        ),
        layer("sig", &["q"], Op::Reshape { shape: vec![4, 42] }, a),
        layer("c1", &["sig"], c1, "ap_fixed<8,2,AP_RND,AP_SAT>"),
        layer("c2", &["c1"], c2, "ap_fixed<8,3,AP_TRN,AP_WRAP>"),
        layer(
            "mp1",
            &["c2"],
            Op::MaxPool1d {
                kernel: 3,
                stride: Some(2),
            },
            "ap_fixed<8,3,AP_TRN,AP_WRAP>",
        ),
        layer(
            "ap1",
            &["c1"],
            Op::AvgPool1d {
                kernel: 2,
                stride: None,
                reciprocal: codes(&mut rng, &[1], None, &["ap_ufixed<4,0>"]),
            },
            "ap_fixed<6,1,AP_RND_MIN_INF,AP_WRAP_SM>",
        ),
        layer(
            "lut1",
            &["c2"],
            Op::Lookup {
                function: "sigmoid".into(),
                table: table(&mut rng, 12, lut1_f),
                shift: -1,
                offset: 5,
            },
            lut1_f,
        ),
        layer(
            "ht1",
            &["ap1"],
            Op::HardTanh {
                min: -0.75,
                max: 0.5,
            },
            "ap_fixed<5,1,AP_RND_INF,AP_SAT_ZERO>",
        ),
        layer(
            "gap1",
            &["lut1"],
            Op::GlobalAvgPool {
                reciprocal: reciprocal(&mut rng),
            },
            "ap_fixed<7,1,AP_RND_ZERO,AP_SAT>",
        ),
        layer(
            "gmp1",
            &["ht1"],
            Op::GlobalMaxPool,
            "ap_fixed<5,1,AP_RND_INF,AP_SAT_ZERO>",
        ),
        layer(
            "flat",
            &["mp"],
            Op::Flatten,
            "ap_fixed<6,2,AP_RND_ZERO,AP_WRAP>",
        ),
        layer(
            "flat2",
            &["ap"],
            Op::Reshape { shape: vec![12] },
            "ap_fixed<7,2,AP_RND_INF,AP_SAT_SYM>",
        ),
        layer(
            "flat3",
            &["mp1"],
            Op::Flatten,
            "ap_fixed<8,3,AP_TRN,AP_WRAP>",
        ),
        layer(
            "out",
            &["gmp", "gap", "flat", "flat2", "gap1", "gmp1", "flat3"],
            Op::Concat,
            "ap_fixed<9,3,AP_RND,AP_SAT>",
        ),
    ];
    let model = Model {
        version: IR_VERSION,
        name: "ir v3 ops".to_string(),
        input_shape: vec![4, 7, 6],
        layers,
        preprocess: None,
    };
    model.validate().expect("valid test model");
    model
}

/// Overflow events of `layer` in a report.
#[track_caller]
fn overflows(report: &VerifyReport, layer: &str) -> u64 {
    let found = report.overflows.iter().find(|(l, _)| l == layer);
    found.unwrap_or_else(|| panic!("no layer {layer}")).1
}

#[test]
fn every_v3_operation_and_overflow_mode_matches_the_engine() {
    let model = v3_model();
    let graph = model.resolve().unwrap();
    let shapes: Vec<Vec<usize>> = graph.nodes().iter().map(|n| n.shape.clone()).collect();
    // dw: rows (7 + 3 − 5) / 2 + 1, columns (6 + 1 − 2) + 1; c1: (42 + 3 − 5) / 2 + 1.
    assert_eq!(shapes[1], [4, 3, 6]);
    assert_eq!(shapes[2], [6, 3, 4]);
    assert_eq!(shapes[14], [8, 21]);
    let Some(report) = check(&model, "v3-ops", 300, &options()) else {
        return;
    };
    // The overflow paths really run: accumulators, the product, the concatenation (WRAP_SM),
    // hard sigmoid's SAT_ZERO, hard tanh's wrapped bound, average pooling's SAT_SYM.
    for layer in ["dw", "gc", "ht", "hs", "mul", "cat", "c1", "c2", "ap1"] {
        assert!(overflows(&report, layer) > 0, "{layer}: {report}");
    }
    let top = std::fs::read_to_string(project_path("v3-ops").join("firmware/model.cpp"))
        .expect("model.cpp");
    for call in [
        "qfx::conv2d<",
        "qfx::hard_tanh<",
        "qfx::hard_sigmoid<",
        "qfx::multiply<",
        "qfx::concat_part<",
        "qfx::lookup<",
        "qfx::maxpool2d<",
        "qfx::avgpool2d<",
        "qfx::prelu<",
    ] {
        assert!(top.contains(call), "no `{call}` in model.cpp");
    }
}

/// The general convolutions with K-hot weights: depthwise, grouped, dilated, strided, 1-D, all
/// as shifts and adds over gathered windows; also in the `ap_int` form synthesis compiles.
#[test]
fn khot_general_convolutions_match_the_engine() {
    let mut model = v3_model();
    model.name = "ir v3 k-hot".into();
    for layer in &mut model.layers {
        match (&mut layer.op, layer.name.as_str()) {
            (Op::Conv2d { weight, .. }, "dw") => make_khot(weight, KHot::binary(2), 2),
            (Op::Conv2d { weight, .. }, _) => make_khot(weight, KHot::csd(1), 1),
            (Op::Conv1d { weight, .. }, "c1") => make_khot(weight, KHot::csd(2), 2),
            (Op::Conv1d { weight, .. }, _) => make_khot(weight, KHot::binary(1), 1),
            (Op::Prelu { slope }, _) => make_khot(slope, KHot::csd(2), 2),
            _ => {}
        }
    }
    model.validate().expect("K-hot model is valid");
    let Some(report) = check(&model, "v3-k-hot", 200, &options()) else {
        return;
    };
    for layer in ["dw", "gc", "c1"] {
        assert!(overflows(&report, layer) > 0, "{layer}: {report}");
    }
    let top = std::fs::read_to_string(project_path("v3-k-hot").join("firmware/model.cpp"))
        .expect("model.cpp");
    for layer in ["l1_dw", "l2_gc", "l10_leaky", "l14_c1", "l15_c2"] {
        assert!(top.contains(&format!("{layer}_shift_add(")), "{layer}");
    }
    assert!(
        !top.contains("qfx::conv2d<"),
        "a loop template in the K-hot model.cpp"
    );
    let opts = VerifyOptions {
        defines: vec!["QFX_AP_INT_CODES".to_string()],
        ..options()
    };
    check(&model, "v3-k-hot-ap-int", 200, &opts);
}

/// A binarized block by hand: PReLU (plain, per-channel slopes), sign into `ap_int<2>`, a
/// convolution of `±1` weights with a narrow wrapping accumulator, a K-hot (CSD) PReLU, and a
/// sign into a format that cannot hold `+1` (it saturates), then a dense head.
fn binarized_model() -> Model {
    let mut rng = Rng::star(0x2545_f491_4f6c_dd1d);
    let mut binary = codes(&mut rng, &[3, 2, 3, 3], None, &["ap_fixed<2,2>"]);
    for c in &mut binary.codes {
        *c = if rng.below(2) == 0 { -1 } else { 1 };
    }
    binary.khot = Some(KHot::binary(1));
    let mut khot_slope = codes(
        &mut rng,
        &[3],
        Some(0),
        &["ap_fixed<7,1>", "ap_fixed<6,0>", "ap_ufixed<6,1>"],
    );
    make_khot(&mut khot_slope, KHot::csd(2), 2);
    let layers = vec![
        layer("q", &[INPUT], Op::Quantize, "ap_fixed<8,3,AP_RND,AP_SAT>"),
        layer(
            "prelu",
            &["q"],
            Op::Prelu {
                slope: codes(
                    &mut rng,
                    &[2],
                    Some(0),
                    &["ap_fixed<6,1>", "ap_ufixed<5,0>"],
                ),
            },
            "ap_fixed<7,2,AP_RND_CONV,AP_WRAP>",
        ),
        layer("sign", &["prelu"], Op::Sign, "ap_int<2>"),
        layer(
            "bconv",
            &["sign"],
            Op::Conv2d {
                weight: binary,
                bias: None,
                stride: 1.into(),
                padding: 1.into(),
                dilation: 1.into(),
                groups: 1,
                accumulator: vec![fmt("ap_fixed<4,4,AP_TRN,AP_WRAP>")],
                order: AccumulationOrder::BiasThenInputChannelMajor,
            },
            "ap_fixed<8,5,AP_RND,AP_SAT>",
        ),
        layer(
            "kprelu",
            &["bconv"],
            Op::Prelu { slope: khot_slope },
            "ap_fixed<8,4,AP_RND_ZERO,AP_SAT_SYM>",
        ),
        layer(
            "sign2",
            &["kprelu"],
            Op::Sign,
            "ap_fixed<3,1,AP_TRN,AP_SAT>",
        ),
        layer(
            "flat",
            &["sign2"],
            Op::Flatten,
            "ap_fixed<3,1,AP_TRN,AP_SAT>",
        ),
        layer(
            "fc",
            &["flat"],
            Op::Dense {
                weight: codes(&mut rng, &[75, 4], None, &["ap_fixed<6,1>"]),
                bias: None,
                accumulator: vec![fmt("ap_fixed<14,6,AP_RND,AP_SAT>")],
                order: AccumulationOrder::BiasThenInputChannelMajor,
            },
            "ap_fixed<10,5,AP_RND,AP_SAT>",
        ),
    ];
    let model = Model {
        version: IR_VERSION,
        name: "binarized".to_string(),
        input_shape: vec![2, 5, 5],
        layers,
        preprocess: None,
    };
    model.validate().expect("valid test model");
    model
}

#[test]
fn binarized_layers_match_the_engine() {
    let model = binarized_model();
    let Some(report) = check(&model, "binarized", 300, &options()) else {
        return;
    };
    let count = |name: &str| report.overflows.iter().find(|(l, _)| l == name).unwrap().1;
    // The accumulator wraps, PReLU wraps, and sign2's +1 saturates (to 0.75).
    for layer in ["prelu", "bconv", "sign2"] {
        assert!(count(layer) > 0, "{layer}: {report}");
    }
    let top = std::fs::read_to_string(project_path("binarized").join("firmware/model.cpp"))
        .expect("model.cpp");
    // ±1 weights keep the loop template; the K-hot slopes become shifts and adds.
    for call in [
        "qfx::sign<",
        "qfx::prelu<",
        "qfx::conv2d<",
        "l4_kprelu_shift_add(",
    ] {
        assert!(top.contains(call), "no `{call}` in model.cpp");
    }
}

const HOSTILE: [&str; 12] = [
    "x\"); system(\"rm -rf /\"); //",
    "*/ #include <cstdlib>",
    "line\nbreak\r\n#define int float",
    "$[exec ls]",
    "日本語のレイヤー",
    "int",
    "__reserved",
    "_Upper",
    "trailing\\",
    "a-b",
    "a_b",
    "a b",
];

#[test]
fn hostile_names_never_reach_the_code() {
    let model_name = "}\n]; exec rm -rf / ;# \"$(whoami)\" ??/ */";
    let model = all_ops_model(&HOSTILE, model_name);
    let dir = project_dir("hostile");
    let written = emit(&model, &dir).expect("emit");
    assert_eq!(written.top, "qfx_exec_rm_rf_whoami");
    for file in &written.files {
        if file.to_str() == Some(qfx_hls::IR_FILE) {
            continue; // the IR copy is data and keeps the names (JSON-escaped)
        }
        let text = std::fs::read_to_string(dir.join(file)).unwrap();
        // Whole names (those that are more than one word) appear nowhere, not even in comments.
        for raw in HOSTILE.iter().chain(&[model_name]) {
            if raw.len() > 3 && !raw.chars().all(|c| c.is_alphanumeric() || c == '_') {
                assert!(!text.contains(raw), "{} contains {raw:?}", file.display());
            }
        }
        // Outside comments, nothing of the names but their sanitized identifiers remains;
        // inside comments they are percent-encoded, so no comment ends early or continues.
        let is_markdown = file.extension().is_some_and(|e| e == "md");
        for line in text.lines() {
            let (code, comment) = match line.find("//") {
                Some(at) if !is_markdown => line.split_at(at),
                _ if line.trim_start().starts_with('#') && file.ends_with("build.tcl") => {
                    ("", line)
                }
                _ => (line, ""),
            };
            // Identifiers: never reserved (`_X`, `__`), never a raw name (e.g. `int`).
            if !is_markdown && !file.ends_with("build.tcl") {
                for token in code.split(|c: char| !(c.is_ascii_alphanumeric() || c == '_')) {
                    // The reserved names the library itself uses: the synthesis macro it
                    // reads and the GCC attribute it applies in C simulation only.
                    let ours = ["__SYNTHESIS__", "__attribute__"].contains(&token);
                    let reserved = (token.starts_with('_') || token.contains("__")) && !ours;
                    assert!(
                        !reserved,
                        "{}: identifier {token:?} in {line:?}",
                        file.display()
                    );
                }
                for raw in ["int float", "a-b", "a b", "日本"] {
                    assert!(
                        !code.contains(raw),
                        "{}: {raw:?} in {line:?}",
                        file.display()
                    );
                }
            }
            if !is_markdown {
                for bad in [
                    "system(",
                    "rm -rf",
                    "<cstdlib>",
                    "exec ls",
                    "$(",
                    "#define int",
                    "\"rm",
                ] {
                    assert!(
                        !code.contains(bad),
                        "{}: {bad:?} in {line:?}",
                        file.display()
                    );
                }
            }
            for bad in ["*/", "/*", "??", "\\"] {
                assert!(
                    !comment.contains(bad),
                    "{}: {bad:?} in {line:?}",
                    file.display()
                );
            }
            if file.ends_with("build.tcl") {
                // Quotes only in the template's fixed `-cflags` / `-argv` arguments.
                let quotes_ok = !line.starts_with('#') && !line.starts_with("set_top");
                for bad in ["$", "[", "\\", "{", "}", "\"", ";"] {
                    if bad == "\"" && quotes_ok {
                        continue;
                    }
                    assert!(!line.contains(bad), "build.tcl: {bad:?} in {line:?}");
                }
            }
        }
    }
    let tcl = std::fs::read_to_string(dir.join("build.tcl")).unwrap();
    for line in tcl.lines().filter(|l| !l.starts_with('#')) {
        assert!(
            !line.contains('[') && !line.contains('$') && !line.contains('\\'),
            "Tcl line {line:?}"
        );
    }
    let xs = inputs(&model, 200, 5);
    match verify_with(&dir, &xs, &options()) {
        Ok(report) => {
            println!("hostile names: {report}");
            assert_eq!(report.mismatches, 0, "{report}");
        }
        Err(e) if matches!(e.kind, ErrorKind::NoCompiler | ErrorKind::Headers) && !required() => {
            println!("SKIPPED HLS C simulation check: {e}");
        }
        Err(e) => panic!("verification failed: {e}"),
    }
}

#[track_caller]
fn refused(model: &Model, kind: ErrorKind, message: &str) {
    let err = emit(model, &project_dir("refused")).expect_err("must be refused");
    assert_eq!(err.kind, kind, "{err}");
    assert!(err.message.contains(message), "{err}");
}

#[test]
fn unsupported_models_are_refused_clearly() {
    let mut relu_first = wide_mlp();
    relu_first.layers[0].op = Op::Relu { clip: None };
    relu_first.input_shape = vec![18];
    // The IR itself refuses it: only quantize and flatten layers convert the raw input.
    refused(&relu_first, ErrorKind::InvalidModel, "reads the raw input");

    let two_inputs = Model {
        version: IR_VERSION,
        name: "two input types".to_string(),
        input_shape: vec![4],
        layers: vec![
            layer("a", &[INPUT], Op::Quantize, "ap_fixed<8,3>"),
            layer("b", &[INPUT], Op::Quantize, "ap_fixed<8,2>"),
            layer("s", &["a", "b"], Op::Add, "ap_fixed<9,4>"),
        ],
        preprocess: None,
    };
    refused(&two_inputs, ErrorKind::Unsupported, "one input type");

    let mut broken = wide_mlp();
    broken.layers[1].inputs = vec!["nowhere".to_string()];
    refused(&broken, ErrorKind::InvalidModel, "not an earlier layer");

    // A product wider than 128 bits has no exact type (the engine could not hold it either).
    let wide_product = Model {
        version: IR_VERSION,
        name: "wide product".to_string(),
        input_shape: vec![4],
        layers: vec![
            layer("a", &[INPUT], Op::Quantize, "ap_fixed<100,10>"),
            layer("b", &["a"], Op::Quantize, "ap_fixed<40,10>"),
            layer("m", &["a", "b"], Op::Multiply, "ap_fixed<16,8>"),
        ],
        preprocess: None,
    };
    refused(&wide_product, ErrorKind::Unsupported, "layer `m`");
    let mut wide_sigmoid = wide_product.clone();
    wide_sigmoid.layers[2] = layer(
        "hs",
        &["a"],
        Op::HardSigmoid {
            alpha: Codes::new(vec![1], None, vec![fmt("ap_fixed<40,2>")], vec![1]),
            beta: Codes::new(vec![1], None, vec![fmt("ap_fixed<8,2>")], vec![1]),
        },
        "ap_fixed<16,8>",
    );
    refused(&wide_sigmoid, ErrorKind::Unsupported, "layer `hs`");
}

#[test]
fn verify_refuses_bad_inputs() {
    let model = wide_mlp();
    let dir = project_dir("bad-inputs");
    emit(&model, &dir).unwrap();
    for (xs, message) in [
        (vec![], "no input samples"),
        (vec![vec![0.0; 17]], "has 17 values"),
        (vec![vec![f32::NAN; 18]], "non-finite"),
    ] {
        let err = verify_with(&dir, &xs, &options()).expect_err("refused");
        assert_eq!(err.kind, ErrorKind::BadInput);
        assert!(err.message.contains(message), "{err}");
    }
    let err = verify_with(&project_dir("no-project"), &[vec![0.0; 18]], &options()).unwrap_err();
    assert_eq!(err.kind, ErrorKind::Io);
    assert!(err.message.contains("model.ir.json"), "{err}");
}
