//! The trainable network of a resolved layer graph: one fixed-point layer module per node, run in
//! execution order. Values flow as vectors `[batch, n]` or maps `[batch, c, h, w]` (a signal
//! `[c, length]` is a map of height 1), so each layer keeps the tensor rank its kernels want.

use burn::module::Module;
use burn::tensor::{Device, Tensor};

use super::spec::{OpSpec, ResolvedGraph};
use crate::activations::{
    QConcat, QHardSigmoid, QHardTanh, QLeakyRelu, QLookup, QMul, TableFunction,
};
use crate::bnn::{binarize, QBinaryConv2d, QPrelu};
use crate::layers::{
    ConvShape, QAdd, QAvgPool2d, QBatchNorm2d, QConv2d, QGlobalAvgPool, QLinear, QMaxPool2d, QReLU,
    QuantConfig,
};
use crate::quantizer::{Calibration, QTensor, Quantizer};

/// A layer of a graph model: the module of its operation.
#[derive(Module, Debug)]
#[allow(clippy::large_enum_variant)] // one per layer, built once
pub enum Layer {
    /// `quantize`.
    Quantize(Quantizer),
    /// `dense`.
    Dense(QLinear),
    /// `conv2d` and `conv1d`.
    Conv2d(QConv2d),
    /// `binary_conv2d`.
    BinaryConv2d(QBinaryConv2d),
    /// `batch_norm`.
    BatchNorm(QBatchNorm2d),
    /// `relu`.
    Relu(QReLU),
    /// `prelu`.
    Prelu(QPrelu),
    /// `leaky_relu`.
    LeakyRelu(QLeakyRelu),
    /// `hard_tanh`.
    HardTanh(QHardTanh),
    /// `hard_sigmoid`.
    HardSigmoid(QHardSigmoid),
    /// `sigmoid` and `tanh` (tables).
    Lookup(QLookup),
    /// `sign`.
    Sign(Stateless),
    /// `add`.
    Add(QAdd),
    /// `multiply`.
    Multiply(QMul),
    /// `concat`.
    Concat(QConcat),
    /// `max_pool2d` and `max_pool1d`.
    MaxPool2d(QMaxPool2d),
    /// `avg_pool2d` and `avg_pool1d`.
    AvgPool2d(QAvgPool2d),
    /// `global_avg_pool`.
    GlobalAvgPool(QGlobalAvgPool),
    /// `global_max_pool`.
    GlobalMaxPool(Stateless),
    /// `flatten`.
    Flatten(Stateless),
    /// `reshape`.
    Reshape(Stateless),
    /// `shortcut`.
    Shortcut(OptionA),
}

/// A layer without parameters or formats of its own.
#[derive(Module, Debug)]
pub struct Stateless;

/// The ResNet option-A shortcut (see [`OpSpec::Shortcut`]).
#[derive(Module, Debug)]
pub struct OptionA {
    /// Subsampling stride.
    pub stride: usize,
    /// Zero channels appended.
    pub pad_channels: usize,
}

/// A network built from a [`ResolvedGraph`]: `layers[i]` computes `graph.nodes[i]`.
#[derive(Module, Debug)]
pub struct GraphModel {
    /// One module per node.
    pub layers: Vec<Layer>,
    /// What each layer reads and produces.
    #[module(skip)]
    pub graph: ResolvedGraph,
}

/// A value flowing between layers.
#[derive(Clone, Debug)]
enum Value {
    /// `[batch, n]`.
    Vector(QTensor<2>),
    /// `[batch, c, h, w]`.
    Map(QTensor<4>),
}

impl Value {
    fn map(self) -> QTensor<4> {
        match self {
            Value::Map(t) => t,
            Value::Vector(t) => {
                // A vector into a per-channel layer (BatchNorm, PReLU): each feature a channel.
                let [n, c] = t.value.dims();
                QTensor {
                    value: t.value.reshape([n, c, 1, 1]),
                    frac: t.frac,
                }
            }
        }
    }

    fn vector(self) -> QTensor<2> {
        match self {
            Value::Vector(t) => t,
            Value::Map(t) => {
                let [n, c, h, w] = t.value.dims();
                QTensor {
                    value: t.value.reshape([n, c * h * w]),
                    frac: t.frac,
                }
            }
        }
    }

