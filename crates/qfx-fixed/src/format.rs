//! Run-time fixed-point formats: the template arguments of `ap_fixed<W,I,Q,O,N>`.

use std::fmt;
use std::str::FromStr;

use crate::error::{Error, ParseFormatError};

/// Widest word (and widest arithmetic result) this crate represents: codes are held in `i128`.
///
/// Vitis HLS allows up to 1024 bits (`AP_INT_MAX_W`); networks use far fewer. An operation whose
/// HLS result type would be wider than this returns [`Error::ResultTooWide`] instead of guessing.
pub const MAX_WIDTH: u32 = 128;

/// Quantization mode: how bits below the least significant kept bit are dropped.
///
/// All modes act on `y = x · 2^F` (the value in units of the LSB).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub enum Quant {
    /// `AP_TRN`: floor (toward −∞). The HLS default.
    #[default]
    #[cfg_attr(feature = "serde", serde(rename = "AP_TRN"))]
    Trn,
    /// `AP_TRN_ZERO`: toward zero.
    #[cfg_attr(feature = "serde", serde(rename = "AP_TRN_ZERO"))]
    TrnZero,
    /// `AP_RND`: nearest, ties toward +∞.
    #[cfg_attr(feature = "serde", serde(rename = "AP_RND"))]
    Rnd,
    /// `AP_RND_ZERO`: nearest, ties toward zero.
    #[cfg_attr(feature = "serde", serde(rename = "AP_RND_ZERO"))]
    RndZero,
    /// `AP_RND_MIN_INF`: nearest, ties toward −∞.
    #[cfg_attr(feature = "serde", serde(rename = "AP_RND_MIN_INF"))]
    RndMinInf,
    /// `AP_RND_INF`: nearest, ties away from zero.
    #[cfg_attr(feature = "serde", serde(rename = "AP_RND_INF"))]
    RndInf,
    /// `AP_RND_CONV`: nearest, ties to even (convergent rounding).
    #[cfg_attr(feature = "serde", serde(rename = "AP_RND_CONV"))]
    RndConv,
}

/// Overflow mode: what happens when the quantized value does not fit in `W` bits.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub enum Overflow {
    /// `AP_WRAP`: keep the low `W` bits; with `N > 0` the `N` most significant bits saturate.
    /// The HLS default.
    #[default]
    #[cfg_attr(feature = "serde", serde(rename = "AP_WRAP"))]
    Wrap,
    /// `AP_WRAP_SM`: sign-magnitude wrap. Signed types only: the headers stop a C simulation
    /// that creates an `ap_ufixed` with it, so [`Format::new`] refuses that combination.
    #[cfg_attr(feature = "serde", serde(rename = "AP_WRAP_SM"))]
    WrapSm,
    /// `AP_SAT`: clamp to the minimum or maximum code.
    #[cfg_attr(feature = "serde", serde(rename = "AP_SAT"))]
    Sat,
    /// `AP_SAT_ZERO`: any overflow gives zero.
    #[cfg_attr(feature = "serde", serde(rename = "AP_SAT_ZERO"))]
    SatZero,
    /// `AP_SAT_SYM`: clamp to ±max; for signed types the most negative code is treated as an
    /// overflow and becomes −max, even when the value is exactly representable.
    #[cfg_attr(feature = "serde", serde(rename = "AP_SAT_SYM"))]
    SatSym,
}

/// How an overflow mode repairs a rounded code that lies outside the format's
/// [assignable range](Format::assignable_range), classified for fast paths that work on the
/// rounded code alone.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum OverflowRule {
    /// Clamp into the assignable range (`AP_SAT`, `AP_SAT_SYM`).
    Clamp,
    /// Replace by zero (`AP_SAT_ZERO`).
    Zero,
    /// Keep the low `W` bits, two's complement (`AP_WRAP` with `N = 0`).
    Wrap,
    /// `AP_WRAP` with `N > 0` and `AP_WRAP_SM`: the result also depends on bits the rounding
    /// deleted, so only the full assignment procedure ([`Fixed::cast`](crate::Fixed::cast))
    /// decides.
    General,
}

