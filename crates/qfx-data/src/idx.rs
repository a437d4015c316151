//! The IDX format (MNIST's): a magic `00 00 <type> <dims>`, `dims` big-endian u32 sizes, then
//! the data. Only unsigned bytes (type 0x08) are used by image datasets.

use std::io::Read;
use std::path::{Path, PathBuf};

use crate::{DataError, Dataset, Splits};

/// Largest data accepted (decompressed): far above any IDX dataset, far below a memory bomb.
const MAX_BYTES: u64 = 1 << 31;

/// An IDX array of unsigned bytes: its dimensions and data.
#[derive(Debug, Clone, PartialEq)]
pub struct IdxArray {
    /// Sizes of each dimension.
    pub dims: Vec<usize>,
    /// `product(dims)` bytes.
    pub data: Vec<u8>,
}

/// Reads one IDX file of unsigned bytes, gzip-compressed if its name ends in `.gz`. Only a
/// regular file is read (a FIFO or device named like one is refused).
pub fn read_idx(path: &Path) -> Result<IdxArray, DataError> {
    let (file, _) = crate::files::open_regular(path)?;
    let gz = path.extension().is_some_and(|e| e == "gz");
    decode(std::io::BufReader::new(file), gz, path)
}

/// Decompresses (if `gz`) and parses IDX bytes from `reader`; `path` names them in errors.
///
/// The header is read first, and then at most the data size it declares plus one byte (to
/// notice trailing data): a small `.gz` that inflates to gigabytes is never inflated beyond
/// what its header promises, nor beyond [`MAX_BYTES`].
fn decode(reader: impl Read, gz: bool, path: &Path) -> Result<IdxArray, DataError> {
    let mut reader: Box<dyn Read> = if gz {
        Box::new(flate2::read::GzDecoder::new(reader))
    } else {
        Box::new(reader)
    };
    let failed = |e: std::io::Error| {
        if gz {
            DataError::format(path, format!("cannot decompress: {e}"))
        } else {
            DataError::Io {
                path: path.to_path_buf(),
                source: e,
            }
        }
    };
    let bad = |m: String| DataError::format(path, m);
    let mut magic = [0u8; 4];
    let got = read_full(&mut reader, &mut magic).map_err(failed)?;
    if got < 4 {
        return Err(bad(format!("{got} bytes: too short for an IDX header")));
    }
    let ndims = check_magic(magic).map_err(bad)?;
    let mut dims_bytes = vec![0u8; 4 * ndims];
    if read_full(&mut reader, &mut dims_bytes).map_err(failed)? < dims_bytes.len() {
        return Err(bad(format!(
            "truncated header: {ndims} dimensions need {} bytes",
            4 + 4 * ndims
        )));
    }
    let dims: Vec<usize> = dims_bytes
        .chunks(4)
        .map(|c| u32::from_be_bytes([c[0], c[1], c[2], c[3]]) as usize)
        .collect();
    let count = dims
        .iter()
        .try_fold(1usize, |acc, &d| acc.checked_mul(d))
        .filter(|&n| n as u64 <= MAX_BYTES)
        .ok_or_else(|| {
            bad(format!(
                "dimensions {dims:?} declare more than 2 GiB of data: not an IDX dataset"
            ))
        })?;
    let mut data = Vec::new();
    reader
        .take(count as u64 + 1)
        .read_to_end(&mut data)
        .map_err(failed)?;
    if data.len() < count {
        return Err(bad(format!(
            "truncated: dimensions {dims:?} need {count} data bytes, found {}",
            data.len()
        )));
    }
    if data.len() > count {
        return Err(bad(format!(
            "trailing bytes after the {count} data bytes of dimensions {dims:?}"
        )));
    }
    Ok(IdxArray { dims, data })
}

/// Reads until `buf` is full or the input ends; returns how many bytes were read.
fn read_full(reader: &mut impl Read, buf: &mut [u8]) -> std::io::Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        match reader.read(&mut buf[n..]) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(n)
}

/// Checks the magic number `00 00 08 <dims>`; returns the number of dimensions.
fn check_magic(bytes: [u8; 4]) -> Result<usize, String> {
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
    match bytes[3] as usize {
        0 => Err("zero dimensions".to_string()),
        n => Ok(n),
    }
}

/// `dir/name` or `dir/name.gz`, whichever exists (and must then be a regular file).
fn find(dir: &Path, name: &str) -> Result<PathBuf, DataError> {
    for candidate in [dir.join(name), dir.join(format!("{name}.gz"))] {
        if crate::files::present(&candidate) {
            crate::files::check_regular(&candidate)?;
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

#[cfg(test)]
mod tests {
    use std::io::Write as _;

    use super::*;

    /// A reader that fails the test once more than `limit` bytes have been pulled from it.
    struct Limited<R> {
        inner: R,
        pulled: usize,
        limit: usize,
    }

    impl<R: Read> Read for Limited<R> {
        fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
            assert!(
                self.pulled <= self.limit,
                "read {} bytes, far past the size the header declares",
                self.pulled
            );
            let n = self.inner.read(buf)?;
            self.pulled += n;
            Ok(n)
        }
    }

    /// IDX header of a one-dimensional array of `n` bytes.
    fn header(n: u32) -> Vec<u8> {
        let mut h = vec![0, 0, 8, 1];
        h.extend_from_slice(&n.to_be_bytes());
        h
    }

    #[test]
    fn reading_stops_one_byte_after_the_declared_size() {
        // 1000 bytes declared, endless data after them: an error after 1001, not after 2 GiB.
        let endless = std::io::Cursor::new(header(1000)).chain(std::io::repeat(7));
        let reader = Limited {
            inner: endless,
            pulled: 0,
            limit: 1 << 20,
        };
        let err = decode(reader, false, Path::new("endless")).unwrap_err();
        assert!(err.to_string().contains("trailing bytes"), "{err}");
        let exact = header(3).into_iter().chain([1, 2, 3]).collect::<Vec<u8>>();
        assert_eq!(
            decode(&exact[..], false, Path::new("exact")).unwrap().data,
            [1, 2, 3]
        );
    }

    #[test]
    fn a_small_gz_is_inflated_only_as_far_as_its_header_declares() {
        // 16 bytes declared, then 256 MiB of zeros: a .gz of about 256 KiB.
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        gz.write_all(&header(16)).unwrap();
        let zeros = vec![0u8; 1 << 20];
        for _ in 0..256 {
            gz.write_all(&zeros).unwrap();
        }
        let gz = gz.finish().unwrap();
        let reader = Limited {
            inner: &gz[..],
            pulled: 0,
            limit: gz.len() / 2,
        };
        let err = decode(reader, true, Path::new("bomb.gz")).unwrap_err();
        assert!(err.to_string().contains("trailing bytes"), "{err}");
    }

    #[test]
    fn a_header_declaring_more_than_the_limit_is_refused_before_reading() {
        let mut h = vec![0, 0, 8, 2];
        h.extend_from_slice(&65536u32.to_be_bytes());
        h.extend_from_slice(&65536u32.to_be_bytes());
        let reader = Limited {
            inner: std::io::Cursor::new(h).chain(std::io::repeat(0)),
            pulled: 0,
            limit: 1 << 16,
        };
        let err = decode(reader, false, Path::new("huge")).unwrap_err();
        assert!(err.to_string().contains("more than 2 GiB"), "{err}");
    }
}
