//! Nothing silently wrong: one model of record per run (the exported IR is tied to its
//! checkpoint, and every command refuses a mismatch with the reason), checksummed and checked
//! checkpoint metadata, a relative data path that means the same data from anywhere, a warning
//! for settings that overflow, and messages that name the setting, key or path at fault —
//! checked before the first step of training.

mod common;

use std::path::Path;

use common::*;

fn edit_json(path: &Path, edit: impl FnOnce(&mut serde_json::Value)) {
    let mut v: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    edit(&mut v);
    std::fs::write(path, serde_json::to_string_pretty(&v).unwrap()).unwrap();
}

#[test]
fn every_command_uses_the_runs_model_of_record_or_says_why_not() {
    let root = tempdir("record");
    let run = root.join("run");
    ok(&mut train(&run, 2, &["--bits", "6"]));
    let names = checkpoints(&run);
    let (older, newer) = (names[0].clone(), names[1].clone());
    let export = |out: &str| {
        let mut c = qfx();
        c.args(["export", "hls", "--checkpoint"])
            .arg(&run)
            .arg("--out")
            .arg(root.join(out));
        c
    };
    ok(&mut export("hls"));
    // Never into the run itself, where the project's copy would replace the run's model.
    fails(
        qfx()
            .args(["export", "hls", "--force", "--checkpoint"])
            .arg(&run)
            .arg("--out")
            .arg(&run),
        &["is a qfx run directory"],
    );
    let (out, _) = ok(qfx()
        .args(["eval", "--exact", "--limit", "20", "--checkpoint"])
        .arg(&run));
    assert!(out.contains("bit-exact integer engine"), "{out}");

    // `latest` switched to the older checkpoint: model.ir.json is not its export.
    std::fs::write(run.join("checkpoints/latest"), &older).unwrap();
    let why = ["model.ir.json", &older];
    fails(&mut export("hls2"), &why);
    fails(
        qfx()
            .args(["eval", "--exact", "--limit", "20", "--checkpoint"])
            .arg(&run),
        &why,
    );
    fails(
        qfx().args(["report", "--samples", "5", "--run"]).arg(&run),
        &why,
    );
    std::fs::write(run.join("checkpoints/latest"), &newer).unwrap();

    // model.ir.json edited by hand (one weight code changed).
    let ir = run.join("model.ir.json");
    let good = std::fs::read(&ir).unwrap();
    edit_json(&ir, |v| {
        let layer = v["layers"]
            .as_array_mut()
            .unwrap()
            .iter_mut()
            .find(|l| l["op"]["weight"].is_object())
            .unwrap();
        let code = &mut layer["op"]["weight"]["codes"][0];
        *code = serde_json::json!(code.as_i64().unwrap() ^ 1);
    });
    let why = ["model.ir.json", "changed since"];
    fails(&mut export("hls3"), &why);
    fails(
        qfx()
            .args(["eval", "--exact", "--limit", "20", "--checkpoint"])
            .arg(&run),
        &why,
    );
    // Through the file's path as well as through the run directory.
    fails(
        qfx()
            .args(["export", "hls", "--checkpoint"])
            .arg(&ir)
            .arg("--out")
            .arg(root.join("hls4")),
        &why,
    );
    std::fs::write(&ir, &good).unwrap();
    ok(&mut export("hls5"));

    // A finished run whose model.ir.json is gone (deleted, or a crash right after the last
    // checkpoint): refused, and `--resume` exports it again, the same bytes.
    std::fs::remove_file(&ir).unwrap();
    fails(
        &mut export("hls6"),
        &["model.ir.json is missing", "--resume"],
    );
    let (_, stderr) = ok(qfx().args(["train", "--resume", "--run"]).arg(&run));
    assert!(stderr.contains("exported again"), "{stderr}");
    assert_eq!(std::fs::read(&ir).unwrap(), good);
    ok(&mut export("hls6"));
    std::fs::remove_dir_all(&root).unwrap();
}

#[test]
fn an_edited_meta_json_is_refused_with_the_reason() {
    let root = tempdir("meta");
    let run = root.join("run");
    ok(&mut train(&run, 2, &["--float"]));
    let meta = run.join("checkpoints").join(latest(&run)).join("meta.json");
    let good = std::fs::read_to_string(&meta).unwrap();
    // A finished run made to look interrupted forever.
    std::fs::write(&meta, good.replace("\"epoch\": 2,", "\"epoch\": 1,")).unwrap();
    assert_ne!(std::fs::read_to_string(&meta).unwrap(), good);
    fails(
        qfx().args(["eval", "--checkpoint"]).arg(&run),
        &["meta.json", "checksum"],
    );
    fails(
        qfx().args(["train", "--resume", "--run"]).arg(&run),
        &["meta.json", "checksum"],
    );
    std::fs::write(&meta, &good).unwrap();
    ok(qfx().args(["eval", "--checkpoint"]).arg(&run));
    std::fs::remove_dir_all(&root).unwrap();
}

