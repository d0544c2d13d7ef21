//! The generation loop the terminal (`swift infer`) and the server share.
//!
//! Two pieces, kept apart so that a batched scheduler can drive many
//! sequences with one model step:
//!
//! * [`Sequence`]: the state of one request: its tokens (prompt and
//!   generated), sampling parameters and RNG, the incremental detokenizer
//!   ([`StreamDecoder`]), the stop-string matcher ([`StopMatcher`]), and why
//!   it finished. It never touches the model: give it the logits of its last
//!   position ([`Sequence::push_logits`]) and it samples a token, decodes the
//!   new text and decides whether to stop. [`Sequence::pending`] says which
//!   tokens the model must still be fed.
//! * [`generate`]: the single-sequence driver: feed the pending tokens
//!   through a `forward` closure (prefill, then one token per step), push the
//!   logits, hand every token to a callback, and time prefill and decode.
//!   [`generate_with_model`] wires it to a [`Model`] and its [`KvCache`].
//!
//! A sequence stops on any eos id the tokenizer declares (unless
//! `ignore_eos`), on a stop string (the user's and the chat template's
//! end-of-turn strings, which are not printed), after `max_new_tokens`, or
//! when the context window is full.
//!
//! ```no_run
//! use swift::model::generate::{generate_with_model, GenerateParams, Sequence};
//! use swift::model::{KvCache, LoadOptions, Model};
//! use swift::tokenizer::Tokenizer;
//! # fn main() -> anyhow::Result<()> {
//! let path = std::path::Path::new("model.gguf");
//! let model = Model::load(path, &LoadOptions::default())?;
//! let tok = Tokenizer::load(path)?;
//! let ids = tok.encode("The capital of France is", true)?;
//! let params = GenerateParams { max_new_tokens: Some(16), ..Default::default() };
//! let mut seq = Sequence::new(&tok, ids, &params, model.config().max_position_embeddings)?;
//! let mut cache = KvCache::new(&model, 1);
//! let done = generate_with_model(&model, &mut cache, &mut seq, |t| {
//!     print!("{}", t.text);
//!     std::ops::ControlFlow::Continue(())
//! })?;
//! println!("\n{} tokens, {}", done.completion_tokens, done.finish.reason());
//! # Ok(()) }
//! ```

use std::ops::ControlFlow;
use std::time::Instant;

use anyhow::{bail, Result};
use serde::Serialize;

use super::sampling::{self, Sampler, SamplingParams};
use super::{KvCache, Model};
use crate::tokenizer::stream::{StopMatcher, StreamDecoder};
use crate::tokenizer::Tokenizer;

/// How to generate.
#[derive(Debug, Clone, PartialEq)]
pub struct GenerateParams {
    /// Most tokens to generate; `None`: until the context window is full.
    pub max_new_tokens: Option<usize>,
    pub sampling: SamplingParams,
    /// Stop strings (besides the tokenizer's end-of-turn strings).
    pub stop: Vec<String>,
    /// Never stop on eos ids nor on the template's end-of-turn strings (the
    /// user's stop strings still apply). For benchmarks.
    pub ignore_eos: bool,
    /// Record the log-probability of each generated token and this many most
    /// likely alternatives (`Some(0)`: the chosen token's only).
    pub logprobs: Option<usize>,
}

impl Default for GenerateParams {
    fn default() -> Self {
        GenerateParams {
            max_new_tokens: None,
            sampling: SamplingParams::greedy(),
            stop: Vec::new(),
            ignore_eos: false,
            logprobs: None,
        }
    }
}

/// Why a sequence ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Finish {
    /// The model wrote this end-of-sequence id.
    Eos(u32),
    /// The text reached this stop string.
    StopString(String),
    /// `max_new_tokens` tokens were generated.
    MaxTokens,
    /// The context window is full.
    ContextFull,
    /// The caller asked to stop (a disconnect, Ctrl-C).
    Cancelled,
}

impl Finish {
    /// OpenAI's `finish_reason`: `stop` (eos, stop string, cancelled) or
    /// `length`.
    pub fn reason(&self) -> &'static str {
        match self {
            Finish::Eos(_) | Finish::StopString(_) | Finish::Cancelled => "stop",
            Finish::MaxTokens | Finish::ContextFull => "length",
        }
    }
}

