//! The original, unprepared engine: it validates the model on every call and runs every
//! multiply-accumulate through per-element format look-ups and `Fixed` values. It is slow and is
//! kept unchanged as the reference the fast [`crate::Engine`] is tested against (bit for bit,
//! overflow counts included) and measured against (`cargo bench -p qfx-engine`).

use qfx_fixed::{Fixed, Format, Overflow, OverflowRule};
use qfx_ir::{
    clip_constant, lookup_index, relu_clip, sign_value, window_sum_format, Graph, Mac, Model, Node,
    Op,
};

use crate::{EngineError, Output, Tensor};

pub(crate) fn fixed(code: i128, format: Format) -> Fixed {
    Fixed::from_code(code, format).unwrap_or_else(|_| Fixed::zero(format))
}

/// Casts the exact value `v` into `to`; reports whether the rounded value was out of range.
pub(crate) fn assign(v: &Fixed, to: Format) -> (i64, bool) {
    let (c, o) = assign_wide(v, to);
    (c as i64, o)
}

/// [`assign`] with the full code (accumulators may be wider than 64 bits).
pub(crate) fn assign_wide(v: &Fixed, to: Format) -> (i128, bool) {
    let out = v.cast(to);
    let overflowed = unbounded(to).is_some_and(|w| v.cast(w) != out);
    (out.code().unwrap_or(0), overflowed)
}

/// Runs `model` on one sample of `input` values (row-major, `model.input_shape`), the slow way.
pub fn run(model: &Model, input: &[f32]) -> Result<Output, EngineError> {
    let graph = model.resolve().map_err(|e| EngineError(e.to_string()))?;
    check_input(&graph, input)?;
    let mut outs: Vec<Tensor> = Vec::with_capacity(model.layers.len());
    let mut overflows = Vec::with_capacity(model.layers.len());
    for node in graph.nodes() {
        let to = node.format();
        // Overflows of the layer's output assignments, and of its accumulators.
        let count = std::cell::Cell::new(0u64);
        let mut acc_count = 0u64;
        let put = |v: &Fixed| {
            let (c, o) = assign(v, to);
            count.set(count.get() + o as u64);
            c
        };
        let operand = |k: usize| &outs[node.operands[k].source.expect("validated")];
        let codes: Vec<i64> = if node.reads_input() {
            // The network input arrives as f32 and is converted as the ap_fixed float
            // constructor does it (flattening the raw input converts it too).
            input
                .iter()
                .map(|&v| {
                    let (c, o) = from_input(v, to);
                    count.set(count.get() + o as u64);
                    c
                })
                .collect()
        } else {
            let x = operand(0);
            let value = |i: usize| fixed(x.codes[i] as i128, x.format);
            let inner: usize = x.shape[1..].iter().product();
            let each = |f: &dyn Fn(usize) -> Fixed| -> Vec<i64> {
                (0..x.codes.len()).map(|i| put(&f(i))).collect()
            };
            let or_zero =
                |v: Result<Fixed, qfx_fixed::Error>| v.unwrap_or_else(|_| Fixed::zero(to));
            match node.op() {
                Op::Quantize => each(&value),
                Op::Relu { clip } => {
                    let clip = relu_clip(*clip);
                    each(&|i| relu(value(i), clip))
                }
                Op::HardTanh { min, max } => {
                    let bounds = clip_constant(*min).zip(clip_constant(*max));
                    let (lo, hi) = bounds.expect("validated: finite bounds");
                    each(&|i| {
                        let v = value(i);
                        if v < lo {
                            lo
                        } else if v > hi {
                            hi
                        } else {
                            v
                        }
                    })
                }
                Op::HardSigmoid { alpha, beta } => {
                    let one = clip_constant(1.0).expect("1 converts");
                    each(&|i| {
                        let t = or_zero(
                            alpha
                                .value(0)
                                .mul(&value(i))
                                .and_then(|p| p.add(&beta.value(0))),
                        );
                        if t.is_negative() {
                            Fixed::zero(to)
                        } else if t > one {
                            one
                        } else {
                            t
                        }
                    })
                }
                // The table holds output codes: no assignment, nothing overflows.
                Op::Lookup {
                    table,
                    shift,
                    offset,
                    ..
                } => x
                    .codes
                    .iter()
                    .map(|&c| {
                        table.codes[lookup_index(c as i128, *shift, *offset, table.codes.len())]
                    })
                    .collect(),
                Op::Flatten
                | Op::Reshape { .. }
                | Op::MaxPool2d { .. }
                | Op::MaxPool1d { .. }
                | Op::GlobalMaxPool
                | Op::Shortcut { .. } => {
                    let moved = move_values(node, x);
                    moved
                        .iter()
                        .map(|&c| put(&fixed(c as i128, x.format)))
                        .collect()
                }
                Op::Add => {
                    let b = operand(1);
                    each(&|i| or_zero(value(i).add(&fixed(b.codes[i] as i128, b.format))))
                }
                Op::Multiply => {
                    let b = operand(1);
                    each(&|i| or_zero(value(i).mul(&fixed(b.codes[i] as i128, b.format))))
                }
                Op::Concat => node
                    .operands
                    .iter()
                    .flat_map(|o| {
                        let t = &outs[o.source.expect("validated")];
                        t.codes.iter().map(|&c| put(&fixed(c as i128, t.format)))
                    })
                    .collect(),
                Op::Sign => each(&|i| sign_value(!value(i).is_negative())),
                Op::Prelu { slope } => each(&|i| {
                    let v = value(i);
                    if v.is_negative() {
                        or_zero(slope.value(slope.channel_index(i / inner)).mul(&v))
                    } else {
                        v
                    }
                }),
                Op::BatchNorm { scale, shift } => each(&|i| {
                    let ch = i / inner;
                    or_zero(
                        scale
                            .value(ch)
                            .mul(&value(i))
                            .and_then(|p| p.add(&shift.value(ch))),
                    )
                }),
                Op::AvgPool2d { reciprocal, .. }
                | Op::AvgPool1d { reciprocal, .. }
                | Op::GlobalAvgPool { reciprocal } => {
                    let r = reciprocal.value(0);
                    let window = node.window().expect("a pooling layer");
                    let sum_fmt = window_sum_format(x.format, window.size())
                        .map_err(|e| EngineError(format!("layer `{}`: {e}", node.layer.name)))?;
                    let mut out = Vec::with_capacity(node.len());
                    for c in 0..window.channels {
                        for p in 0..window.oh * window.ow {
                            let sum: i128 = window.inputs(c, p).map(|i| x.codes[i] as i128).sum();
                            out.push(put(&or_zero(fixed(sum, sum_fmt).mul(&r))));
                        }
                    }
                    out
                }
                Op::Dense { .. } | Op::Conv2d { .. } | Op::Conv1d { .. } => {
                    let mac = node.mac().expect("a sum of products");
                    mac_outputs(&mac, x, &mut acc_count)
                        .iter()
                        .map(put)
                        .collect()
                }
            }
        };
        overflows.push(count.get() + acc_count);
        outs.push(Tensor {
            shape: node.shape.clone(),
            format: to,
            codes,
        });
    }
    Ok(Output {
        output: outs.pop().expect("at least one layer"),
        overflows,
    })
}

