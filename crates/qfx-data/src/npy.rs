//! NumPy arrays: the `.npy` format (versions 1 to 3: the magic `\x93NUMPY`, a header that is a
//! Python dict literal with `descr`, `fortran_order` and `shape`, then the data) and `.npz`
//! archives (a zip file of `.npy` members, stored or deflated, as `np.savez` and
//! `np.savez_compressed` write them).
//!
//! What is read is bounded by what is declared: the data by the header's shape (a file shorter
//! or longer than that is refused), a zip member by the sizes of the archive's directory
//! (inflated no further, its CRC checked), everything by [`MAX_BYTES`].
//!
//! As tables ([`load_npy_pair`], [`load_npz_table`]): features `[n, d]`, `[n, c, length]` or
//! `[n, c, h, w]` of `float32` or `float64`; class labels `[n]` of an integer type; regression
//! targets `[n]` or `[n, k]` of `float32` or `float64`.

use std::collections::BTreeMap;
use std::io::Read as _;
use std::path::Path;

use crate::files::read_bounded;
use crate::table::{Origin, Table, Targets, Task};
use crate::DataError;

/// Largest array or archive read: far above any dataset trained on here, far below a memory
/// bomb.
pub const MAX_BYTES: u64 = 1 << 31;

/// Largest `.npy` header accepted (NumPy writes under 100 bytes for plain arrays).
const MAX_HEADER: usize = 1 << 16;

/// An element type of a NumPy array.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Dtype {
    /// A float of 4 or 8 bytes (`float32`, `float64`).
    Float(usize),
    /// A signed integer of 1, 2, 4 or 8 bytes.
    Int(usize),
    /// An unsigned integer of 1, 2, 4 or 8 bytes.
    Uint(usize),
    /// `bool`, one byte.
    Bool,
}

impl Dtype {
    /// Bytes per element.
    pub fn size(self) -> usize {
        match self {
            Dtype::Float(n) | Dtype::Int(n) | Dtype::Uint(n) => n,
            Dtype::Bool => 1,
        }
    }

    /// NumPy's name for it.
    pub fn name(self) -> String {
        match self {
            Dtype::Float(n) => format!("float{}", 8 * n),
            Dtype::Int(n) => format!("int{}", 8 * n),
            Dtype::Uint(n) => format!("uint{}", 8 * n),
            Dtype::Bool => "bool".to_string(),
        }
    }
}

/// An array read from a `.npy` file or an `.npz` member.
#[derive(Clone, Debug, PartialEq)]
pub struct NpyArray {
    /// Where it was read from (a file, or `archive.npz (member)`), for messages.
    pub source: String,
    /// Its shape.
    pub shape: Vec<usize>,
    /// Its element type.
    pub dtype: Dtype,
    /// Big-endian data (`>` in the header).
    pub big_endian: bool,
    /// The raw data, `product(shape) · dtype.size()` bytes in C order.
    pub data: Vec<u8>,
}

fn err(source: &str, m: impl Into<String>) -> DataError {
    DataError::invalid(format!("{source}: {}", m.into()))
}

impl NpyArray {
    /// Number of elements.
    pub fn len(&self) -> usize {
        self.data.len() / self.dtype.size()
    }

    /// True when it has no elements.
    pub fn is_empty(&self) -> bool {
        self.data.is_empty()
    }

    fn element(&self, i: usize) -> [u8; 8] {
        let n = self.dtype.size();
        let mut b = [0u8; 8];
        let src = &self.data[i * n..(i + 1) * n];
        if self.big_endian {
            for (k, &v) in src.iter().rev().enumerate() {
                b[k] = v;
            }
        } else {
            b[..n].copy_from_slice(src);
        }
        b
    }

