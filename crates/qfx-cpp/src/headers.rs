//! Obtains the Xilinx `ap_types` headers (Apache-2.0) from the `hls4ml` wheel at run time.
//!
//! The headers are never committed: `pip download` fetches the pinned wheel, its SHA-256 is
//! verified, and only the `ap_types` folder is unpacked into a cache. `hls_stream.h` and
//! `ap_shift_reg.h` carry a proprietary notice and are skipped.
//!
//! What is cached is checked before it is used, so a damaged cache is fetched again instead
//! of failing forever: the unpacked folder counts only with its completion marker (written
//! last, listing every file and its size, all of which must match), and a cached wheel whose
//! checksum is wrong is deleted and downloaded again.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::{head, CppError, ErrorKind};

/// The `hls4ml` release whose wheel ships the headers.
pub const HLS4ML_VERSION: &str = "1.3.0";
/// SHA-256 of `hls4ml-1.3.0-py3-none-any.whl`, so a changed file is noticed.
const HLS4ML_SHA256: &str = "01bf1de2cd9bca56699b9fe3385cb1735026b022f9580fe1d73faf192dfb90f2";
/// The completion marker inside an unpacked folder: the wheel's checksum, then one
/// `<size> <relative path>` line per file. Written after every header.
pub const COMPLETE_MARKER: &str = ".qfx-complete";
/// Largest marker read back (a real one is a few kilobytes).
const MAX_MARKER_BYTES: u64 = 1 << 20;

/// A wheel that holds headers, and how to get it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Wheel {
    /// What `pip download` asks for, e.g. `hls4ml==1.3.0`.
    pub requirement: String,
    /// The wheel's file name, as pip saves it.
    pub file_name: String,
    /// Its SHA-256, lowercase hex.
    pub sha256: String,
    /// The folder inside the wheel whose files are the headers (ends with `/`).
    pub prefix: String,
    /// File names never unpacked.
    pub skip: Vec<String>,
    /// The cache folder the headers are unpacked into.
    pub folder: String,
    /// Copy the wheel from this file instead of downloading it (an offline machine that has
    /// the wheel; the tests). The checksum is checked all the same.
    pub local: Option<PathBuf>,
}

impl Wheel {
    /// The pinned `hls4ml` wheel.
    pub fn hls4ml() -> Wheel {
        Wheel {
            requirement: format!("hls4ml=={HLS4ML_VERSION}"),
            file_name: format!("hls4ml-{HLS4ML_VERSION}-py3-none-any.whl"),
            sha256: HLS4ML_SHA256.to_string(),
            prefix: "hls4ml/templates/vivado/ap_types/".to_string(),
            skip: vec!["hls_stream.h".to_string(), "ap_shift_reg.h".to_string()],
            folder: format!("ap_types-hls4ml-{HLS4ML_VERSION}"),
            local: None,
        }
    }
}

/// Unpacks the `hls4ml` wheel's `ap_types` into `cache/ap_types-hls4ml-<version>` (once) and
/// returns that folder, ready for `g++ -isystem`. Errors ([`ErrorKind::Headers`]) say what is
/// missing (python3, pip, network) or wrong (checksum).
pub fn ensure_headers(cache: &Path) -> Result<PathBuf, CppError> {
    ensure_headers_from(cache, &Wheel::hls4ml())
}

