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
//! For the common formats (`W ≤ 50`, `|F| ≤ 800`, overflow `AP_SAT`, `AP_SAT_SYM`,
//! `AP_SAT_ZERO`, or `AP_WRAP` without saturation bits) each element is computed branch-free in
//! `f64`: `v = x·2^F` is exact, the nearest integer comes from the `(v + 1.5·2^52) − 1.5·2^52`
//! trick (exact for `|v| < 2^51` and vectorizable without SSE4.1), and the rounding residual
//! `v − t` (also exact) selects each mode's tie rule. The loop is compiled twice, for the baseline
//! target and for AVX2, and the CPU picks at run time. Elements outside the exact domain
//! (`|v| ≥ 2^51`, NaN, ±Inf) and formats outside the fast set fall back to the scalar core.
//! Large slices are split across threads with [`std::thread::scope`].
//!
//! # NaN and infinities
//! They are counted in [`QuantizeStats::nonfinite`] so a caller can refuse them, and otherwise
//! converted exactly as the headers convert them (see [`Fixed::from_f64_hls`]).

use crate::error::Error;
use crate::format::{Format, Overflow, Quant};
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
/// `1.5 · 2^52`: adding and subtracting it rounds an `f64` below `2^51` to an integer, ties even.
const ROUND_MAGIC: f64 = 6755399441055744.0;
/// Fast path domain bound for `|x · 2^F|`.
const EXACT_LIMIT: f64 = 2251799813685248.0; // 2^51

/// Overflow handling of the fast path.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum FastOverflow {
    /// Clamp to `[lo, hi]` (AP_SAT, and AP_SAT_SYM with `lo = −hi`).
    Clamp,
    /// Out of `[lo, hi]` gives 0.
    Zero,
    /// Modulo `2^W` into `[lo, hi]`.
    Wrap,
}

/// Precomputed constants for the fast path.
#[derive(Clone, Copy, Debug)]
struct Consts {
    scale: f64,
    inv_scale: f64,
    lo: f64,
    hi: f64,
    modulus: f64,
    inv_modulus: f64,
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
    consts: Consts,
    fast: Option<FastOverflow>,
}

