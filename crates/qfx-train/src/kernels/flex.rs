//! The spatial kernels on burn's Flex CPU backend: tensors in, slices to `conv` and `pool`,
//! tensors out.

use std::borrow::Cow;

use burn::backend::{tensor::FloatTensor, Flex, TensorMetadata};
use burn::tensor::TensorData;
use burn_flex::FlexTensor;

use super::conv::{self, ConvDims};
use super::elementwise;
use super::ops::SpatialOps;
use super::pool::{self, PoolDims};
use super::stats;
use super::ConvShape;

/// The elements of a contiguous view, copying only when the tensor is strided or offset.
pub(crate) fn values<'a, E: burn::tensor::Element + bytemuck::Pod>(
    t: &'a FlexTensor,
    what: &str,
) -> Cow<'a, [E]> {
    assert_eq!(
        t.dtype(),
        E::dtype(),
        "{what} must be {:?}, not {:?}",
        E::dtype(),
        t.dtype()
    );
    match t.as_slice::<E>() {
        Some(s) => Cow::Borrowed(s),
        None => Cow::Owned(
            t.to_contiguous()
                .as_slice::<E>()
                .expect("contiguous")
                .to_vec(),
        ),
    }
}

fn tensor<E: burn::tensor::Element>(data: Vec<E>, shape: impl Into<Vec<usize>>) -> FlexTensor {
    FlexTensor::from_data(TensorData::new(data, shape.into()))
}

fn dims(t: &FlexTensor) -> [usize; 4] {
    super::ops::dims4::<Flex>(t)
}

fn conv_dims(input: [usize; 4], weight: &FlexTensor, shape: ConvShape) -> ConvDims {
    let w = dims(weight);
    assert_eq!(
        [w[2], w[3]],
        shape.kernel,
        "convolution: weight {w:?} for kernel {:?}",
        shape.kernel
    );
    ConvDims {
        input,
        out_channels: w[0],
        shape,
    }
}

fn pool_dims(input: [usize; 4], kernel: [usize; 2], stride: [usize; 2]) -> PoolDims {
    let [n, c, h, w] = input;
    PoolDims {
        planes: n * c,
        hw: [h, w],
        kernel,
        stride,
    }
}

impl SpatialOps for Flex {
    fn qfx_conv2d(x: FloatTensor<Self>, weight: FloatTensor<Self>, shape: ConvShape) -> FlexTensor {
        conv_forward(&x, &weight, None, shape)
    }

    fn qfx_conv2d_bias(
        x: FloatTensor<Self>,
        weight: FloatTensor<Self>,
        bias: FloatTensor<Self>,
        shape: ConvShape,
    ) -> FlexTensor {
        conv_forward(&x, &weight, Some(&bias), shape)
    }

    fn qfx_conv2d_input_grad(
        grad: FloatTensor<Self>,
        weight: FloatTensor<Self>,
        input: [usize; 4],
        shape: ConvShape,
    ) -> FlexTensor {
        let d = conv_dims(input, &weight, shape);
        let dx = conv::input_grad(
            &values::<f32>(&grad, "convolution gradient"),
            &values::<f32>(&weight, "convolution weight"),
            &d,
        );
        tensor(dx, input)
    }

    fn qfx_conv2d_weight_grad(
        grad: FloatTensor<Self>,
        x: FloatTensor<Self>,
        weight: FloatTensor<Self>,
        shape: ConvShape,
    ) -> FlexTensor {
        let d = conv_dims(dims(&x), &weight, shape);
        let dw = conv::weight_grad(
            &values::<f32>(&grad, "convolution gradient"),
            &values::<f32>(&x, "convolution input"),
            &d,
        );
        tensor(dw, dims(&weight))
    }

    fn qfx_conv2d_bias_grad(grad: FloatTensor<Self>) -> FlexTensor {
        let [n, o, h, w] = dims(&grad);
        let db = conv::bias_grad(&values::<f32>(&grad, "convolution gradient"), [n, o, h * w]);
        tensor(db, [o])
    }

    fn qfx_relu(x: FloatTensor<Self>) -> FlexTensor {
        let shape = x.shape().as_slice().to_vec();
        tensor(elementwise::relu(&values::<f32>(&x, "ReLU input")), shape)
    }

