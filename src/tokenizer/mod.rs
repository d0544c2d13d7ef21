//! Tokenizers (tokenizer.json and GGUF vocabularies), chat templates, stop
//! handling (issue 02).
//!
//! # API (stable; `infer`, `serve`, `data`, `train`, `merge` build on it)
//!
//! ```no_run
//! use swift::tokenizer::{Tokenizer, Message, StreamDecoder, StopMatcher};
//! # fn main() -> anyhow::Result<()> {
//! // A model folder (tokenizer.json + tokenizer_config.json ...) or a .gguf file.
//! let tok = Tokenizer::load("fixtures/cache/SmolLM2-135M-Instruct.Q4_1.gguf".as_ref())?;
//! let prompt = tok.apply_chat_template(&[Message::user("Hi")], true)?;
//! let ids = tok.encode(&prompt, false)?;      // special tokens in text are matched
//! let text = tok.decode(&ids, false)?;        // round-trips
//! let stop_ids: &[u32] = tok.eos_ids();       // EVERY end id the model declares
//! let mut stream = StreamDecoder::new(&tok, true);
//! let mut stops = StopMatcher::new(tok.stop_strings());
//! for &id in &ids {
//!     if let Some(chunk) = stream.step(id)? {
//!         let out = stops.push(&chunk);     // out.text is safe to print
//!         if out.stopped.is_some() { break; }
//!     }
//! }
//! # Ok(()) }
//! ```
//!
//! - [`Tokenizer::from_dir`]: `tokenizer.json` (required), `tokenizer_config.json`
//!   (special tokens, `chat_template`, `add_bos_token` / `add_eos_token`,
//!   `clean_up_tokenization_spaces`), `chat_template.jinja` (wins over the
//!   config's template, as in transformers 5), `special_tokens_map.json`,
//!   `generation_config.json` (`eos_token_id`, int or list).
//! - [`Tokenizer::from_gguf`]: `tokenizer.ggml.*` and `tokenizer.chat_template`
//!   (see [`gguf_vocab`]).
//! - [`Tokenizer::load`]: either, by path (a `tokenizer.json` path means its folder).
//! - `encode(text, add_special_tokens)`: with `true`, BOS/EOS are added as the
//!   model's tokenizer adds them (SmolLM2: nothing; Llama: BOS).
//! - `decode(ids, skip_special)`; `clean_up_tokenization_spaces` is applied
//!   when the config asks for it (as transformers does).
//! - [`Tokenizer::eos_ids`]: the union of the configured eos, the
//!   `generation_config.json` list, the GGUF eos / eot / eom ids, and the
//!   end-of-turn tokens the chat template writes (`<|im_end|>`, `<|eot_id|>`,
//!   `<end_of_turn>`, ...), primary eos first.
//! - [`Tokenizer::stop_strings`]: the template's end-of-turn strings, for text
//!   matching (useful when they are not single tokens, e.g. alpaca).
//! - [`Tokenizer::set_chat_template`] / [`Tokenizer::use_builtin_template`]:
//!   override the template (`--template chatml`); the built-in's stop tokens
//!   join `eos_ids`.
//! - [`Tokenizer::save`]: writes `tokenizer.json`, `tokenizer_config.json`
//!   (with `chat_template`) and `special_tokens_map.json` into a folder, from
//!   any loaded tokenizer (a GGUF's included).

pub mod gguf_vocab;
pub mod stream;
pub mod template;

use std::collections::HashSet;
use std::path::Path;

use anyhow::{anyhow, bail, Context, Result};
use serde_json::{json, Map, Value};

use crate::model::gguf::GgufFile;

pub use stream::{StopChunk, StopMatcher, StreamDecoder};
pub use template::{ChatTemplate, Message, RenderOptions};

/// A tokenizer with its special tokens, eos ids and chat template.
#[derive(Clone)]
pub struct Tokenizer {
    inner: tokenizers::Tokenizer,
    bos_token: Option<String>,
    eos_token: Option<String>,
    unk_token: Option<String>,
    pad_token: Option<String>,
    eos_ids: Vec<u32>,
    add_bos: Option<bool>,
    add_eos: Option<bool>,
    clean_up_spaces: bool,
    template: Option<ChatTemplate>,
    stop_strings: Vec<String>,
    /// Keys of the original tokenizer_config.json, kept when saving.
    config: Map<String, Value>,
    warnings: Vec<String>,
    /// The GGUF vocabulary this tokenizer was built from, if any.
    gguf_source: Option<std::sync::Arc<gguf_vocab::GgufVocab>>,
}

