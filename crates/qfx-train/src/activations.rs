//! Fixed-point activations with constants (leaky ReLU, hard sigmoid, hard tanh), activations by
//! table (sigmoid, tanh), and the layers that combine tensors (concatenation, element-wise
//! product). Like every layer, each computes what the deployed code computes: exact arithmetic
//! on values already on their grids, then the cast to the output format.

use burn::module::Module;
use burn::tensor::activation::{sigmoid, tanh};
use burn::tensor::{Device, Tensor, TensorData};
use qfx_fixed::Format;

use crate::error::TrainError;
use crate::host::HostValues;
use crate::layers::QuantConfig;
use crate::quantizer::{Calibration, QTensor, Quantizer};

/// A scalar constant held in a fixed-point format whose binary point is calibrated from it.
fn constant_quantizer(value: f64, q: &QuantConfig, device: &Device) -> Quantizer {
    let spec = q.slope_spec().per_tensor();
    let mut cq = q.quantizer(spec, 1, spec.width as i32 - 2, device);
    cq.calibrate(&scalar(value, device), Calibration::MaxAbs);
    cq.learn = false;
    cq
}

fn scalar(value: f64, device: &Device) -> Tensor<1> {
    Tensor::from_data(TensorData::new(vec![value as f32], [1]), device)
}

/// `[1]` tensor of a constant as its quantizer holds it.
fn held(q: &Quantizer, value: f64, device: &Device) -> Tensor<1> {
    q.forward(scalar(value, device))
}

/// Broadcasts a `[1]` constant against `x`.
fn like<const D: usize>(c: Tensor<1>) -> Tensor<D> {
    c.reshape([1; D])
}

/// Leaky ReLU: `x` where `x ≥ 0`, else `slope · x` with the slope in a fixed-point format
/// (exported as a PReLU with one slope).
#[derive(Module, Debug)]
pub struct QLeakyRelu {
    /// The slope.
    pub slope: f64,
    /// The slope's format (calibrated from it, frozen).
    pub slope_q: Quantizer,
    /// Output quantizer.
    pub out: Quantizer,
}

impl QLeakyRelu {
    /// A signed output.
    pub fn new(slope: f64, q: &QuantConfig, device: &Device) -> QLeakyRelu {
        QLeakyRelu {
            slope,
            slope_q: constant_quantizer(slope, q, device),
            out: q.act_quantizer(true, device),
        }
    }

    /// The slope as deployed.
    pub fn held_slope(&self, device: &Device) -> Tensor<1> {
        held(&self.slope_q, self.slope, device)
    }

    fn raw<const D: usize>(&self, x: Tensor<D>) -> Tensor<D> {
        let s = like::<D>(self.held_slope(&x.device()));
        x.clone().clamp_min(0.0) + x.clamp_max(0.0) * s
    }

    /// Elementwise.
    pub fn forward<const D: usize>(&self, x: QTensor<D>) -> QTensor<D> {
        self.out.forward_q(self.raw(x.value))
    }

    /// Calibrates the output binary point.
    pub fn calibrate<const D: usize>(&mut self, x: QTensor<D>, method: Calibration) -> QTensor<D> {
        self.out.calibrate(&self.raw(x.value.clone()), method);
        self.forward(x)
    }
}

/// Hard sigmoid: `min(max(slope · x + offset, 0), 1)` with slope and offset in fixed-point
/// formats; the product and sum are exact, then cast to the output format.
#[derive(Module, Debug)]
pub struct QHardSigmoid {
    /// Slope.
    pub slope: f64,
    /// Offset.
    pub offset: f64,
    /// The slope's format.
    pub slope_q: Quantizer,
    /// The offset's format.
    pub offset_q: Quantizer,
    /// Output quantizer (unsigned: the result is in `[0, 1]`).
    pub out: Quantizer,
}

impl QHardSigmoid {
    /// An unsigned output.
    pub fn new(slope: f64, offset: f64, q: &QuantConfig, device: &Device) -> QHardSigmoid {
        QHardSigmoid {
            slope,
            offset,
            slope_q: constant_quantizer(slope, q, device),
            offset_q: constant_quantizer(offset, q, device),
            out: q.act_quantizer(false, device),
        }
    }

