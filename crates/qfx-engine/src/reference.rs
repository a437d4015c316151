//! The original, unprepared engine: it validates the model on every call and runs every
//! multiply-accumulate through per-element format look-ups and `Fixed` values. It is slow and is
//! kept unchanged as the reference the fast [`crate::Engine`] is tested against (bit for bit,
//! overflow counts included) and measured against (`cargo bench -p qfx-engine`).

use qfx_fixed::{Fixed, Format, Overflow};
use qfx_ir::{Codes, Model, Op, INPUT};

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
    let mut outs: Vec<Tensor> = Vec::with_capacity(model.layers.len());
    let mut overflows = Vec::with_capacity(model.layers.len());
    for (i, layer) in model.layers.iter().enumerate() {
        let get = |name: &str| -> Option<&Tensor> {
            model
                .layers
                .iter()
                .position(|l| l.name == name)
                .map(|j| &outs[j])
        };
        let x = layer.inputs.first().and_then(|n| get(n));
        // Overflows of the layer's output assignments, and of its accumulators.
        let count = std::cell::Cell::new(0u64);
        let mut acc_count = 0u64;
        let put = |v: &Fixed| {
            let (c, o) = assign(v, layer.output);
            count.set(count.get() + o as u64);
            c
        };
        let codes: Vec<i64> = match (&layer.op, x) {
            (Op::Quantize | Op::Flatten, None) if layer.inputs[0] == INPUT => {
                // The network input arrives as f32 and is converted as the ap_fixed float
                // constructor does it (flattening the raw input converts it too).
                input
                    .iter()
                    .map(|&v| {
                        let (c, o) = from_input(v, layer.output);
                        count.set(count.get() + o as u64);
                        c
                    })
                    .collect()
            }
            (_, None) => {
                return Err(EngineError(format!(
                    "layer `{}` reads the raw input but is not a quantizer",
                    layer.name
                )))
            }
            (Op::Quantize | Op::Relu { .. }, Some(x)) => {
                let zero = Fixed::zero(x.format);
                x.codes
                    .iter()
                    .map(|&c| {
                        let v = fixed(c as i128, x.format);
                        let v = match &layer.op {
                            Op::Relu { clip } => relu(v, zero, *clip),
                            _ => v,
                        };
                        put(&v)
                    })
                    .collect()
            }
            (Op::Flatten | Op::MaxPool2d { .. } | Op::Shortcut { .. }, Some(x)) => {
                let moved = move_values(&layer.op, x);
                moved
                    .iter()
                    .map(|&c| put(&fixed(c as i128, x.format)))
                    .collect()
            }
            (Op::Add, Some(a)) => {
                let b = get(&layer.inputs[1]).ok_or_else(|| {
                    EngineError(format!(
                        "layer `{}` adds the raw input, which is not a quantized tensor",
                        layer.name
                    ))
                })?;
                a.codes
                    .iter()
                    .zip(&b.codes)
                    .map(|(&p, &q)| {
                        let s = fixed(p as i128, a.format).add(&fixed(q as i128, b.format));
                        put(&s.unwrap_or_else(|_| Fixed::zero(layer.output)))
                    })
                    .collect()
            }
            (Op::Sign, Some(x)) => {
                let one = |v: f64| Fixed::from_f64(v, Format::signed(2, 2).expect("valid"));
                let (plus, minus) = (one(1.0), one(-1.0));
                x.codes
                    .iter()
                    .map(|&c| {
                        let v = if c >= 0 { &plus } else { &minus };
                        put(v.as_ref().expect("±1 is exact in ap_int<2>"))
                    })
                    .collect()
            }
            (Op::Prelu { slope }, Some(x)) => {
                let inner: usize = x.shape[1..].iter().product();
                x.codes
                    .iter()
                    .enumerate()
                    .map(|(i, &c)| {
                        let v = fixed(c as i128, x.format);
                        if !v.is_negative() {
                            return put(&v);
                        }
                        let p = slope.value(i / inner).mul(&v);
                        put(&p.unwrap_or_else(|_| Fixed::zero(layer.output)))
                    })
                    .collect()
            }
            (Op::BatchNorm { scale, shift }, Some(x)) => {
                let inner: usize = x.shape[1..].iter().product();
                x.codes
                    .iter()
                    .enumerate()
                    .map(|(i, &c)| {
                        let ch = i / inner;
                        let v = scale
                            .value(ch)
                            .mul(&fixed(c as i128, x.format))
                            .and_then(|p| p.add(&shift.value(ch)));
                        put(&v.unwrap_or_else(|_| Fixed::zero(layer.output)))
                    })
                    .collect()
            }
            (Op::GlobalAvgPool { reciprocal }, Some(x)) => {
                let inner: usize = x.shape[1..].iter().product();
                let r = reciprocal.value(0);
                // The exact window sum: the input width plus one bit per doubling of the window.
                let width = x.format.width() + usize::BITS - inner.leading_zeros() + 1;
                let sum_fmt = Format::signed(width, width as i32 - x.format.frac_bits() as i32)
                    .map_err(|e| EngineError(format!("layer `{}`: {e}", layer.name)))?;
                x.codes
                    .chunks(inner)
                    .map(|ch| {
                        let sum: i128 = ch.iter().map(|&c| c as i128).sum();
                        let v = fixed(sum, sum_fmt).mul(&r);
                        put(&v.unwrap_or_else(|_| Fixed::zero(layer.output)))
                    })
                    .collect()
            }
            (
                Op::Dense {
                    weight,
                    bias,
                    accumulator,
                    ..
                },
                Some(x),
            ) => {
                let (d_in, d_out) = (weight.shape[0], weight.shape[1]);
                (0..d_out)
                    .map(|o| {
                        let terms = (0..d_in).map(|i| {
                            (
                                weight.codes[i * d_out + o],
                                weight.format_of(i * d_out + o),
                                x.codes[i],
                            )
                        });
                        let acc = accumulate(
                            terms,
                            x.format,
                            bias.as_ref().map(|b| b.value(o)),
                            acc_format(accumulator, o),
                            &mut acc_count,
                        );
                        put(&acc)
                    })
                    .collect()
            }
            (
                Op::Conv2d {
                    weight,
                    bias,
                    stride,
                    padding,
                    accumulator,
                    ..
                },
                Some(x),
            ) => {
                let out_shape = &shapes[i];
                conv(
                    x,
                    weight,
                    bias.as_ref(),
                    *stride,
                    *padding,
                    accumulator,
                    out_shape,
                    &mut acc_count,
                )
                .into_iter()
                .map(|acc| put(&acc))
                .collect()
            }
        };
        overflows.push(count.get() + acc_count);
        outs.push(Tensor {
            shape: shapes[i].clone(),
            format: layer.output,
            codes,
        });
    }
    Ok(Output {
        output: outs.pop().expect("at least one layer"),
        overflows,
    })
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