/// [`ensure_headers`] for any [`Wheel`].
pub fn ensure_headers_from(cache: &Path, wheel: &Wheel) -> Result<PathBuf, CppError> {
    let dir = cache.join(&wheel.folder);
    if is_complete(&dir, wheel) {
        return Ok(dir);
    }
    // Absent, or damaged (interrupted, truncated, edited): unpacked again below.
    std::fs::create_dir_all(cache)
        .map_err(|e| CppError::io(format!("cannot create {}", cache.display()), e))?;
    let download = cache.join("wheel");
    let wheel_path = download.join(&wheel.file_name);
    // Unpack into a temporary folder and rename it into place, so an interrupted run never
    // leaves a half-extracted folder under the cache's name.
    let partial = cache.join(format!("{}-partial-{}", wheel.folder, std::process::id()));
    let _ = std::fs::remove_dir_all(&partial);
    let mut downloaded = false;
    loop {
        if !wheel_path.is_file() {
            fetch(wheel, &download, &wheel_path)?;
            downloaded = true;
        }
        match unpack(wheel, &wheel_path, &partial) {
            Ok(()) => break,
            Err(e) => {
                let _ = std::fs::remove_dir_all(&partial);
                // A wheel that fails its checksum is never kept: a cached one (truncated by
                // an interrupted download, or altered) is fetched again once; a fresh one is
                // an error, and the next run fetches again too.
                if e.kind == ErrorKind::Headers && e.message.contains(CHECKSUM_TEXT) {
                    let _ = std::fs::remove_file(&wheel_path);
                    if !downloaded {
                        continue;
                    }
                }
                return Err(e);
            }
        }
    }
    // Replace a damaged folder: set it aside first, so that the rename cannot fail on a
    // non-empty target, then drop it.
    if std::fs::symlink_metadata(&dir).is_ok() {
        let stale = cache.join(format!("{}-stale-{}", wheel.folder, std::process::id()));
        let _ = std::fs::remove_dir_all(&stale);
        if let Err(e) = std::fs::rename(&dir, &stale) {
            // Another process may have replaced it meanwhile with a complete copy.
            if !is_complete(&dir, wheel) {
                let _ = std::fs::remove_dir_all(&partial);
                return Err(CppError::io(
                    format!("cannot replace the damaged header cache {}", dir.display()),
                    e,
                ));
            }
        }
        let _ = std::fs::remove_dir_all(&stale);
    }
    match std::fs::rename(&partial, &dir) {
        Ok(()) => {}
        // Another process finished first: use its copy.
        Err(_) if is_complete(&dir, wheel) => {
            let _ = std::fs::remove_dir_all(&partial);
        }
        Err(e) => {
            let _ = std::fs::remove_dir_all(&partial);
            return Err(CppError::io(
                format!("cannot move headers into {}", dir.display()),
                e,
            ));
        }
    }
    Ok(dir)
}

/// True when `dir` holds a complete unpacking of `wheel`: its marker names the wheel's
/// checksum and lists `ap_fixed.h`, and every file it lists is a regular file of the listed
/// size.
fn is_complete(dir: &Path, wheel: &Wheel) -> bool {
    let marker = dir.join(COMPLETE_MARKER);
    let Ok(meta) = std::fs::symlink_metadata(&marker) else {
        return false;
    };
    if !meta.is_file() || meta.len() > MAX_MARKER_BYTES {
        return false;
    }
    let Ok(text) = std::fs::read_to_string(&marker) else {
        return false;
    };
    let mut lines = text.lines();
    if lines.next() != Some(format!("sha256 {}", wheel.sha256).as_str()) {
        return false;
    }
    let mut has_ap_fixed = false;
    for line in lines {
        let Some((size, rel)) = line.split_once(' ') else {
            return false;
        };
        let Ok(size) = size.parse::<u64>() else {
            return false;
        };
        // The listed names come from the wheel; still, never look outside the folder.
        if rel.starts_with('/') || rel.split('/').any(|p| p == "..") {
            return false;
        }
        match std::fs::symlink_metadata(dir.join(rel)) {
            Ok(m) if m.is_file() && m.len() == size => {}
            _ => return false,
        }
        has_ap_fixed |= rel == "ap_fixed.h";
    }
    has_ap_fixed
}

fn headers_error(message: String) -> CppError {
    CppError::new(ErrorKind::Headers, message)
}

