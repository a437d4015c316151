//! The resource estimate on small IRs computed by hand, and the K-hot declaration on codes.

use qfx_fixed::KHot;
use qfx_hls::cost::{estimate, estimate_with, CostModel, LayerCost};
use qfx_ir::{AccumulationOrder, Codes, Layer, Model, Op, INPUT, IR_VERSION};

use qfx_testkit::fmt;

fn model(input_shape: Vec<usize>, input: &str, layer: Op, output: &str) -> Model {
    Model {
        version: IR_VERSION,
        name: "cost".into(),
        input_shape,
        preprocess: None,
        layers: vec![
            Layer {
                name: "q".into(),
                inputs: vec![INPUT.into()],
                op: Op::Quantize,
                output: fmt(input),
            },
            Layer {
                name: "l".into(),
                inputs: vec!["q".into()],
                op: layer,
                output: fmt(output),
            },
        ],
    }
}

/// Dense `[3, 2]` with the given weight format and codes, a bias, one accumulator format.
fn dense(w: &str, x: &str, codes: Vec<i64>, khot: Option<KHot>) -> Model {
    let mut weight = Codes::new(vec![3, 2], None, vec![fmt(w)], codes);
    weight.khot = khot;
    let op = Op::Dense {
        weight,
        bias: Some(Codes::new(
            vec![2],
            None,
            vec![fmt("ap_fixed<8,4>")],
            vec![1, 0],
        )),
        accumulator: vec![fmt("ap_fixed<16,6>")],
        order: AccumulationOrder::default(),
    };
    model(vec![3], x, op, "ap_fixed<8,4>")
}

/// The estimate with the counting model's unit costs (1 LUT per adder bit, ½ per
/// partial-product bit), so the LUT figures below are counts checked by hand.
#[track_caller]
fn layer(m: &Model) -> LayerCost {
    estimate_with(m, &CostModel::unit())
        .expect("valid model")
        .layers[1]
        .clone()
}

/// `(count, width)` pairs of a layer's adders.
fn adders(c: &LayerCost) -> Vec<(u64, u32)> {
    c.adders.iter().map(|(&w, &n)| (n, w)).collect()
}

#[test]
fn dense_in_fabric() {
    // w = [[3, 0], [-5, 2], [1, 7]] (row-major [in, out]), 4-bit weights, 8-bit inputs.
    let m = dense(
        "ap_fixed<4,1>",
        "ap_fixed<8,3>",
        vec![3, 0, -5, 2, 1, 7],
        None,
    );
    let c = layer(&m);
    assert_eq!((c.macs, c.bops), (6, 6 * 4 * 8));
    // 3, −5, 7: full multipliers (4 ≤ 10 bits: fabric); 2 and 1: shifts; 0: pruned.
    assert_eq!(
        (c.dsp_mults, c.lut_mults, c.khot_mults, c.shifts),
        (0, 3, 0, 2)
    );
    // Output 0: bias + 3 products = 3 adders; output 1: bias + 2 products = 2 adders.
    assert_eq!(adders(&c), vec![(5, 16)]);
    // 3 multipliers × 32 partial-product bits × 0.5 + 5 adders × 16 bits.
    assert_eq!((c.dsp, c.lut), (0, 48 + 80));
    assert_eq!(layer(&m).name, "l");
}

#[test]
fn dense_on_dsps_and_khot_dense_without() {
    let codes = vec![3, 0, -6, 4, 5, 1];
    let plain = dense("ap_fixed<16,2>", "ap_fixed<16,4>", codes.clone(), None);
    let c = layer(&plain);
    assert_eq!((c.dsp_mults, c.dsp, c.shifts), (3, 3, 2));
    assert_eq!(c.bops, 6 * 256);

    let khot = dense(
        "ap_fixed<16,2>",
        "ap_fixed<16,4>",
        codes,
        Some(KHot::binary(2)),
    );
    let c = layer(&khot);
    assert_eq!((c.dsp_mults, c.lut_mults, c.dsp), (0, 0, 0));
    // 3, −6, 5 have two ones: one 32-bit adder each; 4 and 1 are shifts.
    assert_eq!((c.khot_mults, c.shifts), (3, 2));
    assert_eq!(adders(&c), vec![(5, 16), (3, 32)]);
    assert_eq!(c.lut, 5 * 16 + 3 * 32);
    assert_eq!(c.bops, 6 * 256, "BOPs do not depend on the multiplier kind");
    let total = estimate(&khot).unwrap();
    assert_eq!(total.dsp(), 0);
    let table = total.to_string();
    assert!(
        table.contains("total") && table.contains("3×32b"),
        "{table}"
    );
}

#[test]
fn conv_counts_hardware_once_and_work_per_position() {
    // [2, 1, 3, 3]: channel 0 all 3s (12 × 12 bits: one DSP each), channel 1 a single 4.
    let mut codes = vec![3i64; 9];
    codes.extend([0, 0, 0, 0, 4, 0, 0, 0, 0]);
    let op = Op::Conv2d {
        weight: Codes::new(vec![2, 1, 3, 3], None, vec![fmt("ap_fixed<12,2>")], codes),
        bias: None,
        stride: 1,
        padding: 1,
        accumulator: vec![fmt("ap_fixed<24,8>")],
        order: AccumulationOrder::default(),
    };
    let m = model(vec![1, 4, 4], "ap_fixed<12,3>", op, "ap_fixed<8,4>");
    let c = layer(&m);
    // 16 output positions × 18 products.
    assert_eq!((c.macs, c.bops), (288, 288 * 144));
    assert_eq!((c.dsp_mults, c.dsp, c.shifts), (9, 9, 1));
    // Channel 0 sums 9 products (8 adders), channel 1 one product (none).
    assert_eq!(adders(&c), vec![(8, 24)]);
    assert_eq!(c.lut, 8 * 24);
}

