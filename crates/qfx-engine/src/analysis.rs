//! Static worst-case range analysis: which accumulators and layer outputs can overflow, and by
//! how many integer bits their formats are short, from the formats and constant codes alone.
//!
//! The network input is assumed to be any value of the input quantizer's format. Every tensor
//! is then described by one interval of codes per channel (axis 0; per element for a vector),
//! and each layer's exact, pre-assignment value range is computed from its inputs' intervals:
//!
//! - **Sums of products** follow the IR's step-by-step accumulation. For each output channel and
//!   each distinct zero-padding pattern of a convolution (border windows skip some taps), the
//!   extreme accumulator value after each step is `Q(extreme before + extreme product)` (each
//!   product's extreme is `w·x_min` or `w·x_max`, chosen per term; `Q` the accumulator's
//!   rounding, monotone). Every prefix counts, so the reported accumulator range is the hull
//!   over all steps, the bias assignment included. Given independent inputs in their intervals
//!   this is exact: an accumulator *can overflow* exactly when this range leaves its format.
//! - **BatchNorm** uses the scale's sign per channel, **ReLU** its clip, **Add** the sum of the
//!   operands' intervals, **Multiply** the extreme of the four products of their ends, **average
//!   pooling** (windowed or global) the window size times the interval times the reciprocal;
//!   **hard tanh**, **hard sigmoid** (`alpha·x + beta`, then the clamp to `[0, 1]`) and
//!   **PReLU** are piecewise linear, so the extremes are at the ends of the pieces; a **table
//!   lookup** takes the smallest and largest entry among the indices its input interval reaches
//!   (the index is monotone in the code); max pooling, flattening, reshaping, concatenation and
//!   shortcuts move the intervals (padding channels are zero; a reshaped channel is the hull of
//!   the input channels its values come from). Each of these is exact per channel.
//! - An **assignment** rounds the range's ends with the target's `Q` (monotone), and overflows
//!   if the rounded ends leave the format. The next layer then sees the rounded range, clamped
//!   for the saturating modes, or the whole format after a possible wrap.
//!
//! Conservative points (said so, never hidden): intervals are per channel, so correlations
//! between elements (the same input feeding both operands of an `Add` or a `Multiply`, or a
//! concatenation of a tensor with itself, say) are ignored and the bounds of later layers may be
//! wider than anything reachable (a reshape that gathers several input channels into one takes
//! the hull of their intervals, which is exact for that channel's values but not for each
//! element); after an accumulator overflow the final sum is taken to be anywhere in the
//! accumulator's range. A range whose arithmetic does not fit in 128 bits is
//! reported as the whole format with `exact = false`.

use std::collections::BTreeSet;
use std::fmt;

use qfx_fixed::{Fixed, Format, Overflow, OverflowRule};
use qfx_ir::{clip_constant, lookup_index, relu_clip, Mac, Model, Op};

use crate::requant::rescale;
use crate::EngineError;

/// An exact value: `code · 2^−frac`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Bound {
    /// The integer.
    pub code: i128,
    /// Fractional bits of its scale.
    pub frac: i64,
}

impl Bound {
    /// The value as the nearest `f64`.
    pub fn to_f64(&self) -> f64 {
        self.code as f64 * 2f64.powi(-(self.frac.clamp(-2000, 2000) as i32))
    }
}

/// The worst case of one kind of assignment in a layer (accumulation steps, or the assignment
/// to the output format), over all its channels.
#[derive(Clone, Debug, PartialEq)]
pub struct Check {
    /// The format assigned to (for accumulators: the worst channel's).
    pub format: Format,
    /// Smallest exact value that can be assigned (before rounding and overflow).
    pub min: Bound,
    /// Largest exact value that can be assigned.
    pub max: Bound,
    /// Integer bits the format lacks for the worst case (0: it cannot overflow). A format that
    /// is unsigned but can receive negative values counts the sign bit it needs.
    pub short_bits: u32,
    /// Channels analysed, and how many of them can overflow.
    pub channels: usize,
    /// Channels that can overflow.
    pub overflowing: usize,
    /// False where a bound was widened conservatively (see the module documentation).
    pub exact: bool,
}

impl Check {
    /// Whether some input in range makes this assignment overflow (or, with `exact = false`,
    /// might).
    pub fn can_overflow(&self) -> bool {
        self.short_bits > 0
    }
}

