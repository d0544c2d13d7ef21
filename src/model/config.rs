//! The hyper-parameters of a llama-family decoder, read from a Hugging Face
//! `config.json` (or, see `from_gguf`, from GGUF metadata).
//!
//! One struct for every supported family: Llama 2/3 (and SmolLM), Mistral,
//! Qwen2 / Qwen2.5, Qwen3, and the original Qwen (`model_type: qwen`, whose
//! config says `kv_channels` and a doubled `intermediate_size`).

use std::path::Path;

use anyhow::{bail, Context, Result};
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// The architectures the decoder implements.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Family {
    Llama,
    Mistral,
    Qwen2,
    Qwen3,
    /// The original Qwen (Qwen-7B, `model_type: qwen`).
    Qwen,
}

impl Family {
    pub fn from_model_type(model_type: &str) -> Option<Family> {
        Some(match model_type {
            "llama" | "smollm" | "smollm2" => Family::Llama,
            "mistral" => Family::Mistral,
            "qwen2" => Family::Qwen2,
            "qwen3" => Family::Qwen3,
            "qwen" => Family::Qwen,
            _ => return None,
        })
    }

    pub fn name(self) -> &'static str {
        match self {
            Family::Llama => "llama",
            Family::Mistral => "mistral",
            Family::Qwen2 => "qwen2",
            Family::Qwen3 => "qwen3",
            Family::Qwen => "qwen",
        }
    }
}

/// Rotary-embedding scaling (`rope_scaling` in config.json).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RopeScaling {
    /// `llama3`, `linear`, `dynamic`, `yarn`, ...
    pub rope_type: String,
    pub factor: f64,
    pub low_freq_factor: Option<f64>,
    pub high_freq_factor: Option<f64>,
    pub original_max_position_embeddings: Option<usize>,
}

/// What the decoder and the memory planner need to know about a model.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ModelConfig {
    pub family: Family,
    /// `model_type` as written in the config.
    pub model_type: String,
    pub hidden_size: usize,
    /// Width of each of the gate / up projections (Qwen-1's doubled value is
    /// halved here).
    pub intermediate_size: usize,
    pub num_hidden_layers: usize,
    pub num_attention_heads: usize,
    pub num_key_value_heads: usize,
    pub head_dim: usize,
    pub vocab_size: usize,
    pub max_position_embeddings: usize,
    pub rms_norm_eps: f64,
    pub rope_theta: f64,
    pub rope_scaling: Option<RopeScaling>,
    pub tie_word_embeddings: bool,
    /// Bias on the q, k, v projections (Qwen, Qwen2).
    pub attention_bias: bool,
    /// RMSNorm on q and k per head (Qwen3).
    pub qk_norm: bool,
    pub sliding_window: Option<usize>,
    /// `torch_dtype` / `dtype` of the checkpoint, when stated.
    pub torch_dtype: Option<String>,
    pub bos_token_id: Option<u32>,
    pub eos_token_ids: Vec<u32>,
}

/// One linear projection of a decoder layer: its module name and shape.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LinearShape {
    pub name: &'static str,
    pub in_features: usize,
    pub out_features: usize,
}

/// The module names of the linear layers of one decoder layer, in HF naming.
pub const LINEAR_MODULES: [&str; 7] = [
    "q_proj",
    "k_proj",
    "v_proj",
    "o_proj",
    "gate_proj",
    "up_proj",
    "down_proj",
];

impl ModelConfig {
    /// Read `config.json` from a file or from a model folder.
    pub fn from_path(path: &Path) -> Result<ModelConfig> {
        let file = if path.is_dir() {
            path.join("config.json")
        } else {
            path.to_path_buf()
        };
        let text = std::fs::read_to_string(&file)
            .with_context(|| format!("reading {}", file.display()))?;
        let value: Value = serde_json::from_str(&text)
            .with_context(|| format!("parsing {} as JSON", file.display()))?;
        Self::from_json(&value).with_context(|| format!("reading model config {}", file.display()))
    }

