//! IDX loading: the embedded subset, and clear errors for corrupt files (regression tests for
//! the pipeline issue's "truncated file" and "wrong magic number").

use std::io::Write;
use std::path::Path;

use qfx_data::{embedded_fashion_mnist, embedded_fashion_mnist_dir, load_idx_dir, read_idx};

#[test]
fn embedded_subset_loads() {
    let s = load_idx_dir(&embedded_fashion_mnist_dir()).unwrap();
    assert_eq!((s.train.len(), s.test.len()), (6000, 1000));
    assert_eq!((s.train.shape, s.train.classes), ([1, 28, 28], 10));
    // Every class is present in both splits.
    for split in [&s.train, &s.test] {
        let mut seen = [0usize; 10];
        split.labels.iter().for_each(|&l| seen[l as usize] += 1);
        assert!(seen.iter().all(|&n| n >= 50), "{seen:?}");
    }
    // The copy compiled into the binary is the same data.
    assert_eq!(embedded_fashion_mnist(), s);
}

fn idx_bytes(dims: &[u32], data: &[u8]) -> Vec<u8> {
    let mut b = vec![0, 0, 8, dims.len() as u8];
    for d in dims {
        b.extend_from_slice(&d.to_be_bytes());
    }
    b.extend_from_slice(data);
    b
}

#[track_caller]
fn rejects(dir: &Path, name: &str, bytes: &[u8], fragment: &str) {
    let path = dir.join(name);
    std::fs::File::create(&path)
        .unwrap()
        .write_all(bytes)
        .unwrap();
    let err = read_idx(&path).unwrap_err().to_string();
    assert!(
        err.contains(fragment) && err.contains(name),
        "`{err}` lacks `{fragment}`"
    );
}

#[test]
fn corrupt_files_give_clear_errors() {
    let dir = std::env::temp_dir().join(format!("qfx-idx-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    rejects(
        &dir,
        "magic",
        &[0x1f, 0x8b, 8, 0, 1, 2, 3, 4],
        "wrong magic number",
    );
    rejects(&dir, "short", &[0, 0], "too short");
    rejects(
        &dir,
        "truncated",
        &idx_bytes(&[2, 3], &[1, 2, 3, 4]),
        "truncated",
    );
    rejects(
        &dir,
        "header",
        &[0, 0, 8, 3, 0, 0, 0, 2],
        "truncated header",
    );
    rejects(&dir, "trailing", &idx_bytes(&[2], &[1, 2, 3]), "trailing");
    rejects(
        &dir,
        "floats",
        &[0, 0, 0x0d, 1, 0, 0, 0, 1, 0, 0, 0, 0],
        "element type 0x0d",
    );
    rejects(
        &dir,
        "bad.gz",
        &[0x1f, 0x8b, 8, 0, 0, 0],
        "cannot decompress",
    );
    // A whole directory with a mismatched label count.
    std::fs::write(
        dir.join("train-images-idx3-ubyte"),
        idx_bytes(&[2, 1, 1], &[0, 1]),
    )
    .unwrap();
    std::fs::write(
        dir.join("train-labels-idx1-ubyte"),
        idx_bytes(&[3], &[0, 1, 2]),
    )
    .unwrap();
    let err = load_idx_dir(&dir).unwrap_err().to_string();
    assert!(err.contains("3 labels for 2 images"), "{err}");
    std::fs::remove_file(dir.join("train-labels-idx1-ubyte")).unwrap();
    let err = load_idx_dir(&dir).unwrap_err().to_string();
    assert!(err.contains("missing train-labels-idx1-ubyte"), "{err}");
    std::fs::remove_dir_all(&dir).unwrap();
}
