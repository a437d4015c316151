//! Optimizers and learning-rate schedules whose whole state is named by module path, so a
//! checkpoint stores it as ordinary tensors (safetensors) and a resumed run continues with
//! exactly the same numbers. (burn's own optimizers key their state by random parameter ids.)
//!
//! Weight decay applies to weight matrices and kernels only (parameters named `weight`): never to
//! biases, BatchNorm γ/β, or binary points, whose decay would pull formats toward `F = 0`.

use std::collections::{BTreeMap, HashMap};

use burn::module::{Module, ModuleMapper, Param};
use burn::optim::GradientsParams;
use burn::tensor::{Tensor, TensorData};
use serde::{Deserialize, Serialize};

use crate::error::TrainError;
use crate::host::HostValues;
use crate::safetensors::NamedTensor;

/// Which update rule.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum OptimizerConfig {
    /// Adam with decoupled weight decay (AdamW when `weight_decay > 0`).
    Adam {
        /// First-moment decay.
        #[serde(default = "beta1")]
        beta1: f64,
        /// Second-moment decay.
        #[serde(default = "beta2")]
        beta2: f64,
        /// Denominator guard.
        #[serde(default = "epsilon")]
        epsilon: f64,
    },
    /// SGD with (optionally Nesterov) momentum and L2 weight decay.
    Sgd {
        /// Momentum factor.
        #[serde(default = "momentum")]
        momentum: f64,
        /// Nesterov momentum.
        #[serde(default)]
        nesterov: bool,
    },
}

fn beta1() -> f64 {
    0.9
}
fn beta2() -> f64 {
    0.999
}
fn epsilon() -> f64 {
    1e-8
}
fn momentum() -> f64 {
    0.9
}

impl Default for OptimizerConfig {
    fn default() -> OptimizerConfig {
        OptimizerConfig::Adam {
            beta1: beta1(),
            beta2: beta2(),
            epsilon: epsilon(),
        }
    }
}

/// How the learning rate changes over training.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize, Default)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum Schedule {
    /// The same rate throughout.
    Constant,
    /// Cosine decay from the base rate to zero over all steps.
    #[default]
    Cosine,
    /// Multiply by `gamma` every `every_epochs` epochs.
    Step {
        /// Epochs between decays.
        every_epochs: usize,
        /// Factor per decay.
        gamma: f64,
    },
}

impl Schedule {
    /// The rate at `step` of `total` steps (`steps_per_epoch` per epoch).
    pub fn rate(&self, base: f64, step: usize, total: usize, steps_per_epoch: usize) -> f64 {
        match *self {
            Schedule::Constant => base,
            Schedule::Cosine => {
                let t = step as f64 / total.max(1) as f64;
                base * 0.5 * (1.0 + (std::f64::consts::PI * t.min(1.0)).cos())
            }
            Schedule::Step {
                every_epochs,
                gamma,
            } => {
                let epoch = step / steps_per_epoch.max(1);
                base * gamma.powi((epoch / every_epochs.max(1)) as i32)
            }
        }
    }
}

/// An optimizer and its state.
pub struct Optimizer {
    config: OptimizerConfig,
    weight_decay: f64,
    /// The learning rate of learned widths, when they do not follow the schedule.
    width_lr: Option<f64>,
    /// Updates done so far (Adam's bias correction).
    steps: u64,
    /// First moment (Adam) or momentum buffer (SGD), flattened, by parameter path.
    first: HashMap<String, Tensor<1>>,
    /// Second moment (Adam), by parameter path.
    second: HashMap<String, Tensor<1>>,
}

impl Optimizer {
    /// A fresh optimizer.
    pub fn new(config: OptimizerConfig, weight_decay: f64) -> Optimizer {
        Optimizer {
            config,
            weight_decay,
            width_lr: None,
            steps: 0,
            first: HashMap::new(),
            second: HashMap::new(),
        }
    }

    /// Learned widths ([`crate::Quantizer::w`]) update at `lr` at every step, whatever rate
    /// the others get: a budget's controller then keeps its hold on the widths until the last
    /// step, instead of losing it as a schedule decays.
    pub fn set_width_lr(&mut self, lr: Option<f64>) {
        self.width_lr = lr;
    }

    /// Forgets the learned widths' momentum (first moment), so they stop where they are when
    /// the force moving them (the cost) is switched off, instead of coasting on for the ten
    /// or so steps Adam's momentum lasts.
    pub fn clear_width_momentum(&mut self) {
        self.first.retain(|path, _| !is_learned_width(path));
    }

    /// Updates done so far.
    pub fn steps(&self) -> u64 {
        self.steps
    }

