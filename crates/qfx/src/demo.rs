//! `qfx demo`: the main job on the embedded Fashion-MNIST subset, with no network access:
//! float pre-training → PTQ → QAT with learned binary points at a low bit width → a comparison
//! table → HLS export of the QAT model and bit-exact verification of the C++ against the
//! integer engine.

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

use anyhow::{bail, Context, Result};
use clap::Args;
use qfx_train::config::RunConfig;
use qfx_train::data::Task;
use qfx_train::run::{self, RunDir, Start};

use crate::train_cmd::{fmt_acc, load_data, stop_on_ctrl_c, train_with_progress};

/// `qfx demo`.
#[derive(Args, Debug)]
#[command(after_help = "Example:
  qfx demo                       # about 1.5 minutes on 2 cores
  qfx demo --bits 6 --run runs/demo6")]
pub struct DemoArgs {
    /// Where the runs go (float/, ptq/, qat/, hls/).
    #[arg(long, default_value = "runs/demo")]
    pub run: PathBuf,
    /// Word width of every quantized tensor.
    #[arg(long, default_value_t = 4)]
    pub bits: u32,
    /// Float pre-training epochs.
    #[arg(long, default_value_t = 8)]
    pub float_epochs: usize,
    /// QAT epochs.
    #[arg(long, default_value_t = 4)]
    pub qat_epochs: usize,
    /// Test images run through the generated C++ for the bit-exactness check.
    #[arg(long, default_value_t = 200)]
    pub verify_samples: usize,
}

pub fn run(args: DemoArgs) -> Result<()> {
    let began = Instant::now();
    let mut float = RunConfig::default();
    float.quant.enabled = false;
    float.train.epochs = args.float_epochs;
    float.train.lr = 2e-3;
    let mut quant = float.clone();
    quant.quant.enabled = true;
    quant.quant.bits = args.bits;
    let mut qat = quant.clone();
    qat.train.epochs = args.qat_epochs;
    qat.train.lr = 1e-3;
    let dir = |name: &str| args.run.join(name);
    prepare(&args, [&float, &quant, &qat], &dir)?;
    let stop = stop_on_ctrl_c()?;
    let data = load_data(&float)?;
    outln!(
        "qfx demo: small CNN on the embedded Fashion-MNIST subset ({} train / {} test images), \
         every tensor quantized to {} bits",
        data.train().len(),
        data.test().len(),
        args.bits
    );

    outln!("\n[1/4] float pre-training ({} epochs)", args.float_epochs);
    let f = train_with_progress(&dir("float"), &float, &data, Start::Fresh, &stop)?;
    interrupted(f.finished, &stop)?;

    outln!("\n[2/4] post-training quantization (calibrated binary points, no training)");
    let (_, ptq) = run::ptq(&dir("ptq"), &dir("float"), &quant, &data)?;
    let ptq = *ptq.accuracy().context("the demo's CNN is a classifier")?;
    outln!("  PTQ test {}", fmt_acc(&ptq));
    interrupted(true, &stop)?;

    outln!(
        "\n[3/4] QAT with learned binary points ({} epochs from the float model)",
        args.qat_epochs
    );
    let q = train_with_progress(&dir("qat"), &qat, &data, Start::From(dir("float")), &stop)?;
    interrupted(q.finished, &stop)?;

    let ir = run::model_of_record(&dir("qat"))?.ir;
    let classes = Task::Classification;
    let exact = crate::exact::evaluate(&ir, data.test(), classes, 0)?;
    let ptq_ir = run::model_of_record(&dir("ptq"))?.ir;
    let ptq_exact = crate::exact::evaluate(&ptq_ir, data.test(), classes, 0)?;

    let pct = |a: f64| format!("{:.2}%", a * 100.0);
    let top1 = |s: Option<run::Score>| s.and_then(|s| s.accuracy().map(|a| a.top1));
    let fa = top1(f.score).context("the float run finished without a test accuracy")?;
    let qa = top1(q.score).context("the QAT run finished without a test accuracy")?;
    outln!("\n== Test accuracy, {} images ({}-bit fixed point everywhere: weights, biases, accumulators, BatchNorm, activations)", data.test().len(), args.bits);
    outln!(
        "{:<34}{:>14}{:>20}",
        "model",
        "emulation",
        "bit-exact engine"
    );
    outln!("{:<34}{:>14}{:>20}", "float", pct(fa), "-");
    outln!(
        "{:<34}{:>14}{:>20}",
        "PTQ (calibrated points)",
        pct(ptq.top1),
        pct(ptq_exact.top1())
    );
    outln!(
        "{:<34}{:>14}{:>20}",
        "QFX (QAT, learned points)",
        pct(qa),
        pct(exact.top1())
    );
    outln!(
        "QFX − PTQ: {:+.2} points; float − QFX: {:+.2} points",
        (qa - ptq.top1) * 100.0,
        (fa - qa) * 100.0
    );

    outln!("\n[4/4] HLS export and bit-exact verification");
    crate::hls_cmd::export_and_verify(
        &dir("qat"),
        &dir("hls"),
        (data.test(), classes),
        args.verify_samples,
    )?;
    outln!(
        "\ndone in {:.0} s. Runs: {}; report: `qfx report --run {}`",
        began.elapsed().as_secs_f64(),
        args.run.display(),
        dir("qat").display()
    );
    Ok(())
}

/// Everything the demo can check before it deletes or trains anything: its settings (as the
/// runs will use them), its folder, and that the runs it replaces hold only what qfx wrote.
/// Then it clears those runs (its earlier output), so the demo can be run again in one place.
fn prepare(
    args: &DemoArgs,
    [float, quant, qat]: [&RunConfig; 3],
    dir: &dyn Fn(&str) -> PathBuf,
) -> Result<()> {
    float
        .validate()
        .with_context(|| format!("--float-epochs {}", args.float_epochs))?;
    quant
        .validate()
        .with_context(|| format!("--bits {}", args.bits))?;
    qat.validate()
        .with_context(|| format!("--qat-epochs {}", args.qat_epochs))?;
    if args.verify_samples == 0 {
        bail!("--verify-samples must be at least 1");
    }
    if let Ok(m) = std::fs::metadata(&args.run) {
        if !m.is_dir() {
            bail!(
                "{} exists and is not a directory (it is {}): the demo writes its runs into a \
                 folder",
                args.run.display(),
                qfx_fs::file_kind(&m)
            );
        }
    }
    let runs = ["float", "ptq", "qat"].map(|name| RunDir::new(dir(name)));
    for r in &runs {
        run::check_clearable(r)?;
    }
    qfx_hls::check_out_dir(&dir("hls"), false)?;
    for r in &runs {
        run::clear_run(r)?;
    }
    Ok(())
}

/// Stops the demo between its stages when a run stopped early or an interrupt (Ctrl-C,
/// SIGTERM) came while a stage that does not poll for it was running.
fn interrupted(finished: bool, stop: &AtomicBool) -> Result<()> {
    if !finished || stop.load(Ordering::SeqCst) {
        anyhow::bail!("interrupted; the checkpoints written so far are kept");
    }
    Ok(())
}
