//! The static range analysis: hand-computed cases that must be flagged or safe, worst-case
//! inputs that make the engine overflow exactly when a layer is flagged, and soundness on
//! random models (every overflow the engine counts was predicted).

mod common;

use common::{fmt, random_acc, random_input, random_model, Rng};
use qfx_engine::{analyze, Engine};
use qfx_fixed::Format;
use qfx_ir::{AccumulationOrder, Codes, Layer, Model, Op, INPUT, IR_VERSION};

/// `input (format q) → dense (weights, accumulator acc) → output`.
fn dense(
    q: Format,
    wf: Format,
    weights: &[i64],
    bias: Option<(Format, i64)>,
    acc: Format,
    out: Format,
) -> Model {
    let n = weights.len();
    let op = Op::Dense {
        weight: Codes::new(vec![n, 1], None, vec![wf], weights.to_vec()),
        bias: bias.map(|(f, c)| Codes::new(vec![1], None, vec![f], vec![c])),
        accumulator: vec![acc],
        order: AccumulationOrder::default(),
    };
    qfx_testkit::one_layer(&[n], q, op, out)
}

#[track_caller]
fn check_case(acc: &str, out: &str, want_acc_short: u32, want_out_short: u32) {
    // Four weights of 31/32 on inputs in [−4, 3.96875]: sums of products in
    // [−4·31·128, 4·31·127] / 2^10 = [−15.5, 15.379…].
    let model = dense(
        fmt("ap_fixed<8,3>"),
        fmt("ap_fixed<6,1>"),
        &[31, 31, 31, 31],
        None,
        fmt(acc),
        fmt(out),
    );
    let report = analyze(&model).unwrap();
    let d = &report.layers[1];
    let a = d.accumulator.as_ref().unwrap();
    assert_eq!(
        (a.min.to_f64(), a.max.to_f64()),
        (-15.5, 15748.0 / 1024.0),
        "{acc}"
    );
    assert_eq!(a.short_bits, want_acc_short, "{acc}: accumulator\n{report}");
    assert_eq!(
        d.output.short_bits, want_out_short,
        "{out}: output\n{report}"
    );
    assert!(a.exact && d.output.exact);
}

#[test]
fn hand_computed_cases() {
    // ±15.5 needs I = 5 (ap_fixed<15,5> at F = 10): <12,2> is 3 bits short, <13,3> 2.
    check_case("ap_fixed<12,2,AP_TRN,AP_SAT>", "ap_fixed<16,6>", 3, 0);
    check_case("ap_fixed<13,3>", "ap_fixed<16,6>", 2, 0);
    check_case("ap_fixed<15,5>", "ap_fixed<16,6>", 0, 0);
    check_case("ap_fixed<20,10>", "ap_fixed<8,4,AP_RND,AP_SAT>", 0, 1);
    // AP_SAT_SYM gives up the most negative code: −16 at I = 5 is then out of range.
    check_case("ap_fixed<15,5,AP_TRN,AP_SAT_SYM>", "ap_fixed<16,6>", 0, 0);
    // An unsigned accumulator cannot hold the negative sums: it lacks the sign bit.
    check_case("ap_ufixed<14,4>", "ap_fixed<16,6>", 1, 0);
}

#[test]
fn report_renders_one_line_per_assignment() {
    let model = dense(
        fmt("ap_fixed<8,3>"),
        fmt("ap_fixed<6,1>"),
        &[31, 31, 31, 31],
        Some((fmt("ap_fixed<8,4>"), 3)),
        fmt("ap_fixed<12,2,AP_TRN,AP_SAT>"),
        fmt("ap_fixed<16,6>"),
    );
    let report = analyze(&model).unwrap();
    let text = report.to_string();
    println!("{text}");
    assert!(report.can_overflow());
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 4, "{text}");
    assert!(lines[2].starts_with("l (acc)") && lines[2].contains("can overflow by 3 bits"));
    assert!(
        lines[3].starts_with("l ") && lines[3].ends_with("safe"),
        "{text}"
    );
}

