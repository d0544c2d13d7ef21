//! Conversations -> token ids and labels through the model's chat template.
//!
//! The whole conversation is rendered once (`add_generation_prompt = false`)
//! and tokenized without added special tokens (as transformers'
//! `apply_chat_template(tokenize=True)` does: the template writes BOS itself).
//! For every assistant turn `k`:
//!
//! 1. the messages before it are rendered with `add_generation_prompt =
//!    true`; that text must be a prefix of the whole rendering, and where it
//!    ends the assistant's tokens begin (templates that write the earlier
//!    messages differently when more follows, such as Mistral's, which puts
//!    the system prompt into the last user turn, fall back to finding the
//!    turn's content after the previous assistant turn);
//! 2. the turn ends after the first end-of-turn string (the template's stop
//!    tokens, e.g. `<|im_end|>`, or the eos token) that follows the content,
//!    so the model learns to stop; what the template writes after it (a
//!    newline) stays masked. A template that writes no end marker trains the
//!    whole turn as rendered;
//! 3. the two character positions become token positions by tokenizing the
//!    text before them: its tokens must be a prefix of the conversation's
//!    tokens (a position just after a special end-of-turn token needs no
//!    tokenizing: the tokenizer always splits there, so it is found by
//!    counting that token's occurrences). When a token straddles the boundary (rare: only where the text
//!    on both sides merges), the common prefix is used if it is at most two
//!    tokens short, else the row is an error.
//!
//! Every assistant turn is trained (ms-swift's default for multi-turn data);
//! everything else is [`IGNORE`]. With `loss_on_all_tokens`, every token is a
//! label.

use anyhow::{bail, Result};

use super::{Sample, IGNORE};
use crate::tokenizer::{Message, Tokenizer};

/// The strings that can end an assistant turn under this tokenizer's
/// template: its stop tokens and the eos token.
pub fn end_markers(tok: &Tokenizer) -> Vec<String> {
    let mut v: Vec<String> = tok
        .template()
        .map(|t| t.stop_tokens().to_vec())
        .unwrap_or_default();
    if let Some(e) = tok.eos_token() {
        if !e.is_empty() && !v.iter().any(|s| s == e) {
            v.push(e.to_string());
        }
    }
    v
}

/// Render, tokenize and mask one conversation.
pub fn encode_conversation(
    tok: &Tokenizer,
    messages: &[Message],
    loss_on_all_tokens: bool,
    markers: &[String],
) -> Result<Sample> {
    let full = tok.apply_chat_template(messages, false)?;
    let ids = tok.encode(&full, false)?;
    if loss_on_all_tokens {
        let labels = ids.iter().map(|&i| i as i64).collect();
        return Ok(Sample {
            input_ids: ids,
            labels,
        });
    }
    let mut labels = vec![IGNORE; ids.len()];
    let mut prev_end = 0;
    for (k, m) in messages.iter().enumerate() {
        if m.role != "assistant" {
            continue;
        }
        let (start, end) = turn_span(tok, &full, messages, k, prev_end, markers)?;
        prev_end = end;
        let a = token_boundary(tok, &full, start, &ids)?;
        let b = token_boundary(tok, &full, end, &ids)?;
        let b = b.max(a);
        for (l, &id) in labels[a..b].iter_mut().zip(&ids[a..b]) {
            *l = id as i64;
        }
    }
    Ok(Sample {
        input_ids: ids,
        labels,
    })
}

/// Render `prompt` followed by an assistant turn with `completion`, and
/// split the tokens: the prompt (everything before the answer, generation
/// prompt included) and the answer through its end-of-turn marker (what the
/// template writes after the marker is left out).
pub fn encode_prompt_completion(
    tok: &Tokenizer,
    prompt: &[Message],
    completion: &str,
    markers: &[String],
) -> Result<(Vec<u32>, Vec<u32>)> {
    let mut messages = prompt.to_vec();
    messages.push(Message::assistant(completion));
    let full = tok.apply_chat_template(&messages, false)?;
    let ids = tok.encode(&full, false)?;
    let k = messages.len() - 1;
    let (start, end) = turn_span(tok, &full, &messages, k, 0, markers)?;
    let a = token_boundary(tok, &full, start, &ids)?;
    let b = token_boundary(tok, &full, end, &ids)?.max(a);
    Ok((ids[..a].to_vec(), ids[a..b].to_vec()))
}