    /// Where element `i` is, for messages: "sample 3, feature 5 of x.npy".
    fn at(&self, i: usize) -> String {
        let inner: usize = self.shape.iter().skip(1).product();
        let (s, rest) = (i / inner.max(1), i % inner.max(1));
        if self.shape.len() <= 1 {
            format!("sample {s} of {}", self.source)
        } else {
            let mut idx = Vec::new();
            let mut r = rest;
            for d in self.shape[1..].iter().rev() {
                idx.push(r % d);
                r /= d;
            }
            idx.reverse();
            let idx: Vec<String> = idx.iter().map(|v| v.to_string()).collect();
            format!("sample {s}, index [{}] of {}", idx.join(", "), self.source)
        }
    }

    /// The values as finite `f32`: float arrays only (`what` names the array's role).
    pub fn floats(&self, what: &str) -> Result<Vec<f32>, DataError> {
        let Dtype::Float(size) = self.dtype else {
            return Err(err(
                &self.source,
                format!(
                    "{what} must be float32 or float64, not {} (convert with \
                     .astype(np.float32))",
                    self.dtype.name()
                ),
            ));
        };
        let mut out = Vec::with_capacity(self.len());
        for i in 0..self.len() {
            let b = self.element(i);
            let v = match size {
                4 => f32::from_le_bytes([b[0], b[1], b[2], b[3]]) as f64,
                _ => f64::from_le_bytes(b),
            };
            if !v.is_finite() {
                return Err(err(
                    &self.source,
                    format!(
                        "{what}: {} is {v} (NaN and infinities cannot be trained on)",
                        self.at(i)
                    ),
                ));
            }
            let f = v as f32;
            if !f.is_finite() {
                return Err(err(
                    &self.source,
                    format!("{what}: {} is {v}, beyond the range of f32", self.at(i)),
                ));
            }
            out.push(f);
        }
        Ok(out)
    }

    /// The values as class labels: integer (or bool) arrays only, every value in `0..2^32`.
    pub fn labels(&self) -> Result<Vec<u32>, DataError> {
        let mut out = Vec::with_capacity(self.len());
        for i in 0..self.len() {
            let b = self.element(i);
            let v: i128 = match self.dtype {
                Dtype::Int(n) => {
                    let raw = i64::from_le_bytes(b);
                    let shift = 64 - 8 * n as u32;
                    ((raw << shift) >> shift) as i128
                }
                Dtype::Uint(_) | Dtype::Bool => u64::from_le_bytes(b) as i128,
                Dtype::Float(_) => {
                    return Err(err(
                        &self.source,
                        format!(
                            "labels must be integers, not {} (for regression targets set \
                             train.loss = \"mse\"; for class labels convert with \
                             .astype(np.int64))",
                            self.dtype.name()
                        ),
                    ))
                }
            };
            let label = u32::try_from(v).map_err(|_| {
                err(
                    &self.source,
                    format!(
                        "{} has the label {v}; labels are integers 0, 1, 2, …",
                        self.at(i)
                    ),
                )
            })?;
            out.push(label);
        }
        Ok(out)
    }
}

/// A tiny reader of the Python literal NumPy writes as its header.
struct Literal<'a> {
    s: &'a [u8],
    i: usize,
}

#[derive(Debug, PartialEq)]
enum Value {
    Str(String),
    Bool(bool),
    Int(u64),
    Tuple(Vec<Value>),
    List,
}

