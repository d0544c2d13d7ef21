//! PEFT LoRA adapters at inference: `adapter_config.json` +
//! `adapter_model.safetensors` as peft writes them, attached to the matching
//! [`Linear`]s without merging.

use super::decoder::Model;
use super::linear::{Linear, Lora};
use anyhow::{bail, Context, Result};
use candle_core::{DType, Device, Tensor};
use serde_json::Value;
use std::collections::HashMap;
use std::path::Path;

/// What we read from `adapter_config.json`.
#[derive(Debug, Clone)]
pub struct AdapterConfig {
    pub r: usize,
    pub lora_alpha: f64,
    pub use_rslora: bool,
    pub lora_dropout: f32,
    /// Module names, or `None` for `all-linear`.
    pub target_modules: Option<Vec<String>>,
    pub rank_pattern: HashMap<String, usize>,
    pub alpha_pattern: HashMap<String, f64>,
}

impl AdapterConfig {
    /// Read and check `adapter_config.json` in `dir`.
    pub fn read(dir: &Path) -> Result<AdapterConfig> {
        let p = dir.join("adapter_config.json");
        let text =
            std::fs::read_to_string(&p).with_context(|| format!("reading {}", p.display()))?;
        let v: Value =
            serde_json::from_str(&text).with_context(|| format!("parsing {}", p.display()))?;
        let ptype = v.get("peft_type").and_then(Value::as_str).unwrap_or("LORA");
        if ptype != "LORA" {
            bail!(
                "{}: peft_type {ptype} is not supported (only LORA)",
                p.display()
            );
        }
        if v.get("use_dora").and_then(Value::as_bool).unwrap_or(false) {
            bail!("{}: DoRA adapters are not supported", p.display());
        }
        let r = v
            .get("r")
            .and_then(Value::as_u64)
            .context("adapter_config.json has no `r`")? as usize;
        let lora_alpha = v
            .get("lora_alpha")
            .and_then(Value::as_f64)
            .unwrap_or(r as f64);
        let target_modules = match v.get("target_modules") {
            Some(Value::String(s)) if s == "all-linear" => None,
            Some(Value::String(s)) => Some(vec![s.clone()]),
            Some(Value::Array(a)) => Some(
                a.iter()
                    .filter_map(|x| x.as_str().map(String::from))
                    .collect(),
            ),
            _ => None,
        };
        let pat_u = |k: &str| -> HashMap<String, usize> {
            v.get(k)
                .and_then(Value::as_object)
                .map(|o| {
                    o.iter()
                        .filter_map(|(k, v)| v.as_u64().map(|x| (k.clone(), x as usize)))
                        .collect()
                })
                .unwrap_or_default()
        };
        let alpha_pattern = v
            .get("alpha_pattern")
            .and_then(Value::as_object)
            .map(|o| {
                o.iter()
                    .filter_map(|(k, v)| v.as_f64().map(|x| (k.clone(), x)))
                    .collect()
            })
            .unwrap_or_default();
        Ok(AdapterConfig {
            r,
            lora_alpha,
            use_rslora: v
                .get("use_rslora")
                .and_then(Value::as_bool)
                .unwrap_or(false),
            lora_dropout: v.get("lora_dropout").and_then(Value::as_f64).unwrap_or(0.0) as f32,
            target_modules,
            rank_pattern: pat_u("rank_pattern"),
            alpha_pattern,
        })
    }

    /// The LoRA scale for a module (full dotted name), honouring the patterns.
    pub fn scale_for(&self, module: &str, r: usize) -> f64 {
        fn matches(module: &str, k: &str) -> bool {
            module == k || module.ends_with(&format!(".{k}"))
        }
        let alpha = self
            .alpha_pattern
            .iter()
            .find(|(k, _)| matches(module, k))
            .map(|(_, v)| *v)
            .unwrap_or(self.lora_alpha);
        let r = self
            .rank_pattern
            .iter()
            .find(|(k, _)| matches(module, k))
            .map(|(_, v)| *v)
            .unwrap_or(r);
        if self.use_rslora {
            alpha / (r as f64).sqrt()
        } else {
            alpha / r as f64
        }
    }
}

