//! Convolution, max pooling, BatchNorm's statistics and affine map, and ReLU as a burn backend
//! extension (the quantizer's mechanism, see `quant/ops.rs`): own kernels for Flex, and the
//! autodiff wrapper that pairs each forward kernel with its hand-written gradients.

use burn::backend::{backend_extension, tensor::FloatTensor, AutodiffBackend, Backend};
use burn_autodiff::{
    checkpoint::{base::Checkpointer, strategy::CheckpointStrategy},
    grads::Gradients,
    ops::{Backward, NodeGuard, Ops, OpsKind},
    Autodiff,
};

use super::ConvShape;

/// The training kernels of a backend: 2-D convolution, max pooling and BatchNorm on NCHW
/// tensors, ReLU on any shape.
#[backend_extension(Flex, Autodiff)]
pub trait SpatialOps: Backend {
    /// `conv(x, weight)`; weight `[out, c/groups, kh, kw]`.
    fn qfx_conv2d(
        x: FloatTensor<Self>,
        weight: FloatTensor<Self>,
        shape: ConvShape,
    ) -> FloatTensor<Self>;

    /// `conv(x, weight) + bias` (the bias starts the accumulation: no separate pass). Two
    /// methods rather than an optional bias: the extension macro routes only plain tensors.
    fn qfx_conv2d_bias(
        x: FloatTensor<Self>,
        weight: FloatTensor<Self>,
        bias: FloatTensor<Self>,
        shape: ConvShape,
    ) -> FloatTensor<Self>;

    /// `∂L/∂x` of [`SpatialOps::qfx_conv2d`] for an input of shape `input`.
    fn qfx_conv2d_input_grad(
        grad: FloatTensor<Self>,
        weight: FloatTensor<Self>,
        input: [usize; 4],
        shape: ConvShape,
    ) -> FloatTensor<Self>;

    /// `∂L/∂weight` of [`SpatialOps::qfx_conv2d`].
    fn qfx_conv2d_weight_grad(
        grad: FloatTensor<Self>,
        x: FloatTensor<Self>,
        weight: FloatTensor<Self>,
        shape: ConvShape,
    ) -> FloatTensor<Self>;

    /// `∂L/∂bias` of [`SpatialOps::qfx_conv2d_bias`]: the output gradient summed per channel.
    fn qfx_conv2d_bias_grad(grad: FloatTensor<Self>) -> FloatTensor<Self>;

    /// `max(x, 0)` elementwise, any shape (NaN stays NaN).
    fn qfx_relu(x: FloatTensor<Self>) -> FloatTensor<Self>;

    /// `∂L/∂x` of [`SpatialOps::qfx_relu`] from its output: `grad` where `y > 0`, else 0.
    fn qfx_relu_grad(grad: FloatTensor<Self>, y: FloatTensor<Self>) -> FloatTensor<Self>;

    /// Max pooling without padding.
    fn qfx_max_pool2d(
        x: FloatTensor<Self>,
        kernel: [usize; 2],
        stride: [usize; 2],
    ) -> FloatTensor<Self>;

    /// Max pooling and, per output, the index of the chosen element in its plane (an integer
    /// tensor carried in the float slot, as the quantizer carries its clip marker).
    fn qfx_max_pool2d_with_indices(
        x: FloatTensor<Self>,
        kernel: [usize; 2],
        stride: [usize; 2],
    ) -> (FloatTensor<Self>, FloatTensor<Self>);

    /// `∂L/∂x` of max pooling from the forward pass's indices, for an input of shape `input`.
    fn qfx_max_pool2d_backward(
        grad: FloatTensor<Self>,
        indices: FloatTensor<Self>,
        input: [usize; 4],
        kernel: [usize; 2],
        stride: [usize; 2],
    ) -> FloatTensor<Self>;

    /// Per-channel mean and biased variance over batch, height and width: `[2·c]`, the means
    /// then the variances.
    fn qfx_batch_stats(x: FloatTensor<Self>) -> FloatTensor<Self>;

    /// `x·scale[c] + shift[c]` (scale and shift `[c]`).
    fn qfx_channel_affine(
        x: FloatTensor<Self>,
        scale: FloatTensor<Self>,
        shift: FloatTensor<Self>,
    ) -> FloatTensor<Self>;

