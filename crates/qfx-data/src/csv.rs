//! Tables in CSV: a header row of column names, then one sample per line, fields separated by
//! commas (a field may be double-quoted, with `""` for a quote inside; a quoted field cannot
//! span lines). Blank lines are skipped. Every feature cell must be a finite number within the
//! range of `f32`; a class label must be a non-negative integer. Errors name the file, the line
//! and the column.

use std::path::Path;

use crate::files::read_bounded;
use crate::table::{Origin, Table, TableOptions, Targets, Task};
use crate::DataError;

/// Largest CSV file read: far above any table trained on here, far below a memory bomb.
const MAX_BYTES: u64 = 1 << 31;

/// The label column of a table whose options name none.
pub const DEFAULT_LABEL: &str = "label";

/// Splits one line into fields; `Err` says what is wrong with its quoting.
fn fields(line: &str) -> Result<Vec<String>, String> {
    let mut out = Vec::new();
    let mut chars = line.chars().peekable();
    loop {
        let mut field = String::new();
        // Leading spaces before a quote are allowed.
        while chars.peek() == Some(&' ') {
            chars.next();
        }
        if chars.peek() == Some(&'"') {
            chars.next();
            loop {
                match chars.next() {
                    Some('"') if chars.peek() == Some(&'"') => {
                        chars.next();
                        field.push('"');
                    }
                    Some('"') => break,
                    Some(c) => field.push(c),
                    None => {
                        return Err(format!(
                            "field {} has an opening quote and no closing one (a quoted field \
                             cannot span lines)",
                            out.len() + 1
                        ))
                    }
                }
            }
            while chars.peek() == Some(&' ') {
                chars.next();
            }
            match chars.next() {
                None => {
                    out.push(field);
                    return Ok(out);
                }
                Some(',') => out.push(field),
                Some(c) => {
                    return Err(format!(
                        "field {} has `{c}` after its closing quote",
                        out.len() + 1
                    ))
                }
            }
        } else {
            loop {
                match chars.next() {
                    None => {
                        out.push(field);
                        return Ok(out);
                    }
                    Some(',') => {
                        out.push(field);
                        break;
                    }
                    Some(c) => field.push(c),
                }
            }
        }
    }
}

/// A cell as a finite `f32`, or why not.
fn number(cell: &str) -> Result<f32, String> {
    let t = cell.trim();
    if t.is_empty() {
        return Err("the cell is empty".to_string());
    }
    let v: f64 = t.parse().map_err(|_| format!("`{t}` is not a number"))?;
    if !v.is_finite() {
        return Err(format!(
            "`{t}` is not a finite number (NaN and infinities cannot be trained on)"
        ));
    }
    let f = v as f32;
    if !f.is_finite() {
        return Err(format!("`{t}` is beyond the range of f32"));
    }
    Ok(f)
}

/// A cell as a class label, or why not.
fn label(cell: &str) -> Result<u32, String> {
    let t = cell.trim();
    if t.is_empty() {
        return Err("the label cell is empty".to_string());
    }
    t.parse::<u32>().map_err(|_| {
        format!("`{t}` is not a class label (labels are integers 0, 1, 2, … below 2^32)")
    })
}

