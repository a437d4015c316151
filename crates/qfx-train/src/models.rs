//! The network of a run: a layer graph the user describes (`kind = "graph"`, see
//! [`crate::graph`]) or one of the built-in networks — an MLP, a small CNN, ResNet-20 and a
//! binarized residual network ([`crate::bnn`]) — which are presets written in the same
//! description. The same module tree serves the float model (quantizers disabled) and the
//! quantized one.

use burn::tensor::module::max_pool2d;
use burn::tensor::ops::MaxPoolOptions;
use burn::tensor::{Device, Tensor};
use qfx_fixed::OverflowRule;
use serde::{Deserialize, Serialize};

use crate::error::TrainError;
use crate::graph::presets::{self, Preset};
use crate::graph::{GraphModel, GraphSpec};
use crate::layers::QuantConfig;
use crate::quantizer::QTensor;
use crate::safetensors::NamedTensor;

/// The trainable network of a run.
pub type Model = GraphModel;

/// ResNet shortcut when the shape changes between stages.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum Shortcut {
    /// Option A: subsample by 2 and pad the new channels with zeros (parameter-free).
    #[default]
    A,
    /// Option B: a strided 1×1 convolution and BatchNorm.
    B,
}

/// Which network, and its shape.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum ModelConfig {
    /// Fully connected layers with ReLU between them, on flattened images.
    Mlp {
        /// Input features (`channels · height · width`).
        inputs: usize,
        /// Hidden layer widths.
        hidden: Vec<usize>,
        /// Output classes.
        classes: usize,
    },
    /// Two conv–BN–ReLU–maxpool blocks and a linear classifier, for `image × image` inputs.
    Cnn {
        /// Input channels.
        in_channels: usize,
        /// Input height and width (divisible by 4).
        image: usize,
        /// Channels of the two conv blocks.
        channels: [usize; 2],
        /// Output classes.
        classes: usize,
    },
    /// ResNet-20 (He et al. 2016, CIFAR variant): 3 stages of basic blocks.
    Resnet {
        /// Input channels.
        in_channels: usize,
        /// Channels of the three stages (16, 32, 64 for ResNet-20).
        widths: [usize; 3],
        /// Basic blocks per stage (3 for ResNet-20: 6·3 + 2 = 20 layers).
        blocks_per_stage: usize,
        /// Output classes.
        classes: usize,
        /// Shortcut type.
        #[serde(default)]
        shortcut: Shortcut,
    },
    /// A binarized residual network (ReActNet/FracBNN style, see [`crate::bnn`]): fixed-point
    /// stem, three stages of binary blocks, global average pooling, fixed-point classifier.
    Bnn {
        /// Input channels.
        in_channels: usize,
        /// Channels of the three stages (non-decreasing: the shortcuts pad channels).
        widths: [usize; 3],
        /// Binary blocks per stage.
        blocks_per_stage: usize,
        /// Stride of the stem convolution (2 halves every feature map: 28×28 inputs then end
        /// at 4×4, a power-of-two pooling window).
        #[serde(default = "one")]
        stem_stride: usize,
        /// Output classes.
        classes: usize,
    },
    /// A layer graph described layer by layer (see [`crate::graph::GraphSpec`]).
    Graph(GraphSpec),
}

/// A shape as people write it: `1×28×28`.
fn dims(shape: &[usize]) -> String {
    shape
        .iter()
        .map(|d| d.to_string())
        .collect::<Vec<_>>()
        .join("×")
}

fn one() -> usize {
    1
}

impl ModelConfig {
    /// ResNet-20 for CIFAR-10 shapes.
    pub fn resnet20() -> ModelConfig {
        ModelConfig::Resnet {
            in_channels: 3,
            widths: [16, 32, 64],
            blocks_per_stage: 3,
            classes: 10,
            shortcut: Shortcut::A,
        }
    }

    /// The small CNN for 28×28 grey images.
    pub fn small_cnn() -> ModelConfig {
        ModelConfig::Cnn {
            in_channels: 1,
            image: 28,
            channels: [16, 32],
            classes: 10,
        }
    }