    /// One update of every parameter that has a gradient in `grads`.
    pub fn step<M: Module>(&mut self, lr: f64, model: M, mut grads: GradientsParams) -> M {
        self.steps += 1;
        let mut mapper = StepMapper {
            optim: self,
            grads: &mut grads,
            path: Vec::new(),
            lr,
        };
        model.map(&mut mapper)
    }

    /// The state as named tensors (`<path>.first`, `<path>.second`) plus the step counter.
    pub fn state(&self) -> (Vec<NamedTensor>, u64) {
        let mut out = Vec::new();
        for (suffix, map) in [("first", &self.first), ("second", &self.second)] {
            for (path, t) in map {
                out.push(NamedTensor {
                    name: format!("{path}.{suffix}"),
                    shape: t.dims().to_vec(),
                    data: t.clone().host_f32(),
                });
            }
        }
        (out, self.steps)
    }

    /// Restores a state written by [`Optimizer::state`], on `device`, for a model whose
    /// parameters are `params` (as [`module_tensors`] lists them): every state tensor must
    /// belong to a parameter of the same size.
    pub fn load_state(
        &mut self,
        tensors: Vec<NamedTensor>,
        steps: u64,
        params: &[NamedTensor],
        device: &burn::tensor::Device,
    ) -> Result<(), TrainError> {
        let sizes: HashMap<&str, usize> = params
            .iter()
            .map(|p| (p.name.as_str(), p.data.len()))
            .collect();
        let mut first = HashMap::new();
        let mut second = HashMap::new();
        for t in tensors {
            let (path, map) = if let Some(p) = t.name.strip_suffix(".first") {
                (p.to_string(), &mut first)
            } else if let Some(p) = t.name.strip_suffix(".second") {
                (p.to_string(), &mut second)
            } else {
                return Err(TrainError::Checkpoint(format!(
                    "unknown optimizer state tensor `{}`",
                    t.name
                )));
            };
            let n = t.data.len();
            match sizes.get(path.as_str()) {
                Some(&size) if size == n => {}
                Some(&size) => {
                    return Err(TrainError::Checkpoint(format!(
                        "optimizer state `{}` has {n} values but the parameter has {size}",
                        t.name
                    )))
                }
                None => {
                    return Err(TrainError::Checkpoint(format!(
                        "optimizer state `{}` belongs to no parameter of the model",
                        t.name
                    )))
                }
            }
            map.insert(
                path,
                Tensor::<1>::from_data(TensorData::new(t.data, [n]), device),
            );
        }
        self.first = first;
        self.second = second;
        self.steps = steps;
        Ok(())
    }
}

struct StepMapper<'a> {
    optim: &'a mut Optimizer,
    grads: &'a mut GradientsParams,
    path: Vec<String>,
    lr: f64,
}

impl ModuleMapper for StepMapper<'_> {
    fn enter_module(&mut self, name: &str, _container_type: &str) {
        self.path.push(name.to_string());
    }

    fn exit_module(&mut self, _name: &str, _container_type: &str) {
        self.path.pop();
    }

    fn map_float<const D: usize>(&mut self, param: Param<Tensor<D>>) -> Param<Tensor<D>> {
        let (id, tensor, mapper) = param.consume();
        let Some(grad) = self.grads.remove::<D>(id) else {
            return Param::from_mapped_value(id, tensor, mapper);
        };
        let path = self.path.join(".");
        let lr = match self.optim.width_lr {
            Some(lr) if is_learned_width(&path) => lr,
            _ => self.lr,
        };
        let decay =
            self.path.last().is_some_and(|n| n == "weight") && self.optim.weight_decay > 0.0;
        let wd = self.optim.weight_decay;
        let require_grad = tensor.is_require_grad();
        let dims = tensor.dims();
        let n: usize = dims.iter().product();
        let x = tensor.inner().reshape([n]);
        let g = grad.inner().reshape([n]);
        let zeros = || x.zeros_like();
        let updated = match self.optim.config {
            OptimizerConfig::Adam {
                beta1,
                beta2,
                epsilon,
            } => {
                let m = self.optim.first.remove(&path).unwrap_or_else(zeros) * beta1
                    + g.clone() * (1.0 - beta1);
                let v = self.optim.second.remove(&path).unwrap_or_else(zeros) * beta2
                    + g.powi_scalar(2) * (1.0 - beta2);
                let t = self.optim.steps as i32;
                let m_hat = m.clone() / (1.0 - beta1.powi(t));
                let v_hat = v.clone() / (1.0 - beta2.powi(t));
                let mut delta = m_hat / (v_hat.sqrt() + epsilon);
                if decay {
                    delta = delta + x.clone() * wd;
                }
                self.optim.first.insert(path.clone(), m);
                self.optim.second.insert(path, v);
                x - delta * lr
            }
            OptimizerConfig::Sgd { momentum, nesterov } => {
                let g = if decay { g + x.clone() * wd } else { g };
                let buf = match self.optim.first.remove(&path) {
                    Some(b) => b * momentum + g.clone(),
                    None => g.clone(),
                };
                let delta = if nesterov {
                    g + buf.clone() * momentum
                } else {
                    buf.clone()
                };
                self.optim.first.insert(path, buf);
                x - delta * lr
            }
        };
        let mut updated = Tensor::from_inner(updated.reshape(dims));
        if require_grad {
            updated = updated.require_grad();
        }
        Param::from_mapped_value(id, updated, mapper)
    }
}

