//! The layer-graph description a user writes: named layers, each with an operation and its
//! parameters and optional inputs (default: the previous layer), and its resolution — shapes
//! inferred and checked before anything is built, with errors that name the layer.

use std::collections::HashMap;

use serde::de::Error as _;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::error::TrainError;

/// The input of the first layer, and of any layer that names it.
pub const GRAPH_INPUT: &str = "input";

/// A network as a list of named layers in execution order.
///
/// ```
/// let spec: qfx_train::graph::GraphSpec = toml::from_str(r#"
///     input = [16]
///     layers = [
///       { name = "fc1", op = "dense", units = 64 },
///       { name = "bn1", op = "batch_norm" },
///       { name = "act1", op = "relu" },
///       { name = "fc2", op = "dense", units = 5 },
///     ]
/// "#).unwrap();
/// let graph = spec.resolve().unwrap();
/// assert_eq!(graph.output_shape(), &[5]);
/// ```
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GraphSpec {
    /// Shape of one input sample: `[features]`, `[channels, length]` or `[channels, h, w]`.
    pub input: Vec<usize>,
    /// The layers, in execution order.
    pub layers: Vec<LayerSpec>,
}

/// One layer of a [`GraphSpec`].
#[derive(Clone, Debug, PartialEq)]
pub struct LayerSpec {
    /// Unique name (quantization overrides and the exported IR use it).
    pub name: String,
    /// The layers it reads (or [`GRAPH_INPUT`]); `None`: the previous layer (the input for the
    /// first).
    pub inputs: Option<Vec<String>>,
    /// What it computes.
    pub op: OpSpec,
}

/// The operations of a layer graph, with their parameters. Every tensor is fixed point in the
/// quantized model: weights, biases, accumulators, BatchNorm constants and every output.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case", deny_unknown_fields)]
pub enum OpSpec {
    /// Casts its input to an activation format (a network's input quantizer; one is added in
    /// front of a graph whose first layer is not a `quantize` or `flatten` of the input).
    Quantize,
    /// Fully connected layer on a vector.
    Dense {
        /// Outputs.
        units: usize,
        /// With a bias (default true).
        #[serde(default = "yes")]
        bias: bool,
    },
    /// 2-D convolution on `[c, h, w]`, square kernel.
    Conv2d {
        /// Output channels.
        filters: usize,
        /// Kernel height and width.
        kernel: usize,
        /// Stride (default 1).
        #[serde(default = "one")]
        stride: usize,
        /// Zero padding on each side (default 0).
        #[serde(default)]
        padding: usize,
        /// With a bias (default false: a BatchNorm usually follows).
        #[serde(default)]
        bias: bool,
    },
    /// A binary convolution: `±1` weights (the sign of latent float weights), padding
    /// `kernel / 2`, an exact popcount-width accumulator; its input should be binarized by a
    /// `sign` layer.
    BinaryConv2d {
        /// Output channels.
        filters: usize,
        /// Kernel height and width.
        kernel: usize,
        /// Stride (default 1).
        #[serde(default = "one")]
        stride: usize,
    },
    /// BatchNorm folded into a fixed-point scale and shift per channel.
    BatchNorm,
    /// `max(x, 0)`, clipped at `clip` when given.
    Relu {
        /// Upper clip.
        #[serde(default)]
        clip: Option<f64>,
    },
    /// PReLU with a learned slope per channel (initialized at `init`, default 0.25).
    Prelu {
        /// Initial slope.
        #[serde(default = "quarter")]
        init: f64,
    },
    /// `±1` by the sign of the input (a binarized network's activations).
    Sign,
    /// Element-wise sum of two inputs of the same shape.
    Add,
    /// `kernel × kernel` max pooling with stride `kernel`.
    MaxPool2d {
        /// Window and stride.
        kernel: usize,
    },
    /// Mean over every position of each channel (a shift for power-of-two windows).
    GlobalAvgPool,
    /// `[c, …] → [c·…]`.
    Flatten,
    /// ResNet option-A shortcut: subsample by `stride`, then append `pad_channels` zero
    /// channels.
    Shortcut {
        /// Subsampling stride.
        stride: usize,
        /// Zero channels appended.
        pad_channels: usize,
    },
}

