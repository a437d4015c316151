//! A binarized network in the style of ReActNet (Liu et al. 2020) and FracBNN (Zhang et al.
//! 2021): the convolutions of the residual blocks have `±1` weights and `±1` inputs, everything
//! else — the stem, BatchNorm, the residual adds, learnable-slope PReLUs, pooling and the
//! classifier — is fixed point. With `weight_khot`, `bn_khot` and `slope_khot` every remaining
//! multiplier is K-hot, so the whole network needs no DSP.
//!
//! Binarization is part of the architecture: the float model (quantizers disabled) binarizes
//! too, and its element-wise layers are float.

use burn::module::{Module, Param};
use burn::tensor::{Device, Distribution, Tensor};
use qfx_fixed::{Format, Overflow, Quant};

use crate::kernels::{conv2d, ConvShape};
use crate::layers::{accumulate, QuantConfig};
use crate::quant::{Granularity, QuantSpec};
use crate::quantizer::{Calibration, QTensor, Quantizer};

/// `+1` where `x ≥ 0`, else `−1`; the backward pass is the straight-through estimator clipped
/// to `|x| ≤ 1` (the gradient of `hardtanh`), as in BinaryConnect and XNOR-Net.
pub fn ste_sign<const D: usize>(x: Tensor<D>) -> Tensor<D> {
    let clipped = x.clone().clamp(-1.0, 1.0);
    let sign = x.greater_equal_elem(0.0).float() * 2.0 - 1.0;
    clipped.clone() + (sign - clipped).detach()
}

/// The format binarized values (weights and activations) have: `ap_int<2>` holds `±1` exactly.
pub fn binary_format() -> Format {
    Format::signed(2, 2).expect("valid format")
}

/// Binarizes activations: the result is on the integer grid (`F = 0`).
pub fn binarize<const D: usize>(x: QTensor<D>) -> QTensor<D> {
    QTensor {
        value: ste_sign(x.value),
        frac: Some(0),
    }
}

/// A convolution with `±1` weights (latent real weights, binarized in the forward pass) on
/// `±1` inputs: the sum is an integer, accumulated exactly in the narrowest signed format that
/// holds `±fan_in` (so `quant.acc_bits` does not apply to it), then cast to the output format.
#[derive(Module, Debug)]
pub struct QBinaryConv2d {
    /// Latent weights `[out, in, k, k]`; the layer uses their signs.
    pub weight: Param<Tensor<4>>,
    /// Stride.
    pub stride: usize,
    /// Zero padding on each side.
    pub padding: usize,
    /// The binary weights' format (`ap_int<2>`, frozen): the accumulator's binary point is
    /// the input's plus this one's.
    pub wq: Quantizer,
    /// Accumulator format.
    #[module(skip)]
    pub acc: QuantSpec,
    /// Output quantizer.
    pub out: Quantizer,
}

impl QBinaryConv2d {
    /// A `kernel × kernel` binary convolution with Kaiming-uniform latent weights.
    pub fn new(
        c_in: usize,
        c_out: usize,
        kernel: usize,
        stride: usize,
        q: &QuantConfig,
        device: &Device,
    ) -> QBinaryConv2d {
        let fan_in = c_in * kernel * kernel;
        let bound = (6.0 / fan_in as f64).sqrt();
        let weight = Param::from_tensor(Tensor::random(
            [c_out, c_in, kernel, kernel],
            Distribution::Uniform(-bound, bound),
            device,
        ));
        let binary = QuantSpec {
            width: 2,
            signed: true,
            quant: Quant::Trn,
            overflow: Overflow::Sat,
            sat_bits: 0,
            granularity: Granularity::PerTensor,
            khot: None,
            learned_width: None,
        };
        let mut wq = q.quantizer(binary, 1, 0, device);
        wq.learn = false;
        // |sum| ≤ fan_in: one sign bit plus the bits of fan_in (what a popcount produces).
        let width = (usize::BITS - fan_in.leading_zeros() + 1).min(32);
        let acc = QuantSpec {
            width,
            granularity: Granularity::PerTensor,
            ..q.acc_spec(1)
        };
        QBinaryConv2d {
            weight,
            stride,
            padding: kernel / 2,
            wq,
            acc,
            out: q.act_quantizer(true, device),
        }
    }

    fn raw(&self, x: Tensor<4>) -> Tensor<4> {
        let [_, _, kh, _] = self.weight.dims();
        let shape = ConvShape::square(kh, self.stride, self.padding);
        conv2d(x, ste_sign(self.weight.val()), None, shape)
    }

    /// `[batch, in, h, w]` of `±1` → `[batch, out, h', w']`.
    pub fn forward(&self, x: QTensor<4>) -> QTensor<4> {
        let y = self.raw(x.value);
        let y = accumulate(y, x.frac, &self.wq, &self.acc, self.wq.path);
        self.out.forward_q(y)
    }

    /// Calibrates the output binary point on `x`.
    pub fn calibrate(&mut self, x: QTensor<4>, method: Calibration) -> QTensor<4> {
        self.out.calibrate(&self.raw(x.value.clone()), method);
        self.forward(x)
    }

    /// The `±1` weights as they are used.
    pub fn binary_weights(&self) -> Tensor<4> {
        ste_sign(self.weight.val())
    }
}

/// PReLU with a learned slope per channel: `x` where `x ≥ 0`, else `slope[c]·x`, with the
/// slope a fixed-point constant (K-hot with `slope_khot`), then the output quantizer.
#[derive(Module, Debug)]
pub struct QPrelu {
    /// `[c]`, starting at 0.25 (He et al. 2015).
    pub slope: Param<Tensor<1>>,
    /// Slope quantizer (per channel when weights are).
    pub slope_q: Quantizer,
    /// Output quantizer.
    pub out: Quantizer,
}

impl QPrelu {
    /// Slopes 0.25.
    pub fn new(channels: usize, init: f64, q: &QuantConfig, device: &Device) -> QPrelu {
        let slope = Param::from_tensor(Tensor::<1>::ones([channels], device) * init);
        let spec = q.slope_spec();
        let sc = spec.channels(&[channels]).unwrap_or(1);
        let mut slope_q = q.quantizer(spec, sc, spec.width as i32 - 2, device);
        slope_q.calibrate(&slope.val(), Calibration::MaxAbs);
        QPrelu {
            slope,
            slope_q,
            out: q.act_quantizer(true, device),
        }
    }

    fn raw(&self, x: Tensor<4>) -> Tensor<4> {
        let c = self.slope.dims()[0];
        let s = self.slope_q.forward(self.slope.val()).reshape([1, c, 1, 1]);
        x.clone().clamp_min(0.0) + x.clamp_max(0.0) * s
    }

    /// Elementwise, channels on axis 1.
    pub fn forward(&self, x: QTensor<4>) -> QTensor<4> {
        self.out.forward_q(self.raw(x.value))
    }

    /// Calibrates the slope and output binary points.
    pub fn calibrate(&mut self, x: QTensor<4>, method: Calibration) -> QTensor<4> {
        self.slope_q
            .calibrate(&self.slope.val(), Calibration::MaxAbs);
        self.out.calibrate(&self.raw(x.value.clone()), method);
        self.forward(x)
    }
}
