//! The quantized-model description shared by training export, the integer engine and the HLS
//! emitter: every layer once, with its formats and its constants as integer codes.
//!
//! A [`Model`] is a versioned JSON document. Layers are listed in execution order; each names
//! its inputs (earlier layers, or [`INPUT`]) and the `ap_fixed` format its result is assigned
//! to. Constants are [`Codes`]: integer codes with one format per channel, so no decimal float
//! ever stands between training and hardware. [`Model::validate`] checks shapes, formats and
//! references; [`Model::from_json`] refuses anything inconsistent or from a newer version.
//!
//! Arithmetic semantics (what the engine and the generated C++ both compute):
//! - `Dense`/`Conv2d`: the accumulator (format per output channel) starts as the bias cast to
//!   it, then `acc += w·x` is assigned back to the accumulator after every product, in the
//!   order of [`AccumulationOrder`]; the accumulator is then cast to the layer's output format.
//! - `BatchNorm`: `out = cast(scale[c]·x + shift[c])`, the product and sum at full precision.
//! - `Add`: `out = cast(a + b)` at full precision. `Relu`: `out = cast(x > 0 ? x : 0)`.
//! - `MaxPool2d`, `Shortcut`, `Flatten` move values without changing them (output format =
//!   input format). `GlobalAvgPool`: `out = cast(sum · reciprocal)` with the sum at full precision.

use std::collections::HashSet;
use std::fmt;

use qfx_fixed::{Fixed, Format, KHot};
use serde::{Deserialize, Serialize};

pub mod cost;
mod file;

pub use file::IR_FILE;
pub use qfx_fs::write_atomic;

/// Version written by this crate; newer documents are refused. Version 2 added `sign` and
/// `prelu` (binarized networks); version-1 documents read unchanged.
pub const IR_VERSION: u32 = 2;

/// The name by which layers refer to the network input.
pub const INPUT: &str = "input";

/// A quantized network.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Model {
    /// Format version ([`IR_VERSION`]).
    pub version: u32,
    /// A name for the network (sanitized before it becomes an identifier anywhere).
    pub name: String,
    /// Shape of one input sample (no batch dimension), e.g. `[1, 28, 28]`.
    pub input_shape: Vec<usize>,
    /// Layers in execution order.
    pub layers: Vec<Layer>,
    /// How 8-bit image pixels become the network's `f32` input, when the model was trained on
    /// images (the integer engine, the testbench inputs and training all use [`Preprocess::apply`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub preprocess: Option<Preprocess>,
}

/// Pixel normalization: `x = (p / 255 − mean[c]) / std[c]` in `f32`, channel by channel.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Preprocess {
    /// Mean per channel (or one for all channels), in units of the full pixel range.
    pub mean: Vec<f32>,
    /// Standard deviation per channel (or one for all channels).
    pub std: Vec<f32>,
}

impl Preprocess {
    /// One normalization for every channel.
    pub fn uniform(mean: f32, std: f32) -> Preprocess {
        Preprocess {
            mean: vec![mean],
            std: vec![std],
        }
    }

    /// Normalizes the row-major `[channels, h, w]` pixels of one or more images.
    pub fn apply(&self, pixels: &[u8], shape: [usize; 3]) -> Vec<f32> {
        let plane = shape[1] * shape[2];
        pixels
            .iter()
            .enumerate()
            .map(|(i, &p)| {
                let c = (i / plane.max(1)) % shape[0].max(1);
                let (m, s) = (self.pick(&self.mean, c), self.pick(&self.std, c));
                (p as f32 / 255.0 - m) / s
            })
            .collect()
    }

    fn pick(&self, v: &[f32], c: usize) -> f32 {
        if v.len() == 1 {
            v[0]
        } else {
            v[c]
        }
    }

    /// Checks the values are finite (std positive) and there is one per channel or one in all.
    pub fn validate(&self, channels: usize) -> Result<(), IrError> {
        for (what, v) in [("mean", &self.mean), ("std", &self.std)] {
            if v.len() != 1 && v.len() != channels {
                return Err(IrError::new(format!(
                    "preprocess {what} has {} values for {channels} channels",
                    v.len()
                )));
            }
            if v.iter().any(|x| !x.is_finite()) {
                return Err(IrError::new(format!("preprocess {what} is not finite")));
            }
        }
        if self.std.iter().any(|&s| s <= 0.0) {
            return Err(IrError::new("preprocess std must be positive"));
        }
        Ok(())
    }
}

