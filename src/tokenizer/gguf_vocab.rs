//! Building a `tokenizer.json` from a GGUF file's `tokenizer.ggml.*` metadata.
//!
//! A GGUF carries no `tokenizer.json`; it stores the vocabulary (and merges or
//! scores) under llama.cpp's key names. This module turns that into the JSON
//! document the `tokenizers` crate reads, shaped like the `tokenizer.json` the
//! model's Hugging Face repository ships:
//!
//! - `tokenizer.ggml.model = "gpt2"`: byte-level BPE. The pre-tokenizer comes
//!   from `tokenizer.ggml.pre` (llama.cpp's names): `smollm` / `starcoder` /
//!   `refact` split digits one by one before the GPT-2 regex (SmolLM2's own
//!   `tokenizer.json` does exactly this), `llama-bpe` / `llama3` use Llama 3's
//!   split regex (and `ignore_merges`, as Llama 3's tokenizer and llama.cpp do),
//!   `qwen2` uses Qwen2's regex with NFC, `tekken` and `gpt-4o` theirs;
//!   anything else falls back to GPT-2's regex and records a warning.
//! - `tokenizer.ggml.model = "llama"`: SentencePiece-style BPE with byte
//!   fallback; merges come from `tokenizer.ggml.merges` or are recovered from
//!   the scores the way transformers' `generate_merges` does.
//!
//! Tokens typed CONTROL (3) become special added tokens, USER_DEFINED (4)
//! plain added tokens, so `<|im_start|>` in text is matched whole.

use anyhow::{bail, Context, Result};
use serde_json::{json, Map, Value};

use crate::model::gguf::{GgufFile, GgufValue};

/// llama.cpp token types.
pub const TOKEN_TYPE_NORMAL: i64 = 1;
pub const TOKEN_TYPE_UNKNOWN: i64 = 2;
pub const TOKEN_TYPE_CONTROL: i64 = 3;
pub const TOKEN_TYPE_USER_DEFINED: i64 = 4;
pub const TOKEN_TYPE_BYTE: i64 = 6;

/// The tokenizer-related contents of a GGUF file, in plain Rust types.
#[derive(Debug, Clone, Default)]
pub struct GgufVocab {
    /// `tokenizer.ggml.model`: "gpt2" or "llama".
    pub model: String,
    /// `tokenizer.ggml.pre`, if present.
    pub pre: Option<String>,
    pub tokens: Vec<String>,
    pub scores: Option<Vec<f64>>,
    pub token_types: Option<Vec<i64>>,
    pub merges: Option<Vec<String>>,
    pub bos_id: Option<u32>,
    pub eos_id: Option<u32>,
    /// `tokenizer.ggml.eot_token_id` / `eom_token_id`: end of turn / message.
    pub eot_id: Option<u32>,
    pub eom_id: Option<u32>,
    pub unk_id: Option<u32>,
    pub pad_id: Option<u32>,
    pub add_bos: Option<bool>,
    pub add_eos: Option<bool>,
    pub add_space_prefix: Option<bool>,
    pub chat_template: Option<String>,
}

fn strings(v: &GgufValue, key: &str) -> Result<Vec<String>> {
    let arr = v
        .as_array()
        .with_context(|| format!("GGUF metadata {key} is not an array"))?;
    arr.iter()
        .map(|e| {
            e.as_str()
                .map(str::to_owned)
                .with_context(|| format!("GGUF metadata {key} holds a non-string"))
        })
        .collect()
}

