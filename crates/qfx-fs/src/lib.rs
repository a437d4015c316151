//! Files qfx writes and reads: a crash, or another thread or process writing the same file,
//! never leaves a half-written one in place ([`write_atomic`]), and a FIFO or device where a
//! file is expected is refused, never waited on ([`read_regular`] and its siblings).
//!
//! [`write_atomic`] writes into a fresh, uniquely named temporary file beside the target,
//! flushes it to disk and renames it over the target. A rename within one directory is atomic,
//! so a reader sees the old file or the new one, never a mix; concurrent writers of the same
//! target each have their own temporary file, so the last rename wins with one complete payload.
//!
//! ```
//! # fn main() -> std::io::Result<()> {
//! let dir = tempfile::tempdir()?;
//! let path = dir.path().join("config.toml");
//! qfx_fs::write_atomic(&path, b"seed = 7\n")?;
//! qfx_fs::write_atomic(&path, b"seed = 8\n")?; // replaces the file in one step
//! assert_eq!(std::fs::read(&path)?, b"seed = 8\n");
//! # Ok(())
//! # }
//! ```

use std::io::Write;
use std::path::Path;

mod regular;

pub use regular::{check_regular, file_kind, open_regular, read_regular, read_to_string_regular};

/// Writes `bytes` to `path` atomically: into a new temporary file in the same directory, synced
/// to disk, then renamed over `path` (and, on Unix, the directory synced so the rename itself
/// survives a crash). Readers see the old file or the new one, never a mix; on error `path` is
/// untouched and the temporary file is removed.
///
/// The file gets the permissions a plain `File::create` would give it (`0o666` less the umask
/// on Unix), not the owner-only mode of temporary files.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let dir = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    // A name that tells whose temporary file a leftover (after a power cut) was.
    let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("file");
    let prefix = format!(".{name}.");
    let mut builder = tempfile::Builder::new();
    builder.prefix(&prefix).suffix(".tmp");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        builder.permissions(std::fs::Permissions::from_mode(0o666));
    }
    // Dropping the temporary file on any error below deletes it.
    let mut tmp = builder.tempfile_in(dir)?;
    tmp.write_all(bytes)?;
    tmp.as_file().sync_all()?;
    tmp.persist(path).map_err(|e| e.error)?;
    sync_dir(dir)
}

/// Flushes a directory's entries, so a rename into it is durable.
#[cfg(unix)]
fn sync_dir(dir: &Path) -> std::io::Result<()> {
    std::fs::File::open(dir)?.sync_all()
}

/// Directories cannot be opened and synced this way outside Unix; the rename is still atomic.
#[cfg(not(unix))]
fn sync_dir(_dir: &Path) -> std::io::Result<()> {
    Ok(())
}
