//! Inference throughput of the prepared engine against the original (reference) engine, on
//! IR models built directly with random codes: an MLP, a small CNN and a ResNet-20.
//!
//! `cargo bench -p qfx-engine --bench engine` (add `-- --quick` for a shorter run). Each model
//! runs twice: with accumulators wide enough that no partial sum can overflow (the
//! unchecked path) and with narrow saturating accumulators (range checked after every
//! addition). Both engines run in the same process, and their outputs are compared.

use std::time::{Duration, Instant};

use qfx_engine::{reference, Engine};
use qfx_fixed::Format;
use qfx_ir::{AccumulationOrder, Codes, Layer, Model, Op, INPUT, IR_VERSION};

use qfx_testkit::{fmt, Rng};

/// Formats of one benchmark variant.
struct Formats {
    act: Format,
    weight: Format,
    /// Accumulator: `F = F_act + F_weight`, this many bits wide, this overflow mode.
    acc_width: u32,
    acc_mode: &'static str,
}

impl Formats {
    fn acc(&self) -> Format {
        let f = self.act.frac_bits() + self.weight.frac_bits();
        let w = self.acc_width;
        fmt(&format!(
            "ap_fixed<{w},{},AP_TRN,{}>",
            w as i64 - f,
            self.acc_mode
        ))
    }
}

struct Builder<'a> {
    rng: Rng,
    f: &'a Formats,
    layers: Vec<Layer>,
    shape: Vec<usize>,
}

impl Builder<'_> {
    fn last(&self) -> String {
        self.layers
            .last()
            .map_or(INPUT.to_string(), |l| l.name.clone())
    }
    fn push(&mut self, op: Op, inputs: Vec<String>, output: Format) -> String {
        let name = format!("l{}", self.layers.len());
        self.layers.push(Layer {
            name: name.clone(),
            inputs,
            op,
            output,
        });
        name
    }
    fn codes(&mut self, shape: Vec<usize>, axis: Option<usize>, f: Format) -> Codes {
        let n: usize = shape.iter().product();
        let formats = vec![f; axis.map_or(1, |a| shape[a])];
        Codes {
            codes: (0..n).map(|_| self.rng.uniform_code(f)).collect(),
            shape,
            axis,
            formats,
            khot: None,
        }
    }
    fn conv(&mut self, c_out: usize, stride: usize) -> String {
        let c_in = self.shape[0];
        let weight = self.codes(vec![c_out, c_in, 3, 3], Some(0), self.f.weight);
        let (h, w) = (self.shape[1], self.shape[2]);
        self.shape = vec![c_out, (h - 1) / stride + 1, (w - 1) / stride + 1];
        let op = Op::Conv2d {
            weight,
            bias: None,
            stride: stride.into(),
            padding: 1.into(),
            dilation: 1.into(),
            groups: 1,
            accumulator: vec![self.f.acc()],
            order: AccumulationOrder::default(),
        };
        let i = vec![self.last()];
        self.push(op, i, self.f.act)
    }
    fn bn(&mut self) -> String {
        let c = self.shape[0];
        let scale = self.codes(vec![c], Some(0), fmt("ap_fixed<8,2>"));
        let shift = self.codes(vec![c], Some(0), fmt("ap_fixed<8,3>"));
        let i = vec![self.last()];
        self.push(Op::BatchNorm { scale, shift }, i, self.f.act)
    }
    fn relu(&mut self) -> String {
        let i = vec![self.last()];
        self.push(Op::Relu { clip: None }, i, self.f.act)
    }
    fn dense(&mut self, out: usize) -> String {
        let d_in: usize = self.shape.iter().product();
        let weight = self.codes(vec![d_in, out], Some(1), self.f.weight);
        let bias = Some(self.codes(vec![out], None, fmt("ap_fixed<12,4>")));
        self.shape = vec![out];
        let op = Op::Dense {
            weight,
            bias,
            accumulator: vec![self.f.acc()],
            order: AccumulationOrder::default(),
        };
        let i = vec![self.last()];
        self.push(op, i, self.f.act)
    }
    fn model(self, name: &str, input_shape: Vec<usize>) -> Model {
        let m = Model {
            version: IR_VERSION,
            name: name.into(),
            input_shape,
            layers: self.layers,
            preprocess: None,
        };
        m.validate().unwrap();
        m
    }
}

fn builder<'a>(f: &'a Formats, input_shape: &[usize]) -> Builder<'a> {
    let mut b = Builder {
        rng: Rng::xorshift(0x2545_F491_4F6C_DD1D),
        f,
        layers: Vec::new(),
        shape: input_shape.to_vec(),
    };
    b.push(Op::Quantize, vec![INPUT.into()], f.act);
    b
}

fn mlp(f: &Formats) -> Model {
    let mut b = builder(f, &[784]);
    b.dense(256);
    b.relu();
    b.dense(128);
    b.relu();
    b.dense(10);
    b.model("mlp", vec![784])
}

