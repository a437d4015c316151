//! Fused kernels for burn's Flex CPU backend: one pass forward (values and clip sides, through
//! qfx-fixed's vectorized slice kernel), one pass backward (both gradients).

use std::borrow::Cow;
use std::f64::consts::LN_2;

use burn::backend::{tensor::FloatTensor, Flex, TensorMetadata};
use burn::tensor::TensorData;
use burn_flex::FlexTensor;
use qfx_fixed::{Overflow, SliceQuantizer, CLIP_ABOVE, CLIP_NONE};

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

/// Splits `0..blocks` into at most `threads` contiguous ranges and runs `work` on each.
fn for_block_ranges<R: Send>(
    blocks: usize,
    block_len: usize,
    work: impl Fn(std::ops::Range<usize>) -> R + Sync,
) -> Vec<R> {
    let threads = qfx_fixed::available_threads();
    // Threads only pay off with enough work each.
    let threads = threads
        .min((blocks * block_len) / (1 << 15))
        .clamp(1, blocks.max(1));
    if threads <= 1 {
        return vec![work(0..blocks)];
    }
    let per = blocks.div_ceil(threads);
    std::thread::scope(|s| {
        let handles: Vec<_> = (0..threads)
            .map(|t| {
                let work = &work;
                s.spawn(move || work(t * per..((t + 1) * per).min(blocks)))
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().expect("quantizer thread"))
            .collect()
    })
}

/// An output buffer written by several threads, each to its own disjoint block range.
struct SharedMut<T>(*mut T, usize);
unsafe impl<T: Send> Send for SharedMut<T> {}
unsafe impl<T: Send> Sync for SharedMut<T> {}

impl<T> SharedMut<T> {
    fn new(buffer: &mut [T]) -> SharedMut<T> {
        SharedMut(buffer.as_mut_ptr(), buffer.len())
    }

    /// `buffer[at..at + len]`.
    ///
    /// # Safety
    /// No two live slices may overlap: callers hand each thread its own blocks.
    #[allow(clippy::mut_from_ref)]
    unsafe fn slice(&self, at: usize, len: usize) -> &mut [T] {
        assert!(at + len <= self.1, "block outside the buffer");
        std::slice::from_raw_parts_mut(self.0.add(at), len)
    }
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
    } else {
        let (o, c) = (SharedMut::new(&mut out), SharedMut::new(&mut clip));
        for_block_ranges(blocks, inner, |range| {
            for b in range {
                let at = b * inner;
                // SAFETY: block ranges of different threads are disjoint.
                let (y, k) = unsafe { (o.slice(at, inner), c.slice(at, inner)) };
                quantizers[b % channels]
                    .quantize(&xs[at..at + inner], y, k, 1)
                    .expect("equal lengths");
            }
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
    let gx_out = SharedMut::new(&mut gx);
    let partial_sums = for_block_ranges(outer * channels, inner, |range| {
        let mut sums = vec![0f64; channels];
        for b in range {
            let c = b % channels;
            let inv_scale = 2f64.powi(-frac[c]);
            // ∂x̂/∂F at each bound: −ln2 · (the saturated value).
            let d_above = if zeroed { 0.0 } else { -LN_2 * hi * inv_scale };
            let d_below = if zeroed { 0.0 } else { -LN_2 * lo * inv_scale };
            let at = b * inner;
            // SAFETY: block ranges of different threads are disjoint.
            let gx = unsafe { gx_out.slice(at, inner) };
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
    });
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
