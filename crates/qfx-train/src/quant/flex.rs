//! Fused kernels for burn's Flex CPU backend: one pass forward (values and clip sides, through
//! qfx-fixed's vectorized slice kernel), one pass backward (both gradients).

use std::borrow::Cow;
use std::f64::consts::LN_2;

use burn::backend::{tensor::FloatTensor, Flex, TensorMetadata};
use burn::tensor::TensorData;
use burn_flex::FlexTensor;
use qfx_fixed::{Overflow, SliceQuantizer, CLIP_ABOVE, CLIP_NONE};
use rayon::prelude::*;

use super::ops::FixedPointOps;
use super::spec::{frac_bits_of, QuantSpec};

impl FixedPointOps for Flex {
    fn fixed_quantize(x: FloatTensor<Self>, f: FloatTensor<Self>, spec: QuantSpec) -> FlexTensor {
        forward(&x, &f, &spec).0
    }

    fn fixed_quantize_clip(
        x: FloatTensor<Self>,
        f: FloatTensor<Self>,
        spec: QuantSpec,
    ) -> (FlexTensor, FlexTensor) {
        forward(&x, &f, &spec)
    }

    fn fixed_quantize_grad(
        grad: FloatTensor<Self>,
        x: FloatTensor<Self>,
        xhat: FloatTensor<Self>,
        clip: FloatTensor<Self>,
        f: FloatTensor<Self>,
        spec: QuantSpec,
    ) -> (FlexTensor, FlexTensor) {
        backward(&grad, &x, &xhat, &clip, &f, &spec)
    }
}

/// The elements of a contiguous view, copying only when the tensor is strided or offset.
fn values<'a, E: burn::tensor::Element + bytemuck::Pod>(
    t: &'a FlexTensor,
    what: &str,
) -> Cow<'a, [E]> {
    assert_eq!(
        t.dtype(),
        E::dtype(),
        "fixed-point quantizer: {what} must be {:?}",
        E::dtype()
    );
    match t.as_slice::<E>() {
        Some(s) => Cow::Borrowed(s),
        None => Cow::Owned(
            t.to_contiguous()
                .as_slice::<E>()
                .expect("contiguous")
                .to_vec(),
        ),
    }
}

/// Fractional bits per channel: `F = round(f)` (ties to even), checked against the layout.
fn frac_bits(f: &FlexTensor, channels: usize) -> Vec<i32> {
    let f = values::<f32>(f, "the binary points f");
    assert_eq!(
        f.len(),
        channels,
        "fixed-point quantizer: {} binary points for {channels} channels",
        f.len()
    );
    f.iter().map(|&v| frac_bits_of(v)).collect()
}

/// How many consecutive blocks (`block_len` elements each) one parallel task takes: `blocks`
/// split over at most `qfx_fixed::available_threads()` tasks, none with less than 32 Ki
/// elements (threads only pay off with enough work each). The backward pass adds its
/// per-channel sums task by task, so this split is part of its result: it depends on the shape
/// and the core count, never on how the tasks are scheduled.
fn blocks_per_task(blocks: usize, block_len: usize) -> usize {
    let tasks = qfx_fixed::available_threads()
        .min((blocks * block_len) / (1 << 15))
        .clamp(1, blocks.max(1));
    blocks.div_ceil(tasks).max(1)
}

