//! The C++ side: programs that instantiate every type of a suite, read inputs as raw `double`
//! bits on stdin and print raw fixed-point bits, compiled with g++ against the real headers.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use qfx_cpp::{Build, Compiler, Program};
use qfx_fixed::Format;

use crate::cases::Suite;

/// What the headers computed for one operator case.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct OpOutcome {
    /// `W` of `decltype(a OP b)`.
    pub width: u32,
    /// `I` of `decltype(a OP b)`.
    pub int_bits: i32,
    /// Signedness of `decltype(a OP b)`.
    pub signed: bool,
    /// Raw bits of `a OP b`.
    pub raw: u128,
    /// Raw bits of the result assigned to the output type.
    pub out_raw: u128,
}

/// The headers' answers for a whole suite, in the suite's order.
#[derive(Clone, Debug)]
pub struct Outcomes {
    /// Raw bits of each cast.
    pub casts: Vec<u128>,
    /// Each operator case.
    pub ops: Vec<OpOutcome>,
}

const PRELUDE: &str = r#"#include <ap_fixed.h>
#include <cstdio>
#include <cstring>

// Raw bits, most significant 32-bit chunk first, each as 8 hex digits.
template <int W, int I, bool S, ap_q_mode Q, ap_o_mode O, int N>
static void put(const ap_fixed_base<W, I, S, Q, O, N>& v) {
  ap_uint<W> u = v.range(W - 1, 0);
  for (int lo = ((W - 1) / 32) * 32; lo >= 0; lo -= 32) {
    int hi = lo + 31 < W - 1 ? lo + 31 : W - 1;
    printf("%08llx", (unsigned long long)u.range(hi, lo).to_uint64());
  }
}

// The result type's template arguments, then its raw bits.
template <int W, int I, bool S, ap_q_mode Q, ap_o_mode O, int N>
static void put_typed(const ap_fixed_base<W, I, S, Q, O, N>& v) {
  printf("%d %d %d ", W, I, (int)S);
  put(v);
}

static double from_bits(unsigned long long b) {
  double d;
  memcpy(&d, &b, sizeof d);
  return d;
}
"#;

fn cast_program(types: &[Format]) -> String {
    let mut s = String::from(PRELUDE);
    s.push_str(
        "int main() {\n  setvbuf(stdout, NULL, _IOLBF, 0);\n  int k;\n  unsigned long long a;\n",
    );
    s.push_str("  while (scanf(\"%d %llx\", &k, &a) == 2) {\n    double x = from_bits(a);\n    switch (k) {\n");
    for (k, f) in types.iter().enumerate() {
        let _ = writeln!(
            s,
            "      case {k}: {{ {} v = x; put(v); break; }}",
            f.full_spelling()
        );
    }
    s.push_str("      default: return 2;\n    }\n    putchar('\\n');\n  }\n  return 0;\n}\n");
    s
}

fn op_program(suite: &Suite) -> String {
    let mut s = String::from(PRELUDE);
    s.push_str(
        "int main() {\n  setvbuf(stdout, NULL, _IOLBF, 0);\n  int k;\n  unsigned long long a, b;\n",
    );
    s.push_str("  while (scanf(\"%d %llx %llx\", &k, &a, &b) == 3) {\n    double x = from_bits(a), y = from_bits(b);\n    switch (k) {\n");
    for (k, t) in suite.op_types.iter().enumerate() {
        let _ = writeln!(
            s,
            "      case {k}: {{ {} p = x; {} q = y; int k = (int)y; (void)q; (void)k; auto r = {}; {} o = r; put_typed(r); putchar(' '); put(o); break; }}",
            t.lhs.full_spelling(),
            t.rhs.full_spelling(),
            t.op.cpp_expr(),
            t.out.full_spelling()
        );
    }
    s.push_str("      default: return 2;\n    }\n    putchar('\\n');\n  }\n  return 0;\n}\n");
    s
}

