//! 2-D convolution on NCHW `f32` slices, the layout the network keeps: per sample, the input
//! is unrolled into columns (`[channels·kh·kw, oh·ow]`, "im2col") and multiplied by the
//! weight matrix on the left, so the product lands directly in NCHW order and no layout
//! transpose is ever made. Samples run in parallel, one column buffer per task; a pointwise
//! convolution (1×1, stride 1, no padding) multiplies the input itself.
//!
//! Gradients: the input gradient multiplies by the transposed weights and folds the columns
//! back ("col2im"); the weight gradient is built transposed, columns times the transposed
//! output gradient (so both operands run along the GEMM's fast axis), each task summing its
//! own samples and the tasks added in task order, so the result depends on the shape and the
//! core count, never on scheduling; the bias gradient is a per-channel sum.

use std::mem::MaybeUninit;

use rayon::prelude::*;

use super::gemm::{matmul, MatRef, Threads};
use super::stats::lane_sum;
use super::ConvShape;

/// A convolution's full geometry: input `[n, c, h, w]`, `o` output channels, and the kernel.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ConvDims {
    /// Input `[batch, channels, height, width]`.
    pub input: [usize; 4],
    /// Output channels.
    pub out_channels: usize,
    /// Kernel, stride, dilation, padding, groups.
    pub shape: ConvShape,
}

impl ConvDims {
    /// Output `[height, width]`, or `None` when the dilated kernel does not fit the padded
    /// input or a stride/dilation is zero.
    pub fn output_hw(&self) -> Option<[usize; 2]> {
        let [_, _, h, w] = self.input;
        let s = &self.shape;
        let [top, bottom, left, right] = s.padding;
        let size = |len: usize, pad: usize, k: usize, stride: usize, dil: usize| {
            let span = dil.checked_mul(k.checked_sub(1)?)? + 1;
            let padded = len + pad;
            (stride > 0 && padded >= span).then(|| (padded - span) / stride + 1)
        };
        Some([
            size(h, top + bottom, s.kernel[0], s.stride[0], s.dilation[0])?,
            size(w, left + right, s.kernel[1], s.stride[1], s.dilation[1])?,
        ])
    }

    /// `[batch, out, oh, ow]`.
    pub fn output(&self) -> [usize; 4] {
        let [oh, ow] = self.out_hw();
        [self.input[0], self.out_channels, oh, ow]
    }

    fn out_hw(&self) -> [usize; 2] {
        self.output_hw()
            .unwrap_or_else(|| panic!("convolution geometry checked by the layer: {self:?}"))
    }

    /// Input channels per group.
    fn group_in(&self) -> usize {
        self.input[1] / self.shape.groups
    }

    /// Output channels per group.
    fn group_out(&self) -> usize {
        self.out_channels / self.shape.groups
    }

    /// Rows of the column matrix (and of a group's weight matrix): `c/groups · kh · kw`.
    fn patch(&self) -> usize {
        self.group_in() * self.shape.kernel[0] * self.shape.kernel[1]
    }

    /// A 1×1 kernel at stride 1 without padding: the input is its own column matrix.
    fn pointwise(&self) -> bool {
        let s = &self.shape;
        s.kernel == [1, 1] && s.stride == [1, 1] && s.padding == [0; 4]
    }

    /// Channels divide into the groups (before anything divides by them).
    fn check_groups(&self) {
        let [_, c, _, _] = self.input;
        let g = self.shape.groups;
        assert!(
            g > 0 && c.is_multiple_of(g) && self.out_channels.is_multiple_of(g),
            "convolution: {c} input and {} output channels in {g} groups",
            self.out_channels
        );
    }

    /// The groups, and a weight of `weight_len` elements for this geometry.
    fn check(&self, weight_len: usize) {
        self.check_groups();
        assert_eq!(
            weight_len,
            self.out_channels * self.patch(),
            "convolution: weight size for {self:?}"
        );
    }

    /// The per-plane geometry im2col and col2im walk, resolved once per call.
    fn unroll(&self) -> Unroll {
        let [_, _, h, w] = self.input;
        let [oh, ow] = self.out_hw();
        let s = &self.shape;
        Unroll {
            channels: self.group_in(),
            h,
            w,
            oh,
            ow,
            kernel: s.kernel,
            stride: s.stride,
            dilation: s.dilation,
            top: s.padding[0],
            left: s.padding[2],
            // Stride 1 and output rows as wide as the input's: each tap's valid rows are one
            // run of the plane, shifted by `j·dw − left` columns.
            shifted_runs: s.stride == [1, 1] && ow == w,
        }
    }
}

