//! `qfx import onnx` from the command line: the committed PyTorch fixture becomes a float run
//! that `qfx eval` scores and `qfx ptq --from` quantizes; a second import into the same run, a
//! file that is not ONNX and bad options are refused with the reason, writing nothing.

mod common;

use std::path::{Path, PathBuf};

use common::*;

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../qfx-onnx/tests/fixtures")
        .join(name)
}

#[test]
fn an_imported_pytorch_cnn_is_a_float_run_every_command_takes() {
    let root = tempdir("onnx-import");
    let run = root.join("float");
    let (out, _) = ok(qfx()
        .args(["import", "onnx"])
        .arg(fixture("torch_cnn.onnx"))
        .arg("--run")
        .arg(&run)
        .args(["--normalize", "0.2860,0.3530"]));
    assert!(out.contains("imported") && out.contains("opset"), "{out}");
    assert!(run.join("checkpoints/latest").is_file());

    // The fixture's weights are seeded, not trained: the score is whatever it is, but eval
    // runs the imported network on the embedded images and reports it.
    let (out, _) = ok(qfx()
        .args(["eval", "--limit", "100", "--checkpoint"])
        .arg(&run)
        .arg("--data")
        .arg(subset_dir()));
    assert!(out.contains("top-1"), "{out}");

    let ptq = root.join("ptq8");
    let (out, _) = ok(qfx()
        .args(["ptq", "--bits", "8", "--from"])
        .arg(&run)
        .arg("--run")
        .arg(&ptq)
        .arg("--data")
        .arg(subset_dir())
        .args(["--set", "train.test_limit=100"]));
    assert!(out.contains("PTQ at 8 bits"), "{out}");
    assert!(ptq.join("model.ir.json").is_file());

    // A second import into the run is refused, and the run is left as it was.
    let latest = std::fs::read_to_string(run.join("checkpoints/latest")).unwrap();
    fails(
        qfx()
            .args(["import", "onnx"])
            .arg(fixture("torch_cnn.onnx"))
            .arg("--run")
            .arg(&run),
        &["cannot write the run"],
    );
    assert_eq!(
        std::fs::read_to_string(run.join("checkpoints/latest")).unwrap(),
        latest
    );
    std::fs::remove_dir_all(&root).unwrap();
}

#[test]
fn what_cannot_be_imported_is_refused_writing_nothing() {
    let root = tempdir("onnx-refused");
    let junk = root.join("junk.onnx");
    std::fs::write(&junk, b"this is not a protobuf message \xff\xff\xff").unwrap();
    let run = root.join("run");
    fails(
        qfx()
            .args(["import", "onnx"])
            .arg(&junk)
            .arg("--run")
            .arg(&run),
        &["cannot import", "junk.onnx"],
    );
    assert!(!run.exists(), "a refused import writes no run");
    fails(
        qfx()
            .args(["import", "onnx"])
            .arg(fixture("torch_cnn.onnx"))
            .arg("--run")
            .arg(&run)
            .args(["--input-shape", "1,28,x"]),
        &["--input-shape wants sizes C,H,W"],
    );
    assert!(!run.exists(), "a refused import writes no run");
    std::fs::remove_dir_all(&root).unwrap();
}
