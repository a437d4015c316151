//! `verify`: the project's design in Verilator against the integer engine, every output code.
//!
//! The inputs are converted to the input layers' formats as the `ap_fixed` float constructor
//! does (`Fixed::from_f32_hls`, what the engine does), packed onto `in_data` one inference per
//! clock, and every `out_data` beat is compared with the engine's output for that inference.
//! The cycle of the first output gives the latency; the spacing of the outputs the cycles per
//! inference in a stream.

use std::fmt;
use std::path::Path;

use qfx_fixed::Fixed;
use qfx_hls::names::comment_text;
use qfx_ir::Model;

use crate::design::{io_layout, Architecture, Timing};
use crate::project::{refuse_symlink, TIMING_FILE, VERILOG_FILE, WORK_VERIFY};
use crate::sim::{field, pack, Simulation};
use crate::{ErrorKind, RtlError, IR_FILE};

/// The first output value where the simulation and the engine differ.
#[derive(Clone, Debug, PartialEq)]
pub struct Mismatch {
    /// Sample index.
    pub sample: usize,
    /// Index into the output tensor.
    pub index: usize,
    /// The engine's code.
    pub engine: i128,
    /// The simulated design's code.
    pub rtl: i128,
}

/// What [`verify`] found.
#[derive(Clone, Debug, PartialEq)]
pub struct VerifyReport {
    /// Samples run.
    pub samples: usize,
    /// Output values compared.
    pub values: usize,
    /// Output values whose codes differ (must be 0).
    pub mismatches: usize,
    /// The first difference.
    pub first_mismatch: Option<Mismatch>,
    /// Clock cycles from an inference's first input beat to its last output beat (measured).
    pub latency: u64,
    /// Clock cycles between the ends of consecutive inferences in a stream of inputs
    /// (measured; 1 = a new inference every clock).
    pub interval: f64,
    /// Clock cycles the whole stream took, first input to last output.
    pub cycles: u64,
    /// Seconds Verilator and the C++ compiler took.
    pub build_seconds: f64,
    /// Seconds the simulation ran.
    pub run_seconds: f64,
    /// Overflow events the engine counted per layer (IR name, count), over all samples.
    pub overflows: Vec<(String, u64)>,
    /// The engine's output codes, row-major per sample.
    pub engine_codes: Vec<i64>,
}

impl VerifyReport {
    /// Total overflow events.
    pub fn total_overflows(&self) -> u64 {
        self.overflows.iter().map(|(_, n)| n).sum()
    }
}

impl fmt::Display for VerifyReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "{} samples, {} output values compared: {} mismatches",
            self.samples, self.values, self.mismatches
        )?;
        if let Some(m) = &self.first_mismatch {
            writeln!(
                f,
                "first mismatch: sample {}, output {}: engine code {}, RTL code {}",
                m.sample, m.index, m.engine, m.rtl
            )?;
        }
        writeln!(
            f,
            "latency {} cycles, {} cycle(s) per inference in a stream ({} cycles for {} inferences)",
            self.latency, self.interval, self.cycles, self.samples
        )?;
        writeln!(
            f,
            "verilator: {:.1} s to build, {:.3} s to simulate",
            self.build_seconds, self.run_seconds
        )?;
        let busy: Vec<String> = self
            .overflows
            .iter()
            .filter(|(_, n)| *n > 0)
            .map(|(l, n)| format!("`{}` {n}", comment_text(l)))
            .collect();
        write!(
            f,
            "engine overflow events: {} in total{}{}",
            self.total_overflows(),
            if busy.is_empty() { "" } else { ": " },
            busy.join(", ")
        )
    }
}

/// Reads how a project's design is driven.
pub(crate) fn load_timing(project: &Path) -> Result<Timing, RtlError> {
    let path = project.join(TIMING_FILE);
    let text = std::fs::read_to_string(&path).map_err(|e| {
        RtlError::io(
            format!(
                "cannot read {} (export the project again with `qfx export verilog`)",
                path.display()
            ),
            e,
        )
    })?;
    serde_json::from_str(&text)
        .map_err(|e| RtlError::new(ErrorKind::BadInput, format!("{}: {e}", path.display())))
}

/// Reads the IR a project was built from.
pub(crate) fn load_project_ir(project: &Path) -> Result<Model, RtlError> {
    let path = project.join(IR_FILE);
    let not_project = |why: String| {
        RtlError::new(
            ErrorKind::BadInput,
            format!(
                "{} is not a qfx Verilog project ({why}); write one with `qfx export verilog`",
                project.display()
            ),
        )
    };
    match std::fs::metadata(&path) {
        Ok(m) if !m.is_file() => {
            return Err(not_project(format!("{IR_FILE} is not a regular file")))
        }
        Err(_) => return Err(not_project(format!("it has no {IR_FILE}"))),
        Ok(_) => {}
    }
    if !std::fs::metadata(project.join(VERILOG_FILE)).is_ok_and(|m| m.is_file()) {
        return Err(not_project(format!("it has no {VERILOG_FILE}")));
    }
    let text = std::fs::read_to_string(&path)
        .map_err(|e| RtlError::io(format!("cannot read {}", path.display()), e))?;
    Model::from_json(&text).map_err(|e| RtlError::new(ErrorKind::InvalidModel, e.to_string()))
}

