//! Export of a trained quantized model to the shared IR (`qfx-ir`): every layer with its
//! formats, every constant as integer codes taken from exactly the values the model computes
//! with (BatchNorm folded with its running statistics, as in inference).

use burn::module::Module;
use burn::tensor::Tensor;
use qfx_fixed::{Fixed, Format, KHot};
use qfx_ir::{AccumulationOrder, Codes, Layer, Op, INPUT, IR_VERSION};

use crate::bnn::{binary_format, BinaryBlock, Bnn, QBinaryConv2d, QPrelu};
use crate::error::TrainError;
use crate::host::HostValues;
use crate::layers::{acc_frac_bits, QBatchNorm2d, QConv2d, QGlobalAvgPool, QLinear, QReLU};
use crate::models::{BasicBlock, Cnn, Mlp, Model, Resnet};
use crate::quant::Granularity;
use crate::quantizer::Quantizer;

/// Exports `model` (quantizers enabled) for inputs of `input_shape` `[c, h, w]`.
pub fn export(
    model: &Model,
    name: &str,
    input_shape: [usize; 3],
) -> Result<qfx_ir::Model, TrainError> {
    let model = model.valid(); // inference mode: running statistics, no autodiff
    let mut b = Builder {
        layers: Vec::new(),
        input_shape: input_shape.to_vec(),
    };
    match &model {
        Model::Mlp(m) => b.mlp(m)?,
        Model::Cnn(m) => b.cnn(m)?,
        Model::Resnet(m) => b.resnet(m)?,
        Model::Bnn(m) => b.bnn(m)?,
    };
    let ir = qfx_ir::Model {
        version: IR_VERSION,
        name: name.to_string(),
        input_shape: input_shape.to_vec(),
        layers: b.layers,
        preprocess: None,
    };
    ir.validate()
        .map_err(|e| TrainError::Shape(e.to_string()))?;
    Ok(ir)
}

fn disabled() -> TrainError {
    TrainError::Spec("cannot export a model with disabled quantizers (the float model)".to_string())
}

/// The per-tensor format of an activation quantizer.
fn format(q: &Quantizer) -> Result<Format, TrainError> {
    if !q.enabled {
        return Err(disabled());
    }
    if q.spec.granularity != Granularity::PerTensor {
        return Err(TrainError::Spec(
            "activations must be quantized per tensor to export".to_string(),
        ));
    }
    q.spec.format(q.frac_bits()[0])
}

/// The codes of `values` as quantized by `q` (exactly the values the model computes with).
fn codes<const D: usize>(q: &Quantizer, values: Tensor<D>) -> Result<Codes, TrainError> {
    if !q.enabled {
        return Err(disabled());
    }
    let shape = values.dims().to_vec();
    let quantized: Vec<f32> = q.forward(values).host_f32();
    let formats: Vec<Format> = q
        .frac_bits()
        .iter()
        .map(|&f| q.spec.format(f))
        .collect::<Result<_, _>>()?;
    let axis = match q.spec.granularity {
        Granularity::PerTensor => None,
        Granularity::PerChannel { axis } => Some(axis),
    };
    let mut c = Codes {
        shape,
        axis,
        formats,
        codes: Vec::with_capacity(quantized.len()),
        khot: q.spec.khot,
    };
    for (i, &v) in quantized.iter().enumerate() {
        let value =
            Fixed::from_f32(v, c.format_of(i)).map_err(|e| TrainError::NonFinite(e.to_string()))?;
        // A constant whose format is wider than f32's mantissa may not be on its grid.
        if value.to_f32() != v {
            return Err(TrainError::Spec(format!(
                "constant {v} is not exactly representable in {} (formats wider than 24 bits \
                 cannot be exported exactly from f32 training values)",
                c.format_of(i)
            )));
        }
        c.codes.push(value.code().unwrap_or(0) as i64);
    }
    Ok(c)
}

/// Accumulator formats: `F = F_in + F_w[c]` in the layer's accumulator width.
fn accumulators(
    layer_acc: &crate::quant::QuantSpec,
    input: Format,
    wq: &Quantizer,
) -> Result<Vec<Format>, TrainError> {
    acc_frac_bits(layer_acc, input.frac_bits() as i32, wq)
        .iter()
        .map(|&f| layer_acc.format(f))
        .collect()
}

struct Builder {
    layers: Vec<Layer>,
    input_shape: Vec<usize>,
}

