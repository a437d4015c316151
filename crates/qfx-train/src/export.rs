//! Export of a trained quantized model to the shared IR (`qfx-ir`): one IR layer per graph
//! layer, of the same name, with its formats and every constant as integer codes taken from
//! exactly the values the model computes with (BatchNorm folded with its running statistics, as
//! in inference).

use burn::module::Module;
use burn::tensor::{Device, Tensor};
use qfx_fixed::{Fixed, Format, KHot};
use qfx_ir::{AccumulationOrder, Codes, Op, Padding, Pair, INPUT, IR_VERSION};

use crate::activations::QLookup;

use crate::bnn::{binary_format, QBinaryConv2d, QPrelu};
use crate::error::TrainError;
use crate::graph::{GraphModel, Layer, OpSpec};
use crate::host::HostValues;
use crate::layers::{acc_frac_bits, QBatchNorm2d, QConv2d, QGlobalAvgPool, QLinear};
use crate::quant::Granularity;
use crate::quantizer::Quantizer;

/// Exports `model` (quantizers enabled) as an IR document named `name`.
pub fn export(model: &GraphModel, name: &str) -> Result<qfx_ir::Model, TrainError> {
    let model = model.valid(); // inference mode: running statistics, no autodiff
    let graph = &model.graph;
    let mut formats: Vec<Format> = Vec::with_capacity(graph.nodes.len());
    let mut layers = Vec::with_capacity(graph.nodes.len());
    for (i, node) in graph.nodes.iter().enumerate() {
        let x = node.sources[0].map(|j| formats[j]);
        let (op, output) = layer_op(&model, i, x)?;
        formats.push(output);
        layers.push(qfx_ir::Layer {
            name: node.name.clone(),
            inputs: node
                .sources
                .iter()
                .map(|s| s.map_or(INPUT.to_string(), |j| graph.nodes[j].name.clone()))
                .collect(),
            op,
            output,
        });
    }
    let ir = qfx_ir::Model {
        version: IR_VERSION,
        name: name.to_string(),
        input_shape: graph.input.clone(),
        layers,
        preprocess: None,
    };
    ir.validate()
        .map_err(|e| TrainError::Shape(e.to_string()))?;
    Ok(ir)
}

/// The IR operation of one layer and its output format; `x` is its first input's format
/// (`None` for the raw network input, which only quantize and flatten layers read).
fn layer_op(model: &GraphModel, i: usize, x: Option<Format>) -> Result<(Op, Format), TrainError> {
    let (layer, node) = (&model.layers[i], &model.graph.nodes[i]);
    let fx =
        || x.ok_or_else(|| TrainError::Shape(format!("layer `{}` reads the raw input", node.name)));
    Ok(match layer {
        Layer::Quantize(q) => (Op::Quantize, format(q)?),
        // Flattening moves values: the output keeps its input's format; flattening the raw
        // input converts it to the format of the quantizer that reads the flattened values.
        Layer::Flatten(_) => match x {
            Some(f) => (Op::Flatten, f),
            None => (Op::Flatten, consumer_format(model, i)?),
        },
        Layer::Dense(l) => dense(l, fx()?)?,
        Layer::Conv2d(c) => conv(c, matches!(node.op, OpSpec::Conv1d { .. }), fx()?)?,
        Layer::BinaryConv2d(c) => binary_conv(c, fx()?)?,
        Layer::BatchNorm(n) => batch_norm(n)?,
        Layer::Relu(r) => (Op::Relu { clip: r.clip }, format(&r.out)?),
        Layer::Prelu(p) => prelu(p)?,
        Layer::Sign(_) => (Op::Sign, binary_format()),
        Layer::Add(a) => (Op::Add, format(&a.out)?),
        Layer::Multiply(m) => (Op::Multiply, format(&m.out)?),
        Layer::Concat(c) => (Op::Concat, format(&c.out)?),
        Layer::LeakyRelu(l) => {
            let slope = codes(&l.slope_q, l.held_slope(&Device::flex()))?;
            (Op::Prelu { slope }, format(&l.out)?)
        }
        Layer::HardTanh(h) => (
            Op::HardTanh {
                min: h.min,
                max: h.max,
            },
            format(&h.out)?,
        ),
        Layer::HardSigmoid(h) => {
            let (a, b) = h.held(&Device::flex());
            let op = Op::HardSigmoid {
                alpha: codes(&h.slope_q, a)?,
                beta: codes(&h.offset_q, b)?,
            };
            (op, format(&h.out)?)
        }
        Layer::Lookup(l) => lookup(l, fx()?)?,
        Layer::MaxPool2d(p) => {
            let op = match node.op {
                OpSpec::MaxPool1d { .. } => Op::MaxPool1d {
                    kernel: p.kernel[1],
                    stride: (p.stride != p.kernel).then_some(p.stride[1]),
                },
                _ => Op::MaxPool2d {
                    kernel: pair(p.kernel),
                    stride: (p.stride != p.kernel).then(|| pair(p.stride)),
                },
            };
            (op, fx()?)
        }
        Layer::AvgPool2d(p) => {
            let r = p
                .reciprocal_fixed()
                .map_err(|e| TrainError::Spec(e.to_string()))?;
            let reciprocal = scalar_codes(r);
            let op = match node.op {
                OpSpec::AvgPool1d { .. } => Op::AvgPool1d {
                    kernel: p.kernel[1],
                    stride: (p.stride != p.kernel).then_some(p.stride[1]),
                    reciprocal,
                },
                _ => Op::AvgPool2d {
                    kernel: pair(p.kernel),
                    stride: (p.stride != p.kernel).then(|| pair(p.stride)),
                    reciprocal,
                },
            };
            (op, format(&p.out)?)
        }
        Layer::GlobalAvgPool(p) => {
            let window: usize = node.input_shapes[0][1..].iter().product();
            global_avg_pool(p, window)?
        }
        Layer::GlobalMaxPool(_) => (Op::GlobalMaxPool, fx()?),
        Layer::Reshape(_) => (
            Op::Reshape {
                shape: node.shape.clone(),
            },
            fx()?,
        ),
        Layer::Shortcut(s) => (
            Op::Shortcut {
                stride: s.stride,
                pad_channels: s.pad_channels,
            },
            fx()?,
        ),
    })
}

