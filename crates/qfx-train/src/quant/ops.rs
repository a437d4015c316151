//! The quantizer as a burn backend extension: one trait, a fused implementation per backend
//! (Flex today; a CubeCL kernel can be added for GPUs), and the autodiff wrapper that pairs the
//! forward kernel with its hand-written backward.
//!
//! Forward: `x̂ = cast(x; W, F = round(f), Q, O)` per tensor or per channel.
//! Backward (`ARCHITECTURE.md` §5), with `k` the clip side of each element:
//! - `∂x̂/∂x` = 1 in range; 0 where a saturating mode clipped; 1 for the wrap modes (see below);
//! - `∂x̂/∂F` = `ln2·(x − x̂)` in range; `−ln2·b` at a clip bound `b` (the saturated value;
//!   0 for `AP_SAT_ZERO`); `∂F/∂f` = 1 (straight-through rounding of the binary point).
//!
//! Wrap modes in training: the forward pass wraps exactly as the hardware will, so the loss
//! sees what deployment computes. A wrapped value carries no useful gradient, so the backward
//! pass treats it as if it had saturated: straight-through for `x`, and for `f` the gradient
//! of the bound it crossed, which pushes the binary point toward more integer bits.

use burn::backend::{backend_extension, tensor::FloatTensor, AutodiffBackend, Backend};
use burn_autodiff::{
    checkpoint::{base::Checkpointer, strategy::CheckpointStrategy},
    grads::Gradients,
    ops::{Backward, Ops, OpsKind},
    Autodiff,
};

use super::spec::QuantSpec;

/// Fixed-point quantization kernels of a backend.
#[backend_extension(Flex, Autodiff)]
pub trait FixedPointOps: Backend {
    /// `x̂` for `x` with binary points `f` (shape `[channels]`; `F = round(f)`).
    fn fixed_quantize(
        x: FloatTensor<Self>,
        f: FloatTensor<Self>,
        spec: QuantSpec,
    ) -> FloatTensor<Self>;

    /// `x̂` and the clip side of each element (−1, 0, +1), kept for the backward pass.
    fn fixed_quantize_clip(
        x: FloatTensor<Self>,
        f: FloatTensor<Self>,
        spec: QuantSpec,
    ) -> (FloatTensor<Self>, FloatTensor<Self>);

    /// `(∂L/∂x, ∂L/∂f)` from `∂L/∂x̂` and the forward pass's tensors.
    fn fixed_quantize_grad(
        grad: FloatTensor<Self>,
        x: FloatTensor<Self>,
        xhat: FloatTensor<Self>,
        clip: FloatTensor<Self>,
        f: FloatTensor<Self>,
        spec: QuantSpec,
    ) -> (FloatTensor<Self>, FloatTensor<Self>);

    /// `x̂` and the clip sides for a learned width: channel `c` is cast to
    /// `ap_fixed<W[c], W[c] − F[c]>` (`w` holds the widths as whole numbers; 0 prunes the
    /// channel), `spec.width` unused (`super::width`).
    fn fixed_quantize_width_clip(
        x: FloatTensor<Self>,
        f: FloatTensor<Self>,
        w: FloatTensor<Self>,
        spec: QuantSpec,
    ) -> (FloatTensor<Self>, FloatTensor<Self>);

    /// `(∂L/∂x, ∂L/∂f, ∂L/∂w)` of a learned width's cast.
    #[allow(clippy::too_many_arguments)]
    fn fixed_quantize_width_grad(
        grad: FloatTensor<Self>,
        x: FloatTensor<Self>,
        xhat: FloatTensor<Self>,
        clip: FloatTensor<Self>,
        f: FloatTensor<Self>,
        w: FloatTensor<Self>,
        spec: QuantSpec,
    ) -> (FloatTensor<Self>, FloatTensor<Self>, FloatTensor<Self>);
}

#[derive(Debug)]
struct QuantizeBackward;

impl<B: Backend + FixedPointOps> Backward<B, 2> for QuantizeBackward {
    /// `(x, x̂, clip, f, spec)`.
    type State = (
        FloatTensor<B>,
        FloatTensor<B>,
        FloatTensor<B>,
        FloatTensor<B>,
        QuantSpec,
    );

    fn backward(self, ops: Ops<Self::State, 2>, grads: &mut Gradients, _: &mut Checkpointer) {
        let [node_x, node_f] = ops.parents;
        let grad = grads.consume::<B>(&ops.node);
        let (x, xhat, clip, f, spec) = ops.state;
        let (grad_x, grad_f) = B::fixed_quantize_grad(grad, x, xhat, clip, f, spec);
        if let Some(node) = node_x {
            grads.register::<B>(node.id, grad_x);
        }
        if let Some(node) = node_f {
            grads.register::<B>(node.id, grad_f);
        }
    }
}