impl Literal<'_> {
    fn space(&mut self) {
        while self.i < self.s.len() && self.s[self.i].is_ascii_whitespace() {
            self.i += 1;
        }
    }

    fn eat(&mut self, c: u8) -> bool {
        self.space();
        if self.s.get(self.i) == Some(&c) {
            self.i += 1;
            true
        } else {
            false
        }
    }

    fn value(&mut self) -> Result<Value, String> {
        self.space();
        match self.s.get(self.i) {
            Some(&q @ (b'\'' | b'"')) => {
                self.i += 1;
                let start = self.i;
                while self.i < self.s.len() && self.s[self.i] != q {
                    self.i += 1;
                }
                if self.i >= self.s.len() {
                    return Err("a string without its closing quote".into());
                }
                let text = String::from_utf8_lossy(&self.s[start..self.i]).to_string();
                self.i += 1;
                Ok(Value::Str(text))
            }
            Some(b'(') => {
                self.i += 1;
                let mut items = Vec::new();
                loop {
                    if self.eat(b')') {
                        return Ok(Value::Tuple(items));
                    }
                    items.push(self.value()?);
                    if !self.eat(b',') {
                        if self.eat(b')') {
                            return Ok(Value::Tuple(items));
                        }
                        return Err("a tuple without its closing parenthesis".into());
                    }
                }
            }
            Some(b'[') => {
                // A structured dtype's field list: read through, to say what it is.
                self.i += 1;
                loop {
                    if self.eat(b']') {
                        return Ok(Value::List);
                    }
                    self.value()?;
                    if !self.eat(b',') {
                        if self.eat(b']') {
                            return Ok(Value::List);
                        }
                        return Err("a list without its closing bracket".into());
                    }
                }
            }
            Some(c) if c.is_ascii_digit() => {
                let start = self.i;
                while self.i < self.s.len() && self.s[self.i].is_ascii_digit() {
                    self.i += 1;
                }
                // A Python 2 long (`3L`) may follow.
                if self.s.get(self.i) == Some(&b'L') {
                    self.i += 1;
                }
                let digits = std::str::from_utf8(&self.s[start..self.i])
                    .unwrap_or_default()
                    .trim_end_matches('L');
                digits
                    .parse()
                    .map(Value::Int)
                    .map_err(|_| format!("the size {digits} is too large"))
            }
            _ if self.s[self.i..].starts_with(b"True") => {
                self.i += 4;
                Ok(Value::Bool(true))
            }
            _ if self.s[self.i..].starts_with(b"False") => {
                self.i += 5;
                Ok(Value::Bool(false))
            }
            _ => Err(format!("unexpected text at byte {} of the header", self.i)),
        }
    }

    fn dict(&mut self) -> Result<BTreeMap<String, Value>, String> {
        if !self.eat(b'{') {
            return Err("the header is not a dictionary".into());
        }
        let mut out = BTreeMap::new();
        loop {
            if self.eat(b'}') {
                return Ok(out);
            }
            let Value::Str(key) = self.value()? else {
                return Err("a header key that is not a string".into());
            };
            if !self.eat(b':') {
                return Err(format!("no `:` after the key `{key}`"));
            }
            let v = self.value()?;
            out.insert(key, v);
            if !self.eat(b',') {
                if self.eat(b'}') {
                    return Ok(out);
                }
                return Err("the dictionary has no closing brace".into());
            }
        }
    }
}

fn parse_descr(descr: &str) -> Result<(Dtype, bool), String> {
    let bytes = descr.as_bytes();
    let (order, rest) = match bytes.first() {
        Some(b'<' | b'=' | b'|') => (false, &descr[1..]),
        Some(b'>') => (true, &descr[1..]),
        _ => (false, descr),
    };
    let (kind, size) = rest.split_at(rest.len().min(1));
    let size: usize = size
        .parse()
        .map_err(|_| format!("unsupported element type `{descr}`"))?;
    let dtype = match (kind, size) {
        ("f", 4 | 8) => Dtype::Float(size),
        ("i", 1 | 2 | 4 | 8) => Dtype::Int(size),
        ("u", 1 | 2 | 4 | 8) => Dtype::Uint(size),
        ("b", 1) => Dtype::Bool,
        _ => {
            return Err(format!(
                "unsupported element type `{descr}`: qfx reads float32, float64, integers and \
                 bool"
            ))
        }
    };
    Ok((dtype, order && size > 1))
}