/// One group of one sample as im2col sees it: `channels` planes of `h × w` unrolled into rows
/// of `oh·ow` column entries, one row per channel and kernel tap.
struct Unroll {
    channels: usize,
    h: usize,
    w: usize,
    oh: usize,
    ow: usize,
    kernel: [usize; 2],
    stride: [usize; 2],
    dilation: [usize; 2],
    top: usize,
    left: usize,
    shifted_runs: bool,
}

impl Unroll {
    /// Calls `tap(plane, row, rows, columns, i, j)` for every channel and kernel tap `(i, j)`:
    /// `rows` and `columns` are the output positions whose input lies inside the plane.
    fn for_each_tap(
        &self,
        mut tap: impl FnMut(usize, usize, (usize, usize), (usize, usize), usize, usize),
    ) {
        let [kh, kw] = self.kernel;
        let [sh, sw] = self.stride;
        let [dh, dw] = self.dilation;
        for c in 0..self.channels {
            for i in 0..kh {
                let rows = valid_outputs(self.oh, self.h, sh, i * dh, self.top);
                for j in 0..kw {
                    let columns = valid_outputs(self.ow, self.w, sw, j * dw, self.left);
                    tap(c, (c * kh + i) * kw + j, rows, columns, i, j);
                }
            }
        }
    }

    /// For a tap whose valid rows form one run of the plane (see `shifted_runs`): where the
    /// run starts in the plane and its column shift; `None` otherwise or with no valid row.
    fn run(&self, (y_lo, y_hi): (usize, usize), i: usize, j: usize) -> Option<(usize, isize)> {
        (self.shifted_runs && y_hi > y_lo).then(|| {
            let start = (y_lo + i * self.dilation[0] - self.top) * self.w;
            (start, (j * self.dilation[1]) as isize - self.left as isize)
        })
    }
}

/// Splits `0..len` into at most `threads` consecutive chunks; returns the chunk length.
fn chunk_len(len: usize) -> usize {
    len.div_ceil(rayon::current_num_threads().clamp(1, len.max(1)))
        .max(1)
}

/// Whether the samples run in parallel (then each product runs on one thread), or one after
/// the other with each product spread over the pool (a batch smaller than the pool).
fn by_sample(batch: usize) -> Threads {
    if batch >= rayon::current_num_threads() {
        Threads::One
    } else {
        Threads::All
    }
}

/// The half-open range of output positions `o` whose input index `o·stride + offset − pad`
/// falls inside `0..len`.
fn valid_outputs(
    out: usize,
    len: usize,
    stride: usize,
    offset: usize,
    pad: usize,
) -> (usize, usize) {
    // o·stride + offset ≥ pad  ⇔  o ≥ ceil((pad − offset) / stride)
    let lo = pad.saturating_sub(offset).div_ceil(stride).min(out);
    // o·stride + offset − pad < len  ⇔  o < ceil((len + pad − offset) / stride)
    let hi = (len + pad)
        .checked_sub(offset)
        .map_or(0, |room| room.div_ceil(stride))
        .min(out);
    (lo, hi.max(lo))
}

/// The part of the run `start + shift .. start + shift + len` of `plane` that lies inside it,
/// as `(offset in the run, slice of the plane)`; the rest are columns off the edges.
fn clipped_run(
    plane_len: usize,
    start: usize,
    shift: isize,
    len: usize,
) -> (usize, std::ops::Range<usize>) {
    let from = start as isize + shift;
    let skip = (-from).max(0) as usize;
    let first = (from.max(0) as usize).min(plane_len);
    let last = ((from + len as isize).max(0) as usize).min(plane_len);
    (skip, first..last.max(first))
}

/// Zeroes the columns outside `lo..hi` of every row of a row-major matrix `width` wide (a
/// kernel tap's columns that fall off the input's edges: one or two per row, so one strided
/// pass per column beats a call per row).
fn zero_edges(rows: &mut [f32], width: usize, (lo, hi): (usize, usize)) {
    for column in (0..lo).chain(hi..width) {
        rows[column..]
            .iter_mut()
            .step_by(width)
            .for_each(|v| *v = 0.0);
    }
}

