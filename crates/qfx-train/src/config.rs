//! The run configuration: one TOML document for a training, PTQ or evaluation run. Every key
//! has a default, unknown keys are refused (a typo must not silently train something else),
//! and the CLI's flags override individual keys.
//!
//! ```toml
//! [model]
//! kind = "cnn"
//! in_channels = 1
//! image = 28
//! channels = [16, 32]
//! classes = 10
//!
//! [quant]
//! bits = 4
//!
//! [train]
//! epochs = 3
//! lr = 0.002
//! optimizer = { kind = "adam" }
//! schedule = { kind = "cosine" }
//! ```

use serde::{Deserialize, Serialize};

use crate::cost::CostConfig;
use crate::data::{DataSpec, Task};
use crate::error::TrainError;
use crate::layers::{QuantConfig, Widths};
use crate::models::ModelConfig;
use crate::optim::{OptimizerConfig, Schedule};
use crate::Calibration;

/// Everything a run needs.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RunConfig {
    /// Where the data lives: a path (IDX, CIFAR-10 binary or image folder; a table file) or a
    /// table of options ([`crate::data`]); `None`: the embedded Fashion-MNIST subset. A run
    /// records its paths absolute ([`RunConfig::with_absolute_data`]).
    pub data: Option<DataSpec>,
    /// The network.
    pub model: ModelConfig,
    /// The fixed-point formats (`enabled = false`: float training).
    pub quant: QuantConfig,
    /// Optimization.
    pub train: TrainConfig,
    /// How binary points are initialized (QAT) or chosen (PTQ).
    pub calibration: CalibrationConfig,
    /// Pixel normalization: mean and standard deviation per channel (or one for all), in units
    /// of the full pixel range. (Tables are standardized instead: `data.standardize`.)
    pub normalize: Normalize,
    /// The hardware cost in the loss, and the budget that steers its weight.
    #[serde(skip_serializing_if = "CostConfig::is_default")]
    pub cost: CostConfig,
}

/// The training loss.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Loss {
    /// Softmax cross-entropy against class labels (classification).
    #[default]
    CrossEntropy,
    /// Mean squared error against values (regression, autoencoders).
    Mse,
}

impl Loss {
    fn is_default(&self) -> bool {
        *self == Loss::CrossEntropy
    }

    /// The configuration's name for it.
    pub fn name(self) -> &'static str {
        match self {
            Loss::CrossEntropy => "cross_entropy",
            Loss::Mse => "mse",
        }
    }
}

/// Optimization settings.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TrainConfig {
    /// Passes over the training set.
    pub epochs: usize,
    /// Images per step.
    pub batch_size: usize,
    /// Base learning rate.
    pub lr: f64,
    /// Update rule.
    pub optimizer: OptimizerConfig,
    /// Learning-rate schedule.
    pub schedule: Schedule,
    /// Weight decay (weights only).
    pub weight_decay: f64,
    /// Seed of weight initialization, data order and augmentation.
    pub seed: u64,
    /// Use at most this many training images (0: all).
    pub train_limit: usize,
    /// Evaluate on at most this many test images after each epoch (0: all).
    pub test_limit: usize,
    /// Random-crop padding in pixels (0: no cropping).
    pub crop_padding: usize,
    /// Random horizontal flips.
    pub flip: bool,
    /// The loss: `cross_entropy` (the default, classification) or `mse` (outputs that are
    /// values: regression, autoencoders).
    #[serde(skip_serializing_if = "Loss::is_default")]
    pub loss: Loss,
}

impl Default for TrainConfig {
    fn default() -> TrainConfig {
        TrainConfig {
            epochs: 5,
            batch_size: 64,
            lr: 2e-3,
            optimizer: OptimizerConfig::default(),
            schedule: Schedule::default(),
            weight_decay: 0.0,
            seed: 1,
            train_limit: 0,
            test_limit: 0,
            crop_padding: 0,
            flip: false,
            loss: Loss::CrossEntropy,
        }
    }
}

/// Calibration settings.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct CalibrationConfig {
    /// Max-abs or a percentile of `|x|`.
    pub method: Calibration,
    /// Batches of training data used.
    pub batches: usize,
}

