//! The operations: each declared once, with the facts about it that every consumer shares
//! (its name, how many operands it reads, whether it only moves values, and the constants its
//! semantics fix). Shapes are inferred in `graph.rs`.

use qfx_fixed::{Fixed, Format, Overflow, Quant};
use serde::{Deserialize, Serialize};

use crate::{AccumulationOrder, Codes};

/// The operations, declared once: the engine and the emitter match on this exhaustively.
///
/// Shapes are per sample: vectors `[n]`, signals `[c, length]`, images `[c, h, w]`; channels are
/// axis 0. One-dimensional operations (`Conv1d`, `MaxPool1d`, `AvgPool1d`) read signals and
/// share their geometry with the 2-D ones (a signal is an image of height 1).
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
    /// 2-D convolution with zero padding: weight `[out, in/groups, kh, kw]`; output channel `o`
    /// of group `g = o / (out/groups)` reads input channels `g·in/groups ..` of that group.
    Conv2d {
        /// `[out, in/groups, kh, kw]`, formats per output channel (axis 0) or one.
        weight: Codes,
        /// `[out]`.
        bias: Option<Codes>,
        /// Stride, one for both axes or `[vertical, horizontal]`.
        stride: Pair,
        /// Zero padding: one for every side, or `[top, bottom, left, right]`.
        padding: Padding,
        /// Dilation, one for both axes or `[vertical, horizontal]` (1: none).
        #[serde(default, skip_serializing_if = "Pair::is_one")]
        dilation: Pair,
        /// Channel groups (1: ordinary; `in`: depthwise).
        #[serde(default = "one", skip_serializing_if = "is_one")]
        groups: usize,
        /// Accumulator format per output channel, or one.
        accumulator: Vec<Format>,
        /// Summation order.
        #[serde(default)]
        order: AccumulationOrder,
    },
    /// 1-D convolution over `[c, length]`, zero padding: weight `[out, in/groups, k]`.
    Conv1d {
        /// `[out, in/groups, k]`, formats per output channel (axis 0) or one.
        weight: Codes,
        /// `[out]`.
        bias: Option<Codes>,
        /// Stride.
        stride: usize,
        /// Zero padding `[left, right]`.
        padding: [usize; 2],
        /// Dilation (1: none).
        #[serde(default = "one", skip_serializing_if = "is_one")]
        dilation: usize,
        /// Channel groups.
        #[serde(default = "one", skip_serializing_if = "is_one")]
        groups: usize,
        /// Accumulator format per output channel, or one.
        accumulator: Vec<Format>,
        /// Summation order.
        #[serde(default)]
        order: AccumulationOrder,
    },
    /// Folded BatchNorm: `cast(scale[c]·x + shift[c])`, channels on axis 0.
    BatchNorm {
        /// `[c]`.
        scale: Codes,
        /// `[c]`.
        shift: Codes,
    },
    /// `max(x, 0)` (clipped at `clip` when given; see [`relu_clip`]).
    Relu {
        /// Upper clip, if any.
        clip: Option<f64>,
    },
    /// `min(max(x, min), max)` (the bounds held as [`clip_constant`] says), assigned to the
    /// output format.
    HardTanh {
        /// Lower bound.
        min: f64,
        /// Upper bound.
        max: f64,
    },
    /// `cast(min(max(alpha·x + beta, 0), 1))`, the product and sum exact.
    HardSigmoid {
        /// `[1]`: the slope.
        alpha: Codes,
        /// `[1]`: the offset.
        beta: Codes,
    },
    /// A function by table (sigmoid, tanh…): the input code `c` selects entry
    /// `clamp((c >> shift) − offset, 0, n − 1)` (a negative `shift` shifts left), whose code is
    /// the output: the table's format is the layer's output format, so every back end returns
    /// the same codes.
    Lookup {
        /// What the table holds (`sigmoid`, `tanh`), for people; the numbers are the table.
        function: String,
        /// `[n]` output codes, one format (the output format).
        table: Codes,
        /// Right shift of the input code (left for negative values).
        shift: i32,
        /// Subtracted from the shifted code.
        offset: i64,
    },
    /// Sum of the two inputs.
    Add,
    /// Product of the two inputs (element-wise, exact), assigned to the output format.
    Multiply,
    /// The inputs side by side along the channel axis (axis 0), each value assigned to the
    /// output format; every other axis must agree.
    Concat,
    /// Max pooling without padding: output `(h − kh)/sh + 1` by `(w − kw)/sw + 1`.
    MaxPool2d {
        /// Window, one for both axes or `[height, width]`.
        kernel: Pair,
        /// Stride (default: the window).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        stride: Option<Pair>,
    },
    /// Max pooling over `[c, length]` without padding.
    MaxPool1d {
        /// Window.
        kernel: usize,
        /// Stride (default: the window).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        stride: Option<usize>,
    },
    /// Average pooling without padding: the exact window sum times `reciprocal`.
    AvgPool2d {
        /// Window, one for both axes or `[height, width]`.
        kernel: Pair,
        /// Stride (default: the window).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        stride: Option<Pair>,
        /// The multiplier as a fixed-point constant (`2^-k` or a rounded `1/(kh·kw)`).
        reciprocal: Codes,
    },
    /// Average pooling over `[c, length]` without padding.
    AvgPool1d {
        /// Window.
        kernel: usize,
        /// Stride (default: the window).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        stride: Option<usize>,
        /// The multiplier as a fixed-point constant.
        reciprocal: Codes,
    },
    /// Mean over every position of each channel: the exact sum times `reciprocal`.
    GlobalAvgPool {
        /// The multiplier as a fixed-point constant (exact `2^-k` or rounded `1/positions`).
        reciprocal: Codes,
    },
    /// Maximum over every position of each channel.
    GlobalMaxPool,
    /// `[c, …] → [c·…]`.
    Flatten,
    /// The same values in row-major order, another shape (same element count).
    Reshape {
        /// The new shape.
        shape: Vec<usize>,
    },
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
    /// PReLU: `x` where `x ≥ 0`, else `slope[c]·x` (exact), assigned to the output format;
    /// one slope per channel (axis 0), or one for every value (leaky ReLU).
    Prelu {
        /// `[c]` or `[1]`, formats per channel (axis 0) or one.
        slope: Codes,
    },
}

