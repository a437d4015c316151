//! Sums of products (`Dense`, `Conv2d`, `Conv1d`), fully unrolled: one row of hardware per
//! output element (output channel × position), read through `qfx_ir::Mac` (`terms`,
//! `weight_index`, `input_index`, `accumulator`).
//!
//! The IR accumulates step by step, `acc = cast(bias); acc = cast(acc + w·x)` for every term in
//! its order, and when the accumulator rounds or saturates that order matters. A row is
//! **reassociated** (summed as one exact tree, its constant products shared across the layer by
//! [`crate::cse`]) only where that provably gives the same code:
//! - every product lands exactly on the accumulator's grid (`F_acc ≥ F_x + F_w`), so no step
//!   ever rounds, and
//! - either the accumulator wraps (`AP_WRAP`, `N = 0`: every step is the exact sum modulo
//!   `2^W`, which any order reproduces; adders are then cut to `W` bits), or the static range
//!   analysis (`qfx_engine::analyze`, exact for independent inputs) shows that no partial sum
//!   of the layer can leave the accumulator's range, so every step is exact and the result is
//!   the exact sum.
//!
//! Every other row keeps the IR's order: a chain of `acc + w·x` in the HLS sum type, each
//! followed by the accumulator's assignment logic ([`crate::cast`]). Its products are still
//! shifts and adds, one per distinct odd multiple of each input.

use std::collections::HashMap;

use qfx_fixed::khot::signed_digits;
use qfx_fixed::{Format, OverflowRule};
use qfx_ir::Mac;

use super::constmul::{product, style_for, Style};
use super::elementwise::exact;
use super::{add_format, cast_const, mul_format, Ctx};
use crate::cast::cast;
use crate::cse::{share, Shared, Term, PAIR_BUDGET};
use crate::design::SumInfo;
use crate::verilog::{Body, Operand, Sig};
use crate::RtlError;

/// Which element of `x` term `j` of output `o` reads at position `p` (`None`: zero padding).
pub(crate) type InputOf<'a> = &'a dyn Fn(usize, usize, usize) -> Option<usize>;

/// The output elements of `mac` (output-major: channel, then position) and what was built,
/// over the whole tensor `x` (`Mac::input_index` says which element each term reads).
pub(crate) fn sum_of_products(
    b: &mut Body,
    mac: &Mac,
    x: &[Sig],
    xf: Format,
    to: Format,
    ctx: &Ctx,
) -> Result<(Vec<Sig>, SumInfo), RtlError> {
    let input_of = |o: usize, p: usize, j: usize| mac.input_index(o, p, j);
    rows_of_products(b, mac, mac.positions(), &input_of, x, None, xf, to, ctx)
}

