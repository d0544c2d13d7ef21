//! `swift dpo`: preference alignment (DPO, IPO, ORPO, SimPO, KTO) with LoRA
//! or full tuning. The flags become a `crate::train::job::Job` with a
//! preference loss and one call of `crate::train::job::run` (the same job
//! `swift finetune` runs with cross-entropy); this file prints what it returns.

use std::path::PathBuf;

use anyhow::Result;
use clap::Args;
use serde_json::json;

use super::training::{self, DataFlags, LoopFlags, LoraFlags, TunerArg};
use crate::error::Exit;
use crate::planner::memory::Method;
use crate::printer::Printer;
use crate::train::dpo::{LossKind, PrefConfig};
use crate::train::job::{Job, Loss, PreferenceLoss};

#[derive(Debug, Args)]
#[command(
    mut_arg("datasets", |a| a.help("Preference data: a file (jsonl, json, csv, parquet) or folder, `PATH#N` to sample N rows (repeatable)")),
    mut_arg("learning_rate", |a| a.help("Peak learning rate (default 5e-5 for LoRA, 5e-7 for full tuning)")),
    mut_arg("weight_decay", |a| a.default_value("0")),
    mut_arg("batch_size", |a| a.help("Pairs per forward pass (each pair is two sequences; default: the planner's choice)")),
    mut_arg("num_train_epochs", |a| a.default_value("1")),
    after_help = "\
Data: prompt/chosen/rejected (strings or message lists), TRL's chosen/rejected conversations, \
ms-swift's messages + rejected_response, and for KTO messages + a boolean label (paired rows are \
split into a desirable and an undesirable item).

The reference model is the base without the trained adapter (no second copy of the weights), \
the base with --ref-adapter, or with --tuner full a frozen copy (or --precompute-ref-logps: one \
pass before training). Logged: loss, rewards/chosen, rewards/rejected, rewards/accuracies, \
rewards/margins, logps/chosen, logps/rejected (logging.jsonl, runs/, images/).")]
pub struct DpoArgs {
    #[command(flatten)]
    pub data: DataFlags,

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

    /// What trains: LoRA adapters, or every weight (`full`)
    #[arg(
        long,
        alias = "train_type",
        alias = "method",
        value_enum,
        default_value_t = TunerArg::Lora
    )]
    pub tuner: TunerArg,

    #[command(flatten)]
    pub lora: LoraFlags,

    #[command(flatten)]
    pub run: LoopFlags,
}

impl DpoArgs {
    /// The library job these flags ask for, on --model as given (a hub id
    /// is fetched by the caller, which sets `model` to the local copy).
    pub fn job(&self) -> Result<Job> {
        let beta = self.beta.unwrap_or(if self.loss == LossKind::Simpo {
            2.0
        } else {
            0.1
        });
        if beta <= 0.0 || !beta.is_finite() {
            return Err(Exit::Usage("--beta must be positive".into()).into());
        }
        if !(0.0..0.5).contains(&self.label_smoothing) {
            return Err(Exit::Usage("--label-smoothing must be in [0, 0.5)".into()).into());
        }
        let full = self.tuner == TunerArg::Full;
        if full && (self.adapter.is_some() || self.ref_adapter.is_some()) {
            return Err(Exit::Usage(
                "--adapter / --ref-adapter need LoRA (not --tuner full)".into(),
            )
            .into());
        }
        if self.precompute_ref_logps && self.loss == LossKind::Kto {
            return Err(Exit::Usage(
                "--precompute-ref-logps does not apply to KTO (its KL term pairs completions per batch)"
                    .into(),
            )
            .into());
        }
        let loss = Loss::Preference(PreferenceLoss {
            cfg: PrefConfig {
                loss: self.loss,
                beta,
                label_smoothing: self.label_smoothing,
                simpo_gamma: self.simpo_gamma,
                desirable_weight: self.desirable_weight,
                undesirable_weight: self.undesirable_weight,
            },
            adapter: self.adapter.clone(),
            ref_adapter: self.ref_adapter.clone(),
            precompute_ref_logps: self.precompute_ref_logps,
        });
        let mut job = training::job(&self.data, &self.lora, &self.run, (false, false), loss)?;
        job.method = Some(if full { Method::Full } else { Method::Lora });
        Ok(job)
    }
}

pub fn run(args: DpoArgs, printer: &Printer) -> Result<()> {
    let t = training::run_job(args.job()?, printer, training::RESUME_HINT)?;
    printer.info(&format!(
        "done: {} steps in {:.1}s ({:.0} tokens/s), loss {}, rewards/accuracies {}, rewards/margins {}; {} saved to {}",
        t.steps,
        t.train_seconds,
        t.tokens_per_second,
        training::metric(t.last("loss")),
        training::metric(t.last("rewards/accuracies")),
        training::metric(t.last("rewards/margins")),
        training::saved(&t),
        t.output_dir.display()
    ));
    if args.run.json {
        let summary = json!({
            "output_dir": t.output_dir.display().to_string(),
            "loss_type": args.loss,
            "steps": t.steps,
            "train_loss": t.last("loss"),
            "rewards/accuracies": t.last("rewards/accuracies"),
            "rewards/margins": t.last("rewards/margins"),
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
