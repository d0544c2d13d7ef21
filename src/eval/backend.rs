//! What a task asks of a model, and the model in this process that answers:
//! log-likelihoods of continuations, log-likelihoods of whole documents
//! (sliding windows), and greedy generation.
//!
//! Tokenization of a (context, continuation) pair follows
//! lm-evaluation-harness: trailing whitespace of the context moves to the
//! continuation, the pair is encoded together, and the continuation is what
//! lies past the token length of the context alone. An empty context is
//! the BOS token (else EOS).

use anyhow::{bail, Result};

use crate::model::batched::{forward_batch, BatchItem, SeqCache};
use crate::model::decoder::log_softmax_at;
use crate::model::generate::{GenerateParams, Sequence};
use crate::model::Model;
use crate::tokenizer::Tokenizer;

/// Score `continuation` after `context`.
#[derive(Debug, Clone, PartialEq)]
pub struct LlRequest {
    pub context: String,
    pub continuation: String,
}

/// The answer to an [`LlRequest`].
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct LlResult {
    /// Sum of the continuation tokens' log-probabilities.
    pub loglikelihood: f64,
    /// Whether every continuation token was the most likely one.
    pub is_greedy: bool,
    /// Continuation tokens scored.
    pub tokens: usize,
}

/// A document's total log-likelihood.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RollingResult {
    pub loglikelihood: f64,
    /// Tokens scored (all but the first).
    pub tokens: usize,
}

/// Greedy generation settings.
#[derive(Debug, Clone, PartialEq)]
pub struct GenRequest {
    pub max_new_tokens: usize,
    pub stop: Vec<String>,
}

/// A model to evaluate: here or behind an HTTP API.
pub trait Backend {
    /// One line saying what is evaluated.
    fn describe(&self) -> String;
    /// Log-likelihoods of several requests (a batch).
    fn loglikelihood(&self, reqs: &[LlRequest]) -> Result<Vec<LlResult>>;
    /// The log-likelihood of each whole document: every token after the
    /// first, in windows of at most `max_length` tokens that advance by
    /// `stride` scored tokens (each window sees up to `max_length` tokens of
    /// context).
    fn rolling(&self, docs: &[String], window: Window) -> Result<Vec<RollingResult>>;
    /// Greedy completions of several prompts.
    fn generate(&self, prompts: &[String], req: &GenRequest) -> Result<Vec<String>>;
}

/// Sliding-window settings for perplexity.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Window {
    /// Most tokens fed at once (`None`: the model's context).
    pub max_length: Option<usize>,
    /// Scored tokens per window (`None`: `max_length`, disjoint windows).
    pub stride: Option<usize>,
}

/// The windows of a document of `n` tokens: `(start, end, first_scored)`,
/// feeding `ids[start..end]` and scoring the tokens `first_scored..end`.
/// Every token but the first is scored exactly once; each window holds at
/// most `max_len + 1` tokens (it feeds `max_len`).
pub fn windows(n: usize, max_len: usize, stride: usize) -> Vec<(usize, usize, usize)> {
    let max_len = max_len.max(1);
    let stride = stride.clamp(1, max_len);
    let mut out = Vec::new();
    let mut p = 1;
    while p < n {
        let q = (p + stride).min(n);
        let a = q.saturating_sub(max_len + 1);
        out.push((a, q, p));
        p = q;
    }
    out
}

/// The model and tokenizer in this process.
pub struct LocalBackend {
    pub model: Model,
    pub tokenizer: Tokenizer,
    /// Items scored in one batched forward.
    pub batch_size: usize,
    name: String,
}

/// One scored sequence: `full` tokens, the continuation starts at `ctx_len`.
struct Scored {
    full: Vec<u32>,
    ctx_len: usize,
}

impl LocalBackend {
    pub fn new(model: Model, tokenizer: Tokenizer, name: String, batch_size: usize) -> Self {
        LocalBackend {
            model,
            tokenizer,
            batch_size: batch_size.max(1),
            name,
        }
    }

    fn context_len(&self) -> usize {
        self.model.config().max_position_embeddings
    }

    fn scored(&self, r: &LlRequest) -> Result<Scored> {
        let (mut ctx, cont) = encode_pair(&self.tokenizer, &r.context, &r.continuation)?;
        let max = self.context_len();
        if cont.len() > max {
            bail!(
                "a continuation of {} tokens does not fit the model's context of {max}",
                cont.len()
            );
        }
        // As lm-eval: keep the last max_length + 1 tokens (max_length fed).
        let total = ctx.len() + cont.len();
        if total > max + 1 {
            ctx.drain(..total - (max + 1));
        }
        let ctx_len = ctx.len();
        ctx.extend(cont);
        Ok(Scored { full: ctx, ctx_len })
    }
}

fn prefix_token(tok: &Tokenizer) -> Result<u32> {
    match tok.bos_id().or_else(|| tok.eos_ids().first().copied()) {
        Some(t) => Ok(t),
        None => bail!("an empty context needs a BOS or EOS token, and the tokenizer has neither"),
    }
}