impl SliceQuantizer {
    /// A quantizer for `format`.
    pub fn new(format: Format) -> SliceQuantizer {
        let f = format.frac_bits();
        let w = format.width();
        let fast_overflow = match format.overflow() {
            Overflow::Sat | Overflow::SatSym => Some(FastOverflow::Clamp),
            Overflow::SatZero => Some(FastOverflow::Zero),
            Overflow::Wrap if format.sat_bits() == 0 => Some(FastOverflow::Wrap),
            _ => None,
        };
        let fast = fast_overflow.filter(|_| w <= 50 && (-800..=800).contains(&f));
        let pow2 = |e: i64| f64::from_bits(((e.clamp(-1022, 1023) + 1023) as u64) << 52);
        let hi_code = format.max_code();
        let lo_code = if format.overflow() == Overflow::SatSym && format.is_signed() {
            // −max, which for a 1-bit signed format is the minimum code itself (the headers
            // set the LSB of the minimum code: 100…0 | 1).
            format.min_code() | 1
        } else {
            format.min_code()
        };
        let wide = i32::try_from(128 - f)
            .ok()
            .and_then(|i| Format::new(128, i, true, format.quant(), Overflow::Sat, 0).ok());
        SliceQuantizer {
            format,
            wide,
            lo_code,
            hi_code,
            consts: Consts {
                scale: pow2(f),
                inv_scale: pow2(-f),
                lo: lo_code as f64,
                hi: hi_code as f64,
                modulus: pow2(w as i64),
                inv_modulus: pow2(-(w as i64)),
            },
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
                .map(|h| h.join().unwrap_or_default())
                .fold(QuantizeStats::default(), QuantizeStats::merge)
        })
    }

    fn run<T: Output>(&self, input: &[f32], output: &mut [T], clip: &mut [i8]) -> QuantizeStats {
        let mut stats = QuantizeStats::default();
        let Some(fast) = self.fast else {
            for ((x, y), c) in input.iter().zip(output.iter_mut()).zip(clip.iter_mut()) {
                stats = stats.merge(self.scalar(*x, y, c));
            }
            return stats;
        };
        let block = select_block::<T>(self.format.quant(), fast);
        for ((x, y), c) in input
            .chunks(BLOCK)
            .zip(output.chunks_mut(BLOCK))
            .zip(clip.chunks_mut(BLOCK))
        {
            // SAFETY: `select_block` only returns the AVX2 variant after detecting AVX2.
            let (above, below, slow) = unsafe { block(&self.consts, x, y, c) };
            if slow {
                // Redo the elements the fast path cannot do exactly, and recount the block.
                let mut fixed = QuantizeStats::default();
                for ((x, y), c) in x.iter().zip(y.iter_mut()).zip(c.iter_mut()) {
                    if !((*x as f64 * self.consts.scale).abs() < EXACT_LIMIT) {
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

fn thread_count(requested: usize, len: usize) -> usize {
    let available = std::thread::available_parallelism().map_or(1, |n| n.get());
    let wanted = if requested == 0 { available } else { requested };
    wanted.min(len / MIN_PER_THREAD).max(1)
}

/// What a kernel writes per element: an `f32` value or an `i32` code.
trait Output: Copy + Send + Default {
    /// From the integer-valued code `q` (exact in f64) and `2^−F`.
    fn from_code(q: f64, inv_scale: f64) -> Self;
    fn from_fixed(v: &Fixed) -> Self;
}

impl Output for f32 {
    #[inline(always)]
    fn from_code(q: f64, inv_scale: f64) -> f32 {
        (q * inv_scale) as f32
    }
    fn from_fixed(v: &Fixed) -> f32 {
        v.to_f32()
    }
}

impl Output for i32 {
    #[inline(always)]
    fn from_code(q: f64, _inv_scale: f64) -> i32 {
        q as i32
    }
    fn from_fixed(v: &Fixed) -> i32 {
        v.code().map_or(0, |c| c as i32)
    }
}

/// Returns `(above, below, slow)` for one block; `slow` means some element needs the scalar path.
type BlockFn<T> = unsafe fn(&Consts, &[f32], &mut [T], &mut [i8]) -> (usize, usize, bool);

/// The rounding of one element, `v = x·2^F`, as an integer-valued f64 (branch-free).
#[inline(always)]
fn round<const Q: u8>(v: f64) -> f64 {
    let t = (v + ROUND_MAGIC) - ROUND_MAGIC; // nearest, ties to even
    let d = v - t; // exact residual in [−0.5, 0.5]
    let up = |c: bool| if c { 1.0 } else { 0.0 };
    match Q {
        Q_TRN => t - up(d < 0.0),
        Q_TRN_ZERO => {
            if v >= 0.0 {
                t - up(d < 0.0)
            } else {
                t + up(d > 0.0)
            }
        }
        Q_RND => t + up(d == 0.5),
        Q_RND_ZERO => t + up(d == 0.5 && v < 0.0) - up(d == -0.5 && v > 0.0),
        Q_RND_MIN_INF => t - up(d == -0.5),
        Q_RND_INF => t + up(d == 0.5 && v > 0.0) - up(d == -0.5 && v < 0.0),
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
fn block_generic<T: Output, const Q: u8, const O: u8>(
    c: &Consts,
    input: &[f32],
    output: &mut [T],
    clip: &mut [i8],
) -> (usize, usize, bool) {
    let mut slow = false;
    let (mut above, mut below) = (0usize, 0usize);
    for ((x, y), k) in input.iter().zip(output.iter_mut()).zip(clip.iter_mut()) {
        let v = *x as f64 * c.scale;
        slow |= !(v.abs() < EXACT_LIMIT);
        let q = round::<Q>(v);
        let is_above = q > c.hi;
        let is_below = q < c.lo;
        let q = match O {
            O_CLAMP => q.max(c.lo).min(c.hi),
            O_ZERO => {
                if is_above || is_below {
                    0.0
                } else {
                    q
                }
            }
            _ => {
                // q − 2^W · floor((q − lo) / 2^W), every step exact below 2^52.
                let y = (q - c.lo) * c.inv_modulus;
                let r = (y + ROUND_MAGIC) - ROUND_MAGIC;
                let fl = if r > y { r - 1.0 } else { r };
                q - fl * c.modulus
            }
        };
        *y = T::from_code(q, c.inv_scale);
        *k = is_above as i8 - is_below as i8;
        above += is_above as usize;
        below += is_below as usize;
    }
    (above, below, slow)
}

/// Instantiates the block kernel for every (quantization, overflow) pair, twice: for the
/// baseline target and with AVX2 enabled, chosen at run time.
macro_rules! block_table {
    ($($q:ident),*) => {
        fn select_block<T: Output>(quant: Quant, fast: FastOverflow) -> BlockFn<T> {
            let o = match fast {
                FastOverflow::Clamp => O_CLAMP,
                FastOverflow::Zero => O_ZERO,
                FastOverflow::Wrap => O_WRAP,
            };
            #[cfg(target_arch = "x86_64")]
            let avx2 = std::is_x86_feature_detected!("avx2");
            #[cfg(not(target_arch = "x86_64"))]
            let avx2 = false;
            let q = quant_code(quant);
            $(
                if q == $q {
                    return match (o, avx2) {
                        (O_CLAMP, false) => base::<T, $q, O_CLAMP>,
                        (O_ZERO, false) => base::<T, $q, O_ZERO>,
                        (_, false) => base::<T, $q, O_WRAP>,
                        #[cfg(target_arch = "x86_64")]
                        (O_CLAMP, true) => avx2_block::<T, $q, O_CLAMP>,
                        #[cfg(target_arch = "x86_64")]
                        (O_ZERO, true) => avx2_block::<T, $q, O_ZERO>,
                        #[cfg(target_arch = "x86_64")]
                        (_, true) => avx2_block::<T, $q, O_WRAP>,
                        #[cfg(not(target_arch = "x86_64"))]
                        (_, true) => unreachable!(),
                    };
                }
            )*
            base::<T, Q_RND_CONV, O_CLAMP>
        }
    };
}
block_table!(Q_TRN, Q_TRN_ZERO, Q_RND, Q_RND_ZERO, Q_RND_MIN_INF, Q_RND_INF, Q_RND_CONV);

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

unsafe fn base<T: Output, const Q: u8, const O: u8>(
    c: &Consts,
    x: &[f32],
    y: &mut [T],
    k: &mut [i8],
) -> (usize, usize, bool) {
    block_generic::<T, Q, O>(c, x, y, k)
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
unsafe fn avx2_block<T: Output, const Q: u8, const O: u8>(
    c: &Consts,
    x: &[f32],
    y: &mut [T],
    k: &mut [i8],
) -> (usize, usize, bool) {
    block_generic::<T, Q, O>(c, x, y, k)
}
