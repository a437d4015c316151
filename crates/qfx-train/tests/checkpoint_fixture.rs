//! A checkpoint written before checkpoints were read and written with the `safetensors` crate
//! (`tests/fixtures/checkpoint-v1`, see the README there) still loads: its checksums match,
//! every tensor has the recorded name (renamed from the module paths of the time to today's
//! layer-graph paths), shape and values, and the network it holds builds.

use std::path::{Path, PathBuf};

use qfx_train::optim::module_tensors;
use qfx_train::run::{self, Checkpoint, CheckpointDir, CHECKPOINT_VERSION};
use qfx_train::safetensors::{self, NamedTensor};
use serde_json::Value;

fn fixture() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/checkpoint-v1")
}

/// The tensors as the old reader saw them (`expected.json`; names renamed by `rename`),
/// checked value by value through a checksum of their little-endian bytes.
#[track_caller]
fn matches_record(
    what: &str,
    tensors: &[NamedTensor],
    record: &Value,
    rename: &dyn Fn(Vec<NamedTensor>) -> Vec<NamedTensor>,
) {
    let record = record.as_array().expect("a list of tensors");
    let names: Vec<&str> = tensors.iter().map(|t| t.name.as_str()).collect();
    let old: Vec<NamedTensor> = record
        .iter()
        .map(|r| NamedTensor {
            name: r["name"].as_str().unwrap().to_string(),
            shape: vec![],
            data: vec![],
        })
        .collect();
    let want: Vec<String> = rename(old).into_iter().map(|t| t.name).collect();
    assert_eq!(names, want, "{what}: tensor names");
    for (t, r) in tensors.iter().zip(record) {
        let shape: Vec<usize> = serde_json::from_value(r["shape"].clone()).unwrap();
        assert_eq!(t.shape, shape, "{what} `{}`: shape", t.name);
        assert_eq!(
            t.data.len(),
            shape.iter().product::<usize>(),
            "{what} `{}`",
            t.name
        );
        let first: Vec<u32> = serde_json::from_value(r["first_bits"].clone()).unwrap();
        let got: Vec<u32> = t
            .data
            .iter()
            .take(first.len())
            .map(|v| v.to_bits())
            .collect();
        assert_eq!(got, first, "{what} `{}`: first values", t.name);
        let bytes: Vec<u8> = t.data.iter().flat_map(|v| v.to_le_bytes()).collect();
        assert_eq!(
            run::checksum(&bytes),
            r["values_fnv"].as_str().unwrap(),
            "{what} `{}`: values",
            t.name
        );
    }
}

#[test]
fn a_checkpoint_written_by_the_hand_written_writer_still_loads() {
    let dir = fixture();
    let expected: Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("expected.json")).unwrap()).unwrap();
    let ckpt = Checkpoint::load(&dir).unwrap();
    // Written before metadata was sealed (version 2): read without a seal, checked all the same.
    assert_eq!(ckpt.meta.version, 1);
    assert_ne!(ckpt.meta.version, CHECKPOINT_VERSION);
    assert_eq!(ckpt.meta.checksum, None);
    assert_eq!((ckpt.meta.epoch, ckpt.meta.global_step), (1, 4));
    assert!(ckpt.meta.finished);
    assert!(
        !ckpt.meta.formats.is_empty(),
        "a quantized run records formats"
    );
    let meta = &ckpt.meta;
    let rename = |t| {
        meta.config
            .model
            .rename_legacy_tensors(&meta.input_shape, t)
            .unwrap()
    };
    matches_record("model", &ckpt.model, &expected["model"], &rename);
    matches_record(
        "optimizer",
        &ckpt.optimizer,
        &expected["optimizer"],
        &rename,
    );
    // The MLP's classifier (`Mlp.head` then) is layer 4 of its graph today (flatten, input
    // quantizer, dense, ReLU, dense).
    assert!(ckpt.model.iter().any(|t| t.name == "layers.4.Dense.bias"));
    assert!(ckpt.model.iter().all(|t| !t.name.starts_with("Mlp.")));
    assert!(
        ckpt.optimizer.len() > ckpt.model.len(),
        "Adam keeps two moments per parameter"
    );
    // The tensors fit the network the checkpoint's configuration describes, and come back out
    // of it unchanged.
    let (model, _) = run::load_model(&dir).unwrap();
    let by_name = |mut v: Vec<NamedTensor>| {
        v.sort_by(|a, b| a.name.cmp(&b.name));
        v
    };
    assert_eq!(by_name(module_tensors(&model)), by_name(ckpt.model.clone()));
}

#[test]
fn old_files_rewritten_by_the_crate_read_back_identically() {
    let files = CheckpointDir::new(fixture());
    for path in [files.model(), files.optimizer()] {
        let old = std::fs::read(&path).unwrap();
        let (tensors, metadata) = safetensors::from_bytes(&old, &path).unwrap();
        let new = safetensors::to_bytes(&tensors, &metadata).unwrap();
        // Same size: one header entry per tensor, same data; the keys of an entry may be
        // ordered differently.
        assert_eq!(new.len(), old.len(), "{}", path.display());
        let (back, meta_back) = safetensors::from_bytes(&new, &path).unwrap();
        assert_eq!((back, meta_back), (tensors, metadata), "{}", path.display());
    }
}
