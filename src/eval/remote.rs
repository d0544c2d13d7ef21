//! A model behind an OpenAI-compatible server, scored through
//! `/v1/completions` as lm-evaluation-harness's `local-completions` does:
//! the prompt is context + continuation, `echo: true`, `logprobs: 1`,
//! `max_tokens: 0`, and the continuation's share of the echoed prompt
//! log-probabilities is summed.
//!
//! With a local tokenizer the prompts go as token ids (split exactly as the
//! in-process path splits them); without one they go as text, and the
//! continuation is the tokens whose `text_offset` lies at or past the end of
//! the context.

use std::time::Duration;

use anyhow::{anyhow, bail, Context, Result};
use serde_json::{json, Value};

use super::backend::{
    encode_pair, split_trailing_space, Backend, GenRequest, LlRequest, LlResult, RollingResult,
    Window,
};
use crate::tokenizer::Tokenizer;

pub struct RemoteBackend {
    /// `http://host:port/v1`.
    base: String,
    model: String,
    api_key: Option<String>,
    tokenizer: Option<Tokenizer>,
    rt: tokio::runtime::Runtime,
    client: reqwest::Client,
}

/// `http://h:p`, `http://h:p/v1/`, `http://h:p/v1/completions` -> `http://h:p/v1`.
pub fn base_url(url: &str) -> String {
    let mut u = url.trim().trim_end_matches('/').to_string();
    for suffix in ["/chat/completions", "/completions"] {
        if let Some(s) = u.strip_suffix(suffix) {
            u = s.to_string();
        }
    }
    if !u.ends_with("/v1") {
        u.push_str("/v1");
    }
    u
}

impl RemoteBackend {
    /// Connect to `url`; `model` defaults to the first of `/v1/models`.
    pub fn connect(
        url: &str,
        model: Option<String>,
        api_key: Option<String>,
        tokenizer: Option<Tokenizer>,
    ) -> Result<RemoteBackend> {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .context("starting the HTTP client")?;
        let client = reqwest::Client::builder()
            .timeout(Duration::from_secs(3600))
            .build()
            .context("starting the HTTP client")?;
        let mut b = RemoteBackend {
            base: base_url(url),
            model: String::new(),
            api_key,
            tokenizer,
            rt,
            client,
        };
        b.model = match model {
            Some(m) => m,
            None => {
                let v = b.request(reqwest::Method::GET, "/models", None)?;
                v["data"][0]["id"]
                    .as_str()
                    .ok_or_else(|| {
                        anyhow!(
                            "{}/models lists no model; name one with --served-model",
                            b.base
                        )
                    })?
                    .to_string()
            }
        };
        Ok(b)
    }

    fn request(&self, method: reqwest::Method, path: &str, body: Option<&Value>) -> Result<Value> {
        let url = format!("{}{path}", self.base);
        self.rt.block_on(async {
            // A busy server (429, 503) is asked again a few times.
            let mut attempt = 0;
            loop {
                attempt += 1;
                let mut rb = self.client.request(method.clone(), &url);
                if let Some(k) = &self.api_key {
                    rb = rb.bearer_auth(k);
                }
                if let Some(b) = body {
                    rb = rb.json(b);
                }
                let r = rb
                    .send()
                    .await
                    .with_context(|| format!("connecting to {url}"))?;
                let code = r.status();
                let text = r
                    .text()
                    .await
                    .with_context(|| format!("reading the answer of {url}"))?;
                if (code.as_u16() == 429 || code.as_u16() == 503) && attempt < 6 {
                    tokio::time::sleep(Duration::from_millis(500 * attempt)).await;
                    continue;
                }
                let v: Value = serde_json::from_str(&text).unwrap_or(Value::String(text.clone()));
                if !code.is_success() {
                    let msg = v["error"]["message"]
                        .as_str()
                        .map(str::to_string)
                        .unwrap_or(text);
                    bail!("{url} answered {code}: {msg}");
                }
                return Ok(v);
            }
        })
    }