/// The analysis of one layer.
#[derive(Clone, Debug, PartialEq)]
pub struct LayerRange {
    /// The layer's name.
    pub name: String,
    /// The operation, e.g. `conv2d`.
    pub op: &'static str,
    /// `Dense` and `Conv2d`: every partial sum (bias assignment included) against the
    /// accumulator format.
    pub accumulator: Option<Check>,
    /// The value assigned to the layer's output format.
    pub output: Check,
}

/// The worst-case ranges of a whole model, layer by layer ([`analyze`]). Its `Display` is a
/// table, one line per assignment.
#[derive(Clone, Debug, PartialEq)]
pub struct RangeReport {
    /// One entry per layer, in the model's order.
    pub layers: Vec<LayerRange>,
}

impl RangeReport {
    /// Whether any accumulator or output can overflow.
    pub fn can_overflow(&self) -> bool {
        self.layers.iter().any(|l| {
            l.output.can_overflow() || l.accumulator.as_ref().is_some_and(Check::can_overflow)
        })
    }
}

/// Codes `[lo, hi]` of one channel of a tensor.
type Span = (i128, i128);

/// Analyses `model` (see the module documentation). Errors only for an invalid model.
pub fn analyze(model: &Model) -> Result<RangeReport, EngineError> {
    let graph = model.resolve().map_err(|e| EngineError(e.to_string()))?;
    // Per layer: the output's code interval per channel.
    let mut ranges: Vec<Vec<Span>> = Vec::with_capacity(model.layers.len());
    let mut layers = Vec::with_capacity(model.layers.len());
    for node in graph.nodes() {
        let layer = node.layer;
        let to = node.format();
        let operand = |k: usize| -> (usize, Format) {
            let o = &node.operands[k];
            (o.source.expect("validated"), node.operand_format(k))
        };
        let mut accumulator = None;
        // Exact pre-assignment range per output channel (`None`: unknown).
        let pre: Vec<Option<(Bound, Bound)>> = match &layer.op {
            _ if node.reads_input() => {
                let (lo, hi) = full(to);
                let b = |c| Bound {
                    code: c,
                    frac: to.frac_bits(),
                };
                vec![Some((b(lo), b(hi))); node.shape[0]]
            }
            Op::Quantize | Op::MaxPool2d { .. } | Op::MaxPool1d { .. } | Op::GlobalMaxPool => {
                let (j, xf) = operand(0);
                ranges[j].iter().map(|&r| Some(bounds(r, xf))).collect()
            }
            Op::Flatten | Op::Reshape { .. } => {
                // Output channel k holds the flat elements [k·n_out, (k + 1)·n_out), which come
                // from input channels k·n_out / n_in ..= ((k + 1)·n_out − 1) / n_in.
                let (j, xf) = operand(0);
                let n_in: usize = node.x().shape[1..].iter().product();
                let n_out: usize = node.shape[1..].iter().product();
                (0..node.shape[0])
                    .map(|k| {
                        let from = &ranges[j][k * n_out / n_in..=((k + 1) * n_out - 1) / n_in];
                        let lo = from.iter().map(|r| r.0).min().expect("non-empty");
                        let hi = from.iter().map(|r| r.1).max().expect("non-empty");
                        Some(bounds((lo, hi), xf))
                    })
                    .collect()
            }
            Op::Concat => node
                .operands
                .iter()
                .enumerate()
                .flat_map(|(k, o)| {
                    let f = node.operand_format(k);
                    ranges[o.source.expect("validated")]
                        .iter()
                        .map(move |&r| Some(bounds(r, f)))
                })
                .collect(),
            Op::Multiply => {
                let ((ja, fa), (jb, fb)) = (operand(0), operand(1));
                let f = fa.frac_bits() + fb.frac_bits();
                ranges[ja]
                    .iter()
                    .zip(&ranges[jb])
                    .map(|(&(al, ah), &(bl, bh))| {
                        let ends = [
                            al.checked_mul(bl)?,
                            al.checked_mul(bh)?,
                            ah.checked_mul(bl)?,
                            ah.checked_mul(bh)?,
                        ];
                        let (lo, hi) = (ends.iter().min()?, ends.iter().max()?);
                        Some((Bound { code: *lo, frac: f }, Bound { code: *hi, frac: f }))
                    })
                    .collect()
            }
            Op::HardTanh { min, max } => {
                let (j, xf) = operand(0);
                let bounds = clip_constant(*min).zip(clip_constant(*max));
                let (lo, hi) = bounds.expect("validated: finite bounds");
                // A clamp is monotone: the ends map to the ends.
                let f = |c: i128| -> Bound {
                    let v = Fixed::from_code(c, xf).expect("in range");
                    let b = if v < lo {
                        lo
                    } else if v > hi {
                        hi
                    } else {
                        v
                    };
                    fixed_bound(&b)
                };
                ranges[j].iter().map(|&(l, h)| Some((f(l), f(h)))).collect()
            }
            Op::HardSigmoid { alpha, beta } => {
                let (j, xf) = operand(0);
                let (a, b) = (alpha.value(0), beta.value(0));
                let one = clip_constant(1.0).expect("1 converts");
                // alpha·x + beta is monotone, and so is the clamp to [0, 1].
                let t = |c: i128| -> Option<Fixed> {
                    let t = a.mul(&Fixed::from_code(c, xf).ok()?).ok()?.add(&b).ok()?;
                    Some(if t.is_negative() {
                        Fixed::zero(to)
                    } else if t > one {
                        one
                    } else {
                        t
                    })
                };
                ranges[j]
                    .iter()
                    .map(|&(l, h)| {
                        let (p, q) = (t(l)?, t(h)?);
                        Some((fixed_bound(&p.min(q)), fixed_bound(&p.max(q))))
                    })
                    .collect()
            }
            Op::Lookup {
                table,
                shift,
                offset,
                ..
            } => {
                let (j, _) = operand(0);
                let n = table.codes.len();
                ranges[j]
                    .iter()
                    .map(|&(l, h)| {
                        let entries = lookup_index(l, *shift, *offset, n)
                            ..=lookup_index(h, *shift, *offset, n);
                        let codes = &table.codes[entries];
                        let lo = *codes.iter().min()? as i128;
                        let hi = *codes.iter().max()? as i128;
                        Some(bounds((lo, hi), to))
                    })
                    .collect()
            }
            Op::Shortcut { pad_channels, .. } => {
                let (j, xf) = operand(0);
                let zero = Some(bounds((0, 0), xf));
                let mut v: Vec<_> = ranges[j].iter().map(|&r| Some(bounds(r, xf))).collect();
                v.extend(std::iter::repeat_n(zero, *pad_channels));
                v
            }
            Op::Relu { clip } => {
                let (j, xf) = operand(0);
                let clip = relu_clip(*clip);
                ranges[j]
                    .iter()
                    .map(|&(lo, hi)| {
                        // max(x, 0), then min(·, clip): monotone, so the ends map to the ends.
                        let f = |c: i128| -> Bound {
                            let v = Fixed::from_code(c.max(0), xf).expect("in range");
                            match clip {
                                Some(k) if v > k => Bound {
                                    code: k.code().unwrap_or(0),
                                    frac: 32,
                                },
                                _ => Bound {
                                    code: c.max(0),
                                    frac: xf.frac_bits(),
                                },
                            }
                        };
                        Some((f(lo), f(hi)))
                    })
                    .collect()
            }
            Op::Add => {
                let ((ja, fa), (jb, fb)) = (operand(0), operand(1));
                let f = fa.frac_bits().max(fb.frac_bits());
                ranges[ja]
                    .iter()
                    .zip(&ranges[jb])
                    .map(|(&(al, ah), &(bl, bh))| {
                        let lo = add_aligned(al, fa.frac_bits(), bl, fb.frac_bits(), f)?;
                        let hi = add_aligned(ah, fa.frac_bits(), bh, fb.frac_bits(), f)?;
                        Some((Bound { code: lo, frac: f }, Bound { code: hi, frac: f }))
                    })
                    .collect()
            }
            Op::Sign => {
                let (j, _) = operand(0);
                let one = |c: i128| Bound { code: c, frac: 0 };
                ranges[j]
                    .iter()
                    .map(|&(lo, hi)| {
                        let sign = |c: i128| if c >= 0 { 1 } else { -1 };
                        Some((one(sign(lo)), one(sign(hi))))
                    })
                    .collect()
            }
            Op::Prelu { slope } => {
                let (j, xf) = operand(0);
                ranges[j]
                    .iter()
                    .enumerate()
                    .map(|(c, &(lo, hi))| {
                        let k = slope.channel_index(c);
                        let (s, sf) = (slope.codes[k] as i128, slope.format_of(k));
                        let (fx, fp) = (xf.frac_bits(), xf.frac_bits() + sf.frac_bits());
                        let f = fx.max(fp);
                        // Piecewise linear: the extremes are at the ends of the negative
                        // and the non-negative pieces (x itself, or the product s·x).
                        let y = |x: i128| -> Option<i128> {
                            if x >= 0 {
                                add_aligned(x, fx, 0, 0, f)
                            } else {
                                add_aligned(s.checked_mul(x)?, fp, 0, 0, f)
                            }
                        };
                        let mut ends = Vec::with_capacity(4);
                        if lo < 0 {
                            ends.extend([y(lo)?, y(hi.min(-1))?]);
                        }
                        if hi >= 0 {
                            ends.extend([y(lo.max(0))?, y(hi)?]);
                        }
                        let (min, max) = (ends.iter().min()?, ends.iter().max()?);
                        Some((
                            Bound {
                                code: *min,
                                frac: f,
                            },
                            Bound {
                                code: *max,
                                frac: f,
                            },
                        ))
                    })
                    .collect()
            }
            Op::BatchNorm { scale, shift } => {
                let (j, xf) = operand(0);
                ranges[j]
                    .iter()
                    .enumerate()
                    .map(|(c, &(lo, hi))| {
                        let (s, sf) = (scale.codes[c] as i128, scale.format_of(c));
                        let (b, bf) = (shift.codes[c] as i128, shift.format_of(c));
                        let fp = sf.frac_bits() + xf.frac_bits();
                        let f = fp.max(bf.frac_bits());
                        let (p, q) = (s.checked_mul(lo)?, s.checked_mul(hi)?);
                        let lo = add_aligned(p.min(q), fp, b, bf.frac_bits(), f)?;
                        let hi = add_aligned(p.max(q), fp, b, bf.frac_bits(), f)?;
                        Some((Bound { code: lo, frac: f }, Bound { code: hi, frac: f }))
                    })
                    .collect()
            }
            Op::AvgPool2d { reciprocal, .. }
            | Op::AvgPool1d { reciprocal, .. }
            | Op::GlobalAvgPool { reciprocal } => {
                let (j, xf) = operand(0);
                let inner = node.window().expect("a pooling layer").size() as i128;
                let r = reciprocal.codes[0] as i128;
                let f = xf.frac_bits() + reciprocal.formats[0].frac_bits();
                ranges[j]
                    .iter()
                    .map(|&(lo, hi)| {
                        let p = lo.checked_mul(inner)?.checked_mul(r)?;
                        let q = hi.checked_mul(inner)?.checked_mul(r)?;
                        Some((
                            Bound {
                                code: p.min(q),
                                frac: f,
                            },
                            Bound {
                                code: p.max(q),
                                frac: f,
                            },
                        ))
                    })
                    .collect()
            }
            Op::Dense { .. } | Op::Conv2d { .. } | Op::Conv1d { .. } => {
                let (j, xf) = operand(0);
                let mac = node.mac().expect("a sum of products");
                let (weight, bias) = (mac.weight, mac.bias);
                let x = &ranges[j];
                let patterns = tap_patterns(&mac);
                // The analysed channel of an input element: axis 0, or the element of a vector.
                let x_inner: usize = node.x().shape[1..].iter().product();
                let c_out = mac.outputs();
                let mut acc_check: Option<Check> = None;
                let mut pre = Vec::with_capacity(c_out);
                for o in 0..c_out {
                    let af = mac.accumulator(o);
                    let start = bias.map(|b| (b.codes[o] as i128, b.format_of(o).frac_bits()));
                    let mut worst: Option<(i128, i128)> = None;
                    let mut last: Option<(i128, i128)> = None;
                    let mut exact = true;
                    for (position, js) in &patterns {
                        let terms: Vec<(usize, usize)> = js
                            .iter()
                            .map(|&t| {
                                let xi = mac.input_index(o, *position, t).expect("a valid tap");
                                (mac.weight_index(o, t), xi / x_inner)
                            })
                            .collect();
                        let r = accumulate_range(&terms, weight, x, xf, af, start);
                        match r {
                            Some((lo, hi, fin)) => {
                                worst = Some(match worst {
                                    None => (lo, hi),
                                    Some((a, b)) => (a.min(lo), b.max(hi)),
                                });
                                last = Some(match last {
                                    None => fin,
                                    Some((a, b)) => (a.min(fin.0), b.max(fin.1)),
                                });
                            }
                            None => exact = false,
                        }
                    }
                    let f = af.frac_bits();
                    let (span, exact) = match worst {
                        Some(w) if exact => (w, true),
                        _ => (full(af), false),
                    };
                    let short = short_bits(span.0, span.1, af);
                    let check = Check {
                        format: af,
                        min: Bound {
                            code: span.0,
                            frac: f,
                        },
                        max: Bound {
                            code: span.1,
                            frac: f,
                        },
                        short_bits: if exact { short } else { short.max(1) },
                        channels: 1,
                        overflowing: (short > 0 || !exact) as usize,
                        exact,
                    };
                    merge(&mut acc_check, check.clone());
                    // The final sum: exact without overflow, else anywhere in the format.
                    let fin = match last {
                        Some(l) if check.short_bits == 0 => l,
                        _ => full(af),
                    };
                    pre.push(Some((
                        Bound {
                            code: fin.0,
                            frac: f,
                        },
                        Bound {
                            code: fin.1,
                            frac: f,
                        },
                    )));
                }
                accumulator = acc_check;
                pre
            }
        };
        let mut out_check: Option<Check> = None;
        let mut out_ranges = Vec::with_capacity(pre.len());
        for p in pre {
            let (check, span) = assign_range(p, to);
            merge(&mut out_check, check);
            out_ranges.push(span);
        }
        ranges.push(out_ranges);
        layers.push(LayerRange {
            name: layer.name.clone(),
            op: layer.op.kind(),
            accumulator,
            output: out_check.expect("every tensor has a channel"),
        });
    }
    Ok(RangeReport { layers })
}