impl Default for CalibrationConfig {
    fn default() -> CalibrationConfig {
        CalibrationConfig {
            method: Calibration::MaxAbs,
            batches: 4,
        }
    }
}

/// Pixel normalization.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Normalize {
    /// Mean per channel, or one value.
    pub mean: Vec<f32>,
    /// Standard deviation per channel, or one value.
    pub std: Vec<f32>,
}

impl Default for Normalize {
    /// Fashion-MNIST's usual normalization.
    fn default() -> Normalize {
        Normalize {
            mean: vec![crate::train::FASHION_MNIST_NORM.0],
            std: vec![crate::train::FASHION_MNIST_NORM.1],
        }
    }
}

impl Normalize {
    /// As the IR's preprocessing step (what the engine and the HLS testbench apply).
    pub fn preprocess(&self) -> qfx_ir::Preprocess {
        qfx_ir::Preprocess {
            mean: self.mean.clone(),
            std: self.std.clone(),
            input: qfx_ir::PreprocessInput::Pixels,
        }
    }
}

/// Appends to `out` the keys (prefixed with `prefix`) whose values differ between `a` and `b`.
fn diff_tables(prefix: &str, a: &toml::Table, b: &toml::Table, out: &mut Vec<String>) {
    let show = |v: Option<&toml::Value>| v.map_or("(absent)".to_string(), |v| v.to_string());
    let keys = a.keys().chain(b.keys().filter(|k| !a.contains_key(*k)));
    for key in keys {
        let (va, vb) = (a.get(key), b.get(key));
        if va == vb {
            continue;
        }
        let path = format!("{prefix}{key}");
        match (va, vb) {
            (Some(toml::Value::Table(ta)), Some(toml::Value::Table(tb)))
                if ta.get("kind") == tb.get("kind") =>
            {
                diff_tables(&format!("{path}."), ta, tb, out)
            }
            _ => out.push(format!("{path}: {} → {}", show(va), show(vb))),
        }
    }
}

/// Merges `over` into `base` key by key. A table whose `kind` changes (a different model,
/// optimizer or schedule) is replaced whole: the old kind's keys would not fit the new one.
fn merge(base: &mut toml::Table, over: toml::Table) {
    for (key, value) in over {
        match (base.get_mut(&key), value) {
            (Some(toml::Value::Table(b)), toml::Value::Table(o))
                if o.get("kind").is_none() || o.get("kind") == b.get("kind") =>
            {
                merge(b, o)
            }
            (_, value) => {
                base.insert(key, value);
            }
        }
    }
}

/// A value in TOML syntax (`4`, `true`, `[16, 32]`, `{ kind = "sgd" }`), else a string. The
/// text must be one value: `0.1\ntrain.epochs = 9` would otherwise parse as a document whose
/// second key is silently dropped, so it is refused, as is a bare string with a line break.
fn parse_value(key: &str, text: &str) -> Result<toml::Value, TrainError> {
    let one_value = || {
        TrainError::Config(format!(
            "`{key}`: {text:?} is not one value (a line break starts another setting; give \
             each setting its own --set)"
        ))
    };
    match format!("v = {text}").parse::<toml::Table>() {
        Ok(mut t) => {
            let value = t.remove("v").ok_or_else(one_value)?;
            if !t.is_empty() {
                return Err(one_value());
            }
            Ok(value)
        }
        Err(_) if text.contains(['\n', '\r']) => Err(one_value()),
        Err(_) => Ok(toml::Value::String(text.to_string())),
    }
}

/// Sets `key` (dotted) in `doc` to `value`. Setting a table's `kind` to another kind (e.g.
/// `train.optimizer.kind = "sgd"` over the default Adam) replaces the table: the old kind's
/// keys (`beta1`…) do not fit the new one.
fn set_key(doc: &mut toml::Table, key: &str, value: toml::Value) -> Result<(), TrainError> {
    let parts: Vec<&str> = key.split('.').collect();
    if parts.iter().any(|p| p.is_empty()) {
        return Err(TrainError::Config(format!("bad setting name `{key}`")));
    }
    let (last, sections) = parts.split_last().expect("split yields one part at least");
    let mut table = doc;
    for p in sections {
        let entry = table
            .entry(p.to_string())
            .or_insert_with(|| toml::Value::Table(toml::Table::new()));
        table = entry
            .as_table_mut()
            .ok_or_else(|| TrainError::Config(format!("`{key}`: `{p}` is not a section")))?;
    }
    if *last == "kind" && !sections.is_empty() && table.get("kind") != Some(&value) {
        table.clear();
    }
    table.insert(last.to_string(), value);
    Ok(())
}

