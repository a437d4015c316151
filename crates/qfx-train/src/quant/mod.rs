//! The differentiable fixed-point quantizer.
//!
//! [`quantize`] casts a tensor onto the grid of `ap_fixed<W, W−F, Q, O, N>` with `F = round(f)`
//! learned per tensor or per channel. Two implementations with the same values and gradients:
//! the fused backend extension ([`FixedPointOps`]: one-pass kernels for Flex, a hand-written
//! backward) and a composed one from ordinary tensor operations that runs on any backend.

mod composed;
mod flex;
mod khot;
mod ops;
mod spec;
mod width;

use burn::backend::{Dispatch, DispatchDevice};
use burn::tensor::Tensor;

pub use composed::quantize_composed;
pub use ops::FixedPointOps;
pub use spec::{
    frac_bits_of, Granularity, QuantSpec, WidthRange, MAX_FRAC_BITS, MAX_LEARNED_WIDTH,
    MAX_TRAIN_WIDTH,
};
pub use width::{learned_bits, quantize_learned_width};

/// Which implementation of the quantizer runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum QuantPath {
    /// The fused kernels where the backend has them (Flex), the composed path elsewhere.
    #[default]
    Auto,
    /// The fused backend extension (Flex only).
    Fused,
    /// Ordinary tensor operations (any backend).
    Composed,
}

impl QuantPath {
    /// Whether the fused kernels run for tensors on `device`.
    pub fn fused(self, device: &burn::tensor::Device) -> bool {
        match self {
            QuantPath::Auto => is_flex(device),
            QuantPath::Fused => true,
            QuantPath::Composed => false,
        }
    }
}

/// True when `device` (with or without autodiff) is burn's Flex CPU backend.
pub fn is_flex(device: &burn::tensor::Device) -> bool {
    matches!(
        device.clone().inner().as_dispatch(),
        DispatchDevice::Flex(_)
    )
}

/// `x̂ = cast(x; W, F = round(f), Q, O, N)`, differentiable in `x` and `f` (see [`ops`] for
/// the backward rules). `f` has one entry per channel of `spec.granularity` (one for per-tensor).
pub fn quantize<const D: usize>(
    x: Tensor<D>,
    f: Tensor<1>,
    spec: &QuantSpec,
    path: QuantPath,
) -> Tensor<D> {
    if path.fused(&x.device()) {
        Tensor::from_dispatch(<Dispatch as FixedPointOps>::fixed_quantize(
            x.into_dispatch(),
            f.into_dispatch(),
            *spec,
        ))
    } else {
        quantize_composed(x, f, spec)
    }
}