/// Inputs that maximize (or minimize) every partial sum of a dense layer fed by the input
/// quantizer: each input at the end of its range that its weight's sign favours.
fn witness(model: &Model, maximize: bool) -> Vec<f32> {
    let q = model.layers[0].output;
    let Op::Dense { weight, .. } = &model.layers[1].op else {
        unreachable!()
    };
    let lsb = 2f64.powi(-q.frac_bits() as i32);
    let (lo, hi) = (q.min_code() as f64 * lsb, q.max_code() as f64 * lsb);
    let lo = if q.overflow() == qfx_fixed::Overflow::SatSym && q.is_signed() {
        lo + lsb
    } else {
        lo
    };
    weight
        .codes
        .iter()
        .map(|&w| {
            if (w > 0) == maximize {
                hi as f32
            } else {
                lo as f32
            }
        })
        .collect()
}

#[test]
fn worst_case_inputs_overflow_exactly_when_flagged() {
    let mut rng = Rng::seeded(99);
    let (mut flagged, mut safe) = (0, 0);
    for _ in 0..600 {
        let q = common::random_format(
            &mut rng,
            (2, 8),
            &[qfx_fixed::Overflow::Sat, qfx_fixed::Overflow::SatSym],
        );
        let wf = common::any_format(&mut rng, (1, 6));
        let n = rng.range(1, 6) as usize;
        let weights: Vec<i64> = (0..n).map(|_| rng.code(wf)).collect();
        let bias = rng.coin(50).then(|| {
            let f = common::any_format(&mut rng, (1, 8));
            (f, rng.code(f))
        });
        let acc = random_acc(&mut rng, q.frac_bits() + wf.frac_bits());
        let acc = if acc.width() > 40 {
            fmt("ap_fixed<20,8>")
        } else {
            acc
        };
        let out = common::any_format(&mut rng, (2, 12));
        let model = dense(q, wf, &weights, bias, acc, out);
        let report = analyze(&model).unwrap();
        let layer = &report.layers[1];
        let can = layer.output.can_overflow() || layer.accumulator.as_ref().unwrap().can_overflow();
        let engine = Engine::new(&model).unwrap();
        let hits: Vec<u64> = [true, false]
            .iter()
            .map(|&m| engine.run(&witness(&model, m)).unwrap().overflows[1])
            .collect();
        if can {
            flagged += 1;
            assert!(
                hits.iter().any(|&h| h > 0),
                "flagged but no overflow: {}\n{report}",
                model.to_json()
            );
        } else {
            safe += 1;
            for _ in 0..5 {
                let x = random_input(&mut rng, q, n);
                assert_eq!(
                    engine.run(&x).unwrap().overflows[1],
                    0,
                    "{}",
                    model.to_json()
                );
            }
            assert_eq!(
                hits,
                [0, 0],
                "safe but overflowed: {}\n{report}",
                model.to_json()
            );
        }
    }
    assert!(
        flagged > 100 && safe > 100,
        "{flagged} flagged, {safe} safe"
    );
}

/// Every overflow the engine counts inside a random network (after the input quantizer, whose
/// range the analysis assumes) was predicted by the analysis.
#[test]
fn analysis_is_sound_on_random_models() {
    let mut rng = Rng::seeded(2024);
    let mut predicted = 0;
    for _ in 0..300 {
        let model = random_model(&mut rng);
        let report = analyze(&model).unwrap();
        let engine = Engine::new(&model).unwrap();
        let n = engine.input_len();
        for _ in 0..4 {
            let x = random_input(&mut rng, model.layers[0].output, n);
            let out = engine.run(&x).unwrap();
            for (l, &count) in report.layers.iter().zip(&out.overflows).skip(1) {
                let flagged = l.output.can_overflow()
                    || l.accumulator.as_ref().is_some_and(|a| a.can_overflow());
                assert!(
                    count == 0 || flagged,
                    "layer {} overflowed {count} times unflagged\n{report}\n{}",
                    l.name,
                    model.to_json()
                );
                predicted += (count > 0) as usize;
            }
        }
    }
    assert!(predicted > 100, "only {predicted} overflowing layers seen");
}

