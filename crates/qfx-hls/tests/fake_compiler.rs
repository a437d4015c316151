//! Verification with a stand-in `g++` put first on `PATH`: a compiler that exits 0 without
//! writing the testbench must not let an earlier testbench binary answer "0 mismatches", and a
//! g++ that is installed but fails must not be reported as "not found".
//!
//! One test in this file on purpose: it changes `PATH` for the whole process. The stale-binary
//! half needs the real g++ and headers first (SKIPPED without them, unless
//! `QFX_REQUIRE_ORACLE=1`).

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use qfx_hls::{emit, verify_with, ErrorKind, VerifyOptions};

use qfx_ir::Op;
use qfx_testkit::tiny_dense as model;

fn scratch(name: &str) -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR"))
        .join("qfx-hls-fake-compiler")
        .join(name);
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// `dir/g++`, a shell script with `body`.
fn fake_gxx(dir: &Path, body: &str) {
    let path = dir.join("g++");
    std::fs::write(&path, format!("#!/bin/sh\n{body}\n")).unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
}

fn options() -> VerifyOptions {
    VerifyOptions {
        cache_dir: Path::new(env!("CARGO_TARGET_TMPDIR")).join("qfx-oracle"),
        ..VerifyOptions::default()
    }
}

#[test]
fn stand_in_compilers_are_never_trusted() {
    let root = scratch("root");
    let project = root.join("project");
    let mut model = model();
    emit(&model, &project).unwrap();
    let inputs = vec![vec![0.5, -1.25, 2.0, 0.125], vec![1.0, 1.0, -3.0, 0.75]];

    let silent = scratch("silent");
    fake_gxx(
        &silent,
        "if [ \"$1\" = --version ]; then echo 'fake g++ 1.0'; fi\nexit 0",
    );
    let broken = scratch("broken");
    fake_gxx(
        &broken,
        "echo 'g++: fatal error: broken install' >&2\nexit 1",
    );
    let path = std::env::var_os("PATH").unwrap_or_default();
    let with_first = |dir: &Path| {
        let mut dirs = vec![dir.to_path_buf()];
        dirs.extend(std::env::split_paths(&path));
        std::env::join_paths(dirs).unwrap()
    };

    // A broken g++ is an error of its own, never "not found" (which callers turn into a skip).
    std::env::set_var("PATH", with_first(&broken));
    let err = verify_with(&project, &inputs, &options()).unwrap_err();
    std::env::set_var("PATH", &path);
    assert_ne!(err.kind, ErrorKind::NoCompiler, "{err}");
    assert!(!err.message.contains("not found"), "{err}");
    assert!(err.message.contains("broken install"), "{err}");

    // A real build first, so that a testbench binary exists in the project...
    let required = std::env::var("QFX_REQUIRE_ORACLE").is_ok_and(|v| v == "1");
    match verify_with(&project, &inputs, &options()) {
        Ok(report) => assert_eq!(report.mismatches, 0, "{report}"),
        Err(e) if matches!(e.kind, ErrorKind::NoCompiler | ErrorKind::Headers) && !required => {
            println!("SKIPPED stale-testbench check: {e}");
            return;
        }
        Err(e) => panic!("{e}"),
    }
    // ...then a different model whose output the old testbench would get wrong, compiled by a
    // g++ that exits 0 and writes nothing: an error, not the old binary's answers.
    if let Op::Dense { weight, .. } = &mut model.layers[1].op {
        weight.codes.iter_mut().for_each(|c| *c = -*c);
    }
    emit(&model, &project).unwrap();
    std::env::set_var("PATH", with_first(&silent));
    let result = verify_with(&project, &inputs, &options());
    std::env::set_var("PATH", &path);
    let err = result.expect_err("a compiler that wrote nothing must not pass");
    assert_eq!(err.kind, ErrorKind::Compile, "{err}");
    assert!(err.message.contains("wrote no executable"), "{err}");
}
