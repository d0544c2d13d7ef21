//! What `swift finetune` and `swift dpo` share in the command layer: their
//! flag groups (each command flattens them and changes the few defaults and
//! help lines that differ), the translation of those flags into a
//! `train::job::Job`, Ctrl-C during training, and the lines that report a
//! finished or interrupted run.

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU8, Ordering};

use anyhow::Result;
use clap::{Args, ValueEnum};

use crate::data::{DatasetSpec, SftOptions, Truncation};
use crate::error::Exit;
use crate::printer::Printer;
use crate::train::job::{Job, Loss, Stop, Trained};
use crate::train::lora::LoraOptions;
use crate::train::optim::AdamWConfig;
use crate::train::schedule::Schedule;
use crate::train::TrainConfig;

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

/// The model and the data.
#[derive(Debug, Clone, Args)]
pub struct DataFlags {
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

    /// Longest sample (prompt + answer) in tokens
    #[arg(long, alias = "max_length", default_value_t = 2048, value_name = "N")]
    pub max_length: usize,

    /// What to do with samples over --max-length
    #[arg(long, alias = "truncation_strategy", value_enum, default_value_t = TruncationArg::Delete)]
    pub truncation_strategy: TruncationArg,

    /// Remove exact duplicate rows
    #[arg(long)]
    pub dedup: bool,

    /// Skip and count malformed rows instead of stopping
    #[arg(long, alias = "skip_bad_rows")]
    pub skip_bad_rows: bool,

    /// A default system prompt for rows that have none
    #[arg(long)]
    pub system: Option<String>,
}

/// The LoRA adapter.
#[derive(Debug, Clone, Args)]
pub struct LoraFlags {
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
}

/// The optimizer, the schedule, checkpoints and logs.
#[derive(Debug, Clone, Args)]
pub struct LoopFlags {
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

    /// Where the adapter / weights, checkpoints and logs go
    #[arg(
        long,
        alias = "output_dir",
        default_value = "output",
        value_name = "DIR"
    )]
    pub output_dir: PathBuf,

    /// CPU threads (default: all cores)
    #[arg(long, short = 't', value_name = "N")]
    pub threads: Option<usize>,

    /// Print a JSON summary on stdout at the end
    #[arg(long)]
    pub json: bool,
}

fn usage(msg: impl Into<String>) -> anyhow::Error {
    Exit::Usage(msg.into()).into()
}

impl DataFlags {
    /// The training and validation specs (`PATH` or `PATH#N`).
    pub fn specs(&self) -> Result<(Vec<DatasetSpec>, Vec<DatasetSpec>)> {
        let parse = |flag: &str, v: &[String]| -> Result<Vec<DatasetSpec>> {
            v.iter()
                .map(|s| s.parse().map_err(|e| usage(format!("{flag} {s}: {e:#}"))))
                .collect()
        };
        Ok((
            parse("--dataset", &self.datasets)?,
            parse("--val-dataset", &self.val_datasets)?,
        ))
    }

    /// How rows become samples (`packing` and `loss_on_all_tokens` are
    /// finetune's own flags).
    pub fn options(
        &self,
        seed: u64,
        packing: bool,
        loss_on_all_tokens: bool,
    ) -> Result<SftOptions> {
        let columns = match &self.columns {
            Some(j) => serde_json::from_str(j)
                .map_err(|e| usage(format!("--columns: expected a JSON object of strings: {e}")))?,
            None => Default::default(),
        };
        Ok(SftOptions {
            max_length: self.max_length,
            truncation: match self.truncation_strategy {
                TruncationArg::Delete => Truncation::Delete,
                TruncationArg::Left => Truncation::Left,
                TruncationArg::Right => Truncation::Right,
            },
            packing,
            loss_on_all_tokens,
            dedup: self.dedup,
            skip_bad_rows: self.skip_bad_rows,
            columns,
            split_ratio: self.split_dataset_ratio,
            seed,
            system: self.system.clone(),
        })
    }
}

impl LoraFlags {
    pub fn options(&self) -> LoraOptions {
        LoraOptions {
            rank: self.lora_rank,
            alpha: self.lora_alpha,
            dropout: self.lora_dropout,
            targets: self.target_modules.clone(),
            rslora: self.use_rslora,
        }
    }
}

impl LoopFlags {
    /// Usage errors the flags' types cannot rule out.
    pub fn check(&self) -> Result<()> {
        if self.batch_size == Some(0) || self.gradient_accumulation_steps == Some(0) {
            return Err(usage(
                "--batch-size and --gradient-accumulation-steps must be at least 1",
            ));
        }
        Ok(())
    }

    /// The loop's settings (the job fills in batch, accumulation, learning
    /// rate and the checkpoint to resume from).
    pub fn train_config(&self) -> TrainConfig {
        TrainConfig {
            output_dir: self.output_dir.clone(),
            adamw: AdamWConfig {
                beta1: self.adam_beta1,
                beta2: self.adam_beta2,
                eps: self.adam_epsilon,
                weight_decay: self.weight_decay,
            },
            schedule: self.lr_scheduler_type,
            warmup_steps: self.warmup_steps,
            warmup_ratio: self.warmup_ratio,
            max_grad_norm: self.max_grad_norm,
            num_train_epochs: self.num_train_epochs,
            max_steps: self.max_steps,
            seed: self.seed,
            logging_steps: self.logging_steps,
            eval_steps: self.eval_steps,
            save_steps: Some(self.save_steps),
            save_total_limit: self.save_total_limit,
            shuffle: true,
            ..TrainConfig::default()
        }
    }
}

