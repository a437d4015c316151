//! Helpers shared by qfx's tests, benchmarks and examples (a dev-dependency only): seeded
//! generators, format shorthands and IR builders, so each test says what it checks instead of
//! how to build a layer.
//!
//! ```
//! use qfx_testkit::{fmt, layer, model, Rng};
//! use qfx_ir::{Op, INPUT};
//! let m = model("tiny", &[4], vec![layer("q", &[INPUT], Op::Quantize, "ap_fixed<8,3>")]);
//! assert!(m.validate().is_ok());
//! let mut rng = Rng::seeded(7);
//! let code = rng.code(fmt("ap_fixed<4,2>"));
//! assert!((-8..=7).contains(&code));
//! ```

use qfx_fixed::Format;
use qfx_ir::{AccumulationOrder, Codes, Layer, Model, Op, INPUT, IR_VERSION};

/// A small deterministic generator for test data. Two streams exist because tests written
/// against each keep their exact data: xorshift64* ([`Rng::star`], [`Rng::seeded`]) and plain
/// xorshift64 with shifts 13/7/17 ([`Rng::xorshift`]).
#[derive(Clone, Debug)]
pub struct Rng {
    state: u64,
    star: bool,
}

impl Rng {
    /// xorshift64* from the raw (non-zero) state `state`.
    pub fn star(state: u64) -> Rng {
        Rng { state, star: true }
    }

    /// xorshift64* from any seed (mixed, so small seeds give unrelated streams).
    pub fn seeded(seed: u64) -> Rng {
        Rng::star(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }

    /// Plain xorshift64 (13, 7, 17) from the raw (non-zero) state `state`.
    pub fn xorshift(state: u64) -> Rng {
        Rng { state, star: false }
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        let s = &mut self.state;
        if self.star {
            *s ^= *s >> 12;
            *s ^= *s << 25;
            *s ^= *s >> 27;
            s.wrapping_mul(0x2545_F491_4F6C_DD1D)
        } else {
            *s ^= *s << 13;
            *s ^= *s >> 7;
            *s ^= *s << 17;
            *s
        }
    }

    /// Uniform in `0..n`.
    pub fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n
    }

    /// Uniform in `lo..=hi`.
    pub fn range(&mut self, lo: i64, hi: i64) -> i64 {
        lo + (self.next_u64() % ((hi - lo + 1) as u64)) as i64
    }

    /// True with probability `p_percent` %.
    pub fn coin(&mut self, p_percent: u64) -> bool {
        self.next_u64() % 100 < p_percent
    }

    /// One of `items`.
    pub fn pick<T: Copy>(&mut self, items: &[T]) -> T {
        items[self.next_u64() as usize % items.len()]
    }

    /// Uniform in `[0, 1)` with 53 random bits.
    pub fn uniform(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }

    /// Uniform in `[−scale, scale)` with 24 random bits.
    pub fn f32(&mut self, scale: f32) -> f32 {
        (self.next_u64() >> 40) as f32 / (1u64 << 24) as f32 * 2.0 * scale - scale
    }

    /// A code of `f`, biased toward the ends of its range (where overflow is decided).
    pub fn code(&mut self, f: Format) -> i64 {
        let (lo, hi) = (f.min_code() as i64, f.max_code() as i64);
        match self.range(0, 5) {
            0 => lo,
            1 => hi,
            2 => self.range(lo, (lo + 2).min(hi)),
            3 => self.range((hi - 2).max(lo), hi),
            _ => self.range(lo, hi),
        }
    }

    /// A code of `f`, uniform over its range.
    pub fn uniform_code(&mut self, f: Format) -> i64 {
        let span = (f.max_code() - f.min_code() + 1) as u64;
        f.min_code() as i64 + (self.next_u64() % span) as i64
    }
}

/// A format from its C++ spelling; panics with the spelling and the reason on a typo.
#[track_caller]
pub fn fmt(s: &str) -> Format {
    s.parse().unwrap_or_else(|e| panic!("{s}: {e}"))
}

/// A layer reading `inputs` (layer names or `qfx_ir::INPUT`), assigned to `output`.
#[track_caller]
pub fn layer(name: &str, inputs: &[&str], op: Op, output: &str) -> Layer {
    Layer {
        name: name.to_string(),
        inputs: inputs.iter().map(|s| s.to_string()).collect(),
        op,
        output: fmt(output),
    }
}

/// A model of the current IR version without preprocessing.
pub fn model(name: &str, input_shape: &[usize], layers: Vec<Layer>) -> Model {
    Model {
        version: IR_VERSION,
        name: name.to_string(),
        input_shape: input_shape.to_vec(),
        layers,
        preprocess: None,
    }
}

/// Random codes of `shape`, uniform over each element's format ([`Rng::uniform_code`]), with
/// one format per index along `axis` (or one format for all).
#[track_caller]
pub fn random_codes(
    rng: &mut Rng,
    shape: &[usize],
    axis: Option<usize>,
    formats: &[&str],
) -> Codes {
    let formats: Vec<Format> = formats.iter().map(|s| fmt(s)).collect();
    let n: usize = shape.iter().product();
    let mut c = Codes::new(shape.to_vec(), axis, formats, vec![0; n]);
    for i in 0..n {
        c.codes[i] = rng.uniform_code(c.format_of(i));
    }
    c
}

/// A small valid model for tests of what surrounds the numerics (files, folders, tools): the
/// raw input `[4]` flattened into `ap_fixed<8,3,AP_RND,AP_SAT>`, then a 4→2 dense layer.
pub fn tiny_dense() -> Model {
    let weight = Codes::new(
        vec![4, 2],
        None,
        vec![fmt("ap_fixed<8,2>")],
        vec![3, -5, 7, 1, -2, 4, 0, 9],
    );
    let dense = Op::Dense {
        weight,
        bias: None,
        accumulator: vec![fmt("ap_fixed<20,8>")],
        order: AccumulationOrder::BiasThenInputChannelMajor,
    };
    model(
        "tiny",
        &[4],
        vec![
            layer("flat", &[INPUT], Op::Flatten, "ap_fixed<8,3,AP_RND,AP_SAT>"),
            layer("fc", &["flat"], dense, "ap_fixed<12,6,AP_RND,AP_SAT>"),
        ],
    )
}

/// The smallest network around one operation: the raw input of `input_shape` quantized into
/// `input` (layer `q`), then `op` (layer `l`) assigned to `output`.
pub fn one_layer(input_shape: &[usize], input: Format, op: Op, output: Format) -> Model {
    let q = Layer {
        name: "q".to_string(),
        inputs: vec![INPUT.to_string()],
        op: Op::Quantize,
        output: input,
    };
    let l = Layer {
        name: "l".to_string(),
        inputs: vec!["q".to_string()],
        op,
        output,
    };
    model("one layer", input_shape, vec![q, l])
}
