//! Fixed-point layers. Every tensor of the forward pass is on a fixed-point grid: weights,
//! biases, accumulators, BatchNorm scale and shift, activations, residual sums and pooled
//! values, each computed the way the deployed HLS code computes it.

use burn::module::{Module, Param, RunningState};
use burn::tensor::{Device, Distribution, Tensor, TensorData};
use qfx_fixed::{Fixed, Format, KHot, Overflow, Quant};
use serde::{Deserialize, Serialize};

pub use crate::kernels::ConvShape;
use crate::kernels::{batch_stats, channel_affine, conv2d, max_pool2d};
use crate::quant::{quantize, Granularity, QuantPath, QuantSpec, WidthRange, MAX_TRAIN_WIDTH};
use crate::quantizer::{Calibration, QTensor, Quantizer};

/// The formats of a model: one `bits` setting, with a width, rounding and overflow mode per
/// kind of tensor that can each be overridden.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct QuantConfig {
    /// Default word width of every quantized tensor.
    pub bits: u32,
    /// Width of weights (default `bits`).
    pub weight_bits: Option<u32>,
    /// Width of biases (default `bits`).
    pub bias_bits: Option<u32>,
    /// Width of activations: layer outputs, residual sums, pooled values (default `bits`).
    pub act_bits: Option<u32>,
    /// Width of the folded BatchNorm scale and shift (default `bits`).
    pub bn_bits: Option<u32>,
    /// Accumulator width (default `weight + activation widths + 8`, at most 32).
    pub acc_bits: Option<u32>,
    /// Rounding of weights, biases and BatchNorm constants (computed offline: free in hardware).
    pub weight_quant: Quant,
    /// Rounding of activations (`AP_RND` costs one adder in hardware).
    pub act_quant: Quant,
    /// Overflow mode of weights and activations.
    pub overflow: Overflow,
    /// Overflow mode of accumulators.
    pub acc_overflow: Overflow,
    /// One binary point per output channel for weights and BatchNorm scales.
    pub per_channel_weights: bool,
    /// Learn the binary points (QFX); false freezes them at their calibrated values.
    pub learn_binary_points: bool,
    /// False: every quantizer passes values through (the float model).
    pub enabled: bool,
    /// Which quantizer implementation runs.
    pub path: QuantPath,
    /// How much faster binary points learn than weights (see [`Quantizer::point_lr_scale`]).
    pub point_lr_scale: f64,
    /// K-hot constraint on conv/linear weights (multiplier-free weights), if any.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub weight_khot: Option<KHot>,
    /// K-hot constraint on the folded BatchNorm scales, if any.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub bn_khot: Option<KHot>,
    /// K-hot constraint on PReLU slopes (the binarized network), if any.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub slope_khot: Option<KHot>,
    /// `fixed`: every width is set above. `learned`: the quantizers of weights, activations
    /// and BatchNorm constants learn their integer bits as well as their binary points, so each
    /// width `W = I + F` moves within its range below (the widths above are where training
    /// starts); accumulators are then sized at export so that they cannot overflow
    /// (ARCHITECTURE.md §5).
    pub widths: Widths,
    /// Learned widths: `[min, max]` of weights (a channel whose width reaches 0 is pruned).
    pub weight_width_range: [u32; 2],
    /// Learned widths: `[min, max]` of activations (at least 1 bit).
    pub act_width_range: [u32; 2],
    /// Learned widths: `[min, max]` of the folded BatchNorm scale and shift (at least 1 bit).
    pub bn_width_range: [u32; 2],
    /// Settings for some layers only, by name or glob (`conv*`, `block?_bn`); applied in order
    /// over the settings above.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub overrides: Vec<QuantOverride>,
}

/// Whether word widths are set or learned (see [`QuantConfig::widths`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum Widths {
    /// As configured.
    #[default]
    Fixed,
    /// Learned within a range.
    Learned,
}

