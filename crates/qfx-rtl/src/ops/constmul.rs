//! Products of a value by a constant code: shifts and adds on the code's canonical signed
//! digits (`qfx_fixed::khot::signed_digits`, the decomposition the K-hot constraint counts), or
//! one `*` where [`crate::Multipliers`] says a multiplier (a DSP slice) is the better circuit.

use qfx_fixed::khot::signed_digits;

use crate::verilog::{ext, lit, signed_bits, Body, Operand, Sig};

/// How one constant product is built.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Style {
    /// Shifts and adds (no multiplier).
    ShiftAdd,
    /// A `*` operator, which synthesis maps to DSP slices.
    Multiplier,
}

/// `x · code` exactly, as an operand in units of `x`'s LSB times the code's (`None` for 0).
pub(crate) fn product(b: &mut Body, x: &Sig, code: i128, style: Style) -> Option<Operand> {
    if code == 0 {
        return None;
    }
    match style {
        Style::ShiftAdd => {
            let terms: Vec<Operand> = signed_digits(code, true)
                .map(|d| Operand {
                    shift: d.shift,
                    neg: d.negative,
                    ..Operand::of(x.clone())
                })
                .collect();
            b.sum("pp", terms, 0, None)
        }
        Style::Multiplier => {
            let wx = x.width + !x.signed as u32;
            let wc = signed_bits(code, code);
            let w = wx + wc;
            b.multipliers.push((wx, wc));
            let xs = b.wire("mx", wx, true, &ext(x, wx));
            // Both operands signed: Verilog extends them to the result's width, exactly.
            let expr = format!("$signed({}) * $signed({})", xs.name, lit(wc, code));
            let sig = b.wire("mul", w, true, &expr);
            let (xlo, xhi) = x.range();
            let ends = [xlo * code, xhi * code];
            Some(Operand {
                sig,
                lo: ends[0].min(ends[1]),
                hi: ends[0].max(ends[1]),
                shift: 0,
                neg: false,
            })
        }
    }
}

/// Whether a product of a `w_bits` constant (of a tensor declared K-hot or not) and an
/// `x_bits` value gets a multiplier: never for K-hot tensors or under
/// [`crate::Multipliers::ShiftAdd`]; under [`crate::Multipliers::DspRule`] when both operands are
/// wider than its threshold, the cost model's DSP rule (`qfx_hls::cost`).
pub(crate) fn style_for(
    multipliers: crate::Multipliers,
    khot: bool,
    w_bits: u32,
    x_bits: u32,
) -> Style {
    match multipliers {
        crate::Multipliers::DspRule { fabric_max_bits }
            if !khot && w_bits.min(x_bits) > fabric_max_bits =>
        {
            Style::Multiplier
        }
        _ => Style::ShiftAdd,
    }
}
