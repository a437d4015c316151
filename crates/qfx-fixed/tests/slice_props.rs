//! Property tests: the vectorized, multi-threaded slice kernels against the scalar core
//! (itself checked bit for bit against the Xilinx headers by qfx-oracle), and the clip markers
//! against a slow, obviously correct rounding reference.

use proptest::prelude::*;
use qfx_fixed::{
    codes_to_f32, Fixed, Format, Overflow, Quant, SliceQuantizer, CLIP_ABOVE, CLIP_BELOW, CLIP_NONE,
};

fn format_strategy() -> impl Strategy<Value = Format> {
    (
        prop_oneof![4 => 1u32..=24, 2 => 25u32..=50, 1 => 51u32..=64],
        -8i32..=8,
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

/// Inputs on and around the format's grid, ties, the range ends, and arbitrary bit patterns
/// (NaN, ±Inf, subnormals, huge).
fn inputs_for(format: Format) -> impl Strategy<Value = Vec<f32>> {
    let lsb = 2f64.powi(-format.frac_bits() as i32);
    let hi = format.max_code().min(1 << 60) as f64;
    let lo = format.min_code().max(-(1 << 60)) as f64;
    let element = prop_oneof![
        3 => (lo - 3.0..hi + 3.0).prop_map(move |c| (c.round() * lsb) as f32),
        2 => (lo - 3.0..hi + 3.0).prop_map(move |c| ((c.round() + 0.5) * lsb) as f32),
        3 => (lo * 1.5 - 2.0..hi * 1.5 + 2.0).prop_map(move |c| (c * lsb) as f32),
        1 => any::<u32>().prop_map(f32::from_bits),
        1 => prop::sample::select(vec![0.0f32, -0.0, f32::MAX, f32::MIN, f32::MIN_POSITIVE, 1e-45, -1e-45]),
    ];
    prop::collection::vec(element, 0..3000)
}

/// Nearest integer to `v` with each mode's tie rule, by plain branching (valid for |v| < 2^52).
fn reference_round(v: f64, q: Quant) -> f64 {
    let fl = v.floor();
    let frac = v - fl;
    let tie = frac == 0.5;
    let nearest = if frac > 0.5 { fl + 1.0 } else { fl };
    match q {
        Quant::Trn => fl,
        Quant::TrnZero => v.trunc(),
        Quant::Rnd if tie => fl + 1.0,
        Quant::RndZero if tie => {
            if v < 0.0 {
                fl + 1.0
            } else {
                fl
            }
        }
        Quant::RndMinInf if tie => fl,
        Quant::RndInf if tie => {
            if v < 0.0 {
                fl
            } else {
                fl + 1.0
            }
        }
        Quant::RndConv if tie => {
            if fl % 2.0 == 0.0 {
                fl
            } else {
                fl + 1.0
            }
        }
        _ => nearest,
    }
}

fn reference_clip(x: f32, f: &Format) -> i8 {
    let hi = f.max_code();
    let lo = if f.overflow() == Overflow::SatSym && f.is_signed() {
        f.min_code() | 1
    } else {
        f.min_code()
    };
    let v = x as f64 * 2f64.powi(f.frac_bits() as i32);
    // From 2^52 on, every f64 is an integer: nothing to round.
    let q = if v.abs() < 2f64.powi(52) {
        reference_round(v, f.quant())
    } else {
        v
    };
    if !x.is_finite() || q.abs() >= 2f64.powi(126) {
        return if x.is_sign_negative() {
            CLIP_BELOW
        } else {
            CLIP_ABOVE
        };
    }
    let q = q as i128;
    if q > hi {
        CLIP_ABOVE
    } else if q < lo {
        CLIP_BELOW
    } else {
        CLIP_NONE
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 400, ..ProptestConfig::default() })]

    #[test]
    fn kernel_equals_scalar_core((format, xs) in format_strategy().prop_flat_map(|f| (Just(f), inputs_for(f))), threads in 1usize..=3) {
        let quantizer = SliceQuantizer::new(format);
        let mut out = vec![0f32; xs.len()];
        let mut clip = vec![0i8; xs.len()];
        let stats = quantizer.quantize(&xs, &mut out, &mut clip, threads).unwrap();
        for (i, &x) in xs.iter().enumerate() {
            let want = Fixed::from_f32_hls(x, format).to_f32();
            prop_assert_eq!(out[i].to_bits(), want.to_bits(), "{} <- {:e} ({:#x}): kernel {}, core {}", format, x, x.to_bits(), out[i], want);
            prop_assert_eq!(clip[i], reference_clip(x, &format), "{} <- {:e}: clip", format, x);
        }
        prop_assert_eq!(stats.above, clip.iter().filter(|&&c| c == CLIP_ABOVE).count());
        prop_assert_eq!(stats.below, clip.iter().filter(|&&c| c == CLIP_BELOW).count());
        prop_assert_eq!(stats.nonfinite, xs.iter().filter(|x| !x.is_finite()).count());

        if format.width() <= 31 {
            let mut codes = vec![0i32; xs.len()];
            quantizer.quantize_codes(&xs, &mut codes, &mut clip, threads).unwrap();
            let mut back = vec![0f32; xs.len()];
            codes_to_f32(&codes, &format, &mut back).unwrap();
            for (i, &x) in xs.iter().enumerate() {
                let want = Fixed::from_f32_hls(x, format);
                prop_assert_eq!(codes[i] as i128, want.code().unwrap(), "{} <- {:e}: code", format, x);
                prop_assert_eq!(back[i].to_bits(), out[i].to_bits());
            }
        }
    }
}

/// Slices long enough to be split across threads give the same bits as one thread.
#[test]
fn threads_do_not_change_results() {
    let format: Format = "ap_fixed<8,3,AP_RND_CONV,AP_SAT>".parse().unwrap();
    let quantizer = SliceQuantizer::new(format);
    let xs: Vec<f32> = (0..300_001)
        .map(|i| ((i as f32) * 0.618_034).sin() * 5.0)
        .collect();
    let run = |threads| {
        let mut out = vec![0f32; xs.len()];
        let mut clip = vec![0i8; xs.len()];
        let stats = quantizer
            .quantize(&xs, &mut out, &mut clip, threads)
            .unwrap();
        (
            out.iter().map(|v| v.to_bits()).collect::<Vec<_>>(),
            clip,
            stats,
        )
    };
    let one = run(1);
    assert!(one.2.above > 0 && one.2.below > 0);
    assert_eq!(run(2), one);
    assert_eq!(run(0), one);
}

#[test]
fn length_mismatch_and_wide_codes_are_errors() {
    let q = SliceQuantizer::new("ap_fixed<8,3>".parse().unwrap());
    let mut out = [0f32; 2];
    let mut clip = [0i8; 3];
    assert!(q.quantize(&[1.0; 3], &mut out, &mut clip, 1).is_err());
    let wide = SliceQuantizer::new("ap_fixed<40,3>".parse().unwrap());
    let mut codes = [0i32; 3];
    assert!(wide
        .quantize_codes(&[1.0; 3], &mut codes, &mut clip, 1)
        .is_err());
}