static STOP: AtomicBool = AtomicBool::new(false);

/// What Ctrl-C does once the handler is installed: stop training at the next
/// step (a checkpoint, exit 130), exit at once (after training: merging), or
/// nothing (serving: the server's own handler shuts it down gracefully).
static CTRL_C: AtomicU8 = AtomicU8::new(CTRL_C_EXITS);
const CTRL_C_TRAINING: u8 = 0;
const CTRL_C_EXITS: u8 = 1;
const CTRL_C_TO_SERVER: u8 = 2;

/// Install the Ctrl-C handler (once per process) for a training run: until
/// the trainer starts, Ctrl-C leaves at once.
fn ctrl_c_for_training() {
    STOP.store(false, Ordering::SeqCst);
    CTRL_C.store(CTRL_C_EXITS, Ordering::SeqCst);
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
}

/// Leave Ctrl-C to the server that is about to start in this process (the
/// pipeline's serve stage after an in-process training).
pub fn ctrl_c_to_server() {
    CTRL_C.store(CTRL_C_TO_SERVER, Ordering::SeqCst);
}

/// The job the shared flag groups describe, with the loss and finetune's
/// own data switches; the planner chooses the method (set `method` and
/// `quant_bits` to ask for one).
pub fn job(
    data: &DataFlags,
    lora: &LoraFlags,
    run: &LoopFlags,
    (packing, loss_on_all_tokens): (bool, bool),
    loss: Loss,
) -> Result<Job> {
    run.check()?;
    let (train_data, val_data) = data.specs()?;
    Ok(Job {
        model: PathBuf::from(&data.model),
        train_data,
        val_data,
        data: data.options(run.seed, packing, loss_on_all_tokens)?,
        method: None,
        quant_bits: None,
        lora: lora.options(),
        batch_size: run.batch_size,
        gradient_accumulation_steps: run.gradient_accumulation_steps,
        learning_rate: run.learning_rate,
        resume_from_checkpoint: run.resume_from_checkpoint.clone(),
        train: run.train_config(),
        loss,
    })
}

/// How a plain `swift finetune` / `swift dpo` run continues after Ctrl-C.
pub const RESUME_HINT: &str = "continue with --resume-from-checkpoint latest";

/// Run `job` on this machine (a hub id in `job.model` fetched first) with
/// Ctrl-C stopping it at the next step; an interrupted run is reported
/// (where its checkpoint is, and `hint`: how to continue) and ends in
/// `Exit::Interrupted` (130).
pub fn run_job(mut job: Job, printer: &Printer, hint: &str) -> Result<Trained> {
    job.model = super::resolve_model_arg(&job.model, &[])?;
    let progress = printer.progress();
    ctrl_c_for_training();
    let stop = Stop {
        flag: &STOP,
        armed: &|| CTRL_C.store(CTRL_C_TRAINING, Ordering::SeqCst),
    };
    let t = crate::train::job::run(&job, &super::inventory()?, progress.as_ref(), stop);
    // Training is over: from here a Ctrl-C leaves at once (unless the
    // pipeline hands it to its server).
    CTRL_C.store(CTRL_C_EXITS, Ordering::SeqCst);
    let t = t?;
    if t.interrupted {
        return Err(interrupted(printer, &t, hint));
    }
    Ok(t)
}

/// An interrupted run: say where its checkpoint is and how to continue
/// (`hint`), and the error that exits with 130.
fn interrupted(printer: &Printer, t: &Trained, hint: &str) -> anyhow::Error {
    printer.warn(&format!(
        "interrupted at step {}/{}: checkpoint {} ({hint})",
        t.steps,
        t.max_steps,
        t.last_checkpoint
            .as_ref()
            .map(|p| p.display().to_string())
            .unwrap_or_default(),
    ));
    Exit::Interrupted.into()
}

/// `adapter` or `model`: what the run saved.
pub fn saved(t: &Trained) -> &'static str {
    if t.full {
        "model"
    } else {
        "adapter"
    }
}

/// A logged value with four decimals, `-` when none was logged.
pub fn metric(v: Option<f64>) -> String {
    v.map(|l| format!("{l:.4}")).unwrap_or_else(|| "-".into())
}

/// The `done:` line of a finished supervised run.
pub fn sft_done_line(t: &Trained) -> String {
    format!(
        "done: {} steps in {:.1}s, loss {}{}, {} saved to {}",
        t.steps,
        t.train_seconds,
        metric(t.last("loss")),
        t.last("eval_loss")
            .map(|l| format!(", eval loss {l:.4}"))
            .unwrap_or_default(),
        saved(t),
        t.output_dir.display()
    )
}