/// Puts the wheel at `wheel_path`: `pip download` into `download`, or a copy of the local file.
fn fetch(wheel: &Wheel, download: &Path, wheel_path: &Path) -> Result<(), CppError> {
    std::fs::create_dir_all(download)
        .map_err(|e| CppError::io(format!("cannot create {}", download.display()), e))?;
    if let Some(local) = &wheel.local {
        // Copy beside the target and rename, so a partial copy never takes the wheel's name.
        let tmp = download.join(format!(".{}.tmp-{}", wheel.file_name, std::process::id()));
        std::fs::copy(local, &tmp)
            .and_then(|_| std::fs::rename(&tmp, wheel_path))
            .map_err(|e| {
                let _ = std::fs::remove_file(&tmp);
                headers_error(format!("cannot copy the wheel {}: {e}", local.display()))
            })?;
        return Ok(());
    }
    let out = Command::new("python3")
        .args([
            "-m",
            "pip",
            "download",
            "--quiet",
            "--no-deps",
            "--only-binary=:all:",
            "-d",
        ])
        .arg(download)
        .arg(&wheel.requirement)
        .output()
        .map_err(|e| headers_error(format!("cannot run python3 -m pip: {e}")))?;
    if !out.status.success() {
        return Err(headers_error(format!(
            "pip download {} failed ({}): {}",
            wheel.requirement,
            out.status,
            head(String::from_utf8_lossy(&out.stderr).trim(), 8)
        )));
    }
    if !wheel_path.is_file() {
        return Err(headers_error(format!(
            "pip download {} wrote no {}",
            wheel.requirement,
            wheel_path.display()
        )));
    }
    Ok(())
}

/// Exit status of the unpacking script when the wheel's checksum is wrong.
const CHECKSUM_MISMATCH: i32 = 3;
/// How its message starts.
const CHECKSUM_TEXT: &str = "checksum mismatch";

/// Checks the wheel's checksum and unpacks its headers into `out`, the completion marker last.
fn unpack(wheel: &Wheel, wheel_path: &Path, out: &Path) -> Result<(), CppError> {
    const SCRIPT: &str = r#"
import hashlib, os, sys, zipfile
wheel, want, out, prefix, marker = sys.argv[1:6]
skip = set(sys.argv[6:])
with open(wheel, 'rb') as f:
    got = hashlib.sha256(f.read()).hexdigest()
if got != want:
    print(f'checksum mismatch for {wheel}: SHA-256 {got}, expected {want}', file=sys.stderr)
    sys.exit(3)
listed = []
with zipfile.ZipFile(wheel) as z:
    for name in z.namelist():
        rel = name[len(prefix):]
        if name.startswith(prefix) and rel and not name.endswith('/') and os.path.basename(rel) not in skip:
            if rel.startswith('/') or '..' in rel.split('/'):
                sys.exit(f'unsafe path {name} in {wheel}')
            path = os.path.join(out, rel)
            os.makedirs(os.path.dirname(path), exist_ok=True)
            data = z.read(name)
            with open(path, 'wb') as f:
                f.write(data)
            listed.append(f'{len(data)} {rel}')
if not listed:
    sys.exit(f'no files under {prefix} in {wheel}')
os.makedirs(out, exist_ok=True)
with open(os.path.join(out, marker), 'w') as f:
    f.write(f'sha256 {got}\n' + '\n'.join(listed) + '\n')
"#;
    let result = Command::new("python3")
        .args(["-c", SCRIPT])
        .arg(wheel_path)
        .arg(&wheel.sha256)
        .arg(out)
        .arg(&wheel.prefix)
        .arg(COMPLETE_MARKER)
        .args(&wheel.skip)
        .output()
        .map_err(|e| headers_error(format!("cannot run python3: {e}")))?;
    if result.status.success() {
        return Ok(());
    }
    let said = head(String::from_utf8_lossy(&result.stderr).trim(), 8);
    if result.status.code() == Some(CHECKSUM_MISMATCH) {
        return Err(headers_error(said));
    }
    Err(headers_error(format!(
        "cannot unpack the ap_types headers from {} ({}): {said}",
        wheel_path.display(),
        result.status
    )))
}
