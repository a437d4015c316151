//! Element-wise operations: `Quantize`, `Relu` (with its clip), `Sign`, `Prelu`, `BatchNorm`,
//! `Add`. Semantics are the IR's (`qfx-ir/src/lib.rs`): the exact value in the HLS result type,
//! then one assignment to the layer's format. Constants that an assignment of a constant
//! produces (ReLU's zero and clip, `Sign`'s `±1`) are computed here with `Fixed::cast`.

use qfx_fixed::{Fixed, Format};
use qfx_ir::{relu_clip, sign_value, Codes};

use super::constmul::{product, style_for};
use super::{add_format, cast_const, mul_format, Ctx};
use crate::cast::{cast, CastLogic};
use crate::verilog::{checked_shl, ext, floor_shr, lit, signed_bits, Body, Operand, Sig};
use crate::RtlError;

/// `cast(x)` for every element.
pub(crate) fn quantize(b: &mut Body, x: &[Sig], xf: Format, to: Format, l: CastLogic) -> Vec<Sig> {
    x.iter().map(|e| cast(b, e, xf, to, None, l)).collect()
}

/// `x < 0` as a one-bit expression (`None` for an unsigned format, never negative).
fn negative(x: &Sig) -> Option<String> {
    x.signed.then(|| format!("{}[{}]", x.name, x.width - 1))
}

/// `cast(max(x, 0) > clip ? clip : max(x, 0))`: the clip compares exactly, as the largest code
/// of `x`'s grid not above it.
pub(crate) fn relu(
    b: &mut Body,
    x: &[Sig],
    xf: Format,
    to: Format,
    clip: Option<f64>,
    l: CastLogic,
) -> Vec<Sig> {
    let zero = cast_const(&Fixed::zero(xf), to);
    let clip = relu_clip(clip);
    // x > clip ⟺ code > floor(clip · 2^F_x).
    let threshold = clip.map(|c| {
        let code = c.code().unwrap_or(0);
        let shift = xf.frac_bits() - c.format().frac_bits();
        if shift >= 0 {
            checked_shl(code, shift.min(200) as u32).unwrap_or(if code > 0 {
                i128::MAX
            } else {
                i128::MIN
            })
        } else {
            floor_shr(code, (-shift).min(200) as u32)
        }
    });
    let w = to.width();
    x.iter()
        .map(|e| {
            let (_, xhi) = e.range();
            let kept = cast(b, e, xf, to, Some((0, xhi.max(0))), l);
            let mut expr = match negative(e) {
                Some(neg) => format!("{neg} ? {} : {}", lit(w, zero), kept.name),
                None => kept.name.clone(),
            };
            if let (Some(c), Some(t)) = (clip, threshold) {
                let clipped = lit(w, cast_const(&c, to));
                // max(x, 0) > t: for negative x that is 0 > t, known now.
                let above = if t >= xhi {
                    "1'b0".to_string()
                } else {
                    let n = (e.width + !e.signed as u32).max(signed_bits(t, t));
                    format!("($signed({}) > $signed({}))", ext(e, n), lit(n, t))
                };
                let above = match negative(e) {
                    Some(neg) => format!("({neg} ? 1'b{} : {above})", (0 > t) as u8),
                    None => above,
                };
                expr = format!("{above} ? {clipped} : {expr}");
            }
            b.wire("relu", w, to.is_signed(), &expr)
        })
        .collect()
}

/// `cast(x ≥ 0 ? +1 : −1)`: two constants.
pub(crate) fn sign(b: &mut Body, x: &[Sig], _xf: Format, to: Format) -> Vec<Sig> {
    let w = to.width();
    let plus = lit(w, cast_const(&sign_value(true), to));
    let minus = lit(w, cast_const(&sign_value(false), to));
    x.iter()
        .map(|e| {
            let expr = match negative(e) {
                Some(neg) => format!("{neg} ? {minus} : {plus}"),
                None => plus.clone(),
            };
            b.wire("sign", w, to.is_signed(), &expr)
        })
        .collect()
}