/// lm-evaluation-harness's `_encode_pair`: (context tokens, continuation
/// tokens).
pub fn encode_pair(
    tok: &Tokenizer,
    context: &str,
    continuation: &str,
) -> Result<(Vec<u32>, Vec<u32>)> {
    if context.is_empty() {
        return Ok((vec![prefix_token(tok)?], tok.encode(continuation, false)?));
    }
    let (ctx, cont) = split_trailing_space(context, continuation);
    let whole = tok.encode(&format!("{ctx}{cont}"), false)?;
    let ctx_ids = tok.encode(&ctx, false)?;
    if ctx_ids.is_empty() {
        // A context of whitespace only: the prefix token stands for it.
        return Ok((vec![prefix_token(tok)?], whole));
    }
    let n = ctx_ids.len().min(whole.len());
    Ok((whole[..n].to_vec(), whole[n..].to_vec()))
}

/// Move the context's trailing whitespace to the front of the continuation.
pub fn split_trailing_space(context: &str, continuation: &str) -> (String, String) {
    let trimmed = context.trim_end();
    let spaces = &context[trimmed.len()..];
    (trimmed.to_string(), format!("{spaces}{continuation}"))
}

fn common_prefix(a: &[u32], b: &[u32]) -> usize {
    a.iter().zip(b).take_while(|(x, y)| x == y).count()
}

fn argmax_f32(row: &[f32]) -> usize {
    let mut best = 0;
    for (i, &x) in row.iter().enumerate() {
        if x > row[best] {
            best = i;
        }
    }
    best
}

impl Backend for LocalBackend {
    fn describe(&self) -> String {
        self.name.clone()
    }

    fn loglikelihood(&self, reqs: &[LlRequest]) -> Result<Vec<LlResult>> {
        let seqs: Vec<Scored> = reqs.iter().map(|r| self.scored(r)).collect::<Result<_>>()?;
        // Groups of consecutive requests with the same context (the choices
        // of one question) share one pass over their common prefix.
        let mut groups: Vec<(usize, usize)> = Vec::new();
        for (i, r) in reqs.iter().enumerate() {
            match groups.last_mut() {
                Some((_, end)) if *end == i && reqs[i - 1].context == r.context => *end = i + 1,
                _ => groups.push((i, i + 1)),
            }
        }
        // The shared prefix of a group: tokens before the first position
        // whose logits any member needs.
        let shared: Vec<usize> = groups
            .iter()
            .map(|&(a, b)| {
                let first = &seqs[a].full;
                let mut s = seqs[a].ctx_len;
                for q in &seqs[a..b] {
                    s = s.min(q.ctx_len).min(common_prefix(first, &q.full));
                }
                s.saturating_sub(1)
            })
            .collect();
        let mut caches: Vec<SeqCache> = groups.iter().map(|_| SeqCache::new(&self.model)).collect();
        {
            let mut items: Vec<BatchItem<'_>> = Vec::new();
            for ((g, cache), &s) in groups.iter().zip(caches.iter_mut()).zip(&shared) {
                if s > 0 {
                    items.push(BatchItem {
                        ids: &seqs[g.0].full[..s],
                        cache,
                        all_logits: false,
                    });
                }
            }
            forward_batch(&self.model, &mut items)?;
        }
        let vocab = self.model.vocab_size();
        let mut out = vec![
            LlResult {
                loglikelihood: 0.0,
                is_greedy: true,
                tokens: 0
            };
            reqs.len()
        ];
        let mut member_caches: Vec<SeqCache> = Vec::with_capacity(reqs.len());
        let mut starts = Vec::with_capacity(reqs.len());
        for (gi, &(a, b)) in groups.iter().enumerate() {
            for _ in a..b {
                member_caches.push(caches[gi].clone());
                starts.push(shared[gi]);
            }
        }
        let mut idx = Vec::new();
        let mut items: Vec<BatchItem<'_>> = Vec::new();
        for (i, cache) in member_caches.iter_mut().enumerate() {
            let q = &seqs[i];
            if q.full.len() == q.ctx_len {
                continue; // an empty continuation scores 0
            }
            idx.push(i);
            items.push(BatchItem {
                ids: &q.full[starts[i]..q.full.len() - 1],
                cache,
                all_logits: true,
            });
        }
        let logits = forward_batch(&self.model, &mut items)?;
        drop(items);
        for (&i, l) in idx.iter().zip(&logits) {
            let q = &seqs[i];
            let s = starts[i];
            let mut ll = 0f64;
            let mut greedy = true;
            for pos in q.ctx_len..q.full.len() {
                let row = &l[(pos - 1 - s) * vocab..(pos - s) * vocab];
                let t = q.full[pos] as usize;
                ll += log_softmax_at(row, t) as f64;
                greedy &= argmax_f32(row) == t;
            }
            out[i] = LlResult {
                loglikelihood: ll,
                is_greedy: greedy,
                tokens: q.full.len() - q.ctx_len,
            };
        }
        Ok(out)
    }

