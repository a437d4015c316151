//! Assignment of an exact integer-scaled value to a format, on plain integers.
//!
//! For `AP_SAT`, `AP_SAT_SYM`, `AP_SAT_ZERO` and `AP_WRAP` with `N = 0` the header procedure
//! equals "round with `Q`, then clamp / zero / keep the low `W` bits", which is what
//! [`Target::assign`] computes. For `AP_WRAP_SM` and `AP_WRAP` with `N > 0` only an in-range
//! result is computed here; anything else returns `None` and the caller takes the `Fixed` path.
//! Every answer is checked against `Fixed::cast` by this module's property tests.

use qfx_fixed::{Format, OverflowRule, Quant};

use crate::reference::unbounded;

/// How an out-of-range rounded code is repaired.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Repair {
    /// `AP_SAT`, `AP_SAT_SYM`: clamp to `[lo, hi]`.
    Clamp,
    /// `AP_SAT_ZERO`.
    Zero,
    /// `AP_WRAP` with `N = 0`: keep the low `W` bits.
    Wrap,
    /// `AP_WRAP_SM`, `AP_WRAP` with `N > 0`: only in-range values are handled here.
    InRangeOnly,
    /// Formats whose overflow test the reference cannot build: always the `Fixed` path.
    General,
}

/// A precomputed assignment target.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Target {
    pub format: Format,
    /// Fractional bits `F`.
    pub frac: i64,
    /// Smallest code that is not an overflow (`−max` for a signed `AP_SAT_SYM` format wider than
    /// one bit).
    pub lo: i128,
    /// Largest code.
    pub hi: i128,
    pub repair: Repair,
}

impl Target {
    pub fn new(format: Format) -> Target {
        let (lo, hi) = format.assignable_range();
        let repair = if unbounded(format).is_none() {
            Repair::General
        } else {
            match format.overflow_rule() {
                OverflowRule::Clamp => Repair::Clamp,
                OverflowRule::Zero => Repair::Zero,
                OverflowRule::Wrap => Repair::Wrap,
                OverflowRule::General => Repair::InRangeOnly,
            }
        };
        Target {
            format,
            frac: format.frac_bits(),
            lo,
            hi,
            repair,
        }
    }

    /// `v · 2^−from_frac` assigned to the format: the code and whether it overflowed (the
    /// rounded value was out of range), or `None` where the `Fixed` path must decide.
    #[inline]
    pub fn assign(&self, v: i128, from_frac: i64) -> Option<(i128, bool)> {
        let q = rescale(v, from_frac, self.frac, self.format.quant())?;
        self.repair_code(q)
    }

    /// The assignment of an already rounded code `q` (in units of the format's LSB).
    #[inline]
    pub fn repair_code(&self, q: i128) -> Option<(i128, bool)> {
        if self.repair == Repair::General {
            return None;
        }
        if q >= self.lo && q <= self.hi {
            return Some((q, false));
        }
        match self.repair {
            Repair::Clamp => Some((q.clamp(self.lo, self.hi), true)),
            Repair::Zero => Some((0, true)),
            Repair::Wrap => Some((wrap(q, self.format), true)),
            Repair::InRangeOnly | Repair::General => None,
        }
    }
}

/// `v · 2^−from` rounded with `q` onto the grid `2^−to`, as a code; `None` if it does not fit in
/// an `i128` or the shift is too long for the shortcut.
#[inline]
pub(crate) fn rescale(v: i128, from: i64, to: i64, q: Quant) -> Option<i128> {
    let d = to - from;
    if d >= 0 {
        if d > 126 {
            return if v == 0 { Some(0) } else { None };
        }
        v.checked_mul(1i128 << d)
    } else if d >= -126 {
        Some(round_shift(v, (-d) as u32, q))
    } else {
        None
    }
}

/// `v / 2^d` rounded to an integer with the quantization mode's rule, `1 ≤ d ≤ 126`.
#[inline]
pub(crate) fn round_shift(v: i128, d: u32, q: Quant) -> i128 {
    let floor = v >> d;
    let rem = v - (floor << d);
    let half = 1i128 << (d - 1);
    let up = match q {
        Quant::Trn => false,
        Quant::TrnZero => v < 0 && rem != 0,
        Quant::Rnd => rem >= half,
        Quant::RndZero => rem > half || (rem == half && v < 0),
        Quant::RndMinInf => rem > half,
        Quant::RndInf => rem > half || (rem == half && v >= 0),
        Quant::RndConv => rem > half || (rem == half && floor & 1 == 1),
    };
    floor + up as i128
}

