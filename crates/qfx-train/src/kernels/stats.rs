//! Per-channel batch statistics of an NCHW tensor (BatchNorm in training): mean and biased
//! variance over batch, height and width in one kernel, without the channel-first transpose a
//! composed version needs, and their gradient in one pass. Sums run in f64, so the result does
//! not depend on the batch size's rounding; channels in parallel.

use rayon::prelude::*;

use super::elementwise::map_planes;

/// `[2 · c]`: the `c` means, then the `c` variances (`mean((x − mean)²)`), of `x` `[n, c, hw]`.
pub fn forward(x: &[f32], [n, c, hw]: [usize; 3]) -> Vec<f32> {
    assert_eq!(x.len(), n * c * hw, "batch statistics: input size");
    let count = (n * hw).max(1) as f64;
    let per_channel: Vec<(f32, f32)> = (0..c)
        .into_par_iter()
        .map(|ch| {
            let planes = || (0..n).map(move |s| &x[(s * c + ch) * hw..][..hw]);
            let mean = planes().map(|p| lane_sum(p, |v| v as f64)).sum::<f64>() / count;
            let var = planes()
                .map(|p| lane_sum(p, |v| (v as f64 - mean).powi(2)))
                .sum::<f64>()
                / count;
            (mean as f32, var as f32)
        })
        .collect();
    let (means, vars): (Vec<f32>, Vec<f32>) = per_channel.into_iter().unzip();
    [means, vars].concat()
}

/// `∂L/∂x` from `∂L/∂mean` and `∂L/∂var` (`grad`, laid out as [`forward`]'s result):
/// `g_mean/M + g_var · 2(x − mean)/M` with `M = n·hw`.
pub fn backward(grad: &[f32], x: &[f32], stats: &[f32], [n, c, hw]: [usize; 3]) -> Vec<f32> {
    assert_eq!(x.len(), n * c * hw, "batch statistics: input size");
    assert!(
        grad.len() == 2 * c && stats.len() == 2 * c,
        "batch statistics: {c} channels"
    );
    let count = (n * hw).max(1) as f32;
    map_planes(x, x, hw, |plane| {
        let ch = plane % c;
        let (g_mean, g_var, mean) = (grad[ch], grad[c + ch], stats[ch]);
        let (a, b) = (g_mean / count, 2.0 * g_var / count);
        move |v, _| a + b * (v - mean)
    })
}

/// `y = x·scale[c] + shift[c]` over `x` `[n, c, hw]` (BatchNorm's folded affine map).
pub fn affine(x: &[f32], scale: &[f32], shift: &[f32], [n, c, hw]: [usize; 3]) -> Vec<f32> {
    assert_eq!(x.len(), n * c * hw, "channel affine: input size");
    assert!(
        scale.len() == c && shift.len() == c,
        "channel affine: {c} channels"
    );
    map_planes(x, x, hw, |plane| {
        let (s, t) = (scale[plane % c], shift[plane % c]);
        move |v, _| v * s + t
    })
}

/// `(∂L/∂x, ∂L/∂scale, ∂L/∂shift)` of [`affine`] from `∂L/∂y`: `g·scale[c]`, `Σ g·x` and
/// `Σ g` per channel (sums in f64, channels in parallel).
pub fn affine_grad(
    grad: &[f32],
    x: &[f32],
    scale: &[f32],
    [n, c, hw]: [usize; 3],
) -> (Vec<f32>, Vec<f32>, Vec<f32>) {
    assert!(
        x.len() == n * c * hw && grad.len() == x.len(),
        "channel affine: sizes"
    );
    let dx = map_planes(grad, grad, hw, |plane| {
        let s = scale[plane % c];
        move |g, _| g * s
    });
    let (dscale, dshift): (Vec<f32>, Vec<f32>) = (0..c)
        .into_par_iter()
        .map(|ch| {
            let (mut gx, mut g) = (0f64, 0f64);
            for s in 0..n {
                let at = (s * c + ch) * hw;
                let (gp, xp) = (&grad[at..at + hw], &x[at..at + hw]);
                gx += lane_dot(gp, xp);
                g += lane_sum(gp, |v| v as f64);
            }
            (gx as f32, g as f32)
        })
        .unzip();
    (dx, dscale, dshift)
}

/// `Σ f(xᵢ)` in f64 with eight independent accumulators, so the loop vectorizes (one running
/// sum cannot be reordered by the compiler).
pub(super) fn lane_sum(xs: &[f32], f: impl Fn(f32) -> f64) -> f64 {
    let mut lanes = [0f64; 8];
    let chunks = xs.chunks_exact(8);
    let rest: f64 = chunks.remainder().iter().map(|&v| f(v)).sum();
    for chunk in chunks {
        for (lane, &v) in lanes.iter_mut().zip(chunk) {
            *lane += f(v);
        }
    }
    lanes.iter().sum::<f64>() + rest
}

/// `Σ aᵢ·bᵢ` in f64, eight accumulators (see [`lane_sum`]).
fn lane_dot(a: &[f32], b: &[f32]) -> f64 {
    let mut lanes = [0f64; 8];
    let (ca, cb) = (a.chunks_exact(8), b.chunks_exact(8));
    let rest: f64 = ca
        .remainder()
        .iter()
        .zip(cb.remainder())
        .map(|(&x, &y)| x as f64 * y as f64)
        .sum();
    for (x, y) in ca.zip(cb) {
        for ((lane, &x), &y) in lanes.iter_mut().zip(x).zip(y) {
            *lane += x as f64 * y as f64;
        }
    }
    lanes.iter().sum::<f64>() + rest
}