    fn rolling(&self, docs: &[String], window: Window) -> Result<Vec<RollingResult>> {
        let max_len = window
            .max_length
            .unwrap_or(self.context_len())
            .min(self.context_len());
        let stride = window.stride.unwrap_or(max_len);
        let vocab = self.model.vocab_size();
        let mut out = Vec::with_capacity(docs.len());
        for d in docs {
            let ids = self.tokenizer.encode(d, false)?;
            let ws = windows(ids.len(), max_len, stride);
            let mut ll = 0f64;
            let mut n = 0;
            // A few windows at once, up to about 2048 fed tokens.
            let mut i = 0;
            while i < ws.len() {
                let mut j = i;
                let mut fed = 0;
                while j < ws.len() && (j == i || fed + ws[j].1 - ws[j].0 <= 2048) {
                    fed += ws[j].1 - ws[j].0;
                    j += 1;
                }
                let mut caches: Vec<SeqCache> =
                    (i..j).map(|_| SeqCache::new(&self.model)).collect();
                let mut items: Vec<BatchItem<'_>> = ws[i..j]
                    .iter()
                    .zip(caches.iter_mut())
                    .map(|(&(a, b, _), cache)| BatchItem {
                        ids: &ids[a..b - 1],
                        cache,
                        all_logits: true,
                    })
                    .collect();
                let logits = forward_batch(&self.model, &mut items)?;
                drop(items);
                for (&(a, b, p), l) in ws[i..j].iter().zip(&logits) {
                    for pos in p..b {
                        let row = &l[(pos - 1 - a) * vocab..(pos - a) * vocab];
                        ll += log_softmax_at(row, ids[pos] as usize) as f64;
                        n += 1;
                    }
                }
                i = j;
            }
            out.push(RollingResult {
                loglikelihood: ll,
                tokens: n,
            });
        }
        Ok(out)
    }

    fn generate(&self, prompts: &[String], req: &GenRequest) -> Result<Vec<String>> {
        let params = GenerateParams {
            max_new_tokens: Some(req.max_new_tokens),
            stop: req.stop.clone(),
            ..GenerateParams::default()
        };
        let ctx = self.context_len();
        let mut seqs: Vec<Sequence<'_>> = Vec::with_capacity(prompts.len());
        for p in prompts {
            let mut ids = self.tokenizer.encode(p, false)?;
            // Keep the end of a prompt that leaves no room to answer.
            let room = req.max_new_tokens.min(ctx / 2).max(1);
            if ids.len() + room > ctx {
                ids.drain(..ids.len() + room - ctx);
            }
            seqs.push(Sequence::new(&self.tokenizer, ids, &params, ctx)?);
        }
        let mut caches: Vec<SeqCache> =
            prompts.iter().map(|_| SeqCache::new(&self.model)).collect();
        loop {
            let live: Vec<usize> = (0..seqs.len())
                .filter(|&i| !seqs[i].is_finished())
                .collect();
            if live.is_empty() {
                break;
            }
            let pending: Vec<Vec<u32>> = live.iter().map(|&i| seqs[i].pending().to_vec()).collect();
            let logits = {
                let mut items: Vec<BatchItem<'_>> = Vec::with_capacity(live.len());
                let mut rest: &mut [SeqCache] = &mut caches;
                let mut base = 0;
                for (k, &i) in live.iter().enumerate() {
                    let (_, tail) = rest.split_at_mut(i - base);
                    let (c, tail) = tail.split_first_mut().expect("index in range");
                    items.push(BatchItem {
                        ids: &pending[k],
                        cache: c,
                        all_logits: false,
                    });
                    rest = tail;
                    base = i + 1;
                }
                forward_batch(&self.model, &mut items)?
            };
            for (&i, l) in live.iter().zip(&logits) {
                seqs[i].mark_fed();
                seqs[i].push_logits(l)?;
            }
        }
        Ok(seqs.iter().map(|s| s.text().to_string()).collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn windows_score_every_token_once() {
        // One window holds the whole document.
        assert_eq!(windows(10, 16, 16), vec![(0, 10, 1)]);
        // Disjoint windows of 4 fed tokens (lm-eval's rolling windows).
        assert_eq!(windows(10, 4, 4), vec![(0, 5, 1), (4, 9, 5), (5, 10, 9)]);
        // A stride of 2 keeps up to 4 tokens of context.
        let ws = windows(9, 4, 2);
        assert_eq!(ws, vec![(0, 3, 1), (0, 5, 3), (2, 7, 5), (4, 9, 7)]);
        for n in 1..40 {
            for (m, s) in [(4, 4), (4, 1), (8, 3), (3, 7)] {
                let ws = windows(n, m, s);
                let scored: Vec<usize> = ws.iter().flat_map(|&(_, b, p)| p..b).collect();
                assert_eq!(scored, (1..n).collect::<Vec<_>>(), "n={n} m={m} s={s}");
                assert!(ws.iter().all(|&(a, b, p)| b - a <= m + 1 && a < p));
            }
        }
    }

    #[test]
    fn trailing_space_moves_to_the_continuation() {
        assert_eq!(
            split_trailing_space("Answer: ", "B"),
            ("Answer:".to_string(), " B".to_string())
        );
        assert_eq!(
            split_trailing_space("Answer:", " B"),
            ("Answer:".to_string(), " B".to_string())
        );
    }
}