    /// POST /completions; the choices in prompt order.
    fn completions(&self, body: Value) -> Result<Vec<Value>> {
        let v = self.request(reqwest::Method::POST, "/completions", Some(&body))?;
        let mut choices = v["choices"]
            .as_array()
            .cloned()
            .ok_or_else(|| anyhow!("{}/completions answered without `choices`: {v}", self.base))?;
        choices.sort_by_key(|c| c["index"].as_u64().unwrap_or(0));
        Ok(choices)
    }

    fn echo_body(&self, prompts: Value) -> Value {
        json!({"model": self.model, "prompt": prompts, "echo": true, "logprobs": 1,
               "max_tokens": 0, "temperature": 0})
    }
}

/// The echoed prompt's (token, logprob, top token, text offset) entries.
struct Echo {
    tokens: Vec<String>,
    logprobs: Vec<Option<f64>>,
    top: Vec<Option<String>>,
    offsets: Vec<usize>,
}

fn echo_of(choice: &Value) -> Result<Echo> {
    let lp = &choice["logprobs"];
    let arr = |k: &str| -> Result<Vec<Value>> {
        lp[k].as_array().cloned().ok_or_else(|| {
            anyhow!("the server's answer has no `logprobs.{k}` (does it support echo + logprobs?)")
        })
    };
    let tokens: Vec<String> = arr("tokens")?
        .iter()
        .map(|t| t.as_str().unwrap_or_default().to_string())
        .collect();
    let logprobs = arr("token_logprobs")?.iter().map(Value::as_f64).collect();
    let top = lp["top_logprobs"]
        .as_array()
        .map(|a| {
            a.iter()
                .map(|m| {
                    m.as_object().and_then(|o| {
                        o.iter()
                            .max_by(|x, y| {
                                let (a, b) = (x.1.as_f64(), y.1.as_f64());
                                a.partial_cmp(&b).unwrap_or(std::cmp::Ordering::Equal)
                            })
                            .map(|(k, _)| k.clone())
                    })
                })
                .collect()
        })
        .unwrap_or_else(|| vec![None; tokens.len()]);
    let offsets = lp["text_offset"]
        .as_array()
        .map(|a| a.iter().map(|x| x.as_u64().unwrap_or(0) as usize).collect())
        .unwrap_or_default();
    Ok(Echo {
        tokens,
        logprobs,
        top,
        offsets,
    })
}

impl Echo {
    /// Sum over entries `from..to`.
    fn score(&self, from: usize, to: usize) -> Result<LlResult> {
        let mut ll = 0.0;
        let mut greedy = true;
        for i in from..to {
            ll += self.logprobs.get(i).copied().flatten().ok_or_else(|| {
                anyhow!("the server gave no log-probability for echoed token {i}")
            })?;
            greedy &= self.top.get(i).cloned().flatten().as_deref()
                == self.tokens.get(i).map(String::as_str);
        }
        Ok(LlResult {
            loglikelihood: ll,
            is_greedy: greedy,
            tokens: to - from,
        })
    }
}

impl Backend for RemoteBackend {
    fn describe(&self) -> String {
        format!("{} at {}", self.model, self.base)
    }

