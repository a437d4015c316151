//! The oracle: checks `qfx-fixed` bit for bit against the Xilinx `ap_types` headers.
//!
//! A seeded [`Suite`] of random types and aimed inputs is turned into two C++ programs (casts
//! from `double`; `+ − ×`, negation and shifts with the result type and a final cast), compiled with g++ against
//! the headers from the `hls4ml` wheel, run, and every raw bit pattern is compared with what
//! `qfx-fixed` computes. The same machinery writes the committed golden vectors, so the suite
//! is checked even where g++ or pip is missing.

pub mod cases;
pub mod cpp;
pub mod headers;
pub mod rng;

use std::fmt::Write as _;

use qfx_fixed::{Fixed, Format};

pub use cases::{generate, Op, OpTypes, Suite, SuiteSize};
pub use cpp::{run_suite, OpOutcome, Outcomes};

/// The result of comparing qfx-fixed with the headers' answers.
#[derive(Clone, Debug, Default)]
pub struct Report {
    /// Cases compared.
    pub cases: usize,
    /// Cases where any bit (or the result type) differs.
    pub mismatches: usize,
    /// The first few mismatches, described.
    pub examples: Vec<String>,
}

impl Report {
    fn record(&mut self, ok: bool, describe: impl FnOnce() -> String) {
        self.cases += 1;
        if !ok {
            self.mismatches += 1;
            if self.examples.len() < 20 {
                self.examples.push(describe());
            }
        }
    }
}

/// qfx-fixed's answer for a cast case.
pub fn expected_cast(format: &Format, x: f64) -> u128 {
    Fixed::from_f64_hls(x, *format).raw_bits()
}

/// qfx-fixed's answer for an operator case (`None` if it refuses the operation).
pub fn expected_op(t: &OpTypes, a: f64, b: f64) -> Option<OpOutcome> {
    let shift = b as i32;
    let a = Fixed::from_f64_hls(a, t.lhs);
    let b = Fixed::from_f64_hls(b, t.rhs);
    let r = t.op.apply(&a, &b, shift).ok()?;
    let f = r.format();
    Some(OpOutcome {
        width: f.width(),
        int_bits: f.int_bits(),
        signed: f.is_signed(),
        raw: r.raw_bits(),
        out_raw: r.cast(t.out).raw_bits(),
    })
}

/// Compares every case of `suite` with the headers' `outcomes`.
pub fn compare(suite: &Suite, outcomes: &Outcomes) -> Report {
    let mut report = Report::default();
    for ((k, x), want) in suite.casts.iter().zip(&outcomes.casts) {
        let format = &suite.cast_types[*k];
        let got = expected_cast(format, *x);
        report.record(got == *want, || {
            format!(
                "cast {format} <- {} ({:#x}): headers {want:#x}, qfx {got:#x}",
                qfx_fixed::hex_f64(*x),
                x.to_bits()
            )
        });
    }
    for ((k, a, b), want) in suite.ops.iter().zip(&outcomes.ops) {
        let t = &suite.op_types[*k];
        let got = expected_op(t, *a, *b);
        report.record(got == Some(*want), || {
            format!(
                "{} {} {} -> {}: a={} b={}: headers {want:?}, qfx {got:?}",
                t.op.name(),
                t.lhs,
                t.rhs,
                t.out,
                qfx_fixed::hex_f64(*a),
                qfx_fixed::hex_f64(*b)
            )
        });
    }
    report
}

/// Golden-vector text: the suite with the headers' answers, one case per line.
pub fn golden_text(suite: &Suite, outcomes: &Outcomes, seed: u64) -> String {
    let mut s = format!(
        "# qfx-fixed golden vectors: answers of the Xilinx ap_types headers (hls4ml {}), seed {seed}.\n\
         # Regenerate with `cargo run -p qfx-oracle -- golden`. Inputs are raw IEEE-754 double bits.\n\
         # cast <type> <input> <raw>\n\
         # <add|sub|mul|neg|shl|shr> <T1> <T2> <T3> <a> <b (shift amount for shl/shr)> <result W> <result I> <result signed> <raw> <raw after T3>\n",
        headers::HLS4ML_VERSION
    );
    for ((k, x), raw) in suite.casts.iter().zip(&outcomes.casts) {
        let _ = writeln!(
            s,
            "cast {} {:016x} {raw:x}",
            suite.cast_types[*k].full_spelling(),
            x.to_bits()
        );
    }
    for ((k, a, b), o) in suite.ops.iter().zip(&outcomes.ops) {
        let t = &suite.op_types[*k];
        let _ = writeln!(
            s,
            "{} {} {} {} {:016x} {:016x} {} {} {} {:x} {:x}",
            t.op.name(),
            t.lhs.full_spelling(),
            t.rhs.full_spelling(),
            t.out.full_spelling(),
            a.to_bits(),
            b.to_bits(),
            o.width,
            o.int_bits,
            o.signed as u8,
            o.raw,
            o.out_raw
        );
    }
    s
}

/// Parses golden-vector text back into a suite and the headers' answers.
pub fn parse_golden(text: &str) -> Result<(Suite, Outcomes), String> {
    let mut suite = Suite::default();
    let mut outcomes = Outcomes {
        casts: Vec::new(),
        ops: Vec::new(),
    };
    for (n, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let bad = |what: &str| format!("golden line {}: {what}: `{line}`", n + 1);
        let f: Vec<&str> = line.split_whitespace().collect();
        let ty = |s: &str| s.parse::<Format>().map_err(|e| bad(&e.to_string()));
        let hex = |s: &str| u128::from_str_radix(s, 16).map_err(|_| bad("bad hex"));
        let dbl = |s: &str| {
            u64::from_str_radix(s, 16)
                .map(f64::from_bits)
                .map_err(|_| bad("bad input bits"))
        };
        let int = |s: &str| s.parse::<i64>().map_err(|_| bad("bad integer"));
        match (f[0], f.len()) {
            ("cast", 4) => {
                suite.cast_types.push(ty(f[1])?);
                suite.casts.push((suite.cast_types.len() - 1, dbl(f[2])?));
                outcomes.casts.push(hex(f[3])?);
            }
            (op, 11) => {
                let op = Op::from_name(op).ok_or_else(|| bad("unknown operator"))?;
                suite.op_types.push(OpTypes {
                    op,
                    lhs: ty(f[1])?,
                    rhs: ty(f[2])?,
                    out: ty(f[3])?,
                });
                suite
                    .ops
                    .push((suite.op_types.len() - 1, dbl(f[4])?, dbl(f[5])?));
                outcomes.ops.push(OpOutcome {
                    width: int(f[6])? as u32,
                    int_bits: int(f[7])? as i32,
                    signed: int(f[8])? != 0,
                    raw: hex(f[9])?,
                    out_raw: hex(f[10])?,
                });
            }
            _ => return Err(bad("unrecognized line")),
        }
    }
    Ok((suite, outcomes))
}
