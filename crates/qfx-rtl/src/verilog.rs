//! A small builder for the Verilog-2005 this crate writes: named bit vectors ([`Sig`]), a module
//! body that declares one wire per intermediate value ([`Body`]), and exact integer operands
//! with a value interval, an implicit left shift and a sign ([`Operand`]) from which adders are
//! sized.
//!
//! Every wire is an unsigned `wire [w-1:0]`; whether its bits are two's complement is tracked
//! here ([`Sig::signed`]), and every operation first extends its operands explicitly to the
//! result width (sign- or zero-extension). Arithmetic on equal-width vectors is then modular
//! and exact whenever the result width holds the value, so Verilog's signedness rules (an
//! unsigned operand silently makes a whole expression unsigned) can never change a result. Only
//! comparisons use `$signed`, on explicitly extended operands.

use std::fmt::Write as _;

/// A named bit vector: a code, two's complement when `signed`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Sig {
    /// The wire's name.
    pub name: String,
    /// Its width in bits (at least 1).
    pub width: u32,
    /// True when the bits are two's complement.
    pub signed: bool,
}

impl Sig {
    /// The smallest and largest integer the vector can hold.
    pub fn range(&self) -> (i128, i128) {
        if self.signed {
            signed_range(self.width)
        } else {
            unsigned_range(self.width)
        }
    }
}

/// `[−2^(w−1), 2^(w−1) − 1]`, saturated to `i128`.
pub(crate) fn signed_range(w: u32) -> (i128, i128) {
    if w >= 128 {
        (i128::MIN, i128::MAX)
    } else {
        (-(1i128 << (w - 1)), (1i128 << (w - 1)) - 1)
    }
}

/// `[0, 2^w − 1]`, saturated to `i128`.
pub(crate) fn unsigned_range(w: u32) -> (i128, i128) {
    if w >= 127 {
        (0, i128::MAX)
    } else {
        (0, (1i128 << w) - 1)
    }
}

/// The narrowest two's-complement width that holds every integer of `[lo, hi]`.
pub(crate) fn signed_bits(lo: i128, hi: i128) -> u32 {
    let need = |v: i128| {
        // Bits of v as a signed number: magnitude bits plus the sign bit.
        let m = if v < 0 { !v } else { v };
        128 - m.leading_zeros() + 1
    };
    need(lo).max(need(hi))
}

/// `floor(v / 2^sh)` for any shift.
pub(crate) fn floor_shr(v: i128, sh: u32) -> i128 {
    if sh >= 127 {
        if v < 0 {
            -1
        } else {
            0
        }
    } else {
        v >> sh
    }
}

/// `ceil(v / 2^sh)` for any shift.
pub(crate) fn ceil_shr(v: i128, sh: u32) -> i128 {
    let mask = match sh {
        0..=126 => (1i128 << sh) - 1,
        127 => i128::MAX,
        _ => -1,
    };
    let dropped = v & mask != 0;
    floor_shr(v, sh) + dropped as i128
}

/// `v · 2^sh`, or `None` when it does not fit an `i128`.
pub(crate) fn checked_shl(v: i128, sh: u32) -> Option<i128> {
    if v == 0 {
        return Some(0);
    }
    if sh >= 127 {
        return None;
    }
    let r = v.checked_mul(1i128 << sh)?;
    Some(r)
}

/// A sized Verilog literal holding `value` modulo `2^width` (two's complement, any width).
pub(crate) fn lit(width: u32, value: i128) -> String {
    let bit = |i: u32| (value >> i.min(127)) & 1 == 1;
    let digits = width.div_ceil(4);
    let mut hex = String::with_capacity(digits as usize);
    for d in (0..digits).rev() {
        let mut nibble = 0u32;
        for b in 0..4 {
            let i = d * 4 + b;
            if i < width && bit(i) {
                nibble |= 1 << b;
            }
        }
        hex.push(char::from_digit(nibble, 16).expect("nibble"));
    }
    format!("{width}'h{hex}")
}

