//! What the Verilog back end refuses, with a message naming the layer and the operation, and
//! writing nothing; and what the generator reports about the sums it built. No tools needed.

mod common;

use qfx_ir::{AccumulationOrder, Codes, Model, Op, INPUT};
use qfx_rtl::{export, generate, Architecture, ErrorKind, RtlOptions};
use qfx_testkit::{fmt, layer, model, random_codes as codes, Rng};

fn dense(weight: Codes, acc: &str) -> Op {
    Op::Dense {
        weight,
        bias: None,
        accumulator: vec![fmt(acc)],
        order: AccumulationOrder::BiasThenInputChannelMajor,
    }
}

#[test]
fn formats_wider_than_64_bits_are_refused_naming_the_layer() {
    let mut rng = Rng::seeded(1);
    let m = model(
        "wide",
        &[3],
        vec![
            layer("q", &[INPUT], Op::Quantize, "ap_fixed<8,3>"),
            layer(
                "fc wide",
                &["q"],
                dense(
                    codes(&mut rng, &[3, 2], None, &["ap_fixed<8,2>"]),
                    "ap_fixed<70,20>",
                ),
                "ap_fixed<8,3>",
            ),
        ],
    );
    let dir = common::work_dir("refused-wide");
    let e = export(&m, &dir, &RtlOptions::default(), false).unwrap_err();
    assert_eq!(e.kind, ErrorKind::Unsupported);
    assert!(
        e.message.contains("layer `fc wide` (dense)") && e.message.contains("64 bits"),
        "{e}"
    );
    assert!(!dir.exists(), "an unsupported model writes nothing");
}

/// A 3×64×64 image through a 16-channel 3×3 convolution.
fn big_conv() -> Model {
    let mut rng = Rng::seeded(2);
    model(
        "big",
        &[3, 64, 64],
        vec![
            layer("q", &[INPUT], Op::Quantize, "ap_fixed<8,3>"),
            layer(
                "conv",
                &["q"],
                Op::Conv2d {
                    weight: codes(&mut rng, &[16, 3, 3, 3], None, &["ap_fixed<6,1>"]),
                    bias: None,
                    stride: 1.into(),
                    padding: 1.into(),
                    dilation: 1.into(),
                    groups: 1,
                    accumulator: vec![fmt("ap_fixed<20,8>")],
                    order: AccumulationOrder::BiasThenInputChannelMajor,
                },
                "ap_fixed<8,3>",
            ),
        ],
    )
}

#[test]
fn a_convolution_too_large_to_unroll_is_refused_and_streams_instead() {
    let m = big_conv();
    let unrolled = RtlOptions {
        architecture: Architecture::Unrolled,
        ..RtlOptions::default()
    };
    let e = generate(&m, &unrolled).unwrap_err();
    assert_eq!(e.kind, ErrorKind::Unsupported);
    assert!(
        e.message.contains("layer `conv` (conv2d)") && e.message.contains("stream"),
        "{e}"
    );
    // The default builds it as a stream: one window of hardware, a 66×66 padded grid.
    let d = generate(&m, &RtlOptions::default()).unwrap();
    assert_eq!(d.timing.architecture, Architecture::Stream);
    assert_eq!((d.timing.input_beats, d.timing.output_beats), (4096, 4096));
    assert_eq!(d.timing.frame_cycles, 66 * 66 + 8);
    assert_eq!(d.timing.latency, None);
    assert_eq!(d.layers[1].sum.as_ref().unwrap().reassociated, 16);
}

#[test]
fn streaming_needs_an_image_input() {
    let mut rng = Rng::seeded(3);
    let m = model(
        "flat",
        &[4],
        vec![
            layer("q", &[INPUT], Op::Quantize, "ap_fixed<8,3>"),
            layer(
                "fc",
                &["q"],
                dense(
                    codes(&mut rng, &[4, 2], None, &["ap_fixed<6,1>"]),
                    "ap_fixed<20,8>",
                ),
                "ap_fixed<8,3>",
            ),
        ],
    );
    let stream = RtlOptions {
        architecture: Architecture::Stream,
        ..RtlOptions::default()
    };
    let e = generate(&m, &stream).unwrap_err();
    assert_eq!(e.kind, ErrorKind::Unsupported);
    assert!(e.message.contains("[c, h, w]"), "{e}");
    // Unrolled by default: latency 2 (input register, dense register).
    assert_eq!(generate(&m, &RtlOptions::default()).unwrap().latency, 2);
}