fn forward(x: &FlexTensor, f: &FlexTensor, spec: &QuantSpec) -> (FlexTensor, FlexTensor) {
    let shape = x.shape();
    let (outer, channels, inner) = spec.blocks(&shape);
    let frac = frac_bits(f, channels);
    if spec.khot.is_some() {
        let xs = values::<f32>(x, "the input");
        let (out, clip) = super::khot::project(&xs, &shape, &frac, spec);
        let out = FlexTensor::from_data(TensorData::new(out, shape.clone()));
        let clip = FlexTensor::from_data(TensorData::new(clip, shape));
        return (out, clip);
    }
    let quantizers: Vec<SliceQuantizer> = frac
        .iter()
        .map(|&fb| SliceQuantizer::new(spec.format(fb).expect("validated quantizer spec")))
        .collect();
    let xs = values::<f32>(x, "the input");
    let mut out = vec![0f32; xs.len()];
    let mut clip = vec![0i8; xs.len()];
    let blocks = outer * channels;
    if blocks == 1 {
        // One binary point: the slice kernel splits the work across threads itself.
        quantizers[0]
            .quantize(&xs, &mut out, &mut clip, 0)
            .expect("equal lengths");
    } else if inner > 0 {
        // Blocks of `inner` elements share a binary point; each task writes only its own
        // blocks of `out` and `clip`.
        out.par_chunks_mut(inner)
            .zip(clip.par_chunks_mut(inner))
            .zip(xs.par_chunks(inner))
            .enumerate()
            .with_min_len(blocks_per_task(blocks, inner))
            .for_each(|(b, ((y, k), x))| {
                quantizers[b % channels]
                    .quantize(x, y, k, 1)
                    .expect("equal lengths");
            });
    }
    let out = FlexTensor::from_data(TensorData::new(out, shape.clone()));
    let clip = FlexTensor::from_data(TensorData::new(clip, shape));
    (out, clip)
}

fn backward(
    grad: &FlexTensor,
    x: &FlexTensor,
    xhat: &FlexTensor,
    clip: &FlexTensor,
    f: &FlexTensor,
    spec: &QuantSpec,
) -> (FlexTensor, FlexTensor) {
    let shape = x.shape();
    let (outer, channels, inner) = spec.blocks(&shape);
    let frac = frac_bits(f, channels);
    let (g, xs, xh) = (
        values::<f32>(grad, "the gradient"),
        values::<f32>(x, "the input"),
        values::<f32>(xhat, "the output"),
    );
    let k = values::<i8>(clip, "the clip marker");
    let (lo, hi) = spec.code_bounds();
    let pass_clipped = spec.wraps(); // wrapped values: straight-through for x
    let zeroed = spec.overflow == Overflow::SatZero;
    // K-hot: saturation lands on the largest K-hot code in range, not on the range end, so
    // the bound's gradient is read from x̂ itself (−ln2·x̂; 0 for AP_SAT_ZERO, where x̂ = 0).
    let khot = spec.khot.is_some();
    let mut gx = vec![0f32; xs.len()];
    let per = blocks_per_task(outer * channels, inner);
    // Each task owns `per` consecutive blocks of `gx` and returns its per-channel sums, added
    // below in task order.
    let partial_sums: Vec<Vec<f64>> = gx
        .par_chunks_mut((per * inner).max(1))
        .enumerate()
        .map(|(task, gx)| {
            let mut sums = vec![0f64; channels];
            for (j, gx) in gx.chunks_mut(inner).enumerate() {
                let b = task * per + j;
                let c = b % channels;
                let inv_scale = 2f64.powi(-frac[c]);
                // ∂x̂/∂F at each bound: −ln2 · (the saturated value).
                let d_above = if zeroed { 0.0 } else { -LN_2 * hi * inv_scale };
                let d_below = if zeroed { 0.0 } else { -LN_2 * lo * inv_scale };
                let at = b * inner;
                let mut acc = 0f64;
                for i in 0..inner {
                    let (gi, ki) = (g[at + i], k[at + i]);
                    let in_range = ki == CLIP_NONE;
                    gx[i] = if in_range || pass_clipped { gi } else { 0.0 };
                    let d = if in_range {
                        LN_2 * (xs[at + i] as f64 - xh[at + i] as f64)
                    } else if khot {
                        -LN_2 * xh[at + i] as f64
                    } else if ki == CLIP_ABOVE {
                        d_above
                    } else {
                        d_below
                    };
                    acc += gi as f64 * d;
                }
                sums[c] += acc;
            }
            sums
        })
        .collect();
    let mut gf = vec![0f64; channels];
    for sums in partial_sums {
        for (t, s) in gf.iter_mut().zip(sums) {
            *t += s;
        }
    }
    let gf: Vec<f32> = gf.into_iter().map(|v| v as f32).collect();
    (
        FlexTensor::from_data(TensorData::new(gx, shape)),
        FlexTensor::from_data(TensorData::new(gf, f.shape())),
    )
}