/// The format a `flatten` of the raw input converts to: that of the `quantize` layer reading
/// it (the built-in MLP flattens its images, then quantizes them).
fn consumer_format(model: &GraphModel, i: usize) -> Result<Format, TrainError> {
    let nodes = &model.graph.nodes;
    let reader = nodes.iter().position(|n| n.sources.contains(&Some(i)));
    match reader.map(|r| &model.layers[r]) {
        Some(Layer::Quantize(q)) => format(q),
        _ => Err(TrainError::Shape(format!(
            "layer `{}` flattens the raw input: a quantize layer must read it",
            nodes[i].name
        ))),
    }
}

/// A size pair as the IR writes it: one number when both axes agree.
fn pair([a, b]: [usize; 2]) -> Pair {
    if a == b {
        Pair::Both(a)
    } else {
        Pair::Each([a, b])
    }
}

/// A one-element constant.
fn scalar_codes(v: Fixed) -> Codes {
    Codes::new(
        vec![1],
        None,
        vec![v.format()],
        vec![v.code().unwrap_or(0) as i64],
    )
}

/// A convolution (`one_d`: a 1-D one, whose weight drops the kernel height of 1).
fn conv(c: &QConv2d, one_d: bool, fx: Format) -> Result<(Op, Format), TrainError> {
    let mut weight = codes(&c.wq, c.weight.val())?;
    let bias = c.bias.as_ref().map(|b| codes(&c.bq, b.val())).transpose()?;
    let accumulator = accumulators(&c.acc, fx, &c.wq, (&weight, 0), bias.as_ref())?;
    let (g, order) = (c.shape, AccumulationOrder::default());
    let op = if one_d {
        weight.shape.remove(2);
        Op::Conv1d {
            weight,
            bias,
            stride: g.stride[1],
            padding: [g.padding[2], g.padding[3]],
            dilation: g.dilation[1],
            groups: g.groups,
            accumulator,
            order,
        }
    } else {
        let [t, b, l, r] = g.padding;
        let padding = if t == b && b == l && l == r {
            Padding::All(t)
        } else {
            Padding::Sides(g.padding)
        };
        Op::Conv2d {
            weight,
            bias,
            stride: pair(g.stride),
            padding,
            dilation: pair(g.dilation),
            groups: g.groups,
            accumulator,
            order,
        }
    };
    Ok((op, format(&c.out)?))
}

