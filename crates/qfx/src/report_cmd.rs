//! `qfx report`: what training did to every tensor's format, what values flowed through each
//! layer on real data, and plots of the training curves and the learned binary points.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use clap::Args;
use qfx_fixed::Format;
use qfx_train::run::{self, Checkpoint, EpochMetrics, RunDir};

use crate::plot::{binary_point_panels, line_chart, PointHistory, Series};

/// `qfx report`.
#[derive(Args, Debug)]
#[command(after_help = "Examples:
  qfx report --run runs/demo/qat
  qfx report --run runs/qat --samples 1000 --out reports/qat
  qfx report --run runs/mlp --rtl rtl/mlp      # estimate next to `qfx synth`'s measurement")]
pub struct ReportArgs {
    /// A run directory (QAT, PTQ or float).
    #[arg(long)]
    pub run: PathBuf,
    /// Test images run through the integer engine for value ranges and clipping.
    #[arg(long, default_value_t = 200)]
    pub samples: usize,
    /// Where report.md and the SVG plots go (default: the run directory).
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// A Verilog project of this run's model synthesized with `qfx synth`: its measured
    /// resources are shown next to the estimate (default: RUN/rtl when it holds a synthesis
    /// result).
    #[arg(long, value_name = "DIR")]
    pub rtl: Option<PathBuf>,
}

/// Fractional-bit range `F` of a list of formats, e.g. `5` or `4..6`.
fn frac_range(fs: &[Format]) -> (i32, i32) {
    let f = fs.iter().map(|f| f.frac_bits() as i32);
    (f.clone().min().unwrap_or(0), f.max().unwrap_or(0))
}

fn show_range((lo, hi): (i32, i32)) -> String {
    if lo == hi {
        lo.to_string()
    } else {
        format!("{lo}..{hi}")
    }
}

/// Value range of a layer constant (`suffix` is `.weight`, `.bias`, `.scale`, … as in the
/// format table; see `qfx_ir::Op::constants`).
fn constant_range(op: &qfx_ir::Op, suffix: &str) -> Option<(f64, f64)> {
    let role = suffix.strip_prefix('.')?;
    let (_, codes) = op.constants().into_iter().find(|(r, _)| *r == role)?;
    let values = (0..codes.codes.len()).map(|i| codes.value(i).to_f64());
    Some(
        values.fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), v| {
            (lo.min(v), hi.max(v))
        }),
    )
}

/// Writes one of the report's files atomically.
fn write_report_file(path: &Path, bytes: &[u8]) -> Result<()> {
    qfx_fs::write_atomic(path, bytes).with_context(|| format!("writing {}", path.display()))
}

/// How an earlier report's files begin: `report.md` with its title, the plots with the SVG
/// element `plot.rs` writes.
const REPORT_TITLE: &str = "# qfx report: ";
const PLOT_START: &str = r#"<svg xmlns="http://www.w3.org/2000/svg" width=""#;

/// Refuses to write the report into `out` (a folder given with `--out`) when a file of a
/// report's name there was not written by `qfx report`: it is the user's, not ours to replace.
fn check_out_files(out: &Path) -> Result<()> {
    for name in RunDir::REPORT_FILES {
        let path = out.join(name);
        if std::fs::symlink_metadata(&path).is_err() {
            continue;
        }
        let mut head = vec![0u8; 256];
        let n = qfx_fs::open_regular(&path)
            .and_then(|mut f| std::io::Read::read(&mut f, &mut head))
            .with_context(|| format!("cannot replace {}", path.display()))?;
        let head = String::from_utf8_lossy(&head[..n]);
        let start = if name == RunDir::REPORT {
            REPORT_TITLE
        } else {
            PLOT_START
        };
        if !head.starts_with(start) {
            bail!(
                "{} exists and was not written by `qfx report`: refusing to overwrite it; \
                 choose another --out folder",
                path.display()
            );
        }
    }
    Ok(())
}

