//! The training job, one for every command that trains: read the model's
//! config and tokenizer, load and tokenize the data, plan (method, batch,
//! accumulation), load the model, make the trainable parameters, write
//! args.json, run the trainer loop with the loss the caller chose, and save.
//! `swift finetune` gives it cross-entropy, `swift dpo` a preference loss,
//! the `--merge/--serve` pipeline the same as finetune. Nothing here prints:
//! every line goes through the [`Progress`] sink.

use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicBool;

use anyhow::{Context, Result};
use serde_json::{json, Value};

use crate::data::{self, DataReport, DatasetSpec, SftOptions};
use crate::error::Exit;
use crate::model::adapter::{Quantization, SwiftRecord};
use crate::model::config::ModelConfig;
use crate::model::gguf::GgmlType;
use crate::model::{LoadOptions, Model};
use crate::planner::device::Inventory;
use crate::planner::memory::{Dtype, Job as PlanJob, Method, Quant};
use crate::planner::plan::{self, Plan, Request};
use crate::progress::Progress;
use crate::tokenizer::Tokenizer;
use crate::train::dpo::{self, LossKind, PrefConfig, PrefItem, Preference};
use crate::train::lora::{self, LoraOptions};
use crate::train::optim::Param;
use crate::train::sft::CrossEntropy;
use crate::train::{self as trainer, TrainConfig, Trainer};

/// Which loss the job trains with, and what only that loss needs.
#[derive(Debug, Clone)]
pub enum Loss {
    /// Supervised fine-tuning: cross-entropy on the labelled tokens.
    CrossEntropy,
    /// Preference alignment (DPO, IPO, ORPO, SimPO, KTO).
    Preference(PreferenceLoss),
}

/// The preference loss and its reference model.
#[derive(Debug, Clone)]
pub struct PreferenceLoss {
    pub cfg: PrefConfig,
    /// Start the policy from this LoRA adapter.
    pub adapter: Option<PathBuf>,
    /// The reference is the base with this adapter.
    pub ref_adapter: Option<PathBuf>,
    /// Reference log-probs computed once before training.
    pub precompute_ref_logps: bool,
}

/// One training job.
#[derive(Debug, Clone)]
pub struct Job {
    /// A local model folder or `.gguf` file (hub ids are fetched before).
    pub model: PathBuf,
    pub train_data: Vec<DatasetSpec>,
    pub val_data: Vec<DatasetSpec>,
    pub data: SftOptions,
    /// The method asked for; `None` lets the planner choose.
    pub method: Option<Method>,
    /// QLoRA on a full-precision model: 4 (NF4) or 8 (8-bit blocks).
    pub quant_bits: Option<u8>,
    pub lora: LoraOptions,
    /// Overrides of the planner's batch and accumulation.
    pub batch_size: Option<usize>,
    pub gradient_accumulation_steps: Option<usize>,
    /// `None`: the loss's default for LoRA or full tuning.
    pub learning_rate: Option<f64>,
    /// A checkpoint folder, or `latest` in the output folder.
    pub resume_from_checkpoint: Option<String>,
    /// The loop's settings; its `batch_size`, `gradient_accumulation_steps`,
    /// `learning_rate` and `resume_from` are filled in by the job from the
    /// plan and the fields above.
    pub train: TrainConfig,
    pub loss: Loss,
}

/// What a training run produced.
#[derive(Debug, Clone)]
pub struct Trained {
    pub output_dir: PathBuf,
    /// Full tuning (an HF folder) rather than a LoRA adapter.
    pub full: bool,
    /// Stopped by the `stop` flag: a checkpoint of the last finished step.
    pub interrupted: bool,
    pub steps: usize,
    pub max_steps: usize,
    pub last_checkpoint: Option<PathBuf>,
    pub log_history: Vec<Value>,
    pub train_seconds: f64,
    pub tokens_per_second: f64,
    pub trainable_params: usize,
    pub event_file: PathBuf,
}

impl Trained {
    /// The last logged value of `key` (`loss`, `eval_loss`, `rewards/margins`).
    pub fn last(&self, key: &str) -> Option<f64> {
        self.log_history
            .iter()
            .rev()
            .find_map(|r| r.get(key).and_then(|v| v.as_f64()))
    }
}