/// One layer: what it computes, from which inputs, into which format.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Layer {
    /// Unique name.
    pub name: String,
    /// Names of the layers (or [`INPUT`]) it reads.
    pub inputs: Vec<String>,
    /// The operation.
    pub op: Op,
    /// Format the result is assigned to.
    pub output: Format,
}

/// Order in which a sum of products is accumulated (it matters when the accumulator rounds
/// or saturates).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum AccumulationOrder {
    /// Bias first, then input channels (outermost), kernel rows, kernel columns (innermost);
    /// for `Dense`, input features in order.
    #[default]
    BiasThenInputChannelMajor,
}

/// Integer codes of a constant tensor, with the format of each channel along `axis` (or one
/// format for the whole tensor).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Codes {
    /// Shape of the tensor.
    pub shape: Vec<usize>,
    /// The axis the formats run along, or `None` for one format.
    pub axis: Option<usize>,
    /// One format per index along `axis` (or exactly one).
    pub formats: Vec<Format>,
    /// Row-major integer codes.
    pub codes: Vec<i64>,
    /// The K-hot constraint every code satisfies (multiplier-free constants), if any. Absent
    /// in documents written before it existed, which read as unconstrained.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub khot: Option<KHot>,
}

impl Codes {
    /// Unconstrained codes (no K-hot constraint).
    pub fn new(
        shape: Vec<usize>,
        axis: Option<usize>,
        formats: Vec<Format>,
        codes: Vec<i64>,
    ) -> Codes {
        Codes {
            shape,
            axis,
            formats,
            codes,
            khot: None,
        }
    }

    /// Format of the element at flat index `i`.
    pub fn format_of(&self, i: usize) -> Format {
        match self.axis {
            None => self.formats[0],
            Some(a) => {
                let inner: usize = self.shape[a + 1..].iter().product();
                self.formats[(i / inner) % self.shape[a]]
            }
        }
    }

    /// The element at flat index `i` as a fixed-point value.
    pub fn value(&self, i: usize) -> Fixed {
        let f = self.format_of(i);
        Fixed::from_code(self.codes[i] as i128, f).unwrap_or_else(|_| Fixed::zero(f))
    }

    fn validate(&self, what: &str) -> Result<(), IrError> {
        let n = elements(&self.shape)
            .ok_or_else(|| IrError::new(format!("{what}: bad shape {:?}", self.shape)))?;
        if self.codes.len() != n {
            return Err(IrError::new(format!(
                "{what}: {} codes for shape {:?}",
                self.codes.len(),
                self.shape
            )));
        }
        let want = match self.axis {
            None => 1,
            Some(a) => *self.shape.get(a).ok_or_else(|| {
                IrError::new(format!("{what}: axis {a} outside shape {:?}", self.shape))
            })?,
        };
        if self.formats.len() != want {
            return Err(IrError::new(format!(
                "{what}: {} formats, expected {want}",
                self.formats.len()
            )));
        }
        for (i, &c) in self.codes.iter().enumerate() {
            let f = self.format_of(i);
            if (c as i128) < f.min_code() || (c as i128) > f.max_code() {
                return Err(IrError::new(format!(
                    "{what}: code {c} at {i} does not fit {f}"
                )));
            }
        }
        if let Some(k) = self.khot {
            k.validate()
                .map_err(|e| IrError::new(format!("{what}: {e}")))?;
            if let Some((i, &c)) = self
                .codes
                .iter()
                .enumerate()
                .find(|(_, &c)| !k.admits(c as i128))
            {
                return Err(IrError::new(format!(
                    "{what}: code {c} at {i} has {} non-zero digits, but the tensor is declared {k}",
                    k.digits(c as i128)
                )));
            }
        }
        Ok(())
    }
}