/// Quantization settings for the layers whose names match `layers` (a name, or a glob with
/// `*` for any run of characters and `?` for one). Unset keys keep the model-wide value.
///
/// ```toml
/// [[quant.overrides]]
/// layers = "fc1"          # the first layer keeps 8 bits
/// bits = 8
/// [[quant.overrides]]
/// layers = "conv*"
/// weight_khot = "none"    # no K-hot constraint on the convolutions
/// ```
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct QuantOverride {
    /// Layer name or glob.
    pub layers: String,
    /// See [`QuantConfig::bits`].
    #[serde(skip_serializing_if = "Option::is_none")]
    pub bits: Option<u32>,
    /// See [`QuantConfig::weight_bits`].
    #[serde(skip_serializing_if = "Option::is_none")]
    pub weight_bits: Option<u32>,
    /// See [`QuantConfig::bias_bits`].
    #[serde(skip_serializing_if = "Option::is_none")]
    pub bias_bits: Option<u32>,
    /// See [`QuantConfig::act_bits`].
    #[serde(skip_serializing_if = "Option::is_none")]
    pub act_bits: Option<u32>,
    /// See [`QuantConfig::bn_bits`].
    #[serde(skip_serializing_if = "Option::is_none")]
    pub bn_bits: Option<u32>,
    /// See [`QuantConfig::acc_bits`].
    #[serde(skip_serializing_if = "Option::is_none")]
    pub acc_bits: Option<u32>,
    /// See [`QuantConfig::weight_quant`].
    #[serde(skip_serializing_if = "Option::is_none")]
    pub weight_quant: Option<Quant>,
    /// See [`QuantConfig::act_quant`].
    #[serde(skip_serializing_if = "Option::is_none")]
    pub act_quant: Option<Quant>,
    /// See [`QuantConfig::overflow`].
    #[serde(skip_serializing_if = "Option::is_none")]
    pub overflow: Option<Overflow>,
    /// See [`QuantConfig::per_channel_weights`].
    #[serde(skip_serializing_if = "Option::is_none")]
    pub per_channel_weights: Option<bool>,
    /// See [`QuantConfig::learn_binary_points`].
    #[serde(skip_serializing_if = "Option::is_none")]
    pub learn_binary_points: Option<bool>,
    /// See [`QuantConfig::weight_khot`]; `"none"` removes the constraint.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub weight_khot: Option<KHotChoice>,
    /// See [`QuantConfig::bn_khot`]; `"none"` removes the constraint.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub bn_khot: Option<KHotChoice>,
    /// See [`QuantConfig::slope_khot`]; `"none"` removes the constraint.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub slope_khot: Option<KHotChoice>,
    /// See [`QuantConfig::widths`].
    #[serde(skip_serializing_if = "Option::is_none")]
    pub widths: Option<Widths>,
}

/// A K-hot setting in an override: a constraint, or `"none"`.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum KHotChoice {
    /// No constraint.
    Off(NoKHot),
    /// This constraint.
    On(KHot),
}

/// The word `"none"`.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum NoKHot {
    /// No K-hot constraint.
    None,
}

impl KHotChoice {
    fn get(self) -> Option<KHot> {
        match self {
            KHotChoice::Off(_) => None,
            KHotChoice::On(k) => Some(k),
        }
    }
}

/// Whether `name` matches `pattern` (`*`: any run of characters, `?`: one character).
pub fn glob_matches(pattern: &str, name: &str) -> bool {
    fn go(p: &[char], n: &[char]) -> bool {
        match p.split_first() {
            None => n.is_empty(),
            Some(('*', rest)) => (0..=n.len()).any(|i| go(rest, &n[i..])),
            Some(('?', rest)) => !n.is_empty() && go(rest, &n[1..]),
            Some((c, rest)) => n.first() == Some(c) && go(rest, &n[1..]),
        }
    }
    let (p, n): (Vec<char>, Vec<char>) = (pattern.chars().collect(), name.chars().collect());
    go(&p, &n)
}

impl Default for QuantConfig {
    fn default() -> QuantConfig {
        QuantConfig {
            bits: 8,
            weight_bits: None,
            bias_bits: None,
            act_bits: None,
            bn_bits: None,
            acc_bits: None,
            weight_quant: Quant::RndConv,
            act_quant: Quant::Rnd,
            overflow: Overflow::Sat,
            acc_overflow: Overflow::Wrap,
            per_channel_weights: true,
            learn_binary_points: true,
            enabled: true,
            path: QuantPath::Auto,
            point_lr_scale: 10.0,
            weight_khot: None,
            bn_khot: None,
            slope_khot: None,
            widths: Widths::Fixed,
            weight_width_range: [0, 16],
            act_width_range: [1, 16],
            bn_width_range: [1, 16],
            overrides: Vec::new(),
        }
    }
}

impl QuantConfig {
    /// The float model's configuration: same module tree, quantizers off.
    pub fn float() -> QuantConfig {
        QuantConfig {
            enabled: false,
            ..QuantConfig::default()
        }
    }

    fn spec(
        &self,
        width: u32,
        signed: bool,
        quant: Quant,
        overflow: Overflow,
        granularity: Granularity,
    ) -> QuantSpec {
        QuantSpec {
            width,
            signed,
            quant,
            overflow,
            sat_bits: 0,
            granularity,
            khot: None,
            learned_width: None,
        }
    }

    fn channels(&self, axis: usize) -> Granularity {
        if self.per_channel_weights {
            Granularity::PerChannel { axis }
        } else {
            Granularity::PerTensor
        }
    }

