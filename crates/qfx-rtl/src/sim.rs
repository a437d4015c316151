//! Running a design in Verilator: a generic testbench streams input beats (one bus value per
//! clock) into the top module and records every output beat with its cycle.
//!
//! The top module's ports are the ones [`crate::design`] writes: `clk`, `rst`, `in_valid`,
//! `in_data`, `out_valid`, `out_data`. Beats are hexadecimal lines (most significant digit
//! first); the testbench converts them to Verilator's port types (`CData` … `QData`, or
//! `VlWide` for buses over 64 bits).

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use crate::tools::{run, Tool};
use crate::{write_file, ErrorKind, RtlError};

/// The testbench, the same for every design.
const TESTBENCH: &str = r#"// Generic Verilator testbench written by qfx: streams the beats of argv[1] into in_data, one
// per clock ("-": a clock without input), and writes every out_data beat with its cycle number
// to argv[2] until argv[3] beats came out (or the clock ran argv[4] cycles past the last
// input). Stops with an error when the design raises err.
#include "Vtop.h"
#include "verilated.h"
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <memory>
#include <string>
#include <vector>

template <class T> static void put(T& port, const std::vector<uint32_t>& w) {
    uint64_t v = 0;
    for (size_t i = 0; i < w.size() && i < 2; ++i) v |= uint64_t(w[i]) << (32 * i);
    port = T(v);
}
template <std::size_t N> static void put(VlWide<N>& port, const std::vector<uint32_t>& w) {
    for (std::size_t i = 0; i < N; ++i) port[i] = i < w.size() ? w[i] : 0;
}
template <class T> static std::vector<uint32_t> get(const T& port) {
    uint64_t v = port;
    return {uint32_t(v), uint32_t(v >> 32)};
}
template <std::size_t N> static std::vector<uint32_t> get(const VlWide<N>& port) {
    std::vector<uint32_t> w(N);
    for (std::size_t i = 0; i < N; ++i) w[i] = port[i];
    return w;
}

static std::vector<uint32_t> parse_hex(const std::string& s) {
    std::vector<uint32_t> words((s.size() + 7) / 8, 0);
    for (size_t k = 0; k < s.size(); ++k) {
        char c = s[s.size() - 1 - k];
        uint32_t d = c >= 'a' ? c - 'a' + 10 : c >= 'A' ? c - 'A' + 10 : c - '0';
        words[k / 8] |= d << (4 * (k % 8));
    }
    return words;
}

int main(int argc, char** argv) {
    if (argc != 5) {
        std::fprintf(stderr, "usage: tb INPUTS OUTPUTS EXPECTED SLACK\n");
        return 2;
    }
    std::vector<std::vector<uint32_t>> beats;
    {
        std::ifstream in(argv[1]);
        std::string line;
        // A line "-" is a clock without input.
        while (std::getline(in, line))
            if (!line.empty()) beats.push_back(line == "-" ? std::vector<uint32_t>() : parse_hex(line));
    }
    FILE* out = std::fopen(argv[2], "w");
    if (!out) return 3;
    const long expected = std::atol(argv[3]);
    const long slack = std::atol(argv[4]);
    auto ctx = std::make_unique<VerilatedContext>();
    auto top = std::make_unique<Vtop>(ctx.get());
    auto tick = [&]() {
        top->clk = 0;
        top->eval();
        top->clk = 1;
        top->eval();
    };
    top->rst = 1;
    top->in_valid = 0;
    tick();
    tick();
    top->rst = 0;
    long seen = 0;
    const long n = long(beats.size());
    for (long cycle = 0; seen < expected; ++cycle) {
        if (cycle >= n + slack) {
            std::fprintf(stderr, "only %ld of %ld output beats after %ld cycles\n", seen, expected, cycle);
            return 4;
        }
        const bool beat = cycle < n && !beats[cycle].empty();
        top->in_valid = beat;
        if (beat) put(top->in_data, beats[cycle]);
        tick();
        if (top->err) {
            std::fprintf(stderr, "err: a FIFO overflowed at cycle %ld (inputs too close together)\n", cycle);
            return 6;
        }
        if (top->out_valid) {
            std::vector<uint32_t> w = get(top->out_data);
            std::fprintf(out, "%ld ", cycle);
            for (size_t i = w.size(); i-- > 0;) std::fprintf(out, "%08x", w[i]);
            std::fputc('\n', out);
            ++seen;
        }
    }
    top->final();
    return std::fclose(out) == 0 ? 0 : 5;
}
"#;