/// `q` reduced modulo `2^W` into the format's code range (two's complement when signed).
#[inline]
pub(crate) fn wrap(q: i128, f: Format) -> i128 {
    let w = f.width();
    if w >= 128 {
        return q;
    }
    let m = (q as u128) & ((1u128 << w) - 1);
    if f.is_signed() && (m >> (w - 1)) & 1 == 1 {
        (m | !((1u128 << w) - 1)) as i128
    } else {
        m as i128
    }
}

/// An `f32` as `m · 2^e` with an integer `m` (`None` for zero).
#[inline]
pub(crate) fn decompose_f32(x: f32) -> Option<(i128, i64)> {
    if x == 0.0 {
        return None;
    }
    let bits = (x as f64).to_bits();
    let exp = ((bits >> 52) & 0x7ff) as i64;
    let man = ((bits & ((1u64 << 52) - 1)) | (1u64 << 52)) as i128;
    let man = if bits >> 63 == 1 { -man } else { man };
    Some((man, exp - 1075))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use qfx_fixed::{Fixed, Overflow};

    fn format_strategy() -> impl Strategy<Value = Format> {
        (
            1u32..=64,
            -6i32..=6,
            any::<bool>(),
            prop::sample::select(Quant::ALL.to_vec()),
            prop::sample::select(Overflow::ALL.to_vec()),
            0u32..=2,
        )
            .prop_map(|(w, di, signed, q, o, n)| {
                let signed = signed || o == Overflow::WrapSm;
                Format::new(w, w as i32 / 2 + di, signed, q, o, n.min(w)).unwrap()
            })
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(3000))]

        /// Integer assignment equals `Fixed::cast` (and its overflow flag the reference's).
        #[test]
        fn assign_equals_fixed_cast(
            from in format_strategy(),
            to in format_strategy(),
            raw in any::<u128>(),
            near in -4i128..=4,
            pick in 0u8..4,
        ) {
            // Arbitrary codes, and codes next to the target's range ends.
            let code = match pick {
                0 => Fixed::from_raw_bits(raw, from).code().unwrap(),
                1 => (to.max_code() + near).clamp(from.min_code(), from.max_code()),
                2 => (to.min_code() + near).clamp(from.min_code(), from.max_code()),
                _ => near.clamp(from.min_code(), from.max_code()),
            };
            let v = Fixed::from_code(code, from).unwrap();
            let (want, want_o) = crate::reference::assign(&v, to);
            if let Some((got, o)) = Target::new(to).assign(code, from.frac_bits()) {
                prop_assert_eq!((got as i64, o), (want, want_o), "{} -> {}", v, to);
            } else {
                prop_assert!(matches!(to.overflow(), Overflow::WrapSm | Overflow::Wrap));
            }
        }

        /// The `f32` input conversion equals `Fixed::from_f32_hls`.
        #[test]
        fn f32_input_equals_fixed(to in format_strategy(), bits in any::<u32>(), scale in -8i32..8) {
            let x = f32::from_bits(bits);
            let x = if x.is_finite() { x } else { scale as f32 * 0.3 };
            let x = x * 2f32.powi(scale);
            prop_assume!(x.is_finite());
            let (want, want_o) = crate::reference::from_input(x, to);
            let t = Target::new(to);
            let got = match decompose_f32(x) {
                None => t.repair_code(0),
                Some((m, e)) => t.assign(m, -e),
            };
            if let Some((got, o)) = got {
                prop_assert_eq!((got as i64, o), (want, want_o), "{} -> {}", x, to);
            }
        }
    }

    #[test]
    fn round_shift_ties() {
        // ±2.5 and ±1.5 (d = 1): each mode's tie rule.
        let table: [(Quant, [i128; 4]); 7] = [
            (Quant::Trn, [2, -3, 1, -2]),
            (Quant::TrnZero, [2, -2, 1, -1]),
            (Quant::Rnd, [3, -2, 2, -1]),
            (Quant::RndZero, [2, -2, 1, -1]),
            (Quant::RndMinInf, [2, -3, 1, -2]),
            (Quant::RndInf, [3, -3, 2, -2]),
            (Quant::RndConv, [2, -2, 2, -2]),
        ];
        for (q, want) in table {
            let got = [5, -5, 3, -3].map(|v| round_shift(v, 1, q));
            assert_eq!(got, want, "{q}");
        }
    }
}
