//! Sums of products (`Dense`, `Conv2d`, `Conv1d`) on plain integers.
//!
//! Each output channel whose accumulator holds every product exactly (`0 ≤ F_acc − F_x − F_w ≤
//! 40`, the reference's condition) and whose overflow mode is `AP_SAT`, `AP_SAT_SYM`,
//! `AP_SAT_ZERO` or `AP_WRAP` with `N = 0` is computed with the weights pre-shifted onto the
//! accumulator's grid, in the narrowest integer type that provably holds every partial sum
//! (`i32`, `i64` or `i128`). The loops run kernel tap by kernel tap (input feature by input
//! feature for `Dense`) over whole output rows, so every output still receives its terms in the
//! IR's order, and the compiler vectorizes them. Convolutions take the general geometry
//! ([`ConvGeometry`]): each output channel reads its group's input channels, and a tap at
//! kernel column `kx` reads, along an output row, the input columns `ox·s + kx·d − p` that fall
//! inside the input (a contiguous run of outputs, a strided run of inputs); a 1-D convolution is
//! the same loop with one row. When a partial sum can leave the accumulator's
//! range (a conservative bound from the input format says whether it can), each row update is
//! followed by a vectorized range test, and the few out-of-range sums are repaired (clamp, zero or
//! wrap) and counted exactly as step-by-step accumulation does. Other channels run the
//! reference's `Fixed` arithmetic.

use std::ops::{Add, Mul};

use qfx_fixed::{Format, OverflowRule};
use qfx_ir::{AccumulationOrder, Codes, ConvGeometry, Mac as IrMac, MacGeometry};

use crate::reference::{self, accumulate, unbounded};
use crate::requant::{wrap, Repair, Target};

#[derive(Clone, Copy, Debug)]
pub(crate) struct Channel {
    /// The bias assigned to the accumulator (a code) and whether that assignment overflowed.
    start: i128,
    start_overflow: bool,
    pub acc: Target,
    /// Runs the reference's step-by-step `Fixed` arithmetic.
    general: bool,
}

/// The integer type of a layer's fast channels.
#[derive(Clone, Debug)]
enum Weights {
    I32(Vec<i32>),
    I64(Vec<i64>),
    I128(Vec<i128>),
}

/// A sum of products, prepared per output channel.
#[derive(Clone, Debug)]
pub(crate) struct Mac {
    weight: Codes,
    bias: Option<Codes>,
    accumulator: Vec<Format>,
    order: AccumulationOrder,
    geometry: MacGeometry,
    /// Shifted weights in the IR's layout (`[in, out]` or `[out, in/groups, kh, kw]`); zero for general
    /// channels.
    shifted: Weights,
    pub channels: Vec<Channel>,
    /// Whether some fast channel's partial sums can leave its accumulator's range.
    check: bool,
}

impl Mac {
    pub fn new(mac: &IrMac, xf: Format) -> Mac {
        let (weight, bias) = (mac.weight, mac.bias);
        let (c_out, terms) = (mac.outputs(), mac.terms());
        let flat = |o: usize, j: usize| mac.weight_index(o, j);
        let (xlo, xhi) = (xf.min_code(), xf.max_code());
        let xmag = xlo.unsigned_abs().max(xhi.unsigned_abs());
        let mut shifted = vec![0i128; c_out * terms];
        let mut channels = Vec::with_capacity(c_out);
        let (mut bound_all, mut check) = (xmag, false);
        for o in 0..c_out {
            let af = mac.accumulator(o);
            let acc = Target::new(af);
            let (start, start_overflow) = match bias {
                Some(b) => reference::assign_wide(&b.value(o), af),
                None => (0, false),
            };
            let simple = af.overflow_rule() != OverflowRule::General;
            let mut eligible = simple && unbounded(af).is_some() && acc.repair != Repair::General;
            // Bounds of every partial sum (any subset of the terms, in any order).
            let (mut neg, mut pos) = (Some(start), Some(start));
            let mut wmag: u128 = 0;
            let mut ws = Vec::with_capacity(terms);
            for j in 0..terms {
                let i = flat(o, j);
                let shift = af.frac_bits() - xf.frac_bits() - weight.format_of(i).frac_bits();
                let w = (0..=40)
                    .contains(&shift)
                    .then(|| (weight.codes[i] as i128).checked_mul(1 << shift))
                    .flatten();
                let Some(w) = w else {
                    eligible = false;
                    break;
                };
                let (Some(a), Some(b)) = (w.checked_mul(xlo), w.checked_mul(xhi)) else {
                    eligible = false;
                    break;
                };
                ws.push(w);
                wmag = wmag.max(w.unsigned_abs());
                neg = neg.and_then(|n| n.checked_add(a.min(b).min(0)));
                pos = pos.and_then(|p| p.checked_add(a.max(b).max(0)));
            }
            // Every sum the loops form: an in-range sum (or the start) plus one product.
            let range = acc.lo.unsigned_abs().max(acc.hi.unsigned_abs());
            let bound = wmag
                .checked_mul(xmag)
                .and_then(|p| p.checked_add(range.max(start.unsigned_abs())));
            let general = !eligible || bound.is_none_or(|b| b >= 1 << 125);
            if !general {
                for (j, w) in ws.into_iter().enumerate() {
                    shifted[flat(o, j)] = w;
                }
                bound_all = bound_all.max(bound.expect("checked"));
                let safe = matches!((neg, pos), (Some(n), Some(p)) if n >= acc.lo && p <= acc.hi);
                check |= !safe;
            }
            channels.push(Channel {
                start,
                start_overflow,
                acc,
                general,
            });
        }
        let shifted = if bound_all <= i32::MAX as u128 {
            Weights::I32(shifted.iter().map(|&w| w as i32).collect())
        } else if bound_all <= i64::MAX as u128 {
            Weights::I64(shifted.iter().map(|&w| w as i64).collect())
        } else {
            Weights::I128(shifted)
        };
        Mac {
            weight: weight.clone(),
            bias: bias.cloned(),
            accumulator: mac.accumulator.to_vec(),
            order: mac.order,
            geometry: mac.geometry,
            shifted,
            channels,
            check,
        }
    }

