//! The generated C++ fragments and the helpers every operation family writes them with:
//! typedefs, constants as integer codes, configuration structs, buffers and calls.

use std::fmt::Write as _;

use qfx_fixed::Format;
use qfx_ir::{Codes, Node};

use super::plan::Tensor;
use crate::names::quoted;
use crate::{ErrorKind, HlsError};

/// Generated C++ fragments, one per destination in the project's files.
#[derive(Default)]
pub(super) struct Gen {
    /// `model_types.h`: one typedef per tensor, accumulator and constant group.
    pub typedefs: String,
    pub typedefs_count: usize,
    /// `model_weights.h`: constants as integer codes.
    pub constants: String,
    pub constants_count: usize,
    /// `model.cpp`: one configuration struct per layer call.
    pub configs: String,
    /// `model.cpp`: the intermediate tensors.
    pub buffers: String,
    /// `model.cpp`: the top function's calls.
    pub body: String,
    /// `model.cpp`: generated layer functions (multiplier-free K-hot layers).
    pub functions: String,
}

/// The layer being emitted, as the generated code names it.
pub(super) struct Site<'a> {
    /// Its identifier prefix (`l3_fc`).
    pub id: &'a str,
    /// The resolved node.
    pub node: &'a Node<'a>,
    /// Its operands as the top function holds them, with their formats (the input type for the
    /// raw network input).
    pub operands: Vec<(Tensor, Format)>,
    /// Its output.
    pub y: Tensor,
}

impl Site<'_> {
    /// The layer's index in the model.
    pub fn index(&self) -> usize {
        self.node.index
    }

    /// Its name in the IR.
    pub fn name(&self) -> &str {
        &self.node.layer.name
    }

    /// The first operand.
    pub fn x(&self) -> &Tensor {
        &self.operands[0].0
    }

    /// The first operand's format.
    pub fn x_format(&self) -> Format {
        self.operands[0].1
    }

    /// An error saying this layer cannot be exported, and why.
    pub fn unsupported(&self, m: impl std::fmt::Display) -> HlsError {
        HlsError::new(
            ErrorKind::Unsupported,
            format!("layer {}: {m}", quoted(self.name())),
        )
    }

    /// A configuration struct named after the layer (`suffix` tells calls of one layer apart).
    pub fn config(&self, suffix: &str, what: &str) -> Config {
        Config {
            name: format!("{}_cfg{suffix}", self.id),
            what: format!(
                "layer {} {} ({}){what}",
                self.index(),
                quoted(self.name()),
                self.node.op().kind()
            ),
            members: Vec::new(),
        }
    }

    /// Writes `qfx::op<config>(args…, y)` into the top function.
    pub fn call(&self, gen: &mut Gen, op: &str, config: &str, args: &[&str]) {
        let mut all: Vec<&str> = args.to_vec();
        all.push(&self.y.buffer);
        let _ = writeln!(gen.body, "  qfx::{op}<{config}>({});", all.join(", "));
    }
}

/// A configuration struct: the types and sizes one layer template call needs, each named
/// (the generated C++ reads `CFG::in_channels`, not the seventh template argument).
pub(super) struct Config {
    name: String,
    what: String,
    members: Vec<(String, String)>,
}

impl Config {
    /// `typedef value key;  // what`
    pub fn ty(mut self, key: &str, value: &str, what: &str) -> Config {
        self.members
            .push((format!("typedef {value} {key};"), what.to_string()));
        self
    }

    /// `static const int key = value;  // what`
    pub fn int(mut self, key: &str, value: usize, what: &str) -> Config {
        self.members.push((
            format!("static const int {key} = {value};"),
            what.to_string(),
        ));
        self
    }

    /// `static const bool key = value;  // what`
    pub fn flag(mut self, key: &str, value: bool, what: &str) -> Config {
        self.members.push((
            format!("static const bool {key} = {value};"),
            what.to_string(),
        ));
        self
    }

