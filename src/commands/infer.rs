//! `swift infer` (issue 02). Placeholder until the model core lands.

use clap::Args;

use crate::printer::Printer;

#[derive(Debug, Args)]
pub struct InferArgs {
    /// A model folder or a .gguf file
    #[arg(long, alias = "model_id", alias = "model_name_or_path")]
    pub model: String,
}

pub fn run(_args: InferArgs, _printer: &Printer) -> anyhow::Result<()> {
    anyhow::bail!("`swift infer` is not available in this build yet")
}
