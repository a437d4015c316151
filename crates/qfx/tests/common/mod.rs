//! What the run-directory CLI tests share: running the binary (with a deadline, so a command
//! that waits on something it should have refused fails the test instead of hanging it), tiny
//! runs, and reading a run directory's layout from disk.

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

pub fn qfx() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_qfx"));
    c.stdin(Stdio::null());
    c
}

/// A quick float or quantized MLP run (784–16–10) on 256 training images.
pub const TINY: &[&str] = &[
    "--model",
    "mlp",
    "--set",
    "model.hidden=[16]",
    "--set",
    "train.train_limit=256",
    "--set",
    "train.test_limit=100",
    "--batch-size",
    "64",
    "--seed",
    "5",
];

/// Runs `cmd`, killing it after `secs` seconds: `None` when it had to be killed.
pub fn run_for(cmd: &mut Command, secs: u64) -> Option<Output> {
    let mut child = cmd
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("qfx runs");
    let began = Instant::now();
    while child.try_wait().unwrap().is_none() {
        if began.elapsed() > Duration::from_secs(secs) {
            let _ = child.kill();
            let _ = child.wait();
            return None;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    Some(child.wait_with_output().unwrap())
}

/// Runs `cmd` (at most 300 s) and expects success; returns stdout and stderr.
#[track_caller]
pub fn ok(cmd: &mut Command) -> (String, String) {
    let out = run_for(cmd, 300).unwrap_or_else(|| panic!("{cmd:?} hung"));
    let stderr = String::from_utf8_lossy(&out.stderr).to_string();
    assert!(out.status.success(), "{cmd:?} failed: {stderr}");
    (String::from_utf8_lossy(&out.stdout).to_string(), stderr)
}

/// Runs `cmd` (at most `secs` s) and expects exit status 1 with every one of `want` in its
/// error output and no panic; returns the error output.
#[track_caller]
pub fn fails_within(cmd: &mut Command, secs: u64, want: &[&str]) -> String {
    let out = run_for(cmd, secs).unwrap_or_else(|| panic!("{cmd:?} ran past {secs} s"));
    let stderr = String::from_utf8_lossy(&out.stderr).to_string();
    assert_eq!(out.status.code(), Some(1), "{cmd:?}: {stderr}");
    for w in want {
        assert!(stderr.contains(w), "{cmd:?}: `{stderr}` lacks `{w}`");
    }
    assert!(!stderr.contains("panicked"), "{stderr}");
    stderr
}

#[track_caller]
pub fn fails(cmd: &mut Command, want: &[&str]) -> String {
    fails_within(cmd, 300, want)
}

pub fn tempdir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("qfx-safety-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// `qfx train --run RUN` with the tiny network for `epochs` epochs, plus `extra` flags.
pub fn train(run: &Path, epochs: usize, extra: &[&str]) -> Command {
    let mut c = qfx();
    c.args(["train", "--run"])
        .arg(run)
        .args(["--epochs", &epochs.to_string()])
        .args(TINY)
        .args(extra);
    c
}

/// The checkpoint directories of a run (`step-…`), sorted.
pub fn checkpoints(run: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(run.join("checkpoints"))
        .map(|d| {
            d.flatten()
                .map(|e| e.file_name().to_string_lossy().to_string())
                .filter(|n| n.starts_with("step-"))
                .collect()
        })
        .unwrap_or_default();
    names.sort();
    names
}

/// What `checkpoints/latest` names.
pub fn latest(run: &Path) -> String {
    std::fs::read_to_string(run.join("checkpoints/latest"))
        .unwrap()
        .trim()
        .to_string()
}

/// Waits (at most 300 s) until `path` exists.
pub fn wait_for(path: &Path, child: &mut Child) {
    let began = Instant::now();
    while !path.exists() {
        if let Some(status) = child.try_wait().unwrap() {
            panic!(
                "the run ended ({status}) before {} appeared",
                path.display()
            );
        }
        assert!(
            began.elapsed() < Duration::from_secs(300),
            "{} did not appear",
            path.display()
        );
        std::thread::sleep(Duration::from_millis(10));
    }
}

pub fn mkfifo(path: &Path) {
    assert!(Command::new("mkfifo").arg(path).status().unwrap().success());
}

/// The embedded Fashion-MNIST subset as files.
pub fn subset_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../data/fashion-mnist-subset")
}
