//! Models built from a serde configuration: an MLP, a small CNN for 28×28 inputs, ResNet-20
//! for 32×32×3 and a binarized residual network ([`crate::bnn`]). The same module tree serves
//! the float model (quantizers disabled) and the quantized one.

use burn::module::Module;
use burn::tensor::module::max_pool2d;
use burn::tensor::ops::MaxPoolOptions;
use burn::tensor::{Device, Tensor};
use serde::{Deserialize, Serialize};

use crate::bnn::Bnn;
use crate::error::TrainError;
use crate::layers::{
    QAdd, QBatchNorm2d, QConv2d, QGlobalAvgPool, QLinear, QMaxPool2d, QReLU, QuantConfig,
};
use crate::quant::{is_flex, QuantPath};
use crate::quantizer::{Calibration, QTensor, Quantizer};
use qfx_fixed::OverflowRule;

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
        }
        Ok(())
    }

    /// Builds the model with formats from `q`.
    pub fn init(&self, q: &QuantConfig, device: &Device) -> Result<Model, TrainError> {
        self.validate()?;
        q.validate()?;
        let composed =
            q.path == QuantPath::Composed || (q.path == QuantPath::Auto && !is_flex(device));
        if q.enabled && composed {
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
        Ok(match self {
            ModelConfig::Mlp {
                inputs,
                hidden,
                classes,
            } => Model::Mlp(Mlp::new(*inputs, hidden, *classes, q, device)),
            ModelConfig::Cnn {
                in_channels,
                image,
                channels,
                classes,
            } => Model::Cnn(Cnn::new(
                *in_channels,
                *image,
                *channels,
                *classes,
                q,
                device,
            )),
            ModelConfig::Resnet {
                in_channels,
                widths,
                blocks_per_stage,
                classes,
                shortcut,
            } => Model::Resnet(Resnet::new(
                *in_channels,
                *widths,
                *blocks_per_stage,
                *classes,
                *shortcut,
                q,
                device,
            )),
            ModelConfig::Bnn {
                in_channels,
                widths,
                blocks_per_stage,
                stem_stride,
                classes,
            } => Model::Bnn(Bnn::new(
                *in_channels,
                *widths,
                *blocks_per_stage,
                *stem_stride,
                *classes,
                q,
                device,
            )),
        })
    }
}

/// Any of the configured networks.
#[derive(Module, Debug)]
#[allow(clippy::large_enum_variant)] // one model per run: its size does not matter
pub enum Model {
    /// See [`Mlp`].
    Mlp(Mlp),
    /// See [`Cnn`].
    Cnn(Cnn),
    /// See [`Resnet`].
    Resnet(Resnet),
    /// See [`Bnn`].
    Bnn(Bnn),
}

impl Model {
    /// Images `[batch, c, h, w]` (normalized floats) to logits `[batch, classes]`.
    pub fn forward(&self, x: Tensor<4>) -> Tensor<2> {
        match self {
            Model::Mlp(m) => m.forward(x),
            Model::Cnn(m) => m.forward(x),
            Model::Resnet(m) => m.forward(x),
            Model::Bnn(m) => m.forward(x),
        }
    }

    /// Post-training calibration: every binary point from the values seen on `x`.
    pub fn calibrate(&mut self, x: Tensor<4>, method: Calibration) {
        match self {
            Model::Mlp(m) => m.calibrate(x, method),
            Model::Cnn(m) => m.calibrate(x, method),
            Model::Resnet(m) => m.calibrate(x, method),
            Model::Bnn(m) => m.calibrate(x, method),
        }
    }
}

/// Input quantizer → (QLinear → QReLU)* → QLinear.
#[derive(Module, Debug)]
pub struct Mlp {
    /// Input quantizer.
    pub input: Quantizer,
    /// Hidden layers.
    pub hidden: Vec<QLinear>,
    /// Their activations.
    pub relus: Vec<QReLU>,
    /// Classifier.
    pub head: QLinear,
}

impl Mlp {
    fn new(
        inputs: usize,
        hidden: &[usize],
        classes: usize,
        q: &QuantConfig,
        device: &Device,
    ) -> Mlp {
        let mut layers = Vec::new();
        let mut relus = Vec::new();
        let mut d = inputs;
        for &h in hidden {
            layers.push(QLinear::new(d, h, q, device));
            relus.push(QReLU::new(q, device));
            d = h;
        }
        Mlp {
            input: q.act_quantizer(true, device),
            hidden: layers,
            relus,
            head: QLinear::new(d, classes, q, device),
        }
    }