impl std::fmt::Debug for Tokenizer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Tokenizer")
            .field("vocab_size", &self.vocab_size())
            .field("bos_token", &self.bos_token)
            .field("eos_token", &self.eos_token)
            .field("eos_ids", &self.eos_ids)
            .field("template", &self.template)
            .finish_non_exhaustive()
    }
}

/// A special token in tokenizer_config.json: a string or `{"content": ...}`.
fn token_str(v: Option<&Value>) -> Option<String> {
    match v? {
        Value::String(s) => Some(s.clone()),
        Value::Object(o) => o.get("content").and_then(|c| c.as_str()).map(str::to_owned),
        _ => None,
    }
}

fn read_json(path: &Path) -> Result<Option<Value>> {
    if !path.exists() {
        return Ok(None);
    }
    let text =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    let v = serde_json::from_str(&text).with_context(|| format!("parsing {}", path.display()))?;
    Ok(Some(v))
}

/// transformers' `clean_up_tokenization`.
fn clean_up_tokenization(s: &str) -> String {
    s.replace(" .", ".")
        .replace(" ?", "?")
        .replace(" !", "!")
        .replace(" ,", ",")
        .replace(" ' ", "'")
        .replace(" n't", "n't")
        .replace(" 'm", "'m")
        .replace(" 's", "'s")
        .replace(" 've", "'ve")
        .replace(" 're", "'re")
}

impl Tokenizer {
    fn from_parts(inner: tokenizers::Tokenizer) -> Tokenizer {
        Tokenizer {
            inner,
            bos_token: None,
            eos_token: None,
            unk_token: None,
            pad_token: None,
            eos_ids: Vec::new(),
            add_bos: None,
            add_eos: None,
            clean_up_spaces: false,
            template: None,
            stop_strings: Vec::new(),
            config: Map::new(),
            warnings: Vec::new(),
            gguf_source: None,
        }
    }

    /// Load a folder or a `.gguf` file (a path to a `tokenizer.json` loads
    /// its folder).
    pub fn load(path: &Path) -> Result<Tokenizer> {
        if path.is_dir() {
            return Tokenizer::from_dir(path);
        }
        if !path.exists() {
            bail!("{} does not exist", path.display());
        }
        if path.file_name().and_then(|n| n.to_str()) == Some("tokenizer.json") {
            let dir = path.parent().unwrap_or(Path::new("."));
            return Tokenizer::from_dir(dir);
        }
        let gguf = GgufFile::open(path)
            .with_context(|| format!("loading a tokenizer from {}", path.display()))?;
        Tokenizer::from_gguf(&gguf)
    }