/// Reads a CSV table: the label or target columns `options.label` (default `label`; none for an
/// autoencoder), the feature columns `options.features` (default: all others, in file order).
pub fn load_csv(path: &Path, options: &TableOptions) -> Result<Table, DataError> {
    let bytes = read_bounded(path, MAX_BYTES, |len| {
        format!("{len} bytes: larger than the 2 GiB a CSV table may have here")
    })?;
    let bad = |m: String| DataError::format(path, m);
    let text = match std::str::from_utf8(&bytes) {
        Ok(t) => t,
        Err(e) => {
            let line = bytes[..e.valid_up_to()]
                .iter()
                .filter(|&&b| b == b'\n')
                .count()
                + 1;
            return Err(bad(format!("line {line}: not UTF-8 text")));
        }
    };
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let mut lines = text
        .split('\n')
        .enumerate()
        .map(|(i, l)| (i + 1, l.strip_suffix('\r').unwrap_or(l)))
        .filter(|(_, l)| !l.trim().is_empty());
    let Some((header_line, header)) = lines.next() else {
        return Err(bad(
            "empty: a CSV table starts with a header row of column names".into(),
        ));
    };
    let columns: Vec<String> = fields(header)
        .map_err(|m| bad(format!("line {header_line} (the header): {m}")))?
        .into_iter()
        .map(|c| c.trim().to_string())
        .collect();
    for (i, c) in columns.iter().enumerate() {
        if c.is_empty() {
            return Err(bad(format!(
                "line {header_line} (the header): column {} has no name",
                i + 1
            )));
        }
        if let Some(j) = columns[..i].iter().position(|d| d == c) {
            return Err(bad(format!(
                "line {header_line} (the header): columns {} and {} are both named `{c}`",
                j + 1,
                i + 1
            )));
        }
    }
    let find = |name: &str, role: &str| {
        columns.iter().position(|c| c == name).ok_or_else(|| {
            bad(format!(
                "no {role} column `{name}`; the header has {}",
                columns
                    .iter()
                    .map(|c| format!("`{c}`"))
                    .collect::<Vec<_>>()
                    .join(", ")
            ))
        })
    };
    let label_names: Vec<String> = match (&options.task, options.label.is_empty()) {
        (Task::Autoencoder, true) => Vec::new(),
        (Task::Autoencoder, false) => {
            return Err(bad(
                "an autoencoder reconstructs its features: it has no label column (choose the \
                 feature columns with `features`)"
                    .into(),
            ))
        }
        (_, true) => vec![DEFAULT_LABEL.to_string()],
        (_, false) => options.label.clone(),
    };
    if options.task == Task::Classification && label_names.len() > 1 {
        return Err(bad(format!(
            "a classification table has one label column, not {} ({})",
            label_names.len(),
            label_names.join(", ")
        )));
    }
    let label_cols = label_names
        .iter()
        .map(|n| find(n, "label"))
        .collect::<Result<Vec<usize>, DataError>>()?;
    let feature_cols: Vec<usize> = match &options.features {
        Some(names) => {
            let mut cols = Vec::with_capacity(names.len());
            for n in names {
                let c = find(n, "feature")?;
                if label_cols.contains(&c) {
                    return Err(bad(format!("column `{n}` is both a feature and the label")));
                }
                if cols.contains(&c) {
                    return Err(bad(format!("feature column `{n}` is chosen twice")));
                }
                cols.push(c);
            }
            cols
        }
        None => (0..columns.len())
            .filter(|c| !label_cols.contains(c))
            .collect(),
    };
    if feature_cols.is_empty() {
        return Err(bad("no feature columns".into()));
    }
    let mut features = Vec::new();
    let mut classes = Vec::new();
    let mut values = Vec::new();
    let mut places = Vec::new();
    for (line, text) in lines {
        let cells = fields(text).map_err(|m| bad(format!("line {line}: {m}")))?;
        if cells.len() != columns.len() {
            return Err(bad(format!(
                "line {line}: {} fields, but the header has {} columns (a ragged row)",
                cells.len(),
                columns.len()
            )));
        }
        let at = |c: usize, m: String| bad(format!("line {line}, column `{}`: {m}", columns[c]));
        for &c in &feature_cols {
            features.push(number(&cells[c]).map_err(|m| at(c, m))?);
        }
        for &c in &label_cols {
            match options.task {
                Task::Classification => classes.push(label(&cells[c]).map_err(|m| at(c, m))?),
                _ => values.push(number(&cells[c]).map_err(|m| at(c, m))?),
            }
        }
        places.push(line);
    }
    if places.is_empty() {
        return Err(bad("no data rows after the header".into()));
    }
    let targets = match options.task {
        Task::Classification => Targets::Classes(classes),
        Task::Regression => Targets::Values {
            values,
            width: label_cols.len(),
        },
        Task::Autoencoder => Targets::None,
    };
    let shown = path.display().to_string();
    let table = Table {
        features,
        shape: vec![feature_cols.len()],
        targets,
        feature_names: feature_cols.iter().map(|&c| columns[c].clone()).collect(),
        origin: Origin {
            targets: match label_names.as_slice() {
                [] => shown.clone(),
                [one] => format!("{shown} (column `{one}`)"),
                many => format!("{shown} (columns {})", many.join(", ")),
            },
            features: shown,
            lines: true,
            places,
        },
    };
    table.check()?;
    Ok(table)
}

#[cfg(test)]
mod tests {
    use super::fields;

    #[test]
    fn fields_follow_the_quoting_rules() {
        let f = |s: &str| fields(s).unwrap();
        assert_eq!(f("a,b,,c"), ["a", "b", "", "c"]);
        assert_eq!(f(r#""a,b","say ""hi""",3"#), ["a,b", r#"say "hi""#, "3"]);
        assert_eq!(f(r#" "x" ,y"#), ["x", "y"]);
        assert_eq!(f(""), [""]);
        assert!(fields(r#""open,b"#).unwrap_err().contains("no closing"));
        assert!(fields(r#""a"b,c"#)
            .unwrap_err()
            .contains("after its closing quote"));
    }
}
