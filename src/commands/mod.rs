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

use std::path::{Path, PathBuf};

use crate::planner::device::{self, GpuSource, Inventory};

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