    fn qfx_relu_grad(grad: FloatTensor<Self>, y: FloatTensor<Self>) -> FlexTensor {
        let shape = y.shape().as_slice().to_vec();
        let dx = elementwise::relu_grad(
            &values::<f32>(&grad, "ReLU gradient"),
            &values::<f32>(&y, "ReLU output"),
        );
        tensor(dx, shape)
    }

    fn qfx_max_pool2d(x: FloatTensor<Self>, kernel: [usize; 2], stride: [usize; 2]) -> FlexTensor {
        let input = dims(&x);
        let d = pool_dims(input, kernel, stride);
        let (y, _) = pool::forward(&values::<f32>(&x, "pooling input"), &d, false);
        tensor(y, output_shape(input, &d))
    }

    fn qfx_max_pool2d_with_indices(
        x: FloatTensor<Self>,
        kernel: [usize; 2],
        stride: [usize; 2],
    ) -> (FlexTensor, FlexTensor) {
        let input = dims(&x);
        let d = pool_dims(input, kernel, stride);
        let (y, indices) = pool::forward(&values::<f32>(&x, "pooling input"), &d, true);
        let shape = output_shape(input, &d);
        (tensor(y, shape), tensor(indices, shape))
    }

    fn qfx_max_pool2d_backward(
        grad: FloatTensor<Self>,
        indices: FloatTensor<Self>,
        input: [usize; 4],
        kernel: [usize; 2],
        stride: [usize; 2],
    ) -> FlexTensor {
        let d = pool_dims(input, kernel, stride);
        let dx = pool::backward(
            &values::<f32>(&grad, "pooling gradient"),
            &values::<u32>(&indices, "pooling indices"),
            &d,
        );
        tensor(dx, input)
    }

    fn qfx_batch_stats(x: FloatTensor<Self>) -> FlexTensor {
        let [n, c, h, w] = dims(&x);
        let stats = stats::forward(&values::<f32>(&x, "BatchNorm input"), [n, c, h * w]);
        tensor(stats, [2 * c])
    }

    fn qfx_batch_stats_grad(
        grad: FloatTensor<Self>,
        x: FloatTensor<Self>,
        stats: FloatTensor<Self>,
    ) -> FlexTensor {
        let input = dims(&x);
        let [n, c, h, w] = input;
        let dx = stats::backward(
            &values::<f32>(&grad, "BatchNorm statistics gradient"),
            &values::<f32>(&x, "BatchNorm input"),
            &values::<f32>(&stats, "BatchNorm statistics"),
            [n, c, h * w],
        );
        tensor(dx, input)
    }

    fn qfx_channel_affine(
        x: FloatTensor<Self>,
        scale: FloatTensor<Self>,
        shift: FloatTensor<Self>,
    ) -> FlexTensor {
        let input = dims(&x);
        let [n, c, h, w] = input;
        let y = stats::affine(
            &values::<f32>(&x, "BatchNorm input"),
            &values::<f32>(&scale, "BatchNorm scale"),
            &values::<f32>(&shift, "BatchNorm shift"),
            [n, c, h * w],
        );
        tensor(y, input)
    }

    fn qfx_channel_affine_grad(
        grad: FloatTensor<Self>,
        x: FloatTensor<Self>,
        scale: FloatTensor<Self>,
    ) -> (FlexTensor, FlexTensor, FlexTensor) {
        let input = dims(&x);
        let [n, c, h, w] = input;
        let (dx, ds, dt) = stats::affine_grad(
            &values::<f32>(&grad, "BatchNorm gradient"),
            &values::<f32>(&x, "BatchNorm input"),
            &values::<f32>(&scale, "BatchNorm scale"),
            [n, c, h * w],
        );
        (tensor(dx, input), tensor(ds, [c]), tensor(dt, [c]))
    }
}

fn conv_forward(
    x: &FlexTensor,
    weight: &FlexTensor,
    bias: Option<&FlexTensor>,
    shape: ConvShape,
) -> FlexTensor {
    let d = conv_dims(dims(x), weight, shape);
    let bias = bias.map(|b| values::<f32>(b, "convolution bias"));
    let y = conv::forward(
        &values::<f32>(x, "convolution input"),
        &values::<f32>(weight, "convolution weight"),
        bias.as_deref(),
        &d,
    );
    tensor(y, d.output())
}

fn output_shape(input: [usize; 4], d: &PoolDims) -> [usize; 4] {
    let [oh, ow] = d
        .output_hw()
        .unwrap_or_else(|| panic!("pooling geometry checked by the layer: {d:?}"));
    [input[0], input[1], oh, ow]
}