    /// The learned-width range of a kind of tensor, when widths are learned.
    fn learned(&self, [min, max]: [u32; 2]) -> Option<WidthRange> {
        (self.widths == Widths::Learned).then_some(WidthRange { min, max })
    }

    /// Weights with output channels on `axis`.
    pub fn weight_spec(&self, axis: usize) -> QuantSpec {
        let width = self.weight_bits.unwrap_or(self.bits);
        QuantSpec {
            khot: self.weight_khot,
            learned_width: self.learned(self.weight_width_range),
            ..self.spec(
                width,
                true,
                self.weight_quant,
                self.overflow,
                self.channels(axis),
            )
        }
    }

    /// Biases (one binary point per layer).
    pub fn bias_spec(&self) -> QuantSpec {
        let width = self.bias_bits.unwrap_or(self.bits);
        self.spec(
            width,
            true,
            self.weight_quant,
            self.overflow,
            Granularity::PerTensor,
        )
    }

    /// Per-tensor activations.
    pub fn act_spec(&self, signed: bool) -> QuantSpec {
        let width = self.act_bits.unwrap_or(self.bits);
        QuantSpec {
            learned_width: self.learned(self.act_width_range),
            ..self.spec(
                width,
                signed,
                self.act_quant,
                self.overflow,
                Granularity::PerTensor,
            )
        }
    }

    /// The folded BatchNorm scale (per channel when weights are) or shift (per layer).
    pub fn bn_spec(&self, scale: bool) -> QuantSpec {
        let width = self.bn_bits.unwrap_or(self.bits);
        let g = if scale {
            self.channels(0)
        } else {
            Granularity::PerTensor
        };
        QuantSpec {
            khot: if scale { self.bn_khot } else { None },
            learned_width: self.learned(self.bn_width_range),
            ..self.spec(width, true, self.weight_quant, self.overflow, g)
        }
    }

    /// PReLU slopes: like BatchNorm scales (width `bn_bits`, per channel when weights are),
    /// K-hot with `slope_khot`.
    pub fn slope_spec(&self) -> QuantSpec {
        QuantSpec {
            khot: self.slope_khot,
            learned_width: None,
            ..self.bn_spec(true)
        }
    }

    /// Accumulators: truncating (their binary point is exact: `F_in + F_w`), channels on `axis`.
    /// With learned widths, training sums at 32 bits and the export sizes each accumulator
    /// from its operands' learned formats.
    pub fn acc_spec(&self, axis: usize) -> QuantSpec {
        let default = (self.weight_bits.unwrap_or(self.bits))
            .saturating_add(self.act_bits.unwrap_or(self.bits))
            .saturating_add(8);
        let width = match self.widths {
            Widths::Learned => MAX_TRAIN_WIDTH,
            Widths::Fixed => self.acc_bits.unwrap_or(default.min(32)),
        };
        self.spec(
            width,
            true,
            Quant::Trn,
            self.acc_overflow,
            self.channels(axis),
        )
    }

    /// The settings of layer `name`: these, with every matching override applied in order.
    pub fn for_layer(&self, name: &str) -> QuantConfig {
        let mut q = QuantConfig {
            overrides: Vec::new(),
            ..self.clone()
        };
        for o in self
            .overrides
            .iter()
            .filter(|o| glob_matches(&o.layers, name))
        {
            let set = |v: Option<u32>, to: &mut u32| {
                if let Some(v) = v {
                    *to = v
                }
            };
            set(o.bits, &mut q.bits);
            for (v, to) in [
                (o.weight_bits, &mut q.weight_bits),
                (o.bias_bits, &mut q.bias_bits),
                (o.act_bits, &mut q.act_bits),
                (o.bn_bits, &mut q.bn_bits),
                (o.acc_bits, &mut q.acc_bits),
            ] {
                if v.is_some() {
                    *to = v;
                }
            }
            q.weight_quant = o.weight_quant.unwrap_or(q.weight_quant);
            q.act_quant = o.act_quant.unwrap_or(q.act_quant);
            q.overflow = o.overflow.unwrap_or(q.overflow);
            q.per_channel_weights = o.per_channel_weights.unwrap_or(q.per_channel_weights);
            q.learn_binary_points = o.learn_binary_points.unwrap_or(q.learn_binary_points);
            q.widths = o.widths.unwrap_or(q.widths);
            for (v, to) in [
                (o.weight_khot, &mut q.weight_khot),
                (o.bn_khot, &mut q.bn_khot),
                (o.slope_khot, &mut q.slope_khot),
            ] {
                if let Some(v) = v {
                    *to = v.get();
                }
            }
        }
        q
    }

