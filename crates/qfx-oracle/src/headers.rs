//! Obtains the Xilinx `ap_types` headers (Apache-2.0) from the `hls4ml` wheel at test time.
//!
//! The headers are never committed: `pip download` fetches the pinned wheel, its checksum is
//! verified, and only the `ap_types` folder is unpacked into a cache under the target
//! directory. `hls_stream.h` and `ap_shift_reg.h` carry a proprietary notice and are skipped.

use std::path::{Path, PathBuf};
use std::process::Command;

/// The wheel that ships the headers.
pub const HLS4ML_VERSION: &str = "1.3.0";
/// SHA-256 of `hls4ml-1.3.0-py3-none-any.whl`, so a changed file is noticed.
const WHEEL_SHA256: &str = "01bf1de2cd9bca56699b9fe3385cb1735026b022f9580fe1d73faf192dfb90f2";

/// Unpacks the wheel's `ap_types` into `cache/ap_types-hls4ml-<version>` (once) and returns that
/// folder, ready for `g++ -isystem`. Errors say what is missing (python3, pip, network).
pub fn ensure_headers(cache: &Path) -> Result<PathBuf, String> {
    let dir = cache.join(format!("ap_types-hls4ml-{HLS4ML_VERSION}"));
    if dir.join("ap_fixed.h").is_file() {
        return Ok(dir);
    }
    std::fs::create_dir_all(cache)
        .map_err(|e| format!("cannot create {}: {e}", cache.display()))?;
    let download = cache.join("wheel");
    let status = Command::new("python3")
        .args([
            "-m",
            "pip",
            "download",
            "--quiet",
            "--no-deps",
            "--only-binary=:all:",
            "-d",
        ])
        .arg(&download)
        .arg(format!("hls4ml=={HLS4ML_VERSION}"))
        .status()
        .map_err(|e| format!("cannot run python3 -m pip: {e}"))?;
    if !status.success() {
        return Err(format!(
            "pip download hls4ml=={HLS4ML_VERSION} failed ({status})"
        ));
    }
    let wheel = download.join(format!("hls4ml-{HLS4ML_VERSION}-py3-none-any.whl"));
    // Unpack into a temporary folder and rename it into place, so an interrupted run never
    // leaves a half-extracted cache that looks complete.
    let partial = cache.join(format!("ap_types-partial-{}", std::process::id()));
    let script = r#"
import hashlib, os, sys, zipfile
wheel, want, out = sys.argv[1], sys.argv[2], sys.argv[3]
got = hashlib.sha256(open(wheel, 'rb').read()).hexdigest()
if got != want:
    sys.exit(f'checksum mismatch for {wheel}: {got}')
prefix = 'hls4ml/templates/vivado/ap_types/'
skip = {'hls_stream.h', 'ap_shift_reg.h'}  # proprietary notice: never unpacked
with zipfile.ZipFile(wheel) as z:
    for name in z.namelist():
        rel = name[len(prefix):]
        if name.startswith(prefix) and rel and not name.endswith('/') and os.path.basename(rel) not in skip:
            path = os.path.join(out, rel)
            os.makedirs(os.path.dirname(path), exist_ok=True)
            with open(path, 'wb') as f:
                f.write(z.read(name))
"#;
    let status = Command::new("python3")
        .args(["-c", script])
        .arg(&wheel)
        .arg(WHEEL_SHA256)
        .arg(&partial)
        .status()
        .map_err(|e| format!("cannot run python3: {e}"))?;
    if !status.success() {
        let _ = std::fs::remove_dir_all(&partial);
        return Err(format!(
            "cannot unpack the ap_types headers from {}",
            wheel.display()
        ));
    }
    match std::fs::rename(&partial, &dir) {
        Ok(()) => {}
        // Another process finished first: use its copy.
        Err(_) if dir.join("ap_fixed.h").is_file() => {
            let _ = std::fs::remove_dir_all(&partial);
        }
        Err(e) => return Err(format!("cannot move headers into {}: {e}", dir.display())),
    }
    Ok(dir)
}

/// True when a C++ compiler answers `g++ --version`.
pub fn have_gxx() -> bool {
    Command::new("g++")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success())
}
