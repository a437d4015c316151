//! Test cases: random formats and inputs aimed at the places where fixed point is subtle.

use qfx_fixed::{Fixed, Format, Overflow, Quant};

use crate::rng::Rng;

/// An operator of the oracle: binary `+ − ×`, unary negation, and shifts by an `int`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Op {
    /// `a + b`
    Add,
    /// `a - b`
    Sub,
    /// `a * b`
    Mul,
    /// `-a` (`b` unused)
    Neg,
    /// `a << k` with `k = (int)b`, possibly negative
    Shl,
    /// `a >> k` with `k = (int)b`, possibly negative
    Shr,
}

impl Op {
    /// Every operator.
    pub const ALL: [Op; 6] = [Op::Add, Op::Sub, Op::Mul, Op::Neg, Op::Shl, Op::Shr];

    /// The name used in golden files and on the command line.
    pub fn name(self) -> &'static str {
        match self {
            Op::Add => "add",
            Op::Sub => "sub",
            Op::Mul => "mul",
            Op::Neg => "neg",
            Op::Shl => "shl",
            Op::Shr => "shr",
        }
    }

    /// The C++ expression computing the result from `p`, `q` (operands) and `k` (shift).
    pub fn cpp_expr(self) -> &'static str {
        match self {
            Op::Add => "p + q",
            Op::Sub => "p - q",
            Op::Mul => "p * q",
            Op::Neg => "-p",
            Op::Shl => "p << k",
            Op::Shr => "p >> k",
        }
    }

    /// True for the shifts, whose right operand is an `int` shift amount, not a value.
    pub fn is_shift(self) -> bool {
        matches!(self, Op::Shl | Op::Shr)
    }

    /// Parses [`Op::name`].
    pub fn from_name(name: &str) -> Option<Op> {
        Op::ALL.into_iter().find(|op| op.name() == name)
    }

    /// Applies the operator with qfx-fixed (`shift` is the shift amount of `Shl`/`Shr`).
    pub fn apply(self, a: &Fixed, b: &Fixed, shift: i32) -> Result<Fixed, qfx_fixed::Error> {
        match self {
            Op::Add => a.add(b),
            Op::Sub => a.sub(b),
            Op::Mul => a.mul(b),
            Op::Neg => a.neg(),
            Op::Shl => Ok(a.shl(shift)),
            Op::Shr => Ok(a.shr(shift)),
        }
    }
}

/// Operand types of one operator case: `T1 a = x; T2 b = y; auto r = a OP b; T3 o = r;`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct OpTypes {
    /// The operator.
    pub op: Op,
    /// Type of the left operand.
    pub lhs: Format,
    /// Type of the right operand.
    pub rhs: Format,
    /// Type the full-precision result is assigned to.
    pub out: Format,
}

/// A set of cases: types (each becomes one C++ instantiation) and inputs that refer to them.
#[derive(Clone, Debug, Default)]
pub struct Suite {
    /// Target types of the casts from `double`.
    pub cast_types: Vec<Format>,
    /// `(index into cast_types, input)`.
    pub casts: Vec<(usize, f64)>,
    /// Operator cases.
    pub op_types: Vec<OpTypes>,
    /// `(index into op_types, a, b)`.
    pub ops: Vec<(usize, f64, f64)>,
}

impl Suite {
    /// Number of cases: one per cast, one per operator input pair.
    pub fn len(&self) -> usize {
        self.casts.len() + self.ops.len()
    }