/// `cast(x ≥ 0 ? x : slope[c]·x)`, the product exact (its HLS type).
pub(crate) fn prelu(
    b: &mut Body,
    x: &[Sig],
    xf: Format,
    to: Format,
    slope: &Codes,
    inner: usize,
    ctx: &Ctx,
) -> Result<Vec<Sig>, RtlError> {
    let l = ctx.options.cast_logic;
    let mut out = Vec::with_capacity(x.len());
    for (i, e) in x.iter().enumerate() {
        let ch = i / inner.max(1);
        let kept = cast(b, e, xf, to, None, l);
        let Some(neg) = negative(e) else {
            out.push(kept);
            continue;
        };
        let sf = slope.format_of(ch);
        let pf = mul_format(sf, xf)?;
        let style = style_for(
            ctx.options.multipliers,
            slope.khot.is_some(),
            sf.width(),
            xf.width(),
        );
        let scaled = match product(b, e, slope.codes[ch] as i128, style) {
            Some(p) => {
                let s = b.materialize("prod", &p, pf.width());
                let s = Sig {
                    signed: pf.is_signed(),
                    ..s
                };
                cast(b, &s, pf, to, None, l)
            }
            None => b.konst(to.width(), to.is_signed(), cast_const(&Fixed::zero(pf), to)),
        };
        out.push(b.wire(
            "prelu",
            to.width(),
            to.is_signed(),
            &format!("{neg} ? {} : {}", scaled.name, kept.name),
        ));
    }
    Ok(out)
}

/// `cast(scale[c]·x + shift[c])` at full precision.
#[allow(clippy::too_many_arguments)]
pub(crate) fn batch_norm(
    b: &mut Body,
    x: &[Sig],
    xf: Format,
    to: Format,
    scale: &Codes,
    shift: &Codes,
    inner: usize,
    ctx: &Ctx,
) -> Result<Vec<Sig>, RtlError> {
    let mut out = Vec::with_capacity(x.len());
    for (i, e) in x.iter().enumerate() {
        let ch = i / inner.max(1);
        let (sf, hf) = (scale.format_of(ch), shift.format_of(ch));
        let pf = mul_format(sf, xf)?;
        let sum_f = add_format(pf, hf)?;
        let style = style_for(
            ctx.options.multipliers,
            scale.khot.is_some(),
            sf.width(),
            xf.width(),
        );
        let p = product(b, e, scale.codes[ch] as i128, style).map(|mut p| {
            p.shift += (sum_f.frac_bits() - pf.frac_bits()) as u32;
            p
        });
        let c = checked_shl(
            shift.codes[ch] as i128,
            (sum_f.frac_bits() - hf.frac_bits()) as u32,
        )
        .ok_or_else(|| wide("batch_norm shift"))?;
        let s = exact(b, "bn", p.into_iter().collect(), c, sum_f);
        out.push(cast(b, &s, sum_f, to, None, ctx.options.cast_logic));
    }
    Ok(out)
}

/// `cast(a + b)` at full precision.
pub(crate) fn add(
    b: &mut Body,
    x: &[Sig],
    xf: Format,
    y: &[Sig],
    yf: Format,
    to: Format,
    l: CastLogic,
) -> Result<Vec<Sig>, RtlError> {
    let sum_f = add_format(xf, yf)?;
    let mut out = Vec::with_capacity(x.len());
    for (p, q) in x.iter().zip(y) {
        let terms = vec![
            Operand {
                shift: (sum_f.frac_bits() - xf.frac_bits()) as u32,
                ..Operand::of(p.clone())
            },
            Operand {
                shift: (sum_f.frac_bits() - yf.frac_bits()) as u32,
                ..Operand::of(q.clone())
            },
        ];
        let s = exact(b, "add", terms, 0, sum_f);
        out.push(cast(b, &s, sum_f, to, None, l));
    }
    Ok(out)
}

/// The exact sum of `terms` and `constant` (units of `f`'s LSB) as a code of `f`, which holds
/// it (HLS result types are wide enough by construction).
pub(crate) fn exact(
    b: &mut Body,
    hint: &str,
    terms: Vec<Operand>,
    constant: i128,
    f: Format,
) -> Sig {
    let s = match b.sum(hint, terms, constant, None) {
        Some(op) => b.materialize(hint, &op, f.width()),
        None => b.konst(f.width(), true, 0),
    };
    Sig {
        signed: f.is_signed(),
        ..s
    }
}

fn wide(what: &str) -> RtlError {
    RtlError::new(
        crate::ErrorKind::Unsupported,
        format!("{what}: a constant does not fit 128 bits on the sum's grid"),
    )
}
