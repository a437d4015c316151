//! Nothing lost: what the CLI does to run directories that hold work. A run directory is used by
//! one process at a time (an advisory lock, released when the holder dies); `qfx demo` and
//! `qfx ptq` never delete or replace what they did not write; a resumed run never deletes a
//! newer checkpoint, and a run whose `latest` is missing or damaged is found by scanning, never
//! started over; SIGTERM saves like Ctrl-C; a closed output pipe never kills a run; temporary
//! files of dead writers are cleaned; a FIFO is never waited on.

mod common;

use std::path::Path;
use std::process::{Command, Stdio};

use common::*;

#[test]
fn demo_never_deletes_files_it_did_not_write() {
    let root = tempdir("demo-foreign");
    std::fs::create_dir_all(root.join("float")).unwrap();
    std::fs::write(root.join("float/notes.txt"), "mine").unwrap();
    // Refused before anything is deleted or trained (an old qfx deleted the folder and trained:
    // killed after 60 s, the note is gone either way).
    let out = run_for(
        qfx()
            .args(["demo", "--float-epochs", "1", "--qat-epochs", "1", "--run"])
            .arg(&root),
        60,
    );
    assert_eq!(
        std::fs::read_to_string(root.join("float/notes.txt")).ok(),
        Some("mine".to_string()),
        "demo deleted a file it did not write"
    );
    let out = out.expect("demo refused quickly");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("notes.txt"), "{stderr}");
    std::fs::remove_dir_all(&root).unwrap();
}

#[test]
fn demo_checks_its_settings_before_training() {
    let root = tempdir("demo-settings");
    let stderr = fails_within(
        qfx()
            .args(["demo", "--float-epochs", "1", "--qat-epochs", "0", "--run"])
            .arg(&root),
        120,
        &["--qat-epochs"],
    );
    assert!(
        !root.join("float/checkpoints").exists(),
        "trained before refusing: {stderr}"
    );
    // A file where the demo's folder should be: refused with its path, before training.
    let file = root.join("file");
    std::fs::write(&file, "x").unwrap();
    fails_within(
        qfx()
            .args(["demo", "--float-epochs", "1", "--run"])
            .arg(&file),
        60,
        &[&file.display().to_string(), "not a directory"],
    );
    std::fs::remove_dir_all(&root).unwrap();
}

#[test]
fn ptq_never_replaces_an_existing_run() {
    let root = tempdir("ptq");
    let float = root.join("float");
    ok(&mut train(&float, 1, &["--float"]));
    let config = std::fs::read(float.join("config.toml")).unwrap();
    let before = latest(&float);
    // Into the run it reads: a float run must not become a PTQ run.
    fails(
        qfx()
            .args(["ptq", "--bits", "6", "--from"])
            .arg(&float)
            .arg("--run")
            .arg(&float),
        &["already holds a run"],
    );
    assert_eq!(std::fs::read(float.join("config.toml")).unwrap(), config);
    assert_eq!(latest(&float), before);
    assert!(!float.join("model.ir.json").exists());
    // Over an earlier PTQ run.
    let ptq = root.join("ptq");
    ok(qfx()
        .args(["ptq", "--bits", "6", "--from"])
        .arg(&float)
        .arg("--run")
        .arg(&ptq));
    let ir = std::fs::read(ptq.join("model.ir.json")).unwrap();
    fails(
        qfx()
            .args(["ptq", "--bits", "4", "--from"])
            .arg(&float)
            .arg("--run")
            .arg(&ptq),
        &["already holds a run"],
    );
    assert_eq!(std::fs::read(ptq.join("model.ir.json")).unwrap(), ir);
    std::fs::remove_dir_all(&root).unwrap();
}

