//! Tiny random models for tests: every supported architecture, a few hundred
//! kB each, as HF folders (`config.json`, `model.safetensors`,
//! `tokenizer.json`, `tokenizer_config.json`, `generation_config.json`).
//!
//! ```no_run
//! let dir = tempfile::tempdir().unwrap();
//! swift::model::testing::write_tiny_model(dir.path(), "qwen2", 7).unwrap();
//! ```

use super::config::{Family, ModelConfig, RopeScaling};
use super::export::{config_json, write_safetensors, RawTensor};
use anyhow::{bail, Result};
use serde_json::{json, Value};
use std::path::Path;

/// The architectures [`write_tiny_model`] knows.
pub const TINY_ARCHS: [&str; 8] = [
    "llama",
    "llama-tied",
    "llama3",
    "mistral",
    "qwen2",
    "qwen2-tied",
    "qwen3",
    "qwen3-untied",
];

/// Vocabulary size of the tiny models (the tokenizer uses the first 256 + merges + specials).
pub const TINY_VOCAB: usize = 320;

/// Special tokens of the tiny tokenizer, in id order after the byte tokens and merges.
pub const TINY_SPECIALS: [&str; 3] = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"];

const MERGES: [(&str, &str); 12] = [
    ("Ġ", "t"),
    ("h", "e"),
    ("Ġt", "he"),
    ("i", "n"),
    ("e", "r"),
    ("a", "n"),
    ("o", "n"),
    ("Ġ", "a"),
    ("r", "e"),
    ("Ġ", "s"),
    ("Ġ", "w"),
    ("a", "t"),
];

/// The config of a tiny model of `arch` (see [`TINY_ARCHS`]).
pub fn tiny_config(arch: &str) -> Result<ModelConfig> {
    let (family, tied) = match arch {
        "llama" | "llama3" => (Family::Llama, false),
        "llama-tied" => (Family::Llama, true),
        "mistral" => (Family::Mistral, false),
        "qwen2" => (Family::Qwen2, false),
        "qwen2-tied" => (Family::Qwen2, true),
        "qwen3" => (Family::Qwen3, true),
        "qwen3-untied" => (Family::Qwen3, false),
        other => bail!(
            "unknown tiny architecture {other} (known: {})",
            TINY_ARCHS.join(", ")
        ),
    };
    let n_specials = TINY_SPECIALS.len() as u32;
    let eos = 256 + MERGES.len() as u32 + n_specials - 1; // <|im_end|>
    Ok(ModelConfig {
        family,
        model_type: match family {
            Family::Llama => "llama".into(),
            f => f.name().into(),
        },
        hidden_size: 64,
        intermediate_size: 128,
        num_hidden_layers: 2,
        num_attention_heads: 4,
        num_key_value_heads: 2,
        // Qwen3 has an explicit head_dim different from hidden/heads.
        head_dim: if family == Family::Qwen3 { 32 } else { 16 },
        vocab_size: TINY_VOCAB,
        max_position_embeddings: 512,
        rms_norm_eps: 1e-6,
        rope_theta: if arch == "llama3" { 500000.0 } else { 10000.0 },
        rope_scaling: (arch == "llama3").then(|| RopeScaling {
            rope_type: "llama3".into(),
            factor: 8.0,
            low_freq_factor: Some(1.0),
            high_freq_factor: Some(4.0),
            original_max_position_embeddings: Some(64),
        }),
        tie_word_embeddings: tied,
        attention_bias: family == Family::Qwen2,
        qk_norm: family == Family::Qwen3,
        sliding_window: (family == Family::Mistral).then_some(6),
        torch_dtype: None,
        bos_token_id: Some(256 + MERGES.len() as u32),
        eos_token_ids: vec![eos],
    })
}

/// A deterministic normal generator (no dependence on `rand`'s algorithms).
struct Gauss(u64);

impl Gauss {
    fn uniform(&mut self) -> f64 {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        ((self.0 >> 11) as f64 + 0.5) / (1u64 << 53) as f64
    }
    fn next(&mut self) -> f32 {
        let (u, v) = (self.uniform(), self.uniform());
        ((-2.0 * u.ln()).sqrt() * (2.0 * std::f64::consts::PI * v).cos()) as f32
    }
    fn vec(&mut self, n: usize, std: f32, mean: f32) -> Vec<f32> {
        (0..n).map(|_| mean + std * self.next()).collect()
    }
}

fn raw(name: &str, shape: &[usize], v: &[f32], dtype: safetensors::Dtype) -> RawTensor {
    let data: Vec<u8> = match dtype {
        safetensors::Dtype::BF16 => v
            .iter()
            .flat_map(|x| half::bf16::from_f32(*x).to_bits().to_le_bytes())
            .collect(),
        safetensors::Dtype::F16 => v
            .iter()
            .flat_map(|x| half::f16::from_f32(*x).to_bits().to_le_bytes())
            .collect(),
        _ => v.iter().flat_map(|x| x.to_le_bytes()).collect(),
    };
    RawTensor {
        name: name.to_string(),
        shape: shape.to_vec(),
        dtype,
        data,
    }
}

