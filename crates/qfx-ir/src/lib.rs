//! The quantized-model description shared by training export, the integer engine and the HLS
//! emitter: every layer once, with its formats and its constants as integer codes.
//!
//! A [`Model`] is a versioned JSON document. Layers are listed in execution order; each names
//! its inputs (earlier layers, or [`INPUT`]) and the `ap_fixed` format its result is assigned
//! to. Constants are [`Codes`]: integer codes with one format per channel, so no decimal float
//! ever stands between training and hardware. [`Model::resolve`] checks shapes, formats and
//! references once and returns the resolved [`Graph`] every consumer walks;
//! [`Model::from_json`] refuses anything inconsistent or from a newer version.
//!
//! Arithmetic semantics (what the engine and the generated C++ both compute):
//! - `Dense`/`Conv2d`/`Conv1d`: the accumulator (format per output channel) starts as the bias
//!   cast to it, then `acc += w·x` is assigned back to the accumulator after every product, in
//!   the order of [`AccumulationOrder`] (padded taps skipped); the accumulator is then cast to
//!   the layer's output format. [`Mac`] says which input each term reads.
//! - `BatchNorm`: `out = cast(scale[c]·x + shift[c])`, the product and sum at full precision.
//! - `Add`: `out = cast(a + b)`, `Multiply`: `out = cast(a·b)`, both at full precision.
//!   `Relu`: `out = cast(x > 0 ? x : 0)`, or the clip ([`relu_clip`]) where `x` exceeds it.
//!   `HardTanh`: `out = cast(x < min ? min : x > max ? max : x)`, the bounds as
//!   [`clip_constant`] holds them. `HardSigmoid`: `t = alpha·x + beta` exact, then
//!   `out = cast(t < 0 ? 0 : t > 1 ? 1 : t)`. `Sign`: `out = cast(x ≥ 0 ? +1 : −1)`.
//!   `Prelu`: `out = cast(x ≥ 0 ? x : slope[c]·x)`, exact product. `Lookup`: the table's code
//!   at [`lookup_index`] of the input code (no assignment: the table holds output codes).
//! - `MaxPool2d/1d`, `GlobalMaxPool`, `Shortcut`, `Flatten`, `Reshape` move values without
//!   changing them (output format = input format). `AvgPool2d/1d`, `GlobalAvgPool`:
//!   `out = cast(sum · reciprocal)` with the window sum exact ([`window_sum_format`]); [`Window`]
//!   says which inputs a window reads. `Concat`: each value assigned to the output format.
//! - Only `Quantize` and `Flatten` read the raw network input: they convert its `f32` values to
//!   their output format as the `ap_fixed` float constructor does.

use std::fmt;

use qfx_fixed::{Fixed, Format, KHot};
use serde::{Deserialize, Serialize};

mod file;
mod graph;
mod op;

pub use file::{CHECKPOINT_KEY, IR_FILE};
pub use graph::{
    conv_output, per_channel, pool_output, ConvGeometry, Graph, Mac, MacGeometry, Node, Operand,
    Window,
};
pub use op::{
    clip_constant, lookup_index, relu_clip, sign_value, window_sum_format, Op, Padding, Pair,
};

/// Version written by this crate; newer documents are refused. Version 2 added `sign` and
/// `prelu` (binarized networks); version 3 the operations of user-described networks
/// (`conv1d`, general convolutions and pooling, `concat`, `multiply`, `reshape`, hard and
/// table activations). Older documents read unchanged.
pub const IR_VERSION: u32 = 3;

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
    /// How the stored samples become the network's `f32` input: 8-bit image pixels normalized
    /// per channel, or a table's values standardized per feature (the integer engine, the
    /// testbench inputs and training all use [`Preprocess::apply`] or
    /// [`Preprocess::apply_values`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub preprocess: Option<Preprocess>,
}

/// What a [`Preprocess`] reads.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PreprocessInput {
    /// 8-bit image pixels, divided by 255 first (every document before tables existed).
    #[default]
    Pixels,
    /// `f32` values as stored (a table's features, a signal's samples).
    Values,
}

impl PreprocessInput {
    fn is_pixels(&self) -> bool {
        *self == PreprocessInput::Pixels
    }
}

