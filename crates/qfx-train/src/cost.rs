//! The hardware cost of a model as a differentiable function of its word widths, so that
//! training can trade accuracy for hardware (`loss = task + β·cost`, ARCHITECTURE.md §5).
//!
//! Two costs, from the same walk over the layer graph:
//! - [`CostKind::Lut`], qfx's own: the first-order LUT count of `qfx_hls::cost` (the model
//!   `qfx report` prints and the budget is measured with), per instance of the fully parallel
//!   design: each product of a `W_w`-bit weight and a `W_x`-bit input costs `W_w·W_x` partial-
//!   product bits, each accumulation one adder of the accumulator's width (`W_x + W_w +
//!   log2(fan-in)`, the export's provably safe size), BatchNorm one product and one adder per
//!   channel, max pooling `window − 1` comparators per channel and an add one adder per lane.
//!   Products of zeros and powers of two, which the exact model counts as free, are counted
//!   here at their width: the surrogate is smooth where the count is not, and a budget is
//!   always checked against the exact count.
//! - [`CostKind::Ebops`], HGQ's: `Σ W_x·W_w` over every product of an inference (all positions
//!   of a convolution), BatchNorm's scale products included.
//!
//! Widths enter as [`Quantizer::width_tensor`] (straight through their rounding), so a
//! fixed width is a constant and only learned widths receive a gradient.

use burn::module::Module;
use burn::tensor::Tensor;
use qfx_hls::cost::CostModel;
use serde::{Deserialize, Serialize};

use crate::graph::{GraphModel, Layer};
use crate::quantizer::Quantizer;

/// Which cost the loss differentiates.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum CostKind {
    /// qfx's LUT estimate (`qfx_hls::cost`).
    #[default]
    Lut,
    /// HGQ's effective bit operations.
    Ebops,
}

/// The width of what layer `i` outputs, as a tensor of one element (or the cost model's raw
/// input width for the network input).
fn output_width(model: &GraphModel, i: Option<usize>, m: &CostModel) -> Tensor<1> {
    let Some(i) = i else {
        return constant(model, m.input_bits as f32);
    };
    let q: &Quantizer = match &model.layers[i] {
        Layer::Quantize(q) => q,
        Layer::Dense(l) => &l.out,
        Layer::Conv2d(c) => &c.out,
        Layer::BinaryConv2d(c) => &c.out,
        Layer::BatchNorm(n) => &n.out,
        Layer::Relu(r) => &r.out,
        Layer::Prelu(p) => &p.out,
        Layer::LeakyRelu(l) => &l.out,
        Layer::HardTanh(h) => &h.out,
        Layer::HardSigmoid(h) => &h.out,
        Layer::Lookup(l) => &l.out,
        Layer::Add(a) => &a.out,
        Layer::Multiply(m) => &m.out,
        Layer::Concat(c) => &c.out,
        Layer::AvgPool2d(p) => &p.out,
        Layer::GlobalAvgPool(p) => &p.out,
        Layer::Sign(_) => return constant(model, 2.0),
        // Layers that move values keep their input's format.
        Layer::MaxPool2d(_)
        | Layer::GlobalMaxPool(_)
        | Layer::Flatten(_)
        | Layer::Reshape(_)
        | Layer::Shortcut(_) => return output_width(model, model.graph.nodes[i].sources[0], m),
    };
    q.width_tensor()
}

fn constant(model: &GraphModel, v: f32) -> Tensor<1> {
    let device = model.devices().into_iter().next().unwrap_or_default();
    Tensor::full([1], v, &device)
}

/// One layer's sum of products: `outputs` channels of `fan_in` terms each, repeated over
/// `positions`, weights of widths `w` (one per output channel, or one), inputs of width `a`.
struct Products {
    w: Tensor<1>,
    outputs: usize,
    fan_in: usize,
    positions: usize,
}

impl Products {
    /// `Σ_c fan_in · g(w_c)` for a per-channel or per-tensor `w`.
    fn per_output(&self, g: Tensor<1>) -> Tensor<1> {
        let per = if g.dims()[0] == 1 {
            g * self.outputs as f64
        } else {
            g
        };
        per.sum() * self.fan_in as f64
    }

    fn cost(&self, a: Tensor<1>, kind: CostKind, m: &CostModel) -> Tensor<1> {
        let bits = self.w.clone() * a.clone();
        match kind {
            CostKind::Ebops => self.per_output(bits) * self.positions as f64,
            CostKind::Lut => {
                let log_fan_in = (self.fan_in.max(1) as f64).log2();
                let adder = self.w.clone() + a + log_fan_in;
                self.per_output(bits * m.lut_per_mult_bit + adder * m.lut_per_adder_bit)
            }
        }
    }
}

