//! [`Quantizer`]: the learnable binary point(s) of one tensor, as a burn module.

use burn::module::{Module, Param};
use burn::tensor::{Device, Tensor, TensorData};
use serde::{Deserialize, Serialize};

use crate::host::HostValues;
use crate::quant::{
    frac_bits_of, learned_bits, quantize, quantize_learned_width, Granularity, QuantPath, QuantSpec,
};

/// How a quantizer's binary point is chosen from observed values.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum Calibration {
    /// Enough integer bits for the largest magnitude to be representable.
    #[default]
    MaxAbs,
    /// Enough integer bits for the given percentile (0–100) of `|x|`; the rest saturates.
    Percentile(f64),
}

/// A tensor together with the binary point it is quantized to (`None` while in float).
#[derive(Clone, Debug)]
pub struct QTensor<const D: usize> {
    /// The values (on the fixed-point grid when `frac` is set).
    pub value: Tensor<D>,
    /// Fractional bits of a per-tensor format, when quantized.
    pub frac: Option<i32>,
}

impl<const D: usize> QTensor<D> {
    /// A float tensor (not on any grid yet).
    pub fn float(value: Tensor<D>) -> QTensor<D> {
        QTensor { value, frac: None }
    }
}

/// One quantization point: `x̂ = cast(x; spec, F = round(f))` with `f` learned (or frozen).
///
/// A disabled quantizer passes values through unchanged: a model whose quantizers are all
/// disabled is the float model with the same module tree.
#[derive(Module, Debug)]
pub struct Quantizer {
    /// The binary point(s): one per channel, or one for the tensor.
    pub f: Param<Tensor<1>>,
    /// The word width, per channel like `f`, when the spec learns it
    /// ([`QuantSpec::learned_width`]); stored like `f` (divided by `point_lr_scale`).
    pub w: Option<Param<Tensor<1>>>,
    /// Word width, modes, granularity.
    #[module(skip)]
    pub spec: QuantSpec,
    /// Which implementation runs.
    #[module(skip)]
    pub path: QuantPath,
    /// False: values pass through unquantized.
    pub enabled: bool,
    /// False: the binary point is frozen (fixed-format QAT).
    pub learn: bool,
    /// `f` is stored divided by this, so the binary point learns this many times faster than
    /// the weights under Adam (its square under SGD): a point must travel whole bits while
    /// weights move by small fractions.
    pub point_lr_scale: f64,
}

impl Quantizer {
    /// A quantizer with `channels` binary points, all starting at `frac` fractional bits.
    pub fn new(spec: QuantSpec, channels: usize, frac: i32, device: &Device) -> Quantizer {
        let f = Tensor::<1>::from_data(
            TensorData::new(vec![frac as f32; channels], [channels]),
            device,
        );
        let w = spec.learned_width.map(|_| {
            let w = vec![spec.width as f32; channels];
            Param::from_tensor(Tensor::<1>::from_data(
                TensorData::new(w, [channels]),
                device,
            ))
        });
        Quantizer {
            f: Param::from_tensor(f),
            w,
            spec,
            path: QuantPath::Auto,
            enabled: true,
            learn: true,
            point_lr_scale: 1.0,
        }
    }

    /// Changes how fast the binary point (and a learned width) learns, keeping their values.
    pub fn set_point_lr_scale(&mut self, scale: f64) {
        let stored = |p: &Param<Tensor<1>>, old: f64| -> Vec<f32> {
            let v: Vec<f32> = p.val().host_f32();
            v.iter().map(|&b| (b as f64 * old / scale) as f32).collect()
        };
        let old = self.point_lr_scale;
        self.f = same_param(&self.f, stored(&self.f, old));
        if let Some(w) = &self.w {
            self.w = Some(same_param(w, stored(w, old)));
        }
        self.point_lr_scale = scale;
    }

    /// A stored parameter in bits (times `point_lr_scale`), detached when frozen.
    fn in_bits(&self, p: &Param<Tensor<1>>) -> Tensor<1> {
        let v = if self.learn {
            p.val()
        } else {
            p.val().detach()
        };
        if self.point_lr_scale == 1.0 {
            v
        } else {
            v * self.point_lr_scale
        }
    }

    /// The binary points `f` in bits.
    fn points(&self) -> Tensor<1> {
        self.in_bits(&self.f)
    }

    /// Quantizes `x` (or passes it through when disabled).
    pub fn forward<const D: usize>(&self, x: Tensor<D>) -> Tensor<D> {
        if !self.enabled {
            return x;
        }
        match &self.w {
            Some(w) => {
                quantize_learned_width(x, self.points(), self.in_bits(w), &self.spec, self.path)
            }
            None => quantize(x, self.points(), &self.spec, self.path),
        }
    }

    /// The word width per channel as the cost model differentiates it: a learned width
    /// (rounded straight through), else the constant `W`.
    pub fn width_tensor(&self) -> Tensor<1> {
        match &self.w {
            Some(w) => learned_bits(self.points(), self.in_bits(w), &self.spec).1,
            None => {
                let channels = self.f.val().dims()[0];
                Tensor::full([channels], self.spec.width as f32, &self.f.val().device())
            }
        }
    }