/// Simulates the project in `project` on `inputs` (each one sample, row-major in the IR's
/// input shape) and compares every output code with the integer engine.
pub fn verify(project: &Path, inputs: &[Vec<f32>]) -> Result<VerifyReport, RtlError> {
    if inputs.is_empty() {
        return Err(RtlError::new(ErrorKind::BadInput, "no inputs to verify on"));
    }
    let model = load_project_ir(project)?;
    let timing = load_timing(project)?;
    let graph = model
        .resolve()
        .map_err(|e| RtlError::new(ErrorKind::InvalidModel, e.to_string()))?;
    let (ports, out) = io_layout(&graph, timing.architecture);
    let stream = timing.architecture == Architecture::Stream;
    let engine = qfx_engine::Engine::new(&model)
        .map_err(|e| RtlError::new(ErrorKind::Engine, e.to_string()))?;
    let mut beats: Vec<Option<Vec<u32>>> = Vec::new();
    let mut expected: Vec<Vec<i64>> = Vec::with_capacity(inputs.len());
    let mut overflows = vec![0u64; model.layers.len()];
    // Values per input pixel (the input's channels) when streaming.
    let pixels = timing.input_beats;
    for (s, x) in inputs.iter().enumerate() {
        let run = engine
            .run(x)
            .map_err(|e| RtlError::new(ErrorKind::Engine, format!("sample {s}: {e}")))?;
        for (o, n) in overflows.iter_mut().zip(&run.overflows) {
            *o += n;
        }
        expected.push(run.output.codes);
        for beat in 0..timing.input_beats {
            let mut bus: Vec<u32> = Vec::new();
            let mut offset = 0u64;
            for p in &ports {
                // Unrolled: every input value; streaming: channel c of pixel `beat`.
                let codes: Vec<i128> = (0..p.elements)
                    .map(|i| if stream { i * pixels + beat } else { i })
                    .map(|i| Fixed::from_f32_hls(x[i], p.format).code().unwrap_or(0))
                    .collect();
                append_bits(&mut bus, offset, &pack(&codes, p.format.width()), p.bits());
                offset += p.bits();
            }
            beats.push(Some(bus));
        }
        for _ in timing.input_beats as u64..timing.frame_cycles {
            beats.push(None);
        }
    }
    let work = project.join(WORK_VERIFY);
    refuse_symlink(&work)?;
    let sim = Simulation::build(&work, &[project.join(VERILOG_FILE)])?;
    let slack = model.layers.len() as u64 * 2 + 16 + 4 * timing.frame_cycles;
    let result = sim.run(&beats, inputs.len() * timing.output_beats, slack)?;
    let mut mismatches = 0;
    let mut first_mismatch = None;
    let signed = out.format.is_signed();
    let w = out.format.width();
    let per = timing.output_beats;
    for (q, (_, words)) in result.outputs.iter().enumerate() {
        let (s, beat) = (q / per, q % per);
        for lane in 0..out.elements {
            // A streamed image's beat holds channel `lane` of pixel `beat`.
            let i = if stream && per > 1 {
                lane * per + beat
            } else {
                lane
            };
            let e = expected[s][i];
            let got = field(words, lane, w, signed);
            if got != e as i128 {
                mismatches += 1;
                first_mismatch.get_or_insert(Mismatch {
                    sample: s,
                    index: i,
                    engine: e as i128,
                    rtl: got,
                });
            }
        }
    }
    // The cycle each inference's last output beat came out.
    let done: Vec<u64> = result
        .outputs
        .chunks(per)
        .map(|c| c.last().map_or(0, |o| o.0))
        .collect();
    let first = done.first().copied().unwrap_or(0);
    let last = done.last().copied().unwrap_or(0);
    let n = inputs.len() as u64;
    Ok(VerifyReport {
        samples: inputs.len(),
        values: expected.iter().map(Vec::len).sum(),
        mismatches,
        first_mismatch,
        latency: first + 1,
        interval: if n > 1 {
            (last - first) as f64 / (n - 1) as f64
        } else {
            1.0
        },
        cycles: last + 1,
        build_seconds: sim.build_seconds,
        run_seconds: result.run_seconds,
        overflows: model
            .layers
            .iter()
            .map(|l| l.name.clone())
            .zip(overflows)
            .collect(),
        engine_codes: expected.into_iter().flatten().collect(),
    })
}

/// ORs the low `bits` bits of `field` into `bus` at bit `offset`.
fn append_bits(bus: &mut Vec<u32>, offset: u64, field: &[u32], bits: u64) {
    let need = (offset + bits).div_ceil(32) as usize;
    if bus.len() < need {
        bus.resize(need, 0);
    }
    for b in 0..bits {
        if (field[(b / 32) as usize] >> (b % 32)) & 1 == 1 {
            let pos = offset + b;
            bus[(pos / 32) as usize] |= 1 << (pos % 32);
        }
    }
}
