//! Training on tables: the MSE loss reduces the error of a toy regression and of an
//! autoencoder; a table's standardization is computed on the training split, recorded in the
//! checkpoint and the exported model, and applied identically by training and the integer
//! engine (the quantized model's outputs on the recorded inputs equal the engine's bit for bit);
//! a run started from another keeps that run's standardization; the loss and the task must
//! agree.

use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicBool;

use burn::module::Module;
use burn::tensor::{Device, Tensor, TensorData};
use qfx_data::{Origin, Rng, Table, TableSplits, Targets};
use qfx_train::config::{Loss, RunConfig};
use qfx_train::data::{DataSpec, DataTable, Task};
use qfx_train::graph::GraphSpec;
use qfx_train::models::ModelConfig;
use qfx_train::run::{self, Checkpoint, Score, Start};

fn tempdir(name: &str) -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("qfx-tables-{name}"));
    let _ = std::fs::remove_dir_all(&dir);
    dir
}

/// `n` samples of 4 features on very different scales (means 0, 50, −3, 0; spreads 1, 20,
/// 0.1, 5) and `y = 2·z0 − z1 + 0.5·z2·z3 + 0.1·noise` of the standardized features `z`.
fn regression(n: usize, seed: u64) -> Table {
    let mut rng = Rng::seed(seed);
    let mut normal = || {
        // Box–Muller from two uniforms.
        let (u, v) = (rng.next_f64().max(1e-12), rng.next_f64());
        (-2.0 * u.ln()).sqrt() * (2.0 * std::f64::consts::PI * v).cos()
    };
    let (mean, spread) = ([0.0, 50.0, -3.0, 0.0], [1.0, 20.0, 0.1, 5.0]);
    let mut features = Vec::new();
    let mut values = Vec::new();
    for _ in 0..n {
        let z: Vec<f64> = (0..4).map(|_| normal()).collect();
        features.extend((0..4).map(|j| (mean[j] + spread[j] * z[j]) as f32));
        values.push((2.0 * z[0] - z[1] + 0.5 * z[2] * z[3] + 0.1 * normal()) as f32);
    }
    Table {
        features,
        shape: vec![4],
        targets: Targets::Values { values, width: 1 },
        feature_names: vec![],
        origin: Origin::arrays("regression".into(), "regression".into(), n),
    }
}

fn splits(table: Table) -> TableSplits {
    table.split(0.25, 1).unwrap()
}

fn graph(text: &str) -> ModelConfig {
    ModelConfig::Graph(toml::from_str::<GraphSpec>(text).unwrap())
}

fn mlp(outputs: usize) -> ModelConfig {
    graph(&format!(
        r#"
        input = [4]
        layers = [
          {{ name = "fc1", op = "dense", units = 16 }},
          {{ name = "act1", op = "relu" }},
          {{ name = "out", op = "dense", units = {outputs} }},
        ]"#
    ))
}

/// A configuration for table data (`data` names a file the tests never read: the pipeline
/// is given the tables directly).
fn config(model: ModelConfig, task: Option<Task>, quantized: bool, epochs: usize) -> RunConfig {
    let mut c = RunConfig {
        data: Some(DataSpec::Table(DataTable {
            path: "unused.csv".into(),
            targets: None,
            test: None,
            test_targets: None,
            label: None,
            features: None,
            test_fraction: None,
            split_seed: 0,
            task,
            standardize: None,
        })),
        model,
        ..RunConfig::default()
    };
    c.train.loss = Loss::Mse;
    c.train.epochs = epochs;
    c.train.batch_size = 32;
    c.train.lr = 1e-2;
    c.train.seed = 3;
    c.quant.enabled = quantized;
    c.quant.bits = 8;
    c
}

fn train(dir: &Path, c: &RunConfig, data: &TableSplits, start: Start) -> run::Outcome {
    run::train(dir, c, data, start, &AtomicBool::new(false), &mut |_| {}).unwrap()
}

fn mse(s: Option<Score>) -> f64 {
    s.unwrap().errors().expect("a regression score").mse
}