    /// Interpret a parsed `config.json`.
    pub fn from_json(v: &Value) -> Result<ModelConfig> {
        let model_type = v
            .get("model_type")
            .and_then(Value::as_str)
            .context("field `model_type` is missing")?
            .to_string();
        let Some(family) = Family::from_model_type(&model_type) else {
            bail!(
                "unsupported architecture `model_type: {model_type}` (supported: llama, mistral, qwen, qwen2, qwen3)"
            );
        };
        let usize_field = |names: &[&str]| -> Option<usize> {
            names
                .iter()
                .find_map(|n| v.get(*n).and_then(Value::as_u64))
                .map(|x| x as usize)
        };
        let need = |names: &[&str]| -> Result<usize> {
            usize_field(names)
                .with_context(|| format!("field `{}` is missing or not an integer", names[0]))
        };
        let f64_field = |names: &[&str]| -> Option<f64> {
            names.iter().find_map(|n| v.get(*n).and_then(Value::as_f64))
        };

        let hidden_size = need(&["hidden_size", "n_embd", "dim"])?;
        let num_hidden_layers = need(&["num_hidden_layers", "n_layer", "n_layers"])?;
        let num_attention_heads = need(&["num_attention_heads", "n_head", "n_heads"])?;
        let num_key_value_heads =
            usize_field(&["num_key_value_heads", "n_kv_heads"]).unwrap_or(num_attention_heads);
        let vocab_size = need(&["vocab_size", "padded_vocab_size"])?;
        let mut intermediate_size = need(&["intermediate_size", "ffn_hidden_size"])?;
        let head_dim = match usize_field(&["head_dim", "kv_channels"]) {
            Some(d) => d,
            None => {
                if hidden_size % num_attention_heads != 0 {
                    bail!("hidden_size {hidden_size} is not divisible by num_attention_heads {num_attention_heads}");
                }
                hidden_size / num_attention_heads
            }
        };
        if num_key_value_heads == 0 || num_attention_heads % num_key_value_heads != 0 {
            bail!("num_attention_heads {num_attention_heads} is not a multiple of num_key_value_heads {num_key_value_heads}");
        }
        if family == Family::Qwen {
            // Qwen-1 states the summed width of its two gate projections (w1, w2).
            intermediate_size /= 2;
        }
        let max_position_embeddings = usize_field(&[
            "max_position_embeddings",
            "seq_length",
            "n_positions",
            "max_sequence_length",
        ])
        .unwrap_or(4096);
        let rms_norm_eps = f64_field(&["rms_norm_eps", "layer_norm_epsilon"]).unwrap_or(1e-6);
        // transformers 5 writes the theta and the scaling under `rope_parameters`.
        let rope_parameters = v.get("rope_parameters").filter(|p| p.is_object());
        let rope_theta = f64_field(&["rope_theta", "rotary_emb_base"])
            .or_else(|| rope_parameters?.get("rope_theta")?.as_f64())
            .unwrap_or(10000.0);
        let scaling = v
            .get("rope_scaling")
            .filter(|rs| !rs.is_null())
            .or(rope_parameters);
        let rope_scaling = scaling.and_then(|rs| {
            if rs.is_null() {
                return None;
            }
            let rope_type = rs
                .get("rope_type")
                .or_else(|| rs.get("type"))
                .and_then(Value::as_str)
                .unwrap_or("default")
                .to_string();
            if rope_type == "default" {
                return None;
            }
            Some(RopeScaling {
                rope_type,
                factor: rs.get("factor").and_then(Value::as_f64).unwrap_or(1.0),
                low_freq_factor: rs.get("low_freq_factor").and_then(Value::as_f64),
                high_freq_factor: rs.get("high_freq_factor").and_then(Value::as_f64),
                original_max_position_embeddings: rs
                    .get("original_max_position_embeddings")
                    .and_then(Value::as_u64)
                    .map(|x| x as usize),
            })
        });
        let tie_word_embeddings = v
            .get("tie_word_embeddings")
            .and_then(Value::as_bool)
            .unwrap_or(false);
        let attention_bias = match family {
            Family::Qwen | Family::Qwen2 => true,
            _ => v
                .get("attention_bias")
                .and_then(Value::as_bool)
                .unwrap_or(false),
        };
        let qk_norm = family == Family::Qwen3;
        let use_sliding = v
            .get("use_sliding_window")
            .and_then(Value::as_bool)
            .unwrap_or(true);
        let sliding_window = if use_sliding {
            usize_field(&["sliding_window"])
        } else {
            None
        };
        let torch_dtype = v
            .get("torch_dtype")
            .or_else(|| v.get("dtype"))
            .and_then(Value::as_str)
            .map(str::to_string);
        let bos_token_id = v
            .get("bos_token_id")
            .and_then(Value::as_u64)
            .map(|x| x as u32);
        let eos_token_ids = match v.get("eos_token_id") {
            Some(Value::Number(n)) => n.as_u64().map(|x| vec![x as u32]).unwrap_or_default(),
            Some(Value::Array(a)) => a
                .iter()
                .filter_map(Value::as_u64)
                .map(|x| x as u32)
                .collect(),
            _ => Vec::new(),
        };
        Ok(ModelConfig {
            family,
            model_type,
            hidden_size,
            intermediate_size,
            num_hidden_layers,
            num_attention_heads,
            num_key_value_heads,
            head_dim,
            vocab_size,
            max_position_embeddings,
            rms_norm_eps,
            rope_theta,
            rope_scaling,
            tie_word_embeddings,
            attention_bias,
            qk_norm,
            sliding_window,
            torch_dtype,
            bos_token_id,
            eos_token_ids,
        })
    }

