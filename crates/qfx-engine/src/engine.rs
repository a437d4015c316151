//! The prepared engine: every format decision, shift amount and range bound is computed once in
//! [`Engine::new`]; [`Engine::run`] then only moves integers.

use qfx_fixed::{Fixed, Format};
use qfx_ir::{
    clip_constant, lookup_index, relu_clip, sign_value, window_sum_format, Codes, Model, Node, Op,
    Window,
};

use crate::mac::Mac;
use crate::reference::{self, fixed};
use crate::requant::{decompose_f32, Target};
use crate::{EngineError, Output, Tensor};

/// A model prepared for repeated inference: validated once, with every per-layer constant
/// (weights pre-shifted onto the accumulator grid, accumulator bounds, casts) precomputed.
///
/// ```
/// # use qfx_ir::{Layer, Model, Op, INPUT, IR_VERSION};
/// # let model = Model { version: IR_VERSION, name: "q".into(), input_shape: vec![2],
/// #     preprocess: None, layers: vec![Layer { name: "q".into(), inputs: vec![INPUT.into()],
/// #     op: Op::Quantize, output: "ap_fixed<8,3,AP_RND,AP_SAT>".parse().unwrap() }] };
/// let engine = qfx_engine::Engine::new(&model)?;
/// let out = engine.run(&[0.3, 100.0])?;
/// assert_eq!(out.output.values(), vec![0.3125, 3.96875]);
/// assert_eq!(out.overflows, vec![1]); // 100 saturated
/// # Ok::<(), qfx_engine::EngineError>(())
/// ```
#[derive(Clone, Debug)]
pub struct Engine {
    input_len: usize,
    input_shape: Vec<usize>,
    layers: Vec<Step>,
}

#[derive(Clone, Debug)]
struct Step {
    /// Index of the layer read first (`None`: the network input).
    a: Option<usize>,
    /// Indices of the other operands (`Add`, `Multiply`, `Concat`).
    rest: Vec<usize>,
    shape: Vec<usize>,
    format: Format,
    /// The output assignment.
    out: Target,
    kind: Kind,
}

#[derive(Clone, Debug)]
enum Kind {
    /// The network input (`f32`) converted as the `ap_fixed` float constructor does.
    Input,
    /// `Quantize` of a tensor: each code assigned to the output format.
    Cast,
    Relu {
        /// Codes above this exceed the clip.
        above: i128,
        /// The clip value assigned to the output format (code, overflowed), if any.
        clip: Option<(i64, bool)>,
    },
    /// `Flatten`, `Reshape`: the codes unchanged (assigned to the same format).
    Flatten,
    /// `HardTanh`: codes below `below` take the lower bound, codes above `above` the upper one
    /// (each already assigned to the output format: code, overflowed).
    HardTanh {
        below: i128,
        lo: (i64, bool),
        above: i128,
        hi: (i64, bool),
    },
    HardSigmoid {
        alpha: Fixed,
        beta: Fixed,
        /// `1` and `0` assigned to the output format.
        one: (i64, bool),
        zero: (i64, bool),
        /// Whether the full-precision type of `alpha·x + beta` exists.
        full: bool,
    },
    /// The table's codes (the output codes).
    Lookup {
        table: Vec<i64>,
        shift: i32,
        offset: i64,
    },
    MaxPool(Window),
    AvgPool {
        window: Window,
        reciprocal: Fixed,
        sum_format: Format,
        full: bool,
    },
    Shortcut {
        stride: usize,
        pad_channels: usize,
    },
    /// `full` is false when the full-precision sum type is wider than 128 bits (the HLS
    /// semantics then assign zero, as the reference does).
    Add {
        full: bool,
    },
    /// As `Add`, for the exact product.
    Multiply {
        full: bool,
    },
    /// Each operand's values assigned to the output format, one after the other.
    Concat,
    BatchNorm {
        scale: Codes,
        shift: Codes,
        /// Per channel: whether the full-precision result type exists.
        full: Vec<bool>,
    },
    /// `+1` / `−1` already assigned to the output format: (code, overflowed).
    Sign {
        plus: (i64, bool),
        minus: (i64, bool),
    },
    Prelu {
        slope: Codes,
        /// Per channel: whether the full-precision product type exists.
        full: Vec<bool>,
    },
    Mac(Box<Mac>),
}

fn err(layer: &str, m: impl std::fmt::Display) -> EngineError {
    EngineError(format!("layer `{layer}`: {m}"))
}