    /// True when there are no cases.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// How many of each kind of case to generate.
#[derive(Clone, Copy, Debug)]
pub struct SuiteSize {
    /// Distinct cast target types.
    pub cast_types: usize,
    /// Inputs per cast type.
    pub inputs_per_cast_type: usize,
    /// Distinct operator cases (operator and three types).
    pub op_types: usize,
    /// Input pairs per operator case.
    pub inputs_per_op_type: usize,
}

impl SuiteSize {
    /// What CI runs: 256 × 400 casts + 72 × 200 operations = 116,800 cases.
    pub const CI: SuiteSize = SuiteSize {
        cast_types: 256,
        inputs_per_cast_type: 400,
        op_types: 72,
        inputs_per_op_type: 200,
    };
    /// The committed golden vectors.
    pub const GOLDEN: SuiteSize = SuiteSize {
        cast_types: 140,
        inputs_per_cast_type: 40,
        op_types: 45,
        inputs_per_op_type: 40,
    };
}

/// Generates a suite. Type `t` of the casts cycles through every quantization mode, overflow
/// mode, signedness and saturation-bit count, so even small suites cover every combination.
pub fn generate(seed: u64, size: SuiteSize) -> Suite {
    let mut rng = Rng::new(seed);
    let mut suite = Suite::default();
    for t in 0..size.cast_types {
        let q = Quant::ALL[t % 7];
        let o = Overflow::ALL[(t / 7) % 5];
        let signed = (t / 35) % 2 == 0;
        let n = ((t / 70) % 3) as u32;
        let format = random_format(&mut rng, 64, signed, q, o, n);
        let index = suite.cast_types.len();
        suite.cast_types.push(format);
        for _ in 0..size.inputs_per_cast_type {
            let x = aimed_input(&mut rng, &format);
            suite.casts.push((index, x));
        }
    }
    while suite.op_types.len() < size.op_types {
        // Half the cases are + − ×, the other half negation and shifts.
        let k = suite.op_types.len();
        let op = if k % 2 == 0 {
            Op::ALL[(k / 2) % 3]
        } else {
            Op::ALL[3 + (k / 2) % 3]
        };
        let any = |rng: &mut Rng| {
            let (q, o) = (rng.pick(&Quant::ALL), rng.pick(&Overflow::ALL));
            let n = rng.range(0, 2) as u32;
            let signed = rng.chance(0.6);
            random_format(rng, 64, signed, q, o, n)
        };
        let types = OpTypes {
            op,
            lhs: any(&mut rng),
            rhs: any(&mut rng),
            out: any(&mut rng),
        };
        // Only pairs whose HLS result type qfx-fixed can hold (at most 128 bits).
        let zero = |f: Format| Fixed::zero(f);
        if op.apply(&zero(types.lhs), &zero(types.rhs), 0).is_err() {
            continue;
        }
        let index = suite.op_types.len();
        suite.op_types.push(types);
        for _ in 0..size.inputs_per_op_type {
            let a = operand(&mut rng, &types.lhs);
            let b = if op.is_shift() {
                // Shift amounts around the width, both directions.
                let w = types.lhs.width() as i64;
                rng.range(-w - 2, w + 2) as f64
            } else {
                operand(&mut rng, &types.rhs)
            };
            suite.ops.push((index, a, b));
        }
    }
    suite
}

/// A format with the given modes, a width in 1..=max_width (small widths more often) and
/// I in −4..=W+4.
fn random_format(
    rng: &mut Rng,
    max_width: u32,
    signed: bool,
    q: Quant,
    o: Overflow,
    n: u32,
) -> Format {
    // The headers refuse unsigned AP_WRAP_SM; so does qfx-fixed.
    let signed = signed || o == Overflow::WrapSm;
    let w = match rng.range(0, 9) {
        0..=3 => rng.range(1, 8),
        4..=6 => rng.range(9, 24),
        _ => rng.range(25, max_width as i64),
    } as u32;
    let i = rng.range(-4, w as i64 + 4) as i32;
    Format::new(w, i, signed, q, o, n.min(w)).expect("generated formats are valid")
}

/// `2^e` for any `e`, saturating to 0 or Inf outside the f64 range.
fn pow2(e: i64) -> f64 {
    2f64.powi(e.clamp(-1100, 1100) as i32)
}

/// An input aimed at one of the subtle spots of `f`: grid points and their neighbours, ties,
/// the overflow thresholds, zero, huge and tiny magnitudes, non-finite values.
fn aimed_input(rng: &mut Rng, f: &Format) -> f64 {
    let lsb = pow2(-f.frac_bits());
    let (min, max) = (f.min_code() as f64, f.max_code() as f64);
    let code = |rng: &mut Rng| {
        rng.range(
            f.min_code().max(-(1 << 62)) as i64 - 4,
            f.max_code().min(1 << 62) as i64 + 4,
        ) as f64
    };
    let x = match rng.range(0, 19) {
        0 | 1 => code(rng) * lsb,
        2 => (code(rng) * lsb).next_up(),
        3 => (code(rng) * lsb).next_down(),
        4 | 5 => (code(rng) + 0.5) * lsb, // ties
        6 => ((code(rng) + 0.5) * lsb).next_up(),
        7 => ((code(rng) + 0.5) * lsb).next_down(),
        8 => {
            rng.pick(&[
                max,
                max + 0.5,
                max + 1.0,
                min,
                min - 0.5,
                min - 1.0,
                max - 0.5,
                min + 0.5,
            ]) * lsb
        }
        9 => {
            let t = rng.pick(&[max, max + 0.5, max + 1.0, min, min - 0.5, min - 1.0]) * lsb;
            if rng.chance(0.5) {
                t.next_up()
            } else {
                t.next_down()
            }
        }
        10 => pow2(f.int_bits() as i64 + rng.range(-2, 3)) * rng.pick(&[1.0, -1.0]),
        11 => pow2(rng.range(60, 1023)) * (1.0 + rng.range(0, 1 << 20) as f64 / (1 << 20) as f64),
        12 => rng.pick(&[
            f64::MAX,
            -f64::MAX,
            f64::INFINITY,
            f64::NEG_INFINITY,
            0.0,
            -0.0,
        ]),
        13 => pow2(-rng.range(0, 1074)) * rng.pick(&[1.0, -1.0, 1.5, -1.75]),
        14 => f64::from_bits(rng.range(1, (1 << 52) - 1) as u64) * rng.pick(&[1.0, -1.0]), // subnormal
        15 => lsb * pow2(-rng.range(1, 60)) * rng.pick(&[1.0, -1.0, 3.0, -3.0]),
        16 if rng.chance(0.2) => f64::from_bits(0x7ff0_0000_0000_0000 | rng.next_u64()), // NaN / Inf
        _ => {
            // A random double of a magnitude around the format's range.
            let e = rng.range(-f.frac_bits() - 8, f.int_bits() as i64 + 8);
            let m = 1.0 + (rng.next_u64() >> 12) as f64 / (1u64 << 52) as f64;
            m * pow2(e) * rng.pick(&[1.0, -1.0])
        }
    };
    if rng.chance(0.5) {
        x
    } else {
        -x
    }
}

/// An operand for an operator case: mostly values on or near the operand's grid, some edges.
fn operand(rng: &mut Rng, f: &Format) -> f64 {
    let lsb = pow2(-f.frac_bits());
    match rng.range(0, 9) {
        0 => f.max_code() as f64 * lsb,
        1 => f.min_code() as f64 * lsb,
        2 | 3 => aimed_input(rng, f),
        _ => {
            let hi = f.max_code().min(1 << 53) as i64;
            let lo = f.min_code().max(-(1 << 53)) as i64;
            rng.range(lo, hi) as f64 * lsb
        }
    }
}