    /// Load a Hugging Face model folder.
    pub fn from_dir(dir: &Path) -> Result<Tokenizer> {
        let tj = dir.join("tokenizer.json");
        if !tj.exists() {
            bail!(
                "{} has no tokenizer.json (only fast tokenizers are supported)",
                dir.display()
            );
        }
        let bytes = std::fs::read(&tj).with_context(|| format!("reading {}", tj.display()))?;
        let inner = tokenizers::Tokenizer::from_bytes(&bytes)
            .map_err(|e| anyhow!("parsing {}: {e}", tj.display()))?;
        let mut t = Tokenizer::from_parts(inner);

        let config = match read_json(&dir.join("tokenizer_config.json"))? {
            Some(Value::Object(m)) => m,
            _ => Map::new(),
        };
        let stmap = match read_json(&dir.join("special_tokens_map.json"))? {
            Some(Value::Object(m)) => m,
            _ => Map::new(),
        };
        let pick = |k: &str| token_str(config.get(k)).or_else(|| token_str(stmap.get(k)));
        t.bos_token = pick("bos_token");
        t.eos_token = pick("eos_token");
        t.unk_token = pick("unk_token");
        t.pad_token = pick("pad_token");
        t.add_bos = config.get("add_bos_token").and_then(Value::as_bool);
        t.add_eos = config.get("add_eos_token").and_then(Value::as_bool);
        t.clean_up_spaces = config
            .get("clean_up_tokenization_spaces")
            .and_then(Value::as_bool)
            .unwrap_or(false);

        // The chat template: chat_template.jinja, else the config's (a string,
        // or a list of named templates of which "default" is used).
        let jinja = dir.join("chat_template.jinja");
        let source = if jinja.exists() {
            Some(
                std::fs::read_to_string(&jinja)
                    .with_context(|| format!("reading {}", jinja.display()))?,
            )
        } else {
            match config.get("chat_template") {
                Some(Value::String(s)) => Some(s.clone()),
                Some(Value::Array(list)) => list
                    .iter()
                    .find(|e| e.get("name").and_then(Value::as_str) == Some("default"))
                    .or_else(|| list.first())
                    .and_then(|e| e.get("template"))
                    .and_then(Value::as_str)
                    .map(str::to_owned),
                _ => match read_json(&dir.join("chat_template.json"))? {
                    Some(v) => v
                        .get("chat_template")
                        .and_then(Value::as_str)
                        .map(str::to_owned),
                    None => None,
                },
            }
        };
        if let Some(src) = source {
            t.template = Some(
                ChatTemplate::new(&src)
                    .with_context(|| format!("the chat template of {}", dir.display()))?,
            );
        }

        let mut eos = Vec::new();
        if let Some(e) = &t.eos_token {
            eos.extend(t.inner.token_to_id(e));
        }
        if let Some(gen) = read_json(&dir.join("generation_config.json"))? {
            match gen.get("eos_token_id") {
                Some(Value::Number(n)) => eos.extend(n.as_u64().map(|x| x as u32)),
                Some(Value::Array(a)) => {
                    eos.extend(a.iter().filter_map(Value::as_u64).map(|x| x as u32))
                }
                _ => {}
            }
        }
        t.config = config;
        t.eos_ids = eos;
        t.finish_eos();
        Ok(t)
    }

    /// Build from a GGUF file's metadata.
    pub fn from_gguf(file: &GgufFile) -> Result<Tokenizer> {
        let vocab = gguf_vocab::GgufVocab::from_gguf(file)?;
        Tokenizer::from_gguf_vocab(&vocab)
            .with_context(|| format!("building the tokenizer of {}", file.path.display()))
    }

    /// Build from GGUF tokenizer metadata already read out.
    pub fn from_gguf_vocab(v: &gguf_vocab::GgufVocab) -> Result<Tokenizer> {
        let (doc, warnings) = gguf_vocab::tokenizer_json(v)?;
        let bytes = serde_json::to_vec(&doc)?;
        let inner = tokenizers::Tokenizer::from_bytes(&bytes)
            .map_err(|e| anyhow!("building the tokenizer from GGUF metadata: {e}"))?;
        let mut t = Tokenizer::from_parts(inner);
        t.warnings = warnings;
        t.gguf_source = Some(std::sync::Arc::new(v.clone()));
        t.bos_token = v.token(v.bos_id).map(str::to_owned);
        t.eos_token = v.token(v.eos_id).map(str::to_owned);
        t.unk_token = v.token(v.unk_id).map(str::to_owned);
        t.pad_token = v.token(v.pad_id).map(str::to_owned);
        t.add_bos = Some(v.adds_bos());
        t.add_eos = Some(v.add_eos.unwrap_or(false));
        if let Some(src) = &v.chat_template {
            t.template =
                Some(ChatTemplate::new(src).context("the chat template in the GGUF metadata")?);
        }
        t.eos_ids = [v.eos_id, v.eot_id, v.eom_id]
            .into_iter()
            .flatten()
            .filter(|&i| (i as usize) < v.tokens.len())
            .collect();
        t.finish_eos();
        Ok(t)
    }

    /// Add the template's end-of-turn tokens to the eos ids (those that are
    /// tokens) and the stop strings; dedupe, keeping order.
    fn finish_eos(&mut self) {
        let mut ids = std::mem::take(&mut self.eos_ids);
        let mut strings = Vec::new();
        if let Some(t) = &self.template {
            for s in t.stop_tokens() {
                match self.single_token_id(s) {
                    Some(id) => ids.push(id),
                    None => strings.push(s.clone()),
                }
                if !strings.contains(s) {
                    strings.push(s.clone());
                }
            }
        }
        let mut seen = HashSet::new();
        ids.retain(|i| seen.insert(*i));
        self.eos_ids = ids;
        self.stop_strings = strings;
    }