impl Engine {
    /// Validates `model` and prepares it. Errors for an invalid model, for a layer that reads
    /// the raw input without converting it, and for a layer output format whose codes do not
    /// fit in an `i64` (wider than 64 bits signed or 63 bits unsigned).
    pub fn new(model: &Model) -> Result<Engine, EngineError> {
        let graph = model.resolve().map_err(|e| EngineError(e.to_string()))?;
        let mut layers: Vec<Step> = Vec::with_capacity(model.layers.len());
        for node in graph.nodes() {
            let name = node.layer.name.as_str();
            let fmt = node.format();
            if fmt.max_code() > i64::MAX as i128 {
                return Err(err(
                    name,
                    format!("output format {fmt} is wider than the engine's 64-bit codes"),
                ));
            }
            let kind = if node.reads_input() {
                Kind::Input
            } else {
                step_kind(node, fmt).map_err(|e| err(name, e))?
            };
            layers.push(Step {
                a: node.x().source,
                rest: node.operands[1..].iter().filter_map(|o| o.source).collect(),
                shape: node.shape.clone(),
                format: fmt,
                out: Target::new(fmt),
                kind,
            });
        }
        Ok(Engine {
            input_len: graph.input_len(),
            input_shape: model.input_shape.clone(),
            layers,
        })
    }

    /// Number of input values one sample has.
    pub fn input_len(&self) -> usize {
        self.input_len
    }

    /// Runs one sample (row-major, the model's input shape). Bit for bit what
    /// [`crate::reference::run`] computes, overflow counts included.
    pub fn run(&self, input: &[f32]) -> Result<Output, EngineError> {
        let (mut outs, overflows) = self.run_layers(input)?;
        let last = self.layers.last().expect("validated: at least one layer");
        Ok(Output {
            output: Tensor {
                shape: last.shape.clone(),
                format: last.format,
                codes: outs.pop().expect("one output per layer"),
            },
            overflows,
        })
    }

    /// Runs one sample and returns every layer's output tensor with its overflow count (for
    /// reports of value ranges and clipping).
    pub fn run_traced(&self, input: &[f32]) -> Result<Vec<(Tensor, u64)>, EngineError> {
        let (outs, overflows) = self.run_layers(input)?;
        Ok(self
            .layers
            .iter()
            .zip(outs)
            .zip(overflows)
            .map(|((step, codes), o)| {
                let t = Tensor {
                    shape: step.shape.clone(),
                    format: step.format,
                    codes,
                };
                (t, o)
            })
            .collect())
    }

    /// Every layer's output codes and overflow count.
    fn run_layers(&self, input: &[f32]) -> Result<(Vec<Vec<i64>>, Vec<u64>), EngineError> {
        if input.len() != self.input_len {
            return Err(EngineError(format!(
                "{} input values for shape {:?}",
                input.len(),
                self.input_shape
            )));
        }
        if let Some(bad) = input.iter().find(|x| !x.is_finite()) {
            return Err(EngineError(format!("non-finite input value {bad}")));
        }
        let mut outs: Vec<Vec<i64>> = Vec::with_capacity(self.layers.len());
        let mut overflows = Vec::with_capacity(self.layers.len());
        for step in &self.layers {
            let mut count = 0u64;
            let codes = self.step(step, input, &outs, &mut count);
            overflows.push(count);
            outs.push(codes);
        }
        Ok((outs, overflows))
    }

    /// Runs many samples (`inputs` holds them back to back) on up to `threads` threads
    /// (0: all cores). The outputs are in sample order; the first bad sample's error is returned.
    pub fn run_batch(&self, inputs: &[f32], threads: usize) -> Result<Vec<Output>, EngineError> {
        let n = self.input_len;
        if !inputs.len().is_multiple_of(n) {
            return Err(EngineError(format!(
                "{} input values are not a whole number of samples of {n}",
                inputs.len()
            )));
        }
        let samples = inputs.len() / n;
        let threads = if threads == 0 {
            std::thread::available_parallelism().map_or(1, |t| t.get())
        } else {
            threads
        }
        .clamp(1, samples.max(1));
        if threads == 1 {
            return inputs.chunks(n).map(|x| self.run(x)).collect();
        }
        let per = samples.div_ceil(threads);
        let results: Vec<Result<Vec<Output>, EngineError>> = std::thread::scope(|s| {
            let handles: Vec<_> = inputs
                .chunks(per * n)
                .map(|part| s.spawn(move || part.chunks(n).map(|x| self.run(x)).collect()))
                .collect();
            handles
                .into_iter()
                .map(|h| {
                    h.join()
                        .unwrap_or_else(|_| Err(EngineError("a worker thread panicked".into())))
                })
                .collect()
        });
        let mut out = Vec::with_capacity(samples);
        for r in results {
            out.extend(r?);
        }
        Ok(out)
    }

