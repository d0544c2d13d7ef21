//! `swift dpo`: preference alignment (DPO, IPO, ORPO, SimPO, KTO) with LoRA
//! or full tuning. Flags become a data load (`crate::data::load_preferences`),
//! a plan (`crate::planner`), trainable parameters (`crate::train::lora`), a
//! reference model and one call of `crate::train::run` with the
//! `crate::train::dpo::Preference` objective; this file prints what they return.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};

use anyhow::{Context, Result};
use clap::Args;
use serde_json::json;

use super::finetune::{parse_spec, TruncationArg, TunerArg};
use crate::data::{self, DatasetSpec, SftOptions, Truncation};
use crate::error::Exit;
use crate::model::config::ModelConfig;
use crate::model::{LoadOptions, Model};
use crate::planner::device::Inventory;
use crate::planner::memory::{Dtype, Job, Method};
use crate::planner::plan::{self, Plan, Request};
use crate::printer::Printer;
use crate::tokenizer::Tokenizer;
use crate::train::dpo::{self, LossKind, PrefConfig, PrefItem, Preference};
use crate::train::lora::{self, LoraOptions};
use crate::train::optim::{AdamWConfig, Param};
use crate::train::schedule::Schedule;
use crate::train::{self, TrainConfig, Trainer};

#[derive(Debug, Args)]
#[command(after_help = "\
Data: prompt/chosen/rejected (strings or message lists), TRL's chosen/rejected conversations, \
ms-swift's messages + rejected_response, and for KTO messages + a boolean label (paired rows are \
split into a desirable and an undesirable item).

The reference model is the base without the trained adapter (no second copy of the weights), \
the base with --ref-adapter, or with --tuner full a frozen copy (or --precompute-ref-logps: one \
pass before training). Logged: loss, rewards/chosen, rewards/rejected, rewards/accuracies, \
rewards/margins, logps/chosen, logps/rejected (logging.jsonl, runs/, images/).")]
pub struct DpoArgs {
    /// A model folder, a .gguf file, or a hub id (`org/name`) fetched first
    #[arg(
        long,
        alias = "model_id",
        alias = "model_name_or_path",
        value_name = "PATH"
    )]
    pub model: String,

    /// Preference data: a file (jsonl, json, csv, parquet) or folder, `PATH#N`
    /// to sample N rows (repeatable)
    #[arg(long = "dataset", required = true, num_args = 1.., value_name = "PATH[#N]")]
    pub datasets: Vec<String>,

    /// Validation data (otherwise --split-dataset-ratio of the training rows)
    #[arg(long = "val-dataset", alias = "val_dataset", num_args = 1.., value_name = "PATH[#N]")]
    pub val_datasets: Vec<String>,

    /// Fraction of the training rows held out for validation
    #[arg(
        long,
        alias = "split_dataset_ratio",
        default_value_t = 0.0,
        value_name = "R"
    )]
    pub split_dataset_ratio: f64,

    /// JSON object mapping source column names to standard ones
    #[arg(long, value_name = "JSON")]
    pub columns: Option<String>,

    /// Longest prompt + answer in tokens
    #[arg(long, alias = "max_length", default_value_t = 2048, value_name = "N")]
    pub max_length: usize,

    /// What to do with rows over --max-length
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

    /// The preference loss
    #[arg(
        long,
        alias = "rlhf-type",
        alias = "rlhf_type",
        alias = "loss-type",
        alias = "loss_type",
        value_enum,
        default_value_t = LossKind::Dpo
    )]
    pub loss: LossKind,

    /// Strength of the KL penalty (DPO/IPO/KTO), ORPO's lambda, SimPO's beta
    /// (default 0.1; 2.0 for SimPO)
    #[arg(long, value_name = "B")]
    pub beta: Option<f64>,

    /// Conservative DPO / SimPO: probability the preference label is flipped
    #[arg(
        long,
        alias = "label_smoothing",
        default_value_t = 0.0,
        value_name = "E"
    )]
    pub label_smoothing: f64,

    /// SimPO's target reward margin
    #[arg(long, alias = "simpo_gamma", default_value_t = 0.5, value_name = "G")]
    pub simpo_gamma: f64,

    /// KTO: weight of desirable examples
    #[arg(
        long,
        alias = "desirable_weight",
        default_value_t = 1.0,
        value_name = "W"
    )]
    pub desirable_weight: f64,

    /// KTO: weight of undesirable examples
    #[arg(
        long,
        alias = "undesirable_weight",
        default_value_t = 1.0,
        value_name = "W"
    )]
    pub undesirable_weight: f64,

    /// Start the policy from this LoRA adapter (e.g. an SFT result); it keeps training
    #[arg(long, alias = "adapters", value_name = "DIR")]
    pub adapter: Option<PathBuf>,

    /// The reference model is the base with this adapter (default: the base alone)
    #[arg(long, alias = "ref_adapter", value_name = "DIR")]
    pub ref_adapter: Option<PathBuf>,

    /// Compute the reference log-probs once before training (no reference
    /// model kept during training; useful with --tuner full)
    #[arg(
        long,
        alias = "precompute_ref_log_probs",
        alias = "precompute-ref-log-probs"
    )]
    pub precompute_ref_logps: bool,

    /// Where the adapter / weights, checkpoints and logs go
    #[arg(
        long,
        alias = "output_dir",
        default_value = "output",
        value_name = "DIR"
    )]
    pub output_dir: PathBuf,

    /// What trains: LoRA adapters, or every weight (`full`)
    #[arg(
        long,
        alias = "train_type",
        alias = "method",
        value_enum,
        default_value_t = TunerArg::Lora
    )]
    pub tuner: TunerArg,

    /// LoRA rank
    #[arg(long, alias = "lora_rank", default_value_t = 8, value_name = "R")]
    pub lora_rank: usize,

    /// LoRA alpha
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

    /// Rank-stabilised LoRA
    #[arg(long, alias = "use_rslora")]
    pub use_rslora: bool,

    /// Peak learning rate (default 5e-5 for LoRA, 5e-7 for full tuning)
    #[arg(long, alias = "learning_rate", value_name = "LR")]
    pub learning_rate: Option<f64>,

    /// AdamW decoupled weight decay
    #[arg(long, alias = "weight_decay", default_value_t = 0.0)]
    pub weight_decay: f64,

    /// Pairs per forward pass (each pair is two sequences; default: the planner's choice)
    #[arg(
        long,
        alias = "per_device_train_batch_size",
        alias = "batch_size",
        value_name = "N"
    )]
    pub batch_size: Option<usize>,

    /// Forward passes per optimizer step
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
        default_value_t = 1.0,
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

    /// CPU threads (default: all cores)
    #[arg(long, short = 't', value_name = "N")]
    pub threads: Option<usize>,

    /// Print a JSON summary on stdout at the end
    #[arg(long)]
    pub json: bool,
}