/// Parses a whole `.npy` file held in `bytes`; `source` names it in errors.
pub fn parse_npy(bytes: &[u8], source: &str) -> Result<NpyArray, DataError> {
    let bad = |m: String| err(source, m);
    if bytes.len() < 10 || &bytes[..6] != b"\x93NUMPY" {
        return Err(bad(
            "not a NumPy .npy file (it does not start with \\x93NUMPY)".into(),
        ));
    }
    let major = bytes[6];
    let (header_len, start) = match major {
        1 => (u16::from_le_bytes([bytes[8], bytes[9]]) as usize, 10),
        2 | 3 => {
            if bytes.len() < 12 {
                return Err(bad("truncated header".into()));
            }
            let n = u32::from_le_bytes([bytes[8], bytes[9], bytes[10], bytes[11]]) as usize;
            (n, 12)
        }
        v => return Err(bad(format!(".npy format version {v} is not supported"))),
    };
    if header_len > MAX_HEADER {
        return Err(bad(format!(
            "a header of {header_len} bytes: not an array qfx reads"
        )));
    }
    let Some(header) = bytes.get(start..start + header_len) else {
        return Err(bad(format!(
            "truncated: the header declares {header_len} bytes, the file has {}",
            bytes.len() - start
        )));
    };
    let dict = Literal { s: header, i: 0 }
        .dict()
        .map_err(|m| bad(format!("unreadable header: {m}")))?;
    let descr = match dict.get("descr") {
        Some(Value::Str(d)) => d.clone(),
        Some(Value::List) => {
            return Err(bad(
                "a structured array (fields); qfx reads plain arrays of numbers".into(),
            ))
        }
        _ => return Err(bad("the header has no `descr`".into())),
    };
    let (dtype, big_endian) = parse_descr(&descr).map_err(bad)?;
    match dict.get("fortran_order") {
        Some(Value::Bool(false)) => {}
        Some(Value::Bool(true)) => {
            return Err(bad(
                "stored in Fortran order; save it in C order (np.ascontiguousarray)".into(),
            ))
        }
        _ => return Err(bad("the header has no `fortran_order`".into())),
    }
    let shape = match dict.get("shape") {
        Some(Value::Tuple(items)) => items
            .iter()
            .map(|v| match v {
                Value::Int(n) => usize::try_from(*n).map_err(|_| "a size too large".to_string()),
                _ => Err("a size that is not an integer".to_string()),
            })
            .collect::<Result<Vec<usize>, String>>()
            .map_err(|m| bad(format!("shape: {m}")))?,
        _ => return Err(bad("the header has no `shape`".into())),
    };
    let need = shape
        .iter()
        .try_fold(dtype.size(), |a, &d| a.checked_mul(d))
        .filter(|&n| n as u64 <= MAX_BYTES)
        .ok_or_else(|| {
            bad(format!(
                "shape {shape:?} of {} declares more than 2 GiB of data",
                dtype.name()
            ))
        })?;
    let data = &bytes[start + header_len..];
    let shape_text = format!("{shape:?} of {}", dtype.name());
    if data.len() < need {
        return Err(bad(format!(
            "truncated: shape {shape_text} needs {need} data bytes, the file has {}",
            data.len()
        )));
    }
    if data.len() > need {
        return Err(bad(format!(
            "{} bytes after the {need} data bytes of shape {shape_text}",
            data.len() - need
        )));
    }
    Ok(NpyArray {
        source: source.to_string(),
        shape,
        dtype,
        big_endian,
        data: data.to_vec(),
    })
}

/// Reads a whole regular file, at most [`MAX_BYTES`].
fn read_file(path: &Path) -> Result<Vec<u8>, DataError> {
    read_bounded(path, MAX_BYTES, |len| {
        format!("{len} bytes: larger than the 2 GiB qfx reads")
    })
}

/// Reads a `.npy` file (a regular file only).
pub fn read_npy(path: &Path) -> Result<NpyArray, DataError> {
    parse_npy(&read_file(path)?, &path.display().to_string())
}

fn u16_at(b: &[u8], i: usize) -> Option<u64> {
    Some(u16::from_le_bytes(b.get(i..i + 2)?.try_into().ok()?) as u64)
}

fn u32_at(b: &[u8], i: usize) -> Option<u64> {
    Some(u32::from_le_bytes(b.get(i..i + 4)?.try_into().ok()?) as u64)
}