    fn step(&self, step: &Step, input: &[f32], outs: &[Vec<i64>], count: &mut u64) -> Vec<i64> {
        let t = &step.out;
        let to = step.format;
        // The reference's assignment of an exact `Fixed` value (the fallback of every fast path).
        let put_fixed = |v: &Fixed, count: &mut u64| {
            let (c, o) = reference::assign(v, to);
            *count += o as u64;
            c
        };
        let put = |v: i128, frac: i64, count: &mut u64, slow: &dyn Fn() -> Fixed| -> i64 {
            match t.assign(v, frac) {
                Some((c, o)) => {
                    *count += o as u64;
                    c as i64
                }
                None => put_fixed(&slow(), count),
            }
        };
        let Some(a) = step.a else {
            // The network input.
            return input
                .iter()
                .map(|&x| {
                    let fast = match decompose_f32(x) {
                        None => t.repair_code(0),
                        Some((m, e)) => t.assign(m, -e),
                    };
                    let (c, o) = match fast {
                        Some((c, o)) => (c as i64, o),
                        None => reference::from_input(x, to),
                    };
                    *count += o as u64;
                    c
                })
                .collect();
        };
        let x = &outs[a];
        let xs = &self.layers[a];
        let xf = xs.format;
        let fx = xf.frac_bits();
        let cast_codes = |codes: &mut dyn Iterator<Item = i64>, count: &mut u64| -> Vec<i64> {
            codes
                .map(|c| put(c as i128, fx, count, &|| fixed(c as i128, xf)))
                .collect()
        };
        match &step.kind {
            Kind::Input => unreachable!("the input layer has no tensor operand"),
            Kind::Cast | Kind::Flatten => cast_codes(&mut x.iter().copied(), count),
            Kind::Relu { above, clip } => x
                .iter()
                .map(|&c| {
                    if let Some((code, o)) = clip {
                        if (c as i128) > *above {
                            *count += *o as u64;
                            return *code;
                        }
                    }
                    let c = c.max(0);
                    put(c as i128, fx, count, &|| fixed(c as i128, xf))
                })
                .collect(),
            Kind::HardTanh {
                below,
                lo,
                above,
                hi,
            } => x
                .iter()
                .map(|&c| {
                    let bound = if (c as i128) < *below {
                        Some(lo)
                    } else if (c as i128) > *above {
                        Some(hi)
                    } else {
                        None
                    };
                    match bound {
                        Some((code, o)) => {
                            *count += *o as u64;
                            *code
                        }
                        None => put(c as i128, fx, count, &|| fixed(c as i128, xf)),
                    }
                })
                .collect(),
            Kind::HardSigmoid {
                alpha,
                beta,
                one,
                zero,
                full,
            } => {
                let (a, fa) = (alpha.code().unwrap_or(0), alpha.format().frac_bits());
                let (b, fb) = (beta.code().unwrap_or(0), beta.format().frac_bits());
                let fp = fa + fx;
                let f = fp.max(fb);
                let b = shift_up(b, f - fb);
                // `t > 1` for a code `t` at `f` fractional bits (`None`: take the `Fixed` path).
                let one_code = if f < 0 {
                    Some(0)
                } else {
                    (f <= 126).then(|| 1i128 << f)
                };
                let one_value = clip_constant(1.0).expect("1 converts");
                let slow = |c: i64| -> (i64, bool) {
                    let t = alpha
                        .mul(&fixed(c as i128, xf))
                        .and_then(|p| p.add(beta))
                        .unwrap_or_else(|_| Fixed::zero(to));
                    if t.is_negative() {
                        *zero
                    } else if t > one_value {
                        *one
                    } else {
                        reference::assign(&t, to)
                    }
                };
                x.iter()
                    .map(|&c| {
                        let v = full
                            .then(|| {
                                let p = shift_up(a.checked_mul(c as i128)?, f - fp)?;
                                p.checked_add(b?)
                            })
                            .flatten()
                            .zip(one_code);
                        let (code, o) = match v {
                            Some((v, _)) if v < 0 => *zero,
                            Some((v, one_code)) if v > one_code => *one,
                            Some((v, _)) => match t.assign(v, f) {
                                Some((c, o)) => (c as i64, o),
                                None => slow(c),
                            },
                            None => slow(c),
                        };
                        *count += o as u64;
                        code
                    })
                    .collect()
            }
            Kind::Lookup {
                table,
                shift,
                offset,
            } => x
                .iter()
                .map(|&c| table[lookup_index(c as i128, *shift, *offset, table.len())])
                .collect(),
            Kind::MaxPool(window) => {
                let mut out = Vec::with_capacity(step.shape.iter().product());
                for ch in 0..window.channels {
                    for p in 0..window.oh * window.ow {
                        let m = window.inputs(ch, p).map(|i| x[i]).max();
                        out.push(m.expect("a window holds at least one value"));
                    }
                }
                cast_codes(&mut out.into_iter(), count)
            }
            Kind::AvgPool {
                window,
                reciprocal,
                sum_format,
                full,
            } => {
                let r = reciprocal.code().unwrap_or(0);
                let f = fx + reciprocal.format().frac_bits();
                let mut out = Vec::with_capacity(step.shape.iter().product());
                for ch in 0..window.channels {
                    for p in 0..window.oh * window.ow {
                        let sum: i128 = window.inputs(ch, p).map(|i| x[i] as i128).sum();
                        let slow = || {
                            fixed(sum, *sum_format)
                                .mul(reciprocal)
                                .unwrap_or_else(|_| Fixed::zero(to))
                        };
                        out.push(match sum.checked_mul(r).filter(|_| *full) {
                            Some(v) => put(v, f, count, &slow),
                            None => put_fixed(&slow(), count),
                        });
                    }
                }
                out
            }
            Kind::Shortcut {
                stride,
                pad_channels,
            } => {
                let (c, h, w) = (xs.shape[0], xs.shape[1], xs.shape[2]);
                let (oh, ow) = (h.div_ceil(*stride), w.div_ceil(*stride));
                let mut out = Vec::with_capacity((c + pad_channels) * oh * ow);
                for ch in 0..c {
                    for y in 0..oh {
                        for xo in 0..ow {
                            out.push(x[(ch * h + y * stride) * w + xo * stride]);
                        }
                    }
                }
                out.resize((c + pad_channels) * oh * ow, 0);
                cast_codes(&mut out.into_iter(), count)
            }
            Kind::Add { full } => {
                let bs = &self.layers[step.rest[0]];
                let (bf, y) = (bs.format, &outs[step.rest[0]]);
                let fb = bf.frac_bits();
                let f = fx.max(fb);
                let (sa, sb) = (f - fx, f - fb);
                let fast = *full && sa <= 126 && sb <= 126;
                x.iter()
                    .zip(y)
                    .map(|(&p, &q)| {
                        let v = fast
                            .then(|| {
                                let p = (p as i128).checked_mul(1i128 << sa)?;
                                p.checked_add((q as i128).checked_mul(1i128 << sb)?)
                            })
                            .flatten();
                        let slow = || {
                            fixed(p as i128, xf)
                                .add(&fixed(q as i128, bf))
                                .unwrap_or_else(|_| Fixed::zero(to))
                        };
                        match v {
                            Some(v) => put(v, f, count, &slow),
                            None => put_fixed(&slow(), count),
                        }
                    })
                    .collect()
            }
            Kind::Multiply { full } => {
                let bs = &self.layers[step.rest[0]];
                let (bf, y) = (bs.format, &outs[step.rest[0]]);
                let f = fx + bf.frac_bits();
                x.iter()
                    .zip(y)
                    .map(|(&p, &q)| {
                        let slow = || {
                            fixed(p as i128, xf)
                                .mul(&fixed(q as i128, bf))
                                .unwrap_or_else(|_| Fixed::zero(to))
                        };
                        // Codes fit 64 bits, so their product fits an `i128`.
                        if *full {
                            put(p as i128 * q as i128, f, count, &slow)
                        } else {
                            put_fixed(&slow(), count)
                        }
                    })
                    .collect()
            }
            Kind::Concat => {
                let mut out = cast_codes(&mut x.iter().copied(), count);
                for &j in &step.rest {
                    let (jf, codes) = (self.layers[j].format, &outs[j]);
                    let fj = jf.frac_bits();
                    out.extend(
                        codes
                            .iter()
                            .map(|&c| put(c as i128, fj, count, &|| fixed(c as i128, jf))),
                    );
                }
                out
            }
            Kind::BatchNorm { scale, shift, full } => {
                let inner: usize = xs.shape[1..].iter().product();
                let mut out = Vec::with_capacity(x.len());
                for (ch, plane) in x.chunks(inner).enumerate() {
                    let slow_of = |c: i64| -> Fixed {
                        scale
                            .value(ch)
                            .mul(&fixed(c as i128, xf))
                            .and_then(|p| p.add(&shift.value(ch)))
                            .unwrap_or_else(|_| Fixed::zero(to))
                    };
                    if !full[ch] {
                        out.extend(plane.iter().map(|&c| put_fixed(&slow_of(c), count)));
                        continue;
                    }
                    let (s, sf) = (scale.codes[ch] as i128, scale.format_of(ch));
                    let (b, bf) = (shift.codes[ch] as i128, shift.format_of(ch));
                    let fp = sf.frac_bits() + fx;
                    let f = fp.max(bf.frac_bits());
                    let (sp, sb) = (f - fp, f - bf.frac_bits());
                    let b = shift_up(b, sb);
                    for &c in plane {
                        let v = s
                            .checked_mul(c as i128)
                            .and_then(|p| shift_up(p, sp))
                            .zip(b)
                            .and_then(|(p, b)| p.checked_add(b));
                        out.push(match v {
                            Some(v) => put(v, f, count, &|| slow_of(c)),
                            None => put_fixed(&slow_of(c), count),
                        });
                    }
                }
                out
            }
            Kind::Sign { plus, minus } => x
                .iter()
                .map(|&c| {
                    let (code, o) = if c >= 0 { *plus } else { *minus };
                    *count += o as u64;
                    code
                })
                .collect(),
            Kind::Prelu { slope, full } => {
                let inner: usize = xs.shape[1..].iter().product();
                let mut out = Vec::with_capacity(x.len());
                for (ch, plane) in x.chunks(inner).enumerate() {
                    let k = slope.channel_index(ch);
                    let (s, sf) = (slope.codes[k] as i128, slope.format_of(k));
                    let fp = fx + sf.frac_bits();
                    for &c in plane {
                        let c = c as i128;
                        if c >= 0 {
                            out.push(put(c, fx, count, &|| fixed(c, xf)));
                            continue;
                        }
                        let slow = || {
                            slope
                                .value(k)
                                .mul(&fixed(c, xf))
                                .unwrap_or_else(|_| Fixed::zero(to))
                        };
                        out.push(match s.checked_mul(c).filter(|_| full[ch]) {
                            Some(v) => put(v, fp, count, &slow),
                            None => put_fixed(&slow(), count),
                        });
                    }
                }
                out
            }
            Kind::Mac(mac) => {
                let acc = mac.run(x, xf, count);
                let mut out = Vec::with_capacity(acc.len());
                let per = acc.len() / mac.channels.len();
                for (o, codes) in acc.chunks(per).enumerate() {
                    let af = mac.channels[o].acc.format;
                    let f = af.frac_bits();
                    out.extend(codes.iter().map(|&c| put(c, f, count, &|| fixed(c, af))));
                }
                out
            }
        }
    }
}

