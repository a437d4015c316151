//! Hand-built IRs through the whole Verilog path: export, Verilator, and every output code
//! compared with the integer engine (0 mismatches required). Covers every layer kind, every
//! rounding and overflow mode in accumulators and outputs, per-channel formats, K-hot weights,
//! `*` multipliers next to shift-and-add, reassociated and in-order sums, and seeded random
//! networks.

mod common;

use qfx_fixed::{Format, KHot, Overflow, Quant};
use qfx_ir::{AccumulationOrder, Layer, Model, Op, INPUT};
use qfx_rtl::{export, verify, Architecture, CastLogic, Multipliers, RtlOptions, VerifyReport};
use qfx_testkit::{fmt, layer, model, random_codes as codes, Rng};

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
                    2 => (rng.below(512) as f32 - 256.0) / 64.0,
                    _ => rng.f32(40.0),
                })
                .collect()
        })
        .collect()
}

/// Exports `model`, verifies it on `n` inputs, and requires 0 mismatches.
#[track_caller]
fn check(model: &Model, dir: &str, n: usize, options: &RtlOptions) -> Option<VerifyReport> {
    model.validate().expect("valid test model");
    let dir = common::work_dir(dir);
    let exported = export(model, &dir, options, false).expect("export");
    // Yosys must read what Verilator simulates.
    common::or_skip(
        "Yosys parse",
        qfx_rtl::yosys_reads(&dir.join(qfx_rtl::VERILOG_FILE)),
    )?;
    let report = common::or_skip("RTL check", verify(&dir, &inputs(model, n, 42)))?;
    println!("{}: {report}", model.name);
    assert_eq!(report.samples, n);
    assert_eq!(report.mismatches, 0, "{report}");
    let timing = &exported.design.timing;
    match timing.latency {
        // Unrolled: the documented latency, one inference per clock.
        Some(latency) => {
            assert_eq!(report.latency, latency as u64, "{report}");
            assert_eq!(report.interval, 1.0, "one inference per clock");
        }
        // Streaming: one inference per period, as fed.
        None => assert!(
            (report.interval - timing.frame_cycles as f64).abs() < 1.0,
            "{report}"
        ),
    }
    Some(report)
}

