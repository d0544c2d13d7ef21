//! `swift finetune`: supervised fine-tuning with LoRA (QLoRA on a GGUF's own
//! quantized weights) or full tuning. Flags become a data load
//! (`crate::data::load_sft`), a plan (`crate::planner`), trainable
//! parameters (`crate::train::lora`) and one call of `crate::train::run`;
//! this file prints what they return.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU8, Ordering};

use anyhow::{Context, Result};
use clap::{Args, ValueEnum};
use serde_json::json;

use crate::data::{self, DatasetSpec, SftOptions, Truncation};
use crate::error::Exit;
use crate::model::adapter::{Quantization, SwiftRecord};
use crate::model::config::ModelConfig;
use crate::model::gguf::GgmlType;
use crate::model::{LoadOptions, Model};
use crate::planner::device::Inventory;
use crate::planner::memory::{Dtype, Job, Method, Quant};
use crate::planner::plan::{self, Plan, Request};
use crate::printer::Printer;
use crate::tokenizer::Tokenizer;
use crate::train::lora::{self, LoraOptions};
use crate::train::optim::{AdamWConfig, Param};
use crate::train::schedule::Schedule;
use crate::train::sft::CrossEntropy;
use crate::train::{self, TrainConfig, Trainer};

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum MethodArg {
    /// Let the planner choose (LoRA, or QLoRA on a GGUF / a small device)
    Auto,
    Lora,
    Qlora,
    Full,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum TunerArg {
    Lora,
    Full,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum TruncationArg {
    /// Drop rows over --max-length
    Delete,
    /// Keep the end
    Left,
    /// Keep the start
    Right,
}

#[derive(Debug, Clone, Args)]
#[command(after_help = "\
Writes into --output-dir: the adapter in peft's format (adapter_config.json, \
adapter_model.safetensors) or, with --tuner full, the model as an HF folder; the tokenizer; \
checkpoint-N/ folders; logging.jsonl; runs/ (TensorBoard); images/ (a PNG per logged metric: loss, learning rate, grad norm, ...); args.json.

Ctrl-C writes a checkpoint of the last finished step and exits with 130; \
--resume-from-checkpoint latest continues from it exactly.

With --merge (and --serve) the command is one job in stages: estimate (does it fit?), \
download (a hub id), finetune, merge (the adapter folded into the base at --merge-output: \
a GGUF for a .gguf base, keeping its types where the adapter changed nothing, else an HF \
folder; --merge-format picks), serve (the merged model behind an OpenAI-compatible API until Ctrl-C). \
Each stage is reported on stderr; the first failure stops the job with a message naming \
the stage. Run the same command again and finished stages are skipped (state in \
OUTPUT_DIR/pipeline.json) and an interrupted training resumes from its last checkpoint.")]
pub struct FinetuneArgs {
    /// A model folder (config.json + safetensors + tokenizer), a .gguf file, or
    /// a hub id (`org/name`) fetched first
    #[arg(
        long,
        alias = "model_id",
        alias = "model_name_or_path",
        value_name = "PATH"
    )]
    pub model: String,

    /// Training data: a file (jsonl, json, csv, parquet) or folder, `PATH#N`
    /// to sample N rows (repeatable, mixed)
    #[arg(long = "dataset", required = true, num_args = 1.., value_name = "PATH[#N]")]
    pub datasets: Vec<String>,

    /// Validation data (otherwise --split-dataset-ratio of the training rows)
    #[arg(long = "val-dataset", alias = "val_dataset", num_args = 1.., value_name = "PATH[#N]")]
    pub val_datasets: Vec<String>,

    /// Fraction of the training rows held out for validation when no
    /// --val-dataset is given
    #[arg(
        long,
        alias = "split_dataset_ratio",
        default_value_t = 0.0,
        value_name = "R"
    )]
    pub split_dataset_ratio: f64,

    /// JSON object mapping source column names to standard ones, e.g.
    /// '{"question": "query", "answer": "response"}'
    #[arg(long, value_name = "JSON")]
    pub columns: Option<String>,

    /// Longest sample in tokens
    #[arg(long, alias = "max_length", default_value_t = 2048, value_name = "N")]
    pub max_length: usize,

    /// What to do with samples over --max-length
    #[arg(long, alias = "truncation_strategy", value_enum, default_value_t = TruncationArg::Delete)]
    pub truncation_strategy: TruncationArg,

    /// Pack short samples into rows of --max-length tokens
    #[arg(long)]
    pub packing: bool,

    /// Train on every token (pre-training style), not only assistant turns
    #[arg(long, alias = "loss_on_all_tokens")]
    pub loss_on_all_tokens: bool,

    /// Remove exact duplicate rows
    #[arg(long)]
    pub dedup: bool,

    /// Skip and count malformed rows instead of stopping
    #[arg(long, alias = "skip_bad_rows")]
    pub skip_bad_rows: bool,

    /// A default system prompt for rows that have none
    #[arg(long)]
    pub system: Option<String>,

    /// Where the adapter / weights, checkpoints and logs go
    #[arg(
        long,
        alias = "output_dir",
        default_value = "output",
        value_name = "DIR"
    )]
    pub output_dir: PathBuf,

    /// Training method; `auto` asks the planner (its choice and reason are
    /// printed and kept in args.json)
    #[arg(long, value_enum, default_value_t = MethodArg::Auto)]
    pub method: MethodArg,

    /// What trains: LoRA adapters, or every weight (`full`)
    #[arg(long, alias = "train_type", value_enum)]
    pub tuner: Option<TunerArg>,

    /// LoRA rank
    #[arg(long, alias = "lora_rank", default_value_t = 8, value_name = "R")]
    pub lora_rank: usize,

    /// LoRA alpha (scale = alpha / rank, or alpha / sqrt(rank) with rsLoRA)
    #[arg(long, alias = "lora_alpha", default_value_t = 32.0, value_name = "A")]
    pub lora_alpha: f64,

    /// Dropout on the LoRA input
    #[arg(long, alias = "lora_dropout", default_value_t = 0.05, value_name = "P")]
    pub lora_dropout: f32,

    /// Modules LoRA wraps: all-linear, or names (q_proj,k_proj,...)
    #[arg(
        long,
        alias = "target_modules",
        num_args = 1..,
        value_delimiter = ',',
        default_value = "all-linear",
        value_name = "NAMES"
    )]
    pub target_modules: Vec<String>,

    /// Rank-stabilised LoRA (scale alpha / sqrt(rank))
    #[arg(long, alias = "use_rslora")]
    pub use_rslora: bool,

    /// Peak learning rate (default 1e-4 for LoRA, 1e-5 for full tuning)
    #[arg(long, alias = "learning_rate", value_name = "LR")]
    pub learning_rate: Option<f64>,

    /// AdamW beta1
    #[arg(long, alias = "adam_beta1", default_value_t = 0.9)]
    pub adam_beta1: f64,

    /// AdamW beta2
    #[arg(long, alias = "adam_beta2", default_value_t = 0.999)]
    pub adam_beta2: f64,

    /// AdamW epsilon
    #[arg(long, alias = "adam_epsilon", default_value_t = 1e-8)]
    pub adam_epsilon: f64,

    /// AdamW decoupled weight decay (not on biases and norms)
    #[arg(long, alias = "weight_decay", default_value_t = 0.1)]
    pub weight_decay: f64,

    /// Sequences per forward pass (default: the planner's choice)
    #[arg(
        long,
        alias = "per_device_train_batch_size",
        alias = "batch_size",
        value_name = "N"
    )]
    pub batch_size: Option<usize>,

    /// Forward passes per optimizer step (default: the planner's choice)
    #[arg(long, alias = "gradient_accumulation_steps", value_name = "N")]
    pub gradient_accumulation_steps: Option<usize>,

    /// Learning-rate schedule after the warm-up
    #[arg(long, alias = "lr_scheduler_type", value_enum, default_value_t = Schedule::Cosine)]
    pub lr_scheduler_type: Schedule,

    /// Warm-up as a fraction of the steps
    #[arg(long, alias = "warmup_ratio", default_value_t = 0.05, value_name = "R")]
    pub warmup_ratio: f64,

    /// Warm-up steps (overrides --warmup-ratio)
    #[arg(long, alias = "warmup_steps", value_name = "N")]
    pub warmup_steps: Option<usize>,

    /// Clip the gradient norm to this (0 = off)
    #[arg(long, alias = "max_grad_norm", default_value_t = 1.0)]
    pub max_grad_norm: f64,

    /// Passes over the training data
    #[arg(
        long,
        alias = "num_train_epochs",
        default_value_t = 3.0,
        value_name = "N"
    )]
    pub num_train_epochs: f64,

    /// Optimizer steps (overrides --num-train-epochs)
    #[arg(long, alias = "max_steps", value_name = "N")]
    pub max_steps: Option<usize>,

    /// Seed of the LoRA init, the data order and dropout
    #[arg(long, default_value_t = 42)]
    pub seed: u64,

    /// Log (logging.jsonl, TensorBoard) at step 1 and every N steps
    #[arg(long, alias = "logging_steps", default_value_t = 5, value_name = "N")]
    pub logging_steps: usize,

    /// Evaluate every N steps (and at the end) when there is validation data
    #[arg(long, alias = "eval_steps", value_name = "N")]
    pub eval_steps: Option<usize>,

    /// Write checkpoint-N/ every N steps (and at the end)
    #[arg(long, alias = "save_steps", default_value_t = 500, value_name = "N")]
    pub save_steps: usize,

    /// Keep only the newest N checkpoints
    #[arg(long, alias = "save_total_limit", value_name = "N")]
    pub save_total_limit: Option<usize>,

    /// Continue a run: a checkpoint folder, or `latest` in --output-dir
    #[arg(long, alias = "resume_from_checkpoint", value_name = "DIR|latest")]
    pub resume_from_checkpoint: Option<String>,

    /// QLoRA on a full-precision model: quantize the frozen base's decoder
    /// linears at load, 4 = NF4 (bitsandbytes' 4-bit NormalFloat, blocks of
    /// 64), 8 = 8-bit blocks. Implies --method qlora; `auto` picks 4 when the
    /// planner chooses QLoRA. A GGUF trains on its own quantized weights.
    #[arg(long, alias = "quant_bits", value_name = "4|8", value_parser = clap::builder::PossibleValuesParser::new(["4", "8"]))]
    pub quant_bits: Option<String>,

    /// CPU threads (default: all cores)
    #[arg(long, short = 't', value_name = "N")]
    pub threads: Option<usize>,

    /// Print a JSON summary on stdout at the end
    #[arg(long)]
    pub json: bool,

    /// After training, fold the adapter into the base model (at
    /// --merge-output, as --merge-format) and print where it is; finished
    /// stages are skipped when the same command runs again
    #[arg(long, help_heading = "Pipeline")]
    pub merge: bool,

    /// Where --merge writes the merged model [default: OUTPUT_DIR-merged.gguf
    /// for a GGUF, OUTPUT_DIR-merged for an HF folder]
    #[arg(long, value_name = "PATH", help_heading = "Pipeline")]
    pub merge_output: Option<PathBuf>,

    /// What --merge writes [default: gguf for a .gguf base (the tensors the
    /// adapter leaves alone keep the base's own types, so it decodes as fast
    /// as the base), hf otherwise]
    #[arg(long, value_enum, value_name = "FORMAT", help_heading = "Pipeline")]
    pub merge_format: Option<super::merge::FormatArg>,

    /// After merging, serve the merged model (OpenAI-compatible API, as `swift
    /// infer --serve`) until SIGINT / SIGTERM; implies --merge
    #[arg(long, help_heading = "Pipeline")]
    pub serve: bool,

    /// Address --serve listens on [default: 127.0.0.1]
    #[arg(long, value_name = "HOST", help_heading = "Pipeline")]
    pub host: Option<String>,

    /// Port --serve listens on; 0 picks a free one (the address is printed)
    /// [default: 8080]
    #[arg(long, value_name = "N", help_heading = "Pipeline")]
    pub port: Option<u16>,

    /// Require `Authorization: Bearer KEY` on /v1/* (with --serve)
    #[arg(
        long,
        env = "SWIFT_API_KEY",
        hide_env_values = true,
        value_name = "KEY",
        help_heading = "Pipeline"
    )]
    pub api_key: Option<String>,

    /// The served model's id in /v1/models and requests (with --serve)
    /// [default: the merged model]
    #[arg(long, value_name = "NAME", help_heading = "Pipeline")]
    pub served_model_name: Option<String>,
}

