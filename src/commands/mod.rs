//! One file per command: turn the command's `Args` into a library call and
//! print the result. No computation lives here.

pub mod completions;
pub mod download;
pub mod dpo;
pub mod estimate_vram;
pub mod eval;
pub mod finetune;
pub mod infer;
pub mod menu;
pub mod merge;
pub mod pipeline;
pub mod serving;
pub mod training;

use std::path::{Path, PathBuf};

use crate::error::Exit;

use crate::planner::device::{self, GpuSource, Inventory};

/// Threads for the whole process, set once at start before any thread
/// exists: `threads` (a command's --threads) sizes rayon's pool and candle's
/// matmuls (which follow `RAYON_NUM_THREADS`); `training` keeps candle's
/// element-wise pool at one thread unless `CANDLE_NUM_THREADS` says
/// otherwise: it spins beside the matmul pool and, on a machine with few
/// cores or shared with other work, they spin against each other (a SmolLM2
/// step measured 3-4x slower on 2 busy cores), while element-wise work is
/// small next to the matmuls. `SWIFT_NO_POOL` in the environment turns the
/// decode path's spinning pool off (`model::pool`).
pub fn init_threads(threads: Option<usize>, training: bool) -> anyhow::Result<()> {
    if threads == Some(0) {
        return Err(Exit::Usage("--threads must be at least 1".into()).into());
    }
    if training && std::env::var_os("CANDLE_NUM_THREADS").is_none() {
        std::env::set_var("CANDLE_NUM_THREADS", "1");
    }
    if let Some(n) = threads {
        std::env::set_var("RAYON_NUM_THREADS", n.to_string());
        // Fails only when the pool already exists (a second call in tests).
        let _ = rayon::ThreadPoolBuilder::new()
            .num_threads(n)
            .build_global();
    }
    if std::env::var_os("SWIFT_NO_POOL").is_some() {
        crate::model::pool::disable();
    }
    Ok(())
}

/// The machine's devices as the commands plan for them. The environment is
/// read here, once: `SWIFT_NO_GPU` hides the GPUs; `SWIFT_FAKE_GPUS` reports
/// the GPUs it describes instead of probing (`nvidia-smi` CSV lines separated
/// by `;`: `0, NVIDIA H100 80GB HBM3, 81559, 81000, 9.0`, sizes in MiB), for
/// tests and for planning on a machine you describe.
pub fn inventory() -> anyhow::Result<Inventory> {
    let source = if let Some(v) = std::env::var_os("SWIFT_FAKE_GPUS") {
        let text = v.to_string_lossy();
        let gpus = device::parse_nvidia_smi(&text);
        if gpus.is_empty() && !text.trim().is_empty() {
            anyhow::bail!(
                "SWIFT_FAKE_GPUS: expected nvidia-smi CSV lines such as `0, NVIDIA H100 80GB HBM3, 81559, 81000, 9.0` (index, name, total MiB, free MiB, compute capability), got `{text}`"
            );
        }
        GpuSource::Given(gpus)
    } else if std::env::var_os("SWIFT_NO_GPU").is_some() {
        GpuSource::None
    } else {
        GpuSource::Probe
    };
    Ok(device::detect(source))
}

/// A `--model` value: a path on disk is used as it is; `org/name` (or
/// `hf::org/name`, `ms::org/name`) that is not a path is fetched from the hub
/// (only `files`, globs allowed; empty = the whole repository) and the local
/// snapshot folder is returned.
pub fn resolve_model_arg(model: &Path, files: &[&str]) -> anyhow::Result<PathBuf> {
    if model.exists() {
        return Ok(model.to_path_buf());
    }
    let text = model.to_string_lossy();
    let (prefix, id) = crate::hub::split_hub_prefix(&text);
    let looks_like_id =
        id.split('/').count() == 2 && !id.starts_with('.') && !id.ends_with(".gguf");
    if prefix.is_some() || looks_like_id {
        let opts = crate::hub::HubOptions::from_env();
        return crate::hub::resolve_model(&text, &opts, files);
    }
    Ok(model.to_path_buf())
}
