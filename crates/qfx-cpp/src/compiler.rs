//! Finding g++, compiling into a fresh executable path, running the result.

use std::ffi::{OsStr, OsString};
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};

use crate::{head, CppError, ErrorKind};

/// A C++ compiler that answered `--version`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Compiler {
    program: PathBuf,
    version: String,
}

impl Compiler {
    /// `g++` from `PATH`.
    pub fn find() -> Result<Compiler, CppError> {
        Compiler::probe("g++")
    }

    /// The compiler `program` (a name looked up on `PATH`, or a path), checked by running
    /// `program --version`. Not installed gives [`ErrorKind::NotInstalled`]; installed but
    /// failing (cannot be executed, `--version` exits non-zero) gives [`ErrorKind::Broken`]
    /// with what it printed, so a broken compiler is never reported as a missing one.
    pub fn probe(program: impl AsRef<OsStr>) -> Result<Compiler, CppError> {
        let program = PathBuf::from(program.as_ref());
        let shown = program.display();
        let out = match Command::new(&program)
            .arg("--version")
            .stdin(Stdio::null())
            .output()
        {
            Ok(out) => out,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Err(CppError::new(
                    ErrorKind::NotInstalled,
                    format!(
                        "{shown} was not found: install a C++ compiler (e.g. `apt-get install \
                         g++`) to compile against the ap_types headers"
                    ),
                ))
            }
            Err(e) => {
                return Err(CppError::new(
                    ErrorKind::Broken,
                    format!("{shown} is installed but cannot be run: {e}"),
                ))
            }
        };
        if !out.status.success() {
            let said = String::from_utf8_lossy(&out.stderr);
            let said = if said.trim().is_empty() {
                String::from_utf8_lossy(&out.stdout)
            } else {
                said
            };
            return Err(CppError::new(
                ErrorKind::Broken,
                format!(
                    "{shown} is installed but `{shown} --version` failed ({}): {}",
                    out.status,
                    head(said.trim(), 5)
                ),
            ));
        }
        let version = head(String::from_utf8_lossy(&out.stdout).trim(), 1);
        Ok(Compiler { program, version })
    }

    /// The program run for compiling.
    pub fn program(&self) -> &Path {
        &self.program
    }

    /// The first line of its `--version` output.
    pub fn version(&self) -> &str {
        &self.version
    }
}

/// Numbers the executables of this process, so every build gets a path of its own.
static BUILDS: AtomicU64 = AtomicU64::new(0);

/// One compilation: sources, flags, and the folder the executable goes into.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Build {
    sources: Vec<PathBuf>,
    out_dir: PathBuf,
    name: String,
    flags: Vec<OsString>,
    log: Option<PathBuf>,
}

impl Build {
    /// Compiles `source` into an executable in `out_dir` (created if needed), named after the
    /// source's stem plus a number that is new for every build.
    pub fn new(source: impl Into<PathBuf>, out_dir: impl Into<PathBuf>) -> Build {
        let source = source.into();
        let name = source
            .file_stem()
            .and_then(OsStr::to_str)
            .filter(|s| !s.is_empty())
            .unwrap_or("program")
            .to_string();
        Build {
            sources: vec![source],
            out_dir: out_dir.into(),
            name,
            flags: Vec::new(),
            log: None,
        }
    }

    /// Another source file, compiled and linked with the first.
    pub fn source(mut self, source: impl Into<PathBuf>) -> Build {
        self.sources.push(source.into());
        self
    }

    /// The executable's base name (default: the first source's stem).
    pub fn name(mut self, name: &str) -> Build {
        self.name = name.to_string();
        self
    }

    /// One compiler flag, passed as it is (e.g. `-O2`, `-std=c++14`, `-DNAME`).
    pub fn flag(mut self, flag: impl Into<OsString>) -> Build {
        self.flags.push(flag.into());
        self
    }

    /// The flags both users need to compile against the `ap_types` headers in `include`:
    /// `-isystem include` (the headers' own warnings are not ours) and `-DNDEBUG` (the hls4ml
    /// copy of `ap_private.h` asserts when a narrowing assignment reads the rounding bit beyond
    /// the source's MSB, a bit whose value it then ignores; C-simulation flows build without
    /// those asserts).
    pub fn against_headers(self, include: &Path) -> Build {
        self.flag("-DNDEBUG")
            .flag("-isystem")
            .flag(include.as_os_str())
    }

    /// Sends the compiler's messages to the file `log` (default: kept in memory and quoted in
    /// the error).
    pub fn log(mut self, log: impl Into<PathBuf>) -> Build {
        self.log = Some(log.into());
        self
    }

    /// The flags, space-separated, for reports.
    pub fn flags_text(&self) -> String {
        let flags: Vec<String> = self
            .flags
            .iter()
            .map(|f| f.to_string_lossy().into_owned())
            .collect();
        flags.join(" ")
    }