/// GPT-2's byte-to-unicode table.
pub fn bytes_to_unicode() -> Vec<char> {
    let mut bs: Vec<u32> = (b'!' as u32..=b'~' as u32)
        .chain(0xA1..=0xAC)
        .chain(0xAE..=0xFF)
        .collect();
    let mut cs = bs.clone();
    let mut n = 0;
    for b in 0..256u32 {
        if !bs.contains(&b) {
            bs.push(b);
            cs.push(256 + n);
            n += 1;
        }
    }
    let mut out = vec![' '; 256];
    for (b, c) in bs.iter().zip(cs) {
        out[*b as usize] = char::from_u32(c).unwrap();
    }
    out
}

/// A byte-level BPE `tokenizer.json` (256 byte tokens, a few merges, the
/// specials of [`TINY_SPECIALS`]).
pub fn tiny_tokenizer_json() -> Value {
    let table = bytes_to_unicode();
    let mut vocab = serde_json::Map::new();
    for (i, c) in table.iter().enumerate() {
        vocab.insert(c.to_string(), json!(i));
    }
    for (i, (a, b)) in MERGES.iter().enumerate() {
        vocab.insert(format!("{a}{b}"), json!(256 + i));
    }
    let first_special = 256 + MERGES.len();
    let added: Vec<Value> = TINY_SPECIALS
        .iter()
        .enumerate()
        .map(|(i, s)| {
            json!({"id": first_special + i, "content": s, "single_word": false, "lstrip": false,
                   "rstrip": false, "normalized": false, "special": true})
        })
        .collect();
    for (i, s) in TINY_SPECIALS.iter().enumerate() {
        vocab.insert(s.to_string(), json!(first_special + i));
    }
    let merges: Vec<Value> = MERGES
        .iter()
        .map(|(a, b)| json!(format!("{a} {b}")))
        .collect();
    json!({
        "version": "1.0",
        "truncation": null,
        "padding": null,
        "added_tokens": added,
        "normalizer": null,
        "pre_tokenizer": {"type": "ByteLevel", "add_prefix_space": false, "trim_offsets": true, "use_regex": true},
        "post_processor": {"type": "ByteLevel", "add_prefix_space": true, "trim_offsets": false, "use_regex": true},
        "decoder": {"type": "ByteLevel", "add_prefix_space": true, "trim_offsets": true, "use_regex": true},
        "model": {"type": "BPE", "dropout": null, "unk_token": null, "continuing_subword_prefix": null,
                  "end_of_word_suffix": null, "fuse_unk": false, "byte_fallback": false,
                  "ignore_merges": false, "vocab": vocab, "merges": merges}
    })
}

/// ChatML, the template the tiny models ship.
pub const TINY_CHAT_TEMPLATE: &str = "{% for message in messages %}{{'<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>' + '\n'}}{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}";