impl Builder {
    /// Appends a layer and returns its name and output format.
    fn push(&mut self, stem: &str, inputs: &[&str], op: Op, output: Format) -> (String, Format) {
        let name = format!("{stem}{}", self.layers.len());
        self.layers.push(Layer {
            name: name.clone(),
            inputs: inputs.iter().map(|s| s.to_string()).collect(),
            op,
            output,
        });
        (name, output)
    }

    fn conv(
        &mut self,
        c: &QConv2d,
        (x, fx): (String, Format),
    ) -> Result<(String, Format), TrainError> {
        let op = Op::Conv2d {
            weight: codes(&c.wq, c.weight.val())?,
            bias: c.bias.as_ref().map(|b| codes(&c.bq, b.val())).transpose()?,
            stride: c.stride.into(),
            padding: c.padding.into(),
            dilation: 1.into(),
            groups: 1,
            accumulator: accumulators(&c.acc, fx, &c.wq)?,
            order: AccumulationOrder::default(),
        };
        Ok(self.push("conv", &[&x], op, format(&c.out)?))
    }

    fn dense(
        &mut self,
        l: &QLinear,
        (x, fx): (String, Format),
    ) -> Result<(String, Format), TrainError> {
        let op = Op::Dense {
            weight: codes(&l.wq, l.weight.val())?,
            bias: Some(codes(&l.bq, l.bias.val())?),
            accumulator: accumulators(&l.acc, fx, &l.wq)?,
            order: AccumulationOrder::default(),
        };
        Ok(self.push("dense", &[&x], op, format(&l.out)?))
    }

    fn bn(
        &mut self,
        n: &QBatchNorm2d,
        (x, _): (String, Format),
    ) -> Result<(String, Format), TrainError> {
        let (scale, shift) = n.folded_inference();
        let op = Op::BatchNorm {
            scale: codes(&n.scale_q, scale)?,
            shift: codes(&n.shift_q, shift)?,
        };
        Ok(self.push("bn", &[&x], op, format(&n.out)?))
    }

    fn relu(
        &mut self,
        r: &QReLU,
        (x, _): (String, Format),
    ) -> Result<(String, Format), TrainError> {
        Ok(self.push("relu", &[&x], Op::Relu { clip: r.clip }, format(&r.out)?))
    }

    fn input(&mut self, q: &Quantizer, from: &str) -> Result<(String, Format), TrainError> {
        Ok(self.push("input_q", &[from], Op::Quantize, format(q)?))
    }

    fn mlp(&mut self, m: &Mlp) -> Result<(), TrainError> {
        let fq = format(&m.input)?;
        let (flat, _) = self.push("flatten", &[INPUT], Op::Flatten, fq);
        let mut t = self.input(&m.input, &flat)?;
        for (l, r) in m.hidden.iter().zip(&m.relus) {
            t = self.dense(l, t)?;
            t = self.relu(r, t)?;
        }
        self.dense(&m.head, t)?;
        Ok(())
    }

    fn cnn(&mut self, m: &Cnn) -> Result<(), TrainError> {
        let mut t = self.input(&m.input, INPUT)?;
        for i in 0..m.convs.len() {
            t = self.conv(&m.convs[i], t)?;
            t = self.bn(&m.norms[i], t)?;
            t = self.relu(&m.relus[i], t)?;
            let f = t.1;
            t = self.push(
                "pool",
                &[&t.0],
                Op::MaxPool2d {
                    kernel: m.pool.kernel.into(),
                    stride: None,
                },
                f,
            );
        }
        let f = t.1;
        t = self.push("flatten", &[&t.0], Op::Flatten, f);
        self.dense(&m.head, t)?;
        Ok(())
    }

    fn block(
        &mut self,
        b: &BasicBlock,
        x: (String, Format),
    ) -> Result<(String, Format), TrainError> {
        let t = self.conv(&b.conv1, x.clone())?;
        let t = self.bn(&b.bn1, t)?;
        let t = self.relu(&b.relu1, t)?;
        let t = self.conv(&b.conv2, t)?;
        let main = self.bn(&b.bn2, t)?;
        let short = match &b.proj {
            Some((conv, bn)) => {
                let t = self.conv(conv, x)?;
                self.bn(bn, t)?
            }
            None if b.stride != 1 || b.pad_channels > 0 => {
                let op = Op::Shortcut {
                    stride: b.stride,
                    pad_channels: b.pad_channels,
                };
                self.push("shortcut", &[&x.0], op, x.1)
            }
            None => x,
        };
        let sum = self.push("add", &[&main.0, &short.0], Op::Add, format(&b.add.out)?);
        self.relu(&b.relu2, sum)
    }

