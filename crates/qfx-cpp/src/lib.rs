//! C++ tooling shared by the header oracle (`qfx-oracle`) and the HLS C-simulation check
//! (`qfx-hls`): finding g++, fetching and caching the Xilinx `ap_types` headers, and
//! compiling and running programs against them.
//!
//! - [`Compiler::find`] looks for g++ and runs `g++ --version`, telling a compiler that is
//!   not installed ([`ErrorKind::NotInstalled`], which callers may turn into a skip) apart from
//!   one that is there but does not work ([`ErrorKind::Broken`], always an error).
//! - [`headers::ensure_headers`] returns a folder holding the `ap_types` headers, fetched once
//!   from the pinned `hls4ml` wheel (`pip download`, SHA-256 checked, only the headers
//!   unpacked) into a cache; a damaged cache is detected and fetched again.
//! - [`Build`] compiles sources into a fresh executable path every time and checks that the
//!   compiler really wrote it, so a stale binary can never be run in place of a new one;
//!   [`Program::run`] runs it.
//!
//! Every failure is a [`CppError`] with a [`kind`](CppError::kind) and a message for people.
//!
//! ```no_run
//! use qfx_cpp::{headers, Build, Compiler};
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let gxx = Compiler::find()?;
//! let include = headers::ensure_headers(&qfx_cpp::default_cache_dir())?;
//! let work = std::env::temp_dir();
//! let source = work.join("hello.cpp");
//! std::fs::write(
//!     &source,
//!     "#include <ap_fixed.h>\n#include <cstdio>\n\
//!      int main() { ap_fixed<8,3> x = 1.3; printf(\"%g\\n\", x.to_double()); }\n",
//! )?;
//! let program = Build::new(&source, &work)
//!     .against_headers(&include)
//!     .start(&gxx)?
//!     .finish()?;
//! let out = program.run(&[], None)?;
//! assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "1.28125");
//! # Ok(())
//! # }
//! ```
//!
//! Errors carry their kind, so callers can decide what is a skip and what is a failure:
//!
//! ```
//! use qfx_cpp::{Compiler, ErrorKind};
//! let err = Compiler::probe("qfx-no-such-compiler").unwrap_err();
//! assert_eq!(err.kind, ErrorKind::NotInstalled);
//! assert!(err.message.contains("qfx-no-such-compiler"));
//! ```

mod compiler;
pub mod headers;

use std::fmt;
use std::path::PathBuf;

pub use compiler::{Build, Compiler, Pending, Program};

/// What went wrong.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ErrorKind {
    /// The compiler is not installed (not on `PATH`).
    NotInstalled,
    /// The compiler is there but does not work (`--version` fails, cannot be executed).
    Broken,
    /// The `ap_types` headers could not be obtained (no python3/pip/network, bad checksum).
    Headers,
    /// A program did not compile, or the compiler wrote no executable.
    Compile,
    /// A compiled program could not be run or failed.
    Run,
    /// Reading or writing files.
    Io,
}

/// An error with its kind and a message for people.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CppError {
    /// The kind.
    pub kind: ErrorKind,
    /// What happened.
    pub message: String,
}

impl CppError {
    pub(crate) fn new(kind: ErrorKind, message: impl Into<String>) -> CppError {
        CppError {
            kind,
            message: message.into(),
        }
    }

    pub(crate) fn io(what: impl fmt::Display, e: std::io::Error) -> CppError {
        CppError::new(ErrorKind::Io, format!("{what}: {e}"))
    }
}

impl fmt::Display for CppError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for CppError {}

/// The user cache for the headers: `$QFX_CACHE_DIR`, else `$XDG_CACHE_HOME/qfx`, else
/// `$HOME/.cache/qfx`, else a folder in the system's temporary directory.
pub fn default_cache_dir() -> PathBuf {
    let var = |k: &str| {
        std::env::var_os(k)
            .filter(|v| !v.is_empty())
            .map(PathBuf::from)
    };
    var("QFX_CACHE_DIR")
        .or_else(|| var("XDG_CACHE_HOME").map(|d| d.join("qfx")))
        .or_else(|| var("HOME").map(|d| d.join(".cache").join("qfx")))
        .unwrap_or_else(|| std::env::temp_dir().join("qfx-cache"))
}

/// The first `n` lines of `text`, for error messages that quote a tool's output.
pub(crate) fn head(text: &str, n: usize) -> String {
    text.lines().take(n).collect::<Vec<_>>().join("\n")
}