static STOP: AtomicBool = AtomicBool::new(false);

/// LoRA options of an existing peft adapter folder.
fn adapter_options(dir: &Path, dropout: f32) -> Result<LoraOptions> {
    let c = crate::model::adapter::AdapterConfig::read(dir)?;
    Ok(LoraOptions {
        rank: c.r,
        alpha: c.lora_alpha,
        dropout,
        targets: c.target_modules.unwrap_or_default(),
        rslora: c.use_rslora,
    })
}

/// The planner's decision for a DPO run whose pairs are two sequences of up
/// to `seq_len` tokens each, and the pairs per optimizer step it aims for.
/// Training runs on the CPU whatever GPUs `inv` lists, so the plan budgets
/// the CPU's available RAM and models this crate's trainer.
pub fn plan_run(
    args: &DpoArgs,
    cfg: &ModelConfig,
    seq_len: usize,
    inv: &Inventory,
) -> (Plan, usize) {
    let full = args.tuner == TunerArg::Full;
    let device = plan::training_device(inv);
    let mut job = Job::new(if full { Method::Full } else { Method::Lora });
    job.seq_len = seq_len.max(1);
    job.lora_rank = args.lora_rank.max(1);
    job.target_modules = args.target_modules.clone();
    job.cuda_context = false;
    let effective = match (args.batch_size, args.gradient_accumulation_steps) {
        (None, None) => 8,
        (b, a) => b.unwrap_or(1) * a.unwrap_or(1),
    };
    let req = Request {
        method: Some(if full { Method::Full } else { Method::Lora }),
        dtype: Some(Dtype::F32),
        batch_size: args.batch_size.map(|b| b * 2),
        gradient_checkpointing: Some(false),
        effective_batch: effective * 2,
        engine: None,
        base: job,
    };
    (plan::plan(cfg, device, device.free_bytes, &req), effective)
}

