//! `qfx fixed tour`: a short tour of the fixed-point core — the number model, the quantization
//! and overflow modes, exact arithmetic, and the speed of the QAT slice kernel.

use std::time::Instant;

use anyhow::Result;
use qfx_fixed::{Fixed, Format, Overflow, Quant, SliceQuantizer};

fn ty(s: &str) -> Result<Format> {
    Ok(s.parse()?)
}

pub fn run() -> Result<()> {
    let t = ty("ap_fixed<8,3,AP_RND_CONV,AP_SAT>")?;
    let min = Fixed::from_code(t.min_code(), t)?;
    let max = Fixed::from_code(t.max_code(), t)?;
    let lsb = Fixed::from_code(1, t)?;
    outln!("== The number model");
    outln!(
        "{t}: W={} bits, I={} integer bits, F={} fractional bits",
        t.width(),
        t.int_bits(),
        t.frac_bits()
    );
    outln!(
        "  range [{min}, {max}], LSB {lsb}; a value is an 8-bit code times 2^-{}",
        t.frac_bits()
    );

    outln!("\n== Quantization modes on ties (x = ±2.5 and ±1.5 LSB, into ap_fixed<8,8>)");
    outln!(
        "{:<16}{:>8}{:>8}{:>8}{:>8}",
        "mode",
        "2.5",
        "-2.5",
        "1.5",
        "-1.5"
    );
    for q in Quant::ALL {
        let f = Format::signed(8, 8)?.with_quant(q);
        let row: Vec<String> = [2.5, -2.5, 1.5, -1.5]
            .iter()
            .map(|&x| Fixed::from_f64(x, f).map(|v| format!("{v:>8}")))
            .collect::<Result<_, _>>()?;
        outln!("{:<16}{}", q.cpp_name(), row.concat());
    }

    outln!("\n== Overflow modes: 2.5 into ap_fixed<6,2> (range [-2, 1.9375])");
    for (o, n) in [
        (Overflow::Wrap, 0),
        (Overflow::Wrap, 1),
        (Overflow::WrapSm, 0),
        (Overflow::Sat, 0),
        (Overflow::SatZero, 0),
        (Overflow::SatSym, 0),
    ] {
        let f = Format::signed(6, 2)?.with_overflow(o, n)?;
        let v = Fixed::from_f64(2.5, f)?;
        outln!(
            "  {:<32} -> {:>8}  (code 0x{:02x})",
            f.to_string(),
            v.to_string(),
            v.raw_bits()
        );
    }

    outln!("\n== Arithmetic is exact; rounding happens on assignment");
    let a = Fixed::from_f64(1.375, ty("ap_fixed<8,3>")?)?;
    let b = Fixed::from_f64(-0.8125, ty("ap_fixed<8,1>")?)?;
    let p = a.mul(&b)?;
    let s = a.add(&b)?;
    outln!("  {a} * {b} = {p} : {}", p.format());
    outln!("  {a} + {b} = {s} : {}", s.format());
    let acc_t = ty("ap_fixed<6,2,AP_TRN,AP_SAT>")?;
    let terms = [1.5, 1.0, -1.25];
    let sum_in = |order: &[f64]| -> Result<Fixed> {
        let mut acc = Fixed::zero(acc_t);
        for &x in order {
            acc = acc.add(&Fixed::from_f64(x, acc_t)?)?.cast(acc_t);
        }
        Ok(acc)
    };
    outln!(
        "  saturating accumulator {acc_t}: 1.5 + 1.0 - 1.25 = {}, but -1.25 + 1.5 + 1.0 = {} (order matters)",
        sum_in(&terms)?,
        sum_in(&[terms[2], terms[0], terms[1]])?
    );

    outln!("\n== Slice kernel (the QAT hot path), 4M values, this machine, one thread");
    let n = 1 << 22;
    let xs: Vec<f32> = (0..n)
        .map(|i| ((i as f32) * 0.618_034).sin() * 6.0)
        .collect();
    let mut ys = vec![0f32; n];
    let mut clip = vec![0i8; n];
    let q = SliceQuantizer::new(t);
    // Warm up, then take the best of 5: a single timing on a busy machine says little.
    q.quantize(&xs, &mut ys, &mut clip, 1)?;
    let mut best = f64::INFINITY;
    let mut stats = Default::default();
    for _ in 0..5 {
        let start = Instant::now();
        stats = q.quantize(&xs, &mut ys, &mut clip, 1)?;
        best = best.min(start.elapsed().as_secs_f64());
    }
    outln!(
        "  {t}: {:.0} M values/s (best of 5); {} clipped above, {} below",
        n as f64 / best / 1e6,
        stats.above,
        stats.below
    );
    outln!("  (benchmarks with ratios against memcpy and PyTorch: see README, `bench/`)");
    Ok(())
}
