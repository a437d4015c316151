//! The layout of a run directory and of a checkpoint inside it: every file and folder name of a
//! run is spelled here and nowhere else, so the trainer, the CLI and the tests cannot disagree.

use std::path::{Path, PathBuf};

use crate::error::TrainError;

const CONFIG: &str = "config.toml";
const METRICS: &str = "metrics.jsonl";
const CHECKPOINTS: &str = "checkpoints";
const LATEST: &str = "latest";
const INIT_IR: &str = "model.init.ir.json";
const LOCK: &str = "run.lock";
const STEP_PREFIX: &str = "step-";
const STAGING_PREFIX: &str = ".tmp-";

/// A run directory (see the [module documentation](super) for what each file holds).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RunDir {
    root: PathBuf,
}

/// A checkpoint found in a run directory ([`RunDir::find_checkpoint`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Found {
    /// The checkpoint.
    pub checkpoint: CheckpointDir,
    /// Set when `checkpoints/latest` was missing or damaged and the checkpoint was found by
    /// scanning instead: what was wrong, for a warning.
    pub recovered: Option<String>,
}

impl RunDir {
    /// `qfx report`'s table (its default output folder is the run directory).
    pub const REPORT: &'static str = "report.md";
    /// `qfx report`'s training curves.
    pub const REPORT_CURVES: &'static str = "curves.svg";
    /// `qfx report`'s binary-point panels.
    pub const REPORT_POINTS: &'static str = "binary_points.svg";
    /// `qfx report`'s hardware cost and β over the epochs.
    pub const REPORT_COST: &'static str = "cost.svg";
    /// Everything `qfx report` writes.
    pub const REPORT_FILES: [&'static str; 4] = [
        Self::REPORT,
        Self::REPORT_CURVES,
        Self::REPORT_POINTS,
        Self::REPORT_COST,
    ];

    /// The run directory at `root` (nothing is created or checked).
    pub fn new(root: impl Into<PathBuf>) -> RunDir {
        RunDir { root: root.into() }
    }

    /// The directory itself.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// `config.toml`: the configuration the run was started with.
    pub fn config(&self) -> PathBuf {
        self.root.join(CONFIG)
    }

    /// `metrics.jsonl`: one JSON object per finished epoch.
    pub fn metrics(&self) -> PathBuf {
        self.root.join(METRICS)
    }

    /// `model.ir.json` ([`qfx_ir::IR_FILE`]): the exported model of a finished quantized run.
    pub fn ir(&self) -> PathBuf {
        self.root.join(qfx_ir::IR_FILE)
    }

    /// `model.init.ir.json`: the quantized model as calibrated, before any training.
    pub fn init_ir(&self) -> PathBuf {
        self.root.join(INIT_IR)
    }

    /// `run.lock`: the advisory lock a process holds while it writes the run, and who holds
    /// it ([`super::RunLock`]).
    pub fn lock_file(&self) -> PathBuf {
        self.root.join(LOCK)
    }

    /// `checkpoints/`: the checkpoint directories and `latest`.
    pub fn checkpoints(&self) -> PathBuf {
        self.root.join(CHECKPOINTS)
    }

    /// `checkpoints/latest`: a file holding the name of the newest complete checkpoint.
    pub fn latest(&self) -> PathBuf {
        self.checkpoints().join(LATEST)
    }

    /// The checkpoint `checkpoints/<name>`.
    pub fn checkpoint(&self, name: &str) -> CheckpointDir {
        CheckpointDir::new(self.checkpoints().join(name))
    }

    /// The names of the checkpoint directories (`step-…`, complete or not), oldest first.
    pub fn checkpoint_names(&self) -> Vec<String> {
        let mut names: Vec<String> = std::fs::read_dir(self.checkpoints())
            .map(|entries| {
                entries
                    .flatten()
                    .filter_map(|e| e.file_name().to_str().map(str::to_string))
                    .filter(|n| Self::is_checkpoint_name(n))
                    .collect()
            })
            .unwrap_or_default();
        names.sort_by_key(|n| step_order(n));
        names
    }

    /// Whether the directory holds a run that must not be started over: a `latest` (of any
    /// kind) or any checkpoint directory, complete or not.
    pub fn holds_run(&self) -> bool {
        std::fs::symlink_metadata(self.latest()).is_ok() || !self.checkpoint_names().is_empty()
    }

    /// The checkpoint `checkpoints/latest` names, checked to be complete; see
    /// [`Self::find_checkpoint`] for what happens when `latest` is missing or damaged.
    pub fn latest_checkpoint(&self) -> Result<CheckpointDir, TrainError> {
        Ok(self.find_checkpoint()?.checkpoint)
    }

