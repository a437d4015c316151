//! Assignment of a code to a format, in logic: the Verilog of `Fixed::cast`
//! (`qfx-fixed/src/assign.rs`, the one home of the rule; `ARCHITECTURE.md` §3).
//!
//! Both formats are known when the design is generated, so every decision of the assignment
//! that depends on formats only (shift amounts, which modes round, whether overflow is
//! possible, which bits are "deleted") is taken here in Rust, and only the data-dependent part
//! becomes logic. Two constructions:
//!
//! - **By value** ([`OverflowRule::Clamp`], [`OverflowRule::Zero`], [`OverflowRule::Wrap`]):
//!   round the exact value onto the target's grid with the mode's increment (from the bit below
//!   the kept LSB, the sticky OR of the rest, the sign and the kept LSB), then repair a rounded
//!   code outside [`Format::assignable_range`] by the format's [`Format::overflow_rule`]. The
//!   comparisons are left out where the source range cannot reach a bound.
//! - **Bit for bit** ([`OverflowRule::General`]: `AP_WRAP` with `N > 0`, `AP_WRAP_SM`): the
//!   headers' procedure step by step (shift, rounding increment and its carry out of the MSB,
//!   the all-ones/all-zeros tests of the deleted high bits, the overflow and underflow flags,
//!   the mode's repair), transliterated from `qfx-fixed`'s `assign`. It computes every mode and
//!   is tested on every mode; the value construction is only the smaller circuit.

use qfx_fixed::{Format, Overflow, OverflowRule, Quant};

use crate::verilog::{ceil_shr, ext, floor_shr, lit, signed_bits, Body, Sig};

/// Which construction a cast uses.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum CastLogic {
    /// By value where the overflow rule allows it, else bit for bit (the default).
    #[default]
    Auto,
    /// Always the bit-for-bit procedure (for tests: both constructions must agree with
    /// `Fixed::cast` on every mode).
    BitLevel,
}

/// `x`, a code of `from`, assigned to `to`. `range` narrows the codes `x` can hold (it prunes
/// overflow comparisons only). Returns a `to.width()`-bit wire.
pub(crate) fn cast(
    b: &mut Body,
    x: &Sig,
    from: Format,
    to: Format,
    range: Option<(i128, i128)>,
    logic: CastLogic,
) -> Sig {
    debug_assert_eq!((x.width, x.signed), (from.width(), from.is_signed()));
    if logic == CastLogic::BitLevel || to.overflow_rule() == OverflowRule::General {
        bit_level(b, x, from, to)
    } else {
        by_value(b, x, from, to, range)
    }
}

/// The sign of `x` as a one-bit expression (`1'b0` for unsigned codes).
fn sign_of(x: &Sig) -> String {
    if x.signed {
        format!("{}[{}]", x.name, x.width - 1)
    } else {
        "1'b0".to_string()
    }
}

/// Bit `i` of `x` sign- or zero-extended to any width, as an expression.
fn bit_of(x: &Sig, i: u64) -> String {
    if i < x.width as u64 {
        format!("{}[{i}]", x.name)
    } else {
        sign_of(x)
    }
}

/// The rounding increment of `q` when `sh ≥ 1` bits of `x` are dropped (the `quantization_adjust`
/// rule), or `None` when the mode never rounds up for this source. `lsb` is the kept LSB.
fn increment(x: &Sig, q: Quant, sh: u64, lsb: &str) -> Option<String> {
    let isneg = sign_of(x);
    let w2 = x.width as u64;
    let qb = if sh > w2 {
        isneg.clone()
    } else {
        bit_of(x, sh - 1)
    };
    let r = if sh > 1 {
        format!("(|{}[{}:0])", x.name, (sh - 1).min(w2) - 1)
    } else {
        "1'b0".to_string()
    };
    Some(match q {
        Quant::Trn => return None,
        Quant::TrnZero if !x.signed => return None,
        Quant::TrnZero => format!("{isneg} & ({qb} | {r})"),
        Quant::Rnd => qb,
        Quant::RndZero => format!("{qb} & ({isneg} | {r})"),
        Quant::RndMinInf => format!("{qb} & {r}"),
        Quant::RndInf => format!("{qb} & (~{isneg} | {r})"),
        Quant::RndConv => format!("{qb} & ({lsb} | {r})"),
    })
}