/// Runs `program` on `input` and returns its standard output (its standard error holds the
/// headers' warnings about NaN inputs, which are expected).
fn run_program(program: &Program, input: &str) -> Result<String, String> {
    let out = program
        .run(&[], Some(input.as_bytes()))
        .map_err(|e| e.to_string())?;
    String::from_utf8(out.stdout).map_err(|e| e.to_string())
}

fn parse_raw(text: &str) -> Result<u128, String> {
    u128::from_str_radix(text, 16)
        .map_err(|_| format!("bad raw bits `{text}` from the C++ program"))
}

/// Parses one line of the operator program's output.
fn parse_op_line(line: &str) -> Result<OpOutcome, String> {
    let f: Vec<&str> = line.split_whitespace().collect();
    if f.len() != 5 {
        return Err(format!("bad line from the C++ program: `{line}`"));
    }
    let num = |s: &str| {
        s.parse::<i64>()
            .map_err(|_| format!("bad number `{s}` in `{line}`"))
    };
    Ok(OpOutcome {
        width: num(f[0])? as u32,
        int_bits: num(f[1])? as i32,
        signed: num(f[2])? != 0,
        raw: parse_raw(f[3])?,
        out_raw: parse_raw(f[4])?,
    })
}

/// Compiles the suite's two programs (in parallel) with `compiler` in `work` and runs them on
/// its inputs.
pub fn run_suite(
    compiler: &Compiler,
    headers: &Path,
    work: &Path,
    suite: &Suite,
) -> Result<Outcomes, String> {
    std::fs::create_dir_all(work).map_err(|e| format!("cannot create {}: {e}", work.display()))?;
    let source = |name: &str| -> PathBuf { work.join(format!("{name}.cpp")) };
    let (cast_src, op_src) = (source("oracle_casts"), source("oracle_ops"));
    std::fs::write(&cast_src, cast_program(&suite.cast_types)).map_err(|e| e.to_string())?;
    std::fs::write(&op_src, op_program(suite)).map_err(|e| e.to_string())?;
    // -O0: the programs are huge switch statements run once; optimizing them costs more than
    // it saves. -w: the headers warn about narrowing on purpose.
    let build = |src: &Path| {
        Build::new(src, work)
            .flag("-std=c++17")
            .flag("-O0")
            .flag("-w")
            .against_headers(headers)
    };
    let cast_job = build(&cast_src)
        .start(compiler)
        .map_err(|e| e.to_string())?;
    let op_job = match build(&op_src).start(compiler) {
        Ok(job) => job,
        Err(e) => {
            cast_job.cancel();
            return Err(e.to_string());
        }
    };
    let cast_bin = cast_job.finish();
    let op_bin = op_job.finish();
    let (cast_bin, op_bin) = (
        cast_bin.map_err(|e| e.to_string())?,
        op_bin.map_err(|e| e.to_string())?,
    );

    let mut input = String::new();
    for (k, x) in &suite.casts {
        let _ = writeln!(input, "{k} {:x}", x.to_bits());
    }
    let casts = run_program(&cast_bin, &input)?
        .lines()
        .map(parse_raw)
        .collect::<Result<Vec<_>, _>>()?;
    input.clear();
    for (k, a, b) in &suite.ops {
        let _ = writeln!(input, "{k} {:x} {:x}", a.to_bits(), b.to_bits());
    }
    let ops = run_program(&op_bin, &input)?
        .lines()
        .map(parse_op_line)
        .collect::<Result<Vec<_>, _>>()?;
    if casts.len() != suite.casts.len() || ops.len() != suite.ops.len() {
        return Err(format!(
            "the C++ programs answered {} casts and {} operations for {} and {}",
            casts.len(),
            ops.len(),
            suite.casts.len(),
            suite.ops.len()
        ));
    }
    Ok(Outcomes { casts, ops })
}
