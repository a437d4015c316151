//! The training workflow through the CLI: a run killed with SIGKILL, or stopped with Ctrl-C
//! (SIGINT, which saves a checkpoint after the current step), and resumed ends with the same
//! weights as an uninterrupted one; PTQ, QAT, exact evaluation and the report work on the
//! result; bad data and configurations give clear errors.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use qfx_train::run::RunDir;

fn qfx() -> Command {
    Command::new(env!("CARGO_BIN_EXE_qfx"))
}

/// A small, quick CNN run on part of the embedded data.
const SMALL: &[&str] = &[
    "--set",
    "model.channels=[4, 8]",
    "--set",
    "train.train_limit=1024",
    "--set",
    "train.test_limit=200",
    "--seed",
    "3",
];

/// `qfx train --float` of the small configuration for `epochs` epochs into `run`.
fn float_train(run: &Path, epochs: u32) -> Command {
    let mut c = qfx();
    c.args(["train", "--float", "--epochs", &epochs.to_string(), "--run"])
        .arg(run)
        .args(SMALL);
    c
}

#[track_caller]
fn ok(cmd: &mut Command) -> String {
    let out: Output = cmd.output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{cmd:?} failed: {stderr}");
    String::from_utf8_lossy(&out.stdout).to_string()
}

#[track_caller]
fn fails(cmd: &mut Command, message: &str) {
    let out = cmd.output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{cmd:?}: {stderr}");
    assert!(
        stderr.contains(message),
        "{cmd:?}: `{stderr}` lacks `{message}`"
    );
    assert!(!stderr.contains("panicked"), "{stderr}");
}

fn final_model(run: &Path) -> Vec<u8> {
    let checkpoint = RunDir::new(run).latest_checkpoint().unwrap();
    std::fs::read(checkpoint.model()).unwrap()
}

fn tempdir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("qfx-cli-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// Starts `cmd` (a training run into `run`), sends it Ctrl-C (SIGINT) once its first
/// checkpoint exists, and checks that it reports the interruption and saved a new checkpoint
/// on the way out.
fn interrupt_after_first_checkpoint(cmd: &mut Command, run: &Path) {
    let child = cmd
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let began = Instant::now();
    while !RunDir::new(run).latest().exists() {
        assert!(
            began.elapsed() < Duration::from_secs(300),
            "no checkpoint appeared"
        );
        std::thread::sleep(Duration::from_millis(5));
    }
    let first = std::fs::read_to_string(RunDir::new(run).latest()).unwrap();
    let sent = Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(sent.success());
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(130), "{stderr}");
    assert!(stderr.contains("interrupted: checkpoint saved"), "{stderr}");
    let saved = std::fs::read_to_string(RunDir::new(run).latest()).unwrap();
    assert_ne!(saved, first, "Ctrl-C wrote no new checkpoint");
}

#[test]
fn ctrl_c_saves_mid_epoch_and_the_run_resumes_to_the_same_weights() {
    let tmp = tempdir("ctrl-c");
    let (a, b) = (tmp.join("a"), tmp.join("b"));
    ok(&mut float_train(&a, 4));
    // Interrupted once the first epoch's checkpoint exists, i.e. somewhere in a later epoch.
    interrupt_after_first_checkpoint(&mut float_train(&b, 4), &b);
    ok(qfx().args(["train", "--resume", "--run"]).arg(&b));
    assert_eq!(final_model(&a), final_model(&b), "resumed weights differ");
}

