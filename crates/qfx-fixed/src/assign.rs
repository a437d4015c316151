//! Assignment of one fixed-point value (or a `double`) to a declared format: the single place
//! where quantization and overflow happen.
//!
//! This follows, step for step, what the Xilinx `ap_fixed_base` assignment operator and `double`
//! constructor compute on raw bits: shift to the target's binary point, apply the rounding
//! increment, then repair overflow from the bits that were shifted out. Reproducing the
//! procedure (instead of a textbook "round, then clamp or wrap") matters for the wrap modes:
//! `AP_WRAP` with `N > 0` and `AP_WRAP_SM` are *defined* by this bit manipulation, including
//! which bit is taken as the "last deleted" bit when rounding carries into it.

use crate::format::{Format, Overflow, Quant};

/// A source operand: `width` raw bits (two's complement when `signed`) with `int_bits` integer bits.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Source {
    pub bits: u128,
    pub width: u32,
    pub int_bits: i64,
    pub signed: bool,
}

impl Source {
    /// The raw bits of a value of `format`.
    pub fn of(bits: u128, format: &Format) -> Source {
        Source {
            bits,
            width: format.width(),
            int_bits: format.int_bits() as i64,
            signed: format.is_signed(),
        }
    }

    /// A `double` decomposed exactly as the `ap_fixed_base(double)` constructor does: a 54-bit
    /// signed mantissa `±1.m` (the hidden bit is set even for subnormals and for Inf/NaN, whose
    /// exponent field reads as 1024) with `I = exp + 2`. `None` for ±0.
    pub fn from_f64(x: f64) -> Option<Source> {
        let raw = x.to_bits();
        if raw & !(1u64 << 63) == 0 {
            return None;
        }
        let exp = ((raw >> 52) & 0x7ff) as i64 - 1023;
        let man = ((raw & ((1u64 << 52) - 1)) | (1u64 << 52)) as i128;
        let man = if raw >> 63 == 1 { -man } else { man };
        Some(Source {
            bits: man as u128 & low_mask(54),
            width: 54,
            int_bits: exp + 2,
            signed: true,
        })
    }
}

/// Mask of the low `n` bits, `n` in 0..=128.
#[inline]
pub(crate) const fn low_mask(n: i64) -> u128 {
    if n >= 128 {
        u128::MAX
    } else if n <= 0 {
        0
    } else {
        (1u128 << n) - 1
    }
}

#[inline]
fn bit(v: u128, i: i64) -> bool {
    (0..128).contains(&i) && (v >> i) & 1 == 1
}

#[inline]
fn set_bit(v: u128, i: i64, on: bool) -> u128 {
    if on {
        v | (1u128 << i)
    } else {
        v & !(1u128 << i)
    }
}

/// Sets bits `lo..=hi` to all ones (`ones`) or all zeros.
#[inline]
fn set_range(v: u128, lo: i64, hi: i64, ones: bool) -> u128 {
    let m = low_mask(hi + 1) & !low_mask(lo);
    if ones {
        v | m
    } else {
        v & !m
    }
}