    /// Width of the query projection output (heads x head_dim).
    pub fn q_dim(&self) -> usize {
        self.num_attention_heads * self.head_dim
    }

    /// Width of each of the key and value projection outputs.
    pub fn kv_dim(&self) -> usize {
        self.num_key_value_heads * self.head_dim
    }

    /// The seven linear projections of one decoder layer with their shapes.
    pub fn layer_linears(&self) -> [LinearShape; 7] {
        let h = self.hidden_size;
        let i = self.intermediate_size;
        [
            LinearShape {
                name: "q_proj",
                in_features: h,
                out_features: self.q_dim(),
            },
            LinearShape {
                name: "k_proj",
                in_features: h,
                out_features: self.kv_dim(),
            },
            LinearShape {
                name: "v_proj",
                in_features: h,
                out_features: self.kv_dim(),
            },
            LinearShape {
                name: "o_proj",
                in_features: self.q_dim(),
                out_features: h,
            },
            LinearShape {
                name: "gate_proj",
                in_features: h,
                out_features: i,
            },
            LinearShape {
                name: "up_proj",
                in_features: h,
                out_features: i,
            },
            LinearShape {
                name: "down_proj",
                in_features: i,
                out_features: h,
            },
        ]
    }

    /// Parameters of one decoder layer: linears, their biases, norms.
    pub fn layer_params(&self) -> u64 {
        let linears: u64 = self
            .layer_linears()
            .iter()
            .map(|l| (l.in_features * l.out_features) as u64)
            .sum();
        let bias = if self.attention_bias {
            (self.q_dim() + 2 * self.kv_dim()) as u64
        } else {
            0
        };
        let norms = 2 * self.hidden_size as u64
            + if self.qk_norm {
                2 * self.head_dim as u64
            } else {
                0
            };
        linears + bias + norms
    }

    /// Parameters of the input embedding.
    pub fn embedding_params(&self) -> u64 {
        (self.vocab_size * self.hidden_size) as u64
    }

    /// Parameters of the output head, 0 when tied to the embedding.
    pub fn lm_head_params(&self) -> u64 {
        if self.tie_word_embeddings {
            0
        } else {
            self.embedding_params()
        }
    }