    fn vector_value(self) -> Value {
        Value::Vector(self.vector())
    }
}

impl GraphModel {
    /// Builds every layer with the settings `quant` gives its name. Layers are constructed (and
    /// their weights drawn from the device's seeded generator) in `init_order` when given (the
    /// built-in networks keep the order their original implementations drew in), else in
    /// execution order.
    pub fn new(
        graph: ResolvedGraph,
        quant: &QuantConfig,
        init_order: Option<&[usize]>,
        device: &Device,
    ) -> GraphModel {
        let n = graph.nodes.len();
        let identity: Vec<usize> = (0..n).collect();
        let order = init_order.unwrap_or(&identity);
        let mut built: Vec<Option<Layer>> = (0..n).map(|_| None).collect();
        for &i in order {
            let node = &graph.nodes[i];
            let q = quant.for_layer(&node.name);
            let layer = build(&node.op, &node.input_shapes[0], &q, device);
            built[i] = Some(layer);
        }
        GraphModel {
            layers: built
                .into_iter()
                .map(|l| l.expect("the init order covers every layer"))
                .collect(),
            graph,
        }
    }

    /// The module path (as checkpoints name tensors) of layer `i` computing `op`:
    /// `layers.<i>.<variant>` (the variant of [`Layer`] that [`build`] makes for it).
    pub fn module_path(i: usize, op: &OpSpec) -> String {
        let variant = match op {
            OpSpec::Quantize => "Quantize",
            OpSpec::Dense { .. } => "Dense",
            OpSpec::Conv2d { .. } | OpSpec::Conv1d { .. } => "Conv2d",
            OpSpec::BinaryConv2d { .. } => "BinaryConv2d",
            OpSpec::BatchNorm => "BatchNorm",
            OpSpec::Relu { .. } => "Relu",
            OpSpec::Prelu { .. } => "Prelu",
            OpSpec::LeakyRelu { .. } => "LeakyRelu",
            OpSpec::HardTanh { .. } => "HardTanh",
            OpSpec::HardSigmoid { .. } => "HardSigmoid",
            OpSpec::Sigmoid { .. } | OpSpec::Tanh { .. } => "Lookup",
            OpSpec::Sign => "Sign",
            OpSpec::Add => "Add",
            OpSpec::Multiply => "Multiply",
            OpSpec::Concat => "Concat",
            OpSpec::MaxPool2d { .. } | OpSpec::MaxPool1d { .. } => "MaxPool2d",
            OpSpec::AvgPool2d { .. } | OpSpec::AvgPool1d { .. } => "AvgPool2d",
            OpSpec::GlobalAvgPool => "GlobalAvgPool",
            OpSpec::GlobalMaxPool => "GlobalMaxPool",
            OpSpec::Flatten => "Flatten",
            OpSpec::Reshape { .. } => "Reshape",
            OpSpec::Shortcut { .. } => "Shortcut",
        };
        format!("layers.{i}.{variant}")
    }

    /// A batch of samples (`[batch, …]` with the elements of the input shape in row-major
    /// order) to the last layer's output, flattened to `[batch, n]`.
    pub fn forward<const D: usize>(&self, x: Tensor<D>) -> Tensor<2> {
        let input = self.input_value(x);
        let nodes = &self.graph.nodes;
        walk(&self.graph, input, |i, ins| {
            step(&self.layers[i], &nodes[i].shape, ins)
        })
        .vector()
        .value
    }

    /// Every binary point from the values seen on `x` (post-training calibration), layer by
    /// layer in execution order.
    pub fn calibrate<const D: usize>(&mut self, x: Tensor<D>, method: Calibration) {
        let input = self.input_value(x);
        let (graph, layers) = (&self.graph, &mut self.layers);
        walk(graph, input, |i, ins| {
            calibrate_step(&mut layers[i], &graph.nodes[i].shape, ins, method)
        });
    }

    /// The batch in the rank of the network's input: a vector `[batch, n]`, or a map.
    fn input_value<const D: usize>(&self, x: Tensor<D>) -> Value {
        let batch = x.dims()[0];
        let input = &self.graph.input;
        match input[..] {
            [n] => Value::Vector(QTensor::float(x.reshape([batch, n]))),
            [c, l] => Value::Map(QTensor::float(x.reshape([batch, c, 1, l]))),
            [c, h, w] => Value::Map(QTensor::float(x.reshape([batch, c, h, w]))),
            _ => unreachable!("validated: inputs have 1 to 3 axes"),
        }
    }
}

