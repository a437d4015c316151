//! Property tests: on random small models (every quantization mode, every overflow mode with
//! `N` up to 2, rounding and exact accumulators, per-channel formats, biases; dense, 2-D and 1-D
//! convolutions with groups, dilation, rectangular kernels, per-axis strides and asymmetric
//! padding; BatchNorm, every activation and table lookups, products, concatenations, residual
//! adds, windowed and global pooling, shortcuts, reshapes), the fast engine equals the literal
//! `Fixed`-only interpreter and the original engine, codes and overflow counts alike.

mod common;

use common::{literal, random_input, random_model, Rng};
use proptest::prelude::*;
use qfx_engine::Engine;

proptest! {
    #![proptest_config(ProptestConfig::with_cases(1000))]

    #[test]
    fn fast_engine_equals_literal_reference(seed in any::<u64>()) {
        let mut rng = Rng::seeded(seed);
        let model = random_model(&mut rng);
        let engine = Engine::new(&model).unwrap();
        let n: usize = model.input_shape.iter().product();
        for _ in 0..4 {
            let input = random_input(&mut rng, model.layers[0].output, n);
            let fast = engine.run(&input).unwrap();
            let (codes, counts) = literal(&model, &input);
            prop_assert_eq!(&fast.output.codes, &codes, "codes; model {}", model.to_json());
            prop_assert_eq!(&fast.overflows, &counts, "overflows; model {}", model.to_json());
            let old = qfx_engine::reference::run(&model, &input).unwrap();
            prop_assert_eq!(&old, &fast);
        }
    }
}

/// Overflow appears in the generated cases often enough for the comparison to mean something.
#[test]
fn random_models_exercise_overflow() {
    let mut rng = Rng::seeded(7);
    let (mut with_overflow, mut total) = (0, 0);
    for _ in 0..200 {
        let model = random_model(&mut rng);
        let n: usize = model.input_shape.iter().product();
        let input = random_input(&mut rng, model.layers[0].output, n);
        let out = qfx_engine::run(&model, &input).unwrap();
        total += 1;
        with_overflow += (out.overflows[1..].iter().sum::<u64>() > 0) as usize;
    }
    assert!(
        with_overflow * 4 > total && with_overflow < total,
        "{with_overflow} of {total} runs overflowed inside the network"
    );
}

/// The batch API equals one-by-one runs, in order, on any number of threads.
#[test]
fn batch_equals_single_runs() {
    let mut rng = Rng::seeded(11);
    for _ in 0..10 {
        let model = random_model(&mut rng);
        let engine = Engine::new(&model).unwrap();
        let n = engine.input_len();
        let input = random_input(&mut rng, model.layers[0].output, n * 7);
        let single: Vec<_> = input.chunks(n).map(|x| engine.run(x).unwrap()).collect();
        for threads in [0, 1, 2, 3, 16] {
            assert_eq!(engine.run_batch(&input, threads).unwrap(), single);
        }
        if n > 1 {
            // A batch that is not a whole number of inputs.
            assert!(engine.run_batch(&input[1..], 2).is_err());
        }
    }
}

#[track_caller]
fn refused(model: &qfx_ir::Model, want: &str) {
    let e = Engine::new(model).unwrap_err().to_string();
    assert!(e.contains(want), "{e}");
    // The original engine does not panic either (it accepts the 65-bit output, truncating).
    let _ = qfx_engine::reference::run(model, &[0.0; 2]);
}

/// Bad models and inputs are errors with a message, never panics.
#[test]
fn bad_models_and_inputs_are_errors() {
    use qfx_ir::{Layer, Model, Op, INPUT, IR_VERSION};
    let layer = |name: &str, inputs: &[&str], op: Op, out: &str| Layer {
        name: name.into(),
        inputs: inputs.iter().map(|s| s.to_string()).collect(),
        op,
        output: common::fmt(out),
    };
    let model = |layers| Model {
        version: IR_VERSION,
        name: "bad".into(),
        input_shape: vec![2],
        preprocess: None,
        layers,
    };
    let q = layer("q", &[INPUT], Op::Quantize, "ap_fixed<8,3>");
    refused(
        &model(vec![
            q.clone(),
            layer("a", &["q", INPUT], Op::Add, "ap_fixed<8,3>"),
        ]),
        "reads the raw input",
    );
    refused(
        &model(vec![layer(
            "r",
            &[INPUT],
            Op::Relu { clip: None },
            "ap_fixed<8,3>",
        )]),
        "reads the raw input",
    );
    refused(
        &model(vec![layer("q", &[INPUT], Op::Quantize, "ap_fixed<65,10>")]),
        "wider than the engine's 64-bit codes",
    );
    let ok = model(vec![q]);
    let engine = Engine::new(&ok).unwrap();
    for (input, want) in [
        (vec![0.0f32; 3], "3 input values"),
        (vec![f32::NAN, 0.0], "non-finite"),
        (vec![f32::INFINITY, 0.0], "non-finite"),
    ] {
        let e = engine.run(&input).unwrap_err().to_string();
        assert!(e.contains(want), "{e}");
        assert!(qfx_engine::float_forward(&ok, &input).is_err());
    }
    assert!(qfx_engine::analyze(&model(vec![layer(
        "r",
        &[INPUT],
        Op::Relu { clip: None },
        "ap_fixed<8,3>"
    )]))
    .is_err());
}

