//! The built-in networks as layer graphs: the same layers, names, initialization order and
//! checkpoint tensor names as their original hand-written implementations, so a preset trains
//! exactly as before (`tests/presets.rs` checks the exported IR against documents the originals
//! wrote) and checkpoints written before presets existed still load ([`Preset::legacy_names`]).

use super::spec::{GraphSpec, LayerSpec, OpSpec, PadSpec, GRAPH_INPUT};
use crate::models::Shortcut;

/// A built-in network expanded into a graph.
#[derive(Clone, Debug)]
pub struct Preset {
    /// The graph.
    pub spec: GraphSpec,
    /// The order in which the original implementation built (and drew the weights of) its
    /// layers: indices into `spec.layers`; `None`: execution order.
    pub init_order: Option<Vec<usize>>,
    /// For each layer, the path of its module in the original implementation's checkpoints
    /// (e.g. `Cnn.convs.0`), if it had parameters there.
    pub legacy: Vec<Option<String>>,
}

/// Builds a preset layer by layer, naming each layer `{stem}{index}` as the original export did.
struct Builder {
    layers: Vec<LayerSpec>,
    legacy: Vec<Option<String>>,
}

impl Builder {
    fn new() -> Builder {
        Builder {
            layers: Vec::new(),
            legacy: Vec::new(),
        }
    }

    /// Appends a layer reading `inputs` and returns its name.
    fn push(&mut self, stem: &str, inputs: &[&str], op: OpSpec, legacy: Option<String>) -> String {
        let name = format!("{stem}{}", self.layers.len());
        self.layers.push(LayerSpec {
            name: name.clone(),
            inputs: Some(inputs.iter().map(|s| s.to_string()).collect()),
            op,
        });
        self.legacy.push(legacy);
        name
    }

    fn finish(self, input: Vec<usize>, init_order: Option<Vec<usize>>) -> Preset {
        Preset {
            spec: GraphSpec {
                input,
                layers: self.layers,
            },
            init_order,
            legacy: self.legacy,
        }
    }

    fn conv(
        &mut self,
        x: &str,
        filters: usize,
        stride: usize,
        kernel: usize,
        at: String,
    ) -> String {
        let op = OpSpec::Conv2d {
            filters,
            kernel: kernel.into(),
            stride: stride.into(),
            padding: PadSpec::All(kernel / 2),
            dilation: 1.into(),
            groups: 1,
            bias: false,
        };
        self.push("conv", &[x], op, Some(at))
    }
}

fn at(path: &str) -> Option<String> {
    Some(path.to_string())
}

/// Input quantizer → (dense → ReLU)* → dense, on the flattened input.
pub fn mlp(input: &[usize], hidden: &[usize], classes: usize) -> Preset {
    let mut b = Builder::new();
    let flat = b.push("flatten", &[GRAPH_INPUT], OpSpec::Flatten, None);
    let mut t = b.push("input_q", &[&flat], OpSpec::Quantize, at("Mlp.input"));
    for (i, &h) in hidden.iter().enumerate() {
        let op = OpSpec::Dense {
            units: h,
            bias: true,
        };
        t = b.push("dense", &[&t], op, Some(format!("Mlp.hidden.{i}")));
        let relu = OpSpec::Relu { clip: None };
        t = b.push("relu", &[&t], relu, Some(format!("Mlp.relus.{i}")));
    }
    let head = OpSpec::Dense {
        units: classes,
        bias: true,
    };
    b.push("dense", &[&t], head, at("Mlp.head"));
    b.finish(input.to_vec(), None)
}

/// conv–BN–ReLU–maxpool ×2, then a linear classifier.
pub fn cnn(input: &[usize], channels: [usize; 2], classes: usize) -> Preset {
    let mut b = Builder::new();
    let mut t = b.push("input_q", &[GRAPH_INPUT], OpSpec::Quantize, at("Cnn.input"));
    for (i, &c) in channels.iter().enumerate() {
        t = b.conv(&t, c, 1, 3, format!("Cnn.convs.{i}"));
        t = b.push(
            "bn",
            &[&t],
            OpSpec::BatchNorm,
            Some(format!("Cnn.norms.{i}")),
        );
        let relu = OpSpec::Relu { clip: None };
        t = b.push("relu", &[&t], relu, Some(format!("Cnn.relus.{i}")));
        let pool = OpSpec::MaxPool2d {
            kernel: 2.into(),
            stride: None,
        };
        t = b.push("pool", &[&t], pool, None);
    }
    t = b.push("flatten", &[&t], OpSpec::Flatten, None);
    let head = OpSpec::Dense {
        units: classes,
        bias: true,
    };
    b.push("dense", &[&t], head, at("Cnn.head"));
    b.finish(input.to_vec(), None)
}

