//! [`Fixed`]: one fixed-point value, its raw code and its format.

use std::cmp::Ordering;
use std::fmt;

use crate::assign::{assign, low_mask, Source};
use crate::decimal;
use crate::error::Error;
use crate::format::Format;

/// A fixed-point value: a `W`-bit raw code and the [`Format`] that gives it meaning.
///
/// Arithmetic follows HLS: `+`, `−` and `×` are exact and return the full-precision result type
/// (default `AP_TRN`/`AP_WRAP`); quantization and overflow happen only in [`Fixed::cast`] and
/// the `from_*` conversions, exactly as an assignment to a declared `ap_fixed` variable.
///
/// ```
/// use qfx_fixed::{Fixed, Format};
/// let t: Format = "ap_fixed<8,3>".parse().unwrap();
/// let a = Fixed::from_f64(1.25, t).unwrap();
/// let b = Fixed::from_f64(-0.5, t).unwrap();
/// let p = a.mul(&b).unwrap();
/// assert_eq!(p.format().to_string(), "ap_fixed<16,6>");
/// assert_eq!(p.to_string(), "-0.625");
/// let s = a.add(&b).unwrap();
/// assert_eq!((s.format().to_string(), s.to_f64()), ("ap_fixed<9,4>".to_string(), 0.75));
/// ```
#[derive(Clone, Copy, Debug)]
pub struct Fixed {
    bits: u128,
    format: Format,
}

impl Fixed {
    /// Converts a `double` exactly as the `ap_fixed` double constructor does (the value is
    /// decomposed into mantissa and exponent, so nothing is lost before quantization), then
    /// quantizes with the format's `Q` and handles overflow with its `O`/`N`.
    ///
    /// NaN and ±Inf have no fixed-point value: they return [`Error::NonFinite`].
    /// [`Fixed::from_f64_hls`] instead reproduces what the headers do with them.
    ///
    /// ```
    /// use qfx_fixed::{Fixed, Format};
    /// let t: Format = "ap_fixed<8,3,AP_RND_CONV,AP_SAT>".parse().unwrap();
    /// assert_eq!(Fixed::from_f64(0.046875, t).unwrap().to_f64(), 0.0625); // tie to even
    /// assert_eq!(Fixed::from_f64(100.0, t).unwrap().to_f64(), 3.96875); // saturates
    /// assert!(Fixed::from_f64(f64::NAN, t).is_err());
    /// ```
    pub fn from_f64(x: f64, format: Format) -> Result<Fixed, Error> {
        if !x.is_finite() {
            return Err(Error::NonFinite(x));
        }
        Ok(Fixed::from_f64_hls(x, format))
    }

    /// Like [`Fixed::from_f64`], and for NaN and ±Inf does what the Xilinx headers do: their
    /// constructor reads the bit pattern as `±1.m · 2^1024` (the exponent field of all ones
    /// minus the bias). So under the saturating modes `+Inf` gives the maximum and `−Inf` the
    /// minimum code, under `AP_WRAP` (N = 0) both give 0, and a NaN behaves like an infinity of
    /// its sign bit with its payload as mantissa bits. Subnormal doubles are likewise read with
    /// the hidden bit set, as `±1.m · 2^−1023`; this only matters for formats with more than
    /// about 1000 fractional bits.
    pub fn from_f64_hls(x: f64, format: Format) -> Fixed {
        let bits = Source::from_f64(x).map_or(0, |src| assign(src, &format));
        Fixed { bits, format }
    }

    /// `from_f64(x as f64)`: the `float` constructor of `ap_fixed` goes through `double`.
    pub fn from_f32(x: f32, format: Format) -> Result<Fixed, Error> {
        Fixed::from_f64(x as f64, format)
    }

    /// `from_f64_hls(x as f64)`.
    pub fn from_f32_hls(x: f32, format: Format) -> Fixed {
        Fixed::from_f64_hls(x as f64, format)
    }