#[test]
fn mse_training_reduces_the_error_of_a_regression_and_an_autoencoder() {
    let data = splits(regression(640, 11));
    let variance = {
        let Targets::Values { values, .. } = &data.test.targets else {
            unreachable!()
        };
        let m = values.iter().map(|&v| v as f64).sum::<f64>() / values.len() as f64;
        values.iter().map(|&v| (v as f64 - m).powi(2)).sum::<f64>() / values.len() as f64
    };
    // (what, model, task, epochs, how far below the first epoch's test error it must end)
    let cases = [
        ("regression", mlp(1), None, 6, 0.5),
        (
            "autoencoder",
            graph(
                r#"
                input = [4]
                layers = [
                  { name = "enc", op = "dense", units = 3 },
                  { name = "bn", op = "batch_norm" },
                  { name = "act", op = "relu" },
                  { name = "dec", op = "dense", units = 4 },
                ]"#,
            ),
            Some(Task::Autoencoder),
            6,
            0.8,
        ),
    ];
    for (what, model, task, epochs, ratio) in cases {
        let dir = tempdir(what);
        let c = config(model, task, false, epochs);
        let out = train(&dir, &c, &data, Start::Fresh);
        let metrics = run::read_metrics(&dir).unwrap();
        let first = metrics[0].test.errors().unwrap().mse;
        let last = mse(out.score);
        println!(
            "{what}: test MSE after epoch 1 {first:.4}, after epoch {epochs} {last:.4} \
             (target variance {variance:.4}); train loss {:.4} → {:.4}",
            metrics[0].train_loss,
            metrics[epochs - 1].train_loss
        );
        assert!(last < first * ratio, "{what}: {first} → {last}");
        assert!(
            metrics[epochs - 1].train_loss < metrics[0].train_loss,
            "{what}: the training loss did not fall"
        );
        assert!(metrics.iter().all(|m| m.train_accuracy.is_none()));
        if what == "regression" {
            assert!(
                last < 0.2 * variance,
                "{what}: {last} vs variance {variance}"
            );
        }
        std::fs::remove_dir_all(&dir).unwrap();
    }
}