pub fn run(args: ReportArgs) -> Result<()> {
    let ckpt = Checkpoint::load(&args.run)?;
    if let Some(note) = &ckpt.recovered {
        errln!("qfx: warning: {note}");
    }
    let config = &ckpt.meta.config;
    let out_dir = args.out.clone().unwrap_or_else(|| args.run.clone());
    match std::fs::metadata(&out_dir) {
        Ok(m) if !m.is_dir() => bail!(
            "{} exists and is not a directory (it is {}): the report goes into a folder",
            out_dir.display(),
            qfx_fs::file_kind(&m)
        ),
        Ok(_) => {}
        Err(_) => std::fs::create_dir_all(&out_dir)
            .with_context(|| format!("cannot create directory {}", out_dir.display()))?,
    }
    if args.out.is_some() {
        check_out_files(&out_dir)?;
    }
    let run_dir = RunDir::new(&args.run);
    // No metrics file is a run without finished epochs; one that cannot be read is an error.
    let metrics = if std::fs::symlink_metadata(run_dir.metrics()).is_ok() {
        run::read_metrics(&args.run)?
    } else {
        Vec::new()
    };
    let mut md = String::new();
    writeln!(md, "{REPORT_TITLE}{}\n", args.run.display())?;
    let kind = if config.quant.enabled {
        format!("{}-bit fixed point", config.quant.bits)
    } else {
        "float".into()
    };
    writeln!(
        md,
        "{kind}, {} epochs done, {}\n",
        ckpt.meta.epoch,
        ckpt.meta
            .test_summary()
            .unwrap_or_else(|| "test accuracy not measured".into())
    )?;

    let has_record = std::fs::symlink_metadata(run_dir.ir()).is_ok();
    if config.quant.enabled && (has_record || ckpt.meta.finished) {
        // The run's model of record, or the reason it cannot be used.
        let record = run::model_of_record(&args.run)?;
        if let Some(note) = record.note.filter(|n| Some(n) != ckpt.recovered.as_ref()) {
            errln!("qfx: warning: {note}");
        }
        let ir = record.ir;
        let init = match qfx_ir::Model::load(&run_dir.init_ir()) {
            Ok(m) => Some(m),
            Err(e) => {
                errln!("qfx: warning: no calibrated formats to compare with: {e}");
                None
            }
        };
        let now = run::formats(&ir);
        let before = init.as_ref().map(run::formats).unwrap_or_default();
        // Only the test split is used: missing training batches are only warned about.
        let data = crate::train_cmd::load_data_with(config, true)?;
        let stats = crate::exact::layer_stats(&ir, data.test(), args.samples)?;
        let analysis = qfx_engine::analyze(&ir)?;
        writeln!(
            md,
            "## Tensors\n\nIn execution order. F = fractional bits (binary point); \"moved\" = F \
             after training − F at calibration (per-channel tensors: the largest change). \
             \"seen\" and \"clipped\": the bit-exact integer engine on {} test {} (clipped = \
             overflow events, saturations or wraps, per value; accumulator events are counted \
             with the layer). \"worst case\": static range analysis over every input the input \
             format can hold.\n",
            stats.images,
            data.test().noun()
        )?;
        writeln!(
            md,
            "| tensor | format | F at start | F now | moved | range | clipped | worst case |"
        )?;
        writeln!(md, "|---|---|---|---|---|---|---|---|")?;
        for (layer, worst_case) in ir.layers.iter().zip(&analysis.layers) {
            let suffixes = [
                "",
                ".weight",
                ".bias",
                ".acc",
                ".scale",
                ".shift",
                ".reciprocal",
            ];
            for suffix in suffixes {
                let name = format!("{}{suffix}", layer.name);
                let Some(fs) = now.get(&name) else { continue };
                let f_now = frac_range(fs);
                let start = before.get(&name).map(|b| frac_range(b));
                let moved = match before.get(&name) {
                    Some(b) if b.len() == fs.len() => b
                        .iter()
                        .zip(fs)
                        .map(|(x, y)| y.frac_bits() as i32 - x.frac_bits() as i32)
                        .max_by_key(|d| d.abs())
                        .map(|d| format!("{d:+}"))
                        .unwrap_or_default(),
                    Some(_) => format!("{:+}", f_now.1 - start.map_or(0, |s| s.1)),
                    None => "-".into(),
                };
                let (range, clipped) = match (suffix, stats.layers.get(&name)) {
                    ("", Some(s)) => (
                        format!("seen [{}, {}]", s.min, s.max),
                        format!(
                            "{:.3}%",
                            s.overflows as f64 * 100.0 / s.values.max(1) as f64
                        ),
                    ),
                    _ => (
                        constant_range(&layer.op, suffix)
                            .map(|(lo, hi)| format!("[{lo}, {hi}]"))
                            .unwrap_or_default(),
                        String::new(),
                    ),
                };
                let check = match suffix {
                    "" => Some(&worst_case.output),
                    ".acc" => worst_case.accumulator.as_ref(),
                    _ => None,
                };
                let worst = check
                    .map(|c| {
                        if c.can_overflow() {
                            format!("can overflow by {} bit(s)", c.short_bits)
                        } else {
                            "safe".to_string()
                        }
                    })
                    .unwrap_or_default();
                let shown = if fs.len() == 1 {
                    format!("`{}`", fs[0])
                } else {
                    let w = fs.iter().map(|f| f.width());
                    let (lo, hi) = (w.clone().min().unwrap_or(0), w.max().unwrap_or(0));
                    let widths = if lo == hi {
                        format!("W {lo}")
                    } else {
                        format!("W {lo}–{hi}")
                    };
                    format!("{} formats (per channel, {widths})", fs.len())
                };
                writeln!(
                    md,
                    "| {name} | {shown} | {} | {} | {moved} | {range} | {clipped} | {worst} |",
                    start.map(show_range).unwrap_or_else(|| "-".into()),
                    show_range(f_now)
                )?;
            }
        }
        writeln!(md)?;
        let cost = qfx_hls::cost::estimate(&ir)?;
        writeln!(
            md,
            "## Resource estimate\n\nFirst-order counts for a fully parallel implementation \
             (reuse factor 1): {} DSP, about {} LUT, {} bit operations per inference. Products \
             with both operands wider than 10 bits use DSPs, narrower ones LUTs, K-hot ones \
             shifts and adders (the cost model and its known error: README, \"K-hot \
             quantization and resource estimates\").\n\n```text\n{cost}\n```\n",
            cost.dsp(),
            cost.lut(),
            cost.bops()
        )?;
        let default_rtl = args.run.join("rtl");
        let rtl = args.rtl.clone().or_else(|| {
            default_rtl
                .join(qfx_rtl::SYNTH_FILE)
                .is_file()
                .then_some(default_rtl)
        });
        if let Some(dir) = &rtl {
            writeln!(md, "{}", measured(dir, &ir, &cost)?)?;
        }
        if !metrics.is_empty() {
            let svg = points_chart(&metrics, &ir, &before);
            write_report_file(&out_dir.join(RunDir::REPORT_POINTS), svg.as_bytes())?;
            writeln!(md, "![binary points]({})\n", RunDir::REPORT_POINTS)?;
        }
    }
    if !metrics.is_empty() {
        write_report_file(
            &out_dir.join(RunDir::REPORT_CURVES),
            curves_chart(&metrics).as_bytes(),
        )?;
        writeln!(
            md,
            "## Training\n\n![training curves]({})\n",
            RunDir::REPORT_CURVES
        )?;
        if metrics.iter().any(|m| m.cost.is_some()) {
            let config = run_config_cost(&args.run);
            write_report_file(
                &out_dir.join(RunDir::REPORT_COST),
                cost_chart(&metrics, &config).as_bytes(),
            )?;
            writeln!(md, "{}", cost_table(&metrics, &config))?;
            writeln!(md, "![hardware cost]({})\n", RunDir::REPORT_COST)?;
        }
        let regression = metrics.iter().any(|m| m.test.errors().is_some());
        if regression {
            writeln!(
                md,
                "| epoch | lr | train loss (MSE) | test MSE | test MAE | seconds |"
            )?;
        } else {
            writeln!(
                md,
                "| epoch | lr | train loss | train acc | test top-1 | seconds |"
            )?;
        }
        writeln!(md, "|---|---|---|---|---|---|")?;
        for m in &metrics {
            let (a, b) = match &m.test {
                run::Score::Accuracy(t) => (
                    format!("{:.2}%", m.train_accuracy.unwrap_or(0.0) * 100.0),
                    format!("{:.2}%", t.top1 * 100.0),
                ),
                run::Score::Errors(e) => (format!("{:.6}", e.mse), format!("{:.6}", e.mae)),
            };
            let loss = if regression {
                format!("{:.6}", m.train_loss)
            } else {
                format!("{:.4}", m.train_loss)
            };
            writeln!(
                md,
                "| {} | {:.2e} | {loss} | {a} | {b} | {:.1} |",
                m.epoch, m.lr, m.seconds
            )?;
        }
    }
    let path = out_dir.join(RunDir::REPORT);
    write_report_file(&path, md.as_bytes())?;
    out!("{md}");
    errln!("report written to {}", path.display());
    Ok(())
}

