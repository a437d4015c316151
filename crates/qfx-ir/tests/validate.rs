//! IR documents: round trip, and a clear error for each kind of inconsistency.

use qfx_ir::{AccumulationOrder, Codes, Layer, Model, Op, INPUT, IR_VERSION};

use qfx_testkit::fmt;

fn tiny() -> Model {
    Model {
        version: IR_VERSION,
        name: "tiny".into(),
        input_shape: vec![1, 4, 4],
        preprocess: None,
        layers: vec![
            Layer {
                name: "q".into(),
                inputs: vec![INPUT.into()],
                op: Op::Quantize,
                output: fmt("ap_fixed<8,3>"),
            },
            Layer {
                name: "conv".into(),
                inputs: vec!["q".into()],
                op: Op::Conv2d {
                    weight: Codes {
                        shape: vec![2, 1, 3, 3],
                        axis: Some(0),
                        formats: vec![fmt("ap_fixed<4,1>"), fmt("ap_fixed<4,2>")],
                        codes: (0..18).map(|i| (i % 7) - 3).collect(),
                        khot: None,
                    },
                    bias: None,
                    stride: 1,
                    padding: 1,
                    accumulator: vec![fmt("ap_fixed<20,8>")],
                    order: AccumulationOrder::default(),
                },
                output: fmt("ap_fixed<8,4,AP_RND,AP_SAT>"),
            },
            Layer {
                name: "relu".into(),
                inputs: vec!["conv".into()],
                op: Op::Relu { clip: None },
                output: fmt("ap_ufixed<8,4>"),
            },
            Layer {
                name: "flat".into(),
                inputs: vec!["relu".into()],
                op: Op::Flatten,
                output: fmt("ap_ufixed<8,4>"),
            },
        ],
    }
}

#[test]
fn op_kind_is_the_json_tag() {
    let m = tiny();
    let doc: serde_json::Value = serde_json::from_str(&m.to_json()).unwrap();
    for (layer, json) in m.layers.iter().zip(doc["layers"].as_array().unwrap()) {
        assert_eq!(json["op"]["kind"], layer.op.kind(), "{}", layer.name);
    }
}

#[test]
fn round_trip_and_shapes() {
    let m = tiny();
    assert_eq!(m.resolve().unwrap().output().shape, [32]);
    let json = m.to_json();
    assert!(
        json.contains("\"ap_fixed<4,1>\""),
        "formats are written in C++ spelling"
    );
    assert_eq!(Model::from_json(&json).unwrap(), m);
}

#[track_caller]
fn refused(m: &Model, fragment: &str) {
    let err = Model::from_json(&m.to_json()).unwrap_err().to_string();
    assert!(err.contains(fragment), "`{err}` lacks `{fragment}`");
}

#[test]
fn inconsistent_documents_are_refused() {
    let mut m = tiny();
    m.version = IR_VERSION + 1;
    refused(&m, "newer than this qfx understands");

    let mut m = tiny();
    m.layers[2].inputs = vec!["nope".into()];
    refused(&m, "input `nope` is not an earlier layer");

    let mut m = tiny();
    m.layers[1].name = "q".into();
    refused(&m, "duplicate");

    let mut m = tiny();
    if let Op::Conv2d { weight, .. } = &mut m.layers[1].op {
        weight.codes[0] = 100;
    }
    refused(&m, "code 100 at 0 does not fit ap_fixed<4,1>");

    let mut m = tiny();
    if let Op::Conv2d { weight, .. } = &mut m.layers[1].op {
        weight.codes.pop();
    }
    refused(&m, "17 codes for shape [2, 1, 3, 3]");

    // Per-input-channel weight formats: the HLS emitter gives each output channel one weight
    // format, so the IR allows formats along the output axis only.
    let mut m = tiny();
    if let Op::Conv2d { weight, .. } = &mut m.layers[1].op {
        weight.axis = Some(1);
        weight.formats = vec![fmt("ap_fixed<4,1>")];
    }
    refused(&m, "one per output channel (axis 0)");

    let mut m = tiny();
    m.input_shape = vec![3, 4, 4];
    refused(&m, "does not fit weight");

    let mut m = tiny();
    m.input_shape = vec![1, 0, 4];
    refused(&m, "input shape [1, 0, 4] is empty");

    let mut m = tiny();
    m.input_shape = vec![1, usize::MAX / 2, 4];
    refused(&m, "too large");

    let mut m = tiny();
    m.layers[3].output = fmt("ap_fixed<8,4>");
    refused(&m, "output format must be its input's");

    let mut m = tiny();
    m.layers[2].op = Op::Prelu {
        slope: Codes::new(vec![3], None, vec![fmt("ap_fixed<6,1>")], vec![1, 2, 3]),
    };
    refused(&m, "slope must be [2]");
    m.layers[2].op = Op::Prelu {
        slope: Codes::new(vec![2], None, vec![fmt("ap_fixed<6,1>")], vec![1, 2]),
    };
    assert!(Model::from_json(&m.to_json()).is_ok());

    let err = Model::from_json("{\"version\": 1, \"name\": 3}")
        .unwrap_err()
        .to_string();
    assert!(err.contains("invalid model IR"), "{err}");
    let err = Model::from_json("not json").unwrap_err().to_string();
    assert!(err.contains("not a model document"), "{err}");
}
