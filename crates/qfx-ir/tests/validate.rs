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
                    stride: 1.into(),
                    padding: 1.into(),
                    dilation: 1.into(),
                    groups: 1,
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
    refused(
        &m,
        "reads 1 channels per group; the input has 3 per group (3 channels, 1 groups)",
    );

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

/// One layer of every operation version 3 added (and the generalized convolution and pooling),
/// with shapes worked out by hand in [`every_new_op_has_its_shape`].
fn every_new_op() -> Model {
    use qfx_ir::{Padding, Pair};
    use qfx_testkit::{layer, model};
    let a = "ap_fixed<8,3>";
    let c = |shape: &[usize], f: &str| {
        let n = shape.iter().product();
        Codes::new(shape.to_vec(), None, vec![fmt(f)], vec![1; n])
    };
    let conv = Op::Conv2d {
        weight: c(&[4, 1, 2, 3], "ap_fixed<4,1>"),
        bias: None,
        stride: Pair::Each([2, 1]),
        padding: Padding::Sides([1, 0, 2, 1]),
        dilation: Pair::Each([1, 2]),
        groups: 2,
        accumulator: vec![fmt("ap_fixed<16,6>")],
        order: AccumulationOrder::default(),
    };
    let conv1d = Op::Conv1d {
        weight: c(&[2, 4, 3], "ap_fixed<4,1>"),
        bias: Some(c(&[2], "ap_fixed<6,2>")),
        stride: 2,
        padding: [1, 0],
        dilation: 2,
        groups: 1,
        accumulator: vec![fmt("ap_fixed<16,6>")],
        order: AccumulationOrder::default(),
    };
    let reciprocal = || c(&[1], "ap_ufixed<8,0>");
    let table = Codes::new(vec![5], None, vec![fmt(a)], vec![-3, -1, 0, 1, 3]);
    let layers = vec![
        layer("q", &[INPUT], Op::Quantize, a),
        layer("conv", &["q"], conv, a),
        layer(
            "mp",
            &["conv"],
            Op::MaxPool2d {
                kernel: Pair::Each([2, 3]),
                stride: Some(Pair::Both(1)),
            },
            a,
        ),
        layer(
            "ap",
            &["conv"],
            Op::AvgPool2d {
                kernel: Pair::Both(2),
                stride: None,
                reciprocal: reciprocal(),
            },
            a,
        ),
        layer("gmp", &["conv"], Op::GlobalMaxPool, a),
        layer("mul", &["conv", "conv"], Op::Multiply, a),
        layer("cat", &["conv", "mul", "conv"], Op::Concat, a),
        layer("sig", &["conv"], Op::Reshape { shape: vec![4, 12] }, a),
        layer("c1", &["sig"], conv1d, a),
        layer(
            "mp1",
            &["c1"],
            Op::MaxPool1d {
                kernel: 2,
                stride: Some(1),
            },
            a,
        ),
        layer(
            "ap1",
            &["c1"],
            Op::AvgPool1d {
                kernel: 3,
                stride: None,
                reciprocal: reciprocal(),
            },
            a,
        ),
        layer(
            "gap",
            &["sig"],
            Op::GlobalAvgPool {
                reciprocal: reciprocal(),
            },
            a,
        ),
        layer(
            "ht",
            &["gap"],
            Op::HardTanh {
                min: -1.0,
                max: 0.5,
            },
            a,
        ),
        layer(
            "hs",
            &["ht"],
            Op::HardSigmoid {
                alpha: c(&[1], "ap_fixed<6,0>"),
                beta: c(&[1], "ap_fixed<6,1>"),
            },
            a,
        ),
        layer(
            "lut",
            &["hs"],
            Op::Lookup {
                function: "tanh".into(),
                table,
                shift: -2,
                offset: 3,
            },
            a,
        ),
        layer(
            "leaky",
            &["conv"],
            Op::Prelu {
                slope: c(&[1], "ap_fixed<6,0>"),
            },
            a,
        ),
    ];
    model("every op", &[2, 6, 5], layers)
}

#[test]
fn every_new_op_has_its_shape() {
    let m = every_new_op();
    let graph = m.resolve().unwrap();
    let shapes: Vec<(&str, Vec<usize>)> = graph
        .nodes()
        .iter()
        .map(|n| (n.layer.name.as_str(), n.shape.clone()))
        .collect();
    // conv: rows (6 + 1 + 0 − 2) / 2 + 1 = 3; columns: a kernel of 3 with dilation 2 spans 5,
    // (5 + 2 + 1 − 5) / 1 + 1 = 4. conv1d: 12 + 1 + 0 padded, span 5, stride 2: 5.
    let want: Vec<(&str, Vec<usize>)> = vec![
        ("q", vec![2, 6, 5]),
        ("conv", vec![4, 3, 4]),
        ("mp", vec![4, 2, 2]),
        ("ap", vec![4, 1, 2]),
        ("gmp", vec![4]),
        ("mul", vec![4, 3, 4]),
        ("cat", vec![12, 3, 4]),
        ("sig", vec![4, 12]),
        ("c1", vec![2, 5]),
        ("mp1", vec![2, 4]),
        ("ap1", vec![2, 1]),
        ("gap", vec![4]),
        ("ht", vec![4]),
        ("hs", vec![4]),
        ("lut", vec![4]),
        ("leaky", vec![4, 3, 4]),
    ];
    assert_eq!(shapes.len(), want.len());
    for ((name, got), (wname, want)) in shapes.iter().zip(&want) {
        assert_eq!((name, got), (wname, want));
    }
}

