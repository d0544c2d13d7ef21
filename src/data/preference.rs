//! Preference data (issue 07, `swift dpo`): rows -> tokenized (prompt,
//! chosen, rejected) triples, with the files, formats, `--columns`, errors
//! and report of [`load_sft`](super::load_sft).
//!
//! Layouts, per row:
//!
//! - **prompt-chosen-rejected**: `prompt`, `chosen`, `rejected`, each a
//!   string or a message list (TRL's conversational form: the prompt's
//!   messages, and one assistant message per answer); optional `system`.
//! - **chosen-rejected** (TRL's implicit prompt): `chosen` and `rejected` are
//!   whole conversations that differ only in their last (assistant) message;
//!   the shared messages are the prompt.
//! - **messages-rejected** (ms-swift): `messages` ending with the chosen
//!   assistant turn, and `rejected_response` (a string). Also `query` /
//!   `response` / `rejected_response` (+ `history`, `system`).
//! - **kto**: `messages` ending with an assistant turn and a boolean `label`
//!   (ms-swift), or TRL's unpaired `prompt` / `completion` / `label`. A
//!   desirable completion (label true) lands in `chosen`, an undesirable one
//!   in `rejected`, the other left empty; `label` says which.
//!
//! Each answer's tokens run through the template's end-of-turn token (as in
//! SFT). Length: `max_length` bounds prompt + the longer answer;
//! [`Truncation::Delete`] drops the row, `Left` cuts the prompt from its
//! start (the answers stay whole), `Right` cuts the answers' ends (the
//! prompt stays whole); a row that cannot fit that way is dropped as over
//! length. `packing` and `loss_on_all_tokens` do not apply.

use serde_json::{Map, Value};

use super::formats::type_name;
use super::layouts::{self, ferr, optional_string, required_string, turns, FieldError};
use super::{
    check_common, load_both, render, DataReport, DatasetSpec, RowInfo, Sample, SftOptions,
    Truncation, IGNORE,
};
use crate::progress::Progress;
use crate::tokenizer::{Message, Tokenizer};
use anyhow::{bail, Result};

/// One tokenized preference example.
#[derive(Clone, Debug, PartialEq)]
pub struct PreferenceSample {
    /// The rendered conversation up to the answer, generation prompt included.
    pub prompt: Vec<u32>,
    /// The preferred answer's tokens through the end-of-turn token.
    pub chosen: Vec<u32>,
    /// The dispreferred answer's tokens.
    pub rejected: Vec<u32>,
    /// KTO rows: whether the one completion is desirable (then it is in
    /// `chosen` and `rejected` is empty) or not (the other way round).
    /// `None` for paired rows.
    pub label: Option<bool>,
}

impl PreferenceSample {
    fn joined(&self, answer: &[u32]) -> Sample {
        let mut input_ids = self.prompt.clone();
        input_ids.extend_from_slice(answer);
        let mut labels = vec![IGNORE; self.prompt.len()];
        labels.extend(answer.iter().map(|&i| i as i64));
        Sample { input_ids, labels }
    }

    /// Prompt + chosen answer, labels on the answer only.
    pub fn chosen_sample(&self) -> Sample {
        self.joined(&self.chosen)
    }

    /// Prompt + rejected answer, labels on the answer only.
    pub fn rejected_sample(&self) -> Sample {
        self.joined(&self.rejected)
    }

    /// Prompt + the longer answer: the longest sequence this row feeds.
    pub fn max_len(&self) -> usize {
        self.prompt.len() + self.chosen.len().max(self.rejected.len())
    }
}

/// Preference examples and the report.
#[derive(Clone, Debug, Default)]
pub struct PreferenceData {
    pub train: Vec<PreferenceSample>,
    pub val: Vec<PreferenceSample>,
    pub report: DataReport,
}

/// A preference row before tokenization.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PreferenceRow {
    pub layout: &'static str,
    pub prompt: Vec<Message>,
    pub chosen: Option<String>,
    pub rejected: Option<String>,
    pub label: Option<bool>,
}

fn has(row: &Map<String, Value>, k: &str) -> bool {
    row.get(k).is_some_and(|v| !v.is_null())
}

