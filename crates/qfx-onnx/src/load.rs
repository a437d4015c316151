//! Reading an ONNX file: the protobuf message, its opset, and its tensors (inline or stored as
//! external data beside the file).

use std::collections::HashMap;
use std::path::{Component, Path, PathBuf};

use prost::Message;

use crate::error::OnnxError;
use crate::proto::{tensor_proto, ModelProto, TensorProto};

/// The oldest default-domain opset read (what `torch.onnx.export` and `tf2onnx` write today).
pub const MIN_OPSET: i64 = 13;

/// A decoded model and where it came from.
pub(crate) struct Source {
    /// The message.
    pub model: ModelProto,
    /// The default domain's opset.
    pub opset: i64,
    /// The file's directory (external data is read from there), if read from a file.
    pub dir: Option<PathBuf>,
    /// How errors name the file.
    pub name: String,
}

/// Decodes `bytes` (the file `name`, in `dir`) and checks it is an ONNX model of a supported
/// opset.
pub(crate) fn decode(bytes: &[u8], name: &str, dir: Option<PathBuf>) -> Result<Source, OnnxError> {
    let not_onnx = |why: String| OnnxError::File(format!("{name}: not an ONNX model: {why}"));
    if bytes.is_empty() {
        return Err(not_onnx("the file is empty".into()));
    }
    let model = ModelProto::decode(bytes).map_err(|e| {
        not_onnx(format!(
            "the protobuf message does not decode ({e}); the file is truncated, damaged or \
             of another format"
        ))
    })?;
    // Many byte strings happen to decode as some protobuf message: an ONNX model has an IR
    // version and a graph with nodes.
    if model.ir_version.is_none() || model.graph.as_ref().is_none_or(|g| g.node.is_empty()) {
        return Err(not_onnx(
            "it has no IR version or no graph of nodes (another protobuf format, or a \
             truncated file)"
                .into(),
        ));
    }
    let opset = model
        .opset_import
        .iter()
        .find(|o| matches!(o.domain.as_deref(), None | Some("") | Some("ai.onnx")))
        .and_then(|o| o.version)
        .ok_or_else(|| not_onnx("it imports no opset of the default (ai.onnx) domain".into()))?;
    if opset < MIN_OPSET {
        return Err(OnnxError::Graph(format!(
            "{name}: opset {opset} is older than qfx reads (opset {MIN_OPSET} and later); export \
             it again with a newer opset (`torch.onnx.export(..., opset_version=17)`, `tf2onnx \
             --opset 17`)"
        )));
    }
    Ok(Source {
        model,
        opset,
        dir,
        name: name.to_string(),
    })
}

/// Reads the file at `path` and decodes it ([`decode`]).
pub(crate) fn read(path: &Path) -> Result<Source, OnnxError> {
    let bytes = qfx_fs::read_regular(path)
        .map_err(|e| OnnxError::File(format!("cannot read {}: {e}", path.display())))?;
    let dir = path.parent().map(|d| {
        if d.as_os_str().is_empty() {
            PathBuf::from(".")
        } else {
            d.to_path_buf()
        }
    });
    decode(&bytes, &path.display().to_string(), dir)
}

/// A constant tensor's values.
#[derive(Clone, Debug, PartialEq)]
pub(crate) enum Data {
    /// Floating point (float, double, half are read as f32).
    F32(Vec<f32>),
    /// Integers and booleans (shapes, indices, flags).
    I64(Vec<i64>),
}

/// A constant tensor.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct Const {
    /// Its dimensions.
    pub dims: Vec<usize>,
    /// Its values, row-major.
    pub data: Data,
}

impl Const {
    /// Number of values.
    pub fn len(&self) -> usize {
        match &self.data {
            Data::F32(v) => v.len(),
            Data::I64(v) => v.len(),
        }
    }

    /// The values as f32 (integers converted).
    pub fn f32s(&self) -> Vec<f32> {
        match &self.data {
            Data::F32(v) => v.clone(),
            Data::I64(v) => v.iter().map(|&x| x as f32).collect(),
        }
    }

    /// The values as integers, if they are integers.
    pub fn i64s(&self) -> Option<&[i64]> {
        match &self.data {
            Data::I64(v) => Some(v),
            Data::F32(_) => None,
        }
    }
}

/// Reads tensors, caching the external-data files they point into.
pub(crate) struct TensorReader<'a> {
    source: &'a Source,
    files: HashMap<PathBuf, Vec<u8>>,
}

