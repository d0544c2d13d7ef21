//! `swift eval`: tasks and metrics, computed the way lm-evaluation-harness
//! computes them, on a model in this process ([`backend::LocalBackend`]) or
//! behind an OpenAI-compatible server ([`remote::RemoteBackend`]).
//!
//! Three kinds of task read local files (JSONL / JSON / CSV / Parquet, see
//! [`tasks`] for the layouts):
//!
//! * **perplexity**: token-weighted perplexity of documents, long ones in
//!   sliding windows; also lm-eval's `word_perplexity`, `byte_perplexity`
//!   and `bits_per_byte`. The first token of a document is context only
//!   (as in the transformers perplexity recipe), so a document of `n`
//!   tokens scores `n - 1`.
//! * **multiple-choice**: the log-likelihood of `" " + choice` after the
//!   prompt for every choice; `acc` (argmax of log-likelihoods) and
//!   `acc_norm` (argmax of log-likelihood / choice length), each with
//!   lm-eval's `mean_stderr`; zero- or few-shot.
//! * **exact-match**: greedy generation until a stop string, the answer
//!   pulled out by a regex or as the last number, compared after GSM8K's
//!   normalisation.

pub mod backend;
pub mod metrics;
pub mod remote;
pub mod tasks;

use std::path::PathBuf;
use std::time::Instant;

use anyhow::{bail, Result};
use serde::Serialize;
use serde_json::{json, Value};

use crate::progress::Progress;
use backend::{Backend, GenRequest, LlRequest, Window};
use tasks::TaskKind;

/// One task to run.
#[derive(Debug, Clone)]
pub struct TaskSpec {
    pub kind: TaskKind,
    pub dataset: PathBuf,
    /// Shown in the results (default: the file stem).
    pub name: String,
}

/// Settings shared by the tasks.
#[derive(Debug, Clone)]
pub struct EvalOptions {
    /// The first N documents only.
    pub limit: Option<usize>,
    pub num_fewshot: usize,
    /// Few-shot examples come from here (a dev split), else from the other
    /// documents of the evaluated file.
    pub fewshot_dataset: Option<PathBuf>,
    pub seed: u64,
    /// Documents per batch.
    pub batch_size: usize,
    pub window: Window,
    pub max_new_tokens: usize,
    pub answer_regex: Option<String>,
    /// Stop strings for generation (added to the defaults).
    pub stop: Vec<String>,
}

impl Default for EvalOptions {
    fn default() -> Self {
        EvalOptions {
            limit: None,
            num_fewshot: 0,
            fewshot_dataset: None,
            seed: 1234,
            batch_size: 8,
            window: Window {
                max_length: None,
                stride: None,
            },
            max_new_tokens: 256,
            answer_regex: None,
            stop: Vec::new(),
        }
    }
}

/// lm-eval's GSM8K `until` list.
pub const DEFAULT_STOPS: [&str; 3] = ["Question:", "</s>", "<|im_end|>"];

/// A metric with its standard error (`None` where none is defined).
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Metric {
    pub name: String,
    pub value: f64,
    pub stderr: Option<f64>,
}

/// The result of one task.
#[derive(Debug, Clone, Serialize)]
pub struct TaskResult {
    pub task: String,
    pub kind: &'static str,
    pub dataset: String,
    /// Documents evaluated.
    pub n: usize,
    pub num_fewshot: usize,
    pub metrics: Vec<Metric>,
    pub seconds: f64,
    /// One record per document (prompt, choices, scores, prediction, target).
    #[serde(skip)]
    pub samples: Vec<Value>,
}

impl TaskResult {
    pub fn metric(&self, name: &str) -> Option<&Metric> {
        self.metrics.iter().find(|m| m.name == name)
    }
}

fn limited<T>(mut v: Vec<T>, limit: Option<usize>) -> Vec<T> {
    if let Some(n) = limit {
        v.truncate(n);
    }
    v
}