    /// `static const long long key = value;  // what`
    pub fn code(mut self, key: &str, value: i64, what: &str) -> Config {
        let line = format!("static const long long {key} = {};", code_literal(value));
        self.members.push((line, what.to_string()));
        self
    }

    /// The element types and count of a layer that maps `n` values to `n` values.
    pub fn unary(self, site: &Site, n: usize) -> Config {
        self.ty("x_t", &site.x().type_name, "input")
            .ty("y_t", &site.y.type_name, "output")
            .int("n", n, "values")
    }
}

impl Gen {
    pub fn typedef(&mut self, name: &str, format: Format, what: &str) {
        let _ = writeln!(
            self.typedefs,
            "typedef {} {name};  // {what}",
            format.full_spelling()
        );
        self.typedefs_count += 1;
    }

    /// Writes a configuration struct and returns its name.
    pub fn config(&mut self, config: Config) -> String {
        let width = config
            .members
            .iter()
            .map(|(l, _)| l.len())
            .max()
            .unwrap_or(0);
        let _ = writeln!(
            self.configs,
            "// {}\nstruct {} {{",
            config.what, config.name
        );
        for (line, what) in &config.members {
            let _ = writeln!(self.configs, "  {line:<width$}  // {what}");
        }
        self.configs.push_str("};\n\n");
        config.name
    }

    /// Emits `codes` as `static const <container> name[n]` and returns the container's name.
    pub fn codes(&mut self, name: &str, codes: &Codes, what: &str) -> String {
        let bits = codes
            .formats
            .iter()
            .map(|f| f.width() + !f.is_signed() as u32)
            .max()
            .unwrap_or(1)
            .clamp(1, 64);
        self.code_array(name, bits, &codes.codes, what)
    }

    pub fn code_array(&mut self, name: &str, bits: u32, codes: &[i64], what: &str) -> String {
        let c_type = match bits {
            0..=8 => "signed char",
            9..=16 => "short",
            17..=32 => "int",
            _ => "long long",
        };
        let container = format!("{name}_c_t");
        let _ = writeln!(
            self.constants,
            "// {what}\ntypedef QFX_CONTAINER(ap_int<{bits}>, {c_type}) {container};\nstatic const {container} {name}[{}] = {{",
            codes.len()
        );
        for line in codes.chunks(20) {
            let items: Vec<String> = line.iter().map(|&c| code_literal(c)).collect();
            let _ = writeln!(self.constants, "    {},", items.join(", "));
        }
        self.constants.push_str("};\n\n");
        self.constants_count += codes.len();
        container
    }

    /// The channel-list argument of a channel group: `qfx::all_channels` when one group has
    /// them all, else a list of the group's channels.
    pub fn channel_arg(&mut self, id: &str, g: usize, chans: &[usize], single: bool) -> String {
        if single {
            return "qfx::all_channels".to_string();
        }
        let name = format!("{id}_g{g}_ch");
        let items: Vec<String> = chans.iter().map(|c| c.to_string()).collect();
        let _ = writeln!(
            self.constants,
            "static const int {name}[{}] = {{{}}};\n",
            chans.len(),
            items.join(", ")
        );
        name
    }
}

/// A C++ integer literal for `c` (exact for every `i64`).
pub(super) fn code_literal(c: i64) -> String {
    if c == i64::MIN {
        "(-9223372036854775807LL - 1)".to_string()
    } else if i32::try_from(c).is_ok() {
        c.to_string()
    } else {
        format!("{c}LL")
    }
}

/// Channels grouped by the formats they need (first appearance order).
pub(super) fn group_channels<K: PartialEq + Copy>(
    n: usize,
    key: impl Fn(usize) -> K,
) -> Vec<(K, Vec<usize>)> {
    let mut groups: Vec<(K, Vec<usize>)> = Vec::new();
    for c in 0..n {
        let k = key(c);
        match groups.iter_mut().find(|(g, _)| *g == k) {
            Some((_, chans)) => chans.push(c),
            None => groups.push((k, vec![c])),
        }
    }
    groups
}
