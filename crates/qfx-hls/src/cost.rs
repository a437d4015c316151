//! A first-order FPGA resource estimate of a [`Model`]: multipliers by kind, adders and their
//! widths, DSP slices, LUTs and bit operations, per layer.
//!
//! # The cost model
//! The estimate assumes the hls4ml-style fully parallel architecture with reuse factor 1:
//! every constant of a layer gets its own hardware, and a convolution's hardware computes one
//! output position (all output channels) per step, reused over positions. So the *hardware*
//! counts (multipliers, adders, DSP, LUT) are per instance, while [`LayerCost::macs`] and
//! [`LayerCost::bops`] count the work of one inference over all positions.
//!
//! Each product `w·x` of a constant code `w` (`W_w` bits) and an input `x` (`W_x` bits, the
//! width of the producing layer's output format; [`CostModel::input_bits`] for the raw input):
//! - `w = 0`: pruned, no hardware (but counted in MACs and BOPs, as BOPs conventionally are).
//! - `|w|` with one non-zero binary digit (a power of two): a shift, free.
//! - a tensor declared K-hot ([`qfx_ir::Codes::khot`]): shifts and `d − 1` adders of the full product
//!   width `W_w + W_x`, `d` = the code's non-zero digits (binary ones or CSD digits); no DSP.
//! - otherwise a full multiplier. **DSP rule**: when both operands are wider than
//!   [`CostModel::fabric_max_bits`] (default 10, after hls4ml's observation that Vivado/Vitis
//!   map products with an operand of about 10 bits or less to LUTs), it uses
//!   `ceil(max(W_w, W_x) / 27) · ceil(min(W_w, W_x) / 18)` DSP48E2 slices (27×18 ports);
//!   otherwise it is a LUT multiplier of `W_w · W_x ·` [`CostModel::lut_per_mult_bit`] LUTs.
//!
//! A *lane* is a channel of a map or signal (`[c, h, w]`, `[c, length]`: the hardware is reused
//! over positions) or an element of a flat vector. Per operation:
//! - `Dense`/`Conv2d`/`Conv1d` add each non-zero product into the accumulator (one adder of the
//!   accumulator width per product, the bias included as the first term); grouped and depthwise
//!   convolutions have `in/groups` terms per output, dilation and stride change no count.
//! - `BatchNorm`: one scale product and one adder per channel of the full-precision sum width.
//! - `Add`: one adder per lane. `Multiply`: one full (non-constant) multiplier per lane of the
//!   two operands' widths, under the DSP rule above.
//! - `AvgPool2d/1d`, `GlobalAvgPool`: one accumulator per channel of width
//!   `W_x + ceil(log2(window))` and one reciprocal product per channel.
//! - `MaxPool2d/1d`, `GlobalMaxPool`: `window − 1` comparators per channel, counted as adders of
//!   the input width.
//! - `HardTanh`: two comparators per lane of the input width. `HardSigmoid`: per lane one
//!   constant product by `alpha`, one adder for `beta` and two comparators, of the
//!   full-precision width of `alpha·x + beta`.
//! - `Lookup`: one ROM per lane of `n · W_y` bits in LUTs used as 64-bit ROMs
//!   (`ceil(n · W_y / 64)` LUTs), the index arithmetic counted free (constant shifts, and a
//!   subtraction that synthesis folds into the ROM's address decoding).
//! - `Prelu`: one slope product per channel (the `x ≥ 0` branch is a multiplexer, counted free).
//!
//! Every adder costs [`CostModel::lut_per_adder_bit`] LUTs per bit (one LUT6 per bit feeding
//! the carry chain). `Quantize`, `Relu`, `Sign` (the sign bit), `Flatten`, `Reshape`, `Concat`,
//! `Shortcut` and the requantization of results (rounding/saturation logic) are counted as free.
//! A binarized convolution's `±1` weights are 1-hot: each product is a negation at most, so only
//! its accumulation adders are counted (an XNOR–popcount implementation would be cheaper still).
//!
//! BOPs (bit operations) = Σ over products of `W_w · W_x`, all positions, zeros included.
//!
//! # Calibration
//! The counts are turned into LUTs by two coefficients, per adder bit and per fabric-multiplier
//! partial-product bit. [`CostModel::unit`] takes them as 1 and ½ (what the counts mean in
//! primitives); the default, [`CALIBRATED_LUT_PER_ADDER_BIT`] and
//! [`CALIBRATED_LUT_PER_MULT_BIT`], are fitted to Yosys's `synth_xilinx -family xcup`
//! measurements of the designs `qfx-rtl` generates (least squares on log(estimate/measured);
//! `bench/rtl_calibrate.sh`: 16 single Dense layers of two sizes, four widths and K values, and
//! the 8 trained jet MLPs of `bench/rtl_results.sh`). Measured over those 24 designs / the
//! calibrated estimate: median 0.92, worst 1.96×; the worst are the designs whose products go
//! to DSPs (W = 12, plain weights), where Yosys spends about twice the estimated LUTs around
//! the DSP slices.
//!
//! # Known error
//! This is a counting model, not synthesis. Its calibration is against Yosys's technology
//! mapping of the Verilog back end, not against Vivado after placement (which no open tool
//! here runs), and the measured designs share subexpressions across weight matrices and size
//! every adder from its value range, which two coefficients follow only on average. It ignores
//! control and pipelining registers (FFs are not estimated at all) and the optimizations
//! synthesis does on constant operands of *undeclared* tensors (a constant `w` with few ones
//! becomes shifts and adds even without a K-hot declaration, so full-multiplier counts are an
//! upper bound).
//! DSP counts are exact under the stated rule but the rule itself is a heuristic: Vitis may
//! map a product to a DSP or to fabric differently (`BIND_OP` pragmas override it), and it
//! ignores the extra sign bit unsigned operands need. A K-hot tensor is guaranteed 0 DSPs only
//! where the emitted code has the shift-add form: `qfx-hls` writes it for every K-hot Dense,
//! Conv2d, BatchNorm and PReLU, except when the terms would not fit the C simulation's 64-bit
//! integers (input width + constant width + 2 > 63 bits) or the tensor is binary (2-bit formats,
//! codes `0`/`±1`), whose loop template multiplies by 2-bit operands: sign changes, fabric logic
//! either way. The emitter adds no `BIND_OP` pragma.

