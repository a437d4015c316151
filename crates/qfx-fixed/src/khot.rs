//! K-hot codes: fixed-point constants that multiply without a multiplier.
//!
//! A code is **K-hot** when its magnitude `|q|` has at most `K` ones in plain binary
//! ([`KHot::binary`]), or, in the **CSD** variant ([`KHot::csd`]), at most `K` non-zero digits
//! in its canonical signed-digit form (the non-adjacent form: digits in `{−1, 0, 1}`, no two
//! adjacent digits non-zero, the fewest non-zero digits of any signed-digit form). A product
//! `x · q` with a K-hot `q` is then at most `K` shifted copies of `x` added (or, for CSD,
//! added and subtracted): `K − 1` adders and no multiplier. `7 = 111₂` is 3-hot in binary but
//! 2-hot in CSD (`8 − 1`).
//!
//! # Projection
//! [`KHotQuantizer`] projects a real `x` onto the K-hot codes of a format
//! `ap_[u]fixed<W, I, Q, O>` (`W ≤` [`MAX_KHOT_WIDTH`]), exactly as an `ap_fixed` assignment
//! would if the grid had only K-hot points. With `y = x·2^F` (exact) and `S` the set of all
//! integers with a K-hot magnitude (unbounded):
//! 1. **Quantization** picks a point of `S` from the two neighbours `lo = max{s ∈ S: s ≤ y}` and
//!    `hi = min{s ∈ S: s ≥ y}` (equal when `y ∈ S`):
//!    - `AP_TRN`: `lo` (the largest K-hot code `≤ x`); `AP_TRN_ZERO`: toward zero;
//!    - the rounding modes: the nearer of the two, with the mode's tie rule at the exact
//!      midpoint: `AP_RND` toward +∞, `AP_RND_ZERO` toward zero, `AP_RND_MIN_INF` toward −∞,
//!      `AP_RND_INF` away from zero, and `AP_RND_CONV` ("to even") toward the neighbour with
//!      more trailing zero bits — the even one on the ordinary grid — and, should both have as
//!      many, the one of smaller magnitude.
//! 2. **Overflow**: a result outside the format's code range `[min, max]` (`[−max, max]` for
//!    `AP_SAT_SYM`) becomes the K-hot code in range nearest to that bound (`AP_SAT`,
//!    `AP_SAT_SYM`), or 0 (`AP_SAT_ZERO`), and the element is marked clipped. Wrapping modes
//!    (`AP_WRAP`, `AP_WRAP_SM`) are refused: the wrapped code of a K-hot value is not in general
//!    K-hot.
//!
//! So every one of the 7 quantization modes is supported, with the 3 saturating overflow modes.
//! When `K` is large enough that every code is K-hot, the projection *is* the `ap_fixed` cast
//! (the tests check this against [`Fixed::from_f64`]).
//!
//! # Tables
//! Projection is a binary search in the sorted table of all K-hot magnitudes below `2^W`,
//! built once per `(W, K, variant)` and cached for the life of the process (shared through an
//! `Arc`). A table holds `Σ_{i≤K} C(W, i)` entries of 4 bytes in the binary variant (at most
//! about 39 MB, for `W = 24, K = 12`; 2,325 entries, 9 KB, for `W = 24, K = 3`); when `K`
//! admits every code no table is built.

use std::collections::HashMap;
use std::fmt;
use std::sync::{Arc, Mutex, OnceLock};

use crate::error::Error;
use crate::format::{Format, Overflow, Quant};
use crate::slice::{available_threads, QuantizeStats, CLIP_ABOVE, CLIP_BELOW, CLIP_NONE};
use crate::value::Fixed;

/// Widest format [`KHotQuantizer`] projects onto (its tables hold magnitudes below `2^W`).
pub const MAX_KHOT_WIDTH: u32 = 24;

/// The K-hot constraint: at most `k` ones (binary) or non-zero signed digits (CSD) per code.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[cfg_attr(feature = "serde", serde(deny_unknown_fields))]
pub struct KHot {
    /// The most ones (or non-zero signed digits) a magnitude may have; at least 1.
    pub k: u32,
    /// Count canonical signed digits (CSD) instead of binary ones.
    #[cfg_attr(feature = "serde", serde(default))]
    pub csd: bool,
}

