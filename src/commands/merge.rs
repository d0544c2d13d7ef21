//! `swift merge`: fold LoRA adapters into a base model (HF folder or GGUF),
//! or convert between the two formats when no adapter is given.

use std::path::PathBuf;

use anyhow::{bail, Result};
use clap::{Args, ValueEnum};

use crate::model::gguf::GgmlType;
use crate::model::merge::{self, MergeOptions, OutFormat};
use crate::planner::device::parse_size_bare;
use crate::printer::Printer;

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum FormatArg {
    /// A Hugging Face folder: safetensors shards, config, tokenizer
    #[value(alias = "safetensors")]
    Hf,
    /// One GGUF file for llama.cpp / Ollama
    Gguf,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum DtypeArg {
    #[value(alias = "float32")]
    F32,
    #[value(alias = "float16", alias = "fp16")]
    F16,
    #[value(alias = "bfloat16")]
    Bf16,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum QuantArg {
    #[value(name = "q4_0")]
    Q4_0,
    #[value(name = "q4_1")]
    Q4_1,
    #[value(name = "q8_0")]
    Q8_0,
    F16,
    F32,
}

#[derive(Debug, Args)]
pub struct MergeArgs {
    /// The base model: a Hugging Face folder, a .gguf file, or a hub id
    #[arg(
        long,
        alias = "model_id",
        alias = "model_name_or_path",
        value_name = "PATH"
    )]
    pub model: PathBuf,

    /// A peft LoRA adapter folder to fold in (repeat to stack several, applied in order)
    #[arg(long, alias = "adapters", value_name = "DIR")]
    pub adapter: Vec<PathBuf>,

    /// Where to write: a folder (hf) or a file (gguf)
    #[arg(
        long,
        short = 'o',
        alias = "output_dir",
        alias = "output-dir",
        value_name = "PATH"
    )]
    pub output: PathBuf,

    /// Output format
    #[arg(long, value_enum, default_value_t = FormatArg::Hf)]
    pub format: FormatArg,

    /// Weight type of a Hugging Face output [default: the base's; f32 for a GGUF base]
    #[arg(long, value_enum, alias = "torch_dtype")]
    pub dtype: Option<DtypeArg>,

    /// Weight type of the matrices in a GGUF output (norms stay f32)
    #[arg(long, value_enum, default_value_t = QuantArg::Q8_0)]
    pub quant: QuantArg,

    /// GGUF base to GGUF output: copy the tensors no adapter changes as the
    /// base stores them (its own types, bit for bit); --quant applies only to
    /// the changed ones
    #[arg(long)]
    pub keep_types: bool,

    /// Largest safetensors shard of a Hugging Face output
    #[arg(
        long,
        default_value = "5GB",
        value_name = "SIZE",
        alias = "max_shard_size"
    )]
    pub max_shard_size: String,

    /// Replace the output if it exists
    #[arg(long)]
    pub force: bool,

    /// Print the result as JSON on stdout
    #[arg(long)]
    pub json: bool,
}

/// `--max-shard-size`: `5GB`, `500MB`, `2GiB`; a bare number is bytes, as
/// transformers' `max_shard_size` reads it.
fn shard_size(s: &str) -> Result<u64> {
    match parse_size_bare(s, 1.0) {
        Some(v) if v >= 1 => Ok(v),
        Some(_) => bail!("--max-shard-size `{s}` is too small"),
        None => bail!("--max-shard-size: `{s}` is not a size (examples: 5GB, 500MB, 2GiB)"),
    }
}

pub fn run(args: MergeArgs, printer: &Printer) -> Result<()> {
    let base = super::resolve_model_arg(&args.model, &[])?;
    let max_shard_bytes = shard_size(&args.max_shard_size)?;
    let opts = MergeOptions {
        base,
        adapters: args.adapter.clone(),
        output: args.output.clone(),
        format: match args.format {
            FormatArg::Hf => OutFormat::Hf,
            FormatArg::Gguf => OutFormat::Gguf,
        },
        dtype: args.dtype.map(|d| match d {
            DtypeArg::F32 => GgmlType::F32,
            DtypeArg::F16 => GgmlType::F16,
            DtypeArg::Bf16 => GgmlType::BF16,
        }),
        quant: match args.quant {
            QuantArg::Q4_0 => GgmlType::Q4_0,
            QuantArg::Q4_1 => GgmlType::Q4_1,
            QuantArg::Q8_0 => GgmlType::Q8_0,
            QuantArg::F16 => GgmlType::F16,
            QuantArg::F32 => GgmlType::F32,
        },
        keep_base_types: args.keep_types,
        max_shard_bytes,
        force: args.force,
    };
    if args.keep_types && (args.format != FormatArg::Gguf || !opts.base.is_file()) {
        return Err(crate::error::Exit::Usage(
            "--keep-types keeps a GGUF base's tensor types in a GGUF output: it needs a .gguf --model and --format gguf".into(),
        )
        .into());
    }
    if args.format == FormatArg::Gguf && args.dtype.is_some() {
        printer.warn("--dtype applies to Hugging Face output; a GGUF output takes --quant");
    }
    let what = if opts.adapters.is_empty() {
        "converting"
    } else {
        "merging"
    };
    printer.info(&format!(
        "{what} {} -> {}",
        opts.base.display(),
        opts.output.display()
    ));
    let progress = printer.progress();
    let report = merge::merge(&opts, progress.as_ref())?;
    for n in &report.notes {
        printer.info(n);
    }
    for w in &report.warnings {
        printer.warn(w);
    }
    let peak = merge::peak_rss_bytes();
    if args.json {
        let mut v = serde_json::to_value(&report)?;
        v["peak_rss_bytes"] = serde_json::json!(peak);
        printer.data(&serde_json::to_string_pretty(&v)?);
    } else {
        printer.info(&format!(
            "wrote {} tensors ({} changed by adapters{}), {:.1} MB of {} weights{}",
            report.tensors,
            report.merged_tensors,
            if report.kept_tensors > 0 {
                format!(", {} copied as the base stores them", report.kept_tensors)
            } else {
                String::new()
            },
            report.bytes_written as f64 / 1e6,
            report.dtype,
            peak.map(|p| format!(", peak memory {:.0} MB", p as f64 / 1e6))
                .unwrap_or_default()
        ));
        printer.data(&report.output.display().to_string());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shard_sizes() {
        assert_eq!(shard_size("5GB").unwrap(), 5_000_000_000);
        assert_eq!(shard_size("2GiB").unwrap(), 2 << 30);
        assert_eq!(shard_size("1024").unwrap(), 1024);
        assert_eq!(shard_size("1.5MB").unwrap(), 1_500_000);
        assert!(shard_size("five").is_err());
        assert!(shard_size("5XB").is_err());
        assert!(shard_size("0.1").is_err());
    }
}