/// [`sum_of_products`] over `positions` positions whose inputs `input_of` picks from `x` (a
/// streaming convolution computes one position, its window, at a time).
#[allow(clippy::too_many_arguments)]
pub(crate) fn rows_of_products(
    b: &mut Body,
    mac: &Mac,
    positions: usize,
    input_of: InputOf,
    x: &[Sig],
    real: Option<&[Sig]>,
    xf: Format,
    to: Format,
    ctx: &Ctx,
) -> Result<(Vec<Sig>, SumInfo), RtlError> {
    let opts = ctx.options;
    let khot = mac.weight.khot.is_some();
    let adders_before = b.adders.len();
    let mut info = SumInfo::default();
    // Per output channel: shift of the products onto the accumulator's grid, and whether its
    // rows may be reassociated.
    let channels: Vec<(Format, Option<u32>, Style)> = (0..mac.outputs())
        .map(|o| {
            let (wf, acc) = (mac.weight_format(o), mac.accumulator(o));
            let base = acc.frac_bits() - xf.frac_bits() - wf.frac_bits();
            let wraps = acc.overflow_rule() == OverflowRule::Wrap;
            let reassociate = base >= 0 && (wraps || !ctx.acc_can_overflow);
            let style = style_for(opts.multipliers, khot, wf.width(), xf.width());
            (acc, reassociate.then_some(base as u32), style)
        })
        .collect();
    let bias = |o: usize, acc: Format| mac.bias.map_or(0, |bias| cast_const(&bias.value(o), acc));

    let mut outs: Vec<Option<Sig>> = vec![None; mac.outputs() * positions];

    // Rows of a binarized layer: XNOR and popcount (see `popcount_row`).
    let mut popcounted = vec![false; mac.outputs()];
    if let Some(c) = ctx.binary_input {
        for (o, &(acc, base, _)) in channels.iter().enumerate() {
            let Some(base) = base else { continue };
            let Some(m) = same_magnitude(mac, o) else {
                continue;
            };
            popcounted[o] = true;
            for p in 0..positions {
                let taps: Vec<(usize, bool)> = (0..mac.terms())
                    .filter_map(|j| {
                        let code = mac.weight.codes[mac.weight_index(o, j)];
                        (code != 0).then_some((input_of(o, p, j)?, code < 0))
                    })
                    .collect();
                info.products += taps.len() as u64;
                let bias = bias(o, acc);
                info.adders_plain += (taps.len() as u64 + (bias != 0) as u64).saturating_sub(1);
                let sum = popcount_row(b, x, real, &taps, m * c, base, bias, acc);
                outs[o * positions + p] = Some(cast(b, &sum, acc, to, None, opts.cast_logic));
                info.reassociated += 1;
            }
        }
    }

    // Rows to reassociate: CSD digits of shift-add products, and `*` products apart.
    let mut rows: Vec<Vec<Term>> = Vec::new();
    let mut row_of: Vec<(usize, usize)> = Vec::new();
    let mut multiplied: Vec<Vec<(usize, i128)>> = Vec::new();
    for (o, &(_, base, style)) in channels.iter().enumerate() {
        if base.is_none() || popcounted[o] {
            continue;
        }
        for p in 0..positions {
            let mut terms = Vec::new();
            let mut mults = Vec::new();
            for j in 0..mac.terms() {
                let Some(xi) = input_of(o, p, j) else {
                    continue;
                };
                let code = mac.weight.codes[mac.weight_index(o, j)] as i128;
                if code == 0 {
                    continue;
                }
                info.products += 1;
                if style == Style::Multiplier {
                    mults.push((xi, code));
                    continue;
                }
                terms.extend(signed_digits(code, true).map(|d| Term {
                    var: xi as u32,
                    shift: d.shift,
                    neg: d.negative,
                }));
            }
            rows.push(terms);
            multiplied.push(mults);
            row_of.push((o, p));
        }
    }
    let extra: Vec<u64> = row_of
        .iter()
        .zip(&multiplied)
        .map(|(&(o, _), m)| m.len() as u64 + (bias(o, channels[o].0) != 0) as u64)
        .collect();
    let plain: u64 = rows
        .iter()
        .zip(&extra)
        .map(|(r, &e)| (r.len() as u64 + e).saturating_sub(1))
        .sum();
    let shared = if opts.cse {
        share(x.len() as u32, rows, PAIR_BUDGET)
    } else {
        Shared {
            pairs: Vec::new(),
            rows,
        }
    };
    info.adders_plain += plain;
    info.shared = shared.pairs.len() as u64;

    // Wrapping rows need only the accumulator's width; a shared variable then too.
    let all_wrap = row_of
        .iter()
        .all(|&(o, _)| channels[o].0.overflow_rule() == OverflowRule::Wrap);
    let var_cap = all_wrap
        .then(|| row_of.iter().map(|&(o, _)| channels[o].0.width()).max())
        .flatten();
    let mut vars: Vec<Operand> = x.iter().map(|e| Operand::of(e.clone())).collect();
    for pair in &shared.pairs {
        let a = vars[pair.a as usize].clone();
        let q = Operand {
            shift: pair.shift,
            neg: pair.neg,
            ..vars[pair.b as usize].clone()
        };
        let t = b.combine("cse", a, q);
        let t = match var_cap {
            Some(cap) => b.cap(t.clone(), cap).unwrap_or(t),
            None => t,
        };
        vars.push(t);
    }

    let mut products: HashMap<(usize, i128), Option<Operand>> = HashMap::new();
    for (r, &(o, p)) in row_of.iter().enumerate() {
        let (acc, base, _) = channels[o];
        let base = base.expect("reassociated rows have a base shift");
        let mut terms: Vec<Operand> = shared.rows[r]
            .iter()
            .map(|t| {
                let v = &vars[t.var as usize];
                Operand {
                    shift: v.shift + t.shift + base,
                    neg: v.neg != t.neg,
                    ..v.clone()
                }
            })
            .collect();
        for &(xi, code) in &multiplied[r] {
            let prod = products
                .entry((xi, code))
                .or_insert_with(|| product(b, &x[xi], code, Style::Multiplier))
                .clone();
            terms.extend(prod.map(|mut q| {
                q.shift += base;
                q
            }));
        }
        let cap = (acc.overflow_rule() == OverflowRule::Wrap).then_some(acc.width());
        let sum = match b.sum("acc", terms, bias(o, acc), cap) {
            Some(s) => b.materialize("acc", &s, acc.width()),
            None => b.konst(acc.width(), true, 0),
        };
        let sum = Sig {
            signed: acc.is_signed(),
            ..sum
        };
        outs[o * positions + p] = Some(cast(b, &sum, acc, to, None, opts.cast_logic));
        info.reassociated += 1;
    }

    // Every other row: the IR's order, step by step.
    let mut odd: HashMap<(usize, u128), Option<Operand>> = HashMap::new();
    for (o, &(acc, base, style)) in channels.iter().enumerate() {
        if base.is_some() {
            continue;
        }
        let wf = mac.weight_format(o);
        let pf = mul_format(wf, xf)?;
        let sf = add_format(acc, pf)?;
        for p in 0..positions {
            let mut a = b.konst(acc.width(), acc.is_signed(), bias(o, acc));
            for j in 0..mac.terms() {
                let Some(xi) = input_of(o, p, j) else {
                    continue;
                };
                let code = mac.weight.codes[mac.weight_index(o, j)] as i128;
                if code == 0 {
                    // acc + 0 assigns acc to itself unchanged: nothing to build.
                    continue;
                }
                info.products += 1;
                info.adders_plain += if style == Style::Multiplier {
                    1
                } else {
                    signed_digits(code, true).count() as u64
                };
                let prod = if style == Style::Multiplier {
                    products
                        .entry((xi, code))
                        .or_insert_with(|| product(b, &x[xi], code, Style::Multiplier))
                        .clone()
                } else {
                    // One odd multiple per input, shifted and signed per weight.
                    let m = code.unsigned_abs();
                    let tz = m.trailing_zeros();
                    odd.entry((xi, m >> tz))
                        .or_insert_with(|| product(b, &x[xi], (m >> tz) as i128, Style::ShiftAdd))
                        .clone()
                        .map(|q| Operand {
                            shift: q.shift + tz,
                            neg: q.neg != (code < 0),
                            ..q
                        })
                };
                let prod = prod.expect("a non-zero product");
                let terms = vec![
                    Operand {
                        shift: (sf.frac_bits() - acc.frac_bits()) as u32,
                        ..Operand::of(a.clone())
                    },
                    Operand {
                        shift: prod.shift + (sf.frac_bits() - pf.frac_bits()) as u32,
                        ..prod
                    },
                ];
                let s = exact(b, "step", terms, 0, sf);
                a = cast(b, &s, sf, acc, None, opts.cast_logic);
            }
            outs[o * positions + p] = Some(cast(b, &a, acc, to, None, opts.cast_logic));
            info.in_order += 1;
        }
    }
    info.adders = (b.adders.len() - adders_before) as u64;
    info.popcount = popcounted.iter().filter(|&&p| p).count() as u64;
    Ok((
        outs.into_iter()
            .map(|s| s.expect("every output element is built"))
            .collect(),
        info,
    ))
}

