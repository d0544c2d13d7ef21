//! What trains: LoRA pairs attached to the linear layers (peft's
//! initialisation and file format), or every weight of the model (full
//! fine-tuning).

use super::checkpoint::write_atomic;
use super::optim::Param;
use crate::model::adapter::{SwiftRecord, SWIFT_RECORD_FILE};
use crate::model::config::LINEAR_MODULES;
use crate::model::decoder::Embedding;
use crate::model::linear::{Linear, Lora};
use crate::model::Model;
use crate::planner::memory::canonical_module;
use anyhow::{bail, Context, Result};
use candle_core::{DType, Device, Tensor, Var};
use rand::{Rng, SeedableRng};
use serde::Serialize;
use serde_json::json;
use std::collections::HashMap;
use std::path::Path;

/// LoRA hyper-parameters (`--lora-rank`, `--lora-alpha`, ...).
#[derive(Debug, Clone, Serialize)]
pub struct LoraOptions {
    pub rank: usize,
    pub alpha: f64,
    pub dropout: f32,
    /// HF module names (`q_proj`, ...); empty = all linear layers
    /// (peft's `all-linear`: every projection of the decoder layers, not
    /// `lm_head`).
    pub targets: Vec<String>,
    pub rslora: bool,
}

impl Default for LoraOptions {
    fn default() -> Self {
        LoraOptions {
            rank: 8,
            alpha: 32.0,
            dropout: 0.05,
            targets: Vec::new(),
            rslora: false,
        }
    }
}

impl LoraOptions {
    /// `alpha / r`, or `alpha / sqrt(r)` with rsLoRA.
    pub fn scale(&self) -> f64 {
        if self.rslora {
            self.alpha / (self.rank as f64).sqrt()
        } else {
            self.alpha / self.rank as f64
        }
    }

    /// The module names targeted, canonical, in the decoder's order.
    pub fn modules(&self) -> Result<Vec<&'static str>> {
        if self.targets.is_empty() || self.targets.iter().any(|t| t == "all-linear" || t == "all") {
            return Ok(LINEAR_MODULES.to_vec());
        }
        let mut out = Vec::new();
        for t in &self.targets {
            let c = canonical_module(t);
            let Some(m) = LINEAR_MODULES.iter().find(|m| **m == c) else {
                bail!(
                    "--target-modules: unknown module `{t}` (known: all-linear, {})",
                    LINEAR_MODULES.join(", ")
                );
            };
            if !out.contains(m) {
                out.push(*m);
            }
        }
        Ok(LINEAR_MODULES
            .iter()
            .copied()
            .filter(|m| out.contains(m))
            .collect())
    }
}

fn group(module: &str) -> &'static str {
    match module {
        "gate_proj" | "up_proj" | "down_proj" => "mlp",
        _ => "self_attn",
    }
}

/// Attach fresh LoRA pairs to `model` as peft initialises them: A from
/// kaiming-uniform with `a = sqrt(5)` (uniform in `±1/sqrt(in_features)`),
/// B zero, so the model is unchanged at step 0. Returns the trainable
/// parameters, named as in `adapter_model.safetensors`
/// (`base_model.model.model.layers.N.self_attn.q_proj.lora_A.weight`).
pub fn attach_lora(model: &mut Model, opts: &LoraOptions, seed: u64) -> Result<Vec<Param>> {
    if opts.rank == 0 {
        bail!("--lora-rank must be at least 1");
    }
    let modules = opts.modules()?;
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    let mut params = Vec::new();
    let dev = Device::Cpu;
    for (i, layer) in model.layers.iter_mut().enumerate() {
        for m in &modules {
            let slot = layer
                .linear_mut(m)
                .with_context(|| format!("layer {i} has no {m}"))?;
            let (inp, out) = (slot.in_features(), slot.out_features());
            let bound = 1.0 / (inp as f64).sqrt();
            let a: Vec<f32> = (0..opts.rank * inp)
                .map(|_| rng.gen_range(-bound..bound) as f32)
                .collect();
            let a = Var::from_tensor(&Tensor::from_vec(a, (opts.rank, inp), &dev)?)?;
            let b = Var::from_tensor(&Tensor::zeros((out, opts.rank), DType::F32, &dev)?)?;
            let base = std::mem::replace(
                slot,
                Linear::Dense {
                    weight: Tensor::zeros((1, 1), DType::F32, &dev)?,
                    bias: None,
                },
            );
            *slot = base.with_lora(Lora {
                a: a.as_tensor().clone(),
                b: b.as_tensor().clone(),
                scale: opts.scale(),
                dropout: opts.dropout,
                name: "train".into(),
            })?;
            let prefix = format!("base_model.model.model.layers.{i}.{}.{m}", group(m));
            params.push(Param {
                name: format!("{prefix}.lora_A.weight"),
                var: a,
                decay: true,
            });
            params.push(Param {
                name: format!("{prefix}.lora_B.weight"),
                var: b,
                decay: true,
            });
        }
    }
    Ok(params)
}

