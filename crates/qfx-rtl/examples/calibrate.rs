//! Calibrates the resource estimate (`qfx_hls::cost`) against Yosys: builds single Dense layers
//! of several sizes, widths and K values and whole jet-tagging-shaped MLPs (random weights,
//! seeded), exports each as Verilog, synthesizes it (`synth_xilinx -family xcup`), and fits the
//! cost model's two LUT coefficients (per adder bit, per fabric-multiplier partial-product bit)
//! to the measured LUTs by least squares on log(estimate / measurement). Prints every design,
//! the fit, and the median and worst ratio.
//!
//! Usage: `calibrate OUT_DIR [--only NAME_PART] [PROJECT...]` (bench/rtl_calibrate.sh runs it).
//! Synthesized designs are kept in OUT_DIR and reused when the IR is unchanged. Each PROJECT is
//! a Verilog project already synthesized by `qfx synth` (its `model.ir.json` and `synth.json`),
//! e.g. the trained networks of bench/rtl_results.sh, added to the fit as they are.

use std::path::{Path, PathBuf};

use qfx_fixed::{Format, KHot, KHotQuantizer};
use qfx_hls::cost::{estimate_with, CostModel};
use qfx_ir::{AccumulationOrder, Codes, Layer, Model, Op, INPUT};
use qfx_rtl::{export, synth, RtlOptions, SynthOptions, SynthReport, IR_FILE, SYNTH_FILE};
use qfx_testkit::{model, Rng};

/// One design: its model.
struct Case {
    name: String,
    model: Model,
}

/// Weight codes of `[n_in, n_out]` in `f`: uniform reals projected onto K-hot codes (CSD), or
/// uniform codes when `k` is `None`; never all-zero rows.
fn weights(rng: &mut Rng, n_in: usize, n_out: usize, f: Format, k: Option<u32>) -> Codes {
    let n = n_in * n_out;
    let mut codes = Vec::with_capacity(n);
    let q = k.map(|k| KHotQuantizer::new(f, KHot::csd(k)).expect("a K-hot format"));
    let scale = f.max_code() as f64 * 2f64.powi(-(f.frac_bits() as i32));
    for _ in 0..n {
        let c = match &q {
            Some(q) => q.project_code(rng.uniform() * 2.0 * scale - scale).0,
            None => rng.uniform_code(f),
        };
        codes.push(c);
    }
    Codes {
        khot: k.map(KHot::csd),
        ..Codes::new(vec![n_in, n_out], None, vec![f], codes)
    }
}

/// A dense layer reading `input` (format `xf`), weights `W`-bit, exact wrapping accumulator.
fn dense(
    rng: &mut Rng,
    (name, input): (&str, &str),
    xf: Format,
    (n_in, n_out): (usize, usize),
    w: u32,
    k: Option<u32>,
) -> Layer {
    // Saturating rounding, as the K-hot projection needs (the mode does not change products).
    let wf: Format = format!("ap_fixed<{w},1,AP_RND,AP_SAT>").parse().unwrap();
    let acc_frac = xf.frac_bits() + wf.frac_bits();
    let acc_w = xf.width() + w + (usize::BITS - n_in.leading_zeros()) + 1;
    let acc = Format::signed(acc_w, acc_w as i32 - acc_frac as i32).unwrap();
    let bf = Format::signed(w + 2, 3).unwrap();
    let bias = Codes::new(
        vec![n_out],
        None,
        vec![bf],
        (0..n_out).map(|_| rng.uniform_code(bf)).collect(),
    );
    let out = format!("ap_fixed<{w},{},AP_RND,AP_SAT>", 3 + w / 4);
    Layer {
        name: name.into(),
        inputs: vec![input.into()],
        op: Op::Dense {
            weight: weights(rng, n_in, n_out, wf, k),
            bias: Some(bias),
            accumulator: vec![acc],
            order: AccumulationOrder::BiasThenInputChannelMajor,
        },
        output: out.parse().unwrap(),
    }
}

fn input_format(w: u32) -> Format {
    format!("ap_fixed<{w},3,AP_RND,AP_SAT>").parse().unwrap()
}

/// A single dense layer `n_in → n_out` at width `w`.
fn single(n_in: usize, n_out: usize, w: u32, k: Option<u32>) -> Case {
    let mut rng = Rng::seeded((n_in * 1000 + n_out * 10 + w as usize) as u64);
    let xf = input_format(w);
    let layers = vec![
        Layer {
            name: "q".into(),
            inputs: vec![INPUT.into()],
            op: Op::Quantize,
            output: xf,
        },
        dense(&mut rng, ("fc", "q"), xf, (n_in, n_out), w, k),
    ];
    let kname = k.map_or("plain".to_string(), |k| format!("{k}hot"));
    Case {
        name: format!("dense{n_in}x{n_out}-w{w}-{kname}"),
        model: model("dense", &[n_in], layers),
    }
}