    /// The IR's view of this sum of products.
    fn view(&self) -> IrMac<'_> {
        IrMac {
            weight: &self.weight,
            bias: self.bias.as_ref(),
            accumulator: &self.accumulator,
            order: self.order,
            geometry: self.geometry,
        }
    }

    /// Accumulator codes, channel-major (`[out][positions]`), and the overflow count.
    pub fn run(&self, x: &[i64], xf: Format, count: &mut u64) -> Vec<i128> {
        let positions = self.view().positions();
        let mut out = vec![0i128; self.channels.len() * positions];
        if self.channels.iter().any(|c| !c.general) {
            match &self.shifted {
                Weights::I32(w) => self.fast(w, x, &mut out, count),
                Weights::I64(w) => self.fast(w, x, &mut out, count),
                Weights::I128(w) => self.fast(w, x, &mut out, count),
            }
        }
        for (o, ch) in self.channels.iter().enumerate() {
            let dst = &mut out[o * positions..(o + 1) * positions];
            if ch.general {
                self.general(o, x, xf, dst, count);
            } else {
                *count += ch.start_overflow as u64 * positions as u64;
            }
        }
        out
    }

    fn fast<T: Word>(&self, w: &[T], x: &[i64], out: &mut [i128], count: &mut u64) {
        // Input codes fit `T`: the bound that chose `T` covers them.
        let x: Vec<T> = x.iter().map(|&v| T::of(v as i128)).collect();
        #[cfg(target_arch = "x86_64")]
        if std::arch::is_x86_feature_detected!("avx2") {
            // SAFETY: the CPU supports AVX2 (checked just above).
            unsafe { self.fast_avx2(w, &x, out, count) };
            return;
        }
        self.fast_body(w, &x, out, count);
    }

    /// The same loops compiled with AVX2 enabled (plain safe Rust otherwise).
    ///
    /// # Safety
    /// The CPU must support AVX2; the only caller checks it at run time.
    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx2")]
    unsafe fn fast_avx2<T: Word>(&self, w: &[T], x: &[T], out: &mut [i128], count: &mut u64) {
        self.fast_body(w, x, out, count);
    }

    #[inline(always)]
    fn fast_body<T: Word>(&self, w: &[T], x: &[T], out: &mut [i128], count: &mut u64) {
        match (self.geometry, self.check) {
            (MacGeometry::Conv(g), false) => self.conv_rows::<T, false>(&g, w, x, out, count),
            (MacGeometry::Conv(g), true) => self.conv_rows::<T, true>(&g, w, x, out, count),
            (MacGeometry::Dense { .. }, false) => self.dense_rows::<T, false>(w, x, out, count),
            (MacGeometry::Dense { .. }, true) => self.dense_rows::<T, true>(w, x, out, count),
        }
    }

    /// Convolution, one kernel tap at a time over whole output rows.
    #[inline(always)]
    fn conv_rows<T: Word, const CHECK: bool>(
        &self,
        g: &ConvGeometry,
        w: &[T],
        x: &[T],
        out: &mut [i128],
        count: &mut u64,
    ) {
        let positions = g.oh * g.ow;
        let ([kh, kw], [sy, sx], [dy, dx]) = (g.kernel, g.stride, g.dilation);
        let (pt, pl) = (g.padding[0], g.padding[2]);
        let terms = g.group_inputs() * kh * kw;
        let mut plane = vec![T::of(0); positions];
        for (o, ch) in self.channels.iter().enumerate() {
            if ch.general {
                continue;
            }
            let (lo, hi) = (T::of(ch.acc.lo), T::of(ch.acc.hi));
            plane.fill(T::of(ch.start));
            let wo = &w[o * terms..(o + 1) * terms];
            let c0 = g.first_input(o);
            for (j, &wv) in wo.iter().enumerate() {
                // Adding zero changes no sum (and an in-range sum stays in range).
                if wv == T::of(0) {
                    continue;
                }
                let (ci, ky, kx) = (c0 + j / (kh * kw), j / kw % kh, j % kw);
                // Output columns whose input column `ox·sx + kx·dx − pl` is inside the input.
                let off = kx * dx;
                let first = pl.saturating_sub(off).div_ceil(sx);
                let Some(last) = (g.w + pl).checked_sub(off + 1) else {
                    continue;
                };
                let last = (last / sx).min(g.ow - 1);
                if first > last {
                    continue;
                }
                let ix0 = first * sx + off - pl;
                for y in 0..g.oh {
                    let Some(iy) = (y * sy + ky * dy).checked_sub(pt).filter(|&r| r < g.h) else {
                        continue;
                    };
                    let xrow = &x[(ci * g.h + iy) * g.w + ix0..];
                    let orow = &mut plane[y * g.ow + first..=y * g.ow + last];
                    if sx == 1 {
                        for (s, &xv) in orow.iter_mut().zip(xrow) {
                            *s = *s + wv * xv;
                        }
                    } else {
                        for (s, &xv) in orow.iter_mut().zip(xrow.iter().step_by(sx)) {
                            *s = *s + wv * xv;
                        }
                    }
                    if CHECK && out_of_range(orow, lo, hi) {
                        for s in orow.iter_mut() {
                            repair(s, &ch.acc, count);
                        }
                    }
                }
            }
            for (d, s) in out[o * positions..(o + 1) * positions]
                .iter_mut()
                .zip(&plane)
            {
                *d = s.wide();
            }
        }
    }

    /// Dense, one input feature at a time over all outputs (the IR's `[in, out]` layout).
    #[inline(always)]
    fn dense_rows<T: Word, const CHECK: bool>(
        &self,
        w: &[T],
        x: &[T],
        out: &mut [i128],
        count: &mut u64,
    ) {
        let d_out = self.channels.len();
        // General channels have zero weights here: their lanes stay 0 in a range of {0}.
        let fast = |c: &Channel, v: i128| if c.general { T::of(0) } else { T::of(v) };
        let mut sums: Vec<T> = self.channels.iter().map(|c| fast(c, c.start)).collect();
        let lo: Vec<T> = self.channels.iter().map(|c| fast(c, c.acc.lo)).collect();
        let hi: Vec<T> = self.channels.iter().map(|c| fast(c, c.acc.hi)).collect();
        for (row, &xv) in w.chunks_exact(d_out).zip(x) {
            if xv == T::of(0) {
                continue;
            }
            for (s, &wv) in sums.iter_mut().zip(row) {
                *s = *s + wv * xv;
            }
            if CHECK {
                let bad = sums
                    .iter()
                    .zip(lo.iter().zip(&hi))
                    .fold(false, |b, (&s, (&l, &h))| b | (s < l) | (s > h));
                if bad {
                    for (s, ch) in sums.iter_mut().zip(&self.channels) {
                        if !ch.general {
                            repair(s, &ch.acc, count);
                        }
                    }
                }
            }
        }
        for (d, s) in out.iter_mut().zip(&sums) {
            *d = s.wide();
        }
    }

    /// The reference's step-by-step accumulation for one output channel.
    fn general(&self, o: usize, x: &[i64], xf: Format, dst: &mut [i128], count: &mut u64) {
        let mac = self.view();
        let (acc, wf) = (mac.accumulator(o), mac.weight_format(o));
        let bias = mac.bias.map(|b| b.value(o));
        for (p, d) in dst.iter_mut().enumerate() {
            let terms = (0..mac.terms()).filter_map(|j| {
                let xi = mac.input_index(o, p, j)?;
                Some((mac.weight.codes[mac.weight_index(o, j)], wf, x[xi]))
            });
            *d = accumulate(terms, xf, bias, acc, count).code().unwrap_or(0);
        }
    }
}