/// `x < c` (or `x > c` with `greater`) as a one-bit expression, compared as integers.
fn compare(x: &Sig, c: i128, greater: bool) -> String {
    let n = (x.width + !x.signed as u32).max(signed_bits(c, c));
    let op = if greater { ">" } else { "<" };
    format!("($signed({}) {op} $signed({}))", ext(x, n), lit(n, c))
}

/// The value construction (see the module documentation).
fn by_value(b: &mut Body, x: &Sig, from: Format, to: Format, range: Option<(i128, i128)>) -> Sig {
    let (xlo, xhi) = range.unwrap_or((from.min_code(), from.max_code()));
    let w = to.width();
    let (lo, hi) = to.assignable_range();
    let (f2, f) = (from.frac_bits(), to.frac_bits());
    // The kept bits, and the conditions "below lo" and "above hi" when they can happen.
    let (low, under, over): (String, Option<String>, Option<String>) = if f2 > f {
        let sh = (f2 - f) as u64;
        let w2 = x.width as u64;
        let floor = if sh < w2 {
            Sig {
                name: format!("{}[{}:{sh}]", x.name, w2 - 1),
                width: (w2 - sh) as u32,
                signed: x.signed,
            }
        } else {
            Sig {
                name: sign_of(x),
                width: 1,
                signed: x.signed,
            }
        };
        let shr = |v: i128| floor_shr(v, sh.min(200) as u32);
        let (flo, fhi) = (shr(xlo), shr(xhi));
        let lsb = bit_of(x, sh);
        let (r, rlo, rhi) = match increment(x, to.quant(), sh, &lsb) {
            Some(inc) => {
                let wr = signed_bits(flo, fhi + 1);
                let inc = b.flag("inc", &inc);
                let expr = format!("{} + {}", ext(&floor, wr), ext(&inc, wr));
                (b.wire("rnd", wr, true, &expr), flo, fhi + 1)
            }
            None => {
                let r = b.wire("rnd", floor.width, floor.signed, &floor.name);
                (r, flo, fhi)
            }
        };
        let under = (rlo < lo).then(|| compare(&r, lo, false));
        let over = (rhi > hi).then(|| compare(&r, hi, true));
        (ext(&r, w), under, over)
    } else {
        let sh = (f - f2) as u64;
        let low = if sh >= w as u64 {
            lit(w, 0)
        } else if sh == 0 {
            ext(x, w)
        } else {
            format!("{{{}, {sh}'b0}}", ext(x, w - sh as u32))
        };
        // x·2^sh < lo ⟺ x < ceil(lo / 2^sh); x·2^sh > hi ⟺ x > floor(hi / 2^sh).
        let sh = sh.min(200) as u32;
        let (tl, th) = (ceil_shr(lo, sh), floor_shr(hi, sh));
        let under = (xlo < tl).then(|| compare(x, tl, false));
        let over = (xhi > th).then(|| compare(x, th, true));
        (low, under, over)
    };
    let expr = match (to.overflow_rule(), under, over) {
        (OverflowRule::Wrap, _, _) | (_, None, None) => low,
        (OverflowRule::Clamp, u, o) => {
            let mut e = low;
            if let Some(o) = o {
                e = format!("{o} ? {} : {e}", lit(w, hi));
            }
            if let Some(u) = u {
                e = format!("{u} ? {} : {e}", lit(w, lo));
            }
            e
        }
        (OverflowRule::Zero, u, o) => {
            let cond: Vec<String> = u.into_iter().chain(o).collect();
            format!("({}) ? {} : {low}", cond.join(" | "), lit(w, 0))
        }
        (OverflowRule::General, _, _) => unreachable!("general rules are built bit for bit"),
    };
    b.wire("cast", w, to.is_signed(), &expr)
}