/// What a layer that reads quantized tensors does, prepared.
fn step_kind(node: &Node, fmt: Format) -> Result<Kind, qfx_fixed::Error> {
    let xf = node.operand_format(0);
    let full_product = |a: Format, b: Format| Fixed::zero(a).mul(&Fixed::zero(b)).is_ok();
    let window = || node.window().expect("a pooling layer has a window");
    Ok(match node.op() {
        Op::Quantize => Kind::Cast,
        Op::Flatten | Op::Reshape { .. } => Kind::Flatten,
        Op::Relu { clip } => relu_plan(*clip, xf, fmt),
        Op::HardTanh { min, max } => {
            let (lo, hi) = (clip_constant(*min), clip_constant(*max));
            let (lo, hi) = lo.zip(hi).expect("validated: finite bounds");
            // x < lo ⟺ x_code < ceil(lo·2^F_x); x > hi ⟺ x_code > floor(hi·2^F_x).
            let d = xf.frac_bits() - lo.format().frac_bits();
            Kind::HardTanh {
                below: -floor_scaled(-lo.code().unwrap_or(0), d),
                lo: reference::assign(&lo, fmt),
                above: floor_scaled(hi.code().unwrap_or(0), d),
                hi: reference::assign(&hi, fmt),
            }
        }
        Op::HardSigmoid { alpha, beta } => {
            let (alpha, beta) = (alpha.value(0), beta.value(0));
            Kind::HardSigmoid {
                full: Fixed::zero(alpha.format())
                    .mul(&Fixed::zero(xf))
                    .and_then(|p| p.add(&Fixed::zero(beta.format())))
                    .is_ok(),
                alpha,
                beta,
                one: reference::assign(&clip_constant(1.0).expect("1 converts"), fmt),
                zero: reference::assign(&Fixed::zero(fmt), fmt),
            }
        }
        Op::Lookup {
            table,
            shift,
            offset,
            ..
        } => Kind::Lookup {
            table: table.codes.clone(),
            shift: *shift,
            offset: *offset,
        },
        Op::MaxPool2d { .. } | Op::MaxPool1d { .. } | Op::GlobalMaxPool => Kind::MaxPool(window()),
        Op::AvgPool2d { reciprocal, .. }
        | Op::AvgPool1d { reciprocal, .. }
        | Op::GlobalAvgPool { reciprocal } => {
            let window = window();
            let sum_format = window_sum_format(xf, window.size())?;
            let reciprocal = reciprocal.value(0);
            Kind::AvgPool {
                window,
                full: full_product(sum_format, reciprocal.format()),
                reciprocal,
                sum_format,
            }
        }
        Op::Shortcut {
            stride,
            pad_channels,
        } => Kind::Shortcut {
            stride: *stride,
            pad_channels: *pad_channels,
        },
        Op::Add => Kind::Add {
            full: Fixed::zero(xf)
                .add(&Fixed::zero(node.operand_format(1)))
                .is_ok(),
        },
        Op::Multiply => Kind::Multiply {
            full: full_product(xf, node.operand_format(1)),
        },
        Op::Concat => Kind::Concat,
        Op::BatchNorm { scale, shift } => Kind::BatchNorm {
            full: (0..scale.codes.len())
                .map(|c| {
                    Fixed::zero(scale.format_of(c))
                        .mul(&Fixed::zero(xf))
                        .and_then(|p| p.add(&Fixed::zero(shift.format_of(c))))
                        .is_ok()
                })
                .collect(),
            scale: scale.clone(),
            shift: shift.clone(),
        },
        Op::Sign => Kind::Sign {
            plus: reference::assign(&sign_value(true), fmt),
            minus: reference::assign(&sign_value(false), fmt),
        },
        Op::Prelu { slope } => Kind::Prelu {
            full: (0..node.x().shape[0])
                .map(|c| full_product(slope.format_of(slope.channel_index(c)), xf))
                .collect(),
            slope: slope.clone(),
        },
        Op::Dense { .. } | Op::Conv2d { .. } | Op::Conv1d { .. } => {
            let mac = node.mac().expect("a sum of products");
            Kind::Mac(Box::new(Mac::new(&mac, xf)))
        }
    })
}