/// The model's cost of `kind` under cost model `m`, differentiable in every learned width:
/// a tensor of one element.
pub fn model_cost(model: &GraphModel, kind: CostKind, m: &CostModel) -> Tensor<1> {
    let mut total = constant(model, 0.0);
    for (i, node) in model.graph.nodes.iter().enumerate() {
        let input = || output_width(model, node.sources[0], m);
        // Positions of a map or signal `[c, …]` the hardware is reused over (1 for a vector).
        let positions = node.shape[1..].iter().product::<usize>().max(1);
        let cost = match &model.layers[i] {
            Layer::Dense(l) => {
                let [d_in, d_out] = l.weight.val().dims();
                let p = Products {
                    w: l.wq.width_tensor(),
                    outputs: d_out,
                    fan_in: d_in,
                    positions: 1,
                };
                p.cost(input(), kind, m)
            }
            Layer::Conv2d(c) => {
                let [out, per_group, kh, kw] = c.weight.val().dims();
                let p = Products {
                    w: c.wq.width_tensor(),
                    outputs: out,
                    fan_in: per_group * kh * kw,
                    positions,
                };
                p.cost(input(), kind, m)
            }
            Layer::BatchNorm(n) => {
                let channels = node.shape[0];
                let p = Products {
                    w: n.scale_q.width_tensor(),
                    outputs: channels,
                    fan_in: 1,
                    positions,
                };
                p.cost(input(), kind, m)
            }
            Layer::MaxPool2d(p) if kind == CostKind::Lut => {
                let comparators = (p.kernel[0] * p.kernel[1]).saturating_sub(1) * node.shape[0];
                input() * (comparators as f64 * m.lut_per_adder_bit)
            }
            Layer::Add(_) if kind == CostKind::Lut => {
                let b = output_width(model, node.sources[1], m);
                let widest = input().max_pair(b) + 1.0;
                widest * (node.shape[0] as f64 * m.lut_per_adder_bit)
            }
            _ => continue,
        };
        total = total + cost;
    }
    total
}

/// The cost term of a run: `[cost]` in its configuration.
///
/// ```toml
/// [cost]
/// kind = "lut"          # or "ebops"
/// budget_lut = 20000    # β steered so that the LUT estimate lands here
/// ```
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, Default)]
#[serde(default, deny_unknown_fields)]
pub struct CostConfig {
    /// The cost the loss differentiates.
    pub kind: CostKind,
    /// β, the cost's weight in the loss, in units of the cost at the start of training (β = 1:
    /// the starting cost weighs as much as one unit of the task loss). Without a budget it
    /// stays fixed; with one it is where the controller starts (default 1).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub beta: Option<f64>,
    /// LUTs the trained model may use (`qfx report`'s estimate): β is steered to land there.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub budget_lut: Option<f64>,
    /// DSP slices the trained model may use.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub budget_dsp: Option<f64>,
    /// Controller gains `[kp, ki, kd]`: `ln β = ln β₀ + kp·e + ki·Σe + kd·Δe`, with `e` the
    /// relative distance of the measured cost to the budget (clamped to ±1) at each
    /// measurement and `Δe` its change since the previous one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub gains: Option<[f64; 3]>,
    /// Steps between two measurements of the exact cost (default 5).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub every_steps: Option<usize>,
    /// The last part of training (a fraction of its steps, default 0.25) in which the widths
    /// and β stay where the controller left them, so the weights adapt to the final formats.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub settle: Option<f64>,
}

/// Default controller gains `[kp, ki, kd]`.
pub const DEFAULT_GAINS: [f64; 3] = [1.0, 0.2, 0.0];

impl CostConfig {
    pub(crate) fn is_default(&self) -> bool {
        *self == CostConfig::default()
    }

    /// Whether the loss has a cost term.
    pub fn active(&self) -> bool {
        self.beta.is_some() || self.has_budget()
    }

    /// Whether a budget steers β.
    pub fn has_budget(&self) -> bool {
        self.budget_lut.is_some() || self.budget_dsp.is_some()
    }

    /// β at the start of training.
    fn start_beta(&self) -> f64 {
        self.beta.unwrap_or(1.0)
    }

    /// Steps between measurements.
    pub fn every(&self) -> usize {
        self.every_steps.unwrap_or(5)
    }

    /// The step (of `total`) from which the widths settle.
    pub fn settle_from(&self, total: usize) -> usize {
        let fraction = self.settle.unwrap_or(0.25);
        total - (total as f64 * fraction).round() as usize
    }