    /// The binarized network for 28×28 grey images (stem stride 2; see [`ModelConfig::Bnn`]).
    pub fn small_bnn() -> ModelConfig {
        ModelConfig::Bnn {
            in_channels: 1,
            widths: [32, 64, 128],
            blocks_per_stage: 1,
            stem_stride: 2,
            classes: 10,
        }
    }

    /// Checks the shapes make sense.
    pub fn validate(&self) -> Result<(), TrainError> {
        let bad = |m: &str| Err(TrainError::Shape(m.to_string()));
        match self {
            ModelConfig::Mlp {
                inputs,
                hidden,
                classes,
            } => {
                if *inputs == 0 || *classes == 0 || hidden.contains(&0) {
                    return bad("MLP sizes must be positive");
                }
            }
            ModelConfig::Cnn {
                in_channels,
                image,
                channels,
                classes,
            } => {
                if *in_channels == 0
                    || *classes == 0
                    || channels.contains(&0)
                    || *image == 0
                    || image % 4 != 0
                {
                    return bad("CNN needs positive sizes and an image size divisible by 4");
                }
            }
            ModelConfig::Resnet {
                in_channels,
                widths,
                blocks_per_stage,
                classes,
                shortcut,
            } => {
                if *in_channels == 0
                    || *classes == 0
                    || widths.contains(&0)
                    || *blocks_per_stage == 0
                {
                    return bad("ResNet sizes must be positive");
                }
                if *shortcut == Shortcut::A && widths.windows(2).any(|w| w[1] < w[0]) {
                    return bad(
                        "option-A shortcuts pad channels: stage widths must be non-decreasing",
                    );
                }
            }
            ModelConfig::Bnn {
                in_channels,
                widths,
                blocks_per_stage,
                stem_stride,
                classes,
            } => {
                if *in_channels == 0
                    || *classes == 0
                    || widths.contains(&0)
                    || *blocks_per_stage == 0
                    || *stem_stride == 0
                {
                    return bad("BNN sizes and the stem stride must be positive");
                }
                if widths.windows(2).any(|w| w[1] < w[0]) {
                    return bad("BNN shortcuts pad channels: stage widths must be non-decreasing");
                }
            }
            ModelConfig::Graph(spec) => {
                spec.resolve()?;
            }
        }
        Ok(())
    }

    /// The network as a layer graph for samples of shape `input` (the built-in networks adapt
    /// to it; a described graph must declare exactly it).
    pub fn preset(&self, input: &[usize]) -> Result<Preset, TrainError> {
        self.validate()?;
        let bad = |m: String| Err(TrainError::Data(m));
        let channels = input.first().copied().unwrap_or(0);
        Ok(match self {
            ModelConfig::Mlp {
                inputs,
                hidden,
                classes,
            } => {
                let n: usize = input.iter().product();
                if n != *inputs {
                    return bad(format!(
                        "samples are {} = {n} values, the MLP takes {inputs} inputs",
                        dims(input)
                    ));
                }
                presets::mlp(input, hidden, *classes)
            }
            ModelConfig::Cnn {
                in_channels,
                image,
                channels,
                classes,
            } => {
                if input != [*in_channels, *image, *image] {
                    return bad(format!(
                        "samples are {}, the CNN expects {in_channels}×{image}×{image}",
                        dims(input)
                    ));
                }
                presets::cnn(input, *channels, *classes)
            }
            ModelConfig::Resnet {
                in_channels,
                widths,
                blocks_per_stage,
                classes,
                shortcut,
            } => {
                if input.len() != 3 || channels != *in_channels {
                    return bad(format!(
                        "samples are {}, the ResNet expects {in_channels}-channel images",
                        dims(input)
                    ));
                }
                presets::resnet(input, *widths, *blocks_per_stage, *classes, *shortcut)
            }
            ModelConfig::Bnn {
                in_channels,
                widths,
                blocks_per_stage,
                stem_stride,
                classes,
            } => {
                if input.len() != 3 || channels != *in_channels {
                    return bad(format!(
                        "samples are {}, the binarized network expects {in_channels}-channel \
                         images",
                        dims(input)
                    ));
                }
                presets::bnn(input, *widths, *blocks_per_stage, *stem_stride, *classes)
            }
            ModelConfig::Graph(spec) => {
                if spec.input != input {
                    return bad(format!(
                        "samples are {}, the network's input is {}",
                        dims(input),
                        dims(&spec.input)
                    ));
                }
                Preset {
                    spec: spec.clone(),
                    init_order: None,
                    legacy: vec![None; spec.layers.len()],
                }
            }
        })
    }

