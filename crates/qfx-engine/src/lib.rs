//! The integer inference engine: runs a `qfx-ir` model on integer codes, computing exactly what
//! the generated HLS C++ computes (the semantics are documented in `qfx-ir`), and counts every
//! overflow (saturation or wrap) it hits, per layer.
//!
//! # Running a model
//! [`Engine::new`] validates a model once and prepares every layer; [`Engine::run`] runs one
//! sample and [`Engine::run_batch`] many, on several threads (`std::thread::scope`, samples
//! split in order). [`run`] is the one-call convenience. The results, overflow counts
//! included, are bit for bit those of [`reference::run`], the original unprepared engine, which
//! is kept as the slow reference; the property tests (`tests/props.rs`) also compare both with
//! a literal `Fixed`-only interpreter of the IR on random models.
//!
//! ```
//! use qfx_ir::{AccumulationOrder, Codes, Layer, Model, Op, INPUT, IR_VERSION};
//! let f = |s: &str| s.parse::<qfx_fixed::Format>().unwrap();
//! // y = 0.5·x0 − 0.25·x1 + 0.125, in a 5-bit accumulator that saturates beyond ±1.
//! let dense = Op::Dense {
//!     weight: Codes::new(vec![2, 1], None, vec![f("ap_fixed<4,1>")], vec![4, -2]),
//!     bias: Some(Codes::new(vec![1], None, vec![f("ap_fixed<4,1>")], vec![1])),
//!     accumulator: vec![f("ap_fixed<5,1,AP_TRN,AP_SAT>")],
//!     order: AccumulationOrder::default(),
//! };
//! let layer = |name: &str, input: &str, op, out: &str| Layer {
//!     name: name.into(), inputs: vec![input.into()], op, output: f(out),
//! };
//! let model = Model {
//!     version: IR_VERSION, name: "tiny".into(), input_shape: vec![2], preprocess: None,
//!     layers: vec![
//!         layer("q", INPUT, Op::Quantize, "ap_fixed<4,2>"),
//!         layer("fc", "q", dense, "ap_fixed<6,2>"),
//!     ],
//! };
//! let out = qfx_engine::run(&model, &[1.0, 1.5])?;
//! assert_eq!(out.output.values(), vec![0.25]); // 0.5 − 0.375 + 0.125
//! // The static analysis knows the accumulator can saturate for some input in range.
//! let report = qfx_engine::analyze(&model)?;
//! assert!(report.layers[1].accumulator.as_ref().unwrap().can_overflow());
//! # Ok::<(), qfx_engine::EngineError>(())
//! ```
//!
//! # Fast paths, and when the general path runs
//! - **Sums of products.** An output channel whose accumulator holds every product exactly
//!   (`0 ≤ F_acc − F_x − F_w ≤ 40`) and whose overflow mode is `AP_SAT`, `AP_SAT_SYM`,
//!   `AP_SAT_ZERO` or `AP_WRAP` with `N = 0` runs on integers: weights are shifted onto the
//!   accumulator's grid once, and the layer runs in the narrowest of `i32`/`i64`/`i128` that
//!   provably holds every partial sum. Loops go tap by tap over whole output rows (feature by
//!   feature over all outputs for `Dense`), which keeps each output's IR order and vectorizes
//!   (AVX2 is used when the CPU has it); convolutions take the general geometry (groups,
//!   dilation, rectangular kernels, per-axis stride, asymmetric padding; 1-D as height 1). When a conservative bound from the input format shows
//!   that no partial sum can leave the accumulator's range, nothing is checked; otherwise a
//!   vectorized range test follows each row update and the rare out-of-range sums are clamped,
//!   zeroed or wrapped and counted, exactly as step-by-step accumulation does. Channels with
//!   rounding accumulators (`F_acc < F_x + F_w`), `AP_WRAP_SM`, `AP_WRAP` with `N > 0`, or sums
//!   too wide for `i128` run `acc = cast(acc + w·x)` in `qfx-fixed`'s header-exact arithmetic.
//! - **Assignments** (every layer output, the input conversion, BatchNorm, `Add`, `Multiply`,
//!   concatenation, ReLU, hard tanh, hard sigmoid, PReLU, pooling) compute the exact value as an
//!   integer and round it with the target's quantization mode;
//!   `AP_SAT*` and plain `AP_WRAP` are applied arithmetically (checked against `Fixed::cast` by
//!   property tests). `AP_WRAP_SM` and `AP_WRAP` with `N > 0` take the fast path only when the
//!   rounded value is in range, and `Fixed::cast` otherwise; so does any value too wide for
//!   `i128`.
//! - Layer output formats must have codes that fit an `i64` (up to 64 bits signed, 63 unsigned);
//!   [`Engine::new`] refuses wider ones. Accumulators may be up to 128 bits.
//!
//! # Static range analysis
//! [`analyze`] computes, from the formats and constant codes alone, the worst-case range of
//! every accumulator's partial sums (every prefix, every zero-padding pattern) and of every value
//! assigned to a layer output, for any network input in the input quantizer's format, and says
//! which can overflow and by how many integer bits the format is short. [`RangeReport`] prints
//! as a table. The module documentation of `analysis.rs` lists where it is exact and where
//! conservative; the tests check that worst-case inputs make the engine overflow exactly when
//! a layer is flagged, and that every overflow the engine counts on random models was flagged.
//!
//! # Float emulation
//! [`float_forward`] computes what an `f32` fake-quantization framework computes for the same
//! IR: `f32` sums in order, the accumulator cast once at the end of the sum, and a cast to the
//! output format after every layer. It equals the engine while all values fit in 24-bit codes
//! and differs when wide accumulators make `f32` round (`ARCHITECTURE.md` §6, level 1 against level 2).