/// Input normalization, channel by channel (`c` = the index along the sample's first axis: an
/// image's colour channel, a table's feature, a signal's channel), in `f32`:
/// `x = (p / 255 − mean[c]) / std[c]` for image pixels `p`, `x = (v − mean[c]) / std[c]` for
/// stored values `v` (a table's per-feature standardization, computed on its training split).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Preprocess {
    /// Mean per channel (or one for all channels); for pixels, in units of the full pixel
    /// range.
    pub mean: Vec<f32>,
    /// Standard deviation per channel (or one for all channels).
    pub std: Vec<f32>,
    /// What the samples are: pixels (the default, left out of the document) or values.
    #[serde(default, skip_serializing_if = "PreprocessInput::is_pixels")]
    pub input: PreprocessInput,
}

impl Preprocess {
    /// One normalization of pixels for every channel.
    pub fn uniform(mean: f32, std: f32) -> Preprocess {
        Preprocess {
            mean: vec![mean],
            std: vec![std],
            input: PreprocessInput::Pixels,
        }
    }

    /// The standardization of stored values, one mean and standard deviation per feature (or
    /// one for all).
    pub fn values(mean: Vec<f32>, std: Vec<f32>) -> Preprocess {
        Preprocess {
            mean,
            std,
            input: PreprocessInput::Values,
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
                let (m, s) = (per_channel(&self.mean, c), per_channel(&self.std, c));
                (p as f32 / 255.0 - m) / s
            })
            .collect()
    }

    /// Standardizes the row-major values of one or more samples of shape `shape` (`[features]`,
    /// `[channels, length]`, …): `(v − mean[c]) / std[c]` with `c` the index along the first
    /// axis.
    pub fn apply_values(&self, values: &[f32], shape: &[usize]) -> Vec<f32> {
        let channels = shape.first().copied().unwrap_or(1).max(1);
        let plane: usize = shape.iter().skip(1).product::<usize>().max(1);
        values
            .iter()
            .enumerate()
            .map(|(i, &v)| {
                let c = (i / plane) % channels;
                let (m, s) = (per_channel(&self.mean, c), per_channel(&self.std, c));
                (v - m) / s
            })
            .collect()
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

    /// The element channel `c` uses of a per-channel constant that holds one value per
    /// channel, or one value for every channel (shape `[1]`).
    pub fn channel_index(&self, c: usize) -> usize {
        if self.codes.len() == 1 {
            0
        } else {
            c
        }
    }

    /// The element at flat index `i` as a fixed-point value.
    pub fn value(&self, i: usize) -> Fixed {
        let f = self.format_of(i);
        Fixed::from_code(self.codes[i] as i128, f).unwrap_or_else(|_| Fixed::zero(f))
    }

    pub(crate) fn validate(&self, what: &str) -> Result<(), IrError> {
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

/// An inconsistent or unsupported IR document.
#[derive(Clone, Debug, PartialEq)]
pub struct IrError {
    /// What is wrong.
    pub message: String,
}

impl IrError {
    pub(crate) fn new(message: impl Into<String>) -> IrError {
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
        Ok(Model::from_json_with_checkpoint(text)?.0)
    }

    /// [`Model::from_json`], also returning the training checkpoint the document records it
    /// was exported from ([`CHECKPOINT_KEY`]), if any.
    pub fn from_json_with_checkpoint(text: &str) -> Result<(Model, Option<String>), IrError> {
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
        let (body, checkpoint) = file::split_checkpoint(text)?;
        let model: Model = serde_json::from_str(body.as_deref().unwrap_or(text))
            .map_err(|e| IrError::new(e.to_string()))?;
        model.validate()?;
        Ok((model, checkpoint))
    }

    /// Pretty JSON.
    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(self).expect("IR serializes")
    }

    /// Checks the whole document: shapes, formats, references, constants. [`Model::resolve`]
    /// does the same and also returns the resolved graph.
    pub fn validate(&self) -> Result<(), IrError> {
        self.resolve().map(drop)
    }
}

/// The number of elements of `shape`: `None` for an empty, zero-sized or overflowing shape.
pub(crate) fn elements(shape: &[usize]) -> Option<usize> {
    if shape.is_empty() || shape.contains(&0) {
        return None;
    }
    shape.iter().try_fold(1usize, |acc, &d| acc.checked_mul(d))
}
