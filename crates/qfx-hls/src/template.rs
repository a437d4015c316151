//! Templates are real C++/Tcl/Markdown files under `templates/` with `{{slot}}` markers, filled
//! from typed structs. Every slot a template names must be filled and every value given must be
//! used, so a renamed slot is an error, not a silently empty file.

use crate::{ErrorKind, HlsError};

/// A template file, embedded at build time.
pub struct Template {
    /// Path relative to `templates/` (and to the generated project).
    pub path: &'static str,
    /// The text.
    pub text: &'static str,
}

/// Values for a template's slots.
pub trait Slots {
    /// `(slot name, value)` pairs.
    fn slots(&self) -> Vec<(&'static str, String)>;
}

impl Template {
    /// Fills every `{{name}}` with its value.
    pub fn render(&self, values: &dyn Slots) -> Result<String, HlsError> {
        render(self.path, self.text, &values.slots())
    }
}

fn render(name: &str, text: &str, slots: &[(&'static str, String)]) -> Result<String, HlsError> {
    let err = |m: String| HlsError::new(ErrorKind::Template, format!("template {name}: {m}"));
    let mut used = vec![false; slots.len()];
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(start) = rest.find("{{") {
        out.push_str(&rest[..start]);
        let after = &rest[start + 2..];
        let end = after
            .find("}}")
            .ok_or_else(|| err("unterminated {{".to_string()))?;
        let key = &after[..end];
        let i = slots
            .iter()
            .position(|(k, _)| *k == key)
            .ok_or_else(|| err(format!("no value for slot `{key}`")))?;
        used[i] = true;
        out.push_str(&slots[i].1);
        rest = &after[end + 2..];
    }
    out.push_str(rest);
    if let Some(i) = used.iter().position(|u| !u) {
        return Err(err(format!("slot `{}` is not in the template", slots[i].0)));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[track_caller]
    fn check(text: &str, slots: &[(&'static str, &str)], want: Result<&str, &str>) {
        let slots: Vec<_> = slots.iter().map(|(k, v)| (*k, v.to_string())).collect();
        match (render("t", text, &slots), want) {
            (Ok(got), Ok(w)) => assert_eq!(got, w),
            (Err(e), Err(w)) => assert!(e.message.contains(w), "{e}"),
            (got, w) => panic!("{text:?}: got {got:?}, want {w:?}"),
        }
    }

    #[test]
    fn slots_are_filled_exactly() {
        check("a {{x}} b {{x}}", &[("x", "1")], Ok("a 1 b 1"));
        check("{{x}}{{y}}", &[("x", "{{y}}"), ("y", "2")], Ok("{{y}}2"));
        check("a {{x}}", &[], Err("no value for slot `x`"));
        check("a", &[("x", "1")], Err("slot `x` is not in the template"));
        check("a {{x", &[("x", "1")], Err("unterminated"));
    }
}
