//! The translation of an ONNX graph into a qfx layer graph and its weights.
//!
//! Every ONNX value is either a constant (initializers, `Constant` nodes, and what folds from
//! them: the `Shape`/`Gather`/`Unsqueeze`/`Concat` chains exporters write in front of a
//! `Reshape`) or an activation computed by a qfx layer. An activation carries two shapes of one
//! sample: the one ONNX gives it, and the one the qfx layer that computes it produces. They hold
//! the same values in the same row-major order and differ only where qfx's layer has another
//! rank (a global pooling gives `[c]` where ONNX keeps `[c, 1, 1]`; a `Reshape` or `Flatten`
//! only relabels); a layer that needs the ONNX shape gets a `flatten` or `reshape` layer in
//! front of it.

use std::collections::{BTreeMap, HashMap, HashSet};

use qfx_ir::Pair;
use qfx_train::graph::{GraphModel, GraphSpec, LayerSpec, OpSpec, PadSpec, GRAPH_INPUT};
use qfx_train::safetensors::NamedTensor;

use crate::error::OnnxError;
use crate::load::{Const, Data, Source, TensorReader};
use crate::proto::{tensor_proto, type_proto, AttributeProto, NodeProto};

/// The operators qfx imports (default ONNX domain). `Constant`, `Shape`, `Gather`, `Unsqueeze`
/// and `Cast` are folded when their inputs are constants (or, for `Shape`, when the shape is
/// known); `Identity` and `Dropout` are removed.
pub const SUPPORTED: &[&str] = &[
    "Conv",
    "Gemm",
    "MatMul",
    "Add",
    "Mul",
    "BatchNormalization",
    "Relu",
    "LeakyRelu",
    "Clip",
    "Sigmoid",
    "Tanh",
    "HardSigmoid",
    "Concat",
    "MaxPool",
    "AveragePool",
    "GlobalAveragePool",
    "GlobalMaxPool",
    "Flatten",
    "Reshape",
    "Identity",
    "Dropout",
    "Constant",
    "Shape",
    "Gather",
    "Unsqueeze",
    "Cast",
];

/// qfx's BatchNorm ε (`qfx_train::layers::QBatchNorm2d::epsilon`): an imported BatchNorm's own
/// ε is moved into its running variance, `σ²' = σ² + ε − QFX_BN_EPSILON`, so that
/// `√(σ²' + QFX_BN_EPSILON) = √(σ² + ε)`.
pub const QFX_BN_EPSILON: f64 = 1e-5;

/// The batch size in a folded shape (`Shape` of an activation whose batch is dynamic).
const BATCH: i64 = i64::MIN;

/// How to import.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Options {
    /// The shape of one sample as qfx feeds it (e.g. `[1, 28, 28]` for images into a model
    /// whose ONNX input is `[N, 784]`); the same number of values as the ONNX input, in the
    /// same order. `None`: the ONNX input's shape without its batch dimension.
    pub input_shape: Option<Vec<usize>>,
}

/// A model translated into a qfx layer graph.
#[derive(Clone, Debug, PartialEq)]
pub struct Imported {
    /// The layer graph (its first layer quantizes the input).
    pub spec: GraphSpec,
    /// The weights by module path, as a checkpoint names them: dense and convolution weights
    /// and biases, BatchNorm γ, β and running statistics.
    pub weights: Vec<NamedTensor>,
    /// The ONNX input's name.
    pub input: String,
    /// The ONNX output's name.
    pub output: String,
    /// The ONNX input's shape of one sample (without the batch dimension).
    pub onnx_input_shape: Vec<usize>,
    /// The default domain's opset.
    pub opset: i64,
    /// How many nodes of each operator the output depends on (all translated).
    pub operators: BTreeMap<String, usize>,
    /// The program that wrote the file (`pytorch 2.5`, `tf2onnx 1.16`…), if it says.
    pub producer: String,
    /// What the translation did besides one layer per node: nodes removed, constants folded,
    /// biases merged.
    pub notes: Vec<String>,
}

/// A value of the ONNX graph.
#[derive(Clone, Debug)]
enum Value {
    Const(Const),
    Act(Act),
}

/// An activation: the qfx layer computing it and its shapes (see the module documentation).
#[derive(Clone, Debug)]
struct Act {
    /// The qfx layer.
    layer: String,
    /// The layer's output shape.
    qfx: Vec<usize>,
    /// The ONNX shape of one sample.
    onnx: Vec<usize>,
    /// The ONNX value the layer's output was first bound to (aliases keep it).
    root: String,
}

/// The weights of one layer.
#[derive(Clone, Debug)]
enum Weights {
    /// `weight` `[d_in, d_out]`, `bias` `[d_out]`.
    Dense {
        weight: Vec<f32>,
        d_in: usize,
        bias: Vec<f32>,
    },
    /// `weight` `[out, in/groups, kh, kw]`, optional `bias`.
    Conv {
        weight: Vec<f32>,
        dims: [usize; 4],
        bias: Option<Vec<f32>>,
    },
    /// BatchNorm γ, β, μ, σ².
    Norm {
        gamma: Vec<f32>,
        beta: Vec<f32>,
        mean: Vec<f32>,
        var: Vec<f32>,
    },
}

/// One node being translated, for attribute access and errors.
struct Node<'a> {
    node: &'a NodeProto,
    label: String,
    op: String,
}

impl<'a> Node<'a> {
    fn new(node: &'a NodeProto, index: usize) -> Node<'a> {
        let label = match node.name.as_deref() {
            Some(n) if !n.is_empty() => n.to_string(),
            _ => format!(
                "#{index} (output `{}`)",
                node.output.first().map(String::as_str).unwrap_or("")
            ),
        };
        let op = match node.domain.as_deref() {
            None | Some("") | Some("ai.onnx") => node.op_type().to_string(),
            Some(d) => format!("{d}.{}", node.op_type()),
        };
        Node { node, label, op }
    }

    fn err(&self, message: impl Into<String>) -> OnnxError {
        OnnxError::Node {
            node: self.label.clone(),
            op: self.op.clone(),
            message: message.into(),
        }
    }

    fn attr(&self, name: &str) -> Option<&'a AttributeProto> {
        self.node
            .attribute
            .iter()
            .find(|a| a.name.as_deref() == Some(name))
    }

    /// Refuses attributes this translation does not know (their meaning would be lost).
    fn known_attrs(&self, known: &[&str]) -> Result<(), OnnxError> {
        for a in &self.node.attribute {
            let name = a.name.as_deref().unwrap_or("");
            if !known.contains(&name) {
                return Err(self.err(format!(
                    "attribute `{name}` is not one qfx reads for {} ({})",
                    self.op,
                    if known.is_empty() {
                        "it reads none".to_string()
                    } else {
                        known.join(", ")
                    }
                )));
            }
        }
        Ok(())
    }

    fn int(&self, name: &str, default: i64) -> i64 {
        self.attr(name).and_then(|a| a.i).unwrap_or(default)
    }

    fn ints(&self, name: &str) -> Option<Vec<i64>> {
        self.attr(name).map(|a| a.ints.clone())
    }

    fn float(&self, name: &str, default: f32) -> f32 {
        self.attr(name).and_then(|a| a.f).unwrap_or(default)
    }

    fn string(&self, name: &str) -> Option<String> {
        self.attr(name)
            .and_then(|a| a.s.as_ref())
            .map(|s| String::from_utf8_lossy(s).to_string())
    }

    /// Input `i`'s value name, `None` when absent or empty (an omitted optional input).
    fn input(&self, i: usize) -> Option<&'a str> {
        self.node
            .input
            .get(i)
            .map(String::as_str)
            .filter(|s| !s.is_empty())
    }

    fn output(&self, i: usize) -> Option<&'a str> {
        self.node
            .output
            .get(i)
            .map(String::as_str)
            .filter(|s| !s.is_empty())
    }
}