impl Quant {
    /// Every mode, in the order the headers declare them.
    pub const ALL: [Quant; 7] = [
        Quant::RndConv,
        Quant::Rnd,
        Quant::RndZero,
        Quant::RndMinInf,
        Quant::RndInf,
        Quant::Trn,
        Quant::TrnZero,
    ];

    /// The C++ enumerator, e.g. `AP_RND_CONV`.
    pub const fn cpp_name(self) -> &'static str {
        match self {
            Quant::Trn => "AP_TRN",
            Quant::TrnZero => "AP_TRN_ZERO",
            Quant::Rnd => "AP_RND",
            Quant::RndZero => "AP_RND_ZERO",
            Quant::RndMinInf => "AP_RND_MIN_INF",
            Quant::RndInf => "AP_RND_INF",
            Quant::RndConv => "AP_RND_CONV",
        }
    }

    /// True for the round-to-nearest family (everything except `AP_TRN` and `AP_TRN_ZERO`).
    pub const fn is_rounding(self) -> bool {
        !matches!(self, Quant::Trn | Quant::TrnZero)
    }
}

impl Overflow {
    /// Every mode.
    pub const ALL: [Overflow; 5] = [
        Overflow::Wrap,
        Overflow::WrapSm,
        Overflow::Sat,
        Overflow::SatZero,
        Overflow::SatSym,
    ];

    /// The C++ enumerator, e.g. `AP_SAT`.
    pub const fn cpp_name(self) -> &'static str {
        match self {
            Overflow::Wrap => "AP_WRAP",
            Overflow::WrapSm => "AP_WRAP_SM",
            Overflow::Sat => "AP_SAT",
            Overflow::SatZero => "AP_SAT_ZERO",
            Overflow::SatSym => "AP_SAT_SYM",
        }
    }

    /// What this mode, with `sat_bits` saturation bits, does with an out-of-range rounded code
    /// (see [`OverflowRule`]; [`Format::overflow_rule`] is the same for a format).
    pub const fn rule(self, sat_bits: u32) -> OverflowRule {
        match self {
            Overflow::Sat | Overflow::SatSym => OverflowRule::Clamp,
            Overflow::SatZero => OverflowRule::Zero,
            Overflow::Wrap if sat_bits == 0 => OverflowRule::Wrap,
            Overflow::Wrap | Overflow::WrapSm => OverflowRule::General,
        }
    }

    /// True for the clamping family (`AP_SAT`, `AP_SAT_ZERO`, `AP_SAT_SYM`).
    pub const fn is_saturating(self) -> bool {
        matches!(self, Overflow::Sat | Overflow::SatZero | Overflow::SatSym)
    }
}

impl fmt::Display for Quant {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.cpp_name())
    }
}

impl fmt::Display for Overflow {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.cpp_name())
    }
}

const UNSIGNED_WRAP_SM: &str =
    "ap_ufixed cannot use AP_WRAP_SM (sign-magnitude wrap needs a sign; the HLS headers refuse it)";

/// A fixed-point format: `ap_fixed<W,I,Q,O,N>` (signed) or `ap_ufixed<W,I,Q,O,N>` (unsigned).
///
/// A value is an integer code `q` of `W` bits (two's complement when signed) times `2^-F`, with
/// `F = W − I` fractional bits. `I` may be negative (all bits fractional, below the binary point)
/// or larger than `W` (the LSB is worth more than one). `ap_int<W>` is `ap_fixed<W,W>` and
/// `ap_uint<W>` is `ap_ufixed<W,W>`.
///
/// Construct with [`Format::new`] (checked) or parse the C++ spelling:
/// ```
/// use qfx_fixed::{Format, Overflow, Quant};
/// let f: Format = "ap_fixed<8,3,AP_RND_CONV,AP_SAT>".parse().unwrap();
/// assert_eq!((f.width(), f.int_bits(), f.frac_bits()), (8, 3, 5));
/// assert_eq!((f.quant(), f.overflow()), (Quant::RndConv, Overflow::Sat));
/// assert_eq!(f.to_string(), "ap_fixed<8,3,AP_RND_CONV,AP_SAT>");
/// assert_eq!("ap_uint<4>".parse::<Format>().unwrap().to_string(), "ap_ufixed<4,4>");
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[cfg_attr(feature = "serde", serde(try_from = "String", into = "String"))]
pub struct Format {
    width: u32,
    int_bits: i32,
    signed: bool,
    quant: Quant,
    overflow: Overflow,
    sat_bits: u32,
}

