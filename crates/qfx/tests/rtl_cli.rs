//! `qfx export verilog`, `qfx verify-rtl` and `qfx synth` from the command line: where the
//! export writes, a tiny model verified bit for bit and synthesized, and the errors. Without
//! Verilator or Yosys the tool-dependent part prints SKIPPED, unless
//! `QFX_REQUIRE_RTL_TOOLS=1`.

use std::ffi::OsStr;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

fn qfx(args: &[&OsStr]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_qfx"))
        .args(args)
        .stdin(Stdio::null())
        .output()
        .expect("qfx runs")
}

fn text(o: &Output) -> (String, String) {
    (
        String::from_utf8_lossy(&o.stdout).into_owned(),
        String::from_utf8_lossy(&o.stderr).into_owned(),
    )
}

fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("qfx-rtl-cli-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// A tiny model IR (4 inputs from a 1×2×2 image, flatten, 4→2 dense) in `dir/model.ir.json`.
fn tiny_ir(dir: &Path) -> PathBuf {
    use qfx_ir::{AccumulationOrder, Codes, Layer, Model, Op, INPUT, IR_VERSION};
    let f = |s: &str| s.parse::<qfx_fixed::Format>().unwrap();
    let model = Model {
        version: IR_VERSION,
        name: "tiny".to_string(),
        input_shape: vec![1, 2, 2],
        layers: vec![
            Layer {
                name: "flat".to_string(),
                inputs: vec![INPUT.to_string()],
                op: Op::Flatten,
                output: f("ap_fixed<8,3,AP_RND,AP_SAT>"),
            },
            Layer {
                name: "fc".to_string(),
                inputs: vec!["flat".to_string()],
                op: Op::Dense {
                    weight: Codes::new(
                        vec![4, 2],
                        None,
                        vec![f("ap_fixed<8,2>")],
                        vec![3, -5, 7, 1, -2, 4, 0, 9],
                    ),
                    bias: None,
                    accumulator: vec![f("ap_fixed<20,8>")],
                    order: AccumulationOrder::BiasThenInputChannelMajor,
                },
                output: f("ap_fixed<12,6,AP_RND,AP_SAT>"),
            },
        ],
        preprocess: None,
    };
    let path = dir.join("model.ir.json");
    std::fs::write(&path, model.to_json()).unwrap();
    path
}

/// An IDX dataset of 2×2 images with labels 0/1 (train and test splits).
fn tiny_data(dir: &Path) -> PathBuf {
    let d = dir.join("data");
    std::fs::create_dir_all(&d).unwrap();
    for (prefix, n) in [("train", 8u32), ("t10k", 30)] {
        let mut images = vec![0, 0, 8, 3];
        images.extend(n.to_be_bytes());
        images.extend(2u32.to_be_bytes());
        images.extend(2u32.to_be_bytes());
        let mut labels = vec![0, 0, 8, 1];
        labels.extend(n.to_be_bytes());
        for i in 0..n {
            images.extend((0..4).map(|p| ((i * 37 + p * 71) % 256) as u8));
            labels.push((i % 2) as u8);
        }
        std::fs::write(d.join(format!("{prefix}-images-idx3-ubyte")), images).unwrap();
        std::fs::write(d.join(format!("{prefix}-labels-idx1-ubyte")), labels).unwrap();
    }
    d
}

fn required() -> bool {
    std::env::var("QFX_REQUIRE_RTL_TOOLS").is_ok_and(|v| v == "1")
}

/// True (after printing SKIPPED) when a tool is missing and not required.
fn skipped(stderr: &str) -> bool {
    if stderr.contains("is not installed") && !required() {
        println!("SKIPPED: {stderr}");
        return true;
    }
    false
}

#[test]
fn export_verilog_follows_the_folder_rules() {
    let root = scratch("export");
    let ir = tiny_ir(&root);
    let out = root.join("rtl");
    std::fs::create_dir(&out).unwrap();
    std::fs::write(out.join("README.md"), "my notes").unwrap();
    let export = |dir: &Path, extra: &[&str]| {
        let mut args: Vec<&OsStr> = vec![
            "export".as_ref(),
            "verilog".as_ref(),
            "--checkpoint".as_ref(),
            ir.as_os_str(),
            "--out".as_ref(),
            dir.as_os_str(),
        ];
        args.extend(extra.iter().map(|s| OsStr::new(*s)));
        qfx(&args)
    };
    let (_, err) = text(&export(&out, &[]));
    assert!(
        err.contains("--force") && err.contains("did not write"),
        "{err}"
    );
    assert_eq!(
        std::fs::read_to_string(out.join("README.md")).unwrap(),
        "my notes"
    );
    let forced = export(&out, &["--force"]);
    let (stdout, err) = text(&forced);
    assert!(forced.status.success(), "{err}");
    assert!(
        stdout.contains("fully unrolled, latency 2 cycles"),
        "{stdout}"
    );
    for f in [
        ".qfx-rtl-export",
        "rtl/qfx_top.v",
        "model.ir.json",
        "design.json",
        "README.md",
    ] {
        assert!(out.join(f).is_file(), "{f} missing");
    }
    // An earlier export is replaced without --force; options show in the header.
    let again = export(&out, &["--multipliers", "shift-add", "--no-cse"]);
    assert!(again.status.success(), "{}", text(&again).1);
    let v = std::fs::read_to_string(out.join("rtl/qfx_top.v")).unwrap();
    assert!(v.contains("Constant products: shifts and adds; common subexpressions not shared"));

    // A linked subfolder pointing out of the project: refused, forced or not.
    let linked = root.join("linked");
    let outside = root.join("outside");
    std::fs::create_dir_all(&linked).unwrap();
    std::fs::create_dir_all(&outside).unwrap();
    std::os::unix::fs::symlink(&outside, linked.join("rtl")).unwrap();
    for extra in [&[][..], &["--force"][..]] {
        let o = export(&linked, extra);
        let (_, err) = text(&o);
        assert_eq!(o.status.code(), Some(1), "{err}");
        assert!(err.contains("symbolic link"), "{err}");
    }
    assert_eq!(std::fs::read_dir(&outside).unwrap().count(), 0);
    std::fs::remove_dir_all(&root).unwrap();
}

#[test]
fn a_tiny_model_verifies_and_synthesizes() {
    let root = scratch("verify");
    let ir = tiny_ir(&root);
    let data = tiny_data(&root);
    let project = root.join("rtl");
    let o = qfx(&[
        "export".as_ref(),
        "verilog".as_ref(),
        "--checkpoint".as_ref(),
        ir.as_os_str(),
        "--out".as_ref(),
        project.as_os_str(),
    ]);
    assert!(o.status.success(), "{}", text(&o).1);
    // Paths relative to the working folder (Verilator's make runs elsewhere).
    let o = Command::new(env!("CARGO_BIN_EXE_qfx"))
        .current_dir(&root)
        .args(["verify-rtl", "--project", "rtl", "--samples", "30"])
        .args(["--normalize", "0.5,0.25", "--data"])
        .arg(data.strip_prefix(&root).unwrap())
        .stdin(Stdio::null())
        .output()
        .expect("qfx runs");
    let (stdout, err) = text(&o);
    if skipped(&err) {
        return;
    }
    assert!(o.status.success(), "{err}");
    assert!(
        stdout.contains("30 samples, 60 output values compared: 0 mismatches"),
        "{stdout}"
    );
    assert!(
        stdout.contains("latency 2 cycles, 1 cycle(s) per inference"),
        "{stdout}"
    );
    assert!(stdout.contains("bit-exact: 0 mismatches"), "{stdout}");

    let o = qfx(&["synth".as_ref(), "--project".as_ref(), project.as_os_str()]);
    let (stdout, err) = text(&o);
    if skipped(&err) {
        return;
    }
    assert!(o.status.success(), "{err}");
    assert!(stdout.contains("synth_xilinx -family xcup"), "{stdout}");
    assert!(stdout.lines().any(|l| l.starts_with("fc ")), "{stdout}");
    assert!(project.join("synth.json").is_file());
    std::fs::remove_dir_all(&root).unwrap();
}

#[test]
fn bad_projects_and_families_are_refused() {
    let root = scratch("refused");
    let data = tiny_data(&root);
    let o = qfx(&[
        "verify-rtl".as_ref(),
        "--project".as_ref(),
        root.as_os_str(),
        "--data".as_ref(),
        data.as_os_str(),
    ]);
    let (_, err) = text(&o);
    assert_eq!(o.status.code(), Some(1), "{err}");
    assert!(err.contains("is not a qfx Verilog project"), "{err}");
    let o = qfx(&[
        "synth".as_ref(),
        "--project".as_ref(),
        root.as_os_str(),
        "--family".as_ref(),
        "xc7".as_ref(),
    ]);
    let (_, err) = text(&o);
    assert_eq!(o.status.code(), Some(1), "{err}");
    assert!(err.contains("not a qfx Verilog project"), "{err}");
    let o = qfx(&[
        "synth".as_ref(),
        "--project".as_ref(),
        root.as_os_str(),
        "--family".as_ref(),
        "virtex9".as_ref(),
    ]);
    let (_, err) = text(&o);
    assert!(err.contains("unknown family"), "{err}");
    std::fs::remove_dir_all(&root).unwrap();
}
