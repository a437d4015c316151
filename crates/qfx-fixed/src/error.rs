//! The crate's one error type.

use std::fmt;

/// A type spelling that could not be parsed, with the byte offset of the problem.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ParseFormatError {
    /// The text that was parsed.
    pub input: String,
    /// Byte offset into `input` where the problem starts.
    pub position: usize,
    /// What is wrong there.
    pub message: String,
}

impl fmt::Display for ParseFormatError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "invalid type `{}` at column {}: {}",
            self.input,
            self.position + 1,
            self.message
        )
    }
}

/// Everything that can go wrong in this crate. Nothing in it panics on bad input.
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub enum Error {
    /// A malformed type spelling.
    Parse(ParseFormatError),
    /// A format that cannot exist (zero width, too wide, `N > W`, …).
    InvalidFormat(String),
    /// NaN or ±Inf given to a checked conversion.
    NonFinite(f64),
    /// An integer code that does not fit in the format's `W` bits.
    CodeOutOfRange {
        /// The rejected code.
        code: i128,
        /// The format, as its C++ spelling.
        format: String,
    },
    /// An operation whose HLS full-precision result type is wider than [`crate::MAX_WIDTH`].
    ResultTooWide {
        /// The width HLS would give the result.
        width: i64,
    },
    /// A text that is not a number (decimal or C hexadecimal floating point).
    ParseNumber(String),
    /// Slices passed to a kernel have different lengths.
    LengthMismatch {
        /// Length of the input slice.
        input: usize,
        /// Length of the output slice that differs.
        output: usize,
    },
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Parse(e) => e.fmt(f),
            Error::InvalidFormat(msg) => write!(f, "invalid format: {msg}"),
            Error::NonFinite(x) => write!(
                f,
                "cannot convert {x} to fixed point: NaN and infinities have no fixed-point value"
            ),
            Error::CodeOutOfRange { code, format } => {
                write!(f, "code {code} does not fit in {format}")
            }
            Error::ResultTooWide { width } => write!(
                f,
                "the full-precision result would be {width} bits wide; at most {} are supported",
                crate::MAX_WIDTH
            ),
            Error::ParseNumber(msg) => write!(f, "{msg}"),
            Error::LengthMismatch { input, output } => write!(
                f,
                "slice lengths differ: input has {input} elements, output has {output}"
            ),
        }
    }
}

impl std::error::Error for Error {}