/// A size given once for both axes, or per axis `[vertical, horizontal]`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Pair {
    /// The same on both axes.
    Both(usize),
    /// `[vertical, horizontal]`.
    Each([usize; 2]),
}

impl Default for Pair {
    fn default() -> Pair {
        Pair::Both(1)
    }
}

impl Pair {
    /// `[vertical, horizontal]`.
    pub fn get(self) -> [usize; 2] {
        match self {
            Pair::Both(v) => [v, v],
            Pair::Each(v) => v,
        }
    }

    fn is_one(&self) -> bool {
        self.get() == [1, 1]
    }
}

impl From<usize> for Pair {
    fn from(v: usize) -> Pair {
        Pair::Both(v)
    }
}

/// Zero padding given once for every side, or `[top, bottom, left, right]`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Padding {
    /// The same on every side.
    All(usize),
    /// `[top, bottom, left, right]`.
    Sides([usize; 4]),
}

impl Padding {
    /// `[top, bottom, left, right]`.
    pub fn get(self) -> [usize; 4] {
        match self {
            Padding::All(p) => [p; 4],
            Padding::Sides(s) => s,
        }
    }
}

impl From<usize> for Padding {
    fn from(p: usize) -> Padding {
        Padding::All(p)
    }
}

fn one() -> usize {
    1
}

fn is_one(v: &usize) -> bool {
    *v == 1
}

