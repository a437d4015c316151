//! Reading regular files only.
//!
//! Opening a FIFO for reading blocks until some process writes to it, and a character device
//! such as `/dev/zero` never ends: a path of that kind where qfx expects a file (a
//! configuration, a checkpoint, a model, a dataset) would hang the command. These functions
//! look at what the path is (links followed) before opening it, refuse anything but a regular
//! file with an error that says what it is, and check the opened file again in case the path
//! was replaced in between.

use std::fs::{File, Metadata};
use std::io::{Error, ErrorKind, Read};
use std::path::Path;

/// What kind of file `meta` describes, for messages: `a FIFO (named pipe)`, `a device`,
/// `a socket`, `a directory`, `a regular file`.
pub fn file_kind(meta: &Metadata) -> &'static str {
    let t = meta.file_type();
    if t.is_file() {
        return "a regular file";
    }
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
    "a special file"
}

/// The error for a path that exists but is not a regular file. Its message does not repeat
/// the path (callers name it, as they do for every other I/O error).
fn not_regular(meta: &Metadata) -> Error {
    let kind = if meta.is_dir() {
        ErrorKind::IsADirectory
    } else {
        ErrorKind::InvalidInput
    };
    Error::new(
        kind,
        format!("it is {}, not a regular file", file_kind(meta)),
    )
}

/// Checks that `path` (links followed) is a regular file, without opening it; returns its
/// metadata. The error says what it is instead (a FIFO, a device, a socket, a directory), or
/// is the ordinary one (e.g. `NotFound`).
pub fn check_regular(path: &Path) -> std::io::Result<Metadata> {
    let meta = std::fs::metadata(path)?;
    if !meta.is_file() {
        return Err(not_regular(&meta));
    }
    Ok(meta)
}

/// Opens `path` for reading if it is a regular file ([`check_regular`]).
pub fn open_regular(path: &Path) -> std::io::Result<File> {
    check_regular(path)?;
    let file = File::open(path)?;
    // Checked again on the open file, in case the path was replaced in between.
    let meta = file.metadata()?;
    if !meta.is_file() {
        return Err(not_regular(&meta));
    }
    Ok(file)
}

/// Reads the whole of `path` if it is a regular file ([`check_regular`]).
pub fn read_regular(path: &Path) -> std::io::Result<Vec<u8>> {
    let mut file = open_regular(path)?;
    let mut bytes = Vec::new();
    file.read_to_end(&mut bytes)?;
    Ok(bytes)
}

/// Reads the whole of `path` as UTF-8 text if it is a regular file ([`check_regular`]).
pub fn read_to_string_regular(path: &Path) -> std::io::Result<String> {
    let mut file = open_regular(path)?;
    let mut text = String::new();
    file.read_to_string(&mut text)?;
    Ok(text)
}
