//! Slice kernels: the hot path of quantization-aware training.
//!
//! [`SliceQuantizer`] casts a whole `&[f32]` into a format and records, per element, which side
//! of the representable range it was clipped to (what a straight-through backward pass needs).
//! Every element's result equals [`Fixed::from_f32_hls`] followed by [`Fixed::to_f32`] — the
//! property tests check this against the scalar core — so the output is exactly on the
//! fixed-point grid whenever the grid's values are `f32`s (`W ≤ 24` and `2^−F ≥ 2^−149`);
//! otherwise each element is the `f32` nearest to its exact fixed-point value.
//!
//! # How it is fast
//! Each element is computed branch-free in floating point: `v = x·2^F` is exact, the nearest
//! integer comes from the `(v + 1.5·2^p) − 1.5·2^p` trick (exact for `|v| < 2^(p−1)` and
//! vectorizable without SSE4.1), and the rounding residual `v − t` (also exact) selects each
//! mode's tie rule; overflow is a clamp, a select, or an exact modulo. Narrow formats
//! (`W ≤ 21`, `0 ≤ F ≤ 100`) run in `f32` lanes (`p = 23`), others up to `W ≤ 50`, `|F| ≤ 800`
//! in `f64` lanes (`p = 52`). The fast overflow modes are `AP_SAT`, `AP_SAT_SYM`,
//! `AP_SAT_ZERO` and `AP_WRAP` without saturation bits. The loop is compiled for the baseline
//! target and for AVX2, and the CPU picks at run time. Elements outside the exact domain
//! (`|v| ≥ 2^(p−1)`, NaN, ±Inf) and formats outside the fast set go through the scalar core.
//! Large slices are split across threads with [`std::thread::scope`].
//!
//! # NaN and infinities
//! They are counted in [`QuantizeStats::nonfinite`] so a caller can refuse them, and otherwise
//! converted exactly as the headers convert them (see [`Fixed::from_f64_hls`]).

use crate::error::Error;
use crate::format::{Format, Overflow, OverflowRule, Quant};
use crate::value::Fixed;

/// Clip marker for an element whose quantized value lay below the format's range.
pub const CLIP_BELOW: i8 = -1;
/// Clip marker for an element that was representable (possibly after rounding).
pub const CLIP_NONE: i8 = 0;
/// Clip marker for an element whose quantized value lay above the format's range.
pub const CLIP_ABOVE: i8 = 1;

/// Counts from one kernel call.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct QuantizeStats {
    /// Elements whose rounded value was above the range (saturated, zeroed or wrapped).
    pub above: usize,
    /// Elements whose rounded value was below the range.
    pub below: usize,
    /// NaN or ±Inf inputs (also counted in `above`/`below` by their sign bit).
    pub nonfinite: usize,
}

impl QuantizeStats {
    fn merge(self, o: QuantizeStats) -> QuantizeStats {
        QuantizeStats {
            above: self.above + o.above,
            below: self.below + o.below,
            nonfinite: self.nonfinite + o.nonfinite,
        }
    }
}

/// Below this many elements per thread, spawning threads costs more than it saves.
const MIN_PER_THREAD: usize = 1 << 16;
/// Elements per block; a block with any element outside the fast domain is patched up after.
const BLOCK: usize = 2048;
/// The floating-point type the fast path computes in.
trait Lane:
    Copy
    + PartialOrd
    + std::ops::Add<Output = Self>
    + std::ops::Sub<Output = Self>
    + std::ops::Mul<Output = Self>
    + Send
    + Sync
    + std::fmt::Debug
{
    const ZERO: Self;
    const ONE: Self;
    const HALF: Self;
    /// `1.5 · 2^p` for `p` mantissa bits: adding and subtracting it rounds to an integer.
    const MAGIC: Self;
    /// `2^(p−1)`: below it the rounding trick and every later step are exact.
    const LIMIT: Self;
    fn from_f32(x: f32) -> Self;
    fn from_f64(x: f64) -> Self;
    fn to_f32(self) -> f32;
    fn to_i32(self) -> i32;
    fn abs(self) -> Self;
    fn max(self, other: Self) -> Self;
    fn min(self, other: Self) -> Self;
}