    /// The word width in use per channel (0: pruned).
    pub fn widths(&self) -> Vec<u32> {
        match &self.w {
            Some(w) => {
                let w: Vec<f32> = learned_bits(self.points(), self.in_bits(w), &self.spec)
                    .1
                    .host_f32();
                w.iter().map(|&w| w as u32).collect()
            }
            None => vec![self.spec.width; self.f.val().dims()[0]],
        }
    }

    /// The `ap_fixed` format of each channel. A pruned channel (width 0, all values 0) is
    /// given the 1-bit format at its binary point, which holds its zeros.
    pub fn formats(&self) -> Result<Vec<qfx_fixed::Format>, crate::TrainError> {
        self.frac_bits()
            .iter()
            .zip(self.widths())
            .map(|(&f, w)| self.spec.format_of_width(w.max(1), f))
            .collect()
    }

    /// Quantizes and reports the per-tensor binary point.
    pub fn forward_q<const D: usize>(&self, x: Tensor<D>) -> QTensor<D> {
        let frac = (self.enabled && self.spec.granularity == Granularity::PerTensor)
            .then(|| self.frac_bits()[0]);
        QTensor {
            value: self.forward(x),
            frac,
        }
    }

    /// The fractional bits in use, `round(f)`, per channel.
    pub fn frac_bits(&self) -> Vec<i32> {
        let f: Vec<f32> = self.points().host_f32();
        f.iter().map(|&v| frac_bits_of(v)).collect()
    }

    /// Integer bits `I = W − F` per channel.
    pub fn int_bits(&self) -> Vec<i32> {
        self.frac_bits()
            .iter()
            .zip(self.widths())
            .map(|(f, w)| w as i32 - f)
            .collect()
    }

    /// Sets a learned width per channel (clamped to the spec's range when used); `None` when
    /// the width is fixed.
    pub fn set_widths(&mut self, widths: &[u32]) -> Option<()> {
        let w = self.w.as_ref()?;
        let stored = widths
            .iter()
            .map(|&b| (b as f64 / self.point_lr_scale) as f32)
            .collect();
        self.w = Some(same_param(w, stored));
        Some(())
    }

    /// Sets every binary point to `frac` fractional bits (a learned width keeps its width).
    pub fn set_frac_bits(&mut self, frac: &[i32]) {
        let stored = frac
            .iter()
            .map(|&b| (b as f64 / self.point_lr_scale) as f32)
            .collect();
        self.f = same_param(&self.f, stored);
    }

    /// Chooses the binary points from observed values `x`: `I = floor(log2 m) + 1`, plus the
    /// sign bit for signed formats, with `m` the max-abs or a percentile of `|x|`, per channel;
    /// `F = W − I`. This is the common `ceil(log2 m) + 1` except at exact powers of two, which
    /// it keeps in range instead of clipping them by one LSB. All-zero channels keep their point.
    pub fn calibrate<const D: usize>(&mut self, x: &Tensor<D>, method: Calibration) {
        let dims = x.dims();
        let (outer, channels, inner) = self.spec.blocks(&dims);
        let values: Vec<f32> = x.clone().host_f32();
        let mut per_channel: Vec<Vec<f32>> = vec![Vec::new(); channels];
        let blocks = values.chunks(inner.max(1)).take(outer * channels);
        for (b, block) in blocks.enumerate() {
            let finite = block.iter().map(|v| v.abs()).filter(|v| v.is_finite());
            per_channel[b % channels].extend(finite);
        }
        let mut frac = self.frac_bits();
        let widths = self.widths();
        for (c, mags) in per_channel.iter_mut().enumerate() {
            let m = magnitude(mags, method);
            if m > 0.0 {
                // Enough integer bits that m itself is representable (2^k needs k + 1).
                let int_bits = m.log2().floor() as i32 + 1 + self.spec.signed as i32;
                frac[c] = widths[c] as i32 - int_bits;
            }
        }
        self.set_frac_bits(&frac);
    }
}

/// A parameter with new values and the same id, so optimizer state keeps following it.
fn same_param(p: &Param<Tensor<1>>, values: Vec<f32>) -> Param<Tensor<1>> {
    let n = values.len();
    let t = Tensor::<1>::from_data(TensorData::new(values, [n]), &p.val().device());
    let mut param = Param::from_tensor(t);
    param.id = p.id;
    param
}

/// The magnitude a calibration method keeps in range.
fn magnitude(mags: &mut [f32], method: Calibration) -> f64 {
    if mags.is_empty() {
        return 0.0;
    }
    match method {
        Calibration::MaxAbs => mags.iter().fold(0f32, |a, &b| a.max(b)) as f64,
        Calibration::Percentile(p) => {
            let k = ((p.clamp(0.0, 100.0) / 100.0) * (mags.len() - 1) as f64).round() as usize;
            mags.select_nth_unstable_by(k, f32::total_cmp);
            mags[k] as f64
        }
    }
}