/// Whether any sum of the row is outside `[lo, hi]` (branch-free, so it vectorizes).
#[inline(always)]
fn out_of_range<T: Word>(row: &[T], lo: T, hi: T) -> bool {
    row.iter().fold(false, |b, &s| b | (s < lo) | (s > hi))
}

/// The accumulator's overflow mode applied to a sum that may have left its range, counted.
#[inline]
fn repair<T: Word>(s: &mut T, acc: &Target, count: &mut u64) {
    let v = s.wide();
    if v < acc.lo || v > acc.hi {
        *count += 1;
        *s = T::of(match acc.repair {
            Repair::Zero => 0,
            Repair::Wrap => wrap(v, acc.format),
            _ => v.clamp(acc.lo, acc.hi),
        });
    }
}

/// Integers the accumulation loops run on.
pub(crate) trait Word:
    Copy + Ord + Add<Output = Self> + Mul<Output = Self> + Send + Sync
{
    /// `v`, which the caller has proven to fit.
    fn of(v: i128) -> Self;
    fn wide(self) -> i128;
}

macro_rules! word {
    ($($t:ty),*) => {$(
        impl Word for $t {
            #[inline(always)]
            fn of(v: i128) -> $t {
                v as $t
            }
            #[inline(always)]
            fn wide(self) -> i128 {
                self as i128
            }
        }
    )*};
}
word!(i32, i64, i128);
