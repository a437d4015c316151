//! The training pipeline: interrupted and resumed runs reach the same weights, corrupt or
//! incompatible checkpoints are refused with clear messages, a diverging run stops at the bad
//! step and keeps its last good checkpoint.

use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};

use qfx_data::{embedded_fashion_mnist_dir, load_idx_dir, Splits};
use qfx_train::config::RunConfig;
use qfx_train::models::ModelConfig;
use qfx_train::optim::Schedule;
use qfx_train::run::{self, Checkpoint, CheckpointDir, CheckpointMeta, Event, RunDir, Start};

fn data() -> Splits {
    let d = load_idx_dir(&embedded_fashion_mnist_dir()).unwrap();
    Splits {
        train: d.train.take(384),
        test: d.test.take(200),
    }
}

fn mlp_config(quantized: bool) -> RunConfig {
    let mut c = RunConfig {
        model: ModelConfig::Mlp {
            inputs: 784,
            hidden: vec![32],
            classes: 10,
        },
        ..RunConfig::default()
    };
    c.quant.enabled = quantized;
    c.quant.bits = 6;
    c.train.epochs = 2;
    c.train.batch_size = 64;
    c.train.crop_padding = 2;
    c.train.flip = true;
    c.train.seed = 7;
    c
}

fn train(
    dir: &Path,
    c: &RunConfig,
    d: &Splits,
    start: Start,
    stop_at: Option<usize>,
) -> run::Outcome {
    let stop = AtomicBool::new(false);
    let mut steps = 0;
    run::train(dir, c, d, start, &stop, &mut |e| {
        if let Event::Step { .. } = e {
            steps += 1;
            if Some(steps) == stop_at {
                stop.store(true, Ordering::SeqCst);
            }
        }
    })
    .unwrap()
}

fn final_tensors(dir: &Path) -> Vec<qfx_train::safetensors::NamedTensor> {
    let mut t = Checkpoint::load(dir).unwrap().model;
    t.sort_by(|a, b| a.name.cmp(&b.name));
    t
}

#[test]
fn an_interrupted_run_resumes_to_identical_weights() {
    let d = data();
    for quantized in [false, true] {
        let c = mlp_config(quantized);
        let tmp = tempdir();
        let (a, b) = (tmp.join("a"), tmp.join("b"));
        let whole = train(&a, &c, &d, Start::Fresh, None);
        assert!(whole.finished);
        // Interrupted mid-way through the first epoch (as Ctrl-C does), then resumed.
        let cut = train(&b, &c, &d, Start::Fresh, Some(3));
        assert!(!cut.finished);
        let meta = Checkpoint::load(&b).unwrap().meta;
        assert_eq!((meta.epoch, meta.step_in_epoch), (0, 3));
        let resumed = train(&b, &c, &d, Start::Resume, None);
        assert!(resumed.finished);
        let (wa, wb) = (final_tensors(&a), final_tensors(&b));
        assert!(wa.len() > 4);
        assert_eq!(wa, wb, "quantized={quantized}: resumed weights differ");
        let ma = run::read_metrics(&a).unwrap();
        let mb = run::read_metrics(&b).unwrap();
        assert_eq!(ma.len(), 2);
        assert_eq!(
            ma.iter()
                .map(|m| (m.train_loss, m.test))
                .collect::<Vec<_>>(),
            mb.iter()
                .map(|m| (m.train_loss, m.test))
                .collect::<Vec<_>>()
        );
        if quantized {
            assert!(RunDir::new(&a).ir().is_file());
            assert!(!ma[1].formats.is_empty());
        }
        // A finished run cannot be resumed again.
        let stop = AtomicBool::new(false);
        let err = run::train(&b, &c, &d, Start::Resume, &stop, &mut |_| {}).unwrap_err();
        assert!(err.to_string().contains("already finished"), "{err}");
    }
}