/// The jet-tagging-shaped MLP 16-64-32-32-5 with ReLUs, width `w`.
fn jet_mlp(w: u32, k: Option<u32>) -> Case {
    let mut rng = Rng::seeded(100 + w as u64);
    let xf = input_format(w);
    let relu: Format = format!("ap_ufixed<{w},3,AP_RND,AP_SAT>").parse().unwrap();
    let mut layers = vec![Layer {
        name: "q".into(),
        inputs: vec![INPUT.into()],
        op: Op::Quantize,
        output: xf,
    }];
    let sizes = [16, 64, 32, 32, 5];
    let mut prev = ("q".to_string(), xf);
    for i in 0..4 {
        let name = format!("fc{}", i + 1);
        layers.push(dense(
            &mut rng,
            (&name, &prev.0),
            prev.1,
            (sizes[i], sizes[i + 1]),
            w,
            k,
        ));
        if i < 3 {
            let r = format!("relu{}", i + 1);
            layers.push(Layer {
                name: r.clone(),
                inputs: vec![name],
                op: Op::Relu { clip: None },
                output: relu,
            });
            prev = (r, relu);
        }
    }
    let kname = k.map_or("plain".to_string(), |k| format!("{k}hot"));
    Case {
        name: format!("jet-mlp-w{w}-{kname}"),
        model: model("jet mlp", &[16], layers),
    }
}

fn cases() -> Vec<Case> {
    let mut v = Vec::new();
    for (n_in, n_out) in [(16, 8), (32, 16)] {
        for (w, k) in [
            (4, None),
            (6, None),
            (8, None),
            (12, None),
            (8, Some(1)),
            (8, Some(2)),
            (8, Some(3)),
            (12, Some(2)),
        ] {
            v.push(single(n_in, n_out, w, k));
        }
    }
    for w in [6, 12] {
        for k in [None, Some(1), Some(2), Some(3)] {
            v.push(jet_mlp(w, k));
        }
    }
    v
}

/// Exports and synthesizes `case` into `dir`, reusing an earlier result of the same IR.
fn measure(case: &Case, dir: &Path) -> SynthReport {
    let same = std::fs::read_to_string(dir.join(IR_FILE))
        .ok()
        .and_then(|t| Model::from_json(&t).ok())
        .is_some_and(|m| m == case.model);
    if same {
        if let Ok(t) = std::fs::read_to_string(dir.join(SYNTH_FILE)) {
            if let Ok(r) = SynthReport::from_json(&t) {
                return r;
            }
        }
    }
    export(&case.model, dir, &RtlOptions::default(), true).expect("export");
    synth(dir, &SynthOptions::default()).expect("synthesis")
}

/// Adder bits and fabric-multiplier bits of the estimate (the two terms its LUTs weigh).
fn features(m: &Model) -> (f64, f64, u64) {
    let only = |a: f64, b: f64| CostModel {
        lut_per_adder_bit: a,
        lut_per_mult_bit: b,
        ..CostModel::default()
    };
    let adders: u64 = estimate_with(m, &only(1.0, 0.0))
        .unwrap()
        .layers
        .iter()
        .map(|l| l.adder_bits())
        .sum();
    let big = 1e6;
    let mults = estimate_with(m, &only(0.0, big)).unwrap().lut() as f64 / big;
    let dsp = estimate_with(m, &CostModel::default()).unwrap().dsp();
    (adders as f64, mults.round(), dsp)
}

/// Σ ln²(estimate / measurement).
fn loss(a: f64, b: f64, rows: &[(f64, f64, f64)]) -> f64 {
    rows.iter()
        .map(|&(ad, mu, meas)| {
            let est = (a * ad + b * mu).max(1.0);
            (est / meas).ln().powi(2)
        })
        .sum()
}