    /// The value whose code is `code`, i.e. `code · 2^−F`. Errors if the code does not fit in
    /// the format's `W` bits (no quantization or overflow is applied).
    pub fn from_code(code: i128, format: Format) -> Result<Fixed, Error> {
        if code < format.min_code() || code > format.max_code() {
            return Err(Error::CodeOutOfRange {
                code,
                format: format.to_string(),
            });
        }
        Ok(Fixed {
            bits: code as u128 & format.mask(),
            format,
        })
    }

    /// The value whose raw `W`-bit pattern is the low `W` bits of `bits` (higher bits ignored).
    pub fn from_raw_bits(bits: u128, format: Format) -> Fixed {
        Fixed {
            bits: bits & format.mask(),
            format,
        }
    }

    /// Zero in `format`.
    pub fn zero(format: Format) -> Fixed {
        Fixed { bits: 0, format }
    }

    /// The format.
    pub fn format(&self) -> Format {
        self.format
    }

    /// The raw `W`-bit pattern (two's complement for signed formats), zero above bit `W − 1`.
    pub fn raw_bits(&self) -> u128 {
        self.bits
    }

    /// The integer code `q` (value `= q · 2^−F`). `None` only for an unsigned 128-bit format
    /// whose code is at least `2^127` and so exceeds `i128`; use [`Fixed::raw_bits`] there.
    pub fn code(&self) -> Option<i128> {
        let w = self.format.width();
        if self.format.is_signed() {
            let shift = 128 - w;
            Some(((self.bits << shift) as i128) >> shift)
        } else {
            i128::try_from(self.bits).ok()
        }
    }

    /// True when the value is below zero.
    pub fn is_negative(&self) -> bool {
        self.format.is_signed() && (self.bits >> (self.format.width() - 1)) & 1 == 1
    }

    /// Sign and magnitude of the code.
    fn sign_magnitude(&self) -> (bool, u128) {
        if self.is_negative() {
            let ext = self.bits | !self.format.mask();
            (true, ext.wrapping_neg())
        } else {
            (false, self.bits)
        }
    }

    /// The raw bits widened to 128 bits the way C++ widens the code (sign- or zero-extension).
    fn extended(&self) -> u128 {
        if self.is_negative() {
            self.bits | !self.format.mask()
        } else {
            self.bits
        }
    }

    /// Assigns this value to a variable of type `format`: quantization and overflow exactly as
    /// the `ap_fixed` assignment operator (the target's `Q`, `O` and `N` apply).
    ///
    /// ```
    /// use qfx_fixed::{Fixed, Format};
    /// let wide: Format = "ap_fixed<16,6>".parse().unwrap();
    /// let narrow: Format = "ap_fixed<6,2,AP_TRN,AP_WRAP_SM>".parse().unwrap();
    /// let x = Fixed::from_f64(2.5, wide).unwrap();
    /// assert_eq!(x.cast(narrow).to_f64(), 1.4375); // sign-magnitude wrap
    /// ```
    pub fn cast(&self, format: Format) -> Fixed {
        Fixed {
            bits: assign(Source::of(self.bits, &self.format), &format),
            format,
        }
    }

    /// The HLS result type of `self + rhs` (and `self − rhs` when `subtract`): binary points
    /// aligned, one extra integer bit, a sign bit if either side is signed (always for `−`).
    fn sum_format(&self, rhs: &Fixed, subtract: bool) -> Result<Format, Error> {
        let (a, b) = (&self.format, &rhs.format);
        let (sa, sb) = (a.is_signed(), b.is_signed());
        // An unsigned operand next to a signed one needs one more integer bit for its top bit.
        let int_a = a.int_bits() as i64 + (sb && !sa) as i64;
        let int_b = b.int_bits() as i64 + (sa && !sb) as i64;
        let int_bits = int_a.max(int_b) + 1;
        let frac = a.frac_bits().max(b.frac_bits());
        Format::result_of(int_bits + frac, int_bits, sa || sb || subtract)
    }

