//! A FIFO or device named like a dataset file is refused with an error naming it; opening a
//! FIFO for reading would otherwise wait forever for a writer. Each load runs on a thread with
//! a time limit, so a regression fails instead of hanging the suite.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::mpsc;
use std::time::Duration;

use qfx_data::{load, read_idx, CifarFiles, DataError, Splits};

fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("qfx-data-special-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn mkfifo(path: &Path) {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    let status = Command::new("mkfifo")
        .arg(path)
        .status()
        .expect("mkfifo runs");
    assert!(status.success(), "mkfifo {}", path.display());
}

fn idx_bytes(dims: &[u32], data: &[u8]) -> Vec<u8> {
    let mut b = vec![0, 0, 8, dims.len() as u8];
    for d in dims {
        b.extend_from_slice(&d.to_be_bytes());
    }
    b.extend_from_slice(data);
    b
}

/// Valid IDX files for a one-image training and test split.
fn idx_dir(dir: &Path) {
    for split in ["train", "t10k"] {
        std::fs::write(
            dir.join(format!("{split}-images-idx3-ubyte")),
            idx_bytes(&[1, 1, 1], &[5]),
        )
        .unwrap();
        std::fs::write(
            dir.join(format!("{split}-labels-idx1-ubyte")),
            idx_bytes(&[1], &[0]),
        )
        .unwrap();
    }
}

fn cifar_dir(dir: &Path) {
    let record = vec![3u8; 3073];
    for i in 1..=5 {
        std::fs::write(dir.join(format!("data_batch_{i}.bin")), &record).unwrap();
    }
    std::fs::write(dir.join("test_batch.bin"), &record).unwrap();
}

/// `f()`, or a failure if it takes more than 20 seconds (it is waiting on a FIFO).
#[track_caller]
fn within_time<T: Send + 'static>(what: &str, f: impl FnOnce() -> T + Send + 'static) -> T {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(f());
    });
    rx.recv_timeout(Duration::from_secs(20))
        .unwrap_or_else(|_| panic!("{what}: the loader hung on a special file"))
}

#[track_caller]
fn refused<T: std::fmt::Debug>(what: &str, result: Result<T, DataError>, fragments: &[&str]) {
    let err = result.unwrap_err().to_string();
    for f in fragments {
        assert!(err.contains(f), "{what}: `{err}` lacks `{f}`");
    }
}

type Setup = fn(&Path) -> PathBuf;

#[test]
fn special_files_named_like_dataset_files_are_refused() {
    let cases: [(&str, Setup, &str); 7] = [
        (
            "IDX images as a FIFO",
            |d| {
                idx_dir(d);
                std::fs::remove_file(d.join("train-images-idx3-ubyte")).unwrap();
                mkfifo(&d.join("train-images-idx3-ubyte"));
                d.join("train-images-idx3-ubyte")
            },
            "FIFO",
        ),
        (
            "gzipped IDX labels as a FIFO",
            |d| {
                idx_dir(d);
                std::fs::remove_file(d.join("t10k-labels-idx1-ubyte")).unwrap();
                mkfifo(&d.join("t10k-labels-idx1-ubyte.gz"));
                d.join("t10k-labels-idx1-ubyte.gz")
            },
            "FIFO",
        ),
        (
            "CIFAR-10 test batch as a FIFO",
            |d| {
                cifar_dir(d);
                std::fs::remove_file(d.join("test_batch.bin")).unwrap();
                mkfifo(&d.join("test_batch.bin"));
                d.join("test_batch.bin")
            },
            "FIFO",
        ),
        (
            "CIFAR-10 training batch as a FIFO",
            |d| {
                cifar_dir(d);
                std::fs::remove_file(d.join("data_batch_3.bin")).unwrap();
                mkfifo(&d.join("data_batch_3.bin"));
                d.join("data_batch_3.bin")
            },
            "FIFO",
        ),
        (
            "CIFAR-10 batch as a link to a device",
            |d| {
                cifar_dir(d);
                std::fs::remove_file(d.join("data_batch_2.bin")).unwrap();
                std::os::unix::fs::symlink("/dev/null", d.join("data_batch_2.bin")).unwrap();
                d.join("data_batch_2.bin")
            },
            "device",
        ),
        (
            "image as a FIFO",
            |d| {
                std::fs::create_dir_all(d.join("test/cat")).unwrap();
                mkfifo(&d.join("train/cat/a.png"));
                d.join("train/cat/a.png")
            },
            "FIFO",
        ),
        (
            "image as a FIFO among images",
            |d| {
                let img = image::GrayImage::from_pixel(2, 2, image::Luma([9]));
                for split in ["train", "test"] {
                    std::fs::create_dir_all(d.join(split).join("dog")).unwrap();
                    img.save(d.join(split).join("dog/a.png")).unwrap();
                }
                mkfifo(&d.join("test/dog/b.jpg"));
                d.join("test/dog/b.jpg")
            },
            "FIFO",
        ),
    ];
    for (i, (what, setup, kind)) in cases.into_iter().enumerate() {
        let dir = scratch(&format!("case{i}"));
        let special = setup(&dir);
        let name = special.file_name().unwrap().to_str().unwrap().to_string();
        let loaded: Result<Splits, DataError> = within_time(what, {
            let dir = dir.clone();
            move || load(&dir)
        });
        refused(what, loaded, &[&name, kind, "regular file"]);
        std::fs::remove_dir_all(&dir).unwrap();
    }
}

#[test]
fn direct_reads_of_special_files_are_refused() {
    let dir = scratch("direct");
    let fifo = dir.join("train-images-idx3-ubyte");
    mkfifo(&fifo);
    let path = fifo.clone();
    refused(
        "read_idx",
        within_time("read_idx", move || read_idx(&path)),
        &["FIFO", "train-images-idx3-ubyte"],
    );

    // Batch files named by hand, not found by the loader.
    let record = vec![1u8; 3073];
    std::fs::write(dir.join("test_batch.bin"), &record).unwrap();
    let files = CifarFiles {
        dir: dir.clone(),
        train: vec![fifo.clone()],
        missing_train: Vec::new(),
        test: dir.join("test_batch.bin"),
    };
    refused(
        "CifarFiles::load",
        within_time("CifarFiles::load", move || files.load()),
        &["FIFO"],
    );
    std::fs::remove_dir_all(&dir).unwrap();
}