/// One group of one sample unrolled: `cols[(c·kh + i)·kw + j][oy·ow + ox] = x[c][oy·sh + i·dh −
/// top][ox·sw + j·dw − left]`, zero outside the input.
fn im2col(x: &[f32], d: &ConvDims, cols: &mut [f32]) {
    let u = d.unroll();
    let (h, w, ow, p) = (u.h, u.w, u.ow, u.oh * u.ow);
    let [sh, sw] = u.stride;
    let [dh, dw] = u.dilation;
    u.for_each_tap(|c, r, (y_lo, y_hi), (x_lo, x_hi), i, j| {
        let plane = &x[c * h * w..(c + 1) * h * w];
        let row = &mut cols[r * p..][..p];
        row[..y_lo * ow].fill(0.0);
        row[y_hi * ow..].fill(0.0);
        if let Some((start, shift)) = u.run((y_lo, y_hi), i, j) {
            // The valid rows are one shifted run of the plane: copy it whole, then clear the
            // columns that fell off the edges (a few per row).
            let run = &mut row[y_lo * ow..y_hi * ow];
            let (skip, src) = clipped_run(plane.len(), start, shift, run.len());
            run[skip..skip + src.len()].copy_from_slice(&plane[src]);
            zero_edges(run, ow, (x_lo, x_hi));
            return;
        }
        for oy in y_lo..y_hi {
            let src = &plane[(oy * sh + i * dh - u.top) * w..][..w];
            let dst = &mut row[oy * ow..][..ow];
            dst[..x_lo].fill(0.0);
            dst[x_hi..].fill(0.0);
            if x_hi > x_lo {
                let first = x_lo * sw + j * dw - u.left;
                if sw == 1 {
                    dst[x_lo..x_hi].copy_from_slice(&src[first..first + (x_hi - x_lo)]);
                } else {
                    let strided = src[first..].iter().step_by(sw);
                    for (v, s) in dst[x_lo..x_hi].iter_mut().zip(strided) {
                        *v = *s;
                    }
                }
            }
        }
    });
}

/// The adjoint of [`im2col`]: adds each column entry back onto the input position it came
/// from (`x` must start zeroed or hold what it should add to). `cols` is scratch: entries that
/// map outside the input are cleared on the way.
fn col2im(cols: &mut [f32], d: &ConvDims, x: &mut [f32]) {
    let u = d.unroll();
    let (h, w, ow, p) = (u.h, u.w, u.ow, u.oh * u.ow);
    let [sh, sw] = u.stride;
    let [dh, dw] = u.dilation;
    u.for_each_tap(|c, r, (y_lo, y_hi), (x_lo, x_hi), i, j| {
        if x_hi == x_lo {
            return;
        }
        let plane = &mut x[c * h * w..(c + 1) * h * w];
        let row = &mut cols[r * p..][..p];
        if let Some((start, shift)) = u.run((y_lo, y_hi), i, j) {
            // Clear the entries of columns off the edges (they belong to no input), then add
            // the valid rows back as one shifted run.
            let run = &mut row[y_lo * ow..y_hi * ow];
            zero_edges(run, ow, (x_lo, x_hi));
            let (skip, dst) = clipped_run(plane.len(), start, shift, run.len());
            for (t, v) in plane[dst].iter_mut().zip(&run[skip..]) {
                *t += v;
            }
            return;
        }
        for oy in y_lo..y_hi {
            let dst = &mut plane[(oy * sh + i * dh - u.top) * w..][..w];
            let src = &row[oy * ow + x_lo..oy * ow + x_hi];
            let first = x_lo * sw + j * dw - u.left;
            if sw == 1 {
                for (t, v) in dst[first..first + src.len()].iter_mut().zip(src) {
                    *t += v;
                }
            } else {
                for (t, v) in dst[first..].iter_mut().step_by(sw).zip(src) {
                    *t += v;
                }
            }
        }
    });
}