    /// Checks the overrides against the network's layer names: each must match a layer (a
    /// typo must not silently leave a layer at the default) and every layer's resulting
    /// settings must be valid.
    pub fn validate_overrides<'a>(
        &self,
        names: impl Iterator<Item = &'a str> + Clone,
    ) -> Result<(), crate::TrainError> {
        for o in &self.overrides {
            if !names.clone().any(|n| glob_matches(&o.layers, n)) {
                return Err(crate::TrainError::Config(format!(
                    "quant.overrides: `{}` matches no layer of the network (its layers: {})",
                    o.layers,
                    names.clone().collect::<Vec<_>>().join(", ")
                )));
            }
        }
        for name in names {
            self.for_layer(name).validate().map_err(|e| {
                crate::TrainError::Config(format!("quant settings of layer `{name}`: {e}"))
            })?;
        }
        Ok(())
    }

    /// Checks that every format this configuration implies can be trained.
    pub fn validate(&self) -> Result<(), crate::TrainError> {
        for spec in [
            self.weight_spec(0),
            self.bias_spec(),
            self.act_spec(true),
            self.act_spec(false),
            self.bn_spec(true),
            self.slope_spec(),
            self.acc_spec(0),
        ] {
            spec.validate()?;
        }
        if self.acc_overflow != Overflow::Wrap {
            // Training casts the finished sum once; HLS casts after every product. The two agree
            // for AP_WRAP (the modulo commutes with the additions), not for clamping modes.
            return Err(crate::TrainError::Spec(format!(
                "acc_overflow {} is not supported yet: training emulates accumulators exactly \
                 only for AP_WRAP",
                self.acc_overflow
            )));
        }
        if self.widths == Widths::Learned {
            if !self.learn_binary_points {
                return Err(crate::TrainError::Spec(
                    "learned widths need learned binary points (learn_binary_points = true, \
                     no --fixed-points): a width moves bits between the integer and \
                     fractional part"
                        .to_string(),
                ));
            }
            if self.acc_bits.is_some() {
                return Err(crate::TrainError::Spec(
                    "acc_bits cannot be set with learned widths: each accumulator is sized at \
                     export from its operands' learned formats, so that it cannot overflow"
                        .to_string(),
                ));
            }
            for (name, [min, _]) in [
                ("act_width_range", self.act_width_range),
                ("bn_width_range", self.bn_width_range),
            ] {
                if min == 0 {
                    return Err(crate::TrainError::Spec(format!(
                        "{name}: an activation or BatchNorm constant needs at least 1 bit (only \
                         weights can be pruned to 0)"
                    )));
                }
            }
        }
        if !(self.point_lr_scale.is_finite() && self.point_lr_scale > 0.0) {
            return Err(crate::TrainError::Spec(
                "point_lr_scale must be positive".to_string(),
            ));
        }
        Ok(())
    }

    /// A quantizer for `spec` with this configuration's switches.
    pub fn quantizer(
        &self,
        spec: QuantSpec,
        channels: usize,
        frac: i32,
        device: &Device,
    ) -> Quantizer {
        let mut q = Quantizer::new(spec, channels, frac, device);
        q.enabled = self.enabled;
        q.learn = self.learn_binary_points;
        q.path = self.path;
        q.set_point_lr_scale(self.point_lr_scale);
        q
    }

    /// A quantizer for activations, starting at 3 integer bits until calibrated.
    pub fn act_quantizer(&self, signed: bool, device: &Device) -> Quantizer {
        let spec = self.act_spec(signed);
        self.quantizer(spec, 1, spec.width as i32 - 3, device)
    }
}

/// Casts the accumulator `y` (channels on `axis`) to its format: `F = F_in + F_w[c]`.
pub(crate) fn accumulate<const D: usize>(
    y: Tensor<D>,
    x_frac: Option<i32>,
    wq: &Quantizer,
    spec: &QuantSpec,
    path: QuantPath,
) -> Tensor<D> {
    let Some(fx) = x_frac.filter(|_| wq.enabled) else {
        return y;
    };
    let fw: Vec<f32> = acc_frac_bits(spec, fx, wq)
        .iter()
        .map(|&f| f as f32)
        .collect();
    let n = fw.len();
    let f = Tensor::<1>::from_data(TensorData::new(fw, [n]), &y.device());
    quantize(y, f, spec, path)
}

/// Fractional bits of the accumulator, per output channel (or one): `F_in + F_w`, so every
/// product lands exactly on its grid. Training and export both use this.
pub fn acc_frac_bits(spec: &QuantSpec, f_in: i32, wq: &Quantizer) -> Vec<i32> {
    let fw = wq.frac_bits();
    match spec.granularity {
        Granularity::PerTensor => vec![f_in + fw.iter().copied().max().unwrap_or(0)],
        Granularity::PerChannel { .. } => fw.iter().map(|&f| f_in + f).collect(),
    }
}

