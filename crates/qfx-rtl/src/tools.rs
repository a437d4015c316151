//! Finding and running the open tools: Verilator (simulation) and Yosys (synthesis).
//!
//! Each is looked up on `PATH` unless `QFX_VERILATOR` / `QFX_YOSYS` names the program. A tool
//! that is not installed is [`ErrorKind::NoTool`] (tests then say SKIPPED); one that is
//! installed but fails is [`ErrorKind::Tool`], never "not found".

use std::path::Path;
use std::process::{Command, Output};

use crate::{ErrorKind, RtlError};

/// One of the external programs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Tool {
    /// Verilator, which compiles the design and its testbench to a program.
    Verilator,
    /// Yosys, which synthesizes the design onto Xilinx primitives.
    Yosys,
}

impl Tool {
    /// The program's usual name.
    pub fn name(self) -> &'static str {
        match self {
            Tool::Verilator => "verilator",
            Tool::Yosys => "yosys",
        }
    }

    /// The environment variable that overrides the program.
    pub fn env(self) -> &'static str {
        match self {
            Tool::Verilator => "QFX_VERILATOR",
            Tool::Yosys => "QFX_YOSYS",
        }
    }

    /// The program to run: `$QFX_VERILATOR` / `$QFX_YOSYS`, else the name on `PATH`.
    pub fn program(self) -> String {
        std::env::var(self.env())
            .ok()
            .filter(|s| !s.is_empty())
            .unwrap_or_else(|| self.name().to_string())
    }

    /// The tool's version line (`verilator --version`, `yosys -V`), which also checks that it
    /// runs at all.
    pub fn version(self) -> Result<String, RtlError> {
        let flag = match self {
            Tool::Verilator => "--version",
            Tool::Yosys => "-V",
        };
        let out = run(self, Command::new(self.program()).arg(flag), None)?;
        Ok(String::from_utf8_lossy(&out.stdout).trim().to_string())
    }
}

/// Runs `cmd` (a command of `tool`), in `dir` when given; the tool's own failure becomes an
/// error quoting the end of its output.
pub(crate) fn run(tool: Tool, cmd: &mut Command, dir: Option<&Path>) -> Result<Output, RtlError> {
    if let Some(d) = dir {
        cmd.current_dir(d);
    }
    let out = cmd.output().map_err(|e| {
        if e.kind() == std::io::ErrorKind::NotFound {
            RtlError::new(
                ErrorKind::NoTool,
                format!(
                    "{} is not installed (looked for `{}`; set {} to use another program). \
                     On Debian or Ubuntu: apt-get install {}",
                    tool.name(),
                    tool.program(),
                    tool.env(),
                    tool.name()
                ),
            )
        } else {
            RtlError::new(
                ErrorKind::Tool,
                format!("cannot run {}: {e}", tool.program()),
            )
        }
    })?;
    if !out.status.success() {
        return Err(RtlError::new(
            ErrorKind::Tool,
            format!(
                "{} failed ({}):\n{}",
                tool.name(),
                out.status,
                tail(&out, 40)
            ),
        ));
    }
    Ok(out)
}

/// The last `lines` lines of a program's stderr and stdout.
pub(crate) fn tail(out: &Output, lines: usize) -> String {
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}
