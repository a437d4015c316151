//! The layer-graph description a user writes: named layers, each with an operation and its
//! parameters and optional inputs (default: the previous layer), and its resolution — shapes
//! inferred and checked before anything is built, with errors that name the layer.

use std::collections::HashMap;

use serde::de::Error as _;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use qfx_ir::Pair;

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
    /// 2-D convolution on `[c, h, w]`.
    Conv2d {
        /// Output channels.
        filters: usize,
        /// Kernel size: one number, or `[height, width]`.
        kernel: Pair,
        /// Stride (default 1): one number, or `[vertical, horizontal]`.
        #[serde(default)]
        stride: Pair,
        /// Zero padding: `"valid"` (none, the default), `"same"` (output size `⌈in/stride⌉`,
        /// the extra row or column at the bottom/right), one number for every side, or
        /// `[top, bottom, left, right]`.
        #[serde(default)]
        padding: PadSpec,
        /// Dilation (default 1): one number, or `[vertical, horizontal]`.
        #[serde(default)]
        dilation: Pair,
        /// Channel groups (default 1; the input channels for a depthwise convolution).
        #[serde(default = "one")]
        groups: usize,
        /// With a bias (default false: a BatchNorm usually follows).
        #[serde(default)]
        bias: bool,
    },
    /// 1-D convolution on a signal `[c, length]`.
    Conv1d {
        /// Output channels.
        filters: usize,
        /// Kernel length.
        kernel: usize,
        /// Stride (default 1).
        #[serde(default = "one")]
        stride: usize,
        /// Zero padding: `"valid"` (default), `"same"`, one number for both ends, or
        /// `[left, right]`.
        #[serde(default)]
        padding: PadSpec,
        /// Dilation (default 1).
        #[serde(default = "one")]
        dilation: usize,
        /// Channel groups (default 1).
        #[serde(default = "one")]
        groups: usize,
        /// With a bias (default false).
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
    /// `x` where `x ≥ 0`, else `slope · x`, with a constant slope (default 0.01) held in a
    /// fixed-point format.
    LeakyRelu {
        /// The slope of the negative side.
        #[serde(default = "hundredth")]
        slope: f64,
    },
    /// `min(max(x, min), max)` (defaults −1 and 1).
    HardTanh {
        /// Lower bound.
        #[serde(default = "minus_one")]
        min: f64,
        /// Upper bound.
        #[serde(default = "plus_one")]
        max: f64,
    },
    /// `min(max(slope · x + offset, 0), 1)`, slope and offset held in fixed-point formats
    /// (defaults 0.2 and 0.5, as Keras; PyTorch's is 1/6 and 0.5).
    HardSigmoid {
        /// Slope.
        #[serde(default = "fifth")]
        slope: f64,
        /// Offset.
        #[serde(default = "half")]
        offset: f64,
    },
    /// The logistic sigmoid by table: `2^index_bits` entries over `[−range, range)` (a power of
    /// two), indexed by the top bits of the input code, each entry the sigmoid at the middle of
    /// its interval in the output format. Trained with the true sigmoid's gradient. A float
    /// model (quantization off) computes the sigmoid itself.
    Sigmoid {
        /// Table size in bits (default 10: 1,024 entries).
        #[serde(default = "ten")]
        index_bits: u32,
        /// Half the input interval the table covers (default 8); inputs beyond it read the
        /// first or last entry.
        #[serde(default = "eight")]
        range: f64,
    },
    /// `tanh` by table (see `sigmoid`; default range 4).
    Tanh {
        /// Table size in bits (default 10).
        #[serde(default = "ten")]
        index_bits: u32,
        /// Half the input interval the table covers (default 4).
        #[serde(default = "four")]
        range: f64,
    },
    /// `±1` by the sign of the input (a binarized network's activations).
    Sign,
    /// Element-wise sum of two inputs of the same shape.
    Add,
    /// Element-wise product of two inputs of the same shape.
    Multiply,
    /// Two or more inputs side by side along the channel axis (all other axes equal).
    Concat,
    /// Max pooling without padding.
    MaxPool2d {
        /// Window: one number, or `[height, width]`.
        kernel: Pair,
        /// Stride (default: the window).
        #[serde(default)]
        stride: Option<Pair>,
    },
    /// Average pooling without padding (the exact window sum times a fixed-point `1/window`).
    AvgPool2d {
        /// Window: one number, or `[height, width]`.
        kernel: Pair,
        /// Stride (default: the window).
        #[serde(default)]
        stride: Option<Pair>,
    },
    /// Max pooling over a signal `[c, length]`.
    MaxPool1d {
        /// Window.
        kernel: usize,
        /// Stride (default: the window).
        #[serde(default)]
        stride: Option<usize>,
    },
    /// Average pooling over a signal `[c, length]`.
    AvgPool1d {
        /// Window.
        kernel: usize,
        /// Stride (default: the window).
        #[serde(default)]
        stride: Option<usize>,
    },
    /// Mean over every position of each channel (a shift for power-of-two windows).
    GlobalAvgPool,
    /// Maximum over every position of each channel.
    GlobalMaxPool,
    /// `[c, …] → [c·…]`.
    Flatten,
    /// The same values in row-major order under another shape (`[n]`, `[c, length]` or
    /// `[c, h, w]`).
    Reshape {
        /// The new shape.
        shape: Vec<usize>,
    },
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

fn hundredth() -> f64 {
    0.01
}

fn minus_one() -> f64 {
    -1.0
}

fn plus_one() -> f64 {
    1.0
}

fn fifth() -> f64 {
    0.2
}

fn half() -> f64 {
    0.5
}

fn ten() -> u32 {
    10
}

fn eight() -> f64 {
    8.0
}

fn four() -> f64 {
    4.0
}

/// Zero padding of a convolution: a rule or explicit sizes.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum PadSpec {
    /// `"valid"` or `"same"`.
    Rule(PadRule),
    /// The same on every side.
    All(usize),
    /// `[top, bottom, left, right]` (2-D) or `[left, right]` (1-D).
    Sides(Vec<usize>),
}

