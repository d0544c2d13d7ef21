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