/// The output of a batch, `out_len` zeroed elements per input sample of `in_len`, each given
/// to `one_sample(column buffer, (output sample, input sample))`: samples in parallel with a
/// column buffer per task when `threads` is `One`, else one after the other. In parallel each
/// task clears its own sample just before using it (warm in its cache), where `vec![0; len]`
/// would clear the whole output on the calling thread while the other cores wait.
fn each_sample(
    out_len: usize,
    input: &[f32],
    in_len: usize,
    threads: Threads,
    one_sample: impl Fn(&mut Vec<f32>, (&mut [f32], &[f32])) + Sync + Send,
) -> Vec<f32> {
    let len = input.len() / in_len * out_len;
    if threads == Threads::All {
        let mut out = vec![0f32; len];
        let mut cols = Vec::new();
        out.chunks_mut(out_len)
            .zip(input.chunks(in_len))
            .for_each(|pair| one_sample(&mut cols, pair));
        return out;
    }
    let mut out = Vec::with_capacity(len);
    out.spare_capacity_mut()[..len]
        .par_chunks_mut(out_len)
        .zip(input.par_chunks(in_len))
        .for_each_init(Vec::new, |cols, (sample, x)| {
            sample.fill(MaybeUninit::new(0.0));
            // SAFETY: every element of `sample` was initialized on the line above, and
            // `MaybeUninit<f32>` has the layout of `f32`.
            let sample = unsafe {
                std::slice::from_raw_parts_mut(sample.as_mut_ptr().cast::<f32>(), sample.len())
            };
            one_sample(cols, (sample, x));
        });
    // SAFETY: the first `len` slots are exactly `len / out_len` chunks, and `input` has at
    // least as many (`len` counts its whole samples), so the zip above reached every output
    // chunk and zeroed it: all `len` slots are initialized.
    unsafe { out.set_len(len) };
    out
}

/// `y = conv(x, weight) + bias`: `x` NCHW, `weight` `[out, c/groups, kh, kw]`, `bias` `[out]`;
/// returns `[n, out, oh, ow]` row-major.
pub fn forward(x: &[f32], weight: &[f32], bias: Option<&[f32]>, d: &ConvDims) -> Vec<f32> {
    d.check(weight.len());
    let [n, c, h, w] = d.input;
    assert_eq!(x.len(), n * c * h * w, "convolution: input size for {d:?}");
    let [_, o, oh, ow] = d.output();
    let p = oh * ow;
    let (groups, go, gi, patch) = (d.shape.groups, d.group_out(), d.group_in(), d.patch());
    if n == 0 || p == 0 {
        return vec![0f32; n * o * p];
    }
    let threads = by_sample(n);
    let one_sample = |cols: &mut Vec<f32>, (y, x): (&mut [f32], &[f32])| {
        if let Some(b) = bias {
            // The bias is the accumulator's starting value: the product adds onto it.
            for (row, &b) in y.chunks_mut(p).zip(b) {
                row.fill(b);
            }
        }
        for g in 0..groups {
            let xg = &x[g * gi * h * w..(g + 1) * gi * h * w];
            let rhs = if d.pointwise() {
                MatRef::row_major(xg, patch, p)
            } else {
                cols.resize(patch * p, 0.0);
                im2col(xg, d, cols);
                MatRef::row_major(cols, patch, p)
            };
            let lhs = MatRef::row_major(&weight[g * go * patch..], go, patch);
            matmul(
                &mut y[g * go * p..(g + 1) * go * p],
                lhs,
                rhs,
                bias.is_some(),
                threads,
            );
        }
    };
    each_sample(o * p, x, c * h * w, threads, one_sample)
}

/// `∂L/∂x` from `∂L/∂y` (`[n, out, oh, ow]`): `[n, c, h, w]`.
pub fn input_grad(dy: &[f32], weight: &[f32], d: &ConvDims) -> Vec<f32> {
    d.check(weight.len());
    let [n, c, h, w] = d.input;
    let [_, o, oh, ow] = d.output();
    let p = oh * ow;
    assert_eq!(
        dy.len(),
        n * o * p,
        "convolution: output gradient size for {d:?}"
    );
    let (groups, go, gi, patch) = (d.shape.groups, d.group_out(), d.group_in(), d.patch());
    if n * c * h * w == 0 || p == 0 {
        return vec![0f32; n * c * h * w];
    }
    let threads = by_sample(n);
    let one_sample = |cols: &mut Vec<f32>, (dx, dy): (&mut [f32], &[f32])| {
        for g in 0..groups {
            // Wᵍᵀ: [patch, go], read through the transposed view of the row-major [go, patch].
            let lhs = MatRef::row_major(&weight[g * go * patch..], go, patch).t();
            let rhs = MatRef::row_major(&dy[g * go * p..], go, p);
            let dxg = &mut dx[g * gi * h * w..(g + 1) * gi * h * w];
            if d.pointwise() {
                matmul(dxg, lhs, rhs, false, threads);
            } else {
                cols.resize(patch * p, 0.0);
                matmul(cols, lhs, rhs, false, threads);
                col2im(cols, d, dxg);
            }
        }
    };
    each_sample(c * h * w, dy, o * p, threads, one_sample)
}