/// The distinct sets of terms that escape zero padding, each with one output position that has
/// it: border windows of a convolution skip some taps; a dense layer has one set, every term.
fn tap_patterns(mac: &Mac) -> Vec<(usize, Vec<usize>)> {
    let mut seen: BTreeSet<Vec<usize>> = BTreeSet::new();
    let mut patterns = Vec::new();
    for p in 0..mac.positions() {
        let js: Vec<usize> = (0..mac.terms())
            .filter(|&j| mac.input_index(0, p, j).is_some())
            .collect();
        if seen.insert(js.clone()) {
            patterns.push((p, js));
        }
    }
    patterns
}

/// Extreme accumulator codes over every step for one term list of `(flat weight index, input
/// channel)`: `(min, max, final range)`.
fn accumulate_range(
    terms: &[(usize, usize)],
    weight: &qfx_ir::Codes,
    x: &[Span],
    xf: Format,
    af: Format,
    start: Option<(i128, i64)>,
) -> Option<(i128, i128, (i128, i128))> {
    let fa = af.frac_bits();
    let q = af.quant();
    // The bias assigned to the accumulator, before overflow (its rounded exact value).
    let s = match start {
        Some((code, frac)) => rescale(code, frac, fa, q)?,
        None => 0,
    };
    let (mut lo, mut hi) = (s, s);
    let (mut min, mut max) = (s, s);
    for &(i, ci) in terms {
        let (w, wf) = (weight.codes[i] as i128, weight.format_of(i));
        let (xl, xh) = x[ci];
        let (a, b) = (w.checked_mul(xl)?, w.checked_mul(xh)?);
        let fp = xf.frac_bits() + wf.frac_bits();
        let f = fa.max(fp);
        lo = rescale(add_aligned(lo, fa, a.min(b), fp, f)?, f, fa, q)?;
        hi = rescale(add_aligned(hi, fa, a.max(b), fp, f)?, f, fa, q)?;
        min = min.min(lo);
        max = max.max(hi);
    }
    Some((min, max, (lo, hi)))
}