/// An answer: a string, one assistant message, or a list holding one.
fn answer(row: &Map<String, Value>, key: &str) -> Result<String, FieldError> {
    match row.get(key) {
        Some(Value::String(s)) if !s.trim_start().starts_with('[') => Ok(s.clone()),
        Some(Value::Object(_)) => {
            let mut wrapped = Map::new();
            wrapped.insert(key.into(), Value::Array(vec![row[key].clone()]));
            answer(&wrapped, key)
        }
        Some(Value::Array(_)) | Some(Value::String(_)) => {
            let msgs = turns(row, key)?;
            match msgs.as_slice() {
                [m] if m.role == "assistant" => Ok(m.content.clone()),
                _ => Err(ferr(
                    key,
                    "expected one assistant message (a longer list needs no `prompt` column: \
                     then `chosen` and `rejected` are whole conversations)",
                )),
            }
        }
        Some(Value::Null) | None => Err(ferr(key, "missing")),
        Some(other) => Err(ferr(
            key,
            format!(
                "expected a string or a message list, found {}",
                type_name(other)
            ),
        )),
    }
}

/// A prompt: a string (one user turn) or a message list.
fn prompt(row: &Map<String, Value>, key: &str) -> Result<Vec<Message>, FieldError> {
    match row.get(key) {
        Some(Value::String(s)) if !s.trim_start().starts_with('[') => Ok(vec![Message::user(s)]),
        Some(_) => turns(row, key),
        None => Err(ferr(key, "missing")),
    }
}

fn label(row: &Map<String, Value>) -> Result<bool, FieldError> {
    match row.get("label") {
        Some(Value::Bool(b)) => Ok(*b),
        Some(Value::Number(n)) if n.as_f64() == Some(1.0) => Ok(true),
        Some(Value::Number(n)) if n.as_f64() == Some(0.0) => Ok(false),
        Some(Value::String(s)) => match s.trim().to_ascii_lowercase().as_str() {
            "true" | "1" => Ok(true),
            "false" | "0" => Ok(false),
            _ => Err(ferr(
                "label",
                format!("expected true or false, found {s:?}"),
            )),
        },
        Some(other) => Err(ferr(
            "label",
            format!("expected true or false, found {}", type_name(other)),
        )),
        None => Err(ferr("label", "missing")),
    }
}

/// Split a conversation into the messages before its final assistant turn
/// and that turn's content.
fn split_last(mut msgs: Vec<Message>, field: &str) -> Result<(Vec<Message>, String), FieldError> {
    match msgs.pop() {
        Some(m) if m.role == "assistant" && !msgs.is_empty() => Ok((msgs, m.content)),
        _ => Err(ferr(
            field,
            "expected a conversation ending with an assistant turn after at least one other message",
        )),
    }
}

