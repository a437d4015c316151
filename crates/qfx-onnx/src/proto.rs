//! The part of the ONNX file format that the importer reads, declared as `prost` messages.
//!
//! An ONNX file is a protobuf `ModelProto`. Rather than carry the official `onnx.proto` (or code
//! generated from it) in the repository, this module declares only the messages and fields the
//! importer reads, with the field numbers and types the format fixes; `prost` does the
//! decoding and skips every field not declared here (training data, metadata, functions,
//! fields added by newer IR versions). Names follow `onnx.proto`, so its documentation applies.
//! Why this rather than a registry crate: see the crate's README.

// The ONNX IR is proto2: singular fields are optional (`prost` adds accessors such as
// `NodeProto::op_type()` that give the default when absent); repeated numbers may be written
// packed or not, and `prost` reads both.

/// A whole model: IR version, opsets, the graph.
#[derive(Clone, PartialEq, prost::Message)]
pub struct ModelProto {
    #[prost(int64, optional, tag = "1")]
    pub ir_version: Option<i64>,
    #[prost(string, optional, tag = "2")]
    pub producer_name: Option<String>,
    #[prost(string, optional, tag = "3")]
    pub producer_version: Option<String>,
    #[prost(message, optional, tag = "7")]
    pub graph: Option<GraphProto>,
    #[prost(message, repeated, tag = "8")]
    pub opset_import: Vec<OperatorSetIdProto>,
}

/// An operator set the model uses: a domain (empty: the default `ai.onnx`) and its version.
#[derive(Clone, PartialEq, prost::Message)]
pub struct OperatorSetIdProto {
    #[prost(string, optional, tag = "1")]
    pub domain: Option<String>,
    #[prost(int64, optional, tag = "2")]
    pub version: Option<i64>,
}

/// The computation: nodes in topological order, constant tensors, inputs and outputs.
#[derive(Clone, PartialEq, prost::Message)]
pub struct GraphProto {
    #[prost(message, repeated, tag = "1")]
    pub node: Vec<NodeProto>,
    #[prost(string, optional, tag = "2")]
    pub name: Option<String>,
    #[prost(message, repeated, tag = "5")]
    pub initializer: Vec<TensorProto>,
    #[prost(message, repeated, tag = "11")]
    pub input: Vec<ValueInfoProto>,
    #[prost(message, repeated, tag = "12")]
    pub output: Vec<ValueInfoProto>,
    /// Only counted: a model with sparse initializers is refused.
    #[prost(message, repeated, tag = "15")]
    pub sparse_initializer: Vec<SparseTensorProto>,
}

/// A sparse tensor; its contents are not read.
#[derive(Clone, PartialEq, prost::Message)]
pub struct SparseTensorProto {}

/// One operator application.
#[derive(Clone, PartialEq, prost::Message)]
pub struct NodeProto {
    #[prost(string, repeated, tag = "1")]
    pub input: Vec<String>,
    #[prost(string, repeated, tag = "2")]
    pub output: Vec<String>,
    #[prost(string, optional, tag = "3")]
    pub name: Option<String>,
    #[prost(string, optional, tag = "4")]
    pub op_type: Option<String>,
    #[prost(message, repeated, tag = "5")]
    pub attribute: Vec<AttributeProto>,
    #[prost(string, optional, tag = "7")]
    pub domain: Option<String>,
}

/// A named attribute of a node; exactly one of the value fields is set.
#[derive(Clone, PartialEq, prost::Message)]
pub struct AttributeProto {
    #[prost(string, optional, tag = "1")]
    pub name: Option<String>,
    #[prost(float, optional, tag = "2")]
    pub f: Option<f32>,
    #[prost(int64, optional, tag = "3")]
    pub i: Option<i64>,
    #[prost(bytes = "vec", optional, tag = "4")]
    pub s: Option<Vec<u8>>,
    #[prost(message, optional, tag = "5")]
    pub t: Option<TensorProto>,
    #[prost(float, repeated, tag = "7")]
    pub floats: Vec<f32>,
    #[prost(int64, repeated, tag = "8")]
    pub ints: Vec<i64>,
}

/// A graph input or output: its name and type.
#[derive(Clone, PartialEq, prost::Message)]
pub struct ValueInfoProto {
    #[prost(string, optional, tag = "1")]
    pub name: Option<String>,
    #[prost(message, optional, tag = "2")]
    pub r#type: Option<TypeProto>,
}

/// A value's type. Only tensor types are declared; a sequence, map, optional or sparse type
/// decodes as `value: None`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct TypeProto {
    #[prost(oneof = "type_proto::Value", tags = "1")]
    pub value: Option<type_proto::Value>,
}

pub mod type_proto {
    /// A dense tensor type: element type (a `DataType`) and shape.
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct Tensor {
        #[prost(int32, optional, tag = "1")]
        pub elem_type: Option<i32>,
        #[prost(message, optional, tag = "2")]
        pub shape: Option<super::TensorShapeProto>,
    }