    /// The id of a string that is exactly one token of the vocabulary.
    fn single_token_id(&self, s: &str) -> Option<u32> {
        self.inner.token_to_id(s).or_else(|| {
            let enc = self.inner.encode(s, false).ok()?;
            match enc.get_ids() {
                [one] => Some(*one),
                _ => None,
            }
        })
    }

    /// Encode text. Special tokens written in the text (`<|im_start|>`) are
    /// recognised as such. With `add_special_tokens`, BOS/EOS are added the
    /// way the model's tokenizer adds them.
    pub fn encode(&self, text: &str, add_special_tokens: bool) -> Result<Vec<u32>> {
        let enc = self
            .inner
            .encode(text, add_special_tokens)
            .map_err(|e| anyhow!("tokenizing: {e}"))?;
        let mut ids = enc.get_ids().to_vec();
        if add_special_tokens {
            if self.add_bos == Some(true) {
                if let Some(b) = self.bos_id() {
                    if ids.first() != Some(&b) {
                        ids.insert(0, b);
                    }
                }
            }
            if self.add_eos == Some(true) {
                if let Some(e) = self.eos_token.as_deref().and_then(|e| self.token_to_id(e)) {
                    if ids.last() != Some(&e) {
                        ids.push(e);
                    }
                }
            }
        }
        Ok(ids)
    }

    /// Encode many texts (in parallel).
    pub fn encode_batch(&self, texts: &[&str], add_special_tokens: bool) -> Result<Vec<Vec<u32>>> {
        use rayon::prelude::*;
        texts
            .par_iter()
            .map(|t| self.encode(t, add_special_tokens))
            .collect()
    }

    /// Decode ids to text (`skip_special` drops special tokens).
    pub fn decode(&self, ids: &[u32], skip_special: bool) -> Result<String> {
        let s = self
            .inner
            .decode(ids, skip_special)
            .map_err(|e| anyhow!("decoding: {e}"))?;
        Ok(if self.clean_up_spaces {
            clean_up_tokenization(&s)
        } else {
            s
        })
    }

    /// The BOS id, if the model has one.
    pub fn bos_id(&self) -> Option<u32> {
        self.bos_token.as_deref().and_then(|t| self.token_to_id(t))
    }

    /// The BOS token string.
    pub fn bos_token(&self) -> Option<&str> {
        self.bos_token.as_deref()
    }

    /// The (primary) EOS token string.
    pub fn eos_token(&self) -> Option<&str> {
        self.eos_token.as_deref()
    }

    /// The pad id (falls back to nothing; callers pick eos if they need one).
    pub fn pad_id(&self) -> Option<u32> {
        self.pad_token.as_deref().and_then(|t| self.token_to_id(t))
    }

    /// Every id that ends generation, primary eos first.
    pub fn eos_ids(&self) -> &[u32] {
        &self.eos_ids
    }

    /// Whether `id` ends generation.
    pub fn is_eos(&self, id: u32) -> bool {
        self.eos_ids.contains(&id)
    }

    /// Text stop strings implied by the chat template (end-of-turn markers).
    pub fn stop_strings(&self) -> &[String] {
        &self.stop_strings
    }

    /// Whether encode(.., true) adds BOS.
    pub fn adds_bos(&self) -> bool {
        match self.add_bos {
            Some(b) => b,
            None => match (self.bos_id(), self.inner.encode("a", true)) {
                (Some(b), Ok(e)) => e.get_ids().first() == Some(&b),
                _ => false,
            },
        }
    }

    /// The chat template source, if any.
    pub fn chat_template(&self) -> Option<&str> {
        self.template.as_ref().map(|t| t.source())
    }

    /// The compiled chat template, if any.
    pub fn template(&self) -> Option<&ChatTemplate> {
        self.template.as_ref()
    }

    /// Replace the chat template; its end-of-turn tokens join the eos ids.
    pub fn set_chat_template(&mut self, template: ChatTemplate) {
        self.template = Some(template);
        self.finish_eos();
    }

