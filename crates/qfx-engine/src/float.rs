//! Float emulation: what a float fake-quantization framework computes for the same IR (the
//! training graph's fidelity, level 1 of the three in `ARCHITECTURE.md`), to measure how often
//! it disagrees with the exact engine (level 2).
//!
//! Values are `f32`. Sums of products are `f32` multiply-then-add (no fused multiply-add),
//! accumulated in the IR's order starting from the bias value; BatchNorm is `scale·x + shift`,
//! `Add` is `a + b`, `Multiply` `a·b`, hard sigmoid `alpha·x + beta` clamped to `[0, 1]`, hard
//! tanh a clamp to its bounds (as `f32`), average pooling sums each window in order and
//! multiplies by the reciprocal, and a table lookup indexes the table with the input's code. A
//! value is quantized to a format (rounding and overflow as `Fixed::from_f32_hls`, the cast the
//! training graph's quantizer reproduces bit for bit) only where the training graph does it:
//! the network input; after each sum of products, to the accumulator format and then to the
//! output format; and after BatchNorm, `Add`, ReLU, pooling and every other layer, to its
//! output format. The accumulator is therefore cast once, at the end of the sum, not after every
//! addition, and every `f32` operation rounds to 24 significant bits: where all values fit in
//! 24-bit codes and no accumulator overflows mid-sum (or it wraps, which is modular), the result
//! equals the engine's; wider accumulators round, and saturating ones clip at the end only.

use qfx_fixed::{Fixed, Format};
use qfx_ir::{clip_constant, lookup_index, Codes, Mac, Model, Op};

use crate::reference::check_input;
use crate::EngineError;

fn q(v: f32, f: Format) -> f32 {
    Fixed::from_f32_hls(v, f).to_f32()
}

fn value(c: &Codes, i: usize) -> f32 {
    c.value(i).to_f32()
}