    /// `(∂L/∂x, ∂L/∂scale, ∂L/∂shift)` of [`SpatialOps::qfx_channel_affine`].
    fn qfx_channel_affine_grad(
        grad: FloatTensor<Self>,
        x: FloatTensor<Self>,
        scale: FloatTensor<Self>,
    ) -> (FloatTensor<Self>, FloatTensor<Self>, FloatTensor<Self>);

    /// `∂L/∂x` of [`SpatialOps::qfx_batch_stats`] from the gradient of its result.
    fn qfx_batch_stats_grad(
        grad: FloatTensor<Self>,
        x: FloatTensor<Self>,
        stats: FloatTensor<Self>,
    ) -> FloatTensor<Self>;
}

/// The convolution's gradients; `N` is 3 with a bias, 2 without.
#[derive(Debug)]
struct Conv2dBackward;

impl<B: Backend + SpatialOps, const N: usize> Backward<B, N> for Conv2dBackward {
    /// `(x, weight, x's shape, geometry)`.
    type State = (FloatTensor<B>, FloatTensor<B>, [usize; 4], ConvShape);

    fn backward(self, ops: Ops<Self::State, N>, grads: &mut Gradients, _: &mut Checkpointer) {
        let mut parents = ops.parents.into_iter();
        let (node_x, node_w) = (parents.next().flatten(), parents.next().flatten());
        let node_b = parents.next().flatten();
        let grad = grads.consume::<B>(&ops.node);
        let (x, weight, input, shape) = ops.state;
        if let Some(node) = node_w {
            let gw = B::qfx_conv2d_weight_grad(grad.clone(), x, weight.clone(), shape);
            grads.register::<B>(node.id, gw);
        }
        if let Some(node) = node_b {
            grads.register::<B>(node.id, B::qfx_conv2d_bias_grad(grad.clone()));
        }
        if let Some(node) = node_x {
            grads.register::<B>(
                node.id,
                B::qfx_conv2d_input_grad(grad, weight, input, shape),
            );
        }
    }
}

/// ReLU's gradient, from its output (kept instead of the input: the same mask, and the
/// output is what the next layer holds anyway).
#[derive(Debug)]
struct ReluBackward;

impl<B: Backend + SpatialOps> Backward<B, 1> for ReluBackward {
    /// The output `y`.
    type State = FloatTensor<B>;

    fn backward(self, ops: Ops<Self::State, 1>, grads: &mut Gradients, _: &mut Checkpointer) {
        let [node] = ops.parents;
        let grad = grads.consume::<B>(&ops.node);
        if let Some(node) = node {
            grads.register::<B>(node.id, B::qfx_relu_grad(grad, ops.state));
        }
    }
}

#[derive(Debug)]
struct MaxPool2dBackward;

impl<B: Backend + SpatialOps> Backward<B, 1> for MaxPool2dBackward {
    /// `(indices, x's shape, window, stride)`.
    type State = (FloatTensor<B>, [usize; 4], [usize; 2], [usize; 2]);

    fn backward(self, ops: Ops<Self::State, 1>, grads: &mut Gradients, _: &mut Checkpointer) {
        let [node_x] = ops.parents;
        let grad = grads.consume::<B>(&ops.node);
        let (indices, input, kernel, stride) = ops.state;
        if let Some(node) = node_x {
            grads.register::<B>(
                node.id,
                B::qfx_max_pool2d_backward(grad, indices, input, kernel, stride),
            );
        }
    }
}

#[derive(Debug)]
struct BatchStatsBackward;

impl<B: Backend + SpatialOps> Backward<B, 1> for BatchStatsBackward {
    /// `(x, the statistics)`.
    type State = (FloatTensor<B>, FloatTensor<B>);

    fn backward(self, ops: Ops<Self::State, 1>, grads: &mut Gradients, _: &mut Checkpointer) {
        let [node_x] = ops.parents;
        let grad = grads.consume::<B>(&ops.node);
        let (x, stats) = ops.state;
        if let Some(node) = node_x {
            grads.register::<B>(node.id, B::qfx_batch_stats_grad(grad, x, stats));
        }
    }
}

#[derive(Debug)]
struct ChannelAffineBackward;

impl<B: Backend + SpatialOps> Backward<B, 3> for ChannelAffineBackward {
    /// `(x, scale)`.
    type State = (FloatTensor<B>, FloatTensor<B>);