#[test]
fn every_new_op_round_trips() {
    let m = every_new_op();
    let json = m.to_json();
    assert_eq!(Model::from_json(&json).unwrap(), m);
    // Defaults stay out of the document: no dilation or groups of 1, no stride = window.
    let doc: serde_json::Value = serde_json::from_str(&json).unwrap();
    let op = |i: usize| &doc["layers"][i]["op"];
    assert_eq!(op(1)["stride"], serde_json::json!([2, 1]));
    assert_eq!(op(1)["padding"], serde_json::json!([1, 0, 2, 1]));
    assert_eq!(op(1)["groups"], 2);
    assert!(op(3).get("stride").is_none() && op(8).get("groups").is_none());
    // A version-2 convolution (one stride, one padding) reads as the same layer.
    let v2 = json.replace("\"version\": 3", "\"version\": 2");
    assert!(Model::from_json(&v2).is_ok());
    let m = tiny();
    let Op::Conv2d {
        stride, padding, ..
    } = &m.layers[1].op
    else {
        unreachable!()
    };
    let text = m.to_json();
    assert!(
        text.contains("\"stride\": 1,") && text.contains("\"padding\": 1,"),
        "{text}"
    );
    assert_eq!((stride.get(), padding.get()), ([1, 1], [1; 4]));
}

/// `m` is refused with a message naming `layer` and containing `fragment`.
#[track_caller]
fn refuses(m: &Model, layer: &str, fragment: &str) {
    let err = m.validate().unwrap_err().to_string();
    let named = format!("layer `{layer}`: ");
    assert!(
        err.contains(&named) && err.contains(fragment),
        "`{err}` lacks `{named}` or `{fragment}`"
    );
}

/// Replaces layer `name`'s operation (and inputs, when given).
fn with(name: &str, inputs: Option<&[&str]>, op: Op) -> Model {
    let mut m = every_new_op();
    let l = m.layers.iter_mut().find(|l| l.name == name).unwrap();
    l.op = op;
    if let Some(inputs) = inputs {
        l.inputs = inputs.iter().map(|s| s.to_string()).collect();
    }
    m
}

fn conv_of(m: &Model) -> Op {
    m.layers[1].op.clone()
}

