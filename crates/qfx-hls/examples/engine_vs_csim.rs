//! Integer engine vs compiled C simulation, same network, same inputs, one thread each.
//!
//! `cargo run --release -p qfx-hls --example engine_vs_csim -- [--project DIR] [--samples N]`
//!
//! Without `--project` it benchmarks a CNN shaped like qfx's small CNN (1×28×28 → conv 3×3 16 →
//! BN → ReLU → pool → conv 3×3 32 → BN → ReLU → pool → dense 10) with random 8-bit integer
//! weights and `ap_fixed<8,…>` activations. The C simulation's time is measured inside the
//! testbench process around the inference loop (float → input_t conversion + top function;
//! no compilation, no file I/O); the engine's time around `Engine::run` for the same samples.

use std::path::PathBuf;
use std::time::Instant;

use qfx_hls::{emit, verify_with, VerifyOptions};
use qfx_ir::{AccumulationOrder, Codes, Layer, Model, Op, INPUT, IR_VERSION};

use qfx_testkit::{fmt as f, Rng};

fn codes(rng: &mut Rng, shape: &[usize], format: &str, max: i64) -> Codes {
    let n: usize = shape.iter().product();
    Codes {
        shape: shape.to_vec(),
        axis: None,
        formats: vec![f(format)],
        codes: (0..n)
            .map(|_| (rng.next_u64() % (2 * max as u64 + 1)) as i64 - max)
            .collect(),
        khot: None,
    }
}

fn layer(name: &str, input: &str, op: Op, out: &str) -> Layer {
    Layer {
        name: name.into(),
        inputs: vec![input.into()],
        op,
        output: f(out),
    }
}

fn cnn() -> Model {
    let mut r = Rng::star(1);
    let act = "ap_fixed<8,3,AP_RND,AP_SAT>";
    let relu = "ap_ufixed<8,3,AP_RND,AP_SAT>";
    let conv = |r: &mut Rng, o: usize, i: usize| Op::Conv2d {
        weight: codes(r, &[o, i, 3, 3], "ap_fixed<8,1,AP_RND_CONV,AP_SAT>", 60),
        bias: Some(codes(r, &[o], "ap_fixed<8,3>", 20)),
        stride: 1.into(),
        padding: 1.into(),
        dilation: 1.into(),
        groups: 1,
        accumulator: vec![f("ap_fixed<24,9>")],
        order: AccumulationOrder::BiasThenInputChannelMajor,
    };
    let bn = |r: &mut Rng, c: usize| Op::BatchNorm {
        scale: codes(r, &[c], "ap_fixed<8,2>", 60),
        shift: codes(r, &[c], "ap_fixed<8,3>", 20),
    };
    let layers = vec![
        layer("q", INPUT, Op::Quantize, act),
        layer("conv1", "q", conv(&mut r, 16, 1), act),
        layer("bn1", "conv1", bn(&mut r, 16), act),
        layer("relu1", "bn1", Op::Relu { clip: None }, relu),
        layer(
            "pool1",
            "relu1",
            Op::MaxPool2d {
                kernel: 2.into(),
                stride: None,
            },
            relu,
        ),
        layer("conv2", "pool1", conv(&mut r, 32, 16), act),
        layer("bn2", "conv2", bn(&mut r, 32), act),
        layer("relu2", "bn2", Op::Relu { clip: None }, relu),
        layer(
            "pool2",
            "relu2",
            Op::MaxPool2d {
                kernel: 2.into(),
                stride: None,
            },
            relu,
        ),
        layer("flat", "pool2", Op::Flatten, relu),
        layer(
            "fc",
            "flat",
            Op::Dense {
                weight: codes(
                    &mut r,
                    &[32 * 7 * 7, 10],
                    "ap_fixed<8,1,AP_RND_CONV,AP_SAT>",
                    60,
                ),
                bias: Some(codes(&mut r, &[10], "ap_fixed<8,3>", 20)),
                accumulator: vec![f("ap_fixed<24,9>")],
                order: AccumulationOrder::BiasThenInputChannelMajor,
            },
            "ap_fixed<12,6,AP_RND,AP_SAT>",
        ),
    ];
    Model {
        version: IR_VERSION,
        name: "bench cnn".into(),
        input_shape: vec![1, 28, 28],
        layers,
        preprocess: None,
    }
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let (mut project, mut samples) = (None::<PathBuf>, 200usize);
    while let Some(a) = args.next() {
        match a.as_str() {
            "--project" => project = args.next().map(PathBuf::from),
            "--samples" => samples = args.next().ok_or("--samples N")?.parse()?,
            _ => return Err(format!("unknown argument {a:?}").into()),
        }
    }
    let dir = match project {
        Some(d) => d,
        None => {
            let d = std::env::temp_dir().join(format!("qfx-bench-cnn-{}", std::process::id()));
            emit(&cnn(), &d)?;
            d
        }
    };
    let model = Model::from_json(&std::fs::read_to_string(dir.join(qfx_hls::IR_FILE))?)?;
    let n_in: usize = model.input_shape.iter().product();
    let mut r = Rng::star(7);
    let inputs: Vec<Vec<f32>> = (0..samples)
        .map(|_| {
            (0..n_in)
                .map(|_| ((r.next_u64() >> 40) as f32 / (1u64 << 24) as f32) * 4.0 - 2.0)
                .collect()
        })
        .collect();

    // Engine: prepared once, one thread, best of 3.
    let engine = qfx_engine::Engine::new(&model)?;
    let mut engine_secs = f64::INFINITY;
    for _ in 0..3 {
        let t = Instant::now();
        for x in &inputs {
            std::hint::black_box(engine.run(x)?);
        }
        engine_secs = engine_secs.min(t.elapsed().as_secs_f64());
    }
    let engine_rate = samples as f64 / engine_secs;
    println!(
        "network: {} ({} layers), {samples} samples",
        model.name,
        model.layers.len()
    );
    println!("integer engine (release, 1 thread): {engine_rate:>12.1} inferences/s");
    for opt in ["-O0", "-O2"] {
        let options = VerifyOptions {
            opt: opt.to_string(),
            ..VerifyOptions::default()
        };
        let report = verify_with(&dir, &inputs, &options)?;
        assert_eq!(report.mismatches, 0, "{report}");
        let csim_rate = samples as f64 / report.csim_secs;
        println!(
            "C simulation g++ {opt:<3}:               {csim_rate:>12.1} inferences/s  engine/csim = {:.1}x  (0 mismatches; compile {:.1} s)",
            engine_rate / csim_rate,
            report.compile_secs
        );
    }
    Ok(())
}