/// Every layer kind, per-channel formats, every overflow mode (the HLS test's model).
fn all_ops() -> Model {
    let mut rng = Rng::star(0x9e37_79b9_7f4a_7c15);
    let a = "ap_fixed<8,3,AP_RND,AP_SAT>";
    let conv = |rng: &mut Rng| Op::Conv2d {
        weight: codes(
            rng,
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
            rng,
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
    };
    let layers = vec![
        layer("q", &[INPUT], Op::Quantize, a),
        layer(
            "conv1",
            &["q"],
            conv(&mut rng),
            "ap_fixed<8,3,AP_RND,AP_SAT>",
        ),
        layer(
            "bn1",
            &["conv1"],
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
            "relu1",
            &["bn1"],
            Op::Relu { clip: Some(2.5) },
            "ap_ufixed<7,3,AP_RND_INF,AP_SAT>",
        ),
        layer(
            "short",
            &["q"],
            Op::Shortcut {
                stride: 1,
                pad_channels: 2,
            },
            a,
        ),
        layer(
            "add1",
            &["relu1", "short"],
            Op::Add,
            "ap_fixed<9,4,AP_RND_MIN_INF,AP_SAT>",
        ),
        layer(
            "pool",
            &["add1"],
            Op::MaxPool2d {
                kernel: 2.into(),
                stride: None,
            },
            "ap_fixed<9,4,AP_RND_MIN_INF,AP_SAT>",
        ),
        layer(
            "conv2",
            &["pool"],
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
            "gap",
            &["conv2"],
            Op::GlobalAvgPool {
                reciprocal: codes(&mut rng, &[1], None, &["ap_ufixed<8,0>"]),
            },
            "ap_fixed<10,4,AP_RND_CONV,AP_SAT>",
        ),
        layer(
            "flat",
            &["conv2"],
            Op::Flatten,
            "ap_fixed<8,4,AP_RND,AP_WRAP,2>",
        ),
        layer(
            "fc",
            &["flat"],
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
            "sum",
            &["gap", "fc"],
            Op::Add,
            "ap_fixed<12,5,AP_RND,AP_SAT>",
        ),
    ];
    model("all ops", &[2, 4, 4], layers)
}

#[test]
fn every_layer_kind_and_overflow_mode_matches_the_engine_streaming() {
    let m = all_ops();
    let design = qfx_rtl::generate(&m, &RtlOptions::default()).unwrap();
    assert_eq!(design.timing.architecture, Architecture::Stream);
    // Padded 4×4 input: a 6×6 grid per inference, plus the margin.
    assert_eq!(design.timing.frame_cycles, 44);
    let Some(report) = check(&m, "all-ops-stream", 300, &RtlOptions::default()) else {
        return;
    };
    // The narrow accumulators really overflow, so the overflow paths are exercised.
    let count = |name: &str| report.overflows.iter().find(|(l, _)| l == name).unwrap().1;
    for l in ["conv1", "conv2", "fc", "bn1"] {
        assert!(count(l) > 0, "{l}: no overflow events: {report}");
    }
}

#[test]
fn every_layer_kind_and_overflow_mode_matches_the_engine_unrolled() {
    let options = RtlOptions {
        architecture: Architecture::Unrolled,
        ..RtlOptions::default()
    };
    let Some(report) = check(&all_ops(), "all-ops-unrolled", 200, &options) else {
        return;
    };
    // One register per computing layer: q, conv1, bn1, relu1, add1, pool, conv2, fc, sum
    // (short and flat are wires; gap runs parallel to fc).
    assert_eq!(report.latency, 9);
}

/// The binarized block: PReLU, sign, a `±1` convolution with a narrow wrapping accumulator,
/// K-hot PReLU slopes and BatchNorm scales, a sign that saturates.
fn binarized() -> Model {
    let mut rng = Rng::seeded(5);
    let mut w = codes(&mut rng, &[4, 3, 3, 3], None, &["ap_fixed<2,2>"]);
    for c in &mut w.codes {
        *c = if *c < 0 { -1 } else { 1 };
    }
    let mut slope = codes(&mut rng, &[3], None, &["ap_fixed<6,1>"]);
    slope.khot = Some(KHot::csd(2));
    for c in &mut slope.codes {
        *c = [-12, 6, 1][(*c).rem_euclid(3) as usize];
    }
    let mut scale = codes(&mut rng, &[4], None, &["ap_fixed<8,3>"]);
    scale.khot = Some(KHot::csd(2));
    for (c, v) in scale.codes.iter_mut().zip([7i64, -30, 17, 64]) {
        *c = v;
    }
    let layers = vec![
        layer(
            "q",
            &[INPUT],
            Op::Quantize,
            "ap_fixed<8,3,AP_RND_CONV,AP_SAT>",
        ),
        layer(
            "prelu",
            &["q"],
            Op::Prelu { slope },
            "ap_fixed<8,3,AP_RND,AP_SAT>",
        ),
        layer("sign", &["prelu"], Op::Sign, "ap_fixed<2,2>"),
        layer(
            "bconv",
            &["sign"],
            Op::Conv2d {
                weight: w,
                bias: None,
                stride: 1.into(),
                padding: 1.into(),
                dilation: 1.into(),
                groups: 1,
                accumulator: vec![fmt("ap_fixed<4,4>")],
                order: AccumulationOrder::BiasThenInputChannelMajor,
            },
            "ap_fixed<6,6>",
        ),
        layer(
            "bn",
            &["bconv"],
            Op::BatchNorm {
                scale,
                shift: codes(&mut rng, &[4], None, &["ap_fixed<8,4>"]),
            },
            "ap_fixed<8,4,AP_RND,AP_SAT>",
        ),
        layer(
            "sat_sign",
            &["bn"],
            Op::Sign,
            "ap_ufixed<1,1,AP_TRN,AP_SAT>",
        ),
    ];
    model("binarized", &[3, 5, 5], layers)
}

#[test]
fn binarized_block_matches_the_engine() {
    let m = binarized();
    for (architecture, dir) in [
        (Architecture::Stream, "binarized-stream"),
        (Architecture::Unrolled, "binarized-unrolled"),
    ] {
        let options = RtlOptions {
            architecture,
            ..RtlOptions::default()
        };
        // The ±1 × ±1 convolution is XNOR and popcount: all 4 output channels.
        let design = qfx_rtl::generate(&m, &options).unwrap();
        let sum = design.layers[3].sum.as_ref().unwrap();
        assert_eq!((design.layers[3].kind, sum.popcount), ("conv2d", 4));
        if let Some(r) = check(&m, dir, 200, &options) {
            assert!(r.total_overflows() > 0, "{r}");
        }
    }
}

/// A downsampling residual block on a 7×7 image (odd sizes: windows and strides that do not
/// tile evenly): stride-2 convolution and option-A shortcut with stride 2, joined by an add, an
/// unpadded 2×2 convolution with a rounding, N-bit wrapping accumulator, global average
/// pooling over 3×3 and a classifier.
fn downsampling_block() -> Model {
    let mut rng = Rng::seeded(9);
    let a = "ap_fixed<8,3,AP_RND,AP_SAT>";
    let layers = vec![
        layer("q", &[INPUT], Op::Quantize, a),
        layer(
            "conv",
            &["q"],
            Op::Conv2d {
                weight: codes(&mut rng, &[4, 2, 3, 3], None, &["ap_fixed<6,1>"]),
                bias: Some(codes(&mut rng, &[4], None, &["ap_fixed<8,3>"])),
                stride: 2.into(),
                padding: 1.into(),
                dilation: 1.into(),
                groups: 1,
                accumulator: vec![fmt("ap_fixed<16,6,AP_RND_CONV,AP_SAT>")],
                order: AccumulationOrder::BiasThenInputChannelMajor,
            },
            "ap_fixed<9,4,AP_RND,AP_SAT>",
        ),
        layer(
            "bn",
            &["conv"],
            Op::BatchNorm {
                scale: codes(&mut rng, &[4], None, &["ap_fixed<12,3>"]),
                shift: codes(&mut rng, &[4], None, &["ap_fixed<8,2>"]),
            },
            "ap_fixed<12,4,AP_RND,AP_SAT>",
        ),
        layer(
            "short",
            &["q"],
            Op::Shortcut {
                stride: 2,
                pad_channels: 2,
            },
            a,
        ),
        layer(
            "add",
            &["bn", "short"],
            Op::Add,
            "ap_fixed<9,4,AP_RND_ZERO,AP_SAT_SYM>",
        ),
        // A valid (unpadded) 2×2 convolution: the window without a padding FIFO.
        layer(
            "valid",
            &["add"],
            Op::Conv2d {
                weight: codes(&mut rng, &[3, 4, 2, 2], None, &["ap_fixed<5,1>"]),
                bias: None,
                stride: 1.into(),
                padding: 0.into(),
                dilation: 1.into(),
                groups: 1,
                accumulator: vec![fmt("ap_fixed<12,5,AP_RND,AP_WRAP,1>")],
                order: AccumulationOrder::BiasThenInputChannelMajor,
            },
            "ap_fixed<8,4,AP_RND,AP_SAT>",
        ),
        layer(
            "gap",
            &["valid"],
            Op::GlobalAvgPool {
                reciprocal: codes(&mut rng, &[1], None, &["ap_ufixed<8,-2>"]),
            },
            "ap_fixed<10,4,AP_RND_CONV,AP_SAT>",
        ),
        layer(
            "fc",
            &["gap"],
            Op::Dense {
                weight: codes(&mut rng, &[3, 3], None, &["ap_fixed<6,1>"]),
                bias: None,
                accumulator: vec![fmt("ap_fixed<18,8>")],
                order: AccumulationOrder::BiasThenInputChannelMajor,
            },
            "ap_fixed<10,4,AP_RND,AP_SAT>",
        ),
    ];
    model("downsampling block", &[2, 7, 7], layers)
}

#[test]
fn a_downsampling_residual_block_streams() {
    let m = downsampling_block();
    let design = qfx_rtl::generate(&m, &RtlOptions::default()).unwrap();
    assert_eq!(design.timing.architecture, Architecture::Stream);
    // 12-bit BatchNorm scales times 9-bit values stay in fabric (9 ≤ 10 bits): no `*`.
    assert_eq!(design.layers[2].multipliers, 0);
    check(&m, "downsampling-block", 200, &RtlOptions::default());
}

/// Flatten straight from the input, unsigned activations, no bias, wide accumulators and a
/// 40-bit output, 12- and 14-bit weights (multipliers under the DSP rule).
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
    model("wide mlp", &[2, 3, 3], layers)
}