#[test]
fn corrupt_and_incompatible_checkpoints_are_refused() {
    let d = data();
    let mut c = mlp_config(false);
    c.train.epochs = 1;
    let tmp = tempdir();
    let run_dir = tmp.join("run");
    let out = train(&run_dir, &c, &d, Start::Fresh, None);
    let ckpt = out.checkpoint;

    // A different network.
    let mut other = c.clone();
    other.model = ModelConfig::Mlp {
        inputs: 784,
        hidden: vec![16],
        classes: 10,
    };
    let stop = AtomicBool::new(false);
    let err = run::train(
        &tmp.join("qat"),
        &other,
        &d,
        Start::From(run_dir.clone()),
        &stop,
        &mut |_| {},
    )
    .unwrap_err();
    assert!(err.to_string().contains("different network"), "{err}");
    // Starting a new run over an existing one.
    let err = run::train(&run_dir, &c, &d, Start::Fresh, &stop, &mut |_| {}).unwrap_err();
    assert!(err.to_string().contains("already holds a run"), "{err}");
    // Resuming with a changed configuration.
    let mut changed = c.clone();
    changed.train.lr = 1.0;
    changed.train.epochs = 3;
    let err = run::train(&run_dir, &changed, &d, Start::Resume, &stop, &mut |_| {}).unwrap_err();
    assert!(err.to_string().contains("configuration differs"), "{err}");

    #[track_caller]
    fn refused(dir: &Path, want: &str) {
        match Checkpoint::load(dir) {
            Ok(_) => panic!("a damaged checkpoint loaded"),
            Err(e) => assert!(e.to_string().contains(want), "{e}"),
        }
    }
    let files = CheckpointDir::new(&ckpt);
    let model = files.model();
    let good = std::fs::read(&model).unwrap();
    // Truncated tensor file.
    std::fs::write(&model, &good[..good.len() / 2]).unwrap();
    refused(&ckpt, "checksum");
    // A tensor file whose checksum matches but whose header length is garbage (wrong magic).
    let mut bad = good.clone();
    bad[..8].copy_from_slice(&u64::MAX.to_le_bytes());
    std::fs::write(&model, &bad).unwrap();
    let meta_path = files.meta();
    let sealed = std::fs::read(&meta_path).unwrap();
    let mut m = CheckpointMeta::read(&files).unwrap();
    m.checksums
        .insert(CheckpointDir::MODEL.to_string(), run::checksum(&bad));
    m.model_hash = None;
    m.write(&files).unwrap();
    refused(&ckpt, "runs past the end");
    std::fs::write(&model, &good).unwrap();
    std::fs::write(&meta_path, &sealed).unwrap();
    Checkpoint::load(&ckpt).unwrap();
    // Metadata that is not a qfx checkpoint.
    std::fs::write(&meta_path, b"{\"hello\": 1}").unwrap();
    refused(&ckpt, "not a qfx checkpoint");
    std::fs::write(&meta_path, b"\x00\x01garbage").unwrap();
    refused(&ckpt, "not a qfx checkpoint");
    // Not a checkpoint at all.
    refused(&tmp, "neither a checkpoint");
}

#[test]
fn a_diverging_run_stops_at_the_bad_step_and_keeps_the_last_good_checkpoint() {
    let d = data();
    let mut c = mlp_config(false);
    // Epoch 1 trains normally; from epoch 2 the learning rate is absurd.
    c.train.optimizer = qfx_train::optim::OptimizerConfig::Sgd {
        momentum: 0.9,
        nesterov: false,
    };
    c.train.lr = 0.05;
    c.train.schedule = Schedule::Step {
        every_epochs: 1,
        gamma: 1e30,
    };
    let tmp = tempdir();
    let stop = AtomicBool::new(false);
    let err = run::train(&tmp, &c, &d, Start::Fresh, &stop, &mut |_| {}).unwrap_err();
    let msg = err.to_string();
    assert!(msg.contains("epoch 2, step"), "{msg}");
    assert!(msg.contains("step-00000006"), "{msg}");
    let ckpt = Checkpoint::load(&tmp).unwrap();
    assert_eq!(ckpt.meta.epoch, 1);
    assert!(ckpt
        .model
        .iter()
        .all(|t| t.data.iter().all(|v| v.is_finite())));
}

#[test]
fn a_resume_on_data_that_no_longer_fits_the_checkpoint_is_refused() {
    let d = data();
    let mut c = mlp_config(false);
    c.train.epochs = 3;
    let tmp = tempdir();
    let run_dir = tmp.join("run");
    // Interrupted after 7 steps (6 per epoch over 384 images): epoch 2, step 1.
    let cut = train(&run_dir, &c, &d, Start::Fresh, Some(7));
    assert!(!cut.finished);
    // The same path now holds fewer images: 4 steps per epoch would put step 7 elsewhere.
    let fewer = Splits {
        train: d.train.take(256),
        test: d.test.clone(),
    };
    let stop = AtomicBool::new(false);
    let err = run::train(&run_dir, &c, &fewer, Start::Resume, &stop, &mut |_| {}).unwrap_err();
    assert!(err.to_string().contains("4 steps per epoch"), "{err}");
    // Nothing to resume where there is no run: refused, and no folder made.
    let nowhere = tmp.join("nowhere");
    let err = run::train(&nowhere, &c, &d, Start::Resume, &stop, &mut |_| {}).unwrap_err();
    assert!(err.to_string().contains("no such run directory"), "{err}");
    assert!(!nowhere.exists());
}

fn tempdir() -> std::path::PathBuf {
    use std::sync::atomic::AtomicUsize;
    static N: AtomicUsize = AtomicUsize::new(0);
    let dir = std::env::temp_dir().join(format!(
        "qfx-pipeline-{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::SeqCst)
    ));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}