    /// Slope and offset as deployed.
    pub fn held(&self, device: &Device) -> (Tensor<1>, Tensor<1>) {
        (
            held(&self.slope_q, self.slope, device),
            held(&self.offset_q, self.offset, device),
        )
    }

    fn raw<const D: usize>(&self, x: Tensor<D>) -> Tensor<D> {
        let (a, b) = self.held(&x.device());
        (x * like::<D>(a) + like::<D>(b)).clamp(0.0, 1.0)
    }

    /// Elementwise.
    pub fn forward<const D: usize>(&self, x: QTensor<D>) -> QTensor<D> {
        self.out.forward_q(self.raw(x.value))
    }

    /// Calibrates the output binary point.
    pub fn calibrate<const D: usize>(&mut self, x: QTensor<D>, method: Calibration) -> QTensor<D> {
        self.out.calibrate(&self.raw(x.value.clone()), method);
        self.forward(x)
    }
}

/// Hard tanh: `min(max(x, min), max)`, cast to the output format.
#[derive(Module, Debug)]
pub struct QHardTanh {
    /// Lower bound.
    pub min: f64,
    /// Upper bound.
    pub max: f64,
    /// Output quantizer.
    pub out: Quantizer,
}

impl QHardTanh {
    /// A signed output.
    pub fn new(min: f64, max: f64, q: &QuantConfig, device: &Device) -> QHardTanh {
        QHardTanh {
            min,
            max,
            out: q.act_quantizer(true, device),
        }
    }

    /// The bounds as every back end holds them (`qfx_ir::clip_constant`).
    fn bounds(&self) -> (f32, f32) {
        let held = |v: f64| qfx_ir::clip_constant(v).map_or(v, |c| c.to_f64()) as f32;
        (held(self.min), held(self.max))
    }

    fn raw<const D: usize>(&self, x: Tensor<D>) -> Tensor<D> {
        let (lo, hi) = self.bounds();
        x.clamp(lo, hi)
    }

    /// Elementwise.
    pub fn forward<const D: usize>(&self, x: QTensor<D>) -> QTensor<D> {
        self.out.forward_q(self.raw(x.value))
    }

    /// Calibrates the output binary point.
    pub fn calibrate<const D: usize>(&mut self, x: QTensor<D>, method: Calibration) -> QTensor<D> {
        self.out.calibrate(&self.raw(x.value.clone()), method);
        self.forward(x)
    }
}

/// The function a lookup table holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TableFunction {
    /// The logistic sigmoid.
    Sigmoid,
    /// The hyperbolic tangent.
    Tanh,
}

impl TableFunction {
    /// Its name in the IR.
    pub fn name(self) -> &'static str {
        match self {
            TableFunction::Sigmoid => "sigmoid",
            TableFunction::Tanh => "tanh",
        }
    }
}

/// A function by table, as the deployed ROM computes it: the input (on its grid) selects one of
/// `2^index_bits` intervals of `[−range, range)` by its top bits (inputs beyond read the first or
/// last entry), and the output is the function at the middle of that interval in the output
/// format. The gradient is the true function's (straight through the table).
#[derive(Module, Debug)]
pub struct QLookup {
    /// `0` sigmoid, `1` tanh (a module field: see [`QLookup::function`]).
    pub function_code: usize,
    /// Table size in bits.
    pub index_bits: u32,
    /// Half the interval covered.
    pub range: f64,
    /// Output quantizer.
    pub out: Quantizer,
}

impl QLookup {
    /// A table of `function` (sigmoid output unsigned, tanh signed).
    pub fn new(
        function: TableFunction,
        index_bits: u32,
        range: f64,
        q: &QuantConfig,
        device: &Device,
    ) -> QLookup {
        QLookup {
            function_code: function as usize,
            index_bits,
            range,
            out: q.act_quantizer(function == TableFunction::Tanh, device),
        }
    }

    /// The function held.
    pub fn function(&self) -> TableFunction {
        if self.function_code == 0 {
            TableFunction::Sigmoid
        } else {
            TableFunction::Tanh
        }
    }

    /// Entries of the table.
    pub fn entries(&self) -> usize {
        1 << self.index_bits
    }