use std::collections::BTreeMap;
use std::fmt;

use qfx_fixed::KHot;

use qfx_ir::{IrError, Model, Op};

/// The parameters of the cost model (see the [module docs](self)).
#[derive(Clone, Debug, PartialEq)]
pub struct CostModel {
    /// A full product goes to a DSP only when both operands are wider than this.
    pub fabric_max_bits: u32,
    /// DSP multiplier port widths (DSP48E2: 27 × 18).
    pub dsp_ports: (u32, u32),
    /// LUTs per partial-product bit of a fabric multiplier (`W_w · W_x` bits).
    pub lut_per_mult_bit: f64,
    /// LUTs per bit of an adder or comparator.
    pub lut_per_adder_bit: f64,
    /// Width assumed for the raw network input when a layer other than `Quantize` reads it.
    pub input_bits: u32,
}

impl Default for CostModel {
    /// The calibrated model (see "Calibration" in the [module docs](self)).
    fn default() -> CostModel {
        CostModel {
            lut_per_mult_bit: CALIBRATED_LUT_PER_MULT_BIT,
            lut_per_adder_bit: CALIBRATED_LUT_PER_ADDER_BIT,
            ..CostModel::unit()
        }
    }
}

/// LUTs per adder bit fitted to Yosys's measurements (see "Calibration").
pub const CALIBRATED_LUT_PER_ADDER_BIT: f64 = 0.395;
/// LUTs per fabric-multiplier partial-product bit fitted to Yosys's measurements.
pub const CALIBRATED_LUT_PER_MULT_BIT: f64 = 0.151;

impl CostModel {
    /// The counting model before calibration: one LUT per adder bit, half a LUT per
    /// partial-product bit (what the counts mean in primitive terms).
    pub fn unit() -> CostModel {
        CostModel {
            fabric_max_bits: 10,
            dsp_ports: (27, 18),
            lut_per_mult_bit: 0.5,
            lut_per_adder_bit: 1.0,
            input_bits: 32,
        }
    }
}

impl CostModel {
    /// DSP slices for one full `a × b` multiplier, or 0 when it goes to fabric.
    pub fn dsp_for(&self, a: u32, b: u32) -> u64 {
        let (hi, lo) = (a.max(b), a.min(b));
        if lo <= self.fabric_max_bits {
            return 0;
        }
        (hi.div_ceil(self.dsp_ports.0) as u64) * (lo.div_ceil(self.dsp_ports.1) as u64)
    }
}