/// The module of one layer reading `x` (its first input's shape), with settings `q`.
fn build(op: &OpSpec, x: &[usize], q: &QuantConfig, device: &Device) -> Layer {
    let channels = x.first().copied().unwrap_or(1);
    let conv = |filters: usize, groups: usize, bias: bool| {
        let g = op.conv_geometry(x).expect("validated geometry");
        let shape = ConvShape {
            kernel: g.kernel,
            stride: g.stride,
            dilation: g.dilation,
            padding: g.padding,
            groups,
        };
        Layer::Conv2d(QConv2d::new(channels, filters, shape, bias, q, device))
    };
    let window = |k: [usize; 2], s: [usize; 2]| (k, s);
    match op {
        OpSpec::Quantize => Layer::Quantize(q.act_quantizer(true, device)),
        OpSpec::Dense { units, .. } => Layer::Dense(QLinear::new(x[0], *units, q, device)),
        OpSpec::Conv2d {
            filters,
            groups,
            bias,
            ..
        }
        | OpSpec::Conv1d {
            filters,
            groups,
            bias,
            ..
        } => conv(*filters, *groups, *bias),
        OpSpec::BinaryConv2d {
            filters,
            kernel,
            stride,
        } => Layer::BinaryConv2d(QBinaryConv2d::new(
            channels, *filters, *kernel, *stride, q, device,
        )),
        OpSpec::BatchNorm => Layer::BatchNorm(QBatchNorm2d::new(channels, q, device)),
        OpSpec::Relu { clip } => {
            let mut r = QReLU::new(q, device);
            r.clip = *clip;
            Layer::Relu(r)
        }
        OpSpec::Prelu { init } => Layer::Prelu(QPrelu::new(channels, *init, q, device)),
        OpSpec::LeakyRelu { slope } => Layer::LeakyRelu(QLeakyRelu::new(*slope, q, device)),
        OpSpec::HardTanh { min, max } => Layer::HardTanh(QHardTanh::new(*min, *max, q, device)),
        OpSpec::HardSigmoid { slope, offset } => {
            Layer::HardSigmoid(QHardSigmoid::new(*slope, *offset, q, device))
        }
        OpSpec::Sigmoid { index_bits, range } => Layer::Lookup(QLookup::new(
            TableFunction::Sigmoid,
            *index_bits,
            *range,
            q,
            device,
        )),
        OpSpec::Tanh { index_bits, range } => Layer::Lookup(QLookup::new(
            TableFunction::Tanh,
            *index_bits,
            *range,
            q,
            device,
        )),
        OpSpec::Sign => Layer::Sign(Stateless),
        OpSpec::Add => Layer::Add(QAdd::new(q, device)),
        OpSpec::Multiply => Layer::Multiply(QMul::new(q, device)),
        OpSpec::Concat => Layer::Concat(QConcat::new(q, device)),
        OpSpec::MaxPool2d { kernel, stride } => {
            let (kernel, stride) = window(kernel.get(), stride.unwrap_or(*kernel).get());
            Layer::MaxPool2d(QMaxPool2d { kernel, stride })
        }
        OpSpec::MaxPool1d { kernel, stride } => {
            let (kernel, stride) = window([1, *kernel], [1, stride.unwrap_or(*kernel)]);
            Layer::MaxPool2d(QMaxPool2d { kernel, stride })
        }
        OpSpec::AvgPool2d { kernel, stride } => {
            let (k, s) = window(kernel.get(), stride.unwrap_or(*kernel).get());
            Layer::AvgPool2d(QAvgPool2d::new(k, s, q, device))
        }
        OpSpec::AvgPool1d { kernel, stride } => {
            let (k, s) = window([1, *kernel], [1, stride.unwrap_or(*kernel)]);
            Layer::AvgPool2d(QAvgPool2d::new(k, s, q, device))
        }
        OpSpec::GlobalAvgPool => Layer::GlobalAvgPool(QGlobalAvgPool::new(q, device)),
        OpSpec::GlobalMaxPool => Layer::GlobalMaxPool(Stateless),
        OpSpec::Flatten => Layer::Flatten(Stateless),
        OpSpec::Reshape { .. } => Layer::Reshape(Stateless),
        OpSpec::Shortcut {
            stride,
            pad_channels,
        } => Layer::Shortcut(OptionA {
            stride: *stride,
            pad_channels: *pad_channels,
        }),
    }
}