/// The magnitude every non-zero weight code of output `o` shares, if they all do.
fn same_magnitude(mac: &Mac, o: usize) -> Option<i128> {
    let mut m = None;
    for j in 0..mac.terms() {
        let c = (mac.weight.codes[mac.weight_index(o, j)] as i128).abs();
        if c == 0 {
            continue;
        }
        match m {
            None => m = Some(c),
            Some(v) if v != c => return None,
            Some(_) => {}
        }
    }
    m
}

/// One reassociated row of a binarized layer: inputs that are `±c` (a `Sign` output) times
/// weights `±m`. Each product is `±m·c`, negative exactly when the input's sign bit differs
/// from the weight's, so the sum is `m·c·(n − 2·popcount(x_sign XOR w_sign))` — an XNOR and a
/// popcount, no multiplier and no wide adder. `taps` are the inputs with their weight's sign;
/// with `real` (a streaming window), a tap counts only where its flag says it is inside the
/// image (padding taps add nothing, as the IR skips them): `n` becomes the flags' popcount.
#[allow(clippy::too_many_arguments)]
fn popcount_row(
    b: &mut Body,
    x: &[Sig],
    real: Option<&[Sig]>,
    taps: &[(usize, bool)],
    mc: i128,
    base: u32,
    bias: i128,
    acc: Format,
) -> Sig {
    let bit = |b: &mut Body, expr: String| Operand::of(b.flag("xn", &expr));
    let mut differ = Vec::with_capacity(taps.len());
    let mut inside = Vec::new();
    for &(xi, neg) in taps {
        let e = &x[xi];
        let sign = format!("{}[{}]", e.name, e.width - 1);
        let d = if neg { format!("~{sign}") } else { sign };
        match real {
            Some(r) => {
                differ.push(bit(b, format!("{} & {d}", r[xi].name)));
                inside.push(Operand::of(r[xi].clone()));
            }
            None => differ.push(bit(b, d)),
        }
    }
    let mut terms = Vec::new();
    let mut constant = 0i128;
    if let Some(pc) = b.sum("pc", differ, 0, None) {
        terms.push(Operand {
            shift: pc.shift + 1,
            neg: !pc.neg,
            ..pc
        });
    }
    match b.sum("n", inside, 0, None) {
        Some(n) => terms.push(n),
        None if real.is_none() => constant = taps.len() as i128,
        None => {}
    }
    // d = n − 2·popcount, then times m·c on the accumulator's grid.
    let cap = (acc.overflow_rule() == OverflowRule::Wrap).then_some(acc.width());
    let tz = mc.trailing_zeros();
    let odd = mc >> tz;
    let scaled: Vec<Operand> = if odd == 1 {
        terms
            .into_iter()
            .map(|t| Operand {
                shift: t.shift + tz + base,
                ..t
            })
            .collect()
    } else {
        let d = b.sum("d", terms, constant, None).map(|d| {
            let (lo, hi) = d.bounds();
            b.materialize("d", &d, crate::verilog::signed_bits(lo, hi))
        });
        constant = 0;
        d.and_then(|d| product(b, &d, odd, Style::ShiftAdd))
            .map(|p| Operand {
                shift: p.shift + tz + base,
                ..p
            })
            .into_iter()
            .collect()
    };
    let constant = constant * (mc << base) + bias;
    let s = match b.sum("acc", scaled, constant, cap) {
        Some(s) => b.materialize("acc", &s, acc.width()),
        None => b.konst(acc.width(), true, constant),
    };
    Sig {
        signed: acc.is_signed(),
        ..s
    }
}