/// The bit-for-bit construction: `qfx-fixed`'s `assign`, with every format-only decision taken
/// here and the rest emitted as logic (names follow that function).
fn bit_level(b: &mut Body, x: &Sig, from: Format, to: Format) -> Sig {
    let w = to.width() as i64;
    let (q, o, n, s) = (
        to.quant(),
        to.overflow(),
        to.sat_bits() as i64,
        to.is_signed(),
    );
    let f = to.frac_bits();
    let w2 = x.width as i64;
    let s2 = x.signed;
    let f2 = from.frac_bits();
    let isneg = sign_of(x);
    let mode_rounds = match q {
        Quant::Trn => false,
        Quant::TrnZero => s2,
        _ => true,
    };
    let quant_inc = f2 > f && mode_rounds;
    let wu = w as u32;

    // Shift to the target's binary point, then round (v: the W kept bits; carry: the MSB
    // flipped from 1 to 0 when the increment was added).
    let (v, carry): (Sig, String) = if f2 > f {
        let sh = f2 - f;
        let v0 = if sh < w2 {
            let wide = b.wire("ext", (sh + w) as u32, s2, &ext(x, (sh + w) as u32));
            b.wire("v0", wu, s, &format!("{}[{}:{sh}]", wide.name, sh + w - 1))
        } else {
            b.wire("v0", wu, s, &format!("{{{wu}{{{isneg}}}}}"))
        };
        let lsb = format!("{}[0]", v0.name);
        match increment(x, q, sh as u64, &lsb).filter(|_| mode_rounds) {
            Some(inc) => {
                let inc = b.flag("inc", &inc);
                let v = b.wire("v", wu, s, &format!("{} + {}", v0.name, ext(&inc, wu)));
                let carry = format!("({}[{}] & ~{}[{}])", v0.name, w - 1, v.name, w - 1);
                (v, carry)
            }
            None => (v0, "1'b0".to_string()),
        }
    } else {
        let sh = f - f2;
        let v = if sh < w {
            let shifted = if sh == 0 {
                ext(x, wu)
            } else {
                format!("{{{}, {sh}'b0}}", ext(x, (w - sh) as u32))
            };
            b.wire("v", wu, s, &shifted)
        } else {
            b.wire("v", wu, s, &lit(wu, 0))
        };
        (v, "1'b0".to_string())
    };

    let may_overflow = (!s && s2)
        || (to.int_bits() as i64 - s as i64)
            < (from.int_bits() as i64 - s2 as i64
                + (quant_inc || (s2 && o == Overflow::SatSym)) as i64);
    if !((o != Overflow::Wrap || n != 0) && may_overflow) {
        return v;
    }
    let carry = b.flag("carry", &carry);
    let carry = carry.name;
    let bits = |hi: i64, lo: i64| format!("{}[{hi}:{lo}]", x.name);
    let deleted_zeros0 = if s2 {
        "1'b1".to_string()
    } else {
        format!("~{carry}")
    };
    let newsignbit = format!("{}[{}]", v.name, w - 1);
    let pos1 = f2 - f + w;
    let pos2 = pos1 + 1;
    let ld = if (0..w2).contains(&pos1) {
        format!("{}[{pos1}]", x.name)
    } else {
        "1'b0".to_string()
    };
    let ld = b.flag("ld", &ld).name;
    let (deleted_zeros, deleted_ones, neg_src) = if pos1 < w2 {
        let range2_all_ones = if (0..w2).contains(&pos2) {
            format!("(&{})", bits(w2 - 1, pos2))
        } else if pos2 < 0 {
            "1'b0".to_string()
        } else {
            "1'b1".to_string()
        };
        let (r1_ones, r1_zeros) = if pos1 >= 0 && pos2 < w2 {
            (
                format!("(&{})", bits(w2 - 1, pos1)),
                format!("(~|{})", bits(w2 - 1, pos1)),
            )
        } else if pos2 == w2 {
            (ld.clone(), format!("~{ld}"))
        } else if pos1 < 0 {
            ("1'b0".to_string(), format!("(~|{})", x.name))
        } else {
            ("1'b1".to_string(), "1'b1".to_string())
        };
        let r1_ones = b.flag("r1ones", &r1_ones).name;
        let dz = format!("{deleted_zeros0} & ({carry} ? {r1_ones} : {r1_zeros})");
        let not_ld = if pos1 < 0 {
            "1'b1".to_string()
        } else {
            format!("~{ld}")
        };
        let d1 = format!("{carry} ? ({range2_all_ones} & {not_ld}) : {r1_ones}");
        let ns = format!("{isneg} & ~({carry} & {r1_ones})");
        (dz, d1, ns)
    } else {
        (
            deleted_zeros0,
            "1'b1".to_string(),
            format!("{isneg} & {newsignbit}"),
        )
    };
    let deleted_zeros = b.flag("dzeros", &deleted_zeros).name;
    let deleted_ones = b.flag("dones", &deleted_ones).name;
    let neg_src = b.flag("negsrc", &neg_src).name;
    let neg_trg = if s {
        newsignbit.clone()
    } else {
        "1'b0".to_string()
    };
    let overflow = b
        .flag("ovf", &format!("({neg_trg} | ~{deleted_zeros}) & ~{isneg}"))
        .name;
    let mut underflow = format!("(~{neg_trg} | ~{deleted_ones}) & {neg_src}");
    if o == Overflow::SatSym && s2 && s {
        let low_zero = if w > 1 {
            format!("(~|{}[{}:0])", v.name, w - 2)
        } else {
            "1'b1".to_string()
        };
        underflow = format!("({underflow}) | ({neg_src} & {low_zero})");
    }
    let underflow = b.flag("unf", &underflow).name;
    let adjusted = adjust(b, &v, to, &underflow, &overflow, &ld, &neg_src);
    b.wire(
        "cast",
        wu,
        s,
        &format!("({underflow} | {overflow}) ? {adjusted} : {}", v.name),
    )
}

