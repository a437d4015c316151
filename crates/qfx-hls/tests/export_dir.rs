//! Where an export may write: never over files it did not write (unless forced), never
//! through a symbolic link out of the project folder; verification neither.

use std::os::unix::fs::symlink;
use std::path::{Path, PathBuf};

use qfx_hls::{emit, export, verify, EmitOptions, ErrorKind, HlsError, EXPORT_MARKER, IR_FILE};

use qfx_testkit::tiny_dense as model;

fn scratch(name: &str) -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR"))
        .join("qfx-hls-export-dir")
        .join(name);
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

#[track_caller]
fn refused(result: Result<impl std::fmt::Debug, HlsError>, fragments: &[&str]) {
    let err = result.expect_err("must be refused");
    assert_eq!(err.kind, ErrorKind::BadInput, "{err}");
    for f in fragments {
        assert!(err.message.contains(f), "`{err}` lacks `{f}`");
    }
}

#[test]
fn files_that_no_export_wrote_are_never_overwritten() {
    let dir = scratch("foreign");
    std::fs::write(dir.join("README.md"), "my notes").unwrap();
    std::fs::write(dir.join("build.tcl"), "my script").unwrap();
    refused(
        emit(&model(), &dir),
        &[dir.to_str().unwrap(), "did not write", "--force"],
    );
    assert_eq!(
        std::fs::read_to_string(dir.join("README.md")).unwrap(),
        "my notes"
    );
    assert_eq!(
        std::fs::read_to_string(dir.join("build.tcl")).unwrap(),
        "my script"
    );
    assert!(!dir.join(IR_FILE).exists() && !dir.join("firmware").exists());

    // Forced, it writes and marks the folder; from then on it is an export like any other.
    let report = export(&model(), &dir, &EmitOptions::default(), true).unwrap();
    assert!(report.files.contains(&PathBuf::from(EXPORT_MARKER)));
    assert_ne!(
        std::fs::read_to_string(dir.join("README.md")).unwrap(),
        "my notes"
    );
    emit(&model(), &dir).unwrap();
}

#[test]
fn new_empty_and_earlier_exports_are_written() {
    let root = scratch("ok");
    let empty = root.join("empty");
    std::fs::create_dir(&empty).unwrap();
    for dir in [root.join("new/deeper"), empty] {
        let report = emit(&model(), &dir).unwrap();
        assert!(dir.join(EXPORT_MARKER).is_file());
        for file in &report.files {
            assert!(dir.join(file).is_file(), "{}", file.display());
        }
        // Again, over its own export.
        emit(&model(), &dir).unwrap();
    }
}

#[test]
fn a_failed_export_into_a_new_folder_leaves_nothing() {
    let root = scratch("failed");
    let mut bad = model();
    bad.layers[1].inputs = vec!["nowhere".to_string()];
    for dir in [root.join("new"), root.clone()] {
        assert!(emit(&bad, &dir).is_err());
    }
    assert!(!root.join("new").exists());
    assert_eq!(
        std::fs::read_dir(&root).unwrap().count(),
        0,
        "marker left in an empty folder"
    );
}

#[test]
fn links_out_of_the_project_are_refused_even_when_forced() {
    for sub in ["firmware", "tb", ".qfx-verify"] {
        let root = scratch(&format!("link-{}", sub.trim_start_matches('.')));
        let outside = root.join("outside");
        std::fs::create_dir(&outside).unwrap();
        let project = root.join("project");
        std::fs::create_dir(&project).unwrap();
        std::fs::write(project.join(EXPORT_MARKER), "").unwrap();
        symlink(&outside, project.join(sub)).unwrap();
        refused(emit(&model(), &project), &[sub, "symbolic link"]);
        refused(
            export(&model(), &project, &EmitOptions::default(), true),
            &[sub, "symbolic link"],
        );
        assert_eq!(
            std::fs::read_dir(&outside).unwrap().count(),
            0,
            "{sub}: wrote outside"
        );
    }
}

#[test]
fn verification_never_writes_through_a_link() {
    let root = scratch("verify-link");
    let project = root.join("project");
    emit(&model(), &project).unwrap();
    let outside = root.join("outside");
    std::fs::create_dir(&outside).unwrap();
    symlink(&outside, project.join(".qfx-verify")).unwrap();
    refused(
        verify(&project, &[vec![0.5; 4]]),
        &[".qfx-verify", "symbolic link"],
    );
    assert_eq!(std::fs::read_dir(&outside).unwrap().count(), 0);
}

#[test]
fn verification_refuses_special_files_in_the_project() {
    for (i, name) in [IR_FILE, "firmware/model.cpp", "tb/testbench.cpp"]
        .into_iter()
        .enumerate()
    {
        let project = scratch(&format!("fifo-{i}"));
        emit(&model(), &project).unwrap();
        let path = project.join(name);
        std::fs::remove_file(&path).unwrap();
        let status = std::process::Command::new("mkfifo")
            .arg(&path)
            .status()
            .unwrap();
        assert!(status.success());
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let _ = tx.send(verify(&project, &[vec![0.5; 4]]));
        });
        let result = rx
            .recv_timeout(std::time::Duration::from_secs(20))
            .unwrap_or_else(|_| panic!("verification hung on a FIFO as {name}"));
        refused(result, &[name, "not a regular file"]);
    }
}

#[test]
fn the_link_check_covers_every_folder_the_emitter_writes() {
    let dir = scratch("subfolders");
    let report = emit(&model(), &dir).unwrap();
    for file in &report.files {
        let mut parts = file.components();
        let first = parts.next().unwrap().as_os_str().to_str().unwrap();
        if parts.next().is_some() {
            assert!(
                qfx_hls::project::SUBFOLDERS.contains(&first),
                "{} is written into {first}/, which the link check does not cover",
                file.display()
            );
        }
    }
}