    /// The middle of every interval, in table order.
    pub fn centers(&self) -> Vec<f64> {
        let n = self.entries();
        let step = 2.0 * self.range / n as f64;
        (0..n)
            .map(|i| -self.range + (i as f64 + 0.5) * step)
            .collect()
    }

    fn raw<const D: usize>(&self, x: Tensor<D>) -> Tensor<D> {
        let f = |t: Tensor<D>| match self.function() {
            TableFunction::Sigmoid => sigmoid(t),
            TableFunction::Tanh => tanh(t),
        };
        if !self.out.enabled {
            // A float model computes the function itself; the table (what the hardware holds)
            // comes with quantization, in PTQ and QAT.
            return f(x);
        }
        let n = self.entries() as f64;
        let scale = n / (2.0 * self.range);
        let index = ((x.clone().detach() + self.range) * scale)
            .floor()
            .clamp(0.0, n - 1.0);
        let center = (index + 0.5) / scale - self.range;
        // The table's value, with the true function's gradient.
        let exact = f(x);
        f(center) + (exact.clone() - exact.detach())
    }

    /// Elementwise.
    pub fn forward<const D: usize>(&self, x: QTensor<D>) -> QTensor<D> {
        self.out.forward_q(self.raw(x.value))
    }

    /// Calibrates the output binary point.
    pub fn calibrate<const D: usize>(&mut self, x: QTensor<D>, method: Calibration) -> QTensor<D> {
        self.out.calibrate(&self.raw(x.value.clone()), method);
        self.forward(x)
    }

    /// The table as the output format holds it: `(entries as quantized values, format)`,
    /// computed with the same tensor operations as the forward pass, so the deployed table holds
    /// exactly the values training saw.
    pub fn table(&self, device: &Device) -> Result<(Vec<f32>, Format), TrainError> {
        let centers: Vec<f32> = self.centers().iter().map(|&c| c as f32).collect();
        let n = centers.len();
        let centers = Tensor::<1>::from_data(TensorData::new(centers, [n]), device);
        let values = match self.function() {
            TableFunction::Sigmoid => sigmoid(centers),
            TableFunction::Tanh => tanh(centers),
        };
        let held: Vec<f32> = self.out.forward(values).host_f32();
        let format = self.out.formats()?[0];
        Ok((held, format))
    }
}

/// Inputs side by side along the channel axis, cast to the output format.
#[derive(Module, Debug)]
pub struct QConcat {
    /// Output quantizer.
    pub out: Quantizer,
}

impl QConcat {
    /// A signed output.
    pub fn new(q: &QuantConfig, device: &Device) -> QConcat {
        QConcat {
            out: q.act_quantizer(true, device),
        }
    }

    fn raw<const D: usize>(xs: Vec<QTensor<D>>) -> Tensor<D> {
        Tensor::cat(xs.into_iter().map(|t| t.value).collect(), 1)
    }

    /// Channels (axis 1 of the batch) of every input in order.
    pub fn forward<const D: usize>(&self, xs: Vec<QTensor<D>>) -> QTensor<D> {
        self.out.forward_q(Self::raw(xs))
    }

    /// Calibrates the output binary point.
    pub fn calibrate<const D: usize>(
        &mut self,
        xs: Vec<QTensor<D>>,
        method: Calibration,
    ) -> QTensor<D> {
        let raw = Self::raw(xs);
        self.out.calibrate(&raw, method);
        self.out.forward_q(raw)
    }
}

/// Element-wise product (exact), cast to the output format.
#[derive(Module, Debug)]
pub struct QMul {
    /// Output quantizer.
    pub out: Quantizer,
}

impl QMul {
    /// A signed output.
    pub fn new(q: &QuantConfig, device: &Device) -> QMul {
        QMul {
            out: q.act_quantizer(true, device),
        }
    }

    /// `a · b`.
    pub fn forward<const D: usize>(&self, a: QTensor<D>, b: QTensor<D>) -> QTensor<D> {
        self.out.forward_q(a.value * b.value)
    }

    /// Calibrates the output binary point.
    pub fn calibrate<const D: usize>(
        &mut self,
        a: QTensor<D>,
        b: QTensor<D>,
        method: Calibration,
    ) -> QTensor<D> {
        self.out
            .calibrate(&(a.value.clone() * b.value.clone()), method);
        self.forward(a, b)
    }
}