/// `1234567` -> `1,234,567`.
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

/// Why a plan is for `seq_len` tokens: the data's longest sample when it is
/// shorter than `max_length`, else `max_length`.
fn length_note(seq_len: usize, max_length: usize) -> String {
    if seq_len < max_length {
        format!("the data's longest; --max-length {max_length} is the upper bound")
    } else {
        format!("--max-length {max_length}")
    }
}

/// The planner's decision for `job` on a model with config `cfg` (and, for a
/// GGUF, its linear / other bytes as stored), for sequences of up to
/// `seq_len` tokens: the plan and the samples (pairs) per optimizer step it
/// aims for. Training runs on the CPU whatever GPUs `inv` lists, so the plan
/// budgets the CPU's available RAM and models this crate's trainer.
pub fn plan(
    job: &Job,
    cfg: &ModelConfig,
    gguf_bytes: Option<(u64, u64)>,
    seq_len: usize,
    inv: &Inventory,
) -> (Plan, usize) {
    let device = plan::training_device(inv);
    // Finetune plans from LoRA and lets the request pick; a preference job
    // trains what it asks for (LoRA unless full).
    let mut base = PlanJob::new(match job.loss {
        Loss::CrossEntropy => Method::Lora,
        Loss::Preference(_) => job.method.unwrap_or(Method::Lora),
    });
    base.seq_len = seq_len.max(1);
    base.lora_rank = job.lora.rank.max(1);
    base.target_modules = job.lora.targets.clone();
    base.cuda_context = false;
    // Each preference pair is two sequences.
    let (per_item, default_effective) = match job.loss {
        Loss::CrossEntropy => (1, 16),
        Loss::Preference(_) => (2, 8),
    };
    let method = match job.loss {
        Loss::CrossEntropy => {
            base.lora_dropout = job.lora.dropout > 0.0;
            if let Some((linear_bytes, other_bytes)) = gguf_bytes {
                base.quant = Quant::Gguf {
                    linear_bytes,
                    other_bytes,
                };
            }
            job.method.or(job.quant_bits.map(|_| Method::Qlora))
        }
        Loss::Preference(_) => Some(job.method.unwrap_or(Method::Lora)),
    };
    let effective = match (job.batch_size, job.gradient_accumulation_steps) {
        (None, None) => default_effective,
        (b, a) => b.unwrap_or(1) * a.unwrap_or(1),
    };
    let req = Request {
        method,
        dtype: Some(Dtype::F32),
        batch_size: job.batch_size.map(|b| b * per_item),
        gradient_checkpointing: Some(false),
        effective_batch: effective * per_item,
        engine: None,
        base,
    };
    (plan::plan(cfg, device, device.free_bytes, &req), effective)
}

/// The data of either loss, tokenized.
enum Data {
    Sft {
        train: Vec<data::Sample>,
        val: Vec<data::Sample>,
    },
    Pref {
        train: Vec<PrefItem>,
        val: Vec<PrefItem>,
    },
}

impl Data {
    fn train_len(&self) -> usize {
        match self {
            Data::Sft { train, .. } => train.len(),
            Data::Pref { train, .. } => train.len(),
        }
    }
}