macro_rules! lane {
    ($t:ty, $magic:expr, $limit:expr) => {
        impl Lane for $t {
            const ZERO: $t = 0.0;
            const ONE: $t = 1.0;
            const HALF: $t = 0.5;
            const MAGIC: $t = $magic;
            const LIMIT: $t = $limit;
            #[inline(always)]
            fn from_f32(x: f32) -> $t {
                x as $t
            }
            #[inline(always)]
            fn from_f64(x: f64) -> $t {
                x as $t
            }
            #[inline(always)]
            fn to_f32(self) -> f32 {
                self as f32
            }
            #[inline(always)]
            fn to_i32(self) -> i32 {
                self as i32
            }
            #[inline(always)]
            fn abs(self) -> $t {
                <$t>::abs(self)
            }
            #[inline(always)]
            fn max(self, other: $t) -> $t {
                <$t>::max(self, other)
            }
            #[inline(always)]
            fn min(self, other: $t) -> $t {
                <$t>::min(self, other)
            }
        }
    };
}
lane!(f32, 12582912.0, 4194304.0);
lane!(f64, 6755399441055744.0, 2251799813685248.0);

/// Precomputed constants for the fast path.
#[derive(Clone, Copy, Debug)]
struct Consts<L> {
    scale: L,
    inv_scale: L,
    lo: L,
    hi: L,
    modulus: L,
    inv_modulus: L,
    overflow: OverflowRule,
}

impl<L: Lane> Consts<L> {
    fn new(format: &Format, lo: i128, hi: i128, overflow: OverflowRule) -> Consts<L> {
        let pow2 =
            |e: i64| L::from_f64(f64::from_bits(((e.clamp(-1022, 1023) + 1023) as u64) << 52));
        let (f, w) = (format.frac_bits(), format.width() as i64);
        Consts {
            scale: pow2(f),
            inv_scale: pow2(-f),
            lo: L::from_f64(lo as f64),
            hi: L::from_f64(hi as f64),
            modulus: pow2(w),
            inv_modulus: pow2(-w),
            overflow,
        }
    }

    /// Whether `x` is inside the fast path's exact domain.
    #[inline(always)]
    fn exact(&self, x: f32) -> bool {
        (L::from_f32(x) * self.scale).abs() < L::LIMIT
    }
}

/// The fast path chosen for a format, if any.
#[derive(Clone, Copy, Debug)]
enum Fast {
    Narrow(Consts<f32>),
    Wide(Consts<f64>),
}

/// Quantizes `f32` slices into one fixed-point format. Create once per format, reuse per call.
///
/// ```
/// use qfx_fixed::{Format, SliceQuantizer, CLIP_ABOVE, CLIP_NONE};
/// let q = SliceQuantizer::new("ap_fixed<8,3,AP_RND_CONV,AP_SAT>".parse::<Format>().unwrap());
/// let x = [0.046875f32, 100.0, -0.3];
/// let (mut y, mut clip) = ([0f32; 3], [0i8; 3]);
/// let stats = q.quantize(&x, &mut y, &mut clip, 1).unwrap();
/// assert_eq!(y, [0.0625, 3.96875, -0.3125]);
/// assert_eq!(clip, [CLIP_NONE, CLIP_ABOVE, CLIP_NONE]);
/// assert_eq!(stats.above, 1);
/// ```
#[derive(Clone, Debug)]
pub struct SliceQuantizer {
    format: Format,
    /// A saturating 128-bit format with the same binary point and quantization: the slow path
    /// rounds into it to learn which side of `[lo_code, hi_code]` an element fell on.
    wide: Option<Format>,
    lo_code: i128,
    hi_code: i128,
    fast: Option<Fast>,
}