/// ResNet (He et al. 2016, CIFAR variant): stem conv–BN–ReLU, three stages of basic blocks
/// (conv–BN–ReLU–conv–BN plus the shortcut, then ReLU), global average pooling, classifier.
pub fn resnet(
    input: &[usize],
    widths: [usize; 3],
    per_stage: usize,
    classes: usize,
    shortcut: Shortcut,
) -> Preset {
    let mut b = Builder::new();
    let x = b.push(
        "input_q",
        &[GRAPH_INPUT],
        OpSpec::Quantize,
        at("Resnet.input"),
    );
    let stem = b.conv(&x, widths[0], 1, 3, "Resnet.stem".into());
    let t = b.push("bn", &[&stem], OpSpec::BatchNorm, at("Resnet.stem_bn"));
    let mut t = b.push(
        "relu",
        &[&t],
        OpSpec::Relu { clip: None },
        at("Resnet.stem_relu"),
    );
    // The original built the blocks first (each: projection, conv1, conv2), then the stem and
    // the classifier.
    let mut blocks_order = Vec::new();
    let mut c = widths[0];
    let mut block = 0;
    for (s, &w) in widths.iter().enumerate() {
        for k in 0..per_stage {
            let stride = if s > 0 && k == 0 { 2 } else { 1 };
            let p = format!("Resnet.blocks.{block}");
            let first = b.layers.len();
            let t1 = b.conv(&t, w, stride, 3, format!("{p}.conv1"));
            let t1 = b.push("bn", &[&t1], OpSpec::BatchNorm, Some(format!("{p}.bn1")));
            let relu = OpSpec::Relu { clip: None };
            let t1 = b.push("relu", &[&t1], relu, Some(format!("{p}.relu1")));
            let t1 = b.conv(&t1, w, 1, 3, format!("{p}.conv2"));
            let main = b.push("bn", &[&t1], OpSpec::BatchNorm, Some(format!("{p}.bn2")));
            let reshape = stride != 1 || c != w;
            let mut proj = None;
            let short = match shortcut {
                Shortcut::B if reshape => {
                    let pc = b.conv(&t, w, stride, 1, format!("{p}.proj.0"));
                    proj = Some(b.layers.len() - 1);
                    b.push("bn", &[&pc], OpSpec::BatchNorm, Some(format!("{p}.proj.1")))
                }
                Shortcut::A if reshape => {
                    let op = OpSpec::Shortcut {
                        stride,
                        pad_channels: w - c,
                    };
                    b.push("shortcut", &[&t], op, None)
                }
                _ => t.clone(),
            };
            let sum = b.push(
                "add",
                &[&main, &short],
                OpSpec::Add,
                Some(format!("{p}.add")),
            );
            let relu = OpSpec::Relu { clip: None };
            t = b.push("relu", &[&sum], relu, Some(format!("{p}.relu2")));
            // Construction order within the block: projection, then the rest in order.
            blocks_order.extend(proj);
            blocks_order.extend((first..b.layers.len()).filter(|&i| Some(i) != proj));
            c = w;
            block += 1;
        }
    }
    let pool = b.push("avgpool", &[&t], OpSpec::GlobalAvgPool, at("Resnet.pool"));
    let head = OpSpec::Dense {
        units: classes,
        bias: true,
    };
    b.push("dense", &[&pool], head, at("Resnet.head"));
    let n = b.layers.len();
    b.finish(input.to_vec(), Some(first_then_rest(blocks_order, n)))
}

/// The binarized residual network (see [`crate::bnn`]): fixed-point stem conv–BN–PReLU, binary
/// blocks `prelu(bn(binary_conv(sign(x))) + shortcut(x))`, global average pooling, classifier.
pub fn bnn(
    input: &[usize],
    widths: [usize; 3],
    per_stage: usize,
    stem_stride: usize,
    classes: usize,
) -> Preset {
    let mut b = Builder::new();
    let x = b.push("input_q", &[GRAPH_INPUT], OpSpec::Quantize, at("Bnn.input"));
    let stem = b.conv(&x, widths[0], stem_stride, 3, "Bnn.stem".into());
    let t = b.push("bn", &[&stem], OpSpec::BatchNorm, at("Bnn.stem_bn"));
    let prelu = OpSpec::Prelu { init: 0.25 };
    let mut t = b.push("prelu", &[&t], prelu, at("Bnn.stem_act"));
    // The original built the blocks first, then the stem and the classifier.
    let first_block = b.layers.len();
    let mut c = widths[0];
    let mut block = 0;
    for (s, &w) in widths.iter().enumerate() {
        for k in 0..per_stage {
            let stride = if s > 0 && k == 0 { 2 } else { 1 };
            let p = format!("Bnn.blocks.{block}");
            let sign = b.push("sign", &[&t], OpSpec::Sign, None);
            let op = OpSpec::BinaryConv2d {
                filters: w,
                kernel: 3,
                stride,
            };
            let conv = b.push("bconv", &[&sign], op, Some(format!("{p}.conv")));
            let main = b.push("bn", &[&conv], OpSpec::BatchNorm, Some(format!("{p}.bn")));
            let short = if stride != 1 || w != c {
                let op = OpSpec::Shortcut {
                    stride,
                    pad_channels: w - c,
                };
                b.push("shortcut", &[&t], op, None)
            } else {
                t.clone()
            };
            let sum = b.push(
                "add",
                &[&main, &short],
                OpSpec::Add,
                Some(format!("{p}.add")),
            );
            let prelu = OpSpec::Prelu { init: 0.25 };
            t = b.push("prelu", &[&sum], prelu, Some(format!("{p}.act")));
            c = w;
            block += 1;
        }
    }
    let pool = b.push("avgpool", &[&t], OpSpec::GlobalAvgPool, at("Bnn.pool"));
    let head = OpSpec::Dense {
        units: classes,
        bias: true,
    };
    b.push("dense", &[&pool], head, at("Bnn.head"));
    let n = b.layers.len();
    let blocks = (first_block..n - 2).collect();
    b.finish(input.to_vec(), Some(first_then_rest(blocks, n)))
}

/// `first`, then every other index below `n` in order.
fn first_then_rest(first: Vec<usize>, n: usize) -> Vec<usize> {
    let rest: Vec<usize> = (0..n).filter(|i| !first.contains(i)).collect();
    first.into_iter().chain(rest).collect()
}
