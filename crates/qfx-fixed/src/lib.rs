//! Bit-exact emulation of Vitis HLS fixed-point types (`ap_fixed`, `ap_ufixed`, `ap_int`,
//! `ap_uint`) on integer codes.
//!
//! # The number model
//! A fixed-point value is an integer code `q` of `W` bits — two's complement for `ap_fixed`,
//! plain binary for `ap_ufixed` — scaled by `2^−F`, where `F = W − I` is the number of
//! fractional bits and `I` the number of integer bits (sign included). `I` may be negative or
//! exceed `W`. The format also carries what happens when a value is *assigned* to it:
//! a quantization mode `Q` ([`Quant`], all seven HLS modes) for bits below the LSB, and an
//! overflow mode `O` ([`Overflow`], all five) with `N` saturation bits for values beyond the
//! range. Defaults are HLS's: `AP_TRN`, `AP_WRAP`, `N = 0`.
//!
//! Arithmetic is exact. `a + b`, `a − b`, `a × b` and `−a` produce HLS's full-precision result
//! types (`ap_fixed<8,3> × ap_fixed<8,3>` is `ap_fixed<16,6>`, `+` is `ap_fixed<9,4>`), and
//! quantization and overflow happen only on assignment: [`Fixed::cast`] and the conversions
//! from `f64`/`f32`. Everything is computed on integer codes, so there is no floating-point
//! caveat, and it is checked bit for bit against the Xilinx headers (the `qfx-oracle` crate).
//!
//! ```
//! use qfx_fixed::{Fixed, Format};
//! let t: Format = "ap_fixed<6,2,AP_TRN,AP_WRAP>".parse()?;
//! let x = Fixed::from_f64(2.5, t)?; // 2.5 does not fit in [-2, 2): the code wraps
//! assert_eq!((x.raw_bits(), x.to_string()), (0x28, "-1.5".to_string()));
//!
//! let acc: Format = "ap_fixed<12,4,AP_RND_CONV,AP_SAT>".parse()?;
//! let w = Fixed::from_f64(-0.75, "ap_fixed<4,1>".parse()?)?;
//! let sum = x.mul(&w)?.add(&x)?; // exact: ap_fixed<10,3> * ... + ...
//! assert_eq!(sum.cast(acc).to_f64(), -0.375);
//! # Ok::<(), qfx_fixed::Error>(())
//! ```
//!
//! # Widths
//! Formats (and the results of arithmetic) may be 1 to [`MAX_WIDTH`] = 128 bits wide; an
//! operation whose HLS result type would be wider returns [`Error::ResultTooWide`].
//!
//! # NaN and infinities
//! The checked conversions ([`Fixed::from_f64`], [`Fixed::from_f32`]) return
//! [`Error::NonFinite`]. [`Fixed::from_f64_hls`] and the [`slice`] kernels reproduce the
//! headers instead, which read the bit pattern of an infinity as `±2^1024` (so it saturates to
//! the maximum or minimum, or wraps to 0) and count such inputs so callers can refuse them.
//!
//! # Slices
//! [`SliceQuantizer`] is the vectorized, multi-threaded kernel for training: it quantizes an
//! `&[f32]` onto the grid and marks which elements were clipped.

mod assign;
mod decimal;
mod error;
mod format;
pub mod khot;
pub mod slice;
mod text;
mod value;

pub use error::{Error, ParseFormatError};
pub use format::{Format, Overflow, OverflowRule, Quant, MAX_WIDTH};
pub use khot::{csd_weight, KHot, KHotQuantizer, MAX_KHOT_WIDTH};
pub use slice::{
    available_threads, codes_to_f32, QuantizeStats, SliceQuantizer, CLIP_ABOVE, CLIP_BELOW,
    CLIP_NONE,
};
pub use text::{hex_f64, parse_f64};
pub use value::Fixed;