/// Padding rules.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PadRule {
    /// No padding.
    Valid,
    /// Output size `⌈input / stride⌉`; an odd total puts the extra zero after (bottom, right).
    Same,
}

impl Default for PadSpec {
    fn default() -> PadSpec {
        PadSpec::Rule(PadRule::Valid)
    }
}

impl PadSpec {
    /// `[before, after]` along an axis of length `n` for a kernel spanning `span` values with
    /// stride `s`. Explicit sizes are `[top, bottom, left, right]` for a 2-D convolution
    /// (`axis` 0: vertical, 1: horizontal) and `[left, right]` for a 1-D one (`axis` `None`).
    fn along(
        &self,
        axis: Option<usize>,
        n: usize,
        span: usize,
        s: usize,
    ) -> Result<[usize; 2], String> {
        Ok(match self {
            PadSpec::Rule(PadRule::Valid) => [0, 0],
            PadSpec::Rule(PadRule::Same) => {
                let out = n.div_ceil(s);
                let total = ((out - 1) * s + span).saturating_sub(n);
                [total / 2, total - total / 2]
            }
            PadSpec::All(p) => [*p, *p],
            PadSpec::Sides(v) => match (v.len(), axis) {
                (2, None) => [v[0], v[1]],
                (4, Some(a)) => [v[2 * a], v[2 * a + 1]],
                (_, None) => return Err(format!("padding {v:?} must be [left, right]")),
                (_, Some(_)) => {
                    return Err(format!("padding {v:?} must be [top, bottom, left, right]"))
                }
            },
        })
    }
}