    fn pool(
        &mut self,
        p: &QGlobalAvgPool,
        x: (String, Format),
        window: usize,
    ) -> Result<(String, Format), TrainError> {
        let r = p
            .reciprocal_fixed(window)
            .map_err(|e| TrainError::Spec(e.to_string()))?;
        let reciprocal = Codes {
            shape: vec![1],
            axis: None,
            formats: vec![r.format()],
            codes: vec![r.code().unwrap_or(0) as i64],
            khot: None,
        };
        Ok(self.push(
            "avgpool",
            &[&x.0],
            Op::GlobalAvgPool { reciprocal },
            format(&p.out)?,
        ))
    }

    fn resnet(&mut self, m: &Resnet) -> Result<(), TrainError> {
        let t = self.input(&m.input, INPUT)?;
        let t = self.conv(&m.stem, t)?;
        let t = self.bn(&m.stem_bn, t)?;
        let mut t = self.relu(&m.stem_relu, t)?;
        for b in &m.blocks {
            t = self.block(b, t)?;
        }
        let window = self.last_spatial_size()?;
        let t = self.pool(&m.pool, t, window)?;
        self.dense(&m.head, t)?;
        Ok(())
    }

    fn prelu(
        &mut self,
        p: &QPrelu,
        (x, _): (String, Format),
    ) -> Result<(String, Format), TrainError> {
        let op = Op::Prelu {
            slope: codes(&p.slope_q, p.slope.val())?,
        };
        Ok(self.push("prelu", &[&x], op, format(&p.out)?))
    }

    /// A binary convolution: `±1` codes in `ap_int<2>`, declared 1-hot (each product is `x` or
    /// `−x`, no multiplier).
    fn binary_conv(
        &mut self,
        c: &QBinaryConv2d,
        (x, fx): (String, Format),
    ) -> Result<(String, Format), TrainError> {
        if !c.wq.enabled {
            return Err(disabled());
        }
        let w = c.binary_weights();
        let weight = Codes {
            shape: w.dims().to_vec(),
            axis: None,
            formats: vec![binary_format()],
            codes: w
                .host_f32()
                .iter()
                .map(|&v| {
                    if v == 1.0 || v == -1.0 {
                        Ok(v as i64)
                    } else {
                        Err(TrainError::NonFinite(format!(
                            "binary weight {v} is not ±1 (non-finite latent weight)"
                        )))
                    }
                })
                .collect::<Result<_, _>>()?,
            khot: Some(KHot::binary(1)),
        };
        let op = Op::Conv2d {
            weight,
            bias: None,
            stride: c.stride.into(),
            padding: c.padding.into(),
            dilation: 1.into(),
            groups: 1,
            accumulator: accumulators(&c.acc, fx, &c.wq)?,
            order: AccumulationOrder::default(),
        };
        Ok(self.push("bconv", &[&x], op, format(&c.out)?))
    }

    fn binary_block(
        &mut self,
        b: &BinaryBlock,
        x: (String, Format),
    ) -> Result<(String, Format), TrainError> {
        let s = self.push("sign", &[&x.0], Op::Sign, binary_format());
        let t = self.binary_conv(&b.conv, s)?;
        let main = self.bn(&b.bn, t)?;
        let short = if b.stride != 1 || b.pad_channels > 0 {
            let op = Op::Shortcut {
                stride: b.stride,
                pad_channels: b.pad_channels,
            };
            self.push("shortcut", &[&x.0], op, x.1)
        } else {
            x
        };
        let sum = self.push("add", &[&main.0, &short.0], Op::Add, format(&b.add.out)?);
        self.prelu(&b.act, sum)
    }

    fn bnn(&mut self, m: &Bnn) -> Result<(), TrainError> {
        let t = self.input(&m.input, INPUT)?;
        let t = self.conv(&m.stem, t)?;
        let t = self.bn(&m.stem_bn, t)?;
        let mut t = self.prelu(&m.stem_act, t)?;
        for b in &m.blocks {
            t = self.binary_block(b, t)?;
        }
        let window = self.last_spatial_size()?;
        let t = self.pool(&m.pool, t, window)?;
        self.dense(&m.head, t)?;
        Ok(())
    }

    /// `h·w` of the last layer's output, from the shapes the IR implies.
    fn last_spatial_size(&self) -> Result<usize, TrainError> {
        let probe = qfx_ir::Model {
            version: IR_VERSION,
            name: String::new(),
            input_shape: self.input_shape.clone(),
            layers: self.layers.clone(),
            preprocess: None,
        };
        let graph = probe
            .resolve()
            .map_err(|e| TrainError::Shape(e.to_string()))?;
        Ok(graph.output().shape[1..].iter().product())
    }
}