/// An exact integer computed by the design: `(−1)^neg · sig · 2^shift`, where `sig`'s value
/// lies in `[lo, hi]`. The shift and the sign are kept out of the wires until an adder needs
/// them, so low zero bits never enter a carry chain and a subtraction replaces a negation.
#[derive(Clone, Debug)]
pub(crate) struct Operand {
    pub sig: Sig,
    pub lo: i128,
    pub hi: i128,
    pub shift: u32,
    pub neg: bool,
}

impl Operand {
    /// A wire as an operand, its interval the wire's whole range.
    pub fn of(sig: Sig) -> Operand {
        let (lo, hi) = sig.range();
        Operand {
            sig,
            lo,
            hi,
            shift: 0,
            neg: false,
        }
    }
}

impl Operand {
    /// The smallest and largest value `(−1)^neg · sig · 2^shift` can take (saturated to
    /// `i128`).
    pub fn bounds(&self) -> (i128, i128) {
        let scale = |v: i128| v.saturating_mul(1i128 << self.shift.min(126));
        let (lo, hi) = (scale(self.lo), scale(self.hi));
        if self.neg {
            (hi.saturating_neg(), lo.saturating_neg())
        } else {
            (lo, hi)
        }
    }
}

/// One module body: declarations and continuous assignments, each intermediate value a fresh,
/// numbered wire. Counts the adders it builds (for the design report).
#[derive(Debug, Default)]
pub(crate) struct Body {
    text: String,
    next: usize,
    /// Widths of the adders and subtractors built (comparators not included).
    pub adders: Vec<u32>,
    /// Widths of the comparators built.
    pub comparators: Vec<u32>,
    /// Hardware multipliers (`*`) built, as `(a bits, b bits)`.
    pub multipliers: Vec<(u32, u32)>,
    /// Set when an interval left `i128` (the caller refuses the design).
    pub too_wide: bool,
}

impl Body {
    /// A fresh wire name beginning with `hint`.
    pub fn fresh(&mut self, hint: &str) -> String {
        self.next += 1;
        format!("{hint}_{}", self.next)
    }

    /// Appends raw text (ports, registers, comments).
    pub fn line(&mut self, text: &str) {
        self.text.push_str("  ");
        self.text.push_str(text);
        self.text.push('\n');
    }

    /// The body's text.
    pub fn text(&self) -> &str {
        &self.text
    }

    /// Declares `wire [width-1:0] <hint>_<n> = expr;` and returns it.
    pub fn wire(&mut self, hint: &str, width: u32, signed: bool, expr: &str) -> Sig {
        let name = self.fresh(hint);
        let _ = writeln!(self.text, "  wire [{}:0] {name} = {expr};", width - 1);
        Sig {
            name,
            width,
            signed,
        }
    }

    /// A constant wire of `width` bits holding `value` (two's complement when `signed`).
    pub fn konst(&mut self, width: u32, signed: bool, value: i128) -> Sig {
        self.wire("k", width, signed, &lit(width, value))
    }

    /// One-bit wire from a boolean expression.
    pub fn flag(&mut self, hint: &str, expr: &str) -> Sig {
        self.wire(hint, 1, false, expr)
    }

    /// A balanced sum of `terms` plus `constant` (see [`Body::combine`]); `None` for an empty
    /// sum without constant. `cap` keeps only the value modulo `2^cap` (for wrapping
    /// accumulators: every adder is at most `cap` bits).
    pub fn sum(
        &mut self,
        hint: &str,
        mut terms: Vec<Operand>,
        constant: i128,
        cap: Option<u32>,
    ) -> Option<Operand> {
        if constant != 0 {
            let tz = constant.trailing_zeros().min(126);
            let c = constant >> tz;
            let w = signed_bits(c, c);
            let sig = self.konst(w, true, c);
            terms.push(Operand {
                sig,
                lo: c,
                hi: c,
                shift: tz,
                neg: false,
            });
        }
        if let Some(cap) = cap {
            terms = terms.into_iter().filter_map(|t| self.cap(t, cap)).collect();
        }
        // Pairwise in order until one is left: a balanced tree, deterministic.
        while terms.len() > 1 {
            let mut next = Vec::with_capacity(terms.len().div_ceil(2));
            let mut it = terms.into_iter();
            while let Some(a) = it.next() {
                match it.next() {
                    Some(b) => {
                        let s = self.combine(hint, a, b);
                        match cap {
                            Some(cap) => next.extend(self.cap(s, cap)),
                            None => next.push(s),
                        }
                    }
                    None => next.push(a),
                }
            }
            terms = next;
        }
        terms.pop()
    }