#[test]
fn sums_are_reassociated_only_where_the_ir_allows_it() {
    let mut rng = Rng::seeded(4);
    let w = codes(&mut rng, &[8, 4], None, &["ap_fixed<6,1>"]);
    // Exact grid (F = 5 + 5) and wrapping: reassociated, shared.
    // Exact grid, saturating, but too narrow not to overflow: in the IR's order.
    // Rounding (F = 6 < 10): in the IR's order.
    let cases = [
        ("ap_fixed<20,10>", true),
        ("ap_fixed<20,10,AP_TRN,AP_SAT>", true),
        ("ap_fixed<12,2,AP_TRN,AP_SAT>", false),
        ("ap_fixed<12,6,AP_RND,AP_WRAP>", false),
    ];
    for (acc, reassociated) in cases {
        let m = model(
            "sums",
            &[8],
            vec![
                layer("q", &[INPUT], Op::Quantize, "ap_fixed<8,3>"),
                layer("fc", &["q"], dense(w.clone(), acc), "ap_fixed<8,3>"),
            ],
        );
        let d = generate(&m, &RtlOptions::default()).unwrap();
        let s = d.layers[1].sum.clone().unwrap();
        assert_eq!(
            (s.reassociated, s.in_order),
            if reassociated { (4, 0) } else { (0, 4) },
            "{acc}"
        );
        if reassociated {
            assert!(s.adders < s.adders_plain, "{acc}: {s:?}");
        }
    }
}

#[test]
fn hostile_names_stay_out_of_the_code() {
    let mut rng = Rng::seeded(5);
    let names = [
        "q\n endmodule module evil(); //",
        "fc */ `define x 1",
        "relu $display(\"hi\");",
    ];
    let m = model(
        "\"); $finish; //\nmodule",
        &[4],
        vec![
            layer(names[0], &[INPUT], Op::Quantize, "ap_fixed<8,3>"),
            layer(
                names[1],
                &[names[0]],
                dense(
                    codes(&mut rng, &[4, 3], None, &["ap_fixed<6,1>"]),
                    "ap_fixed<20,8>",
                ),
                "ap_fixed<8,3>",
            ),
            layer(
                names[2],
                &[names[1]],
                Op::Relu { clip: None },
                "ap_ufixed<8,3>",
            ),
        ],
    );
    let dir = common::work_dir("hostile-names");
    export(&m, &dir, &RtlOptions::default(), false).unwrap();
    let v = std::fs::read_to_string(dir.join(qfx_rtl::VERILOG_FILE)).unwrap();
    // Names appear only percent-encoded inside `//` comments (no newline can end one) and as
    // `l<index>_<letters and digits>` identifiers: no code outside a comment carries them.
    for line in v.lines() {
        let code = line.split("//").next().unwrap_or("");
        for bad in ["module evil", "`define", "$display", "$finish", "*/"] {
            assert!(!code.contains(bad), "{bad} reached the code: {line}");
        }
        if let Some(comment) = line.split_once("//").map(|(_, c)| c) {
            assert!(!comment.contains('\n') && !comment.contains("*/"), "{line}");
        }
    }
    assert!(v.contains("module l0_q_endmodule_module_evil ("));
    common::or_skip(
        "Yosys parse",
        qfx_rtl::yosys_reads(&dir.join(qfx_rtl::VERILOG_FILE)),
    );
}

#[test]
fn operations_the_back_end_does_not_build_are_refused_naming_the_layer() {
    let m = model(
        "tanh",
        &[4],
        vec![
            layer("q", &[INPUT], Op::Quantize, "ap_fixed<8,3>"),
            layer(
                "clip it",
                &["q"],
                Op::HardTanh {
                    min: -1.0,
                    max: 1.0,
                },
                "ap_fixed<8,3>",
            ),
        ],
    );
    let dir = common::work_dir("refused-hard-tanh");
    let e = export(&m, &dir, &RtlOptions::default(), false).unwrap_err();
    assert_eq!(e.kind, ErrorKind::Unsupported);
    assert!(
        e.message.contains("layer `clip it` (hard_tanh)")
            && e.message.contains("does not build hard_tanh layers yet"),
        "{e}"
    );
    assert!(!dir.exists(), "an unsupported model writes nothing");
}