impl GgufVocab {
    /// Read the `tokenizer.*` keys of an opened GGUF file.
    pub fn from_gguf(file: &GgufFile) -> Result<GgufVocab> {
        let get = |k: &str| file.metadata.get(k);
        let id = |k: &str| get(k).and_then(|v| v.as_u64()).map(|v| v as u32);
        let flag = |k: &str| get(k).and_then(|v| v.as_bool());
        let model = get("tokenizer.ggml.model")
            .and_then(|v| v.as_str())
            .with_context(|| {
                format!(
                    "{} has no tokenizer (metadata key tokenizer.ggml.model is missing)",
                    file.path.display()
                )
            })?
            .to_owned();
        let tokens = strings(
            get("tokenizer.ggml.tokens").context("GGUF metadata tokenizer.ggml.tokens missing")?,
            "tokenizer.ggml.tokens",
        )?;
        let merges = match get("tokenizer.ggml.merges") {
            Some(v) => Some(strings(v, "tokenizer.ggml.merges")?),
            None => None,
        };
        let scores = get("tokenizer.ggml.scores")
            .and_then(|v| v.as_array())
            .map(|a| a.iter().map(|x| x.as_f64().unwrap_or(0.0)).collect());
        let token_types = get("tokenizer.ggml.token_type")
            .and_then(|v| v.as_array())
            .map(|a| {
                a.iter()
                    .map(|x| x.as_i64().unwrap_or(TOKEN_TYPE_NORMAL))
                    .collect()
            });
        Ok(GgufVocab {
            model,
            pre: get("tokenizer.ggml.pre")
                .and_then(|v| v.as_str())
                .map(str::to_owned),
            tokens,
            scores,
            token_types,
            merges,
            bos_id: id("tokenizer.ggml.bos_token_id"),
            eos_id: id("tokenizer.ggml.eos_token_id"),
            eot_id: id("tokenizer.ggml.eot_token_id"),
            eom_id: id("tokenizer.ggml.eom_token_id"),
            unk_id: id("tokenizer.ggml.unknown_token_id"),
            pad_id: id("tokenizer.ggml.padding_token_id"),
            add_bos: flag("tokenizer.ggml.add_bos_token"),
            add_eos: flag("tokenizer.ggml.add_eos_token"),
            add_space_prefix: flag("tokenizer.ggml.add_space_prefix"),
            chat_template: get("tokenizer.chat_template")
                .and_then(|v| v.as_str())
                .map(str::to_owned),
        })
    }

    /// The token string of an id, if the id is in range.
    pub fn token(&self, id: Option<u32>) -> Option<&str> {
        id.and_then(|i| self.tokens.get(i as usize))
            .map(String::as_str)
    }

    /// Whether BOS is added when encoding with special tokens. llama.cpp adds
    /// it to SentencePiece vocabularies that do not say otherwise.
    pub fn adds_bos(&self) -> bool {
        self.add_bos.unwrap_or(self.model == "llama")
    }

    fn token_type(&self, i: usize) -> i64 {
        self.token_types
            .as_ref()
            .and_then(|t| t.get(i).copied())
            .unwrap_or(TOKEN_TYPE_NORMAL)
    }
}

/// GPT-2's byte-to-unicode table: every byte gets a printable character.
pub fn bytes_to_unicode() -> [char; 256] {
    let mut table = ['\0'; 256];
    let mut n = 0u32;
    for b in 0..256u32 {
        let printable = (0x21..=0x7e).contains(&b) || (0xa1..=0xac).contains(&b) || b >= 0xae;
        table[b as usize] = if printable {
            char::from_u32(b).unwrap()
        } else {
            let c = char::from_u32(256 + n).unwrap();
            n += 1;
            c
        };
    }
    table
}

const LLAMA3_SPLIT: &str = r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+";
const QWEN2_SPLIT: &str = r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+";
const TEKKEN_SPLIT: &str = r"[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]*[\p{Ll}\p{Lm}\p{Lo}\p{M}]+|[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]+[\p{Ll}\p{Lm}\p{Lo}\p{M}]*|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n/]*|\s*[\r\n]+|\s+(?!\S)|\s+";
const GPT4O_SPLIT: &str = r"[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]*[\p{Ll}\p{Lm}\p{Lo}\p{M}]+(?i:'s|'t|'re|'ve|'m|'ll|'d)?|[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]+[\p{Ll}\p{Lm}\p{Lo}\p{M}]*(?i:'s|'t|'re|'ve|'m|'ll|'d)?|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n/]*|\s*[\r\n]+|\s+(?!\S)|\s+";