/// Make every weight of a full-precision model trainable. Names are the HF
/// names (`model.layers.0.self_attn.q_proj.weight`); a tied output head
/// shares the embedding's variable. Quantized weights cannot be trained.
pub fn make_full_trainable(model: &mut Model) -> Result<Vec<Param>> {
    let mut params = Vec::new();
    let dense = |l: &mut Linear, name: &str, params: &mut Vec<Param>| -> Result<()> {
        match l {
            Linear::Dense { weight, bias } => {
                let v = Var::from_tensor(weight)?;
                *weight = v.as_tensor().clone();
                params.push(Param {
                    name: format!("{name}.weight"),
                    var: v,
                    decay: true,
                });
                if let Some(b) = bias {
                    let v = Var::from_tensor(b)?;
                    *b = v.as_tensor().clone();
                    params.push(Param {
                        name: format!("{name}.bias"),
                        var: v,
                        decay: false,
                    });
                }
                Ok(())
            }
            Linear::Quantized { .. } => bail!(
                "full fine-tuning needs full-precision weights, and {name} is quantized \
                 (GGUF): train LoRA on it (--tuner lora), or start from an HF folder"
            ),
            Linear::Lora { .. } => bail!("full fine-tuning of a model with adapters attached"),
        }
    };
    let norm = |t: &mut Tensor, name: String, params: &mut Vec<Param>| -> Result<()> {
        let v = Var::from_tensor(t)?;
        *t = v.as_tensor().clone();
        params.push(Param {
            name,
            var: v,
            decay: false,
        });
        Ok(())
    };
    let embed_id = match &model.embed {
        Embedding::Dense(t) => t.id(),
        Embedding::Quantized(_) => bail!(
            "full fine-tuning needs full-precision weights, and the embedding is quantized \
             (GGUF): train LoRA on it (--tuner lora), or start from an HF folder"
        ),
    };
    let tied = matches!(&model.lm_head, Linear::Dense { weight, .. } if weight.id() == embed_id);
    let embed_var = match &mut model.embed {
        Embedding::Dense(t) => {
            let v = Var::from_tensor(t)?;
            *t = v.as_tensor().clone();
            params.push(Param {
                name: "model.embed_tokens.weight".into(),
                var: v.clone(),
                decay: true,
            });
            v
        }
        Embedding::Quantized(_) => unreachable!(),
    };
    for (i, layer) in model.layers.iter_mut().enumerate() {
        let p = format!("model.layers.{i}");
        norm(
            &mut layer.input_layernorm,
            format!("{p}.input_layernorm.weight"),
            &mut params,
        )?;
        norm(
            &mut layer.post_attention_layernorm,
            format!("{p}.post_attention_layernorm.weight"),
            &mut params,
        )?;
        for m in LINEAR_MODULES {
            let l = layer.linear_mut(m).unwrap();
            dense(l, &format!("{p}.{}.{m}", group(m)), &mut params)?;
        }
        if let Some(w) = &mut layer.q_norm {
            norm(w, format!("{p}.self_attn.q_norm.weight"), &mut params)?;
        }
        if let Some(w) = &mut layer.k_norm {
            norm(w, format!("{p}.self_attn.k_norm.weight"), &mut params)?;
        }
    }
    norm(&mut model.norm, "model.norm.weight".into(), &mut params)?;
    if tied {
        if let Linear::Dense { weight, .. } = &mut model.lm_head {
            *weight = embed_var.as_tensor().clone();
        }
    } else {
        dense(&mut model.lm_head, "lm_head", &mut params)?;
    }
    Ok(params)
}