/// The repair of an overflowed or underflowed word `v` (`overflow_adjust`), as an expression.
fn adjust(
    b: &mut Body,
    v: &Sig,
    to: Format,
    underflow: &str,
    overflow: &str,
    ld: &str,
    sign: &str,
) -> String {
    let _ = underflow;
    let w = to.width() as i64;
    let n = to.sat_bits() as i64;
    let s = to.is_signed();
    let wu = w as u32;
    // Concatenation of parts, most significant first, skipping empty ones.
    let cat = |parts: Vec<String>| -> String {
        let parts: Vec<String> = parts.into_iter().filter(|p| !p.is_empty()).collect();
        format!("{{{}}}", parts.join(", "))
    };
    let low = |v: &str, top: i64| -> String {
        if top >= 0 {
            format!("{v}[{top}:0]")
        } else {
            String::new()
        }
    };
    let rep = |count: i64, bit: &str| -> String {
        if count > 0 {
            format!("{{{count}{{{bit}}}}}")
        } else {
            String::new()
        }
    };
    match to.overflow() {
        Overflow::Wrap if n == 0 => v.name.clone(),
        Overflow::Wrap if s => cat(vec![
            sign.to_string(),
            rep(n - 1, &format!("~{sign}")),
            low(&v.name, w - n - 1),
        ]),
        Overflow::Wrap => cat(vec![rep(n, "1'b1"), low(&v.name, w - n - 1)]),
        Overflow::SatZero => lit(wu, 0),
        Overflow::WrapSm => {
            let ro = format!("{}[{}]", v.name, w - 1);
            let inv = b.wire("inv", wu, true, &format!("~{}", v.name));
            if n == 0 {
                let flipped = cat(vec![ld.to_string(), low(&inv.name, w - 2)]);
                format!("(({ld}) != ({ro})) ? {flipped} : {}", v.name)
            } else if n == 1 {
                let v1 = b.wire(
                    "v1",
                    wu,
                    true,
                    &format!("(({sign}) != ({ro})) ? {} : {}", inv.name, v.name),
                );
                cat(vec![sign.to_string(), low(&v1.name, w - 2)])
            } else {
                let v1 = b.wire(
                    "v1",
                    wu,
                    true,
                    &format!(
                        "({}[{}] == ({sign})) ? {} : {}",
                        v.name,
                        w - n,
                        inv.name,
                        v.name
                    ),
                );
                cat(vec![
                    sign.to_string(),
                    rep(n - 1, &format!("~{sign}")),
                    low(&v1.name, w - n - 1),
                ])
            }
        }
        Overflow::Sat | Overflow::SatSym => {
            let mask = if wu >= 128 { -1 } else { (1i128 << wu) - 1 };
            if s {
                let max = lit(wu, mask >> 1);
                let mut min = 1i128 << (wu - 1).min(126);
                if to.overflow() == Overflow::SatSym {
                    min |= 1;
                }
                format!("{overflow} ? {max} : {}", lit(wu, min))
            } else {
                format!("{overflow} ? {} : {}", lit(wu, mask), lit(wu, 0))
            }
        }
    }
}
