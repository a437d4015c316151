//! Fused kernels for burn's Flex CPU backend: one pass forward (values and clip sides, through
//! qfx-fixed's vectorized slice kernel), one pass backward (both gradients).

use std::f64::consts::LN_2;
use std::ops::Range;

use burn::backend::{tensor::FloatTensor, Flex, TensorMetadata};
use burn::tensor::TensorData;
use burn_flex::FlexTensor;
use qfx_fixed::{Format, Overflow, SliceQuantizer, CLIP_ABOVE, CLIP_BELOW, CLIP_NONE};
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

    fn fixed_quantize_width_clip(
        x: FloatTensor<Self>,
        f: FloatTensor<Self>,
        w: FloatTensor<Self>,
        spec: QuantSpec,
    ) -> (FlexTensor, FlexTensor) {
        let channels = spec.blocks(&x.shape()).1;
        let formats = learned_formats(&frac_bits(&f, channels), &w, &spec);
        let casts: Vec<Cast> = formats
            .iter()
            .map(|f| f.map_or(Cast::Prune, |f| Cast::To(SliceQuantizer::new(f))))
            .collect();
        cast(&x, &casts, &spec)
    }

    fn fixed_quantize_width_grad(
        grad: FloatTensor<Self>,
        x: FloatTensor<Self>,
        xhat: FloatTensor<Self>,
        clip: FloatTensor<Self>,
        f: FloatTensor<Self>,
        w: FloatTensor<Self>,
        spec: QuantSpec,
    ) -> (FlexTensor, FlexTensor, FlexTensor) {
        let channels = spec.blocks(&x.shape()).1;
        let formats = learned_formats(&frac_bits(&f, channels), &w, &spec);
        let (gx, sums) = gradient_sums(&grad, &x, &xhat, &clip, &spec, false);
        let (mut gf, mut gw) = (vec![0f32; channels], vec![0f32; channels]);
        for (c, format) in formats.iter().enumerate() {
            // A pruned channel's bounds are [0, 0]: no gradient for F or W.
            let Some(format) = format else { continue };
            let s = &sums[c];
            let inv_scale = 2f64.powi(-(format.frac_bits() as i32));
            let (lo, hi) = format.assignable_range();
            // F at fixed W, as for a fixed width: −ln2 · the saturated value at a bound.
            gf[c] = (LN_2 * s.in_range
                - LN_2 * inv_scale * (hi as f64 * s.above + lo as f64 * s.below))
                as f32;
            // W: the bound's magnitude 2^(W − F − sign) grows by ln2 times itself per bit; the
            // lower bound moves only when signed (and not at AP_SAT_SYM's W = 1, whose −1 is
            // fixed).
            let signed = spec.signed as i32;
            let top = 2f64.powi(format.width() as i32 - format.frac_bits() as i32 - signed);
            let lower = spec.signed && !(spec.overflow == Overflow::SatSym && format.width() == 1);
            let below = if lower { s.below } else { 0.0 };
            gw[c] = (LN_2 * top * (s.above - below)) as f32;
        }
        (
            FlexTensor::from_data(TensorData::new(gx, x.shape())),
            FlexTensor::from_data(TensorData::new(gf, f.shape())),
            FlexTensor::from_data(TensorData::new(gw, w.shape())),
        )
    }
}

/// Each channel's format for learned widths `w` (whole numbers) and fractional bits `frac`;
/// `None` for a pruned channel (width 0).
fn learned_formats(frac: &[i32], w: &FlexTensor, spec: &QuantSpec) -> Vec<Option<Format>> {
    let widths = values::<f32>(w, "the learned widths");
    assert_eq!(
        widths.len(),
        frac.len(),
        "fixed-point quantizer: widths per channel"
    );
    frac.iter()
        .zip(widths.iter())
        .map(|(&f, &w)| {
            (w >= 1.0).then(|| {
                spec.format_of_width(w as u32, f)
                    .expect("validated learned-width range")
            })
        })
        .collect()
}

/// What one channel's elements become.
enum Cast {
    /// An `ap_fixed` assignment.
    To(SliceQuantizer),
    /// 0 (a pruned channel), marked as clipped on the side of the input's sign.
    Prune,
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
    let channels = spec.blocks(&shape).1;
    let frac = frac_bits(f, channels);
    if spec.khot.is_some() {
        let xs = values::<f32>(x, "the input");
        let (out, clip) = super::khot::project(&xs, &shape, &frac, spec);
        let out = FlexTensor::from_data(TensorData::new(out, shape.clone()));
        let clip = FlexTensor::from_data(TensorData::new(clip, shape));
        return (out, clip);
    }
    let casts: Vec<Cast> = frac
        .iter()
        .map(|&fb| {
            Cast::To(SliceQuantizer::new(
                spec.format(fb).expect("validated quantizer spec"),
            ))
        })
        .collect();
    cast(x, &casts, spec)
}