    fn backward(self, ops: Ops<Self::State, 3>, grads: &mut Gradients, _: &mut Checkpointer) {
        let [node_x, node_scale, node_shift] = ops.parents;
        let grad = grads.consume::<B>(&ops.node);
        let (x, scale) = ops.state;
        let (dx, dscale, dshift) = B::qfx_channel_affine_grad(grad, x, scale);
        for (node, g) in [(node_x, dx), (node_scale, dscale), (node_shift, dshift)] {
            if let Some(node) = node {
                grads.register::<B>(node.id, g);
            }
        }
    }
}

/// `[n, c, h, w]` of a 4-D tensor.
pub(super) fn dims4<B: Backend>(t: &FloatTensor<B>) -> [usize; 4] {
    use burn::backend::TensorMetadata;
    let shape = t.shape();
    let d = shape.as_slice();
    assert_eq!(d.len(), 4, "spatial kernels take NCHW tensors, not {d:?}");
    [d[0], d[1], d[2], d[3]]
}

/// A convolution's autodiff node: parents `x`, `weight` and, with `N = 3`, the bias; `run`
/// computes the output on the inner backend, and the backward pass keeps `x` and `weight`.
fn conv_node<B: Backend + SpatialOps, C: CheckpointStrategy, const N: usize>(
    guards: [NodeGuard; N],
    x: FloatTensor<B>,
    weight: FloatTensor<B>,
    shape: ConvShape,
    run: impl FnOnce(FloatTensor<B>, FloatTensor<B>) -> FloatTensor<B>,
) -> FloatTensor<Autodiff<B, C>> {
    let input = dims4::<B>(&x);
    match Conv2dBackward
        .prepare::<C>(guards)
        .compute_bound()
        .stateful()
    {
        OpsKind::Tracked(prep) => {
            let y = run(x.clone(), weight.clone());
            prep.finish((x, weight, input, shape), y)
        }
        OpsKind::UnTracked(prep) => prep.finish(run(x, weight)),
    }
}

impl<B: Backend + SpatialOps, C: CheckpointStrategy> SpatialOps for Autodiff<B, C> {
    fn qfx_conv2d(
        x: FloatTensor<Self>,
        weight: FloatTensor<Self>,
        shape: ConvShape,
    ) -> FloatTensor<Self> {
        let guards = [x.node(), weight.node()];
        let (x, weight) = (x.into_primitive(), weight.into_primitive());
        conv_node::<B, C, 2>(guards, x, weight, shape, |x, w| B::qfx_conv2d(x, w, shape))
    }

    fn qfx_conv2d_bias(
        x: FloatTensor<Self>,
        weight: FloatTensor<Self>,
        bias: FloatTensor<Self>,
        shape: ConvShape,
    ) -> FloatTensor<Self> {
        let guards = [x.node(), weight.node(), bias.node()];
        let (x, weight, bias) = (
            x.into_primitive(),
            weight.into_primitive(),
            bias.into_primitive(),
        );
        conv_node::<B, C, 3>(guards, x, weight, shape, |x, w| {
            B::qfx_conv2d_bias(x, w, bias, shape)
        })
    }

    fn qfx_conv2d_input_grad(
        grad: FloatTensor<Self>,
        weight: FloatTensor<Self>,
        input: [usize; 4],
        shape: ConvShape,
    ) -> FloatTensor<Self> {
        Self::from_inner(B::qfx_conv2d_input_grad(
            grad.into_primitive(),
            weight.into_primitive(),
            input,
            shape,
        ))
    }

    fn qfx_conv2d_weight_grad(
        grad: FloatTensor<Self>,
        x: FloatTensor<Self>,
        weight: FloatTensor<Self>,
        shape: ConvShape,
    ) -> FloatTensor<Self> {
        Self::from_inner(B::qfx_conv2d_weight_grad(
            grad.into_primitive(),
            x.into_primitive(),
            weight.into_primitive(),
            shape,
        ))
    }

    fn qfx_conv2d_bias_grad(grad: FloatTensor<Self>) -> FloatTensor<Self> {
        Self::from_inner(B::qfx_conv2d_bias_grad(grad.into_primitive()))
    }