/// A function by table: entry `clamp((code >> shift) − offset, 0, n − 1)` of the input code.
/// The table covers `[−range, range)` with `n = 2^b` entries, `2·range = 2^r`: the entry of `x`
/// is `⌊(x + range)·2^(b−r)⌋`, which on the input's codes (`x = code·2^−F`) is
/// `(code >> (F + r − b)) + n/2`.
fn lookup(l: &QLookup, fx: Format) -> Result<(Op, Format), TrainError> {
    let r = crate::graph::table_domain(l.index_bits, l.range).map_err(TrainError::Shape)?;
    let shift = fx.frac_bits() + r as i64 - l.index_bits as i64;
    let shift = i32::try_from(shift)
        .ok()
        .filter(|s| s.unsigned_abs() <= 126)
        .ok_or_else(|| TrainError::Spec(format!("a table shift of {shift} bits is too large")))?;
    let (values, format) = l.table(&Device::flex())?;
    let codes = values
        .iter()
        .map(|&v| {
            Fixed::from_f32(v, format)
                .map(|f| f.code().unwrap_or(0) as i64)
                .map_err(|e| TrainError::NonFinite(e.to_string()))
        })
        .collect::<Result<Vec<i64>, _>>()?;
    let n = codes.len();
    let op = Op::Lookup {
        function: l.function().name().to_string(),
        table: Codes::new(vec![n], None, vec![format], codes),
        shift,
        offset: -((n / 2) as i64),
    };
    Ok((op, format))
}

fn dense(l: &QLinear, fx: Format) -> Result<(Op, Format), TrainError> {
    let weight = codes(&l.wq, l.weight.val())?;
    let bias = codes(&l.bq, l.bias.val())?;
    let op = Op::Dense {
        accumulator: accumulators(&l.acc, fx, &l.wq, (&weight, 1), Some(&bias))?,
        weight,
        bias: Some(bias),
        order: AccumulationOrder::default(),
    };
    Ok((op, format(&l.out)?))
}

fn batch_norm(n: &QBatchNorm2d) -> Result<(Op, Format), TrainError> {
    let (scale, shift) = n.folded_inference();
    let op = Op::BatchNorm {
        scale: codes(&n.scale_q, scale)?,
        shift: codes(&n.shift_q, shift)?,
    };
    Ok((op, format(&n.out)?))
}

fn global_avg_pool(p: &QGlobalAvgPool, window: usize) -> Result<(Op, Format), TrainError> {
    let r = p
        .reciprocal_fixed(window)
        .map_err(|e| TrainError::Spec(e.to_string()))?;
    Ok((
        Op::GlobalAvgPool {
            reciprocal: scalar_codes(r),
        },
        format(&p.out)?,
    ))
}

fn prelu(p: &QPrelu) -> Result<(Op, Format), TrainError> {
    let op = Op::Prelu {
        slope: codes(&p.slope_q, p.slope.val())?,
    };
    Ok((op, format(&p.out)?))
}

fn disabled() -> TrainError {
    TrainError::Spec("cannot export a model with disabled quantizers (the float model)".to_string())
}

/// The per-tensor format of an activation quantizer.
fn format(q: &Quantizer) -> Result<Format, TrainError> {
    if !q.enabled {
        return Err(disabled());
    }
    if q.spec.granularity != Granularity::PerTensor {
        return Err(TrainError::Spec(
            "activations must be quantized per tensor to export".to_string(),
        ));
    }
    Ok(q.formats()?[0])
}

/// The codes of `values` as quantized by `q` (exactly the values the model computes with).
fn codes<const D: usize>(q: &Quantizer, values: Tensor<D>) -> Result<Codes, TrainError> {
    if !q.enabled {
        return Err(disabled());
    }
    let shape = values.dims().to_vec();
    let quantized: Vec<f32> = q.forward(values).host_f32();
    let formats = q.formats()?;
    let axis = match q.spec.granularity {
        Granularity::PerTensor => None,
        Granularity::PerChannel { axis } => Some(axis),
    };
    let mut c = Codes {
        shape,
        axis,
        formats,
        codes: Vec::with_capacity(quantized.len()),
        khot: q.spec.khot,
    };
    for (i, &v) in quantized.iter().enumerate() {
        let value =
            Fixed::from_f32(v, c.format_of(i)).map_err(|e| TrainError::NonFinite(e.to_string()))?;
        // A constant whose format is wider than f32's mantissa may not be on its grid.
        if value.to_f32() != v {
            return Err(TrainError::Spec(format!(
                "constant {v} is not exactly representable in {} (formats wider than 24 bits \
                 cannot be exported exactly from f32 training values)",
                c.format_of(i)
            )));
        }
        c.codes.push(value.code().unwrap_or(0) as i64);
    }
    Ok(c)
}