/// Every float parameter and running statistic of `module`, named by module path.
pub fn module_tensors<M: Module>(module: &M) -> Vec<NamedTensor> {
    struct Collect {
        path: Vec<String>,
        out: Vec<NamedTensor>,
    }
    impl burn::module::ModuleVisitor for Collect {
        fn enter_module(&mut self, name: &str, _container_type: &str) {
            self.path.push(name.to_string());
        }
        fn exit_module(&mut self, _name: &str, _container_type: &str) {
            self.path.pop();
        }
        fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
            let t = param.val();
            self.out.push(NamedTensor {
                name: self.path.join("."),
                shape: t.dims().to_vec(),
                data: t.host_f32(),
            });
        }
    }
    let mut c = Collect {
        path: Vec::new(),
        out: Vec::new(),
    };
    module.visit(&mut c);
    c.out
}

/// `module` with every float parameter and running statistic replaced by the tensor of the same
/// path in `tensors`. Missing, extra or differently shaped tensors are an error listing them.
pub fn load_module_tensors<M: Module>(
    module: M,
    tensors: Vec<NamedTensor>,
) -> Result<M, TrainError> {
    load(module, tensors, false)
}

/// As [`load_module_tensors`], for a run that starts from another run's weights and calibrates
/// its formats afterwards: a learned width (a quantizer's `w`) may be present on one side only
/// — a fixed-width run's weights start a learned-width run and back; a learned width missing
/// from the checkpoint starts at the configured width.
pub fn load_weights<M: Module>(module: M, tensors: Vec<NamedTensor>) -> Result<M, TrainError> {
    load(module, tensors, true)
}

/// A quantizer's learned width ([`crate::quantizer::Quantizer::w`]).
fn is_learned_width(name: &str) -> bool {
    name.ends_with(".w")
}