#[test]
fn bad_new_ops_are_refused_naming_the_layer() {
    use qfx_ir::{Padding, Pair};
    let base = every_new_op();
    let conv = |f: &dyn Fn(&mut Op)| {
        let mut op = conv_of(&base);
        f(&mut op);
        with("conv", None, op)
    };
    let set = |op: &mut Op, s: Pair, p: Padding, d: Pair, g: usize| {
        if let Op::Conv2d {
            stride,
            padding,
            dilation,
            groups,
            ..
        } = op
        {
            (*stride, *padding, *dilation, *groups) = (s, p, d, g);
        }
    };
    let ok = (
        Pair::Each([2, 1]),
        Padding::Sides([1, 0, 2, 1]),
        Pair::Each([1, 2]),
    );
    let cases: Vec<(Model, &str, &str)> = vec![
        (
            conv(&|op| set(op, Pair::Each([0, 1]), ok.1, ok.2, 2)),
            "conv",
            "kernel, stride and dilation must be positive",
        ),
        (
            conv(&|op| set(op, ok.0, ok.1, Pair::Both(0), 2)),
            "conv",
            "kernel, stride and dilation must be positive",
        ),
        (
            conv(&|op| set(op, ok.0, ok.1, Pair::Each([1, 9]), 2)),
            "conv",
            "the kernel spans 19 values, more than the 8 of the padded input",
        ),
        (
            conv(&|op| set(op, ok.0, Padding::All(usize::MAX), ok.2, 2)),
            "conv",
            "is too large",
        ),
        (
            conv(&|op| set(op, ok.0, ok.1, ok.2, 3)),
            "conv",
            "3 groups must divide the 2 input and 4 output channels",
        ),
        (
            conv(&|op| set(op, ok.0, ok.1, ok.2, 0)),
            "conv",
            "0 groups must divide",
        ),
        (
            conv(&|op| set(op, ok.0, ok.1, ok.2, 1)),
            "conv",
            "weight [4, 1, 2, 3] reads 1 channels per group; the input has 2 per group",
        ),
        (
            conv(&|op| {
                if let Op::Conv2d { weight, .. } = op {
                    weight.shape = vec![4, 1, 6];
                }
            }),
            "conv",
            "conv2d weight must be [out, in/groups, kh, kw]",
        ),
        (
            {
                let mut m = every_new_op();
                if let Op::Conv1d { groups, .. } = &mut m.layers[8].op {
                    *groups = 2;
                }
                m
            },
            "c1",
            "weight [2, 4, 3] reads 4 channels per group; the input has 2 per group",
        ),
        (
            {
                let mut m = every_new_op();
                m.layers[8].inputs = vec!["conv".into()];
                m
            },
            "c1",
            "conv1d input must be [c, length], is [4, 3, 4]",
        ),
        (
            with(
                "mp",
                None,
                Op::MaxPool2d {
                    kernel: Pair::Each([4, 1]),
                    stride: None,
                },
            ),
            "mp",
            "bad pooling window 4 (stride 4) for an input of 3",
        ),
        (
            with(
                "mp1",
                None,
                Op::MaxPool1d {
                    kernel: 2,
                    stride: Some(0),
                },
            ),
            "mp1",
            "bad pooling window 2 (stride 0)",
        ),
        (
            with(
                "mp1",
                None,
                Op::MaxPool2d {
                    kernel: Pair::Both(1),
                    stride: None,
                },
            ),
            "mp1",
            "2-D pooling input must be [c, h, w], is [2, 5]",
        ),
        (
            with("ht", None, Op::GlobalMaxPool),
            "ht",
            "global pooling input must be [c, length] or [c, h, w], is [4]",
        ),
        (
            with("cat", Some(&["conv", "mp"]), Op::Concat),
            "cat",
            "concatenates [4, 3, 4] and [4, 2, 2]: all but the channel axis must agree",
        ),
        (
            with("cat", Some(&["conv"]), Op::Concat),
            "cat",
            "takes 2 or more inputs, has 1",
        ),
        (
            with("mul", Some(&["conv", "mp"]), Op::Multiply),
            "mul",
            "combines shapes [4, 3, 4] and [4, 2, 2]",
        ),
        (
            with("sig", None, Op::Reshape { shape: vec![5, 10] }),
            "sig",
            "cannot reshape [4, 3, 4] into [5, 10]",
        ),
        (
            with("ht", None, Op::HardTanh { min: 1.0, max: 0.5 }),
            "ht",
            "bounds [1, 0.5] are not finite and ordered",
        ),
        (
            with(
                "ht",
                None,
                Op::HardTanh {
                    min: f64::NAN,
                    max: 0.5,
                },
            ),
            "ht",
            "not finite and ordered",
        ),
        (
            with(
                "hs",
                None,
                Op::HardSigmoid {
                    alpha: Codes::new(vec![2], None, vec![fmt("ap_fixed<4,1>")], vec![1, 1]),
                    beta: Codes::new(vec![1], None, vec![fmt("ap_fixed<4,1>")], vec![1]),
                },
            ),
            "hs",
            "alpha must be a single constant",
        ),
        (
            with(
                "leaky",
                None,
                Op::Prelu {
                    slope: Codes::new(vec![3], None, vec![fmt("ap_fixed<4,1>")], vec![1; 3]),
                },
            ),
            "leaky",
            "slope must be [4] or [1]",
        ),
    ];
    for (m, layer, fragment) in cases {
        refuses(&m, layer, fragment);
    }
    // Lookup tables: shape, format, codes, shift.
    let lut = |f: &dyn Fn(&mut Codes, &mut i32)| {
        let mut m = every_new_op();
        let l = m.layers.iter_mut().find(|l| l.name == "lut").unwrap();
        if let Op::Lookup { table, shift, .. } = &mut l.op {
            f(table, shift);
        }
        m
    };
    refuses(
        &lut(&|t, _| t.shape = vec![1, 5]),
        "lut",
        "the table must be [n] with one format",
    );
    refuses(
        &lut(&|t, _| t.formats = vec![fmt("ap_fixed<8,2>")]),
        "lut",
        "the table's format ap_fixed<8,2> must be the output format ap_fixed<8,3>",
    );
    refuses(
        &lut(&|_, s| *s = -127),
        "lut",
        "shift -127 is beyond ±126 bits",
    );
    refuses(
        &lut(&|t, _| t.codes[1] = 1000),
        "lut",
        "table: code 1000 at 1 does not fit ap_fixed<8,3>",
    );
    let mut m = lut(&|t, _| {
        t.formats = vec![fmt("ap_fixed<8,3,AP_TRN,AP_SAT_SYM>")];
        t.codes[0] = -128;
    });
    m.layers
        .iter_mut()
        .find(|l| l.name == "lut")
        .unwrap()
        .output = fmt("ap_fixed<8,3,AP_TRN,AP_SAT_SYM>");
    refuses(&m, "lut", "table code -128 at 0 is not a value of");
}
