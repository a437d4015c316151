//! Model files: `save` then `load` gives the model back; a missing file and a bad document are
//! told apart, and both errors name the file.

use std::path::Path;

use qfx_fixed::Format;
use qfx_ir::{Layer, Model, Op, INPUT, IR_FILE, IR_VERSION};

fn small() -> Model {
    let f: Format = "ap_fixed<8,3>".parse().unwrap();
    Model {
        version: IR_VERSION,
        name: "small".into(),
        input_shape: vec![4],
        preprocess: None,
        layers: vec![Layer {
            name: "q".into(),
            inputs: vec![INPUT.into()],
            op: Op::Quantize,
            output: f,
        }],
    }
}

#[test]
fn saved_models_load_back_and_end_with_a_newline() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join(IR_FILE);
    let m = small();
    m.save(&path).unwrap();
    let text = std::fs::read_to_string(&path).unwrap();
    assert_eq!(text, m.to_json() + "\n");
    assert_eq!(Model::load(&path).unwrap(), m);
    // Saving again replaces the file.
    let mut renamed = m.clone();
    renamed.name = "renamed".into();
    renamed.save(&path).unwrap();
    assert_eq!(Model::load(&path).unwrap().name, "renamed");
}

#[track_caller]
fn load_fails(path: &Path, fragments: &[&str], absent: &str) {
    let err = Model::load(path).unwrap_err().to_string();
    assert!(
        err.contains(&path.display().to_string()),
        "`{err}` does not name the file"
    );
    for f in fragments {
        assert!(err.contains(f), "`{err}` lacks `{f}`");
    }
    assert!(!err.contains(absent), "`{err}` should not say `{absent}`");
}

#[test]
fn load_errors_name_the_file_and_tell_reading_from_parsing() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join(IR_FILE);
    load_fails(&path, &["cannot read"], "not a model document");
    std::fs::write(&path, "not json").unwrap();
    load_fails(&path, &["not a model document"], "cannot read");
    let mut invalid = small();
    invalid.layers.clear();
    std::fs::write(&path, invalid.to_json()).unwrap();
    load_fails(&path, &["no layers"], "cannot read");
}

#[test]
fn save_errors_name_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("missing-dir").join(IR_FILE);
    let err = small().save(&path).unwrap_err().to_string();
    assert!(err.contains(&path.display().to_string()), "{err}");
}

#[test]
fn a_document_records_the_checkpoint_it_came_from_without_changing_the_model() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join(IR_FILE);
    let m = small();
    m.save_with_checkpoint(&path, Some("0123456789abcdef"))
        .unwrap();
    let text = std::fs::read_to_string(&path).unwrap();
    assert!(
        text.starts_with("{\n  \"version\"")
            && text.ends_with(",\n  \"checkpoint\": \"0123456789abcdef\"\n}\n"),
        "{text}"
    );
    assert_eq!(
        Model::load_with_checkpoint(&path).unwrap(),
        (m.clone(), Some("0123456789abcdef".to_string()))
    );
    // Every reader of the model reads it the same.
    assert_eq!(Model::load(&path).unwrap(), m);
    assert_eq!(Model::from_json(&text).unwrap(), m);
    m.save(&path).unwrap();
    assert_eq!(
        Model::load_with_checkpoint(&path).unwrap(),
        (m.clone(), None)
    );
    // Anything but a string is refused, naming the key.
    let bad = text.replace("\"0123456789abcdef\"", "42");
    std::fs::write(&path, bad).unwrap();
    load_fails(&path, &["`checkpoint` must be a string"], "cannot read");
}

#[test]
fn a_fifo_as_the_document_is_refused_not_waited_on() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join(IR_FILE);
    assert!(std::process::Command::new("mkfifo")
        .arg(&path)
        .status()
        .unwrap()
        .success());
    let (tx, rx) = std::sync::mpsc::channel();
    let p = path.clone();
    std::thread::spawn(move || {
        let _ = tx.send(Model::load(&p).map(drop).map_err(|e| e.to_string()));
    });
    let err = rx
        .recv_timeout(std::time::Duration::from_secs(20))
        .expect("Model::load hung on a FIFO")
        .unwrap_err();
    assert!(err.contains("FIFO") && err.contains(IR_FILE), "{err}");
}