/// The log-probability of a generated token and its most likely
/// alternatives, from the model's raw distribution (before temperature and
/// filters, as OpenAI and vLLM report them).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TokenLogprob {
    pub id: u32,
    pub logprob: f32,
    pub top: Vec<(u32, f32)>,
}

/// One generated token as the caller sees it.
#[derive(Debug, Clone, PartialEq)]
pub struct TokenOutput {
    pub id: u32,
    /// The text that became safe to show with this token (may be empty: a
    /// character split over tokens, a possible stop string held back, an eos).
    pub text: String,
    pub logprob: Option<TokenLogprob>,
    /// Set on the last token.
    pub finish: Option<Finish>,
}

/// The state of one generation request. See the module docs.
pub struct Sequence<'t> {
    tokenizer: &'t Tokenizer,
    tokens: Vec<u32>,
    prompt_len: usize,
    /// Tokens already in the model's cache.
    fed: usize,
    max_new: usize,
    context_len: usize,
    sampler: Sampler,
    eos_ids: Vec<u32>,
    decoder: StreamDecoder<'t>,
    stops: StopMatcher,
    logprobs: Option<usize>,
    text: String,
    token_logprobs: Vec<TokenLogprob>,
    finish: Option<Finish>,
}

impl<'t> Sequence<'t> {
    /// A sequence continuing `prompt` (token ids). Errors when the prompt is
    /// empty, does not leave room for one token in the `context_len` window,
    /// or the sampling parameters are out of range.
    pub fn new(
        tokenizer: &'t Tokenizer,
        prompt: Vec<u32>,
        params: &GenerateParams,
        context_len: usize,
    ) -> Result<Sequence<'t>> {
        if prompt.is_empty() {
            bail!("the prompt is empty (0 tokens)");
        }
        if prompt.len() >= context_len {
            bail!(
                "the prompt is {} tokens but the model's context window is {} tokens; shorten it",
                prompt.len(),
                context_len
            );
        }
        if let Err(e) = params.sampling.validate() {
            bail!("{e}");
        }
        let mut stop_strings: Vec<String> = params.stop.clone();
        let eos_ids = if params.ignore_eos {
            Vec::new()
        } else {
            stop_strings.extend(tokenizer.stop_strings().iter().cloned());
            tokenizer.eos_ids().to_vec()
        };
        let room = context_len - prompt.len();
        let max_new = params.max_new_tokens.unwrap_or(room).min(room);
        let prompt_len = prompt.len();
        let mut seq = Sequence {
            tokenizer,
            tokens: prompt,
            prompt_len,
            fed: 0,
            max_new,
            context_len,
            sampler: Sampler::new(params.sampling.clone()),
            eos_ids,
            decoder: StreamDecoder::new(tokenizer, true),
            stops: StopMatcher::new(&stop_strings),
            logprobs: params.logprobs,
            text: String::new(),
            token_logprobs: Vec::new(),
            finish: None,
        };
        if max_new == 0 {
            seq.finish = Some(if params.max_new_tokens == Some(0) {
                Finish::MaxTokens
            } else {
                Finish::ContextFull
            });
        }
        Ok(seq)
    }

    /// Every token: prompt, then generated.
    pub fn tokens(&self) -> &[u32] {
        &self.tokens
    }

    pub fn prompt_len(&self) -> usize {
        self.prompt_len
    }

    /// The generated tokens (an eos that ended the sequence included).
    pub fn generated(&self) -> &[u32] {
        &self.tokens[self.prompt_len..]
    }

    /// The text shown so far (stop strings and eos excluded).
    pub fn text(&self) -> &str {
        &self.text
    }

    /// Log-probabilities of the generated tokens (when asked for).
    pub fn logprobs(&self) -> &[TokenLogprob] {
        &self.token_logprobs
    }

    pub fn finish(&self) -> Option<&Finish> {
        self.finish.as_ref()
    }

    pub fn is_finished(&self) -> bool {
        self.finish.is_some()
    }

    /// How many tokens the model's cache holds for this sequence.
    pub fn fed(&self) -> usize {
        self.fed
    }

    /// Declare that the cache already holds the first `n` tokens (a reused
    /// prefix, e.g. the previous turns of a chat). At least the last prompt
    /// token is always left to feed, since its logits are needed.
    pub fn skip_cached(&mut self, n: usize) {
        self.fed = n.min(self.tokens.len().saturating_sub(1));
    }

    /// The tokens the model must be fed next (the whole uncached prompt at
    /// first, then the last sampled token). Empty once finished.
    pub fn pending(&self) -> &[u32] {
        if self.is_finished() {
            &[]
        } else {
            &self.tokens[self.fed..]
        }
    }

    /// Record that the pending tokens were fed to the model.
    pub fn mark_fed(&mut self) {
        self.fed = self.tokens.len();
    }

    /// Stop now (the caller gave up); returns the text still held back.
    pub fn cancel(&mut self) -> Result<String> {
        if self.finish.is_some() {
            return Ok(String::new());
        }
        self.finish = Some(Finish::Cancelled);
        self.flush_text()
    }

    /// Sample the next token from the logits of the last fed position,
    /// decode its text and decide whether the sequence ends here.
    pub fn push_logits(&mut self, logits: &[f32]) -> Result<TokenOutput> {
        if let Some(f) = &self.finish {
            bail!("the sequence already finished ({})", f.reason());
        }
        let id = self.sampler.sample(logits, &self.tokens);
        let logprob = self.logprobs.map(|n| {
            let (lp, top) = sampling::token_logprobs(logits, id, n);
            TokenLogprob {
                id,
                logprob: lp,
                top,
            }
        });
        if let Some(lp) = &logprob {
            self.token_logprobs.push(lp.clone());
        }
        self.tokens.push(id);
        let generated = self.tokens.len() - self.prompt_len;

        let mut text = String::new();
        if self.eos_ids.contains(&id) {
            self.finish = Some(Finish::Eos(id));
        } else if let Some(chunk) = self.decoder.step(id)? {
            let out = self.stops.push(&chunk);
            text = out.text;
            if let Some(i) = out.stopped {
                self.finish = Some(Finish::StopString(self.stops.stops()[i].clone()));
            }
        }
        if self.finish.is_none() {
            if generated >= self.max_new {
                self.finish = Some(if self.tokens.len() >= self.context_len {
                    Finish::ContextFull
                } else {
                    Finish::MaxTokens
                });
            } else if self.tokens.len() >= self.context_len {
                self.finish = Some(Finish::ContextFull);
            }
        }
        if matches!(
            self.finish,
            Some(Finish::Eos(_) | Finish::MaxTokens | Finish::ContextFull)
        ) {
            text.push_str(&self.flush_text()?);
        }
        self.text.push_str(&text);
        Ok(TokenOutput {
            id,
            text,
            logprob,
            finish: self.finish.clone(),
        })
    }

    /// Text held back by the detokenizer and the stop matcher, at the end.
    fn flush_text(&mut self) -> Result<String> {
        let mut text = String::new();
        if let Some(rest) = self.decoder.flush()? {
            let out = self.stops.push(&rest);
            text.push_str(&out.text);
            if let Some(i) = out.stopped {
                self.finish = Some(Finish::StopString(self.stops.stops()[i].clone()));
                return Ok(text);
            }
        }
        text.push_str(&self.stops.flush());
        Ok(text)
    }

    /// Decode the generated tokens in one go (for checks and logs).
    pub fn decode_generated(&self) -> Result<String> {
        self.tokenizer.decode(self.generated(), true)
    }
}