impl Default for RunConfig {
    fn default() -> RunConfig {
        RunConfig {
            data: None,
            model: ModelConfig::small_cnn(),
            quant: QuantConfig::default(),
            train: TrainConfig::default(),
            calibration: CalibrationConfig::default(),
            normalize: Normalize::default(),
            cost: CostConfig::default(),
        }
    }
}

impl RunConfig {
    /// Parses a TOML document (unknown keys are errors naming the key and line).
    pub fn from_toml(text: &str) -> Result<RunConfig, TrainError> {
        RunConfig::from_toml_with(text, &[])
    }

    /// Parses a TOML document, then applies `overrides` (`section.key = value`, the value in
    /// TOML syntax, or a bare string), as the CLI's flags do.
    pub fn from_toml_with(
        text: &str,
        overrides: &[(String, String)],
    ) -> Result<RunConfig, TrainError> {
        let user: toml::Table = text
            .parse()
            .map_err(|e: toml::de::Error| TrainError::Config(e.to_string()))?;
        // Defaults first, so a flag can set one key of a section the file does not mention.
        let mut doc: toml::Table = RunConfig::default()
            .to_toml()
            .parse()
            .expect("the default configuration parses");
        merge(&mut doc, user);
        // A table's kind first, so that the keys set for the new kind stay.
        let kinds_first = overrides
            .iter()
            .filter(|(k, _)| k.ends_with(".kind"))
            .chain(overrides.iter().filter(|(k, _)| !k.ends_with(".kind")));
        for (key, value) in kinds_first {
            set_key(&mut doc, key, parse_value(key, value)?)?;
        }
        let config: RunConfig = toml::Value::Table(doc)
            .try_into()
            .map_err(|e: toml::de::Error| TrainError::Config(e.to_string()))?;
        config.validate()?;
        Ok(config)
    }

    /// The configuration as TOML.
    pub fn to_toml(&self) -> String {
        toml::to_string_pretty(self).expect("configuration serializes")
    }

    /// The configuration with a relative `data` path made absolute (against the current
    /// directory, without resolving links): a run records where its data is, so that commands
    /// run from anywhere later (`qfx eval`, `--resume`) read the same data.
    pub fn with_absolute_data(&self) -> Result<RunConfig, TrainError> {
        let mut config = self.clone();
        if let Some(data) = &self.data {
            config.data = Some(data.absolute()?);
        }
        Ok(config)
    }

    /// What the network is trained to produce: the data table's `task`, else classification
    /// with the cross-entropy loss and regression with the MSE loss.
    pub fn task(&self) -> Task {
        match (self.data.as_ref().and_then(DataSpec::task), self.train.loss) {
            (Some(task), _) => task,
            (None, Loss::CrossEntropy) => Task::Classification,
            (None, Loss::Mse) => Task::Regression,
        }
    }

    /// The settings in which `self` and `other` differ, one `key: <self's> → <other's>` each
    /// (dotted keys in document order; a table whose `kind` differs is one entry).
    pub fn differences(&self, other: &RunConfig) -> Vec<String> {
        let as_table = |c: &RunConfig| -> toml::Table {
            c.to_toml().parse().expect("the configuration parses back")
        };
        let mut out = Vec::new();
        diff_tables("", &as_table(self), &as_table(other), &mut out);
        out
    }

    /// Number of outputs (classes, for a classifier): the built-in networks' `classes`, a
    /// described graph's last layer's size (0 when the graph does not resolve).
    pub fn classes(&self) -> usize {
        match &self.model {
            ModelConfig::Mlp { classes, .. }
            | ModelConfig::Cnn { classes, .. }
            | ModelConfig::Resnet { classes, .. }
            | ModelConfig::Bnn { classes, .. } => *classes,
            ModelConfig::Graph(spec) => spec
                .resolve()
                .map_or(0, |g| g.output_shape().iter().product()),
        }
    }