impl SliceQuantizer {
    /// A quantizer for `format`.
    pub fn new(format: Format) -> SliceQuantizer {
        let (f, w) = (format.frac_bits(), format.width());
        let (lo_code, hi_code) = format.assignable_range();
        // The fast path repairs rounded codes on its own; the general rule needs `Fixed::cast`.
        let overflow = Some(format.overflow_rule()).filter(|&o| o != OverflowRule::General);
        let fast = overflow.and_then(|o| {
            if w <= 21 && (0..=100).contains(&f) {
                Some(Fast::Narrow(Consts::new(&format, lo_code, hi_code, o)))
            } else if w <= 50 && (-800..=800).contains(&f) {
                Some(Fast::Wide(Consts::new(&format, lo_code, hi_code, o)))
            } else {
                None
            }
        });
        let wide = i32::try_from(128 - f)
            .ok()
            .and_then(|i| Format::new(128, i, true, format.quant(), Overflow::Sat, 0).ok());
        SliceQuantizer {
            format,
            wide,
            lo_code,
            hi_code,
            fast,
        }
    }

    /// The format.
    pub fn format(&self) -> Format {
        self.format
    }

    /// Quantizes `input` into `output` (values on the grid, as `f32`) and writes a clip marker
    /// per element ([`CLIP_BELOW`], [`CLIP_NONE`], [`CLIP_ABOVE`]). `threads` = 0 uses every
    /// available core; small slices always run on the calling thread.
    pub fn quantize(
        &self,
        input: &[f32],
        output: &mut [f32],
        clip: &mut [i8],
        threads: usize,
    ) -> Result<QuantizeStats, Error> {
        check_len(input.len(), output.len())?;
        check_len(input.len(), clip.len())?;
        Ok(self.run_parallel(input, output, clip, threads))
    }

    /// Like [`SliceQuantizer::quantize`] but writes integer codes instead of values. Errors if
    /// the format is wider than 32 bits.
    pub fn quantize_codes(
        &self,
        input: &[f32],
        codes: &mut [i32],
        clip: &mut [i8],
        threads: usize,
    ) -> Result<QuantizeStats, Error> {
        check_code_width(&self.format)?;
        check_len(input.len(), codes.len())?;
        check_len(input.len(), clip.len())?;
        Ok(self.run_parallel(input, codes, clip, threads))
    }

    fn run_parallel<T: Output>(
        &self,
        input: &[f32],
        output: &mut [T],
        clip: &mut [i8],
        threads: usize,
    ) -> QuantizeStats {
        let threads = thread_count(threads, input.len());
        if threads <= 1 {
            return self.run(input, output, clip);
        }
        let chunk = input.len().div_ceil(threads);
        std::thread::scope(|scope| {
            let handles: Vec<_> = input
                .chunks(chunk)
                .zip(output.chunks_mut(chunk))
                .zip(clip.chunks_mut(chunk))
                .map(|((x, y), c)| scope.spawn(move || self.run(x, y, c)))
                .collect();
            handles
                .into_iter()
                .map(|h| h.join().unwrap_or_else(|e| std::panic::resume_unwind(e)))
                .fold(QuantizeStats::default(), QuantizeStats::merge)
        })
    }

    fn run<T: Output>(&self, input: &[f32], output: &mut [T], clip: &mut [i8]) -> QuantizeStats {
        match &self.fast {
            Some(Fast::Narrow(c)) => self.run_fast(c, input, output, clip),
            Some(Fast::Wide(c)) => self.run_fast(c, input, output, clip),
            None => {
                let mut stats = QuantizeStats::default();
                for ((x, y), c) in input.iter().zip(output.iter_mut()).zip(clip.iter_mut()) {
                    stats = stats.merge(self.scalar(*x, y, c));
                }
                stats
            }
        }
    }