impl<'a> TensorReader<'a> {
    pub fn new(source: &'a Source) -> TensorReader<'a> {
        TensorReader {
            source,
            files: HashMap::new(),
        }
    }

    /// The values of `t` (named `what` in errors).
    pub fn read(&mut self, t: &TensorProto, what: &str) -> Result<Const, String> {
        let dims = t
            .dims
            .iter()
            .map(|&d| usize::try_from(d).map_err(|_| format!("{what} has a dimension {d}")))
            .collect::<Result<Vec<usize>, String>>()?;
        let n = dims
            .iter()
            .try_fold(1usize, |a, &d| a.checked_mul(d))
            .filter(|&n| n <= 1 << 32)
            .ok_or_else(|| format!("{what} of shape {dims:?} is too large"))?;
        use tensor_proto::DataType as T;
        let code = t.data_type.unwrap_or(0);
        let ty = T::try_from(code).unwrap_or(T::Undefined);
        let external = t.data_location == Some(tensor_proto::DATA_LOCATION_EXTERNAL);
        let raw: Option<Vec<u8>> = if external {
            Some(self.external(t, what)?)
        } else {
            t.raw_data.clone()
        };
        let size = match ty {
            T::Float | T::Int32 => 4,
            T::Double | T::Int64 => 8,
            T::Float16 | T::Bfloat16 => 2,
            T::Bool | T::Int8 | T::Uint8 => 1,
            _ => {
                return Err(format!(
                    "{what} holds {} values, which qfx does not read (float, double, half, \
                     integers and booleans are read)",
                    T::try_from(code)
                        .map_or(format!("data type {code}"), |t| t.as_str_name().to_string())
                ))
            }
        };
        let data = match raw {
            Some(bytes) => {
                if bytes.len() != n * size {
                    return Err(format!(
                        "{what} has {} bytes of data for {n} values of shape {dims:?}",
                        bytes.len()
                    ));
                }
                from_le_bytes(ty, &bytes)
            }
            None => {
                let data = match ty {
                    T::Float => Data::F32(t.float_data.clone()),
                    T::Double => Data::F32(t.double_data.iter().map(|&v| v as f32).collect()),
                    T::Int64 => Data::I64(t.int64_data.clone()),
                    // int32_data also carries the small integer types and the bit patterns of
                    // half-precision values.
                    T::Int32 | T::Bool | T::Int8 | T::Uint8 => {
                        Data::I64(t.int32_data.iter().map(|&v| v as i64).collect())
                    }
                    T::Float16 => Data::F32(
                        t.int32_data
                            .iter()
                            .map(|&v| half_to_f32(v as u16))
                            .collect(),
                    ),
                    _ => Data::F32(
                        t.int32_data
                            .iter()
                            .map(|&v| f32::from_bits((v as u32) << 16))
                            .collect(),
                    ),
                };
                let c = Const {
                    dims: dims.clone(),
                    data,
                };
                if c.len() != n {
                    return Err(format!("{what} has {} values for shape {dims:?}", c.len()));
                }
                c.data
            }
        };
        Ok(Const { dims, data })
    }

    /// The bytes of a tensor stored as external data: `location` (relative to the model's
    /// directory), `offset` and `length`.
    fn external(&mut self, t: &TensorProto, what: &str) -> Result<Vec<u8>, String> {
        let entry = |key: &str| {
            t.external_data
                .iter()
                .find(|e| e.key.as_deref() == Some(key))
                .and_then(|e| e.value.clone())
        };
        let location = entry("location")
            .ok_or_else(|| format!("{what} is stored as external data but names no location"))?;
        let number = |key: &str| -> Result<Option<usize>, String> {
            entry(key)
                .map(|v| {
                    v.parse::<usize>()
                        .map_err(|_| format!("{what}: external data {key} `{v}` is not a number"))
                })
                .transpose()
        };
        let (offset, length) = (number("offset")?.unwrap_or(0), number("length")?);
        let relative = Path::new(&location);
        if relative.is_absolute()
            || relative
                .components()
                .any(|c| !matches!(c, Component::Normal(_) | Component::CurDir))
        {
            return Err(format!(
                "{what}: external data location `{location}` must be a path inside the model's \
                 directory (relative, without `..`)"
            ));
        }
        let dir = self.source.dir.as_ref().ok_or_else(|| {
            format!(
                "{what} is stored as external data (`{location}`), which is read from beside \
                 the model file: import the file, not its bytes"
            )
        })?;
        let path = dir.join(relative);
        if !self.files.contains_key(&path) {
            let bytes = qfx_fs::read_regular(&path).map_err(|e| {
                format!(
                    "{what}: cannot read its external data {}: {e}",
                    path.display()
                )
            })?;
            self.files.insert(path.clone(), bytes);
        }
        let bytes = &self.files[&path];
        let end = match length {
            Some(l) => offset.checked_add(l),
            None => Some(bytes.len()),
        };
        match end {
            Some(end) if offset <= end && end <= bytes.len() => Ok(bytes[offset..end].to_vec()),
            _ => Err(format!(
                "{what}: external data {} has {} bytes, fewer than offset {offset} + length {} \
                 (a truncated data file?)",
                path.display(),
                bytes.len(),
                length.map_or("(rest)".to_string(), |l| l.to_string())
            )),
        }
    }
}

/// Values of type `ty` from little-endian bytes (the length was checked).
fn from_le_bytes(ty: tensor_proto::DataType, bytes: &[u8]) -> Data {
    use tensor_proto::DataType as T;
    fn chunks<const N: usize>(bytes: &[u8]) -> impl Iterator<Item = [u8; N]> + '_ {
        bytes
            .chunks_exact(N)
            .map(|c| c.try_into().expect("chunks of N bytes"))
    }
    match ty {
        T::Float => Data::F32(chunks::<4>(bytes).map(f32::from_le_bytes).collect()),
        T::Double => Data::F32(
            chunks::<8>(bytes)
                .map(|b| f64::from_le_bytes(b) as f32)
                .collect(),
        ),
        T::Float16 => Data::F32(
            chunks::<2>(bytes)
                .map(|b| half_to_f32(u16::from_le_bytes(b)))
                .collect(),
        ),
        T::Bfloat16 => Data::F32(
            chunks::<2>(bytes)
                .map(|b| f32::from_bits((u16::from_le_bytes(b) as u32) << 16))
                .collect(),
        ),
        T::Int64 => Data::I64(chunks::<8>(bytes).map(i64::from_le_bytes).collect()),
        T::Int32 => Data::I64(
            chunks::<4>(bytes)
                .map(|b| i32::from_le_bytes(b) as i64)
                .collect(),
        ),
        T::Int8 => Data::I64(bytes.iter().map(|&b| b as i8 as i64).collect()),
        _ => Data::I64(bytes.iter().map(|&b| b as i64).collect()),
    }
}