impl KHot {
    /// At most `k` ones in the binary magnitude.
    pub const fn binary(k: u32) -> KHot {
        KHot { k, csd: false }
    }

    /// At most `k` non-zero digits in the canonical signed-digit form of the magnitude.
    pub const fn csd(k: u32) -> KHot {
        KHot { k, csd: true }
    }

    /// Errors for `k = 0` (only the zero code would remain).
    pub fn validate(&self) -> Result<(), Error> {
        if self.k == 0 {
            return Err(Error::InvalidFormat(
                "a K-hot constraint needs K ≥ 1 (K = 0 leaves only the code 0)".to_string(),
            ));
        }
        Ok(())
    }

    /// The number of ones (binary) or non-zero CSD digits of `|code|`.
    pub fn digits(&self, code: i128) -> u32 {
        let m = code.unsigned_abs();
        if self.csd {
            csd_weight(m)
        } else {
            m.count_ones()
        }
    }

    /// True when `code` is K-hot.
    pub fn admits(&self, code: i128) -> bool {
        self.digits(code) <= self.k
    }

    /// Adders needed to multiply by `code` as shifts and adds: `digits − 1` (0 for codes with
    /// at most one non-zero digit, including 0).
    pub fn adders(&self, code: i128) -> u32 {
        self.digits(code).saturating_sub(1)
    }
}

impl fmt::Display for KHot {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let variant = if self.csd { "CSD" } else { "binary" };
        write!(f, "{}-hot ({variant})", self.k)
    }
}

/// Non-zero digits of the canonical signed-digit (non-adjacent) form of `n`.
pub fn csd_weight(n: u128) -> u32 {
    Digits::of_magnitude(n, true, false).count() as u32
}

/// One non-zero digit of a code's decomposition: `±2^shift`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SignedDigit {
    /// The power of two.
    pub shift: u32,
    /// True for `−2^shift`.
    pub negative: bool,
}

/// The signed powers of two whose sum is `code`, lowest first: the ones of `|code|` carrying
/// `code`'s sign, or with `csd` the non-adjacent form (fewest non-zero digits, no two adjacent).
/// Empty for 0. This is the decomposition the K-hot constraint counts ([`KHot::digits`]) and
/// the multiplier-free back ends emit as shifts and adds, so both agree digit for digit.
///
/// ```
/// use qfx_fixed::khot::{signed_digits, SignedDigit};
/// let d = |shift, negative| SignedDigit { shift, negative };
/// assert_eq!(signed_digits(7, false).collect::<Vec<_>>(), [d(0, false), d(1, false), d(2, false)]);
/// assert_eq!(signed_digits(7, true).collect::<Vec<_>>(), [d(0, true), d(3, false)]); // 8 − 1
/// assert_eq!(signed_digits(-7, true).collect::<Vec<_>>(), [d(0, false), d(3, true)]);
/// ```
pub fn signed_digits(code: i128, csd: bool) -> Digits {
    Digits::of_magnitude(code.unsigned_abs(), csd, code < 0)
}

/// Iterator of [`signed_digits`].
#[derive(Clone, Debug)]
pub struct Digits {
    /// What is left of the magnitude, shifted down by `shift`.
    rest: u128,
    shift: u32,
    csd: bool,
    negative: bool,
    /// The CSD carry ran out of the 128 bits: one more digit, `+2^128`, is due.
    carry_out: bool,
}

impl Digits {
    fn of_magnitude(m: u128, csd: bool, negative: bool) -> Digits {
        Digits {
            rest: m,
            shift: 0,
            csd,
            negative,
            carry_out: false,
        }
    }
}

impl Iterator for Digits {
    type Item = SignedDigit;