    /// `a + b` for two operands as one adder or subtractor: the operand with the smaller shift
    /// passes its low bits through, the adder covers only the bits above them, and the result
    /// keeps that operand's sign, so no negation is ever built.
    pub fn combine(&mut self, hint: &str, a: Operand, b: Operand) -> Operand {
        let (a, b) = if a.shift <= b.shift { (a, b) } else { (b, a) };
        let k = b.shift - a.shift;
        let subtract = a.neg != b.neg;
        // a = a_hi · 2^k + a_lo with 0 ≤ a_lo < 2^k, so a ± b·2^k = (a_hi ± b)·2^k + a_lo.
        let (h_lo, h_hi) = (floor_shr(a.lo, k), floor_shr(a.hi, k));
        let (s_lo, s_hi) = if subtract {
            (h_lo.saturating_sub(b.hi), h_hi.saturating_sub(b.lo))
        } else {
            (h_lo.saturating_add(b.lo), h_hi.saturating_add(b.hi))
        };
        let w = signed_bits(s_lo, s_hi);
        if w >= 120 {
            self.too_wide = true;
        }
        let a_hi = if k == 0 {
            a.sig.clone()
        } else if k < a.sig.width {
            Sig {
                name: format!("{}[{}:{}]", a.sig.name, a.sig.width - 1, k),
                width: a.sig.width - k,
                signed: a.sig.signed,
            }
        } else if a.sig.signed {
            Sig {
                name: format!("{}[{}]", a.sig.name, a.sig.width - 1),
                width: 1,
                signed: true,
            }
        } else {
            Sig {
                name: "1'b0".to_string(),
                width: 1,
                signed: false,
            }
        };
        let op = if subtract { "-" } else { "+" };
        let expr = format!("{} {op} {}", ext(&a_hi, w), ext(&b.sig, w));
        self.adders.push(w);
        let upper = self.wire(hint, w, true, &expr);
        if k == 0 {
            return Operand {
                sig: upper,
                lo: s_lo,
                hi: s_hi,
                shift: a.shift,
                neg: a.neg,
            };
        }
        let sig = self.wire(
            hint,
            w + k,
            true,
            &format!("{{{}, {}}}", upper.name, low_bits(&a.sig, k)),
        );
        // The low bits widen the interval to [s_lo·2^k, s_hi·2^k + 2^k − 1].
        let scale = |v: i128| checked_shl(v, k);
        let (lo, hi) = match (
            scale(s_lo),
            scale(s_hi).and_then(|h| h.checked_add(scale(1)? - 1)),
        ) {
            (Some(lo), Some(hi)) => (lo, hi),
            _ => {
                self.too_wide = true;
                sig.range()
            }
        };
        Operand {
            sig,
            lo,
            hi,
            shift: a.shift,
            neg: a.neg,
        }
    }

    /// `t` modulo `2^cap` (in units of the final sum): bits at or above `cap` are dropped;
    /// `None` when nothing of `t` is left.
    pub fn cap(&mut self, t: Operand, cap: u32) -> Option<Operand> {
        if t.shift >= cap {
            return None;
        }
        let keep = cap - t.shift;
        if t.sig.width <= keep {
            return Some(t);
        }
        let sig = self.wire("m", keep, true, &format!("{}[{}:0]", t.sig.name, keep - 1));
        let (lo, hi) = sig.range();
        Some(Operand { sig, lo, hi, ..t })
    }

