//! Checkpoint tensors in the safetensors format (f32 tensors only), read and written with the
//! format's reference implementation (the `safetensors` crate), so checkpoints are readable by
//! every other tool (PyTorch, numpy, burn) without a burn-specific container.
//!
//! Layout: an 8-byte little-endian header length `n`, `n` bytes of JSON mapping each tensor name
//! to `{"dtype", "shape", "data_offsets": [begin, end]}` (plus an optional `__metadata__` map of
//! strings), then the raw little-endian data, tensors sorted by name. The reader accepts exactly
//! the files the format allows: tensors that tile the data without gaps or overlaps, and no
//! bytes after the last one; anything else (a truncated or corrupted file) is an error naming
//! the file and the problem, never a panic. Files written before the switch to the crate (the
//! same layout, the JSON keys of a tensor in another order) read unchanged.

use std::borrow::Cow;
use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::Path;

use safetensors::tensor::{SafeTensorError, SafeTensors, View};
use safetensors::Dtype;

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

impl View for &NamedTensor {
    fn dtype(&self) -> Dtype {
        Dtype::F32
    }

    fn shape(&self) -> &[usize] {
        &self.shape
    }

    fn data(&self) -> Cow<'_, [u8]> {
        // Little-endian whatever the host's byte order, as the format requires.
        Cow::Owned(self.data.iter().flat_map(|v| v.to_le_bytes()).collect())
    }

    fn data_len(&self) -> usize {
        self.data.len() * size_of::<f32>()
    }
}

/// The bytes of a safetensors file holding `tensors` (sorted by name) and `metadata` (no
/// `__metadata__` entry when empty). Two tensors with one name are an error.
pub fn to_bytes(
    tensors: &[NamedTensor],
    metadata: &BTreeMap<String, String>,
) -> Result<Vec<u8>, TrainError> {
    let mut names = HashSet::new();
    if let Some(t) = tensors.iter().find(|t| !names.insert(t.name.as_str())) {
        return Err(TrainError::Checkpoint(format!(
            "two tensors are named `{}`; a checkpoint needs unique names",
            t.name
        )));
    }
    let info: Option<HashMap<String, String>> =
        (!metadata.is_empty()).then(|| metadata.clone().into_iter().collect());
    safetensors::serialize(tensors.iter().map(|t| (t.name.as_str(), t)), info)
        .map_err(|e| TrainError::Checkpoint(format!("cannot serialize the tensors: {e}")))
}

/// Parses a safetensors file's bytes; `what` names the file in errors. Tensors come back sorted
/// by name.
pub fn from_bytes(
    bytes: &[u8],
    what: &Path,
) -> Result<(Vec<NamedTensor>, BTreeMap<String, String>), TrainError> {
    let bad = |m: String| TrainError::Checkpoint(format!("{}: {m}", what.display()));
    let (header_len, header) =
        SafeTensors::read_metadata(bytes).map_err(|e| bad(explain(&e, bytes)))?;
    let data = &bytes[8 + header_len..];
    let metadata: BTreeMap<String, String> = header
        .metadata()
        .clone()
        .unwrap_or_default()
        .into_iter()
        .collect();
    let mut tensors = Vec::new();
    for (name, info) in header.tensors() {
        if info.dtype != Dtype::F32 {
            return Err(bad(format!(
                "tensor `{name}` has dtype {:?}, only F32 is supported",
                info.dtype
            )));
        }
        // `read_metadata` has checked that the offsets tile the data exactly.
        let (begin, end) = info.data_offsets;
        let values = data[begin..end]
            .chunks_exact(4)
            .map(|b| f32::from_le_bytes(b.try_into().expect("4 bytes")))
            .collect();
        tensors.push(NamedTensor {
            name,
            shape: info.shape.clone(),
            data: values,
        });
    }
    tensors.sort_by(|a, b| a.name.cmp(&b.name));
    Ok((tensors, metadata))
}

/// What a reader error means for a checkpoint file, in words.
fn explain(e: &SafeTensorError, bytes: &[u8]) -> String {
    use SafeTensorError as E;
    let declared = bytes
        .get(..8)
        .map(|b| u64::from_le_bytes(b.try_into().expect("8 bytes")));
    match e {
        E::HeaderTooSmall => format!(
            "{} bytes is too short for a safetensors file (truncated?)",
            bytes.len()
        ),
        E::InvalidHeaderLength | E::HeaderTooLarge => format!(
            "header length {} runs past the end of the file ({} bytes) or exceeds the format's \
             limit: not a safetensors file, or truncated",
            declared.unwrap_or(0),
            bytes.len()
        ),
        E::InvalidHeader(e) => format!("header is not UTF-8 text: {e}"),
        E::InvalidHeaderDeserialization(e) => {
            format!("header is not a JSON object of tensor entries: {e}")
        }
        E::InvalidOffset(name) => format!(
            "tensor `{name}` does not start where the previous tensor ends (overlapping \
             tensors, or a gap between them): corrupt file"
        ),
        E::TensorInvalidInfo => {
            "a tensor's byte range does not match its shape and dtype: corrupt file".to_string()
        }
        E::ValidationOverflow => "a tensor's shape is too large: corrupt file".to_string(),
        E::MetadataIncompleteBuffer => format!(
            "the tensors' data does not fill the file's {} data bytes exactly (truncated, or \
             bytes after the last tensor)",
            declared
                .and_then(|n| (bytes.len() as u64).checked_sub(8 + n))
                .unwrap_or(0)
        ),
        other => format!("not a valid safetensors file: {other}"),
    }
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
        let bytes = to_bytes(&sample(), &meta).unwrap();
        let (mut back, m) = from_bytes(&bytes, Path::new("x")).unwrap();
        back.sort_by(|a, b| b.name.cmp(&a.name));
        assert_eq!(back, sample());
        assert_eq!(m, meta);
        // The data starts 8-byte aligned.
        let n = u64::from_le_bytes(bytes[..8].try_into().unwrap());
        assert_eq!((8 + n) % 8, 0);
    }

    #[test]
    fn writing_is_deterministic_and_refuses_duplicate_names() {
        let none = BTreeMap::new();
        let mut reversed = sample();
        reversed.reverse();
        assert_eq!(
            to_bytes(&sample(), &none).unwrap(),
            to_bytes(&reversed, &none).unwrap()
        );
        let mut twice = sample();
        twice.push(sample()[0].clone());
        let err = to_bytes(&twice, &none).unwrap_err();
        assert!(
            err.to_string().contains("two tensors are named `b`"),
            "{err}"
        );
    }

    #[test]
    fn truncation_and_garbage_are_errors() {
        let bytes = to_bytes(&sample(), &BTreeMap::new()).unwrap();
        for (cut, want) in [
            (bytes.len() - 1, "truncated"),
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