fn u64_at(b: &[u8], i: usize) -> Option<u64> {
    u64::from_le_bytes(b.get(i..i + 8)?.try_into().ok()?).into()
}

/// The arrays of an `.npz` archive held in `bytes`, by name (the member's name without
/// `.npy`); `source` names the archive in errors. Members that are not `.npy` files are
/// skipped.
pub fn parse_npz(bytes: &[u8], source: &str) -> Result<BTreeMap<String, NpyArray>, DataError> {
    let bad = |m: String| err(source, m);
    let damaged = |what: &str| bad(format!("a damaged zip archive ({what})"));
    // The end-of-central-directory record: 22 bytes plus a comment of at most 65535.
    let lo = bytes.len().saturating_sub(22 + 65535);
    let eocd = (lo..=bytes.len().saturating_sub(22))
        .rev()
        .find(|&i| bytes[i..].starts_with(b"PK\x05\x06"))
        .ok_or_else(|| {
            bad("not a .npz archive (no zip directory at its end: truncated, or not a zip)".into())
        })?;
    let mut entries = u16_at(bytes, eocd + 10).ok_or_else(|| damaged("directory record"))?;
    let mut cd_size = u32_at(bytes, eocd + 12).ok_or_else(|| damaged("directory record"))?;
    let mut cd_offset = u32_at(bytes, eocd + 16).ok_or_else(|| damaged("directory record"))?;
    if entries == 0xffff || cd_size == 0xffff_ffff || cd_offset == 0xffff_ffff {
        // Zip64: a locator just before the record points at the zip64 record.
        let loc = eocd
            .checked_sub(20)
            .filter(|&l| bytes[l..].starts_with(b"PK\x06\x07"))
            .ok_or_else(|| damaged("zip64 locator"))?;
        let rec = u64_at(bytes, loc + 8).ok_or_else(|| damaged("zip64 locator"))? as usize;
        if !bytes
            .get(rec..)
            .is_some_and(|b| b.starts_with(b"PK\x06\x06"))
        {
            return Err(damaged("zip64 directory record"));
        }
        entries = u64_at(bytes, rec + 32).ok_or_else(|| damaged("zip64 record"))?;
        cd_size = u64_at(bytes, rec + 40).ok_or_else(|| damaged("zip64 record"))?;
        cd_offset = u64_at(bytes, rec + 48).ok_or_else(|| damaged("zip64 record"))?;
    }
    let cd_end = cd_offset
        .checked_add(cd_size)
        .filter(|&e| e <= bytes.len() as u64)
        .ok_or_else(|| damaged("the directory lies outside the file"))?;
    let mut at = cd_offset as usize;
    let mut out = BTreeMap::new();
    for _ in 0..entries {
        if at + 46 > cd_end as usize || !bytes[at..].starts_with(b"PK\x01\x02") {
            return Err(damaged("a directory entry"));
        }
        let flags = u16_at(bytes, at + 8).unwrap_or(0);
        let method = u16_at(bytes, at + 10).unwrap_or(0);
        let crc = u32_at(bytes, at + 16).unwrap_or(0) as u32;
        let mut csize = u32_at(bytes, at + 20).unwrap_or(0);
        let mut usize_ = u32_at(bytes, at + 24).unwrap_or(0);
        let name_len = u16_at(bytes, at + 28).unwrap_or(0) as usize;
        let extra_len = u16_at(bytes, at + 30).unwrap_or(0) as usize;
        let comment_len = u16_at(bytes, at + 32).unwrap_or(0) as usize;
        let mut local = u32_at(bytes, at + 42).unwrap_or(0);
        let name_end = at + 46 + name_len;
        let extra_end = name_end + extra_len;
        if extra_end + comment_len > cd_end as usize {
            return Err(damaged("a directory entry"));
        }
        let name = String::from_utf8_lossy(&bytes[at + 46..name_end]).to_string();
        // Zip64 sizes and offset, in this order, for the fields that overflowed.
        let mut e = name_end;
        while e + 4 <= extra_end {
            let id = u16_at(bytes, e).unwrap_or(0);
            let len = u16_at(bytes, e + 2).unwrap_or(0) as usize;
            if id == 1 {
                let mut p = e + 4;
                for field in [&mut usize_, &mut csize, &mut local] {
                    if *field == 0xffff_ffff && p + 8 <= e + 4 + len {
                        *field = u64_at(bytes, p).unwrap_or(0);
                        p += 8;
                    }
                }
            }
            e += 4 + len;
        }
        at = extra_end + comment_len;
        let Some(key) = name.strip_suffix(".npy") else {
            continue;
        };
        let member = format!("{source} ({name})");
        if flags & 1 != 0 {
            return Err(err(&member, "encrypted; qfx reads plain archives"));
        }
        if usize_ > MAX_BYTES || csize > MAX_BYTES {
            return Err(err(&member, "larger than the 2 GiB qfx reads"));
        }
        let local = local as usize;
        if !bytes
            .get(local..)
            .is_some_and(|b| b.starts_with(b"PK\x03\x04"))
        {
            return Err(err(&member, "a damaged zip archive (local header)"));
        }
        let n = u16_at(bytes, local + 26).unwrap_or(0) as usize;
        let m = u16_at(bytes, local + 28).unwrap_or(0) as usize;
        let start = local + 30 + n + m;
        let raw = start
            .checked_add(csize as usize)
            .and_then(|end| bytes.get(start..end))
            .ok_or_else(|| err(&member, "truncated: the archive ends inside this member"))?;
        let data = match method {
            0 => raw.to_vec(),
            8 => {
                let mut d = Vec::with_capacity(usize_ as usize);
                flate2::read::DeflateDecoder::new(raw)
                    .take(usize_ + 1)
                    .read_to_end(&mut d)
                    .map_err(|e| err(&member, format!("cannot inflate: {e}")))?;
                d
            }
            m => {
                return Err(err(
                    &member,
                    format!(
                        "compression method {m}; qfx reads stored and deflated members (np.savez, \
                         np.savez_compressed)"
                    ),
                ))
            }
        };
        if data.len() as u64 != usize_ {
            return Err(err(
                &member,
                format!(
                    "the archive declares {usize_} bytes, the member holds {}",
                    data.len()
                ),
            ));
        }
        let mut sum = flate2::Crc::new();
        sum.update(&data);
        if sum.sum() != crc {
            return Err(err(&member, "damaged (its CRC-32 does not match)"));
        }
        out.insert(key.to_string(), parse_npy(&data, &member)?);
    }
    Ok(out)
}