fn yes() -> bool {
    true
}

fn one() -> usize {
    1
}

fn quarter() -> f64 {
    0.25
}

impl OpSpec {
    /// The `op` name as the description spells it.
    pub fn kind(&self) -> &'static str {
        match self {
            OpSpec::Quantize => "quantize",
            OpSpec::Dense { .. } => "dense",
            OpSpec::Conv2d { .. } => "conv2d",
            OpSpec::BinaryConv2d { .. } => "binary_conv2d",
            OpSpec::BatchNorm => "batch_norm",
            OpSpec::Relu { .. } => "relu",
            OpSpec::Prelu { .. } => "prelu",
            OpSpec::Sign => "sign",
            OpSpec::Add => "add",
            OpSpec::MaxPool2d { .. } => "max_pool2d",
            OpSpec::GlobalAvgPool => "global_avg_pool",
            OpSpec::Flatten => "flatten",
            OpSpec::Shortcut { .. } => "shortcut",
        }
    }

    /// How many inputs the layer reads.
    fn arity(&self) -> usize {
        match self {
            OpSpec::Add => 2,
            _ => 1,
        }
    }

    /// True for the layers that may read the raw network input (they convert it).
    pub fn converts_input(&self) -> bool {
        matches!(self, OpSpec::Quantize | OpSpec::Flatten)
    }
}

/// Operations a user may expect that qfx does not build, and why.
const REFUSED: &[(&str, &str)] = &[(
    "softmax",
    "softmax does not change which output is largest, so classification needs none (the \
     predicted class is the argmax of the logits, in training, the engine and the generated \
     C++); remove the layer, the loss applies softmax itself",
)];

impl Serialize for LayerSpec {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut map = match serde_json::to_value(&self.op).map_err(serde::ser::Error::custom)? {
            serde_json::Value::Object(m) => m,
            _ => return Err(serde::ser::Error::custom("an operation is a table")),
        };
        // Unset options are left out (TOML has no null).
        map.retain(|_, v| !v.is_null());
        map.insert("name".into(), self.name.clone().into());
        if let Some(inputs) = &self.inputs {
            map.insert("inputs".into(), inputs.clone().into());
        }
        map.serialize(s)
    }
}

impl<'de> Deserialize<'de> for LayerSpec {
    /// A table with `name`, optional `inputs`, `op` and the operation's parameters; errors name
    /// the layer (`layer `fc1`: unknown field `unit`, expected `units` or `bias``).
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<LayerSpec, D::Error> {
        let serde_json::Value::Object(mut map) = serde_json::Value::deserialize(d)? else {
            return Err(D::Error::custom("a layer is a table with `name` and `op`"));
        };
        let name = match map.remove("name") {
            Some(serde_json::Value::String(n)) => n,
            Some(other) => return Err(D::Error::custom(format!("layer name {other} is not text"))),
            None => return Err(D::Error::custom("a layer has no `name`")),
        };
        let inputs = match map.remove("inputs") {
            None => None,
            Some(v) => Some(serde_json::from_value::<Vec<String>>(v).map_err(|e| {
                D::Error::custom(format!("layer `{name}`: inputs must be names: {e}"))
            })?),
        };
        let op_name = map.get("op").and_then(|v| v.as_str()).unwrap_or_default();
        if let Some((_, why)) = REFUSED.iter().find(|(op, _)| *op == op_name) {
            return Err(D::Error::custom(format!("layer `{name}`: {why}")));
        }
        let op = serde_json::from_value::<OpSpec>(serde_json::Value::Object(map))
            .map_err(|e| D::Error::custom(format!("layer `{name}`: {e}")))?;
        Ok(LayerSpec { name, inputs, op })
    }
}

/// A [`GraphSpec`] with every reference and shape resolved.
#[derive(Clone, Debug, PartialEq)]
pub struct ResolvedGraph {
    /// The input shape.
    pub input: Vec<usize>,
    /// The layers in execution order.
    pub nodes: Vec<ResolvedNode>,
}

