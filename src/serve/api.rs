//! The OpenAI wire format: request bodies (lenient where OpenAI is, strict
//! where a wrong value would silently change the answer), validation into
//! scheduler jobs, and the JSON of answers and stream chunks.

use serde::Deserialize;
use serde_json::{json, Map, Value};

use super::error::ApiError;
use super::scheduler::Job;
use crate::model::generate::{GenerateParams, TokenLogprob};
use crate::model::sampling::{self, SamplingFields, SamplingParams};
use crate::tokenizer::Tokenizer;

/// Most alternatives per position in `logprobs` / `top_logprobs`.
pub const MAX_TOP_LOGPROBS: i64 = 20;
/// Most sequences one request may ask for (prompts times `n`).
pub const MAX_JOBS: usize = 1024;
/// Most stop strings.
pub const MAX_STOPS: usize = 16;

/// `stop`: one string or a list.
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub enum StopSpec {
    One(String),
    Many(Vec<String>),
}

/// `prompt`: a string, strings, token ids, or lists of token ids.
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub enum PromptSpec {
    Text(String),
    Texts(Vec<String>),
    Ids(Vec<i64>),
    IdLists(Vec<Vec<i64>>),
}

#[derive(Debug, Clone, Default, Deserialize)]
pub struct StreamOptions {
    #[serde(default)]
    pub include_usage: bool,
}

/// The fields chat and completions share.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct Common {
    pub model: Option<String>,
    pub max_tokens: Option<i64>,
    pub temperature: Option<f32>,
    pub top_p: Option<f32>,
    /// vLLM and llama.cpp extensions.
    pub top_k: Option<i64>,
    pub min_p: Option<f32>,
    /// `repeat_penalty` is llama.cpp's name.
    #[serde(alias = "repeat_penalty")]
    pub repetition_penalty: Option<f32>,
    pub ignore_eos: Option<bool>,
    pub seed: Option<i64>,
    pub stop: Option<StopSpec>,
    pub n: Option<i64>,
    pub stream: Option<bool>,
    pub stream_options: Option<StreamOptions>,
}

/// POST /v1/completions.
#[derive(Debug, Clone, Deserialize)]
pub struct CompletionRequest {
    pub prompt: PromptSpec,
    #[serde(flatten)]
    pub common: Common,
    pub echo: Option<bool>,
    pub logprobs: Option<i64>,
    pub suffix: Option<String>,
}

/// One chat message; `content` is a string or a list of text parts.
#[derive(Debug, Clone, Deserialize)]
pub struct ChatMessage {
    pub role: String,
    #[serde(default)]
    pub content: Option<Value>,
}

/// POST /v1/chat/completions.
#[derive(Debug, Clone, Deserialize)]
pub struct ChatRequest {
    pub messages: Vec<ChatMessage>,
    #[serde(flatten)]
    pub common: Common,
    pub max_completion_tokens: Option<i64>,
    pub logprobs: Option<bool>,
    pub top_logprobs: Option<i64>,
}

/// Parse a body; JSON errors are 400s that name the field when serde does.
pub fn parse<T: serde::de::DeserializeOwned>(body: &[u8]) -> Result<T, ApiError> {
    match serde_json::from_slice::<T>(body) {
        Ok(v) => Ok(v),
        Err(e) => {
            let msg = e.to_string();
            if e.is_syntax() || e.is_eof() {
                return Err(ApiError::bad_request(format!(
                    "the body is not valid JSON: {msg}"
                )));
            }
            let param = msg
                .split('`')
                .nth(1)
                .filter(|_| msg.starts_with("missing field") || msg.starts_with("unknown field"))
                .map(str::to_string);
            let mut err = ApiError::bad_request(format!("invalid request: {msg}"));
            err.param = param;
            Err(err)
        }
    }
}

/// What a request asks of the generator, validated.
#[derive(Debug, Clone)]
pub struct Plan {
    pub n: usize,
    pub stream: bool,
    pub include_usage: bool,
    pub sampling: SamplingParams,
    pub stop: Vec<String>,
    pub ignore_eos: bool,
}