/// Write `swift_adapter.json` (swift's record), `adapter_config.json`
/// (peft's fields, and nothing else: peft warns about any key its LoraConfig
/// lacks) and `adapter_model.safetensors` into `dir`, each through a
/// temporary name, the weights last (their presence marks a finished adapter).
pub fn save_adapter(
    dir: &Path,
    params: &[Param],
    opts: &LoraOptions,
    base_model: &str,
    record: &SwiftRecord,
) -> Result<()> {
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let cfg = json!({
        "alpha_pattern": {},
        "auto_mapping": null,
        "base_model_name_or_path": base_model,
        "bias": "none",
        "exclude_modules": null,
        "fan_in_fan_out": false,
        "inference_mode": true,
        "init_lora_weights": true,
        "layer_replication": null,
        "layers_pattern": null,
        "layers_to_transform": null,
        "loftq_config": {},
        "lora_alpha": opts.alpha,
        "lora_bias": false,
        "lora_dropout": opts.dropout,
        "megatron_config": null,
        "megatron_core": "megatron.core",
        "modules_to_save": null,
        "peft_type": "LORA",
        "r": opts.rank,
        "rank_pattern": {},
        "revision": null,
        "target_modules": opts.modules()?,
        "task_type": "CAUSAL_LM",
        "trainable_token_indices": null,
        "use_dora": false,
        "use_rslora": opts.rslora,
    });
    write_atomic(
        &dir.join(SWIFT_RECORD_FILE),
        serde_json::to_string_pretty(record)?.as_bytes(),
    )?;
    write_atomic(
        &dir.join("adapter_config.json"),
        serde_json::to_string_pretty(&cfg)?.as_bytes(),
    )?;
    save_tensors(&dir.join("adapter_model.safetensors"), params)
}

/// Write the parameters' current values as one safetensors file (through a
/// temporary name), with `{"format": "pt"}` metadata as torch writes.
pub fn save_tensors(path: &Path, params: &[Param]) -> Result<()> {
    let raws: Vec<crate::model::export::RawTensor> = params
        .iter()
        .map(|p| crate::model::export::RawTensor::f32(&p.name, p.var.as_tensor()))
        .collect::<Result<_>>()?;
    let tmp = super::checkpoint::tmp_name(path);
    crate::model::export::write_safetensors(&tmp, &raws)?;
    std::fs::rename(&tmp, path).with_context(|| format!("renaming to {}", path.display()))
}