impl Format {
    /// A checked format. Errors if `width` is 0 or above [`MAX_WIDTH`], if `sat_bits > width`,
    /// or for an unsigned format with `AP_WRAP_SM`.
    pub fn new(
        width: u32,
        int_bits: i32,
        signed: bool,
        quant: Quant,
        overflow: Overflow,
        sat_bits: u32,
    ) -> Result<Format, Error> {
        if width == 0 || width > MAX_WIDTH {
            return Err(Error::InvalidFormat(format!(
                "width W = {width} is outside the supported range 1..={MAX_WIDTH}"
            )));
        }
        if sat_bits > width {
            return Err(Error::InvalidFormat(format!(
                "saturation bits N = {sat_bits} exceed the width W = {width}"
            )));
        }
        if !signed && overflow == Overflow::WrapSm {
            return Err(Error::InvalidFormat(UNSIGNED_WRAP_SM.to_string()));
        }
        Ok(Format {
            width,
            int_bits,
            signed,
            quant,
            overflow,
            sat_bits,
        })
    }

    /// `ap_fixed<W,I>` with the HLS defaults `AP_TRN`, `AP_WRAP`, `N = 0`.
    pub fn signed(width: u32, int_bits: i32) -> Result<Format, Error> {
        Format::new(width, int_bits, true, Quant::Trn, Overflow::Wrap, 0)
    }

    /// `ap_ufixed<W,I>` with the HLS defaults `AP_TRN`, `AP_WRAP`, `N = 0`.
    pub fn unsigned(width: u32, int_bits: i32) -> Result<Format, Error> {
        Format::new(width, int_bits, false, Quant::Trn, Overflow::Wrap, 0)
    }

    /// The same format with another quantization mode.
    pub fn with_quant(self, quant: Quant) -> Format {
        Format { quant, ..self }
    }

    /// The same format with another overflow mode and saturation-bit count.
    pub fn with_overflow(self, overflow: Overflow, sat_bits: u32) -> Result<Format, Error> {
        Format::new(
            self.width,
            self.int_bits,
            self.signed,
            self.quant,
            overflow,
            sat_bits,
        )
    }

    /// Word width `W` in bits.
    pub const fn width(&self) -> u32 {
        self.width
    }
    /// Integer bits `I` (including the sign bit for signed formats).
    pub const fn int_bits(&self) -> i32 {
        self.int_bits
    }
    /// Fractional bits `F = W − I` (may be negative).
    pub const fn frac_bits(&self) -> i64 {
        self.width as i64 - self.int_bits as i64
    }
    /// True for `ap_fixed`, false for `ap_ufixed`.
    pub const fn is_signed(&self) -> bool {
        self.signed
    }
    /// Quantization mode `Q`.
    pub const fn quant(&self) -> Quant {
        self.quant
    }
    /// Overflow mode `O`.
    pub const fn overflow(&self) -> Overflow {
        self.overflow
    }
    /// Saturation bits `N` (used by `AP_WRAP` and `AP_WRAP_SM`).
    pub const fn sat_bits(&self) -> u32 {
        self.sat_bits
    }

    /// Smallest code: `−2^(W−1)` when signed, 0 when unsigned.
    pub const fn min_code(&self) -> i128 {
        if self.signed {
            i128::MIN >> (128 - self.width)
        } else {
            0
        }
    }

