//! The resolved graph: a validated [`Model`] with every reference looked up once.
//!
//! [`Model::resolve`] checks the whole document (versions, names, references, constants, each
//! operation's shape rule) and returns a [`Graph`]: one [`Node`] per layer with its operands as
//! indices (or the raw network input), their shapes and formats, and the node's output shape.
//! Every consumer (the integer engine and its reference, the float emulation, the range
//! analysis, the cost model, the HLS emitter) walks this graph instead of resolving names again.
//! Sums of products are seen through one view, [`Mac`], whatever the layer: its weight, bias and
//! accumulator by role, and the geometry that says which input each term reads.
//!
//! Adding an operation means: its variant in `op.rs`, its shape rule in [`output_shape`] here,
//! then one function per consumer (`ARCHITECTURE.md` has the checklist).

use std::collections::HashMap;

use qfx_fixed::Format;

use crate::{elements, AccumulationOrder, Codes, IrError, Layer, Model, Op, INPUT, IR_VERSION};

/// A validated model with every reference resolved (see the [module docs](self)).
#[derive(Clone, Debug)]
pub struct Graph<'m> {
    model: &'m Model,
    nodes: Vec<Node<'m>>,
}

/// One layer of a [`Graph`].
#[derive(Clone, Debug)]
pub struct Node<'m> {
    /// Position in the model's layer list (execution order).
    pub index: usize,
    /// The layer itself.
    pub layer: &'m Layer,
    /// What it reads, in the order of `layer.inputs`.
    pub operands: Vec<Operand>,
    /// Shape of its output (per sample).
    pub shape: Vec<usize>,
}

/// One operand of a node.
#[derive(Clone, Debug, PartialEq)]
pub struct Operand {
    /// The producing layer's index, or `None` for the raw network input.
    pub source: Option<usize>,
    /// Its shape (per sample).
    pub shape: Vec<usize>,
    /// Its format; `None` for the raw network input, whose `f32` values the node converts
    /// (only operations with [`Op::converts_input`] read it).
    pub format: Option<Format>,
}

impl<'m> Graph<'m> {
    /// The model this graph resolves.
    pub fn model(&self) -> &'m Model {
        self.model
    }

    /// Every node, in execution order.
    pub fn nodes(&self) -> &[Node<'m>] {
        &self.nodes
    }

    /// The last node (the network's output).
    pub fn output(&self) -> &Node<'m> {
        self.nodes.last().expect("validated: at least one layer")
    }

    /// Values in one input sample.
    pub fn input_len(&self) -> usize {
        self.model.input_shape.iter().product()
    }
}

impl<'m> Node<'m> {
    /// The layer's operation.
    pub fn op(&self) -> &'m Op {
        &self.layer.op
    }

    /// The format the node's result is assigned to.
    pub fn format(&self) -> Format {
        self.layer.output
    }

    /// The first operand.
    pub fn x(&self) -> &Operand {
        &self.operands[0]
    }

    /// True when the node converts the raw `f32` network input.
    pub fn reads_input(&self) -> bool {
        self.x().source.is_none()
    }

    /// The format of operand `k`, for a node that reads quantized tensors.
    ///
    /// # Panics
    /// For an operand that is the raw network input (check [`Node::reads_input`] first).
    pub fn operand_format(&self, k: usize) -> Format {
        self.operands[k]
            .format
            .expect("validated: only input conversions read the raw input")
    }

    /// Elements of the output.
    pub fn len(&self) -> usize {
        self.shape.iter().product()
    }

    /// Always false: validated shapes are non-empty.
    pub fn is_empty(&self) -> bool {
        false
    }

    /// The sum of products this node computes (`Dense`, `Conv2d`), by role.
    pub fn mac(&self) -> Option<Mac<'m>> {
        match self.op() {
            Op::Dense {
                weight,
                bias,
                accumulator,
                order,
            } => Some(Mac {
                weight,
                bias: bias.as_ref(),
                accumulator,
                order: *order,
                geometry: MacGeometry::Dense {
                    inputs: weight.shape[0],
                    outputs: weight.shape[1],
                },
            }),
            Op::Conv2d {
                weight,
                bias,
                stride,
                padding,
                accumulator,
                order,
            } => Some(Mac {
                weight,
                bias: bias.as_ref(),
                accumulator,
                order: *order,
                geometry: MacGeometry::Conv2d(Conv2dGeometry {
                    c_in: weight.shape[1],
                    h: self.x().shape[1],
                    w: self.x().shape[2],
                    c_out: weight.shape[0],
                    k: weight.shape[2],
                    stride: *stride,
                    padding: *padding,
                    oh: self.shape[1],
                    ow: self.shape[2],
                }),
            }),
            _ => None,
        }
    }
}

