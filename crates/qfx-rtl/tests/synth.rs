//! Yosys on small designs: per-layer counts that add up, DSP slices exactly where the DSP rule
//! puts a multiplier and none for K-hot weights, the saved report, and the estimate next to it.

mod common;

use qfx_fixed::KHot;
use qfx_ir::{AccumulationOrder, Model, Op, INPUT};
use qfx_rtl::{export, synth, ErrorKind, RtlOptions, SynthOptions, SynthReport, SYNTH_FILE};
use qfx_testkit::{fmt, layer, model, random_codes as codes, Rng};

/// A 12-bit input, a 4→3 dense layer with 12-bit weights (K-hot when `khot`), a ReLU.
fn dense12(khot: Option<KHot>) -> Model {
    let mut rng = Rng::seeded(11);
    let mut weight = codes(&mut rng, &[4, 3], None, &["ap_fixed<12,2>"]);
    for c in &mut weight.codes {
        // Non-zero, and K-hot when asked (clear the lowest ones).
        if *c == 0 {
            *c = 77;
        }
        if let Some(k) = khot {
            let neg = *c < 0;
            let mut m = c.unsigned_abs();
            while !k.admits(m as i128) {
                m &= m - 1;
            }
            *c = if neg { -(m as i64) } else { m as i64 };
        }
    }
    weight.khot = khot;
    let layers = vec![
        layer("q", &[INPUT], Op::Quantize, "ap_fixed<12,4,AP_RND,AP_SAT>"),
        layer(
            "fc",
            &["q"],
            Op::Dense {
                weight,
                bias: Some(codes(&mut rng, &[3], None, &["ap_fixed<10,4>"])),
                accumulator: vec![fmt("ap_fixed<30,10>")],
                order: AccumulationOrder::BiasThenInputChannelMajor,
            },
            "ap_fixed<12,6,AP_RND,AP_SAT>",
        ),
        layer(
            "relu",
            &["fc"],
            Op::Relu { clip: None },
            "ap_ufixed<8,4,AP_RND,AP_SAT>",
        ),
    ];
    model("dense12", &[4], layers)
}

fn synthesize(m: &Model, dir: &str) -> Option<(SynthReport, std::path::PathBuf)> {
    let dir = common::work_dir(dir);
    export(m, &dir, &RtlOptions::default(), false).expect("export");
    let report = common::or_skip("synthesis", synth(&dir, &SynthOptions::default()))?;
    println!("{report}");
    Some((report, dir))
}

#[test]
fn multipliers_become_dsps_and_khot_weights_none() {
    let Some((plain, dir)) = synthesize(&dense12(None), "synth-plain") else {
        return;
    };
    assert!(plain.yosys.starts_with("Yosys"), "{}", plain.yosys);
    assert_eq!(plain.family, "xcup");
    let fc = &plain.layers[1];
    assert_eq!((fc.name.as_str(), fc.kind.as_str()), ("fc", "dense"));
    // 12 products of a 12-bit constant and a 12-bit value: one DSP48E2 each.
    assert_eq!(fc.resources.dsp, 12, "{plain}");
    assert_eq!(plain.total.dsp, 12);
    // Registers: 4×12 input bits, 3×12 dense outputs, 3×8 ReLU outputs, 3 valid bits.
    let ffs: Vec<u64> = plain.layers.iter().map(|l| l.resources.ff).collect();
    assert_eq!(ffs, vec![48, 36, 24], "{plain}");
    assert_eq!(plain.top.ff, 3);
    // The totals are the layers plus the top module.
    let sum = |f: &dyn Fn(&qfx_rtl::Resources) -> u64| -> u64 {
        plain.layers.iter().map(|l| f(&l.resources)).sum::<u64>() + f(&plain.top)
    };
    assert_eq!(plain.total.lut, sum(&|r| r.lut));
    assert_eq!(plain.total.ff, sum(&|r| r.ff));
    assert_eq!(plain.total.carry, sum(&|r| r.carry));
    // The saved report reads back, and sits next to the estimate.
    let saved = std::fs::read_to_string(dir.join(SYNTH_FILE)).unwrap();
    assert_eq!(SynthReport::from_json(&saved).unwrap(), plain);
    let cost = qfx_hls::cost::estimate(&dense12(None)).unwrap();
    let table = qfx_rtl::side_by_side(&cost, &plain).unwrap();
    assert!(table.contains("| fc | dense | 12 | 12 |"), "{table}");

    let Some((khot, _)) = synthesize(&dense12(Some(KHot::csd(2))), "synth-khot") else {
        return;
    };
    assert_eq!(khot.total.dsp, 0, "{khot}");
    assert!(khot.layers[1].resources.lut > 0 && khot.layers[1].resources.carry > 0);
    // Another model's synthesis is not shown next to this estimate.
    let other = qfx_hls::cost::estimate(&model(
        "other",
        &[4],
        vec![layer("x", &[INPUT], Op::Quantize, "ap_fixed<8,4>")],
    ))
    .unwrap();
    assert_eq!(
        qfx_rtl::side_by_side(&other, &khot).unwrap_err().kind,
        ErrorKind::BadInput
    );
}

#[test]
fn bad_families_and_folders_are_refused() {
    let dir = common::work_dir("synth-refused");
    let e = synth(&dir, &SynthOptions::default()).unwrap_err();
    assert_eq!(e.kind, ErrorKind::BadInput);
    assert!(e.message.contains("not a qfx Verilog project"), "{e}");
    export(&dense12(None), &dir, &RtlOptions::default(), false).unwrap();
    let e = synth(
        &dir,
        &SynthOptions {
            family: "xc9000; rm -rf /".into(),
        },
    )
    .unwrap_err();
    assert_eq!(e.kind, ErrorKind::BadInput);
    assert!(e.message.contains("unknown family"), "{e}");
}