    /// The run's current checkpoint: the one `checkpoints/latest` names when that is a complete
    /// checkpoint; otherwise (`latest` missing, unreadable, or naming something else) the
    /// newest complete checkpoint found by scanning, with what was wrong in
    /// [`Found::recovered`]. An error, saying why, only when there is no complete checkpoint.
    pub fn find_checkpoint(&self) -> Result<Found, TrainError> {
        let latest = self.latest();
        let problem = match qfx_fs::read_to_string_regular(&latest) {
            Ok(text) => {
                let name = text.trim();
                let usable = !name.is_empty()
                    && Self::is_checkpoint_name(name)
                    && !name.contains(['/', '\\'])
                    && self.checkpoint(name).is_complete();
                if usable {
                    return Ok(Found {
                        checkpoint: self.checkpoint(name),
                        recovered: None,
                    });
                }
                format!(
                    "{} names `{}`, which is not a complete checkpoint",
                    latest.display(),
                    name.escape_debug()
                )
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                format!("{} is missing", latest.display())
            }
            Err(e) => format!("cannot read {}: {e}", latest.display()),
        };
        let newest = self
            .checkpoint_names()
            .into_iter()
            .rev()
            .find(|n| self.checkpoint(n).is_complete());
        match newest {
            Some(name) => Ok(Found {
                recovered: Some(format!(
                    "{problem}; using the newest complete checkpoint, {name}"
                )),
                checkpoint: self.checkpoint(&name),
            }),
            None if self.checkpoints().is_dir() => Err(TrainError::Checkpoint(format!(
                "{} holds no complete checkpoint ({problem})",
                self.root.display()
            ))),
            None => Err(TrainError::Checkpoint(format!(
                "{} is neither a checkpoint (no {}) nor a run directory with checkpoints",
                self.root.display(),
                CheckpointDir::META
            ))),
        }
    }

    /// An unused checkpoint name for the state after `global_step` steps: `step-NNNNNNNN`, or
    /// `step-NNNNNNNN.1`… when that step was saved before (Ctrl-C right after an epoch's save),
    /// so `latest` never points at a directory that is being replaced.
    pub fn new_checkpoint_name(&self, global_step: usize) -> String {
        let base = format!("{STEP_PREFIX}{global_step:08}");
        (0..)
            .map(|i| match i {
                0 => base.clone(),
                i => format!("{base}.{i}"),
            })
            .find(|n| std::fs::symlink_metadata(self.checkpoints().join(n)).is_err())
            .expect("an unused name exists")
    }

    /// Where checkpoint `name` is assembled before it is renamed into place: hidden, and
    /// unique to this process.
    pub fn staging_dir(&self, name: &str) -> PathBuf {
        self.checkpoints()
            .join(format!("{STAGING_PREFIX}{name}-{}", std::process::id()))
    }

    /// Whether `name` (an entry of `checkpoints/`) is a checkpoint directory's name.
    pub fn is_checkpoint_name(name: &str) -> bool {
        name.starts_with(STEP_PREFIX)
    }

    /// The process id in a staging folder's name ([`Self::staging_dir`]), if `name` is one.
    pub fn staging_pid(name: &str) -> Option<u32> {
        let rest = name.strip_prefix(STAGING_PREFIX)?;
        let (checkpoint, pid) = rest.rsplit_once('-')?;
        Self::is_checkpoint_name(checkpoint)
            .then(|| pid.parse().ok())
            .flatten()
    }
}

/// Sorting key of a checkpoint name: its step, then its repeat suffix (`step-…12.1` after
/// `step-…12`); names that do not parse sort first.
fn step_order(name: &str) -> (u64, u64) {
    let rest = name.strip_prefix(STEP_PREFIX).unwrap_or("");
    let (step, again) = rest.split_once('.').unwrap_or((rest, "0"));
    (step.parse().unwrap_or(0), again.parse().unwrap_or(0))
}

/// One checkpoint directory: the model's tensors, the optimizer's, and `meta.json`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CheckpointDir {
    path: PathBuf,
}

impl CheckpointDir {
    /// The model's parameters and running statistics (safetensors).
    pub const MODEL: &'static str = "model.safetensors";
    /// The optimizer's state (safetensors).
    pub const OPTIMIZER: &'static str = "optimizer.safetensors";
    /// The metadata ([`super::CheckpointMeta`] as JSON), written last: its presence marks a
    /// complete checkpoint.
    pub const META: &'static str = "meta.json";

    /// The checkpoint directory at `path`.
    pub fn new(path: impl Into<PathBuf>) -> CheckpointDir {
        CheckpointDir { path: path.into() }
    }

    /// The directory itself.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The directory, owned.
    pub fn into_path(self) -> PathBuf {
        self.path
    }

    /// A file of the checkpoint: [`Self::MODEL`], [`Self::OPTIMIZER`] or [`Self::META`].
    pub fn file(&self, name: &str) -> PathBuf {
        self.path.join(name)
    }

    /// `model.safetensors`.
    pub fn model(&self) -> PathBuf {
        self.file(Self::MODEL)
    }

    /// `optimizer.safetensors`.
    pub fn optimizer(&self) -> PathBuf {
        self.file(Self::OPTIMIZER)
    }

    /// `meta.json`.
    pub fn meta(&self) -> PathBuf {
        self.file(Self::META)
    }

    /// Whether the checkpoint was completely written (its `meta.json` exists).
    pub fn is_complete(&self) -> bool {
        self.meta().is_file()
    }