/// Translates the decoded model.
pub(crate) fn translate(source: &Source, options: &Options) -> Result<Imported, OnnxError> {
    let name = &source.name;
    let graph = source
        .model
        .graph
        .as_ref()
        .expect("checked when decoded: a graph");
    if !graph.sparse_initializer.is_empty() {
        return Err(OnnxError::Graph(format!(
            "{name}: sparse initializers are not read; store the weights dense"
        )));
    }
    let mut reader = TensorReader::new(source);
    let mut values: HashMap<String, Value> = HashMap::new();
    for t in &graph.initializer {
        let tname = t.name.clone().unwrap_or_default();
        let c = reader
            .read(t, &format!("initializer `{tname}`"))
            .map_err(|m| OnnxError::File(format!("{name}: {m}")))?;
        values.insert(tname, Value::Const(c));
    }
    // Inputs that are not initializers are the network's inputs.
    let inputs: Vec<_> = graph
        .input
        .iter()
        .filter(|i| !values.contains_key(i.name()))
        .collect();
    let [input] = inputs[..] else {
        let names: Vec<String> = inputs.iter().map(|i| format!("`{}`", i.name())).collect();
        return Err(OnnxError::Graph(format!(
            "{name}: the graph has {} inputs ({}); a qfx network reads exactly one",
            inputs.len(),
            names.join(", ")
        )));
    };
    let [output] = &graph.output[..] else {
        let names: Vec<String> = graph
            .output
            .iter()
            .map(|o| format!("`{}`", o.name()))
            .collect();
        return Err(OnnxError::Graph(format!(
            "{name}: the graph has {} outputs ({}); a qfx network computes exactly one",
            graph.output.len(),
            names.join(", ")
        )));
    };
    let (batch, sample) = input_shape(input, name)?;
    let spec_input = match &options.input_shape {
        Some(s) => {
            let (a, b) = (
                s.iter().product::<usize>(),
                sample.iter().product::<usize>(),
            );
            if s.is_empty() || s.len() > 3 || s.contains(&0) || a != b {
                return Err(OnnxError::Graph(format!(
                    "the input shape {s:?} given does not fit the model's input `{}` of \
                     {sample:?} ({b} values): give 1 to 3 positive sizes holding {b} values",
                    input.name()
                )));
            }
            s.clone()
        }
        None => sample.clone(),
    };

    // Which nodes the output depends on; the rest is dropped.
    let producer: HashMap<&str, usize> = graph
        .node
        .iter()
        .enumerate()
        .flat_map(|(i, n)| n.output.iter().map(move |o| (o.as_str(), i)))
        .collect();
    let mut live = vec![false; graph.node.len()];
    let mut stack = vec![output.name()];
    let mut seen = HashSet::new();
    while let Some(v) = stack.pop() {
        if !seen.insert(v) {
            continue;
        }
        if let Some(&i) = producer.get(v) {
            if !live[i] {
                live[i] = true;
                stack.extend(graph.node[i].input.iter().map(String::as_str));
            }
        }
    }
    let mut notes = Vec::new();
    let dead = live.iter().filter(|l| !**l).count();
    if dead > 0 {
        notes.push(format!(
            "{dead} node(s) that the output does not depend on were left out"
        ));
    }
    // Every unsupported operator at once, before anything else.
    let unsupported: Vec<String> = graph
        .node
        .iter()
        .enumerate()
        .filter(|(i, _)| live[*i])
        .map(|(i, n)| Node::new(n, i))
        .filter(|n| !SUPPORTED.contains(&n.op.as_str()))
        .map(|n| format!("`{}` (node `{}`)", n.op, n.label))
        .collect();
    if !unsupported.is_empty() {
        let softmax = unsupported.iter().any(|u| u.starts_with("`Softmax`"));
        return Err(OnnxError::Unsupported(format!(
            "{name}: {} node(s) use operators qfx does not import: {}. qfx imports {}{}",
            unsupported.len(),
            unsupported.join(", "),
            SUPPORTED.join(", "),
            if softmax {
                ". A Softmax at the output does not change which class is largest: export the \
                 model without it (the loss applies softmax in training)"
            } else {
                ""
            }
        )));
    }
    // How many times each value is read, a removed node's readers counted for its input.
    let mut uses: HashMap<String, usize> = HashMap::new();
    *uses.entry(output.name().to_string()).or_default() += 1;
    for (i, n) in graph.node.iter().enumerate().rev() {
        if !live[i] {
            continue;
        }
        let alias = matches!(n.op_type(), "Identity" | "Dropout");
        let extra = if alias {
            n.output
                .first()
                .map_or(0, |o| uses.get(o).copied().unwrap_or(0))
        } else {
            1
        };
        for (k, v) in n.input.iter().enumerate() {
            if !v.is_empty() && (!alias || k == 0) {
                *uses.entry(v.clone()).or_default() += extra;
            }
        }
    }

    let mut operators = BTreeMap::new();
    for (i, n) in graph.node.iter().enumerate().filter(|(i, _)| live[*i]) {
        *operators.entry(Node::new(n, i).op).or_insert(0) += 1;
    }
    let mut t = Translator {
        values,
        layers: Vec::new(),
        weights: HashMap::new(),
        names: HashSet::from([GRAPH_INPUT.to_string()]),
        uses,
        forms: HashMap::new(),
        batch,
        notes,
        reader,
    };
    let q = t.push("input_q", vec![GRAPH_INPUT.to_string()], OpSpec::Quantize);
    t.values.insert(
        input.name().to_string(),
        Value::Act(Act {
            layer: q,
            qfx: spec_input.clone(),
            onnx: sample.clone(),
            root: input.name().to_string(),
        }),
    );
    for (i, n) in graph.node.iter().enumerate() {
        if live[i] {
            t.node(&Node::new(n, i))?;
        }
    }
    let out = match t.values.get(output.name()) {
        Some(Value::Act(a)) => a.clone(),
        Some(Value::Const(_)) => {
            return Err(OnnxError::Graph(format!(
                "{name}: the output `{}` is a constant: it does not depend on the input",
                output.name()
            )))
        }
        None => {
            return Err(OnnxError::Graph(format!(
                "{name}: no node computes the output `{}`",
                output.name()
            )))
        }
    };
    if out.layer == "input_q" {
        return Err(OnnxError::Graph(format!(
            "{name}: the output `{}` is the input itself: there is no layer to import",
            output.name()
        )));
    }
    let last = t.layers.last().expect("the input layer at least");
    if last.name != out.layer {
        return Err(OnnxError::Graph(format!(
            "{name}: the output `{}` is computed by layer `{}` but the last layer is `{}`",
            output.name(),
            out.layer,
            last.name
        )));
    }
    let spec = GraphSpec {
        input: spec_input,
        layers: t.layers,
    };
    let resolved = spec.resolve()?;
    let weights = named_weights(&resolved.nodes, &t.weights);
    let producer = [
        source.model.producer_name.as_deref().unwrap_or(""),
        source.model.producer_version.as_deref().unwrap_or(""),
    ]
    .join(" ")
    .trim()
    .to_string();
    Ok(Imported {
        spec,
        weights,
        input: input.name().to_string(),
        output: output.name().to_string(),
        onnx_input_shape: sample,
        opset: source.opset,
        operators,
        producer,
        notes: t.notes,
    })
}

/// The weights as checkpoint tensors, named by each layer's module path.
fn named_weights(
    nodes: &[qfx_train::graph::ResolvedNode],
    weights: &HashMap<String, Weights>,
) -> Vec<NamedTensor> {
    let mut out = Vec::new();
    for (i, node) in nodes.iter().enumerate() {
        let Some(w) = weights.get(&node.name) else {
            continue;
        };
        let path = GraphModel::module_path(i, &node.op);
        let mut put = |field: &str, shape: Vec<usize>, data: &[f32]| {
            out.push(NamedTensor {
                name: format!("{path}.{field}"),
                shape,
                data: data.to_vec(),
            })
        };
        match w {
            Weights::Dense { weight, d_in, bias } => {
                put("weight", vec![*d_in, bias.len()], weight);
                put("bias", vec![bias.len()], bias);
            }
            Weights::Conv { weight, dims, bias } => {
                put("weight", dims.to_vec(), weight);
                if let Some(b) = bias {
                    put("bias", vec![b.len()], b);
                }
            }
            Weights::Norm {
                gamma,
                beta,
                mean,
                var,
            } => {
                let c = gamma.len();
                put("gamma", vec![c], gamma);
                put("beta", vec![c], beta);
                put("running_mean", vec![c], mean);
                put("running_var", vec![c], var);
            }
        }
    }
    out
}