    #[derive(Clone, PartialEq, prost::Oneof)]
    pub enum Value {
        #[prost(message, tag = "1")]
        TensorType(Tensor),
    }
}

/// A tensor's shape; each dimension a number, a symbol (dynamic) or unknown.
#[derive(Clone, PartialEq, prost::Message)]
pub struct TensorShapeProto {
    #[prost(message, repeated, tag = "1")]
    pub dim: Vec<tensor_shape_proto::Dimension>,
}

pub mod tensor_shape_proto {
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct Dimension {
        #[prost(oneof = "dimension::Value", tags = "1, 2")]
        pub value: Option<dimension::Value>,
    }

    pub mod dimension {
        #[derive(Clone, PartialEq, prost::Oneof)]
        pub enum Value {
            #[prost(int64, tag = "1")]
            DimValue(i64),
            #[prost(string, tag = "2")]
            DimParam(String),
        }
    }
}

/// A constant tensor: dimensions, element type, and its values in one of the typed fields, in
/// `raw_data` (little-endian), or in a file beside the model (`external_data`).
#[derive(Clone, PartialEq, prost::Message)]
pub struct TensorProto {
    #[prost(int64, repeated, tag = "1")]
    pub dims: Vec<i64>,
    #[prost(int32, optional, tag = "2")]
    pub data_type: Option<i32>,
    #[prost(float, repeated, tag = "4")]
    pub float_data: Vec<f32>,
    #[prost(int32, repeated, tag = "5")]
    pub int32_data: Vec<i32>,
    #[prost(int64, repeated, tag = "7")]
    pub int64_data: Vec<i64>,
    #[prost(string, optional, tag = "8")]
    pub name: Option<String>,
    #[prost(bytes = "vec", optional, tag = "9")]
    pub raw_data: Option<Vec<u8>>,
    #[prost(double, repeated, tag = "10")]
    pub double_data: Vec<f64>,
    #[prost(message, repeated, tag = "13")]
    pub external_data: Vec<StringStringEntryProto>,
    #[prost(int32, optional, tag = "14")]
    pub data_location: Option<i32>,
}

/// A key and a value (external data's `location`, `offset`, `length`).
#[derive(Clone, PartialEq, prost::Message)]
pub struct StringStringEntryProto {
    #[prost(string, optional, tag = "1")]
    pub key: Option<String>,
    #[prost(string, optional, tag = "2")]
    pub value: Option<String>,
}

pub mod tensor_proto {
    /// Element types (the numbers are the format's).
    #[derive(Clone, Copy, Debug, PartialEq, Eq)]
    pub enum DataType {
        Undefined = 0,
        Float = 1,
        Uint8 = 2,
        Int8 = 3,
        Uint16 = 4,
        Int16 = 5,
        Int32 = 6,
        Int64 = 7,
        String = 8,
        Bool = 9,
        Float16 = 10,
        Double = 11,
        Uint32 = 12,
        Uint64 = 13,
        Complex64 = 14,
        Complex128 = 15,
        Bfloat16 = 16,
    }

    impl DataType {
        /// The type's name as the format spells it.
        pub fn as_str_name(self) -> &'static str {
            use DataType::*;
            match self {
                Undefined => "UNDEFINED",
                Float => "FLOAT",
                Uint8 => "UINT8",
                Int8 => "INT8",
                Uint16 => "UINT16",
                Int16 => "INT16",
                Int32 => "INT32",
                Int64 => "INT64",
                String => "STRING",
                Bool => "BOOL",
                Float16 => "FLOAT16",
                Double => "DOUBLE",
                Uint32 => "UINT32",
                Uint64 => "UINT64",
                Complex64 => "COMPLEX64",
                Complex128 => "COMPLEX128",
                Bfloat16 => "BFLOAT16",
            }
        }
    }

    impl TryFrom<i32> for DataType {
        /// The number is not one of the types above (8-bit and smaller floats and integers of
        /// newer IR versions are among them).
        type Error = i32;

        fn try_from(v: i32) -> Result<DataType, i32> {
            use DataType::*;
            Ok(match v {
                0 => Undefined,
                1 => Float,
                2 => Uint8,
                3 => Int8,
                4 => Uint16,
                5 => Int16,
                6 => Int32,
                7 => Int64,
                8 => String,
                9 => Bool,
                10 => Float16,
                11 => Double,
                12 => Uint32,
                13 => Uint64,
                14 => Complex64,
                15 => Complex128,
                16 => Bfloat16,
                _ => return Err(v),
            })
        }
    }

    /// `TensorProto::data_location` of a tensor whose values are in a file beside the model
    /// (`external_data`); 0, the default, is in the message.
    pub const DATA_LOCATION_EXTERNAL: i32 = 1;
}