impl Common {
    /// Validate the shared fields. Sampling: the request's fields, then the
    /// command line's (`flags`), then the model's `generation_config.json`
    /// (`model`), then the built-in defaults ([`sampling::resolve`]).
    pub fn plan(&self, flags: &SamplingFields, model: &SamplingFields) -> Result<Plan, ApiError> {
        let n = self.n.unwrap_or(1);
        if !(1..=128).contains(&n) {
            return Err(ApiError::bad_param(
                "n",
                format!("n must be in 1..=128, got {n}"),
            ));
        }
        let mut asked = SamplingFields::default();
        if let Some(t) = self.temperature {
            if !t.is_finite() || !(0.0..=2.0).contains(&t) {
                return Err(ApiError::bad_param(
                    "temperature",
                    format!("temperature must be in [0, 2], got {t}"),
                ));
            }
            asked.temperature = Some(t);
        }
        asked.top_p = self.top_p;
        if let Some(k) = self.top_k {
            // vLLM: -1 or 0 disables.
            if k < -1 {
                return Err(ApiError::bad_param(
                    "top_k",
                    format!("top_k must be >= -1, got {k}"),
                ));
            }
            asked.top_k = Some(k.max(0) as usize);
        }
        asked.min_p = self.min_p;
        asked.repetition_penalty = self.repetition_penalty;
        asked.seed = self.seed.map(|s| s as u64);
        let (s, _) = sampling::resolve(&asked.over(flags), model, true);
        if let Err(e) = s.validate() {
            let param = e.split_whitespace().next().unwrap_or("").to_string();
            return Err(ApiError::bad_param(&param, e));
        }
        let stop: Vec<String> = match &self.stop {
            None => Vec::new(),
            Some(StopSpec::One(s)) => vec![s.clone()],
            Some(StopSpec::Many(v)) => v.clone(),
        }
        .into_iter()
        .filter(|s| !s.is_empty())
        .collect();
        if stop.len() > MAX_STOPS {
            return Err(ApiError::bad_param(
                "stop",
                format!("at most {MAX_STOPS} stop strings, got {}", stop.len()),
            ));
        }
        Ok(Plan {
            n: n as usize,
            stream: self.stream.unwrap_or(false),
            include_usage: self
                .stream_options
                .as_ref()
                .map(|o| o.include_usage)
                .unwrap_or(false),
            sampling: s,
            stop,
            ignore_eos: self.ignore_eos.unwrap_or(false),
        })
    }
}

/// Check a prompt against the window and resolve `max_tokens`.
/// `default` applies when the request gives none (`None`: until the window
/// is full); `min` is the smallest value allowed.
pub fn check_lengths(
    prompt_len: usize,
    max_tokens: Option<i64>,
    default: Option<usize>,
    min: i64,
    context: usize,
    param: &str,
) -> Result<Option<usize>, ApiError> {
    if prompt_len == 0 {
        return Err(ApiError::bad_param(
            "prompt",
            "the prompt is empty (0 tokens)",
        ));
    }
    if prompt_len >= context {
        let mut e = ApiError::bad_request(format!(
            "This model's maximum context length is {context} tokens. However, your prompt is \
             {prompt_len} tokens; shorten it."
        ));
        e.param = Some("messages".into());
        e.code = Some("context_length_exceeded");
        return Err(e);
    }
    match max_tokens {
        Some(m) if m < min => Err(ApiError::bad_param(
            param,
            format!("{param} must be at least {min}, got {m}"),
        )),
        Some(m) if prompt_len as i64 + m > context as i64 => {
            let mut e = ApiError::bad_param(
                param,
                format!(
                    "This model's maximum context length is {context} tokens. However, you \
                     requested {} tokens ({prompt_len} in the prompt, {m} in the completion). \
                     Please reduce the prompt or the completion length.",
                    prompt_len as i64 + m
                ),
            );
            e.code = Some("context_length_exceeded");
            Err(e)
        }
        Some(m) => Ok(Some(m as usize)),
        None => Ok(default.map(|d| d.min(context - prompt_len))),
    }
}

/// The text of a chat message's content (a string or text parts).
pub fn content_text(c: &Option<Value>, i: usize) -> Result<String, ApiError> {
    match c {
        None | Some(Value::Null) => Ok(String::new()),
        Some(Value::String(s)) => Ok(s.clone()),
        Some(Value::Array(parts)) => {
            let mut out = String::new();
            for p in parts {
                match (p.get("type").and_then(Value::as_str), p.get("text")) {
                    (Some("text"), Some(Value::String(t))) => out.push_str(t),
                    _ => {
                        return Err(ApiError::bad_param(
                            &format!("messages[{i}].content"),
                            "only text content parts are supported",
                        ))
                    }
                }
            }
            Ok(out)
        }
        Some(_) => Err(ApiError::bad_param(
            &format!("messages[{i}].content"),
            "content must be a string or a list of text parts",
        )),
    }
}

/// Token ids from a request, checked against the vocabulary.
pub fn check_ids(ids: &[i64], vocab: usize) -> Result<Vec<u32>, ApiError> {
    ids.iter()
        .map(|&i| {
            if i < 0 || i as usize >= vocab {
                Err(ApiError::bad_param(
                    "prompt",
                    format!("token id {i} is out of range (vocabulary of {vocab})"),
                ))
            } else {
                Ok(i as u32)
            }
        })
        .collect()
}

/// `n` jobs for one prompt, choice indices `first..first + n`.
pub fn jobs_for(
    prompt: &[u32],
    plan: &Plan,
    max_new_tokens: Option<usize>,
    logprobs: Option<usize>,
    prompt_logprobs: Option<usize>,
    first: usize,
) -> Vec<Job> {
    (0..plan.n)
        .map(|j| {
            let mut sampling = plan.sampling.clone();
            if let Some(s) = sampling.seed {
                sampling.seed = Some(s.wrapping_add(j as u64));
            }
            Job {
                prompt: prompt.to_vec(),
                params: GenerateParams {
                    max_new_tokens,
                    sampling,
                    stop: plan.stop.clone(),
                    ignore_eos: plan.ignore_eos,
                    logprobs,
                },
                prompt_logprobs,
                index: first + j,
            }
        })
        .collect()
}