    /// Largest code: `2^(W−1) − 1` when signed, `2^W − 1` when unsigned (saturating at
    /// `i128::MAX` for a 128-bit unsigned format, whose top code does not fit in an `i128`).
    pub const fn max_code(&self) -> i128 {
        let magnitude_bits = self.width - self.signed as u32;
        if magnitude_bits >= 127 {
            i128::MAX
        } else {
            (1i128 << magnitude_bits) - 1
        }
    }

    /// The smallest and largest code an assignment to this format can produce: `−max` rather
    /// than the minimum code for a signed `AP_SAT_SYM` format, which treats the most negative
    /// code as an overflow (for one signed bit `min | 1` is the minimum itself: the headers'
    /// `−max` is −1 there). This is the one place that rule is written; every kernel, engine and
    /// analysis asks for it here.
    ///
    /// ```
    /// # use qfx_fixed::Format;
    /// let f: Format = "ap_fixed<4,4,AP_TRN,AP_SAT_SYM>".parse()?;
    /// assert_eq!(f.assignable_range(), (-7, 7));
    /// let g: Format = "ap_fixed<4,4,AP_TRN,AP_SAT>".parse()?;
    /// assert_eq!(g.assignable_range(), (-8, 7));
    /// # Ok::<(), qfx_fixed::Error>(())
    /// ```
    pub const fn assignable_range(&self) -> (i128, i128) {
        let lo = if matches!(self.overflow, Overflow::SatSym) && self.signed {
            self.min_code() | 1
        } else {
            self.min_code()
        };
        (lo, self.max_code())
    }

    /// What an assignment does with a rounded code outside [`assignable_range`]
    /// (see [`OverflowRule`]).
    ///
    /// [`assignable_range`]: Format::assignable_range
    pub const fn overflow_rule(&self) -> OverflowRule {
        self.overflow.rule(self.sat_bits)
    }

    /// Mask of the low `W` bits.
    pub(crate) const fn mask(&self) -> u128 {
        if self.width >= 128 {
            u128::MAX
        } else {
            (1u128 << self.width) - 1
        }
    }

    /// The C++ spelling with all five template arguments, e.g. `ap_fixed<8,3,AP_TRN,AP_WRAP,0>`
    /// ([`Display`](fmt::Display) omits the arguments that equal HLS's defaults).
    pub fn full_spelling(&self) -> String {
        let name = if self.signed { "ap_fixed" } else { "ap_ufixed" };
        format!(
            "{name}<{},{},{},{},{}>",
            self.width, self.int_bits, self.quant, self.overflow, self.sat_bits
        )
    }

    /// The format HLS gives `a + b` / `a − b` / `a · b`: full precision, default `AP_TRN`/`AP_WRAP`.
    pub(crate) fn result_of(width: i64, int_bits: i64, signed: bool) -> Result<Format, Error> {
        if width < 1 || width > MAX_WIDTH as i64 {
            return Err(Error::ResultTooWide { width });
        }
        let int_bits = i32::try_from(int_bits).map_err(|_| {
            Error::InvalidFormat(format!("integer bits I = {int_bits} do not fit in an i32"))
        })?;
        Format::signed(width as u32, int_bits).map(|f| Format { signed, ..f })
    }
}

impl fmt::Display for Format {
    /// The shortest C++ spelling: trailing arguments equal to the HLS defaults are omitted.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let name = if self.signed { "ap_fixed" } else { "ap_ufixed" };
        write!(f, "{name}<{},{}", self.width, self.int_bits)?;
        let need_n = self.sat_bits != 0;
        let need_o = need_n || self.overflow != Overflow::Wrap;
        let need_q = need_o || self.quant != Quant::Trn;
        if need_q {
            write!(f, ",{}", self.quant)?;
        }
        if need_o {
            write!(f, ",{}", self.overflow)?;
        }
        if need_n {
            write!(f, ",{}", self.sat_bits)?;
        }
        f.write_str(">")
    }
}

impl FromStr for Format {
    type Err = Error;