#[test]
fn a_run_directory_is_used_by_one_process_at_a_time() {
    let root = tempdir("lock");
    let run = root.join("run");
    let mut first = train(&run, 1000, &["--float"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    wait_for(&run.join("checkpoints/latest"), &mut first);
    // A second process resuming the same run is refused, naming the holder.
    let pid = format!("pid {}", first.id());
    let stderr = fails_within(
        qfx().args(["train", "--resume", "--run"]).arg(&run),
        60,
        &["in use", &pid, "qfx train"],
    );
    assert!(stderr.contains("since"), "{stderr}");
    // So is a fresh run and a PTQ into it.
    fails_within(&mut train(&run, 1, &["--float"]), 60, &["in use", &pid]);
    // The lock dies with its holder: a SIGKILLed run leaves nothing to clean up by hand.
    first.kill().unwrap();
    first.wait().unwrap();
    let stderr = fails(&mut train(&run, 1, &["--float"]), &["already holds a run"]);
    assert!(!stderr.contains("in use"), "{stderr}");
    std::fs::remove_dir_all(&root).unwrap();
}

#[test]
fn resuming_from_an_older_latest_keeps_the_newer_checkpoint() {
    let root = tempdir("older-latest");
    let run = root.join("run");
    ok(&mut train(&run, 3, &["--float"]));
    let names = checkpoints(&run);
    assert_eq!(names.len(), 2, "{names:?}");
    let (older, newer) = (names[0].clone(), names[1].clone());
    assert_eq!(latest(&run), newer);
    let newer_model = std::fs::read(
        run.join("checkpoints")
            .join(&newer)
            .join("model.safetensors"),
    )
    .unwrap();
    // `latest` switched back (by hand, or by a crash between a checkpoint's rename and the
    // switch): the resumed run redoes the last epoch beside the newer checkpoint.
    std::fs::write(run.join("checkpoints/latest"), &older).unwrap();
    ok(qfx().args(["train", "--resume", "--run"]).arg(&run));
    let redone = latest(&run);
    assert_ne!(redone, newer);
    assert!(
        run.join("checkpoints")
            .join(&newer)
            .join("meta.json")
            .is_file(),
        "the newer checkpoint was deleted: {:?}",
        checkpoints(&run)
    );
    let again = std::fs::read(
        run.join("checkpoints")
            .join(&redone)
            .join("model.safetensors"),
    )
    .unwrap();
    assert_eq!(again, newer_model, "the redone epoch differs");
    std::fs::remove_dir_all(&root).unwrap();
}

#[test]
fn a_missing_or_damaged_latest_is_found_by_scanning_never_started_over() {
    let root = tempdir("no-latest");
    let run = root.join("run");
    ok(&mut train(&run, 2, &["--float"]));
    let names = checkpoints(&run);
    let newest = names.last().unwrap().clone();
    std::fs::remove_file(run.join("checkpoints/latest")).unwrap();
    // A plain `train` into it must not start over on top of the checkpoints.
    fails(&mut train(&run, 2, &["--float"]), &["already holds a run"]);
    assert_eq!(checkpoints(&run), names);
    // Reading and resuming find the newest complete checkpoint.
    let (out, _) = ok(qfx().args(["eval", "--checkpoint"]).arg(&run));
    assert!(out.contains("top-1"), "{out}");
    fails(
        qfx().args(["train", "--resume", "--run"]).arg(&run),
        &["already finished"],
    );
    for damaged in ["", "step-99999999", "../../elsewhere", "\u{0}garbage"] {
        std::fs::write(run.join("checkpoints/latest"), damaged).unwrap();
        let (out, stderr) = ok(qfx().args(["eval", "--checkpoint"]).arg(&run));
        assert!(out.contains("top-1"), "{out}");
        assert!(stderr.contains(&newest), "{damaged:?}: {stderr}");
    }
    std::fs::remove_dir_all(&root).unwrap();
}

#[test]
fn sigterm_saves_a_checkpoint_like_ctrl_c() {
    let root = tempdir("sigterm");
    let run = root.join("run");
    let mut child = train(&run, 1000, &["--float"])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    wait_for(&run.join("checkpoints/latest"), &mut child);
    let first = latest(&run);
    let sent = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(sent.success());
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(130), "{stderr}");
    assert!(stderr.contains("interrupted: checkpoint saved"), "{stderr}");
    assert_ne!(latest(&run), first, "SIGTERM wrote no checkpoint");
    std::fs::remove_dir_all(&root).unwrap();
}

/// Spawns `cmd` with its stdout and stderr going into pipes whose reading ends are closed at
/// once, and returns its exit code.
fn with_closed_output(cmd: &mut Command) -> Option<i32> {
    let mut child = cmd
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    drop(child.stdout.take());
    drop(child.stderr.take());
    child.wait().unwrap().code()
}

#[test]
fn a_closed_output_pipe_never_kills_a_run() {
    let root = tempdir("closed-pipe");
    let run = root.join("run");
    // `qfx train … | head -1`: the run goes on and saves.
    let code = with_closed_output(&mut train(&run, 2, &["--bits", "6"]));
    assert_eq!(code, Some(0));
    let meta =
        std::fs::read_to_string(run.join("checkpoints").join(latest(&run)).join("meta.json"))
            .unwrap();
    assert!(meta.contains("\"finished\": true"), "{meta}");
    assert!(run.join("model.ir.json").is_file());
    // Commands whose output is the product stop quietly.
    for args in [
        vec!["fixed", "tour"],
        vec!["eval", "--exact", "--limit", "20", "--checkpoint"],
        vec!["report", "--samples", "5", "--run"],
    ] {
        let mut cmd = qfx();
        cmd.args(&args);
        if args[0] != "fixed" {
            cmd.arg(&run);
        }
        assert_eq!(with_closed_output(&mut cmd), Some(0), "{args:?}");
    }
    assert!(run.join("report.md").is_file());
    std::fs::remove_dir_all(&root).unwrap();
}

/// A process id that no process has (so a temporary named after it is a dead writer's).
fn dead_pid() -> u32 {
    (4_000_000..)
        .find(|p| !Path::new(&format!("/proc/{p}")).exists())
        .unwrap()
}

#[test]
fn temporaries_of_dead_writers_are_cleaned_when_the_run_is_locked() {
    let root = tempdir("stale");
    let run = root.join("run");
    ok(&mut train(&run, 1, &["--float"]));
    let ckpts = run.join("checkpoints");
    let dead = ckpts.join(format!(".tmp-step-00000099-{}", dead_pid()));
    std::fs::create_dir_all(&dead).unwrap();
    std::fs::write(dead.join("model.safetensors"), vec![0u8; 1000]).unwrap();
    // A live process's staging folder is left alone.
    let live = ckpts.join(format!(".tmp-step-00000098-{}", std::process::id()));
    std::fs::create_dir_all(&live).unwrap();
    let atomic = run.join(".metrics.jsonl.Ab12Cd.tmp");
    std::fs::write(&atomic, "half").unwrap();
    let foreign = ckpts.join("my-notes.txt");
    std::fs::write(&foreign, "mine").unwrap();
    // Anything that locks the run cleans up, even a command that then refuses.
    fails(
        qfx().args(["train", "--resume", "--run"]).arg(&run),
        &["already finished"],
    );
    assert!(!dead.exists(), "stale staging folder kept");
    assert!(!atomic.exists(), "stale temporary file kept");
    assert!(live.exists(), "a live writer's folder was removed");
    assert!(foreign.exists(), "a file qfx did not write was removed");
    std::fs::remove_dir_all(&root).unwrap();
}

#[test]
fn special_files_are_refused_never_waited_on() {
    let root = tempdir("fifo");
    let config = root.join("cnn.toml");
    mkfifo(&config);
    fails_within(
        qfx()
            .args(["train", "--run"])
            .arg(root.join("run"))
            .arg("--config")
            .arg(&config),
        60,
        &["cnn.toml", "FIFO"],
    );
    // The files of a run: metrics (report), the resumed run's config, a checkpoint's meta.
    let run = root.join("run2");
    ok(&mut train(&run, 1, &["--float"]));
    std::fs::remove_file(run.join("metrics.jsonl")).unwrap();
    mkfifo(&run.join("metrics.jsonl"));
    fails_within(
        qfx().args(["report", "--run"]).arg(&run),
        60,
        &["metrics.jsonl", "FIFO"],
    );
    std::fs::remove_file(run.join("config.toml")).unwrap();
    mkfifo(&run.join("config.toml"));
    fails_within(
        qfx().args(["train", "--resume", "--run"]).arg(&run),
        60,
        &["config.toml", "FIFO"],
    );
    let meta = run.join("checkpoints").join(latest(&run)).join("meta.json");
    std::fs::remove_file(&meta).unwrap();
    mkfifo(&meta);
    let ckpt = meta.parent().unwrap().to_path_buf();
    fails_within(
        qfx().args(["eval", "--checkpoint"]).arg(&ckpt),
        60,
        &["meta.json", "FIFO"],
    );
    std::fs::remove_dir_all(&root).unwrap();
}

#[test]
fn report_never_overwrites_files_it_did_not_write() {
    let root = tempdir("report-out");
    let run = root.join("run");
    ok(&mut train(&run, 1, &["--bits", "6"]));
    let out = root.join("docs");
    std::fs::create_dir_all(&out).unwrap();
    std::fs::write(out.join("report.md"), "my own report").unwrap();
    let report = |out: &Path| {
        let mut c = qfx();
        c.args(["report", "--samples", "5", "--run"])
            .arg(&run)
            .arg("--out")
            .arg(out);
        c
    };
    fails(
        &mut report(&out),
        &["report.md", "not written by `qfx report`"],
    );
    assert_eq!(
        std::fs::read_to_string(out.join("report.md")).unwrap(),
        "my own report"
    );
    // A folder of its own: written, and written again.
    let fresh = root.join("fresh");
    ok(&mut report(&fresh));
    ok(&mut report(&fresh));
    assert!(fresh.join("binary_points.svg").is_file());
    std::fs::remove_dir_all(&root).unwrap();
}

#[test]
fn a_run_without_its_config_toml_resumes_from_its_checkpoint() {
    let root = tempdir("no-config");
    let run = root.join("run");
    let mut child = train(&run, 1000, &["--float"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    wait_for(&run.join("checkpoints/latest"), &mut child);
    child.kill().unwrap();
    child.wait().unwrap();
    std::fs::remove_file(run.join("config.toml")).unwrap();
    // Interrupted at once (SIGTERM), only to show that it resumed.
    let mut resumed = qfx()
        .args(["train", "--resume", "--run"])
        .arg(&run)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    wait_for(&run.join("config.toml"), &mut resumed);
    Command::new("kill")
        .args(["-TERM", &resumed.id().to_string()])
        .status()
        .unwrap();
    let out = resumed.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(130), "{stderr}");
    assert!(stderr.contains("config.toml is missing"), "{stderr}");
    std::fs::remove_dir_all(&root).unwrap();
}

/// A network too large for this machine is refused with the figures before anything is
/// allocated (it used to abort the process on a failed allocation).
#[test]
fn a_network_too_large_for_the_machine_is_refused_with_the_figures() {
    let root = tempdir("too-large");
    let run = root.join("run");
    let stderr = fails_within(
        qfx()
            .args(["train", "--run"])
            .arg(&run)
            .args(["--set", "model.channels=[100000, 100000]"]),
        60,
        &["GiB", "parameters", "available", "train.batch_size"],
    );
    let checkpoints = std::fs::read_dir(run.join("checkpoints"))
        .map(|d| d.count())
        .unwrap_or(0);
    assert_eq!(checkpoints, 0, "{stderr}");
    std::fs::remove_dir_all(&root).unwrap();
}