#[test]
fn wide_values_and_multipliers_match_the_engine() {
    let m = wide_mlp();
    // Under the DSP rule every product of this network is a `*`.
    let design = qfx_rtl::generate(&m, &RtlOptions::default()).unwrap();
    let mults: u64 = design.layers.iter().map(|l| l.multipliers).sum();
    assert_eq!(mults, 18 * 8 + 8 * 4);
    check(&m, "wide-mlp", 250, &RtlOptions::default());
}

/// A random format: width `lo..=hi`, any modes (`N` up to 2 for the wrap modes).
fn any_format(rng: &mut Rng, lo: u32, hi: u32, signed: Option<bool>) -> Format {
    loop {
        let w = rng.range(lo as i64, hi as i64) as u32;
        let q = rng.pick(&Quant::ALL);
        let o = rng.pick(&Overflow::ALL);
        let n = if matches!(o, Overflow::Wrap | Overflow::WrapSm) && rng.coin(40) {
            rng.range(1, 2) as u32
        } else {
            0
        };
        let s = signed.unwrap_or_else(|| rng.coin(75));
        let i = rng.range(-1, w as i64 + 1) as i32;
        if let Ok(f) = Format::new(w, i, s, q, o, n.min(w)) {
            return f;
        }
    }
}

/// A random dense network over flat vectors: dense layers with reassociable (exact grid,
/// wrapping or wide) and rounding accumulators, per-channel formats, K-hot weights, and every
/// element-wise operation, with a residual `Add`.
fn random_net(seed: u64) -> Model {
    let mut rng = Rng::seeded(seed);
    let n0 = rng.range(3, 7) as usize;
    let mut layers: Vec<Layer> = Vec::new();
    let f0 = any_format(&mut rng, 4, 9, Some(true));
    layers.push(Layer {
        name: "q".into(),
        inputs: vec![INPUT.into()],
        op: Op::Quantize,
        output: f0,
    });
    let mut width = n0;
    let mut prev = ("q".to_string(), f0, n0);
    let kinds = [
        "dense", "relu", "bn", "prelu", "dense", "add", "sign", "quantize", "dense",
    ];
    for (k, kind) in kinds.iter().enumerate() {
        let name = format!("{kind}{k}");
        let (pname, pf, _) = prev.clone();
        let out = any_format(&mut rng, 3, 10, None);
        let op = match *kind {
            "dense" => {
                let outs = rng.range(2, 6) as usize;
                let per_channel = rng.coin(50);
                let wfs: Vec<Format> = (0..if per_channel { outs } else { 1 })
                    .map(|_| any_format(&mut rng, 2, 7, None).with_quant(Quant::Trn))
                    .map(|f| f.with_overflow(Overflow::Wrap, 0).unwrap())
                    .collect();
                let names: Vec<String> = wfs.iter().map(|f| f.to_string()).collect();
                let refs: Vec<&str> = names.iter().map(String::as_str).collect();
                let mut weight = codes(&mut rng, &[width, outs], per_channel.then_some(1), &refs);
                if rng.coin(40) {
                    let khot = if rng.coin(50) {
                        KHot::csd(2)
                    } else {
                        KHot::binary(2)
                    };
                    for c in &mut weight.codes {
                        while !khot.admits(*c as i128) {
                            *c /= 2;
                        }
                    }
                    weight.khot = Some(khot);
                }
                // Half the accumulators are exact on the products' grid (reassociable when
                // they wrap or cannot overflow), half round.
                let accumulator: Vec<Format> = (0..if rng.coin(50) { outs } else { 1 })
                    .map(|o| {
                        let wf = weight.formats[o.min(weight.formats.len() - 1)];
                        let frac = pf.frac_bits() + wf.frac_bits();
                        let a = any_format(&mut rng, 6, 16, Some(true));
                        if rng.coin(60) {
                            let w = a.width() as i64;
                            let extra = rng.range(0, 2);
                            let f = Format::new(
                                (w + extra) as u32,
                                (w - frac) as i32,
                                true,
                                a.quant(),
                                a.overflow(),
                                a.sat_bits(),
                            );
                            f.unwrap_or(a)
                        } else {
                            a
                        }
                    })
                    .collect();
                let bias = rng.coin(70).then(|| {
                    let bf = any_format(&mut rng, 4, 10, None).to_string();
                    codes(&mut rng, &[outs], None, &[bf.as_str()])
                });
                width = outs;
                Op::Dense {
                    weight,
                    bias,
                    accumulator,
                    order: AccumulationOrder::BiasThenInputChannelMajor,
                }
            }
            "relu" => Op::Relu {
                clip: rng.coin(50).then(|| rng.range(1, 12) as f64 / 4.0),
            },
            "bn" => {
                let sf = any_format(&mut rng, 3, 7, None).to_string();
                let hf = any_format(&mut rng, 3, 8, None).to_string();
                let mut scale = codes(&mut rng, &[width], None, &[sf.as_str()]);
                if rng.coin(50) {
                    scale.khot = Some(KHot::csd(3));
                    for c in &mut scale.codes {
                        while !KHot::csd(3).admits(*c as i128) {
                            *c /= 2;
                        }
                    }
                }
                Op::BatchNorm {
                    scale,
                    shift: codes(&mut rng, &[width], None, &[hf.as_str()]),
                }
            }
            "prelu" => {
                let sf = any_format(&mut rng, 3, 7, Some(true)).to_string();
                Op::Prelu {
                    slope: codes(&mut rng, &[width], None, &[sf.as_str()]),
                }
            }
            "add" => {
                // A residual: the previous layer plus the last layer of the same width.
                let other = layers
                    .iter()
                    .rev()
                    .skip(1)
                    .find(|l| l.name.starts_with("relu") || l.name.starts_with("bn"))
                    .map(|l| l.name.clone());
                match other {
                    Some(o) if layer_width(&layers, &o, n0) == width => {
                        layers.push(Layer {
                            name: name.clone(),
                            inputs: vec![pname.clone(), o],
                            op: Op::Add,
                            output: out,
                        });
                        prev = (name, out, width);
                        continue;
                    }
                    _ => Op::Quantize,
                }
            }
            "sign" => Op::Sign,
            _ => Op::Quantize,
        };
        layers.push(Layer {
            name: name.clone(),
            inputs: vec![pname],
            op,
            output: out,
        });
        prev = (name, out, width);
    }
    let m = model(&format!("random {seed}"), &[n0], layers);
    m.validate().expect("random model is valid");
    m
}

