//! Bit-exact verification: the project's testbench compiled with g++ against the real Xilinx
//! `ap_types` headers, run on the inputs, every output code compared with the integer engine
//! running the project's own copy of the IR. The testbench is built into a fresh path every
//! time and must exist after g++ exits 0 ([`qfx_cpp::Build`]), so an earlier binary can never
//! answer for a new project.

use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Instant;

use qfx_cpp::{Build, Compiler, CppError};
use qfx_ir::Model;

use crate::emit::{write_atomic, IR_FILE};
use crate::{ErrorKind, HlsError};

/// The folder inside a project where verification writes its inputs, outputs and testbench.
pub(crate) const WORK_DIR: &str = ".qfx-verify";

/// How to build and run the C simulation.
#[derive(Clone, Debug, PartialEq)]
pub struct VerifyOptions {
    /// Where the `ap_types` headers are cached (fetched once with pip).
    pub cache_dir: PathBuf,
    /// Optimization flag for g++ (`-O2` by default: `-O0`, what `csim_design` uses, makes big
    /// networks slow to run; the numerics are the same).
    pub opt: String,
    /// Extra `-D` defines, e.g. `QFX_AP_INT_ROMS` (ap_int constant containers in C simulation).
    pub defines: Vec<String>,
    /// The C++ compiler: a name looked up on `PATH` (default `g++`) or a path.
    pub compiler: PathBuf,
}

impl Default for VerifyOptions {
    fn default() -> VerifyOptions {
        VerifyOptions {
            cache_dir: default_cache_dir(),
            opt: "-O2".to_string(),
            defines: Vec::new(),
            compiler: PathBuf::from("g++"),
        }
    }
}

/// The user cache: `$QFX_CACHE_DIR`, else `$XDG_CACHE_HOME/qfx`, else `$HOME/.cache/qfx`, else a
/// folder in the system's temporary directory ([`qfx_cpp::default_cache_dir`]).
pub fn default_cache_dir() -> PathBuf {
    qfx_cpp::default_cache_dir()
}

/// An [`HlsError`] of the matching kind for a C++ tooling error.
fn cpp_error(e: CppError, context: impl FnOnce() -> String) -> HlsError {
    let kind = match e.kind {
        qfx_cpp::ErrorKind::NotInstalled => ErrorKind::NoCompiler,
        qfx_cpp::ErrorKind::Broken => ErrorKind::BrokenCompiler,
        qfx_cpp::ErrorKind::Headers => ErrorKind::Headers,
        qfx_cpp::ErrorKind::Compile => ErrorKind::Compile,
        qfx_cpp::ErrorKind::Run => ErrorKind::Run,
        qfx_cpp::ErrorKind::Io => ErrorKind::Io,
    };
    HlsError::new(kind, format!("{}{}", context(), e.message))
}

/// The first output value where the C simulation and the engine differ.
#[derive(Clone, Debug, PartialEq)]
pub struct Mismatch {
    /// Sample index.
    pub sample: usize,
    /// Index into the output tensor.
    pub index: usize,
    /// The IR name of the layer whose output differs (the last layer).
    pub layer: String,
    /// The engine's code.
    pub engine: i128,
    /// The C simulation's code.
    pub csim: i128,
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
    /// Seconds g++ took.
    pub compile_secs: f64,
    /// The g++ command line's flags.
    pub compile_flags: String,
    /// Seconds inside the testbench's inference loop (all samples).
    pub csim_secs: f64,
    /// Seconds the engine took (all samples).
    pub engine_secs: f64,
    /// Overflow events counted by the engine, per layer (IR name, count), over all samples.
    pub overflows: Vec<(String, u64)>,
    /// Per output value: engine outputs, row-major per sample (for callers that want them).
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
                "first mismatch: sample {}, output {} of layer `{}`: engine code {}, C simulation code {}",
                m.sample,
                m.index,
                crate::names::comment_text(&m.layer),
                m.engine,
                m.csim
            )?;
        }
        writeln!(
            f,
            "g++ {}: {:.1} s to compile; C simulation {:.3} s, integer engine {:.3} s for {} samples",
            self.compile_flags, self.compile_secs, self.csim_secs, self.engine_secs, self.samples
        )?;
        let busy: Vec<String> = self
            .overflows
            .iter()
            .filter(|(_, n)| *n > 0)
            .map(|(l, n)| format!("`{}` {n}", crate::names::comment_text(l)))
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

