//! K-hot projection against brute-force enumeration: every width W ≤ 12, every K (up to past
//! the point where every code qualifies), both variants, signed and unsigned, all 7
//! quantization modes and the 3 saturating overflow modes. The inputs are every grid point,
//! every grid midpoint, and every midpoint between consecutive K-hot codes with nudges of
//! ±2^−12 LSB around it, over the range and a margin beyond both ends.
//!
//! The reference shares nothing with the implementation: digit counts come from a recursive
//! minimum over signed-digit expansions (not the non-adjacent-form walk), candidates from
//! enumerating integers, and decisions from exact integer arithmetic.

use qfx_fixed::{
    csd_weight, Fixed, Format, KHot, KHotQuantizer, Overflow, Quant, CLIP_ABOVE, CLIP_BELOW,
    CLIP_NONE,
};

/// Fewest non-zero digits of any expansion of `n` in digits {−1, 0, 1}.
fn min_signed_digits(n: u64, memo: &mut std::collections::HashMap<u64, u32>) -> u32 {
    if n <= 1 {
        return n as u32;
    }
    if let Some(&v) = memo.get(&n) {
        return v;
    }
    let v = if n.is_multiple_of(2) {
        min_signed_digits(n / 2, memo)
    } else {
        1 + min_signed_digits((n - 1) / 2, memo).min(min_signed_digits(n.div_ceil(2), memo))
    };
    memo.insert(n, v);
    v
}

/// Units of the input grid: 2^SUB per LSB, so every test point is an exact integer.
const SUB: u32 = 12;

struct Reference {
    /// K-hot integers (unbounded set) over a window wider than the range, ascending.
    candidates: Vec<i64>,
    lo_code: i64,
    hi_code: i64,
    /// The smallest and largest K-hot codes in range.
    saturated: (i64, i64),
}

impl Reference {
    fn new(format: &Format, khot: KHot, weights: &[u32]) -> Reference {
        let lo_code = if format.overflow() == Overflow::SatSym && format.is_signed() {
            (format.min_code() | 1) as i64
        } else {
            format.min_code() as i64
        };
        let hi_code = format.max_code() as i64;
        let reach = 1i64 << (format.width() + 1);
        let candidates: Vec<i64> = (-reach..=reach)
            .filter(|&n| weights[n.unsigned_abs() as usize] <= khot.k)
            .collect();
        let in_range: Vec<i64> = candidates
            .iter()
            .copied()
            .filter(|&v| v >= lo_code && v <= hi_code)
            .collect();
        let saturated = (in_range[0], in_range[in_range.len() - 1]);
        Reference {
            candidates,
            lo_code,
            hi_code,
            saturated,
        }
    }

    /// Expected (code, clip) for the input `p / 2^SUB` LSBs.
    fn project(&self, p: i64, quant: Quant, overflow: Overflow) -> (i64, i8) {
        let unit = 1i64 << SUB;
        let c = &self.candidates;
        let i = c.partition_point(|&v| v * unit <= p);
        let lo = c[i - 1];
        let hi = if lo * unit == p { lo } else { c[i] };
        let q = if lo == hi {
            lo
        } else {
            let (dl, dh) = (p - lo * unit, hi * unit - p);
            let toward_zero = if p >= 0 { lo } else { hi };
            let away = if p >= 0 { hi } else { lo };
            match quant {
                Quant::Trn => lo,
                Quant::TrnZero => toward_zero,
                _ if dl < dh => lo,
                _ if dh < dl => hi,
                Quant::Rnd => hi,
                Quant::RndMinInf => lo,
                Quant::RndZero => toward_zero,
                Quant::RndInf => away,
                Quant::RndConv => {
                    let (tl, th) = (lo.trailing_zeros(), hi.trailing_zeros());
                    if tl > th || (tl == th && lo.abs() < hi.abs()) {
                        lo
                    } else {
                        hi
                    }
                }
            }
        };
        let (first, last) = self.saturated;
        let zero = overflow == Overflow::SatZero;
        if q > self.hi_code {
            (if zero { 0 } else { last }, CLIP_ABOVE)
        } else if q < self.lo_code {
            (if zero { 0 } else { first }, CLIP_BELOW)
        } else {
            (q, CLIP_NONE)
        }
    }

