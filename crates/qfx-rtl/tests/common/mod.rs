//! Shared by the RTL tests: where they work, and what a missing tool means.

#![allow(dead_code)]

use std::path::{Path, PathBuf};

use qfx_rtl::{ErrorKind, RtlError};

/// A test's folder under the target directory, emptied.
pub fn work_dir(name: &str) -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR"))
        .join("qfx-rtl")
        .join(name);
    let _ = std::fs::remove_dir_all(&dir);
    dir
}

/// True when CI requires the tools (`QFX_REQUIRE_RTL_TOOLS=1`, set by `.ci/run`): then a
/// missing Verilator or Yosys fails the test instead of skipping it.
pub fn required() -> bool {
    std::env::var("QFX_REQUIRE_RTL_TOOLS").is_ok_and(|v| v == "1")
}

/// `Some(value)`, or `None` after printing SKIPPED when the tool is missing (and not required).
#[track_caller]
pub fn or_skip<T>(what: &str, r: Result<T, RtlError>) -> Option<T> {
    match r {
        Ok(v) => Some(v),
        Err(e) if e.kind == ErrorKind::NoTool && !required() => {
            println!("SKIPPED {what}: {e}");
            None
        }
        Err(e) => panic!("{what}: {e}"),
    }
}
