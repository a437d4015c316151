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

use crate::{
    clip_constant, elements, AccumulationOrder, Codes, IrError, Layer, Model, Op, INPUT, IR_VERSION,
};

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

    /// The sum of products this node computes (`Dense`, `Conv2d`, `Conv1d`), by role.
    pub fn mac(&self) -> Option<Mac<'m>> {
        let (weight, bias, accumulator, order, geometry) = match self.op() {
            Op::Dense {
                weight,
                bias,
                accumulator,
                order,
            } => {
                let geometry = MacGeometry::Dense {
                    inputs: weight.shape[0],
                    outputs: weight.shape[1],
                };
                (weight, bias, accumulator, order, geometry)
            }
            Op::Conv2d {
                weight,
                bias,
                accumulator,
                order,
                ..
            }
            | Op::Conv1d {
                weight,
                bias,
                accumulator,
                order,
                ..
            } => {
                let g = ConvGeometry::of(self.op(), &self.x().shape, &self.shape)?;
                (weight, bias, accumulator, order, MacGeometry::Conv(g))
            }
            _ => return None,
        };
        Some(Mac {
            weight,
            bias: bias.as_ref(),
            accumulator,
            order: *order,
            geometry,
        })
    }

    /// The window of a pooling layer (`MaxPool2d/1d`, `AvgPool2d/1d`, and the global ones, whose
    /// window is the whole map).
    pub fn window(&self) -> Option<Window> {
        let x = &self.x().shape;
        let (h, w) = image_dims(x);
        let (kernel, stride) = match self.op() {
            Op::MaxPool2d { kernel, stride } | Op::AvgPool2d { kernel, stride, .. } => {
                (kernel.get(), stride.unwrap_or(*kernel).get())
            }
            Op::MaxPool1d { kernel, stride } | Op::AvgPool1d { kernel, stride, .. } => {
                ([1, *kernel], [1, stride.unwrap_or(*kernel)])
            }
            Op::GlobalAvgPool { .. } | Op::GlobalMaxPool => ([h, w], [h, w]),
            _ => return None,
        };
        Some(Window {
            channels: x[0],
            h,
            w,
            kernel,
            stride,
            oh: (h - kernel[0]) / stride[0] + 1,
            ow: (w - kernel[1]) / stride[1] + 1,
        })
    }
}

/// Height and width of a map `[c, h, w]`, `[c, length]` (height 1) or `[c]` (1 × 1).
fn image_dims(shape: &[usize]) -> (usize, usize) {
    match shape {
        [_, h, w] => (*h, *w),
        [_, l] => (1, *l),
        _ => (1, 1),
    }
}

/// A sum of products, whatever layer computes it: per output `o`, the accumulator starts as the
/// bias assigned to it, then receives `w·x` for every term in the IR's order.
#[derive(Clone, Copy, Debug)]
pub struct Mac<'m> {
    /// The weights (layout of the layer: `[in, out]`, `[out, in/groups, kh, kw]` or
    /// `[out, in/groups, k]`).
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
    /// A convolution (a 1-D one is a 2-D one of height 1).
    Conv(ConvGeometry),
}

/// A convolution's sizes; a 1-D convolution has `h = kh = oh = 1`, no vertical stride, dilation
/// or padding.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ConvGeometry {
    /// Input channels.
    pub c_in: usize,
    /// Input height.
    pub h: usize,
    /// Input width (a signal's length).
    pub w: usize,
    /// Output channels.
    pub c_out: usize,
    /// Channel groups (`c_in` and `c_out` are multiples).
    pub groups: usize,
    /// Kernel `[height, width]`.
    pub kernel: [usize; 2],
    /// Stride `[vertical, horizontal]`.
    pub stride: [usize; 2],
    /// Dilation `[vertical, horizontal]`.
    pub dilation: [usize; 2],
    /// Zero padding `[top, bottom, left, right]`.
    pub padding: [usize; 4],
    /// Output height.
    pub oh: usize,
    /// Output width.
    pub ow: usize,
}

impl ConvGeometry {
    /// The geometry of a `Conv2d` or `Conv1d` reading `x` and writing `y` (validated shapes).
    fn of(op: &Op, x: &[usize], y: &[usize]) -> Option<ConvGeometry> {
        let (h, w) = image_dims(x);
        let (oh, ow) = image_dims(y);
        let (weight, kernel, stride, dilation, padding, groups) = match op {
            Op::Conv2d {
                weight,
                stride,
                padding,
                dilation,
                groups,
                ..
            } => (
                weight,
                [weight.shape[2], weight.shape[3]],
                stride.get(),
                dilation.get(),
                padding.get(),
                *groups,
            ),
            Op::Conv1d {
                weight,
                stride,
                padding,
                dilation,
                groups,
                ..
            } => (
                weight,
                [1, weight.shape[2]],
                [1, *stride],
                [1, *dilation],
                [0, 0, padding[0], padding[1]],
                *groups,
            ),
            _ => return None,
        };
        Some(ConvGeometry {
            c_in: x[0],
            h,
            w,
            c_out: weight.shape[0],
            groups,
            kernel,
            stride,
            dilation,
            padding,
            oh,
            ow,
        })
    }