/// The raw `W`-bit pattern HLS stores when `src` is assigned to a variable of type `dst`.
pub(crate) fn assign(src: Source, dst: &Format) -> u128 {
    let w = dst.width() as i64;
    let mask = dst.mask();
    let (q, o, n) = (dst.quant(), dst.overflow(), dst.sat_bits() as i64);
    let s = dst.is_signed();
    let f = dst.frac_bits();

    let w2 = src.width as i64;
    let s2 = src.signed;
    let f2 = w2 - src.int_bits;
    let bits = src.bits & low_mask(w2);
    let signbit = bit(bits, w2 - 1);
    let isneg = signbit && s2;
    // The source extended to 128 bits the way C++ widens it (sign- or zero-extension).
    let ext = if isneg { bits | !low_mask(w2) } else { bits };
    // Whether the mode ever adds a rounding increment (toward zero on an unsigned source is floor).
    let mode_rounds = match q {
        Quant::Trn => false,
        Quant::TrnZero => s2,
        _ => true,
    };
    let quant_inc = f2 > f && mode_rounds;

    let mut carry = false;
    let mut v;
    if f2 > f {
        // Move the binary point left: drop `sh` bits, then round.
        let sh = f2 - f;
        v = if sh < w2 {
            let shifted = if s2 {
                ((ext as i128) >> sh) as u128
            } else {
                ext >> sh
            };
            shifted & mask
        } else if isneg {
            mask
        } else {
            0
        };
        if mode_rounds {
            let qb = if sh > w2 { isneg } else { bit(bits, sh - 1) };
            let r = sh > 1 && bits & low_mask((sh - 1).min(w2)) != 0;
            carry = quantization_adjust(&mut v, w, mask, q, qb, r, isneg);
        }
    } else {
        // Move the binary point right: exact, but the high bits may fall off the word.
        let sh = f - f2;
        v = if sh < w { (ext << sh) & mask } else { 0 };
    }

    // The headers skip overflow handling when the source type provably fits.
    let may_overflow = (!s && s2)
        || (dst.int_bits() as i64 - s as i64)
            < (src.int_bits - s2 as i64 + (quant_inc || (s2 && o == Overflow::SatSym)) as i64);
    if (o != Overflow::Wrap || n != 0) && may_overflow {
        let mut deleted_zeros = if s2 { true } else { !carry };
        let deleted_ones;
        let neg_src;
        let newsignbit = bit(v, w - 1);
        // pos1: the first source bit above the kept window ("last deleted" bit lD).
        let pos1 = f2 - f + w;
        let pos2 = pos1 + 1;
        let ld = (0..w2).contains(&pos1) && bit(bits, pos1);
        if pos1 < w2 {
            let all_ones = low_mask(w2);
            let mut range1_all_ones = true;
            let mut range1_all_zeros = true;
            let mut range2_all_ones = true;
            if (0..w2).contains(&pos2) {
                range2_all_ones = bits >> pos2 == all_ones >> pos2;
            } else if pos2 < 0 {
                range2_all_ones = false;
            }
            if pos1 >= 0 && pos2 < w2 {
                range1_all_ones = bits >> pos1 == all_ones >> pos1;
                range1_all_zeros = bits >> pos1 == 0;
            } else if pos2 == w2 {
                range1_all_ones = ld;
                range1_all_zeros = !ld;
            } else if pos1 < 0 {
                range1_all_zeros = bits == 0;
                range1_all_ones = false;
            }
            deleted_zeros = deleted_zeros
                && if carry {
                    range1_all_ones
                } else {
                    range1_all_zeros
                };
            deleted_ones = if carry {
                range2_all_ones && (pos1 < 0 || !ld)
            } else {
                range1_all_ones
            };
            neg_src = isneg && !(carry && range1_all_ones);
        } else {
            deleted_ones = true;
            neg_src = isneg && newsignbit;
        }
        let neg_trg = s && newsignbit;
        let overflow = (neg_trg || !deleted_zeros) && !isneg;
        let mut underflow = (!neg_trg || !deleted_ones) && neg_src;
        if o == Overflow::SatSym && s2 && s {
            underflow |= neg_src && v & low_mask(w - 1) == 0;
        }
        v = overflow_adjust(v, dst, underflow, overflow, ld, neg_src);
    }
    v
}

/// Adds the rounding increment to `v`; returns whether the word's MSB flipped from 1 to 0
/// (the "carry" the overflow logic needs).
#[inline]
fn quantization_adjust(
    v: &mut u128,
    w: i64,
    mask: u128,
    q: Quant,
    qb: bool,
    r: bool,
    s: bool,
) -> bool {
    let msb_before = bit(*v, w - 1);
    let inc = match q {
        Quant::Trn => return false,
        Quant::Rnd => qb,
        Quant::RndZero => qb && (s || r),
        Quant::RndMinInf => qb && r,
        Quant::RndInf => qb && (!s || r),
        Quant::RndConv => qb && (bit(*v, 0) || r),
        Quant::TrnZero => s && (qb || r),
    };
    *v = v.wrapping_add(inc as u128) & mask;
    msb_before && !bit(*v, w - 1)
}

fn overflow_adjust(
    v: u128,
    dst: &Format,
    underflow: bool,
    overflow: bool,
    ld: bool,
    sign: bool,
) -> u128 {
    if !underflow && !overflow {
        return v;
    }
    let w = dst.width() as i64;
    let n = dst.sat_bits() as i64;
    let mask = dst.mask();
    let s = dst.is_signed();
    match dst.overflow() {
        Overflow::Wrap => {
            if n == 0 {
                v
            } else if s {
                let v = set_bit(v, w - 1, sign);
                if n > 1 {
                    set_range(v, w - n, w - 2, !sign)
                } else {
                    v
                }
            } else {
                set_range(v, w - n, w - 1, true)
            }
        }
        Overflow::SatZero => 0,
        Overflow::WrapSm if s => {
            let ro = bit(v, w - 1);
            if n == 0 {
                if ld != ro {
                    set_bit(!v & mask, w - 1, ld)
                } else {
                    v
                }
            } else {
                let mut v = v;
                if n == 1 && sign != ro {
                    v = !v & mask;
                } else if n > 1 {
                    if bit(v, w - n) == sign {
                        v = !v & mask;
                    }
                    v = set_range(v, w - n, w - 2, !sign);
                }
                set_bit(v, w - 1, sign)
            }
        }
        // AP_SAT and AP_SAT_SYM (unsigned AP_WRAP_SM cannot be constructed).
        _ => {
            if s {
                if overflow {
                    mask >> 1
                } else {
                    let min = 1u128 << (w - 1);
                    if dst.overflow() == Overflow::SatSym {
                        min | 1
                    } else {
                        min
                    }
                }
            } else if overflow {
                mask
            } else {
                0
            }
        }
    }
}
