//! 2-D max pooling on NCHW `f32` slices without padding, planes in parallel. The forward pass
//! keeps, per output, the index of the chosen element inside its plane; the backward pass
//! routes each output gradient there. Ties go to the first element of the window in row-major
//! order and NaN always wins, as in burn's (and PyTorch's) kernels, so the gradient lands
//! where theirs does.

use rayon::prelude::*;

use super::planes_per_task;

/// Input `[planes, h, w]` (planes = batch · channels), window and stride `[vertical, horizontal]`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PoolDims {
    /// Batch · channels.
    pub planes: usize,
    /// Input `[height, width]`.
    pub hw: [usize; 2],
    /// Window `[height, width]`.
    pub kernel: [usize; 2],
    /// Stride `[vertical, horizontal]`.
    pub stride: [usize; 2],
}

impl PoolDims {
    /// Output `[height, width]`, or `None` when the window is empty, larger than the input,
    /// or a stride is zero.
    pub fn output_hw(&self) -> Option<[usize; 2]> {
        let size = |len: usize, k: usize, s: usize| {
            (k > 0 && s > 0 && len >= k).then(|| (len - k) / s + 1)
        };
        Some([
            size(self.hw[0], self.kernel[0], self.stride[0])?,
            size(self.hw[1], self.kernel[1], self.stride[1])?,
        ])
    }

    fn out_hw(&self) -> [usize; 2] {
        self.output_hw()
            .unwrap_or_else(|| panic!("pooling geometry checked by the layer: {self:?}"))
    }
}

/// The window maximum and its index in the plane.
#[inline]
fn window_max(plane: &[f32], w: usize, y0: usize, x0: usize, kernel: [usize; 2]) -> (f32, u32) {
    let mut best = plane[y0 * w + x0];
    let mut at = y0 * w + x0;
    for i in 0..kernel[0] {
        let row = (y0 + i) * w;
        for j in 0..kernel[1] {
            let v = plane[row + x0 + j];
            if v > best || (v.is_nan() && !(i == 0 && j == 0)) {
                best = v;
                at = row + x0 + j;
            }
        }
    }
    (best, at as u32)
}

/// The common 2×2 window at stride 2, two input rows at a time, without branches (on trained
/// activations the comparisons are unpredictable): same choice as [`window_max`].
fn pairs_of_rows(x: &[f32], w: usize, [oh, ow]: [usize; 2], y: &mut [f32], idx: &mut [u32]) {
    #[inline(always)]
    fn pick(best: (f32, u32), v: f32, at: u32) -> (f32, u32) {
        let take = v > best.0 || v.is_nan();
        (
            if take { v } else { best.0 },
            if take { at } else { best.1 },
        )
    }
    for oy in 0..oh {
        let (top, bottom) = (&x[2 * oy * w..][..2 * ow], &x[(2 * oy + 1) * w..][..2 * ow]);
        let y = &mut y[oy * ow..][..ow];
        let window = |ox: usize| {
            let best = (top[2 * ox], 0);
            let best = pick(best, top[2 * ox + 1], 1);
            let best = pick(best, bottom[2 * ox], 2);
            pick(best, bottom[2 * ox + 1], 3)
        };
        if idx.is_empty() {
            for (ox, y) in y.iter_mut().enumerate() {
                *y = window(ox).0;
            }
        } else {
            let idx = &mut idx[oy * ow..][..ow];
            for (ox, (y, idx)) in y.iter_mut().zip(idx).enumerate() {
                let (v, at) = window(ox);
                *y = v;
                *idx = ((2 * oy + at as usize / 2) * w + 2 * ox + at as usize % 2) as u32;
            }
        }
    }
}

/// `[planes, oh, ow]` maxima and, with `with_indices`, where each came from (else empty).
pub fn forward(x: &[f32], d: &PoolDims, with_indices: bool) -> (Vec<f32>, Vec<u32>) {
    let [h, w] = d.hw;
    let [oh, ow] = d.out_hw();
    let (plane, out_plane) = (h * w, oh * ow);
    assert_eq!(
        x.len(),
        d.planes * plane,
        "max pooling: input size for {d:?}"
    );
    assert!(
        plane <= u32::MAX as usize,
        "max pooling: plane of {plane} elements"
    );
    let mut y = vec![0f32; d.planes * out_plane];
    let mut idx = vec![0u32; if with_indices { y.len() } else { 0 }];
    if y.is_empty() {
        return (y, idx);
    }
    let [sh, sw] = d.stride;
    let one_plane = |(x, y, idx): (&[f32], &mut [f32], &mut [u32])| {
        if d.kernel == [2, 2] && d.stride == [2, 2] {
            return pairs_of_rows(x, w, [oh, ow], y, idx);
        }
        for oy in 0..oh {
            for ox in 0..ow {
                let (v, at) = window_max(x, w, oy * sh, ox * sw, d.kernel);
                y[oy * ow + ox] = v;
                if with_indices {
                    idx[oy * ow + ox] = at;
                }
            }
        }
    };
    let per = planes_per_task(plane);
    if with_indices {
        x.par_chunks(plane)
            .zip(y.par_chunks_mut(out_plane))
            .zip(idx.par_chunks_mut(out_plane))
            .with_min_len(per)
            .for_each(|((x, y), idx)| one_plane((x, y, idx)));
    } else {
        x.par_chunks(plane)
            .zip(y.par_chunks_mut(out_plane))
            .with_min_len(per)
            .for_each(|(x, y)| one_plane((x, y, &mut [])));
    }
    (y, idx)
}

/// `∂L/∂x` (`[planes, h, w]`) from `∂L/∂y` and the forward pass's indices; overlapping windows
/// add their gradients.
pub fn backward(dy: &[f32], indices: &[u32], d: &PoolDims) -> Vec<f32> {
    let [h, w] = d.hw;
    let [oh, ow] = d.out_hw();
    let (plane, out_plane) = (h * w, oh * ow);
    assert_eq!(
        dy.len(),
        d.planes * out_plane,
        "max pooling: gradient size for {d:?}"
    );
    assert_eq!(indices.len(), dy.len(), "max pooling: indices for {d:?}");
    let mut dx = vec![0f32; d.planes * plane];
    if dx.is_empty() || out_plane == 0 {
        return dx;
    }
    dx.par_chunks_mut(plane)
        .zip(dy.par_chunks(out_plane))
        .zip(indices.par_chunks(out_plane))
        .with_min_len(planes_per_task(plane))
        .for_each(|((dx, dy), idx)| {
            for (&g, &at) in dy.iter().zip(idx) {
                dx[at as usize] += g;
            }
        });
    dx
}
