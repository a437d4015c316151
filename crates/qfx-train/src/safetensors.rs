//! A small reader and writer for the safetensors format (f32 tensors only), so checkpoints are
//! readable by every other tool (PyTorch, numpy, burn) without a burn-specific container.
//!
//! Layout: an 8-byte little-endian header length `n`, `n` bytes of JSON mapping each tensor name
//! to `{"dtype", "shape", "data_offsets": [begin, end]}` (plus an optional `__metadata__` map of
//! strings), then the raw little-endian data. Every offset and size is checked on read, so a
//! truncated or corrupted file is an error naming the problem, never a panic.

use std::collections::BTreeMap;
use std::path::Path;

use serde_json::{json, Map, Value};

use crate::error::TrainError;

/// One named f32 tensor.
#[derive(Clone, Debug, PartialEq)]
pub struct NamedTensor {
    /// Dotted module path, e.g. `convs.0.weight`.
    pub name: String,
    /// Dimensions.
    pub shape: Vec<usize>,
    /// Row-major values.
    pub data: Vec<f32>,
}

/// The bytes of a safetensors file holding `tensors` (sorted by name) and `metadata`.
pub fn to_bytes(tensors: &[NamedTensor], metadata: &BTreeMap<String, String>) -> Vec<u8> {
    let mut sorted: Vec<&NamedTensor> = tensors.iter().collect();
    sorted.sort_by(|a, b| a.name.cmp(&b.name));
    let mut header = Map::new();
    if !metadata.is_empty() {
        header.insert("__metadata__".into(), json!(metadata));
    }
    let mut offset = 0usize;
    for t in &sorted {
        let end = offset + t.data.len() * 4;
        header.insert(
            t.name.clone(),
            json!({"dtype": "F32", "shape": t.shape, "data_offsets": [offset, end]}),
        );
        offset = end;
    }
    let mut head = Value::Object(header).to_string().into_bytes();
    // Pad the header with spaces so the data starts 8-byte aligned, as the format recommends.
    head.resize(head.len().div_ceil(8) * 8, b' ');
    let mut out = Vec::with_capacity(8 + head.len() + offset);
    out.extend_from_slice(&(head.len() as u64).to_le_bytes());
    out.extend_from_slice(&head);
    for t in &sorted {
        for v in &t.data {
            out.extend_from_slice(&v.to_le_bytes());
        }
    }
    out
}