/// Accumulator formats: `F = F_in + F_w[c]` in the layer's accumulator width.
fn fixed_accumulators(
    layer_acc: &crate::quant::QuantSpec,
    input: Format,
    wq: &Quantizer,
) -> Result<Vec<Format>, TrainError> {
    acc_frac_bits(layer_acc, input.frac_bits() as i32, wq)
        .iter()
        .map(|&f| layer_acc.format(f))
        .collect()
}

/// The accumulator formats of a sum of products whose `weight` has its output channels on
/// the given axis: the configured width, or — when the layer learns its widths — the fewest
/// bits that provably cannot overflow, per accumulator format, for any input of the input
/// format: `|Σ w·x + b| ≤ Σ |w|·max|x| + |b|` on the accumulator's grid.
fn accumulators(
    layer_acc: &crate::quant::QuantSpec,
    input: Format,
    wq: &Quantizer,
    (weight, out_axis): (&Codes, usize),
    bias: Option<&Codes>,
) -> Result<Vec<Format>, TrainError> {
    let fixed = fixed_accumulators(layer_acc, input, wq)?;
    if wq.spec.learned_width.is_none() {
        return Ok(fixed);
    }
    let acc_frac = |k: usize| fixed[k.min(fixed.len() - 1)].frac_bits();
    let outputs = weight.shape[out_axis];
    let inner: usize = weight.shape[out_axis + 1..].iter().product();
    let (lo, hi) = input.assignable_range();
    let x_max = lo.unsigned_abs().max(hi.unsigned_abs());
    let too_wide = || TrainError::Spec("an accumulator bound does not fit 128 bits".to_string());
    // |code| · 2^shift, rounded up (a negative shift truncates a bias code on assignment).
    let scaled = |code: u128, shift: i64| -> Result<u128, TrainError> {
        if shift >= 0 {
            let s = u32::try_from(shift).map_err(|_| too_wide())?;
            code.checked_mul(1u128.checked_shl(s).ok_or_else(too_wide)?)
                .filter(|v| v.leading_zeros() > 1)
                .ok_or_else(too_wide)
        } else {
            Ok((code >> (-shift).min(127)) + 1)
        }
    };
    let mut bound = vec![0u128; outputs];
    for (i, &w) in weight.codes.iter().enumerate() {
        let o = (i / inner) % outputs;
        let f_acc = acc_frac(o);
        let shift = f_acc - input.frac_bits() - weight.format_of(i).frac_bits();
        let term = scaled(w.unsigned_abs() as u128 * x_max, shift)?;
        bound[o] = bound[o].checked_add(term).ok_or_else(too_wide)?;
    }
    if let Some(b) = bias {
        for (o, &code) in b.codes.iter().enumerate() {
            let shift = acc_frac(o) - b.format_of(o).frac_bits();
            bound[o] = bound[o]
                .checked_add(scaled(code.unsigned_abs() as u128, shift)?)
                .ok_or_else(too_wide)?;
        }
    }
    let mut widest = vec![0u128; fixed.len()];
    for (o, b) in bound.into_iter().enumerate() {
        let k = o.min(fixed.len() - 1);
        widest[k] = widest[k].max(b);
    }
    fixed
        .iter()
        .zip(widest)
        .map(|(f, b)| {
            // Signed: |sum| ≤ b needs the bits of b plus the sign.
            let width = (128 - b.leading_zeros()) + 1;
            let f_acc = f.frac_bits() as i32;
            layer_acc.format_of_width(width, f_acc)
        })
        .collect()
}

/// A binary convolution: `±1` codes in `ap_int<2>`, declared 1-hot (each product is `x` or
/// `−x`, no multiplier).
fn binary_conv(c: &QBinaryConv2d, fx: Format) -> Result<(Op, Format), TrainError> {
    if !c.wq.enabled {
        return Err(disabled());
    }
    let w = c.binary_weights();
    let weight = Codes {
        shape: w.dims().to_vec(),
        axis: None,
        formats: vec![binary_format()],
        codes: w
            .host_f32()
            .iter()
            .map(|&v| {
                if v == 1.0 || v == -1.0 {
                    Ok(v as i64)
                } else {
                    Err(TrainError::NonFinite(format!(
                        "binary weight {v} is not ±1 (non-finite latent weight)"
                    )))
                }
            })
            .collect::<Result<_, _>>()?,
        khot: Some(KHot::binary(1)),
    };
    let op = Op::Conv2d {
        weight,
        bias: None,
        stride: c.stride.into(),
        padding: c.padding.into(),
        dilation: 1.into(),
        groups: 1,
        accumulator: fixed_accumulators(&c.acc, fx, &c.wq)?,
        order: AccumulationOrder::default(),
    };
    Ok((op, format(&c.out)?))
}
