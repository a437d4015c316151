//! Float equivalence with ONNX Runtime: every supported operator (in the layouts exporters
//! write), three whole networks (an MLP, a CNN with residual adds, a depthwise-separable CNN),
//! a model with external data and the committed PyTorch fixtures, imported into qfx, must give
//! ONNX Runtime's outputs on the same random batch within 1e-4 × the output's range. Models
//! that must be refused are refused with messages naming the node.
//!
//! The models are built by `tests/onnx_cases.py` with the `onnx` package and run by
//! `onnxruntime`, both installed on first use into a virtual environment under `target/`
//! (`pip install` of pinned versions). Without python3, its `venv` module or the package
//! registry the test prints SKIPPED, unless `QFX_REQUIRE_ONNX=1` (as `.ci/run` sets), which
//! makes that a failure.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

use qfx_onnx::{import_file, Options, SUPPORTED};

/// What `pip` installs (pinned: the tests' numbers must not move with a new release).
const PACKAGES: &[&str] = &["onnx==1.23.2", "onnxruntime==1.31.1", "numpy==2.4.6"];

fn required() -> bool {
    std::env::var("QFX_REQUIRE_ONNX").as_deref() == Ok("1")
}

fn manifest_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Runs a command; its output on failure.
fn run(cmd: &mut Command) -> Result<(), String> {
    let out = cmd
        .output()
        .map_err(|e| format!("cannot run {cmd:?}: {e}"))?;
    if !out.status.success() {
        return Err(format!(
            "{cmd:?} failed ({}): {}{}",
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    Ok(())
}

/// The virtual environment's python with `onnx` and `onnxruntime`, installed on first use.
fn python() -> Result<PathBuf, String> {
    let venv = Path::new(env!("CARGO_TARGET_TMPDIR")).join("onnx-venv");
    let py = venv.join("bin").join("python");
    let ready = |py: &Path| {
        Command::new(py)
            .args(["-c", "import onnx, onnxruntime, numpy"])
            .output()
            .is_ok_and(|o| o.status.success())
    };
    if ready(&py) {
        return Ok(py);
    }
    let _ = std::fs::remove_dir_all(&venv);
    run(Command::new("python3").arg("-m").arg("venv").arg(&venv))?;
    run(Command::new(&py)
        .args([
            "-m",
            "pip",
            "install",
            "--quiet",
            "--disable-pip-version-check",
        ])
        .args(PACKAGES))?;
    if !ready(&py) {
        return Err(format!(
            "{} cannot import onnx and onnxruntime",
            py.display()
        ));
    }
    Ok(py)
}

/// One generated case (see `tests/onnx_cases.py`).
struct Case {
    name: String,
    model: PathBuf,
    /// Input shape, input values, output values (models that import).
    io: Option<(Vec<usize>, Vec<f32>, Vec<f32>)>,
    /// Texts the error must contain (models that are refused).
    refused: Vec<String>,
}

fn floats(path: &Path) -> Vec<f32> {
    std::fs::read(path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        .chunks_exact(4)
        .map(|b| f32::from_le_bytes(b.try_into().unwrap()))
        .collect()
}

/// The committed PyTorch fixtures.
fn fixtures() -> Vec<PathBuf> {
    ["torch_cnn.onnx", "torch_mlp.onnx"]
        .iter()
        .map(|f| manifest_dir().join("tests/fixtures").join(f))
        .collect()
}

/// Generates the cases once per test process (into a fresh folder under `target/`).
fn cases() -> Option<&'static (PathBuf, Vec<Case>)> {
    static CASES: OnceLock<Result<(PathBuf, Vec<Case>), String>> = OnceLock::new();
    let result = CASES.get_or_init(|| {
        let py = python()?;
        let dir = Path::new(env!("CARGO_TARGET_TMPDIR"))
            .join(format!("onnx-cases-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        run(Command::new(&py)
            .arg(manifest_dir().join("tests/onnx_cases.py"))
            .arg(&dir)
            .args(fixtures()))?;
        let text = std::fs::read_to_string(dir.join("cases.json")).map_err(|e| e.to_string())?;
        let list: Vec<serde_json::Value> =
            serde_json::from_str(&text).map_err(|e| e.to_string())?;
        let cases = list
            .iter()
            .map(|c| {
                let name = c["name"].as_str().unwrap().to_string();
                let shape = |k: &str| -> Vec<usize> {
                    c[k].as_array()
                        .map(|a| a.iter().map(|d| d.as_u64().unwrap() as usize).collect())
                        .unwrap_or_default()
                };
                let io = c.get("input").map(|_| {
                    (
                        shape("input"),
                        floats(&dir.join(format!("{name}.input.bin"))),
                        floats(&dir.join(format!("{name}.output.bin"))),
                    )
                });
                let refused = c
                    .get("refused")
                    .and_then(|r| r.as_array())
                    .map(|r| r.iter().map(|t| t.as_str().unwrap().to_string()).collect())
                    .unwrap_or_default();
                Case {
                    name,
                    model: PathBuf::from(c["model"].as_str().unwrap()),
                    io,
                    refused,
                }
            })
            .collect();
        Ok((dir, cases))
    });
    match result {
        Ok(c) => Some(c),
        Err(e) if required() => panic!("ONNX Runtime is required (QFX_REQUIRE_ONNX=1): {e}"),
        Err(e) => {
            println!("SKIPPED ONNX Runtime equivalence: {e}");
            None
        }
    }
}

/// The largest difference between qfx's float forward and ONNX Runtime, and the output's range.
#[track_caller]
fn compare(case: &Case) -> (f32, f32) {
    let (shape, x, want) = case.io.as_ref().expect("a case that imports");
    let imported = import_file(&case.model, &Options::default())
        .unwrap_or_else(|e| panic!("{}: {e}", case.name));
    let got = imported
        .forward(x, shape[0])
        .unwrap_or_else(|e| panic!("{}: {e}", case.name));
    assert_eq!(got.len(), want.len(), "{}: output sizes differ", case.name);
    let diff = got
        .iter()
        .zip(want)
        .map(|(a, b)| (a - b).abs())
        // A NaN anywhere is a difference (`f32::max` would skip it).
        .fold(0.0f32, |m, d| {
            if m.is_nan() || d.is_nan() {
                f32::NAN
            } else {
                m.max(d)
            }
        });
    let (lo, hi) = want
        .iter()
        .fold((f32::INFINITY, f32::NEG_INFINITY), |(l, h), &v| {
            (l.min(v), h.max(v))
        });
    (diff, hi - lo)
}

#[test]
fn every_operator_and_network_matches_onnx_runtime() {
    let Some((_, cases)) = cases() else {
        return;
    };
    let mut failures = Vec::new();
    let mut operators = BTreeSet::new();
    let mut checked = 0;
    println!("{:<36} {:>12} {:>10}", "case", "max |diff|", "range");
    for case in cases.iter().filter(|c| c.io.is_some()) {
        let (diff, range) = compare(case);
        println!("{:<36} {diff:>12.3e} {range:>10.4}", case.name);
        let within = diff <= 1e-4 * range && range > 0.0;
        if !within {
            failures.push(format!(
                "{}: max |diff| {diff:e} > 1e-4 × range {range}",
                case.name
            ));
        }
        let imported = import_file(&case.model, &Options::default()).unwrap();
        operators.extend(imported.operators.keys().cloned());
        checked += 1;
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    // Every supported operator was in some model that matched.
    let missing: Vec<&&str> = SUPPORTED
        .iter()
        .filter(|op| !operators.contains(**op))
        .collect();
    assert!(missing.is_empty(), "no case uses {missing:?}");
    assert!(checked >= 45, "only {checked} cases");
    for network in ["net_mlp", "net_residual_cnn", "net_depthwise_separable"] {
        assert!(cases.iter().any(|c| c.name == network && c.io.is_some()));
    }
}

#[test]
fn refused_models_name_the_node_and_the_reason() {
    let Some((_, cases)) = cases() else {
        return;
    };
    let refused: Vec<&Case> = cases.iter().filter(|c| !c.refused.is_empty()).collect();
    assert!(refused.len() >= 7);
    for case in refused {
        let err = import_file(&case.model, &Options::default())
            .err()
            .unwrap_or_else(|| panic!("{} was imported", case.name))
            .to_string();
        for text in &case.refused {
            assert!(err.contains(text), "{}: `{err}` lacks `{text}`", case.name);
        }
    }
}

#[test]
fn external_data_is_read_from_beside_the_file_and_its_absence_named() {
    let Some((dir, cases)) = cases() else {
        return;
    };
    let case = cases.iter().find(|c| c.name == "external_data").unwrap();
    let (diff, range) = compare(case);
    assert!(diff <= 1e-4 * range);
    // The same model elsewhere without its data file.
    let lonely = dir.join("lonely");
    std::fs::create_dir_all(&lonely).unwrap();
    let moved = lonely.join("external_data.onnx");
    std::fs::copy(&case.model, &moved).unwrap();
    let err = import_file(&moved, &Options::default())
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("external_data.weights") && err.contains("cannot read its external data"),
        "{err}"
    );
    // A truncated data file.
    let bytes = std::fs::read(dir.join("external_data.weights")).unwrap();
    std::fs::write(
        lonely.join("external_data.weights"),
        &bytes[..bytes.len() / 2],
    )
    .unwrap();
    let err = import_file(&moved, &Options::default())
        .unwrap_err()
        .to_string();
    assert!(err.contains("truncated data file"), "{err}");
}