/// `PATH#N` -> spec (a `#` followed by digits at the end).
pub fn parse_spec(s: &str) -> DatasetSpec {
    if let Some((p, n)) = s.rsplit_once('#') {
        if let Ok(n) = n.parse::<usize>() {
            return DatasetSpec {
                path: PathBuf::from(p),
                sample: Some(n),
            };
        }
    }
    DatasetSpec {
        path: PathBuf::from(s),
        sample: None,
    }
}

static STOP: AtomicBool = AtomicBool::new(false);

/// What Ctrl-C does once the handler is installed: stop training at the next
/// step (a checkpoint, exit 130), exit at once (after training: merging), or
/// nothing (serving: the server's own handler shuts it down gracefully).
static CTRL_C: AtomicU8 = AtomicU8::new(CTRL_C_TRAINING);
const CTRL_C_TRAINING: u8 = 0;
const CTRL_C_EXITS: u8 = 1;
const CTRL_C_TO_SERVER: u8 = 2;

/// Leave Ctrl-C to the server that is about to start in this process (the
/// pipeline's serve stage after an in-process training).
pub fn ctrl_c_to_server() {
    CTRL_C.store(CTRL_C_TO_SERVER, Ordering::SeqCst);
}

/// What a finished training run produced.
#[derive(Debug, Clone)]
pub struct Trained {
    pub output_dir: PathBuf,
    /// Full tuning (an HF folder) rather than a LoRA adapter.
    pub full: bool,
    pub steps: usize,
    pub train_loss: Option<f64>,
    pub eval_loss: Option<f64>,
    pub train_seconds: f64,
    pub tokens_per_second: f64,
    pub trainable_params: usize,
    pub event_file: PathBuf,
}

