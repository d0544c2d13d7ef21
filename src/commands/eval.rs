//! `swift eval`: perplexity, multiple-choice and exact-match tasks on a
//! model here or behind an OpenAI-compatible server. The work is in
//! `crate::eval`; this file turns flags into tasks and prints the results.

use std::path::{Path, PathBuf};

use anyhow::{anyhow, bail, Context, Result};
use clap::Args;
use serde_json::{json, Value};
use tabled::settings::object::Columns;
use tabled::settings::{Alignment, Modify, Style};
use tabled::{Table, Tabled};

use crate::error::Exit;
use crate::eval::backend::{Backend, LocalBackend, Window};
use crate::eval::remote::RemoteBackend;
use crate::eval::tasks::TaskKind;
use crate::eval::{run_task, EvalOptions, TaskResult, TaskSpec};
use crate::model::{LoadOptions, Model};
use crate::printer::Printer;
use crate::tokenizer::Tokenizer;

#[derive(Debug, Args)]
#[command(after_help = "\
Tasks (--task, one per --dataset, or one for all of them):
  perplexity       token-weighted perplexity of the `text` of each row (a .txt file is one
                   document); also word/byte perplexity and bits per byte
  multiple-choice  log-likelihood of each choice; acc and acc_norm as lm-evaluation-harness
                   computes them. Layouts: MMLU (question, choices, answer), C-Eval (question,
                   A..D, answer), ARC (question, choices{text,label}, answerKey), HellaSwag
                   (ctx or ctx_a/ctx_b, endings, label)
  exact-match      greedy generation from `Question: ...\\nAnswer:`, the answer taken by
                   --answer-regex or as the last number, compared with the `answer` (after
                   `####` when present)