    /// Starts the compiler in the background; [`Pending::finish`] waits for it.
    pub fn start(&self, compiler: &Compiler) -> Result<Pending, CppError> {
        std::fs::create_dir_all(&self.out_dir)
            .map_err(|e| CppError::io(format!("cannot create {}", self.out_dir.display()), e))?;
        let exe = self.fresh_path()?;
        let stderr = match &self.log {
            Some(path) => Stdio::from(new_file(path)?),
            None => Stdio::piped(),
        };
        let child = Command::new(compiler.program())
            .args(&self.flags)
            .arg("-o")
            .arg(&exe)
            .args(&self.sources)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(stderr)
            .spawn()
            .map_err(|e| {
                CppError::new(
                    ErrorKind::Broken,
                    format!("cannot run {}: {e}", compiler.program().display()),
                )
            })?;
        Ok(Pending {
            child,
            exe,
            compiler: compiler.program().to_path_buf(),
            sources: self.sources.clone(),
            log: self.log.clone(),
        })
    }

    /// A path in `out_dir` where nothing is: numbered per process and per build, and anything
    /// left there by an earlier process with the same id is removed first.
    fn fresh_path(&self) -> Result<PathBuf, CppError> {
        let n = BUILDS.fetch_add(1, Ordering::Relaxed);
        let exe = self
            .out_dir
            .join(format!("{}-{}-{n}", self.name, std::process::id()));
        match std::fs::remove_file(&exe) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(CppError::io(format!("cannot remove {}", exe.display()), e)),
        }
        Ok(exe)
    }
}

/// Creates `path` afresh: whatever had its name (a link to a file elsewhere included) is
/// removed first, and the file is created only if nothing took the name meanwhile, so it is
/// never written through a link.
fn new_file(path: &Path) -> Result<std::fs::File, CppError> {
    let cannot = |e| CppError::io(format!("cannot write {}", path.display()), e);
    match std::fs::remove_file(path) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(cannot(e)),
    }
    std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(path)
        .map_err(cannot)
}

/// A compilation under way.
#[derive(Debug)]
pub struct Pending {
    child: Child,
    exe: PathBuf,
    compiler: PathBuf,
    sources: Vec<PathBuf>,
    log: Option<PathBuf>,
}

impl Pending {
    /// Where the executable will be.
    pub fn path(&self) -> &Path {
        &self.exe
    }

    /// Waits for the compiler. Succeeds only when it exited 0 and the executable exists: a
    /// compiler that "succeeds" without writing its output is an error, never a stale binary.
    pub fn finish(self) -> Result<Program, CppError> {
        let Pending {
            child,
            exe,
            compiler,
            sources,
            log,
        } = self;
        let what = sources
            .first()
            .map_or_else(String::new, |s| s.display().to_string());
        let out = child.wait_with_output().map_err(|e| {
            CppError::new(
                ErrorKind::Compile,
                format!("{} did not finish: {e}", compiler.display()),
            )
        })?;
        if !out.status.success() {
            let _ = std::fs::remove_file(&exe);
            let (said, where_) = match &log {
                Some(path) => (
                    std::fs::read_to_string(path).unwrap_or_default(),
                    format!("; full log in {}", path.display()),
                ),
                None => (
                    String::from_utf8_lossy(&out.stderr).into_owned(),
                    String::new(),
                ),
            };
            return Err(CppError::new(
                ErrorKind::Compile,
                format!(
                    "{} could not compile {what} ({}){where_}; first lines:\n{}",
                    compiler.display(),
                    out.status,
                    head(&said, 25)
                ),
            ));
        }
        match std::fs::metadata(&exe) {
            Ok(m) if m.is_file() && m.len() > 0 => Ok(Program { path: exe }),
            _ => Err(CppError::new(
                ErrorKind::Compile,
                format!(
                    "{} exited successfully but wrote no executable {} for {what}",
                    compiler.display(),
                    exe.display()
                ),
            )),
        }
    }

    /// Stops the compiler and removes what it may have written.
    pub fn cancel(mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_file(&self.exe);
    }
}

/// A compiled executable; the file is removed when this is dropped, so no stale binary stays
/// behind to be mistaken for a new one.
#[derive(Debug)]
pub struct Program {
    path: PathBuf,
}

impl Program {
    /// The executable.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Runs it with `args`, feeding `stdin` (or nothing), and returns what it printed. A
    /// non-zero exit is an [`ErrorKind::Run`] error quoting its output.
    pub fn run(&self, args: &[&OsStr], stdin: Option<&[u8]>) -> Result<Output, CppError> {
        let cannot = |e: std::io::Error| {
            CppError::new(
                ErrorKind::Run,
                format!("cannot run {}: {e}", self.path.display()),
            )
        };
        let mut child = Command::new(&self.path)
            .args(args)
            .stdin(if stdin.is_some() {
                Stdio::piped()
            } else {
                Stdio::null()
            })
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(cannot)?;
        // Feed stdin from a thread while the output is drained, so neither pipe can fill up
        // and stall both processes.
        let out = std::thread::scope(|scope| {
            if let (Some(bytes), Some(mut pipe)) = (stdin, child.stdin.take()) {
                // A program that exits early closes the pipe: its exit status tells why.
                scope.spawn(move || {
                    let _ = pipe.write_all(bytes);
                });
            }
            child.wait_with_output()
        })
        .map_err(cannot)?;
        if !out.status.success() {
            return Err(CppError::new(
                ErrorKind::Run,
                format!(
                    "{} failed ({}): {}{}",
                    self.path.display(),
                    out.status,
                    head(String::from_utf8_lossy(&out.stderr).trim(), 10),
                    head(String::from_utf8_lossy(&out.stdout).trim(), 10)
                ),
            ));
        }
        Ok(out)
    }
}

impl Drop for Program {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}
