//! Fused kernels for burn's Flex CPU backend: one pass forward (values and clip sides, through
//! qfx-fixed's vectorized slice kernel), one pass backward (both gradients).

use std::f64::consts::LN_2;
use std::ops::Range;

use burn::backend::{tensor::FloatTensor, Flex, TensorMetadata};
use burn::tensor::TensorData;
use burn_flex::FlexTensor;
use qfx_fixed::{Overflow, SliceQuantizer, CLIP_ABOVE, CLIP_BELOW, CLIP_NONE};
use rayon::prelude::*;

use super::ops::FixedPointOps;
use super::spec::{frac_bits_of, QuantSpec};
use crate::kernels::values;

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

/// The length of each task's range when `len` elements are split over the cores (at most one
/// task per core, none under 32 Ki elements: threads only pay off with enough work each).
/// Tasks take element ranges, not whole blocks, so a per-tensor format (one block) splits as
/// evenly as a per-channel one; the backward pass adds its per-channel sums task by task, so
/// this split is part of its result: it depends on the length and the core count, never on
/// how the tasks are scheduled.
fn task_len(len: usize) -> usize {
    let tasks = qfx_fixed::available_threads().min(len / (1 << 15)).max(1);
    len.div_ceil(tasks).max(1)
}

/// The pieces of `range` that lie in one block of `inner` elements each: `(block, piece)`.
fn stretches(range: Range<usize>, inner: usize) -> impl Iterator<Item = (usize, Range<usize>)> {
    let mut at = range.start;
    std::iter::from_fn(move || {
        (at < range.end).then(|| {
            let block = at / inner;
            let piece = at..range.end.min((block + 1) * inner);
            at = piece.end;
            (block, piece)
        })
    })
}

fn forward(x: &FlexTensor, f: &FlexTensor, spec: &QuantSpec) -> (FlexTensor, FlexTensor) {
    let shape = x.shape();
    let (_, channels, inner) = spec.blocks(&shape);
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
    // Each task quantizes its own range of `out` and `clip` on its own thread, one stretch
    // per binary point it crosses.
    let per_task = task_len(xs.len());
    out.par_chunks_mut(per_task)
        .zip(clip.par_chunks_mut(per_task))
        .enumerate()
        .for_each(|(task, (y, k))| {
            let start = task * per_task;
            for (block, piece) in stretches(start..start + y.len(), inner) {
                let local = piece.start - start..piece.end - start;
                quantizers[block % channels]
                    .quantize(&xs[piece], &mut y[local.clone()], &mut k[local], 1)
                    .expect("equal lengths");
            }
        });
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
    let (_, channels, inner) = spec.blocks(&shape);
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
    let len = xs.len();
    let gx = straight_through(&g, &k, pass_clipped);
    let per_task = task_len(len);
    let partial_sums: Vec<Vec<f64>> = (0..len.div_ceil(per_task))
        .into_par_iter()
        .map(|task| {
            let mut sums = vec![0f64; channels];
            let start = task * per_task;
            for (block, stretch) in stretches(start..(start + per_task).min(len), inner) {
                let c = block % channels;
                let inv_scale = 2f64.powi(-frac[c]);
                // ∂x̂/∂F at each bound: −ln2 · (the saturated value).
                let d_above = if zeroed { 0.0 } else { -LN_2 * hi * inv_scale };
                let d_below = if zeroed { 0.0 } else { -LN_2 * lo * inv_scale };
                let (g, k) = (&g[stretch.clone()], &k[stretch.clone()]);
                let (xs, xh) = (&xs[stretch.clone()], &xh[stretch.clone()]);
                let sums_by_side = side_sums(g, k, xs, xh);
                let clipped = if khot {
                    // K-hot: −ln2·x̂ at each clipped element.
                    -LN_2 * sums_by_side.clipped_xhat
                } else {
                    d_above * sums_by_side.above + d_below * sums_by_side.below
                };
                let acc = LN_2 * sums_by_side.in_range + clipped;
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

/// The sums the binary point's gradient is made of, over one stretch sharing a binary point.
#[derive(Default)]
struct SideSums {
    /// `Σ g·(x − x̂)` over the elements in range.
    in_range: f64,
    /// `Σ g` over the elements clipped above.
    above: f64,
    /// `Σ g` over the elements clipped below.
    below: f64,
    /// `Σ g·x̂` over the clipped elements (the K-hot bound).
    clipped_xhat: f64,
}

/// [`SideSums`] over `g`, `k`, `x`, `x̂`: sixteen f32 lanes per sum over runs of 1,024
/// elements (so the loop vectorizes; a single running sum cannot be reordered by the
/// compiler), each run's lanes then added into f64 totals, so rounding does not grow with the
/// tensor's size.
fn side_sums(g: &[f32], k: &[i8], x: &[f32], xh: &[f32]) -> SideSums {
    const LANES: usize = 16;
    const RUN: usize = 1024;
    let mut total = SideSums::default();
    for start in (0..g.len()).step_by(RUN) {
        let end = (start + RUN).min(g.len());
        let (g, k, x, xh) = (
            &g[start..end],
            &k[start..end],
            &x[start..end],
            &xh[start..end],
        );
        let mut lanes = [[0f32; LANES]; 4];
        let mut add = |lane: usize, g: f32, k: i8, x: f32, xh: f32| {
            let in_range = k == CLIP_NONE;
            lanes[0][lane] += if in_range { g * (x - xh) } else { 0.0 };
            lanes[1][lane] += if k == CLIP_ABOVE { g } else { 0.0 };
            lanes[2][lane] += if k == CLIP_BELOW { g } else { 0.0 };
            lanes[3][lane] += if in_range { 0.0 } else { g * xh };
        };
        let whole = g.len() / LANES * LANES;
        for at in (0..whole).step_by(LANES) {
            for lane in 0..LANES {
                let i = at + lane;
                add(lane, g[i], k[i], x[i], xh[i]);
            }
        }
        for i in whole..g.len() {
            add(i - whole, g[i], k[i], x[i], xh[i]);
        }
        let sum = |l: &[f32; LANES]| l.iter().map(|&v| v as f64).sum::<f64>();
        total.in_range += sum(&lanes[0]);
        total.above += sum(&lanes[1]);
        total.below += sum(&lanes[2]);
        total.clipped_xhat += sum(&lanes[3]);
    }
    total
}

/// `∂L/∂x`: the incoming gradient where `x` was in range (everywhere for the wrap modes), 0
/// where it clipped. Written once into uninitialized memory, in parallel: no zero-filled
/// buffer that would be overwritten anyway.
fn straight_through(g: &[f32], k: &[i8], pass_clipped: bool) -> Vec<f32> {
    let len = g.len();
    assert_eq!(
        k.len(),
        len,
        "fixed-point quantizer: clip markers for the gradient"
    );
    let mut gx: Vec<f32> = Vec::with_capacity(len);
    let per_task = task_len(len);
    gx.spare_capacity_mut()[..len]
        .par_chunks_mut(per_task)
        .zip(g.par_chunks(per_task))
        .zip(k.par_chunks(per_task))
        .for_each(|((out, g), k)| {
            for ((out, &gi), &ki) in out.iter_mut().zip(g).zip(k) {
                out.write(if ki == CLIP_NONE || pass_clipped {
                    gi
                } else {
                    0.0
                });
            }
        });
    // SAFETY: the chunks above cover `0..len` of the spare capacity exactly (`g`, `k` and the
    // capacity all have `len` elements, chunked alike), and every element of every chunk was
    // written, so the first `len` elements are initialized.
    unsafe { gx.set_len(len) };
    gx
}
