//! `swift estimate-vram` (in progress).
use clap::Args;

use crate::printer::Printer;

#[derive(Debug, Args)]
pub struct EstimateVramArgs {
    /// A model folder, a config.json or a .gguf file
    #[arg(long)]
    pub model: Option<String>,
}

pub fn run(_args: EstimateVramArgs, _printer: &Printer) -> anyhow::Result<()> {
    anyhow::bail!("not yet")
}