    /// `self + rhs` at full precision (the `ap_fixed` `operator+` result type).
    /// Errors only if that type is wider than [`crate::MAX_WIDTH`].
    pub fn add(&self, rhs: &Fixed) -> Result<Fixed, Error> {
        let format = self.sum_format(rhs, false)?;
        let (a, b) = (self.cast(format), rhs.cast(format));
        Ok(Fixed::from_raw_bits(a.bits.wrapping_add(b.bits), format))
    }

    /// `self − rhs` at full precision (the `ap_fixed` `operator-` result type, always signed).
    pub fn sub(&self, rhs: &Fixed) -> Result<Fixed, Error> {
        let format = self.sum_format(rhs, true)?;
        let (a, b) = (self.cast(format), rhs.cast(format));
        Ok(Fixed::from_raw_bits(a.bits.wrapping_sub(b.bits), format))
    }

    /// `self × rhs` at full precision: `W = W1 + W2`, `I = I1 + I2`, signed if either is.
    pub fn mul(&self, rhs: &Fixed) -> Result<Fixed, Error> {
        let (a, b) = (&self.format, &rhs.format);
        let format = Format::result_of(
            a.width() as i64 + b.width() as i64,
            a.int_bits() as i64 + b.int_bits() as i64,
            a.is_signed() || b.is_signed(),
        )?;
        // The exact product fits in W1 + W2 bits, so its low bits modulo 2^128 are exact.
        let product = self.extended().wrapping_mul(rhs.extended());
        Ok(Fixed::from_raw_bits(product, format))
    }

    /// `−self` as HLS types it: `ap_fixed<W+1, I+1>` (signed), so it never overflows.
    pub fn neg(&self) -> Result<Fixed, Error> {
        let f = &self.format;
        let format = Format::result_of(f.width() as i64 + 1, f.int_bits() as i64 + 1, true)?;
        let widened = self.cast(format);
        Ok(Fixed::from_raw_bits(widened.bits.wrapping_neg(), format))
    }

    /// `self << sh` as `ap_fixed::operator<<`: the raw code is shifted within the same type, so
    /// bits shifted past the top are lost (no saturation, whatever `O` says). A negative `sh`
    /// shifts right. Shifting by `W` or more gives 0.
    pub fn shl(&self, sh: i32) -> Fixed {
        if sh < 0 {
            self.shr_bits(sh.unsigned_abs())
        } else {
            self.shl_bits(sh as u32)
        }
    }

    /// `self >> sh` as `ap_fixed::operator>>`: an arithmetic shift of the raw code for signed
    /// types (logical for unsigned), truncating (no rounding, whatever `Q` says). A negative `sh`
    /// shifts left.
    pub fn shr(&self, sh: i32) -> Fixed {
        if sh < 0 {
            self.shl_bits(sh.unsigned_abs())
        } else {
            self.shr_bits(sh as u32)
        }
    }

    fn shl_bits(&self, sh: u32) -> Fixed {
        let bits = if sh >= 128 { 0 } else { self.bits << sh };
        Fixed::from_raw_bits(bits, self.format)
    }

    fn shr_bits(&self, sh: u32) -> Fixed {
        let sh = sh.min(127);
        let bits = if self.format.is_signed() {
            ((self.extended() as i128) >> sh) as u128
        } else if sh >= self.format.width() {
            0
        } else {
            self.bits >> sh
        };
        Fixed::from_raw_bits(bits, self.format)
    }

    /// The exact value rounded to the nearest `f64` (ties to even); `±Inf` if it is beyond the
    /// `f64` range. Exact whenever the value is representable as an `f64`, which holds for every
    /// code of a format with `W ≤ 53` and `−1074 ≤ −F`, `I ≤ 1024`.
    pub fn to_f64(&self) -> f64 {
        let (neg, mag) = self.sign_magnitude();
        let v = round_to_binary(mag, self.format.frac_bits(), 53, -1074);
        if neg {
            -v
        } else {
            v
        }
    }