use std::fmt;

use qfx_fixed::Format;
use qfx_ir::Model;

mod analysis;
mod engine;
mod float;
mod mac;
pub mod reference;
mod requant;

pub use analysis::{analyze, Bound, Check, LayerRange, RangeReport};
pub use engine::Engine;
pub use float::float_forward;

/// A tensor of one sample: codes in one format.
#[derive(Clone, Debug, PartialEq)]
pub struct Tensor {
    /// Shape (no batch dimension).
    pub shape: Vec<usize>,
    /// The format of every element.
    pub format: Format,
    /// Row-major codes.
    pub codes: Vec<i64>,
}

impl Tensor {
    /// The element values as `f64` (exact for formats up to 53 bits).
    pub fn values(&self) -> Vec<f64> {
        self.codes
            .iter()
            .map(|&c| reference::fixed(c as i128, self.format).to_f64())
            .collect()
    }
}

/// Result of one inference.
#[derive(Clone, Debug, PartialEq)]
pub struct Output {
    /// The last layer's output.
    pub output: Tensor,
    /// Overflow events per layer (same order as the model's layers).
    pub overflows: Vec<u64>,
}

/// Why an inference could not run.
#[derive(Clone, Debug, PartialEq)]
pub struct EngineError(pub String);

impl fmt::Display for EngineError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "integer engine: {}", self.0)
    }
}

impl std::error::Error for EngineError {}

/// Runs `model` on one sample of `input` values (row-major, `model.input_shape`).
///
/// A convenience for one sample: it prepares an [`Engine`] (validating the model) every call.
/// To run many samples, build the [`Engine`] once.
pub fn run(model: &Model, input: &[f32]) -> Result<Output, EngineError> {
    Engine::new(model)?.run(input)
}

/// The predicted class of an output's codes: the index of the largest code, the first one on a
/// tie (as an argmax loop over the outputs in the generated C++ decides). `None` when empty.
pub fn argmax(codes: &[i64]) -> Option<usize> {
    (0..codes.len()).max_by_key(|&k| (codes[k], std::cmp::Reverse(k)))
}

#[cfg(test)]
mod tests {
    #[test]
    fn argmax_picks_the_first_maximum() {
        for (codes, want) in [
            (&[][..], None),
            (&[3][..], Some(0)),
            (&[1, 5, 5, -2][..], Some(1)),
            (&[-7, -3, -3][..], Some(1)),
            (&[0, 0, 0][..], Some(0)),
        ] {
            assert_eq!(super::argmax(codes), want, "{codes:?}");
        }
    }
}