/// The input's batch size (`None`: dynamic) and the shape of one sample.
fn input_shape(
    input: &crate::proto::ValueInfoProto,
    file: &str,
) -> Result<(Option<usize>, Vec<usize>), OnnxError> {
    let iname = input.name();
    let bad = |m: String| Err(OnnxError::Graph(format!("{file}: input `{iname}`: {m}")));
    let tensor = match input.r#type.as_ref().and_then(|t| t.value.as_ref()) {
        Some(type_proto::Value::TensorType(t)) => t,
        _ => return bad("is not a tensor".into()),
    };
    let elem = tensor.elem_type.unwrap_or(0);
    if elem != tensor_proto::DataType::Float as i32 {
        let ty = tensor_proto::DataType::try_from(elem)
            .map_or("an unknown type".to_string(), |t| {
                t.as_str_name().to_string()
            });
        return bad(format!("holds {ty}, not FLOAT values"));
    }
    let Some(shape) = &tensor.shape else {
        return bad(
            "has no shape: qfx builds fixed-size hardware and needs every dimension but the \
             batch"
                .into(),
        );
    };
    use crate::proto::tensor_shape_proto::dimension::Value as D;
    let dims: Vec<Option<i64>> = shape
        .dim
        .iter()
        .map(|d| match &d.value {
            Some(D::DimValue(v)) => Some(*v),
            _ => None,
        })
        .collect();
    if !(2..=4).contains(&dims.len()) {
        return bad(format!(
            "has {} dimensions; qfx reads a batch of vectors [N, features], signals [N, C, L] \
             or images [N, C, H, W]",
            dims.len()
        ));
    }
    let mut sample = Vec::new();
    for (k, (d, proto)) in dims.iter().zip(&shape.dim).enumerate().skip(1) {
        match d {
            Some(v) if *v > 0 => sample.push(*v as usize),
            _ => {
                let what = match &proto.value {
                    Some(D::DimParam(p)) => format!("`{p}`"),
                    Some(D::DimValue(v)) => v.to_string(),
                    None => "unknown".to_string(),
                };
                return bad(format!(
                    "dimension {k} is {what} (dynamic): qfx builds fixed-size hardware, so only \
                     the batch dimension (0) may be dynamic; export with fixed sizes"
                ));
            }
        }
    }
    let batch = dims[0].filter(|&v| v > 0).map(|v| v as usize);
    Ok((batch, sample))
}

/// The translation's state.
struct Translator<'a> {
    values: HashMap<String, Value>,
    layers: Vec<LayerSpec>,
    weights: HashMap<String, Weights>,
    names: HashSet<String>,
    uses: HashMap<String, usize>,
    /// `flatten`/`reshape` layers already made: (layer, shape) → the layer giving that shape.
    forms: HashMap<(String, Vec<usize>), String>,
    /// The input's fixed batch size, if it has one.
    batch: Option<usize>,
    notes: Vec<String>,
    reader: TensorReader<'a>,
}

/// A qfx layer name from an ONNX node name: letters, digits and `_` (`/conv1/Conv` →
/// `conv1_Conv`).
fn sanitize(name: &str) -> String {
    let mut out = String::new();
    for c in name.chars() {
        if c.is_ascii_alphanumeric() {
            out.push(c);
        } else if !out.is_empty() && !out.ends_with('_') {
            out.push('_');
        }
    }
    out.trim_end_matches('_').to_string()
}

/// A broadcast constant as one value per channel (axis 1 of `[N, C, …]`, or per feature of a
/// vector), if it is constant along every other axis.
fn per_channel(c: &Const, sample: &[usize]) -> Option<Vec<f32>> {
    let rank = sample.len() + 1;
    if c.dims.len() > rank || sample.is_empty() {
        return None;
    }
    let mut dims = vec![1; rank - c.dims.len()];
    dims.extend(&c.dims);
    let ch = sample[0];
    if dims[0] != 1 || !(dims[1] == 1 || dims[1] == ch) || dims[2..].iter().any(|&d| d != 1) {
        return None;
    }
    let v = c.f32s();
    Some(if dims[1] == ch && ch > 1 {
        v
    } else {
        vec![v[0]; ch]
    })
}

/// A convolution's or pooling's output length, if the window fits.
fn window_out(n: usize, span: usize, stride: usize, pads: [usize; 2], ceil: bool) -> Option<usize> {
    let padded = n + pads[0] + pads[1];
    if padded < span || stride == 0 {
        return None;
    }
    let steps = padded - span;
    Some(if ceil {
        steps.div_ceil(stride) + 1
    } else {
        steps / stride + 1
    })
}

fn positive(v: &[i64]) -> Option<Vec<usize>> {
    v.iter()
        .map(|&x| usize::try_from(x).ok().filter(|&x| x > 0))
        .collect()
}