    /// Checks every setting.
    pub fn validate(&self) -> Result<(), TrainError> {
        self.model.validate()?;
        self.cost.validate()?;
        if self.cost.active() && !self.quant.enabled {
            return Err(TrainError::Config(
                "a cost term (cost.beta or a budget) needs a quantized run: a float model has \
                 no widths to trade"
                    .to_string(),
            ));
        }
        let learned = |w: Option<Widths>| w == Some(Widths::Learned);
        let any_learned = learned(Some(self.quant.widths))
            || self.quant.overrides.iter().any(|o| learned(o.widths));
        if self.cost.active() && !any_learned {
            return Err(TrainError::Config(
                "a cost term (cost.beta or a budget) needs learned widths (quant.widths = \
                 \"learned\", or --learn-widths): with every width fixed there is nothing to trade"
                    .to_string(),
            ));
        }
        self.quant.validate().map_err(|e| {
            // The quantizer's message names the width, not the setting: name the settings.
            let q = &self.quant;
            let widths: Vec<String> = [
                ("bits", Some(q.bits)),
                ("weight_bits", q.weight_bits),
                ("bias_bits", q.bias_bits),
                ("act_bits", q.act_bits),
                ("bn_bits", q.bn_bits),
                ("acc_bits", q.acc_bits),
            ]
            .iter()
            .filter_map(|(k, v)| v.map(|v| format!("quant.{k} = {v}")))
            .collect();
            TrainError::Config(format!("{e} (the settings: {})", widths.join(", ")))
        })?;
        let t = &self.train;
        let bad = |m: String| Err(TrainError::Config(m));
        if t.batch_size == 0 {
            return bad("train.batch_size must be positive".into());
        }
        if t.epochs == 0 {
            return bad("train.epochs must be at least 1".into());
        }
        match t.optimizer {
            OptimizerConfig::Adam {
                beta1,
                beta2,
                epsilon,
            } => {
                let unit = |b: f64| (0.0..1.0).contains(&b);
                if !(unit(beta1) && unit(beta2) && epsilon.is_finite() && epsilon > 0.0) {
                    return bad(format!(
                        "train.optimizer adam needs 0 ≤ beta1, beta2 < 1 and epsilon > 0, not \
                         beta1 = {beta1}, beta2 = {beta2}, epsilon = {epsilon}"
                    ));
                }
            }
            OptimizerConfig::Sgd { momentum, .. } => {
                if !(0.0..1.0).contains(&momentum) {
                    return bad(format!(
                        "train.optimizer sgd needs 0 ≤ momentum < 1, not {momentum}"
                    ));
                }
            }
        }
        if !(t.lr.is_finite() && t.lr > 0.0) {
            return bad(format!("train.lr must be a positive number, not {}", t.lr));
        }
        if !(t.weight_decay.is_finite() && t.weight_decay >= 0.0) {
            return bad(format!(
                "train.weight_decay must be ≥ 0, not {}",
                t.weight_decay
            ));
        }
        if let Schedule::Step {
            every_epochs,
            gamma,
        } = t.schedule
        {
            if every_epochs == 0 || !(gamma.is_finite() && gamma > 0.0) {
                return bad("train.schedule step needs every_epochs > 0 and gamma > 0".into());
            }
        }
        if let Calibration::Percentile(p) = self.calibration.method {
            if !(p > 0.0 && p <= 100.0) {
                return bad(format!(
                    "calibration percentile must be in (0, 100], not {p}"
                ));
            }
        }
        if self.calibration.batches == 0 {
            return bad("calibration.batches must be positive".into());
        }
        if let Some(data) = &self.data {
            data.validate()?;
        }
        match (self.task(), t.loss) {
            (Task::Classification, Loss::CrossEntropy)
            | (Task::Regression | Task::Autoencoder, Loss::Mse) => {}
            (task, loss) => {
                return bad(format!(
                    "data.task = \"{}\" needs train.loss = \"{}\", not \"{}\"",
                    task.name(),
                    match task {
                        Task::Classification => Loss::CrossEntropy.name(),
                        _ => Loss::Mse.name(),
                    },
                    loss.name()
                ))
            }
        }
        let n = &self.normalize;
        if n.mean.is_empty() || n.std.is_empty() {
            return bad("normalize.mean and normalize.std need at least one value".into());
        }
        n.preprocess()
            .validate(n.mean.len().max(n.std.len()))
            .map_err(|e| TrainError::Config(e.message))?;
        Ok(())
    }