    fn next(&mut self) -> Option<SignedDigit> {
        while self.rest != 0 {
            let shift = self.shift;
            let one = self.rest & 1 == 1;
            // CSD: a run of ones …11 becomes digit −1 here and a carry upward (n ≡ 3 mod 4);
            // n ≡ 1 (mod 4) gives digit +1. Either way the next bit becomes 0.
            let minus = one && self.csd && self.rest & 2 != 0;
            if minus {
                let (r, over) = self.rest.overflowing_add(1);
                self.rest = r;
                self.carry_out |= over;
            } else if one {
                self.rest -= 1;
            }
            self.rest >>= 1;
            self.shift += 1;
            if one {
                return Some(SignedDigit {
                    shift,
                    negative: self.negative != minus,
                });
            }
        }
        if std::mem::take(&mut self.carry_out) {
            return Some(SignedDigit {
                shift: 128,
                negative: self.negative,
            });
        }
        None
    }
}

/// The most non-zero digits any magnitude below `2^width` can have in the variant: beyond it
/// the constraint admits every code.
fn max_digits(width: u32, csd: bool) -> u32 {
    if csd {
        // A non-adjacent form of a number below 2^W has at most W + 1 digits, never two
        // adjacent non-zero ones.
        (width + 2) / 2
    } else {
        width
    }
}

type TableKey = (u32, u32, bool);

/// The sorted K-hot magnitudes below `2^width`, cached.
fn table(width: u32, khot: KHot) -> Arc<Vec<u32>> {
    static CACHE: OnceLock<Mutex<HashMap<TableKey, Arc<Vec<u32>>>>> = OnceLock::new();
    let key = (width, khot.k, khot.csd);
    let cache = CACHE.get_or_init(|| Mutex::new(HashMap::new()));
    if let Some(t) = cache.lock().unwrap_or_else(|p| p.into_inner()).get(&key) {
        return Arc::clone(t);
    }
    let t = Arc::new(build_table(width, khot));
    let mut map = cache.lock().unwrap_or_else(|p| p.into_inner());
    Arc::clone(map.entry(key).or_insert(t))
}

fn build_table(width: u32, khot: KHot) -> Vec<u32> {
    let end = 1u64 << width;
    if khot.csd {
        (0..end)
            .filter(|&m| csd_weight(m as u128) <= khot.k)
            .map(|m| m as u32)
            .collect()
    } else {
        // Enumerate by popcount directly would be faster; a filtered scan of 2^24 values takes
        // a few tens of milliseconds, once per process.
        (0..end)
            .filter(|&m| m.count_ones() <= khot.k)
            .map(|m| m as u32)
            .collect()
    }
}

/// Where the K-hot magnitudes come from.
#[derive(Clone, Debug)]
enum Magnitudes {
    /// Every integer is K-hot (K covers all codes of the width).
    All,
    /// The sorted table of K-hot magnitudes below `2^W`.
    Table(Arc<Vec<u32>>),
}

/// Projection of reals onto the K-hot codes of one format (see the [module docs](self)).
///
/// ```
/// use qfx_fixed::{Format, KHot, KHotQuantizer};
/// let f: Format = "ap_fixed<8,4,AP_RND_CONV,AP_SAT>".parse()?;
/// let q = KHotQuantizer::new(f, KHot::binary(2))?;
/// // 2.8 is 44.8 LSBs (1/16); the 2-hot codes around it are 40 = 101000₂ and 48 = 110000₂.
/// assert_eq!(q.project(2.8)?.to_f64(), 3.0);
/// // 3.8 is 60.8 LSBs: in binary the 2-hot neighbours are 48 and 64; in CSD 60 = 64 − 4 is
/// // 2-hot too, and nearer.
/// assert_eq!(q.project(3.8)?.code(), Some(64));
/// let c = KHotQuantizer::new(f, KHot::csd(2))?;
/// assert_eq!(c.project(3.8)?.code(), Some(60));
/// # Ok::<(), qfx_fixed::Error>(())
/// ```
#[derive(Clone, Debug)]
pub struct KHotQuantizer {
    format: Format,
    khot: KHot,
    mags: Magnitudes,
    /// Code range after overflow handling (`[−max, max]` for signed `AP_SAT_SYM`).
    lo_code: i64,
    hi_code: i64,
    /// The K-hot codes nearest the range ends, inside it: what saturation gives.
    lo_khot: i64,
    hi_khot: i64,
    /// The smallest K-hot magnitudes beyond `hi_code` and `−lo_code`.
    above_hi: i64,
    above_lo: i64,
}