    /// The exact value rounded to the nearest `f32` (ties to even, one rounding only).
    pub fn to_f32(&self) -> f32 {
        let (neg, mag) = self.sign_magnitude();
        // Rounded to f32's precision, the result is exact in f64, so `as f32` is exact too.
        let v = round_to_binary(mag, self.format.frac_bits(), 24, -149) as f32;
        if neg {
            -v
        } else {
            v
        }
    }
}

/// `mag · 2^−frac` rounded to a binary float with `precision` significant bits whose smallest
/// subnormal is `2^min_lsb`, returned as an `f64` (exact, as the rounded value has few bits).
pub(crate) fn round_to_binary(mag: u128, frac: i64, precision: i64, min_lsb: i64) -> f64 {
    if mag == 0 {
        return 0.0;
    }
    let top = 127 - mag.leading_zeros() as i64; // index of the leading one
    let exponent = top - frac; // value in [2^exponent, 2^(exponent+1))
    let lsb = (exponent - (precision - 1)).max(min_lsb);
    let drop = lsb + frac; // low bits of `mag` below the result's LSB
    let mantissa = if drop <= 0 {
        mag // exact: at most `precision` bits
    } else if drop > 128 {
        0
    } else {
        let kept = if drop == 128 { 0 } else { mag >> drop };
        let half = (mag >> (drop - 1)) & 1 == 1;
        let sticky = mag & low_mask(drop - 1) != 0;
        kept + (half && (sticky || kept & 1 == 1)) as u128
    };
    let scale = if drop <= 0 { -frac } else { lsb };
    scale_by_pow2(mantissa as f64, scale)
}

/// `m · 2^k` for an exactly representable result (or ±Inf beyond the range), computed in two
/// exact steps so that no intermediate underflows or overflows too early.
fn scale_by_pow2(m: f64, k: i64) -> f64 {
    let pow2 = |e: i64| f64::from_bits(((e + 1023) as u64) << 52);
    let first = k.clamp(-1000, 1000);
    let second = (k - first).clamp(-1000, 1000);
    m * pow2(first) * pow2(second)
}

impl PartialEq for Fixed {
    /// Values are equal when they denote the same number, whatever their formats.
    fn eq(&self, other: &Fixed) -> bool {
        self.cmp_value(other) == Ordering::Equal
    }
}

impl Eq for Fixed {}

