//! Opening dataset files: regular files only (`qfx_fs::open_regular`, which says what a FIFO or
//! device named like a dataset file is instead of waiting on it), with errors naming the file.

use std::fs::{File, Metadata};
use std::io::Read as _;
use std::path::Path;

use crate::DataError;

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> DataError + '_ {
    move |source| DataError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// Whether something (of any kind, links followed) is at `path`: a dataset file that is there
/// but is not a regular file must be reported as such, not as missing.
pub(crate) fn present(path: &Path) -> bool {
    std::fs::metadata(path).is_ok()
}

/// Checks that `path` (links followed) is a regular file, without opening it.
pub(crate) fn check_regular(path: &Path) -> Result<Metadata, DataError> {
    qfx_fs::check_regular(path).map_err(io(path))
}

/// Opens `path` for reading if it is a regular file; returns it with its length.
pub(crate) fn open_regular(path: &Path) -> Result<(File, u64), DataError> {
    let file = qfx_fs::open_regular(path).map_err(io(path))?;
    let len = file.metadata().map_err(io(path))?.len();
    Ok((file, len))
}

/// Reads the regular file `path` whole, refusing one larger than `max` bytes, also when it grows
/// while it is read; `too_big` words the refusal for a file of that many bytes.
pub(crate) fn read_bounded(
    path: &Path,
    max: u64,
    too_big: impl Fn(u64) -> String,
) -> Result<Vec<u8>, DataError> {
    let (file, len) = open_regular(path)?;
    if len > max {
        return Err(DataError::format(path, too_big(len)));
    }
    let mut bytes = Vec::with_capacity(len as usize);
    file.take(max + 1)
        .read_to_end(&mut bytes)
        .map_err(io(path))?;
    if bytes.len() as u64 > max {
        return Err(DataError::format(path, too_big(bytes.len() as u64)));
    }
    Ok(bytes)
}