/// A sum of products, whatever layer computes it: per output `o`, the accumulator starts as the
/// bias assigned to it, then receives `w·x` for every term in the IR's order.
#[derive(Clone, Copy, Debug)]
pub struct Mac<'m> {
    /// The weights (layout of the layer: `[in, out]` or `[out, in, k, k]`).
    pub weight: &'m Codes,
    /// The bias, if any.
    pub bias: Option<&'m Codes>,
    /// Accumulator formats: one, or one per output.
    pub accumulator: &'m [Format],
    /// Summation order.
    pub order: AccumulationOrder,
    /// Which input each term reads.
    pub geometry: MacGeometry,
}

/// The shape of a sum of products.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MacGeometry {
    /// Every output reads every input feature once.
    Dense {
        /// Input features.
        inputs: usize,
        /// Outputs.
        outputs: usize,
    },
    /// A 2-D convolution.
    Conv2d(Conv2dGeometry),
}

/// A 2-D convolution's sizes: square kernel, equal stride and zero padding on every side.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Conv2dGeometry {
    /// Input channels.
    pub c_in: usize,
    /// Input height.
    pub h: usize,
    /// Input width.
    pub w: usize,
    /// Output channels.
    pub c_out: usize,
    /// Kernel size.
    pub k: usize,
    /// Stride.
    pub stride: usize,
    /// Zero padding on each side.
    pub padding: usize,
    /// Output height.
    pub oh: usize,
    /// Output width.
    pub ow: usize,
}

impl Mac<'_> {
    /// Output channels (features for `Dense`).
    pub fn outputs(&self) -> usize {
        match self.geometry {
            MacGeometry::Dense { outputs, .. } => outputs,
            MacGeometry::Conv2d(g) => g.c_out,
        }
    }

    /// Products summed into each output (`inputs`, or `c_in·k·k`).
    pub fn terms(&self) -> usize {
        match self.geometry {
            MacGeometry::Dense { inputs, .. } => inputs,
            MacGeometry::Conv2d(g) => g.c_in * g.k * g.k,
        }
    }

    /// Output positions per channel (1 for `Dense`, `oh·ow` for a convolution).
    pub fn positions(&self) -> usize {
        match self.geometry {
            MacGeometry::Dense { .. } => 1,
            MacGeometry::Conv2d(g) => g.oh * g.ow,
        }
    }

    /// Flat index in the weight tensor of term `j` of output `o` (terms in summation order).
    pub fn weight_index(&self, o: usize, j: usize) -> usize {
        match self.geometry {
            MacGeometry::Dense { outputs, .. } => j * outputs + o,
            MacGeometry::Conv2d(_) => o * self.terms() + j,
        }
    }

    /// The input element (flat index into the operand) that term `j` of output `o` multiplies
    /// at output position `position` (row-major over `oh × ow`; 0 for `Dense`), or `None` where
    /// the term falls into zero padding and adds nothing. Terms are in summation order: bias
    /// first, then input channels (outermost), kernel rows, kernel columns (innermost).
    pub fn input_index(&self, o: usize, position: usize, j: usize) -> Option<usize> {
        // Every output reads the same inputs today; grouped convolutions will depend on `o`.
        let _ = o;
        match self.geometry {
            MacGeometry::Dense { .. } => Some(j),
            MacGeometry::Conv2d(g) => {
                let (ci, ky, kx) = (j / (g.k * g.k), j / g.k % g.k, j % g.k);
                let (y, x) = (position / g.ow, position % g.ow);
                let iy = (y * g.stride + ky).checked_sub(g.padding)?;
                let ix = (x * g.stride + kx).checked_sub(g.padding)?;
                (iy < g.h && ix < g.w).then_some((ci * g.h + iy) * g.w + ix)
            }
        }
    }

    /// The format of output `o`'s weights (validation allows formats along the output axis
    /// only, so one output's terms share it).
    pub fn weight_format(&self, o: usize) -> Format {
        self.weight.format_of(self.weight_index(o, 0))
    }

    /// Output `o`'s accumulator format.
    pub fn accumulator(&self, o: usize) -> Format {
        per_channel(self.accumulator, o)
    }
}

/// Element `c` of a list that holds one value for every channel, or one value for all.
pub fn per_channel<T: Copy>(values: &[T], c: usize) -> T {
    if values.len() == 1 {
        values[0]
    } else {
        values[c]
    }
}