/// A compiled simulation of one design.
#[derive(Debug)]
pub struct Simulation {
    dir: PathBuf,
    exe: PathBuf,
    /// Seconds Verilator and the C++ compiler took.
    pub build_seconds: f64,
}

/// What came out of a run.
#[derive(Debug)]
pub struct Beats {
    /// Every output beat: the cycle it appeared in (inputs enter from cycle 0, one per cycle)
    /// and its bits as 32-bit words, least significant first.
    pub outputs: Vec<(u64, Vec<u32>)>,
    /// Seconds the simulation ran.
    pub run_seconds: f64,
}

impl Simulation {
    /// Compiles `sources` (top module `qfx_top`) with the testbench into `work`/obj.
    pub fn build(work: &Path, sources: &[PathBuf]) -> Result<Simulation, RtlError> {
        std::fs::create_dir_all(work)
            .map_err(|e| RtlError::io(format!("cannot create {}", work.display()), e))?;
        // Verilator's make runs in the object folder: relative paths would not be found there.
        let absolute = |p: &Path| {
            std::path::absolute(p)
                .map_err(|e| RtlError::io(format!("cannot resolve {}", p.display()), e))
        };
        let work = &absolute(work)?;
        let sources = &sources
            .iter()
            .map(|p| absolute(p))
            .collect::<Result<Vec<_>, _>>()?;
        let tb = work.join("tb.cpp");
        write_file(&tb, TESTBENCH.as_bytes())?;
        let obj = work.join("obj");
        // A stale build of another design must not be reused.
        let _ = std::fs::remove_dir_all(&obj);
        let start = Instant::now();
        let mut cmd = Command::new(Tool::Verilator.program());
        cmd.args([
            "--cc",
            "--exe",
            "--build",
            "-j",
            "2",
            "--prefix",
            "Vtop",
            "--top-module",
            "qfx_top",
            "-Wno-fatal",
            "-Wno-lint",
            "-Wno-style",
            // The generated C++ is long and straight-line: unoptimized it compiles several
            // times faster, and a few hundred inferences still simulate in milliseconds.
            "-MAKEFLAGS",
            "OPT_FAST=-O0 OPT_SLOW=-O0 OPT_GLOBAL=-O0",
            "-o",
            "tb",
            "-Mdir",
        ])
        .arg(&obj)
        .args(sources)
        .arg(&tb);
        run(Tool::Verilator, &mut cmd, None)?;
        let exe = obj.join("tb");
        if !exe.is_file() {
            return Err(RtlError::new(
                ErrorKind::Tool,
                format!("verilator wrote no executable at {}", exe.display()),
            ));
        }
        Ok(Simulation {
            dir: work.to_path_buf(),
            exe,
            build_seconds: start.elapsed().as_secs_f64(),
        })
    }