impl Op {
    /// The operation's name, as the `kind` tag of the JSON document spells it.
    pub fn kind(&self) -> &'static str {
        match self {
            Op::Quantize => "quantize",
            Op::Dense { .. } => "dense",
            Op::Conv2d { .. } => "conv2d",
            Op::Conv1d { .. } => "conv1d",
            Op::HardTanh { .. } => "hard_tanh",
            Op::HardSigmoid { .. } => "hard_sigmoid",
            Op::Lookup { .. } => "lookup",
            Op::Multiply => "multiply",
            Op::Concat => "concat",
            Op::MaxPool1d { .. } => "max_pool1d",
            Op::AvgPool2d { .. } => "avg_pool2d",
            Op::AvgPool1d { .. } => "avg_pool1d",
            Op::GlobalMaxPool => "global_max_pool",
            Op::Reshape { .. } => "reshape",
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

    /// How many operands the operation reads: `Some(n)`, or `None` for any number from 2 on
    /// (`Concat`).
    pub fn arity(&self) -> Option<usize> {
        match self {
            Op::Add | Op::Multiply => Some(2),
            Op::Concat => None,
            _ => Some(1),
        }
    }

    /// True for the operations that may read the raw `f32` network input: they convert it to
    /// their output format as the `ap_fixed` float constructor does. Every other operation reads
    /// quantized tensors only.
    pub fn converts_input(&self) -> bool {
        matches!(self, Op::Quantize | Op::Flatten)
    }

    /// The operation's constants by role (`weight`, `bias`, `scale`, `shift`, `slope`,
    /// `reciprocal`, `alpha`, `beta`, `table`), in a fixed order. Reports and checkpoint
    /// metadata list formats through this, so a new operation's constants appear everywhere once
    /// they are listed here.
    pub fn constants(&self) -> Vec<(&'static str, &Codes)> {
        match self {
            Op::Dense { weight, bias, .. }
            | Op::Conv2d { weight, bias, .. }
            | Op::Conv1d { weight, bias, .. } => {
                let mut v = vec![("weight", weight)];
                v.extend(bias.as_ref().map(|b| ("bias", b)));
                v
            }
            Op::BatchNorm { scale, shift } => vec![("scale", scale), ("shift", shift)],
            Op::Prelu { slope } => vec![("slope", slope)],
            Op::GlobalAvgPool { reciprocal }
            | Op::AvgPool2d { reciprocal, .. }
            | Op::AvgPool1d { reciprocal, .. } => vec![("reciprocal", reciprocal)],
            Op::HardSigmoid { alpha, beta } => vec![("alpha", alpha), ("beta", beta)],
            Op::Lookup { table, .. } => vec![("table", table)],
            Op::Quantize
            | Op::Relu { .. }
            | Op::HardTanh { .. }
            | Op::Add
            | Op::Multiply
            | Op::Concat
            | Op::MaxPool2d { .. }
            | Op::MaxPool1d { .. }
            | Op::GlobalMaxPool
            | Op::Flatten
            | Op::Reshape { .. }
            | Op::Shortcut { .. }
            | Op::Sign => Vec::new(),
        }
    }

    /// The accumulator formats of a sum of products.
    pub fn accumulator(&self) -> Option<&[Format]> {
        match self {
            Op::Dense { accumulator, .. }
            | Op::Conv2d { accumulator, .. }
            | Op::Conv1d { accumulator, .. } => Some(accumulator),
            _ => None,
        }
    }

    /// True for the operations that only move values (select, reorder, pad with zeros): their
    /// output format must be their input's.
    pub fn moves_values(&self) -> bool {
        matches!(
            self,
            Op::Flatten
                | Op::Reshape { .. }
                | Op::MaxPool2d { .. }
                | Op::MaxPool1d { .. }
                | Op::GlobalMaxPool
                | Op::Shortcut { .. }
        )
    }
}

/// The format a ReLU clip is held in: the document's `f64` converted to
/// `ap_fixed<64,32,AP_TRN,AP_SAT>` (what the generated C++ declares as `qfx::clip_t`). A clip that
/// does not convert (NaN, ±∞) is no clip.
pub fn relu_clip(clip: Option<f64>) -> Option<Fixed> {
    clip.and_then(clip_constant)
}

/// A clip bound (a ReLU clip, a `HardTanh` bound) as every back end holds it: the `f64`
/// converted to `ap_fixed<64,32,AP_TRN,AP_SAT>` (`qfx::clip_t` in the generated C++); `None` for
/// NaN and ±∞.
pub fn clip_constant(v: f64) -> Option<Fixed> {
    let format = Format::new(64, 32, true, Quant::Trn, Overflow::Sat, 0).expect("valid format");
    Fixed::from_f64(v, format).ok()
}

/// The table entry a `Lookup` layer returns for input code `code`:
/// `clamp((code >> shift) − offset, 0, n − 1)`, the shift arithmetic (flooring) and a negative
/// `shift` a left shift, computed without overflow (the IR bounds `|shift|` by 126).
///
/// ```
/// use qfx_ir::lookup_index;
/// assert_eq!(lookup_index(-7, 1, -8, 16), 4); // floor(−7 / 2) = −4; −4 + 8
/// assert_eq!(lookup_index(3, -2, 0, 8), 7); // 12, clamped to the last entry
/// assert_eq!(lookup_index(i64::MIN as i128, -100, 0, 8), 0);
/// ```
pub fn lookup_index(code: i128, shift: i32, offset: i64, n: usize) -> usize {
    let s = shift.unsigned_abs().min(127);
    let shifted = if shift >= 0 {
        Some(code >> s)
    } else {
        code.checked_mul(1i128 << s.min(126))
    };
    // An overflowing shift or difference is beyond either end of any table.
    let v = shifted.and_then(|v| v.checked_sub(offset as i128));
    let last = n.saturating_sub(1);
    match v {
        Some(v) if v <= 0 => 0,
        Some(v) => usize::try_from(v).map_or(last, |v| v.min(last)),
        None if code < 0 => 0,
        None => last,
    }
}

/// The format that holds the exact sum of `terms` values of format `x` (global average pooling's
/// window sum): signed, `W_x + bits(terms) + 1` bits, `x`'s binary point.
pub fn window_sum_format(x: Format, terms: usize) -> Result<Format, qfx_fixed::Error> {
    let width = x.width() + usize::BITS - terms.leading_zeros() + 1;
    Format::signed(width, width as i32 - x.frac_bits() as i32)
}

/// `+1` or `−1` as the exact value a `Sign` layer assigns to its output format.
pub fn sign_value(non_negative: bool) -> Fixed {
    let one = Format::signed(2, 2).expect("valid format");
    Fixed::from_f64(if non_negative { 1.0 } else { -1.0 }, one).expect("±1 is exact in ap_int<2>")
}