    /// Whether something (of any kind) is at `meta.json`: the directory is meant as a
    /// checkpoint, so a `meta.json` that is not a regular file is reported as such.
    pub fn has_meta(&self) -> bool {
        std::fs::metadata(self.meta()).is_ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The layout is what stored runs and the README rely on: changing a name breaks them.
    #[test]
    fn the_layout_of_a_run_directory_is_stable() {
        let run = RunDir::new("r");
        let rel = |p: PathBuf| {
            p.strip_prefix("r")
                .unwrap()
                .to_string_lossy()
                .replace('\\', "/")
        };
        for (path, want) in [
            (run.config(), "config.toml"),
            (run.metrics(), "metrics.jsonl"),
            (run.ir(), "model.ir.json"),
            (run.init_ir(), "model.init.ir.json"),
            (run.checkpoints(), "checkpoints"),
            (run.latest(), "checkpoints/latest"),
            (
                run.checkpoint("step-00000012").model(),
                "checkpoints/step-00000012/model.safetensors",
            ),
            (
                run.checkpoint("step-00000012").optimizer(),
                "checkpoints/step-00000012/optimizer.safetensors",
            ),
            (
                run.checkpoint("step-00000012").meta(),
                "checkpoints/step-00000012/meta.json",
            ),
        ] {
            assert_eq!(rel(path), want);
        }
    }

    #[test]
    fn checkpoint_names_count_steps_and_never_reuse_a_directory() {
        let root = std::env::temp_dir().join(format!("qfx-rundir-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&root);
        let run = RunDir::new(&root);
        assert_eq!(run.new_checkpoint_name(12), "step-00000012");
        std::fs::create_dir_all(run.checkpoints().join("step-00000012")).unwrap();
        assert_eq!(run.new_checkpoint_name(12), "step-00000012.1");
        std::fs::create_dir_all(run.checkpoints().join("step-00000012.1")).unwrap();
        assert_eq!(run.new_checkpoint_name(12), "step-00000012.2");
        assert!(RunDir::is_checkpoint_name("step-00000012.1"));
        let staging = run.staging_dir("step-00000013");
        let staging = staging.file_name().unwrap().to_string_lossy().to_string();
        assert!(staging.starts_with('.'), "{staging}");
        assert!(!RunDir::is_checkpoint_name(&staging));
        assert!(!RunDir::is_checkpoint_name("latest"));
        std::fs::remove_dir_all(&root).unwrap();
    }

    #[test]
    fn without_a_usable_latest_the_newest_complete_checkpoint_is_found() {
        let root = std::env::temp_dir().join(format!("qfx-scan-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&root);
        let run = RunDir::new(&root);
        for (name, complete) in [
            ("step-00000012", true),
            ("step-00000012.1", true),
            ("step-00000009", true),
            ("step-00000020", false),
        ] {
            std::fs::create_dir_all(run.checkpoint(name).path()).unwrap();
            if complete {
                std::fs::write(run.checkpoint(name).meta(), "{}").unwrap();
            }
        }
        assert_eq!(
            run.checkpoint_names(),
            [
                "step-00000009",
                "step-00000012",
                "step-00000012.1",
                "step-00000020"
            ]
        );
        assert!(run.holds_run());
        for latest in [None, Some("step-00000020"), Some("garbage"), Some("../x")] {
            if let Some(l) = latest {
                std::fs::write(run.latest(), l).unwrap();
            }
            let found = run.find_checkpoint().unwrap();
            assert_eq!(found.checkpoint, run.checkpoint("step-00000012.1"));
            assert!(found.recovered.unwrap().contains("step-00000012.1"));
        }
        std::fs::write(run.latest(), "step-00000009").unwrap();
        let found = run.find_checkpoint().unwrap();
        assert_eq!(
            (found.checkpoint, found.recovered),
            (run.checkpoint("step-00000009"), None)
        );
        assert_eq!(RunDir::staging_pid(".tmp-step-00000012.1-4242"), Some(4242));
        assert_eq!(RunDir::staging_pid(".tmp-notes-4242"), None);
        assert_eq!(RunDir::staging_pid("step-00000012"), None);
        std::fs::remove_dir_all(&root).unwrap();
    }

    #[test]
    fn latest_must_name_a_complete_checkpoint() {
        let root = std::env::temp_dir().join(format!("qfx-latest-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&root);
        let run = RunDir::new(&root);
        let err = run.latest_checkpoint().unwrap_err().to_string();
        assert!(err.contains("neither a checkpoint"), "{err}");
        std::fs::create_dir_all(run.checkpoint("step-00000001").path()).unwrap();
        for named in ["step-00000001", "", "../elsewhere"] {
            std::fs::write(run.latest(), named).unwrap();
            let err = run.latest_checkpoint().unwrap_err().to_string();
            assert!(err.contains("not a complete checkpoint"), "{named}: {err}");
        }
        std::fs::write(run.checkpoint("step-00000001").meta(), "{}").unwrap();
        std::fs::write(run.latest(), "step-00000001\n").unwrap();
        assert_eq!(
            run.latest_checkpoint().unwrap(),
            run.checkpoint("step-00000001")
        );
        std::fs::remove_dir_all(&root).unwrap();
    }
}
