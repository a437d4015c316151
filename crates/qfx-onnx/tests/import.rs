//! Importing the committed PyTorch-exported fixtures (`tests/fixtures`, written by
//! `make_fixtures.py`): the layer graph and weights they become, the float run written from
//! them and read back by qfx's own run functions, and the files and settings that are refused.
//! Needs no Python: ONNX Runtime's view of these files is checked in `onnx_runtime.rs`.

use std::path::{Path, PathBuf};

use qfx_onnx::{import_bytes, import_file, Imported, OnnxError, Options};
use qfx_train::config::Normalize;
use qfx_train::graph::OpSpec;
use qfx_train::models::ModelConfig;
use qfx_train::run::{load_model, Checkpoint, RunDir};

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name)
}

fn import(name: &str) -> Imported {
    import_file(&fixture(name), &Options::default()).unwrap_or_else(|e| panic!("{name}: {e}"))
}

/// A fresh directory under `target/` for one test.
fn scratch(test: &str) -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR"))
        .join("onnx-import")
        .join(format!("{test}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn kinds(imported: &Imported) -> Vec<&'static str> {
    imported.spec.layers.iter().map(|l| l.op.kind()).collect()
}

/// A deterministic batch of `n` samples of `len` values.
fn batch(n: usize, len: usize) -> Vec<f32> {
    (0..n * len)
        .map(|i| ((i * 7919 % 1000) as f32 / 500.0) - 1.0)
        .collect()
}

#[test]
fn the_pytorch_cnn_becomes_a_layer_graph() {
    let cnn = import("torch_cnn.onnx");
    assert_eq!(cnn.spec.input, vec![1, 28, 28]);
    assert_eq!(cnn.onnx_input_shape, vec![1, 28, 28]);
    assert_eq!(cnn.opset, 17);
    assert!(cnn.producer.starts_with("pytorch"), "{}", cnn.producer);
    // The exporter folded both BatchNorms into their convolutions; ReLU6 is a Clip; the
    // Shape chain of `x.view(x.size(0), -1)` folds into a flatten in front of the Gemm.
    assert_eq!(
        kinds(&cnn),
        [
            "quantize",
            "conv2d",
            "relu",
            "max_pool2d",
            "conv2d",
            "relu",
            "conv2d",
            "add",
            "relu",
            "max_pool2d",
            "flatten",
            "dense"
        ]
    );
    assert!(matches!(
        cnn.spec.layers[5].op,
        OpSpec::Relu { clip: Some(c) } if c == 6.0
    ));
    assert!(matches!(
        cnn.spec.layers[1].op,
        OpSpec::Conv2d {
            filters: 8,
            bias: true,
            ..
        }
    ));
    assert_eq!(cnn.spec.layers[1].name, "conv1_Conv");
    for op in [
        "Shape",
        "Gather",
        "Unsqueeze",
        "Concat",
        "Reshape",
        "Constant",
    ] {
        assert!(cnn.operators.contains_key(op), "{op}");
    }
    let names: Vec<&str> = cnn.weights.iter().map(|t| t.name.as_str()).collect();
    assert!(names.contains(&"layers.1.Conv2d.weight"), "{names:?}");
    assert!(names.contains(&"layers.11.Dense.bias"), "{names:?}");
    let dense = cnn
        .weights
        .iter()
        .find(|t| t.name == "layers.11.Dense.weight")
        .unwrap();
    assert_eq!(dense.shape, vec![784, 10]);
}

#[test]
fn the_pytorch_mlp_keeps_its_batchnorm_with_running_statistics() {
    let mlp = import("torch_mlp.onnx");
    assert_eq!(
        kinds(&mlp),
        [
            "quantize",
            "flatten",
            "dense",
            "batch_norm",
            "leaky_relu",
            "dense",
            "tanh",
            "dense"
        ]
    );
    let var = mlp
        .weights
        .iter()
        .find(|t| t.name == "layers.3.BatchNorm.running_var")
        .unwrap();
    // make_fixtures.py draws the variances in [0.5, 1.5); ε (1e-5) equals qfx's.
    assert!(var.data.iter().all(|v| (0.5..1.5).contains(v)), "{var:?}");
    assert!(
        mlp.weights.iter().any(
            |t| t.name == "layers.3.BatchNorm.running_mean" && t.data.iter().any(|&m| m != 0.0)
        ),
        "running means imported"
    );
}

#[test]
fn a_float_run_is_written_once_and_read_back_by_qfx() {
    let dir = scratch("run");
    let run = dir.join("cnn");
    let cnn = import("torch_cnn.onnx");
    let normalize = Normalize {
        mean: vec![0.25],
        std: vec![0.5],
    };
    let checkpoint = cnn.write_run(&run, normalize.clone()).unwrap();
    assert!(checkpoint.starts_with(RunDir::new(&run).checkpoints()));
    // What every qfx command reads.
    let ckpt = Checkpoint::load(&run).unwrap();
    assert_eq!(ckpt.meta.config.model, ModelConfig::Graph(cnn.spec.clone()));
    assert!(!ckpt.meta.config.quant.enabled);
    assert_eq!(ckpt.meta.config.normalize, normalize);
    assert_eq!(ckpt.meta.input_shape, [1, 28, 28]);
    assert_eq!((ckpt.meta.epoch, ckpt.meta.finished), (0, false));
    let (model, _) = load_model(&run).unwrap();
    let x = batch(4, 784);
    let from_run = qfx_train::run::infer(&model, &x, 4).unwrap();
    assert_eq!(from_run, cnn.forward(&x, 4).unwrap());
    let text = std::fs::read_to_string(RunDir::new(&run).config()).unwrap();
    assert!(text.contains("conv1_Conv"), "{text}");
    // Never over an existing run.
    let err = cnn.write_run(&run, normalize).unwrap_err().to_string();
    assert!(err.contains("already holds a run"), "{err}");
}

#[test]
fn vectors_take_an_image_shape_and_runs_need_one() {
    let dir = scratch("shapes");
    let as_vector = Options {
        input_shape: Some(vec![784]),
    };
    let mlp = import_file(&fixture("torch_mlp.onnx"), &as_vector).unwrap();
    assert_eq!(mlp.spec.input, vec![784]);
    // The same network whatever shape the samples come in.
    let x = batch(3, 784);
    assert_eq!(
        mlp.forward(&x, 3).unwrap(),
        import("torch_mlp.onnx").forward(&x, 3).unwrap()
    );
    let err = mlp
        .write_run(&dir.join("mlp"), Normalize::default())
        .unwrap_err()
        .to_string();
    assert!(err.contains("--input-shape"), "{err}");
    assert!(!dir.join("mlp").exists(), "nothing written");
    let wrong = Options {
        input_shape: Some(vec![3, 28, 28]),
    };
    let err = import_file(&fixture("torch_mlp.onnx"), &wrong)
        .unwrap_err()
        .to_string();
    assert!(err.contains("784 values"), "{err}");
    let err = import("torch_cnn.onnx")
        .write_run(
            &dir.join("cnn"),
            Normalize {
                mean: vec![0.1, 0.2, 0.3],
                std: vec![1.0],
            },
        )
        .unwrap_err()
        .to_string();
    assert!(err.contains("3 mean values for 1-channel images"), "{err}");
}

#[test]
fn files_that_are_not_onnx_models_are_refused_naming_the_file() {
    #[track_caller]
    fn refused(bytes: &[u8], want: &str) {
        let err = import_bytes(bytes, "model.onnx", &Options::default()).unwrap_err();
        assert!(matches!(err, OnnxError::File(_)), "{err:?}");
        let text = err.to_string();
        assert!(
            text.contains("model.onnx: not an ONNX model") && text.contains(want),
            "`{text}` lacks `{want}`"
        );
    }
    let good = std::fs::read(fixture("torch_cnn.onnx")).unwrap();
    refused(b"", "empty");
    refused(&good[..good.len() / 2], "truncated");
    refused(&good[..good.len() - 1], "truncated");
    refused(b"hello, this is text\n", "another format");
    refused(&[0x08, 0x96, 0x01], "no IR version or no graph");
    let err = import_file(Path::new("no/such/model.onnx"), &Options::default())
        .unwrap_err()
        .to_string();
    assert!(err.contains("cannot read no/such/model.onnx"), "{err}");
    let err = import_file(Path::new(env!("CARGO_MANIFEST_DIR")), &Options::default())
        .unwrap_err()
        .to_string();
    assert!(err.contains("not a regular file"), "{err}");
}