    fn loglikelihood(&self, reqs: &[LlRequest]) -> Result<Vec<LlResult>> {
        if reqs.is_empty() {
            return Ok(Vec::new());
        }
        match &self.tokenizer {
            Some(tok) => {
                let mut prompts = Vec::new();
                let mut spans = Vec::new();
                for r in reqs {
                    let (mut ids, cont) = encode_pair(tok, &r.context, &r.continuation)?;
                    spans.push((ids.len(), ids.len() + cont.len()));
                    ids.extend(cont);
                    prompts.push(json!(ids));
                }
                let choices = self.completions(self.echo_body(Value::Array(prompts)))?;
                if choices.len() != reqs.len() {
                    bail!(
                        "asked for {} prompts, got {} choices",
                        reqs.len(),
                        choices.len()
                    );
                }
                choices
                    .iter()
                    .zip(spans)
                    .map(|(c, (a, b))| echo_of(c)?.score(a, b))
                    .collect()
            }
            None => {
                let mut prompts = Vec::new();
                let mut ctx_chars = Vec::new();
                for r in reqs {
                    if r.context.trim_end().is_empty() {
                        bail!("an empty context needs a local tokenizer with --url (--tokenizer)");
                    }
                    let (ctx, cont) = split_trailing_space(&r.context, &r.continuation);
                    ctx_chars.push(ctx.chars().count());
                    prompts.push(json!(format!("{ctx}{cont}")));
                }
                let choices = self.completions(self.echo_body(Value::Array(prompts)))?;
                if choices.len() != reqs.len() {
                    bail!(
                        "asked for {} prompts, got {} choices",
                        reqs.len(),
                        choices.len()
                    );
                }
                choices
                    .iter()
                    .zip(ctx_chars)
                    .map(|(c, n)| {
                        let e = echo_of(c)?;
                        if e.offsets.len() != e.tokens.len() {
                            bail!("the server's answer has no `logprobs.text_offset`; pass --tokenizer");
                        }
                        let from = e.offsets.iter().position(|&o| o >= n).unwrap_or(e.tokens.len());
                        e.score(from.max(1), e.tokens.len())
                    })
                    .collect()
            }
        }
    }

    fn rolling(&self, docs: &[String], window: Window) -> Result<Vec<RollingResult>> {
        if window.max_length.is_some() || window.stride.is_some() {
            bail!(
                "--max-length / --stride need --model: through --url the server scores each \
                 document whole"
            );
        }
        let mut out = Vec::new();
        for d in docs {
            let prompt = match &self.tokenizer {
                Some(tok) => json!(tok.encode(d, false)?),
                None => json!(d),
            };
            let choices = self.completions(self.echo_body(prompt))?;
            let c = choices
                .first()
                .ok_or_else(|| anyhow!("the server answered no choice"))?;
            let e = echo_of(c)?;
            let n = e.tokens.len();
            let r = if n < 2 {
                LlResult {
                    loglikelihood: 0.0,
                    is_greedy: true,
                    tokens: 0,
                }
            } else {
                e.score(1, n)?
            };
            out.push(RollingResult {
                loglikelihood: r.loglikelihood,
                tokens: r.tokens,
            });
        }
        Ok(out)
    }

    fn generate(&self, prompts: &[String], req: &GenRequest) -> Result<Vec<String>> {
        if prompts.is_empty() {
            return Ok(Vec::new());
        }
        let mut body = json!({"model": self.model, "prompt": prompts,
                              "max_tokens": req.max_new_tokens, "temperature": 0});
        if !req.stop.is_empty() {
            body["stop"] = json!(req.stop);
        }
        let choices = self.completions(body)?;
        if choices.len() != prompts.len() {
            bail!(
                "asked for {} prompts, got {} choices",
                prompts.len(),
                choices.len()
            );
        }
        Ok(choices
            .iter()
            .map(|c| c["text"].as_str().unwrap_or_default().to_string())
            .collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base_urls() {
        assert_eq!(base_url("http://h:1"), "http://h:1/v1");
        assert_eq!(base_url("http://h:1/v1/"), "http://h:1/v1");
        assert_eq!(base_url("http://h:1/v1/completions"), "http://h:1/v1");
    }

    #[test]
    fn echo_scores_a_span() {
        let c = json!({"logprobs": {"tokens": ["Q", ":", " A"], "token_logprobs": [null, -1.5, -0.25],
            "top_logprobs": [null, {":": -1.5}, {" B": -0.1}], "text_offset": [0, 1, 2]}});
        let e = echo_of(&c).unwrap();
        let r = e.score(1, 3).unwrap();
        assert_eq!(r.loglikelihood, -1.75);
        assert!(!r.is_greedy);
        assert_eq!(r.tokens, 2);
        assert!(e.score(0, 1).is_err());
        assert!(e.score(1, 2).unwrap().is_greedy);
    }
}