fn byte_level(use_regex: bool) -> Value {
    json!({"type": "ByteLevel", "add_prefix_space": false, "trim_offsets": true, "use_regex": use_regex})
}

fn split_then_bytes(regex: &str) -> Value {
    json!({"type": "Sequence", "pretokenizers": [
        {"type": "Split", "pattern": {"Regex": regex}, "behavior": "Isolated", "invert": false},
        byte_level(false),
    ]})
}

/// The pre-tokenizer, normalizer and `ignore_merges` for a llama.cpp `pre`
/// name; `None` when the name is unknown.
fn byte_level_pre(pre: &str) -> Option<(Value, Value, bool)> {
    Some(match pre {
        "smollm" | "starcoder" | "refact" | "codeshell" => (
            json!({"type": "Sequence", "pretokenizers": [
                {"type": "Digits", "individual_digits": true},
                byte_level(true),
            ]}),
            Value::Null,
            false,
        ),
        "llama3" | "llama-v3" | "llama-bpe" | "falcon3" | "pixtral" | "dbrx" | "smaug-bpe" => {
            (split_then_bytes(LLAMA3_SPLIT), Value::Null, true)
        }
        "qwen2" | "deepseek-r1-qwen" | "megrez" | "stablelm2" => {
            (split_then_bytes(QWEN2_SPLIT), json!({"type": "NFC"}), false)
        }
        "tekken" => (split_then_bytes(TEKKEN_SPLIT), Value::Null, false),
        "gpt-4o" | "llama4" => (split_then_bytes(GPT4O_SPLIT), Value::Null, false),
        "default" | "gpt2" | "gpt-2" | "olmo" | "phi-2" | "poro-chat" | "jais" | "mpt" => {
            (byte_level(true), Value::Null, false)
        }
        _ => return None,
    })
}

/// Transformers' `generate_merges` with scores: every split of every token
/// into two tokens of the vocabulary, best-scored merged token first.
fn merges_from_scores(tokens: &[String], scores: &[f64]) -> Vec<(String, String)> {
    use std::collections::HashMap;
    let mut vocab: HashMap<&str, usize> = HashMap::with_capacity(tokens.len());
    for (i, t) in tokens.iter().enumerate() {
        vocab.insert(t.as_str(), i);
    }
    // (left, right, score, chars of left, chars of right)
    let mut merges: Vec<(&str, &str, f64, usize, usize)> = Vec::new();
    let mut seen = std::collections::HashSet::new();
    for (i, tok) in tokens.iter().enumerate() {
        // A Python dict keeps the first position and the last value of a
        // duplicated key; duplicates are rare enough to keep the first.
        if !seen.insert(tok.as_str()) {
            continue;
        }
        let score = scores.get(i).copied().unwrap_or(0.0);
        let mut local = Vec::new();
        for (k, (byte_pos, _)) in tok.char_indices().enumerate().skip(1) {
            let (l, r) = tok.split_at(byte_pos);
            if let (Some(&il), Some(&ir)) = (vocab.get(l), vocab.get(r)) {
                local.push((l, r, score, k, r.chars().count(), il, ir));
            }
        }
        local.sort_by_key(|x| (x.5, x.6));
        merges.extend(local.into_iter().map(|x| (x.0, x.1, x.2, x.3, x.4)));
    }
    merges.sort_by(|a, b| {
        b.2.partial_cmp(&a.2)
            .unwrap_or(std::cmp::Ordering::Equal)
            .then(b.3.cmp(&a.3))
            .then(b.4.cmp(&a.4))
    });
    merges
        .into_iter()
        .map(|(l, r, ..)| (l.to_owned(), r.to_owned()))
        .collect()
}

fn added_token(id: usize, content: &str, special: bool) -> Value {
    json!({"id": id, "content": content, "single_word": false, "lstrip": false,
           "rstrip": false, "normalized": false, "special": special})
}