/// The text of one token as logprobs show it.
pub fn token_text(tok: &Tokenizer, id: u32) -> String {
    tok.decode(&[id], false).unwrap_or_default()
}

/// Chat's `logprobs.content[]` entry.
pub fn chat_logprob(tok: &Tokenizer, lp: &TokenLogprob) -> Value {
    let entry = |id: u32, logprob: f32| {
        let t = token_text(tok, id);
        json!({"token": t, "logprob": logprob, "bytes": t.as_bytes()})
    };
    let mut e = entry(lp.id, lp.logprob);
    e["top_logprobs"] = Value::Array(lp.top.iter().map(|&(id, l)| entry(id, l)).collect());
    e
}

/// Completions' `logprobs` object, built token by token.
#[derive(Debug, Clone, Default)]
pub struct CompletionLogprobs {
    pub tokens: Vec<Value>,
    pub token_logprobs: Vec<Value>,
    pub top_logprobs: Vec<Value>,
    pub text_offset: Vec<Value>,
    /// Characters so far (for `text_offset`).
    pub offset: usize,
}

impl CompletionLogprobs {
    pub fn push(&mut self, tok: &Tokenizer, id: u32, lp: Option<&TokenLogprob>) {
        let t = token_text(tok, id);
        self.text_offset.push(json!(self.offset));
        self.offset += t.chars().count();
        self.tokens.push(json!(t));
        match lp {
            Some(lp) => {
                self.token_logprobs.push(json!(lp.logprob));
                let mut m = Map::new();
                for &(id, l) in &lp.top {
                    m.entry(token_text(tok, id)).or_insert(json!(l));
                }
                self.top_logprobs.push(Value::Object(m));
            }
            None => {
                self.token_logprobs.push(Value::Null);
                self.top_logprobs.push(Value::Null);
            }
        }
    }

    pub fn to_json(&self) -> Value {
        json!({
            "tokens": self.tokens,
            "token_logprobs": self.token_logprobs,
            "top_logprobs": self.top_logprobs,
            "text_offset": self.text_offset,
        })
    }

    /// The entries added since `from` (a stream chunk's share).
    pub fn since(&self, from: usize) -> Value {
        json!({
            "tokens": self.tokens[from..],
            "token_logprobs": self.token_logprobs[from..],
            "top_logprobs": self.top_logprobs[from..],
            "text_offset": self.text_offset[from..],
        })
    }
}

/// `usage`.
pub fn usage(prompt: usize, completion: usize) -> Value {
    json!({"prompt_tokens": prompt, "completion_tokens": completion, "total_tokens": prompt + completion})
}

/// A fresh id with a prefix (`chatcmpl-`, `cmpl-`).
pub fn new_id(prefix: &str) -> String {
    format!(
        "{prefix}{:016x}{:08x}",
        rand::random::<u64>(),
        rand::random::<u32>()
    )
}

/// Seconds since the epoch.
pub fn now() -> i64 {
    chrono::Utc::now().timestamp()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::sampling::BUILTIN_DEFAULTS;

    fn plan_of(body: &str, flags: &SamplingFields, model: &SamplingFields) -> SamplingParams {
        let c: Common = parse(body.as_bytes()).unwrap();
        c.plan(flags, model).unwrap().sampling
    }

    #[test]
    fn sampling_request_then_flags_then_model_then_defaults() {
        let none = SamplingFields::default();
        // Nothing anywhere: the built-in defaults.
        assert_eq!(plan_of("{}", &none, &none), BUILTIN_DEFAULTS);
        // temperature 0 is plain greedy, without the default penalty.
        assert_eq!(
            plan_of(r#"{"temperature": 0}"#, &none, &none),
            SamplingParams::greedy()
        );
        // The model's generation_config.json asks for sampling.
        let model = SamplingFields {
            do_sample: Some(true),
            temperature: Some(0.7),
            top_k: Some(20),
            ..Default::default()
        };
        let p = plan_of("{}", &none, &model);
        assert_eq!((p.temperature, p.top_k, p.top_p), (0.7, 20, 1.0));
        // The command line over the model, the request over both.
        let flags = SamplingFields {
            temperature: Some(0.5),
            top_k: Some(5),
            ..Default::default()
        };
        let p = plan_of("{}", &flags, &model);
        assert_eq!((p.temperature, p.top_k), (0.5, 5));
        let p = plan_of(r#"{"temperature": 1.2, "top_k": -1}"#, &flags, &model);
        assert_eq!((p.temperature, p.top_k), (1.2, 0));
        // llama.cpp's repeat_penalty is the repetition penalty.
        let p = plan_of(r#"{"repeat_penalty": 1.3}"#, &none, &none);
        assert_eq!(p.repetition_penalty, 1.3);
        let c: Common = parse(br#"{"repetition_penalty": 0}"#).unwrap();
        let e = c.plan(&none, &none).unwrap_err();
        assert_eq!(e.param.as_deref(), Some("repetition_penalty"));
    }
}
