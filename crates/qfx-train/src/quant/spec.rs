//! What a quantizer does, independent of tensors: word width, modes, granularity.

use qfx_fixed::{Format, KHot, KHotQuantizer, Overflow, Quant, MAX_KHOT_WIDTH};
use serde::{Deserialize, Serialize};

use crate::error::TrainError;

/// Whether one binary point covers the whole tensor or each output channel has its own.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum Granularity {
    /// One learned `f` for the tensor.
    #[default]
    PerTensor,
    /// One learned `f` per index along `axis` (0 for conv/linear weights `[out, ...]`,
    /// 1 for activations `[batch, channels, ...]`).
    PerChannel {
        /// The channel axis.
        axis: usize,
    },
}

/// A fixed-point quantizer's static description: everything except the binary point, which
/// is the learned parameter `f` (`F = round(f)` fractional bits in the forward pass).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct QuantSpec {
    /// Word width `W` in bits (1..=32; up to 24 every value is exact in f32).
    pub width: u32,
    /// `ap_fixed` (true) or `ap_ufixed` (false).
    pub signed: bool,
    /// Quantization (rounding) mode.
    pub quant: Quant,
    /// Overflow mode.
    pub overflow: Overflow,
    /// Saturation bits `N` for the wrap modes.
    #[serde(default)]
    pub sat_bits: u32,
    /// Per tensor or per channel.
    #[serde(default)]
    pub granularity: Granularity,
    /// Restrict codes to K-hot ones (multiplier-free constants): the forward pass projects onto
    /// the nearest K-hot code of the format ([`qfx_fixed::KHotQuantizer`]); the binary point is
    /// still learned. Needs `W ≤ 24` and a saturating overflow mode.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub khot: Option<KHot>,
    /// Learned word width: the integer bits are learned as well as the binary point, so
    /// `W = I + F` moves within this range (`width` is then the starting width). `None`: `W`
    /// is `width`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub learned_width: Option<WidthRange>,
}

/// The narrowest and widest word a learned width may take; a width of 0 prunes the channel
/// (every value becomes 0).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WidthRange {
    /// Narrowest width (0 allows pruning).
    pub min: u32,
    /// Widest width.
    pub max: u32,
}

/// Widest word a learned width may reach: every value stays an exact f32.
pub const MAX_LEARNED_WIDTH: u32 = 24;

/// Widest word the quantizer accepts. Up to 24 bits every value of the format is an f32, so the
/// forward pass is exact; wider formats (accumulators) give the f32 nearest to the exact value.
pub const MAX_TRAIN_WIDTH: u32 = 32;

/// Largest `|F|` a quantizer uses: beyond it the binary point is clamped, so every scale
/// `2^±F` is a normal f32.
pub const MAX_FRAC_BITS: i32 = 100;

/// `F = round(f)` (ties to even) clamped to `±MAX_FRAC_BITS`: the one rule every path uses.
pub fn frac_bits_of(f: f32) -> i32 {
    f.round_ties_even()
        .clamp(-(MAX_FRAC_BITS as f32), MAX_FRAC_BITS as f32) as i32
}

impl QuantSpec {
    /// The same format with one binary point for the whole tensor.
    pub fn per_tensor(self) -> QuantSpec {
        QuantSpec {
            granularity: Granularity::PerTensor,
            ..self
        }
    }

    /// A signed, rounding (`AP_RND_CONV`), saturating quantizer of `width` bits per tensor.
    pub fn signed(width: u32) -> QuantSpec {
        QuantSpec {
            width,
            signed: true,
            quant: Quant::RndConv,
            overflow: Overflow::Sat,
            sat_bits: 0,
            granularity: Granularity::PerTensor,
            khot: None,
            learned_width: None,
        }
    }

    /// Checks that the spec can be trained: a valid format of at most 32 bits.
    pub fn validate(&self) -> Result<(), TrainError> {
        if self.width == 0 || self.width > MAX_TRAIN_WIDTH {
            return Err(TrainError::Spec(format!(
                "width W = {} is outside 1..={MAX_TRAIN_WIDTH} (training values are f32: exact up \
                 to 24 bits, nearest f32 beyond)",
                self.width
            )));
        }
        let format = self.format(0)?;
        if let Some(k) = self.khot {
            if self.width > MAX_KHOT_WIDTH {
                return Err(TrainError::Spec(format!(
                    "a K-hot quantizer is at most {MAX_KHOT_WIDTH} bits wide, not {}",
                    self.width
                )));
            }
            KHotQuantizer::new(format, k).map_err(|e| TrainError::Spec(e.to_string()))?;
        }
        if let Some(range) = self.learned_width {
            self.validate_learned(range)?;
        }
        Ok(())
    }

