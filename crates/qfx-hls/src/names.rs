//! Everything that comes from user input (model and layer names) is turned into safe text here,
//! once: C++ identifiers, and comment text that can neither end a comment nor start a line.

/// Longest sanitized name part kept in an identifier.
const MAX_NAME: usize = 40;

/// The part of `raw` usable in an identifier: ASCII letters and digits, every other run of
/// characters one `_`, no leading or trailing `_` (so never `__` once prefixed), truncated.
pub fn ident_part(raw: &str) -> String {
    let mut out = String::new();
    let mut pending_sep = false;
    for c in raw.chars() {
        if c.is_ascii_alphanumeric() {
            let sep = pending_sep && !out.is_empty();
            if out.len() + sep as usize >= MAX_NAME {
                break;
            }
            if sep {
                out.push('_');
            }
            pending_sep = false;
            out.push(c);
        } else {
            pending_sep = true;
        }
    }
    out
}

/// The identifier of layer `index`: `l<index>_<name>` (or `l<index>`). The index makes it
/// unique; the `l<digits>_` prefix makes it neither a keyword nor a reserved name.
pub fn layer_ident(index: usize, raw: &str) -> String {
    let part = ident_part(raw);
    if part.is_empty() {
        format!("l{index}")
    } else {
        format!("l{index}_{part}")
    }
}

/// The top function's name: `qfx_<name>` (or `qfx_model`).
pub fn top_ident(raw: &str) -> String {
    let part = ident_part(raw);
    if part.is_empty() {
        "qfx_model".to_string()
    } else {
        format!("qfx_{part}")
    }
}

/// `raw` as text safe inside a `//` C++ comment, a `#` Tcl comment and Markdown: letters,
/// digits, space and `-_.,:=+()@!~^` stay, every other byte is percent-encoded (`%2F`).
/// The result cannot end a comment (`*/`), continue it to the next line (`\`), start a line,
/// form a trigraph, or substitute anything in Tcl (`[`, `$`, `"`, `{`).
pub fn comment_text(raw: &str) -> String {
    let mut out = String::new();
    for b in raw.bytes() {
        let c = b as char;
        if c.is_ascii_alphanumeric() || " -_.,:=+()@!~^".contains(c) {
            out.push(c);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// The encoded name in backticks, for comments and Markdown.
pub fn quoted(raw: &str) -> String {
    format!("`{}`", comment_text(raw))
}

/// True for a string usable verbatim as a Vitis part name in Tcl.
pub fn is_safe_part(part: &str) -> bool {
    !part.is_empty()
        && part.len() <= 64
        && part
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_' || c == '.')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[track_caller]
    fn check_ident(raw: &str, want: &str) {
        assert_eq!(layer_ident(3, raw), want, "raw {raw:?}");
    }

    #[test]
    fn identifiers() {
        for (raw, want) in [
            ("conv1", "l3_conv1"),
            ("", "l3"),
            ("__init__", "l3_init"),
            ("a  b--c", "l3_a_b_c"),
            ("x\"); system(\"rm -rf /\"); //", "l3_x_system_rm_rf"),
            ("*/ #include <cstdlib>", "l3_include_cstdlib"),
            ("int", "l3_int"),
            ("日本", "l3"),
            ("é1", "l3_1"),
        ] {
            check_ident(raw, want);
        }
        assert_eq!(top_ident("$[exec ls]"), "qfx_exec_ls");
        assert_eq!(top_ident("   "), "qfx_model");
        assert_eq!(layer_ident(0, &"a".repeat(100)).len(), 3 + MAX_NAME);
    }

    #[test]
    fn comment_text_is_inert() {
        for raw in [
            "a|b", "*/ x", "a\nb", "a\\", "??/", "[exec]", "$x", "\"q\"", "{b}", "日", "/*",
        ] {
            let t = comment_text(raw);
            for bad in [
                "*/", "/*", "\n", "\r", "\\", "?", "[", "$", "\"", "{", "}", "//", "|", "`",
            ] {
                assert!(!t.contains(bad), "{raw:?} -> {t:?} contains {bad:?}");
            }
        }
        assert_eq!(comment_text("a/b c"), "a%2Fb c");
    }

    #[test]
    fn parts() {
        assert!(is_safe_part("xcu250-figd2104-2L-e"));
        for bad in ["", "a b", "x[exec]", "a;b", "$p"] {
            assert!(!is_safe_part(bad), "{bad:?}");
        }
    }
}
