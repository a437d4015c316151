//! Reading tensor values back to the host, in one place.

use burn::tensor::Tensor;

/// Copies a tensor's values to the host as `f32`, row-major.
pub(crate) trait HostValues {
    fn host_f32(self) -> Vec<f32>;
}

impl<const D: usize> HostValues for Tensor<D> {
    fn host_f32(self) -> Vec<f32> {
        self.into_data()
            .convert::<f32>()
            .try_into_vec::<f32>()
            // `convert` has just made the element type f32, so reading f32 cannot fail.
            .expect("tensor data converted to f32")
    }
}