pub fn run(args: DpoArgs, printer: &Printer) -> Result<()> {
    if std::env::var_os("CANDLE_NUM_THREADS").is_none() {
        std::env::set_var("CANDLE_NUM_THREADS", "1");
    }
    if let Some(n) = args.threads {
        if n == 0 {
            return Err(Exit::Usage("--threads must be at least 1".into()).into());
        }
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
    let beta = args.beta.unwrap_or(if args.loss == LossKind::Simpo {
        2.0
    } else {
        0.1
    });
    if beta <= 0.0 || !beta.is_finite() {
        return Err(Exit::Usage("--beta must be positive".into()).into());
    }
    if !(0.0..0.5).contains(&args.label_smoothing) {
        return Err(Exit::Usage("--label-smoothing must be in [0, 0.5)".into()).into());
    }
    let full = args.tuner == TunerArg::Full;
    if full && (args.adapter.is_some() || args.ref_adapter.is_some()) {
        return Err(
            Exit::Usage("--adapter / --ref-adapter need LoRA (not --tuner full)".into()).into(),
        );
    }
    if args.precompute_ref_logps && args.loss == LossKind::Kto {
        return Err(Exit::Usage(
            "--precompute-ref-logps does not apply to KTO (its KL term pairs completions per batch)"
                .into(),
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

    printer.info(&format!("loading {}", path.display()));
    let mut model = Model::load(path, &LoadOptions::default())
        .with_context(|| format!("loading the model from {}", path.display()))?;
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
        packing: false,
        loss_on_all_tokens: false,
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
    let data = data::load_preferences(&train_specs, &val_specs, &tok, &opts, progress.as_ref())?;
    let r = &data.report;
    for s in &r.sources {
        printer.info(&format!(
            "data: {} ({} {}): {} rows, {} kept; dropped {} malformed, {} over length, {} empty answer; {} truncated",
            s.path, s.format, s.layout, s.rows, s.kept, s.malformed, s.over_length, s.empty_answer, s.truncated
        ));
    }
    printer.info(&format!(
        "data: {} train / {} validation pairs; tokens min {} / median {} / p95 {} / max {}",
        r.train_rows, r.val_rows, r.length_min, r.length_median, r.length_p95, r.length_max
    ));
    let (train_s, val_s) = if args.loss == LossKind::Kto {
        (
            dpo::unpair(data.train.clone()),
            dpo::unpair(data.val.clone()),
        )
    } else {
        if data.train.iter().any(|s| s.label.is_some()) {
            return Err(Exit::Usage(format!(
                "the data has KTO rows (a completion and a label, no rejected answer): use --loss kto, not {:?}",
                args.loss
            ).to_lowercase())
            .into());
        }
        (data.train.clone(), data.val.clone())
    };
    let mut train_items: Vec<PrefItem> = train_s.into_iter().map(PrefItem::new).collect();
    let mut val_items: Vec<PrefItem> = val_s.into_iter().map(PrefItem::new).collect();

    // Plan: a pair is two sequences of the longest length.
    let cfg = model.config().clone();
    let inv = super::inventory()?;
    let seq_len = args.max_length.min(r.length_max.max(1));
    let (plan, effective) = plan_run(&args, &cfg, seq_len, &inv);
    printer.info(&format!(
        "plan: {}: {}; sequences of up to {seq_len} tokens ({})",
        plan.job.method.name(),
        plan.reason,
        super::finetune::length_note(seq_len, args.max_length)
    ));
    if !plan.fits {
        printer.warn("warning: the planner's estimate does not fit this machine's free memory");
    }
    let batch_size = args
        .batch_size
        .unwrap_or((plan.job.batch_size / 2).max(1))
        .max(1);
    let accum = args
        .gradient_accumulation_steps
        .unwrap_or((effective / batch_size).max(1))
        .max(1);

    // Reference and trainable parameters.
    let pad_id = tok
        .pad_id()
        .or_else(|| tok.eos_ids().first().copied())
        .unwrap_or(0);
    let needs_ref = args.loss.needs_reference();
    let mut reference: Option<Model> = None;
    if needs_ref {
        let mut base = model.clone();
        if let Some(dir) = &args.ref_adapter {
            let n = crate::model::adapter::apply(&mut base, dir)
                .with_context(|| format!("loading --ref-adapter {}", dir.display()))?;
            printer.info(&format!(
                "reference: the base with {} ({n} layers)",
                dir.display()
            ));
        }
        if args.precompute_ref_logps {
            printer.info("reference: computing log-probs once before training");
            dpo::precompute_reference(
                &base,
                &mut train_items,
                pad_id,
                batch_size,
                progress.as_ref(),
            )?;
            dpo::precompute_reference(
                &base,
                &mut val_items,
                pad_id,
                batch_size,
                progress.as_ref(),
            )?;
        } else {
            reference = Some(base);
        }
    }
    let lora_opts = match &args.adapter {
        Some(dir) => adapter_options(dir, args.lora_dropout)?,
        None => LoraOptions {
            rank: args.lora_rank,
            alpha: args.lora_alpha,
            dropout: args.lora_dropout,
            targets: args.target_modules.clone(),
            rslora: args.use_rslora,
        },
    };
    let params: Vec<Param> = if full {
        lora::make_full_trainable(&mut model)?
    } else {
        let p = lora::attach_lora(&mut model, &lora_opts, args.seed)?;
        if let Some(dir) = &args.adapter {
            lora::load_params(dir, &p)
                .with_context(|| format!("loading --adapter {}", dir.display()))?;
            printer.info(&format!("policy: starting from {}", dir.display()));
        }
        p
    };
    let trainable: usize = params.iter().map(Param::numel).sum();
    printer.info(&format!(
        "loss {:?} (beta {beta}); trainable params: {trainable}; reference: {}",
        args.loss,
        if !needs_ref {
            "none"
        } else if args.precompute_ref_logps {
            "precomputed"
        } else if full {
            "frozen copy"
        } else {
            "base without the adapter"
        }
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
        learning_rate: args.learning_rate.unwrap_or(if full { 5e-7 } else { 5e-5 }),
        adamw: AdamWConfig {
            weight_decay: args.weight_decay,
            ..AdamWConfig::default()
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
    let pref = PrefConfig {
        loss: args.loss,
        beta,
        label_smoothing: args.label_smoothing,
        simpo_gamma: args.simpo_gamma,
        desirable_weight: args.desirable_weight,
        undesirable_weight: args.undesirable_weight,
    };
    let max_steps = train::total_steps(&tcfg, train_items.len());
    let args_json = json!({
        "command": "dpo",
        "model": path.display().to_string(),
        "tuner": if full { "full" } else { "lora" },
        "rlhf": pref,
        "adapter": args.adapter.as_ref().map(|p| p.display().to_string()),
        "ref_adapter": args.ref_adapter.as_ref().map(|p| p.display().to_string()),
        "precompute_ref_logps": args.precompute_ref_logps,
        "plan": plan,
        "train": tcfg,
        "max_steps": max_steps,
        "lora": if full { serde_json::Value::Null } else { serde_json::to_value(&lora_opts)? },
        "data": {
            "datasets": args.datasets,
            "val_datasets": args.val_datasets,
            "max_length": args.max_length,
            "report": data.report,
        },
        "trainable_params": trainable,
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
        "training {max_steps} steps: batch {batch_size} pairs x {accum} accumulation, {} items, output {}",
        train_items.len(),
        out.display()
    ));

    let base_name = path.display().to_string();
    // A GGUF base trains on its own blocks: say so beside the adapter.
    let record = crate::model::adapter::SwiftRecord::new(if path.is_file() {
        crate::model::gguf::GgufFile::open(path)
            .ok()
            .map(|g| crate::model::adapter::Quantization::gguf(&g))
    } else {
        None
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
    let _ = ctrlc::set_handler(|| {
        if STOP.swap(true, Ordering::SeqCst) {
            std::process::exit(crate::error::EXIT_INTERRUPTED);
        }
    });
    let objective = Preference {
        cfg: pref,
        pad_id,
        reference: reference.as_ref(),
    };
    let outcome = train::run(Trainer {
        model: &model,
        params,
        objective: &objective,
        train: &train_items,
        val: &val_items,
        cfg: tcfg,
        save_model: &save,
        progress: progress.as_ref(),
        stop: &STOP,
    })?;

    let last = |k: &str| {
        outcome
            .log_history
            .iter()
            .rev()
            .find_map(|r| r.get(k).and_then(|v| v.as_f64()))
    };
    if outcome.interrupted {
        printer.warn(&format!(
            "interrupted at step {}/{}: checkpoint {} (continue with --resume-from-checkpoint latest)",
            outcome.global_step,
            outcome.max_steps,
            outcome
                .last_checkpoint
                .as_ref()
                .map(|p| p.display().to_string())
                .unwrap_or_default()
        ));
        return Err(Exit::Interrupted.into());
    }
    let tps = outcome.tokens as f64 / outcome.train_seconds.max(1e-9);
    let fmt = |v: Option<f64>| v.map(|l| format!("{l:.4}")).unwrap_or_else(|| "-".into());
    printer.info(&format!(
        "done: {} steps in {:.1}s ({tps:.0} tokens/s), loss {}, rewards/accuracies {}, rewards/margins {}; {} saved to {}",
        outcome.global_step,
        outcome.train_seconds,
        fmt(last("loss")),
        fmt(last("rewards/accuracies")),
        fmt(last("rewards/margins")),
        if full { "model" } else { "adapter" },
        out.display()
    ));
    if args.json {
        let summary = json!({
            "output_dir": out.display().to_string(),
            "loss_type": args.loss,
            "steps": outcome.global_step,
            "train_loss": last("loss"),
            "rewards/accuracies": last("rewards/accuracies"),
            "rewards/margins": last("rewards/margins"),
            "train_seconds": outcome.train_seconds,
            "tokens_per_second": tps,
            "trainable_params": trainable,
            "event_file": outcome.event_file.display().to_string(),
        });
        printer.data(&serde_json::to_string_pretty(&summary)?);
    } else {
        printer.data(&out.display().to_string());
    }
    Ok(())
}