/// The synthesis result of the Verilog project `dir` next to the estimate, after checking
/// that the project was built from this very model.
fn measured(
    dir: &std::path::Path,
    ir: &qfx_ir::Model,
    cost: &qfx_hls::cost::CostReport,
) -> Result<String> {
    let project_ir = qfx_ir::Model::load(&dir.join(qfx_rtl::IR_FILE))
        .with_context(|| format!("{} is not a qfx Verilog project", dir.display()))?;
    if &project_ir != ir {
        anyhow::bail!(
            "{} was built from another model than this run's model.ir.json; export it again \
             (`qfx export verilog`) and synthesize it (`qfx synth`)",
            dir.display()
        );
    }
    let path = dir.join(qfx_rtl::SYNTH_FILE);
    let text = std::fs::read_to_string(&path).with_context(|| {
        format!(
            "{} has no synthesis result; run `qfx synth --project {}` first",
            dir.display(),
            dir.display()
        )
    })?;
    let synth = qfx_rtl::SynthReport::from_json(&text)?;
    let table = qfx_rtl::side_by_side(cost, &synth)?;
    Ok(format!(
        "## Measured: Yosys synthesis of the Verilog design\n\n{} (`synth_xilinx -family {}`) on \
         the fully unrolled design of `qfx export verilog`, next to the estimate. Yosys maps \
         to the real primitives (LUT, FF, CARRY, DSP48E2); Vivado optimizes further after \
         placement.\n\n{table}",
        synth.yosys, synth.family
    ))
}