    /// Input channels each output channel reads (`c_in / groups`).
    pub fn group_inputs(&self) -> usize {
        self.c_in / self.groups
    }

    /// The first input channel output channel `o` reads.
    pub fn first_input(&self, o: usize) -> usize {
        o / (self.c_out / self.groups) * self.group_inputs()
    }
}

/// A pooling window over a map (a signal is a map of height 1; global pooling's window is the
/// whole map). No padding: output positions are where the window fits.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Window {
    /// Channels (unchanged by pooling).
    pub channels: usize,
    /// Input height.
    pub h: usize,
    /// Input width.
    pub w: usize,
    /// Window `[height, width]`.
    pub kernel: [usize; 2],
    /// Stride `[vertical, horizontal]`.
    pub stride: [usize; 2],
    /// Output height.
    pub oh: usize,
    /// Output width.
    pub ow: usize,
}

impl Window {
    /// Values in one window.
    pub fn size(&self) -> usize {
        self.kernel[0] * self.kernel[1]
    }

    /// The input elements (flat indices into `[c, h, w]`) of channel `c`'s window at output
    /// position `p` (row-major over `oh × ow`), row by row.
    pub fn inputs(&self, c: usize, p: usize) -> impl Iterator<Item = usize> + '_ {
        let (y, x) = (p / self.ow * self.stride[0], p % self.ow * self.stride[1]);
        (0..self.kernel[0]).flat_map(move |ky| {
            let row = (c * self.h + y + ky) * self.w + x;
            row..row + self.kernel[1]
        })
    }
}