#[test]
fn killed_run_resumes_to_the_same_weights_then_ptq_qat_eval_report() {
    let tmp = tempdir("pipeline");
    let (a, b) = (tmp.join("a"), tmp.join("b"));
    ok(&mut float_train(&a, 3));

    // Kill -9 as soon as the first checkpoint exists, then resume.
    let mut child = float_train(&b, 3)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let began = Instant::now();
    while !RunDir::new(&b).latest().exists() {
        assert!(
            began.elapsed() < Duration::from_secs(300),
            "no checkpoint appeared"
        );
        std::thread::sleep(Duration::from_millis(5));
    }
    child.kill().unwrap();
    let status = child.wait().unwrap();
    assert!(
        !status.success(),
        "the run finished before it could be killed"
    );
    let meta = std::fs::read_to_string(RunDir::new(&b).latest()).unwrap();
    assert!(meta.starts_with("step-"), "{meta}");
    ok(qfx().args(["train", "--resume", "--run"]).arg(&b));
    assert_eq!(final_model(&a), final_model(&b), "resumed weights differ");

    // PTQ and QAT from the float run; exact evaluation; the report.
    let out = ok(qfx()
        .args(["ptq", "--bits", "6", "--from"])
        .arg(&a)
        .arg("--run")
        .arg(tmp.join("ptq")));
    assert!(out.contains("PTQ at 6 bits"), "{out}");
    ok(qfx()
        .args(["train", "--bits", "6", "--epochs", "1", "--from"])
        .arg(&a)
        .arg("--run")
        .arg(tmp.join("qat")));
    let out = ok(qfx()
        .args(["eval", "--exact", "--limit", "50", "--checkpoint"])
        .arg(tmp.join("qat")));
    assert!(out.contains("bit-exact integer engine: top-1"), "{out}");
    let out = ok(qfx()
        .args(["report", "--samples", "20", "--run"])
        .arg(tmp.join("qat")));
    assert!(out.contains("| tensor | format |"), "{out}");
    assert!(out.contains("ap_fixed<6,"), "{out}");
    // The resource estimate: a 6-bit CNN multiplies in LUTs, never in DSPs.
    assert!(out.contains("## Resource estimate"), "{out}");
    assert!(out.contains("reuse factor 1): 0 DSP,"), "{out}");
    for f in ["report.md", "curves.svg", "binary_points.svg"] {
        assert!(tmp.join("qat").join(f).is_file(), "{f} missing");
    }
    // A QAT run cannot start from a checkpoint of another network.
    fails(
        qfx()
            .args([
                "train",
                "--bits",
                "6",
                "--epochs",
                "1",
                "--set",
                "model.channels=[8, 8]",
                "--from",
            ])
            .arg(&a)
            .arg("--run")
            .arg(tmp.join("bad")),
        "different network",
    );
}

#[test]
fn bad_data_and_configurations_are_clear_errors() {
    let tmp = tempdir("errors");
    let run = tmp.join("run");
    fails(
        qfx()
            .args(["train", "--run"])
            .arg(&run)
            .arg("--data")
            .arg(tmp.join("nowhere")),
        "cannot load data",
    );
    let cfg = tmp.join("bad.toml");
    std::fs::write(&cfg, "[train]\nepochz = 3\n").unwrap();
    fails(
        qfx()
            .args(["train", "--run"])
            .arg(&run)
            .arg("--config")
            .arg(&cfg),
        "epochz",
    );
    fails(
        qfx()
            .args(["train", "--run"])
            .arg(&run)
            .args(["--set", "train.lr=-1"]),
        "train.lr",
    );
    // A truncated IDX file.
    let data = tmp.join("idx");
    std::fs::create_dir_all(&data).unwrap();
    let src = qfx_dir().join("data/fashion-mnist-subset");
    for f in std::fs::read_dir(&src).unwrap().flatten() {
        if f.path().extension().is_some_and(|e| e == "gz") {
            std::fs::copy(f.path(), data.join(f.file_name())).unwrap();
        }
    }
    let labels = data.join("train-labels-idx1-ubyte.gz");
    let bytes = std::fs::read(&labels).unwrap();
    std::fs::write(&labels, &bytes[..bytes.len() / 2]).unwrap();
    fails(
        qfx()
            .args(["train", "--run"])
            .arg(&run)
            .arg("--data")
            .arg(&data),
        "train-labels-idx1-ubyte",
    );
    // Images of the wrong shape for the configured model.
    fails(
        qfx()
            .args(["train", "--run"])
            .arg(&run)
            .args(["--set", "model.image=32"]),
        "the CNN expects 1×32×32",
    );
}

/// `--model bnn` with every non-binary multiplier K-hot: trains, exports, and its report
/// estimates 0 DSPs; the same network in plain 12-bit fixed point needs DSPs.
#[test]
fn binarized_network_from_the_command_line() {
    let tmp = tempdir("bnn");
    let quick = [
        "--model",
        "bnn",
        "--bits",
        "12",
        "--epochs",
        "1",
        "--set",
        "model.widths=[8, 8, 16]",
        "--set",
        "train.train_limit=256",
        "--set",
        "train.test_limit=100",
    ];
    let dsp = |run: &Path| -> u64 {
        ok(qfx().args(["report", "--samples", "10", "--run"]).arg(run));
        let report = std::fs::read_to_string(run.join("report.md")).unwrap();
        let at = report.find("reuse factor 1): ").expect("resource estimate") + 17;
        report[at..].split(' ').next().unwrap().parse().unwrap()
    };
    let fixed = tmp.join("fixed");
    ok(qfx().args(["train", "--run"]).arg(&fixed).args(quick));
    assert!(dsp(&fixed) > 0);
    let khot = tmp.join("khot");
    ok(qfx().args(["train", "--run"]).arg(&khot).args(quick).args([
        "--set",
        "quant.weight_khot={ k = 2 }",
        "--set",
        "quant.bn_khot={ k = 2 }",
        "--set",
        "quant.slope_khot={ k = 1 }",
    ]));
    assert_eq!(dsp(&khot), 0);
    let ir = std::fs::read_to_string(RunDir::new(&khot).ir()).unwrap();
    assert!(ir.contains("\"kind\": \"sign\"") && ir.contains("\"kind\": \"prelu\""));
    fails(
        qfx().args(["train", "--run"]).arg(tmp.join("bad")).args([
            "--model",
            "bnn",
            "--set",
            "model.widths=[16, 8, 8]",
        ]),
        "non-decreasing",
    );
}