fn uniform<const D: usize>(shape: [usize; D], bound: f64, device: &Device) -> Param<Tensor<D>> {
    Param::from_tensor(Tensor::random(
        shape,
        Distribution::Uniform(-bound, bound),
        device,
    ))
}

/// A fixed-point fully connected layer: `acc = x·W + b` in the accumulator's format, then the
/// output quantizer. Weight `[d_in, d_out]`.
#[derive(Module, Debug)]
pub struct QLinear {
    /// `[d_in, d_out]`.
    pub weight: Param<Tensor<2>>,
    /// `[d_out]`.
    pub bias: Param<Tensor<1>>,
    /// Weight quantizer (per output channel: axis 1).
    pub wq: Quantizer,
    /// Bias quantizer.
    pub bq: Quantizer,
    /// Accumulator format.
    #[module(skip)]
    pub acc: QuantSpec,
    /// Output quantizer.
    pub out: Quantizer,
}

impl QLinear {
    /// A layer with uniform(±1/√d_in) weights, binary points calibrated from them.
    pub fn new(d_in: usize, d_out: usize, q: &QuantConfig, device: &Device) -> QLinear {
        let bound = 1.0 / (d_in as f64).sqrt();
        let weight = uniform([d_in, d_out], bound, device);
        let bias = uniform([d_out], bound, device);
        let wspec = q.weight_spec(1);
        let channels = wspec.channels(&[d_in, d_out]).unwrap_or(1);
        let mut wq = q.quantizer(wspec, channels, 0, device);
        wq.calibrate(&weight.val(), Calibration::MaxAbs);
        let mut bq = q.quantizer(q.bias_spec(), 1, 0, device);
        bq.calibrate(&bias.val(), Calibration::MaxAbs);
        QLinear {
            weight,
            bias,
            wq,
            bq,
            acc: q.acc_spec(1),
            out: q.act_quantizer(true, device),
        }
    }

    /// `x·Ŵ + b̂` before the accumulator cast.
    fn raw(&self, x: Tensor<2>) -> Tensor<2> {
        let w = self.wq.forward(self.weight.val());
        let b = self.bq.forward(self.bias.val()).unsqueeze::<2>();
        x.matmul(w) + b
    }

    /// `[batch, d_in] → [batch, d_out]`.
    pub fn forward(&self, x: QTensor<2>) -> QTensor<2> {
        let y = self.raw(x.value);
        let y = accumulate(y, x.frac, &self.wq, &self.acc, self.wq.path);
        self.out.forward_q(y)
    }

    /// Sets the weight, bias and output binary points from the weights and the input `x`.
    pub fn calibrate(&mut self, x: QTensor<2>, method: Calibration) -> QTensor<2> {
        self.bq.calibrate(&self.bias.val(), Calibration::MaxAbs);
        self.wq.calibrate(&self.weight.val(), Calibration::MaxAbs);
        self.out.calibrate(&self.raw(x.value.clone()), method);
        self.forward(x)
    }
}

/// A fixed-point convolution: `acc = conv(x, W) + b` in the accumulator's format, then the output
/// quantizer. Weight `[out, in/groups, kh, kw]`.
#[derive(Module, Debug)]
pub struct QConv2d {
    /// `[out, in/groups, kh, kw]`.
    pub weight: Param<Tensor<4>>,
    /// `[out]` (zeros and frozen when the layer has no bias, e.g. before BatchNorm).
    pub bias: Option<Param<Tensor<1>>>,
    /// Kernel, stride, dilation, padding, groups.
    #[module(skip)]
    pub shape: ConvShape,
    /// Weight quantizer (per output channel: axis 0).
    pub wq: Quantizer,
    /// Bias quantizer.
    pub bq: Quantizer,
    /// Accumulator format.
    #[module(skip)]
    pub acc: QuantSpec,
    /// Output quantizer.
    pub out: Quantizer,
}