/// Set the parameters from the `*.safetensors` files in `dir` (a checkpoint
/// or an output folder), by name.
pub fn load_params(dir: &Path, params: &[Param]) -> Result<()> {
    let mut map: HashMap<String, Tensor> = HashMap::new();
    let entries = std::fs::read_dir(dir).with_context(|| format!("reading {}", dir.display()))?;
    for e in entries {
        let p = e?.path();
        let name = p
            .file_name()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_default();
        if name.ends_with(".safetensors") && !name.starts_with("optimizer") {
            let t = candle_core::safetensors::load(&p, &Device::Cpu)
                .with_context(|| format!("reading {}", p.display()))?;
            map.extend(t);
        }
    }
    for p in params {
        let t = map
            .get(&p.name)
            .with_context(|| format!("{}: no tensor {}", dir.display(), p.name))?;
        let t = t.to_dtype(DType::F32)?;
        if t.dims() != p.var.as_tensor().dims() {
            bail!(
                "{}: {} has shape {:?}, the model expects {:?}",
                dir.display(),
                p.name,
                t.dims(),
                p.var.as_tensor().dims()
            );
        }
        p.var.set(&t)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::testing::write_tiny_model;

    #[test]
    fn lora_starts_at_the_base_model_and_round_trips_through_peft_files() {
        let dir = tempfile::tempdir().unwrap();
        write_tiny_model(dir.path(), "llama", 3).unwrap();
        let base = Model::load_hf(dir.path()).unwrap();
        let mut m = base.clone();
        let opts = LoraOptions::default();
        let params = attach_lora(&mut m, &opts, 1).unwrap();
        assert_eq!(params.len(), 2 * 7 * m.layers.len());
        // A within peft's kaiming bound, B zero.
        let a: Vec<f32> = params[0]
            .var
            .as_tensor()
            .flatten_all()
            .unwrap()
            .to_vec1()
            .unwrap();
        let bound = 1.0 / (m.config().hidden_size as f32).sqrt();
        assert!(a.iter().all(|x| x.abs() <= bound) && a.iter().any(|x| *x != 0.0));
        let ids = Tensor::new(&[[1u32, 5, 9, 30]], &Device::Cpu).unwrap();
        let y0 = base.forward_train(&ids, None, false).unwrap();
        let y1 = m.forward_train(&ids, None, false).unwrap();
        let d: f32 = (y0 - y1)
            .unwrap()
            .abs()
            .unwrap()
            .max_all()
            .unwrap()
            .to_scalar()
            .unwrap();
        assert_eq!(d, 0.0);
        // Give B values, save, reload through the inference adapter loader.
        for p in &params {
            if p.name.ends_with("lora_B.weight") {
                let t = Tensor::randn(0f32, 0.05, p.var.as_tensor().shape(), &Device::Cpu).unwrap();
                p.var.set(&t).unwrap();
            }
        }
        let out = dir.path().join("adapter");
        save_adapter(&out, &params, &opts, "tiny", &SwiftRecord::new(None)).unwrap();
        let cfg: serde_json::Value = serde_json::from_str(
            &std::fs::read_to_string(out.join("adapter_config.json")).unwrap(),
        )
        .unwrap();
        assert_eq!(cfg["peft_type"], "LORA");
        assert_eq!(cfg["r"], 8);
        // swift's record is its own file; peft's config has peft's keys.
        assert!(cfg.get("swift_quantization").is_none());
        assert_eq!(
            SwiftRecord::read(&out).unwrap(),
            Some(SwiftRecord::new(None))
        );
        let names =
            candle_core::safetensors::load(out.join("adapter_model.safetensors"), &Device::Cpu)
                .unwrap();
        assert!(
            names.contains_key("base_model.model.model.layers.0.self_attn.q_proj.lora_A.weight")
        );
        let mut loaded = base.clone();
        crate::model::adapter::apply(&mut loaded, &out).unwrap();
        let y1 = m.forward_train(&ids, None, false).unwrap();
        let y2 = loaded.forward_train(&ids, None, false).unwrap();
        let d: f32 = (y1 - y2)
            .unwrap()
            .abs()
            .unwrap()
            .max_all()
            .unwrap()
            .to_scalar()
            .unwrap();
        assert!(d < 1e-5, "{d}");
        // load_params restores the values.
        let mut m2 = base.clone();
        let p2 = attach_lora(&mut m2, &opts, 99).unwrap();
        load_params(&out, &p2).unwrap();
        let y3 = m2.forward_train(&ids, None, false).unwrap();
        let y1 = m.forward_train(&ids, None, false).unwrap();
        let d: f32 = (y1 - y3)
            .unwrap()
            .abs()
            .unwrap()
            .max_all()
            .unwrap()
            .to_scalar()
            .unwrap();
        assert_eq!(d, 0.0);
    }

    #[test]
    fn full_tuning_ties_the_head_to_the_embedding() {
        let dir = tempfile::tempdir().unwrap();
        write_tiny_model(dir.path(), "llama-tied", 3).unwrap();
        let mut m = Model::load_hf(dir.path()).unwrap();
        let params = make_full_trainable(&mut m).unwrap();
        assert!(params.iter().all(|p| p.name != "lm_head.weight"));
        let total: usize = params.iter().map(Param::numel).sum();
        assert_eq!(total as u64, m.config().total_params());
    }
}