/// `input [n] → quantize (q) → op → …`, the op's layer second.
fn unary(q: Format, input: Vec<usize>, op: Op, out: Format) -> Model {
    let layer = |name: &str, input: &str, op, output| Layer {
        name: name.into(),
        inputs: vec![input.into()],
        op,
        output,
    };
    Model {
        version: IR_VERSION,
        name: "unary".into(),
        input_shape: input,
        preprocess: None,
        layers: vec![
            layer("q", INPUT, Op::Quantize, q),
            layer("op", "q", op, out),
        ],
    }
}

/// For the element-wise activations and the table lookup the analysis is exact: on every input
/// code of a narrow format, the engine overflows for some input exactly when the layer is
/// flagged; and average pooling overflows at a window of all-minimum or all-maximum inputs
/// exactly when flagged.
#[test]
fn activations_tables_and_pooling_are_exact() {
    let mut rng = Rng::seeded(31);
    let (mut flagged, mut safe) = (0, 0);
    for case in 0..1000 {
        let q = common::random_format(
            &mut rng,
            (2, 7),
            &[qfx_fixed::Overflow::Sat, qfx_fixed::Overflow::Wrap],
        );
        let out = common::any_format(&mut rng, (2, 6));
        let one = |rng: &mut Rng, w: (i64, i64)| {
            let f = common::any_format(rng, w);
            Codes::new(vec![1], None, vec![f], vec![rng.code(f)])
        };
        let window = rng.range(1, 4) as usize;
        let (op, input) = match case % 6 {
            0 => {
                let bounds = [-3.0, -1.0, -0.25, 0.0, 0.5, 1.0, 2.5];
                let (a, b): (f64, f64) = (rng.pick(&bounds), rng.pick(&bounds));
                (
                    Op::HardTanh {
                        min: a.min(b),
                        max: a.max(b),
                    },
                    vec![1],
                )
            }
            1 => (
                Op::HardSigmoid {
                    alpha: one(&mut rng, (1, 6)),
                    beta: one(&mut rng, (1, 6)),
                },
                vec![1],
            ),
            2 => {
                let n = rng.range(1, 9) as usize;
                let (lo, hi) = out.assignable_range();
                let codes = (0..n)
                    .map(|_| (rng.code(out) as i128).clamp(lo, hi) as i64)
                    .collect();
                let table = Codes::new(vec![n], None, vec![out], codes);
                let op = Op::Lookup {
                    function: "test".into(),
                    table,
                    shift: rng.range(-2, 3) as i32,
                    offset: rng.range(-4, 4),
                };
                (op, vec![1])
            }
            3 => (
                Op::Prelu {
                    slope: one(&mut rng, (1, 6)),
                },
                vec![1],
            ),
            4 => (
                Op::AvgPool1d {
                    kernel: window,
                    stride: None,
                    reciprocal: one(&mut rng, (1, 8)),
                },
                vec![1, window],
            ),
            _ => (
                Op::GlobalAvgPool {
                    reciprocal: one(&mut rng, (1, 8)),
                },
                vec![1, window],
            ),
        };
        let model = unary(q, input, op, out);
        let report = analyze(&model).unwrap();
        let engine = Engine::new(&model).unwrap();
        let lsb = 2f64.powi(-q.frac_bits() as i32);
        let n = engine.input_len();
        let codes: Vec<i64> = if n == 1 {
            (q.min_code() as i64..=q.max_code() as i64).collect()
        } else {
            vec![q.min_code() as i64, q.max_code() as i64]
        };
        let overflowed = codes.iter().any(|&c| {
            let x = vec![(c as f64 * lsb) as f32; n];
            engine.run(&x).unwrap().overflows[1] > 0
        });
        let check = &report.layers[1].output;
        assert!(check.exact, "{}\n{report}", model.to_json());
        assert_eq!(
            check.can_overflow(),
            overflowed,
            "{}\n{report}",
            model.to_json()
        );
        if overflowed {
            flagged += 1;
        } else {
            safe += 1;
        }
    }
    assert!(
        flagged > 150 && safe > 150,
        "{flagged} flagged, {safe} safe"
    );
}
