//! `swift completions SHELL`: print a completion script generated from the
//! clap tree.

use clap::{Args, ValueEnum};
use clap_complete::Shell as CShell;

use crate::printer::Printer;

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Shell {
    Bash,
    Zsh,
    Fish,
    Elvish,
    Powershell,
}

impl Shell {
    pub const ALL: [Shell; 5] = [
        Shell::Bash,
        Shell::Zsh,
        Shell::Fish,
        Shell::Elvish,
        Shell::Powershell,
    ];

    fn to_clap(self) -> CShell {
        match self {
            Shell::Bash => CShell::Bash,
            Shell::Zsh => CShell::Zsh,
            Shell::Fish => CShell::Fish,
            Shell::Elvish => CShell::Elvish,
            Shell::Powershell => CShell::PowerShell,
        }
    }

    /// The file name the generated script is committed under in `completions/`.
    pub fn file_name(self) -> &'static str {
        match self {
            Shell::Bash => "swift.bash",
            Shell::Zsh => "_swift",
            Shell::Fish => "swift.fish",
            Shell::Elvish => "swift.elv",
            Shell::Powershell => "_swift.ps1",
        }
    }
}

#[derive(Debug, Args)]
pub struct CompletionsArgs {
    /// The shell to generate for
    #[arg(value_enum)]
    pub shell: Shell,
}

/// The completion script for `shell`.
pub fn generate(shell: Shell) -> Vec<u8> {
    let mut cmd = crate::cli::command();
    let mut buf = Vec::new();
    clap_complete::generate(shell.to_clap(), &mut cmd, "swift", &mut buf);
    buf
}

pub fn run(args: CompletionsArgs, printer: &Printer) -> anyhow::Result<()> {
    let script = generate(args.shell);
    printer.data_raw(&String::from_utf8_lossy(&script));
    Ok(())
}