/// `∂L/∂weight` from `∂L/∂y`: `[out, c/groups, kh, kw]`.
pub fn weight_grad(dy: &[f32], x: &[f32], d: &ConvDims) -> Vec<f32> {
    let [n, c, h, w] = d.input;
    assert_eq!(x.len(), n * c * h * w, "convolution: input size for {d:?}");
    let [_, o, oh, ow] = d.output();
    let p = oh * ow;
    assert_eq!(
        dy.len(),
        n * o * p,
        "convolution: output gradient size for {d:?}"
    );
    d.check_groups();
    let (groups, go, gi, patch) = (d.shape.groups, d.group_out(), d.group_in(), d.patch());
    if n == 0 || p == 0 {
        return vec![0f32; o * patch];
    }
    let per_task = chunk_len(n);
    let tasks = n.div_ceil(per_task);
    // As many tasks as threads whenever the batch allows (`chunk_len`).
    let threads = by_sample(n);
    // Each task sums the gradients of its own samples; the partial sums are added in order.
    // Per group the task accumulates `∂Wᵀ = cols · ∂yᵀ` ([patch, go]): with the output
    // gradient transposed (a small copy) both operands run along the GEMM's fast axis, where
    // `∂y · colsᵀ` would make it repack the whole column matrix for every sample.
    let partials: Vec<Vec<f32>> = (0..tasks)
        .into_par_iter()
        .map(|task| {
            let mut dw_t = vec![0f32; o * patch];
            let mut cols = Vec::new();
            let mut dy_t = vec![0f32; p * go];
            let samples = task * per_task..((task + 1) * per_task).min(n);
            for (k, s) in samples.enumerate() {
                let x = &x[s * c * h * w..(s + 1) * c * h * w];
                let dy = &dy[s * o * p..(s + 1) * o * p];
                for g in 0..groups {
                    let xg = &x[g * gi * h * w..(g + 1) * gi * h * w];
                    let cols = if d.pointwise() {
                        MatRef::row_major(xg, patch, p)
                    } else {
                        cols.resize(patch * p, 0.0);
                        im2col(xg, d, &mut cols);
                        MatRef::row_major(&cols, patch, p)
                    };
                    transpose(&dy[g * go * p..(g + 1) * go * p], go, p, &mut dy_t);
                    let rhs = MatRef::row_major(&dy_t, p, go);
                    let dwg = &mut dw_t[g * go * patch..(g + 1) * go * patch];
                    matmul(dwg, cols, rhs, k > 0, threads);
                }
            }
            dw_t
        })
        .collect();
    let mut partials = partials.into_iter();
    let mut dw_t = partials.next().expect("at least one task");
    for pw in partials {
        dw_t.iter_mut().zip(pw).for_each(|(t, v)| *t += v);
    }
    let mut dw = vec![0f32; o * patch];
    for (dst, src) in dw.chunks_mut(go * patch).zip(dw_t.chunks(go * patch)) {
        transpose(src, patch, go, dst);
    }
    dw
}

/// `∂L/∂bias` from `∂L/∂y` (`[n, out, oh, ow]`): each output channel's sum, in f64 lanes.
pub fn bias_grad(dy: &[f32], [n, o, p]: [usize; 3]) -> Vec<f32> {
    assert_eq!(dy.len(), n * o * p, "convolution: output gradient size");
    (0..o)
        .into_par_iter()
        .map(|ch| {
            let planes = (0..n).map(|s| &dy[(s * o + ch) * p..][..p]);
            planes.map(|plane| lane_sum(plane, f64::from)).sum::<f64>() as f32
        })
        .collect()
}

/// `dst[j·rows + i] = src[i·cols + j]`: a row-major `rows × cols` matrix transposed.
fn transpose(src: &[f32], rows: usize, cols: usize, dst: &mut [f32]) {
    const TILE: usize = 16;
    for i0 in (0..rows).step_by(TILE) {
        for j0 in (0..cols).step_by(TILE) {
            for i in i0..(i0 + TILE).min(rows) {
                for j in j0..(j0 + TILE).min(cols) {
                    dst[j * rows + i] = src[i * cols + j];
                }
            }
        }
    }
}
