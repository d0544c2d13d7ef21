//! `swift download` (issue 09). Placeholder until the hub module lands.

use clap::Args;

use crate::printer::Printer;

#[derive(Debug, Args)]
pub struct DownloadArgs {
    /// Model or dataset id (`org/name`, optionally `hf::` or `ms::` prefixed)
    pub repo_id: String,
}

pub fn run(_args: DownloadArgs, _printer: &Printer) -> anyhow::Result<()> {
    anyhow::bail!("`swift download` is not available in this build yet")
}
