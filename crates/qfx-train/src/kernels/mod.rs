//! Convolution, max pooling, BatchNorm statistics and ReLU for training.
//!
//! On burn's Flex CPU backend these run qfx's own kernels (`conv`, `pool`, `stats`,
//! `elementwise`: NCHW throughout, im2col + GEMM for convolutions; samples, planes or channels
//! in parallel; hand-written gradients in `ops`), because burn's generic ones spend most of an
//! epoch on layout copies, a 3-D pooling path, transposes and single-threaded elementwise
//! passes (`bench/train_speed.sh` times both).
//! Elsewhere (Vulkan, CUDA), or when the environment sets `QFX_KERNELS=burn`, burn's own
//! operations run: they are also the reference the tests compare against.

mod conv;
mod elementwise;
mod flex;
mod gemm;
mod ops;
mod pool;
mod stats;

use std::sync::atomic::{AtomicBool, Ordering};

use burn::tensor::module::{conv2d as burn_conv2d, max_pool2d as burn_max_pool2d};
use burn::tensor::ops::{ConvOptions, MaxPoolOptions, PadMode};
use burn::tensor::Tensor;

pub(crate) use flex::values;
pub use ops::SpatialOps;

/// Planes (of `plane_len` elements) per parallel task for the plane-wise kernels (pooling,
/// BatchNorm): enough that a task has some thousands of elements to work on.
fn planes_per_task(plane_len: usize) -> usize {
    (1 << 14) / plane_len.max(1) + 1
}

/// A convolution's kernel, stride, dilation, zero padding and channel groups (a 1-D convolution
/// is a 2-D one of kernel height 1 over maps of height 1).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ConvShape {
    /// `[height, width]`.
    pub kernel: [usize; 2],
    /// `[vertical, horizontal]`.
    pub stride: [usize; 2],
    /// `[vertical, horizontal]`.
    pub dilation: [usize; 2],
    /// `[top, bottom, left, right]`.
    pub padding: [usize; 4],
    /// Channel groups.
    pub groups: usize,
}

impl ConvShape {
    /// A square `kernel` with equal stride and padding on every side, no dilation or groups.
    pub fn square(kernel: usize, stride: usize, padding: usize) -> ConvShape {
        ConvShape {
            kernel: [kernel; 2],
            stride: [stride; 2],
            dilation: [1, 1],
            padding: [padding; 4],
            groups: 1,
        }
    }
}

/// Which implementation of convolution and max pooling runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kernels {
    /// qfx's kernels on Flex, burn's elsewhere.
    Own,
    /// burn's kernels everywhere.
    Burn,
}

static USE_BURN: AtomicBool = AtomicBool::new(false);

/// Chooses the kernels for the whole process (the default is [`Kernels::Own`]).
pub fn set_kernels(kernels: Kernels) {
    USE_BURN.store(kernels == Kernels::Burn, Ordering::Relaxed);
}

/// The kernels the environment asks for: `QFX_KERNELS` unset, `own` or `burn`.
pub fn kernels_from_env() -> Result<Kernels, String> {
    match std::env::var("QFX_KERNELS") {
        Err(std::env::VarError::NotPresent) => Ok(Kernels::Own),
        Ok(v) if v == "own" => Ok(Kernels::Own),
        Ok(v) if v == "burn" => Ok(Kernels::Burn),
        Ok(v) => Err(format!(
            "QFX_KERNELS={v:?}: expected \"own\" (qfx's CPU kernels, the default) or \"burn\""
        )),
        Err(e) => Err(format!("QFX_KERNELS: {e}")),
    }
}

fn own_kernels_for<const D: usize>(x: &Tensor<D>) -> bool {
    !USE_BURN.load(Ordering::Relaxed) && crate::quant::is_flex(&x.device())
}

/// `conv(x, weight) + bias` (NCHW; weight `[out, c/groups, kh, kw]`), any padding on each side.
pub fn conv2d(
    x: Tensor<4>,
    weight: Tensor<4>,
    bias: Option<Tensor<1>>,
    shape: ConvShape,
) -> Tensor<4> {
    conv2d_with(x, weight, bias, shape, Kernels::Own)
}

/// [`conv2d`] with the implementation chosen by the caller (`Own` still defers to burn off Flex
/// or under `QFX_KERNELS=burn`).
pub fn conv2d_with(
    x: Tensor<4>,
    weight: Tensor<4>,
    bias: Option<Tensor<1>>,
    shape: ConvShape,
    kernels: Kernels,
) -> Tensor<4> {
    if kernels == Kernels::Own && own_kernels_for(&x) {
        type D = burn::backend::Dispatch;
        let (x, weight) = (x.into_dispatch(), weight.into_dispatch());
        return Tensor::from_dispatch(match bias {
            Some(b) => <D as SpatialOps>::qfx_conv2d_bias(x, weight, b.into_dispatch(), shape),
            None => <D as SpatialOps>::qfx_conv2d(x, weight, shape),
        });
    }
    let [top, bottom, left, right] = shape.padding;
    // burn pads symmetrically, so uneven padding ("same" with an even kernel) pads the input
    // first (zero padding is exact in fixed point).
    let (x, padding) = if top == bottom && left == right {
        (x, [top, left])
    } else {
        let zeros = PadMode::Constant(0.0);
        (x.pad([(top, bottom), (left, right)], zeros), [0, 0])
    };
    let options = ConvOptions::new(shape.stride, padding, shape.dilation, shape.groups);
    burn_conv2d(x, weight, bias, options)
}