impl OpSpec {
    /// The `op` name as the description spells it.
    pub fn kind(&self) -> &'static str {
        match self {
            OpSpec::Quantize => "quantize",
            OpSpec::Dense { .. } => "dense",
            OpSpec::Conv2d { .. } => "conv2d",
            OpSpec::Conv1d { .. } => "conv1d",
            OpSpec::LeakyRelu { .. } => "leaky_relu",
            OpSpec::HardTanh { .. } => "hard_tanh",
            OpSpec::HardSigmoid { .. } => "hard_sigmoid",
            OpSpec::Sigmoid { .. } => "sigmoid",
            OpSpec::Tanh { .. } => "tanh",
            OpSpec::Multiply => "multiply",
            OpSpec::Concat => "concat",
            OpSpec::AvgPool2d { .. } => "avg_pool2d",
            OpSpec::MaxPool1d { .. } => "max_pool1d",
            OpSpec::AvgPool1d { .. } => "avg_pool1d",
            OpSpec::GlobalMaxPool => "global_max_pool",
            OpSpec::Reshape { .. } => "reshape",
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

    /// How many inputs the layer reads: `Some(n)`, or `None` for two or more.
    fn arity(&self) -> Option<usize> {
        match self {
            OpSpec::Add | OpSpec::Multiply => Some(2),
            OpSpec::Concat => None,
            _ => Some(1),
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

/// What a network holds: parameters, and values produced per sample (every layer's output,
/// which training keeps for the backward pass).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Footprint {
    /// Trainable parameters and running statistics.
    pub parameters: u64,
    /// Layer outputs per sample.
    pub activations: u64,
}

impl ResolvedGraph {
    /// Parameters and activations, counted from the shapes (nothing is allocated).
    pub fn footprint(&self) -> Footprint {
        let mut parameters = 0u64;
        let mut activations = 0u64;
        for node in &self.nodes {
            let x = &node.input_shapes[0];
            let c = x.first().copied().unwrap_or(1) as u64;
            let out = node.shape.iter().map(|&d| d as u64).product::<u64>();
            activations = activations.saturating_add(out);
            let p = match &node.op {
                OpSpec::Dense { units, .. } => (x[0] as u64 + 1).saturating_mul(*units as u64),
                OpSpec::Conv2d {
                    filters,
                    kernel,
                    groups,
                    ..
                } => {
                    let [kh, kw] = kernel.get();
                    (c / *groups as u64 * (kh * kw) as u64 + 1).saturating_mul(*filters as u64)
                }
                OpSpec::Conv1d {
                    filters,
                    kernel,
                    groups,
                    ..
                } => (c / *groups as u64 * *kernel as u64 + 1).saturating_mul(*filters as u64),
                OpSpec::BinaryConv2d {
                    filters, kernel, ..
                } => (c * (kernel * kernel) as u64).saturating_mul(*filters as u64),
                OpSpec::BatchNorm => 4 * c,
                OpSpec::Prelu { .. } => c,
                _ => 0,
            };
            parameters = parameters.saturating_add(p);
        }
        Footprint {
            parameters,
            activations,
        }
    }
}

impl Footprint {
    /// Bytes training needs, roughly: each parameter with its gradient and two optimizer
    /// moments, and each activation of a batch of `batch` samples with the few copies a
    /// quantized layer keeps for its backward pass (4-byte floats throughout).
    pub fn training_bytes(&self, batch: usize) -> u64 {
        let params = self.parameters.saturating_mul(4 * 4);
        let values = self
            .activations
            .saturating_mul(batch as u64)
            .saturating_mul(4 * 4);
        params.saturating_add(values)
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
            match layer.op.arity() {
                Some(n) if inputs.len() != n => {
                    return Err(lerr(format!(
                        "{} takes {n} input(s), {} given",
                        layer.op.kind(),
                        inputs.len()
                    )))
                }
                None if inputs.len() < 2 => {
                    return Err(lerr(format!(
                        "{} takes 2 or more inputs (list them in `inputs`), {} given",
                        layer.op.kind(),
                        inputs.len()
                    )))
                }
                _ => {}
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
    let signal = |what: &str| -> Result<[usize; 2], String> {
        match x[..] {
            [c, l] => Ok([c, l]),
            _ => Err(format!(
                "{what} reads a signal [channels, length], not {x:?}"
            )),
        }
    };
    let positive = |v: usize, what: &str| -> Result<(), String> {
        if v == 0 {
            Err(format!("{what} must be positive"))
        } else {
            Ok(())
        }
    };
    let groups_fit = |c: usize, filters: usize, groups: usize| -> Result<(), String> {
        if groups == 0 || !c.is_multiple_of(groups) || !filters.is_multiple_of(groups) {
            return Err(format!(
                "{groups} groups must divide the {c} input channels and the {filters} filters"
            ));
        }
        Ok(())
    };
    Ok(match op {
        OpSpec::Quantize
        | OpSpec::Relu { .. }
        | OpSpec::Prelu { .. }
        | OpSpec::Sign
        | OpSpec::LeakyRelu { .. }
        | OpSpec::HardSigmoid { .. } => x.clone(),
        OpSpec::HardTanh { min, max } => {
            if !(min.is_finite() && max.is_finite() && min <= max) {
                return Err(format!("bounds [{min}, {max}] must be finite and ordered"));
            }
            x.clone()
        }
        OpSpec::Sigmoid { index_bits, range } | OpSpec::Tanh { index_bits, range } => {
            table_domain(*index_bits, *range)?;
            x.clone()
        }
        OpSpec::BatchNorm => x.clone(),
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
            filters, groups, ..
        } => {
            let [c, _, _] = image("conv2d")?;
            positive(*filters, "filters")?;
            groups_fit(c, *filters, *groups)?;
            let g = op.conv_geometry(x)?;
            vec![*filters, g.out[0], g.out[1]]
        }
        OpSpec::Conv1d {
            filters, groups, ..
        } => {
            let [c, _] = signal("conv1d")?;
            positive(*filters, "filters")?;
            groups_fit(c, *filters, *groups)?;
            let g = op.conv_geometry(x)?;
            vec![*filters, g.out[1]]
        }
        OpSpec::BinaryConv2d {
            filters,
            kernel,
            stride,
        } => {
            let [_, h, w] = image("binary_conv2d")?;
            positive(*filters, "filters")?;
            let p = kernel / 2;
            let oh = qfx_ir::conv_output(h, *kernel, *stride, 1, [p, p])?;
            let ow = qfx_ir::conv_output(w, *kernel, *stride, 1, [p, p])?;
            vec![*filters, oh, ow]
        }
        OpSpec::Add | OpSpec::Multiply => {
            if ins[0] != ins[1] {
                return Err(format!(
                    "combines {:?} and {:?}: shapes differ",
                    ins[0], ins[1]
                ));
            }
            x.clone()
        }
        OpSpec::Concat => {
            let mut out = x.clone();
            for other in &ins[1..] {
                if other.len() != x.len() || other[1..] != x[1..] {
                    return Err(format!(
                        "concatenates {x:?} and {other:?}: all but the channel axis must agree"
                    ));
                }
                out[0] += other[0];
            }
            out
        }
        OpSpec::MaxPool2d { kernel, stride } | OpSpec::AvgPool2d { kernel, stride } => {
            let [c, h, w] = image(op.kind())?;
            let (k, s) = (kernel.get(), stride.unwrap_or(*kernel).get());
            vec![
                c,
                qfx_ir::pool_output(h, k[0], s[0])?,
                qfx_ir::pool_output(w, k[1], s[1])?,
            ]
        }
        OpSpec::MaxPool1d { kernel, stride } | OpSpec::AvgPool1d { kernel, stride } => {
            let [c, l] = signal(op.kind())?;
            vec![
                c,
                qfx_ir::pool_output(l, *kernel, stride.unwrap_or(*kernel))?,
            ]
        }
        OpSpec::GlobalAvgPool | OpSpec::GlobalMaxPool => match x[..] {
            [c, _] | [c, _, _] => vec![c],
            _ => return Err(format!("{} reads a signal or a map, not {x:?}", op.kind())),
        },
        OpSpec::Flatten => vec![x.iter().product()],
        OpSpec::Reshape { shape } => {
            if shape.is_empty() || shape.len() > 3 || shape.contains(&0) {
                return Err(format!(
                    "the shape {shape:?} must be [n], [c, length] or [c, h, w] with positive sizes"
                ));
            }
            let (from, to) = (x.iter().product::<usize>(), shape.iter().product::<usize>());
            if from != to {
                return Err(format!("{x:?} has {from} values, {shape:?} holds {to}"));
            }
            shape.clone()
        }
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

/// The interval `[−range, range)` a lookup table covers, as a power of two `2^r = 2·range`,
/// with its size checked.
pub(crate) fn table_domain(index_bits: u32, range: f64) -> Result<i32, String> {
    if !(1..=16).contains(&index_bits) {
        return Err(format!(
            "index_bits {index_bits} must be 1 to 16 (a table of 2 to 65,536 entries)"
        ));
    }
    let r = (2.0 * range).log2();
    if !(range > 0.0 && r.fract() == 0.0 && (-20.0..=20.0).contains(&r)) {
        return Err(format!(
            "range {range} must be a power of two (the table is indexed by the input's top bits)"
        ));
    }
    Ok(r as i32)
}

/// A convolution's geometry in 2-D terms (a signal is a map of height 1).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ConvPlan {
    /// Kernel `[height, width]`.
    pub kernel: [usize; 2],
    /// Stride.
    pub stride: [usize; 2],
    /// Dilation.
    pub dilation: [usize; 2],
    /// Zero padding `[top, bottom, left, right]`.
    pub padding: [usize; 4],
    /// Output `[height, width]`.
    pub out: [usize; 2],
}

impl OpSpec {
    /// The geometry of a `conv2d` or `conv1d` reading `x` (padding rules resolved).
    pub fn conv_geometry(&self, x: &[usize]) -> Result<ConvPlan, String> {
        let (kernel, stride, dilation, padding, h, w) = match (self, x) {
            (
                OpSpec::Conv2d {
                    kernel,
                    stride,
                    padding,
                    dilation,
                    ..
                },
                &[_, h, w],
            ) => (kernel.get(), stride.get(), dilation.get(), padding, h, w),
            (
                OpSpec::Conv1d {
                    kernel,
                    stride,
                    padding,
                    dilation,
                    ..
                },
                &[_, l],
            ) => ([1, *kernel], [1, *stride], [1, *dilation], padding, 1, l),
            _ => return Err(format!("{} does not read {x:?}", self.kind())),
        };
        if kernel.contains(&0) || stride.contains(&0) || dilation.contains(&0) {
            return Err("kernel, stride and dilation must be positive".to_string());
        }
        let span = |a: usize| dilation[a] * (kernel[a] - 1) + 1;
        let one_d = matches!(self, OpSpec::Conv1d { .. });
        let (vertical, horizontal) = if one_d {
            ([0, 0], padding.along(None, w, span(1), stride[1])?)
        } else {
            (
                padding.along(Some(0), h, span(0), stride[0])?,
                padding.along(Some(1), w, span(1), stride[1])?,
            )
        };
        let padding = [vertical[0], vertical[1], horizontal[0], horizontal[1]];
        let oh = qfx_ir::conv_output(h, kernel[0], stride[0], dilation[0], vertical)?;
        let ow = qfx_ir::conv_output(w, kernel[1], stride[1], dilation[1], horizontal)?;
        Ok(ConvPlan {
            kernel,
            stride,
            dilation,
            padding,
            out: [oh, ow],
        })
    }
}