/// Verifies the project in `project_dir` on `inputs` (each one sample, row-major in the IR's
/// input shape) with the default options.
pub fn verify(project_dir: &Path, inputs: &[Vec<f32>]) -> Result<VerifyReport, HlsError> {
    verify_with(project_dir, inputs, &VerifyOptions::default())
}

/// [`verify`] with explicit options.
pub fn verify_with(
    project_dir: &Path,
    inputs: &[Vec<f32>],
    options: &VerifyOptions,
) -> Result<VerifyReport, HlsError> {
    let ir_path = project_dir.join(IR_FILE);
    // A FIFO or device in its place would block the read forever: refused as such.
    let text = qfx_fs::read_to_string_regular(&ir_path).map_err(|e| {
        let kind = if e.kind() == std::io::ErrorKind::InvalidInput {
            ErrorKind::BadInput
        } else {
            ErrorKind::Io
        };
        HlsError::new(
            kind,
            format!(
                "cannot read {} (is {} a project written by `qfx export hls`?): {e}",
                ir_path.display(),
                project_dir.display()
            ),
        )
    })?;
    let model = Model::from_json(&text).map_err(|e| {
        HlsError::new(
            ErrorKind::InvalidModel,
            format!("{}: {e}", ir_path.display()),
        )
    })?;
    let n_in: usize = model.input_shape.iter().product();
    if inputs.is_empty() {
        return Err(HlsError::new(
            ErrorKind::BadInput,
            "no input samples to verify",
        ));
    }
    for (s, x) in inputs.iter().enumerate() {
        if x.len() != n_in {
            return Err(HlsError::new(
                ErrorKind::BadInput,
                format!(
                    "sample {s} has {} values, the model's input {:?} has {n_in}",
                    x.len(),
                    model.input_shape
                ),
            ));
        }
        if let Some(v) = x.iter().find(|v| !v.is_finite()) {
            return Err(HlsError::new(
                ErrorKind::BadInput,
                format!("sample {s} has a non-finite value {v}"),
            ));
        }
    }
    for opt in std::iter::once(&options.opt).chain(&options.defines) {
        if !opt
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-' || c == '=')
        {
            return Err(HlsError::new(
                ErrorKind::BadInput,
                format!("compiler option {opt:?} has unexpected characters"),
            ));
        }
    }
    for f in ["firmware/model.cpp", "tb/testbench.cpp"] {
        let path = project_dir.join(f);
        match std::fs::metadata(&path) {
            Ok(m) if m.is_file() => {}
            // g++ would wait forever on a FIFO.
            Ok(_) => {
                return Err(HlsError::new(
                    ErrorKind::BadInput,
                    format!("{} is not a regular file", path.display()),
                ))
            }
            Err(_) => {
                return Err(HlsError::new(
                    ErrorKind::Io,
                    format!("{} is missing from the project", path.display()),
                ))
            }
        }
    }
    // Checked before anything is written: a link here would send files out of the project.
    let work = project_dir.join(WORK_DIR);
    crate::project::refuse_symlink(&work)?;
    let compiler = Compiler::probe(&options.compiler).map_err(|e| cpp_error(e, String::new))?;
    let headers = qfx_cpp::headers::ensure_headers(&options.cache_dir).map_err(|e| {
        cpp_error(e, || {
            format!(
                "cannot obtain the Xilinx ap_types headers into {}: ",
                options.cache_dir.display()
            )
        })
    })?;

    std::fs::create_dir_all(&work)
        .map_err(|e| HlsError::io(format!("cannot create {}", work.display()), e))?;
    let mut input_text = format!("qfx-inputs 1 {} {n_in}\n", inputs.len());
    for x in inputs {
        let words: Vec<String> = x.iter().map(|v| format!("{:08x}", v.to_bits())).collect();
        input_text.push_str(&words.join(" "));
        input_text.push('\n');
    }
    let in_path = work.join("inputs.txt");
    let out_path = work.join("outputs.txt");
    write_atomic(&in_path, input_text.as_bytes())?;
    let _ = std::fs::remove_file(&out_path);

    // Compile in the background while the engine runs, into a fresh path (a compiler that
    // exits 0 without writing is an error, never a stale testbench from an earlier run).
    let mut build = Build::new(project_dir.join("firmware/model.cpp"), &work)
        .source(project_dir.join("tb/testbench.cpp"))
        .name("testbench")
        .flag("-std=c++14")
        .flag(&options.opt);
    for d in &options.defines {
        build = build.flag(format!("-D{d}"));
    }
    let build = build
        .against_headers(&headers)
        .flag("-Wno-unknown-pragmas")
        .log(work.join("compile.log"));
    let flags = format!(
        "-std=c++14 {} -DNDEBUG{}",
        options.opt,
        options
            .defines
            .iter()
            .map(|d| format!(" -D{d}"))
            .collect::<String>()
    );
    let started = Instant::now();
    let compiling = build
        .start(&compiler)
        .map_err(|e| cpp_error(e, String::new))?;

    let engine_started = Instant::now();
    let outputs = match run_engine(&model, inputs) {
        Ok(o) => o,
        Err(e) => {
            compiling.cancel();
            return Err(e);
        }
    };
    let mut engine_codes = Vec::new();
    let mut overflows: Vec<(String, u64)> =
        model.layers.iter().map(|l| (l.name.clone(), 0)).collect();
    let mut out_format = None;
    for out in outputs {
        for (acc, n) in overflows.iter_mut().zip(&out.overflows) {
            acc.1 += n;
        }
        out_format = Some(out.output.format);
        engine_codes.extend_from_slice(&out.output.codes);
    }
    let engine_secs = engine_started.elapsed().as_secs_f64();
    let out_format = out_format.expect("at least one sample");

    let testbench = compiling
        .finish()
        .map_err(|e| cpp_error(e, || "g++ failed to compile the project: ".to_string()))?;
    let compile_secs = started.elapsed().as_secs_f64();

    let run = testbench
        .run(&[in_path.as_os_str(), out_path.as_os_str()], None)
        .map_err(|e| cpp_error(e, || "the testbench failed: ".to_string()))?;
    let stdout = String::from_utf8_lossy(&run.stdout);
    let csim_secs = stdout
        .split_whitespace()
        .zip(stdout.split_whitespace().skip(1))
        .find(|(_, unit)| *unit == "s")
        .and_then(|(v, _)| v.parse::<f64>().ok())
        .unwrap_or(f64::NAN);
    let text = qfx_fs::read_to_string_regular(&out_path)
        .map_err(|e| HlsError::io(format!("cannot read {}", out_path.display()), e))?;
    let csim = parse_outputs(
        &text,
        inputs.len(),
        engine_codes.len() / inputs.len(),
        out_format,
    )?;

    let per = engine_codes.len() / inputs.len();
    let mut mismatches = 0;
    let mut first_mismatch = None;
    for (k, (&e, &c)) in engine_codes.iter().zip(&csim).enumerate() {
        if e as i128 != c {
            mismatches += 1;
            first_mismatch.get_or_insert_with(|| Mismatch {
                sample: k / per,
                index: k % per,
                layer: model
                    .layers
                    .last()
                    .map(|l| l.name.clone())
                    .unwrap_or_default(),
                engine: e as i128,
                csim: c,
            });
        }
    }
    Ok(VerifyReport {
        samples: inputs.len(),
        values: engine_codes.len(),
        mismatches,
        first_mismatch,
        compile_secs,
        compile_flags: flags,
        csim_secs,
        engine_secs,
        overflows,
        engine_codes,
    })
}