/// `max(x, 0)` elementwise (NaN stays NaN), differentiable; any shape.
pub fn relu<const D: usize>(x: Tensor<D>) -> Tensor<D> {
    relu_with(x, Kernels::Own)
}

/// [`relu`] with the implementation chosen by the caller.
pub fn relu_with<const D: usize>(x: Tensor<D>, kernels: Kernels) -> Tensor<D> {
    if kernels == Kernels::Own && own_kernels_for(&x) {
        return Tensor::from_dispatch(<burn::backend::Dispatch as SpatialOps>::qfx_relu(
            x.into_dispatch(),
        ));
    }
    burn::tensor::activation::relu(x)
}

/// Max pooling without padding: windows of `kernel` every `stride`.
pub fn max_pool2d(x: Tensor<4>, kernel: [usize; 2], stride: [usize; 2]) -> Tensor<4> {
    max_pool2d_with(x, kernel, stride, Kernels::Own)
}

/// [`max_pool2d`] with the implementation chosen by the caller.
pub fn max_pool2d_with(
    x: Tensor<4>,
    kernel: [usize; 2],
    stride: [usize; 2],
    kernels: Kernels,
) -> Tensor<4> {
    if kernels == Kernels::Own && own_kernels_for(&x) {
        return Tensor::from_dispatch(<burn::backend::Dispatch as SpatialOps>::qfx_max_pool2d(
            x.into_dispatch(),
            kernel,
            stride,
        ));
    }
    burn_max_pool2d(x, MaxPoolOptions::new(kernel).with_stride(stride))
}

/// Per-channel batch mean and biased variance of an NCHW tensor (`[c]` each), differentiable:
/// BatchNorm's training statistics.
pub fn batch_stats(x: Tensor<4>) -> (Tensor<1>, Tensor<1>) {
    batch_stats_with(x, Kernels::Own)
}

/// [`batch_stats`] with the implementation chosen by the caller (`Burn`: composed from burn's
/// tensor operations through a channel-first transpose).
pub fn batch_stats_with(x: Tensor<4>, kernels: Kernels) -> (Tensor<1>, Tensor<1>) {
    let [n, c, h, w] = x.dims();
    if kernels == Kernels::Own && own_kernels_for(&x) {
        let stats: Tensor<1> = Tensor::from_dispatch(
            <burn::backend::Dispatch as SpatialOps>::qfx_batch_stats(x.into_dispatch()),
        );
        return (stats.clone().slice(0..c), stats.slice(c..2 * c));
    }
    let flat = x.swap_dims(0, 1).reshape([c, n * h * w]);
    let mean = flat.clone().mean_dim(1);
    let var = (flat - mean.clone()).powi_scalar(2).mean_dim(1);
    (mean.reshape([c]), var.reshape([c]))
}

/// `x·scale[c] + shift[c]` for an NCHW `x` (BatchNorm's folded affine map), differentiable in
/// all three.
pub fn channel_affine(x: Tensor<4>, scale: Tensor<1>, shift: Tensor<1>) -> Tensor<4> {
    channel_affine_with(x, scale, shift, Kernels::Own)
}

/// [`channel_affine`] with the implementation chosen by the caller.
pub fn channel_affine_with(
    x: Tensor<4>,
    scale: Tensor<1>,
    shift: Tensor<1>,
    kernels: Kernels,
) -> Tensor<4> {
    if kernels == Kernels::Own && own_kernels_for(&x) {
        return Tensor::from_dispatch(<burn::backend::Dispatch as SpatialOps>::qfx_channel_affine(
            x.into_dispatch(),
            scale.into_dispatch(),
            shift.into_dispatch(),
        ));
    }
    let c = scale.dims()[0];
    x * scale.reshape([1, c, 1, 1]) + shift.reshape([1, c, 1, 1])
}

/// Asks the C allocator (glibc) to keep freed tensor buffers for reuse instead of handing each
/// one back to the kernel: training allocates and frees buffers of the same few sizes at every
/// step, and glibc's defaults return those above a few MiB with `munmap`, so every step paid
/// for fresh zeroed pages again (in an A/B run while this was written, the small-CNN float
/// epoch of `bench/train_speed.sh` took 1.97 s with this and 2.28–2.40 s without). Buffers up to 32 MiB then come from the heap, and up to 1 GiB of freed
/// memory stays with the process. Call once, early in `main`; a no-op off glibc.
pub fn keep_freed_buffers() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: `mallopt` only changes allocator parameters and is safe to call at any time;
    // it takes plain integers, and a refused value (returns 0) leaves glibc's default in place.
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, 32 << 20);
        libc::mallopt(libc::M_TRIM_THRESHOLD, 1 << 30);
    }
}