/// Reads an `.npz` archive (a regular file only).
pub fn read_npz(path: &Path) -> Result<BTreeMap<String, NpyArray>, DataError> {
    parse_npz(&read_file(path)?, &path.display().to_string())
}

/// Features as a table's samples: `[n, d]`, `[n, c, length]` or `[n, c, h, w]`.
fn features(a: &NpyArray) -> Result<(usize, Vec<usize>, Vec<f32>), DataError> {
    if !(2..=4).contains(&a.shape.len()) {
        return Err(err(
            &a.source,
            format!(
                "features of shape {:?}: expected [samples, features], [samples, channels, \
                 length] or [samples, channels, height, width]",
                a.shape
            ),
        ));
    }
    if a.shape.contains(&0) {
        return Err(err(
            &a.source,
            format!("empty features: shape {:?}", a.shape),
        ));
    }
    Ok((a.shape[0], a.shape[1..].to_vec(), a.floats("features")?))
}

/// Targets of `n` samples for `task`.
fn targets(a: Option<&NpyArray>, n: usize, task: &Task) -> Result<Targets, DataError> {
    let Some(a) = a else {
        return Ok(Targets::None);
    };
    let rows = a.shape.first().copied().unwrap_or(0);
    let shape_ok = match task {
        Task::Classification => a.shape.len() == 1 || (a.shape.len() == 2 && a.shape[1] == 1),
        _ => a.shape.len() == 1 || (a.shape.len() == 2 && a.shape[1] > 0),
    };
    if !shape_ok {
        return Err(err(
            &a.source,
            format!(
                "targets of shape {:?}: expected {}",
                a.shape,
                match task {
                    Task::Classification => "one class label per sample, [samples]",
                    _ => "[samples] or [samples, values]",
                }
            ),
        ));
    }
    if rows != n {
        return Err(err(
            &a.source,
            format!("{rows} targets for {n} samples of features"),
        ));
    }
    Ok(match task {
        Task::Classification => Targets::Classes(a.labels()?),
        _ => Targets::Values {
            values: a.floats("targets")?,
            width: a.shape.get(1).copied().unwrap_or(1),
        },
    })
}