/// The outcome of [`generate`].
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Completion {
    pub text: String,
    #[serde(skip)]
    pub finish: Finish,
    pub finish_reason: &'static str,
    pub prompt_tokens: usize,
    pub completion_tokens: usize,
    /// Prompt tokens actually run through the model (fewer than
    /// `prompt_tokens` when a cached prefix was reused).
    pub prefill_tokens: usize,
    pub prefill_seconds: f64,
    /// Forward passes after the prefill (one per generated token but the last).
    pub decode_steps: usize,
    pub decode_seconds: f64,
    #[serde(skip)]
    pub token_ids: Vec<u32>,
    #[serde(skip)]
    pub logprobs: Vec<TokenLogprob>,
}

impl Completion {
    pub fn prefill_tokens_per_s(&self) -> f64 {
        rate(self.prefill_tokens, self.prefill_seconds)
    }

    pub fn decode_tokens_per_s(&self) -> f64 {
        rate(self.decode_steps, self.decode_seconds)
    }
}

fn rate(n: usize, s: f64) -> f64 {
    if n == 0 || s <= 0.0 {
        0.0
    } else {
        n as f64 / s
    }
}

/// Run one sequence to the end. `forward(ids)` feeds `ids` to the model
/// (continuing its cache) and returns the logits of the last one;
/// `on_token` sees every token as it comes and may stop generation with
/// `ControlFlow::Break`.
pub fn generate<F, C>(seq: &mut Sequence<'_>, mut forward: F, mut on_token: C) -> Result<Completion>
where
    F: FnMut(&[u32]) -> Result<Vec<f32>>,
    C: FnMut(&TokenOutput) -> ControlFlow<()>,
{
    let prefill_tokens = seq.pending().len();
    let mut prefill_seconds = 0.0;
    let mut decode_seconds = 0.0;
    let mut decode_steps = 0usize;
    let mut first = true;
    let mut start = Instant::now();
    while !seq.is_finished() {
        let logits = forward(seq.pending())?;
        seq.mark_fed();
        let out = seq.push_logits(&logits)?;
        if first {
            prefill_seconds = start.elapsed().as_secs_f64();
            start = Instant::now();
            first = false;
        } else {
            decode_steps += 1;
        }
        if on_token(&out).is_break() && !seq.is_finished() {
            let rest = seq.cancel()?;
            if !rest.is_empty() {
                let _ = on_token(&TokenOutput {
                    id: out.id,
                    text: rest,
                    logprob: None,
                    finish: seq.finish().cloned(),
                });
            }
        }
    }
    if !first {
        decode_seconds = start.elapsed().as_secs_f64();
    }
    let finish = seq.finish().cloned().unwrap_or(Finish::Cancelled);
    Ok(Completion {
        text: seq.text().to_string(),
        finish_reason: finish.reason(),
        finish,
        prompt_tokens: seq.prompt_len(),
        completion_tokens: seq.generated().len(),
        prefill_tokens,
        prefill_seconds,
        decode_steps,
        decode_seconds,
        token_ids: seq.generated().to_vec(),
        logprobs: seq.logprobs().to_vec(),
    })
}

/// [`generate`] with a model and a one-row cache. The cache may already
/// hold a prefix of the sequence (see [`Sequence::skip_cached`]).
pub fn generate_with_model<C>(
    model: &Model,
    cache: &mut KvCache,
    seq: &mut Sequence<'_>,
    on_token: C,
) -> Result<Completion>
where
    C: FnMut(&TokenOutput) -> ControlFlow<()>,
{
    if cache.batch() != 1 {
        bail!(
            "generate_with_model needs a one-row cache, got {}",
            cache.batch()
        );
    }
    if cache.len() != seq.fed() {
        bail!(
            "the cache holds {} positions but the sequence says {} are cached",
            cache.len(),
            seq.fed()
        );
    }
    generate(seq, |ids| model.forward_ids(ids, 1, cache, true), on_token)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The SmolLM2 tokenizer from the test GGUF.
    fn smollm_tokenizer() -> Tokenizer {
        let p = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("fixtures/cache/SmolLM2-135M-Instruct.Q4_1.gguf");
        assert!(
            p.exists(),
            "{} is missing: run fixtures/fetch-smollm2.sh",
            p.display()
        );
        Tokenizer::load(&p).unwrap()
    }

    /// Logits that make `id` the argmax.
    fn one_hot(vocab: usize, id: u32) -> Vec<f32> {
        let mut l = vec![0.0; vocab];
        l[id as usize] = 10.0;
        l
    }

    /// A fake model that "predicts" a fixed script of tokens, and records
    /// what it was fed.
    fn scripted(
        vocab: usize,
        script: Vec<u32>,
        fed: &mut Vec<Vec<u32>>,
    ) -> impl FnMut(&[u32]) -> Result<Vec<f32>> + '_ {
        let mut i = 0;
        move |ids: &[u32]| {
            fed.push(ids.to_vec());
            let id = script[i.min(script.len() - 1)];
            i += 1;
            Ok(one_hot(vocab, id))
        }
    }

    #[test]
    fn streams_text_and_stops_on_eos() {
        let tok = smollm_tokenizer();
        let v = tok.vocab_size();
        let answer = tok
            .encode("The capital of France is Paris.", false)
            .unwrap();
        let eos = tok.eos_ids()[0];
        let mut script = answer.clone();
        script.push(eos);
        script.push(answer[0]);
        let prompt = tok.encode("Q: capital of France?\nA:", false).unwrap();
        let mut seq =
            Sequence::new(&tok, prompt.clone(), &GenerateParams::default(), 8192).unwrap();
        let mut fed = Vec::new();
        let mut chunks = Vec::new();
        let done = generate(&mut seq, scripted(v, script, &mut fed), |t| {
            chunks.push(t.text.clone());
            ControlFlow::Continue(())
        })
        .unwrap();
        assert_eq!(done.text, "The capital of France is Paris.");
        assert_eq!(chunks.concat(), done.text);
        assert_eq!(done.finish, Finish::Eos(eos));
        assert_eq!(done.finish_reason, "stop");
        assert_eq!(done.completion_tokens, answer.len() + 1);
        assert_eq!(done.prompt_tokens, prompt.len());
        // Prefill feeds the prompt at once, then one token per step; the eos
        // is never fed.
        assert_eq!(fed[0], prompt);
        assert!(fed[1..].iter().all(|f| f.len() == 1));
        assert_eq!(fed.len(), answer.len() + 1);
        assert_eq!(done.decode_steps, answer.len());
        assert_eq!(seq.pending(), &[] as &[u32]);
    }

    #[test]
    fn ignore_eos_and_max_new_tokens() {
        let tok = smollm_tokenizer();
        let v = tok.vocab_size();
        let eos = tok.eos_ids()[0];
        let params = GenerateParams {
            max_new_tokens: Some(5),
            ignore_eos: true,
            ..Default::default()
        };
        let mut seq = Sequence::new(&tok, vec![1, 2, 3], &params, 8192).unwrap();
        let mut fed = Vec::new();
        let done = generate(&mut seq, scripted(v, vec![eos], &mut fed), |_| {
            ControlFlow::Continue(())
        })
        .unwrap();
        assert_eq!(done.completion_tokens, 5);
        assert_eq!(done.finish, Finish::MaxTokens);
        assert_eq!(done.finish_reason, "length");
    }

    #[test]
    fn stop_strings_cut_the_text() {
        let tok = smollm_tokenizer();
        let v = tok.vocab_size();
        let script = tok.encode("Paris. Next question: what", false).unwrap();
        let params = GenerateParams {
            stop: vec!["Next".into()],
            ..Default::default()
        };
        let mut seq = Sequence::new(&tok, vec![1], &params, 8192).unwrap();
        let mut fed = Vec::new();
        let mut shown = String::new();
        let done = generate(&mut seq, scripted(v, script, &mut fed), |t| {
            shown.push_str(&t.text);
            ControlFlow::Continue(())
        })
        .unwrap();
        assert_eq!(done.text, "Paris. ");
        assert_eq!(shown, "Paris. ");
        assert_eq!(done.finish, Finish::StopString("Next".into()));
    }

    #[test]
    fn context_window_bounds_generation() {
        let tok = smollm_tokenizer();
        let v = tok.vocab_size();
        let a = tok.encode("a", false).unwrap()[0];
        let mut seq = Sequence::new(&tok, vec![1, 2, 3], &GenerateParams::default(), 6).unwrap();
        let mut fed = Vec::new();
        let done = generate(&mut seq, scripted(v, vec![a], &mut fed), |_| {
            ControlFlow::Continue(())
        })
        .unwrap();
        assert_eq!(done.completion_tokens, 3);
        assert_eq!(done.finish, Finish::ContextFull);
        // No forward ever ran past the window: 3 + 2 fed positions.
        assert_eq!(fed.iter().map(|f| f.len()).sum::<usize>(), 5);

        let e = Sequence::new(&tok, vec![1; 6], &GenerateParams::default(), 6)
            .err()
            .unwrap();
        assert!(e.to_string().contains("context window is 6 tokens"), "{e}");
        assert!(Sequence::new(&tok, vec![], &GenerateParams::default(), 6).is_err());
    }

    #[test]
    fn utf8_split_over_tokens_is_held_back() {
        let tok = smollm_tokenizer();
        let v = tok.vocab_size();
        let text = "née 東京 🦀!";
        let script = tok.encode(text, false).unwrap();
        let params = GenerateParams {
            max_new_tokens: Some(script.len()),
            ..Default::default()
        };
        let mut seq = Sequence::new(&tok, vec![1], &params, 8192).unwrap();
        let mut fed = Vec::new();
        let mut chunks = Vec::new();
        let done = generate(&mut seq, scripted(v, script.clone(), &mut fed), |t| {
            chunks.push(t.text.clone());
            ControlFlow::Continue(())
        })
        .unwrap();
        assert_eq!(done.text, text);
        assert_eq!(chunks.concat(), text);
        // Every chunk is whole characters (it is a String), and the crab's
        // bytes span several tokens, so some token showed nothing.
        assert!(script.len() > text.chars().count() - 3);
        assert!(chunks.iter().any(|c| c.is_empty()));
    }

    #[test]
    fn callback_can_cancel_and_logprobs_are_recorded() {
        let tok = smollm_tokenizer();
        let v = tok.vocab_size();
        let a = tok.encode(" a", false).unwrap()[0];
        let params = GenerateParams {
            logprobs: Some(3),
            ..Default::default()
        };
        let mut seq = Sequence::new(&tok, vec![1], &params, 8192).unwrap();
        let mut fed = Vec::new();
        let mut n = 0;
        let done = generate(&mut seq, scripted(v, vec![a], &mut fed), |_| {
            n += 1;
            if n == 4 {
                ControlFlow::Break(())
            } else {
                ControlFlow::Continue(())
            }
        })
        .unwrap();
        assert_eq!(done.finish, Finish::Cancelled);
        assert_eq!(done.completion_tokens, 4);
        assert_eq!(done.text, " a a a a");
        assert_eq!(done.logprobs.len(), 4);
        let lp = &done.logprobs[0];
        assert_eq!(lp.id, a);
        assert_eq!(lp.top.len(), 3);
        assert_eq!(lp.top[0].0, a);
        // log softmax of one 10 among v zeros.
        let expect = 10.0 - ((v as f64 - 1.0) + 10f64.exp()).ln();
        assert!((lp.logprob as f64 - expect).abs() < 1e-4);
    }

    #[test]
    fn seeded_sampling_reproduces() {
        let tok = smollm_tokenizer();
        let v = tok.vocab_size();
        let logits: Vec<f32> = (0..v).map(|i| ((i * 7919) % 1000) as f32 / 100.0).collect();
        let run = |seed| {
            let params = GenerateParams {
                max_new_tokens: Some(20),
                sampling: SamplingParams {
                    temperature: 1.0,
                    top_k: 50,
                    seed: Some(seed),
                    ..Default::default()
                },
                ignore_eos: true,
                ..Default::default()
            };
            let mut seq = Sequence::new(&tok, vec![1], &params, 8192).unwrap();
            generate(
                &mut seq,
                |_| Ok(logits.clone()),
                |_| ControlFlow::Continue(()),
            )
            .unwrap()
            .token_ids
        };
        assert_eq!(run(5), run(5));
        assert_ne!(run(5), run(6));
    }

    #[test]
    fn skip_cached_feeds_only_the_new_suffix() {
        let tok = smollm_tokenizer();
        let v = tok.vocab_size();
        let eos = tok.eos_ids()[0];
        let mut seq =
            Sequence::new(&tok, vec![1, 2, 3, 4], &GenerateParams::default(), 8192).unwrap();
        seq.skip_cached(2);
        let mut fed = Vec::new();
        let done = generate(&mut seq, scripted(v, vec![eos], &mut fed), |_| {
            ControlFlow::Continue(())
        })
        .unwrap();
        assert_eq!(fed, vec![vec![3, 4]]);
        assert_eq!(done.prefill_tokens, 2);
        // The whole prompt cached: the last token is still fed.
        let mut seq = Sequence::new(&tok, vec![1, 2], &GenerateParams::default(), 8192).unwrap();
        seq.skip_cached(10);
        assert_eq!(seq.pending(), &[2]);
    }
}
