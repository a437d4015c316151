//! Every assignment the back end builds, simulated in Verilator against `Fixed::cast` (the
//! header-exact rule) on every code of the source format: all 7 quantization modes, all 5
//! overflow modes with `N` = 0, 1, 2 and `N = W`, signed and unsigned, shifts left and right
//! (also past the whole word), narrowing and widening, both constructions (by value and bit for
//! bit).

mod common;

use qfx_fixed::{Fixed, Format, Overflow, Quant};
use qfx_rtl::testing::cast_bank;
use qfx_rtl::{CastLogic, Simulation};
use qfx_testkit::Rng;

/// A random format of width `1..=max_w` with the given modes, or `None` if it cannot exist.
fn format(rng: &mut Rng, max_w: u32, q: Quant, o: Overflow, n: u32) -> Option<Format> {
    let w = rng.range(1, max_w as i64) as u32;
    let signed = o == Overflow::WrapSm || rng.coin(60);
    let int_bits = rng.range(-3, w as i64 + 4) as i32;
    Format::new(w, int_bits, signed, q, o, n.min(w)).ok()
}

/// Pairs covering every target mode several times, sources of every kind.
fn pairs(seed: u64) -> Vec<(Format, Format)> {
    let mut rng = Rng::seeded(seed);
    let mut out = Vec::new();
    for q in Quant::ALL {
        for o in Overflow::ALL {
            for n in [0, 1, 2, 9] {
                if n > 0 && !matches!(o, Overflow::Wrap | Overflow::WrapSm) {
                    continue;
                }
                let mut made = 0;
                while made < 3 {
                    let Some(to) = format(&mut rng, 7, q, o, n) else {
                        continue;
                    };
                    let src_q = rng.pick(&Quant::ALL);
                    let Some(from) = format(&mut rng, 9, src_q, Overflow::Wrap, 0) else {
                        continue;
                    };
                    out.push((from, to));
                    made += 1;
                }
            }
        }
    }
    out
}

#[test]
fn every_cast_matches_fixed_cast_on_every_code() {
    let pairs = pairs(17);
    let logics = [CastLogic::Auto, CastLogic::BitLevel];
    let (verilog, in_off, out_off) = cast_bank(&pairs, &logics);
    let dir = common::work_dir("cast-bank");
    std::fs::create_dir_all(&dir).unwrap();
    let src = dir.join("cast_bank.v");
    std::fs::write(&src, &verilog).unwrap();
    common::or_skip("Yosys parse", qfx_rtl::yosys_reads(&src));
    let Some(sim) = common::or_skip("cast check", Simulation::build(&dir.join("sim"), &[src]))
    else {
        return;
    };
    // Sample k feeds code (k mod 2^W) of every source: every code of a 9-bit source in 512.
    let samples = 512usize;
    let in_bits: u64 = pairs.iter().map(|(f, _)| f.width() as u64).sum();
    let mut beats = Vec::with_capacity(samples);
    let mut want = Vec::with_capacity(samples);
    for k in 0..samples {
        let mut words = vec![0u32; in_bits.div_ceil(32) as usize];
        let mut expected = Vec::new();
        for (i, &(from, to)) in pairs.iter().enumerate() {
            let raw = (k as u128) % (1u128 << from.width());
            for b in 0..from.width() as u64 {
                if (raw >> b) & 1 == 1 {
                    let pos = in_off[i] + b;
                    words[(pos / 32) as usize] |= 1 << (pos % 32);
                }
            }
            let x = Fixed::from_raw_bits(raw, from);
            expected.push((x, x.cast(to).raw_bits()));
        }
        beats.push(Some(words));
        want.push(expected);
    }
    let out = sim.run(&beats, samples, 4).expect("simulation runs");
    let mut checked = 0u64;
    let mut mismatches = 0u64;
    let mut bad = Vec::new();
    for (k, (_, words)) in out.outputs.iter().enumerate() {
        for (l, logic) in logics.iter().enumerate() {
            for (i, &(from, to)) in pairs.iter().enumerate() {
                let slot = l * pairs.len() + i;
                let mut got = 0u128;
                for b in 0..to.width() as u64 {
                    let pos = out_off[slot] + b;
                    if (words[(pos / 32) as usize] >> (pos % 32)) & 1 == 1 {
                        got |= 1 << b;
                    }
                }
                let (x, expected) = want[k][i];
                checked += 1;
                mismatches += (got != expected) as u64;
                if got != expected && bad.len() < 12 {
                    bad.push(format!(
                        "{logic:?}: {from} code {:?} -> {to}: RTL bits {got:#x}, Fixed::cast {expected:#x}",
                        x.code()
                    ));
                }
            }
        }
    }
    println!(
        "{} casts ({} modes), {checked} assignments compared, {mismatches} mismatches",
        pairs.len() * logics.len(),
        Quant::ALL.len() * Overflow::ALL.len(),
    );
    assert!(bad.is_empty(), "mismatches:\n{}", bad.join("\n"));
    assert!(checked >= 100_000);
}