fn table(x: &NpyArray, y: Option<&NpyArray>, task: &Task) -> Result<Table, DataError> {
    let (n, shape, features) = features(x)?;
    let targets = match task {
        Task::Autoencoder => Targets::None,
        _ => targets(y, n, task)?,
    };
    let t = Table {
        features,
        shape,
        targets,
        feature_names: Vec::new(),
        origin: Origin::arrays(
            x.source.clone(),
            y.map_or_else(|| x.source.clone(), |y| y.source.clone()),
            n,
        ),
    };
    t.check()?;
    Ok(t)
}

/// A table from a `.npy` file of features and one of targets (class labels or regression
/// values, by `task`; an autoencoder needs none).
pub fn load_npy_pair(
    features: &Path,
    targets: Option<&Path>,
    task: &Task,
) -> Result<Table, DataError> {
    let x = read_npy(features)?;
    let y = match (targets, task) {
        (Some(_), Task::Autoencoder) => {
            return Err(DataError::format(
                features,
                "an autoencoder reconstructs its features: it takes no targets file",
            ))
        }
        (Some(t), _) => Some(read_npy(t)?),
        (None, Task::Autoencoder) => None,
        (None, _) => {
            return Err(DataError::format(
                features,
                format!(
                    "a .npy file holds features only: name the {} .npy file with `targets`",
                    match task {
                        Task::Classification => "labels'",
                        _ => "targets'",
                    }
                ),
            ))
        }
    };
    table(&x, y.as_ref(), task)
}

/// A table from an `.npz` archive: arrays `x` and `y`, or `x_train`, `y_train`, `x_test` and
/// `y_test` (then the test table comes too); an autoencoder needs no `y`.
pub fn load_npz_table(path: &Path, task: &Task) -> Result<(Table, Option<Table>), DataError> {
    let arrays = read_npz(path)?;
    let names = || {
        let n: Vec<&str> = arrays.keys().map(String::as_str).collect();
        if n.is_empty() {
            "no arrays".to_string()
        } else {
            format!("arrays {}", n.join(", "))
        }
    };
    let need_y = *task != Task::Autoencoder;
    let get = |k: &str| arrays.get(k);
    if let Some(x) = get("x_train") {
        let (y, xt, yt) = (get("y_train"), get("x_test"), get("y_test"));
        if xt.is_none() || (need_y && (y.is_none() || yt.is_none())) {
            return Err(DataError::format(
                path,
                format!(
                    "has x_train but not all of {} (it holds {})",
                    if need_y {
                        "y_train, x_test, y_test"
                    } else {
                        "x_test"
                    },
                    names()
                ),
            ));
        }
        let xt = xt.expect("checked");
        let train = table(x, y, task)?;
        let test = table(xt, yt, task)?;
        return Ok((train, Some(test)));
    }
    let Some(x) = get("x") else {
        return Err(DataError::format(
            path,
            format!(
                "holds {}; a .npz table holds x and y (split by a fraction or a test file) or \
                 x_train, y_train, x_test and y_test",
                names()
            ),
        ));
    };
    let y = get("y");
    if need_y && y.is_none() {
        return Err(DataError::format(
            path,
            format!("has x but no y (it holds {})", names()),
        ));
    }
    Ok((table(x, y, task)?, None))
}
