//! What `swift infer` and the `swift finetune --serve` pipeline share in the
//! command layer: loading a model for generation (with its report lines),
//! and serving models behind the OpenAI-compatible API (with the lines that
//! say where and how).

use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{bail, Context, Result};

use crate::error::Exit;
use crate::model::sampling::{SamplingBasis, SamplingParams};
use crate::model::{LoadOptions, Model};
use crate::printer::Printer;
use crate::serve::{ServeOptions, ServedModel};
use crate::tokenizer::Tokenizer;

/// Everything a session needs, loaded once.
pub struct Loaded {
    pub model: Model,
    pub tokenizer: Tokenizer,
    pub context_len: usize,
}

/// Load the model at `path` with the LoRA adapters in `adapters` applied,
/// and its tokenizer (with the built-in chat template `template` if given).
pub fn load(
    path: &Path,
    adapters: &[PathBuf],
    template: Option<&str>,
    printer: &Printer,
) -> Result<Loaded> {
    if !path.exists() {
        bail!(
            "model not found: {} (give a model folder or a .gguf file)",
            path.display()
        );
    }
    let t0 = Instant::now();
    printer.info(&format!("loading {}", path.display()));
    for a in adapters {
        if !a.is_dir() {
            bail!("adapter folder not found: {}", a.display());
        }
    }
    let opts = LoadOptions {
        adapters: adapters.to_vec(),
    };
    // The tokenizer first: building it frees much memory that the model
    // load hands back to the OS before the weights are read (peak RSS).
    // The model's error, if any, is still the one reported.
    let tokenizer = Tokenizer::load(path);
    let model = Model::load(path, &opts)
        .with_context(|| format!("loading the model from {}", path.display()))?;
    let mut tokenizer =
        tokenizer.with_context(|| format!("loading the tokenizer from {}", path.display()))?;
    for w in tokenizer.warnings() {
        printer.warn(w);
    }
    if let Some(name) = template {
        tokenizer
            .use_builtin_template(name)
            .map_err(|e| Exit::Usage(format!("--template {name}: {e:#}")))?;
    }
    let cfg = model.config();
    let context_len = cfg.max_position_embeddings;
    printer.info(&format!(
        "loaded {} ({}, {} layers, {:.0}M parameters, context {}{}) in {:.2}s",
        path.file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default(),
        cfg.model_type,
        cfg.num_hidden_layers,
        cfg.total_params() as f64 / 1e6,
        context_len,
        if adapters.is_empty() {
            String::new()
        } else {
            format!(", {} adapter(s)", adapters.len())
        },
        t0.elapsed().as_secs_f64()
    ));
    Ok(Loaded {
        model,
        tokenizer,
        context_len,
    })
}

/// Serve `models` until SIGINT / SIGTERM: the address on stdout once bound,
/// the models and the default sampling (`sampling`, from `basis`) on stderr.
pub fn serve(
    models: Vec<ServedModel>,
    tokenizer: Tokenizer,
    opts: ServeOptions,
    sampling: &SamplingParams,
    basis: SamplingBasis,
    printer: &Printer,
) -> Result<()> {
    crate::serve::serve(models, tokenizer, opts, |l| {
        printer.data(&format!("listening on http://{}", l.addr));
        printer.info(&format!("serving: {}", l.models.join(", ")));
        printer.info(&format!(
            "sampling when a request sets none: {} ({})",
            sampling.describe(),
            basis.describe()
        ));
    })?;
    printer.info("server stopped");
    Ok(())
}