    fn flatten(x: Tensor<4>) -> Tensor<2> {
        let [n, c, h, w] = x.dims();
        x.reshape([n, c * h * w])
    }

    fn forward(&self, x: Tensor<4>) -> Tensor<2> {
        let mut t = self.input.forward_q(Self::flatten(x));
        for (l, r) in self.hidden.iter().zip(&self.relus) {
            t = r.forward(l.forward(t));
        }
        self.head.forward(t).value
    }

    fn calibrate(&mut self, x: Tensor<4>, method: Calibration) {
        let x = Self::flatten(x);
        self.input.calibrate(&x, method);
        let mut t = self.input.forward_q(x);
        for (l, r) in self.hidden.iter_mut().zip(self.relus.iter_mut()) {
            t = r.calibrate(l.calibrate(t, method), method);
        }
        self.head.calibrate(t, method);
    }
}

/// conv–BN–ReLU–maxpool ×2, then a linear classifier.
#[derive(Module, Debug)]
pub struct Cnn {
    /// Input quantizer.
    pub input: Quantizer,
    /// Convolutions (no bias: BatchNorm follows).
    pub convs: Vec<QConv2d>,
    /// BatchNorms.
    pub norms: Vec<QBatchNorm2d>,
    /// Activations.
    pub relus: Vec<QReLU>,
    /// 2×2 max pooling.
    pub pool: QMaxPool2d,
    /// Classifier.
    pub head: QLinear,
}

impl Cnn {
    fn new(
        in_channels: usize,
        image: usize,
        channels: [usize; 2],
        classes: usize,
        q: &QuantConfig,
        device: &Device,
    ) -> Cnn {
        let convs = vec![
            QConv2d::new(in_channels, channels[0], 3, 1, 1, false, q, device),
            QConv2d::new(channels[0], channels[1], 3, 1, 1, false, q, device),
        ];
        let norms = channels
            .iter()
            .map(|&c| QBatchNorm2d::new(c, q, device))
            .collect();
        let relus = channels.iter().map(|_| QReLU::new(q, device)).collect();
        let flat = channels[1] * (image / 4) * (image / 4);
        Cnn {
            input: q.act_quantizer(true, device),
            convs,
            norms,
            relus,
            pool: QMaxPool2d { kernel: 2 },
            head: QLinear::new(flat, classes, q, device),
        }
    }

    fn flatten(t: QTensor<4>) -> QTensor<2> {
        let [n, c, h, w] = t.value.dims();
        QTensor {
            value: t.value.reshape([n, c * h * w]),
            frac: t.frac,
        }
    }

    fn forward(&self, x: Tensor<4>) -> Tensor<2> {
        let mut t = self.input.forward_q(x);
        for i in 0..self.convs.len() {
            t = self
                .pool
                .forward(self.relus[i].forward(self.norms[i].forward(self.convs[i].forward(t))));
        }
        self.head.forward(Self::flatten(t)).value
    }

    fn calibrate(&mut self, x: Tensor<4>, method: Calibration) {
        self.input.calibrate(&x, method);
        let mut t = self.input.forward_q(x);
        for i in 0..self.convs.len() {
            t = self.convs[i].calibrate(t, method);
            t = self.norms[i].calibrate(t, method);
            t = self.relus[i].calibrate(t, method);
            t = self.pool.forward(t);
        }
        self.head.calibrate(Self::flatten(t), method);
    }
}

/// A basic residual block: conv–BN–ReLU–conv–BN, plus the shortcut, then ReLU.
#[derive(Module, Debug)]
pub struct BasicBlock {
    /// First 3×3 convolution (stride 1 or 2).
    pub conv1: QConv2d,
    /// Its BatchNorm.
    pub bn1: QBatchNorm2d,
    /// Activation after the first convolution.
    pub relu1: QReLU,
    /// Second 3×3 convolution.
    pub conv2: QConv2d,
    /// Its BatchNorm.
    pub bn2: QBatchNorm2d,
    /// Option B projection, when the shape changes.
    pub proj: Option<(QConv2d, QBatchNorm2d)>,
    /// Option A: channels to zero-pad when the shape changes.
    pub pad_channels: usize,
    /// Stride of the block.
    pub stride: usize,
    /// The residual addition.
    pub add: QAdd,
    /// Activation after the addition.
    pub relu2: QReLU,
}