/// `x` cast channel by channel (`casts[c]`), with the clip side of each element.
fn cast(x: &FlexTensor, casts: &[Cast], spec: &QuantSpec) -> (FlexTensor, FlexTensor) {
    let shape = x.shape();
    let (_, channels, inner) = spec.blocks(&shape);
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
                match &casts[block % channels] {
                    Cast::To(q) => {
                        q.quantize(&xs[piece], &mut y[local.clone()], &mut k[local], 1)
                            .expect("equal lengths");
                    }
                    Cast::Prune => {
                        // `out` is already 0 there.
                        for (k, &x) in k[local].iter_mut().zip(&xs[piece]) {
                            *k = if x > 0.0 {
                                CLIP_ABOVE
                            } else if x < 0.0 {
                                CLIP_BELOW
                            } else {
                                CLIP_NONE
                            };
                        }
                    }
                }
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
    let channels = spec.blocks(&x.shape()).1;
    let frac = frac_bits(f, channels);
    let (lo, hi) = spec.code_bounds();
    let zeroed = spec.overflow == Overflow::SatZero;
    // Wrapped values: straight-through for x.
    let (gx, sums) = gradient_sums(grad, x, xhat, clip, spec, spec.wraps());
    let gf: Vec<f32> = sums
        .iter()
        .zip(&frac)
        .map(|(s, &fb)| {
            let inv_scale = 2f64.powi(-fb);
            let clipped = if spec.khot.is_some() {
                // K-hot: saturation lands on the largest K-hot code in range, not on the range
                // end, so the bound's gradient is read from x̂ itself: −ln2·x̂ at each clipped
                // element (0 for AP_SAT_ZERO, where x̂ = 0).
                -LN_2 * s.clipped_xhat
            } else if zeroed {
                0.0
            } else {
                // ∂x̂/∂F at each bound: −ln2 · (the saturated value).
                -LN_2 * inv_scale * (hi * s.above + lo * s.below)
            };
            (LN_2 * s.in_range + clipped) as f32
        })
        .collect();
    (
        FlexTensor::from_data(TensorData::new(gx, x.shape())),
        FlexTensor::from_data(TensorData::new(gf, f.shape())),
    )
}

/// `∂L/∂x` (straight through where in range, or everywhere with `pass_clipped`) and the
/// per-channel [`SideSums`] both binary-point and width gradients are made of. Tasks take
/// element ranges ([`task_len`]) and their sums are added in task order.
fn gradient_sums(
    grad: &FlexTensor,
    x: &FlexTensor,
    xhat: &FlexTensor,
    clip: &FlexTensor,
    spec: &QuantSpec,
    pass_clipped: bool,
) -> (Vec<f32>, Vec<SideSums>) {
    let shape = x.shape();
    let (_, channels, inner) = spec.blocks(&shape);
    let (g, xs, xh) = (
        values::<f32>(grad, "the gradient"),
        values::<f32>(x, "the input"),
        values::<f32>(xhat, "the output"),
    );
    let k = values::<i8>(clip, "the clip marker");
    let len = xs.len();
    let gx = straight_through(&g, &k, pass_clipped);
    let per_task = task_len(len);
    let partial_sums: Vec<Vec<SideSums>> = (0..len.div_ceil(per_task))
        .into_par_iter()
        .map(|task| {
            let mut sums: Vec<SideSums> = (0..channels).map(|_| SideSums::default()).collect();
            let start = task * per_task;
            for (block, stretch) in stretches(start..(start + per_task).min(len), inner) {
                let (g, k) = (&g[stretch.clone()], &k[stretch.clone()]);
                let (xs, xh) = (&xs[stretch.clone()], &xh[stretch.clone()]);
                sums[block % channels].add(&side_sums(g, k, xs, xh));
            }
            sums
        })
        .collect();
    let mut total: Vec<SideSums> = (0..channels).map(|_| SideSums::default()).collect();
    for sums in partial_sums {
        for (t, s) in total.iter_mut().zip(&sums) {
            t.add(s);
        }
    }
    (gx, total)
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

impl SideSums {
    fn add(&mut self, other: &SideSums) {
        self.in_range += other.in_range;
        self.above += other.above;
        self.below += other.below;
        self.clipped_xhat += other.clipped_xhat;
    }
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