    fn qfx_relu(x: FloatTensor<Self>) -> FloatTensor<Self> {
        let guards = [x.node()];
        let x = x.into_primitive();
        match ReluBackward.prepare::<C>(guards).compute_bound().stateful() {
            OpsKind::Tracked(prep) => {
                let y = B::qfx_relu(x);
                prep.finish(y.clone(), y)
            }
            OpsKind::UnTracked(prep) => prep.finish(B::qfx_relu(x)),
        }
    }

    fn qfx_relu_grad(grad: FloatTensor<Self>, y: FloatTensor<Self>) -> FloatTensor<Self> {
        Self::from_inner(B::qfx_relu_grad(grad.into_primitive(), y.into_primitive()))
    }

    fn qfx_max_pool2d(
        x: FloatTensor<Self>,
        kernel: [usize; 2],
        stride: [usize; 2],
    ) -> FloatTensor<Self> {
        let guard = x.node();
        let x = x.into_primitive();
        let input = dims4::<B>(&x);
        match MaxPool2dBackward
            .prepare::<C>([guard])
            .compute_bound()
            .stateful()
        {
            OpsKind::Tracked(prep) => {
                let (y, indices) = B::qfx_max_pool2d_with_indices(x, kernel, stride);
                prep.finish((indices, input, kernel, stride), y)
            }
            OpsKind::UnTracked(prep) => prep.finish(B::qfx_max_pool2d(x, kernel, stride)),
        }
    }

    fn qfx_max_pool2d_with_indices(
        x: FloatTensor<Self>,
        kernel: [usize; 2],
        stride: [usize; 2],
    ) -> (FloatTensor<Self>, FloatTensor<Self>) {
        let (y, indices) = B::qfx_max_pool2d_with_indices(x.into_primitive(), kernel, stride);
        (Self::from_inner(y), Self::from_inner(indices))
    }

    fn qfx_max_pool2d_backward(
        grad: FloatTensor<Self>,
        indices: FloatTensor<Self>,
        input: [usize; 4],
        kernel: [usize; 2],
        stride: [usize; 2],
    ) -> FloatTensor<Self> {
        Self::from_inner(B::qfx_max_pool2d_backward(
            grad.into_primitive(),
            indices.into_primitive(),
            input,
            kernel,
            stride,
        ))
    }

    fn qfx_batch_stats(x: FloatTensor<Self>) -> FloatTensor<Self> {
        let guard = x.node();
        let x = x.into_primitive();
        match BatchStatsBackward
            .prepare::<C>([guard])
            .compute_bound()
            .stateful()
        {
            OpsKind::Tracked(prep) => {
                let stats = B::qfx_batch_stats(x.clone());
                prep.finish((x, stats.clone()), stats)
            }
            OpsKind::UnTracked(prep) => prep.finish(B::qfx_batch_stats(x)),
        }
    }

    fn qfx_batch_stats_grad(
        grad: FloatTensor<Self>,
        x: FloatTensor<Self>,
        stats: FloatTensor<Self>,
    ) -> FloatTensor<Self> {
        Self::from_inner(B::qfx_batch_stats_grad(
            grad.into_primitive(),
            x.into_primitive(),
            stats.into_primitive(),
        ))
    }

    fn qfx_channel_affine(
        x: FloatTensor<Self>,
        scale: FloatTensor<Self>,
        shift: FloatTensor<Self>,
    ) -> FloatTensor<Self> {
        let guards = [x.node(), scale.node(), shift.node()];
        let (x, scale, shift) = (
            x.into_primitive(),
            scale.into_primitive(),
            shift.into_primitive(),
        );
        match ChannelAffineBackward
            .prepare::<C>(guards)
            .compute_bound()
            .stateful()
        {
            OpsKind::Tracked(prep) => {
                let y = B::qfx_channel_affine(x.clone(), scale.clone(), shift);
                prep.finish((x, scale), y)
            }
            OpsKind::UnTracked(prep) => prep.finish(B::qfx_channel_affine(x, scale, shift)),
        }
    }

    fn qfx_channel_affine_grad(
        grad: FloatTensor<Self>,
        x: FloatTensor<Self>,
        scale: FloatTensor<Self>,
    ) -> (FloatTensor<Self>, FloatTensor<Self>, FloatTensor<Self>) {
        let (dx, ds, dt) = B::qfx_channel_affine_grad(
            grad.into_primitive(),
            x.into_primitive(),
            scale.into_primitive(),
        );
        (
            Self::from_inner(dx),
            Self::from_inner(ds),
            Self::from_inner(dt),
        )
    }
}