    /// The operand's value as a `width`-bit vector (modulo `2^width`): shifts and the sign
    /// applied (a sign costs one subtractor from zero).
    pub fn materialize(&mut self, hint: &str, t: &Operand, width: u32) -> Sig {
        let shifted = if t.shift == 0 {
            ext(&t.sig, width)
        } else if t.shift >= width {
            lit(width, 0)
        } else {
            format!("{{{}, {}'b0}}", ext(&t.sig, width - t.shift), t.shift)
        };
        if t.neg {
            self.adders.push(width);
            self.wire(hint, width, true, &format!("{} - {shifted}", lit(width, 0)))
        } else {
            self.wire(hint, width, true, &shifted)
        }
    }
}

/// The low `k` bits of `s` as an expression (sign- or zero-extended when `s` is narrower).
fn low_bits(s: &Sig, k: u32) -> String {
    ext(s, k)
}

/// `name[hi:lo]` split into `(name, lo)`, for a part select.
fn part_select(name: &str) -> Option<(&str, u32)> {
    let open = name.rfind('[')?;
    let inner = name.strip_suffix(']')?.get(open + 1..)?;
    let (_, lo) = inner.split_once(':')?;
    Some((&name[..open], lo.trim().parse().ok()?))
}

/// The low `n` bits of `s` (`n < s.width`): a part select of the same vector, never a select
/// of a select (which Verilog-2005 does not allow).
fn select_low(s: &Sig, n: u32) -> String {
    match part_select(&s.name) {
        Some((base, lo)) => format!("{base}[{}:{lo}]", lo + n - 1),
        None => format!("{}[{}:0]", s.name, n - 1),
    }
}

/// `s` sign- or zero-extended (or truncated to its low bits) to `width` bits, as an expression.
pub(crate) fn ext(s: &Sig, width: u32) -> String {
    use std::cmp::Ordering;
    match width.cmp(&s.width) {
        Ordering::Equal => s.name.clone(),
        Ordering::Less => select_low(s, width),
        Ordering::Greater => {
            let pad = width - s.width;
            let top = if s.signed { msb(s) } else { "1'b0".to_string() };
            format!("{{{{{pad}{{{top}}}}}, {}}}", s.name)
        }
    }
}

/// The sign bit of a plain name (`a[7]`), of a part select like `a[7:3]` (`a[7]`) or of a bit
/// select (itself).
fn msb(s: &Sig) -> String {
    if s.width == 1 {
        return s.name.clone();
    }
    match s.name.rfind('[') {
        Some(i) if s.name.ends_with(']') => {
            let inner = &s.name[i + 1..s.name.len() - 1];
            let top = inner.split(':').next().unwrap_or(inner);
            format!("{}[{top}]", &s.name[..i])
        }
        _ => format!("{}[{}]", s.name, s.width - 1),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn literals_are_two_complement_of_any_width() {
        assert_eq!(lit(8, -1), "8'hff");
        assert_eq!(lit(5, 3), "5'h03");
        assert_eq!(lit(1, 1), "1'h1");
        assert_eq!(lit(132, -2), format!("132'h{}e", "f".repeat(32)));
    }

    #[test]
    fn widths_and_shifts() {
        assert_eq!(signed_bits(-8, 7), 4);
        assert_eq!(signed_bits(0, 8), 5);
        assert_eq!(signed_bits(-9, 0), 5);
        assert_eq!(signed_bits(0, 0), 1);
        assert_eq!(floor_shr(-5, 1), -3);
        assert_eq!(ceil_shr(-5, 1), -2);
        assert_eq!(ceil_shr(5, 1), 3);
        assert_eq!(floor_shr(-5, 200), -1);
        assert_eq!(ceil_shr(5, 200), 1);
    }

    #[test]
    fn extension_of_part_selects_uses_their_top_bit() {
        let s = Sig {
            name: "a[7:3]".into(),
            width: 5,
            signed: true,
        };
        assert_eq!(ext(&s, 7), "{{2{a[7]}}, a[7:3]}");
        let p = Sig {
            name: "b".into(),
            width: 4,
            signed: true,
        };
        assert_eq!(ext(&p, 6), "{{2{b[3]}}, b}");
        assert_eq!(ext(&p, 2), "b[1:0]");
        // A part select is cut within the same vector.
        assert_eq!(ext(&s, 3), "a[5:3]");
    }
}
