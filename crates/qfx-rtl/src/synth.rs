//! `synth`: Yosys `synth_xilinx` on a project's design, and the primitives it maps to, per
//! layer.
//!
//! The hierarchy is kept (one module per layer), so `stat` counts each layer's cells apart;
//! I/O and clock buffers are left out (`-noiopad -noclkbuf`: the network is a kernel inside a
//! larger design, not a chip). Counted: LUTs (`LUT1`–`LUT6`, and `INV`, a LUT1 on the device),
//! flip-flops (`FD*`), carry chains (`CARRY4`/`CARRY8`), DSP slices (`DSP48E1`/`DSP48E2`),
//! block RAM in 36 Kb tiles (`RAMB36*` = 1, `RAMB18*` = ½), shift-register LUTs (`SRL*`),
//! distributed RAM and wide multiplexers; anything else is listed by name. These are Yosys's
//! technology-mapped counts, not Vivado's post-placement ones (Vivado packs and optimizes
//! further), but they are measured on the real primitives, not estimated.

use std::collections::BTreeMap;
use std::fmt;
use std::path::Path;
use std::process::Command;
use std::time::Instant;

use qfx_hls::names::{comment_text, layer_ident};
use serde::{Deserialize, Serialize};

use crate::design::TOP;
use crate::project::{refuse_symlink, VERILOG_FILE, WORK_SYNTH};
use crate::tools::{run, Tool};
use crate::verify::load_project_ir;
use crate::{write_file, ErrorKind, RtlError};

/// The synthesis result inside a project (read by `qfx report`).
pub const SYNTH_FILE: &str = "synth.json";

/// Families `synth_xilinx -family` accepts.
pub const FAMILIES: [&str; 5] = ["xcup", "xcu", "xc7", "xc6s", "xc6v"];

/// Synthesis options.
#[derive(Clone, Debug, PartialEq)]
pub struct SynthOptions {
    /// `synth_xilinx -family` (default `xcup`, UltraScale+).
    pub family: String,
}

impl Default for SynthOptions {
    fn default() -> SynthOptions {
        SynthOptions {
            family: "xcup".to_string(),
        }
    }
}

/// Primitive counts of one module or of the whole design.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Resources {
    /// Look-up tables (`LUT1`–`LUT6`, `INV`).
    pub lut: u64,
    /// Flip-flops.
    pub ff: u64,
    /// Carry-chain primitives (`CARRY4` or `CARRY8`).
    pub carry: u64,
    /// DSP slices.
    pub dsp: u64,
    /// Block RAM in 36 Kb tiles.
    pub bram: f64,
    /// Shift-register LUTs.
    pub srl: u64,
    /// Distributed-RAM primitives.
    pub lutram: u64,
    /// `MUXF7`/`MUXF8`/`MUXF9`.
    pub muxf: u64,
    /// Any other primitive, by name.
    pub other: BTreeMap<String, u64>,
}

impl Resources {
    /// Counts from Yosys's `num_cells_by_type`.
    fn from_cells(cells: &BTreeMap<String, u64>, submodules: &[String]) -> Resources {
        let mut r = Resources::default();
        for (name, &n) in cells {
            let clean = name.trim_start_matches('\\');
            if submodules.iter().any(|m| m == clean) {
                continue;
            }
            match clean {
                c if c.starts_with("LUT") || c == "INV" => r.lut += n,
                c if c.starts_with("FD") || c.starts_with("LD") => r.ff += n,
                c if c.starts_with("CARRY") => r.carry += n,
                c if c.starts_with("DSP") => r.dsp += n,
                c if c.starts_with("RAMB36") => r.bram += n as f64,
                c if c.starts_with("RAMB18") => r.bram += 0.5 * n as f64,
                c if c.starts_with("SRL") => r.srl += n,
                c if c.starts_with("RAM") => r.lutram += n,
                c if c.starts_with("MUXF") => r.muxf += n,
                c => *r.other.entry(c.to_string()).or_default() += n,
            }
        }
        r
    }

    fn add(&mut self, o: &Resources) {
        self.lut += o.lut;
        self.ff += o.ff;
        self.carry += o.carry;
        self.dsp += o.dsp;
        self.bram += o.bram;
        self.srl += o.srl;
        self.lutram += o.lutram;
        self.muxf += o.muxf;
        for (k, v) in &o.other {
            *self.other.entry(k.clone()).or_default() += v;
        }
    }
}

/// One layer's measured resources.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct LayerResources {
    /// The layer's IR name.
    pub name: String,
    /// Its operation.
    pub kind: String,
    /// Its module.
    pub module: String,
    /// What it maps to.
    pub resources: Resources,
}

/// What [`synth`] measured.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SynthReport {
    /// `yosys -V`.
    pub yosys: String,
    /// The `synth_xilinx` family.
    pub family: String,
    /// Per layer, in model order.
    pub layers: Vec<LayerResources>,
    /// The top module's own cells (valid pipeline, delay registers).
    pub top: Resources,
    /// The whole design.
    pub total: Resources,
    /// Seconds Yosys ran.
    pub seconds: f64,
}

impl SynthReport {
    /// The report as JSON (what [`SYNTH_FILE`] holds).
    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(self).expect("a synthesis report serializes")
    }

    /// Reads a report written by [`synth`].
    pub fn from_json(text: &str) -> Result<SynthReport, RtlError> {
        serde_json::from_str(text).map_err(|e| {
            RtlError::new(
                ErrorKind::BadInput,
                format!("not a qfx synthesis report: {e}"),
            )
        })
    }
}

