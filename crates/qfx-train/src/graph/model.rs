//! The trainable network of a resolved layer graph: one fixed-point layer module per node, run in
//! execution order. Values flow as vectors `[batch, n]` or maps `[batch, c, h, w]` (a signal
//! `[c, length]` is a map of height 1), so each layer keeps the tensor rank its kernels want.

use burn::module::Module;
use burn::tensor::{Device, Tensor};

use super::spec::{OpSpec, ResolvedGraph};
use crate::bnn::{binarize, QBinaryConv2d, QPrelu};
use crate::layers::{
    QAdd, QBatchNorm2d, QConv2d, QGlobalAvgPool, QLinear, QMaxPool2d, QReLU, QuantConfig,
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
    /// `conv2d`.
    Conv2d(QConv2d),
    /// `binary_conv2d`.
    BinaryConv2d(QBinaryConv2d),
    /// `batch_norm`.
    BatchNorm(QBatchNorm2d),
    /// `relu`.
    Relu(QReLU),
    /// `prelu`.
    Prelu(QPrelu),
    /// `sign`.
    Sign(Stateless),
    /// `add`.
    Add(QAdd),
    /// `max_pool2d`.
    MaxPool2d(QMaxPool2d),
    /// `global_avg_pool`.
    GlobalAvgPool(QGlobalAvgPool),
    /// `flatten`.
    Flatten(Stateless),
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
            let channels = node.input_shapes[0].first().copied().unwrap_or(1);
            let layer = match &node.op {
                OpSpec::Quantize => Layer::Quantize(q.act_quantizer(true, device)),
                OpSpec::Dense { units, .. } => {
                    Layer::Dense(QLinear::new(node.input_shapes[0][0], *units, &q, device))
                }
                OpSpec::Conv2d {
                    filters,
                    kernel,
                    stride,
                    padding,
                    bias,
                } => Layer::Conv2d(QConv2d::new(
                    channels, *filters, *kernel, *stride, *padding, *bias, &q, device,
                )),
                OpSpec::BinaryConv2d {
                    filters,
                    kernel,
                    stride,
                } => Layer::BinaryConv2d(QBinaryConv2d::new(
                    channels, *filters, *kernel, *stride, &q, device,
                )),
                OpSpec::BatchNorm => Layer::BatchNorm(QBatchNorm2d::new(channels, &q, device)),
                OpSpec::Relu { clip } => {
                    let mut r = QReLU::new(&q, device);
                    r.clip = *clip;
                    Layer::Relu(r)
                }
                OpSpec::Prelu { init } => Layer::Prelu(QPrelu::new(channels, *init, &q, device)),
                OpSpec::Sign => Layer::Sign(Stateless),
                OpSpec::Add => Layer::Add(QAdd::new(&q, device)),
                OpSpec::MaxPool2d { kernel } => Layer::MaxPool2d(QMaxPool2d { kernel: *kernel }),
                OpSpec::GlobalAvgPool => Layer::GlobalAvgPool(QGlobalAvgPool::new(&q, device)),
                OpSpec::Flatten => Layer::Flatten(Stateless),
                OpSpec::Shortcut {
                    stride,
                    pad_channels,
                } => Layer::Shortcut(OptionA {
                    stride: *stride,
                    pad_channels: *pad_channels,
                }),
            };
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
    /// `layers.<i>.<variant>`.
    pub fn module_path(i: usize, op: &OpSpec) -> String {
        let variant = match op {
            OpSpec::Quantize => "Quantize",
            OpSpec::Dense { .. } => "Dense",
            OpSpec::Conv2d { .. } => "Conv2d",
            OpSpec::BinaryConv2d { .. } => "BinaryConv2d",
            OpSpec::BatchNorm => "BatchNorm",
            OpSpec::Relu { .. } => "Relu",
            OpSpec::Prelu { .. } => "Prelu",
            OpSpec::Sign => "Sign",
            OpSpec::Add => "Add",
            OpSpec::MaxPool2d { .. } => "MaxPool2d",
            OpSpec::GlobalAvgPool => "GlobalAvgPool",
            OpSpec::Flatten => "Flatten",
            OpSpec::Shortcut { .. } => "Shortcut",
        };
        format!("layers.{i}.{variant}")
    }

    /// A batch of samples (`[batch, …]` with the elements of the input shape in row-major
    /// order) to the last layer's output, flattened to `[batch, n]`.
    pub fn forward<const D: usize>(&self, x: Tensor<D>) -> Tensor<2> {
        let input = self.input_value(x);
        walk(&self.graph, input, |i, ins| step(&self.layers[i], ins))
            .vector()
            .value
    }

    /// Every binary point from the values seen on `x` (post-training calibration), layer by
    /// layer in execution order.
    pub fn calibrate<const D: usize>(&mut self, x: Tensor<D>, method: Calibration) {
        let input = self.input_value(x);
        let (graph, layers) = (&self.graph, &mut self.layers);
        walk(graph, input, |i, ins| {
            calibrate_step(&mut layers[i], ins, method)
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

/// One layer's forward pass.
fn step(layer: &Layer, mut ins: Vec<Value>) -> Value {
    let x = ins.swap_remove(0);
    match layer {
        Layer::Quantize(q) => match x {
            Value::Vector(t) => Value::Vector(q.forward_q(t.value)),
            Value::Map(t) => Value::Map(q.forward_q(t.value)),
        },
        Layer::Dense(l) => Value::Vector(l.forward(x.vector())),
        Layer::Conv2d(c) => Value::Map(c.forward(x.map())),
        Layer::BinaryConv2d(c) => Value::Map(c.forward(x.map())),
        Layer::BatchNorm(b) => per_channel(x, |t| b.forward(t)),
        Layer::Relu(r) => match x {
            Value::Vector(t) => Value::Vector(r.forward(t)),
            Value::Map(t) => Value::Map(r.forward(t)),
        },
        Layer::Prelu(p) => per_channel(x, |t| p.forward(t)),
        Layer::Sign(_) => Value::Map(binarize(x.map())),
        Layer::Add(a) => {
            let b = ins.swap_remove(0);
            match (x, b) {
                (Value::Vector(p), q) => Value::Vector(a.forward(p, q.vector())),
                (Value::Map(p), q) => Value::Map(a.forward(p, q.map())),
            }
        }
        Layer::MaxPool2d(p) => Value::Map(p.forward(x.map())),
        Layer::GlobalAvgPool(p) => Value::Vector(p.forward(x.map())),
        Layer::Flatten(_) => x.vector_value(),
        Layer::Shortcut(s) => {
            Value::Map(crate::models::option_a(x.map(), s.stride, s.pad_channels))
        }
    }
}

/// One layer's calibration (its binary points from `ins`), then its output.
fn calibrate_step(layer: &mut Layer, mut ins: Vec<Value>, method: Calibration) -> Value {
    let x = ins[0].clone();
    match layer {
        Layer::Quantize(q) => match x {
            Value::Vector(t) => {
                q.calibrate(&t.value, method);
                Value::Vector(q.forward_q(t.value))
            }
            Value::Map(t) => {
                q.calibrate(&t.value, method);
                Value::Map(q.forward_q(t.value))
            }
        },
        Layer::Dense(l) => Value::Vector(l.calibrate(x.vector(), method)),
        Layer::Conv2d(c) => Value::Map(c.calibrate(x.map(), method)),
        Layer::BinaryConv2d(c) => Value::Map(c.calibrate(x.map(), method)),
        Layer::BatchNorm(b) => per_channel(x, |t| b.calibrate(t, method)),
        Layer::Relu(r) => match x {
            Value::Vector(t) => Value::Vector(r.calibrate(t, method)),
            Value::Map(t) => Value::Map(r.calibrate(t, method)),
        },
        Layer::Prelu(p) => per_channel(x, |t| p.calibrate(t, method)),
        Layer::Add(a) => {
            let b = ins.swap_remove(1);
            match (x, b) {
                (Value::Vector(p), q) => Value::Vector(a.calibrate(p, q.vector(), method)),
                (Value::Map(p), q) => Value::Map(a.calibrate(p, q.map(), method)),
            }
        }
        Layer::GlobalAvgPool(p) => Value::Vector(p.calibrate(x.map(), method)),
        Layer::Sign(_) | Layer::MaxPool2d(_) | Layer::Flatten(_) | Layer::Shortcut(_) => {
            step(layer, ins)
        }
    }
}