    fn run_fast<L: Lane, T: Output>(
        &self,
        consts: &Consts<L>,
        input: &[f32],
        output: &mut [T],
        clip: &mut [i8],
    ) -> QuantizeStats {
        let mut stats = QuantizeStats::default();
        let block = select_block::<L, T>(self.format.quant(), consts.overflow);
        for ((x, y), c) in input
            .chunks(BLOCK)
            .zip(output.chunks_mut(BLOCK))
            .zip(clip.chunks_mut(BLOCK))
        {
            // SAFETY: `select_block` only returns the AVX2 variant after detecting AVX2.
            let (above, below, slow) = unsafe { block(consts, x, y, c) };
            if slow {
                // Redo the elements the fast path cannot do exactly, and recount the block.
                let mut fixed = QuantizeStats::default();
                for ((x, y), c) in x.iter().zip(y.iter_mut()).zip(c.iter_mut()) {
                    if !consts.exact(*x) {
                        self.scalar(*x, y, c);
                    }
                    fixed.above += (*c == CLIP_ABOVE) as usize;
                    fixed.below += (*c == CLIP_BELOW) as usize;
                    fixed.nonfinite += !x.is_finite() as usize;
                }
                stats = stats.merge(fixed);
            } else {
                stats.above += above;
                stats.below += below;
            }
        }
        stats
    }

    /// One element through the scalar core (the definition the fast path must match).
    fn scalar<T: Output>(&self, x: f32, out: &mut T, clip: &mut i8) -> QuantizeStats {
        let value = Fixed::from_f32_hls(x, self.format);
        *out = T::from_fixed(&value);
        *clip = if !x.is_finite() {
            if x.is_sign_negative() {
                CLIP_BELOW
            } else {
                CLIP_ABOVE
            }
        } else {
            self.clip_side(x)
        };
        QuantizeStats {
            above: (*clip == CLIP_ABOVE) as usize,
            below: (*clip == CLIP_BELOW) as usize,
            nonfinite: !x.is_finite() as usize,
        }
    }

    /// Which side of the range the rounded (not yet overflow-handled) value of `x` lies on:
    /// `x` is rounded at the target's binary point into a saturating 128-bit format, which is
    /// exact for every code a narrower format can hold. (For 127- and 128-bit formats a value
    /// beyond the i128 range is reported as in range: no training format is that wide.)
    fn clip_side(&self, x: f32) -> i8 {
        let Some(wide) = self.wide else {
            return CLIP_NONE;
        };
        let rounded = Fixed::from_f32_hls(x, wide).code().unwrap_or(0);
        if rounded > self.hi_code {
            CLIP_ABOVE
        } else if rounded < self.lo_code {
            CLIP_BELOW
        } else {
            CLIP_NONE
        }
    }
}

/// Writes codes back as values: `out[i] = codes[i] · 2^−F`, rounded to the nearest `f32`.
pub fn codes_to_f32(codes: &[i32], format: &Format, out: &mut [f32]) -> Result<(), Error> {
    check_code_width(format)?;
    check_len(codes.len(), out.len())?;
    let f = format.frac_bits();
    if (-800..=800).contains(&f) {
        let inv_scale = f64::from_bits(((1023 - f) as u64) << 52);
        for (c, y) in codes.iter().zip(out.iter_mut()) {
            *y = (*c as f64 * inv_scale) as f32;
        }
    } else {
        for (c, y) in codes.iter().zip(out.iter_mut()) {
            *y = Fixed::from_raw_bits(*c as u128, *format).to_f32();
        }
    }
    Ok(())
}

fn check_len(input: usize, output: usize) -> Result<(), Error> {
    if input == output {
        Ok(())
    } else {
        Err(Error::LengthMismatch { input, output })
    }
}

fn check_code_width(format: &Format) -> Result<(), Error> {
    if format.width() > 32 || (format.width() == 32 && !format.is_signed()) {
        return Err(Error::InvalidFormat(format!(
            "{format} has codes that do not fit in an i32; use the scalar API"
        )));
    }
    Ok(())
}