/// The run's cost settings (default when its configuration cannot be read: the report then
/// shows no budget).
fn run_config_cost(run: &Path) -> qfx_train::cost::CostConfig {
    qfx_fs::read_to_string_regular(&RunDir::new(run).config())
        .ok()
        .and_then(|t| qfx_train::config::RunConfig::from_toml(&t).ok())
        .map(|c| c.cost)
        .unwrap_or_default()
}

/// The LUT and DSP estimate and β per epoch, against the budgets.
fn cost_table(metrics: &[EpochMetrics], config: &qfx_train::cost::CostConfig) -> String {
    let budget = |b: Option<f64>, what: &str| {
        b.map_or(format!("no {what} budget"), |b| {
            format!("budget {b} {what}")
        })
    };
    let kind = match config.kind {
        qfx_train::cost::CostKind::Lut => "qfx's LUT estimate",
        qfx_train::cost::CostKind::Ebops => "EBOPs",
    };
    let mut t = format!(
        "## Hardware cost over training\n\nThe exported model's estimate after each epoch \
         ({}, {}; the cost in the loss: {kind}).\n\n| epoch | LUT | DSP | BOPs | β |\n\
         |---|---|---|---|---|\n",
        budget(config.budget_lut, "LUT"),
        budget(config.budget_dsp, "DSP"),
    );
    for m in metrics {
        let Some(c) = &m.cost else { continue };
        let beta = m.beta.map_or("-".to_string(), |b| format!("{b:.3}"));
        t += &format!(
            "| {} | {} | {} | {} | {beta} |\n",
            m.epoch, c.lut, c.dsp, c.bops
        );
    }
    t
}