    /// Use a built-in template by name (`chatml`, `llama3`, `qwen`, ...).
    pub fn use_builtin_template(&mut self, name: &str) -> Result<()> {
        self.set_chat_template(ChatTemplate::builtin(name)?);
        Ok(())
    }

    /// The named special tokens as a template sees them.
    pub fn special_tokens_map(&self) -> Vec<(String, String)> {
        let mut v = Vec::new();
        for (k, t) in [
            ("bos_token", &self.bos_token),
            ("eos_token", &self.eos_token),
            ("unk_token", &self.unk_token),
            ("pad_token", &self.pad_token),
        ] {
            if let Some(t) = t {
                v.push((k.to_string(), t.clone()));
            }
        }
        for k in ["sep_token", "cls_token", "mask_token"] {
            if let Some(t) = token_str(self.config.get(k)) {
                v.push((k.to_string(), t));
            }
        }
        v
    }

    /// Render messages with the chat template (error when there is none).
    pub fn apply_chat_template<M: serde::Serialize>(
        &self,
        messages: &[M],
        add_generation_prompt: bool,
    ) -> Result<String> {
        let opts = RenderOptions {
            add_generation_prompt,
            ..Default::default()
        };
        self.apply_chat_template_with(messages, opts)
    }

    /// Render with full options; the special tokens are filled in unless the
    /// caller set them.
    pub fn apply_chat_template_with<M: serde::Serialize>(
        &self,
        messages: &[M],
        mut opts: RenderOptions,
    ) -> Result<String> {
        let t = self.template.as_ref().with_context(|| {
            format!(
                "this model has no chat template; pick a built-in one ({})",
                ChatTemplate::builtin_names().join(", ")
            )
        })?;
        if opts.special_tokens.is_empty() {
            opts.special_tokens = self.special_tokens_map();
        }
        t.render(messages, &opts)
    }

    /// Vocabulary size including added tokens.
    pub fn vocab_size(&self) -> usize {
        self.inner.get_vocab_size(true)
    }

    pub fn id_to_token(&self, id: u32) -> Option<String> {
        self.inner.id_to_token(id)
    }

    pub fn token_to_id(&self, token: &str) -> Option<u32> {
        self.inner.token_to_id(token)
    }

    /// Whether `id` is a special (added, special) token.
    pub fn is_special(&self, id: u32) -> bool {
        self.inner
            .get_added_tokens_decoder()
            .get(&id)
            .map(|t| t.special)
            .unwrap_or(false)
    }

    /// Notes about the load (e.g. an unknown GGUF pre-tokenizer) that the
    /// command layer may show.
    pub fn warnings(&self) -> &[String] {
        &self.warnings
    }

    /// The underlying `tokenizers` tokenizer.
    pub fn inner(&self) -> &tokenizers::Tokenizer {
        &self.inner
    }

    /// The tokenizer as GGUF metadata (`tokenizer.ggml.*` and
    /// `tokenizer.chat_template`), for writing a `.gguf` with
    /// `model::gguf::write_gguf`. A tokenizer read from a GGUF gives back its
    /// vocabulary unchanged; one from `tokenizer.json` must be a BPE model
    /// (byte-level -> "gpt2", byte-fallback -> "llama" with scores from the
    /// merge ranks).
    pub fn gguf_metadata(&self) -> Result<Vec<(String, crate::model::gguf::GgufValue)>> {
        let mut v = match &self.gguf_source {
            Some(v) => (**v).clone(),
            None => {
                let doc: Value = serde_json::from_str(
                    &self
                        .inner
                        .to_string(false)
                        .map_err(|e| anyhow!("serializing the tokenizer: {e}"))?,
                )?;
                gguf_vocab::from_tokenizer_json(&doc)?
            }
        };
        let id = |t: &Option<String>| t.as_deref().and_then(|t| self.token_to_id(t));
        v.bos_id = id(&self.bos_token);
        v.eos_id = id(&self.eos_token).or(self.eos_ids.first().copied());
        v.unk_id = id(&self.unk_token);
        v.pad_id = id(&self.pad_token);
        v.eot_id = self.eos_ids.iter().copied().find(|&i| Some(i) != v.eos_id);
        v.eom_id = v.eom_id.filter(|i| self.eos_ids.contains(i));
        v.add_bos = Some(self.adds_bos());
        v.add_eos = Some(self.add_eos.unwrap_or(false));
        v.chat_template = self.chat_template().map(str::to_owned);
        Ok(gguf_vocab::to_metadata(&v))
    }