/// Cores available to this process, asked once: the query reads cgroup files, which costs
/// more than quantizing a small tensor.
pub fn available_threads() -> usize {
    static CORES: std::sync::OnceLock<usize> = std::sync::OnceLock::new();
    *CORES.get_or_init(|| std::thread::available_parallelism().map_or(1, |n| n.get()))
}

fn thread_count(requested: usize, len: usize) -> usize {
    let available = available_threads();
    let wanted = if requested == 0 { available } else { requested };
    wanted.min(len / MIN_PER_THREAD).max(1)
}

/// What a kernel writes per element: an `f32` value or an `i32` code.
trait Output: Copy + Send + Default {
    /// From the integer-valued code `q` and `2^−F`.
    fn from_code<L: Lane>(q: L, inv_scale: L) -> Self;
    fn from_fixed(v: &Fixed) -> Self;
}

impl Output for f32 {
    #[inline(always)]
    fn from_code<L: Lane>(q: L, inv_scale: L) -> f32 {
        (q * inv_scale).to_f32()
    }
    fn from_fixed(v: &Fixed) -> f32 {
        v.to_f32()
    }
}

impl Output for i32 {
    #[inline(always)]
    fn from_code<L: Lane>(q: L, _inv_scale: L) -> i32 {
        q.to_i32()
    }
    fn from_fixed(v: &Fixed) -> i32 {
        v.code().map_or(0, |c| c as i32)
    }
}

/// Returns `(above, below, slow)` for one block; `slow` means some element needs the scalar path.
type BlockFn<L, T> = unsafe fn(&Consts<L>, &[f32], &mut [T], &mut [i8]) -> (usize, usize, bool);

/// The rounding of one element, `v = x·2^F`, as an integer-valued float (branch-free).
#[inline(always)]
fn round<L: Lane, const Q: u8>(v: L) -> L {
    let t = (v + L::MAGIC) - L::MAGIC; // nearest, ties to even
    let d = v - t; // exact residual in [−0.5, 0.5]
    let half = L::HALF;
    let neg_half = L::ZERO - L::HALF;
    let up = |c: bool| if c { L::ONE } else { L::ZERO };
    match Q {
        Q_TRN => t - up(d < L::ZERO),
        Q_TRN_ZERO => {
            if v >= L::ZERO {
                t - up(d < L::ZERO)
            } else {
                t + up(d > L::ZERO)
            }
        }
        Q_RND => t + up(d == half),
        Q_RND_ZERO => t + up(d == half && v < L::ZERO) - up(d == neg_half && v > L::ZERO),
        Q_RND_MIN_INF => t - up(d == neg_half),
        Q_RND_INF => t + up(d == half && v > L::ZERO) - up(d == neg_half && v < L::ZERO),
        _ => t, // Q_RND_CONV
    }
}

const Q_TRN: u8 = 0;
const Q_TRN_ZERO: u8 = 1;
const Q_RND: u8 = 2;
const Q_RND_ZERO: u8 = 3;
const Q_RND_MIN_INF: u8 = 4;
const Q_RND_INF: u8 = 5;
const Q_RND_CONV: u8 = 6;
const O_CLAMP: u8 = 0;
const O_ZERO: u8 = 1;
const O_WRAP: u8 = 2;