    /// Test points in 2^−SUB LSB units.
    fn points(&self) -> Vec<i64> {
        let unit = 1i64 << SUB;
        let (lo, hi) = (self.lo_code - 3, self.hi_code + 3);
        let mut p: Vec<i64> = (lo * unit..=hi * unit).step_by(unit as usize / 2).collect();
        for w in self.candidates.windows(2) {
            if w[0] < lo - unit || w[1] > hi + unit {
                continue;
            }
            let mid = (w[0] + w[1]) * unit / 2;
            p.extend([mid - 1, mid, mid + 1]);
        }
        p.sort_unstable();
        p.dedup();
        p
    }
}

const OVERFLOWS: [Overflow; 3] = [Overflow::Sat, Overflow::SatSym, Overflow::SatZero];

#[track_caller]
fn check_config(width: u32, signed: bool, khot: KHot, weights: &[u32]) -> usize {
    let frac = width as i32 / 2 - 1;
    let mut checked = 0;
    for overflow in OVERFLOWS {
        // The K-hot set does not depend on the quantization mode: one reference per overflow.
        let base = Format::new(width, width as i32 - frac, signed, Quant::Trn, overflow, 0)
            .expect("valid format");
        let reference = Reference::new(&base, khot, weights);
        let points = reference.points();
        for quant in Quant::ALL {
            let format = base.with_quant(quant);
            let q = KHotQuantizer::new(format, khot).expect("supported");
            for &p in &points {
                let x = p as f64 * 2f64.powi(-(SUB as i32) - frac);
                let got = q.project_code(x);
                let want = reference.project(p, quant, overflow);
                assert_eq!(
                    got,
                    want,
                    "{format} {khot}: x = {x} ({} LSB)",
                    p as f64 / (1u64 << SUB) as f64
                );
            }
            checked += points.len();
        }
    }
    checked
}

#[test]
fn projection_equals_brute_force_for_every_small_format() {
    let mut memo = std::collections::HashMap::new();
    let limit = 1usize << 14;
    let csd_weights: Vec<u32> = (0..=limit as u64)
        .map(|n| min_signed_digits(n, &mut memo))
        .collect();
    let bin_weights: Vec<u32> = (0..=limit as u64).map(|n| n.count_ones()).collect();
    let mut total = 0;
    for width in 1..=12u32 {
        for k in 1..=width + 1 {
            for signed in [false, true] {
                total += check_config(width, signed, KHot::binary(k), &bin_weights);
                if k <= width / 2 + 2 {
                    total += check_config(width, signed, KHot::csd(k), &csd_weights);
                }
            }
        }
    }
    println!("{total} inputs checked against brute force");
    assert!(total > 1_000_000, "only {total} points checked");
}

#[test]
fn csd_weight_is_the_fewest_signed_digits() {
    let mut memo = std::collections::HashMap::new();
    for n in 0..(1u64 << 16) {
        assert_eq!(
            csd_weight(n as u128),
            min_signed_digits(n, &mut memo),
            "n = {n}"
        );
    }
    assert_eq!(csd_weight(u128::MAX), 2); // 2^128 − 1
    assert_eq!(csd_weight(0b1011), 3);
    assert_eq!(csd_weight(7), 2);
}

/// When K admits every code, the projection is the ordinary `ap_fixed` cast.
#[test]
fn unconstrained_projection_is_the_cast() {
    for width in 1..=10u32 {
        for signed in [false, true] {
            for overflow in OVERFLOWS {
                for quant in Quant::ALL {
                    let frac = width as i32 / 2;
                    let f = Format::new(width, width as i32 - frac, signed, quant, overflow, 0)
                        .unwrap();
                    for khot in [KHot::binary(width), KHot::csd(width)] {
                        let q = KHotQuantizer::new(f, khot).unwrap();
                        let span = 1i64 << (width + 1);
                        for p in -4 * span..=4 * span {
                            let x = p as f64 * 2f64.powi(-2 - frac);
                            let want = Fixed::from_f64(x, f).unwrap();
                            let got = q.project(x).unwrap();
                            assert_eq!(got, want, "{f} {khot} x = {x}");
                        }
                    }
                }
            }
        }
    }
}