impl PartialOrd for Fixed {
    fn partial_cmp(&self, other: &Fixed) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Fixed {
    /// Orders by exact value across formats.
    fn cmp(&self, other: &Fixed) -> Ordering {
        self.cmp_value(other)
    }
}

impl Fixed {
    fn cmp_value(&self, other: &Fixed) -> Ordering {
        let (na, ma) = self.sign_magnitude();
        let (nb, mb) = other.sign_magnitude();
        let sign = |neg: bool, mag: u128| {
            if mag == 0 {
                0
            } else if neg {
                -1
            } else {
                1
            }
        };
        let (sa, sb) = (sign(na, ma), sign(nb, mb));
        if sa != sb || sa == 0 {
            return sa.cmp(&sb);
        }
        let magnitude = cmp_scaled(ma, self.format.frac_bits(), mb, other.format.frac_bits());
        if sa < 0 {
            magnitude.reverse()
        } else {
            magnitude
        }
    }
}

/// Compares `a · 2^−fa` with `b · 2^−fb` exactly.
fn cmp_scaled(a: u128, fa: i64, b: u128, fb: i64) -> Ordering {
    // Scale the one with fewer fractional bits up; if that overflows 128 bits it is the larger.
    let up = |x: u128, by: i64| -> Option<u128> {
        if x == 0 {
            Some(0)
        } else if by >= x.leading_zeros() as i64 {
            None
        } else {
            Some(x << by)
        }
    };
    if fa >= fb {
        up(b, fa - fb).map_or(Ordering::Less, |b| a.cmp(&b))
    } else {
        up(a, fb - fa).map_or(Ordering::Greater, |a| a.cmp(&b))
    }
}

impl fmt::Display for Fixed {
    /// The exact decimal value, with no trailing zeros and never `-0` (e.g. `-1.4375`, `240`).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (neg, mag) = self.sign_magnitude();
        f.pad(&decimal::exact_decimal(neg, mag, self.format.frac_bits()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fmt(s: &str) -> Format {
        s.parse().unwrap()
    }

    #[track_caller]
    fn cast_case(ty: &str, x: f64, want: f64) {
        let got = Fixed::from_f64(x, fmt(ty)).unwrap();
        assert_eq!(got.to_f64(), want, "{ty} <- {x}: got {got}");
    }

    /// Known header behaviour (each checked against the real headers): rounding, saturation,
    /// wrap, sign-magnitude wrap and wrap with saturation bits.
    #[test]
    fn known_header_facts() {
        cast_case("ap_fixed<8,3,AP_RND_CONV,AP_SAT>", 0.046875, 0.0625);
        cast_case("ap_fixed<8,3,AP_RND_CONV,AP_SAT>", 100.0, 3.96875);
        cast_case("ap_fixed<8,3,AP_RND_CONV,AP_SAT>", -4.01, -4.0);
        cast_case("ap_fixed<6,2,AP_TRN,AP_WRAP>", 2.5, -1.5);
        cast_case("ap_fixed<6,2,AP_TRN,AP_WRAP>", 5.3, 1.25);
        cast_case("ap_fixed<6,2,AP_TRN,AP_WRAP_SM>", 2.5, 1.4375);
        cast_case("ap_fixed<6,2,AP_TRN,AP_WRAP,1>", 2.5, 0.5);
        cast_case("ap_ufixed<8,4,AP_TRN,AP_WRAP>", -1.0, 15.0);
        cast_case("ap_fixed<8,3,AP_RND_CONV,AP_SAT_SYM>", -4.0, -3.96875);
    }

    #[test]
    fn quantization_modes_on_ties() {
        // y = x·2^F = ±2.5 and ±1.5: every mode's tie rule, table-driven.
        let table: [(&str, [f64; 4]); 7] = [
            ("AP_TRN", [2.0, -3.0, 1.0, -2.0]),
            ("AP_TRN_ZERO", [2.0, -2.0, 1.0, -1.0]),
            ("AP_RND", [3.0, -2.0, 2.0, -1.0]),
            ("AP_RND_ZERO", [2.0, -2.0, 1.0, -1.0]),
            ("AP_RND_MIN_INF", [2.0, -3.0, 1.0, -2.0]),
            ("AP_RND_INF", [3.0, -3.0, 2.0, -2.0]),
            ("AP_RND_CONV", [2.0, -2.0, 2.0, -2.0]),
        ];
        for (q, want) in table {
            let ty = format!("ap_fixed<8,8,{q},AP_SAT>");
            for (x, w) in [2.5, -2.5, 1.5, -1.5].into_iter().zip(want) {
                cast_case(&ty, x, w);
            }
        }
    }

    #[test]
    fn arithmetic_result_types() {
        let a = Fixed::from_f64(1.5, fmt("ap_fixed<8,3>")).unwrap();
        let u = Fixed::from_f64(2.25, fmt("ap_ufixed<8,4>")).unwrap();
        assert_eq!(a.mul(&a).unwrap().format(), fmt("ap_fixed<16,6>"));
        assert_eq!(a.mul(&u).unwrap().format(), fmt("ap_fixed<16,7>"));
        assert_eq!(a.add(&a).unwrap().format(), fmt("ap_fixed<9,4>"));
        assert_eq!(u.add(&u).unwrap().format(), fmt("ap_ufixed<9,5>"));
        assert_eq!(u.sub(&u).unwrap().format(), fmt("ap_fixed<9,5>"));
        assert_eq!(a.add(&u).unwrap().format(), fmt("ap_fixed<11,6>"));
        assert_eq!(a.neg().unwrap().format(), fmt("ap_fixed<9,4>"));
        assert_eq!(a.mul(&u).unwrap().to_f64(), 3.375);
        assert_eq!(a.sub(&u).unwrap().to_f64(), -0.75);
        assert_eq!(u.neg().unwrap().to_f64(), -2.25);
        let wide = Fixed::zero(fmt("ap_fixed<100,50>"));
        assert!(matches!(
            wide.mul(&wide),
            Err(Error::ResultTooWide { width: 200 })
        ));
    }

    #[test]
    fn comparisons_across_formats() {
        let a = Fixed::from_f64(1.5, fmt("ap_fixed<8,3>")).unwrap();
        let b = Fixed::from_f64(1.5, fmt("ap_ufixed<20,2>")).unwrap();
        let c = Fixed::from_f64(-1024.0, fmt("ap_fixed<4,12>")).unwrap();
        let tiny = Fixed::from_code(1, fmt("ap_fixed<4,-60>")).unwrap();
        assert_eq!(a, b);
        assert!(c < a && c < tiny && tiny > Fixed::zero(fmt("ap_int<3>")));
        assert!(tiny < a);
        assert!(Fixed::from_code(-1, fmt("ap_fixed<4,-60>")).unwrap() > c);
    }

    #[test]
    fn shifts_stay_in_type() {
        let t = fmt("ap_fixed<8,3>");
        let x = Fixed::from_f64(1.25, t).unwrap();
        assert_eq!(x.shl(1).to_f64(), 2.5);
        assert_eq!(x.shl(2).to_f64(), -3.0); // 5.0 wraps
        assert_eq!(x.shr(3).to_f64(), 0.15625);
        assert_eq!(x.neg().unwrap().cast(t).shr(6).to_f64(), -0.03125);
        assert_eq!(x.shl(-1), x.shr(1));
        assert_eq!(x.shl(200).to_f64(), 0.0);
    }

    #[test]
    fn to_float_rounds_once() {
        // 2^-1075 · 3 is 1.5 subnormal LSBs: ties-to-even gives 2 LSBs.
        let t = Format::signed(8, 8 - 1075).unwrap();
        assert_eq!(
            Fixed::from_code(3, t).unwrap().to_f64(),
            2.0 * f64::from_bits(1)
        );
        // A 60-bit code rounds to nearest.
        let big = Fixed::from_code((1i128 << 59) + 1, Format::signed(61, 61).unwrap()).unwrap();
        assert_eq!(big.to_f64(), 2f64.powi(59));
        assert_eq!(big.to_f32(), 2f32.powi(59));
        let huge = Fixed::from_code(1, Format::signed(2, 1100).unwrap()).unwrap();
        assert_eq!(huge.to_f64(), f64::INFINITY);
        // f32 from an f64-exact value that is a tie at f32 precision rounds to even.
        let t = Format::signed(40, 40).unwrap();
        assert_eq!(
            Fixed::from_code((1 << 24) + 1, t).unwrap().to_f32(),
            16777216.0
        );
        assert_eq!(
            Fixed::from_code((1 << 24) + 3, t).unwrap().to_f32(),
            16777220.0
        );
    }

    #[test]
    fn nonfinite_inputs() {
        let sat = fmt("ap_fixed<8,3,AP_TRN,AP_SAT>");
        let wrap = fmt("ap_fixed<8,3>");
        assert!(matches!(
            Fixed::from_f64(f64::INFINITY, sat),
            Err(Error::NonFinite(_))
        ));
        assert_eq!(Fixed::from_f64_hls(f64::INFINITY, sat).to_f64(), 3.96875);
        assert_eq!(Fixed::from_f64_hls(f64::NEG_INFINITY, sat).to_f64(), -4.0);
        assert_eq!(Fixed::from_f64_hls(f64::INFINITY, wrap).to_f64(), 0.0);
    }

    #[test]
    fn codes_round_trip() {
        let t = fmt("ap_fixed<8,3>");
        assert_eq!(Fixed::from_code(-128, t).unwrap().raw_bits(), 0x80);
        assert!(Fixed::from_code(128, t).is_err());
        let u = fmt("ap_ufixed<128,0>");
        let top = Fixed::from_raw_bits(u128::MAX, u);
        assert_eq!(top.code(), None);
        assert!(top > Fixed::from_raw_bits(1, u));
    }
}
