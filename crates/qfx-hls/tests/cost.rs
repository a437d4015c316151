//! The resource estimate on small IRs computed by hand, and the K-hot declaration on codes.

use qfx_fixed::KHot;
use qfx_hls::cost::{estimate, estimate_with, CostModel, LayerCost};
use qfx_ir::{AccumulationOrder, Codes, Layer, Model, Op, INPUT, IR_VERSION};

use qfx_testkit::fmt;

fn model(input_shape: Vec<usize>, input: &str, layer: Op, output: &str) -> Model {
    qfx_testkit::one_layer(&input_shape, fmt(input), layer, fmt(output))
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
        stride: 1.into(),
        padding: 1.into(),
        dilation: 1.into(),
        groups: 1,
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

/// One constant `[1]` of `f` with `code`.
fn scalar(f: &str, code: i64) -> Codes {
    Codes::new(vec![1], None, vec![fmt(f)], vec![code])
}

#[test]
fn grouped_dilated_convolutions_count_their_group_inputs() {
    use qfx_ir::{Padding, Pair};
    // Depthwise [4, 1, 2, 3] on [4, 5, 5], dilation 2 × 1, stride 2 × 1, padding [0, 1, 1, 1]:
    // rows (5 + 1 − 3) / 2 + 1 = 2, columns (5 + 2 − 3) + 1 = 5; 6 terms per output.
    let mut codes = vec![3i64; 24];
    codes[0] = 0; // one pruned product in channel 0
    let op = Op::Conv2d {
        weight: Codes::new(vec![4, 1, 2, 3], None, vec![fmt("ap_fixed<6,2>")], codes),
        bias: Some(Codes::new(
            vec![4],
            None,
            vec![fmt("ap_fixed<8,3>")],
            vec![1; 4],
        )),
        stride: Pair::Each([2, 1]),
        padding: Padding::Sides([0, 1, 1, 1]),
        dilation: Pair::Each([2, 1]),
        groups: 4,
        accumulator: vec![fmt("ap_fixed<18,8>")],
        order: AccumulationOrder::default(),
    };
    let c = layer(&model(vec![4, 5, 5], "ap_fixed<8,3>", op, "ap_fixed<8,4>"));
    assert_eq!((c.macs, c.bops), (4 * 6 * 10, 4 * 6 * 10 * 48));
    assert_eq!((c.lut_mults, c.dsp), (23, 0));
    // Per output channel: the bias and its non-zero products, minus one.
    assert_eq!(adders(&c), vec![(5 + 3 * 6, 18)]);
    // The same as a 1-D convolution of height 1.
    let op = Op::Conv1d {
        weight: Codes::new(vec![2, 2, 3], None, vec![fmt("ap_fixed<6,2>")], vec![1; 12]),
        bias: None,
        stride: 2,
        padding: [1, 0],
        dilation: 2,
        groups: 2,
        accumulator: vec![fmt("ap_fixed<18,8>")],
        order: AccumulationOrder::default(),
    };
    // Length (9 + 1 − 5) / 2 + 1 = 3; 2 channels × 3 taps per output, all shifts (code 1).
    let c = layer(&model(vec![4, 9], "ap_fixed<8,3>", op, "ap_fixed<8,4>"));
    assert_eq!((c.macs, c.shifts, c.lut_mults), (2 * 6 * 3, 12, 0));
    assert_eq!(adders(&c), vec![(2 * 5, 18)]);
}

#[test]
fn pooling_activations_tables_and_products() {
    use qfx_ir::Pair;
    let x = "ap_fixed<8,3>";
    // Max pooling 2 × 3 on [3, 4, 6]: 5 comparators per channel.
    let op = Op::MaxPool2d {
        kernel: Pair::Each([2, 3]),
        stride: None,
    };
    let c = layer(&model(vec![3, 4, 6], x, op, x));
    assert_eq!((adders(&c), c.lut), (vec![(15, 8)], 120));
    // Global max pooling of a signal [2, 5]: 4 comparators per channel.
    let c = layer(&model(vec![2, 5], x, Op::GlobalMaxPool, x));
    assert_eq!(adders(&c), vec![(8, 8)]);
    // Average pooling of 4 values on [2, 8]: a 10-bit sum and a reciprocal product per channel.
    let op = Op::AvgPool1d {
        kernel: 4,
        stride: None,
        reciprocal: scalar("ap_ufixed<8,0>", 3),
    };
    let c = layer(&model(vec![2, 8], x, op, x));
    assert_eq!((c.macs, c.bops, c.lut_mults), (4, 4 * 80, 2));
    assert_eq!(adders(&c), vec![(2, 10)]);
    // Hard tanh: two comparators per lane (channel of a signal).
    let op = Op::HardTanh {
        min: -1.0,
        max: 1.0,
    };
    assert_eq!(adders(&layer(&model(vec![3, 4], x, op, x))), vec![(6, 8)]);
    // Hard sigmoid on 12-bit inputs, alpha 12 bits (a DSP per lane), alpha·x + beta 25 bits.
    let op = Op::HardSigmoid {
        alpha: scalar("ap_fixed<12,1>", 3),
        beta: scalar("ap_fixed<8,1>", 1),
    };
    let c = layer(&model(vec![5], "ap_fixed<12,4>", op, x));
    assert_eq!((c.macs, c.dsp_mults, c.dsp), (5, 5, 5));
    assert_eq!(adders(&c), vec![(15, 25)]);
    // A table of 16 8-bit codes is a 128-bit ROM: 2 LUTs per lane.
    let op = Op::Lookup {
        function: "tanh".into(),
        table: Codes::new(vec![16], None, vec![fmt(x)], vec![0; 16]),
        shift: 2,
        offset: 0,
    };
    let c = layer(&model(vec![3, 4], x, op, x));
    assert_eq!((c.lut, c.macs, c.dsp), (6, 0, 0));
    // A leaky ReLU's one slope is one product per channel.
    let op = Op::Prelu {
        slope: scalar("ap_fixed<12,1>", 3),
    };
    let c = layer(&model(vec![3, 2, 2], "ap_fixed<12,4>", op, x));
    assert_eq!((c.macs, c.dsp_mults), (12, 3));
    // Reshape and concatenation are wires.
    let op = Op::Reshape { shape: vec![6, 2] };
    let c = layer(&model(vec![3, 4], x, op, x));
    assert_eq!((c.macs, c.lut, c.dsp), (0, 0, 0));
}

#[test]
fn products_of_two_tensors_are_full_multipliers() {
    let q = |name: &str, f: &str| Layer {
        name: name.into(),
        inputs: vec![INPUT.into()],
        op: Op::Quantize,
        output: fmt(f),
    };
    let m = Model {
        version: IR_VERSION,
        name: "mul".into(),
        input_shape: vec![3, 2, 2],
        preprocess: None,
        layers: vec![
            q("a", "ap_fixed<12,4>"),
            q("b", "ap_fixed<12,4>"),
            Layer {
                name: "mul".into(),
                inputs: vec!["a".into(), "b".into()],
                op: Op::Multiply,
                output: fmt("ap_fixed<8,4>"),
            },
            Layer {
                name: "cat".into(),
                inputs: vec!["a".into(), "mul".into()],
                op: Op::Concat,
                output: fmt("ap_fixed<8,4>"),
            },
        ],
    };
    let report = estimate(&m).unwrap();
    let c = &report.layers[2];
    // One 12 × 12 multiplier per channel (a DSP each), 12 products per inference.
    assert_eq!((c.macs, c.bops, c.dsp_mults, c.dsp), (12, 12 * 144, 3, 3));
    assert_eq!(report.layers[3].lut, 0);
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