Files: .jsonl, .json, .csv, .parquet (and .txt for perplexity). A malformed row is an error
naming the file and line.")]
pub struct EvalArgs {
    /// A model folder, a .gguf file, or a hub id (`org/name`, `hf::`, `ms::`)
    #[arg(
        long,
        alias = "model_id",
        alias = "model_name_or_path",
        value_name = "PATH",
        required_unless_present = "url",
        conflicts_with = "url"
    )]
    pub model: Option<String>,

    /// A PEFT LoRA adapter folder applied to --model (repeatable)
    #[arg(long = "adapter", alias = "adapters", value_name = "DIR")]
    pub adapters: Vec<PathBuf>,

    /// Evaluate an OpenAI-compatible server instead (http://host:port/v1),
    /// through /v1/completions with echo + logprobs
    #[arg(long, value_name = "URL", help_heading = "Server")]
    pub url: Option<String>,

    /// The model name to send to the server (default: the first of /v1/models)
    #[arg(long, value_name = "NAME", requires = "url", help_heading = "Server")]
    pub served_model: Option<String>,

    /// Bearer key for the server
    #[arg(
        long,
        env = "SWIFT_API_KEY",
        hide_env_values = true,
        value_name = "KEY",
        help_heading = "Server"
    )]
    pub api_key: Option<String>,

    /// Tokenize here with this tokenizer (a model folder or .gguf) and send
    /// token ids; without it prompts go as text
    #[arg(long, value_name = "PATH", requires = "url", help_heading = "Server")]
    pub tokenizer: Option<PathBuf>,

    /// perplexity, multiple-choice or exact-match (repeatable, one per --dataset)
    #[arg(
        long = "task",
        value_name = "TASK",
        required_unless_present = "tasks_file"
    )]
    pub tasks: Vec<String>,

    /// The task's data file (repeatable)
    #[arg(
        long = "dataset",
        value_name = "FILE",
        required_unless_present = "tasks_file"
    )]
    pub datasets: Vec<PathBuf>,

    /// A JSON file listing tasks: [{"task": "multiple-choice", "dataset": "mmlu.jsonl",
    /// "name": "mmlu"}] (paths relative to the file)
    #[arg(long, value_name = "FILE", conflicts_with_all = ["tasks", "datasets"])]
    pub tasks_file: Option<PathBuf>,

    /// Evaluate the first N documents of each task only
    #[arg(long, value_name = "N")]
    pub limit: Option<usize>,

    /// Few-shot examples before each question
    #[arg(long, alias = "num_fewshot", default_value_t = 0, value_name = "K")]
    pub num_fewshot: usize,

    /// Take few-shot examples from this file (a dev split: its first K), not
    /// from the evaluated file (K others drawn with --seed)
    #[arg(long, value_name = "FILE")]
    pub fewshot_dataset: Option<PathBuf>,

    /// Seed of the few-shot draw
    #[arg(long, default_value_t = 1234)]
    pub seed: u64,

    /// Documents scored together in one batch
    #[arg(long, alias = "batch_size", default_value_t = 8, value_name = "N")]
    pub batch_size: usize,

    /// Perplexity: most tokens in one window (default: the model's context)
    #[arg(long, alias = "max_length", value_name = "N")]
    pub max_length: Option<usize>,

    /// Perplexity: tokens scored per window (default: --max-length); smaller
    /// gives each token more context
    #[arg(long, value_name = "N")]
    pub stride: Option<usize>,

    /// Exact match: most tokens generated per answer
    #[arg(
        long,
        alias = "max_new_tokens",
        default_value_t = 256,
        value_name = "N"
    )]
    pub max_new_tokens: usize,

    /// Exact match: the answer is this regex's first match (its first group);
    /// default: the last number in the text
    #[arg(long, value_name = "REGEX")]
    pub answer_regex: Option<String>,

    /// Exact match: stop generating at this string (repeatable; added to
    /// "Question:", "</s>", "<|im_end|>")
    #[arg(long = "stop", value_name = "TEXT")]
    pub stop: Vec<String>,

    /// Print the results as one JSON object
    #[arg(long)]
    pub json: bool,

    /// Write results.json and one samples_<task>.jsonl per task here
    #[arg(long, value_name = "DIR")]
    pub output_dir: Option<PathBuf>,

    /// CPU threads for the model (default: all cores)
    #[arg(long, short = 't', value_name = "N")]
    pub threads: Option<usize>,
}

fn usage(msg: impl Into<String>) -> anyhow::Error {
    Exit::Usage(msg.into()).into()
}

fn parse_kind(s: &str) -> Result<TaskKind> {
    TaskKind::parse(s)
        .ok_or_else(|| usage(format!("unknown task `{s}` (expected {})", TaskKind::NAMES)))
}

fn stem(p: &Path) -> String {
    p.file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_else(|| p.display().to_string())
}

