//! Exact decimal text of `±mag · 2^−frac`: every binary fraction has a finite decimal expansion.

/// Above this many binary places the exact decimal would run to tens of thousands of digits;
/// such values are printed exactly as `m*2^e` instead.
const MAX_DECIMAL_SHIFT: i64 = 1 << 16;

/// A non-negative integer in base 10^9, least significant limb first.
struct BigDec(Vec<u32>);

const BASE: u64 = 1_000_000_000;

impl BigDec {
    fn from_u128(mut v: u128) -> BigDec {
        let mut limbs = Vec::new();
        while v > 0 {
            limbs.push((v % BASE as u128) as u32);
            v /= BASE as u128;
        }
        BigDec(limbs)
    }

    fn mul_small(&mut self, m: u32) {
        let mut carry = 0u64;
        for limb in &mut self.0 {
            let t = *limb as u64 * m as u64 + carry;
            *limb = (t % BASE) as u32;
            carry = t / BASE;
        }
        while carry > 0 {
            self.0.push((carry % BASE) as u32);
            carry /= BASE;
        }
    }

    /// Multiplies by `base^exp`, `base^chunk` at a time (`base^chunk` must fit in a u32).
    fn mul_pow(&mut self, base: u32, chunk: u32, mut exp: u64) {
        while exp > 0 {
            let step = exp.min(chunk as u64) as u32;
            self.mul_small(base.pow(step));
            exp -= step as u64;
        }
    }

    fn digits(&self) -> String {
        let mut out = String::new();
        for (i, limb) in self.0.iter().rev().enumerate() {
            if i == 0 {
                out.push_str(&limb.to_string());
            } else {
                out.push_str(&format!("{limb:09}"));
            }
        }
        if out.is_empty() {
            out.push('0');
        }
        out
    }
}

/// The exact decimal value of `±mag · 2^−frac`: no exponent, no trailing zeros, never `-0`.
pub(crate) fn exact_decimal(negative: bool, mag: u128, frac: i64) -> String {
    if mag == 0 {
        return "0".to_string();
    }
    let sign = if negative { "-" } else { "" };
    if frac.abs() > MAX_DECIMAL_SHIFT {
        return format!("{sign}{mag}*2^{}", -frac);
    }
    let mut n = BigDec::from_u128(mag);
    if frac <= 0 {
        n.mul_pow(2, 31, frac.unsigned_abs());
        return format!("{sign}{}", n.digits());
    }
    // mag / 2^frac = mag · 5^frac / 10^frac.
    n.mul_pow(5, 13, frac as u64);
    let digits = n.digits();
    let frac = frac as usize;
    let padded = if digits.len() <= frac {
        format!("{}{digits}", "0".repeat(frac + 1 - digits.len()))
    } else {
        digits
    };
    let (int_part, frac_part) = padded.split_at(padded.len() - frac);
    let frac_part = frac_part.trim_end_matches('0');
    if frac_part.is_empty() {
        format!("{sign}{int_part}")
    } else {
        format!("{sign}{int_part}.{frac_part}")
    }
}

#[cfg(test)]
mod tests {
    use super::exact_decimal;

    #[test]
    fn exact_decimals() {
        let table: [(bool, u128, i64, &str); 10] = [
            (false, 0, 5, "0"),
            (true, 0, 5, "0"),
            (false, 23, 4, "1.4375"),
            (true, 23, 4, "-1.4375"),
            (false, 240, 4, "15"),
            (false, 3, -4, "48"),
            (false, 1, 10, "0.0009765625"),
            (true, 1, 1, "-0.5"),
            (
                false,
                u128::MAX,
                0,
                "340282366920938463463374607431768211455",
            ),
            (false, 1, -100, "1267650600228229401496703205376"),
        ];
        for (neg, mag, frac, want) in table {
            assert_eq!(exact_decimal(neg, mag, frac), want, "{neg} {mag} {frac}");
        }
        let tiny = exact_decimal(false, 1, 1074);
        assert!(tiny.starts_with("0.000") && tiny.ends_with("5") && tiny.len() == 1076);
        assert_eq!(exact_decimal(true, 5, 100_000), "-5*2^-100000");
    }
}