impl Model {
    /// Checks the whole document and resolves every reference once (see [`Graph`]).
    ///
    /// ```
    /// use qfx_ir::{Layer, Model, Op, INPUT, IR_VERSION};
    /// let q = |name: &str, input: &str, op| Layer {
    ///     name: name.into(),
    ///     inputs: vec![input.into()],
    ///     op,
    ///     output: "ap_fixed<8,3>".parse().unwrap(),
    /// };
    /// let model = Model {
    ///     version: IR_VERSION,
    ///     name: "tiny".into(),
    ///     input_shape: vec![2, 3, 3],
    ///     preprocess: None,
    ///     layers: vec![q("q", INPUT, Op::Quantize), q("flat", "q", Op::Flatten)],
    /// };
    /// let graph = model.resolve()?;
    /// let flat = &graph.nodes()[1];
    /// assert_eq!((flat.x().source, flat.shape.clone()), (Some(0), vec![18]));
    /// assert!(graph.nodes()[0].reads_input());
    /// # Ok::<(), qfx_ir::IrError>(())
    /// ```
    pub fn resolve(&self) -> Result<Graph<'_>, IrError> {
        if self.version == 0 || self.version > IR_VERSION {
            return Err(IrError::new(format!(
                "unsupported version {}",
                self.version
            )));
        }
        if self.layers.is_empty() {
            return Err(IrError::new("no layers"));
        }
        if elements(&self.input_shape).is_none() {
            return Err(IrError::new(format!(
                "input shape {:?} is empty or too large",
                self.input_shape
            )));
        }
        if let Some(p) = &self.preprocess {
            if self.input_shape.len() != 3 {
                return Err(IrError::new(format!(
                    "image preprocessing needs a [c, h, w] input, not {:?}",
                    self.input_shape
                )));
            }
            p.validate(self.input_shape[0])?;
        }
        let mut index: HashMap<&str, usize> = HashMap::new();
        let mut nodes: Vec<Node<'_>> = Vec::with_capacity(self.layers.len());
        for (i, layer) in self.layers.iter().enumerate() {
            let err = |m: String| IrError::new(format!("layer `{}`: {m}", layer.name));
            if layer.name == INPUT || index.contains_key(layer.name.as_str()) {
                return Err(err("duplicate or reserved name".into()));
            }
            let operands: Vec<Operand> = layer
                .inputs
                .iter()
                .map(|name| {
                    if name == INPUT {
                        return Ok(Operand {
                            source: None,
                            shape: self.input_shape.clone(),
                            format: None,
                        });
                    }
                    let j = *index
                        .get(name.as_str())
                        .ok_or_else(|| err(format!("input `{name}` is not an earlier layer")))?;
                    Ok(Operand {
                        source: Some(j),
                        shape: nodes[j].shape.clone(),
                        format: Some(self.layers[j].output),
                    })
                })
                .collect::<Result<_, IrError>>()?;
            let arity = layer.op.arity();
            if operands.len() != arity {
                return Err(err(format!(
                    "takes {arity} input(s), has {}",
                    operands.len()
                )));
            }
            if operands.iter().any(|o| o.source.is_none()) && !layer.op.converts_input() {
                return Err(err(format!(
                    "reads the raw input, but only quantize and flatten layers convert it to \
                     fixed point; a {} layer reads quantized tensors (add a quantize layer first)",
                    layer.op.kind()
                )));
            }
            let shapes: Vec<&[usize]> = operands.iter().map(|o| o.shape.as_slice()).collect();
            let shape = output_shape(&layer.op, &shapes).map_err(err)?;
            // Every tensor must be non-empty and of a size that fits in memory arithmetic.
            if elements(&shape).is_none() {
                return Err(err(format!("output shape {shape:?} is empty or too large")));
            }
            if layer.op.moves_values() && operands[0].format.is_some_and(|f| f != layer.output) {
                return Err(err(
                    "moves values, so its output format must be its input's".into(),
                ));
            }
            index.insert(&layer.name, i);
            nodes.push(Node {
                index: i,
                layer,
                operands,
                shape,
            });
        }
        Ok(Graph { model: self, nodes })
    }
}

