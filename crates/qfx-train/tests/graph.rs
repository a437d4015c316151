//! Layer-graph descriptions: what a user writes is refused, before anything is built, with a
//! message that names the layer and the problem; what is valid resolves to the shapes it
//! implies, in TOML and JSON alike; per-layer quantization overrides reach the right layers.

use burn::tensor::{Device, Distribution, Tensor};
use qfx_train::graph::{GraphSpec, Layer};
use qfx_train::layers::QuantConfig;
use qfx_train::models::ModelConfig;
use qfx_train::Calibration;

fn spec(toml_text: &str) -> Result<GraphSpec, String> {
    toml::from_str::<GraphSpec>(toml_text).map_err(|e| e.to_string())
}

/// `layers` (TOML inline tables, one per line) after `input`.
fn graph(input: &str, layers: &[&str]) -> String {
    format!("input = {input}\nlayers = [\n{}\n]\n", layers.join(",\n"))
}

#[track_caller]
fn refused(input: &str, layers: &[&str], fragments: &[&str]) {
    let text = graph(input, layers);
    let err = match spec(&text) {
        Err(e) => e,
        Ok(s) => match s.resolve() {
            Err(e) => e.to_string(),
            Ok(_) => panic!("accepted:\n{text}"),
        },
    };
    for f in fragments {
        assert!(err.contains(f), "`{f}` not in: {err}");
    }
}

