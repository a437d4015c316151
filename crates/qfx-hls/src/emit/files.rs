//! The project's files, rendered from the templates under `templates/` with the plan's
//! fragments.

use qfx_ir::Model;

use super::plan::Plan;
use super::{
    EmitOptions, BUILD_TCL, IR_FILE, LAYERS_H, MODEL_CPP, MODEL_H, MODEL_TYPES_H, MODEL_WEIGHTS_H,
    README, TESTBENCH,
};
use crate::names::quoted;
use crate::template::Slots;
use crate::HlsError;

/// Every file of the project: `(path relative to the project, contents)`.
pub(super) fn render(
    plan: &Plan,
    model: &Model,
    options: &EmitOptions,
) -> Result<Vec<(String, String)>, HlsError> {
    let model_comment = format!("model {}", quoted(&model.name));
    let common = Common {
        model_comment: model_comment.clone(),
        top_name: plan.top.clone(),
        n_in: plan.n_in,
        n_out: plan.n_out,
    };
    let zeros = vec!["00000000"; plan.n_in].join(" ");
    let mut files = vec![
        (LAYERS_H.path.to_string(), LAYERS_H.text.to_string()),
        (MODEL_H.path.to_string(), MODEL_H.render(&common)?),
        (
            MODEL_TYPES_H.path.to_string(),
            MODEL_TYPES_H.render(&TypesSlots {
                model_comment: model_comment.clone(),
                typedefs: plan.gen.typedefs.clone(),
                input_type: plan.input_type.full_spelling(),
                output_type: plan.output_type.full_spelling(),
            })?,
        ),
        (
            MODEL_WEIGHTS_H.path.to_string(),
            MODEL_WEIGHTS_H.render(&WeightsSlots {
                model_comment: model_comment.clone(),
                constants: plan.gen.constants.clone(),
            })?,
        ),
        (
            MODEL_CPP.path.to_string(),
            MODEL_CPP.render(&TopSlots {
                common: &common,
                configs: plan.gen.configs.clone(),
                functions: plan.gen.functions.clone(),
                buffers: plan.gen.buffers.clone(),
                body: plan.gen.body.clone(),
            })?,
        ),
        (
            TESTBENCH.path.to_string(),
            TESTBENCH.render(&CommentOnly(model_comment.clone()))?,
        ),
        (
            "tb/inputs.txt".to_string(),
            format!("qfx-inputs 1 1 {}\n{zeros}\n", plan.n_in),
        ),
        (
            BUILD_TCL.path.to_string(),
            BUILD_TCL.render(&TclSlots {
                common: &common,
                part: options.part.clone(),
                clock_ns: format!("{}", options.clock_ns),
            })?,
        ),
        (
            README.path.to_string(),
            README.render(&ReadmeSlots {
                common: &common,
                input_type: plan.input_type.full_spelling(),
                output_type: plan.output_type.full_spelling(),
                layer_rows: plan.layer_rows.clone(),
                part: options.part.clone(),
                clock_ns: format!("{}", options.clock_ns),
            })?,
        ),
    ];
    files.push((IR_FILE.to_string(), model.to_json() + "\n"));
    Ok(files)
}

struct Common {
    model_comment: String,
    top_name: String,
    n_in: usize,
    n_out: usize,
}

impl Slots for Common {
    fn slots(&self) -> Vec<(&'static str, String)> {
        vec![
            ("model_comment", self.model_comment.clone()),
            ("top_name", self.top_name.clone()),
            ("n_in", self.n_in.to_string()),
            ("n_out", self.n_out.to_string()),
        ]
    }
}

struct CommentOnly(String);

impl Slots for CommentOnly {
    fn slots(&self) -> Vec<(&'static str, String)> {
        vec![("model_comment", self.0.clone())]
    }
}

struct TypesSlots {
    model_comment: String,
    typedefs: String,
    input_type: String,
    output_type: String,
}

impl Slots for TypesSlots {
    fn slots(&self) -> Vec<(&'static str, String)> {
        vec![
            ("model_comment", self.model_comment.clone()),
            ("typedefs", self.typedefs.clone()),
            ("input_type", self.input_type.clone()),
            ("output_type", self.output_type.clone()),
        ]
    }
}

struct WeightsSlots {
    model_comment: String,
    constants: String,
}

impl Slots for WeightsSlots {
    fn slots(&self) -> Vec<(&'static str, String)> {
        vec![
            ("model_comment", self.model_comment.clone()),
            ("constants", self.constants.clone()),
        ]
    }
}

struct TopSlots<'a> {
    common: &'a Common,
    configs: String,
    functions: String,
    buffers: String,
    body: String,
}

impl Slots for TopSlots<'_> {
    fn slots(&self) -> Vec<(&'static str, String)> {
        let mut s = self.common.slots();
        s.push(("configs", self.configs.clone()));
        s.push(("functions", self.functions.clone()));
        s.push(("buffers", self.buffers.clone()));
        s.push(("body", self.body.clone()));
        s
    }
}

struct TclSlots<'a> {
    common: &'a Common,
    part: String,
    clock_ns: String,
}

impl Slots for TclSlots<'_> {
    fn slots(&self) -> Vec<(&'static str, String)> {
        vec![
            ("model_comment", self.common.model_comment.clone()),
            ("top_name", self.common.top_name.clone()),
            ("part", self.part.clone()),
            ("clock_ns", self.clock_ns.clone()),
        ]
    }
}

struct ReadmeSlots<'a> {
    common: &'a Common,
    input_type: String,
    output_type: String,
    layer_rows: String,
    part: String,
    clock_ns: String,
}

impl Slots for ReadmeSlots<'_> {
    fn slots(&self) -> Vec<(&'static str, String)> {
        let mut s = self.common.slots();
        s.extend([
            ("input_type", self.input_type.clone()),
            ("output_type", self.output_type.clone()),
            ("layer_rows", self.layer_rows.clone()),
            ("part", self.part.clone()),
            ("clock_ns", self.clock_ns.clone()),
        ]);
        s
    }
}