/// The least-squares fit of (per adder bit, per multiplier bit) on a log grid, then refined.
fn fit(rows: &[(f64, f64, f64)]) -> (f64, f64) {
    let mut best = (1.0, 0.5, f64::INFINITY);
    let grid = |lo: f64, hi: f64, i: usize, n: usize| lo * (hi / lo).powf(i as f64 / n as f64);
    for i in 0..=200 {
        let a = grid(0.05, 8.0, i, 200);
        for j in 0..=200 {
            let b = if j == 0 {
                0.0
            } else {
                grid(0.005, 8.0, j - 1, 199)
            };
            let l = loss(a, b, rows);
            if l < best.2 {
                best = (a, b, l);
            }
        }
    }
    // Refine around the best point.
    let (mut a, mut b) = (best.0, best.1);
    let mut step = 0.05;
    while step > 1e-5 {
        let mut moved = false;
        for (da, db) in [(1.0, 0.0), (-1.0, 0.0), (0.0, 1.0), (0.0, -1.0)] {
            let (na, nb) = (
                (a * (1.0 + da * step)).max(1e-4),
                (b * (1.0 + db * step)).max(0.0),
            );
            if loss(na, nb, rows) < loss(a, b, rows) {
                (a, b) = (na, nb);
                moved = true;
            }
        }
        if !moved {
            step /= 2.0;
        }
    }
    (a, b)
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    let n = v.len();
    if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    }
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let out = PathBuf::from(
        args.first()
            .map_or("target/rtl-calibration", String::as_str),
    );
    let mut filter = String::new();
    let mut projects: Vec<PathBuf> = Vec::new();
    let mut rest = args.iter().skip(1);
    while let Some(a) = rest.next() {
        if a == "--only" {
            filter = rest.next().cloned().unwrap_or_default();
        } else {
            projects.push(PathBuf::from(a));
        }
    }
    let mut cases: Vec<Case> = cases()
        .into_iter()
        .filter(|c| c.name.contains(&filter))
        .collect();
    let mut done: Vec<Option<SynthReport>> = vec![None; cases.len()];
    for p in &projects {
        let read = |f: &str| std::fs::read_to_string(p.join(f)).expect("a synthesized project");
        let model = Model::from_json(&read(IR_FILE)).expect("a model IR");
        let report = SynthReport::from_json(&read(SYNTH_FILE)).expect("a synthesis report");
        let name = p
            .parent()
            .and_then(|q| q.file_name())
            .map_or("project".to_string(), |n| {
                format!("trained {}", n.to_string_lossy())
            });
        cases.push(Case { name, model });
        done.push(Some(report));
    }
    let default = CostModel::default();
    let mut rows = Vec::new();
    let mut table = Vec::new();
    for (case, done) in cases.iter().zip(done) {
        let start = std::time::Instant::now();
        let r = done.unwrap_or_else(|| measure(case, &out.join(&case.name)));
        let (adders, mults, dsp) = features(&case.model);
        let est_default = estimate_with(&case.model, &default).unwrap().lut();
        eprintln!(
            "{}: {} LUT, {} FF, {} DSP measured ({:.0} s)",
            case.name,
            r.total.lut,
            r.total.ff,
            r.total.dsp,
            start.elapsed().as_secs_f64()
        );
        rows.push((adders, mults, r.total.lut as f64));
        table.push((case.name.clone(), adders, mults, est_default, dsp, r));
    }
    let (a, b) = fit(&rows);
    let ratios: Vec<f64> = rows
        .iter()
        .map(|&(ad, mu, meas)| meas / (a * ad + b * mu).max(1.0))
        .collect();
    let ratios_default: Vec<f64> = rows
        .iter()
        .map(|&(ad, mu, meas)| {
            meas / (default.lut_per_adder_bit * ad + default.lut_per_mult_bit * mu).max(1.0)
        })
        .collect();
    println!(
        "| design | adder bits | mult. bits | est. LUT (before) | est. LUT (calibrated) | LUT (Yosys) | \
         meas./calibrated | est. DSP | DSP | FF | CARRY |"
    );
    println!("|---|---|---|---|---|---|---|---|---|---|---|");
    for ((name, ad, mu, est0, dsp, r), ratio) in table.iter().zip(&ratios) {
        println!(
            "| {name} | {ad} | {mu} | {est0} | {:.0} | {} | {ratio:.2} | {dsp} | {} | {} | {} |",
            a * ad + b * mu,
            r.total.lut,
            r.total.dsp,
            r.total.ff,
            r.total.carry
        );
    }
    let worst = |v: &[f64]| v.iter().map(|&r| r.max(1.0 / r)).fold(0.0, f64::max);
    println!();
    println!(
        "{} designs. Calibrated: lut_per_adder_bit = {a:.3}, lut_per_mult_bit = {b:.3}.",
        rows.len()
    );
    println!(
        "measured / estimated LUT: calibrated median {:.2}, worst {:.2}x off; before ({}, {}) \
         median {:.2}, worst {:.2}x off",
        median(ratios.clone()),
        worst(&ratios),
        default.lut_per_adder_bit,
        default.lut_per_mult_bit,
        median(ratios_default.clone()),
        worst(&ratios_default)
    );
}