/// The estimate for one layer (hardware per instance; MACs and BOPs per inference).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct LayerCost {
    /// Layer name.
    pub name: String,
    /// Operation kind (`dense`, `conv2d`, …).
    pub kind: String,
    /// Products per inference (all positions, zero codes included).
    pub macs: u64,
    /// Full multipliers mapped to DSPs.
    pub dsp_mults: u64,
    /// Full multipliers in fabric (LUTs).
    pub lut_mults: u64,
    /// Constant multiplies by codes of a K-hot tensor with two or more digits (shift-add).
    pub khot_mults: u64,
    /// Constant multiplies that are a plain shift (one non-zero digit): free.
    pub shifts: u64,
    /// Adders (and comparators): bit width → count.
    pub adders: BTreeMap<u32, u64>,
    /// Estimated DSP slices.
    pub dsp: u64,
    /// Estimated LUTs.
    pub lut: u64,
    /// Bit operations per inference: Σ `W_w · W_x` over products.
    pub bops: u64,
}

impl LayerCost {
    fn new(name: &str, kind: &str) -> LayerCost {
        LayerCost {
            name: name.to_string(),
            kind: kind.to_string(),
            ..LayerCost::default()
        }
    }

    /// Total adders.
    pub fn adder_count(&self) -> u64 {
        self.adders.values().sum()
    }

    /// Total adder bits (Σ width · count).
    pub fn adder_bits(&self) -> u64 {
        self.adders.iter().map(|(&w, &n)| w as u64 * n).sum()
    }

    fn add_adders(&mut self, width: u32, count: u64) {
        if count > 0 {
            *self.adders.entry(width).or_default() += count;
        }
    }

    /// One constant product `code · x` in hardware (DSP/LUT tallied later for adders).
    fn constant_product(
        &mut self,
        m: &CostModel,
        code: i64,
        w_bits: u32,
        x_bits: u32,
        khot: Option<KHot>,
        lut: &mut f64,
    ) {
        if code == 0 {
            return;
        }
        let ones = KHot::binary(1);
        match khot {
            _ if ones.admits(code as i128) => self.shifts += 1,
            Some(k) => {
                self.khot_mults += 1;
                self.add_adders(w_bits + x_bits, k.adders(code as i128) as u64);
            }
            None => self.full_product(m, w_bits, x_bits, lut),
        }
    }

    /// One full multiplier of `a × b` bits: DSPs under the DSP rule, else LUTs.
    fn full_product(&mut self, m: &CostModel, a: u32, b: u32, lut: &mut f64) {
        let dsp = m.dsp_for(a, b);
        if dsp > 0 {
            self.dsp_mults += 1;
            self.dsp += dsp;
        } else {
            self.lut_mults += 1;
            *lut += (a * b) as f64 * m.lut_per_mult_bit;
        }
    }
}

/// The estimate for a whole model.
#[derive(Clone, Debug, PartialEq)]
pub struct CostReport {
    /// One entry per layer, in execution order.
    pub layers: Vec<LayerCost>,
}

impl CostReport {
    /// Sum of a per-layer quantity.
    fn total(&self, f: impl Fn(&LayerCost) -> u64) -> u64 {
        self.layers.iter().map(f).sum()
    }

    /// Estimated DSP slices of the whole model.
    pub fn dsp(&self) -> u64 {
        self.total(|l| l.dsp)
    }

    /// Estimated LUTs of the whole model.
    pub fn lut(&self) -> u64 {
        self.total(|l| l.lut)
    }

    /// Bit operations per inference.
    pub fn bops(&self) -> u64 {
        self.total(|l| l.bops)
    }
}

/// The estimate with the default [`CostModel`].
pub fn estimate(model: &Model) -> Result<CostReport, IrError> {
    estimate_with(model, &CostModel::default())
}