fn load<M: Module>(
    module: M,
    tensors: Vec<NamedTensor>,
    any_widths: bool,
) -> Result<M, TrainError> {
    struct Load {
        path: Vec<String>,
        tensors: BTreeMap<String, NamedTensor>,
        problems: Vec<String>,
        any_widths: bool,
    }
    impl ModuleMapper for Load {
        fn enter_module(&mut self, name: &str, _container_type: &str) {
            self.path.push(name.to_string());
        }
        fn exit_module(&mut self, _name: &str, _container_type: &str) {
            self.path.pop();
        }
        fn map_float<const D: usize>(&mut self, param: Param<Tensor<D>>) -> Param<Tensor<D>> {
            let (id, tensor, mapper) = param.consume();
            let name = self.path.join(".");
            let dims = tensor.dims();
            let Some(t) = self.tensors.remove(&name) else {
                if !(self.any_widths && is_learned_width(&name)) {
                    self.problems.push(format!("`{name}` {dims:?} is missing"));
                }
                return Param::from_mapped_value(id, tensor, mapper);
            };
            if t.shape != dims {
                self.problems.push(format!(
                    "`{name}` has shape {:?}, the model needs {dims:?}",
                    t.shape
                ));
                return Param::from_mapped_value(id, tensor, mapper);
            }
            let mut loaded =
                Tensor::<D>::from_data(TensorData::new(t.data, dims), &tensor.device());
            if tensor.is_require_grad() {
                loaded = loaded.require_grad();
            }
            Param::from_mapped_value(id, loaded, mapper)
        }
    }
    let mut load = Load {
        path: Vec::new(),
        tensors: tensors.into_iter().map(|t| (t.name.clone(), t)).collect(),
        problems: Vec::new(),
        any_widths,
    };
    let module = module.map(&mut load);
    load.problems.extend(
        load.tensors
            .keys()
            .filter(|k| !(any_widths && is_learned_width(k)))
            .map(|k| format!("`{k}` is not in the model")),
    );
    if !load.problems.is_empty() {
        let n = load.problems.len();
        let shown: Vec<&str> = load.problems.iter().take(6).map(String::as_str).collect();
        return Err(TrainError::Checkpoint(format!(
            "the checkpoint does not fit this model ({n} problem{}): {}{}",
            if n == 1 { "" } else { "s" },
            shown.join("; "),
            if n > 6 { "; …" } else { "" }
        )));
    }
    Ok(module)
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::tensor::Device;

    #[derive(Module, Debug)]
    struct Two {
        weight: Param<Tensor<1>>,
        bias: Param<Tensor<1>>,
    }

    fn model(device: &Device) -> Two {
        let t = |v: Vec<f32>| {
            Param::from_tensor(Tensor::<1>::from_data(TensorData::new(v, [2]), device))
        };
        Two {
            weight: t(vec![1.0, -2.0]),
            bias: t(vec![0.5, 0.25]),
        }
    }

    fn values(p: &Param<Tensor<1>>) -> Vec<f32> {
        p.val().host_f32()
    }

    /// One step on the loss Σ w² + Σ b (gradients 2w and 1), by the textbook formulas.
    fn step(config: OptimizerConfig, wd: f64, steps: usize) -> (Vec<f32>, Vec<f32>) {
        let device = Device::flex().autodiff();
        let mut m = model(&device);
        let mut opt = Optimizer::new(config, wd);
        for _ in 0..steps {
            let loss = m.weight.val().powi_scalar(2).sum() + m.bias.val().sum();
            let grads = GradientsParams::from_grads(loss.backward(), &m);
            m = opt.step(0.1, m, grads);
        }
        (values(&m.weight), values(&m.bias))
    }

    #[track_caller]
    fn close(a: &[f32], b: &[f64]) {
        for (x, y) in a.iter().zip(b) {
            assert!((*x as f64 - y).abs() < 1e-6, "{a:?} vs {b:?}");
        }
    }

    #[test]
    fn updates_follow_the_textbook_rules() {
        // SGD, momentum 0.9, L2 decay 0.01 on weights only; two steps.
        let sgd = OptimizerConfig::Sgd {
            momentum: 0.9,
            nesterov: false,
        };
        let (w, b) = step(sgd, 0.01, 2);
        let mut expect_w = vec![];
        for w0 in [1.0f64, -2.0] {
            let g1 = 2.0 * w0 + 0.01 * w0;
            let w1 = w0 - 0.1 * g1;
            let g2 = 2.0 * w1 + 0.01 * w1;
            expect_w.push(w1 - 0.1 * (0.9 * g1 + g2));
        }
        close(&w, &expect_w);
        close(&b, &[0.5 - 0.1 - 0.1 * 1.9, 0.25 - 0.1 - 0.1 * 1.9]);
        // Adam, one step: the update is lr·sign(g) (plus decoupled decay on weights).
        let (w, b) = step(OptimizerConfig::default(), 0.01, 1);
        close(&w, &[1.0 - 0.1 * (1.0 + 0.01), -2.0 - 0.1 * (-1.0 - 0.02)]);
        close(&b, &[0.4, 0.15]);
    }

    #[test]
    fn state_round_trips() {
        let device = Device::flex().autodiff();
        let m = model(&device);
        let mut opt = Optimizer::new(OptimizerConfig::default(), 0.0);
        let loss = m.weight.val().powi_scalar(2).sum() + m.bias.val().sum();
        let grads = GradientsParams::from_grads(loss.backward(), &m);
        let _ = opt.step(0.1, m, grads);
        let (tensors, steps) = opt.state();
        assert_eq!((tensors.len(), steps), (4, 1));
        let mut back = Optimizer::new(OptimizerConfig::default(), 0.0);
        let params = module_tensors(&model(&device));
        back.load_state(tensors.clone(), steps, &params, &device)
            .unwrap();
        let mut a = back.state().0;
        let mut b = tensors;
        a.sort_by(|x, y| x.name.cmp(&y.name));
        b.sort_by(|x, y| x.name.cmp(&y.name));
        assert_eq!(a, b);
        let bad = vec![NamedTensor {
            name: "x.third".into(),
            shape: vec![1],
            data: vec![0.0],
        }];
        assert!(back.load_state(bad, 1, &params, &device).is_err());
        // A state whose size does not fit its parameter (a corrupt or foreign checkpoint).
        let mut short = a.clone();
        short[0].data.pop();
        short[0].shape = vec![short[0].data.len()];
        let err = back.load_state(short, 1, &params, &device).unwrap_err();
        assert!(
            err.to_string().contains("values but the parameter has"),
            "{err}"
        );
        let mut stray = a;
        stray[0].name = "nowhere.first".into();
        assert!(back.load_state(stray, 1, &params, &device).is_err());
    }
}