impl QConv2d {
    /// Kaiming-uniform weights; `bias` false for a convolution followed by BatchNorm.
    pub fn new(
        c_in: usize,
        c_out: usize,
        shape: ConvShape,
        bias: bool,
        q: &QuantConfig,
        device: &Device,
    ) -> QConv2d {
        let [kh, kw] = shape.kernel;
        let c_group = c_in / shape.groups;
        let fan_in = (c_group * kh * kw) as f64;
        let bound = (6.0 / fan_in).sqrt();
        let weight = uniform([c_out, c_group, kh, kw], bound, device);
        let wspec = q.weight_spec(0);
        let channels = wspec.channels(&[c_out]).unwrap_or(1);
        let mut wq = q.quantizer(wspec, channels, 0, device);
        wq.calibrate(&weight.val(), Calibration::MaxAbs);
        let bias = bias.then(|| uniform([c_out], 1.0 / fan_in.sqrt(), device));
        let mut bq = q.quantizer(q.bias_spec(), 1, 0, device);
        if let Some(b) = &bias {
            bq.calibrate(&b.val(), Calibration::MaxAbs);
        }
        QConv2d {
            weight,
            bias,
            shape,
            wq,
            bq,
            acc: q.acc_spec(1),
            out: q.act_quantizer(true, device),
        }
    }

    fn raw(&self, x: Tensor<4>) -> Tensor<4> {
        let w = self.wq.forward(self.weight.val());
        let b = self.bias.as_ref().map(|b| self.bq.forward(b.val()));
        conv2d(x, w, b, self.shape)
    }

    /// `[batch, in, h, w] → [batch, out, h', w']`.
    pub fn forward(&self, x: QTensor<4>) -> QTensor<4> {
        let y = self.raw(x.value);
        let y = accumulate(y, x.frac, &self.wq, &self.acc, self.wq.path);
        self.out.forward_q(y)
    }

    /// Sets the weight, bias and output binary points from the weights and the input `x`.
    pub fn calibrate(&mut self, x: QTensor<4>, method: Calibration) -> QTensor<4> {
        self.wq.calibrate(&self.weight.val(), Calibration::MaxAbs);
        if let Some(b) = &self.bias {
            self.bq.calibrate(&b.val(), Calibration::MaxAbs);
        }
        self.out.calibrate(&self.raw(x.value.clone()), method);
        self.forward(x)
    }
}

/// BatchNorm folded into a fixed-point scale and shift: `y = cast(cast(γ')·x + cast(β'))` with
/// `γ' = γ/√(σ²+ε)`, `β' = β − μγ'`. Training uses the batch statistics (and updates the
/// running ones); inference uses the running statistics, as deployment will.
#[derive(Module, Debug)]
pub struct QBatchNorm2d {
    /// γ.
    pub gamma: Param<Tensor<1>>,
    /// β.
    pub beta: Param<Tensor<1>>,
    /// Running mean μ.
    pub running_mean: RunningState<Tensor<1>>,
    /// Running variance σ².
    pub running_var: RunningState<Tensor<1>>,
    /// Quantizer of the folded scale γ' (per channel).
    pub scale_q: Quantizer,
    /// Quantizer of the folded shift β'.
    pub shift_q: Quantizer,
    /// Output quantizer.
    pub out: Quantizer,
    /// Momentum of the running statistics.
    pub momentum: f64,
    /// ε.
    pub epsilon: f64,
}

impl QBatchNorm2d {
    /// γ = 1, β = 0, μ = 0, σ² = 1.
    pub fn new(channels: usize, q: &QuantConfig, device: &Device) -> QBatchNorm2d {
        let ones = Tensor::<1>::ones([channels], device);
        let zeros = Tensor::<1>::zeros([channels], device);
        let (scale_spec, shift_spec) = (q.bn_spec(true), q.bn_spec(false));
        let sc = scale_spec.channels(&[channels]).unwrap_or(1);
        QBatchNorm2d {
            gamma: Param::from_tensor(ones.clone()),
            beta: Param::from_tensor(zeros.clone()),
            running_mean: RunningState::new(zeros),
            running_var: RunningState::new(ones),
            scale_q: q.quantizer(scale_spec, sc, scale_spec.width as i32 - 2, device),
            shift_q: q.quantizer(shift_spec, 1, shift_spec.width as i32 - 3, device),
            out: q.act_quantizer(true, device),
            momentum: 0.1,
            epsilon: 1e-5,
        }
    }

    /// The folded float scale and shift, from batch statistics when training.
    fn folded(&self, x: &Tensor<4>) -> (Tensor<1>, Tensor<1>) {
        let [n, _, h, w] = x.dims();
        let (mean, var) = if x.device().is_autodiff() {
            let (mean, var) = batch_stats(x.clone());
            let m = self.momentum;
            let unbiased = (n * h * w) as f64 / ((n * h * w).max(2) - 1) as f64;
            let device = x.device();
            let rm = self.running_mean.value_sync().to_device(&device) * (1.0 - m)
                + mean.clone().detach() * m;
            let rv = self.running_var.value_sync().to_device(&device) * (1.0 - m)
                + var.clone().detach() * (m * unbiased);
            self.running_mean.update(rm.detach());
            self.running_var.update(rv.detach());
            (mean, var)
        } else {
            return self.folded_inference();
        };
        self.fold(mean, var)
    }