    /// Streams `beats` (each a bus value, 32-bit words least significant first; `None` a clock
    /// without input) and collects `expected` output beats; `slack` cycles after the last input
    /// are allowed for them.
    pub fn run(
        &self,
        beats: &[Option<Vec<u32>>],
        expected: usize,
        slack: u64,
    ) -> Result<Beats, RtlError> {
        let inputs = self.dir.join("inputs.hex");
        let outputs = self.dir.join("outputs.txt");
        let mut text = String::new();
        for b in beats {
            match b {
                Some(b) => text.push_str(&to_hex(b)),
                None => text.push('-'),
            }
            text.push('\n');
        }
        write_file(&inputs, text.as_bytes())?;
        let _ = std::fs::remove_file(&outputs);
        let start = Instant::now();
        let out = Command::new(&self.exe)
            .arg(&inputs)
            .arg(&outputs)
            .arg(expected.to_string())
            .arg(slack.to_string())
            .output()
            .map_err(|e| RtlError::io(format!("cannot run {}", self.exe.display()), e))?;
        let run_seconds = start.elapsed().as_secs_f64();
        if !out.status.success() {
            return Err(RtlError::new(
                ErrorKind::Run,
                format!(
                    "the simulation failed ({}): {}",
                    out.status,
                    crate::tools::tail(&out, 10)
                ),
            ));
        }
        let text = std::fs::read_to_string(&outputs)
            .map_err(|e| RtlError::io(format!("cannot read {}", outputs.display()), e))?;
        let mut beats_out = Vec::with_capacity(expected);
        for line in text.lines() {
            let bad = || RtlError::new(ErrorKind::Run, format!("bad simulation output {line:?}"));
            let (cycle, hex) = line.split_once(' ').ok_or_else(bad)?;
            let cycle: u64 = cycle.parse().map_err(|_| bad())?;
            beats_out.push((cycle, from_hex(hex).ok_or_else(bad)?));
        }
        if beats_out.len() != expected {
            return Err(RtlError::new(
                ErrorKind::Run,
                format!(
                    "the simulation wrote {} output beats, expected {expected}",
                    beats_out.len()
                ),
            ));
        }
        Ok(Beats {
            outputs: beats_out,
            run_seconds,
        })
    }
}

/// 32-bit words (least significant first) as hexadecimal, most significant digit first.
fn to_hex(words: &[u32]) -> String {
    let mut s = String::with_capacity(words.len() * 8);
    for w in words.iter().rev() {
        s.push_str(&format!("{w:08x}"));
    }
    if s.is_empty() {
        s.push('0');
    }
    s
}

/// The inverse of [`to_hex`].
fn from_hex(s: &str) -> Option<Vec<u32>> {
    let digits: Vec<u32> = s.chars().map(|c| c.to_digit(16)).collect::<Option<_>>()?;
    let mut words = vec![0u32; digits.len().div_ceil(8)];
    for (k, d) in digits.iter().rev().enumerate() {
        words[k / 8] |= d << (4 * (k % 8));
    }
    Some(words)
}

/// A bus of `width`-bit fields: field `i` occupies bits `[i·width, (i+1)·width)`.
pub(crate) fn pack(codes: &[i128], width: u32) -> Vec<u32> {
    let total = codes.len() as u64 * width as u64;
    let mut words = vec![0u32; total.div_ceil(32).max(1) as usize];
    for (i, &c) in codes.iter().enumerate() {
        for b in 0..width as u64 {
            if (c >> b.min(127)) & 1 == 1 {
                let pos = i as u64 * width as u64 + b;
                words[(pos / 32) as usize] |= 1 << (pos % 32);
            }
        }
    }
    words
}

/// Field `i` of a bus of `width`-bit fields, as a code (two's complement when `signed`).
pub(crate) fn field(words: &[u32], i: usize, width: u32, signed: bool) -> i128 {
    let mut v: i128 = 0;
    for b in 0..width as u64 {
        let pos = i as u64 * width as u64 + b;
        let word = words.get((pos / 32) as usize).copied().unwrap_or(0);
        if (word >> (pos % 32)) & 1 == 1 {
            v |= 1i128 << b;
        }
    }
    if signed && width < 128 && (v >> (width - 1)) & 1 == 1 {
        v -= 1i128 << width;
    }
    v
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buses_pack_and_unpack() {
        let codes = [-3i128, 5, -8, 7, 0, -1];
        let w = pack(&codes, 4);
        assert_eq!(w.len(), 1);
        for (i, &c) in codes.iter().enumerate() {
            assert_eq!(field(&w, i, 4, true), c);
        }
        assert_eq!(field(&w, 0, 4, false), 13);
        let wide = pack(&[-(1i128 << 40), 1], 45);
        assert_eq!(field(&wide, 0, 45, true), -(1i128 << 40));
        assert_eq!(field(&wide, 1, 45, true), 1);
        assert_eq!(from_hex(&to_hex(&wide)).unwrap(), wide);
    }
}