fn template_processing(bos: Option<(&str, u32)>, eos: Option<(&str, u32)>) -> Value {
    let mut single = Vec::new();
    let mut pair = Vec::new();
    let mut specials = Map::new();
    if let Some((t, id)) = bos {
        single.push(json!({"SpecialToken": {"id": t, "type_id": 0}}));
        pair.push(json!({"SpecialToken": {"id": t, "type_id": 0}}));
        specials.insert(t.into(), json!({"id": t, "ids": [id], "tokens": [t]}));
    }
    single.push(json!({"Sequence": {"id": "A", "type_id": 0}}));
    pair.push(json!({"Sequence": {"id": "A", "type_id": 0}}));
    if let Some((t, id)) = eos {
        single.push(json!({"SpecialToken": {"id": t, "type_id": 0}}));
        pair.push(json!({"SpecialToken": {"id": t, "type_id": 0}}));
        specials.insert(t.into(), json!({"id": t, "ids": [id], "tokens": [t]}));
    }
    if let Some((t, _)) = bos {
        pair.push(json!({"SpecialToken": {"id": t, "type_id": 1}}));
    }
    pair.push(json!({"Sequence": {"id": "B", "type_id": 1}}));
    if let Some((t, _)) = eos {
        pair.push(json!({"SpecialToken": {"id": t, "type_id": 1}}));
    }
    json!({"type": "TemplateProcessing", "single": single, "pair": pair, "special_tokens": specials})
}

