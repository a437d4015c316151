//! Numbers as text: decimal and C hexadecimal floating point (`0x1.8p-3`), both ways.

use crate::error::Error;
use crate::value::round_to_binary;

/// Parses a decimal (`-0.1`, `1e-5`, `.5`) or C hexadecimal floating-point literal (`0x1.8p-3`,
/// `-0X1P+4`, `0x.8`) to the nearest `f64`, ties to even, as C's `strtod` does. Surrounding
/// whitespace is ignored. `inf`/`nan` spellings are accepted as `strtod` accepts them; the
/// checked conversions then reject them. A finite literal whose magnitude rounds beyond the
/// largest `f64` (`1e400`) is an error saying so, where `strtod` would give an infinity.
///
/// ```
/// use qfx_fixed::parse_f64;
/// assert_eq!(parse_f64("0x1.8p-3").unwrap(), 0.1875);
/// assert_eq!(parse_f64(" -1e-5 ").unwrap(), -1e-5);
/// assert!(parse_f64("1.2.3").is_err());
/// assert!(parse_f64("1e400").unwrap_err().to_string().contains("outside the range of a double"));
/// ```
pub fn parse_f64(text: &str) -> Result<f64, Error> {
    let t = text.trim();
    let (negative, body) = match t.as_bytes().first() {
        Some(b'-') => (true, &t[1..]),
        Some(b'+') => (false, &t[1..]),
        _ => (false, t),
    };
    let value = if let Some(hex) = body.strip_prefix("0x").or_else(|| body.strip_prefix("0X")) {
        parse_hex_body(hex).ok_or_else(|| not_a_number(text))?
    } else {
        // Rust's parser is correctly rounded; refuse the spellings C would not accept.
        if body.is_empty() || body.starts_with(['+', '-']) {
            return Err(not_a_number(text));
        }
        body.parse::<f64>().map_err(|_| not_a_number(text))?
    };
    let spelled_infinity = ["inf", "infinity"]
        .iter()
        .any(|s| body.eq_ignore_ascii_case(s));
    if value.is_infinite() && !spelled_infinity {
        return Err(Error::ParseNumber(format!(
            "`{}` is outside the range of a double (largest magnitude about 1.8e308)",
            text.trim()
        )));
    }
    Ok(if negative { -value } else { value })
}

fn not_a_number(text: &str) -> Error {
    Error::ParseNumber(format!(
        "`{}` is not a number (expected decimal like -0.1 or 1e-5, or hex float like 0x1.8p-3)",
        text.trim()
    ))
}

/// `hhh[.hhh][p[+-]ddd]` after the `0x` prefix.
fn parse_hex_body(s: &str) -> Option<f64> {
    let (digits, exp) = match s.find(['p', 'P']) {
        Some(i) => (&s[..i], Some(&s[i + 1..])),
        None => (s, None),
    };
    let exp: i64 = match exp {
        None => 0,
        Some(e) => {
            let unsigned = e.strip_prefix(['+', '-']).unwrap_or(e);
            if unsigned.is_empty() || !unsigned.bytes().all(|b| b.is_ascii_digit()) {
                return None;
            }
            // Clamp absurd exponents: the result is 0 or Inf long before.
            let v: i64 = unsigned.parse().unwrap_or(i64::MAX / 4).min(1 << 40);
            if e.starts_with('-') {
                -v
            } else {
                v
            }
        }
    };
    let (int_digits, frac_digits) = match digits.find('.') {
        Some(i) => (&digits[..i], &digits[i + 1..]),
        None => (digits, ""),
    };
    if int_digits.is_empty() && frac_digits.is_empty() {
        return None;
    }
    // Keep 120 significant bits; anything further only matters as a sticky bit.
    let mut mant: u128 = 0;
    let mut sticky = false;
    let mut scale: i64 = exp; // value = mant · 2^scale
    for (i, c) in int_digits.chars().chain(frac_digits.chars()).enumerate() {
        let d = c.to_digit(16)? as u128;
        let is_frac = i >= int_digits.len();
        if mant >> 116 == 0 {
            mant = mant << 4 | d;
            if is_frac {
                scale -= 4;
            }
        } else {
            sticky |= d != 0;
            if !is_frac {
                scale += 4;
            }
        }
    }
    // The sticky bit sits far below f64's rounding position once the mantissa is shifted up.
    let mag = (mant << 1) | sticky as u128;
    Some(round_to_binary(mag, 1 - scale, 53, -1074))
}