/// Read a preference row (columns already renamed).
pub fn to_preference(
    row: &Map<String, Value>,
    default_system: Option<&str>,
) -> Result<PreferenceRow, FieldError> {
    let mut r = if has(row, "messages") && has(row, "rejected_response") {
        let (p, c) = split_last(turns(row, "messages")?, "messages")?;
        PreferenceRow {
            layout: "messages-rejected",
            prompt: p,
            chosen: Some(c),
            rejected: Some(required_string(row, "rejected_response")?),
            label: None,
        }
    } else if has(row, "messages") && has(row, "label") {
        let (p, c) = split_last(turns(row, "messages")?, "messages")?;
        kto(p, c, label(row)?)
    } else if has(row, "prompt") && has(row, "completion") && has(row, "label") {
        kto(
            prompt(row, "prompt")?,
            answer(row, "completion")?,
            label(row)?,
        )
    } else if has(row, "chosen") && has(row, "rejected") {
        if has(row, "prompt") {
            PreferenceRow {
                layout: "prompt-chosen-rejected",
                prompt: prompt(row, "prompt")?,
                chosen: Some(answer(row, "chosen")?),
                rejected: Some(answer(row, "rejected")?),
                label: None,
            }
        } else {
            if row["chosen"].is_string() && !row["chosen"].as_str().unwrap_or("").starts_with('[') {
                return Err(ferr(
                    "prompt",
                    "missing (string answers need a `prompt` column; without one, `chosen` and \
                     `rejected` must be whole conversations)",
                ));
            }
            let (pc, c) = split_last(turns(row, "chosen")?, "chosen")?;
            let (pr, rj) = split_last(turns(row, "rejected")?, "rejected")?;
            if pc != pr {
                return Err(ferr(
                    "rejected",
                    "the chosen and rejected conversations differ before their last message",
                ));
            }
            PreferenceRow {
                layout: "chosen-rejected",
                prompt: pc,
                chosen: Some(c),
                rejected: Some(rj),
                label: None,
            }
        }
    } else if has(row, "rejected_response") && (has(row, "query") || has(row, "prompt")) {
        let mut r2 = row.clone();
        if !has(&r2, "query") {
            r2.insert("query".into(), row["prompt"].clone());
        }
        let (p, c) = split_last(layouts::query_response(&r2)?, "response")?;
        PreferenceRow {
            layout: "query-response-rejected",
            prompt: p,
            chosen: Some(c),
            rejected: Some(required_string(row, "rejected_response")?),
            label: None,
        }
    } else {
        let cols: Vec<&str> = row.keys().map(String::as_str).collect();
        return Err(ferr(
            "(row)",
            format!(
                "no known preference layout: expected `prompt` + `chosen` + `rejected`, \
                 `chosen` + `rejected` conversations, `messages` + `rejected_response`, or \
                 `messages` + `label` (KTO); the row has columns {}. Map yours with --columns",
                cols.join(", ")
            ),
        ));
    };
    if r.prompt.first().is_none_or(|m| m.role != "system") {
        let system = optional_string(row, "system")?
            .filter(|s| !s.is_empty())
            .or(default_system.map(str::to_owned));
        if let Some(s) = system {
            r.prompt.insert(0, Message::system(s));
        }
    }
    if !r.prompt.iter().any(|m| m.role == "user") {
        return Err(ferr("prompt", "the prompt has no user message"));
    }
    Ok(r)
}

fn kto(prompt: Vec<Message>, completion: String, desirable: bool) -> PreferenceRow {
    let (chosen, rejected) = if desirable {
        (Some(completion), None)
    } else {
        (None, Some(completion))
    };
    PreferenceRow {
        layout: "kto",
        prompt,
        chosen,
        rejected,
        label: Some(desirable),
    }
}

fn encode(tok: &Tokenizer, r: &PreferenceRow, markers: &[String]) -> Result<PreferenceSample> {
    let mut prompt_ids: Option<Vec<u32>> = None;
    let mut answer = |text: &Option<String>| -> Result<Vec<u32>> {
        let Some(text) = text else {
            return Ok(Vec::new());
        };
        let (p, a) = render::encode_prompt_completion(tok, &r.prompt, text, markers)?;
        match &prompt_ids {
            None => prompt_ids = Some(p),
            Some(q) if *q == p => {}
            Some(_) => {
                bail!("the prompt tokenizes differently before the chosen and the rejected answer")
            }
        }
        Ok(a)
    };
    let chosen = answer(&r.chosen)?;
    let rejected = answer(&r.rejected)?;
    Ok(PreferenceSample {
        prompt: prompt_ids.unwrap_or_default(),
        chosen,
        rejected,
        label: r.label,
    })
}

/// Fit a row into `max_length` (see the module docs).
fn fit(
    mut s: PreferenceSample,
    max_length: usize,
    how: Truncation,
) -> (Option<PreferenceSample>, bool) {
    if max_length == 0 || s.max_len() <= max_length {
        return (Some(s), false);
    }
    let answer = s.chosen.len().max(s.rejected.len());
    match how {
        Truncation::Delete => (None, false),
        Truncation::Left => {
            if answer >= max_length {
                return (None, false);
            }
            let cut = s.prompt.len() - (max_length - answer);
            s.prompt.drain(..cut);
            (Some(s), true)
        }
        Truncation::Right => {
            if s.prompt.len() >= max_length {
                return (None, false);
            }
            let room = max_length - s.prompt.len();
            s.chosen.truncate(room);
            s.rejected.truncate(room);
            (Some(s), true)
        }
    }
}

