//! `swift finetune`: supervised fine-tuning with LoRA (QLoRA on a GGUF's own
//! quantized weights) or full tuning. The flags become a
//! `crate::train::job::Job` with the cross-entropy loss and one call of
//! `crate::train::job::run`; this file prints what it returns. With --merge
//! or --serve the run is the pipeline's (`commands::pipeline`).

use std::path::PathBuf;

use anyhow::Result;
use clap::{Args, ValueEnum};
use serde_json::json;

use super::training::{self, DataFlags, LoopFlags, LoraFlags, TunerArg};
use crate::error::Exit;
use crate::planner::memory::Method;
use crate::printer::Printer;
use crate::train::job::{Job, Loss};

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum MethodArg {
    /// Let the planner choose (LoRA, or QLoRA on a GGUF / a small device)
    Auto,
    Lora,
    Qlora,
    Full,
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
    #[command(flatten)]
    pub data: DataFlags,

    /// Pack short samples into rows of --max-length tokens
    #[arg(long)]
    pub packing: bool,

    /// Train on every token (pre-training style), not only assistant turns
    #[arg(long, alias = "loss_on_all_tokens")]
    pub loss_on_all_tokens: bool,

    /// Training method; `auto` asks the planner (its choice and reason are
    /// printed and kept in args.json)
    #[arg(long, value_enum, default_value_t = MethodArg::Auto)]
    pub method: MethodArg,

    /// What trains: LoRA adapters, or every weight (`full`)
    #[arg(long, alias = "train_type", value_enum)]
    pub tuner: Option<TunerArg>,

    /// QLoRA on a full-precision model: quantize the frozen base's decoder
    /// linears at load, 4 = NF4 (bitsandbytes' 4-bit NormalFloat, blocks of
    /// 64), 8 = 8-bit blocks. Implies --method qlora; `auto` picks 4 when the
    /// planner chooses QLoRA. A GGUF trains on its own quantized weights.
    #[arg(long, alias = "quant_bits", value_name = "4|8", value_parser = clap::builder::PossibleValuesParser::new(["4", "8"]))]
    pub quant_bits: Option<String>,

    #[command(flatten)]
    pub lora: LoraFlags,

    #[command(flatten)]
    pub run: LoopFlags,

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

impl FinetuneArgs {
    /// The library job these flags ask for, on --model as given (a hub id
    /// is fetched by the caller, which sets `model` to the local copy).
    pub fn job(&self) -> Result<Job> {
        let mut job = training::job(
            &self.data,
            &self.lora,
            &self.run,
            (self.packing, self.loss_on_all_tokens),
            Loss::CrossEntropy,
        )?;
        let full = self.tuner == Some(TunerArg::Full) || self.method == MethodArg::Full;
        job.method = if full {
            Some(Method::Full)
        } else {
            match self.method {
                MethodArg::Auto => None,
                MethodArg::Lora => Some(Method::Lora),
                MethodArg::Qlora => Some(Method::Qlora),
                MethodArg::Full => Some(Method::Full),
            }
        };
        job.quant_bits = self
            .quant_bits
            .as_deref()
            .map(|b| if b == "8" { 8 } else { 4 });
        Ok(job)
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
    let t = training::run_job(args.job()?, printer, training::RESUME_HINT)?;
    printer.info(&training::sft_done_line(&t));
    if args.run.json {
        let summary = json!({
            "output_dir": t.output_dir.display().to_string(),
            "tuner": if t.full { "full" } else { "lora" },
            "steps": t.steps,
            "train_loss": t.last("loss"),
            "eval_loss": t.last("eval_loss"),
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