/// A `tokenizer.json` document for the vocabulary, plus warnings (for
/// example an unknown pre-tokenizer name).
pub fn tokenizer_json(v: &GgufVocab) -> Result<(Value, Vec<String>)> {
    let mut warnings = Vec::new();
    let n = v.tokens.len();
    if n == 0 {
        bail!("GGUF tokenizer has an empty vocabulary");
    }
    let byte_level_model = match v.model.as_str() {
        "gpt2" => true,
        "llama" => false,
        other => bail!(
            "unsupported GGUF tokenizer model {other:?} (supported: \"gpt2\" byte-level BPE, \"llama\" SentencePiece BPE)"
        ),
    };
    let alphabet = bytes_to_unicode();
    let in_alphabet = |s: &str| s.chars().all(|c| alphabet.contains(&c));

    // The vocabulary, as the model sees it.
    let mut vocab = Map::new();
    for (i, tok) in v.tokens.iter().enumerate() {
        let key = if byte_level_model && !in_alphabet(tok) {
            tok.bytes()
                .map(|b| alphabet[b as usize])
                .collect::<String>()
        } else {
            tok.clone()
        };
        vocab.insert(key, json!(i));
    }

    // Added tokens: CONTROL -> special, USER_DEFINED -> plain; plus the
    // declared bos / eos / unk / pad (transformers adds those as special).
    let mut added: Vec<(usize, bool)> = Vec::new();
    let declared: Vec<u32> = [v.bos_id, v.eos_id, v.unk_id, v.pad_id, v.eot_id, v.eom_id]
        .into_iter()
        .flatten()
        .filter(|&i| (i as usize) < n)
        .collect();
    for (i, tok) in v.tokens.iter().enumerate() {
        let ty = v.token_type(i);
        let control = ty == TOKEN_TYPE_CONTROL || declared.contains(&(i as u32));
        if control {
            // In a byte-level vocabulary a control token spelled outside the
            // byte alphabet is a llama.cpp mislabel (transformers skips it).
            if !byte_level_model || in_alphabet(tok) {
                added.push((i, true));
            }
        } else if ty == TOKEN_TYPE_USER_DEFINED && (!byte_level_model || in_alphabet(tok)) {
            added.push((i, false));
        }
    }
    let added_tokens: Vec<Value> = added
        .iter()
        .map(|&(i, special)| added_token(i, &v.tokens[i], special))
        .collect();

    let merges: Vec<(String, String)> = match &v.merges {
        Some(m) => m
            .iter()
            .map(|s| {
                s.split_once(' ')
                    .map(|(a, b)| (a.to_owned(), b.to_owned()))
                    .with_context(|| format!("GGUF merge {s:?} has no space"))
            })
            .collect::<Result<_>>()?,
        None => match &v.scores {
            Some(scores) if !byte_level_model => merges_from_scores(&v.tokens, scores),
            _ => bail!("GGUF tokenizer has neither tokenizer.ggml.merges nor scores"),
        },
    };

    let bos = if v.adds_bos() {
        v.bos_id.and_then(|id| v.token(Some(id)).map(|t| (t, id)))
    } else {
        None
    };
    let eos = if v.add_eos.unwrap_or(false) {
        v.eos_id.and_then(|id| v.token(Some(id)).map(|t| (t, id)))
    } else {
        None
    };

    let doc = if byte_level_model {
        let pre_name = v.pre.as_deref().unwrap_or("default");
        let (pre, normalizer, ignore_merges) = match byte_level_pre(pre_name) {
            Some(p) => p,
            None => {
                warnings.push(format!(
                    "unknown GGUF pre-tokenizer {pre_name:?}; using GPT-2's split, token ids may differ from the original tokenizer"
                ));
                byte_level_pre("default").unwrap()
            }
        };
        let post = if bos.is_some() || eos.is_some() {
            template_processing(bos, eos)
        } else {
            json!({"type": "ByteLevel", "add_prefix_space": true, "trim_offsets": false, "use_regex": true})
        };
        json!({
            "version": "1.0", "truncation": null, "padding": null,
            "added_tokens": added_tokens,
            "normalizer": normalizer,
            "pre_tokenizer": pre,
            "post_processor": post,
            "decoder": {"type": "ByteLevel", "add_prefix_space": true, "trim_offsets": true, "use_regex": true},
            "model": {"type": "BPE", "dropout": null, "unk_token": null,
                      "continuing_subword_prefix": null, "end_of_word_suffix": null,
                      "fuse_unk": false, "byte_fallback": false, "ignore_merges": ignore_merges,
                      "vocab": vocab, "merges": merges},
        })
    } else {
        let prefix = v.add_space_prefix.unwrap_or(true);
        let mut decoders = vec![
            json!({"type": "Replace", "pattern": {"String": "\u{2581}"}, "content": " "}),
            json!({"type": "ByteFallback"}),
            json!({"type": "Fuse"}),
        ];
        if prefix {
            decoders.push(json!({"type": "Strip", "content": " ", "start": 1, "stop": 0}));
        }
        let post = if bos.is_some() || eos.is_some() {
            template_processing(bos, eos)
        } else {
            Value::Null
        };
        json!({
            "version": "1.0", "truncation": null, "padding": null,
            "added_tokens": added_tokens,
            "normalizer": null,
            "pre_tokenizer": {"type": "Metaspace", "replacement": "\u{2581}",
                              "prepend_scheme": if prefix { "first" } else { "never" }, "split": false},
            "post_processor": post,
            "decoder": {"type": "Sequence", "decoders": decoders},
            "model": {"type": "BPE", "dropout": null, "unk_token": v.token(v.unk_id),
                      "continuing_subword_prefix": null, "end_of_word_suffix": null,
                      "fuse_unk": true, "byte_fallback": true, "ignore_merges": false,
                      "vocab": vocab, "merges": merges},
        })
    };
    Ok((doc, warnings))
}

/// Recognise a byte-level pre-tokenizer (as `tokenizer.json` spells it) by
/// llama.cpp's name for it.
fn pre_name_of(pre: &Value) -> Option<&'static str> {
    let text = pre.to_string();
    if text.contains("\"Digits\"") && text.contains("\"individual_digits\":true") {
        return Some("smollm");
    }
    for (regex, name) in [
        (LLAMA3_SPLIT, "llama-bpe"),
        (QWEN2_SPLIT, "qwen2"),
        (TEKKEN_SPLIT, "tekken"),
        (GPT4O_SPLIT, "gpt-4o"),
    ] {
        if text.contains(&serde_json::to_string(regex).ok()?) {
            return Some(name);
        }
    }
    if pre.get("type").and_then(Value::as_str) == Some("ByteLevel") {
        return Some("gpt2");
    }
    None
}