/// The tasks the flags (or the task file) name, with unique names.
fn specs(args: &EvalArgs) -> Result<Vec<TaskSpec>> {
    let mut out = Vec::new();
    if let Some(f) = &args.tasks_file {
        let text =
            std::fs::read_to_string(f).with_context(|| format!("reading {}", f.display()))?;
        let v: Value = serde_json::from_str(&text)
            .map_err(|e| anyhow!("{}: not valid JSON: {e}", f.display()))?;
        let items = v
            .as_array()
            .or_else(|| v["tasks"].as_array())
            .ok_or_else(|| anyhow!("{}: expected a JSON list of tasks", f.display()))?;
        let dir = f.parent().unwrap_or(Path::new("."));
        for (i, t) in items.iter().enumerate() {
            let kind = t["task"]
                .as_str()
                .ok_or_else(|| anyhow!("{} [{i}]: missing `task`", f.display()))?;
            let ds = t["dataset"]
                .as_str()
                .ok_or_else(|| anyhow!("{} [{i}]: missing `dataset`", f.display()))?;
            let dataset = dir.join(ds);
            out.push(TaskSpec {
                kind: parse_kind(kind)?,
                name: t["name"]
                    .as_str()
                    .map(str::to_string)
                    .unwrap_or_else(|| stem(&dataset)),
                dataset,
            });
        }
    } else {
        let (t, d) = (&args.tasks, &args.datasets);
        if t.len() != d.len() && t.len() != 1 {
            return Err(usage(format!(
                "{} --task for {} --dataset: give one task for all datasets or one per dataset",
                t.len(),
                d.len()
            )));
        }
        for (i, ds) in d.iter().enumerate() {
            out.push(TaskSpec {
                kind: parse_kind(&t[if t.len() == 1 { 0 } else { i }])?,
                dataset: ds.clone(),
                name: stem(ds),
            });
        }
    }
    if out.is_empty() {
        return Err(usage("no task to run"));
    }
    // Unique names (the same file under two tasks, two files named alike).
    for i in 0..out.len() {
        if out[..i].iter().any(|s| s.name == out[i].name) {
            out[i].name = format!("{}-{}", out[i].name, out[i].kind.name());
        }
        let mut k = 2;
        while out[..i].iter().any(|s| s.name == out[i].name) {
            out[i].name = format!("{}-{k}", out[i].name);
            k += 1;
        }
    }
    for s in &out {
        if !s.dataset.exists() {
            bail!("dataset {} does not exist", s.dataset.display());
        }
    }
    Ok(out)
}

#[derive(Tabled)]
struct Row {
    metric: String,
    value: String,
    stderr: String,
    n: usize,
}

fn fmt_value(v: f64) -> String {
    if v.fract() == 0.0 && v.abs() < 1e15 {
        format!("{v:.0}")
    } else if v.abs() >= 1000.0 {
        format!("{v:.2}")
    } else {
        format!("{v:.4}")
    }
}

/// The human-readable form of one task's result.
pub fn render(r: &TaskResult) -> String {
    let rows: Vec<Row> = r
        .metrics
        .iter()
        .map(|m| Row {
            metric: m.name.clone(),
            value: fmt_value(m.value),
            stderr: m
                .stderr
                .map(|s| format!("± {s:.4}"))
                .unwrap_or_else(|| "-".into()),
            n: r.n,
        })
        .collect();
    let mut t = Table::new(rows);
    t.with(Style::sharp())
        .with(Modify::new(Columns::new(1..)).with(Alignment::right()));
    let shots = if r.kind == "perplexity" {
        String::new()
    } else {
        format!(", {}-shot", r.num_fewshot)
    };
    format!("{} ({}{shots})\n{t}\n", r.task, r.kind)
}

fn results_json(model: &str, results: &[TaskResult]) -> Value {
    json!({
        "model": model,
        "results": results.iter().map(|r| {
            let mut v = serde_json::to_value(r).unwrap_or(Value::Null);
            v["items_per_second"] = json!(r.n as f64 / r.seconds.max(1e-9));
            v
        }).collect::<Vec<_>>(),
    })
}

fn write_output(dir: &Path, payload: &Value, results: &[TaskResult]) -> Result<()> {
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let p = dir.join("results.json");
    let text = serde_json::to_string_pretty(payload)? + "\n";
    std::fs::write(&p, text).with_context(|| format!("writing {}", p.display()))?;
    for r in results {
        let safe: String = r
            .task
            .chars()
            .map(|c| {
                if c.is_alphanumeric() || "-_.".contains(c) {
                    c
                } else {
                    '_'
                }
            })
            .collect();
        let p = dir.join(format!("samples_{safe}.jsonl"));
        let mut text = String::new();
        for s in &r.samples {
            text.push_str(&serde_json::to_string(s)?);
            text.push('\n');
        }
        std::fs::write(&p, text).with_context(|| format!("writing {}", p.display()))?;
    }
    Ok(())
}