#[test]
fn dsp_rule() {
    let m = CostModel::default();
    assert_eq!(
        m.dsp_for(10, 24),
        0,
        "an operand of ≤ 10 bits goes to fabric"
    );
    assert_eq!(m.dsp_for(11, 11), 1);
    assert_eq!(m.dsp_for(27, 18), 1);
    assert_eq!(m.dsp_for(18, 27), 1);
    assert_eq!(m.dsp_for(28, 18), 2);
    assert_eq!(m.dsp_for(30, 20), 4);
}

#[test]
fn batch_norm_with_khot_scales() {
    let mut scale = Codes::new(vec![2], None, vec![fmt("ap_fixed<12,2>")], vec![6, 7]);
    scale.khot = Some(KHot::csd(2)); // 6 = 4 + 2, 7 = 8 − 1
    let op = Op::BatchNorm {
        scale,
        shift: Codes::new(vec![2], None, vec![fmt("ap_fixed<8,3>")], vec![1, -1]),
    };
    let m = model(vec![2, 3, 3], "ap_fixed<12,4>", op, "ap_fixed<8,4>");
    let c = layer(&m);
    assert_eq!((c.macs, c.khot_mults, c.dsp), (18, 2, 0));
    // Two 24-bit shift-add adders; two sums of ap_fixed<24,6> and ap_fixed<8,3>: 25 bits.
    assert_eq!(adders(&c), vec![(2, 24), (2, 25)]);
}

#[test]
fn prelu_slopes_full_and_khot_and_sign_free() {
    // Three channels of 12-bit slopes on 12-bit inputs: 3 (one 2-hot shift-add), 4 (a shift),
    // 5 (2-hot); undeclared, the first and last need one DSP each.
    let op = |khot| {
        let mut slope = Codes::new(vec![3], None, vec![fmt("ap_fixed<12,1>")], vec![3, 4, 5]);
        slope.khot = khot;
        Op::Prelu { slope }
    };
    let full = layer(&model(
        vec![3, 2, 2],
        "ap_fixed<12,4>",
        op(None),
        "ap_fixed<8,4>",
    ));
    assert_eq!((full.macs, full.bops), (12, 12 * 144));
    assert_eq!((full.dsp_mults, full.dsp, full.shifts), (2, 2, 1));
    let khot = layer(&model(
        vec![3, 2, 2],
        "ap_fixed<12,4>",
        op(Some(KHot::binary(2))),
        "ap_fixed<8,4>",
    ));
    assert_eq!((khot.khot_mults, khot.dsp), (2, 0));
    assert_eq!(adders(&khot), vec![(2, 24)]);
    let sign = layer(&model(
        vec![3, 2, 2],
        "ap_fixed<12,4>",
        Op::Sign,
        "ap_int<2>",
    ));
    assert_eq!((sign.macs, sign.dsp, sign.lut), (0, 0, 0));
}

#[test]
fn khot_declaration_is_validated_and_optional() {
    let ok = dense(
        "ap_fixed<8,2>",
        "ap_fixed<8,3>",
        vec![3, 0, -6, 4, 5, 1],
        Some(KHot::binary(2)),
    );
    let json = ok.to_json();
    assert!(json.contains("\"khot\""), "{json}");
    assert_eq!(Model::from_json(&json).unwrap(), ok);
    // Documents without the field read as unconstrained.
    let plain = dense("ap_fixed<8,2>", "ap_fixed<8,3>", vec![0; 6], None);
    assert!(!plain.to_json().contains("khot"));

    let bad = dense(
        "ap_fixed<8,2>",
        "ap_fixed<8,3>",
        vec![3, 0, -7, 4, 5, 1],
        Some(KHot::binary(2)),
    );
    let e = Model::from_json(&bad.to_json()).unwrap_err().to_string();
    assert!(
        e.contains("code -7 at 2 has 3 non-zero digits") && e.contains("2-hot (binary)"),
        "{e}"
    );
    // In CSD, 7 = 8 − 1 has two digits.
    let csd = dense(
        "ap_fixed<8,2>",
        "ap_fixed<8,3>",
        vec![3, 0, -7, 4, 5, 1],
        Some(KHot::csd(2)),
    );
    assert!(Model::from_json(&csd.to_json()).is_ok());
    let zero_k = dense(
        "ap_fixed<8,2>",
        "ap_fixed<8,3>",
        vec![0; 6],
        Some(KHot::binary(0)),
    );
    let e = Model::from_json(&zero_k.to_json()).unwrap_err().to_string();
    assert!(e.contains("K ≥ 1"), "{e}");
}

#[test]
fn the_default_model_is_the_calibrated_one() {
    use qfx_hls::cost::{CALIBRATED_LUT_PER_ADDER_BIT, CALIBRATED_LUT_PER_MULT_BIT};
    let m = dense(
        "ap_fixed<4,1>",
        "ap_fixed<8,3>",
        vec![3, 0, -5, 2, 1, 7],
        None,
    );
    let c = &estimate(&m).unwrap().layers[1];
    // The same counts as `dense_in_fabric`: 96 partial-product bits, 80 adder bits.
    let want = 96.0 * CALIBRATED_LUT_PER_MULT_BIT + 80.0 * CALIBRATED_LUT_PER_ADDER_BIT;
    assert_eq!(c.lut, want.ceil() as u64);
    assert_eq!(
        CostModel::default().fabric_max_bits,
        CostModel::unit().fabric_max_bits
    );
}