/// The operations, declared once: the engine and the emitter match on this exhaustively.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum Op {
    /// Assign the input to the output format (the network's input quantizer).
    Quantize,
    /// Fully connected: weight `[in, out]`, bias `[out]`.
    Dense {
        /// `[in, out]`, formats per output (axis 1) or one.
        weight: Codes,
        /// `[out]`.
        bias: Option<Codes>,
        /// Accumulator format per output, or one.
        accumulator: Vec<Format>,
        /// Summation order.
        #[serde(default)]
        order: AccumulationOrder,
    },
    /// 2-D convolution, square kernel, zero padding: weight `[out, in, k, k]`.
    Conv2d {
        /// `[out, in, k, k]`, formats per output channel (axis 0) or one.
        weight: Codes,
        /// `[out]`.
        bias: Option<Codes>,
        /// Stride.
        stride: usize,
        /// Zero padding on each side.
        padding: usize,
        /// Accumulator format per output channel, or one.
        accumulator: Vec<Format>,
        /// Summation order.
        #[serde(default)]
        order: AccumulationOrder,
    },
    /// Folded BatchNorm: `cast(scale[c]·x + shift[c])`, channels on axis 0 of `[c, h, w]`.
    BatchNorm {
        /// `[c]`.
        scale: Codes,
        /// `[c]`.
        shift: Codes,
    },
    /// `max(x, 0)` (clipped at `clip` when given).
    Relu {
        /// Upper clip, if any.
        clip: Option<f64>,
    },
    /// Sum of the two inputs.
    Add,
    /// `kernel × kernel` max pooling with stride `kernel`.
    MaxPool2d {
        /// Window and stride.
        kernel: usize,
    },
    /// Mean over `h × w`: the sum times `reciprocal` (exact `2^-k` or rounded `1/(h·w)`).
    GlobalAvgPool {
        /// The multiplier as a fixed-point constant.
        reciprocal: Codes,
    },
    /// `[c, h, w] → [c·h·w]`.
    Flatten,
    /// ResNet option-A shortcut: subsample by `stride`, then append `pad_channels` zero channels.
    Shortcut {
        /// Subsampling stride.
        stride: usize,
        /// Zero channels appended.
        pad_channels: usize,
    },
    /// Binarization: `+1` where `x ≥ 0`, else `−1`, assigned to the output format (the
    /// activations of a binarized network; `ap_int<2>` holds both exactly).
    Sign,
    /// PReLU with one slope per channel: `x` where `x ≥ 0`, else `slope[c]·x` (exact), assigned to
    /// the output format; channels on axis 0 of `[c, …]`.
    Prelu {
        /// `[c]`, formats per channel (axis 0) or one.
        slope: Codes,
    },
}

impl Op {
    /// The operation's name, as the `kind` tag of the JSON document spells it.
    pub fn kind(&self) -> &'static str {
        match self {
            Op::Quantize => "quantize",
            Op::Dense { .. } => "dense",
            Op::Conv2d { .. } => "conv2d",
            Op::BatchNorm { .. } => "batch_norm",
            Op::Relu { .. } => "relu",
            Op::Add => "add",
            Op::MaxPool2d { .. } => "max_pool2d",
            Op::GlobalAvgPool { .. } => "global_avg_pool",
            Op::Flatten => "flatten",
            Op::Shortcut { .. } => "shortcut",
            Op::Sign => "sign",
            Op::Prelu { .. } => "prelu",
        }
    }
}

/// An inconsistent or unsupported IR document.
#[derive(Clone, Debug, PartialEq)]
pub struct IrError {
    /// What is wrong.
    pub message: String,
}

impl IrError {
    fn new(message: impl Into<String>) -> IrError {
        IrError {
            message: message.into(),
        }
    }
}

impl fmt::Display for IrError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "invalid model IR: {}", self.message)
    }
}

impl std::error::Error for IrError {}

impl Model {
    /// Parses and validates a JSON document.
    pub fn from_json(text: &str) -> Result<Model, IrError> {
        #[derive(Deserialize)]
        struct Version {
            version: u32,
        }
        let v: Version = serde_json::from_str(text)
            .map_err(|e| IrError::new(format!("not a model document: {e}")))?;
        if v.version > IR_VERSION {
            return Err(IrError::new(format!(
                "version {} is newer than this qfx understands ({IR_VERSION}); upgrade qfx",
                v.version
            )));
        }
        let model: Model = serde_json::from_str(text).map_err(|e| IrError::new(e.to_string()))?;
        model.validate()?;
        Ok(model)
    }