impl fmt::Display for SynthReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "{} (synth_xilinx -family {}), {:.1} s",
            self.yosys, self.family, self.seconds
        )?;
        writeln!(
            f,
            "{:<24} {:<16} {:>8} {:>8} {:>6} {:>5} {:>6} {:>5}",
            "layer", "kind", "LUT", "FF", "CARRY", "DSP", "BRAM", "SRL"
        )?;
        let row = |f: &mut fmt::Formatter<'_>, name: &str, kind: &str, r: &Resources| {
            writeln!(
                f,
                "{:<24} {:<16} {:>8} {:>8} {:>6} {:>5} {:>6} {:>5}",
                name, kind, r.lut, r.ff, r.carry, r.dsp, r.bram, r.srl
            )
        };
        for l in &self.layers {
            row(f, &comment_text(&l.name), &l.kind, &l.resources)?;
        }
        row(f, "(top: valid, delays)", "", &self.top)?;
        row(f, "total", "", &self.total)?;
        if !self.total.other.is_empty() {
            let other: Vec<String> = self
                .total
                .other
                .iter()
                .map(|(k, v)| format!("{k} {v}"))
                .collect();
            writeln!(f, "other primitives: {}", other.join(", "))?;
        }
        Ok(())
    }
}

#[derive(Deserialize)]
struct Stat {
    modules: BTreeMap<String, StatModule>,
}

#[derive(Deserialize)]
struct StatModule {
    #[serde(default)]
    num_cells_by_type: BTreeMap<String, u64>,
}

/// Yosys reads `verilog` and elaborates `qfx_top` from it (no synthesis): a quick check that
/// the Verilog is what Yosys accepts, which Verilator's acceptance does not imply.
pub fn yosys_reads(verilog: &Path) -> Result<(), RtlError> {
    let dir = verilog.parent().unwrap_or(Path::new("."));
    let file = verilog
        .file_name()
        .and_then(|f| f.to_str())
        .filter(|f| {
            f.chars()
                .all(|c| c.is_ascii_alphanumeric() || "._-".contains(c))
        })
        .ok_or_else(|| {
            RtlError::new(
                ErrorKind::BadInput,
                format!("{}: not a plain file name", verilog.display()),
            )
        })?;
    run(
        Tool::Yosys,
        Command::new(Tool::Yosys.program()).args([
            "-q",
            "-p",
            &format!("read_verilog -noautowire {file}; hierarchy -check -top {TOP}"),
        ]),
        Some(dir),
    )?;
    Ok(())
}

/// Synthesizes the project in `project` and writes [`SYNTH_FILE`] there.
pub fn synth(project: &Path, options: &SynthOptions) -> Result<SynthReport, RtlError> {
    if !FAMILIES.contains(&options.family.as_str()) {
        return Err(RtlError::new(
            ErrorKind::BadInput,
            format!(
                "unknown family {:?}: synth_xilinx supports {}",
                options.family,
                FAMILIES.join(", ")
            ),
        ));
    }
    let model = load_project_ir(project)?;
    let yosys = Tool::Yosys.version()?;
    let work = project.join(WORK_SYNTH);
    refuse_symlink(&work)?;
    std::fs::create_dir_all(&work)
        .map_err(|e| RtlError::io(format!("cannot create {}", work.display()), e))?;
    let script = format!(
        "read_verilog ../{VERILOG_FILE}\n\
         synth_xilinx -family {} -top {TOP} -noiopad -noclkbuf\n\
         tee -q -o stat.json stat -json\n",
        options.family
    );
    write_file(&work.join("synth.ys"), script.as_bytes())?;
    let _ = std::fs::remove_file(work.join("stat.json"));
    let start = Instant::now();
    run(
        Tool::Yosys,
        Command::new(Tool::Yosys.program()).args(["-q", "-l", "synth.log", "-s", "synth.ys"]),
        Some(&work),
    )?;
    let seconds = start.elapsed().as_secs_f64();
    let text = std::fs::read_to_string(work.join("stat.json"))
        .map_err(|e| RtlError::io("yosys wrote no statistics", e))?;
    let stat: Stat = serde_json::from_str(&text).map_err(|e| {
        RtlError::new(
            ErrorKind::Tool,
            format!("cannot read yosys's statistics: {e}"),
        )
    })?;
    let modules: Vec<String> = stat
        .modules
        .keys()
        .map(|k| k.trim_start_matches('\\').to_string())
        .collect();
    let cells = |m: &str| -> Resources {
        stat.modules
            .get(&format!("\\{m}"))
            .map(|s| Resources::from_cells(&s.num_cells_by_type, &modules))
            .unwrap_or_default()
    };
    let mut total = Resources::default();
    let layers: Vec<LayerResources> = model
        .layers
        .iter()
        .enumerate()
        .map(|(i, l)| {
            let module = layer_ident(i, &l.name);
            let resources = cells(&module);
            total.add(&resources);
            LayerResources {
                name: l.name.clone(),
                kind: l.op.kind().to_string(),
                module,
                resources,
            }
        })
        .collect();
    let top = cells(TOP);
    total.add(&top);
    let report = SynthReport {
        yosys,
        family: options.family.clone(),
        layers,
        top,
        total,
        seconds,
    };
    write_file(&project.join(SYNTH_FILE), report.to_json().as_bytes())?;
    Ok(report)
}