/// Runs every node in order: `f(i, inputs)` computes node `i` from the values it reads.
fn walk(
    graph: &ResolvedGraph,
    input: Value,
    mut f: impl FnMut(usize, Vec<Value>) -> Value,
) -> Value {
    let mut outs: Vec<Value> = Vec::with_capacity(graph.nodes.len());
    for (i, node) in graph.nodes.iter().enumerate() {
        let ins = node
            .sources
            .iter()
            .map(|s| s.map_or_else(|| input.clone(), |j| outs[j].clone()))
            .collect();
        let out = f(i, ins);
        outs.push(out);
    }
    outs.pop().expect("validated: at least one layer")
}

/// A per-channel layer on a map, or on a vector whose features are its channels.
fn per_channel(x: Value, f: impl FnOnce(QTensor<4>) -> QTensor<4>) -> Value {
    match x {
        Value::Map(t) => Value::Map(f(t)),
        v @ Value::Vector(_) => Value::Map(f(v.map())).vector_value(),
    }
}

/// Applies a rank-generic layer method to a value, whatever its rank.
macro_rules! each_rank {
    ($x:expr, $t:ident => $e:expr) => {
        match $x {
            Value::Vector($t) => Value::Vector($e),
            Value::Map($t) => Value::Map($e),
        }
    };
}

/// Two same-rank operands (the graph checked their shapes).
fn pair(a: Value, b: Value) -> Pair {
    match a {
        Value::Vector(a) => Pair::Vectors(a, b.vector()),
        Value::Map(a) => Pair::Maps(a, b.map()),
    }
}

enum Pair {
    Vectors(QTensor<2>, QTensor<2>),
    Maps(QTensor<4>, QTensor<4>),
}

macro_rules! each_pair {
    ($a:expr, $b:expr, ($p:ident, $q:ident) => $e:expr) => {
        match pair($a, $b) {
            Pair::Vectors($p, $q) => Value::Vector($e),
            Pair::Maps($p, $q) => Value::Map($e),
        }
    };
}

/// Same-rank operands of a concatenation.
fn all_same_rank(ins: Vec<Value>) -> Result<Vec<QTensor<2>>, Vec<QTensor<4>>> {
    if matches!(ins[0], Value::Vector(_)) {
        Ok(ins.into_iter().map(Value::vector).collect())
    } else {
        Err(ins.into_iter().map(Value::map).collect())
    }
}

/// The maximum over every position of each channel: `[batch, c]`, on the input's grid.
fn global_max(t: QTensor<4>) -> QTensor<2> {
    let [n, c, h, w] = t.value.dims();
    QTensor {
        value: t.value.reshape([n, c, h * w]).max_dim(2).reshape([n, c]),
        frac: t.frac,
    }
}

/// The same values under the logical shape `shape` (row-major order is kept).
fn reshape(x: Value, shape: &[usize]) -> Value {
    let t = x.vector();
    let n = t.value.dims()[0];
    let value = t.value;
    match shape {
        [f] => Value::Vector(QTensor {
            value: value.reshape([n, *f]),
            frac: t.frac,
        }),
        [c, l] => Value::Map(QTensor {
            value: value.reshape([n, *c, 1, *l]),
            frac: t.frac,
        }),
        [c, h, w] => Value::Map(QTensor {
            value: value.reshape([n, *c, *h, *w]),
            frac: t.frac,
        }),
        _ => unreachable!("validated: shapes have 1 to 3 axes"),
    }
}

