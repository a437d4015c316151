//! The K-hot forward pass on the host, shared by the fused and the composed quantizer: each
//! block of elements that shares a binary point is projected with qfx-fixed's
//! [`KHotQuantizer`], which also gives the clip side of every element.

use qfx_fixed::KHotQuantizer;

use super::spec::QuantSpec;

/// `(x̂, clip)` for the row-major `xs` of `shape`, with `frac[c]` fractional bits per channel.
///
/// Panics if the spec has no K-hot constraint or was not validated (the callers check both).
pub(crate) fn project(
    xs: &[f32],
    shape: &[usize],
    frac: &[i32],
    spec: &QuantSpec,
) -> (Vec<f32>, Vec<i8>) {
    let (outer, channels, inner) = spec.blocks(shape);
    let quantizers: Vec<KHotQuantizer> = frac
        .iter()
        .map(|&fb| {
            spec.khot_quantizer(fb)
                .expect("validated quantizer spec")
                .expect("a K-hot spec")
        })
        .collect();
    let mut out = vec![0f32; xs.len()];
    let mut clip = vec![0i8; xs.len()];
    if outer * channels == 1 {
        quantizers[0]
            .quantize(xs, &mut out, &mut clip, 0)
            .expect("equal lengths");
    } else {
        for b in 0..outer * channels {
            let r = b * inner..(b + 1) * inner;
            quantizers[b % channels]
                .quantize(&xs[r.clone()], &mut out[r.clone()], &mut clip[r], 1)
                .expect("equal lengths");
        }
    }
    (out, clip)
}