/// The character span of assistant turn `k` in `full`: its content and the
/// end-of-turn marker.
fn turn_span(
    tok: &Tokenizer,
    full: &str,
    messages: &[Message],
    k: usize,
    from: usize,
    markers: &[String],
) -> Result<(usize, usize)> {
    let content = messages[k].content.trim();
    let prompt = tok.apply_chat_template(&messages[..k], true);
    let start = match prompt {
        Ok(p) if full.starts_with(&p) && p.len() >= from => p.len(),
        _ => {
            // The template writes the conversation before this turn
            // differently when more follows (Mistral moves the system prompt
            // into the last user turn; some open a thinking block in the
            // generation prompt): find the turn's content after the previous
            // turn instead.
            let rest = &full[from..];
            let found = if content.is_empty() {
                None
            } else if k + 1 == messages.len() {
                rest.rfind(content)
            } else {
                rest.find(content)
            };
            match found {
                Some(off) => from + off,
                None => bail!(
                    "cannot find assistant turn {k} in the conversation as the chat template                      renders it, so the assistant's tokens cannot be told apart; use another                      template or train on all tokens"
                ),
            }
        }
    };
    let upto = tok.apply_chat_template(&messages[..=k], false)?;
    let limit = if full.starts_with(&upto) && upto.len() >= start {
        upto.len()
    } else {
        full.len()
    };
    let region = &full[start..limit];
    let after_content = if content.is_empty() {
        0
    } else {
        region.find(content).map(|p| p + content.len()).unwrap_or(0)
    };
    let end = markers
        .iter()
        .filter_map(|m| {
            region[after_content..]
                .find(m.as_str())
                .map(|p| p + m.len())
        })
        .min()
        .map(|p| start + after_content + p)
        .unwrap_or(limit);
    Ok((start, end))
}

/// The number of tokens of `full` that lie before byte `pos`.
fn token_boundary(tok: &Tokenizer, full: &str, pos: usize, ids: &[u32]) -> Result<usize> {
    if pos >= full.len() {
        return Ok(ids.len());
    }
    if pos == 0 {
        return Ok(0);
    }
    if let Some(n) = special_boundary(tok, &full[..pos], ids) {
        return Ok(n);
    }
    let pre = tok.encode(&full[..pos], false)?;
    let common = pre.iter().zip(ids).take_while(|(a, b)| a == b).count();
    if common == pre.len() || pre.len() - common <= 2 {
        return Ok(common);
    }
    bail!(
        "the text before byte {pos} of the rendered conversation tokenizes differently on its own \
         ({} tokens, {} in common with the whole conversation), so the assistant's tokens cannot \
         be told apart",
        pre.len(),
        common
    )
}

/// When `prefix` ends with a special token (`<|im_end|>`), the tokenizer
/// splits the text there whatever follows: the boundary is just after the
/// matching occurrence of that token's id, found without tokenizing the
/// prefix again.
fn special_boundary(tok: &Tokenizer, prefix: &str, ids: &[u32]) -> Option<usize> {
    let (id, text) = tok
        .eos_ids()
        .iter()
        .filter(|&&id| tok.is_special(id))
        .filter_map(|&id| Some((id, tok.id_to_token(id)?)))
        .find(|(_, t)| !t.is_empty() && prefix.ends_with(t.as_str()))?;
    let n = prefix.matches(text.as_str()).count();
    ids.iter()
        .enumerate()
        .filter(|(_, &x)| x == id)
        .nth(n.checked_sub(1)?)
        .map(|(i, _)| i + 1)
}