/// The estimate with the given cost model. Errors if the model does not validate.
pub fn estimate_with(model: &Model, m: &CostModel) -> Result<CostReport, IrError> {
    let graph = model.resolve()?;
    let mut layers = Vec::with_capacity(model.layers.len());
    for node in graph.nodes() {
        let layer = node.layer;
        let input_format = |i: usize| node.operands[i].format;
        let x_bits = input_format(0).map_or(m.input_bits, |f| f.width());
        let in_shape = &node.x().shape[..];
        let out_shape = &node.shape;
        let mut c = LayerCost::new(&layer.name, layer.op.kind());
        let mut lut = 0f64;
        match &layer.op {
            Op::Dense { .. } | Op::Conv2d { .. } | Op::Conv1d { .. } => {
                let mac = node
                    .mac()
                    .expect("dense and convolutions are sums of products");
                let positions = mac.positions() as u64;
                for o in 0..mac.outputs() {
                    let w_bits = mac.weight_format(o).width();
                    let mut nonzero = 0u64;
                    for j in 0..mac.terms() {
                        let code = mac.weight.codes[mac.weight_index(o, j)];
                        c.macs += positions;
                        c.bops += positions * (w_bits * x_bits) as u64;
                        c.constant_product(m, code, w_bits, x_bits, mac.weight.khot, &mut lut);
                        nonzero += (code != 0) as u64;
                    }
                    // One accumulator adder per non-zero product; the bias is one more term.
                    let terms = nonzero + mac.bias.is_some() as u64;
                    c.add_adders(mac.accumulator(o).width(), terms.saturating_sub(1));
                }
            }
            Op::BatchNorm { scale, shift } => {
                let positions: u64 = in_shape.iter().skip(1).map(|&d| d as u64).product();
                let x = input_format(0);
                for (ch, &code) in scale.codes.iter().enumerate() {
                    let (sf, hf) = (scale.format_of(ch), shift.format_of(ch));
                    let w_bits = sf.width();
                    c.macs += positions;
                    c.bops += positions * (w_bits * x_bits) as u64;
                    c.constant_product(m, code, w_bits, x_bits, scale.khot, &mut lut);
                    // The full-precision sum of the product and the shift.
                    let (pi, pf) = match x {
                        Some(x) => (
                            sf.int_bits() as i64 + x.int_bits() as i64,
                            sf.frac_bits() + x.frac_bits(),
                        ),
                        None => (sf.int_bits() as i64 + x_bits as i64, sf.frac_bits()),
                    };
                    let width = pi.max(hf.int_bits() as i64) + 1 + pf.max(hf.frac_bits());
                    c.add_adders(width.clamp(1, u32::MAX as i64) as u32, 1);
                }
            }
            Op::Add => {
                let lanes = lanes(out_shape);
                let (a, b) = (input_format(0), input_format(1));
                let width = match (a, b) {
                    (Some(a), Some(b)) => {
                        let i = a.int_bits().max(b.int_bits()) as i64 + 1;
                        (i + a.frac_bits().max(b.frac_bits())).max(1) as u32
                    }
                    _ => m.input_bits + 1,
                };
                c.add_adders(width, lanes);
            }
            Op::Multiply => {
                let lanes = lanes(out_shape);
                let b_bits = input_format(1).map_or(m.input_bits, |f| f.width());
                let elements = node.len() as u64;
                c.macs += elements;
                c.bops += elements * (x_bits * b_bits) as u64;
                for _ in 0..lanes {
                    c.full_product(m, x_bits, b_bits, &mut lut);
                }
            }
            Op::AvgPool2d { reciprocal, .. }
            | Op::AvgPool1d { reciprocal, .. }
            | Op::GlobalAvgPool { reciprocal } => {
                let win = node.window().expect("a pooling layer has a window");
                let (ch, outputs) = (win.channels as u64, node.len() as u64);
                let window = win.size() as u64;
                let sum_bits = x_bits + (64 - (window.max(1) - 1).leading_zeros());
                c.add_adders(sum_bits, ch);
                let r_bits = reciprocal.format_of(0).width();
                c.macs += outputs;
                c.bops += outputs * (r_bits * sum_bits) as u64;
                for _ in 0..ch {
                    c.constant_product(
                        m,
                        reciprocal.codes[0],
                        r_bits,
                        sum_bits,
                        reciprocal.khot,
                        &mut lut,
                    );
                }
            }
            Op::MaxPool2d { .. } | Op::MaxPool1d { .. } | Op::GlobalMaxPool => {
                let win = node.window().expect("a pooling layer has a window");
                let comparators = win.size().saturating_sub(1) as u64;
                c.add_adders(x_bits, win.channels as u64 * comparators);
            }
            Op::HardTanh { .. } => c.add_adders(x_bits, 2 * lanes(out_shape)),
            Op::HardSigmoid { alpha, beta } => {
                let (af, bf) = (alpha.formats[0], beta.formats[0]);
                let lanes = lanes(out_shape);
                // alpha·x + beta at full precision (the raw input is never read here).
                let width = input_format(0)
                    .and_then(|x| {
                        let zero = qfx_fixed::Fixed::zero;
                        zero(af).mul(&zero(x)).and_then(|p| p.add(&zero(bf))).ok()
                    })
                    .map_or(af.width() + x_bits + 1, |t| t.format().width());
                c.macs += node.len() as u64;
                c.bops += node.len() as u64 * (af.width() * x_bits) as u64;
                for _ in 0..lanes {
                    c.constant_product(m, alpha.codes[0], af.width(), x_bits, alpha.khot, &mut lut);
                }
                c.add_adders(width, 3 * lanes);
            }
            Op::Lookup { table, .. } => {
                let bits = table.codes.len() as u64 * layer.output.width() as u64;
                lut += (lanes(out_shape) * bits.div_ceil(64)) as f64;
            }
            Op::Prelu { slope } => {
                // One slope multiplier per channel (the x ≥ 0 branch is a wire and a mux).
                let positions: u64 = in_shape.iter().skip(1).map(|&d| d as u64).product();
                for ch in 0..in_shape[0] {
                    let k = slope.channel_index(ch);
                    let (code, w_bits) = (slope.codes[k], slope.format_of(k).width());
                    c.macs += positions;
                    c.bops += positions * (w_bits * x_bits) as u64;
                    c.constant_product(m, code, w_bits, x_bits, slope.khot, &mut lut);
                }
            }
            Op::Quantize
            | Op::Relu { .. }
            | Op::Sign
            | Op::Flatten
            | Op::Reshape { .. }
            | Op::Concat
            | Op::Shortcut { .. } => {}
        }
        lut += c.adder_bits() as f64 * m.lut_per_adder_bit;
        c.lut = lut.ceil() as u64;
        layers.push(c);
    }
    Ok(CostReport { layers })
}

