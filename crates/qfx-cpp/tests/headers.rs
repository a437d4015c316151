//! The header cache with a small wheel made here (no network): a damaged cache, whatever the
//! damage, is fetched again; a wheel with the wrong checksum is refused and not kept.
//!
//! Needs python3 (as fetching the real headers does); without it these tests print SKIPPED,
//! unless `QFX_REQUIRE_ORACLE=1`.

use std::path::{Path, PathBuf};
use std::process::Command;

use qfx_cpp::headers::{ensure_headers_from, Wheel, COMPLETE_MARKER};
use qfx_cpp::ErrorKind;

/// The headers in the test wheel.
const FILES: [(&str, &str); 3] = [
    (
        "ap_fixed.h",
        "// ap_fixed.h of the test wheel\n#include \"ap_int.h\"\n",
    ),
    ("ap_int.h", "// ap_int.h of the test wheel\n"),
    ("etc/ap_private.h", "// a header in a subfolder\n"),
];

fn scratch(name: &str) -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR"))
        .join("qfx-cpp-headers")
        .join(name);
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn have_python() -> bool {
    let ok = Command::new("python3")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    if !ok {
        assert!(
            std::env::var("QFX_REQUIRE_ORACLE").as_deref() != Ok("1"),
            "python3 is required (QFX_REQUIRE_ORACLE=1) but missing"
        );
        println!("SKIPPED header cache tests: python3 not found");
    }
    ok
}

/// Writes a wheel-shaped zip holding [`FILES`] (and a file that must be skipped) to `path`;
/// returns its SHA-256.
fn make_wheel(path: &Path) -> String {
    let script = r#"
import hashlib, sys, zipfile
path = sys.argv[1]
with zipfile.ZipFile(path, 'w') as z:
    z.writestr('pkg/other.py', 'not a header')
    z.writestr('pkg/ap_types/hls_stream.h', 'proprietary: never unpacked')
    for i in range(2, len(sys.argv), 2):
        z.writestr('pkg/ap_types/' + sys.argv[i], sys.argv[i + 1])
print(hashlib.sha256(open(path, 'rb').read()).hexdigest())
"#;
    let mut cmd = Command::new("python3");
    cmd.args(["-c", script]).arg(path);
    for (name, text) in FILES {
        cmd.args([name, text]);
    }
    let out = cmd.output().unwrap();
    assert!(out.status.success(), "{out:?}");
    String::from_utf8(out.stdout).unwrap().trim().to_string()
}

/// A [`Wheel`] for the test wheel at `local`.
fn wheel(local: &Path, sha256: &str) -> Wheel {
    Wheel {
        requirement: "qfx-test-wheel==1.0".to_string(),
        file_name: "qfx_test_wheel-1.0-py3-none-any.whl".to_string(),
        sha256: sha256.to_string(),
        prefix: "pkg/ap_types/".to_string(),
        skip: vec!["hls_stream.h".to_string()],
        folder: "ap_types-test".to_string(),
        local: Some(local.to_path_buf()),
    }
}

#[track_caller]
fn assert_complete(dir: &Path) {
    for (name, text) in FILES {
        let got = std::fs::read_to_string(dir.join(name))
            .unwrap_or_else(|e| panic!("{}: {e}", dir.join(name).display()));
        assert_eq!(got, text, "{name}");
    }
    assert!(!dir.join("hls_stream.h").exists(), "skipped file unpacked");
    assert!(dir.join(COMPLETE_MARKER).is_file());
}

/// One kind of damage, done to a cache that `ensure_headers_from` filled before.
type Damage = fn(cache: &Path, headers: &Path, cached_wheel: &Path);

#[test]
fn a_damaged_cache_is_fetched_again() {
    if !have_python() {
        return;
    }
    let source = scratch("source").join("source.whl");
    let sha = make_wheel(&source);
    let w = wheel(&source, &sha);
    let cases: [(&str, Damage); 6] = [
        ("nothing cached", |cache, _, _| {
            std::fs::remove_dir_all(cache).unwrap()
        }),
        (
            "half-unpacked folder: ap_fixed.h alone, no marker",
            |_, h, _| {
                std::fs::remove_file(h.join("ap_int.h")).unwrap();
                std::fs::remove_file(h.join("etc/ap_private.h")).unwrap();
                std::fs::remove_file(h.join(COMPLETE_MARKER)).unwrap();
            },
        ),
        ("truncated header under a marker", |_, h, _| {
            std::fs::write(h.join("ap_int.h"), "// ap_").unwrap()
        }),
        ("header missing under a marker", |_, h, _| {
            std::fs::remove_file(h.join("etc/ap_private.h")).unwrap()
        }),
        ("garbled marker", |_, h, _| {
            std::fs::write(h.join(COMPLETE_MARKER), "\u{0}\u{1}garbage").unwrap()
        }),
        ("truncated cached wheel and no folder", |_, h, w| {
            std::fs::remove_dir_all(h).unwrap();
            let bytes = std::fs::read(w).unwrap();
            std::fs::write(w, &bytes[..bytes.len() / 2]).unwrap();
        }),
    ];
    for (what, damage) in cases {
        let cache = scratch("cache");
        let headers = ensure_headers_from(&cache, &w).unwrap_or_else(|e| panic!("{what}: {e}"));
        assert_complete(&headers);
        let cached_wheel = cache.join("wheel").join(&w.file_name);
        damage(&cache, &headers, &cached_wheel);
        let again = ensure_headers_from(&cache, &w).unwrap_or_else(|e| panic!("{what}: {e}"));
        assert_eq!(again, headers, "{what}");
        assert_complete(&again);
        assert_eq!(
            std::fs::read(&cached_wheel).unwrap(),
            std::fs::read(&source).unwrap(),
            "{what}: the cached wheel"
        );
    }
}

#[test]
fn a_wheel_with_the_wrong_checksum_is_refused_and_not_kept() {
    if !have_python() {
        return;
    }
    let source = scratch("bad-source").join("source.whl");
    make_wheel(&source);
    let cache = scratch("bad-cache");
    let w = wheel(&source, &"0".repeat(64));
    for attempt in 0..2 {
        let err = ensure_headers_from(&cache, &w).unwrap_err();
        assert_eq!(err.kind, ErrorKind::Headers, "attempt {attempt}: {err}");
        assert!(err.message.contains("checksum mismatch"), "{err}");
        assert!(
            !cache.join("wheel").join(&w.file_name).exists(),
            "a wheel with a wrong checksum stays cached"
        );
        assert!(!cache.join(&w.folder).exists(), "headers unpacked anyway");
    }
}