/// The float emulation of `model` on one sample: the last layer's values.
pub fn float_forward(model: &Model, input: &[f32]) -> Result<Vec<f32>, EngineError> {
    let graph = model.resolve().map_err(|e| EngineError(e.to_string()))?;
    check_input(&graph, input)?;
    let mut outs: Vec<Vec<f32>> = Vec::with_capacity(model.layers.len());
    for node in graph.nodes() {
        let to = node.format();
        if node.reads_input() {
            outs.push(input.iter().map(|&v| q(v, to)).collect());
            continue;
        }
        let operand = |k: usize| &outs[node.operands[k].source.expect("validated")];
        let (x, xs) = (operand(0), &node.x().shape);
        let inner: usize = xs[1..].iter().product();
        let out: Vec<f32> = match node.op() {
            Op::Quantize | Op::Flatten | Op::Reshape { .. } => {
                x.iter().map(|&v| q(v, to)).collect()
            }
            Op::HardTanh { min, max } => {
                let bound = |b: f64| clip_constant(b).map_or(b as f32, |c| c.to_f32());
                let (lo, hi) = (bound(*min), bound(*max));
                x.iter()
                    .map(|&v| {
                        q(
                            if v < lo {
                                lo
                            } else if v > hi {
                                hi
                            } else {
                                v
                            },
                            to,
                        )
                    })
                    .collect()
            }
            Op::HardSigmoid { alpha, beta } => {
                let (a, b) = (value(alpha, 0), value(beta, 0));
                x.iter()
                    .map(|&v| q((a * v + b).clamp(0.0, 1.0), to))
                    .collect()
            }
            Op::Lookup {
                table,
                shift,
                offset,
                ..
            } => {
                // The input values are on their format's grid: the code is exact.
                let scale = 2f64.powi(node.operand_format(0).frac_bits() as i32);
                x.iter()
                    .map(|&v| {
                        let code = (v as f64 * scale) as i128;
                        value(
                            table,
                            lookup_index(code, *shift, *offset, table.codes.len()),
                        )
                    })
                    .collect()
            }
            Op::Multiply => {
                let y = operand(1);
                x.iter().zip(y).map(|(&a, &b)| q(a * b, to)).collect()
            }
            Op::Concat => node
                .operands
                .iter()
                .flat_map(|o| outs[o.source.expect("validated")].iter())
                .map(|&v| q(v, to))
                .collect(),
            Op::Relu { clip } => x
                .iter()
                .map(|&v| {
                    let r = v.max(0.0);
                    let r = clip.map_or(r, |c| r.min(c as f32));
                    q(r, to)
                })
                .collect(),
            Op::Add => {
                let y = operand(1);
                x.iter().zip(y).map(|(&a, &b)| q(a + b, to)).collect()
            }
            Op::Sign => x
                .iter()
                .map(|&v| q(if v >= 0.0 { 1.0 } else { -1.0 }, to))
                .collect(),
            Op::Prelu { slope } => x
                .iter()
                .enumerate()
                .map(|(i, &v)| {
                    let y = if v >= 0.0 {
                        v
                    } else {
                        value(slope, slope.channel_index(i / inner)) * v
                    };
                    q(y, to)
                })
                .collect(),
            Op::BatchNorm { scale, shift } => x
                .iter()
                .enumerate()
                .map(|(i, &v)| {
                    let c = i / inner;
                    q(value(scale, c) * v + value(shift, c), to)
                })
                .collect(),
            Op::MaxPool2d { .. } | Op::MaxPool1d { .. } | Op::GlobalMaxPool => {
                let window = node.window().expect("a pooling layer");
                let mut out = Vec::with_capacity(node.len());
                for c in 0..window.channels {
                    for p in 0..window.oh * window.ow {
                        let m = window
                            .inputs(c, p)
                            .fold(f32::NEG_INFINITY, |m, i| m.max(x[i]));
                        out.push(q(m, to));
                    }
                }
                out
            }
            Op::Shortcut { stride, .. } => {
                let (c, h, w) = (xs[0], xs[1], xs[2]);
                let mut out = Vec::with_capacity(node.len());
                for ch in 0..c {
                    for y in (0..h).step_by(*stride) {
                        for xo in (0..w).step_by(*stride) {
                            out.push(q(x[(ch * h + y) * w + xo], to));
                        }
                    }
                }
                out.resize(node.len(), q(0.0, to));
                out
            }
            Op::AvgPool2d { reciprocal, .. }
            | Op::AvgPool1d { reciprocal, .. }
            | Op::GlobalAvgPool { reciprocal } => {
                let r = value(reciprocal, 0);
                let window = node.window().expect("a pooling layer");
                let mut out = Vec::with_capacity(node.len());
                for c in 0..window.channels {
                    for p in 0..window.oh * window.ow {
                        let sum = window.inputs(c, p).fold(0f32, |s, i| s + x[i]);
                        out.push(q(sum * r, to));
                    }
                }
                out
            }
            Op::Dense { .. } | Op::Conv2d { .. } | Op::Conv1d { .. } => {
                let mac = node.mac().expect("a sum of products");
                sums_of_products(&mac, x)
                    .into_iter()
                    .enumerate()
                    .map(|(i, s)| q(q(s, mac.accumulator(i / mac.positions())), to))
                    .collect()
            }
        };
        outs.push(out);
    }
    Ok(outs.pop().expect("at least one layer"))
}

/// `f32` sums of products, output-major (`[out][position]`): the bias, then each product in the
/// IR's order, one `f32` rounding per operation.
fn sums_of_products(mac: &Mac, x: &[f32]) -> Vec<f32> {
    let (outputs, positions) = (mac.outputs(), mac.positions());
    let w: Vec<f32> = (0..mac.weight.codes.len())
        .map(|i| value(mac.weight, i))
        .collect();
    let mut out = vec![0f32; outputs * positions];
    for o in 0..outputs {
        let b = mac.bias.map_or(0.0, |b| value(b, o));
        for p in 0..positions {
            let mut s = b;
            for j in 0..mac.terms() {
                if let Some(xi) = mac.input_index(o, p, j) {
                    s += w[mac.weight_index(o, j)] * x[xi];
                }
            }
            out[o * positions + p] = s;
        }
    }
    out
}
