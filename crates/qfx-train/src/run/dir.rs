//! The layout of a run directory and of a checkpoint inside it: every file and folder name of a
//! run is spelled here and nowhere else, so the trainer, the CLI and the tests cannot disagree.

use std::path::{Path, PathBuf};

use crate::error::TrainError;

const CONFIG: &str = "config.toml";
const METRICS: &str = "metrics.jsonl";
const CHECKPOINTS: &str = "checkpoints";
const LATEST: &str = "latest";
const INIT_IR: &str = "model.init.ir.json";
const STEP_PREFIX: &str = "step-";

/// A run directory (see the [module documentation](super) for what each file holds).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RunDir {
    root: PathBuf,
}

impl RunDir {
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

    /// The checkpoint `checkpoints/latest` names, checked to be complete.
    pub fn latest_checkpoint(&self) -> Result<CheckpointDir, TrainError> {
        let latest = self.latest();
        let name = std::fs::read_to_string(&latest).map_err(|_| {
            TrainError::Checkpoint(format!(
                "{} is neither a checkpoint (no {}) nor a run directory with checkpoints",
                self.root.display(),
                CheckpointDir::META
            ))
        })?;
        let name = name.trim();
        if name.is_empty() || name.contains('/') || !self.checkpoint(name).is_complete() {
            return Err(TrainError::Checkpoint(format!(
                "{} names `{name}`, which is not a complete checkpoint",
                latest.display()
            )));
        }
        Ok(self.checkpoint(name))
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
            .find(|n| !self.checkpoints().join(n).exists())
            .expect("an unused name exists")
    }

    /// Where checkpoint `name` is assembled before it is renamed into place: hidden, and
    /// unique to this process.
    pub fn staging_dir(&self, name: &str) -> PathBuf {
        self.checkpoints()
            .join(format!(".tmp-{name}-{}", std::process::id()))
    }

    /// Whether `name` (an entry of `checkpoints/`) is a checkpoint directory's name.
    pub fn is_checkpoint_name(name: &str) -> bool {
        name.starts_with(STEP_PREFIX)
    }
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
