//! Opening dataset files: regular files only.
//!
//! Opening a FIFO for reading blocks until some process writes to it, and a character device
//! such as `/dev/zero` never ends: a file of that kind named like a dataset file would hang the
//! loader. Such paths are refused with an error naming them, before they are opened.

use std::fs::{File, Metadata};
use std::path::Path;

use crate::DataError;

/// What kind of file `meta` describes, for messages.
fn kind(meta: &Metadata) -> &'static str {
    let t = meta.file_type();
    if t.is_dir() {
        return "a directory";
    }
    #[cfg(unix)]
    {
        use std::os::unix::fs::FileTypeExt;
        if t.is_fifo() {
            return "a FIFO (named pipe)";
        }
        if t.is_char_device() || t.is_block_device() {
            return "a device";
        }
        if t.is_socket() {
            return "a socket";
        }
    }
    "not a regular file"
}

fn not_regular(path: &Path, meta: &Metadata) -> DataError {
    DataError::format(
        path,
        format!("is {}: dataset files must be regular files", kind(meta)),
    )
}

/// Whether something (of any kind, links followed) is at `path`: a dataset file that is there
/// but is not a regular file must be reported as such, not as missing.
pub(crate) fn present(path: &Path) -> bool {
    std::fs::metadata(path).is_ok()
}

/// Checks that `path` (links followed) is a regular file, without opening it.
pub(crate) fn check_regular(path: &Path) -> Result<Metadata, DataError> {
    let meta = std::fs::metadata(path).map_err(|source| DataError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    if !meta.is_file() {
        return Err(not_regular(path, &meta));
    }
    Ok(meta)
}

/// Opens `path` for reading if it is a regular file; returns it with its length.
pub(crate) fn open_regular(path: &Path) -> Result<(File, u64), DataError> {
    check_regular(path)?;
    let io = |source| DataError::Io {
        path: path.to_path_buf(),
        source,
    };
    let file = File::open(path).map_err(io)?;
    // Checked again on the open file, in case the path was replaced in between.
    let meta = file.metadata().map_err(io)?;
    if !meta.is_file() {
        return Err(not_regular(path, &meta));
    }
    Ok((file, meta.len()))
}