/// The generator reaches every operation, and the general convolution and pooling geometry
/// (groups, dilation, rectangular kernels, per-axis strides, asymmetric padding, windows that
/// are not square or overlap), often enough for the property tests above to mean something.
#[test]
fn random_models_cover_every_operation() {
    use qfx_ir::{Op, Padding, Pair};
    use std::collections::BTreeMap;
    let mut rng = Rng::seeded(5);
    let mut seen: BTreeMap<&str, usize> = BTreeMap::new();
    let mut note = |what: &'static str, yes: bool| *seen.entry(what).or_default() += yes as usize;
    for _ in 0..1000 {
        let model = random_model(&mut rng);
        for l in &model.layers {
            note(l.op.kind(), true);
            match &l.op {
                Op::Conv2d {
                    weight,
                    stride,
                    padding,
                    dilation,
                    groups,
                    ..
                } => {
                    note("conv2d groups > 1", *groups > 1);
                    note("conv2d depthwise", *groups > 1 && weight.shape[1] == 1);
                    note("conv2d dilation > 1", dilation.get() != [1, 1]);
                    note("conv2d rectangular", weight.shape[2] != weight.shape[3]);
                    note(
                        "conv2d stride per axis",
                        matches!(stride, Pair::Each([a, b]) if a != b),
                    );
                    note(
                        "conv2d asymmetric padding",
                        matches!(padding, Padding::Sides([t, b, l, r]) if t != b || l != r),
                    );
                }
                Op::Conv1d {
                    groups, dilation, ..
                } => {
                    note("conv1d groups > 1", *groups > 1);
                    note("conv1d dilation > 1", *dilation > 1);
                }
                Op::MaxPool2d { kernel, stride } | Op::AvgPool2d { kernel, stride, .. } => {
                    note("pool2d rectangular", kernel.get()[0] != kernel.get()[1]);
                    note("pool2d stride", stride.is_some_and(|s| s != *kernel));
                }
                Op::Prelu { slope } => note("prelu one slope", slope.codes.len() == 1),
                Op::Concat => note("concat of three", l.inputs.len() == 3),
                _ => {}
            }
        }
        let graph = model.resolve().unwrap();
        for node in graph.nodes() {
            note(
                "global pooling of a signal",
                matches!(node.op(), Op::GlobalAvgPool { .. } | Op::GlobalMaxPool)
                    && node.x().shape.len() == 2,
            );
        }
    }
    let kinds = [
        "quantize",
        "dense",
        "conv2d",
        "conv1d",
        "batch_norm",
        "relu",
        "hard_tanh",
        "hard_sigmoid",
        "lookup",
        "add",
        "multiply",
        "concat",
        "max_pool2d",
        "max_pool1d",
        "avg_pool2d",
        "avg_pool1d",
        "global_avg_pool",
        "global_max_pool",
        "flatten",
        "reshape",
        "shortcut",
        "sign",
        "prelu",
    ];
    for what in kinds.iter().chain(&[
        "conv2d groups > 1",
        "conv2d depthwise",
        "conv2d dilation > 1",
        "conv2d rectangular",
        "conv2d stride per axis",
        "conv2d asymmetric padding",
        "conv1d groups > 1",
        "conv1d dilation > 1",
        "pool2d rectangular",
        "pool2d stride",
        "prelu one slope",
        "concat of three",
        "global pooling of a signal",
    ]) {
        let n = seen.get(what).copied().unwrap_or(0);
        assert!(
            n >= 20,
            "`{what}` in only {n} of 1000 random models: {seen:?}"
        );
    }
}