fn cost_chart(metrics: &[EpochMetrics], config: &qfx_train::cost::CostConfig) -> String {
    let with_cost: Vec<&EpochMetrics> = metrics.iter().filter(|m| m.cost.is_some()).collect();
    let series = |name: &str, f: &dyn Fn(&EpochMetrics) -> f64| Series {
        name: name.to_string(),
        points: with_cost.iter().map(|m| (m.epoch as f64, f(m))).collect(),
        step: false,
    };
    let lut = |m: &EpochMetrics| m.cost.map_or(0.0, |c| c.lut as f64);
    let mut lines = vec![series("LUT estimate (thousands)", &|m| lut(m) / 1e3)];
    if let Some(b) = config.budget_lut {
        lines.push(series("LUT budget (thousands)", &|_| b / 1e3));
    }
    if with_cost.iter().any(|m| m.beta.is_some()) {
        lines.push(series("β", &|m| m.beta.unwrap_or(0.0)));
    }
    line_chart("Hardware cost", "epoch", "thousand LUT / β", &lines)
}

fn curves_chart(metrics: &[EpochMetrics]) -> String {
    let series = |name: &str, f: &dyn Fn(&EpochMetrics) -> f64| Series {
        name: name.to_string(),
        points: metrics.iter().map(|m| (m.epoch as f64, f(m))).collect(),
        step: false,
    };
    if metrics.iter().any(|m| m.test.errors().is_some()) {
        let err = |m: &EpochMetrics, f: fn(&run::Errors) -> f64| m.test.errors().map_or(0.0, f);
        return line_chart(
            "Training curves",
            "epoch",
            "mean squared / absolute error",
            &[
                series("train loss (MSE)", &|m| m.train_loss),
                series("test MSE", &|m| err(m, |e| e.mse)),
                series("test MAE", &|m| err(m, |e| e.mae)),
            ],
        );
    }
    line_chart(
        "Training curves",
        "epoch",
        "loss / accuracy",
        &[
            series("train loss", &|m| m.train_loss),
            series("train accuracy", &|m| m.train_accuracy.unwrap_or(0.0)),
            series("test accuracy", &|m| {
                m.test.accuracy().map_or(0.0, |a| a.top1)
            }),
        ],
    )
}

/// The output binary point of every layer over the epochs, one panel per layer in execution
/// order, the calibrated point (`calibrated`, from the initial IR) as epoch 0.
fn points_chart(
    metrics: &[EpochMetrics],
    ir: &qfx_ir::Model,
    calibrated: &BTreeMap<String, Vec<Format>>,
) -> String {
    // Layer outputs only, with one format each (per-channel outputs have no single point).
    let single = |fs: Option<&Vec<Format>>| match fs.map(Vec::as_slice) {
        Some([f]) => Some(f.frac_bits() as i32),
        _ => None,
    };
    let histories: Vec<PointHistory> = ir
        .layers
        .iter()
        .filter_map(|layer| {
            let name = &layer.name;
            let mut points: Vec<(usize, i32)> = Vec::new();
            if let Some(f) = single(calibrated.get(name)) {
                points.push((0, f));
            }
            for m in metrics {
                if let Some(f) = single(m.formats.get(name)) {
                    points.push((m.epoch, f));
                }
            }
            (!points.is_empty()).then(|| PointHistory {
                name: name.clone(),
                points,
            })
        })
        .collect();
    binary_point_panels("Learned binary points (layer outputs)", &histories)
}
