//! Checkpoints: `checkpoint-N/` folders written under a temporary name and
//! renamed, found again for `--resume-from-checkpoint DIR|latest`, and
//! rotated by `--save-total-limit`.
//!
//! A checkpoint holds the trainable weights (the peft adapter, or the full
//! model as an HF folder), `optimizer.safetensors` (AdamW moments),
//! `trainer_state.json` (step, epoch, log history, data position and the
//! random-number scheme) and the tokenizer.

use anyhow::{bail, Context, Result};
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

/// A sibling temporary name for `path` (same folder, so rename is atomic).
pub fn tmp_name(path: &Path) -> PathBuf {
    let name = path
        .file_name()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default();
    path.with_file_name(format!(".{name}.tmp-{}", std::process::id()))
}

/// Write a file through a temporary name and rename it into place.
pub fn write_atomic(path: &Path, data: &[u8]) -> Result<()> {
    if let Some(parent) = path.parent() {
        if !parent.as_os_str().is_empty() {
            std::fs::create_dir_all(parent)
                .with_context(|| format!("creating {}", parent.display()))?;
        }
    }
    let tmp = tmp_name(path);
    std::fs::write(&tmp, data).with_context(|| format!("writing {}", tmp.display()))?;
    std::fs::rename(&tmp, path).with_context(|| format!("renaming to {}", path.display()))
}

/// Where the data stream stands after a step: a pure function of the seed
/// and the step, recorded so a reader can see it.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct DataPosition {
    /// Epoch of the next micro-batch (0-based).
    pub epoch: usize,
    /// Index of the next micro-batch within its epoch.
    pub micro_batch: usize,
    /// Micro-batches per epoch.
    pub micro_batches_per_epoch: usize,
}

/// `trainer_state.json`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct TrainerState {
    /// Optimizer steps done.
    pub global_step: usize,
    pub max_steps: usize,
    pub epoch: f64,
    pub seed: u64,
    pub data_position: DataPosition,
    /// How random numbers are drawn: data order and dropout masks are derived
    /// from (seed, epoch) and (seed, step, micro-batch), so no generator
    /// state needs saving.
    pub rng: String,
    /// Every logged record so far (as in logging.jsonl).
    pub log_history: Vec<serde_json::Value>,
    pub best_eval_loss: Option<f64>,
    pub tokens_seen: u64,
}

impl TrainerState {
    pub fn read(dir: &Path) -> Result<TrainerState> {
        let p = dir.join("trainer_state.json");
        let text =
            std::fs::read_to_string(&p).with_context(|| format!("reading {}", p.display()))?;
        serde_json::from_str(&text).with_context(|| format!("parsing {}", p.display()))
    }
}

/// The step number of a `checkpoint-N` folder name.
pub fn step_of(path: &Path) -> Option<usize> {
    path.file_name()?
        .to_str()?
        .strip_prefix("checkpoint-")?
        .parse()
        .ok()
}

/// Checkpoint folders in `output_dir`, by step, oldest first.
pub fn list(output_dir: &Path) -> Result<Vec<(usize, PathBuf)>> {
    let mut v = Vec::new();
    if !output_dir.exists() {
        return Ok(v);
    }
    for e in std::fs::read_dir(output_dir)
        .with_context(|| format!("reading {}", output_dir.display()))?
    {
        let p = e?.path();
        if p.is_dir() && p.join("trainer_state.json").exists() {
            if let Some(s) = step_of(&p) {
                v.push((s, p));
            }
        }
    }
    v.sort();
    Ok(v)
}

/// `--resume-from-checkpoint`: a folder, or `latest` (the newest complete
/// checkpoint in `output_dir`).
pub fn resolve(spec: &str, output_dir: &Path) -> Result<PathBuf> {
    if spec == "latest" || spec == "last" {
        return match list(output_dir)?.pop() {
            Some((_, p)) => Ok(p),
            None => bail!(
                "--resume-from-checkpoint latest: no checkpoint-N folder in {}",
                output_dir.display()
            ),
        };
    }
    let p = PathBuf::from(spec);
    if !p.join("trainer_state.json").exists() {
        bail!("--resume-from-checkpoint {spec}: not a checkpoint (no trainer_state.json in it)");
    }
    Ok(p)
}

/// Move a fully written temporary folder to `dest`, replacing an old one.
pub fn commit_dir(tmp: &Path, dest: &Path) -> Result<()> {
    if dest.exists() {
        std::fs::remove_dir_all(dest).with_context(|| format!("removing {}", dest.display()))?;
    }
    std::fs::rename(tmp, dest)
        .with_context(|| format!("renaming {} to {}", tmp.display(), dest.display()))
}

/// Keep the newest `limit` checkpoints (and never delete `keep`).
pub fn rotate(output_dir: &Path, limit: usize, keep: Option<&Path>) -> Result<Vec<PathBuf>> {
    let all = list(output_dir)?;
    let mut removed = Vec::new();
    if all.len() <= limit {
        return Ok(removed);
    }
    let n = all.len() - limit;
    for (_, p) in all.into_iter().take(n) {
        if keep.is_some_and(|k| k == p) {
            continue;
        }
        std::fs::remove_dir_all(&p).with_context(|| format!("removing {}", p.display()))?;
        removed.push(p);
    }
    Ok(removed)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn latest_and_rotation() {
        let dir = tempfile::tempdir().unwrap();
        for s in [2, 10, 4] {
            let p = dir.path().join(format!("checkpoint-{s}"));
            std::fs::create_dir_all(&p).unwrap();
            std::fs::write(p.join("trainer_state.json"), "{}").unwrap();
        }
        // An unfinished one (no state) is not a checkpoint.
        std::fs::create_dir_all(dir.path().join("checkpoint-12")).unwrap();
        assert_eq!(
            resolve("latest", dir.path()).unwrap(),
            dir.path().join("checkpoint-10")
        );
        let removed = rotate(dir.path(), 2, None).unwrap();
        assert_eq!(removed, vec![dir.path().join("checkpoint-2")]);
        assert!(resolve("/nonexistent", dir.path()).is_err());
        write_atomic(&dir.path().join("a/b.json"), b"x").unwrap();
        assert_eq!(std::fs::read(dir.path().join("a/b.json")).unwrap(), b"x");
    }
}
