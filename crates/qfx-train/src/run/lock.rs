//! One writer per run directory: an advisory lock on `run.lock`, held for as long as a run
//! trains (or a PTQ writes, or the demo clears its runs). Two processes writing one run would
//! interleave their metrics and leave checkpoints of different configurations side by side.
//!
//! The lock is the operating system's file lock (`File::try_lock`, `flock` on Unix): it goes
//! with the process, so a run killed by SIGKILL or a crash leaves nothing to clean up by hand.
//! The file is never deleted (deleting a lock file lets two processes lock two different files
//! of the same name); while held, it says who holds it — process id, host, command and start
//! time — for the message the next process gets. Once a process holds the lock, nothing else
//! writes the run, so temporary files that writers left behind when they died are removed.

use std::fs::{File, OpenOptions, TryLockError};
use std::io::{Read, Seek, Write};
use std::path::Path;
use std::time::{SystemTime, UNIX_EPOCH};

use super::dir::RunDir;
use super::io_err;
use crate::error::TrainError;

/// The lock of a run directory, released when dropped (or when the process ends, however it
/// ends).
#[derive(Debug)]
pub struct RunLock {
    _file: File,
    was_new: bool,
}

impl RunLock {
    /// Takes the lock of `run`, creating the directory (and `run.lock`) if needed, then removes
    /// the temporary files of writers that died. Refused, naming the holder, when another
    /// process holds it; `run` naming a file is refused with its path.
    pub fn acquire(run: &RunDir) -> Result<RunLock, TrainError> {
        ensure_dir(run.root())?;
        let path = run.lock_file();
        // Never a link (writing the holder would write through it) or a special file.
        let was_new = match std::fs::symlink_metadata(&path) {
            Ok(m) if m.is_file() => false,
            Ok(m) => {
                return Err(TrainError::Io(format!(
                    "{} is {}, not the regular lock file qfx writes",
                    path.display(),
                    if m.file_type().is_symlink() {
                        "a symbolic link"
                    } else {
                        qfx_fs::file_kind(&m)
                    }
                )))
            }
            Err(_) => true,
        };
        let mut file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)
            .map_err(|e| io_err(&path, e))?;
        match file.try_lock() {
            Ok(()) => {}
            Err(TryLockError::WouldBlock) => {
                let mut holder = String::new();
                let _ = file.read_to_string(&mut holder);
                let holder = holder.trim();
                let holder = if holder.is_empty() {
                    "another process (it has not said which yet)"
                } else {
                    holder
                };
                return Err(TrainError::InUse(format!(
                    "{} is in use by {holder}; wait for it to finish, or stop it (Ctrl-C saves \
                     a checkpoint) and resume",
                    run.root().display()
                )));
            }
            Err(TryLockError::Error(e)) => {
                return Err(TrainError::Io(format!(
                    "cannot lock {}: {e}",
                    path.display()
                )))
            }
        }
        let holder = holder();
        file.set_len(0)
            .and_then(|()| file.rewind())
            .and_then(|()| file.write_all(holder.as_bytes()))
            .and_then(|()| file.sync_data())
            .map_err(|e| io_err(&path, e))?;
        clean_stale(run);
        Ok(RunLock {
            _file: file,
            was_new,
        })
    }

    /// Whether `run.lock` did not exist before: the directory was not a qfx run directory.
    pub fn was_new(&self) -> bool {
        self.was_new
    }
}

/// Makes sure `path` is a directory, creating it if needed; a file in its place is refused
/// with the path (not a bare "File exists").
pub(super) fn ensure_dir(path: &Path) -> Result<(), TrainError> {
    match std::fs::metadata(path) {
        Ok(m) if m.is_dir() => Ok(()),
        Ok(m) => Err(TrainError::Io(format!(
            "{} exists and is not a directory (it is {})",
            path.display(),
            qfx_fs::file_kind(&m)
        ))),
        Err(_) => std::fs::create_dir_all(path).map_err(|e| {
            TrainError::Io(format!("cannot create directory {}: {e}", path.display()))
        }),
    }
}