#[test]
fn errors_name_the_layer_and_the_problem() {
    refused(
        "[16]",
        &[r#"{ name = "fc1", op = "dense", unit = 4 }"#],
        &["layer `fc1`", "unknown field `unit`"],
    );
    refused(
        "[16]",
        &[r#"{ name = "x", op = "densee", units = 4 }"#],
        &["layer `x`", "unknown variant `densee`"],
    );
    refused(
        "[16]",
        &[r#"{ name = "fc", op = "dense" }"#],
        &["layer `fc`", "missing field `units`"],
    );
    refused(
        "[1, 8, 8]",
        &[
            r#"{ name = "conv", op = "conv2d", filters = 4, kernel = 3 }"#,
            r#"{ name = "fc", op = "dense", units = 2 }"#,
        ],
        &["layer `fc`", "dense reads a vector", "[4, 6, 6]", "flatten"],
    );
    refused(
        "[1, 8, 8]",
        &[
            r#"{ name = "a", op = "conv2d", filters = 4, kernel = 3 }"#,
            r#"{ name = "b", op = "conv2d", filters = 4, kernel = 3, padding = 1, inputs = ["input"] }"#,
            r#"{ name = "sum", op = "add", inputs = ["a", "b"] }"#,
        ],
        &["layer `sum`", "[4, 6, 6]", "[4, 8, 8]"],
    );
    refused(
        "[16]",
        &[
            r#"{ name = "fc1", op = "dense", units = 4, inputs = ["fc2"] }"#,
            r#"{ name = "fc2", op = "dense", units = 4, inputs = ["fc1"] }"#,
        ],
        &["layer `fc1`", "`fc2`", "comes later", "cycle"],
    );
    refused(
        "[16]",
        &[r#"{ name = "fc1", op = "dense", units = 4, inputs = ["nowhere"] }"#],
        &["layer `fc1`", "`nowhere`", "not a layer"],
    );
    refused(
        "[16]",
        &[
            r#"{ name = "fc", op = "dense", units = 4 }"#,
            r#"{ name = "fc", op = "relu" }"#,
        ],
        &["layer `fc`", "unique"],
    );
    refused(
        "[16]",
        &[
            r#"{ name = "fc", op = "dense", units = 4 }"#,
            r#"{ name = "sm", op = "softmax" }"#,
        ],
        &["layer `sm`", "softmax", "argmax"],
    );
    refused(
        "[16]",
        &[r#"{ name = "sum", op = "add" }"#],
        &["layer `sum`", "2 input(s), 1 given"],
    );
    refused(
        "[0, 4]",
        &[r#"{ name = "q", op = "quantize" }"#],
        &["input shape"],
    );
    refused(
        "[1, 4, 4]",
        &[r#"{ name = "conv", op = "conv2d", filters = 2, kernel = 5 }"#],
        &["layer `conv`", "the kernel spans 5 values, more than the 4"],
    );
}

#[test]
fn a_valid_description_resolves_in_toml_and_json() {
    let text = graph(
        "[16]",
        &[
            r#"{ name = "fc1", op = "dense", units = 64 }"#,
            r#"{ name = "bn1", op = "batch_norm" }"#,
            r#"{ name = "act1", op = "relu" }"#,
            r#"{ name = "fc2", op = "dense", units = 5 }"#,
        ],
    );
    let from_toml = spec(&text).unwrap();
    let json = serde_json::to_string(&from_toml).unwrap();
    let from_json: GraphSpec = serde_json::from_str(&json).unwrap();
    assert_eq!(from_json, from_toml);
    let g = from_toml.resolve().unwrap();
    // An input quantizer is put in front of a graph that does not start with one.
    let names: Vec<&str> = g.nodes.iter().map(|n| n.name.as_str()).collect();
    assert_eq!(names, ["input_q", "fc1", "bn1", "act1", "fc2"]);
    let shapes: Vec<&[usize]> = g.nodes.iter().map(|n| &n.shape[..]).collect();
    assert_eq!(shapes, [&[16][..], &[64], &[64], &[64], &[5]]);
    assert_eq!(g.nodes[1].sources, [Some(0)]);
}

#[test]
fn overrides_reach_the_layers_they_name() {
    let text = graph(
        "[1, 8, 8]",
        &[
            r#"{ name = "conv1", op = "conv2d", filters = 2, kernel = 3, padding = 1 }"#,
            r#"{ name = "conv2", op = "conv2d", filters = 2, kernel = 3, padding = 1 }"#,
            r#"{ name = "flat", op = "flatten" }"#,
            r#"{ name = "head", op = "dense", units = 3 }"#,
        ],
    );
    let model = ModelConfig::Graph(spec(&text).unwrap());
    let quant: QuantConfig = toml::from_str(
        r#"
        bits = 4
        [[overrides]]
        layers = "conv*"
        bits = 6
        [[overrides]]
        layers = "head"
        weight_bits = 8
        "#,
    )
    .unwrap();
    let device = Device::flex();
    let mut net = model.init(&quant, &[1, 8, 8], &device).unwrap();
    net.calibrate(
        Tensor::<4>::random([4, 1, 8, 8], Distribution::Normal(0.0, 1.0), &device),
        Calibration::MaxAbs,
    );
    let widths: Vec<(u32, u32)> = net
        .layers
        .iter()
        .filter_map(|l| match l {
            Layer::Conv2d(c) => Some((c.wq.spec.width, c.out.spec.width)),
            Layer::Dense(d) => Some((d.wq.spec.width, d.out.spec.width)),
            _ => None,
        })
        .collect();
    assert_eq!(widths, [(6, 6), (6, 6), (8, 4)]);

    let typo = QuantConfig {
        overrides: vec![qfx_train::layers::QuantOverride {
            layers: "conv3*".into(),
            bits: Some(6),
            ..Default::default()
        }],
        ..QuantConfig::default()
    };
    let err = model
        .init(&typo, &[1, 8, 8], &device)
        .unwrap_err()
        .to_string();
    assert!(err.contains("`conv3*` matches no layer"), "{err}");
    assert!(err.contains("conv1, conv2"), "{err}");

    let wrong_input = model
        .init(&QuantConfig::default(), &[1, 28, 28], &device)
        .unwrap_err()
        .to_string();
    assert!(wrong_input.contains("samples are 1×28×28"), "{wrong_input}");
    assert!(wrong_input.contains("input is 1×8×8"), "{wrong_input}");
}

#[test]
fn globs_match_names() {
    use qfx_train::layers::glob_matches;
    for (pattern, name, want) in [
        ("conv*", "conv1", true),
        ("conv*", "conv", true),
        ("conv*", "xconv1", false),
        ("*bn", "block1_bn", true),
        ("block?_bn", "block1_bn", true),
        ("block?_bn", "block12_bn", false),
        ("fc1", "fc1", true),
        ("fc1", "fc10", false),
        ("*", "anything", true),
    ] {
        assert_eq!(glob_matches(pattern, name), want, "{pattern} vs {name}");
    }
}

#[test]
fn a_run_configuration_takes_a_graph() {
    let text = r#"
        [model]
        kind = "graph"
        input = [16]
        layers = [
          { name = "fc1", op = "dense", units = 64 },
          { name = "bn1", op = "batch_norm" },
          { name = "act1", op = "relu" },
          { name = "fc2", op = "dense", units = 5 },
        ]
        [quant]
        bits = 4
    "#;
    let config = qfx_train::config::RunConfig::from_toml(text).unwrap();
    let ModelConfig::Graph(g) = &config.model else {
        panic!("{:?}", config.model)
    };
    assert_eq!(g.layers.len(), 4);
    assert_eq!(config.classes(), 5);
    // It writes back as a configuration that reads the same.
    let again = qfx_train::config::RunConfig::from_toml(&config.to_toml()).unwrap();
    assert_eq!(again, config);
    let err = qfx_train::config::RunConfig::from_toml(
        &text.replace("units = 64", "units = 64, colour = 3"),
    )
    .unwrap_err()
    .to_string();
    assert!(
        err.contains("layer `fc1`") && err.contains("colour"),
        "{err}"
    );
}

/// Checkpoints name tensors by module path; the renaming of old checkpoints relies on
/// `GraphModel::module_path` spelling them as burn does.
#[test]
fn module_paths_are_the_checkpoint_names() {
    let config = ModelConfig::Bnn {
        in_channels: 1,
        widths: [2, 2, 4],
        blocks_per_stage: 1,
        stem_stride: 2,
        classes: 3,
    };
    let model = config
        .init(&QuantConfig::default(), &[1, 8, 8], &Device::flex())
        .unwrap();
    let names: Vec<String> = qfx_train::optim::module_tensors(&model)
        .into_iter()
        .map(|t| t.name)
        .collect();
    for (i, node) in model.graph.nodes.iter().enumerate() {
        let path = qfx_train::graph::GraphModel::module_path(i, &node.op) + ".";
        let has_params = !matches!(
            model.layers[i],
            Layer::Sign(_) | Layer::Flatten(_) | Layer::Shortcut(_) | Layer::MaxPool2d(_)
        );
        assert_eq!(
            names.iter().any(|n| n.starts_with(&path)),
            has_params,
            "{path} in {names:?}"
        );
    }
    assert!(names.iter().all(|n| n.starts_with("layers.")), "{names:?}");
}

/// Parameters and activations are counted from the shapes, layer by layer.
#[test]
fn footprints_count_parameters_and_outputs() {
    let text = graph(
        "[3, 8, 8]",
        &[
            r#"{ name = "dw", op = "conv2d", filters = 3, kernel = 3, padding = "same", groups = 3 }"#,
            r#"{ name = "pw", op = "conv2d", filters = 8, kernel = 1, bias = true }"#,
            r#"{ name = "bn", op = "batch_norm" }"#,
            r#"{ name = "gap", op = "global_avg_pool" }"#,
            r#"{ name = "fc", op = "dense", units = 2 }"#,
        ],
    );
    let f = spec(&text).unwrap().resolve().unwrap().footprint();
    // Depthwise 3·(1·9+1), pointwise 8·(3+1), BatchNorm 4·8, dense (8+1)·2.
    assert_eq!(f.parameters, 30 + 32 + 32 + 18);
    // Outputs: input quantizer 192, dw 192, pw 512, bn 512, gap 8, fc 2.
    assert_eq!(f.activations, 192 + 192 + 512 + 512 + 8 + 2);
    assert_eq!(f.training_bytes(10), (112 * 16) + (1418 * 10 * 16));
}