/// `v · 2^sh` (`sh ≥ 0`), or `None` when it does not fit an `i128`.
fn shift_up(v: i128, sh: i64) -> Option<i128> {
    if v == 0 {
        Some(0)
    } else if sh > 126 {
        None
    } else {
        v.checked_mul(1i128 << sh)
    }
}

/// `floor(c · 2^d)`, saturated to `±(2^127 − 1)` (beyond every code, and safe to negate).
fn floor_scaled(c: i128, d: i64) -> i128 {
    let sat = if c < 0 { -i128::MAX } else { i128::MAX };
    if d >= 0 {
        shift_up(c, d).unwrap_or(sat)
    } else {
        c >> (-d).min(127)
    }
}

fn relu_plan(clip: Option<f64>, xf: Format, to: Format) -> Kind {
    let Some(cv) = relu_clip(clip) else {
        return Kind::Relu {
            above: i128::MAX,
            clip: None,
        };
    };
    // x > c  ⟺  x_code > c_code·2^(F_x − F_c) ⟺ x_code > floor(c_code·2^(F_x − F_c)).
    let c = cv.code().unwrap_or(0);
    let above = floor_scaled(c, xf.frac_bits() - cv.format().frac_bits());
    // Relu's result is max(x, 0) clipped; a negative clip is below every max(x, 0).
    let above = if c < 0 { i128::MIN } else { above };
    let (code, o) = reference::assign(&cv, to);
    Kind::Relu {
        above,
        clip: Some((code, o)),
    }
}