impl KHotQuantizer {
    /// A projection onto the K-hot codes of `format`. Errors for `K = 0`, for `W >`
    /// [`MAX_KHOT_WIDTH`], and for the wrapping overflow modes.
    pub fn new(format: Format, khot: KHot) -> Result<KHotQuantizer, Error> {
        khot.validate()?;
        let w = format.width();
        if w > MAX_KHOT_WIDTH {
            return Err(Error::InvalidFormat(format!(
                "K-hot projection supports formats of at most {MAX_KHOT_WIDTH} bits, not {format}"
            )));
        }
        if !format.overflow().is_saturating() {
            return Err(Error::InvalidFormat(format!(
                "K-hot projection needs a saturating overflow mode (AP_SAT, AP_SAT_SYM or \
                 AP_SAT_ZERO), not {} in {format}: a wrapped K-hot code is not K-hot",
                format.overflow()
            )));
        }
        // Scales 2^±F must be finite f64s (training clamps |F| to 100 long before this).
        if format.frac_bits().unsigned_abs() > 1000 {
            return Err(Error::InvalidFormat(format!(
                "K-hot projection supports binary points within ±1000 bits, not {format}"
            )));
        }
        let (lo_code, hi_code) = format.assignable_range();
        let (lo_code, hi_code) = (lo_code as i64, hi_code as i64);
        let mags = if khot.k >= max_digits(w, khot.csd) {
            Magnitudes::All
        } else {
            Magnitudes::Table(table(w, khot))
        };
        let mut q = KHotQuantizer {
            format,
            khot,
            mags,
            lo_code,
            hi_code,
            lo_khot: 0,
            hi_khot: 0,
            above_hi: 0,
            above_lo: 0,
        };
        q.hi_khot = q.largest_at_most(hi_code as u64) as i64;
        q.lo_khot = if lo_code < 0 {
            -(q.largest_at_most(lo_code.unsigned_abs()) as i64)
        } else {
            0
        };
        q.above_hi = q.smallest_above(hi_code.max(0) as u64) as i64;
        q.above_lo = q.smallest_above(lo_code.unsigned_abs()) as i64;
        Ok(q)
    }

    /// The format projected onto.
    pub fn format(&self) -> Format {
        self.format
    }

    /// The constraint.
    pub fn khot(&self) -> KHot {
        self.khot
    }

    /// The largest K-hot magnitude `≤ m` (`m < 2^W`, so it is in the table).
    fn largest_at_most(&self, m: u64) -> u64 {
        match &self.mags {
            Magnitudes::All => m,
            Magnitudes::Table(t) => {
                let n = t.partition_point(|&v| (v as u64) <= m);
                // 0 is always in the table, so n ≥ 1.
                t[n.saturating_sub(1)] as u64
            }
        }
    }

    /// The smallest K-hot magnitude `> m` (`m < 2^W`; may be `2^W`, which is 1-hot).
    fn smallest_above(&self, m: u64) -> u64 {
        match &self.mags {
            Magnitudes::All => m + 1,
            Magnitudes::Table(t) => {
                let n = t.partition_point(|&v| (v as u64) <= m);
                t.get(n).map_or(1u64 << self.format.width(), |&v| v as u64)
            }
        }
    }

    /// Every K-hot code of the format's range, ascending (for tests and inspection).
    pub fn codes(&self) -> Vec<i64> {
        let neg = (1..=self.lo_code.unsigned_abs())
            .rev()
            .filter(|&m| self.lo_code < 0 && self.admits_mag(m))
            .map(|m| -(m as i64));
        let pos = (0..=self.hi_code.max(0) as u64)
            .filter(|&m| self.admits_mag(m))
            .map(|m| m as i64);
        neg.chain(pos).collect()
    }

    fn admits_mag(&self, m: u64) -> bool {
        self.khot.admits(m as i128)
    }