/// Run one task.
pub fn run_task(
    backend: &dyn Backend,
    spec: &TaskSpec,
    opts: &EvalOptions,
    progress: &dyn Progress,
) -> Result<TaskResult> {
    let start = Instant::now();
    let rows = tasks::read_rows(&spec.dataset)?;
    let fewshot_rows = match (&opts.fewshot_dataset, opts.num_fewshot) {
        (Some(p), k) if k > 0 && spec.kind != TaskKind::Perplexity => Some(tasks::read_rows(p)?),
        _ => None,
    };
    let (metrics, samples, n) = match spec.kind {
        TaskKind::Perplexity => run_perplexity(backend, spec, &rows, opts, progress)?,
        TaskKind::MultipleChoice => run_mc(
            backend,
            spec,
            &rows,
            fewshot_rows.as_deref(),
            opts,
            progress,
        )?,
        TaskKind::ExactMatch => run_em(
            backend,
            spec,
            &rows,
            fewshot_rows.as_deref(),
            opts,
            progress,
        )?,
    };
    Ok(TaskResult {
        task: spec.name.clone(),
        kind: spec.kind.name(),
        dataset: spec.dataset.display().to_string(),
        n,
        num_fewshot: if spec.kind == TaskKind::Perplexity {
            0
        } else {
            opts.num_fewshot
        },
        metrics,
        seconds: start.elapsed().as_secs_f64(),
        samples,
    })
}

type Outcome = (Vec<Metric>, Vec<Value>, usize);

fn run_perplexity(
    backend: &dyn Backend,
    spec: &TaskSpec,
    rows: &[crate::data::formats::Row],
    opts: &EvalOptions,
    progress: &dyn Progress,
) -> Result<Outcome> {
    let docs: Vec<tasks::TextDoc> = rows.iter().map(tasks::text_doc).collect::<Result<_>>()?;
    let docs = limited(docs, opts.limit);
    progress.start(&spec.name, Some(docs.len() as u64));
    let mut totals = metrics::PplTotals::default();
    let mut samples = Vec::new();
    for chunk in docs.chunks(opts.batch_size.max(1)) {
        let texts: Vec<String> = chunk.iter().map(|d| d.text.clone()).collect();
        let rs = backend.rolling(&texts, opts.window)?;
        for (d, r) in chunk.iter().zip(rs) {
            let words = metrics::count_words(&d.text);
            let bytes = d.text.len();
            totals.loglikelihood += r.loglikelihood;
            totals.tokens += r.tokens;
            totals.words += words;
            totals.bytes += bytes;
            samples.push(json!({
                "loc": d.loc, "loglikelihood": r.loglikelihood, "tokens": r.tokens,
                "words": words, "bytes": bytes,
                "perplexity": (-r.loglikelihood / r.tokens as f64).exp(),
            }));
        }
        progress.inc(chunk.len() as u64);
    }
    progress.finish();
    if totals.tokens == 0 {
        bail!(
            "{}: no token to score (each document needs at least two tokens)",
            spec.dataset.display()
        );
    }
    let m = |name: &str, value: f64| Metric {
        name: name.into(),
        value,
        stderr: None,
    };
    Ok((
        vec![
            m("perplexity", totals.perplexity()),
            m("word_perplexity", totals.word_perplexity()),
            m("byte_perplexity", totals.byte_perplexity()),
            m("bits_per_byte", totals.bits_per_byte()),
            m("tokens", totals.tokens as f64),
        ],
        samples,
        docs.len(),
    ))
}

/// The few-shot (question, answer) pairs of document `i`.
fn shots<D>(
    i: usize,
    docs: &[D],
    dev: Option<&[D]>,
    opts: &EvalOptions,
    qa: impl Fn(&D) -> (String, String),
) -> Vec<(String, String)> {
    let (pool, same) = match dev {
        Some(d) => (d, false),
        None => (docs, true),
    };
    tasks::fewshot_indices(pool.len(), opts.num_fewshot, i, same, opts.seed)
        .into_iter()
        .map(|j| qa(&pool[j]))
        .collect()
}

fn mean_metric(name: &str, xs: &[f64]) -> Metric {
    Metric {
        name: name.into(),
        value: metrics::mean(xs),
        stderr: metrics::mean_stderr(xs),
    }
}