/// Load preference datasets: read, convert, render through the chat
/// template, tokenize, filter, split (as [`load_sft`](super::load_sft)).
pub fn load_preferences(
    train: &[DatasetSpec],
    val: &[DatasetSpec],
    tok: &Tokenizer,
    opts: &SftOptions,
    progress: &dyn Progress,
) -> Result<PreferenceData> {
    check_common(tok, train, opts)?;
    let markers = render::end_markers(tok);
    let system = opts.system.as_deref();
    let convert = |row: &Map<String, Value>| {
        let r = to_preference(row, system)?;
        let empty = [&r.chosen, &r.rejected]
            .iter()
            .any(|a| a.as_ref().is_some_and(|t| t.trim().is_empty()));
        let key = serde_json::to_string(&(&r.prompt, &r.chosen, &r.rejected, r.label))
            .unwrap_or_default();
        let info = RowInfo {
            layout: r.layout,
            empty_answer: empty,
            key,
        };
        Ok((r, info))
    };
    let enc = |r: &PreferenceRow| encode(tok, r, &markers);
    let fit_one = |s: PreferenceSample| fit(s, opts.max_length, opts.truncation);
    let (train, val, report) = load_both(
        train,
        val,
        tok,
        opts,
        progress,
        &convert,
        &enc,
        &fit_one,
        &|s: &PreferenceSample| s.max_len(),
    )?;
    Ok(PreferenceData { train, val, report })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::testing::tiny_tokenizer;
    use crate::progress::NoProgress;
    use serde_json::json;

    fn pref(v: Value) -> Result<PreferenceRow, FieldError> {
        to_preference(v.as_object().unwrap(), None)
    }

    fn contents(m: &[Message]) -> Vec<(&str, &str)> {
        m.iter()
            .map(|m| (m.role.as_str(), m.content.as_str()))
            .collect()
    }

    #[test]
    fn every_preference_layout() {
        let r = pref(json!({"prompt": "Q", "chosen": "good", "rejected": "bad"})).unwrap();
        assert_eq!(r.layout, "prompt-chosen-rejected");
        assert_eq!(contents(&r.prompt), [("user", "Q")]);
        assert_eq!(
            (r.chosen.as_deref(), r.rejected.as_deref()),
            (Some("good"), Some("bad"))
        );

        let r = pref(json!({
            "prompt": [{"role": "system", "content": "S"}, {"role": "user", "content": "Q"}],
            "chosen": [{"role": "assistant", "content": "good"}],
            "rejected": [{"role": "assistant", "content": "bad"}]
        }))
        .unwrap();
        assert_eq!(contents(&r.prompt), [("system", "S"), ("user", "Q")]);
        assert_eq!(r.chosen.as_deref(), Some("good"));

        let r = pref(json!({
            "chosen": [{"role": "user", "content": "Q"}, {"role": "assistant", "content": "good"}],
            "rejected": [{"role": "user", "content": "Q"}, {"role": "assistant", "content": "bad"}]
        }))
        .unwrap();
        assert_eq!(r.layout, "chosen-rejected");
        assert_eq!(contents(&r.prompt), [("user", "Q")]);
        assert_eq!(r.rejected.as_deref(), Some("bad"));
        let e = pref(json!({
            "chosen": [{"role": "user", "content": "Q"}, {"role": "assistant", "content": "good"}],
            "rejected": [{"role": "user", "content": "other"}, {"role": "assistant", "content": "bad"}]
        }))
        .unwrap_err();
        assert_eq!(e.field, "rejected");

        let r = pref(json!({
            "messages": [{"role": "user", "content": "Q"}, {"role": "assistant", "content": "good"}],
            "rejected_response": "bad", "system": "S"
        }))
        .unwrap();
        assert_eq!(r.layout, "messages-rejected");
        assert_eq!(contents(&r.prompt), [("system", "S"), ("user", "Q")]);
        assert_eq!(
            (r.chosen.as_deref(), r.rejected.as_deref()),
            (Some("good"), Some("bad"))
        );

        let r = pref(
            json!({"query": "Q", "response": "good", "rejected_response": "bad",
                            "history": [["q0", "r0"]]}),
        )
        .unwrap();
        assert_eq!(r.layout, "query-response-rejected");
        assert_eq!(r.prompt.len(), 3);

        let r = pref(json!({
            "messages": [{"role": "user", "content": "Q"}, {"role": "assistant", "content": "meh"}],
            "label": false
        }))
        .unwrap();
        assert_eq!((r.layout, r.label), ("kto", Some(false)));
        assert_eq!(
            (r.chosen.as_deref(), r.rejected.as_deref()),
            (None, Some("meh"))
        );
        let r = pref(json!({"prompt": "Q", "completion": "yes", "label": "true"})).unwrap();
        assert_eq!((r.chosen.as_deref(), r.label), (Some("yes"), Some(true)));

        let e = pref(json!({"prompt": "Q", "chosen": "good", "rejected": 3})).unwrap_err();
        assert_eq!(e.field, "rejected");
        let e = pref(json!({"messages": [{"role": "user", "content": "Q"}, {"role": "assistant", "content": "a"}],
                            "label": "maybe"}))
        .unwrap_err();
        assert_eq!(e.field, "label");
        let e = pref(json!({"chosen": "good", "rejected": "bad"})).unwrap_err();
        assert_eq!(e.field, "prompt");
        let e = pref(json!({"q": 1})).unwrap_err();
        assert!(e.message.contains("no known preference layout"));
    }

    #[test]
    fn triples_share_the_prompt_and_end_with_the_end_token() {
        let tok = tiny_tokenizer();
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("p.jsonl");
        std::fs::write(
            &p,
            "{\"prompt\": \"Q\", \"chosen\": \"good\", \"rejected\": \"bad!\"}\n\
             {\"prompt\": \"Q\", \"chosen\": \"good\", \"rejected\": \"bad!\"}\n\
             {\"prompt\": \"Q2\", \"chosen\": \"\", \"rejected\": \"x\"}\n\
             {\"messages\": [{\"role\": \"user\", \"content\": \"K\"}, {\"role\": \"assistant\", \"content\": \"no\"}], \"label\": false}\n",
        )
        .unwrap();
        let spec = DatasetSpec {
            path: p,
            sample: None,
        };
        let opts = SftOptions {
            max_length: 0,
            ..Default::default()
        };
        let d =
            load_preferences(std::slice::from_ref(&spec), &[], &tok, &opts, &NoProgress).unwrap();
        assert_eq!(d.train.len(), 3);
        assert_eq!(d.report.duplicates, 1);
        assert_eq!(d.report.sources[0].empty_answer, 1);
        assert_eq!(d.report.sources[0].layout, "prompt-chosen-rejected+kto");
        let s = &d.train[0];
        assert_eq!(
            tok.decode(&s.prompt, false).unwrap(),
            "<|im_start|>user\nQ<|im_end|>\n<|im_start|>assistant\n"
        );
        assert_eq!(tok.decode(&s.chosen, false).unwrap(), "good<|im_end|>");
        assert_eq!(tok.decode(&s.rejected, false).unwrap(), "bad!<|im_end|>");
        assert_eq!(s.label, None);
        let c = s.chosen_sample();
        assert_eq!(c.trained_tokens(), s.chosen.len());
        assert_eq!(c.input_ids.len(), s.prompt.len() + s.chosen.len());
        let k = &d.train[2];
        assert_eq!(k.label, Some(false));
        assert!(k.chosen.is_empty());
        assert_eq!(tok.decode(&k.rejected, false).unwrap(), "no<|im_end|>");
        assert_eq!(d.report.length_max, s.max_len());

        // Lengths: Left cuts the prompt, Right the answers, Delete drops.
        let max = s.prompt.len() + 2;
        let o = SftOptions {
            max_length: max,
            truncation: Truncation::Left,
            ..opts.clone()
        };
        let d = load_preferences(std::slice::from_ref(&spec), &[], &tok, &o, &NoProgress).unwrap();
        assert!(d.train.iter().all(|s| s.max_len() <= max));
        assert_eq!(
            tok.decode(&d.train[0].rejected, false).unwrap(),
            "bad!<|im_end|>"
        );
        let o = SftOptions {
            truncation: Truncation::Right,
            ..o
        };
        let d = load_preferences(std::slice::from_ref(&spec), &[], &tok, &o, &NoProgress).unwrap();
        assert_eq!(d.train[0].prompt, s.prompt);
        assert_eq!(d.train[0].rejected.len(), 2);
        let o = SftOptions {
            truncation: Truncation::Delete,
            ..o
        };
        let e = load_preferences(&[spec], &[], &tok, &o, &NoProgress).unwrap_err();
        assert!(e.to_string().contains("over --max-length"), "{e}");
    }
}