/// The output width of layer `name` in a flat network (input width `n0`).
fn layer_width(layers: &[Layer], name: &str, n0: usize) -> usize {
    let mut w = n0;
    for l in layers {
        if let Op::Dense { weight, .. } = &l.op {
            w = weight.shape[1];
        }
        if l.name == name {
            return w;
        }
    }
    w
}

#[test]
fn random_networks_match_the_engine_in_every_configuration() {
    // Several networks in one design each keeps the Verilator builds few: the options vary
    // between builds (multipliers everywhere, no sharing, bit-level casts).
    let configs = [
        (RtlOptions::default(), "default"),
        (
            RtlOptions {
                multipliers: Multipliers::DspRule { fabric_max_bits: 3 },
                cse: false,
                cast_logic: CastLogic::BitLevel,
                ..RtlOptions::default()
            },
            "multipliers, no sharing, bit-level casts",
        ),
        (
            RtlOptions {
                multipliers: Multipliers::ShiftAdd,
                ..RtlOptions::default()
            },
            "shift-add only",
        ),
    ];
    let mut reassociated = 0;
    let mut in_order = 0;
    for (i, (options, what)) in configs.iter().enumerate() {
        for seed in 0..2u64 {
            let m = random_net(seed * 7 + i as u64 + 1);
            let design = qfx_rtl::generate(&m, options).unwrap();
            for l in &design.layers {
                if let Some(s) = &l.sum {
                    reassociated += s.reassociated;
                    in_order += s.in_order;
                }
            }
            let Some(r) = check(&m, &format!("random-{i}-{seed}"), 150, options) else {
                return;
            };
            println!("  ({what})");
            let _ = r;
        }
    }
    // Both kinds of sums were built and verified.
    assert!(
        reassociated > 0 && in_order > 0,
        "{reassociated} {in_order}"
    );
}