/// Load and tokenize the data for `job.loss`; report what it looked like.
fn load_data(job: &Job, tok: &Tokenizer, progress: &dyn Progress) -> Result<(Data, DataReport)> {
    let (data, report) = match &job.loss {
        Loss::CrossEntropy => {
            let d = data::load_sft(&job.train_data, &job.val_data, tok, &job.data, progress)?;
            (
                Data::Sft {
                    train: d.train,
                    val: d.val,
                },
                d.report,
            )
        }
        Loss::Preference(p) => {
            let d =
                data::load_preferences(&job.train_data, &job.val_data, tok, &job.data, progress)?;
            let (train, val) = if p.cfg.loss == LossKind::Kto {
                (dpo::unpair(d.train), dpo::unpair(d.val))
            } else {
                if d.train.iter().any(|s| s.label.is_some()) {
                    return Err(Exit::Usage(
                        format!(
                            "the data has KTO rows (a completion and a label, no rejected answer): use --loss kto, not {:?}",
                            p.cfg.loss
                        )
                        .to_lowercase(),
                    )
                    .into());
                }
                (d.train, d.val)
            };
            (
                Data::Pref {
                    train: train.into_iter().map(PrefItem::new).collect(),
                    val: val.into_iter().map(PrefItem::new).collect(),
                },
                d.report,
            )
        }
    };
    let r = &report;
    for s in &r.sources {
        progress.println(&format!(
            "data: {} ({} {}): {} rows, {} kept; dropped {} malformed, {} over length, {} empty answer; {} truncated",
            s.path, s.format, s.layout, s.rows, s.kept, s.malformed, s.over_length, s.empty_answer, s.truncated
        ));
    }
    progress.println(&match &job.loss {
        Loss::CrossEntropy => format!(
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
        ),
        Loss::Preference(_) => format!(
            "data: {} train / {} validation pairs; tokens min {} / median {} / p95 {} / max {}",
            r.train_rows, r.val_rows, r.length_min, r.length_median, r.length_p95, r.length_max
        ),
    });
    Ok((data, report))
}

/// How a run is stopped from outside (Ctrl-C).
pub struct Stop<'a> {
    /// Set: training ends after the current step with a checkpoint and an
    /// [`Trained::interrupted`] result.
    pub flag: &'a AtomicBool,
    /// Called once the model and data are loaded, just before the first
    /// step: from then on `flag` is watched (before, a caller may rather
    /// leave at once).
    pub armed: &'a dyn Fn(),
}