/// The vocabulary of a `tokenizer.json` document (a BPE model) in GGUF terms:
/// the inverse of [`tokenizer_json`]. Special-token ids, flags and the chat
/// template are the caller's to fill in.
pub fn from_tokenizer_json(doc: &Value) -> Result<GgufVocab> {
    let model = &doc["model"];
    if model.get("type").and_then(Value::as_str) != Some("BPE") {
        bail!(
            "only BPE tokenizers can be written to GGUF (this one is {})",
            model
                .get("type")
                .and_then(Value::as_str)
                .unwrap_or("unknown")
        );
    }
    let byte_fallback = model
        .get("byte_fallback")
        .and_then(Value::as_bool)
        .unwrap_or(false);
    let mut by_id: Vec<Option<String>> = Vec::new();
    let mut put = |id: usize, tok: &str| {
        if by_id.len() <= id {
            by_id.resize(id + 1, None);
        }
        by_id[id] = Some(tok.to_owned());
    };
    for (tok, id) in model["vocab"]
        .as_object()
        .context("tokenizer.json has no vocab")?
    {
        put(id.as_u64().context("bad vocab id")? as usize, tok);
    }
    let mut specials = std::collections::HashMap::new();
    for t in doc["added_tokens"].as_array().into_iter().flatten() {
        let id = t["id"].as_u64().context("bad added token id")? as usize;
        let content = t["content"].as_str().unwrap_or_default();
        put(id, content);
        specials.insert(id, t["special"].as_bool().unwrap_or(false));
    }
    let unk = model.get("unk_token").and_then(Value::as_str);
    let mut tokens = Vec::with_capacity(by_id.len());
    let mut types = Vec::with_capacity(by_id.len());
    for (i, t) in by_id.into_iter().enumerate() {
        let (tok, ty) = match t {
            None => (format!("[PAD{i}]"), 5),
            Some(t) => {
                let ty = match specials.get(&i) {
                    Some(true) if Some(t.as_str()) == unk => TOKEN_TYPE_UNKNOWN,
                    Some(true) => TOKEN_TYPE_CONTROL,
                    Some(false) => TOKEN_TYPE_USER_DEFINED,
                    None if byte_fallback
                        && t.len() == 6
                        && t.starts_with("<0x")
                        && t.ends_with('>') =>
                    {
                        TOKEN_TYPE_BYTE
                    }
                    None if Some(t.as_str()) == unk => TOKEN_TYPE_UNKNOWN,
                    None => TOKEN_TYPE_NORMAL,
                };
                (t, ty)
            }
        };
        tokens.push(tok);
        types.push(ty);
    }
    let merges: Vec<String> = model["merges"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|m| match m {
            Value::String(s) => Ok(s.clone()),
            Value::Array(p) if p.len() == 2 => Ok(format!(
                "{} {}",
                p[0].as_str().unwrap_or_default(),
                p[1].as_str().unwrap_or_default()
            )),
            _ => bail!("bad merge {m}"),
        })
        .collect::<Result<_>>()?;
    let mut v = GgufVocab {
        tokens,
        token_types: Some(types),
        ..Default::default()
    };
    if byte_fallback {
        // SentencePiece style: llama.cpp merges by score, so the score of a
        // token is minus the rank of the merge that makes it.
        v.model = "llama".into();
        let index: std::collections::HashMap<&str, usize> = v
            .tokens
            .iter()
            .enumerate()
            .map(|(i, t)| (t.as_str(), i))
            .collect();
        let mut scores = vec![0.0; v.tokens.len()];
        for (rank, m) in merges.iter().enumerate() {
            let merged: String = m.split(' ').collect();
            if let Some(&i) = index.get(merged.as_str()) {
                if scores[i] == 0.0 {
                    scores[i] = -(rank as f64 + 1.0);
                }
            }
        }
        v.scores = Some(scores);
        v.add_space_prefix = Some(
            doc["pre_tokenizer"]
                .get("prepend_scheme")
                .and_then(Value::as_str)
                .map(|s| s != "never")
                .unwrap_or(true),
        );
    } else {
        v.model = "gpt2".into();
        v.pre = Some(
            pre_name_of(&doc["pre_tokenizer"])
                .unwrap_or("default")
                .into(),
        );
        v.merges = Some(merges);
    }
    Ok(v)
}