/// One layer's forward pass; `shape` is its output's logical shape.
fn step(layer: &Layer, shape: &[usize], mut ins: Vec<Value>) -> Value {
    let x = ins.remove(0);
    match layer {
        Layer::Quantize(q) => each_rank!(x, t => q.forward_q(t.value)),
        Layer::Dense(l) => Value::Vector(l.forward(x.vector())),
        Layer::Conv2d(c) => Value::Map(c.forward(x.map())),
        Layer::BinaryConv2d(c) => Value::Map(c.forward(x.map())),
        Layer::BatchNorm(b) => per_channel(x, |t| b.forward(t)),
        Layer::Relu(r) => each_rank!(x, t => r.forward(t)),
        Layer::Prelu(p) => per_channel(x, |t| p.forward(t)),
        Layer::LeakyRelu(l) => each_rank!(x, t => l.forward(t)),
        Layer::HardTanh(h) => each_rank!(x, t => h.forward(t)),
        Layer::HardSigmoid(h) => each_rank!(x, t => h.forward(t)),
        Layer::Lookup(l) => each_rank!(x, t => l.forward(t)),
        Layer::Sign(_) => each_rank!(x, t => binarize(t)),
        Layer::Add(a) => each_pair!(x, ins.remove(0), (p, q) => a.forward(p, q)),
        Layer::Multiply(m) => each_pair!(x, ins.remove(0), (p, q) => m.forward(p, q)),
        Layer::Concat(c) => {
            ins.insert(0, x);
            match all_same_rank(ins) {
                Ok(vs) => Value::Vector(c.forward(vs)),
                Err(ms) => Value::Map(c.forward(ms)),
            }
        }
        Layer::MaxPool2d(p) => Value::Map(p.forward(x.map())),
        Layer::AvgPool2d(p) => Value::Map(p.forward(x.map())),
        Layer::GlobalAvgPool(p) => Value::Vector(p.forward(x.map())),
        Layer::GlobalMaxPool(_) => Value::Vector(global_max(x.map())),
        Layer::Flatten(_) => x.vector_value(),
        Layer::Reshape(_) => reshape(x, shape),
        Layer::Shortcut(s) => {
            Value::Map(crate::models::option_a(x.map(), s.stride, s.pad_channels))
        }
    }
}

/// One layer's calibration (its binary points from `ins`), then its output.
fn calibrate_step(
    layer: &mut Layer,
    shape: &[usize],
    mut ins: Vec<Value>,
    method: Calibration,
) -> Value {
    let x = ins[0].clone();
    match layer {
        Layer::Quantize(q) => each_rank!(x, t => {
            q.calibrate(&t.value, method);
            q.forward_q(t.value)
        }),
        Layer::Dense(l) => Value::Vector(l.calibrate(x.vector(), method)),
        Layer::Conv2d(c) => Value::Map(c.calibrate(x.map(), method)),
        Layer::BinaryConv2d(c) => Value::Map(c.calibrate(x.map(), method)),
        Layer::BatchNorm(b) => per_channel(x, |t| b.calibrate(t, method)),
        Layer::Relu(r) => each_rank!(x, t => r.calibrate(t, method)),
        Layer::Prelu(p) => per_channel(x, |t| p.calibrate(t, method)),
        Layer::LeakyRelu(l) => each_rank!(x, t => l.calibrate(t, method)),
        Layer::HardTanh(h) => each_rank!(x, t => h.calibrate(t, method)),
        Layer::HardSigmoid(h) => each_rank!(x, t => h.calibrate(t, method)),
        Layer::Lookup(l) => each_rank!(x, t => l.calibrate(t, method)),
        Layer::Add(a) => each_pair!(x, ins.swap_remove(1), (p, q) => a.calibrate(p, q, method)),
        Layer::Multiply(m) => {
            each_pair!(x, ins.swap_remove(1), (p, q) => m.calibrate(p, q, method))
        }
        Layer::Concat(c) => match all_same_rank(ins) {
            Ok(vs) => Value::Vector(c.calibrate(vs, method)),
            Err(ms) => Value::Map(c.calibrate(ms, method)),
        },
        Layer::AvgPool2d(p) => Value::Map(p.calibrate(x.map(), method)),
        Layer::GlobalAvgPool(p) => Value::Vector(p.calibrate(x.map(), method)),
        Layer::Sign(_)
        | Layer::MaxPool2d(_)
        | Layer::GlobalMaxPool(_)
        | Layer::Flatten(_)
        | Layer::Reshape(_)
        | Layer::Shortcut(_) => step(layer, shape, ins),
    }
}