fn backend(args: &EvalArgs, printer: &Printer) -> Result<Box<dyn Backend>> {
    if let Some(url) = &args.url {
        if !args.adapters.is_empty() {
            return Err(usage(
                "--adapter applies to --model; a server serves its adapters under their own names (--served-model)",
            ));
        }
        let tok = match &args.tokenizer {
            Some(p) => Some(
                Tokenizer::load(p)
                    .with_context(|| format!("loading the tokenizer {}", p.display()))?,
            ),
            None => None,
        };
        let b = RemoteBackend::connect(url, args.served_model.clone(), args.api_key.clone(), tok)?;
        printer.info(&format!("evaluating {}", b.describe()));
        return Ok(Box::new(b));
    }
    let model_arg = args
        .model
        .as_deref()
        .expect("clap requires --model or --url");
    let path = super::resolve_model_arg(
        Path::new(model_arg),
        &["*.json", "*.safetensors", "*.jinja", "tokenizer.model"],
    )?;
    let start = std::time::Instant::now();
    let opts = LoadOptions {
        adapters: args.adapters.clone(),
    };
    let model = Model::load(&path, &opts).with_context(|| format!("loading {}", path.display()))?;
    let tok = Tokenizer::load(&path)
        .with_context(|| format!("loading the tokenizer of {}", path.display()))?;
    let mut name = model_arg.to_string();
    for a in &args.adapters {
        name.push_str(&format!(" + {}", a.display()));
    }
    printer.info(&format!(
        "loaded {name} in {:.1}s",
        start.elapsed().as_secs_f64()
    ));
    Ok(Box::new(LocalBackend::new(
        model,
        tok,
        name,
        args.batch_size,
    )))
}

pub fn run(args: EvalArgs, printer: &Printer) -> Result<()> {
    if args.batch_size == 0 {
        return Err(usage("--batch-size must be at least 1"));
    }
    if args.max_length == Some(0) || args.stride == Some(0) {
        return Err(usage("--max-length and --stride must be at least 1"));
    }
    if let (Some(m), Some(s)) = (args.max_length, args.stride) {
        if s > m {
            return Err(usage(format!(
                "--stride {s} is larger than --max-length {m}"
            )));
        }
    }
    if let Some(p) = &args.fewshot_dataset {
        if !p.exists() {
            bail!("few-shot dataset {} does not exist", p.display());
        }
    }
    // Checks that need no model first, so a typo fails fast.
    let specs = specs(&args)?;
    crate::eval::metrics::Extractor::new(args.answer_regex.as_deref())
        .map_err(|e| usage(format!("{e:#}")))?;
    let opts = EvalOptions {
        limit: args.limit,
        num_fewshot: args.num_fewshot,
        fewshot_dataset: args.fewshot_dataset.clone(),
        seed: args.seed,
        batch_size: args.batch_size,
        window: Window {
            max_length: args.max_length,
            stride: args.stride,
        },
        max_new_tokens: args.max_new_tokens,
        answer_regex: args.answer_regex.clone(),
        stop: args.stop.clone(),
    };
    let backend = backend(&args, printer)?;
    let progress = printer.progress();
    let mut results = Vec::new();
    for spec in &specs {
        let r = run_task(backend.as_ref(), spec, &opts, progress.as_ref())
            .with_context(|| format!("task {} ({})", spec.name, spec.kind.name()))?;
        printer.info(&format!(
            "{}: {} documents in {:.1}s ({:.2}/s)",
            r.task,
            r.n,
            r.seconds,
            r.n as f64 / r.seconds.max(1e-9)
        ));
        results.push(r);
    }
    let payload = results_json(&backend.describe(), &results);
    if let Some(dir) = &args.output_dir {
        write_output(dir, &payload, &results)?;
        printer.info(&format!("wrote {}", dir.join("results.json").display()));
    }
    if args.json {
        printer.data(&serde_json::to_string_pretty(&payload)?);
    } else {
        let text: Vec<String> = results.iter().map(render).collect();
        printer.data(&text.join("\n"));
    }
    Ok(())
}