/// `a·2^−fa + b·2^−fb` as a code at `f ≥ fa, fb`.
fn add_aligned(a: i128, fa: i64, b: i128, fb: i64, f: i64) -> Option<i128> {
    let up = |v: i128, d: i64| -> Option<i128> {
        if v == 0 {
            Some(0)
        } else if d > 126 {
            None
        } else {
            v.checked_mul(1i128 << d)
        }
    };
    up(a, f - fa)?.checked_add(up(b, f - fb)?)
}

/// Every code of `f` that an assignment to it can produce.
fn full(f: Format) -> Span {
    f.assignable_range()
}

/// An exact value as a bound.
fn fixed_bound(v: &Fixed) -> Bound {
    Bound {
        code: v.code().unwrap_or(0),
        frac: v.format().frac_bits(),
    }
}

fn bounds((lo, hi): Span, f: Format) -> (Bound, Bound) {
    let frac = f.frac_bits();
    (Bound { code: lo, frac }, Bound { code: hi, frac })
}

/// Integer bits `f` lacks to hold codes `lo..=hi` (a sign bit counts when `lo < 0` and `f`
/// is unsigned).
fn short_bits(lo: i128, hi: i128, f: Format) -> u32 {
    let (flo, fhi) = full(f);
    if lo >= flo && hi <= fhi {
        return 0;
    }
    let bitlen = |v: i128| 128 - (v.max(0) as u128).leading_zeros();
    let sym = f.overflow() == Overflow::SatSym;
    let need = if f.is_signed() || lo < 0 {
        let neg = if lo < 0 {
            if sym {
                bitlen(-(lo + 1) + 1)
            } else {
                bitlen(-(lo + 1))
            }
        } else {
            0
        };
        bitlen(hi).max(neg) + 1
    } else {
        bitlen(hi)
    };
    need.saturating_sub(f.width()).max(1)
}

