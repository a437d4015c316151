//! `qfx fixed cast` and `qfx fixed op`: a stable, scriptable interface to the fixed-point core.
//!
//! Output contract (other tools parse it; keep it stable): one line per input line, so output
//! line N answers input line N (an empty or blank input line gives an empty output line); a raw code
//! is lowercase hex with `0x`, exactly `W` bits (two's complement), zero-padded to `ceil(W/4)`
//! digits; a value is its exact decimal with no trailing zeros and never `-0`. The first bad
//! input line stops the run with a message naming it and exit status 1; nothing is printed for
//! that line.

use std::io::{BufRead, BufWriter, Write};

use anyhow::{bail, Context, Result};
use clap::{Subcommand, ValueEnum};
use qfx_fixed::{parse_f64, Fixed, Format};

#[derive(Subcommand)]
pub enum FixedCommand {
    /// Casts each number on stdin (one per line) into a type; prints its raw code and exact value.
    #[command(
        after_help = "One output line per input line: an empty or blank input line gives an empty output line, so the output lines up with the input.\n\nExample:\n  printf '0.046875\\n100\\n-0x1.8p-3\\n' | qfx fixed cast --type 'ap_fixed<8,3,AP_RND_CONV,AP_SAT>'\n  0x02 0.0625\n  0x7f 3.96875\n  0xfa -0.1875"
    )]
    Cast {
        /// Target type, e.g. 'ap_fixed<8,3,AP_RND_CONV,AP_SAT>', 'ap_ufixed<4,2>', 'ap_int<12>'.
        #[arg(long = "type", value_name = "TYPE", value_parser = parse_format)]
        ty: Format,
    },
    /// Reads two numbers per line, casts them to LHS and RHS, and applies OP at full precision.
    ///
    /// Prints the HLS result type, the result's raw code and exact value, and with --out the raw
    /// code and value after assigning the result to OUT.
    #[command(
        after_help = "One output line per input line: an empty or blank input line gives an empty output line, so the output lines up with the input.\n\nExample:\n  echo '1.5 -2.25' | qfx fixed op --op mul --lhs 'ap_fixed<8,3>' --rhs 'ap_fixed<8,3>' --out 'ap_fixed<6,2,AP_RND,AP_SAT>'\n  ap_fixed<16,6> 0xf280 -3.375 0x20 -2"
    )]
    Op {
        /// The operator.
        #[arg(long, value_enum)]
        op: OpKind,
        /// Type of the left operand.
        #[arg(long, value_name = "TYPE", value_parser = parse_format)]
        lhs: Format,
        /// Type of the right operand.
        #[arg(long, value_name = "TYPE", value_parser = parse_format)]
        rhs: Format,
        /// Type the result is assigned to (quantization and overflow happen here).
        #[arg(long, value_name = "TYPE", value_parser = parse_format)]
        out: Option<Format>,
    },
    /// A short tour of the number model: quantization and overflow modes, exact arithmetic,
    /// and the speed of the QAT quantization kernel on this machine.
    Tour,
}

#[derive(Clone, Copy, ValueEnum)]
pub enum OpKind {
    Add,
    Sub,
    Mul,
}

fn parse_format(text: &str) -> Result<Format, String> {
    text.parse().map_err(|e: qfx_fixed::Error| e.to_string())
}

/// `0x`-prefixed lowercase hex of the raw bits, `ceil(W/4)` digits.
pub fn hex_code(v: &Fixed) -> String {
    let digits = v.format().width().div_ceil(4) as usize;
    format!("0x{:0digits$x}", v.raw_bits())
}

pub fn run(cmd: FixedCommand) -> Result<()> {
    let stdin = std::io::stdin().lock();
    let mut out = BufWriter::new(std::io::stdout().lock());
    let result = match cmd {
        FixedCommand::Cast { ty } => process_lines(stdin, &mut out, 1, |nums| {
            let v = Fixed::from_f64(nums[0], ty)?;
            Ok(format!("{} {v}", hex_code(&v)))
        }),
        FixedCommand::Op {
            op,
            lhs,
            rhs,
            out: target,
        } => process_lines(stdin, &mut out, 2, |nums| {
            let a = Fixed::from_f64(nums[0], lhs)?;
            let b = Fixed::from_f64(nums[1], rhs)?;
            let r = match op {
                OpKind::Add => a.add(&b),
                OpKind::Sub => a.sub(&b),
                OpKind::Mul => a.mul(&b),
            }?;
            let mut line = format!("{} {} {r}", r.format(), hex_code(&r));
            if let Some(t) = target {
                let o = r.cast(t);
                line.push_str(&format!(" {} {o}", hex_code(&o)));
            }
            Ok(line)
        }),
        FixedCommand::Tour => crate::fixed_tour::run(),
    };
    // Flush what was valid before reporting the first bad line.
    out.flush()?;
    result
}

/// Applies `f` to each line holding exactly `arity` numbers, writing one output line per input
/// line (an empty one for a blank line, so the output lines up with the input); stops at the
/// first bad line.
fn process_lines(
    input: impl BufRead,
    out: &mut impl Write,
    arity: usize,
    f: impl Fn(&[f64]) -> Result<String, qfx_fixed::Error>,
) -> Result<()> {
    for (index, line) in input.lines().enumerate() {
        let n = index + 1;
        let line = line.with_context(|| format!("line {n}: cannot read input (not UTF-8?)"))?;
        if line.trim().is_empty() {
            writeln!(out)?;
            continue;
        }
        let fields: Vec<&str> = line.split_whitespace().collect();
        if fields.len() != arity {
            let want = if arity == 1 {
                "one number"
            } else {
                "two numbers"
            };
            bail!(
                "line {n}: expected {want}, found {} fields in `{}`",
                fields.len(),
                line.trim()
            );
        }
        let nums = fields
            .iter()
            .map(|t| parse_f64(t))
            .collect::<Result<Vec<_>, _>>()
            .with_context(|| format!("line {n}"))?;
        let text = f(&nums).with_context(|| format!("line {n}"))?;
        writeln!(out, "{text}")?;
    }
    Ok(())
}