/// One resolved layer.
#[derive(Clone, Debug, PartialEq)]
pub struct ResolvedNode {
    /// Its name.
    pub name: String,
    /// Its operation.
    pub op: OpSpec,
    /// What it reads: earlier layers' indices, or `None` for the network input.
    pub sources: Vec<Option<usize>>,
    /// The shapes it reads.
    pub input_shapes: Vec<Vec<usize>>,
    /// Its output shape.
    pub shape: Vec<usize>,
}

impl ResolvedGraph {
    /// The last layer's output shape.
    pub fn output_shape(&self) -> &[usize] {
        &self
            .nodes
            .last()
            .expect("validated: at least one layer")
            .shape
    }
}

/// Layers and tensors larger than this are refused before anything is allocated.
const MAX_ELEMENTS: usize = 1 << 34;

impl GraphSpec {
    /// Checks names and references, infers every shape and checks each layer's parameters
    /// against its inputs. Errors name the layer. A `quantize` layer named `input_q` is put in
    /// front when the first layer is not a `quantize` or `flatten` (every network starts by
    /// converting its input to fixed point).
    pub fn resolve(&self) -> Result<ResolvedGraph, TrainError> {
        let err = |m: String| Err(TrainError::Shape(m));
        if self.input.is_empty() || self.input.len() > 3 || self.input.contains(&0) {
            return err(format!(
                "the input shape {:?} must be [features], [channels, length] or [channels, h, w] \
                 with positive sizes",
                self.input
            ));
        }
        if self.layers.is_empty() {
            return err("the network has no layers".into());
        }
        let mut layers = self.layers.clone();
        if !layers[0].op.converts_input() {
            layers.insert(
                0,
                LayerSpec {
                    name: "input_q".into(),
                    inputs: Some(vec![GRAPH_INPUT.into()]),
                    op: OpSpec::Quantize,
                },
            );
            // Every later reference to the input means the quantized input.
            for layer in &mut layers[1..] {
                for input in layer.inputs.iter_mut().flatten() {
                    if input == GRAPH_INPUT {
                        *input = "input_q".into();
                    }
                }
            }
            if let Some(first) = layers.get_mut(1).filter(|l| l.inputs.is_none()) {
                first.inputs = Some(vec!["input_q".into()]);
            }
        }
        let mut index: HashMap<&str, usize> = HashMap::new();
        let mut nodes: Vec<ResolvedNode> = Vec::with_capacity(layers.len());
        for (i, layer) in layers.iter().enumerate() {
            let name = layer.name.as_str();
            let lerr = |m: String| TrainError::Shape(format!("layer `{name}`: {m}"));
            if name.is_empty() || name == GRAPH_INPUT {
                return Err(lerr("the name is empty or reserved".into()));
            }
            if index.contains_key(name) {
                return Err(lerr(
                    "a layer of that name comes earlier (names must be unique)".into(),
                ));
            }
            let inputs: Vec<String> = match &layer.inputs {
                Some(v) => v.clone(),
                None if i == 0 => vec![GRAPH_INPUT.into()],
                None => vec![layers[i - 1].name.clone()],
            };
            if inputs.len() != layer.op.arity() {
                return Err(lerr(format!(
                    "{} takes {} input(s), {} given",
                    layer.op.kind(),
                    layer.op.arity(),
                    inputs.len()
                )));
            }
            let mut sources = Vec::with_capacity(inputs.len());
            let mut input_shapes = Vec::with_capacity(inputs.len());
            for input in &inputs {
                if input == GRAPH_INPUT {
                    if !layer.op.converts_input() {
                        return Err(lerr(format!(
                            "reads the network input, which only quantize and flatten layers \
                             convert to fixed point; a {} layer reads quantized tensors",
                            layer.op.kind()
                        )));
                    }
                    sources.push(None);
                    input_shapes.push(self.input.clone());
                    continue;
                }
                let Some(&j) = index.get(input.as_str()) else {
                    let later = layers[i..].iter().any(|l| &l.name == input);
                    return Err(lerr(if later {
                        format!(
                            "reads `{input}`, which comes later (layers are listed in execution \
                             order, so a cycle or a forward reference is refused)"
                        )
                    } else {
                        format!("reads `{input}`, which is not a layer of the network")
                    }));
                };
                sources.push(Some(j));
                input_shapes.push(nodes[j].shape.clone());
            }
            let shape = output_shape(&layer.op, &input_shapes).map_err(lerr)?;
            if shape
                .iter()
                .try_fold(1usize, |a, &d| a.checked_mul(d))
                .is_none_or(|n| n > MAX_ELEMENTS)
            {
                return Err(lerr(format!("its output {shape:?} is too large")));
            }
            index.insert(name, i);
            nodes.push(ResolvedNode {
                name: layer.name.clone(),
                op: layer.op.clone(),
                sources,
                input_shapes,
                shape,
            });
        }
        Ok(ResolvedGraph {
            input: self.input.clone(),
            nodes,
        })
    }
}