    /// All parameters, tied embeddings counted once.
    pub fn total_params(&self) -> u64 {
        self.embedding_params()
            + self.lm_head_params()
            + self.num_hidden_layers as u64 * self.layer_params()
            + self.hidden_size as u64
    }
}

impl ModelConfig {
    /// Hyper-parameters from GGUF metadata (`{arch}.*` keys of llama / qwen2 /
    /// qwen3 files). Tied embeddings when the file has no `output.weight`;
    /// qkv bias when it has `blk.0.attn_q.bias`; q/k norm when it has
    /// `blk.0.attn_q_norm.weight`.
    pub fn from_gguf(g: &crate::model::gguf::GgufFile) -> Result<ModelConfig> {
        let arch = g
            .architecture()
            .context("GGUF metadata has no `general.architecture`")?
            .to_string();
        // The original Qwen has no GGUF layout the decoder reads.
        let family = match Family::from_model_type(&arch) {
            Some(f) if f != Family::Qwen => f,
            _ => bail!(
                "unsupported GGUF architecture `{arch}` (supported: llama, mistral, qwen2, qwen3)"
            ),
        };
        let key = |k: &str| format!("{arch}.{k}");
        let need = |k: &str| -> Result<usize> {
            g.get_u64(&key(k))
                .map(|x| x as usize)
                .with_context(|| format!("GGUF metadata `{}` is missing", key(k)))
        };
        let hidden_size = need("embedding_length")?;
        let num_hidden_layers = need("block_count")?;
        let intermediate_size = need("feed_forward_length")?;
        let num_attention_heads = need("attention.head_count")?;
        let num_key_value_heads = g
            .get_u64(&key("attention.head_count_kv"))
            .map(|x| x as usize)
            .unwrap_or(num_attention_heads);
        if num_attention_heads == 0
            || num_key_value_heads == 0
            || num_attention_heads % num_key_value_heads != 0
        {
            bail!("attention.head_count {num_attention_heads} is not a multiple of attention.head_count_kv {num_key_value_heads}");
        }
        let head_dim = match g.get_u64(&key("attention.key_length")) {
            Some(d) => d as usize,
            None => {
                if hidden_size % num_attention_heads != 0 {
                    bail!("embedding_length {hidden_size} is not divisible by attention.head_count {num_attention_heads}");
                }
                hidden_size / num_attention_heads
            }
        };
        let vocab_size = match g.get_array("tokenizer.ggml.tokens") {
            Some(t) => t.len(),
            None => match g.get_u64(&key("vocab_size")) {
                Some(v) => v as usize,
                None => g
                    .tensor("token_embd.weight")
                    .and_then(|t| t.dims.get(1).copied())
                    .context("cannot tell the vocabulary size from the GGUF file")?
                    as usize,
            },
        };
        let max_position_embeddings = g
            .get_u64(&key("context_length"))
            .map(|x| x as usize)
            .unwrap_or(4096);
        let rms_norm_eps = g
            .get_f64(&key("attention.layer_norm_rms_epsilon"))
            .unwrap_or(1e-6);
        let rope_theta = g.get_f64(&key("rope.freq_base")).unwrap_or(10000.0);
        let rope_scaling = match g.get_str(&key("rope.scaling.type")) {
            Some(t) if t != "none" => Some(RopeScaling {
                rope_type: t.to_string(),
                factor: g.get_f64(&key("rope.scaling.factor")).unwrap_or(1.0),
                low_freq_factor: None,
                high_freq_factor: None,
                original_max_position_embeddings: g
                    .get_u64(&key("rope.scaling.original_context_length"))
                    .map(|x| x as usize),
            }),
            _ => None,
        };
        let tie_word_embeddings = g.tensor("output.weight").is_none();
        let attention_bias = g.tensor("blk.0.attn_q.bias").is_some();
        let qk_norm = g.tensor("blk.0.attn_q_norm.weight").is_some();
        let sliding_window = g
            .get_u64(&key("attention.sliding_window"))
            .map(|x| x as usize);
        let bos_token_id = g.get_u64("tokenizer.ggml.bos_token_id").map(|x| x as u32);
        let eos_token_ids = g
            .get_u64("tokenizer.ggml.eos_token_id")
            .map(|x| vec![x as u32])
            .unwrap_or_default();
        let torch_dtype = None;
        Ok(ModelConfig {
            family,
            model_type: arch,
            hidden_size,
            intermediate_size,
            num_hidden_layers,
            num_attention_heads,
            num_key_value_heads,
            head_dim,
            vocab_size,
            max_position_embeddings,
            rms_norm_eps,
            rope_theta,
            rope_scaling,
            tie_word_embeddings,
            attention_bias,
            qk_norm,
            sliding_window,
            torch_dtype,
            bos_token_id,
            eos_token_ids,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn llama2_7b_parameter_count() {
        let c = ModelConfig::from_json(&json!({
            "model_type": "llama", "hidden_size": 4096, "intermediate_size": 11008,
            "num_hidden_layers": 32, "num_attention_heads": 32, "num_key_value_heads": 32,
            "vocab_size": 32000, "max_position_embeddings": 4096, "rms_norm_eps": 1e-5
        }))
        .unwrap();
        // The published figure: 6,738,415,616 parameters.
        assert_eq!(c.total_params(), 6_738_415_616);
        assert_eq!(c.head_dim, 128);
        assert!(!c.tie_word_embeddings);
    }

    #[test]
    fn qwen1_halves_intermediate_and_reads_kv_channels() {
        let c = ModelConfig::from_json(&json!({
            "model_type": "qwen", "hidden_size": 4096, "intermediate_size": 22016,
            "num_hidden_layers": 32, "num_attention_heads": 32, "kv_channels": 128,
            "vocab_size": 151936, "seq_length": 8192, "layer_norm_epsilon": 1e-6,
            "rotary_emb_base": 10000
        }))
        .unwrap();
        assert_eq!(c.intermediate_size, 11008);
        assert_eq!(c.head_dim, 128);
        assert_eq!(c.num_key_value_heads, 32);
        assert!(c.attention_bias);
        assert_eq!(c.max_position_embeddings, 8192);
    }

    #[test]
    fn unsupported_architecture_is_named() {
        let err = ModelConfig::from_json(&json!({"model_type": "gpt_neox"})).unwrap_err();
        assert!(err.to_string().contains("gpt_neox"), "{err}");
    }

    #[test]
    fn eos_list_and_llama3_rope() {
        let c = ModelConfig::from_json(&json!({
            "model_type": "llama", "hidden_size": 64, "intermediate_size": 128,
            "num_hidden_layers": 2, "num_attention_heads": 4, "num_key_value_heads": 2,
            "vocab_size": 100, "eos_token_id": [1, 7],
            "rope_scaling": {"rope_type": "llama3", "factor": 8.0, "low_freq_factor": 1.0,
                              "high_freq_factor": 4.0, "original_max_position_embeddings": 8192}
        }))
        .unwrap();
        assert_eq!(c.eos_token_ids, vec![1, 7]);
        assert_eq!(c.kv_dim(), 32);
        assert_eq!(c.rope_scaling.as_ref().unwrap().rope_type, "llama3");
    }

    #[test]
    fn transformers5_rope_parameters() {
        let c = ModelConfig::from_json(&json!({
            "model_type": "llama", "hidden_size": 64, "intermediate_size": 128,
            "num_hidden_layers": 2, "num_attention_heads": 4, "vocab_size": 100,
            "rope_parameters": {"rope_theta": 100000.0, "rope_type": "default"}
        }))
        .unwrap();
        assert_eq!(c.rope_theta, 100000.0);
        assert!(c.rope_scaling.is_none());
    }
}