/// An IEEE half-precision value, exactly.
fn half_to_f32(h: u16) -> f32 {
    let sign = if h & 0x8000 != 0 { -1.0 } else { 1.0 };
    let exp = ((h >> 10) & 0x1f) as i32;
    let frac = (h & 0x3ff) as f32;
    sign * match exp {
        0 => frac * 2f32.powi(-24),
        31 if frac == 0.0 => f32::INFINITY,
        31 => f32::NAN,
        e => (1.0 + frac / 1024.0) * 2f32.powi(e - 15),
    }
}

#[cfg(test)]
mod tests {
    use super::{decode, half_to_f32, TensorReader};
    use crate::proto::TensorProto;

    #[test]
    fn tensors_of_types_not_read_are_named() {
        // A minimal model (IR version, one node, opset 17) to read tensors against.
        let model = [8, 8, 58, 6, 10, 4, 34, 2, 111, 112, 66, 2, 16, 17];
        let source = decode(&model, "m.onnx", None).expect("a model");
        let mut reader = TensorReader::new(&source);
        for (code, name) in [(17, "data type 17"), (8, "STRING"), (14, "COMPLEX64")] {
            let t = TensorProto {
                dims: vec![1],
                data_type: Some(code),
                raw_data: Some(vec![0]),
                ..Default::default()
            };
            let err = reader.read(&t, "`w`").unwrap_err();
            assert!(err.contains(&format!("`w` holds {name} values")), "{err}");
        }
    }

    #[test]
    fn half_precision_values_convert_exactly() {
        for (bits, want) in [
            (0x3c00u16, 1.0f32),
            (0xc000, -2.0),
            (0x3555, 0.333_251_95),
            (0x0001, 5.960_464_5e-8),
            (0x7bff, 65504.0),
        ] {
            assert_eq!(half_to_f32(bits), want, "{bits:#06x}");
        }
        assert!(half_to_f32(0x7c00).is_infinite() && half_to_f32(0x7e00).is_nan());
    }
}