fn run_mc(
    backend: &dyn Backend,
    spec: &TaskSpec,
    rows: &[crate::data::formats::Row],
    dev_rows: Option<&[crate::data::formats::Row]>,
    opts: &EvalOptions,
    progress: &dyn Progress,
) -> Result<Outcome> {
    let all: Vec<tasks::McDoc> = rows.iter().map(tasks::mc_doc).collect::<Result<_>>()?;
    let dev: Option<Vec<tasks::McDoc>> = dev_rows
        .map(|r| r.iter().map(tasks::mc_doc).collect::<Result<_>>())
        .transpose()?;
    let n = opts.limit.unwrap_or(all.len()).min(all.len());
    progress.start(&spec.name, Some(n as u64));
    let (mut accs, mut norms) = (Vec::new(), Vec::new());
    let mut samples = Vec::new();
    let qa = |d: &tasks::McDoc| (d.text.clone(), d.choices[d.gold].clone());
    for start in (0..n).step_by(opts.batch_size.max(1)) {
        let end = (start + opts.batch_size.max(1)).min(n);
        let mut reqs = Vec::new();
        let mut prompts = Vec::new();
        for (i, d) in all.iter().enumerate().take(end).skip(start) {
            let sh = shots(i, &all, dev.as_deref(), opts, qa);
            let prompt = tasks::build_prompt(&d.description, &sh, &d.text);
            for c in &d.choices {
                reqs.push(LlRequest {
                    context: prompt.clone(),
                    continuation: format!("{}{c}", tasks::TARGET_DELIMITER),
                });
            }
            prompts.push(prompt);
        }
        let res = backend.loglikelihood(&reqs)?;
        let mut k = 0;
        for (d, prompt) in all[start..end].iter().zip(prompts) {
            let r = &res[k..k + d.choices.len()];
            k += d.choices.len();
            let lls: Vec<f64> = r.iter().map(|x| x.loglikelihood).collect();
            let o = metrics::mc_outcome(&lls, &d.choices, d.gold);
            accs.push(o.acc);
            norms.push(o.acc_norm);
            samples.push(json!({
                "loc": d.loc, "prompt": prompt, "choices": d.choices, "scores": lls,
                "is_greedy": r.iter().map(|x| x.is_greedy).collect::<Vec<_>>(),
                "tokens": r.iter().map(|x| x.tokens).collect::<Vec<_>>(),
                "prediction": o.pred, "prediction_norm": o.pred_norm, "target": d.gold,
                "acc": o.acc, "acc_norm": o.acc_norm,
            }));
        }
        progress.inc((end - start) as u64);
        progress.message(&format!("acc {:.3}", metrics::mean(&accs)));
    }
    progress.finish();
    Ok((
        vec![mean_metric("acc", &accs), mean_metric("acc_norm", &norms)],
        samples,
        n,
    ))
}

