//! Writing a model as a Hugging Face folder: `config.json` plus f32
//! safetensors (sharded with `model.safetensors.index.json` when large), in HF
//! naming and the HF (un-permuted) q/k layout. GGUF weights are dequantized.

use super::config::{Family, ModelConfig};
use super::decoder::{Embedding, Model};
use super::linear::Linear;
use anyhow::{Context, Result};
use candle_core::{DType, Tensor};
use serde_json::{json, Value};
use std::collections::{BTreeMap, HashMap};
use std::path::Path;

/// Options for [`write_hf`].
#[derive(Debug, Clone)]
pub struct ExportOptions {
    /// Fold attached LoRA adapters into the weights (otherwise only the base
    /// weights are written).
    pub merge_adapters: bool,
    /// Start a new shard once a file would exceed this many bytes.
    pub max_shard_bytes: usize,
}

impl Default for ExportOptions {
    fn default() -> Self {
        ExportOptions {
            merge_adapters: true,
            max_shard_bytes: 2 << 30,
        }
    }
}

/// The HF `config.json` for a config (float32 weights).
pub fn config_json(c: &ModelConfig) -> Value {
    let arch = match c.family {
        Family::Llama => "LlamaForCausalLM",
        Family::Mistral => "MistralForCausalLM",
        Family::Qwen2 => "Qwen2ForCausalLM",
        Family::Qwen3 => "Qwen3ForCausalLM",
        Family::Qwen => "QWenLMHeadModel",
    };
    let model_type = match c.family {
        Family::Llama => "llama",
        other => other.name(),
    };
    let mut v = json!({
        "architectures": [arch],
        "model_type": model_type,
        "hidden_act": "silu",
        "hidden_size": c.hidden_size,
        "intermediate_size": c.intermediate_size,
        "num_hidden_layers": c.num_hidden_layers,
        "num_attention_heads": c.num_attention_heads,
        "num_key_value_heads": c.num_key_value_heads,
        "head_dim": c.head_dim,
        "vocab_size": c.vocab_size,
        "max_position_embeddings": c.max_position_embeddings,
        "rms_norm_eps": c.rms_norm_eps,
        "rope_theta": c.rope_theta,
        "tie_word_embeddings": c.tie_word_embeddings,
        "torch_dtype": "float32",
        "use_cache": true,
    });
    let o = v.as_object_mut().unwrap();
    if c.family == Family::Llama {
        o.insert("attention_bias".into(), json!(c.attention_bias));
        o.insert("mlp_bias".into(), json!(false));
    }
    match c.sliding_window {
        Some(w) => {
            o.insert("sliding_window".into(), json!(w));
            if matches!(c.family, Family::Qwen2 | Family::Qwen3) {
                o.insert("use_sliding_window".into(), json!(true));
            }
        }
        None => {
            if c.family == Family::Mistral {
                o.insert("sliding_window".into(), Value::Null);
            }
        }
    }
    if let Some(rs) = &c.rope_scaling {
        let mut r = json!({"rope_type": rs.rope_type, "factor": rs.factor});
        let ro = r.as_object_mut().unwrap();
        if let Some(x) = rs.low_freq_factor {
            ro.insert("low_freq_factor".into(), json!(x));
        }
        if let Some(x) = rs.high_freq_factor {
            ro.insert("high_freq_factor".into(), json!(x));
        }
        if let Some(x) = rs.original_max_position_embeddings {
            ro.insert("original_max_position_embeddings".into(), json!(x));
        }
        o.insert("rope_scaling".into(), r);
    }
    if let Some(b) = c.bos_token_id {
        o.insert("bos_token_id".into(), json!(b));
    }
    match c.eos_token_ids.as_slice() {
        [] => {}
        [one] => {
            o.insert("eos_token_id".into(), json!(one));
        }
        many => {
            o.insert("eos_token_id".into(), json!(many));
        }
    }
    v
}

/// A tensor ready for safetensors: name, shape, little-endian bytes and dtype.
pub struct RawTensor {
    pub name: String,
    pub shape: Vec<usize>,
    pub dtype: safetensors::Dtype,
    pub data: Vec<u8>,
}

impl RawTensor {
    /// From a candle tensor, converted to f32.
    pub fn f32(name: &str, t: &Tensor) -> Result<RawTensor> {
        let t = t.to_dtype(DType::F32)?.contiguous()?;
        let v: Vec<f32> = t.flatten_all()?.to_vec1()?;
        Ok(RawTensor {
            name: name.to_string(),
            shape: t.dims().to_vec(),
            dtype: safetensors::Dtype::F32,
            data: v.iter().flat_map(|x| x.to_le_bytes()).collect(),
        })
    }
}

