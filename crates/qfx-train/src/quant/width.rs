//! Learned word widths (ARCHITECTURE.md §5): a quantizer whose width `W` is learned as well as
//! its fractional bits `F`, so both its integer bits `I = W − F` and `F` move.
//!
//! The forward pass is exactly `AP_SAT`/`AP_SAT_SYM` in `ap_fixed<W, I>` per channel: the
//! fused Flex kernel casts each channel with its own format; the composed form rounds with `F`
//! on a grid wide enough never to saturate (the ordinary quantizer at [`MAX_TRAIN_WIDTH`] bits)
//! and then selects the bounds of `W` bits — `[−2^(I−1), 2^(I−1) − 2^−F]` signed, `[0, 2^I −
//! 2^−F]` unsigned, `AP_SAT_SYM` mirrored. A channel whose width is 0 is pruned: its values
//! are 0.
//!
//! Gradients (straight through the roundings of `f` and `w`): w.r.t. `x`, 1 in range and 0
//! where saturated; w.r.t. `F` at fixed `W`, as for a fixed width: the rounding residual
//! `ln2·(x − x̂)` in range and about `−ln2·x̂` at a clip (the bound shrinks as `F` takes bits
//! from `I`); w.r.t. `W`, `ln2·x̂` at a clip (the bound grows with `I`) and 0 in range. The
//! hardware cost differentiates `W` only. A pruned channel's bounds are `[0, 0]`.

use std::f64::consts::LN_2;

use burn::tensor::Tensor;

use super::spec::{Granularity, QuantSpec, MAX_FRAC_BITS, MAX_TRAIN_WIDTH};
use burn::backend::Dispatch;

use super::{quantize, FixedPointOps, QuantPath};

/// `round(v)` in the forward pass, `v` in the backward (straight through).
fn straight_round(v: Tensor<1>, bound: f32) -> Tensor<1> {
    let rounded = v.clone().round().clamp(-bound, bound);
    v.clone() + (rounded - v).detach()
}

/// The per-channel `(F, W)` of a learned-width quantizer from its parameters `f` and `w` (in
/// bits): both rounded straight through, `W` clamped to the spec's range.
pub fn learned_bits(f: Tensor<1>, w: Tensor<1>, spec: &QuantSpec) -> (Tensor<1>, Tensor<1>) {
    let range = spec.learned_width.expect("a learned-width spec");
    let frac = straight_round(f, MAX_FRAC_BITS as f32);
    let width = straight_round(w.clamp(range.min as f32, range.max as f32), f32::MAX);
    (frac, width)
}

/// `x̂ = cast(x; ap_fixed<W, W − F>, Q, AP_SAT or AP_SAT_SYM)` with `F` and `W` learned per
/// channel (`f` and `w` have one entry per channel of `spec.granularity`): the fused kernel on
/// Flex (`super::FixedPointOps`), composed tensor operations elsewhere. Both give the same
/// values and gradients.
pub fn quantize_learned_width<const D: usize>(
    x: Tensor<D>,
    f: Tensor<1>,
    w: Tensor<1>,
    spec: &QuantSpec,
    path: QuantPath,
) -> Tensor<D> {
    if !path.fused(&x.device()) {
        return composed(x, f, w, spec, path);
    }
    // The kernel rounds `f` itself (straight through, as `learned_bits`).
    let width = learned_bits(f.clone(), w, spec).1;
    let (xhat, _) = <Dispatch as FixedPointOps>::fixed_quantize_width_clip(
        x.into_dispatch(),
        f.into_dispatch(),
        width.into_dispatch(),
        *spec,
    );
    Tensor::from_dispatch(xhat)
}

/// The composed form: rounds with `F` on a grid wide enough never to saturate, then selects
/// the bounds of `W` bits where the value lies beyond them.
fn composed<const D: usize>(
    x: Tensor<D>,
    f: Tensor<1>,
    w: Tensor<1>,
    spec: &QuantSpec,
    path: QuantPath,
) -> Tensor<D> {
    let dims = x.dims();
    let channels = f.dims()[0];
    let mut shape = [1usize; D];
    if let Granularity::PerChannel { axis } = spec.granularity {
        shape[axis] = channels;
    }
    let wide = QuantSpec {
        width: MAX_TRAIN_WIDTH,
        learned_width: None,
        ..*spec
    };
    let q = quantize(x, f.clone(), &wide, path);
    let (frac, width) = learned_bits(f, w, spec);
    // A pruned channel (W = 0) gets the bounds [0, 0]: every value saturates to 0.
    let alive = width.clone().detach().greater_equal_elem(1.0).float();
    let pow2 = |bits: Tensor<1>| (bits * LN_2).exp();
    // 2^(I − 1) signed, 2^I unsigned, with I = W − F.
    let top = pow2(width - frac.clone() - spec.signed as u8 as f64);
    let lsb = pow2(frac.neg());
    let hi = top.clone() - lsb.clone();
    // As `Format::assignable_range`: AP_SAT_SYM drops the most negative code, except at W = 1
    // where −1 is the only negative one.
    let lo = match (spec.signed, spec.overflow) {
        (false, _) => hi.zeros_like(),
        (true, qfx_fixed::Overflow::SatSym) => hi.clone().neg().min_pair(lsb.neg()),
        (true, _) => top.neg(),
    };
    let full = |t: Tensor<1>| t.reshape(shape).expand(dims);
    let (hi, lo) = (full(hi * alive.clone()), full(lo * alive));
    // Selecting (not `q − relu(q − hi)`) keeps every value exact; the gradient goes to the
    // bound where it was selected, to `q` elsewhere.
    let above = q.clone().greater(hi.clone());
    let below = q.clone().lower(lo.clone());
    q.mask_where(above, hi).mask_where(below, lo)
}