impl Translator<'_> {
    /// Adds a layer named after `base` (made unique) and returns its name.
    fn push(&mut self, base: &str, inputs: Vec<String>, op: OpSpec) -> String {
        let mut base = sanitize(base);
        if base.is_empty() {
            base = op.kind().to_string();
        }
        let mut name = base.clone();
        let mut k = 2;
        while self.names.contains(&name) {
            name = format!("{base}_{k}");
            k += 1;
        }
        self.names.insert(name.clone());
        self.layers.push(LayerSpec {
            name: name.clone(),
            inputs: Some(inputs),
            op,
        });
        name
    }

    /// The layer giving `a`'s values in its ONNX shape (a `flatten` or `reshape` is added when
    /// the computing layer's shape differs).
    fn form(&mut self, a: &Act) -> String {
        if a.qfx == a.onnx {
            return a.layer.clone();
        }
        let key = (a.layer.clone(), a.onnx.clone());
        if let Some(l) = self.forms.get(&key) {
            return l.clone();
        }
        let (suffix, op) = if a.onnx.len() == 1 {
            ("flat", OpSpec::Flatten)
        } else {
            (
                "reshape",
                OpSpec::Reshape {
                    shape: a.onnx.clone(),
                },
            )
        };
        let l = self.push(&format!("{}_{suffix}", a.layer), vec![a.layer.clone()], op);
        self.forms.insert(key, l.clone());
        l
    }

    /// Binds `n`'s first output to a new layer's output of shape `shape`.
    fn bind_layer(&mut self, n: &Node, layer: String, shape: Vec<usize>, onnx: Vec<usize>) {
        let out = n.output(0).unwrap_or_default().to_string();
        self.values.insert(
            out.clone(),
            Value::Act(Act {
                layer,
                qfx: shape,
                onnx,
                root: out,
            }),
        );
    }

    fn bind(&mut self, n: &Node, v: Value) {
        if let Some(out) = n.output(0) {
            self.values.insert(out.to_string(), v);
        }
    }

    /// Input `i`'s value; an error naming it when absent.
    fn value(&self, n: &Node, i: usize) -> Result<Value, OnnxError> {
        let name = n
            .input(i)
            .ok_or_else(|| n.err(format!("input {i} is missing")))?;
        self.values.get(name).cloned().ok_or_else(|| {
            n.err(format!(
                "reads `{name}`, which no earlier node computes and which is neither the input \
                 nor an initializer"
            ))
        })
    }

    fn act(&self, n: &Node, i: usize) -> Result<Act, OnnxError> {
        match self.value(n, i)? {
            Value::Act(a) => Ok(a),
            Value::Const(_) => Err(n.err(format!(
                "input {i} (`{}`) is a constant; qfx translates {} on activations only",
                n.input(i).unwrap_or(""),
                n.op
            ))),
        }
    }

    /// Input `i` as a constant; `what` names it in the error.
    fn constant(&self, n: &Node, i: usize, what: &str) -> Result<Const, OnnxError> {
        match self.value(n, i)? {
            Value::Const(c) => Ok(c),
            Value::Act(_) => Err(n.err(format!(
                "the {what} `{}` is not a constant (it is computed at run time); qfx needs it \
                 as an initializer or a constant",
                n.input(i).unwrap_or("")
            ))),
        }
    }

    fn optional_constant(
        &self,
        n: &Node,
        i: usize,
        what: &str,
    ) -> Result<Option<Const>, OnnxError> {
        if n.input(i).is_none() {
            return Ok(None);
        }
        self.constant(n, i, what).map(Some)
    }

    /// Refuses a second output that something reads (a BatchNorm's training statistics, a
    /// MaxPool's indices, a Dropout's mask).
    fn only_first_output(&self, n: &Node) -> Result<(), OnnxError> {
        for (k, o) in n.node.output.iter().enumerate().skip(1) {
            if !o.is_empty() && self.uses.get(o).copied().unwrap_or(0) > 0 {
                return Err(n.err(format!(
                    "its output {k} (`{o}`) is used; qfx computes only the first output of {}",
                    n.op
                )));
            }
        }
        Ok(())
    }

    /// One elementwise layer on input 0.
    fn unary(&mut self, n: &Node, op: OpSpec) -> Result<(), OnnxError> {
        let a = self.act(n, 0)?;
        let x = self.form(&a);
        let layer = self.push(&n.label, vec![x], op);
        self.bind_layer(n, layer, a.onnx.clone(), a.onnx);
        Ok(())
    }

    fn node(&mut self, n: &Node) -> Result<(), OnnxError> {
        match n.op.as_str() {
            "Identity" => {
                n.known_attrs(&[])?;
                let v = self.value(n, 0)?;
                self.bind(n, v);
                Ok(())
            }
            "Dropout" => {
                n.known_attrs(&["seed"])?;
                if let Some(c) = self.optional_constant(n, 2, "training_mode")? {
                    if c.f32s().iter().any(|&v| v != 0.0) {
                        return Err(n.err("training_mode is true: export the model in eval mode"));
                    }
                }
                self.only_first_output(n)?;
                let v = self.value(n, 0)?;
                self.bind(n, v);
                self.notes
                    .push(format!("Dropout `{}` removed (inference)", n.label));
                Ok(())
            }
            "Constant" => self.constant_node(n),
            "Shape" => self.shape_node(n),
            "Gather" => self.gather(n),
            "Unsqueeze" => self.unsqueeze(n),
            "Cast" => self.cast(n),
            "Conv" => self.conv(n),
            "Gemm" => self.gemm(n),
            "MatMul" => self.matmul(n),
            "Add" | "Mul" => self.binary(n),
            "BatchNormalization" => self.batch_norm(n),
            "Relu" => {
                n.known_attrs(&[])?;
                self.unary(n, OpSpec::Relu { clip: None })
            }
            "LeakyRelu" => {
                n.known_attrs(&["alpha"])?;
                let slope = n.float("alpha", 0.01) as f64;
                self.unary(n, OpSpec::LeakyRelu { slope })
            }
            "Sigmoid" => {
                n.known_attrs(&[])?;
                self.unary(
                    n,
                    OpSpec::Sigmoid {
                        index_bits: 10,
                        range: 8.0,
                    },
                )
            }
            "Tanh" => {
                n.known_attrs(&[])?;
                self.unary(
                    n,
                    OpSpec::Tanh {
                        index_bits: 10,
                        range: 4.0,
                    },
                )
            }
            "HardSigmoid" => {
                n.known_attrs(&["alpha", "beta"])?;
                let slope = n.float("alpha", 0.2) as f64;
                let offset = n.float("beta", 0.5) as f64;
                self.unary(n, OpSpec::HardSigmoid { slope, offset })
            }
            "Clip" => self.clip(n),
            "Concat" => self.concat(n),
            "MaxPool" | "AveragePool" => self.pool(n),
            "GlobalAveragePool" | "GlobalMaxPool" => {
                n.known_attrs(&[])?;
                let a = self.act(n, 0)?;
                if !(2..=3).contains(&a.onnx.len()) {
                    return Err(n.err(format!(
                        "reads {:?}; global pooling reads [N, C, L] or [N, C, H, W]",
                        a.onnx
                    )));
                }
                let x = self.form(&a);
                let op = if n.op == "GlobalAveragePool" {
                    OpSpec::GlobalAvgPool
                } else {
                    OpSpec::GlobalMaxPool
                };
                let layer = self.push(&n.label, vec![x], op);
                let mut onnx = vec![1; a.onnx.len()];
                onnx[0] = a.onnx[0];
                self.bind_layer(n, layer, vec![a.onnx[0]], onnx);
                Ok(())
            }
            "Flatten" => {
                n.known_attrs(&["axis"])?;
                let a = self.act(n, 0)?;
                let rank = a.onnx.len() as i64 + 1;
                let axis = n.int("axis", 1);
                let axis = if axis < 0 { axis + rank } else { axis };
                if axis != 1 {
                    return Err(n.err(format!(
                        "axis {} folds the batch dimension into the values (qfx flattens each \
                         sample: axis 1)",
                        n.int("axis", 1)
                    )));
                }
                let total = a.onnx.iter().product();
                self.relabel(n, a, vec![total]);
                Ok(())
            }
            "Reshape" => self.reshape(n),
            other => Err(n.err(format!("{other} is not translated"))),
        }
    }

    /// `n`'s output: `a`'s values under the ONNX sample shape `onnx` (no layer; one is added
    /// in front of a consumer that needs this shape).
    fn relabel(&mut self, n: &Node, a: Act, onnx: Vec<usize>) {
        self.bind(n, Value::Act(Act { onnx, ..a }));
    }

    fn constant_node(&mut self, n: &Node) -> Result<(), OnnxError> {
        let a = n
            .node
            .attribute
            .first()
            .filter(|_| n.node.attribute.len() == 1);
        let Some(a) = a else {
            return Err(n.err("a Constant has exactly one value attribute"));
        };
        let c = match a.name.as_deref().unwrap_or("") {
            "value" => {
                let t =
                    a.t.as_ref()
                        .ok_or_else(|| n.err("`value` holds no tensor"))?;
                self.reader.read(t, "its value").map_err(|m| n.err(m))?
            }
            "value_float" => Const {
                dims: vec![],
                data: Data::F32(vec![a.f.unwrap_or(0.0)]),
            },
            "value_floats" => Const {
                dims: vec![a.floats.len()],
                data: Data::F32(a.floats.clone()),
            },
            "value_int" => Const {
                dims: vec![],
                data: Data::I64(vec![a.i.unwrap_or(0)]),
            },
            "value_ints" => Const {
                dims: vec![a.ints.len()],
                data: Data::I64(a.ints.clone()),
            },
            other => {
                return Err(n.err(format!(
                    "attribute `{other}`: qfx reads tensors and numbers, not strings or sparse \
                     tensors"
                )))
            }
        };
        self.bind(n, Value::Const(c));
        Ok(())
    }

    fn shape_node(&mut self, n: &Node) -> Result<(), OnnxError> {
        n.known_attrs(&["start", "end"])?;
        let dims: Vec<i64> = match self.value(n, 0)? {
            Value::Const(c) => c.dims.iter().map(|&d| d as i64).collect(),
            Value::Act(a) => std::iter::once(self.batch.map_or(BATCH, |b| b as i64))
                .chain(a.onnx.iter().map(|&d| d as i64))
                .collect(),
        };
        let r = dims.len() as i64;
        let clamp = |v: i64| (if v < 0 { v + r } else { v }).clamp(0, r) as usize;
        let (s, e) = (clamp(n.int("start", 0)), clamp(n.int("end", r)));
        let part = if s < e { dims[s..e].to_vec() } else { vec![] };
        self.bind(
            n,
            Value::Const(Const {
                dims: vec![part.len()],
                data: Data::I64(part),
            }),
        );
        Ok(())
    }

    fn gather(&mut self, n: &Node) -> Result<(), OnnxError> {
        n.known_attrs(&["axis"])?;
        let data = self.constant(n, 0, "data")?;
        let idx = self.constant(n, 1, "indices")?;
        if data.dims.len() != 1 || n.int("axis", 0) != 0 {
            return Err(n.err(format!(
                "qfx folds a Gather of a vector (a shape), not of {:?} on axis {}",
                data.dims,
                n.int("axis", 0)
            )));
        }
        let len = data.dims[0] as i64;
        let indices = idx
            .i64s()
            .ok_or_else(|| n.err("the indices are not integers"))?;
        let mut picked = Vec::new();
        for &i in indices {
            let j = if i < 0 { i + len } else { i };
            if !(0..len).contains(&j) {
                return Err(n.err(format!("index {i} is outside the {len} values")));
            }
            picked.push(j as usize);
        }
        let out = match &data.data {
            Data::I64(v) => Data::I64(picked.iter().map(|&j| v[j]).collect()),
            Data::F32(v) => Data::F32(picked.iter().map(|&j| v[j]).collect()),
        };
        self.bind(
            n,
            Value::Const(Const {
                dims: idx.dims.clone(),
                data: out,
            }),
        );
        Ok(())
    }

    fn unsqueeze(&mut self, n: &Node) -> Result<(), OnnxError> {
        n.known_attrs(&[])?;
        let data = self.constant(n, 0, "data")?;
        let axes = self.constant(n, 1, "axes")?;
        let axes = axes
            .i64s()
            .ok_or_else(|| n.err("the axes are not integers"))?;
        let r = (data.dims.len() + axes.len()) as i64;
        let mut at: Vec<usize> = Vec::new();
        for &a in axes {
            let a = if a < 0 { a + r } else { a };
            if !(0..r).contains(&a) || at.contains(&(a as usize)) {
                return Err(n.err(format!("axes {axes:?} do not fit rank {r}")));
            }
            at.push(a as usize);
        }
        let mut dims = data.dims.iter().copied();
        let out: Vec<usize> = (0..r as usize)
            .map(|k| {
                if at.contains(&k) {
                    1
                } else {
                    dims.next().unwrap_or(1)
                }
            })
            .collect();
        self.bind(
            n,
            Value::Const(Const {
                dims: out,
                data: data.data,
            }),
        );
        Ok(())
    }

    fn cast(&mut self, n: &Node) -> Result<(), OnnxError> {
        n.known_attrs(&["to", "saturate", "round_mode"])?;
        use tensor_proto::DataType as T;
        let code = n.int("to", 0) as i32;
        let to = T::try_from(code).unwrap_or(T::Undefined);
        let to_name =
            T::try_from(code).map_or(format!("data type {code}"), |t| t.as_str_name().to_string());
        let float = matches!(to, T::Float | T::Double | T::Float16 | T::Bfloat16);
        let integer = matches!(
            to,
            T::Int64 | T::Int32 | T::Int16 | T::Int8 | T::Uint8 | T::Uint16 | T::Uint32 | T::Bool
        );
        match self.value(n, 0)? {
            Value::Act(a) if to == T::Float => {
                self.bind(n, Value::Act(a));
                Ok(())
            }
            Value::Act(_) => Err(n.err(format!(
                "casts an activation to {}; qfx computes in float (then fixed point) only",
                to_name
            ))),
            Value::Const(c) => {
                let data = match (c.data, float, integer) {
                    (Data::I64(v), true, _) => Data::F32(v.iter().map(|&x| x as f32).collect()),
                    (Data::F32(v), _, true) => Data::I64(v.iter().map(|&x| x as i64).collect()),
                    (d, true, _) | (d, _, true) => d,
                    _ => {
                        return Err(n.err(format!("casts to {}, which qfx does not fold", to_name)))
                    }
                };
                self.bind(n, Value::Const(Const { dims: c.dims, data }));
                Ok(())
            }
        }
    }

    fn conv(&mut self, n: &Node) -> Result<(), OnnxError> {
        n.known_attrs(&[
            "auto_pad",
            "dilations",
            "group",
            "kernel_shape",
            "pads",
            "strides",
        ])?;
        let a = self.act(n, 0)?;
        let w = self.constant(n, 1, "weight")?;
        let b = self.optional_constant(n, 2, "bias")?;
        let spatial = a.onnx.len().saturating_sub(1);
        if !(1..=2).contains(&spatial) {
            return Err(n.err(format!(
                "reads {:?}; qfx convolves signals [N, C, L] and images [N, C, H, W]",
                a.onnx
            )));
        }
        let c = a.onnx[0];
        let groups = usize::try_from(n.int("group", 1))
            .ok()
            .filter(|&g| g > 0 && c % g == 0)
            .ok_or_else(|| {
                n.err(format!(
                    "group {} does not divide the {c} input channels",
                    n.int("group", 1)
                ))
            })?;
        if w.dims.len() != spatial + 2 || w.dims[1] * groups != c || w.dims[0] % groups != 0 {
            return Err(n.err(format!(
                "weight of shape {:?} does not fit {c} input channels in {groups} group(s) and \
                 {spatial} spatial axes",
                w.dims
            )));
        }
        let filters = w.dims[0];
        let kernel: Vec<usize> = w.dims[2..].to_vec();
        if let Some(ks) = n.ints("kernel_shape") {
            if positive(&ks).as_deref() != Some(&kernel[..]) {
                return Err(n.err(format!(
                    "kernel_shape {ks:?} differs from the weight's {kernel:?}"
                )));
            }
        }
        let ones = vec![1i64; spatial];
        let attr = |name: &str| -> Result<Vec<usize>, OnnxError> {
            let v = n.ints(name).unwrap_or_else(|| ones.clone());
            positive(&v)
                .filter(|v| v.len() == spatial)
                .ok_or_else(|| n.err(format!("{name} {v:?} must be {spatial} positive numbers")))
        };
        let (strides, dilations) = (attr("strides")?, attr("dilations")?);
        let input = &a.onnx[1..];
        let span = |k: usize| dilations[k] * (kernel[k] - 1) + 1;
        let pads = self.pads(n, input, &kernel, &strides, &dilations)?;
        let mut out = vec![filters];
        for k in 0..spatial {
            out.push(
                window_out(
                    input[k],
                    span(k),
                    strides[k],
                    [pads[k], pads[k + spatial]],
                    false,
                )
                .ok_or_else(|| {
                    n.err(format!(
                        "the kernel (span {}) does not fit the input {:?} with padding {pads:?}",
                        span(k),
                        a.onnx
                    ))
                })?,
            );
        }
        let bias = match &b {
            Some(b) if b.len() == filters => Some(b.f32s()),
            Some(b) => {
                return Err(n.err(format!(
                    "bias of shape {:?} does not fit {filters} filters",
                    b.dims
                )))
            }
            None => None,
        };
        let op = if spatial == 2 {
            OpSpec::Conv2d {
                filters,
                kernel: Pair::Each([kernel[0], kernel[1]]),
                stride: Pair::Each([strides[0], strides[1]]),
                padding: PadSpec::Sides(vec![pads[0], pads[2], pads[1], pads[3]]),
                dilation: Pair::Each([dilations[0], dilations[1]]),
                groups,
                bias: bias.is_some(),
            }
        } else {
            OpSpec::Conv1d {
                filters,
                kernel: kernel[0],
                stride: strides[0],
                padding: PadSpec::Sides(vec![pads[0], pads[1]]),
                dilation: dilations[0],
                groups,
                bias: bias.is_some(),
            }
        };
        let x = self.form(&a);
        let layer = self.push(&n.label, vec![x], op);
        let (kh, kw) = if spatial == 2 {
            (kernel[0], kernel[1])
        } else {
            (1, kernel[0])
        };
        self.weights.insert(
            layer.clone(),
            Weights::Conv {
                weight: w.f32s(),
                dims: [filters, c / groups, kh, kw],
                bias,
            },
        );
        self.bind_layer(n, layer, out.clone(), out);
        Ok(())
    }

    /// Explicit zero padding `[begin…, end…]` of a convolution or pooling from `pads` and
    /// `auto_pad`.
    fn pads(
        &self,
        n: &Node,
        input: &[usize],
        kernel: &[usize],
        strides: &[usize],
        dilations: &[usize],
    ) -> Result<Vec<usize>, OnnxError> {
        let spatial = input.len();
        let auto = n.string("auto_pad").unwrap_or_else(|| "NOTSET".into());
        match auto.as_str() {
            "NOTSET" => {
                let p = n.ints("pads").unwrap_or_else(|| vec![0; 2 * spatial]);
                p.iter()
                    .map(|&v| usize::try_from(v).ok())
                    .collect::<Option<Vec<usize>>>()
                    .filter(|v| v.len() == 2 * spatial)
                    .ok_or_else(|| n.err(format!("pads {p:?} must be {} numbers ≥ 0", 2 * spatial)))
            }
            "VALID" => Ok(vec![0; 2 * spatial]),
            "SAME_UPPER" | "SAME_LOWER" => {
                let mut begin = Vec::new();
                let mut end = Vec::new();
                for k in 0..spatial {
                    let out = input[k].div_ceil(strides[k]);
                    let span = dilations[k] * (kernel[k] - 1) + 1;
                    let total = ((out - 1) * strides[k] + span).saturating_sub(input[k]);
                    let small = total / 2;
                    let (b, e) = if auto == "SAME_UPPER" {
                        (small, total - small)
                    } else {
                        (total - small, small)
                    };
                    begin.push(b);
                    end.push(e);
                }
                begin.extend(end);
                Ok(begin)
            }
            other => Err(n.err(format!("auto_pad `{other}` is not an ONNX padding rule"))),
        }
    }

    /// Adds a dense layer reading `a` (a vector) with `weight` `[d_in, d_out]` and `bias`.
    fn dense(&mut self, n: &Node, a: &Act, weight: Vec<f32>, bias: Vec<f32>) -> String {
        let x = self.form(a);
        let units = bias.len();
        let layer = self.push(&n.label, vec![x], OpSpec::Dense { units, bias: true });
        self.weights.insert(
            layer.clone(),
            Weights::Dense {
                weight,
                d_in: a.onnx[0],
                bias,
            },
        );
        self.bind_layer(n, layer.clone(), vec![units], vec![units]);
        layer
    }

    fn gemm(&mut self, n: &Node) -> Result<(), OnnxError> {
        n.known_attrs(&["alpha", "beta", "transA", "transB"])?;
        let a = self.act(n, 0)?;
        let b = self.constant(n, 1, "weight (B)")?;
        let c = self.optional_constant(n, 2, "bias (C)")?;
        if n.int("transA", 0) != 0 {
            return Err(n.err(
                "transA = 1 transposes the batch of activations; qfx's dense layer reads a \
                 batch of vectors",
            ));
        }
        if a.onnx.len() != 1 {
            return Err(n.err(format!("reads {:?}; Gemm reads [N, features]", a.onnx)));
        }
        if b.dims.len() != 2 {
            return Err(n.err(format!("B has shape {:?}; Gemm's B is a matrix", b.dims)));
        }
        let trans = n.int("transB", 0) != 0;
        let (k, m) = if trans {
            (b.dims[1], b.dims[0])
        } else {
            (b.dims[0], b.dims[1])
        };
        if k != a.onnx[0] {
            return Err(n.err(format!(
                "B of shape {:?}{} does not take {} features",
                b.dims,
                if trans { " (transposed)" } else { "" },
                a.onnx[0]
            )));
        }
        let alpha = n.float("alpha", 1.0);
        let beta = n.float("beta", 1.0);
        let v = b.f32s();
        // qfx's weight is [d_in, d_out].
        let weight: Vec<f32> = (0..k)
            .flat_map(|i| (0..m).map(move |j| (i, j)))
            .map(|(i, j)| alpha * if trans { v[j * k + i] } else { v[i * m + j] })
            .collect();
        let bias = match &c {
            None => vec![0.0; m],
            Some(c) => {
                let row = per_channel(c, &[m]).ok_or_else(|| {
                    n.err(format!(
                        "C of shape {:?} is not one bias per output ({m}); a bias per sample \
                         has no qfx layer",
                        c.dims
                    ))
                })?;
                row.iter().map(|&x| beta * x).collect()
            }
        };
        self.dense(n, &a, weight, bias);
        Ok(())
    }

    fn matmul(&mut self, n: &Node) -> Result<(), OnnxError> {
        n.known_attrs(&[])?;
        if matches!(self.value(n, 0)?, Value::Const(_)) {
            return Err(n.err(
                "multiplies a constant by an activation (W·x); qfx's dense layer computes x·W",
            ));
        }
        let a = self.act(n, 0)?;
        let b = self.constant(n, 1, "weight (B)")?;
        if a.onnx.len() != 1 {
            return Err(n.err(format!(
                "reads {:?}; qfx translates a MatMul of a batch of vectors [N, features] by a \
                 matrix",
                a.onnx
            )));
        }
        if b.dims.len() != 2 || b.dims[0] != a.onnx[0] {
            return Err(n.err(format!(
                "B of shape {:?} does not take {} features",
                b.dims, a.onnx[0]
            )));
        }
        let m = b.dims[1];
        self.dense(n, &a, b.f32s(), vec![0.0; m]);
        Ok(())
    }

    /// `Add` and `Mul`: of two activations, of an activation and a constant (into the bias of
    /// the dense or convolution layer before it, or a per-channel scale or shift), or of two
    /// constants (folded).
    fn binary(&mut self, n: &Node) -> Result<(), OnnxError> {
        n.known_attrs(&[])?;
        let add = n.op == "Add";
        match (self.value(n, 0)?, self.value(n, 1)?) {
            (Value::Act(x), Value::Act(y)) => {
                if x.onnx != y.onnx {
                    return Err(n.err(format!(
                        "combines {:?} and {:?}: qfx's {} reads two tensors of one shape \
                         (no broadcasting)",
                        x.onnx,
                        y.onnx,
                        if add { "add" } else { "multiply" }
                    )));
                }
                let (p, q) = (self.form(&x), self.form(&y));
                let op = if add { OpSpec::Add } else { OpSpec::Multiply };
                let layer = self.push(&n.label, vec![p, q], op);
                self.bind_layer(n, layer, x.onnx.clone(), x.onnx);
                Ok(())
            }
            (Value::Act(x), Value::Const(c)) | (Value::Const(c), Value::Act(x)) => {
                let per = per_channel(&c, &x.onnx).ok_or_else(|| {
                    n.err(format!(
                        "{} a constant of shape {:?} to {:?}: qfx {} constants per channel (or \
                         one for all), not ones that vary within a channel",
                        if add { "adds" } else { "multiplies" },
                        c.dims,
                        x.onnx,
                        if add { "adds" } else { "multiplies by" }
                    ))
                })?;
                if add && self.fold_bias(&x, &per) {
                    self.notes.push(format!(
                        "Add `{}` merged into the bias of layer `{}`",
                        n.label, x.layer
                    ));
                    self.bind(n, Value::Act(x));
                    return Ok(());
                }
                let ch = per.len();
                let (gamma, beta) = if add {
                    (vec![1.0; ch], per)
                } else {
                    (per, vec![0.0; ch])
                };
                self.notes.push(format!(
                    "{} `{}` by a constant became a batch_norm layer (a per-channel {})",
                    n.op,
                    n.label,
                    if add { "shift" } else { "scale" }
                ));
                let xin = self.form(&x);
                let layer = self.push(&n.label, vec![xin], OpSpec::BatchNorm);
                // σ² + ε = 1: the scale is γ itself.
                let var = vec![(1.0 - QFX_BN_EPSILON) as f32; ch];
                self.weights.insert(
                    layer.clone(),
                    Weights::Norm {
                        gamma,
                        beta,
                        mean: vec![0.0; ch],
                        var,
                    },
                );
                self.bind_layer(n, layer, x.onnx.clone(), x.onnx);
                Ok(())
            }
            (Value::Const(p), Value::Const(q)) => {
                let folded = fold_binary(&p, &q, add).map_err(|m| n.err(m))?;
                self.bind(n, Value::Const(folded));
                Ok(())
            }
        }
    }

    /// Adds `per` to the bias of the dense or convolution layer computing `x` when nothing
    /// else reads that layer's output.
    fn fold_bias(&mut self, x: &Act, per: &[f32]) -> bool {
        if x.qfx != x.onnx || self.uses.get(&x.root).copied().unwrap_or(0) != 1 {
            return false;
        }
        match self.weights.get_mut(&x.layer) {
            Some(Weights::Dense { bias, .. }) => {
                for (b, p) in bias.iter_mut().zip(per) {
                    *b += p;
                }
            }
            Some(Weights::Conv { bias, .. }) => {
                match bias {
                    Some(b) => b.iter_mut().zip(per).for_each(|(b, p)| *b += p),
                    None => *bias = Some(per.to_vec()),
                }
                if let Some(l) = self.layers.iter_mut().find(|l| l.name == x.layer) {
                    if let OpSpec::Conv2d { bias, .. } | OpSpec::Conv1d { bias, .. } = &mut l.op {
                        *bias = true;
                    }
                }
            }
            _ => return false,
        }
        true
    }

    fn batch_norm(&mut self, n: &Node) -> Result<(), OnnxError> {
        n.known_attrs(&["epsilon", "momentum", "training_mode", "spatial"])?;
        if n.int("training_mode", 0) != 0 {
            return Err(n.err(
                "training_mode = 1 normalizes with batch statistics: export the model in eval \
                 mode",
            ));
        }
        self.only_first_output(n)?;
        let a = self.act(n, 0)?;
        let ch = a.onnx.first().copied().unwrap_or(0);
        let mut vecs = Vec::new();
        for (i, what) in [(1, "scale"), (2, "bias"), (3, "mean"), (4, "variance")] {
            let c = self.constant(n, i, what)?;
            if c.len() != ch {
                return Err(n.err(format!(
                    "{what} of shape {:?} does not fit {ch} channels",
                    c.dims
                )));
            }
            vecs.push(c.f32s());
        }
        let eps = n.float("epsilon", 1e-5) as f64;
        let mut var = Vec::with_capacity(ch);
        for (k, &v) in vecs[3].iter().enumerate() {
            let moved = (v as f64 + eps - QFX_BN_EPSILON) as f32;
            if !(v >= 0.0 && (moved as f64 + QFX_BN_EPSILON) > 0.0) {
                return Err(n.err(format!(
                    "channel {k}: variance {v} with ε {eps} cannot be normalized"
                )));
            }
            var.push(moved);
        }
        let x = self.form(&a);
        let layer = self.push(&n.label, vec![x], OpSpec::BatchNorm);
        let mut vecs = vecs.into_iter();
        let (gamma, beta, mean) = (
            vecs.next().unwrap_or_default(),
            vecs.next().unwrap_or_default(),
            vecs.next().unwrap_or_default(),
        );
        self.weights.insert(
            layer.clone(),
            Weights::Norm {
                gamma,
                beta,
                mean,
                var,
            },
        );
        self.bind_layer(n, layer, a.onnx.clone(), a.onnx);
        Ok(())
    }

    fn clip(&mut self, n: &Node) -> Result<(), OnnxError> {
        n.known_attrs(&[])?;
        let scalar = |c: Option<Const>, what: &str| -> Result<Option<f64>, OnnxError> {
            match c {
                None => Ok(None),
                Some(c) if c.len() == 1 => Ok(Some(c.f32s()[0] as f64)),
                Some(c) => Err(n.err(format!("{what} of shape {:?} is not one number", c.dims))),
            }
        };
        let lo = scalar(self.optional_constant(n, 1, "min")?, "min")?;
        let hi = scalar(self.optional_constant(n, 2, "max")?, "max")?;
        let finite = |v: Option<f64>| v.filter(|x| x.is_finite());
        let op = match (finite(lo), finite(hi)) {
            (Some(0.0), None) => OpSpec::Relu { clip: None },
            (Some(l), Some(h)) if l == 0.0 && h > 0.0 => OpSpec::Relu { clip: Some(h) },
            (Some(l), Some(h)) if l <= h => OpSpec::HardTanh { min: l, max: h },
            _ => {
                return Err(n.err(format!(
                    "clips to [{}, {}]; qfx translates [0, max] (ReLU, ReLU6), [0, ∞) and \
                     finite [min, max] (hard tanh)",
                    lo.map_or("−∞".into(), |v| v.to_string()),
                    hi.map_or("∞".into(), |v| v.to_string())
                )))
            }
        };
        self.unary(n, op)
    }

    fn concat(&mut self, n: &Node) -> Result<(), OnnxError> {
        n.known_attrs(&["axis"])?;
        let ins: Vec<Value> = (0..n.node.input.len())
            .map(|i| self.value(n, i))
            .collect::<Result<_, _>>()?;
        if ins.iter().all(|v| matches!(v, Value::Const(_))) {
            let consts: Vec<Const> = ins
                .into_iter()
                .map(|v| match v {
                    Value::Const(c) => c,
                    Value::Act(_) => unreachable!("all constants"),
                })
                .collect();
            let folded = fold_concat(&consts).map_err(|m| n.err(m))?;
            self.bind(n, Value::Const(folded));
            return Ok(());
        }
        let acts: Vec<Act> = (0..ins.len())
            .map(|i| self.act(n, i))
            .collect::<Result<_, _>>()?;
        let rank = acts[0].onnx.len() as i64 + 1;
        let axis = n.int("axis", 1);
        if (if axis < 0 { axis + rank } else { axis }) != 1 {
            return Err(n.err(format!(
                "concatenates along axis {axis}; qfx concatenates channels (axis 1)"
            )));
        }
        let mut out = acts[0].onnx.clone();
        for x in &acts[1..] {
            if x.onnx.len() != out.len() || x.onnx[1..] != acts[0].onnx[1..] {
                return Err(n.err(format!(
                    "concatenates {:?} and {:?}: all but the channel axis must agree",
                    acts[0].onnx, x.onnx
                )));
            }
            out[0] += x.onnx[0];
        }
        if acts.len() == 1 {
            self.bind(n, Value::Act(acts[0].clone()));
            return Ok(());
        }
        let xs: Vec<String> = acts.iter().map(|a| self.form(a)).collect();
        let layer = self.push(&n.label, xs, OpSpec::Concat);
        self.bind_layer(n, layer, out.clone(), out);
        Ok(())
    }

    fn pool(&mut self, n: &Node) -> Result<(), OnnxError> {
        let max = n.op == "MaxPool";
        n.known_attrs(&[
            "auto_pad",
            "ceil_mode",
            "count_include_pad",
            "dilations",
            "kernel_shape",
            "pads",
            "storage_order",
            "strides",
        ])?;
        self.only_first_output(n)?;
        let a = self.act(n, 0)?;
        let spatial = a.onnx.len().saturating_sub(1);
        if !(1..=2).contains(&spatial) {
            return Err(n.err(format!(
                "reads {:?}; qfx pools signals [N, C, L] and images [N, C, H, W]",
                a.onnx
            )));
        }
        let kernel = n
            .ints("kernel_shape")
            .and_then(|k| positive(&k))
            .filter(|k| k.len() == spatial)
            .ok_or_else(|| n.err(format!("kernel_shape must be {spatial} positive numbers")))?;
        let attr = |name: &str| -> Result<Vec<usize>, OnnxError> {
            let v = n.ints(name).unwrap_or_else(|| vec![1; spatial]);
            positive(&v)
                .filter(|v| v.len() == spatial)
                .ok_or_else(|| n.err(format!("{name} {v:?} must be {spatial} positive numbers")))
        };
        let (strides, dilations) = (attr("strides")?, attr("dilations")?);
        if dilations.iter().any(|&d| d != 1) {
            return Err(n.err(format!(
                "dilations {dilations:?}: qfx pools contiguous windows"
            )));
        }
        let input = &a.onnx[1..];
        let pads = self.pads(n, input, &kernel, &strides, &dilations)?;
        if pads.iter().any(|&p| p != 0) {
            return Err(n.err(format!(
                "pads {pads:?}: qfx pools without padding (pad with the convolution before it, \
                 or export with padding 0)"
            )));
        }
        let ceil = n.int("ceil_mode", 0) != 0;
        let mut out = vec![a.onnx[0]];
        for k in 0..spatial {
            let floor = window_out(input[k], kernel[k], strides[k], [0, 0], false);
            let up = window_out(input[k], kernel[k], strides[k], [0, 0], ceil);
            match (floor, up) {
                (Some(f), Some(u)) if f == u => out.push(f),
                (Some(_), Some(_)) => {
                    return Err(n.err(format!(
                        "ceil_mode makes a last window hang over the edge of {:?}; qfx pools \
                         whole windows (export with ceil_mode=False)",
                        a.onnx
                    )))
                }
                _ => {
                    return Err(n.err(format!(
                        "the window {kernel:?} does not fit the input {:?}",
                        a.onnx
                    )))
                }
            }
        }
        let op = match (max, spatial) {
            (true, 2) => OpSpec::MaxPool2d {
                kernel: Pair::Each([kernel[0], kernel[1]]),
                stride: Some(Pair::Each([strides[0], strides[1]])),
            },
            (false, 2) => OpSpec::AvgPool2d {
                kernel: Pair::Each([kernel[0], kernel[1]]),
                stride: Some(Pair::Each([strides[0], strides[1]])),
            },
            (true, _) => OpSpec::MaxPool1d {
                kernel: kernel[0],
                stride: Some(strides[0]),
            },
            (false, _) => OpSpec::AvgPool1d {
                kernel: kernel[0],
                stride: Some(strides[0]),
            },
        };
        let x = self.form(&a);
        let layer = self.push(&n.label, vec![x], op);
        self.bind_layer(n, layer, out.clone(), out);
        Ok(())
    }

    fn reshape(&mut self, n: &Node) -> Result<(), OnnxError> {
        n.known_attrs(&["allowzero"])?;
        let a = self.act(n, 0)?;
        let target = self.constant(n, 1, "shape")?;
        let t = target
            .i64s()
            .ok_or_else(|| n.err("the shape is not integers"))?
            .to_vec();
        let allowzero = n.int("allowzero", 0) != 0;
        let count: usize = a.onnx.iter().product();
        let show = |v: &[i64]| -> String {
            let parts: Vec<String> = v
                .iter()
                .map(|&d| {
                    if d == BATCH {
                        "N".into()
                    } else {
                        d.to_string()
                    }
                })
                .collect();
            format!("[{}]", parts.join(", "))
        };
        if t.is_empty() {
            return Err(n.err("reshapes to a scalar"));
        }
        // The first axis must stay the batch.
        let batch_kept = match t[0] {
            BATCH => true,
            0 if !allowzero => true,
            -1 => {
                let rest: Vec<i64> = t[1..].to_vec();
                rest.iter().all(|&d| d > 0)
                    && rest.iter().map(|&d| d as usize).product::<usize>() == count
            }
            d => self.batch.is_some_and(|b| d == b as i64),
        };
        if !batch_kept {
            return Err(n.err(format!(
                "reshapes {:?} (per sample) to {}: the first axis must stay the batch",
                a.onnx,
                show(&t)
            )));
        }
        let mut sample = Vec::new();
        let mut infer = None;
        for (k, &d) in t.iter().enumerate().skip(1) {
            match d {
                -1 if infer.is_none() => {
                    infer = Some(sample.len());
                    sample.push(1);
                }
                0 if !allowzero => match a.onnx.get(k - 1) {
                    Some(&v) => sample.push(v),
                    None => return Err(n.err(format!("a 0 at axis {k} copies no input axis"))),
                },
                d if d > 0 => sample.push(d as usize),
                _ => {
                    return Err(n.err(format!(
                        "the shape {} cannot be a per-sample shape",
                        show(&t)
                    )))
                }
            }
        }
        let known: usize = sample.iter().product();
        if let Some(i) = infer {
            if known == 0 || !count.is_multiple_of(known) {
                return Err(n.err(format!("{:?} does not reshape to {}", a.onnx, show(&t))));
            }
            sample[i] = count / known;
        }
        if sample.iter().product::<usize>() != count {
            return Err(n.err(format!(
                "{:?} ({count} values per sample) does not reshape to {}",
                a.onnx,
                show(&t)
            )));
        }
        if sample.is_empty() || sample.len() > 3 {
            return Err(n.err(format!(
                "reshapes each sample to {sample:?}; qfx holds vectors, [C, L] and [C, H, W]"
            )));
        }
        self.relabel(n, a, sample);
        Ok(())
    }
}