/// A layer's output shape from its input shapes (the error says what does not fit).
fn output_shape(op: &OpSpec, ins: &[Vec<usize>]) -> Result<Vec<usize>, String> {
    let x = &ins[0];
    let image = |what: &str| -> Result<[usize; 3], String> {
        match x[..] {
            [c, h, w] => Ok([c, h, w]),
            _ => Err(format!("{what} reads [channels, h, w], not {x:?}")),
        }
    };
    let positive = |v: usize, what: &str| -> Result<(), String> {
        if v == 0 {
            Err(format!("{what} must be positive"))
        } else {
            Ok(())
        }
    };
    Ok(match op {
        OpSpec::Quantize | OpSpec::Relu { .. } | OpSpec::Prelu { .. } | OpSpec::Sign => x.clone(),
        OpSpec::BatchNorm => {
            if x.len() == 1 && x[0] == 0 {
                return Err("batch_norm needs channels".into());
            }
            x.clone()
        }
        OpSpec::Dense { units, .. } => {
            positive(*units, "units")?;
            if x.len() != 1 {
                return Err(format!(
                    "dense reads a vector, not {x:?} (put a flatten layer before it)"
                ));
            }
            vec![*units]
        }
        OpSpec::Conv2d {
            filters,
            kernel,
            stride,
            padding,
            ..
        } => {
            let [_, h, w] = image("conv2d")?;
            positive(*filters, "filters")?;
            positive(*kernel, "kernel")?;
            positive(*stride, "stride")?;
            let out = |n: usize| {
                n.checked_add(padding.saturating_mul(2))
                    .filter(|&p| p >= *kernel)
                    .map(|p| (p - kernel) / stride + 1)
                    .ok_or_else(|| {
                        format!("a {kernel}×{kernel} kernel does not fit the padded input {x:?}")
                    })
            };
            vec![*filters, out(h)?, out(w)?]
        }
        OpSpec::BinaryConv2d {
            filters,
            kernel,
            stride,
        } => {
            let [_, h, w] = image("binary_conv2d")?;
            positive(*filters, "filters")?;
            positive(*kernel, "kernel")?;
            positive(*stride, "stride")?;
            let p = kernel / 2;
            let out = |n: usize| {
                (n + 2 * p >= *kernel)
                    .then(|| (n + 2 * p - kernel) / stride + 1)
                    .ok_or_else(|| format!("a {kernel}×{kernel} kernel does not fit {x:?}"))
            };
            vec![*filters, out(h)?, out(w)?]
        }
        OpSpec::Add => {
            if ins[0] != ins[1] {
                return Err(format!("adds {:?} and {:?}: shapes differ", ins[0], ins[1]));
            }
            x.clone()
        }
        OpSpec::MaxPool2d { kernel } => {
            let [c, h, w] = image("max_pool2d")?;
            positive(*kernel, "kernel")?;
            if h < *kernel || w < *kernel {
                return Err(format!("a {kernel}×{kernel} window does not fit {x:?}"));
            }
            vec![c, h / kernel, w / kernel]
        }
        OpSpec::GlobalAvgPool => {
            let [c, _, _] = image("global_avg_pool")?;
            vec![c]
        }
        OpSpec::Flatten => vec![x.iter().product()],
        OpSpec::Shortcut {
            stride,
            pad_channels,
        } => {
            let [c, h, w] = image("shortcut")?;
            positive(*stride, "stride")?;
            vec![c + pad_channels, h.div_ceil(*stride), w.div_ceil(*stride)]
        }
    })
}
