//! The run directory's guarantees at the library level: one writer at a time (the lock), sealed
//! and consistent checkpoint metadata, a run deletes only the older checkpoints of its own
//! chain, and clearing a run deletes nothing qfx did not write.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};

use qfx_data::{embedded_fashion_mnist_dir, load_idx_dir, Splits};
use qfx_train::config::RunConfig;
use qfx_train::models::ModelConfig;
use qfx_train::run::{
    self, Checkpoint, CheckpointDir, CheckpointMeta, Event, RunDir, RunLock, Start,
};
use qfx_train::TrainError;

fn data() -> Splits {
    let d = load_idx_dir(&embedded_fashion_mnist_dir()).unwrap();
    Splits {
        train: d.train.take(256),
        test: d.test.take(100),
    }
}

fn config(epochs: usize) -> RunConfig {
    let mut c = RunConfig {
        model: ModelConfig::Mlp {
            inputs: 784,
            hidden: vec![8],
            classes: 10,
        },
        ..RunConfig::default()
    };
    c.quant.enabled = false;
    c.train.epochs = epochs;
    c.train.batch_size = 64;
    c.train.seed = 3;
    c
}

fn tempdir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("qfx-rundir-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// Trains `c` in `dir`; with `stop_after_epochs`, stops (as Ctrl-C does) after that many.
fn train(
    dir: &Path,
    c: &RunConfig,
    start: Start,
    stop_after_epochs: Option<usize>,
) -> Result<run::Outcome, TrainError> {
    let stop = AtomicBool::new(false);
    let mut epochs = 0;
    run::train(dir, c, &data(), start, &stop, &mut |e| {
        if let Event::Epoch(_) = e {
            epochs += 1;
            if Some(epochs) == stop_after_epochs {
                stop.store(true, Ordering::SeqCst);
            }
        }
    })
}

#[test]
fn a_run_directory_has_one_writer_at_a_time() {
    let dir = tempdir("lock");
    let run_dir = RunDir::new(dir.join("run"));
    let lock = RunLock::acquire(&run_dir).unwrap();
    assert!(lock.was_new());
    let holder = std::fs::read_to_string(run_dir.lock_file()).unwrap();
    assert!(
        holder.starts_with(&format!("pid {} on host ", std::process::id())),
        "{holder}"
    );
    // Another lock of the same directory, even from this process, is refused with the holder.
    let err = RunLock::acquire(&run_dir).unwrap_err();
    assert!(matches!(err, TrainError::InUse(_)), "{err:?}");
    assert!(err.to_string().contains(holder.trim()), "{err}");
    let err = train(run_dir.root(), &config(1), Start::Fresh, None).unwrap_err();
    assert!(err.to_string().contains("is in use by pid"), "{err}");
    drop(lock);
    train(run_dir.root(), &config(1), Start::Fresh, None).unwrap();
    let again = RunLock::acquire(&run_dir).unwrap();
    assert!(!again.was_new());
    // A file where the directory should be is named.
    let file = dir.join("file");
    std::fs::write(&file, "x").unwrap();
    let err = RunLock::acquire(&RunDir::new(&file))
        .unwrap_err()
        .to_string();
    assert!(
        err.contains(&file.display().to_string()) && err.contains("not a directory"),
        "{err}"
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn edited_or_inconsistent_metadata_is_refused_with_the_reason() {
    let dir = tempdir("meta");
    let out = train(&dir, &config(2), Start::Fresh, None).unwrap();
    let files = CheckpointDir::new(&out.checkpoint);
    let good = CheckpointMeta::read(&files).unwrap();
    let sealed = std::fs::read_to_string(files.meta()).unwrap();
    assert!(sealed.starts_with("{\n  \"checksum\": \""), "{sealed}");
    // Every rule, each broken by one edit that is then sealed again (a damaged qfx, not a hand
    // edit: the content check must catch it on its own).
    type Edit = fn(&mut CheckpointMeta);
    let cases: [(Edit, &str); 8] = [
        (|m| m.epoch = 3, "epoch 3 is beyond the configured 2 epochs"),
        (
            |m| m.finished = false,
            "finished = false with 2 of 2 epochs",
        ),
        (|m| m.optimizer_steps += 1, "optimizer updates for"),
        (
            |m| {
                m.global_step += 1;
                m.optimizer_steps += 1;
            },
            "whole epochs",
        ),
        (|m| m.test_accuracy = Some(1.5), "not a fraction"),
        (|m| m.test_accuracy = None, "no test accuracy"),
        (
            |m| {
                m.finished = false;
                m.epoch = 1;
                m.step_in_epoch = 1;
                m.global_step += 1;
                m.optimizer_steps += 1;
                m.epoch_sums = (10.0, 3, 200);
            },
            "running sums",
        ),
        (
            |m| {
                m.checksums.remove(CheckpointDir::MODEL);
            },
            "no checksum for model.safetensors",
        ),
    ];
    for (edit, want) in cases {
        let mut m = good.clone();
        edit(&mut m);
        m.write(&files).unwrap();
        let err = Checkpoint::load(&out.checkpoint).err().expect("loaded");
        let err = err.to_string();
        assert!(
            err.contains("inconsistent") && err.contains(want),
            "{want}: {err}"
        );
    }
    // A hand edit breaks the seal; so does removing it.
    std::fs::write(files.meta(), sealed.replace("\"epoch\": 2", "\"epoch\": 1")).unwrap();
    let err = Checkpoint::load(&out.checkpoint).err().unwrap().to_string();
    assert!(
        err.contains("meta.json") && err.contains("checksum does not match"),
        "{err}"
    );
    let unsealed: String = sealed
        .lines()
        .filter(|l| !l.contains("\"checksum\": \""))
        .collect::<Vec<_>>()
        .join("\n");
    std::fs::write(files.meta(), unsealed).unwrap();
    let err = Checkpoint::load(&out.checkpoint).err().unwrap().to_string();
    assert!(err.contains("has no checksum"), "{err}");
    std::fs::write(files.meta(), &sealed).unwrap();
    Checkpoint::load(&out.checkpoint).unwrap();
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn a_run_deletes_only_the_older_checkpoints_of_its_own_chain() {
    let dir = tempdir("chain");
    let run_dir = RunDir::new(&dir);
    let c = config(4);
    let cut = train(&dir, &c, Start::Fresh, Some(2)).unwrap();
    assert!(!cut.finished);
    // Beside the run's checkpoints: one of another history (an older step, not in the chain).
    let names = run_dir.checkpoint_names();
    assert_eq!(names.len(), 2, "{names:?}");
    let other = run_dir.checkpoint("step-00000001.7");
    std::fs::create_dir_all(other.path()).unwrap();
    for f in [
        CheckpointDir::MODEL,
        CheckpointDir::OPTIMIZER,
        CheckpointDir::META,
    ] {
        std::fs::copy(run_dir.checkpoint(&names[0]).file(f), other.file(f)).unwrap();
    }
    train(&dir, &c, Start::Resume, None).unwrap();
    let after = run_dir.checkpoint_names();
    assert!(after.contains(&"step-00000001.7".to_string()), "{after:?}");
    assert_eq!(
        after.len(),
        3,
        "the newest two and the other history's: {after:?}"
    );
    // The newest names the one before it.
    let newest = run_dir.latest_checkpoint().unwrap();
    let parent = CheckpointMeta::read(&newest).unwrap().parent.unwrap();
    assert!(after.contains(&parent), "{parent} not kept: {after:?}");
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn clearing_a_run_deletes_nothing_qfx_did_not_write() {
    let dir = tempdir("clear");
    let run_dir = RunDir::new(dir.join("run"));
    train(run_dir.root(), &config(2), Start::Fresh, None).unwrap();
    std::fs::write(run_dir.root().join(RunDir::REPORT), "# report").unwrap();
    // Something of the user's, deep inside: refused, and nothing is deleted.
    let note = run_dir
        .latest_checkpoint()
        .unwrap()
        .path()
        .join("notes.txt");
    std::fs::write(&note, "mine").unwrap();
    let err = run::clear_run(&run_dir).unwrap_err().to_string();
    assert!(
        err.contains("notes.txt") && err.contains("did not write"),
        "{err}"
    );
    assert!(run_dir.config().is_file() && run_dir.latest().is_file());
    std::fs::remove_file(&note).unwrap();
    run::clear_run(&run_dir).unwrap();
    let left: Vec<_> = std::fs::read_dir(run_dir.root())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(left, vec![run_dir.lock_file().file_name().unwrap()]);
    // The cleared directory takes a new run.
    train(run_dir.root(), &config(1), Start::Fresh, None).unwrap();
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn a_new_run_never_overwrites_files_of_a_directory_that_is_not_a_run() {
    let dir = tempdir("foreign");
    std::fs::write(dir.join("config.toml"), "# my settings\n").unwrap();
    let err = train(&dir, &config(1), Start::Fresh, None)
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("not a qfx run directory") && err.contains("config.toml"),
        "{err}"
    );
    assert_eq!(
        std::fs::read_to_string(dir.join("config.toml")).unwrap(),
        "# my settings\n"
    );
    // Refused again the same way: the failed attempt did not make it a run directory.
    let err = train(&dir, &config(1), Start::Fresh, None)
        .unwrap_err()
        .to_string();
    assert!(err.contains("not a qfx run directory"), "{err}");
    std::fs::remove_dir_all(&dir).unwrap();
}