fn human(n: usize) -> String {
    let s = n.to_string();
    let mut out = String::new();
    for (i, c) in s.chars().enumerate() {
        if i > 0 && (s.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// The planner's decision for this run (method, batch, accumulation) on a
/// model with config `cfg` at `path`, for samples of up to `seq_len` tokens:
/// what training follows, and what the pipeline's estimate stage checks.
/// Training runs on the CPU whatever GPUs `inv` lists, so the plan budgets
/// the CPU's available RAM and models this crate's trainer.
pub fn plan_run(
    args: &FinetuneArgs,
    cfg: &ModelConfig,
    path: &Path,
    seq_len: usize,
    inv: &Inventory,
) -> Plan {
    let is_gguf = path.is_file();
    let device = plan::training_device(inv);
    let budget = device.free_bytes;
    let mut base = Job::new(Method::Lora);
    base.seq_len = seq_len.max(1);
    base.lora_rank = args.lora_rank.max(1);
    base.target_modules = args.target_modules.clone();
    base.lora_dropout = args.lora_dropout > 0.0;
    base.cuda_context = false;
    if is_gguf {
        if let Ok(src) = super::estimate_vram::read_model(path) {
            if let Some((linear_bytes, other_bytes)) = src.gguf_bytes {
                base.quant = Quant::Gguf {
                    linear_bytes,
                    other_bytes,
                };
            }
        }
    }
    let full_requested = args.tuner == Some(TunerArg::Full) || args.method == MethodArg::Full;
    let req_method = if full_requested {
        Some(Method::Full)
    } else {
        match args.method {
            MethodArg::Auto if args.quant_bits.is_some() => Some(Method::Qlora),
            MethodArg::Auto => None,
            MethodArg::Lora => Some(Method::Lora),
            MethodArg::Qlora => Some(Method::Qlora),
            MethodArg::Full => Some(Method::Full),
        }
    };
    let effective = match (args.batch_size, args.gradient_accumulation_steps) {
        (None, None) => 16,
        (b, a) => b.unwrap_or(1) * a.unwrap_or(1),
    };
    let req = Request {
        method: req_method,
        dtype: Some(Dtype::F32),
        batch_size: args.batch_size,
        gradient_checkpointing: Some(false),
        effective_batch: effective,
        engine: None,
        base,
    };
    plan::plan(cfg, device, budget, &req)
}

/// Why a plan is for `seq_len` tokens: the data's longest sample when it is
/// shorter than --max-length, else --max-length.
pub fn length_note(seq_len: usize, max_length: usize) -> String {
    if seq_len < max_length {
        format!("the data's longest; --max-length {max_length} is the upper bound")
    } else {
        format!("--max-length {max_length}")
    }
}

pub fn run(args: FinetuneArgs, printer: &Printer) -> Result<()> {
    if args.merge || args.serve {
        return super::pipeline::run(args, printer);
    }
    for (set, flag) in [
        (args.merge_output.is_some(), "--merge-output"),
        (args.merge_format.is_some(), "--merge-format"),
        (args.host.is_some(), "--host"),
        (args.port.is_some(), "--port"),
        (args.served_model_name.is_some(), "--served-model-name"),
    ] {
        if set {
            return Err(Exit::Usage(format!("{flag} needs --merge or --serve")).into());
        }
    }
    let t = train(&args, printer)?;
    if args.json {
        let summary = json!({
            "output_dir": t.output_dir.display().to_string(),
            "tuner": if t.full { "full" } else { "lora" },
            "steps": t.steps,
            "train_loss": t.train_loss,
            "eval_loss": t.eval_loss,
            "train_seconds": t.train_seconds,
            "tokens_per_second": t.tokens_per_second,
            "trainable_params": t.trainable_params,
            "event_file": t.event_file.display().to_string(),
        });
        printer.data(&serde_json::to_string_pretty(&summary)?);
    } else {
        printer.data(&t.output_dir.display().to_string());
    }
    Ok(())
}

/// Load the data and the model, plan, train, and save into --output-dir
/// (printing progress on stderr, nothing on stdout). Ctrl-C: a checkpoint
/// and `Exit::Interrupted`.
pub fn train(args: &FinetuneArgs, printer: &Printer) -> Result<Trained> {
    // candle runs its element-wise ops on a pool of spinning threads sized
    // to every core, beside its matmul pool and ours: on a machine with few
    // cores, or shared with other work, they spin against each other (a
    // SmolLM2 step measured 3-4x slower on 2 busy cores). Element-wise work is
    // small next to the matmuls, so that pool stays off unless asked for.
    if std::env::var_os("CANDLE_NUM_THREADS").is_none() {
        std::env::set_var("CANDLE_NUM_THREADS", "1");
    }
    if let Some(n) = args.threads {
        if n == 0 {
            return Err(Exit::Usage("--threads must be at least 1".into()).into());
        }
        // candle's matmul pool follows RAYON_NUM_THREADS.
        std::env::set_var("RAYON_NUM_THREADS", n.to_string());
        let _ = rayon::ThreadPoolBuilder::new()
            .num_threads(n)
            .build_global();
    }
    if args.batch_size == Some(0) || args.gradient_accumulation_steps == Some(0) {
        return Err(Exit::Usage(
            "--batch-size and --gradient-accumulation-steps must be at least 1".into(),
        )
        .into());
    }
    let columns = match &args.columns {
        Some(j) => serde_json::from_str(j).map_err(|e| {
            Exit::Usage(format!("--columns: expected a JSON object of strings: {e}"))
        })?,
        None => Default::default(),
    };
    let path = super::resolve_model_arg(Path::new(&args.model), &[])?;
    let path = path.as_path();
    let is_gguf = path.is_file();

    if is_gguf && args.quant_bits.is_some() {
        return Err(Exit::Usage(
            "--quant-bits quantizes a full-precision model; a GGUF already is quantized and trains on its own blocks (drop --quant-bits)".into(),
        )
        .into());
    }
    let cfg = if is_gguf {
        ModelConfig::from_gguf(&crate::model::gguf::GgufFile::open(path)?)
    } else {
        ModelConfig::from_path(path)
    }
    .with_context(|| format!("reading the model config of {}", path.display()))?;
    let tok = Tokenizer::load(path)
        .with_context(|| format!("loading the tokenizer from {}", path.display()))?;

    // Data.
    let opts = SftOptions {
        max_length: args.max_length,
        truncation: match args.truncation_strategy {
            TruncationArg::Delete => Truncation::Delete,
            TruncationArg::Left => Truncation::Left,
            TruncationArg::Right => Truncation::Right,
        },
        packing: args.packing,
        loss_on_all_tokens: args.loss_on_all_tokens,
        dedup: args.dedup,
        skip_bad_rows: args.skip_bad_rows,
        columns,
        split_ratio: args.split_dataset_ratio,
        seed: args.seed,
        system: args.system.clone(),
    };
    let train_specs: Vec<DatasetSpec> = args.datasets.iter().map(|s| parse_spec(s)).collect();
    let val_specs: Vec<DatasetSpec> = args.val_datasets.iter().map(|s| parse_spec(s)).collect();
    let progress = printer.progress();
    let data = data::load_sft(&train_specs, &val_specs, &tok, &opts, progress.as_ref())?;
    let r = &data.report;
    for s in &r.sources {
        printer.info(&format!(
            "data: {} ({} {}): {} rows, {} kept; dropped {} malformed, {} over length, {} empty answer; {} truncated",
            s.path, s.format, s.layout, s.rows, s.kept, s.malformed, s.over_length, s.empty_answer, s.truncated
        ));
    }
    printer.info(&format!(
        "data: {} train / {} validation samples; {} duplicates{}; tokens min {} / median {} / p95 {} / max {} (max length {})",
        r.train_rows,
        r.val_rows,
        r.duplicates,
        if r.duplicates_removed { " removed" } else { "" },
        r.length_min,
        r.length_median,
        r.length_p95,
        r.length_max,
        r.max_length
    ));

    // Plan.
    let seq_len = if args.max_length > 0 {
        args.max_length.min(r.length_max.max(1))
    } else {
        r.length_max.max(1)
    };
    let inv = super::inventory()?;
    let plan = plan_run(args, &cfg, path, seq_len, &inv);
    let full = plan.job.method == Method::Full;
    let mut method_note = plan.job.method.name().to_string();
    let mut quantize: Option<GgmlType> = None;
    if plan.job.method == Method::Qlora {
        if is_gguf {
            method_note = "qlora (LoRA on the GGUF's own quantized weights)".into();
        } else {
            let t = match args.quant_bits.as_deref() {
                Some("8") => GgmlType::Q8_0,
                _ => GgmlType::NF4,
            };
            quantize = Some(t);
            method_note = format!(
                "qlora ({} base quantized at load, LoRA in f32)",
                if t == GgmlType::NF4 {
                    "4-bit NF4"
                } else {
                    "8-bit"
                }
            );
        }
    } else if plan.job.method == Method::Lora && is_gguf {
        method_note = "lora on the GGUF's quantized weights (QLoRA)".into();
    }
    printer.info(&format!(
        "plan: {method_note}: {}; sequences of up to {seq_len} tokens ({})",
        plan.reason,
        length_note(seq_len, args.max_length)
    ));
    if !plan.fits {
        printer.warn("warning: the planner's estimate does not fit this machine's free memory");
    }
    printer.info(&format!("loading {}", path.display()));
    let mut model = match quantize {
        Some(t) => Model::load_hf_quantized(path, t),
        None => Model::load(path, &LoadOptions::default()),
    }
    .with_context(|| format!("loading the model from {}", path.display()))?;
    let batch_size = args.batch_size.unwrap_or(plan.job.batch_size).max(1);
    let accum = args
        .gradient_accumulation_steps
        .unwrap_or(plan.gradient_accumulation_steps)
        .max(1);

    // Trainable parameters.
    let lora_opts = LoraOptions {
        rank: args.lora_rank,
        alpha: args.lora_alpha,
        dropout: args.lora_dropout,
        targets: args.target_modules.clone(),
        rslora: args.use_rslora,
    };
    let total_params = cfg.total_params() as usize;
    let params: Vec<Param> = if full {
        lora::make_full_trainable(&mut model)?
    } else {
        lora::attach_lora(&mut model, &lora_opts, args.seed)?
    };
    let trainable: usize = params.iter().map(Param::numel).sum();
    let all = if full {
        trainable
    } else {
        total_params + trainable
    };
    printer.info(&format!(
        "trainable params: {} || all params: {} || trainable%: {:.4}",
        human(trainable),
        human(all),
        100.0 * trainable as f64 / all.max(1) as f64
    ));

    let out = args.output_dir.clone();
    std::fs::create_dir_all(&out).with_context(|| format!("creating {}", out.display()))?;
    let resume = match &args.resume_from_checkpoint {
        Some(spec) => Some(train::checkpoint::resolve(spec, &out)?),
        None => None,
    };
    let tcfg = TrainConfig {
        output_dir: out.clone(),
        batch_size,
        gradient_accumulation_steps: accum,
        learning_rate: args.learning_rate.unwrap_or(if full { 1e-5 } else { 1e-4 }),
        adamw: AdamWConfig {
            beta1: args.adam_beta1,
            beta2: args.adam_beta2,
            eps: args.adam_epsilon,
            weight_decay: args.weight_decay,
        },
        schedule: args.lr_scheduler_type,
        warmup_steps: args.warmup_steps,
        warmup_ratio: args.warmup_ratio,
        max_grad_norm: args.max_grad_norm,
        num_train_epochs: args.num_train_epochs,
        max_steps: args.max_steps,
        seed: args.seed,
        logging_steps: args.logging_steps.max(1),
        eval_steps: args.eval_steps,
        save_steps: Some(args.save_steps),
        save_total_limit: args.save_total_limit,
        resume_from: resume.clone(),
        shuffle: true,
    };
    let max_steps = train::total_steps(&tcfg, data.train.len());
    let args_json = json!({
        "model": path.display().to_string(),
        "tuner": if full { "full" } else { "lora" },
        "method": method_note,
        "plan": plan,
        "plan_reason": plan.reason,
        "train": tcfg,
        "max_steps": max_steps,
        "lora": if full { serde_json::Value::Null } else { serde_json::to_value(&lora_opts)? },
        "data": {
            "datasets": args.datasets,
            "val_datasets": args.val_datasets,
            "max_length": args.max_length,
            "truncation_strategy": format!("{:?}", args.truncation_strategy).to_lowercase(),
            "packing": args.packing,
            "loss_on_all_tokens": args.loss_on_all_tokens,
            "dedup": args.dedup,
            "split_dataset_ratio": args.split_dataset_ratio,
            "report": data.report,
        },
        "trainable_params": trainable,
        "total_params": all,
        "swift_version": env!("CARGO_PKG_VERSION"),
    });
    train::checkpoint::write_atomic(
        &out.join("args.json"),
        serde_json::to_string_pretty(&args_json)?.as_bytes(),
    )?;
    if let Some(r) = &resume {
        printer.info(&format!("resuming from {}", r.display()));
    }
    printer.info(&format!(
        "training {max_steps} steps: batch {batch_size} x {accum} accumulation, {} samples, output {}",
        data.train.len(),
        out.display()
    ));

    let base_name = path.display().to_string();
    // What the frozen base was trained under, in swift's own record beside
    // the adapter (adapter_config.json keeps peft's keys only).
    let record = SwiftRecord::new(match (quantize, is_gguf) {
        (Some(t), _) => Some(if t == GgmlType::NF4 {
            Quantization::at_load("nf4", 4, t.block_size())
        } else {
            Quantization::at_load("q8_0", 8, t.block_size())
        }),
        (None, true) => crate::model::gguf::GgufFile::open(path)
            .ok()
            .map(|g| Quantization::gguf(&g)),
        _ => None,
    });
    let save_params = params.clone();
    let save = |dir: &Path| -> Result<()> {
        if full {
            crate::model::export::write_hf(
                &model,
                dir,
                &crate::model::export::ExportOptions {
                    merge_adapters: false,
                    ..Default::default()
                },
            )?;
        } else {
            lora::save_adapter(dir, &save_params, &lora_opts, &base_name, &record)?;
        }
        tok.save(dir)
    };
    STOP.store(false, Ordering::SeqCst);
    CTRL_C.store(CTRL_C_TRAINING, Ordering::SeqCst);
    let _ = ctrlc::set_handler(|| match CTRL_C.load(Ordering::SeqCst) {
        CTRL_C_TRAINING => {
            if STOP.swap(true, Ordering::SeqCst) {
                // A second Ctrl-C: leave now.
                std::process::exit(crate::error::EXIT_INTERRUPTED);
            }
        }
        CTRL_C_TO_SERVER => {}
        _ => std::process::exit(crate::error::EXIT_INTERRUPTED),
    });
    let pad_id = tok
        .pad_id()
        .or_else(|| tok.eos_ids().first().copied())
        .unwrap_or(0);
    let objective = CrossEntropy { pad_id };
    let outcome = train::run(Trainer {
        model: &model,
        params,
        objective: &objective,
        train: &data.train,
        val: &data.val,
        cfg: tcfg,
        save_model: &save,
        progress: progress.as_ref(),
        stop: &STOP,
    });
    // Training is over: from here a Ctrl-C leaves at once (unless the
    // pipeline hands it to its server).
    CTRL_C.store(CTRL_C_EXITS, Ordering::SeqCst);
    let outcome = outcome?;

    let last = outcome
        .log_history
        .iter()
        .rev()
        .find_map(|r| r.get("loss").and_then(|v| v.as_f64()));
    let eval = outcome
        .log_history
        .iter()
        .rev()
        .find_map(|r| r.get("eval_loss").and_then(|v| v.as_f64()));
    if outcome.interrupted {
        printer.warn(&format!(
            "interrupted at step {}/{}: checkpoint {} ({})",
            outcome.global_step,
            outcome.max_steps,
            outcome
                .last_checkpoint
                .as_ref()
                .map(|p| p.display().to_string())
                .unwrap_or_default(),
            if args.merge || args.serve {
                "run the same command again to continue from it"
            } else {
                "continue with --resume-from-checkpoint latest"
            }
        ));
        return Err(Exit::Interrupted.into());
    }
    let tps = outcome.tokens as f64 / outcome.train_seconds.max(1e-9);
    printer.info(&format!(
        "done: {} steps in {:.1}s, loss {}{}, {} saved to {}",
        outcome.global_step,
        outcome.train_seconds,
        last.map(|l| format!("{l:.4}"))
            .unwrap_or_else(|| "-".into()),
        eval.map(|l| format!(", eval loss {l:.4}"))
            .unwrap_or_default(),
        if full { "model" } else { "adapter" },
        out.display()
    ));
    Ok(Trained {
        output_dir: out,
        full,
        steps: outcome.global_step,
        train_loss: last,
        eval_loss: eval,
        train_seconds: outcome.train_seconds,
        tokens_per_second: tps,
        trainable_params: trainable,
        event_file: outcome.event_file,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dataset_specs() {
        assert_eq!(parse_spec("a/b.jsonl#100").sample, Some(100));
        assert_eq!(parse_spec("a/b.jsonl").sample, None);
        assert_eq!(parse_spec("a#b.jsonl").path, PathBuf::from("a#b.jsonl"));
    }
}