/// The engine (prepared once) on every input, on up to 4 threads, in input order.
fn run_engine(model: &Model, inputs: &[Vec<f32>]) -> Result<Vec<qfx_engine::Output>, HlsError> {
    let threads = std::thread::available_parallelism()
        .map_or(1, |n| n.get())
        .clamp(1, 4);
    let chunk = inputs.len().div_ceil(threads).max(1);
    let engine = qfx_engine::Engine::new(model)
        .map_err(|e| HlsError::new(ErrorKind::Engine, e.to_string()))?;
    let engine = &engine;
    std::thread::scope(|scope| {
        let handles: Vec<_> = inputs
            .chunks(chunk)
            .enumerate()
            .map(|(k, part)| {
                scope.spawn(move || {
                    part.iter()
                        .enumerate()
                        .map(|(i, x)| {
                            engine.run(x).map_err(|e| {
                                HlsError::new(
                                    ErrorKind::Engine,
                                    format!("sample {}: {e}", k * chunk + i),
                                )
                            })
                        })
                        .collect::<Result<Vec<_>, _>>()
                })
            })
            .collect();
        let mut all = Vec::with_capacity(inputs.len());
        for h in handles {
            let part = h
                .join()
                .map_err(|_| HlsError::new(ErrorKind::Engine, "the integer engine panicked"))??;
            all.extend(part);
        }
        Ok(all)
    })
}