#[test]
fn a_relative_data_path_means_the_same_data_from_anywhere() {
    let root = tempdir("relative-data");
    let work = root.join("work");
    std::fs::create_dir_all(work.join("data")).unwrap();
    for f in std::fs::read_dir(subset_dir()).unwrap().flatten() {
        if f.path().extension().is_some_and(|e| e == "gz") {
            std::fs::copy(f.path(), work.join("data").join(f.file_name())).unwrap();
        }
    }
    ok(train(Path::new("run"), 1, &["--float", "--data", "data"]).current_dir(&work));
    let config = std::fs::read_to_string(work.join("run/config.toml")).unwrap();
    assert!(config.contains("data"), "{config}");
    // From another directory (which has no `data` of its own), the run's own data is used.
    let (out, _) = ok(qfx()
        .args(["eval", "--checkpoint", "work/run"])
        .current_dir(&root));
    assert!(
        out.contains("100 images") || out.contains("images of the test split"),
        "{out}"
    );
    std::fs::remove_dir_all(&root).unwrap();
}

#[test]
fn settings_that_overflow_are_warned_about_before_training() {
    let root = tempdir("overflow");
    let run = root.join("run");
    // 8-bit weights and activations summed 784 at a time into an 8-bit accumulator.
    let (_, stderr) = ok(&mut train(
        &run,
        1,
        &["--bits", "8", "--set", "quant.acc_bits=8"],
    ));
    assert!(stderr.contains("warning"), "{stderr}");
    assert!(stderr.contains("accumulator"), "{stderr}");
    assert!(stderr.contains("bit"), "{stderr}");
    let warned = stderr.find("warning").unwrap();
    let first_epoch = stderr.find("epoch 1/1").unwrap_or(usize::MAX);
    assert!(warned < first_epoch, "warned after training: {stderr}");
    std::fs::remove_dir_all(&root).unwrap();
}

#[test]
fn bad_settings_name_the_setting_before_the_first_step() {
    let root = tempdir("messages");
    let run = root.join("run");
    fails(
        &mut train(&run, 1, &["--lr", "nan"]),
        &["train.lr must be a positive number, not NaN"],
    );
    // Changing an optimizer's kind drops the old kind's keys.
    fails(
        &mut train(
            &run,
            1,
            &[
                "--set",
                "train.optimizer.kind=sgd",
                "--set",
                "train.optimizer.momentum=1.5",
            ],
        ),
        &["momentum < 1, not 1.5"],
    );
    // A newline cannot smuggle a second setting past --set.
    fails(
        &mut train(&run, 1, &["--set", "train.lr=0.001\ntrain.batch_size=0"]),
        &["train.lr", "one value"],
    );
    // `checkpoints` is a file: refused before the first epoch, naming it.
    let blocked = root.join("blocked");
    std::fs::create_dir_all(&blocked).unwrap();
    std::fs::write(blocked.join("checkpoints"), "x").unwrap();
    fails(
        &mut train(&blocked, 1, &["--float"]),
        &["checkpoints", "not a directory"],
    );
    let metrics = std::fs::read_to_string(blocked.join("metrics.jsonl")).unwrap_or_default();
    assert!(metrics.is_empty(), "trained an epoch first: {metrics}");
    // --run or --out naming a file.
    let file = root.join("file");
    std::fs::write(&file, "x").unwrap();
    let path = file.display().to_string();
    fails(
        &mut train(&file, 1, &["--float"]),
        &[&path, "not a directory"],
    );
    // The header counts the images trained on (train.train_limit), not the dataset's.
    let (_, stderr) = ok(&mut train(&run, 1, &["--float"]));
    assert!(stderr.contains("on 256 training images"), "{stderr}");
    fails(
        qfx()
            .args(["ptq", "--bits", "6", "--from"])
            .arg(&run)
            .arg("--run")
            .arg(&file),
        &[&path, "not a directory"],
    );
    fails(
        qfx()
            .args(["report", "--run"])
            .arg(&run)
            .arg("--out")
            .arg(&file),
        &[&path, "not a directory"],
    );
    // Resuming with another setting names the key and both values.
    fails(
        qfx()
            .args(["train", "--resume", "--lr", "0.5", "--run"])
            .arg(&run),
        &["configuration differs", "train.lr", "0.5"],
    );
    std::fs::remove_dir_all(&root).unwrap();
}

#[test]
fn verify_hls_never_overrides_the_normalization_the_model_records() {
    let root = tempdir("normalize");
    let run = root.join("run");
    ok(&mut train(&run, 1, &["--bits", "6"]));
    let hls = root.join("hls");
    ok(qfx()
        .args(["export", "hls", "--checkpoint"])
        .arg(&run)
        .arg("--out")
        .arg(&hls));
    fails_within(
        qfx()
            .args([
                "verify-hls",
                "--samples",
                "2",
                "--normalize",
                "0.5,0.5",
                "--project",
            ])
            .arg(&hls)
            .arg("--data")
            .arg(subset_dir()),
        120,
        &["--normalize", "records"],
    );
    std::fs::remove_dir_all(&root).unwrap();
}