/// Parallel lanes of a tensor: channels of a `[c, h, w]` map or a `[c, length]` signal, every
/// element of a flat vector.
fn lanes(shape: &[usize]) -> u64 {
    match shape {
        [c, _, _] | [c, _] => *c as u64,
        s => s.iter().map(|&d| d as u64).product(),
    }
}

/// `count×width` pairs, widest first, e.g. `64×14 8×9`.
fn adder_summary(adders: &BTreeMap<u32, u64>) -> String {
    if adders.is_empty() {
        return "-".to_string();
    }
    adders
        .iter()
        .rev()
        .map(|(w, n)| format!("{n}×{w}b"))
        .collect::<Vec<_>>()
        .join(" ")
}

impl fmt::Display for CostReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "{:<14} {:<15} {:>10} {:>6} {:>6} {:>6} {:>6} {:>7} {:>5} {:>8} {:>12}  adders (count×width)",
            "layer", "kind", "MACs", "mulDSP", "mulLUT", "K-hot", "shift", "adders", "DSP", "LUT", "BOPs"
        )?;
        for l in &self.layers {
            writeln!(
                f,
                "{:<14} {:<15} {:>10} {:>6} {:>6} {:>6} {:>6} {:>7} {:>5} {:>8} {:>12}  {}",
                l.name,
                l.kind,
                l.macs,
                l.dsp_mults,
                l.lut_mults,
                l.khot_mults,
                l.shifts,
                l.adder_count(),
                l.dsp,
                l.lut,
                l.bops,
                adder_summary(&l.adders)
            )?;
        }
        write!(
            f,
            "{:<14} {:<15} {:>10} {:>6} {:>6} {:>6} {:>6} {:>7} {:>5} {:>8} {:>12}",
            "total",
            "",
            self.total(|l| l.macs),
            self.total(|l| l.dsp_mults),
            self.total(|l| l.lut_mults),
            self.total(|l| l.khot_mults),
            self.total(|l| l.shifts),
            self.total(|l| l.adder_count()),
            self.dsp(),
            self.lut(),
            self.bops()
        )
    }
}