/// The operations of user-described networks the Verilog back end builds unrolled: a depthwise
/// convolution with rectangular kernel, per-axis stride and dilation and asymmetric padding;
/// rectangular max and average pooling with strides; a reshape into a signal; a grouped 1-D
/// convolution; 1-D average and max pooling; global max pooling of a signal.
fn user_ops() -> Model {
    use qfx_ir::{Padding, Pair};
    let mut rng = Rng::star(0x0005_eed0_f0b5);
    let a = "ap_fixed<8,3,AP_RND,AP_SAT>";
    let (dw_f, mp_f, ap_f, c1_f) = (
        "ap_fixed<8,3,AP_RND_CONV,AP_SAT>",
        "ap_fixed<8,3,AP_RND_CONV,AP_SAT>",
        "ap_fixed<7,2,AP_RND_INF,AP_SAT_SYM>",
        "ap_fixed<8,2,AP_TRN,AP_WRAP>",
    );
    let dense = |rng: &mut Rng, inputs: usize| Op::Dense {
        weight: codes(rng, &[inputs, 3], None, &["ap_fixed<6,1>"]),
        bias: Some(codes(rng, &[3], None, &["ap_fixed<8,3>"])),
        accumulator: vec![fmt("ap_fixed<14,6,AP_RND,AP_SAT>")],
        order: AccumulationOrder::BiasThenInputChannelMajor,
    };
    let layers = vec![
        layer("q", &[INPUT], Op::Quantize, a),
        layer(
            "dw",
            &["q"],
            Op::Conv2d {
                weight: codes(&mut rng, &[4, 1, 3, 2], None, &["ap_fixed<6,1>"]),
                bias: Some(codes(&mut rng, &[4], None, &["ap_fixed<8,3>"])),
                stride: Pair::Each([1, 2]),
                padding: Padding::Sides([1, 0, 1, 1]),
                dilation: Pair::Each([2, 1]),
                groups: 2,
                accumulator: vec![fmt("ap_fixed<10,4,AP_TRN,AP_WRAP>")],
                order: AccumulationOrder::BiasThenInputChannelMajor,
            },
            dw_f,
        ),
        layer(
            "mp",
            &["dw"],
            Op::MaxPool2d {
                kernel: Pair::Each([1, 2]),
                stride: Some(Pair::Both(1)),
            },
            mp_f,
        ),
        layer(
            "ap",
            &["mp"],
            Op::AvgPool2d {
                kernel: Pair::Both(2),
                stride: Some(Pair::Each([1, 2])),
                reciprocal: codes(&mut rng, &[1], None, &["ap_ufixed<6,0>"]),
            },
            ap_f,
        ),
        layer("sig", &["ap"], Op::Reshape { shape: vec![4, 8] }, ap_f),
        layer(
            "c1",
            &["sig"],
            Op::Conv1d {
                weight: codes(&mut rng, &[6, 2, 3], None, &["ap_fixed<5,1>"]),
                bias: None,
                stride: 1,
                padding: [1, 1],
                dilation: 1,
                groups: 2,
                accumulator: vec![fmt("ap_fixed<9,2,AP_RND,AP_WRAP,1>")],
                order: AccumulationOrder::BiasThenInputChannelMajor,
            },
            c1_f,
        ),
        layer(
            "p1",
            &["c1"],
            Op::AvgPool1d {
                kernel: 2,
                stride: None,
                reciprocal: codes(&mut rng, &[1], None, &["ap_ufixed<4,0>"]),
            },
            "ap_fixed<6,1,AP_RND_MIN_INF,AP_WRAP_SM>",
        ),
        layer(
            "m1",
            &["c1"],
            Op::MaxPool1d {
                kernel: 2,
                stride: Some(1),
            },
            c1_f,
        ),
        layer("gm", &["m1"], Op::GlobalMaxPool, c1_f),
        layer(
            "flat",
            &["p1"],
            Op::Flatten,
            "ap_fixed<6,1,AP_RND_MIN_INF,AP_WRAP_SM>",
        ),
        layer(
            "fa",
            &["flat"],
            dense(&mut rng, 24),
            "ap_fixed<9,4,AP_RND,AP_SAT>",
        ),
        layer(
            "fb",
            &["gm"],
            dense(&mut rng, 6),
            "ap_fixed<9,4,AP_RND,AP_SAT>",
        ),
        layer(
            "sum",
            &["fa", "fb"],
            Op::Add,
            "ap_fixed<10,4,AP_RND,AP_SAT>",
        ),
    ];
    model("user ops", &[2, 8, 8], layers)
}

#[test]
fn user_network_operations_match_the_engine_unrolled() {
    let m = user_ops();
    // A grouped convolution does not stream: left to qfx, the network is unrolled.
    let design = qfx_rtl::generate(&m, &RtlOptions::default()).unwrap();
    assert_eq!(design.timing.architecture, Architecture::Unrolled);
    let Some(report) = check(&m, "user-ops", 200, &RtlOptions::default()) else {
        return;
    };
    // The narrow wrapping accumulators overflow, so the wrapping paths are exercised.
    let count = |name: &str| report.overflows.iter().find(|(l, _)| l == name).unwrap().1;
    assert!(count("dw") > 0 && count("c1") > 0, "{report}");
    // Asked to stream, it is refused naming the layer and what streams.
    let stream = RtlOptions {
        architecture: Architecture::Stream,
        ..RtlOptions::default()
    };
    let e = qfx_rtl::generate(&m, &stream).unwrap_err();
    assert!(
        e.message.contains("layer `dw` (conv2d)") && e.message.contains("build it unrolled"),
        "{e}"
    );
}