/// Formats an `f64` as a C hexadecimal floating-point literal (`%a` style), which `strtod` and
/// [`parse_f64`] read back exactly: `0x1.8p-3`, `-0x1p+0`, `0x0p+0`, subnormals as
/// `0x0.0000000000001p-1022`, and `inf`/`-inf`/`nan`.
pub fn hex_f64(x: f64) -> String {
    let sign = if x.is_sign_negative() { "-" } else { "" };
    if x.is_nan() {
        return "nan".to_string();
    }
    if x.is_infinite() {
        return format!("{sign}inf");
    }
    let bits = x.to_bits();
    let exp_field = ((bits >> 52) & 0x7ff) as i64;
    let man = bits & ((1u64 << 52) - 1);
    let (lead, exp) = match exp_field {
        0 if man == 0 => return format!("{sign}0x0p+0"),
        0 => (0, -1022),
        e => (1, e - 1023),
    };
    let frac = format!("{man:013x}");
    let frac = frac.trim_end_matches('0');
    let dot = if frac.is_empty() { "" } else { "." };
    format!("{sign}0x{lead}{dot}{frac}p{exp:+}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_numbers() {
        let table: [(&str, f64); 16] = [
            ("0x1.8p-3", 0.1875),
            ("-0X1P+4", -16.0),
            ("0x.8", 0.5),
            ("0x10", 16.0),
            ("0x1.fffffffffffff8p0", 2.0), // tie rounds to even (up)
            ("0x1.fffffffffffff7p0", 2.0 - f64::EPSILON),
            ("0x1p-1074", f64::from_bits(1)),
            ("0x1p-1075", 0.0), // tie to even: 0
            ("0x1.8p-1075", f64::from_bits(1)),
            ("0x1.fffffffffffffp1023", f64::MAX),
            ("inf", f64::INFINITY),
            ("-Infinity", f64::NEG_INFINITY),
            ("-0.1", -0.1),
            ("1e-5", 1e-5),
            ("+.5", 0.5),
            (
                "0x123456789abcdef0123456789p-100",
                0x123456789abcdef0123456789u128 as f64 * 2f64.powi(-100),
            ),
        ];
        for (text, want) in table {
            assert_eq!(parse_f64(text).unwrap(), want, "{text}");
        }
        for bad in [
            "", "-", "abc", "1.2.3", "0x", "0xp3", "0x1p", "0x1.g", "--1", "1e", "0x1p+-3",
        ] {
            assert!(parse_f64(bad).is_err(), "{bad:?} parsed");
        }
    }

    #[test]
    fn finite_literals_beyond_the_double_range_are_errors() {
        for big in [
            "1e400",
            "-1e400",
            "0x1p1024",
            "-0x1p1024",
            "1.8e308",
            "0x1.fffffffffffff8p1023",
        ] {
            let err = parse_f64(big).unwrap_err().to_string();
            assert!(
                err.contains(big) && err.contains("outside the range of a double"),
                "{big}: {err}"
            );
        }
        // Underflow is rounding, as in strtod: tiny values become 0 or a subnormal.
        assert_eq!(parse_f64("1e-400").unwrap(), 0.0);
        assert_eq!(parse_f64("1.7976931348623157e308").unwrap(), f64::MAX);
    }

    #[test]
    fn hex_round_trips() {
        for x in [
            0.1875,
            -16.0,
            0.1,
            f64::MAX,
            f64::MIN_POSITIVE,
            f64::from_bits(1),
            1.0,
            -0.0,
            0.0,
            3e-310,
        ] {
            let h = hex_f64(x);
            assert_eq!(parse_f64(&h).unwrap().to_bits(), x.to_bits(), "{x} -> {h}");
        }
        assert_eq!(hex_f64(0.1875), "0x1.8p-3");
        assert_eq!(hex_f64(-1.0), "-0x1p+0");
    }
}
