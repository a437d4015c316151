//! Operations that move or pool values: `MaxPool2d` (a comparator tree per window; codes of one
//! format compare as integers), `Shortcut` (wires and zero channels), `GlobalAvgPool` (the exact
//! window sum in `qfx_ir::window_sum_format`, times the reciprocal constant, one assignment).
//! `Flatten` is the identity on the element list and needs no function.

use qfx_fixed::Format;
use qfx_ir::{window_sum_format, Codes};

use super::constmul::{product, style_for};
use super::elementwise::exact;
use super::{mul_format, Ctx};
use crate::cast::cast;
use crate::verilog::{Body, Operand, Sig};
use crate::{ErrorKind, RtlError};

/// The larger of two codes of one format.
pub(crate) fn max2(b: &mut Body, p: &Sig, q: &Sig) -> Sig {
    b.comparators.push(p.width);
    let cmp = if p.signed {
        format!("$signed({}) > $signed({})", p.name, q.name)
    } else {
        format!("{} > {}", p.name, q.name)
    };
    b.wire(
        "max",
        p.width,
        p.signed,
        &format!("({cmp}) ? {} : {}", p.name, q.name),
    )
}

/// `kernel × kernel` max pooling with stride `kernel` over `[c, h, w]`.
pub(crate) fn max_pool(
    b: &mut Body,
    x: &[Sig],
    _xf: Format,
    shape: &[usize],
    kernel: usize,
) -> Vec<Sig> {
    let (c, h, w) = (shape[0], shape[1], shape[2]);
    let (oh, ow) = (h / kernel, w / kernel);
    let mut out = Vec::with_capacity(c * oh * ow);
    for ch in 0..c {
        for y in 0..oh {
            for xo in 0..ow {
                let mut window: Vec<Sig> = (0..kernel * kernel)
                    .map(|t| {
                        x[(ch * h + y * kernel + t / kernel) * w + xo * kernel + t % kernel].clone()
                    })
                    .collect();
                while window.len() > 1 {
                    let mut next = Vec::with_capacity(window.len().div_ceil(2));
                    for pair in window.chunks(2) {
                        next.push(match pair {
                            [p, q] => max2(b, p, q),
                            [p] => p.clone(),
                            _ => unreachable!("chunks of two"),
                        });
                    }
                    window = next;
                }
                out.push(window.pop().expect("a non-empty window"));
            }
        }
    }
    out
}

/// ResNet option-A shortcut: subsample by `stride`, append `pad` zero channels.
pub(crate) fn shortcut(
    b: &mut Body,
    x: &[Sig],
    xf: Format,
    shape: &[usize],
    stride: usize,
    pad: usize,
) -> Vec<Sig> {
    let (c, h, w) = (shape[0], shape[1], shape[2]);
    let (oh, ow) = (h.div_ceil(stride), w.div_ceil(stride));
    let mut out = Vec::with_capacity((c + pad) * oh * ow);
    for ch in 0..c {
        for y in 0..oh {
            for xo in 0..ow {
                out.push(x[(ch * h + y * stride) * w + xo * stride].clone());
            }
        }
    }
    if pad > 0 {
        let zero = b.konst(xf.width(), xf.is_signed(), 0);
        out.resize((c + pad) * oh * ow, zero);
    }
    out
}

/// `cast(Σ window · reciprocal)` per channel, the sum exact.
pub(crate) fn global_avg_pool(
    b: &mut Body,
    x: &[Sig],
    xf: Format,
    to: Format,
    inner: usize,
    reciprocal: &Codes,
    ctx: &Ctx,
) -> Result<Vec<Sig>, RtlError> {
    let sum_f = window_sum_format(xf, inner)
        .map_err(|e| RtlError::new(ErrorKind::Unsupported, format!("window sum: {e}")))?;
    let rf = reciprocal.format_of(0);
    let pf = mul_format(sum_f, rf)?;
    let style = style_for(
        ctx.options.multipliers,
        reciprocal.khot.is_some(),
        rf.width(),
        sum_f.width(),
    );
    let mut out = Vec::new();
    for window in x.chunks(inner.max(1)) {
        let terms: Vec<Operand> = window.iter().map(|e| Operand::of(e.clone())).collect();
        let sum = exact(b, "gsum", terms, 0, sum_f);
        let y = match product(b, &sum, reciprocal.codes[0] as i128, style) {
            Some(p) => exact(b, "gmul", vec![p], 0, pf),
            None => b.konst(pf.width(), pf.is_signed(), 0),
        };
        out.push(cast(b, &y, pf, to, None, ctx.options.cast_logic));
    }
    Ok(out)
}