    /// Pretty JSON.
    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(self).expect("IR serializes")
    }

    /// Output shape of every layer (per sample), after checking the whole document.
    pub fn validate(&self) -> Result<Vec<Vec<usize>>, IrError> {
        if self.version == 0 || self.version > IR_VERSION {
            return Err(IrError::new(format!(
                "unsupported version {}",
                self.version
            )));
        }
        if self.layers.is_empty() {
            return Err(IrError::new("no layers"));
        }
        if elements(&self.input_shape).is_none() {
            return Err(IrError::new(format!(
                "input shape {:?} is empty or too large",
                self.input_shape
            )));
        }
        if let Some(p) = &self.preprocess {
            if self.input_shape.len() != 3 {
                return Err(IrError::new(format!(
                    "image preprocessing needs a [c, h, w] input, not {:?}",
                    self.input_shape
                )));
            }
            p.validate(self.input_shape[0])?;
        }
        let mut names: HashSet<&str> = HashSet::new();
        let mut shapes: Vec<Vec<usize>> = Vec::new();
        let shape_of = |name: &str, shapes: &[Vec<usize>]| -> Option<Vec<usize>> {
            if name == INPUT {
                return Some(self.input_shape.clone());
            }
            self.layers
                .iter()
                .position(|l| l.name == name)
                .and_then(|i| shapes.get(i).cloned())
        };
        for layer in &self.layers {
            let err = |m: String| IrError::new(format!("layer `{}`: {m}", layer.name));
            if layer.name == INPUT || !names.insert(&layer.name) {
                return Err(err("duplicate or reserved name".into()));
            }
            let ins: Vec<Vec<usize>> = layer
                .inputs
                .iter()
                .map(|i| {
                    shape_of(i, &shapes)
                        .ok_or_else(|| err(format!("input `{i}` is not an earlier layer")))
                })
                .collect::<Result<_, _>>()?;
            let arity = if matches!(layer.op, Op::Add) { 2 } else { 1 };
            if ins.len() != arity {
                return Err(err(format!("takes {arity} input(s), has {}", ins.len())));
            }
            let x = &ins[0];
            let out = match &layer.op {
                Op::Quantize | Op::Relu { .. } | Op::Sign => x.clone(),
                Op::Dense {
                    weight,
                    bias,
                    accumulator,
                    ..
                } => {
                    weight.validate("weight").map_err(|e| err(e.message))?;
                    let [d_in, d_out] = weight.shape[..] else {
                        return Err(err(format!(
                            "dense weight must be [in, out], is {:?}",
                            weight.shape
                        )));
                    };
                    if !matches!(weight.axis, None | Some(1)) {
                        return Err(err(
                            "dense weight formats must be one, or one per output (axis 1)".into(),
                        ));
                    }
                    if x != &[d_in] {
                        return Err(err(format!(
                            "input {x:?} does not match weight [in={d_in}, out]"
                        )));
                    }
                    check_bias_acc(bias, accumulator, d_out).map_err(err)?;
                    vec![d_out]
                }
                Op::Conv2d {
                    weight,
                    bias,
                    stride,
                    padding,
                    accumulator,
                    ..
                } => {
                    weight.validate("weight").map_err(|e| err(e.message))?;
                    let [c_out, c_in, k, k2] = weight.shape[..] else {
                        return Err(err(format!(
                            "conv weight must be [out, in, k, k], is {:?}",
                            weight.shape
                        )));
                    };
                    if !matches!(weight.axis, None | Some(0)) {
                        return Err(err(
                            "conv weight formats must be one, or one per output channel (axis 0)"
                                .into(),
                        ));
                    }
                    if k != k2 || *stride == 0 {
                        return Err(err("kernel must be square and stride positive".into()));
                    }
                    let [c, h, w] = x[..] else {
                        return Err(err(format!("input must be [c, h, w], is {x:?}")));
                    };
                    let padded = |d: usize| padding.checked_mul(2).and_then(|p| p.checked_add(d));
                    let (Some(ph), Some(pw)) = (padded(h), padded(w)) else {
                        return Err(err(format!("padding {padding} is too large")));
                    };
                    if c != c_in || ph < k || pw < k {
                        return Err(err(format!(
                            "input {x:?} does not fit weight {:?}",
                            weight.shape
                        )));
                    }
                    check_bias_acc(bias, accumulator, c_out).map_err(err)?;
                    vec![c_out, (ph - k) / stride + 1, (pw - k) / stride + 1]
                }
                Op::BatchNorm { scale, shift } => {
                    scale.validate("scale").map_err(|e| err(e.message))?;
                    shift.validate("shift").map_err(|e| err(e.message))?;
                    if x.is_empty() || scale.shape != [x[0]] || shift.shape != [x[0]] {
                        return Err(err(format!(
                            "scale/shift must be [{}]",
                            x.first().copied().unwrap_or(0)
                        )));
                    }
                    x.clone()
                }
                Op::Prelu { slope } => {
                    slope.validate("slope").map_err(|e| err(e.message))?;
                    if x.is_empty() || slope.shape != [x[0]] {
                        return Err(err(format!(
                            "slope must be [{}]",
                            x.first().copied().unwrap_or(0)
                        )));
                    }
                    x.clone()
                }
                Op::Add => {
                    if ins[0] != ins[1] {
                        return Err(err(format!("adds shapes {:?} and {:?}", ins[0], ins[1])));
                    }
                    x.clone()
                }
                Op::MaxPool2d { kernel } => {
                    let [c, h, w] = x[..] else {
                        return Err(err(format!("input must be [c, h, w], is {x:?}")));
                    };
                    if *kernel == 0 || h < *kernel || w < *kernel {
                        return Err(err("bad pooling window".into()));
                    }
                    vec![c, h / kernel, w / kernel]
                }
                Op::GlobalAvgPool { reciprocal } => {
                    reciprocal
                        .validate("reciprocal")
                        .map_err(|e| err(e.message))?;
                    if reciprocal.codes.len() != 1 {
                        return Err(err("the reciprocal must be a single constant".into()));
                    }
                    let [c, _, _] = x[..] else {
                        return Err(err(format!("input must be [c, h, w], is {x:?}")));
                    };
                    vec![c]
                }
                Op::Flatten => vec![elements(x).unwrap_or(0)],
                Op::Shortcut {
                    stride,
                    pad_channels,
                } => {
                    let [c, h, w] = x[..] else {
                        return Err(err(format!("input must be [c, h, w], is {x:?}")));
                    };
                    if *stride == 0 {
                        return Err(err("stride must be positive".into()));
                    }
                    let channels = c.checked_add(*pad_channels).ok_or_else(|| {
                        err(format!("{pad_channels} padding channels is too many"))
                    })?;
                    vec![channels, h.div_ceil(*stride), w.div_ceil(*stride)]
                }
            };
            // Every tensor must be non-empty and of a size that fits in memory arithmetic.
            if elements(&out).is_none() {
                return Err(err(format!("output shape {out:?} is empty or too large")));
            }
            if matches!(
                layer.op,
                Op::Flatten | Op::MaxPool2d { .. } | Op::Shortcut { .. }
            ) {
                let from = self
                    .layers
                    .iter()
                    .find(|l| l.name == layer.inputs[0])
                    .map(|l| l.output);
                if from.is_some_and(|f| f != layer.output) {
                    return Err(err(
                        "moves values, so its output format must be its input's".into(),
                    ));
                }
            }
            shapes.push(out);
        }
        Ok(shapes)
    }
}

/// The number of elements of `shape`: `None` for an empty, zero-sized or overflowing shape.
fn elements(shape: &[usize]) -> Option<usize> {
    if shape.is_empty() || shape.contains(&0) {
        return None;
    }
    shape.iter().try_fold(1usize, |acc, &d| acc.checked_mul(d))
}

fn check_bias_acc(
    bias: &Option<Codes>,
    accumulator: &[Format],
    outputs: usize,
) -> Result<(), String> {
    if let Some(b) = bias {
        b.validate("bias").map_err(|e| e.message)?;
        if b.shape != [outputs] {
            return Err(format!("bias must be [{outputs}], is {:?}", b.shape));
        }
    }
    if accumulator.len() != 1 && accumulator.len() != outputs {
        return Err(format!(
            "{} accumulator formats for {outputs} outputs",
            accumulator.len()
        ));
    }
    Ok(())
}
