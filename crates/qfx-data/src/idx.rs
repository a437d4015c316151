//! The IDX format (MNIST's): a magic `00 00 <type> <dims>`, `dims` big-endian u32 sizes, then
//! the data. Only unsigned bytes (type 0x08) are used by image datasets.

use std::io::Read;
use std::path::{Path, PathBuf};

use crate::{DataError, Dataset, Splits};

/// Largest file accepted (decompressed): far above any IDX dataset, far below a memory bomb.
const MAX_BYTES: u64 = 1 << 31;

/// An IDX array of unsigned bytes: its dimensions and data.
#[derive(Debug, Clone, PartialEq)]
pub struct IdxArray {
    /// Sizes of each dimension.
    pub dims: Vec<usize>,
    /// `product(dims)` bytes.
    pub data: Vec<u8>,
}

/// Reads one IDX file of unsigned bytes, gzip-compressed if its name ends in `.gz`.
pub fn read_idx(path: &Path) -> Result<IdxArray, DataError> {
    let file = std::fs::File::open(path).map_err(|source| DataError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    let gz = path.extension().is_some_and(|e| e == "gz");
    decode(file, gz, path)
}

/// Decompresses (if `gz`) and parses IDX bytes from `reader`; `path` names them in errors.
fn decode(reader: impl Read, gz: bool, path: &Path) -> Result<IdxArray, DataError> {
    let reader: Box<dyn Read> = if gz {
        Box::new(flate2::read::GzDecoder::new(reader))
    } else {
        Box::new(reader)
    };
    let mut bytes = Vec::new();
    reader
        .take(MAX_BYTES + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| DataError::format(path, format!("cannot decompress: {e}")))?;
    if bytes.len() as u64 > MAX_BYTES {
        return Err(DataError::format(
            path,
            "larger than 2 GiB: not an IDX dataset",
        ));
    }
    parse_idx(&bytes).map_err(|m| DataError::format(path, m))
}

fn parse_idx(bytes: &[u8]) -> Result<IdxArray, String> {
    if bytes.len() < 4 {
        return Err(format!(
            "{} bytes: too short for an IDX header",
            bytes.len()
        ));
    }
    if bytes[0] != 0 || bytes[1] != 0 {
        return Err(format!(
            "wrong magic number {:02x}{:02x}{:02x}{:02x}: not an IDX file",
            bytes[0], bytes[1], bytes[2], bytes[3]
        ));
    }
    if bytes[2] != 0x08 {
        return Err(format!(
            "element type 0x{:02x}; only unsigned bytes (0x08) are supported",
            bytes[2]
        ));
    }
    let ndims = bytes[3] as usize;
    if ndims == 0 {
        return Err("zero dimensions".to_string());
    }
    let header = 4 + 4 * ndims;
    if bytes.len() < header {
        return Err(format!(
            "truncated header: {} dimensions need {header} bytes",
            ndims
        ));
    }
    let dims: Vec<usize> = bytes[4..header]
        .chunks(4)
        .map(|c| u32::from_be_bytes([c[0], c[1], c[2], c[3]]) as usize)
        .collect();
    let count = dims
        .iter()
        .try_fold(1usize, |acc, &d| acc.checked_mul(d))
        .ok_or("dimensions overflow")?;
    let have = bytes.len() - header;
    if have < count {
        return Err(format!(
            "truncated: dimensions {dims:?} need {count} data bytes, found {have}"
        ));
    }
    if have > count {
        return Err(format!(
            "{} trailing bytes after the data of dimensions {dims:?}",
            have - count
        ));
    }
    Ok(IdxArray {
        dims,
        data: bytes[header..].to_vec(),
    })
}

/// `dir/name` or `dir/name.gz`, whichever exists.
fn find(dir: &Path, name: &str) -> Result<PathBuf, DataError> {
    for candidate in [dir.join(name), dir.join(format!("{name}.gz"))] {
        if candidate.is_file() {
            return Ok(candidate);
        }
    }
    Err(DataError::format(
        dir,
        format!("missing {name} (or {name}.gz): expected the four standard IDX files"),
    ))
}

fn load_split(dir: &Path, images: &str, labels: &str) -> Result<Dataset, DataError> {
    let (ipath, lpath) = (find(dir, images)?, find(dir, labels)?);
    split(read_idx(&ipath)?, read_idx(&lpath)?, &ipath, &lpath)
}

/// One split from its image and label arrays (read from `ipath` and `lpath`).
fn split(img: IdxArray, lab: IdxArray, ipath: &Path, lpath: &Path) -> Result<Dataset, DataError> {
    if img.dims.len() != 3 {
        return Err(DataError::format(
            ipath,
            format!(
                "images need 3 dimensions [count, rows, cols], found {:?}",
                img.dims
            ),
        ));
    }
    if lab.dims.len() != 1 {
        return Err(DataError::format(
            lpath,
            format!("labels need 1 dimension, found {:?}", lab.dims),
        ));
    }
    if img.dims[0] != lab.dims[0] {
        return Err(DataError::format(
            lpath,
            format!(
                "{} labels for {} images in {}",
                lab.dims[0],
                img.dims[0],
                ipath.display()
            ),
        ));
    }
    let classes = lab.data.iter().copied().max().map_or(0, |m| m as usize + 1);
    Ok(Dataset {
        images: img.data,
        labels: lab.data,
        shape: [1, img.dims[1], img.dims[2]],
        classes,
        class_names: Vec::new(),
    })
}

/// Loads `train-*` and `t10k-*` IDX files (raw or `.gz`) from `dir`.
pub fn load_idx_dir(dir: &Path) -> Result<Splits, DataError> {
    let train = load_split(dir, "train-images-idx3-ubyte", "train-labels-idx1-ubyte")?;
    let test = load_split(dir, "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")?;
    same_shape(train, test, dir)
}

fn same_shape(train: Dataset, test: Dataset, dir: &Path) -> Result<Splits, DataError> {
    if train.shape != test.shape {
        return Err(DataError::format(
            dir,
            format!(
                "training images are {:?} but test images {:?}",
                train.shape, test.shape
            ),
        ));
    }
    Ok(Splits { train, test })
}

/// The embedded Fashion-MNIST subset (6,000 training and 1,000 test images, MIT licence; see
/// `data/fashion-mnist-subset/README.md`), compiled into the binary so that the default data
/// needs no files at run time.
pub fn embedded_fashion_mnist() -> Splits {
    macro_rules! embedded {
        ($name:literal) => {
            (
                &include_bytes!(concat!("../../../data/fashion-mnist-subset/", $name))[..],
                Path::new(concat!("<embedded>/", $name)),
            )
        };
    }
    let array = |(bytes, path): (&[u8], &Path)| decode(bytes, true, path);
    let load = || -> Result<Splits, DataError> {
        let ti = embedded!("train-images-idx3-ubyte.gz");
        let tl = embedded!("train-labels-idx1-ubyte.gz");
        let si = embedded!("t10k-images-idx3-ubyte.gz");
        let sl = embedded!("t10k-labels-idx1-ubyte.gz");
        let train = split(array(ti)?, array(tl)?, ti.1, tl.1)?;
        let test = split(array(si)?, array(sl)?, si.1, sl.1)?;
        same_shape(train, test, Path::new("<embedded>"))
    };
    // The files are fixed at compile time and checked by the tests: failing here is a build bug.
    load().expect("the embedded Fashion-MNIST subset is valid")
}