    fn fold(&self, mean: Tensor<1>, var: Tensor<1>) -> (Tensor<1>, Tensor<1>) {
        let scale = self.gamma.val() / (var + self.epsilon).sqrt();
        let shift = self.beta.val() - mean * scale.clone();
        (scale, shift)
    }

    /// The folded float scale and shift from the running statistics (what deployment uses).
    pub fn folded_inference(&self) -> (Tensor<1>, Tensor<1>) {
        self.fold(self.running_mean.value(), self.running_var.value())
    }

    fn apply(&self, x: Tensor<4>, scale: Tensor<1>, shift: Tensor<1>) -> Tensor<4> {
        channel_affine(x, self.scale_q.forward(scale), self.shift_q.forward(shift))
    }

    /// `[batch, c, h, w]`, same shape out.
    pub fn forward(&self, x: QTensor<4>) -> QTensor<4> {
        let (scale, shift) = self.folded(&x.value);
        self.out.forward_q(self.apply(x.value, scale, shift))
    }

    /// Calibrates the scale, shift and output binary points on `x` (batch statistics on an
    /// autodiff device, running statistics otherwise; the statistics are folded once).
    pub fn calibrate(&mut self, x: QTensor<4>, method: Calibration) -> QTensor<4> {
        let (scale, shift) = self.folded(&x.value);
        self.scale_q.calibrate(&scale, Calibration::MaxAbs);
        self.shift_q.calibrate(&shift, Calibration::MaxAbs);
        let y = self.apply(x.value, scale, shift);
        self.out.calibrate(&y, method);
        self.out.forward_q(y)
    }
}

/// ReLU (optionally clipped at `clip`) into an unsigned fixed-point output.
#[derive(Module, Debug)]
pub struct QReLU {
    /// Output quantizer (unsigned).
    pub out: Quantizer,
    /// Upper clip (a clipped ReLU), if any.
    pub clip: Option<f64>,
}

impl QReLU {
    /// Plain ReLU.
    pub fn new(q: &QuantConfig, device: &Device) -> QReLU {
        QReLU {
            out: q.act_quantizer(false, device),
            clip: None,
        }
    }