/// Strip peft's prefixes: `base_model.model.model.layers.0.self_attn.q_proj.lora_A.weight`
/// -> (`model.layers.0.self_attn.q_proj`, `A`).
fn split_name(name: &str) -> Option<(String, char)> {
    let n = name.strip_prefix("base_model.model.").unwrap_or(name);
    for (suffix, which) in [
        (".lora_A.weight", 'A'),
        (".lora_B.weight", 'B'),
        (".lora_A.default.weight", 'A'),
        (".lora_B.default.weight", 'B'),
    ] {
        if let Some(m) = n.strip_suffix(suffix) {
            return Some((m.to_string(), which));
        }
    }
    None
}

/// The adapter's `adapter_model.safetensors`, or an error saying why not
/// (missing, or only peft's older pickle `adapter_model.bin`).
pub fn weights_file(dir: &Path) -> Result<std::path::PathBuf> {
    let st = dir.join("adapter_model.safetensors");
    if !st.exists() {
        if dir.join("adapter_model.bin").exists() {
            bail!(
                "{}: adapter_model.bin (pickle) is not supported; save with safetensors",
                dir.display()
            );
        }
        bail!("{} is missing", st.display());
    }
    Ok(st)
}

/// Attach the adapter in `dir` to `model`. Returns how many layers got a LoRA.
pub fn apply(model: &mut Model, dir: &Path) -> Result<usize> {
    let cfg = AdapterConfig::read(dir)?;
    let st = weights_file(dir)?;
    let tensors = candle_core::safetensors::load(&st, &Device::Cpu)
        .with_context(|| format!("reading {}", st.display()))?;
    let mut pairs: HashMap<String, (Option<Tensor>, Option<Tensor>)> = HashMap::new();
    for (name, t) in tensors {
        let Some((module, which)) = split_name(&name) else {
            continue;
        };
        let e = pairs.entry(module).or_default();
        let t = t.to_dtype(DType::F32)?;
        if which == 'A' {
            e.0 = Some(t);
        } else {
            e.1 = Some(t);
        }
    }
    if pairs.is_empty() {
        bail!("{} holds no LoRA weights", st.display());
    }
    let name = dir
        .file_name()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_else(|| dir.display().to_string());
    let mut attached = 0;
    let mut keys: Vec<_> = pairs.keys().cloned().collect();
    keys.sort();
    for module in keys {
        let (a, b) = pairs.remove(&module).unwrap();
        let (Some(a), Some(b)) = (a, b) else {
            bail!("{}: {module} has only one of lora_A / lora_B", st.display());
        };
        let r = a.dims()[0];
        let lora = Lora {
            a,
            b,
            scale: cfg.scale_for(&module, r),
            dropout: cfg.lora_dropout,
            name: name.clone(),
        };
        let slot = find_linear(model, &module)
            .with_context(|| format!("{}: no layer named {module} in the model", st.display()))?;
        let base = std::mem::replace(
            slot,
            Linear::Dense {
                weight: Tensor::zeros((1, 1), DType::F32, &Device::Cpu)?,
                bias: None,
            },
        );
        *slot = base
            .with_lora(lora)
            .with_context(|| format!("attaching {module} from {}", dir.display()))?;
        attached += 1;
    }
    model.adapters.push(dir.to_path_buf());
    Ok(attached)
}

/// The linear layer with an HF module path (`model.layers.3.mlp.up_proj`, `lm_head`).
pub fn find_linear<'a>(model: &'a mut Model, module: &str) -> Option<&'a mut Linear> {
    if module == "lm_head" {
        return Some(&mut model.lm_head);
    }
    let rest = module.strip_prefix("model.layers.")?;
    let (n, rest) = rest.split_once('.')?;
    let n: usize = n.parse().ok()?;
    let leaf = rest.rsplit('.').next()?;
    model.layers.get_mut(n)?.linear_mut(leaf)
}