/// GGUF metadata (`tokenizer.ggml.*`, `tokenizer.chat_template`) for a vocabulary.
pub fn to_metadata(v: &GgufVocab) -> Vec<(String, GgufValue)> {
    let s = |x: &str| GgufValue::String(x.to_owned());
    let mut m = vec![
        ("tokenizer.ggml.model".to_string(), s(&v.model)),
        (
            "tokenizer.ggml.tokens".to_string(),
            GgufValue::Array(v.tokens.iter().map(|t| s(t)).collect()),
        ),
    ];
    if let Some(pre) = &v.pre {
        m.push(("tokenizer.ggml.pre".into(), s(pre)));
    }
    if let Some(types) = &v.token_types {
        m.push((
            "tokenizer.ggml.token_type".into(),
            GgufValue::Array(types.iter().map(|&t| GgufValue::I32(t as i32)).collect()),
        ));
    }
    if let Some(scores) = &v.scores {
        m.push((
            "tokenizer.ggml.scores".into(),
            GgufValue::Array(scores.iter().map(|&x| GgufValue::F32(x as f32)).collect()),
        ));
    }
    if let Some(merges) = &v.merges {
        m.push((
            "tokenizer.ggml.merges".into(),
            GgufValue::Array(merges.iter().map(|t| s(t)).collect()),
        ));
    }
    for (key, id) in [
        ("bos_token_id", v.bos_id),
        ("eos_token_id", v.eos_id),
        ("eot_token_id", v.eot_id),
        ("eom_token_id", v.eom_id),
        ("unknown_token_id", v.unk_id),
        ("padding_token_id", v.pad_id),
    ] {
        if let Some(id) = id {
            m.push((format!("tokenizer.ggml.{key}"), GgufValue::U32(id)));
        }
    }
    for (key, flag) in [
        ("add_bos_token", v.add_bos),
        ("add_eos_token", v.add_eos),
        ("add_space_prefix", v.add_space_prefix),
    ] {
        if let Some(f) = flag {
            m.push((format!("tokenizer.ggml.{key}"), GgufValue::Bool(f)));
        }
    }
    if let Some(t) = &v.chat_template {
        m.push(("tokenizer.chat_template".into(), s(t)));
    }
    m
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn byte_table_matches_gpt2() {
        let t = bytes_to_unicode();
        assert_eq!(t[b' ' as usize], 'Ġ');
        assert_eq!(t[b'\n' as usize], 'Ċ');
        assert_eq!(t[b'a' as usize], 'a');
        assert_eq!(t[0], 'Ā');
        let set: std::collections::HashSet<char> = t.iter().copied().collect();
        assert_eq!(set.len(), 256);
    }

    #[test]
    fn merges_from_scores_prefers_high_scores() {
        let tokens: Vec<String> = ["a", "b", "c", "ab", "abc", "bc"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        let scores = vec![0.0, 0.0, 0.0, -1.0, -3.0, -2.0];
        let m = merges_from_scores(&tokens, &scores);
        assert_eq!(
            m,
            vec![
                ("a".into(), "b".into()),
                ("b".into(), "c".into()),
                ("ab".into(), "c".into()),
                ("a".into(), "bc".into()),
            ]
        );
    }
}
