//! Elementwise maps into a new buffer, in parallel chunks and written straight into it (no
//! zero-fill first): ReLU and its gradient, and the per-plane maps of BatchNorm (`stats`).
//! `vec![0; len]` clears a whole activation on the calling thread while the other cores wait,
//! and burn's own elementwise operations run on the calling thread too: with both, the calling
//! thread alone held about a quarter of a ResNet-20 step's profile samples (`perf record` on
//! `cargo bench --bench resnet_step`), with these kernels about a seventh.

use rayon::prelude::*;

use super::planes_per_task;

/// `[f(p)(aᵢ, bᵢ)]` where `p` is the plane (`plane_len` consecutive elements) element `i` lies
/// in: `per_plane(p)` is called once per plane and returns that plane's elementwise map
/// (its constants resolved once). Planes run in parallel, a few thousand elements per task.
/// A map of one tensor passes it as both `a` and `b`.
pub(super) fn map_planes<G>(
    a: &[f32],
    b: &[f32],
    plane_len: usize,
    per_plane: impl Fn(usize) -> G + Sync,
) -> Vec<f32>
where
    G: Fn(f32, f32) -> f32,
{
    assert_eq!(a.len(), b.len(), "elementwise: operand sizes");
    let len = a.len();
    if len == 0 {
        return Vec::new();
    }
    let mut out = Vec::with_capacity(len);
    out.spare_capacity_mut()[..len]
        .par_chunks_mut(plane_len)
        .zip(a.par_chunks(plane_len).zip(b.par_chunks(plane_len)))
        .enumerate()
        .with_min_len(planes_per_task(plane_len))
        .for_each(|(plane, (dst, (a, b)))| {
            let f = per_plane(plane);
            for ((d, &x), &y) in dst.iter_mut().zip(a).zip(b) {
                d.write(f(x, y));
            }
        });
    // SAFETY: the chunks of `out`'s first `len` slots and of `a` and `b` pair one to one with
    // equal lengths (all three are `len` long, cut at the same points), so every slot below
    // `len` was written exactly once above.
    unsafe { out.set_len(len) };
    out
}

/// The plane length [`relu`] cuts a tensor into (it has no planes of its own).
const CHUNK: usize = 1 << 12;

/// `max(x, 0)`; NaN stays NaN (a diverging model must not look healthy downstream).
pub fn relu(x: &[f32]) -> Vec<f32> {
    map_planes(x, x, CHUNK, |_| |v, _| if v < 0.0 { 0.0 } else { v })
}

/// ReLU's input gradient from its output `y`: `grad` where `y > 0`, else 0 (burn's rule, so
/// the gradient at exactly 0 is 0).
pub fn relu_grad(grad: &[f32], y: &[f32]) -> Vec<f32> {
    map_planes(grad, y, CHUNK, |_| |g, y| if y > 0.0 { g } else { 0.0 })
}