impl Mac<'_> {
    /// Output channels (features for `Dense`).
    pub fn outputs(&self) -> usize {
        match self.geometry {
            MacGeometry::Dense { outputs, .. } => outputs,
            MacGeometry::Conv(g) => g.c_out,
        }
    }

    /// Products summed into each output (`inputs`, or `c_in/groups · kh · kw`).
    pub fn terms(&self) -> usize {
        match self.geometry {
            MacGeometry::Dense { inputs, .. } => inputs,
            MacGeometry::Conv(g) => g.group_inputs() * g.kernel[0] * g.kernel[1],
        }
    }

    /// Output positions per channel (1 for `Dense`, `oh·ow` for a convolution).
    pub fn positions(&self) -> usize {
        match self.geometry {
            MacGeometry::Dense { .. } => 1,
            MacGeometry::Conv(g) => g.oh * g.ow,
        }
    }

    /// Flat index in the weight tensor of term `j` of output `o` (terms in summation order).
    pub fn weight_index(&self, o: usize, j: usize) -> usize {
        match self.geometry {
            MacGeometry::Dense { outputs, .. } => j * outputs + o,
            MacGeometry::Conv(_) => o * self.terms() + j,
        }
    }

    /// The input element (flat index into the operand) that term `j` of output `o` multiplies
    /// at output position `position` (row-major over `oh × ow`; 0 for `Dense`), or `None` where
    /// the term falls into zero padding and adds nothing. Terms are in summation order: bias
    /// first, then the input channels of `o`'s group (outermost), kernel rows, kernel columns
    /// (innermost).
    pub fn input_index(&self, o: usize, position: usize, j: usize) -> Option<usize> {
        match self.geometry {
            MacGeometry::Dense { .. } => Some(j),
            MacGeometry::Conv(g) => {
                let [kh, kw] = g.kernel;
                let ci = g.first_input(o) + j / (kh * kw);
                let (ky, kx) = (j / kw % kh, j % kw);
                let (y, x) = (position / g.ow, position % g.ow);
                let iy = (y * g.stride[0] + ky * g.dilation[0]).checked_sub(g.padding[0])?;
                let ix = (x * g.stride[1] + kx * g.dilation[1]).checked_sub(g.padding[2])?;
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
            // Pixels are images; stored values (a table's features) fit any input shape.
            if p.input == crate::PreprocessInput::Pixels && self.input_shape.len() != 3 {
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
            match layer.op.arity() {
                Some(n) if operands.len() != n => {
                    return Err(err(format!("takes {n} input(s), has {}", operands.len())))
                }
                None if operands.len() < 2 => {
                    return Err(err(format!(
                        "takes 2 or more inputs, has {}",
                        operands.len()
                    )))
                }
                _ => {}
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
            if let Op::Lookup { table, .. } = &layer.op {
                check_table(table, layer.output).map_err(err)?;
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
    let channels = x.first().copied().unwrap_or(0);
    let per_channel_constant = |codes: &Codes, what: &str, one_allowed: bool| {
        codes.validate(what).map_err(|e| e.message)?;
        if codes.shape == [channels] || (one_allowed && codes.shape == [1]) {
            Ok(())
        } else if one_allowed {
            Err(format!("{what} must be [{channels}] or [1]"))
        } else {
            Err(format!("{what} must be [{channels}]"))
        }
    };
    let scalar = |codes: &Codes, what: &str| -> Result<(), String> {
        codes.validate(what).map_err(|e| e.message)?;
        if codes.codes.len() != 1 {
            return Err(format!("{what} must be a single constant"));
        }
        Ok(())
    };
    Ok(match op {
        Op::Quantize | Op::Relu { .. } | Op::Sign => x.to_vec(),
        Op::HardTanh { min, max } => {
            match (clip_constant(*min), clip_constant(*max)) {
                (Some(lo), Some(hi)) if lo <= hi => {}
                _ => return Err(format!("bounds [{min}, {max}] are not finite and ordered")),
            }
            x.to_vec()
        }
        Op::HardSigmoid { alpha, beta } => {
            scalar(alpha, "alpha")?;
            scalar(beta, "beta")?;
            x.to_vec()
        }
        Op::Lookup { table, shift, .. } => {
            table.validate("table").map_err(|e| e.message)?;
            if table.shape.len() != 1 || table.formats.len() != 1 {
                return Err("the table must be [n] with one format".to_string());
            }
            if shift.unsigned_abs() > 126 {
                return Err(format!("shift {shift} is beyond ±126 bits"));
            }
            x.to_vec()
        }
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
            dilation,
            groups,
            accumulator,
            ..
        } => {
            weight.validate("weight").map_err(|e| e.message)?;
            let [c_out, c_group, kh, kw] = weight.shape[..] else {
                return Err(format!(
                    "conv2d weight must be [out, in/groups, kh, kw], is {:?}",
                    weight.shape
                ));
            };
            let &[c, h, w] = x else {
                return Err(format!("conv2d input must be [c, h, w], is {x:?}"));
            };
            let p = padding.get();
            let oh = conv_output(h, kh, stride.get()[0], dilation.get()[0], [p[0], p[1]])?;
            let ow = conv_output(w, kw, stride.get()[1], dilation.get()[1], [p[2], p[3]])?;
            check_conv(weight, c, c_group, c_out, *groups, bias, accumulator)?;
            vec![c_out, oh, ow]
        }
        Op::Conv1d {
            weight,
            bias,
            stride,
            padding,
            dilation,
            groups,
            accumulator,
            ..
        } => {
            weight.validate("weight").map_err(|e| e.message)?;
            let [c_out, c_group, k] = weight.shape[..] else {
                return Err(format!(
                    "conv1d weight must be [out, in/groups, k], is {:?}",
                    weight.shape
                ));
            };
            let &[c, l] = x else {
                return Err(format!("conv1d input must be [c, length], is {x:?}"));
            };
            let ol = conv_output(l, k, *stride, *dilation, *padding)?;
            check_conv(weight, c, c_group, c_out, *groups, bias, accumulator)?;
            vec![c_out, ol]
        }
        Op::BatchNorm { scale, shift } => {
            per_channel_constant(scale, "scale", false)?;
            per_channel_constant(shift, "shift", false)?;
            x.to_vec()
        }
        Op::Prelu { slope } => {
            per_channel_constant(slope, "slope", true)?;
            x.to_vec()
        }
        Op::Add | Op::Multiply => {
            if ins[0] != ins[1] {
                return Err(format!("combines shapes {:?} and {:?}", ins[0], ins[1]));
            }
            x.to_vec()
        }
        Op::Concat => {
            let mut out = x.to_vec();
            for other in &ins[1..] {
                if other.len() != x.len() || other[1..] != x[1..] {
                    return Err(format!(
                        "concatenates {x:?} and {other:?}: all but the channel axis must agree"
                    ));
                }
                out[0] = out[0]
                    .checked_add(other[0])
                    .ok_or("too many channels".to_string())?;
            }
            out
        }
        Op::MaxPool2d { kernel, stride } | Op::AvgPool2d { kernel, stride, .. } => {
            let &[c, h, w] = x else {
                return Err(format!("2-D pooling input must be [c, h, w], is {x:?}"));
            };
            let (k, s) = (kernel.get(), stride.unwrap_or(*kernel).get());
            if let Op::AvgPool2d { reciprocal, .. } = op {
                scalar(reciprocal, "reciprocal")?;
            }
            vec![c, pool_output(h, k[0], s[0])?, pool_output(w, k[1], s[1])?]
        }
        Op::MaxPool1d { kernel, stride } | Op::AvgPool1d { kernel, stride, .. } => {
            let &[c, l] = x else {
                return Err(format!("1-D pooling input must be [c, length], is {x:?}"));
            };
            if let Op::AvgPool1d { reciprocal, .. } = op {
                scalar(reciprocal, "reciprocal")?;
            }
            vec![c, pool_output(l, *kernel, stride.unwrap_or(*kernel))?]
        }
        Op::GlobalAvgPool { reciprocal } => {
            scalar(reciprocal, "reciprocal")?;
            global_pool(x)?
        }
        Op::GlobalMaxPool => global_pool(x)?,
        Op::Flatten => vec![elements(x).unwrap_or(0)],
        Op::Reshape { shape } => {
            if elements(shape) != elements(x) {
                return Err(format!("cannot reshape {x:?} into {shape:?}"));
            }
            shape.clone()
        }
        Op::Shortcut {
            stride,
            pad_channels,
        } => {
            let &[c, h, w] = x else {
                return Err(format!("shortcut input must be [c, h, w], is {x:?}"));
            };
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

/// A lookup table's codes are the layer's output codes: one format, the output format, and
/// only codes an assignment to it can produce (`AP_SAT_SYM` never yields its most negative
/// code), so every back end returns exactly the table's codes.
fn check_table(table: &Codes, output: Format) -> Result<(), String> {
    if table.formats[0] != output {
        return Err(format!(
            "the table's format {} must be the output format {output}",
            table.formats[0]
        ));
    }
    let (lo, hi) = output.assignable_range();
    match table
        .codes
        .iter()
        .position(|&c| (c as i128) < lo || (c as i128) > hi)
    {
        Some(i) => Err(format!(
            "table code {} at {i} is not a value of {output} (no assignment produces it)",
            table.codes[i]
        )),
        None => Ok(()),
    }
}

/// Output length of a convolution along one axis: `(n + pads − dilation·(k − 1) − 1) / s + 1`;
/// the error says what does not fit.
pub fn conv_output(
    n: usize,
    k: usize,
    s: usize,
    d: usize,
    pads: [usize; 2],
) -> Result<usize, String> {
    if k == 0 || s == 0 || d == 0 {
        return Err("kernel, stride and dilation must be positive".to_string());
    }
    let padded = n
        .checked_add(pads[0])
        .and_then(|v| v.checked_add(pads[1]))
        .ok_or_else(|| format!("padding {pads:?} is too large"))?;
    let span = d
        .checked_mul(k - 1)
        .and_then(|v| v.checked_add(1))
        .ok_or("dilation is too large")?;
    if padded < span {
        return Err(format!(
            "the kernel spans {span} values, more than the {padded} of the padded input"
        ));
    }
    Ok((padded - span) / s + 1)
}

/// Output length of a pooling window without padding along one axis; the error says what does
/// not fit.
pub fn pool_output(n: usize, k: usize, s: usize) -> Result<usize, String> {
    if k == 0 || s == 0 || k > n {
        return Err(format!(
            "bad pooling window {k} (stride {s}) for an input of {n}"
        ));
    }
    Ok((n - k) / s + 1)
}

/// A global pooling layer's output `[c]`, from a map `[c, h, w]` or a signal `[c, length]`.
fn global_pool(x: &[usize]) -> Result<Vec<usize>, String> {
    match x {
        [c, _] | [c, _, _] => Ok(vec![*c]),
        _ => Err(format!(
            "global pooling input must be [c, length] or [c, h, w], is {x:?}"
        )),
    }
}

/// A convolution's weight, groups, bias and accumulators against its input's channels.
fn check_conv(
    weight: &Codes,
    c: usize,
    c_group: usize,
    c_out: usize,
    groups: usize,
    bias: &Option<Codes>,
    accumulator: &[Format],
) -> Result<(), String> {
    if !matches!(weight.axis, None | Some(0)) {
        return Err(
            "conv weight formats must be one, or one per output channel (axis 0)".to_string(),
        );
    }
    if groups == 0 || !c.is_multiple_of(groups) || !c_out.is_multiple_of(groups) {
        return Err(format!(
            "{groups} groups must divide the {c} input and {c_out} output channels"
        ));
    }
    if c_group != c / groups {
        return Err(format!(
            "weight {:?} reads {c_group} channels per group; the input has {} per group \
             ({c} channels, {groups} groups)",
            weight.shape,
            c / groups
        ));
    }
    check_bias_acc(bias, accumulator, c_out)
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