    /// The K-hot code for `x` and its clip marker ([`CLIP_BELOW`], [`CLIP_NONE`],
    /// [`CLIP_ABOVE`]). NaN and ±Inf are read by their sign bit as beyond the range (as the
    /// HLS headers read them), so they saturate or become 0.
    pub fn project_code(&self, x: f64) -> (i64, i8) {
        let f = self.format.frac_bits() as i32;
        let y = if x.is_finite() {
            x * 2f64.powi(f)
        } else if x.is_sign_negative() {
            f64::NEG_INFINITY
        } else {
            f64::INFINITY
        };
        self.project_scaled(y)
    }

    /// The projection of `y = x·2^F` (already in LSB units).
    fn project_scaled(&self, y: f64) -> (i64, i8) {
        let q = if y >= 0.0 {
            if y > self.above_hi as f64 {
                None
            } else {
                let (lo, hi) = self.neighbours(y);
                Some(self.choose(y, lo, hi))
            }
        } else if -y > self.above_lo as f64 {
            None
        } else {
            let (lo, hi) = self.neighbours(-y);
            // Mirror: the neighbours of y are −hi ≤ y ≤ −lo.
            Some(self.choose(y, -hi, -lo))
        };
        let zero = self.format.overflow() == Overflow::SatZero;
        match q {
            Some(q) if q > self.hi_code => (if zero { 0 } else { self.hi_khot }, CLIP_ABOVE),
            Some(q) if q < self.lo_code => (if zero { 0 } else { self.lo_khot }, CLIP_BELOW),
            Some(q) => (q, CLIP_NONE),
            None if y > 0.0 => (if zero { 0 } else { self.hi_khot }, CLIP_ABOVE),
            None => (if zero { 0 } else { self.lo_khot }, CLIP_BELOW),
        }
    }

    /// K-hot magnitudes `lo ≤ m ≤ hi` around `m ≥ 0` (`m ≤` the largest sentinel `≤ 2^W`).
    fn neighbours(&self, m: f64) -> (i64, i64) {
        let fl = m.floor() as u64; // exact: m < 2^25
        let cap = (1u64 << self.format.width()) - 1;
        if fl > cap {
            // m = 2^W exactly (the only sentinel beyond the table), which is 1-hot.
            return (fl as i64, fl as i64);
        }
        let lo = self.largest_at_most(fl);
        if lo as f64 == m {
            return (lo as i64, lo as i64);
        }
        (lo as i64, self.smallest_above(fl) as i64)
    }

    /// Picks `lo` or `hi` (`lo ≤ y ≤ hi`, both K-hot) by the quantization mode.
    fn choose(&self, y: f64, lo: i64, hi: i64) -> i64 {
        if lo == hi {
            return lo;
        }
        let toward_zero = if y >= 0.0 { lo } else { hi };
        let away = if y >= 0.0 { hi } else { lo };
        let quant = self.format.quant();
        match quant {
            Quant::Trn => return lo,
            Quant::TrnZero => return toward_zero,
            _ => {}
        }
        // Exact: y and the integers lo, hi are multiples of ulp(y) and |y| < 2^26.
        let (dl, dh) = (y - lo as f64, hi as f64 - y);
        if dl < dh {
            return lo;
        }
        if dh < dl {
            return hi;
        }
        match quant {
            Quant::Rnd => hi,
            Quant::RndMinInf => lo,
            Quant::RndZero => toward_zero,
            Quant::RndInf => away,
            _ => {
                // AP_RND_CONV: more trailing zeros, then smaller magnitude.
                let (tl, th) = (lo.trailing_zeros(), hi.trailing_zeros());
                if tl > th || (tl == th && lo.unsigned_abs() < hi.unsigned_abs()) {
                    lo
                } else {
                    hi
                }
            }
        }
    }

    /// The projection of `x` as a value of the format. Errors for NaN and ±Inf.
    pub fn project(&self, x: f64) -> Result<Fixed, Error> {
        if !x.is_finite() {
            return Err(Error::NonFinite(x));
        }
        Fixed::from_code(self.project_code(x).0 as i128, self.format)
    }