/// The assignment of a range to `to`: its check, and the codes it can produce.
fn assign_range(range: Option<(Bound, Bound)>, to: Format) -> (Check, Span) {
    let f = to.frac_bits();
    let rounded = range.and_then(|(a, b)| {
        Some((
            rescale(a.code, a.frac, f, to.quant())?,
            rescale(b.code, b.frac, f, to.quant())?,
        ))
    });
    let (min, max) = range.unwrap_or_else(|| {
        let (lo, hi) = full(to);
        bounds((lo, hi), to)
    });
    let Some((lo, hi)) = rounded else {
        return (
            Check {
                format: to,
                min,
                max,
                short_bits: 1,
                channels: 1,
                overflowing: 1,
                exact: false,
            },
            full(to),
        );
    };
    let short = short_bits(lo, hi, to);
    let (flo, fhi) = full(to);
    let span = if short == 0 {
        (lo, hi)
    } else {
        match to.overflow_rule() {
            OverflowRule::Clamp => (lo.clamp(flo, fhi), hi.clamp(flo, fhi)),
            OverflowRule::Zero => {
                let (a, b) = (lo.clamp(flo, fhi), hi.clamp(flo, fhi));
                (a.min(0), b.max(0))
            }
            OverflowRule::Wrap | OverflowRule::General => (flo, fhi),
        }
    };
    (
        Check {
            format: to,
            min,
            max,
            short_bits: short,
            channels: 1,
            overflowing: (short > 0) as usize,
            exact: true,
        },
        span,
    )
}