/// Write a tiny random model of `arch` into `dir` (created if needed).
/// Weights are f32, except `mistral` (f16) and `qwen2` (bf16), so the loader's
/// dtypes are covered too.
pub fn write_tiny_model(dir: &Path, arch: &str, seed: u64) -> Result<ModelConfig> {
    let c = tiny_config(arch)?;
    std::fs::create_dir_all(dir)?;
    let dtype = match arch {
        "mistral" => safetensors::Dtype::F16,
        "qwen2" => safetensors::Dtype::BF16,
        _ => safetensors::Dtype::F32,
    };
    let mut g = Gauss(seed.wrapping_mul(0x9E3779B97F4A7C15).wrapping_add(1));
    let (h, v) = (c.hidden_size, c.vocab_size);
    let mut ts = vec![raw(
        "model.embed_tokens.weight",
        &[v, h],
        &g.vec(v * h, 0.5, 0.0),
        dtype,
    )];
    for l in 0..c.num_hidden_layers {
        let p = format!("model.layers.{l}");
        ts.push(raw(
            &format!("{p}.input_layernorm.weight"),
            &[h],
            &g.vec(h, 0.1, 1.0),
            dtype,
        ));
        ts.push(raw(
            &format!("{p}.post_attention_layernorm.weight"),
            &[h],
            &g.vec(h, 0.1, 1.0),
            dtype,
        ));
        for s in c.layer_linears() {
            let group = if s.name.ends_with("_proj")
                && ["gate_proj", "up_proj", "down_proj"].contains(&s.name)
            {
                "mlp"
            } else {
                "self_attn"
            };
            let std = 1.0 / (s.in_features as f32).sqrt();
            ts.push(raw(
                &format!("{p}.{group}.{}.weight", s.name),
                &[s.out_features, s.in_features],
                &g.vec(s.out_features * s.in_features, std, 0.0),
                dtype,
            ));
            if c.attention_bias && ["q_proj", "k_proj", "v_proj"].contains(&s.name) {
                ts.push(raw(
                    &format!("{p}.self_attn.{}.bias", s.name),
                    &[s.out_features],
                    &g.vec(s.out_features, 0.1, 0.0),
                    dtype,
                ));
            }
        }
        if c.qk_norm {
            ts.push(raw(
                &format!("{p}.self_attn.q_norm.weight"),
                &[c.head_dim],
                &g.vec(c.head_dim, 0.1, 1.0),
                dtype,
            ));
            ts.push(raw(
                &format!("{p}.self_attn.k_norm.weight"),
                &[c.head_dim],
                &g.vec(c.head_dim, 0.1, 1.0),
                dtype,
            ));
        }
    }
    ts.push(raw("model.norm.weight", &[h], &g.vec(h, 0.1, 1.0), dtype));
    if !c.tie_word_embeddings {
        ts.push(raw(
            "lm_head.weight",
            &[v, h],
            &g.vec(v * h, 0.125, 0.0),
            dtype,
        ));
    }
    write_safetensors(&dir.join("model.safetensors"), &ts)?;
    let mut cj = config_json(&c);
    cj["torch_dtype"] = json!(match dtype {
        safetensors::Dtype::F16 => "float16",
        safetensors::Dtype::BF16 => "bfloat16",
        _ => "float32",
    });
    std::fs::write(dir.join("config.json"), serde_json::to_string_pretty(&cj)?)?;
    std::fs::write(
        dir.join("tokenizer.json"),
        serde_json::to_string_pretty(&tiny_tokenizer_json())?,
    )?;
    let tc = json!({
        "bos_token": TINY_SPECIALS[0],
        "eos_token": TINY_SPECIALS[2],
        "pad_token": TINY_SPECIALS[0],
        "unk_token": null,
        "add_bos_token": false,
        "model_max_length": c.max_position_embeddings,
        "chat_template": TINY_CHAT_TEMPLATE,
        "tokenizer_class": "PreTrainedTokenizerFast"
    });
    std::fs::write(
        dir.join("tokenizer_config.json"),
        serde_json::to_string_pretty(&tc)?,
    )?;
    let gc = json!({"bos_token_id": c.bos_token_id, "eos_token_id": c.eos_token_ids, "do_sample": false});
    std::fs::write(
        dir.join("generation_config.json"),
        serde_json::to_string_pretty(&gc)?,
    )?;
    Ok(c)
}

/// Write a random peft LoRA adapter for a model of config `c` into `dir`:
/// every linear module of every layer (plus `lm_head` when `with_head`),
/// rank `r`, `lora_alpha` = `alpha`, both A and B non-zero so the adapter
/// changes the model. `base` goes into `base_model_name_or_path`.
pub fn write_random_adapter(
    dir: &Path,
    c: &ModelConfig,
    r: usize,
    alpha: f64,
    with_head: bool,
    base: &str,
    seed: u64,
) -> Result<()> {
    std::fs::create_dir_all(dir)?;
    let mut g = Gauss(seed.wrapping_mul(0x2545F4914F6CDD1D).wrapping_add(7));
    let mut ts = Vec::new();
    let mut pair = |module: &str, inf: usize, outf: usize, ts: &mut Vec<RawTensor>| {
        let p = format!("base_model.model.{module}");
        ts.push(raw(
            &format!("{p}.lora_A.weight"),
            &[r, inf],
            &g.vec(r * inf, 0.3, 0.0),
            safetensors::Dtype::F32,
        ));
        ts.push(raw(
            &format!("{p}.lora_B.weight"),
            &[outf, r],
            &g.vec(outf * r, 0.3, 0.0),
            safetensors::Dtype::F32,
        ));
    };
    for l in 0..c.num_hidden_layers {
        for s in c.layer_linears() {
            let group = if ["gate_proj", "up_proj", "down_proj"].contains(&s.name) {
                "mlp"
            } else {
                "self_attn"
            };
            pair(
                &format!("model.layers.{l}.{group}.{}", s.name),
                s.in_features,
                s.out_features,
                &mut ts,
            );
        }
    }
    let mut targets: Vec<&str> = super::config::LINEAR_MODULES.to_vec();
    if with_head {
        pair("lm_head", c.hidden_size, c.vocab_size, &mut ts);
        targets.push("lm_head");
    }
    write_safetensors(&dir.join("adapter_model.safetensors"), &ts)?;
    let cfg = json!({
        "peft_type": "LORA",
        "task_type": "CAUSAL_LM",
        "base_model_name_or_path": base,
        "r": r,
        "lora_alpha": alpha,
        "lora_dropout": 0.0,
        "target_modules": targets,
        "use_rslora": false,
        "bias": "none",
    });
    std::fs::write(
        dir.join("adapter_config.json"),
        serde_json::to_string_pretty(&cfg)?,
    )?;
    Ok(())
}