/// Parses the testbench's output file into codes (sign-extended per the output format).
fn parse_outputs(
    text: &str,
    samples: usize,
    per_sample: usize,
    format: qfx_fixed::Format,
) -> Result<Vec<i128>, HlsError> {
    let bad = |m: String| HlsError::new(ErrorKind::Run, format!("testbench output: {m}"));
    let mut words = text.split_whitespace();
    let header: Vec<&str> = words.by_ref().take(5).collect();
    let want = [
        "qfx-outputs".to_string(),
        "1".to_string(),
        samples.to_string(),
        per_sample.to_string(),
        format.width().to_string(),
    ];
    if header != want {
        return Err(bad(format!(
            "header {header:?}, expected {want:?} (was the project generated for another model?)"
        )));
    }
    let w = format.width();
    let mut codes = Vec::with_capacity(samples * per_sample);
    for k in 0..samples * per_sample {
        let word = words
            .next()
            .ok_or_else(|| bad(format!("only {k} of {} values", samples * per_sample)))?;
        let raw = u128::from_str_radix(word, 16)
            .map_err(|_| bad(format!("value {k} is not hex: {word:?}")))?;
        let mask = if w >= 128 {
            u128::MAX
        } else {
            (1u128 << w) - 1
        };
        let raw = raw & mask;
        let code = if format.is_signed() && w < 128 && raw >> (w - 1) & 1 == 1 {
            raw as i128 - (1i128 << w)
        } else {
            raw as i128
        };
        codes.push(code);
    }
    if words.next().is_some() {
        return Err(bad("more values than expected".to_string()));
    }
    Ok(codes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn outputs_are_sign_extended() {
        let f: qfx_fixed::Format = "ap_fixed<8,3>".parse().unwrap();
        let got = parse_outputs("qfx-outputs 1 1 2 8\n000000ff 0000007f\n", 1, 2, f).unwrap();
        assert_eq!(got, vec![-1, 127]);
        let u: qfx_fixed::Format = "ap_ufixed<8,3>".parse().unwrap();
        let got = parse_outputs("qfx-outputs 1 1 1 8\n000000ff\n", 1, 1, u).unwrap();
        assert_eq!(got, vec![255]);
        for bad in [
            "qfx-outputs 1 1 2 8\n000000ff\n",
            "qfx-outputs 1 1 2 9\n0 0\n",
            "x",
        ] {
            assert!(parse_outputs(bad, 1, 2, f).is_err(), "{bad:?}");
        }
    }
}