fn cmp_bound(a: &Bound, b: &Bound) -> std::cmp::Ordering {
    let f = a.frac.max(b.frac);
    match (
        add_aligned(a.code, a.frac, 0, f, f),
        add_aligned(b.code, b.frac, 0, f, f),
    ) {
        (Some(x), Some(y)) => x.cmp(&y),
        _ => a.to_f64().total_cmp(&b.to_f64()),
    }
}

/// Folds one channel's check into a layer's.
fn merge(into: &mut Option<Check>, c: Check) {
    let Some(m) = into else {
        *into = Some(c);
        return;
    };
    if cmp_bound(&c.min, &m.min).is_lt() {
        m.min = c.min;
    }
    if cmp_bound(&c.max, &m.max).is_gt() {
        m.max = c.max;
    }
    if c.short_bits > m.short_bits {
        m.short_bits = c.short_bits;
        m.format = c.format;
    }
    m.channels += c.channels;
    m.overflowing += c.overflowing;
    m.exact &= c.exact;
}

impl fmt::Display for Check {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let range = format!("[{}, {}]", self.min.to_f64(), self.max.to_f64());
        let verdict = if self.short_bits == 0 {
            "safe".to_string()
        } else {
            let bits = if self.short_bits == 1 { "bit" } else { "bits" };
            let mut v = format!("can overflow by {} {bits}", self.short_bits);
            if self.channels > 1 {
                v += &format!(" ({} of {} channels)", self.overflowing, self.channels);
            }
            if !self.exact {
                v += " (conservative)";
            }
            v
        };
        write!(f, "{:<40} {range:<32} {verdict}", self.format.to_string())
    }
}

impl fmt::Display for RangeReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "{:<24} {:<16} {:<40} {:<32} verdict",
            "layer", "op", "format", "worst-case range"
        )?;
        for l in &self.layers {
            if let Some(a) = &l.accumulator {
                writeln!(f, "{:<24} {:<16} {a}", format!("{} (acc)", l.name), l.op)?;
            }
            writeln!(f, "{:<24} {:<16} {}", l.name, l.op, l.output)?;
        }
        Ok(())
    }
}