/// The shape rule of every operation: its output shape from its operands' shapes, after
/// checking its constants against them. The error says what does not fit (the caller names the
/// layer).
fn output_shape(op: &Op, ins: &[&[usize]]) -> Result<Vec<usize>, String> {
    let x = ins[0];
    let image = |what: &str| -> Result<[usize; 3], String> {
        match x {
            &[c, h, w] => Ok([c, h, w]),
            _ => Err(format!("{what} input must be [c, h, w], is {x:?}")),
        }
    };
    let channels = x.first().copied().unwrap_or(0);
    let per_channel_constant = |codes: &Codes, what: &str| -> Result<(), String> {
        codes.validate(what).map_err(|e| e.message)?;
        if x.is_empty() || codes.shape != [channels] {
            return Err(format!("{what} must be [{channels}]"));
        }
        Ok(())
    };
    Ok(match op {
        Op::Quantize | Op::Relu { .. } | Op::Sign => x.to_vec(),
        Op::Dense {
            weight,
            bias,
            accumulator,
            ..
        } => {
            weight.validate("weight").map_err(|e| e.message)?;
            let [d_in, d_out] = weight.shape[..] else {
                return Err(format!(
                    "dense weight must be [in, out], is {:?}",
                    weight.shape
                ));
            };
            if !matches!(weight.axis, None | Some(1)) {
                return Err(
                    "dense weight formats must be one, or one per output (axis 1)".to_string(),
                );
            }
            if x != [d_in] {
                return Err(format!(
                    "input {x:?} does not match weight [in={d_in}, out]"
                ));
            }
            check_bias_acc(bias, accumulator, d_out)?;
            vec![d_out]
        }
        Op::Conv2d {
            weight,
            bias,
            stride,
            padding,
            accumulator,
            ..
        } => {
            weight.validate("weight").map_err(|e| e.message)?;
            let [c_out, c_in, k, k2] = weight.shape[..] else {
                return Err(format!(
                    "conv weight must be [out, in, k, k], is {:?}",
                    weight.shape
                ));
            };
            if !matches!(weight.axis, None | Some(0)) {
                return Err(
                    "conv weight formats must be one, or one per output channel (axis 0)"
                        .to_string(),
                );
            }
            if k != k2 || *stride == 0 {
                return Err("kernel must be square and stride positive".to_string());
            }
            let [c, h, w] = image("conv")?;
            let padded = |d: usize| padding.checked_mul(2).and_then(|p| p.checked_add(d));
            let (Some(ph), Some(pw)) = (padded(h), padded(w)) else {
                return Err(format!("padding {padding} is too large"));
            };
            if c != c_in || ph < k || pw < k {
                return Err(format!(
                    "input {x:?} does not fit weight {:?}",
                    weight.shape
                ));
            }
            check_bias_acc(bias, accumulator, c_out)?;
            vec![c_out, (ph - k) / stride + 1, (pw - k) / stride + 1]
        }
        Op::BatchNorm { scale, shift } => {
            per_channel_constant(scale, "scale")?;
            per_channel_constant(shift, "shift")?;
            x.to_vec()
        }
        Op::Prelu { slope } => {
            per_channel_constant(slope, "slope")?;
            x.to_vec()
        }
        Op::Add => {
            if ins[0] != ins[1] {
                return Err(format!("adds shapes {:?} and {:?}", ins[0], ins[1]));
            }
            x.to_vec()
        }
        Op::MaxPool2d { kernel } => {
            let [c, h, w] = image("pooling")?;
            if *kernel == 0 || h < *kernel || w < *kernel {
                return Err("bad pooling window".to_string());
            }
            vec![c, h / kernel, w / kernel]
        }
        Op::GlobalAvgPool { reciprocal } => {
            reciprocal.validate("reciprocal").map_err(|e| e.message)?;
            if reciprocal.codes.len() != 1 {
                return Err("the reciprocal must be a single constant".to_string());
            }
            let [c, _, _] = image("pooling")?;
            vec![c]
        }
        Op::Flatten => vec![elements(x).unwrap_or(0)],
        Op::Shortcut {
            stride,
            pad_channels,
        } => {
            let [c, h, w] = image("shortcut")?;
            if *stride == 0 {
                return Err("stride must be positive".to_string());
            }
            let channels = c
                .checked_add(*pad_channels)
                .ok_or_else(|| format!("{pad_channels} padding channels is too many"))?;
            vec![channels, h.div_ceil(*stride), w.div_ceil(*stride)]
        }
    })
}

fn check_bias_acc(
    bias: &Option<Codes>,
    accumulator: &[Format],
    outputs: usize,
) -> Result<(), String> {
    if let Some(b) = bias {
        b.validate("bias").map_err(|e| e.message)?;
        if b.shape != [outputs] {
            return Err(format!("bias must be [{outputs}], is {:?}", b.shape));
        }
    }
    if accumulator.len() != 1 && accumulator.len() != outputs {
        return Err(format!(
            "{} accumulator formats for {outputs} outputs",
            accumulator.len()
        ));
    }
    Ok(())
}