    /// Builds the model for samples of shape `input`, every layer with the formats `q` gives
    /// its name. Everything is checked before any tensor is allocated: the graph (names,
    /// references, shapes), the quantization settings of every layer, and that the parameters
    /// and activations fit this machine's memory.
    pub fn init(
        &self,
        q: &QuantConfig,
        input: &[usize],
        device: &Device,
    ) -> Result<Model, TrainError> {
        q.validate()?;
        if q.enabled && !q.path.fused(device) {
            // Training formats have no saturation bits (N = 0).
            for o in [q.overflow, q.acc_overflow] {
                if o.rule(0) == OverflowRule::General {
                    return Err(TrainError::Spec(format!(
                        "{o} is only implemented by the fused quantizer (Flex CPU backend), not by the \
                         composed one this device uses"
                    )));
                }
            }
        }
        let preset = self.preset(input)?;
        let graph = preset.spec.resolve()?;
        q.validate_overrides(graph.nodes.iter().map(|n| n.name.as_str()))?;
        Ok(GraphModel::new(
            graph,
            q,
            preset.init_order.as_deref(),
            device,
        ))
    }

    /// Renames the tensors of a checkpoint written before the built-in networks became layer
    /// graphs (`Cnn.convs.0.weight`, optimizer state `Cnn.convs.0.weight.m`, …) to the paths of
    /// today's modules (`layers.1.Conv2d.weight`, …); other names pass unchanged.
    pub fn rename_legacy_tensors(
        &self,
        input: &[usize],
        tensors: Vec<NamedTensor>,
    ) -> Result<Vec<NamedTensor>, TrainError> {
        let preset = self.preset(input)?;
        let renames: Vec<(String, String)> = preset
            .legacy
            .iter()
            .enumerate()
            .filter_map(|(i, old)| {
                let old = old.as_ref()?;
                Some((
                    format!("{old}."),
                    GraphModel::module_path(i, &preset.spec.layers[i].op) + ".",
                ))
            })
            .collect();
        Ok(tensors
            .into_iter()
            .map(|mut t| {
                if let Some((old, new)) = renames
                    .iter()
                    .find(|(old, _)| t.name.starts_with(old.as_str()))
                {
                    t.name = format!("{new}{}", &t.name[old.len()..]);
                }
                t
            })
            .collect())
    }

    /// Number of outputs of the network (classes, for a classifier).
    pub fn outputs(&self, input: &[usize]) -> Result<usize, TrainError> {
        Ok(self
            .preset(input)?
            .spec
            .resolve()?
            .output_shape()
            .iter()
            .product())
    }
}

/// The option-A shortcut: subsample by `stride`, then append `pad_channels` zero channels. It
/// keeps the input's grid (subsampling and zeros are exact).
pub(crate) fn option_a(x: QTensor<4>, stride: usize, pad_channels: usize) -> QTensor<4> {
    let mut v = x.value;
    if stride != 1 {
        v = max_pool2d(v, MaxPoolOptions::new([1, 1]).with_stride([stride; 2]));
    }
    if pad_channels > 0 {
        let [n, _, h, w] = v.dims();
        let zeros = Tensor::<4>::zeros([n, pad_channels, h, w], &v.device());
        v = Tensor::cat(vec![v, zeros], 1);
    }
    QTensor {
        value: v,
        frac: x.frac,
    }
}