/// `p + q` or `p · q` of two constants (same shape, or one a single value).
fn fold_binary(p: &Const, q: &Const, add: bool) -> Result<Const, String> {
    let (big, small) = if p.len() >= q.len() { (p, q) } else { (q, p) };
    if !(small.len() == 1 || p.dims == q.dims) {
        return Err(format!(
            "qfx folds constants of one shape (or one and a number), not {:?} and {:?}",
            p.dims, q.dims
        ));
    }
    let at = |c: &Const, i: usize| if c.len() == 1 { 0 } else { i };
    let data = match (&p.data, &q.data) {
        (Data::I64(x), Data::I64(y)) => {
            let mut out = Vec::with_capacity(big.len());
            for i in 0..big.len() {
                let (u, v) = (x[at(p, i)], y[at(q, i)]);
                if u == BATCH || v == BATCH {
                    return Err("computes with the batch size, which is not fixed".into());
                }
                out.push(if add {
                    u.wrapping_add(v)
                } else {
                    u.wrapping_mul(v)
                });
            }
            Data::I64(out)
        }
        _ => {
            let (x, y) = (p.f32s(), q.f32s());
            Data::F32(
                (0..big.len())
                    .map(|i| {
                        let (u, v) = (x[at(p, i)], y[at(q, i)]);
                        if add {
                            u + v
                        } else {
                            u * v
                        }
                    })
                    .collect(),
            )
        }
    };
    Ok(Const {
        dims: big.dims.clone(),
        data,
    })
}

/// Constants side by side (vectors: the shapes exporters assemble).
fn fold_concat(cs: &[Const]) -> Result<Const, String> {
    if cs.iter().any(|c| c.dims.len() != 1) {
        let dims: Vec<_> = cs.iter().map(|c| c.dims.clone()).collect();
        return Err(format!("qfx folds a Concat of vectors, not of {dims:?}"));
    }
    let n: usize = cs.iter().map(Const::len).sum();
    let data = if cs.iter().all(|c| c.i64s().is_some()) {
        Data::I64(
            cs.iter()
                .flat_map(|c| c.i64s().unwrap_or(&[]).to_vec())
                .collect(),
        )
    } else {
        Data::F32(cs.iter().flat_map(Const::f32s).collect())
    };
    Ok(Const {
        dims: vec![n],
        data,
    })
}
