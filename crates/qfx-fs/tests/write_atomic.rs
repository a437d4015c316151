//! `write_atomic`: complete payloads only, even with many writers of one file at once; no
//! temporary file left behind; failures leave the target as it was.

use std::path::Path;

use qfx_fs::write_atomic;

/// Names in `dir` other than `keep`: leftover temporary files.
fn leftovers(dir: &Path, keep: &str) -> Vec<String> {
    std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().to_string())
        .filter(|n| n != keep)
        .collect()
}

/// A payload that is recognizably writer `i`'s and large enough to take several writes.
fn payload(i: usize) -> Vec<u8> {
    let mut p = format!("writer {i}\n").into_bytes();
    p.resize(256 * 1024, b'a' + (i % 26) as u8);
    p
}

#[test]
fn concurrent_writers_of_one_target_all_succeed_and_one_complete_payload_remains() {
    let dir = tempfile::tempdir().unwrap();
    let target = dir.path().join("model.ir.json");
    let writers = 16;
    for round in 0..4 {
        std::thread::scope(|s| {
            let handles: Vec<_> = (0..writers)
                .map(|i| {
                    let target = &target;
                    s.spawn(move || write_atomic(target, &payload(i)))
                })
                .collect();
            for (i, h) in handles.into_iter().enumerate() {
                let result = h.join().unwrap();
                assert!(result.is_ok(), "round {round}, writer {i}: {result:?}");
            }
        });
        let got = std::fs::read(&target).unwrap();
        assert!(
            (0..writers).any(|i| got == payload(i)),
            "round {round}: the file is not one writer's complete payload ({} bytes, starts {:?})",
            got.len(),
            String::from_utf8_lossy(&got[..got.len().min(12)])
        );
        assert_eq!(leftovers(dir.path(), "model.ir.json"), Vec::<String>::new());
    }
}

#[test]
fn creates_then_replaces_a_file_and_leaves_no_temporary_file() {
    let dir = tempfile::tempdir().unwrap();
    let target = dir.path().join("config.toml");
    for content in [&b"first"[..], b"", b"second, longer than the first"] {
        write_atomic(&target, content).unwrap();
        assert_eq!(std::fs::read(&target).unwrap(), content);
    }
    assert_eq!(leftovers(dir.path(), "config.toml"), Vec::<String>::new());
}

#[test]
fn a_failed_write_leaves_the_target_and_the_directory_as_they_were() {
    let dir = tempfile::tempdir().unwrap();
    // The parent does not exist.
    let missing = dir.path().join("no-such-dir").join("file");
    let err = write_atomic(&missing, b"x").unwrap_err();
    assert_eq!(err.kind(), std::io::ErrorKind::NotFound, "{err}");
    assert!(!missing.exists());
    // The target is a non-empty directory: the rename fails, the directory stays.
    let target = dir.path().join("occupied");
    std::fs::create_dir(&target).unwrap();
    std::fs::write(target.join("inside"), b"kept").unwrap();
    assert!(write_atomic(&target, b"x").is_err());
    assert_eq!(std::fs::read(target.join("inside")).unwrap(), b"kept");
    assert_eq!(leftovers(dir.path(), "occupied"), Vec::<String>::new());
}

#[cfg(unix)]
#[test]
fn written_files_get_the_permissions_of_a_plain_create() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let plain = dir.path().join("plain");
    std::fs::File::create(&plain).unwrap();
    let atomic = dir.path().join("atomic");
    write_atomic(&atomic, b"x").unwrap();
    let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode(&atomic), mode(&plain));
}