    /// Parses `ap_fixed<W,I[,Q[,O[,N]]]>`, `ap_ufixed<…>`, `ap_int<W>` and `ap_uint<W>`.
    /// Whitespace between tokens is allowed. Errors name the byte offset of the problem.
    fn from_str(text: &str) -> Result<Format, Error> {
        parse_format(text).map_err(Error::Parse)
    }
}

impl From<Format> for String {
    fn from(f: Format) -> String {
        f.to_string()
    }
}

impl TryFrom<String> for Format {
    type Error = Error;
    fn try_from(s: String) -> Result<Format, Error> {
        s.parse()
    }
}

/// A minimal tokenizer over the type spelling that remembers byte offsets for error messages.
struct Cursor<'a> {
    text: &'a str,
    pos: usize,
}

impl<'a> Cursor<'a> {
    fn skip_ws(&mut self) {
        let rest = &self.text[self.pos..];
        self.pos += rest.len() - rest.trim_start().len();
    }

    fn error(&self, at: usize, message: impl Into<String>) -> ParseFormatError {
        ParseFormatError {
            input: self.text.to_string(),
            position: at,
            message: message.into(),
        }
    }

    /// Next identifier, integer or single punctuation character, with its offset.
    fn token(&mut self) -> Option<(usize, &'a str)> {
        self.skip_ws();
        let rest = &self.text[self.pos..];
        let first = rest.chars().next()?;
        let len = if first.is_ascii_alphanumeric() || first == '_' || first == '-' || first == '+' {
            1 + rest[first.len_utf8()..]
                .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
                .unwrap_or(rest.len() - first.len_utf8())
        } else {
            first.len_utf8()
        };
        let start = self.pos;
        self.pos += len;
        Some((start, &rest[..len]))
    }

    fn expect(&mut self, want: &str, what: &str) -> Result<(), ParseFormatError> {
        match self.token() {
            Some((_, t)) if t == want => Ok(()),
            Some((at, t)) => Err(self.error(at, format!("expected {what}, found `{t}`"))),
            None => Err(self.error(self.text.len(), format!("expected {what}, found the end"))),
        }
    }
}