    /// Projects `input` into `output` (values, as `f32`: exact, since `W ≤ 24`) and writes a
    /// clip marker per element, like [`crate::SliceQuantizer::quantize`]. `threads` = 0 uses
    /// every available core; small slices run on the calling thread.
    pub fn quantize(
        &self,
        input: &[f32],
        output: &mut [f32],
        clip: &mut [i8],
        threads: usize,
    ) -> Result<QuantizeStats, Error> {
        for len in [output.len(), clip.len()] {
            if len != input.len() {
                return Err(Error::LengthMismatch {
                    input: input.len(),
                    output: len,
                });
            }
        }
        let wanted = if threads == 0 {
            available_threads()
        } else {
            threads
        };
        let threads = wanted.min(input.len() / (1 << 15)).max(1);
        if threads == 1 {
            return Ok(self.run(input, output, clip));
        }
        let chunk = input.len().div_ceil(threads);
        let stats = std::thread::scope(|scope| {
            let handles: Vec<_> = input
                .chunks(chunk)
                .zip(output.chunks_mut(chunk))
                .zip(clip.chunks_mut(chunk))
                .map(|((x, y), c)| scope.spawn(move || self.run(x, y, c)))
                .collect();
            handles
                .into_iter()
                .map(|h| h.join().unwrap_or_else(|e| std::panic::resume_unwind(e)))
                .fold(QuantizeStats::default(), |a, b| QuantizeStats {
                    above: a.above + b.above,
                    below: a.below + b.below,
                    nonfinite: a.nonfinite + b.nonfinite,
                })
        });
        Ok(stats)
    }

    fn run(&self, input: &[f32], output: &mut [f32], clip: &mut [i8]) -> QuantizeStats {
        let f = self.format.frac_bits() as i32;
        let (scale, inv_scale) = (2f64.powi(f), 2f64.powi(-f));
        let mut stats = QuantizeStats::default();
        for ((&x, y), c) in input.iter().zip(output.iter_mut()).zip(clip.iter_mut()) {
            let x = x as f64;
            let v = if x.is_finite() {
                x * scale
            } else {
                stats.nonfinite += 1;
                if x.is_sign_negative() {
                    f64::NEG_INFINITY
                } else {
                    f64::INFINITY
                }
            };
            let (q, k) = self.project_scaled(v);
            *y = (q as f64 * inv_scale) as f32;
            *c = k;
            stats.above += (k == CLIP_ABOVE) as usize;
            stats.below += (k == CLIP_BELOW) as usize;
        }
        stats
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every code of up to 13 bits, and the extremes: the digits sum to the code; CSD digits are
    /// non-adjacent; the counts are what the K-hot constraint counts.
    #[test]
    fn signed_digits_sum_to_the_code() {
        // Modulo 2^128: i128::MAX in CSD is 2^127 − 1, whose top digit wraps to i128::MIN.
        let value = |d: &[SignedDigit]| -> i128 {
            d.iter().fold(0i128, |acc, d| {
                let p = 1i128.wrapping_shl(d.shift);
                acc.wrapping_add(if d.negative { p.wrapping_neg() } else { p })
            })
        };
        let codes = (-4096i128..4096).chain([i128::MAX, i128::MIN + 1, i64::MIN as i128]);
        for code in codes {
            for csd in [false, true] {
                let d: Vec<SignedDigit> = signed_digits(code, csd).collect();
                assert_eq!(value(&d), code, "{code} csd={csd}: {d:?}");
                let khot = KHot { k: 1, csd };
                assert_eq!(d.len() as u32, khot.digits(code), "{code} csd={csd}");
                if csd {
                    assert!(d.windows(2).all(|p| p[1].shift > p[0].shift + 1), "{code}");
                }
            }
        }
        let top: Vec<SignedDigit> = signed_digits(i128::MIN, true).collect();
        assert_eq!(
            top,
            [SignedDigit {
                shift: 127,
                negative: true
            }]
        );
        // 2^128 − 1 = 2^128 − 2^0: the carry runs out of the word.
        let all_ones: Vec<SignedDigit> = Digits::of_magnitude(u128::MAX, true, false).collect();
        assert_eq!(
            all_ones.iter().map(|d| d.shift).collect::<Vec<_>>(),
            [0, 128]
        );
        assert_eq!(
            all_ones.iter().map(|d| d.negative).collect::<Vec<_>>(),
            [true, false]
        );
    }
}
