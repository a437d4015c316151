//! Float emulation: what a float fake-quantization framework computes for the same IR (DESIGN
//! §4, level 1), to measure how often it disagrees with the exact engine (level 2).
//!
//! Values are `f32`. Sums of products are `f32` multiply-then-add (no fused multiply-add),
//! accumulated in the IR's order starting from the bias value; BatchNorm is `scale·x + shift`,
//! `Add` is `a + b`, global average pooling sums in order and multiplies by the reciprocal. A
//! value is quantized to a format (rounding and overflow as `Fixed::from_f32_hls`, the cast the
//! training graph's quantizer reproduces bit for bit) only where the training graph does it:
//! the network input; after each sum of products, to the accumulator format and then to the
//! output format; and after BatchNorm, `Add`, ReLU, pooling and every other layer, to its
//! output format. The accumulator is therefore cast once, at the end of the sum, not after every
//! addition, and every `f32` operation rounds to 24 significant bits: where all values fit in
//! 24-bit codes and no accumulator overflows mid-sum (or it wraps, which is modular), the result
//! equals the engine's; wider accumulators round, and saturating ones clip at the end only.

use qfx_fixed::{Fixed, Format};
use qfx_ir::{Codes, Model, Op, INPUT};

use crate::reference::acc_format;
use crate::EngineError;

fn q(v: f32, f: Format) -> f32 {
    Fixed::from_f32_hls(v, f).to_f32()
}

fn value(c: &Codes, i: usize) -> f32 {
    c.value(i).to_f32()
}

/// The float emulation of `model` on one sample: the last layer's values.
pub fn float_forward(model: &Model, input: &[f32]) -> Result<Vec<f32>, EngineError> {
    let shapes = model.validate().map_err(|e| EngineError(e.to_string()))?;
    let n: usize = model.input_shape.iter().product();
    if input.len() != n {
        return Err(EngineError(format!(
            "{} input values for shape {:?}",
            input.len(),
            model.input_shape
        )));
    }
    if let Some(bad) = input.iter().find(|x| !x.is_finite()) {
        return Err(EngineError(format!("non-finite input value {bad}")));
    }
    let index = |name: &str| model.layers.iter().position(|l| l.name == name);
    let mut outs: Vec<Vec<f32>> = Vec::with_capacity(model.layers.len());
    for (li, layer) in model.layers.iter().enumerate() {
        let to = layer.output;
        let operand = |k: usize| -> Result<usize, EngineError> {
            index(&layer.inputs[k]).ok_or_else(|| {
                EngineError(format!(
                    "layer `{}` reads the raw input but is not a quantizer",
                    layer.name
                ))
            })
        };
        if layer.inputs[0] == INPUT {
            if !matches!(layer.op, Op::Quantize | Op::Flatten) {
                operand(0)?;
            }
            outs.push(input.iter().map(|&v| q(v, to)).collect());
            continue;
        }
        let a = operand(0)?;
        let xs = &shapes[a];
        let x = &outs[a];
        let out: Vec<f32> = match &layer.op {
            Op::Quantize | Op::Flatten => x.iter().map(|&v| q(v, to)).collect(),
            Op::Relu { clip } => x
                .iter()
                .map(|&v| {
                    let r = v.max(0.0);
                    let r = clip.map_or(r, |c| r.min(c as f32));
                    q(r, to)
                })
                .collect(),
            Op::Add => {
                let y = &outs[operand(1)?];
                x.iter().zip(y).map(|(&a, &b)| q(a + b, to)).collect()
            }
            Op::Sign => x
                .iter()
                .map(|&v| q(if v >= 0.0 { 1.0 } else { -1.0 }, to))
                .collect(),
            Op::Prelu { slope } => {
                let inner: usize = xs[1..].iter().product();
                x.iter()
                    .enumerate()
                    .map(|(i, &v)| {
                        let y = if v >= 0.0 {
                            v
                        } else {
                            value(slope, i / inner) * v
                        };
                        q(y, to)
                    })
                    .collect()
            }
            Op::BatchNorm { scale, shift } => {
                let inner: usize = xs[1..].iter().product();
                x.iter()
                    .enumerate()
                    .map(|(i, &v)| {
                        let c = i / inner;
                        q(value(scale, c) * v + value(shift, c), to)
                    })
                    .collect()
            }
            Op::MaxPool2d { kernel } => {
                let (c, h, w) = (xs[0], xs[1], xs[2]);
                let k = *kernel;
                let mut out = Vec::with_capacity(c * (h / k) * (w / k));
                for ch in 0..c {
                    for y in 0..h / k {
                        for xo in 0..w / k {
                            let mut m = f32::NEG_INFINITY;
                            for t in 0..k * k {
                                m = m.max(x[(ch * h + y * k + t / k) * w + xo * k + t % k]);
                            }
                            out.push(q(m, to));
                        }
                    }
                }
                out
            }
            Op::Shortcut { stride, .. } => {
                let (c, h, w) = (xs[0], xs[1], xs[2]);
                let mut out = Vec::new();
                for ch in 0..c {
                    for y in (0..h).step_by(*stride) {
                        for xo in (0..w).step_by(*stride) {
                            out.push(q(x[(ch * h + y) * w + xo], to));
                        }
                    }
                }
                out.resize(shapes[li].iter().product(), q(0.0, to));
                out
            }
            Op::GlobalAvgPool { reciprocal } => {
                let inner: usize = xs[1..].iter().product();
                let r = value(reciprocal, 0);
                x.chunks(inner)
                    .map(|ch| q(ch.iter().fold(0f32, |s, &v| s + v) * r, to))
                    .collect()
            }
            Op::Dense {
                weight,
                bias,
                accumulator,
                ..
            } => {
                let (d_in, d_out) = (weight.shape[0], weight.shape[1]);
                (0..d_out)
                    .map(|o| {
                        let mut s = bias.as_ref().map_or(0.0, |b| value(b, o));
                        for (i, &xv) in x.iter().enumerate().take(d_in) {
                            s += value(weight, i * d_out + o) * xv;
                        }
                        q(q(s, acc_format(accumulator, o)), to)
                    })
                    .collect()
            }
            Op::Conv2d {
                weight,
                bias,
                stride,
                padding,
                accumulator,
                ..
            } => {
                let (co, ci, k) = (weight.shape[0], weight.shape[1], weight.shape[2]);
                let (h, w) = (xs[1] as isize, xs[2] as isize);
                let (oh, ow) = (shapes[li][1], shapes[li][2]);
                let wv: Vec<f32> = (0..weight.codes.len()).map(|i| value(weight, i)).collect();
                let mut out = Vec::with_capacity(co * oh * ow);
                for o in 0..co {
                    let af = acc_format(accumulator, o);
                    let b = bias.as_ref().map_or(0.0, |b| value(b, o));
                    for y in 0..oh {
                        for xo in 0..ow {
                            let mut s = b;
                            for c in 0..ci {
                                for ky in 0..k {
                                    let iy = (y * stride + ky) as isize - *padding as isize;
                                    if iy < 0 || iy >= h {
                                        continue;
                                    }
                                    for kx in 0..k {
                                        let ix = (xo * stride + kx) as isize - *padding as isize;
                                        if ix < 0 || ix >= w {
                                            continue;
                                        }
                                        let xv = x[((c as isize * h + iy) * w + ix) as usize];
                                        s += wv[((o * ci + c) * k + ky) * k + kx] * xv;
                                    }
                                }
                            }
                            out.push(q(q(s, af), to));
                        }
                    }
                }
                out
            }
        };
        outs.push(out);
    }
    Ok(outs.pop().expect("at least one layer"))
}