fn parse_format(text: &str) -> Result<Format, ParseFormatError> {
    let mut cur = Cursor { text, pos: 0 };
    let (name_at, name) = cur
        .token()
        .ok_or_else(|| cur.error(0, "empty type; expected e.g. `ap_fixed<8,3>`"))?;
    let (signed, integer) = match name {
        "ap_fixed" => (true, false),
        "ap_ufixed" => (false, false),
        "ap_int" => (true, true),
        "ap_uint" => (false, true),
        other => {
            return Err(cur.error(
                name_at,
                format!("unknown type `{other}`; expected ap_fixed, ap_ufixed, ap_int or ap_uint"),
            ))
        }
    };
    cur.expect("<", "`<`")?;

    // Collect the comma-separated arguments with their offsets.
    let mut args: Vec<(usize, &str)> = Vec::new();
    let close_at;
    loop {
        let tok = cur.token();
        match tok {
            Some((at, ">")) | Some((at, ",")) => {
                return Err(cur.error(at, "missing template argument"));
            }
            Some(t) => args.push(t),
            None => return Err(cur.error(text.len(), "unterminated argument list; expected `>`")),
        }
        match cur.token() {
            Some((_, ",")) => continue,
            Some((at, ">")) => {
                close_at = at;
                break;
            }
            Some((at, t)) => return Err(cur.error(at, format!("expected `,` or `>`, found `{t}`"))),
            None => return Err(cur.error(text.len(), "unterminated argument list; expected `>`")),
        }
    }
    if let Some((at, t)) = cur.token() {
        return Err(cur.error(at, format!("unexpected `{t}` after the closing `>`")));
    }

    let max_args = if integer { 1 } else { 5 };
    let min_args = if integer { 1 } else { 2 };
    if args.len() < min_args || args.len() > max_args {
        let at = args.get(max_args).map_or(close_at, |a| a.0);
        let want = if integer {
            "exactly 1 argument (W)".to_string()
        } else {
            "2 to 5 arguments (W, I[, Q[, O[, N]]])".to_string()
        };
        return Err(cur.error(at, format!("{name} takes {want}, got {}", args.len())));
    }

    let int_arg = |(at, t): (usize, &str), what: &str| -> Result<i64, ParseFormatError> {
        t.parse::<i64>()
            .map_err(|_| cur.error(at, format!("{what} must be an integer, found `{t}`")))
    };
    let (w_at, _) = args[0];
    let width = int_arg(args[0], "the width W")?;
    if width < 1 || width > MAX_WIDTH as i64 {
        return Err(cur.error(
            w_at,
            format!("width W = {width} is outside the supported range 1..={MAX_WIDTH}"),
        ));
    }
    let int_bits = if integer {
        width as i32
    } else {
        let v = int_arg(args[1], "the integer bits I")?;
        i32::try_from(v)
            .map_err(|_| cur.error(args[1].0, format!("I = {v} does not fit in an i32")))?
    };
    let quant = match args.get(2) {
        None => Quant::Trn,
        Some(&(at, t)) => *Quant::ALL.iter().find(|q| q.cpp_name() == t).ok_or_else(|| {
            cur.error(
                at,
                format!("unknown quantization mode `{t}`; expected one of AP_TRN, AP_TRN_ZERO, AP_RND, AP_RND_ZERO, AP_RND_MIN_INF, AP_RND_INF, AP_RND_CONV"),
            )
        })?,
    };
    let overflow = match args.get(3) {
        None => Overflow::Wrap,
        Some(&(at, t)) => *Overflow::ALL.iter().find(|o| o.cpp_name() == t).ok_or_else(|| {
            cur.error(
                at,
                format!("unknown overflow mode `{t}`; expected one of AP_WRAP, AP_WRAP_SM, AP_SAT, AP_SAT_ZERO, AP_SAT_SYM"),
            )
        })?,
    };
    let sat_bits = match args.get(4) {
        None => 0,
        Some(&a) => {
            let n = int_arg(a, "the saturation bits N")?;
            if n < 0 || n > width {
                return Err(cur.error(
                    a.0,
                    format!("saturation bits N = {n} must be in 0..={width} (W)"),
                ));
            }
            n as u32
        }
    };
    if !signed && overflow == Overflow::WrapSm {
        return Err(cur.error(args[3].0, UNSIGNED_WRAP_SM));
    }
    Ok(Format {
        width: width as u32,
        int_bits,
        signed,
        quant,
        overflow,
        sat_bits,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[track_caller]
    fn parses_to(text: &str, expect: (u32, i32, bool, Quant, Overflow, u32)) {
        let f: Format = text.parse().unwrap_or_else(|e| panic!("{text}: {e}"));
        assert_eq!(
            (
                f.width(),
                f.int_bits(),
                f.is_signed(),
                f.quant(),
                f.overflow(),
                f.sat_bits()
            ),
            expect,
            "{text}"
        );
        // Printing (short or full) and parsing again is the identity.
        assert_eq!(f.to_string().parse::<Format>().unwrap(), f);
        assert_eq!(f.full_spelling().parse::<Format>().unwrap(), f);
    }

    #[test]
    fn parses_every_spelling() {
        use Overflow::*;
        use Quant::*;
        parses_to("ap_fixed<8,3>", (8, 3, true, Trn, Wrap, 0));
        parses_to(" ap_fixed < 16 , 6 > ", (16, 6, true, Trn, Wrap, 0));
        parses_to("ap_fixed<8,3,AP_RND_CONV>", (8, 3, true, RndConv, Wrap, 0));
        parses_to(
            "ap_fixed<8,3,AP_RND_CONV,AP_SAT>",
            (8, 3, true, RndConv, Sat, 0),
        );
        parses_to("ap_fixed<6,2,AP_TRN,AP_WRAP,1>", (6, 2, true, Trn, Wrap, 1));
        parses_to(
            "ap_ufixed<8,-4,AP_RND_ZERO,AP_SAT_SYM>",
            (8, -4, false, RndZero, SatSym, 0),
        );
        parses_to(
            "ap_fixed<4,12,AP_RND_MIN_INF,AP_WRAP_SM,2>",
            (4, 12, true, RndMinInf, WrapSm, 2),
        );
        parses_to(
            "ap_ufixed<64,+70,AP_RND_INF,AP_SAT_ZERO>",
            (64, 70, false, RndInf, SatZero, 0),
        );
        parses_to(
            "ap_fixed<128,1,AP_TRN_ZERO,AP_SAT>",
            (128, 1, true, TrnZero, Sat, 0),
        );
        parses_to("ap_int<7>", (7, 7, true, Trn, Wrap, 0));
        parses_to("ap_uint<1>", (1, 1, false, Trn, Wrap, 0));
        parses_to("ap_fixed<8,3,AP_RND>", (8, 3, true, Rnd, Wrap, 0));
    }

    #[track_caller]
    fn rejects(text: &str, position: usize, fragment: &str) {
        match text.parse::<Format>() {
            Ok(f) => panic!("{text} parsed as {f}"),
            Err(Error::Parse(e)) => {
                assert_eq!(e.position, position, "{text}: {e}");
                assert!(
                    e.message.contains(fragment),
                    "{text}: `{}` lacks `{fragment}`",
                    e.message
                );
            }
            Err(e) => panic!("{text}: wrong error kind {e}"),
        }
    }

    #[test]
    fn rejects_malformed_and_impossible_types() {
        rejects("", 0, "empty");
        rejects("ap_fix<8,3>", 0, "unknown type");
        rejects("ap_fixed 8,3>", 9, "expected `<`");
        rejects("ap_fixed<8,3", 12, "unterminated");
        rejects("ap_fixed<8>", 10, "2 to 5 arguments");
        rejects("ap_fixed<,3>", 9, "missing");
        rejects("ap_fixed<8,,3>", 11, "missing");
        rejects("ap_fixed<0,3>", 9, "outside the supported range");
        rejects("ap_fixed<129,3>", 9, "outside the supported range");
        rejects("ap_fixed<-8,3>", 9, "outside the supported range");
        rejects("ap_fixed<x,3>", 9, "must be an integer");
        rejects("ap_fixed<8,3.5>", 12, "expected `,` or `>`");
        rejects("ap_fixed<8,3,AP_ROUND>", 13, "unknown quantization mode");
        rejects("ap_fixed<8,3,AP_TRN,AP_CLAMP>", 20, "unknown overflow mode");
        rejects("ap_fixed<8,3,AP_TRN,AP_WRAP,9>", 28, "must be in 0..=8");
        rejects("ap_fixed<8,3,AP_TRN,AP_WRAP,-1>", 28, "must be in 0..=8");
        rejects("ap_fixed<8,3,AP_TRN,AP_WRAP,1,2>", 30, "2 to 5 arguments");
        rejects("ap_int<8,3>", 9, "exactly 1 argument");
        rejects("ap_fixed<8,3>x", 13, "after the closing");
        rejects("ap_fixed<8,99999999999>", 11, "does not fit in an i32");
        rejects(
            "ap_ufixed<8,3,AP_TRN,AP_WRAP_SM>",
            21,
            "ap_ufixed cannot use AP_WRAP_SM",
        );
    }

    #[test]
    fn code_range() {
        let s = Format::signed(8, 3).unwrap();
        assert_eq!((s.min_code(), s.max_code()), (-128, 127));
        let u = Format::unsigned(8, 3).unwrap();
        assert_eq!((u.min_code(), u.max_code()), (0, 255));
        let w = Format::signed(128, 0).unwrap();
        assert_eq!((w.min_code(), w.max_code()), (i128::MIN, i128::MAX));
        assert!(Format::new(8, 3, true, Quant::Trn, Overflow::Wrap, 9).is_err());
        assert!(Format::signed(0, 0).is_err());
    }
}