#[test]
fn the_standardization_is_recorded_and_applied_identically_by_training_and_the_engine() {
    let data = splits(regression(256, 12));
    let dir = tempdir("standardize");
    let float_dir = dir.join("float");
    let qat_dir = dir.join("qat");
    // Float pre-training, then 8-bit QAT from it: the QAT run keeps the float run's
    // standardization even though its training split is cut (train_limit).
    let f = config(mlp(1), None, false, 2);
    train(&float_dir, &f, &data, Start::Fresh);
    let mut q = config(mlp(1), None, true, 1);
    q.train.train_limit = 64;
    let out = train(&qat_dir, &q, &data, Start::From(float_dir.clone()));
    assert!(out.finished);

    let (mean, std) = data.train.feature_stats();
    let want = qfx_ir::Preprocess::values(mean.clone(), std.clone());
    // Standardizing by the statistics of the 64 samples instead would be another recipe.
    assert_ne!(data.train.take(64).feature_stats().0, mean);
    for run in [&float_dir, &qat_dir] {
        let meta = Checkpoint::load(run).unwrap().meta;
        assert_eq!(meta.standardize.as_ref(), Some(&want), "{}", run.display());
        assert_eq!(meta.input_shape, [4]);
        assert!(meta.test_mse.is_some() && meta.test_accuracy.is_none());
    }
    let ir = run::model_of_record(&qat_dir).unwrap().ir;
    assert_eq!(ir.preprocess.as_ref(), Some(&want));
    // A document that says so: `"input": "values"`, read back the same.
    let text = ir.to_json();
    assert!(text.contains("\"input\": \"values\""), "{text}");
    assert_eq!(qfx_ir::Model::from_json(&text).unwrap(), ir);

    // The inputs every consumer gets: (v − mean) / std in f32, bit for bit.
    let n = data.test.len();
    let idx: Vec<usize> = (0..n).collect();
    let x = run::sample_inputs(&data.test, &idx, &want).unwrap();
    for (i, (&got, &v)) in x.iter().zip(&data.test.features).enumerate() {
        let c = i % 4;
        assert_eq!(
            got.to_bits(),
            ((v - mean[c]) / std[c]).to_bits(),
            "value {i}"
        );
    }
    // The trained model on those inputs computes what the integer engine computes on them.
    let (model, _) = run::load_model(&qat_dir).unwrap();
    let t = Tensor::<2>::from_data(TensorData::new(x.clone(), [n, 4]), &Device::flex());
    let trained: Vec<f32> = model
        .valid()
        .forward(t)
        .into_data()
        .convert::<f32>()
        .try_to_vec::<f32>()
        .unwrap();
    let engine = qfx_engine::Engine::new(&ir).unwrap();
    let outputs = engine.run_batch(&x, 0).unwrap();
    let out_format = ir.layers.last().unwrap().output;
    for (i, (o, &t)) in outputs.iter().zip(&trained).enumerate() {
        let v = qfx_fixed::Fixed::from_code(o.output.codes[0] as i128, out_format)
            .unwrap()
            .to_f64();
        assert_eq!(v, t as f64, "sample {i}: engine {v}, trained model {t}");
    }
    // `qfx eval`'s path: the score of the checkpoint on the test split with its recorded
    // standardization equals the run's own.
    let meta = Checkpoint::load(&qat_dir).unwrap().meta;
    let score = run::evaluate(&model, &data.test, &q, &meta.preprocess(), 0).unwrap();
    assert_eq!(Some(score), out.score);
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn an_interrupted_table_run_resumes_to_the_same_weights() {
    let data = splits(regression(200, 14));
    let c = config(mlp(1), None, true, 2);
    let (a, b) = (tempdir("whole"), tempdir("cut"));
    train(&a, &c, &data, Start::Fresh);
    // Stopped after the third step of the first epoch, then resumed.
    let stop = AtomicBool::new(false);
    let mut steps = 0;
    let cut = run::train(&b, &c, &data, Start::Fresh, &stop, &mut |e| {
        if let run::Event::Step { .. } = e {
            steps += 1;
            if steps == 3 {
                stop.store(true, std::sync::atomic::Ordering::SeqCst);
            }
        }
    })
    .unwrap();
    assert!(!cut.finished);
    let resumed = train(&b, &c, &data, Start::Resume);
    assert!(resumed.finished);
    let (ma, mb) = (Checkpoint::load(&a).unwrap(), Checkpoint::load(&b).unwrap());
    assert_eq!(ma.model, mb.model, "resumed weights differ");
    assert_eq!(ma.meta.standardize, mb.meta.standardize);
    assert_eq!(ma.meta.test_mse, mb.meta.test_mse);
    for d in [a, b] {
        std::fs::remove_dir_all(d).unwrap();
    }
}

#[test]
fn the_loss_and_the_task_must_agree() {
    let data = splits(regression(64, 13));
    // (configuration change, fragments of the error)
    type Change = fn(&mut RunConfig);
    let cases: [(Change, &[&str]); 4] = [
        (
            |c| c.train.loss = Loss::CrossEntropy,
            &["needs class labels", "have none"],
        ),
        (
            |c| {
                c.data = Some(DataSpec::Table(DataTable {
                    task: Some(Task::Autoencoder),
                    ..c.data.as_ref().unwrap().table().unwrap().clone()
                }));
                c.train.loss = Loss::CrossEntropy;
            },
            &["data.task = \"autoencoder\" needs train.loss = \"mse\""],
        ),
        (
            |c| c.model = mlp(2),
            &["1 target value(s) per sample but the model has 2 outputs"],
        ),
        (|c| c.train.flip = true, &["train.flip augment images"]),
    ];
    for (i, (change, want)) in cases.iter().enumerate() {
        let mut c = config(mlp(1), None, false, 1);
        change(&mut c);
        let dir = tempdir(&format!("refused-{i}"));
        let err = run::train(
            &dir,
            &c,
            &data,
            Start::Fresh,
            &AtomicBool::new(false),
            &mut |_| {},
        )
        .err()
        .unwrap_or_else(|| panic!("case {i} trained"))
        .to_string();
        for w in *want {
            assert!(err.contains(w), "case {i}: `{err}` lacks `{w}`");
        }
        assert!(
            !dir.join("checkpoints").exists(),
            "case {i}: a run was started"
        );
    }
}