fn run_em(
    backend: &dyn Backend,
    spec: &TaskSpec,
    rows: &[crate::data::formats::Row],
    dev_rows: Option<&[crate::data::formats::Row]>,
    opts: &EvalOptions,
    progress: &dyn Progress,
) -> Result<Outcome> {
    let all: Vec<tasks::GenDoc> = rows.iter().map(tasks::gen_doc).collect::<Result<_>>()?;
    let dev: Option<Vec<tasks::GenDoc>> = dev_rows
        .map(|r| r.iter().map(tasks::gen_doc).collect::<Result<_>>())
        .transpose()?;
    let extractor = metrics::Extractor::new(opts.answer_regex.as_deref())?;
    let mut stop: Vec<String> = DEFAULT_STOPS.iter().map(|s| s.to_string()).collect();
    stop.extend(opts.stop.iter().cloned());
    let req = GenRequest {
        max_new_tokens: opts.max_new_tokens,
        stop,
    };
    let n = opts.limit.unwrap_or(all.len()).min(all.len());
    progress.start(&spec.name, Some(n as u64));
    let mut scores = Vec::new();
    let mut samples = Vec::new();
    let qa = |d: &tasks::GenDoc| (d.text.clone(), d.answer.clone());
    for start in (0..n).step_by(opts.batch_size.max(1)) {
        let end = (start + opts.batch_size.max(1)).min(n);
        let prompts: Vec<String> = (start..end)
            .map(|i| {
                let sh = shots(i, &all, dev.as_deref(), opts, qa);
                tasks::build_prompt("", &sh, &all[i].text)
            })
            .collect();
        let outs = backend.generate(&prompts, &req)?;
        for ((d, prompt), text) in all[start..end].iter().zip(prompts).zip(outs) {
            let pred = extractor.extract(&text);
            let em = metrics::exact_match(&pred, &d.target);
            scores.push(em);
            samples.push(json!({
                "loc": d.loc, "prompt": prompt, "generation": text, "prediction": pred,
                "target": d.target, "exact_match": em,
            }));
        }
        progress.inc((end - start) as u64);
        progress.message(&format!("exact match {:.3}", metrics::mean(&scores)));
    }
    progress.finish();
    Ok((vec![mean_metric("exact_match", &scores)], samples, n))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::progress::NoProgress;
    use backend::{LlResult, RollingResult};

    /// A fake model: the log-likelihood of a continuation is minus its
    /// length in characters (shorter is likelier), generation echoes a
    /// fixed answer.
    struct Fake;

    impl Backend for Fake {
        fn describe(&self) -> String {
            "fake".into()
        }
        fn loglikelihood(&self, reqs: &[LlRequest]) -> Result<Vec<LlResult>> {
            Ok(reqs
                .iter()
                .map(|r| LlResult {
                    loglikelihood: -(r.continuation.len() as f64),
                    is_greedy: false,
                    tokens: 1,
                })
                .collect())
        }
        fn rolling(&self, docs: &[String], _: Window) -> Result<Vec<RollingResult>> {
            Ok(docs
                .iter()
                .map(|d| RollingResult {
                    loglikelihood: -(d.len() as f64),
                    tokens: d.len(),
                })
                .collect())
        }
        fn generate(&self, prompts: &[String], _: &GenRequest) -> Result<Vec<String>> {
            Ok(prompts.iter().map(|_| " 3 + 4 = 7.".to_string()).collect())
        }
    }

    #[test]
    fn mc_on_a_fake_model() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("arc.jsonl");
        // The fake prefers the shortest choice: right in rows 1 and 3.
        std::fs::write(
            &p,
            r#"{"question": "q1", "choices": {"text": ["aa", "b"], "label": ["A", "B"]}, "answerKey": "B"}
{"question": "q2", "choices": {"text": ["aa", "b"], "label": ["A", "B"]}, "answerKey": "A"}
{"question": "q3", "choices": {"text": ["a", "bbb"], "label": ["A", "B"]}, "answerKey": "A"}
"#,
        )
        .unwrap();
        let spec = TaskSpec {
            kind: TaskKind::MultipleChoice,
            dataset: p,
            name: "arc".into(),
        };
        let opts = EvalOptions {
            num_fewshot: 1,
            batch_size: 2,
            ..EvalOptions::default()
        };
        let r = run_task(&Fake, &spec, &opts, &NoProgress).unwrap();
        assert_eq!(r.n, 3);
        let acc = r.metric("acc").unwrap();
        assert!((acc.value - 2.0 / 3.0).abs() < 1e-12);
        // [1, 0, 1]: sample std sqrt(1/3), over sqrt(3) = 1/3.
        assert!((acc.stderr.unwrap() - 1.0 / 3.0).abs() < 1e-12);
        // acc_norm: -3/2 vs -2/1 -> "aa"; -3/2 vs -2/1 -> "aa"; -2/1 vs -4/3 -> "bbb".
        assert!((r.metric("acc_norm").unwrap().value - 1.0 / 3.0).abs() < 1e-12);
        // One shot from the other rows, answered with its gold choice.
        let prompt = r.samples[0]["prompt"].as_str().unwrap();
        assert!(prompt.ends_with("\n\nQuestion: q1\nAnswer:"), "{prompt}");
        assert!(
            prompt.starts_with("Question: q2\nAnswer: aa\n\n")
                || prompt.starts_with("Question: q3\nAnswer: a\n\n"),
            "{prompt}"
        );
    }

    #[test]
    fn em_and_perplexity_on_a_fake_model() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("gsm.jsonl");
        std::fs::write(
            &p,
            "{\"question\": \"3+4?\", \"answer\": \"3+4=7\\n#### 7\"}\n{\"question\": \"2+2?\", \"answer\": \"#### 4\"}\n",
        )
        .unwrap();
        let spec = TaskSpec {
            kind: TaskKind::ExactMatch,
            dataset: p.clone(),
            name: "gsm".into(),
        };
        let r = run_task(&Fake, &spec, &EvalOptions::default(), &NoProgress).unwrap();
        assert_eq!(r.metric("exact_match").unwrap().value, 0.5);
        assert_eq!(r.samples[0]["prediction"], "7.");
        let p = dir.path().join("ppl.jsonl");
        std::fs::write(&p, "{\"text\": \"abc\"}\n{\"text\": \"hello world\"}\n").unwrap();
        let spec = TaskSpec {
            kind: TaskKind::Perplexity,
            dataset: p,
            name: "ppl".into(),
        };
        let r = run_task(&Fake, &spec, &EvalOptions::default(), &NoProgress).unwrap();
        // Every "token" has log-prob -1.
        assert!((r.metric("perplexity").unwrap().value - 1f64.exp()).abs() < 1e-12);
    }
}
