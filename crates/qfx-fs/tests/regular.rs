//! `read_regular` and its siblings: regular files are read; a FIFO, a device, a directory (or a
//! link to one) is refused at once with an error saying what it is, never waited on.

use std::path::Path;
use std::process::Command;
use std::sync::mpsc;
use std::time::Duration;

use qfx_fs::{check_regular, open_regular, read_regular, read_to_string_regular};

/// `f()`, or a failure if it takes more than 20 seconds (it is waiting on a FIFO).
#[track_caller]
fn within_time<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> T {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(f());
    });
    rx.recv_timeout(Duration::from_secs(20))
        .expect("hung on a special file")
}

#[test]
fn regular_files_are_read() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("config.toml");
    std::fs::write(&path, "seed = 7\n").unwrap();
    assert_eq!(read_regular(&path).unwrap(), b"seed = 7\n");
    assert_eq!(read_to_string_regular(&path).unwrap(), "seed = 7\n");
    // Through a link to a regular file as well.
    let link = dir.path().join("link.toml");
    std::os::unix::fs::symlink(&path, &link).unwrap();
    assert_eq!(read_to_string_regular(&link).unwrap(), "seed = 7\n");
    assert!(check_regular(&link).unwrap().is_file());
    // A missing file is the ordinary error.
    let err = read_regular(&dir.path().join("absent")).unwrap_err();
    assert_eq!(err.kind(), std::io::ErrorKind::NotFound);
}

#[test]
fn special_files_are_refused_saying_what_they_are() {
    let dir = tempfile::tempdir().unwrap();
    let fifo = dir.path().join("meta.json");
    assert!(Command::new("mkfifo")
        .arg(&fifo)
        .status()
        .unwrap()
        .success());
    let link_to_device = dir.path().join("model.safetensors");
    std::os::unix::fs::symlink("/dev/zero", &link_to_device).unwrap();
    let cases: [(&Path, &str); 3] = [
        (&fifo, "it is a FIFO (named pipe), not a regular file"),
        (&link_to_device, "it is a device, not a regular file"),
        (dir.path(), "it is a directory, not a regular file"),
    ];
    for (path, want) in cases {
        let p = path.to_path_buf();
        let errors = within_time(move || {
            [
                read_regular(&p).map(|_| ()).unwrap_err(),
                read_to_string_regular(&p).map(|_| ()).unwrap_err(),
                open_regular(&p).map(|_| ()).unwrap_err(),
                check_regular(&p).map(|_| ()).unwrap_err(),
            ]
        });
        for e in errors {
            assert_eq!(e.to_string(), want, "{}", path.display());
        }
    }
    assert_eq!(
        read_regular(dir.path()).unwrap_err().kind(),
        std::io::ErrorKind::IsADirectory
    );
}