fn qfx_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// Learned widths under a LUT budget from the command line: β is steered (recorded per epoch
/// with the estimate), the trained model is cheaper than the uniform one it started from and
/// exports, the report charts the cost, and impossible requests are refused.
#[test]
fn learned_widths_under_a_budget_from_the_command_line() {
    let tmp = tempdir("budget");
    let float = tmp.join("float");
    ok(&mut float_train(&float, 1));
    let last_cost = |run: &Path| -> (u64, Option<f64>) {
        let text = std::fs::read_to_string(run.join("metrics.jsonl")).unwrap();
        let m: serde_json::Value = serde_json::from_str(text.lines().last().unwrap()).unwrap();
        (m["cost"]["lut"].as_u64().unwrap(), m["beta"].as_f64())
    };
    let uniform = tmp.join("uniform");
    ok(qfx()
        .args(["train", "--bits", "6", "--epochs", "1", "--from"])
        .arg(&float)
        .arg("--run")
        .arg(&uniform)
        .args(SMALL));
    let (uniform_lut, beta) = last_cost(&uniform);
    assert_eq!(beta, None, "no cost term, no β");

    let budget = (uniform_lut / 2).to_string();
    let budgeted = |run: &Path| {
        let mut c = qfx();
        c.args(["train", "--bits", "6", "--learn-widths", "--epochs", "3"])
            .args([
                "--budget-lut",
                &budget,
                "--set",
                "cost.every_steps=2",
                "--from",
            ])
            .arg(&float)
            .arg("--run")
            .arg(run)
            .args(SMALL);
        c
    };
    let learned = tmp.join("learned");
    ok(&mut budgeted(&learned));
    // Stopped with Ctrl-C after its first checkpoint and resumed, a budgeted run ends with
    // the same weights, widths and β: the controller's state travels in the checkpoint.
    let stopped = tmp.join("stopped");
    interrupt_after_first_checkpoint(&mut budgeted(&stopped), &stopped);
    ok(qfx().args(["train", "--resume", "--run"]).arg(&stopped));
    assert_eq!(
        final_model(&learned),
        final_model(&stopped),
        "resumed run differs"
    );
    assert_eq!(last_cost(&learned), last_cost(&stopped));
    let (lut, beta) = last_cost(&learned);
    let beta = beta.expect("β recorded");
    assert!(
        beta > 1.0,
        "over budget at the start, β must have grown: {beta}"
    );
    assert!(lut < uniform_lut, "{lut} LUT, uniform 6-bit {uniform_lut}");
    let out = ok(qfx()
        .args(["report", "--samples", "20", "--run"])
        .arg(&learned));
    assert!(out.contains("## Hardware cost over training"), "{out}");
    assert!(learned.join("cost.svg").is_file());

    let refused: [(&[&str], &str); 5] = [
        (&["--float", "--learn-widths"], "--float contradicts"),
        (&["--float", "--budget-lut", "100"], "needs a quantized run"),
        (
            &["--bits", "6", "--budget-lut", "100"],
            "needs learned widths",
        ),
        (&["--bits", "6", "--budget-lut=-5"], "budget_lut = -5"),
        (
            &[
                "--bits",
                "6",
                "--learn-widths",
                "--set",
                "quant.overflow=\"AP_WRAP\"",
            ],
            "overflow mode",
        ),
    ];
    for (k, (flags, message)) in refused.iter().enumerate() {
        fails(
            qfx()
                .arg("train")
                .args(*flags)
                .arg("--run")
                .arg(tmp.join(format!("refused{k}"))),
            message,
        );
    }
}