#[derive(Debug)]
struct QuantizeWidthBackward;

impl<B: Backend + FixedPointOps> Backward<B, 3> for QuantizeWidthBackward {
    /// `(x, x̂, clip, f, w, spec)`.
    type State = (
        FloatTensor<B>,
        FloatTensor<B>,
        FloatTensor<B>,
        FloatTensor<B>,
        FloatTensor<B>,
        QuantSpec,
    );

    fn backward(self, ops: Ops<Self::State, 3>, grads: &mut Gradients, _: &mut Checkpointer) {
        let [node_x, node_f, node_w] = ops.parents;
        let grad = grads.consume::<B>(&ops.node);
        let (x, xhat, clip, f, w, spec) = ops.state;
        let (grad_x, grad_f, grad_w) =
            B::fixed_quantize_width_grad(grad, x, xhat, clip, f, w, spec);
        for (node, g) in [(node_x, grad_x), (node_f, grad_f), (node_w, grad_w)] {
            if let Some(node) = node {
                grads.register::<B>(node.id, g);
            }
        }
    }
}

impl<B: Backend + FixedPointOps, C: CheckpointStrategy> FixedPointOps for Autodiff<B, C> {
    fn fixed_quantize_width_clip(
        x: FloatTensor<Self>,
        f: FloatTensor<Self>,
        w: FloatTensor<Self>,
        spec: QuantSpec,
    ) -> (FloatTensor<Self>, FloatTensor<Self>) {
        let guards = [x.node(), f.node(), w.node()];
        let (x, f, w) = (x.into_primitive(), f.into_primitive(), w.into_primitive());
        let (xhat, clip) = B::fixed_quantize_width_clip(x.clone(), f.clone(), w.clone(), spec);
        let clip_out = Self::from_inner(clip.clone());
        let xhat = match QuantizeWidthBackward
            .prepare::<C>(guards)
            .compute_bound()
            .stateful()
        {
            OpsKind::Tracked(prep) => prep.finish((x, xhat.clone(), clip, f, w, spec), xhat),
            OpsKind::UnTracked(prep) => prep.finish(xhat),
        };
        (xhat, clip_out)
    }

    fn fixed_quantize_width_grad(
        grad: FloatTensor<Self>,
        x: FloatTensor<Self>,
        xhat: FloatTensor<Self>,
        clip: FloatTensor<Self>,
        f: FloatTensor<Self>,
        w: FloatTensor<Self>,
        spec: QuantSpec,
    ) -> (FloatTensor<Self>, FloatTensor<Self>, FloatTensor<Self>) {
        let (gx, gf, gw) = B::fixed_quantize_width_grad(
            grad.into_primitive(),
            x.into_primitive(),
            xhat.into_primitive(),
            clip.into_primitive(),
            f.into_primitive(),
            w.into_primitive(),
            spec,
        );
        (
            Self::from_inner(gx),
            Self::from_inner(gf),
            Self::from_inner(gw),
        )
    }

    fn fixed_quantize(
        x: FloatTensor<Self>,
        f: FloatTensor<Self>,
        spec: QuantSpec,
    ) -> FloatTensor<Self> {
        let guards = [x.node(), f.node()];
        let (x, f) = (x.into_primitive(), f.into_primitive());
        match QuantizeBackward
            .prepare::<C>(guards)
            .compute_bound()
            .stateful()
        {
            OpsKind::Tracked(prep) => {
                let (xhat, clip) = B::fixed_quantize_clip(x.clone(), f.clone(), spec);
                prep.finish((x, xhat.clone(), clip, f, spec), xhat)
            }
            OpsKind::UnTracked(prep) => prep.finish(B::fixed_quantize(x, f, spec)),
        }
    }

    fn fixed_quantize_clip(
        x: FloatTensor<Self>,
        f: FloatTensor<Self>,
        spec: QuantSpec,
    ) -> (FloatTensor<Self>, FloatTensor<Self>) {
        let (xhat, clip) = B::fixed_quantize_clip(x.into_primitive(), f.into_primitive(), spec);
        (Self::from_inner(xhat), Self::from_inner(clip))
    }

    fn fixed_quantize_grad(
        grad: FloatTensor<Self>,
        x: FloatTensor<Self>,
        xhat: FloatTensor<Self>,
        clip: FloatTensor<Self>,
        f: FloatTensor<Self>,
        spec: QuantSpec,
    ) -> (FloatTensor<Self>, FloatTensor<Self>) {
        let (gx, gf) = B::fixed_quantize_grad(
            grad.into_primitive(),
            x.into_primitive(),
            xhat.into_primitive(),
            clip.into_primitive(),
            f.into_primitive(),
            spec,
        );
        (Self::from_inner(gx), Self::from_inner(gf))
    }
}
