//! Operations that move or pool values: max pooling of any window (2-D, 1-D, global; a
//! comparator tree per window, codes of one format compare as integers), `Shortcut` (wires and
//! zero channels), average pooling of any window and global average pooling (the exact window
//! sum in `qfx_ir::window_sum_format`, times the reciprocal constant, one assignment). The
//! windows are `qfx_ir::Window`'s. `Flatten` and `Reshape` are the identity on the element list
//! and need no function.

use qfx_fixed::Format;
use qfx_ir::{window_sum_format, Codes, Window};

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

/// The input elements of every pooling window, channel by channel, each channel's windows in
/// row-major output order (`Window::inputs`).
pub(crate) fn windows(x: &[Sig], window: &Window) -> Vec<Vec<Sig>> {
    (0..window.channels)
        .flat_map(|c| (0..window.oh * window.ow).map(move |p| (c, p)))
        .map(|(c, p)| window.inputs(c, p).map(|i| x[i].clone()).collect())
        .collect()
}

/// Max pooling over any window (2-D, 1-D, global): a comparator tree per window.
pub(crate) fn max_pool(b: &mut Body, x: &[Sig], window: &Window) -> Vec<Sig> {
    windows(x, window)
        .into_iter()
        .map(|lanes| max_tree(b, lanes))
        .collect()
}

/// The largest of `lanes` (codes of one format), as a balanced tree of comparators.
pub(crate) fn max_tree(b: &mut Body, mut lanes: Vec<Sig>) -> Sig {
    while lanes.len() > 1 {
        let mut next = Vec::with_capacity(lanes.len().div_ceil(2));
        for pair in lanes.chunks(2) {
            next.push(match pair {
                [p, q] => max2(b, p, q),
                [p] => p.clone(),
                _ => unreachable!("chunks of two"),
            });
        }
        lanes = next;
    }
    lanes.pop().expect("a non-empty window")
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

/// `cast(Σ window · reciprocal)` per window (average pooling of any window, global average
/// pooling with one window per channel), the sum exact.
pub(crate) fn avg_pool(
    b: &mut Body,
    windows: Vec<Vec<Sig>>,
    xf: Format,
    to: Format,
    reciprocal: &Codes,
    ctx: &Ctx,
) -> Result<Vec<Sig>, RtlError> {
    let size = windows.first().map_or(1, Vec::len);
    let sum_f = window_sum_format(xf, size)
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
    for window in windows {
        let terms: Vec<Operand> = window.into_iter().map(Operand::of).collect();
        let sum = exact(b, "gsum", terms, 0, sum_f);
        let y = match product(b, &sum, reciprocal.codes[0] as i128, style) {
            Some(p) => exact(b, "gmul", vec![p], 0, pf),
            None => b.konst(pf.width(), pf.is_signed(), 0),
        };
        out.push(cast(b, &y, pf, to, None, ctx.options.cast_logic));
    }
    Ok(out)
}