    /// A learned width: a range that holds the starting width, at most
    /// [`MAX_LEARNED_WIDTH`] bits, with a saturating mode the learned bound can express as a
    /// clamp (`AP_SAT`, `AP_SAT_SYM`) and no K-hot constraint.
    fn validate_learned(&self, WidthRange { min, max }: WidthRange) -> Result<(), TrainError> {
        let refuse = |why: String| Err(TrainError::Spec(format!("learned widths: {why}")));
        if !(min <= self.width && self.width <= max && max <= MAX_LEARNED_WIDTH) {
            return refuse(format!(
                "the range {min}..={max} must hold the starting width {} and stay within \
                 {MAX_LEARNED_WIDTH} bits",
                self.width
            ));
        }
        if !matches!(self.overflow, Overflow::Sat | Overflow::SatSym) {
            return refuse(format!(
                "overflow mode {} is not supported (AP_SAT or AP_SAT_SYM: the learned integer \
                 bits move a saturation bound)",
                self.overflow
            ));
        }
        if self.khot.is_some() {
            return refuse("a K-hot constraint cannot be combined with them yet".to_string());
        }
        Ok(())
    }

    /// The K-hot projection for `frac_bits` fractional bits, when the spec has a constraint.
    pub fn khot_quantizer(&self, frac_bits: i32) -> Result<Option<KHotQuantizer>, TrainError> {
        let Some(k) = self.khot else {
            return Ok(None);
        };
        KHotQuantizer::new(self.format(frac_bits)?, k)
            .map(Some)
            .map_err(|e| TrainError::Spec(e.to_string()))
    }

    /// The `ap_fixed` format for `frac_bits` fractional bits (`I = W − F`).
    pub fn format(&self, frac_bits: i32) -> Result<Format, TrainError> {
        self.format_of_width(self.width, frac_bits)
    }

    /// The `ap_fixed` format of `width` bits with `frac_bits` fractional bits and this spec's
    /// modes (a learned width's format).
    pub fn format_of_width(&self, width: u32, frac_bits: i32) -> Result<Format, TrainError> {
        let int_bits = width as i32 - frac_bits;
        Format::new(
            width,
            int_bits,
            self.signed,
            self.quant,
            self.overflow,
            self.sat_bits,
        )
        .map_err(|e| TrainError::Spec(e.to_string()))
    }

    /// Number of learned binary points for a tensor of `shape`.
    pub fn channels(&self, shape: &[usize]) -> Result<usize, TrainError> {
        match self.granularity {
            Granularity::PerTensor => Ok(1),
            Granularity::PerChannel { axis } => shape.get(axis).copied().ok_or_else(|| {
                TrainError::Spec(format!(
                    "per-channel axis {axis} does not exist in a tensor of shape {shape:?}"
                ))
            }),
        }
    }

    /// `(outer, channels, inner)`: the contiguous layout is `outer` repetitions of `channels`
    /// blocks of `inner` elements, each block sharing one binary point.
    pub fn blocks(&self, shape: &[usize]) -> (usize, usize, usize) {
        match self.granularity {
            Granularity::PerTensor => (1, 1, shape.iter().product()),
            Granularity::PerChannel { axis } => (
                shape[..axis].iter().product(),
                shape[axis],
                shape[axis + 1..].iter().product(),
            ),
        }
    }

    /// True when overflow wraps (`AP_WRAP`, `AP_WRAP_SM`) instead of saturating.
    pub fn wraps(&self) -> bool {
        !self.overflow.is_saturating()
    }

    /// The smallest and largest code after overflow handling of a saturating mode
    /// (`AP_SAT_SYM` excludes the most negative code).
    pub fn code_bounds(&self) -> (f64, f64) {
        let (lo, hi) = self.format(0).expect("validated spec").assignable_range();
        (lo as f64, hi as f64)
    }
}