    fn raw<const D: usize>(&self, x: Tensor<D>) -> Tensor<D> {
        let y = crate::kernels::relu(x);
        match self.clip {
            Some(c) => y.clamp_max(c),
            None => y,
        }
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

/// Residual addition: aligned and added at full precision, then cast to the output format.
#[derive(Module, Debug)]
pub struct QAdd {
    /// Output quantizer.
    pub out: Quantizer,
}

impl QAdd {
    /// A signed output.
    pub fn new(q: &QuantConfig, device: &Device) -> QAdd {
        QAdd {
            out: q.act_quantizer(true, device),
        }
    }

    /// `a + b`.
    pub fn forward<const D: usize>(&self, a: QTensor<D>, b: QTensor<D>) -> QTensor<D> {
        self.out.forward_q(a.value + b.value)
    }

    /// Calibrates the output binary point.
    pub fn calibrate<const D: usize>(
        &mut self,
        a: QTensor<D>,
        b: QTensor<D>,
        method: Calibration,
    ) -> QTensor<D> {
        self.out
            .calibrate(&(a.value.clone() + b.value.clone()), method);
        self.forward(a, b)
    }
}

/// Max pooling: picks values, so they stay on the input's grid (no requantization).
#[derive(Module, Debug)]
pub struct QMaxPool2d {
    /// Window `[height, width]`.
    pub kernel: [usize; 2],
    /// Stride `[vertical, horizontal]`.
    pub stride: [usize; 2],
}

impl QMaxPool2d {
    /// Windows of `kernel` with stride `stride`, no padding.
    pub fn forward(&self, x: QTensor<4>) -> QTensor<4> {
        QTensor {
            value: max_pool2d(x.value, self.kernel, self.stride),
            frac: x.frac,
        }
    }
}

/// `1/n` as a fixed-point constant: `ap_ufixed<1, 1−k>` (exactly `2^−k`) when `n = 2^k`, so
/// the multiply is a shift; else `ap_ufixed<bits, −floor(log2 n)>` (all `bits` significant),
/// rounded to nearest-even.
pub fn reciprocal_fixed(n: usize, bits: u32) -> Result<Fixed, qfx_fixed::Error> {
    let n = n.max(1);
    let (width, int_bits) = if n.is_power_of_two() {
        (1, 1 - n.trailing_zeros() as i32)
    } else {
        (bits, -((n as f64).log2().floor() as i32))
    };
    let f = Format::new(width, int_bits, false, Quant::RndConv, Overflow::Sat, 0)?;
    Fixed::from_f64(1.0 / n as f64, f)
}

/// The reciprocal the model multiplies by: the fixed-point constant when quantizing, else `1/n`.
fn reciprocal_value(n: usize, bits: u32, quantized: bool) -> f64 {
    if !quantized {
        return 1.0 / n as f64;
    }
    reciprocal_fixed(n, bits).map_or(1.0 / n as f64, |v| v.to_f64())
}

/// Average pooling without padding: the exact window sum (a depthwise convolution with ones)
/// times the fixed-point reciprocal of the window size, then the output quantizer.
#[derive(Module, Debug)]
pub struct QAvgPool2d {
    /// Window `[height, width]`.
    pub kernel: [usize; 2],
    /// Stride `[vertical, horizontal]`.
    pub stride: [usize; 2],
    /// Output quantizer.
    pub out: Quantizer,
    /// Significant bits of the reciprocal when `kernel²` is not a power of two.
    pub recip_bits: u32,
}

impl QAvgPool2d {
    /// A signed output; reciprocals get the activation width in significant bits.
    pub fn new(
        kernel: [usize; 2],
        stride: [usize; 2],
        q: &QuantConfig,
        device: &Device,
    ) -> QAvgPool2d {
        let out = q.act_quantizer(true, device);
        let recip_bits = out.spec.width;
        QAvgPool2d {
            kernel,
            stride,
            out,
            recip_bits,
        }
    }

    /// `1/(kh·kw)` as the hardware stores it (see [`reciprocal_fixed`]).
    pub fn reciprocal_fixed(&self) -> Result<Fixed, qfx_fixed::Error> {
        reciprocal_fixed(self.kernel[0] * self.kernel[1], self.recip_bits)
    }

    fn raw(&self, x: Tensor<4>) -> Tensor<4> {
        let c = x.dims()[1];
        let [kh, kw] = self.kernel;
        let ones = Tensor::<4>::ones([c, 1, kh, kw], &x.device());
        let window = ConvShape {
            kernel: self.kernel,
            stride: self.stride,
            dilation: [1, 1],
            padding: [0; 4],
            groups: c,
        };
        let sums = conv2d(x, ones, None, window);
        sums * reciprocal_value(kh * kw, self.recip_bits, self.out.enabled)
    }

    /// `[batch, c, h, w] → [batch, c, oh, ow]`.
    pub fn forward(&self, x: QTensor<4>) -> QTensor<4> {
        self.out.forward_q(self.raw(x.value))
    }

    /// Calibrates the output binary point.
    pub fn calibrate(&mut self, x: QTensor<4>, method: Calibration) -> QTensor<4> {
        self.out.calibrate(&self.raw(x.value.clone()), method);
        self.forward(x)
    }
}

/// Global average pooling: the window sum times `1/(h·w)`, which is an exact shift for a
/// power-of-two window and otherwise the reciprocal rounded to `recip_bits` significant bits;
/// then the output quantizer.
#[derive(Module, Debug)]
pub struct QGlobalAvgPool {
    /// Output quantizer.
    pub out: Quantizer,
    /// Significant bits of the reciprocal for windows that are not powers of two.
    pub recip_bits: u32,
}

impl QGlobalAvgPool {
    /// A signed output; reciprocals get the activation width in significant bits.
    pub fn new(q: &QuantConfig, device: &Device) -> QGlobalAvgPool {
        let out = q.act_quantizer(true, device);
        let recip_bits = out.spec.width;
        QGlobalAvgPool { out, recip_bits }
    }

    /// The multiplier `1/n` as the hardware stores it (see [`reciprocal_fixed`]).
    pub fn reciprocal(&self, n: usize) -> f64 {
        reciprocal_value(n, self.recip_bits, self.out.enabled)
    }

    /// `1/n` as a fixed-point constant (see [`reciprocal_fixed`]).
    pub fn reciprocal_fixed(&self, n: usize) -> Result<Fixed, qfx_fixed::Error> {
        reciprocal_fixed(n, self.recip_bits)
    }

    fn raw(&self, x: Tensor<4>) -> Tensor<2> {
        let [n, c, h, w] = x.dims();
        x.reshape([n, c, h * w]).sum_dim(2).reshape([n, c]) * self.reciprocal(h * w)
    }

    /// `[batch, c, h, w] → [batch, c]`.
    pub fn forward(&self, x: QTensor<4>) -> QTensor<2> {
        self.out.forward_q(self.raw(x.value))
    }

    /// Calibrates the output binary point.
    pub fn calibrate(&mut self, x: QTensor<4>, method: Calibration) -> QTensor<2> {
        self.out.calibrate(&self.raw(x.value.clone()), method);
        self.forward(x)
    }
}
