//! What the planner reads from a model on disk: its hyper-parameters and,
//! for a GGUF, the bytes its decoder linears and the rest take as stored.

use std::path::Path;

use anyhow::{bail, Context, Result};

use crate::model::config::ModelConfig;

/// What a model path holds: its config, and for a GGUF the bytes its linear
/// layers and the rest take as stored.
pub struct ModelSource {
    pub config: ModelConfig,
    pub gguf_bytes: Option<(u64, u64)>,
}

pub fn read_model(path: &Path) -> Result<ModelSource> {
    if !path.exists() {
        bail!("{} does not exist", path.display());
    }
    let is_gguf = path.is_file()
        && path
            .extension()
            .is_some_and(|e| e.eq_ignore_ascii_case("gguf"));
    if is_gguf {
        let g = crate::model::gguf::GgufFile::open(path)?;
        let config = ModelConfig::from_gguf(&g)
            .with_context(|| format!("reading hyper-parameters from {}", path.display()))?;
        let mut linear = 0u64;
        let mut other = 0u64;
        for t in &g.tensors {
            let is_linear = t.name.starts_with("blk.")
                && [
                    "attn_q.",
                    "attn_k.",
                    "attn_v.",
                    "attn_output.",
                    "ffn_gate.",
                    "ffn_up.",
                    "ffn_down.",
                ]
                .iter()
                .any(|p| t.name.contains(p))
                && t.name.ends_with(".weight");
            if is_linear {
                linear += t.n_bytes();
            } else {
                other += t.n_bytes();
            }
        }
        return Ok(ModelSource {
            config,
            gguf_bytes: Some((linear, other)),
        });
    }
    Ok(ModelSource {
        config: ModelConfig::from_path(path)?,
        gguf_bytes: None,
    })
}