/// Write one safetensors file (with `{"format": "pt"}` metadata).
pub fn write_safetensors(path: &Path, tensors: &[RawTensor]) -> Result<()> {
    let views: Vec<(String, safetensors::tensor::TensorView<'_>)> = tensors
        .iter()
        .map(|t| {
            Ok((
                t.name.clone(),
                safetensors::tensor::TensorView::new(t.dtype, t.shape.clone(), &t.data)?,
            ))
        })
        .collect::<Result<_>>()?;
    let meta: HashMap<String, String> = [("format".to_string(), "pt".to_string())].into();
    safetensors::serialize_to_file(views, &Some(meta), path)
        .with_context(|| format!("writing {}", path.display()))
}

/// Write tensors as `model.safetensors`, or as shards plus an index when they
/// exceed `max_shard_bytes`.
pub fn write_sharded(dir: &Path, tensors: Vec<RawTensor>, max_shard_bytes: usize) -> Result<()> {
    let total: usize = tensors.iter().map(|t| t.data.len()).sum();
    if total <= max_shard_bytes {
        return write_safetensors(&dir.join("model.safetensors"), &tensors);
    }
    let mut shards: Vec<Vec<RawTensor>> = vec![Vec::new()];
    let mut size = 0;
    for t in tensors {
        if size > 0 && size + t.data.len() > max_shard_bytes {
            shards.push(Vec::new());
            size = 0;
        }
        size += t.data.len();
        shards.last_mut().unwrap().push(t);
    }
    let n = shards.len();
    let mut map = BTreeMap::new();
    for (i, shard) in shards.iter().enumerate() {
        let file = format!("model-{:05}-of-{:05}.safetensors", i + 1, n);
        for t in shard {
            map.insert(t.name.clone(), json!(file));
        }
        write_safetensors(&dir.join(&file), shard)?;
    }
    let index = json!({"metadata": {"total_size": total}, "weight_map": map});
    let p = dir.join("model.safetensors.index.json");
    std::fs::write(&p, serde_json::to_string_pretty(&index)?)
        .with_context(|| format!("writing {}", p.display()))
}

/// The weight of a linear layer as f32 `[out, in]`, LoRAs folded in if asked.
fn linear_weight(l: &Linear, merge: bool) -> Result<Tensor> {
    let mut w = l.dense_weight()?;
    if merge {
        for lora in l.loras() {
            w = (w + (lora.b.matmul(&lora.a)? * lora.scale)?)?;
        }
    }
    Ok(w)
}

/// Write `model` as an HF folder in `dir` (created if needed): `config.json`
/// and f32 safetensors. Tokenizer files are not written here.
pub fn write_hf(model: &Model, dir: &Path, opts: &ExportOptions) -> Result<()> {
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let c = model.config();
    let mut ts = Vec::new();
    let embed = match &model.embed {
        Embedding::Dense(t) => t.clone(),
        Embedding::Quantized(q) => {
            Tensor::from_vec(q.dequantize(), (q.rows, q.cols), &candle_core::Device::Cpu)?
        }
    };
    ts.push(RawTensor::f32("model.embed_tokens.weight", &embed)?);
    for (i, layer) in model.layers.iter().enumerate() {
        let p = format!("model.layers.{i}");
        ts.push(RawTensor::f32(
            &format!("{p}.input_layernorm.weight"),
            &layer.input_layernorm,
        )?);
        ts.push(RawTensor::f32(
            &format!("{p}.post_attention_layernorm.weight"),
            &layer.post_attention_layernorm,
        )?);
        for (module, group) in [
            ("q_proj", "self_attn"),
            ("k_proj", "self_attn"),
            ("v_proj", "self_attn"),
            ("o_proj", "self_attn"),
            ("gate_proj", "mlp"),
            ("up_proj", "mlp"),
            ("down_proj", "mlp"),
        ] {
            let l = layer.linear(module).unwrap();
            ts.push(RawTensor::f32(
                &format!("{p}.{group}.{module}.weight"),
                &linear_weight(l, opts.merge_adapters)?,
            )?);
            if let Some(b) = l.bias() {
                ts.push(RawTensor::f32(&format!("{p}.{group}.{module}.bias"), b)?);
            }
        }
        if let Some(w) = &layer.q_norm {
            ts.push(RawTensor::f32(&format!("{p}.self_attn.q_norm.weight"), w)?);
        }
        if let Some(w) = &layer.k_norm {
            ts.push(RawTensor::f32(&format!("{p}.self_attn.k_norm.weight"), w)?);
        }
    }
    ts.push(RawTensor::f32("model.norm.weight", &model.norm)?);
    let tied = c.tie_word_embeddings && (!opts.merge_adapters || model.lm_head.loras().is_empty());
    if !tied {
        ts.push(RawTensor::f32(
            "lm_head.weight",
            &linear_weight(&model.lm_head, opts.merge_adapters)?,
        )?);
    }
    let mut cfg = c.clone();
    cfg.tie_word_embeddings = tied;
    cfg.torch_dtype = Some("float32".into());
    let p = dir.join("config.json");
    std::fs::write(&p, serde_json::to_string_pretty(&config_json(&cfg))?)
        .with_context(|| format!("writing {}", p.display()))?;
    write_sharded(dir, ts, opts.max_shard_bytes)
}
