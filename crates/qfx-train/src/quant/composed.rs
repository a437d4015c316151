//! The composed quantizer: built from ordinary tensor operations, so it runs (and
//! differentiates) on every backend. Same forward values as the fused kernels wherever
//! `|x·2^F| < 2^24` (every value a trained format of at most 24 bits can hold, and the
//! saturating modes everywhere); same gradients, by the straight-through construction
//! `x̂ = x̂ₛ + (x − xₛ)·gₓ + (F − Fₛ)·g_F` with `ₛ` marking values detached from the graph.

use std::f64::consts::LN_2;

use burn::tensor::{Tensor, TensorData};
use qfx_fixed::{OverflowRule, Quant};

use super::spec::{Granularity, QuantSpec, MAX_FRAC_BITS};
use crate::host::HostValues;

/// `[1, …, channels, …, 1]`: the shape that broadcasts per-channel values over `x`.
fn broadcast_shape<const D: usize>(spec: &QuantSpec, channels: usize) -> [usize; D] {
    let mut shape = [1usize; D];
    if let Granularity::PerChannel { axis } = spec.granularity {
        shape[axis] = channels;
    }
    shape
}

/// Rounds `v` (already in LSB units) with the mode's tie rule, via the exact residual of
/// round-half-even.
fn round_mode<const D: usize>(v: Tensor<D>, quant: Quant) -> Tensor<D> {
    let t = v.clone().round();
    let d = v.clone() - t.clone();
    let is = |m: Tensor<D, burn::tensor::Bool>| m.float();
    let tie_up = || is(d.clone().equal_elem(0.5f32));
    let tie_down = || is(d.clone().equal_elem(-0.5f32));
    let neg = || is(v.clone().lower_elem(0.0));
    let pos = || is(v.clone().greater_elem(0.0));
    match quant {
        Quant::RndConv => t,
        Quant::Trn => t - is(d.clone().lower_elem(0.0)),
        Quant::TrnZero => {
            let nonneg = is(v.clone().greater_equal_elem(0.0));
            let down = is(d.clone().lower_elem(0.0)) * nonneg.clone();
            let up = is(d.clone().greater_elem(0.0)) * (nonneg.neg() + 1.0);
            t - down + up
        }
        Quant::Rnd => t + tie_up(),
        Quant::RndMinInf => t - tie_down(),
        Quant::RndZero => t + tie_up() * neg() - tie_down() * pos(),
        Quant::RndInf => t + tie_up() * pos() - tie_down() * neg(),
    }
}

/// The K-hot quantizer as a straight-through graph: the projection and both gradient factors
/// are computed on the host (the table lookup has no tensor form) and enter the graph as
/// constants, `x̂ = x̂ₛ + (x − xₛ)·gₓ + (F − Fₛ)·g_F`.
fn khot_composed<const D: usize>(
    x: Tensor<D>,
    big_f: Tensor<D>,
    frac: &[f32],
    spec: &QuantSpec,
) -> Tensor<D> {
    let device = x.device();
    let dims = x.dims();
    let xd = x.clone().detach();
    let xs: Vec<f32> = xd.clone().host_f32();
    let fb: Vec<i32> = frac.iter().map(|&v| v as i32).collect();
    let (xh, clip) = super::khot::project(&xs, &dims, &fb, spec);
    let gx: Vec<f32> = clip.iter().map(|&k| (k == 0) as u8 as f32).collect();
    let gf: Vec<f32> = xs
        .iter()
        .zip(&xh)
        .zip(&clip)
        .map(|((&x, &h), &k)| {
            let d = if k == 0 {
                LN_2 * (x as f64 - h as f64)
            } else {
                -LN_2 * h as f64
            };
            d as f32
        })
        .collect();
    let t = |v: Vec<f32>| Tensor::<D>::from_data(TensorData::new(v, dims), &device);
    t(xh) + (x - xd) * t(gx) + (big_f.clone() - big_f.detach()) * t(gf)
}

/// The composed quantizer of `x` with binary points `f` (`[channels]`).
///
/// Panics for `AP_WRAP` with saturation bits and `AP_WRAP_SM`, which only the fused kernels
/// implement; [`super::Quantizer`] refuses them on non-Flex devices before getting here.
pub fn quantize_composed<const D: usize>(
    x: Tensor<D>,
    f: Tensor<1>,
    spec: &QuantSpec,
) -> Tensor<D> {
    let device = x.device();
    let channels = f.dims()[0];
    let shape = broadcast_shape::<D>(spec, channels);

    // F = round(f) in the forward pass, ∂F/∂f = 1 (straight through).
    let bound = MAX_FRAC_BITS as f32;
    let f_round = f.clone().round().clamp(-bound, bound); // as `frac_bits_of`
    let big_f = (f.clone() + (f_round.clone() - f).detach()).reshape(shape);
    // Exact powers of two, built on the host from the (few) rounded binary points.
    let frac: Vec<f32> = f_round.host_f32();
    let pow2 = |sign: f32| -> Tensor<D> {
        let v: Vec<f32> = frac.iter().map(|&fb| (sign * fb).exp2()).collect();
        Tensor::<1>::from_data(TensorData::new(v, [channels]), &device).reshape(shape)
    };
    if spec.khot.is_some() {
        return khot_composed(x, big_f, &frac, spec);
    }
    let (scale, inv_scale) = (pow2(1.0), pow2(-1.0));

    let (lo, hi) = spec.code_bounds();
    let xd = x.clone().detach();
    let q = round_mode(xd.clone() * scale, spec.quant);
    let above = q.clone().greater_elem(hi).float();
    let below = q.clone().lower_elem(lo).float();
    let clipped = above.clone() + below;
    let in_range = clipped.clone().neg() + 1.0;
    let saturated = q.clone().clamp(lo, hi);
    let q = match spec.overflow.rule(spec.sat_bits) {
        OverflowRule::Clamp => saturated.clone(),
        OverflowRule::Zero => q * in_range.clone(),
        OverflowRule::Wrap => {
            let modulus = 2f64.powi(spec.width as i32);
            let wraps = ((q.clone() - lo) / modulus).floor();
            q - wraps * modulus
        }
        OverflowRule::General => panic!(
            "the composed quantizer does not implement {:?} with N = {}",
            spec.overflow, spec.sat_bits
        ),
    };
    let xhat = q * inv_scale.clone();

    // Gradient factors (constants of the graph).
    let grad_x = if spec.wraps() {
        in_range.ones_like()
    } else {
        in_range.clone()
    };
    let bound = if spec.wraps() {
        saturated * inv_scale
    } else {
        xhat.clone()
    };
    let grad_f = in_range.clone() * (xd.clone() - xhat.clone()) * LN_2
        + (in_range.neg() + 1.0) * bound * (-LN_2);
    xhat + (x - xd) * grad_x.detach() + (big_f.clone() - big_f.detach()) * grad_f.detach()
}