#[track_caller]
fn refused(format: &str, khot: KHot, needle: &str) {
    let f: Format = format.parse().unwrap();
    let e = KHotQuantizer::new(f, khot).unwrap_err().to_string();
    assert!(
        e.contains(needle),
        "{format} {khot}: `{e}` lacks `{needle}`"
    );
}

#[test]
fn bad_configurations_are_refused() {
    refused(
        "ap_fixed<8,3,AP_RND,AP_WRAP>",
        KHot::binary(2),
        "saturating",
    );
    refused(
        "ap_fixed<8,3,AP_RND,AP_WRAP_SM>",
        KHot::csd(2),
        "saturating",
    );
    refused(
        "ap_fixed<25,3,AP_RND,AP_SAT>",
        KHot::binary(2),
        "at most 24 bits",
    );
    refused("ap_fixed<8,3,AP_RND,AP_SAT>", KHot::binary(0), "K ≥ 1");
    refused(
        "ap_fixed<8,-1200,AP_RND,AP_SAT>",
        KHot::binary(2),
        "within ±1000 bits",
    );
    let q = KHotQuantizer::new(
        "ap_fixed<8,3,AP_RND,AP_SAT>".parse().unwrap(),
        KHot::binary(1),
    )
    .unwrap();
    assert!(q.project(f64::NAN).is_err());
}

#[test]
fn slice_kernel_matches_scalar_projection() {
    let f: Format = "ap_fixed<10,3,AP_RND_CONV,AP_SAT>".parse().unwrap();
    for khot in [KHot::binary(2), KHot::csd(2), KHot::binary(1)] {
        let q = KHotQuantizer::new(f, khot).unwrap();
        let xs: Vec<f32> = (0..200_000)
            .map(|i| ((i as f32) * 0.618_034).sin() * 5.0)
            .chain([f32::NAN, f32::INFINITY, f32::NEG_INFINITY, -0.0])
            .collect();
        let (mut y, mut c) = (vec![0f32; xs.len()], vec![0i8; xs.len()]);
        let stats = q.quantize(&xs, &mut y, &mut c, 0).unwrap();
        assert_eq!(stats.nonfinite, 3);
        let mut above = 0;
        for i in 0..xs.len() {
            let (code, clip) = q.project_code(xs[i] as f64);
            assert_eq!(y[i], code as f32 / 128.0, "x = {}", xs[i]);
            assert_eq!(c[i], clip);
            assert!(khot.admits(code as i128));
            above += (clip == CLIP_ABOVE) as usize;
        }
        assert_eq!(stats.above, above);
        assert!(above > 0);
    }
    let q = KHotQuantizer::new(f, KHot::binary(2)).unwrap();
    let e = q
        .quantize(&[1.0], &mut [0.0; 2], &mut [0; 1], 1)
        .unwrap_err();
    assert!(e.to_string().contains("lengths differ"));
}

#[test]
fn wide_tables_and_table_listing() {
    // W = 24, the widest: a 2-hot projection and the codes list.
    let f: Format = "ap_fixed<24,4,AP_RND,AP_SAT>".parse().unwrap();
    let q = KHotQuantizer::new(f, KHot::csd(2)).unwrap();
    let x = 3.3f64;
    let code = q.project_code(x).0;
    assert!(KHot::csd(2).admits(code as i128));
    // The nearest 2-digit CSD code to 3.3 · 2^20: 3.3 ≈ 4 − 0.7, and 0.7 is near 2^−1 (0.5) or 1.
    assert_eq!(code as f64 / (1 << 20) as f64, 3.5);
    let small = KHotQuantizer::new(
        "ap_ufixed<4,4,AP_TRN,AP_SAT>".parse().unwrap(),
        KHot::binary(1),
    )
    .unwrap();
    assert_eq!(small.codes(), vec![0, 1, 2, 4, 8]);
    let signed = KHotQuantizer::new(
        "ap_fixed<4,4,AP_TRN,AP_SAT>".parse().unwrap(),
        KHot::binary(1),
    )
    .unwrap();
    assert_eq!(signed.codes(), vec![-8, -4, -2, -1, 0, 1, 2, 4]);
}