impl BasicBlock {
    fn new(
        c_in: usize,
        c_out: usize,
        stride: usize,
        shortcut: Shortcut,
        q: &QuantConfig,
        device: &Device,
    ) -> BasicBlock {
        let reshape = stride != 1 || c_in != c_out;
        let proj = (reshape && shortcut == Shortcut::B).then(|| {
            (
                QConv2d::new(c_in, c_out, 1, stride, 0, false, q, device),
                QBatchNorm2d::new(c_out, q, device),
            )
        });
        BasicBlock {
            conv1: QConv2d::new(c_in, c_out, 3, stride, 1, false, q, device),
            bn1: QBatchNorm2d::new(c_out, q, device),
            relu1: QReLU::new(q, device),
            conv2: QConv2d::new(c_out, c_out, 3, 1, 1, false, q, device),
            bn2: QBatchNorm2d::new(c_out, q, device),
            pad_channels: if reshape && shortcut == Shortcut::A {
                c_out - c_in
            } else {
                0
            },
            proj,
            stride,
            add: QAdd::new(q, device),
            relu2: QReLU::new(q, device),
        }
    }

    /// The shortcut branch.
    fn shortcut(&self, x: QTensor<4>) -> QTensor<4> {
        match &self.proj {
            Some((conv, bn)) => bn.forward(conv.forward(x)),
            None => option_a(x, self.stride, self.pad_channels),
        }
    }

    fn forward(&self, x: QTensor<4>) -> QTensor<4> {
        let main = self.bn2.forward(
            self.conv2.forward(
                self.relu1
                    .forward(self.bn1.forward(self.conv1.forward(x.clone()))),
            ),
        );
        self.relu2.forward(self.add.forward(main, self.shortcut(x)))
    }

    fn calibrate(&mut self, x: QTensor<4>, method: Calibration) -> QTensor<4> {
        let t = self.conv1.calibrate(x.clone(), method);
        let t = self.bn1.calibrate(t, method);
        let t = self.relu1.calibrate(t, method);
        let t = self.conv2.calibrate(t, method);
        let main = self.bn2.calibrate(t, method);
        let short = match &mut self.proj {
            Some((conv, bn)) => {
                let t = conv.calibrate(x, method);
                bn.calibrate(t, method)
            }
            None => self.shortcut(x),
        };
        let sum = self.add.calibrate(main, short, method);
        self.relu2.calibrate(sum, method)
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

/// ResNet for 32×32 inputs: stem conv–BN–ReLU, three stages of basic blocks, global average
/// pooling, linear classifier.
#[derive(Module, Debug)]
pub struct Resnet {
    /// Input quantizer.
    pub input: Quantizer,
    /// Stem convolution.
    pub stem: QConv2d,
    /// Stem BatchNorm.
    pub stem_bn: QBatchNorm2d,
    /// Stem activation.
    pub stem_relu: QReLU,
    /// All basic blocks, stage after stage.
    pub blocks: Vec<BasicBlock>,
    /// Global average pooling.
    pub pool: QGlobalAvgPool,
    /// Classifier.
    pub head: QLinear,
}

impl Resnet {
    fn new(
        in_channels: usize,
        widths: [usize; 3],
        per_stage: usize,
        classes: usize,
        shortcut: Shortcut,
        q: &QuantConfig,
        device: &Device,
    ) -> Resnet {
        let mut blocks = Vec::new();
        let mut c = widths[0];
        for (s, &w) in widths.iter().enumerate() {
            for b in 0..per_stage {
                let stride = if s > 0 && b == 0 { 2 } else { 1 };
                blocks.push(BasicBlock::new(c, w, stride, shortcut, q, device));
                c = w;
            }
        }
        Resnet {
            input: q.act_quantizer(true, device),
            stem: QConv2d::new(in_channels, widths[0], 3, 1, 1, false, q, device),
            stem_bn: QBatchNorm2d::new(widths[0], q, device),
            stem_relu: QReLU::new(q, device),
            blocks,
            pool: QGlobalAvgPool::new(q, device),
            head: QLinear::new(c, classes, q, device),
        }
    }

    fn forward(&self, x: Tensor<4>) -> Tensor<2> {
        let mut t = self.stem_relu.forward(
            self.stem_bn
                .forward(self.stem.forward(self.input.forward_q(x))),
        );
        for b in &self.blocks {
            t = b.forward(t);
        }
        self.head.forward(self.pool.forward(t)).value
    }

    fn calibrate(&mut self, x: Tensor<4>, method: Calibration) {
        self.input.calibrate(&x, method);
        let t = self.input.forward_q(x);
        let t = self.stem.calibrate(t, method);
        let t = self.stem_bn.calibrate(t, method);
        let mut t = self.stem_relu.calibrate(t, method);
        for b in self.blocks.iter_mut() {
            t = b.calibrate(t, method);
        }
        let t = self.pool.calibrate(t, method);
        self.head.calibrate(t, method);
    }
}