/// Refuses an input of the wrong length or with a non-finite value.
pub(crate) fn check_input(graph: &Graph, input: &[f32]) -> Result<(), EngineError> {
    if input.len() != graph.input_len() {
        return Err(EngineError(format!(
            "{} input values for shape {:?}",
            input.len(),
            graph.model().input_shape
        )));
    }
    if let Some(bad) = input.iter().find(|x| !x.is_finite()) {
        return Err(EngineError(format!("non-finite input value {bad}")));
    }
    Ok(())
}

/// A format with `to`'s binary point and rounding and room for any integer part: comparing a
/// value rounded into it with the real assignment tells whether the assignment overflowed.
pub(crate) fn unbounded(to: Format) -> Option<Format> {
    Format::new(
        128,
        128 - to.frac_bits() as i32,
        true,
        to.quant(),
        Overflow::Wrap,
        0,
    )
    .ok()
}

/// An f32 input converted into `to`, and whether it overflowed.
pub(crate) fn from_input(v: f32, to: Format) -> (i64, bool) {
    let out = Fixed::from_f32_hls(v, to);
    let overflowed = unbounded(to).is_some_and(|w| Fixed::from_f32_hls(v, w) != out);
    (out.code().unwrap_or(0) as i64, overflowed)
}

/// `max(v, 0)`, then the clip where `v` exceeds it.
pub(crate) fn relu(v: Fixed, clip: Option<Fixed>) -> Fixed {
    let v = if v.is_negative() {
        Fixed::zero(v.format())
    } else {
        v
    };
    match clip {
        Some(c) if v > c => c,
        _ => v,
    }
}