/// Parses a safetensors file's bytes; `what` names the file in errors.
pub fn from_bytes(
    bytes: &[u8],
    what: &Path,
) -> Result<(Vec<NamedTensor>, BTreeMap<String, String>), TrainError> {
    let bad = |m: String| TrainError::Checkpoint(format!("{}: {m}", what.display()));
    if bytes.len() < 8 {
        return Err(bad(format!(
            "{} bytes is too short for a safetensors file (truncated?)",
            bytes.len()
        )));
    }
    let n = u64::from_le_bytes(bytes[..8].try_into().expect("8 bytes"));
    let data_start = usize::try_from(n)
        .ok()
        .and_then(|n| n.checked_add(8))
        .filter(|&s| s <= bytes.len())
        .ok_or_else(|| {
            bad(format!(
                "header length {n} runs past the end of the file ({} bytes): not a safetensors \
                 file, or truncated",
                bytes.len()
            ))
        })?;
    let header: Map<String, Value> = serde_json::from_slice(&bytes[8..data_start])
        .map_err(|e| bad(format!("header is not a JSON object: {e}")))?;
    let data = &bytes[data_start..];
    let mut metadata = BTreeMap::new();
    let mut tensors = Vec::new();
    for (name, entry) in header {
        if name == "__metadata__" {
            let map = entry
                .as_object()
                .ok_or_else(|| bad("__metadata__ is not an object".into()))?;
            for (k, v) in map {
                let v = v
                    .as_str()
                    .ok_or_else(|| bad(format!("metadata `{k}` is not a string")))?;
                metadata.insert(k.clone(), v.to_string());
            }
            continue;
        }
        let field = |key: &str| {
            entry
                .get(key)
                .ok_or_else(|| bad(format!("tensor `{name}` has no `{key}`")))
        };
        if field("dtype")?.as_str() != Some("F32") {
            return Err(bad(format!(
                "tensor `{name}` has dtype {}, only F32 is supported",
                field("dtype")?
            )));
        }
        let usizes = |v: &Value, key: &str| -> Result<Vec<usize>, TrainError> {
            v.as_array()
                .and_then(|a| {
                    a.iter()
                        .map(|x| x.as_u64().and_then(|x| usize::try_from(x).ok()))
                        .collect::<Option<Vec<usize>>>()
                })
                .ok_or_else(|| bad(format!("tensor `{name}`: `{key}` is not a list of sizes")))
        };
        let shape = usizes(field("shape")?, "shape")?;
        let offsets = usizes(field("data_offsets")?, "data_offsets")?;
        let [begin, end] = offsets[..] else {
            return Err(bad(format!("tensor `{name}`: data_offsets needs 2 values")));
        };
        let elements = shape
            .iter()
            .try_fold(1usize, |a, &d| a.checked_mul(d))
            .ok_or_else(|| bad(format!("tensor `{name}`: shape {shape:?} is too large")))?;
        if begin > end || end > data.len() || end - begin != elements.saturating_mul(4) {
            return Err(bad(format!(
                "tensor `{name}`: bytes {begin}..{end} do not hold shape {shape:?} within {} \
                 data bytes (truncated or corrupt)",
                data.len()
            )));
        }
        let values = data[begin..end]
            .chunks_exact(4)
            .map(|b| f32::from_le_bytes(b.try_into().expect("4 bytes")))
            .collect();
        tensors.push(NamedTensor {
            name,
            shape,
            data: values,
        });
    }
    Ok((tensors, metadata))
}

/// Writes `bytes` to `path` atomically: a temporary file in the same directory, flushed to disk,
/// then renamed over `path`, so a crash leaves either the old file or the new one.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), TrainError> {
    qfx_ir::write_atomic(path, bytes)
        .map_err(|e| TrainError::Io(format!("writing {}: {e}", path.display())))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Vec<NamedTensor> {
        vec![
            NamedTensor {
                name: "b".into(),
                shape: vec![2, 2],
                data: vec![1.0, -2.5, 3.25, f32::MIN_POSITIVE],
            },
            NamedTensor {
                name: "a".into(),
                shape: vec![3],
                data: vec![0.0, 7.0, -0.0],
            },
        ]
    }

    #[test]
    fn round_trips_tensors_and_metadata() {
        let meta = BTreeMap::from([("epoch".to_string(), "3".to_string())]);
        let bytes = to_bytes(&sample(), &meta);
        let (mut back, m) = from_bytes(&bytes, Path::new("x")).unwrap();
        back.sort_by(|a, b| b.name.cmp(&a.name));
        assert_eq!(back, sample());
        assert_eq!(m, meta);
        // The data starts 8-byte aligned.
        let n = u64::from_le_bytes(bytes[..8].try_into().unwrap());
        assert_eq!((8 + n) % 8, 0);
    }

    #[test]
    fn truncation_and_garbage_are_errors() {
        let bytes = to_bytes(&sample(), &BTreeMap::new());
        for (cut, want) in [
            (bytes.len() - 1, "truncated or corrupt"),
            (20, "runs past the end"),
            (3, "too short"),
        ] {
            let err = from_bytes(&bytes[..cut], Path::new("ckpt")).unwrap_err();
            assert!(err.to_string().contains(want), "{cut}: {err}");
        }
        let mut wrong = bytes.clone();
        wrong[8] = b'[';
        let err = from_bytes(&wrong, Path::new("ckpt")).unwrap_err();
        assert!(err.to_string().contains("not a JSON object"), "{err}");
    }
}