/// Who holds the lock: `pid N on host H since T: COMMAND`.
fn holder() -> String {
    let args: Vec<String> = std::env::args()
        .enumerate()
        .map(|(i, a)| {
            // The program by its name, not the path it was started by.
            let a = if i == 0 {
                Path::new(&a)
                    .file_name()
                    .map_or(a.clone(), |n| n.to_string_lossy().to_string())
            } else {
                a
            };
            if a.is_empty() || a.contains(char::is_whitespace) {
                format!("'{a}'")
            } else {
                a
            }
        })
        .collect();
    let since = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    format!(
        "pid {} on host {} since {}: {}\n",
        std::process::id(),
        host_name(),
        utc(since),
        args.join(" ")
    )
}

fn host_name() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .or_else(|| std::env::var("HOSTNAME").ok())
        .map(|h| h.trim().to_string())
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "(unknown)".to_string())
}

/// `YYYY-MM-DD hh:mm:ss UTC` for seconds since the Unix epoch (the civil-from-days algorithm
/// of the proleptic Gregorian calendar).
fn utc(secs: u64) -> String {
    let (days, rem) = ((secs / 86_400) as i64, secs % 86_400);
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + (month <= 2) as i64;
    format!(
        "{year:04}-{month:02}-{day:02} {:02}:{:02}:{:02} UTC",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

/// Removes what writers that died left behind; called with the lock held, so no qfx process is
/// writing the run. Checkpoint staging folders (`checkpoints/.tmp-<name>-<pid>`) go unless
/// their process is alive (a qfx from before run locks might still be writing); the hidden
/// temporary files of atomic writes (`.<file>.<random>.tmp`) of the files a run writes go.
/// Nothing else is touched.
fn clean_stale(run: &RunDir) {
    let own = [
        run.config(),
        run.metrics(),
        run.ir(),
        run.init_ir(),
        run.latest(),
    ];
    for file in own {
        let (Some(dir), Some(name)) = (file.parent(), file.file_name()) else {
            continue;
        };
        let prefix = format!(".{}.", name.to_string_lossy());
        for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
            let n = entry.file_name().to_string_lossy().to_string();
            let is_file = entry.file_type().is_ok_and(|t| t.is_file());
            if is_file && n.starts_with(&prefix) && n.ends_with(".tmp") {
                let _ = std::fs::remove_file(entry.path());
            }
        }
    }
    for entry in std::fs::read_dir(run.checkpoints())
        .into_iter()
        .flatten()
        .flatten()
    {
        let n = entry.file_name().to_string_lossy().to_string();
        let Some(pid) = RunDir::staging_pid(&n) else {
            continue;
        };
        let is_dir = entry.file_type().is_ok_and(|t| t.is_dir());
        if is_dir && (pid == std::process::id() || !process_alive(pid)) {
            let _ = std::fs::remove_dir_all(entry.path());
        }
    }
}

/// Whether process `pid` exists; where that cannot be told, assumed so (nothing is removed).
fn process_alive(pid: u32) -> bool {
    if cfg!(target_os = "linux") {
        Path::new("/proc").join(pid.to_string()).exists()
    } else {
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn utc_dates() {
        assert_eq!(utc(0), "1970-01-01 00:00:00 UTC");
        assert_eq!(utc(951_782_400), "2000-02-29 00:00:00 UTC");
        assert_eq!(utc(1_700_000_000), "2023-11-14 22:13:20 UTC");
        assert_eq!(utc(4_107_542_399), "2100-02-28 23:59:59 UTC");
    }

    #[test]
    fn the_holder_names_process_host_and_command() {
        let h = holder();
        assert!(
            h.starts_with(&format!("pid {} on host ", std::process::id())),
            "{h}"
        );
        assert!(h.contains(" since ") && h.contains(" UTC: "), "{h}");
    }
}