pub(crate) fn relu(v: Fixed, zero: Fixed, clip: Option<f64>) -> Fixed {
    let v = if v.is_negative() { zero } else { v };
    match clip {
        Some(c) => {
            let c = Fixed::from_f64(
                c,
                Format::new(64, 32, true, qfx_fixed::Quant::Trn, Overflow::Sat, 0).expect("valid"),
            );
            match c {
                Ok(c) if v > c => c,
                _ => v,
            }
        }
        None => v,
    }
}

pub(crate) fn acc_format(acc: &[Format], channel: usize) -> Format {
    if acc.len() == 1 {
        acc[0]
    } else {
        acc[channel]
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
    let simple_overflow = matches!(
        acc.overflow(),
        Overflow::Sat | Overflow::SatSym | Overflow::SatZero
    ) || (acc.overflow() == Overflow::Wrap && acc.sat_bits() == 0);
    let (lo, hi) = (
        if acc.overflow() == Overflow::SatSym && acc.is_signed() {
            acc.min_code() | 1
        } else {
            acc.min_code()
        },
        acc.max_code(),
    );
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
            sum = match acc.overflow() {
                Overflow::Sat | Overflow::SatSym => sum.clamp(lo, hi),
                Overflow::SatZero => 0,
                _ => wrap_to(sum, &acc),
            };
        }
    }
    general.unwrap_or_else(|| fixed(wrap_to(sum, &acc), acc))
}

/// `sum` reduced modulo `2^W` into the format's code range.
pub(crate) fn wrap_to(sum: i128, f: &Format) -> i128 {
    Fixed::from_raw_bits(sum as u128, *f).code().unwrap_or(0)
}

#[allow(clippy::too_many_arguments)]
fn conv(
    x: &Tensor,
    weight: &Codes,
    bias: Option<&Codes>,
    stride: usize,
    padding: usize,
    accumulator: &[Format],
    out_shape: &[usize],
    overflows: &mut u64,
) -> Vec<Fixed> {
    let (c_out, c_in, k) = (weight.shape[0], weight.shape[1], weight.shape[2]);
    let (h, w) = (x.shape[1], x.shape[2]);
    let (oh, ow) = (out_shape[1], out_shape[2]);
    let mut out = Vec::with_capacity(c_out * oh * ow);
    for o in 0..c_out {
        for y in 0..oh {
            for xo in 0..ow {
                // Bias first, then input channels, kernel rows, kernel columns (the IR's order).
                let terms = (0..c_in).flat_map(move |ci| {
                    (0..k).flat_map(move |ky| {
                        (0..k).filter_map(move |kx| {
                            let iy = (y * stride + ky) as isize - padding as isize;
                            let ix = (xo * stride + kx) as isize - padding as isize;
                            if iy < 0 || ix < 0 || iy >= h as isize || ix >= w as isize {
                                return None; // zero padding adds nothing
                            }
                            let wi = ((o * c_in + ci) * k + ky) * k + kx;
                            let xi = (ci * h + iy as usize) * w + ix as usize;
                            Some((weight.codes[wi], weight.format_of(wi), x.codes[xi]))
                        })
                    })
                });
                out.push(accumulate(
                    terms,
                    x.format,
                    bias.map(|b| b.value(o)),
                    acc_format(accumulator, o),
                    overflows,
                ));
            }
        }
    }
    out
}

/// Max pooling, flattening and the option-A shortcut only move codes.
fn move_values(op: &Op, x: &Tensor) -> Vec<i64> {
    match op {
        Op::Flatten => x.codes.clone(),
        Op::MaxPool2d { kernel } => {
            let (c, h, w) = (x.shape[0], x.shape[1], x.shape[2]);
            let (oh, ow) = (h / kernel, w / kernel);
            let mut out = Vec::with_capacity(c * oh * ow);
            for ch in 0..c {
                for y in 0..oh {
                    for xo in 0..ow {
                        let m = (0..kernel * kernel)
                            .map(|t| {
                                x.codes[(ch * h + y * kernel + t / kernel) * w
                                    + xo * kernel
                                    + t % kernel]
                            })
                            .max()
                            .unwrap_or(0);
                        out.push(m);
                    }
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