/// `acc = cast(bias); for each (w, x): acc = cast(acc + w·x)` in the accumulator format.
pub(crate) fn accumulate(
    terms: impl Iterator<Item = (i64, Format, i64)>,
    x_format: Format,
    bias: Option<Fixed>,
    acc: Format,
    overflows: &mut u64,
) -> Fixed {
    let start = match bias {
        Some(b) => {
            let (c, o) = assign_wide(&b, acc);
            *overflows += o as u64;
            c
        }
        None => 0,
    };
    // Products land exactly on the accumulator's grid (and the shift keeps them in an i128).
    let exact_products = |wf: Format| {
        let shift = acc.frac_bits() - x_format.frac_bits() - wf.frac_bits();
        (0..=40).contains(&shift)
    };
    let rule = acc.overflow_rule();
    let simple_overflow = rule != OverflowRule::General;
    let (lo, hi) = acc.assignable_range();
    let mut sum = start;
    let mut general: Option<Fixed> = None;
    for (w, wf, xc) in terms {
        if let Some(a) = general.as_mut() {
            let p = fixed(w as i128, wf)
                .mul(&fixed(xc as i128, x_format))
                .and_then(|p| a.add(&p));
            let (c, o) = assign_wide(&p.unwrap_or(*a), acc);
            *overflows += o as u64;
            *a = fixed(c, acc);
            continue;
        }
        if !(simple_overflow && exact_products(wf)) {
            general = Some(fixed(wrap_to(sum, &acc), acc));
            let a = general.as_mut().expect("set");
            let p = fixed(w as i128, wf)
                .mul(&fixed(xc as i128, x_format))
                .and_then(|p| a.add(&p));
            let (c, o) = assign_wide(&p.unwrap_or(*a), acc);
            *overflows += o as u64;
            *a = fixed(c, acc);
            continue;
        }
        let shift = acc.frac_bits() - x_format.frac_bits() - wf.frac_bits();
        sum += (w as i128 * xc as i128) << shift;
        if sum < lo || sum > hi {
            *overflows += 1;
            sum = match rule {
                OverflowRule::Clamp => sum.clamp(lo, hi),
                OverflowRule::Zero => 0,
                OverflowRule::Wrap | OverflowRule::General => wrap_to(sum, &acc),
            };
        }
    }
    general.unwrap_or_else(|| fixed(wrap_to(sum, &acc), acc))
}

/// `sum` reduced modulo `2^W` into the format's code range.
pub(crate) fn wrap_to(sum: i128, f: &Format) -> i128 {
    Fixed::from_raw_bits(sum as u128, *f).code().unwrap_or(0)
}

/// Every accumulator of a sum of products, output-major (`[out][position]`), accumulated step
/// by step in the IR's order.
fn mac_outputs(mac: &Mac, x: &Tensor, overflows: &mut u64) -> Vec<Fixed> {
    let mut out = Vec::with_capacity(mac.outputs() * mac.positions());
    for o in 0..mac.outputs() {
        let wf = mac.weight_format(o);
        for p in 0..mac.positions() {
            let terms = (0..mac.terms()).filter_map(|j| {
                let xi = mac.input_index(o, p, j)?;
                Some((mac.weight.codes[mac.weight_index(o, j)], wf, x.codes[xi]))
            });
            out.push(accumulate(
                terms,
                x.format,
                mac.bias.map(|b| b.value(o)),
                mac.accumulator(o),
                overflows,
            ));
        }
    }
    out
}

/// Max pooling, flattening, reshaping and the option-A shortcut only move codes.
fn move_values(node: &Node, x: &Tensor) -> Vec<i64> {
    match node.op() {
        Op::Flatten | Op::Reshape { .. } => x.codes.clone(),
        Op::MaxPool2d { .. } | Op::MaxPool1d { .. } | Op::GlobalMaxPool => {
            let window = node.window().expect("a pooling layer");
            let mut out = Vec::with_capacity(node.len());
            for c in 0..window.channels {
                for p in 0..window.oh * window.ow {
                    out.push(window.inputs(c, p).map(|i| x.codes[i]).max().unwrap_or(0));
                }
            }
            out
        }
        Op::Shortcut {
            stride,
            pad_channels,
        } => {
            let (c, h, w) = (x.shape[0], x.shape[1], x.shape[2]);
            let (oh, ow) = (h.div_ceil(*stride), w.div_ceil(*stride));
            let mut out = Vec::with_capacity((c + pad_channels) * oh * ow);
            for ch in 0..c {
                for y in 0..oh {
                    for xo in 0..ow {
                        out.push(x.codes[(ch * h + y * stride) * w + xo * stride]);
                    }
                }
            }
            out.resize((c + pad_channels) * oh * ow, 0);
            out
        }
        _ => unreachable!("only moving ops"),
    }
}