#[inline(always)]
fn block_generic<L: Lane, T: Output, const Q: u8, const O: u8>(
    c: &Consts<L>,
    input: &[f32],
    output: &mut [T],
    clip: &mut [i8],
) -> (usize, usize, bool) {
    let mut slow = false;
    // 32-bit counters keep the loop in 8-lane vectors (a block is far below 2^32 elements).
    let (mut above, mut below) = (0u32, 0u32);
    for ((x, y), k) in input.iter().zip(output.iter_mut()).zip(clip.iter_mut()) {
        let v = L::from_f32(*x) * c.scale;
        let in_domain = v.abs() < L::LIMIT; // false for NaN too
        slow |= !in_domain;
        let q = round::<L, Q>(v);
        let is_above = q > c.hi;
        let is_below = q < c.lo;
        let q = match O {
            O_CLAMP => q.max(c.lo).min(c.hi),
            O_ZERO => {
                if is_above || is_below {
                    L::ZERO
                } else {
                    q
                }
            }
            _ => {
                // q − 2^W · floor((q − lo) / 2^W), every step exact inside the domain.
                let y = (q - c.lo) * c.inv_modulus;
                let r = (y + L::MAGIC) - L::MAGIC;
                let fl = if r > y { r - L::ONE } else { r };
                q - fl * c.modulus
            }
        };
        *y = T::from_code(q, c.inv_scale);
        *k = is_above as i8 - is_below as i8;
        above += is_above as u32;
        below += is_below as u32;
    }
    (above as usize, below as usize, slow)
}

/// Instantiates the block kernel for every (quantization, overflow) pair, twice: for the
/// baseline target and with AVX2 enabled, chosen at run time.
macro_rules! block_table {
    ($($q:ident),*) => {
        fn select_block<L: Lane, T: Output>(quant: Quant, fast: OverflowRule) -> BlockFn<L, T> {
            let o = match fast {
                OverflowRule::Clamp => O_CLAMP,
                OverflowRule::Zero => O_ZERO,
                OverflowRule::Wrap => O_WRAP,
                OverflowRule::General => unreachable!("the fast path is never built for it"),
            };
            #[cfg(target_arch = "x86_64")]
            let avx2 = std::is_x86_feature_detected!("avx2");
            #[cfg(not(target_arch = "x86_64"))]
            let avx2 = false;
            let q = quant_code(quant);
            $(
                if q == $q {
                    return match (o, avx2) {
                        (O_CLAMP, false) => base::<L, T, $q, O_CLAMP>,
                        (O_ZERO, false) => base::<L, T, $q, O_ZERO>,
                        (_, false) => base::<L, T, $q, O_WRAP>,
                        #[cfg(target_arch = "x86_64")]
                        (O_CLAMP, true) => avx2_block::<L, T, $q, O_CLAMP>,
                        #[cfg(target_arch = "x86_64")]
                        (O_ZERO, true) => avx2_block::<L, T, $q, O_ZERO>,
                        #[cfg(target_arch = "x86_64")]
                        (_, true) => avx2_block::<L, T, $q, O_WRAP>,
                        #[cfg(not(target_arch = "x86_64"))]
                        (_, true) => unreachable!(),
                    };
                }
            )*
            base::<L, T, Q_RND_CONV, O_CLAMP>
        }
    };
}
block_table!(
    Q_TRN,
    Q_TRN_ZERO,
    Q_RND,
    Q_RND_ZERO,
    Q_RND_MIN_INF,
    Q_RND_INF,
    Q_RND_CONV
);

fn quant_code(q: Quant) -> u8 {
    match q {
        Quant::Trn => Q_TRN,
        Quant::TrnZero => Q_TRN_ZERO,
        Quant::Rnd => Q_RND,
        Quant::RndZero => Q_RND_ZERO,
        Quant::RndMinInf => Q_RND_MIN_INF,
        Quant::RndInf => Q_RND_INF,
        Quant::RndConv => Q_RND_CONV,
    }
}

unsafe fn base<L: Lane, T: Output, const Q: u8, const O: u8>(
    c: &Consts<L>,
    x: &[f32],
    y: &mut [T],
    k: &mut [i8],
) -> (usize, usize, bool) {
    block_generic::<L, T, Q, O>(c, x, y, k)
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
unsafe fn avx2_block<L: Lane, T: Output, const Q: u8, const O: u8>(
    c: &Consts<L>,
    x: &[f32],
    y: &mut [T],
    k: &mut [i8],
) -> (usize, usize, bool) {
    block_generic::<L, T, Q, O>(c, x, y, k)
}