/// Run `job` on this machine (`inv`), reporting on `progress`, until done or
/// stopped (`stop`).
pub fn run(job: &Job, inv: &Inventory, progress: &dyn Progress, stop: Stop) -> Result<Trained> {
    let path = job.model.as_path();
    let is_gguf = path.is_file();
    if is_gguf && job.quant_bits.is_some() {
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

    let (mut data, report) = load_data(job, &tok, progress)?;

    // Plan.
    let max_length = job.data.max_length;
    let seq_len = if max_length > 0 {
        max_length.min(report.length_max.max(1))
    } else {
        report.length_max.max(1)
    };
    let gguf_bytes = if is_gguf {
        crate::planner::source::read_model(path)
            .ok()
            .and_then(|s| s.gguf_bytes)
    } else {
        None
    };
    let (plan, effective) = plan(job, &cfg, gguf_bytes, seq_len, inv);
    let full = plan.job.method == Method::Full;
    let mut method_note = plan.job.method.name().to_string();
    let mut quantize: Option<GgmlType> = None;
    if plan.job.method == Method::Qlora {
        if is_gguf {
            method_note = "qlora (LoRA on the GGUF's own quantized weights)".into();
        } else {
            let t = match job.quant_bits {
                Some(8) => GgmlType::Q8_0,
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
    } else if plan.job.method == Method::Lora && is_gguf && matches!(job.loss, Loss::CrossEntropy) {
        method_note = "lora on the GGUF's quantized weights (QLoRA)".into();
    }
    progress.println(&format!(
        "plan: {method_note}: {}; sequences of up to {seq_len} tokens ({})",
        plan.reason,
        length_note(seq_len, max_length)
    ));
    if !plan.fits {
        progress.warn("the planner's estimate does not fit this machine's free memory");
    }
    let (batch_size, accum) = match job.loss {
        Loss::CrossEntropy => (
            job.batch_size.unwrap_or(plan.job.batch_size).max(1),
            job.gradient_accumulation_steps
                .unwrap_or(plan.gradient_accumulation_steps)
                .max(1),
        ),
        Loss::Preference(_) => {
            let b = job
                .batch_size
                .unwrap_or((plan.job.batch_size / 2).max(1))
                .max(1);
            (
                b,
                job.gradient_accumulation_steps
                    .unwrap_or((effective / b).max(1))
                    .max(1),
            )
        }
    };

    progress.println(&format!("loading {}", path.display()));
    let mut model = match quantize {
        Some(t) => Model::load_hf_quantized(path, t),
        None => Model::load(path, &LoadOptions::default()),
    }
    .with_context(|| format!("loading the model from {}", path.display()))?;
    let pad_id = tok
        .pad_id()
        .or_else(|| tok.eos_ids().first().copied())
        .unwrap_or(0);

    // The reference model of a preference loss: the base before the adapter
    // is attached (with --ref-adapter), or its log-probs computed once.
    let mut reference: Option<Model> = None;
    if let (Loss::Preference(p), Data::Pref { train, val }) = (&job.loss, &mut data) {
        if p.cfg.loss.needs_reference() {
            let mut base = model.clone();
            if let Some(dir) = &p.ref_adapter {
                let n = crate::model::adapter::apply(&mut base, dir)
                    .with_context(|| format!("loading --ref-adapter {}", dir.display()))?;
                progress.println(&format!(
                    "reference: the base with {} ({n} layers)",
                    dir.display()
                ));
            }
            if p.precompute_ref_logps {
                progress.println("reference: computing log-probs once before training");
                dpo::precompute_reference(&base, train, pad_id, batch_size, progress)?;
                dpo::precompute_reference(&base, val, pad_id, batch_size, progress)?;
            } else {
                reference = Some(base);
            }
        }
    }

    // Trainable parameters.
    let adapter = match &job.loss {
        Loss::Preference(p) => p.adapter.as_deref(),
        Loss::CrossEntropy => None,
    };
    let lora_opts = match adapter {
        Some(dir) => adapter_options(dir, job.lora.dropout)?,
        None => job.lora.clone(),
    };
    let params: Vec<Param> = if full {
        lora::make_full_trainable(&mut model)?
    } else {
        let p = lora::attach_lora(&mut model, &lora_opts, job.train.seed)?;
        if let Some(dir) = adapter {
            lora::load_params(dir, &p)
                .with_context(|| format!("loading --adapter {}", dir.display()))?;
            progress.println(&format!("policy: starting from {}", dir.display()));
        }
        p
    };
    let trainable: usize = params.iter().map(Param::numel).sum();
    let all = if full {
        trainable
    } else {
        cfg.total_params() as usize + trainable
    };
    progress.println(&match &job.loss {
        Loss::CrossEntropy => format!(
            "trainable params: {} || all params: {} || trainable%: {:.4}",
            human(trainable),
            human(all),
            100.0 * trainable as f64 / all.max(1) as f64
        ),
        Loss::Preference(p) => format!(
            "loss {:?} (beta {}); trainable params: {trainable}; reference: {}",
            p.cfg.loss,
            p.cfg.beta,
            if !p.cfg.loss.needs_reference() {
                "none"
            } else if p.precompute_ref_logps {
                "precomputed"
            } else if full {
                "frozen copy"
            } else {
                "base without the adapter"
            }
        ),
    });

    let out = job.train.output_dir.clone();
    std::fs::create_dir_all(&out).with_context(|| format!("creating {}", out.display()))?;
    let resume = match &job.resume_from_checkpoint {
        Some(spec) => Some(trainer::checkpoint::resolve(spec, &out)?),
        None => None,
    };
    let (lr_lora, lr_full) = match job.loss {
        Loss::CrossEntropy => (1e-4, 1e-5),
        Loss::Preference(_) => (5e-5, 5e-7),
    };
    let tcfg = TrainConfig {
        batch_size,
        gradient_accumulation_steps: accum,
        learning_rate: job
            .learning_rate
            .unwrap_or(if full { lr_full } else { lr_lora }),
        logging_steps: job.train.logging_steps.max(1),
        resume_from: resume.clone(),
        ..job.train.clone()
    };
    let max_steps = trainer::total_steps(&tcfg, data.train_len());
    let args_json = args_json(
        job,
        &ArgsRecord {
            full,
            method_note: &method_note,
            plan: &plan,
            tcfg: &tcfg,
            max_steps,
            lora: &lora_opts,
            report: &report,
            trainable,
            all,
        },
    )?;
    trainer::checkpoint::write_atomic(
        &out.join("args.json"),
        serde_json::to_string_pretty(&args_json)?.as_bytes(),
    )?;
    if let Some(r) = &resume {
        progress.println(&format!("resuming from {}", r.display()));
    }
    progress.println(&match job.loss {
        Loss::CrossEntropy => format!(
            "training {max_steps} steps: batch {batch_size} x {accum} accumulation, {} samples, output {}",
            data.train_len(),
            out.display()
        ),
        Loss::Preference(_) => format!(
            "training {max_steps} steps: batch {batch_size} pairs x {accum} accumulation, {} items, output {}",
            data.train_len(),
            out.display()
        ),
    });

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
    (stop.armed)();
    let stop = stop.flag;
    let outcome = match (&job.loss, &data) {
        (Loss::CrossEntropy, Data::Sft { train, val }) => trainer::run(Trainer {
            model: &model,
            params,
            objective: &CrossEntropy { pad_id },
            train,
            val,
            cfg: tcfg,
            save_model: &save,
            progress,
            stop,
        }),
        (Loss::Preference(p), Data::Pref { train, val }) => trainer::run(Trainer {
            model: &model,
            params,
            objective: &Preference {
                cfg: p.cfg.clone(),
                pad_id,
                reference: reference.as_ref(),
            },
            train,
            val,
            cfg: tcfg,
            save_model: &save,
            progress,
            stop,
        }),
        _ => unreachable!("load_data returns the data of the job's loss"),
    }?;
    Ok(Trained {
        output_dir: out,
        full,
        interrupted: outcome.interrupted,
        steps: outcome.global_step,
        max_steps: outcome.max_steps,
        last_checkpoint: outcome.last_checkpoint,
        tokens_per_second: outcome.tokens as f64 / outcome.train_seconds.max(1e-9),
        train_seconds: outcome.train_seconds,
        log_history: outcome.log_history,
        trainable_params: trainable,
        event_file: outcome.event_file,
    })
}

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

/// What args.json records beside the job's own settings.
struct ArgsRecord<'a> {
    full: bool,
    method_note: &'a str,
    plan: &'a Plan,
    tcfg: &'a TrainConfig,
    max_steps: usize,
    lora: &'a LoraOptions,
    report: &'a DataReport,
    trainable: usize,
    all: usize,
}

/// `args.json`: what was asked, planned and run.
fn args_json(job: &Job, r: &ArgsRecord) -> Result<Value> {
    let specs = |v: &[DatasetSpec]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
    let o = &job.data;
    let mut v = json!({
        "command": match job.loss {
            Loss::CrossEntropy => "finetune",
            Loss::Preference(_) => "dpo",
        },
        "model": job.model.display().to_string(),
        "tuner": if r.full { "full" } else { "lora" },
        "method": r.method_note,
        "plan": r.plan,
        "plan_reason": r.plan.reason,
        "train": r.tcfg,
        "max_steps": r.max_steps,
        "lora": if r.full { Value::Null } else { serde_json::to_value(r.lora)? },
        "data": {
            "datasets": specs(&job.train_data),
            "val_datasets": specs(&job.val_data),
            "max_length": o.max_length,
            "truncation_strategy": format!("{:?}", o.truncation).to_lowercase(),
            "packing": o.packing,
            "loss_on_all_tokens": o.loss_on_all_tokens,
            "dedup": o.dedup,
            "split_dataset_ratio": o.split_ratio,
            "report": r.report,
        },
        "trainable_params": r.trainable,
        "total_params": r.all,
        "swift_version": env!("CARGO_PKG_VERSION"),
    });
    if let Loss::Preference(p) = &job.loss {
        v["rlhf"] = serde_json::to_value(&p.cfg)?;
        v["adapter"] = json!(p.adapter.as_ref().map(|p| p.display().to_string()));
        v["ref_adapter"] = json!(p.ref_adapter.as_ref().map(|p| p.display().to_string()));
        v["precompute_ref_logps"] = json!(p.precompute_ref_logps);
    }
    Ok(v)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn human_groups_thousands() {
        assert_eq!(human(0), "0");
        assert_eq!(human(999), "999");
        assert_eq!(human(2_442_240), "2,442,240");
    }
}
