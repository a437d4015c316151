//! The operations: each declared once, with the facts about it that every consumer shares
//! (its name, how many operands it reads, whether it only moves values, and the constants its
//! semantics fix). Shapes are inferred in `graph.rs`.

use qfx_fixed::{Fixed, Format, Overflow, Quant};
use serde::{Deserialize, Serialize};

use crate::{AccumulationOrder, Codes};

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

    /// How many operands the operation reads.
    pub fn arity(&self) -> usize {
        match self {
            Op::Add => 2,
            _ => 1,
        }
    }

    /// True for the operations that may read the raw `f32` network input: they convert it to
    /// their output format as the `ap_fixed` float constructor does. Every other operation reads
    /// quantized tensors only.
    pub fn converts_input(&self) -> bool {
        matches!(self, Op::Quantize | Op::Flatten)
    }

    /// True for the operations that only move values (select, reorder, pad with zeros): their
    /// output format must be their input's.
    pub fn moves_values(&self) -> bool {
        matches!(
            self,
            Op::Flatten | Op::MaxPool2d { .. } | Op::Shortcut { .. }
        )
    }
}

/// The format a ReLU clip is held in: the document's `f64` converted to
/// `ap_fixed<64,32,AP_TRN,AP_SAT>` (what the generated C++ declares as `qfx::clip_t`). A clip that
/// does not convert (NaN, ±∞) is no clip.
pub fn relu_clip(clip: Option<f64>) -> Option<Fixed> {
    let format = Format::new(64, 32, true, Quant::Trn, Overflow::Sat, 0).expect("valid format");
    clip.and_then(|c| Fixed::from_f64(c, format).ok())
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