    /// Checks the numbers: finite, non-negative budgets and β, positive interval.
    pub fn validate(&self) -> Result<(), crate::TrainError> {
        let bad = |what: &str, v: f64| {
            Err(crate::TrainError::Config(format!(
                "cost.{what} = {v}: must be a finite number ≥ 0"
            )))
        };
        for (what, v) in [
            ("beta", self.beta),
            ("budget_lut", self.budget_lut),
            ("budget_dsp", self.budget_dsp),
        ] {
            if let Some(v) = v.filter(|v| !(v.is_finite() && *v >= 0.0)) {
                return bad(what, v);
            }
        }
        if self.has_budget() && self.beta == Some(0.0) {
            return Err(crate::TrainError::Config(
                "cost.beta = 0 cannot be steered toward a budget (the controller scales it)"
                    .to_string(),
            ));
        }
        if let Some(g) = self.gains {
            if g.iter().any(|v| !(v.is_finite() && *v >= 0.0)) {
                return Err(crate::TrainError::Config(format!(
                    "cost.gains = {g:?}: three finite numbers ≥ 0"
                )));
            }
        }
        if let Some(v) = self.settle.filter(|v| !(0.0..1.0).contains(v)) {
            return Err(crate::TrainError::Config(format!(
                "cost.settle = {v}: a fraction of the steps, at least 0 and below 1"
            )));
        }
        if self.every_steps == Some(0) {
            return Err(crate::TrainError::Config(
                "cost.every_steps must be at least 1".to_string(),
            ));
        }
        Ok(())
    }
}

/// The exact cost of an exported model (`qfx_hls::cost`, as `qfx report` prints it).
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct Measured {
    /// Estimated LUTs.
    pub lut: u64,
    /// Estimated DSP slices.
    pub dsp: u64,
    /// Bit operations per inference.
    pub bops: u64,
}

/// Measures an exported model.
pub fn measure(ir: &qfx_ir::Model) -> Result<Measured, crate::TrainError> {
    let report = qfx_hls::cost::estimate(ir).map_err(|e| crate::TrainError::Spec(e.to_string()))?;
    Ok(Measured {
        lut: report.lut(),
        dsp: report.dsp(),
        bops: report.bops(),
    })
}

/// β and what steers it; stored in checkpoints, so a resumed run continues where it stopped.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct Controller {
    /// The cost's weight now.
    pub beta: f64,
    /// Σe so far.
    pub integral: f64,
    /// The differentiated cost at the start (the unit β is expressed in).
    pub scale: f64,
    /// The previous measurement's error.
    #[serde(default)]
    pub previous: Option<f64>,
}

impl Controller {
    /// The weight of the cost in the loss now: β, except 0 while the last measurement was
    /// within the budget. Under Adam a width whose task gradient is 0 (a tensor that never
    /// clips) moves at the full learning rate whatever the size of β, so only a zero stops its
    /// descent once the budget is met.
    pub fn weight(&self) -> f64 {
        if self.previous.is_some_and(|e| e <= 0.0) {
            0.0
        } else {
            self.beta / self.scale
        }
    }
}

impl Controller {
    /// The controller at the start of training, `start_cost` the differentiated cost then.
    pub fn start(config: &CostConfig, start_cost: f64) -> Controller {
        Controller {
            beta: config.start_beta(),
            integral: 0.0,
            scale: start_cost.max(f64::MIN_POSITIVE),
            previous: None,
        }
    }

    /// The relative distance of `m` to the budgets: the larger over LUT and DSP, clamped to ±1.
    pub fn error(config: &CostConfig, m: &Measured) -> f64 {
        let relative =
            |value: u64, budget: Option<f64>| budget.map(|b| (value as f64 - b) / b.max(1.0));
        let e = [
            relative(m.lut, config.budget_lut),
            relative(m.dsp, config.budget_dsp),
        ]
        .into_iter()
        .flatten()
        .fold(f64::NEG_INFINITY, f64::max);
        e.clamp(-1.0, 1.0)
    }

    /// One controller step after measuring `m` (nothing without a budget).
    pub fn update(&mut self, config: &CostConfig, m: &Measured) {
        if !config.has_budget() {
            return;
        }
        let [kp, ki, kd] = config.gains.unwrap_or(DEFAULT_GAINS);
        let e = Controller::error(config, m);
        let change = e - self.previous.unwrap_or(e);
        self.previous = Some(e);
        // Anti-windup: the integral alone can move ln β by at most ±20.
        self.integral = (self.integral + e).clamp(-20.0 / ki.max(1e-9), 20.0 / ki.max(1e-9));
        let start = config.start_beta();
        // Bounded so a long run far from its budget cannot drive β to 0 or infinity.
        let log_beta = (start.ln() + kp * e + ki * self.integral + kd * change).clamp(-30.0, 30.0);
        self.beta = log_beta.exp();
    }
}