fn cnn(f: &Formats) -> Model {
    let mut b = builder(f, &[1, 28, 28]);
    for c in [16, 32] {
        b.conv(c, 1);
        b.bn();
        b.relu();
        let i = vec![b.last()];
        b.push(
            Op::MaxPool2d {
                kernel: 2.into(),
                stride: None,
            },
            i,
            f.act,
        );
        b.shape = vec![c, b.shape[1] / 2, b.shape[2] / 2];
    }
    let i = vec![b.last()];
    b.push(Op::Flatten, i, f.act);
    b.dense(10);
    b.model("cnn", vec![1, 28, 28])
}

fn resnet20(f: &Formats) -> Model {
    let mut b = builder(f, &[3, 32, 32]);
    b.conv(16, 1);
    b.bn();
    b.relu();
    for (stage, width) in [16usize, 32, 64].into_iter().enumerate() {
        for block in 0..3 {
            let stride = if stage > 0 && block == 0 { 2 } else { 1 };
            let (x, x_shape) = (b.last(), b.shape.clone());
            b.conv(width, stride);
            b.bn();
            b.relu();
            b.conv(width, 1);
            let y = b.bn();
            let shortcut = if stride == 1 {
                x
            } else {
                let op = Op::Shortcut {
                    stride,
                    pad_channels: width - x_shape[0],
                };
                b.push(op, vec![x], f.act)
            };
            b.push(Op::Add, vec![y, shortcut], f.act);
            b.relu();
        }
    }
    let reciprocal = Codes {
        shape: vec![1],
        axis: None,
        formats: vec![fmt("ap_ufixed<8,-5>")],
        codes: vec![128], // 2^-6 = 1/64
        khot: None,
    };
    let i = vec![b.last()];
    b.push(Op::GlobalAvgPool { reciprocal }, i, f.act);
    b.shape = vec![64];
    b.dense(10);
    b.model("resnet20", vec![3, 32, 32])
}

/// Multiply-accumulates per inference.
fn macs(m: &Model) -> u64 {
    let graph = m.resolve().unwrap();
    graph
        .nodes()
        .iter()
        .filter_map(|n| n.mac())
        .map(|mac| (mac.weight.codes.len() * mac.positions()) as u64)
        .sum()
}

/// Inferences per second of `f` over at least `budget`, and its last result.
fn rate<T>(budget: Duration, mut f: impl FnMut() -> T) -> (f64, T) {
    let mut out = f(); // warm up
    let start = Instant::now();
    let mut n = 0u64;
    while n == 0 || start.elapsed() < budget {
        out = f();
        n += 1;
    }
    (n as f64 / start.elapsed().as_secs_f64(), out)
}

fn main() {
    let quick = std::env::args().any(|a| a == "--quick");
    let budget = Duration::from_millis(if quick { 300 } else { 1500 });
    let act = fmt("ap_fixed<8,3,AP_RND_CONV,AP_SAT>");
    let weight = fmt("ap_fixed<8,1>");
    let variants = [
        (
            "wide TRN/WRAP accumulators (unchecked)",
            Formats {
                act,
                weight,
                acc_width: 32,
                acc_mode: "AP_WRAP",
            },
        ),
        (
            "18-bit AP_SAT accumulators (checked)",
            Formats {
                act,
                weight,
                acc_width: 18,
                acc_mode: "AP_SAT",
            },
        ),
    ];
    let threads = std::thread::available_parallelism().map_or(1, |t| t.get());
    println!(
        "| model | accumulators | MACs | reference inf/s | engine inf/s (1 thread) | speed-up | batch inf/s ({threads} threads) |"
    );
    println!("|---|---|---|---|---|---|---|");
    for (label, f) in &variants {
        for model in [mlp(f), cnn(f), resnet20(f)] {
            let n: usize = model.input_shape.iter().product();
            let mut rng = Rng::xorshift(77);
            let input: Vec<f32> = (0..n)
                .map(|_| (rng.next_u64() % 2001) as f32 / 250.0 - 4.0)
                .collect();
            let engine = Engine::new(&model).unwrap();
            let (fast, out) = rate(budget, || engine.run(&input).unwrap());
            let (slow, want) = rate(budget, || reference::run(&model, &input).unwrap());
            assert_eq!(out, want, "engine and reference disagree on {}", model.name);
            let batch_len = (threads * 8).max(8);
            let batch: Vec<f32> = input.iter().cycle().take(n * batch_len).copied().collect();
            let (batches, _) = rate(budget, || engine.run_batch(&batch, 0).unwrap());
            println!(
                "| {} | {label} | {:.2}M | {slow:.1} | {fast:.1} | {:.1}x | {:.1} |",
                model.name,
                macs(&model) as f64 / 1e6,
                fast / slow,
                batches * batch_len as f64,
            );
        }
    }
}