    /// Write `tokenizer.json`, `tokenizer_config.json` (with the chat
    /// template) and `special_tokens_map.json` into `dir` (created if needed),
    /// loadable by [`Tokenizer::from_dir`] and by transformers.
    pub fn save(&self, dir: &Path) -> Result<()> {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
        let tj = dir.join("tokenizer.json");
        let doc = self
            .inner
            .to_string(true)
            .map_err(|e| anyhow!("serializing the tokenizer: {e}"))?;
        std::fs::write(&tj, doc).with_context(|| format!("writing {}", tj.display()))?;

        let mut cfg = self.config.clone();
        let mut stmap = Map::new();
        for (k, v) in self.special_tokens_map() {
            cfg.insert(k.clone(), Value::String(v.clone()));
            stmap.insert(k, Value::String(v));
        }
        cfg.insert("add_bos_token".into(), json!(self.adds_bos()));
        cfg.insert("add_eos_token".into(), json!(self.add_eos.unwrap_or(false)));
        cfg.insert(
            "clean_up_tokenization_spaces".into(),
            json!(self.clean_up_spaces),
        );
        cfg.entry("tokenizer_class")
            .or_insert_with(|| json!("PreTrainedTokenizerFast"));
        cfg.entry("model_max_length")
            .or_insert_with(|| json!(1_000_000_000_000_000_000u64));
        match &self.template {
            Some(t) => {
                cfg.insert("chat_template".into(), json!(t.source()));
            }
            None => {
                cfg.remove("chat_template");
            }
        }
        let added: Map<String, Value> = {
            let mut list: Vec<_> = self.inner.get_added_tokens_decoder().into_iter().collect();
            list.sort_by_key(|(id, _)| *id);
            list.into_iter()
                .map(|(id, t)| {
                    (
                        id.to_string(),
                        json!({"content": t.content, "lstrip": t.lstrip, "normalized": t.normalized,
                               "rstrip": t.rstrip, "single_word": t.single_word, "special": t.special}),
                    )
                })
                .collect()
        };
        cfg.insert("added_tokens_decoder".into(), Value::Object(added));
        let path = dir.join("tokenizer_config.json");
        std::fs::write(&path, serde_json::to_string_pretty(&Value::Object(cfg))?)
            .with_context(|| format!("writing {}", path.display()))?;
        let path = dir.join("special_tokens_map.json");
        std::fs::write(&path, serde_json::to_string_pretty(&Value::Object(stmap))?)
            .with_context(|| format!("writing {}", path.display()))?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A tiny byte-level vocabulary with a chat template, through the GGUF path.
    pub(crate) fn tiny() -> Tokenizer {
        tiny_with("smollm", vec![])
    }

    fn tiny_with(pre: &str, extra_merges: Vec<(&str, &str)>) -> Tokenizer {
        let table = gguf_vocab::bytes_to_unicode();
        let mut tokens: Vec<String> = vec![
            "<|endoftext|>".into(),
            "<|im_start|>".into(),
            "<|im_end|>".into(),
        ];
        let mut types = vec![3, 3, 3];
        for b in 0..=255u8 {
            tokens.push(table[b as usize].to_string());
            types.push(1);
        }
        tokens.push("Ġh".into());
        types.push(1);
        let mut merges = vec!["Ġ h".to_string()];
        for (a, b) in extra_merges {
            tokens.push(format!("{a}{b}"));
            types.push(1);
            merges.push(format!("{a} {b}"));
        }
        let v = gguf_vocab::GgufVocab {
            model: "gpt2".into(),
            pre: Some(pre.into()),
            tokens,
            token_types: Some(types),
            merges: Some(merges),
            bos_id: Some(1),
            eos_id: Some(2),
            unk_id: Some(0),
            pad_id: Some(2),
            add_bos: Some(false),
            chat_template: Some(
                "{% for m in messages %}<|im_start|>{{ m.role }}\n{{ m.content }}<|im_end|>\n{% endfor %}"
                    .into(),
            ),
            ..Default::default()
        };
        Tokenizer::from_gguf_vocab(&v).unwrap()
    }

    #[test]
    fn tiny_round_trips_and_matches_specials() {
        let t = tiny();
        let ids = t.encode("<|im_start|>user\n h12é<|im_end|>", true).unwrap();
        assert_eq!(ids[0], 1);
        assert_eq!(*ids.last().unwrap(), 2);
        assert!(ids.contains(&259), "{ids:?}"); // "Ġh" merged
        assert_eq!(
            t.decode(&ids, false).unwrap(),
            "<|im_start|>user\n h12é<|im_end|>"
        );
        assert_eq!(t.decode(&ids, true).unwrap(), "user\n h12é");
        assert_eq!(t.eos_ids(), [2]);
        assert_eq!(t.bos_id(), Some(1));
    }

    #[test]
    fn stream_decoder_never_splits_characters() {
        let t = tiny();
        let text = "héllo 🦀 wörld <|im_end|>";
        let ids = t.encode(text, false).unwrap();
        let mut d = StreamDecoder::new(&t, false);
        let mut out = String::new();
        for &id in &ids {
            if let Some(c) = d.step(id).unwrap() {
                assert!(!c.contains('\u{FFFD}'), "{c:?}");
                out.push_str(&c);
            }
        }
        if let Some(c) = d.flush().unwrap() {
            out.push_str(&c);
        }
        assert_eq!(out, t.decode(&ids, false).unwrap());
        assert_eq!(out, text);
    }

    #[test]
    fn builtin_template_adds_its_stop_tokens() {
        let mut t = tiny();
        t.use_builtin_template("llama3").unwrap();
        assert_eq!(t.eos_ids(), [2]);
        assert!(t.stop_strings().iter().any(|s| s == "<|eot_id|>"));
        t.use_builtin_template("chatml").unwrap();
        assert_eq!(t.eos_ids(), [2]);
        assert_eq!(t.stop_strings(), ["<|im_end|>"]);
    }

    #[test]
    fn save_and_reload() {
        let t = tiny();
        let dir = tempfile::tempdir().unwrap();
        t.save(dir.path()).unwrap();
        let u = Tokenizer::from_dir(dir.path()).unwrap();
        let text = "<|im_start|>a 1 h<|im_end|>";
        assert_eq!(t.encode(text, true).unwrap(), u.encode(text, true).unwrap());
        assert_eq!(t.chat_template(), u.chat_template());
        assert_eq!(t.eos_ids(), u.eos_ids());
        assert_eq!(u.bos_id(), Some(1));
    }

    #[test]
    fn pre_tokenizers_split_digits_as_their_models_do() {
        let merges = vec![("1", "2"), ("12", "3"), ("4", "5")];
        let pieces = |pre: &str| {
            let t = tiny_with(pre, merges.clone());
            assert!(t.warnings().is_empty() || pre == "nonsense");
            let ids = t.encode("12345", false).unwrap();
            ids.iter()
                .map(|&i| t.id_to_token(i).unwrap())
                .collect::<Vec<_>>()
        };
        // Llama 3 groups digits by three; GPT-2 keeps runs together;
        // SmolLM / Qwen2 split every digit.
        assert_eq!(pieces("llama-bpe"), ["123", "45"]);
        assert_eq!(pieces("gpt2"), ["123", "45"]);
        assert_eq!(pieces("smollm"), ["1", "2", "3", "4", "5"]);
        assert_eq!(pieces("qwen2"), ["1", "2", "3", "4", "5"]);
        assert_eq!(pieces("tekken"), ["1", "2", "3", "4", "5"]);
        assert_eq!(pieces("gpt-4o"), ["123", "45"]);
        let t = tiny_with("nonsense", vec![]);
        assert_eq!(t.warnings().len(), 1);
        assert!(t.warnings()[0].contains("nonsense"));
    }

    #[test]
    fn tokenizer_is_shareable_across_threads() {
        fn check<T: Send + Sync + Clone>() {}
        check::<Tokenizer>();
        let t = tiny();
        let b = t.encode_batch(&["a h", "<|im_end|>"], false).unwrap();
        assert_eq!(b[1], [2]);
        assert_eq!(b[0], t.encode("a h", false).unwrap());
    }

    #[test]
    fn clean_up_matches_transformers() {
        assert_eq!(clean_up_tokenization("a , b . c 's"), "a, b. c's");
    }
}