    /// Checks that a split fits the model and the task: the sample shape, the normalization's
    /// channels (images), labels below the number of outputs (classification), as many
    /// outputs as target values (regression) or as input values (autoencoder). Errors name
    /// the split and, for tables, the file and line of the first sample that does not fit.
    pub fn check_data<'a>(
        &self,
        data: impl Into<qfx_data::Split<'a>>,
        split: &str,
    ) -> Result<(), TrainError> {
        let data = data.into();
        let shape = data.shape();
        let bad = |m: String| Err(TrainError::Data(format!("{split} data: {m}")));
        if data.is_empty() {
            return bad(format!("no {}", data.noun()));
        }
        if let Err(e) = self.model.preset(&shape) {
            return bad(e.to_string());
        }
        let outputs = self.classes();
        match data {
            qfx_data::Split::Images(_) => {
                let c = shape[0];
                let n = &self.normalize;
                for (what, v) in [("mean", &n.mean), ("std", &n.std)] {
                    if v.len() != 1 && v.len() != c {
                        return bad(format!(
                            "normalize.{what} has {} values for {c}-channel images",
                            v.len()
                        ));
                    }
                }
            }
            qfx_data::Split::Table(_) => {
                if self.normalize != Normalize::default() {
                    return bad("[normalize] applies to images; a table's features are \
                                standardized instead (data.standardize)"
                        .into());
                }
                if self.train.crop_padding > 0 || self.train.flip {
                    return bad(
                        "train.crop_padding and train.flip augment images; a table's \
                                samples are used as they are"
                            .into(),
                    );
                }
            }
        }
        match self.task() {
            Task::Classification => {
                if !data.has_labels() {
                    return bad("classification needs class labels, and these samples have \
                                none"
                        .into());
                }
                if let Err(e) = data.check_labels(outputs) {
                    return bad(e.to_string());
                }
            }
            Task::Regression => {
                let width = data.value_width();
                if width == 0 {
                    return bad(format!(
                        "regression (train.loss = \"mse\") needs target values, and these {} \
                         have class labels (images have labels only: for an autoencoder set \
                         data = {{ path = …, task = \"autoencoder\" }})",
                        data.noun()
                    ));
                }
                if width != outputs {
                    return bad(format!(
                        "{width} target value(s) per sample but the model has {outputs} outputs"
                    ));
                }
            }
            Task::Autoencoder => {
                let n = data.sample_len();
                if n != outputs {
                    return bad(format!(
                        "an autoencoder reconstructs its {n} input values, but the model has \
                         {outputs} outputs"
                    ));
                }
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::PathBuf;

    #[test]
    fn a_full_document_and_overrides_parse() {
        let text = r#"
            data = "data/cifar-10-batches-bin"
            [model]
            kind = "resnet"
            in_channels = 3
            widths = [16, 32, 64]
            blocks_per_stage = 3
            classes = 10
            [train]
            epochs = 160
            optimizer = { kind = "sgd", momentum = 0.9 }
            schedule = { kind = "step", every_epochs = 30, gamma = 0.1 }
            crop_padding = 4
            flip = true
            [calibration]
            method = { percentile = 99.9 }
            [normalize]
            mean = [0.491, 0.482, 0.447]
            std = [0.247, 0.243, 0.262]
        "#;
        let over = [("quant.bits".to_string(), "6".to_string())];
        let c = RunConfig::from_toml_with(text, &over).unwrap();
        assert_eq!(c.model, ModelConfig::resnet20());
        assert_eq!(c.quant.bits, 6);
        assert_eq!(c.train.epochs, 160);
        assert_eq!(c.train.batch_size, TrainConfig::default().batch_size);
        assert_eq!(c.calibration.method, Calibration::Percentile(99.9));
        assert!(matches!(
            c.train.optimizer,
            OptimizerConfig::Sgd {
                nesterov: false,
                ..
            }
        ));
        // What is written back reads back the same.
        assert_eq!(RunConfig::from_toml(&c.to_toml()).unwrap(), c);
        // One flag can set a key of a section the document does not mention.
        let c = RunConfig::from_toml_with("", &[("model.channels".into(), "[4, 8]".into())]);
        assert!(matches!(
            c.unwrap().model,
            ModelConfig::Cnn {
                channels: [4, 8],
                ..
            }
        ));
    }

    #[test]
    fn bad_documents_name_the_problem() {
        #[track_caller]
        fn refused(text: &str, over: &[(&str, &str)], want: &str) {
            let over: Vec<(String, String)> = over
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect();
            let err = RunConfig::from_toml_with(text, &over)
                .unwrap_err()
                .to_string();
            assert!(err.contains(want), "`{err}` lacks `{want}`");
        }
        refused("[train]\nepochz = 3", &[], "epochz");
        refused("[train\n", &[], "configuration");
        refused("", &[("train.lr", "-1")], "train.lr");
        refused("", &[("train.batch_size", "0")], "batch_size");
        refused(
            "",
            &[("calibration.method", "{ percentile = 120.0 }")],
            "percentile",
        );
        refused("", &[("normalize.std", "[0.0]")], "std");
        refused("", &[("train..lr", "1")], "bad setting name");
        refused("", &[("train.lr.x", "1")], "not a section");
        refused("", &[("quant.bits", "0")], "quant.bits = 0");
        refused("", &[("quant.acc_bits", "200")], "quant.acc_bits = 200");
        refused(
            "",
            &[("train.epochs", "0")],
            "train.epochs must be at least 1",
        );
        refused(
            "",
            &[("train.optimizer", "{ kind = \"adam\", beta2 = 1.0 }")],
            "beta2 = 1",
        );
        refused(
            "",
            &[("train.optimizer", "{ kind = \"sgd\", momentum = -0.5 }")],
            "momentum < 1, not -0.5",
        );
        // A line break cannot smuggle a second setting in, nor make a string of two lines.
        refused(
            "",
            &[("train.lr", "0.1\ntrain.epochs = 9")],
            "not one value",
        );
        refused("", &[("data", "a\nb")], "not one value");
        refused(
            "",
            &[("train.lr", "nan")],
            "train.lr must be a positive number, not NaN",
        );
    }

    #[test]
    fn changing_a_kind_drops_the_old_kinds_keys() {
        let set = |pairs: &[(&str, &str)]| {
            let over: Vec<(String, String)> = pairs
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect();
            RunConfig::from_toml_with("", &over)
        };
        let c = set(&[("train.optimizer.kind", "sgd")]).unwrap();
        assert_eq!(
            c.train.optimizer,
            OptimizerConfig::Sgd {
                momentum: 0.9,
                nesterov: false
            }
        );
        // The kind applies first, whatever the order of the settings.
        let c = set(&[
            ("train.optimizer.momentum", "0.5"),
            ("train.optimizer.kind", "sgd"),
        ])
        .unwrap();
        assert!(
            matches!(c.train.optimizer, OptimizerConfig::Sgd { momentum, .. } if momentum == 0.5)
        );
        // The same kind keeps the other keys.
        let c = set(&[
            ("train.optimizer.kind", "adam"),
            ("train.optimizer.beta1", "0.8"),
        ])
        .unwrap();
        assert!(matches!(c.train.optimizer, OptimizerConfig::Adam { beta1, .. } if beta1 == 0.8));
    }

    #[test]
    fn differences_name_each_key_with_both_values() {
        let a = RunConfig::default();
        assert!(a.differences(&a).is_empty());
        let mut b = a.clone();
        b.train.lr = 0.5;
        b.quant.bits = 6;
        b.train.optimizer = OptimizerConfig::Sgd {
            momentum: 0.9,
            nesterov: false,
        };
        let d = a.differences(&b);
        assert_eq!(d.len(), 3, "{d:?}");
        assert!(d.contains(&"quant.bits: 8 → 6".to_string()), "{d:?}");
        assert!(d.contains(&"train.lr: 0.002 → 0.5".to_string()), "{d:?}");
        assert!(
            d.iter().any(|x| x.starts_with("train.optimizer: {")),
            "{d:?}"
        );
    }

    #[test]
    fn data_is_a_path_or_a_table_of_options() {
        use crate::data::Columns;
        // A path reads and writes as a string, as before tables existed.
        let c = RunConfig::from_toml("data = \"some/dir\"").unwrap();
        assert_eq!(c.data, Some(DataSpec::Path("some/dir".into())));
        assert!(
            c.to_toml().starts_with("data = \"some/dir\""),
            "{}",
            c.to_toml()
        );
        let c = RunConfig::from_toml(
            "data = { path = \"t.csv\", label = [\"y1\", \"y2\"], test_fraction = 0.3, \
             split_seed = 9 }\n[train]\nloss = \"mse\"",
        )
        .unwrap();
        let t = c.data.as_ref().unwrap().table().unwrap();
        assert_eq!(t.label, Some(Columns::Many(vec!["y1".into(), "y2".into()])));
        assert_eq!((t.test_fraction, t.split_seed), (Some(0.3), 9));
        assert_eq!(c.task(), Task::Regression);
        // What is written reads back the same (also as the JSON of a checkpoint).
        assert_eq!(RunConfig::from_toml(&c.to_toml()).unwrap(), c);
        let json = serde_json::to_string(&c).unwrap();
        assert_eq!(serde_json::from_str::<RunConfig>(&json).unwrap(), c);
        // The default loss is left out of the document, as before it existed.
        assert!(!RunConfig::default().to_toml().contains("loss"));
        // One key of the table from the command line.
        let c = RunConfig::from_toml_with(
            "data = { path = \"t.csv\" }",
            &[("data.test_fraction".into(), "0.5".into())],
        )
        .unwrap();
        assert_eq!(c.data.unwrap().table().unwrap().test_fraction, Some(0.5));
        #[track_caller]
        fn refused(text: &str, want: &str) {
            let err = RunConfig::from_toml(text).unwrap_err().to_string();
            assert!(err.contains(want), "`{err}` lacks `{want}`");
        }
        refused(
            "data = { path = \"t.csv\", lable = \"y\" }",
            "unknown field `lable`",
        );
        refused("data = { label = \"y\" }", "missing field `path`");
        refused("data = 3", "a path, or a table");
        refused(
            "data = { path = \"t.csv\", test_fraction = 0 }",
            "data.test_fraction must be between 0 and 1",
        );
        refused(
            "data = { path = \"t.csv\", test = \"u.csv\", test_fraction = 0.2 }",
            "either `test`",
        );
        refused(
            "data = { path = \"images/\", label = \"y\" }",
            "data.label applies to tables",
        );
        refused(
            "data = { path = \"t.csv\", task = \"regression\" }",
            "data.task = \"regression\" needs train.loss = \"mse\", not \"cross_entropy\"",
        );
        refused(
            "data = { path = \"t.csv\", task = \"classification\" }\n[train]\nloss = \"mse\"",
            "needs train.loss = \"cross_entropy\"",
        );
        refused("[train]\nloss = \"l1\"", "unknown variant `l1`");
    }

    #[test]
    fn a_relative_data_path_becomes_absolute() {
        let c = RunConfig {
            data: Some(DataSpec::Path(PathBuf::from("data/x"))),
            ..RunConfig::default()
        };
        let abs = c
            .with_absolute_data()
            .unwrap()
            .data
            .unwrap()
            .path()
            .to_path_buf();
        assert!(
            abs.is_absolute() && abs.ends_with("data/x"),
            "{}",
            abs.display()
        );
        // Every path of a table, none of its other settings.
        let c = RunConfig::from_toml(
            "data = { path = \"x.npy\", targets = \"y.npy\", test = \"xt.npy\", \
             test_targets = \"yt.npy\", split_seed = 3 }",
        )
        .unwrap();
        let t = c.with_absolute_data().unwrap().data.unwrap();
        let t = t.table().unwrap();
        for p in [
            &t.path,
            t.targets.as_ref().unwrap(),
            t.test.as_ref().unwrap(),
        ] {
            assert!(p.is_absolute(), "{}", p.display());
        }
        assert!(t.test_targets.as_ref().unwrap().is_absolute());
        assert_eq!(t.split_seed, 3);
        assert_eq!(
            RunConfig::default().with_absolute_data().unwrap().data,
            None
        );
    }
}
